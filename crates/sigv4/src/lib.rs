//! AWS Signature Version 4: verify a request as the aws CLI, boto3 and the AWS SDKs sign it, and [`sign`] one.
//!
//! Pure: no I/O, no clock (the caller passes `now` as epoch seconds), no HTTP types (plain strings and bytes).
//!
//! # Verifying in two phases
//!
//! A server authenticates a request from its head before reading its body, then streams the body through the
//! payload hash:
//! 1. [`verify_head`] takes the method, path, query and headers ([`RequestHead`]) and the operation's
//!    [`Expectation`]: which services and region the credential scope may name, whether a presigned URL is
//!    acceptable, which headers must be signed when present (`x-amz-target`), and, outside S3, that the payload is
//!    signed. It parses the `Authorization` header or presigned query, checks the clock skew and the scope, and
//!    looks the access key up. An unsigned, stale, mis-scoped or unknown-key request fails here, its body unread.
//! 2. The returned [`PendingBody`] takes the body as it arrives ([`PendingBody::update`], incremental SHA-256);
//!    [`PendingBody::finish`] then compares the signature in constant time and checks a claimed
//!    `x-amz-content-sha256` against the streamed hash, yielding [`Verified`].
//!
//! ```
//! use sigv4::{Credential, Expectation, RequestHead};
//!
//! let cred = Credential { access_key_id: "AKIDEXAMPLE".into(), secret_access_key: "secret".into() };
//! let (now, body) = (1_710_006_125, br#"{"MaxResults": 5}"#);
//! let target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
//! let mut headers = vec![("Host".into(), "127.0.0.1:4567".into()), ("X-Amz-Target".into(), target.into())];
//! sigv4::sign("POST", "/", "", &mut headers, body, &cred, "us-east-1", "cloudtrail", now);
//!
//! let expect = Expectation {
//!     services: &["cloudtrail"],
//!     region: "us-east-1",
//!     allow_presigned: false,
//!     must_sign: &["x-amz-target"],
//! };
//! let head = RequestHead { method: "POST", path: "/", query: "", headers: &headers };
//! let lookup = |id: &str| (id == cred.access_key_id).then(|| cred.clone());
//! let mut pending = sigv4::verify_head(&head, now, lookup, &expect)?;
//! for chunk in body.chunks(4) {
//!     pending.update(chunk);
//! }
//! let verified = pending.finish()?;
//! assert_eq!((verified.access_key_id.as_str(), verified.service.as_str()), ("AKIDEXAMPLE", "cloudtrail"));
//! # Ok::<(), sigv4::SigV4Error>(())
//! ```
//!
//! [`verify_expecting`] runs both phases over a body already in memory. [`verify`] does too, without an
//! [`Expectation`]: it accepts any scope and presigned URLs (while still requiring a present `X-Amz-Target` to be
//! signed and a signed payload outside S3), so its caller must check the scope itself.
//!
//! # Canonicalization
//!
//! What is canonicalized how follows botocore's `SigV4Auth` (`botocore/auth.py`), which the vectors under
//! `tests/vectors/` were signed with:
//! * path: as on the wire for S3; for every other service dot segments and empty segments removed, then
//!   percent-encoded once more (`%20` → `%2520`), as all SDKs do;
//! * query: pairs sorted by name then value; both the re-encoded form (SigV4 spec, Java/Go/Rust SDKs) and the form
//!   as sent (botocore) are accepted, which differ only for URLs with unencoded reserved characters;
//! * headers: exactly the `SignedHeaders`, values trimmed with whitespace runs collapsed, repeats joined with `,`;
//!   the `host` header (with its port, as sent) must be signed. Behind HTTP/2 the caller passes `:authority` as `host`;
//! * payload: the `x-amz-content-sha256` header value when present, else the SHA-256 of the body (`UNSIGNED-PAYLOAD`
//!   for S3 presigned URLs). The unsigned literals (`UNSIGNED-PAYLOAD`, `STREAMING-UNSIGNED-PAYLOAD-TRAILER`) are
//!   accepted only in a signature scoped to S3.
//!
//! Not supported: SigV4a (`AWS4-ECDSA-P256-SHA256`), signed aws-chunked payloads
//! (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD*`: the seed signature alone would not cover the chunks), the `Date`
//! header in place of `X-Amz-Date`, SigV2, and S3 POST policies.

