//! The labelled synthetic benchmark of the detector (`insights-eval`): per-API minute counts over simulated
//! weeks (Poisson and negative binomial, one call a week to hundreds a minute, daily and weekly cycles, APIs
//! appearing mid-run), with bursts (×2, ×5, ×20 for 1–60 min), drops and error-rate spikes injected at known
//! times, fed call by call through `Detector::observe`; and the scorer: false Insights per API-week on clean
//! streams, recall and detection delay on the injected ones, time to the first possible Insight after
//! enabling, and observe() throughput. Seeded (ChaCha8), so a run is reproducible.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Call, Detector, Insight, InsightState, InsightType, Settings};

const MINUTE_MS: i64 = 60_000;
const WEEK: i64 = 10_080;
/// Simulated time starts on a Monday 00:00 UTC (2024-01-01).
const EPOCH_MINUTE: i64 = 1_704_067_200 / 60;

/// How big a run is.
#[derive(Clone, Debug)]
pub struct EvalConfig {
    pub weeks: u32,
    pub apis: usize,
    pub seed: u64,
    pub settings: Settings,
    /// Calls for the throughput measurement.
    pub throughput_calls: usize,
}

impl Default for EvalConfig {
    fn default() -> EvalConfig {
        EvalConfig { weeks: 4, apis: 150, seed: 7, settings: Settings::default(), throughput_calls: 5_000_000 }
    }
}

/// One burst class's outcome.
#[derive(Clone, Debug, Default)]
pub struct ClassResult {
    pub label: String,
    pub injected: usize,
    /// Injections whose expected excess reaches the detector's minimum (10 calls): the detectable ones.
    pub detectable: usize,
    pub detected_detectable: usize,
    pub detected_all: usize,
}

/// The figures of `BENCHMARKS.md`'s Insights section.
#[derive(Clone, Debug, Default)]
pub struct EvalReport {
    pub clean_api_weeks: f64,
    pub clean_false_call_rate: usize,
    pub clean_false_error_rate: usize,
    pub injected_api_weeks: f64,
    /// Starts in the injected run that match no injection.
    pub injected_unmatched: usize,
    pub classes: Vec<ClassResult>,
    /// Detection delays (closed minutes after the first unusual minute closed) of detected ≥5×, ≥5 min bursts.
    pub delays: Vec<i64>,
    /// Detected ≥5× bursts whose top insight identity is the burst's caller.
    pub attribution_hits: usize,
    pub attribution_checked: usize,
    pub drops: usize,
    pub insights_on_drops: usize,
    /// Minutes from enabling to the first minute a ×20 burst can start and be detected (worst of the rates).
    pub first_insight_minutes: Option<i64>,
    pub throughput_calls_per_s: f64,
    pub starts_without_end: usize,
}

impl EvalReport {
    pub fn false_per_api_week(&self) -> f64 {
        (self.clean_false_call_rate + self.clean_false_error_rate) as f64 / self.clean_api_weeks.max(1e-9)
    }

    /// Recall of detectable ≥5× bursts lasting ≥5 minutes (the target).
    pub fn recall_5x(&self) -> (usize, usize) {
        self.classes
            .iter()
            .filter(|c| c.label.starts_with("burst") && big_burst(&c.label))
            .fold((0, 0), |a, c| (a.0 + c.detected_detectable, a.1 + c.detectable))
    }

    pub fn median_delay(&self) -> Option<i64> {
        let mut d = self.delays.clone();
        d.sort_unstable();
        d.get(d.len() / 2).copied()
    }
}

fn big_burst(label: &str) -> bool {
    // "burst x5 15min"
    let mut it = label.split_whitespace().skip(1);
    let mult: f64 = it.next().and_then(|m| m.trim_start_matches('x').parse().ok()).unwrap_or(0.0);
    let minutes: i64 = it.next().and_then(|m| m.trim_end_matches("min").parse().ok()).unwrap_or(0);
    mult >= 5.0 && minutes >= 5
}

