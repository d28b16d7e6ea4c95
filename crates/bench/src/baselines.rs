//! The engines a user would pick instead of opentrail, each run by its own Python script under
//! `crates/bench/baselines/` (DuckDB, chDB, tantivy, and SQLite through Python's sqlite3) on the columns file
//! and the very queries the server answered; the SQLite baseline in Rust (`sqlite`) is selected here too.
//! Each script is a subprocess started after the server has stopped, so engines never share the cores.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::lookups::{Query, by_group};
use crate::report::Latencies;

/// One engine the bench can compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// rusqlite, in this process: durable batched ingest, then the lookups (`sqlite` module).
    Sqlite,
    /// Python's sqlite3 on a bulk-loaded copy: the same engine through the Python harness, which measures
    /// what the harness itself costs next to the Rust one.
    SqlitePy,
    Duckdb,
    Chdb,
    Tantivy,
}

impl Engine {
    pub const ALL: [Engine; 5] = [Engine::Sqlite, Engine::SqlitePy, Engine::Duckdb, Engine::Chdb, Engine::Tantivy];
    /// Selected when `--baselines` is not given.
    pub const DEFAULT: [Engine; 4] = [Engine::Sqlite, Engine::Duckdb, Engine::Chdb, Engine::Tantivy];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::SqlitePy => "sqlite-py",
            Engine::Duckdb => "duckdb",
            Engine::Chdb => "chdb",
            Engine::Tantivy => "tantivy",
        }
    }

    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::SqlitePy => "SQLite (Python)",
            Engine::Duckdb => "DuckDB",
            Engine::Chdb => "chDB",
            Engine::Tantivy => "tantivy",
        }
    }

    pub fn parse(s: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name() == s)
    }

    /// The script and the Python module it needs, for the engines run in Python.
    fn script(self) -> Option<(&'static str, &'static str)> {
        match self {
            Engine::Sqlite => None,
            Engine::SqlitePy => Some(("sqlite_baseline.py", "sqlite3")),
            Engine::Duckdb => Some(("duckdb_baseline.py", "duckdb")),
            Engine::Chdb => Some(("chdb_baseline.py", "chdb")),
            Engine::Tantivy => Some(("tantivy_baseline.py", "tantivy")),
        }
    }

    pub fn is_python(self) -> bool {
        self.script().is_some()
    }

    /// Hard-coded, for the up-front time estimate only: load rate in events/s, measured on this machine kind
    /// at 1 M events while other builds were running (SQLite's durable ingest: 9 k/s on a quiet machine).
    pub fn load_rate(self) -> f64 {
        match self {
            Engine::Sqlite => 9_000.0,
            Engine::SqlitePy => 9_000.0,
            Engine::Duckdb => 32_000.0,
            Engine::Chdb => 14_000.0,
            Engine::Tantivy => 24_000.0,
        }
    }

    /// Hard-coded, for the estimate only: wall time per lookup of the timed runs at `events`, from the
    /// throughput measured at 1 M (2 clients, a loaded machine). The column stores scan the filter columns
    /// for rare values, so their time grows with the events; the indexes' grows far slower.
    pub fn lookup_secs(self, events: u64) -> f64 {
        let millions = (events as f64 / 1e6).max(0.1);
        match self {
            Engine::Sqlite => 0.005,
            Engine::SqlitePy => 0.013,
            Engine::Duckdb => 0.008 * millions,
            Engine::Chdb => 0.012 * millions,
            Engine::Tantivy => 0.004,
        }
    }
}

