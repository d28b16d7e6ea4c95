//! The output: machine header, latency percentiles, the opentrail-vs-SQLite table with every DESIGN.md
//! target marked met or MISSED with its gap, and the lookup tables against every baseline engine (Markdown,
//! pasted as is into BENCHMARKS.md).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Encoding;
use crate::baselines::{Engine, EngineResult};
use crate::delivery::{Delay, Throughput, Validate};
use crate::ingest::{Freshness, IngestResult};
use crate::lookups::{LookupResult, Query};
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
    /// Issue 7's query forms, one client.
    pub richer: Vec<crate::richer::RichRow>,
    /// Closed-loop client threads that drove the lookups.
    pub lookup_threads: usize,
    pub rss: Option<Rss>,
    pub fresh: Option<Freshness>,
    pub restart: Option<Restart>,
    pub server_errors: Vec<String>,
    pub sqlite_ingest: Option<SqliteIngest>,
    pub sqlite_lookups: Option<LookupResult>,
    pub sqlite_plans: Vec<(String, String)>,
    pub lookup_reps: usize,
    pub single_reps: usize,
    /// The Python baselines that ran, in order.
    pub baselines: Vec<EngineResult>,
    /// Engines asked for that did not run, and why.
    pub skipped: Vec<(Engine, String)>,
    /// Wall time of each phase of the run.
    pub phases: Vec<(String, Duration)>,
}

/// Everything a `--delivery` run measured.
#[derive(Debug, Default)]
pub struct DeliveryFigures {
    pub header: String,
    /// Local folder first, then moto S3 when it ran.
    pub throughput: Vec<Throughput>,
    pub delay: Option<Delay>,
    pub validate: Option<Validate>,
    /// Phases that failed without stopping the run (moto), and why.
    pub failed: Vec<(String, String)>,
    pub phases: Vec<(String, Duration)>,
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
        // A small target (a ratio such as 5×) needs its decimals: "by 0" would read as met.
        let gap = if target < 100.0 { format!("{:.1}", target - value) } else { num(target - value) };
        format!("**MISSED** by {gap} ({:.0}% of target)", value / target * 100.0)
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

pub fn render(f: &Figures, queries: &[Query]) -> String {
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
        let at10 = if f.events >= 10_000_000 { "" } else { " (target is at 10 M)" };
        match &ot.server_all {
            Some(sv) => {
                let _ = writeln!(
                    s,
                    "| lookup median server time (`Server-Timing`), one page of 50{at10} | ≤ 1 ms | p50 {}, p99 {} | — | client-observed p50 {} | {} |",
                    ms(sv.p(50.0)),
                    ms(sv.p(99.0)),
                    ms(ot.all.p(50.0)),
                    at_most(sv.p(50.0).as_secs_f64() * 1000.0, 1.0, " ms")
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "| lookup median server time, one page of 50{at10} | ≤ 1 ms | not reported (no `Server-Timing` header) | — | client-observed p50 {} | — |",
                    ms(ot.all.p(50.0))
                );
            }
        }
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
        render_engines(&mut s, f, ot, queries);
    }
    if !f.richer.is_empty() {
        render_richer(&mut s, &f.richer);
    }
    if !f.sqlite_plans.is_empty() {
        let _ = writeln!(s, "\nSQLite query plans:\n");
        for (g, p) in &f.sqlite_plans {
            let _ = writeln!(s, "- {g}: `{p}`");
        }
    }
    if !f.phases.is_empty() {
        let _ = writeln!(s, "\nPhase times: {}.", phases(&f.phases));
    }
    if !f.server_errors.is_empty() {
        let _ = writeln!(s, "\nServer logged {} ERROR lines, first: `{}`", f.server_errors.len(), f.server_errors[0]);
    }
    s
}

