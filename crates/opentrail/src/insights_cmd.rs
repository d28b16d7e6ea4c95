//! `opentrail insights replay|series`: the Insights detector (crates/insights) with no server — over
//! historical events, or over one numeric series for evaluation.

use std::io::Write;
use std::sync::mpsc;

use anyhow::{Context, Result, anyhow};
use insights::{Call, Detector, Insight, InsightState, Settings};
use model::EventFacts;
use service::insights::call_from_facts;

use crate::ingest::{Chunk, Plan, read_chunks};

/// How `insights replay` prints what it raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayOutput {
    /// One line per Start and End.
    Table,
    /// The Insights events as CloudTrail writes them, one JSON object per line.
    Json,
}

/// One call of the history, owned (the replay sorts the history by eventTime before it runs the detector).
struct OwnedCall {
    time_ms: i64,
    region: String,
    event_source: String,
    event_name: String,
    read_only: bool,
    error_code: Option<String>,
    identity_arn: Option<String>,
    user_agent: Option<String>,
}

impl OwnedCall {
    fn of(c: &Call<'_>) -> OwnedCall {
        OwnedCall {
            time_ms: c.time_ms,
            region: c.region.to_string(),
            event_source: c.event_source.to_string(),
            event_name: c.event_name.to_string(),
            read_only: c.read_only,
            error_code: c.error_code.map(str::to_string),
            identity_arn: c.identity_arn.map(str::to_string),
            user_agent: c.user_agent.map(str::to_string),
        }
    }

    fn call(&self) -> Call<'_> {
        Call {
            time_ms: self.time_ms,
            region: &self.region,
            event_source: &self.event_source,
            event_name: &self.event_name,
            read_only: self.read_only,
            error_code: self.error_code.as_deref(),
            identity_arn: self.identity_arn.as_deref(),
            user_agent: self.user_agent.as_deref(),
        }
    }
}

/// Runs the detector over the management events of `files` (NDJSON, `{"Records":[…]}` log files, gzip'd or
/// not; folders such as a synced `AWSLogs/` tree are walked as `opentrail ingest` walks them, digests
/// skipped) in eventTime order and prints every Insight it raises. Records that are not JSON objects, lack an
/// eventTime, eventSource or eventName, or are Insights events themselves are skipped and counted.
pub fn replay(
    files: &[String],
    settings: Settings,
    data_events: bool,
    output: ReplayOutput,
) -> Result<std::process::ExitCode> {
    let plan = Plan::gather(files)?;
    let (tx, rx) = mpsc::sync_channel::<Chunk>(8);
    let reader = std::thread::spawn(move || -> Result<()> {
        let progress = indicatif::ProgressBar::hidden();
        for f in &plan.files {
            let name = f.to_string_lossy();
            read_chunks(&name, 10_000, &tx, &progress).with_context(|| name.to_string())?;
        }
        Ok(())
    });
    let mut calls = Vec::new();
    let (mut skipped, mut other_category) = (0u64, 0u64);
    let mut accounts: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for chunk in rx {
        for bytes in &chunk.records {
            let Ok(text) = std::str::from_utf8(bytes) else {
                skipped += 1;
                continue;
            };
            let Ok(f) = EventFacts::parse(text) else {
                skipped += 1;
                continue;
            };
            let wanted = f.category == "Management" || (data_events && f.category == "Data");
            if !wanted {
                other_category += 1;
                continue;
            }
            let Some(call) = call_from_facts(&f, f.aws_region.as_deref().unwrap_or("us-east-1")) else {
                skipped += 1;
                continue;
            };
            if let Some(a) = &f.recipient_account_id {
                *accounts.entry(a.to_string()).or_default() += 1;
            }
            calls.push(OwnedCall::of(&call));
        }
    }
    reader.join().map_err(|_| anyhow!("the file reader panicked"))??;
    // Log files of several Regions and deliveries interleave: the detector sees the history in time order.
    calls.sort_by_key(|c| c.time_ms);
    let account = accounts.into_iter().max_by_key(|(_, n)| *n).map_or_else(|| "000000000000".into(), |(a, _)| a);
    let lateness_ms = i64::from(settings.allowed_lateness_minutes) * 60_000;
    let mut detector = Detector::new(settings);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printer = Printer { output, account, starts: 0, ends: 0 };
    for c in &calls {
        detector.observe(&c.call());
        for i in detector.take_insights() {
            printer.print(&mut out, &i)?;
        }
    }
    if let Some(last) = calls.last() {
        // The history's last minute closes as if the clock had moved past it.
        detector.advance_clock(last.time_ms + lateness_ms + 60_000);
        for i in detector.take_insights() {
            printer.print(&mut out, &i)?;
        }
    }
    out.flush()?;
    note!(
        "{} events analysed ({} of other categories and {} unreadable skipped): {} Insights started, {} ended{}",
        calls.len(),
        other_category,
        skipped,
        printer.starts,
        printer.ends,
        if printer.starts > printer.ends { " (the others were still going at the end of the history)" } else { "" }
    );
    Ok(std::process::ExitCode::SUCCESS)
}

struct Printer {
    output: ReplayOutput,
    account: String,
    starts: u64,
    ends: u64,
}

impl Printer {
    fn print(&mut self, out: &mut impl Write, i: &Insight) -> Result<()> {
        match i.state {
            InsightState::Start => self.starts += 1,
            InsightState::End => self.ends += 1,
        }
        match self.output {
            ReplayOutput::Json => writeln!(out, "{}", service::insights::record_json(i, "replay", &self.account))?,
            ReplayOutput::Table => {
                let state = i.state.as_str();
                let top_user = i
                    .attributions
                    .iter()
                    .find(|a| a.attribute.as_str() == "userIdentityArn")
                    .and_then(|a| a.insight.first())
                    .map_or("-", |(v, _)| v.as_str());
                writeln!(
                    out,
                    "{}  {:<5}  {:<19}  {:<10}  {}:{}{}  baseline {:.3}/min  insight {:.3}/min  {} min  top {}",
                    model::EventTime::from_millis(i.event_time_ms),
                    state,
                    i.insight_type.as_str(),
                    i.region,
                    i.event_source,
                    i.event_name,
                    i.error_code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default(),
                    i.baseline_average,
                    i.insight_average,
                    i.insight_duration_minutes,
                    top_user
                )?;
            }
        }
        Ok(())
    }
}

/// Runs the detector core on one series (`timestamp,value` rows) and prints
/// `timestamp,value,anomaly_score,alarm` per row, strictly streaming.
pub fn series(file: &str, settings: Settings) -> Result<std::process::ExitCode> {
    let input: Box<dyn std::io::Read> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("open {file}"))?)
    };
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    insights::series::run_series(std::io::BufReader::new(input), out, &settings).map_err(|e| anyhow!("{file}: {e}"))?;
    Ok(std::process::ExitCode::SUCCESS)
}
