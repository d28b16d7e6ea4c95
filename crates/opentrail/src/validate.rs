//! `opentrail validate` (the auditor's check of a trail's log files and digests, online against a server or
//! offline from a bucket folder and public key files) and `opentrail keys list|rotate`. The checking itself is
//! `integrity::validate`; this file gathers its inputs, drives it with a progress bar, and prints its report.
//! Exit codes: 0 valid, 1 invalid, 2 could not run.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use buckets::{Bucket, BucketTarget, S3Target};
use client::Client;
use integrity::keys::{PublicKey, fingerprint, is_pkcs1_public_key, pkcs1_from_spki};
use integrity::layout::DigestKey;
use integrity::validate::{Progress, Stream, ValidateParams};
use model::EventTime;
use serde_json::{Value, json};

use crate::bucket_source::BucketSource;

/// The aws CLI asks ListPublicKeys for keys valid up to two hours after the end of the range (a digest
/// delivered then may cover the range's last hour).
const KEY_LOOKAHEAD_MS: i64 = 2 * 3_600_000;
/// The listing of digests reaches one hour past the range's end (`integrity::validate`).
const DIGEST_LOOKAHEAD_MS: i64 = 3_600_000;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// The trail: arn:aws:cloudtrail:<region>:<account>:trail/<name>.
    #[arg(long)]
    trail_arn: String,
    /// Start of the range (ISO-8601 or epoch seconds).
    #[arg(long)]
    start_time: String,
    /// End of the range (ISO-8601 or epoch seconds) [default: now].
    #[arg(long)]
    end_time: Option<String>,
    /// Print every file checked, not only the invalid ones.
    #[arg(long)]
    verbose: bool,
    /// Online: the opentrail server (DescribeTrails, ListPublicKeys, GetTrailStatus, and its S3 read API).
    #[arg(long, env = "OPENTRAIL_ENDPOINT")]
    endpoint: Option<String>,
    /// Online: where the bucket is read, when not the server's own S3 read API.
    #[arg(long, conflicts_with = "bucket_dir")]
    s3_endpoint: Option<String>,
    /// The trail's bucket (online: skips DescribeTrails; offline: the bucket's name [default: the folder's
    /// name]).
    #[arg(long)]
    s3_bucket: Option<String>,
    /// The trail's S3 key prefix, when --s3-bucket is given.
    #[arg(long)]
    s3_prefix: Option<String>,
    /// Offline: the bucket's root folder (a copy of the bucket).
    #[arg(long, requires = "public_key")]
    bucket_dir: Option<PathBuf>,
    /// Offline: a file of public keys, as ListPublicKeys returns them (base64 PKCS#1 DER, one a line, as the
    /// aws CLI prints `Value`) or PEM ("RSA PUBLIC KEY" or "PUBLIC KEY"). Repeatable.
    #[arg(long, requires = "bucket_dir")]
    public_key: Vec<PathBuf>,
}

/// Runs `opentrail validate`: 0 valid, 1 invalid, 2 could not run (one line on stderr naming the cause).
pub fn run(args: &ValidateArgs) -> std::process::ExitCode {
    match validate(args) {
        Ok(code) => std::process::ExitCode::from(code),
        // `opentrail validate … | head` closed the pipe: not an error.
        Err(e) if crate::output::is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            note!("opentrail validate: {}", crate::error_text(&e));
            std::process::ExitCode::from(2)
        }
    }
}

/// What a run reads: parameters, keys, and where the objects are.
struct Inputs {
    params: ValidateParams,
    keys: Vec<PublicKey>,
    source: BucketSource,
}

