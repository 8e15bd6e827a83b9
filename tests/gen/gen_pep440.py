#!/usr/bin/env python3
"""gen_pep440.py: writes tests/fixtures/pep440.tsv, the PEP 440 ordering table that check_version tests against.

Reference: Python's packaging.version.Version (pinned: packaging==23.0, Debian bookworm's
python3-packaging; any packaging >= 22 gives the same table).
Run by hand:  python3 tests/gen/gen_pep440.py > tests/fixtures/pep440.tsv
Lines: "cmp<TAB>a<TAB>b<TAB>result" with result -1/0/1, or "invalid<TAB>string".
"""
import itertools
import random
import sys

from packaging.version import InvalidVersion, Version

VERSIONS = [
    "0.1", "0.1.9", "0.2", "0.2.0", "0.2.0.0", "v0.2.0", "V0.2.0", " 0.2.0 ", "00.02.000",
    "0.2.0.dev0", "0.2.0.dev1", "0.2.0-dev2", "0.2.0_dev", "0.2.0dev", "0.2.0a0", "0.2.0a1", "0.2.0alpha1",
    "0.2.0-alpha.1", "0.2.0.a1", "0.2.0a1.dev3", "0.2.0b1", "0.2.0beta2", "0.2.0-b.3", "0.2.0rc1",
    "0.2.0c1", "0.2.0pre1", "0.2.0preview1", "0.2.0-rc.2", "0.2.0RC3", "0.2.0rc", "0.2.0a", "0.2.0a.",
    "0.2.0.post1", "0.2.0post1", "0.2.0-1", "0.2.0-post1", "0.2.0.rev1", "0.2.0r1", "0.2.0.post",
    "0.2.0.post1.dev1", "0.2.0.post1.dev2", "0.2.0a1.post1", "0.2.0a1.post1.dev1",
    "0.2.0+cu121", "0.2.0+cu118", "0.2.0+local.1", "0.2.0+local.2", "0.2.0+local.10", "0.2.0+1",
    "0.2.0+abc", "0.2.0+1.abc", "0.2.0+abc.1", "0.2.0+a-b_c", "0.2.0+A.B.c",
    "0.2.1", "0.2.9", "0.2.10", "0.10", "1.0", "1!0.1", "1!0.0.1", "2!0", "0!0.2.0",
    "0.17.1", "0.18.0", "0.18.2.dev0", "0.18.0.dev0", "0.18.0rc1", "0.20.1.dev0", "0.16.0",
    "1.0.0.0.0.1", "1.0.0.0.0", "1.0-dev-", "1.0-post-", "99999999999999999999.0", "100000000000000000000.0",
]

INVALID = [
    "", " ", "abc", "1.0.", ".1.0", "1..0", "1.0-", "1.0+", "1.0+.a", "1.0+a..b", "1.0++a",
    "1.0a1a", "1.0ab", "1.0.dev.post1", "!1.0", "1!", "1.0 a1", "v", "vv1.0",
    "1.0_", "1.0foo", "1,0", "1.0+a b", "0x10", "1.0.dev1.dev2", "1.0rc1rc2", "1.0.post1.post2", "1.0a1b1", "+local", "1.0_+a",
]


def cmp(a, b):
    va, vb = Version(a), Version(b)
    return (va > vb) - (va < vb)


def main():
    rng = random.Random(440)
    pairs = list(zip(VERSIONS, VERSIONS[1:]))
    allpairs = list(itertools.combinations(VERSIONS, 2))
    pairs += rng.sample(allpairs, 200)
    pairs += [(v, v) for v in VERSIONS[::7]]
    out = sys.stdout
    for a, b in pairs:
        out.write(f"cmp\t{a}\t{b}\t{cmp(a, b)}\n")
    for s in INVALID:
        try:
            Version(s)
        except InvalidVersion:
            out.write(f"invalid\t{s}\n")
        else:
            sys.exit(f"expected invalid but packaging accepts: {s!r}")


if __name__ == "__main__":
    main()
