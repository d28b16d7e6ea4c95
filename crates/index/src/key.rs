//! Byte layout of the index's keys and values: posting keys, the newest-first order suffix, the eventId map.
//!
//! Every encoding here is a durable format described in `docs/formats/index.md`; never change one in place.

use model::{AttributeKey, EventCategory, EventTime, Seq};

/// Tag of the per-category "all events" posting list (attribute tags start at 1, see [`AttributeKey::tag`]).
pub const ALL_TAG: u8 = 0;

/// Values up to this many bytes are stored verbatim in posting keys. Longer ones (rare: a huge user agent or
/// resource name) are stored as their first `MAX_INLINE_VALUE` bytes plus a 128-bit hash, because fjall keys
/// are limited to 64 KiB and a 1 KiB key would be repeated at every restart point of a block.
/// Hard-coded: changing it changes the on-disk format.
pub const MAX_INLINE_VALUE: usize = 256;

/// Length field that marks the long (prefix + hash) form of a value.
const LONG_VALUE_MARK: u16 = u16::MAX;

/// Length of the order suffix: inverted time and inverted seq, both big-endian u64.
pub const ORDER_LEN: usize = 16;

/// The order suffix of a posting key: ascending byte order is newest first, i.e. (time desc, seq desc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey(pub [u8; ORDER_LEN]);

impl OrderKey {
    pub const FIRST: OrderKey = OrderKey([0; ORDER_LEN]);

    pub fn new(time: EventTime, seq: Seq) -> OrderKey {
        let mut b = [0u8; ORDER_LEN];
        // Flip the sign bit so i64 order becomes u64 order, then invert so newer sorts first.
        let t = !((time.0 as u64) ^ (1 << 63));
        b[..8].copy_from_slice(&t.to_be_bytes());
        b[8..].copy_from_slice(&(!seq.0).to_be_bytes());
        OrderKey(b)
    }

    pub fn time(&self) -> EventTime {
        let t = !u64::from_be_bytes(self.half(0));
        EventTime((t ^ (1 << 63)) as i64)
    }

    pub fn seq(&self) -> Seq {
        Seq(!u64::from_be_bytes(self.half(8)))
    }

    fn half(&self, at: usize) -> [u8; 8] {
        let mut h = [0u8; 8];
        h.copy_from_slice(&self.0[at..at + 8]);
        h
    }

    /// The order key immediately after this one, or `None` if this is the very last possible key.
    pub fn successor(&self) -> Option<OrderKey> {
        let mut b = self.0;
        for byte in b.iter_mut().rev() {
            if *byte == u8::MAX {
                *byte = 0;
            } else {
                *byte += 1;
                return Some(OrderKey(b));
            }
        }
        None
    }

    /// Reads the order suffix from the tail of a posting key.
    pub fn from_key_tail(key: &[u8]) -> Option<OrderKey> {
        let tail = key.len().checked_sub(ORDER_LEN).and_then(|at| key.get(at..))?;
        let mut b = [0u8; ORDER_LEN];
        b.copy_from_slice(tail);
        Some(OrderKey(b))
    }
}

pub fn category_byte(c: EventCategory) -> u8 {
    match c {
        EventCategory::Standard => 0,
        EventCategory::Insight => 1,
    }
}

pub fn category_from_byte(b: u8) -> Option<EventCategory> {
    match b {
        0 => Some(EventCategory::Standard),
        1 => Some(EventCategory::Insight),
        _ => None,
    }
}

/// The prefix shared by all postings of one (category, attribute, value):
/// `[category u8][tag u8][len u16 BE][value bytes]`, or for long values
/// `[category][tag][0xFFFF][first MAX_INLINE_VALUE bytes][xxh3-128 of the whole value, BE]`.
/// The length field makes the prefix unambiguous: no value's prefix is a prefix of another value's keys,
/// whatever bytes (0x00 included) the values hold.
pub fn posting_prefix(category: EventCategory, key: AttributeKey, value: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(4 + value.len().min(MAX_INLINE_VALUE + 16) + ORDER_LEN);
    p.push(category_byte(category));
    p.push(key.tag());
    if value.len() <= MAX_INLINE_VALUE {
        // MAX_INLINE_VALUE < u16::MAX, so the length always fits and never equals the long mark.
        p.extend_from_slice(&(value.len() as u16).to_be_bytes());
        p.extend_from_slice(value);
    } else {
        p.extend_from_slice(&LONG_VALUE_MARK.to_be_bytes());
        p.extend_from_slice(&value[..MAX_INLINE_VALUE]);
        p.extend_from_slice(&xxhash_rust::xxh3::xxh3_128(value).to_be_bytes());
    }
    p
}

/// The prefix of a category's "all events" list: `[category u8][ALL_TAG]`.
pub fn all_prefix(category: EventCategory) -> Vec<u8> {
    vec![category_byte(category), ALL_TAG]
}

