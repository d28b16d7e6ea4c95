//! Fuzz target: the SigV4 `Authorization` header parser, and `verify` on requests carrying arbitrary auth input,
//! checked against two-phase verification (`verify_head`, the body fed in pieces, `finish`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigv4::{Credential, Expectation, SignedRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = sigv4::parse_authorization_header(text);

    // Split the input into an Authorization value, an X-Amz-Date value, a query and a path, so the whole
    // verification path (credential scope, dates, signed headers, presigned query) sees hostile input.
    let mut parts = text.splitn(4, '\n');
    let auth = parts.next().unwrap_or_default();
    let date = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let headers = vec![
        ("Host".to_owned(), "127.0.0.1:4567".to_owned()),
        ("X-Amz-Date".to_owned(), date.to_owned()),
        ("Authorization".to_owned(), auth.to_owned()),
    ];
    let lookup = |id: &str| {
        Some(Credential { access_key_id: id.to_owned(), secret_access_key: "wJalrXUtnFEMI/K7MDENG".to_owned() })
    };
    let expect = Expectation {
        services: &["cloudtrail", "s3"],
        region: "us-east-1",
        allow_presigned: true,
        must_sign: &["x-amz-target"],
    };
    for headers in [&headers[..], &headers[..2]] {
        let req = SignedRequest { method: "POST", path, query, headers, body: data };
        let whole = sigv4::verify(&req, 1_710_006_125, lookup);
        let streamed = sigv4::verify_head(&req.head(), 1_710_006_125, lookup, &expect).and_then(|mut pending| {
            for chunk in data.chunks(7) {
                pending.update(chunk);
            }
            pending.finish()
        });
        // The expectation only adds refusals: whatever it lets through, verify() accepts identically.
        if let Ok(verified) = streamed {
            assert_eq!(whole, Ok(verified));
        }
    }
});
