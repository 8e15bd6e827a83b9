#!/usr/bin/env python3
"""gen_model.py: a whole tiny AWQ model with PEFT OFT adapters, written and run by the real stack, for check_model.c.

Pinned reference: torch 2.6.0 (CPU), transformers 4.51.3, peft 0.18.1, autoawq 0.2.9 (its pure-torch path; no
triton, no awq_ext), accelerate, safetensors. Run by hand with the environment the README of this folder names:

    /opt/fixvenv/bin/python tests/gen/gen_model.py

What it does, all with the libraries' own code:
1. a random tiny Llama (hidden 128, MLP 256, 2 decoder layers, 4 heads, 2 KV heads, vocab 128) in fp16;
2. AutoAWQ's full AWQ quantisation of all seven projections of both layers (calibration on random token ids,
   group size 64, GEMM), saved by AutoAWQ's save_quantized in shards with an index;
3. that folder loaded back by AutoAWQ's from_quantized (get_best_device patched so that CPU does not demand
   IPEX kernels), four OFT adapters made by PEFT (get_peft_model / add_adapter) with small random weights,
   saved with save_pretrained, then loaded again with PeftModel.from_pretrained / load_adapter;
4. every AWQ module run through PEFT's AwqOFTLinear on the same inputs for several active-adapter lists.

Adapters: a - list ["q_proj", "v_proj", "down_proj"], exclude_modules ["model.layers.1.mlp.down_proj"],
b = 16, Neumann (5 terms); b - the regex ".*\\.layers\\.1\\..*(k|o|up)_proj", b = 32, exact Cayley,
module_dropout 0.1 (no effect); c - ["o_proj", "gate_proj"] with layers_to_transform [0] and layers_pattern
"layers", COFT with eps = -0.5 (PEFT accepts it and flips the projected weights), 3 terms; d - "gate_proj",
r = 4, num_cayley_neumann_terms 0 (R = I in PEFT).

Writes tests/fixtures/model/: model/ (AutoAWQ's folder), adapter_{a,b,c,d}/ (PEFT's folders), x.safetensors
(<module>.x, F16 [3, K] per AWQ module) and x_bf16.safetensors (the same in BF16), y_<case>.safetensors
(<module>.y, PEFT's outputs), wrapped.json (PEFT's own list: for every module PEFT wrapped, the adapters it
holds), cases.tsv (case, input, active list or "disabled").

PEFT 0.18.1's save_pretrained of a model holding several adapters writes the other adapters' weights into each
adapter file too, under keys that keep their name (...oft_R.<name>.weight); PEFT ignores those keys on load,
and so does oftawq (it reads ...<module>.oft_R.weight only). The files are kept as PEFT wrote them.
"""
import json
import os
import shutil
import sys
import tempfile
import warnings

import torch

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "model")
ROWS = 3
ADAPTERS = {
    "a": dict(r=0, oft_block_size=16, target_modules=["q_proj", "v_proj", "down_proj"],
              exclude_modules=["model.layers.1.mlp.down_proj"]),
    "b": dict(r=0, oft_block_size=32, target_modules=r".*\.layers\.1\..*(k|o|up)_proj", use_cayley_neumann=False,
              module_dropout=0.1),
    "c": dict(r=0, oft_block_size=16, target_modules=["o_proj", "gate_proj"], layers_to_transform=[0],
              layers_pattern="layers", coft=True, eps=-0.5, num_cayley_neumann_terms=3),
    "d": dict(r=4, oft_block_size=0, target_modules=["gate_proj"], num_cayley_neumann_terms=0),
}
# case: (input file, active adapters or None for disabled)
CASES = [
    ("disabled", "x", None),
    ("a", "x", ["a"]),
    ("ab", "x", ["a", "b"]),
    ("ba", "x", ["b", "a"]),
    ("ab_bf16", "x_bf16", ["a", "b"]),
    ("cd", "x", ["c", "d"]),
    ("abcd_bf16", "x_bf16", ["a", "b", "c", "d"]),
]


def quantise(work):
    from transformers import LlamaConfig, LlamaForCausalLM
    from awq import AutoAWQForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=False)
    LlamaForCausalLM(cfg).half().save_pretrained(os.path.join(work, "fp16"))
    model = AutoAWQForCausalLM.from_pretrained(os.path.join(work, "fp16"))
    g = torch.Generator().manual_seed(1)
    calib = [torch.randint(0, 128, (64,), generator=g).tolist() for _ in range(16)]
    model.quantize(None, quant_config={"zero_point": True, "q_group_size": 64, "w_bit": 4, "version": "GEMM"},
                   calib_data=calib, max_calib_samples=16, max_calib_seq_len=64)
    model.save_quantized("model", shard_size="120KB")


