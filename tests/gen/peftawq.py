"""peftawq.py: shared by the fixture generators - loading PEFT's and AutoAWQ's own code without their heavy
package imports, reading safetensors, and AutoAWQ's quantise/pack/dequantise steps (see each generator's header
for the pinned versions)."""
import importlib.util
import json
import os
import struct
import sys
import types

import numpy as np
import torch

from stfile import read_safetensors  # noqa: F401 (re-exported for the generators)


def load_peft_layer(src):
    try:
        if src is None:
            from peft.tuners.oft import layer  # noqa: F401
            import peft
            return layer, peft.__version__
    except Exception:
        pass
    if src is None:
        spec = importlib.util.find_spec("peft")
        src = os.path.dirname(spec.origin)
    for name in ["peft", "peft.tuners", "peft.tuners.oft"]:
        mod = types.ModuleType(name)
        mod.__path__ = []
        sys.modules[name] = mod
    utils = types.ModuleType("peft.tuners.tuners_utils")
    utils.BaseTunerLayer = type("BaseTunerLayer", (), {})
    utils.check_adapters_to_merge = lambda *a, **k: []
    sys.modules["peft.tuners.tuners_utils"] = utils
    config = types.ModuleType("peft.tuners.oft.config")
    config.OFTConfig = type("OFTConfig", (), {})
    sys.modules["peft.tuners.oft.config"] = config
    spec = importlib.util.spec_from_file_location("peft.tuners.oft.layer", os.path.join(src, "tuners", "oft", "layer.py"))
    layer = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = layer
    spec.loader.exec_module(layer)
    version = "unknown"
    with open(os.path.join(src, "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                version = line.split("=")[1].strip().strip("\"'")
    return layer, version


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




def quantize_linear(WQLinear_GEMM, dequantize_gemm, weight, bias, G):
    """AutoAWQ-quantise one nn.Linear weight [N, K]: returns the packed module and the fp16 dequantised W [K, N]."""
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
        W = dequantize_gemm(q.qweight, q.qzeros, q.scales, 4, g).numpy()
    except IndexError:  # torch < 2 cannot index with int32 tensors inside reverse_awq_order
        W = restated_dequantize_gemm(q.qweight.detach().numpy(), q.qzeros.detach().numpy(),
                                     q.scales.detach().numpy(), g)
    return q, W


def awq_matmul(x, W, bias):
    """AutoAWQ's layer in fp16 with an exact sum: fp16(fp16(x) @ W + bias) as float32."""
    xh = x.astype(np.float16).astype(np.float64)
    y = xh @ W.astype(np.float64) + bias.astype(np.float64)
    return y.astype(np.float32).astype(np.float16).astype(np.float32)
