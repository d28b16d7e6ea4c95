//! The journal as a feed of decoded records, for every view but the index (which is fed the fields parsed
//! at ingest): trail delivery, Insights, a columnar lake.

use std::time::Duration;

use journal::Journal;
use model::{Seq, StoredRecord};

use crate::{Feed, ViewError};

/// Reads durable journal records in seq order and reads each payload as a [`StoredRecord`] (the provenance
/// frame, then the record's JSON as stored, checked to be UTF-8 and not parsed: a view parses what it needs,
/// or the whole record with [`StoredRecord::into_record`]). A record that cannot be decoded is logged and left
/// out, so views move past it (their runner counts it as skipped). Cheap to share: one per store.
pub struct JournalFeed {
    journal: Journal,
}

impl JournalFeed {
    pub fn new(journal: Journal) -> JournalFeed {
        JournalFeed { journal }
    }
}

impl Feed for JournalFeed {
    type Item = StoredRecord;

    fn durable(&self) -> Option<Seq> {
        self.journal.durable_seq()
    }

    fn wait_beyond(&self, seq: Option<Seq>, timeout: Duration) -> Option<Seq> {
        self.journal.wait_durable_after(seq, timeout)
    }

    fn read(&self, from: Seq, to: Seq) -> Result<Vec<(Seq, StoredRecord)>, ViewError> {
        let mut out = Vec::with_capacity((to.0.saturating_sub(from.0) + 1).min(1 << 16) as usize);
        for item in self.journal.scan(from) {
            let (seq, payload) = item?;
            if seq > to {
                break;
            }
            match StoredRecord::from_payload(payload) {
                Ok(r) => out.push((seq, r)),
                // Every stored record was validated before it was written, so this is damage, not bad input.
                Err(e) => tracing::error!(%seq, error = %e, "stored record cannot be decoded; views move past it"),
            }
        }
        Ok(out)
    }
}
