//! Self-audit: every call to opentrail's CloudTrail API becomes a CloudTrail record of its own, as AWS
//! records CloudTrail's API calls: who, from where, with what tool, what was asked and answered, and
//! whether it failed.

use std::sync::Arc;

use model::Record;
use model::cloudtrail::{CloudTrailEvent, TlsDetails};
use serde_json::{Map, Value};
use service::IngestItem;

use crate::error::ApiError;
use crate::{App, CallContext};

/// What one API call did, for its audit record.
pub(crate) struct Call<'a> {
    pub event_source: &'static str,
    pub event_name: &'a str,
    pub read_only: bool,
    pub request: &'a Value,
    pub result: &'a Result<Value, ApiError>,
}

/// Builds the record for a call.
pub(crate) fn build(app: &App, ctx: &CallContext, call: &Call<'_>) -> CloudTrailEvent {
    let params = lower_camel(call.request);
    let params_empty = params.as_object().is_some_and(Map::is_empty);
    let response = match call.result {
        // CloudTrail leaves responseElements null for read-only calls (their answers can be huge).
        Ok(v) if !call.read_only && v.as_object().is_some_and(|o| !o.is_empty()) => lower_camel(v),
        _ => Value::Null,
    };
    let error = call.result.as_ref().err();
    CloudTrailEvent {
        event_version: Some("1.11".into()),
        user_identity: Some(ctx.principal.user_identity()),
        event_time: Some(ctx.now.to_rfc3339()),
        event_source: Some(call.event_source.into()),
        event_name: Some(call.event_name.into()),
        aws_region: Some(app.config.region.clone()),
        source_ip_address: Some(ctx.source_ip.clone()),
        user_agent: Some(ctx.user_agent.clone().unwrap_or_default()),
        error_code: error.map(|e| e.code.to_string()),
        error_message: error.map(|e| e.message.clone()),
        request_parameters: Some(if params_empty { Value::Null } else { params }),
        response_elements: Some(response),
        request_id: Some(ctx.request_id.clone()),
        event_id: Some(uuid::Uuid::new_v4().to_string()),
        read_only: Some(call.read_only),
        event_type: Some("AwsApiCall".into()),
        management_event: Some(true),
        recipient_account_id: Some(app.config.account_id.clone()),
        event_category: Some("Management".into()),
        tls_details: ctx.tls.as_ref().map(|tls| TlsDetails {
            tls_version: Some(tls.version.clone()),
            cipher_suite: Some(tls.cipher_suite.clone()),
            client_provided_host_header: Some(ctx.host.clone().or_else(|| tls.sni.clone()).unwrap_or_default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Records the call. The write is queued without waiting for its fsync: the caller's answer does not
/// depend on it. A failure is logged and counted, never silent.
pub(crate) fn record(app: &Arc<App>, ctx: &CallContext, call: &Call<'_>) {
    let text = match serde_json::to_string(&build(app, ctx, call)) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, operation = call.event_name, "self-audit record cannot be encoded");
            return;
        }
    };
    let record = match Record::parse(text.as_bytes(), fresh_event_id) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, operation = call.event_name, "self-audit record is invalid");
            return;
        }
    };
    let app = app.clone();
    let op = call.event_name.to_string();
    tokio::spawn(async move {
        if let Err(e) = app.store.ingest(vec![IngestItem { record, client_id: false }]).await {
            app.store.metrics().record_rejected("SelfAuditNotStored", 1);
            tracing::error!(error = %e, operation = %op, "self-audit record not stored");
        }
    });
}

/// Never called in practice: `build` always sets eventID.
fn fresh_event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// CloudTrail writes requestParameters/responseElements with lower-camel keys (`trailName`, not `TrailName`).
fn lower_camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let mut key = String::with_capacity(k.len());
                    let mut chars = k.chars();
                    if let Some(first) = chars.next() {
                        key.extend(first.to_lowercase());
                        key.push_str(chars.as_str());
                    }
                    (key, lower_camel(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_camel).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_become_lower_camel_recursively() {
        let v = json!({"TrailName": "t", "LookupAttributes": [{"AttributeKey": "EventName"}], "isX": 1});
        assert_eq!(
            lower_camel(&v),
            json!({"trailName": "t", "lookupAttributes": [{"attributeKey": "EventName"}], "isX": 1})
        );
    }
}
