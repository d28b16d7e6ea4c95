"""The part every baseline script shares: arguments, the columns file, the timed lookup workload and the JSON
report on stdout.

A baseline script defines an engine class with

* ``name``, ``version()``, ``setup`` (one paragraph: how the data is laid out and why),
* ``concurrency``: ``"process"`` (each client is its own OS process with its own connection: no GIL between
  clients) or ``"thread"`` (clients are threads of one process sharing one database handle, for engines that
  cannot open the same files from two processes; each thread opens its own reader),
* ``load(columns_path, workdir)``: builds the engine's store from the columns file (timed by the harness),
* optionally ``bytes_on_disk(workdir)``, when the size of the workdir would mislead,
* ``open(workdir, threads_per_query)``: returns a reader whose ``page(query)`` runs one lookup and returns
  the event ids of the page after fetching each record's JSON text, as a real answer needs it,

and calls ``harness.main(Engine)``.

The columns file (written once by ``opentrail-bench``, from the server's own record parser): a header line,
then one line per event in corpus order, tab-separated, no quoting or escaping (no value contains a tab or a
newline; the bench checks): ``seq`` (1-based line number, the tie-breaker of equal event times),
``event_time_ms``, the single-valued attribute columns (empty = absent), the three multi-valued ones as JSON
arrays of strings, and last the record's JSON text exactly as ingested.

The report on stdout (JSON): engine, version, setup, load_secs, bytes_on_disk, events, ``pages`` (the event
ids of each query's page, in query order), and ``runs`` (the concurrent run, then the one-client run), each with
lookups/s, per-group and overall p50/p99 in ms, and every sample as ``[query index, µs]``.

The queries file: ``{"page": 50, "queries": [{"group": "EventName+Username", "attrs": [["EventName",
"CreateUser"], ["Username", "John"]]}, …]}``, the exact list ``opentrail-bench`` sends to the server. A query
is the AND of its attribute equalities, one page of ``page`` events, newest first by (event_time, seq).
"""

import argparse
import json
import multiprocessing
import os
import queue
import random
import sys
import threading
import time

COLUMNS = [
    "seq",
    "event_time_ms",
    "event_id",
    "event_name",
    "event_source",
    "username",
    "access_key_id",
    "read_only",
    "source_ip",
    "error_code",
    "user_agent",
    "resource_types",
    "resource_names",
    "account_ids",
    "record",
]

# LookupEvents attribute key -> column of the columns file.
ATTR_COLUMN = {
    "EventId": "event_id",
    "EventName": "event_name",
    "ReadOnly": "read_only",
    "Username": "username",
    "ResourceType": "resource_types",
    "ResourceName": "resource_names",
    "EventSource": "event_source",
    "AccessKeyId": "access_key_id",
    "SourceIPAddress": "source_ip",
    "ErrorCode": "error_code",
    "UserAgent": "user_agent",
    "AccountId": "account_ids",
}

# Columns holding several values per event (JSON arrays in the columns file).
MULTI = {"resource_types", "resource_names", "account_ids"}

SINGLE = [c for c in COLUMNS[2:-1] if c not in MULTI]

# Hard-coded: the order of the timed jobs is shuffled with this seed (the Rust harness uses its own).
SHUFFLE_SEED = 42


def log(msg):
    """Progress on stderr: stdout carries the JSON report alone."""
    print(f"[{os.path.basename(sys.argv[0])}] {msg}", file=sys.stderr, flush=True)


def read_rows(path):
    """Yields each event of the columns file as a list of strings in ``COLUMNS`` order (arrays still JSON)."""
    with open(path, encoding="utf-8", newline="\n") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != COLUMNS:
            raise SystemExit(f"unexpected columns header in {path}: {header}")
        for line in f:
            yield line.rstrip("\n").split("\t", len(COLUMNS) - 1)


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def _worker_loop(reader, queries, jobs, start_barrier):
    samples = []
    start_barrier.wait()
    start = time.perf_counter()
    for q in jobs:
        t = time.perf_counter_ns()
        reader.page(queries[q])
        samples.append((q, (time.perf_counter_ns() - t) / 1000.0))
    return start, time.perf_counter(), samples


def _process_worker(engine_cls, workdir, threads_per_query, queries, jobs, start_barrier, out):
    try:
        reader = engine_cls().open(workdir, threads_per_query)
        out.put(("ok", _worker_loop(reader, queries, jobs, start_barrier)))
        reader.close()
    except BaseException as e:  # reported to the parent, which fails the run
        start_barrier.abort()
        out.put(("error", repr(e)))


