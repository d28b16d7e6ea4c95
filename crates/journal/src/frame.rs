//! The frame codec: byte layout of one group-commit block (header + payload), its checksum, and the record
//! list inside the payload. Pure: no I/O. Every parse of bytes from disk returns an error, never panics.

/// "OTJF": opentrail journal frame.
pub const FRAME_MAGIC: [u8; 4] = *b"OTJF";
pub const FRAME_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 32;

/// Hard-coded: the largest single record the journal accepts (the model caps CloudTrail records far lower).
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// Hard-coded: the largest raw (uncompressed) payload a frame may claim. Bounds the allocation made when
/// decompressing a frame read from disk, so a corrupt-but-checksummed header cannot ask for gigabytes.
pub const MAX_RAW_PAYLOAD: usize = 64 << 20;
/// Hard-coded: the largest compressed payload (raw payload plus zstd's worst-case expansion, rounded up).
pub const MAX_STORED_PAYLOAD: usize = MAX_RAW_PAYLOAD + (1 << 20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Codec {
    Raw = 0,
    Zstd = 1,
    /// A zstd frame compressed with the journal dictionary named by the header's `dict_id` (see `dict.rs`).
    ZstdDict = 2,
}

impl Codec {
    fn from_u8(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            2 => Some(Codec::ZstdDict),
            _ => None,
        }
    }
}

/// The decoded fixed-size header. Layout (little endian), see docs/formats/journal.md:
/// `magic[4] version u8 codec u8 dict_id u16 stored_len u32 raw_len u32 first_seq u64 count u32 crc32c u32`.
/// `dict_id` (the field was `flags`, always 0, before dictionaries) is non-zero exactly when the codec is
/// `ZstdDict`, so frames written before dictionaries existed parse unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub codec: Codec,
    pub dict_id: u16,
    pub stored_len: u32,
    pub raw_len: u32,
    pub first_seq: u64,
    pub count: u32,
    pub crc: u32,
}

impl FrameHeader {
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.stored_len)
    }

    pub fn last_seq(&self) -> u64 {
        self.first_seq + u64::from(self.count) - 1
    }
}

/// Why a header or frame is not valid. Turned into `Corrupted` or a torn-tail truncation by the caller,
/// which knows where the bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    Short {
        have: usize,
        need: usize,
    },
    BadMagic,
    BadVersion(u8),
    BadCodec(u8),
    /// `dict_id` set without the dictionary codec, or the dictionary codec without a `dict_id`.
    BadDictId {
        codec: u8,
        dict_id: u16,
    },
    BadLength {
        stored: u32,
        raw: u32,
    },
    EmptyFrame,
    SeqOverflow,
    Checksum {
        stored: u32,
        computed: u32,
    },
    Payload(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Short { have, need } => write!(f, "incomplete frame: {have} of {need} bytes"),
            FrameError::BadMagic => write!(f, "bad frame magic"),
            FrameError::BadVersion(v) => write!(f, "unknown frame version {v}"),
            FrameError::BadCodec(c) => write!(f, "unknown codec {c}"),
            FrameError::BadDictId { codec, dict_id } => write!(f, "dictionary id {dict_id} with codec {codec}"),
            FrameError::BadLength { stored, raw } => write!(f, "implausible lengths: stored {stored}, raw {raw}"),
            FrameError::EmptyFrame => write!(f, "frame with zero records"),
            FrameError::SeqOverflow => write!(f, "sequence numbers overflow"),
            FrameError::Checksum { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            FrameError::Payload(why) => write!(f, "bad payload: {why}"),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Parse and sanity-check a header. Does not verify the checksum (that needs the payload).
pub fn parse_header(bytes: &[u8]) -> Result<FrameHeader, FrameError> {
    if bytes.len() < HEADER_LEN {
        return Err(FrameError::Short { have: bytes.len(), need: HEADER_LEN });
    }
    let b = &bytes[..HEADER_LEN];
    if b[0..4] != FRAME_MAGIC {
        return Err(FrameError::BadMagic);
    }
    if b[4] != FRAME_VERSION {
        return Err(FrameError::BadVersion(b[4]));
    }
    let codec = Codec::from_u8(b[5]).ok_or(FrameError::BadCodec(b[5]))?;
    let dict_id = u16_at(b, 6);
    if (codec == Codec::ZstdDict) != (dict_id != 0) {
        return Err(FrameError::BadDictId { codec: b[5], dict_id });
    }
    let stored_len = u32_at(b, 8);
    let raw_len = u32_at(b, 12);
    let first_seq = u64_at(b, 16);
    let count = u32_at(b, 24);
    let crc = u32_at(b, 28);
    let plausible = (stored_len as usize) <= MAX_STORED_PAYLOAD
        && (raw_len as usize) <= MAX_RAW_PAYLOAD
        && (codec != Codec::Raw || stored_len == raw_len)
        // every record costs at least its 4-byte length prefix
        && u64::from(count) * 4 <= u64::from(raw_len);
    if !plausible {
        return Err(FrameError::BadLength { stored: stored_len, raw: raw_len });
    }
    if count == 0 {
        return Err(FrameError::EmptyFrame);
    }
    if first_seq == 0 || first_seq.checked_add(u64::from(count)).is_none() {
        return Err(FrameError::SeqOverflow);
    }
    Ok(FrameHeader { codec, dict_id, stored_len, raw_len, first_seq, count, crc })
}

fn checksum(header_without_crc: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header_without_crc), payload)
}

