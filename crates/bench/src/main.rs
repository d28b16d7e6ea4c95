//! `opentrail-bench`: one command that measures the real opentrail binary over HTTP and the engines a user
//! would pick instead (SQLite, DuckDB, chDB, tantivy) on the same generated data, in the same run, and prints
//! the figures against DESIGN.md's targets.
//!
//! Order of the phases (each module owns one): generate the corpus and the baselines' columns file
//! (`corpus`); start the release server on port 0 (`server`); durable ingest, index catch-up, bytes on disk
//! (`ingest`, `server`); lookups (`lookups`); RSS; steady-rate freshness (`ingest`); kill -9 and restart; the
//! server stops; then the SQLite baseline (`sqlite`) and the Python ones (`baselines`), one at a time, on the
//! very same records and queries; then the tables (`report`).

mod baselines;
mod corpus;
mod delivery;
mod ingest;
mod lookups;
mod report;
mod richer;
mod server;
mod sqlite;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::baselines::Engine;
use crate::report::Figures;
use crate::server::{Client, Server};

/// Events ingested per encoding when comparing plain and gzip bodies before the main run.
pub const ENCODING_PROBE_EVENTS: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    Plain,
    Gzip,
    /// Measure both on a fresh server first, then use the faster one for the main run.
    Auto,
}

