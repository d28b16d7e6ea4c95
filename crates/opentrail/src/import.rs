//! `opentrail ingest s3://bucket/prefix` and `opentrail ingest DIR`: import an existing CloudTrail history
//! (an `AWSLogs/` tree in any S3-compatible bucket, or in a folder) with a resumable position.
//!
//! The objects under the source are listed and taken in key order (digests and other objects skipped and
//! counted), fetched concurrently but handed on in that order, and sent as they are stored: a run of
//! consecutive `.json.gz` log files is concatenated into one request body (the server gunzips the members
//! and splits the `{"Records":[…]}` documents one after another), so the client neither decompresses nor
//! parses. A body the server refuses whole (too large, too many records, not gzip or not log files) is sent
//! again file by file, split into records here. An object is done only once the server has acknowledged
//! every record of its request; the position is the last key of the done prefix of the key order
//! (`done_through`), saved crash-safely (`atomic-file`) at most every second and when the run ends. A run
//! interrupted anywhere (Ctrl-C, kill -9, a network error, the server gone) and started again lists the
//! keys after the position; whatever was acknowledged but not yet in the position is sent again and the
//! server's dedupe by eventID stores it once ("already stored"). Format: `docs/formats/import-state.md`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use buckets::{Bucket, BucketError, BucketTarget, S3Target};
use bytes::Bytes;
use client::{Client, ClientError};
use serde::{Deserialize, Serialize};

use crate::ingest::{Skip, classify, walk_folder};

/// Hard-coded: requests in flight at once. Four, so that on two cores two requests are being decoded, parsed
/// and compressed by the server while a third waits for its fsync and a fourth is on the wire (with three, a
/// core idled whenever two were waiting).
const SENDERS: usize = 4;
/// Hard-coded: S3 objects fetched at once (handed on in key order).
const S3_FETCHES: usize = 16;
/// Hard-coded: fetched objects waiting to be grouped into requests.
const FETCHED_QUEUE: usize = 64;
/// Hard-coded: the decoded bytes (from the gzip trailers) one request aims at; halved, down to
/// [`MIN_GROUP_DECODED_BYTES`], each time the server refuses a body as too large or too many records.
const GROUP_DECODED_BYTES: usize = 8 << 20;
const MIN_GROUP_DECODED_BYTES: usize = 256 << 10;
/// Hard-coded: the position is saved at most this often while a run goes on (and always when it ends).
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// The version of the position file this code writes and reads.
const STATE_VERSION: u32 = 1;

/// Where S3 is and who reads it: `--s3-endpoint`, `--s3-region`, `--s3-profile`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct S3Args {
    /// The S3 endpoint of an s3:// source [default: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else
    /// https://s3.<region>.amazonaws.com]. Plain http only to loopback.
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    /// The Region S3 requests are signed for [default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1].
    #[arg(long)]
    pub s3_region: Option<String>,
    /// Read S3 with this profile of the shared credentials file [default: the credentials opentrail is
    /// called with: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else AWS_PROFILE].
    #[arg(long)]
    pub s3_profile: Option<String>,
}

/// What an import is told besides its source.
pub struct ImportOptions<'a> {
    pub endpoint: &'a str,
    /// Records per request when a file is split here (the fallback).
    pub batch: usize,
    /// The position file [default: one per (server, source) under the user's state dir].
    pub state: Option<&'a Path>,
    /// Forget the position and send everything again.
    pub restart: bool,
    /// The most log files in one request.
    pub files_per_request: usize,
    /// Send no faster than this (records a second, over the run), to spare a server busy with live traffic.
    pub max_events_per_second: Option<f64>,
    pub s3: &'a S3Args,
}

/// Whether `input` is imported with a position (an s3:// URL or a folder) rather than read as a file.
pub fn is_import_source(input: &str) -> bool {
    input.starts_with("s3://") || Path::new(input).is_dir()
}

/// One object to import: its key (a folder's: the path below it, `/`-separated) and size as stored.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    key: String,
    size: u64,
}

/// The log files after the position, in key order, and what was skipped among them.
#[derive(Debug, Default)]
struct Listing {
    objects: Vec<Entry>,
    digests: u64,
    other: u64,
}

/// Where the objects are.
enum Source {
    Folder { root: PathBuf },
    S3 { bucket: Bucket, prefix: String, endpoint: String },
}

