//! The block cache: a bounded LRU of immutable blocks (the index's checked segment pages, the journal's
//! decompressed blocks), shared by concurrent readers, so that memory is bounded whatever the size of the data
//! on disk. Bounded by weight (the caller says what a value weighs, e.g. its bytes); sharded, so that
//! concurrent lookups rarely wait on each other. Each shard is an `lru::LruCache` under its own lock.

use std::hash::{BuildHasher, Hash, RandomState};

use parking_lot::Mutex;

/// Shards of a large cache, each its own LRU under its own lock. Hard-coded; a cache smaller than
/// [`MIN_ENTRIES_PER_SHARD`] typical entries per shard uses one shard (exact LRU).
const SHARDS: usize = 16;
const MIN_ENTRIES_PER_SHARD: usize = 64;

struct Shard<K, V> {
    lru: lru::LruCache<K, V>,
    /// Sum of the weights of the values held.
    weight: usize,
    capacity: usize,
    hits: u64,
    misses: u64,
}

pub struct BlockCache<K, V> {
    shards: Vec<Mutex<Shard<K, V>>>,
    hasher: RandomState,
    weigh: fn(&V) -> usize,
}

impl<K: Hash + Eq, V: Clone> BlockCache<K, V> {
    /// A cache holding values of at most `capacity` total weight, as `weigh` weighs them (0 caches nothing).
    /// `typical_weight` (what one value usually weighs) decides whether the cache is large enough to shard.
    /// One value heavier than its shard is still kept, alone.
    pub fn new(capacity: usize, typical_weight: usize, weigh: fn(&V) -> usize) -> BlockCache<K, V> {
        let n = if capacity >= SHARDS * MIN_ENTRIES_PER_SHARD * typical_weight.max(1) { SHARDS } else { 1 };
        let shards = (0..n)
            .map(|i| {
                // The first `capacity % n` shards take one unit more, so the shards add up to `capacity`.
                let capacity = capacity / n + usize::from(i < capacity % n);
                Mutex::new(Shard { lru: lru::LruCache::unbounded(), weight: 0, capacity, hits: 0, misses: 0 })
            })
            .collect();
        BlockCache { shards, hasher: RandomState::new(), weigh }
    }

    fn shard(&self, key: &K) -> &Mutex<Shard<K, V>> {
        &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()]
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut shard = self.shard(key).lock();
        let found = shard.lru.get(key).cloned();
        match found {
            Some(_) => shard.hits += 1,
            None => shard.misses += 1,
        }
        found
    }

    /// Inserts (or replaces) `key` as the most recently used, then evicts least recently used values until the
    /// shard is within its capacity.
    pub fn insert(&self, key: K, value: V) {
        let mut shard = self.shard(&key).lock();
        if shard.capacity == 0 {
            return;
        }
        shard.weight += (self.weigh)(&value);
        if let Some(old) = shard.lru.put(key, value) {
            shard.weight -= (self.weigh)(&old);
        }
        while shard.weight > shard.capacity && shard.lru.len() > 1 {
            match shard.lru.pop_lru() {
                Some((_, old)) => shard.weight -= (self.weigh)(&old),
                None => break,
            }
        }
    }

    /// Total weight of the values held now.
    pub fn weight(&self) -> usize {
        self.shards.iter().map(|s| s.lock().weight).sum()
    }

    /// (hits, misses) since the cache was made.
    pub fn hit_counts(&self) -> (u64, u64) {
        self.shards.iter().map(|s| s.lock()).fold((0, 0), |(h, m), s| (h + s.hits, m + s.misses))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The index's use: pages of up to 4 KiB, weighed by their length.
    const PAGE: usize = 4096;

    fn pages(bytes: usize) -> BlockCache<(u64, u32), Arc<[u8]>> {
        BlockCache::new(bytes, PAGE, |p| p.len())
    }

    fn page(b: u8) -> Arc<[u8]> {
        Arc::from(vec![b; PAGE])
    }

    #[test]
    fn evicts_the_least_recently_used_page() {
        let c = pages(2 * PAGE);
        c.insert((1, 0), page(0));
        c.insert((1, 1), page(1));
        assert!(c.get(&(1, 0)).is_some()); // (1, 1) is now the least recently used
        c.insert((1, 2), page(2));
        assert!(c.get(&(1, 1)).is_none());
        assert_eq!(c.get(&(1, 0)).as_deref(), Some(&[0u8; PAGE][..]));
        assert_eq!(c.get(&(1, 2)).as_deref(), Some(&[2u8; PAGE][..]));
        c.insert((1, 2), page(9));
        assert_eq!(c.get(&(1, 2)).as_deref(), Some(&[9u8; PAGE][..]));
        assert_eq!(c.weight(), 2 * PAGE);
        assert_eq!(c.hit_counts(), (4, 1));
    }

    #[test]
    fn a_sharded_cache_holds_at_most_its_size() {
        let n = SHARDS * MIN_ENTRIES_PER_SHARD + 5;
        let c = pages(n * PAGE);
        assert_eq!(c.shards.len(), SHARDS);
        for i in 0..(3 * n) as u32 {
            c.insert((7, i), page(1));
        }
        assert!(c.weight() <= n * PAGE);
        assert!(c.get(&(7, 3 * n as u32 - 1)).is_some(), "the newest page stays");
    }

    #[test]
    fn a_zero_or_one_page_cache_still_works() {
        let c = pages(0);
        c.insert((1, 0), page(0));
        assert!(c.get(&(1, 0)).is_none());
        let c = pages(PAGE);
        for i in 0..10 {
            c.insert((2, i), page(i as u8));
            assert_eq!(c.get(&(2, i)).as_deref(), Some(&[i as u8; PAGE][..]));
        }
        assert!(c.get(&(2, 3)).is_none());
    }

    #[test]
    fn a_value_heavier_than_the_cache_is_kept_alone() {
        // The journal's use: decompressed blocks weighed by their length; a block larger than the cache is
        // still cached (and evicts everything else).
        let c: BlockCache<u64, Arc<Vec<u8>>> = BlockCache::new(100, 10, |b| b.len());
        c.insert(1, Arc::new(vec![0; 60]));
        c.insert(2, Arc::new(vec![0; 30]));
        c.insert(3, Arc::new(vec![0; 500]));
        assert!(c.get(&1).is_none() && c.get(&2).is_none());
        assert_eq!(c.get(&3).map(|b| b.len()), Some(500));
        assert_eq!(c.weight(), 500);
    }
}
