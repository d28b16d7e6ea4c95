//! A CloudTrail log file: gzip of `{"Records":[r1,r2,…]}` with every record's JSON text exactly as stored
//! (no re-encoding, no added spaces), plus what its digest entry needs: the hex SHA-256 of the
//! uncompressed bytes, the oldest and newest `eventTime`, and the record count.
//!
//! [`LogFileBuilder`] compresses and hashes records as they are appended, so a file never exists twice in
//! memory; [`RecordBuffer`] only gathers them, and is compressed and hashed when it is finished — so a caller
//! cutting several files at once can finish them on several threads.

use std::io::Write as _;

use aws_lc_rs::digest::{Context, SHA256};
use flate2::Compression;
use flate2::write::GzEncoder;
use model::EventTime;

/// Hard-coded gzip level 1. Measured (`examples/throughput.rs`, flate2 + zlib-rs, eventgen records of ~1.4 KB,
/// one core of the shared 2-core box): level 1 builds files at ~230,000 records/s (~320 MB/s) with a 3.7×
/// ratio; level 6 at ~80,000–93,000 records/s (~120 MB/s) with 6.0×. A trail must keep up with 100,000
/// events/s next to ingest on 2 cores: level 1 needs under half a core for that, level 6 more than a whole
/// one. Files are ~60 % larger, and storage is the cheaper resource. (Level 2, 4.7× at ~165,000 records/s,
/// is the next step if size ever matters more.)
pub const GZIP_LEVEL: u32 = 1;

const HEAD: &[u8] = b"{\"Records\":[";
const TAIL: &[u8] = b"]}";

/// How many records a file holds and the range of their event times.
#[derive(Debug, Default, Clone, Copy)]
struct Span {
    count: usize,
    oldest: Option<EventTime>,
    newest: Option<EventTime>,
}

impl Span {
    fn add(&mut self, t: EventTime) {
        self.count += 1;
        self.oldest = Some(self.oldest.map_or(t, |o| o.min(t)));
        self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
    }
}

/// Builds one log file.
pub struct LogFileBuilder {
    gzip: GzEncoder<Vec<u8>>,
    sha: Context,
    uncompressed_len: u64,
    span: Span,
}

/// A finished log file and its digest entry facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// The object's bytes (gzip).
    pub gzip: Vec<u8>,
    /// Lower-case hex SHA-256 of the uncompressed JSON (the digest's `hashValue`).
    pub sha256_hex: String,
    pub uncompressed_len: u64,
    pub record_count: usize,
    /// Over the appended records' event times; `None` for a file without records.
    pub oldest_event_time: Option<EventTime>,
    pub newest_event_time: Option<EventTime>,
}

impl Default for LogFileBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LogFileBuilder {
    pub fn new() -> LogFileBuilder {
        Self::with_level(GZIP_LEVEL)
    }

    /// A builder compressing at `level` (0–9); for measurements, the server uses [`GZIP_LEVEL`].
    pub fn with_level(level: u32) -> LogFileBuilder {
        let mut b = LogFileBuilder {
            gzip: GzEncoder::new(Vec::new(), Compression::new(level.min(9))),
            sha: Context::new(&SHA256),
            uncompressed_len: 0,
            span: Span::default(),
        };
        b.write(HEAD);
        b
    }

    fn write(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.uncompressed_len += bytes.len() as u64;
        // Writing into a Vec cannot fail.
        self.gzip.write_all(bytes).expect("gzip into memory");
    }

    /// Appends one record's JSON text verbatim. The caller guarantees it is one JSON object (the journal
    /// stores only records that parsed); `event_time` is its `eventTime`.
    pub fn push(&mut self, record_json: &[u8], event_time: EventTime) {
        if self.span.count > 0 {
            self.write(b",");
        }
        self.write(record_json);
        self.span.add(event_time);
    }

    pub fn record_count(&self) -> usize {
        self.span.count
    }

    /// Uncompressed bytes so far (for size-based cuts).
    pub fn uncompressed_len(&self) -> u64 {
        self.uncompressed_len
    }

