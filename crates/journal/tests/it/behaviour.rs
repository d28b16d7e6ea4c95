//! Plain behaviour of the journal: appends, reads, segment rolls, reopen, waiting for durability, stats.

use std::time::Duration;

use journal::{Journal, JournalError, JournalOptions, Seq, SeqRange};

use crate::support::{all_records, batch, small_opts};

#[test]
fn empty_journal_opens_with_no_last_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (j, rec) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    assert_eq!(rec.last_seq, None);
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(j.durable_seq(), None);
    assert!(matches!(j.read(Seq(1)), Err(JournalError::NotFound { .. })));
    assert_eq!(j.scan(Seq(1)).count(), 0);
}

#[test]
fn first_append_gets_seq_one_and_ranges_are_dense() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    assert_eq!(j.append(batch(0, 3)).unwrap(), SeqRange { first: Seq(1), last: Seq(3) });
    assert_eq!(j.append(batch(1, 2)).unwrap(), SeqRange { first: Seq(4), last: Seq(5) });
    assert_eq!(j.durable_seq(), Some(Seq(5)));
    assert_eq!(j.read(Seq(4)).unwrap(), batch(1, 2)[0]);
    assert!(matches!(j.read(Seq(6)), Err(JournalError::NotFound { seq: 6, .. })));
    assert!(matches!(j.read(Seq(0)), Err(JournalError::NotFound { .. })));
}

#[test]
fn records_survive_reopen_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let (j, _) = Journal::open(small_opts(dir.path())).unwrap();
        for b in 0..30 {
            let recs = batch(b, 1 + b % 7);
            expected.extend(recs.clone());
            j.append(recs).unwrap();
        }
        assert!(j.stats().segments > 3, "small segment_bytes should roll segments");
    }
    let (j, rec) = Journal::open(small_opts(dir.path())).unwrap();
    assert_eq!(rec.last_seq, Some(Seq(expected.len() as u64)));
    assert_eq!(rec.truncated_tail_bytes, 0);
    assert_eq!(all_records(&j), expected);
    let seqs: Vec<Seq> = (1..=expected.len() as u64).rev().map(Seq).collect();
    let many = j.read_many(&seqs).unwrap();
    assert_eq!(many.into_iter().rev().collect::<Vec<_>>(), expected);
    // appending after reopen continues the dense numbering
    let r = j.append(batch(99, 2)).unwrap();
    assert_eq!(r.first, Seq(expected.len() as u64 + 1));
}

#[test]
fn empty_records_and_empty_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    assert!(matches!(j.append(vec![]), Err(JournalError::EmptyBatch)));
    let r = j.append(vec![vec![], b"x".to_vec(), vec![]]).unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(j.read(Seq(1)).unwrap(), Vec::<u8>::new());
    assert_eq!(j.read(Seq(2)).unwrap(), b"x".to_vec());
}

#[test]
fn record_too_large_is_rejected_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    let big = vec![0u8; journal::MAX_RECORD_BYTES + 1];
    assert!(matches!(j.append(vec![big]), Err(JournalError::RecordTooLarge { .. })));
    assert_eq!(j.durable_seq(), None);
}

#[test]
fn wait_durable_after_wakes_on_append_and_times_out_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    assert_eq!(j.wait_durable_after(None, Duration::from_millis(10)), None);
    let j2 = j.clone();
    let waiter = std::thread::spawn(move || j2.wait_durable_after(None, Duration::from_secs(20)));
    j.append(batch(0, 2)).unwrap();
    assert_eq!(waiter.join().unwrap(), Some(Seq(2)));
    assert_eq!(j.wait_durable_after(Some(Seq(2)), Duration::from_millis(10)), Some(Seq(2)));
}

#[test]
fn second_open_of_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    assert!(matches!(Journal::open(JournalOptions::new(dir.path())), Err(JournalError::Io { .. })));
}

#[test]
fn stats_count_records_bytes_and_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    for b in 0..3 {
        j.append(batch(b, 10)).unwrap();
    }
    let s = j.stats();
    assert_eq!(s.records, 30);
    assert_eq!(s.groups, 3);
    assert!(s.fsyncs >= 3);
    assert_eq!(s.fsync_histogram.last().unwrap().count, s.fsyncs);
    assert_eq!(s.queued_bytes, 0);
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(s.bytes_on_disk, on_disk);
}

#[test]
fn submit_callbacks_run_after_durability_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for b in 0..20 {
        let tx = tx.clone();
        let j2 = j.clone();
        j.submit(
            batch(b, 2),
            Box::new(move |r| {
                let r = r.unwrap();
                // the callback may read what it was acknowledged for
                assert!(j2.durable_seq() >= Some(r.last));
                tx.send((b, r)).unwrap();
            }),
        )
        .unwrap();
    }
    drop(tx);
    let got: Vec<_> = rx.iter().collect();
    assert_eq!(got.len(), 20);
    for (i, (b, r)) in got.iter().enumerate() {
        assert_eq!(*b, i);
        assert_eq!(*r, SeqRange { first: Seq(2 * i as u64 + 1), last: Seq(2 * i as u64 + 2) });
    }
}
