//! Trail delivery. Every trail that logs is a view of the journal (crates/views) — [`trail::TrailDelivery`] —
//! writing CloudTrail log files and, with log file validation, signed digests into its bucket (a local
//! folder or S3, through crates/buckets). [`Delivery`] keeps one view per trail that has something to do
//! (logging, or a stop or deletion still to finish), starts and stops them as trails change, and publishes
//! each trail's delivery status for GetTrailStatus and /metrics.
//!
//! Where things live: `<data-dir>/delivery/<trail>/state.json` and `outbox/` (docs/formats/delivery.md).

pub mod state;
pub mod trail;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use model::EventTime;
use parking_lot::Mutex;
use service::keys::KeyRing;
use service::trails::TrailStore;

pub use state::Status;

/// The server's clock, injected (tests move it; delivery times and digest windows come from it).
pub type Clock = Arc<dyn Fn() -> EventTime + Send + Sync>;

/// What every trail's delivery shares.
pub struct Shared {
    /// `<data-dir>/delivery`.
    pub dir: PathBuf,
    pub trails: Arc<TrailStore>,
    pub keys: Arc<KeyRing>,
    pub interval: Duration,
    pub digest_interval: Duration,
    pub clock: Clock,
    /// The runtime object-store calls run on (the views call it from their own threads).
    pub runtime: tokio::runtime::Handle,
    buckets: Buckets,
    status: Mutex<BTreeMap<String, TrailStatus>>,
    counters: Mutex<BTreeMap<String, Counters>>,
}

/// A trail's delivery as GetTrailStatus and the manager see it.
#[derive(Debug, Clone, Default)]
pub struct TrailStatus {
    pub status: Status,
    /// Objects staged and not yet in the bucket.
    pub outbox: usize,
    /// Nothing to do until the trail logs again.
    pub idle: bool,
    /// The trail was deleted and its delivery finished: the state can go.
    pub deleted: bool,
}

#[derive(Debug, Clone, Default)]
struct Counters {
    log_files: u64,
    digests: u64,
    events: u64,
    errors: u64,
}

/// Buckets by name, opened once.
struct Buckets {
    resolve: Box<dyn Fn(&str) -> Result<buckets::Bucket, String> + Send + Sync>,
    open: Mutex<BTreeMap<String, Arc<buckets::Bucket>>>,
}

impl Shared {
    pub(crate) fn bucket(&self, name: &str) -> Result<Arc<buckets::Bucket>, String> {
        if let Some(b) = self.buckets.open.lock().get(name) {
            return Ok(b.clone());
        }
        let b = Arc::new((self.buckets.resolve)(name)?);
        self.buckets.open.lock().insert(name.to_string(), b.clone());
        Ok(b)
    }

    pub(crate) fn publish(&self, trail: &str, status: TrailStatus) {
        self.status.lock().insert(trail.to_string(), status);
    }

    pub(crate) fn count_delivered(&self, trail: &str, kind: state::StagedKind, events: u64) {
        let mut c = self.counters.lock();
        let c = c.entry(trail.to_string()).or_default();
        match kind {
            state::StagedKind::Log => {
                c.log_files += 1;
                c.events += events;
            }
            state::StagedKind::Digest => c.digests += 1,
        }
    }

    pub(crate) fn count_error(&self, trail: &str) {
        self.counters.lock().entry(trail.to_string()).or_default().errors += 1;
    }
}
