//! Insights: every trail with Insights selectors runs the detector (crates/insights) as a view of the journal
//! — [`TrailInsights`] — over the management events it logs, and writes each Insight it raises (Start, then
//! End) into the journal as a CloudTrail Insights event (reference §5.1). They are events like any other:
//! LookupEvents finds them with `EventCategory=insight`, and the trail delivers them under
//! `CloudTrail-Insight/` (their provenance, `insights:<trail ARN>`, tells delivery whose they are).
//!
//! Exactly once: the detector's state and the view's checkpoint are saved together
//! (`<data-dir>/insights/<trail>/state.json`), after the records raised up to that checkpoint are durable.
//! A restart restores the detector as saved and reads the journal again after the checkpoint; what it raises
//! again it raises with the same eventIDs (derived from the Insight's shared id), which the store keeps once.
//! The model: docs/insights.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::insights::{Call, Detector, Insight, InsightState, Settings};
use model::{EventFacts, EventTime, Provenance, Record, Seq, StoredRecord};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use views::{View, ViewError};

use crate::store::{EventStore, IngestItem};
use crate::trails::{Home, InsightType, SourceEventCategory, Trail, TrailStore};

/// The server's clock, injected (tests move it). The wall clock closes the detector's minutes when traffic stops.
pub type Clock = Arc<dyn Fn() -> EventTime + Send + Sync>;

/// Hard-coded: how often the manager looks for trails whose Insights selectors changed or that were deleted.
const RECONCILE_EVERY: Duration = Duration::from_millis(500);

/// Hard-coded: how often the view ticks (the wall-clock close of minutes, state saves).
const TICK: Duration = Duration::from_secs(1);

/// Hard-coded: caught up with the journal and no event taken in for this long (wall time), the traffic has
/// stopped: every API's minutes older than the clock less the allowed lateness are closed by the clock. Until
/// then each API's minutes are closed by its own calls' event times (and, for the live ones, by the clock:
/// [`LIVE`]), so an import of old history and live traffic behave the same.
pub const QUIET_AFTER: Duration = Duration::from_secs(30);

/// Hard-coded: an API whose newest call (or closed minute) is within this much of the clock is live: its minutes
/// close on the clock every tick, so an Insight ends when its calls stop even while other traffic flows.
const LIVE: Duration = Duration::from_secs(300);

/// Hard-coded: the detector's state (a few KiB per API: megabytes for a busy account) is saved at least this
/// often while records arrive, and whenever an Insight is raised; a restart reads the journal again from the
/// last save, at most this much of it.
const SAVE_EVERY: Duration = Duration::from_secs(30);

const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;

/// Every trail's Insights: one view per trail with Insights selectors.
pub struct Insights {
    store: EventStore,
    trails: Arc<TrailStore>,
    dir: PathBuf,
    clock: Clock,
    running: Mutex<BTreeMap<String, (i64, views::ViewHandle)>>,
    reconciler: Mutex<Option<views::Periodic>>,
}

