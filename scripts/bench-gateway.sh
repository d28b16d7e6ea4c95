#!/usr/bin/env bash
# The audit gateway's benchmark (issue 9, BENCHMARKS.md "Audit gateway"): one upstream (nginx answering a small
# JSON body) hit directly, through nginx as a plain reverse proxy, and through opentrail's gateway in
# fail-closed and spool mode (two [[gateways]] inside one `opentrail serve`), on small requests and 1 MB
# request bodies: throughput at a fixed concurrency, then latency percentiles at a fixed 5,000 req/s (oha -q,
# constant rate, so no coordinated omission). Prints a Markdown table on stdout; progress on stderr.
#
#   cargo build --release -p opentrail && scripts/bench-gateway.sh
#
# Knobs (environment): OPENTRAIL_BIN (default $CARGO_TARGET_DIR/release/opentrail), OHA (default oha on PATH),
# DURATION (default 10s), CONCURRENCY (default 50), RATE (default 5000), SCRATCH (default /work/bench-tmp/gw;
# a real disk: fail-closed waits for its fsync).
set -euo pipefail

TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${OPENTRAIL_BIN:-$TARGET_DIR/release/opentrail}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-50}
RATE=${RATE:-5000}
SCRATCH=${SCRATCH:-/work/bench-tmp/gw}

log() { echo "bench-gateway: $*" >&2; }

command -v nginx >/dev/null || { log "installing nginx"; apt-get install -y -q nginx >&2; }
# oha for both measurements; WRK_ONLY=1 measures throughput with wrk alone (no constant-rate latency).
if [ -z "${WRK_ONLY:-}" ] && [ -z "${OHA:-}" ]; then
  if command -v oha >/dev/null; then OHA=$(command -v oha); else
    log "installing oha (cargo install)"; cargo install --locked oha >&2; OHA=$(command -v oha)
  fi
fi
command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y -q wrk >&2; }
[ -x "$BIN" ] || { log "no $BIN: cargo build --release -p opentrail"; exit 2; }

rm -rf "$SCRATCH"; mkdir -p "$SCRATCH"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); PX=$(free_port)

# nginx: the upstream (discards the body, answers 40 bytes) and a plain reverse proxy in front of it.
cat > "$SCRATCH/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $SCRATCH/nginx.pid;
error_log $SCRATCH/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $SCRATCH/nginx-body;
  proxy_temp_path $SCRATCH/nginx-proxy;
  client_max_body_size 4m;
  client_body_buffer_size 2m;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 256; }
  server {
    listen 127.0.0.1:$UP;
    location / { default_type application/json; return 200 '{"ok":true,"service":"bench-upstream"}\n'; }
  }
  server {
    listen 127.0.0.1:$PX;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_request_buffering off;
    }
  }
}
EOF
nginx -c "$SCRATCH/nginx.conf" -p "$SCRATCH" &
NGINX=$!

cat > "$SCRATCH/opentrail.toml" <<EOF
account_id = "123456789012"
[[principals]]
access_key_id = "AKIAEXAMPLEBENCH0001"
secret_access_key = "bench-secret-000000000000000000000000001"
user_name = "bench"
[[gateways]]
name = "failclosed"
kind = "http"
listen = "127.0.0.1:0"
upstream = "http://127.0.0.1:$UP"
event_source = "bench.example"
[[gateways]]
name = "spool"
kind = "http"
listen = "127.0.0.1:0"
upstream = "http://127.0.0.1:$UP"
event_source = "bench.example"
spool = "$SCRATCH/spool"
EOF
OPENTRAIL_LOG=warn "$BIN" serve --config "$SCRATCH/opentrail.toml" --data-dir "$SCRATCH/data" --listen 127.0.0.1:0 \
  > "$SCRATCH/serve.out" 2> "$SCRATCH/serve.err" &
