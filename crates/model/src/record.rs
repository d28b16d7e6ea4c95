//! The CloudTrail event record: liberal parsing of what real producers write, precise rejection of what
//! cannot be stored, and the fields the event-history index needs.
//!
//! The stored form of a record is the JSON text it arrived as (plus an `eventID` when it had none), so
//! every field — known or not — comes back as it went in.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::{EventTime, TimeError};

/// Hard-coded: CloudTrail's own record limit (PutAuditEvents and log files) is 256 KiB.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// Why a record cannot be stored. Every variant names the field or the byte offset at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("invalid JSON at byte offset {offset} (line {line}, column {column}): {reason}")]
    InvalidJson { offset: usize, line: usize, column: usize, reason: String },
    #[error("record must be a JSON object")]
    NotAnObject,
    #[error("missing required field '{field}'")]
    MissingField { field: &'static str },
    #[error("invalid value for field '{field}': {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("record is {size} bytes, over the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
}

impl RecordError {
    /// A short machine-readable code, used in batch failure lists and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::InvalidJson { .. } | RecordError::NotAnObject => "InvalidJson",
            RecordError::MissingField { .. } => "MissingField",
            RecordError::InvalidField { .. } => "InvalidField",
            RecordError::TooLarge { .. } => "RecordTooLarge",
        }
    }
}

/// `eventCategory` as the index separates it: Insights events live apart from everything else,
/// as they do in CloudTrail's event history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventCategory {
    /// Management, data and any other non-Insights event.
    Standard,
    Insight,
}

/// One entry of `resources[]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    pub resource_type: Option<String>,
    pub arn: Option<String>,
}

impl Resource {
    /// The short name of the resource: the part of its ARN after the last `/` (or `:`), e.g. `Mary`
    /// for `arn:aws:iam::123456789012:user/Mary`.
    pub fn short_name(&self) -> Option<&str> {
        let arn = self.arn.as_deref()?;
        let tail = arn.rsplit(['/', ':']).next()?;
        (!tail.is_empty() && tail != arn).then_some(tail)
    }
}

/// The fields of a record that lookups filter and sort on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFields {
    pub event_id: String,
    pub event_time: EventTime,
    pub event_name: String,
    pub event_source: String,
    pub read_only: Option<bool>,
    pub username: Option<String>,
    pub access_key_id: Option<String>,
    pub resources: Vec<Resource>,
    pub source_ip: Option<String>,
    pub error_code: Option<String>,
    pub user_agent: Option<String>,
    /// `recipientAccountId` and `userIdentity.accountId`, deduplicated.
    pub account_ids: Vec<String>,
    pub category: EventCategory,
    /// How the record arrived: out of band, never read from the record's JSON (see [`crate::Provenance`]).
    pub provenance: crate::Provenance,
}

/// A validated record: its stored JSON text and its indexed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    json: String,
    pub fields: IndexFields,
}

impl Record {
    /// Parses a record as it arrives from a client. When it has no `eventID`, `new_event_id` supplies
    /// one and it is inserted into the stored JSON.
    pub fn parse(bytes: &[u8], new_event_id: impl FnOnce() -> String) -> Result<Record, RecordError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge { size: trimmed.len(), max: MAX_RECORD_BYTES });
        }
        let raw = parse_raw(trimmed)?;
        let text = std::str::from_utf8(trimmed).map_err(|e| RecordError::InvalidJson {
            offset: e.valid_up_to(),
            line: 1,
            column: e.valid_up_to() + 1,
            reason: "invalid UTF-8".into(),
        })?;
        match raw.event_id.as_deref() {
            Some(_) => {
                let fields = raw.into_fields(None)?;
                Ok(Record { json: text.to_string(), fields })
            }
            None => {
                let id = new_event_id();
                let fields = raw.into_fields(Some(id.clone()))?;
                let json = insert_event_id(text, &id);
                Ok(Record { json, fields })
            }
        }
    }

    /// Re-reads a record from its stored JSON (journal replay). A stored record always has an `eventID`.
    pub fn from_stored(json: String) -> Result<Record, RecordError> {
        let fields = {
            let raw = parse_raw(json.as_bytes())?;
            if raw.event_id.is_none() {
                return Err(RecordError::MissingField { field: "eventID" });
            }
            raw.into_fields(None)?
        };
        Ok(Record { json, fields })
    }

    /// The record's JSON text, as stored.
    pub fn json(&self) -> &str {
        &self.json
    }

    pub fn into_json(self) -> String {
        self.json
    }

    pub fn into_parts(self) -> (String, IndexFields) {
        (self.json, self.fields)
    }
}

