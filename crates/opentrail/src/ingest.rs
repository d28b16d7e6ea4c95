//! `opentrail ingest`: send CloudTrail records to a server from files, stdin, or whole folders (a synced
//! `AWSLogs/` tree): log files are found recursively, digests and other objects skipped and counted, one
//! progress bar covers everything, and the server's dedupe by eventID makes a re-run store nothing twice.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{Context, Result, anyhow};
use client::Client;
use serde_json::Value;

/// Hard-coded: requests in flight at once during `opentrail ingest`.
const INGEST_PARALLELISM: usize = 3;

/// One request's worth of records from one file.
pub(crate) struct Chunk {
    pub file: String,
    pub first_index: usize,
    pub records: Vec<Vec<u8>>,
}

/// What the server said about everything sent.
#[derive(Default)]
struct Tally {
    records: u64,
    stored: u64,
    duplicates: u64,
    failed: u64,
}

/// What to read: the inputs named, and the files found in the folders among them.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Files (or `-`, stdin), in the order they are read: each folder's log files sorted by path.
    pub files: Vec<PathBuf>,
    /// Their total size in bytes, as stored (compressed); stdin counts nothing.
    pub bytes: u64,
    /// Digest files skipped (`CloudTrail-Digest/` folders, `_CloudTrail-Digest_` names).
    pub digests: u64,
    /// Other objects skipped in folders: not `.json.gz` or `.json`, hidden (`.name`), or not a regular file.
    pub other: u64,
}

/// Why a file found in a folder is not a log file to send.
#[derive(Debug, PartialEq)]
pub(crate) enum Skip {
    Digest,
    Other,
}

/// A file in a folder walk: a log file (`None`), or why it is skipped. `rel` is its path below the folder.
pub(crate) fn classify(rel: &Path) -> Option<Skip> {
    if is_digest(rel) {
        return Some(Skip::Digest);
    }
    let hidden = rel.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    let name = rel.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    if hidden || !(name.ends_with(".json.gz") || name.ends_with(".json")) {
        return Some(Skip::Other);
    }
    None
}

/// A CloudTrail digest file: under a `CloudTrail-Digest` folder, or named `…_CloudTrail-Digest_…`.
fn is_digest(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "CloudTrail-Digest")
        || path.file_name().is_some_and(|n| n.to_string_lossy().contains("_CloudTrail-Digest_"))
}

impl Plan {
    /// Files are taken as named (any name: NDJSON, `.gz`, …) unless they are digests; folders are walked.
    pub(crate) fn gather(inputs: &[String]) -> Result<Plan> {
        let mut plan = Plan::default();
        for input in inputs {
            if input == "-" {
                plan.files.push(PathBuf::from("-"));
                continue;
            }
            let path = PathBuf::from(input);
            let meta = std::fs::metadata(&path).with_context(|| format!("open {input}"))?;
            if meta.is_dir() {
                let mut found = Vec::new();
                walk(&path, &path, &mut found, &mut plan)?;
                found.sort();
                for (file, size) in found {
                    plan.files.push(file);
                    plan.bytes += size;
                }
            } else if is_digest(&path) {
                plan.digests += 1;
            } else {
                plan.files.push(path);
                plan.bytes += meta.len();
            }
        }
        Ok(plan)
    }
}

/// The log files below `dir` (with their sizes) into `found`; skipped files counted in `plan`.
fn walk(root: &Path, dir: &Path, found: &mut Vec<(PathBuf, u64)>, plan: &mut Plan) -> Result<()> {
    walk_folder(root, dir, found, &mut plan.digests, &mut plan.other)
}

/// The log files below `dir` (with their sizes) into `found`; digests and other files skipped and counted.
/// Symbolic links to files are followed, to folders not (a link cycle cannot trap the walk).
pub(crate) fn walk_folder(
    root: &Path,
    dir: &Path,
    found: &mut Vec<(PathBuf, u64)>,
    digests: &mut u64,
    other: &mut u64,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("read folder {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("read folder {}", dir.display()))?;
        let path = entry.path();
        let kind = entry.file_type().with_context(|| format!("stat {}", path.display()))?;
        if kind.is_dir() {
            walk_folder(root, &path, found, digests, other)?;
            continue;
        }
        let meta = std::fs::metadata(&path).ok();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        match (meta.filter(|m| m.is_file()), classify(rel)) {
            (Some(m), None) => found.push((path, m.len())),
            (_, Some(Skip::Digest)) => *digests += 1,
            _ => *other += 1,
        }
    }
    Ok(())
}

