//! A trail's delivery state, one JSON file per trail (`<data-dir>/delivery/<trail>/state.json`, replaced
//! with the `atomic-file` crate): the checkpoint (every record it covers that the trail logs is in a staged or
//! delivered log file), the outbox of staged objects not yet in the bucket, and each Region's digest chain.
//! Format: docs/formats/delivery.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model::EventTime;
use serde::{Deserialize, Serialize};

pub const STATE_VERSION: u32 = 1;
pub const STATE_FILE: &str = "state.json";
pub const OUTBOX_DIR: &str = "outbox";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrailState {
    pub version: u32,
    /// The trail this state belongs to (a trail deleted and created again under the same name is another).
    pub trail_arn: String,
    pub trail_created: EventTime,
    /// Last journal seq covered: every record up to it that the trail logs is in a staged or delivered file.
    pub checkpoint: u64,
    /// Staged objects, oldest first; uploaded in this order.
    pub outbox: Vec<Staged>,
    /// Per Region: the log files delivered since its last digest, and the chain's last link.
    pub regions: BTreeMap<String, RegionChain>,
    /// When the last digest round ran (every Region's digest ends there).
    pub last_digest_end: Option<EventTime>,
    /// Set once a stopped trail has cut its last file and written its final digests; cleared on restart.
    pub finalized: bool,
    /// Set once the trail was deleted: the state is removed when the outbox is empty.
    pub deleted: bool,
    pub status: Status,
    /// A number for the next outbox file.
    pub next_staged: u64,
    /// The trail's settings as last seen: what a delivery needs to finish (outbox, final digest) when the
    /// trail was deleted while the server was down.
    #[serde(default)]
    pub trail: Option<service::trails::Trail>,
}

/// What GetTrailStatus reports about delivery (and the metrics), kept with the state so it survives restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub latest_delivery_time: Option<EventTime>,
    pub latest_delivery_attempt_time: Option<EventTime>,
    pub latest_delivery_attempt_succeeded: Option<EventTime>,
    pub latest_delivery_error: Option<String>,
    pub latest_digest_delivery_time: Option<EventTime>,
    pub latest_digest_attempt_time: Option<EventTime>,
    pub latest_digest_attempt_succeeded: Option<EventTime>,
    pub latest_digest_delivery_error: Option<String>,
    /// Bucket and key of the newest digest delivered: what `opentrail validate` checks the newest digest in
    /// the bucket against (a deleted newest digest is otherwise invisible).
    pub latest_digest: Option<(String, String)>,
    pub delivered_log_files: u64,
    pub delivered_digests: u64,
    pub delivered_events: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StagedKind {
    Log,
    Digest,
}

/// An object written to the outbox (fsync'd) and not yet in its bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    pub kind: StagedKind,
    /// Outbox file name, and where this object's bytes start in it (a cut stages all its log files in one
    /// file, one fsync for all of them).
    pub file: String,
    #[serde(default)]
    pub offset: u64,
    pub bucket: String,
    pub key: String,
    pub region: String,
    pub size: u64,
    /// Hex SHA-256 of the uncompressed content.
    pub sha256: String,
    pub oldest: Option<EventTime>,
    pub newest: Option<EventTime>,
    pub records: u64,
    /// Object metadata (digests: signature and algorithm), names without `x-amz-meta-`.
    pub metadata: Vec<(String, String)>,
}

/// A log file in its bucket, waiting for the Region's next digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveredLog {
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub oldest: Option<EventTime>,
    pub newest: Option<EventTime>,
    /// When the upload succeeded: the digest whose window holds it lists it. `None` in states written before
    /// it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<EventTime>,
}

/// The last digest of a Region's chain (what the next digest's `previousDigest*` fields name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    pub signature: String,
    pub end: EventTime,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionChain {
    pub pending: Vec<DeliveredLog>,
    /// `None` at a chain start (the first digest after validation or logging was turned on).
    pub previous: Option<Link>,
    /// Where the next digest's window starts.
    pub window_start: Option<EventTime>,
}

impl TrailState {
    pub fn new(trail_arn: &str, created: EventTime, checkpoint: u64) -> TrailState {
        TrailState {
            version: STATE_VERSION,
            trail_arn: trail_arn.to_string(),
            trail_created: created,
            checkpoint,
            outbox: Vec::new(),
            regions: BTreeMap::new(),
            last_digest_end: None,
            finalized: false,
            deleted: false,
            status: Status::default(),
            next_staged: 1,
            trail: None,
        }
    }

    /// Loads the state in `dir`, `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<TrailState>, String> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: TrailState = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{} is not a delivery state file: {e}", path.display()))?;
                if state.version != STATE_VERSION {
                    return Err(format!(
                        "{}: unsupported version {} (this build reads {STATE_VERSION})",
                        path.display(),
                        state.version
                    ));
                }
                Ok(Some(state))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Replaces the state file (temp file, fsync, rename, directory fsync).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        atomic_file::write_atomic(&dir.join(STATE_FILE), &bytes, 0o600).map_err(|e| e.source)
    }

    pub fn outbox_path(dir: &Path, file: &str) -> PathBuf {
        dir.join(OUTBOX_DIR).join(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(TrailState::load(dir.path()).unwrap().is_none());
        let mut s = TrailState::new("arn:aws:cloudtrail:us-east-1:1:trail/t", EventTime(5), 7);
        s.regions.entry("us-east-1".into()).or_default().pending.push(DeliveredLog {
            bucket: "b".into(),
            key: "k".into(),
            sha256: "00".into(),
            oldest: Some(EventTime(1)),
            newest: None,
            delivered: Some(EventTime(9)),
        });
        s.save(dir.path()).unwrap();
        let back = TrailState::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.checkpoint, 7);
        assert_eq!(back.regions["us-east-1"].pending, s.regions["us-east-1"].pending);
        // A state written before delivery times were kept still loads; its files have none.
        let old = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap().replace(",\"delivered\":9", "");
        assert!(!old.contains("delivered\":"), "{old}");
        std::fs::write(dir.path().join(STATE_FILE), old).unwrap();
        let back = TrailState::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.regions["us-east-1"].pending[0].delivered, None);
        std::fs::write(dir.path().join(STATE_FILE), b"{").unwrap();
        assert!(TrailState::load(dir.path()).is_err());
    }
}
