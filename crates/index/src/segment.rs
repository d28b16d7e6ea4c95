//! Immutable segments: a doc table in result order, an exact table of UUID event ids, block-coded posting lists
//! and a prefix-compressed term dictionary, all read on demand in checked 4 KiB pages through the shared block
//! cache; only small structures stay resident (sparse indexes, the bloom filter over every id, page checksums).
//! Segments are written streaming, from the memtable or by merging segments. Layout in `docs/formats/index.md`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use model::{AttributeKey, Condition, EventCategory, Pattern, Seq};

use crate::files;
use crate::memtable::{Memtable, TopK};
use crate::order::{Bounds, Rank};
use crate::postings::{self, Cursor, ListAt, ListWriter, Malformed};
use crate::stream::Stream;
use crate::term::{self, ALL_TAG, EVENT_ID_TAG};
use crate::{Counts, IndexError};

/// Bytes per page. Hard-coded: part of the segment format (one crc32c per page of the on-demand region).
/// 4 KiB is the OS page size, so a cold read costs one page of the OS cache.
pub const PAGE: usize = 4096;

/// The block cache shared by every segment of one index: checked pages by (segment id, page number), bounded by
/// their bytes, so the index's memory is its small resident structures plus this cache. Segment ids are never
/// reused inside one index directory, so a page of a merged and deleted segment can never be mistaken for
/// another's: it just ages out.
pub type BlockCache = block_cache::BlockCache<(u64, u32), Arc<[u8]>>;

const MAGIC: &[u8; 8] = b"OTIXSEG\x02";
const END_MAGIC: &[u8; 8] = b"OTIXEND\x02";
/// Footer: 5 counts (u32), id-table shape (4 bytes), 6 lengths (u64), 2 crc32c (u32), end magic.
const FOOTER: usize = 5 * 4 + 4 + 6 * 8 + 2 * 4 + 8;
/// Docs per doc-table block. Hard-coded: part of the format; one resident index entry (24 bytes) per block.
const DOC_BLOCK: usize = 128;
const DOC_INDEX_ENTRY: usize = 24;
/// Terms per dictionary block. Hard-coded: part of the format; a lookup scans at most this many entries.
const DICT_BLOCK: usize = 16;
/// Bit 31 of an in-memory id-table doc marks an Insights event (the table is shared by both categories).
const INSIGHT_BIT: u32 = 1 << 31;
/// Bloom filter sizing. Hard-coded: 10 bits per id and 7 probes give ~1% false positives, so an absent id
/// costs about one cache miss per segment.
const BLOOM_BITS_PER_KEY: usize = 10;
const BLOOM_PROBES: u64 = 7;
/// Largest segment a merge may produce. Hard-coded: doc ids must stay below [`INSIGHT_BIT`] and posting
/// offsets within u32; 2^24 events is ~16 M, about 800 MB of segment.
pub const MAX_SEGMENT_DOCS: usize = 1 << 24;
/// A count by attribute seeks each value's list to the matches (instead of decoding it whole) when there are
/// at most this many matches in the segment and the list is 16 times longer. Hard-coded: a speed knob.
const SEEK_MATCHES_MAX: usize = 4096;

fn bloom_positions(key: u128, nbits: u64) -> impl Iterator<Item = u64> {
    let h1 = key as u64;
    let h2 = ((key >> 64) as u64) | 1;
    (0..BLOOM_PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % nbits)
}

/// Bytes of a UUID's top bits that the id table leaves implicit in its bucket index: at least 8 entries per
/// bucket on average (the index costs at most 0.5 byte per id in memory, and saves a byte per id on disk), at
/// most 2 bytes (a 256 KiB resident index). Hard-coded thresholds; the choice is written in the footer.
fn id_drop_bytes(n_ids: usize) -> usize {
    if n_ids >= 1 << 19 {
        2
    } else if n_ids >= 1 << 11 {
        1
    } else {
        0
    }
}

