//! The one bucket contract, run on a local folder and on a real S3 server (moto on loopback), plus what only
//! one kind has: read-only files and metadata sidecars locally, Object Lock retention on S3.

use std::os::unix::fs::PermissionsExt;

use buckets::{Bucket, BucketError, BucketTarget, LockMode, ObjectLock, S3Target};
use bytes::Bytes;
use harness::MotoServer;

/// The contract every bucket keeps, whatever is behind it.
async fn contract(b: &Bucket) {
    let key = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/d1.json.gz";
    b.put_once(
        key,
        Bytes::from_static(b"0123456789"),
        &[("signature", "abcd"), ("signature-algorithm", "SHA256withRSA")],
    )
    .await
    .unwrap();
    // Write once: a second put of the key is refused with the size of what is there, which is unchanged.
    let err = b.put_once(key, Bytes::from_static(b"evil"), &[]).await.unwrap_err();
    assert!(matches!(&err, BucketError::Exists { size: 10, .. }), "{err}");
    let got = b.get(key, None).await.unwrap();
    assert_eq!(&got.body[..], b"0123456789");
    assert_eq!(got.info.metadata.get("signature").map(String::as_str), Some("abcd"));
    assert_eq!(got.info.metadata.get("signature-algorithm").map(String::as_str), Some("SHA256withRSA"));
    // Ranges, including one running past the end.
    let part = b.get(key, Some(2..5)).await.unwrap();
    assert_eq!((&part.body[..], part.range.clone()), (&b"234"[..], 2..5));
    let tail = b.get(key, Some(8..100)).await.unwrap();
    assert_eq!(&tail.body[..], b"89");
    let head = b.head(key).await.unwrap();
    assert_eq!(head.size, 10);
    assert_eq!(head.metadata.get("signature").map(String::as_str), Some("abcd"));
    assert!(head.etag.is_some());
    // Listing: sorted, string prefixes (not only whole folders), start-after, limit.
    for k in [
        "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/b.json.gz",
        "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/a.json.gz",
        "top.txt",
    ] {
        b.put_once(k, Bytes::from(k.as_bytes().to_vec()), &[]).await.unwrap();
    }
    let all: Vec<String> = b.list(None, None, 100).await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(
        all,
        vec![
            "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/d1.json.gz",
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/a.json.gz",
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/b.json.gz",
            "top.txt"
        ]
    );
    let logs = b.list(Some("AWSLogs/123456789012/CloudTrail/"), None, 100).await.unwrap();
    assert_eq!(logs.len(), 2);
    let partial = b.list(Some("AWSLogs/1234"), None, 100).await.unwrap();
    assert_eq!(partial.len(), 3);
    let after = b.list(Some("AWSLogs/"), Some(&all[1]), 1).await.unwrap();
    assert_eq!(after.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), vec![all[2].as_str()]);
    assert!(b.list(Some("nothing-here"), None, 10).await.unwrap().is_empty());
    // Missing objects and bad keys are named.
    let err = b.get("AWSLogs/none", None).await.unwrap_err();
    assert!(matches!(&err, BucketError::NotFound { key, .. } if key == "AWSLogs/none"), "{err}");
    assert!(matches!(b.head("nope").await.unwrap_err(), BucketError::NotFound { .. }));
    assert!(matches!(b.put_once("a//b", Bytes::new(), &[]).await.unwrap_err(), BucketError::InvalidKey { .. }));
    assert!(matches!(
        b.put_once(".opentrail-meta/x", Bytes::new(), &[]).await.unwrap_err(),
        BucketError::InvalidKey { .. }
    ));
    assert!(matches!(
        b.put_once("k", Bytes::new(), &[("Bad Name", "v")]).await.unwrap_err(),
        BucketError::InvalidKey { .. }
    ));
}

#[tokio::test]
async fn a_local_folder_keeps_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("audit-logs");
    let b = Bucket::open("audit-logs", &BucketTarget::Local { root: root.clone() }).unwrap();
    contract(&b).await;
    // Objects are read-only files; metadata lives in the hidden sidecar tree, never listed.
    let file = root.join("AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/d1.json.gz");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o444);
    let sidecar =
        root.join(".opentrail-meta/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/d1.json.gz.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["signature"], "abcd");
    assert!(b.list(Some(".opentrail"), None, 10).await.unwrap().is_empty());
    // No temp files are left beside the objects.
    let names: Vec<String> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["d1.json.gz".to_string()]);
    // A bucket reopened on the same folder sees the same objects (nothing held in memory).
    let again = Bucket::open("audit-logs", &BucketTarget::Local { root }).unwrap();
    assert_eq!(again.head("top.txt").await.unwrap().size, 7);
}

#[tokio::test]
async fn a_crash_between_sidecar_and_object_is_repaired_by_the_retried_put() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("b1");
    let b = Bucket::open("b1", &BucketTarget::Local { root: root.clone() }).unwrap();
    // What a crash after the sidecar and before the object leaves behind.
    let sidecar = root.join(".opentrail-meta/k.json");
    std::fs::create_dir_all(sidecar.parent().unwrap()).unwrap();
    std::fs::write(&sidecar, br#"{"metadata":{"signature":"stale"}}"#).unwrap();
    b.put_once("k", Bytes::from_static(b"v"), &[("signature", "fresh")]).await.unwrap();
    assert_eq!(b.head("k").await.unwrap().metadata["signature"], "fresh");
}

