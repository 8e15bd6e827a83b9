#!/bin/sh
# check_cli.sh: the CLI's output contract (SPEC 11) - an error is exactly one stderr line; a warning is
# "oftawq: warning: ..." once per process, silenced by --quiet (before or after the command); a compiler log
# shows only with --verbose; untrusted text (names, versions, paths, --module, OFTAWQ_DEVICE) is escaped.
srcdir=${OFTAWQ_TEST_SRCDIR:-.}
builddir=${OFTAWQ_TEST_BUILDDIR:-.}
# seconds one CLI run may take; CK_TIMEOUT_MULTIPLIER (Check's own, set under emulation) scales it
limit=$(awk -v m="${CK_TIMEOUT_MULTIPLIER:-1}" 'BEGIN { printf "%d", 120 * m + 0.5 }')
cli="$builddir/tools/oftawq"
corpus="$srcdir/tests/corpus"
work="$builddir/tests/tmp/cli-$$"
rm -rf "$work"
mkdir -p "$work"
OFTAWQ_CACHE_DIR="$work/cache"
export OFTAWQ_CACHE_DIR
failed=0
passed=0
module=model.layers.0.mlp.up_proj
nl='
'

fail() {
  echo "FAIL $1: $2"
  echo "  stderr was: $(cat "$work/err")"
  failed=$((failed + 1))
}

# PoCL's compiler (clang) writes its own "N errors generated." to file descriptor 2 when a build fails; that
# line is the driver's, not ours, so it is set aside before counting.
driver_noise='^[0-9]+ errors? generated\.$'

# expect NAME STATUS LINES PATTERN COMMAND...: exit status, stderr line count, and a fixed string stderr must
# hold ("" for none).
expect() {
  name=$1 want=$2 lines=$3 pattern=$4
  shift 4
  "$@" >"$work/out" 2>"$work/all"
  rc=$?
  grep -Ev "$driver_noise" "$work/all" >"$work/err"
  got=$(wc -l <"$work/err")
  if [ "$rc" -ne "$want" ]; then
    fail "$name" "exit status $rc, expected $want"
  elif [ "$got" -ne "$lines" ]; then
    fail "$name" "$got stderr lines, expected $lines"
  elif [ -n "$pattern" ] && ! grep -qF -- "$pattern" "$work/err"; then
    fail "$name" "stderr lacks '$pattern'"
  elif [ "$lines" -gt 0 ] && grep -v '^oftawq: ' "$work/err" | grep -q .; then
    fail "$name" "a stderr line does not start with 'oftawq: '"
  else
    passed=$((passed + 1))
  fi
}

forward() {
  timeout "$limit" "$cli" forward --model "$corpus/good/model" --module $module --input "$corpus/good/x.safetensors" \
    --output "$work/y.safetensors" "$@"
}

expect good 0 0 "" forward --adapter "$corpus/good/adapter"

# an output that cannot be written fails before the work, with errno's cause
expect output-is-folder 1 1 "cannot write '$work': Is a directory" timeout "$limit" "$cli" forward --model "$corpus/good/model" \
  --module $module --input "$corpus/good/x.safetensors" --output "$work"

# a warning: once, even when two adapters cause it; --quiet anywhere silences it
adjusted="oftawq: warning: Invalid \`oft_block_size\` (10)! Adjusted \`oft_block_size\` to (8) for in_features 64."
expect warning-once 0 1 "$adjusted" forward --adapter "$corpus/adapter_adjusted/adapter" \
  --adapter "$corpus/adapter_adjusted/adapter:second" --active default,second
expect quiet-after 0 0 "" forward --adapter "$corpus/adapter_adjusted/adapter" --quiet
expect quiet-before 0 0 "" timeout "$limit" "$cli" --quiet forward --model "$corpus/good/model" --module $module \
  --input "$corpus/good/x.safetensors" --output "$work/y.safetensors" --adapter "$corpus/adapter_adjusted/adapter"

# the Cayley-Neumann warning is true: none for |Q|_F >= 1 with |Q|_2 < 1, one for |Q|_2 >= 1
expect neumann-converges 0 0 "" forward --adapter "$corpus/adapter_frobenius_large/adapter"
expect neumann-diverges 0 1 "the spectral norm of Q is at least" forward --adapter "$corpus/adapter_divergent/adapter"

