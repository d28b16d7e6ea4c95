//! Fuzz target: `awsproto::describe` on an exchange cut from arbitrary bytes — method, path, query, the
//! SigV4 credential, `X-Amz-Target`, Host, both bodies and the error-type header — must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "HEAD", "DELETE"];
const SERVICES: [&str; 8] = ["s3", "ec2", "iam", "lambda", "dynamodb", "route53", "sqs", "kms"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(7, '\n');
    let path = parts.next().unwrap_or_default();
    let query = parts.next();
    let target = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    let error_type = parts.next().unwrap_or_default();
    let request_body = parts.next().unwrap_or_default();
    let response_body = parts.next().unwrap_or_default();
    let service = SERVICES[(selector >> 3) as usize % SERVICES.len()];
    let mut req = http::HeaderMap::new();
    let auth = format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/{service}/aws4_request");
    if let Ok(v) = http::HeaderValue::from_str(&auth) {
        req.insert("authorization", v);
    }
    for (name, value) in [("x-amz-target", target), ("host", host)] {
        if let Ok(v) = http::HeaderValue::from_str(value)
            && !value.is_empty()
        {
            req.insert(name, v);
        }
    }
    if selector & 1 == 1 {
        req.insert("content-type", http::HeaderValue::from_static("application/x-www-form-urlencoded"));
    }
    let mut resp = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(error_type) {
        resp.insert("x-amzn-errortype", v);
    }
    let method: http::Method = METHODS[selector as usize % METHODS.len()].parse().expect("method");
    let status = http::StatusCode::from_u16(if selector & 2 == 2 { 400 } else { 200 }).expect("status");
    let d = awsproto::describe(&awsproto::Exchange {
        method: &method,
        path,
        query,
        request_headers: &req,
        request_body: request_body.as_bytes(),
        request_body_complete: selector & 4 == 4,
        status: Some(status),
        response_headers: Some(&resp),
        response_body: response_body.as_bytes(),
        response_body_complete: true,
        account_id: Some("123456789012"),
    });
    assert!(!d.event_name.is_empty());
});
