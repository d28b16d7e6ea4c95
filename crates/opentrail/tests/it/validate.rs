//! `opentrail validate`, online and offline, against a real server's delivered trail: every kind of
//! tampering reported (and, where it can see it, by `aws cloudtrail validate-logs` too), signing-key
//! rotation on command and on schedule validated across, and exit code 2 when it cannot run.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const TRAIL: &str = "audit";
const BUCKET: &str = "audit-logs";
/// Deliveries fast enough for a test: log files every second, digests every two.
const FAST: &str = "[delivery]\ninterval = \"1s\"\ndigest_interval = \"2s\"\n";

fn arn() -> String {
    format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{TRAIL}")
}

fn call(s: &Server, op: &str, params: Value) -> Value {
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, op, &params);
    assert_eq!(r.status, 200, "{op}: {}", r.text());
    r.json()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bucket_root(s: &Server) -> PathBuf {
    s.data_dir.join("buckets").join(BUCKET)
}

/// Every delivered file under `root` whose key contains `part`, by key.
fn files(root: &Path, part: &str) -> Vec<String> {
    let mut out = crate::delivered::local_keys(root);
    out.retain(|k| k.contains(part) && k.ends_with(".json.gz"));
    out
}

/// The trail's digests, oldest first (by the end time in their names), with their JSON.
fn digests(root: &Path) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = files(root, "/CloudTrail-Digest/")
        .into_iter()
        .map(|k| {
            let json = integrity::digest::gunzip(&std::fs::read(root.join(&k)).unwrap(), 1 << 30).unwrap();
            (k, serde_json::from_slice(&json).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.1["digestEndTime"].as_str().cmp(&b.1["digestEndTime"].as_str()));
    out
}

fn log_files_of(digest: &Value) -> Vec<String> {
    digest["logFiles"].as_array().unwrap().iter().map(|f| f["s3Object"].as_str().unwrap().to_string()).collect()
}

/// A server with a validated trail to a local folder that delivered events in `rounds` batches a second
/// apart (`between` runs after each), then stopped logging and delivered its final digest.
fn delivered_trail(extra: &str, rounds: usize, mut between: impl FnMut(&Server, usize)) -> Server {
    let s = Server::start_with(&config_toml(&format!("{FAST}{extra}")));
    call(&s, "CreateTrail", json!({"Name": TRAIL, "S3BucketName": BUCKET, "EnableLogFileValidation": true}));
    call(&s, "StartLogging", json!({"Name": TRAIL}));
    for round in 0..rounds {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let batch: Vec<String> =
            (0..5).map(|i| api_call(&format!("ev-{round}-{i}"), &now, "GetUser", "Mary")).collect();
        s.ingest(&batch.join("\n"));
        let logs_before = files(&bucket_root(&s), "/CloudTrail/").len();
        // Each round's events in a log file of their own, and in a digest after it.
        wait_until("a log file", Duration::from_secs(20), || {
            files(&bucket_root(&s), "/CloudTrail/").len() > logs_before
        });
        between(&s, round);
    }
    let digests_before = files(&bucket_root(&s), "/CloudTrail-Digest/").len();
    wait_until("a digest after the last log file", Duration::from_secs(60), || {
        files(&bucket_root(&s), "/CloudTrail-Digest/").len() > digests_before
    });
    call(&s, "StopLogging", json!({"Name": TRAIL}));
    wait_until("the final digest", Duration::from_secs(20), || {
        let status = call(&s, "GetTrailStatus", json!({"Name": TRAIL}));
        match (status["LatestDigestDeliveryTime"].as_f64(), status["StopLoggingTime"].as_f64()) {
            (Some(digest), Some(stopped)) => digest >= stopped,
            _ => false,
        }
    });
    // Settled: no file delivered for a digest interval and more.
    let mut last = (files(&bucket_root(&s), "").len(), Instant::now());
    wait_until("the bucket to settle", Duration::from_secs(20), || {
        let n = files(&bucket_root(&s), "").len();
        if n != last.0 {
            last = (n, Instant::now());
        }
        last.1.elapsed() > Duration::from_millis(2500)
    });
    s
}

fn start_time() -> String {
    (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `opentrail validate` online against the server.
fn online(s: &Server, start: &str, extra: &[&str]) -> Output {
    let mut c = s.cli();
    c.args(["validate", "--trail-arn", &arn(), "--start-time", start]).args(extra);
    c.output().unwrap()
}

/// `opentrail validate` offline from `dir` with the key file `keys`.
fn offline(s: &Server, dir: &Path, keys: &Path, start: &str) -> Output {
    let mut c = s.cli();
    c.env_remove("OPENTRAIL_ENDPOINT").args([
        "validate",
        "--trail-arn",
        &arn(),
        "--start-time",
        start,
        "--bucket-dir",
        dir.to_str().unwrap(),
        "--public-key",
        keys.to_str().unwrap(),
        "--s3-bucket",
        BUCKET,
    ]);
    c.output().unwrap()
}

/// `aws cloudtrail validate-logs`, S3 through the server too (reference §8).
fn aws_validate(s: &Server, start: &str) -> Output {
    let mut c = s.aws(ADMIN_KEY, ADMIN_SECRET);
    c.env("AWS_ENDPOINT_URL_S3", &s.endpoint).args([
        "cloudtrail",
        "validate-logs",
        "--trail-arn",
        &arn(),
        "--start-time",
        start,
        "--verbose",
    ]);
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
}

/// Writes the server's public keys to a key file, as an auditor would (`opentrail keys list --output value`).
fn key_file(s: &Server, dir: &Path) -> PathBuf {
    let out = s.cli().args(["keys", "list", "--output", "value"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let path = dir.join("keys.b64");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// A copy of the bucket folder (metadata sidecars included) to tamper with.
fn copy_bucket(s: &Server, to: &Path) -> PathBuf {
    let dst = to.join(BUCKET);
    let st = std::process::Command::new("cp").arg("-r").arg(bucket_root(s)).arg(&dst).status().unwrap();
    assert!(st.success());
    dst
}

fn writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn overwrite(path: &Path, bytes: &[u8]) {
    writable(path);
    std::fs::write(path, bytes).unwrap();
}

fn sidecar(root: &Path, key: &str) -> PathBuf {
    root.join(".opentrail-meta").join(format!("{key}.json"))
}

#[test]
fn validate_finds_every_kind_of_tampering_online_offline_and_with_the_aws_cli() {
    // Six rounds take about six seconds, three digest intervals: runs ended with exactly the five digests the
    // checks below need, and a faster one can end with four. So the last round waits for a fourth digest; with
    // the one after the last log file and the final one there are at least six.
    let s = delivered_trail("", 6, |s, round| {
        if round == 5 {
            wait_until("four digests", Duration::from_secs(20), || {
                files(&bucket_root(s), "/CloudTrail-Digest/").len() >= 4
            });
        }
    });
    let start = start_time();
    let tmp = tempfile::tempdir().unwrap();
    let keys = key_file(&s, tmp.path());
    let root = bucket_root(&s);
    let all = digests(&root);
    let with_logs: Vec<usize> = (0..all.len()).filter(|&i| !log_files_of(&all[i].1).is_empty()).collect();
    assert!(all.len() >= 5 && with_logs.len() >= 2, "{} digests, {} with log files", all.len(), with_logs.len());
    let n_logs = files(&root, "/CloudTrail/").len();
    // Every digest but the final one spans exactly the digest interval, however late the server wrote it: the
    // windows are on a grid, so a deleted digest is told from a late one below (under load they were not).
    for (key, d) in &all[..all.len() - 1] {
        let t = |f: &str| chrono::DateTime::parse_from_rfc3339(d[f].as_str().unwrap()).unwrap();
        assert_eq!(t("digestEndTime") - t("digestStartTime"), chrono::Duration::seconds(2), "{key}");
    }

    // Untouched: valid online, offline and to the aws CLI, counting exactly the files on disk.
    let summary = format!("{n}/{n} digest files valid\n{l}/{l} log files valid", n = all.len(), l = n_logs);
    for o in [online(&s, &start, &["--verbose"]), offline(&s, &root, &keys, &start)] {
        assert_exit(&o, 0);
        assert!(String::from_utf8_lossy(&o.stdout).contains(&summary), "{summary}\n{}", text(&o));
    }
    let o = online(&s, &start, &["--verbose"]);
    let verbose = String::from_utf8_lossy(&o.stdout);
    assert_eq!(verbose.matches("\tvalid\n").count(), all.len() + n_logs, "{verbose}");
    let o = aws_validate(&s, &start);
    assert_exit(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&summary), "{}", text(&o));

    // A digest in the middle of the chain that lists log files, and its neighbours.
    let k = *with_logs.iter().find(|&&i| i >= 2 && i + 1 < all.len()).unwrap_or_else(|| panic!("{with_logs:?}"));
    let (dk, dv) = (&all[k].0, &all[k].1);
    let log = log_files_of(dv)[0].clone();
    let tamper = |name: &str, f: &dyn Fn(&Path)| -> Output {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let copy = copy_bucket(&s, &dir);
        f(&copy);
        offline(&s, &copy, &keys, &start)
    };
    let invalid = |o: &Output, key: &str, problem: &str| {
        assert_exit(o, 1);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("s3://{BUCKET}/{key}\tINVALID: {problem}")), "{key}: {problem}\n{}", text(o));
    };

    let o = tamper("modified-log", &|r| overwrite(&r.join(&log), &integrity::digest::gzip(br#"{"Records":[]}"#)));
    invalid(&o, &log, "hash value doesn't match");
    let o = tamper("deleted-log", &|r| std::fs::remove_file(r.join(&log)).unwrap());
    invalid(&o, &log, "not found");
    let o = tamper("deleted-digest", &|r| std::fs::remove_file(r.join(dk)).unwrap());
    invalid(&o, dk, "not found");
    assert!(!text(&o).contains("missing (more digest files"), "one deletion is not a stretch:\n{}", text(&o));
    let older = &all[k - 1].0;
    let o = tamper("two-deleted-digests", &|r| {
        std::fs::remove_file(r.join(dk)).unwrap();
        std::fs::remove_file(r.join(older)).unwrap();
    });
    invalid(&o, dk, "not found");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("INVALID: missing (more digest files were deleted"),
        "{}",
        text(&o)
    );
    // Moved: copied (with its signature) to a key one second earlier, the original removed.
    let end = dv["digestEndTime"].as_str().unwrap();
    let end_t = chrono::DateTime::parse_from_rfc3339(end).unwrap() - chrono::Duration::seconds(1);
    let moved = dk.replace(
        &chrono::DateTime::parse_from_rfc3339(end).unwrap().format("%Y%m%dT%H%M%SZ").to_string(),
        &end_t.format("%Y%m%dT%H%M%SZ").to_string(),
    );
    assert_ne!(&moved, dk);
    let o = tamper("moved-digest", &|r| {
        std::fs::rename(r.join(dk), r.join(&moved)).unwrap();
        std::fs::copy(sidecar(r, dk), sidecar(r, &moved)).unwrap();
    });
    invalid(&o, &moved, "has been moved from its original location");
    invalid(&o, dk, "not found");
    // A chain field forged by someone holding the signing key: the signature is valid, the link is not.
    let pk8 = std::fs::read_dir(s.data_dir.join("keys"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pk8"))
        .unwrap();
    let signer = integrity::keys::SigningKey::from_pkcs8(&std::fs::read(pk8).unwrap()).unwrap();
    let o = tamper("forged-chain", &|r| {
        let mut d: integrity::digest::Digest = serde_json::from_value(dv.clone()).unwrap();
        d.previous_digest_hash_value = Some("0".repeat(64));
        let signed = d.sign(&signer).unwrap();
        overwrite(&r.join(dk), &signed.gzip);
        let meta: serde_json::Map<String, Value> =
            signed.metadata().into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        overwrite(&sidecar(r, dk), json!({ "metadata": meta }).to_string().as_bytes());
    });
    invalid(&o, dk, "previousDigestHashValue does not match the previous digest file");
    assert!(!text(&o).contains(&format!("{dk}\tINVALID: signature")), "the forged signature is valid:\n{}", text(&o));

    // The newest digest deleted from the server's own bucket: only the server knows it existed.
    let status = call(&s, "GetTrailStatus", json!({"Name": TRAIL}));
    let newest = status["LatestDigestS3Object"].as_str().unwrap().to_string();
    assert_eq!(newest, all[all.len() - 1].0);
    std::fs::remove_file(root.join(&newest)).unwrap();
    let o = online(&s, &start, &[]);
    invalid(&o, &newest, "not found (the newest digest file the server delivered has been deleted)");
    let o = offline(&s, &root, &keys, &start);
    assert_exit(&o, 0);
    assert!(!text(&o).contains(&newest), "offline cannot know of the newest digest:\n{}", text(&o));

    // A modified log file in the server's bucket: opentrail and the aws CLI agree.
    overwrite(&root.join(&log), &integrity::digest::gzip(br#"{"Records":[]}"#));
    let o = online(&s, &start, &[]);
    invalid(&o, &log, "hash value doesn't match");
    let o = aws_validate(&s, &start);
    assert_exit(&o, 1);
    assert!(text(&o).contains(&format!("{log}\tINVALID: hash value doesn't match")), "{}", text(&o));
}

#[test]
fn rotation_on_command_keeps_both_keys_published_and_every_digest_valid() {
    let s = delivered_trail("", 3, |s, round| {
        if round == 1 {
            // A digest signed by the first key before the rotation.
            wait_until("a first digest", Duration::from_secs(20), || !digests(&bucket_root(s)).is_empty());
            let auditor = s.cli_as(AUDITOR_KEY, AUDITOR_SECRET).args(["keys", "rotate"]).output().unwrap();
            assert!(!auditor.status.success() && text(&auditor).contains("AccessDenied"), "{}", text(&auditor));
            let o = s.cli().args(["keys", "rotate"]).output().unwrap();
            assert!(o.status.success(), "{}", text(&o));
            assert!(String::from_utf8_lossy(&o.stdout).starts_with("rotated: new signing key "), "{}", text(&o));
        }
    });
    let start = start_time();
    let keys = call(&s, "ListPublicKeys", json!({"StartTime": 0, "EndTime": 4_000_000_000u64}))["PublicKeyList"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let (old, new) = if keys[0]["ValidityStartTime"].as_f64() < keys[1]["ValidityStartTime"].as_f64() {
        (&keys[0], &keys[1])
    } else {
        (&keys[1], &keys[0])
    };
    assert_eq!(old["ValidityEndTime"], new["ValidityStartTime"], "adjacent windows: {keys:?}");
    let fingerprints: std::collections::BTreeSet<String> = digests(&bucket_root(&s))
        .iter()
        .map(|(_, d)| d["digestPublicKeyFingerprint"].as_str().unwrap().to_string())
        .collect();
    let expected: std::collections::BTreeSet<String> =
        [old, new].iter().map(|k| k["Fingerprint"].as_str().unwrap().to_string()).collect();
    assert_eq!(fingerprints, expected, "digests are signed by the old key, then by the new one");
    // The rotation is audited.
    s.wait_caught_up();
    let records: Vec<Value> = s
        .lookup_all(&[("EventName", "RotateSigningKey")])
        .iter()
        .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "the auditor's denied call and the admin's: {records:?}");
    let done: Vec<&Value> = records.iter().filter(|r| r["errorCode"].is_null()).collect();
    assert_eq!(done.len(), 1, "{records:?}");
    assert_eq!(done[0]["responseElements"]["fingerprint"], new["Fingerprint"], "{records:?}");
    let o = online(&s, &start, &[]);
    assert_exit(&o, 0);
    let tmp = tempfile::tempdir().unwrap();
    let o = offline(&s, &bucket_root(&s), &key_file(&s, tmp.path()), &start);
    assert_exit(&o, 0);
    let o = aws_validate(&s, &start);
    assert_exit(&o, 0);
    s.assert_no_errors_logged();
}

#[test]
fn scheduled_rotation_signs_with_each_new_key_and_everything_validates() {
    // The first digest's key, then a key the schedule made after it: the digest delivered after the last
    // round is signed by a newer key than the first one.
    let mut first: Option<(String, f64)> = None;
    let s = delivered_trail("[keys]\nrotate_every = \"2s\"\n", 3, |s, round| {
        if round == 0 {
            wait_until("a first digest", Duration::from_secs(20), || !digests(&bucket_root(s)).is_empty());
            let fp = digests(&bucket_root(s))[0].1["digestPublicKeyFingerprint"].as_str().unwrap().to_string();
            first = Some((fp, chrono::Utc::now().timestamp_millis() as f64 / 1000.0));
        }
        if round == 1 {
            let after = first.as_ref().unwrap().1;
            wait_until("a scheduled rotation", Duration::from_secs(20), || {
                call(s, "ListPublicKeys", json!({"StartTime": 0, "EndTime": 4_000_000_000u64}))["PublicKeyList"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["ValidityStartTime"].as_f64().is_some_and(|t| t > after))
            });
        }
    });
    let (first_fp, _) = first.unwrap();
    let keys = call(&s, "ListPublicKeys", json!({"StartTime": 0, "EndTime": 4_000_000_000u64}))["PublicKeyList"]
        .as_array()
        .unwrap()
        .len();
    assert!(keys >= 2, "{keys} keys after a few seconds of a 2s schedule");
    let used: std::collections::BTreeSet<String> = digests(&bucket_root(&s))
        .iter()
        .map(|(_, d)| d["digestPublicKeyFingerprint"].as_str().unwrap().to_string())
        .collect();
    assert!(used.len() >= 2 && used.contains(&first_fp), "digests signed by {used:?}");
    let o = online(&s, &start_time(), &[]);
    assert_exit(&o, 0);
    s.assert_no_errors_logged();
}

#[test]
fn validate_that_cannot_run_exits_2_naming_the_cause() {
    let s = Server::start();
    let start = start_time();
    // No such trail.
    let o = online(&s, &start, &[]);
    assert_exit(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("trail {} not found", arn())), "{}", text(&o));
    // Nobody there.
    let mut c = s.cli();
    c.env("OPENTRAIL_ENDPOINT", "http://127.0.0.1:1");
    let o = c.args(["validate", "--trail-arn", &arn(), "--start-time", &start]).output().unwrap();
    assert_exit(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("127.0.0.1:1"), "{}", text(&o));
    // A key file that is not there.
    let tmp = tempfile::tempdir().unwrap();
    let o = offline(&s, tmp.path(), &tmp.path().join("missing.pem"), &start);
    assert_exit(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.pem"), "{}", text(&o));
    // Not an ARN; a range that ends before it starts.
    let o = s.cli().args(["validate", "--trail-arn", "audit", "--start-time", &start]).output().unwrap();
    assert_exit(&o, 2);
    let o = online(&s, "2026-01-02T00:00:00Z", &["--end-time", "2026-01-01T00:00:00Z"]);
    assert_exit(&o, 2);
}
