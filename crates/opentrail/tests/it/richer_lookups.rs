//! The lookup grammar end to end (README, "Query grammar"): values OR-ed, prefixes, CIDR blocks (IPv4 and
//! IPv6), exclusions and mixes, through `opentrail lookup`, the aws CLI's lookup-events (the extension forms
//! an existing client can send) and the native LookupEvents (`POST /v1/lookup`), each checked against a linear filter
//! over the same events; `opentrail lookup --count --by` and `GET /v1/event-counts` against a linear count;
//! errors naming the token on every surface; who may count.

use std::collections::{BTreeMap, BTreeSet};

use model::{AttributeKey, Condition, EventQuery, EventTime, Record};
use serde_json::{Value, json};

use crate::support::*;

/// The corpus covers this day (2020-01-01); self-audit records of the test's own calls are written "now",
/// outside it, so every query is bounded to it.
const START: &str = "2020-01-01T00:00:00Z";
const END: &str = "2020-01-01T23:59:59Z";

/// Realistic traffic from `opentrail gen`, plus records for what it lacks: IPv6 addresses, an IPv4-mapped
/// one, a user name with a comma, an event name with a `*`.
fn corpus() -> (String, Vec<Record>) {
    let out = std::process::Command::new(bin())
        .args(["gen", "--events", "1500", "--seed", "7", "--start", START, "--span", "23h"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut text = String::from_utf8(out.stdout).unwrap();
    let extra = [
        ("v6-1", "2020-01-01T23:10:00Z", "2001:db8::17", "Put*Thing", "a,b"),
        ("v6-2", "2020-01-01T23:11:00Z", "2001:db8:ffff::1", "DeleteTrail", "x"),
        ("v6-3", "2020-01-01T23:12:00Z", "2001:db9::1", "StopLogging", "a"),
        ("v4m-1", "2020-01-01T23:13:00Z", "::ffff:10.1.2.3", "DeleteTrail", "b"),
    ];
    for (id, time, ip, name, user) in extra {
        let mut r: Value = serde_json::from_str(&api_call(id, time, name, user)).unwrap();
        r["sourceIPAddress"] = json!(ip);
        text.push_str(&r.to_string());
        text.push('\n');
    }
    let records = text.lines().map(|l| Record::parse(l.as_bytes(), || unreachable!()).unwrap()).collect();
    (text, records)
}

fn query(attrs: &[&str]) -> EventQuery {
    EventQuery {
        conditions: Condition::merge(attrs.iter().map(|a| Condition::parse(a).unwrap())),
        start: Some(EventTime::parse_flexible(START).unwrap()),
        end: Some(EventTime::parse_flexible(END).unwrap()),
        ..Default::default()
    }
}

/// The linear filter: the eventIDs of the corpus records the query matches.
fn expected(records: &[Record], attrs: &[&str]) -> BTreeSet<String> {
    let q = query(attrs);
    records.iter().filter(|r| q.matches(&r.fields)).map(|r| r.fields.event_id.clone()).collect()
}

fn ids_of_records(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["eventID"].as_str().unwrap().to_string()).collect()
}

/// Results come newest first.
fn assert_newest_first(records: &[Value]) {
    let times: Vec<i64> =
        records.iter().map(|r| EventTime::parse_flexible(r["eventTime"].as_str().unwrap()).unwrap().0).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first: {times:?}");
}

fn as_set(ids: Vec<String>) -> BTreeSet<String> {
    let n = ids.len();
    let set: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(set.len(), n, "an event came twice");
    set
}

/// `opentrail lookup --attr … --output json`: the records, one per line.
fn cli_lookup(s: &Server, attrs: &[&str]) -> Vec<Value> {
    let mut c = s.cli();
    c.args(["lookup", "--start", START, "--end", END, "--max", "100000", "--output", "json"]);
    for a in attrs {
        c.arg("--attr").arg(a);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "lookup {attrs:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The native LookupEvents (`POST /v1/lookup`), the grammar's `attrs` sent as its attribute values (one value per
/// element, a key repeated for an OR), paged with its token in pages of 70 (more than LookupEvents' 50).
fn native_lookup(s: &Server, key: &str, secret: &str, attrs: &[&str]) -> Vec<Value> {
    let mut lookup_attributes = Vec::new();
    for a in attrs {
        let c = Condition::parse(a).unwrap();
        for v in c.lookup_values() {
            lookup_attributes.push(json!({"AttributeKey": c.key.as_str(), "AttributeValue": v}));
        }
    }
    let secs = |t: &str| EventTime::parse(t).unwrap().epoch_seconds_f64();
    let mut body = json!({"LookupAttributes": lookup_attributes, "StartTime": secs(START), "EndTime": secs(END),
                          "MaxResults": 70});
    let mut out = Vec::new();
    loop {
        let r = s.signed(
            key,
            secret,
            "POST",
            "/v1/lookup",
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{attrs:?}: {}", r.text());
        let v = r.json();
        let events = v["Events"].as_array().unwrap();
        assert!(events.len() <= 70);
        out.extend(
            events.iter().map(|e| serde_json::from_str::<Value>(e["CloudTrailEvent"].as_str().unwrap()).unwrap()),
        );
        match v["NextToken"].as_str() {
            Some(t) => body["NextToken"] = t.into(),
            None => return out,
        }
    }
}

/// The aws CLI's lookup-events with `LookupAttributes` as given (key, value), auto-paginated.
fn aws_lookup(s: &Server, attrs: &[(&str, &str)]) -> Vec<Value> {
    let json_attrs: Vec<Value> = attrs.iter().map(|(k, v)| json!({"AttributeKey": k, "AttributeValue": v})).collect();
    let out = s
        .aws(ADMIN_KEY, ADMIN_SECRET)
        .args(["cloudtrail", "lookup-events", "--start-time", START, "--end-time", END])
        .arg("--lookup-attributes")
        .arg(Value::Array(json_attrs).to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "aws {attrs:?}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn every_form_through_the_cli_and_the_native_api_equals_the_linear_filter() {
    let s = Server::start();
    let (text, records) = corpus();
    s.ingest(&text);
    s.wait_caught_up();
    let cases: &[&[&str]] = &[
        &["EventName=AssumeRole,Decrypt"],
        &["EventName=AssumeRole", "EventName=Decrypt,GenerateDataKey"],
        &["ErrorCode=AccessDenied*"],
        &["ErrorCode=*"],
        &["ErrorCode!=*", "EventSource=iam.amazonaws.com"],
        &["EventName=Delete*"],
        &["UserAgent=aws-cli/*"],
        &["UserAgent=aws-sdk-go*", "EventSource=ec2.amazonaws.com,kms.amazonaws.com"],
        &["SourceIPAddress=10.0.0.0/8"],
        &["SourceIPAddress=10.2.0.0/16,2001:db8::/32"],
        &["SourceIPAddress=::/0"],
        &["SourceIPAddress=::ffff:0:0/96"],
        &["EventSource!=sts.amazonaws.com"],
        &["EventSource!=sts.amazonaws.com,ec2.amazonaws.com,kms.amazonaws.com", "ReadOnly=false"],
        &["EventName=Get*,List*,Describe*", "SourceIPAddress!=10.0.0.0/8", "UserAgent!=AWS Internal"],
        &[r"Username=a\,b"],
        &[r"EventName=Put\*Thing", "SourceIPAddress=2001:db8::/32"],
        &["Username=nobody-at-all"],
    ];
    for attrs in cases {
        let want = expected(&records, attrs);
        let cli = cli_lookup(&s, attrs);
        assert_newest_first(&cli);
        assert_eq!(as_set(ids_of_records(&cli)), want, "opentrail lookup {attrs:?}");
        let native = native_lookup(&s, ADMIN_KEY, ADMIN_SECRET, attrs);
        assert_newest_first(&native);
        assert_eq!(as_set(ids_of_records(&native)), want, "GET /v1/events {attrs:?}");
    }
    // The cases are not vacuous: most find something, and not everything.
    let sizes: Vec<usize> = cases.iter().map(|a| expected(&records, a).len()).collect();
    assert!(sizes.iter().filter(|&&n| n > 0 && n < records.len()).count() >= cases.len() - 2, "{sizes:?}");
    s.assert_no_errors_logged();
}

#[test]
fn the_aws_cli_sends_the_extension_forms_as_lookup_attributes() {
    let s = Server::start();
    let (text, records) = corpus();
    s.ingest(&text);
    s.wait_caught_up();
    // (LookupAttributes the aws CLI sends, the same query in the grammar)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case<'_>] = &[
        (&[("EventName", "DeleteTrail"), ("EventName", "StopLogging")], &["EventName=DeleteTrail,StopLogging"]),
        (&[("ErrorCode", "AccessDenied*")], &["ErrorCode=AccessDenied*"]),
        (&[("SourceIPAddress", "2001:db8::/32")], &["SourceIPAddress=2001:db8::/32"]),
        (
            &[("EventSource", "!sts.amazonaws.com"), ("EventSource", "!ec2.amazonaws.com"), ("EventName", "Describe*")],
            &["EventSource!=sts.amazonaws.com,ec2.amazonaws.com", "EventName=Describe*"],
        ),
        (&[("Username", "a,b")], &[r"Username=a\,b"]),
    ];
    for (attrs, grammar) in cases {
        let want = expected(&records, grammar);
        assert!(!want.is_empty(), "{grammar:?} finds nothing");
        let got = aws_lookup(&s, attrs);
        assert_newest_first(&got);
        assert_eq!(as_set(ids_of_records(&got)), want, "aws lookup-events {attrs:?}");
    }
}

/// The linear count: total, and per value of `by` (each value once per event).
fn linear_count(records: &[Record], attrs: &[&str], by: AttributeKey) -> (u64, BTreeMap<String, u64>) {
    let q = query(attrs);
    let mut per = BTreeMap::new();
    let mut total = 0;
    for r in records.iter().filter(|r| q.matches(&r.fields)) {
        total += 1;
        let mut values = by.values(&r.fields);
        values.sort_unstable();
        values.dedup();
        for v in values {
            *per.entry(v.to_string()).or_insert(0) += 1;
        }
    }
    (total, per)
}

#[test]
fn count_by_is_exact_against_a_linear_count_and_an_auditor_may_count_but_a_writer_may_not() {
    let s = Server::start();
    let (text, records) = corpus();
    s.ingest(&text);
    s.wait_caught_up();
    let cases: &[(&[&str], &str)] = &[
        (&["ErrorCode=AccessDenied*"], "AccessKeyId"),
        (&["EventName=Delete*,Put*"], "SourceIPAddress"),
        (&["SourceIPAddress=10.0.0.0/8"], "EventName"),
        (&["EventSource!=sts.amazonaws.com"], "UserAgent"),
        (&[], "EventSource"),
        (&["Username=nobody-at-all"], "EventName"),
    ];
    for (attrs, by) in cases {
        let (total, per) = linear_count(&records, attrs, AttributeKey::parse(by).unwrap());
        let mut c = s.cli();
        c.args(["lookup", "--start", START, "--end", END, "--count", "--by", by, "--top", "10000", "--output", "json"]);
        for a in *attrs {
            c.arg("--attr").arg(a);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{attrs:?}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Total"], json!(total), "{attrs:?}");
        let got: BTreeMap<String, u64> = v["Values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["Value"].as_str().unwrap().to_string(), e["Count"].as_u64().unwrap()))
            .collect();
        assert_eq!(got, per, "{attrs:?} by {by}");
        let counts: Vec<u64> = v["Values"].as_array().unwrap().iter().map(|e| e["Count"].as_u64().unwrap()).collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "most frequent first: {counts:?}");
        let with: u64 = per.values().sum();
        assert_eq!(v["Without"], json!(total - with.min(total)), "{attrs:?} by {by}");
    }
    // The table: the total, then the top N with counts.
    let out = s
        .cli()
        .args(["lookup", "--start", START, "--end", END, "--count", "--by", "EventName", "--top", "3"])
        .args(["--attr", "EventSource=sts.amazonaws.com,kms.amazonaws.com"])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let (total, per) =
        linear_count(&records, &["EventSource=sts.amazonaws.com,kms.amazonaws.com"], AttributeKey::EventName);
    assert!(table.starts_with(&format!("{total} events match\n")), "{table}");
    let mut ranked: Vec<(&String, &u64)> = per.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + 3, "{table}");
    assert!(lines[1].starts_with(&format!("EventName (top 3 of {})", per.len())), "{table}");
    for (line, (name, n)) in lines[2..].iter().zip(ranked) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols, [name.as_str(), &n.to_string()], "{table}");
    }
    // Who may count: an auditor reads, a writer does not; both calls are audited.
    let path = format!("/v1/event-counts?{}", client::query_string(&[("by", "EventSource"), ("start", START)]));
    let r = s.signed(AUDITOR_KEY, AUDITOR_SECRET, "GET", &path, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.signed(WRITER_KEY, WRITER_SECRET, "GET", &path, &[], b"");
    assert_eq!(r.code(), "AccessDeniedException", "{}", r.text());
    let body = br#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"AssumeRole"}]}"#;
    let r = s.signed(WRITER_KEY, WRITER_SECRET, "POST", "/v1/lookup", &[("content-type", "application/json")], body);
    assert_eq!(r.code(), "AccessDeniedException", "{}", r.text());
    // Audit records are queued with the answer and indexed shortly after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let audited = s.lookup_all(&[("EventName", "GetEventCounts"), ("EventSource", "opentrail")]);
        let codes: BTreeSet<Option<String>> = audited
            .iter()
            .map(|e| serde_json::from_str::<Value>(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
            .map(|r| r["errorCode"].as_str().map(String::from))
            .collect();
        if codes.contains(&None) && codes.iter().flatten().any(|c| c.starts_with("AccessDenied")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "counts not audited: {codes:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    s.assert_no_errors_logged();
}

#[test]
fn what_the_grammar_does_not_cover_is_refused_naming_the_token_on_every_surface() {
    let s = Server::start();
    for (attr, token) in [
        ("EventName", "EventName"),
        ("Colour=red", "Colour"),
        ("SourceIPAddress=10.0.0.0/33", "10.0.0.0/33"),
        ("EventName=Del*ete", "Del*ete"),
        ("SourceIPAddress=10.0.0.0/8*", "10.0.0.0/8*"),
        ("EventId=abc*", "abc*"),
        ("EventName=A,,B", "EventName=A,,B"),
    ] {
        let out = s.cli().args(["lookup", "--attr", attr]).output().unwrap();
        assert!(!out.status.success(), "{attr} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("`{token}`")), "{attr}: {err}");
        let out = s.cli().args(["lookup", "--count", "--attr", attr]).output().unwrap();
        assert!(!out.status.success(), "--count {attr} was accepted");
        let path = format!("/v1/event-counts?{}", client::query_string(&[("attr", attr)]));
        let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "GET", &path, &[], b"");
        assert_eq!((r.status, r.code()), (400, "ValidationException".to_string()), "{attr}: {}", r.text());
        assert!(r.text().contains(&format!("`{token}`")), "{attr}: {}", r.text());
    }
    let out = s.cli().args(["lookup", "--count", "--by", "Colour"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Colour"));
    let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "GET", "/v1/event-counts?by=EventId", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "GET", "/v1/event-counts?colour=red", &[], b"");
    assert!(r.status == 400 && r.text().contains("colour"), "{}", r.text());
    // LookupEvents through the aws CLI: CloudTrail's error name, the token in the message.
    for value in ["10.0.0.0/33", "10.1.0.0/8"] {
        let out = s
            .aws(ADMIN_KEY, ADMIN_SECRET)
            .args(["cloudtrail", "lookup-events", "--lookup-attributes"])
            .arg(format!("AttributeKey=SourceIPAddress,AttributeValue={value}"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("InvalidLookupAttributesException") && err.contains(value), "{value}: {err}");
    }
    s.assert_no_errors_logged();
}
