//! RSA-2048 signing keys as pure values: generate, load and export PKCS#8, sign `SHA256withRSA`, publish the
//! PKCS#1 public key and its fingerprint, and verify. The key files on disk and their validity windows
//! belong to `service::keys::KeyRing`; the validator receives published keys as [`PublicKey`].

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use md5::{Digest, Md5};
use model::EventTime;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a usable RSA private key: {reason}")]
    Invalid { reason: String },
    #[error("RSA {operation} failed")]
    Crypto { operation: &'static str },
}

/// One RSA-2048 key pair.
pub struct SigningKey {
    pair: KeyPair,
    public_der: Vec<u8>,
    fingerprint: String,
}

impl std::fmt::Debug for SigningKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key pair. The one use of randomness not passed in: aws-lc-rs draws it from the system
    /// generator and takes no RNG argument for RSA key generation.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto { operation: "key generation" })?;
        Ok(Self::from_pair(pair))
    }

    /// Loads a PKCS#8 DER private key; only 2048-bit keys are accepted (what CloudTrail uses).
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|e| KeyError::Invalid { reason: e.to_string() })?;
        if pair.public_modulus_len() != 256 {
            return Err(KeyError::Invalid {
                reason: format!("expected a 2048-bit key, found {} bits", pair.public_modulus_len() * 8),
            });
        }
        Ok(Self::from_pair(pair))
    }

    fn from_pair(pair: KeyPair) -> SigningKey {
        let public_der = pair.public_key().as_ref().to_vec();
        let fingerprint = fingerprint(&public_der);
        SigningKey { pair, public_der, fingerprint }
    }

    /// The private key as PKCS#8 v1 DER.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, KeyError> {
        let der = self.pair.as_der().map_err(|_| KeyError::Crypto { operation: "PKCS#8 export" })?;
        Ok(der.as_ref().to_vec())
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (Java's `SHA256withRSA`, what CloudTrail digests carry). Deterministic:
    /// the same key and data always give the same bytes. Fallible only on an internal crypto failure.
    pub fn sign_sha256_rsa(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        // PKCS#1 v1.5 padding draws nothing from the RNG; the API requires one anyway.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &rng, data, &mut sig)
            .map_err(|_| KeyError::Crypto { operation: "signing" })?;
        Ok(sig)
    }

    /// The public key as DER PKCS#1 `RSAPublicKey` (not SubjectPublicKeyInfo), as ListPublicKeys returns it.
    pub fn public_key_pkcs1_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Lower-case hex MD5 of the PKCS#1 DER public key (32 characters).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// This key as the validator receives it, with the validity window its ring gives it.
    pub fn public_key(&self, validity_start: EventTime, validity_end: EventTime) -> PublicKey {
        PublicKey {
            der_pkcs1: self.public_der.clone(),
            fingerprint: self.fingerprint.clone(),
            validity_start,
            validity_end,
        }
    }
}

/// A published public key (one `ListPublicKeys` entry): what the validator checks signatures with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// DER PKCS#1 `RSAPublicKey`.
    pub der_pkcs1: Vec<u8>,
    pub fingerprint: String,
    pub validity_start: EventTime,
    pub validity_end: EventTime,
}

/// Lower-case hex MD5 of a DER public key. AWS does not document its fingerprint; clients only compare it
/// for equality with a digest's `digestPublicKeyFingerprint`, and MD5 gives the same 32-hex-character shape
/// AWS uses. It identifies, it does not protect.
pub fn fingerprint(public_pkcs1_der: &[u8]) -> String {
    hex::encode(Md5::digest(public_pkcs1_der))
}

/// Verifies a `SHA256withRSA` signature against a PKCS#1 DER public key (2048 to 8192 bits).
pub fn verify_sha256_rsa(public_pkcs1_der: &[u8], data: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_pkcs1_der).verify(data, sig).is_ok()
}

/// True when `der` parses as a PKCS#1 `RSAPublicKey` (the aws CLI's "Unable to load PKCS #1 key" check).
pub fn is_pkcs1_public_key(der: &[u8]) -> bool {
    parse_pkcs1_shape(der)
}