    pub fn finish(mut self) -> LogFile {
        self.write(TAIL);
        let gzip = self.gzip.finish().expect("gzip into memory");
        LogFile {
            gzip,
            sha256_hex: hex::encode(self.sha.finish()),
            uncompressed_len: self.uncompressed_len,
            record_count: self.span.count,
            oldest_event_time: self.span.oldest,
            newest_event_time: self.span.newest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn records_are_kept_verbatim_inside_the_records_array() {
        let mut b = LogFileBuilder::new();
        b.push(br#"{"eventVersion":"1.08", "eventTime":"2024-01-01T00:00:02Z"}"#, EventTime(2000));
        b.push(br#"{"eventTime":"2024-01-01T00:00:01Z","x":[1, 2]}"#, EventTime(1000));
        let f = b.finish();
        let json = gunzip(&f.gzip);
        assert_eq!(
            json,
            br#"{"Records":[{"eventVersion":"1.08", "eventTime":"2024-01-01T00:00:02Z"},{"eventTime":"2024-01-01T00:00:01Z","x":[1, 2]}]}"#
        );
        assert_eq!(f.sha256_hex, crate::sha256_hex(&json));
        assert_eq!(f.uncompressed_len, json.len() as u64);
        assert_eq!(
            (f.record_count, f.oldest_event_time, f.newest_event_time),
            (2, Some(EventTime(1000)), Some(EventTime(2000)))
        );
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed["Records"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn an_empty_file_is_an_empty_records_array() {
        let f = LogFileBuilder::new().finish();
        assert_eq!(gunzip(&f.gzip), br#"{"Records":[]}"#);
        assert_eq!((f.record_count, f.oldest_event_time), (0, None));
    }
}

/// Records gathered uncompressed for one log file, compressed and hashed only by [`RecordBuffer::finish`]
/// (which a caller may run on another thread). Appending is a copy, nothing more.
#[derive(Debug, Default)]
pub struct RecordBuffer {
    /// The records joined by `,`: the file's bytes between `{"Records":[` and `]}`.
    body: Vec<u8>,
    span: Span,
}

impl RecordBuffer {
    /// Appends one record's JSON text verbatim (one JSON object, as [`LogFileBuilder::push`]).
    pub fn push(&mut self, record_json: &[u8], event_time: EventTime) {
        if self.span.count > 0 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(record_json);
        self.span.add(event_time);
    }

    pub fn record_count(&self) -> usize {
        self.span.count
    }

    /// The bytes of the finished file, uncompressed.
    pub fn uncompressed_len(&self) -> u64 {
        (HEAD.len() + self.body.len() + TAIL.len()) as u64
    }

    /// The log file: the same bytes, hash and times as a [`LogFileBuilder`] fed the same records.
    pub fn finish(self) -> LogFile {
        let mut b = LogFileBuilder::new();
        b.write(&self.body);
        b.span = self.span;
        b.finish()
    }
}

#[cfg(test)]
mod buffer_tests {
    use super::*;

    #[test]
    fn a_record_buffer_finishes_to_the_same_file_as_the_streaming_builder() {
        let records: Vec<(String, EventTime)> = (0..50)
            .map(|i| {
                (format!(r#"{{"eventID":"e{i}","eventTime":"x","n":{}}}"#, i * 7), EventTime(1_000 + (i * 37) % 11))
            })
            .collect();
        let mut streaming = LogFileBuilder::new();
        let mut buffered = RecordBuffer::default();
        for (json, t) in &records {
            streaming.push(json.as_bytes(), *t);
            buffered.push(json.as_bytes(), *t);
        }
        assert_eq!(buffered.record_count(), 50);
        let promised = buffered.uncompressed_len();
        let (a, b) = (streaming.finish(), buffered.finish());
        assert_eq!((promised, b.uncompressed_len), (a.uncompressed_len, a.uncompressed_len));
        assert_eq!(a.sha256_hex, b.sha256_hex);
        assert_eq!((a.oldest_event_time, a.newest_event_time), (b.oldest_event_time, b.newest_event_time));
        assert_eq!(a.record_count, b.record_count);
        assert_eq!(crate::digest::gunzip(&a.gzip, 1 << 20), crate::digest::gunzip(&b.gzip, 1 << 20));
        let empty = RecordBuffer::default().finish();
        assert_eq!(crate::digest::gunzip(&empty.gzip, 64).unwrap(), b"{\"Records\":[]}");
    }
}
