#!/usr/bin/env bash
# Instructions per invoice, phase by phase: a measure that does not change with the machine's
# load, for changes of a few per cent that wall-clock timings on this machine cannot separate
# from its noise (the same binary varies by up to ×2 from one day to the next).
#
#   scripts/instructions.sh [SIZE]         default 100000 (a portfolio of target/bench-e2e/)
#
# Needs valgrind. Runs each program under callgrind on one thread (RAYON_NUM_THREADS=1: the
# counts are then the same from run to run) and prints, per invoice:
#   load          the CSV loader (`load_timing`: two loads less one)
#   evaluation    `Engine::summarize`, every decision and amount without text (`plan_timing
#                 … eval`: two evaluations less one)
#   eval + JSON   the part of `relance plan` after loading (`plan_timing … json`: two less one)
#   plan          `relance plan --format json` as a whole (load, sort, evaluation, JSON)
# Under valgrind the processor's SHA instructions are not used: the action ids' SHA-256 is
# counted in software, ≈ 2,200 instructions per action more than natively (a few per cent of
# "eval + JSON"); compare builds with each other, not with perf's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-100000}
dir=target/bench-e2e/p$size
as_of=2026-03-01
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
[ -f "$dir/invoices.csv" ] || { echo "no portfolio in $dir: run scripts/bench-e2e.sh $size first" >&2; exit 2; }
cargo build --release -q -p relance-cli
cargo build --release -q -p relance-stdlib --example load_timing --example plan_timing
bin=target/release
invoices=$(($(wc -l < "$dir/invoices.csv") - 1))

# Instructions executed by a command, under callgrind, on one thread.
count() {
  RAYON_NUM_THREADS=1 MIMALLOC_PURGE_DELAY=1000 MIMALLOC_ALLOW_THP=0 \
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null \
    | sed -nE 's/.*Collected : ([0-9]+).*/\1/p'
}
per_invoice() { echo "$1 $invoices" | awk '{printf "%.0f", $1 / $2}'; }

load1=$(count "$bin/examples/load_timing" "$dir" 1)
load2=$(count "$bin/examples/load_timing" "$dir" 2)
eval1=$(count "$bin/examples/plan_timing" examples/scenarios "$dir" "$as_of" 1 eval)
eval2=$(count "$bin/examples/plan_timing" examples/scenarios "$dir" "$as_of" 2 eval)
json1=$(count "$bin/examples/plan_timing" examples/scenarios "$dir" "$as_of" 1 json)
json2=$(count "$bin/examples/plan_timing" examples/scenarios "$dir" "$as_of" 2 json)
plan=$(count "$bin/relance" plan --scenarios examples/scenarios --portfolio "$dir" --as-of "$as_of" --format json)

echo "instructions per invoice (callgrind, one thread):"
printf '| invoices | load | evaluation | eval + JSON | plan |\n'
printf '|---:|---:|---:|---:|---:|\n'
printf '| %s | %s | %s | %s | %s |\n' "$invoices" \
  "$(per_invoice $((load2 - load1)))" "$(per_invoice $((eval2 - eval1)))" \
  "$(per_invoice $((json2 - json1)))" "$(per_invoice "$plan")"
