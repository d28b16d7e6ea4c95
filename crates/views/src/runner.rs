//! The one loop every view runs: wait for the feed to pass the checkpoint (or a tick to come due), read a
//! bounded batch, apply it, publish progress; failures are logged, counted and retried with back-off.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use model::Seq;
use parking_lot::{Condvar, Mutex};

use crate::registry::{Progress, Registration, ViewSet};
use crate::{Feed, View, ViewError};

/// Hard-coded default of [`RunOptions::batch`]: seqs per apply (bounds the memory of one batch).
pub const DEFAULT_BATCH: u64 = 8192;

/// Hard-coded: the first wait after a failure; it doubles with each failure in a row up to
/// [`RunOptions::max_backoff`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);

/// Hard-coded: the shortest tick interval honoured (a zero interval would spin).
const MIN_TICK: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The most seqs read and applied in one batch.
    pub batch: u64,
    /// The longest wait for new records before the loop looks at its stop flag again.
    pub poll: Duration,
    /// The longest wait between retries of a failing view.
    pub max_backoff: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { batch: DEFAULT_BATCH, poll: Duration::from_millis(100), max_backoff: Duration::from_secs(5) }
    }
}

/// A view bound to its feed and registered in a [`ViewSet`]. Step it inline ([`Runner::step`],
/// [`Runner::catch_up`]) or hand it to its own thread ([`Runner::spawn`]). Dropping it removes the view
/// from the set.
pub struct Runner<V: View, F: Feed<Item = V::Item> + ?Sized> {
    view: V,
    feed: Arc<F>,
    registration: Registration,
    opts: RunOptions,
    /// The last seq applied: the view's checkpoint, tracked here between applies.
    position: Option<Seq>,
    next_tick: Option<Instant>,
}

impl<V, F> Runner<V, F>
where
    V: View,
    F: Feed<Item = V::Item> + ?Sized + 'static,
{
    /// Registers the view in `set` under its name (which must be free), starting from its checkpoint.
    pub fn new(view: V, feed: Arc<F>, set: &Arc<ViewSet>, opts: RunOptions) -> Result<Self, ViewError> {
        let position = view.checkpoint();
        let registration = set.register(view.name(), position)?;
        let next_tick = view.tick_every().map(|d| Instant::now() + d.max(MIN_TICK));
        Ok(Runner { view, feed, registration, opts, position, next_tick })
    }

    pub fn view(&self) -> &V {
        &self.view
    }

    pub fn progress(&self) -> &Arc<Progress> {
        self.registration.progress()
    }

    /// Applies the next batch if the feed has one: at most [`RunOptions::batch`] seqs after the checkpoint.
    /// Returns how many seqs it covered (0: nothing to do). On `Err` the error is counted, the position is
    /// re-read from the view's checkpoint, and the next step retries from there.
    pub fn step(&mut self) -> Result<u64, ViewError> {
        let from = self.position.map_or(1, |s| s.0 + 1);
        let Some(head) = self.feed.durable().filter(|h| h.0 >= from) else { return Ok(0) };
        let to = head.0.min(from + self.opts.batch.max(1) - 1);
        let applied = self.feed.read(Seq(from), Seq(to)).and_then(|items| {
            let n = items.len() as u64;
            self.view.apply(items, Seq(to)).map(|()| n)
        });
        let progress = self.registration.progress();
        match applied {
            Ok(n) => {
                let covered = to - from + 1;
                self.position = Some(Seq(to));
                progress.publish(Seq(to), n, covered.saturating_sub(n));
                Ok(covered)
            }
            Err(e) => {
                progress.count_error();
                // A failed apply may have taken in part of its batch: the view's checkpoint says how much.
                self.position = self.view.checkpoint();
                progress.reset(self.position);
                Err(e)
            }
        }
    }

    /// Steps until the view has applied everything the feed had when called (a replay before serving).
    /// Returns how many seqs it covered; the first error stops it.
    pub fn catch_up(&mut self) -> Result<u64, ViewError> {
        let target = self.feed.durable();
        let mut covered = 0;
        while self.position < target {
            match self.step()? {
                0 => break,
                n => covered += n,
            }
        }
        Ok(covered)
    }

    /// Calls [`View::tick`] if it is due.
    fn tick_if_due(&mut self) {
        let Some(at) = self.next_tick else { return };
        if Instant::now() < at {
            return;
        }
        if let Err(e) = self.view.tick() {
            let progress = self.registration.progress();
            progress.count_error();
            // A failed tick may have dropped work taken in since the checkpoint (a trail's log file that could
            // not be staged): feed again from the view's checkpoint, as after a failed apply.
            self.position = self.view.checkpoint();
            progress.reset(self.position);
            tracing::warn!(view = self.view.name(), error = %e, "view tick failed; the next tick retries");
        }
        self.next_tick = self.view.tick_every().map(|d| Instant::now() + d.max(MIN_TICK));
    }

    /// Runs the view on its own thread (named `view-<name>`) until the handle is stopped or dropped.
    pub fn spawn(self) -> Result<ViewHandle, ViewError> {
        let name = self.view.name().to_string();
        let progress = self.registration.progress().clone();
        let stop = Arc::new(Stop::default());
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("view-{name}").replace('\0', ""))
            .spawn(move || self.run(&flag))
            .map_err(|source| ViewError::Spawn { name: name.clone(), source })?;
        Ok(ViewHandle { name, progress, stop, thread: Mutex::new(Some(thread)) })
    }

    fn run(mut self, stop: &Stop) {
        let mut backoff: Option<Duration> = None;
        while !stop.is_set() {
            self.tick_if_due();
            match self.step() {
                Ok(0) => {
                    backoff = None;
                    let mut timeout = self.opts.poll;
                    if let Some(at) = self.next_tick {
                        timeout = timeout.min(at.saturating_duration_since(Instant::now()));
                    }
                    self.feed.wait_beyond(self.position, timeout);
                }
                Ok(_) => backoff = None,
                Err(e) => {
                    let wait = backoff.map_or(MIN_BACKOFF, |b| (b * 2).min(self.opts.max_backoff));
                    let retry_in_ms = wait.as_millis() as u64;
                    if backoff.is_none() {
                        tracing::error!(view = self.view.name(), error = %e, retry_in_ms, "view failed to apply records; retrying");
                    } else {
                        tracing::warn!(view = self.view.name(), error = %e, retry_in_ms, "view still failing; retrying");
                    }
                    backoff = Some(wait);
                    stop.sleep(wait);
                }
            }
        }
        if let Err(e) = self.view.close() {
            tracing::error!(view = self.view.name(), error = %e, "view failed to close");
        }
    }
}

