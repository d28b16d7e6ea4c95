//! Property test: every lookup page equals the linear filter (`EventQuery::matches`, newest first) over the same
//! events, including while events keep arriving between pages, with data spread over the memtable, flushed
//! segments and merged segments, and across a restart that loses the memtable (replayed as the service does).
//! Queries mix every form of the grammar: values OR-ed, prefixes, CIDR blocks (IPv4 and IPv6), exclusions
//! (alone too), with time ranges; and `count` (with `by`) equals a linear count of the same matches.

use index::{EventIndex, IndexOptions, Page, Position};
use std::collections::HashMap;

use model::{
    AttributeKey, Condition, EventCategory, EventQuery, EventTime, IndexFields, IpNet, Pattern, QueryCategory,
    Resource, Seq,
};
use proptest::prelude::*;

/// Values chosen to collide: prefixes of each other, 0x00 inside, empty, and two long values sharing the
/// stored prefix of the long-value form.
fn value_pool() -> Vec<String> {
    let long_a = format!("{}A", "u".repeat(300));
    let long_b = format!("{}B", "u".repeat(300));
    [
        "Get",
        "GetObject",
        "Get\0",
        "\0",
        "",
        "Mary",
        "arn:aws:iam::1:user/Mary",
        "true",
        "false",
        // Addresses for CIDR blocks, with look-alikes that are not addresses or not canonical.
        "10.1.2.3",
        "10.200.0.1",
        "100.1.2.3",
        "192.168.0.9",
        "2001:db8::1",
        "2001:db9::5",
        "::ffff:10.1.2.3",
        "10.1.2.3x",
        "010.1.2.3",
    ]
    .into_iter()
    .map(String::from)
    .chain([long_a, long_b])
    .collect()
}

fn opt_value() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::sample::select(value_pool()))
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(value_pool())
}

fn fields() -> impl Strategy<Value = IndexFields> {
    let ids = prop::sample::select(vec!["e1", "e2", "e3", "6a0c1c8e-2f4b-4c4e-9f5e-0123456789ab"]);
    (
        (ids, 0i64..12, value(), value(), prop::option::of(any::<bool>()), opt_value(), opt_value()),
        (
            prop::collection::vec((opt_value(), opt_value()), 0..3),
            opt_value(),
            opt_value(),
            opt_value(),
            prop::collection::vec(value(), 0..3),
            prop::bool::weighted(0.2),
        ),
    )
        .prop_map(|((id, t, name, source, ro, user, akid), (res, ip, err, ua, accounts, insight))| {
            let mut account_ids = accounts;
            account_ids.sort();
            account_ids.dedup();
            IndexFields {
                event_id: id.to_string(),
                event_time: EventTime(t * 1000 - 3000),
                event_name: name,
                event_source: source,
                read_only: ro,
                username: user,
                access_key_id: akid,
                resources: res.into_iter().map(|(resource_type, arn)| Resource { resource_type, arn }).collect(),
                source_ip: ip,
                error_code: err,
                user_agent: ua,
                account_ids,
                provenance: Default::default(),
                category: if insight { EventCategory::Insight } else { EventCategory::Standard },
            }
        })
}

/// Prefixes of the pool's values (the empty one is "the attribute is present").
fn prefix() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "Get", "G", "\0", "arn:aws:", "u", "10.", "10.1", "2001:db8", "::", "tr"])
        .prop_map(String::from)
}

fn cidr() -> impl Strategy<Value = IpNet> {
    prop::sample::select(vec![
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.2.3/32",
        "0.0.0.0/0",
        "100.0.0.0/6",
        "192.168.0.0/24",
        "2001:db8::/32",
        "::/0",
        "::ffff:0:0/96",
    ])
    .prop_map(|s| IpNet::parse(s).unwrap())
}

fn pattern(key: AttributeKey) -> BoxedStrategy<Pattern> {
    let exact = value().prop_map(Pattern::Exact);
    match key {
        AttributeKey::EventId => prop::sample::select(vec!["e1", "e2", "6a0c1c8e-2f4b-4c4e-9f5e-0123456789ab", "nope"])
            .prop_map(|id| Pattern::Exact(id.to_string()))
            .boxed(),
        AttributeKey::SourceIpAddress => {
            prop_oneof![2 => exact, 2 => prefix().prop_map(Pattern::Prefix), 3 => cidr().prop_map(Pattern::Cidr)]
                .boxed()
        }
        _ => prop_oneof![3 => exact, 2 => prefix().prop_map(Pattern::Prefix)].boxed(),
    }
}

fn condition() -> impl Strategy<Value = Condition> {
    let key = prop_oneof![
        3 => prop::sample::select(AttributeKey::ALL.to_vec()),
        1 => Just(AttributeKey::SourceIpAddress),
    ];
    (key, prop::bool::weighted(0.3)).prop_flat_map(|(key, negated)| {
        prop::collection::vec(pattern(key), 1..=3).prop_map(move |patterns| Condition { key, negated, patterns })
    })
}

fn query() -> impl Strategy<Value = EventQuery> {
    (
        prop::collection::vec(condition(), 0..=3),
        prop::option::of((-4i64..10, prop::bool::ANY)),
        prop::option::of((-4i64..10, prop::bool::ANY)),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(conditions, start, end, insight)| EventQuery {
            conditions,
            // Half the bounds fall exactly on event times (inclusive edges), half between them.
            start: start.map(|(s, between)| EventTime(s * 1000 - if between { 500 } else { 0 })),
            end: end.map(|(e, between)| EventTime(e * 1000 + if between { 500 } else { 0 })),
            category: if insight { QueryCategory::Insight } else { QueryCategory::Standard },
        })
}

