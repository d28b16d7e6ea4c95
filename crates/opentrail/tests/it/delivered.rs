//! What trails delivered, read back from where it landed (a local bucket folder, or a real S3 server through
//! boto3) and checked the way a user would: the exact key layout, every eventID counted across all log
//! files, which log files the digests list, and `aws cloudtrail validate-logs` over the whole chain.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::support::*;

/// One delivered object.
#[derive(Debug, Clone, Deserialize)]
pub struct Obj {
    pub key: String,
    /// The uncompressed JSON.
    #[serde(default)]
    pub json: serde_json::Value,
    /// User metadata (`x-amz-meta-*` without the prefix).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// S3 Object Lock mode and seconds from now to the retain-until date (S3 only).
    #[serde(default)]
    pub lock_mode: Option<String>,
    #[serde(default)]
    pub retain_secs: Option<f64>,
}

/// Everything in one bucket, split by kind; keys that are neither a log file nor a digest of `trail` are in
/// `strays` with the reason.
#[derive(Debug, Default)]
pub struct Delivered {
    pub logs: Vec<Obj>,
    pub digests: Vec<Obj>,
    pub strays: Vec<(String, String)>,
}

impl Delivered {
    /// eventID → how many log files hold it (a record twice in one file counts twice).
    pub fn event_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for l in &self.logs {
            for r in l.json["Records"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                *counts.entry(r["eventID"].as_str().unwrap_or("?").to_string()).or_default() += 1;
            }
        }
        counts
    }

    /// Log file keys no digest lists.
    pub fn undigested(&self) -> Vec<String> {
        let listed: std::collections::BTreeSet<&str> = self
            .digests
            .iter()
            .flat_map(|d| d.json["logFiles"].as_array().into_iter().flatten())
            .filter_map(|f| f["s3Object"].as_str())
            .collect();
        self.logs.iter().map(|l| l.key.clone()).filter(|k| !listed.contains(k.as_str())).collect()
    }

    /// Panics naming every eventID found more than once.
    pub fn assert_nothing_doubled(&self, what: &str) {
        let doubled: Vec<_> = self.event_counts().into_iter().filter(|(_, c)| *c > 1).collect();
        assert!(doubled.is_empty(), "{what}: events delivered more than once: {doubled:?}");
    }

    /// Panics naming any key outside the CloudTrail layout.
    pub fn assert_layout(&self, what: &str) {
        assert!(self.strays.is_empty(), "{what}: objects outside the CloudTrail layout: {:?}", self.strays);
    }

    fn add(&mut self, obj: Obj, trail: &str, bucket: &str) {
        match layout(&obj.key, trail) {
            Ok(Kind::Log) => {
                if obj.json["Records"].as_array().is_none() {
                    self.strays.push((obj.key.clone(), "log file without Records".into()));
                }
                self.logs.push(obj)
            }
            Ok(Kind::Digest) => {
                if obj.json["digestS3Object"] != obj.key.as_str() || obj.json["digestS3Bucket"] != bucket {
                    self.strays.push((obj.key.clone(), format!("digest names another place: {}", obj.json)));
                }
                self.digests.push(obj)
            }
            Err(reason) => self.strays.push((obj.key.clone(), reason)),
        }
    }
}

enum Kind {
    Log,
    Digest,
}

