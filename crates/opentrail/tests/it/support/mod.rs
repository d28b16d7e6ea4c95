//! Black-box test support: start the real `opentrail` binary on port 0 with its own data dir and
//! config (the harness), sign requests with SigV4 (opentrail's client), run the CLI, the aws CLI and boto3
//! against it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub use client::now_secs;
use client::{Client, Credential};

pub const ACCOUNT: &str = "123456789012";
pub const ADMIN_KEY: &str = "AKIAEXAMPLEJOHN00001";
pub const ADMIN_SECRET: &str = "john-secret-key-000000000000000000000001";
pub const WRITER_KEY: &str = "AKIAEXAMPLEWRITER001";
pub const WRITER_SECRET: &str = "writer-secret-key-0000000000000000000001";
pub const AUDITOR_KEY: &str = "AKIAEXAMPLEAUDITOR01";
pub const AUDITOR_SECRET: &str = "auditor-secret-key-000000000000000000001";

/// The standard config; `extra` goes before the principals, so it may hold top-level keys and tables.
pub fn config_toml(extra: &str) -> String {
    format!(
        r#"account_id = "{ACCOUNT}"
region = "us-east-1"
{extra}

[[principals]]
access_key_id = "{ADMIN_KEY}"
secret_access_key = "{ADMIN_SECRET}"
user_name = "John"
role = "admin"

[[principals]]
access_key_id = "{WRITER_KEY}"
secret_access_key = "{WRITER_SECRET}"
user_name = "ingester"
role = "writer"

[[principals]]
access_key_id = "{AUDITOR_KEY}"
secret_access_key = "{AUDITOR_SECRET}"
user_name = "Audrey"
role = "auditor"
"#
    )
}

/// A running server (the harness's, dereferenced to for `addr`, `endpoint`, `data_dir`, `stop`, `kill`, …)
/// and, for `start`/`start_with`, the temporary dir holding its config and data. Killed (SIGKILL) when
/// dropped unless stopped first.
pub struct Server {
    server: harness::Server,
    _tmp: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Server {
    type Target = harness::Server;
    fn deref(&self) -> &harness::Server {
        &self.server
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut harness::Server {
        &mut self.server
    }
}

/// The binary under test: `OPENTRAIL_BIN` when set (worktrees that share one target dir overwrite each
/// other's `debug/opentrail` while tests run), else the one cargo built for these tests.
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| std::env::var("OPENTRAIL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_opentrail").to_string()))
}

impl Server {
    /// A fresh server with the standard three principals.
    pub fn start() -> Server {
        Self::start_with(&config_toml(""))
    }

