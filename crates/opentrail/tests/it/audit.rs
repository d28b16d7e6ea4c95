//! No call escapes its record: the audit of every authenticated call (oversized, malformed, unknown,
//! refused), fail-closed on a full disk, provenance that tells a forged record from a real one, and
//! PutAuditEvents eventIDs no one can take in advance.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn record_of(event: &Value) -> Value {
    serde_json::from_str(event["CloudTrailEvent"].as_str().unwrap()).unwrap()
}

/// The self-audit records of `op`, newest first.
fn audited(s: &Server, op: &str) -> Vec<Value> {
    s.wait_caught_up();
    s.lookup_all(&[("EventName", op), ("Provenance", "self-audit")]).iter().map(record_of).collect()
}

#[test]
fn an_oversized_call_is_recorded_once_with_what_did_not_fit_cut_and_named() {
    let s = Server::start();
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "CreateTrail", &json!({"Name": "trail-1", "S3BucketName": "b-1"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let big = "z".repeat(300 * 1024);
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "DeleteTrail", &json!({"Name": "trail-1", "Zz": big}));
    assert_eq!(r.status, 200, "{}", r.text());
    let records = audited(&s, "DeleteTrail");
    assert_eq!(records.len(), 1, "exactly one record of the call");
    let rec = &records[0];
    assert_eq!(rec["requestParameters"]["name"], "trail-1", "what fits is kept");
    let zz = rec["requestParameters"]["zz"].as_str().unwrap();
    assert!(zz.len() < 110 * 1024 && zz.ends_with("…[truncated]"), "{}", zz.len());
    let cut = &rec["additionalEventData"]["truncated"]["cut"];
    assert!(
        cut.as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "requestParameters.zz" && c["originalBytes"].as_u64() > Some(300 * 1024)),
        "{cut}"
    );
    // The trail is gone, as answered.
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "GetTrail", &json!({"Name": "trail-1"}));
    assert_eq!(r.code(), "TrailNotFoundException");
    let m = s.raw("GET", "/metrics", &[], b"").text();
    assert!(m.contains("opentrail_audit_records_total{outcome=\"truncated\"} 1"), "{m}");
}

#[test]
fn malformed_and_unknown_calls_each_leave_exactly_one_record() {
    let s = Server::start();
    fn target(t: &str) -> [(&str, &str); 2] {
        [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", t)]
    }
    let calls: [(&str, Vec<u8>, &str, &str); 4] = [
        ("CloudTrail_20131101.CreateTrail", b"{not json".to_vec(), "CreateTrail", "SerializationException"),
        ("CloudTrail_20131101.GetTrail", b"[1,2]".to_vec(), "GetTrail", "SerializationException"),
        ("CloudTrail_20131101.Frobnicate", b"{}".to_vec(), "Frobnicate", "UnknownOperationException"),
        (
            "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.StopLogging",
            br#"{"Name": 5}"#.to_vec(),
            "StopLogging",
            "SerializationException",
        ),
    ];
    for (t, body, _, code) in &calls {
        let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "POST", "/", &target(t), body);
        assert_eq!((r.status, r.code()), (400, code.to_string()), "{t}: {}", r.text());
    }
    for (_, _, name, code) in &calls {
        let records = audited(&s, name);
        assert_eq!(records.len(), 1, "{name}: {records:?}");
        assert_eq!(records[0]["errorCode"], *code);
        assert_eq!(records[0]["userIdentity"]["userName"], "John");
        assert_eq!(records[0]["eventSource"], "cloudtrail.amazonaws.com");
    }
    // A request whose signature does not verify has no identity to record: it is counted, not audited.
    let r = s.signed(
        ADMIN_KEY,
        "wrong-secret-000000000000000000",
        "POST",
        "/",
        &target("CloudTrail_20131101.ListTrails"),
        b"{}",
    );
    assert_eq!(r.status, 403);
    assert!(audited(&s, "ListTrails").is_empty());
}

