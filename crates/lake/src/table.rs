//! One event data store's table on disk: Parquet files (zstd) in Hive-style day partitions
//! (`date=YYYY-MM-DD/`) named by the manifest, which is the only list of live files and carries the view's
//! checkpoint; plus the tail, the records taken in since the last flush, held as Arrow batches so a query
//! sees them. Format and crash analysis: docs/formats/lake.md.
//!
//! Writes: a file is written to a temporary name, fsync'd and renamed into its partition before the manifest
//! naming it is replaced (atomic-file); a file the manifest does not name is debris of a crash and is removed
//! at open. Compaction writes the merged file the same way and swaps it for its inputs in one manifest write;
//! the inputs are deleted only after a grace period, so a query that read the older manifest still finds them.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use parking_lot::{Condvar, Mutex};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::schema::{self, SCHEMA_VERSION};

const MANIFEST: &str = "manifest.json";
const MANIFEST_VERSION: u32 = 1;
/// Hard-coded: rows per Parquet row group (the unit of pruning by statistics).
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Hard-coded: a file with fewer rows than this is "small"; a day with [`COMPACT_AT`] small files has them
/// merged into one.
const SMALL_FILE_ROWS: u64 = 512 * 1024;
const COMPACT_AT: usize = 8;
/// Hard-coded: how long a file replaced by compaction (or dropped by retention) stays on disk for queries
/// that planned against the older manifest.
const GRACE_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lake manifest {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("writing Parquet file {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("building a batch for {path}: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: datafusion::arrow::error::ArrowError,
    },
}

/// A live Parquet file of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Relative to the table's folder: `date=YYYY-MM-DD/<name>.parquet`.
    pub path: String,
    /// The partition's day (`YYYY-MM-DD`, UTC, of eventTime).
    pub date: String,
    pub rows: u64,
    pub bytes: u64,
    /// Smallest and largest eventTime in the file (epoch ms).
    pub min_time: i64,
    pub max_time: i64,
}

/// A file on its way out: kept until `delete_after` (epoch ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retired {
    pub path: String,
    pub delete_after: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: u32,
    pub schema_version: u32,
    /// The last journal seq whose records are in the files (`None`: none taken in yet).
    pub checkpoint: Option<u64>,
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub retired: Vec<Retired>,
    /// Counter for unique file names.
    pub next_file: u64,
}

/// What a query reads: the live files (absolute paths) and the tail.
#[derive(Clone)]
pub struct Snapshot {
    pub files: Vec<(PathBuf, FileEntry)>,
    pub tail: Vec<RecordBatch>,
}

impl Snapshot {
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|(_, f)| f.rows).sum::<u64>() + self.tail.iter().map(|b| b.num_rows() as u64).sum::<u64>()
    }
}

struct State {
    manifest: Manifest,
    /// Batches taken in since the last flush, by day.
    tail: BTreeMap<String, Vec<RecordBatch>>,
    /// The last seq taken in (flushed or in the tail).
    applied: Option<u64>,
}

/// One event data store's table. Written by its view (one writer), read by queries (a snapshot under a lock).
pub struct Table {
    dir: PathBuf,
    state: Mutex<State>,
    applied_changed: Condvar,
}

