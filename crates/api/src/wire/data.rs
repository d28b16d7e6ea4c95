//! PutAuditEvents' body shape (`{"auditEvents":[{id, eventData, eventDataChecksum?}]}`) and its
//! conversion into the events to check one by one. A broken request fails as a whole; a broken event
//! (checksum, eventData) fails alone, later, in the service.

use std::collections::HashSet;

use axum::extract::Query;
use axum::http::Uri;
use serde::Deserialize;
use service::audit_events::{AuditEvent, MAX_EVENTS_PER_REQUEST};

use super::{WireError, required};

/// Hard-coded by the cloudtrail-data API model: an event `id` is 1..128 characters of `[-_A-Za-z0-9]`.
const MAX_ID_CHARS: usize = 128;

/// PutAuditEvents' query string: the channel, and the external id its resource policy would check.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutAuditEventsQuery {
    channel_arn: Option<String>,
    external_id: Option<String>,
}

impl PutAuditEventsQuery {
    pub fn from_uri(uri: &Uri) -> Result<PutAuditEventsQuery, WireError> {
        Query::try_from_uri(uri).map(|Query(q)| q).map_err(|e| WireError::Query { reason: e.to_string() })
    }

    /// The channel's ARN or id. `externalId` is checked, not enforced: channels have no resource policies
    /// here.
    pub fn channel(self) -> Result<String, WireError> {
        let channel = self.channel_arn.filter(|c| !c.is_empty()).ok_or(WireError::ChannelArnMissing)?;
        if let Some(ext) = &self.external_id {
            let allowed = |c: char| c.is_alphanumeric() || "_+=,.@:/-".contains(c);
            if !(2..=1224).contains(&ext.len()) || !ext.chars().all(allowed) {
                return Err(WireError::ExternalId);
            }
        }
        Ok(channel)
    }
}

/// PutAuditEvents' body.
#[derive(Debug, Deserialize)]
pub(crate) struct PutAuditEventsRequest {
    #[serde(rename = "auditEvents")]
    audit_events: Option<Vec<AuditEventShape>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename = "AuditEvent", rename_all = "camelCase")]
struct AuditEventShape {
    id: Option<String>,
    event_data: Option<String>,
    event_data_checksum: Option<String>,
}

impl PutAuditEventsRequest {
    /// Reads the body straight from its bytes: broken JSON is named as such, a member of the wrong type
    /// by its path.
    pub fn from_slice(body: &[u8]) -> Result<PutAuditEventsRequest, WireError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let request = serde_path_to_error::deserialize(&mut de).map_err(|e| match e.inner().classify() {
            serde_json::error::Category::Data => WireError::shape(e),
            _ => WireError::NotJson { reason: e.into_inner().to_string() },
        })?;
        de.end().map_err(|e| WireError::NotJson { reason: e.to_string() })?;
        Ok(request)
    }
}

/// One audit event as the request gives it, its id checked.
#[derive(Debug)]
pub(crate) struct WireAuditEvent {
    pub id: String,
    pub event_data: String,
    pub checksum: Option<String>,
}

impl WireAuditEvent {
    pub fn as_domain(&self) -> AuditEvent<'_> {
        AuditEvent { id: &self.id, event_data: &self.event_data, checksum: self.checksum.as_deref() }
    }
}

impl TryFrom<PutAuditEventsRequest> for Vec<WireAuditEvent> {
    type Error = WireError;

    /// 1..100 events with valid, distinct ids.
    fn try_from(r: PutAuditEventsRequest) -> Result<Vec<WireAuditEvent>, WireError> {
        let list = required(r.audit_events, "auditEvents")?;
        if list.is_empty() || list.len() > MAX_EVENTS_PER_REQUEST {
            return Err(WireError::AuditEventCount { count: list.len(), max: MAX_EVENTS_PER_REQUEST });
        }
        let mut seen = HashSet::new();
        let mut events = Vec::with_capacity(list.len());
        for (index, e) in list.into_iter().enumerate() {
            let id = required(e.id, format!("auditEvents[{index}].id"))?;
            let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            if id.is_empty() || id.len() > MAX_ID_CHARS || !id.bytes().all(valid) {
                return Err(WireError::AuditEventId { index, id });
            }
            if !seen.insert(id.clone()) {
                return Err(WireError::DuplicatedAuditEventId { id });
            }
            let event_data = required(e.event_data, format!("auditEvents[{index}].eventData"))?;
            events.push(WireAuditEvent { id, event_data, checksum: e.event_data_checksum });
        }
        Ok(events)
    }
}
