//! opentrail's one API client: AWS credentials the way every AWS tool finds them, SigV4 signing, and
//! retries on 503/throttling. Used by `opentrail ingest` and `opentrail lookup`, by the black-box tests
//! (which also need error answers as they came: [`Client::send`]) and by the benchmark.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
pub use sigv4::Credential;

/// Hard-coded: how many times a request refused with 503 or ThrottlingException is retried by [`Client::call`].
const MAX_RETRIES: u32 = 8;

/// Hard-coded: the largest answer body read (a LookupEvents page is far smaller).
const MAX_BODY_BYTES: u64 = 1 << 30;

/// Hard-coded: idle keep-alive connections kept per host (the benchmark's lookup threads each keep one).
const IDLE_CONNECTIONS_PER_HOST: usize = 16;

/// The `User-Agent` of every request this client sends, `opentrail/<version>` (not the HTTP library's):
/// the audit records of the CLI's own calls say which tool made them, and `opentrail lookup` recognises
/// its own reads by it.
pub const USER_AGENT: &str = concat!("opentrail/", env!("CARGO_PKG_VERSION"));

/// The `X-Amz-Target` prefix of every CloudTrail JSON 1.1 operation.
const CLOUDTRAIL_TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";

/// A keep-alive HTTP client for one endpoint that signs every request with SigV4 as one principal (or,
/// made with [`Client::unsigned`], signs nothing). Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    authority: String,
    cred: Option<Credential>,
    region: String,
}

/// Why a request or the client's setup failed. A non-2xx answer is an error only for [`Client::call`] and
/// [`Client::cloudtrail`]; [`Client::send`] returns it as a [`Response`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("endpoint '{endpoint}' must look like http://host:port")]
    BadEndpoint { endpoint: String },
    #[error("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    NoCredentials,
    #[error("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with {}", path.display())]
    CredentialsFile { path: PathBuf, source: std::io::Error },
    #[error("profile '{profile}' not found in {}", path.display())]
    ProfileNotFound { profile: String, path: PathBuf },
    #[error("profile '{profile}' in {} lacks aws_access_key_id / aws_secret_access_key", path.display())]
    ProfileIncomplete { profile: String, path: PathBuf },
    #[error("malformed request")]
    BadRequest { source: ureq::http::Error },
    #[error("cannot reach {endpoint}")]
    Unreachable { endpoint: String, source: ureq::Error },
    #[error("read response")]
    ReadResponse { source: ureq::Error },
    #[error("server answered with invalid JSON")]
    InvalidJson { source: serde_json::Error },
    #[error("index did not catch up within {timeout:?}")]
    NotCaughtUp { timeout: Duration },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ClientError {
    /// No server answers at the endpoint: the connection was refused (nothing listens on that port).
    pub fn connection_refused(&self) -> bool {
        match self {
            ClientError::Unreachable { source: ureq::Error::Io(e), .. } => {
                e.kind() == std::io::ErrorKind::ConnectionRefused
            }
            ClientError::Unreachable { source: ureq::Error::ConnectionFailed, .. } => true,
            _ => false,
        }
    }
}

