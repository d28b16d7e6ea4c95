//! opentrail's HTTP surfaces on one listener: the CloudTrail JSON 1.1 API (`POST /` + `X-Amz-Target`),
//! the cloudtrail-data API (`POST /PutAuditEvents`), the native API (`POST /v1/events`,
//! `GET /v1/events/{eventId}`), the S3 read API over local-folder buckets (path-style `GET|HEAD /<bucket>…`),
//! `GET /healthz` and `GET /metrics`, and the web console (`console.rs`: its pages on unsigned browser GETs,
//! `/console/…` for its assets and calls, which enter the same chain with a session cookie instead of SigV4).
//!
//! Architecture invariant: only this crate knows HTTP, SigV4 and AWS exception names. Every request but
//! health and metrics goes through the one operation chain (`chain.rs`): authenticated from its headers
//! before its body is read, authorized against the caller's role and policy, and audited.

mod audit;
mod auth;
pub mod body;
mod chain;
mod channels;
mod cloudtrail;
mod cloudtrail_lake;
mod console;
mod data;
pub mod error;
mod history;
mod ingest;
mod keys;
pub mod listener;
pub mod lookup;
pub mod operation;
pub mod pages;
mod s3;
pub mod tls;
mod trails;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::EventTime;
use service::audit_events::EventIdKey;
use service::channels::Channels;
use service::event_data_stores::EventDataStores;
use service::keys::KeyRing;
use service::trails::TrailStore;
use service::{Config, EventStore, Principal, Principals, RateLimiter};

pub use cloudtrail_lake::{MAX_WAIT_MS, WAIT_HEADER};
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
    /// Trails and channels, kept in `data_dir`.
    pub control_plane: ControlPlane,
    /// Held by a call that changes the control plane, from its staging copy to its commit (and by the
    /// channel ingestion-status writes of PutAuditEvents).
    pub control_plane_turn: tokio::sync::Mutex<()>,
    /// The secret PutAuditEvents eventIDs are derived with.
    pub event_id_key: EventIdKey,
    /// Per (access key, operation) token buckets from `[rate_limits]`; empty config = no limits.
    pub rate_limiter: RateLimiter,
    /// Request body bytes held in memory at once, across requests (`[server] body_memory_bytes`).
    pub body_budget: body::MemoryBudget,
    /// Finds a bucket by name for the S3 read API (`[buckets]`, else `<data-dir>/buckets/<name>`).
    pub buckets: BucketResolver,
    /// Every trail's delivery, once started ([`App::start_delivery`]); GetTrailStatus and /metrics read it.
    pub delivery: std::sync::OnceLock<Arc<delivery::Delivery>>,
    /// Every trail's Insights, once started ([`App::start_insights`]).
    pub insights: std::sync::OnceLock<Arc<service::insights::Insights>>,
    /// More `/metrics` families from what runs beside the API (the `[[gateways]]`), set once at start.
    pub extra_metrics: std::sync::OnceLock<MetricsSource>,
    /// The web console's signed-in sessions (in memory: a restart signs everyone out).
    pub console_sessions: ::console::Sessions,
    /// The lake's views and its query engine, once started ([`App::start_lake`]).
    pub lake: std::sync::OnceLock<Arc<lake::QueryEngine>>,
}

/// Appends `/metrics` families to the text being rendered.
pub type MetricsSource = Box<dyn Fn(&mut String) + Send + Sync>;

/// The buckets the S3 read API serves: local folders only (an S3-configured bucket is served by its own S3).
pub struct BucketResolver {
    config: std::collections::BTreeMap<String, service::BucketConfig>,
    data_dir: PathBuf,
    resolve: Box<dyn Fn(&str) -> buckets::BucketTarget + Send + Sync>,
}

