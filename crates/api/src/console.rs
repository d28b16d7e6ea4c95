//! The web console over HTTP, on the API's listener. Unsigned browser GETs of a page (`/`, `/events`,
//! `/events/<id>`, `/trails`, `/insights`, `/signin`) get the console's HTML shell; `/console/assets/<name>`
//! its embedded files (ETag, revalidated); `/console/api/signin|signout|session` its sessions; and
//! `/console/api/call/<Operation>` (POST, the CloudTrail JSON body) and `/console/api/event-counts` (GET, the
//! native counts' query) its data calls, which enter the one operation chain (`chain::serve_console`)
//! authenticated by the session cookie instead of SigV4: authorized by the principal's role and policy,
//! rate-limited, audited with `sessionCredentialFromConsole`, answered by the one error table.
//!
//! Every console answer carries the security headers (CSP without inline script, frame-ancestors 'none',
//! nosniff, Referrer-Policy). Every data call and sign-out needs the session's CSRF token in
//! `X-Opentrail-Csrf` and, when the browser sends one (always on POST), an `Origin` equal to this server's.
//! Sign-ins, failed ones included, are recorded as `AwsConsoleSignIn` records (docs/console.md).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use service::Principal;

use crate::operation::{Operation, Requested};
use crate::{App, TlsInfo, header_str};

/// The session cookie's name.
pub const COOKIE: &str = "opentrail_session";
/// The cookie carrying the CSRF token to the page (readable by it; the server reads only the header).
pub const CSRF_COOKIE: &str = "opentrail_csrf";
/// The header carrying the session's CSRF token.
pub const CSRF_HEADER: &str = "x-opentrail-csrf";
/// Hard-coded: the largest sign-in body (two short strings).
const MAX_SIGNIN_BYTES: usize = 16 * 1024;
/// Hard-coded: the security headers of every console answer.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// The operations the console calls (and no other: the console is no way around the API).
const CONSOLE_OPERATIONS: &[Operation] = &[
    Operation::LookupEvents,
    Operation::DescribeTrails,
    Operation::GetTrail,
    Operation::ListTrails,
    Operation::GetTrailStatus,
    Operation::GetEventSelectors,
    Operation::GetInsightSelectors,
    Operation::StartLogging,
    Operation::StopLogging,
];

