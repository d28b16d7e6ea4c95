//! Event time: UTC instants with millisecond precision, parsed liberally, printed as CloudTrail prints them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// A UTC instant in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct EventTime(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not a valid time: expected ISO-8601 such as 2020-01-01T09:00:00Z or epoch seconds")]
pub struct TimeError {
    pub input: String,
}

impl EventTime {
    pub const MIN: EventTime = EventTime(i64::MIN);
    pub const MAX: EventTime = EventTime(i64::MAX);

    pub fn from_millis(ms: i64) -> Self {
        EventTime(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Epoch seconds, possibly fractional, as the AWS JSON protocol carries timestamps.
    pub fn from_epoch_seconds_f64(secs: f64) -> Option<Self> {
        if !secs.is_finite() || secs.abs() > 9.0e15 / 1000.0 {
            return None;
        }
        Some(EventTime((secs * 1000.0).round() as i64))
    }

    pub fn epoch_seconds_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Parses the shapes real records and users use, always as UTC when no zone is given:
    /// `2020-01-01T09:00:00Z`, `2020-01-01T09:00:00.123+02:00`, `2020-01-01 09:00:00`,
    /// `2020-01-01T09:00:00`, `2020-01-01`, and compact `20200101T090000Z`.
    pub fn parse(input: &str) -> Result<Self, TimeError> {
        let s = input.trim();
        let err = || TimeError { input: input.to_string() };
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(Self::from_utc(dt.with_timezone(&Utc)));
        }
        // RFC 3339 with a space instead of `T` and an explicit zone.
        if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
            return Ok(Self::from_utc(dt.with_timezone(&Utc)));
        }
        let naive = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')).unwrap_or(s);
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y%m%dT%H%M%S", "%Y-%m-%dT%H:%M"] {
            if let Ok(n) = NaiveDateTime::parse_from_str(naive, fmt) {
                return Ok(Self::from_utc(Utc.from_utc_datetime(&n)));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(naive, "%Y-%m-%d") {
            let n = d.and_hms_opt(0, 0, 0).ok_or_else(err)?;
            return Ok(Self::from_utc(Utc.from_utc_datetime(&n)));
        }
        Err(err())
    }

    /// Like [`EventTime::parse`], and also integer or fractional epoch seconds, and epoch milliseconds: an
    /// integer of 12 digits or more (epoch seconds that large are after the year 5000).
    pub fn parse_flexible(input: &str) -> Result<Self, TimeError> {
        let s = input.trim();
        if s.len() >= EPOCH_MS_MIN_DIGITS
            && s.bytes().all(|b| b.is_ascii_digit())
            && let Ok(ms) = s.parse::<i64>()
        {
            return Ok(EventTime(ms));
        }
        if !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            && let Ok(secs) = s.parse::<f64>()
        {
            return Self::from_epoch_seconds_f64(secs).ok_or(TimeError { input: input.to_string() });
        }
        Self::parse(s)
    }

    fn from_utc(dt: DateTime<Utc>) -> Self {
        EventTime(dt.timestamp_millis())
    }

    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }

    /// `2020-01-01T09:00:00Z`, as CloudTrail writes `eventTime` (milliseconds only when present).
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(dt) if self.0 % 1000 == 0 => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            None => self.0.to_string(),
        }
    }
}

/// Hard-coded: an all-digit time this long is epoch milliseconds, shorter is epoch seconds.
const EPOCH_MS_MIN_DIGITS: usize = 12;

impl std::fmt::Display for EventTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        EventTime::parse_flexible(s).unwrap().0
    }

    #[test]
    fn parses_the_shapes_real_records_use() {
        let want = 1_577_869_200_000; // 2020-01-01T09:00:00Z
        assert_eq!(ms("2020-01-01T09:00:00Z"), want);
        assert_eq!(ms("2020-01-01 09:00:00"), want);
        assert_eq!(ms("2020-01-01T09:00:00"), want);
        assert_eq!(ms("2020-01-01T11:00:00+02:00"), want);
        assert_eq!(ms("20200101T090000Z"), want);
        assert_eq!(ms("1577869200"), want);
        assert_eq!(ms("1577869200.5"), want + 500);
        assert_eq!(ms("1577869200000"), want, "epoch milliseconds");
        assert_eq!(ms("1577869200250"), want + 250);
        assert_eq!(ms("2020-01-01T09:00:00.250Z"), want + 250);
        assert_eq!(ms("2020-01-01"), want - 9 * 3_600_000);
    }

    #[test]
    fn rejects_garbage_and_names_it() {
        let e = EventTime::parse("yesterday").unwrap_err();
        assert!(e.to_string().contains("'yesterday'"));
        assert!(EventTime::parse("2020-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn prints_like_cloudtrail() {
        assert_eq!(EventTime(1_577_869_200_000).to_rfc3339(), "2020-01-01T09:00:00Z");
        assert_eq!(EventTime(1_577_869_200_250).to_rfc3339(), "2020-01-01T09:00:00.250Z");
    }
}