/// Bytes of an id-table doc field: the doc number plus one Insight bit (the field's top bit).
fn id_doc_width(n_docs: usize) -> usize {
    let bits = usize::BITS - n_docs.saturating_sub(1).leading_zeros();
    (bits as usize + 1).div_ceil(8)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends one doc-table block: the first rank as `[time i64][varint seq]`, then per doc
/// `[varint time decrease][varint zigzag seq difference]` (times never increase in result order).
fn encode_doc_block(ranks: &[Rank], out: &mut Vec<u8>) {
    let Some((first, rest)) = ranks.split_first() else { return };
    out.extend_from_slice(&first.time.to_le_bytes());
    postings::put_varint64(out, first.seq);
    let mut prev = *first;
    for r in rest {
        postings::put_varint64(out, (i128::from(prev.time) - i128::from(r.time)) as u64);
        postings::put_varint64(out, zigzag(r.seq.wrapping_sub(prev.seq) as i64));
        prev = *r;
    }
}

fn decode_doc_block(b: &[u8], n: usize, out: &mut Vec<Rank>) -> Result<(), Malformed> {
    out.clear();
    let time = i64::from_le_bytes(b.get(..8).ok_or(Malformed)?.try_into().map_err(|_| Malformed)?);
    let mut at = 8;
    let mut prev = Rank { time, seq: postings::get_varint64(b, &mut at)? };
    out.push(prev);
    for _ in 1..n {
        let down = postings::get_varint64(b, &mut at)?;
        let time = i64::try_from(i128::from(prev.time) - i128::from(down)).map_err(|_| Malformed)?;
        let seq = prev.seq.wrapping_add(unzigzag(postings::get_varint64(b, &mut at)?) as u64);
        let r = Rank { time, seq };
        if r <= prev {
            return Err(Malformed);
        }
        out.push(r);
        prev = r;
    }
    if at == b.len() { Ok(()) } else { Err(Malformed) }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Docs,
    Ids,
    Terms,
}

/// Writes a segment file front to back: docs (in result order), then ids (sorted), then terms (ascending keys),
/// then [`SegmentWriter::finish`]. Memory: the resident structures of the new segment, one posting block, one
/// dictionary block and the write buffer; never the segment's data.
pub struct SegmentWriter {
    id: u64,
    dir: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    phase: Phase,
    pos: u64,
    page_crc: u32,
    page_fill: usize,
    crcs: Vec<u32>,
    n_docs_expected: usize,
    n_docs: usize,
    doc_block: Vec<Rank>,
    last_doc: Option<Rank>,
    doc_index: Vec<(Rank, u64)>,
    docs_len: u64,
    n_ids: usize,
    id_drop: usize,
    id_width: usize,
    buckets: Vec<u32>,
    last_id: Option<(u128, u32)>,
    ids_len: u64,
    bloom: Vec<u64>,
    list: ListWriter,
    list_at: u64,
    term_key: Vec<u8>,
    term_open: bool,
    dict_block: Vec<u8>,
    dict_in_block: usize,
    dict_first_key: Vec<u8>,
    dict_prev_key: Vec<u8>,
    dict_index: Vec<(Vec<u8>, u64, u32)>,
    n_terms: usize,
    postings_len: u64,
    dict_len: u64,
    scratch: Vec<u8>,
}

impl SegmentWriter {
    /// Starts `dir/{id}.seg.tmp` for a segment of exactly `n_docs` docs and at most `max_ids` UUID ids.
    pub fn create(dir: &Path, id: u64, n_docs: usize, max_ids: usize) -> Result<SegmentWriter, IndexError> {
        if n_docs > MAX_SEGMENT_DOCS {
            return Err(IndexError::SegmentTooLarge { what: "more docs than a segment may hold" });
        }
        let tmp = atomic_file::tmp_path(&dir.join(files::segment_name(id)));
        let file = File::create(&tmp).map_err(|source| IndexError::Io { op: "create", path: tmp.clone(), source })?;
        let words = (n_docs * BLOOM_BITS_PER_KEY).div_ceil(64).max(1);
        let mut w = SegmentWriter {
            id,
            dir: dir.to_path_buf(),
            tmp,
            // 256 KiB of write buffer. Hard-coded: large sequential writes, small next to the block cache.
            out: BufWriter::with_capacity(256 * 1024, file),
            phase: Phase::Docs,
            pos: 0,
            page_crc: 0,
            page_fill: 0,
            crcs: Vec::new(),
            n_docs_expected: n_docs,
            n_docs: 0,
            doc_block: Vec::with_capacity(DOC_BLOCK),
            last_doc: None,
            doc_index: Vec::with_capacity(n_docs.div_ceil(DOC_BLOCK)),
            docs_len: 0,
            n_ids: 0,
            id_drop: id_drop_bytes(max_ids),
            id_width: id_doc_width(n_docs),
            buckets: Vec::new(),
            last_id: None,
            ids_len: 0,
            bloom: vec![0; words],
            list: ListWriter::default(),
            list_at: 0,
            term_key: Vec::new(),
            term_open: false,
            dict_block: Vec::new(),
            dict_in_block: 0,
            dict_first_key: Vec::new(),
            dict_prev_key: Vec::new(),
            dict_index: Vec::new(),
            n_terms: 0,
            postings_len: 0,
            dict_len: 0,
            scratch: Vec::new(),
        };
        w.write(MAGIC)?;
        Ok(w)
    }

    fn bug(&self, reason: &str) -> IndexError {
        IndexError::Corrupted { file: self.tmp.clone(), offset: self.pos, reason: format!("{reason} (a bug)") }
    }

    /// Appends bytes to the file, keeping the running crc32c of each page.
    fn write(&mut self, mut b: &[u8]) -> Result<(), IndexError> {
        self.out.write_all(b).map_err(|source| IndexError::Io { op: "write", path: self.tmp.clone(), source })?;
        self.pos += b.len() as u64;
        while !b.is_empty() {
            let take = (PAGE - self.page_fill).min(b.len());
            self.page_crc = crc32c::crc32c_append(self.page_crc, &b[..take]);
            self.page_fill += take;
            b = &b[take..];
            if self.page_fill == PAGE {
                self.crcs.push(self.page_crc);
                self.page_crc = 0;
                self.page_fill = 0;
            }
        }
        Ok(())
    }

    fn write_scratch(&mut self) -> Result<(), IndexError> {
        let bytes = std::mem::take(&mut self.scratch);
        let r = self.write(&bytes);
        self.scratch = bytes;
        self.scratch.clear();
        r
    }

    fn bloom_add(&mut self, key: u128) {
        let nbits = self.bloom.len() as u64 * 64;
        for bit in bloom_positions(key, nbits) {
            self.bloom[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    fn enter(&mut self, phase: Phase) -> Result<(), IndexError> {
        if phase < self.phase {
            return Err(self.bug("segment sections written out of order"));
        }
        if self.phase == Phase::Docs && phase > Phase::Docs {
            self.flush_doc_block()?;
            if self.n_docs != self.n_docs_expected {
                return Err(self.bug("doc count differs from the announced one"));
            }
        }
        if self.phase <= Phase::Ids && phase > Phase::Ids {
            let nb = 1usize << (8 * self.id_drop);
            while self.buckets.len() < nb + 1 {
                self.buckets.push(self.n_ids as u32);
            }
        }
        self.phase = phase;
        Ok(())
    }

    fn flush_doc_block(&mut self) -> Result<(), IndexError> {
        let Some(&first) = self.doc_block.first() else { return Ok(()) };
        self.doc_index.push((first, self.pos));
        encode_doc_block(&self.doc_block, &mut self.scratch);
        self.docs_len += self.scratch.len() as u64;
        self.write_scratch()?;
        self.doc_block.clear();
        Ok(())
    }

    /// The next doc in result order (strictly after the previous one).
    pub fn push_doc(&mut self, r: Rank) -> Result<(), IndexError> {
        self.enter(Phase::Docs)?;
        if self.last_doc.is_some_and(|p| p >= r) || (self.n_docs >= self.n_docs_expected) {
            return Err(self.bug("docs not in result order or more than announced"));
        }
        self.last_doc = Some(r);
        self.doc_block.push(r);
        self.n_docs += 1;
        if self.doc_block.len() == DOC_BLOCK {
            self.flush_doc_block()?;
        }
        Ok(())
    }

    /// The next UUID id entry, sorted by (uuid, doc with [`INSIGHT_BIT`]).
    pub fn push_id(&mut self, uuid: u128, doc: u32) -> Result<(), IndexError> {
        self.enter(Phase::Ids)?;
        let plain = doc & !INSIGHT_BIT;
        if plain as usize >= self.n_docs || self.last_id.is_some_and(|l| l >= (uuid, doc)) {
            return Err(self.bug("id table entry out of order or beyond the doc table"));
        }
        self.last_id = Some((uuid, doc));
        let bucket = if self.id_drop == 0 { 0 } else { (uuid >> (128 - 8 * self.id_drop)) as usize };
        while self.buckets.len() <= bucket {
            self.buckets.push(self.n_ids as u32);
        }
        let low = uuid.to_le_bytes();
        self.scratch.extend_from_slice(&low[..16 - self.id_drop]);
        let field = u64::from(plain) | (u64::from(doc >> 31) << (8 * self.id_width - 1));
        self.scratch.extend_from_slice(&field.to_le_bytes()[..self.id_width]);
        self.ids_len += self.scratch.len() as u64;
        self.write_scratch()?;
        self.n_ids += 1;
        self.bloom_add(term::bloom_key_of_uuid(uuid));
        Ok(())
    }

    /// Starts the list of `key` (keys strictly ascending).
    pub fn begin_term(&mut self, key: &[u8]) -> Result<(), IndexError> {
        self.enter(Phase::Terms)?;
        if self.term_open || (self.n_terms > 0 && self.term_key.as_slice() >= key) {
            return Err(self.bug("terms not strictly ascending"));
        }
        if key.get(1) == Some(&EVENT_ID_TAG) {
            self.bloom_add(term::bloom_key_of_bytes(&key[2..]));
        }
        self.term_key.clear();
        self.term_key.extend_from_slice(key);
        self.term_open = true;
        self.list.begin();
        self.list_at = self.pos;
        Ok(())
    }

    fn drain_list(&mut self) -> Result<(), IndexError> {
        if !self.list.bytes.is_empty() {
            let bytes = std::mem::take(&mut self.list.bytes);
            self.postings_len += bytes.len() as u64;
            let r = self.write(&bytes);
            self.list.bytes = bytes;
            self.list.bytes.clear();
            r?;
        }
        Ok(())
    }

    /// The next doc id of the open list (strictly ascending).
    pub fn push_posting(&mut self, doc: u32) -> Result<(), IndexError> {
        if !self.term_open || doc as usize >= self.n_docs {
            return Err(self.bug("posting outside a term or beyond the doc table"));
        }
        self.list.push(doc)?;
        self.drain_list()
    }

    /// Ends the open list and adds its dictionary entry.
    pub fn end_term(&mut self) -> Result<(), IndexError> {
        let (count, data_len) = self.list.finish()?;
        self.drain_list()?;
        if !self.term_open || count == 0 {
            return Err(self.bug("empty posting list"));
        }
        self.term_open = false;
        let key = std::mem::take(&mut self.term_key);
        if self.dict_in_block == 0 {
            self.dict_first_key.clear();
            self.dict_first_key.extend_from_slice(&key);
            self.dict_prev_key.clear();
            postings::put_varint64(&mut self.dict_block, self.list_at);
        }
        let shared = self.dict_prev_key.iter().zip(&key).take_while(|(a, b)| a == b).count();
        postings::put_varint(&mut self.dict_block, shared as u32);
        postings::put_varint(&mut self.dict_block, (key.len() - shared) as u32);
        self.dict_block.extend_from_slice(&key[shared..]);
        postings::put_varint(&mut self.dict_block, count);
        postings::put_varint64(&mut self.dict_block, data_len);
        self.dict_prev_key.clear();
        self.dict_prev_key.extend_from_slice(&key);
        self.term_key = key;
        self.dict_in_block += 1;
        self.n_terms += 1;
        if self.dict_in_block == DICT_BLOCK {
            self.flush_dict_block()?;
        }
        Ok(())
    }

    /// Dictionary blocks go right after the postings of their last term: a block's lists are contiguous
    /// and precede it, so only the block's first list offset is stored.
    fn flush_dict_block(&mut self) -> Result<(), IndexError> {
        if self.dict_in_block == 0 {
            return Ok(());
        }
        let at = self.pos;
        let bytes = std::mem::take(&mut self.dict_block);
        let len = u32::try_from(bytes.len()).map_err(|_| self.bug("dictionary block over 4 GiB"))?;
        self.write(&bytes)?;
        self.dict_len += bytes.len() as u64;
        self.dict_block = bytes;
        self.dict_block.clear();
        self.dict_index.push((self.dict_first_key.clone(), at, len));
        self.dict_in_block = 0;
        Ok(())
    }

    /// Writes the resident sections and the footer, makes the file durable under its final name
    /// (fsync, rename, directory fsync) and opens it.
    pub fn finish(mut self, cache: &Arc<BlockCache>) -> Result<Segment, IndexError> {
        self.enter(Phase::Terms)?;
        if self.term_open {
            return Err(self.bug("a term was left open"));
        }
        self.flush_dict_block()?;
        if self.page_fill > 0 {
            self.crcs.push(self.page_crc);
        }
        let region_end = self.pos;
        let mut r = Vec::new();
        for &(rank, at) in &self.doc_index {
            put_u64(&mut r, rank.time as u64);
            put_u64(&mut r, rank.seq);
            put_u64(&mut r, at);
        }
        for &b in &self.buckets {
            put_u32(&mut r, b);
        }
        for (key, at, len) in &self.dict_index {
            postings::put_varint(&mut r, key.len() as u32);
            r.extend_from_slice(key);
            put_u64(&mut r, *at);
            put_u32(&mut r, *len);
        }
        for &w in &self.bloom {
            put_u64(&mut r, w);
        }
        for &c in &self.crcs {
            put_u32(&mut r, c);
        }
        let mut f = Vec::with_capacity(FOOTER);
        for n in [self.n_docs, self.n_ids, self.n_terms, self.bloom.len(), self.dict_index.len()] {
            put_u32(&mut f, n as u32);
        }
        f.extend_from_slice(&[self.id_drop as u8, self.id_width as u8, 0, 0]);
        for n in [self.docs_len, self.ids_len, self.postings_len, self.dict_len, region_end, r.len() as u64] {
            put_u64(&mut f, n);
        }
        put_u32(&mut f, crc32c::crc32c(&r));
        let footer_crc = crc32c::crc32c(&f);
        put_u32(&mut f, footer_crc);
        f.extend_from_slice(END_MAGIC);
        let tmp = self.tmp.clone();
        let io = |op: &'static str| {
            let path = tmp.clone();
            move |source| IndexError::Io { op, path, source }
        };
        self.out.write_all(&r).map_err(io("write"))?;
        self.out.write_all(&f).map_err(io("write"))?;
        let file = self.out.into_inner().map_err(|e| e.into_error()).map_err(io("write"))?;
        file.sync_all().map_err(io("fsync"))?;
        drop(file);
        let path = self.dir.join(files::segment_name(self.id));
        atomic_file::commit_tmp(&self.tmp, &path)?;
        Segment::open(self.id, path, cache.clone())
    }
}

/// Reads byte ranges of a segment's on-demand region page by page, each page checked against its crc32c,
/// through the block cache (lookups) or around it (merges, which read everything once and must not evict
/// what lookups use). Remembers the last page, so neighbouring reads cost no cache lookup.
pub struct PageReader<'a> {
    seg: &'a Segment,
    cached: bool,
    last: Option<(u32, Arc<[u8]>)>,
}

impl PageReader<'_> {
    pub fn corrupted(&self, offset: u64, reason: &str) -> IndexError {
        self.seg.corrupted_at(offset, reason)
    }

    fn page(&mut self, p: u32) -> Result<Arc<[u8]>, IndexError> {
        if let Some((n, page)) = &self.last
            && *n == p
        {
            return Ok(page.clone());
        }
        let page = self.seg.load_page(p, self.cached)?;
        self.last = Some((p, page.clone()));
        Ok(page)
    }

    fn each_piece(&mut self, at: u64, len: usize, mut f: impl FnMut(&[u8])) -> Result<(), IndexError> {
        let end = at
            .checked_add(len as u64)
            .filter(|&e| e <= self.seg.region_end)
            .ok_or_else(|| self.corrupted(at, "read beyond the data region"))?;
        let mut pos = at;
        while pos < end {
            let p = (pos / PAGE as u64) as u32;
            let page = self.page(p)?;
            let off = (pos % PAGE as u64) as usize;
            let take = (page.len().saturating_sub(off) as u64).min(end - pos) as usize;
            if take == 0 {
                return Err(self.corrupted(pos, "short page"));
            }
            f(&page[off..off + take]);
            pos += take as u64;
        }
        Ok(())
    }

    pub fn read_into(&mut self, at: u64, len: usize, out: &mut Vec<u8>) -> Result<(), IndexError> {
        self.each_piece(at, len, |b| out.extend_from_slice(b))
    }

    pub fn read_exact(&mut self, at: u64, buf: &mut [u8]) -> Result<(), IndexError> {
        let mut filled = 0;
        self.each_piece(at, buf.len(), |b| {
            buf[filled..filled + b.len()].copy_from_slice(b);
            filled += b.len();
        })
    }
}

/// Sizes of a segment's parts on disk, for reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Parts {
    pub docs: u64,
    pub ids: u64,
    pub postings: u64,
    pub dictionary: u64,
    /// Resident sections (sparse indexes, bloom filter, page checksums), footer and magic.
    pub resident: u64,
}

