//! The event store: the journal (truth) plus the event-history index (a view, run by the `views` runner
//! like every other view), with eventID dedupe and back-pressure on ingest, and the registry where the
//! other views (trail delivery, Insights, a lake) are added.
//!
//! Flow: `ingest` validates nothing (callers pass parsed [`Record`]s), drops records whose eventID is
//! already stored or in flight, hands the rest to the journal's group commit and returns after the fsync.
//! The journal callback hands the parsed index fields to the index view's feed (`index_view.rs`), which
//! the view applies in seq order; on replay (after a restart) the feed re-reads the journal instead.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use index::{EventIndex, Position};
use journal::{Journal, JournalError, JournalOptions};
use model::{AttributeKey, EventQuery, IndexFields, PayloadError, Record, Seq};
use parking_lot::Mutex;
use views::{JournalFeed, Progress, RunOptions, Runner, ViewError, ViewHandle, ViewSet};

use crate::index_view::{Handoff, HandoffFeed, IndexView};
use crate::metrics::{JournalFigures, Metrics};

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    /// Back-pressure limit of the journal queue.
    pub max_queued_bytes: Option<usize>,
    /// Back-pressure from the index: ingest answers "busy" while more than this many durable records
    /// wait to become visible to lookups (a slow index must slow capture down, not grow memory). The only
    /// view whose lag holds back ingest: the others catch up from the journal at their own pace.
    pub max_index_lag: u64,
    /// Whether to run the index view on its own thread after the catch-up at open (off only in tests that
    /// need a lagging index).
    pub run_indexer: bool,
}

/// Hard-coded: after a group commit fails for a full disk, writes are refused at once (503) for this
/// long; the next write after it probes the disk again.
pub const DISK_FULL_BACKOFF: Duration = Duration::from_secs(1);

/// Hard-coded: how long after a full disk the store counts as degraded (see [`EventStore::degraded`]).
pub const DEGRADED_WINDOW: Duration = Duration::from_secs(60);

/// Hard-coded: how long a get by eventID waits for the index to catch up with what was durable when it
/// was asked (the index is normally milliseconds behind).
pub const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(5);

/// Hard-coded: [`EventStore::ingest`] queues a batch of server-assigned ids from the async worker itself only
/// below this many bytes of JSON; larger ones go to a blocking thread, where the journal compresses them.
const INLINE_SUBMIT_MAX_BYTES: usize = 64 << 10;

/// Hard-coded default of [`StoreOptions::max_index_lag`]: a few seconds of ingest at full speed.
pub const DEFAULT_MAX_INDEX_LAG: u64 = 250_000;

impl StoreOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            max_queued_bytes: None,
            max_index_lag: DEFAULT_MAX_INDEX_LAG,
            run_indexer: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The journal's queue is full: retry after a moment.
    #[error("the journal is saturated ({queued_bytes} bytes queued, limit {limit}); retry later")]
    Busy { queued_bytes: usize, limit: usize },
    #[error("the disk holding the journal is full; retry once space is freed")]
    DiskFull,
    #[error("the journal stopped accepting writes after a failed fsync; it must be reopened")]
    Poisoned,
    #[error("journal: {0}")]
    Journal(#[source] JournalError),
    #[error("index: {0}")]
    Index(#[from] index::IndexError),
    #[error("stored record {seq} is unreadable: {source}")]
    Unreadable {
        seq: Seq,
        #[source]
        source: PayloadError,
    },
    /// A view could not be registered, started or brought up to date.
    #[error("view: {0}")]
    View(#[source] ViewError),
    #[error("the store is shutting down")]
    Closed,
    /// The index is too far behind the journal: retry after a moment.
    #[error("lookups are {lag} records behind ingest (limit {limit}); retry later")]
    IndexBehind { lag: u64, limit: u64 },
}

impl StoreError {
    /// True for conditions that pass by themselves (HTTP 503 + Retry-After).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Busy { .. }
                | StoreError::IndexBehind { .. }
                | StoreError::DiskFull
                | StoreError::Poisoned
                | StoreError::Closed
        )
    }
}