def timed(engine_cls, workdir, queries, clients, reps, mode):
    """``reps`` × every query, shuffled, split evenly over ``clients`` closed-loop clients; returns the run."""
    jobs = [q for _ in range(reps) for q in range(len(queries))]
    random.Random(SHUFFLE_SEED).shuffle(jobs)
    parts = [jobs[i::clients] for i in range(clients)]
    # Hard-coded policy: the machine's cores are split between the concurrent clients, so an engine that
    # parallelises one query does not oversubscribe the cores when several clients run at once.
    threads_per_query = max(1, (os.cpu_count() or 1) // clients)
    results = []
    if mode == "process":
        # spawn, not fork: the parent holds engine threads and handles that must not be cloned.
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(clients)
        out = ctx.Queue()
        procs = [
            ctx.Process(
                target=_process_worker,
                args=(engine_cls, workdir, threads_per_query, queries, part, barrier, out),
            )
            for part in parts
        ]
        for p in procs:
            p.start()
        while len(results) < clients:
            try:
                status, value = out.get(timeout=5)
            except queue.Empty:
                # A client that died without a word (a crash in the engine) would otherwise be waited on forever.
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    for p in procs:
                        p.kill()
                    raise SystemExit(f"lookup client process died with exit code {dead[0]}")
                continue
            if status != "ok":
                raise SystemExit(f"lookup client failed: {value}")
            results.append(value)
        for p in procs:
            p.join()
    else:
        # One reader (connection) per client thread, opened by that thread, as the processes above do.
        barrier = threading.Barrier(clients)
        errors = []

        def run(part):
            try:
                reader = engine_cls().open(workdir, threads_per_query)
                results.append(_worker_loop(reader, queries, part, barrier))
                reader.close()
            except BaseException as e:
                barrier.abort()
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(part,)) for part in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit(f"lookup client failed: {errors[0]}")
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    samples = [s for r in results for s in r[2]]
    return {
        "clients": clients,
        "mode": mode,
        "threads_per_query": threads_per_query,
        "reps": reps,
        "lookups": len(samples),
        "elapsed_secs": end - start,
        "per_sec": len(samples) / (end - start),
        "samples_us": [[q, round(us, 1)] for q, us in samples],
    }


def percentile(values, q):
    """Nearest rank, as the Rust report computes it."""
    if not values:
        return 0.0
    v = sorted(values)
    rank = int(-(-q * len(v) // 100))
    return v[min(max(rank, 1), len(v)) - 1]


def main(engine_cls):
    p = argparse.ArgumentParser(description=f"{engine_cls.name} baseline for opentrail-bench")
    p.add_argument("--columns", required=True, help="the columns file written by opentrail-bench")
    p.add_argument("--queries", required=True, help="the queries file written by opentrail-bench")
    p.add_argument("--workdir", required=True, help="directory for the engine's files (created; not removed)")
    p.add_argument("--clients", type=int, default=2, help="concurrent lookup clients of the throughput run")
    p.add_argument("--reps", type=int, default=100, help="timed repetitions of every query, concurrent run")
    p.add_argument("--single-reps", type=int, default=20, help="timed repetitions of every query, 1 client")
    p.add_argument("--mode", choices=["auto", "process", "thread"], default="auto", help="how clients run")
    p.add_argument("--skip-load", action="store_true", help="reuse the store already in --workdir")
    args = p.parse_args()
    mode = engine_cls.concurrency if args.mode == "auto" else args.mode
    with open(args.queries, encoding="utf-8") as f:
        spec = json.load(f)
    page = spec.get("page", 50)
    queries = spec["queries"]
    for q in queries:
        q["page"] = page
        q["attrs"] = [(k, v) for k, v in q["attrs"]]
    os.makedirs(args.workdir, exist_ok=True)
    engine = engine_cls()
    load_secs = None
    load_notes = None
    if not args.skip_load:
        log(f"loading {args.columns}")
        t = time.perf_counter()
        load_notes = engine.load(args.columns, args.workdir)
        load_secs = time.perf_counter() - t
        log(f"  loaded in {load_secs:.1f}s")
    # An engine that knows better (files due for deletion, say) reports its own size.
    bytes_on_disk = engine.bytes_on_disk(args.workdir) if hasattr(engine, "bytes_on_disk") else dir_bytes(args.workdir)

    # Untimed pass: every query once, for the page contents (compared with the other engines) and to warm.
    reader = engine.open(args.workdir, os.cpu_count() or 1)
    pages = [reader.page(q) for q in queries]
    events = reader.count() if hasattr(reader, "count") else None
    reader.close()

    runs = []
    for clients, reps in ((args.clients, args.reps), (1, args.single_reps)):
        if reps <= 0:
            continue
        log(f"timed: {len(queries)} queries × {reps} reps, {clients} {mode} client(s)")
        r = timed(engine_cls, args.workdir, queries, clients, reps, mode)
        all_us = [us for _, us in r["samples_us"]]
        groups = {}
        for q, us in r["samples_us"]:
            groups.setdefault(queries[q]["group"], []).append(us)
        r["groups"] = {
            g: {"samples": len(v), "p50_ms": percentile(v, 50) / 1000, "p99_ms": percentile(v, 99) / 1000}
            for g, v in groups.items()
        }
        r["all"] = {"samples": len(all_us), "p50_ms": percentile(all_us, 50) / 1000, "p99_ms": percentile(all_us, 99) / 1000}
        log(
            f"  {r['per_sec']:.0f} lookups/s, p50 {percentile(all_us, 50) / 1000:.2f} ms, "
            f"p99 {percentile(all_us, 99) / 1000:.2f} ms"
        )
        runs.append(r)
    report = {
        "engine": engine_cls.name,
        "version": engine_cls.version(),
        "setup": engine_cls.setup,
        "load_notes": load_notes,
        "events": events,
        "load_secs": load_secs,
        "bytes_on_disk": bytes_on_disk,
        "pages": pages,
        "runs": runs,
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
