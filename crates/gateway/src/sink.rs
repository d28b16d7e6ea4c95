//! Where records go. A [`Target`] stores records durably: the in-process `service::EventStore`
//! (`[[gateways]]` inside `opentrail serve`, provenance `gateway:<name>`) or a server reached through
//! `opentrail-client` (`opentrail gateway`, `POST /v1/events` with a writer key; concurrent calls'
//! records batched into one POST so they share one group commit). A [`Sink`] is a target written
//! directly (fail-closed: the call waits for the fsync) or through the [`Spool`] (spool mode).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use model::{Provenance, Record};
use service::{EventStore, IngestItem};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::GatewayMetrics;
use crate::spool::{Position, Spool};

/// Hard-coded: the most records in one POST /v1/events of a remote target.
const MAX_BATCH_RECORDS: usize = 1000;
/// Hard-coded: the most bytes in one POST /v1/events of a remote target.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Hard-coded: how often a remote target that failed probes the server's `/healthz`.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Hard-coded: the spool forwarder's back-off bounds after a failed forward.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The journal cannot take records now (down, busy, disk full): try again later.
    #[error("journal unavailable: {0}")]
    Unavailable(String),
    /// The journal refused this record (it will never take it).
    #[error("record refused: {0}")]
    Rejected(String),
}

/// One record's outcome within a batch.
type Outcome = Result<(), SinkError>;

/// A durable home for records.
#[derive(Clone)]
pub enum Target {
    Store { store: EventStore, gateway: String },
    Remote(Remote),
}

impl Target {
    /// Whether the journal is known to take records now (the fail-closed check before forwarding a call).
    pub fn available(&self) -> bool {
        match self {
            Target::Store { store, .. } => store.is_healthy() && store.admit().is_ok(),
            Target::Remote(r) => r.up.load(Relaxed),
        }
    }

    /// Stores the records (JSON texts with their eventIDs set) durably; per record, in order. `dedupe`:
    /// the eventIDs may already be stored (a spool replay).
    pub async fn write_batch(&self, records: Vec<String>, dedupe: bool) -> Result<Vec<Outcome>, SinkError> {
        match self {
            Target::Store { store, gateway } => {
                let mut items = Vec::with_capacity(records.len());
                let mut outcomes = Vec::with_capacity(records.len());
                for json in records {
                    match Record::parse(json.as_bytes(), || uuid::Uuid::new_v4().to_string()) {
                        Ok(mut record) => {
                            record.fields.provenance = Provenance::Gateway { name: gateway.clone() };
                            items.push(IngestItem { record, client_id: dedupe });
                            outcomes.push(Ok(()));
                        }
                        Err(e) => outcomes.push(Err(SinkError::Rejected(e.to_string()))),
                    }
                }
                if !items.is_empty() {
                    store.ingest(items).await.map_err(|e| SinkError::Unavailable(e.to_string()))?;
                }
                Ok(outcomes)
            }
            Target::Remote(r) => r.post(records).await,
        }
    }
}

/// A server reached over HTTP. Records written through [`Remote::write`] are batched: while one POST is
/// in flight the next batch gathers.
#[derive(Clone)]
pub struct Remote {
    client: client::Client,
    up: Arc<AtomicBool>,
    probing: Arc<AtomicBool>,
    queue: mpsc::Sender<(String, oneshot::Sender<Outcome>)>,
}

impl Remote {
    /// Must be called within a tokio runtime (it starts the batching task).
    pub fn new(client: client::Client) -> Remote {
        let (tx, rx) = mpsc::channel(16 * 1024);
        let remote = Remote {
            client,
            up: Arc::new(AtomicBool::new(true)),
            probing: Arc::new(AtomicBool::new(false)),
            queue: tx,
        };
        tokio::spawn(remote.clone().batcher(rx));
        remote
    }

    /// Queues one record for the next POST and waits for its outcome.
    pub async fn write(&self, json: String) -> Outcome {
        let (tx, rx) = oneshot::channel();
        self.queue.send((json, tx)).await.map_err(|_| SinkError::Unavailable("gateway stopping".into()))?;
        rx.await.map_err(|_| SinkError::Unavailable("gateway stopping".into()))?
    }

