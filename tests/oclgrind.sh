#!/bin/sh
# oclgrind.sh: every kernel under oclgrind - tests/kernel_tour's parts (each AWQ path and activation dtype on
# AutoAWQ's layout, the K4 and KC repacks and the kernels as CPU runtimes get them (wi; cpu: with a CPU's plans for
# 16-float registers, whose tuner candidates hold two words' columns in one float16), the rotation with three
# kinds of adapters and mixed batches, R by Neumann and exact Cayley on the device, training, every candidate the
# tuner tries in each unit of its search, the benchmark's fma reference; each result checked) on oclgrind's
# simulated GPU-type device (dedicated 32 KiB local memory, non-unified memory, 128 MiB allocations: the GPU
# defaults), with --data-races --uninitialized --check-api. Any report, a failed check or a part past its time
# limit fails the run.
# Usage: oclgrind.sh TOUR [SECONDS-PER-PART]   (make check-oclgrind)
#
# Each part runs in an oclgrind process of its own, with buffers of one size per process: oclgrind 21.10's
# uninitialised-memory tracking loses stores to a buffer created where a smaller one was released earlier in the
# process, and then reports reads of those stores (the data itself is right); one process per row count keeps
# those false reports out without hiding real ones; for the same reason the tuner runs one unit of its search
# (one synthetic layer) per process. `tune 64` stands for the buckets above it: on oclgrind's device their
# candidate lists are its list but for one GEMM launch shape (rows per item and row groups of the same kernel);
# 256 and 512 rows under the simulator would take over ten minutes each.
tour=${1:?usage: oclgrind.sh TOUR [SECONDS-PER-PART]}
limit=${2:-600}
work=${OCLGRIND_WORK:-tests/tmp/oclgrind-$$}
command -v oclgrind >/dev/null 2>&1 || { echo "oclgrind.sh: oclgrind is not installed (Debian: oclgrind)"; exit 1; }
rm -rf "$work"
mkdir -p "$work"
# no cache folder (every program is built by oclgrind's compiler) and no device choice but oclgrind's
unset OFTAWQ_DEVICE OFTAWQ_CACHE_DIR OFTAWQ_CL_DIR
status=0
total=0
for part in "paths 1" "paths 5" "paths 40" "train" "paths 5 k4" "paths 1 kc" "train k4" "paths 5 kc" "train kc" \
  "tune 0" "tune 1" "tune 1 k4" "tune 1 kc" "tune 2" "tune 4" "tune 8" "tune 8 k4" "tune 8 kc" "tune 64" "paths 5 wi" \
  "tune 8 wi" "tune 4 cpu" "tune 8 cpu" "peak"; do
  name=$(echo "$part" | tr ' ' '-')
  log="$work/$name.log"
  start=$(date +%s)
  # shellcheck disable=SC2086
  timeout "$limit" oclgrind --data-races --uninitialized --check-api --max-errors 1000 --log "$log" \
    "$tour" $part >"$work/$name.out" 2>&1
  rc=$?
  elapsed=$(($(date +%s) - start))
  total=$((total + elapsed))
  if [ "$rc" -eq 124 ]; then
    echo "oclgrind.sh: FAIL $part: still running after $limit s"
    status=1
  elif [ "$rc" -ne 0 ]; then
    echo "oclgrind.sh: FAIL $part: the tour exited with status $rc:"
    tail -n 20 "$work/$name.out"
    status=1
  fi
  if [ -s "$log" ]; then
    echo "oclgrind.sh: FAIL $part: oclgrind reported $(grep -c '^[A-Z]' "$log") problems; the first:"
    head -n 40 "$log"
    status=1
  fi
  [ "$status" -eq 0 ] && echo "oclgrind.sh: $part: no report, every check held ($elapsed s)"
done
[ "$status" -eq 0 ] && rm -rf "$work"
echo "oclgrind.sh: $total s in all"
exit "$status"
