"""SQLite through Python's sqlite3: the same schema, indexes and SQL as the Rust baseline (crates/bench/src/
sqlite.rs), bulk-loaded as an expert loads a read-mostly copy (one transaction, indexes built after the rows).
Its lookups next to the Rust baseline's show what the Python harness itself costs. Usage: see harness.py."""

import json
import os
import sqlite3

import harness

DB_FILE = "bench.db"
# Hard-coded: a 128 MiB page cache per connection, as in the Rust baseline.
CACHE_KIB = 128 * 1024

TABLES = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    event_name TEXT NOT NULL,
    event_source TEXT NOT NULL,
    username TEXT,
    access_key_id TEXT,
    read_only INTEGER,
    source_ip TEXT,
    error_code TEXT,
    user_agent TEXT,
    record TEXT NOT NULL
);
CREATE TABLE multi (
    key INTEGER NOT NULL,
    value TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, value, event_time DESC, seq DESC)
) WITHOUT ROWID;
"""

INDEXES = """
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_event_name ON events (event_name, event_time DESC, seq DESC);
CREATE INDEX events_event_source ON events (event_source, event_time DESC, seq DESC);
CREATE INDEX events_username ON events (username, event_time DESC, seq DESC);
CREATE INDEX events_access_key_id ON events (access_key_id, event_time DESC, seq DESC);
CREATE INDEX events_read_only ON events (read_only, event_time DESC, seq DESC);
CREATE INDEX events_source_ip ON events (source_ip, event_time DESC, seq DESC);
CREATE INDEX events_error_code ON events (error_code, event_time DESC, seq DESC);
CREATE INDEX events_user_agent ON events (user_agent, event_time DESC, seq DESC);
ANALYZE;
"""

# Side-table keys of the multi-valued attributes, as in the Rust baseline.
MULTI_KEY = {"resource_types": 1, "resource_names": 2, "account_ids": 3}


def sql(q):
    """The Rust baseline's SQL: the first attribute's index drives, the others filter, newest first."""
    args, filters = [], []

    def val(col, v):
        return int(v == "true") if col == "read_only" else v

    first_key, first_value = q["attrs"][0]
    col = harness.ATTR_COLUMN[first_key]
    if col in harness.MULTI:
        args += [MULTI_KEY[col], first_value]
        filters.append("m.key = ? AND m.value = ?")
        source, order = "multi m JOIN events e ON e.seq = m.seq", "m.event_time DESC, m.seq DESC"
    else:
        args.append(val(col, first_value))
        filters.append(f"e.{col} = ?")
        source, order = "events e", "e.event_time DESC, e.seq DESC"
    for key, value in q["attrs"][1:]:
        col = harness.ATTR_COLUMN[key]
        if col in harness.MULTI:
            args += [MULTI_KEY[col], value]
            filters.append(
                "EXISTS (SELECT 1 FROM multi x WHERE x.key = ? AND x.value = ? "
                "AND x.event_time = e.event_time AND x.seq = e.seq)"
            )
        else:
            args.append(val(col, value))
            filters.append(f"e.{col} = ?")
    text = (
        f"SELECT e.event_id, e.record FROM {source} WHERE {' AND '.join(filters)} "
        f"ORDER BY {order} LIMIT {int(q['page'])}"
    )
    return text, args


class Reader:
    def __init__(self, con):
        self.con = con

    def page(self, q):
        text, args = sql(q)
        return [event_id for event_id, record in self.con.execute(text, args) if record]

    def count(self):
        return self.con.execute("SELECT count(*) FROM events").fetchone()[0]

    def close(self):
        self.con.close()


class SQLite:
    name = "sqlite-py"
    concurrency = "process"
    setup = (
        "the Rust baseline's schema, indexes and SQL (an index per attribute on (value, event_time DESC, seq DESC), "
        "multi-valued attributes in a WITHOUT ROWID side table), bulk-loaded in one transaction with the indexes "
        "built afterwards and ANALYZE; WAL, 128 MiB page cache, a read connection per client process"
    )

    @staticmethod
    def version():
        return f"SQLite {sqlite3.sqlite_version} via Python sqlite3"

    def load(self, columns_path, workdir):
        path = os.path.join(workdir, DB_FILE)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = OFF")
        con.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        con.executescript(TABLES)
        col = {c: i for i, c in enumerate(harness.COLUMNS)}
        single = ["event_id", "event_name", "event_source", "username", "access_key_id", "read_only"]
        single += ["source_ip", "error_code", "user_agent"]

        def rows_and_multi():
            for row in harness.read_rows(columns_path):
                seq, t = int(row[col["seq"]]), int(row[col["event_time_ms"]])
                values = []
                for c in single:
                    v = row[col[c]]
                    if c == "read_only":
                        values.append(None if v == "" else int(v == "true"))
                    else:
                        values.append(v or None)
                multi = [(k, v, t, seq) for c, k in MULTI_KEY.items() for v in json.loads(row[col[c]])]
                yield (seq, t, values, row[col["record"]]), multi

        con.execute("BEGIN")
        ins = (
            "INSERT INTO events (seq, event_time, event_id, event_name, event_source, username, access_key_id, "
            "read_only, source_ip, error_code, user_agent, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        batch, multis = [], []
        for (seq, t, values, record), multi in rows_and_multi():
            batch.append((seq, t, *values, record))
            multis.extend(multi)
            if len(batch) >= 10_000:
                con.executemany(ins, batch)
                con.executemany("INSERT INTO multi (key, value, event_time, seq) VALUES (?, ?, ?, ?)", multis)
                batch, multis = [], []
        con.executemany(ins, batch)
        con.executemany("INSERT INTO multi (key, value, event_time, seq) VALUES (?, ?, ?, ?)", multis)
        con.execute("COMMIT")
        con.executescript(INDEXES)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        return None

    def open(self, workdir, threads_per_query):
        con = sqlite3.connect(os.path.join(workdir, DB_FILE), check_same_thread=False)
        con.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        return Reader(con)


if __name__ == "__main__":
    harness.main(SQLite)