impl Table {
    /// Opens (or creates) the table in `dir`, removing files the manifest does not name.
    pub fn open(dir: &Path) -> Result<Arc<Table>, TableError> {
        std::fs::create_dir_all(dir).map_err(|source| TableError::Io { action: "create", path: dir.into(), source })?;
        let path = dir.join(MANIFEST);
        let manifest = match std::fs::read(&path) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| TableError::Corrupt { path: path.clone(), reason: e.to_string() })?;
                if m.version != MANIFEST_VERSION || m.schema_version != SCHEMA_VERSION {
                    return Err(TableError::Corrupt {
                        path,
                        reason: format!(
                            "manifest version {} schema {} (this build reads {MANIFEST_VERSION} / {SCHEMA_VERSION})",
                            m.version, m.schema_version
                        ),
                    });
                }
                m
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Manifest { version: MANIFEST_VERSION, schema_version: SCHEMA_VERSION, ..Manifest::default() }
            }
            Err(source) => return Err(TableError::Io { action: "read", path, source }),
        };
        remove_debris(dir, &manifest);
        let applied = manifest.checkpoint;
        Ok(Arc::new(Table {
            dir: dir.to_path_buf(),
            state: Mutex::new(State { manifest, tail: BTreeMap::new(), applied }),
            applied_changed: Condvar::new(),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The durable checkpoint (what the files hold).
    pub fn checkpoint(&self) -> Option<u64> {
        self.state.lock().manifest.checkpoint
    }

    pub fn manifest(&self) -> Manifest {
        self.state.lock().manifest.clone()
    }

    /// The live files and the tail, as one consistent view.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.state.lock();
        Snapshot {
            files: s.manifest.files.iter().map(|f| (self.dir.join(&f.path), f.clone())).collect(),
            tail: s.tail.values().flatten().cloned().collect(),
        }
    }

    /// Waits until records through `seq` are taken in (tail or files), at most `timeout`; whether they are.
    pub fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut s = self.state.lock();
        while s.applied.is_none_or(|a| a < seq) {
            if self.applied_changed.wait_until(&mut s, deadline).timed_out() {
                return s.applied.is_some_and(|a| a >= seq);
            }
        }
        true
    }

    /// Takes batches of [`schema::schema`] (by day, in feed order) into the tail and moves the applied seq to `through`.
    pub fn append(&self, by_day: impl IntoIterator<Item = (String, RecordBatch)>, through: u64) {
        // Held as queries read it (strings as views): converted once here, not by every query, and before
        // the lock that queries take for their snapshot.
        let batches: Vec<(String, RecordBatch)> = by_day
            .into_iter()
            .filter(|(_, b)| b.num_rows() > 0)
            .map(|(day, b)| (day, schema::to_read(&b).expect("the lake's own batch casts to its view types")))
            .collect();
        let mut s = self.state.lock();
        for (day, batch) in batches {
            s.tail.entry(day).or_default().push(batch);
        }
        s.applied = Some(through);
        drop(s);
        self.applied_changed.notify_all();
    }

    pub fn tail_rows(&self) -> usize {
        self.state.lock().tail.values().flatten().map(RecordBatch::num_rows).sum()
    }

    /// Forgets the tail (after a failed flush: the view is fed again from the durable checkpoint).
    pub fn drop_tail(&self) {
        let mut s = self.state.lock();
        s.tail.clear();
        s.applied = s.manifest.checkpoint;
    }

    /// Writes the tail as one file per day and makes them live with the checkpoint in one manifest write.
    pub fn flush(&self) -> Result<(), TableError> {
        let (tail, through, mut manifest) = {
            let s = self.state.lock();
            (s.tail.clone(), s.applied, s.manifest.clone())
        };
        if through == manifest.checkpoint {
            return Ok(());
        }
        for (day, batches) in &tail {
            let entry = self.write_file(&mut manifest, day, batches, "part")?;
            manifest.files.push(entry);
        }
        manifest.checkpoint = through;
        self.install(manifest, |s| {
            s.tail.clear();
        })
    }

    /// Merges each day's small files into one when it has [`COMPACT_AT`] of them; deletes retired files past
    /// their grace period and drops days older than `keep_from_ms` (retention). Returns how many files it
    /// merged.
    pub fn maintain(&self, now_ms: i64, keep_from_ms: Option<i64>) -> Result<usize, TableError> {
        let mut manifest = self.manifest();
        let mut changed = false;
        let mut merged = 0;
        // Retention: whole days whose newest event is before the cut.
        if let Some(cut) = keep_from_ms {
            let (old, keep): (Vec<_>, Vec<_>) = manifest.files.drain(..).partition(|f| f.max_time < cut);
            manifest.files = keep;
            for f in old {
                manifest.retired.push(Retired { path: f.path, delete_after: now_ms + GRACE_MS });
                changed = true;
            }
        }
        let mut small: BTreeMap<String, Vec<FileEntry>> = BTreeMap::new();
        for f in &manifest.files {
            if f.rows < SMALL_FILE_ROWS {
                small.entry(f.date.clone()).or_default().push(f.clone());
            }
        }
        for (day, files) in small.into_iter().filter(|(_, f)| f.len() >= COMPACT_AT) {
            let mut batches = Vec::new();
            for f in &files {
                batches.extend(read_file(&self.dir.join(&f.path))?);
            }
            let entry = self.write_file(&mut manifest, &day, &batches, "compact")?;
            manifest.files.retain(|f| !files.contains(f));
            manifest.files.push(entry);
            for f in files {
                manifest.retired.push(Retired { path: f.path, delete_after: now_ms + GRACE_MS });
                merged += 1;
            }
            changed = true;
        }
        let (due, later): (Vec<_>, Vec<_>) = manifest.retired.drain(..).partition(|r| r.delete_after <= now_ms);
        manifest.retired = later;
        changed |= !due.is_empty();
        if changed {
            manifest.files.sort_by(|a, b| (&a.date, &a.path).cmp(&(&b.date, &b.path)));
            self.install(manifest, |_| {})?;
            for r in due {
                let _ = std::fs::remove_file(self.dir.join(&r.path));
            }
        }
        Ok(merged)
    }

    /// Replaces the manifest on disk, then in memory (with `also` applied to the state under the same lock).
    fn install(&self, manifest: Manifest, also: impl FnOnce(&mut State)) -> Result<(), TableError> {
        let path = self.dir.join(MANIFEST);
        let bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| TableError::Corrupt { path: path.clone(), reason: e.to_string() })?;
        let mut s = self.state.lock();
        atomic_file::write_atomic(&path, &bytes, 0o600).map_err(|e| TableError::Io {
            action: "write",
            path: path.clone(),
            source: e.source,
        })?;
        s.manifest = manifest;
        also(&mut s);
        Ok(())
    }

    /// Writes `batches` as one Parquet file of the day's partition (temporary name, fsync, rename, folder
    /// fsync) and returns its entry.
    fn write_file(
        &self,
        manifest: &mut Manifest,
        day: &str,
        batches: &[RecordBatch],
        kind: &str,
    ) -> Result<FileEntry, TableError> {
        let rel = format!("date={day}/{kind}-{:08}.parquet", manifest.next_file);
        manifest.next_file += 1;
        let path = self.dir.join(&rel);
        let folder = path.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&folder).map_err(|source| TableError::Io {
            action: "create",
            path: folder.clone(),
            source,
        })?;
        let batch = file_batch(batches).map_err(|source| TableError::Arrow { path: path.clone(), source })?;
        let (min_time, max_time) = time_range(&batch);
        let bytes = write_parquet(&path, &batch)?;
        File::open(&folder).and_then(|d| d.sync_all()).map_err(|source| TableError::Io {
            action: "fsync",
            path: folder,
            source,
        })?;
        Ok(FileEntry { path: rel, date: day.to_string(), rows: batch.num_rows() as u64, bytes, min_time, max_time })
    }
}

