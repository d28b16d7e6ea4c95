//! Behaviour of the index as its callers see it: checkpoints and replay, reopening, eventId lookups, the seed case.

use index::{EventIndex, IndexError, IndexOptions, Position};
use model::{AttributeKey, Condition, EventCategory, EventQuery, EventTime, IndexFields, QueryCategory, Resource, Seq};

fn event(id: &str, time_ms: i64, name: &str, user: &str) -> IndexFields {
    IndexFields {
        event_id: id.to_string(),
        event_time: EventTime(time_ms),
        event_name: name.to_string(),
        event_source: "iam.amazonaws.com".to_string(),
        read_only: Some(false),
        username: Some(user.to_string()),
        access_key_id: None,
        resources: vec![],
        source_ip: Some("192.0.2.1".to_string()),
        error_code: None,
        user_agent: Some("AWS Internal".to_string()),
        account_ids: vec!["123456789012".to_string()],
        provenance: Default::default(),
        category: EventCategory::Standard,
    }
}

fn by(key: AttributeKey, value: &str) -> EventQuery {
    EventQuery::equal([(key, value.to_string())])
}

fn seqs(index: &EventIndex, q: &EventQuery) -> Vec<u64> {
    index.lookup(q, 1000, None).unwrap().hits.iter().map(|h| h.seq.0).collect()
}

#[test]
fn seed_case_create_user_by_john_is_found_by_event_name_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    let t = EventTime::parse("2020-01-01T09:00:00Z").unwrap();
    let mut mary = event("e1", t.0, "CreateUser", "John");
    mary.resources = vec![Resource {
        resource_type: Some("AWS::IAM::User".into()),
        arn: Some("arn:aws:iam::123456789012:user/Mary".into()),
    }];
    let other = event("e2", t.0 + 1, "ListUsers", "John");
    index.apply(&[(Seq(1), &mary), (Seq(2), &other)]).unwrap();

    assert_eq!(seqs(&index, &by(AttributeKey::EventName, "CreateUser")), vec![1]);
    assert_eq!(seqs(&index, &by(AttributeKey::Username, "John")), vec![2, 1]);
    assert_eq!(seqs(&index, &by(AttributeKey::ResourceName, "Mary")), vec![1]);
    let and = EventQuery {
        conditions: vec![
            Condition::equals(AttributeKey::EventName, "CreateUser"),
            Condition::equals(AttributeKey::Username, "John"),
        ],
        start: Some(t),
        end: Some(t),
        ..Default::default()
    };
    let page = index.lookup(&and, 50, None).unwrap();
    assert_eq!(page.hits.len(), 1);
    assert_eq!((page.hits[0].seq, page.hits[0].time), (Seq(1), t));
    assert!(!page.more);
}

#[test]
fn lookup_by_username_pages_newest_first_with_ties_broken_by_seq() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    // Out of time order on purpose, with a tie at t=20.
    let evs = [event("a", 20, "X", "u"), event("b", 10, "X", "u"), event("c", 30, "X", "u"), event("d", 20, "X", "u")];
    let batch: Vec<_> = evs.iter().enumerate().map(|(i, e)| (Seq(i as u64 + 1), e)).collect();
    index.apply(&batch).unwrap();

    let q = by(AttributeKey::Username, "u");
    let p1 = index.lookup(&q, 2, None).unwrap();
    assert_eq!(p1.hits.iter().map(|h| h.seq.0).collect::<Vec<_>>(), vec![3, 4]);
    assert!(p1.more);
    let p2 = index.lookup(&q, 2, p1.next_position()).unwrap();
    assert_eq!(p2.hits.iter().map(|h| h.seq.0).collect::<Vec<_>>(), vec![1, 2]);
    assert!(!p2.more);
    assert_eq!(p2.next_position(), None);
}

#[test]
fn replay_at_or_below_the_checkpoint_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    assert_eq!(index.checkpoint(), None);
    let (a, b, c) = (event("a", 1, "X", "u"), event("b", 2, "X", "u"), event("c", 3, "X", "u"));
    index.apply(&[(Seq(1), &a), (Seq(2), &b)]).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(2)));
    // A replay that overlaps what was applied adds only the new record.
    index.apply(&[(Seq(1), &a), (Seq(2), &b), (Seq(3), &c)]).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(3)));
    assert_eq!(seqs(&index, &by(AttributeKey::Username, "u")), vec![3, 2, 1]);
    // A fully applied batch changes nothing.
    index.apply(&[(Seq(2), &b)]).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(3)));
    assert_eq!(seqs(&index, &EventQuery::default()), vec![3, 2, 1]);
}