/// An answer as it came: any status, the headers (names lowercase) and the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in seconds, when the server sent one.
    pub fn retry_after(&self) -> Option<u64> {
        self.header("retry-after").and_then(|v| v.trim().parse().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET /healthz`: the status (503 while the journal is poisoned) and how far the journal and the index are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub status: u16,
    pub durable_seq: Option<u64>,
    pub indexed_seq: Option<u64>,
    /// Bytes waiting for the journal's next group commit (audit records of answered reads among them).
    pub queued_bytes: Option<u64>,
}

/// The SigV4 signing name the server expects for the surface at `path`: `cloudtrail-data` for
/// `/PutAuditEvents`, `opentrail` for the native API under `/v1/`, `cloudtrail` for the rest.
pub fn signing_name(path: &str) -> &'static str {
    if path == "/PutAuditEvents" {
        "cloudtrail-data"
    } else if path.starts_with("/v1/") {
        "opentrail"
    } else {
        "cloudtrail"
    }
}

/// An error answer from the server, AWS-shaped.
#[derive(Debug, thiserror::Error)]
#[error("{code} (HTTP {status}): {message}")]
pub struct ServiceError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Client {
    /// A client of `endpoint` (`http://host:port`) with the credentials and region every AWS tool would use:
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or a profile, `AWS_REGION`/`AWS_DEFAULT_REGION`.
    pub fn new(endpoint: &str) -> Result<Client, ClientError> {
        let mut client = Self::unsigned(endpoint)?;
        client.cred = Some(credentials()?);
        client.region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".to_string());
        Ok(client)
    }

    /// A client of `endpoint` that signs as `cred`, in `us-east-1`.
    pub fn with_credential(endpoint: &str, cred: Credential) -> Result<Client, ClientError> {
        let mut client = Self::unsigned(endpoint)?;
        client.cred = Some(cred);
        Ok(client)
    }

    /// A client of `endpoint` that signs nothing: `/healthz`, `/metrics`, and requests signed by hand.
    pub fn unsigned(endpoint: &str) -> Result<Client, ClientError> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let authority = endpoint
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
            .ok_or_else(|| ClientError::BadEndpoint { endpoint: endpoint.clone() })?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_HOST)
            .user_agent(USER_AGENT)
            .build()
            .into();
        Ok(Client { agent, endpoint, authority, cred: None, region: "us-east-1".to_string() })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The credential requests are signed with (`None` for an unsigned client): `opentrail validate` reads
    /// the server's S3 API with the same one.
    pub fn credential(&self) -> Option<&Credential> {
        self.cred.as_ref()
    }

    /// The Region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Sends one request, signed now for the surface at its path ([`signing_name`]), once. Any status is an answer; an error
    /// means no whole answer arrived (the server is not there, or the connection broke).
    pub fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, ClientError> {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        self.send_signed_at(method, path_and_query, headers, body, signing_name(path), now_secs())
    }

    /// [`Client::send`], signed for `service` as if the clock read `at_epoch_secs`.
    pub fn send_signed_at(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        service: &str,
        at_epoch_secs: i64,
    ) -> Result<Response, ClientError> {
        let signing = self.cred.as_ref().map(|cred| (cred, service, at_epoch_secs));
        self.execute(method, path_and_query, headers, body, signing)
    }

    /// Sends one request, signed with `signing` (credential, service, time) when given.
    fn execute(
        &self,
        method: &str,
        path_and_query: &str,
        extra_headers: &[(&str, &str)],
        body: &[u8],
        signing: Option<(&Credential, &str, i64)>,
    ) -> Result<Response, ClientError> {
        let mut headers: Vec<(String, String)> = vec![("host".into(), self.authority.clone())];
        headers.extend(extra_headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if let Some((cred, service, at_epoch_secs)) = signing {
            let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
            sigv4::sign(method, path, query, &mut headers, body, cred, &self.region, service, at_epoch_secs);
        }
        let mut req = ureq::http::Request::builder().method(method).uri(format!("{}{path_and_query}", self.endpoint));
        for (k, v) in &headers {
            if !k.eq_ignore_ascii_case("host") {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let req = req.body(body).map_err(|source| ClientError::BadRequest { source })?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|source| ClientError::Unreachable { endpoint: self.endpoint.clone(), source })?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|source| ClientError::ReadResponse { source })?;
        Ok(Response { status, headers, body })
    }

    /// A CloudTrail JSON 1.1 call sent once; any status is an answer (see [`Client::send`]).
    pub fn send_cloudtrail(&self, operation: &str, params: &Value) -> Result<Response, ClientError> {
        self.send_cloudtrail_with(operation, params, &[])
    }

    /// [`Client::send_cloudtrail`] with more headers.
    pub fn send_cloudtrail_with(
        &self,
        operation: &str,
        params: &Value,
        extra_headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let target = format!("{CLOUDTRAIL_TARGET}.{operation}");
        self.send("POST", "/", &cloudtrail_headers(&target, extra_headers), params.to_string().as_bytes())
    }

    /// Sends one signed POST and returns the body of a 2xx answer. 503s and throttling are retried; any other
    /// non-2xx answer is a [`ServiceError`].
    pub fn call(
        &self,
        path: &str,
        extra_headers: &[(&str, &str)],
        body: &[u8],
        service: &str,
    ) -> Result<Vec<u8>, ClientError> {
        self.call_with("POST", path, extra_headers, body, service)
    }

    /// A signed GET of the native API (`/v1/…?query`, see [`query_string`]), retried as [`Client::call`]
    /// does; the JSON body of a 2xx answer.
    pub fn get_json(&self, path_and_query: &str) -> Result<Value, ClientError> {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        let out = self.call_with("GET", path_and_query, &[], b"", signing_name(path))?;
        serde_json::from_slice(&out).map_err(|source| ClientError::InvalidJson { source })
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        extra_headers: &[(&str, &str)],
        body: &[u8],
        service: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let mut attempt = 0;
        loop {
            let resp = self.send_signed_at(method, path, extra_headers, body, service, now_secs())?;
            if (200..300).contains(&resp.status) {
                return Ok(resp.body);
            }
            let err = parse_error(resp.status, &resp.body);
            let retryable = resp.status == 503 || err.code == "ThrottlingException";
            if retryable && attempt < MAX_RETRIES {
                attempt += 1;
                let wait =
                    resp.retry_after().map(Duration::from_secs).unwrap_or(Duration::from_millis(100 << attempt.min(5)));
                std::thread::sleep(wait);
                continue;
            }
            return Err(err.into());
        }
    }

    /// A CloudTrail JSON 1.1 call, retried as [`Client::call`] does; a non-2xx answer is an error.
    pub fn cloudtrail(&self, operation: &str, params: &Value) -> Result<Value, ClientError> {
        self.cloudtrail_with(operation, params, &[])
    }

    /// [`Client::cloudtrail`] with more headers.
    pub fn cloudtrail_with(
        &self,
        operation: &str,
        params: &Value,
        extra_headers: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let target = format!("{CLOUDTRAIL_TARGET}.{operation}");
        let out =
            self.call("/", &cloudtrail_headers(&target, extra_headers), params.to_string().as_bytes(), "cloudtrail")?;
        serde_json::from_slice(&out).map_err(|source| ClientError::InvalidJson { source })
    }

    /// `GET /healthz`, unsigned.
    pub fn health(&self) -> Result<Health, ClientError> {
        let r = self.execute("GET", "/healthz", &[], b"", None)?;
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        Ok(Health {
            status: r.status,
            durable_seq: v["durableSeq"].as_u64(),
            indexed_seq: v["indexedSeq"].as_u64(),
            queued_bytes: v["queuedBytes"].as_u64(),
        })
    }

    /// Polls `/healthz` until the server is healthy and its index has applied everything durable; returns the
    /// time it took.
    pub fn wait_caught_up(&self, timeout: Duration) -> Result<Duration, ClientError> {
        let start = Instant::now();
        loop {
            if let Ok(h) = self.health()
                && h.status == 200
                && h.durable_seq == h.indexed_seq
                && h.queued_bytes.unwrap_or(0) == 0
            {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(ClientError::NotCaughtUp { timeout });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The headers of a CloudTrail JSON 1.1 call to `target`, then `extra`.
fn cloudtrail_headers<'a>(target: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)];
    headers.extend_from_slice(extra);
    headers
}

/// Seconds since the Unix epoch, as SigV4 wants them.
/// A query string of `pairs`, every byte but RFC 3986's unreserved ones percent-encoded (as SigV4's
/// canonical query has them, so the signature holds whatever the values contain).
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn parse_error(status: u16, body: &[u8]) -> ServiceError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v.get("__type").and_then(Value::as_str).unwrap_or("HttpError");
    let code = code.rsplit('#').next().unwrap_or(code).to_string();
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    ServiceError { status, code, message }
}

/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, else the `AWS_PROFILE` (or `default`) section of the
/// shared credentials file, as every AWS tool does.
pub fn credentials() -> Result<Credential, ClientError> {
    if let (Ok(id), Ok(secret)) = (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credential { access_key_id: id, secret_access_key: secret });
    }
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
    named_profile_credential(&profile)
}

/// The `[profile]` section of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials`), whatever the environment says.
pub fn named_profile_credential(profile: &str) -> Result<Credential, ClientError> {
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join("credentials")));
    let Some(path) = path else { return Err(ClientError::NoCredentials) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(source) => return Err(ClientError::CredentialsFile { path, source }),
    };
    profile_credential(&text, profile, &path)
}

