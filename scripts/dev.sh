#!/usr/bin/env bash
# Builds ordo and starts `ordo dev`: every role in one process on 127.0.0.1:7420,
# data under ./ordo-data. Extra arguments go to `ordo dev` (see `ordo dev --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
# Always --workspace: building one package alone unifies build-time features
# differently and recompiles RocksDB from scratch.
cargo build --locked --workspace --bins
exec "$CARGO_TARGET_DIR/debug/ordo" dev "$@"
