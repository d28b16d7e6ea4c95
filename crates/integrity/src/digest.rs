//! Digest files (reference §7.2, §7.3): the JSON document, its exact bytes, the data-to-sign string, the
//! `SHA256withRSA` signature carried as S3 user metadata, and the chain each digest makes with the previous.
//!
//! Order matters: serialize, then hash the bytes, then sign; the gzip around them is not signed.

use std::io::{Read as _, Write as _};

use flate2::Compression;
use model::EventTime;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, SigningKey, verify_sha256_rsa};
use crate::logfile::GZIP_LEVEL;
use crate::time::iso_seconds;

pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
pub const HASH_ALGORITHM: &str = "SHA-256";
/// User metadata names (without `x-amz-meta-`, lower case, as object stores hand them back).
pub const META_SIGNATURE: &str = "signature";
pub const META_SIGNATURE_ALGORITHM: &str = "signature-algorithm";

/// A digest file's JSON, field for field and in AWS's order. Times are kept as written
/// (`YYYY-MM-DDTHH:MM:SSZ`) because the signature covers them as text; every key is written even when null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<LogFileEntry>,
}

/// One `logFiles[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    #[serde(rename = "s3Bucket")]
    pub s3_bucket: String,
    #[serde(rename = "s3Object")]
    pub s3_object: String,
    /// Lower-case hex SHA-256 of the uncompressed log file.
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
}

impl LogFileEntry {
    pub fn new(bucket: &str, key: &str, file: &crate::logfile::LogFile) -> LogFileEntry {
        LogFileEntry {
            s3_bucket: bucket.into(),
            s3_object: key.into(),
            hash_value: file.sha256_hex.clone(),
            hash_algorithm: HASH_ALGORITHM.into(),
            newest_event_time: file.newest_event_time.map(iso_seconds),
            oldest_event_time: file.oldest_event_time.map(iso_seconds),
        }
    }
}

/// What a digest says about the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub bucket: String,
    pub key: String,
    /// Hex SHA-256 of the previous digest's uncompressed bytes.
    pub hash_hex: String,
    /// The previous digest's signature, lower-case hex (its `x-amz-meta-signature`).
    pub signature_hex: String,
}

/// Inputs of one digest.
#[derive(Debug, Clone)]
pub struct DigestInput<'a> {
    pub account: &'a str,
    pub start: EventTime,
    pub end: EventTime,
    pub bucket: &'a str,
    /// The digest's own object key (prefix included), see `layout::DigestKey`.
    pub key: &'a str,
    pub fingerprint: &'a str,
    /// The log files delivered in `[start, end]`, possibly none.
    pub log_files: Vec<LogFileEntry>,
    /// `None` starts a chain (first digest, or the first after logging was turned back on).
    pub previous: Option<&'a ChainLink>,
}

impl Digest {
    pub fn new(input: DigestInput<'_>) -> Digest {
        // Comparing `YYYY-MM-DDTHH:MM:SSZ` strings orders them as times.
        let newest = input.log_files.iter().filter_map(|f| f.newest_event_time.clone()).max();
        let oldest = input.log_files.iter().filter_map(|f| f.oldest_event_time.clone()).min();
        let prev = input.previous;
        Digest {
            aws_account_id: input.account.into(),
            digest_start_time: iso_seconds(input.start),
            digest_end_time: iso_seconds(input.end),
            digest_s3_bucket: input.bucket.into(),
            digest_s3_object: input.key.into(),
            digest_public_key_fingerprint: input.fingerprint.into(),
            digest_signature_algorithm: SIGNATURE_ALGORITHM.into(),
            newest_event_time: newest,
            oldest_event_time: oldest,
            previous_digest_s3_bucket: prev.map(|p| p.bucket.clone()),
            previous_digest_s3_object: prev.map(|p| p.key.clone()),
            previous_digest_hash_value: prev.map(|p| p.hash_hex.clone()),
            previous_digest_hash_algorithm: prev.map(|_| HASH_ALGORITHM.into()),
            previous_digest_signature: prev.map(|p| p.signature_hex.clone()),
            log_files: input.log_files,
        }
    }

