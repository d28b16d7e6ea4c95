//! CloudTrail's delivered integrity formats and their checker, as pure code: object keys (`layout`), gzip
//! log files (`logfile`), signed digest files (`digest`), the RSA signing keys (`keys`), and the engine of
//! `opentrail validate` (`validate`), which reads through a storage trait the caller implements.
//!
//! No I/O, no clock: times, randomness (a log file's unique name) and objects are passed in, so the server's
//! delivery and the auditor's validator run the very same code. Formats: docs/formats/trail-files.md.

pub mod digest;
pub mod keys;
pub mod layout;
pub mod logfile;
pub mod time;
pub mod validate;

/// Lower-case hex SHA-256 of `bytes` (what log file entries and digest chains carry).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}
