#!/usr/bin/env bash
# A log ordered on an EVM chain, on loopback, data under ./ordo-chain/:
#   bash scripts/chain.sh start   # installs anvil if missing, starts it, deploys the contract, starts the members
#   bash scripts/chain.sh stop    # stops them and anvil by PID (SIGTERM)
# anvil (from npm, evm/node_modules) listens on 127.0.0.1:7560, mining a
# block per transaction (CHAIN_BLOCK_TIME=SECONDS mines on a timer
# instead). The contract is deployed from anvil's first dev account.
# Members: storage nodes 1-3 (peer 127.0.0.1:7561-7563, shards at 2+1),
# gateway 4 (clients on 127.0.0.1:7571, its node key funded from the dev
# account: it pays for its appends) and read replica 5 (clients on 7572).
# A CLI key is made at ordo-chain/cli.key with its default stream.
# ORDO_BIN=PATH runs that binary instead of building the debug one.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=chain
. scripts/processes.sh
DIR=ordo-chain
RPC=http://127.0.0.1:7560
# anvil's first dev account (its published test mnemonic): local use only.
DEV_KEY=ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

write_config() {
  local id=$1 roles=$2
  {
    printf 'id = %d\ndata_dir = "%s/n%d"\npeer_listen = "127.0.0.1:%d"\n' "$id" "$DIR" "$id" $((7560 + id))
    printf 'roles = [%s]\ntls_dir = "%s/certs"\nmetrics_listen = "127.0.0.1:%d"\n' "$roles" "$DIR" $((7580 + id))
    if [ "$id" -gt 3 ]; then
      printf 'listen = "127.0.0.1:%d"\ndata_shards = 2\nparity_shards = 1\n' $((7567 + id))
      printf 'storage = [{ id = 1, addr = "127.0.0.1:7561" }, { id = 2, addr = "127.0.0.1:7562" }, { id = 3, addr = "127.0.0.1:7563" }]\n'
      printf 'sequencer = "evm"\n[evm]\nrpc_url = "%s"\ncontract = "%s"\nchain_id = 31337\nfrom_block = %s\npoll_interval_ms = 200\n' \
        "$RPC" "$CONTRACT" "$FROM_BLOCK"
    fi
  } > "$DIR/n$id.toml"
}

start_member() {
  local ordo=$1 id=$2 roles=$3
  write_config "$id" "$roles"
  "$ordo" --log-level warn node --config "$DIR/n$id.toml" > "$DIR/n$id.out" 2>&1 &
  echo $! >> "$DIR/pids"
}

start_anvil() {
  local blocks=()
  [ -n "${CHAIN_BLOCK_TIME:-}" ] && blocks=(--block-time "$CHAIN_BLOCK_TIME")
  # A home of its own: anvil keeps past blocks' states under
  # $HOME/.foundry/anvil/tmp, which then goes away with $DIR.
  mkdir -p "$DIR/anvil-home"
  HOME="$PWD/$DIR/anvil-home" evm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --host 127.0.0.1 --port 7560 "${blocks[@]}" > "$DIR/anvil.out" 2>&1 &
  echo $! >> "$DIR/pids"
  wait_for_line "$DIR/anvil.out" "Listening on"
}

start() {
  local ordo
  . scripts/setup.sh   # anvil and solc from npm, whichever binary runs
  ordo=$(ordo_binary)
  refuse_if_running "$DIR/pids"
  # anvil keeps its chain in memory: a new start is a new chain and a new log.
  rm -rf "$DIR"
  mkdir -p "$DIR"
  (umask 077 && echo "$DEV_KEY" > "$DIR/deployer.key")
  start_anvil
  read -r _ CONTRACT _ FROM_BLOCK < <("$ordo" chain --rpc-url "$RPC" --key "$DIR/deployer.key" deploy)
  "$ordo" cluster certs --dir "$DIR/certs" --node 1 --node 2 --node 3 --node 4 --node 5 > /dev/null
  for id in 1 2 3; do start_member "$ordo" "$id" '"storage"'; done
  mkdir -p "$DIR/n4"
  gateway=$("$ordo" keygen --out "$DIR/n4/node.key" | cut -d' ' -f1)
  "$ordo" chain --rpc-url "$RPC" --key "$DIR/deployer.key" fund --to "$gateway" --wei 100000000000000000000 > /dev/null
  start_member "$ordo" 4 '"gateway", "replica"'
  wait_for_line "$DIR/n4.out" "^ordo listening on"
  start_member "$ordo" 5 '"replica"'
  wait_for_line "$DIR/n5.out" "^ordo listening on"
  export ORDO_ENDPOINT=127.0.0.1:7571 ORDO_KEY="$DIR/cli.key"
  "$ordo" keygen --out "$DIR/cli.key" > /dev/null
  "$ordo" stream create default > /dev/null
  echo "chain:    anvil on $RPC, contract $CONTRACT (from block $FROM_BLOCK)"
  echo "gateway:  node 4 ($gateway), clients on 127.0.0.1:7571"
  echo "replica:  node 5, clients on 127.0.0.1:7572"
  echo "clients:  export ORDO_ENDPOINT=127.0.0.1:7571 ORDO_KEY=$DIR/cli.key   # or 7572 to read"
}

stop() {
  stop_pids "$DIR/pids"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