/// `opentrail ingest`: each folder or s3:// source is imported with its own position, one after another;
/// the files named (and stdin) are then sent together. Exit status 1 when any part says so.
pub fn run(opts: &crate::import::ImportOptions, inputs: &[String]) -> Result<std::process::ExitCode> {
    let (sources, files): (Vec<String>, Vec<String>) =
        inputs.iter().cloned().partition(|i| crate::import::is_import_source(i));
    if sources.len() > 1 && opts.state.is_some() {
        anyhow::bail!("--state is the position of one import: give one folder or s3:// source with it");
    }
    let mut failed = false;
    for source in &sources {
        let code = crate::import::import(source, opts).with_context(|| format!("import {source}"))?;
        failed |= code != std::process::ExitCode::SUCCESS;
    }
    if !files.is_empty() {
        failed |= ingest(opts.endpoint, opts.batch, &files)? != std::process::ExitCode::SUCCESS;
    }
    Ok(if failed { std::process::ExitCode::from(1) } else { std::process::ExitCode::SUCCESS })
}

pub fn ingest(endpoint: &str, batch: usize, inputs: &[String]) -> Result<std::process::ExitCode> {
    let batch = batch.max(1);
    let plan = Plan::gather(inputs)?;
    let client = std::sync::Arc::new(Client::new(endpoint)?);
    if plan.digests + plan.other > 0 {
        note!(
            "{} log files to send; skipping {} digest files and {} other files",
            plan.files.len(),
            plan.digests,
            plan.other
        );
    }
    let progress = progress_bar(plan.bytes);
    let (tx, rx) = mpsc::sync_channel::<Chunk>(INGEST_PARALLELISM * 2);
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let (res_tx, res_rx) = mpsc::channel::<Result<(Chunk, Value)>>();
    let workers: Vec<_> = (0..INGEST_PARALLELISM)
        .map(|_| {
            let rx = rx.clone();
            let res_tx = res_tx.clone();
            let client = client.clone();
            std::thread::spawn(move || {
                while let Ok(chunk) = rx.lock().map_err(|_| ()).and_then(|r| r.recv().map_err(|_| ())) {
                    let result = send_chunk(&client, &chunk).map(|v| (chunk, v));
                    if res_tx.send(result).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(res_tx);
    let reporter = {
        let progress = progress.clone();
        std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut first_error = None;
            for r in res_rx {
                match r {
                    Ok((chunk, v)) => {
                        tally.records += chunk.records.len() as u64;
                        tally.stored += v["stored"].as_u64().unwrap_or(0);
                        tally.duplicates += v["duplicates"].as_u64().unwrap_or(0);
                        for f in v["failed"].as_array().into_iter().flatten() {
                            tally.failed += 1;
                            let index = chunk.first_index as u64 + f["index"].as_u64().unwrap_or(0);
                            progress.suspend(|| {
                                note!(
                                    "{}: record {}: {}: {}",
                                    chunk.file,
                                    index + 1,
                                    f["errorCode"].as_str().unwrap_or("?"),
                                    f["errorMessage"].as_str().unwrap_or("")
                                )
                            });
                        }
                        progress.set_message(format!(
                            "{} records: {} new, {} already stored",
                            tally.records, tally.stored, tally.duplicates
                        ));
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            (tally, first_error)
        })
    };
    // A file that cannot be read is reported and the others are still sent (a re-run sends it again,
    // and what was already stored from it is not stored twice).
    let mut unreadable = 0u64;
    for file in &plan.files {
        let name = file.display().to_string();
        if let Err(e) = read_chunks(&name, batch, &tx, &progress) {
            if e.to_string() == SENDERS_GONE {
                break;
            }
            unreadable += 1;
            progress.suspend(|| note!("{name}: {e:#}"));
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
    let (tally, send_error) = reporter.join().map_err(|_| anyhow!("reporter thread panicked"))?;
    progress.finish_and_clear();
    note!(
        "{} new, {} already stored, {} failed ({} records from {} files)",
        tally.stored,
        tally.duplicates,
        tally.failed,
        tally.records,
        plan.files.len()
    );
    if let Some(e) = send_error {
        return Err(e);
    }
    if unreadable > 0 {
        note!("{unreadable} files could not be read");
    }
    Ok(if tally.failed > 0 || unreadable > 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// The error of a read that stopped because every sender failed (the send error is reported instead).
const SENDERS_GONE: &str = "all senders failed";

/// One bar over the bytes of every file, on stderr when it is a terminal; hidden otherwise.
fn progress_bar(total_bytes: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total_bytes);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{wide_bar} {bytes}/{total_bytes} ({eta}) {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

pub(crate) fn send_chunk(client: &Client, chunk: &Chunk) -> Result<Value> {
    let mut body = Vec::with_capacity(chunk.records.iter().map(|r| r.len() + 1).sum());
    for r in &chunk.records {
        // One record per line: records from JSON arrays may be pretty-printed, so compact them.
        if r.contains(&b'\n') {
            let v: Value = serde_json::from_slice(r).context("re-encode record")?;
            serde_json::to_writer(&mut body, &v)?;
        } else {
            body.extend_from_slice(r);
        }
        body.push(b'\n');
    }
    let out = client.call("/v1/events", &[("content-type", "application/x-ndjson")], &body, "opentrail")?;
    serde_json::from_slice(&out).context("server answered with invalid JSON")
}

/// Reads one input (a path or `-`), gunzipping when it is gzip, and queues its records in chunks; the bytes
/// read from the file move `progress`.
pub(crate) fn read_chunks(
    file: &str,
    batch: usize,
    tx: &mpsc::SyncSender<Chunk>,
    progress: &indicatif::ProgressBar,
) -> Result<()> {
    let raw: Box<dyn Read> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(progress.wrap_read(std::fs::File::open(file).context("open")?))
    };
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let is_gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead> = if is_gzip {
        Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    let send = |first_index: usize, records: Vec<Vec<u8>>| {
        tx.send(Chunk { file: file.to_string(), first_index, records }).map_err(|_| anyhow!(SENDERS_GONE))
    };
    let head = reader.fill_buf()?;
    let first = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let is_document = match first {
        Some(b'[') => true,
        Some(b'{') => {
            let s = head.trim_ascii_start();
            s[1..].trim_ascii_start().starts_with(b"\"Records\"")
        }
        _ => false,
    };
    if is_document {
        let mut all = Vec::new();
        reader.read_to_end(&mut all)?;
        let parts = service::split_batch(&all).map_err(|e| anyhow!("{e}"))?;
        for (i, chunk) in parts.chunks(batch).enumerate() {
            send(i * batch, chunk.iter().map(|r| r.to_vec()).collect())?;
        }
        return Ok(());
    }
    let mut records = Vec::with_capacity(batch);
    let mut first_index = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let t = line.trim_ascii();
        if t.is_empty() {
            continue;
        }
        records.push(t.to_vec());
        if records.len() == batch {
            let n = records.len();
            send(first_index, std::mem::replace(&mut records, Vec::with_capacity(batch)))?;
            first_index += n;
        }
    }
    if !records.is_empty() {
        send(first_index, records)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_files_are_taken_and_digests_and_others_skipped() {
        let log = "AWSLogs/123456789012/CloudTrail/us-east-1/2020/01/01/123456789012_CloudTrail_us-east-1_20200101T0900Z_abc.json.gz";
        assert_eq!(classify(Path::new(log)), None);
        assert_eq!(classify(Path::new("events/2020.json")), None);
        let digest = "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2020/01/01/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20200101T090000Z.json.gz";
        assert_eq!(classify(Path::new(digest)), Some(Skip::Digest));
        assert_eq!(classify(Path::new("x/123_CloudTrail-Digest_us-east-1.json.gz")), Some(Skip::Digest));
        assert_eq!(classify(Path::new("AWSLogs/123456789012/CloudTrail/README.txt")), Some(Skip::Other));
        assert_eq!(classify(Path::new(".opentrail-meta/AWSLogs/a.json")), Some(Skip::Other));
        assert_eq!(classify(Path::new("a.json.gz.tmp")), Some(Skip::Other));
    }

    #[test]
    fn a_folder_is_walked_in_path_order_and_named_files_taken_as_they_are() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("AWSLogs");
        let logs = root.join("1/CloudTrail/us-east-1/2020/01/01");
        let digests = root.join("1/CloudTrail-Digest/us-east-1/2020/01/01");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::create_dir_all(&digests).unwrap();
        std::fs::write(logs.join("b.json.gz"), b"12345").unwrap();
        std::fs::write(logs.join("a.json"), b"123").unwrap();
        std::fs::write(digests.join("d.json.gz"), b"1").unwrap();
        std::fs::write(root.join("notes.txt"), b"1").unwrap();
        let ndjson = tmp.path().join("events.ndjson");
        std::fs::write(&ndjson, b"12").unwrap();
        let inputs = [root.display().to_string(), ndjson.display().to_string()];
        let plan = Plan::gather(&inputs).unwrap();
        assert_eq!(plan.files, vec![logs.join("a.json"), logs.join("b.json.gz"), ndjson]);
        assert_eq!((plan.bytes, plan.digests, plan.other), (10, 1, 1));
        let missing = Plan::gather(&[tmp.path().join("nope").display().to_string()]).unwrap_err();
        assert!(format!("{missing:#}").contains("nope"), "{missing:#}");
    }
}
