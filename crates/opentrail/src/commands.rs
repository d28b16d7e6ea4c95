//! The client subcommands `lookup` and `gen`.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use client::Client;
use model::EventTime;

use crate::output::{self, Output};
use serde_json::{Value, json};

/// What `opentrail lookup` was asked.
pub struct LookupArgs<'a> {
    pub attrs: &'a [String],
    /// `--start`/`--since` and `--end`/`--until`, as given.
    pub start: Option<&'a str>,
    pub end: Option<&'a str>,
    /// `None` is `--all`.
    pub max: Option<u64>,
    pub insights: bool,
    pub include_own_reads: bool,
    pub output: Output,
}

pub fn lookup(endpoint: &str, args: &LookupArgs) -> Result<std::process::ExitCode> {
    let client = Client::new(endpoint)?;
    let mut params = json!({});
    let lookup_attrs = crate::query::lookup_attributes(args.attrs)?;
    if !lookup_attrs.is_empty() {
        params["LookupAttributes"] = Value::Array(lookup_attrs);
    }
    let now = EventTime(chrono::Utc::now().timestamp_millis());
    for (flag, value, field) in [("--start/--since", args.start, "StartTime"), ("--end/--until", args.end, "EndTime")] {
        if let Some(v) = value {
            let t = parse_time_or_ago(v, now).map_err(|e| anyhow!("{flag}: {e}"))?;
            params[field] = json!(t.epoch_seconds_f64());
        }
    }
    if args.insights {
        params["EventCategory"] = json!("insight");
    }
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut printer = output::printer(args.output, out, output::table_width());
    let (mut shown, mut hidden, mut truncated) = (0u64, 0u64, false);
    loop {
        // One more than still wanted: an event left over says the limit cut the result.
        let want = match args.max {
            Some(max) => (max - shown).saturating_add(1).min(PAGE_SIZE),
            None => PAGE_SIZE,
        };
        params["MaxResults"] = json!(want);
        let page = lookup_page(&client, &params)?;
        let mut events = Vec::new();
        for element in page["Events"].as_array().into_iter().flatten() {
            let event = output::Event::new(element.clone());
            if !args.include_own_reads && is_own_read(&event) {
                hidden += 1;
                continue;
            }
            if args.max.is_some_and(|max| shown == max) {
                truncated = true;
                break;
            }
            events.push(event);
            shown += 1;
        }
        printer.page(&events)?;
        if truncated {
            break;
        }
        match page["NextToken"].as_str() {
            Some(t) if !t.is_empty() => params["NextToken"] = json!(t),
            _ => break,
        }
    }
    printer.finish(shown as usize)?;
    drop(printer);
    if truncated {
        note!("showing the first {shown} events; more match: use --max N to see more, or --all to see every one");
    }
    if hidden > 0 {
        note!("left out {hidden} of opentrail's own LookupEvents reads (--include-own-reads shows them)");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Hard-coded: the page size `opentrail lookup` asks for (the native LookupEvents takes up to 1000), so a
/// long history costs one request, and one audit record, per 1000 events rather than per 50.
const PAGE_SIZE: u64 = 1000;

/// One page of the native LookupEvents (`POST /v1/lookup`: LookupEvents' request and answer, larger pages).
fn lookup_page(client: &Client, params: &Value) -> Result<Value> {
    let body = params.to_string();
    let out = client.call("/v1/lookup", &[("content-type", "application/json")], body.as_bytes(), "opentrail")?;
    serde_json::from_slice(&out).context("server answered with invalid JSON")
}

/// An audit record of one of opentrail's own lookups: LookupEvents (on the CloudTrail API or the native
/// one), written by the server itself, called with opentrail's user agent. `opentrail lookup` leaves them
/// out unless `--include-own-reads`; they are still stored and found through the API.
///
/// Filtered here, over the answers (not in the query), because the query grammar cannot say "not (this
/// name and that agent)": an exclusion of either alone would hide other tools' LookupEvents or opentrail's
/// other calls.
fn is_own_read(e: &output::Event) -> bool {
    e.element["EventName"].as_str() == Some("LookupEvents")
        && matches!(e.element["EventSource"].as_str(), Some("cloudtrail.amazonaws.com" | "opentrail"))
        && e.element["Provenance"].as_str() == Some("self-audit")
        && e.record["userAgent"].as_str().is_some_and(|ua| ua.starts_with("opentrail/"))
}

/// A time (ISO-8601, `YYYY-MM-DD HH:MM:SS`, epoch seconds or milliseconds), or a duration before `now`
/// (`90s`, `30m`, `1h`, `7d`, `2w`).
pub fn parse_time_or_ago(s: &str, now: EventTime) -> Result<EventTime> {
    let t = s.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    if !digits.is_empty() && matches!(unit, "s" | "m" | "h" | "d" | "w") {
        return Ok(EventTime(now.0 - parse_duration_ms(t)?));
    }
    EventTime::parse_flexible(t).map_err(|e| anyhow!("{e}; or a duration ago like 90s, 30m, 1h, 7d, 2w"))
}

/// A duration in milliseconds: `90s`, `30m`, `12h`, `7d`, `2w`, or plain seconds.
fn parse_duration_ms(s: &str) -> Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let bad = || anyhow!("'{s}' must be a duration like 90s, 30m, 12h, 7d or 2w");
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        "w" => n.checked_mul(7 * 86_400),
        _ => return Err(bad()),
    };
    let ms = secs.and_then(|s| s.checked_mul(1000)).ok_or_else(bad)?;
    if ms <= 0 {
        bail!("'{s}' must be a positive duration");
    }
    Ok(ms)
}

