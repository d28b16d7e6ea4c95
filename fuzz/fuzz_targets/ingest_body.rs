//! Fuzz target: an ingest request body end to end before the journal — gzip detection and decoding, batch
//! splitting (NDJSON, JSON array, `{"Records":[…]}`), and per-record validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use service::batch;

fuzz_target!(|data: &[u8]| {
    let decoded;
    let body: &[u8] = if batch::looks_gzipped(data) {
        match batch::gunzip(data) {
            Ok(d) => {
                decoded = d;
                &decoded
            }
            Err(_) => return,
        }
    } else {
        data
    };
    if let Ok(parts) = batch::split_batch(body) {
        for p in parts {
            let _ = model::Record::parse(p, || "fuzz".to_string());
        }
    }
});
