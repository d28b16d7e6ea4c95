//! The journal: opentrail's only truth. Append-only segment files of checksummed, zstd-compressed frames, dense
//! sequence numbers, group commit with an fsync before any acknowledgement, and recovery that keeps exactly the
//! fsync'd prefix. Records are opaque byte strings; this crate knows nothing of JSON, HTTP, tokio or S3.
//!
//! Threads: one writer thread per open journal does all writes (group commit); a large batch is compressed by
//! the thread that submits it (`Journal::prepare`, `batch.rs`), so the writer only orders, writes, fsyncs and
//! publishes it; readers call `read`, `read_many` and `scan` from any thread. The byte layout is documented in `docs/formats/journal.md`.

mod batch;
mod dict;
mod error;
mod faults;
mod frame;
mod read;
mod recovery;
mod writer;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

pub use batch::Batch;
pub use error::JournalError;
pub use faults::IoFaults;
pub use frame::MAX_RECORD_BYTES;
pub use model::Seq;
pub use read::Scan;

use read::BlockCache;
use recovery::{BlockLoc, SegmentMeta};

/// How to open a journal. Start from `JournalOptions::new(dir)` and adjust fields.
#[derive(Clone)]
pub struct JournalOptions {
    pub dir: PathBuf,
    /// A new segment file is started when the current one would grow past this size.
    pub segment_bytes: u64,
    /// Raw (uncompressed) bytes per compressed block: bigger compresses better, smaller makes point reads cheaper.
    pub block_bytes: usize,
    pub zstd_level: i32,
    /// Largest zstd dictionary to train, in bytes (clamped to a hard-coded 1 MiB); 0 disables dictionaries
    /// (every frame is then compressed alone).
    pub dict_bytes: usize,
    /// Raw record bytes sampled before the first dictionary is trained. Frames written before then (and all
    /// frames when training fails) are compressed without a dictionary.
    pub dict_train_bytes: usize,
    /// Back-pressure: `submit` fails at once while this many bytes are queued or being written.
    pub max_queued_bytes: usize,
    /// Fault injection for tests; `None` in production.
    pub faults: Option<Arc<dyn IoFaults>>,
}

impl JournalOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalOptions {
            dir: dir.into(),
            segment_bytes: 128 << 20,
            // With a dictionary, 16 KiB blocks compress ~1.5 KB CloudTrail JSON better than 64 KiB blocks without
            // one, and a point read decompresses 4x less. A 256 KiB dictionary beats 112 KiB by ~8% on
            // opentrail's generator (512 KiB adds ~1%). Level 2 stores ~6% less than level 1 (206 vs 218 B/event on
            // eventgen data) for ~20% more writer CPU; the server still ingests > 100 k events/s end to end, and
            // the product's 250 B/event budget needs the bytes (examples/throughput.rs, docs/formats/journal.md).
            block_bytes: 16 << 10,
            zstd_level: 2,
            dict_bytes: 256 << 10,
            dict_train_bytes: 8 << 20,
            max_queued_bytes: 256 << 20,
            faults: None,
        }
    }
}

impl std::fmt::Debug for JournalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalOptions")
            .field("dir", &self.dir)
            .field("segment_bytes", &self.segment_bytes)
            .field("block_bytes", &self.block_bytes)
            .field("zstd_level", &self.zstd_level)
            .field("dict_bytes", &self.dict_bytes)
            .field("dict_train_bytes", &self.dict_train_bytes)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("faults", &self.faults.is_some())
            .finish()
    }
}

/// An inclusive range of sequence numbers, as assigned to one submitted batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub first: Seq,
    pub last: Seq,
}

impl SeqRange {
    pub fn len(&self) -> u64 {
        self.last.0 - self.first.0 + 1
    }

    /// Always false: a range holds at least one sequence number (empty batches are rejected).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What `open` found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub last_seq: Option<Seq>,
    /// Bytes of a torn (never acknowledged) tail cut from the last segment.
    pub truncated_tail_bytes: u64,
    pub segments: usize,
}

/// Hard-coded upper bounds (microseconds) of the fsync latency histogram buckets; a last `+Inf` bucket follows.
pub const FSYNC_BUCKETS_MICROS: [u64; 12] =
    [250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000];