fn is_page(path: &str) -> bool {
    matches!(path, "/" | "/signin" | "/events" | "/trails" | "/insights")
        || path.strip_prefix("/events/").is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Signed with SigV4 (a header or a presigned query): an API call, never the console's.
fn signed(parts: &Parts) -> bool {
    parts.headers.contains_key(header::AUTHORIZATION)
        || parts.uri.query().is_some_and(|q| q.contains("X-Amz-Credential") || q.contains("X-Amz-Signature"))
}

/// Whether the console answers this request rather than the API: anything under `/console/`, and a browser's
/// unsigned GET of a page (its `Accept` names `text/html`, which no AWS client sends).
pub(crate) fn is_console_request(parts: &Parts) -> bool {
    if signed(parts) {
        return false;
    }
    let path = parts.uri.path();
    if path == "/console" || path.starts_with("/console/") {
        return true;
    }
    (parts.method == Method::GET || parts.method == Method::HEAD)
        && is_page(path)
        && header_str(&parts.headers, "accept").is_some_and(|a| a.contains("text/html"))
}

pub(crate) async fn serve(
    app: &Arc<App>,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    request_id: &str,
    parts: Parts,
    body: Body,
) -> Response {
    let path = parts.uri.path().to_string();
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let post = parts.method == Method::POST;
    let mut resp = if get && is_page(&path) {
        asset_response(::console::index_html(), &parts.headers)
    } else if get && let Some(name) = path.strip_prefix("/console/assets/") {
        match ::console::asset(name) {
            Some(a) => asset_response(a, &parts.headers),
            None => error(StatusCode::NOT_FOUND, "NotFound", format!("no console file named '{name}'")),
        }
    } else if get && (path == "/console" || path == "/console/") {
        let mut r = StatusCode::SEE_OTHER.into_response();
        r.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/"));
        r
    } else if post && path == "/console/api/signin" {
        sign_in(app, peer, tls.is_some(), &parts, body).await
    } else if post && path == "/console/api/signout" {
        sign_out(app, tls.is_some(), &parts)
    } else if get && path == "/console/api/session" {
        match session_of(app, &parts, false) {
            Ok((session, principal)) => json_answer(StatusCode::OK, session_info(app, &session, &principal)),
            Err(r) => *r,
        }
    } else if let Some(requested) = data_call(&parts.method, &path) {
        match requested {
            Err(r) => *r,
            Ok(requested) => match session_of(app, &parts, true) {
                Err(r) => *r,
                Ok((session, principal)) => {
                    let signed_in = model::EventTime(session.created_ms);
                    let mut r = crate::chain::serve_console(
                        app, peer, tls, request_id, &requested, principal, signed_in, parts, body,
                    )
                    .await;
                    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    r
                }
            },
        }
    } else {
        error(StatusCode::NOT_FOUND, "NotFound", format!("the console has no {} {path}", parts.method))
    };
    security_headers(resp.headers_mut());
    resp
}

/// The operation a console data call names: `POST /console/api/call/<Operation>` (one of
/// [`CONSOLE_OPERATIONS`]) or `GET /console/api/event-counts`; `None` when the path is neither.
fn data_call(method: &Method, path: &str) -> Option<Result<Requested, Refused>> {
    let known = |op| Ok(Requested::Known { op, event_id: None, s3: None });
    if path == "/console/api/event-counts" {
        return Some(if method == Method::GET {
            known(Operation::GetEventCounts)
        } else {
            Err(refused(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "event counts are read with GET"))
        });
    }
    let name = path.strip_prefix("/console/api/call/")?;
    if method != Method::POST {
        return Some(Err(refused(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "console calls are POSTs")));
    }
    Some(match CONSOLE_OPERATIONS.iter().find(|op| op.name() == name) {
        Some(op) => known(*op),
        None => Err(refused(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("the console does not call '{name}'"),
        )),
    })
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

/// An embedded file, or 304 when the browser's copy is current.
fn asset_response(a: &::console::Asset, headers: &HeaderMap) -> Response {
    let etag = HeaderValue::from_str(a.etag()).unwrap_or(HeaderValue::from_static("\"\""));
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim() == a.etag() || t.trim() == "*"));
    let mut resp = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { a.bytes.into_response() };
    let h = resp.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    }
    h.insert(header::ETAG, etag);
    // Always revalidated: the ETag makes that a 304, and an upgraded binary is picked up at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_answer(status, json!({"__type": code, "message": message.into()}))
}

/// A console request refused before it reached the chain: the whole answer (boxed: it is large).
type Refused = Box<Response>;

fn refused(status: StatusCode, code: &str, message: impl Into<String>) -> Refused {
    Box::new(error(status, code, message))
}

/// This server's origin as the browser names it: the scheme of the connection and the Host header.
fn own_origin(parts: &Parts, secure: bool) -> Option<String> {
    let host = header_str(&parts.headers, "host")?;
    Some(format!("{}://{host}", if secure { "https" } else { "http" }))
}

