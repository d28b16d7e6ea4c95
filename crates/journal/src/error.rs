//! The journal's one error type.

use std::path::PathBuf;

/// Everything the journal can fail with. Structured fields, never a bare string bag.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal i/o failed: {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal corrupted: {segment} at offset {offset}: {reason}")]
    Corrupted { segment: PathBuf, offset: u64, reason: String },
    /// A previous fsync (or a rollback after a failed write) failed: what is on disk is unknown, so the
    /// journal refuses every later write until it is reopened and recovery has re-read the files.
    #[error("journal poisoned by a previous i/o failure: reopen required")]
    Poisoned,
    #[error("journal back-pressure: {queued_bytes} bytes queued, limit {limit}")]
    Backpressure { queued_bytes: usize, limit: usize },
    /// ENOSPC while writing: the partial write was rolled back, the journal is NOT poisoned and the next
    /// submission retries.
    #[error("disk full while writing {path}")]
    DiskFull { path: PathBuf },
    #[error("record of {size} bytes exceeds the journal limit of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },
    #[error("journal closed")]
    Closed,
    #[error("empty batch: a submission needs at least one record")]
    EmptyBatch,
    #[error("sequence number {seq} is not in the journal (durable up to {durable:?})")]
    NotFound { seq: u64, durable: Option<u64> },
}

impl JournalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        JournalError::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupted(segment: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        JournalError::Corrupted { segment: segment.into(), offset, reason: reason.into() }
    }

    /// A copy for fanning one failure out to every `done` callback of a group (io::Error is not Clone).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            JournalError::Io { op, path, source } => JournalError::Io {
                op,
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            JournalError::Corrupted { segment, offset, reason } => {
                JournalError::Corrupted { segment: segment.clone(), offset: *offset, reason: reason.clone() }
            }
            JournalError::Poisoned => JournalError::Poisoned,
            JournalError::Backpressure { queued_bytes, limit } => {
                JournalError::Backpressure { queued_bytes: *queued_bytes, limit: *limit }
            }
            JournalError::DiskFull { path } => JournalError::DiskFull { path: path.clone() },
            JournalError::RecordTooLarge { size, max } => JournalError::RecordTooLarge { size: *size, max: *max },
            JournalError::Closed => JournalError::Closed,
            JournalError::EmptyBatch => JournalError::EmptyBatch,
            JournalError::NotFound { seq, durable } => JournalError::NotFound { seq: *seq, durable: *durable },
        }
    }
}
