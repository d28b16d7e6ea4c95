//! Splitting an ingest body into records: NDJSON, a JSON array, or CloudTrail's `{"Records":[…]}`
//! log-file shape (one or several log files one after another), plain or gzip. One bad record never sinks
//! its batch: the body is split first and each record is validated on its own; only a body that cannot be
//! split at all is refused as a whole.

use std::io::Read;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Hard-coded: gzip output is decoded this many bytes at a time, so a limit is noticed within one chunk.
const GUNZIP_CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("request body is not valid gzip: {reason}")]
    BadGzip { reason: String },
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body holds more than {limit} records")]
    TooManyRecords { limit: usize },
    #[error("body is not a valid JSON array of records: {reason}")]
    BadArray { reason: String },
    #[error("body is not a valid {{\"Records\":[...]}} document: {reason}")]
    BadEnvelope { reason: String },
}

/// Decompresses a gzip body (several members allowed, as `cat a.gz b.gz` produces), refusing it with
/// [`BatchError::TooLarge`] as soon as the output passes `max_out` bytes: a gzip bomb costs at most
/// `max_out` bytes of memory, never what it would expand to.
pub fn gunzip_limited(body: &[u8], max_out: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let decoded = gunzip_limited_with(body, max_out, |chunk| {
        out.extend_from_slice(chunk);
        Ok::<(), std::convert::Infallible>(())
    });
    match decoded {
        Ok(_) => Ok(out),
        Err(GunzipError::Batch(e)) => Err(e),
        Err(GunzipError::Sink(never)) => match never {},
    }
}

/// Why [`gunzip_limited_with`] stopped.
#[derive(Debug)]
pub enum GunzipError<E> {
    Batch(BatchError),
    /// The sink refused a chunk.
    Sink(E),
}

/// [`gunzip_limited`], handing the output to `sink` a chunk at a time instead of collecting it, so the
/// caller decides where decoded bytes live and can count them against a memory budget before keeping
/// them; an `Err` from `sink` stops decoding. No chunk that would take the output past `max_out` is
/// handed on. Returns the decoded length.
pub fn gunzip_limited_with<E>(
    body: &[u8],
    max_out: usize,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<usize, GunzipError<E>> {
    let mut dec = flate2::read::MultiGzDecoder::new(body);
    // One byte past the limit is read, so "exactly max_out" and "more than max_out" differ.
    let mut chunk = vec![0u8; GUNZIP_CHUNK_BYTES.min(max_out.saturating_add(1))];
    let mut total = 0usize;
    loop {
        let want = chunk.len().min(max_out + 1 - total);
        let n = match dec.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(GunzipError::Batch(BatchError::BadGzip { reason: e.to_string() })),
        };
        if total + n > max_out {
            return Err(GunzipError::Batch(BatchError::TooLarge { limit: max_out }));
        }
        sink(&chunk[..n]).map_err(GunzipError::Sink)?;
        total += n;
    }
    Ok(total)
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
            // Several log files one after another (`opentrail ingest` sends a run of `.json.gz` files
            // as one body, as `cat a.json.gz b.json.gz` makes it): their records in order.
            let mut out = Vec::new();
            for env in serde_json::Deserializer::from_slice(trimmed).into_iter::<Envelope>() {
                let env = env.map_err(|e| BatchError::BadEnvelope { reason: e.to_string() })?;
                out.extend(env.records.into_iter().map(|r| r.get().as_bytes()));
            }
            Ok(out)
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

/// [`split_batch`], refusing a body of more than `max_records` records whole with
/// [`BatchError::TooManyRecords`]. NDJSON stops counting at the first record past the limit.
pub fn split_batch_limited(body: &[u8], max_records: usize) -> Result<Vec<&[u8]>, BatchError> {
    let too_many = || BatchError::TooManyRecords { limit: max_records };
    let trimmed = body.trim_ascii();
    let is_ndjson = !matches!(trimmed.first(), None | Some(b'[')) && !starts_with_records_key(trimmed);
    if is_ndjson {
        let lines = trimmed.split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty());
        if lines.take(max_records + 1).count() > max_records {
            // A pretty-printed single record spans lines but is one record.
            if serde_json::from_slice::<&RawValue>(trimmed).is_err() {
                return Err(too_many());
            }
        }
    }
    let parts = split_batch(body)?;
    if parts.len() > max_records {
        return Err(too_many());
    }
    Ok(parts)
}

