//! The audit gateway in front of a real AWS emulator (issue 9): moto_server behind the real `opentrail`
//! binary's `[[gateways]]`, the real aws CLI with John's key making the calls the issue lists, then
//! `opentrail lookup` and `aws cloudtrail lookup-events` finding each one as AWS would have recorded it:
//! eventSource, eventName, readOnly, eventCategory, John's identity, requestParameters and errorCode.
//! A second moto, with its IAM authentication switched on, answers a wrong secret with its own
//! `SignatureDoesNotMatch` (moto checks no signatures unless `INITIAL_NO_AUTH_ACTION_COUNT` is set).

use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// A moto with IAM authentication on after `free_actions` unauthenticated calls; killed when dropped.
struct AuthMoto {
    child: Child,
    endpoint: String,
}

impl AuthMoto {
    fn start(free_actions: u32) -> AuthMoto {
        let port = harness::free_port().expect("free port");
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", free_actions.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        wait_listening(&format!("127.0.0.1:{port}"), Duration::from_secs(60));
        AuthMoto { child, endpoint: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for AuthMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(addr: &str, deadline: Duration) {
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(started.elapsed() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The aws CLI through a gateway, as `key`/`secret`.
fn aws_via(gateway: &str, key: &str, secret: &str, args: &[&str]) -> Output {
    Command::new("aws")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .args(["--endpoint-url", gateway, "--output", "json"])
        .args(args)
        .output()
        .expect("run aws")
}

fn ok(out: &Output, what: &str) -> Value {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn fails_with(out: &Output, code: &str, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(code), "{what}: expected {code}, got: {err}");
}

/// `expected` ⊆ `got`, members and array prefixes.
fn subset(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => e.iter().all(|(k, ev)| g.get(k).is_some_and(|gv| subset(ev, gv))),
        (Value::Array(e), Value::Array(g)) => e.len() <= g.len() && e.iter().zip(g).all(|(a, b)| subset(a, b)),
        _ => expected == got,
    }
}

/// One call as AWS records it: the fields every record of it must carry.
struct Expect {
    source: &'static str,
    name: &'static str,
    read_only: bool,
    data: bool,
    error: Option<&'static str>,
    params: Value,
}

fn expect(source: &str, name: &'static str, read_only: bool, params: Value) -> Expect {
    let source: &'static str = Box::leak(format!("{source}.amazonaws.com").into_boxed_str());
    Expect { source, name, read_only, data: false, error: None, params }
}

fn johns(record: &Value) -> bool {
    record["userIdentity"]["accessKeyId"] == ADMIN_KEY
}

/// Records of `opentrail lookup --attr EventName=NAME --output json`.
fn lookup(s: &Server, name: &str) -> Vec<Value> {
    let out =
        s.cli().args(["lookup", "--attr", &format!("EventName={name}"), "--all", "--output", "json"]).output().unwrap();
    assert!(out.status.success(), "lookup {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON record")).collect()
}

fn check(record: &Value, e: &Expect, how: &str) {
    let at = format!("{how} {} {}", e.source, e.name);
    assert_eq!(record["eventSource"], e.source, "{at}: {record}");
    assert_eq!(record["eventType"], "AwsApiCall", "{at}");
    assert_eq!(record["readOnly"], e.read_only, "{at}: readOnly");
    assert_eq!(record["managementEvent"], !e.data, "{at}: managementEvent");
    assert_eq!(record["eventCategory"], if e.data { "Data" } else { "Management" }, "{at}");
    assert_eq!(record["awsRegion"], "us-east-1", "{at}");
    assert_eq!(record["recipientAccountId"], ACCOUNT, "{at}");
    assert_eq!(record["userIdentity"]["type"], "IAMUser", "{at}: {}", record["userIdentity"]);
    assert_eq!(record["userIdentity"]["userName"], "John", "{at}");
    assert_eq!(record["userIdentity"]["accessKeyId"], ADMIN_KEY, "{at}");
    assert!(record["userAgent"].as_str().is_some_and(|u| u.starts_with("aws-cli/")), "{at}: {}", record["userAgent"]);
    assert_eq!(record["sourceIPAddress"], "127.0.0.1", "{at}");
    assert!(record["requestID"].as_str().is_some_and(|r| !r.is_empty()), "{at}: requestID");
    assert_eq!(record["errorCode"].as_str(), e.error, "{at}: errorCode");
    if e.name == "AssumeRole" {
        // Read-only, yet AWS writes the session it handed out, without its secret key.
        let creds = &record["responseElements"]["credentials"];
        assert!(creds["accessKeyId"].is_string() && creds.get("secretAccessKey").is_none(), "{at}: {creds}");
    } else if e.read_only || e.error.is_some() {
        assert!(record["responseElements"].is_null(), "{at}: reads and failures carry no responseElements");
    }
    assert!(
        subset(&e.params, &record["requestParameters"]),
        "{at}: want {} in {}",
        e.params,
        record["requestParameters"]
    );
}

#[test]
fn aws_cli_calls_through_the_gateway_are_recorded_as_aws_records_them() {
    let moto = harness::MotoServer::start().expect("moto");
    let auth_moto = AuthMoto::start(2);
    // The server's [[principals]] are the gateways' known callers: John's key is IAM user John.
    let s = Server::start_with(&config_toml(&format!(
        r#"[[gateways]]
name = "moto"
kind = "aws"
listen = "127.0.0.1:0"
upstream = "{}"

[[gateways]]
name = "moto-auth"
kind = "aws"
listen = "127.0.0.1:0"
upstream = "{}"
"#,
        moto.endpoint, auth_moto.endpoint
    )));
    let endpoint = |name: &str| s.gateways.iter().find(|(n, _)| n == name).map(|(_, e)| e.clone()).expect("gateway");
    let gw = endpoint("moto");
    let john = |args: &[&str]| aws_via(&gw, ADMIN_KEY, ADMIN_SECRET, args);
    let tmp = tempfile::tempdir().unwrap();

    // IAM and STS.
    ok(&john(&["iam", "create-user", "--user-name", "Mary"]), "create-user");
    let policy = ok(
        &john(&[
            "iam",
            "create-policy",
            "--policy-name",
            "read-receipts",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        ]),
        "create-policy",
    );
    let policy_arn = policy["Policy"]["Arn"].as_str().expect("policy arn").to_owned();
    ok(&john(&["iam", "attach-user-policy", "--user-name", "Mary", "--policy-arn", &policy_arn]), "attach-user-policy");
    let key = ok(&john(&["iam", "create-access-key", "--user-name", "Mary"]), "create-access-key");
    let mary_secret = key["AccessKey"]["SecretAccessKey"].as_str().expect("secret").to_owned();
    ok(&john(&["sts", "get-caller-identity"]), "get-caller-identity");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    ok(
        &john(&["iam", "create-role", "--role-name", "deployer", "--assume-role-policy-document", trust]),
        "create-role",
    );
    let assumed = ok(
        &john(&[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/deployer",
            "--role-session-name",
            "john-deploy",
        ]),
        "assume-role",
    );
    let session_secret = assumed["Credentials"]["SecretAccessKey"].as_str().expect("session secret").to_owned();
    fails_with(&john(&["iam", "get-user", "--user-name", "nobody"]), "NoSuchEntity", "get-user nobody");

    // EC2.
    ok(
        &john(&["ec2", "run-instances", "--image-id", "ami-12c6146b", "--count", "1", "--instance-type", "t2.micro"]),
        "run-instances",
    );
    ok(&john(&["ec2", "describe-instances"]), "describe-instances");
    ok(
        &john(&["ec2", "create-security-group", "--group-name", "web", "--description", "web"]),
        "create-security-group",
    );
    ok(
        &john(&[
            "ec2",
            "authorize-security-group-ingress",
            "--group-name",
            "web",
            "--protocol",
            "tcp",
            "--port",
            "22",
            "--cidr",
            "0.0.0.0/0",
        ]),
        "authorize-security-group-ingress",
    );

    // Secrets Manager, SSM, DynamoDB.
    ok(
        &john(&["secretsmanager", "create-secret", "--name", "db-password", "--secret-string", "hunter2-very-secret"]),
        "create-secret",
    );
    ok(&john(&["secretsmanager", "get-secret-value", "--secret-id", "db-password"]), "get-secret-value");
    ok(
        &john(&[
            "ssm",
            "put-parameter",
            "--name",
            "/app/db-url",
            "--value",
            "postgres://app:pw-in-url@db/app",
            "--type",
            "SecureString",
        ]),
        "put-parameter",
    );
    ok(&john(&["ssm", "get-parameters", "--names", "/app/db-url", "--with-decryption"]), "get-parameters");
    ok(
        &john(&[
            "dynamodb",
            "create-table",
            "--table-name",
            "orders",
            "--attribute-definitions",
            "AttributeName=id,AttributeType=S",
            "--key-schema",
            "AttributeName=id,KeyType=HASH",
            "--billing-mode",
            "PAY_PER_REQUEST",
        ]),
        "create-table",
    );
    ok(
        &john(&[
            "dynamodb",
            "put-item",
            "--table-name",
            "orders",
            "--item",
            r#"{"id":{"S":"o-1"},"total":{"N":"12"}}"#,
        ]),
        "put-item",
    );

    // Lambda.
    let zip = tmp.path().join("fn.zip");
    let py = Command::new("python3")
        .arg("-c")
        .arg("import sys,zipfile;z=zipfile.ZipFile(sys.argv[1],'w');z.writestr('index.py','def handler(e,c):\\n    return 1\\n');z.close()")
        .arg(&zip)
        .status()
        .unwrap();
    assert!(py.success());
    let zip_arg = format!("fileb://{}", zip.display());
    ok(
        &john(&[
            "lambda",
            "create-function",
            "--function-name",
            "orders-api",
            "--runtime",
            "python3.12",
            "--role",
            "arn:aws:iam::123456789012:role/deployer",
            "--handler",
            "index.handler",
            "--zip-file",
            &zip_arg,
        ]),
        "create-function",
    );
    ok(
        &john(&["lambda", "update-function-configuration", "--function-name", "orders-api", "--timeout", "30"]),
        "update-function-configuration",
    );

    // S3: a bucket, a 100 MB object (multipart: the gateway streams it), a listing.
    ok(&john(&["s3", "mb", "s3://coffee-receipts"]), "s3 mb");
    let big = tmp.path().join("big.bin");
    let mut data = vec![0u8; 100 * 1024 * 1024];
    data.iter_mut().enumerate().for_each(|(i, b)| *b = (i % 251) as u8);
    std::fs::write(&big, &data).unwrap();
    drop(data);
    ok(&john(&["s3", "cp", big.to_str().unwrap(), "s3://coffee-receipts/big.bin"]), "s3 cp");
    let ls = john(&["s3", "ls", "s3://coffee-receipts"]);
    assert!(ls.status.success() && String::from_utf8_lossy(&ls.stdout).contains("104857600 big.bin"), "{ls:?}");

    // A wrong secret, against the moto that checks signatures: its own error comes back and is recorded.
    let auth_gw = endpoint("moto-auth");
    ok(
        &aws_via(&auth_gw, "AKIAMOTOBOOT00000001", "x", &["iam", "create-user", "--user-name", "Mary"]),
        "auth moto: create-user",
    );
    let k = ok(
        &aws_via(&auth_gw, "AKIAMOTOBOOT00000001", "x", &["iam", "create-access-key", "--user-name", "Mary"]),
        "auth moto: key",
    );
    let mary_key = k["AccessKey"]["AccessKeyId"].as_str().expect("key").to_owned();
    fails_with(
        &aws_via(&auth_gw, &mary_key, "wrong-secret", &["sts", "get-caller-identity"]),
        "SignatureDoesNotMatch",
        "wrong secret",
    );

    s.wait_caught_up();
    let expected = vec![
        expect("iam", "CreateUser", false, json!({"userName": "Mary"})),
        expect("iam", "AttachUserPolicy", false, json!({"userName": "Mary", "policyArn": policy_arn})),
        expect("iam", "CreateAccessKey", false, json!({"userName": "Mary"})),
        expect("sts", "GetCallerIdentity", true, Value::Null),
        expect(
            "sts",
            "AssumeRole",
            true,
            json!({"roleArn": "arn:aws:iam::123456789012:role/deployer", "roleSessionName": "john-deploy"}),
        ),
        Expect { error: Some("NoSuchEntity"), ..expect("iam", "GetUser", true, json!({"userName": "nobody"})) },
        expect(
            "ec2",
            "RunInstances",
            false,
            json!({"instanceType": "t2.micro", "instancesSet": {"items": [{"imageId": "ami-12c6146b", "minCount": 1, "maxCount": 1}]}}),
        ),
        expect("ec2", "DescribeInstances", true, json!({"instancesSet": {}, "filterSet": {}})),
        expect(
            "ec2",
            "AuthorizeSecurityGroupIngress",
            false,
            json!({"groupName": "web", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
        ),
        expect("secretsmanager", "CreateSecret", false, json!({"name": "db-password"})),
        expect("secretsmanager", "GetSecretValue", true, json!({"secretId": "db-password"})),
        expect("ssm", "PutParameter", false, json!({"name": "/app/db-url", "type": "SecureString"})),
        expect("ssm", "GetParameters", true, json!({"names": ["/app/db-url"], "withDecryption": true})),
        expect("dynamodb", "CreateTable", false, json!({"tableName": "orders", "billingMode": "PAY_PER_REQUEST"})),
        Expect {
            data: true,
            ..expect("dynamodb", "PutItem", false, json!({"tableName": "orders", "item": ["id", "total"]}))
        },
        expect(
            "lambda",
            "CreateFunction20150331",
            false,
            json!({"functionName": "orders-api", "runtime": "python3.12", "handler": "index.handler"}),
        ),
        expect(
            "lambda",
            "UpdateFunctionConfiguration20150331v2",
            false,
            json!({"functionName": "orders-api", "timeout": 30}),
        ),
        expect("s3", "CreateBucket", false, json!({"bucketName": "coffee-receipts"})),
        Expect {
            data: true,
            ..expect("s3", "CreateMultipartUpload", false, json!({"bucketName": "coffee-receipts", "key": "big.bin"}))
        },
        Expect {
            data: true,
            ..expect("s3", "UploadPart", false, json!({"bucketName": "coffee-receipts", "key": "big.bin"}))
        },
        Expect {
            data: true,
            ..expect("s3", "CompleteMultipartUpload", false, json!({"bucketName": "coffee-receipts", "key": "big.bin"}))
        },
        Expect {
            data: true,
            ..expect("s3", "ListObjects", true, json!({"bucketName": "coffee-receipts", "list-type": "2"}))
        },
    ];
    for e in &expected {
        // John's calls (the second gateway's bootstrap calls are made with another key).
        let found: Vec<Value> =
            lookup(&s, e.name).into_iter().filter(|r| r["eventSource"] == e.source && johns(r)).collect();
        assert!(!found.is_empty(), "opentrail lookup found no {} {}", e.source, e.name);
        for r in &found {
            check(r, e, "opentrail lookup");
        }
    }

    // The upload's parts: 100 MB in the aws CLI's 8 MiB parts, every byte counted once.
    let parts = lookup(&s, "UploadPart");
    let bytes: u64 = parts.iter().map(|r| r["additionalEventData"]["bytesTransferredIn"].as_u64().unwrap_or(0)).sum();
    assert_eq!((parts.len(), bytes), (13, 100 * 1024 * 1024));

    // The secrets are in no stored record (the journal is compressed, so the records are read back whole):
    // the CLI-passed secret, the parameter's value, Mary's secret key, the session's secret key.
    let all = s.cli().args(["lookup", "--all", "--output", "json"]).output().unwrap();
    let all = String::from_utf8_lossy(&all.stdout).into_owned();
    assert!(all.contains("CreateSecret") && all.contains("AssumeRole"), "lookup --all read the records");
    for secret in ["hunter2-very-secret", "pw-in-url", mary_secret.as_str(), session_secret.as_str()] {
        assert!(!all.contains(secret), "{secret:?} is in a stored record");
    }
    // And the records say what AWS would: the secret as AWS hides it.
    let create_secret = &lookup(&s, "CreateSecret")[0];
    assert_ne!(create_secret["requestParameters"]["secretString"], "hunter2-very-secret");

    // The wrong secret: Mary's key is unknown to the gateway, so the caller is `Unknown` with that key.
    let failed = lookup(&s, "GetCallerIdentity")
        .into_iter()
        .find(|r| r["userIdentity"]["accessKeyId"] == mary_key.as_str())
        .expect("the wrong-secret call is recorded");
    assert_eq!(failed["errorCode"], "SignatureDoesNotMatch");
    assert_eq!(failed["userIdentity"]["type"], "Unknown");

    // The aws CLI's own lookup-events finds the management events with the same fields.
    let cloudtrail = |name: &str| -> Vec<Value> {
        let out = s
            .aws(ADMIN_KEY, ADMIN_SECRET)
            .args([
                "cloudtrail",
                "lookup-events",
                "--lookup-attributes",
                &format!("AttributeKey=EventName,AttributeValue={name}"),
            ])
            .output()
            .unwrap();
        let v = ok(&out, "lookup-events");
        v["Events"]
            .as_array()
            .expect("Events")
            .iter()
            .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().expect("CloudTrailEvent")).expect("JSON"))
            .collect()
    };
    for e in expected.iter().filter(|e| !e.data) {
        let found: Vec<Value> =
            cloudtrail(e.name).into_iter().filter(|r| r["eventSource"] == e.source && johns(r)).collect();
        assert!(!found.is_empty(), "lookup-events found no {} {}", e.source, e.name);
        for r in &found {
            check(r, e, "aws cloudtrail lookup-events");
        }
    }

    // Shapes as in real CloudTrail records of the same calls, where ../shared/data has them.
    let real = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/cloudtrail-samples/awsdocs-examples.ndjson"
    ));
    if let Ok(real) = real {
        let real: Vec<Value> = real.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let mut compared = 0;
        for e in &expected {
            let Some(ours) = lookup(&s, e.name).into_iter().find(johns) else { continue };
            for r in real.iter().filter(|r| r["eventSource"] == e.source && r["eventName"] == e.name) {
                let (Some(o), Some(rr)) = (ours["requestParameters"].as_object(), r["requestParameters"].as_object())
                else {
                    continue;
                };
                if o.keys().any(|k| rr.contains_key(k)) {
                    compared += 1;
                    for (k, v) in o.iter().filter(|(k, _)| rr.contains_key(*k)) {
                        assert_eq!(v.is_object(), rr[k].is_object(), "{} {k}: ours {v}, real {}", e.name, rr[k]);
                        assert_eq!(v.is_array(), rr[k].is_array(), "{} {k}: ours {v}, real {}", e.name, rr[k]);
                    }
                }
            }
        }
        assert!(compared >= 3, "only {compared} comparisons with real records");
    }
    s.assert_no_errors_logged();
}
