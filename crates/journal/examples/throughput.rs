//! Throughput benchmark of the journal: durable ingest of realistic ~1.5 KB CloudTrail-like JSON from several
//! submitter threads, then bytes/event on disk, reopen time, and point-read latency (50 random seqs per page).
//!
//! `cargo run --release -p journal --example throughput -- [EVENTS] [BLOCK_BYTES] [ZSTD_LEVEL] [DIR] [DICT_BYTES]
//! [DATA]`: `DICT_BYTES` 0 turns dictionaries off (default: the journal's default); `DATA` is `synthetic` (the
//! generator below, default) or `eventgen` (opentrail's realistic generator, the one behind `opentrail gen`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use journal::{Journal, JournalError, JournalOptions, Seq};

/// xorshift64*: deterministic, dependency-free randomness for the synthetic events.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from_digit(self.below(16) as u32, 16).unwrap_or('0')).collect()
    }
    fn uuid(&mut self) -> String {
        format!("{}-{}-4{}-a{}-{}", self.hex(8), self.hex(4), self.hex(3), self.hex(3), self.hex(12))
    }
    fn upper(&mut self, n: usize) -> String {
        (0..n).map(|_| (b'A' + self.below(26) as u8) as char).collect()
    }
}

const EVENTS: [(&str, &str, bool); 12] = [
    ("iam.amazonaws.com", "CreateUser", false),
    ("iam.amazonaws.com", "GetUser", true),
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("ec2.amazonaws.com", "RunInstances", false),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", false),
    ("s3.amazonaws.com", "ListBuckets", true),
    ("s3.amazonaws.com", "CreateBucket", false),
    ("sts.amazonaws.com", "AssumeRole", true),
    ("kms.amazonaws.com", "Decrypt", true),
    ("lambda.amazonaws.com", "Invoke", false),
    ("cloudtrail.amazonaws.com", "LookupEvents", true),
    ("dynamodb.amazonaws.com", "DescribeTable", true),
];
const AGENTS: [&str; 5] = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12 prompt/off command/iam.create-user",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 cfg/retry-mode#legacy",
    "AWS Internal",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.150.1",
];
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];

fn event(rng: &mut Rng, i: u64) -> Vec<u8> {
    let (source, name, read_only) = EVENTS[rng.below(EVENTS.len() as u64) as usize];
    let user = format!("user-{}", rng.below(500));
    let account = ["111122223333", "444455556666", "777788889999"][rng.below(3) as usize];
    let secs = 1_577_869_200 + i / 30;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let day = 1 + (secs / 86_400) % 28;
    format!(
        concat!(
            "{{\"eventVersion\":\"1.11\",\"userIdentity\":{{\"type\":\"IAMUser\",\"principalId\":\"AIDA{pid}\",",
            "\"arn\":\"arn:aws:iam::{acct}:user/{user}\",\"accountId\":\"{acct}\",\"accessKeyId\":\"AKIA{key}\",",
            "\"userName\":\"{user}\",\"sessionContext\":{{\"sessionIssuer\":{{}},\"webIdFederationData\":{{}},",
            "\"attributes\":{{\"creationDate\":\"2020-01-{day:02}T{h:02}:00:00Z\",\"mfaAuthenticated\":\"false\"}}}}}},",
            "\"eventTime\":\"2020-01-{day:02}T{h:02}:{m:02}:{s:02}Z\",\"eventSource\":\"{source}\",\"eventName\":\"{name}\",",
            "\"awsRegion\":\"{region}\",\"sourceIPAddress\":\"{ip1}.{ip2}.{ip3}.{ip4}\",\"userAgent\":\"{agent}\",",
            "\"requestParameters\":{{\"userName\":\"{target}\",\"tags\":[{{\"key\":\"team\",\"value\":\"platform\"}}],",
            "\"instanceId\":\"i-0{iid}\",\"filter\":{{\"name\":\"tag:env\",\"values\":[\"prod\",\"staging\"]}}}},",
            "\"responseElements\":{{\"user\":{{\"path\":\"/\",\"userName\":\"{target}\",\"userId\":\"AIDA{uid}\",",
            "\"arn\":\"arn:aws:iam::{acct}:user/{target}\",\"createDate\":\"Jan {day}, 2020 {h}:{m:02}:{s:02} AM\"}}}},",
            "\"requestID\":\"{req}\",\"eventID\":\"{eid}\",\"readOnly\":{ro},",
            "\"resources\":[{{\"accountId\":\"{acct}\",\"type\":\"AWS::IAM::User\",\"ARN\":\"arn:aws:iam::{acct}:user/{target}\"}}],",
            "\"eventType\":\"AwsApiCall\",\"managementEvent\":true,\"recipientAccountId\":\"{acct}\",",
            "\"eventCategory\":\"Management\",\"tlsDetails\":{{\"tlsVersion\":\"TLSv1.3\",",
            "\"cipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"clientProvidedHostHeader\":\"{host}.amazonaws.com\"}},",
            "\"sessionCredentialFromConsole\":\"{console}\"}}"
        ),
        pid = format!("{}{}", "EXAMPLE", rng.below(500)),
        acct = account,
        user = user,
        key = rng.upper(16),
        day = day,
        h = h,
        m = m,
        s = s,
        source = source,
        name = name,
        region = REGIONS[rng.below(4) as usize],
        ip1 = 10 + rng.below(200),
        ip2 = rng.below(256),
        ip3 = rng.below(256),
        ip4 = rng.below(256),
        agent = AGENTS[rng.below(AGENTS.len() as u64) as usize],
        target = format!("user-{}", rng.below(5000)),
        iid = rng.hex(16),
        uid = rng.upper(17),
        req = rng.uuid(),
        eid = rng.uuid(),
        ro = read_only,
        host = source.split('.').next().unwrap_or("iam"),
        console = rng.below(2) == 0,
    )
    .into_bytes()
}

