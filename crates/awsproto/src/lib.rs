//! AWS protocol awareness for the audit gateway (issue 9): from one HTTP exchange with an AWS-compatible
//! service — the request and the response as they crossed the gateway — the fields of the CloudTrail record
//! AWS itself would write for that call. Pure: no I/O, no clock; the gateway adds identity, time, source IP,
//! user agent, TLS details and redaction.
//!
//! The four AWS protocols are recognised from the request alone: query (`Action=` in the form body or the
//! query string), JSON 1.0/1.1 (`X-Amz-Target`), REST-JSON and REST-XML (method + path, per service).

mod model;
mod names;
mod shape;
mod time;
mod xml;

use serde_json::{Map, Value};

use crate::model::{Op, Service};
use crate::shape::{Dir, Tree};

/// One exchange as the gateway saw it. Bodies are the captured prefixes (the gateway caps them);
/// `*_complete` says whether the whole body was captured.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub method: &'a http::Method,
    /// The request target's path, as sent (percent-encoded).
    pub path: &'a str,
    /// The query string without `?`, as sent.
    pub query: Option<&'a str>,
    pub request_headers: &'a http::HeaderMap,
    pub request_body: &'a [u8],
    pub request_body_complete: bool,
    /// The upstream's status; `None` when no response came (unreachable, timeout).
    pub status: Option<http::StatusCode>,
    pub response_headers: Option<&'a http::HeaderMap>,
    pub response_body: &'a [u8],
    pub response_body_complete: bool,
    /// The caller's account when the gateway knows it (from the identity), for resource ARNs.
    pub account_id: Option<&'a str>,
}

/// Management or data event, as CloudTrail classifies the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Management,
    Data,
}

/// Which AWS protocol the request spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Query,
    Json,
    RestJson,
    RestXml,
    /// Not recognisable as an AWS call (no SigV4, unknown service…): the gateway records it generically.
    Unknown,
}

/// A `resources` entry of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub arn: String,
    /// e.g. `AWS::S3::Object`, `AWS::IAM::User`.
    pub resource_type: String,
    pub account_id: Option<String>,
}

/// The AWS fields of the CloudTrail record for one exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub protocol: Protocol,
    /// e.g. `iam.amazonaws.com`, from the SigV4 credential scope's service through the mapping table.
    pub event_source: String,
    /// As CloudTrail names it (e.g. S3 `ListObjectsV2` is `ListObjects`).
    pub event_name: String,
    /// From the SigV4 credential scope.
    pub aws_region: Option<String>,
    /// The access key id of the SigV4 `Authorization` header or `X-Amz-Credential` query parameter.
    pub access_key_id: Option<String>,
    pub read_only: bool,
    pub category: Category,
    /// `requestParameters`, shaped as CloudTrail shapes them for this protocol; `None` = JSON null.
    pub request_parameters: Option<Value>,
    /// `responseElements`; `None` for reads, as AWS writes them, and for failed calls.
    pub response_elements: Option<Value>,
    pub resources: Vec<Resource>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// From the upstream's response headers (`x-amzn-RequestId`, `x-amz-request-id`, …).
    pub request_id: Option<String>,
    /// `apiVersion` where CloudTrail writes one.
    pub api_version: Option<String>,
    /// `additionalEventData` where CloudTrail writes one (e.g. S3's bytesTransferredIn/Out).
    pub additional_event_data: Option<Value>,
}

