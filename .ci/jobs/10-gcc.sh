#!/usr/bin/env bash
# gcc: in the source tree (gcc, -Werror; `make check` itself is .ci/run's readme job), the public headers as C99/C++, make distcheck; then the same tree reconfigured for arm64, which must rebuild every object.
# packages: build-essential autoconf automake libtool pkg-config ocl-icd-opencl-dev opencl-headers pocl-opencl-icd
# packages: clinfo libclblast-dev libcjson-dev check g++
# packages: gcc-aarch64-linux-gnu ocl-icd-opencl-dev:arm64 libcjson-dev:arm64
# architectures: arm64
# timeout: 60
. .ci/lib.sh
# Leave the tree unconfigured for the VPATH jobs that follow, whatever happens.
trap '[ -f Makefile ] && make distclean >/dev/null 2>&1; true' EXIT

ci_bootstrap
ci_step ./configure --enable-werror
ci_step make -j"$CI_JOBS"
ci_check_headers gcc -Iinclude
ci_step make distcheck -j"$CI_JOBS" DISTCHECK_CONFIGURE_FLAGS="--enable-werror"

# A tree that holds a native build, reconfigured for a cross build: generated sources
# (lib/cl_kernels.c) are made again per configuration, so no x86-64 object reaches the link.
ci_step ./configure --host=aarch64-linux-gnu --with-clblast=no --enable-werror \
  PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
ci_step make -j"$CI_JOBS"
for f in lib/.libs/liboftawq.so tools/.libs/oftawq; do
  machine=$(ci_elf_machine "$f")
  echo "$f: $machine"
  [ "$machine" = AArch64 ] || { echo "gcc: $f is not an AArch64 file after the reconfiguration"; exit 1; }
done
