//! The generated data: `opentrail gen`-equivalent NDJSON written once to a scratch file (so 10 M events
//! need not fit in memory), cut into request-sized batches, with the value statistics lookups sample from,
//! and on request the columns file the Python baselines load (the attribute values as the server's own
//! parser extracts them, so every engine searches exactly what opentrail indexes).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use model::{AttributeKey, IndexFields, Record};

/// Hard-coded: gzip -6 is measured on at most this many leading events and extrapolated per event.
const GZIP_SAMPLE_EVENTS: u64 = 1_000_000;
/// Hard-coded: how many whole records are kept for sampling multi-attribute queries and event ids.
const SAMPLED_RECORDS: usize = 2000;
/// Hard-coded: `opentrail gen --span 7d`, the README's million-event example.
const SPAN_MS: i64 = 7 * 86_400_000;

/// One request's worth of records inside the corpus file.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub offset: u64,
    pub len: usize,
    pub records: usize,
}

/// How often each attribute value occurs, and some whole records.
#[derive(Debug, Default)]
pub struct Stats {
    pub counts: HashMap<AttributeKey, HashMap<String, u64>>,
    pub samples: Vec<IndexFields>,
}

pub struct Corpus {
    file: File,
    pub batches: Vec<Batch>,
    pub events: u64,
    pub raw_bytes: u64,
    pub stats: Stats,
    pub gzip_bytes_per_event: f64,
    pub gzip_sample_events: u64,
}

/// Counts bytes written through it; the gzip size without keeping the compressed bytes.
#[derive(Default)]
struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Corpus {
    /// The main corpus: records, batches, value statistics and the gzip -6 comparison size.
    pub fn generate(path: &Path, events: u64, seed: u64, batch: usize) -> Result<Corpus> {
        Self::build(path, events, seed, batch, true, None)
    }

    /// A second, disjoint set of records (other seed, so other eventIDs) for the freshness phase.
    pub fn generate_fresh(path: &Path, events: u64, seed: u64, batch: usize) -> Result<Corpus> {
        Self::build(path, events, seed, batch, false, None)
    }

    /// A disjoint set of records (as [`Corpus::generate_fresh`]) whose `awsRegion` is `region` in every record,
    /// so a trail files them all under one Region (the delivery benchmark's validate phase).
    pub fn generate_in_region(path: &Path, events: u64, seed: u64, batch: usize, region: &str) -> Result<Corpus> {
        Self::build(path, events, seed, batch, false, Some(region))
    }

    fn build(path: &Path, events: u64, seed: u64, batch: usize, analyse: bool, region: Option<&str>) -> Result<Corpus> {
        let opts = eventgen::GenOptions {
            events,
            seed,
            start: model::EventTime::from_millis(1_767_225_600_000),
            span_ms: SPAN_MS,
        };
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut gz = analyse.then(|| GzEncoder::new(CountingSink::default(), Compression::new(6)));

        let mut stats = Stats::default();
        let sample_every = (events / SAMPLED_RECORDS as u64).max(1);
        let (mut batches, mut offset, mut cur) = (Vec::new(), 0u64, Batch { offset: 0, len: 0, records: 0 });
        for (i, rec) in eventgen::generate(&opts).enumerate() {
            let i = i as u64;
            let rec = match region {
                Some(r) => set_top_level_region(&rec, r)
                    .with_context(|| format!("generated record {i} has no awsRegion string"))?
                    .into(),
                None => std::borrow::Cow::Borrowed(&*rec),
            };
            out.write_all(rec.as_bytes())?;
            out.write_all(b"\n")?;
            let n = rec.len() + 1;
            if let Some(g) = gz.as_mut()
                && i < GZIP_SAMPLE_EVENTS
            {
                g.write_all(rec.as_bytes())?;
                g.write_all(b"\n")?;
            }
            if analyse {
                let parsed = Record::parse(rec.as_bytes(), || unreachable!("eventgen always writes eventID"))
                    .map_err(|e| anyhow::anyhow!("generated record {i} does not parse: {e}"))?;
                count(&mut stats, &parsed.fields);

                if i.is_multiple_of(sample_every) && stats.samples.len() < SAMPLED_RECORDS {
                    stats.samples.push(parsed.fields);
                }
            }
            cur.len += n;
            cur.records += 1;
            offset += n as u64;
            if cur.records == batch {
                batches.push(cur);
                cur = Batch { offset, len: 0, records: 0 };
            }
        }
        if cur.records > 0 {
            batches.push(cur);
        }
        let file = out.into_inner().map_err(|e| e.into_error()).context("write corpus")?;

        let gzip_sample_events = events.min(GZIP_SAMPLE_EVENTS);
        let gzip_bytes_per_event = match gz {
            Some(g) => g.finish()?.0 as f64 / gzip_sample_events.max(1) as f64,
            None => 0.0,
        };
        // Reopen read-only: the writer's handle stays valid, but make the intent explicit.
        drop(file);
        let file = File::open(path)?;
        Ok(Corpus { file, batches, events, raw_bytes: offset, stats, gzip_bytes_per_event, gzip_sample_events })
    }

    /// Writes the columns file described in `baselines/harness.py`: each record parsed again by the server's
    /// parser, in corpus order (`seq` = line number, as in the SQLite baseline). Written after the server has
    /// stopped rather than while generating, so that at 10 M events the corpus, this file and the SQLite
    /// database need not all be on disk at once.
    pub fn write_columns_file(&self, path: &Path) -> Result<()> {
        let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(COLUMNS_HEADER.as_bytes())?;
        let mut seq = 0u64;
        for b in &self.batches {
            let bytes = self.read(b)?;
            for line in bytes.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                seq += 1;
                let r = Record::parse(line, || unreachable!("eventgen always writes eventID"))
                    .map_err(|e| anyhow::anyhow!("record {seq} does not parse: {e}"))?;
                let text = std::str::from_utf8(line).context("record is not UTF-8")?;
                write_columns(&mut w, seq, &r.fields, text).with_context(|| format!("columns file, record {seq}"))?;
            }
        }
        w.into_inner().map_err(|e| e.into_error()).context("write columns file")?;
        Ok(())
    }

    /// The NDJSON bytes of one batch.
    pub fn read(&self, b: &Batch) -> Result<Vec<u8>> {
        let mut buf = vec![0; b.len];
        self.file.read_exact_at(&mut buf, b.offset).context("read corpus batch")?;
        Ok(buf)
    }
}

