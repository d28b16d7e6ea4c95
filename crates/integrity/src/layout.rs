//! Object keys of CloudTrail's delivered files (reference §5, §7.1), both ways: the keys a trail writes, the
//! parsers the validator reads them back with, and the listing prefixes the aws CLI uses.
//!
//! ```text
//! [<prefix>/]AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 alnum>.json.gz
//! [<prefix>/]AWSLogs/<account>/CloudTrail-Insight/<region>/<YYYY>/<MM>/<DD>/<account>_CloudTrail-Insight_<region>_<YYYYMMDDTHHmmZ>_<16 alnum>.json.gz
//! [<prefix>/]AWSLogs/<account>/CloudTrail-Digest/<region>/<YYYY>/<MM>/<DD>/<account>_CloudTrail-Digest_<region>_<trail>_<home-region>_<YYYYMMDDTHHMMSSZ>.json.gz
//! ```
//! Log file times are the delivery minute; digest times are the digest's end, to the second.

use model::EventTime;

use crate::time;

const SUFFIX: &str = ".json.gz";

/// `<prefix>/` when the trail has a non-empty prefix, else nothing (the CLI's rule; a prefix is kept verbatim).
fn prefix_part(prefix: Option<&str>) -> String {
    match prefix {
        Some(p) if !p.is_empty() => format!("{p}/"),
        _ => String::new(),
    }
}

/// Where a trail's log files for `region` live: `[<prefix>/]AWSLogs/<account>/CloudTrail/<region>/`.
pub fn log_list_prefix(prefix: Option<&str>, account: &str, region: &str) -> String {
    format!("{}AWSLogs/{account}/CloudTrail/{region}/", prefix_part(prefix))
}

/// What the aws CLI lists digests under: `[<prefix>/]AWSLogs/<account>/CloudTrail-Digest/<region>` (no
/// trailing slash, exactly as validate-logs sends it).
pub fn digest_list_prefix(prefix: Option<&str>, account: &str, region: &str) -> String {
    format!("{}AWSLogs/{account}/CloudTrail-Digest/{region}", prefix_part(prefix))
}

/// Which records a log file holds: everything a trail logs, or its Insights events (reference §5: a folder of
/// their own, `CloudTrail-Insight/`, and by analogy the same word in the file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum LogKind {
    #[default]
    Events,
    Insights,
}

impl LogKind {
    /// The folder and file-name word: `CloudTrail` or `CloudTrail-Insight`.
    pub fn word(self) -> &'static str {
        match self {
            LogKind::Events => "CloudTrail",
            LogKind::Insights => "CloudTrail-Insight",
        }
    }
}

/// A log file's name parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileKey {
    pub kind: LogKind,
    pub prefix: Option<String>,
    pub account: String,
    pub region: String,
    /// Delivery time; only the minute is in the key.
    pub delivered: EventTime,
    /// 16 characters of `[A-Za-z0-9]`, no meaning.
    pub unique: String,
}

impl LogFileKey {
    pub fn to_key(&self) -> String {
        let (region, account, word) = (&self.region, &self.account, self.kind.word());
        format!(
            "{}AWSLogs/{account}/{word}/{region}/{}/{account}_{word}_{region}_{}_{}{SUFFIX}",
            prefix_part(self.prefix.as_deref()),
            time::date_folders(self.delivered),
            time::compact_minutes(self.delivered),
            self.unique
        )
    }

    /// Parses a log file key of either kind (any prefix); `delivered` comes back truncated to the minute.
    pub fn parse(key: &str) -> Option<LogFileKey> {
        [LogKind::Events, LogKind::Insights].into_iter().find_map(|kind| Self::parse_kind(key, kind))
    }

    fn parse_kind(key: &str, kind: LogKind) -> Option<LogFileKey> {
        let word = kind.word();
        let (prefix, rest) = split_prefix(key, &format!("/{word}/"))?;
        let (account, region, date, name) = split_folders(rest, word)?;
        let stem = name.strip_suffix(SUFFIX)?;
        let stem = stem.strip_prefix(&format!("{account}_{word}_{region}_"))?;
        let (stamp, unique) = stem.split_once('_')?;
        let delivered = time::parse_compact_minutes(stamp)?;
        if unique.len() != 16
            || !unique.bytes().all(|b| b.is_ascii_alphanumeric())
            || time::date_folders(delivered) != date
        {
            return None;
        }
        Some(LogFileKey {
            kind,
            prefix,
            account: account.into(),
            region: region.into(),
            delivered,
            unique: unique.into(),
        })
    }
}

