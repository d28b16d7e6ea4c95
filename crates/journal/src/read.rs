//! The read side: locating a seq's block through the in-memory block index, reading and verifying the frame
//! with one pread, and a cache of decompressed blocks (the `block-cache` crate's LRU) for point reads. Only
//! durable frames are visible.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::JournalError;
use crate::frame::{self, Block, HEADER_LEN};
use crate::recovery::BlockLoc;
use crate::{Journal, Seq};

/// Hard-coded: decompressed bytes kept by the point-read cache (about 4,000 blocks of 16 KiB). Lookups read
/// pages of 50 records, often from recent or repeatedly queried blocks; each hit saves a zstd decompression,
/// which was the largest single cost of a lookup in profiles.
const CACHE_BYTES: usize = 64 << 20;

/// Hard-coded: what a decompressed block usually weighs (the default `block_bytes`), for sharding the cache.
const TYPICAL_BLOCK_BYTES: usize = 16 << 10;

/// The point-read cache: decompressed blocks by first seq, bounded by their decompressed size, sharded so
/// concurrent lookups rarely wait on each other.
pub(crate) type BlockCache = block_cache::BlockCache<u64, Arc<Block>>;

pub(crate) fn block_cache() -> BlockCache {
    BlockCache::new(CACHE_BYTES, TYPICAL_BLOCK_BYTES, |b| b.raw_len())
}

impl Journal {
    /// Where `seq` lives, or NotFound if it is not durable (or was removed by retention).
    fn locate(&self, seq: Seq) -> Result<(BlockLoc, Arc<File>, PathBuf), JournalError> {
        let shared = self.shared();
        let durable = shared.durable();
        let not_found = || JournalError::NotFound { seq: seq.0, durable: durable.map(|d| d.0) };
        if seq.0 == 0 || durable.is_none_or(|d| seq > d) {
            return Err(not_found());
        }
        let store = shared.store.read();
        let i = store.blocks.partition_point(|b| b.first_seq <= seq.0);
        let loc = *store.blocks.get(i.checked_sub(1).ok_or_else(not_found)?).ok_or_else(not_found)?;
        if seq.0 >= loc.first_seq + u64::from(loc.count) {
            return Err(not_found());
        }
        let seg = &store.segments[loc.segment as usize];
        Ok((loc, seg.file.clone(), seg.meta.path.clone()))
    }

    fn load_block(&self, loc: &BlockLoc, file: &File, path: &PathBuf) -> Result<Block, JournalError> {
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset).map_err(|e| JournalError::io("read frame", path, e))?;
        let corrupted = |why: String| JournalError::corrupted(path, loc.offset, why);
        let h = frame::check_frame(&buf).map_err(|e| corrupted(e.to_string()))?;
        if h.first_seq != loc.first_seq || h.count != loc.count || h.frame_len() != u64::from(loc.len) {
            return Err(corrupted(format!(
                "frame holds seqs {}+{}, index expected {}+{}",
                h.first_seq, h.count, loc.first_seq, loc.count
            )));
        }
        let dict = match h.dict_id {
            0 => None,
            id => Some(self.shared().dicts.read().get(&self.shared().opts.dir, id, path, loc.offset)?),
        };
        frame::decode_payload(&h, &buf[HEADER_LEN..], dict.as_deref()).map_err(|e| corrupted(e.to_string()))
    }

    fn cached_block(&self, seq: Seq) -> Result<Arc<Block>, JournalError> {
        let (loc, file, path) = self.locate(seq)?;
        if let Some(b) = self.shared().cache.get(&loc.first_seq) {
            return Ok(b);
        }
        let block = Arc::new(self.load_block(&loc, &file, &path)?);
        self.shared().cache.insert(block.first_seq, block.clone());
        Ok(block)
    }

    /// One durable record.
    pub fn read(&self, seq: Seq) -> Result<Vec<u8>, JournalError> {
        let block = self.cached_block(seq)?;
        block.get(seq.0).map(<[u8]>::to_vec).ok_or(JournalError::NotFound { seq: seq.0, durable: None })
    }

    /// Several durable records, in the order of `seqs`. Each block is read and decompressed at most once.
    pub fn read_many(&self, seqs: &[Seq]) -> Result<Vec<Vec<u8>>, JournalError> {
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| seqs[i]);
        let mut out = vec![Vec::new(); seqs.len()];
        let mut block: Option<Arc<Block>> = None;
        for i in order {
            let seq = seqs[i];
            let hit = block.as_ref().and_then(|b| b.get(seq.0));
            out[i] = match hit {
                Some(r) => r.to_vec(),
                None => {
                    let b = self.cached_block(seq)?;
                    let r = b.get(seq.0).map(<[u8]>::to_vec);
                    block = Some(b);
                    r.ok_or(JournalError::NotFound { seq: seq.0, durable: None })?
                }
            };
        }
        Ok(out)
    }

    /// Every record from `from` to the durable seq at the time of the call, in order (for view replay).
    /// Bypasses the point-read cache so a replay does not evict the lookups' working set.
    pub fn scan(&self, from: Seq) -> Scan<'_> {
        let end = self.durable_seq().map_or(0, |s| s.0);
        Scan { journal: self, next: from.0.max(1), end, block: None, failed: false }
    }
}

/// Iterator returned by `Journal::scan`. Stops after the first error.
pub struct Scan<'a> {
    journal: &'a Journal,
    next: u64,
    end: u64,
    block: Option<Block>,
    failed: bool,
}

impl Iterator for Scan<'_> {
    type Item = Result<(Seq, Vec<u8>), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next > self.end {
            return None;
        }
        let seq = self.next;
        if let Some(r) = self.block.as_ref().and_then(|b| b.get(seq)) {
            self.next += 1;
            return Some(Ok((Seq(seq), r.to_vec())));
        }
        let loaded =
            self.journal.locate(Seq(seq)).and_then(|(loc, file, path)| self.journal.load_block(&loc, &file, &path));
        match loaded {
            Ok(b) => {
                let r = b.get(seq).map(<[u8]>::to_vec);
                self.block = Some(b);
                self.next += 1;
                match r {
                    Some(r) => Some(Ok((Seq(seq), r))),
                    None => {
                        self.failed = true;
                        Some(Err(JournalError::NotFound { seq, durable: Some(self.end) }))
                    }
                }
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
