#!/usr/bin/env bash
# Installs what building and testing ordo needs, skipping whatever is present.
# Sourced by scripts/dev.sh and scripts/test.sh; safe to run again and again.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root (or sudo) to run: $*" >&2; exit 1
  fi
}

# System packages: a C/C++ toolchain for RocksDB and jemalloc, libclang for
# RocksDB's bindings. protoc is not needed: it comes from a crate.
missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v c++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
command -v git >/dev/null || missing+=(git)
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(clang libclang-dev)
# The Python and TypeScript clients' tests: a Python with venv, and Node.js.
command -v python3 >/dev/null && python3 -m venv --help >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust: ordo needs 1.95 or newer; Debian's own cargo is far older.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if ! command -v cargo >/dev/null; then
  echo "setup: Rust 1.95+ is required and cargo is not on PATH; install it with rustup" >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi

# One build cache outside the work tree, so a fresh clone builds warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ordo-target}"

# The EVM sequencer's tools from npm, pinned in evm/package-lock.json: solc
# (scripts/evm-contract.sh) and anvil, the local chain its tests start.
evm_tools="$(cd "$(dirname "${BASH_SOURCE[0]}")/../evm" && pwd)"
if [ ! -d "$evm_tools/node_modules/solc" ] || [ ! -x "$evm_tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" ]; then
  echo "setup: installing solc and anvil from npm under evm/node_modules" >&2
  npm ci --prefix "$evm_tools" --no-audit --no-fund --loglevel=error
fi
