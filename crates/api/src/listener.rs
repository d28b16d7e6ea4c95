//! The one accept loop for plain HTTP and HTTPS: the connection limit, the TLS handshake timeout,
//! HTTP/1 and HTTP/2 settings, a watchdog per connection (first-request, idle and send timeouts), and
//! graceful shutdown. Every request reaches the router carrying `ConnectInfo<SocketAddr>` and, on TLS,
//! its connection's [`TlsInfo`].
//!
//! Which timer closes what:
//! * TLS handshake: `tls_handshake_timeout` (here).
//! * The first request head: `header_timeout` from the connection's start (the watchdog here; hyper's
//!   own HTTP/1 timer starts only once the protocol has been sniffed, after the first bytes).
//! * Every HTTP/1 request head: `header_timeout`, by hyper. Hyper starts that timer as soon as a
//!   connection waits for its next request, so an idle HTTP/1 keep-alive connection is closed after
//!   `min(header_timeout, idle_timeout)` (`front_door.rs` checks it). Hyper reports that close as a
//!   clean end, so it is not counted in `opentrail_timeouts_total`; a head cut off midway is.
//! * No request in flight (keep-alive, or an HTTP/2 connection kept alive by pings): `idle_timeout`.
//! * Writes making no progress (a client that stopped reading its answer): `idle_timeout`.
//! * Request bodies: `body_timeout`, in [`crate::body::read_body`].

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use service::metrics::TimeoutKind;
use service::{Metrics, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use crate::TlsInfo;

/// Hard-coded: the largest HTTP/1 request head (hyper's read buffer, which also bounds each read of a
/// body) and HTTP/2 header list. AWS SDK requests carry a few KiB of headers.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Hard-coded: HTTP/2 streams one connection may have open at once.
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 64;
/// Hard-coded: HTTP/2 flow-control windows (per stream and per connection). They bound the body bytes
/// a client can make the server buffer on one connection before any handler reads them; hyper's 1 MiB
/// default times `max_connections` would be a GiB.
pub const H2_WINDOW_BYTES: u32 = 256 * 1024;
/// Hard-coded: an HTTP/2 connection is pinged after this long without frames from the client ...
pub const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// ... and closed if the ping is not answered within this long (a dead peer).
pub const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Hard-coded: the listen backlog asked for (the kernel caps it at `net.core.somaxconn`). Connections
/// arriving in a burst wait here to be accepted; when it is full the kernel drops new SYNs and clients
/// retry only a second later. tokio's default is 1024, below `max_connections`' default.
pub const LISTEN_BACKLOG: u32 = 4096;
/// Hard-coded: pause after a failed accept (e.g. out of file descriptors) instead of spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Binds a listening socket on `addr` (`host:port`, the first address it resolves to) with
/// [`LISTEN_BACKLOG`].
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for resolved in tokio::net::lookup_host(addr).await? {
        let socket = if resolved.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // As std and tokio do on unix: a restarted server can bind while old connections linger.
        socket.set_reuseaddr(true)?;
        match socket.bind(resolved).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} resolves to no address"))))
}

/// The timeouts and limits of the connection layer, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
}

impl ConnectionLimits {
    pub fn from_config(c: &ServerConfig) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: c.max_connections,
            header_timeout: c.header_timeout(),
            idle_timeout: c.idle_timeout(),
            tls_handshake_timeout: c.tls_handshake_timeout(),
        }
    }
}

/// The connection layer. Clones share one connection limit, so the HTTP and HTTPS listeners of a
/// server count against the same `max_connections`.
#[derive(Clone)]
pub struct FrontDoor {
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    http: Arc<auto::Builder<TokioExecutor>>,
}

impl FrontDoor {
    pub fn new(limits: ConnectionLimits, metrics: Arc<Metrics>) -> FrontDoor {
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_HEADER_BYTES);
        http.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            .initial_stream_window_size(H2_WINDOW_BYTES)
            .initial_connection_window_size(H2_WINDOW_BYTES)
            .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
            .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
        FrontDoor {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS))),
            metrics,
            http: Arc::new(http),
        }
    }

    /// Serves `router` on `listener` — HTTPS when `tls` is given — until `shutdown` completes, then
    /// lets open connections finish their requests (each is still bounded by its timeouts).
    pub async fn serve(
        &self,
        listener: TcpListener,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
        router: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let acceptor = tls.map(TlsAcceptor::from);
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(error) => {
                        tracing::warn!(scheme, %error, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Never wait for a slot: a full server closes the newcomer at once and keeps accepting.
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                self.metrics.front_door.connections_refused.fetch_add(1, Relaxed);
                tracing::debug!(scheme, %peer, "connection refused: max_connections open");
                drop(tcp);
                continue;
            };
            let conn = Connection {
                door: self.clone(),
                peer,
                router: router.clone(),
                _open: Open::new(slot, self.metrics.clone()),
            };
            let watcher = graceful.watcher();
            let acceptor = acceptor.clone();
            tokio::spawn(conn.run(tcp, acceptor, watcher));
        }
        graceful.shutdown().await;
        Ok(())
    }
}

