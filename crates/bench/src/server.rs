//! The real `opentrail serve` process (port 0, own data dir, an admin key in its config), a SigV4-signing
//! HTTP client for it, and what is read from outside the process: disk usage, RSS, restart time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

pub const ADMIN_KEY: &str = "AKIABENCHADMIN000001";
const ADMIN_SECRET: &str = "bench-admin-secret-000000000000000000001";
const REGION: &str = "us-east-1";
const LOOKUP_TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";

/// Writes the server config (one admin principal) into `dir`.
pub fn write_config(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("opentrail.toml");
    let text = format!(
        "account_id = \"123456789012\"\nregion = \"{REGION}\"\n\n[[principals]]\naccess_key_id = \"{ADMIN_KEY}\"\n\
         secret_access_key = \"{ADMIN_SECRET}\"\nuser_name = \"bench\"\nrole = \"admin\"\n"
    );
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// A running server; SIGKILLed when dropped unless stopped first.
pub struct Server {
    child: Child,
    pub addr: String,
    log: PathBuf,
}

impl Server {
    /// Starts `bin serve` and waits for its "listening on" line.
    pub fn spawn(bin: &Path, data_dir: &Path, config: &Path) -> Result<Server> {
        std::fs::create_dir_all(data_dir)?;
        let log = data_dir.with_extension("stderr.log");
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("OPENTRAIL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("opentrail listening on http://") {
                        break rest.trim().to_string();
                    }
                }
                _ => bail!("server exited before listening: {}", std::fs::read_to_string(&log).unwrap_or_default()),
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, addr, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }

    /// Server log lines at ERROR level, if any (reported, never silently ignored).
    pub fn errors_logged(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines().filter(|l| l.contains("ERROR")).map(str::to_string).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A keep-alive HTTP client that signs every request with SigV4 as the admin.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    host: String,
    cred: sigv4::Credential,
}

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
    /// `Server-Timing: app;dur=<ms>`, the server's own time for the request, when it sends one.
    pub server_time: Option<Duration>,
    pub body: Vec<u8>,
}

/// The `app` metric of a `Server-Timing` header (`app;dur=0.84`, possibly among other metrics).
pub fn parse_server_timing(header: &str) -> Option<Duration> {
    header.split(',').find_map(|metric| {
        let mut parts = metric.split(';').map(str::trim);
        if parts.next()? != "app" {
            return None;
        }
        let ms: f64 = parts.find_map(|p| p.strip_prefix("dur="))?.trim_matches('"').parse().ok()?;
        (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0))
    })
}

impl Client {
    pub fn new(addr: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .max_idle_connections_per_host(16)
            .build()
            .into();
        Client {
            agent,
            endpoint: format!("http://{addr}"),
            host: addr.to_string(),
            cred: sigv4::Credential { access_key_id: ADMIN_KEY.into(), secret_access_key: ADMIN_SECRET.into() },
        }
    }

    /// A signed POST, signed at send time as a real client does (the SHA-256 of the body is client work).
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply> {
        let mut hs: Vec<(String, String)> = vec![("host".into(), self.host.clone())];
        hs.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        sigv4::sign("POST", path, "", &mut hs, body, &self.cred, REGION, "cloudtrail", now_secs());
        let mut req = self.agent.post(format!("{}{path}", self.endpoint));
        for (k, v) in hs.iter().filter(|(k, _)| k != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = req.send(body).with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let retry_after =
            resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        let server_time =
            resp.headers().get("server-timing").and_then(|v| v.to_str().ok()).and_then(parse_server_timing);
        let body = resp.body_mut().with_config().limit(1 << 30).read_to_vec()?;
        Ok(Reply { status, retry_after, server_time, body })
    }

    /// One LookupEvents page of 50 (JSON 1.1): the event ids on it and the server's time when it says.
    pub fn lookup(&self, attrs: &[(model::AttributeKey, String)]) -> Result<crate::lookups::Page> {
        let la: Vec<Value> =
            attrs.iter().map(|(k, v)| json!({"AttributeKey": k.as_str(), "AttributeValue": v})).collect();
        let body = json!({"LookupAttributes": la, "MaxResults": 50}).to_string();
        let r = self.post(
            "/",
            &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", LOOKUP_TARGET)],
            body.as_bytes(),
        )?;
        if r.status != 200 {
            bail!("LookupEvents answered {}: {}", r.status, String::from_utf8_lossy(&r.body));
        }
        let v: Value = serde_json::from_slice(&r.body).context("LookupEvents answer is not JSON")?;
        let ids = v["Events"]
            .as_array()
            .map(|events| events.iter().map(|e| e["EventId"].as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_default();
        Ok(crate::lookups::Page { ids, server: r.server_time })
    }

    /// `GET /healthz`: (status, durableSeq, indexedSeq).
    pub fn health(&self) -> Result<(u16, Option<u64>, Option<u64>)> {
        let mut resp = self.agent.get(format!("{}/healthz", self.endpoint)).call()?;
        let status = resp.status().as_u16();
        let v: Value = serde_json::from_slice(&resp.body_mut().read_to_vec()?).unwrap_or(Value::Null);
        Ok((status, v["durableSeq"].as_u64(), v["indexedSeq"].as_u64()))
    }

    /// Polls `/healthz` until the index has applied everything durable; returns the time it took.
    pub fn wait_caught_up(&self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if let Ok((200, d, i)) = self.health()
                && d == i
            {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!("index did not catch up within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Apparent size of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_bytes(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

/// VmHWM and VmRSS of a process, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    pub hwm: u64,
    pub rss: u64,
}

pub fn rss(pid: u32) -> Result<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status.lines().find(|l| l.starts_with(name)).ok_or_else(|| anyhow!("no {name} in status"))?;
        let kb: u64 = line.split_whitespace().nth(1).ok_or_else(|| anyhow!("bad {name}"))?.parse()?;
        Ok(kb * 1024)
    };
    Ok(Rss { hwm: field("VmHWM:")?, rss: field("VmRSS:")? })
}

/// Restart timings after SIGKILL.
#[derive(Debug, Clone, Copy)]
pub struct Restart {
    /// Spawn → `/healthz` answers 200.
    pub to_healthy: Duration,
    /// Spawn → indexedSeq == durableSeq.
    pub to_caught_up: Duration,
    pub durable_seq: u64,
}

/// SIGKILLs `srv`, starts a new server on the same data dir and times it back to serving.
pub fn kill_and_restart(srv: &mut Server, bin: &Path, data_dir: &Path, config: &Path) -> Result<Restart> {
    srv.kill9();
    let start = Instant::now();
    *srv = Server::spawn(bin, data_dir, config)?;
    let client = Client::new(&srv.addr);
    let (to_healthy, durable) = loop {
        if let Ok((200, d, _)) = client.health() {
            break (start.elapsed(), d.unwrap_or(0));
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("restarted server not healthy after 600s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    client.wait_caught_up(Duration::from_secs(600))?;
    Ok(Restart { to_healthy, to_caught_up: start.elapsed(), durable_seq: durable })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_app_metric_is_read_among_others() {
        assert_eq!(parse_server_timing("app;dur=0.84"), Some(Duration::from_micros(840)));
        assert_eq!(parse_server_timing("db;dur=3, app;desc=\"lookup\";dur=1.5"), Some(Duration::from_micros(1500)));
        assert_eq!(parse_server_timing("db;dur=3"), None);
        assert_eq!(parse_server_timing("app;dur=abc"), None);
        assert_eq!(parse_server_timing("app"), None);
    }
}
