//! AWS Signature Version 4: [`verify`] a request as the aws CLI, boto3 and the AWS SDKs sign it, and [`sign`] one.
//!
//! Pure: no I/O, no clock (the caller passes `now` as epoch seconds), no HTTP types (plain strings and bytes).
//!
//! What is canonicalized how follows botocore's `SigV4Auth` (`botocore/auth.py`), which the vectors under
//! `tests/vectors/` were signed with:
//! * path: as on the wire for S3; for every other service dot segments and empty segments removed, then
//!   percent-encoded once more (`%20` → `%2520`), as all SDKs do;
//! * query: pairs sorted by name then value; both the re-encoded form (SigV4 spec, Java/Go/Rust SDKs) and the form
//!   as sent (botocore) are accepted, which differ only for URLs with unencoded reserved characters;
//! * headers: exactly the `SignedHeaders`, values trimmed with whitespace runs collapsed, repeats joined with `,`;
//!   the `host` header (with its port, as sent) must be signed. Behind HTTP/2 the caller passes `:authority` as `host`;
//! * payload: the `x-amz-content-sha256` header value when present (`UNSIGNED-PAYLOAD` included), else the SHA-256
//!   of the body (`UNSIGNED-PAYLOAD` for S3 presigned URLs).
//!
//! Not supported: SigV4a (`AWS4-ECDSA-P256-SHA256`), signed aws-chunked payloads
//! (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD*`: the seed signature alone would not cover the chunks), the `Date`
//! header in place of `X-Amz-Date`, SigV2, and S3 POST policies.

mod canonical;
mod error;
mod parse;
mod time;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use canonical::{
    NEVER_SIGNED, STREAMING_UNSIGNED_PAYLOAD_TRAILER, UNSIGNED_PAYLOAD, canonical_headers, canonical_path,
    canonical_query, canonical_request, is_s3, sha256_hex,
};
use error::MAX_SKEW_SECS;
pub use error::SigV4Error;
use parse::{ALGORITHM, AuthInput, auth_input};
pub use parse::{AuthorizationHeader, parse_authorization_header};
use time::format_amz_date;

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

/// Who signed a request that verified, and for what scope. The caller decides whether region and service are
/// acceptable (AWS answers a wrong one with `InvalidSignatureException` "Credential should be scoped to …").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    /// Epoch seconds of `X-Amz-Date`.
    pub signed_at: i64,
}

/// Verifies a SigV4-signed request, from its `Authorization` header or its presigned query string.
///
/// Checks, in this order: the auth parameters are complete and well-formed (`Missing`, `Incomplete`); `X-Amz-Date`
/// is within 15 minutes of `now_epoch_secs` (`Expired`; presigned: not yet past `X-Amz-Expires`,
/// `PresignedExpired`); the access key is known (`UnknownKey`); the signature matches (`Mismatch`, compared in
/// constant time); a hex `x-amz-content-sha256` is the body's hash (`BodyHashMismatch`).
pub fn verify(
    req: &SignedRequest,
    now_epoch_secs: i64,
    lookup: impl Fn(&str) -> Option<Credential>,
) -> Result<Verified, SigV4Error> {
    let auth = auth_input(req.query, req.headers)?;
    check_time(&auth, now_epoch_secs)?;

    let content_sha256 = single_header(req.headers, "x-amz-content-sha256")?;
    if let Some(v) = content_sha256
        && v.starts_with("STREAMING-")
        && v != STREAMING_UNSIGNED_PAYLOAD_TRAILER
    {
        return Err(SigV4Error::Incomplete {
            reason: format!("x-amz-content-sha256 '{v}' is not supported: send the payload unchunked."),
        });
    }
    let body_hash = sha256_hex(req.body);
    let payload_hash = match content_sha256 {
        Some(v) => v.to_owned(),
        None if auth.presigned_expires_secs.is_some() && is_s3(&auth.service) => UNSIGNED_PAYLOAD.to_owned(),
        None => body_hash.clone(),
    };

    let names: Vec<&str> = auth.signed_headers.iter().map(String::as_str).collect();
    let headers_block = canonical_headers(&names, req.headers).map_err(|absent| SigV4Error::Incomplete {
        reason: format!("Header '{absent}' is listed in SignedHeaders but is not in the request."),
    })?;

    let Some(cred) = lookup(&auth.access_key_id) else {
        return Err(SigV4Error::UnknownKey { access_key_id: auth.access_key_id });
    };
    // A provided signature that is not 64 hex digits cannot match; its length is not a secret.
    let provided = hex::decode(&auth.signature).map_err(|_| SigV4Error::Mismatch)?;

    let key = signing_key(&cred.secret_access_key, &auth.scope_date, &auth.region, &auth.service);
    let path = canonical_path(req.path, &auth.service);
    let query = canonical_query(req.query, auth.presigned_expires_secs.is_some());
    let signed_headers = names.join(";");
    let matches = |canonical_query: &str| {
        let cr = canonical_request(req.method, &path, canonical_query, &headers_block, &signed_headers, &payload_hash);
        let sts = string_to_sign(&auth.amz_date, &scope(&auth.scope_date, &auth.region, &auth.service), &cr);
        constant_time_eq(&hmac(&key, sts.as_bytes()), &provided)
    };
    if !(matches(&query.normalized) || (query.raw != query.normalized && matches(&query.raw))) {
        return Err(SigV4Error::Mismatch);
    }

    if let Some(v) = content_sha256
        && v != UNSIGNED_PAYLOAD
        && v != STREAMING_UNSIGNED_PAYLOAD_TRAILER
        && !v.eq_ignore_ascii_case(&body_hash)
    {
        return Err(SigV4Error::BodyHashMismatch);
    }

    Ok(Verified {
        access_key_id: auth.access_key_id,
        region: auth.region,
        service: auth.service,
        signed_at: auth.signed_at,
    })
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

/// AWS allows 15 minutes of clock skew either way (hard-coded, as in AWS). A presigned request is instead
/// good until `X-Amz-Date + X-Amz-Expires`, but may not be dated more than 15 minutes in the future either.
fn check_time(auth: &AuthInput, now: i64) -> Result<(), SigV4Error> {
    let expired = || SigV4Error::Expired { request_time: auth.amz_date.clone(), now: format_amz_date(now) };
    if auth.signed_at.saturating_sub(now) > MAX_SKEW_SECS {
        return Err(expired());
    }
    match auth.presigned_expires_secs {
        None if now.saturating_sub(auth.signed_at) > MAX_SKEW_SECS => Err(expired()),
        Some(expires) if now > auth.signed_at.saturating_add(expires) => Err(SigV4Error::PresignedExpired {
            expired_at: format_amz_date(auth.signed_at.saturating_add(expires)),
            now: format_amz_date(now),
        }),
        _ => Ok(()),
    }
}

/// The value of a header that may appear at most once, trimmed.
fn single_header<'h>(headers: &'h [(String, String)], name: &str) -> Result<Option<&'h str>, SigV4Error> {
    let mut values = headers.iter().filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    let first = values.next();
    if values.next().is_some() {
        return Err(SigV4Error::Incomplete { reason: format!("Only one '{name}' header may be specified.") });
    }
    Ok(first)
}

fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (long ones are hashed), so this constructor cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { unreachable!("HMAC accepts any key length") };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Compares without an early exit, so the time taken does not tell how many leading bytes were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
