//! Lookup queries: the attribute keys CloudTrail's event history knows plus our extensions, time ranges,
//! and the reference semantics of a match (the linear filter every index must agree with).

use crate::{EventCategory, EventTime, IndexFields};

pub use crate::grammar::{Condition, IpNet, Pattern, QueryError, QueryProblem};

/// A lookup attribute key. The first eight are CloudTrail's `LookupAttributeKey`; the last four are
/// opentrail extensions that existing clients can already send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeKey {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
    SourceIpAddress,
    ErrorCode,
    UserAgent,
    AccountId,
    /// How the record arrived: its kind (`self-audit`, `ingest`, `channel`, `gateway`, `import`) or its detail
    /// (the principal ARN, channel ARN, gateway name or import source).
    Provenance,
}

impl AttributeKey {
    pub const ALL: [AttributeKey; 13] = [
        AttributeKey::EventId,
        AttributeKey::EventName,
        AttributeKey::ReadOnly,
        AttributeKey::Username,
        AttributeKey::ResourceType,
        AttributeKey::ResourceName,
        AttributeKey::EventSource,
        AttributeKey::AccessKeyId,
        AttributeKey::SourceIpAddress,
        AttributeKey::ErrorCode,
        AttributeKey::UserAgent,
        AttributeKey::AccountId,
        AttributeKey::Provenance,
    ];

    /// The wire name (`AttributeKey` in LookupEvents, `--attr KEY=` in the CLI).
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeKey::EventId => "EventId",
            AttributeKey::EventName => "EventName",
            AttributeKey::ReadOnly => "ReadOnly",
            AttributeKey::Username => "Username",
            AttributeKey::ResourceType => "ResourceType",
            AttributeKey::ResourceName => "ResourceName",
            AttributeKey::EventSource => "EventSource",
            AttributeKey::AccessKeyId => "AccessKeyId",
            AttributeKey::SourceIpAddress => "SourceIPAddress",
            AttributeKey::ErrorCode => "ErrorCode",
            AttributeKey::UserAgent => "UserAgent",
            AttributeKey::AccountId => "AccountId",
            AttributeKey::Provenance => "Provenance",
        }
    }

    /// Parses a wire name. Keys are case sensitive, as in CloudTrail.
    pub fn parse(s: &str) -> Option<AttributeKey> {
        AttributeKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A stable one-byte tag, used in index keys and cursors. Never renumber.
    pub fn tag(self) -> u8 {
        self as u8 + 1
    }

    /// The values of this attribute in a record (several for resources and accounts; none when absent).
    pub fn values(self, f: &IndexFields) -> Vec<&str> {
        fn one(v: &Option<String>) -> Vec<&str> {
            v.as_deref().into_iter().collect()
        }
        match self {
            AttributeKey::EventId => vec![f.event_id.as_str()],
            AttributeKey::EventName => vec![f.event_name.as_str()],
            AttributeKey::ReadOnly => match f.read_only {
                Some(true) => vec!["true"],
                Some(false) => vec!["false"],
                None => vec![],
            },
            AttributeKey::Username => one(&f.username),
            AttributeKey::ResourceType => {
                let mut v: Vec<&str> = f.resources.iter().filter_map(|r| r.resource_type.as_deref()).collect();
                v.sort_unstable();
                v.dedup();
                v
            }
            AttributeKey::ResourceName => {
                // Both the full ARN and its short name (`Mary` for `…:user/Mary`) find the event.
                let mut v: Vec<&str> = Vec::new();
                for r in &f.resources {
                    v.extend(r.arn.as_deref());
                    v.extend(r.short_name());
                }
                v.sort_unstable();
                v.dedup();
                v
            }
            AttributeKey::EventSource => vec![f.event_source.as_str()],
            AttributeKey::AccessKeyId => one(&f.access_key_id),
            AttributeKey::SourceIpAddress => one(&f.source_ip),
            AttributeKey::ErrorCode => one(&f.error_code),
            AttributeKey::UserAgent => one(&f.user_agent),
            AttributeKey::AccountId => f.account_ids.iter().map(String::as_str).collect(),
            // The kind and the detail are two values: `Provenance=ingest` finds every ingested record, and a
            // lookup of `ingest:<arn>` is the AND of both (see `Provenance::lookup_terms`).
            AttributeKey::Provenance => {
                [Some(f.provenance.kind()), f.provenance.detail()].into_iter().flatten().collect()
            }
        }
    }
}

