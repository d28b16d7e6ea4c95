//! The one request path every surface takes: authenticate from the headers → read the body through the
//! payload hash, within the operation's limit → verify the signature → authorize → rate-limit → call →
//! audit → metrics → answer, with every error named by the one table in `error.rs`.
//!
//! Architecture invariant: no authenticated call leaves without its audit record, failures included. A
//! read's record is queued for the next group commit before the answer goes out; a call that changes
//! control-plane state is first run against a staging copy of the state (its state file written beside
//! the real one), its record made durable, and only then committed; stored records and the record of the
//! call that stored them share one group commit. A record that cannot be written refuses the call (503)
//! and changes nothing, unless `[audit] fail_open_reads` lets a read through.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use service::{AuditOutcome, IngestItem, IngestOutcome};

use crate::audit::{self, Facts, S3Facts};
use crate::auth;
use crate::error::ApiError;
use crate::operation::{Effect, Operation, Requested, Surface};
use crate::{App, CallContext, TlsInfo, blocking, cloudtrail, data, header_str, history, ingest, s3};

/// A call's answer, before it is encoded for its surface.
pub(crate) enum Reply {
    /// A JSON answer; for calls that change something, also the audit record's `responseElements`.
    Json(Value),
    /// An answer already encoded (the native API), with what the audit record says of it.
    Encoded { body: Vec<u8>, content_type: &'static str, headers: Vec<(&'static str, String)>, summary: Value },
    /// A whole HTTP answer, its body possibly streamed (the S3 read API: objects, ranges, HEAD); reads only,
    /// so the audit record says nothing of it.
    Http { status: axum::http::StatusCode, headers: Vec<(String, String)>, body: Body },
}

/// The `responseElements` of an answer that has none.
static NO_SUMMARY: Value = Value::Null;

impl Reply {
    fn summary(&self) -> &Value {
        match self {
            Reply::Json(v) => v,
            Reply::Encoded { summary, .. } => summary,
            Reply::Http { .. } => &NO_SUMMARY,
        }
    }
}

/// Records to store with a call's own audit record, and how to answer once they are durable.
pub(crate) struct Prepared {
    pub items: Vec<IngestItem>,
    /// The audit record's `responseElements`, known before storing (counts of accepted and failed).
    pub summary: Value,
    pub finish: Box<dyn FnOnce(IngestOutcome) -> Result<Reply, ApiError> + Send>,
}

/// Serves one request that is not `/healthz` or `/metrics`, and logs it in one line at info: method,
/// operation, principal (`-` before authentication), status, latency.
pub(crate) async fn serve(
    app: &Arc<App>,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    request_id: &str,
    parts: Parts,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let method = parts.method.clone();
    let requested = Requested::parse(&parts.method, parts.uri.path(), parts.uri.query().unwrap_or(""), &parts.headers);
    let (resp, principal) = authenticate_and_call(app, peer, tls, request_id, &requested, parts, body).await;
    tracing::info!(
        method = %method,
        operation = %requested.metric_name(),
        principal = %principal.as_deref().unwrap_or("-"),
        status = resp.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        %request_id,
        "request"
    );
    resp
}

/// The chain, from authentication to the answer; also the caller's ARN once authenticated.
async fn authenticate_and_call(
    app: &Arc<App>,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    request_id: &str,
    requested: &Requested,
    parts: Parts,
    body: Body,
) -> (Response, Option<String>) {
    let surface = requested.surface();
    let unaudited = |e: ApiError| {
        app.store.metrics().record_request("Authenticate", e.code);
        (encode(requested, request_id, Err(e)), None)
    };
    // 1. Authenticate from the headers: an unsigned or unknown caller never gets its body read.
    let mut pending = match auth::verify_head(app, &parts, surface) {
        Ok(p) => p,
        Err(e) => return unaudited(e),
    };
    // 2. The body, through the payload hash, within the operation's limit and time.
    // The permit holds the body's bytes against `[server] body_memory_bytes` until the call is answered.
    let limit = requested.max_body_bytes(&app.config.server);
    let (body, _held) = match crate::body::read_request_body(app, body, limit, |chunk| pending.update(chunk)).await {
        Ok(b) => b,
        Err(e) => return unaudited(e),
    };
    // 3. The signature over all of it.
    let principal = match auth::finish(app, pending) {
        Ok(p) => p,
        Err(e) => return unaudited(e),
    };
    let ctx = CallContext::new(app, peer, tls, request_id, &parts.headers, principal, None);
    // 4. From here on every call is audited.
    let resp = call(app, &ctx, requested, &parts, body).await;
    (resp, Some(ctx.principal.arn))
}

