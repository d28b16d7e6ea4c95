//! The registry of views: who is running, how far each has applied, how far behind the journal it is, how
//! often it failed; rendered in the Prometheus text format for `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use exposition::{header, sample};
use model::Seq;
use parking_lot::{Condvar, Mutex};

use crate::ViewError;

/// How far one view has got: its applied seq (waitable) and its counters. Shared by the view's runner (the
/// only writer) and whoever waits on it or reports it.
#[derive(Debug)]
pub struct Progress {
    name: String,
    applied: Mutex<Option<Seq>>,
    cv: Condvar,
    applied_records: AtomicU64,
    skipped: AtomicU64,
    errors: AtomicU64,
}

impl Progress {
    fn new(name: &str, applied: Option<Seq>) -> Progress {
        Progress {
            name: name.to_string(),
            applied: Mutex::new(applied),
            cv: Condvar::new(),
            applied_records: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last seq applied (the view's checkpoint as its runner last saw it).
    pub fn applied(&self) -> Option<Seq> {
        *self.applied.lock()
    }

    /// Blocks until every seq up to `seq` is applied, or `timeout` passes; true when it is.
    pub fn wait_for(&self, seq: Seq, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut applied = self.applied.lock();
        while *applied < Some(seq) {
            if self.cv.wait_until(&mut applied, deadline).timed_out() {
                return *applied >= Some(seq);
            }
        }
        true
    }

    /// Records applied since this process started (skipped ones not included).
    pub fn applied_records(&self) -> u64 {
        self.applied_records.load(Relaxed)
    }

    /// Records the feed could not decode, which the view moved past.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Relaxed)
    }

    /// Failed applies, reads and ticks (each retried).
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    pub(crate) fn publish(&self, through: Seq, applied: u64, skipped: u64) {
        self.applied_records.fetch_add(applied, Relaxed);
        self.skipped.fetch_add(skipped, Relaxed);
        let mut a = self.applied.lock();
        *a = (*a).max(Some(through));
        drop(a);
        self.cv.notify_all();
    }

    /// After a failed apply the view may have taken in part of its batch: its checkpoint is the truth.
    pub(crate) fn reset(&self, checkpoint: Option<Seq>) {
        *self.applied.lock() = checkpoint;
        self.cv.notify_all();
    }

    pub(crate) fn count_error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
}

/// One view's figures at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewStatus {
    pub name: String,
    pub applied: Option<Seq>,
    /// Durable journal records the view has not applied yet.
    pub lag: u64,
    pub errors: u64,
    pub skipped: u64,
}

/// The running views, by name. Views are added when their runner is created and removed when it is dropped
/// (a stopped thread, a deleted trail), so the set is always what runs now.
pub struct ViewSet {
    /// The journal's durable seq: every view's lag is measured against it.
    head: Box<dyn Fn() -> Option<Seq> + Send + Sync>,
    views: Mutex<BTreeMap<String, Arc<Progress>>>,
}

impl ViewSet {
    /// `head` gives the journal's durable seq, against which every view's lag is measured.
    pub fn new(head: impl Fn() -> Option<Seq> + Send + Sync + 'static) -> ViewSet {
        ViewSet { head: Box::new(head), views: Mutex::new(BTreeMap::new()) }
    }

    /// Adds a view named `name` whose checkpoint is `applied`; it stays until the registration is dropped.
    /// Usually called by [`crate::Runner::new`].
    pub fn register(self: &Arc<Self>, name: &str, applied: Option<Seq>) -> Result<Registration, ViewError> {
        let mut views = self.views.lock();
        if views.contains_key(name) {
            return Err(ViewError::DuplicateName { name: name.to_string() });
        }
        let progress = Arc::new(Progress::new(name, applied));
        views.insert(name.to_string(), progress.clone());
        Ok(Registration { set: Arc::downgrade(self), progress })
    }

    /// The journal's durable seq.
    pub fn head(&self) -> Option<Seq> {
        (self.head)()
    }

