//! Segments read on demand: thousands of events (full posting blocks, skip tables, many doc blocks and pages)
//! give the same answers as the linear filter whatever the block cache size, merges stream around the cache,
//! and a damaged page read on demand is `Corrupted`, naming the file and the page, never a panic.

use index::{EventIndex, IndexError, IndexOptions, Position};
use model::{AttributeKey, Condition, EventCategory, EventQuery, EventTime, IndexFields, QueryCategory, Resource, Seq};

/// Deterministic events with skewed values: some lists are dense (full bit-packed blocks), some sparse; ids
/// are UUIDs (the id table) except every 50th (a dictionary term); a few events arrive late (out of time order)
/// and a few are Insights.
fn events(n: usize) -> Vec<IndexFields> {
    (0..n)
        .map(|i| {
            let late = if i % 37 == 0 { 5_000 } else { 0 };
            let event_id = if i % 50 == 0 {
                format!("custom-id-{i}")
            } else {
                format!("{:08x}-{:04x}-4abc-8def-{:012x}", (i as u64).wrapping_mul(2_654_435_761) as u32, i % 65536, i)
            };
            IndexFields {
                event_id,
                event_time: EventTime(1_000_000 + i as i64 * 7 - late),
                event_name: format!("Op{}", (i * i) % 11),
                event_source: format!("svc{}.amazonaws.com", i % 3),
                read_only: Some(i % 4 != 0),
                username: (i % 9 != 0).then(|| format!("user-{}", (i / 3) % 17)),
                access_key_id: None,
                resources: (0..i % 3)
                    .map(|r| Resource {
                        resource_type: Some(format!("AWS::T::{r}")),
                        arn: Some(format!("arn:aws:s3:::bucket-{}", (i + r) % 101)),
                    })
                    .collect(),
                source_ip: Some(format!("10.0.{}.{}", i % 7, i % 251)),
                error_code: (i % 29 == 0).then(|| "AccessDenied".to_string()),
                user_agent: Some("aws-cli/2".to_string()),
                account_ids: vec!["123456789012".to_string()],
                provenance: Default::default(),
                category: if i % 97 == 5 { EventCategory::Insight } else { EventCategory::Standard },
            }
        })
        .collect()
}

fn apply_all(index: &EventIndex, evs: &[IndexFields]) {
    for (c, chunk) in evs.chunks(1000).enumerate() {
        let batch: Vec<(Seq, &IndexFields)> =
            chunk.iter().enumerate().map(|(i, f)| (Seq((c * 1000 + i) as u64 + 1), f)).collect();
        index.apply(&batch).unwrap();
    }
}

fn queries(evs: &[IndexFields]) -> Vec<EventQuery> {
    let q = |attributes: Vec<(AttributeKey, &str)>| EventQuery {
        conditions: attributes.into_iter().map(|(k, v)| Condition::equals(k, v)).collect(),
        ..Default::default()
    };
    let mut v = vec![
        q(vec![]),
        q(vec![(AttributeKey::ReadOnly, "true")]),
        q(vec![(AttributeKey::EventName, "Op3")]),
        q(vec![(AttributeKey::Username, "user-4"), (AttributeKey::EventSource, "svc1.amazonaws.com")]),
        q(vec![(AttributeKey::ErrorCode, "AccessDenied"), (AttributeKey::ReadOnly, "false")]),
        q(vec![(AttributeKey::ResourceName, "arn:aws:s3:::bucket-7")]),
        q(vec![(AttributeKey::SourceIpAddress, "10.0.3.200")]),
        q(vec![(AttributeKey::EventId, &evs[777].event_id)]),
        q(vec![(AttributeKey::EventId, &evs[1500].event_id)]),
        EventQuery { category: QueryCategory::Insight, ..Default::default() },
    ];
    let mut windowed = q(vec![(AttributeKey::ReadOnly, "true")]);
    windowed.start = Some(EventTime(1_000_000 + 1000 * 7));
    windowed.end = Some(EventTime(1_000_000 + 2000 * 7));
    v.push(windowed);
    v
}

/// Every match of `q`, newest first, paging by `limit`.
fn all_pages(index: &EventIndex, q: &EventQuery, limit: usize) -> Result<Vec<(i64, u64)>, IndexError> {
    let mut out = Vec::new();
    let mut after: Option<Position> = None;
    loop {
        let page = index.lookup(q, limit, after)?;
        out.extend(page.hits.iter().map(|h| (h.time.0, h.seq.0)));
        match page.next_position() {
            Some(p) => after = Some(p),
            None => return Ok(out),
        }
    }
}

