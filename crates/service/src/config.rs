//! The server's TOML configuration: account, region, principals with their keys, roles and policies,
//! and the optional policies (lookup window, rate limits, TLS, trusted proxies), the delivery cadences and
//! the buckets trails deliver to.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// What a principal may do before any policy document narrows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    #[default]
    Admin,
    /// Ingest only (`/v1/events`, `PutAuditEvents`).
    Writer,
    /// Read only (lookups, `Get*`, `Describe*`, `List*`).
    Auditor,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// IAM user name; the principal's ARN is `arn:aws:iam::<account_id>:user/<user_name>`.
    pub user_name: Option<String>,
    /// `IAMUser` (default), `Root`, or `AssumedRole` (then `role_name` and `session_name`).
    #[serde(rename = "type")]
    pub principal_type: Option<String>,
    pub role_name: Option<String>,
    pub session_name: Option<String>,
    #[serde(default)]
    pub role: Role,
    /// An IAM-style policy document (JSON text) that narrows what the role allows.
    pub policy: Option<String>,
    /// Overrides the account of the top-level config.
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub listen: Option<String>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Default of [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default of [`ServerConfig::header_timeout_ms`].
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Default of [`ServerConfig::idle_timeout_ms`].
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default of [`ServerConfig::body_timeout_ms`].
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 60_000;
/// Default of [`ServerConfig::tls_handshake_timeout_ms`].
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Default of [`ServerConfig::max_request_bytes`]: 16 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Default of [`ServerConfig::max_decoded_bytes`]: 64 MiB.
pub const DEFAULT_MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// Default of [`ServerConfig::max_records_per_request`].
pub const DEFAULT_MAX_RECORDS_PER_REQUEST: usize = 10_000;
/// Default of [`ServerConfig::body_memory_bytes`]: 256 MiB.
pub const DEFAULT_BODY_MEMORY_BYTES: usize = 256 * 1024 * 1024;

/// `[server]`: what one client may cost the server — connections, time, bytes and records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Open connections (HTTP and HTTPS together); one more is accepted and closed at once.
    pub max_connections: usize,
    /// Time from a connection's start (after the TLS handshake) to a complete first request head, and
    /// on HTTP/1 from the end of one request to the complete head of the next.
    pub header_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed; so is one whose writes have
    /// made no progress for this long (a client that stopped reading).
    pub idle_timeout_ms: u64,
    /// Time to receive a whole request body, from when the server starts reading it.
    pub body_timeout_ms: u64,
    /// Time for a client to complete the TLS handshake.
    pub tls_handshake_timeout_ms: u64,
    /// The largest request body, as sent (compressed when gzip).
    pub max_request_bytes: usize,
    /// The largest ingest body after gzip decompression.
    pub max_decoded_bytes: usize,
    /// The most records one ingest request may carry; a body with more is refused whole.
    pub max_records_per_request: usize,
    /// Request bodies (as sent and decompressed) held in memory at once, across all requests; a request
    /// that cannot get its share in time is answered 503. At least `max_request_bytes + max_decoded_bytes`.
    pub body_memory_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            body_timeout_ms: DEFAULT_BODY_TIMEOUT_MS,
            tls_handshake_timeout_ms: DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
            max_records_per_request: DEFAULT_MAX_RECORDS_PER_REQUEST,
            body_memory_bytes: DEFAULT_BODY_MEMORY_BYTES,
        }
    }
}