#[derive(Debug, Parser)]
#[command(about = "Measures opentrail (real binary, HTTP) against SQLite, DuckDB, chDB and tantivy on the same data")]
struct Args {
    /// Number of generated events ingested and searched.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// 10 M events (overrides --events).
    #[arg(long)]
    big: bool,
    /// Seed of the generated traffic (`opentrail gen --seed`).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Records per ingest request (and per SQLite transaction).
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Concurrent ingest clients.
    #[arg(long, default_value_t = 4)]
    ingest_threads: usize,
    /// Body encoding of ingest requests.
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    encoding: Encoding,
    /// Concurrent lookup clients (opentrail and SQLite alike).
    #[arg(long, default_value_t = 2)]
    lookup_threads: usize,
    /// Timed repetitions of every lookup query.
    #[arg(long, default_value_t = 100)]
    lookup_reps: usize,
    /// Timed repetitions of every lookup query from one client (single-query latency); 0 skips that run.
    #[arg(long, default_value_t = 20)]
    single_reps: usize,
    /// Timed repetitions, from one client, of each of issue 7's query forms (OR, prefix, CIDR, exclusion,
    /// counts); 0 skips that phase.
    #[arg(long, default_value_t = 20)]
    rich_reps: usize,
    /// Steady ingest rate of the freshness phase, events/s.
    #[arg(long, default_value_t = 20_000)]
    fresh_rate: u64,
    /// Length of the freshness phase.
    #[arg(long, default_value_t = 15)]
    fresh_secs: u64,
    /// Scratch directory (journal, index, SQLite db, corpus); must not be tmpfs. Removed at the end.
    #[arg(long, default_value = "/work/bench-tmp")]
    scratch: PathBuf,
    /// The opentrail binary; default: `opentrail` next to this executable.
    #[arg(long)]
    opentrail: Option<PathBuf>,
    /// Engines compared with, comma-separated, from sqlite (rusqlite, durable batched ingest, in this
    /// process), sqlite-py, duckdb, chdb, tantivy (Python scripts in crates/bench/baselines); `none` for
    /// none. Default: sqlite,duckdb,chdb,tantivy; those whose Python module is missing are reported as
    /// skipped with the pip command.
    #[arg(long)]
    baselines: Option<String>,
    /// Drop sqlite from the baselines (it loads at ~9 k events/s: ~18 minutes at 10 M).
    #[arg(long)]
    no_sqlite: bool,
    /// The Python interpreter that runs the baseline scripts.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Directory of the baseline scripts; default: crates/bench/baselines of the source tree built from.
    #[arg(long)]
    baselines_dir: Option<PathBuf>,
    /// Lookups (and the baselines) only: skip the encoding comparison (gzip unless --encoding says),
    /// the freshness phase and the kill -9 restart.
    #[arg(long)]
    lookups_only: bool,
    /// Keep the scratch directory.
    #[arg(long)]
    keep: bool,
    /// Issue 8's delivery benchmark instead of the main one: trail throughput (local folder and moto S3) at
    /// full ingest speed with `--events`, delivery delay, and `opentrail validate` vs `aws cloudtrail
    /// validate-logs` on the same files. Uses --events, --seed, --batch, --ingest-threads, --encoding.
    #[arg(long)]
    delivery: bool,
    /// Delivery benchmark: events of the moto S3 throughput run (moto is a Python server; 0 skips it).
    #[arg(long, default_value_t = 200_000)]
    moto_events: u64,
    /// Delivery benchmark: steady ingest rate of the delay phase, events/s (0 skips the phase).
    #[arg(long, default_value_t = 2000)]
    delay_rate: u64,
    /// Delivery benchmark: length of the delay phase.
    #[arg(long, default_value_t = 20)]
    delay_secs: u64,
    /// Delivery benchmark: records per request in the delay phase.
    #[arg(long, default_value_t = 100)]
    delay_batch: usize,
    /// Delivery benchmark: events delivered for the validate phase (750 k ≈ 1.1 GB of uncompressed log data;
    /// 0 skips the phase).
    #[arg(long, default_value_t = 750_000)]
    validate_events: u64,
    /// Delivery benchmark: skip the local-folder and moto throughput runs.
    #[arg(long)]
    no_throughput: bool,
    /// The aws CLI (v1) that runs `cloudtrail validate-logs`.
    #[arg(long, default_value = "aws")]
    aws: PathBuf,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opentrail-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let events = if args.big { 10_000_000 } else { args.events };
    let bin = locate_opentrail(args.opentrail.as_deref())?;
    std::fs::create_dir_all(&args.scratch).with_context(|| format!("create {}", args.scratch.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&args.scratch)
        .with_context(|| format!("scratch dir in {}", args.scratch.display()))?;
    let dir = scratch.path().to_path_buf();
    if args.delivery {
        run_delivery(&args, &bin, &dir)?;
        if args.keep {
            eprintln!("kept {}", scratch.keep().display());
        }
        return Ok(());
    }

    let mut engines = match &args.baselines {
        Some(list) => baselines::parse_list(list)?,
        None => Engine::DEFAULT.to_vec(),
    };
    if args.no_sqlite {
        engines.retain(|e| *e != Engine::Sqlite);
    }
    let scripts = baselines::scripts_dir(args.baselines_dir.as_deref());
    let mut fig = Figures {
        events,
        batch: args.batch,
        lookup_threads: args.lookup_threads,
        lookup_reps: args.lookup_reps,
        single_reps: args.single_reps,
        ..Default::default()
    };
    engines.retain(|&e| match baselines::unavailable(e, &args.python, &scripts) {
        Some(why) => {
            step(&format!("baseline {} skipped: {why}", e.name()));
            fig.skipped.push((e, why));
            false
        }
        None => true,
    });
    let python_engines: Vec<Engine> = engines.iter().copied().filter(|e| e.is_python()).collect();
    fig.header = report::header(&dir, &bin);
    println!("{}", fig.header);
    print_estimate(&args, events, &engines);
    check_disk(&args, &dir, events, &engines);

    let mut phase = Phase::start(&format!("generating {events} events (seed {})", args.seed));
    let corpus_path = dir.join("corpus.ndjson");
    let corpus = corpus::Corpus::generate(&corpus_path, events, args.seed, args.batch)?;
    fig.raw_bytes = corpus.raw_bytes;
    fig.gzip_bytes_per_event = corpus.gzip_bytes_per_event;
    fig.gzip_sample_events = corpus.gzip_sample_events;
    step(&format!(
        "  {} MB of NDJSON ({:.0} bytes/event) in {:.1}s",
        corpus.raw_bytes / 1_000_000,
        corpus.raw_bytes as f64 / events as f64,
        phase.elapsed().as_secs_f64()
    ));
    let queries = lookups::choose_queries(&corpus.stats);

    let encoding = match args.encoding {
        Encoding::Auto if args.lookups_only => Encoding::Gzip,
        Encoding::Auto => {
            phase.next(&mut fig, "comparing request encodings on a fresh server");
            let (plain, gzip) =
                ingest::compare_encodings(&bin, &dir, &corpus, args.ingest_threads, ENCODING_PROBE_EVENTS)?;
            fig.encoding_plain_eps = Some(plain);
            fig.encoding_gzip_eps = Some(gzip);
            step(&format!("  plain {plain:.0} events/s, gzip {gzip:.0} events/s"));
            if gzip > plain { Encoding::Gzip } else { Encoding::Plain }
        }
        e => e,
    };
    fig.encoding = Some(encoding);

    let data_dir = dir.join("opentrail-data");
    let config = server::write_config(&dir)?;
    let mut srv = Server::spawn(&bin, &data_dir, &config)?;
    let client = Client::new(&srv.addr);

    phase.next(
        &mut fig,
        &format!("ingest over HTTP: {} threads, {} records/request, {encoding:?}", args.ingest_threads, args.batch),
    );
    let ing = ingest::ingest_corpus(&client, &corpus, args.ingest_threads, encoding)?;
    step(&format!("  {:.0} events/s, waiting for the index", ing.events as f64 / ing.elapsed.as_secs_f64()));
    fig.index_wait_after_ingest = Some(client.wait_caught_up(Duration::from_secs(3600))?);
    fig.ingest = Some(ing);

    let (journal, index) = (server::dir_bytes(&data_dir.join("journal"))?, server::dir_bytes(&data_dir.join("index"))?);
    fig.journal_bytes = journal;
    fig.index_bytes = index;

    phase.next(
        &mut fig,
        &format!(
            "lookups: {} queries × {} reps, {} threads; then × {} reps, 1 thread",
            queries.len(),
            args.lookup_reps,
            args.lookup_threads,
            args.single_reps
        ),
    );
    let ot_lookups = lookups::run_http(&client, &queries, args.lookup_threads, args.lookup_reps, args.single_reps)?;
    if ot_lookups.server_all.is_none() {
        step("  the server sent no Server-Timing header: server time per lookup not reported");
    }
    if args.rich_reps > 0 {
        let rich = richer::choose(&corpus.stats);
        phase.next(
            &mut fig,
            &format!(
                "query forms (OR, prefix, CIDR, exclusion, counts): {} queries × {} reps, 1 thread",
                rich.len(),
                args.rich_reps
            ),
        );
        fig.richer = richer::run(&client, &rich, args.rich_reps)?;
    }
    fig.rss = Some(server::rss(srv.pid())?);
    fig.ot_lookups = Some(ot_lookups);

    if !args.lookups_only {
        phase.next(&mut fig, &format!("freshness: {} events/s for {}s", args.fresh_rate, args.fresh_secs));
        let fresh_corpus = corpus::Corpus::generate_fresh(
            &dir.join("fresh.ndjson"),
            args.fresh_rate * args.fresh_secs,
            args.seed + 1_000_003,
            1000,
        )?;
        fig.fresh = Some(ingest::freshness(&client, &fresh_corpus, args.fresh_rate)?);
        drop(fresh_corpus);
        client.wait_caught_up(Duration::from_secs(600))?;

        phase.next(&mut fig, "kill -9 and restart");
        fig.server_errors = srv.errors_logged();
        fig.restart = Some(server::kill_and_restart(&mut srv, &bin, &data_dir, &config)?);
    } else {
        fig.server_errors = srv.errors_logged();
    }
    srv.stop();
    if !args.keep {
        // The baselines need the disk more than the stopped server's files (10 M events: ~60 GB in all).
        let _ = std::fs::remove_dir_all(&data_dir);
    }

    if engines.contains(&Engine::Sqlite) {
        phase.next(&mut fig, "SQLite baseline: ingest");
        let db = dir.join("sqlite");
        let sq = sqlite::ingest(&db, &corpus)?;
        step(&format!("  {:.0} events/s", sq.events as f64 / sq.elapsed.as_secs_f64()));
        fig.sqlite_ingest = Some(sq);
        phase.next(&mut fig, "SQLite baseline: lookups");
        fig.sqlite_lookups =
            Some(sqlite::lookups(&db, &queries, args.lookup_threads, args.lookup_reps, args.single_reps)?);
        fig.sqlite_plans = sqlite::plans(&db, &queries)?;
        if !args.keep {
            let _ = std::fs::remove_dir_all(&db);
        }
    }

    if !python_engines.is_empty() {
        phase.next(&mut fig, "columns file for the Python baselines");
        let columns = &dir.join("columns.tsv");
        corpus.write_columns_file(columns)?;
        drop(corpus);
        if !args.keep {
            // Only the columns file is read from here on (10 M events: 14 GB freed).
            let _ = std::fs::remove_file(&corpus_path);
        }
        let queries_file = dir.join("queries.json");
        baselines::write_queries(&queries_file, &queries)?;
        for &engine in &python_engines {
            phase.next(&mut fig, &format!("{} baseline: load and lookups", engine.label()));
            let workdir = dir.join(format!("baseline-{}", engine.name()));
            let spec = baselines::RunSpec {
                python: &args.python,
                scripts: &scripts,
                columns,
                queries_file: &queries_file,
                workdir: &workdir,
                clients: args.lookup_threads,
                reps: args.lookup_reps,
                single_reps: args.single_reps,
            };
            match baselines::run(engine, &spec, &queries) {
                Ok(r) => fig.baselines.push(r),
                Err(e) => {
                    step(&format!("  {} failed: {e:#}", engine.name()));
                    fig.skipped.push((engine, format!("failed: {e:#}")));
                }
            }
            if !args.keep {
                let _ = std::fs::remove_dir_all(&workdir);
            }
        }
    }
    phase.finish(&mut fig);

    println!("{}", report::render(&fig, &queries));
    if args.keep {
        let kept = scratch.keep();
        eprintln!("kept {}", kept.display());
    }
    Ok(())
}

/// `--delivery`: issue 8's benchmark (module `delivery`), its own report section.
fn run_delivery(args: &Args, bin: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let encoding = match args.encoding {
        // The main benchmark's comparison picks gzip on this machine; the delivery runs do not repeat it.
        Encoding::Auto => Encoding::Gzip,
        e => e,
    };
    let o = delivery::Options {
        bin,
        dir,
        seed: args.seed,
        batch: args.batch,
        threads: args.ingest_threads,
        encoding,
        events: args.events,
        moto_events: args.moto_events,
        delay_rate: args.delay_rate,
        delay_secs: args.delay_secs,
        delay_batch: args.delay_batch,
        validate_events: args.validate_events,
        aws: &args.aws,
    };
    let mut fig = report::DeliveryFigures { header: report::header(dir, bin), ..Default::default() };
    println!("{}", fig.header);
    let mut phase = Phase::start("delivery benchmark");
    let mut figs = Figures::default();
    if !args.no_throughput {
        phase.next(&mut figs, &format!("generating {} events (seed {})", o.events, o.seed));
        let corpus = corpus::Corpus::generate_fresh(&dir.join("delivery.ndjson"), o.events, o.seed, o.batch)?;
        phase.next(&mut figs, &format!("throughput to a local folder: {} events, {encoding:?}", o.events));
        let t = delivery::throughput_local(&o, &corpus)?;
        step(&t.progress_line());
        fig.throughput.push(t);
        drop(corpus);
        let _ = std::fs::remove_file(dir.join("delivery.ndjson"));
        if o.moto_events > 0 {
            phase.next(&mut figs, &format!("throughput to moto S3: {} events", o.moto_events));
            let corpus =
                corpus::Corpus::generate_fresh(&dir.join("moto.ndjson"), o.moto_events, o.seed + 1_000_033, o.batch)?;
            match delivery::throughput_moto(&o, &corpus) {
                Ok(t) => {
                    step(&t.progress_line());
                    fig.throughput.push(t);
                }
                Err(e) => {
                    step(&format!("  moto run failed: {e:#}"));
                    fig.failed.push(("throughput to moto S3".into(), format!("{e:#}")));
                }
            }
            drop(corpus);
            let _ = std::fs::remove_file(dir.join("moto.ndjson"));
        }
    }
    if o.delay_rate > 0 && o.delay_secs > 0 {
        phase.next(&mut figs, &format!("delay: {} events/s for {} s", o.delay_rate, o.delay_secs));
        let d = delivery::delay(&o)?;
        step(&format!("  p50 {:?}, p99 {:?}", d.delay.p(50.0), d.delay.p(99.0)));
        fig.delay = Some(d);
    }
    if o.validate_events > 0 {
        phase.next(
            &mut figs,
            &format!("validate: {} events into a local bucket, then both validators", o.validate_events),
        );
        fig.validate = Some(delivery::validate(&o)?);
    }
    phase.finish(&mut figs);
    fig.phases = figs.phases.into_iter().filter(|(n, _)| n != "delivery benchmark").collect();
    println!("{}", report::render_delivery(&fig));
    Ok(())
}

/// The phase running now; each one's wall time goes into the report.
struct Phase {
    name: String,
    start: Instant,
}

impl Phase {
    fn start(name: &str) -> Phase {
        step(name);
        Phase { name: name.to_string(), start: Instant::now() }
    }
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
    fn next(&mut self, fig: &mut Figures, name: &str) {
        fig.phases.push((std::mem::take(&mut self.name), self.start.elapsed()));
        *self = Phase::start(name);
    }
    fn finish(self, fig: &mut Figures) {
        fig.phases.push((self.name, self.start.elapsed()));
    }
}

/// An up-front estimate of the run's length, from hard-coded rates measured on this machine kind, so a
/// 10 M run with slow baselines is a choice made knowingly.
fn print_estimate(args: &Args, events: u64, engines: &[Engine]) {
    let n = events as f64;
    let lookups = 51.0 * (args.lookup_reps + args.single_reps) as f64;
    let mut parts: Vec<(String, f64)> = vec![
        // Hard-coded rates: generation (with parsing, gzip sample and columns file) ~60 k events/s, durable
        // ingest ~100 k events/s, a lookup ~2 ms.
        ("generate".into(), n / 60_000.0),
        ("opentrail ingest".into(), n / 100_000.0 + if args.lookups_only { 0.0 } else { 5.0 }),
        ("opentrail lookups".into(), lookups * 0.002 / args.lookup_threads.max(1) as f64),
        ("query forms".into(), richer::estimate(26, args.rich_reps).as_secs_f64()),
    ];
    if !args.lookups_only {
        parts.push(("freshness, restart".into(), args.fresh_secs as f64 + 10.0));
    }
    if engines.iter().any(|e| e.is_python()) {
        // Hard-coded: the columns file is written at ~100 k events/s.
        parts.push(("columns file".into(), n / 100_000.0));
    }
    for e in engines {
        parts.push((format!("{} load + lookups", e.name()), n / e.load_rate() + lookups * e.lookup_secs(events)));
    }
    let total: f64 = parts.iter().map(|(_, s)| s).sum();
    let human = |secs: f64| if secs < 90.0 { format!("{secs:.0} s") } else { format!("{:.0} min", secs / 60.0) };
    let text: Vec<String> = parts.iter().map(|(p, s)| format!("{p} ~{}", human(*s))).collect();
    step(&format!("estimated run time ~{} (a loaded machine takes longer): {}", human(total), text.join(", ")));
}

/// Warns when the scratch disk looks too small for the run's largest moment (hard-coded sizes per event,
/// measured at 1 M: corpus 1,440 B, opentrail 250 B, columns file 1,750 B, SQLite 3,050 B, DuckDB 1,000 B
/// plus up to the columns file again while its load sorts, chDB 360 B, tantivy 650 B).
fn check_disk(args: &Args, dir: &std::path::Path, events: u64, engines: &[Engine]) {
    let n = events as f64;
    let corpus = 1440.0 * n;
    let mut peak = corpus + 250.0 * n;
    if engines.contains(&Engine::Sqlite) {
        peak = peak.max(corpus + 3050.0 * n);
    }
    let columns = 1750.0 * n;
    for e in engines.iter().filter(|e| e.is_python()) {
        let engine = match e {
            Engine::Duckdb => 1000.0 * n + columns,
            Engine::Chdb => 360.0 * n * 2.0,
            Engine::Tantivy => 650.0 * n * 2.0,
            _ => 2700.0 * n,
        };
        peak = peak.max(corpus + columns).max(columns + engine);
    }
    if args.keep {
        peak += 250.0 * n + corpus;
    }
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return };
    // SAFETY: statvfs(3) fills the struct it is given; the path is a valid NUL-terminated string.
    let free = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return;
        }
        st.f_bavail as f64 * st.f_frsize as f64
    };
    let gb = |b: f64| b / 1e9;
    if peak > free * 0.9 {
        step(&format!(
            "warning: this run may need ~{:.0} GB of scratch disk at its peak and {:.0} GB are free; \
             drop baselines (--baselines, --no-sqlite) or use a bigger --scratch",
            gb(peak),
            gb(free)
        ));
    } else {
        step(&format!("scratch disk: peak need ~{:.0} GB, {:.0} GB free", gb(peak), gb(free)));
    }
}

/// Progress on stderr, so stdout is the report alone.
pub fn step(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// The release `opentrail` binary: the flag, or the one next to this executable.
fn locate_opentrail(flag: Option<&std::path::Path>) -> Result<PathBuf> {
    let path = match flag {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe().context("locate the bench executable")?;
            exe.with_file_name("opentrail")
        }
    };
    if !path.is_file() {
        bail!(
            "opentrail binary not found at {} — build it first with `cargo build --release -p opentrail` \
             (same CARGO_TARGET_DIR as the bench) or pass --opentrail PATH",
            path.display()
        );
    }
    if path.components().any(|c| c.as_os_str() == "debug") {
        eprintln!("[bench] warning: {} looks like a debug build; figures will not be representative", path.display());
    }
    Ok(path)
}
