//! Black-box tests with a Smithy-generated SDK: the real AWS SDK for JavaScript v3 (`@aws-sdk/client-cloudtrail`
//! from npm, installed into tests/sdk-js by scripts/test.sh) drives the real binary on port 0 through
//! tests/sdk-js/driver.mjs. It sends `X-Amz-Target: CloudTrail_20131101.<Op>` (botocore sends the long form),
//! fractional epoch seconds, and parses answers into Dates, Uint8Arrays and exception classes of its own.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Value, json};

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-js")
}

/// The SDK driver (tests/sdk-js/driver.mjs) running in node, signed in as one principal of a server.
struct Sdk {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: tempfile::NamedTempFile,
}

impl Sdk {
    fn start(server: &Server, key: &str, secret: &str) -> Sdk {
        let dir = sdk_dir();
        assert!(
            dir.join("node_modules/@aws-sdk/client-cloudtrail").is_dir(),
            "the AWS SDK for JavaScript is not installed in {}: run scripts/test.sh (it runs `npm ci` there)",
            dir.display()
        );
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new("node");
        cmd.arg("driver.mjs")
            .current_dir(&dir)
            .env("OPENTRAIL_ENDPOINT", &server.endpoint)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_CLOUDTRAIL")
            .env_remove("AWS_ENDPOINT_URL_CLOUDTRAIL_DATA")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.reopen().unwrap()));
        let mut child = cmd.spawn().expect("run node (node 20 and npm are needed for these tests)");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Sdk { child, stdin, stdout, stderr }
    }

    /// One request to the driver; its JSON answer.
    fn request(&mut self, req: &Value) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{req}").and_then(|()| stdin.flush()).unwrap_or_else(|e| self.died(&format!("write: {e}")));
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver answer ({e}): {line}")),
            other => self.died(&format!("read: {other:?}")),
        }
    }

    fn died(&mut self, what: &str) -> ! {
        let status = self.child.wait();
        let stderr = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
        panic!("the SDK driver stopped ({what}, {status:?}):\n{stderr}")
    }

    /// The whole answer to a CloudTrail command: `output` and `metadata`, or `error`.
    fn send(&mut self, command: &str, input: Value) -> Value {
        self.request(&json!({"command": command, "input": input}))
    }

    /// A CloudTrail command that must succeed; its output.
    fn call(&mut self, command: &str, input: Value) -> Value {
        let answer = self.send(command, input);
        assert!(answer.get("error").is_none(), "{command} failed: {answer}");
        answer["output"].clone()
    }

    /// A CloudTrail command that must fail; the error as the SDK raised it.
    fn fails(&mut self, command: &str, input: Value) -> Value {
        let answer = self.send(command, input);
        assert!(answer.get("error").is_some(), "{command} should have failed: {answer}");
        answer["error"].clone()
    }

    /// Every page the SDK's `paginate<Op>` yields.
    fn paginate(&mut self, op: &str, page_size: Option<u32>, input: Value) -> Vec<Value> {
        let answer = self.request(&json!({"paginate": op, "pageSize": page_size, "input": input}));
        assert!(answer.get("error").is_none(), "paginate{op} failed: {answer}");
        answer["pages"].as_array().unwrap().clone()
    }

    /// The whole answer to a cloudtrail-data command.
    fn data(&mut self, command: &str, input: Value) -> Value {
        self.request(&json!({"client": "cloudtrail-data", "command": command, "input": input}))
    }
}

impl Drop for Sdk {
    fn drop(&mut self) {
        // End of input ends the driver; kill it only if it does not.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin(s: &Server) -> Sdk {
    Sdk::start(s, ADMIN_KEY, ADMIN_SECRET)
}

/// A Date as the driver tags it.
fn date(iso: &str) -> Value {
    json!({"$date": iso})
}

fn date_millis(v: &Value) -> i64 {
    let iso = v["$date"].as_str().unwrap_or_else(|| panic!("not a Date: {v}"));
    chrono::DateTime::parse_from_rfc3339(iso).unwrap().timestamp_millis()
}

fn trail_arn(name: &str) -> String {
    format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{name}")
}

/// `n` IAM calls by user `sdkjs`, one a minute from 2020-03-01T00:00:00Z; id `sdk-007` is the eighth.
fn minute_events(n: usize) -> Vec<(String, String)> {
    let t0 = chrono::DateTime::parse_from_rfc3339("2020-03-01T00:00:00Z").unwrap();
    (0..n)
        .map(|i| {
            let t = t0 + chrono::Duration::minutes(i as i64);
            (format!("sdk-{i:03}"), t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        })
        .collect()
}

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["EventId"].as_str().unwrap().to_string()).collect()
}