pub fn gen_events(events: u64, seed: u64, start: Option<&str>, span: Option<&str>) -> Result<std::process::ExitCode> {
    let mut opts = eventgen::GenOptions { events, seed, ..Default::default() };
    if let Some(s) = start {
        opts.start = EventTime::parse_flexible(s).map_err(|e| anyhow!("--start: {e}"))?;
    }
    if let Some(s) = span {
        opts.span_ms = parse_duration_ms(s).context("--span")?;
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
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_ms("90s").unwrap(), 90_000);
        assert_eq!(parse_duration_ms("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration_ms("7d").unwrap(), 604_800_000);
        assert_eq!(parse_duration_ms("2w").unwrap(), 1_209_600_000);
        assert_eq!(parse_duration_ms("15").unwrap(), 15_000);
        assert!(parse_duration_ms("1y").is_err());
        assert!(parse_duration_ms("0").is_err());
        assert!(parse_duration_ms("99999999999999999w").is_err());
    }

    #[test]
    fn times_are_absolute_epoch_or_ago() {
        let now = EventTime(1_700_000_000_000);
        assert_eq!(parse_time_or_ago("1h", now).unwrap(), EventTime(now.0 - 3_600_000));
        assert_eq!(parse_time_or_ago("30m", now).unwrap(), EventTime(now.0 - 1_800_000));
        assert_eq!(parse_time_or_ago("1577869200", now).unwrap(), EventTime(1_577_869_200_000));
        assert_eq!(parse_time_or_ago("1577869200123", now).unwrap(), EventTime(1_577_869_200_123));
        assert_eq!(parse_time_or_ago("2020-01-01T09:00:00Z", now).unwrap(), EventTime(1_577_869_200_000));
        let e = parse_time_or_ago("yesterday", now).unwrap_err().to_string();
        assert!(e.contains("yesterday") && e.contains("1h"), "{e}");
    }

    fn element(name: &str, source: &str, provenance: &str, ua: &str) -> output::Event {
        let record = json!({"userAgent": ua}).to_string();
        output::Event::new(json!({"EventName": name, "EventSource": source, "Provenance": provenance,
                                  "CloudTrailEvent": record}))
    }

    #[test]
    fn own_reads_are_opentrails_self_audited_lookups_only() {
        assert!(is_own_read(&element("LookupEvents", "opentrail", "self-audit", "opentrail/0.1.0")));
        assert!(is_own_read(&element("LookupEvents", "cloudtrail.amazonaws.com", "self-audit", "opentrail/9")));
        assert!(!is_own_read(&element("LookupEvents", "cloudtrail.amazonaws.com", "self-audit", "aws-cli/1.45")));
        assert!(!is_own_read(&element("PutEvents", "opentrail", "self-audit", "opentrail/0.1.0")));
        assert!(!is_own_read(&element("LookupEvents", "opentrail", "ingest:arn:x", "opentrail/0.1.0")));
    }
}
