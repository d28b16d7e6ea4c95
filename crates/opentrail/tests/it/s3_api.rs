//! The S3 read API against the real binary: files delivered into `<data-dir>/buckets/<b>` (written with the
//! `buckets` crate, so their metadata sidecars exist) read back with the aws CLI (`aws s3 ls`, `aws s3 cp`)
//! and boto3 (ListObjects v1/v2 with their paging, ranges, metadata), writes refused, errors in S3's XML,
//! and every call audited as CloudTrail records S3 calls.

use std::process::Output;

use buckets::{Bucket, BucketTarget};
use bytes::Bytes;
use serde_json::json;

use crate::support::*;

const DIGEST_KEY: &str = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/123456789012_CloudTrail-Digest_us-east-1_t1_us-east-1_20260102T010000Z.json.gz";
const LOG_A: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/a.json.gz";
const LOG_B: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/b c.json.gz";

/// A server whose `audit-logs` bucket holds a digest (with its signature metadata), two log files and one
/// top-level object.
fn server_with_files() -> Server {
    let s = Server::start();
    let root = s.data_dir.join("buckets").join("audit-logs");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let b = Bucket::open("audit-logs", &BucketTarget::Local { root }).unwrap();
        b.put_once(
            DIGEST_KEY,
            Bytes::from_static(b"digest-bytes"),
            &[("signature", "00ff"), ("signature-algorithm", "SHA256withRSA")],
        )
        .await
        .unwrap();
        b.put_once(LOG_A, Bytes::from_static(b"0123456789"), &[]).await.unwrap();
        b.put_once(LOG_B, Bytes::from_static(b"log b"), &[]).await.unwrap();
        b.put_once("readme.txt", Bytes::from_static(b"hello"), &[]).await.unwrap();
    });
    s
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn aws_s3(s: &Server, key: &str, secret: &str, args: &[&str]) -> Output {
    s.aws(key, secret).env("AWS_ENDPOINT_URL_S3", &s.endpoint).args(args).output().unwrap()
}

#[test]
fn aws_s3_ls_and_cp_read_what_was_delivered() {
    let s = server_with_files();
    let buckets = ok(&aws_s3(&s, ADMIN_KEY, ADMIN_SECRET, &["s3", "ls"]));
    assert!(buckets.contains("audit-logs"), "{buckets}");
    let top = ok(&aws_s3(&s, AUDITOR_KEY, AUDITOR_SECRET, &["s3", "ls", "s3://audit-logs/"]));
    assert!(top.contains("PRE AWSLogs/") && top.contains("readme.txt"), "{top}");
    let all = ok(&aws_s3(&s, AUDITOR_KEY, AUDITOR_SECRET, &["s3", "ls", "--recursive", "s3://audit-logs/"]));
    for k in [DIGEST_KEY, LOG_A, LOG_B, "readme.txt"] {
        assert!(all.contains(k), "{k} not in {all}");
    }
    assert!(!all.contains(".opentrail-meta"), "{all}");
    let body = ok(&aws_s3(&s, AUDITOR_KEY, AUDITOR_SECRET, &["s3", "cp", &format!("s3://audit-logs/{LOG_B}"), "-"]));
    assert_eq!(body, "log b");
    // A writer ingests; it does not read the buckets.
    let denied = aws_s3(&s, WRITER_KEY, WRITER_SECRET, &["s3", "ls", "s3://audit-logs/"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    // A refused upload changes nothing.
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), "evil").unwrap();
    let put = aws_s3(
        &s,
        ADMIN_KEY,
        ADMIN_SECRET,
        &["s3", "cp", tmp.path().to_str().unwrap(), &format!("s3://audit-logs/{LOG_A}")],
    );
    assert!(!put.status.success());
    assert!(String::from_utf8_lossy(&put.stderr).contains("AccessDenied"), "{}", String::from_utf8_lossy(&put.stderr));
    let body = ok(&aws_s3(&s, ADMIN_KEY, ADMIN_SECRET, &["s3", "cp", &format!("s3://audit-logs/{LOG_A}"), "-"]));
    assert_eq!(body, "0123456789");
    s.assert_no_errors_logged();
}

