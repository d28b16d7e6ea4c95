//! Insights end to end: the real binary, a trail with Insights selectors put by the aws CLI, an hour and
//! more of backdated background traffic from `opentrail gen`, then a burst (RunInstances ×10 for 15 minutes)
//! or a wave of AccessDenied, then calm → exactly one Insight (Start and End), found by the aws CLI and
//! boto3 with `EventCategory=insight`, delivered under `CloudTrail-Insight/`, and none for the other APIs of
//! the same traffic; a restart in the middle of an Insight still ends it, once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::delivered::{assert_all_valid, read_folder, validate_logs, wait_until};
use crate::support::*;

/// Fast delivery, so the Insights files land within the test.
const FAST: &str = "[delivery]\ninterval = \"1s\"\ndigest_interval = \"2s\"\n";
const TRAIL: &str = "audit";
const BUCKET: &str = "insights-bucket";
const BURSTER: &str = "arn:aws:iam::123456789012:user/burster";

/// Where the backdated history starts: a fixed time, so the traffic and what the detector learns from it are
/// the same in every run (the detector buckets minutes by hour and quarter-hour of eventTime).
const HISTORY_START: i64 = 1_793_869_200_000; // 2026-11-05T09:00:00Z, a Thursday morning

/// Minutes of background history before the burst, the burst's length, and the calm after it.
const BEFORE: i64 = 100;
const BURST: i64 = 15;
const AFTER: i64 = 35;

