//! PutAuditEvents' domain rules: checking an audit event (checksum, required fields, limits,
//! recipient), deriving its stable eventID, and mapping it into a stored CloudTrail record that the
//! event history can find.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use model::{EventTime, Record, RecordError};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::channels::Channel;

/// Hard-coded CloudTrail limits (PutAuditEvents): events per request and request body bytes.
pub const MAX_EVENTS_PER_REQUEST: usize = 100;
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// One audit event as the client sent it.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub id: &'a str,
    pub event_data: &'a str,
    pub checksum: Option<&'a str>,
}

/// Why one audit event was not stored; the rest of its request goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditEventError {
    #[error("eventDataChecksum does not match the SHA-256 of eventData")]
    ChecksumMismatch,
    #[error("eventData is missing the required field '{field}'")]
    MissingField { field: &'static str },
    #[error("eventData field '{field}' is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("eventData is not valid: {reason}")]
    Invalid { reason: String },
    #[error("recipientAccountId '{found}' is not the channel owner's account {expected}")]
    WrongRecipient { expected: String, found: String },
}

/// The server's secret for PutAuditEvents eventIDs, kept in `<data_dir>/event-id.key` (32 random bytes,
/// mode 0600), made at first start.
pub struct EventIdKey(aws_lc_rs::hmac::Key);

/// Hard-coded: the key file's name in the data dir.
const EVENT_ID_KEY_FILE: &str = "event-id.key";

impl EventIdKey {
    pub fn open(data_dir: &std::path::Path) -> std::io::Result<EventIdKey> {
        let path = data_dir.join(EVENT_ID_KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh: [u8; 32] = rand::random();
                atomic_file::write_atomic(&path, &fresh, 0o600).map_err(|e| e.source)?;
                fresh.to_vec()
            }
            Err(e) => return Err(e),
        };
        if bytes.len() != 32 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} must hold 32 bytes, found {}", path.display(), bytes.len()),
            ));
        }
        Ok(EventIdKey::from_bytes(&bytes))
    }

    pub fn from_bytes(secret: &[u8]) -> EventIdKey {
        EventIdKey(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret))
    }

    /// The eventID an audit event is stored under: a UUIDv8 made of HMAC-SHA-256(server secret, channel ARN,
    /// id). A retried event gets the same eventID, so the store's eventID dedupe keeps one copy; and no one
    /// without the secret can predict it, so no writer can take an eventID before the channel's event
    /// arrives and make that event look stored when it was not.
    pub fn event_id_for(&self, channel_arn: &str, audit_event_id: &str) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.0);
        ctx.update(channel_arn.as_bytes());
        // A separator that can occur in neither part keeps ("a:b", "c") and ("a", "b:c") apart.
        ctx.update(b"\n");
        ctx.update(audit_event_id.as_bytes());
        let tag = ctx.sign();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&tag.as_ref()[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
    }
}

/// base64(SHA-256(eventData)), the `eventDataChecksum` a client computes.
pub fn checksum_of(event_data: &str) -> String {
    BASE64.encode(digest(&SHA256, event_data.as_bytes()))
}