#[test]
fn lookup_events_paginator_walks_every_page_newest_first_without_duplicates() {
    let s = Server::start();
    let mine = minute_events(120);
    let mut ndjson: String = mine.iter().map(|(id, t)| api_call(id, t, "GetUser", "sdkjs") + "\n").collect();
    ndjson += &(api_call("someone-else", "2020-03-01T00:30:30Z", "GetUser", "other") + "\n");
    s.ingest(&ndjson);
    s.wait_caught_up();
    let mut sdk = admin(&s);
    let newest_first: Vec<String> = mine.iter().rev().map(|(id, _)| id.clone()).collect();
    let by_user = json!({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "sdkjs"}]});

    // The default page size is 50: three pages, a NextToken on all but the last.
    let pages = sdk.paginate("LookupEvents", None, by_user.clone());
    let sizes: Vec<usize> = pages.iter().map(|p| p["Events"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [50, 50, 20]);
    for (i, page) in pages.iter().enumerate() {
        let last = i == pages.len() - 1;
        let token = page.get("NextToken").and_then(Value::as_str);
        assert_eq!(token.is_some_and(|t| !t.is_empty()), !last, "page {i}: NextToken {:?}", page.get("NextToken"));
    }
    let events: Vec<Value> = pages.iter().flat_map(|p| p["Events"].as_array().unwrap().clone()).collect();
    let got = ids(&events);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len(), "duplicates across pages: {got:?}");
    assert_eq!(got, newest_first);
    // EventTime arrives as epoch seconds; the SDK turns it into a Date.
    let times: Vec<i64> = events.iter().map(|e| date_millis(&e["EventTime"])).collect();
    assert!(times.windows(2).all(|w| w[0] > w[1]), "not newest first: {times:?}");
    assert_eq!(events.last().unwrap()["EventTime"], date("2020-03-01T00:00:00.000Z"));
    let record: Value = serde_json::from_str(events[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(record["eventID"], "sdk-119");
    assert_eq!(events[0]["Username"], "sdkjs");
    assert_eq!(events[0]["ReadOnly"], "true");

    // The paginator's pageSize becomes MaxResults.
    let pages = sdk.paginate("LookupEvents", Some(7), by_user.clone());
    assert_eq!(pages.len(), 18, "120 events in pages of 7");
    assert!(pages[..17].iter().all(|p| p["Events"].as_array().unwrap().len() == 7));
    let events: Vec<Value> = pages.iter().flat_map(|p| p["Events"].as_array().unwrap().clone()).collect();
    assert_eq!(ids(&events), newest_first);

    // The SDK sends Dates as fractional epoch seconds (botocore truncates to whole ones); both bounds are
    // inclusive, and the half second must not be dropped.
    let window = |sdk: &mut Sdk, start: &str, end: &str| {
        let mut input = by_user.clone();
        input["StartTime"] = date(start);
        input["EndTime"] = date(end);
        ids(sdk.call("LookupEvents", input)["Events"].as_array().unwrap())
    };
    assert_eq!(
        window(&mut sdk, "2020-03-01T00:09:59.500Z", "2020-03-01T00:12:00.500Z"),
        ["sdk-012", "sdk-011", "sdk-010"]
    );
    assert_eq!(window(&mut sdk, "2020-03-01T00:10:00.500Z", "2020-03-01T00:11:59.500Z"), ["sdk-011"]);

    // Range checks happen on the server: the SDK validates nothing.
    assert_eq!(sdk.fails("LookupEvents", json!({"MaxResults": 51}))["name"], "InvalidMaxResultsException");
    let backwards = json!({"StartTime": date("2020-03-02T00:00:00Z"), "EndTime": date("2020-03-01T00:00:00Z")});
    assert_eq!(sdk.fails("LookupEvents", backwards)["name"], "InvalidTimeRangeException");
    s.assert_no_errors_logged();
}

#[test]
fn trail_lifecycle_round_trips_through_the_sdk_commands() {
    let s = Server::start();
    let mut sdk = admin(&s);
    let name = "sdk-trail";
    let arn = trail_arn(name);

    let created = sdk.call(
        "CreateTrail",
        json!({"Name": name, "S3BucketName": "ctbucket", "S3KeyPrefix": "logs", "EnableLogFileValidation": true,
               "TagsList": [{"Key": "team", "Value": "security"}]}),
    );
    assert_eq!(created["TrailARN"], arn);
    assert_eq!(created["S3KeyPrefix"], "logs");
    assert_eq!(created["LogFileValidationEnabled"], true);
    assert_eq!(created["IncludeGlobalServiceEvents"], true);
    let again = sdk.fails("CreateTrail", json!({"Name": name, "S3BucketName": "ctbucket"}));
    assert_eq!(again["name"], "TrailAlreadyExistsException");
    assert_eq!(again["modeled"], true, "{again}");
    let bad = sdk.fails("CreateTrail", json!({"Name": "my--trail", "S3BucketName": "ctbucket"}));
    assert_eq!(bad["name"], "InvalidTrailNameException");

    let trail = sdk.call("GetTrail", json!({"Name": name}))["Trail"].clone();
    assert_eq!(trail["TrailARN"], arn);
    assert_eq!(trail["HomeRegion"], "us-east-1");
    assert_eq!(trail["HasCustomEventSelectors"], false);
    let described = sdk.call("DescribeTrails", json!({"trailNameList": [name, arn, "no-such-trail"]}));
    assert_eq!(described["trailList"], json!([trail]));
    let listed = sdk.call("ListTrails", json!({}));
    assert_eq!(listed["Trails"], json!([{"TrailARN": arn, "Name": name, "HomeRegion": "us-east-1"}]));

    let updated = sdk.call("UpdateTrail", json!({"Name": arn, "S3KeyPrefix": "audit", "IsMultiRegionTrail": true}));
    assert_eq!(updated["S3KeyPrefix"], "audit");
    assert_eq!(updated["IsMultiRegionTrail"], true);
    assert_eq!(updated["LogFileValidationEnabled"], true, "settings not named stay as they were");

    assert_eq!(sdk.call("GetTrailStatus", json!({"Name": name}))["IsLogging"], false);
    assert_eq!(sdk.call("StartLogging", json!({"Name": name})), json!({}));
    let started = sdk.call("GetTrailStatus", json!({"Name": name}));
    assert_eq!(started["IsLogging"], true);
    let start_ms = date_millis(&started["StartLoggingTime"]);
    assert!((start_ms / 1000 - now_secs()).abs() < 60, "{started}");
    assert!(started["TimeLoggingStarted"].as_str().is_some_and(|t| t.ends_with('Z')), "{started}");
    assert_eq!(sdk.call("StopLogging", json!({"Name": arn})), json!({}));
    let stopped = sdk.call("GetTrailStatus", json!({"Name": name}));
    assert_eq!(stopped["IsLogging"], false);
    assert!(date_millis(&stopped["StopLoggingTime"]) >= start_ms, "{stopped}");

    // Basic selectors, then advanced ones replacing them.
    let default = sdk.call("GetEventSelectors", json!({"TrailName": name}));
    assert_eq!(default["EventSelectors"][0]["ReadWriteType"], "All");
    let basic = json!([{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true,
                        "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::ctbucket/"]}],
                        "ExcludeManagementEventSources": ["kms.amazonaws.com"]}]);
    let put = sdk.call("PutEventSelectors", json!({"TrailName": name, "EventSelectors": basic}));
    assert_eq!(put["TrailARN"], arn);
    assert_eq!(put["EventSelectors"], basic);
    let got = sdk.call("GetEventSelectors", json!({"TrailName": arn}));
    assert_eq!(got["EventSelectors"], basic);
    assert!(got.get("AdvancedEventSelectors").is_none(), "{got}");
    assert_eq!(sdk.call("GetTrail", json!({"Name": name}))["Trail"]["HasCustomEventSelectors"], true);
    let advanced = json!([
        {"Name": "s3", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
            {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::ctbucket/"]}]},
        {"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}
    ]);
    let put = sdk.call("PutEventSelectors", json!({"TrailName": name, "AdvancedEventSelectors": advanced}));
    assert_eq!(put["AdvancedEventSelectors"], advanced);
    let got = sdk.call("GetEventSelectors", json!({"TrailName": name}));
    assert_eq!(got["AdvancedEventSelectors"], advanced);
    assert!(got.get("EventSelectors").is_none(), "advanced selectors replace basic ones: {got}");

    let tags = |sdk: &mut Sdk| sdk.call("ListTags", json!({"ResourceIdList": [arn]}))["ResourceTagList"].clone();
    assert_eq!(tags(&mut sdk), json!([{"ResourceId": arn, "TagsList": [{"Key": "team", "Value": "security"}]}]));
    assert_eq!(
        sdk.call("AddTags", json!({"ResourceId": arn, "TagsList": [{"Key": "env", "Value": "prod"}]})),
        json!({})
    );
    let both = tags(&mut sdk)[0]["TagsList"].clone();
    let mut keys: Vec<&str> = both.as_array().unwrap().iter().map(|t| t["Key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["env", "team"], "{both}");
    assert_eq!(sdk.call("RemoveTags", json!({"ResourceId": arn, "TagsList": [{"Key": "team"}]})), json!({}));
    assert_eq!(tags(&mut sdk)[0]["TagsList"], json!([{"Key": "env", "Value": "prod"}]));

    assert_eq!(sdk.call("DeleteTrail", json!({"Name": name})), json!({}));
    assert_eq!(sdk.fails("GetTrail", json!({"Name": name}))["name"], "TrailNotFoundException");
    assert_eq!(sdk.call("ListTrails", json!({}))["Trails"], json!([]));
    s.assert_no_errors_logged();
}

#[test]
fn service_errors_arrive_as_the_sdk_s_modeled_exception_classes() {
    let s = Server::start();
    let mut sdk = admin(&s);

    let answer = sdk.send("GetTrail", json!({"Name": "no-such-trail"}));
    let err = &answer["error"];
    assert_eq!(err["name"], "TrailNotFoundException", "{answer}");
    assert_eq!(err["modeled"], true, "an instance of the SDK's TrailNotFoundException class: {err}");
    assert_eq!(err["serviceException"], true, "{err}");
    assert_eq!(err["fault"], "client");
    assert!(err["message"].as_str().unwrap().contains("no-such-trail"), "{err}");
    assert_eq!(err["metadata"]["httpStatusCode"], 400);
    assert_eq!(err["metadata"]["attempts"], 1, "a client fault is not retried: {err}");
    let request_id = err["metadata"]["requestId"].as_str().expect("x-amzn-RequestId reaches $metadata.requestId");
    assert_eq!(request_id.len(), 36, "{request_id}");

    // On the wire: JSON 1.1 clients take the code from `__type` first (this SDK) or only (botocore), REST-JSON
    // clients from `x-amzn-errortype` first, so both must name the error; `x-amzn-RequestId` is the requestId.
    let target = |op: &str| {
        let r = s.signed(
            ADMIN_KEY,
            ADMIN_SECRET,
            "POST",
            "/",
            &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", op)],
            br#"{"Name":"no-such-trail"}"#,
        );
        (r.status, r.code(), r.header("x-amzn-errortype").map(str::to_string), r.header("x-amzn-requestid").is_some())
    };
    let not_found = (400, "TrailNotFoundException".to_string(), Some("TrailNotFoundException".to_string()), true);
    assert_eq!(target("CloudTrail_20131101.GetTrail"), not_found);
    assert_eq!(target("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.GetTrail"), not_found);
    // Only the service's own prefix, in either spelling, names an operation.
    for other in [
        "CloudTrail_20131101.NoSuchOperation",
        "GetTrail",
        "Other_20131101.GetTrail",
        "com.amazonaws.cloudtrail.v20131101.GetTrail",
    ] {
        assert_eq!(target(other).1, "UnknownOperationException", "{other}");
    }

    let err = sdk.fails("UpdateTrail", json!({"Name": "arn:aws:cloudtrail:us-east-1:123456789012:nottrail/x"}));
    assert_eq!(err["name"], "CloudTrailARNInvalidException", "{err}");
    let err = sdk.fails("GetChannel", json!({"Channel": "not-a-channel"}));
    assert_eq!(err["name"], "ChannelARNInvalidException", "{err}");
    assert_eq!(err["modeled"], true, "{err}");

    // A role without the permission: CloudTrail's modeled AccessDeniedException.
    let mut auditor = Sdk::start(&s, AUDITOR_KEY, AUDITOR_SECRET);
    let err = auditor.fails("CreateTrail", json!({"Name": "nope", "S3BucketName": "ctbucket"}));
    assert_eq!(err["name"], "AccessDeniedException", "{err}");
    assert_eq!(err["modeled"], true, "{err}");

    // Authentication failures are not in CloudTrail's model: the SDK still names them by `__type`.
    let mut stranger = Sdk::start(&s, "AKIAEXAMPLESTRANGER1", "no-such-secret-0000000000000000000000000");
    let err = stranger.fails("ListTrails", json!({}));
    assert_eq!(err["name"], "UnrecognizedClientException", "{err}");
    assert_eq!(err["modeled"], false, "{err}");
    assert_eq!(err["serviceException"], true, "{err}");
    assert_eq!(err["metadata"]["httpStatusCode"], 403, "{err}");
    let mut forger = Sdk::start(&s, ADMIN_KEY, "not-the-admin-secret-000000000000000000");
    let err = forger.fails("ListTrails", json!({}));
    assert_eq!(err["name"], "InvalidSignatureException", "{err}");

    // The SDK's GetTrail was audited under the request id it was given, with the SDK's user agent.
    let request_id = request_id.to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let audited = loop {
        let found = sdk.call(
            "LookupEvents",
            json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "GetTrail"}]}),
        );
        let records = found["Events"].as_array().unwrap().iter().map(|e| e["CloudTrailEvent"].as_str().unwrap());
        if let Some(r) =
            records.map(|r| serde_json::from_str::<Value>(r).unwrap()).find(|r| r["requestID"] == request_id)
        {
            break r;
        }
        assert!(Instant::now() < deadline, "the SDK's GetTrail ({request_id}) was not audited");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(audited["errorCode"], "TrailNotFoundException", "{audited}");
    let agent = audited["userAgent"].as_str().unwrap_or_default();
    assert!(agent.starts_with("aws-sdk-js/3.") && agent.contains("api/cloudtrail#"), "{audited}");
    s.assert_no_errors_logged();
}

#[test]
fn list_public_keys_value_is_decoded_to_the_der_bytes_on_the_wire() {
    let s = Server::start();
    let mut sdk = admin(&s);
    let wire = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "ListPublicKeys", &json!({})).json();
    let wire_key = &wire["PublicKeyList"][0];

    let keys = sdk.call("ListPublicKeys", json!({}))["PublicKeyList"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    let key = &keys[0];
    // The driver re-encodes the Uint8Array the SDK made of the base64 blob; a string would not be tagged.
    let bytes_b64 = key["Value"]["$bytes"].as_str().unwrap_or_else(|| panic!("Value is not a Uint8Array: {key}"));
    assert_eq!(bytes_b64, wire_key["Value"].as_str().unwrap());
    // DER SEQUENCE of a PKCS#1 RSA 2048 public key: 30 82 01 0a 02 82 01 01 00.
    assert!(bytes_b64.starts_with("MIIBCgKCAQEA"), "{bytes_b64}");
    assert_eq!(key["Fingerprint"], wire_key["Fingerprint"]);
    let start = date_millis(&key["ValidityStartTime"]);
    assert!(date_millis(&key["ValidityEndTime"]) > start + 9 * 365 * 86_400_000, "{key}");

    // Dates in, with the paginator: the key valid now is listed.
    let now = chrono::Utc::now();
    let window = json!({
        "StartTime": date(&(now - chrono::Duration::days(1)).to_rfc3339()),
        "EndTime": date(&now.to_rfc3339()),
    });
    let pages = sdk.paginate("ListPublicKeys", None, window);
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0]["PublicKeyList"], keys);
    s.assert_no_errors_logged();
}