// ---------------------------------------------------------------------------------------------------------
// Sampling (own, to keep the dependency list short).

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u64 {
    // Knuth's product method in chunks (exp(−500) is still a normal f64): O(λ), as cheap as emitting the calls.
    let mut left = lambda.max(0.0);
    let mut n = 0;
    while left > 0.0 {
        let l = left.min(500.0);
        left -= l;
        let limit = (-l).exp();
        let mut prod: f64 = rng.random();
        while prod > limit {
            n += 1;
            prod *= rng.random::<f64>();
        }
    }
    n
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Gamma(shape, 1) (Marsaglia–Tsang; shape < 1 by the u^(1/a) boost).
fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(1e-300);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Streams.

#[derive(Clone, Debug)]
struct Profile {
    name: String,
    /// Mean calls per minute.
    rate: f64,
    daily_amplitude: f64,
    peak_hour: f64,
    weekend: f64,
    /// None = Poisson; Some(k) = negative binomial of size k (a gamma-distributed rate per minute).
    nb_size: Option<f64>,
    start: i64,
    error_fraction: f64,
}

impl Profile {
    fn random(rng: &mut ChaCha8Rng, i: usize, minutes: i64) -> Profile {
        // log-uniform from one call a week to 300 a minute
        let lo = (1.0 / WEEK as f64).ln();
        let hi = 300f64.ln();
        let rate = (lo + (hi - lo) * rng.random::<f64>()).exp();
        let appears = rng.random::<f64>() < 0.25;
        Profile {
            name: format!("Api{i:03}"),
            rate,
            daily_amplitude: rng.random::<f64>() * 0.8,
            peak_hour: rng.random::<f64>() * 24.0,
            weekend: 0.3 + 0.7 * rng.random::<f64>(),
            nb_size: if rng.random::<f64>() < 0.5 { None } else { Some(1.0 + 19.0 * rng.random::<f64>()) },
            start: if appears {
                (rng.random::<f64>() * (minutes as f64 - 2.0 * WEEK as f64).max(0.0)) as i64
            } else {
                0
            },
            error_fraction: if rng.random::<f64>() < 0.3 { 0.0 } else { 0.001 + 0.05 * rng.random::<f64>() },
        }
    }

    /// Mean calls in minute `m` (relative to the run's start) without injections.
    fn mean(&self, m: i64) -> f64 {
        let hour = (m % 1440) as f64 / 60.0;
        let day = (m / 1440) % 7;
        let daily = 1.0 + self.daily_amplitude * (2.0 * std::f64::consts::PI * (hour - self.peak_hour) / 24.0).cos();
        let weekly = if day >= 5 { self.weekend } else { 1.0 };
        self.rate * daily * weekly
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Burst { mult: f64 },
    Drop,
    ErrorSpike,
}

#[derive(Clone, Debug)]
struct Injection {
    api: usize,
    kind: Kind,
    start: i64,
    minutes: i64,
    label: String,
    /// Expected excess calls (or errors) over the injection.
    excess: f64,
    detected_at: Option<i64>,
    top_identity: Option<String>,
}

fn plan_injections(rng: &mut ChaCha8Rng, profiles: &[Profile], minutes: i64) -> Vec<Injection> {
    let mut out = Vec::new();
    for (api, p) in profiles.iter().enumerate() {
        // One injection every ~2 days, the first a day after the API appears, ≥ 6 h after the last one ended.
        let mut t = p.start + 1440 + (rng.random::<f64>() * 1440.0) as i64;
        while t + 120 < minutes {
            let r: f64 = rng.random();
            let durations = [1, 5, 15, 60];
            let d = durations[rng.random_range(0..durations.len())];
            let (kind, minutes_, label) = if r < 0.7 {
                let mults = [2.0, 5.0, 20.0];
                let mult = mults[rng.random_range(0..mults.len())];
                (Kind::Burst { mult }, d, format!("burst x{mult} {d}min"))
            } else if r < 0.85 {
                (Kind::Drop, 60, "drop x0.1 60min".to_owned())
            } else {
                (Kind::ErrorSpike, 15, "error spike 15min".to_owned())
            };
            let expected: f64 = (t..t + minutes_).map(|m| p.mean(m)).sum();
            let excess = match kind {
                Kind::Burst { mult } => expected * (mult - 1.0),
                Kind::Drop => expected * 0.9,
                Kind::ErrorSpike => expected * (error_spike_fraction(p.error_fraction) - p.error_fraction),
            };
            out.push(Injection {
                api,
                kind,
                start: t,
                minutes: minutes_,
                label,
                excess,
                detected_at: None,
                top_identity: None,
            });
            t += minutes_ + 360 + (rng.random::<f64>() * 2.0 * 1440.0) as i64;
        }
    }
    out
}

fn error_spike_fraction(base: f64) -> f64 {
    (base * 10.0).clamp(0.3, 1.0)
}

struct Outcome {
    insights: Vec<(i64, Insight)>,
    api_weeks: f64,
}

/// Generate the streams minute by minute and feed every call through the detector.
fn run_streams(
    seed: u64,
    profiles: &[Profile],
    injections: &[Injection],
    minutes: i64,
    settings: &Settings,
) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut det = Detector::new(settings.clone());
    let mut insights = Vec::new();
    let users: Vec<String> = (0..3).map(|i| format!("arn:aws:iam::111122223333:user/worker{i}")).collect();
    let burst_user = "arn:aws:iam::111122223333:user/intruder";
    let mut by_api: Vec<Vec<&Injection>> = vec![Vec::new(); profiles.len()];
    for inj in injections {
        by_api[inj.api].push(inj);
    }
    let mut api_minutes = 0i64;
    for m in 0..minutes {
        for (i, p) in profiles.iter().enumerate() {
            if m < p.start {
                continue;
            }
            api_minutes += 1;
            let mut mean = p.mean(m);
            let mut extra_mean = 0.0;
            let mut err = p.error_fraction;
            for inj in &by_api[i] {
                if m >= inj.start && m < inj.start + inj.minutes {
                    match inj.kind {
                        Kind::Burst { mult } => extra_mean = mean * (mult - 1.0),
                        Kind::Drop => mean *= 0.1,
                        Kind::ErrorSpike => err = error_spike_fraction(p.error_fraction),
                    }
                }
            }
            let lambda = match p.nb_size {
                None => mean,
                Some(k) => mean * gamma(&mut rng, k) / k,
            };
            let n = poisson(&mut rng, lambda);
            let extra = poisson(&mut rng, extra_mean);
            let total = n + extra;
            for c in 0..total {
                let time_ms = (EPOCH_MINUTE + m) * MINUTE_MS + (c as i64 * MINUTE_MS) / total.max(1) as i64;
                let is_error = rng.random::<f64>() < err;
                let identity = if c >= n { burst_user } else { &users[(c % 3) as usize] };
                det.observe(&Call {
                    time_ms,
                    region: "us-east-1",
                    event_source: "ec2.amazonaws.com",
                    event_name: &p.name,
                    read_only: false,
                    error_code: is_error.then_some("AccessDenied"),
                    identity_arn: Some(identity),
                    user_agent: Some("aws-cli/2.15.0"),
                });
            }
        }
        let closed = det.watermark_ms().map_or(0, |w| w.div_euclid(MINUTE_MS) - 1 - EPOCH_MINUTE);
        for i in det.take_insights() {
            insights.push((closed, i));
        }
    }
    det.advance_clock((EPOCH_MINUTE + minutes + 120) * MINUTE_MS);
    let closed = minutes + 118;
    for i in det.take_insights() {
        insights.push((closed, i));
    }
    Outcome { insights, api_weeks: api_minutes as f64 / WEEK as f64 }
}

/// `INSIGHTS_EVAL_DEBUG=1` lists every missed injection, unmatched Start and the profiles on stderr.
fn debug() -> bool {
    std::env::var_os("INSIGHTS_EVAL_DEBUG").is_some()
}

fn api_index(name: &str) -> usize {
    name.trim_start_matches("Api").parse().unwrap_or(usize::MAX)
}

fn starts_without_end(insights: &[(i64, Insight)]) -> usize {
    let mut open = std::collections::HashMap::new();
    for (_, i) in insights {
        match i.state {
            InsightState::Start => *open.entry(&i.shared_id).or_insert(0i64) += 1,
            InsightState::End => *open.entry(&i.shared_id).or_insert(0i64) -= 1,
        }
    }
    open.values().filter(|&&v| v != 0).count()
}

/// Minutes after enabling at which a ×20 burst of 15 minutes, starting then, is first detected (the worst over
/// a sparse and a busy API).
fn first_insight(settings: &Settings) -> Option<i64> {
    let mut worst = None;
    for &rate in &[0.5, 5.0, 50.0] {
        let mut found = None;
        for t0 in (0..=120).step_by(5) {
            let mut rng = ChaCha8Rng::seed_from_u64(t0 as u64);
            let mut det = Detector::new(settings.clone());
            let mut hit = false;
            for m in 0..(t0 + 40) {
                let mult = if m >= t0 && m < t0 + 15 { 20.0 } else { 1.0 };
                let n = poisson(&mut rng, rate * mult);
                for c in 0..n {
                    det.observe(&Call {
                        time_ms: (EPOCH_MINUTE + m) * MINUTE_MS + (c as i64 * MINUTE_MS) / n.max(1) as i64,
                        region: "us-east-1",
                        event_source: "ec2.amazonaws.com",
                        event_name: "RunInstances",
                        read_only: false,
                        error_code: None,
                        identity_arn: Some("arn:aws:iam::111122223333:user/a"),
                        user_agent: None,
                    });
                }
                det.advance_clock((EPOCH_MINUTE + m + 1) * MINUTE_MS + MINUTE_MS);
                if det.take_insights().iter().any(|i| i.state == InsightState::Start) {
                    hit = m >= t0;
                    break;
                }
            }
            if hit {
                found = Some(t0);
                break;
            }
        }
        worst = match (worst, found) {
            (_, None) => return None,
            (None, f) => f,
            (Some(w), Some(f)) => Some(w.max(f)),
        };
    }
    worst
}

/// observe() throughput on one core: `calls` calls over 200 APIs, a few identities and user agents, time
/// moving forward (minute closes included).
pub fn throughput(settings: &Settings, calls: usize) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let names: Vec<String> = (0..200).map(|i| format!("Operation{i}")).collect();
    let sources = ["ec2.amazonaws.com", "iam.amazonaws.com", "s3.amazonaws.com", "sts.amazonaws.com"];
    let users: Vec<String> = (0..20).map(|i| format!("arn:aws:iam::111122223333:user/u{i}")).collect();
    let agents = ["aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64", "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0"];
    struct Pre {
        t: i64,
        n: u16,
        s: u8,
        u: u8,
        a: u8,
        ro: bool,
        e: bool,
    }
    let pre: Vec<Pre> = (0..calls)
        .map(|i| Pre {
            // ~20 000 calls per minute of event time
            t: EPOCH_MINUTE * MINUTE_MS + (i as i64) * 3,
            n: (rng.random::<f64>().powi(3) * 200.0) as u16,
            s: rng.random_range(0..4),
            u: rng.random_range(0..20),
            a: rng.random_range(0..2),
            ro: rng.random::<f64>() < 0.6,
            e: rng.random::<f64>() < 0.02,
        })
        .collect();
    let mut det = Detector::new(settings.clone());
    let started = Instant::now();
    for p in &pre {
        det.observe(&Call {
            time_ms: p.t,
            region: "us-east-1",
            event_source: sources[p.s as usize],
            event_name: &names[p.n as usize],
            read_only: p.ro,
            error_code: p.e.then_some("AccessDenied"),
            identity_arn: Some(&users[p.u as usize]),
            user_agent: Some(agents[p.a as usize]),
        });
    }
    let secs = started.elapsed().as_secs_f64();
    std::hint::black_box(det.take_insights());
    calls as f64 / secs
}

