//! Queries in the background (StartQuery … ListQueries): checked and planned when they start (a bad
//! statement fails StartQuery at once), then run on the lake's own runtime, at most
//! [`QueryOptions::concurrency`] at a time (the others wait QUEUED), each under its memory limit and
//! deadline, cancellable; a query that fails or panics is FAILED and the server goes on. Results and
//! statistics are kept in memory for [`KEEP_FOR_MS`] (queries are not kept across restarts).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::physical_plan::ExecutionPlan;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::sql::{self, Answer, SqlError};
use crate::{CATCH_UP_WAIT, Lake, Snapshot};

/// Hard-coded: queries are listed and their results kept for 7 days (ListQueries' window).
pub const KEEP_FOR_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Bytes of memory one query's operators may hold (the DataFusion memory pool).
    pub memory_limit: usize,
    /// The most rows an answer may have; a query that would return more fails (never truncated).
    pub max_result_rows: usize,
    /// Queries running at once.
    pub concurrency: usize,
    /// Threads of the query runtime (and DataFusion's target partitions).
    pub threads: usize,
    /// A query running longer is stopped as TIMED_OUT.
    pub timeout: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            memory_limit: 1 << 30,
            max_result_rows: 1_000_000,
            concurrency: 2,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            timeout: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryStatus {
    Queued,
    Running,
    Finished,
    Failed,
    Cancelled,
    TimedOut,
}

impl QueryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryStatus::Queued => "QUEUED",
            QueryStatus::Running => "RUNNING",
            QueryStatus::Finished => "FINISHED",
            QueryStatus::Failed => "FAILED",
            QueryStatus::Cancelled => "CANCELLED",
            QueryStatus::TimedOut => "TIMED_OUT",
        }
    }

    pub fn parse(s: &str) -> Option<QueryStatus> {
        [
            QueryStatus::Queued,
            QueryStatus::Running,
            QueryStatus::Finished,
            QueryStatus::Failed,
            QueryStatus::Cancelled,
            QueryStatus::TimedOut,
        ]
        .into_iter()
        .find(|q| q.as_str() == s)
    }

    pub fn is_active(self) -> bool {
        matches!(self, QueryStatus::Queued | QueryStatus::Running)
    }
}

/// What DescribeQuery and ListQueries tell about a query.
#[derive(Debug, Clone)]
pub struct QueryInfo {
    pub id: String,
    pub statement: String,
    /// The stores it names (lower-case ids).
    pub stores: Vec<String>,
    pub status: QueryStatus,
    pub error: Option<String>,
    /// Epoch ms.
    pub created: i64,
    pub execution_ms: u64,
    pub events_matched: u64,
    pub events_scanned: u64,
    pub bytes_scanned: u64,
    pub results_count: u64,
}

