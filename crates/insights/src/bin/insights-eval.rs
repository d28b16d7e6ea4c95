//! `insights-eval`: the labelled synthetic benchmark of the Insights detector (see `insights::eval`); prints the
//! Markdown of BENCHMARKS.md's Insights section.
//!
//! `cargo run --release -p insights --bin insights-eval -- [--weeks N] [--apis N] [--seed N]
//! [--false-alarms-per-week F] [--throughput-calls N]`

use insights::eval::{EvalConfig, markdown, run};

fn main() {
    let mut cfg = EvalConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> String {
            args.next().unwrap_or_else(|| {
                eprintln!("insights-eval: {name} needs a value");
                std::process::exit(2)
            })
        };
        let bad = |name: &str| -> ! {
            eprintln!("insights-eval: bad value for {name}");
            std::process::exit(2)
        };
        match a.as_str() {
            "--weeks" => cfg.weeks = value("--weeks").parse().unwrap_or_else(|_| bad("--weeks")),
            "--apis" => cfg.apis = value("--apis").parse().unwrap_or_else(|_| bad("--apis")),
            "--seed" => cfg.seed = value("--seed").parse().unwrap_or_else(|_| bad("--seed")),
            "--false-alarms-per-week" => {
                cfg.settings.false_alarms_per_week =
                    value("--false-alarms-per-week").parse().unwrap_or_else(|_| bad("--false-alarms-per-week"))
            }
            "--throughput-calls" => {
                cfg.throughput_calls = value("--throughput-calls").parse().unwrap_or_else(|_| bad("--throughput-calls"))
            }
            "-h" | "--help" => {
                println!(
                    "insights-eval [--weeks N] [--apis N] [--seed N] [--false-alarms-per-week F] [--throughput-calls N]"
                );
                return;
            }
            other => {
                eprintln!("insights-eval: unknown argument {other}");
                std::process::exit(2)
            }
        }
    }
    let started = std::time::Instant::now();
    let report = run(&cfg, &mut |phase| eprintln!("[{:>6.1}s] {phase}", started.elapsed().as_secs_f64()));
    eprintln!("[{:>6.1}s] done", started.elapsed().as_secs_f64());
    print!("{}", markdown(&cfg, &report));
}
