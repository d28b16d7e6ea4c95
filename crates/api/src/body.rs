//! Reading a request body into memory: under a size limit, an overall deadline, and a global budget of
//! body bytes held at once ([`MemoryBudget`]), so no number of clients can make the server hold more
//! body bytes than `[server] body_memory_bytes`.
//!
//! Called after the request head has been authenticated; `on_chunk` sees every byte as it arrives so
//! the caller can hash the payload for SigV4 without a second pass.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use service::Metrics;
use service::metrics::TimeoutKind;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::pages::PageBuf;
use crate::{ApiError, App};

/// Hard-coded: how long a body waits for its first bytes of the memory budget before the request is
/// answered 503 (a body already holding bytes never waits; see [`BudgetPermit::hold`]).
pub const BUDGET_WAIT: Duration = Duration::from_millis(500);

/// How much of a body may be read, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body not received within {} ms", after.as_millis())]
    TimedOut { after: Duration },
    #[error("the server holds as many request bodies as it can; retry later")]
    Busy,
    #[error("request body could not be read: {0}")]
    Aborted(String),
}

/// The global budget of body bytes held in memory at once: a semaphore counted in bytes.
#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<BudgetInner>,
}

struct BudgetInner {
    semaphore: Semaphore,
    /// Serializes refusals with the release of the refused permit's bytes (see `take_now`).
    turn: parking_lot::Mutex<()>,
    total_bytes: usize,
    wait: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total_bytes", &self.inner.total_bytes)
            .field("available_bytes", &self.inner.semaphore.available_permits())
            .finish()
    }
}

impl MemoryBudget {
    /// A budget of `total_bytes`; the bytes in use are published as `opentrail_body_bytes_held`.
    pub fn new(total_bytes: usize, metrics: Arc<Metrics>) -> MemoryBudget {
        Self::with_wait(total_bytes, BUDGET_WAIT, metrics)
    }

    /// [`MemoryBudget::new`] with another wait than [`BUDGET_WAIT`] (tests).
    pub fn with_wait(total_bytes: usize, wait: Duration, metrics: Arc<Metrics>) -> MemoryBudget {
        let total_bytes = total_bytes.min(Semaphore::MAX_PERMITS);
        MemoryBudget {
            inner: Arc::new(BudgetInner {
                semaphore: Semaphore::new(total_bytes),
                turn: parking_lot::Mutex::new(()),
                total_bytes,
                wait,
                metrics,
            }),
        }
    }

    pub fn total_bytes(&self) -> usize {
        self.inner.total_bytes
    }

    /// Bytes currently held by permits.
    pub fn held_bytes(&self) -> usize {
        self.inner.total_bytes - self.inner.semaphore.available_permits()
    }

    /// A permit holding nothing yet; grow it with [`BudgetPermit::hold`].
    pub fn permit(&self) -> BudgetPermit {
        BudgetPermit { budget: self.clone(), held: 0 }
    }
}

/// Bytes of the budget held by one request; given back when dropped.
#[derive(Debug)]
pub struct BudgetPermit {
    budget: MemoryBudget,
    held: usize,
}

impl BudgetPermit {
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Makes the permit hold exactly `bytes`: gives back the excess at once, or takes the missing bytes.
    ///
    /// A permit that holds nothing yet waits for them at most the budget's wait (and never past
    /// `deadline`). One that already holds bytes does not wait: requests that each hold part of the
    /// budget and all wait for more would hold all of it and finish none. It is refused at once
    /// instead and gives back everything it held, so the others go on.
    pub async fn hold(&mut self, bytes: usize, deadline: Option<Instant>) -> Result<(), BodyError> {
        self.hold_or_free(bytes, deadline, || {}).await
    }

    /// [`BudgetPermit::hold`] for synchronous code running on tokio's blocking pool (gzip decoding).
    pub fn hold_blocking(&mut self, bytes: usize) -> Result<(), BodyError> {
        self.hold_blocking_or_free(bytes, || {})
    }

