#!/usr/bin/env python3
"""The query half of scripts/bench-lake.sh: five audit queries by opentrail (`opentrail query`, against the
running server named by OPENTRAIL_ENDPOINT), DuckDB and chDB over the Parquet files the store's manifest names;
each query REPS times per engine, best and median reported; answers compared between engines. Prints Markdown."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


# The Lake API calls `opentrail query` makes, which the server audits into the store while the benchmark runs.
SELF_AUDIT = {"ListEventDataStores", "StartQuery", "DescribeQuery", "GetQueryResults"}


def manifest_files(data):
    lake = os.path.join(data, "lake")
    store = [d for d in os.listdir(lake) if d.startswith("eventdatastore=")][0]
    root = os.path.join(lake, store)
    m = json.load(open(os.path.join(root, "manifest.json")))
    files = [os.path.join(root, f["path"]) for f in m["files"]]
    rows = sum(f["rows"] for f in m["files"])
    size = sum(f["bytes"] for f in m["files"])
    return root, files, rows, size


def opentrail(bin_, sql):
    start = time.perf_counter()
    out = subprocess.run([bin_, "query", "--output", "csv", sql], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"opentrail query failed: {out.stderr}")
    lines = out.stdout.strip().splitlines()[1:]
    return wall, sorted(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--events", type=int, required=True)
    a = ap.parse_args()
    root, files, rows, size = manifest_files(a.data)
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({files!r})")
    # Deterministic picks: the source IP seen least often, and the user who assumed roles most.
    ip = con.execute(
        "SELECT sourceipaddress FROM t WHERE sourceipaddress IS NOT NULL GROUP BY 1 ORDER BY count(*), 1 LIMIT 1"
    ).fetchone()[0]
    user = con.execute(
        "SELECT useridentity.arn FROM t WHERE eventname = 'AssumeRole' AND useridentity.arn IS NOT NULL "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    ).fetchone()[0]
    # Lake SQL (opentrail), DuckDB, ClickHouse (chDB): the same questions in each engine's dialect.
    queries = [
        (
            "group by event name",
            "SELECT eventName, count(*) AS n FROM events GROUP BY eventName",
            "SELECT eventname, count(*) AS n FROM t GROUP BY eventname",
            "SELECT eventname, count() AS n FROM T GROUP BY eventname",
        ),
        (
            "by user over a month",
            "SELECT userIdentity.arn, count(*) AS n FROM events WHERE eventTime >= '2026-01-01 00:00:00' "
            "AND eventTime < '2026-02-01 00:00:00' GROUP BY userIdentity.arn",
            "SELECT useridentity.arn, count(*) AS n FROM t WHERE eventtime >= TIMESTAMPTZ '2026-01-01 00:00:00+00' "
            "AND eventtime < TIMESTAMPTZ '2026-02-01 00:00:00+00' GROUP BY 1",
            "SELECT tupleElement(useridentity, 'arn') AS a, count() AS n FROM T WHERE eventtime >= "
            "toDateTime64('2026-01-01 00:00:00', 3, 'UTC') AND eventtime < toDateTime64('2026-02-01 00:00:00', 3, 'UTC') GROUP BY a",
        ),
        (
            "errors by API",
            "SELECT eventSource, eventName, errorCode, count(*) AS n FROM events WHERE errorCode IS NOT NULL "
            "GROUP BY eventSource, eventName, errorCode",
            "SELECT eventsource, eventname, errorcode, count(*) FROM t WHERE errorcode IS NOT NULL GROUP BY 1, 2, 3",
            "SELECT eventsource, eventname, errorcode, count() FROM T WHERE errorcode IS NOT NULL "
            "GROUP BY eventsource, eventname, errorcode",
        ),
        (
            "needle by source IP",
            f"SELECT eventID, eventName FROM events WHERE sourceIPAddress = '{ip}'",
            f"SELECT eventid, eventname FROM t WHERE sourceipaddress = '{ip}'",
            f"SELECT eventid, eventname FROM T WHERE sourceipaddress = '{ip}'",
        ),
        (
            "AssumeRole → what the role did",
            "SELECT b.eventName, count(*) AS n FROM events a JOIN events b ON b.userIdentity.accessKeyId = "
            "json_extract_scalar(a.responseElements, '$.credentials.accessKeyId') "
            f"WHERE a.eventName = 'AssumeRole' AND a.userIdentity.arn = '{user}' GROUP BY b.eventName",
            "SELECT b.eventname, count(*) FROM t a JOIN t b ON b.useridentity.accesskeyid = "
            "json_extract_string(a.responseelements, '$.credentials.accessKeyId') "
            f"WHERE a.eventname = 'AssumeRole' AND a.useridentity.arn = '{user}' GROUP BY 1",
            # ClickHouse builds its hash table from the right side: the AssumeRole calls go there.
            "SELECT b.eventname, count() FROM T AS b INNER JOIN (SELECT JSONExtractString(responseelements, "
            "'credentials', 'accessKeyId') AS k FROM T WHERE eventname = 'AssumeRole' AND "
            f"tupleElement(useridentity, 'arn') = '{user}') AS a ON tupleElement(b.useridentity, 'accesskeyid') = a.k "
            "GROUP BY b.eventname",
        ),
    ]
    try:
        import chdb
        from chdb import session as chs

        sess = chs.Session()
        glob = "{" + ",".join(os.path.relpath(f, root) for f in files) + "}"
        sess.query(f"CREATE VIEW T AS SELECT * FROM file('{root}/{glob}', Parquet)")
    except ImportError:
        sess = None

    def timed(f):
        # One untimed run first, for every engine alike: the first query a process runs pays for what it
        # loads once (footers, code, its allocator's first pages); the figures are for a process running.
        best, times, ans = None, [], f()
        for _ in range(a.reps):
            t0 = time.perf_counter()
            ans = f()
            times.append(time.perf_counter() - t0)
        return min(times), statistics.median(times), ans

    results = []
    for name, lake_sql, duck_sql, ch_sql in queries:
        ot = timed(lambda: opentrail(a.bin, lake_sql))
        ot = (ot[0], ot[1], ot[2][1])
        dk = timed(lambda: sorted(",".join("" if v is None else str(v) for v in r) for r in con.execute(duck_sql).fetchall()))
        ch = None
        if sess is not None:
            ch = timed(
                lambda: sorted(
                    line.replace("\\N", "")
                    for line in sess.query(ch_sql, "CSV").data().replace('"', "").strip().splitlines()
                )
            )
        results.append((name, ot, dk, ch))
        # The same answer from every engine, or the timing means nothing. The server records the benchmark's
        # own Lake API calls (self-audit): they are in its tail, which only opentrail reads — left out here.
        def kept(rows):
            return [r for r in rows if r.split(",")[0] not in SELF_AUDIT]

        mine = kept(ot[2])
        for other, ans in (("duckdb", dk[2]), ("chdb", ch[2] if ch else None)):
            if ans is not None and kept(ans) != mine:
                diff = sorted(set(mine) ^ set(kept(ans)))[:5]
                print(f"warning: {name}: opentrail {len(ot[2])} rows, {other} {len(ans)}; differing: {diff}", file=sys.stderr)

    print(f"Lake: {rows:,} events in {len(files)} Parquet files, {size:,} bytes = {size / max(rows, 1):.1f} bytes/event "
          f"(corpus {a.events:,} generated events; the store holds management events and S3/Lambda/DynamoDB data events)\n")
    print(f"Needle IP `{ip}`; AssumeRole caller `{user}`. Best of {a.reps} (median) after one untimed run, seconds; opentrail is the whole "
          "`opentrail query` (StartQuery, DescribeQuery polls, GetQueryResults, over HTTP), the engines in-process.\n")
    print("| query | rows | opentrail | DuckDB | chDB | opentrail ÷ faster |")
    print("|---|---|---|---|---|---|")
    for name, ot, dk, ch in results:
        faster = min(dk[0], ch[0]) if ch else dk[0]
        chs_ = f"{ch[0]:.3f} ({ch[1]:.3f})" if ch else "–"
        print(f"| {name} | {len(ot[2])} | {ot[0]:.3f} ({ot[1]:.3f}) | {dk[0]:.3f} ({dk[1]:.3f}) | {chs_} | {ot[0] / faster:.2f}× |")


if __name__ == "__main__":
    main()
