//! Test support shared by the journal's integration tests: a scriptable fault hook and record generators.

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
    /// File name of each operation's target, in order (the op number is the index).
    pub log: Mutex<Vec<String>>,
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash")
}

impl Faults {
    pub fn crash_at(op: usize, torn: Torn) -> Arc<Faults> {
        Arc::new(Faults { crash_at: Some((op, torn)), ..Faults::default() })
    }

    /// True if this operation is at or past the crash point.
    fn crash_now(&self, path: &Path) -> bool {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let name = path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
        self.log.lock().unwrap().push(name);
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
    fn write(&self, path: &Path, _offset: u64, len: usize) -> Result<(), (usize, io::Error)> {
        let first_crash = !self.crashed.load(Ordering::SeqCst);
        if self.crash_now(path) {
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

    fn sync(&self, path: &Path) -> io::Result<()> {
        if self.crash_now(path) {
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

    fn create(&self, path: &Path) -> io::Result<()> {
        if self.crash_now(path) {
            return Err(crashed());
        }
        if Self::take(&self.enospc_creates) {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }

    fn rename(&self, _from: &Path, to: &Path) -> io::Result<()> {
        if self.crash_now(to) {
            return Err(crashed());
        }
        Ok(())
    }

    fn truncate(&self, path: &Path, _len: u64) -> io::Result<()> {
        if self.crash_now(path) {
            return Err(crashed());
        }
        Ok(())
    }
}

/// Small blocks and segments so that a few records exercise block cuts and segment rolls, and a dictionary
/// trained after the first ~1 KiB of records, so that later frames use it.
pub fn small_opts(dir: &Path) -> JournalOptions {
    let mut o = JournalOptions::new(dir);
    o.block_bytes = 200;
    o.segment_bytes = 600;
    o.dict_bytes = 1024;
    o.dict_train_bytes = 1024;
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

/// The codec byte of every frame of every segment of `dir`, in order: 0 raw, 1 zstd, 2 zstd with a dictionary.
pub fn frame_codecs(dir: &Path) -> Vec<u8> {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let mut codecs = Vec::new();
    for seg in segs {
        let bytes = std::fs::read(seg).unwrap();
        let mut at = 0;
        while at + 32 <= bytes.len() {
            codecs.push(bytes[at + 5]);
            at += 32 + u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        }
    }
    codecs
}
