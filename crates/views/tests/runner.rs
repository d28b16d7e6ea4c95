//! The view runner against a small in-memory feed (and the journal feed against a real journal): order,
//! checkpoints, restart, retries, ticks, stop, lag.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use model::Seq;
use parking_lot::{Condvar, Mutex};
use views::{Feed, JournalFeed, RunOptions, Runner, View, ViewError, ViewSet};

/// Seq `i + 1` is `records[i]`; `None` is a record that cannot be decoded.
#[derive(Default)]
struct MemFeed {
    records: Mutex<Vec<Option<u64>>>,
    cv: Condvar,
}

impl MemFeed {
    fn push(&self, values: impl IntoIterator<Item = Option<u64>>) {
        self.records.lock().extend(values);
        self.cv.notify_all();
    }
}

impl Feed for MemFeed {
    type Item = u64;

    fn durable(&self) -> Option<Seq> {
        let n = self.records.lock().len() as u64;
        (n > 0).then_some(Seq(n))
    }

    fn wait_beyond(&self, seq: Option<Seq>, timeout: Duration) -> Option<Seq> {
        let mut r = self.records.lock();
        if (r.len() as u64) <= seq.map_or(0, |s| s.0) {
            self.cv.wait_for(&mut r, timeout);
        }
        let n = r.len() as u64;
        (n > 0).then_some(Seq(n))
    }

