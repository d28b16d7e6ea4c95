//! What a signature was scoped to, against what the operation accepts ([`Expectation`]): each hostile request below
//! carries a valid signature (it passes a looser expectation) and is refused by `verify_head`, body unread.

use sigv4::{Credential, Expectation, SigV4Error};

use crate::{Req, example_cred, headers, presigned, signed};

/// 2024-03-09T17:42:05Z.
const NOW: i64 = 1_710_006_125;
const AMZ_DATE: &str = "20240309T174205Z";
const LIST_TRAILS: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListTrails";
const LOOKUP_EVENTS: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";

/// What opentrail's CloudTrail JSON API accepts.
const CLOUDTRAIL: Expectation<'static> = Expectation {
    services: &["cloudtrail"],
    region: "us-east-1",
    allow_presigned: false,
    must_sign: &["x-amz-target"],
};

/// A CloudTrail JSON 1.1 request, not yet signed.
fn json_request(target: Option<&str>, body: &[u8]) -> Req {
    let mut h = headers(&[("Host", "127.0.0.1:4567"), ("Content-Type", "application/x-amz-json-1.1")]);
    if let Some(t) = target {
        h.push(("X-Amz-Target".into(), t.into()));
    }
    Req { method: "POST".into(), path: "/".into(), query: String::new(), headers: h, body: body.to_vec() }
}

#[test]
fn scope_with_another_service_is_wrong_service() {
    let req = signed(json_request(Some(LOOKUP_EVENTS), b"{}"), &example_cred(), "us-east-1", "foo", NOW);
    let foo = Expectation { services: &["foo"], ..CLOUDTRAIL };
    assert!(req.verify_in_chunks(NOW, &example_cred(), &foo, 1).is_ok(), "the signature itself is good");

    let err = req.check_head(NOW, &example_cred(), &CLOUDTRAIL);
    assert_eq!(err, Err(SigV4Error::WrongService { service: "foo".into(), expected: vec!["cloudtrail".into()] }));
    let err = err.err().unwrap_or(SigV4Error::Missing);
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(err.aws_message(), "Credential should be scoped to correct service: 'cloudtrail'. ");
}

#[test]
fn scope_with_another_region_is_wrong_region() {
    let req = signed(json_request(Some(LOOKUP_EVENTS), b"{}"), &example_cred(), "mars-1", "cloudtrail", NOW);
    let mars = Expectation { region: "mars-1", ..CLOUDTRAIL };
    assert!(req.verify_in_chunks(NOW, &example_cred(), &mars, 1).is_ok(), "the signature itself is good");

    let err = req.check_head(NOW, &example_cred(), &CLOUDTRAIL);
    assert_eq!(err, Err(SigV4Error::WrongRegion { region: "mars-1".into(), expected: "us-east-1".into() }));
    let err = err.err().unwrap_or(SigV4Error::Missing);
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(err.aws_message(), "Credential should be scoped to a valid region, not 'mars-1'. ");
}

#[test]
fn scope_foo_in_mars_is_refused_for_its_service_first() {
    let req = signed(json_request(Some(LOOKUP_EVENTS), b"{}"), &example_cred(), "mars-1", "foo", NOW);
    let err = req.check_head(NOW, &example_cred(), &CLOUDTRAIL);
    assert!(matches!(err, Err(SigV4Error::WrongService { .. })), "{err:?}");
}

#[test]
fn any_of_several_services_is_accepted_and_all_are_named() {
    let both = Expectation { services: &["cloudtrail", "cloudtrail-data"], ..CLOUDTRAIL };
    for service in ["cloudtrail", "cloudtrail-data"] {
        let req = signed(json_request(Some(LOOKUP_EVENTS), b"{}"), &example_cred(), "us-east-1", service, NOW);
        assert!(req.verify_in_chunks(NOW, &example_cred(), &both, 7).is_ok(), "{service}");
    }
    let req = signed(json_request(Some(LOOKUP_EVENTS), b"{}"), &example_cred(), "us-east-1", "s3", NOW);
    let err = req.check_head(NOW, &example_cred(), &both).err().unwrap_or(SigV4Error::Missing);
    assert_eq!(
        err.aws_message(),
        "Credential should be scoped to correct service: 'cloudtrail' or 'cloudtrail-data'. "
    );
}