#[test]
fn boto3_lists_pages_ranges_and_reads_metadata_and_writes_are_refused() {
    let s = server_with_files();
    let code = r#"
import boto3, botocore, json, os
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], aws_access_key_id=os.environ["KEY"],
                  aws_secret_access_key=os.environ["SECRET"], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
out = {}
out["location"] = s3.get_bucket_location(Bucket="audit-logs")["LocationConstraint"]
# v1, one key a page, through Marker; botocore asks encoding-type=url and decodes the keys.
keys, marker = [], ""
while True:
    r = s3.list_objects(Bucket="audit-logs", Prefix="AWSLogs/", Marker=marker, MaxKeys=1)
    out.setdefault("v1_encoding", r.get("EncodingType"))
    keys += [c["Key"] for c in r.get("Contents", [])]
    if not r["IsTruncated"]:
        break
    marker = r.get("NextMarker") or keys[-1]
out["v1_keys"] = keys
# v2 with a delimiter: common prefixes, and ContinuationToken paging.
r = s3.list_objects_v2(Bucket="audit-logs", Delimiter="/")
out["v2_top"] = {"prefixes": [p["Prefix"] for p in r.get("CommonPrefixes", [])], "keys": [c["Key"] for c in r.get("Contents", [])], "count": r["KeyCount"]}
keys, token = [], None
while True:
    kw = {"ContinuationToken": token} if token else {}
    r = s3.list_objects_v2(Bucket="audit-logs", MaxKeys=2, **kw)
    keys += [c["Key"] for c in r.get("Contents", [])]
    if not r["IsTruncated"]:
        break
    token = r["NextContinuationToken"]
out["v2_keys"] = keys
g = s3.get_object(Bucket="audit-logs", Key=os.environ["LOG_A"], Range="bytes=2-4")
out["range"] = {"body": g["Body"].read().decode(), "status": g["ResponseMetadata"]["HTTPStatusCode"], "content_range": g["ContentRange"]}
h = s3.head_object(Bucket="audit-logs", Key=os.environ["DIGEST_KEY"])
out["head"] = {"metadata": h["Metadata"], "length": h["ContentLength"]}
def code_of(f):
    try:
        f()
        return "ok"
    except botocore.exceptions.ClientError as e:
        return [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
out["no_key"] = code_of(lambda: s3.get_object(Bucket="audit-logs", Key="AWSLogs/none"))
out["no_bucket"] = code_of(lambda: s3.list_objects(Bucket="no-such-bucket"))
out["bad_range"] = code_of(lambda: s3.get_object(Bucket="audit-logs", Key=os.environ["LOG_A"], Range="bytes=50-"))
out["put"] = code_of(lambda: s3.put_object(Bucket="audit-logs", Key=os.environ["LOG_A"], Body=b"evil"))
out["delete"] = code_of(lambda: s3.delete_object(Bucket="audit-logs", Key=os.environ["LOG_A"]))
out["after"] = s3.get_object(Bucket="audit-logs", Key=os.environ["LOG_A"])["Body"].read().decode()
bad = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], aws_access_key_id=os.environ["KEY"],
                   aws_secret_access_key="wrong-secret-0000000000000000000000", region_name="us-east-1",
                   config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