/// Checks one audit event against its channel and builds the record to store.
pub fn build_record(
    key: &EventIdKey,
    channel: &Channel,
    region: &str,
    event: &AuditEvent<'_>,
    now: EventTime,
) -> Result<Record, AuditEventError> {
    if let Some(sum) = event.checksum
        && sum.trim() != checksum_of(event.event_data)
    {
        return Err(AuditEventError::ChecksumMismatch);
    }
    let data: Map<String, Value> = match serde_json::from_str::<Value>(event.event_data) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(AuditEventError::Invalid { reason: "eventData must be a JSON object".into() }),
        Err(e) => return Err(AuditEventError::Invalid { reason: format!("eventData is not valid JSON: {e}") }),
    };
    let data = EventData(&data);
    data.required_str("version", 256)?;
    let identity = match data.0.get("userIdentity") {
        None | Some(Value::Null) => return Err(AuditEventError::MissingField { field: "userIdentity" }),
        Some(Value::Object(m)) => EventData(m),
        Some(_) => return Err(invalid_type("userIdentity", "an object")),
    };
    identity.required_str_as("type", "userIdentity.type", 128)?;
    identity.required_str_as("principalId", "userIdentity.principalId", 1024)?;
    let event_source = data.required_str("eventSource", 1024)?;
    let event_name = data.required_str("eventName", 1024)?;
    let time_text = data.required_str("eventTime", 256)?;
    let event_time = EventTime::parse(time_text).map_err(|_| AuditEventError::Invalid {
        reason: format!("eventTime '{time_text}' is not a UTC time such as 2024-01-01T09:00:00Z"),
    })?;
    data.required_str("UID", 1024)?;
    let recipient = data.required_str("recipientAccountId", 16)?;
    if recipient != channel.account_id {
        return Err(AuditEventError::WrongRecipient { expected: channel.account_id.clone(), found: recipient.into() });
    }
    let user_agent = data.optional_str("userAgent", 1024)?;
    let source_ip = data.optional_str("sourceIPAddress", 1024)?;
    data.optional_str("errorCode", 256)?;
    data.optional_str("errorMessage", 256)?;
    data.json_limit("requestParameters", 100 * 1024)?;
    data.json_limit("responseElements", 100 * 1024)?;
    data.json_limit("additionalEventData", 28 * 1024)?;

    let event_id = key.event_id_for(&channel.arn, event.id);
    // eventData is embedded byte for byte as sent (it was just validated as JSON).
    let raw = RawValue::from_string(event.event_data.trim().to_string())
        .map_err(|e| AuditEventError::Invalid { reason: e.to_string() })?;
    let mut top = Map::new();
    top.insert("eventVersion".into(), json!("1.11"));
    top.insert("eventCategory".into(), json!("ActivityAuditLog"));
    top.insert("eventType".into(), json!("ActivityLog"));
    top.insert("eventID".into(), json!(event_id));
    top.insert("eventTime".into(), json!(EventTime(event_time.0.div_euclid(1000) * 1000).to_rfc3339()));
    top.insert("awsRegion".into(), json!(region));
    top.insert("recipientAccountId".into(), json!(recipient));
    top.insert(
        "metadata".into(),
        json!({"ingestionTime": EventTime(now.0.div_euclid(1000) * 1000).to_rfc3339(), "channelARN": channel.arn}),
    );
    // Copies of eventData's who/what at the top level, where the event history indexes them.
    top.insert("eventSource".into(), json!(event_source));
    top.insert("eventName".into(), json!(event_name));
    top.insert("userIdentity".into(), Value::Object(identity.0.clone()));
    if let Some(ip) = source_ip {
        top.insert("sourceIPAddress".into(), json!(ip));
    }
    if let Some(ua) = user_agent {
        top.insert("userAgent".into(), json!(ua));
    }
    let head = Value::Object(top).to_string();
    // `head` is a non-empty object, so it ends with `}`: splice eventData in as its last member.
    let text = format!("{},\"eventData\":{}}}", &head[..head.len() - 1], raw.get());
    Record::parse(text.as_bytes(), || event_id.clone()).map_err(|e| match e {
        RecordError::TooLarge { max, .. } => AuditEventError::TooLong { field: "eventData", max },
        other => AuditEventError::Invalid { reason: other.to_string() },
    })
}

fn invalid_type(field: &str, expected: &str) -> AuditEventError {
    AuditEventError::Invalid { reason: format!("field '{field}' must be {expected}") }
}

struct EventData<'a>(&'a Map<String, Value>);

impl<'a> EventData<'a> {
    fn required_str(&self, key: &'static str, max: usize) -> Result<&'a str, AuditEventError> {
        self.required_str_as(key, key, max)
    }

    fn required_str_as(&self, key: &str, field: &'static str, max: usize) -> Result<&'a str, AuditEventError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Err(AuditEventError::MissingField { field }),
            Some(Value::String(s)) if s.is_empty() => Err(AuditEventError::MissingField { field }),
            Some(Value::String(s)) if s.chars().count() > max => Err(AuditEventError::TooLong { field, max }),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(invalid_type(field, "a string")),
        }
    }