impl ServerConfig {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.tls_handshake_timeout_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |field: &str, reason: String| Err(ConfigError::Invalid { field: format!("server.{field}"), reason });
        let nonzero = [
            ("max_connections", self.max_connections as u64),
            ("header_timeout_ms", self.header_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("tls_handshake_timeout_ms", self.tls_handshake_timeout_ms),
            ("max_request_bytes", self.max_request_bytes as u64),
            ("max_decoded_bytes", self.max_decoded_bytes as u64),
            ("max_records_per_request", self.max_records_per_request as u64),
            ("body_memory_bytes", self.body_memory_bytes as u64),
        ];
        for (field, v) in nonzero {
            if v == 0 {
                return invalid(field, "must be more than 0".into());
            }
        }
        // Hard-coded: a day. A longer timeout is a typo (seconds given as milliseconds twice over), and
        // tokio's timer cannot take an arbitrarily far deadline anyway.
        const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;
        for (field, v) in nonzero[1..5].iter() {
            if *v > MAX_TIMEOUT_MS {
                return invalid(field, format!("must be at most {MAX_TIMEOUT_MS} (a day)"));
            }
        }
        // The largest request must fit in the budget, or it could never be served: its body as sent and
        // its decoded form are held together while it is decoded.
        let largest = self.max_request_bytes as u128 + self.max_decoded_bytes as u128;
        if (self.body_memory_bytes as u128) < largest {
            return invalid(
                "body_memory_bytes",
                format!(
                    "must be at least max_request_bytes + max_decoded_bytes = {largest}, so the largest request fits"
                ),
            );
        }
        Ok(())
    }
}

/// Per-operation rate limits (requests per second per access key). None by default.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Applies to every CloudTrail API operation without its own entry.
    pub default_per_second: Option<f64>,
    /// Operation name → requests per second, e.g. `LookupEvents = 2.0`.
    #[serde(default)]
    pub operations: std::collections::BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_account")]
    pub account_id: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    /// CloudTrail's 90-day event-history window as an opt-in policy; `None` searches the whole history.
    pub lookup_window_days: Option<u32>,
    /// Back-pressure: bytes waiting for the journal's next group commit before ingest answers 503.
    pub journal_max_queued_bytes: Option<usize>,
    /// Back-pressure: durable records not yet visible to lookups before ingest answers 503.
    pub max_index_lag_events: Option<u64>,
    /// Peers whose `X-Forwarded-For` is believed for `sourceIPAddress`.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    pub tls: Option<TlsConfig>,
    /// Connection, timeout and size limits of the HTTP front door.
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
    /// How often trails deliver log files and digests.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Buckets a trail may name, by bucket name; any other bucket is `<data-dir>/buckets/<name>`.
    #[serde(default)]
    pub buckets: std::collections::BTreeMap<String, BucketConfig>,
    /// The digest signing keys' rotation schedule.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Audit gateways run inside the server (`[[gateways]]`), each read by the `gateway` crate, which
    /// owns their keys (`docs/gateway.md`).
    #[serde(default)]
    pub gateways: Vec<toml::Table>,
    /// The web console's users and sessions.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// What one CloudTrail Lake query may cost: memory, time, result rows, and how many run at once.
    #[serde(default)]
    pub lake: LakeConfig,
}

/// Default of [`LakeConfig::query_memory_limit_mb`]: 1 GiB.
pub const DEFAULT_QUERY_MEMORY_LIMIT_MB: u64 = 1024;
/// Default of [`LakeConfig::query_timeout_seconds`]: an hour (CloudTrail Lake's own limit).
pub const DEFAULT_QUERY_TIMEOUT_SECONDS: u64 = 3600;
/// Default of [`LakeConfig::max_concurrent_queries`].
pub const DEFAULT_MAX_CONCURRENT_QUERIES: usize = 2;
/// Default of [`LakeConfig::max_result_rows`].
pub const DEFAULT_MAX_RESULT_ROWS: u64 = 1_000_000;

/// `[lake]`: what one query may cost the server. A query over its memory limit or its result rows is
/// FAILED, one over its time TIMED_OUT; the others go on, and so does the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// Memory one query's operators (sorts, aggregations, joins) may hold, in MiB. Nothing spills to disk:
    /// a query that needs more fails, naming this limit.
    pub query_memory_limit_mb: u64,
    /// A query running longer is stopped: TIMED_OUT.
    pub query_timeout_seconds: u64,
    /// Queries running at once; later ones wait QUEUED.
    pub max_concurrent_queries: usize,
    /// The most rows one answer may hold (kept in memory for GetQueryResults); a query that returns more
    /// fails, never cut short.
    pub max_result_rows: u64,
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            query_memory_limit_mb: DEFAULT_QUERY_MEMORY_LIMIT_MB,
            query_timeout_seconds: DEFAULT_QUERY_TIMEOUT_SECONDS,
            max_concurrent_queries: DEFAULT_MAX_CONCURRENT_QUERIES,
            max_result_rows: DEFAULT_MAX_RESULT_ROWS,
        }
    }
}

