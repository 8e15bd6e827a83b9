#!/bin/sh
# check_corpus.sh: every malformed input of tests/corpus gives one "oftawq: " line naming the problem, exit 1, no output.
srcdir=${OFTAWQ_TEST_SRCDIR:-.}
builddir=${OFTAWQ_TEST_BUILDDIR:-.}
cli="$builddir/tools/oftawq"
corpus="$srcdir/tests/corpus"
work="$builddir/tests/tmp/corpus-$$"
rm -rf "$work"
mkdir -p "$work/out"
OFTAWQ_CACHE_DIR="$work/cache"
export OFTAWQ_CACHE_DIR
failed=0
passed=0

expand() {
  echo "$1" | sed -e "s|@OUT|$work/out/y.safetensors|g" -e "s|@\([a-z0-9_]*\)/|$corpus/\1/|g"
}

# the good input works and writes y
good=$(sed -n '1s/^# written by [^;]*; good: //p' "$corpus/cases.tsv")
if $cli $(expand "$good") 2>"$work/err" && [ -s "$work/out/y.safetensors" ]; then
  passed=$((passed + 1))
else
  echo "FAIL good: $(cat "$work/err")"
  failed=$((failed + 1))
fi
rm -f "$work/out/"*

tab=$(printf '\t')
while IFS="$tab" read -r name args expect; do
  case "$name" in "#"*|"") continue ;; esac
  $cli $(expand "$args") >"$work/stdout" 2>"$work/err"
  rc=$?
  lines=$(wc -l <"$work/err")
  left=$(ls "$work/out" | wc -l)
  if [ "$rc" -ne 1 ]; then
    echo "FAIL $name: exit status $rc, expected 1 ($(head -c 300 "$work/err"))"
  elif [ "$lines" -ne 1 ] || ! head -n 1 "$work/err" | grep -q '^oftawq: '; then
    echo "FAIL $name: expected one 'oftawq: ' line, got: $(cat "$work/err")"
  elif ! grep -qF -- "$expect" "$work/err"; then
    echo "FAIL $name: message lacks '$expect': $(cat "$work/err")"
  elif [ "$left" -ne 0 ]; then
    echo "FAIL $name: left files behind: $(ls "$work/out")"
  else
    passed=$((passed + 1))
    rm -f "$work/out/"*
    continue
  fi
  failed=$((failed + 1))
  rm -f "$work/out/"*
done <"$corpus/cases.tsv"

# usage errors exit 2
for args in "forward" "forward --model" "forward --bogus x" "bench --tokens 0" "bench --shapes 64" "nosuchcommand"; do
  $cli $args >/dev/null 2>&1
  rc=$?
  if [ "$rc" -eq 2 ]; then passed=$((passed + 1)); else echo "FAIL usage '$args': exit $rc, expected 2"; failed=$((failed + 1)); fi
done
rm -rf "$work"
echo "corpus: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -ge 30 ]
