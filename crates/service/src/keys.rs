//! The server's RSA-2048 signing keys (what `ListPublicKeys` publishes and digests will be signed with):
//! generation, the key files in `<data-dir>/keys/`, and pure sign/verify/fingerprint helpers that an
//! integrity crate can reuse without touching the disk.
//!
//! One file per key, `keys/rsa2048-<validity start, epoch ms>.pk8`, holding the PKCS#8 v1 DER private key
//! (mode 0600, written atomically). The validity start lives in the name so the file stays plain DER
//! and a later rotation only adds files. See docs/formats/state.md, "Keys".

use std::path::{Path, PathBuf};

use atomic_file::write_atomic;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use md5::{Digest, Md5};
use model::EventTime;

/// Hard-coded: how long a key is published as valid, from its creation. Keys are not rotated yet, so
/// the end is far away (10 × 365 days); rotation will end a key's validity when the next one starts.
pub const KEY_VALIDITY_MILLIS: i64 = 10 * 365 * 86_400_000;

const KEY_DIR: &str = "keys";
const KEY_PREFIX: &str = "rsa2048-";
const KEY_SUFFIX: &str = ".pk8";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is not a usable RSA private key: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("RSA {operation} failed")]
    Crypto { operation: &'static str },
}

/// One RSA-2048 key pair and the facts `ListPublicKeys` publishes about it.
pub struct SigningKey {
    pair: KeyPair,
    public_der: Vec<u8>,
    fingerprint: String,
    validity_start: EventTime,
    validity_end: EventTime,
}

impl std::fmt::Debug for SigningKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint)
            .field("validity_start", &self.validity_start)
            .field("validity_end", &self.validity_end)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key pair valid from `now`.
    pub fn generate(now: EventTime) -> Result<SigningKey, KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Crypto { operation: "key generation" })?;
        Ok(Self::from_pair(pair, now))
    }

    /// Loads a PKCS#8 DER private key that became valid at `validity_start`.
    pub fn from_pkcs8(der: &[u8], validity_start: EventTime) -> Result<SigningKey, String> {
        let pair = KeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
        if pair.public_modulus_len() != 256 {
            return Err(format!("expected a 2048-bit key, found {} bits", pair.public_modulus_len() * 8));
        }
        Ok(Self::from_pair(pair, validity_start))
    }

    fn from_pair(pair: KeyPair, validity_start: EventTime) -> SigningKey {
        let public_der = pair.public_key().as_ref().to_vec();
        let fingerprint = fingerprint(&public_der);
        let validity_end = EventTime(validity_start.0.saturating_add(KEY_VALIDITY_MILLIS));
        SigningKey { pair, public_der, fingerprint, validity_start, validity_end }
    }

    /// The private key as PKCS#8 v1 DER, the key file's content.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, KeyError> {
        let der = self.pair.as_der().map_err(|_| KeyError::Crypto { operation: "PKCS#8 export" })?;
        Ok(der.as_ref().to_vec())
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (Java's `SHA256withRSA`, what CloudTrail digests carry).
    /// Fallible only on an internal crypto failure, which is reported rather than panicked on.
    pub fn sign_sha256_rsa(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
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

    pub fn validity_start(&self) -> EventTime {
        self.validity_start
    }

    pub fn validity_end(&self) -> EventTime {
        self.validity_end
    }

    /// True when the key's validity overlaps `[start, end]` (both inclusive).
    pub fn valid_during(&self, start: EventTime, end: EventTime) -> bool {
        self.validity_start <= end && start <= self.validity_end
    }
}

/// Lower-case hex MD5 of a DER public key. AWS does not document its fingerprint; clients only
/// compare it for equality with a digest's `digestPublicKeyFingerprint`, and MD5 gives the same
/// 32-hex-character shape AWS uses. It identifies, it does not protect.
pub fn fingerprint(public_pkcs1_der: &[u8]) -> String {
    Md5::digest(public_pkcs1_der).iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies a `SHA256withRSA` signature against a PKCS#1 DER public key.
pub fn verify_sha256_rsa(public_pkcs1_der: &[u8], data: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_pkcs1_der).verify(data, sig).is_ok()
}

/// Every key the server has, oldest first; the last one signs.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// Loads the keys in `<data_dir>/keys/`, generating and storing the first one (valid from `now`) when
    /// there is none.
    pub fn open(data_dir: &Path, now: EventTime) -> Result<KeyRing, KeyError> {
        let dir = data_dir.join(KEY_DIR);
        let mut keys = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io("list", &dir))?;
                    let name = entry.file_name();
                    let Some(start) = name.to_str().and_then(parse_key_file_name) else {
                        // Temp files of an interrupted write, and anything else, are not keys.
                        continue;
                    };
                    let path = entry.path();
                    let der = std::fs::read(&path).map_err(io("read", &path))?;
                    let key = SigningKey::from_pkcs8(&der, start)
                        .map_err(|reason| KeyError::Corrupt { path: path.clone(), reason })?;
                    keys.push(key);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(KeyError::Io { action: "list", path: dir, source: e }),
        }
        if keys.is_empty() {
            let key = SigningKey::generate(now)?;
            let path = dir.join(key_file_name(now));
            write_atomic(&path, &key.to_pkcs8()?, 0o600).map_err(|e| e.source).map_err(io("write", &path))?;
            tracing::info!(fingerprint = key.fingerprint(), path = %path.display(), "generated signing key");
            keys.push(key);
        }
        keys.sort_by_key(|k| k.validity_start);
        Ok(KeyRing { keys })
    }

    /// The key that signs now.
    pub fn current(&self) -> &SigningKey {
        // `open` never builds an empty ring.
        &self.keys[self.keys.len() - 1]
    }

    /// The keys whose validity overlaps `[start, end]`, oldest first.
    pub fn valid_during(&self, start: EventTime, end: EventTime) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter().filter(move |k| k.valid_during(start, end))
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> KeyError + 'a {
    move |source| KeyError::Io { action, path: path.to_path_buf(), source }
}

