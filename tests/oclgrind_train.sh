#!/bin/sh
# oclgrind_train.sh: the training kernels (cl/awq_grad.cl, cl/oft_grad.cl, cl/optim.cl) under oclgrind's checks
# (--data-races --uninitialized --check-api), run by check_train's "small" case on a K = 48, N = 16 layer with
# three trainable adapters (exact b = 6, Neumann + block_share + COFT b = 12, pre-0.18 Neumann b = 3), F32
# and F16, AdamW with clipping and SGD. Run it from the build tree after `make check` built tests/check_train:
#     sh tests/oclgrind_train.sh
# It fails on any report about a training kernel, any out-of-bounds access, data race or API error, or a
# failed check; reports about other kernels are listed (oclgrind 21.10 flags the R build's oft_power_step and
# the rotation oft_rotate after some buffer histories whose values the test proves right).
srcdir=${OFTAWQ_TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${OFTAWQ_TEST_BUILDDIR:-.}
log=$(mktemp)
OFTAWQ_TEST_SRCDIR=$srcdir OFTAWQ_TEST_BUILDDIR=$builddir CK_FORK=no CK_RUN_CASE=small \
  oclgrind --data-races --uninitialized --check-api --max-errors 100000 "$builddir/tests/check_train" >"$log" 2>&1
rc=$?
mine='awq_grad_scales|awq_grad_x|oft_coft|oft_grad_dr|oft_grad_sum_blocks|oft_grad_transpose|oft_grad_mm|oft_grad_dw|optim_zero|optim_sumsq|optim_adamw|optim_sgd'
failed=0
if [ "$rc" -ne 0 ] || ! grep -q '100%: Checks: 1, Failures: 0, Errors: 0' "$log"; then
  echo "oclgrind_train: the run failed (exit $rc):"; tail -20 "$log"; failed=1
fi
if grep -E "Kernel: ($mine)\$" "$log" >/dev/null; then
  echo "oclgrind_train: reports about training kernels:"; grep -E -B2 -A6 "Kernel: ($mine)\$" "$log" | head -60; failed=1
fi
if grep -qiE 'invalid (read|write)|out of bounds|data race|api error|invalid (argument|value)' "$log"; then
  echo "oclgrind_train: out-of-bounds, race or API reports:"; grep -iE -A6 'invalid (read|write)|out of bounds|data race|api error' "$log" | head -60; failed=1
fi
others=$(grep 'Kernel:' "$log" | grep -vE "Kernel: ($mine)\$" | sort | uniq -c)
[ -n "$others" ] && echo "oclgrind_train: reports about other kernels (not training's):" && echo "$others"
rm -f "$log"
[ "$failed" -eq 0 ] && echo "oclgrind_train: the training kernels ran clean"
exit "$failed"
