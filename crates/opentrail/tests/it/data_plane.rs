//! Black-box tests of the data-plane surfaces: ListPublicKeys, channels and cloudtrail-data
//! PutAuditEvents, driven with the real aws CLI and boto3 against the real binary.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::support::*;

fn run_ok(out: Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "command failed ({:?}): {stderr}", out.status.code());
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn aws_ok(s: &Server, key: &str, secret: &str, args: &[&str]) -> Value {
    run_ok(s.aws(key, secret).args(args).output().unwrap())
}

/// Runs an aws CLI command that must fail; returns its stderr.
fn aws_err(s: &Server, key: &str, secret: &str, args: &[&str]) -> String {
    let out = s.aws(key, secret).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(matches!(out.status.code(), Some(254 | 255)), "expected a service error, got {:?}: {stderr}", out.status);
    stderr
}

fn admin(s: &Server, args: &[&str]) -> Value {
    aws_ok(s, ADMIN_KEY, ADMIN_SECRET, args)
}

/// A server whose data dir and config outlive it, so it can be restarted.
fn restartable(tmp: &Path) -> Server {
    let cfg = tmp.join("opentrail.toml");
    if !cfg.exists() {
        std::fs::write(&cfg, config_toml("")).unwrap();
    }
    Server::spawn(&tmp.join("data"), Some(&cfg), "127.0.0.1:0")
}

fn create_channel(s: &Server, name: &str) -> String {
    let v = admin(
        s,
        &[
            "cloudtrail",
            "create-channel",
            "--name",
            name,
            "--source",
            "Custom",
            "--destinations",
            "Type=EVENT_DATA_STORE,Location=arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/eds1",
        ],
    );
    v["ChannelArn"].as_str().unwrap().to_string()
}

fn event_data(uid: &str, name: &str, user: &str) -> String {
    json!({
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": user, "details": {"team": "payments"}},
        "userAgent": "shop/2.1",
        "eventSource": "shop.example.com",
        "eventName": name,
        "eventTime": "2024-05-01T10:00:00Z",
        "UID": uid,
        "requestParameters": {"orderId": uid},
        "sourceIPAddress": "198.51.100.7",
        "recipientAccountId": ACCOUNT,
    })
    .to_string()
}

fn checksum(data: &str) -> String {
    service::audit_events::checksum_of(data)
}

fn put_audit_events(s: &Server, key: &str, secret: &str, channel: &str, events: &Value) -> Output {
    s.aws(key, secret)
        .args(["cloudtrail-data", "put-audit-events", "--channel-arn", channel, "--audit-events", &events.to_string()])
        .output()
        .unwrap()
}

