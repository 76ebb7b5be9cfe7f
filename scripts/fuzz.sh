#!/usr/bin/env bash
# Runs a coverage-guided fuzz target (fuzz/fuzz_targets/TARGET.rs) for
# SECONDS; `all` runs every target in turn. Usage:
#   bash scripts/fuzz.sh TARGET|all [SECONDS=60]
# (For more cores, run several at once on different targets.)
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 unlocks them on the
# stable toolchain. The corpus grows in $HOME/.cache/ordo-fuzz-corpus,
# seeded from fuzz/seeds; a crash stops the run, leaves its input in
# fuzz/artifacts/TARGET/, and must become a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh TARGET|all [SECONDS]}"
seconds="${2:-60}"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
build="${ORDO_FUZZ_TARGET_DIR:-$HOME/.cache/ordo-fuzz-target}"
corpora="${ORDO_FUZZ_CORPUS:-$HOME/.cache/ordo-fuzz-corpus}"
targets=("$target")
[ "$target" = all ] && mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
for t in "${targets[@]}"; do
  mkdir -p "$corpora/$t" "fuzz/seeds/$t"
  echo "fuzz: $t for $seconds s" >&2
  cargo fuzz run --fuzz-dir fuzz --target-dir "$build" "$t" "$corpora/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
done