/// `s3://bucket/prefix` as (bucket, prefix).
fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| anyhow!("{url}: not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("{url}: no bucket name (s3://BUCKET/PREFIX)");
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// The first of the given values that is set and not empty.
fn first_set(flag: Option<&str>, env: &[&str]) -> Option<String> {
    flag.map(str::to_string).into_iter().chain(env.iter().filter_map(|v| std::env::var(v).ok())).find(|v| !v.is_empty())
}

impl Source {
    fn open(input: &str, s3: &S3Args) -> Result<Source> {
        if !input.starts_with("s3://") {
            let root = std::fs::canonicalize(input).with_context(|| format!("open {input}"))?;
            return Ok(Source::Folder { root });
        }
        let (bucket, prefix) = parse_s3_url(input)?;
        let region = first_set(s3.s3_region.as_deref(), &["AWS_REGION", "AWS_DEFAULT_REGION"])
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = first_set(s3.s3_endpoint.as_deref(), &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let cred = match &s3.s3_profile {
            Some(p) => client::named_profile_credential(p).with_context(|| format!("--s3-profile {p}"))?,
            None => client::credentials().context("credentials for S3")?,
        };
        let target = S3Target {
            endpoint: endpoint.clone(),
            region,
            access_key_id: cred.access_key_id,
            secret_access_key: cred.secret_access_key,
            object_lock: None,
        };
        let bucket = Bucket::open(&bucket, &BucketTarget::S3(target))?;
        Ok(Source::S3 { bucket, prefix, endpoint })
    }

    /// What names the source in the position file (and, with the server, picks the default one).
    fn id(&self) -> String {
        match self {
            Source::Folder { root } => root.display().to_string(),
            Source::S3 { bucket, prefix, endpoint } => format!("s3://{}/{prefix} at {endpoint}", bucket.name()),
        }
    }

    /// The log files whose keys sort after `after`, in key order.
    fn list(&self, runtime: &tokio::runtime::Runtime, after: Option<&str>) -> Result<Listing> {
        let mut listing = Listing::default();
        match self {
            Source::Folder { root } => {
                let mut found = Vec::new();
                let (mut digests, mut other) = (0, 0);
                walk_folder(root, root, &mut found, &mut digests, &mut other)?;
                listing.digests = digests;
                listing.other = other;
                for (path, size) in found {
                    let rel = path.strip_prefix(root).unwrap_or(&path);
                    // A key is the path below the folder with `/` between its parts; a name that is not
                    // UTF-8 cannot be one (and cannot be a CloudTrail log file's name).
                    match rel.to_str() {
                        Some(key) => listing.objects.push(Entry { key: key.to_string(), size }),
                        None => listing.other += 1,
                    }
                }
                listing.objects.retain(|e| after.is_none_or(|a| e.key.as_str() > a));
            }
            Source::S3 { bucket, prefix, .. } => {
                let listed = runtime
                    .block_on(bucket.list(Some(prefix), after, usize::MAX))
                    .with_context(|| format!("list s3://{}/{prefix}", bucket.name()))?;
                for o in listed {
                    match classify(Path::new(&o.key)) {
                        None => listing.objects.push(Entry { key: o.key, size: o.size }),
                        Some(Skip::Digest) => listing.digests += 1,
                        Some(Skip::Other) => listing.other += 1,
                    }
                }
            }
        }
        listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listing)
    }
}

/// The position file: how far an import of one source into one server has come. Counts cover the objects
/// up to `done_through`, over every run.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Position {
    version: u32,
    source: String,
    endpoint: String,
    /// Every log file whose key sorts at or before this one is done: acknowledged by the server (or failed
    /// for good, and listed in `failed_objects`).
    done_through: Option<String>,
    objects: u64,
    records: u64,
    stored: u64,
    duplicates: u64,
    failed_records: u64,
    failed_objects: Vec<FailedObject>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct FailedObject {
    key: String,
    error: String,
}

/// The default position file: `$XDG_STATE_HOME/opentrail/ingest/` (else `~/.local/state/…`), one file per
/// (server, source).
fn default_state_path(endpoint: &str, source_id: &str) -> Result<PathBuf> {
    use sha2::Digest as _;
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .ok_or_else(|| anyhow!("no state dir (set XDG_STATE_HOME or HOME, or give --state FILE)"))?;
    let digest = sha2::Sha256::digest(format!("{endpoint}\n{source_id}").as_bytes());
    // Readable: the last part of the folder's path or the S3 URL (before " at <endpoint>").
    let name: String = source_id
        .split(" at ")
        .next()
        .unwrap_or("")
        .rsplit('/')
        .find(|p| !p.is_empty() && !p.ends_with(':'))
        .unwrap_or("source")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' })
        .take(40)
        .collect();
    Ok(base.join("opentrail").join("ingest").join(format!("{name}-{}.json", &hex::encode(digest)[..16])))
}

impl Position {
    /// The saved position, or a new one. A file for another source or server is refused, not overwritten.
    fn load(path: &Path, source: &str, endpoint: &str) -> Result<Position> {
        let fresh = Position {
            version: STATE_VERSION,
            source: source.to_string(),
            endpoint: endpoint.to_string(),
            ..Position::default()
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
            Err(e) => return Err(e).with_context(|| format!("read position file {}", path.display())),
        };
        let p: Position = serde_json::from_slice(&text)
            .with_context(|| format!("position file {}: not a valid position", path.display()))?;
        if p.version != STATE_VERSION {
            bail!("position file {}: version {} (this opentrail reads {STATE_VERSION})", path.display(), p.version);
        }
        if p.source != source || p.endpoint != endpoint {
            bail!(
                "position file {} is of {} into {}, not {source} into {endpoint} (another --state, or --restart)",
                path.display(),
                p.source,
                p.endpoint
            );
        }
        Ok(p)
    }

    fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let bytes = serde_json::to_vec_pretty(self)?;
        atomic_file::write_atomic(path, &bytes, 0o600).with_context(|| format!("save position {}", path.display()))
    }
}

/// One fetched object, in key order.
struct Fetched {
    entry: Entry,
    /// Its bytes, or why it could not be read (it is then done, and failed).
    body: Result<Bytes, String>,
}

/// One request's worth of consecutive objects.
struct Group {
    id: usize,
    files: Vec<Fetched>,
}

/// What came of a group.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    records: u64,
    stored: u64,
    duplicates: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.records += o.records;
        self.stored += o.stored;
        self.duplicates += o.duplicates;
        self.failed += o.failed;
    }
}

