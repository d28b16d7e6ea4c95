//! The server's RSA-2048 signing keys on disk and their validity windows: what `ListPublicKeys` publishes
//! and digests are signed with. The keys themselves (generate, PKCS#8, sign, verify, fingerprint) are
//! `integrity::keys`; this file owns the key files in `<data-dir>/keys/` and rotation.
//!
//! One file per key, `keys/rsa2048-<validity start, epoch ms>.pk8`, holding the PKCS#8 v1 DER private key
//! (mode 0600, written atomically). The validity start lives in the name so the file stays plain DER and a
//! rotation only adds a file: a key's validity ends where the next key's starts, and the newest key's ends
//! `KEY_VALIDITY_MILLIS` after its start. See docs/formats/state.md, "Keys".

use std::path::{Path, PathBuf};
use std::sync::Arc;

use atomic_file::write_atomic;
pub use integrity::keys::{SigningKey, fingerprint, verify_sha256_rsa};
use model::EventTime;
use parking_lot::RwLock;

/// Hard-coded: how long the newest key is published as valid, from its start (10 × 365 days). A rotation
/// ends it where the next key starts.
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

impl From<integrity::keys::KeyError> for KeyError {
    fn from(e: integrity::keys::KeyError) -> Self {
        match e {
            integrity::keys::KeyError::Crypto { operation } => KeyError::Crypto { operation },
            // Only loading reports `Invalid`, and `open` maps it with the file's path itself.
            integrity::keys::KeyError::Invalid { .. } => KeyError::Crypto { operation: "key loading" },
        }
    }
}

/// One key of the ring with its validity window (what `ListPublicKeys` publishes about it). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RingKey {
    key: Arc<SigningKey>,
    validity_start: EventTime,
    validity_end: EventTime,
}

impl RingKey {
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (see `integrity::keys::SigningKey::sign_sha256_rsa`).
    pub fn sign_sha256_rsa(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(self.key.sign_sha256_rsa(data)?)
    }

    /// DER PKCS#1 `RSAPublicKey`, as ListPublicKeys returns it.
    pub fn public_key_pkcs1_der(&self) -> &[u8] {
        self.key.public_key_pkcs1_der()
    }

    /// Lower-case hex MD5 of the PKCS#1 DER public key (32 characters).
    pub fn fingerprint(&self) -> &str {
        self.key.fingerprint()
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

    /// The key as `opentrail validate` receives it.
    pub fn public_key(&self) -> integrity::keys::PublicKey {
        self.key.public_key(self.validity_start, self.validity_end)
    }
}

/// A generated key not yet in the ring ([`KeyRing::prepare_rotation`] → [`KeyRing::install`]).
#[derive(Debug)]
pub struct PendingKey {
    key: SigningKey,
    start: EventTime,
}

impl PendingKey {
    pub fn fingerprint(&self) -> &str {
        self.key.fingerprint()
    }

