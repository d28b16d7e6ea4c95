//! The web console end to end: the real binary on port 0 with the seed case, generated traffic, a trail and an
//! Insight, driven in headless Chromium (Debian's /usr/bin/chromium) by playwright-core through
//! tests/console/browser.mjs (installed by scripts/test.sh); then what the server recorded of it (sign-ins,
//! console calls) and what it refuses over plain HTTP whatever a page shows (an auditor's write, a call
//! without the CSRF token or from another origin).

use std::path::PathBuf;
use std::process::Command;

use crate::support::*;
use serde_json::{Value, json};

fn console_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

const USER: &str = "ana";
const PASSWORD: &str = "a long console passphrase";
const PAGED: &str = "ConsoleTestPaged";

/// An argon2 hash made by `opentrail console hash-password`, reading the password from stdin.
fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(["console", "hash-password"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    phc
}

fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn call(id: String, time: &str, source: &str, name: &str, user: &str) -> String {
    json!({
        "eventVersion": "1.11",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAGEN", "arn": format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
            "accountId": ACCOUNT, "accessKeyId": "AKIAGENERATED0000001", "userName": user},
        "eventTime": time, "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
        "requestParameters": null, "responseElements": null, "eventID": id, "readOnly": false,
        "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": ACCOUNT, "eventCategory": "Management"
    })
    .to_string()
}

fn insight(shared: &str, state: &str, time: &str) -> String {
    json!({
        "eventVersion": "1.08", "eventTime": time, "awsRegion": "us-east-1",
        "eventID": format!("{shared}-{state}"), "eventType": "AwsCloudTrailInsight", "recipientAccountId": ACCOUNT,
        "sharedEventID": shared,
        "insightDetails": {"state": state, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
            "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": 0.5}, "insight": {"average": 6.0},
                "insightDuration": 15, "baselineDuration": 10080},
                "attributions": [{"attribute": "userIdentityArn",
                    "insight": [{"value": format!("arn:aws:iam::{ACCOUNT}:user/batch"), "average": 6.0}],
                    "baseline": [{"value": format!("arn:aws:iam::{ACCOUNT}:user/batch"), "average": 0.5}]}]}},
        "eventCategory": "Insight"
    })
    .to_string()
}

/// The seed case; 120 calls of one name over the last day (three pages); an Insight 2 hours ago with its
/// burst of RunInstances around it and a sparse baseline before.
fn traffic(s: &Server) {
    let now = now_secs() as i64;
    let mut lines = vec![SEED.to_string()];
    for i in 0..120 {
        lines.push(call(format!("paged-{i:04}"), &iso(now - 600 - i * 600), "iam.amazonaws.com", PAGED, "robot"));
    }
    let burst = now - 2 * 3600;
    for i in 0..90 {
        lines.push(call(format!("burst-{i:04}"), &iso(burst + i * 10), "ec2.amazonaws.com", "RunInstances", "batch"));
    }
    for i in 0..12 {
        lines.push(call(
            format!("base-{i:04}"),
            &iso(burst - 3600 + i * 240),
            "ec2.amazonaws.com",
            "RunInstances",
            "batch",
        ));
    }
    lines.push(insight("11111111-2222-3333-4444-555555555555", "Start", &iso(burst)));
    lines.push(insight("11111111-2222-3333-4444-555555555555", "End", &iso(burst + 15 * 60)));
    let answer = s.ingest(&lines.join("\n"));
    assert_eq!(answer["stored"], lines.len(), "{answer}");
    s.wait_caught_up();
}

fn cloudtrail_ok(s: &Server, op: &str, params: Value) -> Value {
    let r = s.cloudtrail(ADMIN_KEY, ADMIN_SECRET, op, &params);
    assert_eq!(r.status, 200, "{op}: {}", r.text());
    r.json()
}

/// Signs in over plain HTTP; the session cookie and CSRF token.
fn sign_in(s: &Server, body: Value) -> (u16, Option<(String, String)>, Value) {
    let origin = format!("http://{}", s.addr);
    let h = vec![("content-type".to_string(), "application/json".to_string()), ("origin".to_string(), origin)];
    let r = s.raw("POST", "/console/api/signin", &h, body.to_string().as_bytes());
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let cookie = r.header("set-cookie").map(|c| c.split(';').next().unwrap().to_string());
    let session = cookie.map(|c| (c, v["csrfToken"].as_str().unwrap_or_default().to_string()));
    (r.status, session, v)
}

