//! The output: machine header, latency percentiles, and the opentrail-vs-SQLite table with every DESIGN.md
//! target marked met or MISSED with its gap (Markdown, pasted as is into BENCHMARKS.md).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Encoding;
use crate::ingest::{Freshness, IngestResult};
use crate::lookups::LookupResult;
use crate::server::{Restart, Rss};
use crate::sqlite::SqliteIngest;

/// Sorted latency samples.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort_unstable();
        Latencies(samples)
    }
    /// Nearest-rank percentile, `q` in 0..=100.
    pub fn p(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Figures {
    pub header: String,
    pub events: u64,
    pub batch: usize,
    pub raw_bytes: u64,
    pub gzip_bytes_per_event: f64,
    pub gzip_sample_events: u64,
    pub encoding: Option<Encoding>,
    pub encoding_plain_eps: Option<f64>,
    pub encoding_gzip_eps: Option<f64>,
    pub ingest: Option<IngestResult>,
    /// Last acknowledgement → indexedSeq == durableSeq.
    pub index_wait_after_ingest: Option<Duration>,
    pub journal_bytes: u64,
    pub index_bytes: u64,
    pub ot_lookups: Option<LookupResult>,
    /// Closed-loop client threads that drove the lookups.
    pub lookup_threads: usize,
    pub rss: Option<Rss>,
    pub fresh: Option<Freshness>,
    pub restart: Option<Restart>,
    pub server_errors: Vec<String>,
    pub sqlite_ingest: Option<SqliteIngest>,
    pub sqlite_lookups: Option<LookupResult>,
    pub sqlite_plans: Vec<(String, String)>,
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// Machine, disk, command, date and commit.
pub fn header(scratch: &Path, bin: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("?", |(_, v)| v.trim())
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let df = sh("df", &["-hT", &scratch.to_string_lossy()]);
    let disk = df.lines().last().unwrap_or("?").split_whitespace().collect::<Vec<_>>().join(" ");
    // The commit of the working directory, unless the binaries were built from an exported snapshot
    // (`git archive`), which names its commit in OPENTRAIL_BENCH_COMMIT.
    let (commit, dirty) = match std::env::var("OPENTRAIL_BENCH_COMMIT") {
        Ok(c) => (c, false),
        Err(_) => (
            sh("git", &["rev-parse", "--short=12", "HEAD"]),
            !sh("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty(),
        ),
    };
    let command: Vec<String> = std::env::args().collect();
    let mut s = String::new();
    let _ = writeln!(s, "# opentrail-bench");
    let _ = writeln!(s);
    let _ = writeln!(s, "- date: {}", sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]));
    let _ = writeln!(s, "- commit: {commit}{}", if dirty { " (+ uncommitted changes)" } else { "" });
    let _ = writeln!(s, "- command: `{}`", command.join(" "));
    let _ = writeln!(s, "- server binary: {}", bin.display());
    let _ = writeln!(s, "- machine: {nproc} cores ({cpu}), {:.1} GiB RAM", mem_kb as f64 / 1024.0 / 1024.0);
    let _ = writeln!(s, "- disk (scratch {}): {disk}", scratch.display());
    // The machine is shared: a load average above the core count at the start means noisy figures.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(s, "- load average at start: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    s
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.0} ms") }
}