    /// The validity start it will get unless another rotation is installed first.
    pub fn validity_start(&self) -> EventTime {
        self.start
    }
}

/// Every key the server has, oldest first; the last one signs. Shared by the API (ListPublicKeys) and
/// delivery (signing), so rotation takes `&self`.
#[derive(Debug)]
pub struct KeyRing {
    dir: PathBuf,
    /// Never empty; sorted by validity start; windows derived by [`windows`].
    keys: RwLock<Vec<RingKey>>,
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
                    let key = SigningKey::from_pkcs8(&der)
                        .map_err(|e| KeyError::Corrupt { path: path.clone(), reason: e.to_string() })?;
                    keys.push((start, Arc::new(key)));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(KeyError::Io { action: "list", path: dir, source: e }),
        }
        if keys.is_empty() {
            keys.push((now, Arc::new(write_new_key(&dir, now)?)));
        }
        keys.sort_by_key(|(start, _)| *start);
        Ok(KeyRing { dir, keys: RwLock::new(windows(keys)) })
    }

    /// The key that signs now (the newest).
    pub fn current(&self) -> RingKey {
        // `open` never builds an empty ring and rotation only adds.
        let keys = self.keys.read();
        keys[keys.len() - 1].clone()
    }

    /// The keys whose validity overlaps `[start, end]`, oldest first.
    pub fn valid_during(&self, start: EventTime, end: EventTime) -> impl Iterator<Item = RingKey> + use<> {
        let keys: Vec<RingKey> = self.keys.read().iter().filter(|k| k.valid_during(start, end)).cloned().collect();
        keys.into_iter()
    }

    /// Every key, oldest first.
    pub fn all(&self) -> Vec<RingKey> {
        self.keys.read().clone()
    }

    /// Adds a new key valid from `now` (the previous one's validity ends there) and makes it the signer.
    /// The file is durable before the key is used. A clock at or before the newest key's start (a clock
    /// that went back) starts the new key one millisecond after it, so windows stay ordered and names unique.
    pub fn rotate(&self, now: EventTime) -> Result<RingKey, KeyError> {
        let pending = self.prepare_rotation(now)?;
        self.install(pending)
    }

    /// The first half of a rotation, for a caller that must record it before it takes effect (the
    /// `RotateSigningKey` call): a fresh key and the start it will get, nothing written, nothing changed.
    pub fn prepare_rotation(&self, now: EventTime) -> Result<PendingKey, KeyError> {
        let key = SigningKey::generate()?;
        Ok(PendingKey { start: self.next_start(now), key })
    }

    /// The second half: writes the prepared key's file and makes it the signer. Its start is the prepared
    /// one unless another rotation came in between (then 1 ms after that one's).
    pub fn install(&self, pending: PendingKey) -> Result<RingKey, KeyError> {
        let mut keys = self.keys.write();
        let newest = keys[keys.len() - 1].validity_start;
        let start = if pending.start > newest { pending.start } else { EventTime(newest.0 + 1) };
        let path = self.dir.join(key_file_name(start));
        write_atomic(&path, &pending.key.to_pkcs8()?, 0o600).map_err(|e| e.source).map_err(io("write", &path))?;
        let key = Arc::new(pending.key);
        let mut all: Vec<(EventTime, Arc<SigningKey>)> =
            keys.iter().map(|k| (k.validity_start, k.key.clone())).collect();
        all.push((start, key));
        *keys = windows(all);
        tracing::info!(fingerprint = keys[keys.len() - 1].fingerprint(), start = %start, "rotated signing key");
        Ok(keys[keys.len() - 1].clone())
    }

    /// When a key added at `now` would start: `now`, or 1 ms after the newest key's start when the clock
    /// is at or before it.
    fn next_start(&self, now: EventTime) -> EventTime {
        let newest = self.current().validity_start;
        if now > newest { now } else { EventTime(newest.0 + 1) }
    }

    /// True when the newest key started `every_millis` or more before `now`: a schedule's "rotate now?".
    pub fn due(&self, now: EventTime, every_millis: i64) -> bool {
        now.0.saturating_sub(self.current().validity_start.0) >= every_millis
    }
}

/// Validity windows from the keys' starts (sorted): each ends where the next starts, the last one
/// `KEY_VALIDITY_MILLIS` after its start.
fn windows(keys: Vec<(EventTime, Arc<SigningKey>)>) -> Vec<RingKey> {
    let starts: Vec<EventTime> = keys.iter().map(|(s, _)| *s).collect();
    keys.into_iter()
        .enumerate()
        .map(|(i, (start, key))| RingKey {
            key,
            validity_start: start,
            validity_end: starts.get(i + 1).copied().unwrap_or(EventTime(start.0.saturating_add(KEY_VALIDITY_MILLIS))),
        })
        .collect()
}

