"""chDB (embedded ClickHouse) baseline: a MergeTree table sorted by (event_time, seq), read in reverse sorting-key
order so a newest-first LIMIT 50 stops after the granules that fill the page, with a bloom-filter skip index on
every attribute column so granules without a rare value are never read, lazy materialization of the record
column, and small granules and compressed blocks so fetching 50 records stays cheap. Usage: see harness.py."""

import json
import os

import chdb

import harness

DB = "bench"
# Hard-coded: rows per granule. ClickHouse's default 8192 suits analytical scans; here a page of 50 records
# comes from up to 50 granules, each read (and decompressed) from its start, so granules are small, and so are
# compressed blocks. Measured at 200 k events (one thread, a value with 98 matches): 2048-row granules with
# ZSTD(3) record blocks of up to 1 MiB made its page 150 ms (lazy reads of the record decompress whole
# blocks); 256 rows, 64 KiB blocks and ClickHouse's default LZ4 ~13 ms; 32 rows ~10 ms (128: 11.4, 64: 10.2),
# and 32 rows was as fast or faster on the other values tried, for ~5 % more bytes than 256.
INDEX_GRANULARITY = 32
MIN_COMPRESS_BLOCK_BYTES = 16384
MAX_COMPRESS_BLOCK_BYTES = 65536
# Hard-coded: one bloom filter per this many granules (1024 rows).
SKIP_INDEX_GRANULARITY = 32
# Hard-coded: false-positive rate of the bloom-filter skip indexes.
BLOOM_FPR = 0.01

# Column types: LowCardinality for the few-distinct-value attributes, plain String for ids and addresses.
TYPES = {
    "event_id": "String",
    "event_name": "LowCardinality(String)",
    "event_source": "LowCardinality(String)",
    "username": "LowCardinality(String)",
    "access_key_id": "String",
    "read_only": "LowCardinality(String)",
    "source_ip": "String",
    "error_code": "LowCardinality(String)",
    "user_agent": "LowCardinality(String)",
    "resource_types": "Array(LowCardinality(String))",
    "resource_names": "Array(String)",
    "account_ids": "Array(LowCardinality(String))",
}


def sql(q):
    """The lookup as SQL with ClickHouse query parameters."""
    where, params = [], {}
    for i, (key, value) in enumerate(q["attrs"]):
        col = harness.ATTR_COLUMN[key]
        if col in harness.MULTI:
            where.append(f"has({col}, {{p{i}:String}})")
        else:
            where.append(f"{col} = {{p{i}:String}}")
        params[f"p{i}"] = value
    text = (
        f"SELECT event_id, record FROM {DB}.events WHERE {' AND '.join(where)} "
        f"ORDER BY event_time DESC, seq DESC LIMIT {int(q['page'])}"
    )
    return text, params


class Reader:
    def __init__(self, conn):
        self.conn = conn

    def page(self, q):
        text, params = sql(q)
        out = self.conn.query(text, "JSONCompactEachRow", params=params)
        ids = []
        for line in out.bytes().decode().splitlines():
            event_id, record = json.loads(line)
            if record:
                ids.append(event_id)
        return ids

    def count(self):
        return int(str(self.conn.query(f"SELECT count() FROM {DB}.events", "TSV")).strip())


    def close(self):
        self.conn.close()


class ChDB:
    name = "chdb"
    # chDB keeps one ClickHouse server per process and a data directory can be opened by one process at a
    # time; its connections release the GIL while a query runs, so clients are threads of one process.
    concurrency = "thread"
    setup = (
        f"MergeTree ORDER BY (event_time, seq), index_granularity {INDEX_GRANULARITY} rows, compressed blocks "
        f"{MIN_COMPRESS_BLOCK_BYTES // 1024}-{MAX_COMPRESS_BLOCK_BYTES // 1024} KiB (LZ4), LowCardinality strings "
        f"for the few-valued attributes, Array columns for resource types / names and account ids, a "
        f"bloom_filter({BLOOM_FPR}) skip index (one per {SKIP_INDEX_GRANULARITY * INDEX_GRANULARITY} rows) on "
        "every attribute column but read_only, the record as a String, merged to one part after the load; lookups `WHERE … ORDER BY event_time DESC, seq DESC LIMIT "
        "50` with query parameters, read in reverse key order (optimize_read_in_order) and lazy "
        "materialization of the record column; one connection per client thread, max_threads = cores ÷ clients"
    )

    @staticmethod
    def version():
        return f"chdb {chdb.__version__}, ClickHouse {chdb.engine_version}"

    def load(self, columns_path, workdir):
        conn = chdb.connect(os.path.join(workdir, "chdb"))
        conn.query(f"DROP DATABASE IF EXISTS {DB}")
        conn.query(f"CREATE DATABASE {DB} ENGINE = Atomic")
        cols = ",\n".join(f"{c} {t}" for c, t in TYPES.items())
        indexes = ",\n".join(
            f"INDEX ix_{c} {c} TYPE bloom_filter({BLOOM_FPR}) GRANULARITY {SKIP_INDEX_GRANULARITY}" for c in TYPES if c != "read_only"
        )
        conn.query(
            f"CREATE TABLE {DB}.events (seq UInt64, event_time DateTime64(3, 'UTC'), {cols}, "
            f"record String, {indexes}) ENGINE = MergeTree ORDER BY (event_time, seq) "
            f"SETTINGS index_granularity = {INDEX_GRANULARITY}, min_compress_block_size = {MIN_COMPRESS_BLOCK_BYTES}, "
            f"max_compress_block_size = {MAX_COMPRESS_BLOCK_BYTES}"
        )
        structure = ", ".join(
            f"{c} {'UInt64' if c == 'seq' else 'Int64' if c == 'event_time_ms' else 'String'}"
            for c in harness.COLUMNS
        )
        select = ["seq", "fromUnixTimestamp64Milli(event_time_ms, 'UTC')"]
        for c in TYPES:
            if c in harness.MULTI:
                select.append(f"JSONExtract({c}, 'Array(String)')")
            else:
                select.append(c)
        select.append("record")
        conn.query(
            f"INSERT INTO {DB}.events SELECT {', '.join(select)} FROM file('{columns_path}', "
            f"'TabSeparatedRawWithNames', '{structure}')"
        )
        conn.query(f"OPTIMIZE TABLE {DB}.events FINAL")
        conn.close()
        return None

    def bytes_on_disk(self, workdir):
        """The table's active parts: the merge leaves the source parts on disk for a few minutes."""
        conn = chdb.connect(os.path.join(workdir, "chdb"))
        out = conn.query(f"SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{DB}' AND active", "TSV")
        conn.close()
        return int(str(out).strip())

    def open(self, workdir, threads_per_query):
        conn = chdb.connect(
            f"{os.path.join(workdir, 'chdb')}?max_threads={int(threads_per_query)}&optimize_read_in_order=1"
        )
        return Reader(conn)


if __name__ == "__main__":
    harness.main(ChDB)