fn validate(args: &ValidateArgs) -> Result<u8> {
    let start = parse_time("--start-time", &args.start_time)?;
    let end = match &args.end_time {
        Some(t) => parse_time("--end-time", t)?,
        None => EventTime(chrono::Utc::now().timestamp_millis()),
    };
    // Checks the ARN and the range before anything is read.
    ValidateParams::from_trail_arn(&args.trail_arn, "-", None, start, end)?;
    let inputs = match &args.bucket_dir {
        Some(dir) => offline(args, dir, start, end)?,
        None => online(args, start, end)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start runtime")?;
    let bar = progress_bar();
    let on_progress = |p: Progress| {
        bar.set_length(p.log_files_total as u64);
        bar.set_position(p.log_files_done as u64);
        bar.set_message(format!(
            "{} digest files, {} of log data hashed",
            p.digests_done,
            indicatif::HumanBytes(p.log_bytes_hashed)
        ));
    };
    let report =
        runtime.block_on(integrity::validate::validate(&inputs.source, &inputs.params, &inputs.keys, &on_progress));
    bar.finish_and_clear();
    let report = report?;
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    for (stream, text) in report.render(args.verbose) {
        match stream {
            Stream::Stdout => out.write_all(text.as_bytes())?,
            Stream::Stderr => {
                out.flush()?;
                err.write_all(text.as_bytes())?;
            }
        }
    }
    out.flush()?;
    Ok(report.exit_code() as u8)
}

fn parse_time(flag: &str, text: &str) -> Result<EventTime> {
    EventTime::parse_flexible(text).map_err(|e| anyhow!("{flag}: {e}"))
}

/// A bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} log files  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Offline: the folder is the bucket, the key files are the keys (their validity is unknown: all are
/// accepted), and the newest digest delivered is unknown (a deleted newest digest cannot be seen).
fn offline(args: &ValidateArgs, dir: &Path, start: EventTime, end: EventTime) -> Result<Inputs> {
    if !dir.is_dir() {
        bail!("--bucket-dir {}: not a folder", dir.display());
    }
    let name = match &args.s3_bucket {
        Some(b) => b.clone(),
        None => {
            dir.canonicalize().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).ok_or_else(
                || anyhow!("--bucket-dir {}: cannot tell the bucket's name; give --s3-bucket", dir.display()),
            )?
        }
    };
    let mut keys = Vec::new();
    for path in &args.public_key {
        let text = std::fs::read_to_string(path).with_context(|| format!("--public-key {}", path.display()))?;
        let ders = parse_key_file(&text).with_context(|| format!("--public-key {}", path.display()))?;
        keys.extend(ders.into_iter().map(|der| PublicKey {
            fingerprint: fingerprint(&der),
            der_pkcs1: der,
            validity_start: EventTime(i64::MIN),
            validity_end: EventTime::MAX,
        }));
    }
    let bucket = Bucket::open(&name, &BucketTarget::Local { root: dir.to_path_buf() })?;
    let params = ValidateParams::from_trail_arn(&args.trail_arn, &name, args.s3_prefix.as_deref(), start, end)?;
    Ok(Inputs { params, keys, source: BucketSource::new(bucket, None) })
}

/// Online: the trail's bucket and prefix from DescribeTrails (unless given), its keys from ListPublicKeys,
/// the newest digest delivered from GetTrailStatus; the objects through the S3 API at `--s3-endpoint` or
/// the server itself, signed with the same credentials.
fn online(args: &ValidateArgs, start: EventTime, end: EventTime) -> Result<Inputs> {
    let endpoint = args.endpoint.clone().unwrap_or_else(|| format!("http://{}", crate::DEFAULT_LISTEN));
    let client = Client::new(&endpoint)?;
    let arn = &args.trail_arn;
    let (bucket, prefix) = match &args.s3_bucket {
        Some(b) => (b.clone(), args.s3_prefix.clone()),
        None => {
            let answer = client
                .cloudtrail("DescribeTrails", &json!({"trailNameList": [arn], "includeShadowTrails": true}))
                .with_context(|| format!("DescribeTrails at {endpoint}"))?;
            let trail = answer["trailList"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["TrailARN"].as_str() == Some(arn.as_str()))
                .ok_or_else(|| anyhow!("trail {arn} not found at {endpoint}"))?;
            let bucket =
                trail["S3BucketName"].as_str().ok_or_else(|| anyhow!("trail {arn} has no S3BucketName"))?.to_string();
            let prefix = trail["S3KeyPrefix"].as_str().filter(|p| !p.is_empty()).map(str::to_string);
            (bucket, prefix)
        }
    };
    let mut params = ValidateParams::from_trail_arn(arn, &bucket, prefix.as_deref(), start, end)?;
    let listed = client
        .cloudtrail(
            "ListPublicKeys",
            &json!({
                "StartTime": start.epoch_seconds_f64(),
                "EndTime": EventTime(end.0.saturating_add(KEY_LOOKAHEAD_MS)).epoch_seconds_f64(),
            }),
        )
        .with_context(|| format!("ListPublicKeys at {endpoint}"))?;
    let keys = published_keys(&listed)?;
    let status = client
        .cloudtrail("GetTrailStatus", &json!({"Name": arn}))
        .with_context(|| format!("GetTrailStatus at {endpoint}"))?;
    if let (Some(b), Some(key)) = (status["LatestDigestS3Bucket"].as_str(), status["LatestDigestS3Object"].as_str())
        && b == bucket
        && DigestKey::parse(key).is_some_and(|k| k.end.0 <= end.0.saturating_add(DIGEST_LOOKAHEAD_MS))
    {
        params.expected_newest_digest = Some(key.to_string());
    }
    let cred = client.credential().ok_or_else(|| anyhow!("no credentials"))?;
    let target = S3Target {
        endpoint: args.s3_endpoint.clone().unwrap_or_else(|| endpoint.clone()),
        region: params.home_region.clone(),
        access_key_id: cred.access_key_id.clone(),
        secret_access_key: cred.secret_access_key.clone(),
        object_lock: None,
    };
    let primary = Bucket::open(&bucket, &BucketTarget::S3(target.clone()))?;
    Ok(Inputs { params, keys, source: BucketSource::new(primary, Some(target)) })
}

