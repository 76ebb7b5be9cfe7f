#!/usr/bin/env bash
# The TypeScript client's tests: the published vectors, and a bank
# workload against a real `ordo dev` (the debug binary this checkout built).
# Installs the client's dependencies from the npm registry when missing.
set -euo pipefail
cd "$(dirname "$0")/../client/typescript"
target="${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target}"
if [ ! -d node_modules ] || [ package.json -nt node_modules ]; then
  npm install --no-audit --no-fund --silent
  touch node_modules
fi
ORDO_BIN="$target/debug/ordo" npm test --silent
