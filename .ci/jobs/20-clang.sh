#!/usr/bin/env bash
# clang: the library, CLI and tests built by clang with -Werror (what NDK users compile with), in a VPATH folder, and make check.
# packages: build-essential autoconf automake libtool pkg-config ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
# packages: libclblast-dev libcjson-dev check clang
# timeout: 30
. .ci/lib.sh
ci_bootstrap
cd "$(ci_builddir clang)"
ci_step ../../configure CC=clang --enable-werror
ci_step make -j"$CI_JOBS"
ci_check_headers clang -I"$ci_src/include" -Iinclude
ci_make_check