def load_quantised(path):
    from awq import AutoAWQForCausalLM
    import awq.models.base as awq_base
    awq_base.get_best_device = lambda: "cuda:0"  # "cpu" would demand IPEX kernels; the GEMM layer runs on CPU
    return AutoAWQForCausalLM.from_quantized(path, fuse_layers=False, device_map={"": "cpu"}).model


def make_adapters(model_dir, work):
    from peft import OFTConfig, get_peft_model
    model = load_quantised(model_dir)
    g = torch.Generator().manual_seed(2)
    peft_model = None
    for name, kw in ADAPTERS.items():
        cfg = OFTConfig(init_weights=False, **kw)
        if peft_model is None:
            peft_model = get_peft_model(model, cfg, adapter_name=name)
        else:
            peft_model.add_adapter(name, cfg)
    with torch.no_grad():
        for mod_name, mod in peft_model.named_modules():
            for name in getattr(mod, "oft_R", {}):
                w = mod.oft_R[name].weight
                b = mod.oft_R[name].block_size
                w.copy_(torch.randn(w.shape, generator=g) * (0.3 / b))
    saved = os.path.join(work, "adapters")
    peft_model.save_pretrained(saved)
    for name in ADAPTERS:
        src = os.path.join(saved, name) if os.path.isdir(os.path.join(saved, name)) else saved
        dst = "adapter_" + name
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(dst)
        for f in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy(os.path.join(src, f), dst)


def load_peft(model_dir):
    """The quantised model with every adapter loaded from its folder, and its AWQ modules by name."""
    from peft import PeftModel
    names = list(ADAPTERS)
    peft_model = PeftModel.from_pretrained(load_quantised(model_dir), "adapter_" + names[0], adapter_name=names[0])
    for name in names[1:]:
        peft_model.load_adapter("adapter_" + name, adapter_name=name)
    prefix = "base_model.model."
    modules = {n[len(prefix):]: m for n, m in peft_model.named_modules()
               if n.startswith(prefix) and not n.endswith(".base_layer")
               and type(getattr(m, "base_layer", m)).__name__ == "WQLinear_GEMM"}
    return peft_model, modules


def run(model_dir):
    from peft.tuners.oft.awq import AwqOFTLinear
    from safetensors.torch import save_file
    peft_model, modules = load_peft(model_dir)
    wrapped = {n: sorted(m.oft_R.keys()) for n, m in modules.items() if isinstance(m, AwqOFTLinear)}
    with open("wrapped.json", "w") as f:
        json.dump({"peft": __import__("peft").__version__, "awq_modules": sorted(modules), "wrapped": wrapped}, f,
                  indent=1, sort_keys=True)
    g = torch.Generator().manual_seed(3)
    xs = {n: (torch.randn(ROWS, m.base_layer.in_features if hasattr(m, "base_layer") else m.in_features,
                          generator=g) * 0.5).half() for n, m in sorted(modules.items())}
    inputs = {"x": {n + ".x": x for n, x in xs.items()}, "x_bf16": {n + ".x": x.bfloat16() for n, x in xs.items()}}
    for fname, tensors in inputs.items():
        save_file(tensors, fname + ".safetensors", metadata={"format": "pt"})
    lines = [f"# written by tests/gen/gen_model.py with peft {__import__('peft').__version__}, autoawq 0.2.9, "
             f"torch {torch.__version__}", "# case\tinput\tactive adapters (or disabled)"]
    for case, inp, active in CASES:
        # a fresh load per case: PEFT projects COFT weights in place on every forward, and with eps < 0 each
        # projection flips their sign again, so only a first forward is reproducible (oftawq projects once)
        peft_model, modules = load_peft(model_dir)
        with torch.no_grad():
            if active is None:
                with peft_model.disable_adapter():
                    ys = {n + ".y": m(inputs[inp][n + ".x"]) for n, m in modules.items()}
            else:
                peft_model.base_model.set_adapter(active)
                ys = {n + ".y": m(inputs[inp][n + ".x"]) for n, m in modules.items()}
        save_file({k: v.contiguous() for k, v in sorted(ys.items())}, "y_" + case + ".safetensors",
                  metadata={"format": "pt"})
        lines.append(f"{case}\t{inp}\t{','.join(active) if active else 'disabled'}")
    with open("cases.tsv", "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(modules)} AWQ modules, {len(wrapped)} wrapped, {len(CASES)} cases")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    os.chdir(OUT)  # PEFT records the model path in base_model_name_or_path: keep it relative
    with tempfile.TemporaryDirectory() as work:
        quantise(work)
        make_adapters("model", work)
    run("model")


if __name__ == "__main__":
    sys.exit(main())