#[test]
fn scope_is_checked_before_the_key_and_the_signature() {
    let mut req = signed(json_request(Some(LOOKUP_EVENTS), b"{}"), &example_cred(), "us-east-1", "foo", NOW);
    let stranger = Credential { access_key_id: "AKIDOTHER".into(), secret_access_key: "x".into() };
    let err = req.check_head(NOW, &stranger, &CLOUDTRAIL);
    assert!(matches!(err, Err(SigV4Error::WrongService { .. })), "unknown key: {err:?}");

    let auth = req.header("authorization").unwrap_or_default().to_owned();
    req.set_header("Authorization", &auth.replace("Signature=", "Signature=ff"));
    let err = req.check_head(NOW, &example_cred(), &CLOUDTRAIL);
    assert!(matches!(err, Err(SigV4Error::WrongService { .. })), "bad signature: {err:?}");
}

/// The finding: an S3-scoped presigned URL signs neither the body nor `X-Amz-Target`, so whoever holds one for
/// `POST /` could pick any operation and any input for up to seven days.
#[test]
fn presigned_s3_url_is_no_bearer_token_for_the_json_api() {
    let mut req = presigned("POST", "/", "127.0.0.1:4567", b"", &example_cred(), "us-east-1", "s3", AMZ_DATE, 604_800);
    req.headers.push(("X-Amz-Target".into(), LOOKUP_EVENTS.into()));
    req.body = br#"{"MaxResults": 50}"#.to_vec();
    let a_week_later = NOW + 604_800;

    let err = req.check_head(a_week_later, &example_cred(), &CLOUDTRAIL);
    assert_eq!(err, Err(SigV4Error::PresignedNotAllowed));
    let err = err.err().unwrap_or(SigV4Error::Missing);
    assert_eq!(err.aws_code(), "IncompleteSignatureException");
    assert!(err.aws_message().contains("Authorization header"), "{}", err.aws_message());

    // Each further line of defence holds on its own.
    let presigned_ok = Expectation { allow_presigned: true, ..CLOUDTRAIL };
    let err = req.check_head(a_week_later, &example_cred(), &presigned_ok);
    assert!(matches!(&err, Err(SigV4Error::WrongService { service, .. }) if service == "s3"), "{err:?}");
    let s3_too = Expectation { services: &["cloudtrail", "s3"], ..presigned_ok };
    let err = req.check_head(a_week_later, &example_cred(), &s3_too);
    assert_eq!(err, Err(SigV4Error::HeaderNotSigned { names: vec!["x-amz-target".into()] }));
    // With every guard off the signature verifies, whatever the body: the guards are what refused it.
    let nothing_required = Expectation { must_sign: &[], ..s3_too };
    assert!(req.verify_in_chunks(a_week_later, &example_cred(), &nothing_required, 3).is_ok());
}

#[test]
fn presigned_url_for_cloudtrail_itself_is_refused_when_not_allowed() {
    let req =
        presigned("POST", "/", "127.0.0.1:4567", b"{}", &example_cred(), "us-east-1", "cloudtrail", AMZ_DATE, 900);
    let allowed = Expectation { allow_presigned: true, ..CLOUDTRAIL };
    assert!(req.verify_in_chunks(NOW, &example_cred(), &allowed, 1).is_ok());
    assert_eq!(req.check_head(NOW, &example_cred(), &CLOUDTRAIL), Err(SigV4Error::PresignedNotAllowed));
    // Refused for what it is, not for being stale.
    assert_eq!(req.check_head(NOW + 3600, &example_cred(), &CLOUDTRAIL), Err(SigV4Error::PresignedNotAllowed));
}

/// The finding: a signer that left `X-Amz-Target` out of `SignedHeaders` lets anyone turn its ListTrails into
/// LookupEvents (the operation is chosen by that header alone).
#[test]
fn unsigned_x_amz_target_is_refused() {
    let mut req = signed(json_request(None, b"{}"), &example_cred(), "us-east-1", "cloudtrail", NOW);
    req.headers.push(("X-Amz-Target".into(), LIST_TRAILS.into()));
    let nothing_required = Expectation { must_sign: &[], ..CLOUDTRAIL };
    assert!(req.verify_in_chunks(NOW, &example_cred(), &nothing_required, 1).is_ok(), "the signature itself is good");

    req.set_header("x-amz-TARGET", LOOKUP_EVENTS);
    let err = req.check_head(NOW, &example_cred(), &CLOUDTRAIL);
    assert_eq!(err, Err(SigV4Error::HeaderNotSigned { names: vec!["x-amz-target".into()] }));
    // verify() without an expectation refuses it too: no SDK leaves X-Amz-Target unsigned.
    assert_eq!(
        req.verify(NOW, &example_cred()),
        Err(SigV4Error::HeaderNotSigned { names: vec!["x-amz-target".into()] })
    );

    let e = SigV4Error::HeaderNotSigned { names: vec!["x-amz-target".into()] };
    assert_eq!(e.aws_code(), "AccessDeniedException");
    assert_eq!(e.aws_message(), "There were headers present in the request which were not signed: x-amz-target");
}

