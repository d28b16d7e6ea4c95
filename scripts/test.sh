#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs every test.
# This is the test command of README.md; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real clients the black-box tests drive: the aws CLI v1, boto3 and moto's server.
python3 - <<'PY' || python3 -m pip install --quiet --disable-pip-version-check 'awscli>=1.32,<2' 'boto3>=1.34' 'moto[server]>=5'
import importlib, shutil, sys
for m in ("boto3", "botocore", "moto", "rsa"):
    importlib.import_module(m)
sys.exit(0 if shutil.which("aws") else 1)
PY

# DuckDB reads the lake's Parquet files in crates/opentrail/tests/it/lake.rs.
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'duckdb>=1.1'

# The AWS SDK for JavaScript v3 that crates/opentrail/tests/it/sdk_js.rs drives, pinned by its package-lock.json;
# reinstalled only when the lock file is newer than what npm last installed.
sdkjs=crates/opentrail/tests/sdk-js
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "scripts/test.sh: '$tool' not found; the AWS SDK for JavaScript tests in $sdkjs need node >= 20 and npm" >&2
    exit 1
  fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "scripts/test.sh: node $(node --version) is too old; the AWS SDK for JavaScript tests need node >= 20" >&2
  exit 1
fi
if [ ! -f "$sdkjs/node_modules/.package-lock.json" ] || [ "$sdkjs/package-lock.json" -nt "$sdkjs/node_modules/.package-lock.json" ]; then
  (cd "$sdkjs" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The web console's browser tests (crates/opentrail/tests/it/console.rs): Debian's headless Chromium, and
# playwright-core pinned by tests/console/package-lock.json (it drives /usr/bin/chromium; it downloads no browser).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "scripts/test.sh: /usr/bin/chromium is missing; install Debian's chromium (apt-get install chromium)" >&2
    exit 1
  fi
fi
consolejs=crates/opentrail/tests/console
if [ ! -f "$consolejs/node_modules/.package-lock.json" ] || [ "$consolejs/package-lock.json" -nt "$consolejs/node_modules/.package-lock.json" ]; then
  (cd "$consolejs" && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

cargo nextest run --workspace --no-fail-fast "$@"
# Doc tests are not run by nextest.
cargo test --workspace --doc --quiet
