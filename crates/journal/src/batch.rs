//! Batches of records for the writer, and compression ahead of it: a large batch is cut into blocks and
//! compressed by the thread that submits it (`Journal::prepare`), so the one writer thread only orders frames,
//! gives them their sequence numbers, writes, fsyncs and publishes. Small batches stay raw and the writer cuts
//! and compresses them together with their neighbours in the group, as before.
//!
//! The frames are the same bytes the writer would have made (same block cut, level and dictionary rules);
//! only the sequence number in their header (and the checksum covering it) is filled in by the writer
//! (`frame::restamp`). A prepared batch's blocks start and end with the batch: a block never holds records of
//! two prepared batches.

use std::cell::RefCell;
use std::sync::Arc;

use crate::frame::{EncoderDict, FrameEncoder, HEADER_LEN};

/// Records queued together, for one `done` callback. Made by `Journal::prepare` (compressed ahead of the writer
/// when large) or from a plain `Vec<Vec<u8>>` (raw: the writer compresses it).
pub struct Batch {
    pub(crate) records: Vec<Vec<u8>>,
    pub(crate) frames: Option<Frames>,
}

impl Batch {
    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether its frames were compressed ahead of the writer.
    pub fn is_prepared(&self) -> bool {
        self.frames.is_some()
    }

    /// The records, without any frames made of them.
    pub fn into_records(self) -> Vec<Vec<u8>> {
        self.records
    }
}

impl From<Vec<Vec<u8>>> for Batch {
    fn from(records: Vec<Vec<u8>>) -> Batch {
        Batch { records, frames: None }
    }
}

/// Whole frames one after another in `bytes`, each with a placeholder `first_seq` of 1.
pub(crate) struct Frames {
    pub bytes: Vec<u8>,
    pub frames: Vec<FrameInfo>,
}

#[derive(Clone, Copy)]
pub(crate) struct FrameInfo {
    /// Records in the frame.
    pub count: u32,
    /// Raw payload bytes (records with their 4-byte length prefixes).
    pub raw: u32,
    /// Whole frame bytes (header + stored payload).
    pub len: u32,
}

thread_local! {
    /// One compression context per submitting thread (zstd's tables cost ~1 MB to set up per context).
    /// `None` if zstd could not allocate one: the batch then goes to the writer raw.
    static ENCODER: RefCell<Option<FrameEncoder>> = const { RefCell::new(None) };
}

/// Cut `records` into blocks of about `block_bytes` raw bytes, exactly as the writer cuts a group, and
/// compress each into a frame with `dict` (or none) at `level`. `None` when no compressor is available.
pub(crate) fn compress(
    records: &[Vec<u8>],
    block_bytes: usize,
    level: i32,
    dict: Option<&Arc<EncoderDict>>,
) -> Option<Frames> {
    ENCODER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = FrameEncoder::new(level).ok();
        }
        let enc = cell.as_mut()?;
        enc.set_level(level);
        let block_bytes = block_bytes.max(1);
        let total: usize = records.iter().map(|r| r.len() + 4).sum();
        // Compressed CloudTrail JSON is a fifth of its size or less; one reallocation at worst.
        let mut bytes = Vec::with_capacity(total / 4 + HEADER_LEN * (total / block_bytes + 1));
        let mut frames = Vec::with_capacity(total / block_bytes + 1);
        let mut rest = records;
        while !rest.is_empty() {
            let mut raw = 0usize;
            let mut n = 0usize;
            while raw < block_bytes && n < rest.len() {
                raw += rest[n].len() + 4;
                n += 1;
            }
            let (block, tail) = rest.split_at(n);
            rest = tail;
            let start = bytes.len();
            enc.encode(1, block.iter().map(Vec::as_slice), dict.map(|d| &**d), &mut bytes).ok()?;
            frames.push(FrameInfo { count: n as u32, raw: raw as u32, len: (bytes.len() - start) as u32 });
        }
        Some(Frames { bytes, frames })
    })
}