impl LakeConfig {
    /// Hard-coded upper bounds: past them a value is a typo (bytes given as MiB, ms as seconds), not a wish.
    /// 1 TiB of memory per query; a day per query (tokio's timer cannot take an arbitrarily far deadline);
    /// 64 queries at once (each holds its memory limit); 100 M result rows (each kept in memory as text).
    const MAX_MEMORY_LIMIT_MB: u64 = 1 << 20;
    const MAX_TIMEOUT_SECONDS: u64 = 86_400;
    const MAX_CONCURRENT: usize = 64;
    const MAX_RESULT_ROWS: u64 = 100_000_000;

    /// The memory limit in bytes.
    pub fn query_memory_limit_bytes(&self) -> usize {
        usize::try_from(self.query_memory_limit_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    pub fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.query_timeout_seconds)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let checks = [
            ("query_memory_limit_mb", self.query_memory_limit_mb, Self::MAX_MEMORY_LIMIT_MB, " (1 TiB)"),
            ("query_timeout_seconds", self.query_timeout_seconds, Self::MAX_TIMEOUT_SECONDS, " (a day)"),
            ("max_concurrent_queries", self.max_concurrent_queries as u64, Self::MAX_CONCURRENT as u64, ""),
            ("max_result_rows", self.max_result_rows, Self::MAX_RESULT_ROWS, ""),
        ];
        for (field, v, max, what) in checks {
            if !(1..=max).contains(&v) {
                return Err(ConfigError::Invalid {
                    field: format!("lake.{field}"),
                    reason: format!("must be 1 to {max}{what}, not {v}"),
                });
            }
        }
        Ok(())
    }
}

/// Default of [`ConsoleConfig::session_lifetime`]: a working day.
pub const DEFAULT_CONSOLE_SESSION: Duration = Duration::from_secs(12 * 3600);

/// `[console]`: users who sign in with a name and password (each acting as a configured principal, with
/// its role and policy), and how long a console session lives (`"<n>s"`, `"<n>m"`, `"<n>h"` or `"<n>d"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    pub users: Vec<ConsoleUserConfig>,
    #[serde(deserialize_with = "session_lifetime")]
    pub session_lifetime: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { users: Vec::new(), session_lifetime: DEFAULT_CONSOLE_SESSION }
    }
}

/// `[[console.users]]`: `name`, `password_hash` (an argon2 PHC string, from `opentrail console
/// hash-password`) and `principal` (the access key ID whose role and policy the user gets).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUserConfig {
    pub name: String,
    pub password_hash: String,
    pub principal: String,
}

fn session_lifetime<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_rotation_period(&text).map_err(serde::de::Error::custom)
}

/// `[keys]`: `rotate_every = "90d"` rotates the digest signing key when the current one is that old
/// (`"<n>s"`, `"<n>m"`, `"<n>h"` or `"<n>d"`, at least 1s). Default: no scheduled rotation; keys are still
/// rotated on command (`opentrail keys rotate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    #[serde(deserialize_with = "rotation_period")]
    pub rotate_every: Option<Duration>,
}

/// Parses a rotation period: a whole number and one unit of `s`, `m`, `h` or `d`, at least one second.
pub fn parse_rotation_period(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a period like \"90d\", \"12h\", \"30m\" or \"10s\"");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(format!("{text:?}: a rotation period is at least 1s"));
    }
    Ok(Duration::from_secs(secs))
}

fn rotation_period<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_rotation_period(&text).map(Some).map_err(serde::de::Error::custom)
}

