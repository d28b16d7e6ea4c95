//! Benchmark of the event-history index on synthetic-but-skewed IndexFields: apply rate, bytes/event,
//! reopen time and lookup latency per attribute kind and for AND-ed attributes.
//!
//! `cargo run --release -p index --example index_bench -- [EVENTS] [DIR]`

use std::time::{Duration, Instant};

use index::EventIndex;
use model::{AttributeKey, EventCategory, EventQuery, EventTime, IndexFields, Resource, Seq};

/// splitmix64: deterministic and dependency-free; quality is ample for picking synthetic values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A skewed rank in 0..n: low ranks are much more frequent (roughly Zipf-like).
    fn skewed(&mut self, n: usize) -> usize {
        ((n as f64) * self.unit().powf(3.0)) as usize % n
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

const SOURCES: [&str; 12] = [
    "s3.amazonaws.com",
    "ec2.amazonaws.com",
    "iam.amazonaws.com",
    "sts.amazonaws.com",
    "lambda.amazonaws.com",
    "dynamodb.amazonaws.com",
    "kms.amazonaws.com",
    "cloudwatch.amazonaws.com",
    "logs.amazonaws.com",
    "sqs.amazonaws.com",
    "sns.amazonaws.com",
    "rds.amazonaws.com",
];
const VERBS: [&str; 10] = ["Get", "List", "Describe", "Create", "Delete", "Put", "Update", "Attach", "Start", "Stop"];
const ERRORS: [&str; 6] = [
    "AccessDenied",
    "ThrottlingException",
    "NoSuchKey",
    "ValidationException",
    "ResourceNotFoundException",
    "Client.UnauthorizedOperation",
];
const ACCOUNTS: [&str; 5] = ["123456789012", "210987654321", "111122223333", "444455556666", "777788889999"];

struct Generator {
    rng: Rng,
    time_ms: i64,
    names: Vec<(String, &'static str)>,
    agents: Vec<String>,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        let mut names = Vec::new();
        for i in 0..300 {
            let source = SOURCES[i % SOURCES.len()];
            names.push((
                format!("{}{}Resource{}", VERBS[i % VERBS.len()], source.split('.').next().unwrap_or(""), i / 30),
                source,
            ));
        }
        let mut agents = vec!["console.amazonaws.com".to_string(), "AWS Internal".to_string()];
        for i in 0..60 {
            agents.push(format!(
                "aws-cli/2.{}.{} Python/3.11.{} Linux/5.15.0-{}-generic exe/x86_64.ubuntu.22 prompt/off command/s3.cp \
                 md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#s3.cp Boto3/1.34.{} botocore/1.34.{}",
                i % 17,
                i,
                i % 9,
                i * 7,
                i,
                i
            ));
        }
        Generator { rng: Rng(seed), time_ms: 1_704_067_200_000, names, agents }
    }

    fn event(&mut self) -> IndexFields {
        let r = &mut self.rng;
        // ~30 events/s on average, with a few percent arriving up to 5 minutes late (out of time order).
        self.time_ms += (r.next() % 60) as i64;
        let late = if r.chance(0.03) { (r.next() % 300_000) as i64 } else { 0 };
        let (name, source) = self.names[r.skewed(self.names.len())].clone();
        let user = r.skewed(200);
        let account = ACCOUNTS[user % ACCOUNTS.len()];
        let has_user = !r.chance(0.05);
        let key = format!("AKIA{:012}{:04}", user, r.next() % 3);
        let ip = r.skewed(2000);
        let mut resources = Vec::new();
        for _ in 0..(r.next() % 3) {
            let res = r.skewed(5000);
            resources.push(Resource {
                resource_type: Some(format!("AWS::{}::Thing{}", source.split('.').next().unwrap_or(""), res % 4)),
                arn: Some(format!(
                    "arn:aws:{}:us-east-1:{account}:thing/res-{res}",
                    source.split('.').next().unwrap_or("")
                )),
            });
        }
        let mut account_ids = vec![account.to_string()];
        if r.chance(0.1) {
            account_ids.push(ACCOUNTS[(user + 1) % ACCOUNTS.len()].to_string());
        }
        let u = (r.next(), r.next());
        IndexFields {
            event_id: format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                u.0 >> 32,
                (u.0 >> 16) & 0xffff,
                u.0 & 0xfff,
                (u.1 >> 48) & 0x3fff | 0x8000,
                u.1 & 0xffff_ffff_ffff
            ),
            event_time: EventTime(self.time_ms - late),
            event_name: name.clone(),
            event_source: source.to_string(),
            read_only: match r.next() % 20 {
                0 => None,
                1..=12 => Some(true),
                _ => Some(false),
            },
            username: has_user.then(|| format!("user-{user}")),
            access_key_id: has_user.then_some(key),
            resources,
            source_ip: Some(format!("10.{}.{}.{}", ip / 65536, (ip / 256) % 256, ip % 256)),
            error_code: r.chance(0.03).then(|| ERRORS[r.skewed(ERRORS.len())].to_string()),
            user_agent: Some(self.agents[r.skewed(self.agents.len())].clone()),
            account_ids,
            provenance: Default::default(),
            category: if r.chance(0.001) { EventCategory::Insight } else { EventCategory::Standard },
        }
    }
}

