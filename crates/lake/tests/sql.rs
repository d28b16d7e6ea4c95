//! SQL over a lake table (Parquet files + tail) equals a naive evaluation over the same generated events:
//! typical audit queries, and property tests over seeds, sizes and where the flush cut the events.

use std::collections::BTreeMap;
use std::sync::Arc;

use lake::sql::{self, Answer};
use lake::table::Table;
use lake::view::batches_by_day;
use proptest::prelude::*;
use serde_json::Value;

const ID: &str = "3f1e2d3c-1111-4222-8333-444455556666";

fn events(n: u64, seed: u64) -> Vec<String> {
    eventgen::generate(&eventgen::GenOptions {
        events: n,
        seed,
        start: model::EventTime::parse("2026-01-01T00:00:00Z").unwrap(),
        span_ms: 3 * 86_400_000,
    })
    .collect()
}

/// A table holding `records`: the first `flushed` in Parquet files (two flushes), the rest in the tail.
fn table(dir: &std::path::Path, records: &[String], flushed: usize) -> Arc<Table> {
    let t = Table::open(dir).unwrap();
    let half = flushed / 2;
    for (i, part) in [&records[..half], &records[half..flushed]].into_iter().enumerate() {
        t.append(batches_by_day(part.iter().map(String::as_str), |_| true), i as u64);
        t.flush().unwrap();
    }
    t.append(batches_by_day(records[flushed..].iter().map(String::as_str), |_| true), 2);
    t
}

fn query(t: &Table, statement: &str) -> Answer {
    try_query(t, statement, 256 << 20).unwrap()
}

/// Runs `statement` over `t` (stored as store `ID`) with `memory_limit` bytes for its operators.
fn try_query(t: &Table, statement: &str, memory_limit: usize) -> Result<Answer, sql::SqlError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (sql_text, ids) = sql::prepare(statement).unwrap();
        assert!(!ids.is_empty() && ids.iter().all(|i| i == ID), "{ids:?}");
        let snap = t.snapshot();
        let tail_rows = snap.tail.iter().map(|b| b.num_rows() as u64).sum();
        let ctx = sql::session(&[(ID.to_string(), snap)], memory_limit, 2).await.unwrap();
        let plan = sql::plan(&ctx, &sql_text).await.unwrap();
        sql::run(&ctx, plan, statement, 1_000_000, tail_rows).await
    })
}

/// The optimized logical plan of `statement`, then its physical plan, as text.
fn plans(t: &Table, statement: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (sql_text, _) = sql::prepare(statement).unwrap();
        let ctx = sql::session(&[(ID.to_string(), t.snapshot())], 256 << 20, 2).await.unwrap();
        let logical = ctx.sql(&sql_text).await.unwrap().into_optimized_plan().unwrap();
        let physical = sql::plan(&ctx, &sql_text).await.unwrap();
        format!(
            "{}\n{}",
            logical.display_indent(),
            datafusion::physical_plan::displayable(physical.as_ref()).indent(false)
        )
    })
}

