//! Verifying a request in two phases: [`verify_head`] before any body byte is read, [`PendingBody::finish`] after
//! the body has been streamed through the payload hash; [`verify`] and [`verify_expecting`] run both on a whole body.

use sha2::{Digest, Sha256};

use crate::canonical::{
    STREAMING_UNSIGNED_PAYLOAD_TRAILER, UNSIGNED_PAYLOAD, canonical_headers, canonical_path, canonical_query,
    canonical_request_before_payload, is_s3,
};
use crate::error::MAX_SKEW_SECS;
use crate::parse::{AuthInput, auth_input};
use crate::time::format_amz_date;
use crate::{
    Credential, SigV4Error, SignedRequest, Verified, constant_time_eq, hmac, scope, signing_key, string_to_sign,
};

/// What the server accepts for one operation, checked against what the signature was scoped to.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// Signing names accepted in the credential scope, e.g. `&["cloudtrail"]` or `&["cloudtrail-data"]`.
    pub services: &'a [&'a str],
    /// The server's region; the scope's region must equal it.
    pub region: &'a str,
    /// Whether query-string (presigned URL) authentication is accepted. A presigned URL is a bearer token until
    /// `X-Amz-Expires` (up to seven days), and for S3 it does not sign the body.
    pub allow_presigned: bool,
    /// Header names (lower-case) that, when present in the request, must be listed in `SignedHeaders`, e.g.
    /// `x-amz-target`, which picks the operation of a JSON 1.1 request.
    pub must_sign: &'a [&'a str],
}

/// A request without its body, as received, before any decoding.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The raw path as on the wire, still percent-encoded.
    pub path: &'a str,
    /// The raw query string without `?`, still percent-encoded.
    pub query: &'a str,
    /// As received: names in any case, repeated names possible, order kept. Must include `host`.
    pub headers: &'a [(String, String)],
}

impl<'a> SignedRequest<'a> {
    /// The request without its body, for [`verify_head`].
    pub fn head(&self) -> RequestHead<'a> {
        RequestHead { method: self.method, path: self.path, query: self.query, headers: self.headers }
    }
}

/// The rules phase 1 applies: an [`Expectation`], or for [`verify`] only those that need no server configuration.
struct Policy<'a> {
    /// `(services, region)` the scope must name; `None` accepts any scope, leaving it to the caller of [`verify`].
    scope: Option<(&'a [&'a str], &'a str)>,
    allow_presigned: bool,
    must_sign: &'a [&'a str],
}

impl<'a> From<&Expectation<'a>> for Policy<'a> {
    fn from(e: &Expectation<'a>) -> Self {
        Policy { scope: Some((e.services, e.region)), allow_presigned: e.allow_presigned, must_sign: e.must_sign }
    }
}

/// What [`verify`] checks without an [`Expectation`]: any service and region, presigned URLs accepted, but an
/// `X-Amz-Target` present must be signed (every SDK signs it) and an unsigned payload is refused outside S3.
const WITHOUT_EXPECTATION: Policy<'static> =
    Policy { scope: None, allow_presigned: true, must_sign: &["x-amz-target"] };

/// Phase 1 of verification, before any body byte is read.
///
/// Checks, in this order, each failure ending the check:
/// 1. the auth parameters are there and well-formed (`Missing`, `Incomplete`);
/// 2. a presigned request is allowed at all (`PresignedNotAllowed`);
/// 3. `X-Amz-Date` is within 15 minutes of `now_epoch_secs` (`Expired`), or for a presigned request the URL has not
///    passed `X-Amz-Expires` (`PresignedExpired`);
/// 4. the credential scope names one of `expect.services` (`WrongService`) and `expect.region` (`WrongRegion`);
/// 5. `x-amz-content-sha256` is a mode this crate verifies (`Incomplete` for signed aws-chunked bodies), and an
///    unsigned payload (`UNSIGNED-PAYLOAD`, `STREAMING-UNSIGNED-PAYLOAD-TRAILER`) is scoped to S3
///    (`UnsignedPayload`);
/// 6. every header listed in `SignedHeaders` is in the request (`Incomplete`), and every `expect.must_sign` header
///    in the request is listed (`HeaderNotSigned`);
/// 7. the access key is known (`UnknownKey`), and the signature is 64 hex digits (`Mismatch`).
///
/// The scope (4) is checked before the key is looked up: it needs nothing secret, the answer names only what the
/// client itself sent, and a client that signed for the wrong region learns that rather than a vaguer error. All
/// of it comes before the signature comparison in [`PendingBody::finish`], so a mis-scoped request is reported as
/// such and not as a mismatch.
///
/// Nothing here bounds the body: the caller caps how many bytes it feeds to [`PendingBody::update`].
pub fn verify_head(
    head: &RequestHead,
    now_epoch_secs: i64,
    lookup: impl Fn(&str) -> Option<Credential>,
    expect: &Expectation,
) -> Result<PendingBody, SigV4Error> {
    head_phase(head, now_epoch_secs, lookup, &Policy::from(expect))
}

