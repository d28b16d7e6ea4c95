//! sign → verify round trips: any single change to a signed part fails with the right error; unsigned extras,
//! header-name case and header order do not matter; two-phase verification answers as `verify` however the body
//! is cut.

use proptest::prelude::*;
use sigv4::{Credential, Expectation, SigV4Error};

use crate::{Req, signed};

/// 2024-03-09T17:42:05Z.
const NOW: i64 = 1_710_006_125;

fn cred() -> Credential {
    Credential { access_key_id: "AKIAOPENTRAIL".into(), secret_access_key: "s3cr3t/+=key".into() }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._~-]{1,8}",
        Just("%20".to_owned()),
        Just("%E2%82%AC".to_owned()),
        Just("a%2Fb".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
    ]
}

fn query_part() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9._~-]{0,6}", Just("%20".to_owned()), Just("%3A%2F".to_owned()), Just("%C3%BC".to_owned())]
}

prop_compose! {
    fn request()(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")],
        segments in prop::collection::vec(segment(), 0..5),
        pairs in prop::collection::vec((query_part(), query_part()), 0..4),
        extra in prop::collection::vec(("[a-z]{1,6}", "[ -~]{0,12}"), 0..4),
        host in prop_oneof![Just("127.0.0.1:4567"), Just("cloudtrail.us-east-1.amazonaws.com"), Just("[::1]:80")],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) -> Req {
        let mut headers = vec![("Host".to_owned(), host.to_owned())];
        for (i, (name, value)) in extra.into_iter().enumerate() {
            headers.push((format!("X-T{i}-{name}"), value));
        }
        let query = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        Req { method: method.into(), path: format!("/{}", segments.join("/")), query, headers, body }
    }
}

fn service() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("cloudtrail"), Just("cloudtrail-data"), Just("s3")]
}

fn sign_now(req: Req, service: &str) -> Req {
    signed(req, &cred(), "eu-west-1", service, NOW)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn signed_requests_verify(req in request(), service in service()) {
        let req = sign_now(req, service);
        let v = req.verify(NOW, &cred());
        prop_assert!(v.is_ok(), "{v:?} for {req:?}");
        let v = v.unwrap_or_else(|e| panic!("{e:?}"));
        prop_assert_eq!((v.region.as_str(), v.service.as_str(), v.signed_at), ("eu-west-1", service, NOW));
    }

    #[test]
    fn changed_method_fails(req in request(), service in service()) {
        let mut req = sign_now(req, service);
        req.method = if req.method == "PATCH" { "GET".into() } else { "PATCH".into() };
        prop_assert_eq!(req.verify(NOW, &cred()), Err(SigV4Error::Mismatch));
    }

    #[test]
    fn changed_path_fails(req in request(), service in service()) {
        let mut req = sign_now(req, service);
        req.path.push_str("/zz");
        prop_assert_eq!(req.verify(NOW, &cred()), Err(SigV4Error::Mismatch));
    }

    #[test]
    fn changed_query_fails(req in request(), service in service(), extra in "[a-z]{1,4}=[a-z0-9]{0,3}") {
        let mut req = sign_now(req, service);
        req.query = if req.query.is_empty() { extra } else { format!("{}&{extra}", req.query) };
        prop_assert_eq!(req.verify(NOW, &cred()), Err(SigV4Error::Mismatch));
    }

    #[test]
    fn changed_signed_header_value_fails(req in request(), service in service(), pick in any::<prop::sample::Index>()) {
        let mut req = sign_now(req, service);
        // Every header but Authorization was signed; X-Amz-Date is covered by its own test.
        let candidates: Vec<usize> = (0..req.headers.len())
            .filter(|&i| !["authorization", "x-amz-date"].contains(&req.headers[i].0.to_ascii_lowercase().as_str()))
            .collect();
        let i = candidates[pick.index(candidates.len())];
        req.headers[i].1.push('x');
        prop_assert_eq!(req.verify(NOW, &cred()), Err(SigV4Error::Mismatch), "changed {:?}", req.headers[i]);
    }

    #[test]
    fn changed_body_fails(req in request(), service in service(), byte in any::<u8>()) {
        let mut req = sign_now(req, service);
        req.body.push(byte);
        // S3 signs x-amz-content-sha256, so the signature still holds and the body hash is what catches it.
        let expected = if service == "s3" { SigV4Error::BodyHashMismatch } else { SigV4Error::Mismatch };
        prop_assert_eq!(req.verify(NOW, &cred()), Err(expected));
    }

    #[test]
    fn changed_date_fails(req in request(), service in service(), delta in prop_oneof![1i64..=900, -900i64..=-1]) {
        let mut req = sign_now(req, service);
        let other = signed(Req { headers: vec![], ..req.clone() }, &cred(), "eu-west-1", service, NOW + delta);
        let other_date = other.header("x-amz-date").unwrap_or_default().to_owned();
        req.set_header("X-Amz-Date", &other_date);
        prop_assert_eq!(req.verify(NOW, &cred()), Err(SigV4Error::Mismatch));
    }

    #[test]
    fn clock_skew_beyond_15_minutes_fails(req in request(), service in service(), skew in 901i64..100_000, ahead in any::<bool>()) {
        let req = sign_now(req, service);
        let now = if ahead { NOW + skew } else { NOW - skew };
        let err = req.verify(now, &cred());
        prop_assert!(matches!(err, Err(SigV4Error::Expired { .. })), "{err:?}");
        let edge = if ahead { NOW + 900 } else { NOW - 900 };
        prop_assert!(req.verify(edge, &cred()).is_ok(), "15 minutes exactly must pass");
    }

    #[test]
    fn unsigned_extras_case_and_order_do_not_matter(
        req in request(),
        service in service(),
        extra in "[ -~]{0,20}",
    ) {
        let mut req = sign_now(req, service);
        req.headers.push(("X-Unsigned-Extra".into(), extra.clone()));
        req.headers.push(("User-Agent".into(), extra));
        req.headers.push(("Content-Length".into(), req.body.len().to_string()));
        req.headers.reverse();
        for (name, _) in &mut req.headers {
            *name = name.to_ascii_uppercase();
        }
        let v = req.verify(NOW, &cred());
        prop_assert!(v.is_ok(), "{v:?}");
    }

    #[test]
    fn two_phase_in_any_pieces_answers_as_verify(
        req in request(),
        service in service(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        tamper in any::<bool>(),
    ) {
        let mut req = sign_now(req, service);
        if tamper {
            req.body.push(b'!');
        }
        let expect =
            Expectation { services: &[service], region: "eu-west-1", allow_presigned: false, must_sign: &["x-amz-target"] };
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(req.body.len() + 1)).collect();
        points.push(req.body.len());
        points.sort_unstable();
        let streamed = req.verify_head(NOW, &cred(), &expect).and_then(|mut pending| {
            let mut start = 0;
            for end in points {
                pending.update(&req.body[start..end]);
                start = end;
            }
            pending.finish()
        });
        prop_assert_eq!(streamed, req.verify(NOW, &cred()));
    }
}
