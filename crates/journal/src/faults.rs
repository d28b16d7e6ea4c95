//! The fault-injection seam: every file operation of the writer goes through `FileOps`, which asks an optional
//! `IoFaults` hook first. Production passes no hook; tests fail or "crash" chosen writes, syncs and creates.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Consulted before each write-side file operation of the journal. Every method defaults to "proceed".
/// Used by tests to inject ENOSPC, EIO on fsync, and crashes (fail this and every later operation).
pub trait IoFaults: Send + Sync {
    /// Before writing `len` bytes at `offset` of `path`. `Err((n, e))` writes only the first `n` bytes
    /// (`n` is clamped to `len`), then fails with `e`: a torn write.
    fn write(&self, _path: &Path, _offset: u64, _len: usize) -> Result<(), (usize, io::Error)> {
        Ok(())
    }
    /// Before `sync_data` of a segment or `sync_all` of the directory.
    fn sync(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    /// Before creating a new segment file (or a dictionary's temporary file).
    fn create(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    /// Before renaming a fully written, fsync'd temporary file (a dictionary) to its final name.
    fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> {
        Ok(())
    }
    /// Before truncating (rolling back) a segment or removing a segment created by a failed group.
    fn truncate(&self, _path: &Path, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

/// The writer's file operations, with the optional hook in front of each.
#[derive(Clone, Default)]
pub(crate) struct FileOps {
    pub(crate) faults: Option<Arc<dyn IoFaults>>,
}

impl FileOps {
    pub(crate) fn write_all_at(&self, file: &File, path: &Path, offset: u64, buf: &[u8]) -> io::Result<()> {
        if let Some(f) = &self.faults
            && let Err((n, e)) = f.write(path, offset, buf.len())
        {
            let n = n.min(buf.len());
            file.write_all_at(&buf[..n], offset)?;
            return Err(e);
        }
        file.write_all_at(buf, offset)
    }

    pub(crate) fn sync_data(&self, file: &File, path: &Path) -> io::Result<()> {
        if let Some(f) = &self.faults {
            f.sync(path)?;
        }
        file.sync_data()
    }

    pub(crate) fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if let Some(f) = &self.faults {
            f.sync(dir)?;
        }
        File::open(dir)?.sync_all()
    }

    pub(crate) fn create(&self, path: &Path) -> io::Result<File> {
        if let Some(f) = &self.faults {
            f.create(path)?;
        }
        std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(path)
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if let Some(f) = &self.faults {
            f.rename(from, to)?;
        }
        std::fs::rename(from, to)
    }

    pub(crate) fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        if let Some(f) = &self.faults {
            f.truncate(path, len)?;
        }
        file.set_len(len)
    }

    pub(crate) fn remove(&self, path: &Path) -> io::Result<()> {
        if let Some(f) = &self.faults {
            f.truncate(path, 0)?;
        }
        std::fs::remove_file(path)
    }
}

/// The steps of a crash-safe write (the journal's dictionaries), each through the hook.
impl atomic_file::Steps for FileOps {
    fn create(&self, path: &Path, mode: u32) -> io::Result<File> {
        if let Some(f) = &self.faults {
            f.create(path)?;
        }
        atomic_file::Direct.create(path, mode)
    }

    fn write_all(&self, file: &File, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.write_all_at(file, path, 0, bytes)
    }

    fn sync(&self, file: &File, path: &Path) -> io::Result<()> {
        self.sync_data(file, path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        FileOps::rename(self, from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        FileOps::sync_dir(self, dir)
    }
}