/// The exact CloudTrail key of a log file (of events, or of Insights events under `CloudTrail-Insight`) or a
/// digest of `trail` (account 123456789012, us-east-1, no prefix):
/// `AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_YYYYMMDDTHHMMZ_<16>.json.gz`
/// and `…/CloudTrail-Digest/…/<acct>_CloudTrail-Digest_<region>_<trail>_<home>_YYYYMMDDTHHMMSSZ.json.gz`, the
/// date folders those of the name.
fn layout(key: &str, trail: &str) -> Result<Kind, String> {
    let parts: Vec<&str> = key.split('/').collect();
    let [root, acct, folder, region, y, m, d, name] = parts[..] else {
        return Err("not 8 path segments".into());
    };
    if root != "AWSLogs" || acct != ACCOUNT || region != "us-east-1" {
        return Err("not under AWSLogs/123456789012/…/us-east-1".into());
    }
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return Err("date folders are not YYYY/MM/DD".into());
    }
    let date = format!("{y}{m}{d}T");
    let Some(stem) = name.strip_suffix(".json.gz") else { return Err("not .json.gz".into()) };
    match folder {
        // Insights events have log files of their own, named by analogy.
        "CloudTrail" | "CloudTrail-Insight" => {
            let rest = stem.strip_prefix(&format!("{ACCOUNT}_{folder}_{region}_{date}")).ok_or("log file name")?;
            let (time, unique) = rest.split_once("Z_").ok_or("log file name: no Z_")?;
            if !digits(time, 4) || unique.len() != 16 || !unique.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("log file name: time {time:?}, unique {unique:?}"));
            }
            Ok(Kind::Log)
        }
        "CloudTrail-Digest" => {
            let want = format!("{ACCOUNT}_CloudTrail-Digest_{region}_{trail}_us-east-1_{date}");
            let time = stem.strip_prefix(&want).ok_or_else(|| format!("digest name is not {want}HHMMSSZ"))?;
            let time = time.strip_suffix('Z').ok_or("digest name: no Z")?;
            if !digits(time, 6) {
                return Err(format!("digest name: time {time:?}"));
            }
            Ok(Kind::Digest)
        }
        other => Err(format!("folder {other:?}")),
    }
}

fn gunzip_json(bytes: &[u8], key: &str) -> serde_json::Value {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut text).unwrap_or_else(|e| panic!("{key}: not gzip: {e}"));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{key}: not JSON: {e}"))
}

