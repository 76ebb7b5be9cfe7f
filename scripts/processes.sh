#!/usr/bin/env bash
# What scripts/cluster.sh and scripts/chain.sh share: the ordo binary to
# run, refusing to start twice, waiting for a process to print a line, and
# stopping every process whose PID a file lists. Sourced; $NAME prefixes
# the messages.

# Prints the ordo binary to run: $ORDO_BIN, or the debug build (installing
# what building needs and building it first).
ordo_binary() {
  if [ -n "${ORDO_BIN:-}" ]; then echo "$ORDO_BIN"; return; fi
  . scripts/setup.sh >&2
  cargo build --locked --workspace --bins >&2
  echo "$CARGO_TARGET_DIR/debug/ordo"
}

# Fails when `pids` exists: the processes it lists may still run.
refuse_if_running() {
  if [ -e "$1" ]; then
    echo "$NAME: $1 exists; run '$0 stop' first" >&2
    exit 1
  fi
}

# Waits up to 30 s for `pattern` in `file`.
wait_for_line() {
  local file=$1 pattern=$2
  for _ in $(seq 1 300); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$NAME: no '$pattern' in $file" >&2
  return 1
}

# Sends SIGTERM to every PID in `pids`, waits up to 10 s for each to end,
# and removes the file.
stop_pids() {
  local pids=$1
  [ -e "$pids" ] || { echo "$NAME: not running (no $pids)"; return 0; }
  while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$pids"
  while read -r pid; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done < "$pids"
  rm -f "$pids"
  echo "$NAME: stopped"
}
