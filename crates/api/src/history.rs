//! The native API's reads of the event history, in the lookup grammar (README, "Query grammar"):
//! `GET /v1/events?attr=KEY=V1,V2&attr=KEY!=V…&start=…&end=…&category=…&max=…&token=…` (a page of records,
//! newest first) and `GET /v1/event-counts?attr=…&by=KEY&top=N` (how many match, and the top values of an
//! attribute among them). Both go through the one chain (authenticated, authorized as
//! `opentrail:ListEvents` / `opentrail:GetEventCounts`, audited) and the same engine as LookupEvents.

use std::sync::Arc;

use model::{AttributeKey, Condition, EventQuery, EventTime, QueryCategory};
use serde_json::{Value, json};

use crate::chain::Reply;
use crate::error::ApiError;
use crate::lookup::{decode_token, encode_token};
use crate::wire::WireError;
use crate::{App, CallContext, blocking};

/// Hard-coded: the largest page of `GET /v1/events` (its records are sent whole).
pub const MAX_EVENTS_PAGE: usize = 1000;
/// Hard-coded: the default page of `GET /v1/events`, as LookupEvents'.
const DEFAULT_EVENTS_PAGE: usize = 50;
/// Hard-coded: how many values `GET /v1/event-counts` lists unless `top` says otherwise.
const DEFAULT_TOP: usize = 10;
/// Hard-coded: the most values `top` may ask for (the answer stays small).
pub const MAX_TOP: usize = 10_000;

/// The query parameters of a native history read, decoded.
pub(crate) fn query_pairs(uri: &axum::http::Uri) -> Result<Vec<(String, String)>, WireError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|axum::extract::Query(q)| q)
        .map_err(|e| WireError::Query { reason: e.body_text() })
}

/// The parts both reads share: the query (conditions merged, the lookup window applied) and the rest.
struct Parsed {
    query: EventQuery,
    max: Option<String>,
    token: Option<String>,
    by: Option<String>,
    top: Option<String>,
}

fn parse(
    pairs: &[(String, String)],
    window_start: Option<EventTime>,
    allowed: &[&'static str],
) -> Result<Parsed, WireError> {
    let mut conditions = Vec::new();
    let (mut start, mut end, mut category) = (None, None, QueryCategory::Standard);
    let mut p = Parsed { query: EventQuery::default(), max: None, token: None, by: None, top: None };
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
            "max" if allowed.contains(&"max") => p.max = Some(value.clone()),
            "token" if allowed.contains(&"token") => p.token = Some(value.clone()),
            "by" if allowed.contains(&"by") => p.by = Some(value.clone()),
            "top" if allowed.contains(&"top") => p.top = Some(value.clone()),
            _ => {
                return Err(WireError::Parameter {
                    name: "query",
                    reason: format!(
                        "unknown parameter '{name}' (known: attr, start, end, category, {})",
                        allowed.join(", ")
                    ),
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

fn window_start(app: &App, ctx: &CallContext) -> Option<EventTime> {
    app.config.lookup_window_days.map(|d| EventTime(ctx.now.0 - i64::from(d) * 86_400_000))
}

/// `GET /v1/events`: `{"Records":[…records as stored…],"NextToken":"…"}`.
pub(crate) async fn list_events(app: &Arc<App>, ctx: &CallContext, uri: &axum::http::Uri) -> Result<Reply, ApiError> {
    let p = parse(&query_pairs(uri)?, window_start(app, ctx), &["max", "token"])?;
    let max = number("max", p.max.as_deref(), DEFAULT_EVENTS_PAGE, 1..=MAX_EVENTS_PAGE)?;
    let after = match p.token.as_deref() {
        None | Some("") => None,
        Some(t) => Some(decode_token(t, &p.query)?),
    };
    let store = app.store.clone();
    let body = blocking(move || {
        let page = store.lookup(&p.query, max, after)?;
        let mut out = Vec::with_capacity(page.events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 64);
        out.extend_from_slice(b"{\"Records\":[");
        for (i, e) in page.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(e.json.as_bytes());
        }
        out.push(b']');
        if let Some(next) = page.next {
            out.extend_from_slice(format!(",\"NextToken\":\"{}\"", encode_token(next, &p.query)).as_bytes());
        }
        out.push(b'}');
        Ok::<_, ApiError>(out)
    })
    .await??;
    Ok(Reply::Encoded { body, content_type: "application/json", headers: Vec::new(), summary: Value::Null })
}

/// `GET /v1/event-counts`: `{"Total":n,"By":"KEY","Values":[{"Value":…,"Count":n}…],"Distinct":n,"Without":n}`.
pub(crate) async fn event_counts(app: &Arc<App>, ctx: &CallContext, uri: &axum::http::Uri) -> Result<Reply, ApiError> {
    let p = parse(&query_pairs(uri)?, window_start(app, ctx), &["by", "top"])?;
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
            &["by", "top"],
        )
        .unwrap();
        assert_eq!(p.query.conditions.len(), 2);
        assert_eq!(p.query.conditions[0].to_string(), "EventName=A,B");
        let e = ApiError::from(parse(&pairs(&[("attr", "SourceIPAddress=10.0.0.0/33")]), None, &[]).err().unwrap());
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.contains("10.0.0.0/33"), "{}", e.message);
        let e = ApiError::from(parse(&pairs(&[("colour", "red")]), None, &["by"]).err().unwrap());
        assert!(e.message.contains("colour"), "{}", e.message);
        assert!(parse(&pairs(&[("max", "5")]), None, &["by"]).is_err(), "max is not a count parameter");
        assert!(number("top", Some("0"), 10, 1..=MAX_TOP).is_err());
    }
}
