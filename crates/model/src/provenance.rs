//! Provenance: how a stored record arrived. It travels out of band, beside the record's bytes (which stay
//! exactly as received), so a record ingested by a writer can never pass for one opentrail wrote itself,
//! whatever its JSON says. Format: `docs/formats/provenance.md`.

/// How a record reached the journal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Provenance {
    /// Stored before provenance was recorded.
    #[default]
    Unknown,
    /// Written by opentrail itself: the audit record of a call to one of its APIs.
    SelfAudit,
    /// Sent to the native ingest API (`POST /v1/events`) by this principal (its ARN).
    Ingest { principal: String },
    /// Sent with cloudtrail-data `PutAuditEvents` to this channel (its ARN).
    Channel { channel: String },
    /// Recorded by the audit gateway of this name.
    Gateway { name: String },
    /// Imported from existing CloudTrail log files; `source` names them (a bucket URL or a folder).
    Import { source: String },
    /// An Insights event raised by opentrail's detector for this trail (its ARN); only that trail delivers it.
    Insights { trail: String },
}

/// The kinds, as written in the text form and matched by `Provenance=<kind>` lookups.
const UNKNOWN: &str = "unknown";
const SELF_AUDIT: &str = "self-audit";
const INGEST: &str = "ingest";
const CHANNEL: &str = "channel";
const GATEWAY: &str = "gateway";
const IMPORT: &str = "import";
const INSIGHTS: &str = "insights";

/// Hard-coded: the longest detail (ARN, name, source) kept; longer ones are cut at a char boundary.
pub const MAX_PROVENANCE_DETAIL_BYTES: usize = 2048;

impl Provenance {
    /// The kind alone: `self-audit`, `ingest`, `channel`, `gateway`, `import`, `insights` or `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            Provenance::Unknown => UNKNOWN,
            Provenance::SelfAudit => SELF_AUDIT,
            Provenance::Ingest { .. } => INGEST,
            Provenance::Channel { .. } => CHANNEL,
            Provenance::Gateway { .. } => GATEWAY,
            Provenance::Import { .. } => IMPORT,
            Provenance::Insights { .. } => INSIGHTS,
        }
    }

    /// Who or what it came through: the principal ARN, channel ARN, gateway name or import source.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Provenance::Unknown | Provenance::SelfAudit => None,
            Provenance::Ingest { principal: d }
            | Provenance::Channel { channel: d }
            | Provenance::Gateway { name: d }
            | Provenance::Import { source: d }
            | Provenance::Insights { trail: d } => Some(d),
        }
    }

    /// The text form: the kind, then `:` and the detail when there is one
    /// (`self-audit`, `ingest:arn:aws:iam::123456789012:user/ingester`).
    pub fn to_text(&self) -> String {
        match self.detail() {
            Some(d) => format!("{}:{d}", self.kind()),
            None => self.kind().to_string(),
        }
    }

    /// Parses the text form. `None` for an unknown kind or a missing/extra detail.
    pub fn parse(text: &str) -> Option<Provenance> {
        let (kind, detail) = match text.split_once(':') {
            Some((k, d)) => (k, Some(d)),
            None => (text, None),
        };
        let detail = detail.filter(|d| !d.is_empty()).map(|d| cut(d).to_string());
        Some(match (kind, detail) {
            (UNKNOWN, None) => Provenance::Unknown,
            (SELF_AUDIT, None) => Provenance::SelfAudit,
            (INGEST, Some(principal)) => Provenance::Ingest { principal },
            (CHANNEL, Some(channel)) => Provenance::Channel { channel },
            (GATEWAY, Some(name)) => Provenance::Gateway { name },
            (IMPORT, Some(source)) => Provenance::Import { source },
            (INSIGHTS, Some(trail)) => Provenance::Insights { trail },
            _ => return None,
        })
    }

    /// The index terms a lookup value stands for: a kind alone (`ingest`) is one term; a full text form
    /// (`ingest:arn:…:user/ingester`) is the kind AND the detail. `None` when the value is neither.
    pub fn lookup_terms(value: &str) -> Option<Vec<String>> {
        if let Some(p) = Provenance::parse(value) {
            return Some([Some(p.kind()), p.detail()].into_iter().flatten().map(str::to_string).collect());
        }
        // A kind that needs a detail, given alone.
        [INGEST, CHANNEL, GATEWAY, IMPORT, INSIGHTS].contains(&value).then(|| vec![value.to_string()])
    }

    /// Prepends the provenance to a record's bytes for the journal: a tag byte that no JSON text starts
    /// with, the text form's length (u16, little-endian), the text form, then the record unchanged.
    /// `Unknown` adds nothing, so records stored before provenance existed read back as they are.
    pub fn frame(&self, record: &[u8]) -> Vec<u8> {
        Self::frame_with(self.frame_text().as_deref(), record)
    }

    /// The text form a frame holds (cut to fit), `None` for `Unknown`: made once for a batch whose records
    /// share one provenance, then given to [`Provenance::frame_with`] for each.
    pub fn frame_text(&self) -> Option<String> {
        if *self == Provenance::Unknown {
            return None;
        }
        let mut text = self.to_text();
        let len = cut(&text).len();
        text.truncate(len);
        Some(text)
    }

    /// [`Provenance::frame`] with the text form already made by [`Provenance::frame_text`].
    pub fn frame_with(text: Option<&str>, record: &[u8]) -> Vec<u8> {
        let Some(text) = text else { return record.to_vec() };
        let mut out = Vec::with_capacity(3 + text.len() + record.len());
        out.push(FRAME_TAG);
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(record);
        out
    }

    /// Splits a journal payload written by [`Provenance::frame`] into the provenance and the record bytes.
    pub fn unframe(payload: &[u8]) -> Result<(Provenance, &[u8]), ProvenanceError> {
        if payload.first() != Some(&FRAME_TAG) {
            return Ok((Provenance::Unknown, payload));
        }
        let len = payload.get(1..3).ok_or(ProvenanceError::Truncated)?;
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        let text = payload.get(3..3 + len).ok_or(ProvenanceError::Truncated)?;
        let text = std::str::from_utf8(text).map_err(|_| ProvenanceError::NotUtf8)?;
        let p = Provenance::parse(text).ok_or_else(|| ProvenanceError::Unknown { text: text.to_string() })?;
        Ok((p, &payload[3 + len..]))
    }
}