/// Default of [`DeliveryConfig::interval`]: CloudTrail delivers a trail's log files about every 5 minutes.
pub const DEFAULT_DELIVERY_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Default of [`DeliveryConfig::digest_interval`]: CloudTrail delivers digests hourly.
pub const DEFAULT_DIGEST_INTERVAL: Duration = Duration::from_secs(3600);
/// Hard-coded bounds of both delivery cadences.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// `[delivery]`: the cadences of log files and digests, each `"<n>s"`, `"<n>m"` or `"<n>h"` in 1s..=1h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    #[serde(deserialize_with = "interval")]
    pub interval: Duration,
    #[serde(deserialize_with = "interval")]
    pub digest_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig { interval: DEFAULT_DELIVERY_INTERVAL, digest_interval: DEFAULT_DIGEST_INTERVAL }
    }
}

/// Parses `"30s"`, `"5m"`, `"1h"`: a whole number and one unit, within 1s..=1h.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{text:?} is not a duration like \"30s\", \"5m\" or \"1h\""))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{text:?} is not a duration like \"30s\", \"5m\" or \"1h\"")),
    };
    let d = Duration::from_secs(secs);
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
        return Err(format!("{text:?} is outside 1s to 1h"));
    }
    Ok(d)
}

fn interval<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_interval(&text).map_err(serde::de::Error::custom)
}

/// `[buckets.<name>]`: a local folder (`path`) or an S3 bucket (`endpoint`, `region`, keys, and optionally
/// `object_lock`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    pub path: Option<PathBuf>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub object_lock: Option<ObjectLockConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectLockConfig {
    pub mode: buckets::LockMode,
    pub days: u32,
}

impl BucketConfig {
    /// Where the bucket is; checks the combination of keys (`field` names the table in errors).
    fn target(&self, field: &str) -> Result<buckets::BucketTarget, ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid { field: format!("{field}.{key}"), reason };
        let s3_keys = [
            ("endpoint", self.endpoint.is_some()),
            ("region", self.region.is_some()),
            ("access_key_id", self.access_key_id.is_some()),
            ("secret_access_key", self.secret_access_key.is_some()),
            ("object_lock", self.object_lock.is_some()),
        ];
        if let Some(path) = &self.path {
            if let Some((key, _)) = s3_keys.iter().find(|(_, set)| *set) {
                return Err(invalid(
                    key,
                    "a bucket is a local folder (path) or an S3 bucket (endpoint), not both".into(),
                ));
            }
            if path.as_os_str().is_empty() {
                return Err(invalid("path", "must not be empty".into()));
            }
            return Ok(buckets::BucketTarget::Local { root: path.clone() });
        }
        let (Some(endpoint), Some(region), Some(key), Some(secret)) =
            (&self.endpoint, &self.region, &self.access_key_id, &self.secret_access_key)
        else {
            let missing = s3_keys[..4].iter().find(|(_, set)| !*set).map_or("path", |(k, _)| *k);
            return Err(invalid(
                missing,
                "is required: a bucket needs path, or endpoint + region + access_key_id + secret_access_key".into(),
            ));
        };
        match buckets::endpoint_host(endpoint) {
            None => return Err(invalid("endpoint", format!("{endpoint:?} is not an http:// or https:// URL"))),
            Some(("http", host)) if !buckets::is_loopback_host(host) => {
                return Err(invalid(
                    "endpoint",
                    format!("plain http is allowed only to loopback, not {host}; use https"),
                ));
            }
            Some(_) => {}
        }
        if region.is_empty() {
            return Err(invalid("region", "must not be empty".into()));
        }
        if let Some(lock) = &self.object_lock
            && !(1..=36_500).contains(&lock.days)
        {
            return Err(invalid("object_lock.days", "must be 1 to 36500".into()));
        }
        Ok(buckets::BucketTarget::S3(buckets::S3Target {
            endpoint: endpoint.clone(),
            region: region.clone(),
            access_key_id: key.clone(),
            secret_access_key: secret.clone(),
            object_lock: self.object_lock.map(|l| buckets::ObjectLock { mode: l.mode, days: l.days }),
        }))
    }
}

