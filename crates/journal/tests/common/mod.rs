//! Test support shared by the journal's integration tests: a scriptable fault hook and record generators.
#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use journal::{IoFaults, Journal, JournalOptions, Seq};

/// How much of the write that hits the crash point reaches the disk.
#[derive(Debug, Clone, Copy)]
pub enum Torn {
    Nothing,
    OneByte,
    Half,
    AllButOne,
}

/// A scriptable fault hook. Counts every write-side operation; can crash at operation `crash_at` (that operation
/// fails, a write first writes a torn prefix, and every later operation fails too), fail writes with ENOSPC, fail
/// the next fsyncs, or block fsyncs until released.
#[derive(Default)]
pub struct Faults {
    pub ops: AtomicUsize,
    pub crash_at: Option<(usize, Torn)>,
    crashed: AtomicBool,
    pub enospc_writes: AtomicUsize,
    pub enospc_creates: AtomicUsize,
    pub enospc_torn_bytes: AtomicUsize,
    pub failing_syncs: AtomicUsize,
    pub sync_gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash")
}

impl Faults {
    pub fn crash_at(op: usize, torn: Torn) -> Arc<Faults> {
        Arc::new(Faults { crash_at: Some((op, torn)), ..Faults::default() })
    }

    /// True if this operation is at or past the crash point.
    fn crash_now(&self) -> bool {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        if self.crashed.load(Ordering::SeqCst) {
            return true;
        }
        if self.crash_at.is_some_and(|(at, _)| n == at) {
            self.crashed.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    fn take(counter: &AtomicUsize) -> bool {
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

impl IoFaults for Faults {
    fn write(&self, _path: &Path, _offset: u64, len: usize) -> Result<(), (usize, io::Error)> {
        let first_crash = !self.crashed.load(Ordering::SeqCst);
        if self.crash_now() {
            let torn = match self.crash_at {
                Some((_, t)) if first_crash => t,
                _ => Torn::Nothing,
            };
            let n = match torn {
                Torn::Nothing => 0,
                Torn::OneByte => 1,
                Torn::Half => len / 2,
                Torn::AllButOne => len.saturating_sub(1),
            };
            return Err((n, crashed()));
        }
        if Self::take(&self.enospc_writes) {
            let n = self.enospc_torn_bytes.load(Ordering::SeqCst);
            return Err((n, io::Error::from_raw_os_error(28)));
        }
        Ok(())
    }

    fn sync(&self, _path: &Path) -> io::Result<()> {
        if self.crash_now() {
            return Err(crashed());
        }
        if let Some(gate) = self.sync_gate.lock().unwrap().as_ref() {
            let _ = gate.recv();
        }
        if Self::take(&self.failing_syncs) {
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    }

    fn create(&self, _path: &Path) -> io::Result<()> {
        if self.crash_now() {
            return Err(crashed());
        }
        if Self::take(&self.enospc_creates) {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }

    fn truncate(&self, _path: &Path, _len: u64) -> io::Result<()> {
        if self.crash_now() {
            return Err(crashed());
        }
        Ok(())
    }
}

/// Small blocks and segments so that a few records exercise block cuts and segment rolls.
pub fn small_opts(dir: &Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.block_bytes = 200;
    o.segment_bytes = 600;
    o
}

pub fn with_faults(dir: &Path, faults: Arc<Faults>) -> JournalOptions {
    let mut o = small_opts(dir);
    o.faults = Some(faults);
    o
}

/// A recognisable, somewhat compressible record.
pub fn record(batch: usize, i: usize) -> Vec<u8> {
    format!("{{\"eventName\":\"CreateUser\",\"batch\":{batch},\"i\":{i},\"pad\":\"{}\"}}", "ab".repeat(i % 17))
        .into_bytes()
}

pub fn batch(batch_no: usize, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| record(batch_no, i)).collect()
}

/// Everything the journal holds, via scan.
pub fn all_records(j: &Journal) -> Vec<Vec<u8>> {
    j.scan(Seq(1)).map(|r| r.expect("scan").1).collect()
}
