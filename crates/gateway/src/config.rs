//! The gateway's configuration: one `[[gateways]]` entry of the server config, or the whole file of
//! `opentrail gateway --config FILE` (the same keys at the top level). Format reference: `docs/gateway.md`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

/// Default of [`GatewayConfig::capture_bytes`]: 64 KiB of each body is kept for the record.
pub const DEFAULT_CAPTURE_BYTES: usize = 64 * 1024;
/// Default of [`GatewayConfig::upstream_timeout_ms`]: the upstream's response head (and each later
/// stretch of its body) must come within this long, else 504.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 30_000;
/// Default of [`GatewayConfig::record_timeout_ms`]: a record not durable within this long fails the call.
pub const DEFAULT_RECORD_TIMEOUT_MS: u64 = 10_000;
/// Hard-coded: the largest `capture_bytes` (a record member is cut at 100 KiB by CloudTrail anyway).
pub const MAX_CAPTURE_BYTES: usize = 1024 * 1024;

/// What the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An AWS-compatible service: records as AWS writes them (`awsproto`), identity from SigV4.
    #[default]
    Aws,
    /// Any HTTP API: eventName from OpenAPI, identity from a JWT or Basic auth.
    Http,
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        match s {
            "aws" => Ok(Kind::Aws),
            "http" => Ok(Kind::Http),
            other => Err(format!("kind {other:?} is neither \"aws\" nor \"http\"")),
        }
    }
}

/// How much of a call is recorded, as Kubernetes audit levels say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Default)]
pub enum Level {
    /// Not recorded at all.
    None,
    /// Who, what, when, outcome; no request parameters or response elements.
    Metadata,
    /// Metadata and the request parameters.
    Request,
    /// Everything: request parameters and response elements.
    #[default]
    RequestResponse,
}

/// One capture-policy rule: every non-empty list must have a match; the first rule that matches wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub level: Level,
    /// HTTP methods (any case).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path globs: `*` within one segment, `**` across segments, `?` one character.
    #[serde(default)]
    pub paths: Vec<String>,
    /// eventName globs (`Get*`, `CreateUser`, `listPets`).
    #[serde(default)]
    pub operations: Vec<String>,
    /// User globs, matched against the caller's user name, ARN, JWT subject or access key id.
    #[serde(default)]
    pub users: Vec<String>,
}

/// `[redaction]`: secrets are always redacted; these only add to the defaults and choose the replacement.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    /// Hex key: secrets are replaced by `HMAC-SHA256:<hex>` of their value, so equal secrets correlate.
    pub hmac_key: Option<String>,
    /// More field names to treat as secret (compared ignoring case, `_` and `-`).
    #[serde(default)]
    pub fields: Vec<String>,
}

/// `[jwt]`: where the identity of a `kind = "http"` call comes from.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The claim naming the user (default `sub`).
    pub claim: Option<String>,
    /// A PEM public key (RSA or EC) or, when the file holds no PEM, an HMAC secret.
    pub key_file: Option<PathBuf>,
    /// A JWKS document (`{"keys":[…]}`); the token's `kid` picks the key.
    pub jwks_file: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// A known caller of the upstream (`[[identities]]`), or one of opentrail's own `[[principals]]` (whose
/// secret and role are ignored here: the gateway never verifies signatures, the upstream does).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub access_key_id: String,
    /// `IAMUser` (default), `AssumedRole` or `Root`.
    #[serde(rename = "type")]
    pub identity_type: Option<String>,
    pub user_name: Option<String>,
    pub role_name: Option<String>,
    pub session_name: Option<String>,
    pub account_id: Option<String>,
    /// Accepted so a `[[principals]]` table can be used as it is; never read.
    pub secret_access_key: Option<String>,
    /// Accepted so a `[[principals]]` table can be used as it is; never read.
    pub role: Option<String>,
    /// Accepted so a `[[principals]]` table can be used as it is; never read.
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Names the gateway in provenance (`gateway:<name>`), logs and metrics.
    #[serde(default = "default_name")]
    pub name: String,
    /// `host:port` to listen on (port 0 picks one; the process prints it).
    pub listen: Option<String>,
    /// `http://host:port[/base]` of the service behind the gateway.
    pub upstream: Option<String>,
    #[serde(default)]
    pub kind: Kind,
    /// `eventSource` of `kind = "http"` records (default: the upstream's host).
    pub event_source: Option<String>,
    /// `recipientAccountId` and the account of unknown callers (default: the server's account).
    pub account_id: Option<String>,
    /// `awsRegion` when the call names none (default: the server's region).
    pub region: Option<String>,
    #[serde(default = "default_capture_bytes")]
    pub capture_bytes: usize,
    #[serde(default = "default_upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
    #[serde(default = "default_record_timeout_ms")]
    pub record_timeout_ms: u64,
    /// Spool mode: records are appended here and forwarded in the background.
    pub spool: Option<PathBuf>,
    /// An OpenAPI 3 document (JSON or YAML) for `kind = "http"` event names.
    pub openapi: Option<PathBuf>,
    #[serde(default)]
    pub jwt: JwtConfig,
    /// The level of a call no rule matches.
    #[serde(default)]
    pub default_level: Level,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub redaction: RedactionConfig,
    #[serde(default)]
    pub identities: Vec<IdentityConfig>,
    #[serde(default)]
    pub principals: Vec<IdentityConfig>,
    /// Peers whose `X-Forwarded-For` is believed for `sourceIPAddress`.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    /// HTTPS on the gateway's listener (then records carry `tlsDetails`).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