/// Columns holding an id unique to its event.
const ID_COLUMNS: &[&str] = &["eventid", "requestid", "sharedeventid"];

/// The page size of [`ID_COLUMNS`] (Parquet's default is 1 MiB).
const ID_PAGE_BYTES: usize = 64 << 10;

/// zstd, row groups of [`ROW_GROUP_ROWS`], statistics on every column (the default), bloom filters on the
/// needle columns (eventid, sourceipaddress), the schema version in the key-value metadata.
///
/// [`ID_COLUMNS`] and the whole record (`eventjson`) have no dictionary: one would only fill up and give way
/// to plain pages, after a dictionary page of a megabyte that every read of the column decompresses. The ids
/// have small pages too: a needle query (`SELECT eventID … WHERE sourceIPAddress = …`) decompresses the
/// pages holding the rows it matched, ~64 KiB instead of ~2 MiB (dictionary and page) per matched row. The
/// whole record has no statistics (the least and greatest JSON text of a page prune nothing).
pub fn writer_properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_column_dictionary_enabled(ColumnPath::from("eventjson"), false)
        .set_column_statistics_enabled(ColumnPath::from("eventjson"), EnabledStatistics::None);
    for c in ID_COLUMNS {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(*c), false)
            .set_column_data_page_size_limit(ColumnPath::from(*c), ID_PAGE_BYTES);
    }
    builder
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Each file is sorted by event time: as deltas, a timestamp takes a byte or two before zstd instead of
        // eight, and zstd has a tenth as much to decompress (most of what a time-range query read).
        .set_column_encoding(ColumnPath::from("eventtime"), Encoding::DELTA_BINARY_PACKED)
        .set_column_dictionary_enabled(ColumnPath::from("eventtime"), false)
        .set_column_bloom_filter_enabled(ColumnPath::from("eventid"), true)
        .set_column_bloom_filter_enabled(ColumnPath::from("sourceipaddress"), true)
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "opentrail.lake.schema_version".to_string(),
            SCHEMA_VERSION.to_string(),
        )]))
        .build()
}