    /// The progress of the view named `name`, while it runs.
    pub fn progress(&self, name: &str) -> Option<Arc<Progress>> {
        self.views.lock().get(name).cloned()
    }

    /// Every registered view, by name.
    pub fn statuses(&self) -> Vec<ViewStatus> {
        let views: Vec<Arc<Progress>> = self.views.lock().values().cloned().collect();
        // Read the head after the applied seqs, so a view is never shown ahead of the journal.
        let applied: Vec<Option<Seq>> = views.iter().map(|p| p.applied()).collect();
        let head = self.head().map_or(0, |s| s.0);
        views
            .iter()
            .zip(applied)
            .map(|(p, applied)| ViewStatus {
                name: p.name.clone(),
                applied,
                lag: head.saturating_sub(applied.map_or(0, |s| s.0)),
                errors: p.errors(),
                skipped: p.skipped(),
            })
            .collect()
    }

    /// The views' metric families in the Prometheus text format, each header once.
    pub fn render(&self, out: &mut String) {
        let statuses = self.statuses();
        let families: [Family; 4] = [
            ("opentrail_view_lag_events", "gauge", "Durable journal records a view has not applied yet.", |s| s.lag),
            ("opentrail_view_applied_seq", "gauge", "Last journal seq a view applied (0: none).", |s| {
                s.applied.map_or(0, |a| a.0)
            }),
            (
                "opentrail_view_errors_total",
                "counter",
                "Failed applies, reads and ticks of a view (each retried).",
                |s| s.errors,
            ),
            (
                "opentrail_view_skipped_records_total",
                "counter",
                "Journal records a view moved past because they could not be decoded.",
                |s| s.skipped,
            ),
        ];
        for (name, kind, help, value) in families {
            header(out, name, kind, help);
            for s in &statuses {
                sample(out, name, &[("view", &s.name)], value(s));
            }
        }
    }
}

/// A metric family of the views: name, type, help, and the figure of one view.
type Family = (&'static str, &'static str, &'static str, fn(&ViewStatus) -> u64);

/// A view's place in a [`ViewSet`]; dropping it removes the view from the set.
pub struct Registration {
    set: Weak<ViewSet>,
    progress: Arc<Progress>,
}

impl Registration {
    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(set) = self.set.upgrade() {
            let mut views = set.views.lock();
            if views.get(&self.progress.name).is_some_and(|p| Arc::ptr_eq(p, &self.progress)) {
                views.remove(&self.progress.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn views_come_and_go_and_render_their_lag_once_per_family() {
        let head = Arc::new(AtomicU64::new(10));
        let h = head.clone();
        let set = Arc::new(ViewSet::new(move || Some(Seq(h.load(Relaxed))).filter(|s| s.0 > 0)));
        let index = set.register("index", Some(Seq(7))).unwrap();
        let trail = set.register("trail:a\"b", None).unwrap();
        assert!(matches!(set.register("index", None), Err(ViewError::DuplicateName { .. })));
        trail.progress().publish(Seq(4), 3, 1);
        let mut out = String::new();
        set.render(&mut out);
        assert!(out.contains("opentrail_view_lag_events{view=\"index\"} 3\n"), "{out}");
        assert!(out.contains("opentrail_view_lag_events{view=\"trail:a\\\"b\"} 6\n"), "{out}");
        assert!(out.contains("opentrail_view_applied_seq{view=\"index\"} 7\n"), "{out}");
        assert!(out.contains("opentrail_view_skipped_records_total{view=\"trail:a\\\"b\"} 1\n"), "{out}");
        assert_eq!(out.matches("# TYPE opentrail_view_lag_events gauge").count(), 1, "{out}");
        drop(trail);
        assert_eq!(set.statuses().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["index"]);
        // The name is free again once its view is gone.
        let again = set.register("trail:a\"b", None).unwrap();
        drop(index);
        assert_eq!(set.statuses().len(), 1);
        drop(again);
        assert!(set.statuses().is_empty());
    }
}