fn write_new_key(dir: &Path, start: EventTime) -> Result<SigningKey, KeyError> {
    let key = SigningKey::generate()?;
    let path = dir.join(key_file_name(start));
    write_atomic(&path, &key.to_pkcs8()?, 0o600).map_err(|e| e.source).map_err(io("write", &path))?;
    tracing::info!(fingerprint = key.fingerprint(), path = %path.display(), "generated signing key");
    Ok(key)
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
    const DAY: i64 = 86_400_000;

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
    fn a_lone_key_is_valid_for_ten_years_inclusive() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyRing::open(dir.path(), T0).unwrap().current();
        assert!(key.valid_during(T0, T0));
        assert!(key.valid_during(EventTime(0), T0));
        assert!(!key.valid_during(EventTime(0), EventTime(T0.0 - 1)));
        assert_eq!(key.validity_end(), EventTime(T0.0 + KEY_VALIDITY_MILLIS));
        assert!(!key.valid_during(EventTime(key.validity_end().0 + 1), EventTime::MAX));
    }

    #[test]
    fn rotation_signs_with_the_new_key_and_ends_the_old_one_where_the_new_starts() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), T0).unwrap();
        let old = ring.current();
        assert!(!ring.due(EventTime(T0.0 + 29 * DAY), 30 * DAY));
        assert!(ring.due(EventTime(T0.0 + 30 * DAY), 30 * DAY));
        let t1 = EventTime(T0.0 + 30 * DAY);
        let new = ring.rotate(t1).unwrap();
        assert_ne!(new.fingerprint(), old.fingerprint());
        assert_eq!(ring.current().fingerprint(), new.fingerprint());
        assert!(!ring.due(t1, 30 * DAY));
        let all = ring.all();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].validity_start(), all[0].validity_end()), (T0, t1));
        assert_eq!((all[1].validity_start(), all[1].validity_end()), (t1, EventTime(t1.0 + KEY_VALIDITY_MILLIS)));
        // Only the old key before the rotation, only the new one after, both at the instant itself.
        let fps = |s: i64, e: i64| {
            ring.valid_during(EventTime(s), EventTime(e)).map(|k| k.fingerprint().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(fps(T0.0, t1.0 - 1), vec![old.fingerprint().to_string()]);
        assert_eq!(fps(t1.0 + 1, t1.0 + DAY), vec![new.fingerprint().to_string()]);
        assert_eq!(fps(t1.0, t1.0).len(), 2);
        // Keys survive reopen, with the same windows.
        let again = KeyRing::open(dir.path(), EventTime(t1.0 + DAY)).unwrap();
        let reopened: Vec<_> =
            again.all().iter().map(|k| (k.fingerprint().to_string(), k.validity_start(), k.validity_end())).collect();
        let before: Vec<_> =
            all.iter().map(|k| (k.fingerprint().to_string(), k.validity_start(), k.validity_end())).collect();
        assert_eq!(reopened, before);
        // A signature from the old key still verifies with its published key.
        let sig = old.sign_sha256_rsa(b"d").unwrap();
        assert!(verify_sha256_rsa(&again.all()[0].public_key().der_pkcs1, b"d", &sig));
    }

    #[test]
    fn a_prepared_rotation_changes_nothing_until_installed() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), T0).unwrap();
        let old = ring.current().fingerprint().to_string();
        let pending = ring.prepare_rotation(EventTime(T0.0 + DAY)).unwrap();
        assert_eq!(pending.validity_start(), EventTime(T0.0 + DAY));
        assert_eq!(ring.current().fingerprint(), old);
        assert_eq!(std::fs::read_dir(dir.path().join("keys")).unwrap().count(), 1);
        // Another rotation in between: the prepared key starts after it.
        let between = ring.rotate(EventTime(T0.0 + 2 * DAY)).unwrap();
        let fp = pending.fingerprint().to_string();
        let installed = ring.install(pending).unwrap();
        assert_eq!(installed.fingerprint(), fp);
        assert_eq!(installed.validity_start(), EventTime(between.validity_start().0 + 1));
        assert_eq!(ring.current().fingerprint(), fp);
        assert_eq!(KeyRing::open(dir.path(), T0).unwrap().all().len(), 3);
    }

    #[test]
    fn a_clock_that_went_back_still_rotates_forward() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), T0).unwrap();
        let new = ring.rotate(EventTime(T0.0 - DAY)).unwrap();
        assert_eq!(new.validity_start(), EventTime(T0.0 + 1));
        assert_eq!(ring.all()[0].validity_end(), EventTime(T0.0 + 1));
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
