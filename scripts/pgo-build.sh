#!/usr/bin/env bash
# Builds `relance` with profile-guided optimisation (PGO): an instrumented build runs
# `relance plan` on a generated portfolio, and the release build then uses the counts it
# wrote to lay out and inline the code that runs most (docs/performance-history.md, round
# 17: 5.5–6 % fewer instructions, and 7–19 % less time for the JSON plan of 10^6 invoices in
# three sets of alternations with the default build; round 26: the same time as the default
# build for the JSON plan, 4 % less processor time, 6–13 % less time for the CSV and table
# plans; same bytes out).
#
#   scripts/pgo-build.sh                    → target/pgo/release/relance
#   RUSTFLAGS="-C target-cpu=x86-64-v3" scripts/pgo-build.sh
#                                           the same for processors with AVX2 only
#                                           (−10.3 % instructions in all; see
#                                           docs/performance-history.md)
#
# Opt-in: the README's commands and CI build without it, as PGO needs `llvm-profdata` of
# LLVM 19 or later (the raw profiles of rustc 1.95, LLVM 22, are format 10), which a fresh
# machine does not have: `apt-get install llvm-19` (Debian 12), or `rustup component add
# llvm-tools` where rustup can download. Set LLVM_PROFDATA to use another one.
#
# The training portfolio is generated (`xtask gen-portfolio`, 10^5 invoices, seed 7: not the
# seed-42 portfolios that scripts/bench-e2e.sh measures) under target/pgo-train/. The
# instrumented build goes to target/pgo-gen/ and the final one to target/pgo/, so the usual
# target/release/ build is left as it is. Each is a full release build (fat LTO): ≈ 3 + 3
# minutes on two cores. The script checks that the PGO build writes the same bytes as the
# instrumented build (JSON, CSV and table plans of the training portfolio).
set -euo pipefail
# A training run that fails stops the script, inside `$(…)` too.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

# An llvm-profdata that reads rustc's raw profiles.
find_profdata() {
  local host sysroot c
  host=$(rustc -vV | sed -n 's/^host: //p')
  sysroot=$(rustc --print sysroot)
  for c in "${LLVM_PROFDATA:-}" "$sysroot/lib/rustlib/$host/bin/llvm-profdata" \
    llvm-profdata-22 llvm-profdata-21 llvm-profdata-20 llvm-profdata-19 llvm-profdata; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    local major
    major=$("$c" --version 2>/dev/null | sed -nE 's/.*LLVM version ([0-9]+).*/\1/p' | head -1)
    if [ -n "$major" ] && [ "$major" -ge 19 ]; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
profdata=$(find_profdata) || {
  echo "error: no llvm-profdata of LLVM 19 or later was found" >&2
  echo "help: install one (Debian 12: apt-get install llvm-19; or rustup component add llvm-tools)," >&2
  echo "      or set LLVM_PROFDATA to its path" >&2
  exit 2
}
echo "llvm-profdata: $profdata ($("$profdata" --version | sed -nE 's/.*(LLVM version [0-9.]+).*/\1/p' | head -1))"

root=$(pwd)
train=target/pgo-train
raw="$root/target/pgo-raw"
merged="$root/target/pgo-raw/relance.profdata"
as_of=2026-03-01

cargo build --release -q -p xtask
if [ ! -f "$train/invoices.csv" ]; then
  target/release/xtask gen-portfolio --invoices 100000 --customers 20000 --seed 7 --as-of "$as_of" --out "$train" >/dev/null
fi

echo "instrumented build (target/pgo-gen/)"
rm -rf "$raw"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$raw" cargo build --release -q -p relance-cli --target-dir target/pgo-gen
gen=target/pgo-gen/release/relance

# The training runs: what `relance plan` does in production (every output format), and the
# bundled examples (which go through the rules the generated portfolio uses less).
train_runs() {
  local bin=$1 f
  for f in json csv table; do
    "$bin" plan --scenarios examples/scenarios --portfolio "$train" --as-of "$as_of" --format "$f" | md5sum
  done
  "$bin" plan --scenarios examples/scenarios --portfolio examples/portfolio --as-of 2026-04-15 | md5sum
  "$bin" check examples/scenarios >/dev/null 2>&1
}
expected=$(train_runs "$gen")
"$profdata" merge --sparse -o "$merged" "$raw"/*.profraw

echo "optimised build (target/pgo/)"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$merged" cargo build --release -q -p relance-cli --target-dir target/pgo
got=$(train_runs target/pgo/release/relance)
if [ "$expected" != "$got" ]; then
  echo "error: the PGO build's plans differ from the instrumented build's" >&2
  exit 1
fi
echo "target/pgo/release/relance (same plans as the instrumented build)"
