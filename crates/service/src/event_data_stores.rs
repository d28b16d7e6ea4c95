//! Event data stores (CloudTrail Lake's `CreateEventDataStore` family): their settings and validation rules,
//! and their persistence in `<data-dir>/event-data-stores.json`. What enters a store is decided by its
//! advanced event selectors (`service::selection`); the lake view that takes the events in lives in
//! `crates/lake`.
//!
//! Every change is written to disk (atomically) before it is made visible in memory, so a failed write
//! leaves both unchanged; a staging copy lets the API make the call's audit record durable first
//! (see `TrailStore::staging`). See docs/formats/state.md, "Event data stores".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atomic_file::write_atomic;
use model::EventTime;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::trails::{AdvancedEventSelector, FieldSelector, Operator, Selectors};

/// Hard-coded CloudTrail limits (service model): advanced selectors per store, tags per store, page size.
pub const MAX_SELECTORS: usize = 5;
pub const MAX_TAGS: usize = 200;
pub const MAX_LIST_PAGE: usize = 1000;
/// Hard-coded: a store deleted stays PENDING_DELETION (queryable by name, not by queries) this long, then
/// it and its data are removed, as AWS does after 7 days.
pub const PENDING_DELETION_MS: i64 = 7 * 86_400_000;

const STATE_FILE: &str = "event-data-stores.json";
const STATE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum EventDataStoreError {
    #[error("event data store '{store}' does not exist")]
    NotFound { store: String },
    #[error(
        "'{value}' is not an event data store ARN (arn:aws:cloudtrail:<region>:<account>:eventdatastore/<id>) or id"
    )]
    InvalidArn { value: String },
    #[error("an event data store named '{name}' already exists")]
    AlreadyExists { name: String },
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("event data store '{store}' has termination protection enabled; disable it before deleting the store")]
    TerminationProtected { store: String },
    #[error("event data store '{store}' is {status}")]
    Inactive { store: String, status: &'static str },
    #[error("invalid pagination token '{token}'")]
    InvalidToken { token: String },
    #[error("cannot {action} event data store state {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("event data store state {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreStatus {
    #[serde(rename = "ENABLED")]
    Enabled,
    #[serde(rename = "STOPPED_INGESTION")]
    StoppedIngestion,
    #[serde(rename = "PENDING_DELETION")]
    PendingDeletion,
}

impl StoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreStatus::Enabled => "ENABLED",
            StoreStatus::StoppedIngestion => "STOPPED_INGESTION",
            StoreStatus::PendingDeletion => "PENDING_DELETION",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    #[serde(rename = "EXTENDABLE_RETENTION_PRICING")]
    ExtendableRetention,
    #[serde(rename = "FIXED_RETENTION_PRICING")]
    FixedRetention,
}

impl BillingMode {
    pub fn parse(s: &str) -> Option<BillingMode> {
        match s {
            "EXTENDABLE_RETENTION_PRICING" => Some(BillingMode::ExtendableRetention),
            "FIXED_RETENTION_PRICING" => Some(BillingMode::FixedRetention),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::ExtendableRetention => "EXTENDABLE_RETENTION_PRICING",
            BillingMode::FixedRetention => "FIXED_RETENTION_PRICING",
        }
    }