    async fn batcher(self, mut rx: mpsc::Receiver<(String, oneshot::Sender<Outcome>)>) {
        while let Some(first) = rx.recv().await {
            let mut bytes = first.0.len();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_RECORDS && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(item) => {
                        bytes += item.0.len();
                        batch.push(item);
                    }
                    Err(_) => break,
                }
            }
            let (records, waiters): (Vec<String>, Vec<_>) = batch.into_iter().unzip();
            match self.post(records).await {
                Ok(outcomes) => {
                    for (w, o) in waiters.into_iter().zip(outcomes) {
                        let _ = w.send(o);
                    }
                }
                Err(e) => {
                    for w in waiters {
                        let _ = w.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// One `POST /v1/events` of NDJSON; per-record outcomes from the answer's `failed` list.
    pub async fn post(&self, records: Vec<String>) -> Result<Vec<Outcome>, SinkError> {
        let n = records.len();
        let mut body = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum());
        for r in &records {
            body.extend_from_slice(r.as_bytes());
            body.push(b'\n');
        }
        let client = self.client.clone();
        let sent = tokio::task::spawn_blocking(move || {
            client.send("POST", "/v1/events", &[("content-type", "application/x-ndjson")], &body)
        })
        .await
        .map_err(|_| SinkError::Unavailable("sender task failed".into()))?;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                self.mark_down();
                return Err(SinkError::Unavailable(format!("{e}")));
            }
        };
        if resp.status != 200 {
            let err = format!("HTTP {}: {}", resp.status, resp.text().chars().take(300).collect::<String>());
            if resp.status >= 500 || resp.status == 429 {
                self.mark_down();
            }
            return Err(SinkError::Unavailable(err));
        }
        let answer: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|e| SinkError::Unavailable(format!("bad answer: {e}")))?;
        let mut outcomes: Vec<Outcome> = vec![Ok(()); n];
        for f in answer.get("failed").and_then(|f| f.as_array()).into_iter().flatten() {
            if let Some(i) = f.get("index").and_then(|i| i.as_u64()).map(|i| i as usize).filter(|i| *i < n) {
                let msg = f.get("errorMessage").and_then(|m| m.as_str()).unwrap_or("refused");
                outcomes[i] = Err(SinkError::Rejected(msg.to_string()));
            }
        }
        Ok(outcomes)
    }

    /// Marks the server down and probes `/healthz` until it answers 200.
    fn mark_down(&self) {
        self.up.store(false, Relaxed);
        if self.probing.swap(true, Relaxed) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let c = this.client.clone();
                let healthy = tokio::task::spawn_blocking(move || c.health().is_ok_and(|h| h.status == 200))
                    .await
                    .unwrap_or(false);
                if healthy {
                    this.up.store(true, Relaxed);
                    this.probing.store(false, Relaxed);
                    tracing::info!("opentrail server reachable again");
                    return;
                }
            }
        });
    }
}

/// How records of calls are made durable.
#[derive(Clone)]
pub enum Sink {
    /// Fail-closed: each call waits for its record's fsync.
    Direct(Target),
    /// Spool mode: each call waits for its record's write into the spool.
    Spooled { spool: Arc<Spool>, target: Target },
}

impl Sink {
    /// Spool mode over `target`: opens the spool and starts its fsync thread and its forwarder (within
    /// a tokio runtime).
    pub fn spooled(spool: Arc<Spool>, target: Target, metrics: Arc<GatewayMetrics>) -> Sink {
        spool.start_sync_thread();
        metrics.spool_depth.store(spool.depth(), Relaxed);
        tokio::spawn(forward(spool.clone(), target.clone(), metrics));
        Sink::Spooled { spool, target }
    }

    pub fn available(&self) -> bool {
        match self {
            Sink::Direct(t) => t.available(),
            Sink::Spooled { spool, .. } => spool.healthy(),
        }
    }

    /// Makes one record durable (or spooled).
    pub async fn write(&self, json: String) -> Outcome {
        match self {
            Sink::Direct(Target::Remote(r)) => r.write(json).await,
            Sink::Direct(t) => t.write_batch(vec![json], false).await?.pop().unwrap_or(Ok(())),
            Sink::Spooled { spool, .. } => {
                spool.append(json.as_bytes()).map_err(|e| SinkError::Unavailable(e.to_string()))
            }
        }
    }

    pub fn spool(&self) -> Option<&Arc<Spool>> {
        match self {
            Sink::Spooled { spool, .. } => Some(spool),
            Sink::Direct(_) => None,
        }
    }
}

/// Forwards the spool to the target in order, with retries and back-off; a record the target refuses
/// as invalid is logged, counted and skipped (it would never be taken).
async fn forward(spool: Arc<Spool>, target: Target, metrics: Arc<GatewayMetrics>) {
    let mut at: Option<Position> = None;
    let mut backoff = RETRY_MIN;
    loop {
        let from = match at {
            Some(p) => p,
            None => match spool.cursor() {
                Ok(p) => p,
                Err(error) => {
                    tracing::error!(%error, "cannot read the spool cursor");
                    tokio::time::sleep(RETRY_MAX).await;
                    continue;
                }
            },
        };
        let notified = spool.appended.notified();
        let s = spool.clone();
        let read = tokio::task::spawn_blocking(move || s.read(from, MAX_BATCH_RECORDS)).await;
        let (frames, next) = match read {
            Ok(Ok(r)) => r,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read the spool");
                tokio::time::sleep(RETRY_MAX).await;
                continue;
            }
            Err(_) => return,
        };
        if frames.is_empty() {
            at = Some(next);
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
            continue;
        }
        let n = frames.len() as u64;
        let records: Vec<String> = frames.into_iter().map(|f| String::from_utf8_lossy(&f).into_owned()).collect();
        match target.write_batch(records, true).await {
            Ok(outcomes) => {
                for o in outcomes {
                    if let Err(error) = o {
                        GatewayMetrics::add(&metrics.spool_rejected, 1);
                        tracing::error!(%error, "the journal refused a spooled record: dropped from the spool");
                    }
                }
                let s = spool.clone();
                match tokio::task::spawn_blocking(move || s.commit(next, n)).await {
                    Ok(Ok(())) => {
                        at = Some(next);
                        backoff = RETRY_MIN;
                        metrics.spool_depth.store(spool.depth(), Relaxed);
                    }
                    Ok(Err(error)) => {
                        // The records are stored; a replay after a restart is deduplicated by eventID.
                        at = Some(next);
                        tracing::warn!(%error, "cannot save the spool cursor");
                    }
                    Err(_) => return,
                }
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "spool forward failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
    }
}
