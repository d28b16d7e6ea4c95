//! The memtable: the most recent events, indexed in hash maps so that they are visible to lookups at once,
//! until they are flushed to an immutable segment.

use std::borrow::Cow;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hasher};

use model::{AttributeKey, Condition, EventCategory, IndexFields, Pattern, Seq};

use crate::Counts;
use crate::order::{Bounds, Rank};
use crate::term::{self, ALL_TAG, EVENT_ID_TAG};

/// A keyed hasher over xxh3: much faster than SipHash on the short keys of every posting, and seeded per
/// process from std's random keys so that crafted values cannot force collisions.
#[derive(Clone)]
pub struct TermHashState(u64);

impl Default for TermHashState {
    fn default() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        TermHashState(h.finish())
    }
}

pub struct TermHasher {
    seed: u64,
    h: u64,
}

impl Hasher for TermHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.h = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.seed ^ self.h);
    }
    fn write_usize(&mut self, n: usize) {
        self.h = (self.h ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    fn write_u128(&mut self, n: u128) {
        self.write(&n.to_le_bytes());
    }
    fn finish(&self) -> u64 {
        self.h
    }
}

impl BuildHasher for TermHashState {
    type Hasher = TermHasher;
    fn build_hasher(&self) -> TermHasher {
        TermHasher { seed: self.0, h: 0 }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct MemDoc {
    pub rank: Rank,
    pub insight: bool,
}

/// Local ids are arrival order (seq order); posting lists are therefore ascending.
#[derive(Default)]
pub struct Memtable {
    pub docs: Vec<MemDoc>,
    /// Newest event time among docs `0..=i`: lets a newest-first search stop early when events arrive roughly
    /// in time order (they do, apart from a few late ones).
    max_time_upto: Vec<i64>,
    pub terms: HashMap<Vec<u8>, Vec<u32>, TermHashState>,
    /// Canonical UUID event id → every local id carrying it (almost always exactly one).
    pub uuids: HashMap<u128, IdList, TermHashState>,
    key_buf: Vec<u8>,
}

/// One local id inline; duplicates (which ingest should never produce) spill to a vector.
#[derive(Clone, Debug)]
pub enum IdList {
    One(u32),
    Many(Vec<u32>),
}

impl IdList {
    pub fn as_slice(&self) -> &[u32] {
        match self {
            IdList::One(id) => std::slice::from_ref(id),
            IdList::Many(v) => v,
        }
    }
}

impl Memtable {
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn post(&mut self, c: EventCategory, tag: u8, value: &[u8], id: u32) {
        term::key_into(&mut self.key_buf, c, tag, value);
        match self.terms.get_mut(&self.key_buf[..]) {
            // Values repeat within an event (a resource's ARN and short name can coincide only if deduped by
            // `values`, which it does), so the list stays strictly ascending.
            Some(list) => {
                if list.last() != Some(&id) {
                    list.push(id)
                }
            }
            None => {
                self.terms.insert(self.key_buf.clone(), vec![id]);
            }
        }
    }

    pub fn insert(&mut self, seq: Seq, f: &IndexFields) {
        let id = self.docs.len() as u32;
        let rank = Rank::new(f.event_time, seq);
        let c = f.category;
        self.docs.push(MemDoc { rank, insight: c == EventCategory::Insight });
        let max = self.max_time_upto.last().map_or(rank.time, |&m| m.max(rank.time));
        self.max_time_upto.push(max);
        self.post(c, ALL_TAG, b"", id);
        for k in AttributeKey::ALL {
            if k == AttributeKey::EventId {
                continue;
            }
            for v in k.values(f) {
                self.post(c, k.tag(), v.as_bytes(), id);
            }
        }
        match term::parse_uuid(&f.event_id) {
            Some(u) => match self.uuids.get_mut(&u) {
                None => {
                    self.uuids.insert(u, IdList::One(id));
                }
                Some(IdList::One(first)) => {
                    let first = *first;
                    self.uuids.insert(u, IdList::Many(vec![first, id]));
                }
                Some(IdList::Many(v)) => v.push(id),
            },
            None => self.post(c, EVENT_ID_TAG, f.event_id.as_bytes(), id),
        }
    }

    /// The seq of the first record here carrying `event_id`.
    pub fn find_event_id(&self, event_id: &str) -> Option<Seq> {
        let first = match term::parse_uuid(event_id) {
            Some(u) => self.uuids.get(&u).and_then(|l| l.as_slice().first().copied()),
            None => [EventCategory::Standard, EventCategory::Insight]
                .into_iter()
                .filter_map(|c| self.terms.get(&term::key(c, EVENT_ID_TAG, event_id.as_bytes())))
                .filter_map(|l| l.first().copied())
                .min(),
        }?;
        self.docs.get(first as usize).map(|d| Seq(d.rank.seq))
    }

    /// The sorted local ids each pattern of `key` finds, appended to `out` (nothing when it finds nothing).
    /// Prefixes and CIDR blocks scan the memtable's terms: at most [`IndexOptions::memtable_docs`] events'
    /// worth, in a hash map.
    ///
    /// [`IndexOptions::memtable_docs`]: crate::IndexOptions::memtable_docs
    fn pattern_lists<'m>(
        &'m self,
        key: AttributeKey,
        pattern: &Pattern,
        category: EventCategory,
        out: &mut Vec<Cow<'m, [u32]>>,
    ) {
        match pattern {
            Pattern::Exact(v) if key == AttributeKey::EventId && term::parse_uuid(v).is_some() => {
                if let Some(l) = term::parse_uuid(v).and_then(|u| self.uuids.get(&u)) {
                    out.push(Cow::Borrowed(l.as_slice()));
                }
            }
            Pattern::Exact(v) if key == AttributeKey::Provenance => {
                let terms = model::provenance_terms(v);
                let mut both: Option<Vec<u32>> = None;
                for t in terms {
                    let Some(l) = self.terms.get(&term::key(category, key.tag(), t.as_bytes())) else { return };
                    both = Some(match both {
                        None => l.clone(),
                        Some(b) => b.into_iter().filter(|id| l.binary_search(id).is_ok()).collect(),
                    });
                }
                if let Some(b) = both {
                    out.push(Cow::Owned(b));
                }
            }
            Pattern::Exact(v) => {
                if let Some(l) = self.terms.get(&term::key(category, key.tag(), v.as_bytes())) {
                    out.push(Cow::Borrowed(l.as_slice()));
                }
            }
            Pattern::Prefix(_) | Pattern::Cidr(_) => {
                let prefix = term::key(category, key.tag(), pattern.scan_prefix().unwrap_or_default().as_bytes());
                for (k, l) in &self.terms {
                    if k.starts_with(&prefix) && std::str::from_utf8(&k[2..]).is_ok_and(|v| pattern.matches_value(v)) {
                        out.push(Cow::Borrowed(l.as_slice()));
                    }
                }
            }
        }
    }

    /// The lists of the docs matching `conditions`: each condition's alternatives united; `None` when nothing
    /// here can match.
    pub fn plan(&self, conditions: &[Condition], category: EventCategory) -> Option<MemPlan<'_>> {
        let mut all = Vec::with_capacity(conditions.len().max(1));
        let mut excluded = Vec::new();
        for c in conditions {
            let mut alternatives = Vec::new();
            for p in &c.patterns {
                self.pattern_lists(c.key, p, category, &mut alternatives);
            }
            if c.negated {
                excluded.extend(alternatives.iter().flat_map(|l| l.iter().copied()));
            } else if alternatives.is_empty() {
                return None;
            } else {
                all.push(union(alternatives));
            }
        }
        if all.is_empty() {
            all.push(Cow::Borrowed(self.terms.get(&term::key(category, ALL_TAG, b""))?.as_slice()));
        }
        all.sort_by_key(|l| l.len());
        excluded.sort_unstable();
        excluded.dedup();
        Some(MemPlan { all, excluded })
    }

    /// Adds the matches of `plan` within `bounds` to `top`.
    pub fn search(&self, plan: &MemPlan<'_>, insight: bool, bounds: Bounds, top: &mut TopK) {
        let Some((driver, others)) = plan.all.split_first() else { return };
        let mut his: Vec<usize> = others.iter().map(|l| l.len()).collect();
        'candidates: for &id in driver.iter().rev() {
            let Some(doc) = self.docs.get(id as usize) else { continue };
            let newest_here = self.max_time_upto[id as usize];
            if newest_here < bounds.upper.time || top.worst().is_some_and(|w| newest_here < w.time) {
                break; // no doc at or before `id` can enter the window or beat what is already kept
            }
            if doc.insight != insight || !bounds.contains(doc.rank) || !top.admits(doc.rank) {
                continue;
            }
            for (list, hi) in others.iter().zip(his.iter_mut()) {
                let p = list[..*hi].partition_point(|&x| x < id);
                if list.get(p) != Some(&id) {
                    *hi = p;
                    continue 'candidates;
                }
                *hi = p;
            }
            if plan.excluded.binary_search(&id).is_ok() {
                continue;
            }
            top.push(doc.rank);
        }
    }

    /// Adds the number of matches of `plan` within `bounds` to `acc`, and with `by`, per value of that
    /// attribute (each of its terms here counted against the matches).
    pub fn count(
        &self,
        plan: &MemPlan<'_>,
        category: EventCategory,
        bounds: Bounds,
        by: Option<AttributeKey>,
        acc: &mut Counts,
    ) {
        let Some((driver, others)) = plan.all.split_first() else { return };
        let insight = category == EventCategory::Insight;
        let mut matched = vec![0u64; self.docs.len().div_ceil(64)];
        let mut here = 0u64;
        for &id in driver.iter() {
            let Some(doc) = self.docs.get(id as usize) else { continue };
            if doc.insight != insight
                || !bounds.contains(doc.rank)
                || others.iter().any(|l| l.binary_search(&id).is_err())
                || plan.excluded.binary_search(&id).is_ok()
            {
                continue;
            }
            here += 1;
            matched[id as usize / 64] |= 1 << (id % 64);
        }
        acc.total += here;
        let Some(by) = by else { return };
        let mut seen = vec![0u64; matched.len()];
        let prefix = term::key(category, by.tag(), b"");
        for (k, l) in &self.terms {
            if !k.starts_with(&prefix) {
                continue;
            }
            let mut n = 0;
            for &id in l {
                if matched[id as usize / 64] & (1 << (id % 64)) != 0 {
                    n += 1;
                    seen[id as usize / 64] |= 1 << (id % 64);
                }
            }
            if n > 0 {
                *acc.by.entry(k[2..].to_vec()).or_default() += n;
            }
        }
        acc.without += here - seen.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
    }
}