fn parsed(records: &[String]) -> Vec<Value> {
    records.iter().map(|r| serde_json::from_str(r).unwrap()).collect()
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows as a sorted multiset, for queries without ORDER BY.
fn sorted(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut rows = rows;
    rows.sort();
    rows
}

fn count_by(records: &[Value], key: impl Fn(&Value) -> Option<Vec<String>>) -> Vec<Vec<String>> {
    let mut m: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for r in records {
        if let Some(k) = key(r) {
            *m.entry(k).or_default() += 1;
        }
    }
    counted(m)
}

/// Counts by key as sorted answer rows: the key's columns, then the count.
fn counted(m: BTreeMap<Vec<String>, u64>) -> Vec<Vec<String>> {
    sorted(
        m.into_iter()
            .map(|(mut k, n)| {
                k.push(n.to_string());
                k
            })
            .collect(),
    )
}

#[test]
fn typical_audit_queries_equal_a_linear_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let recs = events(3000, 7);
    let t = table(dir.path(), &recs, 2000);
    let all = parsed(&recs);

    let a = query(&t, &format!("SELECT eventName, count(*) AS n FROM {ID} GROUP BY eventName"));
    assert_eq!(a.columns, vec!["eventName", "n"]);
    assert_eq!(sorted(a.rows), count_by(&all, |r| Some(vec![s(&r["eventName"])])));
    assert_eq!(a.events_scanned, 3000);

    let a = query(
        &t,
        &format!(
            "SELECT userIdentity.userName, count(*) FROM {ID} WHERE eventName LIKE 'Delete%' GROUP BY 1 ORDER BY 2 DESC"
        ),
    );
    let expect =
        count_by(&all, |r| s(&r["eventName"]).starts_with("Delete").then(|| vec![s(&r["userIdentity"]["userName"])]));
    assert_eq!(sorted(a.rows.clone()), expect);
    let counts: Vec<u64> = a.rows.iter().map(|r| r[1].parse().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "ORDER BY 2 DESC: {counts:?}");

    let a = query(
        &t,
        &format!(
            "SELECT eventSource, eventName, errorCode, count(*) FROM {ID} WHERE errorCode IS NOT NULL GROUP BY 1, 2, 3"
        ),
    );
    let expect = count_by(&all, |r| {
        r.get("errorCode").filter(|e| !e.is_null()).map(|e| vec![s(&r["eventSource"]), s(&r["eventName"]), s(e)])
    });
    assert!(!expect.is_empty());
    assert_eq!(sorted(a.rows), expect);

    let needle = s(&all[2500]["sourceIPAddress"]);
    let a = query(&t, &format!("SELECT eventID FROM {ID} WHERE sourceIPAddress = '{needle}'"));
    let expect: Vec<Vec<String>> =
        sorted(all.iter().filter(|r| s(&r["sourceIPAddress"]) == needle).map(|r| vec![s(&r["eventID"])]).collect());
    assert_eq!(sorted(a.rows), expect);
    assert_eq!(a.events_matched, expect.len() as u64);

    let a = query(
        &t,
        &format!(
            "SELECT count(*) FROM {ID} WHERE eventTime >= '2026-01-02 00:00:00' AND eventTime < '2026-01-03 00:00:00'"
        ),
    );
    let lo = model::EventTime::parse("2026-01-02T00:00:00Z").unwrap().0;
    let hi = model::EventTime::parse("2026-01-03T00:00:00Z").unwrap().0;
    let n = all
        .iter()
        .filter(|r| {
            let t = model::EventTime::parse(r["eventTime"].as_str().unwrap()).unwrap().0;
            (lo..hi).contains(&t)
        })
        .count();
    assert_eq!(a.rows, vec![vec![n.to_string()]]);
}

/// Pairs (a, b) where b's access key is the one a's AssumeRole returned, counted by `key(a, b)`.
fn assume_role_pairs(all: &[Value], key: impl Fn(&Value, &Value) -> Vec<String>) -> Vec<Vec<String>> {
    let mut m: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for a in all.iter().filter(|r| r["eventName"] == "AssumeRole") {
        let Some(k) = a["responseElements"]["credentials"]["accessKeyId"].as_str() else { continue };
        for b in all.iter().filter(|b| b["userIdentity"]["accessKeyId"].as_str() == Some(k)) {
            *m.entry(key(a, b)).or_default() += 1;
        }
    }
    counted(m)
}

/// Counts over a join are computed without making the pairs (the `eager` optimizer rule): the answers equal
/// the pairs counted one by one, with grouping columns from either side or both; a query the rule does not
/// apply to (a left join) is answered as before.
#[test]
fn counts_over_a_join_equal_the_pairs_counted() {
    let dir = tempfile::tempdir().unwrap();
    let recs = events(4000, 11);
    let t = table(dir.path(), &recs, 2500);
    let all = parsed(&recs);
    let on = "b.userIdentity.accessKeyId = json_extract_scalar(a.responseElements, '$.credentials.accessKeyId')";

    let q = format!(
        "SELECT b.eventName, count(*) AS n FROM {ID} a JOIN {ID} b ON {on} WHERE a.eventName = 'AssumeRole' GROUP BY b.eventName"
    );
    let expect = assume_role_pairs(&all, |_, b| vec![s(&b["eventName"])]);
    assert!(expect.iter().any(|r| r[1] != "1"), "the corpus has keys used more than once: {expect:?}");
    assert_eq!(sorted(query(&t, &q).rows), expect);
    assert!(plans(&t, &q).contains("__eager_"), "the rule rewrote the join: {}", plans(&t, &q));

    let q = format!(
        "SELECT a.userIdentity.arn, b.eventName, count(*), count(1) FROM {ID} a JOIN {ID} b ON {on} \
         WHERE a.eventName = 'AssumeRole' GROUP BY a.userIdentity.arn, b.eventName"
    );
    let expect: Vec<Vec<String>> =
        assume_role_pairs(&all, |a, b| vec![s(&a["userIdentity"]["arn"]), s(&b["eventName"])])
            .into_iter()
            .map(|mut r| {
                r.push(r[2].clone());
                r
            })
            .collect();
    assert_eq!(sorted(query(&t, &q).rows), expect);

    // Not rewritten: an outer join keeps the AssumeRole calls whose key was never used.
    let q = format!(
        "SELECT a.eventName, count(*) FROM {ID} a LEFT JOIN {ID} b ON {on} WHERE a.eventName = 'AssumeRole' GROUP BY a.eventName"
    );
    assert!(!plans(&t, &q).contains("__eager_"));
    let used = assume_role_pairs(&all, |_, _| vec![]).first().map_or(0, |r| r[0].parse::<u64>().unwrap());
    let unused = all
        .iter()
        .filter(|a| a["eventName"] == "AssumeRole")
        .filter(|a| {
            let k = a["responseElements"]["credentials"]["accessKeyId"].as_str();
            !all.iter().any(|b| k.is_some() && b["userIdentity"]["accessKeyId"].as_str() == k)
        })
        .count() as u64;
    assert_eq!(query(&t, &q).rows, vec![vec!["AssumeRole".to_string(), (used + unused).to_string()]]);
}