/// An optional string member, borrowed from the input when it has no escapes. serde borrows a bare
/// `Cow<str>` marked `borrow`, but inside an `Option` it always allocates (serde-rs/serde#1497): every field
/// of every record decoded for a lookup page was a `String` allocation.
fn borrowed_str<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'b>(#[serde(borrow)] Cow<'b, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

fn insert_event_id(text: &str, id: &str) -> String {
    // `text` is a validated JSON object with at least the required fields, so it starts with `{` and is
    // not empty: inserting right after the brace keeps it a valid object.
    let id_json = serde_json::to_string(id).unwrap_or_else(|_| format!("\"{id}\""));
    let mut out = String::with_capacity(text.len() + id_json.len() + 12);
    out.push('{');
    out.push_str("\"eventID\":");
    out.push_str(&id_json);
    out.push(',');
    out.push_str(&text[1..]);
    out
}

fn parse_raw(bytes: &[u8]) -> Result<RawRecord<'_>, RecordError> {
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    match first.map(|i| bytes[i]) {
        Some(b'{') => {}
        Some(_) => {
            // Still report broken JSON as such, with its offset, before complaining about the shape.
            if let Err(e) = serde_json::from_slice::<IgnoredAny>(bytes) {
                return Err(json_error(bytes, &e));
            }
            return Err(RecordError::NotAnObject);
        }
        None => {
            return Err(RecordError::InvalidJson { offset: 0, line: 1, column: 1, reason: "empty record".into() });
        }
    }
    serde_json::from_slice::<RawRecord>(bytes).map_err(|e| {
        if e.is_data() {
            // A well-formed document whose known fields have the wrong type: name the field.
            data_error(bytes, &e)
        } else {
            json_error(bytes, &e)
        }
    })
}

fn json_error(bytes: &[u8], e: &serde_json::Error) -> RecordError {
    let (line, column) = (e.line(), e.column());
    RecordError::InvalidJson { offset: offset_of(bytes, line, column), line, column, reason: strip_position(e) }
}

fn data_error(bytes: &[u8], e: &serde_json::Error) -> RecordError {
    let msg = strip_position(e);
    // serde names the field only for missing/duplicate fields; for a wrong type, find the key whose
    // value ends at the error position.
    let at = offset_of(bytes, e.line(), e.column());
    let key = key_before(bytes, at);
    let field = KNOWN_FIELDS
        .iter()
        .find(|f| key.is_some_and(|k| k.eq_ignore_ascii_case(f)) || msg.contains(&format!("`{f}`")))
        .copied()
        .unwrap_or("record");
    RecordError::InvalidField { field, reason: msg }
}

/// The object key of the value that ends at or before `at`: scans back to the `:` and the quoted key.
fn key_before(bytes: &[u8], at: usize) -> Option<&str> {
    let head = &bytes[..at.min(bytes.len())];
    let colon = head.iter().rposition(|b| *b == b':')?;
    let before = head[..colon].trim_ascii_end();
    let before = before.strip_suffix(b"\"")?;
    let open = before.iter().rposition(|b| *b == b'"')?;
    std::str::from_utf8(&before[open + 1..]).ok()
}

const KNOWN_FIELDS: &[&str] = &[
    "eventTime",
    "eventSource",
    "eventName",
    "eventID",
    "readOnly",
    "userIdentity",
    "resources",
    "sourceIPAddress",
    "errorCode",
    "userAgent",
    "recipientAccountId",
    "eventCategory",
    "eventType",
    "insightDetails",
    "type",
    "principalId",
    "arn",
    "ARN",
    "accountId",
    "accessKeyId",
    "userName",
    "invokedBy",
];

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Converts serde_json's 1-based line/column into a 0-based byte offset.
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut cur_line = 1;
    let mut line_start = 0;
    if line > 1 {
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' {
                cur_line += 1;
                if cur_line == line {
                    line_start = i + 1;
                    break;
                }
            }
        }
    }
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

// ---- raw wire shape -------------------------------------------------------------------------------

