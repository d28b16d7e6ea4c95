//! LookupEvents through the real clients: the aws CLI v1 and boto3 against the real binary on port 0 —
//! the seed case, auto-pagination, time ranges, Insights, every error path, and the self-audit record.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// Runs the aws CLI and returns its parsed JSON output; fails the test on a non-zero exit.
fn aws_json(s: &Server, key: &str, secret: &str, args: &[&str]) -> Value {
    let out = s.aws(key, secret).args(["cloudtrail", "lookup-events"]).args(args).output().unwrap();
    assert!(out.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("aws output is not JSON ({e})"))
}

/// Runs the aws CLI expecting a service error; returns the error code it printed.
fn aws_error(s: &Server, args: &[&str]) -> String {
    let out = s.aws(ADMIN_KEY, ADMIN_SECRET).args(["cloudtrail", "lookup-events"]).args(args).output().unwrap();
    let code = out.status.code();
    assert!(matches!(code, Some(254) | Some(255)), "aws {args:?}: exit {code:?}, want 254/255");
    error_code_in(&out)
}

/// The code in `An error occurred (Code) when calling …` on stderr.
fn error_code_in(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let start = err.find("An error occurred (").unwrap_or_else(|| panic!("no AWS error on stderr: {err}"));
    let rest = &err[start + "An error occurred (".len()..];
    rest[..rest.find(')').unwrap()].to_string()
}