/// A filter keeping most rows is evaluated after the scan decodes its columns; a selective one, or one whose
/// share the statistics cannot tell, while it decodes (crate::pushdown).
#[test]
fn scans_filter_while_decoding_only_where_few_rows_pass() {
    let dir = tempfile::tempdir().unwrap();
    let recs = events(3000, 7);
    let t = table(dir.path(), &recs, 3000);
    let all = parsed(&recs);
    let with_ip = all.iter().filter(|r| r.get("sourceIPAddress").is_some_and(|e| !e.is_null())).count();
    assert!(with_ip > 2970, "{with_ip} of 3000 events have a source IP");
    // Whether a FilterExec on `column` sits right above a scan of the Parquet files (the filter evaluated
    // after decoding) rather than inside the scan (a row filter). The tail's in-memory scan has its own.
    let filter_above_files = |plan: &str, column: &str| {
        let lines: Vec<&str> = plan.lines().collect();
        lines.windows(2).any(|w| w[0].contains(&format!("FilterExec: {column}@")) && w[1].contains("file_type=parquet"))
    };
    let scans_files_with = |plan: &str, predicate: &str| {
        plan.lines().any(|l| l.contains("file_type=parquet") && l.contains(&format!("predicate={predicate}")))
    };
    // Nearly every row has a source IP: evaluated after decoding (the files' predicate only prunes).
    let q = format!("SELECT eventName, count(*) FROM {ID} WHERE sourceIPAddress IS NOT NULL GROUP BY 1");
    let plan = plans(&t, &q);
    assert!(filter_above_files(&plan, "sourceipaddress"), "{plan}");
    // A comparison's share is unknown: a row filter, no FilterExec above the files.
    let plan = plans(&t, &format!("SELECT eventID FROM {ID} WHERE eventName = 'AssumeRole'"));
    assert!(!filter_above_files(&plan, "eventname") && scans_files_with(&plan, "eventname@"), "{plan}");
    // Too few rows have no source IP for a share above the limit: a row filter.
    let plan = plans(&t, &format!("SELECT eventID FROM {ID} WHERE sourceIPAddress IS NULL"));
    assert!(!filter_above_files(&plan, "sourceipaddress"), "{plan}");
    // The answers are the same either way.
    let a = query(&t, &q);
    assert_eq!(
        sorted(a.rows),
        count_by(&all, |r| r.get("sourceIPAddress").filter(|v| !v.is_null()).map(|_| vec![s(&r["eventName"])]))
    );
}

/// A grouping with as many groups as rows counts each once; with too little memory for its groups it fails
/// at the query's limit instead of growing past it.
#[test]
fn counting_groups_is_bounded_by_the_query_memory() {
    let dir = tempfile::tempdir().unwrap();
    let recs = events(3000, 5);
    let t = table(dir.path(), &recs, 1500);
    let q = format!("SELECT eventID, count(*) FROM {ID} GROUP BY eventID");
    assert!(plans(&t, &q).contains("CountByViewsExec"));
    let a = query(&t, &q);
    assert_eq!(a.rows.len(), 3000);
    assert!(a.rows.iter().all(|r| r[1] == "1"));
    let err = try_query(&t, &q, 64 << 10).unwrap_err();
    assert!(matches!(err, sql::SqlError::Memory { .. }), "{err}");
}

