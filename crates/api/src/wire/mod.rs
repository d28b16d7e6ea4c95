//! Request shapes of the CloudTrail and cloudtrail-data APIs as AWS names their members, and the one step
//! per operation that turns each into the service's validated input.
//!
//! Two steps, as ripgrep goes from low-level to high-level arguments: [`parse`] deserializes the raw
//! shape (every member optional, unknown members ignored as AWS ignores them), so a member of the wrong
//! type is a `SerializationException` naming its path (`EventSelectors[0].ReadWriteType: invalid type:
//! integer `7`, expected a string`); then the shape converts into the domain input — `TryFrom` where
//! nothing else is needed, a method given what else it needs where it does (`resolve(&Home)` to read trail
//! names against this server's account and Region, `range(now)`, `into_lookup(window_start, max_results)`) — and a value
//! of the right type that breaks a rule is a [`WireError`] or the service's own error. The AWS names of
//! those errors are in `error.rs`, nowhere else.

pub(crate) mod channels;
pub(crate) mod data;
pub(crate) mod keys;
pub(crate) mod lake;
pub(crate) mod lookup;
pub(crate) mod trails;

use std::fmt;

use model::{AttributeKey, EventTime};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde_json::Value;

/// Deserializes a request shape from the parsed body, naming the member at fault.
pub(crate) fn parse<T: DeserializeOwned>(params: &Value) -> Result<T, WireError> {
    // serde would read a structure from an array, member by member in order: no AWS client sends that.
    if !params.is_object() {
        return Err(WireError::Shape { path: None, reason: "request body must be a JSON object".into() });
    }
    serde_path_to_error::deserialize(params).map_err(WireError::shape)
}

/// A member the operation cannot do without.
pub(crate) fn required<T>(value: Option<T>, member: impl Into<String>) -> Result<T, WireError> {
    value.ok_or_else(|| WireError::Missing { member: member.into() })
}

/// Why a request was refused before it reached the service: its shape, or a rule of the API itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("request body is not valid JSON: {reason}")]
    NotJson { reason: String },
    /// A member of the wrong type; `path` is `None` when the body as a whole is.
    #[error("{}{reason}", .path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Shape { path: Option<String>, reason: String },
    #[error(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    )]
    Missing { member: String },
    #[error("{members}: {reason}")]
    Unsupported { members: &'static str, reason: &'static str },
    #[error("Start time must be earlier than or equal to end time (StartTime {start}, EndTime {end}).")]
    TimeRange { start: EventTime, end: EventTime },

    // LookupEvents
    #[error("EventCategory '{given}' is not valid. Valid values: insight")]
    EventCategory { given: String },
    #[error("MaxResults {given} is not valid: it must be between 1 and {max}")]
    MaxResults { given: serde_json::Number, max: usize },
    #[error("Invalid NextToken: it is malformed or was issued for different request parameters.")]
    NextToken,
    #[error("LookupAttributes[{index}].{problem}")]
    LookupAttribute { index: usize, problem: AttributeProblem },

    // PutAuditEvents
    #[error("the channelArn query parameter is required")]
    ChannelArnMissing,
    #[error("query string is malformed: {reason}")]
    Query { reason: String },
    #[error("externalId must be 2 to 1224 characters of [\\w+=,.@:/-]")]
    ExternalId,
    #[error("auditEvents must hold 1 to {max} events, got {count}")]
    AuditEventCount { count: usize, max: usize },
    #[error("auditEvents[{index}].id '{id}' must be 1 to 128 characters of [-_A-Za-z0-9]")]
    AuditEventId { index: usize, id: String },
    #[error("two or more entries in the request have the id '{id}'")]
    DuplicatedAuditEventId { id: String },

    // The native API
    #[error("no event with eventID '{event_id}'")]
    EventNotFound { event_id: String },
    /// An `attr=` of a native lookup or count that breaks the lookup grammar, naming the token.
    #[error("attr {0}")]
    Condition(model::QueryError),
    /// A query parameter of a native lookup or count with a bad value.
    #[error("{name}: {reason}")]
    Parameter { name: &'static str, reason: String },
}

impl WireError {
    fn shape(e: serde_path_to_error::Error<serde_json::Error>) -> WireError {
        let path = e.path().to_string();
        let path = (path != ".").then_some(path);
        WireError::Shape { path, reason: e.into_inner().to_string() }
    }
}

/// What is wrong with one `LookupAttributes[]` element.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttributeProblem {
    #[error("AttributeKey is required")]
    KeyMissing,
    #[error("AttributeKey '{key}' is not valid. Valid keys: {}", valid_keys())]
    UnknownKey { key: String },
    #[error("AttributeValue is required")]
    ValueMissing,
    #[error("AttributeValue must be 1 to {max} characters")]
    ValueLength { max: usize },
    #[error("AttributeKey {key} cannot be used with EventCategory insight; use EventId, EventName or EventSource")]
    NotForInsights { key: AttributeKey },
    /// The value breaks the lookup grammar (README, "Query grammar"): names the token.
    #[error("AttributeValue {0}")]
    Grammar(model::QueryError),
}

fn valid_keys() -> String {
    AttributeKey::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

/// A timestamp as botocore (integer epoch seconds), other SDKs (fractional) or people (ISO-8601) send it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timestamp(pub EventTime);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        struct Expect;
        impl Visitor<'_> for Expect {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp: epoch seconds or ISO-8601")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                EventTime::from_epoch_seconds_f64(v as f64)
                    .map(Timestamp)
                    .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                EventTime::from_epoch_seconds_f64(v as f64)
                    .map(Timestamp)
                    .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                EventTime::from_epoch_seconds_f64(v)
                    .map(Timestamp)
                    .ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                EventTime::parse_flexible(v).map(Timestamp).map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(Expect)
    }
}

/// The `Tag` structure (CreateTrail and AddTags/RemoveTags `TagsList`, CreateChannel `Tags`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Tag {
    pub key: Option<String>,
    pub value: Option<String>,
}

#[cfg(test)]
mod tests;
