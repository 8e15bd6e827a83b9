#!/usr/bin/env bash
# fuzz: the libFuzzer targets of the safetensors and config parsers, a fixed number of inputs from a fixed seed (make fuzz).
# packages: build-essential autoconf automake libtool pkg-config ocl-icd-opencl-dev opencl-headers
# packages: libclblast-dev libcjson-dev clang libclang-rt-14-dev
# timeout: 20
. .ci/lib.sh
ci_bootstrap
cd "$(ci_builddir fuzz)"
ci_step ../../configure --enable-werror
ci_step make fuzz