/// Builds a query from a sampled event (`None` when the event lacks one of the attributes).
type QueryMaker = Box<dyn Fn(&IndexFields) -> Option<Vec<(AttributeKey, String)>>>;

/// `VmHWM` and `VmRSS` of this process in MiB, from /proc/self/status (Linux only; 0 elsewhere).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` 5), so the next reading is the peak of one phase.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn print_rss(phase: &str) {
    let (hwm, rss) = rss_mib();
    println!("rss {phase}: peak (VmHWM) {hwm:.0} MiB, now (VmRSS) {rss:.0} MiB");
}

fn print_cache(index: &EventIndex, events: u64) {
    let (hits, misses) = index.cache_hit_counts();
    println!(
        "resident segment structures {:.2} bytes/event; block cache {:.1} MiB held, {hits} hits, {misses} misses",
        index.heap_bytes() as f64 / events as f64,
        index.cache_resident_bytes() as f64 / (1 << 20) as f64
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let dir = args.next().map(std::path::PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("index-bench"));
    // INDEX_BENCH_QUERY_ONLY=1 reuses an index built by an earlier run (same EVENTS, same generator seed).
    let query_only = std::env::var_os("INDEX_BENCH_QUERY_ONLY").is_some();
    if !query_only {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("events={events} dir={}", dir.display());

    // Apply in batches of 4,000, timing only `apply` (generation is the caller's cost).
    let index = EventIndex::open(&dir)?;
    let mut generator = Generator::new(42);
    let mut sample = Vec::new();
    let mut applied = Duration::ZERO;
    let mut seq = 0u64;
    while seq < events {
        let n = (events - seq).min(4_000);
        let batch_fields: Vec<IndexFields> = (0..n).map(|_| generator.event()).collect();
        let batch: Vec<(Seq, &IndexFields)> =
            batch_fields.iter().enumerate().map(|(i, f)| (Seq(seq + i as u64 + 1), f)).collect();
        let t = Instant::now();
        if !query_only {
            index.apply(&batch)?;
        }
        applied += t.elapsed();
        seq += n;
        // Query values are drawn from real events, so popular values are queried more, as users would.
        sample.extend(batch_fields.into_iter().step_by(97).take(40));
    }
    println!("apply: {:.0} events/s ({:.1} s)", events as f64 / applied.as_secs_f64(), applied.as_secs_f64());
    // The sampled events are kept for queries; the generator's batches are freed as they go.
    print_rss("during apply (background merges included)");
    index.persist()?;
    if query_only {
        drop(index);
        reset_peak_rss();
        let t = Instant::now();
        let index = EventIndex::open(&dir)?;
        println!("reopen: {:.0} ms, checkpoint {:?}", t.elapsed().as_secs_f64() * 1000.0, index.checkpoint());
        print_rss("after reopen (fresh process)");
        find_event_ids(&index, &sample)?;
        run_queries(&index, &sample)?;
        print_rss("after reopen + find_event_id + queries (fresh process)");
        print_cache(&index, events);
        return Ok(());
    }
    println!(
        "disk after apply + persist: {:.1} bytes/event, {} segments",
        index.disk_bytes() as f64 / events as f64,
        index.segment_sizes().len()
    );
    reset_peak_rss();
    let t = Instant::now();
    index.compact()?;
    println!(
        "disk after pending merges: {:.1} bytes/event (merges {:.1} s), segments {:?}, heap {:.1} bytes/event",
        index.disk_bytes() as f64 / events as f64,
        t.elapsed().as_secs_f64(),
        index.segment_sizes(),
        index.heap_bytes() as f64 / events as f64
    );
    print_rss("during pending merges (compact)");
    let parts = index.disk_bytes_by_part();
    println!(
        "disk by part (bytes/event): {}",
        parts.iter().map(|(name, b)| format!("{name} {:.2}", *b as f64 / events as f64)).collect::<Vec<_>>().join(", ")
    );
    drop(index);
    let t = Instant::now();
    reset_peak_rss();
    let index = EventIndex::open(&dir)?;
    println!("reopen: {:.0} ms, checkpoint {:?}", t.elapsed().as_secs_f64() * 1000.0, index.checkpoint());
    print_rss("after reopen");
    find_event_ids(&index, &sample)?;
    run_queries(&index, &sample)?;
    print_rss("after reopen + find_event_id + queries");
    print_cache(&index, events);
    Ok(())
}

/// `find_event_id` latency for absent ids (the dedupe check of every ingested record) and present ones.
fn find_event_ids(index: &EventIndex, sample: &[IndexFields]) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(99);
    let absent: Vec<String> = (0..100_000)
        .map(|_| {
            let (a, b) = (rng.next(), rng.next());
            format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                (b >> 48) & 0x3fff | 0x8000,
                b & 0xffff_ffff_ffff
            )
        })
        .collect();
    let t = Instant::now();
    let mut found = 0;
    for id in &absent {
        found += usize::from(index.find_event_id(id)?.is_some());
    }
    let per_absent = t.elapsed().as_secs_f64() * 1e6 / absent.len() as f64;
    let t = Instant::now();
    let mut present = 0;
    for f in sample {
        present += usize::from(index.find_event_id(&f.event_id)?.is_some());
    }
    let per_present = t.elapsed().as_secs_f64() * 1e6 / sample.len().max(1) as f64;
    println!(
        "find_event_id: absent {per_absent:.2} µs/call ({found} false hits of {}), present {per_present:.2} µs/call ({present}/{} found)",
        absent.len(),
        sample.len()
    );
    Ok(())
}

