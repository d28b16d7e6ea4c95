//! LookupEvents' request shape and its conversion into an [`EventQuery`] page request, each rule failing
//! with the error CloudTrail names for it.

use model::{AttributeKey, Condition, EventQuery, EventTime, QueryCategory};
use serde::Deserialize;

use super::{AttributeProblem, Timestamp, WireError};
use crate::lookup::{LookupRequest, MAX_RESULTS, decode_token};

/// Hard-coded by the CloudTrail API model: `AttributeValue` is 1..2000 characters.
const MAX_ATTRIBUTE_VALUE_CHARS: usize = 2000;

/// LookupEvents.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LookupEventsRequest {
    lookup_attributes: Option<Vec<LookupAttribute>>,
    start_time: Option<Timestamp>,
    end_time: Option<Timestamp>,
    event_category: Option<String>,
    /// A number of any kind: one out of range is `InvalidMaxResultsException`, not a type error.
    max_results: Option<serde_json::Number>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LookupAttribute {
    attribute_key: Option<String>,
    attribute_value: Option<String>,
}

impl LookupEventsRequest {
    /// The validated request; `window_start` (the `lookup_window_days` policy) clamps the start;
    /// `MaxResults` may be 1..=`max_results` (CloudTrail's 50, or the native API's larger pages).
    pub fn into_lookup(self, window_start: Option<EventTime>, max_results: usize) -> Result<LookupRequest, WireError> {
        let category = match self.event_category.as_deref() {
            None | Some("management") => QueryCategory::Standard,
            Some("insight") => QueryCategory::Insight,
            Some(other) => return Err(WireError::EventCategory { given: other.to_string() }),
        };
        let mut conditions = Vec::new();
        for (index, a) in self.lookup_attributes.unwrap_or_default().into_iter().enumerate() {
            let invalid = |problem| WireError::LookupAttribute { index, problem };
            conditions.push(a.condition(category).map_err(invalid)?);
        }
        // A key repeated is an OR of its values; different keys are AND-ed.
        let conditions = Condition::merge(conditions);
        let (start, end) = (self.start_time.map(|t| t.0), self.end_time.map(|t| t.0));
        if let (Some(start), Some(end)) = (start, end)
            && start > end
        {
            return Err(WireError::TimeRange { start, end });
        }
        let start = match (start, window_start) {
            (Some(s), Some(w)) => Some(s.max(w)),
            (s, w) => s.or(w),
        };
        let cap = max_results;
        let max_results = match self.max_results {
            None => MAX_RESULTS.min(cap),
            Some(n) => match n.as_i64() {
                Some(m) if (1..=cap as i64).contains(&m) => m as usize,
                _ => return Err(WireError::MaxResults { given: n, max: cap }),
            },
        };
        let query = EventQuery { conditions, start, end, category };
        // A token is tied to the parameters it was issued for, the clamped start included.
        let after = match self.next_token.as_deref() {
            None | Some("") => None,
            Some(t) => Some(decode_token(t, &query)?),
        };
        Ok(LookupRequest { query, max_results, after })
    }
}

impl LookupAttribute {
    /// The condition this attribute states: its value in the lookup grammar's one-pattern form
    /// (`[!]value`, a trailing `*` a prefix, a CIDR block for SourceIPAddress; README, "Query grammar").
    fn condition(self, category: QueryCategory) -> Result<Condition, AttributeProblem> {
        let key = self.attribute_key.ok_or(AttributeProblem::KeyMissing)?;
        let key = AttributeKey::parse(&key).ok_or(AttributeProblem::UnknownKey { key })?;
        let value = self.attribute_value.ok_or(AttributeProblem::ValueMissing)?;
        let chars = value.chars().count();
        if chars == 0 || chars > MAX_ATTRIBUTE_VALUE_CHARS {
            return Err(AttributeProblem::ValueLength { max: MAX_ATTRIBUTE_VALUE_CHARS });
        }
        if category == QueryCategory::Insight
            && !matches!(key, AttributeKey::EventId | AttributeKey::EventName | AttributeKey::EventSource)
        {
            return Err(AttributeProblem::NotForInsights { key });
        }
        Condition::parse_lookup_value(key, &value).map_err(AttributeProblem::Grammar)
    }
}
