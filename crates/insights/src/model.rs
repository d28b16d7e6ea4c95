//! The detector core, shared by both front ends (the keyed `Detector` and `series`): the expected count of a
//! step (`SeasonalRate` for call rates and series, `ErrorRatio` for error rates), the evidence that a step is
//! unusual (`Track`: window sums under the negative binomial predictive, a CUSUM, the false-alarm budget), the
//! Insight state machine with hysteresis, and the decayed top-k of attributions (`TopK`).
//!
//! A *step* is one minute for the keyed detector and one row for a series. All constants are documented in
//! `docs/insights.md`; the ones given in time are turned into steps by `Params::new`.

use serde::{Deserialize, Serialize};

use crate::Settings;
use crate::math::{ln_nb_lower, ln_nb_upper};

/// The window lengths of the tail tests, in steps (hard-coded: 1, 5, 15 and 60 minutes).
pub(crate) const WINDOWS: [usize; 4] = [1, 5, 15, 60];
/// The ring of recent steps holds the longest window.
pub(crate) const RING: usize = 60;
/// Tests per step that spend the false-alarm budget: the four windows and the CUSUM.
pub(crate) const TESTS: f64 = 5.0;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const WEEK_MINUTES: f64 = 10_080.0;

fn half_life_factor(steps: f64) -> f64 {
    0.5f64.powf(1.0 / steps.max(1.0))
}

/// Everything the core needs, derived from `Settings` and the step length. Kept in the serialized state so a
/// restored detector continues with the very numbers it had.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Params {
    pub step_ms: i64,
    /// ln of the tail probability one test may reach per step before it alarms.
    pub ln_alpha: f64,
    /// CUSUM decision threshold (nats).
    pub cusum_h: f64,
    /// The rise the CUSUM is tuned to detect (rate × rho).
    pub cusum_rho: f64,
    /// A window alarms only if its count exceeds the expectation by this much (calls)…
    pub min_excess: f64,
    /// …and by this factor.
    pub min_ratio: f64,
    /// Alarm on drops too (series front end) rather than only on rises.
    pub two_sided: bool,
    /// No test before a key has been observed this many steps.
    pub warmup_steps: u64,
    /// An Insight ends after this many calm steps.
    pub end_calm_steps: usize,
    /// A window is calm when its tail probability is at least this (ln).
    pub ln_end_p: f64,
    /// An Insight that lasts this long is ended and its level accepted as the new baseline.
    pub max_insight_steps: u64,
    pub decay_global: f64,
    pub decay_day_visit: f64,
    pub decay_week_visit: f64,
    pub decay_recent: f64,
    pub decay_dispersion: f64,
    pub decay_error: f64,
    pub decay_attr_recent: f64,
    pub decay_attr_baseline: f64,
    pub decay_peak_visit: f64,
    /// Measure rises against the envelope of recurring jobs too (the keyed detector).
    pub envelope: bool,
    pub prior_phi: f64,
    pub prior_phi_steps: f64,
    pub prior_count: f64,
    pub prior_steps: f64,
    pub season_prior_var: f64,
    pub recent_shrink: f64,
    pub clip_sd: f64,
    pub clip_floor: f64,
    pub prior_error_rate: f64,
    pub prior_error_calls: f64,
}

/// Which front end the parameters are for: counts (calls per minute, or a series of counts) or a series of
/// real values mapped to pseudo-counts (no minimum ratio: the offset of such values is arbitrary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Keyed,
    SeriesCounts,
    SeriesReal,
}

