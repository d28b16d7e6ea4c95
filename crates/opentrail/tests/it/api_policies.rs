//! The API's policies end to end, with the real binary and real clients: IAM-style access policies,
//! the optional TLS listener (and `tlsDetails` in self-audit), and rate limits.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const LOU_KEY: &str = "AKIAEXAMPLELOOKUP001";
const LOU_SECRET: &str = "lookup-secret-key-00000000000000000001";
const DANA_KEY: &str = "AKIAEXAMPLEDENIED001";
const DANA_SECRET: &str = "denied-secret-key-00000000000000000001";

/// Lou may only look things up; Dana is an admin whose policy explicitly denies LookupEvents.
const POLICY_PRINCIPALS: &str = r#"
[[principals]]
access_key_id = "AKIAEXAMPLELOOKUP001"
secret_access_key = "lookup-secret-key-00000000000000000001"
user_name = "Lou"
role = "admin"
policy = '''{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudtrail:Lookup*","Resource":"*"}]}'''

[[principals]]
access_key_id = "AKIAEXAMPLEDENIED001"
secret_access_key = "denied-secret-key-00000000000000000001"
type = "AssumedRole"
role_name = "Admin"
session_name = "dana"
role = "admin"
policy = '''{"Statement":[{"Effect":"Allow","Action":"*"},{"Effect":"Deny","Action":"cloudtrail:LookupEvents"}]}'''
"#;

fn lookup_cli(s: &Server, key: &str, secret: &str) -> std::process::Output {
    s.aws(key, secret)
        .args([
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=CreateUser",
        ])
        .output()
        .unwrap()
}

fn stderr_has_code(out: &std::process::Output, code: &str) -> bool {
    String::from_utf8_lossy(&out.stderr).contains(&format!("An error occurred ({code})"))
}

fn ingest_as(s: &Server, key: &str, secret: &str, ndjson: &str) -> Reply {
    s.signed(key, secret, "POST", "/v1/events", &[("content-type", "application/x-ndjson")], ndjson.as_bytes())
}

/// Polls LookupEvents for EventName=LookupEvents records (as `key`) until one satisfies `pred`. A
/// throttled poll just waits: the poller is subject to the rate limits under test too.
fn find_audit(s: &Server, key: &str, secret: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let params = json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}]});
        let r = s.cloudtrail(key, secret, "LookupEvents", &params);
        if r.status == 200 {
            let found = r.json()["Events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| serde_json::from_str::<Value>(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
                .find(|e| pred(e));
            if let Some(e) = found {
                return e;
            }
        } else {
            assert_eq!(r.code(), "ThrottlingException", "{}", r.text());
        }
        assert!(Instant::now() < deadline, "no matching audit record: last answer {}", r.text());
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_lookup_only_policy_allows_lookups_and_denies_everything_else() {
    let s = Server::start_with(&config_toml(POLICY_PRINCIPALS));
    s.ingest(&format!("{SEED}\n"));
    s.wait_caught_up();

    let out = lookup_cli(&s, LOU_KEY, LOU_SECRET);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Events"].as_array().map(Vec::len), Some(1));

    let r = ingest_as(&s, LOU_KEY, LOU_SECRET, &format!("{SEED}\n"));
    assert_eq!(r.code(), "AccessDeniedException", "{}", r.text());
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("arn:aws:iam::123456789012:user/Lou"), "{message}");
    assert!(message.contains("opentrail:PutEvents"), "{message}");
    s.assert_no_errors_logged();
}

#[test]
fn an_explicit_deny_beats_an_admin_role_and_the_denial_is_audited() {
    let s = Server::start_with(&config_toml(POLICY_PRINCIPALS));
    s.ingest(&format!("{SEED}\n"));
    s.wait_caught_up();

    let out = lookup_cli(&s, DANA_KEY, DANA_SECRET);
    assert!(!out.status.success());
    assert!(stderr_has_code(&out, "AccessDeniedException"), "{}", String::from_utf8_lossy(&out.stderr));
    // The Allow * still lets Dana ingest.
    let r = ingest_as(&s, DANA_KEY, DANA_SECRET, &format!("{SEED}\n"));
    assert_eq!(r.status, 200, "{}", r.text());

    // An admin sees the denied call, with Dana's identity and the error.
    let rec = find_audit(&s, ADMIN_KEY, ADMIN_SECRET, |e| e["userIdentity"]["accessKeyId"] == DANA_KEY);
    assert_eq!(rec["errorCode"], "AccessDeniedException");
    assert!(rec["errorMessage"].as_str().unwrap().contains("explicit deny"), "{rec}");
    let id = &rec["userIdentity"];
    assert_eq!(id["type"], "AssumedRole");
    assert_eq!(id["arn"], "arn:aws:sts::123456789012:assumed-role/Admin/dana");
    assert_eq!(id["sessionContext"]["sessionIssuer"]["userName"], "Admin");
    assert_eq!(rec["sourceIPAddress"], "127.0.0.1");
    assert!(rec["userAgent"].as_str().unwrap().starts_with("aws-cli/1."));
    s.assert_no_errors_logged();
}