/// One cumulative histogram bucket, Prometheus style: fsyncs that took at most `le_micros` (`None` = +Inf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsyncBucket {
    pub le_micros: Option<u64>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalStats {
    /// Segment files plus dictionary files.
    pub bytes_on_disk: u64,
    pub segments: usize,
    pub records: u64,
    /// Bytes submitted and not yet acknowledged (queued or being written).
    pub queued_bytes: usize,
    /// Group commits that reached disk (one fsync each, plus one per segment roll).
    pub groups: u64,
    pub fsyncs: u64,
    pub last_fsync_micros: u64,
    pub total_fsync_micros: u64,
    /// Cumulative buckets over `FSYNC_BUCKETS_MICROS` then +Inf.
    pub fsync_histogram: Vec<FsyncBucket>,
    /// Raw record bytes (with 4-byte length prefixes) written since open, and their size on disk.
    pub raw_bytes_written: u64,
    pub stored_bytes_written: u64,
    /// Sealed-segment index sidecars that could not be written (open then walks that segment's headers).
    pub sidecar_failures: u64,
    /// Dictionary files of the journal (usable or not), and their bytes (included in `bytes_on_disk`).
    pub dictionaries: usize,
    pub dictionary_bytes: u64,
    /// Dictionaries trained but not persisted (training or a write failed; frames went on without one).
    pub dictionary_failures: u64,
}

type Done = Box<dyn FnOnce(Result<SeqRange, JournalError>) + Send>;

struct Submission {
    records: Vec<Vec<u8>>,
    /// The records as frames, compressed ahead of the writer (`Journal::prepare`); `None`: the writer cuts and
    /// compresses them.
    frames: Option<batch::Frames>,
    bytes: usize,
    done: Done,
}

#[derive(Default)]
struct Queue {
    subs: Vec<Submission>,
    /// Queued plus in-flight bytes: released only when the group's callbacks ran.
    queued_bytes: usize,
    closed: bool,
}

/// Hard-coded: [`Journal::prepare`] compresses a batch ahead of the writer from this many blocks of raw bytes
/// on. Below, the writer compresses it with its neighbours (a prepared batch's last block is partial, which
/// costs little only when the batch holds many blocks).
pub const PREPARE_MIN_BLOCKS: usize = 8;

/// The raw bytes of a batch (with the 4-byte length prefixes), or why it cannot be queued.
fn check_records(records: &[Vec<u8>]) -> Result<usize, JournalError> {
    if records.is_empty() {
        return Err(JournalError::EmptyBatch);
    }
    let mut bytes = 0usize;
    for r in records {
        if r.len() > MAX_RECORD_BYTES {
            return Err(JournalError::RecordTooLarge { size: r.len(), max: MAX_RECORD_BYTES });
        }
        bytes += r.len() + 4;
    }
    Ok(bytes)
}

/// A segment as readers see it: only durable frames of it are ever in the block index.
struct ReadSegment {
    meta: SegmentMeta,
    file: Arc<File>,
}

#[derive(Default)]
struct Store {
    segments: Vec<ReadSegment>,
    blocks: Vec<BlockLoc>,
}

#[derive(Default)]
struct StatsCell {
    groups: u64,
    fsyncs: u64,
    last_fsync_micros: u64,
    total_fsync_micros: u64,
    buckets: [u64; FSYNC_BUCKETS_MICROS.len() + 1],
    raw_bytes_written: u64,
    stored_bytes_written: u64,
    sidecar_failures: u64,
    dictionary_bytes: u64,
    dictionary_failures: u64,
}

impl StatsCell {
    fn record_fsync(&mut self, took: Duration) {
        let micros = took.as_micros() as u64;
        self.fsyncs += 1;
        self.last_fsync_micros = micros;
        self.total_fsync_micros += micros;
        let i = FSYNC_BUCKETS_MICROS.iter().position(|&le| micros <= le).unwrap_or(FSYNC_BUCKETS_MICROS.len());
        self.buckets[i] += 1;
    }
}

struct Shared {
    opts: JournalOptions,
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    /// Last durable seq (0 = none), mirrored in `durable_atomic` for lock-free reads.
    durable: Mutex<u64>,
    durable_cv: Condvar,
    durable_atomic: AtomicU64,
    poisoned: AtomicBool,
    store: RwLock<Store>,
    cache: BlockCache,
    /// Every dictionary by id; the writer adds one only after its file is durable.
    dicts: RwLock<dict::Dictionaries>,
    /// The dictionary the writer compresses with, for `prepare` to compress with too: set by the writer only
    /// once its file is durable, so a prepared frame never names a dictionary that is not (invariant 6).
    encoder_dict: RwLock<Option<Arc<frame::EncoderDict>>>,
    stats: Mutex<StatsCell>,
}

impl Shared {
    fn durable(&self) -> Option<Seq> {
        match self.durable_atomic.load(Ordering::Acquire) {
            0 => None,
            s => Some(Seq(s)),
        }
    }
}