impl Insights {
    /// Starts the views of the trails with Insights selectors and re-checks the trails every 500 ms.
    pub fn start(
        dir: PathBuf,
        store: EventStore,
        trails: Arc<TrailStore>,
        clock: Clock,
    ) -> Result<Arc<Insights>, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let me = Arc::new(Insights {
            store,
            trails,
            dir,
            clock,
            running: Mutex::new(BTreeMap::new()),
            reconciler: Mutex::new(None),
        });
        me.reconcile();
        let reconciler = views::Periodic::start("insights", RECONCILE_EVERY, Arc::downgrade(&me), Insights::reconcile)
            .map_err(|e| format!("cannot start the insights thread: {e}"))?;
        *me.reconciler.lock() = Some(reconciler);
        Ok(me)
    }

    /// Starts a view for each trail that has Insights selectors, stops those of trails that no longer have
    /// them (or are gone), and removes the state of trails whose Insights ended (turning Insights on again
    /// starts learning afresh, as in CloudTrail).
    fn reconcile(&self) {
        let trails = self.trails.describe(&[]);
        let wanted: BTreeMap<&str, &Trail> =
            trails.iter().filter(|t| !t.insight_selectors.is_empty()).map(|t| (t.name.as_str(), t)).collect();
        let mut running = self.running.lock();
        let stale: Vec<String> = running
            .iter()
            .filter(|(name, (created, _))| wanted.get(name.as_str()).is_none_or(|t| t.created.millis() != *created))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some((_, h)) = running.remove(&name) {
                h.stop();
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !wanted.contains_key(name.as_str()) && !running.contains_key(&name) {
                    match std::fs::remove_dir_all(e.path()) {
                        Ok(()) => {
                            tracing::info!(trail = %name, "insights state removed: the trail has no Insights selectors")
                        }
                        Err(err) => tracing::warn!(trail = %name, error = %err, "cannot remove insights state"),
                    }
                }
            }
        }
        for (name, trail) in wanted {
            if running.contains_key(name) {
                continue;
            }
            let view = match TrailInsights::open(self, trail) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(trail = %name, error = %e, "cannot open the trail's insights");
                    continue;
                }
            };
            // In the background: the detector never slows ingest; on a busy machine it catches up when ingest
            // pauses (its lag is `opentrail_view_lag_events{view="insights:<trail>"}`).
            let opts = views::RunOptions { background: true, ..Default::default() };
            match views::spawn(view, self.store.record_feed(), self.store.views(), opts) {
                Ok(h) => {
                    running.insert(name.to_string(), (trail.created.millis(), h));
                }
                Err(e) => tracing::error!(trail = %name, error = %e, "cannot start the trail's insights"),
            }
        }
    }

    /// Stops every view (each saves its state on the way out).
    pub fn shutdown(&self) {
        if let Some(r) = self.reconciler.lock().take() {
            r.stop();
        }
        for (_, (_, h)) in std::mem::take(&mut *self.running.lock()) {
            h.stop();
        }
    }
}

/// What `state.json` holds: the detector as of `checkpoint`.
#[derive(Serialize, Deserialize)]
struct InsightsState {
    version: u32,
    trail_arn: String,
    /// `created` of the trail this state belongs to (a new trail of the same name starts afresh).
    trail_created: i64,
    checkpoint: u64,
    /// Insights records written so far.
    raised: u64,
    detector: Detector,
}

/// One trail's Insights as a view.
pub struct TrailInsights {
    view_name: String,
    trail_name: String,
    trail: Trail,
    home: Home,
    dir: PathBuf,
    store: EventStore,
    trails: Arc<TrailStore>,
    clock: Clock,
    state: InsightsState,
    /// The checkpoint of the state on disk (the runner's restart point).
    saved_checkpoint: u64,
    saved_at: Instant,
    /// When the detector last took in a call (wall time).
    last_call: Instant,
    /// The trail's categories of events the detector looks at.
    categories: Vec<&'static str>,
}

