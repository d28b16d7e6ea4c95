//! The audit gateway (issue 9): a reverse proxy in front of an AWS-compatible service (`kind = "aws"`)
//! or any HTTP API (`kind = "http"`) that records every call that passes as a CloudTrail event —
//! durably before the answer is released (fail-closed, the default) or into a local crash-safe spool
//! forwarded in the background (spool mode). Semantics: `docs/gateway.md`.
//!
//! Served by the one accept loop, `api::FrontDoor`, as an axum router: the gateway is one more service
//! behind it, so connection limits, timeouts and TLS are the server's.

pub mod config;
pub mod jwt;
pub mod metrics;
pub mod openapi;
pub mod policy;
mod proxy;
pub mod record;
pub mod redact;
pub mod sink;
pub mod spool;

use std::sync::Arc;
use std::time::Duration;

pub use config::{GatewayConfig, Kind, Level};
pub use metrics::GatewayMetrics;
pub use proxy::{METRICS_PATH, Upstream};
pub use sink::{Remote, Sink, SinkError, Target};
pub use spool::Spool;

/// Why a gateway cannot start, naming the field or file.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    OpenApi(#[from] openapi::OpenApiError),
    #[error(transparent)]
    Jwt(#[from] jwt::JwtConfigError),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error("{field}: required")]
    Missing { field: String },
}

/// What the gateway inherits from where it runs.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub account_id: String,
    pub region: String,
}

/// A configured gateway: its router (for `api::FrontDoor::serve`) and its metrics.
#[derive(Clone)]
pub struct Gateway {
    proxy: Arc<proxy::Proxy>,
}

impl Gateway {
    /// Builds the gateway of `cfg` writing through `target`: directly (fail-closed) or, when
    /// `cfg.spool` names a folder, through a spool there. Within a tokio runtime.
    pub fn new(cfg: &GatewayConfig, defaults: &Defaults, target: Target) -> Result<Gateway, GatewayError> {
        cfg.validate("")?;
        let upstream_text = cfg.upstream.as_deref().ok_or(GatewayError::Missing { field: "upstream".into() })?;
        let upstream = Upstream::parse(upstream_text)
            .map_err(|reason| config::ConfigError::Invalid { field: "upstream".into(), reason })?;
        let account_id = cfg.account_id.clone().unwrap_or_else(|| defaults.account_id.clone());
        let region = cfg.region.clone().unwrap_or_else(|| defaults.region.clone());
        let openapi = cfg.openapi.as_deref().map(openapi::OpenApi::load).transpose()?;
        let jwt = jwt::JwtVerifier::new(&cfg.jwt)?;
        let mut known = cfg.identities.clone();
        known.extend(cfg.principals.iter().cloned());
        let key = cfg.redaction.hmac_key.as_deref().map(|k| hex::decode(k).expect("validated"));
        let recorder = record::Recorder {
            kind: cfg.kind,
            identities: record::identities(&known, &account_id),
            account_id,
            region,
            event_source: cfg.event_source.clone().unwrap_or_else(|| upstream.authority.host().to_string()),
            policy: policy::Policy { default_level: cfg.default_level, rules: cfg.rules.clone() },
            redactor: redact::Redactor::new(key, &cfg.redaction.fields),
            openapi,
            jwt,
            trusted_proxies: cfg.trusted_proxies.clone(),
        };
        let metrics = Arc::new(GatewayMetrics::default());
        let sink = match &cfg.spool {
            Some(dir) => Sink::spooled(Spool::open(dir)?, target, metrics.clone()),
            None => Sink::Direct(target),
        };
        let proxy = proxy::Proxy {
            name: cfg.name.clone(),
            upstream,
            client: proxy::client(),
            capture_bytes: cfg.capture_bytes,
            upstream_timeout: Duration::from_millis(cfg.upstream_timeout_ms),
            record_timeout: Duration::from_millis(cfg.record_timeout_ms),
            recorder,
            sink,
            metrics,
            aws_errors: cfg.kind == Kind::Aws,
        };
        Ok(Gateway { proxy: Arc::new(proxy) })
    }

    pub fn name(&self) -> &str {
        &self.proxy.name
    }

    pub fn metrics(&self) -> &Arc<GatewayMetrics> {
        &self.proxy.metrics
    }

    /// Appends this gateway's `opentrail_gateway_*` families to a `/metrics` text.
    pub fn render_metrics(&self, out: &mut String) {
        self.proxy.render_metrics(out);
    }

    /// The router to serve with `api::FrontDoor::serve`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new().fallback(proxy::handle).with_state(self.proxy.clone())
    }
}
