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
            | SigV4Error::BodyHashMismatch => "InvalidSignatureException",
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