fn main() -> Result<(), JournalError> {
    let args: Vec<String> = std::env::args().collect();
    let events: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let mut opts = JournalOptions::new(args.get(4).cloned().unwrap_or_else(|| "/work/journal-bench".into()));
    if let Some(b) = args.get(2).and_then(|s| s.parse().ok()) {
        opts.block_bytes = b;
    }
    if let Some(l) = args.get(3).and_then(|s| s.parse().ok()) {
        opts.zstd_level = l;
    }
    if let Some(d) = args.get(5).and_then(|s| s.parse().ok()) {
        opts.dict_bytes = d;
    }
    let data = args.get(6).map_or("synthetic", String::as_str);
    let _ = std::fs::remove_dir_all(&opts.dir);
    let (block_bytes, level, dict_bytes) = (opts.block_bytes, opts.zstd_level, opts.dict_bytes);
    let (j, _) = Journal::open(opts.clone())?;

    // Submitters: like the ingest API, several threads each submitting batches of 100 events and retrying on
    // back-pressure. Each thread cycles through a pre-generated pool of 30 MB of distinct events (far larger than
    // a block, so the repetition does not help compression), so generation cost is not measured.
    const THREADS: u64 = 4;
    const BATCH: u64 = 100;
    const POOL_BATCHES: u64 = 200;
    let per_thread = events / THREADS / BATCH;
    let pool_batches = POOL_BATCHES.min(per_thread);
    let pools: Vec<Vec<Vec<Vec<u8>>>> = (0..THREADS)
        .map(|t| {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
            let mut real = eventgen::generate(&eventgen::GenOptions {
                events: pool_batches * BATCH,
                seed: t + 1,
                ..eventgen::GenOptions::default()
            });
            (0..pool_batches)
                .map(|b| {
                    (0..BATCH)
                        .map(|k| match data {
                            "eventgen" => real.next().map(String::into_bytes).unwrap_or_default(),
                            _ => event(&mut rng, (t * POOL_BATCHES + b) * BATCH + k),
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    // What training costs the writer thread once (it runs inline, before the group that first uses it).
    if dict_bytes > 0 {
        let sample: Vec<&Vec<u8>> = pools[0]
            .iter()
            .flatten()
            .take_while({
                let mut n = 0;
                move |r| {
                    n += r.len();
                    n <= opts.dict_train_bytes
                }
            })
            .collect();
        let sizes: Vec<usize> = sample.iter().map(|r| r.len()).collect();
        let flat: Vec<u8> = sample.iter().flat_map(|r| r.iter().copied()).collect();
        let t = Instant::now();
        let dict = zstd::dict::from_continuous(&flat, &sizes, dict_bytes).map_err(|e| JournalError::Io {
            op: "train dictionary",
            path: opts.dir.clone(),
            source: e,
        })?;
        println!(
            "training a {} byte dictionary on {} records ({} bytes): {:.3}s",
            dict.len(),
            sizes.len(),
            flat.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let total_events = per_thread * BATCH * THREADS;
    let raw_bytes: u64 = pools
        .iter()
        .map(|pool| {
            let pool_bytes: u64 = pool.iter().flatten().map(|r| r.len() as u64).sum();
            pool_bytes * per_thread / pool.len() as u64
        })
        .sum();
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = pools
        .into_iter()
        .map(|pool| {
            let j = j.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let batch = &pool[(i % pool.len() as u64) as usize];
                    loop {
                        let acked = acked.clone();
                        let done = Box::new(move |r: Result<journal::SeqRange, JournalError>| {
                            let r = r.expect("group commit failed");
                            acked.fetch_add(r.len(), Ordering::Relaxed);
                        });
                        match j.submit(batch.clone(), done) {
                            Ok(()) => break,
                            Err(JournalError::Backpressure { .. }) => std::thread::sleep(Duration::from_millis(1)),
                            Err(e) => panic!("submit: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("submitter");
    }
    while acked.load(Ordering::Relaxed) < total_events {
        j.wait_durable_after(Some(Seq(total_events - 1)), Duration::from_millis(100));
    }
    let took = start.elapsed().as_secs_f64();
    let stats = j.stats();
    println!(
        "{data} block_bytes={block_bytes} zstd_level={level} dict_bytes={dict_bytes}: {total_events} events ({:.0} B avg) in {took:.2}s: \
         {:.0} events/s, {:.1} MB/s raw, {:.1} bytes/event on disk (ratio {:.1}x), {} groups, {} fsyncs, \
         mean fsync {:.2} ms, {} dictionaries ({} bytes)",
        raw_bytes as f64 / total_events as f64,
        total_events as f64 / took,
        raw_bytes as f64 / took / 1e6,
        stats.bytes_on_disk as f64 / total_events as f64,
        raw_bytes as f64 / stats.bytes_on_disk as f64,
        stats.groups,
        stats.fsyncs,
        stats.total_fsync_micros as f64 / stats.fsyncs.max(1) as f64 / 1000.0,
        stats.dictionaries,
        stats.dictionary_bytes,
    );
    drop(j);

    let t = Instant::now();
    let (j, rec) = Journal::open(opts)?;
    println!(
        "reopen: {:.3}s for {} segments, last seq {:?} (page cache warm)",
        t.elapsed().as_secs_f64(),
        rec.segments,
        rec.last_seq
    );

    // Point reads as a lookup page does them: 50 random seqs, read_many, fresh journal so the cache is cold.
    let mut rng = Rng(42);
    const PAGES: usize = 1000;
    let mut lat: Vec<f64> = (0..PAGES)
        .map(|_| {
            let seqs: Vec<Seq> = (0..50).map(|_| Seq(1 + rng.below(total_events))).collect();
            let t = Instant::now();
            let recs = j.read_many(&seqs).expect("read_many");
            assert_eq!(recs.len(), 50);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "read_many of 50 random seqs ({PAGES} pages): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat[PAGES / 2],
        lat[PAGES * 99 / 100],
        lat[PAGES - 1]
    );
    let t = Instant::now();
    let n = j.scan(Seq(1)).count();
    println!("scan: {n} records in {:.2}s", t.elapsed().as_secs_f64());
    Ok(())
}