/// A connection slot and the open-connections gauge, both given back when the connection ends.
struct Open {
    _slot: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Open {
    fn new(slot: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Open {
        metrics.front_door.connections_open.fetch_add(1, Relaxed);
        Open { _slot: slot, metrics }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.front_door.connections_open.fetch_sub(1, Relaxed);
    }
}

struct Connection {
    door: FrontDoor,
    peer: SocketAddr,
    router: axum::Router,
    _open: Open,
}

impl Connection {
    async fn run(self, tcp: TcpStream, tls: Option<TlsAcceptor>, watcher: hyper_util::server::graceful::Watcher) {
        let peer = self.peer;
        let metrics = &self.door.metrics;
        // Answers are written whole; waiting for more to coalesce only adds latency.
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TrackedIo { inner: tcp, activity: activity.clone() };
        match tls {
            None => self.serve(io, None, activity, watcher).await,
            Some(acceptor) => {
                let handshake = tokio::time::timeout(self.door.limits.tls_handshake_timeout, acceptor.accept(io));
                let stream = match handshake.await {
                    Ok(Ok(stream)) => stream,
                    // A client's failed handshake is the client's business: debug, not warn.
                    Ok(Err(error)) => return tracing::debug!(%peer, %error, "tls handshake failed"),
                    Err(_) => {
                        metrics.front_door.record_timeout(TimeoutKind::TlsHandshake);
                        return tracing::debug!(%peer, "tls handshake timed out");
                    }
                };
                let info = crate::tls::tls_info(stream.get_ref().1);
                // The first request's deadline counts from the end of the handshake.
                activity.restart();
                self.serve(stream, Some(info), activity, watcher).await;
            }
        }
    }

    async fn serve<I>(
        &self,
        io: I,
        tls: Option<TlsInfo>,
        activity: Arc<Activity>,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let router = self.router.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            if let Some(info) = &tls {
                req.extensions_mut().insert(info.clone());
            }
            let in_flight = InFlight::start(requests.clone());
            // The router is always ready, so calling it without poll_ready is sound.
            let answer = router.clone().call(req);
            async move {
                let resp = answer.await?;
                // The request stays in flight until hyper has taken its whole answer (or dropped it).
                Ok::<_, Infallible>(resp.map(|body| Body::new(Tracked { body, _in_flight: in_flight })))
            }
        });
        let conn = watcher.watch(self.door.http.serve_connection(TokioIo::new(io), service));
        let metrics = &self.door.metrics.front_door;
        tokio::select! {
            ended = conn => {
                if let Err(error) = ended {
                    if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
                        metrics.record_timeout(TimeoutKind::Header);
                        tracing::debug!(%peer, "request head timed out");
                    } else {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                }
            }
            kind = watchdog(&activity, &self.door.limits) => {
                // Dropping the connection closes it: nothing is in flight, or the client stopped reading.
                metrics.record_timeout(kind);
                tracing::debug!(%peer, timeout = kind.label(), "closing connection");
            }
        }
    }
}

/// Resolves when the connection should be closed, naming why. Sleeps to the nearest deadline; any
/// deadline that appears while it sleeps lies at least `idle_timeout` ahead, so waking every
/// `idle_timeout` at the latest never misses one.
async fn watchdog(activity: &Activity, limits: &ConnectionLimits) -> TimeoutKind {
    let header = limits.header_timeout;
    let idle = limits.idle_timeout;
    loop {
        let now = Instant::now();
        let mut next = now + idle;
        let mut check = |deadline: Instant, kind: TimeoutKind| {
            if deadline <= now {
                return Some(kind);
            }
            next = next.min(deadline);
            None
        };
        if !activity.had_request.load(Acquire)
            && let Some(kind) = check(activity.at(activity.started_ms.load(Acquire)) + header, TimeoutKind::Header)
        {
            return kind;
        }
        if activity.in_flight.load(Acquire) == 0
            && let Some(kind) = check(activity.at(activity.idle_since_ms.load(Acquire)) + idle, TimeoutKind::Idle)
        {
            return kind;
        }
        let blocked = activity.write_blocked_since_ms.load(Acquire);
        if blocked != NOT_BLOCKED
            && let Some(kind) = check(activity.at(blocked) + idle, TimeoutKind::Send)
        {
            return kind;
        }
        tokio::time::sleep_until(next).await;
    }
}