/// The reference count: matches among `events[..applied]`, and per value of `by` (each value of a
/// multi-valued attribute once per event), and those without any value.
fn expected_counts(
    events: &[IndexFields],
    applied: usize,
    q: &EventQuery,
    by: AttributeKey,
) -> (u64, HashMap<Vec<u8>, u64>, u64) {
    let (mut total, mut per, mut without) = (0, HashMap::new(), 0);
    for f in events[..applied].iter().filter(|f| q.matches(f)) {
        total += 1;
        let mut values = by.values(f);
        values.sort_unstable();
        values.dedup();
        if values.is_empty() {
            without += 1;
        }
        for v in values {
            *per.entry(v.as_bytes().to_vec()).or_insert(0) += 1;
        }
    }
    (total, per, without)
}

/// The reference: matches among `events[..applied]`, newest first, strictly after `after`.
fn expected(events: &[IndexFields], applied: usize, q: &EventQuery, after: Option<Position>) -> Vec<(i64, u64)> {
    let mut v: Vec<(i64, u64)> = events[..applied]
        .iter()
        .enumerate()
        .filter(|(_, f)| q.matches(f))
        .map(|(i, f)| (f.event_time.0, i as u64 + 1))
        .filter(|&(t, s)| after.is_none_or(|p| (t, s) < (p.time.0, p.seq.0)))
        .collect();
    v.sort_by(|a, b| b.cmp(a));
    v
}

fn apply(index: &EventIndex, events: &[IndexFields], from: usize, to: usize) {
    let batch: Vec<(Seq, &IndexFields)> = (from..to).map(|i| (Seq(i as u64 + 1), &events[i])).collect();
    index.apply(&batch).unwrap();
}

/// Index shapes: everything in the memtable (the server's defaults), or a 7-event memtable with inline merges
/// of 2 or 3 segments, so that a few dozen events span the memtable, flushed segments and merged segments;
/// with the default block cache, no cache at all, or a cache of one page (every read evicts the last one).
fn options(shape: u8) -> IndexOptions {
    let small = |merge_factor, cache_bytes| IndexOptions {
        memtable_docs: 7,
        merge_factor,
        background_merge: false,
        cache_bytes,
    };
    match shape {
        0 => IndexOptions { background_merge: false, ..IndexOptions::default() },
        1 => small(2, 0),
        2 => small(3, 4096),
        _ => small(2, IndexOptions::default().cache_bytes),
    }
}

/// A restart: the unflushed memtable is lost, and the caller replays the journal after the checkpoint.
fn reopen(index: EventIndex, dir: &std::path::Path, shape: u8, events: &[IndexFields], applied: usize) -> EventIndex {
    drop(index);
    let index = EventIndex::open_with(dir, options(shape)).unwrap();
    let from = index.checkpoint().map_or(0, |s| s.0 as usize);
    assert!(from <= applied, "checkpoint {from} beyond what was applied ({applied})");
    apply(&index, events, from, applied);
    // Replay is idempotent: applying the same records again changes nothing.
    apply(&index, events, 0, applied);
    index
}

fn hits(p: &Page) -> Vec<(i64, u64)> {
    p.hits.iter().map(|h| (h.time.0, h.seq.0)).collect()
}

/// A tmpfs directory when there is one: every flush and merge fsyncs its files, which on a busy
/// shared disk would dominate the test's run time.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn counts_equal_a_linear_count(
        events in prop::collection::vec(fields(), 0..60),
        queries in prop::collection::vec((query(), prop::sample::select(AttributeKey::ALL[1..].to_vec())), 1..6),
        shape in 0u8..4,
    ) {
        let dir = scratch_dir();
        let index = EventIndex::open_with(dir.path(), options(shape)).unwrap();
        apply(&index, &events, 0, events.len());
        for (q, by) in &queries {
            let (total, per, without) = expected_counts(&events, events.len(), q, *by);
            let plain = index.count(q, None).unwrap();
            prop_assert_eq!(plain.total, total, "query {:?}", q);
            let c = index.count(q, Some(*by)).unwrap();
            prop_assert_eq!(c.total, total, "query {:?} by {:?}", q, by);
            prop_assert_eq!(&c.by, &per, "query {:?} by {:?}", q, by);
            prop_assert_eq!(c.without, without, "query {:?} by {:?}", q, by);
        }
    }

    #[test]
    fn every_page_equals_the_linear_filter_while_events_arrive(
        events in prop::collection::vec(fields(), 0..60),
        queries in prop::collection::vec((query(), 1usize..=7), 1..8),
        split in 0.0f64..=1.0,
        shape in 0u8..4,
        restart_at in prop::option::of(0usize..8),
    ) {
        let dir = scratch_dir();
        let mut index = EventIndex::open_with(dir.path(), options(shape)).unwrap();
        // Two batches; the second arrives while the first query pages through the first.
        let first = (events.len() as f64 * split) as usize;
        apply(&index, &events, 0, first);
        let mut applied = first;
        for (n, (q, limit)) in queries.iter().enumerate() {
            if restart_at == Some(n) {
                index = reopen(index, dir.path(), shape, &events, applied);
            }
            let mut after = None;
            let mut pages = 0;
            loop {
                let page = index.lookup(q, *limit, after).unwrap();
                let want = expected(&events, applied, q, after);
                prop_assert_eq!(hits(&page), want.iter().copied().take(*limit).collect::<Vec<_>>(), "query {:?} after {:?}", q, after);
                prop_assert_eq!(page.more, want.len() > *limit);
                pages += 1;
                if applied < events.len() {
                    apply(&index, &events, applied, events.len());
                    applied = events.len();
                }
                match page.next_position() {
                    Some(p) => after = Some(p),
                    None => break,
                }
                prop_assert!(pages <= events.len() + 1, "paging must terminate");
            }
        }
    }
}
