//! Lookup execution: posting streams over one snapshot, intersected by leapfrog seeks, cut into pages.

use fjall::{Keyspace, Readable, Snapshot};
use model::{AttributeKey, EventQuery};

use crate::key::{self, OrderKey};
use crate::{Hit, IndexError, Page, Position};

/// How many single steps a stream takes before it re-seeks with a fresh range iterator. Stepping is cheap
/// when the target is near (dense intersections); a fresh iterator costs a descent through every LSM level,
/// so it only pays for long jumps. Hard-coded: a tuning knob, not a format.
const STEPS_BEFORE_SEEK: usize = 8;

/// The bounds every stream of one lookup shares, as order keys (ascending = newest first), both inclusive.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    lower: OrderKey,
    upper: OrderKey,
}

impl Bounds {
    /// `None` when no key can satisfy the query's time range and cursor.
    fn of(query: &EventQuery, after: Option<Position>) -> Option<Bounds> {
        // The newest admissible key: at most `end`, with any seq (u64::MAX sorts first within a time).
        let mut lower = match query.end {
            Some(end) => OrderKey::new(end, model::Seq(u64::MAX)),
            None => OrderKey::FIRST,
        };
        if let Some(p) = after {
            lower = lower.max(OrderKey::new(p.time, p.seq).successor()?);
        }
        // The oldest admissible key: at least `start`, with any seq (0 sorts last within a time).
        let upper = match query.start {
            Some(start) => OrderKey::new(start, model::Seq(0)),
            None => OrderKey::LAST,
        };
        (lower <= upper).then_some(Bounds { lower, upper })
    }
}

/// One sorted stream of order keys, positioned at its current key (or exhausted).
enum Stream<'a> {
    Posting(PostingStream<'a>),
    /// A short stream materialised in memory (the candidates of an EventId equality).
    List {
        keys: Vec<OrderKey>,
        at: usize,
    },
}

impl Stream<'_> {
    fn current(&self) -> Option<OrderKey> {
        match self {
            Stream::Posting(p) => p.current,
            Stream::List { keys, at } => keys.get(*at).copied(),
        }
    }

    /// Moves to the first key >= `target` (never backwards).
    fn seek(&mut self, target: OrderKey) -> Result<(), IndexError> {
        match self {
            Stream::Posting(p) => p.seek(target),
            Stream::List { keys, at } => {
                while keys.get(*at).is_some_and(|k| *k < target) {
                    *at += 1;
                }
                Ok(())
            }
        }
    }
}

struct PostingStream<'a> {
    snapshot: &'a Snapshot,
    postings: &'a Keyspace,
    prefix: Vec<u8>,
    upper_key: Vec<u8>,
    iter: fjall::Iter,
    current: Option<OrderKey>,
}

impl<'a> PostingStream<'a> {
    fn open(
        snapshot: &'a Snapshot,
        postings: &'a Keyspace,
        prefix: Vec<u8>,
        bounds: Bounds,
    ) -> Result<PostingStream<'a>, IndexError> {
        let upper_key = key::with_order(&prefix, bounds.upper);
        let iter = snapshot.range(postings, key::with_order(&prefix, bounds.lower)..=upper_key.clone());
        let mut s = PostingStream { snapshot, postings, prefix, upper_key, iter, current: None };
        s.step()?;
        Ok(s)
    }

    fn step(&mut self) -> Result<(), IndexError> {
        self.current = match self.iter.next() {
            None => None,
            Some(guard) => {
                let k = guard.key().map_err(|source| IndexError::Storage { op: "read posting", source })?;
                Some(self.decode(&k)?)
            }
        };
        Ok(())
    }

    fn decode(&self, k: &[u8]) -> Result<OrderKey, IndexError> {
        // The range lies inside this prefix and every key under a prefix is prefix + order suffix; anything else
        // means the keyspace holds bytes this crate did not write.
        k.strip_prefix(&self.prefix[..]).and_then(OrderKey::decode).ok_or_else(|| IndexError::Corrupted {
            reason: format!("posting key of {} bytes is not prefix + order suffix", k.len()),
        })
    }

    fn seek(&mut self, target: OrderKey) -> Result<(), IndexError> {
        for _ in 0..STEPS_BEFORE_SEEK {
            match self.current {
                Some(c) if c < target => self.step()?,
                _ => return Ok(()),
            }
        }
        if self.current.is_some_and(|c| c < target) {
            self.iter =
                self.snapshot.range(self.postings, key::with_order(&self.prefix, target)..=self.upper_key.clone());
            self.step()?;
        }
        Ok(())
    }
}

