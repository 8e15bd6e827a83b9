#!/bin/sh
# check_exports.sh [LIBRARY]: the shared library exports the oftawq_ API and nothing else (no oftawq__ internals, no symbols of static libraries linked into it, such as cJSON's).
# LIBRARY defaults to the build's lib/.libs/liboftawq.so*; NM (default nm) may name a cross nm, e.g. llvm-nm.
nm_tool=${NM:-nm}
lib=${1:-$(ls "${OFTAWQ_TEST_BUILDDIR:-.}"/lib/.libs/liboftawq.so* 2>/dev/null | head -n 1)}
if [ -z "$lib" ]; then
  echo "SKIP: no shared library was built"
  exit 77
fi
command -v "$nm_tool" >/dev/null 2>&1 || { echo "SKIP: $nm_tool not found"; exit 77; }
symbols=$("$nm_tool" -D --defined-only "$lib" | awk 'NF >= 3 {print $3}') || { echo "FAIL: $nm_tool cannot read $lib"; exit 1; }
# The linker's own markers (_end, __bss_start, ...) are not API; everything else must be oftawq_<lowercase>.
bad=$(echo "$symbols" | grep -v -e '^oftawq_[a-z]' -e '^_end$' -e '^_edata$' -e '^__bss_start$' -e '^_init$' -e '^_fini$' -e '^$')
count=$(echo "$symbols" | grep -c '^oftawq_[a-z]')
if [ -n "$bad" ]; then
  echo "FAIL: $lib exports symbols outside the oftawq_ API:"
  echo "$bad" | head -n 20
  exit 1
fi
if [ "$count" -lt 10 ]; then
  echo "FAIL: only $count oftawq_ symbols exported from $lib"
  exit 1
fi
echo "$count exported symbols, all oftawq_*"
