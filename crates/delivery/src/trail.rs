//! One trail's delivery: a view of the journal that keeps the records the trail logs in gzip log files per
//! (account, Region), cuts them every `[delivery] interval` or at [`MAX_FILE_BYTES`], stages each file in
//! its outbox before its checkpoint moves past its records, uploads the outbox in order (retrying with
//! back-off), and, when log file validation is on, writes each Region's signed digest every
//! `digest_interval` and when logging stops.
//!
//! Exactly once: a record is in a file's bytes before the checkpoint covers it, and the file is in the
//! outbox (fsync'd) in the same state write that moves the checkpoint; a restart re-reads the journal after
//! the checkpoint and re-uploads the outbox. An object found already in the bucket on re-upload (the crash
//! fell between upload and state write) is compared with the staged one, never written twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use integrity::layout::LogKind;
use integrity::logfile::RecordBuffer;
use model::{EventFacts, EventTime, Provenance, Seq, StoredRecord};
use service::trails::Trail;
use views::{View, ViewError};

use crate::state::{DeliveredLog, Link, Staged, StagedKind, TrailState};
use crate::{Shared, TrailStatus};

/// Hard-coded: a log file is cut once it holds this many bytes of records (uncompressed), whatever the interval.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Hard-coded: the first retry after a failed upload, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Hard-coded: how often the runner ticks the view (cut, upload, digest checks).
pub const TICK: Duration = Duration::from_millis(100);

/// Hard-coded: digest windows written in one step after a long pause (the rest follow in the next steps).
const MAX_DIGEST_WINDOWS_PER_STEP: i64 = 256;

pub struct TrailDelivery {
    shared: Arc<Shared>,
    view_name: String,
    trail_name: String,
    dir: PathBuf,
    state: TrailState,
    /// The trail as last read from the trail store.
    trail: Option<Trail>,
    /// The trail was deleted: finish like a stop, then the state goes.
    gone: bool,
    /// Open log files by (kind, account, Region), uncompressed until the cut compresses them in parallel.
    open: BTreeMap<Target, RecordBuffer>,
    open_bytes: usize,
    /// Position applied in memory (≥ the durable checkpoint).
    applied: u64,
    last_cut: Instant,
    retry_at: Option<Instant>,
    backoff: Duration,
    unparsable: u64,
}

