#!/bin/sh
# check_train_cli.sh: oftawq train on the real-format fixture - the loss goes down, the saved folder loads, --json
# holds one loss per step, and bad input gives one "oftawq: " line, exit 1 and no output left behind.
srcdir=${OFTAWQ_TEST_SRCDIR:-.}
builddir=${OFTAWQ_TEST_BUILDDIR:-.}
# seconds one CLI run may take; CK_TIMEOUT_MULTIPLIER (Check's own, set under emulation) scales it
limit=$(awk -v m="${CK_TIMEOUT_MULTIPLIER:-1}" 'BEGIN { printf "%d", 120 * m + 0.5 }')
cli="$builddir/tools/oftawq"
fix="$srcdir/tests/fixtures"
work="$builddir/tests/tmp/train-cli-$$"
rm -rf "$work"
mkdir -p "$work/out"
OFTAWQ_CACHE_DIR="$work/cache"
export OFTAWQ_CACHE_DIR
failed=0
passed=0
model="$fix/real/neumann_f32/model"
module=model.layers.0.self_attn.q_proj
x="$fix/train/qerr/x.safetensors"
t="$fix/train/qerr/target.safetensors"
common="--model $model --module $module --input $x --target $t"

ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }

# a fresh adapter: AdamW, the loss decreases, the folder and the report are written
if $cli train $common --block-size 32 --steps 6 --batch 40 --json "$work/out/loss.json" --save "$work/out/a" \
    >"$work/stdout" 2>"$work/err"; then
  first=$(sed -n 's/^loss: first \([^,]*\), last \(.*\)$/\1/p' "$work/stdout")
  last=$(sed -n 's/^loss: first \([^,]*\), last \(.*\)$/\2/p' "$work/stdout")
  steps=$(tr ',' '\n' <"$work/out/loss.json" | sed -n '/"loss"/,$p' | grep -c '[0-9]')
  if [ -z "$first" ] || ! awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'; then
    fail "adamw: the loss did not go down: $(cat "$work/stdout")"
  elif [ "$steps" -ne 6 ]; then
    fail "adamw: --json holds $steps losses, expected 6: $(cat "$work/out/loss.json")"
  elif [ ! -s "$work/out/a/adapter_config.json" ] || [ ! -s "$work/out/a/adapter_model.safetensors" ]; then
    fail "adamw: the adapter folder is incomplete: $(ls -A "$work/out/a")"
  elif ! grep -q '"peft_version":[[:space:]]*"0.18.1"' "$work/out/a/adapter_config.json"; then
    fail "adamw: peft_version: $(cat "$work/out/a/adapter_config.json")"
  else
    ok
  fi
else
  fail "adamw: exit $?: $(cat "$work/err")"
fi

# resuming from the saved adapter (its config kept), one SGD step; forward runs with the result
if $cli train $common --adapter "$work/out/a" --steps 1 --optimizer sgd --lr 0.01 --save "$work/out/b" \
    >"$work/stdout" 2>"$work/err" &&
  $cli forward --model "$model" --module $module --input "$x" --output "$work/out/y.safetensors" \
    --adapter "$work/out/b" 2>"$work/err" && [ -s "$work/out/y.safetensors" ]; then
  ok
else
  fail "sgd from --adapter, then forward: $(cat "$work/err")"
fi

# COFT with the exact Cayley map, by number of blocks
if $cli train $common --r 12 --coft --eps 0.01 --exact --steps 2 --save "$work/out/c" >/dev/null 2>"$work/err" &&
  grep -q '"coft":[[:space:]]*true' "$work/out/c/adapter_config.json" &&
  grep -q '"use_cayley_neumann":[[:space:]]*false' "$work/out/c/adapter_config.json"; then
  ok
else
  fail "coft exact: $(cat "$work/err")"
fi
rm -rf "$work/out/"*

# bad input: one line, exit 1, nothing written; outputs that cannot be written fail before a million steps
tab=$(printf '\t')
while IFS="$tab" read -r name args expect; do
  case "$name" in "#"*|"") continue ;; esac
  # shellcheck disable=SC2086
  timeout "$limit" $cli train $(echo "$args" | sed -e "s|@OUT|$work/out|g" -e "s|@FIX|$fix|g") >"$work/stdout" 2>"$work/err"
  rc=$?
  lines=$(wc -l <"$work/err")
  left=$(ls -A "$work/out" | wc -l)
  if [ "$rc" -ne 1 ]; then
    fail "$name: exit status $rc, expected 1 ($(head -c 300 "$work/err"))"
  elif [ "$lines" -ne 1 ] || ! grep -q '^oftawq: ' "$work/err"; then
    fail "$name: expected one 'oftawq: ' line, got: $(cat "$work/err")"
  elif ! grep -qF -- "$expect" "$work/err"; then
    fail "$name: message lacks '$expect': $(cat "$work/err")"
  elif [ "$left" -ne 0 ]; then
    fail "$name: left files behind: $(ls -A "$work/out")"
  else
    ok
  fi
  rm -rf "$work/out/"*
done <<EOF
rows_differ	--model @FIX/real/neumann_f32/model --module $module --input @FIX/real/neumann_f32/x.safetensors --target $t --block-size 32 --steps 1 --json @OUT/l.json --save @OUT/a	rows of y
no_target_y	$common --target @FIX/real/neumann_f32/x.safetensors --block-size 32 --steps 1 --save @OUT/a	has no tensor 'y'
no_module	--model @FIX/real/neumann_f32/model --module nope --input $x --target $t --block-size 32 --steps 1 --save @OUT/a	nope
bad_adapter	$common --adapter @FIX/train/qerr --steps 1 --save @OUT/a	adapter_config.json
unwritable_save	$common --block-size 32 --steps 1000000 --json @OUT/l.json --save @OUT/missing/a	cannot create the folder
save_is_a_file	$common --block-size 32 --steps 1000000 --save $t	Not a directory
json_into_folder	$common --block-size 32 --steps 1000000 --json @OUT --save @OUT/a	cannot write
EOF

# usage errors exit 2 and write nothing
for args in "train" "train $common --save $work/out/u" "train $common --block-size 32 --r 4 --save $work/out/u" \
  "train $common --block-size 32 --eps 0.1 --save $work/out/u" "train $common --block-size 32 --lr -1 --save $work/out/u" \
  "train $common --block-size 32 --optimizer lion --save $work/out/u" "train $common --adapter x --coft --save $work/out/u"; do
  # shellcheck disable=SC2086
  $cli $args >/dev/null 2>&1
  rc=$?
  if [ "$rc" -eq 2 ] && [ "$(ls -A "$work/out" | wc -l)" -eq 0 ]; then ok; else fail "usage '$args': exit $rc, expected 2"; fi
done
rm -rf "$work"
echo "train cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
