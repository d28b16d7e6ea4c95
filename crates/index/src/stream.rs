//! A query inside one segment, as a tree of forward-only id streams: posting cursors and small id lists at the
//! leaves, AND (leapfrog seeks, rarest first), OR (a heap of children: the values of one attribute, the terms
//! a prefix or a CIDR block found in the dictionary) and AND-NOT (the exclusions). Every stream answers
//! `seek(target)`: its first id `>= target`, never moving backwards, so a lookup that stops after a page
//! reads only the blocks that page needed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::IndexError;
use crate::postings::Cursor;

pub enum Stream<'a> {
    Posting(Box<Cursor<'a>>),
    List {
        ids: Vec<u32>,
        at: usize,
    },
    /// Every child has the id. Children sorted rarest first.
    And(Vec<Stream<'a>>),
    /// Some child has the id. `heap` holds (current id, child) of the children not exhausted, once started.
    Or {
        children: Vec<Stream<'a>>,
        heap: BinaryHeap<Reverse<(u32, usize)>>,
        started: bool,
    },
    /// The first has the id and the second does not.
    AndNot(Box<Stream<'a>>, Box<Stream<'a>>),
}

impl<'a> Stream<'a> {
    /// The AND of `children` (at least one), rarest first.
    pub fn and(mut children: Vec<Stream<'a>>) -> Stream<'a> {
        if children.len() == 1 {
            return children.pop().unwrap_or(Stream::List { ids: Vec::new(), at: 0 });
        }
        children.sort_by_key(Stream::len);
        Stream::And(children)
    }

    /// The OR of `children` (at least one).
    pub fn or(mut children: Vec<Stream<'a>>) -> Stream<'a> {
        if children.len() == 1 {
            return children.pop().unwrap_or(Stream::List { ids: Vec::new(), at: 0 });
        }
        Stream::Or { children, heap: BinaryHeap::new(), started: false }
    }

    /// An upper bound of the ids this stream yields (drives the order of an AND).
    pub fn len(&self) -> usize {
        match self {
            Stream::Posting(c) => c.count(),
            Stream::List { ids, .. } => ids.len(),
            Stream::And(c) => c.iter().map(Stream::len).min().unwrap_or(0),
            Stream::Or { children, .. } => children.iter().map(Stream::len).sum(),
            Stream::AndNot(pos, _) => pos.len(),
        }
    }

    /// A single posting list: its length is exact, so a count over a whole segment needs no decoding.
    pub fn as_single_posting(&self) -> Option<usize> {
        match self {
            Stream::Posting(c) => Some(c.count()),
            _ => None,
        }
    }

    /// Moves to the first id `>= target` and returns it (`None` when exhausted).
    pub fn seek(&mut self, target: u32) -> Result<Option<u32>, IndexError> {
        match self {
            Stream::Posting(c) => c.seek(target),
            Stream::List { ids, at } => {
                *at += ids[*at..].partition_point(|&d| d < target);
                Ok(ids.get(*at).copied())
            }
            Stream::And(children) => {
                let n = children.len();
                let (mut t, mut agreeing, mut i) = (target, 0, 0);
                loop {
                    let Some(c) = children[i].seek(t)? else { return Ok(None) };
                    if c == t {
                        agreeing += 1;
                    } else {
                        t = c;
                        agreeing = 1;
                    }
                    if agreeing == n {
                        return Ok(Some(t));
                    }
                    i = (i + 1) % n;
                }
            }
            Stream::Or { children, heap, started } => {
                if !*started {
                    *started = true;
                    for (i, c) in children.iter_mut().enumerate() {
                        if let Some(d) = c.seek(target)? {
                            heap.push(Reverse((d, i)));
                        }
                    }
                }
                while let Some(&Reverse((d, i))) = heap.peek() {
                    if d >= target {
                        return Ok(Some(d));
                    }
                    heap.pop();
                    if let Some(d) = children[i].seek(target)? {
                        heap.push(Reverse((d, i)));
                    }
                }
                Ok(None)
            }
            Stream::AndNot(pos, neg) => {
                let mut t = target;
                loop {
                    let Some(c) = pos.seek(t)? else { return Ok(None) };
                    if neg.seek(c)? != Some(c) {
                        return Ok(Some(c));
                    }
                    let Some(next) = c.checked_add(1) else { return Ok(None) };
                    t = next;
                }
            }
        }
    }
}

impl Stream<'_> {
    /// Sets the bit `d - lo` of every id `d` in `lo..hi` this (fresh) stream yields: lists are decoded one
    /// after the other and united in the bitmap, which for wide unions and exclusions is much cheaper than
    /// merging them id by id; an intersection is still leapfrogged.
    pub fn fill(&mut self, lo: u32, hi: u32, bits: &mut [u64]) -> Result<(), IndexError> {
        let set = |d: u32, bits: &mut [u64]| {
            let i = (d - lo) as usize;
            bits[i / 64] |= 1 << (i % 64);
        };
        match self {
            Stream::Posting(c) => {
                let mut at = c.seek(lo)?;
                while let Some(d) = at {
                    if d >= hi {
                        break;
                    }
                    set(d, bits);
                    at = c.advance()?;
                }
            }
            Stream::Or { children, .. } => {
                for c in children {
                    c.fill(lo, hi, bits)?;
                }
            }
            Stream::AndNot(pos, neg) => {
                pos.fill(lo, hi, bits)?;
                let n: usize = bits.iter().map(|w| w.count_ones() as usize).sum();
                if n.saturating_mul(16) < neg.len() {
                    // Few candidates against long exclusions: seek the exclusions to each.
                    let candidates: Vec<u32> = crate::segment::set_bits(bits, lo).collect();
                    for d in candidates {
                        if neg.seek(d)? == Some(d) {
                            let i = (d - lo) as usize;
                            bits[i / 64] &= !(1 << (i % 64));
                        }
                    }
                } else {
                    let mut out = vec![0u64; bits.len()];
                    neg.fill(lo, hi, &mut out)?;
                    for (b, o) in bits.iter_mut().zip(out) {
                        *b &= !o;
                    }
                }
            }
            Stream::List { .. } | Stream::And(_) => {
                let mut t = lo;
                while let Some(d) = self.seek(t)? {
                    if d >= hi {
                        break;
                    }
                    set(d, bits);
                    t = d + 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[u32]) -> Stream<'static> {
        Stream::List { ids: ids.to_vec(), at: 0 }
    }

    fn all(mut s: Stream<'_>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut t = 0;
        while let Some(d) = s.seek(t).unwrap() {
            out.push(d);
            t = d + 1;
        }
        out
    }

    fn filled(mut s: Stream<'_>, lo: u32, hi: u32) -> Vec<u32> {
        let mut bits = vec![0u64; (hi - lo).div_ceil(64) as usize];
        s.fill(lo, hi, &mut bits).unwrap();
        crate::segment::set_bits(&bits, lo).collect()
    }

    #[test]
    fn fill_sets_what_seek_yields() {
        let mk = || {
            Stream::AndNot(
                Box::new(Stream::or(vec![list(&[1, 5, 9, 70, 130]), list(&[2, 5, 64, 200])])),
                Box::new(Stream::or(vec![list(&[5]), list(&[64, 130])])),
            )
        };
        assert_eq!(filled(mk(), 2, 199), vec![2, 9, 70]);
        let long_exclusion = || {
            Stream::AndNot(
                Box::new(list(&[3, 40])),
                Box::new(list(&(0..100).filter(|x| x % 2 == 0).collect::<Vec<_>>())),
            )
        };
        assert_eq!(filled(long_exclusion(), 0, 100), vec![3]);
        let and = Stream::and(vec![list(&[1, 2, 3, 66]), Stream::or(vec![list(&[2]), list(&[66])])]);
        assert_eq!(filled(and, 0, 67), vec![2, 66]);
    }

    #[test]
    fn and_or_and_not_compose() {
        let or = Stream::or(vec![list(&[1, 5, 9]), list(&[2, 5, 7]), list(&[])]);
        assert_eq!(all(or), vec![1, 2, 5, 7, 9]);
        let and = Stream::and(vec![Stream::or(vec![list(&[1, 5, 9]), list(&[2, 7])]), list(&[2, 3, 5, 9])]);
        assert_eq!(all(and), vec![2, 5, 9]);
        let not =
            Stream::AndNot(Box::new(list(&[1, 2, 3, 4, 5])), Box::new(Stream::or(vec![list(&[2]), list(&[4, 5])])));
        assert_eq!(all(not), vec![1, 3]);
        let mut s = Stream::or(vec![list(&[3, 8]), list(&[4])]);
        assert_eq!(s.seek(5).unwrap(), Some(8));
        assert_eq!(s.seek(2).unwrap(), Some(8), "never backwards");
    }
}
