//! The engine of `opentrail validate`: walks a trail's digest chain newest → oldest the way
//! `aws cloudtrail validate-logs` does (reference §7.4), checks every digest's signature and every log file's
//! hash, and also reports what the aws CLI cannot see: a chain field that does not match the previous
//! digest, digest files missing beyond the ones reported not found (two consecutive deletions), a log file in
//! the bucket that no digest lists, a log file moved to another key or swapped with another, and — given the
//! newest digest the server delivered — a deleted newest digest.
//!
//! Storage is the caller's ([`ObjectSource`]); log files are fetched concurrently and gunzipped + hashed on
//! a small pool of threads, so the engine uses every core whatever async runtime drives it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;
use model::EventTime;
use serde_json::Value;

use crate::digest::{Digest, META_SIGNATURE, META_SIGNATURE_ALGORITHM};
use crate::keys::{PublicKey, is_pkcs1_public_key};
use crate::layout::{DigestKey, LogFileKey, digest_list_prefix, log_list_prefix};
use crate::time::{date_folders, iso_seconds};

/// Hard-coded: the largest uncompressed digest accepted (an hour of log files is a few hundred KiB).
const MAX_DIGEST_BYTES: u64 = 64 << 20;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// An object read from storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bytes: Vec<u8>,
    /// User metadata: lower-case names without `x-amz-meta-`.
    pub metadata: BTreeMap<String, String>,
}

/// A storage failure other than "no such key" (which is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
}

/// Where the validator reads objects: a local bucket folder, S3, or a test's map.
pub trait ObjectSource: Sync {
    /// Every key under `prefix` in `bucket` after `start_after`, sorted.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
    ) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send;
    /// The object, or `None` when there is no such key.
    fn get(&self, bucket: &str, key: &str) -> impl Future<Output = Result<Option<Object>, SourceError>> + Send;
}

/// What to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateParams {
    pub trail_arn: String,
    pub account: String,
    pub home_region: String,
    pub trail_name: String,
    /// The Region whose digests are read (the aws CLI: `--region` if given, else the home Region).
    pub source_region: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    /// The newest digest key the server says it delivered (online runs): if it is gone, that is reported.
    pub expected_newest_digest: Option<String>,
    /// How many log files are fetched at once.
    pub fetch_concurrency: usize,
    /// Threads that gunzip and hash.
    pub hash_threads: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("'{arn}' is not a trail ARN (arn:aws:cloudtrail:<region>:<account>:trail/<name>)")]
    TrailArn { arn: String },
    #[error("start-time must occur before end-time")]
    Range,
}

impl ValidateParams {
    /// Parameters from a trail ARN the way the aws CLI derives them: home Region `split(':')[3]`, account
    /// `split(':')[4]`, trail name after the last `/`; the source Region is the home Region.
    pub fn from_trail_arn(
        arn: &str,
        bucket: &str,
        prefix: Option<&str>,
        start: EventTime,
        end: EventTime,
    ) -> Result<ValidateParams, ParamError> {
        let parts: Vec<&str> = arn.split(':').collect();
        let bad = || ParamError::TrailArn { arn: arn.to_string() };
        if parts.len() < 6 || parts[0] != "arn" || parts[2] != "cloudtrail" || !parts[5].starts_with("trail/") {
            return Err(bad());
        }
        let name = arn.rsplit('/').next().unwrap_or_default();
        if parts[3].is_empty() || parts[4].is_empty() || name.is_empty() {
            return Err(bad());
        }
        if start > end {
            return Err(ParamError::Range);
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(ValidateParams {
            trail_arn: arn.to_string(),
            account: parts[4].to_string(),
            home_region: parts[3].to_string(),
            trail_name: name.to_string(),
            source_region: parts[3].to_string(),
            bucket: bucket.to_string(),
            prefix: prefix.filter(|p| !p.is_empty()).map(str::to_string),
            start,
            end,
            expected_newest_digest: None,
            fetch_concurrency: 4 * threads,
            hash_threads: threads,
        })
    }
}

/// A log file read in the hashing phase: `slot` is (digest, entry) for a listed file, `None` for a file
/// in no digest.
struct Fetched {
    slot: Option<(usize, usize)>,
    bucket: String,
    key: String,
    read: Read,
}

enum Read {
    Hashed(String),
    Missing,
    NotGzip,
    Failed(String),
}

/// The run could not be done at all (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    #[error("cannot list s3://{bucket}/{prefix}: {source}")]
    List { bucket: String, prefix: String, source: SourceError },
    #[error("no public keys found between {start} and {end}")]
    NoPublicKeys { start: String, end: String },
}

