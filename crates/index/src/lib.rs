//! The event-history index: a rebuildable view over the journal answering lookups by attribute, time and category.
//!
//! A segmented inverted index, search-engine style (byte layouts and crash analysis in `docs/formats/index.md`):
//! * the **memtable** holds the most recent events in hash maps, visible to lookups as soon as `apply` returns;
//! * when it holds [`IndexOptions::memtable_docs`] events (and on [`EventIndex::persist`]) it is written as an
//!   immutable **segment**: docs sorted in result order (time desc, seq desc), a term dictionary, block-coded
//!   posting lists of local doc ids, an exact table of UUID event ids and a bloom filter over all ids;
//! * segments stay on disk: only small structures are resident (sparse indexes of the doc table, id table and
//!   dictionary, the bloom filter, page checksums); everything else is read on demand in checked 4 KiB pages
//!   through one bounded LRU [block cache](IndexOptions::cache_bytes) per index;
//! * segments of similar size are **merged** (tiered), on a background thread, and published by swapping an
//!   `Arc`'d list, so lookups keep the old set until the new one is complete; a merge streams its output to
//!   disk, reading each input once, in order, around the cache;
//! * the **manifest** names the live segments and the persisted checkpoint; every file is replaced by
//!   temp + fsync + rename + directory fsync, so a crash leaves the old or the new set, never a mix.
//!
//! [`EventIndex::checkpoint`] is the last seq applied (memtable included). After [`EventIndex::open`] it is the
//! last seq persisted, and the caller replays the journal after it: at most one memtable's worth of events.

mod files;
mod memtable;
mod order;
mod postings;
mod segment;
mod stream;
mod term;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use model::{AttributeKey, EventCategory, EventQuery, EventTime, IndexFields, QueryCategory, Seq};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::files::Manifest;
use crate::memtable::{Memtable, TopK};
use crate::order::Bounds;
use crate::segment::{BlockCache, Segment};

/// Counts of the matches of a query (see [`EventIndex::count`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    /// Matches per value of the `by` attribute (a multi-valued attribute counts an event under each value).
    pub by: std::collections::HashMap<Vec<u8>, u64>,
    /// Matches without any value of the `by` attribute.
    pub without: u64,
}

impl Counts {
    /// The `by` values, most frequent first (ties by value), as text.
    pub fn ranked(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> =
            self.by.iter().map(|(k, n)| (String::from_utf8_lossy(k).into_owned(), *n)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// A place in the newest-first order: the next page starts strictly after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub time: EventTime,
    pub seq: Seq,
}

/// One matching record: its journal seq and event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub seq: Seq,
    pub time: EventTime,
}

impl Hit {
    /// The cursor to pass as `after` to continue right after this hit.
    pub fn position(&self) -> Position {
        Position { time: self.time, seq: self.seq }
    }
}

/// One page of a lookup, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Page {
    pub hits: Vec<Hit>,
    /// At least one further match exists after the last hit.
    pub more: bool,
}