/// Describe one exchange. Never fails: what cannot be recognised is described as `Protocol::Unknown`
/// with the method and path as the event name.
pub fn describe(exchange: &Exchange<'_>) -> Described {
    let ex = exchange;
    let scope = Scope::of(ex);
    let query_pairs = ex.query.map(form_pairs).unwrap_or_default();
    let form = if is_form(ex) { form_body(ex) } else { Vec::new() };
    // An empty operation (`X-Amz-Target: .`, `Action=`) names no call.
    let target = header(ex.request_headers, "x-amz-target").filter(|t| !t.rsplit('.').next().unwrap_or("").is_empty());
    let action = param(&form, "Action").or_else(|| param(&query_pairs, "Action")).filter(|a| !a.is_empty());
    let version = param(&form, "Version").or_else(|| param(&query_pairs, "Version"));
    let signing = scope.as_ref().map(|s| s.service.as_str());
    let mut candidates: Vec<&'static Service> =
        signing.map(|s| model::by_signing_name(s).collect()).unwrap_or_default();
    // Unsigned query calls (STS AssumeRoleWithWebIdentity, AssumeRoleWithSAML): the Version and the
    // operation name the service.
    if signing.is_none()
        && let (Some(a), Some(v)) = (action, version)
    {
        candidates = model::by_version_and_op(v, a).collect();
    }

    let call = if let Some(target) = target {
        let (prefix, op) = target.rsplit_once('.').unwrap_or(("", target));
        let svc = candidates
            .iter()
            .copied()
            .find(|s| s.target_prefix.as_deref() == Some(prefix))
            .or_else(|| model::by_target_prefix(prefix))
            .or_else(|| candidates.iter().copied().find(|s| s.has_protocol("json")));
        Some(Call { protocol: Protocol::Json, svc, op_name: op.to_owned(), labels: Vec::new(), bucket: None })
    } else if let Some(action) = action {
        let queryish: Vec<_> =
            candidates.iter().copied().filter(|s| s.has_protocol("query") || s.has_protocol("ec2")).collect();
        let svc = queryish
            .iter()
            .copied()
            .find(|s| Some(s.api_version.as_str()) == version && s.op(action).is_some())
            .or_else(|| queryish.iter().copied().find(|s| s.op(action).is_some()))
            // SQS's model now speaks JSON only, but older clients still send its query protocol.
            .or_else(|| candidates.iter().copied().find(|s| s.op(action).is_some()))
            .or_else(|| queryish.first().copied());
        Some(Call { protocol: Protocol::Query, svc, op_name: action.to_owned(), labels: Vec::new(), bucket: None })
    } else {
        rest_call(ex, &candidates, &query_pairs)
    };

    let Some(call) = call else {
        return unknown(ex, scope.as_ref());
    };
    let svc_name = call.svc.map(|s| s.name.as_str()).unwrap_or("");
    let op: Option<&Op> = call.svc.and_then(|s| s.op(&call.op_name));
    let uri = op.map(|o| o.u.as_str()).unwrap_or("/");
    let event_source = match (signing, call.svc) {
        (Some(s), _) => names::event_source(s),
        (None, Some(svc)) => names::event_source(&svc.signing_name),
        (None, None) => String::new(),
    };
    let event_name = names::event_name(svc_name, &call.op_name, uri);
    let read_only = names::read_only(svc_name, &call.op_name);
    let category = names::category(svc_name, &call.op_name, uri);

    let mut request_parameters = request_parameters(ex, &call, op, &form, &query_pairs);
    if let Some(p) = request_parameters.as_mut() {
        hide_as_aws_does(svc_name, p);
        if svc_name == "dynamodb" {
            dynamodb_items_as_aws_writes_them(p, 0);
        }
    }
    let (error_code, error_message) = error(ex, call.protocol);
    let failed = error_code.is_some() || ex.status.is_none();
    let mut response_elements = if failed || (read_only && !names_keep_response(svc_name, &call.op_name)) {
        None
    } else {
        response_elements(ex, &call, op)
    };
    if let Some(r) = response_elements.as_mut() {
        drop_secret_keys(r, 0);
    }
    let resources = resources(ex, &call, scope.as_ref(), request_parameters.as_ref(), response_elements.as_ref());
    let additional_event_data = (svc_name == "s3").then(|| s3_additional(ex, scope.as_ref()));
    Described {
        protocol: call.protocol,
        event_source,
        event_name,
        aws_region: scope.as_ref().map(|s| s.region.clone()),
        access_key_id: scope.as_ref().map(|s| s.access_key.clone()),
        read_only,
        category,
        request_parameters,
        response_elements,
        resources,
        error_code,
        error_message,
        request_id: request_id(ex),
        api_version: (svc_name == "dynamodb").then(|| call.svc.map(|s| s.api_version.clone())).flatten(),
        additional_event_data,
    }
}

/// Which operation of which service the request called.
struct Call {
    protocol: Protocol,
    svc: Option<&'static Service>,
    op_name: String,
    /// REST: the URI labels matched (`Bucket`, `Key+` → member names), decoded.
    labels: Vec<(String, String)>,
    /// S3: the bucket, from the path or the virtual host.
    bucket: Option<String>,
}

/// The SigV4 credential scope: `AKID/20240101/us-east-1/iam/aws4_request`.
#[derive(Debug)]
struct Scope {
    access_key: String,
    region: String,
    service: String,
    /// Presigned (`X-Amz-Credential` in the query) rather than an `Authorization` header.
    in_query: bool,
}

