//! The spool of spool mode: records appended to local segment files of checksummed frames before the
//! call's answer is released, forwarded in order in the background, the forwarded position kept in a
//! cursor file. Format and crash analysis: `docs/formats/spool.md`.
//!
//! Durability: an append is one `write()` of the whole frame into the page cache, so it survives kill -9
//! of the gateway (and of the server); a background thread fsyncs every [`SYNC_INTERVAL`], so a power
//! loss can lose what was written in the last interval.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;

/// Hard-coded: a segment is closed (fsync'd) and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Hard-coded: the largest frame payload (a record is far smaller: CloudTrail cuts members at 100 KiB).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// Hard-coded: how often written frames are fsync'd (the power-loss window).
pub const SYNC_INTERVAL: Duration = Duration::from_millis(50);
/// Frame header: payload length (u32 LE) and CRC32C of the payload (u32 LE).
const HEADER: usize = 8;
const CURSOR_FILE: &str = "cursor";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: io::Error },
    #[error("spool segment {} is corrupted at offset {offset}: {reason}", path.display())]
    Corrupted { path: PathBuf, offset: u64, reason: &'static str },
    #[error("spool cursor {}: {reason}", path.display())]
    BadCursor { path: PathBuf, reason: String },
    #[error("a record of {bytes} bytes is larger than a spool frame may be ({MAX_FRAME_BYTES})")]
    TooLarge { bytes: usize },
    #[error("the spool failed earlier and refuses writes until the gateway restarts")]
    Failed,
}

/// A position in the spool: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

struct Writer {
    file: File,
    end: Position,
    dirty: bool,
}

pub struct Spool {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// Frames appended and not yet forwarded (committed).
    depth: AtomicU64,
    failed: AtomicBool,
    /// Wakes the forwarder after an append.
    pub appended: tokio::sync::Notify,
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("spool-{n:016}.log"))
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |source| SpoolError::Io { op, path, source }
}

