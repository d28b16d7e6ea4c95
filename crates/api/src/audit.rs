//! Self-audit: every call to opentrail's CloudTrail API becomes a CloudTrail record of its own, as AWS
//! records CloudTrail's API calls: who, from where, with what tool, what was asked and answered, and
//! whether it failed.

use std::sync::Arc;

use model::Record;
use serde_json::{Map, Value, json};
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
pub(crate) fn build(app: &App, ctx: &CallContext, call: &Call<'_>) -> Value {
    let mut r = Map::new();
    r.insert("eventVersion".into(), json!("1.11"));
    r.insert("userIdentity".into(), ctx.principal.user_identity());
    r.insert("eventTime".into(), json!(ctx.now.to_rfc3339()));
    r.insert("eventSource".into(), json!(call.event_source));
    r.insert("eventName".into(), json!(call.event_name));
    r.insert("awsRegion".into(), json!(app.config.region));
    r.insert("sourceIPAddress".into(), json!(ctx.source_ip));
    r.insert("userAgent".into(), json!(ctx.user_agent.as_deref().unwrap_or("")));
    if let Err(e) = call.result {
        r.insert("errorCode".into(), json!(e.code));
        r.insert("errorMessage".into(), json!(e.message));
    }
    let params = lower_camel(call.request);
    let params_empty = params.as_object().is_some_and(Map::is_empty);
    r.insert("requestParameters".into(), if params_empty { Value::Null } else { params });
    let response = match call.result {
        // CloudTrail leaves responseElements null for read-only calls (their answers can be huge).
        Ok(v) if !call.read_only && v.as_object().is_some_and(|o| !o.is_empty()) => lower_camel(v),
        _ => Value::Null,
    };
    r.insert("responseElements".into(), response);
    r.insert("requestID".into(), json!(ctx.request_id));
    r.insert("eventID".into(), json!(uuid::Uuid::new_v4().to_string()));
    r.insert("readOnly".into(), json!(call.read_only));
    r.insert("eventType".into(), json!("AwsApiCall"));
    r.insert("managementEvent".into(), json!(true));
    r.insert("recipientAccountId".into(), json!(app.config.account_id));
    r.insert("eventCategory".into(), json!("Management"));
    if let Some(tls) = &ctx.tls {
        r.insert(
            "tlsDetails".into(),
            json!({
                "tlsVersion": tls.version,
                "cipherSuite": tls.cipher_suite,
                "clientProvidedHostHeader": ctx.host.as_deref().or(tls.sni.as_deref()).unwrap_or(""),
            }),
        );
    }
    Value::Object(r)
}

/// Records the call. The write is queued without waiting for its fsync: the caller's answer does not
/// depend on it. A failure is logged and counted, never silent.
pub(crate) fn record(app: &Arc<App>, ctx: &CallContext, call: &Call<'_>) {
    let text = build(app, ctx, call).to_string();
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

    #[test]
    fn keys_become_lower_camel_recursively() {
        let v = json!({"TrailName": "t", "LookupAttributes": [{"AttributeKey": "EventName"}], "isX": 1});
        assert_eq!(
            lower_camel(&v),
            json!({"trailName": "t", "lookupAttributes": [{"attributeKey": "EventName"}], "isX": 1})
        );
    }
}