/// Every key in a local bucket folder, sorted: not the metadata sidecars (`.opentrail-meta/`), and not the
/// `<key>#<n>` file an upload in progress writes before it links the object into place (docs/formats/buckets.md).
pub fn local_keys(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name() == ".opentrail-meta" {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                let key = rel.to_string_lossy().into_owned();
                let staging =
                    key.rsplit_once('#').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if !staging {
                    out.push(key);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// What a local bucket folder holds (metadata from the `.opentrail-meta/` sidecars).
pub fn read_folder(root: &Path, trail: &str, bucket: &str) -> Delivered {
    let files: Vec<std::path::PathBuf> = local_keys(root).into_iter().map(|k| root.join(k)).collect();
    let mut d = Delivered::default();
    for f in files {
        let key = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&f).unwrap();
        let mut meta_path = root.join(".opentrail-meta").join(&key).into_os_string();
        meta_path.push(".json");
        let metadata = match std::fs::read(&meta_path) {
            Ok(t) => serde_json::from_slice::<serde_json::Value>(&t).unwrap()["metadata"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        let json = if key.ends_with(".json.gz") { gunzip_json(&bytes, &key) } else { serde_json::Value::Null };
        d.add(Obj { key, json, metadata, lock_mode: None, retain_secs: None }, trail, bucket);
    }
    d
}

/// boto3 against an S3 server: every object of `bucket` with its JSON (gunzipped), its user metadata and, from
/// `head_object`, its Object Lock mode and retain-until date.
const S3_DUMP: &str = r#"
import boto3, datetime, gzip, json, os
s3 = boto3.client("s3", endpoint_url=os.environ["S3"], region_name="us-east-1",
                  aws_access_key_id="moto", aws_secret_access_key="moto")
b = os.environ["BUCKET"]
out = []
for page in s3.get_paginator("list_objects").paginate(Bucket=b):
    for o in page.get("Contents", []):
        k = o["Key"]
        body = s3.get_object(Bucket=b, Key=k)["Body"].read()
        h = s3.head_object(Bucket=b, Key=k)
        until = h.get("ObjectLockRetainUntilDate")
        now = datetime.datetime.now(datetime.timezone.utc)
        out.append({"key": k, "json": json.loads(gzip.decompress(body)), "metadata": h.get("Metadata", {}),
                    "lock_mode": h.get("ObjectLockMode"),
                    "retain_secs": (until - now).total_seconds() if until else None})
print(json.dumps(out))
"#;

/// What an S3 bucket at `endpoint` holds.
pub fn read_s3(endpoint: &str, bucket: &str, trail: &str) -> Delivered {
    let out = std::process::Command::new("python3")
        .args(["-c", S3_DUMP])
        .env("S3", endpoint)
        .env("BUCKET", bucket)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .output()
        .expect("run python3");
    assert!(out.status.success(), "listing s3://{bucket} failed: {}", String::from_utf8_lossy(&out.stderr));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut d = Delivered::default();
    for item in items {
        d.add(serde_json::from_value(item).unwrap(), trail, bucket);
    }
    d
}

/// Polls `probe` until it returns `Some`, at most `limit`; the panic names `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    wait_until(what, limit, || probe().ok_or_else(String::new))
}

/// Polls `probe` until it returns `Ok`, at most `limit`; the panic names `what` and the last `Err` (what
/// was still missing).
pub fn wait_until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) => assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}: {last}"),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `aws cloudtrail validate-logs` over the trail, its CloudTrail calls to opentrail and its S3 calls to
/// `s3_endpoint` (opentrail's own S3 API or another server), from an hour ago.
pub fn validate_logs(s: &Server, trail: &str, s3_endpoint: &str) -> Output {
    validate_logs_with(s, trail, s3_endpoint, &[])
}

/// [`validate_logs`] with more arguments (`--s3-bucket` for a trail DescribeTrails no longer knows).
pub fn validate_logs_with(s: &Server, trail: &str, s3_endpoint: &str, extra: &[&str]) -> Output {
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    s.aws(ADMIN_KEY, ADMIN_SECRET)
        .env("AWS_ENDPOINT_URL_S3", s3_endpoint)
        .args([
            "cloudtrail",
            "validate-logs",
            "--trail-arn",
            &format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{trail}"),
            "--start-time",
            &start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "--verbose",
        ])
        .args(extra)
        .output()
        .expect("run aws")
}

/// validate-logs exits 0, reports nothing INVALID, and found at least `min_digests` digests.
pub fn assert_all_valid(out: &Output, min_digests: usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "validate-logs failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("INVALID") && !stderr.contains("INVALID"), "{stdout}\n{stderr}");
    let line = stdout.lines().find(|l| l.contains("digest files valid")).unwrap_or_else(|| panic!("{stdout}"));
    let (valid, total) = line.split_whitespace().next().unwrap().split_once('/').unwrap();
    assert_eq!(valid, total, "{stdout}");
    assert!(valid.parse::<usize>().unwrap() >= min_digests, "{stdout}");
}

/// `n` IAM calls with eventIDs `<tag>-0 … <tag>-(n-1)`, as NDJSON.
pub fn events(tag: &str, n: usize) -> (Vec<String>, String) {
    let ids: Vec<String> = (0..n).map(|i| format!("{tag}-{i}")).collect();
    let body = ids
        .iter()
        .enumerate()
        .map(|(i, id)| api_call(id, &format!("2026-01-01T00:00:{:02}Z", i % 60), "CreateUser", "John") + "\n")
        .collect();
    (ids, body)
}

/// A CloudTrail call as the admin that must succeed; its answer.
pub fn call(s: &Server, op: &str, params: serde_json::Value) -> serde_json::Value {
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, op, &params);
    assert_eq!(r.status, 200, "{op}: {}", r.text());
    r.json()
}

/// A sample of `/metrics`: `family{trail="<trail>"}`, 0 when absent.
pub fn metric(s: &Server, family: &str, trail: &str) -> u64 {
    let text = s.raw("GET", "/metrics", &[], b"").text();
    let prefix = format!("{family}{{trail=\"{trail}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |v| v.trim().parse().unwrap())
}
