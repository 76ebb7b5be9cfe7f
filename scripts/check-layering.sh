#!/usr/bin/env bash
# Checks ARCHITECTURE.md's dependency invariants with `cargo tree`: each line
# below names a crate and the packages that must not appear among its normal
# (non-dev) dependencies, direct or indirect.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() {
  local crate=$1; shift
  local deps
  deps=$(cargo tree --locked -p "$crate" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
  for forbidden in "$@"; do
    if grep -qx "$forbidden" <<<"$deps"; then
      echo "layering: $crate must not depend on $forbidden" >&2
      fail=1
    fi
  done
}
check ordo-kv tonic sqlparser ordo-log ordo-txn ordo-sql ordo-proto
check ordo-log tonic sqlparser ordo-kv ordo-txn ordo-sql ordo-proto
# Replay reaches the log's commitments only through the mining rules,
# which need no RocksDB of the log's own.
check ordo-txn tonic sqlparser ordo-sql ordo-proto ordo-raft ordo-evm
check ordo-mine tonic sqlparser ordo-kv ordo-txn ordo-sql ordo-proto rocksdb librocksdb-sys
# SQL reaches the log's types only through replay's mining rules (no RocksDB
# of the log's own: ordo-mine's check below).
check ordo-sql tonic ordo-proto ordo-raft ordo-evm
# The raft sequencer orders opaque headers: it knows no state, no SQL.
check ordo-raft sqlparser ordo-kv ordo-txn ordo-sql ordo-server ordo-client
# The EVM sequencer orders opaque headers too, and needs no RocksDB.
check ordo-evm sqlparser ordo-kv ordo-txn ordo-sql ordo-server ordo-client ordo-raft tonic rocksdb librocksdb-sys
# Data availability's commitments and certificates are pure: no store, no
# network; of the log only headers and coding (no RocksDB), of
# transactions only the wire half (signatures, blob records).
check ordo-da tonic sqlparser ordo-kv ordo-sql ordo-proto ordo-raft rocksdb librocksdb-sys
# The client uses only the wire half of ordo-txn (no default features).
check ordo-client ordo-server ordo-log ordo-kv ordo-sql rocksdb librocksdb-sys
[ "$fail" -eq 0 ] && echo "layering: dependency invariants hold"
exit "$fail"