/// A rough selectivity rank per attribute: the most selective stream drives the intersection, so the others
/// are sought to its (sparse) keys instead of being walked. Lower = expected rarer values.
fn selectivity_rank(k: AttributeKey) -> u8 {
    match k {
        AttributeKey::EventId => 0,
        AttributeKey::AccessKeyId => 1,
        AttributeKey::ResourceName => 2,
        AttributeKey::SourceIpAddress => 3,
        AttributeKey::Username => 4,
        AttributeKey::ErrorCode => 5,
        AttributeKey::EventName => 6,
        AttributeKey::UserAgent => 7,
        AttributeKey::ResourceType => 8,
        AttributeKey::EventSource => 9,
        AttributeKey::AccountId => 10,
        AttributeKey::ReadOnly => 11,
    }
}

pub(crate) struct Tables<'a> {
    pub snapshot: &'a Snapshot,
    pub postings: &'a Keyspace,
    pub event_ids: &'a Keyspace,
}

pub(crate) fn lookup(
    t: &Tables<'_>,
    query: &EventQuery,
    limit: usize,
    after: Option<Position>,
) -> Result<Page, IndexError> {
    let empty = Page { hits: Vec::new(), more: false };
    let Some(bounds) = Bounds::of(query, after) else {
        return Ok(empty);
    };
    let category = match query.category {
        model::QueryCategory::Standard => model::EventCategory::Standard,
        model::QueryCategory::Insight => model::EventCategory::Insight,
    };

    let mut attrs: Vec<&(AttributeKey, String)> = query.attributes.iter().collect();
    attrs.sort_by_key(|(k, v)| (selectivity_rank(*k), v.len()));
    attrs.dedup();

    let mut streams = Vec::with_capacity(attrs.len().max(1));
    for (k, v) in attrs {
        let s = if *k == AttributeKey::EventId {
            Stream::List { keys: event_id_candidates(t, category, v, bounds)?, at: 0 }
        } else {
            let prefix = key::posting_prefix(category, *k, v.as_bytes());
            Stream::Posting(PostingStream::open(t.snapshot, t.postings, prefix, bounds)?)
        };
        if s.current().is_none() {
            return Ok(empty);
        }
        streams.push(s);
    }
    if streams.is_empty() {
        streams.push(Stream::Posting(PostingStream::open(t.snapshot, t.postings, key::all_prefix(category), bounds)?));
    }

    let want = limit.saturating_add(1);
    let mut found: Vec<OrderKey> = Vec::with_capacity(want.min(1024));
    while found.len() < want {
        match intersect_next(&mut streams)? {
            None => break,
            Some(k) => {
                found.push(k);
                let Some(next) = k.successor() else { break };
                streams[0].seek(next)?;
            }
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    Ok(Page { hits: found.into_iter().map(|k| Hit { seq: k.seq, time: k.time }).collect(), more })
}

/// Leapfrog: seek every stream to the largest current key until all agree (a match) or one runs out.
fn intersect_next(streams: &mut [Stream<'_>]) -> Result<Option<OrderKey>, IndexError> {
    let Some(mut target) = streams[0].current() else {
        return Ok(None);
    };
    let mut agreeing = 1;
    let mut i = 1 % streams.len();
    while agreeing < streams.len() {
        streams[i].seek(target)?;
        match streams[i].current() {
            None => return Ok(None),
            Some(c) if c == target => agreeing += 1,
            Some(c) => {
                target = c;
                agreeing = 1;
            }
        }
        i = (i + 1) % streams.len();
    }
    Ok(Some(target))
}

/// The records an EventId equality can match in this category and window: the first record indexed with that
/// id (the eventId map) plus any later duplicates (kept as ordinary postings because they should not happen).
fn event_id_candidates(
    t: &Tables<'_>,
    category: model::EventCategory,
    event_id: &str,
    bounds: Bounds,
) -> Result<Vec<OrderKey>, IndexError> {
    let mut keys = Vec::new();
    let stored = t
        .snapshot
        .get(t.event_ids, key::event_id_key(event_id))
        .map_err(|source| IndexError::Storage { op: "read event id", source })?;
    if let Some(v) = stored {
        let (order, c) = key::decode_event_id_value(&v)
            .ok_or_else(|| IndexError::Corrupted { reason: format!("event id map value of {} bytes", v.len()) })?;
        if c == category && bounds.lower <= order && order <= bounds.upper {
            keys.push(order);
        }
    }
    let prefix = key::posting_prefix(category, AttributeKey::EventId, event_id.as_bytes());
    let mut dups = PostingStream::open(t.snapshot, t.postings, prefix, bounds)?;
    while let Some(k) = dups.current {
        keys.push(k);
        dups.step()?;
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}