impl TrailInsights {
    fn open(owner: &Insights, trail: &Trail) -> Result<TrailInsights, String> {
        let dir = owner.dir.join(&trail.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let settings = settings_of(trail);
        let state = match load(&dir)? {
            Some(mut s) if s.trail_arn == trail.arn && s.trail_created == trail.created.millis() => {
                s.detector.set_settings(settings);
                s
            }
            other => {
                if other.is_some() {
                    tracing::warn!(trail = %trail.name, "insights state of an earlier trail with this name is replaced");
                }
                // Analysis starts when Insights were turned on, as in CloudTrail (a trail stored before that
                // moment was kept starts from the journal's end now).
                let start = trail.insights_after.unwrap_or_else(|| owner.store.durable_seq().map_or(0, |s| s.0));
                InsightsState {
                    version: STATE_VERSION,
                    trail_arn: trail.arn.clone(),
                    trail_created: trail.created.millis(),
                    checkpoint: start,
                    raised: 0,
                    detector: Detector::new(settings),
                }
            }
        };
        let mut me = TrailInsights {
            view_name: format!("insights:{}", trail.name),
            trail_name: trail.name.clone(),
            trail: trail.clone(),
            home: owner.trails.home().clone(),
            dir,
            store: owner.store.clone(),
            trails: owner.trails.clone(),
            clock: owner.clock.clone(),
            saved_checkpoint: state.checkpoint,
            state,
            saved_at: Instant::now(),
            last_call: Instant::now(),
            categories: categories_of(trail),
        };
        me.save()?;
        Ok(me)
    }

    /// Reads the trail's current selectors (a deleted trail keeps its last ones until the manager stops it).
    fn refresh_trail(&mut self) {
        if let Some(t) = self.trails.by_name(&self.trail_name).filter(|t| t.created == self.trail.created)
            && t != self.trail
        {
            if t.insight_selectors != self.trail.insight_selectors {
                self.state.detector.set_settings(settings_of(&t));
                self.categories = categories_of(&t);
            }
            self.trail = t;
        }
    }

    fn save(&mut self) -> Result<(), String> {
        let bytes = serde_json::to_vec(&self.state).map_err(|e| format!("cannot encode insights state: {e}"))?;
        let path = self.dir.join(STATE_FILE);
        atomic_file::write_atomic(&path, &bytes, 0o600)
            .map_err(|e| format!("cannot save {}: {}", path.display(), e.source))?;
        self.saved_checkpoint = self.state.checkpoint;
        self.saved_at = Instant::now();
        Ok(())
    }

    /// After a failure: the detector goes back to its saved state, and the runner feeds again from there.
    fn rewind(&mut self) {
        match load(&self.dir) {
            Ok(Some(mut s)) => {
                s.detector.set_settings(settings_of(&self.trail));
                self.state = s;
            }
            other => tracing::error!(trail = %self.trail_name, result = ?other.err(), "cannot reload insights state"),
        }
        self.saved_checkpoint = self.state.checkpoint;
    }

    /// Writes what the detector raised into the journal (durably) and, when anything was raised or it is
    /// time, saves the detector with the checkpoint.
    fn flush(&mut self, force_save: bool) -> Result<(), ViewError> {
        let raised = self.state.detector.take_insights();
        if !raised.is_empty() {
            let account = self.home.account.clone();
            let items: Vec<IngestItem> = raised
                .iter()
                .map(|i| {
                    let json = record_json(i, &self.trail.arn, &account);
                    let mut record = Record::parse(json.as_bytes(), || unreachable!("the record has its eventID"))
                        .map_err(|e| fail(format!("an Insights record does not parse: {e}")))?;
                    record.fields.provenance = Provenance::Insights { trail: self.trail.arn.clone() };
                    Ok(IngestItem { record, client_id: true })
                })
                .collect::<Result<_, ViewError>>()?;
            // All queued first, so they share the journal's group commits; then every one is waited for.
            let pending = (items.into_iter())
                .map(|item| self.store.submit_audit(item))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(format!("cannot store an Insight: {e}")))?;
            for p in pending {
                futures::executor::block_on(p.wait()).map_err(|e| fail(format!("cannot store an Insight: {e}")))?;
            }
            self.state.raised += raised.len() as u64;
            for i in &raised {
                tracing::info!(
                    trail = %self.trail_name,
                    state = ?i.state,
                    insight_type = i.insight_type.as_str(),
                    event_source = %i.event_source,
                    event_name = %i.event_name,
                    "insight"
                );
            }
        }
        if !raised.is_empty() || force_save || self.saved_at.elapsed() >= SAVE_EVERY {
            self.save().map_err(fail)?;
        }
        Ok(())
    }
}

impl View for TrailInsights {
    type Item = StoredRecord;

    fn name(&self) -> &str {
        &self.view_name
    }

    fn checkpoint(&self) -> Option<Seq> {
        (self.saved_checkpoint > 0).then_some(Seq(self.saved_checkpoint))
    }

    fn apply(&mut self, items: Vec<(Seq, StoredRecord)>, through: Seq) -> Result<(), ViewError> {
        self.refresh_trail();
        let mut took = false;
        for (seq, record) in &items {
            // Stored records were validated at ingest: one that does not parse is damage, skipped here.
            let Ok(facts) = EventFacts::parse(record.json()) else { continue };
            if let Some(call) = call_of(&self.trail, &self.home, &self.categories, *seq, &facts) {
                self.state.detector.observe(&call);
                took = true;
            }
        }
        if took {
            self.last_call = Instant::now();
        }
        self.state.checkpoint = self.state.checkpoint.max(through.0);
        let res = self.flush(false);
        if res.is_err() {
            self.rewind();
        }
        res
    }

