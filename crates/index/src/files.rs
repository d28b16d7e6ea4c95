//! The index directory: the manifest naming the live segments and the persisted checkpoint (replaced with
//! the `atomic-file` crate: temp + fsync + rename + directory fsync), and clean-up of what a crash left behind.

use std::fs;
use std::path::Path;

use crate::IndexError;

const MANIFEST: &str = "MANIFEST";
/// Version 2 lists segments in the paged format (`OTIXSEG\x02`). A version-1 manifest is read as an empty
/// index: its segments are unlisted, hence deleted at open, and the service replays the journal from seq 1.
const MANIFEST_MAGIC: &[u8; 8] = b"OTIXMAN\x02";
const MANIFEST_MAGIC_V1: &[u8; 8] = b"OTIXMAN\x01";

/// What the manifest says: the only source of truth about which segment files are live.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Every seq at or below this is in a listed segment or was skipped by the caller; 0 = none.
    pub checkpoint: u64,
    /// The id the next segment file gets; ids are never reused.
    pub next_id: u64,
    pub segments: Vec<u64>,
}

pub fn segment_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IndexError + 'a {
    move |source| IndexError::Io { op, path: path.to_path_buf(), source }
}

/// A failed step of a crash-safe write is an I/O error naming the step and its file.
impl From<atomic_file::WriteError> for IndexError {
    fn from(e: atomic_file::WriteError) -> IndexError {
        IndexError::Io { op: e.op, path: e.path, source: e.source }
    }
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.segments.len() * 8);
        b.extend_from_slice(MANIFEST_MAGIC);
        b.extend_from_slice(&self.checkpoint.to_le_bytes());
        b.extend_from_slice(&self.next_id.to_le_bytes());
        b.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for id in &self.segments {
            b.extend_from_slice(&id.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(path: &Path, b: &[u8]) -> Result<Manifest, IndexError> {
        let bad = |reason: &str| IndexError::Corrupted { file: path.to_path_buf(), offset: 0, reason: reason.into() };
        let u64_at = |at: usize| b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes);
        let u32_at = |at: usize| b.get(at..at + 4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes);
        if b.get(..8) != Some(&MANIFEST_MAGIC[..]) {
            return Err(bad("not a manifest (magic)"));
        }
        let count = u32_at(24).ok_or_else(|| bad("short manifest"))? as usize;
        let end = 28usize.checked_add(count.checked_mul(8).ok_or_else(|| bad("segment count overflows"))?);
        if end.and_then(|e| e.checked_add(4)) != Some(b.len()) {
            return Err(bad("manifest length does not match its segment count"));
        }
        let end = b.len() - 4;
        if u32_at(end) != Some(crc32c::crc32c(&b[..end])) {
            return Err(bad("checksum mismatch"));
        }
        let checkpoint = u64_at(8).ok_or_else(|| bad("short manifest"))?;
        let next_id = u64_at(16).ok_or_else(|| bad("short manifest"))?;
        let segments: Vec<u64> =
            (0..count).map(|i| u64_at(28 + i * 8).ok_or_else(|| bad("short manifest"))).collect::<Result<_, _>>()?;
        if segments.iter().any(|&id| id >= next_id) {
            return Err(bad("segment id at or beyond next_id"));
        }
        Ok(Manifest { checkpoint, next_id, segments })
    }

    /// Reads the manifest of `dir`; a missing one is an empty index.
    pub fn load(dir: &Path) -> Result<Manifest, IndexError> {
        let path = dir.join(MANIFEST);
        match fs::read(&path) {
            Ok(b) if b.get(..8) == Some(&MANIFEST_MAGIC_V1[..]) => Ok(Manifest::default()),
            Ok(b) => Manifest::decode(&path, &b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(IndexError::Io { op: "read", path, source: e }),
        }
    }

    pub fn store(&self, dir: &Path) -> Result<(), IndexError> {
        Ok(atomic_file::write_atomic(&dir.join(MANIFEST), &self.encode(), 0o600)?)
    }
}

/// Removes temp files and segment files the manifest does not list: the remains of a flush or merge that
/// crashed before its manifest was renamed, or after it but before the merged inputs were deleted.
pub fn remove_unlisted(dir: &Path, manifest: &Manifest) -> Result<(), IndexError> {
    for entry in fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let unlisted = parse_segment_name(name).is_some_and(|id| !manifest.segments.contains(&id));
        if name.ends_with(atomic_file::TMP_SUFFIX) || unlisted {
            let path = entry.path();
            fs::remove_file(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(())
}

/// Bytes of every file in the directory.
pub fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_damage() {
        let m = Manifest { checkpoint: 42, next_id: 9, segments: vec![1, 5, 8] };
        let b = m.encode();
        let p = Path::new("MANIFEST");
        assert_eq!(Manifest::decode(p, &b).unwrap(), m);
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x10;
            assert!(matches!(Manifest::decode(p, &d), Err(IndexError::Corrupted { .. })), "byte {i}");
        }
        assert!(Manifest::decode(p, &b[..b.len() - 1]).is_err());
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(parse_segment_name(&segment_name(0xabc)), Some(0xabc));
        assert_eq!(parse_segment_name("MANIFEST"), None);
        assert_eq!(parse_segment_name("00000000000000ab.seg.tmp"), None);
    }
}
