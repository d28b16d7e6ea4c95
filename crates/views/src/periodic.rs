//! The one "every so often, on its own thread" loop of the view managers (a trail's delivery and Insights
//! start and stop views as trails change): a thread that calls `work` on its target every period until
//! stopped or until the target is gone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A running periodic thread. [`Periodic::stop`] wakes it and waits for it to end.
pub struct Periodic {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Periodic {
    /// Calls `work(&target)` every `every` on a thread named `name`, while `target` lives.
    pub fn start<T: Send + Sync + 'static>(
        name: &str,
        every: Duration,
        target: Weak<T>,
        work: fn(&T),
    ) -> std::io::Result<Periodic> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || {
            loop {
                {
                    let mut stopped = flag.0.lock();
                    if !*stopped {
                        flag.1.wait_for(&mut stopped, every);
                    }
                    if *stopped {
                        return;
                    }
                }
                match target.upgrade() {
                    Some(t) => work(&t),
                    None => return,
                }
            }
        })?;
        Ok(Periodic { stop, thread: Mutex::new(Some(thread)) })
    }

    /// Stops the thread (after the call of `work` in progress, if any) and waits for it.
    pub fn stop(&self) {
        {
            let mut stopped = self.stop.0.lock();
            *stopped = true;
            self.stop.1.notify_all();
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn works_until_stopped_and_ends_when_its_target_is_gone() {
        let count = Arc::new(AtomicU32::new(0));
        let p = Periodic::start("t", Duration::from_millis(1), Arc::downgrade(&count), |c| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        while count.load(Ordering::Relaxed) < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        p.stop();
        let after = count.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(count.load(Ordering::Relaxed), after, "no work after stop");
        let gone = Arc::new(AtomicU32::new(0));
        let p = Periodic::start("t", Duration::from_millis(1), Arc::downgrade(&gone), |_| {}).unwrap();
        drop(gone);
        p.stop();
    }
}
