//! Opening a journal directory: finding the segments, rebuilding the in-memory block index from frame headers,
//! verifying the tail segment frame by frame, and truncating a torn tail (and only a torn tail).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::faults::FileOps;
use crate::frame::{self, FRAME_MAGIC, HEADER_LEN};

pub(crate) const SEGMENT_SUFFIX: &str = ".seg";

/// Where one frame (block) lives. Kept for every frame of the journal, so it is small.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockLoc {
    pub first_seq: u64,
    pub count: u32,
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct SegmentMeta {
    pub first_seq: u64,
    pub path: PathBuf,
    pub len: u64,
}

pub(crate) struct Recovered {
    pub segments: Vec<SegmentMeta>,
    pub blocks: Vec<BlockLoc>,
    /// 0 when the journal holds no record.
    pub last_seq: u64,
    pub truncated_tail_bytes: u64,
}

/// Segment files are named by the sequence number of their first record, zero-padded so that the lexical
/// order is the numeric order.
pub(crate) fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io("list segments", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list segments", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else { continue };
        match stem.parse::<u64>() {
            Ok(seq) if seq >= 1 && stem.len() == 20 => out.push((seq, entry.path())),
            _ => {
                return Err(JournalError::corrupted(
                    entry.path(),
                    0,
                    "segment file name is not a 20-digit sequence number",
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn recover(dir: &Path, ops: &FileOps) -> Result<Recovered, JournalError> {
    let listed = list_segments(dir)?;
    let mut segments = Vec::with_capacity(listed.len());
    let mut blocks = Vec::new();
    let mut next_seq: Option<u64> = None;
    let mut truncated_tail_bytes = 0;
    let n = listed.len();
    for (i, (first_seq, path)) in listed.into_iter().enumerate() {
        if let Some(expected) = next_seq
            && first_seq != expected
        {
            return Err(JournalError::corrupted(
                &path,
                0,
                format!("segment starts at seq {first_seq}, previous segment ends at {}", expected - 1),
            ));
        }
        let seg_index = i as u32;
        let len = if i + 1 < n {
            walk_sealed_segment(&path, first_seq, seg_index, &mut blocks)?
        } else {
            let (len, truncated) = verify_tail_segment(&path, first_seq, seg_index, &mut blocks, ops)?;
            truncated_tail_bytes = truncated;
            len
        };
        let last_block = blocks.last().filter(|b| b.segment == seg_index);
        next_seq = Some(last_block.map_or(first_seq, |b| b.first_seq + u64::from(b.count)));
        if i + 1 < n && len == 0 {
            return Err(JournalError::corrupted(&path, 0, "empty segment before the last one"));
        }
        segments.push(SegmentMeta { first_seq, path, len });
    }
    let last_seq = blocks.last().map_or(0, |b| b.first_seq + u64::from(b.count) - 1);
    Ok(Recovered { segments, blocks, last_seq, truncated_tail_bytes })
}

fn open_read(path: &Path) -> Result<(File, u64), JournalError> {
    let file = File::open(path).map_err(|e| JournalError::io("open segment", path, e))?;
    let len = file.metadata().map_err(|e| JournalError::io("stat segment", path, e))?.len();
    Ok((file, len))
}

/// A sealed (non-last) segment: was fsync'd entirely before the next segment was created, so any defect is
/// corruption. Only headers are read here (fast open); payload checksums are verified on every read.
fn walk_sealed_segment(
    path: &Path,
    first_seq: u64,
    segment: u32,
    blocks: &mut Vec<BlockLoc>,
) -> Result<u64, JournalError> {
    let (file, len) = open_read(path)?;
    if let Some(found) = read_sidecar(path, first_seq, len, segment) {
        blocks.extend(found);
        return Ok(len);
    }
    let mut offset = 0u64;
    let mut expected = first_seq;
    let mut hdr = [0u8; HEADER_LEN];
    while offset < len {
        if len - offset < HEADER_LEN as u64 {
            return Err(JournalError::corrupted(path, offset, "sealed segment ends inside a frame header"));
        }
        file.read_exact_at(&mut hdr, offset).map_err(|e| JournalError::io("read frame header", path, e))?;
        let h = frame::parse_header(&hdr).map_err(|e| JournalError::corrupted(path, offset, e.to_string()))?;
        if h.first_seq != expected {
            return Err(JournalError::corrupted(
                path,
                offset,
                format!("frame starts at seq {}, expected {expected}", h.first_seq),
            ));
        }
        if offset + h.frame_len() > len {
            return Err(JournalError::corrupted(path, offset, "sealed segment ends inside a frame"));
        }
        blocks.push(BlockLoc { first_seq: h.first_seq, count: h.count, segment, offset, len: h.frame_len() as u32 });
        expected = h.last_seq() + 1;
        offset += h.frame_len();
    }
    Ok(len)
}

/// The last segment: every frame's checksum is verified. The first invalid frame starts the torn tail, which is
/// truncated, unless a valid frame follows it somewhere: then acknowledged data was damaged, which is reported.
fn verify_tail_segment(
    path: &Path,
    first_seq: u64,
    segment: u32,
    blocks: &mut Vec<BlockLoc>,
    ops: &FileOps,
) -> Result<(u64, u64), JournalError> {
    let (mut file, len) = open_read(path)?;
    let mut buf = Vec::with_capacity(len as usize);
    file.read_to_end(&mut buf).map_err(|e| JournalError::io("read tail segment", path, e))?;
    let mut offset = 0usize;
    let mut expected = first_seq;
    while offset < buf.len() {
        let h = match frame::check_frame(&buf[offset..]) {
            Ok(h) => h,
            Err(why) => {
                if let Some(at) = find_valid_frame_after(&buf, offset + 1) {
                    return Err(JournalError::corrupted(
                        path,
                        offset as u64,
                        format!("{why}, yet a valid frame follows at offset {at}"),
                    ));
                }
                break;
            }
        };
        if h.first_seq != expected {
            return Err(JournalError::corrupted(
                path,
                offset as u64,
                format!("frame starts at seq {}, expected {expected}", h.first_seq),
            ));
        }
        blocks.push(BlockLoc {
            first_seq: h.first_seq,
            count: h.count,
            segment,
            offset: offset as u64,
            len: h.frame_len() as u32,
        });
        expected = h.last_seq() + 1;
        offset += h.frame_len() as usize;
    }
    let torn = (buf.len() - offset) as u64;
    if torn > 0 {
        // Never acknowledged (its fsync did not complete): cut it so the next frame is written after valid ones.
        let rw = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| JournalError::io("open tail segment for truncation", path, e))?;
        ops.set_len(&rw, path, offset as u64).map_err(|e| JournalError::io("truncate torn tail", path, e))?;
        ops.sync_data(&rw, path).map_err(|e| JournalError::io("sync truncated tail", path, e))?;
    }
    Ok((offset as u64, torn))
}

fn find_valid_frame_after(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + HEADER_LEN <= buf.len() {
        let rel = buf[at..].windows(4).position(|w| w == FRAME_MAGIC)?;
        at += rel;
        if frame::check_frame(&buf[at..]).is_ok() {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// "OTJI": opentrail journal index. A sidecar listing the frames of a sealed segment, so that open does not read
/// every frame header of a cold segment. Only a cache: written without fsync after the segment is sealed, ignored
/// (and the headers walked instead) when missing, torn or inconsistent with the segment.
const SIDECAR_MAGIC: [u8; 4] = *b"OTJI";
const SIDECAR_ENTRY: usize = 24;

pub(crate) fn sidecar_path(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

/// Layout: `magic[4] version u8 pad[3] segment_len u64 entries u32`, then per frame
/// `first_seq u64 count u32 offset u64 len u32`, then `crc32c u32` of everything before it.
pub(crate) fn write_sidecar(segment: &Path, segment_len: u64, blocks: &[BlockLoc]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(24 + blocks.len() * SIDECAR_ENTRY);
    out.extend_from_slice(&SIDECAR_MAGIC);
    out.extend_from_slice(&[1, 0, 0, 0]);
    out.extend_from_slice(&segment_len.to_le_bytes());
    out.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
    for b in blocks {
        out.extend_from_slice(&b.first_seq.to_le_bytes());
        out.extend_from_slice(&b.count.to_le_bytes());
        out.extend_from_slice(&b.offset.to_le_bytes());
        out.extend_from_slice(&b.len.to_le_bytes());
    }
    out.extend_from_slice(&crc32c::crc32c(&out).to_le_bytes());
    let path = sidecar_path(segment);
    let tmp = path.with_extension("idx.tmp");
    std::fs::write(&tmp, &out)?;
    std::fs::rename(&tmp, &path)
}

/// The frames of a sealed segment from its sidecar, if the sidecar is intact and agrees with the segment file.
fn read_sidecar(segment: &Path, first_seq: u64, segment_len: u64, index: u32) -> Option<Vec<BlockLoc>> {
    let bytes = std::fs::read(sidecar_path(segment)).ok()?;
    let (body, crc) = bytes.split_last_chunk::<4>()?;
    if crc32c::crc32c(body) != u32::from_le_bytes(*crc)
        || body.len() < 20
        || body[0..4] != SIDECAR_MAGIC
        || body[4] != 1
    {
        return None;
    }
    let u64_at = |at: usize| body.get(at..at + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes);
    let u32_at = |at: usize| body.get(at..at + 4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes);
    if u64_at(8)? != segment_len {
        return None;
    }
    let n = u32_at(16)? as usize;
    if body.len() != 20 + n * SIDECAR_ENTRY {
        return None;
    }
    let mut blocks = Vec::with_capacity(n);
    let (mut seq, mut offset) = (first_seq, 0u64);
    for i in 0..n {
        let at = 20 + i * SIDECAR_ENTRY;
        let b = BlockLoc {
            first_seq: u64_at(at)?,
            count: u32_at(at + 8)?,
            segment: index,
            offset: u64_at(at + 12)?,
            len: u32_at(at + 20)?,
        };
        if b.first_seq != seq || b.offset != offset || b.count == 0 || (b.len as usize) < HEADER_LEN {
            return None;
        }
        seq = b.first_seq.checked_add(u64::from(b.count))?;
        offset += u64::from(b.len);
        blocks.push(b);
    }
    (offset == segment_len).then_some(blocks)
}