#[test]
fn channels_round_trip_and_put_audit_events_from_the_sdk_lands_in_lookup() {
    let s = Server::start();
    let mut sdk = admin(&s);
    let eds = format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:eventdatastore/eds1");
    let destinations = json!([{"Type": "EVENT_DATA_STORE", "Location": eds}]);

    let created = sdk.call(
        "CreateChannel",
        json!({"Name": "orders-app", "Source": "Custom", "Destinations": destinations,
               "Tags": [{"Key": "team", "Value": "payments"}]}),
    );
    let arn = created["ChannelArn"].as_str().unwrap().to_string();
    assert!(arn.starts_with(&format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:channel/")), "{created}");
    assert_eq!(created["Name"], "orders-app");
    assert_eq!(created["Source"], "Custom");
    assert_eq!(created["Destinations"], destinations);
    let dup =
        sdk.fails("CreateChannel", json!({"Name": "orders-app", "Source": "Custom", "Destinations": destinations}));
    assert_eq!(dup["name"], "ChannelAlreadyExistsException", "{dup}");

    let got = sdk.call("GetChannel", json!({"Channel": arn}));
    assert_eq!(got["ChannelArn"], arn);
    assert_eq!(got["Name"], "orders-app");
    assert_eq!(got["Destinations"], destinations);
    let listed = sdk.call("ListChannels", json!({}));
    assert_eq!(listed["Channels"], json!([{"ChannelArn": arn, "Name": "orders-app"}]));
    let updated = sdk.call("UpdateChannel", json!({"Channel": arn, "Name": "orders-app-v2"}));
    assert_eq!(updated["Name"], "orders-app-v2");
    assert_eq!(sdk.call("GetChannel", json!({"Channel": arn}))["Name"], "orders-app-v2");

    // PutAuditEvents with the writer's key, over the cloudtrail-data REST-JSON protocol.
    let good = json!({
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": "alice", "details": {"team": "payments"}},
        "eventSource": "shop.example.com",
        "eventName": "PlaceOrder",
        "eventTime": "2024-05-01T10:00:00Z",
        "UID": "order-1",
        "recipientAccountId": ACCOUNT,
    })
    .to_string();
    let mut writer = Sdk::start(&s, WRITER_KEY, WRITER_SECRET);
    let answer = writer.data(
        "PutAuditEvents",
        json!({"channelArn": arn, "externalId": "shop-ext-1", "auditEvents": [
            {"id": "a1", "eventData": good, "eventDataChecksum": service::audit_events::checksum_of(&good)},
            {"id": "a2", "eventData": good.replace("order-1", "order-2"), "eventDataChecksum": "AAAA"},
        ]}),
    );
    let out = &answer["output"];
    assert_eq!(answer["metadata"]["httpStatusCode"], 200, "{answer}");
    assert_eq!(out["successful"].as_array().map(Vec::len), Some(1), "{answer}");
    assert_eq!(out["successful"][0]["id"], "a1");
    let event_id = out["successful"][0]["eventID"].as_str().unwrap().to_string();
    assert_eq!(out["failed"].as_array().map(Vec::len), Some(1), "{answer}");
    assert_eq!(out["failed"][0]["id"], "a2");
    assert_eq!(out["failed"][0]["errorCode"], "InvalidChecksum");

    let missing = format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:channel/00000000-0000-4000-8000-000000000000");
    let answer =
        writer.data("PutAuditEvents", json!({"channelArn": missing, "auditEvents": [{"id": "x", "eventData": good}]}));
    let err = &answer["error"];
    assert_eq!(err["name"], "ChannelNotFound", "{answer}");
    assert_eq!(err["modeled"], true, "{answer}");
    assert_eq!(err["metadata"]["httpStatusCode"], 404, "{answer}");
    let answer = writer.data(
        "PutAuditEvents",
        json!({"channelArn": arn, "auditEvents": [{"id": "d", "eventData": good}, {"id": "d", "eventData": good}]}),
    );
    assert_eq!(answer["error"]["name"], "DuplicatedAuditEventId", "{answer}");

    s.wait_caught_up();
    let found = sdk.call(
        "LookupEvents",
        json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "PlaceOrder"}]}),
    );
    assert_eq!(ids(found["Events"].as_array().unwrap()), [event_id.as_str()]);
    let status = sdk.call("GetChannel", json!({"Channel": arn}))["IngestionStatus"].clone();
    assert_eq!(status["LatestIngestionSuccessEventID"], json!(event_id));
    assert!(date_millis(&status["LatestIngestionSuccessTime"]) / 1000 >= now_secs() - 60, "{status}");

    assert_eq!(sdk.call("DeleteChannel", json!({"Channel": arn})), json!({}));
    let err = sdk.fails("GetChannel", json!({"Channel": arn}));
    assert_eq!(err["name"], "ChannelNotFoundException", "{err}");
    assert_eq!(sdk.call("ListChannels", json!({}))["Channels"], json!([]));
    s.assert_no_errors_logged();
}