impl Params {
    pub fn new(settings: &Settings, step_ms: i64, mode: Mode) -> Params {
        let step_ms = step_ms.max(1);
        let step_minutes = step_ms as f64 / MINUTE_MS as f64;
        let steps = |minutes: f64| (minutes / step_minutes).max(1.0);
        let steps_per_week = steps(WEEK_MINUTES);
        let budget = if settings.false_alarms_per_week.is_finite() && settings.false_alarms_per_week > 0.0 {
            settings.false_alarms_per_week
        } else {
            Settings::default().false_alarms_per_week
        };
        // Bonferroni: the budget spread over every test of every step of a week.
        let alpha = (budget / (steps_per_week * TESTS)).min(0.01);
        let ln_alpha = alpha.ln();
        let (min_excess, min_ratio) = match mode {
            Mode::Keyed | Mode::SeriesCounts => (10.0, 1.5),
            Mode::SeriesReal => (1.0, 1.0),
        };
        Params {
            step_ms,
            ln_alpha,
            cusum_h: -ln_alpha,
            cusum_rho: 2.0,
            min_excess,
            min_ratio,
            two_sided: mode != Mode::Keyed,
            warmup_steps: steps(3.0).max(3.0) as u64,
            end_calm_steps: 5,
            ln_end_p: 0.05f64.ln(),
            max_insight_steps: steps(24.0 * 60.0).max(60.0) as u64,
            decay_global: half_life_factor(steps(WEEK_MINUTES)),
            decay_day_visit: half_life_factor(7.0),
            decay_week_visit: half_life_factor(4.0),
            decay_recent: half_life_factor(steps(30.0).max(8.0)),
            decay_dispersion: half_life_factor(steps(WEEK_MINUTES)),
            decay_error: half_life_factor(steps(24.0 * 60.0)),
            decay_attr_recent: half_life_factor(steps(5.0)),
            decay_attr_baseline: half_life_factor(steps(WEEK_MINUTES)),
            decay_peak_visit: half_life_factor(2.0),
            envelope: mode == Mode::Keyed,
            prior_phi: 0.1,
            prior_phi_steps: 60.0,
            prior_count: 0.5,
            prior_steps: 0.5,
            season_prior_var: 0.25,
            recent_shrink: 10.0,
            clip_sd: 4.0,
            clip_floor: 3.0,
            prior_error_rate: 0.01,
            prior_error_calls: 20.0,
        }
    }

    pub fn step_minutes(&self) -> f64 {
        self.step_ms as f64 / MINUTE_MS as f64
    }
}

const QUARTER_MS: i64 = HOUR_MS / 4;
/// Quarter-hours in a day: the resolution of the daily profile.
const DAY_QUARTERS: usize = 96;

/// The quarter-hour since the epoch, the hour of the week (0 = Monday 00:00 UTC) and the quarter-hour of the
/// day of an instant.
pub(crate) fn buckets(time_ms: i64) -> (i64, usize, usize) {
    let quarter = time_ms.div_euclid(QUARTER_MS);
    let hour = quarter.div_euclid(4);
    // 1970-01-01 was a Thursday: hour 0 is Thursday 00:00, Monday 00:00 is 72 hours earlier.
    let week = (hour + 72).rem_euclid(168) as usize;
    let day = quarter.rem_euclid(DAY_QUARTERS as i64) as usize;
    (quarter, week, day)
}

// ---------------------------------------------------------------------------------------------------------
// Expected counts.

/// The expected count of a step: a hierarchical seasonal rate (hour of week, shrunk toward hour of day, shrunk
/// toward the global rate, each by a pseudo-count, so little data means a flat profile) times a short-memory
/// level ratio (recent counts over recent seasonal expectation), which tracks level changes the profile has not
/// learned yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SeasonalRate {
    cg: f64,
    eg: f64,
    /// (decayed count, decayed exposure in steps) per quarter-hour of the day / hour of the week.
    day: Vec<[f32; 2]>,
    week: Vec<[f32; 2]>,
    rx: f64,
    rb: f64,
    quarter: i64,
    /// What clipping kept out of the current quarter-hour and hour buckets, added to them once the step moves
    /// on: a burst does not raise its own expectation while it lasts, but a daily job or a business-hours
    /// step is expected the next day (or week).
    pending_day: f64,
    pending_week: f64,
    /// Per quarter-hour of the day, the largest count of a step of an Insight on earlier days (decayed per
    /// visit): the envelope of recurring jobs; and the current quarter's, merged when it ends.
    peak: Vec<f32>,
    pending_peak: f64,
    /// The expected count `expect` computed last (for the envelope's refresh rule).
    expect_mean: f64,
}

impl SeasonalRate {
    pub fn new() -> SeasonalRate {
        SeasonalRate {
            cg: 0.0,
            eg: 0.0,
            day: vec![[0.0; 2]; DAY_QUARTERS],
            week: vec![[0.0; 2]; 168],
            rx: 0.0,
            rb: 0.0,
            quarter: i64::MIN,
            pending_day: 0.0,
            pending_week: 0.0,
            peak: vec![0.0; DAY_QUARTERS],
            pending_peak: 0.0,
            expect_mean: 0.0,
        }
    }

