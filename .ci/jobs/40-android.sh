#!/usr/bin/env bash
# android: the README's Android commands as written, with the NDK stand-in of shared/ as the NDK; then what an app's library needs (NEEDED, exports, 16 KiB pages, stripped, headers) and examples/android/.
# packages: autoconf automake libtool pkg-config make clang-15 lld-15 llvm-15 cmake openjdk-17-jdk-headless
# timeout: 20
. .ci/lib.sh

# The stand-in: $OFTAWQ_NDK_STANDIN, else shared/ beside the checkout (where CI has it), else the workplace's.
standin=
for d in "${OFTAWQ_NDK_STANDIN:-}" "$ci_src/../shared/android-ndk-standin" /work/shared/android-ndk-standin; do
  if [ -n "$d" ] && [ -d "$d/toolchains" ]; then standin=$(cd "$d" && pwd); break; fi
done
[ -n "$standin" ] || { echo "android: no NDK stand-in found (set OFTAWQ_NDK_STANDIN to its folder)"; exit 1; }
echo "android: NDK stand-in $standin"
prebuilt=toolchains/llvm/prebuilt/linux-x86_64

# The stand-in's tool links can arrive as small text files that name their target (a copy that
# lost its symlinks): give the build an NDK folder of real links, with the same layout.
ndk=$ci_src/build-ci/android-ndk
rm -rf "$ndk"
mkdir -p "$ndk/$prebuilt/bin"
ln -s "$standin/$prebuilt/sysroot" "$ndk/$prebuilt/sysroot"
for f in "$standin/$prebuilt/bin/"*; do
  target=$f
  [ -x "$f" ] || target=$(head -n 1 "$f")
  [ -x "$target" ] || { echo "android: stand-in tool $f leads nowhere ($target)"; exit 1; }
  ln -s "$target" "$ndk/$prebuilt/bin/$(basename "$f")"
done
bin=$ndk/$prebuilt/bin

# The README's block, less the two lines that name the user's folders; -Werror through a config.site.
block=$(ci_readme_block android | grep -v -E '^(NDK|EXTRA)=')
[ -n "$block" ] || { echo "android: README.md has no '<!-- ci: android -->' block"; exit 1; }
rm -rf "$ci_src/build-android" "$ci_src/oftawq-android"
echo "$block" | sed 's/^/+ /'
NDK=$ndk EXTRA=$standin/extra CONFIG_SITE=$(ci_werror_site) bash -euo pipefail -c "$block"

prefix=$ci_src/oftawq-android/arm64-v8a
lib=$prefix/lib/liboftawq.so
[ -f "$lib" ] || { echo "android: make install-strip did not install $lib"; exit 1; }

# check_page_size FILE: every LOAD segment is aligned to 16 KiB or more.
check_page_size() {
  local align bad=0
  for align in $("$bin/llvm-readelf" -lW "$1" | awk '$1 == "LOAD" {print $NF}'); do
    [ "$((align))" -ge 16384 ] || bad=1
  done
  [ "$bad" = 0 ] || { echo "android: $1 has LOAD segments aligned below 16 KiB:"; "$bin/llvm-readelf" -lW "$1" | grep LOAD; return 1; }
  echo "$(basename "$1"): LOAD segments aligned to 16 KiB or more"
}

needed=$("$bin/llvm-readelf" -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "liboftawq.so NEEDED: $needed"
for n in $needed; do
  case $n in
    libc.so|libm.so|libdl.so) ;;
    *) echo "android: liboftawq.so needs $n (only libc, libm, libdl may be)"; exit 1 ;;
  esac
done
NM=$bin/llvm-nm sh "$ci_src/tests/check_exports.sh" "$lib"
check_page_size "$lib"
if "$bin/llvm-readelf" -SW "$lib" | grep -q '\.symtab'; then echo "android: $lib is not stripped"; exit 1; fi
echo "liboftawq.so: stripped"
ci_check_headers "$bin/aarch64-linux-android29-clang" -I"$prefix/include" -I"$standin/extra/include"

# examples/android: the JNI names the Java class declares (javac -h) are the ones the C wrapper
# defines, with the same types; the CMake part builds the wrapper against the installed library.
example=$ci_src/examples/android/app/src/main
out=$ci_src/build-ci/android-example
rm -rf "$out"
ci_step javac -h "$out/h" -d "$out/classes" "$example/java/org/oftawq/example/OftawqLayer.java"
ci_step cmake -S "$example/cpp" -B "$out/cmake" -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_C_COMPILER="$bin/aarch64-linux-android29-clang" -DANDROID_ABI=arm64-v8a \
  -DOFTAWQ_DIR="$ci_src/oftawq-android" -DCMAKE_C_FLAGS="-Werror -include $out/h/org_oftawq_example_OftawqLayer.h"
ci_step cmake --build "$out/cmake" --verbose
jni=$out/cmake/liboftawq_jni.so
declared=$(grep -o 'Java_[A-Za-z0-9_]*' "$out/h/org_oftawq_example_OftawqLayer.h" | sort -u)
defined=$("$bin/llvm-nm" -D --defined-only "$jni" | awk '{print $3}' | grep '^Java_' | sort -u)
[ "$declared" = "$defined" ] || { echo "android: JNI functions differ"; diff <(echo "$declared") <(echo "$defined"); exit 1; }
echo "liboftawq_jni.so defines the $(echo "$defined" | wc -l) native methods OftawqLayer.java declares"
"$bin/llvm-readelf" -d "$jni" | grep -q 'NEEDED.*\[liboftawq.so\]' || { echo "android: liboftawq_jni.so does not link liboftawq.so"; exit 1; }
check_page_size "$jni"
