#!/usr/bin/env bash
# bootstrap: `autoreconf -fi` works without autoconf-archive - the AX_ macros configure.ac uses are vendored in m4/.
# packages: autoconf automake libtool pkg-config
# timeout: 5
. .ci/lib.sh

# aclocal gets a system macro folder without autoconf-archive's files, installed here or not,
# so only m4/ can supply AX_CHECK_COMPILE_FLAG, AX_CHECK_LINK_FLAG and AX_PTHREAD.
acdir=$(mktemp -d)
trap 'rm -rf "$acdir"' EXIT
cp -a /usr/share/aclocal/. "$acdir/"
if dpkg -s autoconf-archive >/dev/null 2>&1; then
  dpkg -L autoconf-archive | sed -n 's|^/usr/share/aclocal/\(.*\.m4\)$|\1|p' | (cd "$acdir" && xargs rm -f)
fi
if ls "$acdir"/ax_* >/dev/null 2>&1; then echo "bootstrap: ax_*.m4 still in the system macro folder"; exit 1; fi
ci_step env ACLOCAL="aclocal --system-acdir=$acdir" autoreconf -fi
for m in ax_check_compile_flag ax_check_link_flag ax_pthread; do
  grep -q "m4_include(\[m4/$m.m4\])" aclocal.m4 || { echo "bootstrap: aclocal.m4 does not take $m from m4/"; exit 1; }
done
if grep -n 'AX_[A-Z_]*(' configure; then echo "bootstrap: configure has unexpanded AX_ macros"; exit 1; fi
echo "bootstrap: configure generated with the macros of m4/ only"