    /// Decay the buckets of the step at `time_ms` when it enters them (once per visit).
    fn enter(&mut self, p: &Params, time_ms: i64) -> (usize, usize) {
        let (quarter, w, d) = buckets(time_ms);
        if quarter != self.quarter {
            if self.quarter != i64::MIN {
                let (_, old_w, old_d) = buckets(self.quarter * QUARTER_MS);
                let c = &mut self.day[old_d][0];
                *c = (*c + self.pending_day as f32).max(0.0);
                self.pending_day = 0.0;
                self.peak[old_d] = self.peak[old_d].max(self.pending_peak as f32);
                self.pending_peak = 0.0;
                if quarter.div_euclid(4) != self.quarter.div_euclid(4) {
                    let c = &mut self.week[old_w][0];
                    *c = (*c + self.pending_week as f32).max(0.0);
                    self.pending_week = 0.0;
                }
            }
            for v in self.day[d].iter_mut() {
                *v *= p.decay_day_visit as f32;
            }
            self.peak[d] *= p.decay_peak_visit as f32;
            if quarter.div_euclid(4) != self.quarter.div_euclid(4) {
                for v in self.week[w].iter_mut() {
                    *v *= p.decay_week_visit as f32;
                }
            }
            self.quarter = quarter;
        }
        (w, d)
    }

    /// The global rate per step (decayed over about a week): the Insight's baseline average.
    pub fn global_rate(&self, p: &Params) -> f64 {
        (self.cg + p.prior_count) / (self.eg + p.prior_steps)
    }

    /// How many observations the rate estimate rests on (the shape of its gamma posterior).
    pub fn information(&self, p: &Params) -> f64 {
        self.cg + p.prior_count
    }

    /// (seasonal base, expected count) of the step starting at `time_ms`; `phi` is the key's per-step
    /// dispersion, which sets how much data a bucket needs before it is trusted over its parent.
    ///
    /// The rate of the hour of the week, shrunk toward that hour of the day (shrunk toward the global rate),
    /// times the shape of the quarter-hour within that hour of the day (shrunk toward flat): a business-hours
    /// step at 09:00 stays a step, and a steep ramp is a fine staircase.
    pub fn expect(&mut self, p: &Params, time_ms: i64, phi: f64) -> (f64, f64) {
        let (w, d) = self.enter(p, time_ms);
        let g = self.global_rate(p).max(1e-12);
        // Empirical Bayes: a bucket of exposure E (steps) gets weight E / (E + E0), where E0 is the exposure at
        // which the bucket mean's relative variance ((1/μ + φ)/E) equals the prior variance of a seasonal
        // factor (τ²),
        // never less than half a visit of the bucket (`visit` minutes).
        let e0 = |rate: f64, visit: f64| {
            ((1.0 / rate.max(1e-12) + phi) / p.season_prior_var).max(0.5 * (visit / p.step_minutes()).max(1.0))
        };
        let first = d - d % 4;
        let (ch, eh) =
            self.day[first..first + 4].iter().fold((0.0, 0.0), |a, b| (a.0 + b[0] as f64, a.1 + b[1] as f64));
        let e0d = e0(g, 60.0);
        let day_hour = ((ch + e0d * g) / (eh + e0d)).max(1e-12);
        let [cq, eq] = self.day[d];
        let e0q = e0(day_hour, 15.0);
        let shape = ((cq as f64 + e0q * day_hour) / (eq as f64 + e0q)).max(1e-12) / day_hour;
        let [cw, ew] = self.week[w];
        // The hour of the week needs a whole visit (an hour) before it weighs as much as the hour of the day.
        let e0w = e0(day_hour, 120.0);
        let base = (cw as f64 + e0w * day_hour) / (ew as f64 + e0w) * shape;
        // The level ratio stands in for what the profile does not know yet: it applies in proportion to how
        // little the buckets of this hour have seen (all of it on a first day, little once a week is learned),
        // so a weekend's low level does not make the next Monday look unusual. What the buckets do not know is filled in with the global rate times the recent level ratio (recent
        // counts over the global rate in the same steps).
        let known = 1.0 - (e0d / (eh + e0d)) * (e0w / (ew as f64 + e0w));
        let q = p.recent_shrink;
        let ratio = ((self.rx + q) / (self.rb + q)).clamp(0.05, 20.0);
        let mu = known * base + (1.0 - known) * g * ratio;
        self.expect_mean = mu;
        (base, mu)
    }

