//! `opentrail query "SQL"`: CloudTrail Lake SQL through StartQuery / DescribeQuery / GetQueryResults, with a
//! spinner on a terminal while the query runs and its rows printed as a table, CSV or NDJSON. The store is
//! `--store` (a name, id or ARN), by default `opentrail-default`, created on first use; `FROM events` (or a
//! JOIN on `events`) names it, so a query need not spell its id.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
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
    // Polls quickly at first (short queries answer in milliseconds), then every 20 ms: a DescribeQuery costs
    // the server well under a millisecond, and a coarser step would add up to the step to every answer.
    let mut wait = Duration::from_millis(2);
    let described = loop {
        let d = client.cloudtrail("DescribeQuery", &json!({"QueryId": qid})).context("DescribeQuery")?;
        let status = d["QueryStatus"].as_str().unwrap_or_default().to_string();
        if !matches!(status.as_str(), "QUEUED" | "RUNNING") {
            break d;
        }
        let scanned = d["QueryStatistics"]["EventsScanned"].as_u64().unwrap_or(0);
        spinner.set_message(format!("{status} {qid} ({scanned} events scanned)"));
        spinner.tick();
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(20));
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

/// Replaces the table name `events` after FROM or JOIN (any case, unquoted) with the store's id.
pub fn name_store(sql: &str, id: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut prev: Option<String> = None;
    let mut word = String::new();
    let mut in_quote: Option<char> = None;
    let flush = |word: &mut String, prev: &mut Option<String>, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let after_from =
            prev.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("from") || p.eq_ignore_ascii_case("join"));
        if after_from && word.eq_ignore_ascii_case("events") {
            out.push_str(id);
        } else {
            out.push_str(word);
        }
        *prev = Some(std::mem::take(word));
    };
    for c in sql.chars() {
        if let Some(q) = in_quote {
            out.push(c);
            if c == q {
                in_quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '-' {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut prev, &mut out);
        if c == '\'' || c == '"' {
            in_quote = Some(c);
            prev = None;
        } else if !c.is_whitespace() {
            prev = None;
        }
        out.push(c);
    }
    flush(&mut word, &mut prev, &mut out);
    out
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
    /// Parquet files of the lake's schema (docs/formats/lake.md), one per page of 1000 events.
    Parquet,
    /// CloudTrail log files (`{"Records":[…]}`, gzip), one per page of 1000 events.
    Cloudtrail,
}

pub struct ExportArgs<'a> {
    pub start: &'a str,
    pub end: &'a str,
    pub format: ExportFormat,
    pub out: &'a std::path::Path,
}

/// Where an export stands: written after every file (atomically), read to resume.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
#[serde(rename_all = "camelCase")]
struct ExportPosition {
    start_ms: i64,
    end_ms: i64,
    format: ExportFormat,
    /// The LookupEvents token of the next page; `None` when the export is complete.
    next_token: Option<String>,
    files: u64,
    events: u64,
    done: bool,
}

const POSITION_FILE: &str = ".opentrail-export.json";

/// Exports the events of `[start, end]` through the native LookupEvents (pages of 1000, newest first), one
/// file per page; a position file in `out` lets an interrupted export resume where it stopped.
pub fn export(endpoint: &str, args: &ExportArgs) -> Result<std::process::ExitCode> {
    use model::EventTime;
    let now = EventTime(chrono::Utc::now().timestamp_millis());
    let start = crate::commands::parse_time_or_ago(args.start, now).map_err(|e| anyhow!("--start: {e}"))?;
    let end = crate::commands::parse_time_or_ago(args.end, now).map_err(|e| anyhow!("--end: {e}"))?;
    if start.0 > end.0 {
        bail!("--start is after --end");
    }
    std::fs::create_dir_all(args.out).with_context(|| format!("create {}", args.out.display()))?;
    let pos_path = args.out.join(POSITION_FILE);
    let mut pos = match std::fs::read(&pos_path) {
        Ok(bytes) => {
            let p: ExportPosition = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not an export position file", pos_path.display()))?;
            if (p.start_ms, p.end_ms, p.format) != (start.0, end.0, args.format) {
                bail!(
                    "{} holds an export of another range or format; use another --out or remove it",
                    pos_path.display()
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
    if pos.done {
        eprintln!("export already complete: {} events in {} files", pos.events, pos.files);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let client = Client::new(endpoint)?;
    loop {
        let mut params = json!({
            "StartTime": start.epoch_seconds_f64(),
            "EndTime": end.epoch_seconds_f64(),
            "MaxResults": 1000,
        });
        if let Some(t) = &pos.next_token {
            params["NextToken"] = json!(t);
        }
        let body = params.to_string();
        let out = client.call("/v1/lookup", &[("content-type", "application/json")], body.as_bytes(), "opentrail")?;
        let page: Value = serde_json::from_slice(&out).context("server answered with invalid JSON")?;
        let records: Vec<String> = page["Events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["CloudTrailEvent"].as_str().map(str::to_string))
            .collect();
        if !records.is_empty() {
            let n = pos.files;
            match args.format {
                ExportFormat::Parquet => {
                    let path = args.out.join(format!("part-{n:08}.parquet"));
                    lake::table::write_records(&path, &records).with_context(|| format!("write {}", path.display()))?;
                }
                ExportFormat::Cloudtrail => {
                    let mut b = integrity::logfile::LogFileBuilder::new();
                    for r in &records {
                        let t = serde_json::from_str::<Value>(r)
                            .ok()
                            .and_then(|v| v["eventTime"].as_str().and_then(|t| EventTime::parse_flexible(t).ok()))
                            .unwrap_or(EventTime(0));
                        b.push(r.as_bytes(), t);
                    }
                    let path = args.out.join(format!("part-{n:08}.json.gz"));
                    atomic_file::write_atomic(&path, &b.finish().gzip, 0o644)
                        .map_err(|e| e.source)
                        .with_context(|| format!("write {}", path.display()))?;
                }
            }
            pos.files += 1;
            pos.events += records.len() as u64;
        }
        pos.next_token = page["NextToken"].as_str().map(str::to_string);
        pos.done = pos.next_token.is_none();
        let bytes = serde_json::to_vec_pretty(&pos)?;
        atomic_file::write_atomic(&pos_path, &bytes, 0o644)
            .map_err(|e| e.source)
            .with_context(|| format!("write {}", pos_path.display()))?;
        if pos.done {
            break;
        }
    }
    eprintln!("exported {} events in {} files to {}", pos.events, pos.files, args.out.display());
    Ok(std::process::ExitCode::SUCCESS)
}

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
    }
}