fn starts_with_records_key(obj: &[u8]) -> bool {
    obj.first() == Some(&b'{') && obj[1..].trim_ascii_start().starts_with(b"\"Records\"")
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
    fn log_files_one_after_another_are_split_in_order_and_a_bad_one_refuses_the_body() {
        let two = b"{\"Records\":[{\"a\":1}]}\n{ \"Records\": [{\"b\":2},{\"c\":3}]}{\"Records\":[]}";
        assert_eq!(split_batch(two).unwrap(), vec![&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}"]);
        assert!(matches!(split_batch(b"{\"Records\":[{\"a\":1}]}\n{\"a\":1}\n"), Err(BatchError::BadEnvelope { .. })));
        assert!(matches!(split_batch(b"{\"Records\":[{\"a\":1}]} x"), Err(BatchError::BadEnvelope { .. })));
        let env = format!("{{\"Records\":[{}]}}", ["{\"a\":1}"; 6].join(","));
        let body = format!("{env}{env}");
        assert_eq!(split_batch_limited(body.as_bytes(), 11), Err(BatchError::TooManyRecords { limit: 11 }));
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
        assert_eq!(gunzip_limited(&gz, 1024).unwrap(), b"{\"a\":1}\n");
        assert!(matches!(gunzip_limited(b"\x1f\x8bnope", 1024), Err(BatchError::BadGzip { .. })));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gunzip_stops_one_byte_past_the_limit() {
        let data = vec![b'x'; 300_000];
        let gz = gzip(&data);
        assert_eq!(gunzip_limited(&gz, 300_000).unwrap().len(), 300_000);
        assert_eq!(gunzip_limited(&gz, 299_999), Err(BatchError::TooLarge { limit: 299_999 }));
        // Two members, as `cat a.gz b.gz` makes: the limit covers both.
        let two = [gz.clone(), gz].concat();
        assert_eq!(gunzip_limited(&two, 600_000).unwrap().len(), 600_000);
        assert_eq!(gunzip_limited(&two, 500_000), Err(BatchError::TooLarge { limit: 500_000 }));
    }

    #[test]
    fn a_gzip_bomb_is_refused_before_passing_the_limit() {
        // 256 MiB of zeros compress to about 256 KiB.
        let gz = {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..256 {
                enc.write_all(&zeros).unwrap();
            }
            enc.finish().unwrap()
        };
        let mut handed = 0;
        let got = gunzip_limited_with(&gz, 4 << 20, |chunk| {
            handed += chunk.len();
            Ok::<(), ()>(())
        });
        assert!(matches!(got, Err(GunzipError::Batch(BatchError::TooLarge { limit })) if limit == 4 << 20));
        // Nothing past the limit reaches the sink.
        assert!(handed <= 4 << 20, "handed on {handed}");
    }

    #[test]
    fn a_refusing_sink_stops_decoding() {
        let gz = gzip(&vec![b'y'; 1 << 20]);
        let mut handed = 0;
        let got = gunzip_limited_with(&gz, 8 << 20, |chunk| {
            if handed + chunk.len() > 200_000 {
                return Err("budget");
            }
            handed += chunk.len();
            Ok(())
        });
        assert!(matches!(got, Err(GunzipError::Sink("budget"))));
        assert!(handed <= 200_000);
    }

    #[test]
    fn too_many_records_are_refused_whole() {
        let ndjson = "{\"a\":1}\n".repeat(11);
        assert_eq!(split_batch_limited(ndjson.as_bytes(), 11).unwrap().len(), 11);
        assert_eq!(split_batch_limited(ndjson.as_bytes(), 10), Err(BatchError::TooManyRecords { limit: 10 }));
        let array = format!("[{}]", ["{\"a\":1}"; 11].join(","));
        assert_eq!(split_batch_limited(array.as_bytes(), 10), Err(BatchError::TooManyRecords { limit: 10 }));
        let env = format!("{{\"Records\":[{}]}}", ["{\"a\":1}"; 11].join(","));
        assert_eq!(split_batch_limited(env.as_bytes(), 10), Err(BatchError::TooManyRecords { limit: 10 }));
        // A pretty-printed single record has many lines but is one record.
        let pretty = "{\n \"a\": 1,\n \"b\": 2,\n \"c\": 3\n}\n";
        assert_eq!(split_batch_limited(pretty.as_bytes(), 2).unwrap().len(), 1);
    }
}