#[test]
fn a_forged_self_audit_record_is_told_apart_by_provenance() {
    let s = Server::start();
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "CreateTrail", &json!({"Name": "real", "S3BucketName": "b-1"}));
    assert_eq!(r.status, 200);
    let real = audited(&s, "CreateTrail");
    assert_eq!(real.len(), 1);
    // A writer sends a byte-for-byte copy of that record under a new eventID.
    let mut forged = real[0].clone();
    forged["eventID"] = json!("forged-0001");
    let r = s.signed(WRITER_KEY, WRITER_SECRET, "POST", "/v1/events", &[], forged.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    s.wait_caught_up();
    // Both carry eventSource cloudtrail.amazonaws.com; only provenance tells them apart.
    assert_eq!(s.lookup_all(&[("EventName", "CreateTrail"), ("EventSource", "cloudtrail.amazonaws.com")]).len(), 2);
    let by_self = s.lookup_all(&[("EventName", "CreateTrail"), ("Provenance", "self-audit")]);
    assert_eq!(by_self.len(), 1);
    assert_eq!(by_self[0]["EventId"], real[0]["eventID"]);
    assert_eq!(by_self[0]["Provenance"], "self-audit");
    let writer_arn = format!("arn:aws:iam::{ACCOUNT}:user/ingester");
    let by_writer = s.lookup_all(&[("Provenance", &format!("ingest:{writer_arn}"))]);
    assert_eq!(by_writer.len(), 1);
    assert_eq!(by_writer[0]["EventId"], "forged-0001");
    assert_eq!(by_writer[0]["Provenance"], format!("ingest:{writer_arn}"));
    // The native API shows it too, and keeps the record bytes as sent.
    let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "GET", "/v1/events/forged-0001", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-opentrail-provenance"), Some(format!("ingest:{writer_arn}").as_str()));
    assert_eq!(r.json(), forged);
    // A provenance that is not one is named.
    let r = s.cloudtrail(
        ADMIN_KEY,
        ADMIN_SECRET,
        "LookupEvents",
        &json!({"LookupAttributes": [{"AttributeKey": "Provenance", "AttributeValue": "trusted"}]}),
    );
    assert_eq!(r.code(), "InvalidLookupAttributesException");
    assert!(r.text().contains("trusted"));
}