pub fn with_order(prefix: &[u8], order: OrderKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + ORDER_LEN);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&order.0);
    k
}

/// Key of the eventId map: the id's bytes, compacted to 16 bytes when it is a canonical lowercase UUID
/// (what `opentrail` and CloudTrail assign), because the map holds one random key per event.
/// Form byte first so the two forms never collide: `[1][16 bytes]` or `[0][utf-8 bytes]`.
pub fn event_id_key(event_id: &str) -> Vec<u8> {
    match parse_uuid(event_id) {
        Some(u) => {
            let mut k = Vec::with_capacity(17);
            k.push(1);
            k.extend_from_slice(&u);
            k
        }
        None => {
            let mut k = Vec::with_capacity(1 + event_id.len());
            k.push(0);
            k.extend_from_slice(event_id.as_bytes());
            k
        }
    }
}

/// Parses exactly the canonical lowercase form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`; anything else
/// (uppercase, braces) is kept verbatim so that the round trip to the original string stays exact.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = hex_lower(b[i])?;
        let lo = hex_lower(b[i + 1])?;
        out[n] = (hi << 4) | lo;
        n += 1;
        i += 2;
    }
    Some(out)
}

fn hex_lower(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Value of the eventId map: `[seq u64 BE][order key 16][category u8]` — the order key so that a lookup by
/// EventId yields a hit (time, seq) without touching the journal.
pub const EVENT_ID_VALUE_LEN: usize = 8 + ORDER_LEN + 1;

pub fn event_id_value(seq: Seq, time: EventTime, category: EventCategory) -> [u8; EVENT_ID_VALUE_LEN] {
    let mut v = [0u8; EVENT_ID_VALUE_LEN];
    v[..8].copy_from_slice(&seq.0.to_be_bytes());
    v[8..8 + ORDER_LEN].copy_from_slice(&OrderKey::new(time, seq).0);
    v[8 + ORDER_LEN] = category_byte(category);
    v
}

/// Decodes an eventId map value; `None` means the bytes on disk are not what this module writes.
pub fn decode_event_id_value(v: &[u8]) -> Option<(OrderKey, EventCategory)> {
    if v.len() != EVENT_ID_VALUE_LEN {
        return None;
    }
    let order = OrderKey::from_key_tail(v.get(..8 + ORDER_LEN)?)?;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(v.get(..8)?);
    if order.seq().0 != u64::from_be_bytes(seq) {
        return None;
    }
    Some((order, category_from_byte(*v.get(8 + ORDER_LEN)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_key_sorts_newest_first_then_highest_seq() {
        let keys = [
            OrderKey::new(EventTime(i64::MAX), Seq(1)),
            OrderKey::new(EventTime(5), Seq(9)),
            OrderKey::new(EventTime(5), Seq(2)),
            OrderKey::new(EventTime(0), Seq(100)),
            OrderKey::new(EventTime(-1), Seq(100)),
            OrderKey::new(EventTime(i64::MIN), Seq(0)),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for k in keys {
            assert_eq!(OrderKey::new(k.time(), k.seq()), k);
        }
    }

    #[test]
    fn successor_is_the_next_key_in_order() {
        let k = OrderKey::new(EventTime(5), Seq(2));
        assert_eq!(k.successor(), Some(OrderKey::new(EventTime(5), Seq(1))));
        let k = OrderKey::new(EventTime(5), Seq(0));
        assert_eq!(k.successor(), Some(OrderKey::new(EventTime(4), Seq(u64::MAX))));
        assert_eq!(OrderKey([u8::MAX; ORDER_LEN]).successor(), None);
    }

    #[test]
    fn value_prefixes_never_prefix_each_other() {
        let c = EventCategory::Standard;
        let k = AttributeKey::EventName;
        let long = vec![b'x'; MAX_INLINE_VALUE + 1];
        let values: [&[u8]; 6] = [b"", b"Get", b"GetObject", b"Get\0", b"\0", &long];
        for a in values {
            for b in values {
                let (pa, pb) = (posting_prefix(c, k, a), posting_prefix(c, k, b));
                if a != b {
                    assert!(!with_order(&pb, OrderKey::FIRST).starts_with(&pa), "{a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn event_ids_compact_only_canonical_uuids() {
        assert_eq!(event_id_key("6a0c1c8e-2f4b-4c4e-9f5e-0123456789ab").len(), 17);
        assert_eq!(event_id_key("6A0C1C8E-2F4B-4C4E-9F5E-0123456789AB")[0], 0);
        assert_ne!(event_id_key("e1"), event_id_key("e2"));
        let v = event_id_value(Seq(7), EventTime(-3), EventCategory::Insight);
        let (o, c) = decode_event_id_value(&v).unwrap();
        assert_eq!((o.time(), o.seq(), c), (EventTime(-3), Seq(7), EventCategory::Insight));
        assert_eq!(decode_event_id_value(&v[1..]), None);
    }
}