fn read_file(path: &Path) -> Result<Vec<RecordBatch>, TableError> {
    let file = File::open(path).map_err(|source| TableError::Io { action: "open", path: path.into(), source })?;
    let pq = |source| TableError::Parquet { path: path.into(), source };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?.build().map_err(pq)?;
    reader.map(|b| b.map_err(|source| TableError::Arrow { path: path.into(), source })).collect()
}

/// The batches of one file as one batch sorted by event time, its strings as views: the file's embedded
/// Arrow schema then says `Utf8View` for every string, nested ones too, and the Parquet reader fills views
/// into its pages instead of copying each value out (docs/formats/lake.md). Batches from the tail (views
/// already) and from files being compacted (views, or plain strings in files written before) are accepted.
fn file_batch(batches: &[RecordBatch]) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let batches = batches.iter().map(schema::to_read).collect::<Result<Vec<_>, _>>()?;
    sort_by_time(concat_batches(&schema::read_schema(), &batches)?)
}

fn sort_by_time(batch: RecordBatch) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::compute::{SortOptions, sort_to_indices, take_record_batch};
    let indices = sort_to_indices(batch.column(0), Some(SortOptions { descending: false, nulls_first: true }), None)?;
    take_record_batch(&batch, &indices)
}

fn time_range(batch: &RecordBatch) -> (i64, i64) {
    use datafusion::arrow::array::{Array, TimestampMillisecondArray};
    let Some(t) = batch.column(0).as_any().downcast_ref::<TimestampMillisecondArray>() else { return (0, 0) };
    let values = (0..t.len()).filter(|i| t.is_valid(*i)).map(|i| t.value(i));
    values
        .fold(None, |acc: Option<(i64, i64)>, v| Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v)))))
        .unwrap_or((0, 0))
}

/// Removes Parquet files and temporaries under `date=…/` that the manifest neither names nor retires.
fn remove_debris(dir: &Path, manifest: &Manifest) {
    let known: std::collections::HashSet<&str> = manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(manifest.retired.iter().map(|r| r.path.as_str()))
        .collect();
    let Ok(days) = std::fs::read_dir(dir) else { return };
    for day in days.flatten() {
        let name = day.file_name().to_string_lossy().into_owned();
        if !name.starts_with("date=") || !day.path().is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(day.path()) else { continue };
        for f in files.flatten() {
            let rel = format!("{name}/{}", f.file_name().to_string_lossy());
            if !known.contains(rel.as_str()) {
                tracing::warn!(file = %f.path().display(), "removing a lake file no manifest names (crash debris)");
                let _ = std::fs::remove_file(f.path());
            }
        }
    }
}

/// The partition day (`YYYY-MM-DD`, UTC) of an eventTime; records without one go to `1970-01-01`.
pub fn day_of(event_time_ms: Option<i64>) -> String {
    let ms = event_time_ms.unwrap_or(0);
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d").to_string()
}

/// Writes `records` (CloudTrail records as JSON text) as one Parquet file of the lake's schema at `path`
/// (temporary name, fsync, rename): `opentrail export --format parquet`. Returns the rows written; records
/// that are not JSON objects are left out.
pub fn write_records(path: &Path, records: &[String]) -> Result<u64, TableError> {
    let by_day = crate::view::batches_by_day(records.iter().map(String::as_str), |_| true);
    let batches: Vec<RecordBatch> = by_day.into_values().collect();
    let batch = file_batch(&batches).map_err(|source| TableError::Arrow { path: path.into(), source })?;
    write_parquet(path, &batch)?;
    Ok(batch.num_rows() as u64)
}

/// Writes `batch` (from [`file_batch`]) as the Parquet file `path`: under a temporary name, fsynced, then
/// renamed into place. Returns the file's size; the caller fsyncs the folder if the rename must be durable.
fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<u64, TableError> {
    let tmp = atomic_file::tmp_path(path);
    let io = |action, source| TableError::Io { action, path: tmp.clone(), source };
    let file = File::create(&tmp).map_err(|e| io("create", e))?;
    let pq = |source| TableError::Parquet { path: path.into(), source };
    let mut w = ArrowWriter::try_new(file, schema::read_schema(), Some(writer_properties())).map_err(pq)?;
    w.write(batch).map_err(pq)?;
    let file = w.into_inner().map_err(pq)?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    let bytes = file.metadata().map_err(|e| io("stat", e))?.len();
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| io("rename", e))?;
    Ok(bytes)
}