# a damaged program cache entry: rebuilt, with the library's warning as "oftawq: warning: ..." (once each, however
# many entries the same problem hits); --quiet silences it
forward --adapter "$corpus/good/adapter" >/dev/null 2>&1
for entry in "$OFTAWQ_CACHE_DIR"/prog-*.bin; do printf 'garbage' >"$entry"; done
expect cache-warning 0 1 "oftawq: warning: ignoring a program cache entry" forward --adapter "$corpus/good/adapter"
for entry in "$OFTAWQ_CACHE_DIR"/prog-*.bin; do printf 'garbage' >"$entry"; done
expect cache-warning-quiet 0 0 "" forward --adapter "$corpus/good/adapter" --quiet

# a compiler log: one line, the log only with --verbose
mkdir -p "$work/cl"
printf '#define X_TYPE this does not compile (\n' >"$work/cl/common.cl"
OFTAWQ_CL_DIR="$work/cl"
export OFTAWQ_CL_DIR
expect build-error 1 1 "failed" forward --adapter "$corpus/good/adapter"
timeout "$limit" "$cli" --verbose forward --model "$corpus/good/model" --module $module --input "$corpus/good/x.safetensors" \
  --output "$work/y.safetensors" --adapter "$corpus/good/adapter" 2>&1 >/dev/null | grep -Ev "$driver_noise" >"$work/err"
if [ "$(wc -l <"$work/err")" -gt 1 ] && grep -q "build log" "$work/err" && ! grep -v '^oftawq: ' "$work/err" | grep -q .; then
  passed=$((passed + 1))
else
  fail build-error-verbose "expected the build log after the error line, each line prefixed"
fi
unset OFTAWQ_CL_DIR

# untrusted text stays on its line, escape codes inert
esc=$(printf '\033')
expect module-injection 1 1 "no module 'x\\n\\x1b[2Joftawq: all good'" \
  timeout "$limit" "$cli" forward --model "$corpus/good/model" --module "x${nl}${esc}[2Joftawq: all good" \
  --input "$corpus/good/x.safetensors" --output "$work/y.safetensors"
expect input-path-injection 1 1 "nothing\\noftawq: all good" \
  forward --input "$work/nothing${nl}oftawq: all good"
OFTAWQ_DEVICE="zz${nl}oftawq: all good"
export OFTAWQ_DEVICE
expect device-injection 1 1 "selector 'zz\\noftawq: all good'" forward
unset OFTAWQ_DEVICE
expect option-injection 2 1 "unknown option '--x\\noftawq: all good'" timeout "$limit" "$cli" forward "--x${nl}oftawq: all good" v
# on stdout too: an adapter name (inspect's header, columns, "applies" and totals; JSON escapes it its own way)
bad="x${nl}${esc}[2Jall good"
expect inspect-name-injection 0 0 "" timeout "$limit" "$cli" inspect --model "$corpus/good/model" \
  --adapter "$corpus/good/adapter:$bad" --active "$bad"
if grep -q "$esc" "$work/out" || grep -q '^.\[2Jall good' "$work/out" || ! grep -qF 'x\n\x1b[2Jall good' "$work/out"; then
  fail inspect-stdout-escaped "a raw newline or escape code on stdout: $(cat -A "$work/out")"
else
  passed=$((passed + 1))
fi

# a JSON report that cannot be written fails before the benchmark runs (nothing on stdout), as forward's output
mkdir -p "$work/report-dir"
for target in "$work/report-dir" "$work/report-dir/" "$work/missing/report.json"; do
  expect "bench-json-$(basename "$target")" 1 1 "cannot write" \
    timeout "$limit" "$cli" bench --shapes 64x64 --group 32 --tokens 1 --runs 1 --json "$target"
  if [ -s "$work/out" ]; then
    fail "bench-json-$(basename "$target")-early" "the benchmark ran before the report path was refused"
  fi
done

rm -rf "$work"
echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -ge 17 ]