impl From<ViewError> for StoreError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::Journal(e) => e.into(),
            ViewError::Apply(e) => match e.downcast::<index::IndexError>() {
                Ok(e) => StoreError::Index(*e),
                Err(e) => StoreError::View(ViewError::Apply(e)),
            },
            other => StoreError::View(other),
        }
    }
}

impl From<JournalError> for StoreError {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::Backpressure { queued_bytes, limit } => StoreError::Busy { queued_bytes, limit },
            JournalError::DiskFull { .. } => StoreError::DiskFull,
            JournalError::Poisoned => StoreError::Poisoned,
            JournalError::Closed => StoreError::Closed,
            other => StoreError::Journal(other),
        }
    }
}

/// One record to ingest. `client_id` is false when the server assigned the eventID (no dedupe needed:
/// a fresh UUIDv4 cannot collide).
#[derive(Debug)]
pub struct IngestItem {
    pub record: Record,
    pub client_id: bool,
}

#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// The eventID of every item, in input order (duplicates included: ingest is idempotent).
    pub event_ids: Vec<String>,
    pub stored: usize,
    pub duplicates: usize,
    pub last_seq: Option<Seq>,
}

/// A batch queued for the journal's next group commit; resolves once it is durable (or failed).
pub struct PendingIngest {
    outcome: IngestOutcome,
    rx: Option<tokio::sync::oneshot::Receiver<Result<journal::SeqRange, JournalError>>>,
    /// Client-given ids this batch put in flight.
    ids: Vec<String>,
    stored: usize,
    inner: Arc<Inner>,
}

impl PendingIngest {
    pub async fn wait(mut self) -> Result<IngestOutcome, StoreError> {
        let res = match self.rx.take() {
            None => return Ok(self.outcome),
            Some(rx) => rx.await.map_err(|_| StoreError::Closed)?,
        };
        self.finish(res)
    }

