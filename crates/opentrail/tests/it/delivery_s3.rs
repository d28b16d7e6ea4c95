//! Delivery to a real S3 server: moto started on loopback by the test, one plain bucket and one with Object
//! Lock, checked from S3 with boto3 and the aws CLI's validate-logs; and a destination that is down for a
//! while: the trail is created and logs anyway, status and /metrics show the error, and the backlog arrives
//! exactly once when the server comes back.

use std::time::Duration;

use harness::MotoServer;
use serde_json::json;

use crate::delivered::*;
use crate::support::*;

/// `[buckets.<name>]` for a bucket of the moto server at `endpoint` (moto takes any credentials).
fn s3_bucket(name: &str, endpoint: &str, lock: bool) -> String {
    let lock = if lock { "object_lock = { mode = \"GOVERNANCE\", days = 1 }\n" } else { "" };
    format!(
        "[buckets.{name}]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"moto\"\n\
         secret_access_key = \"moto-secret\"\n{lock}"
    )
}

fn start_trail(s: &Server, name: &str, bucket: &str) {
    call(s, "CreateTrail", json!({"Name": name, "S3BucketName": bucket, "EnableLogFileValidation": true}));
    call(s, "StartLogging", json!({"Name": name}));
}

/// Waits until every id is in a log file of the bucket and every log file is in a digest, with at least
/// `min_digests` digests (so the chain has links).
fn wait_delivered(moto: &MotoServer, bucket: &str, trail: &str, ids: &[String], min_digests: usize) -> Delivered {
    wait_until(
        &format!("{} events delivered to s3://{bucket} and digested", ids.len()),
        Duration::from_secs(40),
        || {
            let d = read_s3(&moto.endpoint, bucket, trail);
            let counts = d.event_counts();
            let missing: Vec<_> = ids.iter().filter(|id| !counts.contains_key(*id)).collect();
            let undigested = d.undigested();
            if missing.is_empty() && undigested.is_empty() && d.digests.len() >= min_digests {
                Ok(d)
            } else {
                Err(format!(
                    "missing {missing:?}, undigested {undigested:?}, {} digests, {} log files, strays {:?}",
                    d.digests.len(),
                    d.logs.len(),
                    d.strays
                ))
            }
        },
    )
}

#[test]
fn trails_deliver_to_s3_with_object_lock_and_validate_logs_reads_them_from_s3() {
    let moto = MotoServer::start().unwrap();
    moto.create_bucket("plain", false).unwrap();
    moto.create_bucket("locked", true).unwrap();
    let s = Server::start_with(&config_toml(&format!(
        "[delivery]\ninterval = \"1s\"\ndigest_interval = \"2s\"\n{}{}",
        s3_bucket("plain", &moto.endpoint, false),
        s3_bucket("locked", &moto.endpoint, true)
    )));
    start_trail(&s, "to-plain", "plain");
    start_trail(&s, "to-locked", "locked");
    let (mut ids, body) = events("s3-a", 20);
    s.ingest(&body);
    // The second batch only once the first is delivered (and digested) to each bucket: more than one log file,
    // however late the cut comes on a loaded machine (a fixed sleep of a little over one interval was not
    // always enough).
    for (trail, bucket) in [("to-plain", "plain"), ("to-locked", "locked")] {
        wait_delivered(&moto, bucket, trail, &ids, 1);
    }
    let (more, body) = events("s3-b", 20);
    s.ingest(&body);
    ids.extend(more);

    for (trail, bucket, locked) in [("to-plain", "plain", false), ("to-locked", "locked", true)] {
        let d = wait_delivered(&moto, bucket, trail, &ids, 2);
        d.assert_layout(bucket);
        d.assert_nothing_doubled(bucket);
        assert!(d.logs.len() >= 2, "{bucket}: {:?}", d.logs.iter().map(|l| &l.key).collect::<Vec<_>>());
        for dg in &d.digests {
            let sig = dg.metadata.get("signature").unwrap_or_else(|| panic!("{}: no signature", dg.key));
            assert!(sig.len() >= 512 && sig.bytes().all(|b| b.is_ascii_hexdigit()), "{}: {sig}", dg.key);
            assert_eq!(dg.metadata.get("signature-algorithm").map(String::as_str), Some("SHA256withRSA"));
        }
        for o in d.logs.iter().chain(&d.digests) {
            if locked {
                assert_eq!(o.lock_mode.as_deref(), Some("GOVERNANCE"), "{}", o.key);
                let secs = o.retain_secs.unwrap_or_else(|| panic!("{}: no RetainUntilDate", o.key));
                assert!((86_400.0 - 600.0..=86_400.0 + 60.0).contains(&secs), "{}: retained {secs} s", o.key);
            } else {
                assert_eq!(o.lock_mode, None, "{}", o.key);
            }
        }
        // Digests in order of their end time: a chain (each links the one before).
        let mut digests = d.digests.clone();
        digests.sort_by(|a, b| a.key.cmp(&b.key));
        for pair in digests.windows(2) {
            assert_eq!(pair[1].json["previousDigestS3Object"], pair[0].key.as_str(), "{}", pair[1].key);
        }
        assert_eq!(digests[0].json["previousDigestS3Object"], serde_json::Value::Null);

        let out = validate_logs(&s, trail, &moto.endpoint);
        assert_all_valid(&out, 2);
        let stdout = String::from_utf8_lossy(&out.stdout);
        for l in &d.logs {
            assert!(stdout.contains(&format!("s3://{bucket}/{}\tvalid", l.key)), "{} not validated:\n{stdout}", l.key);
        }
    }
    let status = call(&s, "GetTrailStatus", json!({"Name": "to-locked"}));
    assert!(status.get("LatestDeliveryError").is_none(), "{status}");
    assert!(status["LatestDigestS3Object"].as_str().is_some_and(|k| k.contains("CloudTrail-Digest")), "{status}");
    s.assert_no_errors_logged();
}