#[test]
fn list_public_keys_publishes_one_pkcs1_rsa_key_that_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = restartable(tmp.path());
    let v = admin(&s, &["cloudtrail", "list-public-keys"]);
    let keys = v["PublicKeyList"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{v}");
    let key = &keys[0];
    assert!(key["Value"].as_str().unwrap().starts_with("MIIBCgKCAQEA"), "{key}");
    let fp = key["Fingerprint"].as_str().unwrap().to_string();
    assert!(fp.len() == 32 && fp.bytes().all(|b| b.is_ascii_hexdigit()), "{fp}");
    let start = key["ValidityStartTime"].as_f64().unwrap();
    assert!(key["ValidityEndTime"].as_f64().unwrap() > start + 9.0 * 365.0 * 86400.0);
    assert!((start - now_secs() as f64).abs() < 300.0, "validity starts at creation: {start}");

    // Before the key existed there is no key; a reversed range is an error.
    let none = admin(&s, &["cloudtrail", "list-public-keys", "--start-time", "2001-01-01", "--end-time", "2001-01-02"]);
    assert_eq!(none["PublicKeyList"], json!([]));
    let stderr = aws_err(
        &s,
        ADMIN_KEY,
        ADMIN_SECRET,
        &["cloudtrail", "list-public-keys", "--start-time", "2030-01-02", "--end-time", "2030-01-01"],
    );
    assert!(stderr.contains("InvalidTimeRangeException"), "{stderr}");

    // boto3 decodes the blob; python-rsa (what `aws cloudtrail validate-logs` uses, a dependency of the aws
    // CLI v1 that scripts/test.sh installs) must load it.
    let code = r#"
import boto3, hashlib, os, sys
c = boto3.client("cloudtrail", endpoint_url=os.environ["ENDPOINT"], aws_access_key_id=os.environ["KEY"],
                 aws_secret_access_key=os.environ["SECRET"], region_name="us-east-1")
k = c.list_public_keys()["PublicKeyList"][0]
der = k["Value"]
assert der[:2] == b"0\x82", der[:4]
assert k["Fingerprint"] == hashlib.md5(der).hexdigest(), k["Fingerprint"]
import rsa
pub = rsa.PublicKey.load_pkcs1(der, "DER")
assert pub.n.bit_length() == 2048, pub.n.bit_length()
print(k["Fingerprint"])
"#;
    let out = s.python(AUDITOR_KEY, AUDITOR_SECRET, code);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), fp);

    s.stop();
    drop(s);
    let s = restartable(tmp.path());
    let again = admin(&s, &["cloudtrail", "list-public-keys"]);
    assert_eq!(again["PublicKeyList"][0]["Fingerprint"], json!(fp));
    assert_eq!(again["PublicKeyList"][0]["ValidityStartTime"].as_f64(), Some(start));
    s.assert_no_errors_logged();
}