/// What is wrong with a file, in the aws CLI's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    // The aws CLI's findings.
    HashMismatch,
    NotFound,
    InvalidFormat,
    Moved,
    SignatureFailed,
    PublicKeyNotFound {
        region: String,
        fingerprint: String,
    },
    KeyNotPkcs1 {
        fingerprint: String,
    },
    /// Any other error reading the object.
    Fetch {
        message: String,
    },
    // What the aws CLI cannot see.
    /// The newest digest the server delivered is gone.
    NewestDigestDeleted,
    /// A digest's chain field disagrees with the previous digest found at the key it names.
    ChainMismatch {
        field: &'static str,
        previous: String,
    },
    /// A log file in the bucket, inside the time the valid digests cover, that no digest lists.
    NotInAnyDigest,
    /// A listed log file is not at its key, but its content is at `now_at` (a file in no digest).
    MovedTo {
        now_at: String,
    },
    /// A file in no digest whose content is that of a listed, missing log file.
    MovedFrom {
        original: String,
    },
    /// A listed log file holds the content another listed log file should have (files swapped or reordered).
    HoldsContentOf {
        other: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::HashMismatch => f.write_str("hash value doesn't match"),
            Problem::NotFound => f.write_str("not found"),
            Problem::InvalidFormat => f.write_str("invalid format"),
            Problem::Moved => f.write_str("has been moved from its original location"),
            Problem::SignatureFailed => f.write_str("signature verification failed"),
            Problem::PublicKeyNotFound { region, fingerprint } => {
                write!(f, "public key not found in region {region} for fingerprint {fingerprint}")
            }
            Problem::KeyNotPkcs1 { fingerprint } => {
                write!(f, "Unable to load PKCS #1 key with fingerprint {fingerprint}")
            }
            Problem::Fetch { message } => f.write_str(message),
            Problem::NewestDigestDeleted => {
                f.write_str("not found (the newest digest file the server delivered has been deleted)")
            }
            Problem::ChainMismatch { field, previous } => {
                write!(f, "{field} does not match the previous digest file s3://{previous}")
            }
            Problem::NotInAnyDigest => f.write_str("not listed in any digest file"),
            Problem::MovedTo { now_at } => write!(f, "not found (its content is at s3://{now_at})"),
            Problem::MovedFrom { original } => write!(f, "not listed in any digest file (moved from s3://{original})"),
            Problem::HoldsContentOf { other } => {
                write!(f, "hash value doesn't match (it holds the content of s3://{other}: files swapped or reordered)")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Digest,
    LogFile,
}

/// One file's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileResult {
    pub kind: FileKind,
    pub bucket: String,
    pub key: String,
    /// `None` = valid.
    pub problem: Option<Problem>,
}

/// One line of the report, in the order the aws CLI prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    File(FileResult),
    /// The aws CLI's notice for a chain restart (logging stopped and started again): not a problem.
    NoDeliveries {
        from: EventTime,
        to: EventTime,
    },
    /// Digest files are missing for this stretch beyond the ones reported not found: the aws CLI cannot
    /// see this (two or more consecutive deleted digests).
    MissingDigests {
        from: EventTime,
        to: EventTime,
    },
}

/// Everything a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub trail_arn: String,
    pub requested_start: EventTime,
    pub requested_end: EventTime,
    /// Oldest valid digest start and newest valid digest end.
    pub found: Option<(EventTime, EventTime)>,
    pub findings: Vec<Finding>,
    /// Uncompressed log bytes hashed.
    pub log_bytes_hashed: u64,
}

/// Counts for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub digests_valid: usize,
    pub digests_invalid: usize,
    pub logs_valid: usize,
    pub logs_invalid: usize,
    pub missing_stretches: usize,
}