/// Run the whole benchmark. `progress` gets a line per phase.
pub fn run(cfg: &EvalConfig, progress: &mut dyn FnMut(&str)) -> EvalReport {
    let minutes = cfg.weeks.max(2) as i64 * WEEK;
    let mut report = EvalReport::default();

    progress("clean streams");
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let clean: Vec<Profile> = (0..cfg.apis).map(|i| Profile::random(&mut rng, i, minutes)).collect();
    let out = run_streams(cfg.seed ^ 1, &clean, &[], minutes, &cfg.settings);
    report.clean_api_weeks = out.api_weeks;
    for (_, i) in &out.insights {
        if i.state == InsightState::Start {
            match i.insight_type {
                InsightType::ApiCallRate => report.clean_false_call_rate += 1,
                InsightType::ApiErrorRate => report.clean_false_error_rate += 1,
            }
        }
    }
    report.starts_without_end += starts_without_end(&out.insights);

    progress("injected streams");
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1000));
    let profiles: Vec<Profile> = (0..cfg.apis).map(|i| Profile::random(&mut rng, i, minutes)).collect();
    let mut injections = plan_injections(&mut rng, &profiles, minutes);
    if debug() {
        for inj in &injections {
            eprintln!("injection {} {} at {} for {}", profiles[inj.api].name, inj.label, inj.start, inj.minutes);
        }
        for p in &profiles {
            eprintln!("profile {p:?}");
        }
    }
    let out = run_streams(cfg.seed ^ 2, &profiles, &injections, minutes, &cfg.settings);
    report.injected_api_weeks = out.api_weeks;
    report.starts_without_end += starts_without_end(&out.insights);
    for (closed, i) in &out.insights {
        if i.state != InsightState::Start {
            continue;
        }
        let api = api_index(&i.event_name);
        let start = i.event_time_ms / MINUTE_MS - EPOCH_MINUTE;
        let matched = injections.iter_mut().find(|inj| {
            let type_ok = matches!(
                (&inj.kind, i.insight_type),
                (Kind::Burst { .. } | Kind::Drop, InsightType::ApiCallRate)
                    | (Kind::ErrorSpike, InsightType::ApiErrorRate)
            );
            // A drop's Insight would be raised when traffic comes back (a rise against a lowered baseline).
            let tail = if matches!(inj.kind, Kind::Drop) { 15 } else { 5 };
            // Matched by the stated first minute or, as a sparse API's change point is uncertain, by the minute
            // the Start was raised.
            let window = inj.start - 2..=inj.start + inj.minutes + tail;
            inj.api == api && type_ok && (window.contains(&start) || window.contains(closed))
        });
        match matched {
            Some(inj) if inj.detected_at.is_none() => {
                inj.detected_at = Some(*closed);
                inj.top_identity = i
                    .attributions
                    .iter()
                    .find(|a| a.attribute == crate::AttributeKind::UserIdentityArn)
                    .and_then(|a| a.insight.first().map(|v| v.0.clone()));
            }
            Some(_) => {
                if debug() {
                    eprintln!(
                        "repeat start {} {:?} start={start} closed={closed} avg={:.2} base={:.3}",
                        i.event_name, i.insight_type, i.insight_average, i.baseline_average
                    );
                }
            }
            None => {
                if debug() {
                    let p = &profiles[api];
                    eprintln!(
                        "unmatched {} {:?} start={start} closed={closed} avg={:.2} base={:.3} rate={:.4} nb={:?} appears={}",
                        i.event_name, i.insight_type, i.insight_average, i.baseline_average, p.rate, p.nb_size, p.start
                    );
                }
                report.injected_unmatched += 1
            }
        }
    }
    let mut classes: Vec<ClassResult> = Vec::new();
    for inj in &injections {
        if matches!(inj.kind, Kind::Drop) {
            report.drops += 1;
            report.insights_on_drops += inj.detected_at.is_some() as usize;
            continue;
        }
        let c = match classes.iter_mut().position(|c| c.label == inj.label) {
            Some(c) => &mut classes[c],
            None => {
                classes.push(ClassResult { label: inj.label.clone(), ..ClassResult::default() });
                classes.last_mut().expect("pushed")
            }
        };
        c.injected += 1;
        let detectable = inj.excess >= 10.0;
        if debug() && detectable && inj.detected_at.is_none() {
            let p = &profiles[inj.api];
            eprintln!(
                "missed {} {} at {} excess={:.1} rate={:.4} nb={:?} appears={} err={:.3}",
                inj.label, p.name, inj.start, inj.excess, p.rate, p.nb_size, p.start, p.error_fraction
            );
        }
        c.detectable += detectable as usize;
        c.detected_all += inj.detected_at.is_some() as usize;
        c.detected_detectable += (detectable && inj.detected_at.is_some()) as usize;
        if let (Some(at), true) = (inj.detected_at, big_burst(&inj.label) && detectable) {
            report.delays.push(at - inj.start);
            report.attribution_checked += 1;
            report.attribution_hits +=
                (inj.top_identity.as_deref() == Some("arn:aws:iam::111122223333:user/intruder")) as usize;
        }
    }
    classes.sort_by(|a, b| a.label.cmp(&b.label));
    report.classes = classes;

    progress("time to the first Insight");
    report.first_insight_minutes = first_insight(&cfg.settings);

    progress("throughput");
    report.throughput_calls_per_s = throughput(&cfg.settings, cfg.throughput_calls);
    report
}

