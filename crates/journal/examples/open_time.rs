//! Times `Journal::open` of an existing journal (e.g. the 10 M events left by `throughput`) and a page of 50
//! random point reads. `cargo run --release -p journal --example open_time -- [DIR]`; drop the page cache first
//! (`sync; echo 3 > /proc/sys/vm/drop_caches`) for a cold figure.

use std::time::Instant;

use journal::{Journal, JournalError, JournalOptions, Seq};

fn main() -> Result<(), JournalError> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/work/journal-bench".into());
    let t = Instant::now();
    let (j, rec) = Journal::open(JournalOptions::new(dir))?;
    println!("open: {:.3}s, {} segments, last seq {:?}", t.elapsed().as_secs_f64(), rec.segments, rec.last_seq);
    let last = rec.last_seq.map_or(0, |s| s.0);
    if last == 0 {
        return Ok(());
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut lat: Vec<f64> = (0..200)
        .map(|_| {
            let seqs: Vec<Seq> = (0..50)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    Seq(1 + x % last)
                })
                .collect();
            let t = Instant::now();
            j.read_many(&seqs).map(|_| t.elapsed().as_secs_f64() * 1000.0)
        })
        .collect::<Result<_, _>>()?;
    lat.sort_by(f64::total_cmp);
    println!("read_many of 50 random seqs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", lat[100], lat[197], lat[199]);
    println!(
        "rss: {}",
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap_or("?")
    );
    Ok(())
}
