//! The one table from domain errors to HTTP status and AWS `__type`, and the error body shape
//! botocore parses (`{"__type": "...", "message": "..."}`, code also in `x-amzn-ErrorType`). Handlers
//! return domain errors (`TrailError`, `ChannelError`, the API's own [`WireError`], …); their AWS names
//! are here and nowhere else.

use axum::http::StatusCode;
use serde_json::json;

use service::audit_events::AuditEventError;
use service::channels::ChannelError;
use service::event_data_stores::EventDataStoreError;
use service::trails::TrailError;
use service::{BatchError, StoreError, Throttled};

use crate::body::BodyError;
use crate::operation::{Surface, UnknownReason};
use crate::wire::WireError;

/// An error as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// AWS error code (`__type`), e.g. `TrailNotFoundException`.
    pub code: &'static str,
    pub message: String,
    /// Seconds to put in `Retry-After` (503s).
    pub retry_after: Option<u32>,
    /// The name S3 gives this error when it is not [`ApiError::code`]'s S3 counterpart by code alone (the
    /// SigV4 refusals, which the JSON protocols lump together).
    pub s3_code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None, s3_code: None }
    }

    /// A client fault: HTTP 400, as every CloudTrail error shape is.
    pub fn client(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::client("AccessDeniedException", message)
    }

    /// A server fault: the cause goes to the log, the client gets a generic message.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The request processing has failed because of an unknown error.",
        )
    }

    pub fn unavailable(message: impl Into<String>, retry_after: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableException", message)
        }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({"__type": self.code, "message": self.message})
    }

    /// The error as `surface` names it. cloudtrail-data names channel errors differently from the control
    /// plane (`ChannelNotFound` with HTTP 404, `InvalidChannelARN`): the one place that knows it.
    pub fn for_surface(self, surface: Surface) -> ApiError {
        match (surface, self.code) {
            (Surface::CloudTrailData, "ChannelNotFoundException") => {
                ApiError { code: "ChannelNotFound", status: StatusCode::NOT_FOUND, ..self }
            }
            (Surface::CloudTrailData, "ChannelARNInvalidException") => ApiError { code: "InvalidChannelARN", ..self },
            (Surface::S3, code) => {
                use StatusCode as S;
                let (status, code) = match (self.s3_code, code) {
                    (Some(c), _) => (S::FORBIDDEN, c),
                    (None, "AccessDeniedException" | "UnrecognizedClientException") => (S::FORBIDDEN, "AccessDenied"),
                    (None, "ThrottlingException") => (S::SERVICE_UNAVAILABLE, "SlowDown"),
                    (None, "ServiceUnavailableException") => (S::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
                    (None, "InternalFailure") => (S::INTERNAL_SERVER_ERROR, "InternalError"),
                    (None, "RequestEntityTooLargeException") => (S::BAD_REQUEST, "EntityTooLarge"),
                    (None, "RequestTimeoutException") => (S::BAD_REQUEST, "RequestTimeout"),
                    (None, "IncompleteBodyException") => (S::BAD_REQUEST, "IncompleteBody"),
                    (None, "UnknownOperationException") => (S::NOT_IMPLEMENTED, "NotImplemented"),
                    // Already S3's own (NoSuchKey, NoSuchBucket, InvalidRange, InvalidArgument, …).
                    (None, c) => (self.status, c),
                };
                ApiError { status, code, ..self }
            }
            _ => self,
        }
    }

    /// The S3 error body: `<Error><Code/><Message/><Resource/><RequestId/></Error>`.
    pub fn s3_body(&self, resource: &str, request_id: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
            xml_escape(self.code),
            xml_escape(&self.message),
            xml_escape(resource),
            xml_escape(request_id)
        )
    }

    /// A write to the S3 read API: refused, whoever asks.
    pub fn s3_write_once(op: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!(
                "{op} is refused: objects in opentrail's buckets are written once by delivery and never changed or deleted"
            ),
        )
    }

    /// A failed write of a state file: a full disk is transient (503), anything else a server fault.
    pub fn state_write(cause: &dyn std::fmt::Display, io: &std::io::Error) -> ApiError {
        if io.raw_os_error() == Some(libc_enospc()) {
            tracing::error!(error = %cause, "refusing work: disk full");
            return ApiError::unavailable("the disk holding the server's state is full; retry once space is freed", 5);
        }
        ApiError::internal(cause)
    }
}