/// Issue 7's query forms: one row per query, latency from one client and the server's own time.
fn render_richer(s: &mut String, rows: &[crate::richer::RichRow]) {
    let _ = writeln!(s, "\n### Query forms: OR, prefix, CIDR, exclusion, counts (issue 7)\n");
    let _ = writeln!(
        s,
        "One client, each query {} times after one untimed run; a page is LookupEvents' first page of 50 (the forms sent as extension attributes), a count is `GET /v1/event-counts` (`opentrail lookup --count`, top 10 values with `--by`). Counts of one positive condition are checked against the corpus's own value counts (✓).\n",
        rows.first().map_or(0, |r| r.client.len())
    );
    let _ = writeln!(s, "| form | query | matches | client p50 / p99 | server p50 / p99 |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for r in rows {
        let checked = if r.query.expected_total.is_some() && matches!(r.query.ask, crate::richer::Ask::Count { .. }) {
            " ✓"
        } else {
            ""
        };
        let matches = match r.query.ask {
            crate::richer::Ask::Page => format!("{} on the page", r.matches),
            crate::richer::Ask::Count { .. } => format!("{}{checked}", num(r.matches as f64)),
        };
        let server = r.server.as_ref().map_or("—".to_string(), |l| format!("{} / {}", ms(l.p(50.0)), ms(l.p(99.0))));
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {} / {} | {} |",
            r.query.group,
            r.query.label().replace('|', "\\|"),
            matches,
            ms(r.client.p(50.0)),
            ms(r.client.p(99.0)),
            server
        );
    }
}

/// The delivery benchmark's section (issue 8): throughput against the 100,000 events/s target, delay at a 1 s
/// interval, and both validators on the same files.
pub fn render_delivery(f: &DeliveryFigures) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n## Trail delivery (issue 8)\n");
    let _ = writeln!(s, "| figure | target | opentrail | comparison | verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for t in &f.throughput {
        let moto = t.destination.contains("moto");
        let verdict = if moto {
            // moto (a Python server) is the bottleneck there: its figure bounds moto, not opentrail.
            format!("— (a bound of moto; {})", at_least(t.delivery_eps(), 100_000.0))
        } else {
            at_least(t.delivery_eps(), 100_000.0)
        };
        let _ = writeln!(
            s,
            "| delivery throughput to {}, `interval = \"1s\"`: selected events / (first event in a file → all in files) | ≥ 100,000 ev/s | {} ev/s ({} events; caught up {} after the last ack; end to end, first send → all in files: {} ev/s) | ingest {} ev/s over the same run | {} |",
            t.destination,
            num(t.delivery_eps()),
            num(t.selected as f64),
            ms(t.catch_up()),
            num(t.end_to_end_eps()),
            num(t.ingest_eps()),
            verdict
        );
    }
    if let Some(d) = &f.delay {
        let _ = writeln!(
            s,
            "| delivery delay ack → in a delivered file, `interval = \"1s\"`, at {} ev/s (achieved {}) | — (interval 1 s) | p50 {}, p99 {} ({} events) | CloudTrail ~5 min | — |",
            num(d.target_rate as f64),
            num(d.achieved_rate),
            ms(d.delay.p(50.0)),
            ms(d.delay.p(99.0)),
            num(d.selected as f64)
        );
    }
    if let Some(v) = &f.validate {
        let mbs = |r: &crate::delivery::ValidatorRun| v.log_bytes as f64 / 1e6 / r.wall.as_secs_f64();
        let aws = v.runs.iter().find(|r| r.tool.starts_with("aws"));
        for r in v.runs.iter().filter(|r| !r.tool.starts_with("aws")) {
            let _ = writeln!(
                s,
                "| {} over {} MB of log data ({} log files, {} digests) | ≥ 500 MB/s | {:.0} MB/s ({:.1} s) | {} | {} |",
                r.tool,
                num(v.log_bytes as f64 / 1e6),
                num(r.logs.1 as f64),
                num(r.digests.1 as f64),
                mbs(r),
                r.wall.as_secs_f64(),
                aws.map_or("—".into(), |a| format!("{:.1}× aws validate-logs", mbs(r) / mbs(a))),
                at_least(mbs(r), 500.0)
            );
        }
        if let Some(a) = aws {
            let _ = writeln!(
                s,
                "| aws cloudtrail validate-logs, same trail and files (through opentrail's S3 read API) | — | {:.0} MB/s ({:.1} s) | reference | — |",
                mbs(a),
                a.wall.as_secs_f64()
            );
        }
    }

    if !f.throughput.is_empty() {
        let _ = writeln!(s, "\n### Throughput details\n");
        for t in &f.throughput {
            let _ = writeln!(
                s,
                "- {}: {} events ({} MB of JSON) ingested in {:.1} s ({} ev/s; request ack p50 {}, p99 {}; 503 retries {}); the trail selects {} of them (every management event, S3 object, Lambda and DynamoDB data events); {} were in delivered files at the last ack; the first was in a file {:.2} s and all {:.2} s after the first send; {} log files, {} digests, {} failed uploads (retried){}",
                t.destination,
                num(t.events as f64),
                t.raw_bytes / 1_000_000,
                t.ingest.as_secs_f64(),
                num(t.ingest_eps()),
                ms(t.ack.p(50.0)),
                ms(t.ack.p(99.0)),
                t.retries,
                num(t.selected as f64),
                num(t.delivered_at_last_ack as f64),
                t.first_delivered.as_secs_f64(),
                t.all_delivered.as_secs_f64(),
                num(t.log_files as f64),
                num(t.digests as f64),
                t.errors,
                if t.server_errors.is_empty() {
                    String::new()
                } else {
                    format!("; server logged {} ERROR lines, first: `{}`", t.server_errors.len(), t.server_errors[0])
                }
            );
        }
        let _ = writeln!(
            s,
            "- delivered events are read from `/metrics` (`opentrail_delivery_events_total{{trail=\"bench\"}}`, sampled every 100 ms); the trail's own audit records of the bench's calls are delivered too and counted there, a few hundred at most. The trail is multi-Region, so one file per (account, Region) per second."
        );
        if f.throughput.iter().any(|t| t.destination.contains("moto")) {
            let _ = writeln!(
                s,
                "- moto S3: moto is a single Python process on the same 2 cores; the figure is a bound of moto, not of opentrail's S3 path."
            );
        }
    }
    if let Some(d) = &f.delay {
        let _ = writeln!(s, "\n### Delay details\n");
        let _ = writeln!(
            s,
            "- {} events sent open-loop in requests of {} from 2 clients; each event's ack time (by eventID) against the first time the bench's folder poller (every 20 ms) saw a log file holding it: {} events in {} log files; p50 {}, p90 {}, p99 {}, max {}. The trail cuts every 1 s, so an event waits 0–1 s for its cut, then its file is staged (fsync) and uploaded after the files before it in that cut.",
            num(d.events as f64),
            d.batch,
            num(d.selected as f64),
            num(d.log_files as f64),
            ms(d.delay.p(50.0)),
            ms(d.delay.p(90.0)),
            ms(d.delay.p(99.0)),
            ms(d.delay.p(100.0))
        );
    }
    if let Some(v) = &f.validate {
        let _ = writeln!(s, "\n### Validate details\n");
        let _ = writeln!(
            s,
            "- {} events (every record's `awsRegion` set to us-east-1, so all log files are in the one digest chain the aws CLI walks), delivered at `interval = \"1s\"`, `digest_interval = \"10s\"`, then StopLogging (final digest) in {:.1} s: {} log files, {} MB uncompressed ({} MB gzip), {} digests",
            num(v.events as f64),
            v.produce.as_secs_f64(),
            num(v.log_files as f64),
            num(v.log_bytes as f64 / 1e6),
            num(v.gz_bytes as f64 / 1e6),
            num(v.digest_files as f64)
        );
        for r in &v.runs {
            let _ = writeln!(
                s,
                "- {}: exit 0, {}/{} digest files valid, {}/{} log files valid, {:.2} s wall: `{}`",
                r.tool,
                r.digests.0,
                r.digests.1,
                r.logs.0,
                r.logs.1,
                r.wall.as_secs_f64(),
                r.command
            );
        }
        for (tool, why) in &v.skipped {
            let _ = writeln!(s, "- {tool}: not run — {why}");
        }
    }
    for (what, why) in &f.failed {
        let _ = writeln!(s, "\n**{what} failed**: {why}");
    }
    if !f.phases.is_empty() {
        let _ = writeln!(s, "\nPhase times: {}.", phases(&f.phases));
    }
    s
}