/// Both phases over a whole body: [`verify_head`], then `update(body)` and [`PendingBody::finish`].
pub fn verify_expecting(
    req: &SignedRequest,
    now_epoch_secs: i64,
    lookup: impl Fn(&str) -> Option<Credential>,
    expect: &Expectation,
) -> Result<Verified, SigV4Error> {
    let mut pending = verify_head(&req.head(), now_epoch_secs, lookup, expect)?;
    pending.update(req.body);
    pending.finish()
}

/// Verifies a whole request without an [`Expectation`]: the checks of [`verify_head`] and [`PendingBody::finish`]
/// except that any service and region are accepted, and presigned URLs too.
///
/// The caller must then check [`Verified::service`] and [`Verified::region`] itself: a signature scoped to `s3`
/// (whose presigned URLs sign no body) or to another region verifies here. `X-Amz-Target`, when present, must be
/// signed. Kept for callers that hold the whole body; [`verify_head`] is the safer entry point.
pub fn verify(
    req: &SignedRequest,
    now_epoch_secs: i64,
    lookup: impl Fn(&str) -> Option<Credential>,
) -> Result<Verified, SigV4Error> {
    let mut pending = head_phase(&req.head(), now_epoch_secs, lookup, &WITHOUT_EXPECTATION)?;
    pending.update(req.body);
    pending.finish()
}

fn head_phase(
    head: &RequestHead,
    now: i64,
    lookup: impl Fn(&str) -> Option<Credential>,
    policy: &Policy,
) -> Result<PendingBody, SigV4Error> {
    let auth = auth_input(head.query, head.headers)?;
    let presigned = auth.presigned_expires_secs.is_some();
    if presigned && !policy.allow_presigned {
        return Err(SigV4Error::PresignedNotAllowed);
    }
    check_time(&auth, now)?;
    if let Some((services, region)) = policy.scope {
        if !services.contains(&auth.service.as_str()) {
            return Err(SigV4Error::WrongService {
                service: auth.service,
                expected: services.iter().map(|s| (*s).to_owned()).collect(),
            });
        }
        if auth.region != region {
            return Err(SigV4Error::WrongRegion { region: auth.region, expected: region.to_owned() });
        }
    }

    let payload = match single_header(head.headers, "x-amz-content-sha256")? {
        Some(v) if v.starts_with("STREAMING-") && v != STREAMING_UNSIGNED_PAYLOAD_TRAILER => {
            return Err(SigV4Error::Incomplete {
                reason: format!("x-amz-content-sha256 '{v}' is not supported: send the payload unchunked."),
            });
        }
        Some(v) if v == UNSIGNED_PAYLOAD || v == STREAMING_UNSIGNED_PAYLOAD_TRAILER => Payload::Unsigned(v.to_owned()),
        Some(v) => Payload::Claimed(v.to_owned()),
        // S3 presigned URLs sign no body, and say so by sending no header.
        None if presigned && is_s3(&auth.service) => Payload::Unsigned(UNSIGNED_PAYLOAD.to_owned()),
        None => Payload::Streamed,
    };
    if let Payload::Unsigned(value) = &payload
        && !is_s3(&auth.service)
    {
        return Err(SigV4Error::UnsignedPayload { value: value.clone(), service: auth.service });
    }

    let names: Vec<&str> = auth.signed_headers.iter().map(String::as_str).collect();
    let headers_block = canonical_headers(&names, head.headers).map_err(|absent| SigV4Error::Incomplete {
        reason: format!("Header '{absent}' is listed in SignedHeaders but is not in the request."),
    })?;
    let unsigned: Vec<String> = policy
        .must_sign
        .iter()
        .map(|m| m.to_ascii_lowercase())
        .filter(|m| !names.contains(&m.as_str()) && head.headers.iter().any(|(n, _)| n.trim().eq_ignore_ascii_case(m)))
        .collect();
    if !unsigned.is_empty() {
        return Err(SigV4Error::HeaderNotSigned { names: unsigned });
    }

    let Some(cred) = lookup(&auth.access_key_id) else {
        return Err(SigV4Error::UnknownKey { access_key_id: auth.access_key_id });
    };
    // A provided signature that is not 64 hex digits cannot match; its length is not a secret.
    let provided: [u8; 32] =
        hex::decode(&auth.signature).ok().and_then(|b| b.try_into().ok()).ok_or(SigV4Error::Mismatch)?;

    let path = canonical_path(head.path, &auth.service);
    let query = canonical_query(head.query, presigned);
    let signed_headers = names.join(";");
    let before_payload =
        |q: &str| canonical_request_before_payload(head.method, &path, q, &headers_block, &signed_headers);
    let mut canonical_before_payload = vec![before_payload(&query.normalized)];
    if query.raw != query.normalized {
        canonical_before_payload.push(before_payload(&query.raw));
    }

    Ok(PendingBody {
        signing_key: signing_key(&cred.secret_access_key, &auth.scope_date, &auth.region, &auth.service),
        scope: scope(&auth.scope_date, &auth.region, &auth.service),
        amz_date: auth.amz_date,
        provided,
        canonical_before_payload,
        payload,
        body_hash: Sha256::new(),
        verified: Verified {
            access_key_id: auth.access_key_id,
            region: auth.region,
            service: auth.service,
            signed_at: auth.signed_at,
        },
    })
}