    /// [`BudgetPermit::hold`], calling `free` when refused, before the held bytes go back: `free` drops
    /// the memory the permit stands for, so the budget never counts it free while it is still in use.
    pub(crate) async fn hold_or_free(
        &mut self,
        bytes: usize,
        deadline: Option<Instant>,
        free: impl FnOnce(),
    ) -> Result<(), BodyError> {
        let Some(missing) = self.missing(bytes)? else { return Ok(()) };
        if self.held > 0 {
            return self.take_now(missing, free);
        }
        let inner = &self.budget.inner;
        let wait_until = Instant::now() + inner.wait;
        let until = deadline.map_or(wait_until, |d| d.min(wait_until));
        match tokio::time::timeout_at(until, inner.semaphore.acquire_many(missing as u32)).await {
            Ok(Ok(permit)) => permit.forget(),
            // The semaphore is never closed.
            Ok(Err(_)) => return Err(self.budget_exhausted()),
            Err(_) if deadline.is_some_and(|d| d <= wait_until) => {
                return Err(BodyError::TimedOut { after: Duration::ZERO });
            }
            Err(_) => return Err(self.budget_exhausted()),
        }
        self.took(missing);
        Ok(())
    }

    /// [`BudgetPermit::hold_blocking`] with [`BudgetPermit::hold_or_free`]'s `free`.
    pub(crate) fn hold_blocking_or_free(&mut self, bytes: usize, free: impl FnOnce()) -> Result<(), BodyError> {
        let Some(missing) = self.missing(bytes)? else { return Ok(()) };
        if self.held > 0 {
            return self.take_now(missing, free);
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle.block_on(self.hold(bytes, None)),
            Err(_) => Err(BodyError::Aborted("no tokio runtime to wait for the memory budget on".into())),
        }
    }

    /// The bytes to take to hold `bytes`, after giving back any excess; `None` when nothing is missing.
    fn missing(&mut self, bytes: usize) -> Result<Option<usize>, BodyError> {
        if bytes <= self.held {
            self.release(self.held - bytes);
            return Ok(None);
        }
        let missing = bytes - self.held;
        // More than the whole budget would never come; more than u32::MAX cannot be asked of the
        // semaphore at once (bodies are taken a frame at a time, far below either).
        if missing > self.budget.inner.total_bytes || missing > u32::MAX as usize {
            return Err(self.budget_exhausted());
        }
        Ok(Some(missing))
    }

    fn take_now(&mut self, missing: usize, free: impl FnOnce()) -> Result<(), BodyError> {
        // One decision at a time, and a refused permit frees its memory and gives its bytes back before
        // the next one: when the budget runs out, requests are refused one by one, each making room
        // for the rest, never all at once (the last one left can always take what it needs).
        let inner = self.budget.inner.clone();
        let _turn = inner.turn.lock();
        match inner.semaphore.try_acquire_many(missing as u32) {
            Ok(permit) => permit.forget(),
            Err(_) => {
                free();
                self.release(self.held);
                return Err(self.budget_exhausted());
            }
        }
        self.took(missing);
        Ok(())
    }

    fn took(&mut self, n: usize) {
        self.held += n;
        self.budget.inner.metrics.front_door.body_bytes_held.fetch_add(n as u64, Relaxed);
    }

    fn release(&mut self, n: usize) {
        if n > 0 {
            self.budget.inner.semaphore.add_permits(n);
            self.budget.inner.metrics.front_door.body_bytes_held.fetch_sub(n as u64, Relaxed);
            self.held -= n;
        }
    }

    fn budget_exhausted(&self) -> BodyError {
        self.budget.inner.metrics.front_door.body_budget_exhausted.fetch_add(1, Relaxed);
        BodyError::Busy
    }
}

impl Drop for BudgetPermit {
    fn drop(&mut self) {
        self.release(self.held);
    }
}