/// The PKCS#1 `RSAPublicKey` inside a DER SubjectPublicKeyInfo (`SEQUENCE { SEQUENCE { OID rsaEncryption,
/// NULL }, BIT STRING { 0 unused bits, RSAPublicKey } }`, PEM "PUBLIC KEY"), or `None` when `der` is not an
/// RSA SubjectPublicKeyInfo.
pub fn pkcs1_from_spki(der: &[u8]) -> Option<Vec<u8>> {
    /// DER of OID 1.2.840.113549.1.1.1 (rsaEncryption).
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (0x30, body, []) = tlv(der)? else { return None };
    let (0x30, algorithm, rest) = tlv(body)? else { return None };
    let (0x06, oid, _) = tlv(algorithm)? else { return None };
    let (0x03, bits, []) = tlv(rest)? else { return None };
    let (&0, key) = bits.split_first()? else { return None };
    (oid == RSA_ENCRYPTION && parse_pkcs1_shape(key)).then(|| key.to_vec())
}

/// One DER tag-length-value: (tag, value, what follows).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A structural check of `SEQUENCE { INTEGER n, INTEGER e }` (DER, definite lengths): enough to tell PKCS#1
/// from SubjectPublicKeyInfo (whose first element is a SEQUENCE) and from garbage.
fn parse_pkcs1_shape(der: &[u8]) -> bool {
    let Some((0x30, body, [])) = tlv(der) else { return false };
    let Some((0x02, n, rest)) = tlv(body) else { return false };
    let Some((0x02, e, [])) = tlv(rest) else { return false };
    !n.is_empty() && !e.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_is_pkcs1_der_with_an_md5_fingerprint() {
        let key = SigningKey::generate().unwrap();
        let der = key.public_key_pkcs1_der();
        // SEQUENCE (0x30) with a two-byte length (0x82 0x01 0x0a), then INTEGER n: "MIIBCgKCAQEA" in base64.
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert!(parse_pkcs1_shape(der));
        assert_eq!(key.fingerprint().len(), 32);
        assert!(key.fingerprint().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(fingerprint(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn signatures_verify_with_the_published_key_and_fail_when_tampered() {
        let key = SigningKey::generate().unwrap();
        let sig = key.sign_sha256_rsa(b"digest data").unwrap();
        assert_eq!(sig.len(), 256);
        assert!(verify_sha256_rsa(key.public_key_pkcs1_der(), b"digest data", &sig));
        assert!(!verify_sha256_rsa(key.public_key_pkcs1_der(), b"digest dat4", &sig));
        let reloaded = SigningKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
        assert_eq!(reloaded.sign_sha256_rsa(b"digest data").unwrap(), sig);
    }

    #[test]
    fn the_pkcs1_key_inside_a_subject_public_key_info_is_found() {
        let key = SigningKey::generate().unwrap();
        let pkcs1 = key.public_key_pkcs1_der();
        // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { 0, pkcs1 } }, lengths > 255.
        let mut bits = vec![0x03, 0x82, 0, 0, 0x00];
        bits[2..4].copy_from_slice(&((pkcs1.len() + 1) as u16).to_be_bytes());
        bits.extend_from_slice(pkcs1);
        let alg = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
        let mut spki = vec![0x30, 0x82, 0, 0];
        spki[2..4].copy_from_slice(&((alg.len() + bits.len()) as u16).to_be_bytes());
        spki.extend_from_slice(&alg);
        spki.extend_from_slice(&bits);
        assert_eq!(pkcs1_from_spki(&spki).as_deref(), Some(pkcs1));
        assert_eq!(pkcs1_from_spki(pkcs1), None);
        assert_eq!(pkcs1_from_spki(&spki[..spki.len() - 1]), None);
    }

    #[test]
    fn garbage_is_neither_a_private_nor_a_pkcs1_public_key() {
        assert!(matches!(SigningKey::from_pkcs8(b"not a key"), Err(KeyError::Invalid { .. })));
        assert!(!parse_pkcs1_shape(b"\x30\x03\x02\x01"));
        assert!(!parse_pkcs1_shape(b""));
    }
}
