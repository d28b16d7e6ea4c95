//! Timestamps as CloudTrail writes them in responseElements: AWS's Java services print dates with
//! `MMM d, yyyy, h:mm:ss a` in UTC (IAM `createDate`, STS `expiration`, KMS `creationDate`); EC2 writes epoch
//! milliseconds. chrono for the calendar; no clock.

use chrono::{DateTime, NaiveDateTime, Utc};

/// `2014-03-24T21:11:59Z`, `2014-03-24T21:11:59.123Z`, `…+00:00`, and the same without a zone (UTC) or with a
/// space for the `T` → epoch milliseconds.
pub(crate) fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    let local = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(local, f).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

/// Epoch milliseconds → `Mar 24, 2014, 9:11:59 PM` (UTC).
pub(crate) fn java_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%b %-d, %Y, %-I:%M:%S %p").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_iso_times_the_java_way() {
        let ms = parse_iso8601("2014-03-24T21:11:59Z").expect("parses");
        assert_eq!(java_date(ms), "Mar 24, 2014, 9:11:59 PM");
        assert_eq!(parse_iso8601("2014-11-05T21:35:28.000Z"), Some(1_415_223_328_000));
        assert_eq!(java_date(parse_iso8601("2020-01-01T00:05:00+00:00").expect("parses")), "Jan 1, 2020, 12:05:00 AM");
        assert_eq!(parse_iso8601("yesterday"), None);
        assert_eq!(parse_iso8601("2020-13-01T00:00:00Z"), None);
    }
}
