//! Console sessions: a server-side table of random 256-bit ids, each with its own CSRF token, the principal
//! it acts as and an absolute expiry. Held in memory only: a restart signs every console user out.

use std::collections::HashMap;

use parking_lot::Mutex;
use rand::RngCore;

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The cookie's value: 32 random bytes, hex.
    pub id: String,
    /// Sent back by the console in a header on every call: 32 random bytes, hex.
    pub csrf_token: String,
    /// The principal whose role and policy the session has.
    pub access_key_id: String,
    /// The console user's name when signed in with a password (`[console] users`), else `None`.
    pub user: Option<String>,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// Why a session id does not name a live session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session has expired")]
    Expired,
    #[error("no such session (signed out, or the server restarted)")]
    Unknown,
}

/// The session table.
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
    lifetime_ms: i64,
}

/// Hard-coded: sessions kept at once; signing in beyond it drops the oldest.
pub const MAX_SESSIONS: usize = 10_000;

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Sessions {
    pub fn new(lifetime: std::time::Duration) -> Sessions {
        Sessions { table: Mutex::new(HashMap::new()), lifetime_ms: lifetime.as_millis().min(i64::MAX as u128) as i64 }
    }

    /// How long a session lives, in seconds (the cookie's Max-Age).
    pub fn lifetime_secs(&self) -> i64 {
        self.lifetime_ms / 1000
    }

    /// A new session for `access_key_id`; expired ones are dropped on the way.
    pub fn create(&self, access_key_id: &str, user: Option<&str>, now_ms: i64) -> Session {
        let session = Session {
            id: random_hex(),
            csrf_token: random_hex(),
            access_key_id: access_key_id.to_string(),
            user: user.map(str::to_string),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(self.lifetime_ms),
        };
        let mut t = self.table.lock();
        t.retain(|_, s| s.expires_ms > now_ms);
        if t.len() >= MAX_SESSIONS
            && let Some(oldest) = t.values().min_by_key(|s| s.created_ms).map(|s| s.id.clone())
        {
            t.remove(&oldest);
        }
        t.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session `id` names.
    pub fn get(&self, id: &str, now_ms: i64) -> Result<Session, SessionError> {
        let mut t = self.table.lock();
        match t.get(id) {
            None => Err(SessionError::Unknown),
            Some(s) if s.expires_ms <= now_ms => {
                t.remove(id);
                Err(SessionError::Expired)
            }
            Some(s) => Ok(s.clone()),
        }
    }

    /// Signs a session out; unknown ids are ignored.
    pub fn remove(&self, id: &str) {
        self.table.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_session_lives_until_its_expiry_and_not_after() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.create("AKIA1", None, 1_000);
        assert_eq!(a.id.len(), 64);
        assert_ne!(a.id, a.csrf_token);
        assert_eq!(s.get(&a.id, 60_999).unwrap().access_key_id, "AKIA1");
        assert_eq!(s.get(&a.id, 61_000).unwrap_err(), SessionError::Expired);
        assert_eq!(s.get(&a.id, 1_000).unwrap_err(), SessionError::Unknown, "an expired session is gone");
    }

    #[test]
    fn sign_out_ends_only_that_session() {
        let s = Sessions::new(Duration::from_secs(60));
        let (a, b) = (s.create("K", Some("ana"), 0), s.create("K", None, 0));
        assert_ne!(a.id, b.id);
        s.remove(&a.id);
        assert_eq!(s.get(&a.id, 1).unwrap_err(), SessionError::Unknown);
        assert_eq!(s.get(&b.id, 1).unwrap().user, None);
    }
}
