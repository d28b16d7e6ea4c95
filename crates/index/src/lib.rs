//! The event-history index: a rebuildable view over the journal answering lookups by attribute, time and category.
//!
//! Storage is one fjall database with three keyspaces (byte layouts in `docs/formats/index.md`):
//! * `postings` — one empty-valued key per (record, attribute value), plus one per record in its category's
//!   "all events" list, each ending in an order suffix that sorts newest first;
//! * `event_ids` — eventId → (seq, time, category) for the first record that carried the id;
//! * `meta` — the checkpoint: the last journal seq applied.
//!
//! Crash argument: [`EventIndex::apply`] writes a whole batch — postings, eventId entries and the new
//! checkpoint — as one fjall write batch. fjall logs a batch as a single checksummed journal entry and replays
//! only whole entries, in write order, on recovery; memtables are flushed to tables before their journal is
//! dropped. So after any crash the index holds exactly the batches up to some point, and the checkpoint read
//! back is the one written with the last surviving batch: it never claims a seq whose postings were lost. The
//! index does not fsync per batch (the journal is the truth); the caller replays the journal after
//! [`EventIndex::checkpoint`], and replay is idempotent because seqs at or below the checkpoint are skipped.

mod key;
mod lookup;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use model::{AttributeKey, EventQuery, EventTime, IndexFields, Seq};
use parking_lot::Mutex;

use crate::key::OrderKey;

/// A place in the newest-first order: the next page starts strictly after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub time: EventTime,
    pub seq: Seq,
}

/// One matching record: its journal seq and event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub seq: Seq,
    pub time: EventTime,
}

impl Hit {
    /// The cursor to pass as `after` to continue right after this hit.
    pub fn position(&self) -> Position {
        Position { time: self.time, seq: self.seq }
    }
}

/// One page of a lookup, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Page {
    pub hits: Vec<Hit>,
    /// At least one further match exists after the last hit.
    pub more: bool,
}

impl Page {
    /// Where the next page starts, if there is one.
    pub fn next_position(&self) -> Option<Position> {
        if self.more { self.hits.last().map(Hit::position) } else { None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index storage failed to {op}")]
    Storage {
        op: &'static str,
        #[source]
        source: fjall::Error,
    },
    #[error("index is corrupted: {reason}")]
    Corrupted { reason: String },
    #[error("records must be applied in increasing seq order: seq {seq} came after seq {previous}")]
    OutOfOrder { seq: Seq, previous: Seq },
}

fn storage(op: &'static str) -> impl FnOnce(fjall::Error) -> IndexError {
    move |source| IndexError::Storage { op, source }
}

const CHECKPOINT_KEY: &[u8] = b"checkpoint";

/// Block cache for index and data blocks. Hard-coded: postings at 10 M events are about 1 GB and lookups touch
/// a few blocks per stream, so a modest cache plus the OS page cache suffices within the 1 GiB RSS budget.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The event-history index. `Send + Sync`: lookups run concurrently; `apply` calls are serialised internally.
pub struct EventIndex {
    db: Database,
    postings: Keyspace,
    event_ids: Keyspace,
    meta: Keyspace,
    /// Last applied seq, 0 = none (journal seqs start at 1).
    checkpoint: AtomicU64,
    /// Serialises writers: the duplicate-eventId check and the checkpoint must see every earlier batch.
    writer: Mutex<()>,
}

fn postings_options() -> KeyspaceCreateOptions {
    use fjall::config::{BlockSizePolicy, CompressionPolicy, FilterPolicy, RestartIntervalPolicy};
    KeyspaceCreateOptions::default()
        // Postings are only ever range-scanned: bloom filters would cost bytes and never help.
        .filter_policy(FilterPolicy::disabled())
        // Keys within a list differ only in their last few bytes, so blocks compress well with lz4 everywhere
        // (fjall's default leaves the first two levels uncompressed).
        .data_block_compression_policy(CompressionPolicy::all(fjall::CompressionType::Lz4))
        .data_block_size_policy(BlockSizePolicy::all(16 * 1024))
        .data_block_restart_interval_policy(RestartIntervalPolicy::all(32))
        .max_memtable_size(32 * 1024 * 1024)
}

fn event_ids_options() -> KeyspaceCreateOptions {
    use fjall::config::CompressionPolicy;
    // Point reads by id: keep fjall's bloom filters. Keys are random, so blocks compress little, but the values'
    // order keys share their leading bytes with neighbours in time.
    KeyspaceCreateOptions::default().data_block_compression_policy(CompressionPolicy::all(fjall::CompressionType::Lz4))
}

impl EventIndex {
    /// Opens (or creates) the index stored in `dir`.
    pub fn open(dir: &Path) -> Result<EventIndex, IndexError> {
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES)
            // The journal only needs to cover unflushed memtables; fjall's default (512 MiB) would add ~50
            // bytes/event at 10 M events. 64 MiB is fjall's minimum.
            .max_journaling_size(64 * 1024 * 1024)
            .open()
            .map_err(storage("open database"))?;
        let postings = db.keyspace("postings", postings_options).map_err(storage("open postings"))?;
        let event_ids = db.keyspace("event_ids", event_ids_options).map_err(storage("open event ids"))?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default).map_err(storage("open meta"))?;
        let checkpoint = match meta.get(CHECKPOINT_KEY).map_err(storage("read checkpoint"))? {
            None => 0,
            Some(v) => {
                let b: [u8; 8] = v[..].try_into().map_err(|_| IndexError::Corrupted {
                    reason: format!("checkpoint value of {} bytes, expected 8", v.len()),
                })?;
                u64::from_be_bytes(b)
            }
        };
        Ok(EventIndex { db, postings, event_ids, meta, checkpoint: AtomicU64::new(checkpoint), writer: Mutex::new(()) })
    }

