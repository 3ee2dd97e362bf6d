#!/usr/bin/env bash
# Compares two builds of `relance` side by side, on a machine whose speed changes from one
# minute to the next: the two binaries run alternately, and each figure is a median with its
# range over the same minutes.
#
#   scripts/ab-compare.sh BEFORE AFTER [SIZE] [RUNS]
#
# BEFORE and AFTER are `relance` binaries (for example a build of an earlier commit:
# `git worktree add /tmp/base COMMIT && (cd /tmp/base && CARGO_TARGET_DIR=/tmp/basetarget
# cargo build --release -p relance-cli)`, then `/tmp/basetarget/release/relance`). SIZE is a
# portfolio of target/bench-e2e/ (written by scripts/bench-e2e.sh; default 1000000; a shape
# written with SHAPE=… is named after it: 1000000-quote-all-opaque-ids, 1000000-json,
# 1000000-xlsx), RUNS the
# alternations (default 7).
#
# First checks that both give the same bytes for each format (JSON, CSV, table), then
# prints, per format and output (`/dev/null`, or a real file for the JSON), the median
# (min–max) wall time, the median user time and the range of peak RSS of each binary.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,18p' "$0"; exit 2; }
before=$1; after=$2; size=${3:-1000000}; runs=${4:-7}
dir=target/bench-e2e/p$size
[ -n "$(ls -A "$dir" 2>/dev/null)" ] || { echo "no portfolio in $dir: run scripts/bench-e2e.sh first (SHAPE=… for another shape)" >&2; exit 2; }
plan() { "$1" plan --scenarios examples/scenarios --portfolio "$dir" --as-of 2026-03-01 --format "$2"; }
for fmt in json csv table; do
  a=$(plan "$before" "$fmt" | md5sum | cut -d' ' -f1)
  b=$(plan "$after" "$fmt" | md5sum | cut -d' ' -f1)
  [ "$a" = "$b" ] || { echo "the $fmt plans differ ($a, $b)" >&2; exit 1; }
done
echo "same bytes in JSON, CSV and table ($dir)"
log=$(mktemp); out=$(mktemp)
trap 'rm -f "$log" "$out"' EXIT
for _ in $(seq "$runs"); do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    for fmt in json csv table; do
      /usr/bin/time -a -o "$log" -f "$side $fmt null %e %U %M" "$bin" plan --scenarios examples/scenarios \
        --portfolio "$dir" --as-of 2026-03-01 --format "$fmt" >/dev/null
    done
    /usr/bin/time -a -o "$log" -f "$side json file %e %U %M" "$bin" plan --scenarios examples/scenarios \
      --portfolio "$dir" --as-of 2026-03-01 --format json >"$out"
  done
done
python3 - "$log" "$size" <<'EOF'
import statistics, sys
from collections import defaultdict
runs, invoices = defaultdict(list), int(sys.argv[2].split('-')[0])
for line in open(sys.argv[1]):
    side, fmt, out, wall, user, kb = line.split()
    runs[(fmt, out, side)].append((float(wall), float(user), int(kb)))
print("| format | output | binary | wall s, median (min–max) | user s, median | peak RSS MB (B/invoice) |")
print("|---|---|---|---:|---:|---:|")
for (fmt, out, side), v in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "before")):
    wall, user, kb = zip(*v)
    lo, hi = min(kb) * 1024, max(kb) * 1024
    print(f"| {fmt} | {out} | {side} | {statistics.median(wall):.2f} ({min(wall):.2f}–{max(wall):.2f}) "
          f"| {statistics.median(user):.2f} | {lo / 1e6:.0f}–{hi / 1e6:.0f} ({lo // invoices}–{hi // invoices}) |")
EOF
