"""DuckDB baseline: one typed table stored newest first in small row groups, so a Top-N query's dynamic filter
on event_time prunes row groups by their zone maps (min/max) once 50 matches are in the heap; an ART index on
event_id only (a unique id, the one attribute where a point index beats a scan). Usage: see harness.py."""

import os

import duckdb

import harness

DB_FILE = "events.duckdb"
# Hard-coded: rows per row group (DuckDB's default is 122,880), the unit of zone-map pruning. Measured at 200 k
# events, one thread: frequent-value pages 1.1-1.5 ms (fastest of 15) with 16 Ki rows, 1.6-3.5 ms with the default.
ROW_GROUP_SIZE = 16384

# The single-valued attribute columns, with their DuckDB types.
TYPES = {c: "VARCHAR" for c in harness.SINGLE}
TYPES["read_only"] = "BOOLEAN"


def sql(q):
    """The lookup as SQL with parameters: AND of equalities, newest first, one page."""
    where, args = [], []
    keys = [key for key, _ in q["attrs"]]
    for key, value in q["attrs"]:
        col = harness.ATTR_COLUMN[key]
        if col in harness.MULTI:
            where.append(f"list_contains({col}, ?)")
        elif col == "read_only":
            where.append("read_only = ?")
            value = value == "true"
        else:
            where.append(f"{col} = ?")
        args.append(value)
    # event_id is unique (the index enforces it): at most one row, nothing to order, and without the Top-N the
    # planner probes the ART index instead of scanning (0.3 ms instead of 40 ms at 200 k events).
    order = "" if "EventId" in keys else "ORDER BY event_time DESC, seq DESC "
    text = f"SELECT event_id, record FROM events WHERE {' AND '.join(where)} {order}LIMIT {int(q['page'])}"
    return text, args


class Reader:
    def __init__(self, con):
        self.con = con

    def page(self, q):
        text, args = sql(q)
        rows = self.con.execute(text, args).fetchall()
        return [event_id for event_id, record in rows if record]

    def count(self):
        return self.con.execute("SELECT count(*) FROM events").fetchone()[0]


    def close(self):
        self.con.close()


class DuckDB:
    name = "duckdb"
    concurrency = "process"
    setup = (
        "one table with typed columns (TIMESTAMP event_time, BOOLEAN read_only, VARCHAR[] for resource types, "
        f"resource names and account ids), rows written in (event_time, seq) descending order in row groups of "
        f"{ROW_GROUP_SIZE} rows so the Top-N dynamic filter skips row groups by zone map once the page is full; "
        "ART index on event_id (an EventId lookup drops the ORDER BY so the index is probed); lookups are "
        "prepared statements `WHERE … ORDER BY event_time DESC, seq DESC LIMIT 50` (list_contains for the "
        "multi-valued attributes), late materialization fetching event_id and the record text of the 50 rows; "
        "read-only connection per client process, `threads` = cores ÷ clients"
    )

    @staticmethod
    def version():
        return duckdb.__version__

    def load(self, columns_path, workdir):
        path = os.path.join(workdir, DB_FILE)
        if os.path.exists(path):
            os.remove(path)
        con = duckdb.connect()
        con.execute(f"ATTACH '{path}' AS db (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        con.execute("USE db")
        cols = {c: "VARCHAR" for c in harness.COLUMNS}
        cols["seq"] = "BIGINT"
        cols["event_time_ms"] = "BIGINT"
        cols_sql = ", ".join(f"'{c}': '{t}'" for c, t in cols.items())
        select = ["seq", "epoch_ms(event_time_ms) AS event_time"]
        for c in harness.SINGLE:
            if c == "read_only":
                select.append("CASE read_only WHEN 'true' THEN true WHEN 'false' THEN false END AS read_only")
            else:
                select.append(f"nullif({c}, '') AS {c}")
        for c in sorted(harness.MULTI):
            select.append(f"from_json({c}, '[\"VARCHAR\"]') AS {c}")
        select.append("record")
        con.execute(
            f"CREATE TABLE events AS SELECT {', '.join(select)} FROM read_csv('{columns_path}', delim = '\t', "
            f"quote = '', escape = '', header = true, auto_detect = false, columns = {{{cols_sql}}}, "
            f"max_line_size = 16777216) ORDER BY event_time DESC, seq DESC"
        )
        con.execute("CREATE UNIQUE INDEX events_event_id ON events (event_id)")
        con.execute("CHECKPOINT db")
        con.close()
        return None

    def open(self, workdir, threads_per_query):
        con = duckdb.connect(os.path.join(workdir, DB_FILE), read_only=True)
        con.execute(f"SET threads = {int(threads_per_query)}")
        return Reader(con)


if __name__ == "__main__":
    harness.main(DuckDB)