/// The fields we read, borrowed where possible. Unknown fields are skipped (they stay in the stored
/// text). Lower-case aliases accept records re-keyed by log pipelines.
#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(
        borrow,
        default,
        deserialize_with = "borrowed_str",
        rename = "eventID",
        alias = "eventid",
        alias = "eventId"
    )]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "eventTime", alias = "eventtime")]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "eventSource", alias = "eventsource")]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "eventName", alias = "eventname")]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "readOnly", alias = "readonly", default, deserialize_with = "bool_or_string")]
    read_only: Option<bool>,
    #[serde(borrow, rename = "userIdentity", alias = "useridentity")]
    user_identity: Option<RawIdentity<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_empty")]
    resources: Vec<RawResource<'a>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "sourceIPAddress", alias = "sourceipaddress")]
    source_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "errorCode", alias = "errorcode")]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "userAgent", alias = "useragent")]
    user_agent: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        deserialize_with = "borrowed_str",
        rename = "recipientAccountId",
        alias = "recipientaccountid"
    )]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "eventCategory", alias = "eventcategory")]
    event_category: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "eventType", alias = "eventtype")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "insightDetails", alias = "insightdetails")]
    insight_details: Option<RawInsight<'a>>,
}

#[derive(Deserialize)]
struct RawIdentity<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "principalId", alias = "principalid")]
    principal_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "accountId", alias = "accountid")]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "accessKeyId", alias = "accesskeyid")]
    access_key_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "userName", alias = "username")]
    user_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "invokedBy", alias = "invokedby")]
    invoked_by: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawResource<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "ARN", alias = "arn")]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "type", alias = "resourceType")]
    resource_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawInsight<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "eventSource")]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str", rename = "eventName")]
    event_name: Option<Cow<'a, str>>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `readOnly` is a JSON boolean in CloudTrail, but pipelines often stringify it.
fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean or \"true\"/\"false\" for `readOnly`")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                "" => Ok(None),
                _ => Err(E::custom(format!("`readOnly` must be true or false, got \"{v}\""))),
            }
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}

fn non_empty(v: Option<Cow<'_, str>>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

impl RawRecord<'_> {
    fn into_fields(self, assigned_id: Option<String>) -> Result<IndexFields, RecordError> {
        let is_insight = self.event_category.as_deref().is_some_and(|c| c.eq_ignore_ascii_case("insight"))
            || self.event_type.as_deref() == Some("AwsCloudTrailInsight");
        let (insight_source, insight_name) = match self.insight_details {
            Some(d) => (d.event_source, d.event_name),
            None => (None, None),
        };
        let event_id = match assigned_id {
            Some(id) => id,
            None => match self.event_id {
                Some(id) if !id.trim().is_empty() => id.into_owned(),
                Some(_) => {
                    return Err(RecordError::InvalidField { field: "eventID", reason: "must not be empty".into() });
                }
                None => return Err(RecordError::MissingField { field: "eventID" }),
            },
        };
        let time_text = self.event_time.ok_or(RecordError::MissingField { field: "eventTime" })?;
        let event_time = EventTime::parse(&time_text).map_err(|TimeError { input }| RecordError::InvalidField {
            field: "eventTime",
            reason: format!("'{input}' is not a time such as 2020-01-01T09:00:00Z"),
        })?;
        let required = |v: Option<Cow<'_, str>>, fallback: Option<Cow<'_, str>>, field: &'static str| match v
            .or(if is_insight { fallback } else { None })
        {
            Some(s) if !s.is_empty() => Ok(s.into_owned()),
            Some(_) => Err(RecordError::InvalidField { field, reason: "must not be empty".into() }),
            None => Err(RecordError::MissingField { field }),
        };
        let event_source = required(self.event_source, insight_source, "eventSource")?;
        let event_name = required(self.event_name, insight_name, "eventName")?;

        let mut account_ids = Vec::new();
        let mut push_account = |a: Option<String>| {
            if let Some(a) = a
                && !account_ids.contains(&a)
            {
                account_ids.push(a);
            }
        };
        push_account(non_empty(self.recipient_account_id));
        let (username, access_key_id) = match self.user_identity {
            Some(id) => {
                let username = derive_username(&id);
                push_account(non_empty(id.account_id));
                (username, non_empty(id.access_key_id))
            }
            None => (None, None),
        };
        let resources = self
            .resources
            .into_iter()
            .map(|r| Resource { resource_type: non_empty(r.resource_type), arn: non_empty(r.arn) })
            .collect();
        Ok(IndexFields {
            event_id,
            event_time,
            event_name,
            event_source,
            read_only: self.read_only,
            username,
            access_key_id,
            resources,
            source_ip: non_empty(self.source_ip),
            error_code: non_empty(self.error_code),
            user_agent: non_empty(self.user_agent),
            account_ids,
            provenance: crate::Provenance::Unknown,
            category: if is_insight { EventCategory::Insight } else { EventCategory::Standard },
        })
    }
}

