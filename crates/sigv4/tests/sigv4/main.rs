//! Integration tests of the sigv4 crate, one binary: AWS vectors, botocore vectors, round trips, error mapping.

mod aws_suite;
mod botocore_vectors;
mod errors;
mod round_trip;

use sigv4::{Credential, SigV4Error, SignedRequest, Verified};

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
