#!/usr/bin/env bash
# Import throughput (issue 12): `opentrail ingest DIR` and `opentrail ingest s3://…` (moto) of CloudTrail log
# files made from `opentrail gen` events, each into a fresh release server on this machine; events/s and MB/s
# end to end (listing included), against the 100,000 events/s target. Markdown table rows on stdout.
#
#   cargo build --release -p opentrail
#   scripts/bench-import.sh [EVENTS (1000000)] [RECORDS_PER_FILE (500)] [SOURCES (folder,s3)]
#
# OPENTRAIL=path/to/opentrail (default: target/release/opentrail, or $CARGO_TARGET_DIR/release/opentrail),
# SCRATCH=dir on a real disk (default /work/bench-tmp; removed afterwards unless KEEP=1), CORPUS=dir to keep
# the generated log files for the next run. The server's CPU by thread goes to stderr; RUNNABLE=1 also samples
# how many of the server's and the client's threads want a core at once (scripts/runnable.py).
set -euo pipefail
EVENTS=${1:-1000000}
PER_FILE=${2:-500}
SOURCES=${3:-folder,s3}
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${OPENTRAIL:-${CARGO_TARGET_DIR:-$here/target}/release/opentrail}
base=${SCRATCH:-/work/bench-tmp}
mkdir -p "$base"
work=$(mktemp -d "$base/import-XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# CORPUS=dir keeps the log files between runs (made once, then reused).
corpus=${CORPUS:-$work/bucket}
if [ ! -s "$corpus.stats" ]; then
  echo "generating $EVENTS events into log files of $PER_FILE records ($corpus)" >&2
  "$BIN" gen --events "$EVENTS" --seed 7 --span 30d | python3 "$here/scripts/make-log-files.py" "$corpus" "$PER_FILE" >"$corpus.stats.tmp"
  mv "$corpus.stats.tmp" "$corpus.stats"
fi
read -r files records raw gz <"$corpus.stats"
echo "$files log files, $records records, $((raw / 1000000)) MB of JSON, $((gz / 1000000)) MB gzip'd" >&2

# Starts a fresh server; sets $addr, $server_pid, AWS_SHARED_CREDENTIALS_FILE/AWS_PROFILE.
start_server() {
  local data="$work/data-$1"
  "$BIN" serve --data-dir "$data" --listen 127.0.0.1:0 >"$work/out-$1" 2>"$work/serve-$1.log" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 300); do grep -q 'listening on' "$work/out-$1" 2>/dev/null && break; sleep 0.1; done
  line=$(grep -m1 'listening on' "$work/out-$1")
  addr=${line##* }
  export AWS_SHARED_CREDENTIALS_FILE="$data/credentials" AWS_PROFILE=opentrail
}

cpu_secs() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

# The server's CPU by thread name (numbered threads summed: tokio-runtime-w, …), in µs per event and as a
# share of the wall time (100% = one core busy the whole run), on stderr: which thread limits the pipeline.
threads() {
  local pid=$1 secs=$2 events=$3
  for t in /proc/"$pid"/task/*; do
    # comm may hold spaces: the fields after it start at the last ')'.
    sed -E 's/^[0-9]+ \((.*)\) [A-Za-z] (.*)$/\1\t\2/' "$t/stat" 2>/dev/null
  done | python3 -c '
import sys, re, collections
secs, events = float(sys.argv[1]), int(sys.argv[2])
cpu = collections.Counter()
for line in sys.stdin:
    name, rest = line.rstrip("\n").split("\t")
    f = rest.split()
    cpu[re.sub(r"[-_ ]?[0-9]+$", "", name)] += (int(f[10]) + int(f[11])) / 100  # utime, stime (fields 14, 15)
print("server threads (CPU s, µs/event, share of wall time):", file=sys.stderr)
for name, s in cpu.most_common(8):
    print(f"  {name:20} {s:6.2f} s {s * 1e6 / events:5.2f} µs {100 * s / secs:5.1f} %", file=sys.stderr)
' "$secs" "$events"
}

# Runs one import; prints its table row.
measure() {
  local name=$1 source=$2; shift 2
  start_server "$name"
  local cpu0 t0 t1 cpu1
  cpu0=$(cpu_secs "$server_pid")
  t0=$(date +%s.%N)
  /usr/bin/time -o "$work/time-$name" -f "%U %S" \
    "$BIN" ingest --endpoint "$addr" --state "$work/position-$name.json" "$source" "$@" 2>"$work/ingest-$name.log" &
  local client_pid=$!
  if [ "${RUNNABLE:-0}" = 1 ]; then
    # How many of the server's and the client's threads want a core at once (sampled every 5 ms): with a
    # mean of 2 or more, two idle cores would both be busy.
    local ingest_pid=""
    for _ in $(seq 100); do ingest_pid=$(pgrep -P "$client_pid" || true); [ -n "$ingest_pid" ] && break; sleep 0.01; done
    python3 "$here/scripts/runnable.py" "$work/done-$name" "$server_pid" $ingest_pid &
    local sampler=$!
  fi
  wait "$client_pid"
  t1=$(date +%s.%N)
  if [ "${RUNNABLE:-0}" = 1 ]; then touch "$work/done-$name"; wait "$sampler"; fi
  cpu1=$(cpu_secs "$server_pid")
  local summary
  summary=$(grep ' new, ' "$work/ingest-$name.log" | head -1)
  threads "$server_pid" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$records" >&2
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  local client_cpu
  client_cpu=$(awk '{print $1 + $2}' "$work/time-$name")
  python3 - "$name" "$t0" "$t1" "$records" "$raw" "$gz" "$cpu0" "$cpu1" "$summary" "$client_cpu" <<'PY'
import os, sys
name, t0, t1, records, raw, gz, cpu0, cpu1, summary, client_cpu = sys.argv[1:]
secs = float(t1) - float(t0)
records, raw, gz = int(records), int(raw), int(gz)
rate = records / secs
verdict = "met" if rate >= 100_000 else f"**MISSED** ({100 * rate / 100_000:.0f}% of target)"
cpu_us = (float(cpu1) - float(cpu0)) * 1e6 / records
client_us = float(client_cpu) * 1e6 / records
# What 2 idle cores would do if the server and the client had them to themselves (S3 server's CPU not counted).
ceiling = 2e6 / (cpu_us + client_us)
load = os.getloadavg()[0]
print(f"| {name} | {records:,} | {secs:.1f} s | {rate:,.0f} ev/s | {raw / secs / 1e6:,.0f} MB/s JSON ({gz / secs / 1e6:,.1f} MB/s gzip) | {cpu_us:.1f} µs | {client_us:.2f} µs | {ceiling:,.0f} ev/s | {load:.1f} | {verdict} | {summary} |")
PY
}

echo "| source | events | wall time (listing included) | events/s | MB/s | server CPU per event | client CPU per event | 2 cores ÷ CPU per event | load average | ≥ 100,000 ev/s | the import's summary |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
if [[ $SOURCES == *folder* ]]; then
  measure folder "$corpus"
fi
if [[ $SOURCES == *s3* ]]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 -m moto.server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null && break; sleep 0.1; done
  echo "uploading to moto S3 on port $port" >&2
  python3 - "$port" "$corpus" <<'PY'
import os, sys, concurrent.futures, boto3
port, root = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="moto", aws_secret_access_key="moto-secret")
s3.create_bucket(Bucket="bench")
paths = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
def put(p):
    with open(p, "rb") as f:
        s3.put_object(Bucket="bench", Key=os.path.relpath(p, root), Body=f.read())
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(put, paths))
PY
  measure "moto S3" "s3://bench/AWSLogs/" --s3-endpoint "http://127.0.0.1:$port"
fi
