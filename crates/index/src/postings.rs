//! Posting lists inside a segment: ascending local doc ids in blocks of [`BLOCK`] ids. Full blocks are
//! bit-packed gaps (frame of reference: one width per block), the tail block is varint gaps, and lists of more
//! than one block end with a skip table (last id and end offset per block) so that a seek reads one block.
//! Lists are written streaming ([`ListWriter`]) and read on demand through the block cache ([`Cursor`]).

use crate::IndexError;
use crate::segment::PageReader;

/// Ids per block. Hard-coded: part of the segment format.
pub const BLOCK: usize = 128;
/// Bytes per skip-table entry: last id u32, end offset u32 (relative to the list's start).
pub const SKIP_BYTES: usize = 8;

/// The bytes of a block are not what [`encode_block`] writes (damage the page checksum missed, or a bug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

pub fn put_varint(out: &mut Vec<u8>, v: u32) {
    put_varint64(out, u64::from(v));
}

pub fn put_varint64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes one varint at `*at`, advancing it.
#[inline]
pub fn get_varint(b: &[u8], at: &mut usize) -> Result<u32, Malformed> {
    u32::try_from(get_varint64(b, at)?).map_err(|_| Malformed)
}

#[inline]
pub fn get_varint64(b: &[u8], at: &mut usize) -> Result<u64, Malformed> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or(Malformed)?;
        *at += 1;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(Malformed);
        }
        v |= bits << shift;
        if byte < 0x80 {
            return Ok(v);
        }
    }
    Err(Malformed)
}

/// Bytes of the skip table of a list of `count` ids (none for a single block).
pub fn skip_table_bytes(count: u32) -> u64 {
    let nblocks = (count as usize).div_ceil(BLOCK);
    if nblocks > 1 { (nblocks * SKIP_BYTES) as u64 } else { 0 }
}

/// Appends one block of strictly ascending `ids` whose predecessor in the list is `base` (0 for the first
/// block). A full block is `[width u8][varint first - base][127 × (gap - 1) in width bits, LSB first]`; a
/// shorter (tail) block is `[varint first - base][varint gap - 1]…`.
pub fn encode_block(ids: &[u32], base: u32, out: &mut Vec<u8>) {
    let Some((&first, _)) = ids.split_first() else { return };
    if ids.len() == BLOCK {
        let width = ids.windows(2).map(|w| 32 - (w[1] - w[0] - 1).leading_zeros()).max().unwrap_or(0);
        out.push(width as u8);
        put_varint(out, first - base);
        let mut acc = 0u64;
        let mut bits = 0;
        for w in ids.windows(2) {
            acc |= u64::from(w[1] - w[0] - 1) << bits;
            bits += width;
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(acc as u8);
        }
    } else {
        put_varint(out, first - base);
        for w in ids.windows(2) {
            put_varint(out, w[1] - w[0] - 1);
        }
    }
}

/// Decodes a block of `out.len()` ids written by [`encode_block`]; every byte of `b` must be used.
pub fn decode_block(b: &[u8], base: u32, out: &mut [u32]) -> Result<(), Malformed> {
    let n = out.len();
    if n == 0 {
        return if b.is_empty() { Ok(()) } else { Err(Malformed) };
    }
    let mut at = 0;
    if n == BLOCK {
        let width = u32::from(*b.first().ok_or(Malformed)?);
        if width > 32 {
            return Err(Malformed);
        }
        at = 1;
        let mut prev = base.checked_add(get_varint(b, &mut at)?).ok_or(Malformed)?;
        out[0] = prev;
        let packed = b.get(at..).ok_or(Malformed)?;
        if packed.len() != ((BLOCK - 1) * width as usize).div_ceil(8) {
            return Err(Malformed);
        }
        let mask = if width == 32 { u64::from(u32::MAX) } else { (1u64 << width) - 1 };
        let (mut acc, mut bits, mut next) = (0u64, 0u32, 0usize);
        for slot in &mut out[1..] {
            while bits < width {
                acc |= u64::from(packed[next]) << bits;
                next += 1;
                bits += 8;
            }
            let gap = (acc & mask) as u32;
            acc >>= width;
            bits -= width;
            prev = prev.checked_add(gap).and_then(|p| p.checked_add(1)).ok_or(Malformed)?;
            *slot = prev;
        }
        return Ok(());
    }
    let mut prev = base.checked_add(get_varint(b, &mut at)?).ok_or(Malformed)?;
    out[0] = prev;
    for slot in &mut out[1..] {
        prev = prev.checked_add(get_varint(b, &mut at)?).and_then(|p| p.checked_add(1)).ok_or(Malformed)?;
        *slot = prev;
    }
    if at == b.len() { Ok(()) } else { Err(Malformed) }
}

