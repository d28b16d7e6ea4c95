//! The reverse proxy: each request is streamed to the upstream through a tee that keeps a bounded
//! prefix for the record; the response head and up to `capture_bytes` of its body are held until the
//! record is durable (fail-closed) or spooled, then released and the rest streamed. Hop-by-hop headers
//! are dropped as RFC 9110 §7.6.1 says; everything else, the Host header included (SigV4 signed it),
//! reaches the upstream as sent.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use http_body::{Body as _, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;

use crate::metrics::GatewayMetrics;
use crate::record::{Exchange, Recorder};
use crate::sink::Sink;

/// The path of a standalone gateway's own metrics; never forwarded.
pub const METRICS_PATH: &str = "/.opentrail/metrics";
/// Hard-coded: idle upstream connections kept per host, and for how long.
const POOL_IDLE_PER_HOST: usize = 256;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Hop-by-hop headers (RFC 9110 §7.6.1), besides those `Connection` names.
const HOP_BY_HOP: &[&str] = &["connection", "proxy-connection", "keep-alive", "te", "transfer-encoding", "upgrade"];

/// Where calls go: `http://host:port` and an optional base path.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub authority: http::uri::Authority,
    pub base: String,
}

impl Upstream {
    pub fn parse(text: &str) -> Result<Upstream, String> {
        let uri: Uri = text.parse().map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{text:?}: only http:// upstreams are supported"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| format!("{text:?} names no host"))?;
        if uri.query().is_some() {
            return Err(format!("{text:?}: an upstream has no query string"));
        }
        Ok(Upstream { authority, base: uri.path().trim_end_matches('/').to_string() })
    }

    fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(format!("{}{}", self.base, path_and_query))
            .build()
    }
}

pub(crate) struct Proxy {
    pub name: String,
    pub upstream: Upstream,
    pub client: Client<HttpConnector, Body>,
    pub capture_bytes: usize,
    pub upstream_timeout: Duration,
    pub record_timeout: Duration,
    pub recorder: Recorder,
    pub sink: Sink,
    pub metrics: Arc<GatewayMetrics>,
    pub aws_errors: bool,
}

pub(crate) fn client() -> Client<HttpConnector, Body> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector)
}

/// What the tee kept of a body.
#[derive(Debug, Default)]
struct Captured {
    limit: usize,
    bytes: Vec<u8>,
    total: u64,
    complete: bool,
}

impl Captured {
    fn push(&mut self, data: &[u8]) {
        let room = self.limit.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&data[..room.min(data.len())]);
        self.total += data.len() as u64;
    }
}

/// The request body on its way upstream, keeping a bounded prefix.
struct Tee {
    inner: Body,
    seen: Arc<Mutex<Captured>>,
    metrics: Arc<GatewayMetrics>,
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.seen.lock().push(d);
                    GatewayMetrics::add(&self.metrics.bytes_in, d.len() as u64);
                }
                if self.inner.is_end_stream() {
                    self.seen.lock().complete = true;
                }
            }
            Poll::Ready(None) => self.seen.lock().complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.seen.lock().complete = true;
        }
        end
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The response body to the client: the frames held while the record was written, then the rest.
struct Replay {
    held: VecDeque<Frame<Bytes>>,
    held_bytes: u64,
    rest: Option<Incoming>,
    metrics: Arc<GatewayMetrics>,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(f) = self.held.pop_front() {
            if let Some(d) = f.data_ref() {
                self.held_bytes -= d.len() as u64;
                GatewayMetrics::add(&self.metrics.bytes_out, d.len() as u64);
            }
            return Poll::Ready(Some(Ok(f)));
        }
        let Some(rest) = self.rest.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(rest).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &polled
            && let Some(d) = f.data_ref()
        {
            GatewayMetrics::add(&self.metrics.bytes_out, d.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let rest = self.rest.as_ref().map_or_else(|| http_body::SizeHint::with_exact(0), |r| r.size_hint());
        // Upper first: set_lower asserts lower <= upper.
        let mut hint = http_body::SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + self.held_bytes);
        }
        hint.set_lower(rest.lower() + self.held_bytes);
        hint
    }
}

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(*n);
    }
}