/// The key pair of `[profile]` in the text of an AWS shared-credentials file read from `path`.
pub fn profile_credential(text: &str, profile: &str, path: &Path) -> Result<Credential, ClientError> {
    let section = ini_section(text, profile)
        .ok_or_else(|| ClientError::ProfileNotFound { profile: profile.to_string(), path: path.to_path_buf() })?;
    let get = |k: &str| section.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Credential { access_key_id: id, secret_access_key: secret }),
        _ => Err(ClientError::ProfileIncomplete { profile: profile.to_string(), path: path.to_path_buf() }),
    }
}

/// The `key = value` pairs of one `[section]` of an INI file.
fn ini_section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut current: Option<&str> = None;
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(s.trim());
            if current == Some(name) {
                found.get_or_insert_with(Vec::new);
            }
            continue;
        }
        if current == Some(name)
            && let Some((k, v)) = line.split_once('=')
        {
            found.get_or_insert_with(Vec::new).push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_profile_only() {
        let text =
            "[default]\naws_access_key_id = A\n[opentrail]\n# c\naws_access_key_id = B\naws_secret_access_key = S\n";
        let s = ini_section(text, "opentrail").unwrap();
        assert_eq!(s, vec![("aws_access_key_id".into(), "B".into()), ("aws_secret_access_key".into(), "S".into())]);
        assert!(ini_section(text, "nope").is_none());
    }

    #[test]
    fn error_bodies_are_read_like_botocore() {
        let e = parse_error(400, br#"{"__type":"com.amazon#TrailNotFoundException","message":"gone"}"#);
        assert_eq!(e.code, "TrailNotFoundException");
        assert_eq!(e.message, "gone");
    }
}
