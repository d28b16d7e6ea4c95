//! The three ways CloudTrail's integrity files spell a UTC instant: `2015-08-17T15:01:31Z` in digests,
//! `20150817T150131Z` in digest names, `20150817T1501Z` in log file names, plus the `YYYY/MM/DD` folders.

use chrono::{DateTime, NaiveDateTime, Utc};
use model::EventTime;

fn datetime(t: EventTime) -> DateTime<Utc> {
    // Out-of-range instants (beyond year 262 143) cannot come from a clock; clamp rather than panic.
    DateTime::from_timestamp_millis(t.0).unwrap_or(if t.0 < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ`, truncated to the second (digest times, the CLI's summary dates).
pub fn iso_seconds(t: EventTime) -> String {
    datetime(t).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_iso_seconds(s: &str) -> Option<EventTime> {
    if s.len() != 20 {
        return None;
    }
    let n = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ").ok()?;
    Some(EventTime(n.and_utc().timestamp_millis()))
}

/// `YYYYMMDDTHHMMSSZ` (digest file names).
pub fn compact_seconds(t: EventTime) -> String {
    datetime(t).format("%Y%m%dT%H%M%SZ").to_string()
}

/// Parses exactly `YYYYMMDDTHHMMSSZ`.
pub fn parse_compact_seconds(s: &str) -> Option<EventTime> {
    if s.len() != 16 {
        return None;
    }
    let n = NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok()?;
    Some(EventTime(n.and_utc().timestamp_millis()))
}

/// `YYYYMMDDTHHmmZ` (log file names, to the minute).
pub fn compact_minutes(t: EventTime) -> String {
    datetime(t).format("%Y%m%dT%H%MZ").to_string()
}

/// Parses exactly `YYYYMMDDTHHmmZ`.
pub fn parse_compact_minutes(s: &str) -> Option<EventTime> {
    if s.len() != 14 {
        return None;
    }
    let n = NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%MZ").ok()?;
    Some(EventTime(n.and_utc().timestamp_millis()))
}

/// `YYYY/MM/DD`, the date folders of both layouts.
pub fn date_folders(t: EventTime) -> String {
    datetime(t).format("%Y/%m/%d").to_string()
}

/// `t` truncated to the whole second.
pub fn floor_second(t: EventTime) -> EventTime {
    EventTime(t.0.div_euclid(1000) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: EventTime = EventTime(1_439_823_691_789); // 2015-08-17T15:01:31.789Z

    #[test]
    fn the_three_spellings_round_trip_to_their_precision() {
        assert_eq!(iso_seconds(T), "2015-08-17T15:01:31Z");
        assert_eq!(compact_seconds(T), "20150817T150131Z");
        assert_eq!(compact_minutes(T), "20150817T1501Z");
        assert_eq!(date_folders(T), "2015/08/17");
        assert_eq!(parse_iso_seconds("2015-08-17T15:01:31Z"), Some(floor_second(T)));
        assert_eq!(parse_compact_seconds("20150817T150131Z"), Some(floor_second(T)));
        assert_eq!(parse_compact_minutes("20150817T1501Z"), Some(EventTime(1_439_823_660_000)));
    }

    #[test]
    fn near_misses_do_not_parse() {
        assert_eq!(parse_iso_seconds("2015-08-17T15:01:31"), None);
        assert_eq!(parse_iso_seconds("2015-08-17T15:01:31.000Z"), None);
        assert_eq!(parse_compact_seconds("20150817T150131"), None);
        assert_eq!(parse_compact_seconds("20150817T156131Z"), None);
        assert_eq!(parse_compact_minutes("20150817T150Z"), None);
    }
}