/// `Origin`, when sent, must be this server's; a POST must send it (every current browser does).
fn check_origin(parts: &Parts) -> Result<(), Refused> {
    let secure = parts.extensions.get::<TlsInfo>().is_some();
    let refuse = |why: &str| Err(refused(StatusCode::FORBIDDEN, "CrossOriginRequest", why.to_string()));
    match header_str(&parts.headers, "origin") {
        None if parts.method == Method::POST => refuse("a console call must come from the console's own page"),
        None => Ok(()),
        Some(o) if Some(o.to_string()) == own_origin(parts, secure) => Ok(()),
        Some(o) => refuse(&format!("a console call from another origin ({o}) is refused")),
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The caller's live session and its principal; with `csrf`, its token and Origin checked too.
fn session_of(app: &App, parts: &Parts, csrf: bool) -> Result<(::console::Session, Principal), Refused> {
    let signed_out = |msg: &str| refused(StatusCode::UNAUTHORIZED, "NotSignedIn", msg.to_string());
    let Some(id) = cookie_value(&parts.headers, COOKIE) else {
        return Err(signed_out("sign in to use the console"));
    };
    let session = match app.console_sessions.get(id, (app.clock)().0) {
        Ok(s) => s,
        Err(::console::SessionError::Expired) => {
            return Err(refused(StatusCode::UNAUTHORIZED, "SessionExpired", "your session has expired: sign in again"));
        }
        Err(::console::SessionError::Unknown) => {
            return Err(signed_out("your session has ended (signed out, or the server restarted): sign in again"));
        }
    };
    let Some(principal) = app.principals.get(&session.access_key_id).cloned() else {
        app.console_sessions.remove(&session.id);
        return Err(signed_out("the principal of this session is no longer configured: sign in again"));
    };
    if csrf {
        check_origin(parts)?;
        let given = header_str(&parts.headers, CSRF_HEADER).unwrap_or("");
        if !::console::constant_time_eq(given.as_bytes(), session.csrf_token.as_bytes()) {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "InvalidCsrfToken",
                format!("the call lacks this session's token in {CSRF_HEADER}"),
            ));
        }
    }
    Ok((session, principal))
}

fn role_name(r: service::Role) -> &'static str {
    match r {
        service::Role::Admin => "admin",
        service::Role::Writer => "writer",
        service::Role::Auditor => "auditor",
    }
}

/// What the console shows of its session, and the CSRF token it sends back.
fn session_info(app: &App, s: &::console::Session, p: &Principal) -> Value {
    let allowed = |action: &str| matches!(p.authorize(action), service::Decision::Allow);
    json!({
        "user": s.user.clone().or_else(|| p.user_name.clone()).unwrap_or_else(|| p.arn.clone()),
        "consoleUser": s.user,
        "arn": p.arn,
        "principalType": p.principal_type,
        "accessKeyId": p.access_key_id,
        "role": role_name(p.role),
        "canStartStopLogging": allowed("cloudtrail:StartLogging") && allowed("cloudtrail:StopLogging"),
        "csrfToken": s.csrf_token,
        "signedInAt": model::EventTime(s.created_ms).to_rfc3339(),
        "expiresAt": model::EventTime(s.expires_ms).to_rfc3339(),
        "accountId": app.config.account_id,
        "region": app.config.region,
    })
}

/// The CSRF token as a cookie the page can read (not HttpOnly), so a freshly loaded page sends its first call
/// without waiting for `/console/api/session`; the server checks the header, never this cookie.
fn csrf_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{CSRF_COOKIE}={value}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}"))
        .unwrap_or(HeaderValue::from_static("opentrail_csrf=; Path=/; Max-Age=0"))
}

fn session_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .unwrap_or(HeaderValue::from_static("opentrail_session=; Path=/; Max-Age=0"))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInBody {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    user: Option<String>,
    password: Option<String>,
}

