//! The client subcommands: `ingest`, `lookup` and `gen`.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::sync::mpsc;

use anyhow::{Context, Result, anyhow, bail};
use client::Client;
use model::EventTime;
use serde_json::{Value, json};

/// Hard-coded: requests in flight at once during `opentrail ingest`.
const INGEST_PARALLELISM: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// One request's worth of records from one file.
struct Chunk {
    file: String,
    first_index: usize,
    records: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    duplicates: u64,
    failed: u64,
}

pub fn ingest(endpoint: &str, batch: usize, files: &[String]) -> Result<std::process::ExitCode> {
    let batch = batch.max(1);
    let client = std::sync::Arc::new(Client::new(endpoint)?);
    let progress = if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {human_pos} records sent ({per_sec}) {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (tx, rx) = mpsc::sync_channel::<Chunk>(INGEST_PARALLELISM * 2);
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let (res_tx, res_rx) = mpsc::channel::<Result<(Chunk, Value)>>();
    let workers: Vec<_> = (0..INGEST_PARALLELISM)
        .map(|_| {
            let rx = rx.clone();
            let res_tx = res_tx.clone();
            let client = client.clone();
            std::thread::spawn(move || {
                while let Ok(chunk) = rx.lock().map_err(|_| ()).and_then(|r| r.recv().map_err(|_| ())) {
                    let result = send_chunk(&client, &chunk).map(|v| (chunk, v));
                    if res_tx.send(result).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(res_tx);
    let reporter = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut first_error = None;
            for r in res_rx {
                match r {
                    Ok((chunk, v)) => {
                        progress.inc(chunk.records.len() as u64);
                        tally.accepted += v["accepted"].as_array().map_or(0, |a| a.len() as u64);
                        tally.duplicates += v["duplicates"].as_u64().unwrap_or(0);
                        for f in v["failed"].as_array().into_iter().flatten() {
                            tally.failed += 1;
                            let index = chunk.first_index as u64 + f["index"].as_u64().unwrap_or(0);
                            progress.suspend(|| {
                                eprintln!(
                                    "{}: record {}: {}: {}",
                                    chunk.file,
                                    index + 1,
                                    f["errorCode"].as_str().unwrap_or("?"),
                                    f["errorMessage"].as_str().unwrap_or("")
                                )
                            });
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            (tally, first_error)
        })
    };
    let mut read_error = None;
    for file in files {
        if let Err(e) = read_chunks(file, batch, &tx) {
            read_error = Some(e.context(format!("read {file}")));
            break;
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
    let (tally, send_error) = reporter.join().map_err(|_| anyhow!("reporter thread panicked"))?;
    progress.finish_and_clear();
    eprintln!("accepted {} records ({} already stored), failed {}", tally.accepted, tally.duplicates, tally.failed);
    if let Some(e) = read_error.or(send_error) {
        return Err(e);
    }
    Ok(if tally.failed > 0 { std::process::ExitCode::from(1) } else { std::process::ExitCode::SUCCESS })
}

fn send_chunk(client: &Client, chunk: &Chunk) -> Result<Value> {
    let mut body = Vec::with_capacity(chunk.records.iter().map(|r| r.len() + 1).sum());
    for r in &chunk.records {
        // One record per line: records from JSON arrays may be pretty-printed, so compact them.
        if r.contains(&b'\n') {
            let v: Value = serde_json::from_slice(r).context("re-encode record")?;
            serde_json::to_writer(&mut body, &v)?;
        } else {
            body.extend_from_slice(r);
        }
        body.push(b'\n');
    }
    let out = client.call("/v1/events", &[("content-type", "application/x-ndjson")], &body, "opentrail")?;
    serde_json::from_slice(&out).context("server answered with invalid JSON")
}

/// Reads one input (a path or `-`), gunzipping when it is gzip, and queues its records in chunks.
fn read_chunks(file: &str, batch: usize, tx: &mpsc::SyncSender<Chunk>) -> Result<()> {
    let raw: Box<dyn Read> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("open {file}"))?)
    };
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let is_gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead> = if is_gzip {
        Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    let send = |first_index: usize, records: Vec<Vec<u8>>| {
        tx.send(Chunk { file: file.to_string(), first_index, records }).map_err(|_| anyhow!("all senders failed"))
    };
    let head = reader.fill_buf()?;
    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let is_document = match first {
        Some(b'[') => true,
        Some(b'{') => {
            let s = head.trim_ascii_start();
            s[1..].trim_ascii_start().starts_with(b"\"Records\"")
        }
        _ => false,
    };
    if is_document {
        let mut all = Vec::new();
        reader.read_to_end(&mut all)?;
        let parts = service::split_batch(&all).map_err(|e| anyhow!("{e}"))?;
        for (i, chunk) in parts.chunks(batch).enumerate() {
            send(i * batch, chunk.iter().map(|r| r.to_vec()).collect())?;
        }
        return Ok(());
    }
    let mut records = Vec::with_capacity(batch);
    let mut first_index = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let t = line.trim_ascii();
        if t.is_empty() {
            continue;
        }
        records.push(t.to_vec());
        if records.len() == batch {
            let n = records.len();
            send(first_index, std::mem::replace(&mut records, Vec::with_capacity(batch)))?;
            first_index += n;
        }
    }
    if !records.is_empty() {
        send(first_index, records)?;
    }
    Ok(())
}

pub fn lookup(
    endpoint: &str,
    attrs: &[String],
    start: Option<&str>,
    end: Option<&str>,
    max: usize,
    insights: bool,
    output: Output,
) -> Result<std::process::ExitCode> {
    let client = Client::new(endpoint)?;
    let mut params = json!({});
    let lookup_attrs = crate::query::lookup_attributes(attrs)?;
    if !lookup_attrs.is_empty() {
        params["LookupAttributes"] = Value::Array(lookup_attrs);
    }
    for (flag, value, field) in [("--start", start, "StartTime"), ("--end", end, "EndTime")] {
        if let Some(v) = value {
            let t = EventTime::parse_flexible(v).map_err(|e| anyhow!("{flag}: {e}"))?;
            params[field] = json!(t.epoch_seconds_f64());
        }
    }
    if insights {
        params["EventCategory"] = json!("insight");
    }
    let mut events: Vec<Value> = Vec::new();
    while events.len() < max {
        params["MaxResults"] = json!((max - events.len()).min(50));
        let page = client.cloudtrail("LookupEvents", &params)?;
        events.extend(page["Events"].as_array().cloned().unwrap_or_default());
        match page["NextToken"].as_str() {
            Some(t) if !t.is_empty() => params["NextToken"] = json!(t),
            _ => break,
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match output {
        Output::Json => {
            for e in &events {
                writeln!(out, "{}", e["CloudTrailEvent"].as_str().unwrap_or("{}"))?;
            }
        }
        Output::Table => print_table(&mut out, &events)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// How the call was made, in a word: the console, the aws CLI, an SDK, Terraform…
fn via(record: &Value) -> String {
    let ua = record["userAgent"].as_str().unwrap_or("");
    if record["sessionCredentialFromConsole"].as_str() == Some("true")
        || ua.contains("console.amazonaws.com")
        || ua.contains("signin.amazonaws.com")
        || ua == "AWS Internal"
    {
        return "console".into();
    }
    for (needle, name) in [
        ("aws-cli", "aws-cli"),
        ("Terraform", "terraform"),
        ("Boto3", "boto3"),
        ("botocore", "botocore"),
        ("aws-sdk-", "aws-sdk"),
    ] {
        if ua.contains(needle) {
            return name.into();
        }
    }
    ua.chars().take(24).collect()
}

/// How the record arrived, short: the kind, and the last part of its detail (`ingest:ingester` for
/// `ingest:arn:aws:iam::123456789012:user/ingester`).
fn provenance(text: &str) -> String {
    match text.split_once(':') {
        Some((kind, detail)) => format!("{kind}:{}", detail.rsplit(['/', ':']).next().unwrap_or(detail)),
        None => text.to_string(),
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max - 1).collect::<String>()) }
}

fn print_table(out: &mut impl Write, events: &[Value]) -> std::io::Result<()> {
    let header =
        ["TIME", "SOURCE", "EVENT", "USER", "ARN", "ACCESS KEY", "SOURCE IP", "VIA", "ERROR", "PROVENANCE", "REQUEST"];
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let r: Value =
                e["CloudTrailEvent"].as_str().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
            let time = e["EventTime"].as_f64().and_then(EventTime::from_epoch_seconds_f64).map(|t| t.to_rfc3339());
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            let request = match &r["requestParameters"] {
                Value::Null => String::new(),
                v => short(&v.to_string(), 60),
            };
            vec![
                time.unwrap_or_default(),
                s(&e["EventSource"]),
                s(&e["EventName"]),
                s(&e["Username"]),
                s(&r["userIdentity"]["arn"]),
                s(&e["AccessKeyId"]),
                s(&r["sourceIPAddress"]),
                via(&r),
                s(&r["errorCode"]),
                provenance(&s(&e["Provenance"])),
                request,
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in &rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    if rows.is_empty() {
        writeln!(out, "(no events)")?;
    }
    Ok(())
}

/// `90s`, `30m`, `12h`, `7d`, or plain seconds.
fn parse_span(s: &str) -> Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| anyhow!("--span '{s}' must look like 90s, 30m, 12h or 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("--span '{s}' must look like 90s, 30m, 12h or 7d"),
    };
    if secs <= 0 {
        bail!("--span must be positive");
    }
    Ok(secs * 1000)
}

pub fn gen_events(events: u64, seed: u64, start: Option<&str>, span: Option<&str>) -> Result<std::process::ExitCode> {
    let mut opts = eventgen::GenOptions { events, seed, ..Default::default() };
    if let Some(s) = start {
        opts.start = EventTime::parse_flexible(s).map_err(|e| anyhow!("--start: {e}"))?;
    }
    if let Some(s) = span {
        opts.span_ms = parse_span(s)?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    match eventgen::write_ndjson(&opts, &mut out).and_then(|_| out.flush()) {
        Ok(()) => Ok(std::process::ExitCode::SUCCESS),
        // `opentrail gen | head` closes the pipe early: that is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(std::process::ExitCode::SUCCESS),
        Err(e) => Err(e).context("write events"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_with_units() {
        assert_eq!(parse_span("90s").unwrap(), 90_000);
        assert_eq!(parse_span("2h").unwrap(), 7_200_000);
        assert_eq!(parse_span("7d").unwrap(), 604_800_000);
        assert_eq!(parse_span("15").unwrap(), 15_000);
        assert!(parse_span("1y").is_err());
        assert!(parse_span("0").is_err());
    }

    #[test]
    fn via_names_the_tool() {
        assert_eq!(
            via(&json!({"userAgent":"aws-cli/2.15.0 Python/3.11","sessionCredentialFromConsole":null})),
            "aws-cli"
        );
        assert_eq!(via(&json!({"userAgent":"Mozilla/5.0","sessionCredentialFromConsole":"true"})), "console");
    }
}
