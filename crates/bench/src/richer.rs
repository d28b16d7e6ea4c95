//! Issue 7's query forms on the same corpus and server as the main lookups: values OR-ed, prefixes, CIDR
//! blocks, exclusions (one page of 50 through LookupEvents' extension forms) and `--count [--by]`
//! (`GET /v1/event-counts`), each timed from one client. opentrail only: the baselines' query sets are
//! equalities. Totals of single-attribute counts are checked against the corpus's own value counts, so a
//! fast wrong answer cannot pass.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use model::{AttributeKey, Condition};

use crate::corpus::Stats;
use crate::report::Latencies;
use crate::server::Client;

/// What is asked.
#[derive(Debug, Clone)]
pub enum Ask {
    /// One LookupEvents page of 50.
    Page,
    /// `GET /v1/event-counts`, with `by` and the top 10.
    Count { by: Option<AttributeKey> },
}

#[derive(Debug, Clone)]
pub struct RichQuery {
    /// The report row's group: OR, prefix, CIDR, exclusion, count, count --by.
    pub group: &'static str,
    /// `--attr` expressions.
    pub attrs: Vec<String>,
    pub ask: Ask,
    /// The total the corpus's value counts say (single positive conditions only).
    pub expected_total: Option<u64>,
}

impl RichQuery {
    /// The query as the CLI says it.
    pub fn label(&self) -> String {
        let mut s: Vec<String> = self.attrs.iter().map(|a| format!("--attr '{a}'")).collect();
        match &self.ask {
            Ask::Page => {}
            Ask::Count { by: None } => s.push("--count".into()),
            Ask::Count { by: Some(k) } => s.push(format!("--count --by {k}")),
        }
        s.join(" ")
    }
}

/// One measured query.
#[derive(Debug)]
pub struct RichRow {
    pub query: RichQuery,
    /// Events on the page, or the count's total.
    pub matches: u64,
    pub client: Latencies,
    pub server: Option<Latencies>,
}