#[tokio::test]
async fn a_crash_between_link_and_seal_is_sealed_by_the_retried_put() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("b1");
    let b = Bucket::open("b1", &BucketTarget::Local { root: root.clone() }).unwrap();
    // What a crash after the object is linked into place and before it is made read-only leaves behind.
    let file = root.join("AWSLogs/k.json.gz");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"v").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The retry finds it (the caller compares and counts it delivered) and finishes the seal.
    let err = b.put_once("AWSLogs/k.json.gz", Bytes::from_static(b"v"), &[]).await.unwrap_err();
    assert!(matches!(err, BucketError::Exists { size: 1, .. }), "{err}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o444);
    assert_eq!(std::fs::read(&file).unwrap(), b"v");
}

#[tokio::test]
async fn a_crash_during_the_write_leaves_a_staging_file_no_listing_shows_and_the_retry_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("b1");
    let b = Bucket::open("b1", &BucketTarget::Local { root: root.clone() }).unwrap();
    // What `LocalFileSystem` was writing when the process was killed: `<key>#<n>` beside the object's place.
    let staging = root.join("AWSLogs/k.json.gz#1");
    std::fs::create_dir_all(staging.parent().unwrap()).unwrap();
    std::fs::write(&staging, b"half").unwrap();
    assert!(b.list(Some("AWSLogs/"), None, 100).await.unwrap().is_empty(), "a staging file is not an object");
    b.put_once("AWSLogs/k.json.gz", Bytes::from_static(b"whole"), &[]).await.unwrap();
    assert!(!staging.exists(), "the retried put removes what the crashed one left");
    let keys: Vec<String> = b.list(Some("AWSLogs/"), None, 100).await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["AWSLogs/k.json.gz"]);
}

fn s3(moto: &MotoServer, object_lock: Option<ObjectLock>) -> BucketTarget {
    BucketTarget::S3(S3Target {
        endpoint: moto.endpoint.clone(),
        region: "us-east-1".into(),
        access_key_id: "AKIAEXAMPLEMOTO00001".into(),
        secret_access_key: "moto-secret".into(),
        object_lock,
    })
}

/// boto3's `head_object` of `key` in `bucket`, as JSON.
fn boto3_head(moto: &MotoServer, bucket: &str, key: &str) -> serde_json::Value {
    let code = r#"
import boto3, json, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["EP"], region_name="us-east-1",
                  aws_access_key_id="AKIAEXAMPLEMOTO00001", aws_secret_access_key="moto-secret")
h = s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2])
print(json.dumps({"Metadata": h.get("Metadata"), "ObjectLockMode": h.get("ObjectLockMode"),
                  "ObjectLockRetainUntilDate": str(h.get("ObjectLockRetainUntilDate") or "")}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", code, bucket, key])
        .env("EP", &moto.endpoint)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn an_s3_bucket_keeps_the_contract_and_object_lock_retains_every_object() {
    let moto = MotoServer::start().unwrap();
    moto.create_bucket("plain-logs", false).unwrap();
    moto.create_bucket("locked-logs", true).unwrap();

    let plain = Bucket::open("plain-logs", &s3(&moto, None)).unwrap();
    contract(&plain).await;
    let h = boto3_head(&moto, "plain-logs", "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/d1.json.gz");
    assert_eq!(h["Metadata"]["signature"], "abcd", "{h}");
    assert_eq!(h["ObjectLockMode"], serde_json::Value::Null, "{h}");

    let lock = ObjectLock { mode: LockMode::Governance, days: 365 };
    let locked = Bucket::open("locked-logs", &s3(&moto, Some(lock))).unwrap();
    contract(&locked).await;
    for key in ["AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/d1.json.gz", "top.txt"] {
        let h = boto3_head(&moto, "locked-logs", key);
        assert_eq!(h["ObjectLockMode"], "GOVERNANCE", "{key}: {h}");
        let until = h["ObjectLockRetainUntilDate"].as_str().unwrap();
        let year_from_now = (chrono::Utc::now() + chrono::Duration::days(364)).format("%Y-%m-%d").to_string();
        assert!(until[..10] >= year_from_now[..], "{key}: retained until {until}");
    }
}

#[tokio::test]
async fn an_unreachable_s3_server_is_unreachable_and_a_missing_bucket_is_named() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = BucketTarget::S3(S3Target {
        endpoint: format!("http://127.0.0.1:{port}"),
        region: "us-east-1".into(),
        access_key_id: "AKIAEXAMPLEMOTO00001".into(),
        secret_access_key: "moto-secret".into(),
        object_lock: None,
    });
    let b = Bucket::open("gone", &target).unwrap();
    let err = b.put_once("k", Bytes::from_static(b"v"), &[]).await.unwrap_err();
    assert!(matches!(&err, BucketError::Unreachable { bucket, .. } if bucket == "gone"), "{err}");
}

#[test]
fn plain_http_is_refused_off_loopback() {
    let target = BucketTarget::S3(S3Target {
        endpoint: "http://s3.example.com".into(),
        region: "us-east-1".into(),
        access_key_id: "AKIAEXAMPLEMOTO00001".into(),
        secret_access_key: "moto-secret".into(),
        object_lock: None,
    });
    let err = Bucket::open("b1", &target).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    assert!(buckets::is_loopback_host("127.0.0.1") && buckets::is_loopback_host("[::1]"));
    assert!(buckets::is_loopback_host("localhost") && !buckets::is_loopback_host("10.0.0.1"));
}