fn num(x: f64) -> String {
    let s = format!("{:.0}", x.round());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Verdict for "at least `target`".
fn at_least(value: f64, target: f64) -> String {
    if value >= target {
        "met".into()
    } else {
        format!("**MISSED** by {} ({:.0}% of target)", num(target - value), value / target * 100.0)
    }
}

/// Verdict for "at most `target`" (same unit as value, `unit` appended to the gap).
fn at_most(value: f64, target: f64, unit: &str) -> String {
    if value <= target {
        "met".into()
    } else {
        format!("**MISSED** by {:.1}{unit} ({:.1}× target)", value - target, value / target)
    }
}

pub fn render(f: &Figures) -> String {
    let mut s = String::new();
    let n = f.events as f64;
    let _ = writeln!(s, "\n## Summary at {} events ({} records per request / transaction)\n", num(n), f.batch);
    let _ = writeln!(s, "| figure | target | opentrail | SQLite | ratio | verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let ot_eps = f.ingest.as_ref().map(|i| i.events as f64 / i.elapsed.as_secs_f64());
    let sq_eps = f.sqlite_ingest.as_ref().map(|i| i.events as f64 / i.elapsed.as_secs_f64());
    if let Some(eps) = ot_eps {
        let mbs = f.ingest.as_ref().map_or(0.0, |i| i.raw_bytes as f64 / 1e6 / i.elapsed.as_secs_f64());
        let sq = sq_eps.map_or("—".into(), |e| format!("{} ev/s", num(e)));
        let ratio = sq_eps.map_or("—".into(), |e| format!("{:.1}× (target ≥ 5×)", eps / e));
        let ratio_ok = sq_eps.map_or(String::new(), |e| format!("; 5× SQLite: {}", at_least(eps / e, 5.0)));
        let _ = writeln!(
            s,
            "| durable ingest over HTTP (ack = fsync'd) | ≥ 100,000 ev/s | {} ev/s ({mbs:.0} MB/s of JSON) | {sq} | {ratio} | {}{ratio_ok} |",
            num(eps),
            at_least(eps, 100_000.0)
        );
    }
    if let Some(fr) = &f.fresh {
        let _ = writeln!(
            s,
            "| freshness ack → visible, at {} ev/s (achieved {}) | p99 ≤ 1 s | p50 {}, p99 {} ({} probes) | — | CloudTrail ~300 s | {} |",
            num(fr.target_rate as f64),
            num(fr.achieved_rate),
            ms(fr.lag.p(50.0)),
            ms(fr.lag.p(99.0)),
            fr.lag.len(),
            at_most(fr.lag.p(99.0).as_secs_f64() * 1000.0, 1000.0, " ms")
        );
    }
    if let Some(ot) = &f.ot_lookups {
        let sq = f.sqlite_lookups.as_ref();
        let at =
            if f.events >= 10_000_000 { String::new() } else { format!(" (target is at 10 M; this is {})", num(n)) };
        let _ = writeln!(
            s,
            "| lookup p99, one page of 50, all queries{at} | ≤ 20 ms | p50 {}, p99 {} | p50 {}, p99 {} | SQLite p99 ÷ opentrail p99 = {} | {} |",
            ms(ot.all.p(50.0)),
            ms(ot.all.p(99.0)),
            sq.map_or("—".into(), |q| ms(q.all.p(50.0))),
            sq.map_or("—".into(), |q| ms(q.all.p(99.0))),
            sq.map_or("—".into(), |q| format!("{:.2}", q.all.p(99.0).as_secs_f64() / ot.all.p(99.0).as_secs_f64())),
            at_most(ot.all.p(99.0).as_secs_f64() * 1000.0, 20.0, " ms")
        );
        let _ = writeln!(
            s,
            "| lookups/s, {} client threads | ≥ 2,000 /s | {} /s | {} /s | opentrail ÷ SQLite = {} | {} |",
            f.lookup_threads,
            num(ot.per_sec),
            sq.map_or("—".into(), |q| num(q.per_sec)),
            sq.map_or("—".into(), |q| format!("{:.2}", ot.per_sec / q.per_sec)),
            at_least(ot.per_sec, 2000.0)
        );
    }
    let ot_bpe = (f.journal_bytes + f.index_bytes) as f64 / n;
    let sq_bpe = f.sqlite_ingest.as_ref().map(|i| (i.db_bytes + i.wal_bytes) as f64 / n);
    let _ = writeln!(
        s,
        "| bytes/event on disk | ≤ 250 | {ot_bpe:.0} (journal {:.0} + index {:.0}) | {} | gzip -6 of the NDJSON: {:.0} (raw {:.0}) | {} |",
        f.journal_bytes as f64 / n,
        f.index_bytes as f64 / n,
        sq_bpe.map_or("—".into(), |b| format!("{b:.0} (db + wal)")),
        f.gzip_bytes_per_event,
        f.raw_bytes as f64 / n,
        at_most(ot_bpe, 250.0, " B")
    );
    if let Some(r) = &f.rss {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let _ = writeln!(
            s,
            "| server memory after lookups | RSS ≤ 1 GiB (at 10 M) | VmHWM {:.2} GiB, VmRSS {:.2} GiB | — | — | {} |",
            gib(r.hwm),
            gib(r.rss),
            at_most(gib(r.hwm), 1.0, " GiB")
        );
    }
    if let Some(r) = &f.restart {
        let _ = writeln!(
            s,
            "| restart after kill -9 ({} records) | ≤ 5 s to serving | healthz 200 after {}, index caught up after {} | — | — | {} |",
            num(r.durable_seq as f64),
            ms(r.to_healthy),
            ms(r.to_caught_up),
            at_most(r.to_healthy.as_secs_f64(), 5.0, " s")
        );
    }

    let _ = writeln!(s, "\n## Ingest details\n");
    if let (Some(p), Some(g)) = (f.encoding_plain_eps, f.encoding_gzip_eps) {
        let _ = writeln!(
            s,
            "- encodings, first {} events on a fresh server, bodies prepared before the clock: plain {} ev/s, gzip {} ev/s → main run uses **{:?}** (gzip bodies compressed before the clock there too; the client signs every request while sending)",
            num(crate::ENCODING_PROBE_EVENTS as f64),
            num(p),
            num(g),
            f.encoding.unwrap_or(Encoding::Plain)
        );
    }
    if let Some(i) = &f.ingest {
        let _ = writeln!(
            s,
            "- opentrail: {} events, {} MB in {:.1} s; request ack latency p50 {}, p99 {}; 503 retries {}",
            num(i.events as f64),
            i.raw_bytes / 1_000_000,
            i.elapsed.as_secs_f64(),
            ms(i.ack.p(50.0)),
            ms(i.ack.p(99.0)),
            i.retries
        );
        if let Some(w) = f.index_wait_after_ingest {
            let total = i.elapsed + w;
            let _ = writeln!(
                s,
                "- index: caught up {} after the last ack → indexing throughput {} ev/s over the run (the ceiling for a sustained rate with bounded freshness)",
                ms(w),
                num(i.events as f64 / total.as_secs_f64())
            );
        }
    }
    if let Some(fr) = &f.fresh {
        let _ = writeln!(
            s,
            "- freshness phase: {} extra events at {} ev/s target, achieved {} ev/s; ack p50 {}, p99 {}; probes poll every 2 ms (each poll is itself an audited LookupEvents)",
            num(fr.events as f64),
            num(fr.target_rate as f64),
            num(fr.achieved_rate),
            ms(fr.ack.p(50.0)),
            ms(fr.ack.p(99.0))
        );
    }
    if let Some(sq) = &f.sqlite_ingest {
        let _ = writeln!(
            s,
            "- SQLite: {} events in {:.1} s, one transaction per {} records (WAL, synchronous=FULL: each commit fsync'd); db {} MB + wal {} MB",
            num(sq.events as f64),
            sq.elapsed.as_secs_f64(),
            f.batch,
            sq.db_bytes / 1_000_000,
            sq.wal_bytes / 1_000_000
        );
    }

    if let Some(ot) = &f.ot_lookups {
        let _ = writeln!(s, "\n## Lookups by attribute (one page of 50, newest first)\n");
        let _ = writeln!(
            s,
            "| query | samples | opentrail p50 | opentrail p99 | SQLite p50 | SQLite p99 | SQLite p99 ÷ opentrail p99 |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for (g, l) in &ot.groups {
            let sq = f.sqlite_lookups.as_ref().and_then(|q| q.groups.iter().find(|(h, _)| h == g)).map(|(_, l)| l);
            let _ = writeln!(
                s,
                "| {g} | {} | {} | {} | {} | {} | {} |",
                l.len(),
                ms(l.p(50.0)),
                ms(l.p(99.0)),
                sq.map_or("—".into(), |q| ms(q.p(50.0))),
                sq.map_or("—".into(), |q| ms(q.p(99.0))),
                sq.map_or("—".into(), |q| format!("{:.2}", q.p(99.0).as_secs_f64() / l.p(99.0).as_secs_f64()))
            );
        }
        if let Some(sq) = &f.sqlite_lookups {
            let differ = ot.page_sizes.iter().zip(&sq.page_sizes).filter(|(a, b)| a != b).count();
            let _ = writeln!(
                s,
                "\nPage sizes differ between opentrail and SQLite on {differ} of {} queries (opentrail also holds its own audit records of every lookup).",
                ot.page_sizes.len()
            );
        }
    }
    if !f.sqlite_plans.is_empty() {
        let _ = writeln!(s, "\nSQLite query plans:\n");
        for (g, p) in &f.sqlite_plans {
            let _ = writeln!(s, "- {g}: `{p}`");
        }
    }
    if !f.server_errors.is_empty() {
        let _ = writeln!(s, "\nServer logged {} ERROR lines, first: `{}`", f.server_errors.len(), f.server_errors[0]);
    }
    s
}