impl Scope {
    fn of(ex: &Exchange<'_>) -> Option<Scope> {
        let from_header = header(ex.request_headers, "authorization")
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|cred| cred.split([',', ' ']).next())
            .and_then(|cred| Scope::parse(cred, false));
        if from_header.is_some() {
            return from_header;
        }
        let q = ex.query?;
        let cred = form_pairs(q).into_iter().find(|(k, _)| k.eq_ignore_ascii_case("X-Amz-Credential"))?.1;
        Scope::parse(&cred, true)
    }

    fn parse(cred: &str, in_query: bool) -> Option<Scope> {
        let parts: Vec<&str> = cred.split('/').collect();
        if parts.len() != 5 || parts[0].is_empty() || parts[3].is_empty() {
            return None;
        }
        Some(Scope {
            access_key: parts[0].to_owned(),
            region: parts[2].to_owned(),
            service: parts[3].to_owned(),
            in_query,
        })
    }
}

fn header<'h>(h: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn param<'p>(pairs: &'p [(String, String)], name: &str) -> Option<&'p str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn is_form(ex: &Exchange<'_>) -> bool {
    let ct = header(ex.request_headers, "content-type").unwrap_or("");
    ct.starts_with("application/x-www-form-urlencoded")
        || (ct.is_empty() && *ex.method == http::Method::POST && ex.request_body.starts_with(b"Action="))
}

/// A form body's pairs. When the gateway captured only a prefix, the last pair may be cut: it is left out
/// rather than recorded as if it were whole.
fn form_body(ex: &Exchange<'_>) -> Vec<(String, String)> {
    let text = match std::str::from_utf8(ex.request_body) {
        Ok(t) => t,
        Err(e) if !ex.request_body_complete => std::str::from_utf8(&ex.request_body[..e.valid_up_to()]).unwrap_or(""),
        Err(_) => return Vec::new(),
    };
    let mut pairs = form_pairs(text);
    if !ex.request_body_complete && !text.ends_with('&') {
        pairs.pop();
    }
    pairs
}

/// `a=1&b=x%20y+z` → pairs, percent-decoded, `+` as space; a key without `=` has an empty value.
fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// Percent-decoding; invalid escapes are kept as written, invalid UTF-8 replaced.
fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SigV4 presigning parameters: never part of requestParameters.
fn is_sigv4_param(k: &str) -> bool {
    const P: &[&str] = &[
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
        "x-amz-signature",
        "x-amz-security-token",
    ];
    P.iter().any(|p| k.eq_ignore_ascii_case(p))
}

// ---- REST: method + URI template ----

/// The best REST match so far: score, service, operation, URI labels.
type RestMatch = (i64, &'static Service, &'static str, Vec<(String, String)>);

fn rest_call(ex: &Exchange<'_>, candidates: &[&'static Service], query: &[(String, String)]) -> Option<Call> {
    let host = header(ex.request_headers, "host").unwrap_or("");
    let mut best: Option<RestMatch> = None;
    for &svc in candidates {
        let protocol_ok = svc.has_protocol("rest-json") || svc.has_protocol("rest-xml");
        if !protocol_ok {
            continue;
        }
        let path = match (svc.name.as_str(), s3_virtual_host_bucket(host)) {
            ("s3", Some(bucket)) => format!("/{bucket}{}", ex.path),
            _ => ex.path.to_owned(),
        };
        let path = path.split('?').next().unwrap_or("");
        for (name, op) in svc.ops() {
            if !op.m.eq_ignore_ascii_case(ex.method.as_str()) {
                continue;
            }
            if let Some((score, labels)) = match_uri(&op.u, &op.rq, path, query, ex.request_headers)
                && best.as_ref().is_none_or(|(s, _, n, _)| score > *s || (score == *s && name.as_str() < *n))
            {
                best = Some((score, svc, name.as_str(), labels));
            }
        }
    }
    let (_, svc, op, labels) = best?;
    let protocol = if svc.has_protocol("rest-xml") { Protocol::RestXml } else { Protocol::RestJson };
    let bucket =
        (svc.name == "s3").then(|| labels.iter().find(|(k, _)| k == "Bucket").map(|(_, v)| v.clone())).flatten();
    Some(Call { protocol, svc: Some(svc), op_name: op.to_owned(), labels, bucket })
}

/// A virtual-hosted S3 bucket: `bucket.s3.amazonaws.com`, `bucket.s3.us-east-1.amazonaws.com`,
/// `bucket.s3-us-west-2.amazonaws.com`, `bucket.localhost:9000`.
fn s3_virtual_host_bucket(host: &str) -> Option<&str> {
    let host =
        host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map(|(h, _)| h).unwrap_or(host);
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    if let Some(at) = host.find(".s3.").or_else(|| host.find(".s3-")) {
        return Some(&host[..at]).filter(|b| !b.is_empty());
    }
    host.strip_suffix(".localhost").filter(|b| !b.is_empty() && !b.contains('.'))
}