    /// The last journal seq applied, if any.
    pub fn checkpoint(&self) -> Option<Seq> {
        match self.checkpoint.load(Ordering::Acquire) {
            0 => None,
            s => Some(Seq(s)),
        }
    }

    /// Applies records in seq order; seqs <= checkpoint are skipped (idempotent replay); the checkpoint moves to
    /// the last seq atomically with the postings.
    pub fn apply(&self, batch: &[(Seq, &IndexFields)]) -> Result<(), IndexError> {
        let _writer = self.writer.lock();
        let checkpoint = self.checkpoint.load(Ordering::Acquire);
        let mut wb = self.db.batch();
        let mut ids_in_batch: HashSet<Vec<u8>> = HashSet::new();
        let mut last: Option<Seq> = None;
        let mut buf = Vec::with_capacity(512);
        for &(seq, f) in batch {
            if seq.0 <= checkpoint {
                continue;
            }
            if let Some(previous) = last
                && seq <= previous
            {
                return Err(IndexError::OutOfOrder { seq, previous });
            }
            last = Some(seq);
            let order = OrderKey::new(f.event_time, seq);
            buf.clear();
            buf.extend_from_slice(&key::all_prefix(f.category));
            order.encode_into(&mut buf);
            wb.insert(&self.postings, &buf[..], []);
            for k in AttributeKey::ALL {
                if k == AttributeKey::EventId {
                    continue; // the eventId map below answers EventId equalities
                }
                for v in k.values(f) {
                    buf.clear();
                    key::posting_prefix_into(&mut buf, f.category, k, v.as_bytes());
                    order.encode_into(&mut buf);
                    wb.insert(&self.postings, &buf[..], []);
                }
            }
            let id_key = key::event_id_key(&f.event_id);
            let seen = ids_in_batch.contains(&id_key)
                || self.event_ids.contains_key(&id_key).map_err(storage("read event id"))?;
            if seen {
                // Keep the first mapping; a later record with the same id still matches EventId lookups, through a
                // posting, as `EventQuery::matches` says it should.
                let prefix = key::posting_prefix(f.category, AttributeKey::EventId, f.event_id.as_bytes());
                wb.insert(&self.postings, key::with_order(&prefix, order), []);
            } else {
                wb.insert(&self.event_ids, id_key.clone(), key::event_id_value(seq, f.event_time, f.category));
                ids_in_batch.insert(id_key);
            }
        }
        let Some(last) = last else {
            return Ok(());
        };
        wb.insert(&self.meta, CHECKPOINT_KEY, last.0.to_be_bytes());
        wb.commit().map_err(storage("commit batch"))?;
        self.checkpoint.store(last.0, Ordering::Release);
        Ok(())
    }

    /// One page of matches of `query`, newest first, starting strictly after `after`.
    pub fn lookup(&self, query: &EventQuery, limit: usize, after: Option<Position>) -> Result<Page, IndexError> {
        let snapshot = self.db.snapshot();
        let tables = lookup::Tables { snapshot: &snapshot, postings: &self.postings, event_ids: &self.event_ids };
        lookup::lookup(&tables, query, limit, after)
    }

    /// The seq of the first record indexed with this eventId.
    pub fn find_event_id(&self, event_id: &str) -> Result<Option<Seq>, IndexError> {
        let Some(v) = self.event_ids.get(key::event_id_key(event_id)).map_err(storage("read event id"))? else {
            return Ok(None);
        };
        let (order, _) = key::decode_event_id_value(&v)
            .ok_or_else(|| IndexError::Corrupted { reason: format!("event id map value of {} bytes", v.len()) })?;
        Ok(Some(order.seq))
    }

    /// Makes everything applied so far durable (fsync of fjall's journal).
    pub fn persist(&self) -> Result<(), IndexError> {
        self.db.persist(PersistMode::SyncAll).map_err(storage("persist"))
    }

    /// Bytes on disk: tables of every keyspace plus fjall's journal. 0 if the sizes cannot be read.
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// Bytes on disk per part (`journal`, `postings`, `event_ids`, `meta`), for size reports.
    pub fn disk_bytes_by_part(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("journal", self.db.journal_disk_space().unwrap_or(0)),
            ("postings", self.postings.disk_space()),
            ("event_ids", self.event_ids.disk_space()),
            ("meta", self.meta.disk_space()),
        ]
    }

    /// Flushes memtables and runs a major compaction of every keyspace, so that `disk_bytes` reflects the
    /// steady-state size. Slow; for benchmarks and maintenance.
    pub fn compact(&self) -> Result<(), IndexError> {
        for ks in [&self.postings, &self.event_ids, &self.meta] {
            ks.rotate_memtable_and_wait().map_err(storage("flush memtable"))?;
            ks.major_compact().map_err(storage("compact"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::EventIndex>();
    }
}
