#!/usr/bin/env bash
# Ingest with and without an Insights trail (BENCHMARKS.md, "Ingest with an Insights trail running").
# Usage: scripts/bench-insights-ingest.sh [EVENTS] [ROUNDS]   (needs `cargo build --release -p opentrail` and the aws CLI)
set -euo pipefail
EVENTS=${1:-1000000}
ROUNDS=${2:-2}
BIN=${OPENTRAIL_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/opentrail}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR"
"$BIN" gen --events "$EVENTS" --seed 3 --start 2026-11-20T00:00:00Z --span 2d > corpus.ndjson
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
run() { # $1: with | without
  rm -rf data
  "$BIN" serve --config cfg.toml --data-dir data --listen 127.0.0.1:0 > serve.out 2> serve.err &
  local pid=$!
  for _ in $(seq 100); do grep -q listening serve.out 2>/dev/null && break; sleep 0.2; done
  local e
  e=$(grep -o 'http://[0-9.:]*' serve.out | head -1)
  aws --endpoint-url "$e" cloudtrail create-trail --name audit --s3-bucket-name bench-logs --is-multi-region-trail > /dev/null
  aws --endpoint-url "$e" cloudtrail start-logging --name audit
  if [ "$1" = with ]; then
    aws --endpoint-url "$e" cloudtrail put-insight-selectors --trail-name audit \
      --insight-selectors '[{"InsightType":"ApiCallRateInsight"},{"InsightType":"ApiErrorRateInsight"}]' > /dev/null
  fi
  local s t u lag
  s=$(date +%s.%N)
  "$BIN" ingest --endpoint "$e" corpus.ndjson > /dev/null 2>&1
  t=$(date +%s.%N)
  for _ in $(seq 1200); do
    lag=$(curl -s "$e/metrics" | awk '/^opentrail_view_lag_events/ {s += $2} END {print s + 0}')
    [ "$lag" = 0 ] && break
    sleep 0.25
  done
  u=$(date +%s.%N)
  printf '%-8s ingest %6.2f s   all views caught up %6.2f s after the start\n' "$1" "$(echo "$t - $s" | bc)" "$(echo "$u - $s" | bc)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
for _ in $(seq "$ROUNDS"); do run without; run with; done