    fn tick(&mut self) -> Result<(), ViewError> {
        // The clock closes minutes only while the view is caught up with the journal: records not applied yet
        // (the view yields to ingest on a busy machine) are calls that have happened, and closing their
        // minutes first would drop them as late.
        let behind = self.store.durable_seq().is_some_and(|d| d.0 > self.state.checkpoint);
        if behind {
            self.last_call = Instant::now();
        } else {
            let now = (self.clock)().millis();
            if self.last_call.elapsed() >= QUIET_AFTER {
                self.state.detector.advance_clock(now);
            } else {
                self.state.detector.advance_live_clock(now, LIVE.as_millis() as i64);
            }
        }
        let res = self.flush(false);
        if res.is_err() {
            self.rewind();
        }
        res
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(TICK)
    }

    fn close(&mut self) -> Result<(), ViewError> {
        self.flush(true)
    }
}

/// The call a record stands for, when the trail logs it and it is an event of a category its Insights
/// selectors analyse; `None` otherwise.
fn call_of<'a>(
    trail: &Trail,
    home: &'a Home,
    categories: &[&str],
    seq: Seq,
    facts: &'a EventFacts<'a>,
) -> Option<Call<'a>> {
    if !trail.logging.logged(seq.0) || !categories.contains(&&*facts.category) {
        return None;
    }
    let region = facts.aws_region.as_deref().unwrap_or(&home.region);
    if !trail.settings.is_multi_region_trail && region != home.region {
        return None;
    }
    if !trail.selectors.matches(facts) {
        return None;
    }
    call_from_facts(facts, region)
}

/// The detector's call for a record's facts in `region` (the record's, or a default); `None` when the record
/// has no eventTime, eventSource or eventName. The server and `opentrail insights replay` both read calls so.
pub fn call_from_facts<'a>(facts: &'a EventFacts<'a>, region: &'a str) -> Option<Call<'a>> {
    Some(Call {
        time_ms: facts.event_time?.millis(),
        region,
        event_source: facts.event_source.as_deref()?,
        event_name: facts.event_name.as_deref()?,
        // A record without readOnly is taken as a write, as trail selectors take it.
        read_only: facts.read_only == Some(true),
        error_code: facts.error_code.as_deref(),
        identity_arn: facts.user_identity_arn.as_deref(),
        user_agent: facts.user_agent.as_deref(),
    })
}

fn load(dir: &Path) -> Result<Option<InsightsState>, String> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let s: InsightsState =
                serde_json::from_slice(&bytes).map_err(|e| format!("{} is damaged: {e}", path.display()))?;
            if s.version != STATE_VERSION {
                return Err(format!("{} has version {}, this server reads {STATE_VERSION}", path.display(), s.version));
            }
            Ok(Some(s))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The detector's settings from the trail's Insights selectors: which types, and the false-alarm budget
/// (the `Sensitivity` extension; the smallest given, else the default).
pub fn settings_of(trail: &Trail) -> Settings {
    let mut s = Settings::default();
    let has = |t: InsightType| trail.insight_selectors.iter().any(|i| i.insight_type == t);
    s.call_rate = has(InsightType::ApiCallRateInsight);
    s.error_rate = has(InsightType::ApiErrorRateInsight);
    if let Some(budget) = trail.insight_selectors.iter().filter_map(|i| i.sensitivity).reduce(f64::min) {
        s.false_alarms_per_week = budget;
    }
    s
}

