//! Times SQL over one event data store's table in-process (no server, no HTTP): the engine's share of a
//! query, for tuning the lake. Usage: `lake-sql <store dir> <reps> <file of queries, one per line>`; `FROM
//! events` names the store. Prints the best time of each query (and of
//! its session and plan alone) and its plan with metrics (EXPLAIN ANALYZE). `PUSHDOWN=1`: every Parquet scan
//! evaluates its filter while decoding (DataFusion's `pushdown_filters` for the session), to compare with the
//! per-scan choice the lake makes (crates/lake/src/pushdown.rs).
use std::time::Instant;

use lake::{Table, sql};

/// The server's allocator, so the figures are the engine's share as the server runs it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As the server runs (crates/opentrail/src/main.rs): without transparent huge pages, whose zeroing made
    // timings swing 2-3x on a machine with THP `always`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(&args[1]);
    let reps: usize = args[2].parse().expect("reps");
    let queries = std::fs::read_to_string(&args[3]).expect("queries file");
    let threads: usize = std::env::var("THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    let table = Table::open(dir).expect("open table");
    let snap = table.snapshot();
    eprintln!("{} files, {} rows", snap.files.len(), snap.rows());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    rt.block_on(async {
        for q in queries.lines().filter(|l| !l.trim().is_empty()) {
            let stores = vec![("events".to_string(), snap.clone())];
            let (mut best, mut best_plan) = (f64::MAX, f64::MAX);
            let mut rows = 0;
            for _ in 0..reps {
                let t = Instant::now();
                let ctx = session(&stores, threads).await;
                let plan = sql::plan(&ctx, q).await.unwrap();
                best_plan = best_plan.min(t.elapsed().as_secs_f64());
                let a = sql::run(&ctx, plan, q, 10_000_000, 0).await.unwrap();
                best = best.min(t.elapsed().as_secs_f64());
                rows = a.rows.len();
            }
            println!("{:8.1} ms (planned in {:.1})  {rows:>6} rows  {q}", best * 1000.0, best_plan * 1000.0);
            if std::env::var("EXPLAIN").is_ok() {
                let ctx = session(&stores, threads).await;
                let df = ctx.sql(&format!("EXPLAIN ANALYZE {q}")).await.unwrap();
                let b = df.collect().await.unwrap();
                println!("{}", datafusion::arrow::util::pretty::pretty_format_batches(&b).unwrap());
            }
        }
    });
}

async fn session(stores: &[(String, lake::Snapshot)], threads: usize) -> datafusion::prelude::SessionContext {
    let ctx = sql::session(stores, 4 << 30, threads).await.unwrap();
    if std::env::var("PUSHDOWN").is_ok() {
        ctx.state_ref().write().config_mut().options_mut().execution.parquet.pushdown_filters = true;
    }
    ctx
}
