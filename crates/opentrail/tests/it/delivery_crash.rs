//! Crash tests of trail delivery: the real server SIGKILLed again and again while a client ingests and a
//! trail delivers every second to a local folder, restarted on the same data dir each time; and the two
//! windows a crash can leave, provoked deterministically: objects uploaded whose state write never happened
//! (re-uploaded: the key exists, the bytes are compared, counted delivered) and an outbox file no state names
//! (a cut whose state write never happened: deleted, never delivered). Afterwards every acknowledged event is
//! in exactly one log file, every log file in a digest, and `aws cloudtrail validate-logs` (through
//! opentrail's own S3 API) finds the whole chain valid.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::delivered::*;
use crate::support::*;

/// Hard-coded: kill/restart cycles of the random test (each a second or two of ingest and delivery).
const CYCLES: usize = 6;

/// The trail's delivery state as the server last wrote it.
fn state(data: &Path, trail: &str) -> Value {
    let path = data.join("delivery").join(trail).join("state.json");
    std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null)
}

/// Keys of the objects in a local bucket (see `delivered::local_keys`).
fn keys_in(root: &Path) -> BTreeSet<String> {
    local_keys(root).into_iter().collect()
}

/// What the last crash left, from the state file and the folders: objects in the bucket the state still
/// has to upload, and outbox files the state does not name.
fn crash_windows(data: &Path, trail: &str, bucket: &Path) -> (usize, usize) {
    let st = state(data, trail);
    let outbox = st["outbox"].as_array().cloned().unwrap_or_default();
    let in_bucket = keys_in(bucket);
    let uploaded = outbox.iter().filter(|o| in_bucket.contains(o["key"].as_str().unwrap_or(""))).count();
    let named: BTreeSet<&str> = outbox.iter().filter_map(|o| o["file"].as_str()).collect();
    let orphans = std::fs::read_dir(data.join("delivery").join(trail).join("outbox"))
        .map(|d| d.flatten().filter(|e| !named.contains(e.file_name().to_string_lossy().as_ref())).count())
        .unwrap_or(0);
    (uploaded, orphans)
}

/// Stops logging and waits until the state says the final digest is written and everything is delivered.
fn stop_and_drain(s: &Server, data: &Path, trail: &str) {
    call(s, "StopLogging", json!({"Name": trail}));
    wait_until("the final digest delivered", Duration::from_secs(30), || {
        let st = state(data, trail);
        let done = st["finalized"] == true && st["outbox"].as_array().is_some_and(Vec::is_empty);
        if done { Ok(()) } else { Err(format!("outbox {}, finalized {}", st["outbox"], st["finalized"])) }
    });
}

