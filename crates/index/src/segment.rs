//! Immutable segments: a doc table in result order, a term dictionary with block-coded posting lists, an
//! exact table of UUID event ids and a bloom filter over every id. Built from the memtable or by merging
//! segments; read whole into memory at open and checked against their crc32c. Layout in `docs/formats/index.md`.

use std::path::PathBuf;
use std::sync::Arc;

use model::{AttributeKey, EventCategory, Seq};

use crate::IndexError;
use crate::memtable::{Memtable, TopK};
use crate::order::{Bounds, Rank};
use crate::postings::{self, Cursor, Malformed};
use crate::term::{self, ALL_TAG, EVENT_ID_TAG};

const MAGIC: &[u8; 8] = b"OTIXSEG\x01";
const END_MAGIC: &[u8; 8] = b"OTIXEND\x01";
/// Footer: 4 counts (u32), 2 section lengths (u64), crc32c (u32), end magic.
const FOOTER: usize = 4 * 4 + 2 * 8 + 4 + 8;
const DOC_BYTES: usize = 16;
const UUID_BYTES: usize = 20;
/// Bit 31 of a UUID-table doc id marks an Insights event (the table is shared by both categories).
const INSIGHT_BIT: u32 = 1 << 31;
/// Bloom filter sizing. Hard-coded: 10 bits per id and 7 probes give ~1% false positives, so an absent id
/// costs about one cache miss per segment.
const BLOOM_BITS_PER_KEY: usize = 10;
const BLOOM_PROBES: u64 = 7;
/// Largest segment a merge may produce. Hard-coded: doc ids must stay below [`INSIGHT_BIT`] and postings
/// offsets within u32; 2^24 events is ~16 M, about a few hundred MB of segment.
pub const MAX_SEGMENT_DOCS: usize = 1 << 24;

#[derive(Clone, Copy, Debug)]
struct TermEntry {
    key_off: u32,
    key_len: u32,
    count: u32,
    post_off: u32,
}

pub struct Segment {
    pub id: u64,
    pub path: PathBuf,
    /// Rank of every doc; local doc id order is result order.
    pub docs: Vec<Rank>,
    uuids: Vec<u128>,
    uuid_docs: Vec<u32>,
    bloom: Vec<u64>,
    keys: Vec<u8>,
    terms: Vec<TermEntry>,
    postings: Vec<u8>,
}

fn bloom_positions(key: u128, nbits: u64) -> impl Iterator<Item = u64> {
    let h1 = key as u64;
    let h2 = ((key >> 64) as u64) | 1;
    (0..BLOOM_PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % nbits)
}

/// Accumulates the sections of a new segment; terms must be added in ascending key order.
struct Writer {
    dict: Vec<u8>,
    postings: Vec<u8>,
    n_terms: u32,
    bloom_keys: Vec<u128>,
}

impl Writer {
    fn new() -> Writer {
        Writer { dict: Vec::new(), postings: Vec::new(), n_terms: 0, bloom_keys: Vec::new() }
    }

    fn add_term(&mut self, key: &[u8], ids: &[u32]) -> Result<(), IndexError> {
        if key.get(1) == Some(&EVENT_ID_TAG) {
            self.bloom_keys.push(term::bloom_key_of_bytes(&key[2..]));
        }
        let too_large = || IndexError::SegmentTooLarge { what: "postings section over 4 GiB" };
        postings::put_varint(&mut self.dict, u32::try_from(key.len()).map_err(|_| too_large())?);
        self.dict.extend_from_slice(key);
        postings::put_varint(&mut self.dict, ids.len() as u32);
        postings::put_varint(&mut self.dict, u32::try_from(self.postings.len()).map_err(|_| too_large())?);
        postings::encode(ids, &mut self.postings);
        self.n_terms += 1;
        Ok(())
    }