/// ListPublicKeys' `PublicKeyList` as the validator's keys.
fn published_keys(answer: &Value) -> Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for (i, k) in answer["PublicKeyList"].as_array().into_iter().flatten().enumerate() {
        let bad = |what: &str| anyhow!("ListPublicKeys: PublicKeyList[{i}].{what} is missing or invalid");
        let der = k["Value"].as_str().and_then(|v| BASE64.decode(v).ok()).ok_or_else(|| bad("Value"))?;
        let time =
            |field: &str| k[field].as_f64().and_then(EventTime::from_epoch_seconds_f64).ok_or_else(|| bad(field));
        keys.push(PublicKey {
            fingerprint: k["Fingerprint"].as_str().ok_or_else(|| bad("Fingerprint"))?.to_string(),
            der_pkcs1: der,
            validity_start: time("ValidityStartTime")?,
            validity_end: time("ValidityEndTime")?,
        });
    }
    Ok(keys)
}

/// The PKCS#1 DER public keys in a key file: PEM blocks ("RSA PUBLIC KEY" or "PUBLIC KEY"), or base64 DER
/// (PKCS#1 or SubjectPublicKeyInfo), one key a line.
pub fn parse_key_file(text: &str) -> Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    if text.contains("-----BEGIN ") {
        let mut lines = text.lines().map(str::trim).enumerate();
        while let Some((n, line)) = lines.next() {
            let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
                continue;
            };
            let mut body = String::new();
            let end = format!("-----END {label}-----");
            loop {
                match lines.next() {
                    Some((_, l)) if l == end => break,
                    Some((_, l)) => body.push_str(l),
                    None => bail!("line {}: PEM block \"{label}\" has no END line", n + 1),
                }
            }
            let der = BASE64.decode(&body).map_err(|e| anyhow!("line {}: PEM body is not base64: {e}", n + 1))?;
            let key = match label {
                "RSA PUBLIC KEY" if is_pkcs1_public_key(&der) => der,
                "PUBLIC KEY" => pkcs1_from_spki(&der)
                    .ok_or_else(|| anyhow!("line {}: \"PUBLIC KEY\" is not an RSA public key", n + 1))?,
                "RSA PUBLIC KEY" => bail!("line {}: \"RSA PUBLIC KEY\" is not a PKCS#1 public key", n + 1),
                other => bail!("line {}: PEM \"{other}\" is not a public key", n + 1),
            };
            keys.push(key);
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let der = BASE64.decode(line).map_err(|e| anyhow!("line {}: not base64: {e}", n + 1))?;
            let key = if is_pkcs1_public_key(&der) { Some(der) } else { pkcs1_from_spki(&der) };
            keys.push(
                key.ok_or_else(|| anyhow!("line {}: not a PKCS#1 or SubjectPublicKeyInfo RSA public key", n + 1))?,
            );
        }
    }
    if keys.is_empty() {
        bail!("no public key found");
    }
    Ok(keys)
}