/// Everything in the bucket is in order: the layout, no event twice, every `must` event there, every log
/// file in a digest, validate-logs (through opentrail's S3 API) valid over every digest and log file.
fn assert_delivered_exactly_once(s: &Server, bucket: &Path, trail: &str, must: &BTreeSet<String>) -> Delivered {
    let d = read_folder(bucket, trail, "crash-logs");
    d.assert_layout(trail);
    d.assert_nothing_doubled(trail);
    let counts = d.event_counts();
    let lost: Vec<_> = must.iter().filter(|id| !counts.contains_key(*id)).collect();
    assert!(lost.is_empty(), "acknowledged events never delivered: {lost:?}");
    assert!(d.undigested().is_empty(), "log files no digest lists: {:?}", d.undigested());
    let out = validate_logs(s, trail, &s.endpoint);
    assert_all_valid(&out, 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let n = d.logs.len();
    assert!(stdout.contains(&format!("{n}/{n} log files valid")), "{n} log files in the bucket:\n{stdout}");
    d
}

#[test]
fn trail_delivery_survives_sigkill_again_and_again_without_losing_or_doubling_an_event() {
    let mut rng = Lcg::from_clock("delivery crash test");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, config_toml("[delivery]\ninterval = \"1s\"\ndigest_interval = \"2s\"\n")).unwrap();
    let data = tmp.path().join("data");
    let bucket = data.join("buckets").join("crash-logs");
    let trail = "crashy";
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut unanswered: Vec<Batch> = Vec::new();
    let (mut uploaded_unrecorded, mut orphans) = (0, 0);

    for cycle in 0..CYCLES {
        let mut server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
        if cycle == 0 {
            call(
                &server,
                "CreateTrail",
                json!({"Name": trail, "S3BucketName": "crash-logs", "EnableLogFileValidation": true}),
            );
            call(&server, "StartLogging", json!({"Name": trail}));
        }
        for (ids, body) in unanswered.drain(..) {
            server.ingest(&body);
            acked.lock().unwrap().extend(ids);
        }
        let addr = server.addr.clone();
        let pending: Arc<Mutex<Option<Batch>>> = Arc::default();
        let ingester = spawn_ingester(addr, acked.clone(), pending.clone(), Duration::from_millis(20), move |n| {
            events(&format!("dc-{cycle}-{n}"), 1 + n % 20)
        });
        if cycle % 2 == 0 {
            // A random moment: mid-cut, mid-upload, mid-digest or in between.
            std::thread::sleep(Duration::from_millis(300 + rng.next(2200)));
        } else {
            // Right after a new object lands in the bucket: most likely before the state write that records it.
            let before = keys_in(&bucket).len();
            let start = Instant::now();
            while keys_in(&bucket).len() == before && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        server.kill();
        ingester.join().unwrap();
        if let Some(b) = pending.lock().unwrap().take() {
            unanswered.push(b);
        }
        let (u, o) = crash_windows(&data, trail, &bucket);
        uploaded_unrecorded += u;
        orphans += o;
    }
    eprintln!("crashes left {uploaded_unrecorded} uploaded objects unrecorded and {orphans} unnamed outbox files");

    let server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    for (ids, body) in unanswered.drain(..) {
        server.ingest(&body);
        acked.lock().unwrap().extend(ids);
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "the test ingested something: {}", acked.len());
    wait_until("every acknowledged event delivered", Duration::from_secs(30), || {
        let counts = read_folder(&bucket, trail, "crash-logs").event_counts();
        let missing = acked.iter().filter(|id| !counts.contains_key(*id)).count();
        if missing == 0 { Ok(()) } else { Err(format!("{missing} missing")) }
    });
    stop_and_drain(&server, &data, trail);
    let d = assert_delivered_exactly_once(&server, &bucket, trail, &acked);
    assert!(d.digests.len() >= 2, "a chain: {} digests", d.digests.len());
    let status = call(&server, "GetTrailStatus", json!({"Name": trail}));
    assert!(status.get("LatestDeliveryError").is_none(), "{status}");
    server.assert_no_errors_logged();
    let mut server = server;
    server.stop();
    check_offline(&data);
}

/// Copies a folder tree (files and folders only).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_crash_after_the_upload_or_before_the_cut_is_recorded_delivers_each_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (held, cfg) = held_bucket(tmp.path(), "crash-logs", "interval = \"1s\"\n");
    let data = tmp.path().join("data");
    let trail = "held-back";
    let trail_dir = data.join("delivery").join(trail);

    // 1. Events staged while the bucket is unusable; every record in the journal is in a staged file.
    let mut server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    call(&server, "CreateTrail", json!({"Name": trail, "S3BucketName": "crash-logs", "EnableLogFileValidation": true}));
    call(&server, "StartLogging", json!({"Name": trail}));
    let (ids, body) = events("held", 20);
    server.ingest(&body);
    let durable = || -> u64 { server.raw("GET", "/healthz", &[], b"").json()["durableSeq"].as_u64().unwrap() };
    let through = durable();
    let staged = wait_until("the events staged and their upload failing", Duration::from_secs(30), || {
        let st = state(&data, trail);
        let logs = st["outbox"].as_array().map_or(0, |o| o.iter().filter(|i| i["kind"] == "Log").count());
        let failing = st["status"]["latest_delivery_error"].as_str().is_some_and(|e| e.contains("crash-logs"));
        if st["checkpoint"].as_u64() >= Some(through) && logs > 0 && failing {
            Ok(st)
        } else {
            Err(format!("checkpoint {} of {through}, outbox {}", st["checkpoint"], st["outbox"]))
        }
    });
    assert_eq!(durable(), through, "nothing else was recorded (/healthz is not audited)");
    server.kill();
    let staged_keys: BTreeSet<String> =
        staged["outbox"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap().to_string()).collect();

    // The state as it is now: what a crash right after the uploads below (before their state write) leaves.
    // Plus an outbox file no state names: a cut whose state write never happened (its records are real).
    let snap = tmp.path().join("snapshot");
    copy_tree(&trail_dir, &snap);
    let first = staged["outbox"][0]["file"].as_str().unwrap();
    let unnamed = format!("{:012}.json.gz", staged["next_staged"].as_u64().unwrap());
    std::fs::copy(snap.join("outbox").join(first), snap.join("outbox").join(&unnamed)).unwrap();

    // 2. The bucket works again: the outbox is delivered (no API call: nothing new to cut); then a crash.
    std::fs::remove_file(&held).unwrap();
    let mut server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    wait_until("the staged objects delivered", Duration::from_secs(30), || {
        let missing: Vec<_> = staged_keys.difference(&keys_in(&held)).cloned().collect();
        let empty = state(&data, trail)["outbox"].as_array().is_some_and(Vec::is_empty);
        if missing.is_empty() && empty { Ok(()) } else { Err(format!("missing {missing:?}")) }
    });
    server.kill();
    let delivered_once = keys_in(&held);
    assert_eq!(delivered_once.len(), staged_keys.len(), "only the staged objects: {delivered_once:?}");

    // 3. Restart from the state before the uploads were recorded, with the unnamed outbox file.
    std::fs::remove_dir_all(&trail_dir).unwrap();
    copy_tree(&snap, &trail_dir);
    let server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    wait_until("the re-uploads counted delivered", Duration::from_secs(30), || {
        let st = state(&data, trail);
        let empty = st["outbox"].as_array().is_some_and(Vec::is_empty);
        if empty { Ok(()) } else { Err(format!("outbox {}", st["outbox"])) }
    });
    assert!(!trail_dir.join("outbox").join(&unnamed).exists(), "the unnamed outbox file is deleted");
    assert_eq!(keys_in(&held), delivered_once, "no object was written twice or added");
    let st = state(&data, trail);
    assert_eq!(st["status"]["latest_delivery_error"], Value::Null, "{}", st["status"]);
    let pending: BTreeSet<String> = st["regions"]["us-east-1"]["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pending, staged_keys, "the re-uploaded files wait for the next digest");

    // Then the trail goes on as usual; its final digest lists every file, each event once.
    stop_and_drain(&server, &data, trail);
    let must: BTreeSet<String> = ids.into_iter().collect();
    let d = read_folder(&held, trail, "crash-logs");
    assert!(d.logs.len() >= staged_keys.len());
    assert_delivered_exactly_once(&server, &held, trail, &must);
    server.assert_no_errors_logged();
    let mut server = server;
    server.stop();
    check_offline(&data);
}

#[test]
fn a_trail_deleted_while_its_files_wait_is_finished_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (held, cfg) = held_bucket(tmp.path(), "gone-logs", "interval = \"1s\"\ndigest_interval = \"2s\"\n");
    let data = tmp.path().join("data");
    let trail = "gone";
    let mut server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    call(&server, "CreateTrail", json!({"Name": trail, "S3BucketName": "gone-logs", "EnableLogFileValidation": true}));
    call(&server, "StartLogging", json!({"Name": trail}));
    let (ids, body) = events("gone", 25);
    server.ingest(&body);
    wait_until("the events staged and their upload failing", Duration::from_secs(30), || {
        let st = state(&data, trail);
        let staged: usize = st["outbox"].as_array().map_or(0, |o| {
            o.iter().filter(|i| i["kind"] == "Log").map(|i| i["records"].as_u64().unwrap() as usize).sum()
        });
        let failing = st["status"]["latest_delivery_error"].as_str().is_some_and(|e| e.contains("gone-logs"));
        if staged >= ids.len() && failing { Ok(()) } else { Err(format!("outbox {}", st["outbox"])) }
    });
    // Deleted while its files wait; the server stops before the bucket comes back.
    call(&server, "DeleteTrail", json!({"Name": trail}));
    std::thread::sleep(Duration::from_millis(500));
    server.stop();
    assert!(data.join("delivery").join(trail).join("state.json").exists(), "unfinished: the state stays");

    // The bucket works again and the server starts without the trail: its delivery finishes all the same.
    std::fs::remove_file(&held).unwrap();
    let server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    wait_until("the deleted trail's delivery finished and its state gone", Duration::from_secs(30), || {
        if data.join("delivery").join(trail).exists() { Err(format!("state {}", state(&data, trail))) } else { Ok(()) }
    });
    let d = read_folder(&held, trail, "gone-logs");
    d.assert_layout(trail);
    let got: BTreeSet<String> = d.event_counts().into_iter().filter(|(_, n)| *n == 1).map(|(id, _)| id).collect();
    for id in &ids {
        assert!(got.contains(id), "{id} not delivered exactly once: {:?}", d.event_counts().get(id));
    }
    assert!(!d.digests.is_empty(), "a final digest closes the chain");
    // The trail is gone from DescribeTrails: the aws CLI is told its bucket.
    let out = validate_logs_with(&server, trail, &server.endpoint, &["--s3-bucket", "gone-logs"]);
    assert_all_valid(&out, 1);
    server.assert_no_errors_logged();
}

/// A local bucket `name` whose folder cannot be created while a file `<dir>/held` is in its place, so every
/// upload fails until the test removes that file; and a config naming it, with `delivery` as the
/// `[delivery]` section's lines. Returns (the file in the folder's place, the config file).
fn held_bucket(dir: &Path, name: &str, delivery: &str) -> (PathBuf, PathBuf) {
    let held = dir.join("held");
    std::fs::write(&held, b"not a folder").unwrap();
    let cfg = dir.join("c.toml");
    let toml = format!("[delivery]\n{delivery}[buckets.{name}]\npath = {:?}\n", held.display().to_string());
    std::fs::write(&cfg, config_toml(&toml)).unwrap();
    (held, cfg)
}