/// `POST /console/api/signin`: access key ID + secret access key, or console user + password. Every
/// attempt is recorded (durably, before the answer); a writer cannot sign in (it cannot read).
async fn sign_in(app: &Arc<App>, peer: SocketAddr, secure: bool, parts: &Parts, body: Body) -> Response {
    if let Err(r) = check_origin(parts) {
        return *r;
    }
    let bytes = match axum::body::to_bytes(body, MAX_SIGNIN_BYTES).await {
        Ok(b) => b,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "ValidationException", "the sign-in form is too large"),
    };
    let form: SignInBody = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, "ValidationException", format!("the sign-in form: {e}")),
    };
    // Who, and whether the secret matched; the principal is known even when the secret is wrong.
    let (principal, user, matched, wrong) = match (form.access_key_id, form.secret_access_key, form.user, form.password)
    {
        (Some(key), Some(secret), None, None) if !key.is_empty() && !secret.is_empty() => {
            let p = app.principals.get(key.trim()).cloned();
            let expected = p.as_ref().map_or("", |p| p.secret_access_key.as_str());
            let ok = ::console::constant_time_eq(expected.as_bytes(), secret.as_bytes()) && p.is_some();
            (p, None, ok, "the access key ID or secret access key is wrong")
        }
        (None, None, Some(name), Some(password)) if !name.is_empty() && !password.is_empty() => {
            let cfg = app.config.console.users.iter().find(|u| u.name == name).cloned();
            let hash = cfg.as_ref().map(|u| u.password_hash.clone());
            let ok =
                crate::blocking(move || ::console::verify_password(hash.as_deref(), &password)).await.unwrap_or(false);
            let p = cfg.as_ref().and_then(|u| app.principals.get(&u.principal).cloned());
            (p, Some(name).filter(|_| cfg.is_some()), ok, "the user name or password is wrong")
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "sign in with an access key ID and secret access key, or a user name and password",
            );
        }
    };
    let denied = match (&principal, matched) {
        (Some(p), true) => match p.authorize("cloudtrail:LookupEvents") {
            service::Decision::Allow => None,
            service::Decision::Deny { message } => Some(message),
        },
        _ => None,
    };
    let (failure, status, code, message) = match (&principal, matched, &denied) {
        (Some(_), true, None) => (None, StatusCode::OK, "", String::new()),
        (Some(_), true, Some(why)) => (
            Some(format!("Access denied: {why}")),
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "this principal cannot read the event history, so it cannot sign in to the console".to_string(),
        ),
        // AWS's words for an unknown user and a wrong password.
        (None, _, _) => (
            Some("No username found in supplied account".into()),
            StatusCode::UNAUTHORIZED,
            "InvalidCredentials",
            wrong.to_string(),
        ),
        (Some(_), false, _) => {
            (Some("Failed authentication".into()), StatusCode::UNAUTHORIZED, "InvalidCredentials", wrong.to_string())
        }
    };
    let now = (app.clock)();
    let record = crate::audit::SignIn {
        principal: principal.as_ref(),
        console_user: user.as_deref(),
        error: failure.as_deref(),
        login_to: own_origin(parts, secure).map(|o| format!("{o}/")).unwrap_or_default(),
        source_ip: crate::source_ip(&app.config.trusted_proxies, peer.ip(), &parts.headers),
        user_agent: header_str(&parts.headers, "user-agent").map(str::to_string),
        now,
    };
    let durable = match crate::audit::sign_in_record(app, &record) {
        Ok(item) => match app.store.submit_audit(item) {
            Ok(pending) => pending.wait().await.map_err(crate::ApiError::from),
            Err(e) => Err(crate::ApiError::from(e)),
        },
        Err(e) => Err(e),
    };
    let metrics = app.store.metrics();
    if let Err(e) = durable {
        metrics.record_audit(service::AuditOutcome::Refused);
        tracing::warn!(error = %e.message, "console sign-in refused: its record cannot be written");
        return error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "sign-in is unavailable; try again later");
    }
    metrics.record_audit(service::AuditOutcome::Durable);
    metrics.record_request("ConsoleLogin", if failure.is_none() { "200" } else { code });
    tracing::info!(
        principal = principal.as_ref().map_or("-", |p| p.arn.as_str()),
        user = user.as_deref().unwrap_or("-"),
        success = failure.is_none(),
        "console sign-in"
    );
    let Some(p) = principal.filter(|_| failure.is_none()) else {
        return error(status, code, message);
    };
    let session = app.console_sessions.create(&p.access_key_id, user.as_deref(), now.0);
    let mut resp = json_answer(StatusCode::OK, session_info(app, &session, &p));
    let max_age = app.console_sessions.lifetime_secs();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, session_cookie(&session.id, max_age, secure));
    h.append(header::SET_COOKIE, csrf_cookie(&session.csrf_token, max_age, secure));
    resp
}

