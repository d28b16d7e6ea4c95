//! Fuzz target: `model::Record::parse` on arbitrary bytes, and the stored-form round trip of what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = model::Record::parse(data, || "fuzz-assigned-id".to_string()) {
        // Whatever is accepted must read back identically from its stored form.
        let again = model::Record::from_stored(r.json()).expect("stored form re-parses");
        assert_eq!(again.fields, r.fields);
    }
});
