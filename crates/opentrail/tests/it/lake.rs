//! Black-box tests of CloudTrail Lake: every event data store and query operation through the real aws CLI,
//! a query that sees events acknowledged a moment ago, `opentrail query`, and DuckDB reading the Parquet
//! files the lake wrote and finding the same answers; the `[lake]` limits (a running query cancelled, one over
//! its memory, its time or its result rows); and `opentrail export` of a time range to Parquet (read by DuckDB)
//! and to CloudTrail log files (imported again), killed and resumed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// `n` IAM calls by three users, names cycling through four operations.
fn iam_events(n: usize, prefix: &str) -> Vec<String> {
    let names = ["CreateUser", "DeleteUser", "GetUser", "DeleteRole"];
    let users = ["alice", "bob", "carol"];
    (0..n)
        .map(|i| {
            let t = format!("2026-03-{:02}T{:02}:00:00Z", 1 + i % 28, i % 24);
            api_call(&format!("{prefix}-{i:05}"), &t, names[i % names.len()], users[i % users.len()])
        })
        .collect()
}

fn wait_finished(s: &Server, qid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = ok(admin(s, &["describe-query", "--query-id", qid]));
        let status = d["QueryStatus"].as_str().unwrap().to_string();
        if !matches!(status.as_str(), "QUEUED" | "RUNNING") || Instant::now() > deadline {
            return d;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rows as `[[{col: value}, …], …]` → lists of values.
fn values(rows: &Value) -> Vec<Vec<String>> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|cell| cell.as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn every_lake_operation_round_trips_through_the_aws_cli() {
    let s = Server::start();
    let events = iam_events(200, "lake");
    s.ingest(&events.join("\n"));

    // CreateEventDataStore: AWS's defaults (management events, termination protection, multi-Region).
    let created = ok(admin(&s, &["create-event-data-store", "--name", "eds1", "--retention-period", "7"]));
    let arn = created["EventDataStoreArn"].as_str().unwrap().to_string();
    let id = arn.rsplit('/').next().unwrap().to_string();
    assert!(arn.starts_with(&format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:eventdatastore/")), "{arn}");
    assert_eq!(created["Status"], "ENABLED");
    assert_eq!(created["RetentionPeriod"], 7);
    assert_eq!(created["TerminationProtectionEnabled"], true);
    assert_eq!(created["MultiRegionEnabled"], true);
    assert_eq!(created["AdvancedEventSelectors"][0]["FieldSelectors"][0]["Equals"], json!(["Management"]));
    fails(admin(&s, &["create-event-data-store", "--name", "eds1"]), "EventDataStoreAlreadyExistsException");
    fails(
        admin(&s, &["create-event-data-store", "--name", "eds2", "--retention-period", "4000"]),
        "InvalidParameterException",
    );

    // GetEventDataStore by ARN and by id; ListEventDataStores.
    let got = ok(admin(&s, &["get-event-data-store", "--event-data-store", &arn]));
    assert_eq!(got["Name"], "eds1");
    assert_eq!(ok(admin(&s, &["get-event-data-store", "--event-data-store", &id]))["EventDataStoreArn"], arn.as_str());
    let listed = ok(admin(&s, &["list-event-data-stores"]));
    assert_eq!(listed["EventDataStores"].as_array().unwrap().len(), 1);
    fails(
        admin(&s, &["get-event-data-store", "--event-data-store", "00000000-0000-4000-8000-000000000000"]),
        "EventDataStoreNotFoundException",
    );

    // StartQuery → DescribeQuery → GetQueryResults, against a linear count of what was ingested.
    let sql = format!(
        "SELECT userIdentity.username, count(*) AS n FROM {id} WHERE eventName LIKE 'Delete%' AND eventSource = 'iam.amazonaws.com' GROUP BY 1 ORDER BY 2 DESC, 1"
    );
    let qid = ok(admin(&s, &["start-query", "--query-statement", &sql]))["QueryId"].as_str().unwrap().to_string();
    assert_eq!(qid.len(), 36);
    let d = wait_finished(&s, &qid);
    assert_eq!(d["QueryStatus"], "FINISHED", "{d}");
    assert_eq!(d["QueryString"], sql.as_str());
    // The long-poll header: a settled query is described at once, whatever the wait; a wait that is not a
    // number of milliseconds up to the limit is refused, naming the header.
    let (waited, took) = describe_waiting(&s, &qid, "20000");
    let waited = waited.json();
    assert_eq!(waited["QueryStatus"], "FINISHED", "{waited}");
    assert_eq!(waited["QueryStatistics"]["EventsMatched"], d["QueryStatistics"]["EventsMatched"], "{waited}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    for bad in ["soon", "-1", "20001"] {
        let (r, _) = describe_waiting(&s, &qid, bad);
        assert_eq!((r.status, r.code()), (400, "InvalidParameterException".to_string()), "{bad}: {}", r.text());
        assert!(r.json()["message"].as_str().unwrap().contains(api::WAIT_HEADER), "{}", r.text());
    }
    let stats = &d["QueryStatistics"];
    assert!(stats["EventsScanned"].as_u64().unwrap() >= 200, "{stats}");
    assert_eq!(stats["EventsMatched"].as_u64().unwrap(), 100, "{stats}");
    let results = ok(admin(&s, &["get-query-results", "--query-id", &qid]));
    assert_eq!(results["QueryStatus"], "FINISHED");
    let mut expect: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        let v: Value = serde_json::from_str(e).unwrap();
        if v["eventName"].as_str().unwrap().starts_with("Delete") {
            *expect.entry(v["userIdentity"]["userName"].as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    let mut expect: Vec<(String, u64)> = expect.into_iter().collect();
    expect.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let expect: Vec<Vec<String>> = expect.into_iter().map(|(u, n)| vec![u, n.to_string()]).collect();
    assert_eq!(values(&results["QueryResultRows"]), expect);
    // Columns are named as the statement spelled them.
    assert!(results["QueryResultRows"][0][0].get("username").is_some(), "{}", results["QueryResultRows"][0]);
    assert!(results["QueryResultRows"][0][1].get("n").is_some());

    // Pages: one row at a time, with a NextToken, never cut short.
    let page = ok(admin(&s, &["get-query-results", "--query-id", &qid, "--max-query-results", "1", "--no-paginate"]));
    assert_eq!(page["QueryResultRows"].as_array().unwrap().len(), 1);
    let token = page["NextToken"].as_str().expect("a NextToken for the rest");
    let rest = ok(admin(&s, &["get-query-results", "--query-id", &qid, "--next-token", token]));
    assert_eq!(rest["QueryResultRows"].as_array().unwrap().len(), expect.len() - 1);

    // The tail: an event acknowledged a moment ago is found (no flush in between).
    s.ingest(&api_call("tail-0001", "2026-03-30T00:00:00Z", "TagRole", "dave"));
    let q = format!("SELECT eventID, userIdentity.userName FROM {id} WHERE eventName = 'TagRole'");
    let qid2 = ok(admin(&s, &["start-query", "--query-statement", &q]))["QueryId"].as_str().unwrap().to_string();
    assert_eq!(wait_finished(&s, &qid2)["QueryStatus"], "FINISHED");
    let r = ok(admin(&s, &["get-query-results", "--query-id", &qid2]));
    assert_eq!(values(&r["QueryResultRows"]), vec![vec!["tail-0001".to_string(), "dave".to_string()]]);

    // SELECT only; unknown stores and queries; cancelling a finished query.
    fails(
        admin(&s, &["start-query", "--query-statement", &format!("DELETE FROM {id}")]),
        "InvalidQueryStatementException",
    );
    fails(
        admin(&s, &["start-query", "--query-statement", "SELECT nope FROM nowhere"]),
        "InvalidQueryStatementException",
    );
    fails(
        admin(&s, &["start-query", "--query-statement", &format!("SELECT no_such_column FROM {id}")]),
        "InvalidQueryStatementException",
    );
    fails(
        admin(&s, &["start-query", "--query-statement", "SELECT * FROM 00000000-0000-4000-8000-000000000000"]),
        "EventDataStoreNotFoundException",
    );
    fails(admin(&s, &["cancel-query", "--query-id", &qid]), "InactiveQueryException");
    fails(
        admin(&s, &["describe-query", "--query-id", "00000000-0000-4000-8000-000000000000"]),
        "QueryIdNotFoundException",
    );

    // ListQueries.
    let listed = ok(admin(&s, &["list-queries", "--event-data-store", &id]));
    let ids: Vec<&str> = listed["Queries"].as_array().unwrap().iter().map(|q| q["QueryId"].as_str().unwrap()).collect();
    assert!(ids.contains(&qid.as_str()) && ids.contains(&qid2.as_str()), "{listed}");
    assert!(listed["Queries"].as_array().unwrap().iter().all(|q| q["QueryStatus"] == "FINISHED"));

    // UpdateEventDataStore; termination protection as AWS: delete refused until it is off.
    fails(
        admin(&s, &["delete-event-data-store", "--event-data-store", &id]),
        "EventDataStoreTerminationProtectedException",
    );
    let updated = ok(admin(
        &s,
        &[
            "update-event-data-store",
            "--event-data-store",
            &id,
            "--no-termination-protection-enabled",
            "--retention-period",
            "30",
        ],
    ));
    assert_eq!(updated["TerminationProtectionEnabled"], false);
    assert_eq!(updated["RetentionPeriod"], 30);
    ok(admin(&s, &["delete-event-data-store", "--event-data-store", &id]));
    assert_eq!(ok(admin(&s, &["get-event-data-store", "--event-data-store", &id]))["Status"], "PENDING_DELETION");
    fails(
        admin(&s, &["start-query", "--query-statement", &format!("SELECT eventID FROM {id}")]),
        "EventDataStoreNotFoundException",
    );

    // Every call was audited like the other operations.
    s.wait_caught_up();
    let audited = s.lookup_all(&[("EventName", "StartQuery")]);
    assert!(audited.len() >= 3, "StartQuery calls in event history: {}", audited.len());
    s.assert_no_errors_logged();
}

#[test]
fn selectors_decide_which_events_enter_a_store() {
    let s = Server::start();
    let created = ok(admin(
        &s,
        &[
            "create-event-data-store",
            "--name",
            "writes",
            "--advanced-event-selectors",
            r#"[{"Name":"writes","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]"#,
        ],
    ));
    let id = created["EventDataStoreArn"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    s.ingest(&iam_events(40, "sel").join("\n"));
    let q =
        format!("SELECT eventName, count(*) FROM {id} WHERE eventSource = 'iam.amazonaws.com' GROUP BY 1 ORDER BY 1");
    let qid = ok(admin(&s, &["start-query", "--query-statement", &q]))["QueryId"].as_str().unwrap().to_string();
    assert_eq!(wait_finished(&s, &qid)["QueryStatus"], "FINISHED");
    let rows = values(&ok(admin(&s, &["get-query-results", "--query-id", &qid]))["QueryResultRows"]);
    // GetUser is a read: it never entered the store.
    assert_eq!(rows, vec![vec!["CreateUser", "10"], vec!["DeleteRole", "10"], vec!["DeleteUser", "10"]]);
    s.assert_no_errors_logged();
}

#[test]
fn opentrail_query_prints_a_table_csv_and_json_and_duckdb_reads_the_same_parquet() {
    let mut s = Server::start();
    let events = iam_events(120, "cli");
    s.ingest(&events.join("\n"));
    let run = |output: &str| {
        let out = s
            .cli()
            .args([
                "query",
                "--output",
                output,
                "SELECT eventName, count(*) AS n FROM events WHERE eventSource = 'iam.amazonaws.com' GROUP BY eventName ORDER BY eventName",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = run("csv");
    assert_eq!(csv, "eventName,n\nCreateUser,30\nDeleteRole,30\nDeleteUser,30\nGetUser,30\n");
    let table = run("table");
    assert!(table.starts_with("eventName   n\nCreateUser  30\n"), "{table}");
    let json_lines = run("json");
    assert_eq!(json_lines.lines().next().unwrap(), r#"{"eventName":"CreateUser","n":"30"}"#);
    let bad = s.cli().args(["query", "DROP TABLE events"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("InvalidQueryStatementException"));

    // A graceful stop flushes the tail to Parquet; DuckDB reads the files the manifest names.
    let data = s.data_dir.clone();
    s.stop();
    let lake = std::fs::read_dir(data.join("lake")).unwrap().flatten().next().expect("a store folder").path();
    let manifest: Value = serde_json::from_slice(&std::fs::read(lake.join("manifest.json")).unwrap()).unwrap();
    let files: Vec<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| lake.join(f["path"].as_str().unwrap()).to_string_lossy().into_owned())
        .collect();
    assert!(!files.is_empty());
    // Day partitions: the ingested March events, and today's self-audit records of the calls above.
    assert!(files.iter().any(|f| f.contains("/date=2026-03-02/")), "{files:?}");
    assert!(files.iter().all(|f| f.contains("/date=") && f.ends_with(".parquet")), "{files:?}");
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import duckdb, json, sys
files = json.loads(sys.argv[1])
con = duckdb.connect()
rel = f"read_parquet({files!r})"
by_name = con.execute(f"SELECT eventname, count(*) FROM {rel} WHERE eventsource = 'iam.amazonaws.com' GROUP BY 1 ORDER BY 1").fetchall()
users = con.execute(f"SELECT useridentity.username, count(*) FROM {rel} WHERE eventname LIKE 'Delete%' GROUP BY 1 ORDER BY 1").fetchall()
day = con.execute(f"SELECT count(*) FROM {rel} WHERE eventtime >= TIMESTAMPTZ '2026-03-02 00:00:00+00' AND eventtime < TIMESTAMPTZ '2026-03-03 00:00:00+00'").fetchall()
print(json.dumps({"by_name": by_name, "users": users, "day": day[0][0]}))
"#,
        )
        .arg(serde_json::to_string(&files).unwrap())
        .output()
        .expect("python3 with duckdb (scripts/test.sh installs it)");
    assert!(out.status.success(), "duckdb: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["by_name"], json!([["CreateUser", 30], ["DeleteRole", 30], ["DeleteUser", 30], ["GetUser", 30]]));
    assert_eq!(got["users"], json!([["alice", 20], ["bob", 20], ["carol", 20]]));
    let day2 = events.iter().filter(|e| e.contains("\"2026-03-02T")).count();
    assert_eq!(got["day"], json!(day2));
}

/// A store collecting every management event (AWS's default selectors); its id.
fn create_store(s: &Server, name: &str) -> String {
    let created = ok(admin(s, &["create-event-data-store", "--name", name]));
    created["EventDataStoreArn"].as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

fn start_query(s: &Server, sql: &str) -> String {
    ok(admin(s, &["start-query", "--query-statement", sql]))["QueryId"].as_str().unwrap().to_string()
}

/// DescribeQuery until the query's status is one of `statuses` (fails the test after `within`).
fn wait_status(s: &Server, qid: &str, statuses: &[&str], within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let d = ok(admin(s, &["describe-query", "--query-id", qid]));
        if statuses.contains(&d["QueryStatus"].as_str().unwrap()) {
            return d;
        }
        assert!(Instant::now() < deadline, "query {qid} never reached {statuses:?}: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// DescribeQuery of `qid` with `x-opentrail-wait-ms: wait`, and how long it took.
fn describe_waiting(s: &Server, qid: &str, wait: &str) -> (Reply, Duration) {
    let t = Instant::now();
    let r = s.cloudtrail_with(
        ADMIN_KEY,
        ADMIN_SECRET,
        "DescribeQuery",
        &json!({"QueryId": qid}),
        &[(api::WAIT_HEADER, wait)],
    );
    (r, t.elapsed())
}

/// A query that runs for minutes over a few thousand events, in little memory: a triple self join on
/// inequalities (n³/2 comparisons: 3·10^10 for 4000 events). A plain cross join is no good: DataFusion counts it from the
/// inputs' statistics without running it.
fn slow_query(id: &str) -> String {
    format!(
        "SELECT count(*) FROM {id} a JOIN {id} b ON a.eventTime < b.eventTime JOIN {id} c ON b.eventTime < c.eventTime"
    )
}

/// CPU seconds (user + system) the process has used, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (in parentheses, which may hold spaces): state is field 3, utime 14.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// CPU seconds the server used over `window`.
fn cpu_used_over(s: &Server, window: Duration) -> f64 {
    let before = cpu_seconds(s.pid());
    std::thread::sleep(window);
    cpu_seconds(s.pid()) - before
}

/// Waits until the server is idle (under 0.2 s of CPU in a second) and fails the test if that takes over
/// 30 s. A stopped query may finish the batch it was computing (a join batch can take seconds); one that goes
/// on running (the slow query runs for minutes) keeps a core busy.
fn assert_goes_idle(s: &Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let used = cpu_used_over(s, Duration::from_secs(1));
        if used < 0.2 {
            return;
        }
        assert!(Instant::now() < deadline, "the server still uses {used:.2} s of CPU a second after {what}");
    }
}

/// A quick query after a stopped one: it finishes, promptly, with the right answer.
fn quick_query_finishes(s: &Server, id: &str, expect_create_user: usize) {
    let q =
        format!("SELECT count(*) AS n FROM {id} WHERE eventName = 'CreateUser' AND eventSource = 'iam.amazonaws.com'");
    let qid = start_query(s, &q);
    let d = wait_status(s, &qid, &["FINISHED", "FAILED", "TIMED_OUT", "CANCELLED"], Duration::from_secs(60));
    assert_eq!(d["QueryStatus"], "FINISHED", "{d}");
    let r = ok(admin(s, &["get-query-results", "--query-id", &qid]));
    assert_eq!(values(&r["QueryResultRows"]), vec![vec![expect_create_user.to_string()]]);
}

/// A server with `[lake]` set to `lake`, a store named `name` holding 4,000 events, and the slow query started
/// over it: (server, store id, query id).
fn slow_query_started(lake: &str, name: &str) -> (Server, String, String) {
    let s = Server::start_with(&config_toml(&format!("[lake]\n{lake}\n")));
    let id = create_store(&s, name);
    s.ingest(&iam_events(4000, "slow").join("\n"));
    let qid = start_query(&s, &slow_query(&id));
    (s, id, qid)
}

#[test]
fn a_running_query_is_cancelled_and_leaves_the_query_runtime_free() {
    // One query at a time: a cancelled query that kept its slot would leave the next one QUEUED forever.
    let (s, id, qid) = slow_query_started("max_concurrent_queries = 1", "cancel");
    wait_status(&s, &qid, &["RUNNING"], Duration::from_secs(60));
    // It really is working (so the idle server after the cancel below means something).
    let busy = cpu_used_over(&s, Duration::from_secs(2));
    assert!(busy > 0.3, "the slow query used only {busy:.2} s of CPU in 2 s");

    // A long-polling DescribeQuery (x-opentrail-wait-ms) on a running query answers RUNNING when its wait
    // is over, and one still waiting is woken by the cancel, long before its 20 s are up.
    let (d, _) = describe_waiting(&s, &qid, "300");
    assert_eq!(d.json()["QueryStatus"], "RUNNING", "{}", d.text());
    let (cancelled, (d, took)) = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| describe_waiting(&s, &qid, "20000"));
        std::thread::sleep(Duration::from_millis(500));
        (ok(admin(&s, &["cancel-query", "--query-id", &qid])), waiting.join().unwrap())
    });
    assert_eq!(cancelled["QueryStatus"], "CANCELLED", "{cancelled}");
    assert_eq!(d.json()["QueryStatus"], "CANCELLED", "{}", d.text());
    assert!(took < Duration::from_secs(15), "the waiting DescribeQuery was not woken by the cancel: {took:?}");
    assert_eq!(cancelled["QueryId"], qid.as_str());
    let d = ok(admin(&s, &["describe-query", "--query-id", &qid]));
    assert_eq!(d["QueryStatus"], "CANCELLED", "{d}");
    let stats = &d["QueryStatistics"];
    assert!(stats["ExecutionTimeInMillis"].as_u64().unwrap() >= 1000, "{d}");
    assert!(stats["EventsScanned"].as_u64().unwrap() >= 4000, "{d}");
    // GetQueryResults answers with the status and no rows (a cancelled query has no results), as AWS does.
    let r = ok(admin(&s, &["get-query-results", "--query-id", &qid]));
    assert_eq!(r["QueryStatus"], "CANCELLED", "{r}");
    assert_eq!(r["QueryResultRows"], json!([]), "{r}");
    assert!(r.get("NextToken").is_none(), "{r}");
    // It stays cancelled: no late FINISHED, and cancelling it again is refused.
    fails(admin(&s, &["cancel-query", "--query-id", &qid]), "InactiveQueryException");

    // The slot and the runtime are free: a quick query finishes, and then the server is idle.
    quick_query_finishes(&s, &id, 1000);
    assert_goes_idle(&s, "the cancel");
    assert_eq!(ok(admin(&s, &["describe-query", "--query-id", &qid]))["QueryStatus"], "CANCELLED");
    let listed = ok(admin(&s, &["list-queries", "--event-data-store", &id, "--query-status", "CANCELLED"]));
    assert_eq!(listed["Queries"][0]["QueryId"], qid.as_str(), "{listed}");
    s.assert_no_errors_logged();
}

/// `n` IAM calls each carrying about 4 KB of distinct request parameters (about 4 KB of `eventjson` each).
fn bulky_events(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut v: Value = serde_json::from_str(&api_call(
                &format!("bulky-{i:05}"),
                &format!("2026-04-{:02}T{:02}:00:00Z", 1 + i % 28, i % 24),
                "PutRolePolicy",
                "alice",
            ))
            .unwrap();
            v["requestParameters"] = json!({"roleName": "r", "policyDocument": format!("{i:05}").repeat(800)});
            v.to_string()
        })
        .collect()
}

#[test]
fn a_query_over_its_memory_limit_fails_and_the_server_goes_on() {
    let s = Server::start_with(&config_toml("[lake]\nquery_memory_limit_mb = 8\n"));
    let id = create_store(&s, "memory");
    // 20 MB of distinct eventjson: grouping by it needs more than 8 MiB, grouping by eventID (180 kB) does not.
    for chunk in bulky_events(5000).chunks(1000) {
        s.ingest(&chunk.join("\n"));
    }
    let by = |column: &str| {
        format!(
            "SELECT count(*) AS n FROM (SELECT {column}, count(*) FROM {id} WHERE eventName = 'PutRolePolicy' GROUP BY {column})"
        )
    };
    let qid = start_query(&s, &by("eventjson"));
    let d = wait_status(&s, &qid, &["FINISHED", "FAILED", "TIMED_OUT"], Duration::from_secs(120));
    assert_eq!(d["QueryStatus"], "FAILED", "{d}");
    let message = d["ErrorMessage"].as_str().unwrap();
    assert!(message.contains("memory") && message.contains("8 MiB"), "{message}");
    let r = ok(admin(&s, &["get-query-results", "--query-id", &qid]));
    assert_eq!(r["QueryStatus"], "FAILED");
    assert_eq!(r["ErrorMessage"], message);
    assert_eq!(r["QueryResultRows"], json!([]));

    // The server is up and the same query over a small column finishes.
    let qid = start_query(&s, &by("eventID"));
    let d = wait_status(&s, &qid, &["FINISHED", "FAILED", "TIMED_OUT"], Duration::from_secs(120));
    assert_eq!(d["QueryStatus"], "FINISHED", "{d}");
    assert_eq!(
        values(&ok(admin(&s, &["get-query-results", "--query-id", &qid]))["QueryResultRows"]),
        vec![vec!["5000"]]
    );
    // Nothing was spilled to a temporary folder instead.
    s.assert_no_errors_logged();
}

#[test]
fn a_query_over_its_time_is_timed_out_with_its_statistics() {
    let (s, id, qid) = slow_query_started("query_timeout_seconds = 1", "timeout");
    let d = wait_status(&s, &qid, &["FINISHED", "FAILED", "TIMED_OUT", "CANCELLED"], Duration::from_secs(60));
    assert_eq!(d["QueryStatus"], "TIMED_OUT", "{d}");
    assert!(d["ErrorMessage"].as_str().unwrap().contains("longer than 1 s"), "{d}");
    let stats = &d["QueryStatistics"];
    assert!(stats["ExecutionTimeInMillis"].as_u64().unwrap() >= 1000, "{d}");
    assert!(stats["EventsScanned"].as_u64().unwrap() >= 4000, "{d}");
    let r = ok(admin(&s, &["get-query-results", "--query-id", &qid]));
    assert_eq!(r["QueryStatus"], "TIMED_OUT");
    assert_eq!(r["QueryResultRows"], json!([]));
    quick_query_finishes(&s, &id, 1000);
    assert_goes_idle(&s, "the timeout");
    s.assert_no_errors_logged();
}

#[test]
fn a_query_over_max_result_rows_fails_and_is_never_truncated() {
    let s = Server::start_with(&config_toml("[lake]\nmax_result_rows = 50\n"));
    let id = create_store(&s, "rows");
    let events = iam_events(120, "rows");
    s.ingest(&events.join("\n"));
    let q = |limit: &str| {
        format!("SELECT eventID FROM {id} WHERE eventSource = 'iam.amazonaws.com' ORDER BY eventID{limit}")
    };
    for sql in [q(""), q(" LIMIT 51")] {
        let qid = start_query(&s, &sql);
        let d = wait_status(&s, &qid, &["FINISHED", "FAILED"], Duration::from_secs(60));
        assert_eq!(d["QueryStatus"], "FAILED", "{sql}: {d}");
        assert!(d["ErrorMessage"].as_str().unwrap().contains("more than 50 rows"), "{d}");
        let r = ok(admin(&s, &["get-query-results", "--query-id", &qid]));
        assert_eq!(r["QueryStatus"], "FAILED");
        assert_eq!(r["QueryResultRows"], json!([]), "a failed query shows no partial rows");
    }
    // Exactly the limit is an answer, whole.
    let qid = start_query(&s, &q(" LIMIT 50"));
    assert_eq!(wait_status(&s, &qid, &["FINISHED", "FAILED"], Duration::from_secs(60))["QueryStatus"], "FINISHED");
    let rows = values(&ok(admin(&s, &["get-query-results", "--query-id", &qid]))["QueryResultRows"]);
    let mut ids: Vec<String> = (0..120).map(|i| format!("rows-{i:05}")).collect();
    ids.truncate(50);
    assert_eq!(rows, ids.into_iter().map(|i| vec![i]).collect::<Vec<_>>());
    s.assert_no_errors_logged();
}

/// The export's files of one kind (`.parquet` or `.json.gz`), sorted; no temporary or hidden files.
fn export_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(ext) && !name.starts_with('.')
        })
        .collect();
    files.sort();
    files
}

fn export_cmd(s: &Server, format: &str, start: &str, end: &str, out: &Path, extra: &[&str]) -> Command {
    let mut c = s.cli();
    c.args(["export", "--format", format, "--start", start, "--end", end, "--out"]).arg(out).args(extra);
    c
}

fn run_ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// DuckDB over Parquet files: (rows, distinct eventids, the eventids sorted, rows whose eventjson is the
/// record of the same eventid as `records` has it).
fn duckdb_read(files: &[PathBuf]) -> (u64, u64, Vec<String>) {
    let files: Vec<String> = files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import duckdb, json, sys
files = json.loads(sys.argv[1])
con = duckdb.connect()
rel = f"read_parquet({files!r})"
n, distinct = con.execute(f"SELECT count(*), count(DISTINCT eventid) FROM {rel}").fetchone()
ids = [r[0] for r in con.execute(f"SELECT eventid FROM {rel} ORDER BY eventid").fetchall()]
print(json.dumps({"n": n, "distinct": distinct, "ids": ids}))
"#,
        )
        .arg(serde_json::to_string(&files).unwrap())
        .output()
        .expect("python3 with duckdb (scripts/test.sh installs it)");
    assert!(out.status.success(), "duckdb: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = got["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    (got["n"].as_u64().unwrap(), got["distinct"].as_u64().unwrap(), ids)
}

/// March 2026 IAM events plus four at the edges of [2026-03-05T00:00:00Z, 2026-03-10T00:00:00Z]: two on them
/// (inside: the range is inclusive) and two a second outside. Returns (all records, eventIDs in the range).
fn ranged_events(n: usize) -> (Vec<String>, BTreeSet<String>) {
    let mut events = iam_events(n, "range");
    for (id, t) in [
        ("edge-start", "2026-03-05T00:00:00Z"),
        ("edge-end", "2026-03-10T00:00:00Z"),
        ("edge-before", "2026-03-04T23:59:59Z"),
        ("edge-after", "2026-03-10T00:00:01Z"),
    ] {
        events.push(api_call(id, t, "CreateUser", "erin"));
    }
    let inside = events
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter(|v| {
            let t = v["eventTime"].as_str().unwrap();
            ("2026-03-05T00:00:00Z"..="2026-03-10T00:00:00Z").contains(&t)
        })
        .map(|v| v["eventID"].as_str().unwrap().to_string())
        .collect();
    (events, inside)
}

const RANGE: (&str, &str) = ("2026-03-05T00:00:00Z", "2026-03-10T00:00:00Z");

#[test]
fn export_to_parquet_holds_exactly_the_events_of_the_range_as_duckdb_reads_them() {
    let s = Server::start();
    let (events, inside) = ranged_events(2500);
    assert!(inside.contains("edge-start") && inside.contains("edge-end") && !inside.contains("edge-before"));
    assert!(inside.len() > 400, "{}", inside.len());
    s.ingest(&events.join("\n"));
    // Export reads through LookupEvents, which sees what the index has taken in.
    s.wait_caught_up();
    let out = tempfile::tempdir().unwrap();
    let stderr = run_ok(export_cmd(&s, "parquet", RANGE.0, RANGE.1, out.path(), &["--events-per-file", "200"]));
    assert!(stderr.contains(&format!("exported {} events in", inside.len())), "{stderr}");
    let files = export_files(out.path(), ".parquet");
    assert_eq!(files.len(), inside.len().div_ceil(200), "{files:?}");
    let (n, distinct, ids) = duckdb_read(&files);
    assert_eq!(n, inside.len() as u64);
    assert_eq!(distinct, n);
    assert_eq!(ids, inside.iter().cloned().collect::<Vec<_>>());
    s.assert_no_errors_logged();
}

/// The records of CloudTrail log files (`{"Records":[…]}`, gzip), by eventID.
fn log_file_records(files: &[PathBuf]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for f in files {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(std::fs::File::open(f).unwrap()), &mut text)
            .unwrap_or_else(|e| panic!("{} is not gzip: {e}", f.display()));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let obj = doc.as_object().unwrap();
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["Records"], "{}", f.display());
        for r in obj["Records"].as_array().unwrap() {
            let id = r["eventID"].as_str().unwrap().to_string();
            assert!(out.insert(id.clone(), r.clone()).is_none(), "{id} in two log files");
        }
    }
    out
}

#[test]
fn export_to_cloudtrail_log_files_that_ingest_into_a_fresh_server_as_the_same_events() {
    let s = Server::start();
    let (events, inside) = ranged_events(2500);
    s.ingest(&events.join("\n"));
    // Export reads through LookupEvents, which sees what the index has taken in.
    s.wait_caught_up();
    let out = tempfile::tempdir().unwrap();
    run_ok(export_cmd(&s, "cloudtrail", RANGE.0, RANGE.1, out.path(), &[]));
    let files = export_files(out.path(), ".json.gz");
    assert_eq!(files.len(), inside.len().div_ceil(1000), "{files:?}");
    let exported = log_file_records(&files);
    // The records as they were stored: every member, every value.
    let stored: BTreeMap<String, Value> = events
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .map(|v| (v["eventID"].as_str().unwrap().to_string(), v))
        .filter(|(id, _)| inside.contains(id))
        .collect();
    assert_eq!(exported, stored);

    // A fresh server takes the folder in as a CloudTrail history: exactly those events, as they were.
    let fresh = Server::start();
    let state = tempfile::tempdir().unwrap();
    let mut c = fresh.cli();
    c.arg("ingest").arg(out.path()).arg("--state").arg(state.path().join("import.json"));
    let stderr = run_ok(c);
    assert!(stderr.contains(&format!("{} new", inside.len())), "{stderr}");
    fresh.wait_caught_up();
    let found: BTreeMap<String, Value> = fresh
        .lookup_all(&[("EventSource", "iam.amazonaws.com")])
        .iter()
        .map(|e| serde_json::from_str::<Value>(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .map(|v| (v["eventID"].as_str().unwrap().to_string(), v))
        .collect();
    assert_eq!(found, stored);
    s.assert_no_errors_logged();
    fresh.assert_no_errors_logged();
}

fn export_position(dir: &Path) -> Option<Value> {
    let bytes = std::fs::read(dir.join(".opentrail-export.json")).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Names, sizes and modification times of a folder's files.
fn listing(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            (e.file_name().to_string_lossy().into_owned(), m.len(), m.modified().unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_export_killed_midway_resumes_to_every_event_exactly_once() {
    // One LookupEvents call a second: five pages take four seconds or more, so the export is still running
    // when its first file appears (checked below through its position file, not assumed).
    let s = Server::start_with(&config_toml("[rate_limits.operations]\nLookupEvents = 1.0\n"));
    let events = iam_events(5000, "resume");
    for chunk in events.chunks(2500) {
        s.ingest(&chunk.join("\n"));
    }
    s.wait_caught_up();
    let range = ("2026-03-01T00:00:00Z", "2026-03-31T00:00:00Z");
    let out = tempfile::tempdir().unwrap();
    let cmd = || export_cmd(&s, "parquet", range.0, range.1, out.path(), &["--events-per-file", "1000"]);
    let mut child = cmd().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let first = out.path().join("part-00000000.parquet");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !first.exists() {
        assert!(Instant::now() < deadline, "no first file");
        assert!(child.try_wait().unwrap().is_none(), "the export ended before its first file");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed before it was complete: no position yet (the first file was being recorded), or one not done.
    let pos = export_position(out.path());
    assert!(pos.as_ref().is_none_or(|p| p["done"] == false), "the export had finished: {pos:?}");
    let written = export_files(out.path(), ".parquet").len();
    assert!(written < 5, "{written} files when killed");

    let stderr = run_ok(cmd());
    if written > 0 && pos.is_some_and(|p| p["files"].as_u64() > Some(0)) {
        assert!(stderr.contains("resuming the export"), "{stderr}");
    }
    assert!(stderr.contains("exported 5000 events in 5 files"), "{stderr}");
    let files = export_files(out.path(), ".parquet");
    assert_eq!(files.len(), 5, "{files:?}");
    let (n, distinct, ids) = duckdb_read(&files);
    assert_eq!((n, distinct), (5000, 5000));
    let mut expect: Vec<String> = (0..5000).map(|i| format!("resume-{i:05}")).collect();
    expect.sort();
    assert_eq!(ids, expect);
    assert_eq!(export_position(out.path()).unwrap()["done"], true);

    // Once complete, running it again says so and changes nothing.
    let before = listing(out.path());
    let stderr = run_ok(cmd());
    assert!(stderr.contains("export already complete: 5000 events in 5 files"), "{stderr}");
    assert_eq!(listing(out.path()), before);
    // Another range in the same folder is refused rather than mixed in.
    let mut other = export_cmd(&s, "parquet", range.0, "2026-03-20T00:00:00Z", out.path(), &[]);
    let refused = other.output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("give the same --start"), "{refused:?}");
    assert_eq!(listing(out.path()), before);
    s.assert_no_errors_logged();
}