SERVE=$!
trap 'kill $SERVE $NGINX 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ "$(grep -c 'gateway .* listening' "$SCRATCH/serve.out" 2>/dev/null)" = 2 ] && break; sleep 0.1; done
SERVER=$(sed -n 's/^opentrail listening on //p' "$SCRATCH/serve.out")
FC=$(sed -n 's/^opentrail gateway failclosed listening on //p' "$SCRATCH/serve.out")
SP=$(sed -n 's/^opentrail gateway spool listening on //p' "$SCRATCH/serve.out")
[ -n "$FC" ] && [ -n "$SP" ] || { log "server did not start"; cat "$SCRATCH/serve.err" >&2; exit 2; }
head -c 1048576 /dev/urandom > "$SCRATCH/1mb.bin"

# oha, JSON summary → "rps p50 p99 success" (latencies in ms).
run_oha() {
  "$OHA" --no-tui --output-format json "$@" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
s, p = d["summary"], d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if k.startswith("2"))
total = sum(codes.values()) or 1
rps, p50, p99 = s["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000
print("%.0f %.2f %.2f %.1f" % (rps, p50, p99, 100 * ok / total))'
}

# wrk -> "rps p50 p99 -" (closed loop, latencies in ms); 1 MB bodies posted by a Lua script.
cat > "$SCRATCH/post1mb.lua" <<'LUA'
local f = io.open(os.getenv("BODY_FILE"), "rb"); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.headers["Content-Type"] = "application/octet-stream"
done = function(summary, latency, requests)
  io.write(string.format("%.0f %.2f %.2f -\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
cat > "$SCRATCH/get.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("%.0f %.2f %.2f -\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
run_wrk() { # body url
  local script="$SCRATCH/get.lua"; [ "$1" = 1MB ] && script="$SCRATCH/post1mb.lua"
  BODY_FILE="$SCRATCH/1mb.bin" wrk -t2 -c "$CONCURRENCY" -d "$DURATION" -s "$script" "$2" | tail -1
}

declare -A URL=([direct]="http://127.0.0.1:$UP" [nginx]="http://127.0.0.1:$PX" [gateway-failclosed]="$FC" [gateway-spool]="$SP")
ORDER=(direct nginx gateway-failclosed gateway-spool)
fsyncs() { curl -s "$SERVER/metrics" | awk '/^opentrail_journal_fsync_seconds_(sum|count)/ {print $2}' | paste -sd' '; }

echo "| target | body | throughput (req/s, c=$CONCURRENCY) | p50 ms | p99 ms | 2xx % | p50 ms @ $RATE/s | p99 ms @ $RATE/s | 2xx % @ $RATE/s |"
echo "|---|---|---|---|---|---|---|---|---|"
for body in small 1MB; do
  for t in "${ORDER[@]}"; do
    u="${URL[$t]}/bench/items"
    if [ "$body" = small ]; then args=(-m GET); else args=(-m POST -D "$SCRATCH/1mb.bin" -T application/octet-stream); fi
    log "$t $body: throughput"
    if [ -n "${WRK_ONLY:-}" ]; then
      read -r rps p50 p99 ok < <(run_wrk "$body" "$u")
    else
      read -r rps p50 p99 ok < <(run_oha -z "$DURATION" -c "$CONCURRENCY" "${args[@]}" "$u")
    fi
    if [ "$body" = small ] && [ -z "${WRK_ONLY:-}" ]; then
      log "$t $body: latency at $RATE/s"
      read -r _ q50 q99 qok < <(run_oha -z "$DURATION" -c "$CONCURRENCY" -q "$RATE" --latency-correction "${args[@]}" "$u")
    else
      q50=-; q99=-; qok=-
    fi
    echo "| $t | $body | $rps | $p50 | $p99 | $ok | $q50 | $q99 | $qok |"
  done
done
read -r fsum fcount < <(fsyncs)
python3 -c "import sys; s,c=float('$fsum'),float('$fcount'); print(f'\nGroup commits: {c:.0f}, mean fsync {1000*s/max(c,1):.2f} ms')"
echo "Records stored: $(curl -s "$SERVER/metrics" | awk '/^opentrail_gateway_recorded_total/ {n+=$2} END {print n}')"