/// The first byte of a framed payload: ASCII "start of heading", which cannot begin a JSON text.
const FRAME_TAG: u8 = 0x01;

/// Why a journal payload's provenance could not be read (damage, not bad input: the server wrote it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    #[error("provenance header is truncated")]
    Truncated,
    #[error("provenance is not UTF-8")]
    NotUtf8,
    #[error("unknown provenance '{text}'")]
    Unknown { text: String },
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// At most [`MAX_PROVENANCE_DETAIL_BYTES`], cut at a char boundary.
fn cut(s: &str) -> &str {
    if s.len() <= MAX_PROVENANCE_DETAIL_BYTES {
        return s;
    }
    let mut end = MAX_PROVENANCE_DETAIL_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Provenance> {
        vec![
            Provenance::Unknown,
            Provenance::SelfAudit,
            Provenance::Ingest { principal: "arn:aws:iam::123456789012:user/ingester".into() },
            Provenance::Channel { channel: "arn:aws:cloudtrail:us-east-1:123456789012:channel/x".into() },
            Provenance::Gateway { name: "iam-gw".into() },
            Provenance::Import { source: "s3://bucket/AWSLogs/".into() },
            Provenance::Insights { trail: "arn:aws:cloudtrail:us-east-1:123456789012:trail/audit".into() },
        ]
    }

    #[test]
    fn text_form_round_trips() {
        for p in all() {
            assert_eq!(Provenance::parse(&p.to_text()), Some(p.clone()), "{p}");
        }
        assert_eq!(Provenance::parse("ingest"), None, "an ingest provenance names its principal");
        assert_eq!(Provenance::parse("self-audit:x"), None);
        assert_eq!(Provenance::parse("forged"), None);
    }

    #[test]
    fn framing_keeps_the_record_bytes_exactly() {
        let record = br#"{"eventID":"e1","eventSource":"cloudtrail.amazonaws.com"}"#;
        for p in all() {
            let framed = p.frame(record);
            let (back, bytes) = Provenance::unframe(&framed).unwrap();
            assert_eq!(back, p);
            assert_eq!(bytes, record);
        }
        // A payload written before provenance existed is a bare record.
        assert_eq!(Provenance::unframe(record).unwrap(), (Provenance::Unknown, &record[..]));
        assert_eq!(Provenance::unframe(&[FRAME_TAG, 9]), Err(ProvenanceError::Truncated));
        assert!(matches!(
            Provenance::unframe(&[FRAME_TAG, 3, 0, b'a', b'b', b'c']),
            Err(ProvenanceError::Unknown { .. })
        ));
    }

    #[test]
    fn lookups_match_the_kind_or_the_kind_and_detail() {
        assert_eq!(Provenance::lookup_terms("ingest:arn:x"), Some(vec!["ingest".into(), "arn:x".into()]));
        assert_eq!(Provenance::lookup_terms("ingest"), Some(vec!["ingest".into()]));
        assert_eq!(Provenance::lookup_terms("self-audit"), Some(vec!["self-audit".into()]));
        assert_eq!(Provenance::lookup_terms("selfaudit"), None);
    }

    #[test]
    fn long_details_are_cut_at_a_char_boundary() {
        let p = Provenance::Gateway { name: "é".repeat(MAX_PROVENANCE_DETAIL_BYTES) };
        let (back, _) = Provenance::unframe(&p.frame(b"{}")).unwrap();
        assert!(back.detail().unwrap().len() <= MAX_PROVENANCE_DETAIL_BYTES);
    }
}
