//! Behaviour of the index as its callers see it: checkpoints and replay, reopening, eventId lookups, the seed case.

use index::{EventIndex, IndexError, Position};
use model::{AttributeKey, EventCategory, EventQuery, EventTime, IndexFields, QueryCategory, Resource, Seq};

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
        category: EventCategory::Standard,
    }
}

fn by(key: AttributeKey, value: &str) -> EventQuery {
    EventQuery { attributes: vec![(key, value.to_string())], ..Default::default() }
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
        attributes: vec![(AttributeKey::EventName, "CreateUser".into()), (AttributeKey::Username, "John".into())],
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
    q.attributes = vec![(AttributeKey::EventId, "a".into())];
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