/// A query against the memtable: lists every match is in (shortest first), and the excluded ids (sorted).
pub struct MemPlan<'m> {
    all: Vec<Cow<'m, [u32]>>,
    excluded: Vec<u32>,
}

/// The sorted union of sorted lists.
fn union(mut lists: Vec<Cow<'_, [u32]>>) -> Cow<'_, [u32]> {
    if lists.len() == 1 {
        return lists.pop().unwrap_or_default();
    }
    let mut v: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    v.sort_unstable();
    v.dedup();
    Cow::Owned(v)
}

/// The best `k` places seen so far (newest first).
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Rank>,
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK { k, heap: BinaryHeap::with_capacity(k.min(4096) + 1) }
    }

    /// The worst place kept, once `k` are kept: nothing at or after it can enter any more.
    pub fn worst(&self) -> Option<Rank> {
        if self.heap.len() >= self.k { self.heap.peek().copied() } else { None }
    }

    pub fn admits(&self, r: Rank) -> bool {
        self.k > 0 && self.worst().is_none_or(|w| r < w)
    }

    pub fn push(&mut self, r: Rank) {
        if !self.admits(r) {
            return;
        }
        self.heap.push(r);
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    pub fn into_sorted(self) -> Vec<Rank> {
        self.heap.into_sorted_vec()
    }
}
