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

/// Opens the bucket of a name: configured in `[buckets]`, or the local folder `<data-dir>/buckets/<name>`.
pub type ResolveBucket = Box<dyn Fn(&str) -> Result<buckets::Bucket, String> + Send + Sync>;

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
    resolve: ResolveBucket,
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

/// How [`Delivery`] is set up.
pub struct DeliveryOptions {
    /// `<data-dir>/delivery`.
    pub dir: PathBuf,
    pub interval: Duration,
    pub digest_interval: Duration,
    pub clock: Clock,
    pub runtime: tokio::runtime::Handle,
    /// Opens the bucket of a name (configured, or the local folder under the data dir).
    pub resolve_bucket: ResolveBucket,
}

/// Hard-coded: how often the manager looks for trails that started or stopped logging or were deleted.
const RECONCILE_EVERY: Duration = Duration::from_millis(200);

/// Every trail's delivery: starts a view for each trail that has something to deliver, stops it when it is
/// idle (stopped and finished, or deleted and drained), and answers for GetTrailStatus and /metrics.
pub struct Delivery {
    shared: Arc<Shared>,
    feed: Arc<views::JournalFeed>,
    set: Arc<views::ViewSet>,
    running: Mutex<BTreeMap<String, views::ViewHandle>>,
    reconciler: Mutex<Option<views::Periodic>>,
}

