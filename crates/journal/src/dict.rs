//! Compression dictionaries: training one from the first records written, the `dict-NNNNN.zdict` file that
//! persists it (written durably before any frame uses it), and loading every dictionary at open so that frames
//! written with any of them stay readable. Byte layout in docs/formats/journal.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zstd::zstd_safe::DDict;

use crate::error::JournalError;
use crate::faults::FileOps;
use crate::frame::{EncoderDict, RawCDict};

/// "OTJD": opentrail journal dictionary.
const DICT_MAGIC: [u8; 4] = *b"OTJD";
const DICT_VERSION: u8 = 1;
/// magic[4] version u8 pad u8 id u16 len u32.
const DICT_HEADER_LEN: usize = 12;
/// Hard-coded: the largest dictionary a file may hold. Bounds what open reads for a damaged length field;
/// zstd's own advice is dictionaries of ~100 KB, so this leaves room without letting a bad file ask for more.
pub(crate) const MAX_DICT_BYTES: usize = 1 << 20;
const DICT_PREFIX: &str = "dict-";
const DICT_SUFFIX: &str = ".zdict";

/// `dict-{id:05}.zdict`: ids are u16 (the frame header field), so five digits keep lexical order numeric.
pub(crate) fn dict_path(dir: &Path, id: u16) -> PathBuf {
    dir.join(format!("{DICT_PREFIX}{id:05}{DICT_SUFFIX}"))
}

/// The file bytes: header, dictionary, then crc32c of everything before it.
fn encode_file(id: u16, dict: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DICT_HEADER_LEN + dict.len() + 4);
    out.extend_from_slice(&DICT_MAGIC);
    out.extend_from_slice(&[DICT_VERSION, 0]);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    out.extend_from_slice(dict);
    out.extend_from_slice(&crc32c::crc32c(&out).to_le_bytes());
    out
}

/// The dictionary inside a file's bytes, or why the file is not a valid dictionary `id`.
fn parse_file(bytes: &[u8], id: u16) -> Result<&[u8], String> {
    let (body, crc) = bytes.split_last_chunk::<4>().ok_or("dictionary file shorter than its checksum")?;
    let computed = crc32c::crc32c(body);
    if computed != u32::from_le_bytes(*crc) {
        return Err(format!("dictionary file checksum mismatch (computed {computed:#010x})"));
    }
    let header = body.get(..DICT_HEADER_LEN).ok_or("dictionary file shorter than its header")?;
    if header[0..4] != DICT_MAGIC || header[4] != DICT_VERSION {
        return Err("bad dictionary file magic or version".into());
    }
    let file_id = u16::from_le_bytes([header[6], header[7]]);
    let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if file_id != id {
        return Err(format!("dictionary file holds id {file_id}, its name says {id}"));
    }
    if len > MAX_DICT_BYTES || body.len() != DICT_HEADER_LEN + len || len == 0 {
        return Err(format!("implausible dictionary length {len}"));
    }
    Ok(&body[DICT_HEADER_LEN..])
}

/// A dictionary as readers use it, or why it cannot be used (reported when a frame needs it).
#[derive(Clone)]
pub(crate) enum DictEntry {
    Ready(Arc<DDict<'static>>),
    Broken { path: PathBuf, reason: String },
}

/// Every dictionary of the journal, by id. Read by every frame decode of a `ZstdDict` frame.
#[derive(Default)]
pub(crate) struct Dictionaries {
    entries: BTreeMap<u16, DictEntry>,
}

impl Dictionaries {
    /// The prepared dictionary `id`, or `Corrupted` naming the dictionary file (missing or damaged) and the frame.
    pub(crate) fn get(
        &self,
        dir: &Path,
        id: u16,
        segment: &Path,
        offset: u64,
    ) -> Result<Arc<DDict<'static>>, JournalError> {
        let needed = |what: &str| format!("{what}, needed by the frame at {}:{offset}", segment.display());
        match self.entries.get(&id) {
            Some(DictEntry::Ready(d)) => Ok(d.clone()),
            Some(DictEntry::Broken { path, reason }) => Err(JournalError::corrupted(path, 0, needed(reason))),
            None => Err(JournalError::corrupted(dict_path(dir, id), 0, needed("dictionary file missing"))),
        }
    }