    /// Learn a step: `x` is the clipped count, `raw` the count itself; what clipping removed is learned by
    /// the seasonal buckets when the step moves on (both signs for a two-sided detector, only rises for a
    /// rises-only one, so an outage does not make the same hour look unusual next week).
    pub fn learn(&mut self, p: &Params, time_ms: i64, x: f64, raw: f64, in_insight: bool) {
        let (w, d) = self.enter(p, time_ms);
        let g = self.global_rate(p);
        let deferred = if p.two_sided { raw - x } else { (raw - x).max(0.0) };
        self.pending_day += deferred;
        self.pending_week += deferred;
        // An Insight's peak starts an envelope; a count of at least half the envelope and twice the mean keeps
        // it up (the job ran again, as expected, with no Insight); ordinary traffic lets it fade.
        let mean = self.expect_mean;
        if in_insight || (self.peak[d] > 0.0 && raw >= 0.5 * self.peak[d] as f64 && raw >= 2.0 * mean) {
            self.pending_peak = self.pending_peak.max(raw);
        }
        self.cg = self.cg * p.decay_global + x;
        self.eg = self.eg * p.decay_global + 1.0;
        self.day[d][0] += x as f32;
        self.day[d][1] += 1.0;
        self.week[w][0] += x as f32;
        self.week[w][1] += 1.0;
        // The level ratio starts after the warm-up: before it, the base itself is still the prior.
        if self.eg > p.warmup_steps as f64 {
            self.rx = self.rx * p.decay_recent + x;
            self.rb = self.rb * p.decay_recent + g;
        }
    }

    /// `n` steps of zero count from `time_ms`, all in one quarter-hour: the closed form of `n` calls to
    /// `learn(0)`.
    pub fn skip(&mut self, p: &Params, time_ms: i64, n: u64, phi: f64) -> f64 {
        let (_, mu) = self.expect(p, time_ms, phi);
        let (w, d) = self.enter(p, time_ms);
        let g = self.global_rate(p);
        let n_f = n as f64;
        let lg = p.decay_global.powf(n_f);
        self.cg *= lg;
        self.eg = self.eg * lg + geometric(p.decay_global, n_f);
        self.day[d][1] += n as f32;
        self.week[w][1] += n as f32;
        let lr = p.decay_recent.powf(n_f);
        self.rx *= lr;
        self.rb = self.rb * lr + g * geometric(p.decay_recent, n_f);
        mu
    }

    /// The envelope of the step at `time_ms` (after `expect`): what recurring jobs reached at this time of day
    /// on earlier days, or 0 where the front end does not use envelopes.
    pub fn envelope(&self, p: &Params, time_ms: i64) -> f64 {
        if p.envelope { self.peak[buckets(time_ms).2] as f64 } else { 0.0 }
    }

    /// Accept the level of a long Insight as the new normal: scale every learned rate by `ratio` and restart
    /// the level ratio.
    pub fn rebase(&mut self, ratio: f64) {
        let r = ratio.clamp(0.05, 20.0);
        self.cg *= r;
        for b in self.day.iter_mut().chain(self.week.iter_mut()) {
            b[0] *= r as f32;
        }
        self.rx = 0.0;
        self.rb = 0.0;
    }
}

/// Σ_{i<n} λ^i: the weight of `n` unit observations under per-step decay λ.
fn geometric(lambda: f64, n: f64) -> f64 {
    if lambda >= 1.0 { n } else { (1.0 - lambda.powf(n)) / (1.0 - lambda) }
}

/// The expected errors of one error code in a step: the step's calls times the decayed error fraction (a beta
/// posterior with a small prior toward `prior_error_rate`), so more traffic alone raises the expectation, not
/// the evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ErrorRatio {
    errors: f64,
    calls: f64,
    /// Decayed errors per step (the baseline average of the Insight record), and its exposure.
    per_step: f64,
    exposure: f64,
}

impl ErrorRatio {
    /// A new error code of an API whose decayed call count (same decay) is `calls_before`: those calls had no
    /// error of this code.
    pub fn new(calls_before: f64, exposure_before: f64) -> ErrorRatio {
        ErrorRatio { errors: 0.0, calls: calls_before, per_step: 0.0, exposure: exposure_before }
    }

