//! describe() on every recorded exchange (crates/awsproto/tests/fixtures, recorded by
//! scripts/awsproto-record.py between the aws CLI and moto_server): the CloudTrail fields each fixture expects,
//! and, where ../shared/data has real CloudTrail records of the same API, the same shape of
//! requestParameters and responseElements.

use std::path::{Path, PathBuf};

use awsproto::{Category, Described, Exchange, describe};
use serde_json::Value;

struct Owned {
    method: http::Method,
    path: String,
    query: Option<String>,
    req_headers: http::HeaderMap,
    req_body: Vec<u8>,
    req_complete: bool,
    status: http::StatusCode,
    resp_headers: http::HeaderMap,
    resp_body: Vec<u8>,
    resp_complete: bool,
}

fn headers(v: &Value) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for pair in v.as_array().expect("headers") {
        let name = http::HeaderName::from_bytes(pair[0].as_str().expect("name").as_bytes()).expect("header name");
        let value = http::HeaderValue::from_str(pair[1].as_str().expect("value")).expect("header value");
        h.append(name, value);
    }
    h
}

fn body(v: &Value) -> (Vec<u8>, bool) {
    let bytes = match (v.get("text"), v.get("base64")) {
        (Some(t), _) => t.as_str().expect("text").as_bytes().to_vec(),
        (None, Some(b)) => base64_decode(b.as_str().expect("base64")),
        _ => Vec::new(),
    };
    (bytes, v["complete"].as_bool().unwrap_or(true))
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let Some(v) = A.iter().position(|&a| a == c) else { continue };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn owned(x: &Value) -> Owned {
    let (req_body, req_complete) = body(&x["request"]["body"]);
    let (resp_body, resp_complete) = body(&x["response"]["body"]);
    Owned {
        method: x["request"]["method"].as_str().expect("method").parse().expect("method"),
        path: x["request"]["path"].as_str().expect("path").to_owned(),
        query: x["request"]["query"].as_str().map(str::to_owned),
        req_headers: headers(&x["request"]["headers"]),
        req_body,
        req_complete,
        status: http::StatusCode::from_u16(x["response"]["status"].as_u64().expect("status") as u16).expect("status"),
        resp_headers: headers(&x["response"]["headers"]),
        resp_body,
        resp_complete,
    }
}

fn run(o: &Owned) -> Described {
    describe(&Exchange {
        method: &o.method,
        path: &o.path,
        query: o.query.as_deref(),
        request_headers: &o.req_headers,
        request_body: &o.req_body,
        request_body_complete: o.req_complete,
        status: Some(o.status),
        response_headers: Some(&o.resp_headers),
        response_body: &o.resp_body,
        response_body_complete: o.resp_complete,
        account_id: Some("123456789012"),
    })
}

fn fixtures() -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read fixture");
            let json: Value = serde_json::from_str(&text).expect("fixture is JSON");
            (p, json)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(v.len() >= 30, "expected the recorded fixtures, found {}", v.len());
    v
}

/// `expected` ⊆ `got`: every member of an expected object is in the actual one with a matching value;
/// arrays match element-wise over the expected prefix.
fn subset(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => e.iter().all(|(k, ev)| g.get(k).is_some_and(|gv| subset(ev, gv))),
        (Value::Array(e), Value::Array(g)) => e.len() <= g.len() && e.iter().zip(g).all(|(a, b)| subset(a, b)),
        _ => expected == got,
    }
}

fn described_json(d: &Described) -> Value {
    serde_json::json!({
        "eventSource": d.event_source,
        "eventName": d.event_name,
        "readOnly": d.read_only,
        "eventCategory": match d.category { Category::Management => "Management", Category::Data => "Data" },
        "errorCode": d.error_code,
        "errorMessage": d.error_message,
        "awsRegion": d.aws_region,
        "requestID": d.request_id,
        "requestParameters": d.request_parameters,
        "responseElements": d.response_elements,
        "resources": d.resources.iter().map(|r| serde_json::json!({"ARN": r.arn, "type": r.resource_type, "accountId": r.account_id})).collect::<Vec<_>>(),
        "additionalEventData": d.additional_event_data,
    })
}

