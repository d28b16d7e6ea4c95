//! Prints what the embedded service table costs: inflating it and reading the service headers, then the
//! first and a later description of an EC2 call (the first parses EC2's operations and shapes). Run with
//! `/usr/bin/time -v` for the memory; `--preload` parses every service first (`awsproto::preload_all`).

use std::time::Instant;

fn main() {
    let started = Instant::now();
    let version = awsproto::model_version();
    println!("botocore {version}: table read in {:?}", started.elapsed());
    let headers = {
        let mut h = http::HeaderMap::new();
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host";
        h.insert("authorization", http::HeaderValue::from_static(auth));
        h.insert("content-type", http::HeaderValue::from_static("application/x-www-form-urlencoded"));
        h
    };
    let body = b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0123";
    if std::env::args().any(|a| a == "--preload") {
        let started = Instant::now();
        awsproto::preload_all();
        println!("every service parsed in {:?}", started.elapsed());
    }
    for round in ["first", "second"] {
        let started = Instant::now();
        let d = awsproto::describe(&awsproto::Exchange {
            method: &http::Method::POST,
            path: "/",
            query: None,
            request_headers: &headers,
            request_body: body,
            request_body_complete: true,
            status: Some(http::StatusCode::OK),
            response_headers: None,
            response_body: b"",
            response_body_complete: true,
            account_id: None,
        });
        println!("{round} {} described in {:?}", d.event_name, started.elapsed());
    }
}