/// Where a rendered line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Report {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for f in &self.findings {
            match f {
                Finding::File(r) => match (r.kind, r.problem.is_some()) {
                    (FileKind::Digest, false) => c.digests_valid += 1,
                    (FileKind::Digest, true) => c.digests_invalid += 1,
                    (FileKind::LogFile, false) => c.logs_valid += 1,
                    (FileKind::LogFile, true) => c.logs_invalid += 1,
                },
                Finding::MissingDigests { .. } => c.missing_stretches += 1,
                Finding::NoDeliveries { .. } => {}
            }
        }
        c
    }

    /// 0 when everything found is valid (or nothing was found), 1 when anything is invalid. (2, "could not
    /// run", is a [`ValidateError`].)
    pub fn exit_code(&self) -> i32 {
        let c = self.counts();
        if c.digests_invalid + c.logs_invalid + c.missing_stretches > 0 { 1 } else { 0 }
    }

    /// The aws CLI's output: the header, one TAB-separated line per file (valid ones only with `verbose`,
    /// INVALID ones always, on stderr between blank lines), then the summary. Chunks are in print order;
    /// each ends with its own newlines.
    pub fn render(&self, verbose: bool) -> Vec<(Stream, String)> {
        let mut out = Render { chunks: Vec::new(), last_double_space: false };
        out.status(
            format!(
                "Validating log files for trail {} between {} and {}",
                self.trail_arn,
                iso_seconds(self.requested_start),
                iso_seconds(self.requested_end)
            ),
            false,
        );
        out.status(String::new(), false);
        for f in &self.findings {
            match f {
                Finding::File(r) => {
                    let what = match r.kind {
                        FileKind::Digest => "Digest file",
                        FileKind::LogFile => "Log file",
                    };
                    match &r.problem {
                        None if verbose => out.status(format!("{what}\ts3://{}/{}\tvalid", r.bucket, r.key), false),
                        None => {}
                        Some(p) => out.status(format!("{what}\ts3://{}/{}\tINVALID: {p}", r.bucket, r.key), true),
                    }
                }
                Finding::NoDeliveries { from, to } => out.status(
                    format!("No log files were delivered by CloudTrail between {} and {}", iso_seconds(*from), iso_seconds(*to)),
                    true,
                ),
                Finding::MissingDigests { from, to } => out.status(
                    format!(
                        "Digest files\tbetween {} and {}\tINVALID: missing (more digest files were deleted than the ones reported not found)",
                        iso_seconds(*from),
                        iso_seconds(*to)
                    ),
                    true,
                ),
            }
        }
        // A blank line before the summary unless an error's trailing one was just written.
        let mut summary = if out.last_double_space { String::new() } else { "\n".to_string() };
        summary += &format!(
            "Results requested for {} to {}",
            iso_seconds(self.requested_start),
            iso_seconds(self.requested_end)
        );
        let c = self.counts();
        if c.digests_valid + c.digests_invalid == 0 && c.missing_stretches == 0 {
            summary.push_str("\nNo digests found\n");
            out.chunks.push((Stream::Stdout, summary));
            return out.chunks;
        }
        match self.found {
            Some((s, e)) => {
                summary.push_str(&format!("\nResults found for {} to {}:\n", iso_seconds(s), iso_seconds(e)))
            }
            None => summary.push_str("\nNo valid digests found in range\n"),
        }
        ratio(&mut summary, c.digests_valid, c.digests_invalid, "digest");
        ratio(&mut summary, c.logs_valid, c.logs_invalid, "log");
        if c.missing_stretches > 0 {
            summary.push_str(&format!("\n{} stretches of missing digest files INVALID", c.missing_stretches));
        }
        summary.push_str("\n\n");
        out.chunks.push((Stream::Stdout, summary));
        out.chunks
    }
}

fn ratio(out: &mut String, valid: usize, invalid: usize, name: &str) {
    let total = valid + invalid;
    if total > 0 {
        out.push_str(&format!("\n{valid}/{total} {name} files valid"));
        if invalid > 0 {
            out.push_str(&format!(", {invalid}/{total} {name} files INVALID"));
        }
    }
}

