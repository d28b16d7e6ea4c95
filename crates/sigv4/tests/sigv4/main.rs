//! Integration tests of the sigv4 crate, one binary: AWS vectors, botocore vectors, round trips, error mapping,
//! scope expectations and two-phase (head, then streamed body) verification.

mod aws_suite;
mod botocore_vectors;
mod errors;
mod expectation;
mod round_trip;
mod two_phase;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sigv4::{Credential, Expectation, PendingBody, RequestHead, SigV4Error, SignedRequest, Verified};

pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

pub fn example_cred() -> Credential {
    Credential { access_key_id: ACCESS_KEY.to_owned(), secret_access_key: SECRET_KEY.to_owned() }
}

/// A lookup that knows exactly one key pair.
pub fn knows(cred: &Credential) -> impl Fn(&str) -> Option<Credential> + '_ {
    move |id| (id == cred.access_key_id).then(|| cred.clone())
}

/// A request as sent, owning its parts.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn verify(&self, now: i64, cred: &Credential) -> Result<Verified, SigV4Error> {
        let req = SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        };
        sigv4::verify(&req, now, knows(cred))
    }

    pub fn head(&self) -> RequestHead<'_> {
        RequestHead { method: &self.method, path: &self.path, query: &self.query, headers: &self.headers }
    }

    /// Phase 1 only: no body byte is looked at.
    pub fn verify_head(&self, now: i64, cred: &Credential, expect: &Expectation) -> Result<PendingBody, SigV4Error> {
        sigv4::verify_head(&self.head(), now, knows(cred), expect)
    }

    /// Phase 1 only, keeping just the error (`PendingBody` has no `PartialEq`).
    pub fn check_head(&self, now: i64, cred: &Credential, expect: &Expectation) -> Result<(), SigV4Error> {
        self.verify_head(now, cred, expect).map(|_| ())
    }

    /// Both phases, the body fed in pieces of `chunk_len` bytes (at least one), with an empty piece first.
    pub fn verify_in_chunks(
        &self,
        now: i64,
        cred: &Credential,
        expect: &Expectation,
        chunk_len: usize,
    ) -> Result<Verified, SigV4Error> {
        let mut pending = self.verify_head(now, cred, expect)?;
        pending.update(&[]);
        for chunk in self.body.chunks(chunk_len.max(1)) {
            pending.update(chunk);
        }
        pending.finish()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }
}

/// Signs `req` in place with `sigv4::sign`.
pub fn signed(mut req: Req, cred: &Credential, region: &str, service: &str, now: i64) -> Req {
    sigv4::sign(&req.method, &req.path, &req.query, &mut req.headers, &req.body, cred, region, service, now);
    req
}

/// A presigned URL as botocore's `generate_presigned_url` builds it, `X-Amz-SignedHeaders=host`, for a `path` that
/// needs no canonicalization and no other query. Test-only: the crate verifies presigned URLs but never makes them.
/// The payload is `UNSIGNED-PAYLOAD` for S3, else the hash of `body`.
#[allow(clippy::too_many_arguments)] // mirrors sign()'s parameters
pub fn presigned(
    method: &str,
    path: &str,
    host: &str,
    body: &[u8],
    cred: &Credential,
    region: &str,
    service: &str,
    amz_date: &str,
    expires_secs: u32,
) -> Req {
    let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}%2F{}&X-Amz-Date={amz_date}&X-Amz-Expires={expires_secs}\
         &X-Amz-SignedHeaders=host",
        cred.access_key_id,
        scope.replace('/', "%2F")
    );
    let payload = if service == "s3" { "UNSIGNED-PAYLOAD".to_owned() } else { hex::encode(Sha256::digest(body)) };
    let canonical = format!("{method}\n{path}\n{query}\nhost:{host}\n\nhost\n{payload}");
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let mac = |key: &[u8], data: &str| -> Vec<u8> {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else { unreachable!("HMAC accepts any key length") };
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    let mut key = format!("AWS4{}", cred.secret_access_key).into_bytes();
    for part in [&amz_date[..8], region, service, "aws4_request"] {
        key = mac(&key, part);
    }
    let signature = hex::encode(mac(&key, &to_sign));
    Req {
        method: method.into(),
        path: path.into(),
        query: format!("{query}&X-Amz-Signature={signature}"),
        headers: headers(&[("Host", host)]),
        body: body.to_vec(),
    }
}
