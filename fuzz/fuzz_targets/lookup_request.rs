//! Fuzz target: LookupEvents request validation (JSON body → validated query, NextToken decoding).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = api::lookup::parse_lookup_request(&v, None);
    }
});