/// A call of the web console: authenticated by its session (`console.rs` checked the cookie, the CSRF token
/// and the Origin) instead of SigV4, then the same chain: body within the operation's limit → authorize →
/// rate-limit → call → audit (with `sessionCredentialFromConsole`) → answer. Logged as [`serve`] logs.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_console(
    app: &Arc<App>,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    request_id: &str,
    requested: &Requested,
    principal: service::Principal,
    signed_in: model::EventTime,
    parts: Parts,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let limit = requested.max_body_bytes(&app.config.server);
    let (body, _held) = match crate::body::read_request_body(app, body, limit, |_| {}).await {
        Ok(b) => b,
        Err(e) => {
            app.store.metrics().record_request("Authenticate", e.code);
            return encode(requested, request_id, Err(e));
        }
    };
    let ctx = CallContext::new(app, peer, tls, request_id, &parts.headers, principal, Some(signed_in));
    let resp = call(app, &ctx, requested, &parts, body).await;
    tracing::info!(
        method = %parts.method,
        operation = %requested.metric_name(),
        principal = %ctx.principal.arn,
        console = true,
        status = resp.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        %request_id,
        "request"
    );
    resp
}

async fn call(app: &Arc<App>, ctx: &CallContext, requested: &Requested, parts: &Parts, body: Bytes) -> Response {
    let (op, event_id) = match requested {
        Requested::Known { op, event_id, .. } => (*op, event_id.clone()),
        Requested::Unknown { reason, .. } => {
            let e = ApiError::from(reason.clone());
            return audit_and_answer(app, ctx, requested, &Value::Null, Err(e)).await;
        }
    };
    // What the record says was asked; a body that is not JSON is itself the error.
    let params = match request_parameters(op, requested, parts, &body, event_id.as_deref()) {
        Ok(p) => p,
        Err(e) => return audit_and_answer(app, ctx, requested, &Value::Null, Err(e)).await,
    };
    if let Err(e) = admit(app, ctx, op) {
        return audit_and_answer(app, ctx, requested, &params, Err(e)).await;
    }
    match op.effect() {
        Effect::Read => {
            let result = match op {
                Operation::GetEvent => ingest::get_event(app, event_id.unwrap_or_default()).await,
                Operation::GetEventCounts => history::event_counts(app, ctx, &parts.uri).await,
                _ if op.surface() == Surface::S3 => s3::read(app, op, requested.s3_address(), parts).await,
                _ => cloudtrail::read(app, ctx, op, &params).await,
            };
            audit_and_answer(app, ctx, requested, &params, result).await
        }
        Effect::Refused => {
            audit_and_answer(app, ctx, requested, &params, Err(ApiError::s3_write_once(op.name()))).await
        }
        Effect::ControlPlane if op == Operation::RotateSigningKey => {
            rotate_signing_key(app, ctx, requested, op, &params).await
        }
        Effect::ControlPlane => control_plane(app, ctx, requested, op, &params).await,
        Effect::Records => {
            let prepared = match op {
                Operation::PutAuditEvents => data::prepare(app, ctx, &parts.uri, body).await,
                _ => ingest::prepare(app, ctx, &parts.headers, body).await,
            };
            match prepared {
                Ok(p) => store_records(app, ctx, requested, op, &params, p).await,
                Err(e) => audit_and_answer(app, ctx, requested, &params, Err(e)).await,
            }
        }
    }
}

