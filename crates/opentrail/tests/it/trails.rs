//! Black-box tests of the trails control plane: the real binary driven by the real aws CLI v1 and boto3.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const TRAIL: &str = "trail-one";

fn arn(name: &str) -> String {
    format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/{name}")
}

/// A signed call that must succeed (cheap: no CLI start-up).
fn call(s: &Server, op: &str, params: Value) -> Value {
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, op, &params);
    assert_eq!(r.status, 200, "{op}: {}", r.text());
    r.json()
}

fn create_trail(s: &Server, name: &str) {
    call(s, "CreateTrail", json!({"Name": name, "S3BucketName": "ctbucket"}));
}

/// Everything observable about the server's trails, to show that a failed call changed nothing.
fn snapshot(s: &Server) -> Value {
    let trails = call(s, "DescribeTrails", json!({}))["trailList"].clone();
    let mut per_trail = Vec::new();
    for t in trails.as_array().unwrap() {
        let name = t["Name"].as_str().unwrap();
        per_trail.push(json!({
            "selectors": call(s, "GetEventSelectors", json!({"TrailName": name})),
            "status": call(s, "GetTrailStatus", json!({"Name": name})),
            "tags": call(s, "ListTags", json!({"ResourceIdList": [t["TrailARN"]]})),
        }));
    }
    json!({"trails": trails, "details": per_trail, "list": call(s, "ListTrails", json!({}))})
}

