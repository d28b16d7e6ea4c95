//! Black-box tests of the core: the real binary on port 0, driven by its own CLI and by signed HTTP.

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::support::*;

fn durable(s: &Server) -> Value {
    s.raw("GET", "/healthz", &[], b"").json()["durableSeq"].clone()
}

#[test]
fn seed_case_the_cli_shows_who_created_mary_when_how_and_from_where() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed.ndjson");
    std::fs::write(&file, format!("{SEED}\n")).unwrap();
    let out = s.cli().args(["ingest"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 new, 0 already stored"));
    s.wait_caught_up();

    let out = s.cli().args(["lookup", "--attr", "EventName=CreateUser"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "2020-01-01T09:00:00Z",
        "iam.amazonaws.com",
        "CreateUser",
        "John",
        "arn:aws:iam::123456789012:user/John",
        "ASIAJOHNCONSOLE00001",
        "198.51.100.23",
        "console",
        "\"userName\":\"Mary\"",
        // Ingested with John's key: how the record arrived, beside who the record says acted.
        "PROVENANCE",
        "ingest:John",
    ] {
        assert!(table.contains(needle), "table lacks {needle}:\n{table}");
    }

    let out = s.cli().args(["lookup", "--attr", "EventName=CreateUser", "--output", "json"]).output().unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    let got: Value = serde_json::from_str(line.trim()).unwrap();
    let want: Value = serde_json::from_str(SEED).unwrap();
    assert_eq!(got, want, "the stored record is the record that went in");

    // Several attributes AND-ed, and the extension keys.
    let both = s
        .cli()
        .args([
            "lookup",
            "--attr",
            "EventName=CreateUser",
            "--attr",
            "Username=John",
            "--attr",
            "SourceIPAddress=198.51.100.23",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(both.stdout).unwrap().lines().count(), 1);
    let none = s
        .cli()
        .args(["lookup", "--attr", "EventName=CreateUser", "--attr", "Username=Mary", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(none.stdout).unwrap().lines().count(), 0);
    s.assert_no_errors_logged();
}

#[test]
fn every_input_shape_is_accepted_and_event_ids_are_assigned_when_absent() {
    let s = Server::start();
    let ndjson = format!(
        "{}\n{}\n",
        api_call("n1", "2021-01-01T00:00:01Z", "A", "u"),
        api_call("n2", "2021-01-01T00:00:02Z", "A", "u")
    );
    assert_eq!(s.ingest(&ndjson)["stored"], 2);
    let array = format!(
        "[{}, {}]",
        api_call("a1", "2021-01-01T00:00:03Z", "A", "u"),
        api_call("a2", "2021-01-01 00:00:04", "A", "u")
    );
    assert_eq!(s.ingest(&array)["stored"], 2);
    let envelope = format!("{{\"Records\": [{}]}}", api_call("r1", "2021-01-01T00:00:05Z", "A", "u"));
    assert_eq!(s.ingest(&envelope)["stored"], 1);
    // gzip with Content-Encoding, and a .gz file plus stdin through the CLI.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(api_call("g1", "2021-01-01T00:00:06Z", "A", "u").as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "POST", "/v1/events", &[("content-encoding", "gzip")], &gz);
    assert_eq!(r.status, 200, "{}", r.text());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("trail.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(format!("{{\"Records\":[{}]}}", api_call("f1", "2021-01-01T00:00:07Z", "A", "u")).as_bytes())
        .unwrap();
    std::fs::write(&f, enc.finish().unwrap()).unwrap();
    let out = s.cli().arg("ingest").arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut child = s.cli().args(["ingest", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let no_id = r#"{"eventTime":"2021-01-01T00:00:08Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets"}"#;
    child.stdin.take().unwrap().write_all(format!("{no_id}\n").as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    s.wait_caught_up();
    // What was ingested, without the audit records of the ingest calls.
    let all = s.lookup_all(&[("Provenance", "ingest")]);
    let ids: Vec<&str> = all.iter().map(|e| e["EventId"].as_str().unwrap()).collect();
    assert_eq!(&ids[1..], &["f1", "g1", "r1", "a2", "a1", "n2", "n1"], "newest first");
    let assigned = ids[0];
    assert_eq!(assigned.len(), 36, "a UUID was assigned: {assigned}");
    let stored: Value = serde_json::from_str(all[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(stored["eventID"], assigned);
}

#[test]
fn bad_records_are_reported_by_index_and_field_and_the_rest_is_stored() {
    let s = Server::start();
    let big = format!(
        r#"{{"eventTime":"2021-01-01T00:00:00Z","eventSource":"a","eventName":"b","pad":"{}"}}"#,
        "x".repeat(256 * 1024)
    );
    let body = [
        api_call("ok-1", "2021-01-01T00:00:00Z", "A", "u"),
        r#"{"eventSource":"a","eventName":"b"}"#.to_string(),
        r#"{"eventTime":"2021-01-01T00:00:00Z","eventName":"b"}"#.to_string(),
        r#"{"eventTime":"2021-01-01T00:00:00Z","eventSource":"a"}"#.to_string(),
        r#"{"eventTime":"2021-01-01T00:00:00Z", "eventSource":"a" "eventName":"b"}"#.to_string(),
        r#"{"eventTime":"tomorrow","eventSource":"a","eventName":"b"}"#.to_string(),
        big,
        api_call("ok-2", "2021-01-01T00:00:01Z", "A", "u"),
    ]
    .join("\n");
    let v = s.ingest(&body);
    assert_eq!(v["stored"], 2);
    let accepted: Vec<u64> = v["accepted"].as_array().unwrap().iter().map(|a| a["index"].as_u64().unwrap()).collect();
    assert_eq!(accepted, vec![0, 7]);
    let failed = v["failed"].as_array().unwrap();
    let want = [
        (1, "MissingField", "'eventTime'"),
        (2, "MissingField", "'eventSource'"),
        (3, "MissingField", "'eventName'"),
        (4, "InvalidJson", "byte offset 55"),
        (5, "InvalidField", "'eventTime'"),
        (6, "RecordTooLarge", "262144"),
    ];
    assert_eq!(failed.len(), want.len(), "{v}");
    for (f, (index, code, needle)) in failed.iter().zip(want) {
        assert_eq!(f["index"], index, "{f}");
        assert_eq!(f["errorCode"], code, "{f}");
        assert!(f["errorMessage"].as_str().unwrap().contains(needle), "{f} should mention {needle}");
    }

    // Bodies that cannot be split at all store nothing but the audit record of the failed call.
    let before = durable(&s);
    for (body, headers) in [
        (b"[{\"a\":1},".to_vec(), vec![]),
        (b"{\"Records\": 5}".to_vec(), vec![]),
        (b"\x1f\x8b\x08\x00garbage".to_vec(), vec![("content-encoding", "gzip")]),
    ] {
        let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "POST", "/v1/events", &headers, &body);
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.code(), "SerializationException");
        assert!(r.header("x-amzn-requestid").is_some());
    }
    // The failed calls' records are queued before their answers and durable a group commit later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while durable(&s).as_u64() != before.as_u64().map(|b| b + 3) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        durable(&s).as_u64().unwrap(),
        before.as_u64().unwrap() + 3,
        "one audit record per failed call, nothing else"
    );
    s.wait_caught_up();
    let audited = s.lookup_all(&[("EventName", "PutEvents"), ("ErrorCode", "SerializationException")]);
    assert_eq!(audited.len(), 3);
}

#[test]
fn resending_a_batch_stores_nothing_twice() {
    let s = Server::start();
    let body: String =
        (0..50).map(|i| api_call(&format!("dup-{i}"), "2021-02-01T00:00:00Z", "A", "u") + "\n").collect();
    assert_eq!(s.ingest(&body)["stored"], 50);
    let again = s.ingest(&body);
    assert_eq!((again["stored"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(50)));
    s.wait_caught_up();
    assert_eq!(s.lookup_all(&[("EventName", "A")]).len(), 50);
}

#[test]
fn every_authentication_failure_gets_its_aws_error_and_stores_nothing() {
    let s = Server::start();
    let body = api_call("auth-1", "2021-01-01T00:00:00Z", "A", "u");
    let before = durable(&s);
    let h = |k: &str, v: &str| (k.to_string(), v.to_string());

    let r = s.raw("POST", "/v1/events", &[], body.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (403, "MissingAuthenticationTokenException"), "{}", r.text());

    let r = s.raw(
        "POST",
        "/v1/events",
        &[h(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEJOHN00001/20200101/us-east-1/cloudtrail/aws4_request",
        )],
        body.as_bytes(),
    );
    assert_eq!((r.status, r.code().as_str()), (403, "IncompleteSignatureException"), "{}", r.text());

    let r = s.signed(ADMIN_KEY, "not-the-right-secret-at-all-0000000000", "POST", "/v1/events", &[], body.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidSignatureException"), "{}", r.text());

    let r = s.signed("AKIANOBODYKNOWSTHIS1", ADMIN_SECRET, "POST", "/v1/events", &[], body.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (403, "UnrecognizedClientException"), "{}", r.text());

    let r = s.signed_at(ADMIN_KEY, ADMIN_SECRET, "POST", "/v1/events", &[], body.as_bytes(), now_secs() - 20 * 60);
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidSignatureException"), "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("Signature expired"), "{}", r.text());

    let r = s.signed_at(ADMIN_KEY, ADMIN_SECRET, "POST", "/v1/events", &[], body.as_bytes(), now_secs() + 20 * 60);
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidSignatureException"), "{}", r.text());

    assert_eq!(durable(&s), before, "no failed request stored anything");
}

#[test]
fn a_writer_cannot_read_and_an_auditor_cannot_write() {
    let s = Server::start();
    let body = api_call("role-1", "2021-01-01T00:00:00Z", "A", "u");
    let r = s.signed(WRITER_KEY, WRITER_SECRET, "POST", "/v1/events", &[], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.cloudtrail(WRITER_KEY, WRITER_SECRET, "LookupEvents", &json!({}));
    assert_eq!((r.status, r.code().as_str()), (400, "AccessDeniedException"), "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("arn:aws:iam::123456789012:user/ingester"));
    let before = durable(&s);
    let body2 = api_call("role-2", "2021-01-01T00:00:00Z", "A", "u");
    let r = s.signed(AUDITOR_KEY, AUDITOR_SECRET, "POST", "/v1/events", &[], body2.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (400, "AccessDeniedException"), "{}", r.text());
    let r = s.cloudtrail(
        AUDITOR_KEY,
        AUDITOR_SECRET,
        "LookupEvents",
        &json!({"LookupAttributes":[{"AttributeKey":"EventId","AttributeValue":"role-1"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The writer's denied lookup was itself recorded (self-audit), nothing of role-2 was stored.
    let stored_role2 = s.cloudtrail(
        ADMIN_KEY,
        ADMIN_SECRET,
        "LookupEvents",
        &json!({"LookupAttributes":[{"AttributeKey":"EventId","AttributeValue":"role-2"}]}),
    );
    assert_eq!(stored_role2.json()["Events"].as_array().unwrap().len(), 0);
    assert!(durable(&s).as_u64() >= before.as_u64());
}

#[test]
fn paging_while_ingest_continues_has_no_gaps_and_no_repeats() {
    let s = Server::start();
    let initial: String = (0..230)
        .map(|i| {
            api_call(&format!("p-{i:04}"), &format!("2022-01-01T{:02}:{:02}:00Z", i / 60, i % 60), "Page", "pager")
                + "\n"
        })
        .collect();
    s.ingest(&initial);
    s.wait_caught_up();

    let endpoint_server = &s;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let got = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Newer events and events in the middle of the range keep arriving.
                let line = api_call(
                    &format!("late-{i}"),
                    &format!("2022-01-01T{:02}:{:02}:30Z", (i * 7) % 4, i % 60),
                    "Page",
                    "pager",
                );
                endpoint_server.ingest(&line);
                i += 1;
            }
        });
        let mut params =
            json!({"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"Page"}],"MaxResults":7});
        let mut got: Vec<(f64, String)> = Vec::new();
        loop {
            let r = endpoint_server.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "LookupEvents", &params);
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            for e in v["Events"].as_array().unwrap() {
                got.push((e["EventTime"].as_f64().unwrap(), e["EventId"].as_str().unwrap().to_string()));
            }
            match v["NextToken"].as_str() {
                Some(t) => params["NextToken"] = t.into(),
                None => break,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        got
    });
    let mut ids: Vec<&str> = got.iter().map(|(_, id)| id.as_str()).collect();
    assert!(got.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "no repeats");
    for i in 0..230 {
        let id = format!("p-{i:04}");
        assert!(ids.binary_search(&id.as_str()).is_ok(), "gap: {id} missing");
    }
}

#[test]
fn a_fresh_install_without_config_generates_an_admin_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::spawn(&data, None, "127.0.0.1:0");
    let creds = data.join("credentials");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&creds).unwrap();
    let key = text.lines().find_map(|l| l.strip_prefix("aws_access_key_id = ")).unwrap().to_string();
    let secret = text.lines().find_map(|l| l.strip_prefix("aws_secret_access_key = ")).unwrap().to_string();
    assert!(s.stderr().contains(&format!("access key {key}")), "{}", s.stderr());
    assert!(!s.stderr().contains(&secret), "stderr is not a terminal: the secret stays in the file");
    let r = s.signed(&key, &secret, "POST", "/v1/events", &[], SEED.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    // The profile works for the CLI too.
    let out = std::process::Command::new(bin())
        .args(["lookup", "--endpoint", &s.endpoint, "--output", "json"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
        .env("AWS_PROFILE", "opentrail")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn health_and_metrics_are_served() {
    let s = Server::start();
    s.ingest(&api_call("m1", "2021-01-01T00:00:00Z", "A", "u"));
    s.ingest(r#"{"eventName":"x"}"#);
    s.wait_caught_up();
    let h = s.raw("GET", "/healthz", &[], b"");
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    let m = s.raw("GET", "/metrics", &[], b"").text();
    for needle in [
        // The event, and the audit records of the two calls.
        "opentrail_events_ingested_total 3",
        "opentrail_audit_records_total{outcome=\"durable\"} 2",
        "opentrail_events_rejected_total{code=\"MissingField\"} 1",
        "opentrail_journal_fsync_seconds_count",
        "opentrail_index_lag_events 0",
        // Every view is measured: the index's lag and checkpoint (1 event + 2 audit records applied).
        "opentrail_view_lag_events{view=\"index\"} 0",
        "opentrail_view_applied_seq{view=\"index\"} 3",
        "opentrail_view_errors_total{view=\"index\"} 0",
    ] {
        assert!(m.contains(needle), "metrics lack {needle}:\n{m}");
    }
}

#[test]
fn a_saturated_journal_answers_503_with_retry_after_and_recovers_by_itself() {
    // A one-byte queue: any request arriving while another waits for its fsync is refused.
    let s = Server::start_with(&config_toml("journal_max_queued_bytes = 1"));
    let statuses: Vec<(u16, Option<String>, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    (0..15)
                        .map(|i| {
                            let r = s.signed(
                                ADMIN_KEY,
                                ADMIN_SECRET,
                                "POST",
                                "/v1/events",
                                &[],
                                api_call(&format!("bp-{t}-{i}"), "2021-01-01T00:00:00Z", "A", "u").as_bytes(),
                            );
                            let code = if r.status == 200 { String::new() } else { r.code() };
                            (r.status, r.header("retry-after").map(str::to_string), code)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let refused: Vec<_> = statuses.iter().filter(|(st, _, _)| *st == 503).collect();
    assert!(!refused.is_empty(), "some requests met a full queue");
    assert!(statuses.iter().all(|(st, _, _)| *st == 200 || *st == 503));
    for (_, retry, code) in &refused {
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(code, "ServiceUnavailableException");
    }
    let metrics = s.raw("GET", "/metrics", &[], b"").text();
    let line = metrics.lines().find(|l| l.starts_with("opentrail_backpressure_rejections_total ")).unwrap();
    assert_eq!(line, format!("opentrail_backpressure_rejections_total {}", refused.len()));
    // Once the burst is over (the audit records of the refused calls drain in a few group commits), ingest
    // works again without any operator action.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = api_call("after-burst", "2021-01-01T00:00:01Z", "A", "u");
    let v = loop {
        let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "POST", "/v1/events", &[], body.as_bytes());
        if r.status == 200 || std::time::Instant::now() > deadline {
            break r.json();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(v["stored"], 1, "{v}");
    // Accepted events are all there; refused ones are not.
    s.wait_caught_up();
    let stored = s.lookup_all(&[("EventName", "A")]).len();
    assert_eq!(stored, statuses.len() - refused.len() + 1);
}
