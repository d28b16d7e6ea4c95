//! opentrail's own API client: AWS credentials the way every AWS tool finds them, SigV4 signing, and
//! retries on 503/throttling. Used by `opentrail ingest` and `opentrail lookup`, and by `opentrail serve` to
//! read its generated admin key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

/// Hard-coded: how many times a request refused with 503 or ThrottlingException is retried.
const MAX_RETRIES: u32 = 8;

pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    authority: String,
    cred: sigv4::Credential,
    region: String,
}

/// An error answer from the server, AWS-shaped.
#[derive(Debug)]
pub struct ServiceError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ServiceError {}

impl Client {
    pub fn new(endpoint: &str) -> Result<Client> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let authority = endpoint
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
            .ok_or_else(|| anyhow!("endpoint '{endpoint}' must look like http://host:port"))?;
        let cred = credentials()?;
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".to_string());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Ok(Client { agent, endpoint, authority, cred, region })
    }

    /// Sends one signed request and returns the body of a 2xx answer. 503s and throttling are retried.
    pub fn call(&self, path: &str, extra_headers: &[(&str, &str)], body: &[u8], service: &str) -> Result<Vec<u8>> {
        let mut attempt = 0;
        loop {
            let mut headers: Vec<(String, String)> = vec![("host".into(), self.authority.clone())];
            headers.extend(extra_headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            let now = chrono::Utc::now().timestamp();
            sigv4::sign("POST", path, "", &mut headers, body, &self.cred, &self.region, service, now);
            let mut req = self.agent.post(format!("{}{}", self.endpoint, path));
            for (k, v) in &headers {
                if !k.eq_ignore_ascii_case("host") {
                    req = req.header(k.as_str(), v.as_str());
                }
            }
            let mut resp = req.send(body).with_context(|| format!("cannot reach {}", self.endpoint))?;
            let status = resp.status().as_u16();
            let retry_after =
                resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            let bytes = resp.body_mut().with_config().limit(1 << 30).read_to_vec().context("read response")?;
            if (200..300).contains(&status) {
                return Ok(bytes);
            }
            let err = parse_error(status, &bytes);
            let retryable = status == 503 || err.code == "ThrottlingException";
            if retryable && attempt < MAX_RETRIES {
                attempt += 1;
                let wait = retry_after.map(Duration::from_secs).unwrap_or(Duration::from_millis(100 << attempt.min(5)));
                std::thread::sleep(wait);
                continue;
            }
            return Err(err.into());
        }
    }

    /// A CloudTrail JSON 1.1 call.
    pub fn cloudtrail(&self, operation: &str, params: &Value) -> Result<Value> {
        let target = format!("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.{operation}");
        let body = serde_json::to_vec(params)?;
        let out = self.call(
            "/",
            &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", &target)],
            &body,
            "cloudtrail",
        )?;
        serde_json::from_slice(&out).context("server answered with invalid JSON")
    }
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
fn credentials() -> Result<sigv4::Credential> {
    if let (Ok(id), Ok(secret)) = (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
        return Ok(sigv4::Credential { access_key_id: id, secret_access_key: secret });
    }
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
    let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws").join("credentials")));
    let Some(path) = path else { bail!("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with {}",
            path.display()
        )
    })?;
    profile_credential(&text, &profile, &path)
}

/// The key pair of `[profile]` in the text of an AWS shared-credentials file read from `path`.
pub fn profile_credential(text: &str, profile: &str, path: &Path) -> Result<sigv4::Credential> {
    let section =
        ini_section(text, profile).ok_or_else(|| anyhow!("profile '{profile}' not found in {}", path.display()))?;
    let get = |k: &str| section.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(sigv4::Credential { access_key_id: id, secret_access_key: secret }),
        _ => bail!("profile '{profile}' in {} lacks aws_access_key_id / aws_secret_access_key", path.display()),
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
