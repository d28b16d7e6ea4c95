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

#[test]
fn a_prepared_batch_writes_the_bytes_the_writer_would_have_written() {
    // Alone in its group, a batch compressed ahead of the writer is cut and compressed exactly as the writer
    // cuts and compresses a raw one: the segment files are byte for byte the same, dictionaries included. (The
    // one difference the writer allows: a batch prepared before the dictionary exists keeps dictionary-less
    // frames even in the group that trains it; here that group's batch is small, so raw in both.)
    let (raw_dir, prep_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (raw, _) = Journal::open(small_opts(raw_dir.path())).unwrap();
    let (prep, _) = Journal::open(small_opts(prep_dir.path())).unwrap();
    let mut prepared = 0;
    for b in 0..12 {
        let recs = batch(b, 1 + b * 7);
        raw.append(recs.clone()).unwrap();
        let p = prep.prepare(recs).unwrap();
        prepared += usize::from(p.is_prepared());
        prep.append(p).unwrap();
    }
    assert!(prepared >= 6, "only {prepared} batches were compressed ahead");
    assert_eq!(all_records(&raw), all_records(&prep));
    drop((raw, prep));
    let files = |dir: &std::path::Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg" || e == "zdict"))
            .collect();
        names.sort();
        names.into_iter().map(|p| (p.file_name().unwrap().to_owned(), std::fs::read(&p).unwrap())).collect::<Vec<_>>()
    };
    let (a, b) = (files(raw_dir.path()), files(prep_dir.path()));
    assert!(a.len() > 3 && a.iter().any(|(n, _)| n.to_string_lossy().ends_with(".zdict")));
    assert!(a == b, "segment or dictionary files differ");
}

#[test]
fn prepare_refuses_what_submit_refuses_and_leaves_small_batches_raw() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(JournalOptions::new(dir.path())).unwrap();
    assert!(matches!(j.prepare(vec![]), Err(JournalError::EmptyBatch)));
    let big = vec![0u8; journal::MAX_RECORD_BYTES + 1];
    assert!(matches!(j.prepare(vec![b"x".to_vec(), big]), Err(JournalError::RecordTooLarge { .. })));
    let small = j.prepare(batch(0, 3)).unwrap();
    assert!(!small.is_prepared());
    assert_eq!(small.len(), 3);
    let large = j.prepare(batch(1, 3000)).unwrap();
    assert!(large.is_prepared());
    assert_eq!(j.append(small).unwrap(), SeqRange { first: Seq(1), last: Seq(3) });
    assert_eq!(j.append(large).unwrap(), SeqRange { first: Seq(4), last: Seq(3003) });
    assert_eq!(j.read(Seq(2000)).unwrap(), batch(1, 3000)[1996]);
}