    fn read(&self, from: Seq, to: Seq) -> Result<Vec<(Seq, u64)>, ViewError> {
        let r = self.records.lock();
        Ok((from.0..=to.0).filter_map(|s| r[s as usize - 1].map(|v| (Seq(s), v))).collect())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("injected failure")]
struct Injected;

/// Records what it is given; can fail its next applies (after taking in `partial` items of the batch).
#[derive(Default, Clone)]
struct Probe {
    applied: Arc<Mutex<Vec<(Seq, u64)>>>,
    throughs: Arc<Mutex<Vec<Seq>>>,
    checkpoint: Arc<Mutex<Option<Seq>>>,
    fail_next: Arc<AtomicU32>,
    partial: usize,
    ticks: Arc<AtomicU64>,
    tick_every: Option<Duration>,
    closed: Arc<AtomicBool>,
}

struct ProbeView(Probe, &'static str);

impl View for ProbeView {
    type Item = u64;

    fn name(&self) -> &str {
        self.1
    }

    fn checkpoint(&self) -> Option<Seq> {
        *self.0.checkpoint.lock()
    }

    fn apply(&mut self, items: Vec<(Seq, u64)>, through: Seq) -> Result<(), ViewError> {
        let p = &self.0;
        if p.fail_next.load(SeqCst) > 0 {
            p.fail_next.fetch_sub(1, SeqCst);
            for &(seq, v) in items.iter().take(p.partial) {
                p.applied.lock().push((seq, v));
                *p.checkpoint.lock() = Some(seq);
            }
            return Err(ViewError::apply(Injected));
        }
        p.applied.lock().extend(items);
        p.throughs.lock().push(through);
        *p.checkpoint.lock() = Some(through);
        Ok(())
    }

    fn tick(&mut self) -> Result<(), ViewError> {
        self.0.ticks.fetch_add(1, SeqCst);
        Ok(())
    }

    fn tick_every(&self) -> Option<Duration> {
        self.0.tick_every
    }

    fn close(&mut self) -> Result<(), ViewError> {
        self.0.closed.store(true, SeqCst);
        Ok(())
    }
}

fn setup() -> (Arc<MemFeed>, Arc<ViewSet>) {
    let feed = Arc::new(MemFeed::default());
    let f = feed.clone();
    (feed, Arc::new(ViewSet::new(move || f.durable())))
}

fn opts(batch: u64) -> RunOptions {
    RunOptions { batch, poll: Duration::from_millis(20), max_backoff: Duration::from_millis(20), background: false }
}

fn values(applied: &[(Seq, u64)]) -> Vec<u64> {
    applied.iter().map(|(s, _)| s.0).collect()
}

/// Polls `cond` until it holds (the deadline only bounds a broken run; nothing is asserted about time).
fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

#[test]
fn steps_apply_bounded_batches_in_seq_order_and_move_the_checkpoint_to_through() {
    let (feed, set) = setup();
    let probe = Probe::default();
    let mut runner = Runner::new(ProbeView(probe.clone(), "probe"), feed.clone(), &set, opts(3)).unwrap();
    assert_eq!(runner.step().unwrap(), 0, "nothing durable yet");
    // Seq 7 cannot be decoded: the batch that holds it still ends at 7.
    feed.push([Some(10), Some(20), Some(30), Some(40), Some(50), Some(60), None]);
    assert_eq!(runner.step().unwrap(), 3);
    assert_eq!(runner.step().unwrap(), 3);
    assert_eq!(runner.step().unwrap(), 1);
    assert_eq!(runner.step().unwrap(), 0);
    assert_eq!(values(&probe.applied.lock()), [1, 2, 3, 4, 5, 6]);
    assert_eq!(probe.applied.lock()[5], (Seq(6), 60));
    assert_eq!(*probe.throughs.lock(), [Seq(3), Seq(6), Seq(7)]);
    assert_eq!(*probe.checkpoint.lock(), Some(Seq(7)));
    let p = runner.progress();
    assert_eq!((p.applied(), p.applied_records(), p.skipped(), p.errors()), (Some(Seq(7)), 6, 1, 0));
}

#[test]
fn a_restarted_view_resumes_after_its_checkpoint() {
    let (feed, set) = setup();
    feed.push((1..=10).map(Some));
    let probe = Probe::default();
    let mut runner = Runner::new(ProbeView(probe.clone(), "probe"), feed.clone(), &set, opts(4)).unwrap();
    runner.step().unwrap();
    drop(runner);
    assert_eq!(values(&probe.applied.lock()), [1, 2, 3, 4]);
    // The view comes back with the checkpoint it kept; the runner feeds only what follows it.
    assert!(set.statuses().is_empty(), "a dropped runner leaves the set");
    let mut runner = Runner::new(ProbeView(probe.clone(), "probe"), feed.clone(), &set, opts(4)).unwrap();
    assert_eq!(runner.progress().applied(), Some(Seq(4)));
    assert_eq!(runner.catch_up().unwrap(), 6);
    assert_eq!(values(&probe.applied.lock()), (1..=10).collect::<Vec<_>>());
}

#[test]
fn a_failing_apply_is_counted_and_retried_without_skipping_or_repeating_records() {
    let (feed, set) = setup();
    // Each failure takes in two records of its batch before failing.
    let probe = Probe { partial: 2, ..Probe::default() };
    probe.fail_next.store(3, SeqCst);
    let handle = views::spawn(ProbeView(probe.clone(), "probe"), feed.clone(), &set, opts(5)).unwrap();
    feed.push((1..=20).map(Some));
    assert!(handle.wait_for(Seq(20), Duration::from_secs(20)));
    assert_eq!(values(&probe.applied.lock()), (1..=20).collect::<Vec<_>>());
    assert_eq!(handle.progress().errors(), 3);
    assert_eq!(set.statuses()[0].errors, 3);
    handle.stop();
}

#[test]
fn a_failing_step_inline_returns_the_error_and_the_next_step_resumes_from_the_checkpoint() {
    let (feed, set) = setup();
    feed.push((1..=6).map(Some));
    let probe = Probe { partial: 1, ..Probe::default() };
    probe.fail_next.store(1, SeqCst);
    let mut runner = Runner::new(ProbeView(probe.clone(), "probe"), feed.clone(), &set, opts(10)).unwrap();
    assert!(matches!(runner.catch_up(), Err(ViewError::Apply(_))));
    assert_eq!(runner.progress().applied(), Some(Seq(1)), "the part taken in before the failure");
    assert_eq!(runner.catch_up().unwrap(), 5);
    assert_eq!(values(&probe.applied.lock()), [1, 2, 3, 4, 5, 6]);
}

#[test]
fn ticks_come_without_records() {
    let (feed, set) = setup();
    let probe = Probe { tick_every: Some(Duration::from_millis(1)), ..Probe::default() };
    let handle = views::spawn(ProbeView(probe.clone(), "probe"), feed, &set, opts(10)).unwrap();
    assert!(eventually(|| probe.ticks.load(SeqCst) >= 3), "ticks: {}", probe.ticks.load(SeqCst));
    assert!(probe.applied.lock().is_empty());
    drop(handle);
}

#[test]
fn stop_closes_the_view_joins_its_thread_and_removes_it_from_the_set() {
    let (feed, set) = setup();
    let probe = Probe::default();
    let handle = views::spawn(ProbeView(probe.clone(), "probe"), feed.clone(), &set, opts(10)).unwrap();
    feed.push((1..=3).map(Some));
    assert!(handle.wait_for(Seq(3), Duration::from_secs(20)));
    assert!(matches!(
        views::spawn(ProbeView(Probe::default(), "probe"), feed.clone(), &set, opts(10)),
        Err(ViewError::DuplicateName { .. })
    ));
    handle.stop();
    assert!(probe.closed.load(SeqCst));
    assert!(set.statuses().is_empty());
    feed.push([Some(4)]);
    handle.stop();
    assert!(!handle.wait_for(Seq(4), Duration::from_millis(50)), "a stopped view applies nothing");
    assert_eq!(values(&probe.applied.lock()), [1, 2, 3]);
}

#[test]
fn lag_is_the_journal_head_minus_what_the_view_applied() {
    let (feed, set) = setup();
    let probe = Probe::default();
    let mut runner = Runner::new(ProbeView(probe, "probe"), feed.clone(), &set, opts(2)).unwrap();
    feed.push((1..=5).map(Some));
    assert_eq!(set.statuses()[0].lag, 5);
    runner.step().unwrap();
    assert_eq!(set.statuses()[0].lag, 3);
    runner.catch_up().unwrap();
    let s = &set.statuses()[0];
    assert_eq!((s.name.as_str(), s.applied, s.lag), ("probe", Some(Seq(5)), 0));
    let mut text = String::new();
    set.render(&mut text);
    assert!(text.contains("opentrail_view_lag_events{view=\"probe\"} 0\n"), "{text}");
    assert!(text.contains("opentrail_view_applied_seq{view=\"probe\"} 5\n"), "{text}");
    assert!(text.contains("opentrail_view_errors_total{view=\"probe\"} 0\n"), "{text}");
}

/// Collects records from the journal feed.
struct Collect(Arc<Mutex<Vec<(Seq, String)>>>, Option<Seq>);

impl View for Collect {
    type Item = model::StoredRecord;

    fn name(&self) -> &str {
        "collect"
    }

    fn checkpoint(&self) -> Option<Seq> {
        self.1
    }

    fn apply(&mut self, items: Vec<(Seq, model::StoredRecord)>, through: Seq) -> Result<(), ViewError> {
        self.0.lock().extend(items.into_iter().map(|(s, r)| (s, r.into_record().unwrap().fields.event_id)));
        self.1 = Some(through);
        Ok(())
    }
}

#[test]
fn the_journal_feed_decodes_records_with_provenance_and_moves_past_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = journal::Journal::open(journal::JournalOptions::new(dir.path())).unwrap();
    let rec = |id: &str| {
        format!(
            r#"{{"eventID":"{id}","eventTime":"2020-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}}"#
        )
    };
    let framed = model::Provenance::SelfAudit.frame(rec("a").as_bytes());
    // A payload whose provenance frame is damaged (a frame tag with a length past its end) is moved past.
    journal.append(vec![framed, vec![1, 9], rec("c").into_bytes()]).unwrap();
    let feed = Arc::new(JournalFeed::new(journal.clone()));
    let got = feed.read(Seq(1), Seq(3)).unwrap();
    assert_eq!(got.iter().map(|(s, _)| s.0).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(got[0].1.provenance, model::Provenance::SelfAudit);
    assert_eq!(got[1].1.json(), rec("c"));
    let j = journal.clone();
    let set = Arc::new(ViewSet::new(move || j.durable_seq()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handle = views::spawn(Collect(seen.clone(), None), feed, &set, RunOptions::default()).unwrap();
    assert!(handle.wait_for(Seq(3), Duration::from_secs(20)));
    journal.append(vec![rec("d").into_bytes()]).unwrap();
    assert!(handle.wait_for(Seq(4), Duration::from_secs(20)));
    let ids: Vec<(u64, String)> = seen.lock().iter().map(|(s, id)| (s.0, id.clone())).collect();
    assert_eq!(ids, [(1, "a".to_string()), (3, "c".to_string()), (4, "d".to_string())]);
    assert_eq!(handle.progress().skipped(), 1);
    handle.stop();
}
