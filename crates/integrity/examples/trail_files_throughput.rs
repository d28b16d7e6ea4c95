//! Measures what the trail-file code costs on realistic records (eventgen): building log files at gzip
//! level 1 vs 6 (one core), and the validator's gunzip + SHA-256 over many log files (all cores, through
//! the real engine and an in-memory bucket).
//!
//! Run optimized: `cargo run --release -p integrity --example trail_files_throughput [uncompressed MB to validate]`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use integrity::digest::{Digest, DigestInput, LogFileEntry};
use integrity::keys::SigningKey;
use integrity::layout::{DigestKey, LogFileKey, LogKind, unique_name};
use integrity::logfile::LogFileBuilder;
use integrity::validate::{Object, ObjectSource, SourceError, ValidateParams, validate};
use model::EventTime;

#[derive(Default)]
struct Mem(Mutex<BTreeMap<String, Object>>);

impl ObjectSource for Mem {
    async fn list(&self, _bucket: &str, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, SourceError> {
        let m = self.0.lock().unwrap();
        Ok(m.keys().filter(|k| k.starts_with(prefix) && start_after.is_none_or(|s| k.as_str() > s)).cloned().collect())
    }
    async fn get(&self, _bucket: &str, key: &str) -> Result<Option<Object>, SourceError> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
}

fn main() {
    let validate_mb: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let t0 = EventTime(1_795_564_800_000);
    let records: Vec<(String, EventTime)> =
        eventgen::generate(&eventgen::GenOptions { events: 60_000, seed: 7, start: t0, span_ms: 3_600_000 })
            .enumerate()
            .map(|(i, r)| (r, EventTime(t0.0 + i as i64)))
            .collect();
    let bytes: usize = records.iter().map(|(r, _)| r.len()).sum();
    println!(
        "{} records, {:.0} bytes on average, {:.1} MB",
        records.len(),
        bytes as f64 / records.len() as f64,
        bytes as f64 / 1e6
    );

    // 1. Log file building: gzip level 1 vs 6, one core, files of 5,000 records.
    for level in [1, 2, 3, 4, 6] {
        let start = Instant::now();
        let mut compressed = 0;
        for chunk in records.chunks(5000) {
            let mut b = LogFileBuilder::with_level(level);
            for (r, t) in chunk {
                b.push(r.as_bytes(), *t);
            }
            compressed += b.finish().gzip.len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "gzip level {level}: {:.0} MB/s, {:.0} records/s on one core, ratio {:.1}x ({:.1} MB -> {:.1} MB)",
            bytes as f64 / 1e6 / secs,
            records.len() as f64 / secs,
            bytes as f64 / compressed as f64,
            bytes as f64 / 1e6,
            compressed as f64 / 1e6
        );
    }

    // 2. The validator over `validate_mb` of uncompressed log data: the same 12 distinct files repeated.
    let key = SigningKey::generate().unwrap();
    let mem = Mem::default();
    let mut distinct = Vec::new();
    for chunk in records.chunks(5000) {
        let mut b = LogFileBuilder::new();
        for (r, t) in chunk {
            b.push(r.as_bytes(), *t);
        }
        distinct.push(b.finish());
    }
    let per_file = distinct[0].uncompressed_len;
    let files = (validate_mb * 1_000_000).div_ceil(per_file) as usize;
    let end = EventTime(t0.0 + 3_600_000);
    let mut entries = Vec::new();
    for i in 0..files {
        let f = &distinct[i % distinct.len()];
        // Base-62 digits of i: distinct names (unique_name maps each byte modulo 62).
        let random: [u8; 16] = std::array::from_fn(|d| ((i / 62usize.pow(d.min(4) as u32)) % 62) as u8);
        let k = LogFileKey {
            kind: LogKind::Events,
            prefix: None,
            account: "123456789012".into(),
            region: "us-east-1".into(),
            delivered: EventTime(t0.0 + 60_000),
            unique: unique_name(random),
        }
        .to_key();
        mem.0.lock().unwrap().insert(k.clone(), Object { bytes: f.gzip.clone(), metadata: BTreeMap::new() });
        entries.push(LogFileEntry::new("b", &k, f));
    }
    let dkey = DigestKey {
        prefix: None,
        account: "123456789012".into(),
        region: "us-east-1".into(),
        trail: "t".into(),
        home_region: "us-east-1".into(),
        end,
    }
    .to_key();
    let digest = Digest::new(DigestInput {
        account: "123456789012",
        start: t0,
        end,
        bucket: "b",
        key: &dkey,
        fingerprint: key.fingerprint(),
        log_files: entries,
        previous: None,
    });
    let signed = digest.sign(&key).unwrap();
    let meta = signed.metadata().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    mem.0.lock().unwrap().insert(dkey, Object { bytes: signed.gzip, metadata: meta });
    let params =
        ValidateParams::from_trail_arn("arn:aws:cloudtrail:us-east-1:123456789012:trail/t", "b", None, t0, end)
            .unwrap();
    let keys = [key.public_key(EventTime(0), EventTime::MAX)];
    let start = Instant::now();
    let report = futures::executor::block_on(validate(&mem, &params, &keys, &|_| {})).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let c = report.counts();
    assert_eq!((c.logs_valid, c.logs_invalid, c.digests_valid), (files, 0, 1));
    println!(
        "validate: {files} log files, {:.0} MB uncompressed in {secs:.2} s = {:.0} MB/s with {} hash threads",
        report.log_bytes_hashed as f64 / 1e6,
        report.log_bytes_hashed as f64 / 1e6 / secs,
        params.hash_threads
    );
}
