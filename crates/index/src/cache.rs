//! The block cache: a bounded LRU of checked segment pages, shared by every segment of one index, so that the
//! index's memory is its small resident structures plus this cache, whatever the size of the data on disk.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Bytes per page. Hard-coded: part of the segment format (one crc32c per page of the on-demand region).
/// 4 KiB is the OS page size, so a cold read costs one page of the OS cache.
pub const PAGE: usize = 4096;

/// (segment id, page number). Segment ids are never reused inside one index directory, so a page of a merged
/// and deleted segment can never be mistaken for another's: it just ages out.
pub type PageKey = (u64, u32);

const NIL: u32 = u32::MAX;

struct Node {
    key: PageKey,
    page: Arc<[u8]>,
    prev: u32,
    next: u32,
}

/// Least recently used first out; nodes live in a vector linked by index, reused once the cache is full.
struct Lru {
    map: HashMap<PageKey, u32>,
    nodes: Vec<Node>,
    /// Most recently used.
    head: u32,
    /// Least recently used: the next to go.
    tail: u32,
    capacity_pages: usize,
    hits: u64,
    misses: u64,
}

impl Lru {
    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.nodes[i as usize].prev, self.nodes[i as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = self.head;
        if self.head != NIL {
            self.nodes[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }
}

/// Shards of a large cache, each its own LRU under its own lock, so that concurrent lookups rarely wait on
/// each other. Hard-coded; caches under [`MIN_PAGES_PER_SHARD`] pages per shard use one shard (exact LRU).
const SHARDS: usize = 16;
const MIN_PAGES_PER_SHARD: usize = 64;

pub struct BlockCache {
    shards: Vec<Mutex<Lru>>,
}

impl BlockCache {
    /// A cache holding at most `bytes` of pages (rounded down to whole pages; 0 caches nothing).
    pub fn new(bytes: usize) -> BlockCache {
        let pages = bytes / PAGE;
        let n = if pages >= SHARDS * MIN_PAGES_PER_SHARD { SHARDS } else { 1 };
        let shards = (0..n)
            .map(|i| {
                // The first `pages % n` shards take one page more, so the shards add up to `pages`.
                let capacity_pages = pages / n + usize::from(i < pages % n);
                Mutex::new(Lru {
                    map: HashMap::with_capacity(capacity_pages.min(1 << 16)),
                    nodes: Vec::new(),
                    head: NIL,
                    tail: NIL,
                    capacity_pages,
                    hits: 0,
                    misses: 0,
                })
            })
            .collect();
        BlockCache { shards }
    }

    fn shard(&self, key: PageKey) -> &Mutex<Lru> {
        // Consecutive pages of a segment go to different shards; segment ids spread the rest.
        let h = (key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) ^ u64::from(key.1);
        &self.shards[h as usize % self.shards.len()]
    }

    pub fn get(&self, key: PageKey) -> Option<Arc<[u8]>> {
        let mut lru = self.shard(key).lock();
        let Some(&i) = lru.map.get(&key) else {
            lru.misses += 1;
            return None;
        };
        if lru.head != i {
            lru.unlink(i);
            lru.push_front(i);
        }
        lru.hits += 1;
        Some(lru.nodes[i as usize].page.clone())
    }

    pub fn insert(&self, key: PageKey, page: Arc<[u8]>) {
        let mut lru = self.shard(key).lock();
        if lru.capacity_pages == 0 {
            return;
        }
        if let Some(&i) = lru.map.get(&key) {
            lru.nodes[i as usize].page = page;
            lru.unlink(i);
            lru.push_front(i);
            return;
        }
        let i = if lru.nodes.len() < lru.capacity_pages {
            lru.nodes.push(Node { key, page, prev: NIL, next: NIL });
            (lru.nodes.len() - 1) as u32
        } else {
            let i = lru.tail;
            lru.unlink(i);
            let old = std::mem::replace(&mut lru.nodes[i as usize], Node { key, page, prev: NIL, next: NIL }).key;
            lru.map.remove(&old);
            i
        };
        lru.map.insert(key, i);
        lru.push_front(i);
    }

    /// Bytes of the pages held now.
    pub fn resident_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().nodes.iter().map(|n| n.page.len()).sum::<usize>()).sum()
    }

    /// (hits, misses) since the cache was made.
    pub fn hit_counts(&self) -> (u64, u64) {
        self.shards.iter().map(|s| s.lock()).fold((0, 0), |(h, m), s| (h + s.hits, m + s.misses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(b: u8) -> Arc<[u8]> {
        Arc::from(vec![b; 8])
    }

    #[test]
    fn evicts_the_least_recently_used_page() {
        let c = BlockCache::new(2 * PAGE);
        c.insert((1, 0), page(0));
        c.insert((1, 1), page(1));
        assert!(c.get((1, 0)).is_some()); // (1, 1) is now the least recently used
        c.insert((1, 2), page(2));
        assert!(c.get((1, 1)).is_none());
        assert_eq!(c.get((1, 0)).as_deref(), Some(&[0u8; 8][..]));
        assert_eq!(c.get((1, 2)).as_deref(), Some(&[2u8; 8][..]));
        c.insert((1, 2), page(9));
        assert_eq!(c.get((1, 2)).as_deref(), Some(&[9u8; 8][..]));
        assert_eq!(c.resident_bytes(), 16);
    }

    #[test]
    fn a_sharded_cache_holds_at_most_its_size() {
        let pages = SHARDS * MIN_PAGES_PER_SHARD + 5;
        let c = BlockCache::new(pages * PAGE);
        assert_eq!(c.shards.len(), SHARDS);
        for i in 0..(3 * pages) as u32 {
            c.insert((7, i), page(1));
        }
        assert!(c.resident_bytes() <= pages * 8);
        assert!(c.get((7, 3 * pages as u32 - 1)).is_some(), "the newest page stays");
    }

    #[test]
    fn a_zero_or_one_page_cache_still_works() {
        let c = BlockCache::new(0);
        c.insert((1, 0), page(0));
        assert!(c.get((1, 0)).is_none());
        let c = BlockCache::new(PAGE);
        for i in 0..10 {
            c.insert((2, i), page(i as u8));
            assert_eq!(c.get((2, i)).as_deref(), Some(&[i as u8; 8][..]));
        }
        assert!(c.get((2, 3)).is_none());
    }
}
