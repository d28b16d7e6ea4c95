//! The CLI as an operator and an investigator use it: `opentrail lookup`'s truncation notice, relative and
//! epoch times, outputs, a closed pipe, its own footprint (user agent, own reads left out, one audit record
//! per page of 1000); `opentrail ingest DIR` over a CloudTrail-shaped tree with digests in it; and the
//! server's hygiene: file modes, the generated secret shown once, a busy port, one log line per request.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::*;

/// `count` IAM calls `c-0000`, `c-0001`, … a second apart from `start` (epoch seconds), as NDJSON.
fn calls(prefix: &str, count: usize, start: i64) -> String {
    (0..count)
        .map(|i| {
            let t = chrono::DateTime::from_timestamp(start + i as i64, 0).unwrap();
            api_call(&format!("{prefix}-{i:04}"), &t.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "GetUser", "alice")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(c: &mut Command) -> (bool, String, String) {
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The eventIDs of `opentrail lookup --output json` lines.
fn ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["eventID"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lookup_says_when_max_cuts_the_result_and_how_to_see_more() {
    let s = Server::start();
    s.ingest(&calls("c", 5, 1_577_869_200));
    s.wait_caught_up();
    let attr = ["lookup", "--attr", "Username=alice", "--output", "json"];
    let (ok, out, err) = run(s.cli().args(attr).args(["--max", "3"]));
    assert!(ok, "{err}");
    assert_eq!(ids(&out), vec!["c-0004", "c-0003", "c-0002"]);
    assert!(err.contains("showing the first 3 events") && err.contains("--max N") && err.contains("--all"), "{err}");
    let (ok, out, err) = run(s.cli().args(attr).args(["--max", "5"]));
    assert!(ok && ids(&out).len() == 5, "{err}");
    assert!(!err.contains("showing the first"), "nothing was cut: {err}");
    let (ok, out, err) = run(s.cli().args(attr).arg("--all"));
    assert!(ok && ids(&out).len() == 5 && !err.contains("showing"), "{err}");
    let (ok, out, err) = run(s.cli().args(attr).args(["--max", &u64::MAX.to_string()]));
    assert!(ok && ids(&out).len() == 5, "{err}");
    let (ok, _, err) = run(s.cli().args(attr).args(["--max", "0"]));
    assert!(!ok && err.contains("--max"), "{err}");
    let (ok, _, err) = run(s.cli().args(attr).args(["--all", "--max", "2"]));
    assert!(!ok && err.contains("--all"), "{err}");
}

#[test]
fn since_and_until_take_durations_and_start_takes_epoch_milliseconds() {
    let s = Server::start();
    let now = now_secs();
    s.ingest(&calls("old", 2, now - 3 * 3600));
    s.ingest(&calls("new", 2, now - 600));
    s.wait_caught_up();
    let lookup = |extra: &[&str]| {
        let (ok, out, err) = run(s.cli().args(["lookup", "--attr", "Username=alice", "--output", "json"]).args(extra));
        assert!(ok, "{err}");
        ids(&out)
    };
    assert_eq!(lookup(&["--since", "1h"]), vec!["new-0001", "new-0000"]);
    assert_eq!(lookup(&["--until", "2h"]), vec!["old-0001", "old-0000"]);
    assert_eq!(lookup(&["--since", "4h", "--until", "30m"]), vec!["old-0001", "old-0000"]);
    let ms = ((now - 3600) * 1000).to_string();
    assert_eq!(lookup(&["--start", &ms]), vec!["new-0001", "new-0000"]);
    let (ok, _, err) = run(s.cli().args(["lookup", "--since", "soon"]));
    assert!(!ok && err.contains("soon") && err.contains("--start/--since"), "{err}");
    let (ok, _, err) = run(s.cli().args(["lookup", "--since", "1h", "--start", "1577869200"]));
    assert!(!ok && err.contains("--since"), "{err}");
}

#[test]
fn outputs_are_table_json_and_quoted_csv() {
    let s = Server::start();
    s.ingest(SEED);
    s.wait_caught_up();
    let attr = ["lookup", "--attr", "EventName=CreateUser"];
    let (ok, table, err) = run(s.cli().args(attr).args(["--output", "table"]).env("COLUMNS", "100"));
    assert!(ok, "{err}");
    assert!(table.starts_with("TIME") && table.contains("CreateUser"), "{table}");
    assert!(table.lines().all(|l| l.chars().count() <= 100), "fits COLUMNS: {table}");
    let (_, wide, _) = run(s.cli().args(attr).env_remove("COLUMNS"));
    assert!(wide.contains("arn:aws:iam::123456789012:user/John"), "not a terminal: nothing cut: {wide}");
    let (ok, json, _) = run(s.cli().args(attr).args(["--output", "json"]));
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(json.trim()).unwrap()["eventID"],
        "3b5f2f5e-8c1d-4f7e-9a2b-1c2d3e4f5a6b"
    );
    let (ok, text, _) = run(s.cli().args(attr).args(["--output", "csv"]));
    assert!(ok);
    let mut csv = csv::Reader::from_reader(text.as_bytes());
    let headers = csv.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    let get = |name: &str| rows[0].get(headers.iter().position(|h| h == name).unwrap()).unwrap().to_string();
    assert_eq!(get("eventName"), "CreateUser");
    assert_eq!(get("eventTime"), "2020-01-01T09:00:00Z");
    assert_eq!(get("requestParameters"), r#"{"userName":"Mary"}"#, "a JSON value with quotes survives CSV");
    assert_eq!(get("userArn"), "arn:aws:iam::123456789012:user/John");
}

/// Spawns `cmd` with stdout piped, reads one line, closes the pipe, and checks it ends with status 0 and no
/// panic on stderr.
fn closes_quietly(mut cmd: Command, what: &str) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(!line.is_empty(), "{what}: no output");
    drop(stdout);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{what}: {status:?}: {err}");
    assert!(!err.contains("panicked") && !err.contains("Broken pipe") && !err.contains("error"), "{what}: {err}");
}

#[test]
fn a_closed_pipe_ends_every_printing_subcommand_quietly() {
    let s = Server::start();
    // More than a pipe buffer (64 KiB) of output, so the writer meets the closed pipe.
    for n in 0..3 {
        s.ingest(&calls(&format!("p{n}"), 1000, 1_577_869_200 + n * 1000));
    }
    s.wait_caught_up();
    for output in ["json", "table", "csv"] {
        let mut c = s.cli();
        c.args(["lookup", "--all", "--output", output]);
        closes_quietly(c, &format!("lookup --output {output}"));
    }
    let mut generate = Command::new(bin());
    generate.args(["gen", "--events", "100000"]);
    closes_quietly(generate, "gen");
}

#[test]
fn the_cli_names_itself_and_leaves_its_own_reads_out_unless_asked() {
    let s = Server::start();
    s.ingest(SEED);
    s.wait_caught_up();
    for _ in 0..2 {
        let (ok, _, err) = run(s.cli().args(["lookup", "--output", "json"]));
        assert!(ok, "{err}");
    }
    // Someone else's lookup is not opentrail's own read.
    let aws =
        s.aws(AUDITOR_KEY, AUDITOR_SECRET).args(["cloudtrail", "lookup-events", "--max-items", "1"]).output().unwrap();
    assert!(aws.status.success(), "{}", String::from_utf8_lossy(&aws.stderr));
    s.wait_caught_up();
    // The records are written and found through the API, with opentrail's user agent.
    let own: Vec<serde_json::Value> = s
        .lookup_all(&[("EventName", "LookupEvents")])
        .into_iter()
        .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .filter(|r: &serde_json::Value| r["eventSource"] == "opentrail")
        .collect();
    assert_eq!(own.len(), 2, "{own:?}");
    let ua = own[0]["userAgent"].as_str().unwrap();
    assert_eq!(ua, format!("opentrail/{}", env!("CARGO_PKG_VERSION")), "not the HTTP library's");
    assert_eq!(own[0]["userIdentity"]["userName"], "John");
    let lookup = |extra: &[&str]| {
        let (ok, out, err) = run(s.cli().args(["lookup", "--output", "json", "--all"]).args(extra));
        assert!(ok, "{err}");
        let records: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (records, err)
    };
    let is_own = |r: &serde_json::Value| {
        r["eventName"] == "LookupEvents" && r["userAgent"].as_str().is_some_and(|u| u.starts_with("opentrail/"))
    };
    let (hidden, err) = lookup(&[]);
    assert!(!hidden.iter().any(is_own), "own reads are left out by default");
    assert!(err.contains("--include-own-reads"), "{err}");
    assert!(hidden.iter().any(|r| r["eventID"] == "3b5f2f5e-8c1d-4f7e-9a2b-1c2d3e4f5a6b"));
    assert!(
        hidden.iter().any(|r| r["eventName"] == "LookupEvents" && r["userIdentity"]["userName"] == "Audrey"),
        "the aws CLI's lookup is shown"
    );
    let (shown, _) = lookup(&["--include-own-reads"]);
    assert!(shown.iter().filter(|r| is_own(r)).count() >= 3, "the two lookups and the last one");
}

#[test]
fn paging_a_long_history_writes_one_audit_record_per_thousand_events() {
    let s = Server::start();
    s.ingest(&calls("a", 1000, 1_577_869_200));
    s.ingest(&calls("b", 1000, 1_577_870_200));
    s.ingest(&calls("c", 500, 1_577_871_200));
    s.wait_caught_up();
    let (ok, out, err) = run(s.cli().args(["lookup", "--attr", "Username=alice", "--all", "--output", "json"]));
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2500);
    s.wait_caught_up();
    let pages =
        s.lookup_all(&[("EventName", "LookupEvents")]).into_iter().filter(|e| e["EventSource"] == "opentrail").count();
    assert_eq!(pages, 3, "1000 + 1000 + 500");
}

/// A gzip'd `{"Records":[…]}` CloudTrail log file.
fn gz_log(records: &[String]) -> Vec<u8> {
    let doc = format!("{{\"Records\":[{}]}}", records.join(","));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(doc.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn ingest_walks_an_awslogs_tree_skips_digests_and_stores_nothing_twice() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("AWSLogs");
    let day = |kind: &str, d: u32| root.join(format!("{ACCOUNT}/{kind}/us-east-1/2020/01/{d:02}"));
    let records: Vec<String> = (0..30)
        .map(|i| {
            api_call(&format!("t-{i:03}"), &format!("2020-01-0{}T09:00:{:02}Z", 1 + i / 10, i % 60), "GetUser", "tree")
        })
        .collect();
    for d in 1..=3u32 {
        std::fs::create_dir_all(day("CloudTrail", d)).unwrap();
        std::fs::create_dir_all(day("CloudTrail-Digest", d)).unwrap();
        let part = &records[(d as usize - 1) * 10..d as usize * 10];
        let name = format!("{ACCOUNT}_CloudTrail_us-east-1_202001{d:02}T0900Z_abc{d}");
        if d == 2 {
            // A plain one too.
            std::fs::write(
                day("CloudTrail", d).join(format!("{name}.json")),
                format!("{{\"Records\":[{}]}}", part.join(",")),
            )
            .unwrap();
        } else {
            std::fs::write(day("CloudTrail", d).join(format!("{name}.json.gz")), gz_log(part)).unwrap();
        }
        let digest = format!("{ACCOUNT}_CloudTrail-Digest_us-east-1_t_us-east-1_202001{d:02}T100000Z.json.gz");
        std::fs::write(day("CloudTrail-Digest", d).join(digest), gz_log(&[])).unwrap();
    }
    std::fs::write(root.join("README.txt"), "not a log").unwrap();
    let state = tmp.path().join("position.json");
    let ingest = |extra: &[&str]| run(s.cli().arg("ingest").arg(&root).arg("--state").arg(&state).args(extra));
    let (ok, _, err) = ingest(&[]);
    assert!(ok, "{err}");
    assert!(err.contains("skipping 3 digest files and 1 other files"), "{err}");
    assert!(err.contains("30 new, 0 already stored"), "{err}");
    // The import is done: a re-run sends nothing; --restart sends everything, and nothing is stored twice.
    let (ok, _, err) = ingest(&[]);
    assert!(ok && err.contains("0 log files to send"), "{err}");
    let (ok, _, err) = ingest(&["--restart"]);
    assert!(ok, "{err}");
    assert!(err.contains("0 new, 30 already stored"), "{err}");
    s.wait_caught_up();
    assert_eq!(s.lookup_all(&[("Username", "tree")]).len(), 30);
}

/// Every file under `dir` is private to its owner (no group or other bits), every folder 0700.
fn assert_private(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            assert_private(&path);
        } else {
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        }
    }
}

#[test]
fn the_data_dir_and_everything_in_it_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut s = Server::spawn(&data, None, "127.0.0.1:0");
    let text = std::fs::read_to_string(data.join("credentials")).unwrap();
    let key = text.lines().find_map(|l| l.strip_prefix("aws_access_key_id = ")).unwrap().to_string();
    let secret = text.lines().find_map(|l| l.strip_prefix("aws_secret_access_key = ")).unwrap().to_string();
    let r = s.signed(&key, &secret, "POST", "/v1/events", &[], calls("m", 50, 1_577_869_200).as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    s.wait_caught_up();
    s.stop();
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    assert_private(&data);
    // The journal and the index are there to be checked.
    assert!(std::fs::read_dir(&data).unwrap().count() >= 3);
}

/// Starts `opentrail serve` with its stderr on a new pseudo-terminal; returns what it wrote there by the
/// time it stopped (SIGTERM once listening).
fn serve_on_a_terminal(data: &Path) -> String {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two fds into the ints given; the other arguments may be null.
    let rc =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty");
    use std::os::fd::FromRawFd;
    // SAFETY: both fds were just opened and are owned here only.
    let (master, slave) = unsafe { (std::fs::File::from_raw_fd(master), std::os::fd::OwnedFd::from_raw_fd(slave)) };
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        // Ends with EIO once the server, the last holder of the terminal, exits.
        let _ = BufReader::new(master).read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("opentrail listening on"), "{line}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn the_generated_secret_is_shown_once_on_the_first_start_and_only_to_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = serve_on_a_terminal(&data);
    let text = std::fs::read_to_string(data.join("credentials")).unwrap();
    let secret = text.lines().find_map(|l| l.strip_prefix("aws_secret_access_key = ")).unwrap().to_string();
    assert!(first.contains(&format!("AWS_SECRET_ACCESS_KEY={secret}")), "first start shows it: {first}");
    let second = serve_on_a_terminal(&data);
    assert!(second.contains("using the admin key"), "{second}");
    assert!(!second.contains(&secret), "a later start never shows it: {second}");
    // Not a terminal (a log collector): the first start does not show it either.
    let other = tmp.path().join("other");
    let s = Server::spawn(&other, None, "127.0.0.1:0");
    let text = std::fs::read_to_string(other.join("credentials")).unwrap();
    let secret = text.lines().find_map(|l| l.strip_prefix("aws_secret_access_key = ")).unwrap().to_string();
    assert!(!s.stderr().contains(&secret), "{}", s.stderr());
    assert!(s.stderr().contains("not printed"), "{}", s.stderr());
}

#[test]
fn a_busy_port_fails_the_start_before_the_data_dir_is_created() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fresh");
    let out = Command::new(bin())
        .args(["serve", "--listen", &s.addr, "--data-dir"])
        .arg(&data)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("listen on {}", s.addr)), "{err}");
    assert!(!data.exists(), "nothing created: {:?}", std::fs::read_dir(&data).map(|d| d.count()));
}