#[test]
fn trail_lifecycle_round_trips_through_the_aws_cli_and_survives_a_restart() {
    let s = Server::start();
    let created = ok(admin(
        &s,
        &[
            "create-trail",
            "--name",
            TRAIL,
            "--s3-bucket-name",
            "ctbucket",
            "--s3-key-prefix",
            "logs",
            "--enable-log-file-validation",
            "--tags-list",
            "Key=team,Value=security",
        ],
    ));
    assert_eq!(created["TrailARN"], arn(TRAIL));
    assert_eq!(created["S3KeyPrefix"], "logs");
    assert_eq!(created["LogFileValidationEnabled"], true);
    assert_eq!(created["IncludeGlobalServiceEvents"], true);

    let trail = ok(admin(&s, &["get-trail", "--name", TRAIL]))["Trail"].clone();
    assert_eq!(trail["HomeRegion"], "us-east-1");
    assert_eq!(trail["HasCustomEventSelectors"], false);
    assert_eq!(trail["HasInsightSelectors"], false);
    assert_eq!(trail["IsOrganizationTrail"], false);

    // By name and by ARN alike; an unknown name is left out, as CloudTrail does.
    let described = ok(admin(&s, &["describe-trails", "--trail-name-list", TRAIL, &arn(TRAIL), "no-such-trail"]));
    assert_eq!(described["trailList"].as_array().unwrap().len(), 1, "{described}");
    assert_eq!(described["trailList"][0], trail);

    let updated =
        ok(admin(&s, &["update-trail", "--name", &arn(TRAIL), "--s3-key-prefix", "audit", "--is-multi-region-trail"]));
    assert_eq!(updated["S3KeyPrefix"], "audit");
    assert_eq!(updated["IsMultiRegionTrail"], true);
    assert_eq!(updated["LogFileValidationEnabled"], true, "settings not named stay as they were");

    let before = ok(admin(&s, &["get-trail-status", "--name", TRAIL]));
    assert_eq!(before["IsLogging"], false);
    assert!(before.get("StartLoggingTime").is_none());
    ok(admin(&s, &["start-logging", "--name", TRAIL]));
    let started = ok(admin(&s, &["get-trail-status", "--name", TRAIL]));
    assert_eq!(started["IsLogging"], true);
    let start_time = started["StartLoggingTime"].as_f64().expect("StartLoggingTime is an epoch number");
    assert!((start_time - now_secs() as f64).abs() < 60.0, "{started}");
    assert!(started["TimeLoggingStarted"].as_str().unwrap().ends_with('Z'));
    assert_eq!(started["LatestDeliveryAttemptSucceeded"], "");
    ok(admin(&s, &["stop-logging", "--name", TRAIL]));
    let stopped = ok(admin(&s, &["get-trail-status", "--name", TRAIL]));
    assert_eq!(stopped["IsLogging"], false);
    assert!(stopped["StopLoggingTime"].as_f64().unwrap() >= start_time);
    assert_eq!(stopped["StartLoggingTime"], started["StartLoggingTime"]);

    // A new trail has the default selector: all management events.
    let default = ok(admin(&s, &["get-event-selectors", "--trail-name", TRAIL]));
    assert_eq!(default["EventSelectors"][0]["ReadWriteType"], "All");
    assert_eq!(default["EventSelectors"][0]["IncludeManagementEvents"], true);

    // Advanced selectors replace basic ones, and the other way round.
    let advanced = r#"[{"Name":"s3","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::ctbucket/"]}]},{"Name":"mgmt","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]"#;
    ok(admin(&s, &["put-event-selectors", "--trail-name", TRAIL, "--advanced-event-selectors", advanced]));
    let got = ok(admin(&s, &["get-event-selectors", "--trail-name", TRAIL]));
    assert_eq!(got["TrailARN"], arn(TRAIL));
    assert_eq!(got["AdvancedEventSelectors"], serde_json::from_str::<Value>(advanced).unwrap());
    assert!(got.get("EventSelectors").is_none(), "{got}");

    let basic = r#"[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::ctbucket/"]}],"ExcludeManagementEventSources":["kms.amazonaws.com"]}]"#;
    ok(admin(&s, &["put-event-selectors", "--trail-name", TRAIL, "--event-selectors", basic]));
    let got = ok(admin(&s, &["get-event-selectors", "--trail-name", &arn(TRAIL)]));
    assert_eq!(got["EventSelectors"], serde_json::from_str::<Value>(basic).unwrap());
    assert!(got.get("AdvancedEventSelectors").is_none(), "{got}");

    let insights = r#"[{"InsightType":"ApiCallRateInsight"},{"InsightType":"ApiErrorRateInsight","EventCategories":["Management"]}]"#;
    let put = ok(admin(&s, &["put-insight-selectors", "--trail-name", TRAIL, "--insight-selectors", insights]));
    assert_eq!(put["InsightSelectors"], serde_json::from_str::<Value>(insights).unwrap());
    let got = ok(admin(&s, &["get-insight-selectors", "--trail-name", TRAIL]));
    assert_eq!(got["InsightSelectors"], put["InsightSelectors"]);

    ok(admin(&s, &["add-tags", "--resource-id", &arn(TRAIL), "--tags-list", "Key=env,Value=prod", "Key=novalue"]));
    ok(admin(&s, &["remove-tags", "--resource-id", &arn(TRAIL), "--tags-list", "Key=team"]));
    let tags = ok(admin(&s, &["list-tags", "--resource-id-list", &arn(TRAIL)]));
    assert_eq!(
        tags["ResourceTagList"],
        json!([{"ResourceId": arn(TRAIL), "TagsList": [{"Key": "env", "Value": "prod"}, {"Key": "novalue"}]}])
    );

    let trail = ok(admin(&s, &["get-trail", "--name", TRAIL]))["Trail"].clone();
    assert_eq!(trail["HasCustomEventSelectors"], true);
    assert_eq!(trail["HasInsightSelectors"], true);
    let listed = ok(admin(&s, &["list-trails"]));
    assert_eq!(listed["Trails"], json!([{"TrailARN": arn(TRAIL), "Name": TRAIL, "HomeRegion": "us-east-1"}]));

    // Restart on the same data dir: everything is still there (read back with boto3).
    let before_restart = snapshot(&s);
    let mut s = s;
    s.stop();
    let s2 = Server::spawn(&s.data_dir.clone(), s.config.as_deref(), "127.0.0.1:0");
    assert_eq!(snapshot(&s2), before_restart);
    let out = s2.python(
        ADMIN_KEY,
        ADMIN_SECRET,
        &format!(
            r#"
import boto3, os
c = boto3.client('cloudtrail', endpoint_url=os.environ['ENDPOINT'], aws_access_key_id=os.environ['KEY'], aws_secret_access_key=os.environ['SECRET'])
t = c.get_trail(Name='{TRAIL}')['Trail']
st = c.get_trail_status(Name='{TRAIL}')
ins = c.get_insight_selectors(TrailName='{TRAIL}')['InsightSelectors']
print(t['S3KeyPrefix'], t['IsMultiRegionTrail'], st['IsLogging'], type(st['StopLoggingTime']).__name__, len(ins))
"#
        ),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "audit True False datetime 2");

    ok(admin(&s2, &["delete-trail", "--name", TRAIL]));
    fails(admin(&s2, &["get-trail", "--name", TRAIL]), "TrailNotFoundException");
    assert_eq!(ok(admin(&s2, &["list-trails"]))["Trails"], json!([]));
    s2.assert_no_errors_logged();
}