/// The event categories the trail's Insights selectors analyse (absent means Management).
fn categories_of(trail: &Trail) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for s in &trail.insight_selectors {
        for c in s.event_categories.as_deref().unwrap_or(&[SourceEventCategory::Management]) {
            let c = c.as_str();
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// The eventID of an Insights record: a UUID-shaped name derived from the trail, the Insight's shared id and
/// its state, so raising it again after a restart stores nothing twice.
fn event_id(trail_arn: &str, shared_id: &str, state: InsightState) -> String {
    let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [trail_arn, shared_id, state.as_str()] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    uuid_shaped(h.finish().as_ref())
}

/// `8-4-4-4-12` lowercase hex of the first 16 bytes, with the version-8 (custom) and variant bits set.
fn uuid_shaped(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The Insights event record, as CloudTrail writes it (reference §5.1), members in CloudTrail's order: no
/// userIdentity, eventSource or eventName at the top level; `insightDetails` with the statistics and
/// attributions. An error-rate Insight names its error code in `insightDetails.errorCode`.
pub fn record_json(i: &Insight, trail_arn: &str, account: &str) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct RecordOut<'a> {
        event_version: &'static str,
        event_time: String,
        aws_region: &'a str,
        #[serde(rename = "eventID")]
        event_id: String,
        event_type: &'static str,
        recipient_account_id: &'a str,
        #[serde(rename = "sharedEventID")]
        shared_event_id: &'a str,
        insight_details: Details<'a>,
        event_category: &'static str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Details<'a> {
        state: &'static str,
        event_source: &'a str,
        event_name: &'a str,
        insight_type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<&'a str>,
        insight_context: Context<'a>,
    }
    #[derive(Serialize)]
    struct Context<'a> {
        statistics: Statistics,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        attributions: Vec<AttributionOut<'a>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Statistics {
        baseline: Average,
        insight: Average,
        insight_duration: u64,
        baseline_duration: u64,
    }
    #[derive(Serialize)]
    struct Average {
        average: f64,
    }
    #[derive(Serialize)]
    struct AttributionOut<'a> {
        attribute: &'static str,
        insight: Vec<ValueOut<'a>>,
        baseline: Vec<ValueOut<'a>>,
    }
    #[derive(Serialize)]
    struct ValueOut<'a> {
        value: &'a str,
        average: f64,
    }
    fn values(v: &[(String, f64)]) -> Vec<ValueOut<'_>> {
        v.iter().map(|(value, avg)| ValueOut { value, average: round(*avg) }).collect()
    }
    let record = RecordOut {
        event_version: "1.08",
        event_time: EventTime::from_millis(i.event_time_ms).to_rfc3339(),
        aws_region: &i.region,
        event_id: event_id(trail_arn, &i.shared_id, i.state),
        event_type: "AwsCloudTrailInsight",
        recipient_account_id: account,
        shared_event_id: &i.shared_id,
        insight_details: Details {
            state: i.state.as_str(),
            event_source: &i.event_source,
            event_name: &i.event_name,
            insight_type: i.insight_type.as_str(),
            error_code: i.error_code.as_deref(),
            insight_context: Context {
                statistics: Statistics {
                    baseline: Average { average: round(i.baseline_average) },
                    insight: Average { average: round(i.insight_average) },
                    insight_duration: i.insight_duration_minutes,
                    baseline_duration: i.baseline_duration_minutes,
                },
                attributions: (i.attributions.iter())
                    .map(|a| AttributionOut {
                        attribute: a.attribute.as_str(),
                        insight: values(&a.insight),
                        baseline: values(&a.baseline),
                    })
                    .collect(),
            },
        },
        event_category: "Insight",
    };
    serde_json::to_string(&record).expect("an Insights record always serializes")
}

/// Averages with at most 10 significant digits, as CloudTrail writes them (`85.4202380952`).
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return 0.0;
    }
    let digits = 10 - x.abs().log10().ceil() as i32;
    let f = 10f64.powi(digits.clamp(0, 15));
    (x * f).round() / f
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InsightsError(String);