impl Proxy {
    /// An AWS-shaped error answer made by the gateway itself: JSON with `__type` (and
    /// `x-amzn-ErrorType`) for JSON callers, the query/XML protocols' `ErrorResponse` otherwise.
    fn error(&self, status: StatusCode, code: &str, message: &str, json: bool, request_id: &str) -> Response {
        let (ctype, body) = if json || !self.aws_errors {
            ("application/json", serde_json::json!({"__type": code, "message": message}).to_string())
        } else {
            let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            (
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>Receiver</Type><Code>{}</Code><Message>{}</Message></Error>\
                     <RequestId>{}</RequestId></ErrorResponse>",
                    esc(code),
                    esc(message),
                    esc(request_id)
                ),
            )
        };
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        if let Ok(v) = HeaderValue::from_str(code) {
            h.insert("x-amzn-errortype", v);
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-amzn-requestid", v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }

    pub(crate) fn render_metrics(&self, out: &mut String) {
        if let Some(spool) = self.sink.spool() {
            self.metrics.spool_depth.store(spool.depth(), std::sync::atomic::Ordering::Relaxed);
        }
        self.metrics.render(&self.name, out);
    }

    /// Writes the record, bounded by `record_timeout`. `Ok(false)`: the policy said not to record.
    async fn write(&self, record: Option<String>) -> Result<bool, String> {
        let Some(json) = record else {
            GatewayMetrics::add(&self.metrics.not_recorded, 1);
            return Ok(false);
        };
        match tokio::time::timeout(self.record_timeout, self.sink.write(json)).await {
            Ok(Ok(())) => {
                GatewayMetrics::add(&self.metrics.recorded, 1);
                Ok(true)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("not durable within {:?}", self.record_timeout)),
        }
    }
}

pub(crate) async fn handle(State(px): State<Arc<Proxy>>, req: Request) -> Response {
    if req.method() == http::Method::GET && req.uri().path() == METRICS_PATH {
        let mut text = String::new();
        px.render_metrics(&mut text);
        return Response::new(Body::from(text));
    }
    GatewayMetrics::add(&px.metrics.calls, 1);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let tls = req.extensions().get::<api::TlsInfo>().cloned();
    let event_id = uuid::Uuid::new_v4().to_string();
    let json_caller = req.headers().contains_key("x-amz-target")
        || req.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("json"));
    if !px.sink.available() {
        GatewayMetrics::add(&px.metrics.refused, 1);
        tracing::warn!(gateway = %px.name, "journal unavailable: call refused, not forwarded");
        return px.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the audit journal is unavailable: the call was not forwarded",
            json_caller,
            &event_id,
        );
    }
    let event_time = chrono::Utc::now();
    let (mut parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    // HTTP/2 callers send :authority, not Host; the upstream (HTTP/1.1) must see what was signed.
    if !parts.headers.contains_key(HOST)
        && let Some(v) = parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(HOST, v);
    }
    let request_headers = parts.headers.clone();
    let px: &Proxy = &px;
    let event_id = event_id.as_str();
    let seen = Arc::new(Mutex::new(Captured { limit: px.capture_bytes, ..Default::default() }));
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let uri = match px.upstream.uri(&path_and_query) {
        Ok(u) => u,
        Err(e) => {
            return px.error(StatusCode::BAD_REQUEST, "InvalidRequest", &e.to_string(), json_caller, event_id);
        }
    };
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    parts.extensions = http::Extensions::new();
    let upstream_req = http::Request::from_parts(
        parts,
        Body::new(Tee { inner: body, seen: seen.clone(), metrics: px.metrics.clone() }),
    );

    let exchange = |status, response_headers, response_body: &'_ [u8], response_complete, gateway_error| {
        let seen = seen.lock();
        px.recorder.record(&Exchange {
            event_id,
            event_time,
            peer,
            tls: tls.as_ref(),
            method: &method,
            path: &path,
            query: query.as_deref(),
            request_headers: &request_headers,
            request_body: &seen.bytes,
            request_complete: seen.complete && seen.total == seen.bytes.len() as u64,
            request_total: seen.total,
            status,
            response_headers,
            response_body,
            response_complete,
            gateway_error,
        })
    };

    // A gateway-made failure (502/504): recorded with its errorCode, then answered.
    let failed = |status: StatusCode, code: &'static str, message: String| {
        let record = exchange(None, None, &[], true, Some((code, message.clone())));
        async move {
            match px.write(record).await {
                Ok(_) => px.error(status, code, &message, json_caller, event_id),
                Err(error) => {
                    GatewayMetrics::add(&px.metrics.record_failures, 1);
                    tracing::error!(gateway = %px.name, %error, code, "record of a failed call not written");
                    px.error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        "the call could not be recorded",
                        json_caller,
                        event_id,
                    )
                }
            }
        }
    };

    let resp = match tokio::time::timeout(px.upstream_timeout, px.client.request(upstream_req)).await {
        Err(_) => {
            GatewayMetrics::add(&px.metrics.upstream_timeouts, 1);
            let msg = format!("the upstream did not answer within {} ms", px.upstream_timeout.as_millis());
            return failed(StatusCode::GATEWAY_TIMEOUT, "GatewayTimeout", msg).await;
        }
        Ok(Err(e)) => {
            GatewayMetrics::add(&px.metrics.upstream_unreachable, 1);
            let cause = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
            tracing::warn!(gateway = %px.name, error = %e, %cause, "upstream unreachable");
            return failed(StatusCode::BAD_GATEWAY, "BadGateway", format!("the upstream cannot be reached: {e}")).await;
        }
        Ok(Ok(resp)) => resp,
    };
    let (mut rparts, mut rbody) = resp.into_parts();
    let mut held = VecDeque::new();
    let mut captured = Vec::new();
    let mut held_bytes = 0u64;
    let mut complete = false;
    while held_bytes <= px.capture_bytes as u64 {
        match tokio::time::timeout(px.upstream_timeout, rbody.frame()).await {
            Err(_) => {
                GatewayMetrics::add(&px.metrics.upstream_timeouts, 1);
                let msg = "the upstream stopped sending its answer".to_string();
                return failed(StatusCode::GATEWAY_TIMEOUT, "GatewayTimeout", msg).await;
            }
            Ok(None) => {
                complete = true;
                break;
            }
            Ok(Some(Err(e))) => {
                GatewayMetrics::add(&px.metrics.upstream_unreachable, 1);
                return failed(StatusCode::BAD_GATEWAY, "BadGateway", format!("the upstream broke off: {e}")).await;
            }
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    let room = px.capture_bytes.saturating_sub(captured.len());
                    captured.extend_from_slice(&d[..room.min(d.len())]);
                    held_bytes += d.len() as u64;
                }
                held.push_back(frame);
                if rbody.is_end_stream() {
                    complete = true;
                    break;
                }
            }
        }
    }
    let record = exchange(Some(rparts.status), Some(&rparts.headers), &captured, complete, None);
    if let Err(error) = px.write(record).await {
        GatewayMetrics::add(&px.metrics.record_failures, 1);
        tracing::error!(gateway = %px.name, %error, %method, %path, status = rparts.status.as_u16(),
            "record not written after the upstream answered: answering 503");
        return px.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the call reached the service but could not be recorded; its outcome is unknown to you",
            json_caller,
            event_id,
        );
    }
    strip_hop_by_hop(&mut rparts.headers);
    let body = Replay { held, held_bytes, rest: (!complete).then_some(rbody), metrics: px.metrics.clone() };
    Response::from_parts(rparts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_plain_http_with_an_optional_base_path() {
        let u = Upstream::parse("http://127.0.0.1:5000/api/").unwrap();
        assert_eq!(u.uri("/pets?x=1").unwrap().to_string(), "http://127.0.0.1:5000/api/pets?x=1");
        assert!(Upstream::parse("https://x").is_err());
        assert!(Upstream::parse("not a url").is_err());
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("host", "iam.amazonaws.com".parse().unwrap());
        h.insert("expect", "100-continue".parse().unwrap());
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["expect", "host"]);
    }
}
