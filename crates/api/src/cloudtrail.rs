//! The CloudTrail JSON 1.1 API: one match from operation to use case, split as the chain runs them —
//! reads against the live state, and calls that change the control plane against the state they are
//! given (a scratch copy first, then the real one; see `chain.rs`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::lookup::{encode_token, event_element, parse_lookup_request};
use crate::operation::Operation;
use crate::{App, CallContext, ControlPlane, blocking, channels, keys, trails};

/// A read: changes nothing.
pub(crate) async fn read(app: &Arc<App>, ctx: &CallContext, op: Operation, params: &Value) -> Result<Value, ApiError> {
    let cp = &app.control_plane;
    match op {
        Operation::LookupEvents => lookup_events(app, ctx, params).await,
        Operation::ListPublicKeys => keys::list_public_keys(app, ctx, params),
        Operation::GetChannel => channels::get(&cp.channels, params),
        Operation::ListChannels => channels::list(&cp.channels, params),
        _ => trails::call(&cp.trails, ctx, op, params).await,
    }
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
        _ => trails::call(&cp.trails, ctx, op, params).await,
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
