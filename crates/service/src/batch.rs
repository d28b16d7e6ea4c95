//! Splitting an ingest body into records: NDJSON, a JSON array, or CloudTrail's `{"Records":[…]}`
//! log-file shape, plain or gzip. One bad record never sinks its batch: the body is split first and each
//! record is validated on its own; only a body that cannot be split at all is refused as a whole.

use std::io::Read;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Hard-coded: the largest body we accept after gzip decompression (guards against gzip bombs).
pub const MAX_DECODED_BODY_BYTES: usize = 512 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("request body is not valid gzip: {reason}")]
    BadGzip { reason: String },
    #[error("decompressed body exceeds {max} bytes")]
    TooLarge { max: usize },
    #[error("body is not a valid JSON array of records: {reason}")]
    BadArray { reason: String },
    #[error("body is not a valid {{\"Records\":[...]}} document: {reason}")]
    BadEnvelope { reason: String },
}

/// Decompresses a gzip body (several members allowed, as `cat a.gz b.gz` produces).
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(body.len() * 8);
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(MAX_DECODED_BODY_BYTES as u64 + 1);
    dec.read_to_end(&mut out).map_err(|e| BatchError::BadGzip { reason: e.to_string() })?;
    if out.len() > MAX_DECODED_BODY_BYTES {
        return Err(BatchError::TooLarge { max: MAX_DECODED_BODY_BYTES });
    }
    Ok(out)
}

/// True when the bytes start with the gzip magic number.
pub fn looks_gzipped(body: &[u8]) -> bool {
    body.starts_with(&[0x1f, 0x8b])
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// Splits a (decompressed) body into the byte slices of its records, in order.
pub fn split_batch(body: &[u8]) -> Result<Vec<&[u8]>, BatchError> {
    let trimmed = body.trim_ascii();
    match trimmed.first() {
        None => Ok(Vec::new()),
        Some(b'[') => {
            let items: Vec<&RawValue> =
                serde_json::from_slice(trimmed).map_err(|e| BatchError::BadArray { reason: e.to_string() })?;
            Ok(items.into_iter().map(|r| r.get().as_bytes()).collect())
        }
        Some(b'{') if starts_with_records_key(trimmed) => {
            let env: Envelope =
                serde_json::from_slice(trimmed).map_err(|e| BatchError::BadEnvelope { reason: e.to_string() })?;
            Ok(env.records.into_iter().map(|r| r.get().as_bytes()).collect())
        }
        Some(_) => {
            // A single pretty-printed record spanning lines is one record, not many broken lines.
            if trimmed.contains(&b'\n') && serde_json::from_slice::<&RawValue>(trimmed).is_ok() {
                return Ok(vec![trimmed]);
            }
            Ok(trimmed.split(|b| *b == b'\n').map(<[u8]>::trim_ascii).filter(|l| !l.is_empty()).collect())
        }
    }
}

fn starts_with_records_key(obj: &[u8]) -> bool {
    obj[1..].trim_ascii_start().starts_with(b"\"Records\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_become_records_and_blank_lines_are_skipped() {
        let body = b"{\"a\":1}\n\n  {\"b\":2}\r\nnot json\n";
        let got = split_batch(body).unwrap();
        assert_eq!(got, vec![&b"{\"a\":1}"[..], b"{\"b\":2}", b"not json"]);
    }

    #[test]
    fn array_and_records_envelope_are_split() {
        assert_eq!(split_batch(b" [ {\"a\":1}, {\"b\":[2]} ] ").unwrap(), vec![&b"{\"a\":1}"[..], b"{\"b\":[2]}"]);
        let env = b"{ \"Records\" : [{\"a\":1},{\"b\":2}] }";
        assert_eq!(split_batch(env).unwrap(), vec![&b"{\"a\":1}"[..], b"{\"b\":2}"]);
    }

    #[test]
    fn a_pretty_printed_single_record_is_one_record() {
        let body = b"{\n  \"a\": 1,\n  \"b\": 2\n}\n";
        assert_eq!(split_batch(body).unwrap().len(), 1);
    }

    #[test]
    fn a_broken_array_is_refused_whole() {
        assert!(matches!(split_batch(b"[{\"a\":1},"), Err(BatchError::BadArray { .. })));
        assert!(matches!(split_batch(b"{\"Records\": 5}"), Err(BatchError::BadEnvelope { .. })));
    }

    #[test]
    fn gzip_round_trip_and_garbage() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"a\":1}\n").unwrap();
        let gz = enc.finish().unwrap();
        assert!(looks_gzipped(&gz));
        assert_eq!(gunzip(&gz).unwrap(), b"{\"a\":1}\n");
        assert!(matches!(gunzip(b"\x1f\x8bnope"), Err(BatchError::BadGzip { .. })));
    }
}
