//! Trail delivery to a local folder (the default bucket, `<data-dir>/buckets/<name>`), end to end: the real
//! binary, events in through the native API, trails driven through the CloudTrail API, and what lands on disk
//! checked file by file — key layout, gzip of `{"Records":[…]}` with the stored records byte for byte, every
//! selected event in exactly one file and nothing else — then proven with the real `aws cloudtrail
//! validate-logs`, tampered with in the ways the aws CLI sees, and read back through the S3 read API.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// Fast delivery for tests: a log file cut every second, a digest every two.
const FAST: &str = "[delivery]\ninterval = \"1s\"\ndigest_interval = \"2s\"\n";
const OTHER_ACCOUNT: &str = "210987654321";
const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];

fn arn(name: &str) -> String {
    format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{name}")
}

/// A signed CloudTrail call that must succeed.
fn call(s: &Server, op: &str, params: Value) -> Value {
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, op, &params);
    assert_eq!(r.status, 200, "{op}: {}", r.text());
    r.json()
}

fn iso(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---- the events ------------------------------------------------------------------------------------------

/// `n` events of batch `batch`: management events of three services (reads and writes, several names) and
/// S3 data events on two buckets, spread over three Regions and, now and then, another account.
fn events(batch: &str, n: usize) -> Vec<Value> {
    let t = now_ms();
    (0..n)
        .map(|i| {
            let region = REGIONS[i % REGIONS.len()];
            let account = if i % 25 == 7 { OTHER_ACCOUNT } else { ACCOUNT };
            let mut e = json!({
                "eventVersion": "1.11",
                "eventID": format!("dlv-{batch}-{i:04}"),
                "eventTime": iso(t - (n - i) as i64 * 10),
                "userIdentity": {"type": "IAMUser", "userName": "Zoe", "accountId": account,
                                 "arn": format!("arn:aws:iam::{account}:user/Zoe")},
                "awsRegion": region,
                "sourceIPAddress": "192.0.2.7",
                "userAgent": "delivery-test",
                "requestID": format!("req-{batch}-{i}"),
                "eventType": "AwsApiCall",
                "recipientAccountId": account,
            });
            if i % 10 < 6 {
                let source = ["iam.amazonaws.com", "kms.amazonaws.com", "ec2.amazonaws.com"][(i / 3) % 3];
                let verb = ["Create", "Get", "Delete", "Describe"][(i / 9) % 4];
                e["eventSource"] = source.into();
                e["eventName"] = format!("{verb}Thing").into();
                e["readOnly"] = matches!(verb, "Get" | "Describe").into();
                e["managementEvent"] = true.into();
                e["eventCategory"] = "Management".into();
            } else {
                let bucket = if i % 10 < 8 { "bucket-a" } else { "bucket-b" };
                let get = i % 2 == 0;
                e["eventSource"] = "s3.amazonaws.com".into();
                e["eventName"] = (if get { "GetObject" } else { "PutObject" }).into();
                e["readOnly"] = get.into();
                e["managementEvent"] = false.into();
                e["eventCategory"] = "Data".into();
                e["resources"] = json!([
                    {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/k/{i}.txt")},
                    {"type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")},
                ]);
            }
            e
        })
        .collect()
}

fn ingest(s: &Server, events: &[Value]) {
    let ndjson: String = events.iter().map(|e| e.to_string() + "\n").collect();
    let r = s.ingest(&ndjson);
    assert_eq!(r["failed"].as_array().map_or(0, Vec::len), 0, "{r}");
}

// ---- what each trail selects, written out independently of service::selection ----------------------------

fn region_of(e: &Value) -> &str {
    e["awsRegion"].as_str().unwrap_or("us-east-1")
}

fn category(e: &Value) -> &str {
    match e["eventCategory"].as_str() {
        Some(c) => c,
        None if e["managementEvent"] == json!(false) => "Data",
        None => "Management",
    }
}

fn read_only(e: &Value) -> bool {
    e["readOnly"] == json!(true) || e["readOnly"] == json!("true")
}

fn has_object_under(e: &Value, prefix: &str) -> bool {
    e["resources"].as_array().is_some_and(|rs| {
        rs.iter().any(|r| r["type"] == "AWS::S3::Object" && r["ARN"].as_str().is_some_and(|a| a.starts_with(prefix)))
    })
}

/// One trail of the selector scenario: how it is made, and which records it must deliver.
struct TrailCase {
    name: &'static str,
    bucket: &'static str,
    prefix: Option<&'static str>,
    multi_region: bool,
    selectors: Option<Value>,
    selects: fn(&Value) -> bool,
}

fn trail_cases() -> Vec<TrailCase> {
    vec![
        // Every management event of the home Region (the default selectors), with validation.
        TrailCase {
            name: "audit",
            bucket: "audit-logs",
            prefix: None,
            multi_region: false,
            selectors: None,
            selects: |e| category(e) == "Management" && region_of(e) == "us-east-1",
        },
        // Multi-Region, basic WriteOnly: reads are not delivered.
        TrailCase {
            name: "writes",
            bucket: "multi-logs",
            prefix: None,
            multi_region: true,
            selectors: Some(
                json!({"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true}]}),
            ),
            selects: |e| category(e) == "Management" && !read_only(e),
        },
        // Basic, ExcludeManagementEventSources, with a key prefix, into a bucket shared with another trail.
        TrailCase {
            name: "nokms",
            bucket: "shared-logs",
            prefix: Some("nokms"),
            multi_region: false,
            selectors: Some(json!({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": true,
                "ExcludeManagementEventSources": ["kms.amazonaws.com"]}]})),
            selects: |e| {
                category(e) == "Management" && region_of(e) == "us-east-1" && e["eventSource"] != "kms.amazonaws.com"
            },
        },
        // Advanced: management events not from IAM (management selectors take eventCategory, eventSource
        // and readOnly only).
        TrailCase {
            name: "noiam",
            bucket: "shared-logs",
            prefix: Some("noiam"),
            multi_region: false,
            selectors: Some(json!({"AdvancedEventSelectors": [{"Name": "non-IAM", "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Management"]},
                {"Field": "eventSource", "NotEquals": ["iam.amazonaws.com"]}]}]})),
            selects: |e| {
                category(e) == "Management" && region_of(e) == "us-east-1" && e["eventSource"] != "iam.amazonaws.com"
            },
        },
        // Basic data events: S3 objects of bucket-a, no management events.
        TrailCase {
            name: "data-basic",
            bucket: "data-logs",
            prefix: Some("basic"),
            multi_region: false,
            selectors: Some(json!({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": false,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket-a/"]}]}]})),
            selects: |e| {
                category(e) == "Data" && region_of(e) == "us-east-1" && has_object_under(e, "arn:aws:s3:::bucket-a/")
            },
        },
        // Advanced data events: eventName StartsWith Put, resources.ARN StartsWith bucket-b, multi-Region.
        TrailCase {
            name: "data-adv",
            bucket: "data-logs",
            prefix: Some("adv"),
            multi_region: true,
            selectors: Some(json!({"AdvancedEventSelectors": [{"FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                {"Field": "eventName", "StartsWith": ["Put"]},
                {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::bucket-b/"]}]}]})),
            selects: |e| {
                category(e) == "Data"
                    && e["eventName"].as_str().is_some_and(|n| n.starts_with("Put"))
                    && has_object_under(e, "arn:aws:s3:::bucket-b/")
            },
        },
    ]
}

fn create(s: &Server, t: &TrailCase) {
    let mut p = json!({"Name": t.name, "S3BucketName": t.bucket, "EnableLogFileValidation": true,
                       "IsMultiRegionTrail": t.multi_region});
    if let Some(prefix) = t.prefix {
        p["S3KeyPrefix"] = prefix.into();
    }
    call(s, "CreateTrail", p);
    if let Some(sel) = &t.selectors {
        let mut sel = sel.clone();
        sel["TrailName"] = t.name.into();
        call(s, "PutEventSelectors", sel);
    }
}

// ---- the bucket on disk ------------------------------------------------------------------------------------

fn bucket_root(s: &Server, bucket: &str) -> PathBuf {
    s.data_dir.join("buckets").join(bucket)
}

/// Every key in a local bucket, sorted (see `delivered::local_keys`).
fn keys(root: &Path) -> Vec<String> {
    crate::delivered::local_keys(root)
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `[<prefix>/]AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<16 alnum>.json.gz`
/// — returns (account, region) when `key` is exactly that shape, with the folders agreeing with the name.
fn parse_log_key(prefix: Option<&str>, key: &str) -> Option<(String, String)> {
    let rest = match prefix {
        Some(p) => key.strip_prefix(p)?.strip_prefix('/')?,
        None => key,
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [aws, acct, ct, region, y, m, d, file] = parts[..] else { return None };
    if aws != "AWSLogs" || ct != "CloudTrail" || !is_digits(acct, 12) || !is_digits(y, 4) || !is_digits(m, 2) {
        return None;
    }
    if !is_digits(d, 2) || !REGIONS.contains(&region) {
        return None;
    }
    let stem = file.strip_suffix(".json.gz")?;
    let f: Vec<&str> = stem.split('_').collect();
    let [a2, ct2, r2, stamp, unique] = f[..] else { return None };
    let ok = a2 == acct
        && ct2 == "CloudTrail"
        && r2 == region
        && stamp.len() == 14
        && stamp[..8] == format!("{y}{m}{d}")
        && stamp.as_bytes()[8] == b'T'
        && is_digits(&stamp[9..13], 4)
        && stamp.ends_with('Z')
        && unique.len() == 16
        && unique.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| (acct.to_string(), region.to_string()))
}

/// `[<prefix>/]AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_us-east-1_YYYYMMDDTHHMMSSZ.json.gz`
/// — returns the Region when `key` is exactly a digest key of `trail`.
fn parse_digest_key(prefix: Option<&str>, trail: &str, key: &str) -> Option<String> {
    let rest = match prefix {
        Some(p) => key.strip_prefix(p)?.strip_prefix('/')?,
        None => key,
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [aws, acct, ct, region, y, m, d, file] = parts[..] else { return None };
    if aws != "AWSLogs" || acct != ACCOUNT || ct != "CloudTrail-Digest" || !REGIONS.contains(&region) {
        return None;
    }
    let expected_head = format!("{ACCOUNT}_CloudTrail-Digest_{region}_{trail}_us-east-1_");
    let stamp = file.strip_prefix(&expected_head)?.strip_suffix(".json.gz")?;
    let ok = stamp.len() == 16
        && stamp[..8] == format!("{y}{m}{d}")
        && stamp.as_bytes()[8] == b'T'
        && is_digits(&stamp[9..15], 6)
        && stamp.ends_with('Z');
    ok.then(|| region.to_string())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("gzip");
    out
}

/// A delivered log file: its key, its (account, Region) folder and its records.
struct LogFile {
    key: String,
    account: String,
    region: String,
    text: String,
    records: Vec<Value>,
}

/// The log files and digest keys of one trail (a bucket, a prefix), every key checked for its shape.
struct Delivered {
    logs: Vec<LogFile>,
    /// Digest keys by Region, oldest first.
    digests: BTreeMap<String, Vec<String>>,
}

fn delivered(s: &Server, t: &TrailCase) -> Delivered {
    let root = bucket_root(s, t.bucket);
    let mut logs = Vec::new();
    let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in keys(&root) {
        let mine = match t.prefix {
            Some(p) => key.starts_with(&format!("{p}/")),
            None => key.starts_with("AWSLogs/"),
        };
        if !mine {
            continue;
        }
        if key.contains("/CloudTrail-Digest/") {
            let region = parse_digest_key(t.prefix, t.name, &key).unwrap_or_else(|| panic!("bad digest key {key}"));
            digests.entry(region).or_default().push(key);
            continue;
        }
        let (account, region) = parse_log_key(t.prefix, &key).unwrap_or_else(|| panic!("bad log file key {key}"));
        let text = String::from_utf8(gunzip(&std::fs::read(root.join(&key)).unwrap())).expect("UTF-8 log file");
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}"));
        let records = doc["Records"].as_array().unwrap_or_else(|| panic!("{key} has no Records")).clone();
        assert!(!records.is_empty(), "{key} is an empty log file");
        logs.push(LogFile { key, account, region, text, records });
    }
    Delivered { logs, digests }
}

fn id_of(r: &Value) -> &str {
    r["eventID"].as_str().expect("eventID")
}

/// The delivered eventIDs that this test ingested (`dlv-…`), each with how many times it was delivered.
fn ingested_ids(d: &Delivered) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for f in &d.logs {
        for r in &f.records {
            if id_of(r).starts_with("dlv-") {
                *out.entry(id_of(r).to_string()).or_insert(0) += 1;
            }
        }
    }
    out
}

/// The stored bytes of a record, through GetEvent.
fn stored(s: &Server, id: &str) -> String {
    let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "GET", &format!("/v1/events/{id}"), &[], b"");
    assert_eq!(r.status, 200, "GetEvent {id}: {}", r.text());
    r.text()
}

/// Every file is exactly `{"Records":[` + the stored records, verbatim, joined by `,` + `]}`; each record is in
/// the folder of its account and Region, is one the trail selects, and is in no other file.
fn check_files(s: &Server, t: &TrailCase, d: &Delivered, stored_text: &mut BTreeMap<String, String>) {
    let mut seen = BTreeSet::new();
    for f in &d.logs {
        let mut expected = String::from("{\"Records\":[");
        for (i, r) in f.records.iter().enumerate() {
            let id = id_of(r);
            assert!(seen.insert(id.to_string()), "{}: {id} is delivered twice (again in {})", t.name, f.key);
            assert!((t.selects)(r), "{}: {} holds {id}, which the trail does not select: {r}", t.name, f.key);
            assert_eq!(region_of(r), f.region, "{}: {id} in the wrong Region's folder", f.key);
            assert_eq!(r["recipientAccountId"].as_str().unwrap_or(ACCOUNT), f.account, "{}: {id}", f.key);
            if i > 0 {
                expected.push(',');
            }
            let text = stored_text.entry(id.to_string()).or_insert_with(|| stored(s, id));
            expected.push_str(text);
        }
        expected.push_str("]}");
        assert!(f.text == expected, "{}: not the stored records verbatim:\n{}\n---\n{expected}", f.key, f.text);
    }
}

/// The trail's delivery state file (docs/formats/delivery.md), if any.
fn state(s: &Server, trail: &str) -> Option<Value> {
    let bytes = std::fs::read(s.data_dir.join("delivery").join(trail).join("state.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Waits for a stopped trail's delivery to finish: last file cut, outbox empty, final digests written.
fn wait_finished(s: &Server, trail: &str) {
    wait_for(&format!("{trail} to finish delivering"), Duration::from_secs(30), || {
        state(s, trail).is_some_and(|st| st["finalized"] == json!(true) && st["outbox"] == json!([]))
    });
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every event of `expected` is in the trail's files.
fn wait_delivered(s: &Server, t: &TrailCase, expected: &BTreeSet<String>) {
    let mut missing = expected.len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while missing > 0 {
        let got = ingested_ids(&delivered(s, t));
        missing = expected.iter().filter(|id| !got.contains_key(*id)).count();
        assert!(Instant::now() < deadline, "{}: {missing} of {} events never delivered", t.name, expected.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn selected_ids(t: &TrailCase, events: &[Value]) -> BTreeSet<String> {
    events.iter().filter(|e| (t.selects)(e)).map(|e| id_of(e).to_string()).collect()
}

// ---- the aws CLI --------------------------------------------------------------------------------------------

fn validate_logs(s: &Server, trail_arn: &str, start: &str, extra: &[&str]) -> Output {
    let mut c = s.aws(ADMIN_KEY, ADMIN_SECRET);
    c.env("AWS_ENDPOINT_URL_S3", &s.endpoint)
        .args(["cloudtrail", "validate-logs", "--trail-arn", trail_arn, "--start-time", start, "--verbose"])
        .args(extra);
    c.output().expect("run aws")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// validate-logs exited 0 and found exactly `digests` digest files and `logs` log files, all valid.
fn assert_valid(out: &Output, digests: usize, logs: usize) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(0), "validate-logs failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    for want in [format!("{digests}/{digests} digest files valid"), format!("{logs}/{logs} log files valid")] {
        assert!(lines.contains(&want.as_str()), "expected {want:?}:\n{stdout}\n{stderr}");
    }
    assert_eq!(stdout.matches("Digest file\ts3://").count(), digests, "{stdout}");
    assert_eq!(stdout.matches("Log file\ts3://").count(), logs, "{stdout}");
    stderr
}

/// validate-logs exited 1 and reported `wording` on stderr.
fn assert_invalid(out: &Output, wording: &str) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(1), "validate-logs should fail with {wording:?}:\n{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("INVALID: {wording}")), "expected {wording:?}:\n{stdout}\n{stderr}");
    stderr
}

fn read_digest(root: &Path, key: &str) -> Value {
    serde_json::from_slice(&gunzip(&std::fs::read(root.join(key)).unwrap())).unwrap()
}

/// Replaces a (read-only) file's bytes; returns the old ones.
fn overwrite(path: &Path, bytes: &[u8]) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt;
    let old = std::fs::read(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    old
}

fn sidecar(root: &Path, key: &str) -> PathBuf {
    root.join(".opentrail-meta").join(format!("{key}.json"))
}

fn metrics(s: &Server) -> String {
    let r = s.raw("GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    r.text()
}

/// The sample of `family{labels}` in a metrics text.
fn metric(text: &str, family_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(family_and_labels)?.trim().parse().ok())
}

// ---- the tests ----------------------------------------------------------------------------------------------

#[test]
fn trails_deliver_selected_events_verbatim_and_validate_logs_proves_and_catches_tampering() {
    let s = Server::start_with(&config_toml(FAST));
    let begun = iso(now_ms() - 120_000);
    let cases = trail_cases();
    for t in &cases {
        create(&s, t);
    }
    let by_name = |n: &str| cases.iter().find(|t| t.name == n).unwrap();
    for t in &cases {
        call(&s, "StartLogging", json!({"Name": t.name}));
    }

    // First stretch: a few hundred events of every kind.
    let first = events("a", 300);
    ingest(&s, &first);
    for t in &cases {
        wait_delivered(&s, t, &selected_ids(t, &first));
    }
    // While the trails log, each is a view with its lag on /metrics.
    let m = metrics(&s);
    for t in &cases {
        let lag = metric(&m, &format!("opentrail_view_lag_events{{view=\"trail:{}\"}}", t.name));
        assert!(lag.is_some(), "{}: no view lag:\n{m}", t.name);
    }
    // A few digest rounds with files in them before stopping, so the audit chain has links.
    wait_for("three audit digests", Duration::from_secs(30), || {
        delivered(&s, by_name("audit")).digests.get("us-east-1").is_some_and(|d| d.len() >= 3)
    });
    let stopped_at = now_ms() / 1000 * 1000;
    for t in &cases {
        call(&s, "StopLogging", json!({"Name": t.name}));
    }
    for t in &cases {
        wait_finished(&s, t.name);
        // A final digest in each Region, written after the stop, closes each chain.
        let d = delivered(&s, t);
        for (region, keys) in &d.digests {
            let last = read_digest(&bucket_root(&s, t.bucket), keys.last().unwrap());
            let end = chrono::DateTime::parse_from_rfc3339(last["digestEndTime"].as_str().unwrap()).unwrap();
            assert!(end.timestamp_millis() >= stopped_at, "{} {region}: no digest after StopLogging: {last}", t.name);
        }
    }
    let stopped: BTreeMap<&str, usize> =
        cases.iter().map(|t| (t.name, delivered(&s, t).digests.values().map(Vec::len).sum())).collect();

    // While stopped: recorded in the event history, never delivered (StartLogging resumes from then on).
    let while_stopped = events("b", 60);
    ingest(&s, &while_stopped);

    // Second stretch for two trails: `audit` stops again, `writes` is deleted while logging.
    for name in ["audit", "writes"] {
        call(&s, "StartLogging", json!({"Name": name}));
    }
    let second = events("c", 90);
    ingest(&s, &second);
    for name in ["audit", "writes"] {
        wait_delivered(&s, by_name(name), &selected_ids(by_name(name), &second));
    }
    wait_for("an audit digest of the second stretch", Duration::from_secs(30), || {
        delivered(&s, by_name("audit")).digests["us-east-1"].len() > stopped["audit"] + 1
    });
    call(&s, "StopLogging", json!({"Name": "audit"}));
    let writes_state = s.data_dir.join("delivery").join("writes");
    assert!(writes_state.exists());
    let deleted_at = now_ms();
    call(&s, "DeleteTrail", json!({"Name": "writes"}));
    wait_finished(&s, "audit");
    wait_for("the deleted trail's delivery state to go", Duration::from_secs(30), || !writes_state.exists());

    // Every file of every trail: key shape, verbatim records, selection, exactly once.
    let mut stored_text = BTreeMap::new();
    s.wait_caught_up();
    for t in &cases {
        let d = delivered(&s, t);
        check_files(&s, t, &d, &mut stored_text);
        let mut expected = selected_ids(t, &first);
        if matches!(t.name, "audit" | "writes") {
            expected.extend(selected_ids(t, &second));
        }
        let got = ingested_ids(&d);
        let got_set: BTreeSet<String> = got.keys().cloned().collect();
        assert_eq!(got_set, expected, "{}: the delivered events are not exactly the selected ones", t.name);
        assert!(!expected.is_empty(), "{}: the scenario selects nothing", t.name);
        for id in while_stopped.iter().map(id_of) {
            assert!(!got.contains_key(id), "{}: {id} was recorded while stopped and delivered anyway", t.name);
        }
        // Folders: single-Region trails only their home Region; multi-Region ones each Region apart, with a
        // digest chain per Region.
        let regions: BTreeSet<&str> = d.logs.iter().map(|f| f.region.as_str()).collect();
        let digest_regions: BTreeSet<&str> = d.digests.keys().map(String::as_str).collect();
        if t.multi_region {
            assert_eq!(regions, REGIONS.into_iter().collect(), "{}", t.name);
            assert_eq!(digest_regions, regions, "{}: one digest chain per Region", t.name);
        } else {
            assert_eq!(regions, ["us-east-1"].into_iter().collect(), "{}", t.name);
            assert_eq!(digest_regions, regions, "{}", t.name);
        }
        if matches!(t.name, "audit" | "writes") {
            let accounts: BTreeSet<&str> = d.logs.iter().map(|f| f.account.as_str()).collect();
            assert!(accounts.contains(OTHER_ACCOUNT) && accounts.contains(ACCOUNT), "{}: {accounts:?}", t.name);
        }
        // Each Region's chain: digests link to the one before in the same Region, or start a chain; every log
        // file of the Region is listed by exactly one digest.
        let root = bucket_root(&s, t.bucket);
        for (region, keys) in &d.digests {
            let mut listed = Vec::new();
            let mut starts = 0;
            for (i, key) in keys.iter().enumerate() {
                let dg = read_digest(&root, key);
                assert_eq!(dg["digestS3Object"], json!(key));
                match dg["previousDigestS3Object"].as_str() {
                    None => {
                        // A chain start: every previousDigest* field is null.
                        for f in ["S3Bucket", "HashValue", "HashAlgorithm", "Signature"] {
                            assert!(dg[format!("previousDigest{f}")].is_null(), "{key}: {dg}");
                        }
                        starts += 1
                    }
                    Some(prev) => assert_eq!(Some(prev), i.checked_sub(1).map(|j| keys[j].as_str()), "{key}"),
                }
                for lf in dg["logFiles"].as_array().unwrap() {
                    listed.push(lf["s3Object"].as_str().unwrap().to_string());
                }
            }
            let expected_starts = if matches!(t.name, "audit" | "writes") { 2 } else { 1 };
            assert_eq!(starts, expected_starts, "{} {region}: chain starts", t.name);
            listed.sort();
            let mut on_disk: Vec<String> =
                d.logs.iter().filter(|f| &f.region == region).map(|f| f.key.clone()).collect();
            on_disk.sort();
            assert_eq!(listed, on_disk, "{} {region}: every log file in exactly one digest", t.name);
        }
    }
    // The deleted trail's final digests came after the deletion, in every Region.
    let writes = delivered(&s, by_name("writes"));
    for (region, keys) in &writes.digests {
        let last = read_digest(&bucket_root(&s, "multi-logs"), keys.last().unwrap());
        let end = chrono::DateTime::parse_from_rfc3339(last["digestEndTime"].as_str().unwrap()).unwrap();
        assert!(end.timestamp_millis() >= deleted_at / 1000 * 1000, "{region}: no digest after DeleteTrail");
    }

    // The aws CLI agrees: every digest and log file on disk valid; the stop + start shows as a gap notice.
    let audit = delivered(&s, by_name("audit"));
    let audit_digests = &audit.digests["us-east-1"];
    let audit_logs = audit.logs.len();
    let out = validate_logs(&s, &arn("audit"), &begun, &[]);
    let stderr = assert_valid(&out, audit_digests.len(), audit_logs);
    assert!(stderr.contains("No log files were delivered by CloudTrail between"), "{stderr}");
    for t in cases.iter().filter(|t| !matches!(t.name, "audit" | "writes")) {
        let d = delivered(&s, t);
        let home_logs = d.logs.iter().filter(|f| f.region == "us-east-1").count();
        assert_valid(&validate_logs(&s, &arn(t.name), &begun, &[]), d.digests["us-east-1"].len(), home_logs);
    }
    // The deleted trail, named by its bucket (DescribeTrails no longer knows it): its final digests close
    // the chain. Its other Regions' chains cannot go through the aws CLI: `--region us-west-2` also scopes
    // the CLI's CloudTrail signatures to us-west-2, which this single-Region server refuses; the structural
    // checks above (links, every log file in one digest) cover them.
    let home_logs = writes.logs.iter().filter(|f| f.region == "us-east-1").count();
    let out = validate_logs(&s, &arn("writes"), &begun, &["--s3-bucket", "multi-logs"]);
    assert_valid(&out, writes.digests["us-east-1"].len(), home_logs);

    // Tampering the aws CLI sees, each undone before the next.
    let root = bucket_root(&s, "audit-logs");
    let newest = audit_digests.last().unwrap().clone();
    let newest_digest = read_digest(&root, &newest);
    // A modified log file.
    let victim = audit.logs.iter().find(|f| f.account == ACCOUNT).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, br#"{"Records":[]}"#).unwrap();
    let old = overwrite(&root.join(&victim.key), &gz.finish().unwrap());
    let stderr = assert_invalid(&validate_logs(&s, &arn("audit"), &begun, &[]), "hash value doesn't match");
    assert!(stderr.contains(&victim.key), "{stderr}");
    overwrite(&root.join(&victim.key), &old);
    // A deleted older digest (one a newer digest links to).
    let linked = newest_digest["previousDigestS3Object"].as_str().expect("the newest digest links back").to_string();
    let aside = root.join("aside.json.gz");
    std::fs::rename(root.join(&linked), &aside).unwrap();
    let stderr = assert_invalid(&validate_logs(&s, &arn("audit"), &begun, &[]), "not found");
    assert!(stderr.contains(&linked), "{stderr}");
    std::fs::rename(&aside, root.join(&linked)).unwrap();
    // Corrupted signature metadata.
    let meta_path = sidecar(&root, &newest);
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let sig = meta["metadata"]["signature"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if sig.starts_with('0') { '1' } else { '0' }, &sig[1..]);
    meta["metadata"]["signature"] = flipped.into();
    let old = overwrite(&meta_path, meta.to_string().as_bytes());
    let stderr = assert_invalid(&validate_logs(&s, &arn("audit"), &begun, &[]), "signature verification failed");
    assert!(stderr.contains(&newest), "{stderr}");
    overwrite(&meta_path, &old);
    // A digest copied to another key (a later one, so the CLI reads it first).
    let stamp = &newest[newest.len() - 24..newest.len() - 8];
    let later = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").unwrap() + chrono::Duration::seconds(1);
    let copy = format!("{}{}{}", &newest[..newest.len() - 24], later.format("%Y%m%dT%H%M%SZ"), ".json.gz");
    std::fs::copy(root.join(&newest), root.join(&copy)).unwrap();
    std::fs::copy(sidecar(&root, &newest), sidecar(&root, &copy)).unwrap();
    let stderr =
        assert_invalid(&validate_logs(&s, &arn("audit"), &begun, &[]), "has been moved from its original location");
    assert!(stderr.contains(&copy), "{stderr}");
    std::fs::remove_file(root.join(&copy)).unwrap();
    std::fs::remove_file(sidecar(&root, &copy)).unwrap();
    assert_valid(&validate_logs(&s, &arn("audit"), &begun, &[]), audit_digests.len(), audit_logs);

    // GetTrailStatus and /metrics report the delivery.
    let status = call(&s, "GetTrailStatus", json!({"Name": "audit"}));
    for field in ["LatestDeliveryTime", "LatestDigestDeliveryTime"] {
        let t = status[field].as_f64().unwrap_or_else(|| panic!("{field} missing: {status}"));
        assert!(t * 1000.0 > (now_ms() - 600_000) as f64, "{field}: {status}");
    }
    assert!(status["LatestDeliveryAttemptSucceeded"].as_str().is_some_and(|t| t.ends_with('Z')), "{status}");
    assert!(status["LatestDeliveryError"].is_null(), "{status}");
    assert_eq!(status["LatestDigestS3Object"], json!(newest), "{status}");
    let m = metrics(&s);
    let delivered_events: usize = audit.logs.iter().map(|f| f.records.len()).sum();
    assert_eq!(metric(&m, "opentrail_delivery_events_total{trail=\"audit\"}"), Some(delivered_events as f64), "{m}");

    // The S3 read API lists what was delivered and returns the same bytes.
    let mut ls = s.aws(AUDITOR_KEY, AUDITOR_SECRET);
    ls.env("AWS_ENDPOINT_URL_S3", &s.endpoint).args(["s3", "ls", "--recursive", "s3://audit-logs/AWSLogs/"]);
    let out = ls.output().unwrap();
    let (listing, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let listed: BTreeSet<&str> = listing.lines().filter_map(|l| l.split_whitespace().last()).collect();
    let on_disk: BTreeSet<String> = keys(&root).into_iter().collect();
    assert_eq!(listed, on_disk.iter().map(String::as_str).collect(), "{listing}");
    let mut cp = s.aws(AUDITOR_KEY, AUDITOR_SECRET);
    cp.env("AWS_ENDPOINT_URL_S3", &s.endpoint).args(["s3", "cp", &format!("s3://audit-logs/{}", victim.key), "-"]);
    let out = cp.output().unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(out.stdout == std::fs::read(root.join(&victim.key)).unwrap(), "aws s3 cp returned other bytes");
    // A stopped trail's delivery is finished; deleting it removes its delivery state too.
    let nokms_state = s.data_dir.join("delivery").join("nokms");
    assert!(nokms_state.exists());
    call(&s, "DeleteTrail", json!({"Name": "nokms"}));
    wait_for("a stopped trail's delivery state to go", Duration::from_secs(10), || !nokms_state.exists());
    s.assert_no_errors_logged();
}

#[test]
fn a_restart_or_a_crash_loses_and_doubles_nothing_and_keeps_the_chain_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("opentrail.toml");
    std::fs::write(&cfg, config_toml(FAST)).unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    let begun = iso(now_ms() - 120_000);
    let t = TrailCase {
        name: "audit",
        bucket: "audit-logs",
        prefix: None,
        multi_region: true,
        selectors: None,
        selects: |e| category(e) == "Management",
    };
    create(&s, &t);
    call(&s, "StartLogging", json!({"Name": "audit"}));
    let before = events("r1", 150);
    ingest(&s, &before);
    wait_delivered(&s, &t, &selected_ids(&t, &before));
    wait_for("a digest", Duration::from_secs(30), || !delivered(&s, &t).digests.is_empty());
    // Acknowledged and not yet cut when the server stops: delivered after the restart, once.
    let in_flight = events("r2", 150);
    ingest(&s, &in_flight);
    s.stop();
    s.assert_no_errors_logged();

    let mut s = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    let after = events("r3", 150);
    ingest(&s, &after);
    wait_delivered(&s, &t, &selected_ids(&t, &after));
    // And a crash (SIGKILL) with records acknowledged and not yet delivered.
    let crashed = events("r4", 150);
    ingest(&s, &crashed);
    std::thread::sleep(Duration::from_millis(600)); // somewhere inside the next cut or upload, or not yet
    s.kill();

    let s = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    let last = events("r5", 30);
    ingest(&s, &last);
    let status = call(&s, "GetTrailStatus", json!({"Name": "audit"}));
    assert!(status["LatestDeliveryTime"].as_f64().is_some(), "delivery status survives restarts: {status}");
    let all: Vec<Value> = before.iter().chain(&in_flight).chain(&after).chain(&crashed).chain(&last).cloned().collect();
    let expected = selected_ids(&t, &all);
    wait_delivered(&s, &t, &expected);
    let digests_now = delivered(&s, &t).digests["us-east-1"].len();
    wait_for("a digest after the restart", Duration::from_secs(30), || {
        delivered(&s, &t).digests["us-east-1"].len() > digests_now
    });
    call(&s, "StopLogging", json!({"Name": "audit"}));
    wait_finished(&s, "audit");

    let d = delivered(&s, &t);
    let got = ingested_ids(&d);
    let doubled: Vec<&String> = got.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(doubled.is_empty(), "delivered twice: {doubled:?}");
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected, "lost or extra events across the restart");
    s.wait_caught_up();
    check_files(&s, &t, &d, &mut BTreeMap::new());
    // One chain per Region across the restart: it starts once.
    let root = bucket_root(&s, "audit-logs");
    for (region, keys) in &d.digests {
        let starts = keys.iter().filter(|k| read_digest(&root, k)["previousDigestS3Object"].is_null()).count();
        assert_eq!(starts, 1, "{region}: the chain restarted across the server restart");
    }
    let home_logs = d.logs.iter().filter(|f| f.region == "us-east-1").count();
    let stderr = assert_valid(&validate_logs(&s, &arn("audit"), &begun, &[]), d.digests["us-east-1"].len(), home_logs);
    assert!(!stderr.contains("No log files were delivered"), "{stderr}");
    s.assert_no_errors_logged();
}
