#!/usr/bin/env bash
# The whole check CI runs: formatting, lints, every test. Prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
start=$(date +%s)
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
bash scripts/check-layering.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
# The other languages' clients, against the ordo binary the tests built.
bash scripts/python-client.sh
bash scripts/typescript-client.sh
# Every fuzz target for a few seconds, so none stops building or running
# (the long runs are recorded in docs/FUZZING.md).
bash scripts/fuzz.sh all 3
echo "scripts/test.sh: all checks passed in $(( $(date +%s) - start )) s"