impl BucketResolver {
    pub fn from_config(config: &Config, data_dir: &Path) -> BucketResolver {
        let (cfg, dir) = (config.clone(), data_dir.to_path_buf());
        BucketResolver {
            config: config.buckets.clone(),
            data_dir: data_dir.to_path_buf(),
            resolve: Box::new(move |name| cfg.bucket_target(name, &dir)),
        }
    }

    /// The local bucket `name`, if it exists (a folder that is missing is not created by a read).
    pub fn local(&self, name: &str) -> Option<buckets::Bucket> {
        match (self.resolve)(name) {
            buckets::BucketTarget::Local { root } if root.is_dir() => {
                buckets::Bucket::open(name, &buckets::BucketTarget::Local { root }).ok()
            }
            _ => None,
        }
    }

    /// Names of the local buckets: configured folders and the folders under `<data-dir>/buckets`, with the
    /// time each folder was last changed.
    pub fn local_names(&self) -> Vec<(String, std::time::SystemTime)> {
        let mut out = std::collections::BTreeMap::new();
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        for (name, b) in &self.config {
            if let Some(path) = &b.path
                && let Some(t) = mtime(path)
            {
                out.insert(name.clone(), t);
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join("buckets")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if service::trails::check_bucket_name(&name).is_ok()
                    && !self.config.contains_key(&name)
                    && e.path().is_dir()
                    && let Some(t) = mtime(&e.path())
                {
                    out.insert(name, t);
                }
            }
        }
        out.into_iter().collect()
    }
}

/// The control-plane state: trails, channels and event data stores. Clones share the stores.
#[derive(Clone)]
pub struct ControlPlane {
    pub trails: Arc<TrailStore>,
    pub channels: Arc<Channels>,
    pub event_data_stores: Arc<EventDataStores>,
}

impl ControlPlane {
    /// Staging copies: a call run against them writes its change to staging files and no further, until
    /// [`ControlPlane::commit`]. Hold `App::control_plane_turn` from here to the commit.
    pub fn staging(&self) -> ControlPlane {
        ControlPlane {
            trails: Arc::new(self.trails.staging()),
            channels: Arc::new(self.channels.staging()),
            event_data_stores: Arc::new(self.event_data_stores.staging()),
        }
    }

