//! Terms: the byte keys of posting lists (`[category][tag][value]`), and the 128-bit form of event ids.
//!
//! Every encoding here is a durable format described in `docs/formats/index.md`; never change one in place.

use model::EventCategory;

/// Tag of the per-category "all events" list (attribute tags start at 1, see [`AttributeKey::tag`]).
pub const ALL_TAG: u8 = 0;

pub fn category_byte(c: EventCategory) -> u8 {
    match c {
        EventCategory::Standard => 0,
        EventCategory::Insight => 1,
    }
}

/// Writes the key of the list of (category, attribute, value) into `out` (cleared first). Values are verbatim:
/// dictionaries store whole keys, so any bytes (0x00, prefixes of other values, 10 KiB user agents) are exact.
pub fn key_into(out: &mut Vec<u8>, c: EventCategory, tag: u8, value: &[u8]) {
    out.clear();
    out.push(category_byte(c));
    out.push(tag);
    out.extend_from_slice(value);
}

pub fn key(c: EventCategory, tag: u8, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + value.len());
    key_into(&mut k, c, tag, value);
    k
}

/// `AttributeKey::EventId.tag()`: the tag of the terms that hold ids which are not canonical UUIDs.
pub const EVENT_ID_TAG: u8 = 1;

/// The exact 128-bit form of a canonical lowercase UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), which is what
/// opentrail and CloudTrail assign. Any other id (uppercase, braces, free text) is `None` and is indexed as an
/// ordinary term, so that the id table stays exact: no hash ever stands in for an id.
pub fn parse_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = 0u128;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        out = (out << 4) | u128::from(d);
    }
    Some(out)
}

/// The key the per-segment bloom filter is built on: the UUID bits mixed, or a hash of any other id.
/// False positives only cost a table probe, so a non-cryptographic hash is fine here.
pub fn bloom_key(event_id: &str) -> u128 {
    match parse_uuid(event_id) {
        Some(u) => bloom_key_of_uuid(u),
        None => bloom_key_of_bytes(event_id.as_bytes()),
    }
}

pub fn bloom_key_of_uuid(u: u128) -> u128 {
    xxhash_rust::xxh3::xxh3_128(&u.to_le_bytes())
}

pub fn bloom_key_of_bytes(b: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::AttributeKey;

    #[test]
    fn only_canonical_lowercase_uuids_are_compacted() {
        assert_eq!(parse_uuid("6a0c1c8e-2f4b-4c4e-9f5e-0123456789ab"), Some(0x6a0c1c8e_2f4b_4c4e_9f5e_0123456789ab));
        assert_eq!(parse_uuid("6A0C1C8E-2F4B-4C4E-9F5E-0123456789AB"), None);
        assert_eq!(parse_uuid("6a0c1c8e-2f4b-4c4e-9f5e-0123456789a"), None);
        assert_eq!(parse_uuid("6a0c1c8e+2f4b-4c4e-9f5e-0123456789ab"), None);
    }

    #[test]
    fn event_id_tag_is_the_attribute_tag() {
        assert_eq!(EVENT_ID_TAG, AttributeKey::EventId.tag());
        assert!(AttributeKey::ALL.iter().all(|k| k.tag() != ALL_TAG));
    }

    #[test]
    fn keys_of_prefix_values_differ() {
        let c = EventCategory::Standard;
        assert_ne!(key(c, 2, b"Get"), key(c, 2, b"Get\0"));
        assert_ne!(key(c, 2, b""), key(c, 3, b""));
        assert_ne!(key(EventCategory::Insight, 2, b"x"), key(c, 2, b"x"));
    }
}