fn ranked(stats: &Stats, key: AttributeKey) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> =
        stats.counts.get(&key).into_iter().flatten().map(|(k, n)| (k.clone(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The corpus total of a single positive condition (exact for single-valued attributes).
fn corpus_total(stats: &Stats, attr: &str) -> Option<u64> {
    let c = Condition::parse(attr).ok()?;
    if c.negated
        || !matches!(
            c.key,
            AttributeKey::EventName
                | AttributeKey::ErrorCode
                | AttributeKey::SourceIpAddress
                | AttributeKey::UserAgent
                | AttributeKey::EventSource
        )
    {
        return None;
    }
    let counts = stats.counts.get(&c.key)?;
    Some(counts.iter().filter(|(v, _)| c.patterns.iter().any(|p| p.matches_value(v))).map(|(_, n)| n).sum())
}

/// The query set, deterministic for a corpus.
pub fn choose(stats: &Stats) -> Vec<RichQuery> {
    let names = ranked(stats, AttributeKey::EventName);
    let ips = ranked(stats, AttributeKey::SourceIpAddress);
    let sources = ranked(stats, AttributeKey::EventSource);
    let pick = |v: &[(String, u64)], i: usize| v.get(i.min(v.len().saturating_sub(1))).map(|(s, _)| s.clone());
    let mut attrs: Vec<(&'static str, Vec<String>)> = Vec::new();
    if let (Some(a), Some(b)) = (pick(&names, 0), pick(&names, 1)) {
        attrs.push(("OR", vec![format!("EventName={a},{b}")]));
    }
    attrs.push(("OR", vec!["EventName=DeleteTrail,StopLogging,PutEventSelectors".into()]));
    let rare: Vec<String> = names.iter().rev().take(3).map(|(s, _)| s.clone()).collect();
    if !rare.is_empty() {
        attrs.push(("OR", vec![format!("EventName={}", rare.join(","))]));
    }
    attrs.push(("prefix", vec!["EventName=Delete*".into()]));
    attrs.push(("prefix", vec!["EventName=Get*".into()]));
    attrs.push(("prefix", vec!["ErrorCode=AccessDenied*".into()]));
    attrs.push(("prefix", vec!["UserAgent=aws-cli/*".into()]));
    attrs.push(("CIDR", vec!["SourceIPAddress=10.0.0.0/8".into()]));
    // The /16 and /24 of the most frequent private address, and a block nothing is in.
    if let Some(ip) = ips.iter().map(|(s, _)| s).find(|s| s.starts_with("10.")) {
        let o: Vec<&str> = ip.split('.').collect();
        if o.len() == 4 {
            attrs.push(("CIDR", vec![format!("SourceIPAddress={}.{}.0.0/16", o[0], o[1])]));
            attrs.push(("CIDR", vec![format!("SourceIPAddress={}.{}.{}.0/24", o[0], o[1], o[2])]));
        }
    }
    attrs.push(("CIDR", vec!["SourceIPAddress=2001:db8::/32".into()]));
    if let Some(top) = pick(&sources, 0) {
        attrs.push(("exclusion", vec![format!("EventSource!={top}")]));
        attrs.push(("exclusion", vec!["EventName=Describe*".into(), format!("EventSource!={top}")]));
    }
    attrs.push(("exclusion", vec!["ErrorCode=*".into(), "ErrorCode!=AccessDenied,ThrottlingException".into()]));
    let mut out: Vec<RichQuery> = attrs
        .into_iter()
        .map(|(group, attrs)| {
            let expected_total = if attrs.len() == 1 { corpus_total(stats, &attrs[0]) } else { None };
            RichQuery { group, attrs, ask: Ask::Page, expected_total }
        })
        .collect();
    // Counts: the investigations of the issue.
    let mut counts: Vec<(&'static str, Vec<String>, Option<AttributeKey>)> = vec![
        ("count", vec!["ErrorCode=AccessDenied*".into()], None),
        ("count", vec!["SourceIPAddress=10.0.0.0/8".into()], None),
        ("count", vec![], None),
        ("count --by", vec!["ErrorCode=AccessDenied*".into()], Some(AttributeKey::AccessKeyId)),
        ("count --by", vec!["EventName=DeleteTrail,StopLogging".into()], Some(AttributeKey::Username)),
        ("count --by", vec!["EventName=Delete*".into()], Some(AttributeKey::SourceIpAddress)),
        ("count --by", vec!["SourceIPAddress=10.0.0.0/8".into()], Some(AttributeKey::EventName)),
        ("count --by", vec![], Some(AttributeKey::EventSource)),
        ("count --by", vec![], Some(AttributeKey::UserAgent)),
    ];
    if let Some(ip) = pick(&ips, ips.len() / 2) {
        counts.insert(3, ("count --by", vec![format!("SourceIPAddress={ip}")], Some(AttributeKey::EventName)));
    }
    if let Some(top) = pick(&sources, 0) {
        counts.push(("count", vec![format!("EventSource!={top}")], None));
    }
    for (group, attrs, by) in counts {
        let expected_total = if attrs.len() == 1 { corpus_total(stats, &attrs[0]) } else { None };
        out.push(RichQuery { group, attrs, ask: Ask::Count { by }, expected_total });
    }
    out
}

/// Runs each query once untimed (checking its total), then `reps` times from one client.
pub fn run(client: &Client, queries: &[RichQuery], reps: usize) -> Result<Vec<RichRow>> {
    let mut rows = Vec::with_capacity(queries.len());
    for q in queries {
        let conditions: Vec<Condition> = q.attrs.iter().map(|a| Condition::parse(a)).collect::<Result<_, _>>()?;
        let (matches, _) = client.rich(&conditions, &q.ask)?;
        if let (Ask::Count { .. }, Some(want)) = (&q.ask, q.expected_total)
            && matches != want
        {
            bail!("{}: the server counted {matches}, the corpus holds {want}", q.label());
        }
        let (mut c, mut s) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
        for _ in 0..reps {
            let t = Instant::now();
            let (_, server) = client.rich(&conditions, &q.ask)?;
            c.push(t.elapsed());
            s.extend(server);
        }
        let server = (s.len() == c.len()).then(|| Latencies::new(s));
        rows.push(RichRow { query: q.clone(), matches, client: Latencies::new(c), server });
    }
    Ok(rows)
}

/// Rough wall time of [`run`], for the estimate printed before a run.
pub fn estimate(queries: usize, reps: usize) -> Duration {
    Duration::from_millis((queries * (reps + 1)) as u64 * 20)
}
