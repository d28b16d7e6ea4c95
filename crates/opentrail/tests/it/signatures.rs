//! A signature is worth only what it signed: the credential scope's service and region are checked, the
//! operation (`X-Amz-Target`) must be signed, and presigned URLs are refused where AWS refuses them.

use std::process::Command;

use serde_json::json;

use crate::support::*;

/// A request signed by opentrail's signer for `service`/`region`; `unsigned` headers are added after signing.
fn signed_for(
    s: &Server,
    service: &str,
    region: &str,
    headers: &[(&str, &str)],
    unsigned: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut hs: Vec<(String, String)> = vec![("host".into(), s.addr.clone())];
    hs.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cred = sigv4::Credential { access_key_id: ADMIN_KEY.into(), secret_access_key: ADMIN_SECRET.into() };
    sigv4::sign("POST", "/", "", &mut hs, body, &cred, region, service, now_secs());
    let mut hs: Vec<(String, String)> = hs.into_iter().filter(|(k, _)| k != "host").collect();
    hs.extend(unsigned.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    s.raw("POST", "/", &hs, body)
}

fn trail_exists(s: &Server, name: &str) -> bool {
    s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "GetTrail", &json!({"Name": name})).status == 200
}

#[test]
fn a_signature_scoped_to_another_service_or_region_is_refused() {
    let s = Server::start();
    let target = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "CloudTrail_20131101.ListTrails")];
    let ok = signed_for(&s, "cloudtrail", "us-east-1", &target, &[], b"{}");
    assert_eq!(ok.status, 200, "{}", ok.text());
    for (service, region, needle) in
        [("foo", "us-east-1", "correct service"), ("cloudtrail", "mars-1", "valid region"), ("foo", "mars-1", "")]
    {
        let r = signed_for(&s, service, region, &target, &[], b"{}");
        assert_eq!((r.status, r.code().as_str()), (403, "InvalidSignatureException"), "{service}/{region}");
        assert!(r.text().contains(needle), "{}", r.text());
    }
    // cloudtrail-data and the native API have their own signing names.
    let r = s.signed(WRITER_KEY, WRITER_SECRET, "POST", "/v1/events", &[], b"");
    assert_ne!(r.status, 403, "the native API takes 'opentrail'-scoped signatures: {}", r.text());
    let data_scoped = signed_for(&s, "cloudtrail-data", "us-east-1", &target, &[], b"{}");
    assert_eq!(data_scoped.status, 403, "a cloudtrail-data signature is not a cloudtrail one");
}

#[test]
fn an_unsigned_x_amz_target_cannot_change_the_operation() {
    let s = Server::start();
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "CreateTrail", &json!({"Name": "keep-me", "S3BucketName": "b-1"}));
    assert_eq!(r.status, 200);
    // Signed as a request without a target, then pointed at DeleteTrail.
    let body = br#"{"Name":"keep-me"}"#;
    let r = signed_for(
        &s,
        "cloudtrail",
        "us-east-1",
        &[("content-type", "application/x-amz-json-1.1")],
        &[("x-amz-target", "CloudTrail_20131101.DeleteTrail")],
        body,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("x-amz-target"), "{}", r.text());
    assert!(trail_exists(&s, "keep-me"));
}

/// A presigned URL made by botocore, exactly as `boto3`'s `generate_presigned_url` makes one, for `service`.
fn presigned_url(s: &Server, service: &str) -> String {
    let code = format!(
        "from botocore.auth import S3SigV4QueryAuth, SigV4QueryAuth\n\
         from botocore.awsrequest import AWSRequest\n\
         from botocore.credentials import Credentials\n\
         req = AWSRequest(method='POST', url='http://{addr}/', headers={{}})\n\
         auth = S3SigV4QueryAuth if '{service}' == 's3' else SigV4QueryAuth\n\
         auth(Credentials('{ADMIN_KEY}', '{ADMIN_SECRET}'), '{service}', 'us-east-1', expires=604800).add_auth(req)\n\
         print(req.url)\n",
        addr = s.addr
    );
    let out = Command::new("python3").args(["-c", &code]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_presigned_url_is_not_a_bearer_token_for_the_api() {
    let s = Server::start();
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "CreateTrail", &json!({"Name": "keep-me", "S3BucketName": "b-1"}));
    assert_eq!(r.status, 200);
    for service in ["s3", "cloudtrail"] {
        let url = presigned_url(&s, service);
        let path_and_query = url.split_once(&s.addr).unwrap().1.to_string();
        let headers = vec![
            ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
            ("x-amz-target".to_string(), "CloudTrail_20131101.DeleteTrail".to_string()),
        ];
        let r = s.raw("POST", &path_and_query, &headers, br#"{"Name":"keep-me"}"#);
        assert_eq!(r.status, 403, "{service}: {}", r.text());
        assert!(trail_exists(&s, "keep-me"), "{service}");
    }
}
