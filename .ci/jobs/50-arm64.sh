#!/usr/bin/env bash
# arm64: the README's arm64 Linux cross build as written (VPATH folder build-arm64); the library and CLI are AArch64, link libOpenCL, and export only oftawq_*.
# packages: autoconf automake libtool pkg-config make opencl-headers
# packages: gcc-aarch64-linux-gnu ocl-icd-opencl-dev:arm64 libcjson-dev:arm64
# architectures: arm64
# timeout: 15
. .ci/lib.sh
block=$(ci_readme_block arm64)
[ -n "$block" ] || { echo "arm64: README.md has no '<!-- ci: arm64 -->' block"; exit 1; }
# Not root: the installs were .ci/run's to do (it said so); run the rest.
[ "$(id -u)" = 0 ] || block=$(echo "$block" | grep -v -E '^(dpkg|apt-get) ')
rm -rf "$ci_src/build-arm64"
echo "$block" | sed 's/^/+ /'
CONFIG_SITE=$(ci_werror_site) bash -euo pipefail -c "$block"

cd "$ci_src/build-arm64"
lib=$(ls lib/.libs/liboftawq.so.[0-9]* | head -n 1)
for f in "$lib" tools/.libs/oftawq; do
  machine=$(ci_elf_machine "$f")
  echo "$f: $machine"
  [ "$machine" = AArch64 ] || { echo "arm64: $f is not an AArch64 file"; exit 1; }
done
readelf -d "$lib" | grep -q 'NEEDED.*\[libOpenCL.so.1\]' || { echo "arm64: $lib does not link libOpenCL.so.1"; exit 1; }
NM=aarch64-linux-gnu-nm sh "$ci_src/tests/check_exports.sh" "$lib"