#[test]
fn must_sign_headers_that_are_absent_are_not_required() {
    let req = signed(json_request(None, b"{}"), &example_cred(), "us-east-1", "cloudtrail", NOW);
    assert!(req.verify_in_chunks(NOW, &example_cred(), &CLOUDTRAIL, 1).is_ok());
}

#[test]
fn signed_x_amz_target_cannot_be_swapped() {
    let mut req = signed(json_request(Some(LIST_TRAILS), b"{}"), &example_cred(), "us-east-1", "cloudtrail", NOW);
    assert!(req.verify_in_chunks(NOW, &example_cred(), &CLOUDTRAIL, 1).is_ok());
    req.set_header("X-Amz-Target", LOOKUP_EVENTS);
    assert_eq!(req.verify_in_chunks(NOW, &example_cred(), &CLOUDTRAIL, 1), Err(SigV4Error::Mismatch));
}

/// The finding: `x-amz-content-sha256: UNSIGNED-PAYLOAD` took the body out of the signature for any service.
#[test]
fn unsigned_payload_outside_s3_is_refused() {
    for literal in ["UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"] {
        let mut req = json_request(Some(LOOKUP_EVENTS), b"{}");
        req.headers.push(("x-amz-content-sha256".into(), literal.into()));
        let mut req = signed(req, &example_cred(), "us-east-1", "cloudtrail", NOW);
        req.body = br#"{"MaxResults": 50}"#.to_vec();

        let want = SigV4Error::UnsignedPayload { value: literal.into(), service: "cloudtrail".into() };
        assert_eq!(req.check_head(NOW, &example_cred(), &CLOUDTRAIL), Err(want.clone()), "{literal}");
        assert_eq!(req.verify(NOW, &example_cred()), Err(want.clone()), "verify() refuses it too: {literal}");
        assert_eq!(want.aws_code(), "InvalidSignatureException");
        assert!(want.aws_message().contains(literal), "{}", want.aws_message());
    }
}

#[test]
fn unsigned_payload_in_s3_is_accepted_whatever_the_body() {
    let s3 = Expectation { services: &["s3"], must_sign: &[], ..CLOUDTRAIL };
    let req = Req {
        method: "PUT".into(),
        path: "/bucket/key".into(),
        query: String::new(),
        headers: headers(&[("Host", "127.0.0.1:4567"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]),
        body: b"hello".to_vec(),
    };
    let mut req = signed(req, &example_cred(), "us-east-1", "s3", NOW);
    req.body = b"anything".to_vec();
    assert!(req.verify_in_chunks(NOW, &example_cred(), &s3, 2).is_ok());
}

#[test]
fn unknown_key_and_unsigned_requests_fail_before_the_body() {
    let req = signed(json_request(Some(LOOKUP_EVENTS), b"{}"), &example_cred(), "us-east-1", "cloudtrail", NOW);
    let stranger = Credential { access_key_id: "AKIDOTHER".into(), secret_access_key: "x".into() };
    assert_eq!(
        req.check_head(NOW, &stranger, &CLOUDTRAIL),
        Err(SigV4Error::UnknownKey { access_key_id: "AKIDEXAMPLE".into() })
    );
    let unsigned = json_request(Some(LOOKUP_EVENTS), b"{}");
    assert_eq!(unsigned.check_head(NOW, &example_cred(), &CLOUDTRAIL), Err(SigV4Error::Missing));
}

#[test]
fn test_presigner_reproduces_botocore() {
    // The `presigned-s3-get-object` vector, generated by botocore's generate_presigned_url.
    let req = presigned(
        "GET",
        "/trail-bucket/AWSLogs/a%20b/%C3%BC.json",
        "127.0.0.1:4567",
        b"",
        &example_cred(),
        "us-east-1",
        "s3",
        AMZ_DATE,
        3600,
    );
    assert!(req.query.ends_with("X-Amz-Signature=2c0866e6949e1b51805c7ab2bbe5eb176991a2dab578eda2bb608c465c2c3019"));
}
