//! Sign-in checks: secret access keys compared in constant time, console users' passwords as argon2 PHC
//! strings (`opentrail console hash-password` makes them). An unknown user costs the same argon2 work as a
//! known one, so timing does not tell them apart.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Whether `a` and `b` are equal, in time independent of where they differ (both are hashed first, so
/// their lengths do not show either).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("password_hash is not an argon2 PHC string: {0}")]
    NotPhc(String),
}

/// An argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks that `phc` is an argon2 PHC string (for the config's validation).
pub fn check_phc(phc: &str) -> Result<(), PasswordError> {
    let h = PasswordHash::new(phc).map_err(|e| PasswordError::NotPhc(e.to_string()))?;
    if !h.algorithm.as_str().starts_with("argon2") {
        return Err(PasswordError::NotPhc(format!("algorithm {} is not argon2", h.algorithm)));
    }
    Ok(())
}

/// Whether `password` matches `phc`; `None` (no such user) spends the same work against a fixed hash and
/// answers false.
pub fn verify_password(phc: Option<&str>, password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("opentrail-no-such-user").unwrap_or_default());
    let (target, real) = match phc {
        Some(p) => (p, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(target) else { return false };
    let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        check_phc(&h).unwrap();
        assert!(verify_password(Some(&h), "correct horse"));
        assert!(!verify_password(Some(&h), "correct horsE"));
        assert!(!verify_password(None, "opentrail-no-such-user"), "no user never signs in");
        assert!(!verify_password(Some("not a hash"), "x"));
        assert!(check_phc("$2b$12$abcdefghijklmnopqrstuv").is_err());
        assert!(matches!(hash_password(""), Err(PasswordError::Empty)));
    }
}
