//! The native API: `POST /v1/events` (NDJSON, JSON array or `{"Records":[…]}`, plain or gzip) answering
//! with the accepted eventIDs and the failed entries; `GET /v1/events/{eventId}` with the record's
//! provenance.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use model::{Provenance, Record};
use service::batch::GunzipError;
use service::{IngestItem, IngestOutcome, batch};

use crate::body::{BodyBuf, BudgetPermit};
use crate::chain::{Prepared, Reply};
use crate::error::ApiError;
use crate::wire::WireError;
use crate::{App, CallContext, blocking, header_str};

/// A record that could not be stored, as reported back to the client.
pub(crate) struct Failed {
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

/// Splits and validates a body off the async workers: the records to store (stamped with `provenance`)
/// and the failures.
///
/// A gzip body is decoded under `[server] max_decoded_bytes` into a [`BodyBuf`], its decoded bytes
/// taken from the body memory budget before they are kept; a body of more than `max_records_per_request`
/// records is refused whole. The returned permit keeps holding the decoded size while the parsed records
/// (about as large) live, until they are stored.
pub(crate) async fn parse_body(
    app: &App,
    headers: &HeaderMap,
    body: Bytes,
    provenance: Provenance,
) -> Result<(Vec<IngestItem>, Vec<Failed>, usize, BudgetPermit), ApiError> {
    let gzip_header = header_str(headers, "content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let max_decoded = app.config.server.max_decoded_bytes;
    let max_records = app.config.server.max_records_per_request;
    let mut permit = app.body_budget.permit();
    blocking(move || {
        let decoded;
        let bytes: &[u8] = if gzip_header || batch::looks_gzipped(&body) {
            let mut out = BodyBuf::new(None, max_decoded)?;
            batch::gunzip_limited_with(&body, max_decoded, |chunk| {
                permit.hold_blocking_or_free(out.len() + chunk.len(), || out.free())?;
                out.extend_from_slice(chunk)
            })
            .map_err(|e| match e {
                GunzipError::Batch(e) => ApiError::from(e),
                GunzipError::Sink(e) => ApiError::from(e),
            })?;
            decoded = out;
            decoded.as_slice()
        } else {
            &body
        };
        let parts = batch::split_batch_limited(bytes, max_records)?;
        let total = parts.len();
        let mut items = Vec::with_capacity(total);
        let mut failed = Vec::new();
        for (index, raw) in parts.into_iter().enumerate() {
            let mut assigned = false;
            match Record::parse(raw, || {
                assigned = true;
                uuid::Uuid::new_v4().to_string()
            }) {
                Ok(mut record) => {
                    record.fields.provenance = provenance.clone();
                    items.push(IngestItem { record, client_id: !assigned })
                }
                Err(e) => failed.push(Failed { index, code: e.code(), message: e.to_string() }),
            }
        }
        Ok((items, failed, total, permit))
    })
    .await?
}

/// The answer of `POST /v1/events`.
#[derive(serde::Serialize)]
struct PutEventsAnswer<'a> {
    accepted: Vec<Accepted<'a>>,
    failed: Vec<FailedEntry<'a>>,
    stored: usize,
    duplicates: usize,
}

#[derive(serde::Serialize)]
struct Accepted<'a> {
    index: usize,
    #[serde(rename = "eventID")]
    event_id: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct FailedEntry<'a> {
    index: usize,
    error_code: &'a str,
    error_message: &'a str,
}

/// Splits and checks the batch; the records that pass are stored by the chain, with the `Ingest`
/// provenance of the caller, in one group commit with the call's own audit record.
pub(crate) async fn prepare(
    app: &Arc<App>,
    ctx: &CallContext,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Prepared, ApiError> {
    let provenance = Provenance::Ingest { principal: ctx.principal.arn.clone() };
    let (items, failed, total, records_permit) = parse_body(app, headers, body, provenance).await?;
    let summary = serde_json::json!({"records": total, "valid": items.len(), "failed": failed.len()});
    let app = app.clone();
    let finish = move |outcome: IngestOutcome| {
        // The parsed records held budget until they were stored.
        drop(records_permit);
        let metrics = app.store.metrics();
        for f in &failed {
            metrics.record_rejected(f.code, 1);
        }
        let failed_idx: std::collections::HashSet<usize> = failed.iter().map(|f| f.index).collect();
        // Written straight from borrowed fields: a batch of thousands of records would otherwise build a
        // `serde_json::Value` map per record just to print it.
        let answer = PutEventsAnswer {
            accepted: (0..total)
                .filter(|i| !failed_idx.contains(i))
                .zip(outcome.event_ids.iter())
                .map(|(index, id)| Accepted { index, event_id: id })
                .collect(),
            failed: failed
                .iter()
                .map(|f| FailedEntry { index: f.index, error_code: f.code, error_message: &f.message })
                .collect(),
            stored: outcome.stored,
            duplicates: outcome.duplicates,
        };
        let body = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(&e))?;
        let summary =
            serde_json::json!({"stored": outcome.stored, "duplicates": outcome.duplicates, "failed": failed.len()});
        Ok(Reply::Encoded { body, content_type: "application/json", headers: Vec::new(), summary })
    };
    Ok(Prepared { items, summary, finish: Box::new(finish) })
}

/// `GET /v1/events/{eventId}`: the stored record exactly as stored; its provenance in
/// `x-opentrail-provenance`.
pub(crate) async fn get_event(app: &Arc<App>, id: String) -> Result<Reply, ApiError> {
    let store = app.store.clone();
    let id_owned = id.clone();
    match blocking(move || store.get(&id_owned)).await?? {
        Some(e) => Ok(Reply::Encoded {
            body: e.json.into_bytes(),
            content_type: "application/json",
            headers: vec![("x-opentrail-provenance", e.fields.provenance.to_text())],
            summary: serde_json::Value::Null,
        }),
        None => Err(WireError::EventNotFound { event_id: id }.into()),
    }
}