/// Registers `view` in `set` and runs it on its own thread; see [`Runner`].
pub fn spawn<V, F>(view: V, feed: Arc<F>, set: &Arc<ViewSet>, opts: RunOptions) -> Result<ViewHandle, ViewError>
where
    V: View,
    F: Feed<Item = V::Item> + ?Sized + 'static,
{
    Runner::new(view, feed, set, opts)?.spawn()
}

#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    fn set(&self) {
        *self.stopped.lock() = true;
        self.cv.notify_all();
    }

    fn is_set(&self) -> bool {
        *self.stopped.lock()
    }

    /// Sleeps for `d` unless stopped first.
    fn sleep(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut stopped = self.stopped.lock();
        while !*stopped {
            if self.cv.wait_until(&mut stopped, deadline).timed_out() {
                return;
            }
        }
    }
}

/// A view running on its own thread. [`ViewHandle::stop`] (or dropping the handle) stops it after its
/// current batch, calls [`View::close`], joins the thread and removes the view from its set.
pub struct ViewHandle {
    name: String,
    progress: Arc<Progress>,
    stop: Arc<Stop>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ViewHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// The last seq applied.
    pub fn applied(&self) -> Option<Seq> {
        self.progress.applied()
    }

    /// Blocks until every seq up to `seq` is applied, or `timeout` passes; true when it is.
    pub fn wait_for(&self, seq: Seq, timeout: Duration) -> bool {
        self.progress.wait_for(seq, timeout)
    }

    /// Stops the view and joins its thread; waits at most for the current batch and one poll interval.
    /// Idempotent. Must not be called from the view's own thread.
    pub fn stop(&self) {
        self.stop.set();
        if let Some(thread) = self.thread.lock().take()
            && thread.join().is_err()
        {
            tracing::error!(view = %self.name, "view thread panicked");
        }
    }
}

impl Drop for ViewHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
