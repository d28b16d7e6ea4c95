//! The lookup workload: which queries (every attribute kind with frequent, middling and rare values sampled
//! from the data, 2- and 3-attribute ANDs from real records), and the timed runner shared by the HTTP client
//! and the SQLite baseline.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use model::{AttributeKey, IndexFields};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::corpus::Stats;
use crate::report::Latencies;
use crate::server::Client;

/// The two-attribute ANDs and the three-attribute AND that are measured.
const PAIRS: [[AttributeKey; 2]; 3] = [
    [AttributeKey::EventName, AttributeKey::Username],
    [AttributeKey::EventSource, AttributeKey::ErrorCode],
    [AttributeKey::Username, AttributeKey::SourceIpAddress],
];
const TRIPLE: [AttributeKey; 3] = [AttributeKey::EventSource, AttributeKey::EventName, AttributeKey::Username];

/// One LookupEvents request: attribute equalities AND-ed, one page of 50.
#[derive(Debug, Clone)]
pub struct Query {
    /// Which row of the report it counts towards (`EventName`, `EventName+Username`, …).
    pub group: String,
    pub attrs: Vec<(AttributeKey, String)>,
}

/// One answered lookup: the event ids on the page, newest first, and the server's own time for it when the
/// answer said (`Server-Timing: app;dur=…`).
#[derive(Debug, Default)]
pub struct Page {
    pub ids: Vec<String>,
    pub server: Option<Duration>,
}

/// Measured latencies per group and overall.
#[derive(Debug)]
pub struct LookupResult {
    pub groups: Vec<(String, Latencies)>,
    pub all: Latencies,
    pub per_sec: f64,
    /// The event ids on the page of each query (from the untimed warm-up pass), to compare engines.
    pub pages: Vec<Vec<String>>,
    /// Server time per lookup, per group and overall, when the server reported it on every answer.
    pub server_groups: Vec<(String, Latencies)>,
    pub server_all: Option<Latencies>,
    /// The same queries from one client, `single_reps` times each: the single-query latency.
    pub single: Option<Box<LookupResult>>,
}

impl LookupResult {
    pub fn page_sizes(&self) -> Vec<usize> {
        self.pages.iter().map(Vec::len).collect()
    }
}

/// Samples grouped by the query group, in the order groups first appear in `queries`.
pub fn by_group(queries: &[Query], samples: &[(usize, Duration)]) -> Vec<(String, Latencies)> {
    let mut groups: Vec<(String, Latencies)> = Vec::new();
    for q in queries {
        if groups.iter().any(|(g, _)| *g == q.group) {
            continue;
        }
        let mine = samples.iter().filter(|(i, _)| queries[*i].group == q.group).map(|(_, d)| *d).collect();
        groups.push((q.group.clone(), Latencies::new(mine)));
    }
    groups
}

fn group_name(keys: &[AttributeKey]) -> String {
    keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join("+")
}

/// The query set, deterministic for a given corpus.
pub fn choose_queries(stats: &Stats) -> Vec<Query> {
    let mut out = Vec::new();
    // Provenance is the same for every benchmark record (all ingested by one key): not a lookup workload.
    for key in AttributeKey::ALL.into_iter().filter(|k| *k != AttributeKey::Provenance) {
        let values: Vec<String> = match key {
            AttributeKey::EventId => {
                let n = stats.samples.len();
                [0, n / 2, n.saturating_sub(1)]
                    .iter()
                    .filter_map(|&i| stats.samples.get(i))
                    .map(|f| f.event_id.clone())
                    .collect()
            }
            _ => {
                let mut by_count: Vec<(&String, &u64)> = stats.counts.get(&key).into_iter().flatten().collect();
                // Most frequent first; ties broken by value so the choice is deterministic.
                by_count.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
                let n = by_count.len();
                let mut picks: Vec<usize> = vec![0, n / 2, n.saturating_sub(1)];
                picks.dedup();
                picks.into_iter().filter_map(|i| by_count.get(i)).map(|(v, _)| (*v).clone()).collect()
            }
        };
        for v in values {
            out.push(Query { group: key.as_str().to_string(), attrs: vec![(key, v)] });
        }
    }
    for pair in PAIRS {
        out.extend(from_samples(stats, &pair, 3));
        // Both most frequent values at once: a large or empty intersection, the hard case for an AND.
        let attrs: Vec<(AttributeKey, String)> =
            pair.iter().filter_map(|&k| most_frequent(stats, k).map(|v| (k, v))).collect();
        if attrs.len() == pair.len() {
            out.push(Query { group: group_name(&pair), attrs });
        }
    }
    out.extend(from_samples(stats, &TRIPLE, 4));
    out
}

