//! The `cloudtrail-data` REST-JSON surface: `POST /PutAuditEvents?channelArn=…&externalId=…` with
//! `{"auditEvents":[{id, eventData, eventDataChecksum?}]}`, answered per event with `successful[]` and
//! `failed[]`. The events are stored with the `Channel` provenance, in one group commit with the call's own
//! audit record.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::Uri;
use model::Provenance;
use serde_json::json;
use service::audit_events;
use service::channels::IngestionAttempt;
use service::{IngestItem, IngestOutcome};

use crate::chain::{Prepared, Reply};
use crate::error::{ApiError, audit_event_error_code};
use crate::wire::data::{PutAuditEventsQuery, PutAuditEventsRequest, WireAuditEvent};
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
    let channel_ref = PutAuditEventsQuery::from_uri(uri)?.channel()?;
    let channel = app.control_plane.channels.get(&channel_ref)?;
    let region = app.config.region.clone();
    let now = ctx.now;
    let channel_for_build = channel.clone();
    let app2 = app.clone();
    let (items, accepted, failures, ids) = blocking(move || {
        let events = Vec::<WireAuditEvent>::try_from(PutAuditEventsRequest::from_slice(&body)?)?;
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
                Err(e) => failures.push(Failure { index, code: audit_event_error_code(&e), message: e.to_string() }),
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
