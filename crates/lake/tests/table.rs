//! A store's table on disk: the manifest names the live files and the checkpoint, crash debris is removed at
//! open, compaction and retention swap files atomically and delete them only after the grace period.

use lake::table::Table;
use lake::view::batches_by_day;

fn records(n: usize, day: u32, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "eventVersion": "1.11", "eventID": format!("{tag}-{i}"),
                "eventTime": format!("2026-02-{day:02}T{:02}:00:00Z", i % 24),
                "eventSource": "iam.amazonaws.com", "eventName": "GetUser", "awsRegion": "us-east-1",
                "userIdentity": {"type": "IAMUser", "userName": "alice"},
            })
            .to_string()
        })
        .collect()
}

fn append(t: &Table, recs: &[String], through: u64) {
    t.append(batches_by_day(recs.iter().map(String::as_str), |_| true), through);
}

#[test]
fn the_manifest_names_the_files_and_the_checkpoint_and_debris_is_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::open(dir.path()).unwrap();
    append(&t, &[records(10, 1, "a"), records(5, 2, "b")].concat(), 14);
    assert_eq!(t.checkpoint(), None, "the tail is not durable");
    assert_eq!(t.snapshot().rows(), 15, "queries see the tail");
    t.flush().unwrap();
    let m = t.manifest();
    assert_eq!(m.checkpoint, Some(14));
    assert_eq!(m.files.len(), 2, "one file per day");
    assert_eq!(m.files.iter().map(|f| f.rows).sum::<u64>(), 15);
    assert!(m.files.iter().all(|f| dir.path().join(&f.path).is_file()));
    // A file written before a crash, never named by a manifest; and a tail never flushed.
    let debris = dir.path().join("date=2026-02-01/part-99999999.parquet");
    std::fs::write(&debris, b"half a file").unwrap();
    append(&t, &records(3, 3, "c"), 20);
    drop(t);
    let t = Table::open(dir.path()).unwrap();
    assert!(!debris.exists());
    assert_eq!(t.checkpoint(), Some(14));
    assert_eq!(t.snapshot().rows(), 15);
}

#[test]
fn compaction_merges_small_files_and_deletes_them_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::open(dir.path()).unwrap();
    for i in 0..8u64 {
        append(&t, &records(10, 1, &format!("f{i}")), i);
        t.flush().unwrap();
    }
    assert_eq!(t.manifest().files.len(), 8);
    let before: Vec<_> = t.manifest().files.iter().map(|f| dir.path().join(&f.path)).collect();
    assert_eq!(t.maintain(1_000, None).unwrap(), 8);
    let m = t.manifest();
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.files[0].rows, 80);
    assert_eq!(m.retired.len(), 8);
    assert!(before.iter().all(|p| p.exists()), "kept for queries planned before the swap");
    assert_eq!(t.snapshot().rows(), 80);
    t.maintain(1_000 + 10 * 60 * 1000, None).unwrap();
    assert!(before.iter().all(|p| !p.exists()));
    assert!(t.manifest().retired.is_empty());
    assert_eq!(Table::open(dir.path()).unwrap().snapshot().rows(), 80);
}

#[test]
fn retention_retires_files_older_than_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let t = Table::open(dir.path()).unwrap();
    append(&t, &[records(4, 1, "old"), records(6, 20, "new")].concat(), 9);
    t.flush().unwrap();
    let cut = model::EventTime::parse("2026-02-10T00:00:00Z").unwrap().0;
    t.maintain(0, Some(cut)).unwrap();
    let m = t.manifest();
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.files[0].date, "2026-02-20");
    assert_eq!(t.snapshot().rows(), 6);
}
