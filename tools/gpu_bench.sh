#!/bin/sh
# gpu_bench.sh: the GPU measurement of docs/PERFORMANCE.md - bench at model shapes before and after tune, on one device.
#
# Usage: tools/gpu_bench.sh [DEVICE [OUTDIR]]
#   DEVICE  an oftawq device selector (default: gpu)
#   OUTDIR  where the reports go (default: gpu-bench-<date>); nothing outside it is written
# Needs a built tree (./configure && make). Runs, in order: info; bench untuned; tune (its own cache
# folder, so the untuned run is untouched); bench tuned. Each bench writes a table (.txt) and JSON.
# The fraction of the device's copy bandwidth at M=1 is awq's GB/s over copy's, and that of its fp32 FMA peak at
# every M awq's GFLOP/s over those of fma's fastest call, printed at the end.
set -eu

device=${1:-gpu}
out=${2:-gpu-bench-$(date +%Y%m%d-%H%M%S)}
here=$(cd "$(dirname "$0")/.." && pwd)
oftawq="$here/tools/oftawq"
shapes=4096x4096,4096x14336,14336x4096
tokens=1,8,256
budget=${TUNE_BUDGET:-240}

[ -x "$oftawq" ] || { echo "gpu_bench.sh: build first (./configure && make): $oftawq is missing" >&2; exit 1; }
mkdir -p "$out/cache-untuned" "$out/cache-tuned"
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$out/pocl-cache}"
mkdir -p "$POCL_CACHE_DIR"

"$oftawq" info --json --cache-dir "$out/cache-untuned" >"$out/info.json"
"$oftawq" bench --device "$device" --cache-dir "$out/cache-untuned" --shapes "$shapes" --tokens "$tokens" \
  --runs 11 --json "$out/untuned.json" | tee "$out/untuned.txt"
"$oftawq" tune --device "$device" --cache-dir "$out/cache-tuned" --shapes "$shapes" --budget "$budget" \
  | tee "$out/tune.txt"
"$oftawq" bench --device "$device" --cache-dir "$out/cache-tuned" --shapes "$shapes" --tokens "$tokens" \
  --runs 11 --json "$out/tuned.json" | tee "$out/tuned.txt"

echo
echo "awq at M=1 as a fraction of the device's copy bandwidth (GB/s of awq over GB/s of copy):"
for run in untuned tuned; do
  awk -v run="$run" '$2 == 1 && $3 == "copy" { copy[$1] = $6 } $2 == 1 && $3 == "awq" { awq[$1] = $6 }
    END { for (s in awq) if (copy[s] > 0) printf "  %-8s %-11s %5.1f %%\n", run, s, 100 * awq[s] / copy[s] }' \
    "$out/$run.txt"
done
echo "awq as a fraction of the device's fp32 FMA peak (GFLOP/s of awq over those of fma's fastest call):"
for run in untuned tuned; do
  awk -v run="$run" '$3 == "fma" && $5 > 0 { fma[$1 " M=" $2] = $7 * $4 / $5 } $3 == "awq" { awq[$1 " M=" $2] = $7 }
    END { for (p in awq) if (fma[p] > 0) printf "  %-8s %-18s %5.1f %%\n", run, p, 100 * awq[p] / fma[p] }' \
    "$out/$run.txt"
done
echo "reports in $out"