    fn finish(mut self, docs: &[Rank], uuids: &[(u128, u32)]) -> Result<Vec<u8>, IndexError> {
        if docs.len() > MAX_SEGMENT_DOCS {
            return Err(IndexError::SegmentTooLarge { what: "more docs than a segment may hold" });
        }
        self.bloom_keys.extend(uuids.iter().map(|&(u, _)| term::bloom_key_of_uuid(u)));
        let words = (docs.len() * BLOOM_BITS_PER_KEY).div_ceil(64).max(1);
        let mut bloom = vec![0u64; words];
        for &k in &self.bloom_keys {
            for bit in bloom_positions(k, words as u64 * 64) {
                bloom[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        let mut out = Vec::with_capacity(
            8 + docs.len() * DOC_BYTES
                + uuids.len() * UUID_BYTES
                + words * 8
                + self.dict.len()
                + self.postings.len()
                + FOOTER,
        );
        out.extend_from_slice(MAGIC);
        for d in docs {
            out.extend_from_slice(&d.time.to_le_bytes());
            out.extend_from_slice(&d.seq.to_le_bytes());
        }
        for &(u, d) in uuids {
            out.extend_from_slice(&u.to_le_bytes());
            out.extend_from_slice(&d.to_le_bytes());
        }
        for w in &bloom {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.dict);
        out.extend_from_slice(&self.postings);
        for n in [docs.len() as u32, uuids.len() as u32, words as u32, self.n_terms] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&(self.dict.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.postings.len() as u64).to_le_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(END_MAGIC);
        Ok(out)
    }
}

/// Builds the segment bytes of everything in `m`.
pub fn build_from_memtable(m: &Memtable) -> Result<Vec<u8>, IndexError> {
    let n = m.docs.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by_key(|&i| m.docs[i as usize].rank);
    let mut new_id = vec![0u32; n];
    for (new, &old) in order.iter().enumerate() {
        new_id[old as usize] = new as u32;
    }
    let docs: Vec<Rank> = order.iter().map(|&i| m.docs[i as usize].rank).collect();
    let mut uuids: Vec<(u128, u32)> = Vec::with_capacity(m.uuids.len());
    for (&u, list) in &m.uuids {
        for &id in list.as_slice() {
            let insight = if m.docs[id as usize].insight { INSIGHT_BIT } else { 0 };
            uuids.push((u, new_id[id as usize] | insight));
        }
    }
    uuids.sort_unstable();
    let mut keys: Vec<&Vec<u8>> = m.terms.keys().collect();
    keys.sort_unstable();
    let mut w = Writer::new();
    let mut buf = Vec::new();
    for k in keys {
        buf.clear();
        buf.extend(m.terms[k].iter().map(|&i| new_id[i as usize]));
        buf.sort_unstable();
        w.add_term(k, &buf)?;
    }
    w.finish(&docs, &uuids)
}

/// Builds the segment bytes holding every doc of `inputs`, in result order.
pub fn merge(inputs: &[Arc<Segment>]) -> Result<Vec<u8>, IndexError> {
    let total: usize = inputs.iter().map(|s| s.docs.len()).sum();
    if total > MAX_SEGMENT_DOCS {
        return Err(IndexError::SegmentTooLarge { what: "merge would exceed the segment size limit" });
    }
    // New doc order: a k-way merge of the inputs' doc tables; each input's ids map monotonically.
    let mut maps: Vec<Vec<u32>> = inputs.iter().map(|s| Vec::with_capacity(s.docs.len())).collect();
    let mut pos = vec![0usize; inputs.len()];
    let mut docs = Vec::with_capacity(total);
    loop {
        let mut best: Option<(usize, Rank)> = None;
        for (i, s) in inputs.iter().enumerate() {
            if let Some(&r) = s.docs.get(pos[i])
                && best.is_none_or(|(_, b)| r < b)
            {
                best = Some((i, r));
            }
        }
        let Some((i, r)) = best else { break };
        maps[i].push(docs.len() as u32);
        docs.push(r);
        pos[i] += 1;
    }
    let mut all_terms: Vec<(&[u8], usize, usize)> = Vec::new();
    for (i, s) in inputs.iter().enumerate() {
        for t in 0..s.terms.len() {
            all_terms.push((s.term_key(t), i, t));
        }
    }
    all_terms.sort_unstable();
    let mut w = Writer::new();
    let mut buf = Vec::new();
    let mut raw = Vec::new();
    for group in all_terms.chunk_by(|a, b| a.0 == b.0) {
        buf.clear();
        for &(_, i, t) in group {
            raw.clear();
            inputs[i].decode_term(t, &mut raw)?;
            for &d in &raw {
                buf.push(*maps[i].get(d as usize).ok_or_else(|| inputs[i].corrupted("posting beyond doc table"))?);
            }
        }
        if group.len() > 1 {
            buf.sort_unstable();
        }
        w.add_term(group[0].0, &buf)?;
    }
    let mut uuids = Vec::with_capacity(total);
    for (i, s) in inputs.iter().enumerate() {
        for (&u, &d) in s.uuids.iter().zip(&s.uuid_docs) {
            let new = *maps[i].get((d & !INSIGHT_BIT) as usize).ok_or_else(|| s.corrupted("id beyond doc table"))?;
            uuids.push((u, new | (d & INSIGHT_BIT)));
        }
    }
    uuids.sort_unstable();
    w.finish(&docs, &uuids)
}

/// Reads little-endian fields from a byte slice, reporting the offset of anything short.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
}

/// One input of an intersection inside a segment.
enum Stream<'a> {
    Posting(Box<Cursor<'a>>),
    List { ids: Vec<u32>, at: usize },
}

impl Stream<'_> {
    fn len(&self) -> usize {
        match self {
            Stream::Posting(c) => c.count(),
            Stream::List { ids, .. } => ids.len(),
        }
    }

    fn seek(&mut self, target: u32) -> Result<Option<u32>, Malformed> {
        match self {
            Stream::Posting(c) => c.seek(target),
            Stream::List { ids, at } => {
                *at += ids[*at..].partition_point(|&d| d < target);
                Ok(ids.get(*at).copied())
            }
        }
    }
}

impl Segment {
    /// Parses and checks the bytes of a segment file.
    pub fn parse(id: u64, path: PathBuf, bytes: Vec<u8>) -> Result<Segment, IndexError> {
        let bad = |offset: usize, reason: &'static str| IndexError::Corrupted {
            file: path.clone(),
            offset: offset as u64,
            reason: reason.to_string(),
        };
        let len = bytes.len();
        if len < MAGIC.len() + FOOTER || &bytes[..8] != MAGIC || &bytes[len - 8..] != END_MAGIC {
            return Err(bad(0, "not a segment file (magic or length)"));
        }
        let crc_at = len - 12;
        let mut r = Reader { b: &bytes, at: crc_at };
        let stored_crc = r.u32().ok_or_else(|| bad(crc_at, "short footer"))?;
        if crc32c::crc32c(&bytes[..crc_at]) != stored_crc {
            return Err(bad(crc_at, "checksum mismatch"));
        }
        let footer_at = len - FOOTER;
        let mut f = Reader { b: &bytes, at: footer_at };
        let short = || bad(footer_at, "short footer");
        let (n_docs, n_uuids, words, n_terms) = (
            f.u32().ok_or_else(short)? as usize,
            f.u32().ok_or_else(short)? as usize,
            f.u32().ok_or_else(short)? as usize,
            f.u32().ok_or_else(short)? as usize,
        );
        let (dict_len, post_len) = (f.u64().ok_or_else(short)? as usize, f.u64().ok_or_else(short)? as usize);
        let sections = [n_docs.checked_mul(DOC_BYTES), n_uuids.checked_mul(UUID_BYTES), words.checked_mul(8)]
            .into_iter()
            .try_fold(8 + dict_len.checked_add(post_len).ok_or_else(short)?, |acc, s| acc.checked_add(s?));
        if sections != Some(footer_at) || words == 0 || n_docs > MAX_SEGMENT_DOCS {
            return Err(bad(footer_at, "section lengths do not add up to the file length"));
        }
        let mut r = Reader { b: &bytes, at: 8 };
        let mut docs = Vec::with_capacity(n_docs);
        for _ in 0..n_docs {
            let time = r.u64().ok_or_else(|| bad(r.at, "short doc table"))? as i64;
            let seq = r.u64().ok_or_else(|| bad(r.at, "short doc table"))?;
            docs.push(Rank { time, seq });
        }
        if !docs.windows(2).all(|w| w[0] < w[1]) {
            return Err(bad(8, "doc table not in result order"));
        }
        let mut uuids = Vec::with_capacity(n_uuids);
        let mut uuid_docs = Vec::with_capacity(n_uuids);
        for _ in 0..n_uuids {
            let at = r.at;
            let u = r.u128().ok_or_else(|| bad(at, "short id table"))?;
            let d = r.u32().ok_or_else(|| bad(at, "short id table"))?;
            if (d & !INSIGHT_BIT) as usize >= n_docs || uuids.last().is_some_and(|&p| p > u) {
                return Err(bad(at, "id table entry out of order or beyond the doc table"));
            }
            uuids.push(u);
            uuid_docs.push(d);
        }
        let mut bloom = Vec::with_capacity(words);
        for _ in 0..words {
            bloom.push(r.u64().ok_or_else(|| bad(r.at, "short bloom filter"))?);
        }
        let dict_at = r.at;
        let dict = &bytes[dict_at..dict_at + dict_len];
        let postings = bytes[dict_at + dict_len..footer_at].to_vec();
        let mut keys = Vec::with_capacity(dict_len);
        let mut terms = Vec::with_capacity(n_terms);
        let mut at = 0;
        let mut prev: Option<(usize, usize)> = None;
        for _ in 0..n_terms {
            let entry_at = dict_at + at;
            let malformed = |_| bad(entry_at, "malformed dictionary entry");
            let key_len = postings::get_varint(dict, &mut at).map_err(malformed)? as usize;
            let key = dict.get(at..at + key_len).ok_or_else(|| bad(entry_at, "dictionary key past its section"))?;
            at += key_len;
            let count = postings::get_varint(dict, &mut at).map_err(malformed)?;
            let post_off = postings::get_varint(dict, &mut at).map_err(malformed)?;
            if count == 0 || count as usize > n_docs || post_off as usize >= postings.len() {
                return Err(bad(entry_at, "dictionary entry out of range"));
            }
            if prev.is_some_and(|(o, l)| keys[o..o + l] >= *key) {
                return Err(bad(entry_at, "dictionary keys not strictly ascending"));
            }
            prev = Some((keys.len(), key_len));
            terms.push(TermEntry { key_off: keys.len() as u32, key_len: key_len as u32, count, post_off });
            keys.extend_from_slice(key);
        }
        if at != dict_len {
            return Err(bad(dict_at + at, "dictionary longer than its entries"));
        }
        Ok(Segment { id, path, docs, uuids, uuid_docs, bloom, keys, terms, postings })
    }