/// Parse a header and verify the checksum of the whole frame starting at `bytes[0]`.
/// Returns the header; the stored payload is `bytes[HEADER_LEN..frame_len]`.
pub fn check_frame(bytes: &[u8]) -> Result<FrameHeader, FrameError> {
    let h = parse_header(bytes)?;
    let len = h.frame_len() as usize;
    if bytes.len() < len {
        return Err(FrameError::Short { have: bytes.len(), need: len });
    }
    let computed = checksum(&bytes[..HEADER_LEN - 4], &bytes[HEADER_LEN..len]);
    if computed != h.crc {
        return Err(FrameError::Checksum { stored: h.crc, computed });
    }
    Ok(h)
}

/// A dictionary prepared for compression, and the id that frames compressed with it carry.
pub struct EncoderDict {
    pub id: u16,
    pub cdict: RawCDict,
}

/// A zstd compression dictionary (`ZSTD_CDict`) held through libzstd's C API, so that [`FrameEncoder`] can
/// reference it with the dictionary-attach parameter that the `zstd` crate exposes only behind its
/// `experimental` feature.
pub struct RawCDict(std::ptr::NonNull<zstd_sys::ZSTD_CDict>);

// Safety: a ZSTD_CDict is read-only once created; zstd documents that one may be used by several compression
// contexts on several threads at once.
unsafe impl Send for RawCDict {}
unsafe impl Sync for RawCDict {}

impl RawCDict {
    /// `None` when zstd refuses the dictionary (or cannot allocate).
    pub fn new(dict: &[u8], level: i32) -> Option<RawCDict> {
        // Safety: zstd copies `dict` (byCopy) before returning; the pointer and length describe a live slice.
        let p = unsafe { zstd_sys::ZSTD_createCDict(dict.as_ptr().cast(), dict.len(), level) };
        std::ptr::NonNull::new(p).map(RawCDict)
    }
}

impl Drop for RawCDict {
    fn drop(&mut self) {
        // Safety: created by ZSTD_createCDict, freed once; no context references it past `encode` (see there).
        unsafe { zstd_sys::ZSTD_freeCDict(self.0.as_ptr()) };
    }
}

/// A zstd compression context (`ZSTD_CCtx`) that attaches a dictionary to each frame instead of copying its
/// tables in: for 16 KiB blocks zstd would otherwise copy them (hundreds of KiB) per block, a fifth of the
/// compression time, for a ratio ~0.5% better.
struct Compressor(std::ptr::NonNull<zstd_sys::ZSTD_CCtx>);

// Safety: a context is used by one thread at a time (`&mut self`); zstd contexts may move between threads.
unsafe impl Send for Compressor {}

fn zstd_result(code: usize) -> Result<usize, &'static str> {
    // Safety: plain functions of a code; the name is a static C string.
    unsafe {
        if zstd_sys::ZSTD_isError(code) != 0 {
            let name = std::ffi::CStr::from_ptr(zstd_sys::ZSTD_getErrorName(code));
            return Err(name.to_str().unwrap_or("zstd error"));
        }
    }
    Ok(code)
}