#[test]
fn a_writer_cannot_look_up_and_an_auditor_cannot_ingest() {
    let s = Server::start();
    s.ingest(&format!("{SEED}\n"));
    s.wait_caught_up();

    let out = lookup_cli(&s, WRITER_KEY, WRITER_SECRET);
    assert!(stderr_has_code(&out, "AccessDeniedException"), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = find_audit(&s, ADMIN_KEY, ADMIN_SECRET, |e| e["userIdentity"]["accessKeyId"] == WRITER_KEY);
    assert_eq!(rec["errorCode"], "AccessDeniedException");
    assert_eq!(rec["userIdentity"]["userName"], "ingester");

    let out = lookup_cli(&s, AUDITOR_KEY, AUDITOR_SECRET);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record = r#"{"eventVersion":"1.11","eventID":"auditor-wrote-this","eventTime":"2024-01-01T00:00:00Z","eventSource":"iam.amazonaws.com","eventName":"DeleteUser"}"#;
    let r = ingest_as(&s, AUDITOR_KEY, AUDITOR_SECRET, record);
    assert_eq!(r.code(), "AccessDeniedException", "{}", r.text());
    s.wait_caught_up();
    assert!(s.lookup_all(&[("EventId", "auditor-wrote-this")]).is_empty(), "a denied ingest stores nothing");
    s.assert_no_errors_logged();
}

#[test]
fn https_calls_are_audited_with_tls_details_and_plain_http_calls_without() {
    let (s, dir) = Server::start_tls("");
    let cert_file = dir.path().join("cert.pem");
    let https = s.https_endpoint.clone().expect("an https listener");
    let port = https.rsplit(':').next().unwrap().to_string();
    s.ingest(&format!("{SEED}\n"));
    s.wait_caught_up();

    // boto3 over https (trusting the self-signed cert), then over plain http.
    let out = s.python(
        ADMIN_KEY,
        ADMIN_SECRET,
        &format!(
            r#"
import boto3, os
kw = dict(aws_access_key_id=os.environ['KEY'], aws_secret_access_key=os.environ['SECRET'], region_name='us-east-1')
port = os.environ['HTTPS_ENDPOINT'].rsplit(':', 1)[1]
from botocore.config import Config
# Bounded timeouts: a stuck TLS listener fails the test instead of hanging it.
cfg = Config(connect_timeout=10, read_timeout=30, retries={{'max_attempts': 1}})
tls = boto3.client('cloudtrail', endpoint_url='https://localhost:' + port, verify={:?}, config=cfg, **kw)
r = tls.lookup_events(LookupAttributes=[{{'AttributeKey': 'EventName', 'AttributeValue': 'CreateUser'}}])
assert len(r['Events']) == 1, r
plain = boto3.client('cloudtrail', endpoint_url=os.environ['ENDPOINT'], **kw)
plain.lookup_events(LookupAttributes=[{{'AttributeKey': 'Username', 'AttributeValue': 'John'}}])
"#,
            cert_file.display().to_string()
        ),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The aws CLI over https too, with the cert as its CA bundle.
    let out = s
        .aws(ADMIN_KEY, ADMIN_SECRET)
        .args(["--cli-connect-timeout", "10", "--cli-read-timeout", "30"])
        .args(["--endpoint-url", &format!("https://localhost:{port}"), "--ca-bundle"])
        .arg(&cert_file)
        .args([
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventSource,AttributeValue=iam.amazonaws.com",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let over_tls = find_audit(&s, ADMIN_KEY, ADMIN_SECRET, |e| {
        e["requestParameters"]["lookupAttributes"][0]["attributeKey"] == "EventName"
    });
    let tls = &over_tls["tlsDetails"];
    assert_eq!(tls["tlsVersion"], "TLSv1.3", "{over_tls}");
    assert!(tls["cipherSuite"].as_str().is_some_and(|c| c.starts_with("TLS_")), "{tls}");
    assert_eq!(tls["clientProvidedHostHeader"], format!("localhost:{port}"));
    assert!(over_tls["userAgent"].as_str().unwrap().contains("Boto3/"), "{over_tls}");
    let cli_tls = find_audit(&s, ADMIN_KEY, ADMIN_SECRET, |e| {
        e["requestParameters"]["lookupAttributes"][0]["attributeKey"] == "EventSource"
    });
    assert_eq!(cli_tls["tlsDetails"]["tlsVersion"], "TLSv1.3");
    let plain = find_audit(&s, ADMIN_KEY, ADMIN_SECRET, |e| {
        e["requestParameters"]["lookupAttributes"][0]["attributeKey"] == "Username"
    });
    assert!(plain.get("tlsDetails").is_none(), "plain http has no tlsDetails: {plain}");
    assert_eq!(plain["sourceIPAddress"], "127.0.0.1");
    assert_eq!(over_tls["sourceIPAddress"], "127.0.0.1", "ConnectInfo works behind TLS");
    s.assert_no_errors_logged();
}

#[test]
fn lookups_over_the_rate_limit_are_throttled_counted_and_audited() {
    let s = Server::start_with(&config_toml("[rate_limits.operations]\nLookupEvents = 1.0\n"));
    let outcomes: Vec<(u16, String, String)> = (0..3)
        .map(|_| {
            let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "LookupEvents", &json!({"MaxResults": 1}));
            let v = r.json();
            (r.status, v["__type"].as_str().unwrap_or("").to_string(), v["message"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(outcomes[0].0, 200, "{outcomes:?}");
    for o in &outcomes[1..] {
        assert_eq!(o, &(400, "ThrottlingException".to_string(), "Rate exceeded".to_string()));
    }
    let metrics = s.raw("GET", "/metrics", &[], b"").text();
    assert!(
        metrics
            .contains("opentrail_api_requests_total{operation=\"LookupEvents\",outcome=\"ThrottlingException\"} 2\n"),
        "{metrics}"
    );
    // Buckets are per access key: the auditor is not throttled by John's calls.
    let rec = find_audit(&s, AUDITOR_KEY, AUDITOR_SECRET, |e| {
        e["userIdentity"]["accessKeyId"] == ADMIN_KEY && e["errorCode"] == "ThrottlingException"
    });
    assert_eq!(rec["errorMessage"], "Rate exceeded");
    assert_eq!(rec["userIdentity"]["userName"], "John");

    // boto3 without retries sees the throttle; with its default retries it gets through.
    let out = s.python(
        ADMIN_KEY,
        ADMIN_SECRET,
        r#"
import boto3, json, os
from botocore.config import Config
from botocore.exceptions import ClientError
kw = dict(endpoint_url=os.environ['ENDPOINT'], aws_access_key_id=os.environ['KEY'],
          aws_secret_access_key=os.environ['SECRET'], region_name='us-east-1')
no_retry = boto3.client('cloudtrail', config=Config(retries={'max_attempts': 0}), **kw)
retrying = boto3.client('cloudtrail', **kw)
codes = []
for _ in range(2):
    try:
        no_retry.lookup_events(MaxResults=1)
        codes.append('ok')
    except ClientError as e:
        codes.append(e.response['Error']['Code'])
# Three calls at 1/s: at least two of them meet an empty bucket and are retried through.
retries = sum(retrying.lookup_events(MaxResults=1)['ResponseMetadata']['RetryAttempts'] for _ in range(3))
print(json.dumps({'codes': codes, 'retries': retries}))
"#,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["codes"][1], "ThrottlingException", "{got}");
    assert!(got["retries"].as_u64().unwrap() >= 1, "the default client retried its way through: {got}");
    s.assert_no_errors_logged();
}

#[test]
fn without_rate_limits_nothing_is_throttled() {
    let s = Server::start();
    for _ in 0..20 {
        let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "LookupEvents", &json!({"MaxResults": 1}));
        assert_eq!(r.status, 200, "{}", r.text());
    }
}
