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

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

cargo nextest run --workspace --no-fail-fast "$@"
# Doc tests are not run by nextest.
cargo test --workspace --doc --quiet
