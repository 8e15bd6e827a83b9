#!/bin/sh
# check_info.sh: `oftawq info` exits 0 listing the devices, and 1 with one error line that says why when there is no device (no platform; with dlopen, the library file it tried).
builddir=${OFTAWQ_TEST_BUILDDIR:-.}
bin=$builddir/tools/oftawq
tmp=$builddir/tests/tmp/check_info.$$
pass=0 fail=0
mkdir -p "$tmp/empty-vendors" "$tmp/cache"
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); echo "PASS: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; sed 's/^/  | /' "$tmp/out" "$tmp/err"; }
# expect NAME STATUS STDERR-PATTERN COMMAND...: exit status, and stderr empty ("") or one line matching the pattern.
expect() {
  name=$1 want=$2 pattern=$3
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  got=$?
  lines=$(wc -l <"$tmp/err")
  if [ "$got" != "$want" ]; then
    bad "$name: exit status $got, expected $want"
  elif [ -z "$pattern" ] && [ "$lines" != 0 ]; then
    bad "$name: unexpected output on stderr"
  elif [ -n "$pattern" ] && { [ "$lines" != 1 ] || ! grep -q -- "$pattern" "$tmp/err"; }; then
    bad "$name: expected one error line matching '$pattern'"
  else
    ok "$name"
  fi
}

expect "info lists the device" 0 "" "$bin" info --cache-dir "$tmp/cache"
grep -q '^device [0-9]*:[0-9]*  ' "$tmp/out" || bad "info: no 'device P:D' line"

# No ICD registered: the loader finds no platform.
expect "no platform" 1 '^oftawq: no OpenCL device found: no OpenCL platform' \
  env OCL_ICD_VENDORS="$tmp/empty-vendors" "$bin" info --cache-dir "$tmp/cache"
grep -q '^cache folder ' "$tmp/out" || bad "no platform: the report is still printed"
expect "no platform, --json" 1 '^oftawq: no OpenCL device found' \
  env OCL_ICD_VENDORS="$tmp/empty-vendors" "$bin" info --json --cache-dir "$tmp/cache"
tr -d ' \n' <"$tmp/out" | grep -q '"devices":\[\]' || bad "no platform, --json: devices is not []"

if grep -q '^#define OFTAWQ_OPENCL_DLOPEN 1' "$builddir/config.h" 2>/dev/null; then
  missing=$tmp/nowhere/libOpenCL.so
  expect "dlopen: missing OFTAWQ_OPENCL_LIBRARY" 1 "cannot load the OpenCL library $missing (from OFTAWQ_OPENCL_LIBRARY)" \
    env OFTAWQ_OPENCL_LIBRARY="$missing" "$bin" info --cache-dir "$tmp/cache"
  expect "dlopen: a library without OpenCL" 1 "the OpenCL library libm.so.6 lacks cl" \
    env OFTAWQ_OPENCL_LIBRARY=libm.so.6 "$bin" info --cache-dir "$tmp/cache"
  expect "dlopen: OFTAWQ_OPENCL_LIBRARY names the real one" 0 "" \
    env OFTAWQ_OPENCL_LIBRARY=libOpenCL.so.1 "$bin" info --cache-dir "$tmp/cache"
else
  echo "(not a dlopen build: OFTAWQ_OPENCL_LIBRARY is not used)"
fi

echo "check_info: $pass passed, $fail failed"
[ "$fail" = 0 ]