#[test]
fn every_fixture_describes_as_cloudtrail_records_it() {
    let mut failures = Vec::new();
    for (path, fx) in fixtures() {
        let exchanges = fx["exchanges"].as_array().expect("exchanges");
        let last = owned(exchanges.last().expect("an exchange"));
        let d = run(&last);
        let got = described_json(&d);
        if std::env::var_os("AWSPROTO_DUMP").is_some() {
            println!("{}\n{}", path.display(), serde_json::to_string(&got).unwrap_or_default());
        }
        for (k, want) in fx["expect"].as_object().expect("expect") {
            let ok = match (k.as_str(), want) {
                (_, Value::Null) => got[k].is_null(),
                ("requestParameters" | "responseElements" | "resources", _) => subset(want, &got[k]),
                _ => &got[k] == want,
            };
            if !ok {
                failures.push(format!("{}: {k}: want {want}, got {}", path.display(), got[k]));
            }
        }
        // Every recorded call is signed by John in us-east-1 and carries the upstream's request id.
        if d.access_key_id.as_deref() != Some("AKIAJOHNEXAMPLE00001") || d.aws_region.as_deref() != Some("us-east-1") {
            failures.push(format!("{}: identity/region {:?} {:?}", path.display(), d.access_key_id, d.aws_region));
        }
        if d.request_id.is_none() {
            failures.push(format!("{}: no requestID", path.display()));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_multipart_upload_is_create_parts_and_complete_as_data_events() {
    let (_, fx) =
        fixtures().into_iter().find(|(p, _)| p.to_string_lossy().contains("s3-cp-multipart")).expect("fixture");
    let names: Vec<(String, Category, bool)> = fx["exchanges"]
        .as_array()
        .expect("exchanges")
        .iter()
        .map(|x| {
            let d = run(&owned(x));
            (d.event_name, d.category, d.read_only)
        })
        .collect();
    assert_eq!(names.first().map(|n| n.0.as_str()), Some("CreateMultipartUpload"));
    assert_eq!(names.last().map(|n| n.0.as_str()), Some("CompleteMultipartUpload"));
    assert!(names[1..names.len() - 1].iter().all(|n| n.0 == "UploadPart"), "{names:?}");
    assert!(names.iter().all(|n| n.1 == Category::Data && !n.2), "{names:?}");
    // UploadPart's bytes in are the part's size, from Content-Length (the capture is capped).
    let first_part = fx["exchanges"]
        .as_array()
        .expect("exchanges")
        .iter()
        .find(|x| x["request"]["query"].as_str().is_some_and(|q| q.contains("partNumber=1")))
        .expect("part 1");
    let part = owned(first_part);
    let d = run(&part);
    let bytes_in = d.additional_event_data.as_ref().and_then(|a| a["bytesTransferredIn"].as_u64());
    assert_eq!(bytes_in, Some(8 * 1024 * 1024));
    let rp = d.request_parameters.expect("requestParameters");
    assert!(rp["partNumber"] == "1" && rp["uploadId"].is_string(), "{rp}");
}

/// The JSON type skeleton of a value, for shape comparison: scalars compare equal to scalars.
fn compatible(ours: &Value, real: &Value, at: &str, out: &mut Vec<String>) {
    match (ours, real) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if let Some(rv) = b.get(k) {
                    compatible(v, rv, &format!("{at}.{k}"), out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                compatible(x, y, &format!("{at}[0]"), out);
            }
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_))
            if !ours.is_null() && !real.is_null() =>
        {
            out.push(format!("{at}: ours {ours} vs real {real}"));
        }
        _ => {}
    }
}

#[test]
fn shapes_match_real_cloudtrail_records_of_the_same_api() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail-samples");
    let Ok(text) = std::fs::read_to_string(data.join("awsdocs-examples.ndjson")) else {
        eprintln!("no ../shared/data here: the comparison with real records is skipped");
        return;
    };
    let panther = std::fs::read_to_string(data.join("panther-tests.ndjson")).unwrap_or_default();
    let real: Vec<Value> = text.lines().chain(panther.lines()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut compared = 0;
    let mut problems = Vec::new();
    for (path, fx) in fixtures() {
        let d = run(&owned(fx["exchanges"].as_array().expect("exchanges").last().expect("one")));
        let ours = described_json(&d);
        let same: Vec<&Value> = real
            .iter()
            .filter(|r| r["eventSource"] == ours["eventSource"] && r["eventName"] == ours["eventName"])
            .collect();
        // Real records of one API disagree now and then (a fleet-launched RunInstances writes
        // `instanceType: {"value":…}`): ours must agree with at least one record sharing a member with it.
        for field in ["requestParameters", "responseElements"] {
            let Some(o) = ours[field].as_object() else { continue };
            let mut tried = Vec::new();
            for r in &same {
                let Some(rr) = r[field].as_object() else { continue };
                if o.keys().any(|k| rr.contains_key(k)) {
                    let mut p = Vec::new();
                    compatible(&ours[field], &r[field], &format!("{} {field}", path.display()), &mut p);
                    tried.push(p);
                }
            }
            if !tried.is_empty() {
                compared += 1;
                if tried.iter().all(|p| !p.is_empty()) {
                    problems.extend(tried.concat());
                }
            }
        }
        for r in &same {
            if r["readOnly"].is_boolean() && r["readOnly"] != ours["readOnly"] {
                problems.push(format!("{}: readOnly ours {} real {}", path.display(), ours["readOnly"], r["readOnly"]));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(compared >= 8, "only {compared} comparisons with real records");
}
