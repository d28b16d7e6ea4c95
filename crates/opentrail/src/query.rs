//! The lookup grammar on the command line (README, "Query grammar"): `--attr` parsed by the one parser
//! (`model::Condition::parse`, errors naming the token) and sent as LookupEvents attributes in their
//! one-pattern form; and `opentrail lookup --count [--by KEY] [--top N]` through `GET /v1/event-counts`.

use std::io::Write;

use anyhow::{Result, anyhow, bail};
use client::Client;
use model::{AttributeKey, Condition, EventTime};
use serde_json::{Value, json};

use crate::output::Output;

/// `--attr` values as LookupEvents `LookupAttributes`: one element per value, the key repeated (an OR).
pub fn lookup_attributes(attrs: &[String]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for c in parse_attrs(attrs)? {
        for v in c.lookup_values() {
            out.push(json!({"AttributeKey": c.key.as_str(), "AttributeValue": v}));
        }
    }
    Ok(out)
}

fn parse_attrs(attrs: &[String]) -> Result<Vec<Condition>> {
    attrs.iter().map(|a| Condition::parse(a).map_err(|e| anyhow!("--attr {e}"))).collect()
}

/// What `opentrail lookup --count [--by KEY] [--top N]` asks.
pub struct CountArgs<'a> {
    pub attrs: &'a [String],
    /// A time or a duration before now (`--start`/`--since`).
    pub start: Option<&'a str>,
    pub end: Option<&'a str>,
    pub insights: bool,
    pub by: Option<&'a str>,
    pub top: usize,
    pub output: Output,
}

/// `opentrail lookup --count [--by KEY] [--top N]`.
pub fn count(endpoint: &str, args: &CountArgs) -> Result<std::process::ExitCode> {
    let CountArgs { attrs, start, end, insights, by, top, output } = *args;
    if top == 0 {
        bail!("--top must be at least 1");
    }
    let by = match by {
        None => None,
        Some(k) => match AttributeKey::parse(k) {
            Some(AttributeKey::EventId) => bail!("--by EventId: every event has its own id; count by another key"),
            Some(key) => Some(key),
            None => {
                let valid: Vec<&str> = AttributeKey::ALL[1..].iter().map(|k| k.as_str()).collect();
                bail!("--by '{k}' is not one of {}", valid.join(", "))
            }
        },
    };
    let conditions = parse_attrs(attrs)?;
    let mut pairs: Vec<(&str, String)> = conditions.iter().map(|c| ("attr", c.to_string())).collect();
    for (flag, value, name) in [("--start", start, "start"), ("--end", end, "end")] {
        if let Some(v) = value {
            let now = EventTime(chrono::Utc::now().timestamp_millis());
            let t = crate::commands::parse_time_or_ago(v, now).map_err(|e| anyhow!("{flag}: {e}"))?;
            pairs.push((name, t.to_rfc3339()));
        }
    }
    if insights {
        pairs.push(("category", "insight".into()));
    }
    if let Some(by) = by {
        pairs.push(("by", by.as_str().into()));
        pairs.push(("top", top.to_string()));
    }
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let client = Client::new(endpoint)?;
    let answer = client.get_json(&format!("/v1/event-counts?{}", client::query_string(&borrowed)))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match output {
        Output::Json => writeln!(out, "{answer}")?,
        Output::Table => print_counts(&mut out, &answer)?,
        Output::Csv => print_counts_csv(&mut out, &answer)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `value,count` rows (the total first, as the empty value's row is not a value: `(total)`).
fn print_counts_csv(out: &mut impl Write, a: &Value) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["value", "count"])?;
    w.write_record(["(total)", &a["Total"].as_u64().unwrap_or(0).to_string()])?;
    for v in a["Values"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        w.write_record([v["Value"].as_str().unwrap_or(""), &v["Count"].as_u64().unwrap_or(0).to_string()])?;
    }
    if let (Some(by), Some(n)) = (a["By"].as_str(), a["Without"].as_u64().filter(|n| *n > 0)) {
        w.write_record([format!("(no {by})"), n.to_string()])?;
    }
    w.flush()?;
    Ok(())
}

fn print_counts(out: &mut impl Write, a: &Value) -> std::io::Result<()> {
    let total = a["Total"].as_u64().unwrap_or(0);
    writeln!(out, "{total} event{} match", if total == 1 { "" } else { "s" })?;
    let Some(by) = a["By"].as_str() else { return Ok(()) };
    let values = a["Values"].as_array().cloned().unwrap_or_default();
    let distinct = a["Distinct"].as_u64().unwrap_or(0);
    let mut rows: Vec<(String, String)> = values
        .iter()
        .map(|v| (v["Value"].as_str().unwrap_or("").to_string(), v["Count"].as_u64().unwrap_or(0).to_string()))
        .collect();
    let without = a["Without"].as_u64().unwrap_or(0);
    if without > 0 {
        rows.push((format!("(no {by})"), without.to_string()));
    }
    let head = if distinct as usize > values.len() {
        format!("{by} (top {} of {distinct})", values.len())
    } else {
        by.to_string()
    };
    let w = rows.iter().map(|(v, _)| v.chars().count()).chain([head.chars().count()]).max().unwrap_or(0);
    let cw = rows.iter().map(|(_, c)| c.len()).chain(["COUNT".len()]).max().unwrap_or(5);
    writeln!(out, "{head:<w$}  {:>cw$}", "COUNT")?;
    for (v, c) in rows {
        writeln!(out, "{v:<w$}  {c:>cw$}")?;
    }
    Ok(())
}
