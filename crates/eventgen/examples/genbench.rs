//! Measures generation speed: `cargo run --release -p eventgen --example genbench -- [EVENTS]`.
//!
//! Generates EVENTS records (default 1,000,000) single-threaded into a discarding writer through the CLI's
//! fast path, and prints events/s, MB/s and the average record size.

use std::io::Write;
use std::time::Instant;

/// Counts bytes and throws them away.
struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> std::io::Result<()> {
    let events = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let opts = eventgen::GenOptions { events, ..Default::default() };
    let mut sink = Sink(0);
    let t = Instant::now();
    let n = eventgen::write_ndjson(&opts, &mut sink)?;
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    println!(
        "write_ndjson: {n} events in {secs:.2} s = {rate:.0} events/s, {:.0} MB/s, {:.0} bytes/record (incl. newline)",
        sink.0 as f64 / secs / 1e6,
        sink.0 as f64 / n as f64
    );
    let t = Instant::now();
    let bytes: usize = eventgen::generate(&opts).map(|r| r.len()).sum();
    let secs = t.elapsed().as_secs_f64();
    println!("generate (String per item): {:.0} events/s, {:.0} MB/s", n as f64 / secs, bytes as f64 / secs / 1e6);
    Ok(())
}