    pub(crate) fn insert(&mut self, id: u16, entry: DictEntry) {
        self.entries.insert(id, entry);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// What open found: every dictionary (usable or not), the newest usable one for the writer to go on with, and
/// the next free id (above every id that has a file, usable or not, so an id is never reused).
pub(crate) struct LoadedDicts {
    pub dicts: Dictionaries,
    pub current: Option<(u16, Vec<u8>)>,
    pub next_id: u32,
    pub bytes: u64,
}

/// Load every `dict-NNNNN.zdict` of `dir`. A damaged dictionary does not fail open: frames that need it fail
/// with `Corrupted` when read, everything else stays readable and appendable. Leftover `.tmp` files are from a
/// crash before their rename, so no frame can reference them: they are removed.
pub(crate) fn load_all(dir: &Path) -> Result<LoadedDicts, JournalError> {
    let mut loaded = LoadedDicts { dicts: Dictionaries::default(), current: None, next_id: 1, bytes: 0 };
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io("list dictionaries", dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list dictionaries", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(DICT_PREFIX) else { continue };
        if rest.ends_with(atomic_file::TMP_SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        let Some(stem) = rest.strip_suffix(DICT_SUFFIX) else { continue };
        match stem.parse::<u16>() {
            Ok(id) if id >= 1 && stem.len() == 5 => found.push((id, entry.path())),
            _ => return Err(JournalError::corrupted(entry.path(), 0, "dictionary file name is not a 5-digit id")),
        }
    }
    found.sort();
    for (id, path) in found {
        loaded.next_id = u32::from(id) + 1;
        let entry = match std::fs::read(&path) {
            Ok(bytes) => {
                loaded.bytes += bytes.len() as u64;
                match parse_file(&bytes, id) {
                    Ok(dict) => match DDict::try_create(dict) {
                        Some(ddict) => {
                            loaded.current = Some((id, dict.to_vec()));
                            DictEntry::Ready(Arc::new(ddict))
                        }
                        None => DictEntry::Broken { path, reason: "zstd cannot load the dictionary".into() },
                    },
                    Err(reason) => DictEntry::Broken { path, reason },
                }
            }
            Err(e) => DictEntry::Broken { path, reason: format!("cannot read dictionary file: {e}") },
        };
        if matches!(entry, DictEntry::Broken { .. }) {
            // The writer must not go on with an older dictionary than a damaged newer one; it trains a new one.
            loaded.current = None;
        }
        loaded.dicts.insert(id, entry);
    }
    Ok(loaded)
}

/// Prepare `dict` for the writer and for readers.
pub(crate) fn prepare(id: u16, dict: &[u8], level: i32) -> Option<(EncoderDict, DDict<'static>)> {
    let cdict = RawCDict::new(dict, level)?;
    let ddict = DDict::try_create(dict)?;
    Some((EncoderDict { id, cdict }, ddict))
}

/// Prepare `dict` for the writer only (readers got theirs at load).
pub(crate) fn prepare_encoder(id: u16, dict: &[u8], level: i32) -> Option<EncoderDict> {
    Some(EncoderDict { id, cdict: RawCDict::new(dict, level)? })
}

/// Write dictionary `id` durably: `.tmp` file, fsync, rename, fsync of the directory (the `atomic-file` crate,
/// every step through `ops` and its fault hook). Only after this returns may a frame reference `id` (a crash
/// anywhere before leaves at most an unreferenced file). Returns its size.
pub(crate) fn persist(ops: &FileOps, dir: &Path, id: u16, dict: &[u8]) -> std::io::Result<u64> {
    let bytes = encode_file(id, dict);
    atomic_file::write_atomic_with(ops, &dict_path(dir, id), &bytes, 0o666).map_err(|e| e.source)?;
    Ok(bytes.len() as u64)
}

/// Collects raw records until there are enough to train a dictionary on. Each record is one sample, which is
/// what zstd's trainer wants: the dictionary learns what records have in common.
pub(crate) struct Sampler {
    data: Vec<u8>,
    sizes: Vec<usize>,
    /// Train once this many bytes are sampled (doubled after a failed training, so it is retried with more).
    pub train_after: usize,
}

impl Sampler {
    pub(crate) fn new(train_after: usize) -> Sampler {
        Sampler { data: Vec::new(), sizes: Vec::new(), train_after }
    }

    pub(crate) fn add(&mut self, record: &[u8]) {
        if self.data.len() < self.train_after {
            self.data.extend_from_slice(record);
            self.sizes.push(record.len());
        }
    }

    pub(crate) fn ready(&self) -> bool {
        self.data.len() >= self.train_after
    }

    /// Train a dictionary of at most `max_bytes`; the samples are consumed either way.
    pub(crate) fn train(&mut self, max_bytes: usize) -> Option<Vec<u8>> {
        let data = std::mem::take(&mut self.data);
        let sizes = std::mem::take(&mut self.sizes);
        let dict = zstd::dict::from_continuous(&data, &sizes, max_bytes).ok().filter(|d| !d.is_empty());
        if dict.is_none() {
            self.train_after = self.train_after.saturating_mul(2);
        }
        dict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_file_round_trips_and_every_damage_is_detected() {
        let dict = b"some dictionary bytes".to_vec();
        let bytes = encode_file(7, &dict);
        assert_eq!(parse_file(&bytes, 7).unwrap(), &dict[..]);
        assert!(parse_file(&bytes, 8).is_err(), "a file renamed to another id is refused");
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(parse_file(&b, 7).is_err(), "flip at {i}");
        }
        for len in 0..bytes.len() {
            assert!(parse_file(&bytes[..len], 7).is_err(), "cut at {len}");
        }
    }
}
