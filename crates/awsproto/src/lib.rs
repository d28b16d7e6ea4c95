//! AWS protocol awareness for the audit gateway (issue 9): from one HTTP exchange with an AWS-compatible
//! service — the request and the response as they crossed the gateway — the fields of the CloudTrail record
//! AWS itself would write for that call. Pure: no I/O, no clock; the gateway adds identity, time, source IP,
//! user agent, TLS details and redaction.
//!
//! The four AWS protocols are recognised from the request alone: query (`Action=` in the form body or the
//! query string), JSON 1.0/1.1 (`X-Amz-Target`), REST-JSON and REST-XML (method + path, per service).

use serde_json::Value;

/// One exchange as the gateway saw it. Bodies are the captured prefixes (the gateway caps them);
/// `*_complete` says whether the whole body was captured.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub method: &'a http::Method,
    /// The request target's path, as sent (percent-encoded).
    pub path: &'a str,
    /// The query string without `?`, as sent.
    pub query: Option<&'a str>,
    pub request_headers: &'a http::HeaderMap,
    pub request_body: &'a [u8],
    pub request_body_complete: bool,
    /// The upstream's status; `None` when no response came (unreachable, timeout).
    pub status: Option<http::StatusCode>,
    pub response_headers: Option<&'a http::HeaderMap>,
    pub response_body: &'a [u8],
    pub response_body_complete: bool,
    /// The caller's account when the gateway knows it (from the identity), for resource ARNs.
    pub account_id: Option<&'a str>,
}

/// Management or data event, as CloudTrail classifies the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Management,
    Data,
}

/// Which AWS protocol the request spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Query,
    Json,
    RestJson,
    RestXml,
    /// Not recognisable as an AWS call (no SigV4, unknown service…): the gateway records it generically.
    Unknown,
}

/// A `resources` entry of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub arn: String,
    /// e.g. `AWS::S3::Object`, `AWS::IAM::User`.
    pub resource_type: String,
    pub account_id: Option<String>,
}

/// The AWS fields of the CloudTrail record for one exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub protocol: Protocol,
    /// e.g. `iam.amazonaws.com`, from the SigV4 credential scope's service through the mapping table.
    pub event_source: String,
    /// As CloudTrail names it (e.g. S3 `ListObjectsV2` is `ListObjects`).
    pub event_name: String,
    /// From the SigV4 credential scope.
    pub aws_region: Option<String>,
    /// The access key id of the SigV4 `Authorization` header or `X-Amz-Credential` query parameter.
    pub access_key_id: Option<String>,
    pub read_only: bool,
    pub category: Category,
    /// `requestParameters`, shaped as CloudTrail shapes them for this protocol; `None` = JSON null.
    pub request_parameters: Option<Value>,
    /// `responseElements`; `None` for reads, as AWS writes them, and for failed calls.
    pub response_elements: Option<Value>,
    pub resources: Vec<Resource>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// From the upstream's response headers (`x-amzn-RequestId`, `x-amz-request-id`, …).
    pub request_id: Option<String>,
    /// `apiVersion` where CloudTrail writes one.
    pub api_version: Option<String>,
    /// `additionalEventData` where CloudTrail writes one (e.g. S3's bytesTransferredIn/Out).
    pub additional_event_data: Option<Value>,
}

/// Describe one exchange. Never fails: what cannot be recognised is described as `Protocol::Unknown`
/// with the method and path as the event name.
pub fn describe(exchange: &Exchange<'_>) -> Described {
    let _ = exchange;
    todo!("issue 9: AWS protocol awareness")
}
