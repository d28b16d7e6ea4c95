#!/usr/bin/env bash
# The console's first page of results over 1 M events (BENCHMARKS.md, "Web console: first page of results"):
# a release server, `opentrail gen --events N | opentrail ingest -`, then headless Chromium (playwright-core,
# crates/opentrail/tests/console/bench.mjs) timing navigation → first row visible, ROUNDS times per page.
# Usage: scripts/bench-console.sh [EVENTS] [ROUNDS]
#   (needs `cargo build --release -p opentrail`, /usr/bin/chromium and `npm ci` in crates/opentrail/tests/console)
set -euo pipefail
EVENTS=${1:-1000000}
ROUNDS=${2:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${OPENTRAIL_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/opentrail}
DIR=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
cat > "$DIR/cfg.toml" <<'TOML'
account_id = "123456789012"
region = "us-east-1"

[[principals]]
access_key_id = "AKIAEXAMPLEJOHN00001"
secret_access_key = "john-secret-key-000000000000000000000001"
user_name = "John"
role = "admin"
TOML
"$BIN" serve --config "$DIR/cfg.toml" --data-dir "$DIR/data" --listen 127.0.0.1:0 > "$DIR/serve.out" 2> "$DIR/serve.err" &
PID=$!
for _ in $(seq 100); do grep -q listening "$DIR/serve.out" 2>/dev/null && break; sleep 0.2; done
E=$(grep -o 'http://[0-9.:]*' "$DIR/serve.out" | head -1)
export AWS_ACCESS_KEY_ID=AKIAEXAMPLEJOHN00001 AWS_SECRET_ACCESS_KEY=john-secret-key-000000000000000000000001
s=$(date +%s.%N)
"$BIN" gen --events "$EVENTS" --seed 7 --start 2026-11-01T00:00:00Z --span 7d | "$BIN" ingest --endpoint "$E" - > /dev/null 2>&1
t=$(date +%s.%N)
echo "ingested $EVENTS events in $(echo "$t - $s" | bc) s"
cd "$ROOT/crates/opentrail/tests/console"
OPENTRAIL_URL=$E ROUNDS=$ROUNDS ADMIN_KEY=$AWS_ACCESS_KEY_ID ADMIN_SECRET=$AWS_SECRET_ACCESS_KEY node bench.mjs