fn default_name() -> String {
    "gateway".to_string()
}
fn default_capture_bytes() -> usize {
    DEFAULT_CAPTURE_BYTES
}
fn default_upstream_timeout_ms() -> u64 {
    DEFAULT_UPSTREAM_TIMEOUT_MS
}
fn default_record_timeout_ms() -> u64 {
    DEFAULT_RECORD_TIMEOUT_MS
}

impl Default for GatewayConfig {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

/// A config that cannot be used, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Parse { path: PathBuf, source: toml::de::Error },
}

impl GatewayConfig {
    /// Reads `opentrail gateway --config FILE`.
    pub fn load(path: &std::path::Path) -> Result<GatewayConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })
    }

    /// Reads one `[[gateways]]` table of the server config; `at` (`gateways[0].`) prefixes field names.
    pub fn from_table(table: &toml::Table, at: &str) -> Result<GatewayConfig, ConfigError> {
        let cfg: GatewayConfig =
            serde::Deserialize::deserialize(toml::Value::Table(table.clone())).map_err(|e: toml::de::Error| {
                ConfigError::Invalid { field: at.trim_end_matches('.').to_string(), reason: e.to_string() }
            })?;
        cfg.validate(at)?;
        if cfg.upstream.is_none() {
            return Err(ConfigError::Invalid { field: format!("{at}upstream"), reason: "required".into() });
        }
        if cfg.listen.is_none() {
            return Err(ConfigError::Invalid { field: format!("{at}listen"), reason: "required".into() });
        }
        Ok(cfg)
    }

    /// Checks what serde cannot; `at` prefixes field names (`gateways[0].`).
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: &str| {
            Err(ConfigError::Invalid { field: format!("{at}{field}"), reason: reason.to_string() })
        };
        if self.name.is_empty() || self.name.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return invalid("name", "must be a non-empty name without spaces");
        }
        if self.capture_bytes > MAX_CAPTURE_BYTES {
            return invalid("capture_bytes", "must be at most 1048576 (1 MiB)");
        }
        if self.upstream_timeout_ms == 0 || self.record_timeout_ms == 0 {
            return invalid("upstream_timeout_ms", "timeouts must be more than 0");
        }
        if let Some(u) = &self.upstream {
            crate::proxy::Upstream::parse(u)
                .map_err(|reason| ConfigError::Invalid { field: format!("{at}upstream"), reason })?;
        }
        if let Some(k) = &self.redaction.hmac_key {
            match hex::decode(k) {
                Ok(b) if b.len() >= 16 => {}
                _ => return invalid("redaction.hmac_key", "must be at least 16 bytes, hex-encoded"),
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return invalid("tls_cert_file", "tls_cert_file and tls_key_file go together");
        }
        if self.jwt.key_file.is_some() && self.jwt.jwks_file.is_some() {
            return invalid("jwt.key_file", "give key_file or jwks_file, not both");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_config_has_the_documented_defaults() {
        let c = GatewayConfig::default();
        assert_eq!(c.capture_bytes, DEFAULT_CAPTURE_BYTES);
        assert_eq!(c.kind, Kind::Aws);
        assert_eq!(c.default_level, Level::RequestResponse);
        assert!(c.validate("").is_ok());
    }

    #[test]
    fn rules_identities_and_principals_parse_and_bad_values_are_named() {
        let c: GatewayConfig = toml::from_str(
            r#"
            name = "pets"
            kind = "http"
            upstream = "http://127.0.0.1:5000"
            [[rules]]
            level = "None"
            paths = ["/healthz"]
            [[identities]]
            access_key_id = "AKIAJOHN"
            user_name = "John"
            [[principals]]
            access_key_id = "AKIAW"
            secret_access_key = "s"
            role = "writer"
            "#,
        )
        .unwrap();
        assert_eq!(c.rules[0].level, Level::None);
        assert_eq!(c.principals[0].access_key_id, "AKIAW");
        let mut bad = c.clone();
        bad.redaction.hmac_key = Some("zz".into());
        let err = bad.validate("gateways[0].").unwrap_err().to_string();
        assert!(err.starts_with("gateways[0].redaction.hmac_key"), "{err}");
        let mut bad = c;
        bad.upstream = Some("ftp://x".into());
        assert!(bad.validate("").unwrap_err().to_string().starts_with("upstream"));
    }
}
