//! The SQLite baseline on the same records and queries: WAL, `synchronous=FULL` (every batch commit is
//! fsync'd, the same durability contract as opentrail's acknowledgement), one row per event with the lookup
//! columns and the record JSON, multi-valued attributes (resource types, resource names — ARN and short
//! name — and account ids) in a side table, an index per attribute ordered newest first. In-process: no
//! HTTP, no SigV4, no JSON response — which favours SQLite.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use model::{AttributeKey, IndexFields, Record};
use rusqlite::{Connection, params_from_iter};

use crate::corpus::Corpus;
use crate::lookups::{LookupResult, Page, Query};

/// Hard-coded: a 128 MiB page cache per connection (SQLite's default is 2 MiB), a tuned baseline.
const CACHE_KIB: i64 = 128 * 1024;

const SCHEMA: &str = "
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    event_name TEXT NOT NULL,
    event_source TEXT NOT NULL,
    username TEXT,
    access_key_id TEXT,
    read_only INTEGER,
    source_ip TEXT,
    error_code TEXT,
    user_agent TEXT,
    record TEXT NOT NULL
);
-- key: 1 = ResourceType, 2 = ResourceName (ARN and short name), 3 = AccountId; values deduplicated per event.
CREATE TABLE multi (
    key INTEGER NOT NULL,
    value TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, value, event_time DESC, seq DESC)
) WITHOUT ROWID;
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_event_name ON events (event_name, event_time DESC, seq DESC);
CREATE INDEX events_event_source ON events (event_source, event_time DESC, seq DESC);
CREATE INDEX events_username ON events (username, event_time DESC, seq DESC);
CREATE INDEX events_access_key_id ON events (access_key_id, event_time DESC, seq DESC);
CREATE INDEX events_read_only ON events (read_only, event_time DESC, seq DESC);
CREATE INDEX events_source_ip ON events (source_ip, event_time DESC, seq DESC);
CREATE INDEX events_error_code ON events (error_code, event_time DESC, seq DESC);
CREATE INDEX events_user_agent ON events (user_agent, event_time DESC, seq DESC);
";