/// The self-audit policy. Fail-closed by default: a call whose audit record cannot be written is refused.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Answer read-only calls even when their audit record cannot be written (counted as
    /// `failed_open`). Calls that change anything are always refused then.
    #[serde(default)]
    pub fail_open_reads: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_id: default_account(),
            region: default_region(),
            data_dir: None,
            listen: None,
            lookup_window_days: None,
            journal_max_queued_bytes: None,
            max_index_lag_events: None,
            trusted_proxies: Vec::new(),
            tls: None,
            server: ServerConfig::default(),
            rate_limits: RateLimitConfig::default(),
            audit: AuditConfig::default(),
            principals: Vec::new(),
            delivery: DeliveryConfig::default(),
            buckets: std::collections::BTreeMap::new(),
            keys: KeysConfig::default(),
            gateways: Vec::new(),
            console: ConsoleConfig::default(),
            lake: LakeConfig::default(),
        }
    }
}

fn default_account() -> String {
    "123456789012".to_string()
}

fn default_region() -> String {
    "us-east-1".to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.into(), message },
            other => other,
        })
    }

    /// Where bucket `name` is: its `[buckets.<name>]` table, or the folder `<data_dir>/buckets/<name>`.
    pub fn bucket_target(&self, name: &str, data_dir: &Path) -> buckets::BucketTarget {
        match self.buckets.get(name).map(|b| b.target("")) {
            Some(Ok(t)) => t,
            // Checked when the config was loaded; a config built in code falls back to the folder.
            _ => buckets::BucketTarget::Local { root: data_dir.join("buckets").join(name) },
        }
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: PathBuf::new(), message: e.to_string() })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, reason: &str| Err(ConfigError::Invalid { field, reason: reason.to_string() });
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("account_id".into(), "must be 12 digits");
        }
        self.server.validate()?;
        self.lake.validate()?;
        let rates = self.rate_limits.default_per_second.map(|r| ("rate_limits.default_per_second".to_string(), r));
        for (field, rate) in rates
            .into_iter()
            .chain(self.rate_limits.operations.iter().map(|(op, r)| (format!("rate_limits.operations.{op}"), *r)))
        {
            if !rate.is_finite() || rate < 0.0 {
                return invalid(field, "must be a number of requests per second, 0 or more");
            }
        }
        for (name, bucket) in &self.buckets {
            let field = format!("buckets.{name}");
            crate::trails::check_bucket_name(name).map_err(|reason| ConfigError::Invalid {
                field: field.clone(),
                reason: format!("bad bucket name: {reason}"),
            })?;
            bucket.target(&field)?;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.principals.iter().enumerate() {
            let field = |f: &str| format!("principals[{i}].{f}");
            if p.access_key_id.len() < 16 || !p.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return invalid(field("access_key_id"), "must be at least 16 letters or digits");
            }
            if p.secret_access_key.len() < 16 {
                return invalid(field("secret_access_key"), "must be at least 16 characters");
            }
            if !seen.insert(p.access_key_id.as_str()) {
                return invalid(field("access_key_id"), "is used by another principal");
            }
            match p.principal_type.as_deref().unwrap_or("IAMUser") {
                "IAMUser" if p.user_name.is_none() => return invalid(field("user_name"), "is required for an IAMUser"),
                "AssumedRole" if p.role_name.is_none() || p.session_name.is_none() => {
                    return invalid(field("role_name"), "role_name and session_name are required for an AssumedRole");
                }
                "IAMUser" | "AssumedRole" | "Root" => {}
                other => return invalid(field("type"), &format!("'{other}' is not IAMUser, AssumedRole or Root")),
            }
            if let Some(policy) = &p.policy {
                crate::policy::PolicyDocument::parse(policy)
                    .map_err(|reason| ConfigError::Invalid { field: field("policy"), reason })?;
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, u) in self.console.users.iter().enumerate() {
            let field = |f: &str| format!("console.users[{i}].{f}");
            if u.name.is_empty() || u.name.len() > 64 || u.name.chars().any(|c| c.is_control()) {
                return invalid(field("name"), "must be 1 to 64 printable characters");
            }
            if !names.insert(u.name.as_str()) {
                return invalid(field("name"), "is used by another console user");
            }
            if !u.password_hash.starts_with("$argon2") {
                return invalid(
                    field("password_hash"),
                    "must be an argon2 PHC string (make one with `opentrail console hash-password`)",
                );
            }
            if !self.principals.iter().any(|p| p.access_key_id == u.principal) {
                return invalid(field("principal"), "must be the access_key_id of one of [[principals]]");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_users_name_a_principal_and_carry_an_argon2_hash() {
        let base = r#"
[[principals]]
access_key_id = "AKIAEXAMPLEAUDITOR01"
secret_access_key = "auditor-secret-key-0001"
user_name = "Audrey"
role = "auditor"
"#;
        let ok = format!(
            "{base}\n[console]\nsession_lifetime = \"30m\"\nusers = [{{ name = \"ana\", password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA\", principal = \"AKIAEXAMPLEAUDITOR01\" }}]\n"
        );
        let cfg = Config::parse(&ok).unwrap();
        assert_eq!(cfg.console.session_lifetime, Duration::from_secs(1800));
        assert_eq!(cfg.console.users[0].principal, "AKIAEXAMPLEAUDITOR01");
        assert_eq!(Config::parse(base).unwrap().console.session_lifetime, DEFAULT_CONSOLE_SESSION);
        let err = |text: String| Config::parse(&text).unwrap_err().to_string();
        let bad_principal = ok.replace("principal = \"AKIAEXAMPLEAUDITOR01\"", "principal = \"AKIANOSUCHKEY0000001\"");
        assert!(err(bad_principal).contains("console.users[0].principal"));
        assert!(err(ok.replace("$argon2id$", "$2b$")).contains("console.users[0].password_hash"));
        assert!(err(ok.replace("\"30m\"", "\"soon\"")).contains("soon"));
    }

    #[test]
    fn the_documented_example_parses() {
        let cfg = Config::parse(
            r#"
account_id = "123456789012"
region = "us-east-1"
[[principals]]
access_key_id = "AKIAEXAMPLEJOHN00001"
secret_access_key = "john-secret-key-0001"
user_name = "John"
role = "admin"
"#,
        )
        .unwrap();
        assert_eq!(cfg.principals[0].role, Role::Admin);
        assert_eq!(cfg.principals[0].user_name.as_deref(), Some("John"));
    }

    #[test]
    fn bad_principals_are_named() {
        let err = Config::parse(
            "[[principals]]\naccess_key_id = \"short\"\nsecret_access_key = \"0123456789abcdef\"\nuser_name = \"a\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("principals[0].access_key_id"), "{err}");
        let err = Config::parse("[[principals]]\naccess_key_id = \"AKIAEXAMPLEJOHN00001\"\nsecret_access_key = \"0123456789abcdef\"\nuser_name = \"a\"\nrole = \"god\"\n").unwrap_err();
        assert!(err.to_string().contains("god"), "{err}");
        let err = Config::parse("bogus = 1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn server_limits_default_and_are_named_when_wrong() {
        let cfg = Config::parse("").unwrap();
        assert_eq!(cfg.server.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(cfg.server.max_request_bytes, 16 * 1024 * 1024);
        let cfg = Config::parse("[server]\nmax_connections = 7\nbody_timeout_ms = 1500\n").unwrap();
        assert_eq!(cfg.server.max_connections, 7);
        assert_eq!(cfg.server.body_timeout(), Duration::from_millis(1500));
        assert_eq!(cfg.server.idle_timeout_ms, DEFAULT_IDLE_TIMEOUT_MS);
        let err = Config::parse("[server]\nheader_timeout_ms = 0\n").unwrap_err();
        assert!(err.to_string().contains("server.header_timeout_ms"), "{err}");
        let err =
            Config::parse("[server]\nmax_request_bytes = 1000\nmax_decoded_bytes = 2000\nbody_memory_bytes = 2999\n")
                .unwrap_err();
        assert!(err.to_string().contains("server.body_memory_bytes"), "{err}");
        assert!(err.to_string().contains("3000"), "{err}");
        Config::parse("[server]\nmax_request_bytes = 1000\nmax_decoded_bytes = 2000\nbody_memory_bytes = 3000\n")
            .unwrap();
        let err = Config::parse("[server]\nidle_timeout = 5\n").unwrap_err();
        assert!(err.to_string().contains("idle_timeout"), "{err}");
    }

    #[test]
    fn lake_limits_default_and_are_named_when_wrong() {
        let cfg = Config::parse("").unwrap();
        assert_eq!(cfg.lake, LakeConfig::default());
        assert_eq!(cfg.lake.query_memory_limit_bytes(), 1 << 30);
        assert_eq!(cfg.lake.query_timeout(), Duration::from_secs(3600));
        assert_eq!(cfg.lake.max_concurrent_queries, 2);
        assert_eq!(cfg.lake.max_result_rows, 1_000_000);
        let cfg = Config::parse("[lake]\nquery_memory_limit_mb = 16\nquery_timeout_seconds = 1\n").unwrap();
        assert_eq!(cfg.lake.query_memory_limit_bytes(), 16 << 20);
        assert_eq!(cfg.lake.query_timeout(), Duration::from_secs(1));
        assert_eq!(cfg.lake.max_result_rows, DEFAULT_MAX_RESULT_ROWS);
        let cases = [
            ("query_memory_limit_mb = 0", "lake.query_memory_limit_mb"),
            ("query_memory_limit_mb = 1073741824", "lake.query_memory_limit_mb"),
            ("query_timeout_seconds = 0", "lake.query_timeout_seconds"),
            ("query_timeout_seconds = 3600000", "lake.query_timeout_seconds"),
            ("max_concurrent_queries = 0", "lake.max_concurrent_queries"),
            ("max_concurrent_queries = 65", "lake.max_concurrent_queries"),
            ("max_result_rows = 0", "lake.max_result_rows"),
            ("max_result_rows = 1000000000", "lake.max_result_rows"),
            ("max_result_rows = -1", "max_result_rows"),
            ("query_timeout_seconds = \"1h\"", "query_timeout_seconds"),
            ("query_timeout = 5", "query_timeout"),
        ];
        for (line, want) in cases {
            let err = Config::parse(&format!("[lake]\n{line}\n")).unwrap_err().to_string();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn key_rotation_periods_parse_in_days_hours_minutes_seconds() {
        assert_eq!(Config::parse("").unwrap().keys.rotate_every, None);
        let cfg = Config::parse("[keys]\nrotate_every = \"90d\"\n").unwrap();
        assert_eq!(cfg.keys.rotate_every, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_rotation_period("12h").unwrap(), Duration::from_secs(43_200));
        assert_eq!(parse_rotation_period("2s").unwrap(), Duration::from_secs(2));
        for bad in ["0d", "90", "1y", "d", "-1d"] {
            let err = Config::parse(&format!("[keys]\nrotate_every = {bad:?}\n")).unwrap_err();
            assert!(err.to_string().contains("rotate_every") || err.to_string().contains(bad), "{bad}: {err}");
        }
        assert!(Config::parse("[keys]\nevery = \"1d\"\n").is_err());
    }

    #[test]
    fn delivery_cadences_parse_and_are_bounded() {
        let cfg = Config::parse("").unwrap();
        assert_eq!(cfg.delivery.interval, Duration::from_secs(300));
        assert_eq!(cfg.delivery.digest_interval, Duration::from_secs(3600));
        let cfg = Config::parse("[delivery]\ninterval = \"1s\"\ndigest_interval = \"30s\"\n").unwrap();
        assert_eq!(cfg.delivery.interval, Duration::from_secs(1));
        assert_eq!(cfg.delivery.digest_interval, Duration::from_secs(30));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_interval("60m"), Ok(Duration::from_secs(3600)));
        for bad in ["0s", "61m", "2h", "5", "5 min", "-1s", "1.5m", "", "99999999999999999999h"] {
            let err = Config::parse(&format!("[delivery]\ninterval = {bad:?}\n")).unwrap_err();
            assert!(err.to_string().contains("interval"), "{bad}: {err}");
        }
        let err = Config::parse("[delivery]\ndigest_interval = \"2h\"\n").unwrap_err();
        assert!(err.to_string().contains("digest_interval"), "{err}");
        let err = Config::parse("[delivery]\nevery = \"1s\"\n").unwrap_err();
        assert!(err.to_string().contains("every"), "{err}");
    }

    #[test]
    fn buckets_are_folders_or_s3_and_unnamed_ones_live_in_the_data_dir() {
        let cfg = Config::parse(
            r#"
[buckets.audit-logs]
path = "/var/lib/opentrail/buckets/audit-logs"
[buckets.s3-logs]
endpoint = "http://127.0.0.1:9000"
region = "us-east-1"
access_key_id = "AKIAEXAMPLE"
secret_access_key = "secret"
object_lock = { mode = "GOVERNANCE", days = 365 }
"#,
        )
        .unwrap();
        let data = Path::new("/data");
        assert_eq!(
            cfg.bucket_target("audit-logs", data),
            buckets::BucketTarget::Local { root: "/var/lib/opentrail/buckets/audit-logs".into() }
        );
        assert!(matches!(
            cfg.bucket_target("s3-logs", data),
            buckets::BucketTarget::S3(buckets::S3Target {
                object_lock: Some(buckets::ObjectLock { days: 365, .. }),
                ..
            })
        ));
        assert_eq!(
            cfg.bucket_target("other", data),
            buckets::BucketTarget::Local { root: "/data/buckets/other".into() }
        );
    }

    #[test]
    fn bad_buckets_are_named() {
        let cases = [
            ("[buckets.Bad_Name]\npath = \"/x\"\n", "buckets.Bad_Name"),
            ("[buckets.b1x]\n", "buckets.b1x.endpoint"),
            ("[buckets.b1x]\npath = \"/x\"\nregion = \"us-east-1\"\n", "buckets.b1x.region"),
            (
                "[buckets.b1x]\npath = \"/x\"\nobject_lock = { mode = \"GOVERNANCE\", days = 1 }\n",
                "buckets.b1x.object_lock",
            ),
            (
                "[buckets.b1x]\nendpoint = \"http://s3.example.com\"\nregion = \"r\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n",
                "loopback",
            ),
            (
                "[buckets.b1x]\nendpoint = \"ftp://x\"\nregion = \"r\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n",
                "buckets.b1x.endpoint",
            ),
            (
                "[buckets.b1x]\nendpoint = \"https://s3.example.com\"\nregion = \"r\"\naccess_key_id = \"k\"\n",
                "buckets.b1x.secret_access_key",
            ),
            (
                "[buckets.b1x]\nendpoint = \"https://s3.example.com\"\nregion = \"r\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nobject_lock = { mode = \"FOREVER\", days = 1 }\n",
                "FOREVER",
            ),
            (
                "[buckets.b1x]\nendpoint = \"https://s3.example.com\"\nregion = \"r\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nobject_lock = { mode = \"COMPLIANCE\", days = 0 }\n",
                "buckets.b1x.object_lock.days",
            ),
            ("[buckets.b1x]\npath = \"/x\"\nbogus = 1\n", "bogus"),
        ];
        for (text, want) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
        Config::parse("[buckets.b1x]\nendpoint = \"https://s3.example.com\"\nregion = \"r\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n")
            .unwrap();
    }
}