/// Authorization, rate limits, and (for calls that write) whether the journal can take the record at all.
fn admit(app: &App, ctx: &CallContext, op: Operation) -> Result<(), ApiError> {
    if op.rate_limited() {
        app.rate_limiter.check(&ctx.principal.access_key_id, op.name(), ctx.now.0)?;
    }
    authorize(ctx, &op.action())?;
    if op.effect() != Effect::Read {
        app.store.admit_audit().map_err(ApiError::from)?;
    }
    Ok(())
}

/// Checks the caller may perform `action`; the denial is AWS-shaped.
pub(crate) fn authorize(ctx: &CallContext, action: &str) -> Result<(), ApiError> {
    match ctx.principal.authorize(action) {
        service::Decision::Allow => Ok(()),
        service::Decision::Deny { message } => Err(ApiError::access_denied(message)),
    }
}

/// `requestParameters` of the call: the JSON body for the CloudTrail API, the query for cloudtrail-data
/// (its events are stored, not copied into the record), the shape of the batch for the native API.
fn request_parameters(
    op: Operation,
    requested: &Requested,
    parts: &Parts,
    body: &[u8],
    event_id: Option<&str>,
) -> Result<Value, ApiError> {
    match op.surface() {
        // As CloudTrail records S3 calls: the bucket, the key, the Host, and the query's parameters.
        Surface::S3 => {
            let mut m = serde_json::Map::new();
            let query: Vec<(String, String)> =
                axum::extract::Query::try_from_uri(&parts.uri).map(|axum::extract::Query(q)| q).unwrap_or_default();
            for (k, v) in query {
                m.insert(k, Value::String(v));
            }
            if let Some(addr) = requested.s3_address() {
                m.insert("bucketName".into(), json!(addr.bucket));
                if let Some(k) = &addr.key {
                    m.insert("key".into(), json!(k));
                }
            }
            if let Some(h) = header_str(&parts.headers, "host") {
                m.insert("Host".into(), json!(h));
            }
            if let Some(r) = header_str(&parts.headers, "range") {
                m.insert("Range".into(), json!(r));
            }
            Ok(Value::Object(m))
        }
        Surface::CloudTrail => json_object(body),
        Surface::CloudTrailData => {
            let query: Vec<(String, String)> =
                axum::extract::Query::try_from_uri(&parts.uri).map(|axum::extract::Query(q)| q).unwrap_or_default();
            let mut m = serde_json::Map::new();
            for (k, v) in query {
                m.insert(k, Value::String(v));
            }
            m.insert("bodyBytes".into(), json!(body.len()));
            Ok(Value::Object(m))
        }
        Surface::Native => Ok(match op {
            // The native LookupEvents takes LookupEvents' JSON body.
            Operation::NativeLookupEvents => return json_object(body),
            Operation::GetEvent => json!({"eventID": event_id.unwrap_or_default()}),
            // The query as asked (a repeated `attr` is a list), even when it is malformed.
            Operation::GetEventCounts => {
                let mut m = serde_json::Map::new();
                for (k, v) in history::query_pairs(&parts.uri).unwrap_or_default() {
                    match m.get_mut(&k) {
                        Some(Value::Array(a)) => a.push(json!(v)),
                        Some(_) => {}
                        None if k == "attr" => {
                            m.insert(k, json!([v]));
                        }
                        None => {
                            m.insert(k, json!(v));
                        }
                    }
                }
                Value::Object(m)
            }
            Operation::RotateSigningKey => json!({}),
            _ => json!({
                "bodyBytes": body.len(),
                "contentType": header_str(&parts.headers, "content-type"),
                "contentEncoding": header_str(&parts.headers, "content-encoding"),
            }),
        }),
    }
}