pub struct Segment {
    pub id: u64,
    pub path: PathBuf,
    file: File,
    cache: Arc<BlockCache>,
    pub n_docs: usize,
    n_ids: usize,
    n_terms: usize,
    region_end: u64,
    page_crcs: Vec<u32>,
    /// First rank and file offset of every doc block.
    doc_index: Vec<(Rank, u64)>,
    docs_end: u64,
    ids_at: u64,
    id_drop: usize,
    id_width: usize,
    /// Start entry of every id bucket (top `id_drop` bytes of the UUID), then the entry count.
    id_buckets: Vec<u32>,
    /// First key of every dictionary block (concatenated) and (key offset, key length, block offset, length).
    dict_keys: Vec<u8>,
    dict_blocks: Vec<(u32, u32, u64, u32)>,
    bloom: Vec<u64>,
    parts: Parts,
}

/// Reads little-endian fields from a byte slice.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
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
}

/// The last doc block decoded, so that consecutive hits and range ends cost one decode.
pub struct DocMemo<'a> {
    r: PageReader<'a>,
    block: usize,
    ranks: Vec<Rank>,
    buf: Vec<u8>,
}

impl Segment {
    /// Opens a segment file: reads and checks the footer and the resident sections (the rest is read on demand).
    pub fn open(id: u64, path: PathBuf, cache: Arc<BlockCache>) -> Result<Segment, IndexError> {
        let bad = |offset: u64, reason: &str| IndexError::Corrupted {
            file: path.clone(),
            offset,
            reason: reason.to_string(),
        };
        let file = File::open(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => bad(0, "listed in the manifest but missing"),
            _ => IndexError::Io { op: "open", path: path.clone(), source },
        })?;
        let len = file.metadata().map_err(|source| IndexError::Io { op: "stat", path: path.clone(), source })?.len();
        if len < (MAGIC.len() + FOOTER) as u64 {
            return Err(bad(0, "not a segment file (too short)"));
        }
        let footer_at = len - FOOTER as u64;
        let mut footer = [0u8; FOOTER];
        file.read_exact_at(&mut footer, footer_at).map_err(|source| IndexError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?;
        if &footer[FOOTER - 8..] != END_MAGIC {
            return Err(bad(footer_at, "not a segment file (end magic)"));
        }
        let mut f = Reader { b: &footer, at: 0 };
        let short = || bad(footer_at, "short footer");
        let counts: Vec<usize> =
            (0..5).map(|_| f.u32().map(|n| n as usize)).collect::<Option<_>>().ok_or_else(short)?;
        let (n_docs, n_ids, n_terms, words, n_dict_blocks) = (counts[0], counts[1], counts[2], counts[3], counts[4]);
        let shape = f.take(4).ok_or_else(short)?;
        let (id_drop, id_width) = (shape[0] as usize, shape[1] as usize);
        let lens: Vec<u64> = (0..6).map(|_| f.u64()).collect::<Option<_>>().ok_or_else(short)?;
        let (docs_len, ids_len, postings_len, dict_len, region_end, resident_len) =
            (lens[0], lens[1], lens[2], lens[3], lens[4], lens[5]);
        let resident_crc = f.u32().ok_or_else(short)?;
        let crc_at = f.at;
        let footer_crc = f.u32().ok_or_else(short)?;
        if crc32c::crc32c(&footer[..crc_at]) != footer_crc {
            return Err(bad(footer_at, "footer checksum mismatch"));
        }
        let sections = [docs_len, ids_len, postings_len, dict_len].into_iter().try_fold(8u64, u64::checked_add);
        let total = region_end.checked_add(resident_len).and_then(|n| n.checked_add(FOOTER as u64));
        let entry = 16usize.saturating_sub(id_drop) + id_width;
        if sections != Some(region_end)
            || total != Some(len)
            || n_docs > MAX_SEGMENT_DOCS
            || n_ids > n_docs
            || words == 0
            || id_drop > 2
            || !(1..=4).contains(&id_width)
            || (n_ids * entry) as u64 != ids_len
            || n_dict_blocks != n_terms.div_ceil(DICT_BLOCK)
        {
            return Err(bad(footer_at, "footer counts do not add up"));
        }
        let mut resident = vec![0u8; resident_len as usize];
        file.read_exact_at(&mut resident, region_end).map_err(|source| IndexError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?;
        if crc32c::crc32c(&resident) != resident_crc {
            return Err(bad(region_end, "resident sections checksum mismatch"));
        }
        let mut r = Reader { b: &resident, at: 0 };
        let short = |what: &str| bad(region_end, &format!("short {what}"));
        let docs_end = 8 + docs_len;
        let mut doc_index = Vec::with_capacity(n_docs.div_ceil(DOC_BLOCK));
        for b in 0..n_docs.div_ceil(DOC_BLOCK) {
            let time = r.u64().ok_or_else(|| short("doc index"))? as i64;
            let seq = r.u64().ok_or_else(|| short("doc index"))?;
            let at = r.u64().ok_or_else(|| short("doc index"))?;
            let rank = Rank { time, seq };
            let ordered = match doc_index.last() {
                None => at == 8,
                Some(&(p, pa)) => p < rank && pa < at,
            };
            if !ordered || at >= docs_end {
                return Err(bad(region_end + (b * DOC_INDEX_ENTRY) as u64, "doc index out of order"));
            }
            doc_index.push((rank, at));
        }
        let n_buckets = (1usize << (8 * id_drop)) + 1;
        let mut id_buckets = Vec::with_capacity(n_buckets);
        for _ in 0..n_buckets {
            let b = r.u32().ok_or_else(|| short("id buckets"))?;
            if id_buckets.last().is_some_and(|&p| p > b) || b as usize > n_ids {
                return Err(bad(region_end, "id buckets out of order"));
            }
            id_buckets.push(b);
        }
        if id_buckets.first() != Some(&0) || id_buckets.last() != Some(&(n_ids as u32)) {
            return Err(bad(region_end, "id buckets do not cover the id table"));
        }
        let mut dict_keys = Vec::new();
        let mut dict_blocks: Vec<(u32, u32, u64, u32)> = Vec::with_capacity(n_dict_blocks);
        for _ in 0..n_dict_blocks {
            let entry_at = region_end + r.at as u64;
            let key_len =
                postings::get_varint(r.b, &mut r.at).map_err(|_| bad(entry_at, "malformed dictionary index"))?;
            let key = r.take(key_len as usize).ok_or_else(|| short("dictionary index"))?;
            let at = r.u64().ok_or_else(|| short("dictionary index"))?;
            let blen = r.u32().ok_or_else(|| short("dictionary index"))?;
            let prev = dict_blocks.last().map(|&(o, l, _, _)| &dict_keys[o as usize..(o + l) as usize]);
            if prev.is_some_and(|p: &[u8]| p >= key) || at.checked_add(u64::from(blen)).is_none_or(|e| e > region_end) {
                return Err(bad(entry_at, "dictionary index out of order or beyond the data"));
            }
            dict_blocks.push((dict_keys.len() as u32, key_len, at, blen));
            dict_keys.extend_from_slice(key);
        }
        let mut bloom = Vec::with_capacity(words);
        for _ in 0..words {
            bloom.push(r.u64().ok_or_else(|| short("bloom filter"))?);
        }
        let n_pages = region_end.div_ceil(PAGE as u64) as usize;
        let mut page_crcs = Vec::with_capacity(n_pages);
        for _ in 0..n_pages {
            page_crcs.push(r.u32().ok_or_else(|| short("page checksums"))?);
        }
        if r.at != resident.len() {
            return Err(bad(region_end + r.at as u64, "resident sections longer than their entries"));
        }
        let parts = Parts {
            docs: docs_len,
            ids: ids_len,
            postings: postings_len,
            dictionary: dict_len,
            resident: resident_len + FOOTER as u64 + MAGIC.len() as u64,
        };
        let seg = Segment {
            id,
            path: path.clone(),
            file,
            cache,
            n_docs,
            n_ids,
            n_terms,
            region_end,
            page_crcs,
            doc_index,
            docs_end,
            ids_at: docs_end,
            id_drop,
            id_width,
            id_buckets,
            dict_keys,
            dict_blocks,
            bloom,
            parts,
        };
        let mut magic = [0u8; 8];
        seg.reader(false).read_exact(0, &mut magic)?;
        if &magic != MAGIC {
            return Err(bad(0, "not a segment file (magic)"));
        }
        Ok(seg)
    }

    pub fn corrupted_at(&self, offset: u64, reason: &str) -> IndexError {
        IndexError::Corrupted { file: self.path.clone(), offset, reason: reason.to_string() }
    }

    pub fn reader(&self, cached: bool) -> PageReader<'_> {
        PageReader { seg: self, cached, last: None }
    }