/// A request whose head passed [`verify_head`]: the key is known and the scope acceptable, but the signature is not
/// checked yet. Feed it the body with [`PendingBody::update`], then call [`PendingBody::finish`].
///
/// It holds the derived signing key (not the secret), the canonical request minus its payload hash, and the running
/// SHA-256 of the body: a few hundred bytes, whatever the body's size.
pub struct PendingBody {
    verified: Verified,
    amz_date: String,
    scope: String,
    signing_key: [u8; 32],
    provided: [u8; 32],
    /// One canonical request per query form a correct signer may have used (see `canonical_query`), each up to
    /// and including the newline before the payload hash.
    canonical_before_payload: Vec<String>,
    payload: Payload,
    body_hash: Sha256,
}

/// Where the payload hash line of the canonical request comes from.
enum Payload {
    /// No `x-amz-content-sha256`: the SHA-256 of the body as streamed.
    Streamed,
    /// `x-amz-content-sha256` as sent (normally hex): signed as sent, and must be the body's hash.
    Claimed(String),
    /// An unsigned literal, signed as sent; the body is not checked.
    Unsigned(String),
}

impl PendingBody {
    /// The access key that signed the request (known to the lookup, not yet proven to be the signer's).
    pub fn access_key_id(&self) -> &str {
        &self.verified.access_key_id
    }

    /// Feeds body bytes as they arrive, in order; chunk boundaries do not matter.
    pub fn update(&mut self, chunk: &[u8]) {
        // An unsigned payload's hash is never used.
        if !matches!(self.payload, Payload::Unsigned(_)) {
            self.body_hash.update(chunk);
        }
    }

    /// Phase 2, after the last body byte: computes the signature over the canonical request with the payload hash
    /// (the streamed hash, or the `x-amz-content-sha256` value as sent) and compares it in constant time
    /// (`Mismatch`); then a hex `x-amz-content-sha256` must equal the streamed hash (`BodyHashMismatch`).
    pub fn finish(self) -> Result<Verified, SigV4Error> {
        let body_hash = hex::encode(self.body_hash.finalize());
        let payload_hash = match &self.payload {
            Payload::Streamed => body_hash.as_str(),
            Payload::Claimed(v) | Payload::Unsigned(v) => v.as_str(),
        };
        let matches = self.canonical_before_payload.iter().any(|before| {
            let sts = string_to_sign(&self.amz_date, &self.scope, &format!("{before}{payload_hash}"));
            constant_time_eq(&hmac(&self.signing_key, sts.as_bytes()), &self.provided)
        });
        if !matches {
            return Err(SigV4Error::Mismatch);
        }
        if let Payload::Claimed(v) = &self.payload
            && !v.eq_ignore_ascii_case(&body_hash)
        {
            return Err(SigV4Error::BodyHashMismatch);
        }
        Ok(self.verified)
    }
}

impl std::fmt::Debug for PendingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let payload = match &self.payload {
            Payload::Streamed => "streamed",
            Payload::Claimed(_) => "claimed",
            Payload::Unsigned(_) => "unsigned",
        };
        f.debug_struct("PendingBody")
            .field("verified", &self.verified)
            .field("payload", &payload)
            .field("signing_key", &"<redacted>")
            .finish_non_exhaustive()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_body_can_wait_across_an_await() {
        // A server holds it while the body arrives, possibly on another thread: it must own its data and be Send.
        fn send_and_static<T: Send + Sync + 'static>() {}
        send_and_static::<PendingBody>();
    }
}