#[test]
fn the_whole_record_and_typed_columns_agree() {
    let dir = tempfile::tempdir().unwrap();
    let recs = events(300, 3);
    let t = table(dir.path(), &recs, 100);
    let a = query(&t, &format!("SELECT eventJson, eventID, readOnly, eventTime FROM {ID}"));
    assert_eq!(a.rows.len(), recs.len());
    for row in &a.rows {
        let r: Value = serde_json::from_str(&row[0]).unwrap();
        assert_eq!(s(&r["eventID"]), row[1]);
        assert_eq!(r.get("readOnly").map(s).unwrap_or_default(), row[2]);
        let t = r["eventTime"].as_str().unwrap();
        assert_eq!(row[3], format!("{} {}.000", &t[..10], &t[11..19]));
    }
    let mut stored: Vec<&str> = a.rows.iter().map(|r| r[0].as_str()).collect();
    let mut given: Vec<&str> = recs.iter().map(String::as_str).collect();
    stored.sort_unstable();
    given.sort_unstable();
    assert_eq!(stored, given, "eventjson keeps every record exactly as stored");
}

#[test]
fn only_one_select_is_accepted() {
    for bad in [
        format!("DELETE FROM {ID}"),
        format!("DROP TABLE {ID}"),
        format!("INSERT INTO {ID} VALUES (1)"),
        format!("SELECT 1 FROM {ID}; SELECT 2 FROM {ID}"),
        "CREATE TABLE x (a int)".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "SELEC nothing".to_string(),
    ] {
        assert!(matches!(sql::prepare(&bad), Err(sql::SqlError::Invalid(_))), "{bad}");
    }
    let (q, ids) = sql::prepare(&format!("SELECT 'x {ID}' FROM {} t", ID.to_uppercase())).unwrap();
    assert_eq!(q, format!("SELECT 'x {ID}' FROM \"{ID}\" t"));
    assert_eq!(ids, vec![ID.to_string()]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn counts_by_name_and_source_equal_a_linear_count(seed in 0u64..1000, n in 1usize..600, cut in 0.0f64..1.0) {
        let dir = tempfile::tempdir().unwrap();
        let recs = events(n as u64, seed);
        let t = table(dir.path(), &recs, (n as f64 * cut) as usize);
        let all = parsed(&recs);
        let a = query(&t, &format!("SELECT eventSource, eventName, count(*) FROM {ID} GROUP BY 1, 2"));
        prop_assert_eq!(sorted(a.rows), count_by(&all, |r| Some(vec![s(&r["eventSource"]), s(&r["eventName"])])));
        // A null group (no error code) and two counts: the partial counting by views against a linear count.
        let q = format!("SELECT errorCode, count(*), count(1) FROM {ID} GROUP BY 1");
        prop_assert!(plans(&t, &q).contains("CountByViewsExec"));
        let expect: Vec<Vec<String>> = count_by(&all, |r| Some(vec![s(r.get("errorCode").unwrap_or(&Value::Null))]))
            .into_iter()
            .map(|mut r| {
                r.push(r[1].clone());
                r
            })
            .collect();
        prop_assert_eq!(sorted(query(&t, &q).rows), expect);
        let a = query(&t, &format!("SELECT awsRegion, count(*) FROM {ID} WHERE readOnly = false GROUP BY 1"));
        prop_assert_eq!(
            sorted(a.rows),
            count_by(&all, |r| (r.get("readOnly") == Some(&Value::Bool(false))).then(|| vec![s(&r["awsRegion"])]))
        );
        // Null checks, whose share of rows the files' null counts tell (crate::pushdown chooses by it).
        let a = query(&t, &format!(
            "SELECT eventName, count(*) FROM {ID} WHERE (errorCode IS NOT NULL AND errorMessage IS NULL) \
             OR sourceIPAddress IS NULL GROUP BY 1"
        ));
        let present = |r: &Value, k: &str| r.get(k).is_some_and(|v| !v.is_null());
        prop_assert_eq!(
            sorted(a.rows),
            count_by(&all, |r| ((present(r, "errorCode") && !present(r, "errorMessage"))
                || !present(r, "sourceIPAddress"))
                .then(|| vec![s(&r["eventName"])]))
        );
        // A self-join on the caller's access key, grouped by both sides: the eager rewrite against pairs.
        let a = query(&t, &format!(
            "SELECT a.eventSource, b.awsRegion, count(*) FROM {ID} a JOIN {ID} b \
             ON a.userIdentity.accessKeyId = b.userIdentity.accessKeyId GROUP BY 1, 2"
        ));
        let mut m: BTreeMap<Vec<String>, u64> = BTreeMap::new();
        for x in &all {
            let Some(k) = x["userIdentity"]["accessKeyId"].as_str() else { continue };
            for y in all.iter().filter(|y| y["userIdentity"]["accessKeyId"].as_str() == Some(k)) {
                *m.entry(vec![s(&x["eventSource"]), s(&y["awsRegion"])]).or_default() += 1;
            }
        }
        prop_assert_eq!(sorted(a.rows), counted(m));
    }
}