fn phases(p: &[(String, Duration)]) -> String {
    let total: Duration = p.iter().map(|(_, d)| *d).sum();
    let list: Vec<String> = p.iter().map(|(n, d)| format!("{n} {:.0} s", d.as_secs_f64())).collect();
    format!("{}; total {:.1} min", list.join(", "), total.as_secs_f64() / 60.0)
}

/// One engine's column in the lookup tables: its runs and what it says about itself.
struct Column<'a> {
    label: String,
    per_sec: f64,
    all: &'a Latencies,
    groups: &'a [(String, Latencies)],
    single: Option<(&'a Latencies, f64)>,
    load: Option<Duration>,
    bytes_per_event: Option<f64>,
    pages: &'a [Vec<String>],
}

fn cell(l: Option<&Latencies>) -> String {
    l.map_or("—".into(), |l| format!("{} / {}", ms(l.p(50.0)), ms(l.p(99.0))))
}

/// The lookup tables: every engine's throughput and latency next to opentrail's, per query group, whether
/// the pages agree, and how each engine was set up.
fn render_engines(s: &mut String, f: &Figures, ot: &LookupResult, queries: &[Query]) {
    let n = f.events as f64;
    let mut cols: Vec<Column<'_>> = Vec::new();
    if let Some(sq) = &f.sqlite_lookups {
        cols.push(Column {
            label: Engine::Sqlite.label().into(),
            per_sec: sq.per_sec,
            all: &sq.all,
            groups: &sq.groups,
            single: sq.single.as_deref().map(|r| (&r.all, r.per_sec)),
            load: f.sqlite_ingest.as_ref().map(|i| i.elapsed),
            bytes_per_event: f.sqlite_ingest.as_ref().map(|i| (i.db_bytes + i.wal_bytes) as f64 / n),
            pages: &sq.pages,
        });
    }
    for b in &f.baselines {
        cols.push(Column {
            label: b.engine.label().into(),
            per_sec: b.concurrent.per_sec,
            all: &b.concurrent.all,
            groups: &b.concurrent.groups,
            single: b.single.as_ref().map(|r| (&r.all, r.per_sec)),
            load: Some(b.load),
            bytes_per_event: Some(b.bytes_on_disk as f64 / n),
            pages: &b.pages,
        });
    }

    let _ = writeln!(s, "\n## Lookups: opentrail and the engines a user would pick instead\n");
    let _ = writeln!(
        s,
        "One page of 50, newest first; {} queries × {} reps from {} concurrent clients (closed loop), then × {} reps from 1 client. \
         opentrail is measured over HTTP with SigV4 and a JSON answer, each lookup also journalled as an audit record; the engines \
         in-process, reading event id and record text of each row. Ratios: above 1 means opentrail is ahead.\n",
        queries.len(),
        f.lookup_reps,
        f.lookup_threads,
        f.single_reps
    );
    // With the server's own time per page, also the ratio to it: the engines' latency is in-process too.
    let sv50 = ot.server_all.as_ref().map(|sv| sv.p(50.0));
    let _ = writeln!(
        s,
        "| engine | lookups/s, {} clients | p50 / p99 | 1 client: p50 / p99 | 1 client lookups/s | load | bytes/event | opentrail ÷ engine, lookups/s | engine ÷ opentrail, p50 |{}",
        f.lookup_threads,
        if sv50.is_some() { " engine p50 ÷ opentrail server-time p50 |" } else { "" }
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|{}", if sv50.is_some() { "---|" } else { "" });
    let ot_single = ot.single.as_deref();
    let ot_load = f.ingest.as_ref().map(|i| i.elapsed + f.index_wait_after_ingest.unwrap_or_default());
    let server = ot.server_all.as_ref().map_or(String::new(), |sv| format!(" (server time {})", cell(Some(sv))));
    let _ = writeln!(
        s,
        "| opentrail (HTTP) | {} | {}{server} | {} | {} | {} (durable, HTTP, indexed) | {:.0} | — | — |{}",
        num(ot.per_sec),
        cell(Some(&ot.all)),
        cell(ot_single.map(|r| &r.all)),
        ot_single.map_or("—".into(), |r| num(r.per_sec)),
        ot_load.map_or("—".into(), |d| format!("{:.1} s", d.as_secs_f64())),
        (f.journal_bytes + f.index_bytes) as f64 / n,
        if sv50.is_some() { " — |" } else { "" }
    );
    for c in &cols {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |{}",
            c.label,
            num(c.per_sec),
            cell(Some(c.all)),
            cell(c.single.map(|(l, _)| l)),
            c.single.map_or("—".into(), |(_, r)| num(r)),
            c.load.map_or("—".into(), |d| format!("{:.1} s", d.as_secs_f64())),
            c.bytes_per_event.map_or("—".into(), |b| format!("{b:.0}")),
            ot.per_sec / c.per_sec,
            c.all.p(50.0).as_secs_f64() / ot.all.p(50.0).as_secs_f64(),
            sv50.map_or(String::new(), |sv| format!(" {:.2} |", c.all.p(50.0).as_secs_f64() / sv.as_secs_f64())),
        );
    }

    let _ = writeln!(s, "\n### By query group, p50 / p99, {} clients\n", f.lookup_threads);
    let server_col = !ot.server_groups.is_empty();
    let mut head = String::from("| query | samples | opentrail |");
    let mut rule = String::from("|---|---|---|");
    if server_col {
        head.push_str(" opentrail server time |");
        rule.push_str("---|");
    }
    for c in &cols {
        let _ = write!(head, " {} |", c.label);
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for (g, l) in &ot.groups {
        let find = |groups: &[(String, Latencies)]| groups.iter().find(|(h, _)| h == g).map(|(_, l)| l).cloned();
        let mut row = format!("| {g} | {} | {} |", l.len(), cell(Some(l)));
        if server_col {
            let _ = write!(row, " {} |", cell(find(&ot.server_groups).as_ref()));
        }
        for c in &cols {
            let _ = write!(row, " {} |", cell(find(c.groups).as_ref()));
        }
        let _ = writeln!(s, "{row}");
    }

    // Pages: sizes against opentrail (which also finds its own audit records of earlier lookups, and orders
    // events of the same second by its own sequence), exact ids between the engines (same seq order).
    if !cols.is_empty() {
        let _ = writeln!(s);
        let ot_sizes = ot.page_sizes();
        for c in &cols {
            let differ: Vec<&str> = ot_sizes
                .iter()
                .zip(c.pages)
                .zip(queries)
                .filter(|((a, b), _)| **a != b.len())
                .map(|(_, q)| q.group.as_str())
                .collect();
            let _ = writeln!(
                s,
                "- page sizes, opentrail vs {}: {} of {} queries differ{}",
                c.label,
                differ.len(),
                queries.len(),
                if differ.is_empty() { String::new() } else { format!(" ({})", differ.join(", ")) }
            );
        }
        let reference = &cols[0];
        for c in &cols[1..] {
            let differ: Vec<String> = reference
                .pages
                .iter()
                .zip(c.pages)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, (a, b))| format!("#{i} {} ({} vs {} events)", queries[i].group, a.len(), b.len()))
                .collect();
            let _ = writeln!(
                s,
                "- event ids on every page, {} vs {}: {}",
                reference.label,
                c.label,
                if differ.is_empty() {
                    "identical".to_string()
                } else {
                    format!("**differ** on {}", differ.join(", "))
                }
            );
        }
        let _ = writeln!(
            s,
            "\n(opentrail's pages also hold its own audit records of the bench's lookups, which are the newest events, \
             so a page that matches them — ReadOnly=true, EventSource=cloudtrail.amazonaws.com, … — may differ in size.)"
        );
    }

    let _ = writeln!(s, "\n### How each engine is set up\n");
    if f.sqlite_lookups.is_some() {
        let _ = writeln!(
            s,
            "- **SQLite** (rusqlite {}, in the bench process, {} threads with a connection each): WAL, synchronous=FULL, one row \
             per event with the lookup columns and the record JSON, resource types / names and account ids in a side table, \
             an index per attribute on (value, event_time DESC, seq DESC), 128 MiB page cache per connection; loaded durably, \
             one transaction per {} records (its load time is an ingest figure, not a bulk load).",
            rusqlite::version(),
            f.lookup_threads,
            f.batch
        );
    }
    for b in &f.baselines {
        let _ = writeln!(
            s,
            "- **{}** ({}; clients: {} {}, {} thread(s) per query; 1-client run: {} thread(s); {} events loaded): {}",
            b.engine.label(),
            b.version,
            b.concurrent.clients,
            if b.concurrent.mode == "process" { "processes" } else { "threads of one process" },
            b.concurrent.threads_per_query,
            b.single.as_ref().map_or(0, |r| r.threads_per_query),
            b.events.map_or("?".into(), |e| num(e as f64)),
            b.setup
        );
    }
    for (e, why) in &f.skipped {
        let _ = writeln!(s, "- {}: skipped — {why}", e.label());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::EngineRun;
    use model::AttributeKey;

    fn lat(ms: &[u64]) -> Latencies {
        Latencies::new(ms.iter().map(|&m| Duration::from_millis(m)).collect())
    }

    fn figures(server: bool) -> (Figures, Vec<Query>) {
        let queries = vec![Query { group: "EventName".into(), attrs: vec![(AttributeKey::EventName, "A".into())] }];
        let ot = LookupResult {
            groups: vec![("EventName".into(), lat(&[2, 2, 4]))],
            all: lat(&[2, 2, 4]),
            per_sec: 1000.0,
            pages: vec![vec!["a".into(), "b".into()]],
            server_groups: if server { vec![("EventName".into(), lat(&[1, 1, 1]))] } else { Vec::new() },
            server_all: server.then(|| lat(&[1, 1, 1])),
            single: None,
        };
        let run = EngineRun {
            clients: 2,
            mode: "process".into(),
            threads_per_query: 1,
            per_sec: 500.0,
            groups: vec![("EventName".into(), lat(&[4, 4]))],
            all: lat(&[4, 4]),
        };
        let duck = EngineResult {
            engine: Engine::Duckdb,
            version: "2.0.1".into(),
            setup: "sorted".into(),
            load: Duration::from_secs(3),
            bytes_on_disk: 1000,
            events: Some(10),
            pages: vec![vec!["a".into()]],
            concurrent: run,
            single: None,
        };
        let f = Figures {
            events: 10,
            lookup_threads: 2,
            ot_lookups: Some(ot),
            baselines: vec![duck],
            skipped: vec![(Engine::Chdb, "Python module chdb not installed".into())],
            ..Default::default()
        };
        (f, queries)
    }

    #[test]
    fn engine_table_has_ratios_sizes_and_skips() {
        let (f, queries) = figures(false);
        let out = render(&f, &queries);
        assert!(out.contains("| DuckDB | 500 | 4.00 ms / 4.00 ms |"), "{out}");
        assert!(out.contains("| 2.00 | 2.00 |"), "throughput and p50 ratios: {out}");
        assert!(out.contains("page sizes, opentrail vs DuckDB: 1 of 1 queries differ (EventName)"), "{out}");
        assert!(out.contains("chDB: skipped — Python module chdb not installed"), "{out}");
        assert!(out.contains("not reported (no `Server-Timing` header)"), "{out}");
        assert!(!out.contains("server-time p50"), "{out}");
    }

    #[test]
    fn delivery_section_has_verdicts_ratio_and_moto_caveat() {
        use crate::delivery::ValidatorRun;
        let tp = |destination: &str, secs: u64| Throughput {
            destination: destination.into(),
            events: 1_000_000,
            selected: 900_000,
            raw_bytes: 1_440_000_000,
            ingest: Duration::from_secs(8),
            delivered_at_last_ack: 800_000,
            first_delivered: Duration::from_secs(1),
            all_delivered: Duration::from_secs(secs),
            log_files: 400,
            digests: 8,
            errors: 0,
            ack: lat(&[60, 130]),
            retries: 0,
            server_errors: Vec::new(),
        };
        let run = |tool: &str, secs: u64| ValidatorRun {
            tool: tool.into(),
            command: "x".into(),
            wall: Duration::from_secs(secs),
            digests: (5, 5),
            logs: (300, 300),
        };
        let f = DeliveryFigures {
            throughput: vec![tp("local folder", 10), tp("moto S3", 91)],
            delay: Some(Delay {
                target_rate: 2000,
                achieved_rate: 1999.0,
                batch: 100,
                events: 40_000,
                delay: lat(&[500, 900, 1100]),
                selected: 36_000,
                log_files: 700,
            }),
            validate: Some(Validate {
                events: 750_000,
                log_files: 300,
                digest_files: 5,
                log_bytes: 1_000_000_000,
                gz_bytes: 150_000_000,
                produce: Duration::from_secs(20),
                runs: vec![run("opentrail validate (offline)", 1), run("aws cloudtrail validate-logs", 50)],
                skipped: Vec::new(),
            }),
            ..Default::default()
        };
        let out = render_delivery(&f);
        assert!(
            out.contains("| 100,000 ev/s (900,000 events; caught up 2000 ms after the last ack; end to end, first send → all in files: 90,000 ev/s) | ingest 125,000 ev/s"),
            "{out}"
        );
        assert!(out.contains("| met |"), "{out}");
        assert!(out.contains("— (a bound of moto; **MISSED** by 90,000"), "{out}");
        assert!(out.contains("| 1000 MB/s (1.0 s) | 50.0× aws validate-logs | met |"), "{out}");
        assert!(out.contains("| aws cloudtrail validate-logs, same trail and files (through opentrail's S3 read API) | — | 20 MB/s (50.0 s)"), "{out}");
        assert!(out.contains("p50 900 ms, p99 1100 ms"), "{out}");
    }

    #[test]
    fn server_time_adds_its_own_ratio_and_column() {
        let (f, queries) = figures(true);
        let out = render(&f, &queries);
        assert!(out.contains("engine p50 ÷ opentrail server-time p50"), "{out}");
        assert!(out.contains("| 2.00 | 2.00 | 4.00 |"), "{out}");
        assert!(out.contains("| EventName | 3 | 2.00 ms / 4.00 ms | 1.00 ms / 1.00 ms | 4.00 ms / 4.00 ms |"), "{out}");
        assert!(out.contains("| lookup median server time (`Server-Timing`)"), "{out}");
    }
}