/// Lookup latency per query kind (single thread), then throughput on two threads.
fn run_queries(index: &EventIndex, sample: &[IndexFields]) -> Result<(), Box<dyn std::error::Error>> {
    let one =
        |k: AttributeKey| -> QueryMaker { Box::new(move |f| k.values(f).first().map(|v| vec![(k, v.to_string())])) };
    let and = |ks: &'static [AttributeKey]| -> QueryMaker {
        Box::new(move |f| ks.iter().map(|k| k.values(f).first().map(|v| (*k, v.to_string()))).collect())
    };
    let kinds: Vec<(&str, QueryMaker)> = vec![
        ("EventId", one(AttributeKey::EventId)),
        ("EventName", one(AttributeKey::EventName)),
        ("ReadOnly", one(AttributeKey::ReadOnly)),
        ("Username", one(AttributeKey::Username)),
        ("ResourceType", one(AttributeKey::ResourceType)),
        ("ResourceName", one(AttributeKey::ResourceName)),
        ("EventSource", one(AttributeKey::EventSource)),
        ("AccessKeyId", one(AttributeKey::AccessKeyId)),
        ("SourceIPAddress", one(AttributeKey::SourceIpAddress)),
        ("ErrorCode", one(AttributeKey::ErrorCode)),
        ("UserAgent", one(AttributeKey::UserAgent)),
        ("AccountId", one(AttributeKey::AccountId)),
        ("none (all events)", Box::new(|_| Some(vec![]))),
        ("EventName+Username", and(&[AttributeKey::EventName, AttributeKey::Username])),
        ("Username+SourceIPAddress", and(&[AttributeKey::Username, AttributeKey::SourceIpAddress])),
        ("EventSource+ErrorCode", and(&[AttributeKey::EventSource, AttributeKey::ErrorCode])),
        ("ReadOnly+AccountId", and(&[AttributeKey::ReadOnly, AttributeKey::AccountId])),
        (
            "EventSource+Username+ReadOnly",
            and(&[AttributeKey::EventSource, AttributeKey::Username, AttributeKey::ReadOnly]),
        ),
    ];
    let mut rng = Rng(7);
    let mut all_latencies = Vec::new();
    let start = Instant::now();
    println!(
        "{:<32} {:>8} {:>10} {:>10} {:>10} {:>8}",
        "lookup (page of 50)", "queries", "p50 ms", "p99 ms", "max ms", "hits"
    );
    for (name, make) in &kinds {
        let mut lat = Vec::new();
        let mut hits = 0usize;
        let mut tries = 0;
        while lat.len() < 400 && tries < 100_000 {
            tries += 1;
            let f = &sample[rng.next() as usize % sample.len()];
            let Some(attributes) = make(f) else { continue };
            // One in four lookups also asks for a time window, one in four continues to a second page.
            let mut q = EventQuery::equal(attributes);
            if rng.chance(0.25) {
                q.end = Some(f.event_time);
                q.start = Some(EventTime(f.event_time.0 - 86_400_000));
            }
            let t = Instant::now();
            let mut page = index.lookup(&q, 50, None)?;
            if rng.chance(0.25)
                && let Some(p) = page.next_position()
            {
                page = index.lookup(&q, 50, Some(p))?;
            }
            lat.push(t.elapsed());
            hits += page.hits.len();
        }
        all_latencies.extend_from_slice(&lat);
        lat.sort();
        println!(
            "{:<32} {:>8} {:>10.3} {:>10.3} {:>10.3} {:>8.1}",
            name,
            lat.len(),
            percentile(&lat, 0.5).as_secs_f64() * 1000.0,
            percentile(&lat, 0.99).as_secs_f64() * 1000.0,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
            hits as f64 / lat.len().max(1) as f64
        );
    }
    let single_thread = all_latencies.len() as f64 / start.elapsed().as_secs_f64();

    // Throughput with two threads (the machine has two cores), the same query mix.
    let queries: Vec<EventQuery> = (0..4_000)
        .filter_map(|i| {
            let f = &sample[rng.next() as usize % sample.len()];
            kinds[i % kinds.len()].1(f).map(EventQuery::equal)
        })
        .collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for half in queries.chunks(queries.len().div_ceil(2)) {
            s.spawn(move || {
                for q in half {
                    let _ = index.lookup(q, 50, None);
                }
            });
        }
    });
    println!(
        "throughput: {:.0} lookups/s single-threaded, {:.0} lookups/s on 2 threads",
        single_thread,
        queries.len() as f64 / t.elapsed().as_secs_f64()
    );
    all_latencies.sort();
    println!(
        "all kinds: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&all_latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&all_latencies, 0.99).as_secs_f64() * 1000.0
    );
    Ok(())
}
