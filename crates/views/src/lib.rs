//! Views: everything derived from the journal. A view tails the journal in seq order, applies records and
//! keeps its own checkpoint (the last seq applied); the journal stays the only truth, so a view can always
//! be rebuilt by replaying it from an earlier checkpoint.
//!
//! The parts:
//! * [`View`] — what a view does with records (the event-history index, a trail's delivery, Insights, a
//!   columnar lake); [`Feed`] — where its records come from (seq order, with a wake-up when more are durable).
//! * [`Runner`] — the one loop: wait until the feed's durable seq passes the checkpoint (or a tick is due),
//!   read a bounded batch, apply it, publish progress ([`Progress`], waitable), retry failures with back-off.
//!   Stepped inline ([`Runner::catch_up`], a replay before serving) or on its own named thread
//!   ([`Runner::spawn`] / [`spawn`] → [`ViewHandle`], stopped and joined on request or drop).
//! * [`ViewSet`] — the registry of running views (added and removed at runtime), each with its applied seq,
//!   lag behind the journal and error count, rendered for `/metrics`.
//! * [`JournalFeed`] — the journal as a feed of [`model::StoredRecord`]s (text as stored + provenance, not parsed),
//!   for every view but the index.
//!
//! Architecture invariant: a view never holds back ingest. The runner only reads; back-pressure on capture is
//! the store's decision (today only for the index, whose lag makes lookups stale), never this crate's.

mod journal_feed;
mod periodic;
mod registry;
mod runner;

use std::time::Duration;

use model::Seq;

pub use journal_feed::JournalFeed;
pub use periodic::Periodic;
pub use registry::{Progress, Registration, ViewSet, ViewStatus};
pub use runner::{DEFAULT_BATCH, RunOptions, Runner, ViewHandle, spawn};

/// A consumer of the journal that keeps its own checkpoint.
pub trait View: Send + 'static {
    type Item: Send;

    /// Its name: the `view` label of its metrics and the name of its thread, e.g. `index`, `trail:audit`.
    /// Unique among the views of one [`ViewSet`].
    fn name(&self) -> &str;

    /// The last seq this view has taken in: [`View::apply`] makes `through` the checkpoint. Read once when the
    /// runner starts (and again after a failed apply, which may have taken in part of its batch); the
    /// runner feeds every seq after it. After a restart it must be what the view made durable — so a view
    /// that buffers (a trail's log file not yet cut) reports the end of what it delivered, and gets the
    /// buffered records again.
    fn checkpoint(&self) -> Option<Seq>;

    /// Applies `items` — in seq order, every readable seq in `(checkpoint, through]` (an unreadable record is
    /// skipped by the feed, so seqs may be missing) — and makes `through` the checkpoint. On `Err` the
    /// runner logs and counts it, waits (with back-off) and retries from [`View::checkpoint`], so a view
    /// must not claim records it did not apply.
    fn apply(&mut self, items: Vec<(Seq, Self::Item)>, through: Seq) -> Result<(), ViewError>;

    /// Time-driven work (a trail cutting its log file every interval, retries of a delivery); called at
    /// least every [`View::tick_every`] even when no records arrive. An `Err` is logged and counted, the
    /// runner feeds again from [`View::checkpoint`] (as after a failed apply), and the next tick comes after
    /// the interval again.
    fn tick(&mut self) -> Result<(), ViewError> {
        Ok(())
    }

    /// How often [`View::tick`] must run; `None` (the default): never.
    fn tick_every(&self) -> Option<Duration> {
        None
    }

    /// Called once on the view's thread when the runner stops (after its last apply).
    fn close(&mut self) -> Result<(), ViewError> {
        Ok(())
    }
}

/// A source of records in seq order: the journal, or the index's hand-off of fields parsed at ingest.
pub trait Feed: Send + Sync {
    type Item;

    /// The highest seq that may be read (durable, and handed off where the feed has a hand-off).
    fn durable(&self) -> Option<Seq>;

    /// Blocks until [`Feed::durable`] passes `seq` or `timeout` passes; returns it.
    fn wait_beyond(&self, seq: Option<Seq>, timeout: Duration) -> Option<Seq>;

    /// Every readable record with a seq in `[from, to]` (`to` at most [`Feed::durable`]), in seq order. A
    /// record that cannot be decoded is logged and left out (the caller counts the gap as skipped), so a
    /// view moves past damage instead of stopping; an `Err` is a read that may succeed when retried.
    fn read(&self, from: Seq, to: Seq) -> Result<Vec<(Seq, Self::Item)>, ViewError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The journal could not be read (retried).
    #[error("reading the journal: {0}")]
    Journal(#[from] journal::JournalError),
    /// The view could not apply its batch or do its time-driven work; the view's own error inside.
    #[error(transparent)]
    Apply(Box<dyn std::error::Error + Send + Sync>),
    #[error("a view named {name} is already registered")]
    DuplicateName { name: String },
    #[error("cannot start the thread of view {name}: {source}")]
    Spawn {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

impl ViewError {
    /// Wraps a view's own error (an index error, an object-store error) for [`View::apply`] and [`View::tick`].
    pub fn apply(e: impl std::error::Error + Send + Sync + 'static) -> ViewError {
        ViewError::Apply(Box::new(e))
    }
}