fn python_ok(s: &Server, code: &str) -> String {
    let out = s.python(ADMIN_KEY, ADMIN_SECRET, code);
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn events(v: &Value) -> &Vec<Value> {
    v["Events"].as_array().unwrap_or_else(|| panic!("no Events in {v}"))
}

fn cloudtrail_event(e: &Value) -> Value {
    serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap()
}

/// Polls LookupEvents (as `key`) for the newest audit record satisfying `pred`; audit writes are queued,
/// so they show up shortly after the answer.
fn find_audit(s: &Server, key: &str, secret: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let params = json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}]});
        let r = s.cloudtrail(key, secret, "LookupEvents", &params);
        if r.status == 200 {
            let found = r.json()["Events"].as_array().unwrap().iter().map(cloudtrail_event).find(|e| pred(e));
            if let Some(e) = found {
                return e;
            }
        }
        assert!(Instant::now() < deadline, "no matching audit record: last answer {}", r.text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn seed_case_through_the_aws_cli_tells_what_who_when_how_and_from_where() {
    let s = Server::start();
    let other = api_call("e-mary-creates", "2020-01-02T10:00:00Z", "CreateUser", "Mary");
    let johns_read = api_call("e-john-reads", "2020-01-01T09:05:00Z", "GetUser", "John");
    s.ingest(&format!("{SEED}\n{other}\n{johns_read}\n"));
    s.wait_caught_up();

    let v = aws_json(
        &s,
        ADMIN_KEY,
        ADMIN_SECRET,
        &["--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateUser"],
    );
    let found = events(&v);
    assert_eq!(found.len(), 2, "{v}");
    let e = found.iter().find(|e| e["EventId"] == "3b5f2f5e-8c1d-4f7e-9a2b-1c2d3e4f5a6b").unwrap();
    // What, who, when.
    assert_eq!(e["EventName"], "CreateUser");
    assert_eq!(e["EventSource"], "iam.amazonaws.com");
    assert_eq!(e["Username"], "John");
    assert_eq!(e["AccessKeyId"], "ASIAJOHNCONSOLE00001");
    assert_eq!(e["ReadOnly"], "false");
    assert!(e["EventTime"].is_number(), "EventTime travels as epoch seconds: {}", e["EventTime"]);
    assert_eq!(e["EventTime"].as_f64(), Some(1_577_869_200.0));
    assert_eq!(
        e["Resources"],
        json!([{"ResourceType": "AWS::IAM::User", "ResourceName": "arn:aws:iam::123456789012:user/Mary"}])
    );
    // How and from where, from the full record.
    let ct = cloudtrail_event(e);
    assert_eq!(ct["userIdentity"]["arn"], "arn:aws:iam::123456789012:user/John");
    assert_eq!(ct["sourceIPAddress"], "198.51.100.23");
    assert_eq!(ct["userAgent"], "AWS Internal");
    assert_eq!(ct["sessionCredentialFromConsole"], "true");
    assert_eq!(ct["requestParameters"], json!({"userName": "Mary"}));
    assert_eq!(ct, serde_json::from_str::<Value>(SEED).unwrap(), "CloudTrailEvent is the stored record");

    // An AND of two attributes: the CLI sends both items.
    let v = aws_json(
        &s,
        ADMIN_KEY,
        ADMIN_SECRET,
        &[
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=CreateUser",
            "AttributeKey=Username,AttributeValue=John",
        ],
    );
    let ids: Vec<&Value> = events(&v).iter().map(|e| &e["EventId"]).collect();
    assert_eq!(ids, [&json!("3b5f2f5e-8c1d-4f7e-9a2b-1c2d3e4f5a6b")]);

    // StartTime/EndTime as the CLI sends them (integer epochs), both inclusive.
    let window = |start: &str, end: &str| {
        let v = aws_json(
            &s,
            ADMIN_KEY,
            ADMIN_SECRET,
            &[
                "--lookup-attributes",
                "AttributeKey=Username,AttributeValue=John",
                "--start-time",
                start,
                "--end-time",
                end,
            ],
        );
        events(&v).iter().map(|e| e["EventId"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(window("2020-01-01T09:00:00Z", "2020-01-01T09:00:00Z"), ["3b5f2f5e-8c1d-4f7e-9a2b-1c2d3e4f5a6b"]);
    assert_eq!(window("2020-01-01T09:00:01Z", "2020-01-01T10:00:00Z"), ["e-john-reads"]);
    assert_eq!(
        window("2020-01-01T08:00:00Z", "2020-01-01T10:00:00Z"),
        ["e-john-reads", "3b5f2f5e-8c1d-4f7e-9a2b-1c2d3e4f5a6b"]
    );

    // boto3 sends datetimes and gets EventTime back as an aware datetime.
    let out = python_ok(
        &s,
        r#"
import boto3, datetime, json, os
c = boto3.client('cloudtrail', endpoint_url=os.environ['ENDPOINT'], aws_access_key_id=os.environ['KEY'],
                 aws_secret_access_key=os.environ['SECRET'], region_name='us-east-1')
utc = datetime.timezone.utc
r = c.lookup_events(LookupAttributes=[{'AttributeKey': 'EventName', 'AttributeValue': 'CreateUser'}],
                    StartTime=datetime.datetime(2020, 1, 1, 8, 59, tzinfo=utc),
                    EndTime=datetime.datetime(2020, 1, 1, 9, 1, tzinfo=utc))
e = r['Events'][0]
print(json.dumps({'n': len(r['Events']), 'time': e['EventTime'].isoformat(), 'user': e['Username'],
                  'ip': json.loads(e['CloudTrailEvent'])['sourceIPAddress']}))
"#,
    );
    let got: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(got, json!({"n": 1, "time": "2020-01-01T09:00:00+00:00", "user": "John", "ip": "198.51.100.23"}));
    s.assert_no_errors_logged();
}

#[test]
fn the_cli_pages_through_more_than_150_events_newest_first_without_duplicates() {
    let s = Server::start();
    // 160 events, two per second, so pages also break between events of the same second.
    let base = chrono::DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z").unwrap();
    let ndjson: String = (0..160)
        .map(|i| {
            let t = (base + chrono::Duration::seconds(i / 2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            api_call(&format!("page-{i:03}"), &t, "GetGroup", "Paula") + "\n"
        })
        .collect();
    s.ingest(&ndjson);
    s.wait_caught_up();

    let attr = ["--lookup-attributes", "AttributeKey=EventName,AttributeValue=GetGroup"];
    let v = aws_json(&s, ADMIN_KEY, ADMIN_SECRET, &[&attr[..], &["--page-size", "7"]].concat());
    let all = events(&v);
    assert_eq!(all.len(), 160, "the CLI followed NextToken to the end");
    assert!(v.get("NextToken").is_none(), "no token after the last page");
    let ids: std::collections::HashSet<&str> = all.iter().map(|e| e["EventId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 160, "no duplicates");
    let times: Vec<f64> = all.iter().map(|e| e["EventTime"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    assert_eq!(times[0], base.timestamp() as f64 + 79.0);

    // --max-items stops early and hands out a resume token.
    let v = aws_json(&s, ADMIN_KEY, ADMIN_SECRET, &[&attr[..], &["--page-size", "7", "--max-items", "10"]].concat());
    let first10: Vec<&Value> = events(&v).iter().map(|e| &e["EventId"]).collect();
    let want: Vec<&Value> = all[..10].iter().map(|e| &e["EventId"]).collect();
    assert_eq!(first10, want);
    let resume = v["NextToken"].as_str().expect("--max-items gives a NextToken to resume with");
    let v =
        aws_json(&s, ADMIN_KEY, ADMIN_SECRET, &[&attr[..], &["--page-size", "7", "--starting-token", resume]].concat());
    assert_eq!(events(&v).len(), 150, "resuming yields the rest");
    assert_eq!(events(&v)[0]["EventId"], all[10]["EventId"]);

    // boto3's paginator agrees.
    let out = python_ok(
        &s,
        r#"
import boto3, os
c = boto3.client('cloudtrail', endpoint_url=os.environ['ENDPOINT'], aws_access_key_id=os.environ['KEY'],
                 aws_secret_access_key=os.environ['SECRET'], region_name='us-east-1')
p = c.get_paginator('lookup_events').paginate(
    LookupAttributes=[{'AttributeKey': 'EventName', 'AttributeValue': 'GetGroup'}], PaginationConfig={'PageSize': 50})
print(' '.join(e['EventId'] for page in p for e in page['Events']))
"#,
    );
    let boto_ids: Vec<&str> = out.split_whitespace().collect();
    let cli_ids: Vec<&str> = all.iter().map(|e| e["EventId"].as_str().unwrap()).collect();
    assert_eq!(boto_ids, cli_ids);
}

#[test]
fn insights_events_are_returned_only_with_the_insight_category() {
    let s = Server::start();
    let insight = json!({
        "eventVersion": "1.08",
        "eventTime": "2024-05-01T10:00:00Z",
        "awsRegion": "us-east-1",
        "eventID": "insight-start-1",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "123456789012",
        "sharedEventID": "shared-1",
        "insightDetails": {
            "state": "Start",
            "eventSource": "ssm.amazonaws.com",
            "eventName": "UpdateInstanceInformation",
            "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": 85.42}, "insight": {"average": 664}}}
        },
        "eventCategory": "Insight"
    });
    let call = api_call("plain-call-1", "2024-05-01T10:00:00Z", "UpdateInstanceInformation", "Ssm");
    s.ingest(&format!("{insight}\n{call}\n"));
    s.wait_caught_up();

    let v = aws_json(&s, ADMIN_KEY, ADMIN_SECRET, &["--event-category", "insight"]);
    let found = events(&v);
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["EventId"], "insight-start-1");
    assert_eq!(found[0]["EventName"], "UpdateInstanceInformation");
    let ct = cloudtrail_event(&found[0]);
    assert_eq!(ct["insightDetails"]["state"], "Start");
    assert_eq!(ct["eventType"], "AwsCloudTrailInsight");

    // Without the category the Insights event is invisible, even asked for by name or id.
    let v = aws_json(
        &s,
        ADMIN_KEY,
        ADMIN_SECRET,
        &["--lookup-attributes", "AttributeKey=EventName,AttributeValue=UpdateInstanceInformation"],
    );
    let ids: Vec<&Value> = events(&v).iter().map(|e| &e["EventId"]).collect();
    assert_eq!(ids, [&json!("plain-call-1")]);
    let v = aws_json(
        &s,
        ADMIN_KEY,
        ADMIN_SECRET,
        &["--lookup-attributes", "AttributeKey=EventId,AttributeValue=insight-start-1"],
    );
    assert!(events(&v).is_empty(), "{v}");
}

#[test]
fn every_bad_request_gets_its_cloudtrail_error_and_changes_nothing() {
    let s = Server::start();
    s.ingest(&format!("{SEED}\n"));
    s.wait_caught_up();
    let before = s.lookup_all(&[("EventSource", "iam.amazonaws.com")]);

    assert_eq!(aws_error(&s, &["--max-results", "51"]), "InvalidMaxResultsException");
    assert_eq!(
        aws_error(&s, &["--start-time", "2030-01-02T00:00:00Z", "--end-time", "2030-01-01T00:00:00Z"]),
        "InvalidTimeRangeException"
    );
    assert_eq!(
        aws_error(&s, &["--lookup-attributes", "AttributeKey=Colour,AttributeValue=red"]),
        "InvalidLookupAttributesException"
    );
    assert_eq!(aws_error(&s, &["--event-category", "data"]), "InvalidEventCategoryException");
    assert_eq!(aws_error(&s, &["--next-token", "not-a-token"]), "InvalidNextTokenException");
    // A genuine token, reused with other parameters.
    let first = s.cloudtrail(
        ADMIN_KEY,
        ADMIN_SECRET,
        "LookupEvents",
        &json!({"MaxResults": 1, "LookupAttributes": [{"AttributeKey": "EventSource", "AttributeValue": "cloudtrail.amazonaws.com"}]}),
    );
    assert_eq!(first.status, 200, "{}", first.text());
    let token = first.json()["NextToken"].as_str().expect("more than one audit record, so a token").to_string();
    assert_eq!(
        aws_error(
            &s,
            &["--next-token", &token, "--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateUser"]
        ),
        "InvalidNextTokenException"
    );

    // botocore refuses an empty AttributeValue itself (min length 1), so this one goes raw.
    let raw = |target: &str, body: &[u8]| {
        s.signed(
            ADMIN_KEY,
            ADMIN_SECRET,
            "POST",
            "/",
            &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)],
            body,
        )
    };
    let lookup = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
    let r = raw(lookup, br#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":""}]}"#);
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidLookupAttributesException"));
    assert_eq!(r.header("x-amzn-errortype"), Some("InvalidLookupAttributesException"));
    let r = raw(lookup, br#"{"LookupAttributes": [{"#);
    assert_eq!((r.status, r.code().as_str()), (400, "SerializationException"));
    let r = raw("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.Frobnicate", b"{}");
    assert_eq!((r.status, r.code().as_str()), (400, "UnknownOperationException"));
    assert!(r.json()["message"].as_str().unwrap().contains("Frobnicate"));

    // Nothing changed but the audit trail of the failed calls themselves.
    s.wait_caught_up();
    assert_eq!(s.lookup_all(&[("EventSource", "iam.amazonaws.com")]), before);
    let audited = s.lookup_all(&[("EventSource", "cloudtrail.amazonaws.com")]);
    assert!(
        audited.iter().all(|e| e["EventName"] == "LookupEvents" || e["EventName"] == "Frobnicate"),
        "only the calls made were recorded"
    );
    let codes: Vec<String> =
        audited.iter().filter_map(|e| cloudtrail_event(e)["errorCode"].as_str().map(str::to_string)).collect();
    for code in [
        "InvalidMaxResultsException",
        "InvalidTimeRangeException",
        "InvalidLookupAttributesException",
        "InvalidEventCategoryException",
        "InvalidNextTokenException",
        "UnknownOperationException",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} not audited: {codes:?}");
    }
    s.assert_no_errors_logged();
}

#[test]
fn every_lookup_is_self_audited_with_the_callers_identity_and_request_id() {
    let s = Server::start();
    s.ingest(&format!("{SEED}\n"));
    s.wait_caught_up();

    // Through the aws CLI…
    aws_json(&s, ADMIN_KEY, ADMIN_SECRET, &["--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateUser"]);
    let cli = find_audit(&s, ADMIN_KEY, ADMIN_SECRET, |e| {
        e["userAgent"].as_str().is_some_and(|ua| ua.starts_with("aws-cli/1."))
    });
    assert_eq!(cli["eventSource"], "cloudtrail.amazonaws.com");
    assert_eq!(cli["eventName"], "LookupEvents");
    let id = &cli["userIdentity"];
    assert_eq!(id["type"], "IAMUser");
    assert!(id["principalId"].as_str().is_some_and(|p| p.starts_with("AIDA")), "{id}");
    assert_eq!(id["arn"], "arn:aws:iam::123456789012:user/John");
    assert_eq!(id["accountId"], ACCOUNT);
    assert_eq!(id["accessKeyId"], ADMIN_KEY);
    assert_eq!(id["userName"], "John");
    assert_eq!(cli["sourceIPAddress"], "127.0.0.1");
    assert_eq!(
        cli["requestParameters"]["lookupAttributes"],
        json!([{"attributeKey": "EventName", "attributeValue": "CreateUser"}])
    );
    assert_eq!(cli["readOnly"], true);
    assert_eq!(cli["managementEvent"], true);
    assert_eq!(cli["eventCategory"], "Management");
    assert_eq!(cli["eventType"], "AwsApiCall");
    assert_eq!(cli["recipientAccountId"], ACCOUNT);
    assert!(cli.get("errorCode").is_none());
    assert!(cli.get("tlsDetails").is_none(), "plain HTTP has no tlsDetails");

    // …and a raw call, whose x-amzn-RequestId header is the record's requestID.
    let r = s.cloudtrail(
        ADMIN_KEY,
        ADMIN_SECRET,
        "LookupEvents",
        &json!({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "John"}], "MaxResults": 3}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let request_id = r.header("x-amzn-requestid").expect("x-amzn-RequestId header").to_string();
    let raw = find_audit(&s, ADMIN_KEY, ADMIN_SECRET, |e| e["requestID"] == request_id.as_str());
    assert_eq!(raw["requestParameters"]["maxResults"], 3);
    assert_eq!(raw["userIdentity"]["userName"], "John");
    assert_eq!(raw["sourceIPAddress"], "127.0.0.1");
    s.assert_no_errors_logged();
}
