//! `LookupEvents` on the wire: request validation exactly as CloudTrail names its errors, the opaque
//! NextToken, and the `Events[]` shape the aws CLI and boto3 read. Also used by opentrail's own CLI.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use index::Position;
use model::{AttributeKey, EventQuery, EventTime, QueryCategory, Seq};
use serde_json::Value;

use crate::error::ApiError;

/// Hard-coded by the CloudTrail API model: `MaxResults` is 1..50, default 50.
pub const MAX_RESULTS: usize = 50;
/// Hard-coded by the CloudTrail API model: `AttributeValue` is 1..2000 characters.
const MAX_ATTRIBUTE_VALUE_CHARS: usize = 2000;

/// A validated LookupEvents request.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupRequest {
    pub query: EventQuery,
    pub max_results: usize,
    pub after: Option<Position>,
}

/// Reads a timestamp as botocore (integer epoch seconds), other SDKs (fractional) or people (ISO-8601)
/// send it.
pub fn parse_timestamp(v: &Value, field: &str) -> Result<EventTime, ApiError> {
    let bad = || ApiError::serialization(format!("'{field}' must be a timestamp: epoch seconds or ISO-8601"));
    match v {
        Value::Number(n) => n.as_f64().and_then(EventTime::from_epoch_seconds_f64).ok_or_else(bad),
        Value::String(s) => EventTime::parse_flexible(s).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

pub fn parse_lookup_request(body: &Value, window_start: Option<EventTime>) -> Result<LookupRequest, ApiError> {
    let obj = body.as_object().ok_or_else(|| ApiError::serialization("request body must be a JSON object"))?;
    let category = match obj.get("EventCategory") {
        None | Some(Value::Null) => QueryCategory::Standard,
        Some(Value::String(s)) if s == "insight" => QueryCategory::Insight,
        Some(Value::String(s)) if s == "management" => QueryCategory::Standard,
        Some(other) => {
            return Err(ApiError::client(
                "InvalidEventCategoryException",
                format!("EventCategory {other} is not valid. Valid values: insight"),
            ));
        }
    };
    let mut attributes = Vec::new();
    match obj.get("LookupAttributes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let invalid = |why: String| ApiError::client("InvalidLookupAttributesException", why);
                let key = item.get("AttributeKey").and_then(Value::as_str).ok_or_else(|| {
                    invalid(format!("LookupAttributes[{i}].AttributeKey is required and must be a string"))
                })?;
                let key = AttributeKey::parse(key).ok_or_else(|| {
                    let valid: Vec<&str> = AttributeKey::ALL.iter().map(|k| k.as_str()).collect();
                    invalid(format!(
                        "LookupAttributes[{i}].AttributeKey '{key}' is not valid. Valid keys: {}",
                        valid.join(", ")
                    ))
                })?;
                let value = item.get("AttributeValue").and_then(Value::as_str).ok_or_else(|| {
                    invalid(format!("LookupAttributes[{i}].AttributeValue is required and must be a string"))
                })?;
                let chars = value.chars().count();
                if chars == 0 || chars > MAX_ATTRIBUTE_VALUE_CHARS {
                    return Err(invalid(format!(
                        "LookupAttributes[{i}].AttributeValue must be 1 to {MAX_ATTRIBUTE_VALUE_CHARS} characters"
                    )));
                }
                if category == QueryCategory::Insight
                    && !matches!(key, AttributeKey::EventId | AttributeKey::EventName | AttributeKey::EventSource)
                {
                    return Err(invalid(format!(
                        "LookupAttributes[{i}].AttributeKey {key} cannot be used with EventCategory insight; use EventId, EventName or EventSource"
                    )));
                }
                if key == AttributeKey::Provenance {
                    // `ingest` alone, or `ingest:<principal ARN>` (the kind AND the detail).
                    let terms = model::Provenance::lookup_terms(value).ok_or_else(|| {
                        invalid(format!(
                            "LookupAttributes[{i}].AttributeValue '{value}' is not a provenance: give self-audit, ingest, channel, gateway, import or unknown, optionally followed by ':' and the principal ARN, channel ARN, gateway name or import source"
                        ))
                    })?;
                    attributes.extend(terms.into_iter().map(|t| (key, t)));
                    continue;
                }
                attributes.push((key, value.to_string()));
            }
        }
        Some(_) => return Err(ApiError::serialization("'LookupAttributes' must be a list")),
    }
    let start = obj.get("StartTime").filter(|v| !v.is_null()).map(|v| parse_timestamp(v, "StartTime")).transpose()?;
    let end = obj.get("EndTime").filter(|v| !v.is_null()).map(|v| parse_timestamp(v, "EndTime")).transpose()?;
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(ApiError::client(
            "InvalidTimeRangeException",
            "Start time must be earlier than or equal to end time.",
        ));
    }
    let start = match (start, window_start) {
        (Some(s), Some(w)) => Some(s.max(w)),
        (s, w) => s.or(w),
    };
    let max_results = match obj.get("MaxResults") {
        None | Some(Value::Null) => MAX_RESULTS,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(m) if (1..=MAX_RESULTS as i64).contains(&m) => m as usize,
            _ => {
                return Err(ApiError::client(
                    "InvalidMaxResultsException",
                    format!("MaxResults {n} is not valid: it must be between 1 and {MAX_RESULTS}"),
                ));
            }
        },
        Some(_) => return Err(ApiError::serialization("'MaxResults' must be an integer")),
    };
    let query = EventQuery { attributes, start, end, category };
    let after = match obj.get("NextToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(decode_token(s, &query)?),
        Some(_) => return Err(ApiError::serialization("'NextToken' must be a string")),
    };
    Ok(LookupRequest { query, max_results, after })
}

