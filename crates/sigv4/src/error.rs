//! `SigV4Error`: every way a request can fail SigV4, and its AWS exception code and message.

use crate::time::{format_amz_date, parse_amz_date};

/// Why a request did not pass SigV4 verification.
///
/// [`SigV4Error::aws_code`] and [`SigV4Error::aws_message`] give the `__type` and `message` that AWS itself answers
/// with, so SDK retry logic (e.g. botocore's clock-skew correction on "Signature expired") behaves as against AWS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor an `X-Amz-Algorithm` query parameter.
    #[error("missing authentication token")]
    Missing,
    /// A malformed or partial `Authorization` header / presigned query; `reason` is phrased as AWS phrases it.
    #[error("incomplete signature: {reason}")]
    Incomplete { reason: String },
    /// The access key id is not known to the credential lookup.
    #[error("unknown access key id {access_key_id}")]
    UnknownKey { access_key_id: String },
    /// The signature does not match the one computed with the secret key.
    #[error("signature mismatch")]
    Mismatch,
    /// `X-Amz-Date` is more than 15 minutes away from `now`, in either direction.
    /// Both fields are SigV4 timestamps (`20200101T000000Z`).
    #[error("signature expired: request time {request_time}, now {now}")]
    Expired { request_time: String, now: String },
    /// A presigned URL used after `X-Amz-Date + X-Amz-Expires`; both fields are SigV4 timestamps.
    #[error("presigned request expired at {expired_at}, now {now}")]
    PresignedExpired { expired_at: String, now: String },
    /// `x-amz-content-sha256` was sent and is neither the SHA-256 of the body nor a recognised literal
    /// (`UNSIGNED-PAYLOAD`, `STREAMING-UNSIGNED-PAYLOAD-TRAILER`). Checked only once the signature matched.
    #[error("x-amz-content-sha256 does not match the body")]
    BodyHashMismatch,
    /// The credential scope names a service (signing name) that is not among the operation's
    /// [`Expectation::services`](crate::Expectation::services).
    #[error("credential scoped to service {service}, expected {}", expected.join(" or "))]
    WrongService { service: String, expected: Vec<String> },
    /// The credential scope names a region other than the server's [`Expectation::region`](crate::Expectation::region).
    #[error("credential scoped to region {region}, expected {expected}")]
    WrongRegion { region: String, expected: String },
    /// Query-string authentication (a presigned URL) where the operation accepts only an `Authorization` header.
    #[error("presigned request where only header authentication is accepted")]
    PresignedNotAllowed,
    /// Headers that must be signed when present ([`Expectation::must_sign`](crate::Expectation::must_sign), e.g.
    /// `x-amz-target`) are in the request but not in `SignedHeaders`; `names` are lower-case.
    #[error("headers present but not signed: {}", names.join(", "))]
    HeaderNotSigned { names: Vec<String> },
    /// The payload hash is an unsigned literal (`UNSIGNED-PAYLOAD`, `STREAMING-UNSIGNED-PAYLOAD-TRAILER`) but the
    /// credential is scoped to a service other than S3, whose bodies must be signed.
    #[error("unsigned payload ({value}) for service {service}")]
    UnsignedPayload { value: String, service: String },
}

/// Hard-coded, as AWS does: the tolerated distance between `X-Amz-Date` and the server clock.
pub(crate) const MAX_SKEW_SECS: i64 = 15 * 60;

impl SigV4Error {
    /// The AWS exception code (`__type` in the JSON protocols, `Code` in XML ones).
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete { .. } => "IncompleteSignatureException",
            SigV4Error::UnknownKey { .. } => "UnrecognizedClientException",
            SigV4Error::Mismatch
            | SigV4Error::Expired { .. }
            | SigV4Error::PresignedExpired { .. }
            | SigV4Error::BodyHashMismatch
            | SigV4Error::WrongService { .. }
            | SigV4Error::WrongRegion { .. }
            | SigV4Error::UnsignedPayload { .. } => "InvalidSignatureException",
            // A guess: AWS's JSON services take presigned requests, so there is no AWS answer to copy. Like the
            // other unsupported ways of signing (SigV4a, signed aws-chunked bodies) it is an incomplete signature.
            SigV4Error::PresignedNotAllowed => "IncompleteSignatureException",
            // S3 answers `AccessDenied` (XML); this is the JSON protocols' name for the same refusal.
            SigV4Error::HeaderNotSigned { .. } => "AccessDeniedException",
        }
    }

    /// The message AWS sends with [`SigV4Error::aws_code`].
    pub fn aws_message(&self) -> String {
        match self {
            SigV4Error::Missing => "Missing Authentication Token".to_owned(),
            SigV4Error::Incomplete { reason } => reason.clone(),
            SigV4Error::UnknownKey { .. } => "The security token included in the request is invalid.".to_owned(),
            SigV4Error::Mismatch => "The request signature we calculated does not match the signature you provided. \
                Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                .to_owned(),
            SigV4Error::Expired { request_time, now } => expired_message(request_time, now),
            SigV4Error::PresignedExpired { expired_at, now } => {
                format!("Request has expired: the presigned request expired at {expired_at}, now is {now}.")
            }
            SigV4Error::BodyHashMismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed.".to_owned()
            }
            // AWS's words, trailing space included (e.g. `Credential should be scoped to correct service:
            // 'sagemaker'. `). AWS names one service; when an operation accepts several they are joined with "or".
            SigV4Error::WrongService { expected, .. } => {
                let quoted: Vec<String> = expected.iter().map(|s| format!("'{s}'")).collect();
                let quoted = if quoted.is_empty() { "''".to_owned() } else { quoted.join(" or ") };
                format!("Credential should be scoped to correct service: {quoted}. ")
            }
            // AWS's words, trailing space included. It names the region signed for, never the server's.
            SigV4Error::WrongRegion { region, .. } => {
                format!("Credential should be scoped to a valid region, not '{region}'. ")
            }
            SigV4Error::PresignedNotAllowed => "Query-string authentication (a presigned URL) is not accepted for \
                this operation; sign the request with an Authorization header."
                .to_owned(),
            // S3's sentence; S3 lists the names in a separate `HeadersNotSigned` element, JSON has only the message.
            SigV4Error::HeaderNotSigned { names } => {
                format!("There were headers present in the request which were not signed: {}", names.join(", "))
            }
            // AWS's non-S3 services do not name this case: they hash the body whatever the header says, and answer
            // with the signature mismatch. Naming the cause is kinder; the code is the same.
            SigV4Error::UnsignedPayload { value, service } => format!(
                "x-amz-content-sha256 '{value}' is accepted only by S3; requests to '{service}' must sign the payload."
            ),
        }
    }
}

/// "Signature expired: 20200101T000000Z is now earlier than 20200101T001500Z (20200101T003000Z - 15 min.)" or, for a
/// request from the future, "Signature not yet current: … is still later than … (… + 15 min.)", as AWS words them.
fn expired_message(request_time: &str, now: &str) -> String {
    let (Some(req), Some(now_secs)) = (parse_amz_date(request_time), parse_amz_date(now)) else {
        return format!("Signature expired: {request_time} is outside 15 min. of {now}.");
    };
    if req < now_secs {
        let bound = format_amz_date(now_secs.saturating_sub(MAX_SKEW_SECS));
        format!("Signature expired: {request_time} is now earlier than {bound} ({now} - 15 min.)")
    } else {
        let bound = format_amz_date(now_secs.saturating_add(MAX_SKEW_SECS));
        format!("Signature not yet current: {request_time} is still later than {bound} ({now} + 15 min.)")
    }
}