    fn load_page(&self, p: u32, cached: bool) -> Result<Arc<[u8]>, IndexError> {
        let key = (self.id, p);
        if cached && let Some(page) = self.cache.get(&key) {
            return Ok(page);
        }
        let start = u64::from(p) * PAGE as u64;
        let expected =
            *self.page_crcs.get(p as usize).ok_or_else(|| self.corrupted_at(start, "page beyond the data"))?;
        let len = (self.region_end - start).min(PAGE as u64) as usize;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, start).map_err(|source| match source.kind() {
            std::io::ErrorKind::UnexpectedEof => self.corrupted_at(start, "file shorter than its footer says"),
            _ => IndexError::Io { op: "read", path: self.path.clone(), source },
        })?;
        if crc32c::crc32c(&buf) != expected {
            return Err(self.corrupted_at(start, "page checksum mismatch"));
        }
        let page: Arc<[u8]> = buf.into();
        if cached {
            self.cache.insert(key, page.clone());
        }
        Ok(page)
    }

    /// Bytes held in memory for this segment (the block cache aside).
    pub fn heap_bytes(&self) -> usize {
        self.doc_index.len() * DOC_INDEX_ENTRY
            + self.id_buckets.len() * 4
            + self.dict_keys.len()
            + self.dict_blocks.len() * 24
            + self.bloom.len() * 8
            + self.page_crcs.len() * 4
    }

    pub fn parts(&self) -> Parts {
        self.parts
    }

    /// The newest doc's rank (segments are searched newest first).
    pub fn first_rank(&self) -> Option<Rank> {
        self.doc_index.first().map(|&(r, _)| r)
    }

    pub fn doc_memo(&self, cached: bool) -> DocMemo<'_> {
        DocMemo { r: self.reader(cached), block: usize::MAX, ranks: Vec::with_capacity(DOC_BLOCK), buf: Vec::new() }
    }

    fn load_doc_block<'a>(&'a self, m: &mut DocMemo<'a>, b: usize) -> Result<(), IndexError> {
        if m.block == b {
            return Ok(());
        }
        let &(first, at) = self.doc_index.get(b).ok_or_else(|| self.corrupted_at(0, "doc beyond the doc table"))?;
        let end = self.doc_index.get(b + 1).map_or(self.docs_end, |&(_, e)| e);
        let n = (self.n_docs - b * DOC_BLOCK).min(DOC_BLOCK);
        m.buf.clear();
        m.block = usize::MAX;
        m.r.read_into(at, (end - at) as usize, &mut m.buf)?;
        if decode_doc_block(&m.buf, n, &mut m.ranks).is_err() || m.ranks.first() != Some(&first) {
            return Err(self.corrupted_at(at, "malformed doc-table block"));
        }
        if m.ranks.last().zip(self.doc_index.get(b + 1)).is_some_and(|(l, (next, _))| l >= next) {
            return Err(self.corrupted_at(at, "doc-table blocks out of order"));
        }
        m.block = b;
        Ok(())
    }

    pub fn rank<'a>(&'a self, m: &mut DocMemo<'a>, d: u32) -> Result<Rank, IndexError> {
        let d = d as usize;
        self.load_doc_block(m, d / DOC_BLOCK)?;
        m.ranks.get(d % DOC_BLOCK).copied().ok_or_else(|| self.corrupted_at(0, "doc beyond the doc table"))
    }

    /// How many docs come before `r` (or at it, when `inclusive`).
    fn count_before<'a>(&'a self, m: &mut DocMemo<'a>, r: Rank, inclusive: bool) -> Result<usize, IndexError> {
        let before = |x: &Rank| if inclusive { *x <= r } else { *x < r };
        let j = self.doc_index.partition_point(|(f, _)| before(f));
        if j == 0 {
            return Ok(0);
        }
        self.load_doc_block(m, j - 1)?;
        Ok((j - 1) * DOC_BLOCK + m.ranks.partition_point(before))
    }

    fn id_entry_bytes(&self) -> usize {
        16 - self.id_drop + self.id_width
    }

    /// Entry `i` of the id table: (uuid, doc with [`INSIGHT_BIT`]); `bucket` is the entry's bucket.
    fn id_entry(&self, r: &mut PageReader<'_>, i: usize, bucket: usize) -> Result<(u128, u32), IndexError> {
        let size = self.id_entry_bytes();
        let at = self.ids_at + (i * size) as u64;
        let mut e = [0u8; 20];
        r.read_exact(at, &mut e[..size])?;
        let low_len = 16 - self.id_drop;
        let mut low = [0u8; 16];
        low[..low_len].copy_from_slice(&e[..low_len]);
        let high = if self.id_drop == 0 { 0 } else { (bucket as u128) << (128 - 8 * self.id_drop) };
        let uuid = u128::from_le_bytes(low) | high;
        let mut field = [0u8; 8];
        field[..self.id_width].copy_from_slice(&e[low_len..size]);
        let field = u64::from_le_bytes(field);
        let insight_at = 8 * self.id_width - 1;
        let doc = field & ((1 << insight_at) - 1);
        if doc as usize >= self.n_docs {
            return Err(self.corrupted_at(at, "id table entry beyond the doc table"));
        }
        Ok((uuid, doc as u32 | (((field >> insight_at) as u32) << 31)))
    }

    /// Every doc (with [`INSIGHT_BIT`]) carrying the UUID: a binary search inside its bucket.
    fn uuid_docs(&self, r: &mut PageReader<'_>, u: u128) -> Result<Vec<u32>, IndexError> {
        let bucket = if self.id_drop == 0 { 0 } else { (u >> (128 - 8 * self.id_drop)) as usize };
        let (mut lo, hi) = (self.id_buckets[bucket] as usize, self.id_buckets[bucket + 1] as usize);
        let mut end = hi;
        while lo < end {
            let mid = (lo + end) / 2;
            if self.id_entry(r, mid, bucket)?.0 < u {
                lo = mid + 1;
            } else {
                end = mid;
            }
        }
        let mut docs = Vec::new();
        for i in lo..hi {
            let (x, d) = self.id_entry(r, i, bucket)?;
            if x != u {
                break;
            }
            docs.push(d);
        }
        Ok(docs)
    }

    fn dict_block_key(&self, b: usize) -> &[u8] {
        let (o, l, _, _) = self.dict_blocks[b];
        &self.dict_keys[o as usize..(o + l) as usize]
    }

    /// Calls `f` with every (key, list) of dictionary block `b` in order, until it returns false.
    fn scan_dict_block(
        &self,
        r: &mut PageReader<'_>,
        b: usize,
        buf: &mut Vec<u8>,
        mut f: impl FnMut(&[u8], ListAt) -> bool,
    ) -> Result<(), IndexError> {
        let (_, _, block_at, len) = self.dict_blocks[b];
        let bad = |reason| self.corrupted_at(block_at, reason);
        buf.clear();
        r.read_into(block_at, len as usize, buf)?;
        let n = (self.n_terms - b * DICT_BLOCK).min(DICT_BLOCK);
        let mut at = 0;
        let malformed = |_| bad("malformed dictionary block");
        let mut list_at = postings::get_varint64(buf, &mut at).map_err(malformed)?;
        let mut key: Vec<u8> = Vec::new();
        for i in 0..n {
            let shared = postings::get_varint(buf, &mut at).map_err(malformed)? as usize;
            let suffix_len = postings::get_varint(buf, &mut at).map_err(malformed)? as usize;
            let suffix = buf.get(at..at + suffix_len).ok_or_else(|| bad("dictionary key past its block"))?;
            at += suffix_len;
            // Strictly ascending: the new key extends the previous one, or differs at `shared` upwards.
            let ascending = i == 0
                || (shared <= key.len() && !suffix.is_empty() && (shared == key.len() || suffix[0] > key[shared]));
            if !ascending || (i == 0 && (shared != 0 || suffix != self.dict_block_key(b))) {
                return Err(bad("dictionary keys out of order"));
            }
            key.truncate(shared);
            key.extend_from_slice(suffix);
            let count = postings::get_varint(buf, &mut at).map_err(malformed)?;
            let data_len = postings::get_varint64(buf, &mut at).map_err(malformed)?;
            let end = list_at.checked_add(data_len).and_then(|e| e.checked_add(postings::skip_table_bytes(count)));
            if count == 0 || count as usize > self.n_docs || end.is_none_or(|e| e > self.region_end) {
                return Err(bad("dictionary entry out of range"));
            }
            if !f(&key, ListAt { at: list_at, count, data_len }) {
                return Ok(());
            }
            list_at = end.unwrap_or(list_at);
        }
        if at != buf.len() {
            return Err(bad("dictionary block longer than its entries"));
        }
        Ok(())
    }

    /// How many dictionary blocks start with a key at or below `key` (a binary search of their first keys).
    fn blocks_starting_at_or_below(&self, key: &[u8]) -> usize {
        let (mut j, mut end) = (0, self.dict_blocks.len());
        while j < end {
            let mid = (j + end) / 2;
            if self.dict_block_key(mid) <= key {
                j = mid + 1;
            } else {
                end = mid;
            }
        }
        j
    }

    fn find_term(&self, r: &mut PageReader<'_>, key: &[u8]) -> Result<Option<ListAt>, IndexError> {
        // The first block whose first key is above `key`: the key can only be in the block before it.
        let j = self.blocks_starting_at_or_below(key);
        if j == 0 {
            return Ok(None);
        }
        let mut found = None;
        let mut buf = Vec::new();
        self.scan_dict_block(r, j - 1, &mut buf, |k, list| {
            if k == key {
                found = Some(list);
            }
            k < key
        })?;
        Ok(found)
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
        let mut docs = Vec::new();
        let mut r = self.reader(true);
        if let Some(u) = uuid {
            docs = self.uuid_docs(&mut r, u)?.into_iter().map(|d| d & !INSIGHT_BIT).collect();
        } else {
            for c in [EventCategory::Standard, EventCategory::Insight] {
                if let Some(list) = self.find_term(&mut r, &term::key(c, EVENT_ID_TAG, event_id.as_bytes()))? {
                    let mut cur = Cursor::open(self.reader(true), list)?;
                    while let Some(d) = cur.current() {
                        docs.push(d);
                        cur.advance()?;
                    }
                }
            }
        }
        let mut m = self.doc_memo(true);
        let mut first: Option<u64> = None;
        for d in docs {
            let seq = self.rank(&mut m, d)?.seq;
            first = Some(first.map_or(seq, |f| f.min(seq)));
        }
        Ok(first.map(Seq))
    }

    /// Calls `f` with every (key, list) of the dictionary from the first key `>= from`, in key order, until
    /// it returns false: the term-range scan of prefixes and CIDR blocks.
    fn scan_terms_from(
        &self,
        r: &mut PageReader<'_>,
        from: &[u8],
        mut f: impl FnMut(&[u8], ListAt) -> bool,
    ) -> Result<(), IndexError> {
        // The last block whose first key is <= `from` (or the first block): keys from `from` on start there.
        let j = self.blocks_starting_at_or_below(from);
        let mut buf = Vec::new();
        let mut going = true;
        for b in j.saturating_sub(1)..self.dict_blocks.len() {
            self.scan_dict_block(r, b, &mut buf, |k, list| {
                if k < from {
                    return true;
                }
                going = f(k, list);
                going
            })?;
            if !going {
                break;
            }
        }
        Ok(())
    }

    /// The streams of the terms one pattern of `key` finds here (none when it finds nothing).
    fn pattern_streams<'a>(
        &'a self,
        r: &mut PageReader<'_>,
        key: AttributeKey,
        pattern: &Pattern,
        category: EventCategory,
        out: &mut Vec<Stream<'a>>,
    ) -> Result<(), IndexError> {
        let mut k = Vec::new();
        match pattern {
            Pattern::Exact(v) if key == AttributeKey::EventId && term::parse_uuid(v).is_some() => {
                let u = term::parse_uuid(v).unwrap_or_default();
                let want_bit = if category == EventCategory::Insight { INSIGHT_BIT } else { 0 };
                let mut ids: Vec<u32> = self
                    .uuid_docs(r, u)?
                    .into_iter()
                    .filter(|&d| d & INSIGHT_BIT == want_bit)
                    .map(|d| d & !INSIGHT_BIT)
                    .collect();
                if !ids.is_empty() {
                    ids.sort_unstable();
                    out.push(Stream::List { ids, at: 0 });
                }
            }
            Pattern::Exact(v) if key == AttributeKey::Provenance => {
                // `kind:detail` needs both terms.
                let terms = model::provenance_terms(v);
                let mut both = Vec::with_capacity(terms.len());
                for t in terms {
                    term::key_into(&mut k, category, key.tag(), t.as_bytes());
                    let Some(list) = self.find_term(r, &k)? else { return Ok(()) };
                    both.push(Stream::Posting(Box::new(Cursor::open(self.reader(true), list)?)));
                }
                out.push(Stream::and(both));
            }
            Pattern::Exact(v) => {
                term::key_into(&mut k, category, key.tag(), v.as_bytes());
                if let Some(list) = self.find_term(r, &k)? {
                    out.push(Stream::Posting(Box::new(Cursor::open(self.reader(true), list)?)));
                }
            }
            Pattern::Prefix(_) | Pattern::Cidr(_) => {
                let prefix = pattern.scan_prefix().unwrap_or_default();
                term::key_into(&mut k, category, key.tag(), prefix.as_bytes());
                let mut lists = Vec::new();
                self.scan_terms_from(r, &k, |t, list| {
                    if !t.starts_with(&k) {
                        return false;
                    }
                    if std::str::from_utf8(&t[2..]).is_ok_and(|v| pattern.matches_value(v)) {
                        lists.push(list);
                    }
                    true
                })?;
                for list in lists {
                    out.push(Stream::Posting(Box::new(Cursor::open(self.reader(true), list)?)));
                }
            }
        }
        Ok(())
    }

    /// The stream of the docs matching every condition (`None`: nothing here can match).
    fn plan(&self, conditions: &[Condition], category: EventCategory) -> Result<Option<Stream<'_>>, IndexError> {
        let mut r = self.reader(true);
        let mut positives = Vec::with_capacity(conditions.len().max(1));
        let mut negatives = Vec::new();
        for c in conditions {
            let mut alternatives = Vec::new();
            for p in &c.patterns {
                self.pattern_streams(&mut r, c.key, p, category, &mut alternatives)?;
            }
            if c.negated {
                negatives.extend(alternatives);
            } else if alternatives.is_empty() {
                return Ok(None);
            } else {
                positives.push(Stream::or(alternatives));
            }
        }
        if positives.is_empty() {
            let mut k = Vec::new();
            term::key_into(&mut k, category, ALL_TAG, b"");
            let Some(list) = self.find_term(&mut r, &k)? else { return Ok(None) };
            positives.push(Stream::Posting(Box::new(Cursor::open(self.reader(true), list)?)));
        }
        let all = Stream::and(positives);
        Ok(Some(if negatives.is_empty() {
            all
        } else {
            Stream::AndNot(Box::new(all), Box::new(Stream::or(negatives)))
        }))
    }

    /// The doc range `lo..hi` of `bounds` (result order), cut at `top`'s worst kept place.
    fn doc_range<'a>(
        &'a self,
        m: &mut DocMemo<'a>,
        bounds: Bounds,
        top: Option<&TopK>,
    ) -> Result<(u32, u32), IndexError> {
        let lo = self.count_before(m, bounds.lower, false)?;
        let mut hi = self.count_before(m, bounds.upper, true)?;
        if let Some(w) = top.and_then(TopK::worst) {
            hi = hi.min(self.count_before(m, w, false)?);
        }
        Ok((lo as u32, hi as u32))
    }

    /// Adds the matches of `conditions` within `bounds` to `top`.
    pub fn search(
        &self,
        conditions: &[Condition],
        category: EventCategory,
        bounds: Bounds,
        top: &mut TopK,
    ) -> Result<(), IndexError> {
        let mut m = self.doc_memo(true);
        let (lo, hi) = self.doc_range(&mut m, bounds, Some(top))?;
        if lo >= hi {
            return Ok(());
        }
        let Some(mut stream) = self.plan(conditions, category)? else { return Ok(()) };
        let mut t = lo;
        while let Some(d) = stream.seek(t)? {
            if d >= hi {
                break;
            }
            let r = self.rank(&mut m, d)?;
            if !top.admits(r) {
                break;
            }
            top.push(r);
            t = d + 1;
        }
        Ok(())
    }

    /// Adds the number of matches of `conditions` within `bounds` to `acc`, and with `by`, how many of them
    /// carry each value of that attribute: the attribute's terms are scanned and each list is counted against
    /// a bitmap of the matches (postings only; no record is read).
    pub fn count(
        &self,
        conditions: &[Condition],
        category: EventCategory,
        bounds: Bounds,
        by: Option<AttributeKey>,
        acc: &mut Counts,
    ) -> Result<(), IndexError> {
        let mut m = self.doc_memo(true);
        let (lo, hi) = self.doc_range(&mut m, bounds, None)?;
        if lo >= hi {
            return Ok(());
        }
        let Some(mut stream) = self.plan(conditions, category)? else { return Ok(()) };
        let whole = lo == 0 && hi as usize == self.n_docs;
        if let (None, true, Some(n)) = (by, whole, stream.as_single_posting()) {
            acc.total += n as u64;
            return Ok(());
        }
        // The matches as a bitmap of `lo..hi` (unions and exclusions decoded list by list, not merged id by id).
        let mut matched = vec![0u64; (hi - lo).div_ceil(64) as usize];
        stream.fill(lo, hi, &mut matched)?;
        let here: u64 = matched.iter().map(|w| u64::from(w.count_ones())).sum();
        acc.total += here;
        let Some(by) = by else { return Ok(()) };
        if here == 0 {
            return Ok(());
        }
        // Few matches: each value's list is sought to them (skip tables) when it is much longer.
        let ids: Vec<u32> =
            if here as usize <= SEEK_MATCHES_MAX { set_bits(&matched, lo).collect() } else { Vec::new() };
        let mut seen = vec![0u64; matched.len()];
        let mut k = Vec::new();
        term::key_into(&mut k, category, by.tag(), b"");
        let mut r = self.reader(true);
        let mut lists = Vec::new();
        self.scan_terms_from(&mut r, &k, |t, list| {
            if !t.starts_with(&k) {
                return false;
            }
            lists.push((t[2..].to_vec(), list));
            true
        })?;
        let seek_each = !ids.is_empty();
        for (value, list) in lists {
            let mut cur = Cursor::open(self.reader(true), list)?;
            let mut n = 0u64;
            if seek_each && ids.len() * 16 < list.count as usize {
                for &d in &ids {
                    match cur.seek(d)? {
                        None => break,
                        Some(c) if c == d => {
                            n += 1;
                            let i = (d - lo) as usize;
                            seen[i / 64] |= 1 << (i % 64);
                        }
                        Some(_) => {}
                    }
                }
            } else {
                let mut at = cur.seek(lo)?;
                while let Some(d) = at {
                    if d >= hi {
                        break;
                    }
                    let i = (d - lo) as usize;
                    if matched[i / 64] & (1 << (i % 64)) != 0 {
                        n += 1;
                        seen[i / 64] |= 1 << (i % 64);
                    }
                    at = cur.advance()?;
                }
            }
            if n > 0 {
                *acc.by.entry(value).or_default() += n;
            }
        }
        let with_value: u64 = seen.iter().map(|w| u64::from(w.count_ones())).sum();
        acc.without += here - with_value;
        Ok(())
    }
}