/// CloudTrail's `Username`: the IAM user name; for assumed roles and federated users the session or
/// federated name (the last part of the ARN); `root` for the root user; the invoking service for
/// AWS services; otherwise the principal id.
fn derive_username(id: &RawIdentity<'_>) -> Option<String> {
    if let Some(u) = id.user_name.as_deref().filter(|s| !s.is_empty()) {
        return Some(u.to_string());
    }
    let kind = id.kind.as_deref().unwrap_or("");
    let arn_tail = id.arn.as_deref().and_then(|a| a.rsplit('/').next().filter(|t| !t.is_empty() && *t != a));
    match kind {
        "AssumedRole" | "FederatedUser" | "SAMLUser" | "WebIdentityUser" => {
            if let Some(t) = arn_tail {
                return Some(t.to_string());
            }
        }
        "Root" => return Some("root".to_string()),
        "AWSService" => {
            if let Some(s) = id.invoked_by.as_deref().filter(|s| !s.is_empty()) {
                return Some(s.to_string());
            }
        }
        _ => {}
    }
    let principal = id.principal_id.as_deref().filter(|s| !s.is_empty())?;
    Some(principal.rsplit(':').next().unwrap_or(principal).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","principalId":"AIDAJOHN","arn":"arn:aws:iam::123456789012:user/John","accountId":"123456789012","accessKeyId":"AKIAJOHN","userName":"John"},"eventTime":"2020-01-01T09:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"AWS Internal","requestParameters":{"userName":"Mary"},"responseElements":{"user":{"userName":"Mary"}},"readOnly":false,"resources":[{"ARN":"arn:aws:iam::123456789012:user/Mary","accountId":"123456789012","type":"AWS::IAM::User"}],"recipientAccountId":"123456789012","sessionCredentialFromConsole":"true","futureField":{"x":[1,2.50,"y"]}}"#;

    fn id() -> String {
        "11111111-2222-3333-4444-555555555555".to_string()
    }

    #[test]
    fn seed_record_fields_are_extracted() {
        let r = Record::parse(SEED.as_bytes(), id).unwrap();
        let f = &r.fields;
        assert_eq!(f.event_name, "CreateUser");
        assert_eq!(f.event_source, "iam.amazonaws.com");
        assert_eq!(f.username.as_deref(), Some("John"));
        assert_eq!(f.access_key_id.as_deref(), Some("AKIAJOHN"));
        assert_eq!(f.read_only, Some(false));
        assert_eq!(f.resources[0].short_name(), Some("Mary"));
        assert_eq!(f.account_ids, vec!["123456789012".to_string()]);
        assert_eq!(f.event_id, id());
        assert_eq!(f.category, EventCategory::Standard);
    }

    #[test]
    fn missing_event_id_is_inserted_and_everything_else_kept() {
        let r = Record::parse(SEED.as_bytes(), id).unwrap();
        let mut stored: serde_json::Value = serde_json::from_str(r.json()).unwrap();
        let mut original: serde_json::Value = serde_json::from_str(SEED).unwrap();
        assert_eq!(stored["eventID"], id());
        stored.as_object_mut().unwrap().remove("eventID");
        original.as_object_mut().unwrap().remove("eventID");
        assert_eq!(stored, original);
        assert_eq!(Record::from_stored(r.json().to_string()).unwrap().fields, r.fields);
    }

    #[test]
    fn given_event_id_is_kept_verbatim() {
        let text = SEED.replacen('{', r#"{"eventID":"abc-123","#, 1);
        let r = Record::parse(text.as_bytes(), || panic!("must not assign")).unwrap();
        assert_eq!(r.fields.event_id, "abc-123");
        assert_eq!(r.json(), text);
    }

    #[test]
    fn liberal_shapes_are_accepted() {
        let r = Record::parse(
            br#"{"eventtime":"2023-01-10 21:04:02","eventsource":"dynamodb.amazonaws.com","eventname":"GetRecords","readonly":"true","useridentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/R/sess"}}"#,
            id,
        )
        .unwrap();
        assert_eq!(r.fields.event_time, EventTime::parse("2023-01-10T21:04:02Z").unwrap());
        assert_eq!(r.fields.read_only, Some(true));
        assert_eq!(r.fields.username.as_deref(), Some("sess"));
    }

    #[test]
    fn insight_records_take_source_and_name_from_details() {
        let r = Record::parse(
            br#"{"eventVersion":"1.07","eventTime":"2020-01-01T00:00:00Z","eventType":"AwsCloudTrailInsight","eventCategory":"Insight","insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}}"#,
            id,
        )
        .unwrap();
        assert_eq!(r.fields.category, EventCategory::Insight);
        assert_eq!(r.fields.event_name, "RunInstances");
    }

    #[test]
    fn rejections_name_the_field_or_offset() {
        let e = Record::parse(br#"{"eventSource":"a","eventName":"b"}"#, id).unwrap_err();
        assert_eq!(e, RecordError::MissingField { field: "eventTime" });
        let e = Record::parse(br#"{"eventTime":"2020-01-01T00:00:00Z","eventName":"b"}"#, id).unwrap_err();
        assert_eq!(e, RecordError::MissingField { field: "eventSource" });
        let e = Record::parse(br#"{"eventTime":"2020-01-01T00:00:00Z","eventSource":"a"}"#, id).unwrap_err();
        assert_eq!(e, RecordError::MissingField { field: "eventName" });
        let e = Record::parse(br#"{"eventTime":"soon","eventSource":"a","eventName":"b"}"#, id).unwrap_err();
        assert!(matches!(e, RecordError::InvalidField { field: "eventTime", .. }), "{e:?}");
        let e = Record::parse(br#"{"eventTime": 5,"eventSource":"a","eventName":"b"}"#, id).unwrap_err();
        assert!(matches!(e, RecordError::InvalidField { field: "eventTime", .. }), "{e:?}");
        let e = Record::parse(b"{\"eventTime\":\n \"x\" oops}", id).unwrap_err();
        assert!(matches!(e, RecordError::InvalidJson { offset: 19, line: 2, column: 6, .. }), "{e:?}");
        let e = Record::parse(b"[1,2]", id).unwrap_err();
        assert_eq!(e, RecordError::NotAnObject);
        let big = format!(
            r#"{{"eventTime":"2020-01-01T00:00:00Z","eventSource":"a","eventName":"b","pad":"{}"}}"#,
            "x".repeat(MAX_RECORD_BYTES)
        );
        assert!(matches!(Record::parse(big.as_bytes(), id).unwrap_err(), RecordError::TooLarge { .. }));
    }
}

#[cfg(test)]
mod sample_tests {
    use super::*;

    /// Real records written by others (`../shared/data`, beside the repository in development and CI):
    /// every one is either stored or rejected with a named field — never a panic, never a vague error.
    #[test]
    fn real_samples_are_stored_or_rejected_precisely() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail-samples");
        let mut seen = 0;
        let mut stored = 0;
        for file in ["awsdocs-examples.ndjson", "panther-tests.ndjson"] {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                eprintln!("skipped: {} not present", dir.join(file).display());
                continue;
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                seen += 1;
                match Record::parse(line.as_bytes(), || "assigned".into()) {
                    Ok(r) => {
                        stored += 1;
                        let back: serde_json::Value = serde_json::from_str(r.json()).unwrap();
                        let mut orig: serde_json::Value = serde_json::from_str(line).unwrap();
                        if orig.get("eventID").is_none() && orig.get("eventid").is_none() {
                            orig["eventID"] = "assigned".into();
                        }
                        assert_eq!(back, orig);
                    }
                    Err(RecordError::MissingField { .. } | RecordError::InvalidField { .. }) => {}
                    Err(e) => panic!("{file}: unexpected {e}: {line}"),
                }
            }
        }
        if seen > 0 {
            assert!(stored * 10 >= seen * 8, "most real records are storable: {stored}/{seen}");
        }
    }

    #[test]
    fn string_members_decode_escapes_and_name_a_wrong_type() {
        // Borrowed when plain, decoded when escaped: both give the same fields.
        let r = Record::from_stored(
            r#"{"eventID":"e\u0031","eventTime":"2020-01-01T09:00:00Z","eventSource":"iam.amazonaws.com","eventName":"Create\"User","userIdentity":{"type":"IAMUser","userName":"J\u00f6hn"}}"#
                .to_string(),
        )
        .unwrap();
        assert_eq!(r.fields.event_id, "e1");
        assert_eq!(r.fields.event_name, "Create\"User");
        assert_eq!(r.fields.username.as_deref(), Some("Jöhn"));
        let e =
            Record::parse(br#"{"eventTime":"2020-01-01T09:00:00Z","eventSource":"s","eventName":5}"#, || "id".into())
                .unwrap_err();
        assert!(matches!(e, RecordError::InvalidField { field: "eventName", .. }), "{e:?}");
    }
}