    fn optional_str(&self, key: &'static str, max: usize) -> Result<Option<&'a str>, AuditEventError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max => Err(AuditEventError::TooLong { field: key, max }),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid_type(key, "a string")),
        }
    }

    /// Limits a free-form JSON member by its serialized size.
    fn json_limit(&self, key: &'static str, max: usize) -> Result<(), AuditEventError> {
        match self.0.get(key) {
            Some(v) if v.to_string().len() > max => Err(AuditEventError::TooLong { field: key, max }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::IngestionStatus;

    fn channel() -> Channel {
        Channel {
            id: "6f1d2c5e-0000-4000-8000-000000000001".into(),
            arn: "arn:aws:cloudtrail:us-east-1:123456789012:channel/6f1d2c5e-0000-4000-8000-000000000001".into(),
            name: "ch1".into(),
            source: "Custom".into(),
            destinations: vec![],
            tags: vec![],
            account_id: "123456789012".into(),
            created: EventTime(0),
            ingestion: IngestionStatus::default(),
        }
    }

    const DATA: &str = r#"{"version":"1.0","userIdentity":{"type":"CustomUser","principalId":"alice","details":{"team":"x"}},"eventSource":"myapp","eventName":"Login","eventTime":"2024-01-01T09:00:00","UID":"u-1","recipientAccountId":"123456789012","sourceIPAddress":"192.0.2.7","userAgent":"myapp/1.0"}"#;

    fn key() -> EventIdKey {
        EventIdKey::from_bytes(b"test-secret-test-secret-test-sec")
    }

    fn build(data: &str, checksum: Option<&str>) -> Result<Record, AuditEventError> {
        build_record(
            &key(),
            &channel(),
            "us-east-1",
            &AuditEvent { id: "a1", event_data: data, checksum },
            EventTime(0),
        )
    }

    #[test]
    fn an_audit_event_becomes_a_findable_activity_record_with_event_data_verbatim() {
        let r = build(DATA, Some(&checksum_of(DATA))).unwrap();
        let v: Value = serde_json::from_str(r.json()).unwrap();
        assert_eq!(v["eventCategory"], "ActivityAuditLog");
        assert_eq!(v["eventType"], "ActivityLog");
        assert_eq!(v["eventTime"], "2024-01-01T09:00:00Z");
        assert_eq!(v["metadata"]["channelARN"], channel().arn);
        assert_eq!(v["eventData"]["userIdentity"]["details"]["team"], "x");
        assert!(r.json().ends_with(&format!(",\"eventData\":{DATA}}}")));
        assert_eq!(r.fields.event_name, "Login");
        assert_eq!(r.fields.event_source, "myapp");
        assert_eq!(r.fields.username.as_deref(), Some("alice"));
        assert_eq!(r.fields.event_id, key().event_id_for(&channel().arn, "a1"));
    }

    #[test]
    fn event_ids_are_stable_per_channel_and_id_and_secret() {
        let k = key();
        let a = k.event_id_for("arn:x", "a1");
        assert_eq!(a, k.event_id_for("arn:x", "a1"));
        assert_ne!(a, k.event_id_for("arn:y", "a1"));
        assert_ne!(a, k.event_id_for("arn:x", "a2"));
        assert_ne!(a, EventIdKey::from_bytes(b"another-secret").event_id_for("arn:x", "a1"));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 8);
    }

    #[test]
    fn checksum_is_base64_sha256_of_the_event_data() {
        // printf %s abc | openssl dgst -binary -sha256 | base64
        assert_eq!(checksum_of("abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        assert_eq!(build(DATA, Some("AAAA")), Err(AuditEventError::ChecksumMismatch));
    }

    #[test]
    fn malformed_event_data_names_the_field() {
        let without = |field: &str| {
            let mut v: Value = serde_json::from_str(DATA).unwrap();
            v.as_object_mut().unwrap().remove(field);
            v.to_string()
        };
        assert_eq!(build(&without("eventName"), None), Err(AuditEventError::MissingField { field: "eventName" }));
        assert_eq!(build(&without("UID"), None), Err(AuditEventError::MissingField { field: "UID" }));
        let no_principal = DATA.replace(r#""principalId":"alice","#, "");
        assert_eq!(
            build(&no_principal, None),
            Err(AuditEventError::MissingField { field: "userIdentity.principalId" })
        );
        let long = DATA.replace("\"Login\"", &format!("\"{}\"", "L".repeat(1025)));
        assert_eq!(build(&long, None), Err(AuditEventError::TooLong { field: "eventName", max: 1024 }));
        assert!(matches!(build("not json", None), Err(AuditEventError::Invalid { .. })));
        assert!(matches!(
            build(&DATA.replace("2024-01-01T09:00:00", "yesterday"), None),
            Err(AuditEventError::Invalid { .. })
        ));
    }

    #[test]
    fn events_for_another_account_are_refused() {
        let other = DATA.replace("123456789012", "999999999999");
        assert!(matches!(build(&other, None), Err(AuditEventError::WrongRecipient { .. })));
    }
}
