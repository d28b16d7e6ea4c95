//! The CloudTrail JSON 1.1 API: one match from operation to use case, split as the chain runs them —
//! reads against the live state, and calls that change the control plane against the state they are
//! given (a staging copy, which the chain commits once the call's audit record is durable; see `chain.rs`).

use std::sync::Arc;

use serde_json::Value;

use crate::chain::Reply;
use crate::cloudtrail_lake as lake_ops;
use crate::error::ApiError;
use crate::lookup::{MAX_RESULTS, NATIVE_MAX_RESULTS, encode_page, parse_lookup_request};
use crate::operation::Operation;
use crate::{App, CallContext, ControlPlane, blocking, channels, keys, trails};

/// A read: changes nothing.
pub(crate) async fn read(app: &Arc<App>, ctx: &CallContext, op: Operation, params: &Value) -> Result<Reply, ApiError> {
    let cp = &app.control_plane;
    let answer = match op {
        Operation::LookupEvents => return lookup_events(app, ctx, params, MAX_RESULTS).await,
        Operation::NativeLookupEvents => return lookup_events(app, ctx, params, NATIVE_MAX_RESULTS).await,
        Operation::ListPublicKeys => keys::list_public_keys(app, ctx, params),
        Operation::GetChannel => channels::get(&cp.channels, params),
        Operation::ListChannels => channels::list(&cp.channels, params),
        Operation::GetTrailStatus => trails::status(app, params).await,
        Operation::GetEventDataStore => lake_ops::get(&cp.event_data_stores, params),
        Operation::ListEventDataStores => lake_ops::list(&cp.event_data_stores, params),
        Operation::StartQuery => lake_ops::start_query(app, ctx, params).await,
        Operation::DescribeQuery => lake_ops::describe_query(app, ctx, params).await,
        Operation::GetQueryResults => lake_ops::get_query_results(app, params),
        Operation::CancelQuery => lake_ops::cancel_query(app, params),
        Operation::ListQueries => lake_ops::list_queries(app, params),
        _ => trails::call(&cp.trails, ctx, op, params).await,
    };
    answer.map(Reply::Json)
}

/// A call that changes trails or channels, run against `cp`.
pub(crate) async fn control(
    cp: &ControlPlane,
    ctx: &CallContext,
    op: Operation,
    params: &Value,
) -> Result<Value, ApiError> {
    match op {
        Operation::CreateChannel => channels::create(&cp.channels, ctx, params).await,
        Operation::UpdateChannel => channels::update(&cp.channels, params).await,
        Operation::DeleteChannel => channels::delete(&cp.channels, params).await,
        Operation::CreateEventDataStore => lake_ops::create(&cp.event_data_stores, ctx, params).await,
        Operation::UpdateEventDataStore => lake_ops::update(&cp.event_data_stores, ctx, params).await,
        Operation::DeleteEventDataStore => lake_ops::delete(&cp.event_data_stores, ctx, params).await,
        Operation::StartEventDataStoreIngestion => {
            lake_ops::set_ingestion(&cp.event_data_stores, ctx, params, true).await
        }
        Operation::StopEventDataStoreIngestion => {
            lake_ops::set_ingestion(&cp.event_data_stores, ctx, params, false).await
        }
        _ => trails::call(&cp.trails, ctx, op, params).await,
    }
}

/// LookupEvents (pages of up to `max_results`: the CloudTrail API's 50 or the native API's more), its
/// answer written straight from the page (the hot path of event history).
async fn lookup_events(
    app: &Arc<App>,
    ctx: &CallContext,
    params: &Value,
    max_results: usize,
) -> Result<Reply, ApiError> {
    let req = parse_lookup_request(params, crate::lookup::window_start(app, ctx), max_results)?;
    let store = app.store.clone();
    let body = blocking(move || {
        let page = store.lookup(&req.query, req.max_results, req.after)?;
        encode_page(&page, &req.query).map_err(|e| ApiError::internal(&e))
    })
    .await??;
    let content_type = if max_results == MAX_RESULTS { "application/x-amz-json-1.1" } else { "application/json" };
    Ok(Reply::Encoded { body, content_type, headers: Vec::new(), summary: Value::Null })
}
