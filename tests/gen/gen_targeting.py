#!/usr/bin/env python3
"""gen_targeting.py: PEFT's own check_target_module_exists on adapter configs x module names, for check_model.c.

Pinned reference: peft 0.18.1 (peft.tuners.tuners_utils.check_target_module_exists). Run by hand:
    /opt/fixvenv/bin/python tests/gen/gen_targeting.py
Writes tests/fixtures/targeting.json: {"keys": [...], "configs": [{"config": {adapter_config fields},
"result": ["targeted" | "excluded" | "no" | "error", ...] per key}]}.
"""
import json
import os
import types

import peft
from peft.tuners.tuners_utils import _ExcludedModule, check_target_module_exists

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "targeting.json")
KEYS = ["model", "model.layers", "model.layers.0", "model.layers.0.self_attn", "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.k_proj", "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj",
        "model.layers.1.mlp.up_proj", "model.layers.12.mlp.gate_proj", "model.layers.1.mlp.experts.3.up_proj",
        "lm_head", "model.embed_tokens", "transformer.h.2.attn.c_attn", "transformer.h.5.mlp.c_fc", "q_proj",
        "model.decoder.layers.3.fc1", "model.layers.07.self_attn.v_proj", "xq_proj", "model.norm"]
CONFIGS = [
    {"target_modules": ["q_proj", "v_proj"]},
    {"target_modules": ["self_attn.q_proj"]},
    {"target_modules": ["model.layers.0.self_attn.q_proj", "lm_head"]},
    {"target_modules": r".*\.(q|k)_proj"},
    {"target_modules": r"model\.layers\.\d+\.mlp\..*"},
    {"target_modules": "q_proj"},
    {"target_modules": ["q_proj", "up_proj", "gate_proj"], "layers_to_transform": [1, 12]},
    {"target_modules": ["q_proj", "up_proj", "gate_proj"], "layers_to_transform": 1},
    {"target_modules": ["q_proj", "up_proj"], "layers_to_transform": [1], "layers_pattern": "layers"},
    {"target_modules": ["c_attn", "c_fc", "q_proj"], "layers_to_transform": [2, 5], "layers_pattern": ["h", "layers"]},
    {"target_modules": ["up_proj"], "layers_to_transform": [3]},
    {"target_modules": ["model.layers.1.self_attn.q_proj"], "layers_to_transform": [0]},
    {"target_modules": ["q_proj"], "layers_to_transform": [7], "layers_pattern": "layers"},
    {"target_modules": ["q_proj"], "layers_to_transform": [], "layers_pattern": "layers"},
    {"target_modules": ["q_proj", "k_proj", "v_proj"], "exclude_modules": ["model.layers.0.self_attn.k_proj"]},
    {"target_modules": ["q_proj", "k_proj"], "exclude_modules": ["k_proj"]},
    {"target_modules": r".*_proj", "exclude_modules": r".*\.layers\.1\..*"},
    {"target_modules": ["q_proj", "lm_head"], "modules_to_save": ["lm_head"]},
    {"target_modules": ["up_proj", "q_proj"], "modules_to_save": ["mlp"]},
    {"target_modules": ["fc1", "q_proj"], "layers_to_transform": [3], "layers_pattern": "decoder.layers"},
    {"target_modules": ["q_proj"], "layers_to_transform": [1], "layers_pattern": ""},
    {"target_modules": ["self_attn"]},
    {"target_modules": []},
    {"target_modules": ["up_proj"], "layers_to_transform": [1], "layers_pattern": "(layers|experts)"},
]
FIELDS = {"exclude_modules": None, "modules_to_save": None, "target_parameters": None, "layers_to_transform": None,
          "layers_pattern": None}


def main():
    out = {"peft": peft.__version__, "keys": KEYS, "configs": []}
    for c in CONFIGS:
        cfg = types.SimpleNamespace(**dict(FIELDS, **c))
        result = []
        for k in KEYS:
            try:
                r = check_target_module_exists(cfg, k)
                result.append("excluded" if isinstance(r, _ExcludedModule) else "targeted" if r else "no")
            except Exception:
                result.append("error")
        out["configs"].append({"config": c, "result": result})
    with open(OUT, "w") as f:
        f.write(json.dumps(out, indent=None, separators=(",", ":")).replace('{"config"', '\n{"config"') + "\n")
    print(f"{len(CONFIGS)} configs x {len(KEYS)} keys")


if __name__ == "__main__":
    main()