struct GroupDone {
    id: usize,
    last_key: String,
    objects: u64,
    bytes: u64,
    tally: Tally,
    /// Lines to print: records the server refused, by file.
    notes: Vec<String>,
    failed_objects: Vec<FailedObject>,
}

enum Event {
    Done(GroupDone),
    /// The import cannot go on (S3 or the server unreachable, credentials refused, …).
    Fatal(anyhow::Error),
}

/// `--max-events-per-second`: a request waits until the records acknowledged so far are within the rate.
struct Pacer {
    start: Instant,
    records: AtomicU64,
    per_second: Option<f64>,
}

impl Pacer {
    fn wait(&self) {
        let Some(rate) = self.per_second.filter(|r| *r > 0.0) else { return };
        let due = Duration::from_secs_f64(self.records.load(Ordering::Relaxed) as f64 / rate);
        if let Some(ahead) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

/// Set by SIGINT: stop taking new objects, finish what is in flight, save the position.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // A second Ctrl-C ends the process at once (the position saved last is at most a second old).
    // SAFETY: signal(2) is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
}

fn catch_sigint() {
    // SAFETY: installs a handler that only stores to an atomic and calls signal(2).
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
}

/// Imports one source; the exit code is 1 when records or objects failed, or the run was interrupted.
pub fn import(input: &str, opts: &ImportOptions) -> Result<std::process::ExitCode> {
    let batch = opts.batch.max(1);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("start runtime")?;
    let source = Arc::new(Source::open(input, opts.s3)?);
    let endpoint = opts.endpoint.trim_end_matches('/');
    let client = Client::new(endpoint)?;
    let source_id = source.id();
    let state_path = match opts.state {
        // Absolute, so its folder can be fsync'd (`pos.json`'s parent is "").
        Some(p) => std::path::absolute(p).with_context(|| format!("--state {}", p.display()))?,
        None => default_state_path(endpoint, &source_id)?,
    };
    let mut position = if opts.restart {
        Position {
            version: STATE_VERSION,
            source: source_id.clone(),
            endpoint: endpoint.to_string(),
            ..Default::default()
        }
    } else {
        Position::load(&state_path, &source_id, endpoint)?
    };
    let listing = source.list(&runtime, position.done_through.as_deref())?;
    let total_objects = listing.objects.len();
    let total_bytes: u64 = listing.objects.iter().map(|e| e.size).sum();
    if let Some(after) = &position.done_through {
        note!(
            "resuming {input} after {after} ({} log files, {} records done before; position in {})",
            position.objects,
            position.records,
            state_path.display()
        );
    }
    note!(
        "{total_objects} log files to send ({}); skipping {} digest files and {} other files",
        indicatif::HumanBytes(total_bytes),
        listing.digests,
        listing.other
    );
    if total_objects == 0 {
        if position.done_through.is_some() {
            note!(
                "nothing after the position: this import is done ({} records: {} new, {} already stored); \
                 --restart sends everything again (nothing is stored twice)",
                position.records,
                position.stored,
                position.duplicates
            );
        }
        position.save(&state_path)?;
        return Ok(exit_code(&position, false));
    }
    // A saved position before anything is sent: a bad --state path fails now, not after the work.
    position.save(&state_path)?;
    catch_sigint();
    let stop = Arc::new(AtomicBool::new(false));
    let target = Arc::new(AtomicUsize::new(GROUP_DECODED_BYTES));
    let (event_tx, event_rx) = mpsc::channel::<Event>();
    let (group_tx, group_rx) = mpsc::sync_channel::<Group>(SENDERS);

    // Fetch, in key order, and group.
    let (fetched_tx, fetched_rx) = tokio::sync::mpsc::channel::<Fetched>(FETCHED_QUEUE);
    let fetcher = {
        let (source, stop, event_tx) = (source.clone(), stop.clone(), event_tx.clone());
        let handle = runtime.handle().clone();
        let objects = listing.objects;
        std::thread::Builder::new().name("import-fetch".into()).spawn(move || {
            if let Err(e) = fetch_in_order(&source, &handle, objects, &stop, fetched_tx) {
                let _ = event_tx.send(Event::Fatal(e));
            }
        })?
    };
    let grouper = {
        let (stop, target) = (stop.clone(), target.clone());
        let max_files = opts.files_per_request.max(1);
        std::thread::Builder::new()
            .name("import-group".into())
            .spawn(move || group_in_order(fetched_rx, group_tx, &stop, &target, max_files))?
    };
    let group_rx = Arc::new(std::sync::Mutex::new(group_rx));
    let pacer =
        Arc::new(Pacer { start: Instant::now(), records: AtomicU64::new(0), per_second: opts.max_events_per_second });
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let (group_rx, event_tx, client, stop, target, pacer) =
                (group_rx.clone(), event_tx.clone(), client.clone(), stop.clone(), target.clone(), pacer.clone());
            std::thread::Builder::new().name(format!("import-send-{i}")).spawn(move || {
                loop {
                    let group = match group_rx.lock().map_err(|_| ()).and_then(|r| r.recv().map_err(|_| ())) {
                        Ok(g) => g,
                        Err(()) => break,
                    };
                    if stop.load(Ordering::SeqCst) {
                        continue;
                    }
                    pacer.wait();
                    let event = match send_group(&client, group, batch, &target) {
                        Ok(done) => {
                            pacer.records.fetch_add(done.tally.records, Ordering::Relaxed);
                            Event::Done(done)
                        }
                        Err(e) => {
                            stop.store(true, Ordering::SeqCst);
                            Event::Fatal(e)
                        }
                    };
                    if event_tx.send(event).is_err() {
                        break;
                    }
                }
            })
        })
        .collect::<std::io::Result<_>>()?;
    drop(event_tx);

    let bar = progress_bar(total_bytes);
    let started = Instant::now();
    let mut run = Tally::default();
    let mut run_objects = 0u64;
    let mut pending: std::collections::BTreeMap<usize, GroupDone> = Default::default();
    let mut next_id = 0usize;
    let mut last_save = Instant::now();
    let mut fatal: Option<anyhow::Error> = None;
    let mut interrupted = false;
    loop {
        let event = match event_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(e) => Some(e),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if INTERRUPTED.load(Ordering::SeqCst) && !interrupted {
            interrupted = true;
            stop.store(true, Ordering::SeqCst);
            bar.suspend(|| note!("interrupted: finishing the requests in flight and saving the position"));
        }
        match event {
            Some(Event::Done(done)) => {
                run.add(done.tally);
                run_objects += done.objects;
                bar.inc(done.bytes);
                for n in &done.notes {
                    bar.suspend(|| note!("{n}"));
                }
                for f in &done.failed_objects {
                    bar.suspend(|| note!("{}: {}", f.key, f.error));
                }
                pending.insert(done.id, done);
                // The position moves over the done prefix of the key order only.
                while let Some(d) = pending.remove(&next_id) {
                    next_id += 1;
                    position.done_through = Some(d.last_key);
                    position.objects += d.objects;
                    position.records += d.tally.records;
                    position.stored += d.tally.stored;
                    position.duplicates += d.tally.duplicates;
                    position.failed_records += d.tally.failed;
                    position.failed_objects.extend(d.failed_objects);
                }
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{run_objects}/{total_objects} files, {} events ({:.0}/s): {} new, {} already stored",
                    run.records,
                    run.records as f64 / secs,
                    run.stored,
                    run.duplicates
                ));
            }
            Some(Event::Fatal(e)) => {
                stop.store(true, Ordering::SeqCst);
                fatal.get_or_insert(e);
            }
            None => {}
        }
        if last_save.elapsed() >= SAVE_EVERY {
            position.save(&state_path)?;
            last_save = Instant::now();
        }
    }
    let _ = fetcher.join();
    let _ = grouper.join();
    for s in senders {
        let _ = s.join();
    }
    position.save(&state_path)?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    note!(
        "{} new, {} already stored, {} failed ({} records from {} log files, {:.1} s, {:.0} records/s)",
        run.stored,
        run.duplicates,
        run.failed,
        run.records,
        run_objects,
        secs,
        run.records as f64 / secs
    );
    let complete =
        next_id > 0 && pending.is_empty() && fatal.is_none() && !interrupted && run_objects as usize == total_objects;
    if !complete {
        note!(
            "stopped after {run_objects} of {total_objects} log files; the position is saved in {}: run the same \
             command again to continue",
            state_path.display()
        );
    } else if position.objects > run_objects {
        note!(
            "in all: {} new, {} already stored, {} failed ({} records from {} log files)",
            position.stored,
            position.duplicates,
            position.failed_records,
            position.records,
            position.objects
        );
    }
    if !position.failed_objects.is_empty() {
        note!("{} log files could not be read (listed in {})", position.failed_objects.len(), state_path.display());
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    Ok(exit_code(&position, !complete))
}

