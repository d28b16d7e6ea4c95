//! One exchange → one CloudTrail record (eventVersion 1.11): `kind = "aws"` through `awsproto::describe`,
//! `kind = "http"` through the OpenAPI routes; identity, time, source IP, user agent and TLS details
//! added here; the capture level applied and secrets redacted before the record is serialized.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Method, StatusCode};
use model::cloudtrail::{CloudTrailEvent, ResourceRef, TlsDetails, UserIdentity};
use serde_json::{Map, Value, json};

use crate::config::{IdentityConfig, Kind, Level};
use crate::jwt::{Caller, JwtVerifier};
use crate::openapi::OpenApi;
use crate::policy::{Call, Policy};
use crate::redact::Redactor;

/// Hard-coded, as CloudTrail: `requestParameters` / `responseElements` over 100 KiB are replaced by a
/// marker; `userAgent` and `errorMessage` are cut at 1 KiB.
const MAX_MEMBER_BYTES: usize = 100 * 1024;
const MAX_SHORT_BYTES: usize = 1024;
/// Hard-coded, as CloudTrail: `additionalEventData` over 28 KiB is replaced by a marker.
const MAX_ADDITIONAL_BYTES: usize = 28 * 1024;

/// Everything the gateway saw of one call.
pub struct Exchange<'a> {
    pub event_id: &'a str,
    pub event_time: chrono::DateTime<chrono::Utc>,
    pub peer: SocketAddr,
    pub tls: Option<&'a api::TlsInfo>,
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub request_headers: &'a HeaderMap,
    pub request_body: &'a [u8],
    pub request_complete: bool,
    pub request_total: u64,
    pub status: Option<StatusCode>,
    pub response_headers: Option<&'a HeaderMap>,
    pub response_body: &'a [u8],
    pub response_complete: bool,
    /// Set when the gateway itself answered (502, 504): errorCode and errorMessage.
    pub gateway_error: Option<(&'a str, String)>,
}

/// What turns exchanges into records; one per gateway.
pub struct Recorder {
    pub kind: Kind,
    pub account_id: String,
    pub region: String,
    pub event_source: String,
    pub policy: Policy,
    pub redactor: Redactor,
    pub openapi: Option<OpenApi>,
    pub jwt: JwtVerifier,
    pub identities: HashMap<String, UserIdentity>,
    pub trusted_proxies: Vec<IpAddr>,
}

