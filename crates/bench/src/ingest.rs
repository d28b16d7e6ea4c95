//! Ingest over HTTP: the durable bulk ingest (`POST /v1/events`, every 200 = fsync'd), the plain-vs-gzip
//! comparison, and the steady-rate freshness phase (ack → visible in LookupEvents by EventId).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use model::AttributeKey;
use serde_json::Value;

use crate::Encoding;
use crate::corpus::Corpus;
use crate::report::Latencies;
use crate::server::{Client, Server};

/// Hard-coded: a freshness probe polls LookupEvents this often until its event shows up.
const PROBE_POLL: Duration = Duration::from_millis(2);
/// Hard-coded: about this many freshness probes per second.
const PROBES_PER_SEC: u64 = 10;

#[derive(Debug)]
pub struct IngestResult {
    pub events: u64,
    pub raw_bytes: u64,
    /// First send → last acknowledgement.
    pub elapsed: Duration,
    /// 503 answers retried (back-pressure).
    pub retries: u64,
    /// Send → acknowledgement of each request.
    pub ack: Latencies,
}

#[derive(Debug)]
pub struct Freshness {
    pub target_rate: u64,
    pub achieved_rate: f64,
    pub events: u64,
    /// Acknowledged → first LookupEvents answer that contains the event.
    pub lag: Latencies,
    pub ack: Latencies,
}

/// Sends one body, retrying 503 as a well-behaved client does; returns the answer and the retries.
pub(crate) fn send(client: &Client, body: &[u8], gzip: bool, records: usize) -> Result<(Value, u64)> {
    let mut headers = vec![("content-type", "application/x-ndjson")];
    if gzip {
        headers.push(("content-encoding", "gzip"));
    }
    let mut retries = 0;
    loop {
        let r = client.post("/v1/events", &headers, body)?;
        match r.status {
            200 => {
                let v: Value = serde_json::from_slice(&r.body).context("ingest answer is not JSON")?;
                let stored = v["stored"].as_u64().unwrap_or(0) + v["duplicates"].as_u64().unwrap_or(0);
                if stored != records as u64 {
                    bail!("ingest stored {stored} of {records} records: {}", String::from_utf8_lossy(&r.body));
                }
                return Ok((v, retries));
            }
            503 => {
                retries += 1;
                std::thread::sleep(r.retry_after.map_or(Duration::from_millis(50), Duration::from_secs));
            }
            s => bail!("ingest answered {s}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 6), Compression::new(6));
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

/// Sends every batch of `corpus` from `threads` clients. Gzip bodies are compressed before the clock starts
/// (on this 2-core machine a client compressing at level 6 would take the cores the server needs; real senders
/// run elsewhere), so the figure is the server's; plain bodies are read from the corpus file while sending.
pub fn ingest_corpus(client: &Client, corpus: &Corpus, threads: usize, encoding: Encoding) -> Result<IngestResult> {
    let compressed: Vec<Vec<u8>> = if encoding == Encoding::Gzip { compress_all(corpus, threads)? } else { Vec::new() };
    let next = AtomicUsize::new(0);
    let retries = AtomicU64::new(0);
    let acks = Mutex::new(Vec::with_capacity(corpus.batches.len()));
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(b) = corpus.batches.get(i) else { return Ok(()) };
                        let plain;
                        let body = match compressed.get(i) {
                            Some(gz) => gz,
                            None => {
                                plain = corpus.read(b)?;
                                &plain
                            }
                        };
                        let t = Instant::now();
                        let (_, r) = send(client, body, encoding == Encoding::Gzip, b.records)?;
                        acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(t.elapsed());
                        retries.fetch_add(r, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("ingest thread panicked"))?)
    })?;
    Ok(IngestResult {
        events: corpus.events,
        raw_bytes: corpus.raw_bytes,
        elapsed: start.elapsed(),
        retries: retries.into_inner(),
        ack: Latencies::new(acks.into_inner().unwrap_or_default()),
    })
}

/// Every batch of the corpus gzip -6'd, in order, by `threads` workers.
fn compress_all(corpus: &Corpus, threads: usize) -> Result<Vec<Vec<u8>>> {
    let chunk = corpus.batches.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = corpus
            .batches
            .chunks(chunk)
            .map(|bs| s.spawn(move || bs.iter().map(|b| gzip(&corpus.read(b)?)).collect::<Result<Vec<_>>>()))
            .collect();
        let mut out = Vec::with_capacity(corpus.batches.len());
        for p in parts {
            out.extend(p.join().map_err(|_| anyhow::anyhow!("gzip thread panicked"))??);
        }
        Ok(out)
    })
}

