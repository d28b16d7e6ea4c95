//! The CloudTrail JSON 1.1 API: `POST /` with `X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Op>`
//! (botocore) or `CloudTrail_20131101.<Op>` (the Smithy-generated SDKs: JavaScript v3, Go v2, Rust, Java v2).
//! One match from operation name to use case; authorization, self-audit and metrics wrap every call.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use crate::audit::{self, Call};
use crate::error::ApiError;
use crate::ingest::authorize;
use crate::lookup::{encode_token, event_element, parse_lookup_request};
use crate::{App, CallContext, blocking, channels, error_response, json_response, keys, trails};

/// The target names the service shape, optionally qualified by its namespace; AWS accepts both spellings.
const TARGET_NAMESPACE: &str = "com.amazonaws.cloudtrail.v20131101.";
const TARGET_PREFIX: &str = "CloudTrail_20131101.";

/// The operations this server implements.
const OPERATIONS: &[&str] = &[
    "LookupEvents",
    "ListPublicKeys",
    "CreateChannel",
    "GetChannel",
    "ListChannels",
    "UpdateChannel",
    "DeleteChannel",
];

pub(crate) async fn dispatch(app: &Arc<App>, ctx: &CallContext, target: &str, body: &[u8]) -> Response {
    let Some(op) = target
        .strip_prefix(TARGET_NAMESPACE)
        .unwrap_or(target)
        .strip_prefix(TARGET_PREFIX)
        .filter(|op| OPERATIONS.contains(op) || trails::OPERATIONS.contains(op))
    else {
        return error_response(&ApiError::client(
            "UnknownOperationException",
            format!("operation '{target}' is not supported by this endpoint"),
        ));
    };
    let params = match parse_params(body) {
        Ok(p) => p,
        Err(e) => {
            app.store.metrics().record_request(op, e.code);
            return error_response(&e);
        }
    };
    // Throttled calls are refused before authorization and are audited like any other failure.
    let admitted = app
        .rate_limiter
        .check(&ctx.principal.access_key_id, op, ctx.now.0)
        .map_err(ApiError::from)
        .and_then(|()| authorize(ctx, &format!("cloudtrail:{op}")));
    let result = match admitted {
        Ok(()) => call(app, ctx, op, &params).await,
        Err(e) => Err(e),
    };
    audit::record(
        app,
        ctx,
        &Call {
            event_source: "cloudtrail.amazonaws.com",
            event_name: op,
            read_only: service::policy::is_read_only_operation(op),
            request: &params,
            result: &result,
        },
    );
    match result {
        Ok(v) => {
            app.store.metrics().record_request(op, "200");
            json_response(&v)
        }
        Err(e) => {
            app.store.metrics().record_request(op, e.code);
            error_response(&e)
        }
    }
}

/// The body is a JSON object; an empty body means `{}`.
fn parse_params(body: &[u8]) -> Result<Value, ApiError> {
    if body.trim_ascii().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::serialization("request body must be a JSON object")),
        Err(e) => Err(ApiError::serialization(format!("request body is not valid JSON: {e}"))),
    }
}

async fn call(app: &Arc<App>, ctx: &CallContext, op: &str, params: &Value) -> Result<Value, ApiError> {
    match op {
        "LookupEvents" => lookup_events(app, ctx, params).await,
        "ListPublicKeys" => keys::list_public_keys(app, ctx, params),
        "CreateChannel" => channels::create(app, ctx, params).await,
        "GetChannel" => channels::get(app, params),
        "ListChannels" => channels::list(app, params),
        "UpdateChannel" => channels::update(app, params).await,
        "DeleteChannel" => channels::delete(app, params).await,
        op if trails::OPERATIONS.contains(&op) => trails::call(app, ctx, op, params).await,
        other => Err(ApiError::client("UnknownOperationException", format!("operation '{other}' is not supported"))),
    }
}

async fn lookup_events(app: &Arc<App>, ctx: &CallContext, params: &Value) -> Result<Value, ApiError> {
    let window_start = app.config.lookup_window_days.map(|d| model::EventTime(ctx.now.0 - i64::from(d) * 86_400_000));
    let req = parse_lookup_request(params, window_start)?;
    let store = app.store.clone();
    let query = req.query.clone();
    let page = blocking(move || store.lookup(&query, req.max_results, req.after)).await??;
    let events: Vec<Value> = page.events.iter().map(event_element).collect();
    let mut out = json!({ "Events": events });
    if let Some(next) = page.next {
        out["NextToken"] = json!(encode_token(next, &req.query));
    }
    Ok(out)
}