fn exit_code(position: &Position, stopped: bool) -> std::process::ExitCode {
    if stopped || position.failed_records > 0 || !position.failed_objects.is_empty() {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// One bar over the bytes to send, on stderr when it is a terminal; hidden otherwise.
fn progress_bar(total_bytes: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total_bytes);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

/// Fetches every object in key order (S3: [`S3_FETCHES`] at once) into `out`. A missing or unreadable
/// object is handed on as failed; S3 unreachable or refusing is the error.
fn fetch_in_order(
    source: &Source,
    runtime: &tokio::runtime::Handle,
    objects: Vec<Entry>,
    stop: &AtomicBool,
    out: tokio::sync::mpsc::Sender<Fetched>,
) -> Result<()> {
    match source {
        Source::Folder { root } => {
            for entry in objects {
                if stop.load(Ordering::SeqCst) || INTERRUPTED.load(Ordering::SeqCst) {
                    break;
                }
                let body = std::fs::read(root.join(&entry.key)).map(Bytes::from).map_err(|e| format!("read: {e}"));
                if out.blocking_send(Fetched { entry, body }).is_err() {
                    break;
                }
            }
            Ok(())
        }
        Source::S3 { bucket, .. } => {
            use futures::StreamExt as _;
            runtime.block_on(async {
                let mut fetches = futures::stream::iter(objects)
                    .map(|entry| async move {
                        let got = bucket.get(&entry.key, None).await;
                        (entry, got)
                    })
                    .buffered(S3_FETCHES);
                while let Some((entry, got)) = fetches.next().await {
                    if stop.load(Ordering::SeqCst) || INTERRUPTED.load(Ordering::SeqCst) {
                        break;
                    }
                    let body = match got {
                        Ok(o) => Ok(o.body),
                        // Deleted since the listing, or a key object_store cannot name: this object fails,
                        // the import goes on.
                        Err(e @ (BucketError::NotFound { .. } | BucketError::InvalidKey { .. })) => Err(e.to_string()),
                        Err(e) => return Err(anyhow::Error::new(e)),
                    };
                    if out.send(Fetched { entry, body }).await.is_err() {
                        break;
                    }
                }
                Ok(())
            })
        }
    }
}

/// The size a gzip member says its data has (ISIZE, its last 4 bytes), the file's size when not gzip.
fn decoded_size_hint(bytes: &[u8]) -> usize {
    if service::batch::looks_gzipped(bytes) && bytes.len() >= 18 {
        let n = bytes.len();
        u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]) as usize
    } else {
        bytes.len()
    }
}

