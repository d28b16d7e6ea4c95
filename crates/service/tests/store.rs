//! The event store end to end in one process: durable ingest, eventID dedupe, lookups that see every
//! acknowledged record, and a restart that keeps all of it.

use std::sync::Arc;
use std::time::Duration;

use model::{AttributeKey, EventQuery, Record};
use service::{EventStore, IngestItem, Metrics, StoreOptions};

fn record(i: u32, name: &str) -> IngestItem {
    let text = format!(
        r#"{{"eventID":"ev-{i}","eventTime":"2020-01-01T09:{:02}:{:02}Z","eventSource":"iam.amazonaws.com","eventName":"{name}","userIdentity":{{"type":"IAMUser","userName":"u{}"}}}}"#,
        (i / 60) % 60,
        i % 60,
        i % 3
    );
    IngestItem { record: Record::parse(text.as_bytes(), || unreachable!()).unwrap(), client_id: true }
}

fn open(dir: &std::path::Path) -> EventStore {
    EventStore::open(StoreOptions::new(dir), Arc::new(Metrics::default())).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn ingested_records_are_found_newest_first_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let store = open(dir.path());
    let out = rt
        .block_on(
            store.ingest((0..100).map(|i| record(i, if i % 2 == 0 { "CreateUser" } else { "GetUser" })).collect()),
        )
        .unwrap();
    assert_eq!(out.stored, 100);
    assert!(store.wait_indexed(out.last_seq.unwrap(), Duration::from_secs(10)));
    let q = EventQuery { attributes: vec![(AttributeKey::EventName, "CreateUser".into())], ..Default::default() };
    let page = store.lookup(&q, 10, None).unwrap();
    assert_eq!(page.events.len(), 10);
    assert_eq!(page.events[0].fields.event_id, "ev-98");
    assert!(page.next.is_some());
    let mut all = page.events.clone();
    let mut next = page.next;
    while let Some(pos) = next {
        let p = store.lookup(&q, 7, Some(pos)).unwrap();
        all.extend(p.events);
        next = p.next;
    }
    assert_eq!(all.len(), 50);
    store.shutdown();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.get("ev-42").unwrap().unwrap().fields.event_name, "CreateUser");
    let again = store.lookup(&q, 50, None).unwrap();
    assert_eq!(again.events.len(), 50);
    store.shutdown();
}

#[test]
fn resending_a_batch_with_client_event_ids_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let store = open(dir.path());
    let first = rt.block_on(store.ingest((0..20).map(|i| record(i, "A")).collect())).unwrap();
    assert_eq!((first.stored, first.duplicates), (20, 0));
    // Immediately (possibly before indexing) and again after indexing.
    let second = rt.block_on(store.ingest((0..20).map(|i| record(i, "A")).collect())).unwrap();
    assert_eq!((second.stored, second.duplicates), (0, 20));
    assert!(store.wait_indexed(first.last_seq.unwrap(), Duration::from_secs(10)));
    let mut batch: Vec<IngestItem> = (10..30).map(|i| record(i, "A")).collect();
    batch.push(record(29, "A"));
    let third = rt.block_on(store.ingest(batch)).unwrap();
    assert_eq!((third.stored, third.duplicates), (10, 11));
    assert_eq!(third.event_ids.len(), 21);
    assert_eq!(store.durable_seq().unwrap().0, 30);
    store.shutdown();
}

#[test]
fn a_lagging_index_pushes_back_on_ingest_instead_of_growing_memory() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let opts = StoreOptions { max_index_lag: 5, run_indexer: false, ..StoreOptions::new(dir.path()) };
    let store = EventStore::open(opts, Arc::new(Metrics::default())).unwrap();
    let first = rt.block_on(store.ingest((0..10).map(|i| record(i, "A")).collect())).unwrap();
    assert_eq!(first.stored, 10);
    let err = rt.block_on(store.ingest(vec![record(10, "A")])).unwrap_err();
    assert!(matches!(err, service::StoreError::IndexBehind { lag: 10, limit: 5 }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(store.durable_seq().unwrap().0, 10, "the refused record was not stored");
    store.shutdown();
    drop(store);
    // Reopening replays the journal into the index; ingest flows again.
    let store = open(dir.path());
    let again = rt.block_on(store.ingest(vec![record(10, "A")])).unwrap();
    assert_eq!(again.stored, 1);
    store.shutdown();
}