impl TrailDelivery {
    /// Opens the delivery of `trail`, from its state on disk or, for a trail never delivered, from the
    /// start of its first logging stretch.
    pub fn open(shared: Arc<Shared>, trail: Trail) -> Result<TrailDelivery, String> {
        let dir = shared.dir.join(&trail.name);
        std::fs::create_dir_all(dir.join(crate::state::OUTBOX_DIR))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let first = trail.logging.intervals.first().map_or(0, |i| i.after);
        let state = match TrailState::load(&dir)? {
            Some(s) if s.trail_arn == trail.arn && s.trail_created == trail.created => s,
            Some(old) => {
                tracing::warn!(trail = %trail.name, outbox = old.outbox.len(), "delivery state of an earlier trail with this name is replaced");
                TrailState::new(&trail.arn, trail.created, first)
            }
            None => TrailState::new(&trail.arn, trail.created, first),
        };
        // Nothing is delivered between stretches: start at the next one.
        let mut state = state;
        if !trail.logging.logged(state.checkpoint + 1)
            && let Some(next) = trail.logging.next_start_after(state.checkpoint)
            && state.outbox.is_empty()
            && state.regions.values().all(|r| r.pending.is_empty())
        {
            state.checkpoint = next;
        }
        // Outbox files no state names are from a cut that crashed before its state write: their records are
        // after the checkpoint and will be cut again.
        if let Ok(entries) = std::fs::read_dir(dir.join(crate::state::OUTBOX_DIR)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !state.outbox.iter().any(|s| s.file == name) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let view_name = format!("trail:{}", trail.name);
        let applied = state.checkpoint;
        let d = TrailDelivery {
            shared,
            view_name,
            trail_name: trail.name.clone(),
            dir,
            state,
            trail: Some(trail),
            gone: false,
            open: BTreeMap::new(),
            open_bytes: 0,
            applied,
            last_cut: Instant::now(),
            retry_at: None,
            backoff: FIRST_BACKOFF,
            unparsable: 0,
        };
        d.publish();
        Ok(d)
    }

    fn now(&self) -> EventTime {
        (self.shared.clock)()
    }

    /// Reads the trail's current settings. A deleted trail (or one replaced by a new trail of the same name)
    /// keeps its last settings, stopped at what was applied when it went: its delivery finishes like a stop.
    fn refresh_trail(&mut self) {
        match self.shared.trails.by_name(&self.trail_name).filter(|t| t.created == self.state.trail_created) {
            Some(t) => {
                if self.state.trail.as_ref() != Some(&t) {
                    self.state.trail = Some(t.clone());
                }
                self.trail = Some(t);
            }
            None => {
                self.gone = true;
                if let Some(t) = &mut self.trail
                    && t.logging.is_logging
                {
                    t.logging.is_logging = false;
                    if let Some(last) = t.logging.intervals.last_mut() {
                        last.through = Some(self.applied.max(last.after));
                    }
                }
            }
        }
    }

    fn save(&self) -> Result<(), ViewError> {
        self.state.save(&self.dir).map_err(|e| fail(format!("cannot save delivery state: {e}")))?;
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        let idle = self.state.outbox.is_empty()
            && self.open.is_empty()
            && (self.state.deleted || self.state.finalized)
            && self.trail.as_ref().is_none_or(|t| !t.logging.is_logging);
        self.shared.publish(
            &self.trail_name,
            TrailStatus {
                status: self.state.status.clone(),
                outbox: self.state.outbox.len(),
                idle,
                deleted: self.state.deleted,
            },
        );
    }

    /// Stages every open log file and moves the durable checkpoint to `through`, in one state write.
    fn cut(&mut self, through: u64) -> Result<(), ViewError> {
        self.last_cut = Instant::now();
        if self.open.is_empty() {
            if through > self.state.checkpoint {
                self.state.checkpoint = through;
                // Not saved: re-reading records that select nothing after a restart costs only time.
            }
            return Ok(());
        }
        let Some(trail) = self.trail.clone() else { return Ok(()) };
        let now = self.now();
        let mut staged = Vec::new();
        // Every file of the cut goes into one outbox file: one write and one fsync however many (account,
        // Region) files the cut has.
        let name = format!("{:012}.cut", self.state.next_staged);
        self.state.next_staged += 1;
        let mut blob: Vec<u8> = Vec::new();
        for (Target { kind, account, region }, file) in finish_all(std::mem::take(&mut self.open)) {
            let key = integrity::layout::LogFileKey {
                kind,
                prefix: trail.settings.s3_key_prefix.clone(),
                account,
                region: region.clone(),
                delivered: now,
                unique: integrity::layout::unique_name(rand::random()),
            }
            .to_key();
            let offset = blob.len() as u64;
            blob.extend_from_slice(&file.gzip);
            staged.push(Staged {
                kind: StagedKind::Log,
                file: name.clone(),
                offset,
                bucket: trail.settings.s3_bucket_name.clone(),
                key,
                region,
                size: file.gzip.len() as u64,
                sha256: file.sha256_hex,
                oldest: file.oldest_event_time,
                newest: file.newest_event_time,
                records: file.record_count as u64,
                metadata: Vec::new(),
            });
        }
        let path = TrailState::outbox_path(&self.dir, &name);
        atomic_file::write_atomic(&path, &blob, 0o600)
            .map_err(|e| fail(format!("cannot stage {}: {}", path.display(), e.source)))?;
        self.open_bytes = 0;
        self.state.outbox.extend(staged);
        self.state.checkpoint = through;
        self.state.finalized = false;
        self.save()
    }

    /// Uploads the outbox: every staged object at once (at most [`UPLOADS_IN_FLIGHT`] in flight), each result
    /// taken in outbox order. Order in the bucket does not matter: a digest lists only log files already
    /// delivered, and names its predecessor by key. Failed objects stay in the outbox for the next try, after
    /// a back-off.
    fn upload(&mut self) -> Result<(), ViewError> {
        if self.state.outbox.is_empty() || self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let items = self.state.outbox.clone();
        let now = self.now();
        if items.iter().any(|i| i.kind == StagedKind::Log) {
            self.state.status.latest_delivery_attempt_time = Some(now);
        }
        if items.iter().any(|i| i.kind == StagedKind::Digest) {
            self.state.status.latest_digest_attempt_time = Some(now);
        }
        let results = self.put_all(&items);
        let mut kept = Vec::new();
        let mut failure: Option<String> = None;
        for (item, result) in items.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    let s = &mut self.state.status;
                    match item.kind {
                        StagedKind::Log => {
                            s.latest_delivery_time = Some(now);
                            s.latest_delivery_attempt_succeeded = Some(now);
                            s.delivered_log_files += 1;
                            s.delivered_events += item.records;
                            self.state.regions.entry(item.region.clone()).or_default().pending.push(DeliveredLog {
                                bucket: item.bucket.clone(),
                                key: item.key.clone(),
                                sha256: item.sha256.clone(),
                                oldest: item.oldest,
                                newest: item.newest,
                                delivered: Some(now),
                            });
                        }
                        StagedKind::Digest => {
                            s.latest_digest_delivery_time = Some(now);
                            s.latest_digest_attempt_succeeded = Some(now);
                            s.delivered_digests += 1;
                            s.latest_digest = Some((item.bucket.clone(), item.key.clone()));
                        }
                    }
                    self.shared.count_delivered(&self.trail_name, item.kind, item.records);
                }
                Err(e) => {
                    if failure.is_none() {
                        tracing::warn!(trail = %self.trail_name, bucket = %item.bucket, key = %item.key, error = %e, retry_in_ms = self.backoff.as_millis() as u64, "delivery failed; will retry");
                        failure = Some(e);
                    }
                    self.shared.count_error(&self.trail_name);
                    kept.push(item);
                }
            }
        }
        // An error stays in the status while objects of its kind wait in the outbox.
        let (logs_left, digests_left) = kept
            .iter()
            .fold((false, false), |(l, d), k| (l || k.kind == StagedKind::Log, d || k.kind == StagedKind::Digest));
        let s = &mut self.state.status;
        match &failure {
            Some(msg) => {
                if logs_left {
                    s.latest_delivery_error = Some(msg.clone());
                }
                if digests_left {
                    s.latest_digest_delivery_error = Some(msg.clone());
                }
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
            None => {
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
            }
        }
        if !logs_left {
            s.latest_delivery_error = None;
        }
        if !digests_left {
            s.latest_digest_delivery_error = None;
        }
        self.state.outbox = kept;
        self.save()?;
        // Outbox files go once the state no longer names them.
        if let Ok(entries) = std::fs::read_dir(self.dir.join(crate::state::OUTBOX_DIR)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !self.state.outbox.iter().any(|s| s.file == name) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Writes staged objects to their buckets concurrently; one result per item, in order.
    fn put_all(&self, items: &[Staged]) -> Vec<Result<(), String>> {
        // Each outbox file is read once, and objects are slices of it.
        let mut files: BTreeMap<String, Result<bytes::Bytes, String>> = BTreeMap::new();
        for item in items {
            files.entry(item.file.clone()).or_insert_with(|| {
                let path = TrailState::outbox_path(&self.dir, &item.file);
                std::fs::read(&path)
                    .map(bytes::Bytes::from)
                    .map_err(|e| format!("cannot read staged {}: {e}", path.display()))
            });
        }
        let jobs: Vec<_> = items
            .iter()
            .map(|item| {
                let body = files[&item.file].clone().and_then(|blob| {
                    let (from, to) = (item.offset as usize, (item.offset + item.size) as usize);
                    if to > blob.len() {
                        return Err(format!("staged {} is shorter than its objects", item.file));
                    }
                    Ok(blob.slice(from..to))
                });
                let bucket = self.shared.bucket(&item.bucket);
                async move { put_one(bucket?, item, body?).await }
            })
            .collect();
        self.shared.runtime.block_on(futures::stream::iter(jobs).buffered(UPLOADS_IN_FLIGHT).collect())
    }

    /// Whether the trail wants digests now.
    fn validation_on(&self) -> bool {
        self.trail.as_ref().is_some_and(|t| t.settings.log_file_validation_enabled)
    }

    /// The digest windows that have closed since the last digest, on the chain's grid: the k-th ends exactly k
    /// digest intervals after the window the chain started with, however late the view gets to them (a busy
    /// machine, a restart), so every digest of a chain but its final one spans exactly one interval and a
    /// validator can tell a deleted digest from a late one. At most [`MAX_DIGEST_WINDOWS_PER_STEP`] per step.
    fn closed_windows(&self) -> Vec<EventTime> {
        let Some(last) = self.state.last_digest_end else { return Vec::new() };
        let step = (self.shared.digest_interval.as_millis() as i64).max(1000);
        let now = self.now().0;
        (1..=MAX_DIGEST_WINDOWS_PER_STEP).map(|k| EventTime(last.0 + k * step)).take_while(|end| end.0 <= now).collect()
    }

    /// Writes a digest for each closed window of the grid ([`Self::closed_windows`]).
    fn digest_closed_windows(&mut self) -> Result<(), ViewError> {
        for end in self.closed_windows() {
            self.digest_round(end, false)?;
        }
        Ok(())
    }

    /// Writes one digest per Region (the trail's home Region always, and every Region it delivered to) for the
    /// window ending at `end`, listing the log files delivered by then, and stages them; `final_round` is the
    /// last digest before logging stops or the trail goes (each chain starts again after it).
    fn digest_round(&mut self, mut end: EventTime, final_round: bool) -> Result<(), ViewError> {
        let Some(trail) = self.trail.clone() else { return Ok(()) };
        let home = self.shared.trails.home().clone();
        // Digest keys carry their end to the second: keep every round's end after the previous one's.
        if let Some(prev) = self.state.last_digest_end {
            end = EventTime(end.0.max(prev.0 / 1000 * 1000 + 1000));
        }
        end = EventTime(end.0 / 1000 * 1000);
        self.state.regions.entry(home.region.clone()).or_default();
        let key_ring = self.shared.keys.clone();
        let signing = key_ring.current();
        let regions: Vec<String> = self.state.regions.keys().cloned().collect();
        for region in regions {
            let mut chain = self.state.regions.get(&region).cloned().unwrap_or_default();
            // Log files delivered after the window closed wait for the next one (a file without a delivery
            // time is from a state written before it was kept: it belongs to the first window).
            let later: Vec<DeliveredLog> = if final_round {
                Vec::new()
            } else {
                let (now, later) = chain.pending.drain(..).partition(|l| l.delivered.is_none_or(|t| t <= end));
                chain.pending = now;
                later
            };
            let start = chain.window_start.or(self.state.last_digest_end).unwrap_or(end);
            let key = integrity::layout::DigestKey {
                prefix: trail.settings.s3_key_prefix.clone(),
                account: home.account.clone(),
                region: region.clone(),
                trail: trail.name.clone(),
                home_region: trail.home_region.clone(),
                end,
            }
            .to_key();
            let bucket = trail.settings.s3_bucket_name.clone();
            let previous = chain.previous.as_ref().map(|p| integrity::digest::ChainLink {
                bucket: p.bucket.clone(),
                key: p.key.clone(),
                hash_hex: p.sha256.clone(),
                signature_hex: p.signature.clone(),
            });
            let digest = integrity::digest::Digest::new(integrity::digest::DigestInput {
                account: &home.account,
                start,
                end,
                bucket: &bucket,
                key: &key,
                fingerprint: signing.fingerprint(),
                log_files: chain
                    .pending
                    .iter()
                    .map(|l| integrity::digest::LogFileEntry {
                        s3_bucket: l.bucket.clone(),
                        s3_object: l.key.clone(),
                        hash_value: l.sha256.clone(),
                        hash_algorithm: integrity::digest::HASH_ALGORITHM.to_string(),
                        newest_event_time: l.newest.map(integrity::time::iso_seconds),
                        oldest_event_time: l.oldest.map(integrity::time::iso_seconds),
                    })
                    .collect(),
                previous: previous.as_ref(),
            });
            let signed =
                digest.sign(signing.signing_key()).map_err(|e| fail(format!("cannot sign digest {key}: {e}")))?;
            let name = format!("{:012}.json.gz", self.state.next_staged);
            self.state.next_staged += 1;
            let path = TrailState::outbox_path(&self.dir, &name);
            atomic_file::write_atomic(&path, &signed.gzip, 0o600)
                .map_err(|e| fail(format!("cannot stage {}: {}", path.display(), e.source)))?;
            self.state.outbox.push(Staged {
                kind: StagedKind::Digest,
                file: name,
                offset: 0,
                bucket: bucket.clone(),
                key: key.clone(),
                region: region.clone(),
                size: signed.gzip.len() as u64,
                sha256: signed.sha256_hex.clone(),
                oldest: chain.pending.iter().filter_map(|l| l.oldest).min(),
                newest: chain.pending.iter().filter_map(|l| l.newest).max(),
                records: 0,
                metadata: signed.metadata().iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            });
            let chain = self.state.regions.entry(region).or_default();
            chain.pending = later;
            if final_round {
                chain.previous = None;
                chain.window_start = None;
            } else {
                chain.previous =
                    Some(Link { bucket, key, sha256: signed.sha256_hex, signature: signed.signature_hex, end });
                chain.window_start = Some(end);
            }
        }
        self.state.last_digest_end = Some(end);
        self.save()
    }

    fn digest_due(&self) -> bool {
        if !self.validation_on() {
            return false;
        }
        let trail_logging = self.trail.as_ref().is_some_and(|t| t.logging.is_logging);
        match self.state.last_digest_end {
            // The first digest of a chain comes one interval after logging (or validation) starts.
            None => trail_logging,
            Some(end) => trail_logging && self.now().0 - end.0 >= self.shared.digest_interval.as_millis() as i64,
        }
    }

    /// After the trail stopped (and the view passed the stop) or was deleted: cut what is open, deliver, and
    /// write each Region's final digest, once.
    fn finish_if_stopped(&mut self) -> Result<(), ViewError> {
        let stopped_through = match &self.trail {
            Some(t) if !t.logging.is_logging => t.logging.intervals.last().and_then(|i| i.through).or(Some(0)),
            _ => None,
        };
        let Some(through) = stopped_through else { return Ok(()) };
        if self.state.finalized || self.applied < through {
            if self.gone && self.state.finalized && !self.state.deleted {
                self.state.deleted = true;
                self.save()?;
            }
            return Ok(());
        }
        self.cut(self.applied)?;
        self.upload()?;
        if !self.state.outbox.iter().all(|s| s.kind == StagedKind::Digest) {
            // The final digest must list every file: wait until the log files are in the bucket.
            return Ok(());
        }
        if self.validation_on() && self.state.last_digest_end.is_some()
            || self.validation_on() && self.state.regions.values().any(|r| !r.pending.is_empty())
        {
            // The windows that closed before the stop on the grid, then the final one up to now.
            self.digest_closed_windows()?;
            let now = self.now();
            self.digest_round(now, true)?;
        }
        self.state.last_digest_end = None;
        self.state.finalized = true;
        self.state.deleted = self.gone;
        self.save()?;
        self.upload()
    }

    fn step(&mut self) -> Result<(), ViewError> {
        self.refresh_trail();
        if self.state.finalized && self.trail.as_ref().is_some_and(|t| t.logging.is_logging) {
            // Logging started again: a new stretch, and (with validation) a new chain.
            self.state.finalized = false;
            self.save()?;
        }
        let interval = self.shared.interval;
        if self.last_cut.elapsed() >= interval {
            self.cut(self.applied)?;
        }
        self.upload()?;
        if !self.validation_on() && self.state.regions.values().any(|r| r.previous.is_some() || !r.pending.is_empty()) {
            // Validation turned off: the chains end; turning it on again starts new ones.
            self.state.regions.clear();
            self.state.last_digest_end = None;
            self.save()?;
        }
        if self.digest_due() && self.state.outbox.iter().all(|s| s.kind == StagedKind::Digest) {
            if self.state.last_digest_end.is_none() {
                // A chain starts: its first window opens now (to the second, like the keys of its digests).
                let now = EventTime(self.now().0 / 1000 * 1000);
                self.state.last_digest_end = Some(now);
                for chain in self.state.regions.values_mut() {
                    chain.window_start = Some(now);
                }
                self.save()?;
            } else {
                self.digest_closed_windows()?;
                self.upload()?;
            }
        }
        self.finish_if_stopped()?;
        if self.state.deleted && self.state.outbox.is_empty() {
            self.publish();
        }
        Ok(())
    }
}

impl View for TrailDelivery {
    type Item = StoredRecord;

    fn name(&self) -> &str {
        &self.view_name
    }

    fn checkpoint(&self) -> Option<Seq> {
        (self.state.checkpoint > 0).then_some(Seq(self.state.checkpoint))
    }

    fn apply(&mut self, items: Vec<(Seq, StoredRecord)>, through: Seq) -> Result<(), ViewError> {
        let res = self.apply_inner(items, through);
        if res.is_err() {
            self.rewind();
        }
        res
    }

    fn tick(&mut self) -> Result<(), ViewError> {
        let res = self.step();
        if res.is_err() {
            self.rewind();
        }
        res
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(TICK)
    }
}

impl TrailDelivery {
    /// After a failure: what was taken in since the durable checkpoint is dropped, and the runner feeds it
    /// again from [`View::checkpoint`] (so nothing is lost and nothing is in two files).
    fn rewind(&mut self) {
        self.open.clear();
        self.open_bytes = 0;
        self.applied = self.state.checkpoint;
    }

    fn apply_inner(&mut self, items: Vec<(Seq, StoredRecord)>, through: Seq) -> Result<(), ViewError> {
        self.refresh_trail();
        if let Some(trail) = self.trail.clone() {
            let home = self.shared.trails.home().clone();
            let decided = decide_all(&trail, &home, &items);
            for ((seq, record), decision) in items.iter().zip(decided) {
                let (target, event_time) = match decision {
                    Decision::Skip => continue,
                    Decision::Damaged(e) => {
                        // Stored records were validated at ingest: this is damage, and it is skipped, not fatal.
                        self.unparsable += 1;
                        tracing::error!(trail = %self.trail_name, %seq, error = %e, "stored record is not a JSON object; not delivered");
                        continue;
                    }
                    Decision::Deliver(target, time) => (target, time),
                };
                let builder = self.open.entry(target).or_default();
                let before = builder.uncompressed_len() as usize;
                builder.push(record.json().as_bytes(), event_time);
                self.open_bytes += builder.uncompressed_len() as usize - before;
                if self.open_bytes >= MAX_FILE_BYTES {
                    self.cut(seq.0)?;
                }
            }
        }
        self.applied = self.applied.max(through.0);
        self.finish_if_stopped()
    }
}

/// Which log file a record goes into: its kind (events or Insights), account and Region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    kind: LogKind,
    account: String,
    region: String,
}

