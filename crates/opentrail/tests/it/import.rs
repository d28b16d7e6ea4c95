//! Importing a CloudTrail history with `opentrail ingest`: an `AWSLogs/` tree of log files built by
//! `integrity::logfile` (with digests and other objects that must be skipped), in a real S3 server (moto) and
//! in a folder; the import killed with SIGKILL mid-way, the server killed under it, and each resumed from its
//! position: every record stored exactly once, the summaries adding up, a finished import sending nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use buckets::{Bucket, BucketTarget, S3Target};
use harness::MotoServer;
use integrity::layout::{LogFileKey, LogKind};
use integrity::logfile::LogFileBuilder;
use model::EventTime;

use crate::support::*;

/// The user every imported record is by.
const USER: &str = "importer";

/// A CloudTrail bucket's objects (key, bytes) and the eventIDs of the records in its log files.
struct Tree {
    objects: Vec<(String, Vec<u8>)>,
    ids: Vec<String>,
    log_files: usize,
}

/// `files` log files of `per_file` records each (five-minute files from 2020-01-01, keys as CloudTrail
/// writes them), plus two digests and a README that an import skips.
fn tree(files: usize, per_file: usize) -> Tree {
    let start_ms = 1_577_869_200_000i64;
    let mut objects = Vec::new();
    let mut ids = Vec::new();
    for f in 0..files {
        let delivered = EventTime(start_ms + f as i64 * 300_000);
        let mut b = LogFileBuilder::new();
        for r in 0..per_file {
            let id = format!("imp-{f:04}-{r:03}");
            let t = EventTime(delivered.0 - 60_000 + r as i64 * 10);
            let time = chrono::DateTime::from_timestamp_millis(t.0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            b.push(api_call(&id, &time, "GetUser", USER).as_bytes(), t);
            ids.push(id);
        }
        let key = LogFileKey {
            kind: LogKind::Events,
            prefix: None,
            account: ACCOUNT.to_string(),
            region: "us-east-1".to_string(),
            delivered,
            unique: format!("u{f:015}"),
        };
        objects.push((key.to_key(), b.finish().gzip));
    }
    for d in 1..=2 {
        let key = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2020/01/01/\
             {ACCOUNT}_CloudTrail-Digest_us-east-1_t_us-east-1_20200101T0{d}0000Z.json.gz"
        );
        objects.push((key, LogFileBuilder::new().finish().gzip));
    }
    objects.push((format!("AWSLogs/{ACCOUNT}/README.txt"), b"not a log file".to_vec()));
    Tree { objects, ids, log_files: files }
}

