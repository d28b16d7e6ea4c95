//! The CloudTrail Lake operations of the JSON 1.1 API: event data stores (CreateEventDataStore …
//! DeleteEventDataStore, against the control plane they are given) and queries (StartQuery, DescribeQuery,
//! GetQueryResults, CancelQuery, ListQueries, against the lake's query engine).

use std::sync::Arc;

use serde_json::{Value, json};
use service::event_data_stores::{EventDataStore, EventDataStores};

use crate::error::ApiError;
use crate::trails::AdvancedEventSelectorShape;
use crate::wire;
use crate::wire::lake::{ListRequest, Page, QueryRequest, StartQueryRequest, StoreRef, StoreRequest};
use crate::{App, CallContext, blocking};

fn store_json(s: &EventDataStore) -> Value {
    let mut v = json!({
        "EventDataStoreArn": s.arn,
        "Name": s.name,
        "Status": s.status.as_str(),
        "AdvancedEventSelectors": s.selectors.iter().map(AdvancedEventSelectorShape::of).collect::<Vec<_>>(),
        "MultiRegionEnabled": s.multi_region_enabled,
        "OrganizationEnabled": s.organization_enabled,
        "RetentionPeriod": s.retention_period,
        "TerminationProtectionEnabled": s.termination_protection_enabled,
        "CreatedTimestamp": s.created.epoch_seconds_f64(),
        "UpdatedTimestamp": s.updated.epoch_seconds_f64(),
        "BillingMode": s.billing_mode.as_str(),
    });
    if let Some(k) = &s.kms_key_id {
        v["KmsKeyId"] = json!(k);
    }
    v
}

pub(crate) async fn create(
    stores: &Arc<EventDataStores>,
    ctx: &CallContext,
    params: &Value,
) -> Result<Value, ApiError> {
    let settings = wire::parse::<StoreRequest>(params)?.create()?;
    let (stores, now, id) = (stores.clone(), ctx.now, ctx.fresh_id);
    let s = blocking(move || stores.create(settings, id, now)).await??;
    let mut v = store_json(&s);
    v["TagsList"] = json!(s.tags.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect::<Vec<_>>());
    Ok(v)
}

pub(crate) async fn update(
    stores: &Arc<EventDataStores>,
    ctx: &CallContext,
    params: &Value,
) -> Result<Value, ApiError> {
    let (reference, settings) = wire::parse::<StoreRequest>(params)?.update()?;
    let (stores, now) = (stores.clone(), ctx.now);
    let s = blocking(move || stores.update(&reference, settings, now)).await??;
    Ok(store_json(&s))
}

pub(crate) async fn delete(
    stores: &Arc<EventDataStores>,
    ctx: &CallContext,
    params: &Value,
) -> Result<Value, ApiError> {
    let reference = wire::parse::<StoreRef>(params)?.reference()?;
    let (stores, now) = (stores.clone(), ctx.now);
    blocking(move || stores.delete(&reference, now)).await??;
    Ok(json!({}))
}

pub(crate) async fn set_ingestion(
    stores: &Arc<EventDataStores>,
    ctx: &CallContext,
    params: &Value,
    on: bool,
) -> Result<Value, ApiError> {
    let reference = wire::parse::<StoreRef>(params)?.reference()?;
    let (stores, now) = (stores.clone(), ctx.now);
    blocking(move || stores.set_ingestion(&reference, on, now)).await??;
    Ok(json!({}))
}

pub(crate) fn get(stores: &EventDataStores, params: &Value) -> Result<Value, ApiError> {
    let s = stores.get(&wire::parse::<StoreRef>(params)?.reference()?)?;
    let mut v = store_json(&s);
    v["FederationStatus"] = json!("DISABLED");
    Ok(v)
}

