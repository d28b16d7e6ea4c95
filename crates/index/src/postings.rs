//! Posting lists inside a segment: ascending local doc ids, delta + LEB128 varint coded, in blocks of
//! [`BLOCK`] ids with a skip table (last id and end offset per block) so that a seek decodes one block.

/// Ids per block. Hard-coded: part of the segment format.
pub const BLOCK: usize = 128;

/// The bytes of a list are not what [`encode`] writes (a bug or damage the checksum missed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

pub fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes one varint at `*at`, advancing it.
#[inline]
pub fn get_varint(b: &[u8], at: &mut usize) -> Result<u32, Malformed> {
    let mut v = 0u32;
    for shift in [0, 7, 14, 21, 28] {
        let byte = *b.get(*at).ok_or(Malformed)?;
        *at += 1;
        v |= u32::from(byte & 0x7f).checked_shl(shift).ok_or(Malformed)?;
        if byte < 0x80 {
            return Ok(v);
        }
    }
    Err(Malformed)
}

/// Appends the list `ids` (strictly ascending). Layout: with more than one block, a skip table of
/// `(last id u32 LE, end offset u32 LE)` per block first, offsets relative to the start of the block data;
/// then every id as the varint of its difference to the previous id (the first to 0).
pub fn encode(ids: &[u32], out: &mut Vec<u8>) {
    let nblocks = ids.len().div_ceil(BLOCK);
    let table_at = out.len();
    if nblocks > 1 {
        out.resize(table_at + nblocks * 8, 0);
    }
    let data_at = out.len();
    let mut prev = 0u32;
    for (b, chunk) in ids.chunks(BLOCK).enumerate() {
        for &id in chunk {
            put_varint(out, id - prev);
            prev = id;
        }
        if nblocks > 1 {
            let end = (out.len() - data_at) as u32;
            out[table_at + b * 8..table_at + b * 8 + 4].copy_from_slice(&prev.to_le_bytes());
            out[table_at + b * 8 + 4..table_at + b * 8 + 8].copy_from_slice(&end.to_le_bytes());
        }
    }
}

/// A forward-only cursor over one list.
pub struct Cursor<'a> {
    /// Skip table (empty for single-block lists).
    skips: &'a [u8],
    data: &'a [u8],
    count: usize,
    nblocks: usize,
    block: usize,
    buf: [u32; BLOCK],
    len: usize,
    pos: usize,
}

fn read_u32(b: &[u8], at: usize) -> Result<u32, Malformed> {
    let w: [u8; 4] = b.get(at..at + 4).ok_or(Malformed)?.try_into().map_err(|_| Malformed)?;
    Ok(u32::from_le_bytes(w))
}

impl<'a> Cursor<'a> {
    /// Opens the list of `count` ids stored at the start of `bytes`, positioned at its first id.
    pub fn open(bytes: &'a [u8], count: usize) -> Result<Cursor<'a>, Malformed> {
        let nblocks = count.div_ceil(BLOCK);
        let table = if nblocks > 1 { nblocks * 8 } else { 0 };
        let skips = bytes.get(..table).ok_or(Malformed)?;
        let data = bytes.get(table..).ok_or(Malformed)?;
        let mut c = Cursor { skips, data, count, nblocks, block: 0, buf: [0; BLOCK], len: 0, pos: 0 };
        if count > 0 {
            c.decode_block(0)?;
        }
        Ok(c)
    }

    fn skip(&self, b: usize) -> Result<(u32, usize), Malformed> {
        Ok((read_u32(self.skips, b * 8)?, read_u32(self.skips, b * 8 + 4)? as usize))
    }

    fn decode_block(&mut self, b: usize) -> Result<(), Malformed> {
        let (mut prev, mut at) = if b == 0 { (0, 0) } else { self.skip(b - 1)? };
        let n = (self.count - b * BLOCK).min(BLOCK);
        for slot in &mut self.buf[..n] {
            let d = get_varint(self.data, &mut at)?;
            prev = prev.checked_add(d).ok_or(Malformed)?;
            *slot = prev;
        }
        self.block = b;
        self.len = n;
        self.pos = 0;
        Ok(())
    }

    /// Ids in the whole list.
    pub fn count(&self) -> usize {
        self.count
    }

    #[inline]
    pub fn current(&self) -> Option<u32> {
        (self.pos < self.len).then(|| self.buf[self.pos])
    }

    /// Moves to the first id >= `target` (never backwards) and returns it.
    pub fn seek(&mut self, target: u32) -> Result<Option<u32>, Malformed> {
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

/// Decodes a whole list.
pub fn decode_all(bytes: &[u8], count: usize, out: &mut Vec<u32>) -> Result<(), Malformed> {
    let mut c = Cursor::open(bytes, count)?;
    for b in 0..c.nblocks {
        if b > 0 {
            c.decode_block(b)?;
        }
        out.extend_from_slice(&c.buf[..c.len]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeks_across_blocks_find_the_first_id_at_or_after_the_target() {
        for n in [0usize, 1, 5, 127, 128, 129, 300, 1000] {
            let ids: Vec<u32> = (0..n as u32).map(|i| i * 8 + (i % 7)).collect();
            let mut bytes = Vec::new();
            encode(&ids, &mut bytes);
            let mut all = Vec::new();
            decode_all(&bytes, n, &mut all).unwrap();
            assert_eq!(all, ids);
            for target in (0..(n as u32 * 8 + 10)).step_by(5) {
                let mut c = Cursor::open(&bytes, n).unwrap();
                let want = ids.iter().copied().find(|&d| d >= target);
                assert_eq!(c.seek(target).unwrap(), want, "n {n} target {target}");
                assert_eq!(c.seek(target).unwrap(), want, "a repeated seek stays");
            }
        }
    }

    #[test]
    fn truncated_lists_are_malformed_not_panics() {
        let ids: Vec<u32> = (0..300).collect();
        let mut bytes = Vec::new();
        encode(&ids, &mut bytes);
        for cut in [0, 3, 10, bytes.len() - 1] {
            let mut out = Vec::new();
            assert_eq!(decode_all(&bytes[..cut], 300, &mut out), Err(Malformed));
        }
    }
}