#[test]
fn channels_round_trip_through_the_aws_cli_and_survive_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = restartable(tmp.path());
    let arn = create_channel(&s, "orders-app");
    let id = arn.rsplit('/').next().unwrap().to_string();
    assert!(arn.starts_with(&format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:channel/")), "{arn}");
    assert!(uuid_like(&id), "{id}");

    let got = admin(&s, &["cloudtrail", "get-channel", "--channel", &id]);
    assert_eq!(got["ChannelArn"], json!(arn));
    assert_eq!(got["Name"], "orders-app");
    assert_eq!(got["Source"], "Custom");
    assert_eq!(got["Destinations"][0]["Type"], "EVENT_DATA_STORE");

    let stderr = aws_err(
        &s,
        ADMIN_KEY,
        ADMIN_SECRET,
        &[
            "cloudtrail",
            "create-channel",
            "--name",
            "orders-app",
            "--source",
            "Custom",
            "--destinations",
            "Type=EVENT_DATA_STORE,Location=arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/eds1",
        ],
    );
    assert!(stderr.contains("An error occurred (ChannelAlreadyExistsException)"), "{stderr}");
    let stderr = aws_err(
        &s,
        ADMIN_KEY,
        ADMIN_SECRET,
        &[
            "cloudtrail",
            "create-channel",
            "--name",
            "bad name",
            "--source",
            "Custom",
            "--destinations",
            "Type=EVENT_DATA_STORE,Location=eds1",
        ],
    );
    assert!(stderr.contains("(InvalidParameterException)") && stderr.contains("Name"), "{stderr}");
    let stderr = aws_err(&s, ADMIN_KEY, ADMIN_SECRET, &["cloudtrail", "get-channel", "--channel", "not-a-channel"]);
    assert!(stderr.contains("(ChannelARNInvalidException)"), "{stderr}");

    let second = create_channel(&s, "billing-app");
    let listed = admin(&s, &["cloudtrail", "list-channels"]);
    let names: Vec<&str> = listed["Channels"].as_array().unwrap().iter().map(|c| c["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["orders-app", "billing-app"]);
    let page = admin(&s, &["cloudtrail", "list-channels", "--max-results", "1"]);
    assert_eq!(page["Channels"].as_array().unwrap().len(), 1);
    assert!(page["NextToken"].is_string(), "{page}");

    let updated = admin(&s, &["cloudtrail", "update-channel", "--channel", &arn, "--name", "orders-app-v2"]);
    assert_eq!(updated["Name"], "orders-app-v2");

    s.stop();
    drop(s);
    let s = restartable(tmp.path());
    let got = admin(&s, &["cloudtrail", "get-channel", "--channel", &arn]);
    assert_eq!(got["Name"], "orders-app-v2");

    // The CLI prints nothing for the empty answer.
    let out =
        s.aws(ADMIN_KEY, ADMIN_SECRET).args(["cloudtrail", "delete-channel", "--channel", &second]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = aws_err(&s, ADMIN_KEY, ADMIN_SECRET, &["cloudtrail", "get-channel", "--channel", &second]);
    assert!(stderr.contains("An error occurred (ChannelNotFoundException)"), "{stderr}");
    // An auditor may read channels but not change them.
    aws_ok(&s, AUDITOR_KEY, AUDITOR_SECRET, &["cloudtrail", "get-channel", "--channel", &arn]);
    let stderr = aws_err(&s, AUDITOR_KEY, AUDITOR_SECRET, &["cloudtrail", "delete-channel", "--channel", &arn]);
    assert!(stderr.contains("(AccessDeniedException)"), "{stderr}");
    s.assert_no_errors_logged();
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[test]
fn put_audit_events_stores_good_events_for_lookup_and_fails_bad_checksums_alone() {
    let s = Server::start();
    let channel = create_channel(&s, "shop");
    let good = event_data("u-1", "PlaceOrder", "alice");
    let bad = event_data("u-2", "CancelOrder", "bob");
    let events = json!([
        {"id": "a1", "eventData": good, "eventDataChecksum": checksum(&good)},
        {"id": "a2", "eventData": bad, "eventDataChecksum": checksum("something else")},
    ]);
    let v = run_ok(put_audit_events(&s, WRITER_KEY, WRITER_SECRET, &channel, &events));
    assert_eq!(v["successful"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["successful"][0]["id"], "a1");
    let event_id = v["successful"][0]["eventID"].as_str().unwrap().to_string();
    assert_eq!(
        v["failed"],
        json!([{"id": "a2", "errorCode": "InvalidChecksum", "errorMessage": v["failed"][0]["errorMessage"]}])
    );

    s.wait_caught_up();
    let found = admin(
        &s,
        &["cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=PlaceOrder"],
    );
    let found = found["Events"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["EventId"], json!(event_id));
    assert_eq!(found[0]["Username"], "alice");
    let record: Value = serde_json::from_str(found[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(record["eventCategory"], "ActivityAuditLog");
    assert_eq!(record["metadata"]["channelARN"], json!(channel));
    assert_eq!(record["eventData"], serde_json::from_str::<Value>(&good).unwrap());
    let by_source = s.lookup_all(&[("EventSource", "shop.example.com")]);
    assert_eq!(by_source.len(), 1, "the bad-checksum event must not be stored");
    assert!(s.lookup_all(&[("EventName", "CancelOrder")]).is_empty());

    let status = admin(&s, &["cloudtrail", "get-channel", "--channel", &channel]);
    let status = &status["IngestionStatus"];
    assert_eq!(status["LatestIngestionSuccessEventID"], json!(event_id));
    assert_eq!(status["LatestIngestionErrorCode"], "InvalidChecksum");
    assert!(status["LatestIngestionSuccessTime"].is_number(), "{status}");
    s.assert_no_errors_logged();
}

#[test]
fn resending_an_audit_event_returns_the_same_event_id_and_stores_it_once() {
    let s = Server::start();
    let channel = create_channel(&s, "retry");
    let data = event_data("u-9", "Refund", "carol");
    let events = json!([{"id": "r1", "eventData": data}]);
    let first = run_ok(put_audit_events(&s, ADMIN_KEY, ADMIN_SECRET, &channel, &events));
    let second = run_ok(put_audit_events(&s, ADMIN_KEY, ADMIN_SECRET, &channel, &events));
    assert_eq!(first["successful"][0]["eventID"], second["successful"][0]["eventID"]);
    assert!(first["successful"][0]["eventID"].is_string(), "{first}");
    s.wait_caught_up();
    assert_eq!(s.lookup_all(&[("EventName", "Refund")]).len(), 1);
}

#[test]
fn put_audit_events_names_unknown_channels_and_needs_a_writing_role() {
    let s = Server::start();
    let channel = create_channel(&s, "perm");
    let events = json!([{"id": "p1", "eventData": event_data("u-3", "Login", "dave")}]);
    let missing = format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:channel/00000000-0000-4000-8000-000000000000");
    let out = put_audit_events(&s, ADMIN_KEY, ADMIN_SECRET, &missing, &events);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("An error occurred (ChannelNotFound)"), "{stderr}");

    let out = put_audit_events(&s, AUDITOR_KEY, AUDITOR_SECRET, &channel, &events);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("(AccessDeniedException)"), "{stderr}");
    let v = run_ok(put_audit_events(&s, WRITER_KEY, WRITER_SECRET, &channel, &events));
    assert_eq!(v["successful"][0]["id"], "p1", "{v}");
    // Each call is audited, failures included; the refused events were not stored.
    s.wait_caught_up();
    let audited = s.lookup_all(&[("EventName", "PutAuditEvents"), ("Provenance", "self-audit")]);
    let codes: Vec<Option<String>> = audited
        .iter()
        .map(|e| {
            let r: Value = serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
            assert_eq!(r["eventSource"], "cloudtrail-data.amazonaws.com");
            r["errorCode"].as_str().map(str::to_string)
        })
        .collect();
    assert_eq!(codes, vec![None, Some("AccessDeniedException".into()), Some("ChannelNotFound".into())]);
    assert_eq!(s.lookup_all(&[("Provenance", "channel")]).len(), 1, "only the writer's event was stored");
    let metrics = s.raw("GET", "/metrics", &[], b"").text();
    assert!(metrics.lines().any(|l| l.contains("PutAuditEvents") && l.contains("200")), "{metrics}");
}

#[test]
fn boto3_sees_per_event_field_errors_and_duplicate_ids_fail_the_request() {
    let s = Server::start();
    let channel = create_channel(&s, "boto");
    let mut no_uid: Value = serde_json::from_str(&event_data("u-4", "Export", "erin")).unwrap();
    no_uid.as_object_mut().unwrap().remove("UID");
    let other_account = event_data("u-5", "Export", "erin").replace(ACCOUNT, "999999999999");
    let code = format!(
        r#"
import boto3, json, os
c = boto3.client("cloudtrail-data", endpoint_url=os.environ["ENDPOINT"], aws_access_key_id=os.environ["KEY"],
                 aws_secret_access_key=os.environ["SECRET"], region_name="us-east-1")
r = c.put_audit_events(channelArn={channel:?}, auditEvents=[
    {{"id": "ok", "eventData": {good:?}}},
    {{"id": "nouid", "eventData": {no_uid:?}}},
    {{"id": "other", "eventData": {other:?}}},
    {{"id": "junk", "eventData": "not json"}},
])
print(json.dumps({{"ok": [e["id"] for e in r["successful"]], "failed": {{e["id"]: e["errorCode"] for e in r["failed"]}}}}))
try:
    c.put_audit_events(channelArn={channel:?}, auditEvents=[{{"id": "d", "eventData": "{{}}"}}, {{"id": "d", "eventData": "{{}}"}}])
    print("no error")
except c.exceptions.DuplicatedAuditEventId as e:
    print("DuplicatedAuditEventId", e.response["ResponseMetadata"]["HTTPStatusCode"])
"#,
        good = event_data("u-6", "Export", "erin"),
        no_uid = no_uid.to_string(),
        other = other_account,
    );
    let out = s.python(WRITER_KEY, WRITER_SECRET, &code);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let v: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(v["ok"], json!(["ok"]));
    assert_eq!(v["failed"], json!({"nouid": "FieldNotFound", "other": "InvalidRecipient", "junk": "InvalidData"}));
    assert_eq!(lines.next(), Some("DuplicatedAuditEventId 400"));
}
