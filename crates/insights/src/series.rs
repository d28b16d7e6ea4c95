//! The series front end (`opentrail insights series FILE.csv`): one numeric series of `timestamp,value` rows at
//! any regular interval, through the same core as the keyed detector at the same settings, one output row
//! `timestamp,value,anomaly_score,alarm` per input row, strictly streaming: a row's output depends only on the
//! rows before it and itself.
//!
//! The first `WARMUP_ROWS` rows decide the interval (their median spacing) and how values become counts: a
//! series whose warm-up values are all non-negative integers is a count series and goes in as it is; any other
//! is mapped to pseudo-counts `1000 + 1000·(x − median)/(5·range)` (clamped at 0) with the warm-up's median and
//! range, so a warm-up-sized swing is ±200 "calls" around a level of 1000. Alarms are two-sided (rises and
//! drops) for every series.
//! Those rows are answered with score 0 before the model has seen them.

use std::io::{BufRead, Write};

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::Settings;
use crate::model::{Mode, Params, SeasonalRate, Track, Transition};

/// Rows used to infer the interval and the value mapping before the model starts (hard-coded).
pub const WARMUP_ROWS: usize = 30;
/// A real-valued series maps its warm-up median to this many pseudo-counts…
const REAL_LEVEL: f64 = 1000.0;
/// …and `REAL_SPREADS` warm-up ranges to `REAL_LEVEL` more (or less), so a value must fall five ranges below
/// the median before it is clamped at zero; the Poisson part of the variance (√1000 ≈ 3 % of the level) is
/// then small next to the learned dispersion, which makes the model additive (Gaussian-like) for such series.
const REAL_SPREADS: f64 = 5.0;

/// What a series run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    pub rows: u64,
    /// Rows where an alarm (an Insight Start) was raised.
    pub alarms: u64,
    /// The inferred interval, ms (None when the series was shorter than the warm-up).
    pub interval_ms: Option<i64>,
    /// "counts" or "real" (None when the series was shorter than the warm-up).
    pub mode: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error("line {line}: {reason}")]
    Parse { line: u64, reason: String },
    #[error("line {line}: timestamp {timestamp} is not after the previous row's")]
    NotIncreasing { line: u64, timestamp: String },
    #[error("read: {0}")]
    Read(std::io::Error),
    #[error("write: {0}")]
    Write(std::io::Error),
}

/// Parse a timestamp: RFC 3339 / ISO-8601 (with or without zone, `T` or space, fractional seconds), or epoch
/// seconds or milliseconds (a number ≥ 1e11 is taken as milliseconds). Returns ms since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim().trim_matches('"');
    if let Ok(v) = s.parse::<f64>() {
        if !v.is_finite() {
            return None;
        }
        return Some(if v.abs() >= 1e11 { v as i64 } else { (v * 1000.0).round() as i64 });
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis());
    }
    None
}

enum Phase {
    Warmup(Vec<(i64, f64)>),
    Running(Box<Running>),
}

struct Running {
    params: Params,
    real: Option<(f64, f64)>,
    rate: SeasonalRate,
    track: Track,
    step: i64,
}

impl Running {
    fn start(settings: &Settings, rows: &[(i64, f64)]) -> Running {
        let mut gaps: Vec<i64> = rows.windows(2).map(|w| w[1].0 - w[0].0).collect();
        gaps.sort_unstable();
        let interval = gaps.get(gaps.len() / 2).copied().unwrap_or(60_000).max(1);
        let counts = rows.iter().all(|&(_, v)| v >= 0.0 && v.fract() == 0.0);
        let real = if counts {
            None
        } else {
            let mut v: Vec<f64> = rows.iter().map(|r| r.1).collect();
            v.sort_by(f64::total_cmp);
            let median = v[v.len() / 2];
            let range = v[v.len() - 1] - v[0];
            let spread = range.max(median.abs() * 0.01).max(1e-12);
            Some((median, spread))
        };
        let mode = if counts { Mode::SeriesCounts } else { Mode::SeriesReal };
        Running {
            params: Params::new(settings, interval, mode),
            real,
            rate: SeasonalRate::new(),
            track: Track::new(0),
            step: 0,
        }
    }

    fn interval(&self) -> i64 {
        self.params.step_ms
    }

    /// One row: (score, alarm).
    fn feed(&mut self, time_ms: i64, value: f64) -> (f64, bool) {
        let x = match self.real {
            None => value.max(0.0),
            Some((median, spread)) => (REAL_LEVEL + REAL_LEVEL * (value - median) / (REAL_SPREADS * spread)).max(0.0),
        };
        let p = &self.params;
        let (_, mu) = self.rate.expect(p, time_ms, self.track.phi(p, 0));
        let envelope = self.rate.envelope(p, time_ms);
        let stepped = self.track.step(p, self.step, x, mu, envelope, self.rate.information(p));
        self.rate.learn(p, time_ms, stepped.learn, x, stepped.in_insight);
        self.step += 1;
        match stepped.transition {
            Some(Transition::Start { .. }) => (1.0, true),
            Some(Transition::End { forced: true, ratio, .. }) => {
                self.rate.rebase(ratio);
                (stepped.score, false)
            }
            _ => (stepped.score, false),
        }
    }
}

