//! Injected failures: fsync failure poisons until reopen, ENOSPC rolls back and keeps going, back-pressure,
//! and many concurrent submitters.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use journal::{Journal, JournalError, JournalOptions, Seq, SeqRange};

use crate::support::{Faults, all_records, batch, small_opts, with_faults};

#[test]
fn failed_fsync_poisons_until_reopen_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (j, _) = Journal::open(with_faults(dir.path(), faults.clone())).unwrap();
    j.append(batch(0, 3)).unwrap();
    faults.failing_syncs.store(1, Ordering::SeqCst);
    assert!(matches!(j.append(batch(1, 3)), Err(JournalError::Io { op: "fsync segment", .. })));
    assert!(j.is_poisoned());
    assert!(matches!(j.append(batch(2, 1)), Err(JournalError::Poisoned)));
    assert!(matches!(j.submit(batch(2, 1), Box::new(|_| {})), Err(JournalError::Poisoned)));
    assert_eq!(j.durable_seq(), Some(Seq(3)));
    drop(j);
    let (j, rec) = Journal::open(small_opts(dir.path())).unwrap();
    assert!(!j.is_poisoned());
    // the failed group was rolled back, so only the acknowledged prefix remains
    assert_eq!(rec.last_seq, Some(Seq(3)));
    assert_eq!(all_records(&j), batch(0, 3));
    assert_eq!(j.append(batch(3, 1)).unwrap().first, Seq(4));
}

#[test]
fn enospc_on_write_fails_the_group_with_disk_full_and_the_next_submit_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (j, _) = Journal::open(with_faults(dir.path(), faults.clone())).unwrap();
    j.append(batch(0, 2)).unwrap();
    faults.enospc_torn_bytes.store(7, Ordering::SeqCst);
    faults.enospc_writes.store(1, Ordering::SeqCst);
    assert!(matches!(j.append(batch(1, 5)), Err(JournalError::DiskFull { .. })));
    assert!(!j.is_poisoned());
    assert_eq!(j.durable_seq(), Some(Seq(2)));
    // the failed group's seqs are reused: they were never acknowledged and are not on disk
    assert_eq!(j.append(batch(2, 2)).unwrap(), SeqRange { first: Seq(3), last: Seq(4) });
    let mut expected = batch(0, 2);
    expected.extend(batch(2, 2));
    assert_eq!(all_records(&j), expected);
    drop(j);
    let (j, rec) = Journal::open(small_opts(dir.path())).unwrap();
    assert_eq!(rec.truncated_tail_bytes, 0, "the torn bytes were rolled back before reopen");
    assert_eq!(all_records(&j), expected);
}

#[test]
fn enospc_while_rolling_a_segment_removes_the_partial_group() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let mut opts = with_faults(dir.path(), faults.clone());
    // no dictionary: its file's create would take the injected ENOSPC meant for the segment
    opts.dict_bytes = 0;
    let (j, _) = Journal::open(opts).unwrap();
    j.append(batch(0, 2)).unwrap();
    let segments_before = j.stats().segments;
    // a group larger than segment_bytes must roll; its second segment write hits ENOSPC
    faults.enospc_creates.store(1, Ordering::SeqCst);
    assert!(matches!(j.append(batch(1, 40)), Err(JournalError::DiskFull { .. })));
    assert_eq!(j.stats().segments, segments_before);
    faults.enospc_writes.store(0, Ordering::SeqCst);
    let r = j.append(batch(2, 40)).unwrap();
    assert_eq!(r.first, Seq(3));
    // the same with a batch compressed ahead of the writer: its frames are rolled back too
    let segments_before = j.stats().segments;
    let prepared = j.prepare(batch(3, 40)).unwrap();
    assert!(prepared.is_prepared());
    faults.enospc_creates.store(1, Ordering::SeqCst);
    assert!(matches!(j.append(prepared), Err(JournalError::DiskFull { .. })));
    assert_eq!(j.stats().segments, segments_before);
    let r = j.append(j.prepare(batch(4, 40)).unwrap()).unwrap();
    assert_eq!(r.first, Seq(43));
    drop(j);
    let (j, _) = Journal::open(small_opts(dir.path())).unwrap();
    let mut expected = batch(0, 2);
    expected.extend(batch(2, 40));
    expected.extend(batch(4, 40));
    assert_eq!(all_records(&j), expected);
}

#[test]
fn backpressure_rejects_at_once_while_the_queue_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (release, gate) = std::sync::mpsc::channel();
    let mut opts = JournalOptions::new(dir.path());
    opts.faults = Some(faults.clone());
    opts.max_queued_bytes = 1000;
    let (j, _) = Journal::open(opts).unwrap();
    *faults.sync_gate.lock().unwrap() = Some(gate);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut admitted = 0;
    let mut rejected = None;
    for _ in 0..100 {
        let tx = tx.clone();
        match j.submit(vec![vec![b'x'; 96]], Box::new(move |r| tx.send(r).unwrap())) {
            Ok(()) => admitted += 1,
            Err(e) => {
                rejected = Some(e);
                break;
            }
        }
    }
    assert!(matches!(rejected, Some(JournalError::Backpressure { queued_bytes: 1000, limit: 1000 })), "{rejected:?}");
    assert_eq!(admitted, 10);
    assert_eq!(j.stats().queued_bytes, 1000);
    // unblock every fsync (a dropped sender ends every wait): everything admitted becomes durable
    drop(release);
    for _ in 0..admitted {
        rx.recv().unwrap().unwrap();
    }
    assert_eq!(j.durable_seq(), Some(Seq(admitted)));
    assert_eq!(j.stats().queued_bytes, 0);
    j.append(batch(0, 1)).unwrap();
}

#[test]
fn concurrent_submitters_get_dense_unique_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = JournalOptions::new(dir.path());
    opts.block_bytes = 512;
    opts.segment_bytes = 8 << 10;
    let (j, _) = Journal::open(opts).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let j = j.clone();
            std::thread::spawn(move || {
                (0..40)
                    .map(|i| {
                        // every other batch large and compressed ahead of the writer, in the same groups as
                        // raw ones
                        let n = if (t + i) % 2 == 0 { 1 + (t + i) % 5 } else { 60 + (t + i) % 40 };
                        let recs = batch(t * 1000 + i, n);
                        let prepared = j.prepare(recs.clone()).unwrap();
                        assert_eq!(prepared.is_prepared(), n >= 60);
                        let r = j.append(prepared).unwrap();
                        (r, recs)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(SeqRange, Vec<Vec<u8>>)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let mut seen = HashSet::new();
    for (r, recs) in &results {
        assert_eq!(r.len(), recs.len() as u64);
        for (k, seq) in (r.first.0..=r.last.0).enumerate() {
            assert!(seen.insert(seq), "seq {seq} assigned twice");
            assert_eq!(j.read(Seq(seq)).unwrap(), recs[k]);
        }
    }
    let n = seen.len() as u64;
    assert_eq!(seen, (1..=n).collect::<HashSet<_>>());
    assert_eq!(j.durable_seq(), Some(Seq(n)));
    assert!(j.stats().groups < results.len() as u64, "group commit should merge concurrent submissions");
}

#[test]
fn a_panicking_callback_does_not_stop_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    j.submit(batch(0, 1), Box::new(|_| panic!("callback bug"))).unwrap();
    assert_eq!(j.append(batch(1, 1)).unwrap().first, Seq(2));
}
