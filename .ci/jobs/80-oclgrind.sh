#!/usr/bin/env bash
# oclgrind: every kernel once on small shapes (each AWQ path and dtype on both weight layouts, the rotation, R by Neumann and exact Cayley on the device, training, every candidate of the tuner, the benchmark's fma reference), each result checked, under oclgrind --data-races --uninitialized --check-api on its GPU-type device; any report fails.
# packages: build-essential autoconf automake libtool pkg-config ocl-icd-opencl-dev opencl-headers
# packages: libclblast-dev libcjson-dev oclgrind
# timeout: 40
. .ci/lib.sh
ci_bootstrap
cd "$(ci_builddir oclgrind)"
ci_step ../../configure --enable-werror
ci_step make -j"$CI_JOBS" tests/kernel_tour
ci_step make check-oclgrind
