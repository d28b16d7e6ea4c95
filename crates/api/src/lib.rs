//! opentrail's HTTP surfaces on one listener: the CloudTrail JSON 1.1 API (`POST /` + `X-Amz-Target`),
//! the cloudtrail-data API (`POST /PutAuditEvents`), the native ingest API (`POST /v1/events`),
//! `GET /healthz` and `GET /metrics`.
//!
//! Architecture invariant: only this crate knows HTTP, SigV4 and AWS exception names. Every request
//! but health and metrics is authenticated with SigV4 and authorized against the caller's role and
//! policy before anything else happens.

mod audit;
pub mod body;
mod channels;
mod cloudtrail;
mod data;
pub mod error;
mod ingest;
mod keys;
pub mod listener;
pub mod lookup;
pub mod pages;
pub mod tls;
mod trails;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::EventTime;
use service::channels::Channels;
use service::keys::KeyRing;
use service::{Config, EventStore, Principal, Principals, RateLimiter};

pub use error::ApiError;
pub use listener::{ConnectionLimits, FrontDoor};
pub use tls::{TlsError, load_server_config};

/// Source of "now"; injected so tests can move the clock.
pub type Clock = Arc<dyn Fn() -> EventTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| EventTime(chrono::Utc::now().timestamp_millis()))
}

/// Everything a request handler needs.
pub struct App {
    pub store: EventStore,
    pub principals: Principals,
    pub config: Config,
    pub clock: Clock,
    /// Where the server keeps its state (journal, index, control-plane state, keys).
    pub data_dir: PathBuf,
    /// The RSA keys ListPublicKeys publishes (and digests will be signed with).
    pub keys: Arc<KeyRing>,
    /// Channels for PutAuditEvents.
    pub channels: Arc<Channels>,
    /// Trails and their settings, kept in `data_dir`.
    pub trails: Arc<service::trails::TrailStore>,
    /// Per (access key, operation) token buckets from `[rate_limits]`; empty config = no limits.
    pub rate_limiter: RateLimiter,
    /// Request body bytes held in memory at once, across requests (`[server] body_memory_bytes`).
    pub body_budget: body::MemoryBudget,
}

impl App {
    /// Wires the surfaces over an open store: loads or creates the control-plane state kept in `data_dir`.
    pub fn open(store: EventStore, config: Config, data_dir: &Path, clock: Clock) -> Result<App, AppError> {
        let state_error = |what: &'static str, e: &dyn std::fmt::Display| AppError::State {
            what,
            path: data_dir.to_path_buf(),
            reason: e.to_string(),
        };
        let keys = KeyRing::open(data_dir, clock()).map_err(|e| state_error("signing keys", &e))?;
        let channels =
            Channels::open(data_dir, &config.region, &config.account_id).map_err(|e| state_error("channels", &e))?;
        let home = service::trails::Home { account: config.account_id.clone(), region: config.region.clone() };
        let trails = service::trails::TrailStore::open(data_dir, home).map_err(|e| state_error("trail state", &e))?;
        Ok(App {
            principals: Principals::from_config(&config),
            rate_limiter: RateLimiter::from_config(&config.rate_limits),
            body_budget: body::MemoryBudget::new(config.server.body_memory_bytes, store.metrics().clone()),
            store,
            config,
            clock,
            data_dir: data_dir.to_path_buf(),
            keys: Arc::new(keys),
            channels: Arc::new(channels),
            trails: Arc::new(trails),
        })
    }
}

/// Why the server's state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot open {what} in {path}: {reason}")]
    State { what: &'static str, path: PathBuf, reason: String },
}

/// TLS facts of the connection a request came on, for `tlsDetails`.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub version: String,
    pub cipher_suite: String,
    pub sni: Option<String>,
}

/// Who is calling, from where, with what: the facts the self-audit record is built from.
pub struct CallContext {
    pub principal: Principal,
    pub request_id: String,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub tls: Option<TlsInfo>,
    pub host: Option<String>,
    pub now: EventTime,
}

pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let tls = req.extensions().get::<TlsInfo>().cloned();
    let (parts, body) = req.into_parts();
    let mut resp = match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/healthz") => health(&app),
        (&Method::GET, "/metrics") => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.store.render_metrics()).into_response()
        }
        _ => match body::read_request_body(&app, body).await {
            Err(e) => error_response(&e),
            Ok((body, _held)) => match authenticate(&app, &parts, &body) {
                Err(e) => {
                    app.store.metrics().record_request("Authenticate", e.code);
                    error_response(&e)
                }
                Ok(principal) => {
                    let ctx = CallContext {
                        principal,
                        request_id: request_id.clone(),
                        source_ip: source_ip(&app.config.trusted_proxies, peer.ip(), &parts.headers),
                        user_agent: header_str(&parts.headers, "user-agent").map(str::to_string),
                        tls,
                        host: header_str(&parts.headers, "host").map(str::to_string),
                        now: (app.clock)(),
                    };
                    route(&app, &ctx, &parts.method, &parts.uri, &parts.headers, body).await
                }
            },
        },
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

async fn route(
    app: &Arc<App>,
    ctx: &CallContext,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if method == Method::POST && path == "/" {
        return match header_str(headers, "x-amz-target") {
            Some(target) => cloudtrail::dispatch(app, ctx, target, &body).await,
            None => error_response(&ApiError::client(
                "UnknownOperationException",
                "missing X-Amz-Target header: expected com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Operation>",
            )),
        };
    }
    if method == Method::POST && path == "/PutAuditEvents" {
        return data::put_audit_events(app, ctx, uri, body).await;
    }
    if method == Method::POST && path == "/v1/events" {
        return ingest::put_events(app, ctx, headers, body).await;
    }
    if method == Method::GET
        && let Some(id) = path.strip_prefix("/v1/events/")
    {
        return ingest::get_event(app, ctx, id).await;
    }
    error_response(&ApiError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!("no operation at {method} {path}"),
    ))
}

fn health(app: &App) -> Response {
    let healthy = app.store.is_healthy();
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "durableSeq": app.store.durable_seq().map(|s| s.0),
        "indexedSeq": app.store.indexed_seq().map(|s| s.0),
    });
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut resp = json_response(&body);
    *resp.status_mut() = status;
    resp
}

fn authenticate(app: &App, parts: &axum::http::request::Parts, body: &[u8]) -> Result<Principal, ApiError> {
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let req = sigv4::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let now_secs = (app.clock)().0.div_euclid(1000);
    let verified = sigv4::verify(&req, now_secs, |key| {
        app.principals.get(key).map(|p| sigv4::Credential {
            access_key_id: p.access_key_id.clone(),
            secret_access_key: p.secret_access_key.clone(),
        })
    })?;
    app.principals.get(&verified.access_key_id).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    })
}

/// The caller's address: the TCP peer, or the client named in `X-Forwarded-For` when the peer is a
/// configured trusted proxy (the right-most untrusted entry, so a client cannot spoof it).
fn source_ip(trusted: &[IpAddr], peer: IpAddr, headers: &HeaderMap) -> String {
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim).filter_map(|h| h.parse().ok()).collect::<Vec<IpAddr>>())
        .collect();
    // Walk back from the right past trusted hops; if every hop is trusted, the left-most is the client.
    hops.iter().rev().find(|ip| !trusted.contains(ip)).or(hops.first()).copied().unwrap_or(peer).to_string()
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The AWS JSON error response.
pub(crate) fn error_response(e: &ApiError) -> Response {
    let mut resp = json_response(&e.body());
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

pub(crate) fn json_response(body: &serde_json::Value) -> Response {
    json_bytes_response(body.to_string().into_bytes())
}

/// An HTTP 200 with an already serialized JSON body.
pub(crate) fn json_bytes_response(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
    resp
}

/// Runs blocking store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.9"));
        assert_eq!(source_ip(&[], proxy, &h), "10.0.0.1");
        assert_eq!(source_ip(&[proxy], proxy, &h), "203.0.113.9");
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(source_ip(&[proxy], other, &h), "192.0.2.1");
    }
}