    /// (default, maximum) retention in days.
    pub fn retention_bounds(self) -> (u32, u32) {
        match self {
            BillingMode::ExtendableRetention => (366, 3653),
            BillingMode::FixedRetention => (2557, 2557),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDataStore {
    /// The UUID at the end of the ARN.
    pub id: String,
    pub arn: String,
    pub name: String,
    pub status: StoreStatus,
    pub selectors: Vec<AdvancedEventSelector>,
    pub multi_region_enabled: bool,
    pub organization_enabled: bool,
    pub retention_period: u32,
    pub termination_protection_enabled: bool,
    pub billing_mode: BillingMode,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub created: EventTime,
    pub updated: EventTime,
    /// When it was deleted (PENDING_DELETION).
    #[serde(default)]
    pub deleted: Option<EventTime>,
}

impl EventDataStore {
    /// The selectors as `service::selection` applies them.
    pub fn selection(&self) -> Selectors {
        Selectors::Advanced(self.selectors.clone())
    }

    pub fn ingesting(&self) -> bool {
        self.status == StoreStatus::Enabled
    }
}

/// The selectors of a store created without any: all management events (as the console and CLI do).
pub fn default_selectors() -> Vec<AdvancedEventSelector> {
    vec![AdvancedEventSelector {
        name: Some("Default management events".into()),
        field_selectors: vec![FieldSelector {
            field: "eventCategory".into(),
            conditions: vec![(Operator::Equals, vec!["Management".into()])],
        }],
    }]
}

/// A store to create or the changes to one, before validation; `None` keeps the default or current value.
#[derive(Debug, Clone, Default)]
pub struct StoreSettings {
    pub name: Option<String>,
    /// Validated already (`trails::advanced_selectors`).
    pub selectors: Option<Vec<AdvancedEventSelector>>,
    pub multi_region_enabled: Option<bool>,
    pub organization_enabled: Option<bool>,
    pub retention_period: Option<i64>,
    pub termination_protection_enabled: Option<bool>,
    pub billing_mode: Option<BillingMode>,
    pub kms_key_id: Option<String>,
    pub tags: Vec<Tag>,
    /// CreateEventDataStore's StartIngestion (default true).
    pub start_ingestion: Option<bool>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    stores: Vec<EventDataStore>,
}

/// The event data store registry: cheap operations under one lock; each change is one small atomic write.
pub struct EventDataStores {
    path: Option<PathBuf>,
    region: String,
    account_id: String,
    by_id: Mutex<BTreeMap<String, EventDataStore>>,
}

impl EventDataStores {
    /// Loads `<data_dir>/event-data-stores.json` (none yet means no stores).
    pub fn open(data_dir: &Path, region: &str, account_id: &str) -> Result<EventDataStores, EventDataStoreError> {
        let path = data_dir.join(STATE_FILE);
        let by_id = match std::fs::read(&path) {
            Ok(bytes) => {
                let state: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|e| EventDataStoreError::Corrupt { path: path.clone(), reason: e.to_string() })?;
                if state.version != STATE_VERSION {
                    return Err(EventDataStoreError::Corrupt {
                        path,
                        reason: format!("unknown version {} (this build reads {STATE_VERSION})", state.version),
                    });
                }
                state.stores.into_iter().map(|s| (s.id.clone(), s)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(EventDataStoreError::Io { action: "read", path, source }),
        };
        Ok(EventDataStores {
            path: Some(path),
            region: region.to_string(),
            account_id: account_id.to_string(),
            by_id: Mutex::new(by_id),
        })
    }

    pub fn create(
        &self,
        s: StoreSettings,
        id: uuid::Uuid,
        now: EventTime,
    ) -> Result<EventDataStore, EventDataStoreError> {
        let name =
            s.name.clone().ok_or(EventDataStoreError::InvalidField { field: "Name", reason: "is required".into() })?;
        validate_name(&name)?;
        let billing_mode = s.billing_mode.unwrap_or(BillingMode::ExtendableRetention);
        let retention_period = retention(s.retention_period, billing_mode)?;
        validate_tags(&s.tags)?;
        let selectors = s.selectors.clone().unwrap_or_else(default_selectors);
        validate_selectors(&selectors)?;
        let id = id.to_string();
        let store = EventDataStore {
            arn: format!("arn:aws:cloudtrail:{}:{}:eventdatastore/{id}", self.region, self.account_id),
            id: id.clone(),
            name,
            status: if s.start_ingestion.unwrap_or(true) {
                StoreStatus::Enabled
            } else {
                StoreStatus::StoppedIngestion
            },
            selectors,
            multi_region_enabled: s.multi_region_enabled.unwrap_or(true),
            organization_enabled: s.organization_enabled.unwrap_or(false),
            retention_period,
            termination_protection_enabled: s.termination_protection_enabled.unwrap_or(true),
            billing_mode,
            kms_key_id: s.kms_key_id,
            tags: s.tags,
            created: now,
            updated: now,
            deleted: None,
        };
        self.change(|m| {
            if m.values().any(|x| x.name == store.name && x.status != StoreStatus::PendingDeletion) {
                return Err(EventDataStoreError::AlreadyExists { name: store.name.clone() });
            }
            m.insert(id, store.clone());
            Ok(store.clone())
        })
    }

    /// A store by ARN or id.
    pub fn get(&self, reference: &str) -> Result<EventDataStore, EventDataStoreError> {
        let id = self.resolve(reference)?;
        self.by_id.lock().get(&id).cloned().ok_or_else(|| EventDataStoreError::NotFound { store: reference.into() })
    }

    /// Every store, in creation order.
    pub fn all(&self) -> Vec<EventDataStore> {
        let mut all: Vec<EventDataStore> = self.by_id.lock().values().cloned().collect();
        all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        all
    }

    /// One page of stores in creation order, strictly after `token`, and the token for the next page.
    pub fn list(
        &self,
        token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<EventDataStore>, Option<String>), EventDataStoreError> {
        let after = match token {
            None => None,
            Some(t) => {
                Some(crate::ids::parse_token(t).ok_or_else(|| EventDataStoreError::InvalidToken { token: t.into() })?)
            }
        };
        let max = max.clamp(1, MAX_LIST_PAGE);
        let mut page: Vec<EventDataStore> = self
            .all()
            .into_iter()
            .filter(|c| after.as_ref().is_none_or(|(t, id)| (c.created, &c.id) > (*t, id)))
            .take(max + 1)
            .collect();
        let next = if page.len() > max {
            page.pop();
            page.last().map(|c| format!("{}:{}", c.created.0, c.id))
        } else {
            None
        };
        Ok((page, next))
    }

    pub fn update(
        &self,
        reference: &str,
        s: StoreSettings,
        now: EventTime,
    ) -> Result<EventDataStore, EventDataStoreError> {
        let id = self.resolve(reference)?;
        if let Some(n) = &s.name {
            validate_name(n)?;
        }
        if let Some(sel) = &s.selectors {
            validate_selectors(sel)?;
        }
        self.change(|m| {
            if let Some(n) = &s.name
                && m.values().any(|x| &x.name == n && x.id != id && x.status != StoreStatus::PendingDeletion)
            {
                return Err(EventDataStoreError::AlreadyExists { name: n.clone() });
            }
            let st = m.get_mut(&id).ok_or_else(|| EventDataStoreError::NotFound { store: reference.into() })?;
            if st.status == StoreStatus::PendingDeletion {
                return Err(EventDataStoreError::Inactive { store: reference.into(), status: st.status.as_str() });
            }
            let billing = s.billing_mode.unwrap_or(st.billing_mode);
            if s.billing_mode == Some(BillingMode::FixedRetention)
                && st.billing_mode == BillingMode::ExtendableRetention
            {
                return Err(EventDataStoreError::InvalidField {
                    field: "BillingMode",
                    reason: "a store cannot go from EXTENDABLE_RETENTION_PRICING to FIXED_RETENTION_PRICING".into(),
                });
            }
            if let Some(r) = s.retention_period {
                st.retention_period = retention(Some(r), billing)?;
            }
            st.billing_mode = billing;
            if let Some(n) = s.name.clone() {
                st.name = n;
            }
            if let Some(sel) = s.selectors.clone() {
                st.selectors = sel;
            }
            if let Some(v) = s.multi_region_enabled {
                st.multi_region_enabled = v;
            }
            if let Some(v) = s.organization_enabled {
                st.organization_enabled = v;
            }
            if let Some(v) = s.termination_protection_enabled {
                st.termination_protection_enabled = v;
            }
            if let Some(k) = s.kms_key_id.clone() {
                st.kms_key_id = Some(k);
            }
            st.updated = now;
            Ok(st.clone())
        })
    }

    /// Starts or stops a store's ingestion (Start/StopEventDataStoreIngestion).
    pub fn set_ingestion(&self, reference: &str, on: bool, now: EventTime) -> Result<(), EventDataStoreError> {
        let id = self.resolve(reference)?;
        self.change(|m| {
            let st = m.get_mut(&id).ok_or_else(|| EventDataStoreError::NotFound { store: reference.into() })?;
            if st.status == StoreStatus::PendingDeletion {
                return Err(EventDataStoreError::Inactive { store: reference.into(), status: st.status.as_str() });
            }
            st.status = if on { StoreStatus::Enabled } else { StoreStatus::StoppedIngestion };
            st.updated = now;
            Ok(())
        })
    }

    /// Deletes a store: refused while termination protection is on; otherwise PENDING_DELETION (it stops
    /// taking in events and cannot be queried) until [`EventDataStores::purge`] removes it.
    pub fn delete(&self, reference: &str, now: EventTime) -> Result<(), EventDataStoreError> {
        let id = self.resolve(reference)?;
        self.change(|m| {
            let st = m.get_mut(&id).ok_or_else(|| EventDataStoreError::NotFound { store: reference.into() })?;
            if st.status == StoreStatus::PendingDeletion {
                return Err(EventDataStoreError::Inactive { store: reference.into(), status: st.status.as_str() });
            }
            if st.termination_protection_enabled {
                return Err(EventDataStoreError::TerminationProtected { store: reference.into() });
            }
            st.status = StoreStatus::PendingDeletion;
            st.deleted = Some(now);
            st.updated = now;
            Ok(())
        })
    }

    /// Removes the stores deleted more than [`PENDING_DELETION_MS`] ago; returns their ids.
    pub fn purge(&self, now: EventTime) -> Result<Vec<String>, EventDataStoreError> {
        self.change(|m| {
            let gone: Vec<String> = m
                .values()
                .filter(|s| s.deleted.is_some_and(|d| d.0 + PENDING_DELETION_MS <= now.0))
                .map(|s| s.id.clone())
                .collect();
            for id in &gone {
                m.remove(id);
            }
            Ok(gone)
        })
    }

    /// The store id named by an ARN or a bare id (lower case).
    pub fn resolve(&self, reference: &str) -> Result<String, EventDataStoreError> {
        crate::ids::resolve(reference, "eventdatastore/", &self.region, &self.account_id).map_err(|e| match e {
            crate::ids::RefError::Invalid => EventDataStoreError::InvalidArn { value: reference.to_string() },
            crate::ids::RefError::Elsewhere => EventDataStoreError::NotFound { store: reference.to_string() },
        })
    }

    /// A copy whose changes go to a staging file until [`EventDataStores::commit`].
    pub fn staging(&self) -> EventDataStores {
        let path = self.path.as_deref().map(crate::trails::staged_path);
        if let Some(p) = &path {
            let _ = std::fs::remove_file(p);
        }
        EventDataStores {
            path,
            region: self.region.clone(),
            account_id: self.account_id.clone(),
            by_id: Mutex::new(self.by_id.lock().clone()),
        }
    }

    /// Makes a staging copy's stores current (rename, then memory).
    pub fn commit(&self, staged: EventDataStores) -> std::io::Result<()> {
        let mut guard = self.by_id.lock();
        if let (Some(path), Some(staged_file)) = (&self.path, &staged.path)
            && staged_file.exists()
        {
            atomic_file::commit_tmp(staged_file, path).map_err(|e| e.source)?;
        }
        *guard = staged.by_id.into_inner();
        Ok(())
    }

    fn change<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, EventDataStore>) -> Result<T, EventDataStoreError>,
    ) -> Result<T, EventDataStoreError> {
        let mut guard = self.by_id.lock();
        let mut next = guard.clone();
        let out = f(&mut next)?;
        if next != *guard {
            let state = StateFile { version: STATE_VERSION, stores: next.values().cloned().collect() };
            let bytes = serde_json::to_vec_pretty(&state).map_err(|e| EventDataStoreError::Corrupt {
                path: self.path.clone().unwrap_or_default(),
                reason: e.to_string(),
            })?;
            if let Some(path) = &self.path {
                write_atomic(path, &bytes, 0o600).map_err(|e| EventDataStoreError::Io {
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

fn retention(given: Option<i64>, billing: BillingMode) -> Result<u32, EventDataStoreError> {
    let (default, max) = billing.retention_bounds();
    match given {
        None => Ok(default),
        Some(d) if (7..=i64::from(max)).contains(&d) => Ok(d as u32),
        Some(d) => Err(EventDataStoreError::InvalidField {
            field: "RetentionPeriod",
            reason: format!("{d} is not between 7 and {max} days ({})", billing.as_str()),
        }),
    }
}

/// EventDataStoreName: 3..128 characters of `[a-zA-Z0-9._-]`.
pub fn validate_name(name: &str) -> Result<(), EventDataStoreError> {
    let invalid = |reason: String| Err(EventDataStoreError::InvalidField { field: "Name", reason });
    if !(3..=128).contains(&name.len()) {
        return invalid(format!("'{name}' must be 3 to 128 characters long"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return invalid(format!("'{name}' contains '{c}'; only letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

fn validate_selectors(s: &[AdvancedEventSelector]) -> Result<(), EventDataStoreError> {
    if s.is_empty() || s.len() > MAX_SELECTORS {
        return Err(EventDataStoreError::InvalidField {
            field: "AdvancedEventSelectors",
            reason: format!("must list 1 to {MAX_SELECTORS} selectors, got {}", s.len()),
        });
    }
    Ok(())
}

fn validate_tags(tags: &[Tag]) -> Result<(), EventDataStoreError> {
    let invalid = |reason: String| Err(EventDataStoreError::InvalidField { field: "TagsList", reason });
    if tags.len() > MAX_TAGS {
        return invalid(format!("at most {MAX_TAGS} tags are allowed, got {}", tags.len()));
    }
    for (i, t) in tags.iter().enumerate() {
        if !(1..=128).contains(&t.key.chars().count()) {
            return invalid(format!("TagsList[{i}].Key must be 1 to 128 characters long"));
        }
        if t.value.chars().count() > 256 {
            return invalid(format!("TagsList[{i}].Value must be at most 256 characters long"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> EventDataStores {
        EventDataStores::open(dir, "us-east-1", "123456789012").unwrap()
    }

    fn named(name: &str) -> StoreSettings {
        StoreSettings { name: Some(name.into()), ..StoreSettings::default() }
    }

    #[test]
    fn a_new_store_takes_management_events_with_protection_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let st = s.create(named("eds1"), uuid::Uuid::new_v4(), EventTime(1)).unwrap();
        assert_eq!(st.status, StoreStatus::Enabled);
        assert_eq!(st.retention_period, 366);
        assert!(st.termination_protection_enabled);
        assert_eq!(st.selectors, default_selectors());
        assert_eq!(open(dir.path()).get(&st.arn).unwrap(), st);
        assert!(matches!(
            s.create(named("eds1"), uuid::Uuid::new_v4(), EventTime(2)),
            Err(EventDataStoreError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn termination_protection_refuses_delete_until_it_is_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let st = s.create(named("eds1"), uuid::Uuid::new_v4(), EventTime(1)).unwrap();
        assert!(matches!(s.delete(&st.id, EventTime(2)), Err(EventDataStoreError::TerminationProtected { .. })));
        let off = StoreSettings { termination_protection_enabled: Some(false), ..StoreSettings::default() };
        s.update(&st.id, off, EventTime(3)).unwrap();
        s.delete(&st.id, EventTime(4)).unwrap();
        assert_eq!(s.get(&st.id).unwrap().status, StoreStatus::PendingDeletion);
        assert!(s.purge(EventTime(5)).unwrap().is_empty());
        assert_eq!(s.purge(EventTime(4 + PENDING_DELETION_MS)).unwrap(), vec![st.id.clone()]);
        assert!(matches!(s.get(&st.id), Err(EventDataStoreError::NotFound { .. })));
    }

    #[test]
    fn retention_is_checked_against_the_billing_mode() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        for bad in [6, 3654] {
            let settings = StoreSettings { retention_period: Some(bad), ..named("eds1") };
            assert!(matches!(
                s.create(settings, uuid::Uuid::new_v4(), EventTime(1)),
                Err(EventDataStoreError::InvalidField { field: "RetentionPeriod", .. })
            ));
        }
        let fixed = StoreSettings {
            retention_period: Some(3000),
            billing_mode: Some(BillingMode::FixedRetention),
            ..named("eds2")
        };
        assert!(s.create(fixed, uuid::Uuid::new_v4(), EventTime(1)).is_err());
        assert!(matches!(s.get("nope"), Err(EventDataStoreError::InvalidArn { .. })));
    }
}
