# .ci/lib.sh: helpers the CI jobs share (sourced by .ci/jobs/*.sh, which run from the repository root).
set -euo pipefail
ci_src=$PWD
: "${CI_JOBS:=2}"

# ci_step COMMAND...: prints the command, then runs it.
ci_step() {
  echo "+ $*"
  "$@"
}

# ci_bootstrap: autoreconf -fi unless the tree already has an up-to-date configure.
ci_bootstrap() {
  if [ ! -x "$ci_src/configure" ] || [ "$ci_src/configure.ac" -nt "$ci_src/configure" ] ||
     [ "$ci_src/Makefile.am" -nt "$ci_src/Makefile.in" ]; then
    (cd "$ci_src" && ci_step autoreconf -fi)
  fi
}

# ci_builddir NAME: a fresh, empty VPATH build folder build-ci/NAME; prints its path.
ci_builddir() {
  rm -rf "$ci_src/build-ci/$1"
  mkdir -p "$ci_src/build-ci/$1"
  echo "$ci_src/build-ci/$1"
}

# ci_werror_site: a config.site that turns --enable-werror on (enable_werror=yes is what the option
# sets), for configure lines that CI takes from the README as written; prints its path.
ci_werror_site() {
  mkdir -p "$ci_src/build-ci"
  echo 'enable_werror=yes' >"$ci_src/build-ci/werror.site"
  echo "$ci_src/build-ci/werror.site"
}

# ci_test_summaries: Check's per-suite lines and automake's totals, from the build folder.
ci_test_summaries() {
  grep -h -E "^[0-9]+%: Checks|^check_[a-z]+: [0-9]+ passed" tests/*.log 2>/dev/null || true
  [ -f test-suite.log ] && sed -n '/^# TOTAL/,/^# ERROR/p' test-suite.log
  return 0
}

# ci_make_check [MAKE ARGS...]: make check in the current build folder; prints the failures' logs.
ci_make_check() {
  local rc=0
  ci_step make check -j"$CI_JOBS" "$@" || rc=$?
  [ "$rc" = 0 ] || cat test-suite.log 2>/dev/null || true
  ci_test_summaries
  return "$rc"
}

# ci_readme_block NAME: the ```sh block of README.md that follows the line
# "<!-- ci: NAME -->" (so CI runs what the README tells a user to type).
ci_readme_block() {
  awk -v marker="<!-- ci: $1 -->" '
    $0 == marker { found = 1; next }
    found == 1 && /^```sh$/ { found = 2; next }
    found == 2 && /^```$/ { exit }
    found == 2 { print }' "$ci_src/README.md"
}

# ci_elf_machine FILE: the ELF machine field ("AArch64", "Advanced Micro Devices X86-64", ...).
ci_elf_machine() {
  LC_ALL=C readelf -h "$1" | sed -n 's/^ *Machine: *//p'
}

# ci_check_headers CC [FLAGS...]: each public header, alone, compiles as C99 and as C++11
# (-pedantic-errors -Wall -Wextra -Werror); FLAGS give the include folders.
ci_check_headers() {
  local cc=$1 h lang tmp
  shift
  tmp=$(mktemp -d)
  for h in oftawq.h oftawq_cl.h; do
    printf '#include <%s>\nint main(void) { return oftawq_version() == 0; }\n' "$h" >"$tmp/use.c"
    for lang in "c -std=c99" "c++ -std=c++11"; do
      # -c rather than -fsyntax-only: an NDK-style wrapper adds link flags unless it sees -c.
      # shellcheck disable=SC2086
      "$cc" -x $lang -pedantic-errors -Wall -Wextra -Werror "$@" -c -o "$tmp/use.o" "$tmp/use.c" ||
        { echo "headers: $h does not compile as $lang with $cc"; rm -rf "$tmp"; return 1; }
    done
  done
  rm -rf "$tmp"
  echo "headers: oftawq.h and oftawq_cl.h compile as C99 and C++11 with $cc"
}
