//! The journal against a `Vec<Vec<u8>>` model: random batches, reopens, point reads, read_many and scans must
//! always agree with the model.

use journal::{Journal, JournalOptions, Seq};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Vec<u8>>),
    /// Compressed ahead of the writer (`Journal::prepare`) when large enough for the options.
    AppendPrepared(Vec<Vec<u8>>),
    Reopen,
    Read(u64),
    ReadMany(Vec<u64>),
    Scan(u64),
}

fn record() -> impl Strategy<Value = Vec<u8>> {
    // mostly repetitive JSON-ish text (compresses), sometimes random bytes (stored raw), sometimes empty
    prop_oneof![
        4 => (0usize..40, any::<u8>()).prop_map(|(n, c)| format!("{{\"k\":\"{}\"}}", (c as char).to_string().repeat(n)).into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => Just(Vec::new()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(record(), 1..12).prop_map(Op::Append),
        3 => proptest::collection::vec(record(), 1..40).prop_map(Op::AppendPrepared),
        1 => Just(Op::Reopen),
        2 => any::<u64>().prop_map(Op::Read),
        2 => proptest::collection::vec(any::<u64>(), 0..10).prop_map(Op::ReadMany),
        1 => any::<u64>().prop_map(Op::Scan),
    ]
}

/// `dict_train_bytes` 0 turns dictionaries off; otherwise a small dictionary is trained after that many bytes.
fn open(dir: &std::path::Path, block_bytes: usize, segment_bytes: u64, dict_train_bytes: usize) -> Journal {
    let mut o = JournalOptions::new(dir);
    o.block_bytes = block_bytes;
    o.segment_bytes = segment_bytes;
    o.dict_bytes = if dict_train_bytes == 0 { 0 } else { 1024 };
    o.dict_train_bytes = dict_train_bytes;
    Journal::open(o).expect("open").0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn journal_matches_a_vec_model(
        ops in proptest::collection::vec(op(), 1..40),
        block_bytes in 1usize..2048,
        segment_bytes in 1u64..8192,
        dict_train_bytes in prop_oneof![1 => Just(0usize), 3 => 64usize..4096],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut j = open(dir.path(), block_bytes, segment_bytes, dict_train_bytes);
        let mut model: Vec<Vec<u8>> = Vec::new();
        // maps an arbitrary u64 onto a seq that exists (when there is one) or just past the end
        let pick = |x: u64, len: usize| x % (len as u64 + 1) + 1;
        for op in ops {
            match op {
                Op::Append(recs) => {
                    let r = j.append(recs.clone()).unwrap();
                    prop_assert_eq!(r.first, Seq(model.len() as u64 + 1));
                    prop_assert_eq!(r.len(), recs.len() as u64);
                    model.extend(recs);
                }
                Op::AppendPrepared(recs) => {
                    let r = j.append(j.prepare(recs.clone()).unwrap()).unwrap();
                    prop_assert_eq!(r.first, Seq(model.len() as u64 + 1));
                    prop_assert_eq!(r.len(), recs.len() as u64);
                    model.extend(recs);
                }
                Op::Reopen => {
                    drop(j);
                    j = open(dir.path(), block_bytes, segment_bytes, dict_train_bytes);
                }
                Op::Read(x) => {
                    let seq = pick(x, model.len());
                    match model.get(seq as usize - 1) {
                        Some(want) => prop_assert_eq!(&j.read(Seq(seq)).unwrap(), want),
                        None => prop_assert!(j.read(Seq(seq)).is_err()),
                    }
                }
                Op::ReadMany(xs) => {
                    if !model.is_empty() {
                        let seqs: Vec<Seq> = xs.iter().map(|&x| Seq(x % model.len() as u64 + 1)).collect();
                        let want: Vec<Vec<u8>> = seqs.iter().map(|s| model[s.0 as usize - 1].clone()).collect();
                        prop_assert_eq!(j.read_many(&seqs).unwrap(), want);
                    }
                }
                Op::Scan(x) => {
                    let from = pick(x, model.len());
                    let got: Vec<(Seq, Vec<u8>)> = j.scan(Seq(from)).map(|r| r.unwrap()).collect();
                    let want: Vec<(Seq, Vec<u8>)> =
                        model.iter().enumerate().skip(from as usize - 1).map(|(i, r)| (Seq(i as u64 + 1), r.clone())).collect();
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(j.durable_seq().map_or(0, |s| s.0), model.len() as u64);
        }
        drop(j);
        // default options read every frame, with or without a dictionary
        let (j, rec) = Journal::open(JournalOptions::new(dir.path())).unwrap();
        prop_assert_eq!(rec.truncated_tail_bytes, 0);
        prop_assert_eq!(crate::support::all_records(&j), model);
    }
}
