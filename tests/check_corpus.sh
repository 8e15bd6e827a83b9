#!/bin/sh
# check_corpus.sh: every malformed input of tests/corpus, and every input that is not a regular file (made here:
# git keeps no FIFOs), gives one "oftawq: " line naming the problem, exit 1, no output - and never hangs.
srcdir=${OFTAWQ_TEST_SRCDIR:-.}
builddir=${OFTAWQ_TEST_BUILDDIR:-.}
cli="$builddir/tools/oftawq"
corpus="$srcdir/tests/corpus"
work="$builddir/tests/tmp/corpus-$$"
rm -rf "$work"
mkdir -p "$work/out" "$work/special"
OFTAWQ_CACHE_DIR="$work/cache"
export OFTAWQ_CACHE_DIR
# A run that blocks (on a FIFO, say) is a failure, not a stuck test suite.
# seconds one CLI run may take; CK_TIMEOUT_MULTIPLIER (Check's own, set under emulation) scales it
LIMIT=$(awk -v m="${CK_TIMEOUT_MULTIPLIER:-1}" 'BEGIN { printf "%d", 120 * m + 0.5 }')
failed=0
passed=0

expand() {
  echo "$1" | sed -e "s|@OUT|$work/out/y.safetensors|g" -e "s|@SPECIAL/|$work/special/|g" \
    -e "s|@\([a-z0-9_]*\)/|$corpus/\1/|g"
}

# run NAME EXPECTED-STATUS EXPECTED-MESSAGE-PART ARGS: the contract for one command line.
run() {
  name=$1 want=$2 expect=$3
  shift 3
  timeout $LIMIT $cli "$@" >"$work/stdout" 2>"$work/err"
  rc=$?
  lines=$(wc -l <"$work/err")
  left=$(ls "$work/out" | wc -l)
  if [ "$rc" -eq 124 ]; then
    echo "FAIL $name: still running after $LIMIT s (killed)"
  elif [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit status $rc, expected $want ($(head -c 300 "$work/err"))"
  elif [ "$want" -eq 0 ] && [ "$left" -ne 1 ]; then
    echo "FAIL $name: succeeded without writing its output"
  elif [ "$want" -eq 0 ]; then
    passed=$((passed + 1))
    rm -f "$work/out/"*
    return
  elif [ "$lines" -ne 1 ] || ! head -n 1 "$work/err" | grep -q '^oftawq: '; then
    echo "FAIL $name: expected one 'oftawq: ' line, got: $(cat "$work/err")"
  elif ! grep -qF -- "$expect" "$work/err"; then
    echo "FAIL $name: message lacks '$expect': $(cat "$work/err")"
  elif [ "$left" -ne 0 ]; then
    echo "FAIL $name: left files behind: $(ls "$work/out")"
  else
    passed=$((passed + 1))
    rm -f "$work/out/"*
    return
  fi
  failed=$((failed + 1))
  rm -f "$work/out/"*
}

# the good input works and writes y
good=$(sed -n '1s/^# written by [^;]*; good: //p' "$corpus/cases.tsv")
# shellcheck disable=SC2046
run good 0 "" $(expand "$good")

tab=$(printf '\t')
while IFS="$tab" read -r name args expect; do
  case "$name" in "#"*|"") continue ;; esac
  # shellcheck disable=SC2046
  run "$name" 1 "$expect" $(expand "$args")
done <"$corpus/cases.tsv"

# special FOLDER FILE KIND: a copy of the good FOLDER (model, adapter or the input's) with FILE made a FIFO,
# a loop of symbolic links or a directory.
special() {
  dir="$work/special/$1-$2-$3"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$corpus/good/$1/"* "$dir/" 2>/dev/null
  rm -f "$dir/$2"
  case $3 in
    fifo) mkfifo "$dir/$2" ;;
    loop) ln -s "$2.loop" "$dir/$2" && ln -s "$2" "$dir/$2.loop" ;;
    folder) mkdir "$dir/$2" ;;
  esac
}
mkdir -p "$work/special/x"
cp "$corpus/good/x.safetensors" "$work/special/x/"
for kind in fifo loop folder; do
  case $kind in
    fifo) cause="is a FIFO" ;;
    loop) cause="Too many levels of symbolic links" ;;
    folder) cause="is a directory" ;;
  esac
  special model config.json $kind
  special model model.safetensors $kind
  special model model.safetensors.index.json $kind
  special adapter adapter_config.json $kind
  special adapter adapter_model.safetensors $kind
  for file in config.json model.safetensors model.safetensors.index.json; do
    # shellcheck disable=SC2046
    run "model-$file-$kind" 1 "$file: $cause" $(expand "$good" | sed "s|$corpus/good/model|$work/special/model-$file-$kind|")
  done
  for file in adapter_config.json adapter_model.safetensors; do
    # shellcheck disable=SC2046
    run "adapter-$file-$kind" 1 "$file: $cause" \
      $(expand "$good" | sed "s|$corpus/good/adapter|$work/special/adapter-$file-$kind|")
  done
  rm -rf "$work/special/x/y.safetensors"
  case $kind in
    fifo) mkfifo "$work/special/x/y.safetensors" ;;
    loop) ln -s y.safetensors "$work/special/x/y.safetensors" ;;
    folder) mkdir "$work/special/x/y.safetensors" ;;
  esac
  # shellcheck disable=SC2046
  run "input-$kind" 1 "y.safetensors: $cause" $(expand "$good" | sed "s|$corpus/good/x.safetensors|$work/special/x/y.safetensors|")
done

# Caches: entries that are not plain files are rebuilt (the run succeeds); a kernel source override that is one fails.
# shellcheck disable=SC2046
run "cache-fill" 0 "" $(expand "$good")
for entry in "$OFTAWQ_CACHE_DIR"/prog-*.bin; do rm -f "$entry" && mkfifo "$entry"; done
: >"$OFTAWQ_CACHE_DIR/tune-0000000000000000.db.tmp"
mkfifo "$OFTAWQ_CACHE_DIR/tune-0000000000000001.db"
# shellcheck disable=SC2046
run "cache-entries-fifo" 0 "" $(expand "$good")
if timeout $LIMIT $cli info >"$work/stdout" 2>"$work/err" && grep -q "tuned entries" "$work/stdout"; then
  passed=$((passed + 1))
else
  echo "FAIL info-cache-fifo: $(cat "$work/err")"
  failed=$((failed + 1))
fi
mkdir -p "$work/cl" && mkfifo "$work/cl/awq.cl"
OFTAWQ_CL_DIR="$work/cl"
export OFTAWQ_CL_DIR
# shellcheck disable=SC2046
run "cl-dir-fifo" 1 "awq.cl: is a FIFO" $(expand "$good")
unset OFTAWQ_CL_DIR

# usage errors exit 2
for args in "forward" "forward --model" "forward --bogus x" "bench --tokens 0" "bench --shapes 64" "nosuchcommand"; do
  # shellcheck disable=SC2086
  timeout $LIMIT $cli $args >/dev/null 2>&1
  rc=$?
  if [ "$rc" -eq 2 ]; then passed=$((passed + 1)); else echo "FAIL usage '$args': exit $rc, expected 2"; failed=$((failed + 1)); fi
done
rm -rf "$work"
echo "corpus: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -ge 60 ]