fn minute_ms() -> i64 {
    60_000
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_iso(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

/// A trail logging every management event into the local bucket with signed digests, Insights of both types
/// on, put with the aws CLI (whose answer must echo them).
fn trail_with_insights(s: &Server) {
    let created = s.cloudtrail(
        ADMIN_KEY,
        ADMIN_SECRET,
        "CreateTrail",
        &json!({"Name": TRAIL, "S3BucketName": BUCKET, "EnableLogFileValidation": true}),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let started = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "StartLogging", &json!({"Name": TRAIL}));
    assert_eq!(started.status, 200, "{}", started.text());
    let out = s
        .aws(ADMIN_KEY, ADMIN_SECRET)
        .args(["cloudtrail", "put-insight-selectors", "--trail-name", TRAIL, "--insight-selectors"])
        .arg(r#"[{"InsightType":"ApiCallRateInsight"},{"InsightType":"ApiErrorRateInsight"}]"#)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["InsightSelectors"].as_array().unwrap().len(), 2, "{v}");
}

/// `opentrail gen` traffic over `[start, start + minutes)`, one JSON record per element, in time order, all of
/// the server's account and Region (the trail's).
fn background(start_ms: i64, minutes: i64, seed: u64) -> Vec<Value> {
    let out = std::process::Command::new(bin())
        .args(["gen", "--events", &(minutes * 200).to_string(), "--seed", &seed.to_string()])
        .args(["--start", &iso(start_ms), "--span", &format!("{minutes}m")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for r in &mut records {
        r["awsRegion"] = "us-east-1".into();
        r["recipientAccountId"] = ACCOUNT.into();
    }
    records
}

/// `per_minute` copies of `template` in each minute of `[start, start + minutes)`, spread over the minute,
/// made by `who` (and failing with `error` when given).
fn wave(template: &Value, start_ms: i64, minutes: i64, per_minute: i64, error: Option<&str>, tag: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for m in 0..minutes {
        for k in 0..per_minute {
            let mut e = template.clone();
            e["eventID"] = format!("{tag}-{m:03}-{k:03}").into();
            e["eventTime"] = iso(start_ms + m * minute_ms() + k * minute_ms() / per_minute).into();
            e["userIdentity"]["arn"] = BURSTER.into();
            e["userIdentity"]["userName"] = "burster".into();
            e["userAgent"] = "aws-cli/2.15.0 burst".into();
            if let Some(code) = error {
                e["errorCode"] = code.into();
                e["errorMessage"] = "User is not authorized to perform this operation".into();
                e.as_object_mut().unwrap().remove("responseElements");
            }
            out.push(e);
        }
    }
    out
}

/// Ingests records in eventTime order, in requests of 2,000.
fn ingest_sorted(s: &Server, mut records: Vec<Value>) {
    records.sort_by_key(|r| parse_iso(r["eventTime"].as_str().unwrap()));
    for chunk in records.chunks(2000) {
        let body: String = chunk.iter().map(|r| format!("{r}\n")).collect();
        let v = s.ingest(&body);
        assert_eq!(v["failed"].as_array().map_or(0, Vec::len), 0, "{v}");
    }
}

/// Every Insights event, through LookupEvents with `EventCategory=insight` (opentrail's own client).
fn insight_events(s: &Server) -> Vec<Value> {
    let mut params = json!({"EventCategory": "insight", "MaxResults": 50});
    let mut out = Vec::new();
    loop {
        let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "LookupEvents", &params);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        for e in v["Events"].as_array().unwrap() {
            out.push(serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap());
        }
        match v["NextToken"].as_str() {
            Some(t) => params["NextToken"] = t.into(),
            None => return out,
        }
    }
}

/// Waits until the Insights events include an End (or the time runs out), then returns them all.
fn wait_for_end(s: &Server, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = insight_events(s);
        if events.iter().any(|e| e["insightDetails"]["state"] == "End") || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A call of `name` from the traffic that succeeded, to copy.
fn first_of(events: &[Value], name: &str) -> Value {
    (events.iter())
        .find(|e| e["eventName"] == name && e.get("errorCode").is_none())
        .unwrap_or_else(|| panic!("no successful {name} in the traffic"))
        .clone()
}

/// Checks one Start/End pair of `insight_type` for `event_name` and nothing else; returns (Start, End).
fn one_insight(events: &[Value], insight_type: &str, event_name: &str) -> (Value, Value) {
    let summary: Vec<String> = events
        .iter()
        .map(|e| {
            let d = &e["insightDetails"];
            format!("{} {} {} {} {}", e["eventTime"], d["state"], d["insightType"], d["eventName"], d["errorCode"])
        })
        .collect();
    assert_eq!(events.len(), 2, "expected exactly one Start and one End:\n{}", summary.join("\n"));
    let start = events.iter().find(|e| e["insightDetails"]["state"] == "Start").expect("a Start").clone();
    let end = events.iter().find(|e| e["insightDetails"]["state"] == "End").expect("an End").clone();
    for e in [&start, &end] {
        assert_eq!(e["eventType"], "AwsCloudTrailInsight");
        assert_eq!(e["eventCategory"], "Insight");
        assert_eq!(e["recipientAccountId"], ACCOUNT);
        assert_eq!(e["insightDetails"]["insightType"], insight_type);
        assert_eq!(e["insightDetails"]["eventName"], event_name);
        assert!(e.get("userIdentity").is_none() && e.get("eventSource").is_none(), "{e}");
        let stats = &e["insightDetails"]["insightContext"]["statistics"];
        assert!(stats["baseline"]["average"].is_number() && stats["insight"]["average"].is_number(), "{stats}");
        assert!(stats["baselineDuration"].as_u64().unwrap() > 0, "{stats}");
    }
    assert_eq!(start["sharedEventID"], end["sharedEventID"]);
    assert_ne!(start["eventID"], end["eventID"]);
    (start, end)
}

/// The minute a Start was raised in (event time): its first unusual minute plus its `insightDuration` so far
/// (the minutes from the first unusual one through the detecting one). Asserts it is the burst's first
/// minute or one of the two after it — never before the burst, never later — and that the first unusual
/// minute the record names is not after the detection.
fn assert_detected_within_two_minutes(start: &Value, burst_at: i64) {
    let first = parse_iso(start["eventTime"].as_str().unwrap());
    let minutes = start["insightDetails"]["insightContext"]["statistics"]["insightDuration"].as_i64().unwrap();
    let detected = first + (minutes - 1) * minute_ms();
    assert!(
        detected >= burst_at && detected <= burst_at + 2 * minute_ms(),
        "the Start was raised at {} (first unusual minute {}, {minutes} min), the burst began at {}",
        iso(detected),
        iso(first),
        iso(burst_at)
    );
    assert!(first <= detected && minutes >= 1, "{start}");
}

/// The values an attribution lists during the Insight.
fn attributed(e: &Value, attribute: &str) -> Vec<String> {
    let a = e["insightDetails"]["insightContext"]["attributions"].as_array().cloned().unwrap_or_default();
    a.iter()
        .filter(|a| a["attribute"] == attribute)
        .flat_map(|a| a["insight"].as_array().cloned().unwrap_or_default())
        .map(|v| v["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The Insights records delivered under `CloudTrail-Insight/` in the trail's local bucket, once there are `want`
/// of them and every log file there is listed in a digest.
fn delivered_insights(s: &Server, want: usize) -> Vec<Value> {
    let root = s.data_dir.join("buckets").join(BUCKET);
    wait_until("the Insights events delivered and digested", Duration::from_secs(30), || {
        let d = read_folder(&root, TRAIL, BUCKET);
        d.assert_layout("insights trail");
        d.assert_nothing_doubled("insights trail");
        let insight_files: Vec<_> = d.logs.iter().filter(|l| l.key.contains("/CloudTrail-Insight/")).collect();
        let records: Vec<Value> =
            insight_files.iter().flat_map(|l| l.json["Records"].as_array().cloned().unwrap_or_default()).collect();
        let undigested = d.undigested();
        if records.len() >= want && undigested.is_empty() {
            Ok(records)
        } else {
            Err(format!("{} Insights records delivered, not in a digest yet: {undigested:?}", records.len()))
        }
    })
}

#[test]
fn a_burst_of_run_instances_raises_one_call_rate_insight() {
    let s = Server::start_with(&config_toml(FAST));
    trail_with_insights(&s);
    let t0 = HISTORY_START;
    let burst_at = t0 + BEFORE * minute_ms();
    let mut traffic = background(t0, BEFORE + BURST + AFTER, 7);
    let base =
        traffic.iter().filter(|e| e["eventName"] == "RunInstances").count() as f64 / (BEFORE + BURST + AFTER) as f64;
    // Ten times the usual rate: the usual calls go on, nine times as many come on top.
    let extra = ((base * 9.0).round() as i64).max(3);
    let template = first_of(&traffic, "RunInstances");
    traffic.extend(wave(&template, burst_at, BURST, extra, None, "burst"));
    ingest_sorted(&s, traffic);

    let events = wait_for_end(&s, Duration::from_secs(90));
    let (start, end) = one_insight(&events, "ApiCallRateInsight", "RunInstances");
    assert_eq!(start["insightDetails"]["eventSource"], "ec2.amazonaws.com");
    assert_detected_within_two_minutes(&start, burst_at);
    let started = parse_iso(start["eventTime"].as_str().unwrap());
    let ended = parse_iso(end["eventTime"].as_str().unwrap());
    assert!(ended > started + 5 * minute_ms(), "the End ({}) comes after the burst", iso(ended));
    assert!(attributed(&start, "userIdentityArn").contains(&BURSTER.to_string()), "{start}");
    let stats = &end["insightDetails"]["insightContext"]["statistics"];
    assert!(
        stats["insight"]["average"].as_f64().unwrap() > 3.0 * stats["baseline"]["average"].as_f64().unwrap(),
        "{stats}"
    );

    // The aws CLI and boto3 find the same pair.
    let out = s
        .aws(AUDITOR_KEY, AUDITOR_SECRET)
        .args(["cloudtrail", "lookup-events", "--event-category", "insight"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<&str> = v["Events"].as_array().unwrap().iter().map(|e| e["EventId"].as_str().unwrap()).collect();
    ids.sort();
    let mut want = vec![start["eventID"].as_str().unwrap(), end["eventID"].as_str().unwrap()];
    want.sort();
    assert_eq!(ids, want);
    let py = s.python(
        AUDITOR_KEY,
        AUDITOR_SECRET,
        r#"
import json, os, boto3
ct = boto3.client("cloudtrail", endpoint_url=os.environ["ENDPOINT"], aws_access_key_id=os.environ["KEY"],
                  aws_secret_access_key=os.environ["SECRET"], region_name="us-east-1")
p = ct.get_paginator("lookup_events")
events = [json.loads(e["CloudTrailEvent"]) for page in p.paginate(EventCategory="insight") for e in page["Events"]]
print(json.dumps(sorted((e["insightDetails"]["state"], e["sharedEventID"]) for e in events)))
"#,
    );
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let shared = start["sharedEventID"].as_str().unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&py.stdout).unwrap(), json!([["End", shared], ["Start", shared]]));

    // The trail delivers both under CloudTrail-Insight/ (and nothing else there), its digests list those
    // files, and the aws CLI's own integrity check passes over them.
    let delivered = delivered_insights(&s, 2);
    let mut got: Vec<&str> = delivered.iter().map(|r| r["eventID"].as_str().unwrap()).collect();
    got.sort();
    assert_eq!(got, want);
    assert_all_valid(&validate_logs(&s, TRAIL, &s.endpoint), 1);
    s.assert_no_errors_logged();
}

#[test]
fn a_wave_of_access_denied_raises_one_error_rate_insight() {
    let s = Server::start_with(&config_toml(FAST));
    trail_with_insights(&s);
    let t0 = HISTORY_START;
    let wave_at = t0 + BEFORE * minute_ms();
    let mut traffic = background(t0, BEFORE + BURST + AFTER, 11);
    // A read API, so the wave is no call-rate Insight (those cover writes): DescribeInstances, denied 10 times
    // a minute on top of its usual calls.
    let template = first_of(&traffic, "DescribeInstances");
    traffic.extend(wave(&template, wave_at, BURST, 10, Some("AccessDenied"), "denied"));
    ingest_sorted(&s, traffic);

    let events = wait_for_end(&s, Duration::from_secs(90));
    let (start, _end) = one_insight(&events, "ApiErrorRateInsight", "DescribeInstances");
    assert_eq!(start["insightDetails"]["errorCode"], "AccessDenied");
    assert_detected_within_two_minutes(&start, wave_at);
    assert!(attributed(&start, "userIdentityArn").contains(&BURSTER.to_string()), "{start}");
    s.assert_no_errors_logged();
}

#[test]
fn a_restart_in_the_middle_of_an_insight_still_ends_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("opentrail.toml");
    std::fs::write(&cfg, config_toml(FAST)).unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    trail_with_insights(&s);
    let t0 = HISTORY_START;
    let burst_at = t0 + BEFORE * minute_ms();
    let mut traffic = background(t0, BEFORE + BURST + AFTER, 13);
    let template = first_of(&traffic, "RunInstances");
    traffic.extend(wave(&template, burst_at, BURST, 6, None, "burst"));
    traffic.sort_by_key(|r| parse_iso(r["eventTime"].as_str().unwrap()));
    // Up to the middle of the burst, then wait for the Start.
    let middle = burst_at + BURST / 2 * minute_ms();
    let cut = traffic.partition_point(|r| parse_iso(r["eventTime"].as_str().unwrap()) < middle);
    let rest = traffic.split_off(cut);
    ingest_sorted(&s, traffic);
    let deadline = Instant::now() + Duration::from_secs(60);
    while insight_events(&s).is_empty() {
        assert!(Instant::now() < deadline, "no Start before the restart");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Killed, not stopped: what was raised must be durable, and the detector's state too.
    s.kill();
    let s = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    ingest_sorted(&s, rest);
    let events = wait_for_end(&s, Duration::from_secs(90));
    one_insight(&events, "ApiCallRateInsight", "RunInstances");
    s.assert_no_errors_logged();
}

/// `opentrail insights replay` over a synced `AWSLogs/` tree of gzip'd log files (digests in it skipped):
/// the burst's Insight, Start and End, as CloudTrail records — with no server.
#[test]
fn replay_finds_the_burst_in_log_files_without_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = 1_798_761_600_000; // 2027-01-01T00:00:00Z
    let burst_at = t0 + BEFORE * minute_ms();
    let mut traffic = background(t0, BEFORE + BURST + AFTER, 5);
    let template = first_of(&traffic, "RunInstances");
    traffic.extend(wave(&template, burst_at, BURST, 6, None, "burst"));
    // Log files of 5,000 records each, in delivery order but not sorted within (as CloudTrail's are not).
    let folder = tmp.path().join("AWSLogs").join(ACCOUNT).join("CloudTrail").join("us-east-1").join("2027/01/01");
    std::fs::create_dir_all(&folder).unwrap();
    for (i, chunk) in traffic.chunks(5000).enumerate() {
        let mut records = chunk.to_vec();
        records.reverse();
        let body = serde_json::to_vec(&json!({ "Records": records })).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &body).unwrap();
        std::fs::write(
            folder.join(format!("{ACCOUNT}_CloudTrail_us-east-1_20270101T{i:04}Z_x.json.gz")),
            gz.finish().unwrap(),
        )
        .unwrap();
    }
    let digests = tmp.path().join("AWSLogs").join(ACCOUNT).join("CloudTrail-Digest").join("us-east-1");
    std::fs::create_dir_all(&digests).unwrap();
    std::fs::write(digests.join("d.json.gz"), b"not a log file").unwrap();
    let out = std::process::Command::new(bin())
        .args(["insights", "replay", "--output", "json"])
        .arg(tmp.path().join("AWSLogs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (start, _) = one_insight(&events, "ApiCallRateInsight", "RunInstances");
    assert_detected_within_two_minutes(&start, burst_at);
    assert!(stderr.contains("1 Insights started, 1 ended"), "{stderr}");
}

/// `opentrail insights series`: one output row per input row, strictly streaming (the output for a prefix of
/// the input is the prefix of the output), quiet on a regular series, and an alarm where a spike starts.
#[test]
fn series_scores_every_row_strictly_streaming_and_alarms_on_a_spike() {
    let tmp = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..3000i64)
        .map(|i| {
            let t = 1_600_000_000 + i * 300; // every 5 minutes, epoch seconds
            let base = 50.0 + 20.0 * ((i % 288) as f64 / 288.0 * std::f64::consts::TAU).sin();
            let v = if (2500..2510).contains(&i) { base * 6.0 } else { base };
            format!("{t},{v:.3}")
        })
        .collect();
    let run = |n: usize| -> Vec<String> {
        let path = tmp.path().join(format!("s{n}.csv"));
        std::fs::write(&path, format!("timestamp,value\n{}\n", rows[..n].join("\n"))).unwrap();
        let out = std::process::Command::new(bin()).args(["insights", "series"]).arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
    };
    let full = run(rows.len());
    assert_eq!(full[0], "timestamp,value,anomaly_score,alarm");
    assert_eq!(full.len(), rows.len() + 1);
    let part = run(2505);
    assert_eq!(part[..], full[..2506], "a row's output depends only on the rows up to it");
    let alarm = |line: &str| line.rsplit(',').next() == Some("1");
    let first_alarm = full[1..].iter().position(|l| alarm(l)).expect("an alarm on the spike");
    assert!((2500..2503).contains(&first_alarm), "first alarm at row {first_alarm}");
    for (i, l) in full[1..].iter().enumerate() {
        let cols: Vec<&str> = l.split(',').collect();
        assert_eq!(cols.len(), 4, "{l}");
        assert_eq!(cols[0], rows[i].split(',').next().unwrap(), "timestamps are echoed");
    }
}
