#!/usr/bin/env bash
# What scripts/cluster.sh and scripts/chain.sh share: waiting for a
# process to print a line, and stopping every process whose PID a file
# lists. Sourced; $NAME prefixes the messages.

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
