//! Two-phase verification (`verify_head`, then the body streamed into `PendingBody`) answers as `verify` does on
//! every botocore vector, however the body is cut; a body other than the signed one passes phase 1 and fails
//! in `finish`.

use sigv4::{Credential, Expectation, SigV4Error, SignedRequest};

use crate::Req;
use crate::botocore_vectors::{Vector, vectors};

/// Body piece lengths to feed: byte by byte, odd, larger than every vector's body, and the whole body at once.
const CHUNK_LENS: &[usize] = &[1, 3, 64, usize::MAX];

/// The vector's request, and variants that must fail, each with the time and key pair to verify it with.
fn variants(v: &Vector) -> Vec<(&'static str, Req, i64, Credential)> {
    let mut out = vec![("as signed", v.req.clone(), v.now, v.cred.clone())];
    let mut req = v.req.clone();
    req.method = if req.method == "DELETE" { "PATCH".into() } else { "DELETE".into() };
    out.push(("method changed", req, v.now, v.cred.clone()));
    let mut req = v.req.clone();
    req.query = if req.query.is_empty() { "x=1".into() } else { format!("{}&x=1", req.query) };
    out.push(("query changed", req, v.now, v.cred.clone()));
    let mut req = v.req.clone();
    req.body.extend_from_slice(b" tampered");
    out.push(("body changed", req, v.now, v.cred.clone()));
    out.push(("16 minutes later", v.req.clone(), v.now + 960, v.cred.clone()));
    out.push(("wrong secret", v.req.clone(), v.now, Credential { secret_access_key: "nope".into(), ..v.cred.clone() }));
    out.push(("unknown key", v.req.clone(), v.now, Credential { access_key_id: "AKIDOTHER".into(), ..v.cred.clone() }));
    out
}

#[test]
fn two_phase_answers_as_verify_on_every_vector() {
    for v in vectors() {
        let services = [v.service.as_str()];
        let expect = Expectation {
            services: &services,
            region: &v.region,
            allow_presigned: v.presigned,
            must_sign: &["x-amz-target"],
        };
        for (what, req, now, cred) in variants(&v) {
            let whole = req.verify(now, &cred);
            if what == "as signed" {
                assert!(whole.is_ok(), "{}: {whole:?}", v.name);
            }
            for &chunk_len in CHUNK_LENS {
                let streamed = req.verify_in_chunks(now, &cred, &expect, chunk_len);
                assert_eq!(streamed, whole, "{}: {what}, chunks of {chunk_len}", v.name);
            }
            let signed = SignedRequest {
                method: &req.method,
                path: &req.path,
                query: &req.query,
                headers: &req.headers,
                body: &req.body,
            };
            let once = sigv4::verify_expecting(&signed, now, crate::knows(&cred), &expect);
            assert_eq!(once, whole, "{}: {what}, verify_expecting", v.name);
        }
    }
}

#[test]
fn a_body_other_than_the_signed_one_fails_in_finish() {
    let (mut streamed, mut claimed, mut unsigned) = (0, 0, 0);
    for v in vectors() {
        let services = [v.service.as_str()];
        let expect = Expectation {
            services: &services,
            region: &v.region,
            allow_presigned: v.presigned,
            must_sign: &["x-amz-target"],
        };
        let want = match v.req.header("x-amz-content-sha256") {
            Some("UNSIGNED-PAYLOAD") => None,
            Some(_) => Some(SigV4Error::BodyHashMismatch),
            None if v.presigned && v.service == "s3" => None,
            None => Some(SigV4Error::Mismatch),
        };
        match want {
            None => unsigned += 1,
            Some(SigV4Error::BodyHashMismatch) => claimed += 1,
            Some(_) => streamed += 1,
        }
        let mut other_bodies = vec![b"not the signed body".to_vec()];
        if let Some((_, shorter)) = v.req.body.split_last() {
            other_bodies.push(shorter.to_vec());
        }
        for body in other_bodies {
            // Phase 1 never sees the body, so it passes.
            let mut pending =
                v.req.verify_head(v.now, &v.cred, &expect).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
            assert_eq!(pending.access_key_id(), v.cred.access_key_id);
            for chunk in body.chunks(5) {
                pending.update(chunk);
            }
            let got = pending.finish();
            match &want {
                Some(err) => assert_eq!(got.as_ref().err(), Some(err), "{}: {body:?}", v.name),
                None => assert!(got.is_ok(), "{}: an unsigned payload is not checked: {got:?}", v.name),
            }
        }
    }
    assert!(streamed > 0 && claimed > 0 && unsigned > 0, "{streamed} streamed, {claimed} claimed, {unsigned} unsigned");
}

#[test]
fn pending_body_debug_hides_the_signing_key() {
    let v = vectors().into_iter().find(|v| v.name == "cloudtrail-lookup-events");
    let v = v.unwrap_or_else(|| panic!("vector cloudtrail-lookup-events"));
    let expect = Expectation { services: &["cloudtrail"], region: "us-east-1", allow_presigned: false, must_sign: &[] };
    let pending = v.req.verify_head(v.now, &v.cred, &expect).unwrap_or_else(|e| panic!("{e:?}"));
    let shown = format!("{pending:?}");
    assert!(shown.contains("AKIDEXAMPLE") && shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains(&v.cred.secret_access_key), "{shown}");
}