/// A JSON object body (empty means `{}`): the parameters of a CloudTrail API call.
fn json_object(body: &[u8]) -> Result<Value, ApiError> {
    if body.trim_ascii().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::serialization("request body must be a JSON object")),
        Err(e) => Err(ApiError::serialization(format!("request body is not valid JSON: {e}"))),
    }
}

/// A call that changed nothing (a read, or any call that failed): its record is queued for the next group
/// commit before the answer goes out. A record that cannot be queued refuses the call, unless a read may
/// fail open.
async fn audit_and_answer(
    app: &Arc<App>,
    ctx: &CallContext,
    requested: &Requested,
    params: &Value,
    result: Result<Reply, ApiError>,
) -> Response {
    let read_only = match requested {
        Requested::Known { op, .. } => op.read_only(),
        Requested::Unknown { .. } => true,
    };
    let s3 = (requested.surface() == Surface::S3).then(|| {
        let object_call = matches!(requested, Requested::Known { op, .. } if op.is_s3_object_call());
        S3Facts::new(&app.config.account_id, requested.s3_address(), object_call)
    });
    let facts = Facts {
        surface: requested.surface(),
        event_name: requested.event_name(),
        read_only,
        request: params,
        result: result.as_ref().map(Reply::summary),
        s3,
    };
    let queued = audit::build(app, ctx, &facts).and_then(|(item, cut)| {
        let pending = app.store.submit_audit(item).map_err(ApiError::from)?;
        Ok((pending, cut))
    });
    // After a full disk, a queued record may meet the same fate: wait for it before answering.
    let queued = match queued {
        Ok((pending, cut)) if app.store.degraded() => match pending.wait().await {
            Ok(_) => Ok((None, cut)),
            Err(e) => Err(ApiError::from(e)),
        },
        Ok((pending, cut)) => Ok((Some(pending), cut)),
        Err(e) => Err(e),
    };
    let metrics = app.store.metrics();
    let result = match queued {
        Ok((pending, cut)) => {
            if cut {
                metrics.record_audit(AuditOutcome::Truncated);
            }
            match pending {
                None => metrics.record_audit(AuditOutcome::Durable),
                Some(pending) => {
                    metrics.record_audit(AuditOutcome::Queued);
                    let (app2, name) = (app.clone(), requested.event_name().to_string());
                    tokio::spawn(async move {
                        if let Err(e) = pending.wait().await {
                            app2.store.metrics().record_audit(AuditOutcome::Lost);
                            tracing::error!(error = %e, operation = %name, "audit record of an answered call was not stored");
                        }
                    });
                }
            }
            result
        }
        Err(e) if read_only && result.is_ok() && app.config.audit.fail_open_reads => {
            metrics.record_audit(AuditOutcome::FailedOpen);
            tracing::warn!(error = %e.message, operation = requested.event_name(), "read answered without its audit record (fail_open_reads)");
            result
        }
        Err(e) => {
            metrics.record_audit(AuditOutcome::Refused);
            tracing::warn!(error = %e.message, operation = requested.event_name(), "call refused: its audit record cannot be written");
            Err(refusal(e))
        }
    };
    finish(app, ctx, requested, result)
}

/// The answer to a call refused because its audit record could not be written.
fn refusal(e: ApiError) -> ApiError {
    if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE {
        e
    } else {
        ApiError::unavailable("the call's audit record cannot be written; nothing was changed", 5)
    }
}

