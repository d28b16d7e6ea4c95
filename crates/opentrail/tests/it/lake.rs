//! Black-box tests of CloudTrail Lake: every event data store and query operation through the real aws CLI,
//! a query that sees events acknowledged a moment ago, `opentrail query`, and DuckDB reading the Parquet
//! files the lake wrote and finding the same answers.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn ok(mut cmd: Command) -> Value {
    let out = cmd.output().expect("run aws");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "aws failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    if stdout.trim().is_empty() { json!({}) } else { serde_json::from_str(&stdout).expect("aws printed JSON") }
}

fn fails(mut cmd: Command, code: &str) -> String {
    let out = cmd.output().expect("run aws");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected {code}, the call succeeded");
    assert!(stderr.contains(&format!("An error occurred ({code})")), "expected {code}:\n{stderr}");
    stderr
}

fn aws(s: &Server, args: &[&str]) -> Command {
    let mut c = s.aws(ADMIN_KEY, ADMIN_SECRET);
    c.arg("cloudtrail").args(args);
    c
}

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
        let d = ok(aws(s, &["describe-query", "--query-id", qid]));
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
    let created = ok(aws(&s, &["create-event-data-store", "--name", "eds1", "--retention-period", "7"]));
    let arn = created["EventDataStoreArn"].as_str().unwrap().to_string();
    let id = arn.rsplit('/').next().unwrap().to_string();
    assert!(arn.starts_with(&format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:eventdatastore/")), "{arn}");
    assert_eq!(created["Status"], "ENABLED");
    assert_eq!(created["RetentionPeriod"], 7);
    assert_eq!(created["TerminationProtectionEnabled"], true);
    assert_eq!(created["MultiRegionEnabled"], true);
    assert_eq!(created["AdvancedEventSelectors"][0]["FieldSelectors"][0]["Equals"], json!(["Management"]));
    fails(aws(&s, &["create-event-data-store", "--name", "eds1"]), "EventDataStoreAlreadyExistsException");
    fails(
        aws(&s, &["create-event-data-store", "--name", "eds2", "--retention-period", "4000"]),
        "InvalidParameterException",
    );

    // GetEventDataStore by ARN and by id; ListEventDataStores.
    let got = ok(aws(&s, &["get-event-data-store", "--event-data-store", &arn]));
    assert_eq!(got["Name"], "eds1");
    assert_eq!(ok(aws(&s, &["get-event-data-store", "--event-data-store", &id]))["EventDataStoreArn"], arn.as_str());
    let listed = ok(aws(&s, &["list-event-data-stores"]));
    assert_eq!(listed["EventDataStores"].as_array().unwrap().len(), 1);
    fails(
        aws(&s, &["get-event-data-store", "--event-data-store", "00000000-0000-4000-8000-000000000000"]),
        "EventDataStoreNotFoundException",
    );

    // StartQuery → DescribeQuery → GetQueryResults, against a linear count of what was ingested.
    let sql = format!(
        "SELECT userIdentity.username, count(*) AS n FROM {id} WHERE eventName LIKE 'Delete%' AND eventSource = 'iam.amazonaws.com' GROUP BY 1 ORDER BY 2 DESC, 1"
    );
    let qid = ok(aws(&s, &["start-query", "--query-statement", &sql]))["QueryId"].as_str().unwrap().to_string();
    assert_eq!(qid.len(), 36);
    let d = wait_finished(&s, &qid);
    assert_eq!(d["QueryStatus"], "FINISHED", "{d}");
    assert_eq!(d["QueryString"], sql.as_str());
    let stats = &d["QueryStatistics"];
    assert!(stats["EventsScanned"].as_u64().unwrap() >= 200, "{stats}");
    assert_eq!(stats["EventsMatched"].as_u64().unwrap(), 100, "{stats}");
    let results = ok(aws(&s, &["get-query-results", "--query-id", &qid]));
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
    let page = ok(aws(&s, &["get-query-results", "--query-id", &qid, "--max-query-results", "1", "--no-paginate"]));
    assert_eq!(page["QueryResultRows"].as_array().unwrap().len(), 1);
    let token = page["NextToken"].as_str().expect("a NextToken for the rest");
    let rest = ok(aws(&s, &["get-query-results", "--query-id", &qid, "--next-token", token]));
    assert_eq!(rest["QueryResultRows"].as_array().unwrap().len(), expect.len() - 1);

    // The tail: an event acknowledged a moment ago is found (no flush in between).
    s.ingest(&api_call("tail-0001", "2026-03-30T00:00:00Z", "TagRole", "dave"));
    let q = format!("SELECT eventID, userIdentity.userName FROM {id} WHERE eventName = 'TagRole'");
    let qid2 = ok(aws(&s, &["start-query", "--query-statement", &q]))["QueryId"].as_str().unwrap().to_string();
    assert_eq!(wait_finished(&s, &qid2)["QueryStatus"], "FINISHED");
    let r = ok(aws(&s, &["get-query-results", "--query-id", &qid2]));
    assert_eq!(values(&r["QueryResultRows"]), vec![vec!["tail-0001".to_string(), "dave".to_string()]]);

    // SELECT only; unknown stores and queries; cancelling a finished query.
    fails(
        aws(&s, &["start-query", "--query-statement", &format!("DELETE FROM {id}")]),
        "InvalidQueryStatementException",
    );
    fails(aws(&s, &["start-query", "--query-statement", "SELECT nope FROM nowhere"]), "InvalidQueryStatementException");
    fails(
        aws(&s, &["start-query", "--query-statement", &format!("SELECT no_such_column FROM {id}")]),
        "InvalidQueryStatementException",
    );
    fails(
        aws(&s, &["start-query", "--query-statement", "SELECT * FROM 00000000-0000-4000-8000-000000000000"]),
        "EventDataStoreNotFoundException",
    );
    fails(aws(&s, &["cancel-query", "--query-id", &qid]), "InactiveQueryException");
    fails(
        aws(&s, &["describe-query", "--query-id", "00000000-0000-4000-8000-000000000000"]),
        "QueryIdNotFoundException",
    );

    // ListQueries.
    let listed = ok(aws(&s, &["list-queries", "--event-data-store", &id]));
    let ids: Vec<&str> = listed["Queries"].as_array().unwrap().iter().map(|q| q["QueryId"].as_str().unwrap()).collect();
    assert!(ids.contains(&qid.as_str()) && ids.contains(&qid2.as_str()), "{listed}");
    assert!(listed["Queries"].as_array().unwrap().iter().all(|q| q["QueryStatus"] == "FINISHED"));

    // UpdateEventDataStore; termination protection as AWS: delete refused until it is off.
    fails(
        aws(&s, &["delete-event-data-store", "--event-data-store", &id]),
        "EventDataStoreTerminationProtectedException",
    );
    let updated = ok(aws(
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
    ok(aws(&s, &["delete-event-data-store", "--event-data-store", &id]));
    assert_eq!(ok(aws(&s, &["get-event-data-store", "--event-data-store", &id]))["Status"], "PENDING_DELETION");
    fails(
        aws(&s, &["start-query", "--query-statement", &format!("SELECT eventID FROM {id}")]),
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
    let created = ok(aws(
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
    let qid = ok(aws(&s, &["start-query", "--query-statement", &q]))["QueryId"].as_str().unwrap().to_string();
    assert_eq!(wait_finished(&s, &qid)["QueryStatus"], "FINISHED");
    let rows = values(&ok(aws(&s, &["get-query-results", "--query-id", &qid]))["QueryResultRows"]);
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