    pub fn fraction(&self, p: &Params) -> f64 {
        (self.errors + p.prior_error_rate * p.prior_error_calls) / (self.calls + p.prior_error_calls)
    }

    pub fn information(&self, p: &Params) -> f64 {
        self.errors + p.prior_error_rate * p.prior_error_calls
    }

    pub fn global_rate(&self) -> f64 {
        if self.exposure > 0.0 { self.per_step / self.exposure } else { 0.0 }
    }

    pub fn learn(&mut self, p: &Params, errors: f64, calls: f64, errors_raw: f64) {
        self.errors = self.errors * p.decay_error + errors;
        self.calls = self.calls * p.decay_error + calls;
        self.per_step = self.per_step * p.decay_global + errors_raw;
        self.exposure = self.exposure * p.decay_global + 1.0;
    }

    pub fn skip(&mut self, p: &Params, n: u64) {
        let n = n as f64;
        self.errors *= p.decay_error.powf(n);
        self.calls *= p.decay_error.powf(n);
        let lg = p.decay_global.powf(n);
        self.per_step *= lg;
        self.exposure = self.exposure * lg + geometric(p.decay_global, n);
    }

    pub fn rebase(&mut self, ratio: f64) {
        self.errors *= ratio.clamp(0.05, 20.0);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Evidence and the Insight state machine.

/// What one step did to a key's Insight.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Transition {
    /// An Insight opened; its first unusual step is `start`, detected at the current step.
    Start { start: i64, average: f64 },
    /// The open Insight ended: `end` is the first step after it; `average` its count per step; a `forced` end
    /// (too long) asks the caller to rebase its expectation by `ratio`.
    End { start: i64, end: i64, average: f64, forced: bool, ratio: f64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Open {
    start: i64,
    detect: i64,
    sum_x: f64,
    sum_mu: f64,
    up: bool,
    /// Consecutive calm steps, and the first step of the first calm window of that run.
    calm_run: usize,
    calm_since: i64,
}

/// One key's evidence: the last `RING` steps (count, learned count, expectation), the window dispersion
/// estimates, the CUSUM and the open Insight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Track {
    age: u64,
    /// (count, learned count, expectation, expectation for rises) per step, newest at `head`.
    ring: Vec<[f32; 4]>,
    head: usize,
    learn_len: usize,
    test_len: usize,
    /// Per window: decayed Σ((S−M)² − M), Σ M², Σ M and Σ 1.
    disp: [[f64; 4]; 4],
    cusum: f64,
    cusum_from: i64,
    cusum_x: f64,
    cusum_mu: f64,
    open: Option<Open>,
}

/// The result of one step.
pub(crate) struct Stepped {
    pub transition: Option<Transition>,
    /// 0..=1: the strongest evidence of this step relative to the alarm threshold (1 = at the threshold).
    pub score: f64,
    /// The count the expectation should learn (clipped, so a burst does not become the baseline).
    pub learn: f64,
    /// An Insight is open after this step (or ended at it).
    pub in_insight: bool,
}

impl Track {
    pub fn new(age: u64) -> Track {
        Track {
            age,
            ring: vec![[0.0; 4]; RING],
            head: 0,
            learn_len: 0,
            test_len: 0,
            disp: [[0.0; 4]; 4],
            cusum: 0.0,
            cusum_from: 0,
            cusum_x: 0.0,
            cusum_mu: 0.0,
            open: None,
        }
    }

    /// Nothing pending: no open Insight, no CUSUM mass, no count in the ring; zero steps can be skipped in
    /// closed form.
    pub fn is_quiet(&self) -> bool {
        self.open.is_none() && self.cusum == 0.0 && self.ring.iter().all(|e| e[0] == 0.0)
    }

    /// The window dispersion φ_w (variance of a window sum = M + φ_w M²), its prior blended in by weight.
    pub fn phi(&self, p: &Params, w: usize) -> f64 {
        let [num, den, mean, n] = self.disp[w];
        let prior_weight = p.prior_phi_steps / n.max(1.0) * (den + mean);
        let phi = (num + p.prior_phi * prior_weight) / (den + prior_weight);
        if phi.is_finite() { phi.clamp(0.0, 1e4) } else { p.prior_phi }
    }

    /// NB size for window `w`: window dispersion plus the uncertainty of the expectation itself.
    fn size(&self, p: &Params, w: usize, info: f64) -> f64 {
        1.0 / (self.phi(p, w) + 1.0 / info.max(1e-9))
    }

    fn push(&mut self, x: f64, learned: f64, mu: f64, mu_up: f64) {
        self.head = (self.head + 1) % RING;
        self.ring[self.head] = [x as f32, learned as f32, mu as f32, mu_up as f32];
        self.learn_len = (self.learn_len + 1).min(RING);
        self.test_len = (self.test_len + 1).min(RING);
    }

    fn at(&self, back: usize) -> [f32; 4] {
        self.ring[(self.head + RING - back) % RING]
    }

    fn learn_dispersion(&mut self, p: &Params) {
        let mut s = 0.0;
        let mut m = 0.0;
        let mut wi = 0;
        for j in 0..self.learn_len {
            let e = self.at(j);
            s += e[1] as f64;
            m += e[2] as f64;
            if j + 1 == WINDOWS[wi] {
                let d = &mut self.disp[wi];
                let l = p.decay_dispersion;
                d[0] = d[0] * l + ((s - m) * (s - m) - m);
                d[1] = d[1] * l + m * m;
                d[2] = d[2] * l + m;
                d[3] = d[3] * l + 1.0;
                wi += 1;
                if wi == WINDOWS.len() {
                    break;
                }
            }
        }
        // Windows not yet filled decay too, so every window's statistics share one clock.
        for d in self.disp.iter_mut().skip(wi) {
            for v in d.iter_mut() {
                *v *= p.decay_dispersion;
            }
        }
    }

    /// One step `t` with count `x` and expected count `mu`; `info` is the information of the expectation;
    /// `envelope` is what this time of day has peaked at before (0 for none): rises are measured against
    /// max(mu, envelope), so a job that runs at the same time every day is not news every day.
    pub fn step(&mut self, p: &Params, t: i64, x: f64, mu: f64, envelope: f64, info: f64) -> Stepped {
        let x = if x.is_finite() { x.max(0.0) } else { 0.0 };
        let mu = if mu.is_finite() { mu.max(1e-12) } else { 1e-12 };
        let mu_up = if envelope.is_finite() { mu.max(envelope) } else { mu };
        self.age += 1;
        let phi1 = self.phi(p, 0);
        let sd = (mu + phi1 * mu * mu).sqrt();
        // Learn every step, clipped, so a burst moves the baseline only a little; during an Insight the clip is
        // tighter (one standard deviation) but not zero, so a level change that lasts is learned in the end.
        // Nothing is clipped during the warm-up: the expectation is still the prior then.
        let learned = match &self.open {
            _ if self.age <= p.warmup_steps => x,
            Some(_) => x.min(mu + sd),
            // A drop (an outage) is clipped too, so next week's same hour does not expect it again.
            None => x.min(mu + (p.clip_sd * sd).max(p.clip_floor)).max(mu - p.clip_sd * sd),
        };
        self.push(x, learned, mu, mu_up);

        let mut score: f64 = 0.0;
        let mut transition = None;
        let testing = self.age > p.warmup_steps;

        // Window tests, and the most significant one with its change point (start of the suffix with the
        // largest excess, or deficit for a drop).
        let mut best: Option<(f64, i64, bool)> = None;
        if testing && self.open.is_none() {
            let (mut s, mut m, mut mu_) = (0.0, 0.0, 0.0);
            let (mut best_up, mut best_up_at) = (f64::MIN, 0usize);
            let (mut best_dn, mut best_dn_at) = (f64::MIN, 0usize);
            let mut wi = 0;
            for j in 0..self.test_len {
                let e = self.at(j);
                s += e[0] as f64;
                m += e[2] as f64;
                mu_ += e[3] as f64;
                if s - mu_ > best_up {
                    best_up = s - mu_;
                    best_up_at = j;
                }
                if m - s > best_dn {
                    best_dn = m - s;
                    best_dn_at = j;
                }
                if j + 1 == WINDOWS[wi] {
                    let k = self.size(p, wi, info);
                    if s - mu_ >= p.min_excess && s >= p.min_ratio * mu_ {
                        let lp = ln_nb_upper(s, mu_, k);
                        score = score.max(lp / p.ln_alpha);
                        if lp <= p.ln_alpha && best.is_none_or(|b| lp < b.0) {
                            best = Some((lp, t - best_up_at as i64, true));
                        }
                    }
                    if p.two_sided && m - s >= p.min_excess && m >= p.min_ratio * s {
                        let lp = ln_nb_lower(s, m, k);
                        score = score.max(lp / p.ln_alpha);
                        if lp <= p.ln_alpha && best.is_none_or(|b| lp < b.0) {
                            best = Some((lp, t - best_dn_at as i64, false));
                        }
                    }
                    wi += 1;
                    if wi == WINDOWS.len() {
                        break;
                    }
                }
            }
            // CUSUM of the log-likelihood ratio of "rate × rho" against "rate", for sustained rises; per-step
            // noise is the larger of the 1-step and the 60-step dispersion (autocorrelation inflates the latter).
            let k = self.size(p, 0, info).min(self.size(p, 3, info));
            let rho = p.cusum_rho;
            let llr = if k > 1e12 {
                x * rho.ln() - (rho - 1.0) * mu_up
            } else {
                let shrink = -((rho - 1.0) * mu_up / (k + mu_up)).ln_1p(); // ln((k+μ)/(k+ρμ)) < 0
                x * (rho.ln() + shrink) + k * shrink
            };
            if self.cusum == 0.0 && llr > 0.0 {
                self.cusum_from = t;
                self.cusum_x = 0.0;
                self.cusum_mu = 0.0;
            }
            self.cusum = (self.cusum + llr).max(0.0);
            if self.cusum > 0.0 {
                self.cusum_x += x;
                self.cusum_mu += mu_up;
                let excess_ok =
                    self.cusum_x - self.cusum_mu >= p.min_excess && self.cusum_x >= p.min_ratio * self.cusum_mu;
                if excess_ok {
                    score = score.max(self.cusum / p.cusum_h);
                    if self.cusum >= p.cusum_h && best.is_none() {
                        best = Some((-self.cusum, self.cusum_from.max(t - self.test_len as i64 + 1), true));
                    }
                }
            }
        }

        if let Some((_, start, up)) = best {
            let (mut sum_x, mut sum_mu) = (0.0, 0.0);
            for j in 0..=(t - start) as usize {
                let e = self.at(j);
                sum_x += e[0] as f64;
                sum_mu += e[2] as f64;
            }
            let steps = (t - start + 1) as f64;
            self.open = Some(Open { start, detect: t, sum_x, sum_mu, up, calm_run: 0, calm_since: t });
            self.cusum = 0.0;
            transition = Some(Transition::Start { start, average: sum_x / steps });
        } else if self.open.is_some() {
            let k5 = 1.0 / (self.phi(p, 1) + 1.0 / info.max(1e-9));
            let (head, ring) = (self.head, &self.ring);
            let open = self.open.as_mut().expect("checked");
            open.sum_x += x;
            open.sum_mu += mu;
            // Hysteresis: the Insight ends after `end_calm_steps` consecutive steps whose last-5-steps window is
            // calm (not unusual even at 5%, or back at or below its expectation); it ended where the first calm
            // window of that run began.
            let calm_n = p.end_calm_steps;
            let window_start = t - calm_n as i64 + 1;
            let mut end = None;
            if t > open.detect && window_start > open.start {
                let (mut s, mut m) = (0.0, 0.0);
                for j in 0..calm_n {
                    let e = ring[(head + RING - j) % RING];
                    s += e[0] as f64;
                    m += if open.up { e[3] } else { e[2] } as f64;
                }
                let lp = if open.up { ln_nb_upper(s, m, k5) } else { ln_nb_lower(s, m, k5) };
                if lp >= p.ln_end_p || (open.up && s <= m) || (!open.up && s >= m) {
                    if open.calm_run == 0 {
                        open.calm_since = window_start;
                    }
                    open.calm_run += 1;
                    if open.calm_run >= calm_n {
                        end = Some((open.calm_since, false));
                    }
                } else {
                    open.calm_run = 0;
                }
            }
            if end.is_none() && (t - open.start + 1) as u64 >= p.max_insight_steps {
                end = Some((t + 1, true));
            }
            if let Some((end_step, forced)) = end {
                let after: f64 =
                    (0..=(t - end_step).max(-1)).map(|j| ring[(head + RING - j as usize) % RING][0] as f64).sum();
                let duration = (end_step - open.start).max(1) as f64;
                let average = (open.sum_x - after) / duration;
                let ratio = if forced { (open.sum_x + 1.0) / (open.sum_mu + 1.0) } else { 1.0 };
                transition = Some(Transition::End { start: open.start, end: end_step, average, forced, ratio });
                self.open = None;
                self.test_len = 0;
                self.cusum = 0.0;
            }
        }
        self.learn_dispersion(p);
        let in_insight = self.open.is_some() || transition.is_some();
        Stepped { transition, score: score.clamp(0.0, 1.0), learn: learned, in_insight }
    }

    /// `n` quiet steps (zero count, expectation `mu` each) in closed form. Only valid when `is_quiet()`.
    pub fn skip(&mut self, p: &Params, n: u64, mu: f64) {
        let mu = mu.max(1e-12);
        self.age += n;
        let n_f = n as f64;
        let l = p.decay_dispersion;
        let lw = l.powf(n_f);
        let weight = geometric(l, n_f);
        for (wi, &w) in WINDOWS.iter().enumerate() {
            let m = mu * w as f64;
            let d = &mut self.disp[wi];
            let live = self.learn_len >= w;
            d[0] *= lw;
            d[1] *= lw;
            d[2] *= lw;
            d[3] *= lw;
            if live {
                d[0] += (m * m - m) * weight;
                d[1] += m * m * weight;
                d[2] += m * weight;
                d[3] += weight;
            }
        }
        for _ in 0..(n.min(RING as u64)) {
            self.push(0.0, 0.0, mu, mu);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Attributions.

/// A decayed space-saving top-k: at most `TOPK_CAPACITY` values with their (decayed) counts; a new value
/// replaces the smallest and inherits its count (the space-saving overestimate), so memory is bounded whatever
/// the stream.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TopK {
    entries: Vec<TopEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TopEntry {
    hash: u64,
    value: String,
    count: f64,
}

/// Hard-coded: twice the five entries a record reports, so the fifth is rarely an artifact of eviction.
const TOPK_CAPACITY: usize = 10;

impl TopK {
    pub fn add(&mut self, hash: u64, value: &str, w: f64) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.hash == hash && e.value == value) {
            e.count += w;
            return;
        }
        if self.entries.len() < TOPK_CAPACITY {
            self.entries.push(TopEntry { hash, value: value.to_owned(), count: w });
            return;
        }
        let (i, min) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.count))
            .fold((0, f64::MAX), |a, b| if b.1 < a.1 { b } else { a });
        self.entries[i] = TopEntry { hash, value: value.to_owned(), count: min + w };
    }

    pub fn decay(&mut self, factor: f64) {
        for e in &mut self.entries {
            e.count *= factor;
        }
        self.entries.retain(|e| e.count > 1e-9);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn scaled(&self, factor: f64) -> TopK {
        let mut t = self.clone();
        for e in &mut t.entries {
            e.count *= factor;
        }
        t
    }

    /// The top `n` values with their counts divided by `per`, descending (ties by value, so output is
    /// deterministic).
    pub fn top(&self, n: usize, per: f64) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> =
            self.entries.iter().map(|e| (e.value.clone(), e.count / per.max(1e-12))).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params::new(&Settings::default(), MINUTE_MS, Mode::Keyed)
    }

    #[test]
    fn threshold_is_the_budget_spread_over_a_week_of_tests() {
        let p = params();
        let alpha = p.ln_alpha.exp();
        let expected = Settings::default().false_alarms_per_week / (10_080.0 * TESTS);
        assert!((alpha - expected).abs() < 1e-12 * expected.max(1.0), "{alpha} vs {expected}");
    }

    #[test]
    fn topk_keeps_the_heavy_hitters() {
        let mut t = TopK::default();
        for i in 0..1000u64 {
            t.add(1, "heavy", 1.0);
            t.add(100 + i, &format!("noise{i}"), 1.0);
        }
        let top = t.top(5, 1.0);
        assert_eq!(top[0].0, "heavy");
        assert!(t.entries.len() <= TOPK_CAPACITY);
    }

    #[test]
    fn seasonal_rate_learns_a_constant_rate_quickly() {
        let p = params();
        let mut s = SeasonalRate::new();
        for m in 0..30 {
            s.expect(&p, m * MINUTE_MS, 0.1);
            s.learn(&p, m * MINUTE_MS, 40.0, 40.0, false);
        }
        let (_, mu) = s.expect(&p, 30 * MINUTE_MS, 0.1);
        assert!((mu - 40.0).abs() < 2.0, "{mu}");
    }
}