/// The column of a single-valued attribute, or the side-table key of a multi-valued one.
enum Column {
    Events(&'static str),
    Multi(i64),
}

fn column(key: AttributeKey) -> Column {
    match key {
        AttributeKey::EventId => Column::Events("event_id"),
        AttributeKey::EventName => Column::Events("event_name"),
        AttributeKey::ReadOnly => Column::Events("read_only"),
        AttributeKey::Username => Column::Events("username"),
        AttributeKey::EventSource => Column::Events("event_source"),
        AttributeKey::AccessKeyId => Column::Events("access_key_id"),
        AttributeKey::SourceIpAddress => Column::Events("source_ip"),
        AttributeKey::ErrorCode => Column::Events("error_code"),
        AttributeKey::UserAgent => Column::Events("user_agent"),
        AttributeKey::ResourceType => Column::Multi(1),
        AttributeKey::ResourceName => Column::Multi(2),
        AttributeKey::AccountId => Column::Multi(3),
        // Never queried by the benchmark (see `lookups::choose_queries`); no rows, so nothing matches.
        AttributeKey::Provenance => Column::Multi(4),
    }
}

#[derive(Debug)]
pub struct SqliteIngest {
    pub events: u64,
    pub elapsed: Duration,
    pub db_bytes: u64,
    pub wal_bytes: u64,
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(conn)
}

/// Ingests every corpus batch as one durable transaction. A second thread parses batches with
/// `model::Record::parse` (the server's parser) while the writer inserts, so both cores work as in the server.
pub fn ingest(dir: &Path, corpus: &Corpus) -> Result<SqliteIngest> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("bench.db");
    let mut conn = open(&path)?;
    conn.execute_batch(SCHEMA)?;
    let start = Instant::now();
    let (tx, rx) = mpsc::sync_channel::<Vec<Record>>(4);
    let written = std::thread::scope(|s| -> Result<u64> {
        let parser = s.spawn(move || -> Result<()> {
            for b in &corpus.batches {
                let bytes = corpus.read(b)?;
                let mut records = Vec::with_capacity(b.records);
                for line in bytes.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                    let r = Record::parse(line, || unreachable!("eventgen always writes eventID"))
                        .map_err(|e| anyhow::anyhow!("record does not parse: {e}"))?;
                    records.push(r);
                }
                if tx.send(records).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let mut seq = 0u64;
        for records in rx {
            let txn = conn.transaction()?;
            {
                let mut ins = txn.prepare_cached(
                    "INSERT INTO events (seq, event_id, event_time, event_name, event_source, username, \
                     access_key_id, read_only, source_ip, error_code, user_agent, record) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?;
                let mut multi =
                    txn.prepare_cached("INSERT INTO multi (key, value, event_time, seq) VALUES (?1, ?2, ?3, ?4)")?;
                for r in &records {
                    seq += 1;
                    let f: &IndexFields = &r.fields;
                    let t = f.event_time.0;
                    ins.execute(rusqlite::params![
                        seq as i64,
                        f.event_id,
                        t,
                        f.event_name,
                        f.event_source,
                        f.username,
                        f.access_key_id,
                        f.read_only,
                        f.source_ip,
                        f.error_code,
                        f.user_agent,
                        r.json(),
                    ])?;
                    for (key, k) in
                        [(AttributeKey::ResourceType, 1), (AttributeKey::ResourceName, 2), (AttributeKey::AccountId, 3)]
                    {
                        for v in key.values(f) {
                            multi.execute(rusqlite::params![k, v, t, seq as i64])?;
                        }
                    }
                }
            }
            txn.commit()?;
        }
        parser.join().map_err(|_| anyhow::anyhow!("parser thread panicked"))??;
        Ok(seq)
    })?;
    let elapsed = start.elapsed();
    if written != corpus.events {
        bail!("SQLite stored {written} of {} events", corpus.events);
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let db_bytes = size(&path);
    let wal_bytes = size(&dir.join("bench.db-wal"));
    Ok(SqliteIngest { events: written, elapsed, db_bytes, wal_bytes })
}

/// The SQL of a query: driven by the first attribute's index, the others as filters, newest first.
fn sql(q: &Query) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let val = |k: AttributeKey, v: &str| match k {
        AttributeKey::ReadOnly => V::Integer((v == "true") as i64),
        _ => V::Text(v.to_string()),
    };
    let mut args = Vec::new();
    let mut filters = Vec::new();
    let (from, order) = match column(q.attrs[0].0) {
        Column::Multi(k) => {
            args.push(V::Integer(k));
            args.push(V::Text(q.attrs[0].1.clone()));
            filters.push("m.key = ? AND m.value = ?".to_string());
            ("multi m JOIN events e ON e.seq = m.seq", "m.event_time DESC, m.seq DESC")
        }
        Column::Events(c) => {
            args.push(val(q.attrs[0].0, &q.attrs[0].1));
            filters.push(format!("e.{c} = ?"));
            ("events e", "e.event_time DESC, e.seq DESC")
        }
    };
    for (k, v) in &q.attrs[1..] {
        match column(*k) {
            Column::Events(c) => {
                args.push(val(*k, v));
                filters.push(format!("e.{c} = ?"));
            }
            Column::Multi(key) => {
                args.push(V::Integer(key));
                args.push(V::Text(v.clone()));
                filters.push(
                    "EXISTS (SELECT 1 FROM multi x WHERE x.key = ? AND x.value = ? \
                     AND x.event_time = e.event_time AND x.seq = e.seq)"
                        .to_string(),
                );
            }
        }
    }
    (format!("SELECT e.event_id, e.record FROM {from} WHERE {} ORDER BY {order} LIMIT 50", filters.join(" AND ")), args)
}

/// The query workload in-process, one read connection per thread, reading the record text of every row.
pub fn lookups(dir: &Path, queries: &[Query], threads: usize, reps: usize, single_reps: usize) -> Result<LookupResult> {
    let path = dir.join("bench.db");
    crate::lookups::run(queries, threads, reps, single_reps, || {
        let conn = open(&path)?;
        Ok(move |q: &Query| -> Result<Page> {
            let (text, args) = sql(q);
            let mut stmt = conn.prepare_cached(&text)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            let mut ids = Vec::with_capacity(50);
            while let Some(row) = rows.next()? {
                let record = row.get_ref(1)?.as_str()?;
                if !record.is_empty() {
                    ids.push(row.get::<_, String>(0)?);
                }
            }
            Ok(Page { ids, server: None })
        })
    })
}

/// `EXPLAIN QUERY PLAN` of every query shape, to show which index SQLite picked.
pub fn plans(dir: &Path, queries: &[Query]) -> Result<Vec<(String, String)>> {
    let conn = open(&dir.join("bench.db"))?;
    let mut out: Vec<(String, String)> = Vec::new();
    for q in queries {
        if out.iter().any(|(g, _)| *g == q.group) {
            continue;
        }
        let (text, args) = sql(q);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {text}"))?;
        let plan: Vec<String> =
            stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(3))?.collect::<rusqlite::Result<_>>()?;
        out.push((q.group.clone(), plan.join("; ")));
    }
    Ok(out)
}