impl Page {
    /// Where the next page starts, if there is one.
    pub fn next_position(&self) -> Option<Position> {
        if self.more { self.hits.last().map(Hit::position) } else { None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index i/o failed: {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index file {} is corrupted at byte {offset}: {reason}", file.display())]
    Corrupted { file: PathBuf, offset: u64, reason: String },
    #[error("records must be applied in increasing seq order: seq {seq} came after seq {previous}")]
    OutOfOrder { seq: Seq, previous: Seq },
    #[error("index segment too large: {what}")]
    SegmentTooLarge { what: &'static str },
}

/// Tuning of an index. The defaults are what the server uses; tests shrink the memtable to cross segment
/// boundaries with a handful of events.
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Events the memtable holds before it is flushed to a segment.
    pub memtable_docs: usize,
    /// Segments per merge (and per size tier).
    pub merge_factor: usize,
    /// Merge on a background thread (the server) or inline after each flush (deterministic, for tests).
    pub background_merge: bool,
    /// Bytes of the block cache shared by all segments (whole 4 KiB pages; 0 caches nothing).
    pub cache_bytes: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        // 64 Ki events: ~0.5 s of ingest at target rate, a few ms of replay on restart, and a flush of ~5 MB.
        // 64 MiB of block cache (hard-coded default): the hot blocks of lookups and eventId checks of several
        // million events, a small share of the server's 1 GiB RSS budget.
        IndexOptions { memtable_docs: 64 * 1024, merge_factor: 4, background_merge: true, cache_bytes: 64 << 20 }
    }
}

/// Events inserted per hold of the memtable's write lock, so lookups never wait for a whole batch.
/// Hard-coded: a latency knob, not a format.
const INSERT_CHUNK: usize = 256;

struct Shared {
    dir: PathBuf,
    opts: IndexOptions,
    cache: Arc<BlockCache>,
    /// Lock order: `mem` before `segments`. A flush holds both to move events from one to the other.
    mem: RwLock<Memtable>,
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    /// Last applied seq, 0 = none (journal seqs start at 1).
    checkpoint: AtomicU64,
    /// Serialises `apply`, `persist` and inline merges.
    writer: Mutex<()>,
    /// The manifest as last written; held while a new one is written and published.
    manifest: Mutex<Manifest>,
    /// Above every segment id taken so far (a flush takes its id at its start but writes the manifest's
    /// `next_id` at its end): [`EventIndex::generation`] reads it without waiting for a flush.
    ids_taken: AtomicU64,
    /// Held for a whole merge: the background thread and `compact` must never pick overlapping inputs.
    merging: Mutex<()>,
    stop: AtomicBool,
    merge_wake: Mutex<bool>,
    merge_cv: Condvar,
}

/// A point in the index's history: segments made after it have an id at least this (see
/// [`EventIndex::contains_event_ids_since`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

/// The event-history index. `Send + Sync`: lookups run concurrently; `apply` calls are serialised internally.
pub struct EventIndex {
    shared: Arc<Shared>,
    merger: Option<JoinHandle<()>>,
}

impl EventIndex {
    /// Opens (or creates) the index stored in `dir`, with the server's options.
    pub fn open(dir: &Path) -> Result<EventIndex, IndexError> {
        EventIndex::open_with(dir, IndexOptions::default())
    }

    pub fn open_with(dir: &Path, opts: IndexOptions) -> Result<EventIndex, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
            op: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let manifest = Manifest::load(dir)?;
        files::remove_unlisted(dir, &manifest)?;
        let cache = Arc::new(BlockCache::new(opts.cache_bytes, segment::PAGE, |page| page.len()));
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for &id in &manifest.segments {
            let path = dir.join(files::segment_name(id));
            segments.push(Arc::new(Segment::open(id, path, cache.clone())?));
        }
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            cache,
            mem: RwLock::new(Memtable::default()),
            segments: RwLock::new(Arc::new(segments)),
            checkpoint: AtomicU64::new(manifest.checkpoint),
            ids_taken: AtomicU64::new(manifest.next_id),
            writer: Mutex::new(()),
            manifest: Mutex::new(manifest),
            merging: Mutex::new(()),
            stop: AtomicBool::new(false),
            merge_wake: Mutex::new(false),
            merge_cv: Condvar::new(),
            opts,
        });
        let merger = if shared.opts.background_merge {
            let s = shared.clone();
            let handle = std::thread::Builder::new()
                .name("index-merge".into())
                .spawn(move || s.run_merger())
                .map_err(|source| IndexError::Io { op: "start merge thread", path: dir.to_path_buf(), source })?;
            Some(handle)
        } else {
            None
        };
        let index = EventIndex { shared, merger };
        index.shared.wake_merger();
        Ok(index)
    }

    /// The last journal seq applied, if any.
    pub fn checkpoint(&self) -> Option<Seq> {
        match self.shared.checkpoint.load(Ordering::Acquire) {
            0 => None,
            s => Some(Seq(s)),
        }
    }

    /// Applies records in seq order; seqs <= checkpoint are skipped (idempotent replay); the checkpoint moves
    /// to the last seq.
    pub fn apply(&self, batch: &[(Seq, &IndexFields)]) -> Result<(), IndexError> {
        match batch.last() {
            Some(&(last, _)) => self.apply_through(batch, last),
            None => Ok(()),
        }
    }

    /// Like [`EventIndex::apply`], but the checkpoint moves to `through` even when the batch is empty or ends
    /// earlier: the caller skipped journal records it cannot index and must not be asked for them again.
    pub fn apply_through(&self, batch: &[(Seq, &IndexFields)], through: Seq) -> Result<(), IndexError> {
        let s = &*self.shared;
        let _writer = s.writer.lock();
        let checkpoint = s.checkpoint.load(Ordering::Acquire);
        let pending: Vec<(Seq, &IndexFields)> = batch.iter().copied().filter(|(seq, _)| seq.0 > checkpoint).collect();
        if let Some(w) = pending.windows(2).find(|w| w[1].0 <= w[0].0) {
            return Err(IndexError::OutOfOrder { seq: w[1].0, previous: w[0].0 });
        }
        let mut i = 0;
        while i < pending.len() {
            let full = {
                let mut mem = s.mem.write();
                let end = (i + INSERT_CHUNK).min(pending.len());
                while i < end && mem.len() < s.opts.memtable_docs {
                    mem.insert(pending[i].0, pending[i].1);
                    i += 1;
                }
                mem.len() >= s.opts.memtable_docs
            };
            if i > 0 {
                s.checkpoint.store(pending[i - 1].0.0, Ordering::Release);
            }
            if full {
                s.flush(s.checkpoint.load(Ordering::Acquire))?;
                s.after_flush()?;
            }
        }
        let last = pending.last().map_or(0, |(seq, _)| seq.0);
        s.checkpoint.store(checkpoint.max(last).max(through.0), Ordering::Release);
        Ok(())
    }

    /// One page of matches of `query`, newest first, starting strictly after `after`.
    pub fn lookup(&self, query: &EventQuery, limit: usize, after: Option<Position>) -> Result<Page, IndexError> {
        let Some(bounds) = Bounds::of(query, after) else {
            return Ok(Page::default());
        };
        let (category, insight) = match query.category {
            QueryCategory::Standard => (EventCategory::Standard, false),
            QueryCategory::Insight => (EventCategory::Insight, true),
        };
        let mut top = TopK::new(limit.saturating_add(1));
        let segments = {
            let mem = self.shared.mem.read();
            let segments = self.shared.segments.read().clone();
            if let Some(plan) = mem.plan(&query.conditions, category) {
                mem.search(&plan, insight, bounds, &mut top);
            }
            segments
        };
        // Newest segments first: once the page is full, older segments are cut short or skipped.
        let mut order: Vec<(order::Rank, &Arc<Segment>)> =
            segments.iter().filter_map(|s| Some((s.first_rank()?, s))).collect();
        order.sort_by_key(|&(first, _)| first);
        for (_, s) in order {
            s.search(&query.conditions, category, bounds, &mut top)?;
        }
        let mut hits: Vec<Hit> =
            top.into_sorted().into_iter().map(|r| Hit { seq: Seq(r.seq), time: EventTime(r.time) }).collect();
        let more = hits.len() > limit;
        hits.truncate(limit);
        Ok(Page { hits, more })
    }

    /// How many events match `query`, and with `by`, how many of them carry each value of that attribute
    /// (exact; from postings alone, no record is read). `by` values sorted by count descending, then value.
    pub fn count(&self, query: &EventQuery, by: Option<AttributeKey>) -> Result<Counts, IndexError> {
        let mut acc = Counts::default();
        let Some(bounds) = Bounds::of(query, None) else { return Ok(acc) };
        let category = match query.category {
            QueryCategory::Standard => EventCategory::Standard,
            QueryCategory::Insight => EventCategory::Insight,
        };
        let segments = {
            let mem = self.shared.mem.read();
            if let Some(plan) = mem.plan(&query.conditions, category) {
                mem.count(&plan, category, bounds, by, &mut acc);
            }
            self.shared.segments.read().clone()
        };
        for s in segments.iter() {
            s.count(&query.conditions, category, bounds, by, &mut acc)?;
        }
        Ok(acc)
    }

    /// The seq of the first record indexed with this eventId. Cheap for absent ids (a bloom probe per segment),
    /// because ingest asks it for every record it dedupes.
    pub fn find_event_id(&self, event_id: &str) -> Result<Option<Seq>, IndexError> {
        let uuid = term::parse_uuid(event_id);
        let bloom_key = term::bloom_key(event_id);
        let (in_memtable, segments) = {
            let mem = self.shared.mem.read();
            (mem.find_event_id(event_id), self.shared.segments.read().clone())
        };
        let mut first: Option<Seq> = None;
        for s in segments.iter() {
            if let Some(seq) = s.find_event_id(event_id, uuid, bloom_key)? {
                first = Some(first.map_or(seq, |f| f.min(seq)));
            }
        }
        // Segments hold only seqs older than the memtable's.
        Ok(first.or(in_memtable))
    }

    /// For each id, whether it is indexed: [`EventIndex::find_event_id`] for a batch (ingest's dedupe), with
    /// the memtable's lock taken and the segment list read once, and a segment search stopped at the first
    /// hit (whether, not where).
    pub fn contains_event_ids(&self, event_ids: &[&str]) -> Result<Vec<bool>, IndexError> {
        self.contains_in(event_ids, 0)
    }

    /// Where the index is now, for [`EventIndex::contains_event_ids_since`]: the next segment id.
    pub fn generation(&self) -> Generation {
        Generation(self.shared.ids_taken.load(Ordering::Acquire))
    }

    /// [`EventIndex::contains_event_ids`] for ids that were not indexed when they were looked for, after
    /// `since` was taken: what was indexed after that look is in the memtable or in a segment made since
    /// (a flush takes its id after the events it writes were applied, a merge after the segments it reads
    /// were made), never in an older segment, whose blooms are not probed. Ingest's second look at a batch,
    /// after the index moved while the batch was being prepared.
    pub fn contains_event_ids_since(&self, event_ids: &[&str], since: Generation) -> Result<Vec<bool>, IndexError> {
        self.contains_in(event_ids, since.0)
    }

    /// Looks in the memtable and in the segments whose id is at least `min_segment`.
    fn contains_in(&self, event_ids: &[&str], min_segment: u64) -> Result<Vec<bool>, IndexError> {
        let (mut found, segments) = {
            let mem = self.shared.mem.read();
            let found: Vec<bool> = event_ids.iter().map(|id| mem.find_event_id(id).is_some()).collect();
            (found, self.shared.segments.read().clone())
        };
        let segments: Vec<&Arc<Segment>> = segments.iter().filter(|s| s.id >= min_segment).collect();
        for (id, found) in event_ids.iter().zip(found.iter_mut()) {
            if *found || segments.is_empty() {
                continue;
            }
            let (uuid, bloom_key) = (term::parse_uuid(id), term::bloom_key(id));
            for s in segments.iter() {
                if s.find_event_id(id, uuid, bloom_key)?.is_some() {
                    *found = true;
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Makes everything applied so far durable: flushes the memtable to a segment and writes the manifest.
    pub fn persist(&self) -> Result<(), IndexError> {
        let s = &*self.shared;
        let _writer = s.writer.lock();
        let checkpoint = s.checkpoint.load(Ordering::Acquire);
        let dirty = !s.mem.read().is_empty() || s.manifest.lock().checkpoint != checkpoint;
        if dirty {
            s.flush(checkpoint)?;
            s.after_flush()?;
        }
        Ok(())
    }

    /// Persists, then runs every merge the policy wants now, on this thread. For benchmarks and maintenance.
    pub fn compact(&self) -> Result<(), IndexError> {
        self.persist()?;
        let _writer = self.shared.writer.lock();
        while self.shared.merge_once()? {}
        Ok(())
    }

    /// Bytes of the index's files on disk.
    pub fn disk_bytes(&self) -> u64 {
        files::dir_bytes(&self.shared.dir)
    }

    /// Live segments and their event counts, oldest first, for size reports.
    pub fn segment_sizes(&self) -> Vec<usize> {
        self.shared.segments.read().iter().map(|s| s.n_docs).collect()
    }

    /// Heap bytes resident for the live segments (the memtable and the block cache aside).
    pub fn heap_bytes(&self) -> usize {
        self.shared.segments.read().iter().map(|s| s.heap_bytes()).sum()
    }

    /// Bytes of pages held by the block cache now (at most [`IndexOptions::cache_bytes`]).
    pub fn cache_resident_bytes(&self) -> usize {
        self.shared.cache.weight()
    }

    /// (hits, misses) of the block cache since open.
    pub fn cache_hit_counts(&self) -> (u64, u64) {
        self.shared.cache.hit_counts()
    }

    /// Bytes of the live segments by part: doc table, id table, postings, dictionary, resident sections.
    pub fn disk_bytes_by_part(&self) -> Vec<(&'static str, u64)> {
        let mut total = segment::Parts::default();
        for s in self.shared.segments.read().iter() {
            let p = s.parts();
            total.docs += p.docs;
            total.ids += p.ids;
            total.postings += p.postings;
            total.dictionary += p.dictionary;
            total.resident += p.resident;
        }
        vec![
            ("doc table", total.docs),
            ("id table", total.ids),
            ("postings", total.postings),
            ("dictionary", total.dictionary),
            ("resident sections", total.resident),
        ]
    }
}

impl Drop for EventIndex {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake_merger();
        if let Some(h) = self.merger.take() {
            let _ = h.join();
        }
    }
}

impl Shared {
    /// Writes the memtable (if not empty) as a new segment and a manifest with `checkpoint`, then publishes
    /// both at once. Caller holds `writer`.
    fn flush(&self, checkpoint: u64) -> Result<(), IndexError> {
        let mut manifest = self.manifest.lock();
        let mut next = manifest.clone();
        next.checkpoint = checkpoint;
        let segment = {
            // Lookups keep reading the memtable meanwhile (shared lock); `apply` waits on `writer` anyway.
            let mem = self.mem.read();
            if mem.is_empty() {
                None
            } else {
                let id = next.next_id;
                next.next_id += 1;
                // Taken for good, even if this flush fails: a retry gets a larger id (the orphan file, if any,
                // is removed at the next open), so no segment is ever made with an id below `ids_taken`.
                manifest.next_id = next.next_id;
                self.ids_taken.fetch_max(next.next_id, Ordering::AcqRel);
                next.segments.push(id);
                Some(Arc::new(segment::write_from_memtable(&self.dir, id, &mem, &self.cache)?))
            }
        };
        next.store(&self.dir)?;
        if let Some(segment) = segment {
            let mut mem = self.mem.write();
            let mut segments = self.segments.write();
            let mut list = (**segments).clone();
            list.push(segment);
            *segments = Arc::new(list);
            *mem = Memtable::default();
        }
        *manifest = next;
        Ok(())
    }

    fn after_flush(&self) -> Result<(), IndexError> {
        if self.opts.background_merge {
            self.wake_merger();
            Ok(())
        } else {
            while self.merge_once()? {}
            Ok(())
        }
    }

    fn wake_merger(&self) {
        *self.merge_wake.lock() = true;
        self.merge_cv.notify_all();
    }

    fn run_merger(&self) {
        loop {
            {
                let mut woken = self.merge_wake.lock();
                while !*woken && !self.stop.load(Ordering::Acquire) {
                    self.merge_cv.wait_for(&mut woken, Duration::from_secs(1));
                }
                *woken = false;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            loop {
                match self.merge_once() {
                    Ok(true) if !self.stop.load(Ordering::Acquire) => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, dir = %self.dir.display(), "index merge failed; segments stay unmerged");
                        break;
                    }
                }
            }
        }
    }

    /// Merges one group of segments if the policy wants to. Returns whether it did.
    fn merge_once(&self) -> Result<bool, IndexError> {
        let _merging = self.merging.lock();
        let snapshot = self.segments.read().clone();
        let Some(inputs) = pick_merge(&snapshot, &self.opts) else { return Ok(false) };
        let id = {
            let mut manifest = self.manifest.lock();
            let id = manifest.next_id;
            manifest.next_id += 1;
            self.ids_taken.fetch_max(manifest.next_id, Ordering::AcqRel);
            id
        };
        let merged = Arc::new(segment::merge(&self.dir, id, &inputs, &self.cache)?);
        let input_ids: Vec<u64> = inputs.iter().map(|s| s.id).collect();
        {
            let mut manifest = self.manifest.lock();
            let mut next = manifest.clone();
            if !input_ids.iter().all(|id| next.segments.contains(id)) {
                // Unreachable while `merging` is held; checked because publishing would duplicate events.
                return Err(IndexError::Corrupted {
                    file: self.dir.join("MANIFEST"),
                    offset: 0,
                    reason: "merge inputs no longer live".into(),
                });
            }
            next.segments.retain(|id| !input_ids.contains(id));
            next.segments.push(id);
            next.store(&self.dir)?;
            let mut segments = self.segments.write();
            let mut list: Vec<Arc<Segment>> = segments.iter().filter(|s| !input_ids.contains(&s.id)).cloned().collect();
            list.push(merged);
            *segments = Arc::new(list);
            *manifest = next;
        }
        for s in &inputs {
            // Unlisted now; a file that survives a failed removal is removed at the next open.
            if let Err(error) = std::fs::remove_file(&s.path) {
                tracing::warn!(%error, file = %s.path.display(), "cannot remove merged segment");
            }
        }
        Ok(true)
    }
}

/// Tiered policy: a segment's tier is how many times `merge_factor` its size exceeds the memtable's; the
/// lowest tier holding `merge_factor` segments has its smallest ones merged. Every event is thus rewritten
/// about log_factor(total / memtable) times, and the segment count stays logarithmic.
fn pick_merge(segments: &[Arc<Segment>], opts: &IndexOptions) -> Option<Vec<Arc<Segment>>> {
    let factor = opts.merge_factor.max(2);
    let tier = |docs: usize| {
        let mut t = 0;
        let mut cap = opts.memtable_docs.max(1);
        while docs > cap {
            cap = cap.saturating_mul(factor);
            t += 1;
        }
        t
    };
    let mut by_tier: std::collections::BTreeMap<usize, Vec<Arc<Segment>>> = Default::default();
    for s in segments {
        by_tier.entry(tier(s.n_docs)).or_default().push(s.clone());
    }
    for (_, mut group) in by_tier {
        if group.len() < factor {
            continue;
        }
        group.sort_by_key(|s| s.n_docs);
        group.truncate(factor);
        if group.iter().map(|s| s.n_docs).sum::<usize>() <= segment::MAX_SEGMENT_DOCS {
            return Some(group);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::EventIndex>();
    }
}