    pub fn start_with(config: &str) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("opentrail.toml");
        std::fs::write(&cfg, config).unwrap();
        let data = tmp.path().join("data");
        let mut s = Self::spawn(&data, Some(&cfg), "127.0.0.1:0");
        s._tmp = Some(tmp);
        s
    }

    /// Starts the binary on an existing data dir (restarts keep the same dir).
    pub fn spawn(data_dir: &Path, config: Option<&Path>, listen: &str) -> Server {
        let opts = harness::ServeOptions {
            config: config.map(Path::to_path_buf),
            listen: listen.to_string(),
            ..harness::ServeOptions::new(Path::new(bin()), data_dir)
        };
        let server = harness::Server::spawn(&opts).unwrap_or_else(|e| panic!("{e}"));
        Server { server, _tmp: None }
    }

    /// Fails the test if the server logged at ERROR level.
    pub fn assert_no_errors_logged(&self) {
        let errors = self.errors_logged();
        assert!(errors.is_empty(), "server logged errors:\n{}", errors.join("\n"));
    }

    /// The CLI, pointed at this server with the admin key.
    pub fn cli(&self) -> Command {
        self.cli_as(ADMIN_KEY, ADMIN_SECRET)
    }

    pub fn cli_as(&self, key: &str, secret: &str) -> Command {
        let mut c = Command::new(bin());
        c.env("OPENTRAIL_ENDPOINT", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env_remove("AWS_PROFILE");
        c
    }

    /// The real aws CLI (v1), pointed at this server.
    pub fn aws(&self, key: &str, secret: &str) -> Command {
        let mut c = Command::new("aws");
        c.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ENDPOINT_URL_CLOUDTRAIL_DATA", &self.endpoint)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .args(["--endpoint-url", &self.endpoint, "--output", "json"]);
        c
    }

    /// Runs a python3 snippet with boto3 available; `ENDPOINT`, `KEY`, `SECRET` are set in its env.
    /// `HTTPS_ENDPOINT` is set too when the server has an HTTPS listener.
    pub fn python(&self, key: &str, secret: &str, code: &str) -> std::process::Output {
        let mut c = Command::new("python3");
        if let Some(https) = &self.https_endpoint {
            c.env("HTTPS_ENDPOINT", https);
        }
        c.arg("-c")
            .arg(code)
            .env("ENDPOINT", &self.endpoint)
            .env("KEY", key)
            .env("SECRET", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("run python3")
    }

    /// A server with an HTTPS listener (port 0) on a self-signed certificate for `localhost`; `extra` is
    /// appended to the config after the `[tls]` table (another table, e.g. `[server]`). The returned folder
    /// holds `cert.pem`, for clients that verify the certificate.
    pub fn start_tls(extra: &str) -> (Server, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        let s = Self::start_with(&config_toml(&format!(
            "[tls]\nlisten = \"127.0.0.1:0\"\ncert_file = {:?}\nkey_file = {:?}\n{extra}",
            cert_file.display().to_string(),
            key_file.display().to_string()
        )));
        (s, dir)
    }

    /// A signed request made with opentrail's own client; any status is an answer.
    pub fn signed(
        &self,
        key: &str,
        secret: &str,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        self.signed_at(key, secret, method, path_and_query, headers, body, now_secs())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn signed_at(
        &self,
        key: &str,
        secret: &str,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        at_epoch_secs: i64,
    ) -> Reply {
        try_signed(&self.addr, key, secret, method, path_and_query, headers, body, at_epoch_secs).expect("request")
    }

    /// An unsigned (or hand-signed) request.
    pub fn raw(&self, method: &str, path_and_query: &str, headers: &[(String, String)], body: &[u8]) -> Reply {
        try_raw(&self.addr, method, path_and_query, headers, body).expect("request")
    }

    /// A CloudTrail JSON 1.1 call with opentrail's own client.
    pub fn cloudtrail(&self, key: &str, secret: &str, op: &str, params: &serde_json::Value) -> Reply {
        self.cloudtrail_with(key, secret, op, params, &[])
    }

    /// [`Server::cloudtrail`] with more headers.
    pub fn cloudtrail_with(
        &self,
        key: &str,
        secret: &str,
        op: &str,
        params: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        client_of(&self.addr, key, secret).send_cloudtrail_with(op, params, headers).expect("request")
    }

    /// Ingests NDJSON as the admin; returns the parsed answer.
    pub fn ingest(&self, ndjson: &str) -> serde_json::Value {
        let r = self.signed(
            ADMIN_KEY,
            ADMIN_SECRET,
            "POST",
            "/v1/events",
            &[("content-type", "application/x-ndjson")],
            ndjson.as_bytes(),
        );
        assert_eq!(r.status, 200, "ingest failed: {}", r.text());
        r.json()
    }

    /// All events matching `attrs`, newest first, paging through LookupEvents.
    pub fn lookup_all(&self, attrs: &[(&str, &str)]) -> Vec<serde_json::Value> {
        let mut params = serde_json::json!({"MaxResults": 50});
        if !attrs.is_empty() {
            params["LookupAttributes"] =
                attrs.iter().map(|(k, v)| serde_json::json!({"AttributeKey": k, "AttributeValue": v})).collect();
        }
        let mut out = Vec::new();
        loop {
            let r = self.cloudtrail(ADMIN_KEY, ADMIN_SECRET, "LookupEvents", &params);
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            out.extend(v["Events"].as_array().unwrap().iter().cloned());
            match v["NextToken"].as_str() {
                Some(t) => params["NextToken"] = t.into(),
                None => return out,
            }
        }
    }

    /// Waits until `GET /healthz` reports the index caught up with the journal.
    pub fn wait_caught_up(&self) {
        let client = Client::unsigned(&self.endpoint).unwrap();
        if let Err(e) = client.wait_caught_up(Duration::from_secs(30)) {
            panic!("{e}: {:?}", client.health());
        }
    }
}

/// An unsigned (or hand-signed) request to `addr` (`host:port`); `None` when no whole answer arrived.
pub fn try_raw(
    addr: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<Reply> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Client::unsigned(&format!("http://{addr}")).ok()?.send(method, path_and_query, &headers, body).ok()
}

/// opentrail's own client of `addr` (`host:port`), signing as `key`.
fn client_of(addr: &str, key: &str, secret: &str) -> Client {
    let cred = Credential { access_key_id: key.into(), secret_access_key: secret.into() };
    Client::with_credential(&format!("http://{addr}"), cred).unwrap()
}

/// A request signed with opentrail's own client to `addr` (`host:port`); `None` when the server is not
/// there or the connection breaks before the whole answer arrived (the crash test kills servers mid-request).
#[allow(clippy::too_many_arguments)]
pub fn try_signed(
    addr: &str,
    key: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    at_epoch_secs: i64,
) -> Option<Reply> {
    let path = path_and_query.split('?').next().unwrap_or(path_and_query);
    client_of(addr, key, secret)
        .send_signed_at(method, path_and_query, headers, body, client::signing_name(path), at_epoch_secs)
        .ok()
}

/// An answer as the tests read it: [`client::Response`] with `json()` and `code()` that fail the test.
pub type Reply = client::Response;

pub trait ReplyExt {
    fn json(&self) -> serde_json::Value;
    /// The AWS error code (`__type`).
    fn code(&self) -> String;
}

impl ReplyExt for Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn code(&self) -> String {
        self.json()["__type"].as_str().unwrap_or("").to_string()
    }
}

/// An IAM API call by `user`, as one compact record.
pub fn api_call(id: &str, time: &str, name: &str, user: &str) -> String {
    serde_json::json!({
        "eventVersion": "1.11",
        "eventID": id,
        "eventTime": time,
        "eventSource": "iam.amazonaws.com",
        "eventName": name,
        "userIdentity": {"type": "IAMUser", "userName": user, "accessKeyId": format!("AKIA{user}"),
                         "arn": format!("arn:aws:iam::123456789012:user/{user}")},
        "sourceIPAddress": "192.0.2.1",
        "userAgent": "aws-cli/1.45.11",
        "readOnly": name.starts_with("Get"),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "eventCategory": "Management",
    })
    .to_string()
}

/// The seed case: on 2020-01-01T09:00:00Z IAM user John created IAM user Mary through the console.
pub const SEED: &str = r#"{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","principalId":"AIDAJOHNEXAMPLE00001","arn":"arn:aws:iam::123456789012:user/John","accountId":"123456789012","accessKeyId":"ASIAJOHNCONSOLE00001","userName":"John","sessionContext":{"sessionIssuer":{},"webIdFederationData":{},"attributes":{"creationDate":"2020-01-01T08:55:12Z","mfaAuthenticated":"true"}}},"eventTime":"2020-01-01T09:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.23","userAgent":"AWS Internal","requestParameters":{"userName":"Mary"},"responseElements":{"user":{"path":"/","userName":"Mary","userId":"AIDAMARYEXAMPLE00001","arn":"arn:aws:iam::123456789012:user/Mary","createDate":"Jan 1, 2020 9:00:00 AM"}},"requestID":"6e2c4c7a-1f0b-4d67-9a6e-3c1f2b0d9e11","eventID":"3b5f2f5e-8c1d-4f7e-9a2b-1c2d3e4f5a6b","readOnly":false,"resources":[{"ARN":"arn:aws:iam::123456789012:user/Mary","accountId":"123456789012","type":"AWS::IAM::User"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","sessionCredentialFromConsole":"true","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"iam.amazonaws.com"}}"#;

/// A batch's eventIDs and its NDJSON body (the crash tests' unit of ingest).
pub type Batch = (Vec<String>, String);

/// The crash tests' random moments: a small LCG seeded from the clock, its seed printed so a failing run can
/// be read back.
pub struct Lcg(u64);

impl Lcg {
    pub fn from_clock(test: &str) -> Lcg {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        eprintln!("{test} seed {seed}");
        Lcg(seed)
    }

    /// A number in `0..n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// `opentrail check` on a stopped server's data dir: the index agrees with the journal.
pub fn check_offline(data: &Path) {
    let out = Command::new(bin()).args(["check", "--data-dir"]).arg(data).output().unwrap();
    assert!(
        out.status.success(),
        "check failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The crash tests' client: sends `make(0)`, `make(1)`, … to `/v1/events` one after the other, `pause` apart,
/// until a request gets no 200 (the server was killed). An acknowledged batch's ids go to `acked` — only once
/// the whole answer arrived (`try_signed` reads it all); the batch in flight is in `pending` until answered.
pub fn spawn_ingester(
    addr: String,
    acked: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    pending: std::sync::Arc<std::sync::Mutex<Option<Batch>>>,
    pause: Duration,
    make: impl Fn(usize) -> Batch + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for n in 0.. {
            let b = make(n);
            *pending.lock().unwrap() = Some(b.clone());
            let status =
                try_signed(&addr, ADMIN_KEY, ADMIN_SECRET, "POST", "/v1/events", &[], b.1.as_bytes(), now_secs())
                    .map(|r| r.status);
            if status != Some(200) {
                return;
            }
            acked.lock().unwrap().extend(b.0);
            *pending.lock().unwrap() = None;
            std::thread::sleep(pause);
        }
    })
}

/// Runs an aws CLI command that must succeed; returns its JSON output (`{}` for no output).
pub fn ok(mut cmd: Command) -> serde_json::Value {
    let out = cmd.output().expect("run aws");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "aws failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    if stdout.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_json::from_str(&stdout).expect("aws printed JSON")
    }
}

/// Runs an aws CLI command that must fail with the service error `code`; returns stderr.
pub fn fails(mut cmd: Command, code: &str) -> String {
    let out = cmd.output().expect("run aws");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(254 | 255)),
        "expected a service error {code}, got {:?}: {stderr}",
        out.status
    );
    assert!(stderr.contains(&format!("An error occurred ({code})")), "expected {code}:\n{stderr}");
    stderr
}

/// `aws cloudtrail <args>` as the admin.
pub fn admin(s: &Server, args: &[&str]) -> Command {
    let mut c = s.aws(ADMIN_KEY, ADMIN_SECRET);
    c.arg("cloudtrail").args(args);
    c
}
