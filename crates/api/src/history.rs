//! The native API's counts of the event history, in the lookup grammar (README, "Query grammar"):
//! `GET /v1/event-counts?attr=KEY=V1,V2&attr=KEY!=V…&start=…&end=…&category=…&by=KEY&top=N` (how many match,
//! and the top values of an attribute among them), through the one chain (authenticated, authorized as
//! `opentrail:GetEventCounts`, audited) and the same engine as LookupEvents. Pages of events are LookupEvents'
//! (`POST /v1/lookup` on the native API, larger pages), whose attribute values take the same grammar.

use std::sync::Arc;

use model::{AttributeKey, Condition, EventQuery, EventTime, QueryCategory};
use serde_json::{Value, json};

use crate::chain::Reply;
use crate::error::ApiError;
use crate::wire::WireError;
use crate::{App, CallContext, blocking};

/// Hard-coded: how many values `GET /v1/event-counts` lists unless `top` says otherwise.
const DEFAULT_TOP: usize = 10;
/// Hard-coded: the most values `top` may ask for (the answer stays small).
pub const MAX_TOP: usize = 10_000;
/// Hard-coded: the most intervals `buckets` may cut the range into (the console's chart draws up to 60).
pub const MAX_BUCKETS: usize = 240;

/// The query parameters of a native count, decoded.
pub(crate) fn query_pairs(uri: &axum::http::Uri) -> Result<Vec<(String, String)>, WireError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|axum::extract::Query(q)| q)
        .map_err(|e| WireError::Query { reason: e.body_text() })
}

/// The query (conditions merged, the lookup window applied) and the rest.
struct Parsed {
    query: EventQuery,
    by: Option<String>,
    top: Option<String>,
    buckets: Option<String>,
}

fn parse(pairs: &[(String, String)], window_start: Option<EventTime>) -> Result<Parsed, WireError> {
    let mut conditions = Vec::new();
    let (mut start, mut end, mut category) = (None, None, QueryCategory::Standard);
    let mut p = Parsed { query: EventQuery::default(), by: None, top: None, buckets: None };
    for (name, value) in pairs {
        let time = |name: &'static str| {
            EventTime::parse_flexible(value).map_err(|e| WireError::Parameter { name, reason: e.to_string() })
        };
        match name.as_str() {
            "attr" => conditions.push(Condition::parse(value).map_err(WireError::Condition)?),
            "start" => start = Some(time("start")?),
            "end" => end = Some(time("end")?),
            "category" => {
                category = match value.as_str() {
                    "management" | "standard" => QueryCategory::Standard,
                    "insight" => QueryCategory::Insight,
                    _ => return Err(WireError::EventCategory { given: value.clone() }),
                }
            }
            "by" => p.by = Some(value.clone()),
            "top" => p.top = Some(value.clone()),
            "buckets" => p.buckets = Some(value.clone()),
            _ => {
                return Err(WireError::Parameter {
                    name: "query",
                    reason: format!("unknown parameter '{name}' (known: attr, start, end, category, by, top, buckets)"),
                });
            }
        }
    }
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(WireError::TimeRange { start: s, end: e });
    }
    let start = match (start, window_start) {
        (Some(s), Some(w)) => Some(s.max(w)),
        (s, w) => s.or(w),
    };
    p.query = EventQuery { conditions: Condition::merge(conditions), start, end, category };
    Ok(p)
}

fn number(
    name: &'static str,
    value: Option<&str>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, WireError> {
    match value {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(WireError::Parameter {
                name,
                reason: format!("'{v}' is not a number from {} to {}", range.start(), range.end()),
            }),
        },
    }
}