/// A digest file's name parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestKey {
    pub prefix: Option<String>,
    pub account: String,
    /// The Region the digest was delivered from.
    pub region: String,
    pub trail: String,
    pub home_region: String,
    /// The digest's `digestEndTime`; only the second is in the key.
    pub end: EventTime,
}

impl DigestKey {
    pub fn to_key(&self) -> String {
        let (region, account) = (&self.region, &self.account);
        format!(
            "{}AWSLogs/{account}/CloudTrail-Digest/{region}/{}/{account}_CloudTrail-Digest_{region}_{}_{}_{}{SUFFIX}",
            prefix_part(self.prefix.as_deref()),
            time::date_folders(self.end),
            self.trail,
            self.home_region,
            time::compact_seconds(self.end)
        )
    }

    /// Parses a standard (not backfill) digest key. Trail names may hold `_`; account and Regions cannot,
    /// so the trail is what lies between the Region and the last two fields.
    pub fn parse(key: &str) -> Option<DigestKey> {
        let (prefix, rest) = split_prefix(key, "/CloudTrail-Digest/")?;
        let (account, region, date, name) = split_folders(rest, "CloudTrail-Digest")?;
        let stem = name.strip_suffix(SUFFIX)?;
        let stem = stem.strip_prefix(&format!("{account}_CloudTrail-Digest_{region}_"))?;
        let (stem, stamp) = stem.rsplit_once('_')?;
        let (trail, home_region) = stem.rsplit_once('_')?;
        let end = time::parse_compact_seconds(stamp)?;
        if trail.is_empty() || home_region.is_empty() || time::date_folders(end) != date {
            return None;
        }
        Some(DigestKey {
            prefix,
            account: account.into(),
            region: region.into(),
            trail: trail.into(),
            home_region: home_region.into(),
            end,
        })
    }
}

/// Splits `[<prefix>/]AWSLogs/…` at the last `AWSLogs/` that is followed by `<account><marker>`.
fn split_prefix<'a>(key: &'a str, marker: &str) -> Option<(Option<String>, &'a str)> {
    let marker_at = key.rfind(marker)?;
    let logs_at = key[..marker_at].rfind("AWSLogs/")?;
    let prefix = match &key[..logs_at] {
        "" => None,
        p => Some(p.strip_suffix('/')?.to_string()),
    };
    Some((prefix, &key[logs_at + "AWSLogs/".len()..]))
}