fn write_folder(root: &Path, tree: &Tree) {
    for (key, bytes) in &tree.objects {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn upload(moto: &MotoServer, bucket: &str, tree: &Tree) {
    let target = S3Target {
        endpoint: moto.endpoint.clone(),
        region: "us-east-1".into(),
        access_key_id: "moto".into(),
        secret_access_key: "moto-secret".into(),
        object_lock: None,
    };
    let b = Bucket::open(bucket, &BucketTarget::S3(target)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures::StreamExt as _;
        let puts = futures::stream::iter(&tree.objects)
            .map(|(k, v)| b.put_once(k, bytes::Bytes::from(v.clone()), &[]))
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        for p in puts {
            p.unwrap();
        }
        // Outside the prefix imported: never listed.
        b.put_once("elsewhere/x.json.gz", bytes::Bytes::from(tree.objects[0].1.clone()), &[]).await.unwrap();
    });
}

/// A server whose config and data dir outlive it (so it can be killed and started again on its address).
struct Restartable {
    tmp: tempfile::TempDir,
    server: Server,
}

impl Restartable {
    fn start() -> Restartable {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("opentrail.toml");
        std::fs::write(&cfg, config_toml("")).unwrap();
        let server = Server::spawn(&tmp.path().join("data"), Some(&cfg), "127.0.0.1:0");
        Restartable { tmp, server }
    }

    /// Starts it again, on the address it had, after `server.kill()`.
    fn restart(&mut self) {
        let addr = self.server.addr.clone();
        self.server =
            Server::spawn(&self.tmp.path().join("data"), Some(&self.tmp.path().join("opentrail.toml")), &addr);
    }
}

fn ingest(s: &Server, source: &str, state: &Path, extra: &[&str]) -> Command {
    let mut c = s.cli();
    c.arg("ingest").arg(source).arg("--state").arg(state).args(extra);
    c
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn run(c: Command) -> (bool, String) {
    finish(spawn(c))
}

/// The position file's object count (0 before it exists).
fn objects_done(state: &Path) -> u64 {
    std::fs::read(state)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["objects"].as_u64())
        .unwrap_or(0)
}

/// Waits until the position says at least `n` objects are done (the import is still running).
fn wait_for_position(state: &Path, n: u64, child: &mut Child) {
    let start = Instant::now();
    while objects_done(state) < n {
        assert!(child.try_wait().unwrap().is_none(), "the import ended before {n} objects were done");
        assert!(start.elapsed() < Duration::from_secs(60), "position stuck at {}", objects_done(state));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every imported record is stored exactly once.
fn assert_each_stored_once(s: &Server, ids: &[String]) {
    s.wait_caught_up();
    let mut found: Vec<String> =
        s.lookup_all(&[("Username", USER)]).iter().map(|e| e["EventId"].as_str().unwrap().to_string()).collect();
    found.sort();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(found.len(), want.len(), "stored {} records for {} sent", found.len(), want.len());
    assert_eq!(found, want);
}

/// The numbers of the summary line that starts with `prefix` ("" for the run's own): new, already stored,
/// failed, records, files.
fn summary(stderr: &str, prefix: &str) -> [u64; 5] {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(prefix) && l.contains(" new, ") && l.contains(" log files"))
        .unwrap_or_else(|| panic!("no summary {prefix:?} in: {stderr}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter(|t| !t.is_empty() && !t.contains('.'))
        .filter_map(|t| t.parse().ok())
        .collect();
    [nums[0], nums[1], nums[2], nums[3], nums[4]]
}

#[test]
fn an_s3_import_skips_digests_survives_kill_of_itself_and_of_the_server_and_stores_each_record_once() {
    let moto = MotoServer::start().unwrap();
    moto.create_bucket("history", false).unwrap();
    let t = tree(150, 8);
    upload(&moto, "history", &t);
    let mut s = Restartable::start();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("position.json");
    let source = "s3://history/AWSLogs/";
    let cmd = |s: &Server, extra: &[&str]| {
        let mut c = ingest(s, source, &state, &["--s3-endpoint", &moto.endpoint]);
        c.args(extra);
        c
    };
    // Paced, so the kills land mid-way: 1200 records at 150 a second take 8 s.
    let paced = ["--files-per-request", "1", "--max-events-per-second", "150"];

    // 1. The import itself is killed mid-way.
    let mut child = spawn(cmd(&s.server, &paced));
    wait_for_position(&state, 20, &mut child);
    child.kill().unwrap();
    let (_, err) = finish(child);
    let after_kill = objects_done(&state);
    assert!(after_kill < 150, "killed after the end: {err}");
    assert!(
        err.contains("150 log files to send") && err.contains("skipping 2 digest files and 1 other files"),
        "{err}"
    );

    // 2. Resumed; the server is killed under it: it stops, saying how to go on. (Had the server come back
    // at once, the import would not have noticed: it would have gone on.)
    let mut child = spawn(cmd(&s.server, &paced));
    wait_for_position(&state, after_kill + 20, &mut child);
    s.server.kill();
    let (ok, err) = finish(child);
    s.restart();
    assert!(!ok, "{err}");
    assert!(err.contains(&format!("resuming {source} after")), "{err}");
    assert!(err.contains("run the same command again to continue"), "{err}");
    assert!(objects_done(&state) < 150, "{err}");

    // 3. Resumed to the end.
    let (ok, err) = run(cmd(&s.server, &[]));
    assert!(ok, "{err}");
    let [new, dup, failed, records, files] = summary(&err, "in all: ");
    assert_eq!((failed, records, files), (0, t.ids.len() as u64, t.log_files as u64), "{err}");
    assert_eq!(new + dup, records, "{err}");
    assert_each_stored_once(&s.server, &t.ids);

    // 4. Finished: nothing is sent again; --restart sends everything and nothing is stored twice.
    let (ok, err) = run(cmd(&s.server, &[]));
    assert!(ok, "{err}");
    assert!(err.contains("0 log files to send") && err.contains("this import is done"), "{err}");
    let (ok, err) = run(cmd(&s.server, &["--restart"]));
    assert!(ok, "{err}");
    assert_eq!(summary(&err, ""), [0, t.ids.len() as u64, 0, t.ids.len() as u64, t.log_files as u64], "{err}");
    assert_each_stored_once(&s.server, &t.ids);
    s.server.assert_no_errors_logged();
}

#[test]
fn a_folder_import_resumes_after_a_kill_and_sends_many_log_files_per_request() {
    let t = tree(120, 5);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bucket");
    write_folder(&root, &t);
    std::fs::write(root.join(".hidden.json.gz"), b"x").unwrap();
    let s = Restartable::start();
    let state = tmp.path().join("position.json");
    let source = root.to_str().unwrap();
    let paced = ["--files-per-request", "1", "--max-events-per-second", "100"];
    let mut child = spawn(ingest(&s.server, source, &state, &paced));
    wait_for_position(&state, 15, &mut child);
    child.kill().unwrap();
    finish(child);
    // The rest in requests of many files each.
    let (ok, err) = run(ingest(&s.server, source, &state, &[]));
    assert!(ok, "{err}");
    assert!(err.contains("skipping 2 digest files and 2 other files"), "{err}");
    let run = summary(&err, "");
    let all = summary(&err, "in all: ");
    assert!(run[4] < 120 && all[4] == 120 && all[3] == t.ids.len() as u64 && all[2] == 0, "{err}");
    assert_each_stored_once(&s.server, &t.ids);
    // A request per 1000 files at most: the rest of the import took a handful of requests, not one each.
    let puts = s.server.lookup_all(&[("EventName", "PutEvents")]).len();
    assert!(puts < 40, "{puts} ingest requests");
}

#[test]
fn unreadable_log_files_and_refused_records_are_named_and_the_rest_is_imported() {
    let t = tree(4, 3);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bucket");
    write_folder(&root, &t);
    let logs: Vec<PathBuf> = t.objects[..4].iter().map(|(k, _)| root.join(k)).collect();
    // The second log file is not gzip inside; the third holds a record without an eventTime.
    let mut broken = std::fs::read(&logs[1]).unwrap();
    broken.truncate(broken.len() / 2);
    std::fs::write(&logs[1], &broken).unwrap();
    let bad = r#"{"eventID":"no-time","eventSource":"iam.amazonaws.com","eventName":"GetUser"}"#;
    let mut b = LogFileBuilder::new();
    b.push(bad.as_bytes(), EventTime(0));
    b.push(api_call("imp-extra", "2020-01-01T09:00:00Z", "GetUser", USER).as_bytes(), EventTime(0));
    std::fs::write(&logs[2], b.finish().gzip).unwrap();
    let s = Server::start();
    let state = tmp.path().join("position.json");
    let (ok, err) = run(ingest(&s, root.to_str().unwrap(), &state, &[]));
    assert!(!ok, "{err}");
    let key = |i: usize| t.objects[i].0.clone();
    assert!(err.contains(&format!("{}: not valid gzip", key(1))), "{err}");
    assert!(err.contains(&format!("{}: record 1: ", key(2))), "{err}");
    assert!(err.contains("1 log files could not be read"), "{err}");
    let mut want: Vec<String> =
        t.ids.iter().filter(|id| id.starts_with("imp-0000") || id.starts_with("imp-0003")).cloned().collect();
    want.push("imp-extra".into());
    assert_each_stored_once(&s, &want);
    let position: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(position["failed_objects"][0]["key"], key(1));
    assert_eq!(position["done_through"], key(3));
}

#[test]
fn ctrl_c_finishes_the_requests_in_flight_saves_the_position_and_a_rerun_goes_on() {
    let t = tree(60, 5);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bucket");
    write_folder(&root, &t);
    let s = Server::start();
    let state = tmp.path().join("position.json");
    let source = root.to_str().unwrap();
    let paced = ["--files-per-request", "1", "--max-events-per-second", "50"];
    let mut child = spawn(ingest(&s, source, &state, &paced));
    wait_for_position(&state, 5, &mut child);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let (ok, err) = finish(child);
    assert!(!ok, "{err}");
    assert!(err.contains("interrupted: finishing the requests in flight"), "{err}");
    let stopped = summary(&err, "")[4];
    // Everything the run counted is in the saved position: nothing acknowledged is left out of it.
    assert_eq!(objects_done(&state), stopped, "{err}");
    assert!(stopped < 60 && err.contains(&format!("stopped after {stopped} of 60 log files")), "{err}");
    let (ok, err) = run(ingest(&s, source, &state, &[]));
    assert!(ok, "{err}");
    let all = summary(&err, "in all: ");
    assert_eq!(all, [t.ids.len() as u64, 0, 0, t.ids.len() as u64, 60], "{err}");
    assert_each_stored_once(&s, &t.ids);
}