/// One page of a query's results.
#[derive(Debug, Clone)]
pub struct ResultsPage {
    pub info: QueryInfo,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// The token of the next page, when there is one.
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    InvalidStatement(String),
    #[error("event data store {0} does not exist")]
    StoreNotFound(String),
    #[error("query {0} does not exist")]
    NotFound(String),
    #[error("query {id} is {status} and can no longer be cancelled")]
    Inactive { id: String, status: &'static str },
    #[error("invalid NextToken '{0}'")]
    InvalidToken(String),
}

struct Entry {
    info: QueryInfo,
    answer: Option<Arc<Answer>>,
    abort: Option<tokio::task::AbortHandle>,
    /// When it started RUNNING.
    started: Option<Instant>,
    /// The running plan and its stores' tail rows: what a query stopped before its end (cancelled, timed
    /// out) had scanned so far is read from its metrics.
    running: Option<(Arc<dyn ExecutionPlan>, u64)>,
}

impl Entry {
    /// Statistics of a query stopped before its end: its time so far and what its plan had scanned.
    fn stopped(&mut self) {
        if let Some(started) = self.started {
            self.info.execution_ms = started.elapsed().as_millis() as u64;
        }
        if let Some((plan, tail_rows)) = self.running.take() {
            let (scanned, matched, bytes) = sql::statistics(&plan, tail_rows);
            (self.info.events_scanned, self.info.events_matched, self.info.bytes_scanned) = (scanned, matched, bytes);
        }
    }
}

type Entries = Arc<Mutex<BTreeMap<String, Entry>>>;

/// The query service over a [`Lake`].
pub struct QueryEngine {
    lake: Arc<Lake>,
    runtime: Option<tokio::runtime::Runtime>,
    slots: Arc<Semaphore>,
    entries: Entries,
    opts: QueryOptions,
    /// Counts the queries that left QUEUED/RUNNING: what [`QueryEngine::wait`] waits on.
    settled: Settled,
}

type Settled = Arc<tokio::sync::watch::Sender<u64>>;

fn settle(settled: &Settled) {
    settled.send_modify(|n| *n += 1);
}

impl Drop for QueryEngine {
    fn drop(&mut self) {
        // A runtime cannot be dropped from async code; let its threads wind down on their own.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl QueryEngine {
    pub fn new(lake: Arc<Lake>, opts: QueryOptions) -> std::io::Result<QueryEngine> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.threads.max(1))
            .thread_name("lake-query")
            .enable_all()
            .build()?;
        Ok(QueryEngine {
            lake,
            runtime: Some(runtime),
            slots: Arc::new(Semaphore::new(opts.concurrency.max(1))),
            entries: Arc::new(Mutex::new(BTreeMap::new())),
            opts,
            settled: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    fn now(&self) -> i64 {
        (self.lake.clock())().millis()
    }

    /// Checks and plans the statement, then queues it; returns at once with the query QUEUED.
    pub async fn start(&self, statement: &str, id: uuid::Uuid) -> Result<QueryInfo, QueryError> {
        let (sql, ids) = sql::prepare(statement).map_err(|e| QueryError::InvalidStatement(e.to_string()))?;
        if ids.is_empty() {
            return Err(QueryError::InvalidStatement(
                "the query must name an event data store by its id in FROM".into(),
            ));
        }
        let mut tables = Vec::new();
        for store in &ids {
            match self.lake.table(store) {
                Some(t) => tables.push((store.clone(), t)),
                None => return Err(QueryError::StoreNotFound(store.clone())),
            }
        }
        tables.sort_by(|a, b| a.0.cmp(&b.0));
        tables.dedup_by(|a, b| a.0 == b.0);
        // Plan against empty stores: a bad statement fails here, not in the background.
        let empty: Vec<(String, Snapshot)> =
            tables.iter().map(|(id, _)| (id.clone(), Snapshot { files: Vec::new(), tail: Vec::new() })).collect();
        let ctx = sql::session(&empty, self.opts.memory_limit, 1).await.map_err(invalid)?;
        sql::plan(&ctx, &sql).await.map_err(invalid)?;

        let now = self.now();
        let info = QueryInfo {
            id: id.to_string(),
            statement: statement.to_string(),
            stores: tables.iter().map(|(id, _)| id.clone()).collect(),
            status: QueryStatus::Queued,
            error: None,
            created: now,
            execution_ms: 0,
            events_matched: 0,
            events_scanned: 0,
            bytes_scanned: 0,
            results_count: 0,
        };
        {
            let mut entries = self.entries.lock();
            entries.retain(|_, e| e.info.status.is_active() || e.info.created >= now - KEEP_FOR_MS);
            entries.insert(
                info.id.clone(),
                Entry { info: info.clone(), answer: None, abort: None, started: None, running: None },
            );
        }
        let durable = self.lake.durable_seq();
        let (entries, slots, opts, qid, settled) =
            (self.entries.clone(), self.slots.clone(), self.opts.clone(), info.id.clone(), self.settled.clone());
        let original = statement.to_string();
        let work = async move {
            let Ok(_permit) = slots.acquire_owned().await else { return };
            let started = Instant::now();
            if let Some(e) = entries.lock().get_mut(&qid) {
                e.info.status = QueryStatus::Running;
                e.started = Some(started);
            }
            let run = async {
                // A query sees every event acknowledged before it started: wait for the stores to take it in.
                if let Some(seq) = durable {
                    let waits: Vec<_> = tables.iter().map(|(_, t)| t.clone()).collect();
                    let _ = tokio::task::spawn_blocking(move || {
                        for t in waits {
                            t.wait_applied(seq.0, CATCH_UP_WAIT);
                        }
                    })
                    .await;
                }
                let snaps: Vec<(String, Snapshot)> = tables.iter().map(|(id, t)| (id.clone(), t.snapshot())).collect();
                let tail_rows = snaps.iter().flat_map(|(_, s)| &s.tail).map(|b| b.num_rows() as u64).sum();
                let ctx = sql::session(&snaps, opts.memory_limit, opts.threads).await?;
                let plan = sql::plan(&ctx, &sql).await?;
                if let Some(e) = entries.lock().get_mut(&qid) {
                    e.running = Some((plan.clone(), tail_rows));
                }
                sql::run(&ctx, plan, &original, opts.max_result_rows, tail_rows).await
            };
            let outcome = tokio::time::timeout(opts.timeout, run).await;
            let ms = started.elapsed().as_millis() as u64;
            let mut guard = entries.lock();
            let Some(e) = guard.get_mut(&qid) else { return };
            e.abort = None;
            if e.info.status == QueryStatus::Cancelled {
                return;
            }
            e.info.execution_ms = ms;
            match outcome {
                Ok(Ok(answer)) => {
                    e.running = None;
                    e.info.status = QueryStatus::Finished;
                    e.info.events_matched = answer.events_matched;
                    e.info.events_scanned = answer.events_scanned;
                    e.info.bytes_scanned = answer.bytes_scanned;
                    e.info.results_count = answer.rows.len() as u64;
                    e.answer = Some(Arc::new(answer));
                }
                Ok(Err(err)) => {
                    e.stopped();
                    tracing::info!(query = %qid, error = %err, "query failed");
                    e.info.status = QueryStatus::Failed;
                    e.info.error = Some(err.to_string());
                }
                Err(_) => {
                    // What it scanned before it was stopped.
                    e.stopped();
                    e.info.status = QueryStatus::TimedOut;
                    e.info.error = Some(format!("the query ran longer than {} s", opts.timeout.as_secs()));
                }
            }
            drop(guard);
            settle(&settled);
        };
        let rt = self.runtime.as_ref().expect("the query runtime lives as long as the engine");
        let handle = rt.spawn(work);
        if let Some(e) = self.entries.lock().get_mut(&info.id) {
            e.abort = Some(handle.abort_handle());
        }
        // A panic in DataFusion fails the query, not the server.
        let (entries, qid, settled) = (self.entries.clone(), info.id.clone(), self.settled.clone());
        rt.spawn(async move {
            if let Err(e) = handle.await
                && e.is_panic()
            {
                tracing::error!(query = %qid, "query panicked");
                if let Some(e) = entries.lock().get_mut(&qid) {
                    e.stopped();
                    e.info.status = QueryStatus::Failed;
                    e.info.error = Some("the query failed (internal error)".into());
                }
                settle(&settled);
            }
        });
        Ok(info)
    }

    pub fn describe(&self, id: &str) -> Result<QueryInfo, QueryError> {
        self.entries.lock().get(id).map(|e| e.info.clone()).ok_or_else(|| QueryError::NotFound(id.to_string()))
    }

    /// A page of up to `max` rows from `token` (an offset this engine handed out). Before the query
    /// finishes the page is empty, with its status.
    pub fn results(&self, id: &str, token: Option<&str>, max: usize) -> Result<ResultsPage, QueryError> {
        let (info, answer) = {
            let entries = self.entries.lock();
            let e = entries.get(id).ok_or_else(|| QueryError::NotFound(id.to_string()))?;
            (e.info.clone(), e.answer.clone())
        };
        let from = match token {
            None => 0,
            Some(t) => t
                .strip_prefix("rows-")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| QueryError::InvalidToken(t.to_string()))?,
        };
        let Some(answer) = answer else {
            return Ok(ResultsPage { info, columns: Vec::new(), rows: Vec::new(), next: None });
        };
        if from > answer.rows.len() {
            return Err(QueryError::InvalidToken(token.unwrap_or_default().to_string()));
        }
        let to = (from + max.max(1)).min(answer.rows.len());
        let next = (to < answer.rows.len()).then(|| format!("rows-{to:08}"));
        Ok(ResultsPage { info, columns: answer.columns.clone(), rows: answer.rows[from..to].to_vec(), next })
    }

    /// Cancels a QUEUED or RUNNING query.
    pub fn cancel(&self, id: &str) -> Result<QueryInfo, QueryError> {
        let mut entries = self.entries.lock();
        let e = entries.get_mut(id).ok_or_else(|| QueryError::NotFound(id.to_string()))?;
        if !e.info.status.is_active() {
            return Err(QueryError::Inactive { id: id.to_string(), status: e.info.status.as_str() });
        }
        if let Some(a) = e.abort.take() {
            a.abort();
        }
        e.stopped();
        e.info.status = QueryStatus::Cancelled;
        let info = e.info.clone();
        drop(entries);
        settle(&self.settled);
        Ok(info)
    }

    /// The queries on `store` created in `[start, end]` (epoch ms) with `status`, newest first.
    pub fn list(
        &self,
        store: &str,
        start: Option<i64>,
        end: Option<i64>,
        status: Option<QueryStatus>,
    ) -> Vec<QueryInfo> {
        let now = self.now();
        let mut out: Vec<QueryInfo> = self
            .entries
            .lock()
            .values()
            .map(|e| e.info.clone())
            .filter(|i| i.stores.iter().any(|s| s == store))
            .filter(|i| i.created >= start.unwrap_or(now - KEEP_FOR_MS) && end.is_none_or(|e| i.created <= e))
            .filter(|i| status.is_none_or(|s| i.status == s))
            .collect();
        out.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
        out
    }

    /// Waits until the query leaves QUEUED/RUNNING or `timeout` passes; its state then. Woken by the query
    /// settling, not by polling: a client long-polling DescribeQuery hears of the answer as it is ready.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<QueryInfo, QueryError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before the first look: a query settling in between still wakes the wait.
        let mut settled = self.settled.subscribe();
        loop {
            let info = self.describe(id)?;
            if !info.status.is_active() {
                return Ok(info);
            }
            match tokio::time::timeout_at(deadline, settled.changed()).await {
                Ok(Ok(())) => continue,
                // The deadline passed (or the engine is going away): the state as it is.
                _ => return self.describe(id),
            }
        }
    }
}

fn invalid(e: SqlError) -> QueryError {
    QueryError::InvalidStatement(e.to_string())
}
