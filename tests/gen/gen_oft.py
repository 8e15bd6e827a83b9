#!/usr/bin/env python3
"""gen_oft.py: golden OFT fixtures (w, x, R, y) from PEFT's own OFTRotationModule, for tests/check_oft.c.

Pinned reference: peft==0.18.0 (current Cayley-Neumann formula) and peft==0.17.1 (the pre-0.18
formula), torch 1.13 (Debian bookworm's python3-torch; any torch >= 1.13 works), numpy.

    pip install --no-deps peft==0.18.0      # or: pip download --no-deps peft==0.18.0 and unzip the wheel
    python3 tests/gen/gen_oft.py --tag current > /dev/null
    pip install --no-deps peft==0.17.1
    python3 tests/gen/gen_oft.py --tag legacy

PEFT's package __init__ imports transformers; when that is not installed the script loads
peft/tuners/oft/layer.py from the installed (or --peft-src) package directly, with stand-ins
for the two classes that file imports but OFTRotationModule does not use. The maths executed is
PEFT's own code. Outputs: tests/fixtures/oft/<tag>.tsv (one line per case) and
tests/fixtures/oft/<case>.f32 (little-endian float32: w, then x, then R, then y).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peftawq import load_peft_layer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "oft")


def adjust(layer, d, p):
    # PEFT's own adjust_oft_parameters (it does not use self)
    return layer.OFTLayer.adjust_oft_parameters(None, d, p)


def make_case(layer, name, d, r=0, b=32, coft=False, eps=6e-5, share=False, neumann=True, terms=5, std=None, rows=3,
              seed=0):
    cfg_r, cfg_b = r, b
    if r == 0:
        if d % b != 0 or b > d:
            b = adjust(layer, d, b)
        r = d // b
    else:
        if d % r != 0 or r > d:
            r = adjust(layer, d, r)
        b = d // r
    n_el = b * (b - 1) // 2
    mod = layer.OFTRotationModule(r if not share else 1, n_el, b, d, coft=coft, eps=eps, block_share=share,
                                  use_cayley_neumann=neumann, num_cayley_neumann_terms=terms)
    g = torch.Generator().manual_seed(seed)
    if std is None:
        std = 0.1 if b <= 8 else 0.3 / b
    with torch.no_grad():
        mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * std)
    w = mod.weight.detach().clone()
    x = torch.randn(rows, d, generator=g)
    with torch.no_grad():
        y = mod(x)
        R = mod._cayley_batch(mod.weight, b, neumann, terms)
    data = np.concatenate([a.numpy().astype("<f4").ravel() for a in (w, x, R, y)])
    data.tofile(os.path.join(OUT, name + ".f32"))
    return (f"{name}\t{d}\t{cfg_r}\t{cfg_b}\t{r}\t{b}\t{int(coft)}\t{eps!r}\t{int(share)}\t{int(neumann)}\t{terms}\t{rows}"
            f"\t{w.shape[0]}\t{w.shape[1]}")


def cases(tag):
    c = []
    if tag == "current":
        for b, k in [(1, 3), (2, 3), (8, 3), (16, 3), (25, 2), (30, 2), (32, 2), (37, 1), (64, 2)]:
            c.append(dict(name=f"b{b}_neumann5", d=b * k, b=b))
            c.append(dict(name=f"b{b}_exact", d=b * k, b=b, neumann=False))
        for n in range(1, 8):
            c.append(dict(name=f"terms{n}_b8", d=32, b=8, terms=n))
        for neu in (True, False):
            tag_ = "neumann" if neu else "exact"
            c.append(dict(name=f"coft_active_{tag_}", d=64, b=16, coft=True, eps=1e-2, neumann=neu, std=0.05))
            c.append(dict(name=f"coft_inactive_{tag_}", d=64, b=16, coft=True, eps=10.0, neumann=neu, std=0.02))
            c.append(dict(name=f"share_{tag_}", d=64, b=16, share=True, neumann=neu))
        c.append(dict(name="share_coft_neumann", d=64, b=16, share=True, coft=True, eps=1e-2, std=0.05))
        c.append(dict(name="by_r4_d64", d=64, r=4, b=0))
        c.append(dict(name="adjust_r7_d60", d=60, r=7, b=0))
        c.append(dict(name="adjust_b20_d96_tie", d=96, b=20))
        c.append(dict(name="adjust_b32_d1000", d=1000, b=32, rows=2))
        c.append(dict(name="adjust_b32_d37", d=37, b=32, neumann=False))
        c.append(dict(name="divergent_b16", d=32, b=16, std=0.1))
    else:
        for n in range(1, 8):
            c.append(dict(name=f"legacy_terms{n}_b8", d=32, b=8, terms=n))
        c.append(dict(name="legacy_b32_neumann5", d=64, b=32))
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", choices=["current", "legacy"], required=True)
    ap.add_argument("--peft-src", help="folder of the peft package (an unpacked wheel's peft/)")
    args = ap.parse_args()
    layer, version = load_peft_layer(args.peft_src)
    if args.tag == "legacy" and version >= "0.18":
        sys.exit(f"legacy fixtures need peft < 0.18, found {version}")
    if args.tag == "current" and version < "0.18":
        sys.exit(f"current fixtures need peft >= 0.18, found {version}")
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    lines = [f"# written by tests/gen/gen_oft.py with peft {version}, torch {torch.__version__}",
             "# name d cfg_r cfg_b r b coft eps block_share neumann terms rows w_rows n_el"]
    for i, kw in enumerate(cases(args.tag)):
        lines.append(make_case(layer, seed=1000 + i, **kw))
    with open(os.path.join(OUT, args.tag + ".tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines) - 2} cases with peft {version}")


if __name__ == "__main__":
    main()
