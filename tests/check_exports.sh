#!/bin/sh
# check_exports.sh: every dynamic symbol the shared library exports starts with oftawq_ (not oftawq__).
lib=$(ls "${OFTAWQ_TEST_BUILDDIR:-.}"/lib/.libs/liboftawq.so* 2>/dev/null | head -n 1)
if [ -z "$lib" ]; then
  echo "SKIP: no shared library was built"
  exit 77
fi
command -v nm >/dev/null 2>&1 || { echo "SKIP: nm not found"; exit 77; }
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^oftawq_[a-z]' | grep -v '^_' )
internal=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep '^oftawq__')
count=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^oftawq_[a-z]')
if [ -n "$bad$internal" ]; then
  echo "FAIL: $lib exports symbols outside the oftawq_ API:"
  echo "$bad $internal"
  exit 1
fi
if [ "$count" -lt 10 ]; then
  echo "FAIL: only $count oftawq_ symbols exported from $lib"
  exit 1
fi
echo "$count exported symbols, all oftawq_*"
