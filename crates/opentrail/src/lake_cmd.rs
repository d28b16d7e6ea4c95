//! `opentrail query "SQL"`: CloudTrail Lake SQL through StartQuery / DescribeQuery / GetQueryResults, with a
//! spinner on a terminal while the query runs and its rows printed as a table, CSV or NDJSON. The store is
//! `--store` (a name, id or ARN), by default `opentrail-default`, created on first use; `FROM events` (or a
//! JOIN on `events`) names it, so a query need not spell its id.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use client::Client;
use serde_json::{Value, json};

/// The store `opentrail query` uses when `--store` is not given.
pub const DEFAULT_STORE: &str = "opentrail-default";

/// `--output` of `opentrail query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryOutput {
    /// Aligned columns with a header.
    Table,
    /// A header and one row per result, RFC 4180 quoting.
    Csv,
    /// One JSON object per row, columns as members (values as strings, as CloudTrail Lake gives them).
    Json,
}

pub struct QueryArgs<'a> {
    pub sql: &'a str,
    pub store: Option<&'a str>,
    pub output: QueryOutput,
}

pub fn query(endpoint: &str, args: &QueryArgs) -> Result<std::process::ExitCode> {
    let client = Client::new(endpoint)?;
    let id = store_id(&client, args.store)?;
    let sql = name_store(args.sql, &id);
    let started = client.cloudtrail("StartQuery", &json!({"QueryStatement": sql})).context("StartQuery")?;
    let qid = started["QueryId"].as_str().ok_or_else(|| anyhow!("StartQuery answered without a QueryId"))?.to_string();
    let spinner = spinner();
    // Long-polls: each DescribeQuery waits on the server for the query to settle (api::WAIT_HEADER), so the
    // answer is heard of as it is ready; the spinner is updated between waits. A server that does not wait
    // (one from before the header) is polled every 20 ms instead.
    let wait = Duration::from_millis(500);
    let wait_header = wait.as_millis().to_string();
    let described = loop {
        let asked = std::time::Instant::now();
        let d = client
            .cloudtrail_with("DescribeQuery", &json!({"QueryId": qid}), &[(api::WAIT_HEADER, &wait_header)])
            .context("DescribeQuery")?;
        let status = d["QueryStatus"].as_str().unwrap_or_default().to_string();
        if !matches!(status.as_str(), "QUEUED" | "RUNNING") {
            break d;
        }
        let scanned = d["QueryStatistics"]["EventsScanned"].as_u64().unwrap_or(0);
        spinner.set_message(format!("{status} {qid} ({scanned} events scanned)"));
        spinner.tick();
        if asked.elapsed() < wait / 2 {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    spinner.finish_and_clear();
    let status = described["QueryStatus"].as_str().unwrap_or_default();
    if status != "FINISHED" {
        bail!("query {qid} {status}: {}", described["ErrorMessage"].as_str().unwrap_or("no reason given"));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut columns: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut token: Option<String> = None;
    let mut header_done = false;
    let mut printed = 0u64;
    loop {
        let mut params = json!({"QueryId": qid, "MaxQueryResults": 1000});
        if let Some(t) = &token {
            params["NextToken"] = json!(t);
        }
        let page = client.cloudtrail("GetQueryResults", &params).context("GetQueryResults")?;
        for row in page["QueryResultRows"].as_array().into_iter().flatten() {
            let cells: Vec<(String, String)> = row
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_object()?.iter().next().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").into())))
                .collect();
            if columns.is_empty() {
                columns = cells.iter().map(|(k, _)| k.clone()).collect();
            }
            printed += 1;
            match args.output {
                QueryOutput::Json => {
                    let obj: serde_json::Map<String, Value> =
                        cells.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                    writeln!(out, "{}", Value::Object(obj))?;
                }
                QueryOutput::Csv => {
                    if !header_done {
                        out.write_all(&csv_line(columns.iter())?)?;
                        header_done = true;
                    }
                    out.write_all(&csv_line(cells.iter().map(|(_, v)| v))?)?;
                }
                QueryOutput::Table => rows.push(cells.into_iter().map(|(_, v)| v).collect()),
            }
        }
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    if args.output == QueryOutput::Table {
        print_table(&mut out, &columns, &rows)?;
    }
    out.flush()?;
    let stats = &described["QueryStatistics"];
    if std::io::stderr().is_terminal() {
        eprintln!(
            "{} rows; {} events scanned, {} matched, {} bytes read, {} ms",
            printed,
            stats["EventsScanned"],
            stats["EventsMatched"],
            stats["BytesScanned"],
            stats["ExecutionTimeInMillis"]
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The id of `--store` (a name, id or ARN), or of the default store, created with every management event
/// and the common data events when it does not exist yet.
pub fn store_id(client: &Client, store: Option<&str>) -> Result<String> {
    let wanted = store.unwrap_or(DEFAULT_STORE);
    let mut token: Option<String> = None;
    loop {
        let mut params = json!({});
        if let Some(t) = &token {
            params["NextToken"] = json!(t);
        }
        let page = client.cloudtrail("ListEventDataStores", &params).context("ListEventDataStores")?;
        for s in page["EventDataStores"].as_array().into_iter().flatten() {
            let arn = s["EventDataStoreArn"].as_str().unwrap_or_default();
            let id = arn.rsplit('/').next().unwrap_or_default();
            if s["Status"].as_str() != Some("PENDING_DELETION")
                && (s["Name"].as_str() == Some(wanted) || arn == wanted || id == wanted)
            {
                return Ok(id.to_string());
            }
        }
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.into()),
            None => break,
        }
    }
    if store.is_some() {
        bail!("no event data store named {wanted}");
    }
    let data = |ty: &str| {
        json!({"Name": format!("{ty} data events"), "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": [ty]}]})
    };
    let created = client
        .cloudtrail(
            "CreateEventDataStore",
            &json!({
                "Name": DEFAULT_STORE,
                "AdvancedEventSelectors": [
                    {"Name": "Management events", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
                    data("AWS::S3::Object"), data("AWS::Lambda::Function"), data("AWS::DynamoDB::Table"),
                ],
            }),
        )
        .context("CreateEventDataStore (the default store)")?;
    let arn = created["EventDataStoreArn"].as_str().ok_or_else(|| anyhow!("CreateEventDataStore gave no ARN"))?;
    Ok(arn.rsplit('/').next().unwrap_or_default().to_string())
}

/// Replaces the table name `events` (any case, unquoted) with the store's id where a table is named: after
/// FROM or JOIN, and after a comma in a FROM list (`FROM events a, events b`).
pub fn name_store(sql: &str, id: &str) -> String {
    /// Words that end a FROM list.
    const AFTER_FROM: [&str; 12] = [
        "where",
        "group",
        "order",
        "having",
        "limit",
        "union",
        "intersect",
        "except",
        "select",
        "on",
        "using",
        "window",
    ];
    struct State {
        out: String,
        word: String,
        /// The word before, when nothing but whitespace came between; "," after a comma.
        prev: Option<String>,
        in_from: bool,
    }
    impl State {
        fn flush(&mut self, id: &str) {
            if self.word.is_empty() {
                return;
            }
            let names_table = self.prev.as_deref().is_some_and(|p| {
                p.eq_ignore_ascii_case("from") || p.eq_ignore_ascii_case("join") || (p == "," && self.in_from)
            });
            if names_table && self.word.eq_ignore_ascii_case("events") {
                self.out.push_str(id);
            } else {
                self.out.push_str(&self.word);
            }
            if self.word.eq_ignore_ascii_case("from") {
                self.in_from = true;
            } else if AFTER_FROM.iter().any(|k| self.word.eq_ignore_ascii_case(k)) {
                self.in_from = false;
            }
            self.prev = Some(std::mem::take(&mut self.word));
        }
    }
    let mut st = State { out: String::with_capacity(sql.len()), word: String::new(), prev: None, in_from: false };
    let mut in_quote: Option<char> = None;
    for c in sql.chars() {
        if let Some(q) = in_quote {
            st.out.push(c);
            if c == q {
                in_quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '-' {
            st.word.push(c);
            continue;
        }
        st.flush(id);
        if c == '\'' || c == '"' {
            in_quote = Some(c);
            st.prev = None;
        } else if c == ',' {
            st.prev = Some(",".into());
        } else if !c.is_whitespace() {
            st.prev = None;
        }
        st.out.push(c);
    }
    st.flush(id);
    st.out
}

/// One RFC 4180 line.
fn csv_line<'a>(fields: impl Iterator<Item = &'a String>) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields)?;
    w.into_inner().map_err(|e| anyhow!("csv: {e}"))
}

fn spinner() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

fn print_table(out: &mut impl Write, columns: &[String], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for r in rows {
        for (w, v) in widths.iter_mut().zip(r) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(columns))?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

/// `--format` of `opentrail export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// Parquet files of the lake's schema (docs/formats/lake.md), 50,000 events each by default.
    Parquet,
    /// CloudTrail log files (`{"Records":[…]}`, gzip), 1000 events each by default.
    Cloudtrail,
}

impl ExportFormat {
    /// Events per file unless `--events-per-file` says otherwise. Parquet: large files, which is what engines
    /// read well (a file's events are held in memory while it is written). CloudTrail log files: the size AWS
    /// delivers, well within what `opentrail ingest` sends in one request.
    pub fn default_events_per_file(self) -> u64 {
        match self {
            ExportFormat::Parquet => 50_000,
            ExportFormat::Cloudtrail => 1000,
        }
    }
}

pub struct ExportArgs<'a> {
    pub start: &'a str,
    pub end: &'a str,
    pub format: ExportFormat,
    pub out: &'a std::path::Path,
    /// `None`: the format's default.
    pub events_per_file: Option<u64>,
}

/// Where an export stands: written after every file (atomically), read to resume.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
#[serde(rename_all = "camelCase")]
struct ExportPosition {
    start_ms: i64,
    end_ms: i64,
    format: ExportFormat,
    /// The LookupEvents token of the first page not yet in a file; `None` at the start and when complete.
    next_token: Option<String>,
    files: u64,
    events: u64,
    done: bool,
}

const POSITION_FILE: &str = ".opentrail-export.json";

/// Hard-coded: LookupEvents' native page size.
const PAGE_EVENTS: u64 = 1000;

/// Exports the events of `[start, end]` through the native LookupEvents (pages of up to 1000, newest first)
/// into files of `events_per_file` events; a position file in `out`, written after each file, lets an
/// interrupted export resume after the last file written (a file being written when it stopped is written
/// again, whole, under the same name).
pub fn export(endpoint: &str, args: &ExportArgs) -> Result<std::process::ExitCode> {
    use model::EventTime;
    let now = EventTime(chrono::Utc::now().timestamp_millis());
    let start = crate::commands::parse_time_or_ago(args.start, now).map_err(|e| anyhow!("--start: {e}"))?;
    let end = crate::commands::parse_time_or_ago(args.end, now).map_err(|e| anyhow!("--end: {e}"))?;
    if start.0 > end.0 {
        bail!("--start is after --end");
    }
    let per_file = args.events_per_file.unwrap_or_else(|| args.format.default_events_per_file());
    if per_file == 0 {
        bail!("--events-per-file must be at least 1");
    }
    std::fs::create_dir_all(args.out).with_context(|| format!("create {}", args.out.display()))?;
    let pos_path = args.out.join(POSITION_FILE);
    let mut pos = match std::fs::read(&pos_path) {
        Ok(bytes) => {
            let p: ExportPosition = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not an export position file", pos_path.display()))?;
            // A time given as a duration ago ("7d") moved since the export began: resume the range it began.
            let relative = [args.start, args.end].iter().any(|t| EventTime::parse_flexible(t.trim()).is_err());
            if p.format != args.format || (!relative && (p.start_ms, p.end_ms) != (start.0, end.0)) {
                bail!(
                    "{} holds the {} export of {} to {}; give the same --start, --end and --format to resume it, or \
                     use another --out",
                    pos_path.display(),
                    p.format.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string()),
                    EventTime(p.start_ms),
                    EventTime(p.end_ms),
                );
            }
            p
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ExportPosition {
            start_ms: start.0,
            end_ms: end.0,
            format: args.format,
            next_token: None,
            files: 0,
            events: 0,
            done: false,
        },
        Err(e) => return Err(e).with_context(|| format!("read {}", pos_path.display())),
    };
    let (start, end) = (EventTime(pos.start_ms), EventTime(pos.end_ms));
    if pos.done {
        eprintln!("export already complete: {} events in {} files in {}", pos.events, pos.files, args.out.display());
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if pos.files > 0 {
        eprintln!(
            "resuming the export of {start} to {end}: {} events in {} files already written",
            pos.events, pos.files
        );
    }
    let client = Client::new(endpoint)?;
    let progress = spinner();
    progress.set_message("starting");
    // Records fetched since the last file was written, and the token to fetch after them.
    let mut pending: Vec<String> = Vec::new();
    let mut token = pos.next_token.clone();
    loop {
        let want = (per_file - pending.len() as u64).min(PAGE_EVENTS);
        let mut params = json!({
            "StartTime": start.epoch_seconds_f64(),
            "EndTime": end.epoch_seconds_f64(),
            "MaxResults": want,
        });
        if let Some(t) = &token {
            params["NextToken"] = json!(t);
        }
        let body = params.to_string();
        let out = client.call("/v1/lookup", &[("content-type", "application/json")], body.as_bytes(), "opentrail")?;
        let page: Value = serde_json::from_slice(&out).context("server answered with invalid JSON")?;
        pending.extend(
            page["Events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["CloudTrailEvent"].as_str().map(str::to_string)),
        );
        token = page["NextToken"].as_str().map(str::to_string);
        let last = token.is_none();
        progress.set_message(format!("{} events in {} files, {} more fetched", pos.events, pos.files, pending.len()));
        if !last && (pending.len() as u64) < per_file {
            continue;
        }
        if !pending.is_empty() {
            write_export_file(args.out, args.format, pos.files, &pending)?;
            pos.files += 1;
            pos.events += pending.len() as u64;
            pending.clear();
        }
        pos.next_token = token.clone();
        pos.done = last;
        let bytes = serde_json::to_vec_pretty(&pos)?;
        atomic_file::write_atomic(&pos_path, &bytes, 0o644)
            .map_err(|e| e.source)
            .with_context(|| format!("write {}", pos_path.display()))?;
        progress.set_message(format!("{} events in {} files", pos.events, pos.files));
        if last {
            break;
        }
    }
    progress.finish_and_clear();
    eprintln!("exported {} events in {} files to {}", pos.events, pos.files, args.out.display());
    Ok(std::process::ExitCode::SUCCESS)
}

/// Writes file number `n` of an export (replacing a partial one a killed export left).
fn write_export_file(out: &std::path::Path, format: ExportFormat, n: u64, records: &[String]) -> Result<()> {
    use model::EventTime;
    match format {
        ExportFormat::Parquet => {
            let path = out.join(format!("part-{n:08}.parquet"));
            lake::table::write_records(&path, records).with_context(|| format!("write {}", path.display()))?;
        }
        ExportFormat::Cloudtrail => {
            let mut b = integrity::logfile::LogFileBuilder::new();
            for r in records {
                let t = serde_json::from_str::<Value>(r)
                    .ok()
                    .and_then(|v| v["eventTime"].as_str().and_then(|t| EventTime::parse_flexible(t).ok()))
                    .unwrap_or(EventTime(0));
                b.push(r.as_bytes(), t);
            }
            let path = out.join(format!("part-{n:08}.json.gz"));
            atomic_file::write_atomic(&path, &b.finish().gzip, 0o644)
                .map_err(|e| e.source)
                .with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(())
}

/// A spinner with the events written so far, on a terminal only.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_after_from_or_join_names_the_store() {
        let id = "3f1e2d3c-0000-4000-8000-000000000001";
        assert_eq!(
            name_store("SELECT eventName FROM events WHERE x = 'FROM events' GROUP BY 1", id),
            format!("SELECT eventName FROM {id} WHERE x = 'FROM events' GROUP BY 1")
        );
        assert_eq!(
            name_store("select * from EVENTS a join events b on a.x=b.x", id),
            format!("select * from {id} a join {id} b on a.x=b.x")
        );
        assert_eq!(name_store("SELECT events FROM x", id), "SELECT events FROM x");
        assert_eq!(
            name_store("SELECT a.x, events FROM events a, events b, events WHERE a.y = 'events, events'", id),
            format!("SELECT a.x, events FROM {id} a, {id} b, {id} WHERE a.y = 'events, events'")
        );
        assert_eq!(
            name_store("SELECT count(*) FROM events GROUP BY x, events ORDER BY 1, events", id),
            format!("SELECT count(*) FROM {id} GROUP BY x, events ORDER BY 1, events")
        );
    }
}