#[test]
fn list_trails_pages_with_next_token_through_the_cli_and_boto3() {
    let s = Server::start();
    let names: Vec<String> = (0..55).map(|i| format!("trail-{i:03}")).collect();
    for n in &names {
        create_trail(&s, n);
    }
    let first = call(&s, "ListTrails", json!({}));
    assert_eq!(first["Trails"].as_array().unwrap().len(), 50);
    let token = first["NextToken"].as_str().expect("a second page").to_string();
    let second = call(&s, "ListTrails", json!({"NextToken": token}));
    assert_eq!(second["Trails"].as_array().unwrap().len(), 5);
    assert!(second.get("NextToken").is_none());

    // The CLI follows NextToken by itself.
    let all = ok(admin(&s, &["list-trails"]));
    let got: Vec<&str> = all["Trails"].as_array().unwrap().iter().map(|t| t["Name"].as_str().unwrap()).collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());

    let out = s.python(
        ADMIN_KEY,
        ADMIN_SECRET,
        r#"
import boto3, os
c = boto3.client('cloudtrail', endpoint_url=os.environ['ENDPOINT'], aws_access_key_id=os.environ['KEY'], aws_secret_access_key=os.environ['SECRET'])
pages = list(c.get_paginator('list_trails').paginate())
print(len(pages), sum(len(p['Trails']) for p in pages))
"#,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2 55");

    fails(admin(&s, &["list-trails", "--starting-token", "bm90LWEtdG9rZW4"]), "InvalidNextTokenException");
}