/// `rec` with the value of its first `"awsRegion":"…"` member (eventgen writes it at the top level, before
/// any nested object that could hold one) replaced by `region`. None when the record has no such member.
fn set_top_level_region(rec: &str, region: &str) -> Option<String> {
    const KEY: &str = "\"awsRegion\":\"";
    let at = rec.find(KEY)? + KEY.len();
    let end = at + rec[at..].find('"')?;
    Some(format!("{}{region}{}", &rec[..at], &rec[end..]))
}

/// The header line of the columns file; `baselines/harness.py` checks it.
const COLUMNS_HEADER: &str = "seq\tevent_time_ms\tevent_id\tevent_name\tevent_source\tusername\taccess_key_id\t\
                              read_only\tsource_ip\terror_code\tuser_agent\tresource_types\tresource_names\t\
                              account_ids\trecord\n";

/// One line of the columns file: tab-separated, unquoted, so a tab or newline inside a value is refused.
fn write_columns(w: &mut impl Write, seq: u64, f: &IndexFields, record: &str) -> Result<()> {
    let single = |key: AttributeKey| key.values(f).first().copied().unwrap_or("");
    let multi = |key: AttributeKey| serde_json::to_string(&key.values(f)).unwrap_or_default();
    let fields: [std::borrow::Cow<'_, str>; 15] = [
        seq.to_string().into(),
        f.event_time.millis().to_string().into(),
        f.event_id.as_str().into(),
        single(AttributeKey::EventName).into(),
        single(AttributeKey::EventSource).into(),
        single(AttributeKey::Username).into(),
        single(AttributeKey::AccessKeyId).into(),
        single(AttributeKey::ReadOnly).into(),
        single(AttributeKey::SourceIpAddress).into(),
        single(AttributeKey::ErrorCode).into(),
        single(AttributeKey::UserAgent).into(),
        multi(AttributeKey::ResourceType).into(),
        multi(AttributeKey::ResourceName).into(),
        multi(AttributeKey::AccountId).into(),
        record.into(),
    ];
    for (n, v) in fields.iter().enumerate() {
        if v.contains(['\t', '\n', '\r']) {
            bail!("column {n} holds a tab or newline, which the columns file cannot carry: {v:?}");
        }
        if n > 0 {
            w.write_all(b"\t")?;
        }
        w.write_all(v.as_bytes())?;
    }
    w.write_all(b"\n")?;
    Ok(())
}

fn count(stats: &mut Stats, f: &IndexFields) {
    for key in AttributeKey::ALL {
        if key == AttributeKey::EventId || key == AttributeKey::Provenance {
            continue; // unique: sampled from whole records instead; provenance: one value for the whole corpus
        }
        let counts = stats.counts.entry(key).or_default();
        for v in key.values(f) {
            match counts.get_mut(v) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(v.to_string(), 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_generated() -> String {
        let opts = eventgen::GenOptions {
            events: 1,
            seed: 7,
            start: model::EventTime::from_millis(1_767_225_600_000),
            span_ms: SPAN_MS,
        };
        eventgen::generate(&opts).next().map(|r| r.to_string()).unwrap_or_default()
    }

    #[test]
    fn columns_line_has_every_header_column_and_the_record_last() {
        let rec = first_generated();
        let parsed = Record::parse(rec.as_bytes(), || unreachable!()).unwrap();
        let mut out = Vec::new();
        write_columns(&mut out, 1, &parsed.fields, &rec).unwrap();
        let line = String::from_utf8(out).unwrap();
        let fields: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
        assert_eq!(fields.len(), COLUMNS_HEADER.trim_end().split('\t').count());
        assert_eq!(fields[0], "1");
        assert_eq!(fields[2], parsed.fields.event_id);
        assert_eq!(*fields.last().unwrap(), rec);
    }

    #[test]
    fn region_rewrite_changes_only_the_top_level_region() {
        let rec = first_generated();
        let out = set_top_level_region(&rec, "xx-test-9").unwrap();
        let (a, b): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str(&rec).unwrap(), serde_json::from_str(&out).unwrap());
        assert_eq!(b["awsRegion"], "xx-test-9");
        let (mut a, mut b) = (a, b);
        a.as_object_mut().unwrap().remove("awsRegion");
        b.as_object_mut().unwrap().remove("awsRegion");
        assert_eq!(a, b);
        assert_eq!(set_top_level_region("{\"eventName\":\"X\"}", "r"), None);
    }

    #[test]
    fn columns_line_refuses_a_value_holding_a_tab() {
        let rec = first_generated();
        let mut parsed = Record::parse(rec.as_bytes(), || unreachable!()).unwrap();
        parsed.fields.user_agent = Some("curl\t8".into());
        let err = write_columns(&mut Vec::new(), 1, &parsed.fields, &rec).unwrap_err();
        assert!(err.to_string().contains("tab or newline"), "{err}");
    }
}