fn most_frequent(stats: &Stats, key: AttributeKey) -> Option<String> {
    let counts = stats.counts.get(&key)?;
    counts.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))).map(|(v, _)| v.clone())
}

/// `n` queries whose values come from sampled records that carry every key (so they match something).
fn from_samples(stats: &Stats, keys: &[AttributeKey], n: usize) -> Vec<Query> {
    let usable: Vec<&IndexFields> =
        stats.samples.iter().filter(|f| keys.iter().all(|k| !k.values(f).is_empty())).collect();
    let step = (usable.len() / n.max(1)).max(1);
    usable
        .iter()
        .step_by(step)
        .take(n)
        .map(|f| Query {
            group: group_name(keys),
            attrs: keys.iter().map(|&k| (k, k.values(f)[0].to_string())).collect(),
        })
        .collect()
}

/// Runs each query once untimed (warm-up, pages), then `reps` times in a shuffled order from `threads`
/// workers, each with its own executor from `make`; then, when `single_reps` > 0, again from one worker.
pub fn run<E, M>(queries: &[Query], threads: usize, reps: usize, single_reps: usize, make: M) -> Result<LookupResult>
where
    M: Fn() -> Result<E> + Sync,
    E: FnMut(&Query) -> Result<Page>,
{
    let mut warm = make()?;
    let pages = queries.iter().map(|q| warm(q).map(|p| p.ids)).collect::<Result<Vec<_>>>()?;
    drop(warm);
    let mut result = timed(queries, threads, reps, &make)?;
    result.pages = pages;
    if single_reps > 0 {
        result.single = Some(Box::new(timed(queries, 1, single_reps, &make)?));
    }
    Ok(result)
}

fn timed<E, M>(queries: &[Query], threads: usize, reps: usize, make: &M) -> Result<LookupResult>
where
    M: Fn() -> Result<E> + Sync,
    E: FnMut(&Query) -> Result<Page>,
{
    let mut jobs: Vec<usize> = (0..reps).flat_map(|_| 0..queries.len()).collect();
    jobs.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(42));
    let next = AtomicUsize::new(0);
    type Sample = (usize, Duration, Option<Duration>);
    let timings: Mutex<Vec<Sample>> = Mutex::new(Vec::with_capacity(jobs.len()));
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut exec = make()?;
                    let mut mine: Vec<Sample> = Vec::new();
                    while let Some(&q) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let t = Instant::now();
                        let page = exec(&queries[q])?;
                        mine.push((q, t.elapsed(), page.server));
                    }
                    timings.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.extend(mine);
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("lookup thread panicked"))?)
    })?;
    let elapsed = start.elapsed();
    let timings = timings.into_inner().unwrap_or_default();
    let client: Vec<(usize, Duration)> = timings.iter().map(|&(q, d, _)| (q, d)).collect();
    let server: Vec<(usize, Duration)> = timings.iter().filter_map(|&(q, _, s)| s.map(|s| (q, s))).collect();
    // Server time is reported only when every answer carried it: a partial set would be a biased sample.
    let has_server = !server.is_empty() && server.len() == client.len();
    Ok(LookupResult {
        groups: by_group(queries, &client),
        all: Latencies::new(client.iter().map(|(_, d)| *d).collect()),
        per_sec: jobs.len() as f64 / elapsed.as_secs_f64(),
        pages: Vec::new(),
        server_groups: if has_server { by_group(queries, &server) } else { Vec::new() },
        server_all: has_server.then(|| Latencies::new(server.iter().map(|(_, d)| *d).collect())),
        single: None,
    })
}

/// The workload against the server: LookupEvents JSON 1.1 over HTTP, signed, one keep-alive client per thread.
pub fn run_http(
    client: &Client,
    queries: &[Query],
    threads: usize,
    reps: usize,
    single_reps: usize,
) -> Result<LookupResult> {
    run(queries, threads, reps, single_reps, || {
        let c = client.clone();
        Ok(move |q: &Query| c.lookup(&q.attrs))
    })
}