/// Known callers by access key id, as `userIdentity` (the principals' code, without their secrets).
pub fn identities(list: &[IdentityConfig], default_account: &str) -> HashMap<String, UserIdentity> {
    list.iter()
        .map(|i| {
            let p = service::PrincipalConfig {
                access_key_id: i.access_key_id.clone(),
                secret_access_key: String::new(),
                user_name: i.user_name.clone(),
                principal_type: i.identity_type.clone(),
                role_name: i.role_name.clone(),
                session_name: i.session_name.clone(),
                role: service::Role::Auditor,
                policy: None,
                account_id: i.account_id.clone(),
            };
            (i.access_key_id.clone(), service::Principal::from_config(&p, default_account).user_identity())
        })
        .collect()
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The access key id of a SigV4 request: the `Authorization` header's `Credential=` or the presigned
/// URL's `X-Amz-Credential`.
pub fn sigv4_access_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(auth) = header(headers, "authorization")
        && let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256")
    {
        let cred = rest.split(',').find_map(|p| p.trim().strip_prefix("Credential="))?;
        return cred.split('/').next().map(str::to_string).filter(|s| !s.is_empty());
    }
    let q = query?;
    crate::redact::form_pairs(q)
        .into_iter()
        .find(|(k, _)| k == "X-Amz-Credential")
        .and_then(|(_, v)| v.split('/').next().map(str::to_string))
        .filter(|s| !s.is_empty())
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn limited(v: Value, max: usize) -> Value {
    let n = v.to_string().len();
    if n > max { json!({"truncated": true, "bytes": n}) } else { v }
}

fn truncated_marker(captured: usize, total: Option<u64>) -> Value {
    let mut m = Map::new();
    m.insert("truncated".into(), Value::Bool(true));
    m.insert("capturedBytes".into(), json!(captured));
    if let Some(t) = total {
        m.insert("totalBytes".into(), json!(t));
    }
    Value::Object(m)
}

/// A body as JSON for the record: parsed JSON or form pairs; other content types are described, never
/// copied (their secrets could not be found); a body cut by the capture cap is a marker.
fn body_value(
    redactor: &Redactor,
    headers: Option<&HeaderMap>,
    body: &[u8],
    complete: bool,
    total: u64,
) -> Option<Value> {
    if body.is_empty() && complete {
        return None;
    }
    if !complete {
        return Some(truncated_marker(body.len(), Some(total).filter(|t| *t >= body.len() as u64)));
    }
    let ctype = headers.and_then(|h| header(h, "content-type")).unwrap_or("").to_ascii_lowercase();
    if let Ok(mut v) = serde_json::from_slice::<Value>(body) {
        redactor.value(&mut v);
        return Some(v);
    }
    if ctype.starts_with("application/x-www-form-urlencoded")
        && let Ok(text) = std::str::from_utf8(body)
    {
        return Some(Value::Object(redactor.query(text)));
    }
    Some(json!({"contentType": ctype, "bytes": body.len()}))
}

impl Recorder {
    /// The caller's source IP: the peer, or — when the peer is a trusted proxy — the rightmost
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn source_ip(&self, peer: IpAddr, headers: &HeaderMap) -> String {
        if !self.trusted_proxies.contains(&peer) {
            return peer.to_string();
        }
        let mut hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        while let Some(ip) = hops.pop() {
            if !self.trusted_proxies.contains(&ip) {
                return ip.to_string();
            }
        }
        peer.to_string()
    }

    /// The record of one exchange as JSON text, or `None` when the policy says level None.
    pub fn record(&self, x: &Exchange<'_>) -> Option<String> {
        let mut ev = CloudTrailEvent {
            event_version: Some("1.11".into()),
            event_time: Some(x.event_time.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            source_ip_address: Some(self.source_ip(x.peer.ip(), x.request_headers)),
            user_agent: header(x.request_headers, "user-agent").map(|u| cut(u, MAX_SHORT_BYTES)),
            event_id: Some(x.event_id.to_string()),
            event_type: Some("AwsApiCall".into()),
            ..Default::default()
        };
        if let Some(tls) = x.tls {
            ev.tls_details = Some(TlsDetails {
                tls_version: Some(tls.version.clone()),
                cipher_suite: Some(tls.cipher_suite.clone()),
                client_provided_host_header: header(x.request_headers, "host").map(str::to_string),
                ..Default::default()
            });
        }
        match self.kind {
            Kind::Aws => self.aws(x, &mut ev)?,
            Kind::Http => self.http(x, &mut ev)?,
        }
        if let Some((code, message)) = &x.gateway_error {
            ev.error_code = Some(code.to_string());
            ev.error_message = Some(cut(message, MAX_SHORT_BYTES));
            ev.response_elements = None;
        }
        ev.error_message = ev.error_message.map(|m| cut(&m, MAX_SHORT_BYTES));
        // Present as null when empty, as CloudTrail writes them.
        ev.event_name = ev.event_name.map(|n| cut(&n, MAX_SHORT_BYTES));
        ev.request_parameters =
            Some(ev.request_parameters.take().map_or(Value::Null, |v| limited(v, MAX_MEMBER_BYTES)));
        ev.response_elements = Some(ev.response_elements.take().map_or(Value::Null, |v| limited(v, MAX_MEMBER_BYTES)));
        ev.additional_event_data = ev.additional_event_data.take().map(|v| limited(v, MAX_ADDITIONAL_BYTES));
        let text = serde_json::to_string(&ev).ok()?;
        if text.len() <= model::MAX_RECORD_BYTES {
            return Some(text);
        }
        // Still over the journal's record limit (many large members at once): keep who, what and when.
        ev.request_parameters = Some(json!({"truncated": true}));
        ev.response_elements = Some(json!({"truncated": true}));
        serde_json::to_string(&ev).ok()
    }

    fn level(&self, x: &Exchange<'_>, operation: &str, users: &[&str]) -> Level {
        self.policy.level(&Call { method: x.method.as_str(), path: x.path, operation, users })
    }

    fn aws(&self, x: &Exchange<'_>, ev: &mut CloudTrailEvent) -> Option<()> {
        let key = sigv4_access_key(x.request_headers, x.query);
        let identity = match key.as_deref().and_then(|k| self.identities.get(k)) {
            Some(id) => id.clone(),
            None => UserIdentity {
                identity_type: Some("Unknown".into()),
                access_key_id: key.clone(),
                account_id: key.as_ref().map(|_| self.account_id.clone()),
                ..Default::default()
            },
        };
        let account = identity.account_id.clone().unwrap_or_else(|| self.account_id.clone());
        let d = awsproto::describe(&awsproto::Exchange {
            method: x.method,
            path: x.path,
            query: x.query,
            request_headers: x.request_headers,
            request_body: x.request_body,
            request_body_complete: x.request_complete,
            status: x.status,
            response_headers: x.response_headers,
            response_body: x.response_body,
            response_body_complete: x.response_complete,
            account_id: Some(&account),
        });
        let users: Vec<&str> =
            [identity.user_name.as_deref(), identity.arn.as_deref(), key.as_deref()].into_iter().flatten().collect();
        let level = self.level(x, &d.event_name, &users);
        if level == Level::None {
            return None;
        }
        ev.user_identity = Some(identity);
        ev.event_source = Some(d.event_source);
        ev.event_name = Some(d.event_name);
        ev.aws_region = Some(d.aws_region.unwrap_or_else(|| self.region.clone()));
        ev.read_only = Some(d.read_only);
        let management = d.category == awsproto::Category::Management;
        ev.management_event = Some(management);
        ev.event_category = Some(if management { "Management" } else { "Data" }.into());
        ev.recipient_account_id = Some(account);
        ev.error_code = d.error_code;
        ev.error_message = d.error_message;
        ev.request_id = d.request_id;
        ev.api_version = d.api_version;
        if !d.resources.is_empty() {
            ev.resources = Some(
                d.resources
                    .into_iter()
                    .map(|r| ResourceRef {
                        arn: Some(r.arn),
                        account_id: r.account_id,
                        resource_type: Some(r.resource_type),
                        ..Default::default()
                    })
                    .collect(),
            );
        }
        if level >= Level::Request {
            ev.request_parameters = d.request_parameters.map(|mut v| {
                self.redactor.value(&mut v);
                v
            });
        }
        if level >= Level::RequestResponse {
            ev.response_elements = d.response_elements.map(|mut v| {
                self.redactor.value(&mut v);
                v
            });
        }
        ev.additional_event_data = d.additional_event_data.map(|mut v| {
            self.redactor.value(&mut v);
            v
        });
        Some(())
    }

    fn http(&self, x: &Exchange<'_>, ev: &mut CloudTrailEvent) -> Option<()> {
        let route = self.openapi.as_ref().and_then(|api| api.route(x.method.as_str(), x.path));
        let event_name = match &route {
            Some(r) => r.operation_id.clone().unwrap_or_else(|| format!("{} {}", x.method, r.template)),
            None => format!("{} {}", x.method, x.path),
        };
        let caller = self.jwt.caller(header(x.request_headers, "authorization"));
        let mut extra = Map::new();
        let identity = match &caller {
            Caller::Anonymous => UserIdentity { identity_type: Some("Unknown".into()), ..Default::default() },
            Caller::Basic { user } => {
                extra.insert("authentication".into(), json!("basic"));
                UserIdentity {
                    identity_type: Some("Unknown".into()),
                    principal_id: Some(user.clone()),
                    user_name: Some(user.clone()),
                    ..Default::default()
                }
            }
            Caller::Jwt { subject, issuer, verified } => {
                extra.insert("authentication".into(), json!("jwt"));
                extra.insert("jwtVerified".into(), json!(verified));
                UserIdentity {
                    identity_type: Some("WebIdentityUser".into()),
                    principal_id: Some(subject.clone()),
                    user_name: Some(subject.clone()),
                    identity_provider: issuer.clone(),
                    ..Default::default()
                }
            }
            Caller::Invalid { reason, claimed_subject } => {
                extra.insert("authentication".into(), json!("jwt"));
                extra.insert("authenticationError".into(), json!("InvalidToken"));
                extra.insert("authenticationErrorMessage".into(), json!(cut(reason, MAX_SHORT_BYTES)));
                if let Some(s) = claimed_subject {
                    extra.insert("claimedSubject".into(), json!(s));
                }
                UserIdentity { identity_type: Some("Unknown".into()), ..Default::default() }
            }
        };
        let users: Vec<&str> = identity.user_name.as_deref().into_iter().collect();
        let level = self.level(x, &event_name, &users);
        if level == Level::None {
            return None;
        }
        ev.user_identity = Some(identity);
        ev.event_source = Some(self.event_source.clone());
        ev.event_name = Some(event_name);
        ev.aws_region = Some(self.region.clone());
        ev.read_only = Some(matches!(*x.method, Method::GET | Method::HEAD | Method::OPTIONS));
        ev.management_event = Some(true);
        ev.event_category = Some("Management".into());
        ev.recipient_account_id = Some(self.account_id.clone());
        if let Some(h) = x.response_headers {
            ev.request_id = ["x-request-id", "x-amzn-requestid", "x-amz-request-id", "request-id"]
                .iter()
                .find_map(|n| header(h, n))
                .map(|v| cut(v, MAX_SHORT_BYTES));
        }
        if let Some(status) = x.status {
            extra.insert("httpStatus".into(), json!(status.as_u16()));
        }
        if level >= Level::Request {
            let mut params = Map::new();
            if let Some(r) = &route
                && !r.params.is_empty()
            {
                let mut p: Value = r.params.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>().into();
                self.redactor.value(&mut p);
                params.insert("path".into(), p);
            }
            if let Some(q) = x.query.filter(|q| !q.is_empty()) {
                params.insert("query".into(), Value::Object(self.redactor.query(q)));
            }
            if let Some(b) =
                body_value(&self.redactor, Some(x.request_headers), x.request_body, x.request_complete, x.request_total)
            {
                params.insert("body".into(), b);
            }
            ev.request_parameters = (!params.is_empty()).then_some(Value::Object(params));
        }
        let response = body_value(
            &self.redactor,
            x.response_headers,
            x.response_body,
            x.response_complete,
            x.response_body.len() as u64,
        );
        match x.status {
            Some(s) if s.is_client_error() || s.is_server_error() => {
                ev.error_code = Some(s.canonical_reason().unwrap_or("Error").replace([' ', '-'], ""));
                let message = response.as_ref().and_then(|v| {
                    ["message", "error_description", "error", "detail", "title"]
                        .iter()
                        .find_map(|k| v.get(*k).and_then(Value::as_str))
                        .map(str::to_string)
                });
                ev.error_message = Some(message.unwrap_or_else(|| format!("HTTP {}", s.as_u16())));
            }
            _ if level >= Level::RequestResponse => ev.response_elements = response,
            _ => {}
        }
        if !extra.is_empty() {
            ev.additional_event_data = Some(Value::Object(extra));
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(trusted: &[&str]) -> Recorder {
        Recorder {
            kind: Kind::Http,
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            event_source: "pets.example.com".into(),
            policy: Policy::default(),
            redactor: Redactor::default(),
            openapi: None,
            jwt: JwtVerifier::new(&Default::default()).unwrap(),
            identities: HashMap::new(),
            trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        let r = recorder(&["10.0.0.1", "10.0.0.2"]);
        assert_eq!(r.source_ip("10.0.0.1".parse().unwrap(), &h), "203.0.113.9");
        assert_eq!(r.source_ip("192.0.2.1".parse().unwrap(), &h), "192.0.2.1");
        assert_eq!(recorder(&[]).source_ip("10.0.0.1".parse().unwrap(), &h), "10.0.0.1");
    }

    #[test]
    fn sigv4_keys_come_from_the_header_or_a_presigned_query() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAJOHN/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=ab"
                .parse()
                .unwrap(),
        );
        assert_eq!(sigv4_access_key(&h, None).as_deref(), Some("AKIAJOHN"));
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAP%2F20240101%2Fus-east-1%2Fs3%2Faws4_request";
        assert_eq!(sigv4_access_key(&HeaderMap::new(), Some(q)).as_deref(), Some("AKIAP"));
        assert_eq!(sigv4_access_key(&HeaderMap::new(), None), None);
    }

    #[test]
    fn an_http_call_is_recorded_with_its_secrets_redacted() {
        let r = recorder(&[]);
        let mut req = HeaderMap::new();
        req.insert("content-type", "application/json".parse().unwrap());
        req.insert("user-agent", "curl/8".parse().unwrap());
        let mut resp = HeaderMap::new();
        resp.insert("x-request-id", "req-1".parse().unwrap());
        let x = Exchange {
            event_id: "e-1",
            event_time: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            peer: "192.0.2.7:5555".parse().unwrap(),
            tls: None,
            method: &Method::POST,
            path: "/users",
            query: Some("api_key=k1&x=1"),
            request_headers: &req,
            request_body: br#"{"name":"Mary","password":"hunter2"}"#,
            request_complete: true,
            request_total: 36,
            status: Some(StatusCode::CREATED),
            response_headers: Some(&resp),
            response_body: br#"{"id":7,"token":"t0k"}"#,
            response_complete: true,
            gateway_error: None,
        };
        let text = r.record(&x).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("t0k") && !text.contains("k1"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["eventName"], "POST /users");
        assert_eq!(v["eventTime"], "2023-11-14T22:13:20Z");
        assert_eq!(v["readOnly"], false);
        assert_eq!(v["requestID"], "req-1");
        assert_eq!(v["requestParameters"]["body"]["name"], "Mary");
        assert_eq!(v["responseElements"]["id"], 7);
        assert_eq!(v["sourceIPAddress"], "192.0.2.7");
        assert_eq!(v["userIdentity"]["type"], "Unknown");
    }

    #[test]
    fn oversized_members_become_markers_and_the_record_stays_storable() {
        let r = recorder(&[]);
        let path = format!("/{}", "p".repeat(5000));
        let big = format!(
            "{{\"items\":[{}]}}",
            vec!["\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""; 4000].join(",")
        );
        let x = Exchange {
            event_id: "e-2",
            event_time: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            peer: "192.0.2.7:5555".parse().unwrap(),
            tls: None,
            method: &Method::PUT,
            path: &path,
            query: None,
            request_headers: &HeaderMap::new(),
            request_body: big.as_bytes(),
            request_complete: true,
            request_total: big.len() as u64,
            status: Some(StatusCode::OK),
            response_headers: None,
            response_body: big.as_bytes(),
            response_complete: true,
            gateway_error: None,
        };
        let text = r.record(&x).unwrap();
        assert!(text.len() <= model::MAX_RECORD_BYTES, "{}", text.len());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["eventName"].as_str().unwrap().len(), 1024);
        assert_eq!(v["requestParameters"]["truncated"], true);
        assert_eq!(v["responseElements"]["truncated"], true);
        assert!(model::Record::parse(text.as_bytes(), || unreachable!()).is_ok());
    }
}
