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
    let q = EventQuery::equal([(AttributeKey::EventName, "CreateUser")]);
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

#[test]
fn concurrent_batches_carrying_the_same_event_id_store_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let store = open(dir.path());
    // Each round races two batches that share one id (and each has one id of its own); the shared id must be
    // stored exactly once whichever batch wins, also while the indexer is applying earlier rounds.
    for round in 0..200u32 {
        let shared = round * 3;
        let batch = |own: u32| vec![record(shared, "CreateUser"), record(own, "GetUser")];
        let (a, b) = (store.clone(), store.clone());
        let (ba, bb) = (batch(shared + 1), batch(shared + 2));
        let (ra, rb) = rt.block_on(async move {
            let ta = tokio::spawn(async move { a.ingest(ba).await });
            let tb = tokio::spawn(async move { b.ingest(bb).await });
            (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap())
        });
        assert_eq!(ra.stored + rb.stored, 3, "round {round}: {ra:?} {rb:?}");
        assert_eq!(ra.duplicates + rb.duplicates, 1, "round {round}");
    }
    let durable = store.durable_seq().unwrap();
    assert!(store.wait_indexed(durable, Duration::from_secs(10)));
    assert_eq!(durable.0, 600);
    let report = store.check().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    store.shutdown();
}

#[test]
fn concurrent_large_batches_compressed_ahead_of_the_journal_store_shared_ids_once() {
    // Batches large enough to be compressed before they are queued (`Journal::prepare`): a batch that finds
    // shared ids in flight or indexed once it holds the in-flight lock drops them and is queued raw.
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let store = open(dir.path());
    let mut stored = 0;
    for round in 0..12u32 {
        let base = round * 10_000;
        let batch = |own: u32| -> Vec<IngestItem> {
            let shared = (0..60).map(|k| record(base + k, "CreateUser"));
            shared.chain((0..900).map(|k| record(base + own + k, "GetUser"))).collect()
        };
        let (a, b) = (store.clone(), store.clone());
        let (ba, bb) = (batch(1_000), batch(5_000));
        let (ra, rb) = rt.block_on(async move {
            let ta = tokio::spawn(async move { a.ingest(ba).await });
            let tb = tokio::spawn(async move { b.ingest(bb).await });
            (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap())
        });
        assert_eq!(ra.stored + rb.stored, 1_860, "round {round}: {} + {}", ra.stored, rb.stored);
        assert_eq!(ra.duplicates + rb.duplicates, 60, "round {round}");
        assert_eq!(ra.event_ids.len(), 960);
        assert_eq!(ra.event_ids[0], format!("ev-{base}"));
        stored += 1_860;
    }
    let durable = store.durable_seq().unwrap();
    assert_eq!(durable.0, stored);
    assert!(store.wait_indexed(durable, Duration::from_secs(20)));
    let report = store.check().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    store.shutdown();
}

#[test]
fn an_acknowledged_event_is_found_by_id_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let store = open(dir.path());
    for i in 0..300 {
        rt.block_on(store.ingest(vec![record(i, "CreateUser")])).unwrap();
        let got = store.get(&format!("ev-{i}")).unwrap();
        assert!(got.is_some(), "ev-{i} was acknowledged but not found");
    }
    store.shutdown();
}

#[test]
fn provenance_travels_beside_the_record_and_survives_a_replay() {
    use model::Provenance;
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let store = open(dir.path());
    let mut items: Vec<IngestItem> = (0..4).map(|i| record(i, "CreateUser")).collect();
    let writer = Provenance::Ingest { principal: "arn:aws:iam::123456789012:user/ingester".into() };
    items[0].record.fields.provenance = Provenance::SelfAudit;
    items[1].record.fields.provenance = writer.clone();
    items[2].record.fields.provenance = Provenance::Channel { channel: "arn:ch".into() };
    let sent: Vec<String> = items.iter().map(|i| i.record.json().to_string()).collect();
    let out = rt.block_on(store.ingest(items)).unwrap();
    assert!(store.wait_indexed(out.last_seq.unwrap(), Duration::from_secs(10)));
    let by = |store: &EventStore, v: &str| -> Vec<String> {
        let q = EventQuery::equal([(AttributeKey::Provenance, v)]);
        store.lookup(&q, 10, None).unwrap().events.into_iter().map(|e| e.fields.event_id).collect()
    };
    let check = |store: &EventStore| {
        assert_eq!(by(store, "self-audit"), vec!["ev-0"]);
        assert_eq!(by(store, "ingest"), vec!["ev-1"]);
        assert_eq!(by(store, "arn:aws:iam::123456789012:user/ingester"), vec!["ev-1"]);
        assert_eq!(by(store, "unknown"), vec!["ev-3"]);
        let e = store.get("ev-1").unwrap().unwrap();
        assert_eq!(e.fields.provenance, writer);
        assert_eq!(e.json, sent[1], "the record bytes are kept exactly");
    };
    check(&store);
    store.shutdown();
    drop(store);
    // Rebuild the index from the journal: provenance comes back from the journal frames.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = open(dir.path());
    check(&store);
    store.shutdown();
}