/// Scans the frames of `bytes`: their count and where the last whole, valid one ends, and why it
/// stopped there if not at the end.
fn scan(bytes: &[u8]) -> (u64, usize, Option<&'static str>) {
    let mut at = 0;
    let mut frames = 0;
    while at < bytes.len() {
        if bytes.len() - at < HEADER {
            return (frames, at, Some("short frame header"));
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len > MAX_FRAME_BYTES {
            return (frames, at, Some("frame length out of range"));
        }
        if bytes.len() - at - HEADER < len {
            return (frames, at, Some("short frame payload"));
        }
        if crc32c::crc32c(&bytes[at + HEADER..at + HEADER + len]) != crc {
            return (frames, at, Some("frame checksum mismatch"));
        }
        at += HEADER + len;
        frames += 1;
    }
    (frames, at, None)
}

impl Spool {
    /// Opens (creating) the spool in `dir`: a torn tail of the last segment (a write cut by a crash) is
    /// cut off; damage anywhere else is an error naming the file and offset.
    pub fn open(dir: &Path) -> Result<Arc<Spool>, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let mut segments: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io_err("list", dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("spool-")?.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        segments.sort_unstable();
        let cursor = read_cursor(dir)?;
        let mut depth = 0u64;
        let last = segments.last().copied();
        for &n in &segments {
            let path = seg_path(dir, n);
            let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
            let (frames, valid_end, stop) = scan(&bytes);
            if let Some(reason) = stop {
                if Some(n) != last {
                    return Err(SpoolError::Corrupted { path, offset: valid_end as u64, reason });
                }
                tracing::warn!(segment = %path.display(), offset = valid_end, reason, "cutting the spool's torn tail");
                let f = OpenOptions::new().write(true).open(&path).map_err(io_err("open", &path))?;
                f.set_len(valid_end as u64).map_err(io_err("truncate", &path))?;
                f.sync_all().map_err(io_err("fsync", &path))?;
            }
            if n > cursor.segment {
                depth += frames;
            } else if n == cursor.segment {
                let (before, _, _) = scan(&bytes[..(cursor.offset as usize).min(valid_end)]);
                depth += frames - before;
            }
        }
        let segment = last.unwrap_or(cursor.segment.max(1));
        let path = seg_path(dir, segment);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err("open", &path))?;
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        if last.is_none() {
            sync_dir(dir)?;
        }
        Ok(Arc::new(Spool {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer { file, end: Position { segment, offset: len }, dirty: false }),
            depth: AtomicU64::new(depth),
            failed: AtomicBool::new(false),
            appended: tokio::sync::Notify::new(),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records waiting to be forwarded.
    pub fn depth(&self) -> u64 {
        self.depth.load(Relaxed)
    }

    /// Whether appends are being taken (false after a write error).
    pub fn healthy(&self) -> bool {
        !self.failed.load(Relaxed)
    }

    /// Appends one record: returns once its frame is written (in the page cache). A failed write marks
    /// the spool failed (refusing appends, so calls are refused rather than recorded out of order).
    pub fn append(&self, payload: &[u8]) -> Result<(), SpoolError> {
        if payload.len() > MAX_FRAME_BYTES {
            return Err(SpoolError::TooLarge { bytes: payload.len() });
        }
        if self.failed.load(Relaxed) {
            return Err(SpoolError::Failed);
        }
        let mut frame = Vec::with_capacity(HEADER + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let mut w = self.writer.lock();
        let res = (|| {
            if w.end.offset >= SEGMENT_BYTES {
                self.roll(&mut w)?;
            }
            let path = seg_path(&self.dir, w.end.segment);
            w.file.write_all(&frame).map_err(io_err("write", &path))
        })();
        match res {
            Ok(()) => {
                w.end.offset += frame.len() as u64;
                w.dirty = true;
                drop(w);
                self.depth.fetch_add(1, Relaxed);
                self.appended.notify_one();
                Ok(())
            }
            Err(e) => {
                self.failed.store(true, Relaxed);
                tracing::error!(error = %e, "spool write failed: refusing calls until restart");
                Err(e)
            }
        }
    }

    fn roll(&self, w: &mut Writer) -> Result<(), SpoolError> {
        let old = seg_path(&self.dir, w.end.segment);
        w.file.sync_all().map_err(io_err("fsync", &old))?;
        let next = w.end.segment + 1;
        let path = seg_path(&self.dir, next);
        w.file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err("create", &path))?;
        sync_dir(&self.dir)?;
        w.end = Position { segment: next, offset: 0 };
        w.dirty = false;
        Ok(())
    }

    /// fsyncs what was written since the last sync.
    pub fn sync(&self) -> Result<(), SpoolError> {
        let mut w = self.writer.lock();
        if !w.dirty {
            return Ok(());
        }
        // Cloned handle: the fsync runs without blocking appends for its duration.
        let f = w.file.try_clone().map_err(io_err("dup", &self.dir))?;
        w.dirty = false;
        drop(w);
        f.sync_data().map_err(io_err("fsync", &self.dir))
    }

    /// The forwarded position (the cursor file), where forwarding resumes.
    pub fn cursor(&self) -> Result<Position, SpoolError> {
        read_cursor(&self.dir)
    }

    /// Up to `max` frames from `from`, and the position after them; empty when nothing more is written.
    pub fn read(&self, from: Position, max: usize) -> Result<(Vec<Vec<u8>>, Position), SpoolError> {
        let end = self.writer.lock().end;
        let mut at = from;
        let mut out = Vec::new();
        while out.len() < max && at < end {
            let path = seg_path(&self.dir, at.segment);
            let limit = if at.segment == end.segment {
                end.offset
            } else {
                match std::fs::metadata(&path) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
                    Err(e) => return Err(io_err("stat", &path)(e)),
                }
            };
            if at.offset >= limit {
                if at.segment == end.segment {
                    break;
                }
                at = Position { segment: at.segment + 1, offset: 0 };
                continue;
            }
            let mut f = File::open(&path).map_err(io_err("open", &path))?;
            f.seek(SeekFrom::Start(at.offset)).map_err(io_err("seek", &path))?;
            let mut buf = vec![0u8; (limit - at.offset).min(8 * 1024 * 1024) as usize];
            f.read_exact(&mut buf).map_err(io_err("read", &path))?;
            let mut pos = 0usize;
            while out.len() < max && buf.len() - pos >= HEADER {
                let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().expect("4 bytes"));
                if buf.len() - pos - HEADER < len {
                    break;
                }
                let payload = &buf[pos + HEADER..pos + HEADER + len];
                if crc32c::crc32c(payload) != crc {
                    return Err(SpoolError::Corrupted {
                        path,
                        offset: at.offset + pos as u64,
                        reason: "frame checksum mismatch",
                    });
                }
                out.push(payload.to_vec());
                pos += HEADER + len;
            }
            if pos == 0 {
                // A frame larger than the read window cannot happen (frames ≤ MAX_FRAME_BYTES < window).
                return Err(SpoolError::Corrupted { path, offset: at.offset, reason: "frame larger than the segment" });
            }
            at.offset += pos as u64;
        }
        Ok((out, at))
    }

    /// Marks everything before `to` forwarded (`frames` of them): the cursor file is replaced atomically,
    /// then segments wholly before it are deleted.
    pub fn commit(&self, to: Position, frames: u64) -> Result<(), SpoolError> {
        let path = self.dir.join(CURSOR_FILE);
        let text = format!("{} {}\n", to.segment, to.offset);
        atomic_file::write_atomic(&path, text.as_bytes(), 0o600).map_err(|e| SpoolError::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        })?;
        self.depth.fetch_sub(frames.min(self.depth.load(Relaxed)), Relaxed);
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let n = name.to_str().and_then(|s| s.strip_prefix("spool-")?.strip_suffix(".log")?.parse::<u64>().ok());
                if n.is_some_and(|n| n < to.segment) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Starts the background fsync thread; it ends when the spool is dropped.
    pub fn start_sync_thread(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("spool-sync".into())
            .spawn(move || {
                while let Some(spool) = weak.upgrade() {
                    if let Err(error) = spool.sync() {
                        spool.failed.store(true, Relaxed);
                        tracing::error!(%error, "spool fsync failed: refusing calls until restart");
                    }
                    drop(spool);
                    std::thread::sleep(SYNC_INTERVAL);
                }
            })
            .expect("spawn the spool's fsync thread");
    }
}

fn read_cursor(dir: &Path) -> Result<Position, SpoolError> {
    let path = dir.join(CURSOR_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bad = |reason: &str| SpoolError::BadCursor { path: path.clone(), reason: reason.to_string() };
            let mut parts = text.split_whitespace();
            let segment = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| bad("no segment number"))?;
            let offset = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| bad("no offset"))?;
            Ok(Position { segment, offset })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Position { segment: 1, offset: 0 }),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_in_order_and_the_cursor_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        for i in 0..5 {
            spool.append(format!("record {i}").as_bytes()).unwrap();
        }
        let start = spool.cursor().unwrap();
        let (frames, next) = spool.read(start, 3).unwrap();
        assert_eq!(frames, vec![b"record 0".to_vec(), b"record 1".to_vec(), b"record 2".to_vec()]);
        spool.commit(next, 3).unwrap();
        assert_eq!(spool.depth(), 2);
        drop(spool);
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 2);
        let (frames, end) = spool.read(spool.cursor().unwrap(), 10).unwrap();
        assert_eq!(frames, vec![b"record 3".to_vec(), b"record 4".to_vec()]);
        assert!(spool.read(end, 10).unwrap().0.is_empty());
    }

    #[test]
    fn a_torn_tail_is_cut_and_damage_before_it_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.append(b"whole").unwrap();
        spool.append(b"torn").unwrap();
        drop(spool);
        let seg = seg_path(dir.path(), 1);
        let len = std::fs::metadata(&seg).unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 2).unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.depth(), 1);
        spool.append(b"after").unwrap();
        let (frames, _) = spool.read(spool.cursor().unwrap(), 10).unwrap();
        assert_eq!(frames, vec![b"whole".to_vec(), b"after".to_vec()]);
        drop(spool);
        // Damage in a segment that is not the last one is corruption, named.
        std::fs::write(seg_path(dir.path(), 2), b"").unwrap();
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[HEADER] ^= 0xff;
        std::fs::write(&seg, bytes).unwrap();
        let err = Spool::open(dir.path()).err().unwrap();
        assert!(matches!(&err, SpoolError::Corrupted { offset: 0, .. }), "{err}");
    }
}