    fn corrupted(&self, reason: &str) -> IndexError {
        IndexError::Corrupted { file: self.path.clone(), offset: 0, reason: reason.to_string() }
    }

    fn malformed(&self) -> impl Fn(Malformed) -> IndexError + '_ {
        move |_| self.corrupted("malformed posting list")
    }

    fn term_key(&self, t: usize) -> &[u8] {
        let e = self.terms[t];
        &self.keys[e.key_off as usize..(e.key_off + e.key_len) as usize]
    }

    fn find_term(&self, key: &[u8]) -> Option<usize> {
        self.terms.binary_search_by(|e| self.keys[e.key_off as usize..(e.key_off + e.key_len) as usize].cmp(key)).ok()
    }

    fn cursor(&self, t: usize) -> Result<Cursor<'_>, IndexError> {
        let e = self.terms[t];
        Cursor::open(&self.postings[e.post_off as usize..], e.count as usize).map_err(self.malformed())
    }

    fn decode_term(&self, t: usize, out: &mut Vec<u32>) -> Result<(), IndexError> {
        let e = self.terms[t];
        postings::decode_all(&self.postings[e.post_off as usize..], e.count as usize, out).map_err(self.malformed())
    }

    /// In-memory bytes of this segment (roughly its file size).
    pub fn heap_bytes(&self) -> usize {
        self.docs.len() * DOC_BYTES
            + self.uuids.len() * UUID_BYTES
            + self.bloom.len() * 8
            + self.keys.len()
            + self.terms.len() * 16
            + self.postings.len()
    }

    fn uuid_range(&self, u: u128) -> std::ops::Range<usize> {
        let lo = self.uuids.partition_point(|&x| x < u);
        let hi = lo + self.uuids[lo..].partition_point(|&x| x == u);
        lo..hi
    }

    fn bloom_may_contain(&self, key: u128) -> bool {
        let nbits = self.bloom.len() as u64 * 64;
        bloom_positions(key, nbits).all(|bit| self.bloom[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// The seq of the first record in this segment carrying the id.
    pub fn find_event_id(
        &self,
        event_id: &str,
        uuid: Option<u128>,
        bloom_key: u128,
    ) -> Result<Option<Seq>, IndexError> {
        if !self.bloom_may_contain(bloom_key) {
            return Ok(None);
        }
        let min_seq = |docs: &mut dyn Iterator<Item = u32>| docs.map(|d| self.docs[d as usize].seq).min().map(Seq);
        if let Some(u) = uuid {
            let r = self.uuid_range(u);
            return Ok(min_seq(&mut self.uuid_docs[r].iter().map(|d| d & !INSIGHT_BIT)));
        }
        let mut ids = Vec::new();
        for c in [EventCategory::Standard, EventCategory::Insight] {
            if let Some(t) = self.find_term(&term::key(c, EVENT_ID_TAG, event_id.as_bytes())) {
                self.decode_term(t, &mut ids)?;
            }
        }
        Ok(min_seq(&mut ids.into_iter()))
    }

    /// Adds the matches of the AND of `attributes` (deduplicated) within `bounds` to `top`.
    pub fn search(
        &self,
        attributes: &[(AttributeKey, &str)],
        category: EventCategory,
        bounds: Bounds,
        top: &mut TopK,
    ) -> Result<(), IndexError> {
        let lo = self.docs.partition_point(|r| *r < bounds.lower);
        let mut hi = self.docs.partition_point(|r| *r <= bounds.upper);
        if let Some(w) = top.worst() {
            hi = hi.min(self.docs.partition_point(|r| *r < w));
        }
        if lo >= hi {
            return Ok(());
        }
        let mut streams: Vec<Stream<'_>> = Vec::with_capacity(attributes.len().max(1));
        let mut key = Vec::new();
        for &(k, v) in attributes {
            if k == AttributeKey::EventId
                && let Some(u) = term::parse_uuid(v)
            {
                let want_bit = if category == EventCategory::Insight { INSIGHT_BIT } else { 0 };
                let mut ids: Vec<u32> = self.uuid_docs[self.uuid_range(u)]
                    .iter()
                    .filter(|&&d| d & INSIGHT_BIT == want_bit)
                    .map(|d| d & !INSIGHT_BIT)
                    .collect();
                if ids.is_empty() {
                    return Ok(());
                }
                ids.sort_unstable();
                streams.push(Stream::List { ids, at: 0 });
                continue;
            }
            term::key_into(&mut key, category, k.tag(), v.as_bytes());
            let Some(t) = self.find_term(&key) else { return Ok(()) };
            streams.push(Stream::Posting(Box::new(self.cursor(t)?)));
        }
        if streams.is_empty() {
            term::key_into(&mut key, category, ALL_TAG, b"");
            let Some(t) = self.find_term(&key) else { return Ok(()) };
            streams.push(Stream::Posting(Box::new(self.cursor(t)?)));
        }
        // The rarest list drives: the others are only sought to its ids.
        streams.sort_by_key(Stream::len);
        leapfrog(&mut streams, lo as u32, hi as u32, |d| {
            let r = self.docs[d as usize];
            if !top.admits(r) {
                return false;
            }
            top.push(r);
            true
        })
        .map_err(self.malformed())
    }
}

/// Calls `found` with every id in `lo..hi` present in all streams, ascending, until it returns false.
fn leapfrog(streams: &mut [Stream<'_>], lo: u32, hi: u32, mut found: impl FnMut(u32) -> bool) -> Result<(), Malformed> {
    let n = streams.len();
    let mut target = lo;
    let mut agreeing = 0;
    let mut i = 0;
    loop {
        let Some(c) = streams[i].seek(target)? else { return Ok(()) };
        if c >= hi {
            return Ok(());
        }
        if c == target {
            agreeing += 1;
        } else {
            target = c;
            agreeing = 1;
        }
        if agreeing == n {
            if !found(target) {
                return Ok(());
            }
            target += 1;
            agreeing = 0;
        }
        i = (i + 1) % n;
    }
}
