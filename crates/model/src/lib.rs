//! The CloudTrail domain model: records, ids, sequence numbers, event time and lookup queries.
//!
//! Architecture invariant: this crate does no I/O and never reads the clock or a random source;
//! callers inject event ids and "now" where they are needed.

pub mod cloudtrail;
mod facts;
mod grammar;
pub use grammar::provenance_terms;
mod payload;
mod provenance;
mod query;
mod record;
mod time;

pub use facts::EventFacts;
pub use payload::{PayloadError, StoredRecord};
pub use provenance::{MAX_PROVENANCE_DETAIL_BYTES, Provenance, ProvenanceError};
pub use query::{AttributeKey, Condition, EventQuery, IpNet, Pattern, QueryCategory, QueryError, QueryProblem};
pub use record::{EventCategory, IndexFields, MAX_RECORD_BYTES, Record, RecordError, Resource};
pub use time::{EventTime, TimeError};

/// Position of a record in the journal: dense, starting at 1, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Seq(pub u64);

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