/// Encodes one list as its ids arrive (ascending), handing finished bytes to the caller: blocks as they fill,
/// the skip table at the end. Memory: one block and one skip entry per block.
#[derive(Default)]
pub struct ListWriter {
    ids: Vec<u32>,
    count: u32,
    base: u32,
    data_len: u64,
    skips: Vec<(u32, u32)>,
    pub bytes: Vec<u8>,
}

impl ListWriter {
    pub fn begin(&mut self) {
        self.ids.clear();
        self.count = 0;
        self.base = 0;
        self.data_len = 0;
        self.skips.clear();
        self.bytes.clear();
    }

    /// Adds the next id; when a block fills its bytes are in `self.bytes` (the caller drains them).
    pub fn push(&mut self, id: u32) -> Result<(), IndexError> {
        if self.ids.last().is_some_and(|&l| l >= id) || (self.count > 0 && self.ids.is_empty() && id <= self.base) {
            return Err(IndexError::SegmentTooLarge { what: "posting ids not strictly ascending (a bug)" });
        }
        self.ids.push(id);
        self.count += 1;
        if self.ids.len() == BLOCK {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), IndexError> {
        let before = self.bytes.len();
        encode_block(&self.ids, self.base, &mut self.bytes);
        self.data_len += (self.bytes.len() - before) as u64;
        let last = *self.ids.last().unwrap_or(&self.base);
        let end = u32::try_from(self.data_len)
            .map_err(|_| IndexError::SegmentTooLarge { what: "a posting list over 4 GiB" })?;
        self.skips.push((last, end));
        self.base = last;
        self.ids.clear();
        Ok(())
    }

    /// Ends the list: returns (count, data length); the tail block and the skip table are in `self.bytes`.
    pub fn finish(&mut self) -> Result<(u32, u64), IndexError> {
        if !self.ids.is_empty() {
            self.flush_block()?;
        }
        if self.skips.len() > 1 {
            for &(last, end) in &self.skips {
                self.bytes.extend_from_slice(&last.to_le_bytes());
                self.bytes.extend_from_slice(&end.to_le_bytes());
            }
        }
        Ok((self.count, self.data_len))
    }
}

/// Where a list is: from its dictionary entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListAt {
    /// File offset of the first block.
    pub at: u64,
    pub count: u32,
    /// Bytes of the blocks (the skip table follows them).
    pub data_len: u64,
}

/// A forward-only cursor over one list, reading blocks on demand.
pub struct Cursor<'a> {
    r: PageReader<'a>,
    list: ListAt,
    nblocks: usize,
    block: usize,
    buf: [u32; BLOCK],
    len: usize,
    pos: usize,
    scratch: Vec<u8>,
}

