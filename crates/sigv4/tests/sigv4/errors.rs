//! Every error case, and the AWS exception code and message it maps to.

use sigv4::SigV4Error;

use crate::{Req, example_cred, headers, signed};

/// 2020-01-01T00:30:00Z.
const NOW: i64 = 1_577_838_600;
const GOOD_AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20200101/us-east-1/cloudtrail/aws4_request, \
                         SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

fn request(auth: Option<&str>, amz_date: Option<&str>) -> Req {
    let mut h = headers(&[("Host", "127.0.0.1:4567")]);
    if let Some(d) = amz_date {
        h.push(("X-Amz-Date".into(), d.into()));
    }
    if let Some(a) = auth {
        h.push(("Authorization".into(), a.into()));
    }
    Req { method: "POST".into(), path: "/".into(), query: String::new(), headers: h, body: b"{}".to_vec() }
}

fn signed_at(epoch: i64) -> Req {
    let req = Req {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: headers(&[("Host", "127.0.0.1:4567"), ("Content-Type", "application/x-amz-json-1.1")]),
        body: b"{}".to_vec(),
    };
    signed(req, &example_cred(), "us-east-1", "cloudtrail", epoch)
}

fn incomplete_reason(req: &Req) -> String {
    match req.verify(NOW, &example_cred()) {
        Err(e @ SigV4Error::Incomplete { .. }) => {
            assert_eq!(e.aws_code(), "IncompleteSignatureException");
            e.aws_message()
        }
        other => panic!("expected Incomplete, got {other:?}"),
    }
}

#[test]
fn no_authorization_at_all_is_missing_authentication_token() {
    let err = request(None, Some("20200101T003000Z")).verify(NOW, &example_cred());
    assert_eq!(err, Err(SigV4Error::Missing));
    let err = SigV4Error::Missing;
    assert_eq!(err.aws_code(), "MissingAuthenticationTokenException");
    assert_eq!(err.aws_message(), "Missing Authentication Token");
}

#[test]
fn missing_parameters_are_listed_as_aws_lists_them() {
    let reason = incomplete_reason(&request(Some("AWS4-HMAC-SHA256"), None));
    assert_eq!(
        reason,
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either \
         a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"
    );
    let reason = incomplete_reason(&request(Some("AWS4-HMAC-SHA256 Foo=bar"), Some("20200101T003000Z")));
    assert!(reason.starts_with("Authorization header requires 'Credential' parameter."), "{reason}");
    assert!(!reason.contains("X-Amz-Date"), "{reason}");
    assert!(reason.ends_with("Authorization=AWS4-HMAC-SHA256 Foo=bar"), "{reason}");
}

#[test]
fn missing_x_amz_date_is_incomplete() {
    let reason = incomplete_reason(&request(Some(GOOD_AUTH), None));
    assert!(reason.starts_with("Authorization header requires existence of either a 'X-Amz-Date'"), "{reason}");
}

