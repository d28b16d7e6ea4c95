//! `opentrail-bench`: one command that measures the real opentrail binary over HTTP and a SQLite baseline
//! on the same generated data, in the same run, and prints the figures against DESIGN.md's targets.
//!
//! Order of the phases (each module owns one): generate the corpus (`corpus`); start the release server
//! on port 0 (`server`); durable ingest, index catch-up, bytes on disk (`ingest`, `server`); lookups
//! (`lookups`); RSS; steady-rate freshness (`ingest`); kill -9 and restart; then the SQLite baseline
//! (`sqlite`) on the very same records and queries; then the table (`report`).

mod corpus;
mod ingest;
mod lookups;
mod report;
mod server;
mod sqlite;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

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
#[command(about = "Measures opentrail (real binary, HTTP) against a SQLite baseline on the same data")]
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
    /// Skip the SQLite baseline.
    #[arg(long)]
    no_sqlite: bool,
    /// Keep the scratch directory.
    #[arg(long)]
    keep: bool,
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

    let mut fig = Figures { events, batch: args.batch, lookup_threads: args.lookup_threads, ..Default::default() };
    fig.header = report::header(&dir, &bin);
    println!("{}", fig.header);

    step(&format!("generating {events} events (seed {})", args.seed));
    let t = Instant::now();
    let corpus = corpus::Corpus::generate(&dir.join("corpus.ndjson"), events, args.seed, args.batch)?;
    fig.raw_bytes = corpus.raw_bytes;
    fig.gzip_bytes_per_event = corpus.gzip_bytes_per_event;
    fig.gzip_sample_events = corpus.gzip_sample_events;
    step(&format!(
        "  {} MB of NDJSON ({:.0} bytes/event) in {:.1}s",
        corpus.raw_bytes / 1_000_000,
        corpus.raw_bytes as f64 / events as f64,
        t.elapsed().as_secs_f64()
    ));
    let queries = lookups::choose_queries(&corpus.stats);

    let encoding = match args.encoding {
        Encoding::Auto => {
            step("comparing request encodings on a fresh server");
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

    step(&format!("ingest over HTTP: {} threads, {} records/request, {encoding:?}", args.ingest_threads, args.batch));
    let ing = ingest::ingest_corpus(&client, &corpus, args.ingest_threads, encoding)?;
    step(&format!("  {:.0} events/s, waiting for the index", ing.events as f64 / ing.elapsed.as_secs_f64()));
    fig.index_wait_after_ingest = Some(client.wait_caught_up(Duration::from_secs(3600))?);
    fig.ingest = Some(ing);

    let (journal, index) = (server::dir_bytes(&data_dir.join("journal"))?, server::dir_bytes(&data_dir.join("index"))?);
    fig.journal_bytes = journal;
    fig.index_bytes = index;

    step(&format!("lookups: {} queries × {} reps, {} threads", queries.len(), args.lookup_reps, args.lookup_threads));
    let ot_lookups = lookups::run_http(&client, &queries, args.lookup_threads, args.lookup_reps)?;
    fig.rss = Some(server::rss(srv.pid())?);
    fig.ot_lookups = Some(ot_lookups);

    step(&format!("freshness: {} events/s for {}s", args.fresh_rate, args.fresh_secs));
    let fresh_corpus = corpus::Corpus::generate_fresh(
        &dir.join("fresh.ndjson"),
        args.fresh_rate * args.fresh_secs,
        args.seed + 1_000_003,
        1000,
    )?;
    fig.fresh = Some(ingest::freshness(&client, &fresh_corpus, args.fresh_rate)?);
    drop(fresh_corpus);
    client.wait_caught_up(Duration::from_secs(600))?;

    step("kill -9 and restart");
    fig.server_errors = srv.errors_logged();
    fig.restart = Some(server::kill_and_restart(&mut srv, &bin, &data_dir, &config)?);
    srv.stop();

    if !args.no_sqlite {
        step("SQLite baseline: ingest");
        let db = dir.join("sqlite");
        let sq = sqlite::ingest(&db, &corpus)?;
        step(&format!("  {:.0} events/s", sq.events as f64 / sq.elapsed.as_secs_f64()));
        fig.sqlite_ingest = Some(sq);
        step("SQLite baseline: lookups");
        fig.sqlite_lookups = Some(sqlite::lookups(&db, &queries, args.lookup_threads, args.lookup_reps)?);
        fig.sqlite_plans = sqlite::plans(&db, &queries)?;
    }

    println!("{}", report::render(&fig));
    if args.keep {
        let kept = scratch.keep();
        eprintln!("kept {}", kept.display());
    }
    Ok(())
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