/// The ids of the set bits of a bitmap of `lo..`, ascending.
pub fn set_bits(bits: &[u64], lo: u32) -> impl Iterator<Item = u32> + '_ {
    bits.iter().enumerate().flat_map(move |(w, &word)| {
        let mut word = word;
        std::iter::from_fn(move || {
            if word == 0 {
                return None;
            }
            let b = word.trailing_zeros();
            word &= word - 1;
            Some(lo + (w * 64) as u32 + b)
        })
    })
}

/// Writes everything in `m` as segment `id` and opens it.
pub fn write_from_memtable(dir: &Path, id: u64, m: &Memtable, cache: &Arc<BlockCache>) -> Result<Segment, IndexError> {
    let n = m.docs.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by_key(|&i| m.docs[i as usize].rank);
    let mut new_id = vec![0u32; n];
    for (new, &old) in order.iter().enumerate() {
        new_id[old as usize] = new as u32;
    }
    let mut uuids: Vec<(u128, u32)> = Vec::with_capacity(m.uuids.len());
    for (&u, list) in &m.uuids {
        for &id in list.as_slice() {
            let insight = if m.docs[id as usize].insight { INSIGHT_BIT } else { 0 };
            uuids.push((u, new_id[id as usize] | insight));
        }
    }
    uuids.sort_unstable();
    let mut w = SegmentWriter::create(dir, id, n, uuids.len())?;
    for &i in &order {
        w.push_doc(m.docs[i as usize].rank)?;
    }
    for &(u, d) in &uuids {
        w.push_id(u, d)?;
    }
    let mut keys: Vec<&Vec<u8>> = m.terms.keys().collect();
    keys.sort_unstable();
    let mut buf = Vec::new();
    for k in keys {
        buf.clear();
        buf.extend(m.terms[k].iter().map(|&i| new_id[i as usize]));
        buf.sort_unstable();
        w.begin_term(k)?;
        for &d in &buf {
            w.push_posting(d)?;
        }
        w.end_term()?;
    }
    w.finish(cache)
}