impl Compressor {
    fn new() -> Result<Compressor, &'static str> {
        // Safety: plain FFI; the context is freed in Drop.
        let cctx = std::ptr::NonNull::new(unsafe { zstd_sys::ZSTD_createCCtx() })
            .map(Compressor)
            .ok_or("cannot allocate a compression context")?;
        // ZSTD_c_forceAttachDict (= ZSTD_c_experimentalParam4) to ZSTD_dictForceAttach (= 1).
        zstd_result(unsafe {
            zstd_sys::ZSTD_CCtx_setParameter(cctx.0.as_ptr(), zstd_sys::ZSTD_cParameter::ZSTD_c_experimentalParam4, 1)
        })?;
        Ok(cctx)
    }

    /// Compress `src` into `dst` (cleared first) as one zstd frame with its content size, with `dict` (its
    /// zstd dictionary ID in the frame header, its own level) or at `level` without one.
    fn compress(
        &mut self,
        dst: &mut Vec<u8>,
        src: &[u8],
        dict: Option<&RawCDict>,
        level: i32,
    ) -> Result<usize, &'static str> {
        dst.clear();
        // Safety: plain FFI.
        let bound = unsafe { zstd_sys::ZSTD_compressBound(src.len()) };
        dst.reserve(bound);
        let (cctx, out, cap, input) = (self.0.as_ptr(), dst.as_mut_ptr().cast(), dst.capacity(), src.as_ptr().cast());
        // Safety: `out` has `cap` writable bytes, `input` `src.len()` readable ones; zstd writes at most `cap`
        // and returns how many. The dictionary is referenced for this one frame only and dereferenced before
        // returning, so the context never points at a dictionary that may be freed before its next use.
        let n = unsafe {
            match dict {
                Some(d) => {
                    zstd_result(zstd_sys::ZSTD_CCtx_refCDict(cctx, d.0.as_ptr()))?;
                    let n = zstd_sys::ZSTD_compress2(cctx, out, cap, input, src.len());
                    zstd_result(zstd_sys::ZSTD_CCtx_refCDict(cctx, std::ptr::null()))?;
                    n
                }
                // Ignores the advanced parameters: the level alone, as ZSTD_compress.
                None => zstd_sys::ZSTD_compressCCtx(cctx, out, cap, input, src.len(), level),
            }
        };
        let n = zstd_result(n)?;
        // Safety: zstd initialised the first `n <= cap` bytes.
        unsafe { dst.set_len(n) };
        Ok(n)
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        // Safety: created by ZSTD_createCCtx, freed once.
        unsafe { zstd_sys::ZSTD_freeCCtx(self.0.as_ptr()) };
    }
}

/// Builds frames: serializes records into a raw payload, compresses it, prepends the header.
/// Owns a reusable zstd context so the writer thread does not reallocate one per block.
pub struct FrameEncoder {
    cctx: Compressor,
    level: i32,
    raw: Vec<u8>,
    compressed: Vec<u8>,
}

impl FrameEncoder {
    pub fn new(level: i32) -> std::io::Result<Self> {
        let cctx = Compressor::new().map_err(|e| std::io::Error::other(format!("zstd: {e}")))?;
        Ok(FrameEncoder { cctx, level, raw: Vec::new(), compressed: Vec::new() })
    }

    /// The level of frames compressed without a dictionary (a dictionary carries its own).
    pub fn set_level(&mut self, level: i32) {
        self.level = level;
    }

    /// Append one frame holding `records` (first one is `first_seq`) to `out`, compressed with `dict` if given.
    pub fn encode<'a>(
        &mut self,
        first_seq: u64,
        records: impl Iterator<Item = &'a [u8]>,
        dict: Option<&EncoderDict>,
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        self.raw.clear();
        let mut count: u32 = 0;
        for r in records {
            // Record sizes are checked against MAX_RECORD_BYTES at submit, so they fit in u32.
            self.raw.extend_from_slice(&(r.len() as u32).to_le_bytes());
            self.raw.extend_from_slice(r);
            count += 1;
        }
        // The zstd frame keeps its dictionary-ID field (4 bytes): zstd then refuses to decode it with any other
        // dictionary, a cross-check on top of the dictionary file's own id and checksum.
        let result = self.cctx.compress(&mut self.compressed, &self.raw, dict.map(|d| &d.cdict), self.level);
        let (codec, dict_id) = match (result, dict) {
            (Ok(n), Some(d)) if n < self.raw.len() => (Codec::ZstdDict, d.id),
            (Ok(n), None) if n < self.raw.len() => (Codec::Zstd, 0),
            // Incompressible (or a compressor error, which then cannot corrupt anything): store raw.
            _ => (Codec::Raw, 0),
        };
        let stored: &[u8] = if codec == Codec::Raw { &self.raw } else { &self.compressed };
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        let compressed_at = out.len();
        out.extend_from_slice(stored);
        let stored_len = (out.len() - compressed_at) as u32;
        let h = &mut out[start..start + HEADER_LEN];
        h[0..4].copy_from_slice(&FRAME_MAGIC);
        h[4] = FRAME_VERSION;
        h[5] = codec as u8;
        h[6..8].copy_from_slice(&dict_id.to_le_bytes());
        h[8..12].copy_from_slice(&stored_len.to_le_bytes());
        h[12..16].copy_from_slice(&(self.raw.len() as u32).to_le_bytes());
        h[16..24].copy_from_slice(&first_seq.to_le_bytes());
        h[24..28].copy_from_slice(&count.to_le_bytes());
        let crc = checksum(&out[start..start + HEADER_LEN - 4], &out[compressed_at..]);
        out[start + HEADER_LEN - 4..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }
}

