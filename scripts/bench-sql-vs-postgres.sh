#!/usr/bin/env bash
# Point selects and single-row inserts over SQL on ordo and on PostgreSQL 15,
# same schema, data and client counts (see benches/src/bin/sql_bench.rs).
# Installs PostgreSQL 15 from Debian if missing, starts both servers on
# loopback with fresh temporary data directories (both acknowledge commits
# only after fsync: ordo always, PostgreSQL with its defaults), runs the
# benchmark, and stops both by PID. Extra arguments go to ordo-sql-bench
# (e.g. --rows 100000 --clients 1,16,64 --seconds 10).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target-release}"

PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PG_BIN/postgres" ]; then
  apt-get update -qq && apt-get install -y -qq postgresql-15 >/dev/null
fi
cargo build --release --workspace --bin ordo --bin ordo-sql-bench >&2

work=$(mktemp -d)
chown postgres "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PostgreSQL: its own cluster, on loopback only, default durability (fsync on,
# synchronous_commit on).
pg_port=$(free_port)
runuser -u postgres -- "$PG_BIN/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PG_BIN/postgres" -D "$work/pg" -p "$pg_port" -k "$work" \
  -c listen_addresses=127.0.0.1 -c max_connections=300 >"$work/pg.log" 2>&1 &
pids+=($!)

# ordo dev.
ordo_port=$(free_port)
"$CARGO_TARGET_DIR/release/ordo" dev --data-dir "$work/ordo" --listen "127.0.0.1:$ordo_port" \
  --metrics-listen 127.0.0.1:0 --no-cli-key >"$work/ordo.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  if runuser -u postgres -- "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$pg_port" >/dev/null 2>&1 \
     && grep -q "ordo listening" "$work/ordo.log"; then
    break
  fi
  sleep 0.1
done

"$CARGO_TARGET_DIR/release/ordo-sql-bench" \
  --ordo "127.0.0.1:$ordo_port" \
  --postgres "host=127.0.0.1 port=$pg_port user=postgres" "$@"