#[test]
fn apply_rejects_seqs_out_of_order_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    let (a, b) = (event("a", 1, "X", "u"), event("b", 2, "X", "u"));
    let err = index.apply(&[(Seq(5), &a), (Seq(4), &b)]).unwrap_err();
    assert!(matches!(err, IndexError::OutOfOrder { seq: Seq(4), previous: Seq(5) }), "{err}");
    assert_eq!(index.checkpoint(), None);
    assert!(seqs(&index, &EventQuery::default()).is_empty());
}

#[test]
fn reopen_keeps_postings_event_ids_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = EventIndex::open(dir.path()).unwrap();
        let (a, b) = (event("a", 1, "CreateUser", "u"), event("b", 2, "DeleteUser", "u"));
        index.apply(&[(Seq(1), &a), (Seq(2), &b)]).unwrap();
        index.persist().unwrap();
    }
    let index = EventIndex::open(dir.path()).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(2)));
    assert_eq!(seqs(&index, &by(AttributeKey::EventName, "DeleteUser")), vec![2]);
    assert_eq!(index.find_event_id("a").unwrap(), Some(Seq(1)));
    assert!(index.disk_bytes() > 0);
}

#[test]
fn find_event_id_keeps_the_first_mapping_and_lookup_sees_every_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    let uuid = "6a0c1c8e-2f4b-4c4e-9f5e-0123456789ab";
    let upper = "6A0C1C8E-2F4B-4C4E-9F5E-0123456789AB";
    let (a, b, c) = (event(uuid, 1, "X", "u"), event(uuid, 2, "X", "u"), event(upper, 3, "X", "u"));
    index.apply(&[(Seq(1), &a), (Seq(2), &b)]).unwrap();
    index.apply(&[(Seq(3), &c), (Seq(4), &a)]).unwrap();
    assert_eq!(index.find_event_id(uuid).unwrap(), Some(Seq(1)));
    assert_eq!(index.find_event_id(upper).unwrap(), Some(Seq(3)), "ids are case sensitive");
    assert_eq!(index.find_event_id("missing").unwrap(), None);
    // The reference semantics match every record carrying the id, duplicates included.
    assert_eq!(seqs(&index, &by(AttributeKey::EventId, uuid)), vec![2, 4, 1]);
}

#[test]
fn contains_event_ids_agrees_with_find_event_id_in_the_memtable_and_in_segments() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    let uuid = "6a0c1c8e-2f4b-4c4e-9f5e-0123456789ab";
    let (a, b) = (event(uuid, 1, "X", "u"), event("plain-id", 2, "X", "u"));
    index.apply(&[(Seq(1), &a), (Seq(2), &b)]).unwrap();
    index.persist().unwrap();
    let c = event("in-memtable", 3, "X", "u");
    index.apply(&[(Seq(3), &c)]).unwrap();
    let ids = [uuid, "plain-id", "in-memtable", "missing", "6A0C1C8E-2F4B-4C4E-9F5E-0123456789AB", uuid];
    let want: Vec<bool> = ids.iter().map(|id| index.find_event_id(id).unwrap().is_some()).collect();
    assert_eq!(want, [true, true, true, false, false, true]);
    assert_eq!(index.contains_event_ids(&ids).unwrap(), want);
    assert!(index.contains_event_ids(&[]).unwrap().is_empty());
}

#[test]
fn contains_event_ids_since_finds_what_was_indexed_after_the_generation_in_memtable_flushes_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    let old = event("old", 1, "X", "u");
    index.apply(&[(Seq(1), &old)]).unwrap();
    index.persist().unwrap();
    let since = index.generation();
    // After the generation: one event flushed to a new segment, one merged with the old segment, one left in
    // the memtable.
    let (flushed, merged, in_mem) =
        (event("flushed", 2, "X", "u"), event("merged", 3, "X", "u"), event("mem", 4, "X", "u"));
    index.apply(&[(Seq(2), &flushed)]).unwrap();
    index.persist().unwrap();
    index.apply(&[(Seq(3), &merged)]).unwrap();
    index.persist().unwrap();
    index.compact().unwrap();
    index.apply(&[(Seq(4), &in_mem)]).unwrap();
    let ids = ["flushed", "merged", "mem", "missing"];
    assert_eq!(index.contains_event_ids_since(&ids, since).unwrap(), [true, true, true, false]);
    // What was indexed before the generation is for the first look (`contains_event_ids`) to find.
    assert_eq!(index.contains_event_ids(&["old"]).unwrap(), [true]);
    assert_eq!(index.generation(), index.generation());
    assert_ne!(index.generation(), since);
}

