//! The facts of a record that trail selectors and Insights (and, later, event data store selectors) decide
//! on, read from the record's JSON without copying what needs no unescaping.
//!
//! Selectors (and Insights) look at more of a record than the event-history index does (`eventCategory`,
//! `eventType`, `userIdentity.arn`, `userAgent`, `resources[].type`, `sessionCredentialFromConsole`,
//! `vpcEndpointId`, `awsRegion`, `recipientAccountId`), so this is its own small parse rather than more
//! [`crate::IndexFields`].

use std::borrow::Cow;

use serde::Deserialize;

/// `(type, ARN)` of one `resources[]` entry.
pub type ResourceFacts<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

/// What selectors decide on. Strings borrow from the record text unless they contain escapes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFacts<'a> {
    /// `eventCategory` as CloudTrail spells it: `Management`, `Data`, `Insight`, `NetworkActivity`, … When the
    /// record has none (older records), `Insight` for `eventType` `AwsCloudTrailInsight`, `Data` when
    /// `managementEvent` is false, else `Management`.
    pub category: Cow<'a, str>,
    pub event_source: Option<Cow<'a, str>>,
    pub event_name: Option<Cow<'a, str>>,
    pub event_type: Option<Cow<'a, str>>,
    /// `readOnly` (a JSON boolean, or the strings "true"/"false" some writers use).
    pub read_only: Option<bool>,
    pub error_code: Option<Cow<'a, str>>,
    pub user_identity_arn: Option<Cow<'a, str>>,
    /// `userAgent` (Insights attribute the calls of an unusual minute to it).
    pub user_agent: Option<Cow<'a, str>>,
    /// `sessionCredentialFromConsole` as a string ("true"), whatever JSON type it came as.
    pub session_credential_from_console: Option<String>,
    pub vpc_endpoint_id: Option<Cow<'a, str>>,
    /// `(type, ARN)` of each `resources[]` entry.
    pub resources: Vec<ResourceFacts<'a>>,
    pub aws_region: Option<Cow<'a, str>>,
    pub recipient_account_id: Option<Cow<'a, str>>,
    /// `eventTime`, when present and readable.
    pub event_time: Option<crate::EventTime>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_category: Option<Cow<'a, str>>,
    #[serde(default)]
    management_event: Option<serde_json::Value>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_type: Option<Cow<'a, str>>,
    #[serde(default)]
    read_only: Option<serde_json::Value>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    error_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_identity: Option<RawIdentity<'a>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    user_agent: Option<Cow<'a, str>>,
    #[serde(default)]
    session_credential_from_console: Option<serde_json::Value>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    vpc_endpoint_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    resources: Option<Vec<RawResource<'a>>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_str")]
    event_time: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawIdentity<'a> {
    #[serde(borrow, default, deserialize_with = "opt_str")]
    arn: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawResource<'a> {
    #[serde(borrow, default, rename = "type", deserialize_with = "opt_str")]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "ARN", deserialize_with = "opt_str")]
    arn: Option<Cow<'a, str>>,
}

/// A string member, borrowed when it has no escapes; any other JSON type (or null) reads as absent, so an odd
/// record is selected on what it does have rather than refused (it was validated when it was stored).
fn opt_str<'de: 'a, 'a, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrOrOther<'b> {
        Str(#[serde(borrow)] Cow<'b, str>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<StrOrOther<'a>>::deserialize(d)? {
        Some(StrOrOther::Str(s)) => Some(s),
        _ => None,
    })
}

fn as_bool(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

impl<'a> EventFacts<'a> {
    /// Reads the facts of a stored record (a JSON object). Fails only when the text is not a JSON object.
    pub fn parse(json: &'a str) -> Result<EventFacts<'a>, serde_json::Error> {
        let raw: Raw<'a> = serde_json::from_str(json)?;
        let category = match raw.event_category {
            Some(c) => c,
            None if raw.event_type.as_deref() == Some("AwsCloudTrailInsight") => Cow::Borrowed("Insight"),
            None if raw.management_event.as_ref().and_then(as_bool) == Some(false) => Cow::Borrowed("Data"),
            None => Cow::Borrowed("Management"),
        };
        Ok(EventFacts {
            category,
            event_source: raw.event_source,
            event_name: raw.event_name,
            event_type: raw.event_type,
            read_only: raw.read_only.as_ref().and_then(as_bool),
            error_code: raw.error_code,
            user_identity_arn: raw.user_identity.and_then(|u| u.arn),
            user_agent: raw.user_agent,
            session_credential_from_console: raw.session_credential_from_console.and_then(|v| match v {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }),
            vpc_endpoint_id: raw.vpc_endpoint_id,
            resources: raw.resources.unwrap_or_default().into_iter().map(|r| (r.resource_type, r.arn)).collect(),
            aws_region: raw.aws_region,
            recipient_account_id: raw.recipient_account_id,
            event_time: raw.event_time.and_then(|t| crate::EventTime::parse(&t).ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_selector_fields_and_borrows_plain_strings() {
        let json = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/John"},
            "eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-1","readOnly":true,
            "resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k"},{"accountId":"1","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"}],
            "eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333",
            "eventCategory":"Data","sessionCredentialFromConsole":"true","vpcEndpointId":"vpce-1"}"#;
        let f = EventFacts::parse(json).unwrap();
        assert_eq!(f.category, "Data");
        assert!(matches!(f.event_source, Some(Cow::Borrowed("s3.amazonaws.com"))));
        assert_eq!(f.read_only, Some(true));
        assert_eq!(f.user_identity_arn.as_deref(), Some("arn:aws:iam::1:user/John"));
        assert_eq!(f.resources.len(), 2);
        assert_eq!(f.resources[1].0.as_deref(), Some("AWS::S3::Bucket"));
        assert_eq!(f.session_credential_from_console.as_deref(), Some("true"));
        assert_eq!(f.vpc_endpoint_id.as_deref(), Some("vpce-1"));
        assert_eq!(f.aws_region.as_deref(), Some("eu-west-1"));
        assert_eq!(f.recipient_account_id.as_deref(), Some("111122223333"));
        assert_eq!(f.event_time, None);
        let timed = EventFacts::parse(r#"{"eventTime":"2020-01-01T09:00:00Z"}"#).unwrap();
        assert_eq!(timed.event_time, crate::EventTime::parse("2020-01-01T09:00:00Z").ok());
    }

    #[test]
    fn category_defaults_follow_event_type_and_management_event() {
        let cat = |j: &str| EventFacts::parse(j).unwrap().category.into_owned();
        assert_eq!(cat(r#"{"eventName":"x"}"#), "Management");
        assert_eq!(cat(r#"{"managementEvent":false}"#), "Data");
        assert_eq!(cat(r#"{"eventType":"AwsCloudTrailInsight"}"#), "Insight");
        assert_eq!(cat(r#"{"eventCategory":"NetworkActivity","managementEvent":false}"#), "NetworkActivity");
    }

    #[test]
    fn odd_types_read_as_absent_and_escaped_strings_are_unescaped() {
        let f = EventFacts::parse(r#"{"eventName":42,"readOnly":"false","errorCode":"Access\u0044enied"}"#).unwrap();
        assert_eq!(f.event_name, None);
        assert_eq!(f.read_only, Some(false));
        assert_eq!(f.error_code.as_deref(), Some("AccessDenied"));
        assert!(EventFacts::parse("\"x\"").is_err());
    }
}
