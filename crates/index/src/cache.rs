//! The block cache: a bounded LRU of checked segment pages, shared by every segment of one index, so that the
//! index's memory is its small resident structures plus this cache, whatever the size of the data on disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

pub struct BlockCache {
    capacity_pages: usize,
    lru: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BlockCache {
    /// A cache holding at most `bytes` of pages (rounded down to whole pages; 0 caches nothing).
    pub fn new(bytes: usize) -> BlockCache {
        let capacity_pages = bytes / PAGE;
        BlockCache {
            capacity_pages,
            lru: Mutex::new(Lru {
                map: HashMap::with_capacity(capacity_pages.min(1 << 16)),
                nodes: Vec::new(),
                head: NIL,
                tail: NIL,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: PageKey) -> Option<Arc<[u8]>> {
        let mut lru = self.lru.lock();
        let Some(&i) = lru.map.get(&key) else {
            drop(lru);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if lru.head != i {
            lru.unlink(i);
            lru.push_front(i);
        }
        let page = lru.nodes[i as usize].page.clone();
        drop(lru);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(page)
    }

    pub fn insert(&self, key: PageKey, page: Arc<[u8]>) {
        if self.capacity_pages == 0 {
            return;
        }
        let mut lru = self.lru.lock();
        if let Some(&i) = lru.map.get(&key) {
            lru.nodes[i as usize].page = page;
            lru.unlink(i);
            lru.push_front(i);
            return;
        }
        let i = if lru.nodes.len() < self.capacity_pages {
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
        self.lru.lock().nodes.iter().map(|n| n.page.len()).sum()
    }

    /// (hits, misses) since the cache was made.
    pub fn hit_counts(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
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