#[test]
fn insight_events_are_only_found_by_insight_queries() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    let std_ev = event("a", 1, "X", "u");
    let mut ins = event("b", 2, "X", "u");
    ins.category = EventCategory::Insight;
    index.apply(&[(Seq(1), &std_ev), (Seq(2), &ins)]).unwrap();
    let mut q = by(AttributeKey::EventName, "X");
    assert_eq!(seqs(&index, &q), vec![1]);
    q.category = QueryCategory::Insight;
    assert_eq!(seqs(&index, &q), vec![2]);
    q.conditions = vec![Condition::equals(AttributeKey::EventId, "a")];
    assert!(seqs(&index, &q).is_empty());
}

#[test]
fn a_cursor_at_the_oldest_possible_position_ends_the_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    let a = event("a", i64::MIN, "X", "u");
    index.apply(&[(Seq(1), &a)]).unwrap();
    let end = Position { time: EventTime(i64::MIN), seq: Seq(0) };
    assert!(index.lookup(&EventQuery::default(), 5, Some(end)).unwrap().hits.is_empty());
    let page = index.lookup(&EventQuery::default(), 0, None).unwrap();
    assert!(page.hits.is_empty() && page.more, "a zero-size page still says whether matches exist");
}

fn tiny(memtable_docs: usize) -> IndexOptions {
    IndexOptions { memtable_docs, merge_factor: 2, background_merge: false, ..IndexOptions::default() }
}

fn events(n: usize) -> Vec<IndexFields> {
    (0..n).map(|i| event(&format!("id-{i}"), i as i64 * 10, if i % 2 == 0 { "Even" } else { "Odd" }, "u")).collect()
}

fn apply_range(index: &EventIndex, evs: &[IndexFields], from: usize, to: usize) {
    let batch: Vec<(Seq, &IndexFields)> = (from..to).map(|i| (Seq(i as u64 + 1), &evs[i])).collect();
    index.apply(&batch).unwrap();
}

fn segment_files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn apply_through_moves_the_checkpoint_past_skipped_records() {
    let dir = tempfile::tempdir().unwrap();
    let index = EventIndex::open(dir.path()).unwrap();
    let a = event("a", 1, "X", "u");
    index.apply_through(&[], Seq(3)).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(3)));
    index.apply_through(&[(Seq(4), &a)], Seq(9)).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(9)));
    assert_eq!(seqs(&index, &EventQuery::default()), vec![4]);
    // An older `through` never moves the checkpoint back.
    index.apply_through(&[], Seq(5)).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(9)));
    index.persist().unwrap();
    drop(index);
    assert_eq!(EventIndex::open(dir.path()).unwrap().checkpoint(), Some(Seq(9)));
}

#[test]
fn reopen_without_persist_restarts_from_the_last_flushed_segment_and_replay_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events(23);
    {
        let index = EventIndex::open_with(dir.path(), tiny(5)).unwrap();
        apply_range(&index, &evs, 0, 23);
        assert_eq!(index.checkpoint(), Some(Seq(23)));
    } // dropped without persist: the 3 events in the memtable are lost
    let index = EventIndex::open_with(dir.path(), tiny(5)).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(20)), "four memtables of 5 were flushed");
    assert_eq!(seqs(&index, &EventQuery::default()).len(), 20);
    apply_range(&index, &evs, 0, 23); // the service replays the journal; seqs <= 20 are skipped
    assert_eq!(seqs(&index, &EventQuery::default()), (1..=23).rev().collect::<Vec<_>>());
    assert_eq!(seqs(&index, &by(AttributeKey::EventName, "Odd")).len(), 11);
    assert_eq!(index.find_event_id("id-22").unwrap(), Some(Seq(23)));
    assert_eq!(index.find_event_id("id-0").unwrap(), Some(Seq(1)));
}

#[test]
fn find_event_id_returns_the_first_record_across_segments_and_memtable() {
    let dir = tempfile::tempdir().unwrap();
    let opts = IndexOptions { memtable_docs: 2, merge_factor: 3, background_merge: false, ..IndexOptions::default() };
    let index = EventIndex::open_with(dir.path(), opts).unwrap();
    let uuid = "6a0c1c8e-2f4b-4c4e-9f5e-0123456789ab";
    let evs: Vec<IndexFields> = (0..9).map(|i| event(if i % 4 == 1 { uuid } else { "x" }, 100 - i, "X", "u")).collect();
    apply_range(&index, &evs, 0, 9);
    assert_eq!(index.segment_sizes(), vec![6, 2], "a merged segment, a flushed one, and 1 event in the memtable");
    assert_eq!(index.find_event_id(uuid).unwrap(), Some(Seq(2)));
    assert_eq!(index.find_event_id("x").unwrap(), Some(Seq(1)));
    assert_eq!(seqs(&index, &by(AttributeKey::EventId, uuid)), vec![2, 6]);
    assert_eq!(index.find_event_id("6a0c1c8e-2f4b-4c4e-9f5e-0123456789ac").unwrap(), None);
}