/// Ingests the first `events` of the corpus into a fresh server once as plain and once as gzip bodies,
/// both prepared before the clock starts (this compares the server's cost, not the client's); events/s each.
pub fn compare_encodings(bin: &Path, dir: &Path, corpus: &Corpus, threads: usize, events: u64) -> Result<(f64, f64)> {
    let mut plain = Vec::new();
    let mut n = 0;
    for b in &corpus.batches {
        if n >= events {
            break;
        }
        plain.push((corpus.read(b)?, b.records));
        n += b.records as u64;
    }
    let gz: Vec<(Vec<u8>, usize)> = plain.iter().map(|(body, r)| Ok((gzip(body)?, *r))).collect::<Result<_>>()?;
    let config = crate::server::write_config(dir)?;
    let mut rates = [0.0; 2];
    for (k, (bodies, is_gzip)) in [(&plain, false), (&gz, true)].into_iter().enumerate() {
        let data = dir.join(format!("encoding-probe-{k}"));
        let mut srv = Server::spawn(bin, &data, &config)?;
        let client = Client::new(&srv.addr);
        let next = AtomicUsize::new(0);
        let start = Instant::now();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        while let Some((body, records)) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                            send(&client, body, is_gzip, *records)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("ingest thread panicked"))?)
        })?;
        rates[k] = n as f64 / start.elapsed().as_secs_f64();
        srv.stop();
        std::fs::remove_dir_all(&data).ok();
    }
    Ok((rates[0], rates[1]))
}

/// The next batch of an open-loop sender shared by several threads: batch i is due at `start + i ×
/// interval`; sleeps until then and returns its index, the batch and its body (`None`: the corpus is sent).
pub fn next_paced<'c>(
    corpus: &'c Corpus,
    next: &AtomicUsize,
    start: Instant,
    interval: Duration,
) -> Result<Option<(usize, &'c crate::corpus::Batch, Vec<u8>)>> {
    let i = next.fetch_add(1, Ordering::Relaxed);
    let Some(b) = corpus.batches.get(i) else { return Ok(None) };
    let body = corpus.read(b)?;
    let due = start + interval * i as u32;
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    Ok(Some((i, b, body)))
}

/// Ingests `corpus` at `rate` events/s (open loop: batch i is due at i × batch / rate) from two clients while
/// probe threads poll LookupEvents by EventId for sampled events until they are visible.
pub fn freshness(client: &Client, corpus: &Corpus, rate: u64) -> Result<Freshness> {
    let batch = corpus.batches.first().map_or(1, |b| b.records) as f64;
    let interval = Duration::from_secs_f64(batch / rate as f64);
    let probe_every = ((rate as f64 / batch / PROBES_PER_SEC as f64).round() as usize).max(1);
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    let rx = Mutex::new(rx);
    let next = AtomicUsize::new(0);
    let acks = Mutex::new(Vec::new());
    let lags = Mutex::new(Vec::new());
    let last_ack = Mutex::new(Instant::now());
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let tx = tx.clone();
                let (next, acks, last_ack) = (&next, &acks, &last_ack);
                s.spawn(move || -> Result<()> {
                    while let Some((i, b, body)) = next_paced(corpus, next, start, interval)? {
                        let t = Instant::now();
                        let (answer, _) = send(client, &body, false, b.records)?;
                        let acked = Instant::now();
                        acks.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(acked - t);
                        *last_ack.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = acked;
                        if i.is_multiple_of(probe_every)
                            && let Some(id) = answer["accepted"][0]["eventID"].as_str()
                        {
                            let _ = tx.send((id.to_string(), acked));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        drop(tx);
        let probes: Vec<_> = (0..2)
            .map(|_| {
                let (rx, lags) = (&rx, &lags);
                s.spawn(move || -> Result<()> {
                    loop {
                        let msg = rx.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.recv();
                        let Ok((id, acked)) = msg else { return Ok(()) };
                        let attrs = [(AttributeKey::EventId, id)];
                        loop {
                            if !client.lookup(&attrs)?.ids.is_empty() {
                                lags.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(acked.elapsed());
                                break;
                            }
                            if acked.elapsed() > Duration::from_secs(60) {
                                bail!("event {} not visible 60s after its acknowledgement", attrs[0].1);
                            }
                            std::thread::sleep(PROBE_POLL);
                        }
                    }
                })
            })
            .collect();
        for h in senders.into_iter().chain(probes) {
            h.join().map_err(|_| anyhow::anyhow!("freshness thread panicked"))??;
        }
        Ok(())
    })?;
    let elapsed = last_ack.into_inner().unwrap_or_else(|e| e.into_inner()) - start;
    Ok(Freshness {
        target_rate: rate,
        achieved_rate: corpus.events as f64 / elapsed.as_secs_f64(),
        events: corpus.events,
        lag: Latencies::new(lags.into_inner().unwrap_or_default()),
        ack: Latencies::new(acks.into_inner().unwrap_or_default()),
    })
}
