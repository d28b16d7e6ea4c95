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
    /// Run the view's threads (when spawned) at a lower CPU priority ([`BACKGROUND_NICE`]): on a busy
    /// machine they yield to ingest and the index, and catch up when it is quiet.
    pub background: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            batch: DEFAULT_BATCH,
            poll: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            background: false,
        }
    }
}

/// Hard-coded: the nice value of a background view's threads (Linux; elsewhere they keep the default).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`]. On Linux the nice value is per thread:
/// `setpriority(PRIO_PROCESS, tid, …)` sets it for that thread alone. Failure (a sandbox refusing it) only
/// leaves the thread at its priority, which is logged.
fn lower_priority_of_this_thread(name: &str) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: both are plain system calls with integer arguments and no pointers: gettid cannot fail,
        // and setpriority on our own thread id only changes that thread's scheduling priority (or fails
        // with an error code, handled below). No memory is read or written through them.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE)
        };
        if rc != 0 {
            tracing::warn!(view = name, error = %std::io::Error::last_os_error(), "cannot lower the view thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = name;
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
        let read = self.feed.read(Seq(from), Seq(to));
        self.apply_batch(from, to, read)
    }

    /// Applies one batch read for `[from, to]` (or counts its read failure) and publishes the progress;
    /// on `Err` the position goes back to the view's checkpoint.
    fn apply_batch(
        &mut self,
        from: u64,
        to: u64,
        read: Result<Vec<(Seq, V::Item)>, ViewError>,
    ) -> Result<u64, ViewError> {
        let applied = read.and_then(|items| {
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
            .spawn(move || {
                if self.opts.background {
                    lower_priority_of_this_thread(self.view.name());
                }
                self.run(&flag)
            })
            .map_err(|source| ViewError::Spawn { name: name.clone(), source })?;
        Ok(ViewHandle { name, progress, stop, thread: Mutex::new(Some(thread)) })
    }

    /// The view's own thread: a reader thread reads the next batch from the feed while this one applies the
    /// last (decoding and applying overlap); a failure drops the reader and starts a new one from the view's
    /// checkpoint after a back-off.
    fn run(mut self, stop: &Stop) {
        let mut backoff: Option<Duration> = None;
        let mut reader: Option<Reader<V::Item>> = None;
        while !stop.is_set() {
            let before = self.position;
            self.tick_if_due();
            if self.position != before {
                // A failed tick sent the view back to its checkpoint: read again from there.
                reader = None;
            }
            let r = reader.get_or_insert_with(|| {
                Reader::start(self.view.name(), self.feed.clone(), self.position, self.opts.clone())
            });
            let mut timeout = self.opts.poll;
            if let Some(at) = self.next_tick {
                timeout = timeout.min(at.saturating_duration_since(Instant::now()));
            }
            let (from, to, read) = match r.recv(timeout) {
                Some(Some(batch)) => batch,
                Some(None) => continue,
                None => {
                    // The reader could not start or ended: start another.
                    reader = None;
                    stop.sleep(MIN_BACKOFF);
                    continue;
                }
            };
            match self.apply_batch(from, to, read) {
                Ok(_) => backoff = None,
                Err(e) => {
                    reader = None;
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
        drop(reader);
        if let Err(e) = self.view.close() {
            tracing::error!(view = self.view.name(), error = %e, "view failed to close");
        }
    }
}

/// Hard-coded: batches a view's reader may have read ahead of what the view applied (bounds its memory).
const READ_AHEAD: usize = 2;

type Batch<T> = (u64, u64, Result<Vec<(Seq, T)>, ViewError>);

/// A view's reader thread: reads batches from the feed, in seq order from where it was started, into a
/// bounded channel. Dropped (the view applied a batch it could not, or stops): it is told to stop and joined.
struct Reader<T> {
    rx: Option<std::sync::mpsc::Receiver<Batch<T>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Reader<T> {
    fn start<F: Feed<Item = T> + ?Sized + 'static>(
        name: &str,
        feed: Arc<F>,
        position: Option<Seq>,
        opts: RunOptions,
    ) -> Reader<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch<T>>(READ_AHEAD);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let reader_name = name.to_string();
        let thread = std::thread::Builder::new().name(format!("read-{name}").replace('\0', "")).spawn(move || {
            if opts.background {
                lower_priority_of_this_thread(&reader_name);
            }
            let mut pos = position.map_or(0, |s| s.0);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let head = feed.durable().map_or(0, |s| s.0);
                if head <= pos {
                    feed.wait_beyond((pos > 0).then_some(Seq(pos)), opts.poll);
                    continue;
                }
                let (from, to) = (pos + 1, head.min(pos + opts.batch.max(1)));
                let read = feed.read(Seq(from), Seq(to));
                let failed = read.is_err();
                if tx.send((from, to, read)).is_err() || failed {
                    return;
                }
                pos = to;
            }
        });
        match thread {
            Ok(t) => Reader { rx: Some(rx), stop, thread: Some(t) },
            Err(e) => {
                tracing::error!(view = name, error = %e, "cannot start the view's reader thread");
                Reader { rx: None, stop, thread: None }
            }
        }
    }

    /// The next batch: `Some(Some(_))`; `Some(None)` when none came within `timeout`; `None` when the reader
    /// has ended (after a read error it sent) or never started.
    fn recv(&self, timeout: Duration) -> Option<Option<Batch<T>>> {
        match self.rx.as_ref()?.recv_timeout(timeout) {
            Ok(b) => Some(Some(b)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Some(None),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
        }
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Dropping the receiver wakes a reader blocked on a full channel (its send fails).
        self.rx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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
