//! `LookupEvents` on the wire: the validated request (its shape and rules are in `wire::lookup`), the
//! opaque NextToken, and the `Events[]` shape the aws CLI and boto3 read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use index::Position;
use model::{EventQuery, EventTime, Seq};
use serde_json::Value;

use crate::error::ApiError;
use crate::wire::{self, WireError, lookup::LookupEventsRequest};

/// Hard-coded by the CloudTrail API model: `MaxResults` is 1..50, default 50.
pub const MAX_RESULTS: usize = 50;

/// Hard-coded: the largest page of the native LookupEvents (`POST /v1/lookup`, default 50 as well).
/// `opentrail lookup` pages with it, so reading a long history writes one audit record per 1000 events
/// rather than per 50; a page of 1000 records is ~1.5 MB.
pub const NATIVE_MAX_RESULTS: usize = 1000;

/// A validated LookupEvents request.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupRequest {
    pub query: EventQuery,
    pub max_results: usize,
    pub after: Option<Position>,
}

/// The start of the event history lookups may see (`lookup_window_days`; `None`: all of it), for every lookup
/// surface.
pub(crate) fn window_start(app: &crate::App, ctx: &crate::CallContext) -> Option<EventTime> {
    app.config.lookup_window_days.map(|d| EventTime(ctx.now.0 - i64::from(d) * 86_400_000))
}

/// Reads and validates a LookupEvents request; `window_start` (the `lookup_window_days` policy) clamps
/// its start; `MaxResults` may be 1..=`max_results` ([`MAX_RESULTS`] or [`NATIVE_MAX_RESULTS`]).
pub fn parse_lookup_request(
    body: &Value,
    window_start: Option<EventTime>,
    max_results: usize,
) -> Result<LookupRequest, ApiError> {
    Ok(wire::parse::<LookupEventsRequest>(body)?.into_lookup(window_start, max_results)?)
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
    for c in &q.conditions {
        eat(c.to_string().as_bytes());
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

pub fn decode_token(token: &str, q: &EventQuery) -> Result<Position, WireError> {
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| WireError::NextToken)?;
    if raw.len() != 25 || raw[0] != TOKEN_VERSION {
        return Err(WireError::NextToken);
    }
    let num = |r: std::ops::Range<usize>| raw[r].try_into().map(u64::from_be_bytes).map_err(|_| WireError::NextToken);
    let time = EventTime(num(1..9)? as i64);
    let seq = Seq(num(9..17)?);
    if num(17..25)? != fingerprint(q) {
        return Err(WireError::NextToken);
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
    use model::AttributeKey;
    use serde_json::json;

    fn err(body: Value) -> ApiError {
        parse_lookup_request(&body, None, MAX_RESULTS).unwrap_err()
    }

    #[test]
    fn defaults_and_several_attributes() {
        let r = parse_lookup_request(
            &json!({"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"CreateUser"},{"AttributeKey":"SourceIPAddress","AttributeValue":"1.2.3.4"}],"StartTime":1577869200,"EndTime":"2020-01-02T00:00:00Z"}),
            None,
            MAX_RESULTS,
        )
        .unwrap();
        assert_eq!(r.max_results, 50);
        assert_eq!(r.query.conditions.len(), 2);
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
    fn the_native_api_takes_larger_pages_within_its_own_limit() {
        let r = parse_lookup_request(&json!({"MaxResults": 1000}), None, NATIVE_MAX_RESULTS).unwrap();
        assert_eq!(r.max_results, 1000);
        assert_eq!(parse_lookup_request(&json!({}), None, NATIVE_MAX_RESULTS).unwrap().max_results, 50);
        let e = parse_lookup_request(&json!({"MaxResults": 1001}), None, NATIVE_MAX_RESULTS).unwrap_err();
        assert_eq!(e.code, "InvalidMaxResultsException");
    }

    #[test]
    fn a_repeated_key_is_an_or_and_values_take_the_grammar_extensions() {
        let r = parse_lookup_request(
            &json!({"LookupAttributes":[
                {"AttributeKey":"EventName","AttributeValue":"DeleteTrail"},
                {"AttributeKey":"EventSource","AttributeValue":"!cloudtrail.amazonaws.com"},
                {"AttributeKey":"EventName","AttributeValue":"StopLogging"},
                {"AttributeKey":"ErrorCode","AttributeValue":"AccessDenied*"},
                {"AttributeKey":"UserAgent","AttributeValue":"Mozilla/5.0 (KHTML, like Gecko)"},
                {"AttributeKey":"SourceIPAddress","AttributeValue":"10.0.0.0/8"}]}),
            None,
            MAX_RESULTS,
        )
        .unwrap();
        let text: Vec<String> = r.query.conditions.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            text,
            [
                "EventName=DeleteTrail,StopLogging",
                "EventSource!=cloudtrail.amazonaws.com",
                "ErrorCode=AccessDenied*",
                r"UserAgent=Mozilla/5.0 (KHTML\, like Gecko)",
                "SourceIPAddress=10.0.0.0/8",
            ]
        );
        let e = err(json!({"LookupAttributes":[{"AttributeKey":"SourceIPAddress","AttributeValue":"10.0.0.0/33"}]}));
        assert_eq!(e.code, "InvalidLookupAttributesException");
        assert!(e.message.contains("LookupAttributes[0].AttributeValue `10.0.0.0/33`"), "{}", e.message);
        let e = err(json!({"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"Del*ete"}]}));
        assert!(e.message.contains("`Del*ete`"), "{}", e.message);
    }

    #[test]
    fn tokens_round_trip_and_are_tied_to_their_parameters() {
        let q = EventQuery::equal([(AttributeKey::EventName, "A")]);
        let pos = Position { time: EventTime(123), seq: Seq(9) };
        let tok = encode_token(pos, &q);
        assert_eq!(decode_token(&tok, &q).unwrap(), pos);
        let other = EventQuery::equal([(AttributeKey::EventName, "B")]);
        assert_eq!(ApiError::from(decode_token(&tok, &other).unwrap_err()).code, "InvalidNextTokenException");
    }

    #[test]
    fn the_lookup_window_policy_clamps_the_start() {
        let r = parse_lookup_request(&json!({"StartTime": 10}), Some(EventTime(50_000)), MAX_RESULTS).unwrap();
        assert_eq!(r.query.start, Some(EventTime(50_000)));
        let r = parse_lookup_request(&json!({}), Some(EventTime(50_000)), MAX_RESULTS).unwrap();
        assert_eq!(r.query.start, Some(EventTime(50_000)));
    }
}