fn key_file_name(start: EventTime) -> String {
    format!("{KEY_PREFIX}{}{KEY_SUFFIX}", start.0)
}

fn parse_key_file_name(name: &str) -> Option<EventTime> {
    let millis = name.strip_prefix(KEY_PREFIX)?.strip_suffix(KEY_SUFFIX)?;
    millis.parse().ok().map(EventTime)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: EventTime = EventTime(1_700_000_000_000);

    #[test]
    fn first_open_creates_a_private_key_file_and_reopen_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), T0).unwrap();
        let fp = ring.current().fingerprint().to_string();
        let path = dir.path().join("keys").join(key_file_name(T0));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = KeyRing::open(dir.path(), EventTime(T0.0 + 5_000)).unwrap();
        assert_eq!(again.current().fingerprint(), fp);
        assert_eq!(again.current().validity_start(), T0);
    }

    #[test]
    fn public_key_is_pkcs1_der_with_an_md5_fingerprint() {
        let key = SigningKey::generate(T0).unwrap();
        let der = key.public_key_pkcs1_der();
        // SEQUENCE (0x30) with a two-byte length (0x82 0x01 0x0a), then INTEGER n: "MIIBCgKCAQEA" in base64.
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(key.fingerprint().len(), 32);
        assert!(key.fingerprint().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(fingerprint(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn signatures_verify_with_the_published_key_and_fail_when_tampered() {
        let key = SigningKey::generate(T0).unwrap();
        let sig = key.sign_sha256_rsa(b"digest data").unwrap();
        assert_eq!(sig.len(), 256);
        assert!(verify_sha256_rsa(key.public_key_pkcs1_der(), b"digest data", &sig));
        assert!(!verify_sha256_rsa(key.public_key_pkcs1_der(), b"digest dat4", &sig));
        // PKCS#1 v1.5 is deterministic: a reloaded key signs identically.
        let reloaded = SigningKey::from_pkcs8(&key.to_pkcs8().unwrap(), T0).unwrap();
        assert_eq!(reloaded.sign_sha256_rsa(b"digest data").unwrap(), sig);
    }

    #[test]
    fn validity_overlap_is_inclusive_and_open_ended_for_ten_years() {
        let key = SigningKey::generate(T0).unwrap();
        assert!(key.valid_during(T0, T0));
        assert!(key.valid_during(EventTime(0), T0));
        assert!(!key.valid_during(EventTime(0), EventTime(T0.0 - 1)));
        assert!(key.valid_during(key.validity_end(), EventTime::MAX));
        assert!(!key.valid_during(EventTime(key.validity_end().0 + 1), EventTime::MAX));
    }

    #[test]
    fn a_corrupt_key_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join(key_file_name(T0)), b"not a key").unwrap();
        assert!(matches!(KeyRing::open(dir.path(), T0), Err(KeyError::Corrupt { .. })));
    }
}