/// Groups consecutive gzip'd objects into requests of about `target` decoded bytes; anything else (a plain
/// file, an unreadable one) is a request of its own.
fn group_in_order(
    mut fetched: tokio::sync::mpsc::Receiver<Fetched>,
    out: mpsc::SyncSender<Group>,
    stop: &AtomicBool,
    target: &AtomicUsize,
    max_files: usize,
) {
    let mut id = 0usize;
    let mut files: Vec<Fetched> = Vec::new();
    let mut decoded = 0usize;
    let mut flush = |files: &mut Vec<Fetched>, decoded: &mut usize| -> bool {
        if files.is_empty() {
            return true;
        }
        let group = Group { id, files: std::mem::take(files) };
        id += 1;
        *decoded = 0;
        out.send(group).is_ok()
    };
    while let Some(f) = fetched.blocking_recv() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let gz = f.body.as_ref().is_ok_and(|b| service::batch::looks_gzipped(b));
        if !gz {
            if !flush(&mut files, &mut decoded) {
                return;
            }
            files.push(f);
            if !flush(&mut files, &mut decoded) {
                return;
            }
            continue;
        }
        let size = f.body.as_ref().map_or(0, |b| decoded_size_hint(b));
        if !files.is_empty()
            && (decoded + size > target.load(Ordering::Relaxed) || files.len() >= max_files)
            && !flush(&mut files, &mut decoded)
        {
            return;
        }
        decoded += size;
        files.push(f);
    }
    flush(&mut files, &mut decoded);
}

