#!/usr/bin/env python3
"""gen_pyre.py: Python's own `re` on the patterns PEFT's module targeting meets, for lib/model/pyre.c.

Needs only Python 3 (written with CPython 3.11's re). Run by hand:  python3 tests/gen/gen_pyre.py
Writes tests/fixtures/pyre.json: a list of {"p": pattern, "t": text, "full": re.fullmatch found,
"match": re.match found, "g": [start, end] of group 1 of re.match or null}.
"""
import itertools
import json
import os
import re

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pyre.json")

NAMES = ["model.layers.0.self_attn.q_proj", "model.layers.11.mlp.down_proj", "model.layers.1.self_attn.k_proj",
         "lm_head", "model.embed_tokens", "transformer.h.3.attn.c_attn", "model.layers.0", "model.layers",
         "model.decoder.layers.2.fc1", "a.b.12.c.3.d", "x", "", "layers.4.q", "model.layers.07.q_proj",
         "encoder.layer.5.attention.self.query", "q_proj", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ab\nc", "a b\tc",
         "model.layers.1.mlp.experts.3.up_proj", "x{2}", "a-b]c^d"]
PATTERNS = [
    r".*\.(q_proj|v_proj)", r".*\.layers\.1\..*(k|o|up)_proj", r"model\.layers\.\d+\.self_attn\.(q|k|v)_proj",
    r".*_proj", r"q_proj", r".*\.[^.]*\.(\d+)\.", r".*\.layers\.(\d+)\.", r".*\.h\.(\d+)\.", r".*\.layer\.(\d+)\.",
    r".*\.(?:layers|h)\.(\d+)\.", r".*\.layers|h\.(\d+)\.", r"(^|.*\.)lm_head($|\..*)", r"(^|.*\.)q_proj($|\..*)",
    r".*?\.(\d+)\.", r".*?(\d+)", r"(.*)(\d+)", r"(a*)*b", r"(a|aa)*b", r"(a*)*", r"a{3,5}", r"a{3,}?a*", r"a{,2}",
    r"x{2}", r"x\{2\}", r"[a-c]+\.[b]", r"[^.]+", r"[\d.]+", r"[\w.]+", r"[\s\S]*", r"\w+\s\w+", r"\bq_proj\b",
    r".*\Bproj", r"\Aq_proj\Z", r"q_proj$", r"^model", r"(model)?\.?layers.*", r"(?P<n>\d+)", r"a|", r"|a",
    r"()*", r"(a|b|)+", r"a-b\]c\^d", r"[]a-]+", r"[^]a]+", r"\x61+", r"model\.layers\.0(\.|$).*", r".", r"\.",
    r"(lm_head|embed_tokens)", r"(?:.*\.)?(\d{1,2})\..*",
]


def span(m):
    if not m or m.re.groups < 1 or m.start(1) < 0:
        return None
    return [m.start(1), m.end(1)]


def main():
    rows = []
    for p, t in itertools.product(PATTERNS, NAMES):
        m = re.match(p, t)
        rows.append({"p": p, "t": t, "full": re.fullmatch(p, t) is not None, "match": m is not None, "g": span(m)})
    with open(OUT, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n]\n")
    print(f"{len(rows)} cases")


if __name__ == "__main__":
    main()