/// Reads a segment's dictionary in key order, one block at a time, around the cache.
struct TermsInOrder<'a> {
    seg: &'a Segment,
    r: PageReader<'a>,
    block: usize,
    pending: std::collections::VecDeque<(Vec<u8>, ListAt)>,
    buf: Vec<u8>,
}

impl<'a> TermsInOrder<'a> {
    fn new(seg: &'a Segment) -> Self {
        TermsInOrder { seg, r: seg.reader(false), block: 0, pending: Default::default(), buf: Vec::new() }
    }

    fn peek(&mut self) -> Result<Option<&(Vec<u8>, ListAt)>, IndexError> {
        while self.pending.is_empty() && self.block < self.seg.dict_blocks.len() {
            let pending = &mut self.pending;
            self.seg.scan_dict_block(&mut self.r, self.block, &mut self.buf, |k, l| {
                pending.push_back((k.to_vec(), l));
                true
            })?;
            self.block += 1;
        }
        Ok(self.pending.front())
    }
}

/// Writes segment `id` holding every doc of `inputs`, in result order, streaming: each input is read once,
/// in order, around the block cache. Memory: a map from every input doc to its new number (4 bytes per doc),
/// the new segment's bloom filter and sparse indexes, and a block per input.
pub fn merge(dir: &Path, id: u64, inputs: &[Arc<Segment>], cache: &Arc<BlockCache>) -> Result<Segment, IndexError> {
    let total: usize = inputs.iter().map(|s| s.n_docs).sum();
    if total > MAX_SEGMENT_DOCS {
        return Err(IndexError::SegmentTooLarge { what: "merge would exceed the segment size limit" });
    }
    let max_ids: usize = inputs.iter().map(|s| s.n_ids).sum();
    let mut w = SegmentWriter::create(dir, id, total, max_ids)?;
    // New doc order: a k-way merge of the inputs' doc tables; each input's ids map monotonically.
    let mut maps: Vec<Vec<u32>> = inputs.iter().map(|s| Vec::with_capacity(s.n_docs)).collect();
    {
        let mut memos: Vec<DocMemo<'_>> = inputs.iter().map(|s| s.doc_memo(false)).collect();
        let mut heads: Vec<Option<Rank>> = Vec::with_capacity(inputs.len());
        for (s, m) in inputs.iter().zip(memos.iter_mut()) {
            heads.push(if s.n_docs > 0 { Some(s.rank(m, 0)?) } else { None });
        }
        let mut next = 0u32;
        loop {
            let best = heads.iter().enumerate().filter_map(|(i, h)| h.map(|r| (r, i))).min();
            let Some((r, i)) = best else { break };
            w.push_doc(r)?;
            maps[i].push(next);
            next += 1;
            let d = maps[i].len();
            heads[i] = if d < inputs[i].n_docs { Some(inputs[i].rank(&mut memos[i], d as u32)?) } else { None };
        }
    }
    let map = |i: usize, d: u32| -> Result<u32, IndexError> {
        maps[i].get(d as usize).copied().ok_or_else(|| inputs[i].corrupted_at(0, "posting beyond the doc table"))
    };
    // Id tables: a k-way merge of sorted tables; mapping keeps each input's order.
    {
        let mut readers: Vec<PageReader<'_>> = inputs.iter().map(|s| s.reader(false)).collect();
        let mut pos = vec![(0usize, 0usize); inputs.len()]; // (entry, bucket)
        let mut heads: Vec<Option<(u128, u32)>> = Vec::with_capacity(inputs.len());
        let advance = |i: usize,
                       pos: &mut [(usize, usize)],
                       readers: &mut [PageReader<'_>]|
         -> Result<Option<(u128, u32)>, IndexError> {
            let s = &inputs[i];
            let (e, mut b) = pos[i];
            if e >= s.n_ids {
                return Ok(None);
            }
            while s.id_buckets[b + 1] as usize <= e {
                b += 1;
            }
            let (u, d) = s.id_entry(&mut readers[i], e, b)?;
            pos[i] = (e + 1, b);
            Ok(Some((u, map(i, d & !INSIGHT_BIT)? | (d & INSIGHT_BIT))))
        };
        for i in 0..inputs.len() {
            heads.push(advance(i, &mut pos, &mut readers)?);
        }
        loop {
            let best = heads.iter().enumerate().filter_map(|(i, h)| h.map(|e| (e, i))).min();
            let Some(((u, d), i)) = best else { break };
            w.push_id(u, d)?;
            heads[i] = advance(i, &mut pos, &mut readers)?;
        }
    }
    // Terms: a k-way merge of the dictionaries; each term's lists are k-way merged as they are read.
    let mut dicts: Vec<TermsInOrder<'_>> = inputs.iter().map(|s| TermsInOrder::new(s)).collect();
    loop {
        let mut key: Option<Vec<u8>> = None;
        for d in dicts.iter_mut() {
            if let Some((k, _)) = d.peek()?
                && key.as_ref().is_none_or(|best| k < best)
            {
                key = Some(k.clone());
            }
        }
        let Some(key) = key else { break };
        let mut cursors: Vec<(usize, Cursor<'_>)> = Vec::new();
        for (i, d) in dicts.iter_mut().enumerate() {
            if let Some((k, list)) = d.peek()?
                && *k == key
            {
                let list = *list;
                d.pending.pop_front();
                cursors.push((i, Cursor::open(inputs[i].reader(false), list)?));
            }
        }
        w.begin_term(&key)?;
        loop {
            let mut best: Option<(u32, usize)> = None;
            for (c, (i, cur)) in cursors.iter().enumerate() {
                if let Some(d) = cur.current() {
                    let new = map(*i, d)?;
                    if best.is_none_or(|(b, _)| new < b) {
                        best = Some((new, c));
                    }
                }
            }
            let Some((new, c)) = best else { break };
            w.push_posting(new)?;
            cursors[c].1.advance()?;
        }
        w.end_term()?;
    }
    w.finish(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_blocks_round_trip_late_events_and_reject_damage() {
        let ranks = vec![
            Rank { time: 1_000, seq: 9 },
            Rank { time: 1_000, seq: 3 },
            Rank { time: 990, seq: 12 },
            Rank { time: -5, seq: 1 },
            Rank { time: i64::MIN, seq: u64::MAX },
        ];
        let mut b = Vec::new();
        encode_doc_block(&ranks, &mut b);
        let mut out = Vec::new();
        decode_doc_block(&b, ranks.len(), &mut out).unwrap();
        assert_eq!(out, ranks);
        assert!(decode_doc_block(&b[..b.len() - 1], ranks.len(), &mut out).is_err());
        assert!(decode_doc_block(&b, ranks.len() - 1, &mut out).is_err());
    }

    #[test]
    fn id_table_field_widths_hold_the_largest_doc_and_the_insight_bit() {
        assert_eq!(id_doc_width(1), 1);
        assert_eq!(id_doc_width(128), 1);
        assert_eq!(id_doc_width(129), 2);
        assert_eq!(id_doc_width(1 << 20), 3);
        assert_eq!(id_doc_width(MAX_SEGMENT_DOCS), 4);
    }
}
