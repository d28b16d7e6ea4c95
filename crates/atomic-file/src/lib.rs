//! Crash-safe replacement of a file: write a temp file, fsync it, rename it over the target, fsync the
//! directory. A reader sees the old file or the new one, never a torn mix. The one implementation of it in
//! opentrail: service's state files, the index's manifest and segments, the journal's dictionaries.
//!
//! Each step is a method of [`Steps`], so a caller can put a fault-injection hook in front of it (the journal
//! does, to crash at every step in its tests); [`Direct`] just performs them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Suffix of the temp file a new version is written to before it is renamed over the target.
pub const TMP_SUFFIX: &str = ".tmp";

/// A step of a crash-safe write that failed: `op` on `path`.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}", path.display())]
pub struct WriteError {
    /// `create directory`, `remove stale temp file`, `create`, `write`, `fsync`, `rename` or `fsync directory`.
    pub op: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

/// The file operations of a crash-safe write, one per step. Every method defaults to doing it.
pub trait Steps {
    /// Creates the temp file, which does not exist, with permission bits `mode`.
    fn create(&self, path: &Path, mode: u32) -> io::Result<File> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        set_mode(&mut opts, mode);
        opts.open(path)
    }
    /// Writes the whole content of the just created temp file.
    fn write_all(&self, file: &File, _path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = file;
        file.write_all(bytes)
    }
    /// Makes the temp file's content durable.
    fn sync(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_all()
    }
    /// Renames the complete, durable temp file over the target.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    /// Makes the rename durable: fsync of the directory that holds both names.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The steps as they are, with no hook.
#[derive(Clone, Copy, Debug, Default)]
pub struct Direct;

impl Steps for Direct {}

/// Where the new version of `path` is written before [`commit_tmp`] renames it into place: `path` + `.tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Atomically replaces `path` with `bytes`, creating its directory if needed. `mode` (unix permission bits,
/// 0o666 for the usual default) is set when the temp file is created, so a secret never exists on disk with
/// wider permissions.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    write_atomic_with(&Direct, path, bytes, mode)
}

/// [`write_atomic`] through `steps`.
pub fn write_atomic_with(steps: &impl Steps, path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let dir = parent(path)?;
    fs::create_dir_all(dir).map_err(failed("create directory", dir))?;
    let tmp = tmp_path(path);
    // A leftover temp file can only be a crash's, from before its rename (it may have wider permissions, and
    // create_new would refuse it): nothing refers to it.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(failed("remove stale temp file", &tmp)(e)),
        _ => {}
    }
    let file = steps.create(&tmp, mode).map_err(failed("create", &tmp))?;
    steps.write_all(&file, &tmp, bytes).map_err(failed("write", &tmp))?;
    steps.sync(&file, &tmp).map_err(failed("fsync", &tmp))?;
    drop(file);
    commit_tmp_with(steps, &tmp, path)
}

/// Renames `tmp`, complete and already fsync'd by the caller (who wrote it as a stream), to `path` and fsyncs
/// the directory.
pub fn commit_tmp(tmp: &Path, path: &Path) -> Result<(), WriteError> {
    commit_tmp_with(&Direct, tmp, path)
}

fn commit_tmp_with(steps: &impl Steps, tmp: &Path, path: &Path) -> Result<(), WriteError> {
    let dir = parent(path)?;
    steps.rename(tmp, path).map_err(failed("rename", tmp))?;
    // The rename is durable only once the directory entry is.
    steps.sync_dir(dir).map_err(failed("fsync directory", dir))
}

fn parent(path: &Path) -> Result<&Path, WriteError> {
    path.parent().ok_or_else(|| failed("find the directory of", path)(io::Error::other("path has no parent directory")))
}

fn failed(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError { op, path, source }
}

#[cfg(unix)]
fn set_mode(opts: &mut OpenOptions, mode: u32) {
    use std::os::unix::fs::OpenOptionsExt;
    opts.mode(mode);
}

#[cfg(not(unix))]
fn set_mode(_opts: &mut OpenOptions, _mode: u32) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("state.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        write_atomic(&p, b"secret", 0o600).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_leftover_temp_file_with_wider_permissions_is_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        fs::write(tmp_path(&p), b"left by a crash").unwrap();
        fs::set_permissions(tmp_path(&p), fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&p, b"secret", 0o600).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"secret");
    }

    /// Fails the step named `fail_at`.
    struct FailAt(&'static str);

    impl Steps for FailAt {
        fn sync(&self, file: &File, _path: &Path) -> io::Result<()> {
            if self.0 == "fsync" { Err(io::Error::other("injected")) } else { file.sync_all() }
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            if self.0 == "rename" { Err(io::Error::other("injected")) } else { fs::rename(from, to) }
        }
    }

    #[test]
    fn a_failed_step_is_named_and_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("MANIFEST");
        write_atomic(&p, b"old", 0o666).unwrap();
        for op in ["fsync", "rename"] {
            let err = write_atomic_with(&FailAt(op), &p, b"new", 0o666).unwrap_err();
            assert_eq!((err.op, err.path.as_path()), (op, tmp_path(&p).as_path()));
            assert_eq!(fs::read(&p).unwrap(), b"old");
        }
    }
}