/// The eventID PutAuditEvents gave before this issue: a public function of the channel ARN and the id.
fn predictable_event_id(channel_arn: &str, id: &str) -> String {
    let code = format!(
        "import hashlib,uuid; b=bytearray(hashlib.sha256(b'{channel_arn}\\n{id}').digest()[:16]); \
         b[6]=(b[6]&0x0f)|0x80; b[8]=(b[8]&0x3f)|0x80; print(uuid.UUID(bytes=bytes(b)))"
    );
    let out = Command::new("python3").args(["-c", &code]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_writer_cannot_take_a_put_audit_events_event_id_in_advance() {
    let s = Server::start();
    let r = s.cloudtrail(
        ADMIN_KEY,
        ADMIN_SECRET,
        "CreateChannel",
        &json!({"Name": "shop", "Source": "Custom", "Destinations": [{"Type": "EVENT_DATA_STORE", "Location": "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/e1"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let channel = r.json()["ChannelArn"].as_str().unwrap().to_string();
    // The writer ingests a forged record under the id alice's event would have had.
    let guessed = predictable_event_id(&channel, "alice-1");
    let forged = api_call(&guessed, "2024-05-01T10:00:00Z", "Login", "mallory");
    assert_eq!(s.ingest(&forged)["stored"], 1);
    let data = json!({
        "version": "1.0", "userIdentity": {"type": "CustomUser", "principalId": "alice"},
        "eventSource": "shop.example.com", "eventName": "Login", "eventTime": "2024-05-01T10:00:00Z",
        "UID": "u-1", "recipientAccountId": ACCOUNT,
    })
    .to_string();
    let body = json!({"auditEvents": [{"id": "alice-1", "eventData": data}]}).to_string();
    let query = format!("/PutAuditEvents?channelArn={}", channel.replace(':', "%3A").replace('/', "%2F"));
    let r =
        s.signed(WRITER_KEY, WRITER_SECRET, "POST", &query, &[("content-type", "application/json")], body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let event_id = r.json()["successful"][0]["eventID"].as_str().unwrap().to_string();
    assert_ne!(event_id, guessed, "the eventID is not a public function of the channel and the id");
    // Alice's event is stored, under her eventID, from her channel.
    let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "GET", &format!("/v1/events/{event_id}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-opentrail-provenance"), Some(format!("channel:{channel}").as_str()));
    assert_eq!(r.json()["eventData"]["userIdentity"]["principalId"], "alice");
    // A retry gets the same eventID and stores nothing twice.
    let r =
        s.signed(WRITER_KEY, WRITER_SECRET, "POST", &query, &[("content-type", "application/json")], body.as_bytes());
    assert_eq!(r.json()["successful"][0]["eventID"], event_id.as_str());
    s.wait_caught_up();
    assert_eq!(s.lookup_all(&[("Provenance", &format!("channel:{channel}"))]).len(), 1);
}

#[test]
fn get_event_decodes_its_path_and_finds_what_was_just_acknowledged() {
    let s = Server::start();
    for id in ["with space", "100%", "a/b", "ünï"] {
        let body = api_call(id, "2021-01-01T00:00:00Z", "A", "u");
        assert_eq!(s.ingest(&body)["stored"], 1);
        // No wait: an acknowledged event is found by id at once.
        let path: String = id
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let r = s.signed(ADMIN_KEY, ADMIN_SECRET, "GET", &format!("/v1/events/{path}"), &[], b"");
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_eq!(r.json()["eventID"], id);
    }
}

/// A small tmpfs holding the data dir, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Appends to a filler file until the disk is full (again: a failed journal write gives back what it
    /// had written when it rolls back).
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.path().join("filler")).unwrap();
        let chunk = vec![7u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&chunk[..1]).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_refuses_calls_with_503_and_changes_nothing_until_space_returns() {
    let Some(disk) = SmallDisk::mount(24) else {
        // Mounting needs root (CI and the dev machines run as root); say so loudly instead of passing.
        assert!(!is_root(), "running as root but could not mount a tmpfs");
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let cfg = disk.path().join("opentrail.toml");
    std::fs::write(&cfg, config_toml("")).unwrap();
    // The data dir is the mount itself, so the server's log (beside it) is not on the disk that fills.
    let mut s = Server::spawn(disk.path(), Some(&cfg), "127.0.0.1:0");
    assert_eq!(s.ingest(&api_call("before", "2021-01-01T00:00:00Z", "A", "u"))["stored"], 1);
    disk.fill();
    // A call that changes state: refused, and the trail does not exist.
    let create =
        || s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "CreateTrail", &json!({"Name": "full", "S3BucketName": "b-1"}));
    let r = create();
    assert_eq!((r.status, r.code().as_str()), (503, "ServiceUnavailableException"), "{}", r.text());
    assert!(r.header("retry-after").is_some());
    disk.fill();
    // Reads are answered only when their record is written (fail-closed): the few that still fit in the
    // journal's last page are answered and recorded, then every one is refused.
    let (mut answered, mut refused) = (Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let h = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "CloudTrail_20131101.GetTrail")];
        let Some(r) = try_signed(&s.addr, ADMIN_KEY, ADMIN_SECRET, "POST", "/", &h, br#"{"Name":"full"}"#, now_secs())
        else {
            panic!("server gone: {}", s.stderr());
        };
        match r.status {
            503 => refused += 1,
            400 => answered.push(r.header("x-amzn-requestid").unwrap().to_string()),
            other => panic!("unexpected {other}: {}", r.text()),
        }
        // A batch far bigger than any slack left in the journal's last page.
        let batch: String =
            (0..200).map(|i| api_call(&format!("during-{i}"), "2021-01-01T00:00:01Z", "A", "u") + "\n").collect();
        let Some(r) =
            try_signed(&s.addr, ADMIN_KEY, ADMIN_SECRET, "POST", "/v1/events", &[], batch.as_bytes(), now_secs())
        else {
            panic!("server gone: {}", s.stderr());
        };
        assert_eq!(r.status, 503, "{}", r.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(refused > 5, "reads were refused while the disk was full ({refused} refused, {} answered)", answered.len());
    // Space returns: everything works again without operator action, and nothing of the refused calls
    // was applied.
    disk.free();
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "GetTrail", &json!({"Name": "full"}));
        if r.status != 503 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.code(), "TrailNotFoundException", "the refused CreateTrail changed nothing");
    assert_eq!(create().status, 200);
    s.wait_caught_up();
    assert_eq!(s.lookup_all(&[("EventName", "A")]).len(), 1, "only the event stored before the disk filled");
    // The trail state is staged on disk before the record is written: no record claims a change that was
    // not applied.
    assert_eq!(audited(&s, "CreateTrail").iter().filter(|r| r["errorCode"].is_null()).count(), 1);
    let recorded: Vec<String> =
        audited(&s, "GetTrail").iter().map(|r| r["requestID"].as_str().unwrap().to_string()).collect();
    for id in &answered {
        assert!(recorded.contains(id), "answered read {id} has no record");
    }
    let m = s.raw("GET", "/metrics", &[], b"").text();
    assert!(m.contains("opentrail_audit_records_total{outcome=\"refused\"}"), "{m}");
    assert!(!m.contains("outcome=\"lost\""), "no answered call lost its record:\n{m}");
    assert!(!m.contains("effect_failed_after_audit"), "{m}");
    s.stop();
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn fail_open_reads_answers_reads_but_never_writes_on_a_full_disk() {
    let Some(disk) = SmallDisk::mount(24) else {
        assert!(!is_root(), "running as root but could not mount a tmpfs");
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let cfg = disk.path().join("opentrail.toml");
    std::fs::write(&cfg, config_toml("[audit]\nfail_open_reads = true")).unwrap();
    let mut s = Server::spawn(disk.path(), Some(&cfg), "127.0.0.1:0");
    disk.fill();
    let create = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "CreateTrail", &json!({"Name": "open", "S3BucketName": "b-1"}));
    assert_eq!(create.status, 503, "writes stay fail-closed: {}", create.text());
    disk.fill();
    // Every read is answered; those whose record could not be written are counted.
    for _ in 0..20 {
        let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "ListTrails", &json!({}));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["Trails"], json!([]));
    }
    let m = s.raw("GET", "/metrics", &[], b"").text();
    assert!(m.contains("opentrail_audit_records_total{outcome=\"failed_open\"}"), "{m}");
    disk.free();
    s.stop();
}