    /// The exact uncompressed bytes (compact JSON, AWS's key order).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a digest always serializes")
    }

    /// Serializes, hashes, signs and compresses.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedDigest, KeyError> {
        let json = self.to_json();
        let sha256_hex = crate::sha256_hex(&json);
        let data = data_to_sign(
            &self.digest_end_time,
            &self.digest_s3_bucket,
            &self.digest_s3_object,
            &sha256_hex,
            self.previous_digest_signature.as_deref(),
        );
        let signature_hex = hex::encode(key.sign_sha256_rsa(data.as_bytes())?);
        Ok(SignedDigest { gzip: gzip(&json), json, sha256_hex, signature_hex })
    }
}

/// The data-to-sign string of §7.3, exactly: four lines joined by LF, no trailing newline, and the literal
/// `null` for a chain start ("to match the Java implementation", awscli validation.py).
pub fn data_to_sign(
    end_time: &str,
    bucket: &str,
    key: &str,
    sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!("{end_time}\n{bucket}/{key}\n{sha256_hex}\n{}", previous_signature.unwrap_or("null"))
}

/// A signed digest, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDigest {
    /// The uncompressed JSON (what is hashed and what the next digest's chain hash covers).
    pub json: Vec<u8>,
    /// The object's bytes.
    pub gzip: Vec<u8>,
    pub sha256_hex: String,
    /// Lower-case hex RSA signature.
    pub signature_hex: String,
}

impl SignedDigest {
    /// The object's user metadata, names without `x-amz-meta-`: `signature` and `signature-algorithm`.
    pub fn metadata(&self) -> [(&'static str, String); 2] {
        [(META_SIGNATURE, self.signature_hex.clone()), (META_SIGNATURE_ALGORITHM, SIGNATURE_ALGORITHM.to_string())]
    }

    /// The next digest's `previous*` fields.
    pub fn link(&self, bucket: &str, key: &str) -> ChainLink {
        ChainLink {
            bucket: bucket.into(),
            key: key.into(),
            hash_hex: self.sha256_hex.clone(),
            signature_hex: self.signature_hex.clone(),
        }
    }
}

/// Checks a digest's signature the way the aws CLI does: over the data-to-sign built from the parsed
/// digest's own fields and the hash of its uncompressed bytes.
pub fn verify(json: &[u8], digest: &Digest, signature_hex: &str, public_pkcs1_der: &[u8]) -> bool {
    let Ok(sig) = hex::decode(signature_hex) else { return false };
    let data = data_to_sign(
        &digest.digest_end_time,
        &digest.digest_s3_bucket,
        &digest.digest_s3_object,
        &crate::sha256_hex(json),
        digest.previous_digest_signature.as_deref(),
    );
    verify_sha256_rsa(public_pkcs1_der, data.as_bytes(), &sig)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4 + 64), Compression::new(GZIP_LEVEL));
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// Gunzips (all members, as a streaming reader of S3 objects would), refusing more than `limit` bytes.
pub fn gunzip(bytes: &[u8], limit: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(bytes).take(limit + 1);
    reader.read_to_end(&mut out).ok()?;
    (out.len() as u64 <= limit).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_to_sign_is_four_lf_joined_lines_with_a_literal_null() {
        assert_eq!(
            data_to_sign("2015-08-17T15:01:31Z", "b", "AWSLogs/k.json.gz", "ab12", None),
            "2015-08-17T15:01:31Z\nb/AWSLogs/k.json.gz\nab12\nnull"
        );
        assert_eq!(data_to_sign("t", "b", "k", "h", Some("5f")), "t\nb/k\nh\n5f");
    }

    #[test]
    fn a_chain_start_writes_every_key_with_nulls_in_aws_order() {
        let d = Digest::new(DigestInput {
            account: "123456789012",
            start: EventTime(0),
            end: EventTime(3_600_000),
            bucket: "b",
            key: "k",
            fingerprint: "fp",
            log_files: vec![],
            previous: None,
        });
        assert_eq!(
            String::from_utf8(d.to_json()).unwrap(),
            concat!(
                r#"{"awsAccountId":"123456789012","digestStartTime":"1970-01-01T00:00:00Z","digestEndTime":"1970-01-01T01:00:00Z","#,
                r#""digestS3Bucket":"b","digestS3Object":"k","digestPublicKeyFingerprint":"fp","digestSignatureAlgorithm":"SHA256withRSA","#,
                r#""newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"#,
                r#""previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}"#
            )
        );
    }
}
