//! Crash test: the real server is SIGKILLed at random moments while a client ingests, over and over.
//! After every restart each acknowledged event is found exactly once, retried batches are not stored
//! twice, and an offline check confirms the index agrees with the journal.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// Hard-coded: kill/restart cycles per run (each takes well under a second of ingest).
const CYCLES: usize = 12;

fn batch(cycle: usize, n: usize, size: usize) -> Batch {
    let ids: Vec<String> = (0..size).map(|i| format!("crash-{cycle}-{n}-{i}")).collect();
    let body = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "eventID": id, "eventTime": format!("2023-03-01T00:{:02}:{:02}Z", cycle % 60, (n + i) % 60),
                "eventSource": "ec2.amazonaws.com", "eventName": "Crash",
                "userIdentity": {"type": "IAMUser", "userName": format!("c{cycle}")},
                "requestParameters": {"pad": "x".repeat(200)}
            })
            .to_string()
                + "\n"
        })
        .collect();
    (ids, body)
}

#[test]
fn every_acknowledged_event_survives_sigkill_exactly_once() {
    let mut rng = Lcg::from_clock("crash test");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, config_toml("")).unwrap();
    let data = tmp.path().join("data");
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    // Batches that got no answer: retried after the restart (they may or may not have been stored).
    let mut unanswered: Vec<Batch> = Vec::new();

    for cycle in 0..CYCLES {
        let mut server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
        // Everything acknowledged so far is there, exactly once.
        server.wait_caught_up();
        let found = server.lookup_all(&[("EventName", "Crash")]);
        let mut counts: HashMap<String, usize> = HashMap::new();
        for e in &found {
            *counts.entry(e["EventId"].as_str().unwrap().to_string()).or_default() += 1;
        }
        assert!(
            counts.values().all(|c| *c == 1),
            "cycle {cycle}: duplicates {:?}",
            counts.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
        );
        for id in acked.lock().unwrap().iter() {
            assert!(counts.contains_key(id), "cycle {cycle}: acknowledged {id} lost");
        }

        for (ids, body) in unanswered.drain(..) {
            let v = server.ingest(&body);
            assert_eq!(v["accepted"].as_array().unwrap().len(), ids.len());
            acked.lock().unwrap().extend(ids);
        }

        let addr = server.addr.clone();
        let kill_after = Duration::from_millis(50 + rng.next(400));
        let pending: Arc<Mutex<Option<Batch>>> = Arc::default();
        let ingester = spawn_ingester(addr, acked.clone(), pending.clone(), Duration::ZERO, move |n| {
            batch(cycle, n, 1 + (n % 40))
        });
        std::thread::sleep(kill_after);
        server.kill();
        ingester.join().unwrap();
        if let Some(b) = pending.lock().unwrap().take() {
            unanswered.push(b);
        }
    }

    // Final restart: check through the API, then offline that the index agrees with the journal.
    let mut server = Server::spawn(&data, Some(&cfg), "127.0.0.1:0");
    for (ids, body) in unanswered.drain(..) {
        server.ingest(&body);
        acked.lock().unwrap().extend(ids);
    }
    server.wait_caught_up();
    let found = server.lookup_all(&[("EventName", "Crash")]);
    let ids: Vec<String> = found.iter().map(|e| e["EventId"].as_str().unwrap().to_string()).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no event stored twice");
    let acked = acked.lock().unwrap();
    assert!(acked.is_subset(&unique), "every acknowledged event found");
    assert!(acked.len() > 100, "the test ingested something: {}", acked.len());
    server.stop();
    check_offline(&data);
}
