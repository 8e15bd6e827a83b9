#!/usr/bin/env bash
# asan: every suite again under AddressSanitizer + UndefinedBehaviorSanitizer (leaks inside the OpenCL stack are suppressed by tests/lsan.supp, ours are not).
# packages: build-essential autoconf automake libtool pkg-config ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
# packages: libclblast-dev libcjson-dev check
# timeout: 60
. .ci/lib.sh
ci_bootstrap
cd "$(ci_builddir asan)"
ci_step ../../configure --enable-sanitizers --enable-werror
ci_step make -j"$CI_JOBS"
LSAN_OPTIONS="suppressions=$ci_src/tests/lsan.supp:print_suppressions=0" ci_make_check