/// A call that changes control-plane state: run against a staging copy (its state file written and fsync'd
/// beside the real one, so a full disk fails it here), record it durably, then commit it with a rename.
async fn control_plane(
    app: &Arc<App>,
    ctx: &CallContext,
    requested: &Requested,
    op: Operation,
    params: &Value,
) -> Response {
    // Serialized, so the state the staging copy started from is the state the commit replaces.
    let _turn = app.control_plane_turn.lock().await;
    let staged = app.control_plane.staging();
    let answer = match cloudtrail::control(&staged, ctx, op, params).await {
        // It failed without changing anything: an ordinary failed call.
        Err(e) => return audit_and_answer(app, ctx, requested, params, Err(e)).await,
        Ok(v) => v,
    };
    if let Err(refused) = record_durably(app, ctx, requested, op, params, &answer).await {
        return refused;
    }
    let cp = app.control_plane.clone();
    // A rename needs no space; only a broken disk fails here.
    let committed = blocking(move || cp.commit(staged)).await.and_then(|r| r.map_err(|e| ApiError::internal(&e)));
    if committed.is_ok() && op.changes_event_data_stores() {
        // Starting or stopping a view opens files and joins a thread: not on the async workers.
        let app = app.clone();
        let _ = blocking(move || app.sync_lake()).await;
    }
    applied_after_audit(app, ctx, requested, op, committed.map(|()| answer))
}

/// The answer to a call whose audit record is durable, once its effect was applied (`Ok`: the answer) or
/// failed to apply (counted and logged: the record says done, the state did not change).
fn applied_after_audit(
    app: &Arc<App>,
    ctx: &CallContext,
    requested: &Requested,
    op: Operation,
    applied: Result<Value, ApiError>,
) -> Response {
    match applied {
        Ok(answer) => finish(app, ctx, requested, Ok(Reply::Json(answer))),
        Err(e) => {
            app.store.metrics().record_audit(AuditOutcome::EffectFailedAfterAudit);
            tracing::error!(operation = op.name(), error = %e.message, "call recorded as done, then failed to apply");
            finish(app, ctx, requested, Err(e))
        }
    }
}

/// `RotateSigningKey`: a fresh key is generated (nothing changed yet), the call recorded durably with the
/// new key's fingerprint and start, and only then the key written and made the signer — the control-plane
/// order, with the key ring standing for the state files. Serialized with the other control-plane calls.
async fn rotate_signing_key(
    app: &Arc<App>,
    ctx: &CallContext,
    requested: &Requested,
    op: Operation,
    params: &Value,
) -> Response {
    let _turn = app.control_plane_turn.lock().await;
    let (keys, now) = (app.keys.clone(), ctx.now);
    let pending = match blocking(move || keys.prepare_rotation(now)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return audit_and_answer(app, ctx, requested, params, Err(ApiError::internal(&e))).await,
        Err(e) => return audit_and_answer(app, ctx, requested, params, Err(e)).await,
    };
    let answer = crate::keys::rotation_answer(pending.fingerprint(), pending.validity_start());
    if let Err(refused) = record_durably(app, ctx, requested, op, params, &answer).await {
        return refused;
    }
    let keys = app.keys.clone();
    let installed = blocking(move || keys.install(pending)).await.and_then(|r| r.map_err(|e| ApiError::internal(&e)));
    let answer = installed.map(|key| crate::keys::rotation_answer(key.fingerprint(), key.validity_start()));
    applied_after_audit(app, ctx, requested, op, answer)
}

/// Makes the audit record of a call that changes state durable before its effect is applied; `Err` is the
/// refusal to send when it cannot be written (nothing was changed).
async fn record_durably(
    app: &Arc<App>,
    ctx: &CallContext,
    requested: &Requested,
    op: Operation,
    params: &Value,
    answer: &Value,
) -> Result<(), Response> {
    let facts = Facts {
        surface: op.surface(),
        event_name: op.name(),
        read_only: false,
        request: params,
        result: Ok(answer),
        s3: None,
    };
    let metrics = app.store.metrics();
    let durable = match audit::build(app, ctx, &facts) {
        Ok((item, cut)) => {
            if cut {
                metrics.record_audit(AuditOutcome::Truncated);
            }
            match app.store.submit_audit(item) {
                Ok(pending) => pending.wait().await.map_err(ApiError::from),
                Err(e) => Err(ApiError::from(e)),
            }
        }
        Err(e) => Err(e),
    };
    if let Err(e) = durable {
        metrics.record_audit(AuditOutcome::Refused);
        tracing::warn!(error = %e.message, operation = op.name(), "call refused: its audit record cannot be written");
        return Err(finish(app, ctx, requested, Err(refusal(e))));
    }
    metrics.record_audit(AuditOutcome::Durable);
    Ok(())
}

