//! The writer thread: drains every queued submission into one group, cuts its raw submissions into blocks and
//! compresses them (prepared submissions come as frames already, `batch.rs`), gives every frame its sequence
//! numbers, writes the frames, fsyncs once, publishes the new blocks to readers, then calls every `done`. Owns
//! rollback after a failed write.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::dict::{self, DictEntry, Sampler};
use crate::error::JournalError;
use crate::faults::FileOps;
use crate::frame::{self, EncoderDict, FrameEncoder};
use crate::recovery::{BlockLoc, SegmentMeta, segment_path, write_sidecar};
use crate::{ReadSegment, Seq, SeqRange, Shared, Submission};

/// The segment being appended to.
struct Current {
    /// Index of this segment in `Store::segments`.
    index: u32,
    first_seq: u64,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    ops: FileOps,
    encoder: FrameEncoder,
    next_seq: u64,
    cur: Current,
    /// Frames waiting to be written to `cur` at `cur.len`.
    pending: Vec<u8>,
    /// The dictionary new frames are compressed with; its file is durable. Mirrored in `Shared::encoder_dict`
    /// for `Journal::prepare`.
    dict: Option<Arc<EncoderDict>>,
    /// Collects records to train a dictionary on, while there is none (and dictionaries are enabled).
    sampler: Option<Sampler>,
    /// Next dictionary id (u32 so that running out of u16 ids is a plain comparison).
    next_dict_id: u32,
}

/// What a group placed so far: segments it created, its blocks, and the final lengths of segments it sealed.
#[derive(Default)]
struct Placed {
    created: Vec<ReadSegment>,
    blocks: Vec<BlockLoc>,
    sealed_lens: Vec<(u32, u64)>,
}

/// How a group failed: a full disk (rolled back, keep going) or anything else (poisoned).
enum GroupError {
    DiskFull(PathBuf),
    Fatal(JournalError),
}

fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        ops: FileOps,
        encoder: FrameEncoder,
        next_seq: u64,
        current_dict: Option<(u16, Vec<u8>)>,
        next_dict_id: u32,
    ) -> Writer {
        let cur = {
            let store = shared.store.read();
            let index = store.segments.len() - 1;
            let seg = &store.segments[index];
            Current {
                index: index as u32,
                first_seq: seg.meta.first_seq,
                path: seg.meta.path.clone(),
                file: seg.file.clone(),
                len: seg.meta.len,
            }
        };
        let opts = &shared.opts;
        // Go on with the newest dictionary of a reopened journal, so reopening does not retrain.
        let dict =
            current_dict.and_then(|(id, bytes)| dict::prepare_encoder(id, &bytes, opts.zstd_level)).map(Arc::new);
        shared.encoder_dict.write().clone_from(&dict);
        let sampler = (opts.dict_bytes > 0 && dict.is_none()).then(|| Sampler::new(opts.dict_train_bytes));
        Writer { shared, ops, encoder, next_seq, cur, pending: Vec::new(), dict, sampler, next_dict_id }
    }

    /// Sample the group's records and, once enough were seen, train a dictionary and persist it durably.
    /// Called before any frame of the group is encoded, so the group is the first to use it. Any failure
    /// leaves the journal on dictionary-less frames (a dictionary only saves space).
    fn sample_and_train(&mut self, subs: &[Submission]) {
        let Some(sampler) = &mut self.sampler else { return };
        for r in subs.iter().flat_map(|s| s.records.iter()) {
            sampler.add(r);
        }
        if !sampler.ready() {
            return;
        }
        let opts = &self.shared.opts;
        // Clamped: open refuses a dictionary file larger than the hard-coded MAX_DICT_BYTES.
        let trained = sampler.train(opts.dict_bytes.min(dict::MAX_DICT_BYTES));
        let Some(raw) = trained else {
            self.shared.stats.lock().dictionary_failures += 1;
            return;
        };
        let Ok(id) = u16::try_from(self.next_dict_id) else {
            // Hard limit: u16 ids in the frame header. Never reached with one dictionary per journal.
            self.sampler = None;
            return;
        };
        // Never reused, even if this attempt fails after its file got a name.
        self.next_dict_id += 1;
        let Some((enc, ddict)) = dict::prepare(id, &raw, opts.zstd_level) else {
            self.shared.stats.lock().dictionary_failures += 1;
            return;
        };
        match dict::persist(&self.ops, &opts.dir, id, &raw) {
            Ok(bytes) => {
                self.shared.dicts.write().insert(id, DictEntry::Ready(Arc::new(ddict)));
                self.shared.stats.lock().dictionary_bytes += bytes;
                let enc = Arc::new(enc);
                *self.shared.encoder_dict.write() = Some(enc.clone());
                self.dict = Some(enc);
                self.sampler = None;
            }
            // Not durable, so never referenced; the sampler collects again and a later group retries.
            Err(_) => self.shared.stats.lock().dictionary_failures += 1,
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            let subs = {
                let mut q = self.shared.queue.lock();
                while q.subs.is_empty() && !q.closed {
                    self.shared.queue_cv.wait(&mut q);
                }
                if q.subs.is_empty() {
                    return;
                }
                std::mem::take(&mut q.subs)
            };
            let bytes: usize = subs.iter().map(|s| s.bytes).sum();
            let result = if self.shared.poisoned.load(Ordering::Acquire) {
                Err(JournalError::Poisoned)
            } else {
                self.commit(&subs)
            };
            // Released before the callbacks: the group is durable (or failed), and a caller woken by its callback
            // must not observe its own bytes as still queued.
            self.shared.queue.lock().queued_bytes -= bytes;
            let mut seq = result.as_ref().map_or(0, |&first| first);
            for sub in subs {
                let r = match &result {
                    Ok(_) => {
                        let first = seq;
                        seq += sub.records.len() as u64;
                        Ok(SeqRange { first: Seq(first), last: Seq(seq - 1) })
                    }
                    Err(e) => Err(e.duplicate()),
                };
                // A panicking callback must not kill the writer (every later submit would hang).
                let done = sub.done;
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || done(r)));
            }
        }
    }

    /// Write and fsync one group. Returns the first seq assigned. Readers see nothing of it until it is durable.
    fn commit(&mut self, subs: &[Submission]) -> Result<u64, JournalError> {
        let start_seq = self.next_seq;
        let start = (self.cur.index, self.cur.first_seq, self.cur.path.clone(), self.cur.file.clone(), self.cur.len);
        let mut out = Placed::default();
        match self.write_group(subs, &mut out) {
            Ok((raw, stored)) => {
                self.publish(out.created, out.blocks, out.sealed_lens, raw, stored);
                Ok(start_seq)
            }
            Err(e) => {
                self.pending.clear();
                let rolled_back = self.rollback(&start, &out.created);
                self.cur = Current { index: start.0, first_seq: start.1, path: start.2, file: start.3, len: start.4 };
                match (e, rolled_back) {
                    (GroupError::DiskFull(path), Ok(())) => Err(JournalError::DiskFull { path }),
                    (GroupError::DiskFull(path), Err(_)) => {
                        self.shared.poisoned.store(true, Ordering::Release);
                        Err(JournalError::DiskFull { path })
                    }
                    (GroupError::Fatal(e), _) => {
                        self.shared.poisoned.store(true, Ordering::Release);
                        Err(e)
                    }
                }
            }
        }
    }

    fn write_group(&mut self, subs: &[Submission], out: &mut Placed) -> Result<(u64, u64), GroupError> {
        self.sample_and_train(subs);
        let block_bytes = self.shared.opts.block_bytes.max(1);
        let mut seq = self.next_seq;
        let mut frame = Vec::new();
        let mut raw_total = 0u64;
        // Records of consecutive raw submissions, cut into blocks of about `block_bytes` across submissions.
        let mut block: Vec<&[u8]> = Vec::new();
        let mut raw = 0usize;
        for sub in subs {
            match &sub.frames {
                None => {
                    for r in &sub.records {
                        raw += r.len() + 4;
                        block.push(r);
                        if raw >= block_bytes {
                            self.encode_block(&mut block, &mut seq, &mut frame, out)?;
                            raw_total += raw as u64;
                            raw = 0;
                        }
                    }
                }
                Some(prepared) => {
                    if !block.is_empty() {
                        self.encode_block(&mut block, &mut seq, &mut frame, out)?;
                        raw_total += raw as u64;
                        raw = 0;
                    }
                    let mut at = 0usize;
                    for info in &prepared.frames {
                        let len = info.len as usize;
                        self.place_frame(&prepared.bytes[at..at + len], seq, info.count, out)?;
                        let placed = self.pending.len() - len;
                        frame::restamp(&mut self.pending[placed..], seq);
                        at += len;
                        seq += u64::from(info.count);
                        raw_total += u64::from(info.raw);
                    }
                }
            }
        }
        if !block.is_empty() {
            self.encode_block(&mut block, &mut seq, &mut frame, out)?;
            raw_total += raw as u64;
        }
        let stored_total = out.blocks.iter().map(|b| u64::from(b.len)).sum();
        self.flush_pending()?;
        self.sync_current()?;
        self.next_seq = seq;
        Ok((raw_total, stored_total))
    }

    /// Compress `block` (its records start at `*seq`) into one frame and place it; empties `block` and moves
    /// `*seq` past it. `*raw` is left for the caller to count.
    fn encode_block(
        &mut self,
        block: &mut Vec<&[u8]>,
        seq: &mut u64,
        frame: &mut Vec<u8>,
        out: &mut Placed,
    ) -> Result<(), GroupError> {
        frame.clear();
        self.encoder
            .encode(*seq, block.iter().copied(), self.dict.as_deref(), frame)
            .map_err(|e| GroupError::Fatal(JournalError::io("compress block", &self.cur.path, e)))?;
        let count = block.len() as u32;
        self.place_frame(frame, *seq, count, out)?;
        *seq += u64::from(count);
        block.clear();
        Ok(())
    }

    /// Queue one whole frame (first record `seq`) for writing, rolling to a new segment first if it would
    /// not fit in the current one.
    fn place_frame(&mut self, frame: &[u8], seq: u64, count: u32, out: &mut Placed) -> Result<(), GroupError> {
        let used = self.cur.len + self.pending.len() as u64;
        if used > 0 && used + frame.len() as u64 > self.shared.opts.segment_bytes {
            self.flush_pending()?;
            out.sealed_lens.push((self.cur.index, self.cur.len));
            self.roll(seq, &mut out.created)?;
        }
        out.blocks.push(BlockLoc {
            first_seq: seq,
            count,
            segment: self.cur.index,
            offset: self.cur.len + self.pending.len() as u64,
            len: frame.len() as u32,
        });
        self.pending.extend_from_slice(frame);
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<(), GroupError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let cur = &self.cur;
        if let Err(e) = self.ops.write_all_at(&cur.file, &cur.path, cur.len, &self.pending) {
            return Err(if is_disk_full(&e) {
                GroupError::DiskFull(cur.path.clone())
            } else {
                GroupError::Fatal(JournalError::io("write frames", &cur.path, e))
            });
        }
        self.cur.len += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn sync_current(&mut self) -> Result<(), GroupError> {
        let t = Instant::now();
        // A failed fsync leaves the page cache state unknown (it may have dropped the dirty pages): poison.
        self.ops
            .sync_data(&self.cur.file, &self.cur.path)
            .map_err(|e| GroupError::Fatal(JournalError::io("fsync segment", &self.cur.path, e)))?;
        self.shared.stats.lock().record_fsync(t.elapsed());
        Ok(())
    }

    /// Seal the current segment (fsync it, so only the last segment can ever have a torn tail), then create the
    /// next one and fsync the directory so its name survives a crash.
    fn roll(&mut self, first_seq: u64, created: &mut Vec<ReadSegment>) -> Result<(), GroupError> {
        self.sync_current()?;
        let dir = &self.shared.opts.dir;
        let path = segment_path(dir, first_seq);
        let file = match self.ops.create(&path) {
            Ok(f) => Arc::new(f),
            Err(e) if is_disk_full(&e) => return Err(GroupError::DiskFull(path)),
            Err(e) => return Err(GroupError::Fatal(JournalError::io("create segment", &path, e))),
        };
        created.push(ReadSegment { meta: SegmentMeta { first_seq, path: path.clone(), len: 0 }, file: file.clone() });
        self.ops.sync_dir(dir).map_err(|e| GroupError::Fatal(JournalError::io("fsync journal dir", dir, e)))?;
        self.cur = Current { index: self.cur.index + 1, first_seq, path, file, len: 0 };
        Ok(())
    }

    /// Undo a failed group: remove the segments it created and cut the start segment back to its old length.
    fn rollback(&mut self, start: &(u32, u64, PathBuf, Arc<File>, u64), created: &[ReadSegment]) -> io::Result<()> {
        for seg in created.iter().rev() {
            self.ops.remove(&seg.meta.path)?;
        }
        if !created.is_empty() {
            self.ops.sync_dir(&self.shared.opts.dir)?;
        }
        let (_, _, path, file, len) = start;
        self.ops.set_len(file, path, *len)?;
        self.ops.sync_data(file, path)
    }

    fn publish(
        &mut self,
        created: Vec<ReadSegment>,
        blocks: Vec<BlockLoc>,
        sealed: Vec<(u32, u64)>,
        raw: u64,
        stored: u64,
    ) {
        let last = self.next_seq - 1;
        let mut sidecars = Vec::new();
        {
            let mut store = self.shared.store.write();
            store.segments.extend(created);
            store.blocks.extend(blocks);
            for &(index, len) in &sealed {
                store.segments[index as usize].meta.len = len;
                let from = store.blocks.partition_point(|b| b.segment < index);
                let to = store.blocks.partition_point(|b| b.segment <= index);
                sidecars.push((store.segments[index as usize].meta.path.clone(), len, store.blocks[from..to].to_vec()));
            }
            let cur = self.cur.index as usize;
            store.segments[cur].meta.len = self.cur.len;
        }
        for (path, len, blocks) in sidecars {
            // Only an open-time cache (see recovery::write_sidecar): a failure costs a slower open, nothing more.
            if write_sidecar(&path, len, &blocks).is_err() {
                self.shared.stats.lock().sidecar_failures += 1;
            }
        }
        {
            let mut s = self.shared.stats.lock();
            s.groups += 1;
            s.raw_bytes_written += raw;
            s.stored_bytes_written += stored;
        }
        let mut durable = self.shared.durable.lock();
        *durable = last;
        self.shared.durable_atomic.store(last, Ordering::Release);
        drop(durable);
        self.shared.durable_cv.notify_all();
    }
}