out["bad_signature"] = code_of(lambda: bad.list_objects(Bucket="audit-logs"))
print(json.dumps(out))
"#;
    let mut cmd = std::process::Command::new("python3");
    let out = cmd
        .arg("-c")
        .arg(code)
        .env("ENDPOINT", &s.endpoint)
        .env("KEY", AUDITOR_KEY)
        .env("SECRET", AUDITOR_SECRET)
        .env("LOG_A", LOG_A)
        .env("DIGEST_KEY", DIGEST_KEY)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["location"], serde_json::Value::Null, "{v}");
    assert_eq!(v["v1_encoding"], "url");
    assert_eq!(v["v1_keys"], json!([DIGEST_KEY, LOG_A, LOG_B]));
    assert_eq!(v["v2_top"], json!({"prefixes": ["AWSLogs/"], "keys": ["readme.txt"], "count": 2}));
    assert_eq!(v["v2_keys"], json!([DIGEST_KEY, LOG_A, LOG_B, "readme.txt"]));
    assert_eq!(v["range"], json!({"body": "234", "status": 206, "content_range": "bytes 2-4/10"}));
    assert_eq!(
        v["head"],
        json!({"metadata": {"signature": "00ff", "signature-algorithm": "SHA256withRSA"}, "length": 12})
    );
    assert_eq!(v["no_key"], json!(["NoSuchKey", 404]));
    assert_eq!(v["no_bucket"], json!(["NoSuchBucket", 404]));
    assert_eq!(v["bad_range"], json!(["InvalidRange", 416]));
    assert_eq!(v["put"], json!(["AccessDenied", 403]));
    assert_eq!(v["delete"], json!(["AccessDenied", 403]));
    assert_eq!(v["after"], "0123456789");
    assert_eq!(v["bad_signature"], json!(["SignatureDoesNotMatch", 403]));
    s.assert_no_errors_logged();
}

#[test]
fn unsigned_requests_get_s3_errors_and_calls_are_audited_as_s3_events() {
    let s = server_with_files();
    let r = s.raw("GET", &format!("/audit-logs/{LOG_A}"), &[], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    let text = r.text();
    assert!(
        text.contains("<Code>AccessDenied</Code>")
            && text.contains(&format!("<Resource>/audit-logs/{LOG_A}</Resource>")),
        "{text}"
    );
    assert!(text.contains("<RequestId>"), "{text}");
    // A read and a refused write, then their records.
    ok(&aws_s3(&s, AUDITOR_KEY, AUDITOR_SECRET, &["s3", "cp", &format!("s3://audit-logs/{LOG_A}"), "-"]));
    ok(&aws_s3(&s, AUDITOR_KEY, AUDITOR_SECRET, &["s3", "ls", "s3://audit-logs/"]));
    let del =
        aws_s3(&s, ADMIN_KEY, ADMIN_SECRET, &["s3api", "delete-object", "--bucket", "audit-logs", "--key", LOG_A]);
    assert!(!del.status.success());
    s.wait_caught_up();
    let events = s.lookup_all(&[("EventSource", "s3.amazonaws.com")]);
    let record = |name: &str| -> serde_json::Value {
        let e = events.iter().find(|e| e["EventName"] == name).unwrap_or_else(|| panic!("no {name} in {events:?}"));
        serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap()
    };
    let get = record("GetObject");
    assert_eq!(get["eventSource"], "s3.amazonaws.com");
    assert_eq!(get["eventCategory"], "Data");
    assert_eq!(get["managementEvent"], false);
    assert_eq!(get["readOnly"], true);
    assert_eq!(get["requestParameters"]["bucketName"], "audit-logs");
    assert_eq!(get["requestParameters"]["key"], LOG_A);
    assert!(get["requestParameters"]["Host"].is_string(), "{get}");
    assert_eq!(
        get["resources"][0],
        json!({"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::audit-logs/{LOG_A}")})
    );
    assert_eq!(get["resources"][1]["ARN"], "arn:aws:s3:::audit-logs");
    assert_eq!(get["userIdentity"]["userName"], "Audrey");
    let del = record("DeleteObject");
    assert_eq!(del["errorCode"], "AccessDenied");
    assert_eq!(del["readOnly"], false);
    let list = record("ListObjectsV2");
    assert_eq!(list["eventCategory"], "Management");
    assert_eq!(
        list["resources"],
        json!([{"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::audit-logs", "accountId": ACCOUNT}])
    );
    s.assert_no_errors_logged();
}
