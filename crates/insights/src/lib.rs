//! CloudTrail Insights, the detector: unusual API call rates and error rates, found in minutes from a stream of
//! calls, with a false-alarm budget instead of hand-tuned thresholds. Pure: no I/O, no clock (time is the
//! calls' `eventTime` and what `Detector::advance_clock` is told).
//!
//! Two front ends share one core (`model`): `Detector`, keyed per API as AWS keys Insights, fed calls; and
//! `series::run_series`, one numeric series of any regular interval, fed rows. The model, its parameters and
//! the threshold arithmetic are documented in `docs/insights.md`.

mod detector;
pub mod eval;
mod math;
mod model;
pub mod series;

use serde::{Deserialize, Serialize};

pub use detector::{Detector, DetectorStats};

/// One call, as the caller parsed it from a record. The caller already filtered to the trail's scope
/// (management events of the Regions the trail covers, not Insights records themselves).
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// eventTime, ms since the Unix epoch.
    pub time_ms: i64,
    pub region: &'a str,
    pub event_source: &'a str,
    pub event_name: &'a str,
    /// Call-rate Insights use write calls only (readOnly false); error-rate Insights use both.
    pub read_only: bool,
    pub error_code: Option<&'a str>,
    /// userIdentity.arn
    pub identity_arn: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InsightType {
    ApiCallRate,
    ApiErrorRate,
}

impl InsightType {
    /// The `insightType` of the record (and of PutInsightSelectors).
    pub fn as_str(self) -> &'static str {
        match self {
            InsightType::ApiCallRate => "ApiCallRateInsight",
            InsightType::ApiErrorRate => "ApiErrorRateInsight",
        }
    }
}

/// What a trail's insight selectors ask for, and how sensitive the detector is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub call_rate: bool,
    pub error_rate: bool,
    /// The false-alarm budget: expected false Insights per API per week at which thresholds are set. The
    /// issue's budget is ≤ 1; the default spends a quarter of it, the rest is the margin for the model's own
    /// error (real traffic is never exactly negative binomial). This is the per-trail "sensitivity" extension:
    /// larger is more sensitive.
    pub false_alarms_per_week: f64,
    /// Allowed lateness of the event-time watermark, in minutes: a minute closes once an event this much later
    /// than its end has been seen (or the clock says so).
    pub allowed_lateness_minutes: u32,
}

/// Default false-alarm budget: expected false Insights per API per week (see `Settings`).
pub const DEFAULT_FALSE_ALARMS_PER_WEEK: f64 = 0.25;
/// Default allowed lateness of the watermark, minutes.
pub const DEFAULT_ALLOWED_LATENESS_MINUTES: u32 = 1;

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            call_rate: true,
            error_rate: true,
            false_alarms_per_week: DEFAULT_FALSE_ALARMS_PER_WEEK,
            allowed_lateness_minutes: DEFAULT_ALLOWED_LATENESS_MINUTES,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InsightState {
    Start,
    End,
}

impl InsightState {
    pub fn as_str(self) -> &'static str {
        match self {
            InsightState::Start => "Start",
            InsightState::End => "End",
        }
    }
}

/// One Insights event (a Start or an End), with what the record's `insightDetails` needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// The same for Start and End; deterministic from (type, key, start minute), so a re-run over the same
    /// events gives the same ids.
    pub shared_id: String,
    pub state: InsightState,
    pub insight_type: InsightType,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    /// The error-rate key's errorCode (None for call rate).
    pub error_code: Option<String>,
    /// Minute-aligned: the Insight's first unusual minute (Start) or the minute after its last one (End).
    pub event_time_ms: i64,
    /// Calls (or errors of the code) per minute over the baseline period (§5.1 of the wire reference).
    pub baseline_average: f64,
    /// Start: the rate from the first unusual minute to detection; End: the average over the whole Insight.
    pub insight_average: f64,
    /// Start: minutes from the first unusual minute through the detecting one; End: the whole Insight.
    pub insight_duration_minutes: u64,
    /// The baseline period: the key's history in whole days, capped at 7 days (less while warming up).
    pub baseline_duration_minutes: u64,
    pub attributions: Vec<Attribution>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttributeKind {
    UserIdentityArn,
    UserAgent,
    ErrorCode,
}

impl AttributeKind {
    /// The record's `attribute` value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeKind::UserIdentityArn => "userIdentityArn",
            AttributeKind::UserAgent => "userAgent",
            AttributeKind::ErrorCode => "errorCode",
        }
    }
}

/// Top values of one attribute during the Insight and in the baseline, at most five each, descending by
/// average (per minute). A missing value is the string `"null"`, as CloudTrail writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub attribute: AttributeKind,
    pub insight: Vec<(String, f64)>,
    pub baseline: Vec<(String, f64)>,
}
