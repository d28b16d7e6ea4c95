//! Behaviour of the generator as its users see it: determinism, validity, time order and realism.

use std::collections::{BTreeMap, BTreeSet};

use eventgen::{GenOptions, generate, write_ndjson};
use serde_json::Value;

fn opts(events: u64, seed: u64) -> GenOptions {
    GenOptions { events, seed, ..GenOptions::default() }
}

fn records(events: u64, seed: u64) -> Vec<String> {
    generate(&opts(events, seed)).collect()
}

fn parsed(events: u64, seed: u64) -> Vec<Value> {
    records(events, seed).iter().map(|r| serde_json::from_str(r).expect("valid JSON")).collect()
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seed_differs() {
    let a = records(3_000, 7);
    let b = records(3_000, 7);
    assert_eq!(a, b);
    let c = records(3_000, 8);
    assert_ne!(a, c);
    let mut nd = Vec::new();
    let n = write_ndjson(&opts(3_000, 7), &mut nd).unwrap();
    assert_eq!(n, 3_000);
    let joined: String = a.iter().flat_map(|r| [r.as_str(), "\n"]).collect();
    assert_eq!(String::from_utf8(nd).unwrap(), joined);
}

#[test]
fn every_record_parses_as_a_cloudtrail_record_with_its_event_id() {
    let mut ids = BTreeSet::new();
    for (i, r) in records(20_000, 3).iter().enumerate() {
        assert!(!r.contains('\n'), "record {i} has a newline");
        let rec = model::Record::parse(r.as_bytes(), || panic!("record {i} has no eventID: {r}"))
            .unwrap_or_else(|e| panic!("record {i} rejected: {e}: {r}"));
        let v: Value = serde_json::from_str(r).unwrap();
        assert_eq!(rec.fields.event_id, v["eventID"].as_str().unwrap());
        assert_eq!(rec.fields.event_id.len(), 36);
        assert_eq!(&rec.fields.event_id[14..15], "4", "UUID v4");
        assert!(ids.insert(rec.fields.event_id.clone()), "duplicate eventID");
    }
}

#[test]
fn times_are_sorted_and_inside_the_span() {
    let o = GenOptions {
        events: 20_000,
        seed: 5,
        start: model::EventTime::parse("2026-03-01T12:00:00Z").unwrap(),
        span_ms: 3_600_000,
    };
    let mut last = i64::MIN;
    for r in generate(&o) {
        let v: Value = serde_json::from_str(&r).unwrap();
        let text = v["eventTime"].as_str().unwrap();
        assert_eq!(text.len(), 20, "{text}");
        assert!(text.ends_with('Z'));
        let t = model::EventTime::parse(text).unwrap().millis();
        assert!(t >= o.start.millis() && t < o.start.millis() + o.span_ms, "{text} outside the span");
        assert!(t >= last, "{text} before the previous record");
        last = t;
    }
    // Spread over the whole window, not bunched at the start.
    assert!(last >= o.start.millis() + o.span_ms - 60_000);
}

#[test]
fn average_record_is_between_one_and_two_kilobytes() {
    let rs = records(20_000, 11);
    let avg = rs.iter().map(String::len).sum::<usize>() / rs.len();
    assert!((1_000..=2_000).contains(&avg), "average {avg} bytes");
}

#[test]
fn error_rate_is_between_two_and_five_percent_with_null_responses() {
    let vs = parsed(20_000, 13);
    let errors: Vec<&Value> = vs.iter().filter(|v| v.get("errorCode").is_some()).collect();
    let rate = errors.len() as f64 / vs.len() as f64;
    assert!((0.02..=0.05).contains(&rate), "error rate {rate}");
    for e in &errors {
        assert!(e["responseElements"].is_null(), "{e}");
        assert!(e["errorMessage"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let codes: BTreeSet<&str> = errors.iter().map(|e| e["errorCode"].as_str().unwrap()).collect();
    for code in [
        "AccessDenied",
        "Client.UnauthorizedOperation",
        "ThrottlingException",
        "NoSuchEntityException",
        "ResourceNotFoundException",
        "ValidationException",
    ] {
        assert!(codes.contains(code), "no {code} in {codes:?}");
    }
}

#[test]
fn fifty_thousand_events_cover_many_services_and_api_names() {
    let vs = parsed(50_000, 17);
    let sources: BTreeSet<&str> = vs.iter().map(|v| v["eventSource"].as_str().unwrap()).collect();
    let names: BTreeSet<&str> = vs.iter().map(|v| v["eventName"].as_str().unwrap()).collect();
    assert!(sources.len() >= 25, "{} sources: {sources:?}", sources.len());
    assert!(names.len() >= 250, "{} names", names.len());
    for s in [
        "ec2.amazonaws.com",
        "s3.amazonaws.com",
        "iam.amazonaws.com",
        "sts.amazonaws.com",
        "monitoring.amazonaws.com",
        "signin.amazonaws.com",
    ] {
        assert!(sources.contains(s), "no {s}");
    }
}

#[test]
fn api_mix_is_skewed() {
    let vs = parsed(50_000, 19);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &vs {
        *counts.entry(v["eventName"].as_str().unwrap()).or_default() += 1;
    }
    let mut sorted: Vec<usize> = counts.values().copied().collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let top10: usize = sorted.iter().take(10).sum();
    // The ten hottest APIs carry a large share; the tail is long.
    assert!(top10 * 100 / vs.len() >= 35, "top 10 = {top10}");
    assert!(sorted[0] >= 20 * sorted[sorted.len() / 2], "{sorted:?}");
}

#[test]
fn all_four_identity_types_appear_and_assumed_roles_carry_their_session_issuer() {
    let vs = parsed(20_000, 23);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for v in &vs {
        let id = &v["userIdentity"];
        let kind = id["type"].as_str().unwrap_or("(none)").to_string();
        match kind.as_str() {
            "AssumedRole" => {
                let issuer = &id["sessionContext"]["sessionIssuer"];
                assert_eq!(issuer["type"], "Role", "{v}");
                assert!(issuer["arn"].as_str().unwrap().starts_with("arn:aws:iam::"), "{v}");
                let created = id["sessionContext"]["attributes"]["creationDate"].as_str().unwrap();
                assert!(created <= v["eventTime"].as_str().unwrap(), "{v}");
                // Console sign-ins carry no access key; every API call carries the session's ASIA key.
                let key = id["accessKeyId"].as_str().unwrap();
                assert!(key.starts_with("ASIA") || (key.is_empty() && v["eventType"] == "AwsConsoleSignIn"), "{v}");
                assert!(id["arn"].as_str().unwrap().starts_with("arn:aws:sts::"));
            }
            "IAMUser" => {
                let key = id["accessKeyId"].as_str().unwrap();
                assert!(key.is_empty() || (key.starts_with("AKIA") && key.len() == 20), "{v}");
                assert!(id["principalId"].as_str().unwrap().starts_with("AIDA"));
                assert!(id["userName"].as_str().is_some());
            }
            "AWSService" => {
                let by = id["invokedBy"].as_str().unwrap();
                assert!(by.ends_with(".amazonaws.com"));
                assert_eq!(v["sourceIPAddress"], by);
                assert!(id.get("accessKeyId").is_none());
                assert!(v.get("tlsDetails").is_none());
            }
            "Root" => assert!(id["arn"].as_str().unwrap().ends_with(":root")),
            _ => {}
        }
        *kinds.entry(kind).or_default() += 1;
    }
    for k in ["IAMUser", "AssumedRole", "AWSService", "Root"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k}: {kinds:?}");
    }
    assert!(kinds["Root"] < kinds["IAMUser"] / 10, "root is rare: {kinds:?}");
}

#[test]
fn read_only_follows_the_api_name_and_read_only_calls_return_nothing() {
    for v in parsed(20_000, 29) {
        let name = v["eventName"].as_str().unwrap();
        let ro = v["readOnly"].as_bool().unwrap();
        if ["Describe", "List", "Get", "Head"].iter().any(|p| name.starts_with(p)) && name != "GetSigninToken" {
            assert!(ro, "{name} must be read-only");
            // STS's credential-issuing calls are read-only yet answer with the (redacted) credentials.
            if v["eventSource"] != "sts.amazonaws.com" {
                assert!(v["responseElements"].is_null(), "{v}");
            }
        }
        if ["Create", "Delete", "Put", "Update", "Run", "Attach", "Authorize", "Terminate"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            assert!(!ro, "{name} must not be read-only");
        }
    }
}

#[test]
fn records_have_realistic_fields_and_shapes() {
    let vs = parsed(50_000, 31);
    let mut seen = BTreeSet::new();
    let mut data = 0;
    let mut agents = BTreeSet::new();
    let mut ips = BTreeSet::new();
    let mut regions = BTreeSet::new();
    for v in &vs {
        let name = v["eventName"].as_str().unwrap();
        let source = v["eventSource"].as_str().unwrap();
        let ok = v.get("errorCode").is_none();
        assert!(v["recipientAccountId"].as_str().unwrap().len() == 12);
        assert!(["1.08", "1.09", "1.10", "1.11"].contains(&v["eventVersion"].as_str().unwrap()));
        regions.insert(v["awsRegion"].as_str().unwrap().to_string());
        ips.insert(v["sourceIPAddress"].as_str().unwrap().to_string());
        let ua = v["userAgent"].as_str().unwrap();
        agents.insert(ua.split(['/', ' ']).next().unwrap().to_string());
        if v["eventCategory"] == "Data" {
            data += 1;
            assert_eq!(v["managementEvent"], false);
        } else {
            assert_eq!(v["eventCategory"], "Management");
        }
        if let Some(tls) = v.get("tlsDetails") {
            assert!(tls["clientProvidedHostHeader"].as_str().unwrap().contains(".amazon"), "{tls}");
        }
        match (source, name) {
            ("ec2.amazonaws.com", "RunInstances") if ok => {
                assert!(
                    v["responseElements"]["instancesSet"]["items"][0]["instanceId"].as_str().unwrap().starts_with("i-")
                );
                seen.insert(name);
            }
            ("iam.amazonaws.com", "CreateUser") if ok => {
                let user = &v["responseElements"]["user"];
                assert_eq!(user["userName"], v["requestParameters"]["userName"]);
                for k in ["userId", "arn", "createDate"] {
                    assert!(user[k].is_string(), "{v}");
                }
                seen.insert(name);
            }
            ("sts.amazonaws.com", "AssumeRole") if ok => {
                let r = &v["responseElements"];
                assert!(r["credentials"]["accessKeyId"].as_str().unwrap().starts_with("ASIA"));
                assert!(r["assumedRoleUser"]["arn"].as_str().unwrap().contains(":assumed-role/"));
                assert_eq!(v["resources"][0]["type"], "AWS::IAM::Role");
                seen.insert(name);
            }
            ("s3.amazonaws.com", "PutObject") => {
                assert!(v["requestParameters"]["bucketName"].is_string() && v["requestParameters"]["key"].is_string());
                assert_eq!(v["resources"][0]["type"], "AWS::S3::Object");
                assert_eq!(v["resources"][1]["type"], "AWS::S3::Bucket");
                seen.insert(name);
            }
            ("kms.amazonaws.com", "Decrypt") => {
                assert_eq!(v["resources"][0]["type"], "AWS::KMS::Key");
                seen.insert(name);
            }
            ("signin.amazonaws.com", "ConsoleLogin") => {
                assert_eq!(v["eventType"], "AwsConsoleSignIn");
                assert!(v["userAgent"].as_str().unwrap().starts_with("Mozilla/5.0"));
                seen.insert(name);
            }
            (_, "AuthorizeSecurityGroupIngress") if ok => {
                assert!(v["requestParameters"]["ipPermissions"]["items"][0]["ipRanges"].is_object());
                seen.insert(name);
            }
            _ => {}
        }
        if v.get("sessionCredentialFromConsole").is_some() {
            assert_eq!(v["sessionCredentialFromConsole"], "true");
            seen.insert("console");
        }
    }
    for k in [
        "RunInstances",
        "CreateUser",
        "AssumeRole",
        "PutObject",
        "Decrypt",
        "ConsoleLogin",
        "AuthorizeSecurityGroupIngress",
        "console",
    ] {
        assert!(seen.contains(k), "never saw a well-formed {k}");
    }
    let data_pct = data as f64 * 100.0 / vs.len() as f64;
    assert!((1.0..=8.0).contains(&data_pct), "data events {data_pct}%");
    for a in
        ["aws-cli", "Boto3", "APN", "aws-sdk-java", "aws-sdk-go", "AWS Internal", "console.amazonaws.com", "Mozilla"]
    {
        assert!(agents.iter().any(|x| a.starts_with(x.as_str())), "no {a} user agent in {agents:?}");
    }
    assert!(ips.len() >= 1_000, "{} source IPs", ips.len());
    assert_eq!(regions.len(), 8, "{regions:?}");
}