impl Delivery {
    /// Starts delivering: one view per trail with something to do, re-checked every 200 ms.
    pub fn start(
        opts: DeliveryOptions,
        trails: Arc<TrailStore>,
        keys: Arc<KeyRing>,
        feed: Arc<views::JournalFeed>,
        set: Arc<views::ViewSet>,
    ) -> Result<Arc<Delivery>, String> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| format!("cannot create {}: {e}", opts.dir.display()))?;
        let shared = Arc::new(Shared {
            dir: opts.dir,
            trails,
            keys,
            interval: opts.interval,
            digest_interval: opts.digest_interval,
            clock: opts.clock,
            runtime: opts.runtime,
            buckets: Buckets { resolve: opts.resolve_bucket, open: Mutex::new(BTreeMap::new()) },
            status: Mutex::new(BTreeMap::new()),
            counters: Mutex::new(BTreeMap::new()),
        });
        // Statuses of trails not running now (stopped and finished) come from their state files.
        if let Ok(entries) = std::fs::read_dir(&shared.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Ok(Some(s)) = state::TrailState::load(&e.path()) {
                    shared.publish(
                        &name,
                        TrailStatus { status: s.status, outbox: s.outbox.len(), idle: false, deleted: s.deleted },
                    );
                }
            }
        }
        let d = Arc::new(Delivery {
            shared,
            feed,
            set,
            running: Mutex::new(BTreeMap::new()),
            reconciler: Mutex::new(None),
        });
        d.reconcile();
        let reconciler = views::Periodic::start("delivery", RECONCILE_EVERY, Arc::downgrade(&d), Delivery::reconcile)
            .map_err(|e| format!("cannot start the delivery thread: {e}"))?;
        *d.reconciler.lock() = Some(reconciler);
        Ok(d)
    }

    /// Starts the views of trails that have something to deliver and stops those that are done.
    fn reconcile(&self) {
        let trails = self.shared.trails.describe(&[]);
        let mut running = self.running.lock();
        // Views that finished: a stopped trail with nothing left, or a deleted one (its state goes too).
        let statuses = self.shared.status.lock().clone();
        let done: Vec<String> =
            running.keys().filter(|name| statuses.get(*name).is_some_and(|s| s.idle)).cloned().collect();
        for name in done {
            if let Some(h) = running.remove(&name) {
                h.stop();
            }
            if statuses.get(&name).is_some_and(|s| s.deleted) {
                let dir = self.shared.dir.join(&name);
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(trail = %name, error = %e, "cannot remove the delivery state of a deleted trail");
                }
                self.shared.status.lock().remove(&name);
                tracing::info!(trail = %name, "deleted trail's delivery finished");
            }
        }
        // A trail deleted after its delivery had finished (stopped, final digests written) has no view to
        // notice the deletion: its state goes here. One whose delivery is unfinished keeps a running view,
        // which finishes it and is removed above.
        if let Ok(entries) = std::fs::read_dir(&self.shared.dir) {
            let names: std::collections::BTreeSet<&str> = trails.iter().map(|t| t.name.as_str()).collect();
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if names.contains(name.as_str()) || running.contains_key(&name) {
                    continue;
                }
                let (finished, snapshot) = match state::TrailState::load(&e.path()) {
                    Ok(Some(s)) => {
                        (s.finalized && s.outbox.is_empty(), s.trail.filter(|t| t.created == s.trail_created))
                    }
                    // Never saved: nothing was staged.
                    Ok(None) => (true, None),
                    Err(_) => (false, None),
                };
                if !finished {
                    // Deleted while the server was down, its delivery unfinished: finish it (upload the outbox,
                    // write the final digests) with the settings it last had, then its state goes.
                    if let Some(trail) = snapshot {
                        self.spawn(&mut running, trail);
                    }
                    continue;
                }
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    tracing::warn!(trail = %name, error = %err, "cannot remove the delivery state of a deleted trail");
                    continue;
                }
                self.shared.status.lock().remove(&name);
                tracing::info!(trail = %name, "deleted trail's delivery state removed");
            }
        }
        for t in trails {
            if running.contains_key(&t.name) {
                continue;
            }
            let status = self.shared.status.lock().get(&t.name).cloned();
            // A trail that logs, or one whose delivery has not finished (a stop to close, files to upload).
            let unfinished = self.shared.dir.join(&t.name).join(state::STATE_FILE).exists()
                && status.as_ref().is_none_or(|s| !s.idle);
            if !t.logging.is_logging && !unfinished {
                continue;
            }
            self.spawn(&mut running, t);
        }
    }

    /// Opens a trail's delivery and runs it as a view.
    fn spawn(&self, running: &mut BTreeMap<String, views::ViewHandle>, t: service::trails::Trail) {
        let name = t.name.clone();
        let view = match trail::TrailDelivery::open(self.shared.clone(), t) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(trail = %name, error = %e, "cannot open the trail's delivery");
                return;
            }
        };
        match views::spawn(view, self.feed.clone(), &self.set, views::RunOptions::default()) {
            Ok(h) => {
                running.insert(name, h);
            }
            Err(e) => tracing::error!(trail = %name, error = %e, "cannot start the trail's delivery"),
        }
    }

    /// The delivery status of a trail, for GetTrailStatus.
    pub fn status(&self, trail: &str) -> Option<TrailStatus> {
        self.shared.status.lock().get(trail).cloned()
    }

    /// `opentrail_delivery_*` families for /metrics.
    pub fn render_metrics(&self, out: &mut String) {
        let counters = self.shared.counters.lock().clone();
        let statuses = self.shared.status.lock().clone();
        type Pick = fn(&Counters) -> u64;
        let families: [(&str, &str, &str, Pick); 4] = [
            ("opentrail_delivery_log_files_total", "counter", "Log files delivered to a trail's bucket.", |c| {
                c.log_files
            }),
            ("opentrail_delivery_digests_total", "counter", "Digest files delivered to a trail's bucket.", |c| {
                c.digests
            }),
            ("opentrail_delivery_events_total", "counter", "Events delivered in a trail's log files.", |c| c.events),
            ("opentrail_delivery_errors_total", "counter", "Failed uploads to a trail's bucket (each retried).", |c| {
                c.errors
            }),
        ];
        for (name, kind, help, pick) in families {
            exposition::header(out, name, kind, help);
            for (trail, c) in &counters {
                exposition::sample(out, name, &[("trail", trail)], pick(c));
            }
        }
        exposition::header(
            out,
            "opentrail_delivery_outbox_objects",
            "gauge",
            "Objects staged for a trail's bucket and not yet delivered.",
        );
        for (trail, s) in &statuses {
            exposition::sample(out, "opentrail_delivery_outbox_objects", &[("trail", trail)], s.outbox as u64);
        }
    }

    /// Stops every trail's view (each finishes its current batch; staged files stay in the outbox).
    pub fn shutdown(&self) {
        if let Some(r) = self.reconciler.lock().take() {
            r.stop();
        }
        let running = std::mem::take(&mut *self.running.lock());
        for (_, h) in running {
            h.stop();
        }
    }
}