fn console_post(
    s: &Server,
    session: &(String, String),
    path: &str,
    origin: Option<&str>,
    csrf: bool,
) -> client::Response {
    let mut h =
        vec![("content-type".to_string(), "application/json".to_string()), ("cookie".to_string(), session.0.clone())];
    if let Some(o) = origin {
        h.push(("origin".to_string(), o.to_string()));
    }
    if csrf {
        h.push(("x-opentrail-csrf".to_string(), session.1.clone()));
    }
    s.raw("POST", path, &h, b"{\"Name\":\"main\"}")
}

#[test]
fn the_console_solves_the_seed_case_in_a_browser_and_records_what_it_did() {
    let dir = console_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run scripts/test.sh (it runs `npm ci` there)",
        dir.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: scripts/test.sh installs Debian's chromium"
    );
    let console = format!(
        "[console]\nusers = [{{ name = \"{USER}\", password_hash = \"{}\", principal = \"{AUDITOR_KEY}\" }}]\n",
        hash_password(PASSWORD)
    );
    let s = Server::start_with(&config_toml(&console));
    let short = Server::start_with(&config_toml("[console]\nsession_lifetime = \"2s\"\n"));
    traffic(&s);
    std::fs::create_dir_all(s.data_dir.join("buckets/console-trail-bucket")).unwrap();
    cloudtrail_ok(&s, "CreateTrail", json!({"Name": "main", "S3BucketName": "console-trail-bucket"}));
    cloudtrail_ok(&s, "StartLogging", json!({"Name": "main"}));

    let shots = match std::env::var("OPENTRAIL_CONSOLE_SCREENSHOTS") {
        Ok(d) => PathBuf::from(d),
        Err(_) => tempfile::tempdir().unwrap().keep(),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg("browser.mjs")
        .current_dir(&dir)
        .env("OPENTRAIL_URL", &s.endpoint)
        .env("OPENTRAIL_SHORT_URL", &short.endpoint)
        .env("SCREENSHOT_DIR", &shots)
        .env("SEED_EVENT_ID", "3b5f2f5e-8c1d-4f7e-9a2b-1c2d3e4f5a6b")
        .env("PAGED_EVENT_NAME", PAGED)
        .env("ADMIN_KEY", ADMIN_KEY)
        .env("ADMIN_SECRET", ADMIN_SECRET)
        .env("AUDITOR_KEY", AUDITOR_KEY)
        .env("AUDITOR_SECRET", AUDITOR_SECRET)
        .env("WRITER_KEY", WRITER_KEY)
        .env("WRITER_SECRET", WRITER_SECRET)
        .env("CONSOLE_USER", USER)
        .env("CONSOLE_PASSWORD", PASSWORD)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node (node 20 is needed for the console tests)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser tests failed (screenshots in {}):\n{stdout}\n{stderr}", shots.display());
    assert!(stdout.contains("console browser tests: all passed"), "{stdout}");
    for page in ["signin", "events", "event-detail", "event-json", "trails", "insights", "events-id-phone"] {
        assert!(shots.join(format!("{page}.png")).is_file(), "no screenshot of {page}");
    }
    s.wait_caught_up();

    // An unknown access key and an unknown console user are refused alike, and recorded with the name hidden.
    let (status, session, _) = sign_in(&s, json!({"accessKeyId": "AKIANOSUCHKEY0000001", "secretAccessKey": "x"}));
    assert_eq!((status, session.is_none()), (401, true));
    let (status, session, answer) = sign_in(&s, json!({"user": "nobody", "password": PASSWORD}));
    assert_eq!((status, session.is_none()), (401, true), "{answer}");
    let (status, session, _) = sign_in(&s, json!({"user": USER, "password": "not the passphrase"}));
    assert_eq!((status, session.is_none()), (401, true));
    s.wait_caught_up();

    // Sign-ins are records of their own: the wrong secret, the writer, and the successes.
    let logins = s.lookup_all(&[("EventName", "ConsoleLogin")]);
    let records: Vec<Value> =
        logins.iter().map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap()).collect();
    let failed = records
        .iter()
        .find(|r| r["errorMessage"] == "Failed authentication" && r["userIdentity"]["userName"] == "John")
        .expect("the wrong secret");
    assert_eq!(failed["eventType"], "AwsConsoleSignIn");
    assert_eq!(failed["eventSource"], "signin.amazonaws.com");
    assert_eq!(failed["responseElements"]["ConsoleLogin"], "Failure");
    assert_eq!(failed["additionalEventData"]["MFAUsed"], "No");
    assert!(failed["additionalEventData"]["LoginTo"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let hidden: Vec<&Value> =
        records.iter().filter(|r| r["userIdentity"]["userName"] == "HIDDEN_DUE_TO_SECURITY_REASONS").collect();
    assert_eq!(hidden.len(), 2, "the unknown key and the unknown user");
    assert!(hidden.iter().all(|r| r["errorMessage"] == "No username found in supplied account"));
    let wrong_password = records
        .iter()
        .find(|r| r["additionalEventData"]["ConsoleUser"] == USER && r["responseElements"]["ConsoleLogin"] == "Failure")
        .expect("the wrong password");
    assert_eq!(wrong_password["errorMessage"], "Failed authentication");
    let writer = records.iter().find(|r| r["userIdentity"]["userName"] == "ingester").expect("the writer's attempt");
    assert_eq!(writer["responseElements"]["ConsoleLogin"], "Failure");
    let ok: Vec<&Value> = records.iter().filter(|r| r["responseElements"]["ConsoleLogin"] == "Success").collect();
    assert!(ok.iter().any(|r| r["userIdentity"]["userName"] == "John"));
    assert!(ok.iter().any(|r| r["additionalEventData"]["ConsoleUser"] == USER));
    assert!(ok.iter().all(|r| r["userAgent"].as_str().unwrap().starts_with("Mozilla/5.0")));

    // The console's calls went through the chain: recorded with sessionCredentialFromConsole and the browser's UA.
    let lookups = s.lookup_all(&[("EventName", "StopLogging")]);
    let stop: Value = serde_json::from_str(lookups[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(stop["sessionCredentialFromConsole"], "true");
    assert!(stop["userAgent"].as_str().unwrap().starts_with("Mozilla/5.0"));
    assert_eq!(stop["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"], "false");

    // Whatever a page shows, the server refuses an auditor's write, a call without the token, and another origin.
    let origin = format!("http://{}", s.addr);
    let (status, auditor, _) = sign_in(&s, json!({"accessKeyId": AUDITOR_KEY, "secretAccessKey": AUDITOR_SECRET}));
    assert_eq!(status, 200);
    let auditor = auditor.unwrap();
    let r = console_post(&s, &auditor, "/console/api/call/StopLogging", Some(&origin), true);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("AccessDenied"), "{}", r.text());
    let r = console_post(&s, &auditor, "/console/api/call/DescribeTrails", Some(&origin), false);
    assert_eq!(r.status, 403, "no CSRF token: {}", r.text());
    let r = console_post(&s, &auditor, "/console/api/call/DescribeTrails", Some("http://evil.example"), true);
    assert_eq!(r.status, 403, "another origin: {}", r.text());
    let r = console_post(&s, &auditor, "/console/api/call/DescribeTrails", Some(&origin), true);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = console_post(&s, &auditor, "/console/api/call/DeleteTrail", Some(&origin), true);
    assert_eq!(r.status, 404, "the console calls only its own operations: {}", r.text());
    let status = cloudtrail_ok(&s, "GetTrailStatus", json!({"Name": "main"}));
    assert_eq!(status["IsLogging"], true, "the refused StopLogging changed nothing");
    s.assert_no_errors_logged();
    short.assert_no_errors_logged();
}

#[test]
fn console_files_revalidate_by_etag_and_every_answer_carries_the_security_headers() {
    let s = Server::start();
    let html = vec![("accept".to_string(), "text/html".to_string())];
    let page = s.raw("GET", "/events?EventName=CreateUser", &html, b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/console/assets/app.js"));
    let app = s.raw("GET", "/console/assets/app.js", &[], b"");
    assert_eq!(app.status, 200);
    assert_eq!(app.header("content-type"), Some("text/javascript; charset=utf-8"));
    let etag = app.header("etag").unwrap().to_string();
    let again = s.raw("GET", "/console/assets/app.js", &[("if-none-match".into(), etag)], b"");
    assert_eq!((again.status, again.body.len()), (304, 0));
    let signed_out = s.raw("GET", "/console/api/session", &[], b"");
    assert_eq!(signed_out.status, 401);
    for r in [&page, &app, &again, &signed_out] {
        assert!(r.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
        assert!(!r.header("content-security-policy").unwrap().contains("unsafe-inline"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    }
    // An unsigned GET / without Accept: text/html is still the API's (S3 ListBuckets, refused unsigned).
    let api = s.raw("GET", "/", &[], b"");
    assert_ne!(api.status, 200);
    assert!(api.header("content-security-policy").is_none());
    // The sign-in wants this server's Origin.
    let h = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("origin".to_string(), "http://evil.example".to_string()),
    ];
    let body = json!({"accessKeyId": ADMIN_KEY, "secretAccessKey": ADMIN_SECRET}).to_string();
    let r = s.raw("POST", "/console/api/signin", &h, body.as_bytes());
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.header("set-cookie").is_none());
    s.assert_no_errors_logged();
}
