//! Identity of `kind = "http"` calls: a Bearer JWT (the `sub` claim or a configured one; the signature
//! verified when a key or JWKS file is configured) or the Basic-auth user. An invalid token is not an
//! identity: it is recorded as such (`Caller::Invalid`), never believed.

use std::path::Path;

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::config::JwtConfig;

#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    #[error("cannot read jwt key {}: {source}", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("jwt key {}: {reason}", path.display())]
    Invalid { path: std::path::PathBuf, reason: String },
}

enum Keys {
    /// No key configured: claims are read, not verified (and the record says so).
    None,
    /// One key, for the algorithms of its family.
    One(DecodingKey, Vec<Algorithm>),
    Jwks(JwkSet),
}

/// Who called, as the request's `Authorization` header says.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Anonymous,
    Jwt {
        subject: String,
        issuer: Option<String>,
        verified: bool,
    },
    /// A Bearer token that failed: why, and the subject it claimed (not believed) when readable.
    Invalid {
        reason: String,
        claimed_subject: Option<String>,
    },
    Basic {
        user: String,
    },
}

pub struct JwtVerifier {
    keys: Keys,
    claim: String,
    issuer: Option<String>,
    audience: Option<String>,
}

impl JwtVerifier {
    pub fn new(cfg: &JwtConfig) -> Result<JwtVerifier, JwtConfigError> {
        let read = |p: &Path| std::fs::read(p).map_err(|source| JwtConfigError::Read { path: p.to_path_buf(), source });
        let invalid = |p: &Path, reason: String| JwtConfigError::Invalid { path: p.to_path_buf(), reason };
        let keys = if let Some(p) = &cfg.jwks_file {
            let set: JwkSet = serde_json::from_slice(&read(p)?).map_err(|e| invalid(p, e.to_string()))?;
            Keys::Jwks(set)
        } else if let Some(p) = &cfg.key_file {
            let bytes = read(p)?;
            if bytes.windows(10).any(|w| w == b"-----BEGIN") {
                if let Ok(k) = DecodingKey::from_rsa_pem(&bytes) {
                    Keys::One(k, vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256])
                } else if let Ok(k) = DecodingKey::from_ec_pem(&bytes) {
                    Keys::One(k, vec![Algorithm::ES256, Algorithm::ES384])
                } else if let Ok(k) = DecodingKey::from_ed_pem(&bytes) {
                    Keys::One(k, vec![Algorithm::EdDSA])
                } else {
                    return Err(invalid(p, "holds no RSA, EC or Ed25519 public key".into()));
                }
            } else {
                let secret = String::from_utf8_lossy(&bytes).trim().to_string();
                if secret.is_empty() {
                    return Err(invalid(p, "is empty".into()));
                }
                let k = DecodingKey::from_secret(secret.as_bytes()).map_err(|e| invalid(p, e.to_string()))?;
                Keys::One(k, vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512])
            }
        } else {
            Keys::None
        };
        Ok(JwtVerifier {
            keys,
            claim: cfg.claim.clone().unwrap_or_else(|| "sub".to_string()),
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
        })
    }

    /// The caller of a request with this `Authorization` header value.
    pub fn caller(&self, authorization: Option<&str>) -> Caller {
        let Some(auth) = authorization.map(str::trim) else { return Caller::Anonymous };
        let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return match base64::engine::general_purpose::STANDARD.decode(rest.trim()) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    Caller::Basic { user: text.split_once(':').map_or(&*text, |(u, _)| u).to_string() }
                }
                Err(_) => Caller::Invalid { reason: "malformed Basic credentials".into(), claimed_subject: None },
            };
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Caller::Anonymous;
        }
        self.bearer(rest.trim())
    }

    fn bearer(&self, token: &str) -> Caller {
        let claimed: Option<Value> = jsonwebtoken::dangerous::insecure_decode_claims(token).ok();
        let claimed_subject = claimed.as_ref().and_then(|c| c.get(&self.claim)).and_then(claim_text);
        let invalid = |reason: String| Caller::Invalid { reason, claimed_subject: claimed_subject.clone() };
        let (claims, verified) = match &self.keys {
            Keys::None => match &claimed {
                Some(c) => (c.clone(), false),
                None => return invalid("not a JWT".into()),
            },
            Keys::One(key, algs) => match self.verify(token, key, algs.clone()) {
                Ok(c) => (c, true),
                Err(reason) => return invalid(reason),
            },
            Keys::Jwks(set) => {
                let header = match jsonwebtoken::decode_header(token) {
                    Ok(h) => h,
                    Err(e) => return invalid(e.to_string()),
                };
                let jwk = match header.kid.as_deref() {
                    Some(kid) => set.find(kid),
                    None if set.keys.len() == 1 => set.keys.first(),
                    None => None,
                };
                let Some(jwk) = jwk else { return invalid("no key in the JWKS for the token's kid".into()) };
                let key = match DecodingKey::from_jwk(jwk) {
                    Ok(k) => k,
                    Err(e) => return invalid(format!("unusable JWK: {e}")),
                };
                // The key's own type decides what verifies: an HS256 token never passes against an RSA key.
                let algs = vec![header.alg];
                match self.verify(token, &key, algs) {
                    Ok(c) => (c, true),
                    Err(reason) => return invalid(reason),
                }
            }
        };
        match claims.get(&self.claim).and_then(claim_text) {
            Some(subject) => {
                Caller::Jwt { subject, issuer: claims.get("iss").and_then(Value::as_str).map(str::to_string), verified }
            }
            None => invalid(format!("no {:?} claim", self.claim)),
        }
    }

    fn verify(&self, token: &str, key: &DecodingKey, algs: Vec<Algorithm>) -> Result<Value, String> {
        if algs.is_empty() {
            return Err("the token's algorithm does not fit the key".into());
        }
        let mut v = Validation::new(algs[0]);
        v.algorithms = algs;
        v.set_required_spec_claims::<&str>(&[]);
        v.leeway = 60;
        match &self.audience {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        if let Some(i) = &self.issuer {
            v.set_issuer(&[i]);
        }
        jsonwebtoken::decode::<Value>(token, key, &v).map(|t| t.claims).map_err(|e| e.to_string())
    }
}