#[test]
fn a_crash_between_the_steps_of_a_flush_or_merge_reopens_a_consistent_state() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let evs = events(12);
    let index = EventIndex::open_with(&live, tiny(4)).unwrap();
    apply_range(&index, &evs, 0, 4); // flush #1
    index.persist().unwrap();
    let before = root.path().join("before");
    copy_dir(&live, &before);
    apply_range(&index, &evs, 4, 8); // flush #2 then a merge of #1 and #2
    index.persist().unwrap();
    drop(index);
    let after = root.path().join("after");
    copy_dir(&live, &after);
    let new_files: Vec<String> =
        segment_files(&after).into_iter().filter(|f| !segment_files(&before).contains(f)).collect();
    assert!(!new_files.is_empty());

    // Crash after the new segment was renamed into place but before the manifest was: the old state,
    // with the unlisted segment and half-written temp files removed.
    let crashed = root.path().join("crash-before-manifest");
    copy_dir(&before, &crashed);
    for f in &new_files {
        std::fs::copy(after.join(f), crashed.join(f)).unwrap();
    }
    std::fs::write(crashed.join("MANIFEST.tmp"), b"OTIXMAN\x01 torn").unwrap();
    std::fs::write(crashed.join("00000000000000ff.seg.tmp"), b"torn").unwrap();
    let index = EventIndex::open_with(&crashed, tiny(4)).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(4)));
    assert_eq!(seqs(&index, &EventQuery::default()), vec![4, 3, 2, 1]);
    drop(index);
    assert_eq!(segment_files(&crashed), segment_files(&before));
    assert!(!crashed.join("MANIFEST.tmp").exists());

    // Crash after the merge's manifest was renamed but before its inputs were deleted: the new state.
    let crashed = root.path().join("crash-before-delete");
    copy_dir(&after, &crashed);
    for f in segment_files(&before) {
        std::fs::copy(before.join(&f), crashed.join(&f)).unwrap();
    }
    let index = EventIndex::open_with(&crashed, tiny(4)).unwrap();
    assert_eq!(index.checkpoint(), Some(Seq(8)));
    assert_eq!(seqs(&index, &EventQuery::default()), (1..=8).rev().collect::<Vec<_>>());
    drop(index);
    assert_eq!(segment_files(&crashed), segment_files(&after));
}

#[test]
fn a_damaged_segment_is_reported_as_corrupted_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events(10);
    {
        let index = EventIndex::open_with(dir.path(), tiny(100)).unwrap();
        apply_range(&index, &evs, 0, 10);
        index.persist().unwrap();
    }
    let name = segment_files(dir.path()).pop().unwrap();
    let path = dir.path().join(&name);
    let original = std::fs::read(&path).unwrap();
    for at in [0, 9, original.len() / 2, original.len() - 13, original.len() - 1] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        match EventIndex::open(dir.path()) {
            Err(IndexError::Corrupted { file, .. }) => assert!(file.ends_with(&name), "{}", file.display()),
            other => panic!("byte {at}: expected Corrupted, got {:?}", other.map(|_| ())),
        }
    }
    std::fs::write(&path, &original[..original.len() / 3]).unwrap();
    assert!(matches!(EventIndex::open(dir.path()), Err(IndexError::Corrupted { .. })));
    std::fs::remove_file(&path).unwrap();
    let err = EventIndex::open(dir.path()).err().unwrap();
    assert!(matches!(err, IndexError::Corrupted { .. }) && err.to_string().contains(&name), "{err}");
}

#[test]
fn background_merges_and_compact_never_duplicate_or_lose_events() {
    let dir = tempfile::tempdir().unwrap();
    let opts = IndexOptions { memtable_docs: 3, merge_factor: 2, background_merge: true, ..IndexOptions::default() };
    let index = EventIndex::open_with(dir.path(), opts).unwrap();
    let evs = events(200);
    for from in (0..200).step_by(7) {
        apply_range(&index, &evs, from, (from + 7).min(200));
        assert_eq!(seqs(&index, &EventQuery::default()).len(), (from + 7).min(200));
    }
    index.compact().unwrap(); // races the background merger on purpose
    assert_eq!(index.segment_sizes().iter().sum::<usize>(), 200);
    assert_eq!(seqs(&index, &EventQuery::default()), (1..=200).rev().collect::<Vec<_>>());
    assert_eq!(seqs(&index, &by(AttributeKey::EventName, "Odd")).len(), 100);
}