/// Counts a JSON array's elements without keeping them.
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Count, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `POST /v1/events`'s answer, the accepted eventIDs only counted.
#[derive(Deserialize)]
struct Answer {
    accepted: Count,
    failed: Vec<FailedRecord>,
    stored: u64,
    duplicates: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailedRecord {
    index: u64,
    error_code: String,
    error_message: String,
}

/// Hard-coded: a bulk import outlasts back-pressure longer than one call's retries (the index catching up
/// after a burst): a request still refused with 503 is tried again this many more times, a few seconds apart.
const BACKPRESSURE_ROUNDS: u32 = 10;

fn post(client: &Client, body: &[u8]) -> Result<Answer, ClientError> {
    let mut round = 0;
    loop {
        match client.call("/v1/events", &[("content-type", "application/json")], body, "opentrail") {
            Ok(out) => return serde_json::from_slice(&out).map_err(|source| ClientError::InvalidJson { source }),
            Err(ClientError::Service(e)) if e.status == 503 && round < BACKPRESSURE_ROUNDS => {
                round += 1;
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the server refused the body itself (too large, too many records, not gzip, not log files): the
/// group is then sent again file by file, split here.
fn refused_body(e: &ClientError) -> Option<bool> {
    match e {
        ClientError::Service(s) if s.code == "RequestEntityTooLargeException" => Some(true),
        ClientError::Service(s) if s.code == "SerializationException" => Some(false),
        _ => None,
    }
}

/// Sends one group: its objects concatenated as they are stored, else file by file split here.
fn send_group(client: &Client, group: Group, batch: usize, target: &AtomicUsize) -> Result<GroupDone> {
    let mut done = GroupDone {
        id: group.id,
        last_key: group.files.last().map(|f| f.entry.key.clone()).unwrap_or_default(),
        objects: group.files.len() as u64,
        bytes: group.files.iter().map(|f| f.entry.size).sum(),
        tally: Tally::default(),
        notes: Vec::new(),
        failed_objects: Vec::new(),
    };
    let mut readable: Vec<(&Entry, &Bytes)> = Vec::new();
    for f in &group.files {
        match &f.body {
            Ok(b) => readable.push((&f.entry, b)),
            Err(e) => done.failed_objects.push(FailedObject { key: f.entry.key.clone(), error: e.clone() }),
        }
    }
    if readable.is_empty() {
        return Ok(done);
    }
    let body: Bytes = if readable.len() == 1 {
        readable[0].1.clone()
    } else {
        let mut b = Vec::with_capacity(readable.iter().map(|(_, b)| b.len()).sum());
        for (_, bytes) in &readable {
            b.extend_from_slice(bytes);
        }
        b.into()
    };
    match post(client, &body) {
        Ok(answer) => {
            done.tally = Tally {
                records: answer.accepted.0 + answer.failed.len() as u64,
                stored: answer.stored,
                duplicates: answer.duplicates,
                failed: answer.failed.len() as u64,
            };
            if !answer.failed.is_empty() {
                done.notes = name_failures(&readable, &answer.failed);
            }
            Ok(done)
        }
        Err(e) => match refused_body(&e) {
            Some(too_large) => {
                if too_large && readable.len() > 1 {
                    let t = target.load(Ordering::Relaxed);
                    target.store((t / 2).max(MIN_GROUP_DECODED_BYTES), Ordering::Relaxed);
                }
                for (entry, bytes) in readable {
                    match send_split(client, entry, bytes, batch) {
                        Ok((tally, notes)) => {
                            done.tally.add(tally);
                            done.notes.extend(notes);
                        }
                        Err(SplitError::Unreadable(error)) => {
                            done.failed_objects.push(FailedObject { key: entry.key.clone(), error })
                        }
                        Err(SplitError::Send(e)) => return Err(e),
                    }
                }
                Ok(done)
            }
            None => Err(anyhow::Error::new(e).context(format!("send {}", done.last_key))),
        },
    }
}

/// The records of one stored object: gunzipped when gzip, split as the server splits a body.
fn records_of(bytes: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let decoded;
    let plain: &[u8] = if service::batch::looks_gzipped(bytes) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(bytes), &mut out)
            .map_err(|e| format!("not valid gzip: {e}"))?;
        decoded = out;
        &decoded
    } else {
        bytes
    };
    let parts = service::split_batch(plain).map_err(|e| e.to_string())?;
    Ok(parts.into_iter().map(<[u8]>::to_vec).collect())
}

/// The server's refusals of records in a group, each named by its file and its place in it.
fn name_failures(files: &[(&Entry, &Bytes)], failed: &[FailedRecord]) -> Vec<String> {
    // Only on failures: count each file's records to know which file a refused record came from.
    let counts: Vec<Option<u64>> = files.iter().map(|(_, b)| records_of(b).ok().map(|r| r.len() as u64)).collect();
    failed
        .iter()
        .map(|f| {
            let mut first = 0u64;
            for ((entry, _), n) in files.iter().zip(&counts) {
                let Some(n) = n else { break };
                if f.index < first + n {
                    return format!(
                        "{}: record {}: {}: {}",
                        entry.key,
                        f.index - first + 1,
                        f.error_code,
                        f.error_message
                    );
                }
                first += n;
            }
            format!("record {} of the request: {}: {}", f.index + 1, f.error_code, f.error_message)
        })
        .collect()
}

enum SplitError {
    /// The object is not gzip or not records: it fails, the import goes on.
    Unreadable(String),
    Send(anyhow::Error),
}

/// One object split here into records and sent `batch` at a time as NDJSON.
fn send_split(
    client: &Client,
    entry: &Entry,
    bytes: &[u8],
    batch: usize,
) -> std::result::Result<(Tally, Vec<String>), SplitError> {
    let records = records_of(bytes).map_err(SplitError::Unreadable)?;
    let mut tally = Tally::default();
    let mut notes = Vec::new();
    for (i, chunk) in records.chunks(batch).enumerate() {
        let chunk = crate::ingest::Chunk { file: entry.key.clone(), first_index: i * batch, records: chunk.to_vec() };
        let answer = crate::ingest::send_chunk(client, &chunk)
            .map_err(|e| SplitError::Send(e.context(format!("send {}", entry.key))))?;
        let failed = answer["failed"].as_array().cloned().unwrap_or_default();
        tally.add(Tally {
            records: chunk.records.len() as u64,
            stored: answer["stored"].as_u64().unwrap_or(0),
            duplicates: answer["duplicates"].as_u64().unwrap_or(0),
            failed: failed.len() as u64,
        });
        for f in failed {
            notes.push(format!(
                "{}: record {}: {}: {}",
                entry.key,
                chunk.first_index as u64 + f["index"].as_u64().unwrap_or(0) + 1,
                f["errorCode"].as_str().unwrap_or("?"),
                f["errorMessage"].as_str().unwrap_or("")
            ));
        }
    }
    Ok((tally, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(parse_s3_url("s3://b/AWSLogs/1/").unwrap(), ("b".into(), "AWSLogs/1/".into()));
        assert_eq!(parse_s3_url("s3://b").unwrap(), ("b".into(), String::new()));
        assert!(parse_s3_url("s3:///x").is_err());
    }

    #[test]
    fn the_default_position_file_is_one_per_server_and_source() {
        let a = default_state_path("http://a", "/data/AWSLogs").unwrap();
        let b = default_state_path("http://b", "/data/AWSLogs").unwrap();
        let c = default_state_path("http://a", "s3://bucket/AWSLogs/ at https://s3").unwrap();
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().to_string_lossy().starts_with("AWSLogs-"), "{a:?}");
        assert!(c.file_name().unwrap().to_string_lossy().starts_with("AWSLogs-"), "{c:?}");
        assert_ne!(a, c);
        assert!(a.ends_with(a.file_name().unwrap()) && a.parent().unwrap().ends_with("opentrail/ingest"));
    }

    #[test]
    fn a_position_file_of_another_source_is_refused_and_a_missing_one_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let p = Position::load(&path, "/src", "http://s").unwrap();
        assert_eq!(p.done_through, None);
        let p = Position { done_through: Some("k".into()), objects: 3, ..p };
        p.save(&path).unwrap();
        assert_eq!(Position::load(&path, "/src", "http://s").unwrap(), p);
        let e = Position::load(&path, "/other", "http://s").unwrap_err();
        assert!(format!("{e:#}").contains("/other"), "{e:#}");
        std::fs::write(&path, b"{").unwrap();
        assert!(Position::load(&path, "/src", "http://s").is_err());
    }

    #[test]
    fn the_gzip_trailer_gives_the_decoded_size() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[b'x'; 12345]).unwrap();
        assert_eq!(decoded_size_hint(&gz.finish().unwrap()), 12345);
        assert_eq!(decoded_size_hint(b"{\"Records\":[]}"), 14);
    }