#[test]
fn a_destination_down_for_a_while_shows_in_status_and_gets_the_backlog_once_it_returns() {
    // Nothing listens on this port yet: the bucket's S3 server is down.
    let port = harness::free_port().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let s = Server::start_with(&config_toml(&format!(
        "[delivery]\ninterval = \"1s\"\ndigest_interval = \"2s\"\n{}",
        s3_bucket("gone", &endpoint, false)
    )));
    // AWS checks the bucket policy at CreateTrail; an unreachable bucket is reported in the status instead.
    call(&s, "CreateTrail", json!({"Name": "to-gone", "S3BucketName": "gone"}));
    call(&s, "UpdateTrail", json!({"Name": "to-gone", "S3BucketName": "gone", "EnableLogFileValidation": true}));
    call(&s, "StartLogging", json!({"Name": "to-gone"}));
    let (mut ids, body) = events("outage-a", 15);
    s.ingest(&body);

    let status = wait_for("a delivery error in GetTrailStatus", Duration::from_secs(30), || {
        let st = call(&s, "GetTrailStatus", json!({"Name": "to-gone"}));
        st["LatestDeliveryError"].is_string().then_some(st)
    });
    let error = status["LatestDeliveryError"].as_str().unwrap();
    assert!(error.contains("bucket gone") && error.contains("unreachable"), "{error}");
    assert!(status["LatestDeliveryAttemptTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{status}");
    assert!(status.get("LatestDeliveryTime").is_none(), "nothing was delivered: {status}");
    assert_eq!(status["IsLogging"], true);
    let errors = metric(&s, "opentrail_delivery_errors_total", "to-gone");
    assert!(errors >= 1);
    // The retries go on (with back-off), each counted; the events keep coming meanwhile.
    let (more, body) = events("outage-b", 15);
    s.ingest(&body);
    ids.extend(more);
    wait_for("more delivery errors", Duration::from_secs(20), || {
        (metric(&s, "opentrail_delivery_errors_total", "to-gone") > errors).then_some(())
    });

    // The destination comes back where it was, with its bucket.
    let moto = MotoServer::start_on(port).unwrap();
    moto.create_bucket("gone", false).unwrap();
    let d = wait_delivered(&moto, "gone", "to-gone", &ids, 1);
    d.assert_layout("gone");
    d.assert_nothing_doubled("gone");
    let status = wait_for("the delivery error cleared", Duration::from_secs(20), || {
        let st = call(&s, "GetTrailStatus", json!({"Name": "to-gone"}));
        st.get("LatestDeliveryError").is_none().then_some(st)
    });
    assert!(status["LatestDeliveryTime"].is_number(), "{status}");
    assert!(status.get("LatestDigestDeliveryError").is_none(), "{status}");
    assert_eq!(status["LatestDeliveryAttemptSucceeded"], status["LatestDeliveryAttemptTime"], "{status}");
    assert_all_valid(&validate_logs(&s, "to-gone", &moto.endpoint), 1);
    // Every retry was a warning, never an error.
    s.assert_no_errors_logged();
}