/// ENOSPC on Linux (hard-coded: the api crate does not link libc for one constant).
const fn libc_enospc() -> i32 {
    28
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Busy { .. } => {
                tracing::warn!(error = %e, "refusing work: journal saturated");
                ApiError::unavailable(e.to_string(), 1)
            }
            StoreError::IndexBehind { .. } => {
                tracing::warn!(error = %e, "refusing work: index behind the journal");
                ApiError::unavailable(e.to_string(), 1)
            }
            StoreError::DiskFull => {
                tracing::error!(error = %e, "refusing work: disk full");
                ApiError::unavailable(e.to_string(), 5)
            }
            StoreError::Poisoned | StoreError::Closed => {
                tracing::error!(error = %e, "refusing work: journal unavailable");
                ApiError::unavailable(e.to_string(), 5)
            }
            _ => ApiError::internal(&e),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match &e {
            BodyError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLargeException", e.to_string())
            }
            BodyError::TimedOut { .. } => {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "RequestTimeoutException", e.to_string())
            }
            BodyError::Busy => {
                tracing::warn!(error = %e, "refusing work: body memory budget exhausted");
                ApiError::unavailable(e.to_string(), 1)
            }
            BodyError::Aborted(_) => ApiError::client("IncompleteBodyException", e.to_string()),
        }
    }
}

impl From<BatchError> for ApiError {
    /// A body that cannot be split into records; one past a size or count limit is too large.
    fn from(e: BatchError) -> Self {
        match &e {
            BatchError::TooLarge { .. } | BatchError::TooManyRecords { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLargeException", e.to_string())
            }
            BatchError::BadGzip { .. } | BatchError::BadArray { .. } | BatchError::BadEnvelope { .. } => {
                ApiError::serialization(e.to_string())
            }
        }
    }
}

impl From<UnknownReason> for ApiError {
    /// A request that names no operation this server answers.
    fn from(reason: UnknownReason) -> Self {
        match reason {
            UnknownReason::MissingTarget => ApiError::client(
                "UnknownOperationException",
                "missing X-Amz-Target header: expected CloudTrail_20131101.<Operation> or com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Operation>",
            ),
            UnknownReason::UnknownTarget { target } => ApiError::client(
                "UnknownOperationException",
                format!("operation '{target}' is not supported by this endpoint"),
            ),
            UnknownReason::NoRoute { method, path } => ApiError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!("no operation at {method} {path}"),
            ),
        }
    }
}

impl ApiError {
    /// A signature that verified for a key no principal holds any more (the table changed in between).
    pub fn unrecognized_client() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }
}

impl From<Throttled> for ApiError {
    /// botocore retries `ThrottlingException` with backoff; the message is AWS's own.
    fn from(e: Throttled) -> Self {
        tracing::debug!(error = %e, "throttled");
        ApiError::client("ThrottlingException", "Rate exceeded")
    }
}

impl From<sigv4::SigV4Error> for ApiError {
    fn from(e: sigv4::SigV4Error) -> Self {
        use sigv4::SigV4Error as E;
        let s3_code = match &e {
            E::Missing | E::PresignedNotAllowed | E::HeaderNotSigned { .. } => "AccessDenied",
            E::Incomplete { .. } => "AuthorizationHeaderMalformed",
            E::UnknownKey { .. } => "InvalidAccessKeyId",
            E::Expired { .. } | E::PresignedExpired { .. } => "RequestTimeTooSkewed",
            E::BodyHashMismatch => "XAmzContentSHA256Mismatch",
            E::WrongRegion { .. } | E::WrongService { .. } => "AuthorizationHeaderMalformed",
            _ => "SignatureDoesNotMatch",
        };
        ApiError { s3_code: Some(s3_code), ..ApiError::new(StatusCode::FORBIDDEN, e.aws_code(), e.aws_message()) }
    }
}

impl From<buckets::BucketError> for ApiError {
    /// The S3 read API's errors: S3's names for a missing object, a bad key, a bucket it cannot read.
    fn from(e: buckets::BucketError) -> Self {
        use buckets::BucketError as B;
        match &e {
            B::NotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.")
            }
            B::InvalidKey { .. } => ApiError::new(StatusCode::BAD_REQUEST, "InvalidArgument", e.to_string()),
            B::Denied { .. } => ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"),
            B::Exists { .. } | B::Unreachable { .. } | B::Other { .. } => ApiError::internal(&e),
        }
    }
}