/// `GET /v1/event-counts`: `{"Total":n,"By":"KEY","Values":[{"Value":…,"Count":n}…],"Distinct":n,"Without":n}`.
pub(crate) async fn event_counts(app: &Arc<App>, ctx: &CallContext, uri: &axum::http::Uri) -> Result<Reply, ApiError> {
    let p = parse(&query_pairs(uri)?, crate::lookup::window_start(app, ctx))?;
    let by = match p.by.as_deref() {
        None => None,
        Some(k) => match AttributeKey::parse(k) {
            // Every event has its own id: counts by EventId say nothing, and UUID ids are not terms.
            Some(AttributeKey::EventId) => {
                return Err(WireError::Parameter { name: "by", reason: "EventId cannot be counted by".into() }.into());
            }
            Some(key) => Some(key),
            None => {
                let valid: Vec<&str> = AttributeKey::ALL[1..].iter().map(|k| k.as_str()).collect();
                let reason = format!("'{k}' is not one of {}", valid.join(", "));
                return Err(WireError::Parameter { name: "by", reason }.into());
            }
        },
    };
    let top = number("top", p.top.as_deref(), DEFAULT_TOP, 1..=MAX_TOP)?;
    if p.buckets.is_some() {
        let n = number("buckets", p.buckets.as_deref(), 1, 1..=MAX_BUCKETS)?;
        return series(app, p.query, n).await;
    }
    let store = app.store.clone();
    let query = p.query;
    let counts = blocking(move || store.count(&query, by)).await??;
    let mut answer = json!({"Total": counts.total});
    if let Some(by) = by {
        let ranked = counts.ranked();
        answer["By"] = json!(by.as_str());
        answer["Distinct"] = json!(ranked.len());
        answer["Without"] = json!(counts.without);
        answer["Values"] = ranked.into_iter().take(top).map(|(v, n)| json!({"Value": v, "Count": n})).collect();
    }
    let body = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(&e))?;
    Ok(Reply::Encoded { body, content_type: "application/json", headers: Vec::new(), summary: Value::Null })
}

/// `buckets=N`: the range `start`..`end` (both required) cut into N equal intervals, each with how many
/// events match and how many of those failed (have an `errorCode`):
/// `{"Total":n,"Errors":n,"IntervalMillis":w,"Series":[{"Start":…,"End":…,"Count":n,"Errors":n}…]}`. The
/// console's activity chart; one audited call, N counts from postings.
async fn series(app: &Arc<App>, query: EventQuery, n: usize) -> Result<Reply, ApiError> {
    let (Some(start), Some(end)) = (query.start, query.end) else {
        let reason = "buckets needs both start and end".to_string();
        return Err(WireError::Parameter { name: "buckets", reason }.into());
    };
    let span = (end.0 - start.0).max(0) + 1;
    let width = ((span + n as i64 - 1) / n as i64).max(1);
    let store = app.store.clone();
    let rows = blocking(move || -> Result<Vec<(i64, i64, u64, u64)>, service::StoreError> {
        let mut rows = Vec::with_capacity(n);
        let mut from = start.0;
        while from <= end.0 && rows.len() < n {
            let to = (from + width - 1).min(end.0);
            let q = EventQuery { start: Some(EventTime(from)), end: Some(EventTime(to)), ..query.clone() };
            let c = store.count(&q, Some(AttributeKey::ErrorCode))?;
            rows.push((from, to, c.total, c.total.saturating_sub(c.without)));
            from = to + 1;
        }
        Ok(rows)
    })
    .await??;
    let total: u64 = rows.iter().map(|r| r.2).sum();
    let errors: u64 = rows.iter().map(|r| r.3).sum();
    let series: Vec<Value> = rows
        .into_iter()
        .map(|(f, t, c, e)| {
            json!({"Start": EventTime(f).to_rfc3339(), "End": EventTime(t).to_rfc3339(), "Count": c, "Errors": e})
        })
        .collect();
    let answer = json!({"Total": total, "Errors": errors, "IntervalMillis": width, "Series": series});
    let body = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(&e))?;
    Ok(Reply::Encoded { body, content_type: "application/json", headers: Vec::new(), summary: Value::Null })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn attrs_merge_and_bad_ones_name_their_token() {
        let p = parse(
            &pairs(&[("attr", "EventName=A"), ("attr", "EventName=B"), ("attr", "ErrorCode!=x*"), ("by", "Username")]),
            None,
        )
        .unwrap();
        assert_eq!(p.query.conditions.len(), 2);
        assert_eq!(p.query.conditions[0].to_string(), "EventName=A,B");
        let e = ApiError::from(parse(&pairs(&[("attr", "SourceIPAddress=10.0.0.0/33")]), None).err().unwrap());
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.contains("10.0.0.0/33"), "{}", e.message);
        let e = ApiError::from(parse(&pairs(&[("colour", "red")]), None).err().unwrap());
        assert!(e.message.contains("colour"), "{}", e.message);
        assert!(parse(&pairs(&[("max", "5")]), None).is_err(), "max is not a count parameter");
        assert!(number("top", Some("0"), 10, 1..=MAX_TOP).is_err());
    }
}