pub(crate) fn list(stores: &EventDataStores, params: &Value) -> Result<Value, ApiError> {
    let page = Page::try_from(wire::parse::<ListRequest>(params)?)?;
    let (list, next) = stores.list(page.token.as_deref(), page.max)?;
    let mut out = json!({"EventDataStores": list.iter().map(store_json).collect::<Vec<_>>()});
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

fn engine(app: &App) -> Result<&Arc<lake::QueryEngine>, ApiError> {
    app.lake.get().ok_or_else(|| ApiError::unavailable("the lake is starting; retry in a moment", 1))
}

pub(crate) async fn start_query(app: &Arc<App>, ctx: &CallContext, params: &Value) -> Result<Value, ApiError> {
    let statement = wire::parse::<StartQueryRequest>(params)?.statement()?;
    let info = engine(app)?.start(&statement, ctx.fresh_id).await?;
    Ok(json!({"QueryId": info.id, "EventDataStoreOwnerAccountId": app.config.account_id}))
}

/// The query a request names, checked against its `EventDataStore` when it gives one.
fn query_of(app: &App, req: &QueryRequest) -> Result<lake::QueryInfo, ApiError> {
    let info = engine(app)?.describe(&req.query_id()?)?;
    if let Some(store) = &req.event_data_store {
        let id = app.control_plane.event_data_stores.resolve(store)?;
        if !info.stores.contains(&id) {
            return Err(lake::QueryError::NotFound(info.id).into());
        }
    }
    Ok(info)
}

/// The header with which a DescribeQuery may wait for its query to leave QUEUED/RUNNING: up to that many
/// milliseconds (at most [`MAX_WAIT_MS`]), answering as soon as it does. An opentrail extension (a long
/// poll): `opentrail query` sends it so that it hears of an answer as it is ready, without polling; AWS
/// clients never send it and get CloudTrail's immediate answer.
pub const WAIT_HEADER: &str = "x-opentrail-wait-ms";

/// Hard-coded: the longest wait [`WAIT_HEADER`] may ask for.
pub const MAX_WAIT_MS: u64 = 20_000;

pub(crate) async fn describe_query(app: &App, ctx: &CallContext, params: &Value) -> Result<Value, ApiError> {
    let req = wire::parse::<QueryRequest>(params)?;
    let mut q = query_of(app, &req)?;
    if let Some(wait) = &ctx.wait_ms {
        let ms = wait.trim().parse::<u64>().ok().filter(|ms| *ms <= MAX_WAIT_MS).ok_or_else(|| {
            ApiError::client(
                "InvalidParameterException",
                format!("header {WAIT_HEADER}: '{wait}' is not a number of milliseconds from 0 to {MAX_WAIT_MS}"),
            )
        })?;
        q = engine(app)?.wait(&q.id, std::time::Duration::from_millis(ms)).await?;
    }
    let mut v = json!({
        "QueryId": q.id,
        "QueryString": q.statement,
        "QueryStatus": q.status.as_str(),
        "QueryStatistics": {
            "EventsMatched": q.events_matched,
            "EventsScanned": q.events_scanned,
            "BytesScanned": q.bytes_scanned,
            "ExecutionTimeInMillis": q.execution_ms,
            "CreationTime": q.created as f64 / 1000.0,
        },
        "EventDataStoreOwnerAccountId": app.config.account_id,
    });
    if let Some(e) = &q.error {
        v["ErrorMessage"] = json!(e);
    }
    Ok(v)
}

pub(crate) fn get_query_results(app: &App, params: &Value) -> Result<Value, ApiError> {
    let req = wire::parse::<QueryRequest>(params)?;
    let q = query_of(app, &req)?;
    let page = engine(app)?.results(&q.id, req.next_token.as_deref().filter(|t| !t.is_empty()), req.max_results()?)?;
    let rows: Vec<Value> = page
        .rows
        .iter()
        .map(|r| {
            let cells = page.columns.iter().zip(r).map(|(c, v)| {
                let mut cell = serde_json::Map::new();
                cell.insert(c.clone(), Value::String(v.clone()));
                Value::Object(cell)
            });
            Value::Array(cells.collect())
        })
        .collect();
    let mut v = json!({
        "QueryStatus": page.info.status.as_str(),
        "QueryStatistics": {
            "ResultsCount": rows.len(),
            "TotalResultsCount": page.info.results_count,
            "BytesScanned": page.info.bytes_scanned,
        },
        "QueryResultRows": rows,
    });
    if let Some(t) = page.next {
        v["NextToken"] = json!(t);
    }
    if let Some(e) = &page.info.error {
        v["ErrorMessage"] = json!(e);
    }
    Ok(v)
}

pub(crate) fn cancel_query(app: &App, params: &Value) -> Result<Value, ApiError> {
    let req = wire::parse::<QueryRequest>(params)?;
    let q = query_of(app, &req)?;
    let q = engine(app)?.cancel(&q.id)?;
    Ok(json!({
        "QueryId": q.id,
        "QueryStatus": q.status.as_str(),
        "EventDataStoreOwnerAccountId": app.config.account_id,
    }))
}

pub(crate) fn list_queries(app: &App, params: &Value) -> Result<Value, ApiError> {
    let page = Page::try_from(wire::parse::<ListRequest>(params)?)?;
    let store = wire::required(page.store.clone(), "EventDataStore")?;
    let id = app.control_plane.event_data_stores.get(&store)?.id;
    let all = engine(app)?.list(&id, page.start, page.end, page.status);
    let from = match &page.token {
        None => 0,
        Some(t) => t
            .strip_prefix("queries-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= all.len())
            .ok_or_else(|| lake::QueryError::InvalidToken(t.clone()))?,
    };
    let to = (from + page.max).min(all.len());
    let queries: Vec<Value> = all[from..to]
        .iter()
        .map(|q| json!({"QueryId": q.id, "QueryStatus": q.status.as_str(), "CreationTime": q.created as f64 / 1000.0}))
        .collect();
    let mut v = json!({ "Queries": queries });
    if to < all.len() {
        v["NextToken"] = json!(format!("queries-{to:08}"));
    }
    Ok(v)
}
