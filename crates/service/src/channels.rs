//! Channels: named ingestion points for events from outside AWS (CloudTrail Lake's `CreateChannel` family),
//! their validation rules, their ingestion status, and their persistence in `<data-dir>/channels.json`.
//!
//! Every change is written to disk (atomically) before it is made visible in memory, so a failed write
//! leaves both unchanged. See docs/formats/state.md, "Channels".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atomic_file::write_atomic;
use model::EventTime;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Hard-coded CloudTrail limits (service model): destinations and tags per channel.
pub const MAX_DESTINATIONS: usize = 200;
pub const MAX_TAGS: usize = 200;
/// Hard-coded: the largest page `list` returns.
pub const MAX_LIST_PAGE: usize = 1000;

const STATE_FILE: &str = "channels.json";
const STATE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel '{channel}' does not exist")]
    NotFound { channel: String },
    #[error("'{value}' is not a channel ARN (arn:aws:cloudtrail:<region>:<account>:channel/<id>) or channel id")]
    InvalidArn { value: String },
    #[error("a channel named '{name}' already exists")]
    AlreadyExists { name: String },
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("invalid Source '{source_name}': {reason}")]
    InvalidSource { source_name: String, reason: String },
    #[error("invalid tags: {reason}")]
    InvalidTags { reason: String },
    #[error("invalid pagination token '{token}'")]
    InvalidToken { token: String },
    #[error("cannot {action} channel state {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("channel state {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DestinationType {
    #[serde(rename = "EVENT_DATA_STORE")]
    EventDataStore,
    #[serde(rename = "AWS_SERVICE")]
    AwsService,
}