    fn finish(mut self, res: Result<journal::SeqRange, JournalError>) -> Result<IngestOutcome, StoreError> {
        let inner = &self.inner;
        match res {
            Ok(range) => {
                self.outcome.stored = self.stored;
                self.outcome.last_seq = Some(range.last);
                inner.metrics.events_ingested.fetch_add(self.stored as u64, Relaxed);
                inner.metrics.events_duplicate.fetch_add(self.outcome.duplicates as u64, Relaxed);
                Ok(self.outcome)
            }
            Err(e) => {
                // Not acknowledged. If the bytes did reach the disk, replay indexes them and the
                // index then dedupes a retry.
                let mut in_flight = inner.in_flight.lock();
                for id in &self.ids {
                    in_flight.remove(id);
                }
                inner.metrics.backpressure_rejections.fetch_add(1, Relaxed);
                Err(e.into())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: Seq,
    pub json: String,
    pub fields: IndexFields,
}

#[derive(Debug, Default)]
pub struct LookupResult {
    pub events: Vec<StoredEvent>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<Position>,
}

/// A count by attribute reads the matching records themselves when there are at most this many (hard-coded: at
/// 10 M events, reading a few hundred records beats visiting every value's postings in every segment).
pub const COUNT_BY_RECORDS_MAX: u64 = 512;

/// What [`EventStore::check`] found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub journal_records: u64,
    pub indexed: u64,
    pub problems: Vec<String>,
}

struct Inner {
    journal: Journal,
    index: Arc<EventIndex>,
    metrics: Arc<Metrics>,
    max_index_lag: u64,
    /// eventIDs submitted to the journal and not yet indexed (the index view empties it).
    in_flight: Arc<Mutex<HashSet<String>>>,
    /// Where the journal's completion callbacks hand the parsed index fields to the index view.
    handoff: Arc<Handoff>,
    /// When a group commit last failed for a full disk: writes are refused at once for a moment after.
    /// Its own `Arc` for the same reason as `handoff`: the callbacks touch it.
    disk_full_at: Arc<Mutex<Option<Instant>>>,
    /// Every running view (the index among them), for metrics and for adding more.
    views: Arc<ViewSet>,
    /// The journal as decoded records, for every view but the index.
    record_feed: Arc<JournalFeed>,
    /// The index view's progress: last seq applied to the index, waitable.
    indexed: Arc<Progress>,
}

/// The index view: on its thread, or held idle (`run_indexer: false`) so it stays registered.
enum Indexer {
    Running(ViewHandle),
    Idle(#[allow(dead_code)] Runner<IndexView, HandoffFeed>),
}

/// Cheap to clone; the index view's thread stops when [`EventStore::shutdown`] is called (or the last clone
/// is dropped).
#[derive(Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
    indexer: Arc<Mutex<Option<Indexer>>>,
}

impl EventStore {
    /// Opens (or creates) the store, recovers the journal, and brings the index up to date with it
    /// before returning, so that dedupe and lookups see every acknowledged record.
    pub fn open(opts: StoreOptions, metrics: Arc<Metrics>) -> Result<EventStore, StoreError> {
        let mut jopts = JournalOptions::new(opts.data_dir.join("journal"));
        if let Some(limit) = opts.max_queued_bytes {
            jopts.max_queued_bytes = limit;
        }
        let (journal, recovery) = Journal::open(jopts)?;
        if recovery.truncated_tail_bytes > 0 {
            tracing::warn!(
                bytes = recovery.truncated_tail_bytes,
                last_seq = ?recovery.last_seq,
                "journal recovery dropped a torn tail (never acknowledged)"
            );
        }
        let index = Arc::new(EventIndex::open(&opts.data_dir.join("index"))?);
        let head = journal.clone();
        let views = Arc::new(ViewSet::new(move || head.durable_seq()));
        let handoff = Arc::new(Handoff::new(journal.durable_seq()));
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let view = IndexView::new(index.clone(), in_flight.clone(), metrics.clone());
        let feed = Arc::new(HandoffFeed::new(handoff.clone(), journal.clone(), metrics.clone()));
        let mut runner = Runner::new(view, feed, &views, RunOptions::default())?;
        // Catch up synchronously: until the index covers the journal, dedupe could miss a stored id.
        let started = Instant::now();
        let replayed = runner.catch_up()?;
        if replayed > 0 {
            tracing::info!(replayed, elapsed_ms = started.elapsed().as_millis() as u64, "index caught up with journal");
        }
        let indexed = runner.progress().clone();
        let indexer = if opts.run_indexer { Indexer::Running(runner.spawn()?) } else { Indexer::Idle(runner) };
        let inner = Arc::new(Inner {
            record_feed: Arc::new(JournalFeed::new(journal.clone())),
            journal,
            index,
            metrics,
            max_index_lag: opts.max_index_lag,
            in_flight,
            handoff,
            disk_full_at: Arc::new(Mutex::new(None)),
            views,
            indexed,
        });
        Ok(EventStore { inner, indexer: Arc::new(Mutex::new(Some(indexer))) })
    }

    /// The registry of running views: add one with `views::spawn(view, store.record_feed(), store.views(),
    /// RunOptions::default())`; its lag, applied seq and errors then appear in [`EventStore::render_metrics`].
    /// A view added here never holds back ingest (only the index's lag does).
    pub fn views(&self) -> &Arc<ViewSet> {
        &self.inner.views
    }

    /// The journal as a feed of decoded records (provenance included), for views other than the index.
    pub fn record_feed(&self) -> Arc<JournalFeed> {
        self.inner.record_feed.clone()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Stores the records durably (fsync'd) and returns their eventIDs. Records whose eventID is already
    /// stored, in flight, or repeated within the batch are not stored twice.
    pub async fn ingest(&self, items: Vec<IngestItem>) -> Result<IngestOutcome, StoreError> {
        // Deduplicating client-given eventIDs may read index pages from disk, and a large batch is compressed
        // before it is queued (`Journal::prepare`): keep both off the async workers. Small batches of
        // server-assigned ids need neither, so they are queued right here.
        let large = items.iter().map(|i| i.record.json().len()).sum::<usize>() >= INLINE_SUBMIT_MAX_BYTES;
        let pending = if large || items.iter().any(|i| i.client_id) {
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.submit(items)).await.map_err(|_| StoreError::Closed)??
        } else {
            self.submit(items)?
        };
        pending.wait().await
    }

    /// Deduplicates the batch and queues it for the next group commit; the returned [`PendingIngest`]
    /// resolves once it is durable. Blocking (may read the index). Refuses at once, storing nothing, when
    /// the index is too far behind, the journal's queue is full, or the disk was found full a moment ago.
    pub fn submit(&self, items: Vec<IngestItem>) -> Result<PendingIngest, StoreError> {
        self.admit()?;
        self.enqueue(items, true)
    }

    /// Queues the audit record of an API call. Audit records are held back neither by the index lag nor by
    /// the journal's queue limit (they are one per call in flight and small, and lookups must go on while
    /// ingest is pushed back), only by a journal that cannot write.
    pub fn submit_audit(&self, item: IngestItem) -> Result<PendingIngest, StoreError> {
        self.admit_audit()?;
        self.enqueue(vec![item], false)
    }

    /// `limited`: held back by the journal's queue limit (bulk writes) or not (audit records).
    fn enqueue(&self, items: Vec<IngestItem>, limited: bool) -> Result<PendingIngest, StoreError> {
        let inner = &self.inner;
        let mut outcome = IngestOutcome { event_ids: Vec::with_capacity(items.len()), ..Default::default() };
        // Client-given ids already stored, probed without holding the in-flight lock (index reads may hit
        // the disk). The index view moves the index's checkpoint before it drops ids from the in-flight set
        // (`IndexView::apply`), so if the checkpoint has not moved by the time we hold the lock, an id
        // absent from both was never stored.
        let indexed_before = inner.index.checkpoint();
        let generation = inner.index.generation();
        let mut seen_here = HashSet::new();
        let mut stored_already = vec![false; items.len()];
        // Ids first met in this batch, probed against the index together (one lock, one segment list).
        let mut probe: Vec<(usize, &str)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if item.client_id {
                let id = item.record.fields.event_id.as_str();
                if seen_here.insert(id) {
                    probe.push((i, id));
                } else {
                    stored_already[i] = true;
                }
            }
        }
        drop(seen_here);
        let probe_ids: Vec<&str> = probe.iter().map(|(_, id)| *id).collect();
        for ((i, _), found) in probe.iter().zip(inner.index.contains_event_ids(&probe_ids)?) {
            stored_already[*i] = found;
        }
        drop(probe_ids);
        drop(probe);
        // The payloads are made and compressed (`Journal::prepare`, the bulk of the journal's CPU) before the
        // in-flight lock, so concurrent batches compress in parallel; under the lock only the in-flight check
        // and the queueing remain, so ids are in flight from the moment their batch is queued, and a batch
        // that finds one of its ids in flight is queued after the batch that holds it, as before.
        let mut payloads = Vec::with_capacity(items.len());
        let mut fields = Vec::with_capacity(items.len());
        // For each payload, its client-given id (checked against the in-flight set under the lock).
        let mut client_ids: Vec<Option<String>> = Vec::with_capacity(items.len());
        let mut frame_text: Option<(model::Provenance, Option<String>)> = None;
        for (item, already) in items.into_iter().zip(stored_already) {
            outcome.event_ids.push(item.record.fields.event_id.clone());
            if already {
                outcome.duplicates += 1;
                continue;
            }
            client_ids.push(item.client_id.then(|| item.record.fields.event_id.clone()));
            let (json, f) = item.record.into_parts();
            // A batch's records share one provenance: its text form is made once, not per record.
            if frame_text.as_ref().is_none_or(|(p, _)| *p != f.provenance) {
                frame_text = Some((f.provenance.clone(), f.provenance.frame_text()));
            }
            let text = frame_text.as_ref().and_then(|(_, t)| t.as_deref());
            payloads.push(model::Provenance::frame_with(text, json.as_bytes()));
            fields.push(f);
        }
        let mut batch = if payloads.is_empty() { None } else { Some(inner.journal.prepare(payloads)?) };
        let mut in_flight = inner.in_flight.lock();
        let recheck = inner.index.checkpoint() != indexed_before;
        let mut ids = Vec::new();
        let mut dup_at = Vec::new();
        // Ids neither stored at the probe nor in flight now; if the index moved since the probe, one of them
        // may have been indexed (and left the in-flight set) meanwhile: looked for again, in what was indexed
        // since the probe only.
        let mut absent: Vec<(usize, String)> = Vec::new();
        for (i, id) in client_ids.into_iter().enumerate() {
            let Some(id) = id else { continue };
            if in_flight.contains(&id) {
                dup_at.push(i);
            } else {
                absent.push((i, id));
            }
        }
        if recheck && !absent.is_empty() {
            let look: Vec<&str> = absent.iter().map(|(_, id)| id.as_str()).collect();
            let found = inner.index.contains_event_ids_since(&look, generation)?;
            drop(look);
            for ((i, id), found) in absent.into_iter().zip(found) {
                if found { dup_at.push(i) } else { ids.push(id) }
            }
            dup_at.sort_unstable();
        } else {
            ids.extend(absent.into_iter().map(|(_, id)| id));
        }
        if !dup_at.is_empty() {
            // Rare (the same ids sent twice at once, or indexed since the probe): drop them and let the writer
            // compress what is left, rather than compressing again under the lock.
            outcome.duplicates += dup_at.len();
            let records = batch.take().map(journal::Batch::into_records).unwrap_or_default();
            let mut dup = dup_at.into_iter().peekable();
            let (mut kept_records, mut kept_fields) = (Vec::new(), Vec::new());
            for (i, (r, f)) in records.into_iter().zip(fields).enumerate() {
                if dup.next_if_eq(&i).is_none() {
                    kept_records.push(r);
                    kept_fields.push(f);
                }
            }
            fields = kept_fields;
            batch = (!kept_records.is_empty()).then(|| journal::Batch::from(kept_records));
        }
        let Some(batch) = batch else {
            inner.metrics.events_duplicate.fetch_add(outcome.duplicates as u64, Relaxed);
            return Ok(PendingIngest { outcome, rx: None, ids, stored: 0, inner: inner.clone() });
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stored = batch.len();
        let handoff = inner.handoff.clone();
        let disk_full_at = inner.disk_full_at.clone();
        let done = Box::new(move |res: Result<journal::SeqRange, JournalError>| {
            match &res {
                Ok(range) => handoff.hand_off(range.first, range.last, fields),
                Err(JournalError::DiskFull { .. }) => {
                    *disk_full_at.lock() = Some(Instant::now());
                }
                Err(_) => {}
            }
            let _ = tx.send(res);
        });
        let submitted =
            if limited { inner.journal.submit(batch, done) } else { inner.journal.submit_exempt(batch, done) };
        if let Err(e) = submitted {
            if matches!(e, JournalError::Backpressure { .. }) {
                inner.metrics.backpressure_rejections.fetch_add(1, Relaxed);
            }
            return Err(e.into());
        }
        in_flight.extend(ids.iter().cloned());
        drop(in_flight);
        Ok(PendingIngest { outcome, rx: Some(rx), ids, stored, inner: inner.clone() })
    }

    /// Whether an audit record would be refused right now: the journal poisoned or the disk found full
    /// within the last [`DISK_FULL_BACKOFF`].
    pub fn admit_audit(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        if inner.journal.is_poisoned() {
            return Err(StoreError::Poisoned);
        }
        if inner.disk_full_at.lock().is_some_and(|at| at.elapsed() < DISK_FULL_BACKOFF) {
            inner.metrics.backpressure_rejections.fetch_add(1, Relaxed);
            return Err(StoreError::DiskFull);
        }
        Ok(())
    }

    /// Whether a group commit failed for a full disk within the last [`DEGRADED_WINDOW`]: while it did,
    /// callers that normally answer before their record is durable (reads) wait for it instead.
    pub fn degraded(&self) -> bool {
        self.inner.disk_full_at.lock().is_some_and(|at| at.elapsed() < DEGRADED_WINDOW)
    }

    /// Whether a write would be refused right now, without queuing anything: the journal poisoned or
    /// closed, the disk found full within the last [`DISK_FULL_BACKOFF`], or the index too far behind.
    /// The audit path asks before it lets a call change anything. Only the index's lag counts: the other
    /// views (trail delivery, …) read the journal at their own pace and never hold back ingest.
    pub fn admit(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        self.admit_audit()?;
        let lag = self.index_lag();
        if lag > inner.max_index_lag {
            inner.metrics.backpressure_rejections.fetch_add(1, Relaxed);
            return Err(StoreError::IndexBehind { lag, limit: inner.max_index_lag });
        }
        Ok(())
    }

    /// One page of a lookup, newest first, strictly after `after`.
    pub fn lookup(
        &self,
        query: &EventQuery,
        limit: usize,
        after: Option<Position>,
    ) -> Result<LookupResult, StoreError> {
        let inner = &self.inner;
        inner.metrics.lookups.fetch_add(1, Relaxed);
        let page = inner.index.lookup(query, limit, after)?;
        let seqs: Vec<Seq> = page.hits.iter().map(|h| h.seq).collect();
        let bodies = inner.journal.read_many(&seqs)?;
        let mut events = Vec::with_capacity(bodies.len());
        for (seq, body) in seqs.iter().zip(bodies) {
            events.push(decode(*seq, body)?);
        }
        let next = if page.more { page.hits.last().map(|h| Position { time: h.time, seq: h.seq }) } else { None };
        Ok(LookupResult { events, next })
    }

    /// How many events match `query`, and with `by`, how many of them carry each value of that attribute
    /// (exact). From the index's postings, except a `by` over at most [`COUNT_BY_RECORDS_MAX`] matches: those
    /// few records are read instead, which is cheaper than visiting every value's postings in every segment.
    pub fn count(&self, query: &EventQuery, by: Option<AttributeKey>) -> Result<index::Counts, StoreError> {
        let inner = &self.inner;
        inner.metrics.lookups.fetch_add(1, Relaxed);
        let Some(key) = by else { return Ok(inner.index.count(query, None)?) };
        let total = inner.index.count(query, None)?.total;
        if total > COUNT_BY_RECORDS_MAX {
            return Ok(inner.index.count(query, by)?);
        }
        let page = inner.index.lookup(query, COUNT_BY_RECORDS_MAX as usize, None)?;
        if page.more {
            // Events arrived between the two reads: count from postings after all.
            return Ok(inner.index.count(query, by)?);
        }
        let seqs: Vec<Seq> = page.hits.iter().map(|h| h.seq).collect();
        let mut counts = index::Counts { total: seqs.len() as u64, ..Default::default() };
        for (seq, body) in seqs.iter().zip(inner.journal.read_many(&seqs)?) {
            let e = decode(*seq, body)?;
            let mut values = key.values(&e.fields);
            values.sort_unstable();
            values.dedup();
            if values.is_empty() {
                counts.without += 1;
            }
            for v in values {
                *counts.by.entry(v.as_bytes().to_vec()).or_default() += 1;
            }
        }
        Ok(counts)
    }

    /// The stored record with this eventID. Reads its own writes: a record acknowledged before the call is
    /// found even when the indexer has not applied it yet (the call waits, at most [`READ_YOUR_WRITES_WAIT`],
    /// for the index to reach the durable seq it saw on entry).
    pub fn get(&self, event_id: &str) -> Result<Option<StoredEvent>, StoreError> {
        // Both positions are read before the lookup: an indexer that catches up between the lookup and a later
        // read would make a miss look final (it was, under load: an acknowledged event reported absent).
        let durable = self.durable_seq();
        let indexed = self.indexed_seq();
        let mut found = self.inner.index.find_event_id(event_id)?;
        if found.is_none()
            && let Some(durable) = durable
            && indexed < Some(durable)
        {
            self.wait_indexed(durable, READ_YOUR_WRITES_WAIT);
            found = self.inner.index.find_event_id(event_id)?;
        }
        match found {
            None => Ok(None),
            Some(seq) => Ok(Some(decode(seq, self.inner.journal.read(seq)?)?)),
        }
    }

    /// Blocks until every record up to `seq` is visible to lookups, or the timeout passes.
    pub fn wait_indexed(&self, seq: Seq, timeout: Duration) -> bool {
        self.inner.indexed.wait_for(seq, timeout)
    }

    pub fn durable_seq(&self) -> Option<Seq> {
        self.inner.journal.durable_seq()
    }

    /// Durable records not yet visible to lookups. Saturating: the indexer may pass the durable seq read a
    /// moment earlier.
    pub fn index_lag(&self) -> u64 {
        let durable = self.durable_seq().map_or(0, |s| s.0);
        durable.saturating_sub(self.indexed_seq().map_or(0, |s| s.0))
    }

    pub fn indexed_seq(&self) -> Option<Seq> {
        self.inner.indexed.applied()
    }

    pub fn journal_figures(&self) -> JournalFigures {
        let s = self.inner.journal.stats();
        JournalFigures {
            bytes_on_disk: s.bytes_on_disk,
            records: s.records,
            queued_bytes: s.queued_bytes as u64,
            fsyncs: s.fsyncs,
            fsync_seconds_sum: s.total_fsync_micros as f64 / 1e6,
            fsync_buckets: s
                .fsync_histogram
                .iter()
                .filter_map(|b| b.le_micros.map(|le| (le as f64 / 1e6, b.count)))
                .collect(),
            poisoned: self.inner.journal.is_poisoned(),
        }
    }

    pub fn render_metrics(&self) -> String {
        let lag = self.index_lag();
        self.inner.metrics.index_lag_events.store(lag, Relaxed);
        let mut text = self.inner.metrics.render(&self.journal_figures());
        self.inner.views.render(&mut text);
        text
    }

    /// Bytes on disk of the journal and the index.
    pub fn disk_bytes(&self) -> (u64, u64) {
        (self.inner.journal.stats().bytes_on_disk, self.inner.index.disk_bytes())
    }

    pub fn is_healthy(&self) -> bool {
        !self.inner.journal.is_poisoned()
    }

    /// Verifies that the index agrees with the journal: every journal record is found by its eventID at
    /// its own seq, and the index holds exactly as many events as the journal. For operators
    /// (`opentrail check`) and crash tests; reads everything, so it takes a while on big stores.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let inner = &self.inner;
        let mut report = CheckReport::default();
        let Some(durable) = inner.journal.durable_seq() else { return Ok(report) };
        if inner.index.checkpoint() != Some(durable) {
            report.problems.push(format!("index checkpoint {:?} != journal end {durable}", inner.index.checkpoint()));
        }
        for item in inner.journal.scan(Seq(1)) {
            let (seq, body) = item?;
            report.journal_records += 1;
            let id = match decode(seq, body) {
                Ok(e) => e.fields.event_id,
                Err(e) => {
                    report.problems.push(e.to_string());
                    continue;
                }
            };
            match inner.index.find_event_id(&id)? {
                Some(s) if s == seq => {}
                other => report.problems.push(format!("record {seq} ({id}) is indexed at {other:?}")),
            }
        }
        for category in [model::QueryCategory::Standard, model::QueryCategory::Insight] {
            let q = EventQuery { category, ..Default::default() };
            let mut after = None;
            loop {
                let page = inner.index.lookup(&q, 10_000, after)?;
                report.indexed += page.hits.len() as u64;
                match (page.more, page.hits.last()) {
                    (true, Some(h)) => after = Some(Position { time: h.time, seq: h.seq }),
                    _ => break,
                }
            }
        }
        if report.indexed != report.journal_records {
            report.problems.push(format!("index holds {} events, journal {}", report.indexed, report.journal_records));
        }
        Ok(report)
    }

    /// Stops the index view and flushes the index. Views added by others through [`EventStore::views`]
    /// are theirs to stop.
    pub fn shutdown(&self) {
        let indexer = self.indexer.lock().take();
        if let Some(Indexer::Running(handle)) = &indexer {
            handle.stop();
        }
        drop(indexer);
        if let Err(e) = self.inner.index.persist() {
            tracing::error!(%e, "index flush at shutdown failed; it will be rebuilt from the journal");
        }
    }
}

fn decode(seq: Seq, payload: Vec<u8>) -> Result<StoredEvent, StoreError> {
    let record = Record::from_payload(payload).map_err(|source| StoreError::Unreadable { seq, source })?;
    let (json, fields) = record.into_parts();
    Ok(StoredEvent { seq, json, fields })
}