/// Records and the call's own audit record, in one group commit.
async fn store_records(
    app: &Arc<App>,
    ctx: &CallContext,
    requested: &Requested,
    op: Operation,
    params: &Value,
    prepared: Prepared,
) -> Response {
    let facts = Facts {
        surface: op.surface(),
        event_name: op.name(),
        read_only: false,
        request: params,
        result: Ok(&prepared.summary),
        s3: None,
    };
    let (audit_item, cut) = match audit::build(app, ctx, &facts) {
        Ok(x) => x,
        Err(e) => return audit_and_answer(app, ctx, requested, params, Err(e)).await,
    };
    let mut items = prepared.items;
    items.push(audit_item);
    match app.store.ingest(items).await {
        Ok(mut outcome) => {
            let metrics = app.store.metrics();
            metrics.record_audit(AuditOutcome::Durable);
            if cut {
                metrics.record_audit(AuditOutcome::Truncated);
            }
            // The call's own record is the last item: it is not one of the caller's.
            outcome.event_ids.pop();
            outcome.stored = outcome.stored.saturating_sub(1);
            finish(app, ctx, requested, (prepared.finish)(outcome))
        }
        // Nothing was stored, the call's record included: record the refusal on its own.
        Err(e) => audit_and_answer(app, ctx, requested, params, Err(ApiError::from(e))).await,
    }
}

/// Metrics, then the answer in its surface's encoding.
fn finish(app: &App, ctx: &CallContext, requested: &Requested, result: Result<Reply, ApiError>) -> Response {
    let code = match &result {
        Ok(_) => "200",
        Err(e) => e.code,
    };
    app.store.metrics().record_request(requested.metric_name(), code);
    encode(requested, &ctx.request_id, result)
}

/// The answer as the surface's clients read it: AWS JSON 1.1 for the CloudTrail API, plain JSON for
/// cloudtrail-data and the native API; errors as `{"__type","message"}` plus `x-amzn-ErrorType`. The S3 read
/// API answers XML, its errors `<Error>` documents naming the resource and the request id.
pub(crate) fn encode(requested: &Requested, request_id: &str, result: Result<Reply, ApiError>) -> Response {
    let surface = requested.surface();
    let json_type = match surface {
        Surface::CloudTrail => "application/x-amz-json-1.1",
        Surface::CloudTrailData | Surface::Native | Surface::S3 => "application/json",
    };
    match result {
        Ok(Reply::Http { status, headers, body }) => {
            let mut resp = Response::new(body);
            *resp.status_mut() = status;
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (axum::http::HeaderName::try_from(k), HeaderValue::from_str(&v)) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp
        }
        Err(e) if surface == Surface::S3 => {
            let e = e.for_surface(surface);
            let resource = requested.s3_address().map(|a| a.resource()).unwrap_or_else(|| "/".into());
            let mut resp = with_type(e.s3_body(&resource, request_id).into_bytes(), "application/xml");
            *resp.status_mut() = e.status;
            if let Some(secs) = e.retry_after {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        Ok(Reply::Json(v)) => with_type(v.to_string().into_bytes(), json_type),
        Ok(Reply::Encoded { body, content_type, headers, .. }) => {
            let mut resp = with_type(body, content_type);
            for (k, v) in headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp
        }
        Err(e) => {
            let e = e.for_surface(surface);
            let mut resp = with_type(e.body().to_string().into_bytes(), json_type);
            *resp.status_mut() = e.status;
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(e.code) {
                h.insert("x-amzn-errortype", v);
            }
            if let Some(secs) = e.retry_after {
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
    }
}

fn with_type(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
