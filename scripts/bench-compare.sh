#!/usr/bin/env bash
# ordo vs etcd on this machine, one command: builds the release `ordo` and
# `ordo-bench`, then `ordo-bench compare` installs etcd-server if missing,
# starts etcd and `ordo dev` on loopback with fresh data directories, runs
# every workload at 1/16/64/256 clients on both, stops both, and writes
# target/bench-report/report.md and chart.svg. Extra arguments go to
# `ordo-bench compare` (see `ordo-bench compare --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target-release}"
cargo build --release --workspace --bin ordo --bin ordo-bench >&2
exec "$CARGO_TARGET_DIR/release/ordo-bench" compare --out target/bench-report "$@"