/// A server on a fresh data dir, its stderr in a file and nothing telling it about colours (the harness sets
/// NO_COLOR); returns the child, its address, and the log file.
fn serve_plain(tmp: &Path) -> (std::process::Child, String, PathBuf) {
    let log = tmp.join("stderr.log");
    std::fs::write(tmp.join("opentrail.toml"), config_toml("")).unwrap();
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.join("data"))
        .arg("--config")
        .arg(tmp.join("opentrail.toml"))
        .env_remove("NO_COLOR")
        .env_remove("OPENTRAIL_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("opentrail listening on http://").unwrap().to_string();
    (child, addr, log)
}

#[test]
fn each_request_is_one_plain_log_line_at_info() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, addr, log) = serve_plain(tmp.path());
    let endpoint = format!("http://{addr}");
    let cli = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("OPENTRAIL_ENDPOINT", &endpoint)
            .env("AWS_ACCESS_KEY_ID", ADMIN_KEY)
            .env("AWS_SECRET_ACCESS_KEY", ADMIN_SECRET)
            .output()
            .unwrap()
    };
    assert!(cli(&["lookup"]).status.success());
    let denied = Command::new(bin())
        .args(["lookup"])
        .env("OPENTRAIL_ENDPOINT", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIANOBODY0000000000")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .output()
        .unwrap();
    assert!(!denied.status.success());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "no colour codes into a file: {text}");
    let requests: Vec<&str> = text.lines().filter(|l| l.contains(" INFO ") && l.contains("request")).collect();
    assert_eq!(requests.len(), 2, "{text}");
    let ok = requests[0];
    for field in [
        "method=POST",
        "operation=NativeLookupEvents",
        "principal=arn:aws:iam::123456789012:user/John",
        "status=200",
        "latency_ms=",
    ] {
        assert!(ok.contains(field), "{field} in {ok}");
    }
    assert!(requests[1].contains("principal=-") && requests[1].contains("status=403"), "{}", requests[1]);
}

#[test]
fn an_unreachable_server_is_named_with_what_to_start_and_the_cause_said_once() {
    let port = harness::free_port().unwrap();
    let out = Command::new(bin())
        .args(["lookup", "--endpoint", &format!("http://127.0.0.1:{port}")])
        .env("AWS_ACCESS_KEY_ID", ADMIN_KEY)
        .env("AWS_SECRET_ACCESS_KEY", ADMIN_SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot reach http://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("is `opentrail serve` running?"), "{err}");
    assert_eq!(err.matches("refused").count(), 1, "the cause once: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