fn fail(msg: String) -> ViewError {
    ViewError::apply(InsightsError(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::insights::{AttributeKind, Attribution, InsightType as Kind};

    fn insight(state: InsightState, kind: Kind, error_code: Option<&str>) -> Insight {
        Insight {
            shared_id: "7bb000aa-22b3-4c03-94af-c74af0c8a7c0".into(),
            state,
            insight_type: kind,
            region: "us-east-1".into(),
            event_source: "ec2.amazonaws.com".into(),
            event_name: "RunInstances".into(),
            error_code: error_code.map(str::to_string),
            event_time_ms: 1_595_364_960_000,
            baseline_average: 0.0000882145123,
            insight_average: 0.6,
            insight_duration_minutes: 5,
            baseline_duration_minutes: 11336,
            attributions: vec![Attribution {
                attribute: AttributeKind::UserIdentityArn,
                insight: vec![("arn:aws:sts::012345678901:assumed-role/CodeDeployRole1".into(), 0.2)],
                baseline: vec![("arn:aws:sts::012345678901:assumed-role/CodeDeployRole1".into(), 0.0000882145)],
            }],
        }
    }

    /// The members of an object, in order.
    fn keys(v: &serde_json::Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn records_have_cloudtrails_shape_and_member_order() {
        let json = record_json(&insight(InsightState::Start, Kind::ApiCallRate, None), "arn:t", "838185438692");
        // Member order as CloudTrail writes it (the AWS documentation's record, in ../shared/data).
        let order: Vec<&str> = [
            "eventVersion",
            "eventTime",
            "awsRegion",
            "eventID",
            "eventType",
            "recipientAccountId",
            "sharedEventID",
            "insightDetails",
            "eventCategory",
        ]
        .to_vec();
        let at = |k: &str| json.find(&format!("\"{k}\":")).unwrap();
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(keys(&v).len(), order.len());
        assert_eq!(v["eventTime"], "2020-07-21T20:56:00Z");
        assert_eq!(v["eventType"], "AwsCloudTrailInsight");
        assert_eq!(v["eventCategory"], "Insight");
        let d = &v["insightDetails"];
        assert_eq!(d["state"], "Start");
        assert_eq!(d["insightType"], "ApiCallRateInsight");
        assert!(d.get("errorCode").is_none());
        let stats = &d["insightContext"]["statistics"];
        assert_eq!(stats["baseline"]["average"], 0.0000882145123);
        assert_eq!(stats["insight"]["average"], 0.6);
        assert_eq!(stats["insightDuration"], 5);
        assert_eq!(stats["baselineDuration"], 11336);
        let a = &d["insightContext"]["attributions"][0];
        assert_eq!(a["attribute"], "userIdentityArn");
        assert_eq!(a["insight"][0]["average"], 0.2);
        // The record parses as an Insights event for the index: the API it is about, its category.
        let r = Record::parse(json.as_bytes(), || unreachable!()).unwrap();
        assert_eq!(r.fields.category, model::EventCategory::Insight);
        assert_eq!(r.fields.event_name, "RunInstances");
    }

    #[test]
    fn event_ids_are_stable_per_state_and_trail_and_error_rate_names_the_code() {
        let start = insight(InsightState::Start, Kind::ApiErrorRate, Some("AccessDenied"));
        let end = Insight { state: InsightState::End, ..start.clone() };
        let id = |i: &Insight, trail: &str| -> String {
            let v: serde_json::Value = serde_json::from_str(&record_json(i, trail, "1")).unwrap();
            v["eventID"].as_str().unwrap().to_string()
        };
        assert_eq!(id(&start, "arn:a"), id(&start, "arn:a"));
        assert_ne!(id(&start, "arn:a"), id(&end, "arn:a"));
        assert_ne!(id(&start, "arn:a"), id(&start, "arn:b"));
        let shape = id(&start, "arn:a");
        assert_eq!(shape.len(), 36);
        assert_eq!(shape.matches('-').count(), 4);
        let v: serde_json::Value = serde_json::from_str(&record_json(&start, "arn:a", "1")).unwrap();
        assert_eq!(v["insightDetails"]["errorCode"], "AccessDenied");
        assert_eq!(v["sharedEventID"], start.shared_id);
    }

    #[test]
    fn averages_keep_ten_significant_digits() {
        assert_eq!(round(85.420238095238).to_string(), "85.4202381");
        assert_eq!(round(664.0).to_string(), "664");
        assert_eq!(round(0.0000882145123456).to_string(), "0.00008821451235");
        assert_eq!(round(f64::NAN), 0.0);
    }
}