struct Inner {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Held for the journal's lifetime: a second opener of the same directory fails instead of interleaving.
    _lock: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.queue.lock().closed = true;
        self.shared.queue_cv.notify_all();
        if let Some(handle) = self.writer.lock().take() {
            // The writer drains what was queued before it exits; a panic in it has already been reported.
            let _ = handle.join();
        }
    }
}

/// A handle to an open journal. Cheap to clone; the writer thread stops when the last clone is dropped,
/// after committing everything already submitted.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl Journal {
    pub fn open(opts: JournalOptions) -> Result<(Journal, Recovery), JournalError> {
        let dir = opts.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| JournalError::io("create journal dir", &dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| JournalError::io("open lock file", &lock_path, e))?;
        lock.try_lock().map_err(|e| {
            let source = match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => {
                    std::io::Error::new(std::io::ErrorKind::WouldBlock, "journal directory is open elsewhere")
                }
            };
            JournalError::io("lock journal dir", &lock_path, source)
        })?;
        let ops = faults::FileOps { faults: opts.faults.clone() };
        let recovered = recovery::recover(&dir, &ops)?;
        let last_seq = recovered.last_seq;
        let recovery = Recovery {
            last_seq: (last_seq > 0).then_some(Seq(last_seq)),
            truncated_tail_bytes: recovered.truncated_tail_bytes,
            segments: recovered.segments.len().max(1),
        };
        let mut store = Store { segments: Vec::new(), blocks: recovered.blocks };
        for meta in recovered.segments {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&meta.path)
                .map_err(|e| JournalError::io("open segment", &meta.path, e))?;
            store.segments.push(ReadSegment { meta, file: Arc::new(file) });
        }
        let next_seq = match (store.blocks.last(), store.segments.last()) {
            (Some(b), Some(_)) if b.segment as usize == store.segments.len() - 1 => b.first_seq + u64::from(b.count),
            (_, Some(s)) => s.meta.first_seq,
            (_, None) => 1,
        };
        if store.segments.is_empty() {
            let path = recovery::segment_path(&dir, 1);
            let file = ops.create(&path).map_err(|e| JournalError::io("create segment", &path, e))?;
            ops.sync_dir(&dir).map_err(|e| JournalError::io("sync journal dir", &dir, e))?;
            store.segments.push(ReadSegment { meta: SegmentMeta { first_seq: 1, path, len: 0 }, file: Arc::new(file) });
        }
        let loaded = dict::load_all(&dir)?;
        let encoder = frame::FrameEncoder::new(opts.zstd_level)
            .map_err(|e| JournalError::io("create zstd compressor", &dir, e))?;
        let shared = Arc::new(Shared {
            opts,
            queue: Mutex::new(Queue::default()),
            queue_cv: Condvar::new(),
            durable: Mutex::new(last_seq),
            durable_cv: Condvar::new(),
            durable_atomic: AtomicU64::new(last_seq),
            poisoned: AtomicBool::new(false),
            store: RwLock::new(store),
            cache: read::block_cache(),
            dicts: RwLock::new(loaded.dicts),
            encoder_dict: RwLock::new(None),
            stats: Mutex::new(StatsCell { dictionary_bytes: loaded.bytes, ..StatsCell::default() }),
        });
        let writer = writer::Writer::new(shared.clone(), ops, encoder, next_seq, loaded.current, loaded.next_id);
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| JournalError::io("spawn writer thread", &dir, e))?;
        let inner = Inner { shared, writer: Mutex::new(Some(handle)), _lock: lock };
        Ok((Journal { inner: Arc::new(inner) }, recovery))
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Check a batch and, when it is large (at least [`PREPARE_MIN_BLOCKS`] blocks of `block_bytes`), cut it
    /// into blocks and compress them on the calling thread, so the writer thread does not: submitters
    /// compress in parallel, while the writer writes and fsyncs the groups before. Blocking (CPU: ~4 ms per
    /// MiB at level 2); call it off async workers and outside locks. Pass the result to [`Journal::submit`]
    /// or [`Journal::submit_exempt`]; small batches are returned raw, for the writer to compress with the rest
    /// of their group. Fails as `submit` would for an empty batch or an oversized record.
    pub fn prepare(&self, records: Vec<Vec<u8>>) -> Result<Batch, JournalError> {
        let bytes = check_records(&records)?;
        let opts = &self.shared().opts;
        let block_bytes = opts.block_bytes.max(1);
        if bytes < block_bytes.saturating_mul(PREPARE_MIN_BLOCKS) {
            return Ok(Batch::from(records));
        }
        let dict = self.shared().encoder_dict.read().clone();
        let frames = batch::compress(&records, block_bytes, opts.zstd_level, dict.as_ref());
        Ok(Batch { records, frames })
    }

    /// Queue records (a `Vec<Vec<u8>>`, or a [`Batch`] from [`Journal::prepare`]) for the next group commit;
    /// `done` is called from the writer thread after the fsync (or failure). Returns `Backpressure` at once
    /// when queued bytes exceed `max_queued_bytes`, and `Poisoned` after a failed fsync. On an `Err` return,
    /// `done` is never called.
    pub fn submit(
        &self,
        records: impl Into<Batch>,
        done: Box<dyn FnOnce(Result<SeqRange, JournalError>) + Send>,
    ) -> Result<(), JournalError> {
        self.queue(records.into(), done, true)
    }

    /// As [`Journal::submit`], but never refused for a full queue: for small records whose producers are
    /// bounded by other means (one audit record per API call in flight), which must not wait behind bulk
    /// writers that the queue limit pushes back.
    pub fn submit_exempt(
        &self,
        records: impl Into<Batch>,
        done: Box<dyn FnOnce(Result<SeqRange, JournalError>) + Send>,
    ) -> Result<(), JournalError> {
        self.queue(records.into(), done, false)
    }

    fn queue(
        &self,
        batch: Batch,
        done: Box<dyn FnOnce(Result<SeqRange, JournalError>) + Send>,
        limited: bool,
    ) -> Result<(), JournalError> {
        let bytes = check_records(&batch.records)?;
        let shared = self.shared();
        if shared.poisoned.load(Ordering::Acquire) {
            return Err(JournalError::Poisoned);
        }
        let limit = shared.opts.max_queued_bytes;
        let mut q = shared.queue.lock();
        if q.closed {
            return Err(JournalError::Closed);
        }
        // A batch larger than the limit is still admitted into an empty queue, or it could never be written.
        if limited && q.queued_bytes > 0 && q.queued_bytes + bytes > limit {
            return Err(JournalError::Backpressure { queued_bytes: q.queued_bytes, limit });
        }
        q.queued_bytes += bytes;
        q.subs.push(Submission { records: batch.records, frames: batch.frames, bytes, done });
        drop(q);
        shared.queue_cv.notify_one();
        Ok(())
    }

    /// Blocking convenience over `submit`: returns once the records are durable.
    pub fn append(&self, records: impl Into<Batch>) -> Result<SeqRange, JournalError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(
            records,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv().unwrap_or(Err(JournalError::Closed))
    }

    /// The last fsync'd sequence number.
    pub fn durable_seq(&self) -> Option<Seq> {
        self.shared().durable()
    }

    /// Blocks until `durable_seq > after` (or `timeout` passes); returns the current durable seq.
    pub fn wait_durable_after(&self, after: Option<Seq>, timeout: Duration) -> Option<Seq> {
        let shared = self.shared();
        let after = after.map_or(0, |s| s.0);
        let deadline = Instant::now() + timeout;
        let mut durable = shared.durable.lock();
        while *durable <= after {
            if shared.durable_cv.wait_until(&mut durable, deadline).timed_out() {
                break;
            }
        }
        (*durable > 0).then_some(Seq(*durable))
    }

    pub fn stats(&self) -> JournalStats {
        let shared = self.shared();
        let queued_bytes = shared.queue.lock().queued_bytes;
        let (bytes_on_disk, segments, first_seq) = {
            let store = shared.store.read();
            let first = store.blocks.first().map(|b| b.first_seq);
            (store.segments.iter().map(|s| s.meta.len).sum::<u64>(), store.segments.len(), first)
        };
        let durable = shared.durable_atomic.load(Ordering::Acquire);
        let records = first_seq.map_or(0, |f| durable + 1 - f);
        let dictionaries = shared.dicts.read().len();
        let s = shared.stats.lock();
        let mut cumulative = 0;
        let fsync_histogram = s
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                cumulative += n;
                FsyncBucket { le_micros: FSYNC_BUCKETS_MICROS.get(i).copied(), count: cumulative }
            })
            .collect();
        JournalStats {
            bytes_on_disk: bytes_on_disk + s.dictionary_bytes,
            segments,
            records,
            queued_bytes,
            groups: s.groups,
            fsyncs: s.fsyncs,
            last_fsync_micros: s.last_fsync_micros,
            total_fsync_micros: s.total_fsync_micros,
            fsync_histogram,
            raw_bytes_written: s.raw_bytes_written,
            stored_bytes_written: s.stored_bytes_written,
            sidecar_failures: s.sidecar_failures,
            dictionaries,
            dictionary_bytes: s.dictionary_bytes,
            dictionary_failures: s.dictionary_failures,
        }
    }

    pub fn is_poisoned(&self) -> bool {
        self.shared().poisoned.load(Ordering::Acquire)
    }
}
