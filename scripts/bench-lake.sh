#!/usr/bin/env bash
# The lake benchmark (BENCHMARKS.md, "Lake"): EVENTS generated events (default 10 M, seed 7, 90 days from 2026-01-01) through a
# release server into an event data store, then five audit queries by opentrail (StartQuery … GetQueryResults,
# through `opentrail query`), DuckDB and chDB over the same Parquet files, and the lake's bytes on disk per event.
# Usage: scripts/bench-lake.sh [EVENTS] [REPS]   (needs `cargo build --release -p opentrail`, pip duckdb chdb)
# KEEP=dir: generate into dir and keep it; a later run with the same KEEP=dir skips the ingest and queries it again.
set -euo pipefail
EVENTS=${1:-10000000}
REPS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${OPENTRAIL_BIN:-$ROOT/target/release/opentrail}
if [ -n "${KEEP:-}" ]; then
  DIR=$KEEP
  mkdir -p "$DIR"
  trap 'kill "${pid:-0}" 2>/dev/null || true' EXIT
else
  DIR=${SCRATCH:-$(mktemp -d /work/bench-lake.XXXXXX)}
  trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$DIR"' EXIT
fi
cd "$DIR"
cat > cfg.toml <<'TOML'
account_id = "123456789012"
region = "us-east-1"

[[principals]]
access_key_id = "AKIAEXAMPLEJOHN00001"
secret_access_key = "john-secret-key-000000000000000000000001"
user_name = "John"
role = "admin"
TOML
export AWS_ACCESS_KEY_ID=AKIAEXAMPLEJOHN00001 AWS_SECRET_ACCESS_KEY=john-secret-key-000000000000000000000001
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
serve() {
  "$BIN" serve --config cfg.toml --data-dir data --listen 127.0.0.1:0 > serve.out 2> serve.err &
  pid=$!
  for _ in $(seq 300); do grep -q listening serve.out 2>/dev/null && break; sleep 0.2; done
  E=$(grep -o 'http://[0-9.:]*' serve.out | head -1)
  export OPENTRAIL_ENDPOINT=$E
}
if [ ! -d data/lake ]; then
  # Generate, ingest and let the lake take it all in (skipped when KEEP=dir already holds a lake).
  serve
  s=$(date +%s.%N)
  "$BIN" gen --events "$EVENTS" --seed 7 --span 90d | "$BIN" ingest - > /dev/null 2>ingest.err
  t=$(date +%s.%N)
  # The default store (every management event, S3/Lambda/DynamoDB data events) takes in the whole journal.
  "$BIN" query --output csv "SELECT count(*) FROM events" > /dev/null
  for _ in $(seq 7200); do
    lag=$(curl -s "$E/metrics" | awk '/^opentrail_view_lag_events\{view="lake:/ {s += $2} END {print s + 0}')
    [ "$lag" = 0 ] && break
    sleep 0.5
  done
  u=$(date +%s.%N)
  printf 'ingest %.1f s; lake caught up %.1f s after the ingest ended\n' "$(echo "$t - $s" | bc)" "$(echo "$u - $t" | bc)" >&2
  # A graceful stop flushes the tail to Parquet, so every engine reads the same files; then serve again.
  kill "$pid"; wait "$pid" 2>/dev/null || true
fi
serve
python3 "$ROOT/scripts/bench-lake.py" --bin "$BIN" --data data --reps "$REPS" --events "$EVENTS"