impl<'a> Cursor<'a> {
    /// Opens the list, positioned at its first id.
    pub fn open(r: PageReader<'a>, list: ListAt) -> Result<Cursor<'a>, IndexError> {
        let nblocks = (list.count as usize).div_ceil(BLOCK);
        let mut c = Cursor { r, list, nblocks, block: 0, buf: [0; BLOCK], len: 0, pos: 0, scratch: Vec::new() };
        if list.count > 0 {
            c.decode_block(0)?;
        }
        Ok(c)
    }

    fn skip(&mut self, b: usize) -> Result<(u32, u64), IndexError> {
        let at = self.list.at + self.list.data_len + (b * SKIP_BYTES) as u64;
        let mut e = [0u8; SKIP_BYTES];
        self.r.read_exact(at, &mut e)?;
        let last = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        let end = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        Ok((last, u64::from(end)))
    }

    fn decode_block(&mut self, b: usize) -> Result<(), IndexError> {
        let (base, start) = if b == 0 { (0, 0) } else { self.skip(b - 1)? };
        let (last, end) =
            if self.nblocks == 1 { (None, self.list.data_len) } else { self.skip(b).map(|(l, e)| (Some(l), e))? };
        let n = (self.list.count as usize - b * BLOCK).min(BLOCK);
        let at = self.list.at + start;
        let len = end
            .checked_sub(start)
            .filter(|&l| l <= self.list.data_len)
            .ok_or_else(|| self.r.corrupted(at, "posting skip table out of order"))?;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        self.r.read_into(at, len as usize, &mut scratch)?;
        let decoded = decode_block(&scratch, base, &mut self.buf[..n]);
        self.scratch = scratch;
        if decoded.is_err() || last.is_some_and(|l| l != self.buf[n - 1]) {
            return Err(self.r.corrupted(at, "malformed posting block"));
        }
        self.block = b;
        self.len = n;
        self.pos = 0;
        Ok(())
    }

    /// Ids in the whole list.
    pub fn count(&self) -> usize {
        self.list.count as usize
    }

    #[inline]
    pub fn current(&self) -> Option<u32> {
        (self.pos < self.len).then(|| self.buf[self.pos])
    }

    /// Moves past the current id and returns the next one.
    pub fn advance(&mut self) -> Result<Option<u32>, IndexError> {
        if self.pos >= self.len {
            return Ok(None);
        }
        self.pos += 1;
        if self.pos == self.len && self.block + 1 < self.nblocks {
            self.decode_block(self.block + 1)?;
        }
        Ok(self.current())
    }

    /// Moves to the first id >= `target` (never backwards) and returns it.
    pub fn seek(&mut self, target: u32) -> Result<Option<u32>, IndexError> {
        if self.pos >= self.len {
            return Ok(None);
        }
        if self.buf[self.len - 1] < target {
            // Find the first later block whose last id reaches the target: gallop, then binary search.
            let mut lo = self.block + 1;
            if lo >= self.nblocks {
                self.pos = self.len;
                return Ok(None);
            }
            let mut step = 1;
            let mut hi = lo;
            while hi < self.nblocks && self.skip(hi)?.0 < target {
                lo = hi + 1;
                hi += step;
                step *= 2;
            }
            let mut hi = hi.min(self.nblocks);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if self.skip(mid)?.0 < target {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if lo >= self.nblocks {
                self.pos = self.len;
                return Ok(None);
            }
            self.decode_block(lo)?;
        }
        let rest = &self.buf[self.pos..self.len];
        self.pos += rest.partition_point(|&d| d < target);
        Ok(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ids: &[u32], base: u32) {
        let mut bytes = Vec::new();
        encode_block(ids, base, &mut bytes);
        let mut out = vec![0; ids.len()];
        decode_block(&bytes, base, &mut out).unwrap();
        assert_eq!(out, ids);
        for cut in 0..bytes.len() {
            let mut out = vec![0; ids.len()];
            assert_eq!(decode_block(&bytes[..cut], base, &mut out), Err(Malformed), "cut at {cut}");
        }
    }

    #[test]
    fn blocks_round_trip_at_every_width_and_reject_truncation() {
        for gap in [1u32, 2, 3, 9, 200, 70_000, 1 << 24] {
            let full: Vec<u32> = (0..BLOCK as u32).map(|i| 5 + i * gap).collect();
            round_trip(&full, 0);
            round_trip(&full, 4);
            round_trip(&full[..77], 1);
            round_trip(&full[..1], 0);
        }
        let widest: Vec<u32> =
            std::iter::once(0).chain((1..BLOCK as u32).map(|i| u32::MAX - (BLOCK as u32 - i))).collect();
        round_trip(&widest, 0);
    }

    #[test]
    fn varints_round_trip_and_reject_overflow() {
        for v in [0u64, 1, 127, 128, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            put_varint64(&mut b, v);
            let mut at = 0;
            assert_eq!(get_varint64(&b, &mut at), Ok(v));
            assert_eq!(at, b.len());
        }
        let mut at = 0;
        assert_eq!(get_varint64(&[0xff; 11], &mut at), Err(Malformed));
        let mut b = Vec::new();
        put_varint64(&mut b, 1 << 32);
        assert_eq!(get_varint(&b, &mut 0), Err(Malformed));
    }
}
