//! opentrail's use cases: ingest with dedupe and back-pressure, lookup, principals and access policy, trails.
//!
//! Architecture invariant: this crate knows no HTTP, no SigV4 and no AWS exception names; the `api`
//! crate maps [`StoreError`] and friends onto the wire.

pub mod audit_events;
pub mod batch;
pub mod channels;
pub mod config;
pub mod event_data_stores;
mod ids;
mod index_view;
pub mod insights;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod ratelimit;
mod selection;
pub mod store;
pub mod trails;

pub use batch::{BatchError, split_batch};
pub use config::{
    AuditConfig, BucketConfig, Config, ConfigError, DeliveryConfig, KeysConfig, LakeConfig, PrincipalConfig, Role,
    ServerConfig,
};
pub use index_view::INDEX_VIEW;
pub use metrics::{AuditOutcome, Metrics};
pub use policy::{Decision, Principal, Principals};
pub use ratelimit::{RateLimiter, Throttled};
pub use store::{
    CheckReport, EventStore, IngestItem, IngestOutcome, LookupResult, PendingIngest, StoreError, StoreOptions,
    StoredEvent,
};
