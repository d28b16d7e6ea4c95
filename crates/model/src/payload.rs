//! A journal payload: the provenance frame, then the record's JSON as stored (`docs/formats/provenance.md`).
//! The one decoder of stored records, shared by lookups, the index's replay and every view's journal feed.

use crate::{Provenance, ProvenanceError, Record, RecordError};

/// Why a stored payload cannot be read back as a record. Every payload was validated before it was
/// written, so any of these is damage, not bad input.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("provenance frame: {0}")]
    Provenance(#[from] ProvenanceError),
    #[error("record text is not UTF-8 (byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("record: {0}")]
    Record(#[from] RecordError),
}

/// A stored record as the journal holds it, not parsed: its JSON text exactly as stored and its provenance.
/// What views that only need the text and a few fields (a trail's delivery) read: no copy of the text, no
/// parse of the index fields.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// The whole payload; the record's text starts at `json_at` and was checked to be UTF-8.
    payload: Vec<u8>,
    json_at: usize,
    pub provenance: Provenance,
}

impl StoredRecord {
    /// Reads a journal payload (provenance frame + record JSON), checking the text is UTF-8.
    pub fn from_payload(payload: Vec<u8>) -> Result<StoredRecord, PayloadError> {
        let (provenance, json_len) = {
            let (p, json) = Provenance::unframe(&payload)?;
            (p, json.len())
        };
        let json_at = payload.len() - json_len;
        if let Err(e) = std::str::from_utf8(&payload[json_at..]) {
            return Err(PayloadError::NotUtf8 { valid_up_to: e.valid_up_to() });
        }
        Ok(StoredRecord { payload, json_at, provenance })
    }

    /// The record's JSON text, exactly as stored.
    pub fn json(&self) -> &str {
        // SAFETY: `from_payload`, the only constructor, checked that `payload[json_at..]` is UTF-8, and both
        // fields are private and never changed afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.payload[self.json_at..]) }
    }

    /// Parses the record (its index fields), keeping the payload's buffer for its text.
    pub fn into_record(self) -> Result<Record, PayloadError> {
        let StoredRecord { mut payload, json_at, provenance } = self;
        payload.drain(..json_at);
        // SAFETY: these are exactly the bytes `from_payload` checked to be UTF-8 (the frame before them is gone).
        let json = unsafe { String::from_utf8_unchecked(payload) };
        let mut record = Record::from_stored(json)?;
        record.fields.provenance = provenance;
        Ok(record)
    }
}

impl Record {
    /// Decodes a journal payload (provenance frame + record JSON), keeping the payload's buffer for the
    /// record's text rather than copying it.
    pub fn from_payload(payload: Vec<u8>) -> Result<Record, PayloadError> {
        StoredRecord::from_payload(payload)?.into_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{"eventID":"e1","eventTime":"2020-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#;

    #[test]
    fn a_framed_payload_reads_back_with_its_provenance_and_exact_bytes() {
        let p = Provenance::Channel { channel: "arn:ch".into() };
        let r = Record::from_payload(p.frame(TEXT.as_bytes())).unwrap();
        assert_eq!(r.fields.provenance, p);
        assert_eq!(r.json(), TEXT);
        let bare = Record::from_payload(TEXT.as_bytes().to_vec()).unwrap();
        assert_eq!(bare.fields.provenance, Provenance::Unknown);
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        assert!(matches!(Record::from_payload(vec![1, 9]), Err(PayloadError::Provenance(_))));
        assert!(matches!(Record::from_payload(vec![b'{', 0xff]), Err(PayloadError::NotUtf8 { valid_up_to: 1 })));
        assert!(matches!(Record::from_payload(b"{}".to_vec()), Err(PayloadError::Record(_))));
        assert!(matches!(StoredRecord::from_payload(vec![b'{', 0xff]), Err(PayloadError::NotUtf8 { valid_up_to: 1 })));
    }

    #[test]
    fn a_stored_record_is_the_text_as_stored_without_a_parse() {
        let p = Provenance::SelfAudit;
        let s = StoredRecord::from_payload(p.frame(TEXT.as_bytes())).unwrap();
        assert_eq!((s.json(), &s.provenance), (TEXT, &p));
        // Not parsed: a payload whose text is not a record is still read back as text.
        assert_eq!(StoredRecord::from_payload(b"{x".to_vec()).unwrap().json(), "{x");
        let r = s.into_record().unwrap();
        assert_eq!((r.json(), &r.fields.provenance), (TEXT, &p));
    }
}