mod canonical;
mod error;
mod parse;
mod time;
mod verify;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use canonical::{
    NEVER_SIGNED, canonical_headers, canonical_path, canonical_query, canonical_request, is_s3, sha256_hex,
};
pub use error::SigV4Error;
use parse::ALGORITHM;
pub use parse::{AuthorizationHeader, parse_authorization_header};
use time::format_amz_date;
pub use verify::{Expectation, PendingBody, RequestHead, verify, verify_expecting, verify_head};

/// A request as received, before any decoding.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The raw path as on the wire, still percent-encoded.
    pub path: &'a str,
    /// The raw query string without `?`, still percent-encoded.
    pub query: &'a str,
    /// As received: names in any case, repeated names possible, order kept. Must include `host`.
    pub headers: &'a [(String, String)],
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// An access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Who signed a request that verified, and for what scope. Through [`verify_head`] region and service were checked
/// against the [`Expectation`]; through [`verify`] the caller must check them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    /// Epoch seconds of `X-Amz-Date`.
    pub signed_at: i64,
}

/// Signs a request as botocore does, adding `X-Amz-Date`, (for S3 only, unless already there)
/// `X-Amz-Content-SHA256`, and `Authorization` to `headers`; stale `Authorization`/`X-Amz-Date` are replaced.
///
/// Every header in `headers` is signed except hop-by-hop ones and `User-Agent` (botocore's list), so `headers` must
/// already hold `host` (with the port if it is not the scheme's default, exactly as it will be sent) and, for
/// temporary credentials, `X-Amz-Security-Token`. `url_path` and `query` are as they will go on the wire
/// (percent-encoded). A caller-set `X-Amz-Content-SHA256` (e.g. `UNSIGNED-PAYLOAD`) is signed as given.
#[allow(clippy::too_many_arguments)] // the shape of the public API is fixed by the callers
pub fn sign(
    method: &str,
    url_path: &str,
    query: &str,
    headers: &mut Vec<(String, String)>,
    body: &[u8],
    cred: &Credential,
    region: &str,
    service: &str,
    now_epoch_secs: i64,
) {
    headers.retain(|(n, _)| {
        let n = n.trim();
        !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case("x-amz-date")
    });
    let amz_date = format_amz_date(now_epoch_secs);
    headers.push(("X-Amz-Date".to_owned(), amz_date.clone()));
    let existing = headers.iter().find(|(n, _)| n.trim().eq_ignore_ascii_case("x-amz-content-sha256"));
    let payload_hash = match existing {
        Some((_, v)) => v.trim().to_owned(),
        None => {
            let hash = sha256_hex(body);
            if is_s3(service) {
                headers.push(("X-Amz-Content-SHA256".to_owned(), hash.clone()));
            }
            hash
        }
    };

    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.trim().to_ascii_lowercase())
        .filter(|n| !NEVER_SIGNED.contains(&n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // Every name was taken from `headers`, so none can be absent.
    let headers_block = canonical_headers(&names, headers).unwrap_or_default();
    let signed_headers = names.join(";");

    let scope_date = &amz_date[..8];
    let scope = scope(scope_date, region, service);
    let cr = canonical_request(
        method,
        &canonical_path(url_path, service),
        &canonical_query(query, false).normalized,
        &headers_block,
        &signed_headers,
        &payload_hash,
    );
    let key = signing_key(&cred.secret_access_key, scope_date, region, service);
    let signature = hex::encode(hmac(&key, string_to_sign(&amz_date, &scope, &cr).as_bytes()));
    headers.push((
        "Authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            cred.access_key_id
        ),
    ));
}

pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (long ones are hashed), so this constructor cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { unreachable!("HMAC accepts any key length") };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Compares without an early exit, so the time taken does not tell how many leading bytes were right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_fully() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn signing_key_matches_aws_documentation() {
        // "Examples of how to derive a signing key for Signature Version 4" (AWS General Reference).
        let key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
        assert_eq!(hex::encode(key), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    }

    #[test]
    fn credential_debug_hides_the_secret() {
        let cred = Credential { access_key_id: "AKID".into(), secret_access_key: "s3cr3t".into() };
        let shown = format!("{cred:?}");
        assert!(shown.contains("AKID") && !shown.contains("s3cr3t"), "{shown}");
    }
}