/// Run the detector over a `timestamp,value` CSV and write `timestamp,value,anomaly_score,alarm` rows.
pub fn run_series<R: BufRead, W: Write>(
    input: R,
    mut output: W,
    settings: &Settings,
) -> Result<SeriesSummary, SeriesError> {
    writeln!(output, "timestamp,value,anomaly_score,alarm").map_err(SeriesError::Write)?;
    let mut phase = Phase::Warmup(Vec::new());
    let mut summary = SeriesSummary { rows: 0, alarms: 0, interval_ms: None, mode: None };
    let mut last_time: Option<i64> = None;
    let mut seen_data = false;
    for (n, line) in input.lines().enumerate() {
        let line_no = n as u64 + 1;
        let line = line.map_err(SeriesError::Read)?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let mut fields = text.splitn(3, ',');
        let ts_text = fields.next().unwrap_or("").trim();
        let value_text = fields.next().map(str::trim);
        if fields.next().is_some() {
            return Err(SeriesError::Parse { line: line_no, reason: "expected two fields: timestamp,value".into() });
        }
        let time = parse_timestamp(ts_text);
        let value = value_text.and_then(|v| v.trim_matches('"').parse::<f64>().ok()).filter(|v| v.is_finite());
        let (time, value) = match (time, value) {
            (Some(t), Some(v)) => (t, v),
            _ if !seen_data => {
                // A header row is allowed once, before the data.
                seen_data = true;
                continue;
            }
            (None, _) => {
                return Err(SeriesError::Parse { line: line_no, reason: format!("bad timestamp {ts_text:?}") });
            }
            (_, None) => {
                return Err(SeriesError::Parse {
                    line: line_no,
                    reason: format!("bad value {:?} (a finite number is needed)", value_text.unwrap_or("")),
                });
            }
        };
        seen_data = true;
        if last_time.is_some_and(|t| time <= t) {
            return Err(SeriesError::NotIncreasing { line: line_no, timestamp: ts_text.to_owned() });
        }
        last_time = Some(time);
        let (score, alarm) = match &mut phase {
            Phase::Warmup(rows) => {
                rows.push((time, value));
                if rows.len() == WARMUP_ROWS {
                    let mut run = Running::start(settings, rows);
                    for &(t, v) in rows.iter() {
                        run.feed(t, v);
                    }
                    summary.interval_ms = Some(run.interval());
                    summary.mode = Some(if run.real.is_some() { "real" } else { "counts" }.to_owned());
                    phase = Phase::Running(Box::new(run));
                }
                (0.0, false)
            }
            Phase::Running(run) => run.feed(time, value),
        };
        summary.rows += 1;
        summary.alarms += alarm as u64;
        writeln!(output, "{},{},{:.6},{}", ts_text, value_text.unwrap_or(""), score, alarm as u8)
            .map_err(SeriesError::Write)?;
    }
    output.flush().map_err(SeriesError::Write)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(csv: &str) -> (String, SeriesSummary) {
        let mut out = Vec::new();
        let s = run_series(csv.as_bytes(), &mut out, &Settings::default()).unwrap();
        (String::from_utf8(out).unwrap(), s)
    }

    #[test]
    fn timestamps_in_every_documented_form() {
        let ms = 1_700_000_000_000;
        assert_eq!(parse_timestamp("1700000000"), Some(ms));
        assert_eq!(parse_timestamp("1700000000000"), Some(ms));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20Z"), Some(ms));
        assert_eq!(parse_timestamp("2023-11-14 22:13:20"), Some(ms));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20.000+00:00"), Some(ms));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn errors_name_the_line() {
        let mut out = Vec::new();
        let e = run_series("timestamp,value\n1,2\n2,x\n".as_bytes(), &mut out, &Settings::default()).unwrap_err();
        assert!(e.to_string().starts_with("line 3:"), "{e}");
        let e = run_series("1,2\n1,3\n".as_bytes(), &mut Vec::new(), &Settings::default()).unwrap_err();
        assert!(matches!(e, SeriesError::NotIncreasing { line: 2, .. }), "{e}");
    }

    #[test]
    fn a_spike_in_a_real_valued_series_alarms_once() {
        let mut csv = String::from("timestamp,value\n");
        for i in 0..2000 {
            let v = if (1500..1510).contains(&i) { 95.0 } else { 40.0 + ((i * 7919) % 13) as f64 * 0.5 };
            csv.push_str(&format!("{},{v}\n", 1_600_000_000 + i * 300));
        }
        let (out, s) = run(&csv);
        assert_eq!(s.mode.as_deref(), Some("real"));
        assert_eq!(s.interval_ms, Some(300_000));
        assert_eq!(s.rows, 2000);
        assert_eq!(out.lines().count(), 2001);
        let alarms: Vec<usize> =
            out.lines().skip(1).enumerate().filter(|(_, l)| l.ends_with(",1")).map(|(i, _)| i).collect();
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert!((1500..1505).contains(&alarms[0]), "{alarms:?}");
    }

    #[test]
    fn output_of_a_row_depends_only_on_the_rows_before_it() {
        let mut csv = String::new();
        for i in 0..400 {
            csv.push_str(&format!("{},{}\n", i * 60, (i * 37 % 11) + if i > 300 { 40 } else { 0 }));
        }
        let (full, _) = run(&csv);
        let prefix: String = csv.lines().take(320).map(|l| format!("{l}\n")).collect();
        let (part, _) = run(&prefix);
        assert!(full.starts_with(&part));
    }
}