fn expected(evs: &[IndexFields], q: &EventQuery) -> Vec<(i64, u64)> {
    let mut v: Vec<(i64, u64)> =
        evs.iter().enumerate().filter(|(_, f)| q.matches(f)).map(|(i, f)| (f.event_time.0, i as u64 + 1)).collect();
    v.sort_by(|a, b| b.cmp(a));
    v
}

fn options(cache_bytes: usize) -> IndexOptions {
    IndexOptions { memtable_docs: 700, merge_factor: 2, background_merge: false, cache_bytes }
}

#[test]
fn thousands_of_events_match_the_linear_filter_with_any_cache_size() {
    let evs = events(6000);
    for cache_bytes in [0, 4096, 3 * 4096, 64 << 20] {
        let dir = tempfile::tempdir().unwrap();
        let index = EventIndex::open_with(dir.path(), options(cache_bytes)).unwrap();
        apply_all(&index, &evs);
        index.compact().unwrap();
        assert!(index.segment_sizes().len() >= 2, "merged and flushed segments: {:?}", index.segment_sizes());
        for q in queries(&evs) {
            let want = expected(&evs, &q);
            assert!(!want.is_empty(), "{q:?} matches something");
            for limit in [1, 50, 1000] {
                assert_eq!(all_pages(&index, &q, limit).unwrap(), want, "cache {cache_bytes} limit {limit} {q:?}");
            }
        }
        for (i, f) in evs.iter().enumerate().step_by(13) {
            assert_eq!(index.find_event_id(&f.event_id).unwrap(), Some(Seq(i as u64 + 1)), "{}", f.event_id);
        }
        assert_eq!(index.find_event_id("00000000-0000-4abc-8def-ffffffffffff").unwrap(), None);
        assert!(index.cache_resident_bytes() <= cache_bytes, "the cache stays within its size");
    }
}

#[test]
fn merges_stream_around_the_cache_and_keep_every_event() {
    let evs = events(5000);
    let dir = tempfile::tempdir().unwrap();
    // A one-page cache and a 1,000-event memtable: every merge reads inputs far larger than the cache.
    let index = EventIndex::open_with(dir.path(), IndexOptions { memtable_docs: 1000, ..options(4096) }).unwrap();
    apply_all(&index, &evs);
    index.compact().unwrap();
    let (hits, misses) = index.cache_hit_counts();
    assert_eq!((hits, misses), (0, 0), "flushes and merges never go through the cache");
    assert_eq!(index.segment_sizes().iter().sum::<usize>(), 5000);
    assert!(index.segment_sizes().contains(&4000), "{:?}", index.segment_sizes());
    drop(index);
    let index = EventIndex::open_with(dir.path(), options(4096)).unwrap();
    for q in queries(&evs) {
        assert_eq!(all_pages(&index, &q, 100).unwrap(), expected(&evs, &q), "{q:?}");
    }
}

/// Everything a reader can touch: every page of every lookup, and every id.
fn touch_everything(index: &EventIndex, evs: &[IndexFields]) -> Result<(), IndexError> {
    for q in queries(evs) {
        all_pages(index, &q, 500)?;
    }
    for name in 0..11 {
        all_pages(index, &EventQuery::equal([(AttributeKey::EventName, format!("Op{name}"))]), 500)?;
    }
    for f in evs {
        index.find_event_id(&f.event_id)?;
    }
    Ok(())
}

#[test]
fn a_damaged_page_read_on_demand_is_corrupted_naming_the_file_and_page() {
    let evs = events(3000);
    let dir = tempfile::tempdir().unwrap();
    {
        let index = EventIndex::open_with(dir.path(), options(64 << 20)).unwrap();
        apply_all(&index, &evs);
        index.compact().unwrap();
    }
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let path = segs.pop().unwrap();
    let original = std::fs::read(&path).unwrap();
    assert!(original.len() > 5 * 4096, "the segment spans several pages");
    // Bytes in the doc table, the id table, the postings and near the end of the paged region.
    for at in [4096 + 100, original.len() / 4, original.len() / 2, original.len() * 2 / 3] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x08;
        std::fs::write(&path, &bytes).unwrap();
        // Open reads only the footer, the resident sections and the first page: the damage shows up on the read.
        let index = EventIndex::open_with(dir.path(), options(64 << 20)).unwrap();
        match touch_everything(&index, &evs) {
            Err(IndexError::Corrupted { file, offset, reason }) => {
                assert_eq!(file, path, "{reason}");
                assert_eq!(offset, at as u64 / 4096 * 4096, "the damaged page is named: {reason}");
            }
            other => panic!("byte {at}: expected Corrupted, got {other:?}"),
        }
    }
    std::fs::write(&path, &original).unwrap();
    let index = EventIndex::open_with(dir.path(), options(64 << 20)).unwrap();
    touch_everything(&index, &evs).unwrap();
}