/// What a trail does with one record.
enum Decision {
    Skip,
    Damaged(String),
    /// Into the open file of its target, with its eventTime.
    Deliver(Target, EventTime),
}

/// Hard-coded: below this many records a batch is decided on the view's own thread.
const PARALLEL_FROM: usize = 1024;

/// Decides every record of a batch — parsing its selector facts is most of a trail's work per record — on
/// as many threads as there are cores; the answers come back in batch order.
fn decide_all(trail: &Trail, home: &service::trails::Home, items: &[(Seq, StoredRecord)]) -> Vec<Decision> {
    let decide = |(seq, record): &(Seq, StoredRecord)| -> Decision {
        if !trail.logging.logged(seq.0) {
            return Decision::Skip;
        }
        match EventFacts::parse(record.json()) {
            Err(e) => Decision::Damaged(e.to_string()),
            // Every stored record has an eventTime (it was validated at ingest).
            Ok(facts) => match target_of(trail, home, &facts, &record.provenance) {
                Some(target) => Decision::Deliver(target, facts.event_time.unwrap_or(EventTime(0))),
                None => Decision::Skip,
            },
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < PARALLEL_FROM {
        return items.iter().map(decide).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(decide).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("deciding a record cannot panic")).collect()
    })
}

/// Where a trail delivers a record it logs, or `None` when its Region or selectors leave it out. Insights
/// events go only to the trail whose detector raised them (their provenance names it), while it still has
/// Insights selectors, into `CloudTrail-Insight/`; no event selector selects them.
fn target_of(
    trail: &Trail,
    home: &service::trails::Home,
    facts: &EventFacts<'_>,
    provenance: &Provenance,
) -> Option<Target> {
    let region = facts.aws_region.as_deref().unwrap_or(&home.region);
    if !trail.settings.is_multi_region_trail && region != home.region {
        return None;
    }
    let kind = if facts.category == "Insight" {
        let ours = matches!(provenance, Provenance::Insights { trail: arn } if *arn == trail.arn);
        if !ours || trail.insight_selectors.is_empty() {
            return None;
        }
        LogKind::Insights
    } else {
        if !trail.selectors.matches(facts) {
            return None;
        }
        LogKind::Events
    };
    let account = facts.recipient_account_id.as_deref().unwrap_or(&home.account);
    Some(Target { kind, account: account.to_string(), region: region.to_string() })
}

