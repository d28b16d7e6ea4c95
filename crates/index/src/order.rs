//! The newest-first order of lookup results, (event time desc, seq desc), and the bounds a query and a cursor put on it.

use model::{EventQuery, EventTime, Seq};

use crate::Position;

/// A place in the newest-first order. `a < b` means `a` comes first (is newer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rank {
    pub time: i64,
    pub seq: u64,
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Rank {
    /// The first place of every list (newest possible).
    pub const FIRST: Rank = Rank { time: i64::MAX, seq: u64::MAX };
    /// The last place of every list (oldest possible).
    pub const LAST: Rank = Rank { time: i64::MIN, seq: 0 };

    pub fn new(time: EventTime, seq: Seq) -> Rank {
        Rank { time: time.0, seq: seq.0 }
    }

    /// The place right after this one; `None` after [`Rank::LAST`].
    pub fn successor(self) -> Option<Rank> {
        if self.seq > 0 {
            Some(Rank { time: self.time, seq: self.seq - 1 })
        } else if self.time > i64::MIN {
            Some(Rank { time: self.time - 1, seq: u64::MAX })
        } else {
            None
        }
    }
}

/// The window every source of one lookup shares, both ends inclusive (`lower` is the newest admissible place).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub lower: Rank,
    pub upper: Rank,
}

impl Bounds {
    /// `None` when no place can satisfy the query's time range and cursor.
    pub fn of(query: &EventQuery, after: Option<Position>) -> Option<Bounds> {
        let mut lower = match query.end {
            Some(end) => Rank { time: end.0, seq: u64::MAX },
            None => Rank::FIRST,
        };
        if let Some(p) = after {
            lower = lower.max(Rank::new(p.time, p.seq).successor()?);
        }
        let upper = match query.start {
            Some(start) => Rank { time: start.0, seq: 0 },
            None => Rank::LAST,
        };
        (lower <= upper).then_some(Bounds { lower, upper })
    }

    pub fn contains(&self, r: Rank) -> bool {
        self.lower <= r && r <= self.upper
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_sorts_newest_first_then_highest_seq() {
        let ranks = [
            Rank { time: i64::MAX, seq: 1 },
            Rank { time: 5, seq: 9 },
            Rank { time: 5, seq: 2 },
            Rank { time: 0, seq: 100 },
            Rank { time: -1, seq: 100 },
            Rank::LAST,
        ];
        assert!(ranks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Rank { time: 5, seq: 0 }.successor(), Some(Rank { time: 4, seq: u64::MAX }));
        assert_eq!(Rank::LAST.successor(), None);
    }
}