/// A stable fingerprint of the parameters a token is tied to (FNV-1a; not a security boundary, a
/// guard against reusing a token with different parameters).
fn fingerprint(q: &EventQuery) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for (k, v) in &q.attributes {
        eat(&[k.tag()]);
        eat(v.as_bytes());
    }
    eat(&q.start.map_or(i64::MIN, |t| t.0).to_be_bytes());
    eat(&q.end.map_or(i64::MIN, |t| t.0).to_be_bytes());
    eat(&[q.category as u8]);
    h
}

const TOKEN_VERSION: u8 = 1;

pub fn encode_token(pos: Position, q: &EventQuery) -> String {
    let mut raw = Vec::with_capacity(25);
    raw.push(TOKEN_VERSION);
    raw.extend_from_slice(&pos.time.0.to_be_bytes());
    raw.extend_from_slice(&pos.seq.0.to_be_bytes());
    raw.extend_from_slice(&fingerprint(q).to_be_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

pub fn decode_token(token: &str, q: &EventQuery) -> Result<Position, ApiError> {
    let invalid = || {
        ApiError::client(
            "InvalidNextTokenException",
            "Invalid NextToken: it is malformed or was issued for different request parameters.",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if raw.len() != 25 || raw[0] != TOKEN_VERSION {
        return Err(invalid());
    }
    let num = |r: std::ops::Range<usize>| raw[r].try_into().map(u64::from_be_bytes).map_err(|_| invalid());
    let time = EventTime(num(1..9)? as i64);
    let seq = Seq(num(9..17)?);
    if num(17..25)? != fingerprint(q) {
        return Err(invalid());
    }
    Ok(Position { time, seq })
}

/// The LookupEvents answer, written straight from the stored events: `{"Events":[…],"NextToken":…}`.
/// Borrowed fields, no intermediate `serde_json::Value` per event (a page is 50 records of ~1.5 KB).
pub fn encode_page(page: &service::LookupResult, query: &EventQuery) -> Result<Vec<u8>, serde_json::Error> {
    let answer = Page {
        events: page.events.iter().map(Element::of).collect(),
        next_token: page.next.map(|next| encode_token(next, query)),
    };
    let bytes: usize = page.events.iter().map(|e| e.json.len() + 400).sum();
    let mut out = Vec::with_capacity(bytes + 64);
    serde_json::to_writer(&mut out, &answer)?;
    Ok(out)
}

#[derive(serde::Serialize)]
struct Page<'a> {
    #[serde(rename = "Events")]
    events: Vec<Element<'a>>,
    #[serde(rename = "NextToken", skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// One `Events[]` element, members in the model's order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Element<'a> {
    event_id: &'a str,
    event_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
    event_time: f64,
    event_source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    resources: Vec<ResourceElement<'a>>,
    cloud_trail_event: &'a str,
    /// An extension: how the record arrived (`self-audit`, `ingest:<principal ARN>`, …). SDKs ignore
    /// members they do not model.
    provenance: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResourceElement<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
}

impl<'a> Element<'a> {
    fn of(e: &'a service::StoredEvent) -> Element<'a> {
        let f = &e.fields;
        Element {
            event_id: &f.event_id,
            event_name: &f.event_name,
            read_only: f.read_only.map(|ro| if ro { "true" } else { "false" }),
            access_key_id: f.access_key_id.as_deref(),
            event_time: f.event_time.epoch_seconds_f64(),
            event_source: &f.event_source,
            username: f.username.as_deref(),
            resources: f
                .resources
                .iter()
                .map(|r| ResourceElement { resource_type: r.resource_type.as_deref(), resource_name: r.arn.as_deref() })
                .collect(),
            cloud_trail_event: &e.json,
            provenance: f.provenance.to_text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: Value) -> ApiError {
        parse_lookup_request(&body, None).unwrap_err()
    }

    #[test]
    fn defaults_and_several_attributes() {
        let r = parse_lookup_request(
            &json!({"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"CreateUser"},{"AttributeKey":"SourceIPAddress","AttributeValue":"1.2.3.4"}],"StartTime":1577869200,"EndTime":"2020-01-02T00:00:00Z"}),
            None,
        )
        .unwrap();
        assert_eq!(r.max_results, 50);
        assert_eq!(r.query.attributes.len(), 2);
        assert_eq!(r.query.start, Some(EventTime(1_577_869_200_000)));
        assert_eq!(r.query.end, Some(EventTime(1_577_923_200_000)));
    }

    #[test]
    fn each_bad_parameter_gets_its_cloudtrail_error() {
        assert_eq!(err(json!({"MaxResults": 51})).code, "InvalidMaxResultsException");
        assert_eq!(err(json!({"MaxResults": 0})).code, "InvalidMaxResultsException");
        assert_eq!(err(json!({"StartTime": 20, "EndTime": 10})).code, "InvalidTimeRangeException");
        let e = err(json!({"LookupAttributes":[{"AttributeKey":"Colour","AttributeValue":"x"}]}));
        assert_eq!(e.code, "InvalidLookupAttributesException");
        assert!(e.message.contains("Colour"));
        let e = err(json!({"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":""}]}));
        assert!(e.message.contains("LookupAttributes[0].AttributeValue"));
        assert_eq!(err(json!({"EventCategory":"data"})).code, "InvalidEventCategoryException");
        assert_eq!(err(json!({"NextToken":"garbage"})).code, "InvalidNextTokenException");
        assert_eq!(err(json!({"MaxResults":"ten"})).code, "SerializationException");
        assert_eq!(err(json!([1])).code, "SerializationException");
        let e = err(
            json!({"EventCategory":"insight","LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"x"}]}),
        );
        assert_eq!(e.code, "InvalidLookupAttributesException");
    }

    #[test]
    fn tokens_round_trip_and_are_tied_to_their_parameters() {
        let q = EventQuery { attributes: vec![(AttributeKey::EventName, "A".into())], ..Default::default() };
        let pos = Position { time: EventTime(123), seq: Seq(9) };
        let tok = encode_token(pos, &q);
        assert_eq!(decode_token(&tok, &q).unwrap(), pos);
        let other = EventQuery { attributes: vec![(AttributeKey::EventName, "B".into())], ..Default::default() };
        assert_eq!(decode_token(&tok, &other).unwrap_err().code, "InvalidNextTokenException");
    }

    #[test]
    fn the_lookup_window_policy_clamps_the_start() {
        let r = parse_lookup_request(&json!({"StartTime": 10}), Some(EventTime(50_000))).unwrap();
        assert_eq!(r.query.start, Some(EventTime(50_000)));
        let r = parse_lookup_request(&json!({}), Some(EventTime(50_000))).unwrap();
        assert_eq!(r.query.start, Some(EventTime(50_000)));
    }
}