/// A delivery failure, as the view runner logs and counts it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DeliveryError(String);

fn fail(msg: String) -> ViewError {
    ViewError::apply(DeliveryError(msg))
}

/// Hard-coded: objects uploaded at once (a cut has one log file per account and Region; on a local folder each
/// costs a few fsyncs, which the filesystem commits together when they come together).
const UPLOADS_IN_FLIGHT: usize = 32;

/// Writes one staged object. An object already there (a crash fell between the upload and the state write)
/// counts as delivered if it is the same bytes; it is never overwritten.
async fn put_one(bucket: Arc<buckets::Bucket>, item: &Staged, body: bytes::Bytes) -> Result<(), String> {
    let meta: Vec<(&str, &str)> = item.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match bucket.put_once(&item.key, body.clone(), &meta).await {
        Ok(()) => Ok(()),
        Err(buckets::BucketError::Exists { .. }) => {
            let existing = bucket.get(&item.key, None).await.map_err(|e| e.to_string())?;
            if existing.body == body {
                Ok(())
            } else {
                Err(format!("s3://{}/{} exists with other content; it is never overwritten", item.bucket, item.key))
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Compresses and hashes a cut's files on as many threads as there are cores (gzip is most of a trail's CPU).
fn finish_all(open: BTreeMap<Target, RecordBuffer>) -> Vec<(Target, integrity::logfile::LogFile)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(open.len()).max(1);
    let mut shares: Vec<Vec<(Target, RecordBuffer)>> = (0..threads).map(|_| Vec::new()).collect();
    // Largest first, each to the least loaded thread.
    let mut files: Vec<_> = open.into_iter().collect();
    files.sort_by_key(|(_, b)| std::cmp::Reverse(b.uncompressed_len()));
    let mut load = vec![0u64; threads];
    for f in files {
        let i = (0..threads).min_by_key(|i| load[*i]).unwrap_or(0);
        load[i] += f.1.uncompressed_len();
        shares[i].push(f);
    }
    let mut out: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || share.into_iter().map(|(k, b)| (k, b.finish())).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("compressing a log file cannot panic")).collect()
    });
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
