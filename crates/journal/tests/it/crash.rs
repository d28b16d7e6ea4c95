//! Crash consistency: a crash at every write-side operation, a tail cut at every byte, corrupted and zero-filled
//! tails, and corruption of acknowledged data, which must be reported, never skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use journal::{Journal, JournalError, Seq};

use crate::support::{Faults, Torn, all_records, batch, small_opts, with_faults};

/// The workload every crash test runs: sequential groups of different sizes (some roll segments).
fn workload() -> Vec<Vec<Vec<u8>>> {
    (0..8).map(|b| batch(b, [1, 3, 9, 2, 25, 1, 4, 12][b])).collect()
}

/// Run the workload against a journal that crashes at `crash_at`; returns how many records were acknowledged.
fn run_until_crash(dir: &Path, faults: Arc<Faults>) -> usize {
    let Ok((j, _)) = Journal::open(with_faults(dir, faults)) else { return 0 };
    let mut acked = 0;
    for b in workload() {
        let n = b.len();
        // Large batches are compressed ahead of the writer (the 25-record one with these options).
        let Ok(b) = j.prepare(b) else { break };
        match j.append(b) {
            Ok(_) => acked += n,
            Err(_) => break,
        }
    }
    acked
}

#[test]
fn crash_at_every_write_step_recovers_an_acknowledged_prefix() {
    let everything: Vec<Vec<u8>> = workload().into_iter().flatten().collect();
    let clean = Arc::new(Faults::default());
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(run_until_crash(tmp.path(), clean.clone()), everything.len());
    let total_ops = clean.ops.load(std::sync::atomic::Ordering::SeqCst);
    assert!(total_ops > 20, "workload too small to be interesting: {total_ops} ops");
    // the workload trains a dictionary midway: crashes hit dictionary-less frames, the dictionary file's
    // steps, and dictionary frames
    let (j, _) = Journal::open(small_opts(&tempfile::tempdir().unwrap().path().join("j"))).unwrap();
    assert!(workload().into_iter().any(|b| j.prepare(b).unwrap().is_prepared()), "no batch compressed ahead");
    drop(j);
    let codecs = crate::support::frame_codecs(tmp.path());
    assert!(codecs.contains(&1) && codecs.contains(&2), "{codecs:?}");
    for op in 0..total_ops {
        for torn in [Torn::Nothing, Torn::OneByte, Torn::Half, Torn::AllButOne] {
            let tmp = tempfile::tempdir().unwrap();
            let acked = run_until_crash(tmp.path(), Faults::crash_at(op, torn));
            let (j, rec) = Journal::open(small_opts(tmp.path()))
                .unwrap_or_else(|e| panic!("reopen after crash at op {op} ({torn:?}): {e:#?}"));
            let got = all_records(&j);
            assert!(got.len() >= acked, "op {op} {torn:?}: lost acknowledged records ({} < {acked})", got.len());
            assert_eq!(got[..], everything[..got.len()], "op {op} {torn:?}: not a prefix");
            assert_eq!(rec.last_seq.map_or(0, |s| s.0), got.len() as u64);
            // and the recovered journal takes new appends after the prefix
            let r = j.append(batch(100, 2)).unwrap();
            assert_eq!(r.first, Seq(got.len() as u64 + 1));
        }
    }
}

/// A journal with a few groups, all in one segment; returns (dir, tail segment path, offset where the last frame
/// starts, records before the last group).
fn one_segment_journal() -> (tempfile::TempDir, PathBuf, u64, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = small_opts(tmp.path());
    opts.segment_bytes = 1 << 20;
    opts.block_bytes = 1 << 20;
    let (j, _) = Journal::open(opts).unwrap();
    let mut before = 0;
    for b in 0..4 {
        let recs = batch(b, 3);
        before += recs.len();
        j.append(recs).unwrap();
    }
    let path = segment_files(tmp.path()).pop().unwrap();
    let last_start = std::fs::metadata(&path).unwrap().len();
    j.append(batch(9, 5)).unwrap();
    drop(j);
    (tmp, path, last_start, before)
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_tail_cut_at_any_byte_of_the_last_frame_is_truncated_and_reported() {
    let (tmp, path, last_start, before) = one_segment_journal();
    let full = std::fs::read(&path).unwrap();
    for cut in last_start..full.len() as u64 {
        std::fs::write(&path, &full[..cut as usize]).unwrap();
        let (j, rec) = Journal::open(small_opts(tmp.path())).unwrap();
        assert_eq!(rec.last_seq, Some(Seq(before as u64)), "cut at {cut}");
        assert_eq!(rec.truncated_tail_bytes, cut - last_start, "cut at {cut}");
        assert_eq!(all_records(&j).len(), before);
        drop(j);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start, "torn tail is cut on disk");
    }
}

#[test]
fn a_corrupted_byte_in_the_last_frame_is_a_torn_tail() {
    let (tmp, path, last_start, before) = one_segment_journal();
    let full = std::fs::read(&path).unwrap();
    for at in last_start as usize..full.len() {
        let mut bytes = full.clone();
        bytes[at] ^= 0x5a;
        std::fs::write(&path, &bytes).unwrap();
        let (_j, rec) = Journal::open(small_opts(tmp.path())).unwrap();
        assert_eq!(rec.last_seq, Some(Seq(before as u64)), "flip at {at}");
        assert_eq!(rec.truncated_tail_bytes, full.len() as u64 - last_start);
    }
}

#[test]
fn zero_fill_after_the_last_frame_is_truncated_and_keeps_every_record() {
    let (tmp, path, _, before) = one_segment_journal();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 4096));
    std::fs::write(&path, &bytes).unwrap();
    let (j, rec) = Journal::open(small_opts(tmp.path())).unwrap();
    assert_eq!(rec.truncated_tail_bytes, 4096);
    assert_eq!(all_records(&j).len(), before + 5);
}