/// validation.py's `_write_status`: errors go to stderr with a blank line before (unless one was just
/// written) and after.
struct Render {
    chunks: Vec<(Stream, String)>,
    last_double_space: bool,
}

impl Render {
    fn status(&mut self, message: String, is_error: bool) {
        if is_error {
            let text = if self.last_double_space { format!("{message}\n\n") } else { format!("\n{message}\n\n") };
            self.chunks.push((Stream::Stderr, text));
            self.last_double_space = true;
        } else {
            self.chunks.push((Stream::Stdout, format!("{message}\n")));
            self.last_double_space = false;
        }
    }
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub digests_done: usize,
    /// Log files to check (known once the digest walk is done; grows during it).
    pub log_files_total: usize,
    pub log_files_done: usize,
    pub log_bytes_hashed: u64,
}

/// A digest read during the walk, kept for the log file phase and the chain checks.
struct WalkedDigest {
    /// Index of its line in `findings`.
    finding: usize,
    start: EventTime,
    end: EventTime,
    previous_hash: Option<String>,
    previous_signature: Option<String>,
    log_files: Vec<crate::digest::LogFileEntry>,
}

/// Runs a validation. `keys` are the published keys (ListPublicKeys over the run's range);
/// `progress` is called as work completes.
pub async fn validate<S: ObjectSource>(
    source: &S,
    params: &ValidateParams,
    keys: &[PublicKey],
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report, ValidateError> {
    if keys.is_empty() {
        return Err(ValidateError::NoPublicKeys {
            start: iso_seconds(params.start),
            end: iso_seconds(EventTime(params.end.0.saturating_add(2 * HOUR_MS))),
        });
    }
    let mut findings = Vec::new();
    let mut prog = Progress::default();

    // 1. The listing, as validate-logs makes it: after the key a digest ending at start − 1 min would have,
    //    this trail's standard digests whose timestamp lies in [start, end + 1 h].
    let digest_key = |end: EventTime| DigestKey {
        prefix: params.prefix.clone(),
        account: params.account.clone(),
        region: params.source_region.clone(),
        trail: params.trail_name.clone(),
        home_region: params.home_region.clone(),
        end,
    };
    let prefix = digest_list_prefix(params.prefix.as_deref(), &params.account, &params.source_region);
    let marker = digest_key(EventTime(params.start.0.saturating_sub(MINUTE_MS))).to_key();
    let listed = source.list(&params.bucket, &prefix, Some(&marker)).await.map_err(|source| ValidateError::List {
        bucket: params.bucket.clone(),
        prefix: prefix.clone(),
        source,
    })?;
    let upper = EventTime(params.end.0.saturating_add(HOUR_MS));
    let ours = |k: &DigestKey| {
        k.account == params.account
            && k.region == params.source_region
            && k.trail == params.trail_name
            && k.home_region == params.home_region
            && k.prefix == params.prefix
    };
    // Oldest first; walked from the back.
    let mut listing: Vec<(EventTime, String)> = listed
        .into_iter()
        .filter_map(|key| {
            let k = DigestKey::parse(&key)?;
            (ours(&k) && k.end >= crate::time::floor_second(params.start) && k.end <= upper).then_some((k.end, key))
        })
        .collect();
    listing.sort();

    // The newest digest the server delivered: walked first, so its absence is seen.
    let mut expected_newest = None;
    if let Some(key) = &params.expected_newest_digest
        && let Some(k) = DigestKey::parse(key)
        && !listing.iter().any(|(_, l)| l == key)
        && listing.last().is_none_or(|(t, _)| k.end > *t)
    {
        listing.push((k.end, key.clone()));
        expected_newest = Some(key.clone());
    }

    // 2. The walk, newest → oldest.
    let mut walked: Vec<WalkedDigest> = Vec::new();
    let mut bucket = params.bucket.clone();
    let mut next: Option<String> = None;
    let mut last_start = params.end;
    // The last valid digest, when the one being read is the one it links to.
    let mut newer: Option<usize> = None;
    // Keys reported not found since the last digest read, and the end of the first of them.
    let mut missing_since: Option<(EventTime, usize)> = None;
    // End time of the last key tried: listed keys at or after it were walked already.
    let mut cursor = EventTime::MAX;
    loop {
        if params.start > last_start {
            break;
        }
        let key = match next.take() {
            Some(k) => k,
            None => match pop_older(&mut listing, cursor) {
                Some(k) => k,
                None => break,
            },
        };
        let key_end = DigestKey::parse(&key).map(|k| k.end);
        if let Some(end) = key_end {
            cursor = cursor.min(end);
        }
        let object = match source.get(&bucket, &key).await {
            Ok(o) => o,
            Err(e) => {
                findings.push(file(FileKind::Digest, &bucket, &key, Some(Problem::Fetch { message: e.message })));
                newer = None;
                continue;
            }
        };
        let Some(object) = object else {
            let problem = if expected_newest.as_deref() == Some(key.as_str()) {
                Problem::NewestDigestDeleted
            } else {
                Problem::NotFound
            };
            findings.push(file(FileKind::Digest, &bucket, &key, Some(problem)));
            if let Some(end) = key_end {
                let (first_end, n) = missing_since.unwrap_or((end, 0));
                missing_since = Some((first_end, n + 1));
                last_start = last_start.min(end);
            }
            newer = None;
            continue;
        };
        prog.digests_done += 1;
        let (digest, json) = match check_digest(&object, &bucket, &key, keys, &params.home_region) {
            Ok(d) => d,
            Err(problem) => {
                findings.push(file(FileKind::Digest, &bucket, &key, Some(problem)));
                newer = None;
                // An invalid digest still occupies its interval of a missing stretch.
                if let Some((_, n)) = &mut missing_since {
                    *n += 1;
                }
                if let Some(end) = key_end {
                    last_start = last_start.min(end);
                }
                progress(prog);
                continue;
            }
        };
        let (Some(start), Some(end)) = (parse_time(&digest.digest_start_time), parse_time(&digest.digest_end_time))
        else {
            findings.push(file(FileKind::Digest, &bucket, &key, Some(Problem::InvalidFormat)));
            newer = None;
            continue;
        };
        // Chain fields of the newer digest that named this one.
        if let Some(n) = newer.take() {
            let nd = &walked[n];
            let field = if nd.previous_hash.as_deref() != Some(crate::sha256_hex(&json).as_str()) {
                Some("previousDigestHashValue")
            } else if nd.previous_signature.as_deref() != object.metadata.get(META_SIGNATURE).map(String::as_str) {
                Some("previousDigestSignature")
            } else if nd.start != end {
                Some("digestStartTime")
            } else {
                None
            };
            if let Some(field) = field
                && let Finding::File(r) = &mut findings[nd.finding]
            {
                r.problem = Some(Problem::ChainMismatch { field, previous: format!("{bucket}/{key}") });
            }
        }
        // Stretches more digests would have covered than the ones reported not found.
        if let Some((first_missing_end, n)) = missing_since.take() {
            // The cadence: the typical (median) digest seen, and as slack the jitter seen — how much longer
            // than typical the longest digest was — at least half the cadence and a second. A fixed minute
            // of slack hid two deleted digests of a trail whose digests are a minute or less apart; the
            // longest digest as the cadence let one late digest hide two deleted ones.
            let mut windows: Vec<i64> = walked.iter().map(|w| w.end.0 - w.start.0).chain([end.0 - start.0]).collect();
            windows.sort_unstable();
            let typical = windows[windows.len() / 2].max(1000);
            let longest = windows.last().copied().unwrap_or(typical);
            let slack = (longest - typical).max(typical / 2).max(1000);
            if first_missing_end.0 - end.0 > n as i64 * typical + slack {
                findings.push(Finding::MissingDigests { from: end, to: first_missing_end });
            }
        }
        findings.push(file(FileKind::Digest, &bucket, &key, None));
        let previous = match (&digest.previous_digest_s3_bucket, &digest.previous_digest_s3_object) {
            (Some(b), Some(k)) => Some((b.clone(), k.clone())),
            _ => None,
        };
        walked.push(WalkedDigest {
            finding: findings.len() - 1,
            start,
            end,
            previous_hash: digest.previous_digest_hash_value.clone(),
            previous_signature: digest.previous_digest_signature.clone(),
            log_files: digest.log_files,
        });
        prog.log_files_total += walked.last().map_or(0, |w| w.log_files.len());
        progress(prog);
        last_start = start;
        match previous {
            Some((b, k)) => {
                if b != bucket {
                    // The aws CLI lists again in the other bucket; the link is followed directly here.
                    bucket = b;
                }
                newer = Some(walked.len() - 1);
                next = Some(k);
            }
            None => {
                // A chain start: the aws CLI's notice when older digests are listed.
                if let Some((t, _)) = listing.iter().rev().find(|(t, _)| *t < start)
                    && *t != start
                    && params.start <= start
                {
                    findings.push(Finding::NoDeliveries { from: *t, to: start });
                }
            }
        }
    }

    // 3. The log files of every valid digest, fetched concurrently and hashed on the pool.
    let pool = HashPool::new(params.hash_threads.max(1));
    let bytes_hashed = Arc::new(AtomicU64::new(0));
    let mut jobs = Vec::new();
    for (d, w) in walked.iter().enumerate() {
        for (i, f) in w.log_files.iter().enumerate() {
            jobs.push((Some((d, i)), f.s3_bucket.clone(), f.s3_object.clone()));
        }
    }
    // Log files in the bucket that no digest lists, within the stretches the valid digests cover.
    let known: BTreeSet<(&str, &str)> =
        walked.iter().flat_map(|w| w.log_files.iter().map(|f| (f.s3_bucket.as_str(), f.s3_object.as_str()))).collect();
    // The time the valid digests cover, adjacent digests joined: a minute that straddles two digests of one
    // chain is covered by neither alone.
    let mut spans: Vec<(EventTime, EventTime)> = walked.iter().map(|w| (w.start, w.end)).collect();
    spans.sort();
    let mut stretches: Vec<(EventTime, EventTime)> = Vec::new();
    for (s, e) in spans {
        match stretches.last_mut() {
            Some((_, last_end)) if s <= *last_end => *last_end = (*last_end).max(e),
            _ => stretches.push((s, e)),
        }
    }
    let mut extras = Vec::new();
    if let Some(oldest) = walked.iter().map(|w| w.start).min() {
        let log_prefix = log_list_prefix(params.prefix.as_deref(), &params.account, &params.source_region);
        let start_after = format!("{log_prefix}{}", date_folders(oldest));
        let keys = source.list(&params.bucket, &log_prefix, Some(&start_after)).await.map_err(|source| {
            ValidateError::List { bucket: params.bucket.clone(), prefix: log_prefix.clone(), source }
        })?;
        for key in keys {
            let Some(k) = LogFileKey::parse(&key) else { continue };
            // Delivered somewhere in [minute, minute + 1 min): only a stretch that holds all of it must list it.
            let covered = stretches.iter().any(|(s, e)| k.delivered >= *s && k.delivered.0 + MINUTE_MS <= e.0);
            if covered && k.prefix == params.prefix && !known.contains(&(params.bucket.as_str(), key.as_str())) {
                extras.push(key);
            }
        }
    }
    for key in &extras {
        jobs.push((None, params.bucket.clone(), key.clone()));
    }
    prog.log_files_total = jobs.len();
    progress(prog);
    let mut outcomes: Vec<Fetched> = Vec::new();
    {
        let mut stream = futures::stream::iter(jobs)
            .map(|(slot, b, k)| {
                let pool = &pool;
                let bytes_hashed = bytes_hashed.clone();
                async move {
                    let got = source.get(&b, &k).await;
                    let read = match got {
                        Err(e) => Read::Failed(e.message),
                        Ok(None) => Read::Missing,
                        Ok(Some(o)) => match pool.run(move || gunzip_sha256(&o.bytes)).await {
                            Some((hash, n)) => {
                                bytes_hashed.fetch_add(n, Ordering::Relaxed);
                                Read::Hashed(hash)
                            }
                            None => Read::NotGzip,
                        },
                    };
                    Fetched { slot, bucket: b, key: k, read }
                }
            })
            .buffer_unordered(params.fetch_concurrency.max(1));
        while let Some(outcome) = stream.next().await {
            prog.log_files_done += 1;
            prog.log_bytes_hashed = bytes_hashed.load(Ordering::Relaxed);
            progress(prog);
            outcomes.push(outcome);
        }
    }

    // 4. Verdicts, with moved and swapped files recognised by content.
    let expected_by_hash: HashMap<&str, (&str, &str)> = walked
        .iter()
        .flat_map(|w| w.log_files.iter().map(|f| (f.hash_value.as_str(), (f.s3_bucket.as_str(), f.s3_object.as_str()))))
        .collect();
    let mut log_verdicts: Vec<Vec<Option<Problem>>> = walked.iter().map(|w| vec![None; w.log_files.len()]).collect();
    let extra_hash: HashMap<&str, &str> = outcomes
        .iter()
        .filter_map(|f| match (&f.slot, &f.read) {
            (None, Read::Hashed(h)) => Some((h.as_str(), f.key.as_str())),
            _ => None,
        })
        .collect();
    let mut extra_findings = Vec::new();
    for Fetched { slot, bucket: b, key: k, read } in &outcomes {
        match slot {
            Some((d, i)) => {
                let entry = &walked[*d].log_files[*i];
                let problem = match read {
                    Read::Hashed(h) if *h == entry.hash_value => None,
                    Read::Hashed(h) => Some(match expected_by_hash.get(h.as_str()) {
                        Some((ob, ok)) => Problem::HoldsContentOf { other: format!("{ob}/{ok}") },
                        None => Problem::HashMismatch,
                    }),
                    Read::Missing => Some(match extra_hash.get(entry.hash_value.as_str()) {
                        Some(now_at) => Problem::MovedTo { now_at: format!("{}/{now_at}", params.bucket) },
                        None => Problem::NotFound,
                    }),
                    Read::NotGzip => Some(Problem::InvalidFormat),
                    Read::Failed(m) => Some(Problem::Fetch { message: m.clone() }),
                };
                log_verdicts[*d][*i] = problem;
            }
            None => {
                let problem = match read {
                    // Deleted between listing and reading: nothing left to report.
                    Read::Missing => continue,
                    Read::Hashed(h) => match expected_by_hash.get(h.as_str()) {
                        Some((ob, ok)) if !known.contains(&(b.as_str(), k.as_str())) => {
                            Problem::MovedFrom { original: format!("{ob}/{ok}") }
                        }
                        _ => Problem::NotInAnyDigest,
                    },
                    Read::NotGzip | Read::Failed(_) => Problem::NotInAnyDigest,
                };
                extra_findings.push(file(FileKind::LogFile, b, k, Some(problem)));
            }
        }
    }
    let valid = |w: &&WalkedDigest| matches!(&findings[w.finding], Finding::File(r) if r.problem.is_none());
    let found =
        match (walked.iter().filter(valid).map(|w| w.start).min(), walked.iter().filter(valid).map(|w| w.end).max()) {
            (Some(s), Some(e)) => Some((s, e)),
            _ => None,
        };
    // Each digest's log file lines follow its own line, as the aws CLI prints them.
    let mut ordered = Vec::with_capacity(findings.len() + outcomes.len());
    let mut by_finding: HashMap<usize, usize> = walked.iter().enumerate().map(|(d, w)| (w.finding, d)).collect();
    for (i, f) in findings.into_iter().enumerate() {
        ordered.push(f);
        if let Some(d) = by_finding.remove(&i) {
            for (entry, problem) in walked[d].log_files.iter().zip(log_verdicts[d].drain(..)) {
                ordered.push(file(FileKind::LogFile, &entry.s3_bucket, &entry.s3_object, problem));
            }
        }
    }
    extra_findings.sort_by(|a, b| match (a, b) {
        (Finding::File(a), Finding::File(b)) => a.key.cmp(&b.key),
        _ => std::cmp::Ordering::Equal,
    });
    ordered.extend(extra_findings);

    Ok(Report {
        trail_arn: params.trail_arn.clone(),
        requested_start: params.start,
        requested_end: params.end,
        found,
        findings: ordered,
        log_bytes_hashed: bytes_hashed.load(Ordering::Relaxed),
    })
}

/// Pops the newest listed key older than `before` (keys at or after it were walked already).
fn pop_older(listing: &mut Vec<(EventTime, String)>, before: EventTime) -> Option<String> {
    while let Some((t, k)) = listing.pop() {
        if t < before {
            return Some(k);
        }
    }
    None
}

fn file(kind: FileKind, bucket: &str, key: &str, problem: Option<Problem>) -> Finding {
    Finding::File(FileResult { kind, bucket: bucket.to_string(), key: key.to_string(), problem })
}

fn parse_time(s: &str) -> Option<EventTime> {
    // The aws CLI parses with dateutil; any ISO-8601 instant with a zone is accepted.
    model::EventTime::parse(s).ok()
}

/// The aws CLI's digest checks, in its order. Returns the parsed digest and its uncompressed bytes.
fn check_digest(
    object: &Object,
    bucket: &str,
    key: &str,
    keys: &[PublicKey],
    home_region: &str,
) -> Result<(Digest, Vec<u8>), Problem> {
    let json = crate::digest::gunzip(&object.bytes, MAX_DIGEST_BYTES).ok_or(Problem::InvalidFormat)?;
    let value: Value = serde_json::from_slice(&json).map_err(|_| Problem::InvalidFormat)?;
    let (Some(signature), Some(_)) =
        (object.metadata.get(META_SIGNATURE), object.metadata.get(META_SIGNATURE_ALGORITHM))
    else {
        return Err(Problem::SignatureFailed);
    };
    const REQUIRED: [&str; 7] = [
        "digestStartTime",
        "digestEndTime",
        "digestS3Bucket",
        "digestS3Object",
        "digestPublicKeyFingerprint",
        "previousDigestSignature",
        "logFiles",
    ];
    let map = value.as_object().ok_or(Problem::InvalidFormat)?;
    if REQUIRED.iter().any(|k| !map.contains_key(*k)) {
        return Err(Problem::InvalidFormat);
    }
    let digest: Digest = serde_json::from_value(value).map_err(|_| Problem::InvalidFormat)?;
    if digest.digest_s3_bucket != bucket || digest.digest_s3_object != key {
        return Err(Problem::Moved);
    }
    let fingerprint = &digest.digest_public_key_fingerprint;
    let public = keys.iter().find(|k| &k.fingerprint == fingerprint).ok_or_else(|| Problem::PublicKeyNotFound {
        region: home_region.to_string(),
        fingerprint: fingerprint.clone(),
    })?;
    if !is_pkcs1_public_key(&public.der_pkcs1) {
        return Err(Problem::KeyNotPkcs1 { fingerprint: fingerprint.clone() });
    }
    if !crate::digest::verify(&json, &digest, signature, &public.der_pkcs1) {
        return Err(Problem::SignatureFailed);
    }
    Ok((digest, json))
}

/// Streams `gzip` through the decoder into SHA-256: the hex hash of the uncompressed bytes and their
/// length, or `None` when it is not gzip.
pub fn gunzip_sha256(gzip: &[u8]) -> Option<(String, u64)> {
    let mut decoder = flate2::read::MultiGzDecoder::new(gzip);
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                ctx.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some((hex::encode(ctx.finish()), total))
}

type Job = Box<dyn FnOnce() + Send>;

/// A few threads for CPU work, fed by a channel; results come back through oneshot channels, so any
/// async runtime (or none) can await them. Dropping the pool stops and joins the threads.
struct HashPool {
    tx: Option<std::sync::mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl HashPool {
    fn new(n: usize) -> HashPool {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let threads = (0..n)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    loop {
                        // A poisoned lock only means another worker panicked; the channel is still sound.
                        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        };
                        job();
                    }
                })
            })
            .collect();
        HashPool { tx: Some(tx), threads }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> Option<T> + Send + 'static) -> Option<T> {
        let (tx, rx) = futures::channel::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.tx.as_ref()?.send(job).ok()?;
        rx.await.ok().flatten()
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