/// `text` with the five XML specials escaped.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl From<TrailError> for ApiError {
    fn from(e: TrailError) -> Self {
        let code = match &e {
            TrailError::InvalidName { .. } => "InvalidTrailNameException",
            TrailError::InvalidArn { .. } | TrailError::InvalidResourceArn { .. } => "CloudTrailARNInvalidException",
            TrailError::NotFound { .. } => "TrailNotFoundException",
            TrailError::AlreadyExists { .. } => "TrailAlreadyExistsException",
            TrailError::TooManyTrails { .. } => "MaximumNumberOfTrailsExceededException",
            TrailError::InvalidBucketName { .. } => "InvalidS3BucketNameException",
            TrailError::InvalidS3Prefix { .. } => "InvalidS3PrefixException",
            TrailError::InvalidSnsTopicName { .. } => "InvalidSnsTopicNameException",
            TrailError::InvalidKmsKeyId { .. } => "InvalidKmsKeyIdException",
            TrailError::InvalidLogGroupArn { .. } => "InvalidCloudWatchLogsLogGroupArnException",
            TrailError::InvalidLogRoleArn { .. } => "InvalidCloudWatchLogsRoleArnException",
            TrailError::InvalidParameterCombination { .. } => "InvalidParameterCombinationException",
            TrailError::InvalidParameter { .. } => "InvalidParameterException",
            TrailError::OrganizationsNotInUse => "OrganizationsNotInUseException",
            TrailError::InvalidEventSelectors { .. } => "InvalidEventSelectorsException",
            TrailError::InvalidInsightSelectors { .. } => "InvalidInsightSelectorsException",
            TrailError::InsightNotEnabled { .. } => "InsightNotEnabledException",
            TrailError::InvalidTag { .. } => "InvalidTagParameterException",
            TrailError::TagsLimitExceeded { .. } => "TagsLimitExceededException",
            TrailError::ResourceNotFound { .. } => "ResourceNotFoundException",
            TrailError::InvalidNextToken => "InvalidNextTokenException",
            TrailError::Persist { source, .. } => return ApiError::state_write(&e, source),
        };
        ApiError::client(code, e.to_string())
    }
}

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        let code = match &e {
            ChannelError::NotFound { .. } => "ChannelNotFoundException",
            ChannelError::InvalidArn { .. } => "ChannelARNInvalidException",
            ChannelError::AlreadyExists { .. } => "ChannelAlreadyExistsException",
            ChannelError::InvalidField { .. } => "InvalidParameterException",
            ChannelError::InvalidSource { .. } => "InvalidSourceException",
            ChannelError::InvalidTags { .. } => "InvalidTagParameterException",
            ChannelError::InvalidToken { .. } => "InvalidNextTokenException",
            ChannelError::Io { source, .. } => return ApiError::state_write(&e, source),
            ChannelError::Corrupt { .. } => return ApiError::internal(&e),
        };
        ApiError::client(code, e.to_string())
    }
}

impl From<EventDataStoreError> for ApiError {
    fn from(e: EventDataStoreError) -> Self {
        let code = match &e {
            EventDataStoreError::NotFound { .. } => "EventDataStoreNotFoundException",
            EventDataStoreError::InvalidArn { .. } => "EventDataStoreARNInvalidException",
            EventDataStoreError::AlreadyExists { .. } => "EventDataStoreAlreadyExistsException",
            EventDataStoreError::InvalidField { .. } => "InvalidParameterException",
            EventDataStoreError::TerminationProtected { .. } => "EventDataStoreTerminationProtectedException",
            EventDataStoreError::Inactive { .. } => "InactiveEventDataStoreException",
            EventDataStoreError::InvalidToken { .. } => "InvalidNextTokenException",
            EventDataStoreError::Io { source, .. } => return ApiError::state_write(&e, source),
            EventDataStoreError::Corrupt { .. } => return ApiError::internal(&e),
        };
        ApiError::client(code, e.to_string())
    }
}

impl From<lake::QueryError> for ApiError {
    fn from(e: lake::QueryError) -> Self {
        use lake::QueryError as Q;
        let code = match &e {
            Q::InvalidStatement(_) => "InvalidQueryStatementException",
            Q::StoreNotFound(_) => "EventDataStoreNotFoundException",
            Q::NotFound(_) => "QueryIdNotFoundException",
            Q::Inactive { .. } => "InactiveQueryException",
            Q::InvalidToken(_) => "InvalidNextTokenException",
        };
        ApiError::client(code, e.to_string())
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        let code = match &e {
            WireError::NotJson { .. } | WireError::Shape { .. } => "SerializationException",
            WireError::Missing { .. }
            | WireError::Query { .. }
            | WireError::ExternalId
            | WireError::AuditEventCount { .. }
            | WireError::AuditEventId { .. }
            | WireError::Condition(_)
            | WireError::Parameter { .. } => "ValidationException",
            WireError::Unsupported { .. } => "UnsupportedOperationException",
            WireError::TimeRange { .. } => "InvalidTimeRangeException",
            WireError::EventCategory { .. } => "InvalidEventCategoryException",
            WireError::MaxResults { .. } => "InvalidMaxResultsException",
            WireError::NextToken => "InvalidNextTokenException",
            WireError::LookupAttribute { .. } => "InvalidLookupAttributesException",
            // cloudtrail-data's names (see `for_surface`).
            WireError::ChannelArnMissing => "InvalidChannelARN",
            WireError::DuplicatedAuditEventId { .. } => "DuplicatedAuditEventId",
            WireError::EventNotFound { .. } => {
                return ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", e.to_string());
            }
        };
        ApiError::client(code, e.to_string())
    }
}

/// The per-event codes of PutAuditEvents' `failed[].errorCode`: one event's fault, the call goes on.
pub(crate) fn audit_event_error_code(e: &AuditEventError) -> &'static str {
    match e {
        AuditEventError::ChecksumMismatch => "InvalidChecksum",
        AuditEventError::MissingField { .. } => "FieldNotFound",
        AuditEventError::TooLong { .. } => "FieldTooLong",
        AuditEventError::Invalid { .. } => "InvalidData",
        AuditEventError::WrongRecipient { .. } => "InvalidRecipient",
    }
}