/// Match a request against `/{Bucket}/{Key+}?uploads`: a score (more literal segments and query requirements
/// win) and the labels, or `None`.
fn match_uri(
    template: &str,
    required: &[String],
    path: &str,
    query: &[(String, String)],
    headers: &http::HeaderMap,
) -> Option<(i64, Vec<(String, String)>)> {
    let (tpath, tquery) = template.split_once('?').unwrap_or((template, ""));
    let tsegs: Vec<&str> = tpath.trim_start_matches('/').split('/').collect();
    let psegs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut labels = Vec::new();
    let mut score = 0i64;
    let mut pi = 0;
    for (ti, t) in tsegs.iter().enumerate() {
        if let Some(label) = t.strip_prefix('{').and_then(|l| l.strip_suffix("+}")) {
            let rest = psegs.get(pi..).map(|r| r.join("/")).unwrap_or_default();
            if rest.is_empty() {
                return None;
            }
            labels.push((label.to_owned(), decode(&rest, false)));
            pi = psegs.len();
            if ti + 1 != tsegs.len() {
                return None;
            }
            break;
        }
        let p = match psegs.get(pi) {
            Some(p) => *p,
            // A template's trailing `/` matches a path without one.
            None if t.is_empty() && ti + 1 == tsegs.len() => break,
            None => return None,
        };
        if let Some(label) = t.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
            if p.is_empty() {
                return None;
            }
            labels.push((label.to_owned(), decode(p, false)));
        } else if *t == p {
            score += 10;
        } else {
            return None;
        }
        pi += 1;
    }
    // A path's trailing `/` may be absent from the template.
    if pi < psegs.len() && !(pi + 1 == psegs.len() && psegs[pi].is_empty()) {
        return None;
    }
    for req in tquery.split('&').filter(|r| !r.is_empty()) {
        let (k, v) = req.split_once('=').map(|(k, v)| (k, Some(v))).unwrap_or((req, None));
        let found = query.iter().any(|(qk, qv)| qk == k && v.is_none_or(|v| v == qv));
        if !found {
            return None;
        }
        score += 5;
    }
    for r in required {
        let ok = match r.strip_prefix('?') {
            Some(q) => query.iter().any(|(k, _)| k == q),
            None => headers.contains_key(r.as_str()),
        };
        if !ok {
            return None;
        }
        score += 5;
    }
    Some((score, labels))
}

// ---- requestParameters ----