#[test]
fn corruption_followed_by_a_valid_frame_is_reported_not_truncated() {
    let (tmp, path, last_start, _) = one_segment_journal();
    let full = std::fs::read(&path).unwrap();
    // flip every byte of the frame before the last one in turn (the first frame is at 0)
    for at in 0..last_start as usize {
        let mut bytes = full.clone();
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let err = Journal::open(small_opts(tmp.path())).map(|_| ()).unwrap_err();
        assert!(matches!(err, JournalError::Corrupted { .. }), "flip at {at}: {err:?}");
    }
    std::fs::write(&path, &full).unwrap();
    assert!(Journal::open(small_opts(tmp.path())).is_ok());
}

/// A journal spread over several segments, for damage to sealed (non-last) segments.
fn multi_segment_journal() -> (tempfile::TempDir, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(small_opts(tmp.path())).unwrap();
    for b in 0..20 {
        j.append(batch(b, 4)).unwrap();
    }
    drop(j);
    let segs = segment_files(tmp.path());
    assert!(segs.len() >= 3);
    (tmp, segs)
}

#[test]
fn a_truncated_sealed_segment_is_corrupted() {
    let (tmp, segs) = multi_segment_journal();
    let bytes = std::fs::read(&segs[0]).unwrap();
    std::fs::write(&segs[0], &bytes[..bytes.len() - 1]).unwrap();
    let err = Journal::open(small_opts(tmp.path())).map(|_| ()).unwrap_err();
    assert!(matches!(err, JournalError::Corrupted { ref segment, .. } if *segment == segs[0]), "{err:?}");
}

#[test]
fn a_damaged_header_in_a_sealed_segment_is_corrupted_at_open_without_sidecar_and_on_read_with_one() {
    let (tmp, segs) = multi_segment_journal();
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    bytes[16] ^= 0xff; // first_seq of the first frame
    std::fs::write(&segs[1], &bytes).unwrap();
    // with its sidecar, open trusts the sidecar (fast open); the frame check on read catches the damage
    let first_of_segment = Seq(segs[1].file_stem().unwrap().to_str().unwrap().parse().unwrap());
    {
        let (j, _) = Journal::open(small_opts(tmp.path())).unwrap();
        assert!(matches!(j.read(first_of_segment), Err(JournalError::Corrupted { offset: 0, .. })));
    }
    std::fs::remove_file(segs[1].with_extension("idx")).unwrap();
    let err = Journal::open(small_opts(tmp.path())).map(|_| ()).unwrap_err();
    assert!(matches!(err, JournalError::Corrupted { offset: 0, .. }), "{err:?}");
}

#[test]
fn a_damaged_payload_in_a_sealed_segment_is_corrupted_on_read() {
    let (tmp, segs) = multi_segment_journal();
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&segs[0], &bytes).unwrap();
    // open reads only headers of sealed segments (fast open); the checksum catches it on read
    let (j, _) = Journal::open(small_opts(tmp.path())).unwrap();
    let results: Vec<_> = j.scan(Seq(1)).collect();
    assert!(matches!(results.last(), Some(Err(JournalError::Corrupted { .. }))), "{:?}", results.last());
    let bad = Seq(results.len() as u64);
    assert!(matches!(j.read(bad), Err(JournalError::Corrupted { .. })));
    assert!(matches!(j.read_many(&[Seq(1), bad]), Err(JournalError::Corrupted { .. })));
}

#[test]
fn a_missing_middle_segment_is_corrupted() {
    let (tmp, segs) = multi_segment_journal();
    std::fs::remove_file(&segs[1]).unwrap();
    let err = Journal::open(small_opts(tmp.path())).map(|_| ()).unwrap_err();
    assert!(matches!(err, JournalError::Corrupted { .. }), "{err:?}");
}

#[test]
fn a_stray_file_with_a_segment_suffix_is_corrupted() {
    let (tmp, _) = multi_segment_journal();
    std::fs::write(tmp.path().join("notaseq.seg"), b"x").unwrap();
    let err = Journal::open(small_opts(tmp.path())).map(|_| ()).unwrap_err();
    assert!(matches!(err, JournalError::Corrupted { .. }), "{err:?}");
}

#[test]
fn sealed_segments_get_a_sidecar_and_a_stale_or_damaged_one_is_ignored() {
    let (tmp, segs) = multi_segment_journal();
    let sidecar = segs[0].with_extension("idx");
    assert!(sidecar.exists(), "sealed segment has an index sidecar");
    assert!(!segs.last().unwrap().with_extension("idx").exists(), "the tail segment has none");
    let expected = {
        let (j, _) = Journal::open(small_opts(tmp.path())).unwrap();
        all_records(&j)
    };
    // a damaged sidecar falls back to walking the headers
    let mut bytes = std::fs::read(&sidecar).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&sidecar, &bytes).unwrap();
    let (j, _) = Journal::open(small_opts(tmp.path())).unwrap();
    assert_eq!(all_records(&j), expected);
    drop(j);
    // a sidecar that disagrees with its (truncated) segment does not hide the damage
    std::fs::remove_file(&sidecar).unwrap();
    let (j, _) = Journal::open(small_opts(tmp.path())).unwrap();
    drop(j);
    let seg = std::fs::read(&segs[0]).unwrap();
    std::fs::write(&segs[0], &seg[..seg.len() - 3]).unwrap();
    std::fs::write(&sidecar, &bytes).unwrap();
    assert!(matches!(Journal::open(small_opts(tmp.path())), Err(JournalError::Corrupted { .. })));
}