/// Give a frame built by [`FrameEncoder::encode`] (with any `first_seq`) its real first sequence number, and
/// the checksum that goes with it. `frame` is exactly one whole frame. Used by the writer for frames compressed
/// ahead of it (`Journal::prepare`), whose sequence numbers are known only when the writer orders them.
pub fn restamp(frame: &mut [u8], first_seq: u64) {
    frame[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = checksum(&frame[..HEADER_LEN - 4], &frame[HEADER_LEN..]);
    frame[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded frame: the raw payload and where each record lies in it.
#[derive(Debug)]
pub struct Block {
    pub first_seq: u64,
    data: Vec<u8>,
    /// (start, end) of each record inside `data`.
    spans: Vec<(u32, u32)>,
}

impl Block {
    pub fn raw_len(&self) -> usize {
        self.data.len()
    }

    /// The record with sequence number `seq`, if this block holds it.
    pub fn get(&self, seq: u64) -> Option<&[u8]> {
        let i = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        let &(s, e) = self.spans.get(i)?;
        Some(&self.data[s as usize..e as usize])
    }
}

thread_local! {
    /// One decompression context per reading thread: creating one per frame costs an allocation of ~100 KB of
    /// tables, a visible share of a 16 KiB block's decode time. `None` if zstd could not allocate it.
    static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        std::cell::RefCell::new(zstd::zstd_safe::DCtx::try_create());
}

/// Decompress and split the payload of a checked frame. `stored` is the payload as on disk; `dict` is the
/// prepared dictionary named by the header (required for `ZstdDict` frames, ignored otherwise).
pub fn decode_payload(
    h: &FrameHeader,
    stored: &[u8],
    dict: Option<&zstd::zstd_safe::DDict<'_>>,
) -> Result<Block, FrameError> {
    let data = match h.codec {
        Codec::Raw => stored.to_vec(),
        Codec::Zstd | Codec::ZstdDict => {
            // raw_len is bounded by MAX_RAW_PAYLOAD (checked in parse_header), and zstd never writes past the
            // capacity: a frame claiming more content than raw_len fails instead of growing the buffer.
            let mut data = Vec::with_capacity(h.raw_len as usize);
            let result = DCTX.with(|cell| {
                let mut cell = cell.borrow_mut();
                let dctx = cell.as_mut().ok_or("cannot allocate a decompression context")?;
                let r = match (h.codec, dict) {
                    (Codec::ZstdDict, Some(d)) => dctx.decompress_using_ddict(&mut data, stored, d),
                    (Codec::ZstdDict, None) => return Err("dictionary frame without its dictionary"),
                    _ => dctx.decompress(&mut data, stored),
                };
                r.map_err(zstd::zstd_safe::get_error_name)
            });
            result.map_err(|e| FrameError::Payload(format!("zstd: {e}")))?;
            data
        }
    };
    if data.len() != h.raw_len as usize {
        return Err(FrameError::Payload(format!("decoded {} bytes, header says {}", data.len(), h.raw_len)));
    }
    let mut spans = Vec::with_capacity(h.count as usize);
    let mut at = 0usize;
    while at < data.len() {
        let Some(len_bytes) = data.get(at..at + 4) else {
            return Err(FrameError::Payload(format!("truncated record length at {at}")));
        };
        let len = u32_at(len_bytes, 0) as usize;
        let start = at + 4;
        let end = start.checked_add(len).filter(|&e| e <= data.len());
        let Some(end) = end else {
            return Err(FrameError::Payload(format!("record at {at} of {len} bytes overruns the payload")));
        };
        spans.push((start as u32, end as u32));
        at = end;
    }
    if spans.len() != h.count as usize {
        return Err(FrameError::Payload(format!("{} records, header says {}", spans.len(), h.count)));
    }
    Ok(Block { first_seq: h.first_seq, data, spans })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first_seq: u64, records: &[&[u8]]) -> Vec<u8> {
        let mut enc = FrameEncoder::new(1).unwrap();
        let mut out = Vec::new();
        enc.encode(first_seq, records.iter().copied(), None, &mut out).unwrap();
        out
    }

    #[test]
    fn frame_round_trips_records_in_order() {
        let recs: Vec<Vec<u8>> =
            (0..50).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i)).into()).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        let bytes = frame(7, &refs);
        let h = check_frame(&bytes).unwrap();
        assert_eq!(h.codec, Codec::Zstd);
        assert_eq!((h.first_seq, h.count, h.frame_len()), (7, 50, bytes.len() as u64));
        let block = decode_payload(&h, &bytes[HEADER_LEN..], None).unwrap();
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(block.get(7 + i as u64), Some(r.as_slice()));
        }
        assert_eq!(block.get(6), None);
        assert_eq!(block.get(57), None);
    }

    #[test]
    fn dictionary_frames_round_trip_and_need_their_dictionary() {
        let recs: Vec<Vec<u8>> =
            (0..200).map(|i| format!("{{\"eventName\":\"CreateUser\",\"n\":{i}}}").into_bytes()).collect();
        let sizes: Vec<usize> = recs.iter().map(Vec::len).collect();
        let dict = zstd::dict::from_continuous(&recs.concat(), &sizes, 1024).unwrap();
        let (enc, ddict) = crate::dict::prepare(3, &dict, 1).unwrap();
        let mut out = Vec::new();
        let refs: Vec<&[u8]> = recs[..20].iter().map(Vec::as_slice).collect();
        FrameEncoder::new(1).unwrap().encode(9, refs.iter().copied(), Some(&enc), &mut out).unwrap();
        let h = check_frame(&out).unwrap();
        assert_eq!((h.codec, h.dict_id), (Codec::ZstdDict, 3));
        let block = decode_payload(&h, &out[HEADER_LEN..], Some(&ddict)).unwrap();
        assert_eq!(block.get(9), Some(recs[0].as_slice()));
        assert!(decode_payload(&h, &out[HEADER_LEN..], None).is_err());
        // another trained dictionary has another zstd dictionary ID, which the frame's zstd header names
        let others: Vec<Vec<u8>> = (0..200).map(|i| format!("[\"GetUser\",{i},{}]", i * 7).into_bytes()).collect();
        let sizes: Vec<usize> = others.iter().map(Vec::len).collect();
        let other = zstd::dict::from_continuous(&others.concat(), &sizes, 1024).unwrap();
        let other = zstd::zstd_safe::DDict::try_create(&other).unwrap();
        assert!(decode_payload(&h, &out[HEADER_LEN..], Some(&other)).is_err(), "another dictionary is refused");
    }

    #[test]
    fn a_dictionary_id_must_agree_with_the_codec() {
        let mut bytes = frame(1, &[b"hello hello hello hello hello"]);
        bytes[6] = 1; // dict_id 1 on a plain zstd frame
        assert!(matches!(parse_header(&bytes), Err(FrameError::BadDictId { .. })));
        bytes[6] = 0;
        bytes[5] = Codec::ZstdDict as u8; // dictionary codec without an id
        assert!(matches!(parse_header(&bytes), Err(FrameError::BadDictId { .. })));
    }

    #[test]
    fn a_restamped_frame_is_valid_at_its_new_seq_and_reads_the_same() {
        let recs: [&[u8]; 3] = [b"hello hello hello hello", b"", b"world world world world"];
        let mut bytes = frame(1, &recs);
        restamp(&mut bytes, 1_000_000);
        let h = check_frame(&bytes).unwrap();
        assert_eq!((h.first_seq, h.count), (1_000_000, 3));
        let block = decode_payload(&h, &bytes[HEADER_LEN..], None).unwrap();
        assert_eq!(block.get(1_000_002), Some(recs[2]));
        assert_eq!(bytes, frame(1_000_000, &recs), "identical to a frame encoded at that seq");
    }

    #[test]
    fn incompressible_payload_is_stored_raw() {
        let bytes = frame(1, &[b"a"]);
        let h = check_frame(&bytes).unwrap();
        assert_eq!(h.codec, Codec::Raw);
        assert_eq!(decode_payload(&h, &bytes[HEADER_LEN..], None).unwrap().get(1), Some(&b"a"[..]));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = frame(3, &[b"hello hello hello hello", b"", b"world"]);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(check_frame(&b).is_err(), "flip of bit {bit} in byte {i} went unnoticed");
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = frame(3, &[b"hello", b"world"]);
        for len in 0..bytes.len() {
            assert!(matches!(check_frame(&bytes[..len]), Err(FrameError::Short { .. })), "len {len}");
        }
    }

    #[test]
    fn zero_fill_is_not_a_frame() {
        assert_eq!(check_frame(&[0u8; 64]), Err(FrameError::BadMagic));
    }
}