/// Reads a whole body into one buffer.
///
/// A `content_length` over `limits.max_bytes` is refused before a byte is read. Otherwise frames are
/// read until the body ends, `limits.timeout` passes (counted from this call), or the bytes read pass
/// `limits.max_bytes`. Every byte read is first taken from `budget`. The returned permit holds the
/// body's bytes; drop it when the body is dropped.
pub async fn read_body(
    body: Body,
    content_length: Option<u64>,
    limits: &BodyLimits,
    budget: &MemoryBudget,
    mut on_chunk: impl FnMut(&[u8]),
) -> Result<(Bytes, BudgetPermit), BodyError> {
    let too_large = BodyError::TooLarge { limit: limits.max_bytes };
    if content_length.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(too_large);
    }
    let deadline = Instant::now() + limits.timeout;
    let timed_out = BodyError::TimedOut { after: limits.timeout };
    let mut permit = budget.permit();
    let mut buf = BodyBuf::new(content_length.map(|n| n as usize), limits.max_bytes)?;
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(timed_out),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Aborted(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers carry nothing we use.
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        let len = buf.len() + data.len();
        if len > limits.max_bytes {
            return Err(too_large);
        }
        permit.hold_or_free(len, Some(deadline), || buf.free()).await.map_err(|e| match e {
            BodyError::TimedOut { .. } => timed_out.clone(),
            e => e,
        })?;
        on_chunk(&data);
        // Copied out so the frame (a slice of hyper's read buffer) is freed now: a client sending tiny
        // frames must not pin one large read buffer per frame.
        buf.extend_from_slice(&data)?;
    }
    Ok((buf.into_bytes(), permit))
}

/// Hard-coded: a body up to this long is kept on the heap; a longer one in its own mapping
/// ([`PageBuf`]), whose memory goes back to the OS when it is dropped, so the budget's count stays the
/// process's (the allocator would keep large freed blocks a while).
const HEAP_BODY_MAX_BYTES: usize = 64 * 1024;

/// Where a body (as sent, or decoded) is collected, never holding more than `limit` bytes.
///
/// A declared length picks the place once: the heap up to [`HEAP_BODY_MAX_BYTES`], else a mapping of
/// exactly that length. Without one, bytes start on the heap and move once, when they pass
/// [`HEAP_BODY_MAX_BYTES`], to a mapping reserved at `limit` (a copy of at most that much); pages the
/// body never fills are never touched. Nothing is grown by reallocation, so no outgrown copies are
/// left behind.
pub(crate) struct BodyBuf {
    place: Place,
    limit: usize,
}

enum Place {
    Heap(Vec<u8>),
    Pages(PageBuf),
}

impl BodyBuf {
    pub(crate) fn new(declared: Option<usize>, limit: usize) -> Result<BodyBuf, BodyError> {
        let place = match declared {
            Some(n) if n > HEAP_BODY_MAX_BYTES => Place::Pages(map(n)?),
            Some(n) => Place::Heap(Vec::with_capacity(n)),
            None => Place::Heap(Vec::new()),
        };
        Ok(BodyBuf { place, limit })
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match &self.place {
            Place::Heap(v) => v,
            Place::Pages(p) => p.as_slice(),
        }
    }

    /// Appends `data`; the caller has checked it fits under the limit (and holds budget for it).
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), BodyError> {
        let len = self.len() + data.len();
        if len > self.limit {
            return Err(BodyError::TooLarge { limit: self.limit });
        }
        if let Place::Heap(v) = &mut self.place {
            if len <= v.capacity() || len <= HEAP_BODY_MAX_BYTES {
                v.extend_from_slice(data);
                return Ok(());
            }
            let mut pages = map(self.limit)?;
            let moved = pages.extend_from_slice(v);
            debug_assert!(moved.is_ok(), "the limit holds what was under it");
            self.place = Place::Pages(pages);
        }
        match &mut self.place {
            Place::Pages(p) => p.extend_from_slice(data).map_err(|_| BodyError::TooLarge { limit: self.limit }),
            Place::Heap(_) => unreachable!("moved to pages above"),
        }
    }

    /// Drops the bytes now (a refused body frees its memory before its budget goes back).
    pub(crate) fn free(&mut self) {
        self.place = Place::Heap(Vec::new());
    }

    pub(crate) fn into_bytes(self) -> Bytes {
        match self.place {
            Place::Heap(v) => Bytes::from(v),
            Place::Pages(p) => p.into_bytes(),
        }
    }
}