fn claim_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn hs256(secret: &str, claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn verifier_with_secret(secret: &str, claim: Option<&str>) -> JwtVerifier {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, secret).unwrap();
        let cfg = JwtConfig { key_file: Some(path), claim: claim.map(str::to_string), ..Default::default() };
        JwtVerifier::new(&cfg).unwrap()
    }

    #[test]
    fn a_signed_token_names_its_subject_and_a_forged_one_is_invalid() {
        let v = verifier_with_secret("s3cret", None);
        let good = hs256("s3cret", &json!({"sub": "alice", "iss": "https://idp"}));
        assert_eq!(
            v.caller(Some(&format!("Bearer {good}"))),
            Caller::Jwt { subject: "alice".into(), issuer: Some("https://idp".into()), verified: true }
        );
        let forged = hs256("other", &json!({"sub": "mallory"}));
        let Caller::Invalid { claimed_subject, .. } = v.caller(Some(&format!("Bearer {forged}"))) else {
            panic!("forged token believed")
        };
        assert_eq!(claimed_subject.as_deref(), Some("mallory"));
        let expired = hs256("s3cret", &json!({"sub": "alice", "exp": 1000}));
        assert!(matches!(v.caller(Some(&format!("Bearer {expired}"))), Caller::Invalid { .. }));
        assert!(matches!(v.caller(Some("Bearer not-a-jwt")), Caller::Invalid { claimed_subject: None, .. }));
    }

    #[test]
    fn a_configured_claim_basic_auth_and_unverified_tokens() {
        let v = verifier_with_secret("k", Some("email"));
        let t = hs256("k", &json!({"sub": "1", "email": "bob@example.com"}));
        assert!(
            matches!(v.caller(Some(&format!("bearer {t}"))), Caller::Jwt { subject, .. } if subject == "bob@example.com")
        );
        assert_eq!(v.caller(Some("Basic Ym9iOnB3")), Caller::Basic { user: "bob".into() });
        assert_eq!(v.caller(None), Caller::Anonymous);
        let open = JwtVerifier::new(&JwtConfig::default()).unwrap();
        let t = hs256("whatever", &json!({"sub": "carol"}));
        assert!(matches!(open.caller(Some(&format!("Bearer {t}"))), Caller::Jwt { verified: false, .. }));
    }
}