/// `POST /console/api/signout`: ends the session (with its CSRF token) and clears the cookie.
fn sign_out(app: &App, secure: bool, parts: &Parts) -> Response {
    let (session, _) = match session_of(app, parts, true) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    app.console_sessions.remove(&session.id);
    let mut resp = json_answer(StatusCode::OK, json!({"signedOut": true}));
    resp.headers_mut().append(header::SET_COOKIE, session_cookie("", 0, secure));
    resp.headers_mut().append(header::SET_COOKIE, csrf_cookie("", 0, secure));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn pages_go_to_the_console_only_for_unsigned_browser_gets() {
        let html = [("accept", "text/html,application/xhtml+xml")];
        assert!(is_console_request(&parts(Method::GET, "/", &html)));
        assert!(is_console_request(&parts(Method::GET, "/events?EventName=CreateUser", &html)));
        assert!(is_console_request(&parts(Method::GET, "/events/3b5f", &html)));
        assert!(!is_console_request(&parts(Method::GET, "/events/a/b", &html)), "an S3 key, not a page");
        assert!(!is_console_request(&parts(Method::GET, "/", &[])), "an S3 ListBuckets");
        assert!(!is_console_request(&parts(Method::POST, "/", &html)), "the CloudTrail API");
        let signed = [("accept", "text/html"), ("authorization", "AWS4-HMAC-SHA256 Credential=x")];
        assert!(!is_console_request(&parts(Method::GET, "/events", &signed)));
        assert!(!is_console_request(&parts(Method::GET, "/console/x?X-Amz-Credential=a", &[])));
        assert!(is_console_request(&parts(Method::POST, "/console/api/signin", &[])));
        assert!(!is_console_request(&parts(Method::GET, "/healthz", &html)));
    }

    #[test]
    fn only_the_consoles_operations_are_callable() {
        assert!(matches!(
            data_call(&Method::POST, "/console/api/call/LookupEvents"),
            Some(Ok(Requested::Known { op: Operation::LookupEvents, .. }))
        ));
        assert!(matches!(data_call(&Method::POST, "/console/api/call/DeleteTrail"), Some(Err(_))));
        assert!(matches!(data_call(&Method::GET, "/console/api/call/LookupEvents"), Some(Err(_))));
        assert!(matches!(
            data_call(&Method::GET, "/console/api/event-counts"),
            Some(Ok(Requested::Known { op: Operation::GetEventCounts, .. }))
        ));
        assert!(data_call(&Method::GET, "/console/api/other").is_none());
    }

    #[test]
    fn origin_must_match_and_a_post_must_name_it() {
        let ok = parts(
            Method::POST,
            "/console/api/signout",
            &[("host", "127.0.0.1:4590"), ("origin", "http://127.0.0.1:4590")],
        );
        assert!(check_origin(&ok).is_ok());
        let other = parts(Method::POST, "/x", &[("host", "127.0.0.1:4590"), ("origin", "http://evil.example")]);
        assert!(check_origin(&other).is_err());
        assert!(check_origin(&parts(Method::POST, "/x", &[("host", "h")])).is_err());
        assert!(check_origin(&parts(Method::GET, "/x", &[("host", "h")])).is_ok());
    }

    #[test]
    fn the_session_cookie_is_strict_and_http_only() {
        let c = session_cookie("abc", 60, true);
        assert_eq!(c.to_str().unwrap(), "opentrail_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure");
        assert!(!session_cookie("abc", 60, false).to_str().unwrap().contains("Secure"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; opentrail_session=xyz; b=2"));
        assert_eq!(cookie_value(&h, COOKIE), Some("xyz"));
    }
}
