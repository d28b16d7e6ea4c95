//! Authentication in two steps around the body: the SigV4 parameters, the credential scope (this
//! surface's signing name, this server's region), the clock, the signed headers (`X-Amz-Target` must be
//! signed; presigned URLs are refused on every surface served today) and the access key are checked from
//! the headers before any body byte is read; the signature is checked once the body has streamed through
//! the payload hash.

use axum::http::request::Parts;
use service::Principal;

use crate::App;
use crate::error::ApiError;
use crate::operation::Surface;

/// Headers that must be signed whenever they are sent: the operation a JSON 1.1 request names.
const MUST_SIGN: &[&str] = &["x-amz-target"];

/// A request whose headers passed; the signature is checked by [`finish`] once the body is read.
pub(crate) struct PendingAuth(sigv4::PendingBody);

impl PendingAuth {
    /// Feeds body bytes as they arrive.
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }
}

pub(crate) fn verify_head(app: &App, parts: &Parts, surface: Surface) -> Result<PendingAuth, ApiError> {
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let head = sigv4::RequestHead {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
    };
    let expect = sigv4::Expectation {
        services: surface.signing_names(),
        region: &app.config.region,
        allow_presigned: false,
        must_sign: MUST_SIGN,
    };
    let now_secs = (app.clock)().0.div_euclid(1000);
    let pending = sigv4::verify_head(
        &head,
        now_secs,
        |key| {
            app.principals.get(key).map(|p| sigv4::Credential {
                access_key_id: p.access_key_id.clone(),
                secret_access_key: p.secret_access_key.clone(),
            })
        },
        &expect,
    )?;
    Ok(PendingAuth(pending))
}

pub(crate) fn finish(app: &App, p: PendingAuth) -> Result<Principal, ApiError> {
    let verified = p.0.finish()?;
    app.principals.get(&verified.access_key_id).cloned().ok_or_else(ApiError::unrecognized_client)
}