    /// Makes what a staging copy did current (renames, then memory).
    pub fn commit(&self, staged: ControlPlane) -> std::io::Result<()> {
        fn take<T>(a: Arc<T>) -> std::io::Result<T> {
            Arc::try_unwrap(a).map_err(|_| std::io::Error::other("staging copy still in use"))
        }
        self.trails.commit(take(staged.trails)?)?;
        self.channels.commit(take(staged.channels)?)?;
        self.event_data_stores.commit(take(staged.event_data_stores)?)
    }
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
        let event_data_stores = EventDataStores::open(data_dir, &config.region, &config.account_id)
            .map_err(|e| state_error("event data stores", &e))?;
        let home = service::trails::Home { account: config.account_id.clone(), region: config.region.clone() };
        let trails = TrailStore::open(data_dir, home).map_err(|e| state_error("trail state", &e))?;
        let event_id_key = EventIdKey::open(data_dir).map_err(|e| state_error("event id key", &e))?;
        let config_for_buckets = config.clone();
        Ok(App {
            principals: Principals::from_config(&config),
            rate_limiter: RateLimiter::from_config(&config.rate_limits),
            body_budget: body::MemoryBudget::new(config.server.body_memory_bytes, store.metrics().clone()),
            store,
            config,
            clock,
            data_dir: data_dir.to_path_buf(),
            keys: Arc::new(keys),
            control_plane: ControlPlane {
                trails: Arc::new(trails),
                channels: Arc::new(channels),
                event_data_stores: Arc::new(event_data_stores),
            },
            control_plane_turn: tokio::sync::Mutex::new(()),
            event_id_key,
            buckets: BucketResolver::from_config(&config_for_buckets, data_dir),
            delivery: std::sync::OnceLock::new(),
            insights: std::sync::OnceLock::new(),
            extra_metrics: std::sync::OnceLock::new(),
            console_sessions: ::console::Sessions::new(config_for_buckets.console.session_lifetime),
            lake: std::sync::OnceLock::new(),
        })
    }

    /// Starts every trail's delivery (a view of the journal per trail; `crates/delivery`), its object-store
    /// calls on `runtime`.
    pub fn start_delivery(&self, runtime: tokio::runtime::Handle) -> Result<(), AppError> {
        let (cfg, dir) = (self.config.clone(), self.data_dir.clone());
        let opts = delivery::DeliveryOptions {
            dir: self.data_dir.join("delivery"),
            interval: self.config.delivery.interval,
            digest_interval: self.config.delivery.digest_interval,
            clock: self.clock.clone(),
            runtime,
            resolve_bucket: Box::new(move |name| {
                buckets::Bucket::open(name, &cfg.bucket_target(name, &dir)).map_err(|e| e.to_string())
            }),
        };
        let d = delivery::Delivery::start(
            opts,
            self.control_plane.trails.clone(),
            self.keys.clone(),
            self.store.record_feed(),
            self.store.views().clone(),
        )
        .map_err(|reason| AppError::State {
            what: "trail delivery",
            path: self.data_dir.join("delivery"),
            reason,
        })?;
        let _ = self.delivery.set(d);
        Ok(())
    }

    /// Starts the signing keys' rotation schedule (`[keys] rotate_every`; nothing when it is not set), its
    /// timer on `runtime`.
    pub fn start_key_schedule(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        keys::spawn_schedule(self, runtime);
    }

    /// Starts the Insights detector of every trail with Insights selectors (docs/insights.md).
    pub fn start_insights(&self) -> Result<(), AppError> {
        let dir = self.data_dir.join("insights");
        let i = service::insights::Insights::start(
            dir.clone(),
            self.store.clone(),
            self.control_plane.trails.clone(),
            self.clock.clone(),
        )
        .map_err(|reason| AppError::State { what: "insights", path: dir, reason })?;
        let _ = self.insights.set(i);
        Ok(())
    }

    /// Starts the lake: a view per event data store (`<data-dir>/lake`) and the query engine, its limits
    /// from `[lake]`.
    pub fn start_lake(&self) -> Result<(), AppError> {
        let limits = &self.config.lake;
        let opts = lake::queries::QueryOptions {
            memory_limit: limits.query_memory_limit_bytes(),
            max_result_rows: usize::try_from(limits.max_result_rows).unwrap_or(usize::MAX),
            concurrency: limits.max_concurrent_queries,
            timeout: limits.query_timeout(),
            ..lake::queries::QueryOptions::default()
        };
        let dir = self.data_dir.join("lake");
        let clock = self.clock.clone();
        let l = lake::Lake::new(&dir, self.store.record_feed(), self.store.views().clone(), clock);
        let engine = lake::QueryEngine::new(l, opts).map_err(|e| AppError::State {
            what: "lake query engine",
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let _ = self.lake.set(Arc::new(engine));
        self.sync_lake();
        Ok(())
    }

    /// Makes the lake's views follow the event data stores (after a change is committed, and at start):
    /// enabled and stopped stores have a view, deleted ones keep their data until they are purged.
    pub fn sync_lake(&self) {
        let Some(engine) = self.lake.get() else { return };
        let stores = &self.control_plane.event_data_stores;
        if let Err(e) = stores.purge((self.clock)()) {
            tracing::warn!(error = %e, "cannot purge deleted event data stores");
        }
        let all = stores.all();
        let specs: Vec<lake::StoreSpec> = all
            .iter()
            .filter(|s| s.status != service::event_data_stores::StoreStatus::PendingDeletion)
            .map(|s| lake::StoreSpec {
                id: s.id.clone(),
                admission: lake::Admission {
                    selectors: s.selection(),
                    retention_days: Some(s.retention_period),
                    ingesting: s.ingesting(),
                },
            })
            .collect();
        let keep: Vec<String> = all.iter().map(|s| s.id.clone()).collect();
        if let Err(e) = engine.lake().reconcile(&specs, &keep) {
            tracing::error!(error = %e, "cannot start the lake view of an event data store");
        }
    }

    /// Stops the Insights detectors (each saves its state) and every trail's delivery (staged files stay in
    /// their outbox for the next start).
    pub fn stop_background(&self) {
        if let Some(l) = self.lake.get() {
            l.lake().shutdown();
        }
        if let Some(i) = self.insights.get() {
            i.shutdown();
        }
        if let Some(d) = self.delivery.get() {
            d.shutdown();
        }
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
    /// An id for whatever the call creates (a channel's), fixed when the call arrives.
    pub fresh_id: uuid::Uuid,
    /// The journal's last durable seq when the call arrived: where StartLogging/StopLogging start or stop a
    /// trail's delivery.
    pub durable_seq: Option<model::Seq>,
    /// When the call came from the web console: when its session signed in (the record then says
    /// `sessionCredentialFromConsole` and the session's `creationDate`).
    pub console_session: Option<EventTime>,
    /// `x-opentrail-wait-ms` as sent: how long a DescribeQuery may wait for its query to settle (an opentrail
    /// extension that AWS clients never send; see `cloudtrail_lake::describe_query`).
    pub wait_ms: Option<String>,
}

impl CallContext {
    /// The context of a call that arrived from `peer` with these headers, made by `principal` (SigV4) or by a
    /// console session signed in at `console_session`.
    pub(crate) fn new(
        app: &App,
        peer: SocketAddr,
        tls: Option<TlsInfo>,
        request_id: &str,
        headers: &HeaderMap,
        principal: Principal,
        console_session: Option<EventTime>,
    ) -> CallContext {
        CallContext {
            principal,
            request_id: request_id.to_string(),
            source_ip: source_ip(&app.config.trusted_proxies, peer.ip(), headers),
            user_agent: header_str(headers, "user-agent").map(str::to_string),
            tls,
            host: header_str(headers, "host").map(str::to_string),
            now: (app.clock)(),
            fresh_id: uuid::Uuid::new_v4(),
            durable_seq: app.store.durable_seq(),
            console_session,
            wait_ms: header_str(headers, WAIT_HEADER).map(str::to_string),
        }
    }
}

pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let tls = req.extensions().get::<TlsInfo>().cloned();
    let (parts, body) = req.into_parts();
    let mut resp = match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/healthz") => health(&app),
        _ if console::is_console_request(&parts) => console::serve(&app, peer, tls, &request_id, parts, body).await,
        (&Method::GET, "/metrics") => {
            let mut text = app.store.render_metrics();
            if let Some(d) = app.delivery.get() {
                d.render_metrics(&mut text);
            }
            if let Some(extra) = app.extra_metrics.get() {
                extra(&mut text);
            }
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        _ => chain::serve(&app, peer, tls, &request_id, parts, body).await,
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    // The server's own time for the request, body read included (W3C Server-Timing, in milliseconds).
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        h.insert("server-timing", v);
    }
    resp
}

fn health(app: &App) -> Response {
    let healthy = app.store.is_healthy();
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "durableSeq": app.store.durable_seq().map(|s| s.0),
        "indexedSeq": app.store.indexed_seq().map(|s| s.0),
        // Bytes waiting for the next group commit (audit records of answered reads among them).
        "queuedBytes": app.store.journal_figures().queued_bytes,
    });
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut resp = json_response(&body);
    *resp.status_mut() = status;
    resp
}

/// The caller's address: the TCP peer, or the client named in `X-Forwarded-For` when the peer is a
/// configured trusted proxy (the right-most untrusted entry, so a client cannot spoof it).
pub(crate) fn source_ip(trusted: &[IpAddr], peer: IpAddr, headers: &HeaderMap) -> String {
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

fn json_response(body: &serde_json::Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
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
