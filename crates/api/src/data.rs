//! The `cloudtrail-data` REST-JSON surface: `POST /PutAuditEvents?channelArn=…&externalId=…` with
//! `{"auditEvents":[{id, eventData, eventDataChecksum?}]}`, answered per event with `successful[]` and
//! `failed[]`. The events are stored with the `Channel` provenance, in one group commit with the call's own
//! audit record.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Query;
use axum::http::Uri;
use model::Provenance;
use serde_json::{Value, json};
use service::audit_events::{self, AuditEvent, AuditEventError, MAX_EVENTS_PER_REQUEST, MAX_REQUEST_BYTES};
use service::channels::IngestionAttempt;
use service::{IngestItem, IngestOutcome};

use crate::chain::{Prepared, Reply};
use crate::error::ApiError;
use crate::{App, CallContext, blocking};

/// A failed event: its index in the request, its AWS error code and message.
struct Failure {
    index: usize,
    code: &'static str,
    message: String,
}

/// Checks the request and its events; the events that pass become records of the channel, stored by the
/// chain with the call's own audit record.
pub(crate) async fn prepare(app: &Arc<App>, ctx: &CallContext, uri: &Uri, body: Bytes) -> Result<Prepared, ApiError> {
    let query = Query::<HashMap<String, String>>::try_from_uri(uri)
        .map_err(|e| ApiError::validation(format!("query string is malformed: {e}")))?
        .0;
    let channel_ref = query
        .get("channelArn")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::client("InvalidChannelARN", "the channelArn query parameter is required"))?;
    if let Some(ext) = query.get("externalId") {
        // Accepted and checked, not enforced: channels have no resource policies here.
        validate_external_id(ext)?;
    }
    let channel = app.control_plane.channels.get(channel_ref)?;
    if body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::validation(format!(
            "request body is {} bytes; PutAuditEvents accepts at most {MAX_REQUEST_BYTES}",
            body.len()
        )));
    }
    let region = app.config.region.clone();
    let now = ctx.now;
    let channel_for_build = channel.clone();
    let app2 = app.clone();
    let (items, accepted, failures, ids) = blocking(move || {
        let events = parse_body(&body)?;
        let mut items = Vec::new();
        let mut accepted = Vec::new();
        let mut failures = Vec::new();
        let provenance = Provenance::Channel { channel: channel_for_build.arn.clone() };
        for (index, ev) in events.iter().enumerate() {
            match audit_events::build_record(&app2.event_id_key, &channel_for_build, &region, &ev.as_domain(), now) {
                Ok(mut record) => {
                    accepted.push((ev.id.clone(), record.fields.event_id.clone()));
                    record.fields.provenance = provenance.clone();
                    items.push(IngestItem { record, client_id: true });
                }
                Err(e) => failures.push(Failure { index, code: error_code(&e), message: e.to_string() }),
            }
        }
        // Every event's id, for reporting failures by id below.
        let ids: Vec<String> = events.into_iter().map(|e| e.id).collect();
        Ok::<_, ApiError>((items, accepted, failures, ids))
    })
    .await??;
    let summary = json!({
        "channelArn": channel.arn,
        "successfulCount": accepted.len(),
        "failedCount": failures.len(),
    });
    let app = app.clone();
    let finish = move |_outcome: IngestOutcome| {
        // Retried events were dropped by the store's eventID dedupe and answer as successful again.
        let metrics = app.store.metrics();
        for f in &failures {
            metrics.record_rejected(f.code, 1);
        }
        let attempt = IngestionAttempt {
            at: now,
            last_event_id: ids.last().map(|id| app.event_id_key.event_id_for(&channel.arn, id)).unwrap_or_default(),
            last_success_event_id: accepted.last().map(|(_, eid)| eid.clone()),
            last_error_code: failures.last().map(|f| f.code.to_string()),
        };
        let app2 = app.clone();
        let (channel_id, channel_arn) = (channel.id.clone(), channel.arn.clone());
        // The events are stored; only the status shown by GetChannel waits for this write, which takes the
        // control plane's turn so it is not lost under a channel call's commit.
        tokio::task::spawn_blocking(move || {
            let _turn = app2.control_plane_turn.blocking_lock();
            if let Err(e) = app2.control_plane.channels.record_ingestion(&channel_id, attempt) {
                tracing::error!(channel = %channel_arn, error = %e, "channel ingestion status not saved");
            }
        });
        Ok(Reply::Json(json!({
            "successful": accepted.iter().map(|(id, eid)| json!({"id": id, "eventID": eid})).collect::<Vec<_>>(),
            "failed": failures
                .iter()
                .map(|f| json!({"id": ids[f.index], "errorCode": f.code, "errorMessage": f.message}))
                .collect::<Vec<_>>(),
        })))
    };
    Ok(Prepared { items, summary, finish: Box::new(finish) })
}

/// The request body: 1..100 events with valid, distinct ids. A broken request fails as a whole; a
/// broken event (checksum, eventData) fails alone, later.
fn parse_body(body: &[u8]) -> Result<Vec<WireEvent>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("request body is not valid JSON: {e}")))?;
    let Some(Value::Array(list)) = v.get("auditEvents") else {
        return Err(ApiError::validation("auditEvents is required and must be a list"));
    };
    if list.is_empty() || list.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::validation(format!(
            "auditEvents must hold 1 to {MAX_EVENTS_PER_REQUEST} events, got {}",
            list.len()
        )));
    }
    let mut events = Vec::with_capacity(list.len());
    let mut seen = HashSet::new();
    for (i, item) in list.iter().enumerate() {
        let field = |name: &str| match item.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::serialization(format!("auditEvents[{i}].{name} must be a string"))),
        };
        let id = field("id")?.ok_or_else(|| ApiError::validation(format!("auditEvents[{i}].id is required")))?;
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ApiError::validation(format!(
                "auditEvents[{i}].id '{id}' must be 1 to 128 characters of [-_A-Za-z0-9]"
            )));
        }
        if !seen.insert(id) {
            return Err(ApiError::client(
                "DuplicatedAuditEventId",
                format!("two or more entries in the request have the id '{id}'"),
            ));
        }
        let event_data = field("eventData")?
            .ok_or_else(|| ApiError::validation(format!("auditEvents[{i}].eventData is required")))?;
        let checksum = field("eventDataChecksum")?;
        events.push(WireEvent {
            id: id.to_string(),
            event_data: event_data.to_string(),
            checksum: checksum.map(str::to_string),
        });
    }
    Ok(events)
}

/// One audit event as parsed from the body.
struct WireEvent {
    id: String,
    event_data: String,
    checksum: Option<String>,
}

impl WireEvent {
    fn as_domain(&self) -> AuditEvent<'_> {
        AuditEvent { id: &self.id, event_data: &self.event_data, checksum: self.checksum.as_deref() }
    }
}

fn validate_external_id(ext: &str) -> Result<(), ApiError> {
    let ok = (2..=1224).contains(&ext.len()) && ext.chars().all(|c| c.is_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok { Ok(()) } else { Err(ApiError::validation("externalId must be 2 to 1224 characters of [\\w+=,.@:/-]")) }
}

/// The per-event error codes of `failed[].errorCode`.
fn error_code(e: &AuditEventError) -> &'static str {
    match e {
        AuditEventError::ChecksumMismatch => "InvalidChecksum",
        AuditEventError::MissingField { .. } => "FieldNotFound",
        AuditEventError::TooLong { .. } => "FieldTooLong",
        AuditEventError::Invalid { .. } => "InvalidData",
        AuditEventError::WrongRecipient { .. } => "InvalidRecipient",
    }
}
