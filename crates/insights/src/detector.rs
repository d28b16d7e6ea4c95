//! The keyed front end: calls in, Insights out. Keys are AWS's — (region, eventSource, eventName) for call
//! rate (write calls), plus errorCode for error rate (errors of that code relative to all calls of the API) —
//! minutes are bucketed by eventTime, and idle keys cost nothing per minute: they are fast-forwarded in closed
//! form when next touched.
//!
//! Time is per API: an API's minutes close when a call of that API at least the allowed lateness later has
//! been seen (its own event-time watermark), or when the clock is advanced. So a history imported while live
//! traffic flows (a server's own audit records are live) is analysed on its own timeline, as if alone, and a
//! call later than its API's closed minutes is dropped and counted, never put into a minute it did not happen in.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::model::{ErrorRatio, Mode, Params, SeasonalRate, TopK, Track, Transition};
use crate::{AttributeKind, Attribution, Call, Insight, InsightState, InsightType, Settings};

const MINUTE_MS: i64 = 60_000;
const WEEK_MINUTES: u64 = 10_080;
const DAY_MINUTES: u64 = 1_440;
/// Keys without a call for this long are forgotten (hard-coded: eight weeks, twice the longest memory).
const EVICT_AFTER_MINUTES: i64 = 8 * 10_080;
/// How often idle keys are looked for (hard-coded: once a day of event time).
const SWEEP_EVERY_MINUTES: i64 = 1_440;
const NONE: u32 = u32::MAX;

/// Counters a caller may export as metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectorStats {
    /// Calls observed.
    pub calls: u64,
    /// Calls whose minute had already closed for their API: dropped (counted here).
    pub late_calls: u64,
    /// Keys (APIs) held now.
    pub apis: usize,
    /// APIs processed every minute now (the others are idle).
    pub active_apis: usize,
    /// APIs forgotten after long idleness.
    pub evicted_apis: u64,
}

