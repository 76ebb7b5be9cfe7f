#!/usr/bin/env bash
# A local cluster on loopback, data under ./ordo-cluster/:
#   bash scripts/cluster.sh start   # builds ordo, starts the members, prints each endpoint
#   bash scripts/cluster.sh stop    # stops them by PID (SIGTERM)
# Members: three sequencer voters that are also storage nodes
# (peer addresses 127.0.0.1:7531-7533), three more storage nodes
# (7534-7536); shards at 4+2 over the six. Nodes 7 and 8 are gateways with
# their replicas, serving clients on 127.0.0.1:7551 and 7552 (peer
# 7537-7538); node 7 also runs repair. Metrics on 7541-7548.
# A CLI key is made at ordo-cluster/cli.key with its default stream.
# ORDO_BIN=PATH runs that binary instead of building the debug one (for
# example a release build, to measure).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=cluster
. scripts/processes.sh
DIR=ordo-cluster
VOTERS=3
STORAGE=6
MEMBERS=8

addr() { echo "127.0.0.1:$((7530 + $1))"; }

write_config() {
  local id=$1 roles=$2
  {
    printf 'id = %d\ndata_dir = "%s/n%d"\npeer_listen = "%s"\n' "$id" "$DIR" "$id" "$(addr "$id")"
    printf 'roles = [%s]\ntls_dir = "%s/certs"\nmetrics_listen = "127.0.0.1:%d"\n' "$roles" "$DIR" $((7540 + id))
    # Eight members share this machine's cores: one runtime thread each
    # wakes less than one per core each (MAX_RUNTIME_WORKERS says why).
    printf 'runtime_workers = 1\n'
    if [ "$id" -gt $STORAGE ]; then
      printf 'listen = "127.0.0.1:%d"\n' $((7550 + id - STORAGE))
    fi
    # Every member reports to the voters (for `ordo cluster status`).
    printf 'sequencers = ["%s"' "$(addr 1)"
    for v in $(seq 2 $VOTERS); do printf ', "%s"' "$(addr "$v")"; done
    printf ']\n'
    if [ "$id" -gt $STORAGE ]; then
      printf 'storage = [{ id = 1, addr = "%s" }' "$(addr 1)"
      for m in $(seq 2 $STORAGE); do printf ', { id = %d, addr = "%s" }' "$m" "$(addr "$m")"; done
      printf ']\n'
    fi
  } > "$DIR/n$id.toml"
}

start() {
  local ordo
  ordo=$(ordo_binary)
  refuse_if_running "$DIR/pids"
  mkdir -p "$DIR"
  [ -e "$DIR/certs/ca.pem" ] || "$ordo" cluster certs --dir "$DIR/certs" $(for m in $(seq 1 $MEMBERS); do echo --node "$m"; done) > /dev/null
  # Every member but the last gateway, then the raft cluster; gateway 7
  # founds the log (its key becomes the log's admin) before gateway 8
  # starts, so the admin key is known: ordo-cluster/n7/node.key.
  for id in $(seq 1 $((MEMBERS - 1))); do start_member "$ordo" "$id"; done
  for id in $(seq 1 $((MEMBERS - 1))); do wait_for_line "$DIR/n$id.out" "ordo node $id listening on"; done
  export ORDO_CLUSTER_TLS="$DIR/certs"
  "$ordo" cluster init --peer "$(addr 1)" $(for v in $(seq 1 $VOTERS); do echo --voter "$v=$(addr "$v")"; done) > /dev/null 2>&1 || true
  # A gateway serves clients once the log is founded (its first entry).
  wait_for_line "$DIR/n$((STORAGE + 1)).out" "^ordo listening on"
  start_member "$ordo" "$MEMBERS"
  wait_for_line "$DIR/n$MEMBERS.out" "^ordo listening on"
  export ORDO_ENDPOINT=127.0.0.1:7551 ORDO_KEY="$DIR/cli.key"
  if [ ! -e "$DIR/cli.key" ]; then
    "$ordo" keygen --out "$DIR/cli.key" > /dev/null
    "$ordo" stream create default > /dev/null
  fi
  for id in $(seq 1 $MEMBERS); do grep "listening on" "$DIR/n$id.out"; done
  echo "metrics: http://127.0.0.1:7541/metrics .. http://127.0.0.1:7548/metrics"
  echo "status:  ORDO_CLUSTER_TLS=$DIR/certs $ordo cluster status --peer $(addr 1)"
  echo "clients: export ORDO_ENDPOINT=127.0.0.1:7551 ORDO_KEY=$DIR/cli.key   # or 7552"
  echo "log admin key (ordo cluster storage add|drain|remove): $DIR/n$((STORAGE + 1))/node.key"
}

start_member() {
  local ordo=$1 id=$2 roles='"storage"'
  [ "$id" -le $VOTERS ] && roles='"sequencer", "storage"'
  [ "$id" -gt $STORAGE ] && roles='"gateway", "replica"'
  [ "$id" -eq $((STORAGE + 1)) ] && roles='"gateway", "replica", "repair"'
  write_config "$id" "$roles"
  "$ordo" --log-level warn node --config "$DIR/n$id.toml" > "$DIR/n$id.out" 2>&1 &
  echo $! >> "$DIR/pids"
}

stop() {
  stop_pids "$DIR/pids"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
