//! Views other than the index, plugged into the store the way trail delivery, Insights or a lake are: they
//! read the journal through the store's record feed, show up in its metrics, and never hold back ingest.

use std::sync::Arc;
use std::time::Duration;

use model::{Provenance, Record, Seq};
use parking_lot::Mutex;
use service::{EventStore, INDEX_VIEW, IngestItem, Metrics, StoreOptions};
use views::{RunOptions, View, ViewError};

fn record(i: u32) -> IngestItem {
    let text = format!(
        r#"{{"eventID":"ev-{i}","eventTime":"2020-01-01T09:00:{:02}Z","eventSource":"iam.amazonaws.com","eventName":"GetUser"}}"#,
        i % 60
    );
    let mut record = Record::parse(text.as_bytes(), || unreachable!()).unwrap();
    record.fields.provenance = Provenance::Ingest { principal: "arn:aws:iam::123456789012:user/w".into() };
    IngestItem { record, client_id: true }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Keeps every record it is given (in memory: its checkpoint starts from nothing).
struct Keep {
    name: &'static str,
    seen: Arc<Mutex<Vec<(Seq, String, Provenance)>>>,
    checkpoint: Option<Seq>,
    fail: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the destination is down")]
struct Down;

impl View for Keep {
    type Item = model::StoredRecord;

    fn name(&self) -> &str {
        self.name
    }

    fn checkpoint(&self) -> Option<Seq> {
        self.checkpoint
    }

    fn apply(&mut self, items: Vec<(Seq, model::StoredRecord)>, through: Seq) -> Result<(), ViewError> {
        if self.fail {
            return Err(ViewError::apply(Down));
        }
        let mut seen = self.seen.lock();
        for (seq, r) in items {
            let (json, fields) = r.into_record().unwrap().into_parts();
            assert!(json.contains(&fields.event_id));
            seen.push((seq, fields.event_id, fields.provenance));
        }
        self.checkpoint = Some(through);
        Ok(())
    }
}

#[test]
fn a_view_added_to_the_store_reads_every_record_with_its_provenance_and_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let store = EventStore::open(StoreOptions::new(dir.path()), Arc::new(Metrics::default())).unwrap();
    // Records stored before the view starts are read from the journal like the ones after.
    rt.block_on(store.ingest((0..5).map(record).collect())).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let view = Keep { name: "trail:audit", seen: seen.clone(), checkpoint: None, fail: false };
    let handle = views::spawn(view, store.record_feed(), store.views(), RunOptions::default()).unwrap();
    let out = rt.block_on(store.ingest((5..12).map(record).collect())).unwrap();
    assert!(handle.wait_for(out.last_seq.unwrap(), Duration::from_secs(20)));
    let seen = seen.lock().clone();
    assert_eq!(seen.iter().map(|(s, _, _)| s.0).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
    assert_eq!(seen[7].1, "ev-7");
    assert!(matches!(&seen[0].2, Provenance::Ingest { principal } if principal.ends_with("user/w")));
    assert!(store.wait_indexed(out.last_seq.unwrap(), Duration::from_secs(20)));
    let text = store.render_metrics();
    for needle in [
        "opentrail_view_lag_events{view=\"index\"} 0\n",
        "opentrail_view_lag_events{view=\"trail:audit\"} 0\n",
        "opentrail_view_applied_seq{view=\"trail:audit\"} 12\n",
        "opentrail_view_errors_total{view=\"trail:audit\"} 0\n",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    handle.stop();
    let names: Vec<String> = store.views().statuses().into_iter().map(|s| s.name).collect();
    assert_eq!(names, [INDEX_VIEW]);
    store.shutdown();
}

#[test]
fn a_view_that_falls_behind_never_holds_back_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    // An index lag of more than 5 records would refuse ingest; the stuck view's lag does not count.
    let opts = StoreOptions { max_index_lag: 5, ..StoreOptions::new(dir.path()) };
    let store = EventStore::open(opts, Arc::new(Metrics::default())).unwrap();
    let stuck = Keep { name: "lake", seen: Arc::default(), checkpoint: None, fail: true };
    let handle = views::spawn(stuck, store.record_feed(), store.views(), RunOptions::default()).unwrap();
    for i in 0..20 {
        let out = rt.block_on(store.ingest(vec![record(i)])).unwrap();
        assert!(store.wait_indexed(out.last_seq.unwrap(), Duration::from_secs(20)));
    }
    let status = store.views().statuses().into_iter().find(|s| s.name == "lake").unwrap();
    assert_eq!((status.applied, status.lag), (None, 20));
    assert!(handle.progress().errors() >= 1);
    handle.stop();
    store.shutdown();
}