/// Marks `write_blocked_since_ms` as clear.
const NOT_BLOCKED: u64 = u64::MAX;

/// What the watchdog watches, shared by the connection's IO and its requests. Times are milliseconds
/// since `base`.
struct Activity {
    base: Instant,
    /// When the connection (or, on TLS, its HTTP) started.
    started_ms: AtomicU64,
    had_request: AtomicBool,
    /// Requests whose answers hyper has not yet taken whole.
    in_flight: AtomicUsize,
    /// When `in_flight` last became 0 (or the start).
    idle_since_ms: AtomicU64,
    /// Since when a write has been waiting for the socket, or `NOT_BLOCKED`.
    write_blocked_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            started_ms: AtomicU64::new(0),
            had_request: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            write_blocked_since_ms: AtomicU64::new(NOT_BLOCKED),
        }
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    fn restart(&self) {
        let now = self.now_ms();
        self.started_ms.store(now, Release);
        self.idle_since_ms.store(now, Release);
    }

    fn write_progress(&self, ready: bool) {
        if ready {
            self.write_blocked_since_ms.store(NOT_BLOCKED, Relaxed);
        } else if self.write_blocked_since_ms.load(Relaxed) == NOT_BLOCKED {
            self.write_blocked_since_ms.store(self.now_ms(), Relaxed);
        }
    }
}

/// One request in flight; ends when dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.had_request.store(true, Release);
        activity.in_flight.fetch_add(1, AcqRel);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Stamp before the count reaches 0, so the watchdog never sees 0 with an old stamp.
        self.0.idle_since_ms.store(self.0.now_ms(), Release);
        self.0.in_flight.fetch_sub(1, AcqRel);
    }
}

/// A response body that keeps its request in flight until hyper drops it.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, noting when writes stall.
struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.write_progress(r.is_ready());
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.write_progress(r.is_ready());
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.write_progress(r.is_ready());
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.activity.write_progress(r.is_ready());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A response body that never ends.
    struct Endless;

    impl http_body::Body for Endless {
        type Data = axum::body::Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(Some(Ok(http_body::Frame::data(axum::body::Bytes::from_static(&[b'x'; 16 * 1024])))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_off_after_the_idle_timeout() {
        let metrics = Arc::new(Metrics::default());
        let idle = Duration::from_millis(300);
        let limits = ConnectionLimits {
            max_connections: 1,
            header_timeout: Duration::from_secs(5),
            idle_timeout: idle,
            tls_handshake_timeout: Duration::from_secs(5),
        };
        let door = FrontDoor::new(limits, metrics.clone());
        let router = axum::Router::new().fallback(|| async { Body::new(Endless) });
        let (client, server) = tokio::io::duplex(64 * 1024);
        let slot = door.slots.clone().try_acquire_owned().unwrap();
        let conn = Connection {
            door: door.clone(),
            peer: "127.0.0.1:1".parse().unwrap(),
            router,
            _open: Open::new(slot, metrics.clone()),
        };
        let activity = Arc::new(Activity::new());
        let io = TrackedIo { inner: server, activity: activity.clone() };
        let graceful = GracefulShutdown::new();
        let served = tokio::spawn(async move { conn.serve(io, None, activity, graceful.watcher()).await });
        let (mut rd, mut wr) = tokio::io::split(client);
        wr.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        // A slow reader that keeps reading is never cut off, however long the answer takes ...
        let mut buf = vec![0u8; 16 * 1024];
        for _ in 0..20 {
            tokio::time::sleep(idle / 2).await;
            assert!(rd.read(&mut buf).await.unwrap() > 0);
        }
        assert!(!served.is_finished(), "cut off a client that was reading");
        // ... one that stops reading is, once writes have stalled for the idle timeout.
        let stopped = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), served).await.expect("never cut off").unwrap();
        let waited = stopped.elapsed();
        assert!(waited >= idle && waited < idle * 2, "cut off after {waited:?}");
        assert_eq!(metrics.front_door.timeouts(TimeoutKind::Send), 1);
        assert_eq!(metrics.front_door.timeouts(TimeoutKind::Idle), 0);
        assert_eq!(metrics.front_door.connections_open.load(Relaxed), 0, "the slot is given back");
        drop(door);
    }
}
