//! The lake view: one per event data store, a `views::View` over the journal that takes in the records the
//! store's advanced event selectors select, as Arrow batches into its table's tail, flushed to Parquet
//! every [`FLUSH_ROWS`] records or [`FLUSH_EVERY`]; its checkpoint is the table manifest's, so after a
//! restart the journal feeds it again what was only in the tail.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use model::{EventFacts, Seq, StoredRecord};
use parking_lot::RwLock;
use service::trails::Selectors;
use views::{View, ViewError};

use crate::schema::{BatchBuilder, event_time_ms};
use crate::table::{Table, day_of};

/// Hard-coded: the tail is flushed to Parquet when it holds this many records …
pub const FLUSH_ROWS: usize = 256 * 1024;
/// … or when its oldest record has waited this long.
pub const FLUSH_EVERY: Duration = Duration::from_secs(30);
/// Hard-coded: how often the view looks at its flush timer, compaction and retention.
const TICK: Duration = Duration::from_secs(5);

/// What decides which records enter a store, and how long they stay; shared with the manager, which
/// replaces it on UpdateEventDataStore.
#[derive(Debug, Clone)]
pub struct Admission {
    pub selectors: Selectors,
    /// Days of eventTime kept (retention); `None` keeps everything.
    pub retention_days: Option<u32>,
    /// Whether the store takes in events now (StartIngestion / StopEventDataStoreIngestion).
    pub ingesting: bool,
}

pub struct LakeView {
    name: String,
    table: Arc<Table>,
    admission: Arc<RwLock<Admission>>,
    clock: crate::Clock,
    oldest_pending: Option<Instant>,
    last_flush: Instant,
}

impl LakeView {
    pub fn new(name: String, table: Arc<Table>, admission: Arc<RwLock<Admission>>, clock: crate::Clock) -> LakeView {
        LakeView { name, table, admission, clock, oldest_pending: None, last_flush: Instant::now() }
    }

    fn flush(&mut self) -> Result<(), ViewError> {
        self.last_flush = Instant::now();
        if let Err(e) = self.table.flush() {
            // The runner feeds again from the durable checkpoint: forget what the tail held.
            self.table.drop_tail();
            self.oldest_pending = None;
            return Err(ViewError::apply(e));
        }
        self.oldest_pending = None;
        Ok(())
    }
}

/// Converts records into one batch per day of eventTime, keeping those `admit` accepts.
pub fn batches_by_day<'a>(
    records: impl Iterator<Item = &'a str>,
    mut admit: impl FnMut(&str) -> bool,
) -> BTreeMap<String, RecordBatch> {
    let mut builders: BTreeMap<String, BatchBuilder> = BTreeMap::new();
    for json in records {
        if !admit(json) {
            continue;
        }
        // The feed hands over records the journal accepted, which parsed at ingest; one that does not parse
        // now is left out rather than stopping the view.
        let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else { continue };
        let t = event_time_ms(&value);
        builders.entry(day_of(t)).or_default().push(json, &value, t);
    }
    builders.into_iter().map(|(d, mut b)| (d, b.finish())).collect()
}

/// Hard-coded: a feed batch of at least this many records is converted on every core at once.
const PARALLEL_FROM: usize = 2048;

/// The records `selectors` select, as Arrow batches by day, in feed order. Converting is the view's main
/// cost (each record is parsed for the selectors, then for its columns), so a large batch is cut into one
/// chunk per core; a panic in a chunk is the view's panic, as it would be on one thread.
fn convert(items: &[(Seq, StoredRecord)], selectors: &Selectors) -> Vec<(String, RecordBatch)> {
    let one = |chunk: &[(Seq, StoredRecord)]| -> Vec<(String, RecordBatch)> {
        batches_by_day(chunk.iter().map(|(_, r)| r.json()), |json| {
            EventFacts::parse(json).is_ok_and(|f| selectors.matches(&f))
        })
        .into_iter()
        .collect()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || items.len() < PARALLEL_FROM {
        return one(items);
    }
    std::thread::scope(|s| {
        let chunks: Vec<_> = items.chunks(items.len().div_ceil(cores)).map(|c| s.spawn(move || one(c))).collect();
        chunks.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

impl View for LakeView {
    type Item = StoredRecord;

    fn name(&self) -> &str {
        &self.name
    }

    fn checkpoint(&self) -> Option<Seq> {
        self.table.checkpoint().map(Seq)
    }

    fn apply(&mut self, items: Vec<(Seq, StoredRecord)>, through: Seq) -> Result<(), ViewError> {
        let admission = self.admission.read().clone();
        let by_day = if admission.ingesting { convert(&items, &admission.selectors) } else { Vec::new() };
        if !by_day.is_empty() && self.oldest_pending.is_none() {
            self.oldest_pending = Some(Instant::now());
        }
        self.table.append(by_day, through.0);
        if self.table.tail_rows() >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), ViewError> {
        // Records waiting that long are flushed; with none waiting, the checkpoint still moves past what the
        // selectors left out (a manifest write, no file), so a restart does not read it all again.
        if self.oldest_pending.unwrap_or(self.last_flush).elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        let now = (self.clock)().millis();
        let keep_from = self.admission.read().retention_days.map(|d| now - i64::from(d) * 86_400_000);
        self.table.maintain(now, keep_from).map_err(ViewError::apply)?;
        Ok(())
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(TICK)
    }

    fn close(&mut self) -> Result<(), ViewError> {
        self.flush()
    }
}