    #[test]
    fn a_refused_record_of_a_request_of_many_files_is_named_by_its_file_and_place() {
        use std::io::Write as _;
        let gz = |doc: &str| {
            let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            g.write_all(doc.as_bytes()).unwrap();
            Bytes::from(g.finish().unwrap())
        };
        let (a, b) = (Entry { key: "a.json.gz".into(), size: 1 }, Entry { key: "b.json".into(), size: 1 });
        let (ba, bb) =
            (gz(r#"{"Records":[{"x":1},{"x":2},{"x":3}]}"#), Bytes::from_static(br#"{"Records":[{"y":1},{"y":2}]}"#));
        let failed = |index| FailedRecord { index, error_code: "E".into(), error_message: "m".into() };
        let notes = name_failures(&[(&a, &ba), (&b, &bb)], &[failed(2), failed(4), failed(9)]);
        assert_eq!(notes, ["a.json.gz: record 3: E: m", "b.json: record 2: E: m", "record 10 of the request: E: m"]);
    }

    #[test]
    fn consecutive_gzip_files_share_a_request_and_others_go_alone() {
        use std::io::Write as _;
        let gz = |n: usize| {
            let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            g.write_all(&vec![b' '; n]).unwrap();
            Bytes::from(g.finish().unwrap())
        };
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let files =
            [Ok(gz(100)), Ok(gz(100)), Ok(Bytes::from_static(b"{}")), Ok(gz(600)), Ok(gz(600)), Err("x".into())];
        for (index, body) in files.into_iter().enumerate() {
            tx.try_send(Fetched { entry: Entry { key: format!("k{index}"), size: 1 }, body }).ok().unwrap();
        }
        drop(tx);
        let (gtx, grx) = mpsc::sync_channel(16);
        group_in_order(rx, gtx, &AtomicBool::new(false), &AtomicUsize::new(1000), 10);
        let groups: Vec<Vec<String>> =
            grx.iter().map(|g| g.files.iter().map(|f| f.entry.key.clone()).collect()).collect();
        assert_eq!(groups, [&["k0", "k1"][..], &["k2"], &["k3"], &["k4"], &["k5"]]);
    }
}