/// The streaming Insights detector of one trail. Serialize it to persist what it learned; a deserialized
/// detector continues exactly where the serialized one was (no Insight repeated or lost).
pub struct Detector {
    st: State,
    /// (region, source, name) hash → first API with that hash (collisions chain through `Api::next`).
    index: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    settings: Settings,
    params: Params,
    /// The newest eventTime seen (ms), of any API.
    newest: Option<i64>,
    apis: Vec<Api>,
    active: Vec<u32>,
    pending: Vec<Insight>,
    stats: DetectorStats,
    last_sweep: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Api {
    region: String,
    source: String,
    name: String,
    hash: u64,
    #[serde(skip, default = "no_next")]
    next: u32,
    active: bool,
    /// The last minute this API's models have stepped through.
    last_closed: i64,
    last_call: i64,
    /// The newest eventTime of a call of this API (ms): its own watermark, less the allowed lateness.
    frontier: i64,
    /// Minutes processed since the API was first seen.
    age: u64,
    slots: Vec<Slot>,
    calls: Option<CallKey>,
    errors: Vec<ErrorKey>,
    /// All calls (read and write), decayed like the error fractions, so a new error code starts from the
    /// API's history of calls without it.
    calls_decayed: f64,
    calls_exposure: f64,
}

fn no_next() -> u32 {
    NONE
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Slot {
    minute: i64,
    writes: u32,
    total: u32,
    errors: Vec<(u32, u32)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CallKey {
    rate: SeasonalRate,
    track: Track,
    attr: Attr,
    emitted: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ErrorKey {
    code: String,
    ratio: ErrorRatio,
    track: Track,
    attr: Attr,
    emitted: bool,
}

/// Attributions of one key: per attribute (identity, user agent, error code) a short-memory top-k (what is
/// happening now: seeds an Insight's figures), a week-long one (the baseline) and the Insight's own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Attr {
    recent: [TopK; 3],
    baseline: [TopK; 3],
    insight: [TopK; 3],
    recent_exposure: f64,
    baseline_exposure: f64,
    open: bool,
}

impl Attr {
    /// The attributions of a key created `age` minutes into its API's history: none of its values were seen.
    fn since(p: &Params, age: u64) -> Attr {
        let age = age as f64;
        Attr {
            recent_exposure: geometric(p.decay_attr_recent, age),
            baseline_exposure: geometric(p.decay_attr_baseline, age),
            ..Attr::default()
        }
    }

    fn add(&mut self, kind: usize, hash: u64, value: &str) {
        self.recent[kind].add(hash, value, 1.0);
        self.baseline[kind].add(hash, value, 1.0);
        if self.open {
            self.insight[kind].add(hash, value, 1.0);
        }
    }

    fn close_minutes(&mut self, p: &Params, n: u64) {
        let n_f = n as f64;
        let (lr, lb) = (p.decay_attr_recent.powf(n_f), p.decay_attr_baseline.powf(n_f));
        for t in &mut self.recent {
            t.decay(lr);
        }
        for t in &mut self.baseline {
            t.decay(lb);
        }
        self.recent_exposure = self.recent_exposure * lr + geometric(p.decay_attr_recent, n_f);
        self.baseline_exposure = self.baseline_exposure * lb + geometric(p.decay_attr_baseline, n_f);
    }

    fn start(&mut self, minutes: f64) {
        let scale = minutes / self.recent_exposure.max(1.0);
        for (i, t) in self.recent.iter().enumerate() {
            self.insight[i] = t.scaled(scale);
        }
        self.open = true;
    }

    fn end(&mut self) {
        self.open = false;
        for t in &mut self.insight {
            t.clear();
        }
    }

    fn report(&self, kinds: &[AttributeKind], insight_minutes: f64) -> Vec<Attribution> {
        kinds
            .iter()
            .map(|&kind| {
                let i = kind_index(kind);
                Attribution {
                    attribute: kind,
                    insight: self.insight[i].top(5, insight_minutes),
                    baseline: self.baseline[i].top(5, self.baseline_exposure.max(1.0)),
                }
            })
            .collect()
    }
}

fn kind_index(kind: AttributeKind) -> usize {
    match kind {
        AttributeKind::UserIdentityArn => 0,
        AttributeKind::UserAgent => 1,
        AttributeKind::ErrorCode => 2,
    }
}

fn geometric(lambda: f64, n: f64) -> f64 {
    if lambda >= 1.0 { n } else { (1.0 - lambda.powf(n)) / (1.0 - lambda) }
}

/// The Insight's baseline period: its history in whole days, at most a week (less while warming up).
fn baseline_minutes(age: u64) -> u64 {
    if age >= WEEK_MINUTES {
        WEEK_MINUTES
    } else if age >= DAY_MINUTES {
        age / DAY_MINUTES * DAY_MINUTES
    } else {
        age
    }
}

/// sharedEventID: a UUID (version 8, name-based) from SHA-256 of the Insight's type, key and first minute.
fn shared_id(kind: InsightType, api: &Api, code: Option<&str>, start_minute: i64) -> String {
    let mut h = Sha256::new();
    for part in [kind.as_str(), &api.region, &api.source, &api.name, code.unwrap_or("")] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.update(start_minute.to_be_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// FxHash-style mixing of a string, 8 bytes at a time (the hot path hashes three or four strings per call).
pub(crate) fn hash_str(mut h: u64, s: &str) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let bytes = s.as_bytes();
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ v).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    (h.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(K)
}

fn api_hash(region: &str, source: &str, name: &str) -> u64 {
    hash_str(hash_str(hash_str(0, region), source), name)
}

/// The index's keys are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl Detector {
    pub fn new(settings: Settings) -> Detector {
        let params = Params::new(&settings, MINUTE_MS, Mode::Keyed);
        let st = State {
            settings,
            params,
            newest: None,
            apis: Vec::new(),
            active: Vec::new(),
            pending: Vec::new(),
            stats: DetectorStats::default(),
            last_sweep: i64::MIN,
        };
        Detector { st, index: HashMap::default() }
    }

    /// The insight selectors (or the sensitivity) changed: what was learned is kept. An Insight already started
    /// still gets its End even if its type was turned off.
    pub fn set_settings(&mut self, settings: Settings) {
        self.st.params = Params::new(&settings, MINUTE_MS, Mode::Keyed);
        self.st.settings = settings;
    }

    pub fn settings(&self) -> &Settings {
        &self.st.settings
    }

    pub fn stats(&self) -> DetectorStats {
        let mut s = self.st.stats.clone();
        s.apis = self.st.apis.len();
        s.active_apis = self.st.active.len();
        s
    }

    /// The newest eventTime seen less the allowed lateness: an API whose calls are this recent has every
    /// minute ending at or before it closed.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.st.newest.map(|n| n.saturating_sub(self.lateness_ms()))
    }

    fn lateness_ms(&self) -> i64 {
        self.st.settings.allowed_lateness_minutes as i64 * MINUTE_MS
    }

    /// One call (the hot path: a hash lookup and a few counter increments; minute closing is amortized).
    pub fn observe(&mut self, call: &Call<'_>) {
        self.st.stats.calls += 1;
        let minute = call.time_ms.div_euclid(MINUTE_MS);
        let idx = self.lookup_or_insert(call.region, call.event_source, call.event_name, minute);
        if minute <= self.st.apis[idx].last_closed {
            self.st.stats.late_calls += 1;
            return;
        }
        self.st.newest = Some(self.st.newest.map_or(call.time_ms, |n| n.max(call.time_ms)));
        if !self.st.apis[idx].active {
            self.st.apis[idx].active = true;
            self.st.active.push(idx as u32);
        }
        let api = &mut self.st.apis[idx];
        api.last_call = api.last_call.max(minute);
        let slot = match api.slots.iter().position(|s| s.minute == minute) {
            Some(i) => i,
            None => {
                let at = api.slots.partition_point(|s| s.minute < minute);
                api.slots.insert(at, Slot { minute, writes: 0, total: 0, errors: Vec::new() });
                at
            }
        };
        api.slots[slot].total += 1;
        let arn = call.identity_arn.unwrap_or("null");
        let agent = call.user_agent.unwrap_or("null");
        let arn_hash = hash_str(1, arn);
        let agent_hash = hash_str(2, agent);
        if !call.read_only {
            api.slots[slot].writes += 1;
            let code = call.error_code.unwrap_or("null");
            let key = api.calls.get_or_insert_with(|| CallKey {
                rate: SeasonalRate::new(),
                track: Track::new(0),
                attr: Attr::default(),
                emitted: false,
            });
            key.attr.add(0, arn_hash, arn);
            key.attr.add(1, agent_hash, agent);
            key.attr.add(2, hash_str(3, code), code);
        }
        if let Some(code) = call.error_code {
            let e = match api.errors.iter().position(|e| e.code == code) {
                Some(e) => e,
                None => {
                    api.errors.push(ErrorKey {
                        code: code.to_owned(),
                        ratio: ErrorRatio::new(api.calls_decayed, api.calls_exposure),
                        track: Track::new(api.age),
                        attr: Attr::since(&self.st.params, api.age),
                        emitted: false,
                    });
                    api.errors.len() - 1
                }
            } as u32;
            let errors = &mut api.slots[slot].errors;
            match errors.iter_mut().find(|(i, _)| *i == e) {
                Some(c) => c.1 += 1,
                None => errors.push((e, 1)),
            }
            let key = &mut api.errors[e as usize];
            key.attr.add(0, arn_hash, arn);
            key.attr.add(1, agent_hash, agent);
        }
        // The API's own watermark closes its minutes.
        let lateness = self.lateness_ms();
        let api = &mut self.st.apis[idx];
        api.frontier = api.frontier.max(call.time_ms);
        let through = api.frontier.saturating_sub(lateness).div_euclid(MINUTE_MS) - 1;
        if through > api.last_closed {
            self.close_api(idx, through);
        }
        let newest_minute = self.st.newest.unwrap_or(call.time_ms).div_euclid(MINUTE_MS);
        if newest_minute.saturating_sub(self.st.last_sweep) >= SWEEP_EVERY_MINUTES {
            self.st.last_sweep = newest_minute;
            self.sweep(newest_minute);
        }
    }

    /// Steps one API through `through` and queues what it raised.
    fn close_api(&mut self, idx: usize, through: i64) {
        let st = &mut self.st;
        let mut out = Vec::new();
        st.apis[idx].close_through(&st.params, &st.settings, through, &mut out);
        st.pending.extend(out);
    }

    fn lookup_or_insert(&mut self, region: &str, source: &str, name: &str, minute: i64) -> usize {
        let h = api_hash(region, source, name);
        let mut i = self.index.get(&h).copied().unwrap_or(NONE);
        while i != NONE {
            let a = &self.st.apis[i as usize];
            if a.region == region && a.source == source && a.name == name {
                return i as usize;
            }
            i = a.next;
        }
        let idx = self.st.apis.len() as u32;
        let next = self.index.insert(h, idx).unwrap_or(NONE);
        self.st.apis.push(Api {
            region: region.to_owned(),
            source: source.to_owned(),
            name: name.to_owned(),
            hash: h,
            next,
            active: false,
            last_closed: minute - 1,
            last_call: minute,
            frontier: minute * MINUTE_MS,
            age: 0,
            slots: Vec::new(),
            calls: None,
            errors: Vec::new(),
            calls_decayed: 0.0,
            calls_exposure: 0.0,
        });
        idx as usize
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        for (i, a) in self.st.apis.iter_mut().enumerate() {
            a.next = self.index.insert(a.hash, i as u32).unwrap_or(NONE);
        }
    }

    /// Close every minute older than `now_ms − allowed lateness` of every API, even when no events arrive: the
    /// clock says the stream has caught up with `now_ms` (its traffic stopped, or a history ended), so an
    /// Insight can end when its traffic stops.
    pub fn advance_clock(&mut self, now_ms: i64) {
        self.advance(now_ms, None);
    }

    /// Like [`Detector::advance_clock`], for the APIs whose own timeline is live — their newest call, or the
    /// minutes already closed, within `live_ms` of `now_ms` — while a history of other APIs may still be
    /// arriving: the live ones close on the clock (an Insight ends when its calls stop), the others stay on
    /// their own event time.
    pub fn advance_live_clock(&mut self, now_ms: i64, live_ms: i64) {
        self.advance(now_ms, Some(live_ms));
    }

    fn advance(&mut self, now_ms: i64, live_ms: Option<i64>) {
        let through = now_ms.saturating_sub(self.lateness_ms()).div_euclid(MINUTE_MS) - 1;
        let st = &mut self.st;
        let mut out = Vec::new();
        for &i in &st.active {
            let api = &mut st.apis[i as usize];
            let live = live_ms.is_none_or(|l| {
                let since = now_ms.saturating_sub(l);
                api.frontier >= since || (api.last_closed + 1) * MINUTE_MS >= since
            });
            if live && through > api.last_closed {
                api.close_through(&st.params, &st.settings, through, &mut out);
            }
        }
        st.pending.extend(out);
        st.prune_active();
        let minute = through + 1;
        if live_ms.is_none() && minute.saturating_sub(self.st.last_sweep) >= SWEEP_EVERY_MINUTES {
            self.st.last_sweep = minute;
            self.sweep(minute);
        }
    }

    /// Insights started or ended since the last call, in event-time order.
    pub fn take_insights(&mut self) -> Vec<Insight> {
        let mut out = std::mem::take(&mut self.st.pending);
        out.sort_by(|a, b| {
            (
                a.event_time_ms,
                a.state == InsightState::Start,
                a.insight_type,
                &a.region,
                &a.event_source,
                &a.event_name,
                &a.error_code,
            )
                .cmp(&(
                    b.event_time_ms,
                    b.state == InsightState::Start,
                    b.insight_type,
                    &b.region,
                    &b.event_source,
                    &b.event_name,
                    &b.error_code,
                ))
        });
        out
    }

    /// Forget APIs idle for `EVICT_AFTER_MINUTES` (they start again from the conservative prior).
    fn sweep(&mut self, closed: i64) {
        // An API whose own time stopped that long ago still holds its last minutes open (time is per API):
        // they are closed now, through the newest time the detector has seen, so it can go.
        let st = &mut self.st;
        let mut out = Vec::new();
        for &i in &st.active {
            let a = &mut st.apis[i as usize];
            if closed - a.last_call >= EVICT_AFTER_MINUTES && a.last_closed < closed - 1 {
                a.close_through(&st.params, &st.settings, closed - 1, &mut out);
            }
        }
        st.pending.extend(out);
        st.prune_active();
        let before = self.st.apis.len();
        let keep: Vec<bool> =
            self.st.apis.iter().map(|a| a.active || closed - a.last_call < EVICT_AFTER_MINUTES).collect();
        if keep.iter().all(|&k| k) {
            return;
        }
        let mut remap = vec![NONE; before];
        let mut kept = Vec::with_capacity(before);
        for (i, (a, k)) in std::mem::take(&mut self.st.apis).into_iter().zip(&keep).enumerate() {
            if *k {
                remap[i] = kept.len() as u32;
                kept.push(a);
            }
        }
        self.st.apis = kept;
        for i in &mut self.st.active {
            *i = remap[*i as usize];
        }
        self.st.stats.evicted_apis += (before - self.st.apis.len()) as u64;
        self.rebuild_index();
    }
}

impl State {
    /// Drops from the active list the APIs with no open minute with calls and nothing in their windows.
    fn prune_active(&mut self) {
        let apis = &mut self.apis;
        self.active.retain(|&i| {
            let a = &mut apis[i as usize];
            let keep = !(a.slots.is_empty() && a.quiet());
            a.active = keep;
            keep
        });
    }
}

impl Api {
    fn quiet(&self) -> bool {
        self.calls.as_ref().is_none_or(|c| c.track.is_quiet()) && self.errors.iter().all(|e| e.track.is_quiet())
    }

    /// Step this API's models through `minute`: minutes with calls (or with evidence still in the windows) one
    /// by one, runs of quiet empty minutes in closed form, a quarter-hour at a time.
    fn close_through(&mut self, p: &Params, s: &Settings, minute: i64, out: &mut Vec<Insight>) {
        while self.last_closed < minute {
            let next = self.last_closed + 1;
            if self.slots.first().is_some_and(|sl| sl.minute == next) {
                let slot = self.slots.remove(0);
                self.step(p, s, next, &slot, out);
            } else if self.quiet() {
                let next_slot = self.slots.first().map_or(i64::MAX, |sl| sl.minute);
                let quarter_end = (next.div_euclid(15) + 1) * 15 - 1;
                let to = minute.min(next_slot - 1).min(quarter_end);
                self.skip(p, next, (to - next + 1) as u64);
                self.last_closed = to;
                continue;
            } else {
                let empty = Slot { minute: next, writes: 0, total: 0, errors: Vec::new() };
                self.step(p, s, next, &empty, out);
            }
            self.last_closed = next;
        }
    }

    fn skip(&mut self, p: &Params, from: i64, n: u64) {
        let time_ms = from * MINUTE_MS;
        if let Some(c) = &mut self.calls {
            let mu = c.rate.skip(p, time_ms, n, c.track.phi(p, 0));
            c.track.skip(p, n, mu);
            c.attr.close_minutes(p, n);
        }
        for e in &mut self.errors {
            e.ratio.skip(p, n);
            e.track.skip(p, n, 0.0);
            e.attr.close_minutes(p, n);
        }
        let n_f = n as f64;
        self.calls_decayed *= p.decay_error.powf(n_f);
        self.calls_exposure = self.calls_exposure * p.decay_global.powf(n_f) + geometric(p.decay_global, n_f);
        self.age += n;
    }

    fn step(&mut self, p: &Params, s: &Settings, minute: i64, slot: &Slot, out: &mut Vec<Insight>) {
        let time_ms = minute * MINUTE_MS;
        self.age += 1;
        let total = slot.total as f64;
        if let Some(mut c) = self.calls.take() {
            let (_, mu) = c.rate.expect(p, time_ms, c.track.phi(p, 0));
            let envelope = c.rate.envelope(p, time_ms);
            let stepped = c.track.step(p, minute, slot.writes as f64, mu, envelope, c.rate.information(p));
            c.rate.learn(p, time_ms, stepped.learn, slot.writes as f64, stepped.in_insight);
            if let Some(t) = stepped.transition {
                let baseline = c.rate.global_rate(p) / p.step_minutes();
                let kinds = [AttributeKind::UserIdentityArn, AttributeKind::UserAgent, AttributeKind::ErrorCode];
                let forced = self.transition(
                    InsightType::ApiCallRate,
                    None,
                    &t,
                    minute,
                    baseline,
                    &mut c.attr,
                    &kinds,
                    s.call_rate,
                    &mut c.emitted,
                    out,
                );
                if let Some(ratio) = forced {
                    c.rate.rebase(ratio);
                }
            }
            c.attr.close_minutes(p, 1);
            self.calls = Some(c);
        }
        let mut errors = std::mem::take(&mut self.errors);
        for (i, e) in errors.iter_mut().enumerate() {
            let count = slot.errors.iter().find(|(k, _)| *k as usize == i).map_or(0.0, |c| c.1 as f64);
            let mu = total * e.ratio.fraction(p);
            let stepped = e.track.step(p, minute, count, mu, 0.0, e.ratio.information(p));
            e.ratio.learn(p, stepped.learn, total, count);
            if let Some(t) = stepped.transition {
                let baseline = e.ratio.global_rate() / p.step_minutes();
                let kinds = [AttributeKind::UserIdentityArn, AttributeKind::UserAgent];
                let code = e.code.clone();
                let forced = self.transition(
                    InsightType::ApiErrorRate,
                    Some(&code),
                    &t,
                    minute,
                    baseline,
                    &mut e.attr,
                    &kinds,
                    s.error_rate,
                    &mut e.emitted,
                    out,
                );
                if let Some(ratio) = forced {
                    e.ratio.rebase(ratio);
                }
            }
            e.attr.close_minutes(p, 1);
        }
        self.errors = errors;
        self.calls_decayed = self.calls_decayed * p.decay_error + total;
        self.calls_exposure = self.calls_exposure * p.decay_global + 1.0;
    }

    /// Turn a model transition into an Insight (if its type is enabled, or it ends one that was emitted); a
    /// forced End returns the ratio the caller rebases its expectation by.
    #[allow(clippy::too_many_arguments)]
    fn transition(
        &self,
        kind: InsightType,
        code: Option<&str>,
        t: &Transition,
        minute: i64,
        baseline_average: f64,
        attr: &mut Attr,
        kinds: &[AttributeKind],
        enabled: bool,
        emitted: &mut bool,
        out: &mut Vec<Insight>,
    ) -> Option<f64> {
        let (state, start, time, average, minutes, forced) = match *t {
            Transition::Start { start, average } => {
                let minutes = (minute - start + 1) as f64;
                attr.start(minutes);
                *emitted = enabled;
                (InsightState::Start, start, start, average, minutes, None)
            }
            Transition::End { start, end, average, forced, ratio } => {
                (InsightState::End, start, end, average, (end - start) as f64, forced.then_some(ratio))
            }
        };
        let emit = *emitted;
        if emit {
            let mut attributions = attr.report(kinds, minutes.max(1.0));
            if let Some(code) = code {
                attributions.push(Attribution {
                    attribute: AttributeKind::ErrorCode,
                    insight: vec![(code.to_owned(), average)],
                    baseline: vec![(code.to_owned(), baseline_average)],
                });
            }
            out.push(Insight {
                shared_id: shared_id(kind, self, code, start),
                state,
                insight_type: kind,
                region: self.region.clone(),
                event_source: self.source.clone(),
                event_name: self.name.clone(),
                error_code: code.map(str::to_owned),
                event_time_ms: time * MINUTE_MS,
                baseline_average,
                insight_average: average,
                insight_duration_minutes: minutes as u64,
                baseline_duration_minutes: baseline_minutes(self.age.saturating_sub(minutes as u64)),
                attributions,
            });
        }
        if state == InsightState::End {
            attr.end();
            *emitted = false;
        }
        forced
    }
}

impl Serialize for Detector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.st.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Detector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Detector, D::Error> {
        let st = State::deserialize(deserializer)?;
        if st.active.iter().any(|&i| i as usize >= st.apis.len()) {
            return Err(serde::de::Error::custom("active API index out of range"));
        }
        let mut d = Detector { st, index: HashMap::default() };
        d.rebuild_index();
        Ok(d)
    }
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").field("settings", &self.st.settings).field("stats", &self.stats()).finish()
    }
}

impl Clone for Detector {
    fn clone(&self) -> Detector {
        let mut d = Detector { st: self.st.clone(), index: HashMap::default() };
        d.rebuild_index();
        d
    }
}

impl PartialEq for Detector {
    fn eq(&self, other: &Detector) -> bool {
        self.st == other.st
    }
}