/// How `opentrail keys list` prints the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyOutput {
    /// A table of fingerprints and validity windows.
    Table,
    /// One base64 PKCS#1 DER key a line (a key file for `opentrail validate --public-key`).
    Value,
    /// PEM "RSA PUBLIC KEY" blocks (also a key file).
    Pem,
}

/// `opentrail keys list`: ListPublicKeys over `[start, end]` (default: every key).
pub fn keys_list(
    endpoint: &str,
    start: Option<&str>,
    end: Option<&str>,
    fingerprint_filter: Option<&str>,
    output: KeyOutput,
) -> Result<std::process::ExitCode> {
    let client = Client::new(endpoint)?;
    let start = start.map(|s| parse_time("--start-time", s)).transpose()?.unwrap_or(EventTime(0));
    let end = end.map(|s| parse_time("--end-time", s)).transpose()?.unwrap_or(EventTime(253_402_300_799_000));
    let answer = client.cloudtrail(
        "ListPublicKeys",
        &json!({"StartTime": start.epoch_seconds_f64(), "EndTime": end.epoch_seconds_f64()}),
    )?;
    let keys: Vec<PublicKey> = published_keys(&answer)?
        .into_iter()
        .filter(|k| fingerprint_filter.is_none_or(|f| k.fingerprint == f))
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match output {
        KeyOutput::Value => {
            for k in &keys {
                writeln!(out, "{}", BASE64.encode(&k.der_pkcs1))?;
            }
        }
        KeyOutput::Pem => {
            for k in &keys {
                writeln!(out, "-----BEGIN RSA PUBLIC KEY-----")?;
                let b64 = BASE64.encode(&k.der_pkcs1);
                for chunk in b64.as_bytes().chunks(64) {
                    writeln!(out, "{}", String::from_utf8_lossy(chunk))?;
                }
                writeln!(out, "-----END RSA PUBLIC KEY-----")?;
            }
        }
        KeyOutput::Table => {
            writeln!(out, "{:<32}  {:<24}  {:<24}", "FINGERPRINT", "VALID FROM", "VALID UNTIL")?;
            for k in &keys {
                writeln!(
                    out,
                    "{:<32}  {:<24}  {:<24}",
                    k.fingerprint,
                    k.validity_start.to_rfc3339(),
                    k.validity_end.to_rfc3339()
                )?;
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `opentrail keys rotate`: a new signing key, effective at once (admins only; the call is audited).
pub fn keys_rotate(endpoint: &str) -> Result<std::process::ExitCode> {
    let client = Client::new(endpoint)?;
    let out = client.call("/v1/keys/rotate", &[("content-type", "application/json")], b"{}", "opentrail")?;
    let v: Value = serde_json::from_slice(&out).context("server answered with invalid JSON")?;
    let start = v["ValidityStartTime"].as_f64().and_then(EventTime::from_epoch_seconds_f64);
    writeln!(
        std::io::stdout(),
        "rotated: new signing key {} valid from {}",
        v["Fingerprint"].as_str().unwrap_or("?"),
        start.map(|t| t.to_rfc3339()).unwrap_or_default()
    )?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_hold_base64_lines_or_pem_blocks() {
        let key = integrity::keys::SigningKey::generate().unwrap();
        let der = key.public_key_pkcs1_der().to_vec();
        let b64 = BASE64.encode(&der);
        assert_eq!(parse_key_file(&format!("{b64}\n\n{b64}\n")).unwrap(), vec![der.clone(), der.clone()]);
        let wrapped: Vec<String> = b64.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        let pem = format!("-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n", wrapped.join("\n"));
        assert_eq!(parse_key_file(&pem).unwrap(), vec![der.clone()]);
        let err = parse_key_file("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
        assert!(parse_key_file("not base64!\n").unwrap_err().to_string().contains("line 1"));
        assert!(parse_key_file("").is_err());
        assert!(parse_key_file("AAAA\n").unwrap_err().to_string().contains("line 1"));
    }
}
