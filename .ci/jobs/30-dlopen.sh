#!/usr/bin/env bash
# dlopen: --enable-opencl-dlopen (the Android default: libOpenCL loaded at run time, not linked), with make check on PoCL.
# packages: build-essential autoconf automake libtool pkg-config ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
# packages: libcjson-dev check binutils
# timeout: 30
. .ci/lib.sh
ci_bootstrap
cd "$(ci_builddir dlopen)"
ci_step ../../configure --enable-opencl-dlopen --enable-werror
ci_step make -j"$CI_JOBS"
if readelf -d lib/.libs/liboftawq.so | grep NEEDED | grep -i opencl; then
  echo "dlopen: liboftawq.so links libOpenCL"
  exit 1
fi
ci_make_check