/// Parses `--baselines sqlite,duckdb,…` (`none` for no baseline).
pub fn parse_list(s: &str) -> Result<Vec<Engine>> {
    if s.trim() == "none" || s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim) {
        let e = Engine::parse(name).with_context(|| {
            let known: Vec<&str> = Engine::ALL.iter().map(|e| e.name()).collect();
            format!("unknown baseline {name:?}; known: {}, or none", known.join(", "))
        })?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Where the scripts live: the flag, else `crates/bench/baselines` of the source tree this was built from.
pub fn scripts_dir(flag: Option<&Path>) -> PathBuf {
    flag.map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines"), Path::to_path_buf)
}

/// Why an engine will not run, when it will not.
pub fn unavailable(engine: Engine, python: &Path, scripts: &Path) -> Option<String> {
    let (script, module) = engine.script()?;
    if !scripts.join(script).is_file() {
        return Some(format!("{} not found (--baselines-dir)", scripts.join(script).display()));
    }
    let ok = Command::new(python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        None
    } else {
        Some(format!("Python module {module} not installed: `{} -m pip install {module}`", python.display()))
    }
}

/// Writes the queries file the scripts read (`baselines/harness.py` describes it).
pub fn write_queries(path: &Path, queries: &[Query]) -> Result<()> {
    let qs: Vec<Value> = queries
        .iter()
        .map(|q| {
            let attrs: Vec<Value> = q.attrs.iter().map(|(k, v)| json!([k.as_str(), v])).collect();
            json!({"group": q.group, "attrs": attrs})
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({"page": 50, "queries": qs}))?;
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// One timed run of a script: `clients` concurrent clients.
#[derive(Debug)]
pub struct EngineRun {
    pub clients: usize,
    /// `process` or `thread`.
    pub mode: String,
    pub threads_per_query: usize,
    pub per_sec: f64,
    pub groups: Vec<(String, Latencies)>,
    pub all: Latencies,
}

/// What a script reported.
#[derive(Debug)]
pub struct EngineResult {
    pub engine: Engine,
    pub version: String,
    pub setup: String,
    pub load: Duration,
    pub bytes_on_disk: u64,
    pub events: Option<u64>,
    pub pages: Vec<Vec<String>>,
    /// The concurrent run (as many clients as opentrail's), then the one-client run.
    pub concurrent: EngineRun,
    pub single: Option<EngineRun>,
}

/// Everything a script needs to run.
pub struct RunSpec<'a> {
    pub python: &'a Path,
    pub scripts: &'a Path,
    pub columns: &'a Path,
    pub queries_file: &'a Path,
    pub workdir: &'a Path,
    pub clients: usize,
    pub reps: usize,
    pub single_reps: usize,
}

/// Runs one engine's script; its progress goes to our stderr, its JSON report comes back parsed.
pub fn run(engine: Engine, spec: &RunSpec<'_>, queries: &[Query]) -> Result<EngineResult> {
    let Some((script, _)) = engine.script() else { bail!("{} is not a Python baseline", engine.name()) };
    let out = Command::new(spec.python)
        .arg(spec.scripts.join(script))
        .arg("--columns")
        .arg(spec.columns)
        .arg("--queries")
        .arg(spec.queries_file)
        .arg("--workdir")
        .arg(spec.workdir)
        .args(["--clients", &spec.clients.to_string()])
        .args(["--reps", &spec.reps.to_string()])
        .args(["--single-reps", &spec.single_reps.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("start {} {script}", spec.python.display()))?;
    if !out.status.success() {
        bail!("{script} exited with {}", out.status);
    }
    let v: Value = serde_json::from_slice(&out.stdout).with_context(|| format!("{script} printed no JSON report"))?;
    parse_report(engine, &v, queries).with_context(|| format!("{script}'s report"))
}

fn parse_report(engine: Engine, v: &Value, queries: &[Query]) -> Result<EngineResult> {
    let pages = v["pages"]
        .as_array()
        .context("no pages")?
        .iter()
        .map(|p| p.as_array().map(|ids| ids.iter().map(|i| i.as_str().unwrap_or_default().to_string()).collect()))
        .collect::<Option<Vec<Vec<String>>>>()
        .context("pages are not lists of ids")?;
    if pages.len() != queries.len() {
        bail!("{} pages for {} queries", pages.len(), queries.len());
    }
    let mut runs = Vec::new();
    for r in v["runs"].as_array().context("no runs")? {
        let mut samples = Vec::new();
        for s in r["samples_us"].as_array().context("no samples_us")? {
            let q = s[0].as_u64().context("sample without query index")? as usize;
            let us = s[1].as_f64().context("sample without time")?;
            if q >= queries.len() {
                bail!("sample of query {q}, beyond the {} queries", queries.len());
            }
            samples.push((q, Duration::from_secs_f64(us / 1e6)));
        }
        runs.push(EngineRun {
            clients: r["clients"].as_u64().unwrap_or(0) as usize,
            mode: r["mode"].as_str().unwrap_or("?").to_string(),
            threads_per_query: r["threads_per_query"].as_u64().unwrap_or(0) as usize,
            per_sec: r["per_sec"].as_f64().unwrap_or(0.0),
            groups: by_group(queries, &samples),
            all: Latencies::new(samples.iter().map(|(_, d)| *d).collect()),
        });
    }
    let mut runs = runs.into_iter();
    let concurrent = runs.next().context("no timed run")?;
    Ok(EngineResult {
        engine,
        version: v["version"].as_str().unwrap_or("?").to_string(),
        setup: v["setup"].as_str().unwrap_or_default().to_string(),
        load: Duration::from_secs_f64(v["load_secs"].as_f64().unwrap_or(0.0)),
        bytes_on_disk: v["bytes_on_disk"].as_u64().unwrap_or(0),
        events: v["events"].as_u64(),
        pages,
        concurrent,
        single: runs.next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::AttributeKey;

    #[test]
    fn baseline_list_parses_names_and_none() {
        assert_eq!(parse_list("duckdb, chdb,duckdb").unwrap(), vec![Engine::Duckdb, Engine::Chdb]);
        assert!(parse_list("none").unwrap().is_empty());
        assert!(parse_list("postgres").is_err());
    }

    #[test]
    fn script_report_is_grouped_by_query_group() {
        let queries = vec![
            Query { group: "EventName".into(), attrs: vec![(AttributeKey::EventName, "A".into())] },
            Query { group: "EventName".into(), attrs: vec![(AttributeKey::EventName, "B".into())] },
            Query { group: "Username".into(), attrs: vec![(AttributeKey::Username, "u".into())] },
        ];
        let v = json!({
            "version": "1", "setup": "s", "load_secs": 2.5, "bytes_on_disk": 10, "events": 3,
            "pages": [["e1"], [], ["e2", "e3"]],
            "runs": [
                {"clients": 2, "mode": "process", "threads_per_query": 1, "per_sec": 100.0,
                 "samples_us": [[0, 100.0], [1, 300.0], [2, 2000.0]]},
                {"clients": 1, "mode": "process", "threads_per_query": 2, "per_sec": 50.0, "samples_us": [[2, 10.0]]}
            ]
        });
        let r = parse_report(Engine::Duckdb, &v, &queries).unwrap();
        assert_eq!(r.pages[2], vec!["e2".to_string(), "e3".to_string()]);
        assert_eq!(r.concurrent.groups[0].0, "EventName");
        assert_eq!(r.concurrent.groups[0].1.len(), 2);
        assert_eq!(r.concurrent.groups[1].1.p(50.0), Duration::from_millis(2));
        assert_eq!(r.single.unwrap().all.len(), 1);
    }
}