#[test]
fn malformed_header_pieces_are_incomplete() {
    let date = Some("20200101T003000Z");
    let with_credential = |cred: &str| {
        request(Some(&format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;x-amz-date, Signature=00")), date)
    };
    let cases = [
        (
            with_credential("AKIDEXAMPLE/20200101/us-east-1/cloudtrail"),
            "Credential must have exactly 5 slash-delimited",
        ),
        (with_credential("AKIDEXAMPLE/20200101/us-east-1/cloudtrail/aws5_request"), "valid terminator: 'aws4_request'"),
        (
            with_credential("AKIDEXAMPLE/20191231/us-east-1/cloudtrail/aws4_request"),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20191231' != \
             '20200101', from '20200101T003000Z'.",
        ),
        (with_credential("/20200101/us-east-1/cloudtrail/aws4_request"), "access key id"),
        (with_credential("AKIDEXAMPLE/20200101//cloudtrail/aws4_request"), "valid region"),
        (
            request(Some(&GOOD_AUTH.replace("host;x-amz-date", "x-amz-date")), date),
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            request(Some(&GOOD_AUTH.replace("host;x-amz-date", "host;x-amz-date;x-amz-target")), date),
            "Header 'x-amz-target' is listed in SignedHeaders but is not in the request.",
        ),
        (request(Some(&GOOD_AUTH.replace("host;x-amz-date", "host;;x-amz-date")), date), "';'-separated list"),
        (request(Some(GOOD_AUTH), Some("2020-01-01T00:30:00Z")), "Date must be in ISO-8601 'basic format'."),
        (request(Some(&GOOD_AUTH.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256")), date), "Unsupported AWS"),
        (request(Some(&GOOD_AUTH.replace(", SignedHeaders", ", Oops, SignedHeaders")), date), "missing equal-sign"),
        (request(Some("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"), date), "missing equal-sign"),
    ];
    for (req, needle) in cases {
        let reason = incomplete_reason(&req);
        assert!(reason.contains(needle), "{needle:?} not in {reason:?}");
    }
}

#[test]
fn both_auth_mechanisms_at_once_is_incomplete() {
    let mut req = request(Some(GOOD_AUTH), Some("20200101T003000Z"));
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".into();
    assert!(incomplete_reason(&req).starts_with("Only one auth mechanism allowed"));
}

#[test]
fn presigned_query_missing_parameters_is_incomplete() {
    let mut req = request(None, None);
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20200101T003000Z".into();
    assert!(incomplete_reason(&req).starts_with("Query-string authentication version 4 requires"));
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20200101%2Fus-east-1%2Fs3%2F\
                 aws4_request&X-Amz-Date=20200101T003000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&\
                 X-Amz-Signature=00"
        .into();
    assert!(incomplete_reason(&req).starts_with("X-Amz-Expires must be less than a week"));
}

#[test]
fn unknown_access_key_is_unrecognized_client() {
    let req = signed_at(NOW);
    let stranger = sigv4::Credential { access_key_id: "AKIDOTHER".into(), secret_access_key: "x".into() };
    let err = req.verify(NOW, &stranger);
    assert_eq!(err, Err(SigV4Error::UnknownKey { access_key_id: "AKIDEXAMPLE".into() }));
    let err = SigV4Error::UnknownKey { access_key_id: "AKIDEXAMPLE".into() };
    assert_eq!(err.aws_code(), "UnrecognizedClientException");
    assert_eq!(err.aws_message(), "The security token included in the request is invalid.");
}

#[test]
fn wrong_signature_is_invalid_signature() {
    let mut req = signed_at(NOW);
    let auth = req.header("authorization").unwrap_or_default().to_owned();
    // Flip the last hex digit: every other byte of the signature still matches.
    let last = if auth.ends_with('0') { "1" } else { "0" };
    req.set_header("Authorization", &format!("{}{last}", &auth[..auth.len() - 1]));
    assert_eq!(req.verify(NOW, &example_cred()), Err(SigV4Error::Mismatch));
    req.set_header("Authorization", &auth.replace("Signature=", "Signature=zz"));
    assert_eq!(req.verify(NOW, &example_cred()), Err(SigV4Error::Mismatch));

    let err = SigV4Error::Mismatch;
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.aws_message(),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access \
         Key and signing method. Consult the service documentation for details."
    );
}

#[test]
fn stale_request_is_signature_expired_with_aws_wording() {
    let req = signed_at(1_577_836_800); // 2020-01-01T00:00:00Z, 30 minutes before NOW
    let err = req.verify(NOW, &example_cred());
    assert_eq!(
        err,
        Err(SigV4Error::Expired { request_time: "20200101T000000Z".into(), now: "20200101T003000Z".into() })
    );
    let err = err.err().unwrap_or(SigV4Error::Missing);
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.aws_message(),
        "Signature expired: 20200101T000000Z is now earlier than 20200101T001500Z (20200101T003000Z - 15 min.)"
    );
}

#[test]
fn future_request_is_signature_not_yet_current() {
    let req = signed_at(NOW + 3600);
    let err = req.verify(NOW, &example_cred()).err().unwrap_or(SigV4Error::Missing);
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.aws_message(),
        "Signature not yet current: 20200101T013000Z is still later than 20200101T004500Z (20200101T003000Z + 15 min.)"
    );
}

#[test]
fn skew_of_exactly_15_minutes_is_accepted() {
    assert!(signed_at(NOW - 900).verify(NOW, &example_cred()).is_ok());
    assert!(signed_at(NOW + 900).verify(NOW, &example_cred()).is_ok());
    assert!(matches!(signed_at(NOW - 901).verify(NOW, &example_cred()), Err(SigV4Error::Expired { .. })));
}

#[test]
fn wrong_content_sha256_is_body_hash_mismatch() {
    let mut req = Req {
        method: "PUT".into(),
        path: "/bucket/key".into(),
        query: String::new(),
        headers: headers(&[("Host", "127.0.0.1:4567")]),
        body: b"hello".to_vec(),
    };
    req = signed(req, &example_cred(), "us-east-1", "s3", NOW);
    assert!(req.verify(NOW, &example_cred()).is_ok());
    req.body = b"HELLO".to_vec();
    let err = req.verify(NOW, &example_cred());
    assert_eq!(err, Err(SigV4Error::BodyHashMismatch));
    let err = SigV4Error::BodyHashMismatch;
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert!(err.aws_message().contains("'x-amz-content-sha256'"));
}

#[test]
fn unsigned_payload_is_accepted_whatever_the_body() {
    let req = Req {
        method: "PUT".into(),
        path: "/bucket/key".into(),
        query: String::new(),
        headers: headers(&[("Host", "127.0.0.1:4567"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]),
        body: b"hello".to_vec(),
    };
    let mut req = signed(req, &example_cred(), "us-east-1", "s3", NOW);
    req.body = b"anything".to_vec();
    assert!(req.verify(NOW, &example_cred()).is_ok());
}

#[test]
fn signed_chunked_payload_is_refused() {
    let req = Req {
        method: "PUT".into(),
        path: "/bucket/key".into(),
        query: String::new(),
        headers: headers(&[("Host", "h"), ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")]),
        body: b"5;chunk-signature=00\r\nhello\r\n".to_vec(),
    };
    let req = signed(req, &example_cred(), "us-east-1", "s3", NOW);
    assert!(incomplete_reason(&req).contains("is not supported"));
}

#[test]
fn presigned_expiry_message_names_the_instant() {
    let err = SigV4Error::PresignedExpired { expired_at: "20200101T001000Z".into(), now: "20200101T003000Z".into() };
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert!(err.aws_message().contains("20200101T001000Z"));
}

#[test]
fn session_token_is_signed_when_present() {
    let req = Req {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: headers(&[("Host", "h"), ("X-Amz-Security-Token", "tok")]),
        body: vec![],
    };
    let mut req = signed(req, &example_cred(), "us-east-1", "cloudtrail", NOW);
    assert!(req.header("authorization").is_some_and(|a| a.contains("x-amz-security-token")));
    req.set_header("X-Amz-Security-Token", "other");
    assert_eq!(req.verify(NOW, &example_cred()), Err(SigV4Error::Mismatch));
}