#[test]
fn every_error_names_the_aws_exception_and_changes_nothing() {
    let s = Server::start();
    create_trail(&s, TRAIL);
    call(&s, "AddTags", json!({"ResourceId": arn(TRAIL), "TagsList": [{"Key": "k", "Value": "v"}]}));
    call(&s, "PutEventSelectors", json!({"TrailName": TRAIL, "EventSelectors": [{"ReadWriteType": "ReadOnly"}]}));
    let before = snapshot(&s);

    let long_prefix = "p".repeat(201);
    let long_value = format!("Key=k2,Value={}", "v".repeat(257));
    let fifty_one: Vec<String> = (0..50).map(|i| format!("Key=t{i},Value=v")).collect();
    let six_selectors = format!("[{}]", [r#"{"ReadWriteType":"All"}"#; 6].join(","));
    let bad_arn = format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail");
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec!["create-trail", "--name", name, "--s3-bucket-name", "ctbucket"];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            v(&["get-trail", "--name", "nope-trail"]),
            "TrailNotFoundException",
            "Unknown trail: nope-trail for the user: 123456789012",
        ),
        (
            v(&["get-trail-status", "--name", &arn("nope-trail")]),
            "TrailNotFoundException",
            "Unknown trail: arn:aws:cloudtrail",
        ),
        (v(&["delete-trail", "--name", "nope-trail"]), "TrailNotFoundException", "nope-trail"),
        (v(&["start-logging", "--name", "nope-trail"]), "TrailNotFoundException", "nope-trail"),
        (v(&["get-trail", "--name", &bad_arn]), "CloudTrailARNInvalidException", "Name"),
        (create("a--b", &[]), "InvalidTrailNameException", "adjacent"),
        (create("192.168.5.4", &[]), "InvalidTrailNameException", "IP address"),
        (
            v(&["create-trail", "--name=-abc", "--s3-bucket-name", "ctbucket"]),
            "InvalidTrailNameException",
            "start with a letter or number",
        ),
        (create("ab", &[]), "InvalidTrailNameException", "3 to 128"),
        (create(TRAIL, &[]), "TrailAlreadyExistsException", TRAIL),
        (
            v(&["create-trail", "--name", "new-trail", "--s3-bucket-name", "Bad_Bucket"]),
            "InvalidS3BucketNameException",
            "S3BucketName",
        ),
        (create("new-trail", &["--s3-key-prefix", &long_prefix]), "InvalidS3PrefixException", "S3KeyPrefix"),
        (
            create("new-trail", &["--is-multi-region-trail", "--no-include-global-service-events"]),
            "InvalidParameterCombinationException",
            "IncludeGlobalServiceEvents",
        ),
        (
            v(&["update-trail", "--name", TRAIL, "--s3-bucket-name", "x"]),
            "InvalidS3BucketNameException",
            "S3BucketName",
        ),
        (
            v(&[
                "put-event-selectors",
                "--trail-name",
                TRAIL,
                "--event-selectors",
                r#"[{"ReadWriteType":"Sometimes"}]"#,
            ]),
            "InvalidEventSelectorsException",
            "EventSelectors[0].ReadWriteType",
        ),
        (
            v(&["put-event-selectors", "--trail-name", TRAIL, "--event-selectors", &six_selectors]),
            "InvalidEventSelectorsException",
            "EventSelectors",
        ),
        (
            v(&[
                "put-event-selectors",
                "--trail-name",
                TRAIL,
                "--event-selectors",
                r#"[{"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::ctbucket"]}]}]"#,
            ]),
            "InvalidEventSelectorsException",
            "EventSelectors[0].DataResources[0].Values[0]",
        ),
        (
            v(&[
                "put-event-selectors",
                "--trail-name",
                TRAIL,
                "--event-selectors",
                r#"[{"ExcludeManagementEventSources":["s3.amazonaws.com"]}]"#,
            ]),
            "InvalidEventSelectorsException",
            "ExcludeManagementEventSources[0]",
        ),
        (
            v(&[
                "put-event-selectors",
                "--trail-name",
                TRAIL,
                "--advanced-event-selectors",
                r#"[{"FieldSelectors":[{"Field":"readOnly","Equals":["true"]}]}]"#,
            ]),
            "InvalidEventSelectorsException",
            "eventCategory is required",
        ),
        (
            v(&[
                "put-event-selectors",
                "--trail-name",
                TRAIL,
                "--advanced-event-selectors",
                r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","StartsWith":["t"]}]}]"#,
            ]),
            "InvalidEventSelectorsException",
            "AdvancedEventSelectors[0].FieldSelectors[1].StartsWith",
        ),
        (
            v(&[
                "put-event-selectors",
                "--trail-name",
                TRAIL,
                "--advanced-event-selectors",
                r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventName","Equals":["GetObject"]}]}]"#,
            ]),
            "InvalidEventSelectorsException",
            "'eventName' cannot be used with eventCategory Management",
        ),
        (
            v(&[
                "put-insight-selectors",
                "--trail-name",
                TRAIL,
                "--insight-selectors",
                r#"[{"InsightType":"ApiBogusInsight"}]"#,
            ]),
            "InvalidInsightSelectorsException",
            "InsightSelectors[0].InsightType",
        ),
        (
            // The trail logs read-only management events: call-rate Insights need write events.
            v(&[
                "put-insight-selectors",
                "--trail-name",
                TRAIL,
                "--insight-selectors",
                r#"[{"InsightType":"ApiCallRateInsight"}]"#,
            ]),
            "InvalidInsightSelectorsException",
            "write management events",
        ),
        (
            v(&["get-insight-selectors", "--trail-name", TRAIL]),
            "InsightNotEnabledException",
            "does not have Insights enabled. Edit the trail settings to enable Insights, and then try the operation again.",
        ),
        (
            v(&["add-tags", "--resource-id", &arn("nope-trail"), "--tags-list", "Key=a,Value=b"]),
            "ResourceNotFoundException",
            "nope-trail",
        ),
        (
            v(&["add-tags", "--resource-id", TRAIL, "--tags-list", "Key=a,Value=b"]),
            "CloudTrailARNInvalidException",
            "ResourceId",
        ),
        (
            v(&["add-tags", "--resource-id", &arn(TRAIL), "--tags-list", "Key=aws:x,Value=b"]),
            "InvalidTagParameterException",
            "TagsList[0].Key",
        ),
        (
            v(&["add-tags", "--resource-id", &arn(TRAIL), "--tags-list", &long_value]),
            "InvalidTagParameterException",
            "TagsList[0].Value",
        ),
        (v(&["list-tags", "--resource-id-list", &arn("nope-trail")]), "ResourceNotFoundException", "nope-trail"),
        (
            v(&["remove-tags", "--resource-id", "arn:aws:s3:::bucket", "--tags-list", "Key=k"]),
            "CloudTrailARNInvalidException",
            "ResourceId",
        ),
    ];
    let mut too_many = v(&["add-tags", "--resource-id", &arn(TRAIL), "--tags-list"]);
    too_many.extend(fifty_one);
    cases.push((too_many, "TagsLimitExceededException", "51 tags"));

    // The CLI starts slowly; run the cases a few at a time.
    std::thread::scope(|scope| {
        for chunk in cases.chunks(cases.len().div_ceil(4)) {
            let s = &s;
            scope.spawn(move || {
                for (args, code, needle) in chunk {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let stderr = fails(admin(s, &args), code);
                    assert!(stderr.contains(needle), "{args:?}: message should contain {needle:?}:\n{stderr}");
                }
            });
        }
    });
    assert_eq!(snapshot(&s), before, "a failed call changed the trails");

    // Shapes the CLI refuses to send (empty operator lists) still get the model's error from the server.
    let r = s.cloudtrail(
        ADMIN_KEY,
        ADMIN_SECRET,
        "PutEventSelectors",
        &json!({"TrailName": TRAIL, "AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": []}]}]}),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidEventSelectorsException"), "{}", r.text());
    assert!(r.text().contains("FieldSelectors[0].Equals"), "{}", r.text());
    let r = s.cloudtrail(
        ADMIN_KEY,
        ADMIN_SECRET,
        "PutEventSelectors",
        &json!({"TrailName": TRAIL, "EventSelectors": [{}], "AdvancedEventSelectors": [{"FieldSelectors": []}]}),
    );
    assert_eq!(r.code(), "InvalidEventSelectorsException", "{}", r.text());
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "CreateTrail", &json!({"Name": "typed-trail", "S3BucketName": 7}));
    assert_eq!(r.code(), "SerializationException", "{}", r.text());
    assert_eq!(snapshot(&s), before);
    s.assert_no_errors_logged();
}

