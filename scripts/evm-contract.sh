#!/usr/bin/env bash
# The EVM sequencer's contract, evm/contracts/OrdoLog.sol, and its compiled
# artifact, evm/artifacts/OrdoLog.json (ABI and bytecode, read by the
# ordo-evm crate at build time):
#   bash scripts/evm-contract.sh build   # recompiles with the pinned solc and rewrites the artifact
#   bash scripts/evm-contract.sh check   # fails when the artifact is not what the source compiles to
# The compiler is solc from npm, pinned in evm/package.json and installed
# (with anvil) by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d evm/node_modules/solc ] || npm ci --prefix evm --no-audit --no-fund --loglevel=error
case "${1:-}" in
  build) node evm/build-contract.js > evm/artifacts/OrdoLog.json.new
         mv evm/artifacts/OrdoLog.json.new evm/artifacts/OrdoLog.json
         echo "wrote evm/artifacts/OrdoLog.json" ;;
  check) if ! node evm/build-contract.js | cmp -s - evm/artifacts/OrdoLog.json; then
           echo "evm/artifacts/OrdoLog.json is not what evm/contracts/OrdoLog.sol compiles to; run: bash scripts/evm-contract.sh build" >&2
           exit 1
         fi
         echo "evm/artifacts/OrdoLog.json matches its source" ;;
  *) echo "usage: $0 build|check" >&2; exit 2 ;;
esac