impl DestinationType {
    pub fn parse(s: &str) -> Option<DestinationType> {
        match s {
            "EVENT_DATA_STORE" => Some(DestinationType::EventDataStore),
            "AWS_SERVICE" => Some(DestinationType::AwsService),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DestinationType::EventDataStore => "EVENT_DATA_STORE",
            DestinationType::AwsService => "AWS_SERVICE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(rename = "type")]
    pub kind: DestinationType,
    pub location: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// What the channel's last ingestion did (`GetChannel`'s `IngestionStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionStatus {
    pub latest_success_time: Option<EventTime>,
    pub latest_success_event_id: Option<String>,
    pub latest_error_code: Option<String>,
    pub latest_attempt_time: Option<EventTime>,
    pub latest_attempt_event_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    /// The UUID at the end of the ARN.
    pub id: String,
    pub arn: String,
    pub name: String,
    pub source: String,
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The account that owns the channel: audit events put into it must name it as recipient.
    pub account_id: String,
    pub created: EventTime,
    #[serde(default)]
    pub ingestion: IngestionStatus,
}

/// A channel to create, before validation.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub name: String,
    pub source: String,
    pub destinations: Vec<Destination>,
    pub tags: Vec<Tag>,
}

/// The outcome of one PutAuditEvents call, for the channel's ingestion status.
#[derive(Debug, Clone)]
pub struct IngestionAttempt {
    pub at: EventTime,
    /// The eventID of the last event attempted.
    pub last_event_id: String,
    /// The eventID of the last event stored, if any was.
    pub last_success_event_id: Option<String>,
    /// The error code of the last event that failed, if any did.
    pub last_error_code: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    channels: Vec<Channel>,
}

/// The channel registry. Cheap operations under one lock; each change is one small atomic file write.
pub struct Channels {
    /// The state file; a staging copy writes beside it (`<name>.staged`) until committed. `None` only for
    /// a copy that never writes.
    path: Option<PathBuf>,
    region: String,
    account_id: String,
    by_id: Mutex<BTreeMap<String, Channel>>,
}

impl Channels {
    /// Loads `<data_dir>/channels.json` (none yet means no channels).
    pub fn open(data_dir: &Path, region: &str, account_id: &str) -> Result<Channels, ChannelError> {
        let path = data_dir.join(STATE_FILE);
        let by_id = match std::fs::read(&path) {
            Ok(bytes) => {
                let state: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|e| ChannelError::Corrupt { path: path.clone(), reason: e.to_string() })?;
                if state.version != STATE_VERSION {
                    return Err(ChannelError::Corrupt {
                        path,
                        reason: format!("unknown version {} (this build reads {STATE_VERSION})", state.version),
                    });
                }
                state.channels.into_iter().map(|c| (c.id.clone(), c)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(ChannelError::Io { action: "read", path, source }),
        };
        Ok(Channels {
            path: Some(path),
            region: region.to_string(),
            account_id: account_id.to_string(),
            by_id: Mutex::new(by_id),
        })
    }

    pub fn create(&self, new: NewChannel, id: uuid::Uuid, now: EventTime) -> Result<Channel, ChannelError> {
        validate_name(&new.name)?;
        validate_source(&new.source)?;
        validate_destinations(&new.destinations)?;
        validate_tags(&new.tags)?;
        let id = id.to_string();
        let channel = Channel {
            arn: format!("arn:aws:cloudtrail:{}:{}:channel/{id}", self.region, self.account_id),
            id: id.clone(),
            name: new.name,
            source: new.source,
            destinations: new.destinations,
            tags: new.tags,
            account_id: self.account_id.clone(),
            created: now,
            ingestion: IngestionStatus::default(),
        };
        self.change(|m| {
            if m.values().any(|c| c.name == channel.name) {
                return Err(ChannelError::AlreadyExists { name: channel.name.clone() });
            }
            m.insert(id, channel.clone());
            Ok(channel.clone())
        })
    }

    /// A channel by ARN or by id (the ARN's UUID suffix).
    pub fn get(&self, reference: &str) -> Result<Channel, ChannelError> {
        let id = self.resolve(reference)?;
        self.by_id.lock().get(&id).cloned().ok_or_else(|| ChannelError::NotFound { channel: reference.to_string() })
    }

    /// One page of channels in creation order, strictly after `token`, and the token for the next page.
    pub fn list(&self, token: Option<&str>, max: usize) -> Result<(Vec<Channel>, Option<String>), ChannelError> {
        let after = match token {
            None => None,
            Some(t) => {
                Some(crate::ids::parse_token(t).ok_or_else(|| ChannelError::InvalidToken { token: t.to_string() })?)
            }
        };
        let mut all: Vec<Channel> = self.by_id.lock().values().cloned().collect();
        all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let mut page: Vec<Channel> = all
            .into_iter()
            .filter(|c| after.as_ref().is_none_or(|(t, id)| (c.created, &c.id) > (*t, id)))
            .take(max.clamp(1, MAX_LIST_PAGE) + 1)
            .collect();
        let next = if page.len() > max.clamp(1, MAX_LIST_PAGE) {
            page.pop();
            page.last().map(|c| format!("{}:{}", c.created.0, c.id))
        } else {
            None
        };
        Ok((page, next))
    }

    /// Renames the channel and/or replaces its destinations.
    pub fn update(
        &self,
        reference: &str,
        name: Option<String>,
        destinations: Option<Vec<Destination>>,
    ) -> Result<Channel, ChannelError> {
        let id = self.resolve(reference)?;
        if let Some(n) = &name {
            validate_name(n)?;
        }
        if let Some(d) = &destinations {
            validate_destinations(d)?;
        }
        self.change(|m| {
            if let Some(n) = &name
                && m.values().any(|c| &c.name == n && c.id != id)
            {
                return Err(ChannelError::AlreadyExists { name: n.clone() });
            }
            let c = m.get_mut(&id).ok_or_else(|| ChannelError::NotFound { channel: reference.to_string() })?;
            if let Some(n) = name {
                c.name = n;
            }
            if let Some(d) = destinations {
                c.destinations = d;
            }
            Ok(c.clone())
        })
    }

    pub fn delete(&self, reference: &str) -> Result<(), ChannelError> {
        let id = self.resolve(reference)?;
        self.change(|m| match m.remove(&id) {
            Some(_) => Ok(()),
            None => Err(ChannelError::NotFound { channel: reference.to_string() }),
        })
    }

    /// Records what an ingestion into the channel did. A channel deleted meanwhile is left deleted.
    pub fn record_ingestion(&self, id: &str, attempt: IngestionAttempt) -> Result<(), ChannelError> {
        self.change(|m| {
            if let Some(c) = m.get_mut(id) {
                let s = &mut c.ingestion;
                s.latest_attempt_time = Some(attempt.at);
                s.latest_attempt_event_id = Some(attempt.last_event_id);
                if let Some(ok) = attempt.last_success_event_id {
                    s.latest_success_time = Some(attempt.at);
                    s.latest_success_event_id = Some(ok);
                }
                if let Some(code) = attempt.last_error_code {
                    s.latest_error_code = Some(code);
                }
            }
            Ok(())
        })
    }

    /// The channel id named by an ARN or a bare id. A well-formed ARN of another Region or account
    /// names a channel that is not here; anything else is not a channel reference at all.
    pub fn resolve(&self, reference: &str) -> Result<String, ChannelError> {
        crate::ids::resolve(reference, "channel/", &self.region, &self.account_id).map_err(|e| match e {
            crate::ids::RefError::Invalid => ChannelError::InvalidArn { value: reference.to_string() },
            crate::ids::RefError::Elsewhere => ChannelError::NotFound { channel: reference.to_string() },
        })
    }

    /// A copy of the current channels whose changes are written, fsync'd, to a staging file beside the
    /// state file and go no further, until [`Channels::commit`] (see `TrailStore::staging`).
    pub fn staging(&self) -> Channels {
        let path = self.path.as_deref().map(crate::trails::staged_path);
        if let Some(p) = &path {
            let _ = std::fs::remove_file(p);
        }
        Channels {
            path,
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            by_id: Mutex::new(self.by_id.lock().clone()),
        }
    }

    /// Makes a staging copy's channels current: renames its staged file over the state file and takes its
    /// channels into memory. The caller keeps other writers out between `staging` and `commit`.
    pub fn commit(&self, staged: Channels) -> std::io::Result<()> {
        let mut guard = self.by_id.lock();
        if let (Some(path), Some(staged_file)) = (&self.path, &staged.path)
            && staged_file.exists()
        {
            atomic_file::commit_tmp(staged_file, path).map_err(|e| e.source)?;
        }
        *guard = staged.by_id.into_inner();
        Ok(())
    }

    /// Applies `f` to a copy of the map, persists the copy, then publishes it. The lock is held
    /// throughout so changes are serialized and the file always matches memory.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Channel>) -> Result<T, ChannelError>,
    ) -> Result<T, ChannelError> {
        let mut guard = self.by_id.lock();
        let mut next = guard.clone();
        let out = f(&mut next)?;
        if next != *guard {
            let state = StateFile { version: STATE_VERSION, channels: next.values().cloned().collect() };
            let bytes = serde_json::to_vec_pretty(&state).map_err(|e| ChannelError::Corrupt {
                path: self.path.clone().unwrap_or_default(),
                reason: e.to_string(),
            })?;
            if let Some(path) = &self.path {
                write_atomic(path, &bytes, 0o600).map_err(|e| ChannelError::Io {
                    action: "write",
                    path: path.clone(),
                    source: e.source,
                })?;
            }
            *guard = next;
        }
        Ok(out)
    }
}

/// ChannelName: 3..128 characters of `[a-zA-Z0-9._-]`.
pub fn validate_name(name: &str) -> Result<(), ChannelError> {
    let invalid = |reason: String| Err(ChannelError::InvalidField { field: "Name", reason });
    if !(3..=128).contains(&name.len()) {
        return invalid(format!("'{name}' must be 3 to 128 characters long"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return invalid(format!("'{name}' contains '{c}'; only letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

/// `Custom`, or the name of a partner source: 1..256 printable characters.
fn validate_source(source: &str) -> Result<(), ChannelError> {
    let invalid =
        |reason: &str| Err(ChannelError::InvalidSource { source_name: source.to_string(), reason: reason.into() });
    if source.is_empty() || source.len() > 256 {
        return invalid("must be 1 to 256 characters long");
    }
    if source.chars().any(char::is_control) {
        return invalid("must not contain control characters");
    }
    Ok(())
}

fn validate_destinations(destinations: &[Destination]) -> Result<(), ChannelError> {
    let invalid = |reason: String| Err(ChannelError::InvalidField { field: "Destinations", reason });
    if destinations.is_empty() || destinations.len() > MAX_DESTINATIONS {
        return invalid(format!("must list 1 to {MAX_DESTINATIONS} destinations, got {}", destinations.len()));
    }
    for (i, d) in destinations.iter().enumerate() {
        let loc = &d.location;
        if !(3..=1024).contains(&loc.len()) {
            return invalid(format!("Destinations[{i}].Location must be 3 to 1024 characters long"));
        }
        if let Some(c) = loc.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-' | ':')))
        {
            return invalid(format!("Destinations[{i}].Location '{loc}' contains '{c}'"));
        }
    }
    Ok(())
}

fn validate_tags(tags: &[Tag]) -> Result<(), ChannelError> {
    let invalid = |reason: String| Err(ChannelError::InvalidTags { reason });
    if tags.len() > MAX_TAGS {
        return invalid(format!("at most {MAX_TAGS} tags are allowed, got {}", tags.len()));
    }
    for (i, t) in tags.iter().enumerate() {
        if !(1..=128).contains(&t.key.chars().count()) {
            return invalid(format!("Tags[{i}].Key must be 1 to 128 characters long"));
        }
        if t.value.chars().count() > 256 {
            return invalid(format!("Tags[{i}].Value must be at most 256 characters long"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    fn new(name: &str) -> NewChannel {
        NewChannel {
            name: name.into(),
            source: "Custom".into(),
            destinations: vec![Destination {
                kind: DestinationType::EventDataStore,
                location: "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc".into(),
            }],
            tags: vec![],
        }
    }

    fn open(dir: &Path) -> Channels {
        Channels::open(dir, "us-east-1", ACCOUNT).unwrap()
    }

    #[test]
    fn channels_survive_reopen_with_their_ingestion_status() {
        let dir = tempfile::tempdir().unwrap();
        let ch = open(dir.path());
        let c = ch.create(new("ch1"), uuid::Uuid::new_v4(), EventTime(1)).unwrap();
        assert_eq!(c.arn, format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:channel/{}", c.id));
        let attempt = IngestionAttempt {
            at: EventTime(5),
            last_event_id: "e2".into(),
            last_success_event_id: Some("e1".into()),
            last_error_code: Some("InvalidChecksum".into()),
        };
        ch.record_ingestion(&c.id, attempt).unwrap();
        let again = open(dir.path());
        let got = again.get(&c.arn).unwrap();
        assert_eq!(got.name, "ch1");
        assert_eq!(got.ingestion.latest_success_event_id.as_deref(), Some("e1"));
        assert_eq!(got.ingestion.latest_success_time, Some(EventTime(5)));
        assert_eq!(again.get(&c.id).unwrap(), got);
    }

    #[test]
    fn names_are_unique_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let ch = open(dir.path());
        ch.create(new("ch1"), uuid::Uuid::new_v4(), EventTime(1)).unwrap();
        assert!(matches!(
            ch.create(new("ch1"), uuid::Uuid::new_v4(), EventTime(2)),
            Err(ChannelError::AlreadyExists { .. })
        ));
        for bad in ["ab", "has space", &"x".repeat(129)] {
            assert!(matches!(
                ch.create(new(bad), uuid::Uuid::new_v4(), EventTime(3)),
                Err(ChannelError::InvalidField { field: "Name", .. })
            ));
        }
        let c2 = ch.create(new("ch2"), uuid::Uuid::new_v4(), EventTime(4)).unwrap();
        assert!(matches!(ch.update(&c2.id, Some("ch1".into()), None), Err(ChannelError::AlreadyExists { .. })));
    }

    #[test]
    fn references_distinguish_malformed_from_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let ch = open(dir.path());
        let id = uuid::Uuid::new_v4();
        assert!(matches!(ch.get("not-a-channel"), Err(ChannelError::InvalidArn { .. })));
        assert!(matches!(
            ch.get("arn:aws:cloudtrail:us-east-1:123456789012:trail/x"),
            Err(ChannelError::InvalidArn { .. })
        ));
        assert!(matches!(ch.get(&id.to_string()), Err(ChannelError::NotFound { .. })));
        let other_region = format!("arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:channel/{id}");
        assert!(matches!(ch.get(&other_region), Err(ChannelError::NotFound { .. })));
    }

    #[test]
    fn list_pages_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let ch = open(dir.path());
        let names: Vec<String> = (0..5).map(|i| format!("ch{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            ch.create(new(n), uuid::Uuid::new_v4(), EventTime(i as i64)).unwrap();
        }
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = ch.list(token.as_deref(), 2).unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.into_iter().map(|c| c.name));
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, names);
        assert!(matches!(ch.list(Some("garbage"), 2), Err(ChannelError::InvalidToken { .. })));
    }

    #[test]
    fn delete_removes_the_channel_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let ch = open(dir.path());
        let c = ch.create(new("ch1"), uuid::Uuid::new_v4(), EventTime(1)).unwrap();
        ch.delete(&c.arn).unwrap();
        assert!(matches!(ch.delete(&c.arn), Err(ChannelError::NotFound { .. })));
        assert!(matches!(open(dir.path()).get(&c.id), Err(ChannelError::NotFound { .. })));
    }
}
