//! The real `opentrail serve` process (the harness's: port 0, own data dir, an admin key in its config),
//! opentrail's own client signing as its admin, and what is read from outside the process: disk usage, RSS,
//! restart time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
pub use harness::{Rss, rss};
use serde_json::{Value, json};

pub const ADMIN_KEY: &str = "AKIABENCHADMIN000001";
pub const ADMIN_SECRET: &str = "bench-admin-secret-000000000000000000001";
const REGION: &str = "us-east-1";

/// Writes the server config (one admin principal) into `dir`.
pub fn write_config(dir: &Path) -> Result<PathBuf> {
    write_config_with(dir, "")
}

/// [`write_config`] with `extra` TOML tables (e.g. `[delivery]`, `[buckets.<b>]`) after the principal.
pub fn write_config_with(dir: &Path, extra: &str) -> Result<PathBuf> {
    let path = dir.join("opentrail.toml");
    let text = format!(
        "account_id = \"123456789012\"\nregion = \"{REGION}\"\n\n[[principals]]\naccess_key_id = \"{ADMIN_KEY}\"\n\
         secret_access_key = \"{ADMIN_SECRET}\"\nuser_name = \"bench\"\nrole = \"admin\"\n{extra}"
    );
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// The harness's server, started the benchmark's way: with its config, logging at warn. SIGKILLed when
/// dropped unless stopped first.
pub struct Server(harness::Server);

impl Server {
    /// Starts `bin serve` on port 0 and waits for its "listening on" line.
    pub fn spawn(bin: &Path, data_dir: &Path, config: &Path) -> Result<Server> {
        let opts = harness::ServeOptions {
            config: Some(config.to_path_buf()),
            log_filter: "warn".to_string(),
            ..harness::ServeOptions::new(bin, data_dir)
        };
        Ok(Server(harness::Server::spawn(&opts)?))
    }
}

impl std::ops::Deref for Server {
    type Target = harness::Server;
    fn deref(&self) -> &harness::Server {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut harness::Server {
        &mut self.0
    }
}

/// opentrail's own client (keep-alive, SigV4), signing as the admin, with the calls the benchmark makes.
#[derive(Clone)]
pub struct Client(client::Client);

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
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

/// The members of a LookupEvents answer the bench reads; the rest (the records' text) is skipped.
#[derive(serde::Deserialize)]
struct LookupPage<'a> {
    #[serde(rename = "Events", borrow)]
    events: Vec<LookupEvent<'a>>,
}

#[derive(serde::Deserialize)]
struct LookupEvent<'a> {
    #[serde(rename = "EventId", borrow)]
    event_id: std::borrow::Cow<'a, str>,
}

impl Client {
    pub fn new(addr: &str) -> Client {
        let cred = client::Credential { access_key_id: ADMIN_KEY.into(), secret_access_key: ADMIN_SECRET.into() };
        // `http://` + a socket address is always a valid endpoint.
        Client(client::Client::with_credential(&format!("http://{addr}"), cred).expect("valid endpoint"))
    }

    /// A signed POST, signed at send time as a real client does (the SHA-256 of the body is client work).
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply> {
        let r = self.0.send("POST", path, headers, body).with_context(|| format!("POST {path}"))?;
        Ok(Reply { status: r.status, retry_after: r.retry_after(), body: r.body })
    }

    /// One LookupEvents page of 50 (JSON 1.1): the event ids on it and the server's time when it says.
    pub fn lookup(&self, attrs: &[(model::AttributeKey, String)]) -> Result<crate::lookups::Page> {
        let la: Vec<Value> =
            attrs.iter().map(|(k, v)| json!({"AttributeKey": k.as_str(), "AttributeValue": v})).collect();
        let r = self.0.send_cloudtrail("LookupEvents", &json!({"LookupAttributes": la, "MaxResults": 50}))?;
        if r.status != 200 {
            bail!("LookupEvents answered {}: {}", r.status, r.text());
        }
        // Read as an SDK reads it: into a typed shape, not a generic tree of the whole ~75 KB answer (the
        // client shares the 2 cores with the server, so its parsing counts against lookups/s).
        let page: LookupPage<'_> = serde_json::from_slice(&r.body).context("LookupEvents answer is not JSON")?;
        let ids = page.events.into_iter().map(|e| e.event_id.into_owned()).collect();
        Ok(crate::lookups::Page { ids, server: r.header("server-timing").and_then(parse_server_timing) })
    }

    /// Issue 7's forms: a LookupEvents page of 50 with the conditions as extension attributes, or
    /// `GET /v1/event-counts`. Returns (events on the page or the total counted, the server's time).
    pub fn rich(&self, conditions: &[model::Condition], ask: &crate::richer::Ask) -> Result<(u64, Option<Duration>)> {
        let r = match ask {
            crate::richer::Ask::Page => {
                let la: Vec<Value> = conditions
                    .iter()
                    .flat_map(|c| {
                        c.lookup_values()
                            .into_iter()
                            .map(|v| json!({"AttributeKey": c.key.as_str(), "AttributeValue": v}))
                    })
                    .collect();
                self.0.send_cloudtrail("LookupEvents", &json!({"LookupAttributes": la, "MaxResults": 50}))?
            }
            crate::richer::Ask::Count { by } => {
                let attrs: Vec<String> = conditions.iter().map(|c| c.to_string()).collect();
                let mut pairs: Vec<(&str, &str)> = attrs.iter().map(|a| ("attr", a.as_str())).collect();
                if let Some(by) = by {
                    pairs.push(("by", by.as_str()));
                }
                self.0.send("GET", &format!("/v1/event-counts?{}", client::query_string(&pairs)), &[], b"")?
            }
        };
        if r.status != 200 {
            bail!("{ask:?} answered {}: {}", r.status, r.text());
        }
        let server = r.header("server-timing").and_then(parse_server_timing);
        let n = match ask {
            crate::richer::Ask::Page => {
                let page: LookupPage<'_> =
                    serde_json::from_slice(&r.body).context("LookupEvents answer is not JSON")?;
                page.events.len() as u64
            }
            crate::richer::Ask::Count { .. } => {
                let v: Value = serde_json::from_slice(&r.body).context("event-counts answer is not JSON")?;
                v["Total"].as_u64().context("no Total in the event-counts answer")?
            }
        };
        Ok((n, server))
    }

    /// A CloudTrail JSON 1.1 call (retried on 503 and throttling); a non-2xx answer is an error.
    pub fn cloudtrail(&self, operation: &str, params: &Value) -> Result<Value> {
        self.0.cloudtrail(operation, params).with_context(|| format!("{operation} {params}"))
    }

    /// `GET /metrics`, unsigned (it is not an audited call, so it adds no records to what a trail delivers).
    pub fn metrics(&self) -> Result<String> {
        let c = client::Client::unsigned(self.0.endpoint())?;
        let r = c.send("GET", "/metrics", &[], b"")?;
        if r.status != 200 {
            bail!("GET /metrics answered {}", r.status);
        }
        Ok(r.text())
    }

    /// `GET /healthz`: (status, durableSeq, indexedSeq).
    pub fn health(&self) -> Result<(u16, Option<u64>, Option<u64>)> {
        let h = self.0.health()?;
        Ok((h.status, h.durable_seq, h.indexed_seq))
    }

    /// Polls `/healthz` until the index has applied everything durable; returns the time it took.
    pub fn wait_caught_up(&self, timeout: Duration) -> Result<Duration> {
        Ok(self.0.wait_caught_up(timeout)?)
    }
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
    srv.kill();
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