/// The report as Markdown (for BENCHMARKS.md).
pub fn markdown(cfg: &EvalConfig, r: &EvalReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let (hit, of) = r.recall_5x();
    let recall = hit as f64 / of.max(1) as f64;
    let _ = writeln!(
        s,
        "{} APIs × {} weeks per run, seed {}, budget {} false Insights/API/week, lateness {} min\n",
        cfg.apis, cfg.weeks, cfg.seed, cfg.settings.false_alarms_per_week, cfg.settings.allowed_lateness_minutes
    );
    let _ = writeln!(s, "| figure | measured | target | ratio |");
    let _ = writeln!(s, "|---|---|---|---|");
    let fp = r.false_per_api_week();
    let _ = writeln!(
        s,
        "| false Insights per API-week, clean streams ({} call rate + {} error rate over {:.0} API-weeks) | {:.3} | ≤ 1 | {:.2} |",
        r.clean_false_call_rate,
        r.clean_false_error_rate,
        r.clean_api_weeks,
        fp,
        fp / 1.0
    );
    let _ = writeln!(
        s,
        "| recall, detectable ≥5× bursts lasting ≥5 min | {:.3} ({hit}/{of}) | ≥ 0.9 | {:.2} |",
        recall,
        recall / 0.9
    );
    if let Some(d) = r.median_delay() {
        let _ = writeln!(
            s,
            "| median detection delay after the first unusual minute closes (event-time minutes; + lateness on the wall clock) | {d} min | ≤ 2 min | {:.2} |",
            d as f64 / 2.0
        );
    }
    match r.first_insight_minutes {
        Some(m) => {
            let _ = writeln!(
                s,
                "| time to the first possible Insight after enabling (×20 burst, worst of 0.5, 5, 50 calls/min) | {m} min | ≤ 60 min | {:.2} |",
                m as f64 / 60.0
            );
        }
        None => {
            let _ = writeln!(s, "| time to the first possible Insight after enabling | > 120 min | ≤ 60 min | — |");
        }
    }
    let _ = writeln!(
        s,
        "| Detector::observe throughput, one core | {:.2} M calls/s | ≥ 1 M/s | {:.2} |",
        r.throughput_calls_per_s / 1e6,
        r.throughput_calls_per_s / 1e6
    );
    let _ = writeln!(
        s,
        "\nInjected run ({:.0} API-weeks): recall by class (detectable = expected excess ≥ 10 calls)\n",
        r.injected_api_weeks
    );
    let _ = writeln!(s, "| injection | injected | detectable | detected (detectable) | detected (all) |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in &r.classes {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} ({:.2}) | {} ({:.2}) |",
            c.label,
            c.injected,
            c.detectable,
            c.detected_detectable,
            c.detected_detectable as f64 / c.detectable.max(1) as f64,
            c.detected_all,
            c.detected_all as f64 / c.injected.max(1) as f64
        );
    }
    let _ = writeln!(
        s,
        "\nOther: {} Starts in the injected run matched no injection ({:.3} per API-week); {} of {} drops (×0.1, 60 min) raised an Insight (rises only by design); top insight identity = the burst's caller in {} of {} detected ≥5× bursts; Starts without exactly one End: {}.",
        r.injected_unmatched,
        r.injected_unmatched as f64 / r.injected_api_weeks.max(1e-9),
        r.insights_on_drops,
        r.drops,
        r.attribution_hits,
        r.attribution_checked,
        r.starts_without_end
    );
    s
}