fn map(bytes: usize) -> Result<PageBuf, BodyError> {
    PageBuf::with_capacity(bytes).map_err(|error| {
        tracing::warn!(%error, bytes, "cannot map a body buffer");
        BodyError::Busy
    })
}

/// The request body under `[server]`'s `max_request_bytes` and `body_timeout_ms`, held against the
/// server's body memory budget; the declared length is the one hyper parsed from the head.
pub async fn read_request_body(
    app: &App,
    body: Body,
    max_bytes: usize,
    on_chunk: impl FnMut(&[u8]),
) -> Result<(Bytes, BudgetPermit), ApiError> {
    let server = &app.config.server;
    let limits = BodyLimits { max_bytes, timeout: server.body_timeout() };
    let content_length = http_body::Body::size_hint(&body).exact();
    read_body(body, content_length, &limits, &app.body_budget, on_chunk).await.map_err(|e| {
        if matches!(e, BodyError::TimedOut { .. }) {
            app.store.metrics().front_door.record_timeout(TimeoutKind::Body);
        }
        ApiError::from(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: usize) -> MemoryBudget {
        MemoryBudget::with_wait(bytes, Duration::from_millis(100), Arc::new(Metrics::default()))
    }

    fn limits(max_bytes: usize) -> BodyLimits {
        BodyLimits { max_bytes, timeout: Duration::from_secs(5) }
    }

    /// A body that yields `chunks` one frame each, then ends, or (when `hang`) never ends.
    struct Chunks {
        chunks: std::collections::VecDeque<Vec<u8>>,
        hang: bool,
    }

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            use std::task::Poll;
            match self.chunks.pop_front() {
                Some(c) => Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(c))))),
                // Never woken: the deadline's timer is what ends the wait.
                None if self.hang => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    fn streamed(chunks: Vec<Vec<u8>>, hang: bool) -> Body {
        Body::new(Chunks { chunks: chunks.into(), hang })
    }

    #[tokio::test]
    async fn a_body_is_read_whole_and_every_chunk_is_seen() {
        let b = budget(1 << 20);
        let mut seen = Vec::new();
        let body = streamed(vec![b"hello ".to_vec(), b"world".to_vec()], false);
        let (bytes, permit) = read_body(body, None, &limits(100), &b, |c| seen.extend_from_slice(c)).await.unwrap();
        assert_eq!(&bytes[..], b"hello world");
        assert_eq!(seen, b"hello world");
        assert_eq!(permit.held_bytes(), 11);
        assert_eq!(b.held_bytes(), 11);
        drop(permit);
        assert_eq!(b.held_bytes(), 0);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let b = budget(1 << 20);
        let body = streamed(vec![vec![0; 101]], false);
        let got = read_body(body, Some(101), &limits(100), &b, |_| panic!("read a chunk")).await;
        assert_eq!(got.unwrap_err(), BodyError::TooLarge { limit: 100 });
    }

    #[tokio::test]
    async fn an_undeclared_body_stops_at_the_first_byte_over_the_limit() {
        let b = budget(1 << 20);
        let mut read = 0;
        let body = streamed(vec![vec![1; 60], vec![2; 40], vec![3; 1], vec![4; 1000]], false);
        let got = read_body(body, None, &limits(100), &b, |c| read += c.len()).await;
        assert_eq!(got.unwrap_err(), BodyError::TooLarge { limit: 100 });
        assert_eq!(read, 100, "chunks past the limit are not handed on");
        assert_eq!(b.held_bytes(), 0, "the permit is given back");
        // Exactly the limit is fine.
        let body = streamed(vec![vec![1; 60], vec![2; 40]], false);
        assert_eq!(read_body(body, None, &limits(100), &b, |_| {}).await.unwrap().0.len(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_times_out() {
        let b = budget(1 << 20);
        let body = streamed(vec![vec![1; 10]], true);
        let lim = BodyLimits { max_bytes: 100, timeout: Duration::from_millis(1500) };
        let got = read_body(body, None, &lim, &b, |_| {}).await;
        assert_eq!(got.unwrap_err(), BodyError::TimedOut { after: Duration::from_millis(1500) });
        assert_eq!(b.held_bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_budget_answers_busy_after_a_bounded_wait() {
        let b = budget(1000);
        let (_held, permit) =
            read_body(Body::from(vec![0u8; 900]), Some(900), &limits(1000), &b, |_| {}).await.unwrap();
        let started = Instant::now();
        let got = read_body(Body::from(vec![0u8; 200]), Some(200), &limits(1000), &b, |_| {}).await;
        assert_eq!(got.unwrap_err(), BodyError::Busy);
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        drop(permit);
        assert!(read_body(Body::from(vec![0u8; 200]), Some(200), &limits(1000), &b, |_| {}).await.is_ok());
    }

    #[tokio::test]
    async fn an_undeclared_body_is_held_byte_for_byte() {
        let b = budget(1 << 20);
        let chunks: Vec<Vec<u8>> = (0..64).map(|_| vec![7u8; 1000]).collect();
        let mut held = Vec::new();
        let b2 = b.clone();
        let (bytes, permit) = read_body(streamed(chunks, false), None, &limits(1 << 20), &b, |_| {
            held.push(b2.held_bytes());
        })
        .await
        .unwrap();
        assert_eq!(bytes.len(), 64_000);
        assert_eq!(permit.held_bytes(), 64_000);
        // Each chunk is held before it is handed on.
        assert_eq!(held, (1..=64).map(|i| i * 1000).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_holding_bytes_is_refused_at_once_instead_of_waiting() {
        let b = budget(1000);
        let mut first = b.permit();
        first.hold(600, None).await.unwrap();
        let mut second = b.permit();
        second.hold(300, None).await.unwrap();
        let started = Instant::now();
        // Both now want more than is left: neither waits for the other. The refused one frees its
        // memory while its bytes are still counted, then gives them back.
        let mut counted_when_freed = None;
        let refused = first.hold_or_free(800, None, || counted_when_freed = Some(b.held_bytes())).await;
        assert_eq!(refused, Err(BodyError::Busy));
        assert_eq!(counted_when_freed, Some(900));
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(first.held_bytes(), 0, "a refused permit gives back what it held");
        assert_eq!(b.held_bytes(), 300);
        second.hold(1000, None).await.unwrap();
        // One holding nothing yet waits, and gets the bytes once they are given back.
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                let mut p = b.permit();
                p.hold(500, None).await.map(|()| p.held_bytes())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        second.hold(400, None).await.unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(500));
    }

    #[test]
    fn an_undeclared_body_moves_off_the_heap_once_and_keeps_its_bytes() {
        let mut b = BodyBuf::new(None, 1 << 20).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        for piece in data.chunks(7_000) {
            b.extend_from_slice(piece).unwrap();
        }
        assert!(matches!(b.place, Place::Pages(_)));
        assert_eq!(b.as_slice(), &data[..]);
        assert_eq!(b.extend_from_slice(&vec![0; 1 << 20]), Err(BodyError::TooLarge { limit: 1 << 20 }));
        let small = {
            let mut b = BodyBuf::new(None, 1 << 20).unwrap();
            b.extend_from_slice(b"tiny").unwrap();
            b
        };
        assert!(matches!(small.place, Place::Heap(_)));
        assert_eq!(&small.into_bytes()[..], b"tiny");
    }

    #[tokio::test]
    async fn hold_blocking_works_on_the_blocking_pool() {
        let b = budget(1000);
        let b2 = b.clone();
        let held = tokio::task::spawn_blocking(move || {
            let mut p = b2.permit();
            p.hold_blocking(600).unwrap();
            p.hold_blocking(900).unwrap();
            let again = p.hold_blocking(1001);
            (p.held_bytes(), again)
        })
        .await
        .unwrap();
        assert_eq!(held, (0, Err(BodyError::Busy)));
        assert_eq!(b.held_bytes(), 0);
    }
}
