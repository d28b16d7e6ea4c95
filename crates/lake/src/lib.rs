//! The columnar lake: every event data store is a view of the journal (`view.rs`) writing the records its
//! selectors select into its own table (`table.rs`: Parquet, zstd, day partitions, a manifest, the tail of
//! records not yet flushed), with the schema of `schema.rs`; SQL over a store's files plus its tail runs on
//! DataFusion (`sql.rs`), one query at a time per pool slot, in the background (`queries.rs`).
//!
//! Architecture invariant: DataFusion, arrow and parquet live in this crate (and the crates that call it);
//! nothing below it in the dependency graph links them.
//!
//! Layout under the lake folder (`<data-dir>/lake`): `eventdatastore=<id>/manifest.json` and
//! `eventdatastore=<id>/date=YYYY-MM-DD/*.parquet` (docs/formats/lake.md).

mod count;
mod eager;
mod pushdown;
pub mod queries;
pub mod schema;
pub mod sql;
pub mod table;
pub mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use views::{JournalFeed, RunOptions, ViewHandle, ViewSet};

pub use queries::{QueryEngine, QueryError, QueryInfo, QueryStatus, ResultsPage};
pub use table::{Snapshot, Table, TableError};
pub use view::{Admission, LakeView};

/// Source of "now" (epoch ms), injected so tests can move the clock.
pub type Clock = Arc<dyn Fn() -> model::EventTime + Send + Sync>;

/// One event data store as the lake needs it: its id and what enters it.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    pub id: String,
    pub admission: Admission,
}

struct Running {
    table: Arc<Table>,
    admission: Arc<RwLock<Admission>>,
    handle: ViewHandle,
}

/// The running lake views, one per event data store, started and stopped as stores come and go.
pub struct Lake {
    dir: PathBuf,
    feed: Arc<JournalFeed>,
    views: Arc<ViewSet>,
    clock: Clock,
    stores: Mutex<HashMap<String, Running>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("cannot start the lake view of event data store {id}: {source}")]
    View {
        id: String,
        #[source]
        source: views::ViewError,
    },
}

impl Lake {
    pub fn new(dir: &Path, feed: Arc<JournalFeed>, views: Arc<ViewSet>, clock: Clock) -> Arc<Lake> {
        Arc::new(Lake { dir: dir.to_path_buf(), feed, views, clock, stores: Mutex::new(HashMap::new()) })
    }

    /// The folder of a store's table.
    pub fn store_dir(&self, id: &str) -> PathBuf {
        self.dir.join(format!("eventdatastore={id}"))
    }

    /// Makes the running views match `specs`: starts a view for a new store, gives a running one its new
    /// admission, stops the views of stores no longer listed, and removes the tables of those not in `keep`
    /// either (a deleted store keeps its data until it is purged).
    pub fn reconcile(&self, specs: &[StoreSpec], keep: &[String]) -> Result<(), LakeError> {
        let mut stores = self.stores.lock();
        for spec in specs {
            if let Some(r) = stores.get(&spec.id) {
                *r.admission.write() = spec.admission.clone();
                continue;
            }
            let table = Table::open(&self.store_dir(&spec.id))?;
            let admission = Arc::new(RwLock::new(spec.admission.clone()));
            let view = LakeView::new(format!("lake:{}", spec.id), table.clone(), admission.clone(), self.clock.clone());
            let opts = RunOptions { background: true, ..RunOptions::default() };
            let handle = views::spawn(view, self.feed.clone(), &self.views, opts)
                .map_err(|source| LakeError::View { id: spec.id.clone(), source })?;
            stores.insert(spec.id.clone(), Running { table, admission, handle });
        }
        let gone: Vec<String> = stores.keys().filter(|id| !specs.iter().any(|s| &s.id == *id)).cloned().collect();
        for id in gone {
            if let Some(r) = stores.remove(&id) {
                r.handle.stop();
            }
        }
        // Tables of stores that are gone for good.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_prefix("eventdatastore=")
                    && !keep.iter().any(|k| k == id)
                    && !stores.contains_key(id)
                    && let Err(err) = std::fs::remove_dir_all(e.path())
                {
                    tracing::warn!(store = %id, error = %err, "cannot remove the lake table of a purged event data store");
                }
            }
        }
        Ok(())
    }

    pub fn table(&self, id: &str) -> Option<Arc<Table>> {
        self.stores.lock().get(id).map(|r| r.table.clone())
    }

    /// Ids of the stores with a running view.
    pub fn store_ids(&self) -> Vec<String> {
        self.stores.lock().keys().cloned().collect()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The journal's last durable seq (a query waits until its stores have taken in that much).
    pub fn durable_seq(&self) -> Option<model::Seq> {
        use views::Feed;
        self.feed.durable()
    }

    /// Stops every view (each flushes its tail).
    pub fn shutdown(&self) {
        let stores: Vec<Running> = self.stores.lock().drain().map(|(_, r)| r).collect();
        for r in stores {
            r.handle.stop();
        }
    }
}

/// Hard-coded: how long a query waits for its stores to take in what the journal had acknowledged when
/// it started, before it runs on what they have.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(30);
