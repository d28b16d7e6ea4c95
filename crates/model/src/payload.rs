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

impl Record {
    /// Decodes a journal payload (provenance frame + record JSON), keeping the payload's buffer for the
    /// record's text rather than copying it.
    pub fn from_payload(mut payload: Vec<u8>) -> Result<Record, PayloadError> {
        let (provenance, json_len) = {
            let (p, json) = Provenance::unframe(&payload)?;
            (p, json.len())
        };
        payload.drain(..payload.len() - json_len);
        let json = String::from_utf8(payload)
            .map_err(|e| PayloadError::NotUtf8 { valid_up_to: e.utf8_error().valid_up_to() })?;
        let mut record = Record::from_stored(json)?;
        record.fields.provenance = provenance;
        Ok(record)
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
    }
}
