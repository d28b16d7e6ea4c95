#!/usr/bin/env python3
"""CloudTrail log files from NDJSON records (`opentrail gen` output on stdin), for the import benchmark.

Usage: opentrail gen --events N | scripts/make-log-files.py OUT_DIR [RECORDS_PER_FILE]

Writes OUT_DIR/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMM>Z_<16
chars>.json.gz, each a gzip'd {"Records":[...]} of RECORDS_PER_FILE consecutive records (default 500) with the
records verbatim, named by its first record's account, Region and eventTime minute, as CloudTrail names them;
plus one digest file (which an import must skip) per 10 log files. Prints the files, records and bytes written.
"""
import gzip
import os
import re
import sys

TIME = re.compile(rb'"eventTime":"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})')
ACCOUNT = re.compile(rb'"recipientAccountId":"(\d{12})"')
REGION = re.compile(rb'"awsRegion":"([a-z0-9-]+)"')


def main():
    out = sys.argv[1]
    per_file = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    files = records = raw_bytes = gz_bytes = 0
    batch = []

    def flush():
        nonlocal files, records, raw_bytes, gz_bytes
        if not batch:
            return
        first = batch[0]
        t = TIME.search(first)
        y, mo, d, h, mi = (x.decode() for x in t.groups()) if t else ("2026", "01", "01", "00", "00")
        a = ACCOUNT.search(first)
        account = a.group(1).decode() if a else "123456789012"
        r = REGION.search(first)
        region = r.group(1).decode() if r else "us-east-1"
        folder = os.path.join(out, "AWSLogs", account, "CloudTrail", region, y, mo, d)
        os.makedirs(folder, exist_ok=True)
        name = f"{account}_CloudTrail_{region}_{y}{mo}{d}T{h}{mi}Z_{files:016d}.json.gz"
        body = b'{"Records":[' + b",".join(batch) + b"]}"
        data = gzip.compress(body, compresslevel=6)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
        if files % 10 == 0:
            dfolder = os.path.join(out, "AWSLogs", account, "CloudTrail-Digest", region, y, mo, d)
            os.makedirs(dfolder, exist_ok=True)
            dname = f"{account}_CloudTrail-Digest_{region}_bench_{region}_{y}{mo}{d}T{h}{mi}00Z.json.gz"
            with open(os.path.join(dfolder, dname), "wb") as f:
                f.write(gzip.compress(b'{"logFiles":[]}'))
        files += 1
        records += len(batch)
        raw_bytes += len(body)
        gz_bytes += len(data)
        batch.clear()

    for line in sys.stdin.buffer:
        line = line.strip()
        if not line:
            continue
        batch.append(line)
        if len(batch) == per_file:
            flush()
    flush()
    print(f"{files} {records} {raw_bytes} {gz_bytes}")


if __name__ == "__main__":
    main()