/// `<account>/<kind>/<region>/<YYYY>/<MM>/<DD>/<name>` → (account, region, "YYYY/MM/DD", name).
fn split_folders<'a>(rest: &'a str, kind: &str) -> Option<(&'a str, &'a str, &'a str, &'a str)> {
    let (account, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix(kind)?.strip_prefix('/')?;
    let (region, rest) = rest.split_once('/')?;
    if rest.len() < 11 || !rest.is_char_boundary(10) {
        return None;
    }
    let (date, name) = (&rest[..10], rest[10..].strip_prefix('/')?);
    if account.is_empty() || region.is_empty() || region.contains('_') || account.contains('_') || name.contains('/') {
        return None;
    }
    Some((account, region, date, name))
}

/// 16 characters of `[A-Za-z0-9]` from 16 random bytes the caller draws (a log file's unique name part).
pub fn unique_name(random: [u8; 16]) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // The modulo bias (256 % 62 = 8) does not matter: the name only has to be unlikely to collide.
    random.iter().map(|&b| ALPHABET[b as usize % 62] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn log_file_key_matches_the_documented_example() {
        let key = LogFileKey {
            kind: LogKind::Events,
            prefix: None,
            account: "111122223333".into(),
            region: "us-east-2".into(),
            delivered: time::parse_compact_minutes("20150801T0210Z").unwrap(),
            unique: "Mu0KsOhtH1ar15ZZ".into(),
        };
        let s = key.to_key();
        assert_eq!(
            s,
            "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz"
        );
        assert_eq!(LogFileKey::parse(&s), Some(key.clone()));
        let insight = LogFileKey { kind: LogKind::Insights, ..key };
        let s = insight.to_key();
        assert_eq!(
            s,
            "AWSLogs/111122223333/CloudTrail-Insight/us-east-2/2015/08/01/111122223333_CloudTrail-Insight_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz"
        );
        assert_eq!(LogFileKey::parse(&s), Some(insight));
    }

    #[test]
    fn digest_key_names_the_end_second_and_both_regions() {
        let key = DigestKey {
            prefix: Some("audit/x".into()),
            account: "123456789012".into(),
            region: "us-west-2".into(),
            trail: "my_trail.v2".into(),
            home_region: "us-east-1".into(),
            end: time::parse_iso_seconds("2015-08-17T15:01:31Z").unwrap(),
        };
        let s = key.to_key();
        assert_eq!(
            s,
            "audit/x/AWSLogs/123456789012/CloudTrail-Digest/us-west-2/2015/08/17/123456789012_CloudTrail-Digest_us-west-2_my_trail.v2_us-east-1_20150817T150131Z.json.gz"
        );
        // The CLI reads the timestamp as key[-24:-8].
        assert_eq!(&s[s.len() - 24..s.len() - 8], "20150817T150131Z");
        assert_eq!(DigestKey::parse(&s), Some(key));
        assert!(s.starts_with(&digest_list_prefix(Some("audit/x"), "123456789012", "us-west-2")));
    }

    #[test]
    fn foreign_and_mangled_keys_do_not_parse() {
        let good = "AWSLogs/1/CloudTrail-Digest/r/2015/08/17/1_CloudTrail-Digest_r_t_h_20150817T150131Z.json.gz";
        assert!(DigestKey::parse(good).is_some());
        for bad in [
            "AWSLogs/1/CloudTrail-Digest/r/2015/08/18/1_CloudTrail-Digest_r_t_h_20150817T150131Z.json.gz",
            "AWSLogs/1/CloudTrail-Digest/r/2015/08/17/2_CloudTrail-Digest_r_t_h_20150817T150131Z.json.gz",
            "AWSLogs/1/CloudTrail-Digest/r/2015/08/17/1_CloudTrail-Digest_r_t_h_20150817T150131Z_backfill.json.gz",
            "AWSLogs/1/CloudTrail-Digest/r/2015/08/17/1_CloudTrail-Digest_r_th_20150817T150131Z.json.gz",
            "AWSLogs/1/CloudTrail-Digest/r/2015/08/17/1_CloudTrail-Digest_r_t_h_20150817T150131Z.json",
            "AWSLogs/1/CloudTrail/r/2015/08/17/1_CloudTrail_r_20150817T1501Z_short.json.gz",
            "",
        ] {
            assert_eq!(DigestKey::parse(bad), None, "{bad}");
            assert_eq!(LogFileKey::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn keys_round_trip(
            prefix in proptest::option::of("[a-z0-9/_-]{1,12}[a-z0-9]"),
            account in "[0-9]{12}",
            region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
            trail in "[A-Za-z0-9][A-Za-z0-9._-]{1,20}[A-Za-z0-9]",
            secs in 0i64..4_102_444_800,
            random in any::<[u8; 16]>(),
            insights in any::<bool>(),
        ) {
            let log = LogFileKey {
                kind: if insights { LogKind::Insights } else { LogKind::Events },
                prefix: prefix.clone(), account: account.clone(), region: region.clone(),
                delivered: EventTime(secs / 60 * 60_000), unique: unique_name(random),
            };
            prop_assert_eq!(LogFileKey::parse(&log.to_key()), Some(log));
            let digest = DigestKey {
                prefix, account, region: region.clone(), trail, home_region: region, end: EventTime(secs * 1000),
            };
            prop_assert_eq!(DigestKey::parse(&digest.to_key()), Some(digest));
        }
    }
}