fn request_parameters(
    ex: &Exchange<'_>,
    call: &Call,
    op: Option<&Op>,
    form: &[(String, String)],
    query: &[(String, String)],
) -> Option<Value> {
    let svc = call.svc;
    let input = op.and_then(|o| o.i.as_deref());
    match call.protocol {
        Protocol::Query => {
            let pairs = if form.is_empty() { query } else { form };
            let tree = Tree::from_pairs(
                pairs.iter().filter(|(k, _)| !is_sigv4_param(k)).map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let mut v = match input {
                Some(_) => shape::from_query_call(svc, &call.op_name, input, &tree),
                None => shape::generic_query(&tree, 0),
            };
            if let Value::Object(o) = &mut v {
                o.remove("action");
                o.remove("version");
                if svc.is_some_and(|s| s.is_ec2()) && call.op_name == "RunInstances" {
                    ec2_run_instances(o);
                }
            }
            non_empty(v)
        }
        Protocol::Json => {
            let body: Value = serde_json::from_slice(ex.request_body).ok()?;
            non_empty(shape::from_json(svc, input, &body, Dir::Request, 0))
        }
        Protocol::RestJson | Protocol::RestXml if svc.is_some_and(|s| s.name == "s3") => {
            Some(s3_request_parameters(ex, call, op, query))
        }
        Protocol::RestJson | Protocol::RestXml => {
            let mut out = Map::new();
            let ishape = input.and_then(|i| svc.and_then(|s| s.shape(i)));
            for (label, value) in &call.labels {
                let m = ishape.and_then(|s| {
                    s.m.iter().find(|m| m.loc.as_deref() == Some("uri") && m.ln.as_deref() == Some(label))
                });
                let name = m.map(|m| m.n.as_str()).unwrap_or(label);
                out.insert(shape::decapitalize(name), Value::from(value.clone()));
            }
            for (k, v) in query.iter().filter(|(k, _)| !is_sigv4_param(k)) {
                let m = ishape.and_then(|s| {
                    s.m.iter().find(|m| m.loc.as_deref() == Some("querystring") && m.ln.as_deref() == Some(k))
                });
                let name = m.map(|m| m.n.as_str()).unwrap_or(k);
                out.insert(shape::decapitalize(name), Value::from(v.clone()));
            }
            let payload = ishape.and_then(|s| s.p.as_deref()).and_then(|p| ishape?.m.iter().find(|m| m.n == p));
            let body = if call.protocol == Protocol::RestJson {
                serde_json::from_slice::<Value>(ex.request_body).ok().map(|b| match payload {
                    Some(p) => Value::Object(Map::from_iter([(p.n.clone(), b)])),
                    None => b,
                })
            } else {
                xml::parse(ex.request_body).map(|root| match payload {
                    Some(p) => Value::Object(Map::from_iter([(
                        shape::decapitalize(&p.n),
                        shape::from_xml(svc, Some(&p.s), &root, Dir::Request, 0),
                    )])),
                    None => shape::from_xml(svc, input, &root, Dir::Request, 0),
                })
            };
            if let Some(body) = body {
                let converted = if call.protocol == Protocol::RestJson {
                    shape::from_json(svc, input, &body, Dir::Request, 0)
                } else {
                    body
                };
                if let Value::Object(o) = converted {
                    out.extend(o);
                }
            }
            non_empty(Value::Object(out))
        }
        Protocol::Unknown => None,
    }
}

/// CloudTrail groups RunInstances' image and counts into `instancesSet`.
fn ec2_run_instances(o: &mut Map<String, Value>) {
    let mut item = Map::new();
    for k in ["imageId", "minCount", "maxCount"] {
        if let Some(v) = o.remove(k) {
            item.insert(k.to_owned(), v);
        }
    }
    if !item.is_empty() {
        o.insert("instancesSet".to_owned(), serde_json::json!({ "items": [Value::Object(item)] }));
    }
}

/// S3 as CloudTrail writes it: `bucketName`, `Host`, `key`, the query parameters under their wire names
/// (a flag such as `?acl` as `""`), and an XML configuration body under its root element's name.
fn s3_request_parameters(ex: &Exchange<'_>, call: &Call, op: Option<&Op>, query: &[(String, String)]) -> Value {
    let mut out = Map::new();
    if let Some(b) = &call.bucket {
        out.insert("bucketName".to_owned(), Value::from(b.clone()));
    }
    if let Some(h) = header(ex.request_headers, "host") {
        out.insert("Host".to_owned(), Value::from(h));
    }
    if let Some((_, k)) = call.labels.iter().find(|(l, _)| l == "Key") {
        out.insert("key".to_owned(), Value::from(k.clone()));
    }
    for (k, v) in query.iter().filter(|(k, _)| !is_sigv4_param(k) && k != "x-id") {
        out.insert(k.clone(), Value::from(v.clone()));
    }
    // The operation's own `x-amz-*` request headers, under their names (`x-amz-copy-source`,
    // `x-amz-server-side-encryption`, `x-amz-acl`…): not signing, checksums or a customer-supplied key.
    let ishape = op.and_then(|o| o.i.as_deref()).and_then(|i| call.svc.and_then(|s| s.shape(i)));
    for m in ishape.map(|s| s.m.as_slice()).unwrap_or_default() {
        let Some(name) = m.ln.as_deref().filter(|_| m.loc.as_deref() == Some("header")) else { continue };
        let lower = name.to_ascii_lowercase();
        let skip = !lower.starts_with("x-amz-")
            || lower.starts_with("x-amz-checksum-")
            || lower == "x-amz-sdk-checksum-algorithm"
            || lower.ends_with("-customer-key")
            || lower == "x-amz-copy-source-server-side-encryption-customer-key";
        if !skip && let Some(v) = header(ex.request_headers, &lower) {
            out.insert(lower, Value::from(v));
        }
    }
    // A bucket policy is JSON, written parsed.
    if call.op_name == "PutBucketPolicy"
        && ex.request_body_complete
        && let Ok(policy) = serde_json::from_slice::<Value>(ex.request_body)
    {
        out.insert("bucketPolicy".to_owned(), policy);
    }
    // Object bodies are data, not parameters; configuration bodies are XML documents.
    let object_body = op.is_some_and(|o| o.u.contains("{Key+}"))
        && !matches!(
            call.op_name.as_str(),
            "CompleteMultipartUpload"
                | "RestoreObject"
                | "PutObjectTagging"
                | "PutObjectAcl"
                | "PutObjectRetention"
                | "PutObjectLegalHold"
                | "SelectObjectContent"
        );
    if !object_body
        && ex.request_body_complete
        && ex.request_body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
        && let Some(root) = xml::parse(ex.request_body)
    {
        out.insert(root.name.clone(), shape::raw_xml(&root, 0));
    }
    Value::Object(out)
}

fn non_empty(v: Value) -> Option<Value> {
    match &v {
        Value::Null => None,
        Value::Object(o) if o.is_empty() => None,
        _ => Some(v),
    }
}

/// Values AWS itself never writes into a record: the secret is replaced by CloudTrail's marker.
const HIDDEN: &[(&str, &str)] = &[
    ("secretsmanager", "secretString"),
    ("secretsmanager", "secretBinary"),
    ("ssm", "value"),
    ("ssm", "parameters"),
    ("iam", "password"),
    ("iam", "newPassword"),
    ("iam", "oldPassword"),
    ("sts", "sAMLAssertion"),
    ("sts", "webIdentityToken"),
];

fn hide_as_aws_does(service: &str, params: &mut Value) {
    if let Value::Object(o) = params {
        for (s, k) in HIDDEN {
            if *s == service
                && let Some(v) = o.get_mut(*k)
            {
                *v = Value::from("HIDDEN_DUE_TO_SECURITY_REASONS");
            }
        }
    }
}

/// DynamoDB's classic API calls are logged without non-key attribute values: an `item` becomes the list of
/// its attribute names, a `key` its attribute values without their type wrappers (`{"id":{"S":"o-1"}}` →
/// `{"id":"o-1"}`), and `expressionAttributeValues` is left out.
fn dynamodb_items_as_aws_writes_them(v: &mut Value, depth: usize) {
    if depth > 32 {
        return;
    }
    match v {
        Value::Object(o) => {
            o.remove("expressionAttributeValues");
            for (k, x) in o.iter_mut() {
                match (k.as_str(), &*x) {
                    ("item", Value::Object(item)) => {
                        *x = Value::Array(item.keys().cloned().map(Value::from).collect());
                    }
                    ("key", Value::Object(key)) => {
                        let flat = key
                            .iter()
                            .map(|(name, typed)| {
                                let inner = typed.as_object().and_then(|t| t.values().next()).cloned();
                                (name.clone(), inner.unwrap_or_else(|| typed.clone()))
                            })
                            .collect();
                        *x = Value::Object(flat);
                    }
                    _ => dynamodb_items_as_aws_writes_them(x, depth + 1),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| dynamodb_items_as_aws_writes_them(x, depth + 1)),
        _ => {}
    }
}

/// CloudTrail never writes a secret access key (STS credentials, IAM CreateAccessKey): the member is left out.
fn drop_secret_keys(v: &mut Value, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(o) => {
            o.remove("secretAccessKey");
            o.values_mut().for_each(|x| drop_secret_keys(x, depth + 1));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| drop_secret_keys(x, depth + 1)),
        _ => {}
    }
}

// ---- responseElements ----

/// Read-only calls whose responseElements CloudTrail still writes (STS's credentials calls).
fn names_keep_response(service: &str, op: &str) -> bool {
    service == "sts"
        && matches!(
            op,
            "AssumeRole"
                | "AssumeRoleWithSAML"
                | "AssumeRoleWithWebIdentity"
                | "GetSessionToken"
                | "GetFederationToken"
        )
}

fn response_elements(ex: &Exchange<'_>, call: &Call, op: Option<&Op>) -> Option<Value> {
    let svc = call.svc;
    let output = op.and_then(|o| o.o.as_deref());
    match call.protocol {
        Protocol::Query => {
            let root = xml::parse(ex.response_body)?;
            if svc.is_some_and(|s| s.is_ec2()) {
                return non_empty(shape::from_xml(svc, output, &root, Dir::Response, 0));
            }
            let result = op
                .and_then(|o| o.rw.as_deref())
                .and_then(|rw| root.child(rw))
                .or_else(|| root.children.iter().find(|c| c.name.ends_with("Result")))?;
            non_empty(match output {
                Some(_) => shape::from_xml(svc, output, result, Dir::Response, 0),
                None => shape::generic_xml(result, false, 0),
            })
        }
        Protocol::Json | Protocol::RestJson => {
            let body: Value = serde_json::from_slice(ex.response_body).ok()?;
            non_empty(shape::from_json(svc, output, &body, Dir::Response, 0))
        }
        Protocol::RestXml => {
            let mut out = Map::new();
            let oshape = output.and_then(|o| svc.and_then(|s| s.shape(o)));
            let s3 = svc.is_some_and(|s| s.name == "s3");
            if let (Some(sh), Some(h)) = (oshape, ex.response_headers) {
                for m in sh.m.iter().filter(|m| m.loc.as_deref() == Some("header")) {
                    let Some(name) = m.ln.as_deref() else { continue };
                    // S3's records carry its `x-amz-*` answers (version id, encryption), not the ETag,
                    // checksums or Location.
                    let lower = name.to_ascii_lowercase();
                    if name.eq_ignore_ascii_case("Location")
                        || (s3 && (!lower.starts_with("x-amz-") || lower.starts_with("x-amz-checksum-")))
                    {
                        continue;
                    }
                    if let Some(v) = header(h, name) {
                        out.insert(name.to_owned(), Value::from(v));
                    }
                }
            }
            if let Some(root) = xml::parse(ex.response_body)
                && let Value::Object(o) = shape::from_xml(svc, output, &root, Dir::Response, 0)
            {
                out.extend(o);
            }
            non_empty(Value::Object(out))
        }
        Protocol::Unknown => None,
    }
}

// ---- errors, request id ----

fn error(ex: &Exchange<'_>, protocol: Protocol) -> (Option<String>, Option<String>) {
    let Some(status) = ex.status else { return (None, None) };
    let body = ex.response_body;
    let s3_redirect = status.is_redirection() && status != http::StatusCode::NOT_MODIFIED && body.starts_with(b"<");
    if status.as_u16() < 400 && !s3_redirect {
        return (None, None);
    }
    let headers = ex.response_headers;
    let header_type = headers.and_then(|h| header(h, "x-amzn-errortype")).map(clean_error_type);
    if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) {
        let code = o
            .get("__type")
            .or_else(|| o.get("code"))
            .or_else(|| o.get("Code"))
            .and_then(Value::as_str)
            .map(clean_error_type)
            .or(header_type.clone());
        let message = ["message", "Message", "errorMessage"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        if code.is_some() {
            return (code, message);
        }
    }
    if let Some(root) = xml::parse(body)
        && let Some(err) = root.find("Error")
    {
        let code = err.child("Code").map(|c| c.text.trim().to_owned()).filter(|c| !c.is_empty());
        let message = err.child("Message").map(|c| c.text.trim().to_owned()).filter(|c| !c.is_empty());
        if code.is_some() {
            return (code, message);
        }
    }
    let _ = protocol;
    let code = header_type.unwrap_or_else(|| match status.as_u16() {
        403 => "AccessDenied".to_owned(),
        404 => "NotFound".to_owned(),
        _ => status.canonical_reason().map(|r| r.replace(' ', "")).unwrap_or_else(|| status.as_str().to_owned()),
    });
    (Some(code), None)
}

/// `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException` and
/// `ResourceNotFoundException:http://internal.amazon.com/…` → `ResourceNotFoundException`.
fn clean_error_type(t: &str) -> String {
    let t = t.rsplit('#').next().unwrap_or(t);
    t.split(':').next().unwrap_or(t).trim().to_owned()
}

fn request_id(ex: &Exchange<'_>) -> Option<String> {
    if let Some(h) = ex.response_headers {
        for name in ["x-amzn-requestid", "x-amz-request-id", "x-amz-requestid"] {
            if let Some(v) = header(h, name) {
                return Some(v.to_owned());
            }
        }
    }
    let root = xml::parse(ex.response_body)?;
    ["RequestId", "requestId", "RequestID"]
        .iter()
        .find_map(|n| root.find(n))
        .map(|e| e.text.trim().to_owned())
        .filter(|s| !s.is_empty())
}

// ---- resources ----

fn resources(
    ex: &Exchange<'_>,
    call: &Call,
    scope: Option<&Scope>,
    params: Option<&Value>,
    response: Option<&Value>,
) -> Vec<Resource> {
    let account = ex.account_id.map(str::to_owned);
    let region = scope.map(|s| s.region.as_str()).unwrap_or("");
    let acct = ex.account_id.unwrap_or("");
    let svc = call.svc.map(|s| s.name.as_str()).unwrap_or("");
    let get = |k: &str| params.and_then(|p| p.get(k)).and_then(Value::as_str);
    let res = |arn: String, t: &str| Resource { arn, resource_type: t.to_owned(), account_id: account.clone() };
    let mut out = Vec::new();
    match svc {
        "s3" => {
            if let Some(bucket) = &call.bucket {
                if let Some((_, key)) = call.labels.iter().find(|(l, _)| l == "Key") {
                    out.push(res(format!("arn:aws:s3:::{bucket}/{key}"), "AWS::S3::Object"));
                }
                out.push(res(format!("arn:aws:s3:::{bucket}"), "AWS::S3::Bucket"));
            }
        }
        "sts" if call.op_name.starts_with("AssumeRole") => {
            if let Some(role) = get("roleArn") {
                let acct = role.split(':').nth(4).map(str::to_owned);
                out.push(Resource {
                    arn: role.to_owned(),
                    resource_type: "AWS::IAM::Role".to_owned(),
                    account_id: acct,
                });
            }
        }
        "lambda" => {
            if let Some(f) = get("functionName") {
                let arn = if f.starts_with("arn:") {
                    f.to_owned()
                } else {
                    format!("arn:aws:lambda:{region}:{acct}:function:{f}")
                };
                out.push(res(arn, "AWS::Lambda::Function"));
            }
        }
        "dynamodb" => {
            if let Some(t) = get("tableName") {
                let arn = if t.starts_with("arn:") {
                    t.to_owned()
                } else {
                    format!("arn:aws:dynamodb:{region}:{acct}:table/{t}")
                };
                out.push(res(arn, "AWS::DynamoDB::Table"));
            }
        }
        "kms" => {
            let key = get("keyId").map(str::to_owned).or_else(|| {
                response.and_then(|r| r.pointer("/keyMetadata/arn")).and_then(Value::as_str).map(str::to_owned)
            });
            if let Some(k) = key
                && !k.starts_with("alias/")
            {
                let arn = if k.starts_with("arn:") { k } else { format!("arn:aws:kms:{region}:{acct}:key/{k}") };
                out.push(res(arn, "AWS::KMS::Key"));
            }
        }
        _ => {}
    }
    out
}

/// S3's additionalEventData: signature version, how the request was authenticated, bytes in and out, and
/// the `x-amz-id-2` host id. (`CipherSuite` and `tlsDetails` are the gateway's: it knows the listener.)
fn s3_additional(ex: &Exchange<'_>, scope: Option<&Scope>) -> Value {
    let len = |h: Option<&http::HeaderMap>, body: &[u8], complete: bool| -> u64 {
        h.and_then(|h| header(h, "content-length")).and_then(|v| v.parse().ok()).unwrap_or(if complete {
            body.len() as u64
        } else {
            0
        })
    };
    let mut out = Map::new();
    if let Some(s) = scope {
        out.insert("SignatureVersion".to_owned(), Value::from("SigV4"));
        out.insert(
            "AuthenticationMethod".to_owned(),
            Value::from(if s.in_query { "QueryString" } else { "AuthHeader" }),
        );
    }
    let bytes_in = match header(ex.request_headers, "x-amz-decoded-content-length").and_then(|v| v.parse::<u64>().ok())
    {
        Some(n) => n,
        None => len(Some(ex.request_headers), ex.request_body, ex.request_body_complete),
    };
    out.insert("bytesTransferredIn".to_owned(), Value::from(bytes_in));
    let bytes_out = if *ex.method == http::Method::HEAD {
        0
    } else {
        len(ex.response_headers, ex.response_body, ex.response_body_complete)
    };
    out.insert("bytesTransferredOut".to_owned(), Value::from(bytes_out));
    if let Some(id2) = ex.response_headers.and_then(|h| header(h, "x-amz-id-2")) {
        out.insert("x-amz-id-2".to_owned(), Value::from(id2));
    }
    let sse = match ex.response_headers.and_then(|h| header(h, "x-amz-server-side-encryption")) {
        Some("AES256") => Some("SSE_S3"),
        Some("aws:kms") => Some("SSE_KMS"),
        Some("aws:kms:dsse") => Some("DSSE_KMS"),
        _ => None,
    };
    if let Some(sse) = sse {
        out.insert("SSEApplied".to_owned(), Value::from(sse));
    }
    Value::Object(out)
}

fn unknown(ex: &Exchange<'_>, scope: Option<&Scope>) -> Described {
    let (error_code, error_message) = error(ex, Protocol::Unknown);
    Described {
        protocol: Protocol::Unknown,
        event_source: scope.map(|s| names::event_source(&s.service)).unwrap_or_default(),
        event_name: format!("{} {}", ex.method, ex.path),
        aws_region: scope.map(|s| s.region.clone()),
        access_key_id: scope.map(|s| s.access_key.clone()),
        read_only: matches!(*ex.method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS),
        category: Category::Management,
        request_parameters: None,
        response_elements: None,
        resources: Vec::new(),
        error_code,
        error_message,
        request_id: request_id(ex),
        api_version: None,
        additional_event_data: None,
    }
}

/// Parses every service's operations and shapes now rather than on the first call to each, so no call
/// pays for it (the first EC2 call takes tens of milliseconds otherwise). Costs about 20 MB more memory.
pub fn preload_all() {
    for s in &model::table().services {
        let _ = s.ops();
    }
}

/// The botocore version the embedded service table was generated from. Decodes the table on first use
/// (tens of milliseconds): a gateway calls this at startup so the first request does not pay for it.
pub fn model_version() -> &'static str {
    &model::table().botocore
}
