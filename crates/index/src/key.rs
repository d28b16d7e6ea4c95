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

/// Longest encoded order suffix: 8 bytes of time, a length byte and up to 8 bytes of seq.
pub const MAX_ORDER_LEN: usize = 17;

/// A place in the newest-first order, the suffix of every posting key. Ordered as the keys sort:
/// (time desc, seq desc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderKey {
    pub time: EventTime,
    pub seq: Seq,
}

impl Ord for OrderKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

impl PartialOrd for OrderKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl OrderKey {
    /// The first key of every list (newest possible).
    pub const FIRST: OrderKey = OrderKey { time: EventTime::MAX, seq: Seq(u64::MAX) };
    /// The last key of every list (oldest possible).
    pub const LAST: OrderKey = OrderKey { time: EventTime::MIN, seq: Seq(0) };

    pub fn new(time: EventTime, seq: Seq) -> OrderKey {
        OrderKey { time, seq }
    }

    /// Appends the byte form: `[!(time ^ sign bit) u64 BE][8 - n][!seq's n significant bytes, BE]`.
    /// Inversion makes ascending bytes mean newest first. The seq is variable length because it follows the
    /// time, so prefix compression never shares it: a fixed 8 bytes would cost ~4 bytes per posting for
    /// journals below 2^32 events. The length byte sorts longer (larger) seqs first and keeps the form
    /// prefix-free.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(!((self.time.0 as u64) ^ (1 << 63))).to_be_bytes());
        let n = (8 - self.seq.0.leading_zeros() as usize / 8).max(1);
        out.push((8 - n) as u8);
        out.extend(self.seq.0.to_be_bytes()[8 - n..].iter().map(|b| !b));
    }

    /// Decodes exactly one order suffix; `None` if the bytes are not one.
    pub fn decode(b: &[u8]) -> Option<OrderKey> {
        let time: [u8; 8] = b.get(..8)?.try_into().ok()?;
        let n = 8usize.checked_sub(usize::from(*b.get(8)?))?;
        let seq_bytes = b.get(9..)?;
        if n == 0 || seq_bytes.len() != n || (n > 1 && seq_bytes[0] == u8::MAX) {
            return None; // empty, wrong length, or not minimal (a leading zero byte): not what encode_into writes
        }
        let seq = seq_bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(!b));
        let t = !u64::from_be_bytes(time) ^ (1 << 63);
        Some(OrderKey { time: EventTime(t as i64), seq: Seq(seq) })
    }

    /// The order key immediately after this one, or `None` if this is the very last possible key.
    pub fn successor(&self) -> Option<OrderKey> {
        if self.seq.0 > 0 {
            Some(OrderKey { time: self.time, seq: Seq(self.seq.0 - 1) })
        } else if self.time > EventTime::MIN {
            Some(OrderKey { time: EventTime(self.time.0 - 1), seq: Seq(u64::MAX) })
        } else {
            None
        }
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
    let mut p = Vec::with_capacity(4 + value.len().min(MAX_INLINE_VALUE + 16) + MAX_ORDER_LEN);
    posting_prefix_into(&mut p, category, key, value);
    p
}

/// [`posting_prefix`], appended to a reused buffer (the apply path builds millions of keys).
pub fn posting_prefix_into(p: &mut Vec<u8>, category: EventCategory, key: AttributeKey, value: &[u8]) {
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
}

/// The prefix of a category's "all events" list: `[category u8][ALL_TAG]`.
pub fn all_prefix(category: EventCategory) -> Vec<u8> {
    vec![category_byte(category), ALL_TAG]
}

pub fn with_order(prefix: &[u8], order: OrderKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + MAX_ORDER_LEN);
    k.extend_from_slice(prefix);
    order.encode_into(&mut k);
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

/// Value of the eventId map: `[category u8][order suffix]` — the order key (time and seq) so that a lookup by
/// EventId yields a hit without touching the journal, the category so that it filters like a posting.
pub fn event_id_value(seq: Seq, time: EventTime, category: EventCategory) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + MAX_ORDER_LEN);
    v.push(category_byte(category));
    OrderKey::new(time, seq).encode_into(&mut v);
    v
}

/// Decodes an eventId map value; `None` means the bytes on disk are not what this module writes.
pub fn decode_event_id_value(v: &[u8]) -> Option<(OrderKey, EventCategory)> {
    let category = category_from_byte(*v.first()?)?;
    Some((OrderKey::decode(v.get(1..)?)?, category))
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
        let bytes: Vec<Vec<u8>> = keys.iter().map(|k| with_order(&[], *k)).collect();
        assert!(bytes.windows(2).all(|w| w[0] < w[1]), "byte order is the logical order");
        for (k, b) in keys.iter().zip(&bytes) {
            assert_eq!(OrderKey::decode(b), Some(*k));
        }
        for seq in [0, 1, 255, 256, 65_535, 65_536, u64::MAX - 1, u64::MAX] {
            let (a, b) =
                (OrderKey::new(EventTime(0), Seq(seq)), OrderKey::new(EventTime(0), Seq(seq.saturating_add(1))));
            assert_eq!(OrderKey::decode(&with_order(&[], a)), Some(a));
            if seq < u64::MAX {
                assert!(with_order(&[], b) < with_order(&[], a), "seq {seq}");
            }
        }
        assert_eq!(OrderKey::decode(&[0; 9]), None);
    }

    #[test]
    fn successor_is_the_next_key_in_order() {
        let k = OrderKey::new(EventTime(5), Seq(2));
        assert_eq!(k.successor(), Some(OrderKey::new(EventTime(5), Seq(1))));
        let k = OrderKey::new(EventTime(5), Seq(0));
        assert_eq!(k.successor(), Some(OrderKey::new(EventTime(4), Seq(u64::MAX))));
        assert_eq!(OrderKey::LAST.successor(), None);
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
        assert_eq!((o.time, o.seq, c), (EventTime(-3), Seq(7), EventCategory::Insight));
        assert_eq!(decode_event_id_value(&v[1..]), None);
    }
}