impl std::fmt::Display for AttributeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the history a lookup searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QueryCategory {
    /// Everything but Insights events (CloudTrail's default).
    #[default]
    Standard,
    /// Only Insights events (`EventCategory=insight`).
    Insight,
}

impl QueryCategory {
    pub fn includes(self, c: EventCategory) -> bool {
        matches!(
            (self, c),
            (QueryCategory::Standard, EventCategory::Standard) | (QueryCategory::Insight, EventCategory::Insight)
        )
    }
}

/// A lookup: conditions AND-ed together, an inclusive time range, a category.
/// Results are ordered newest first: by event time descending, then by sequence number descending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventQuery {
    pub conditions: Vec<Condition>,
    /// Inclusive lower bound.
    pub start: Option<EventTime>,
    /// Inclusive upper bound.
    pub end: Option<EventTime>,
    pub category: QueryCategory,
}

impl EventQuery {
    /// A query of exact equalities AND-ed, one condition per pair (the form CloudTrail's own API knows).
    pub fn equal<V: Into<String>>(pairs: impl IntoIterator<Item = (AttributeKey, V)>) -> EventQuery {
        EventQuery {
            conditions: pairs.into_iter().map(|(k, v)| Condition::equals(k, v)).collect(),
            ..Default::default()
        }
    }

    /// The reference semantics: does this record match? Every index implementation must agree with it.
    pub fn matches(&self, f: &IndexFields) -> bool {
        self.category.includes(f.category)
            && self.start.is_none_or(|s| f.event_time >= s)
            && self.end.is_none_or(|e| f.event_time <= e)
            && self.conditions.iter().all(|c| c.matches(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;

    #[test]
    fn keys_round_trip_and_tags_are_distinct() {
        let mut tags: Vec<u8> = AttributeKey::ALL.iter().map(|k| k.tag()).collect();
        for k in AttributeKey::ALL {
            assert_eq!(AttributeKey::parse(k.as_str()), Some(k));
        }
        tags.dedup();
        assert_eq!(tags.len(), 13);
        assert_eq!(AttributeKey::parse("eventname"), None);
    }

    #[test]
    fn and_of_attributes_and_time_range() {
        let r = Record::parse(
            br#"{"eventID":"e1","eventTime":"2020-01-01T09:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","userIdentity":{"type":"IAMUser","userName":"John"},"resources":[{"ARN":"arn:aws:iam::1:user/Mary","type":"AWS::IAM::User"}]}"#,
            || unreachable!(),
        )
        .unwrap();
        let t = r.fields.event_time;
        let mut q = EventQuery {
            conditions: vec![
                Condition::equals(AttributeKey::EventName, "CreateUser"),
                Condition::equals(AttributeKey::Username, "John"),
            ],
            start: Some(t),
            end: Some(t),
            ..Default::default()
        };
        assert!(q.matches(&r.fields));
        q.conditions.push(Condition::equals(AttributeKey::ResourceName, "Mary"));
        assert!(q.matches(&r.fields));
        q.conditions.push(Condition::equals(AttributeKey::ReadOnly, "false"));
        assert!(!q.matches(&r.fields), "readOnly is absent so it matches neither value");
        q.conditions.pop();
        q.end = Some(EventTime(t.0 - 1));
        assert!(!q.matches(&r.fields));
        q.end = None;
        q.category = QueryCategory::Insight;
        assert!(!q.matches(&r.fields));
    }
}
