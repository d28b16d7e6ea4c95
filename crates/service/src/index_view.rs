//! The event-history index as a view of the journal: [`IndexView`] applies index fields to the
//! `EventIndex`, fed by [`HandoffFeed`] — the fields parsed at ingest, handed off by the journal's
//! completion callbacks, with the journal itself as the fallback for records durable before this process
//! started (or whose hand-off a failed apply used up). Run by the `views` runner like every other view;
//! what sets it apart is the store's use of it: its lag is the one back-pressure on ingest, and its
//! progress is what `wait_indexed` and read-your-writes wait for.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use index::EventIndex;
use journal::Journal;
use model::{IndexFields, Record, Seq};
use parking_lot::{Condvar, Mutex};
use views::{Feed, View, ViewError};

use crate::metrics::Metrics;

/// The index view's name: its `view` label in `/metrics`.
pub const INDEX_VIEW: &str = "index";

/// Index fields parsed at ingest, waiting for the index (saves re-parsing the journal), and the hand-off
/// watermark: every durable seq up to it is in the map or already indexed. The journal runs its completion
/// callbacks in seq order after each fsync, and each callback fills the map before it moves the watermark,
/// so the feed never needs to guess whether a durable record's fields are still on their way.
///
/// Its own `Arc`, so a callback never holds the store (and with it the journal) alive: the last handle on a
/// store must not be dropped on the journal's own writer thread.
pub(crate) struct Handoff {
    state: Mutex<HandoffState>,
    cv: Condvar,
}

struct HandoffState {
    fields: BTreeMap<u64, IndexFields>,
    /// Highest seq handed off (or durable at open, whose records the feed reads from the journal).
    watermark: u64,
}

impl Handoff {
    pub(crate) fn new(durable_at_open: Option<Seq>) -> Handoff {
        let watermark = durable_at_open.map_or(0, |s| s.0);
        Handoff { state: Mutex::new(HandoffState { fields: BTreeMap::new(), watermark }), cv: Condvar::new() }
    }

    /// Called by a journal completion callback: `fields` are the records `first..` just made durable.
    pub(crate) fn hand_off(&self, first: Seq, last: Seq, fields: Vec<IndexFields>) {
        let mut h = self.state.lock();
        for (i, f) in fields.into_iter().enumerate() {
            h.fields.insert(first.0 + i as u64, f);
        }
        // Callbacks run in seq order, so every durable seq up to here is now handed off.
        h.watermark = h.watermark.max(last.0);
        drop(h);
        self.cv.notify_all();
    }
}

/// The index's feed: handed-off fields, the journal for the rest.
pub(crate) struct HandoffFeed {
    handoff: Arc<Handoff>,
    journal: Journal,
    metrics: Arc<Metrics>,
}

impl HandoffFeed {
    pub(crate) fn new(handoff: Arc<Handoff>, journal: Journal, metrics: Arc<Metrics>) -> HandoffFeed {
        HandoffFeed { handoff, journal, metrics }
    }
}

impl Feed for HandoffFeed {
    type Item = IndexFields;

    fn durable(&self) -> Option<Seq> {
        Some(Seq(self.handoff.state.lock().watermark)).filter(|s| s.0 > 0)
    }

    fn wait_beyond(&self, seq: Option<Seq>, timeout: Duration) -> Option<Seq> {
        let mut h = self.handoff.state.lock();
        if h.watermark <= seq.map_or(0, |s| s.0) {
            self.handoff.cv.wait_for(&mut h, timeout);
        }
        Some(Seq(h.watermark)).filter(|s| s.0 > 0)
    }

    fn read(&self, from: Seq, to: Seq) -> Result<Vec<(Seq, IndexFields)>, ViewError> {
        let mut got = {
            let mut h = self.handoff.state.lock();
            // Entries below `from` were indexed by a replay that read the journal: drop them.
            let mut wanted = h.fields.split_off(&from.0);
            h.fields = wanted.split_off(&(to.0 + 1));
            wanted
        };
        if (got.len() as u64) < to.0 - from.0 + 1 {
            // Records durable before this process started were never handed off: read them from the journal.
            let first_missing = (from.0..=to.0).find(|s| !got.contains_key(s)).unwrap_or(from.0);
            for item in self.journal.scan(Seq(first_missing)) {
                let (seq, payload) = item?;
                if seq > to {
                    break;
                }
                if got.contains_key(&seq.0) {
                    continue;
                }
                match Record::from_payload(payload) {
                    Ok(r) => {
                        got.insert(seq.0, r.fields);
                    }
                    Err(e) => {
                        // Every stored record was validated at ingest, so this is damage, not bad input.
                        self.metrics.index_replay_parse_failures.fetch_add(1, Relaxed);
                        tracing::error!(%seq, error = %e, "stored record cannot be parsed; it stays in the journal but is not indexed");
                    }
                }
            }
        }
        Ok(got.into_iter().map(|(s, f)| (Seq(s), f)).collect())
    }
}

/// The event-history index as a view. Shares the index with the store (lookups, dedupe) and the in-flight
/// set of client-given eventIDs, which it empties as their records become findable.
pub(crate) struct IndexView {
    index: Arc<EventIndex>,
    in_flight: Arc<Mutex<HashSet<String>>>,
    metrics: Arc<Metrics>,
}

impl IndexView {
    pub(crate) fn new(
        index: Arc<EventIndex>,
        in_flight: Arc<Mutex<HashSet<String>>>,
        metrics: Arc<Metrics>,
    ) -> IndexView {
        IndexView { index, in_flight, metrics }
    }
}

impl View for IndexView {
    type Item = IndexFields;

    fn name(&self) -> &str {
        INDEX_VIEW
    }

    /// The index's checkpoint is written atomically with its postings, so after a restart it claims
    /// nothing it does not hold.
    fn checkpoint(&self) -> Option<Seq> {
        self.index.checkpoint()
    }

    fn apply(&mut self, items: Vec<(Seq, IndexFields)>, through: Seq) -> Result<(), ViewError> {
        let refs: Vec<(Seq, &IndexFields)> = items.iter().map(|(s, f)| (*s, f)).collect();
        let applied = self.index.apply_through(&refs, through);
        // The index's checkpoint has moved past what it took in (even from a batch that then failed) before
        // any id leaves the in-flight set: `EventStore::enqueue` relies on this order.
        let checkpoint = self.index.checkpoint();
        let mut taken = 0;
        {
            let mut in_flight = self.in_flight.lock();
            for (seq, f) in &items {
                if Some(*seq) <= checkpoint {
                    in_flight.remove(&f.event_id);
                    taken += 1;
                }
            }
        }
        self.metrics.index_applied_events.fetch_add(taken, Relaxed);
        applied.map_err(ViewError::apply)
    }
}
