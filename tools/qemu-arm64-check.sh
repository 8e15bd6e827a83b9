#!/usr/bin/env bash
# qemu-arm64-check.sh: runs the whole test suite on arm64 under qemu-user, in an arm64 Debian root with PoCL.
#
# usage (as root, on Debian bookworm):  tools/qemu-arm64-check.sh [--native] [--keep-root] [ROOT]
#
#   ROOT         the arm64 root folder (default /var/tmp/oftawq-arm64-root); made with debootstrap
#                the first time, reused afterwards
#   --native     also runs the same build and `make check` natively (in a VPATH folder under ROOT),
#                so the summary gives the arm64/native time ratio from one run
#   --keep-root  leaves ROOT in place at the end (the default too; --remove-root deletes it)
#
# Everything comes from Debian packages: debootstrap and qemu-user-static on the host (binfmt with the
# fix-binary flag, so the emulator needs no copy inside the root), and in the root the same packages
# .ci/run installs, with PoCL as the OpenCL device. The sources copied in are the working tree's
# tracked and untracked-but-not-ignored files, so uncommitted changes are tested too.
# Environment: MIRROR (Debian mirror, default http://deb.debian.org/debian), JOBS (make -j, default nproc),
# CK_TIMEOUT_MULTIPLIER (default 10 under qemu: Check's per-test timeouts and the script tests' 120 s per CLI run
# guard against hangs, and PoCL compiles every kernel under emulation, 10x slower or more).
# The last line is "arm64 qemu: N passed, N failed" (make check's counts).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
root=/var/tmp/oftawq-arm64-root
native=no
remove_root=no
for arg in "$@"; do
  case "$arg" in
    --native) native=yes ;;
    --keep-root) remove_root=no ;;
    --remove-root) remove_root=yes ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "qemu-arm64-check: unknown option $arg" >&2; exit 2 ;;
    *) root=$arg ;;
  esac
done
mirror=${MIRROR:-http://deb.debian.org/debian}
jobs=${JOBS:-$(nproc)}
[ "$(id -u)" = 0 ] || { echo "qemu-arm64-check: needs root (debootstrap, chroot, binfmt)" >&2; exit 1; }

# Packages of the arm64 root: what .ci/run's main job installs, minus the host-only tools.
root_packages=build-essential,autoconf,automake,libtool,pkg-config,ocl-icd-opencl-dev,opencl-headers,pocl-opencl-icd,libclblast-dev,libcjson-dev,check,ca-certificates

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null || ! [ -x /usr/bin/qemu-aarch64-static ] || ! command -v update-binfmts >/dev/null; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends debootstrap qemu-user-static binfmt-support
fi
# binfmt_misc: mount it if the machine has not, and register the aarch64 emulator (fix-binary flag F).
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
  { echo "qemu-arm64-check: qemu-aarch64 is registered without the fix-binary flag" >&2; exit 1; }

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  if [ "$remove_root" = yes ]; then rm -rf "$root"; fi
}
trap cleanup EXIT
mount_in_root() {  # mount_in_root TYPE-OR-BIND SOURCE TARGET
  mkdir -p "$root/$3"
  if [ "$1" = bind ]; then mount --bind "$2" "$root/$3"; else mount -t "$1" "$2" "$root/$3"; fi
  mounted+=("$root/$3")
}

t0=$(date +%s)
if [ ! -f "$root/.oftawq-root-ready" ]; then
  rm -rf "$root"
  debootstrap --arch=arm64 --variant=minbase --include="$root_packages" bookworm "$root" "$mirror"
  touch "$root/.oftawq-root-ready"
fi
t_root=$(($(date +%s) - t0))

# A fresh copy of the sources (tracked and untracked, not ignored files).
rm -rf "$root/src"
mkdir -p "$root/src"
(cd "$src" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -C "$root/src" -xf -

mount_in_root proc proc /proc
mount_in_root sysfs sysfs /sys
mount_in_root bind /dev /dev
mount_in_root tmpfs tmpfs /tmp

timeout_multiplier=${CK_TIMEOUT_MULTIPLIER:-10}
build_and_check='set -e
  cd "$1"
  export CK_TIMEOUT_MULTIPLIER=${3:-1}
  export POCL_CACHE_DIR=$PWD/.pocl-cache POCL_MAX_PTHREAD_COUNT='"$jobs"' POCL_CPU_MAX_CU_COUNT='"$jobs"'
  t0=$(date +%s)
  "$2/configure" --enable-werror >configure.out
  make -j'"$jobs"' >make.out 2>&1 || { tail -n 40 make.out; exit 1; }
  t1=$(date +%s)
  rc=0
  make check -j'"$jobs"' >check.out 2>&1 || rc=$?
  t2=$(date +%s)
  grep -h -E "^[0-9]+%: Checks" tests/*.log || true
  sed -n "/^# TOTAL/,/^# ERROR/p" test-suite.log
  [ $rc = 0 ] || sed -n "/^FAIL\|^ERROR/p;/^=\{5,\}/,\$p" test-suite.log | head -n 200
  echo "times: build $((t1 - t0)) s, check $((t2 - t1)) s"
  exit $rc'

echo "== arm64 root ready in ${t_root} s ($(chroot "$root" uname -m), $(chroot "$root" sh -c 'dpkg -s pocl-opencl-icd | sed -n s/^Version:.//p'))"
chroot "$root" sh -c 'cd /src && autoreconf -fi >/dev/null 2>&1'
mkdir -p "$root/build-arm64"
rm -rf "$root/build-arm64"/*
echo "== arm64 (qemu-user): configure, make, make check"
arm_rc=0
arm_out=$(chroot "$root" sh -c "$build_and_check" sh /build-arm64 /src "$timeout_multiplier" 2>&1) || arm_rc=$?
echo "$arm_out"

native_out=""
if [ "$native" = yes ]; then
  echo "== native $(uname -m): the same steps"
  rm -rf "$root/build-native"
  mkdir -p "$root/build-native"
  native_rc=0
  native_out=$(sh -c "$build_and_check" sh "$root/build-native" "$root/src" 2>&1) || native_rc=$?
  echo "$native_out"
fi

count() { local n; n=$(echo "$1" | sed -n "s/^# $2: *//p" | head -n 1); echo "${n:-0}"; }
seconds() { echo "$1" | sed -n "s/^times: build \([0-9]*\) s, check \([0-9]*\) s/\\$2/p"; }
echo "== summary"
echo "arm64 qemu: build $(seconds "$arm_out" 1) s, check $(seconds "$arm_out" 2) s; $(count "$arm_out" TOTAL) tests"
if [ -n "$native_out" ]; then
  echo "native:     build $(seconds "$native_out" 1) s, check $(seconds "$native_out" 2) s; $(count "$native_out" TOTAL) tests (exit $native_rc)"
  nb=$(seconds "$native_out" 1) nc=$(seconds "$native_out" 2) ab=$(seconds "$arm_out" 1) ac=$(seconds "$arm_out" 2)
  if [ -n "$nb" ] && [ -n "$nc" ] && [ "$((nb + nc))" -gt 0 ]; then
    echo "ratio arm64/native: build $(awk "BEGIN{printf \"%.1f\", $ab/($nb?$nb:1)}")x, check $(awk "BEGIN{printf \"%.1f\", $ac/($nc?$nc:1)}")x"
  fi
fi
pass=$(count "$arm_out" PASS)
fail=$(($(count "$arm_out" FAIL) + $(count "$arm_out" ERROR) + $(count "$arm_out" XPASS)))
echo "arm64 qemu: $pass passed, $fail failed"
exit "$arm_rc"
