#!/usr/bin/env bash
# One `ordo dev` run, for comparing two builds side by side: starts
# `ordo dev` on a fresh data directory (loopback, default ports), drives it
# with `ordo-bench run`, prints the run's line and the server's own means
# (commit latency, journal sync, transactions per entry), then stops the
# server by PID and removes its directory.
#
#   bash scripts/bench-one.sh [--bin DIR] [--clients N] [--seconds S]
#                             [--pin] [--load-first S] [--workload W]
#                             [-- ORDO_DEV_FLAGS...]
#
#   --bin DIR       where `ordo` and `ordo-bench` are (default: the release
#                   build in $CARGO_TARGET_DIR, built if missing)
#   --clients N     concurrent clients (default 64)
#   --seconds S     measured seconds (default 8, after 1 s of warm-up)
#   --pin           server on core 0, load generator on core 1 (taskset)
#   --load-first S  first S seconds of 16-client puts on the same server,
#                   so the measured run meets RocksDB's flushes and
#                   compactions of a state that has grown (default 0)
#   --workload W    put (default) or get; get first writes the keys with
#                   3 s of 64-client puts, so that every read finds one
#   -- FLAGS        passed to `ordo dev` (e.g. --serving-threads 0)
#
# Alternate builds run after run (A B A B ...): this machine's figures move
# by several percent between minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="" clients=64 seconds=8 pin=false load_first=0 workload=put dev_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --pin) pin=true; shift ;;
    --load-first) load_first="$2"; shift 2 ;;
    --workload) workload="$2"; shift 2 ;;
    --) shift; dev_flags=("$@"); break ;;
    *) echo "bench-one.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$workload" in
  put | get) ;;
  *) echo "bench-one.sh: --workload is put or get, not $workload" >&2; exit 2 ;;
esac
if [ -z "$bin" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target-release}"
  bin="$CARGO_TARGET_DIR/release"
  [ -x "$bin/ordo" ] && [ -x "$bin/ordo-bench" ] ||
    cargo build --release --workspace --bin ordo --bin ordo-bench >&2
fi
server_cpu=() load_cpu=()
if $pin; then server_cpu=(taskset -c 0) load_cpu=(taskset -c 1); fi

dir=$(mktemp -d /var/tmp/ordo-bench-one.XXXXXX)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"${server_cpu[@]}" "$bin/ordo" dev --data-dir "$dir/data" --log-level warn "${dev_flags[@]}" \
  >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 1 200); do
  curl -sf 127.0.0.1:7421/metrics >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  sleep 0.1
done

run() { # WORKLOAD CLIENTS SECONDS
  "${load_cpu[@]}" "$bin/ordo-bench" run --target ordo --endpoint 127.0.0.1:7420 \
    --key "$dir/data/cli.key" --workload "$1" --clients "$2" --seconds "$3" \
    --warmup 1 --keys 100000 | grep -A1 "ops/s" | tail -1
}
if [ "$load_first" -gt 0 ]; then echo "load first: $(run put 16 "$load_first")"; fi
if [ "$workload" = get ]; then echo "keys written: $(run put 64 3)"; fi
line=$(run "$workload" "$clients" "$seconds")
means=$(curl -s 127.0.0.1:7421/metrics | awk '
  /^ordo_commit_latency_seconds_sum/ {cs=$2} /^ordo_commit_latency_seconds_count/ {cn=$2}
  /^ordo_fsync_latency_seconds_sum/ {fs=$2} /^ordo_fsync_latency_seconds_count/ {fn=$2}
  /^ordo_batch_transactions_sum/ {bs=$2} /^ordo_batch_transactions_count/ {bn=$2}
  END {printf "commit %.1f us, sync %.1f us, %.1f transactions per entry (server means over the whole run)", 1e6*cs/cn, 1e6*fs/fn, bs/bn}')
echo "$line"
echo "$means"