/// Waits for the self-audit records of `event_name` (they are stored asynchronously).
fn wait_for_events(s: &Server, event_name: &str, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = s.lookup_all(&[("EventName", event_name)]);
        if events.len() >= at_least {
            return events;
        }
        assert!(Instant::now() < deadline, "only {} {event_name} events recorded", events.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn trail_calls_appear_in_event_history_with_the_callers_identity() {
    let s = Server::start();
    ok(admin(&s, &["create-trail", "--name", TRAIL, "--s3-bucket-name", "ctbucket"]));
    ok(admin(&s, &["start-logging", "--name", TRAIL]));
    ok(admin(&s, &["stop-logging", "--name", TRAIL]));

    // An auditor may read trails but not create them; the denial is recorded too.
    let mut denied = s.aws(AUDITOR_KEY, AUDITOR_SECRET);
    denied.args(["cloudtrail", "create-trail", "--name", "audrey-trail", "--s3-bucket-name", "ctbucket"]);
    fails(denied, "AccessDeniedException");
    let mut read = s.aws(AUDITOR_KEY, AUDITOR_SECRET);
    read.args(["cloudtrail", "describe-trails"]);
    let names: Vec<Value> = ok(read)["trailList"].as_array().unwrap().iter().map(|t| t["Name"].clone()).collect();
    assert_eq!(names, [json!(TRAIL)], "the denied trail was not created");

    wait_for_events(&s, "CreateTrail", 2);
    wait_for_events(&s, "StopLogging", 1);
    let out =
        ok(admin(&s, &["lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=CreateTrail"]));
    let events: Vec<Value> = out["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");

    let john = events.iter().find(|e| e["errorCode"].is_null()).expect("John's CreateTrail");
    assert_eq!(john["userIdentity"]["arn"], format!("arn:aws:iam::{ACCOUNT}:user/John"));
    assert_eq!(john["userIdentity"]["accessKeyId"], ADMIN_KEY);
    assert_eq!(john["eventSource"], "cloudtrail.amazonaws.com");
    assert_eq!(john["readOnly"], false);
    assert_eq!(john["requestParameters"]["name"], TRAIL);
    assert_eq!(john["requestParameters"]["s3BucketName"], "ctbucket");
    assert_eq!(john["responseElements"]["trailARN"], arn(TRAIL));
    assert!(john["userAgent"].as_str().unwrap().starts_with("aws-cli/"), "{john}");

    let audrey = events.iter().find(|e| !e["errorCode"].is_null()).expect("Audrey's denied CreateTrail");
    assert_eq!(audrey["errorCode"], "AccessDeniedException");
    assert_eq!(audrey["userIdentity"]["userName"], "Audrey");
    assert_eq!(audrey["userIdentity"]["accessKeyId"], AUDITOR_KEY);
    assert_eq!(audrey["requestParameters"]["name"], "audrey-trail");
    assert!(audrey["responseElements"].is_null());

    for name in ["StartLogging", "StopLogging"] {
        let events = wait_for_events(&s, name, 1);
        let e: Value = serde_json::from_str(events[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
        assert_eq!(e["requestParameters"], json!({"name": TRAIL}), "{name}");
        assert_eq!(e["userIdentity"]["userName"], "John", "{name}");
    }
    s.assert_no_errors_logged();
}

#[test]
fn validate_logs_finds_the_trail_through_describe_trails() {
    let s = Server::start();
    create_trail(&s, TRAIL);
    let run = |trail_arn: &str| {
        let mut c = admin(&s, &["validate-logs", "--trail-arn", trail_arn, "--start-time", "2026-01-01T00:00:00Z"]);
        // No S3 here yet (delivery is a later issue): point S3 at a closed port so the CLI fails fast
        // right after DescribeTrails, at its first S3 call.
        c.env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1").env("AWS_MAX_ATTEMPTS", "1");
        let out = c.output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let found = run(&arn(TRAIL));
    assert!(!found.contains("could not be found"), "{found}");
    assert!(found.contains("/ctbucket?location"), "the CLI should go on to the trail's bucket:\n{found}");
    let missing = run(&arn("other-trail"));
    assert!(missing.contains("A trail could not be found for"), "{missing}");
}
