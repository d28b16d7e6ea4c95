//! The audit gateway, black box: a real HTTP API (tests/it/gateway_upstream.py: OpenAPI spec, JWT auth)
//! behind a gateway run inside `opentrail serve` (`[[gateways]]`) or as its own process (`opentrail
//! gateway`); records read back with `opentrail lookup`, secrets searched for in the journal's files;
//! fail-closed and spool behaviour with the server down, kill -9 of the gateway mid-spool; proxy
//! behaviours (chunked, 100-continue, a 300 MB upload in bounded memory, 502, 504, X-Forwarded-For).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const JWT_SECRET: &str = "gateway-test-jwt-secret";

const PETS_OPENAPI: &str = r#"openapi: 3.0.3
info: {title: pets, version: "1"}
paths:
  /pets:
    get: {operationId: listPets}
    post: {operationId: createPet}
  /pets/{petId}:
    get: {operationId: showPetById}
"#;

/// The Python pet store; killed when dropped.
struct Upstream {
    child: Child,
    endpoint: String,
}

impl Upstream {
    fn start() -> Upstream {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/gateway_upstream.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(JWT_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("upstream said {line:?}"));
        Upstream { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// Requests it served (its own counter, read directly).
    fn count(&self) -> u64 {
        let (_, body) = call(&self.endpoint, "GET", "/__count", &[], b"");
        body["count"].as_u64().unwrap()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jwt(secret: &str, sub: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &json!({"sub": sub, "iss": "https://idp.example"}), &key)
        .unwrap()
}

/// One plain HTTP call; (status, body as JSON or `Value::Null`).
fn call(endpoint: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let c = client::Client::unsigned(endpoint).unwrap();
    let mut h = vec![("user-agent", "pets-cli/1.0")];
    h.extend_from_slice(headers);
    let r = c.send(method, path, &h, body).unwrap_or_else(|e| panic!("{method} {endpoint}{path}: {e}"));
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// Every stored record of `event_source`, as `opentrail lookup --output json` prints them.
fn records(s: &Server, event_source: &str) -> Vec<Value> {
    let out = s
        .cli()
        .args(["lookup", "--all", "--include-own-reads", "--output", "json", "--attr"])
        .arg(format!("EventSource={event_source}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "lookup: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn by_name(records: &[Value]) -> HashMap<String, Vec<Value>> {
    let mut m: HashMap<String, Vec<Value>> = HashMap::new();
    for r in records {
        m.entry(r["eventName"].as_str().unwrap().to_string()).or_default().push(r.clone());
    }
    m
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn gateway_config(name: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[gateways]]\nname = \"{name}\"\nkind = \"http\"\nlisten = \"127.0.0.1:0\"\nupstream = \"{upstream}\"\n{extra}\n"
    )
}

#[test]
fn http_api_calls_become_operation_named_events_with_the_jwt_subject_and_no_secret_reaches_the_journal() {
    let up = Upstream::start();
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("pets.yaml");
    std::fs::write(&spec, PETS_OPENAPI).unwrap();
    let key = tmp.path().join("jwt.key");
    std::fs::write(&key, JWT_SECRET).unwrap();
    let extra = format!(
        "event_source = \"pets.example.com\"\nopenapi = \"{}\"\n[gateways.jwt]\nkey_file = \"{}\"\n",
        spec.display(),
        key.display()
    );
    let s = Server::start_with(&config_toml(&gateway_config("pets", &up.endpoint, &extra)));
    let gw = s.gateway("pets").expect("the gateway's listening line").to_string();
    let alice = format!("Bearer {}", jwt(JWT_SECRET, "alice"));
    let forged = format!("Bearer {}", jwt("not-the-secret", "mallory"));

    let (status, body) = call(&gw, "GET", "/pets", &[("authorization", &alice)], b"");
    assert_eq!((status, body["owner"].as_str()), (200, Some("alice")));
    let pet = br#"{"name":"Rex","password":"hunter2-body"}"#;
    let (status, body) =
        call(&gw, "POST", "/pets", &[("authorization", &alice), ("content-type", "application/json")], pet);
    assert_eq!((status, body["apiToken"].as_str()), (201, Some("resp-secret-XYZ")), "the client sees the answer whole");
    assert_eq!(call(&gw, "GET", "/pets/7?access_token=qtok-123&color=red", &[("authorization", &alice)], b"").0, 200);
    assert_eq!(call(&gw, "GET", "/pets", &[("authorization", &forged)], b"").0, 401);
    assert_eq!(call(&gw, "GET", "/owners/1", &[], b"").0, 200);

    s.wait_caught_up();
    let recs = records(&s, "pets.example.com");
    assert_eq!(recs.len(), 5, "{recs:#?}");
    let names = by_name(&recs);
    let list = &names["listPets"];
    assert_eq!(list.len(), 2);
    let good = list.iter().find(|r| r["errorCode"].is_null()).expect("alice's listPets");
    assert_eq!(good["userIdentity"]["type"], "WebIdentityUser");
    assert_eq!(good["userIdentity"]["userName"], "alice");
    assert_eq!(good["userIdentity"]["identityProvider"], "https://idp.example");
    assert_eq!(good["readOnly"], true);
    assert_eq!(good["userAgent"], "pets-cli/1.0");
    assert_eq!(good["eventType"], "AwsApiCall");
    assert_eq!(good["eventVersion"], "1.11");
    assert_eq!(good["sourceIPAddress"], "127.0.0.1");
    assert_eq!(good["additionalEventData"]["jwtVerified"], true);
    let bad = list.iter().find(|r| !r["errorCode"].is_null()).expect("mallory's listPets");
    assert_eq!(bad["userIdentity"]["type"], "Unknown");
    assert!(bad["userIdentity"]["userName"].is_null(), "a forged token's subject is not believed: {bad}");
    assert_eq!(bad["additionalEventData"]["authenticationError"], "InvalidToken");
    assert_eq!(bad["additionalEventData"]["claimedSubject"], "mallory");
    assert_eq!(bad["errorCode"], "Unauthorized");
    let create = &names["createPet"][0];
    assert_eq!(create["readOnly"], false);
    assert_eq!(create["requestParameters"]["body"]["name"], "Rex");
    assert_eq!(create["requestParameters"]["body"]["password"], "HIDDEN_DUE_TO_SECURITY_REASONS");
    assert_eq!(create["responseElements"]["apiToken"], "HIDDEN_DUE_TO_SECURITY_REASONS");
    assert_eq!(create["responseElements"]["owner"], "alice");
    let show = &names["showPetById"][0];
    assert_eq!(show["requestParameters"]["path"]["petId"], "7");
    assert_eq!(show["requestParameters"]["query"]["color"], "red");
    assert_eq!(show["requestParameters"]["query"]["access_token"], "HIDDEN_DUE_TO_SECURITY_REASONS");
    assert!(names.contains_key("GET /owners/1"), "{:?}", names.keys());

    // No secret anywhere: not in what lookups return, not in any file of the data dir.
    let text = serde_json::to_string(&recs).unwrap();
    let files = all_bytes(&s.data_dir);
    for secret in ["hunter2-body", "resp-secret-XYZ", "qtok-123", JWT_SECRET] {
        assert!(!text.contains(secret), "{secret} in a record");
        assert!(!contains(&files, secret), "{secret} in the data dir's files");
    }
    let metrics = client::Client::unsigned(&s.endpoint).unwrap().send("GET", "/metrics", &[], b"").unwrap().text();
    assert!(metrics.contains("opentrail_gateway_calls_total{gateway=\"pets\"} 5"), "{metrics}");
    assert!(metrics.contains("opentrail_gateway_recorded_total{gateway=\"pets\"} 5"), "{metrics}");
    s.assert_no_errors_logged();
}

#[test]
fn proxy_keeps_chunked_uploads_100_continue_and_the_host_and_answers_502_504_with_records() {
    let up = Upstream::start();
    let dead = format!("http://127.0.0.1:{}", harness::free_port().unwrap());
    let mut cfg = gateway_config("plain", &up.endpoint, "event_source = \"plain.example\"\nupstream_timeout_ms = 1000");
    cfg += &gateway_config(
        "trusting",
        &up.endpoint,
        "event_source = \"trusting.example\"\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    cfg += &gateway_config("dead", &dead, "event_source = \"dead.example\"");
    let s = Server::start_with(&config_toml(&cfg));
    let plain = s.gateway("plain").unwrap().trim_start_matches("http://").to_string();

    // Chunked upload: streamed through as chunks, counted whole by the upstream.
    let mut head = "PUT /upload HTTP/1.1\r\nHost: iam.amazonaws.com\r\nTransfer-Encoding: chunked\r\n\r\n".to_string();
    for i in 0..10 {
        let chunk = "x".repeat(1000 + i);
        head += &format!("{:x}\r\n{chunk}\r\n", chunk.len());
    }
    head += "0\r\n\r\n";
    let (status, body) = raw(&plain, head.as_bytes(), None);
    assert_eq!(status, 200);
    assert_eq!(body["bytes"], (0..10).map(|i| 1000 + i).sum::<u64>());

    // Expect: 100-continue: the interim answer comes before the body is sent.
    let head = "POST /echo HTTP/1.1\r\nHost: iam.amazonaws.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    let (status, body) = raw(&plain, head.as_bytes(), Some(b"hello"));
    assert_eq!(status, 200);
    assert_eq!(body["bytes"], 5);
    assert_eq!(body["host"], "iam.amazonaws.com", "the Host header reaches the upstream as sent");

    // X-Forwarded-For only from trusted proxies.
    let xff = [("x-forwarded-for", "203.0.113.5")];
    assert_eq!(call(s.gateway("plain").unwrap(), "GET", "/xff", &xff, b"").0, 200);
    assert_eq!(call(s.gateway("trusting").unwrap(), "GET", "/xff", &xff, b"").0, 200);

    // A slow upstream is 504, an unreachable one 502; both recorded with an errorCode.
    let started = Instant::now();
    let (status, body) = call(s.gateway("plain").unwrap(), "GET", "/slow", &[], b"");
    assert_eq!((status, body["__type"].as_str()), (504, Some("GatewayTimeout")));
    assert!(started.elapsed() < Duration::from_millis(2900), "504 before the upstream answered");
    let (status, body) = call(s.gateway("dead").unwrap(), "GET", "/anything", &[], b"");
    assert_eq!((status, body["__type"].as_str()), (502, Some("BadGateway")));

    s.wait_caught_up();
    let plain_recs = by_name(&records(&s, "plain.example"));
    assert_eq!(plain_recs["GET /xff"][0]["sourceIPAddress"], "127.0.0.1");
    assert_eq!(plain_recs["GET /slow"][0]["errorCode"], "GatewayTimeout");
    assert_eq!(plain_recs["PUT /upload"][0]["requestParameters"]["body"]["bytes"], 10045);
    assert_eq!(plain_recs["POST /echo"][0]["responseElements"]["host"], "iam.amazonaws.com");
    let trusting = by_name(&records(&s, "trusting.example"));
    assert_eq!(trusting["GET /xff"][0]["sourceIPAddress"], "203.0.113.5");
    let dead_recs = records(&s, "dead.example");
    assert_eq!(dead_recs.len(), 1);
    assert_eq!(dead_recs[0]["errorCode"], "BadGateway");
}

/// One HTTP/1.1 exchange on a raw socket; with `body`, waits for `100 Continue` before sending it.
fn raw(addr: &str, head: &[u8], body: Option<&[u8]>) -> (u16, Value) {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    sock.write_all(head).unwrap();
    let mut reader = BufReader::new(sock.try_clone().unwrap());
    if let Some(b) = body {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 100"), "expected 100 Continue, got {line:?}");
        reader.read_line(&mut line).unwrap();
        sock.write_all(b).unwrap();
    }
    read_answer(&mut reader)
}

fn read_answer(reader: &mut impl BufRead) -> (u16, Value) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut len = 0;
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
        if l.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A standalone gateway writing to `s` with the writer key.
fn standalone(s: &Server, up: &Upstream, config: &Path, spool: Option<&Path>, listen: &str) -> harness::GatewayProcess {
    let log = config.with_extension("log");
    let mut opts =
        harness::GatewayOptions::new(Path::new(bin()), &s.endpoint, &up.endpoint, (WRITER_KEY, WRITER_SECRET), &log);
    opts.config = Some(config.to_path_buf());
    opts.kind = Some("http".into());
    opts.spool = spool.map(Path::to_path_buf);
    opts.listen = listen.to_string();
    harness::GatewayProcess::spawn(&opts).unwrap_or_else(|e| panic!("{e}"))
}

fn write_config(dir: &Path, name: &str, event_source: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, format!("name = \"{name}\"\nevent_source = \"{event_source}\"\n")).unwrap();
    p
}

#[test]
fn fail_closed_refuses_unforwarded_while_the_server_is_down_and_spool_mode_replays_once_it_is_back() {
    let up = Upstream::start();
    let mut s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let fc = standalone(&s, &up, &write_config(tmp.path(), "fc", "fc.example"), None, "127.0.0.1:0");
    let sp_dir = tmp.path().join("spool");
    let sp = standalone(&s, &up, &write_config(tmp.path(), "sp", "sp.example"), Some(&sp_dir), "127.0.0.1:0");

    assert_eq!(call(&fc.endpoint, "GET", "/fc/0", &[], b"").0, 200);
    let (data, cfg, addr) = (s.data_dir.clone(), s.config.clone(), s.addr.clone());
    s.kill();

    // The first call after the server died reached the upstream; its record could not be written: 503.
    assert_eq!(call(&fc.endpoint, "GET", "/fc/1", &[], b"").0, 503);
    // From then on calls are refused before they are forwarded.
    let served = up.count();
    let (status, body) = call(&fc.endpoint, "GET", "/fc/2", &[], b"");
    assert_eq!((status, body["__type"].as_str()), (503, Some("ServiceUnavailable")));
    assert_eq!(up.count(), served, "a refused call never reaches the upstream");

    // Spool mode answers while the server is down.
    for i in 0..5 {
        assert_eq!(call(&sp.endpoint, "GET", &format!("/sp/{i}"), &[], b"").0, 200);
    }
    let m = client::Client::unsigned(&sp.endpoint).unwrap().send("GET", gateway::METRICS_PATH, &[], b"").unwrap();
    assert!(m.text().contains("opentrail_gateway_spool_depth{gateway=\"sp\"} 5"), "{}", m.text());

    let s = Server::spawn(&data, cfg.as_deref(), &addr);
    wait_for("fail-closed gateway to take calls again", Duration::from_secs(20), || {
        call(&fc.endpoint, "GET", "/fc/3", &[], b"").0 == 200
    });
    wait_for("the spool to drain", Duration::from_secs(30), || {
        s.wait_caught_up();
        records(&s, "sp.example").len() >= 5
    });
    let sp_recs = by_name(&records(&s, "sp.example"));
    for i in 0..5 {
        assert_eq!(sp_recs[&format!("GET /sp/{i}")].len(), 1, "spooled call {i} stored exactly once");
    }
    let fc_recs = by_name(&records(&s, "fc.example"));
    assert_eq!(fc_recs["GET /fc/0"].len(), 1);
    assert_eq!(fc_recs["GET /fc/3"].len(), 1);
    assert!(!fc_recs.contains_key("GET /fc/2"), "refused calls leave no record");
    assert!(fc.errors_logged().iter().any(|l| l.contains("record not written")), "the lost record of /fc/1 is logged");
    assert!(sp.errors_logged().is_empty(), "{:?}", sp.errors_logged());
}

#[test]
fn a_gateway_killed_mid_spool_stores_every_answered_call_exactly_once() {
    let up = Upstream::start();
    let mut s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "k9", "k9.example");
    let spool = tmp.path().join("spool");
    let mut answered = Vec::new();
    let mut next = 0;
    let mut fire = |gw: &harness::GatewayProcess, n: usize, answered: &mut Vec<String>| {
        for _ in 0..n {
            let path = format!("/k/{next}");
            next += 1;
            if call(&gw.endpoint, "GET", &path, &[], b"").0 == 200 {
                answered.push(format!("GET {path}"));
            }
        }
    };
    // Phase 1: the server is down; calls are spooled; the gateway is killed -9 with all of them waiting.
    let (data, config, addr) = (s.data_dir.clone(), s.config.clone(), s.addr.clone());
    s.kill();
    let mut gw = standalone(&s, &up, &cfg, Some(&spool), "127.0.0.1:0");
    fire(&gw, 30, &mut answered);
    gw.kill();
    // Phase 2: a new gateway on the same spool; the server comes back while it forwards and takes calls;
    // the gateway is killed -9 again while forwarding.
    let mut gw = standalone(&s, &up, &cfg, Some(&spool), "127.0.0.1:0");
    fire(&gw, 10, &mut answered);
    let s = Server::spawn(&data, config.as_deref(), &addr);
    fire(&gw, 40, &mut answered);
    gw.kill();
    let gw = standalone(&s, &up, &cfg, Some(&spool), "127.0.0.1:0");
    fire(&gw, 10, &mut answered);
    assert_eq!(answered.len(), 90, "spool mode answers every call");
    wait_for("every answered call stored", Duration::from_secs(60), || {
        s.wait_caught_up();
        records(&s, "k9.example").len() >= answered.len()
    });
    std::thread::sleep(Duration::from_millis(500));
    s.wait_caught_up();
    let stored = by_name(&records(&s, "k9.example"));
    for name in &answered {
        assert_eq!(stored.get(name).map_or(0, Vec::len), 1, "{name} stored exactly once");
    }
    assert_eq!(stored.values().map(Vec::len).sum::<usize>(), answered.len(), "nothing doubled");
}

#[test]
fn a_300_mb_upload_streams_through_without_the_gateways_memory_growing() {
    let up = Upstream::start();
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let gw = standalone(&s, &up, &write_config(tmp.path(), "big", "big.example"), None, "127.0.0.1:0");
    let before = harness::rss(gw.pid()).unwrap();
    const TOTAL: usize = 300 * 1024 * 1024;
    let mut sock = TcpStream::connect(&gw.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(sock, "PUT /upload/big HTTP/1.1\r\nHost: s3.amazonaws.com\r\nContent-Length: {TOTAL}\r\n\r\n").unwrap();
    let chunk = vec![b'a'; 1024 * 1024];
    for _ in 0..TOTAL / chunk.len() {
        sock.write_all(&chunk).unwrap();
    }
    let (status, body) = read_answer(&mut BufReader::new(sock));
    assert_eq!(status, 200);
    assert_eq!(body["bytes"], TOTAL as u64);
    let after = harness::rss(gw.pid()).unwrap();
    assert!(
        after.hwm < before.hwm + 64 * 1024 * 1024,
        "the gateway's peak RSS grew from {} to {} bytes for a {TOTAL}-byte upload",
        before.hwm,
        after.hwm
    );
    s.wait_caught_up();
    let recs = records(&s, "big.example");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["requestParameters"]["body"]["truncated"], true);
    assert_eq!(recs[0]["requestParameters"]["body"]["totalBytes"], TOTAL as u64);
}

#[test]
fn a_tls_gateway_records_tls_details() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let extra = format!(
        "event_source = \"tls.example\"\ntls_cert_file = {:?}\ntls_key_file = {:?}",
        cert_file.display().to_string(),
        key_file.display().to_string()
    );
    let s = Server::start_with(&config_toml(&gateway_config("tls", &up.endpoint, &extra)));
    let gw = s.gateway("tls").unwrap();
    let port = gw.strip_prefix("https://").expect("an https gateway").rsplit(':').next().unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20", "--cacert"])
        .arg(&cert_file)
        .arg(format!("https://localhost:{port}/over/tls"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    s.wait_caught_up();
    let recs = records(&s, "tls.example");
    assert_eq!(recs.len(), 1);
    let tls = &recs[0]["tlsDetails"];
    assert!(tls["tlsVersion"].as_str().unwrap().starts_with("TLSv1."), "{tls}");
    assert!(!tls["cipherSuite"].as_str().unwrap().is_empty(), "{tls}");
    assert_eq!(tls["clientProvidedHostHeader"], format!("localhost:{port}"));
}
