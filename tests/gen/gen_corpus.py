#!/usr/bin/env python3
"""gen_corpus.py: the bad-input corpus run by tests/check_corpus.sh and tests/check_files.c.

Needs only Python 3 and numpy (written with numpy 1.24). Run by hand:  python3 tests/gen/gen_corpus.py
Writes tests/corpus/: good/ (a small valid AWQ model folder, an OFT adapter folder and an input), one
folder per malformed case holding only the parts that differ, and cases.tsv:
    name <TAB> oftawq arguments (@NAME/... are corpus paths, @OUT the output file) <TAB> expected message part
"""
import json
import os
import shutil
import struct

import numpy as np

from stfile import safetensors_bytes, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "corpus")
MODULE = "model.layers.0.mlp.up_proj"
K, N, G = 64, 32, 32
rng = np.random.default_rng(30)


def model_tensors():
    return {
        MODULE + ".qweight": rng.integers(-2**31, 2**31, size=(K, N // 8), dtype=np.int64).astype(np.int32),
        MODULE + ".qzeros": rng.integers(-2**31, 2**31, size=(K // G, N // 8), dtype=np.int64).astype(np.int32),
        MODULE + ".scales": rng.uniform(0.001, 0.02, size=(K // G, N)).astype(np.float16),
        MODULE + ".bias": rng.uniform(-1, 1, size=(N,)).astype(np.float16),
        "model.layers.0.mlp.gate_proj.weight": rng.uniform(-1, 1, size=(N, K)).astype(np.float16),
        "lm_head.weight": rng.uniform(-1, 1, size=(8, K)).astype(np.float16),
    }


QCONFIG = {"quant_method": "awq", "bits": 4, "group_size": G, "zero_point": True, "version": "gemm",
           "modules_to_not_convert": ["gate_proj"]}
ACONFIG = {"peft_type": "OFT", "r": 0, "oft_block_size": 16, "module_dropout": 0.0, "coft": False, "eps": 6e-5,
           "block_share": False, "use_cayley_neumann": True, "num_cayley_neumann_terms": 5, "init_weights": False,
           "fan_in_fan_out": False, "target_modules": ["up_proj"], "peft_version": "0.18.0"}
AKEY = "base_model.model." + MODULE + ".oft_R.weight"


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def model_dir(name, tensors=None, qconfig=None, config=None, raw=None):
    d = os.path.join(OUT, name, "model")
    cfg = config if config is not None else {"architectures": ["LlamaForCausalLM"], "quantization_config":
                                            qconfig if qconfig is not None else QCONFIG}
    write(os.path.join(d, "config.json"), json.dumps(cfg, indent=1))
    write(os.path.join(d, "model.safetensors"), raw if raw is not None else safetensors_bytes(
        tensors if tensors is not None else GOOD_MODEL, {"format": "pt"}))


def adapter_dir(name, config=None, tensors=None, raw_config=None):
    d = os.path.join(OUT, name, "adapter")
    write(os.path.join(d, "adapter_config.json"), raw_config if raw_config is not None else json.dumps(
        config if config is not None else ACONFIG, indent=1))
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors if tensors is not None else GOOD_ADAPTER)


def x_file(name, tensors):
    write(os.path.join(OUT, name, "x.safetensors"), safetensors_bytes(tensors, {"format": "pt"}))


def header_file(header, data=b"", size=None):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    return struct.pack("<Q", len(text) if size is None else size) + text + data


GOOD_MODEL = model_tensors()
GOOD_ADAPTER = {AKEY: (rng.standard_normal((K // 16, 120)) * 0.01).astype(np.float32)}
GOOD_X = {"x": rng.uniform(-1, 1, size=(2, 3, K)).astype(np.float32)}

GOOD_ARGS = "forward --model @good/model --module " + MODULE + " --input @good/x.safetensors --output @OUT"
ADAPTER = " --adapter @good/adapter"


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    model_dir("good")
    adapter_dir("good")
    x_file("good", GOOD_X)
    cases = []

    def case(name, args, expect):
        cases.append((name, args, expect))

    def bad_model_file(name, raw, expect):
        model_dir(name, raw=raw)
        case(name, GOOD_ARGS.replace("@good/model", "@%s/model" % name), expect)

    good_raw = safetensors_bytes(GOOD_MODEL, {"format": "pt"})
    bad_model_file("truncated_file", good_raw[: len(good_raw) // 2], "run past the data section")
    bad_model_file("tiny_file", b"\x10\x00\x00", "shorter than the 8-byte header size")
    bad_model_file("header_beyond_file", header_file({"a": 1}, size=1 << 40), "exceeds the")
    bad_model_file("broken_json", header_file(b'{"x": {"dtype": "F32", '), "not a JSON object")
    bad_model_file("offsets_out_of_range", header_file(
        {MODULE + ".qweight": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),
        "run past the data section")
    bad_model_file("offsets_reversed", header_file(
        {MODULE + ".qweight": {"dtype": "I32", "shape": [0], "data_offsets": [8, 4]}}, b"\0" * 8), "reversed")
    bad_model_file("offsets_overlap", header_file(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12), "overlap")
    bad_model_file("dtype_shape_mismatch", header_file(
        {MODULE + ".qweight": {"dtype": "I32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "need 12 bytes")
    bad_model_file("shape_overflow", header_file(
        {"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 8]}}, b"\0" * 8),
        "overflows")
    bad_model_file("unknown_dtype", header_file(
        {"a": {"dtype": "F8_E9M0", "shape": [1], "data_offsets": [0, 1]}}, b"\0" * 8), "unknown dtype")
    bad_model_file("metadata_not_string", header_file({"__metadata__": {"format": 1}}, b""), "__metadata__")
    bad_model_file("negative_dim", header_file(
        {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 8), "non-negative")
    # what a lenient JSON parser lets through and the format does not (issue 14, item 9)
    good_header = json.dumps({MODULE + ".qweight": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    bad_model_file("header_trailing_garbage", header_file(good_header + b"  garbage", b"\0" * 8),
                   "bytes after its JSON object that are not padding")
    bad_model_file("header_nul_padding", header_file(good_header + b"\0" * 7, b"\0" * 8), "control byte 0x00")
    bad_model_file("header_not_object", header_file(b" " + good_header, b"\0" * 8), "does not start with '{'")
    bad_model_file("header_invalid_utf8", header_file(good_header.replace(b"qweight", b"qw\xffeight"), b"\0" * 8),
                   "not valid UTF-8")
    bad_model_file("tensor_name_nul", header_file(
        b'{"x\\u0000evil": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}}', b"\0" * 8),
        "NUL character (\\u0000)")
    bad_model_file("tensor_field_twice", header_file(
        b'{"a": {"dtype": "I32", "dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', b"\0" * 8),
        "'dtype' given twice")
    bad_model_file("metadata_key_twice", header_file(b'{"__metadata__": {"format": "pt", "format": "np"}}'),
                   "__metadata__ names 'format' twice")
    # untrusted text echoed in a message stays on its line, escape codes inert (item 8)
    bad_model_file("tensor_name_injection", header_file(
        {"a\noftawq: all good\u001b[2J": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        "tensor 'a\\noftawq: all good\\x1b[2J': F32 x 3 elements need 12 bytes")

    def model_variant(name, drop=(), change=None, expect="", qconfig=None, config=None):
        t = dict(GOOD_MODEL)
        for d in drop:
            del t[MODULE + "." + d]
        if change:
            t.update(change)
        model_dir(name, tensors=t, qconfig=qconfig, config=config)
        case(name, GOOD_ARGS.replace("@good/model", "@%s/model" % name) + ADAPTER, expect)

    model_variant("missing_qzeros", drop=("qzeros",), expect="no qzeros")
    model_variant("missing_scales", drop=("scales",), expect="no scales")
    model_variant("wrong_scales_shape", change={MODULE + ".scales": np.zeros((K // G, N // 2), np.float16)},
                  expect="scales is F16 [2, 16], expected F16 [2, 32]")
    model_variant("qweight_f16", change={MODULE + ".qweight": np.zeros((K, N // 8), np.float16)},
                  expect="expected I32 [K, N/8]")
    model_variant("bits_8", qconfig=dict(QCONFIG, bits=8), expect="8-bit")
    model_variant("version_gemv", qconfig=dict(QCONFIG, version="gemv"), expect="'gemv' is not the GEMM layout")
    model_variant("gptq_model", qconfig={"quant_method": "gptq", "bits": 4, "group_size": 128},
                  expect="quantised with 'gptq', not AWQ")
    model_variant("not_quantized", config={"architectures": ["LlamaForCausalLM"]}, expect="not quantised")
    model_variant("group_size_mismatch", qconfig=dict(QCONFIG, group_size=48), expect="group size 48")

    def sharded_model(name, files, index=None, expect=""):
        """A model folder with the given weight files (name -> tensors) and index text (None: no index)."""
        d = os.path.join(OUT, name, "model")
        write(os.path.join(d, "config.json"), json.dumps({"architectures": ["LlamaForCausalLM"],
                                                          "quantization_config": QCONFIG}, indent=1))
        for fname, tensors in files.items():
            write(os.path.join(d, fname), safetensors_bytes(tensors, {"format": "pt"}))
        if index is not None:
            write(os.path.join(d, "model.safetensors.index.json"), index)
        case(name, GOOD_ARGS.replace("@good/model", "@%s/model" % name) + ADAPTER, expect)

    shard = "model-00001-of-00001.safetensors"
    good_map = json.dumps({"metadata": {}, "weight_map": {k: shard for k in GOOD_MODEL}})
    sharded_model("index_nul_name", {"model.safetensors": GOOD_MODEL},
                  '{"weight_map": {"%s.qweight": "model.safetensors\\u0000junk"}}' % MODULE, "NUL")
    sharded_model("index_wrong_shard", {shard: GOOD_MODEL, "other.safetensors": {"x": np.zeros(1, np.float32)}},
                  json.dumps({"weight_map": dict({k: shard for k in GOOD_MODEL},
                                                 **{MODULE + ".qzeros": "other.safetensors"})}),
                  "which does not hold it")
    sharded_model("index_path_escape", {shard: GOOD_MODEL},
                  json.dumps({"weight_map": {MODULE + ".qweight": "../good/model/model.safetensors"}}),
                  "not a file of the folder")
    sharded_model("index_and_single", {shard: GOOD_MODEL, "model.safetensors": GOOD_MODEL}, good_map, "ambiguous")
    sharded_model("ambiguous_files", {"a.safetensors": GOOD_MODEL, "b.safetensors": GOOD_MODEL}, None,
                  "2 .safetensors files")

    case("missing_module", GOOD_ARGS.replace(MODULE, "model.layers.9.mlp.up_proj"), "no module 'model.layers.9")
    case("unconverted_module", GOOD_ARGS.replace(MODULE, "model.layers.0.mlp.gate_proj"), "not quantised")

    def adapter_variant(name, config=None, tensors=None, expect="", raw_config=None):
        adapter_dir(name, config=config, tensors=tensors, raw_config=raw_config)
        case(name, GOOD_ARGS + " --adapter @%s/adapter" % name, expect)

    adapter_variant("adapter_r_and_block", config=dict(ACONFIG, r=4), expect="not both simultaneously")
    old = dict(ACONFIG)
    del old["oft_block_size"]
    adapter_variant("adapter_pre_014", config=old, expect="before 0.14.0")
    adapter_variant("adapter_oft_r_oft_s", tensors={"base_model.model." + MODULE + ".oft_r": np.zeros((4, 16, 16), np.float32),
                                                    "base_model.model." + MODULE + ".oft_s": np.ones((N, 1), np.float32)},
                    expect="PEFT 0.14-0.15")
    adapter_variant("adapter_lora", config=dict(ACONFIG, peft_type="LORA"), expect="peft_type is 'LORA'")
    adapter_variant("adapter_wrong_size", tensors={AKEY: np.zeros((4, 119), np.float32)},
                    expect="is [4, 119], expected [4, 120]")
    adapter_variant("adapter_nan_eps", raw_config=json.dumps(dict(ACONFIG, eps=float("nan"))), expect="JSON")
    adapter_variant("adapter_huge_terms", config=dict(ACONFIG, num_cayley_neumann_terms=1000000000),
                    expect="num_cayley_neumann_terms 1000000000 exceeds the supported 256")
    adapter_variant("adapter_nan_weight", tensors={AKEY: np.full((4, 120), np.nan, np.float32)}, expect="NaN")
    adapter_variant("adapter_missing_module", tensors={"base_model.model.other.oft_R.weight": np.zeros((4, 120), np.float32)},
                    expect="no weights for module")
    adapter_variant("adapter_version_injection", config=dict(ACONFIG, peft_version="0.18\n\u001b[2Joftawq: all good"),
                    expect="peft_version '0.18\\n\\x1b[2Joftawq: all good' is not a PEP 440 version")

    def input_variant(name, tensors, expect):
        x_file(name, tensors)
        case(name, GOOD_ARGS.replace("@good/x.safetensors", "@%s/x.safetensors" % name) + ADAPTER, expect)

    input_variant("input_without_x", {"z": GOOD_X["x"]}, "has no tensor 'x'")
    input_variant("input_wrong_last_dim", {"x": np.zeros((2, K + 1), np.float32)}, "has last dimension 65")
    input_variant("input_integer", {"x": np.zeros((2, K), np.int32)}, "is I32; forward takes F32, F16 or BF16")
    case("input_is_folder", GOOD_ARGS.replace("@good/x.safetensors", "@good/model") + ADAPTER, "not a regular file")
    case("input_missing", GOOD_ARGS.replace("@good/x.safetensors", "@good/nothing.safetensors"), "No such file")
    case("output_folder_missing", GOOD_ARGS.replace("@OUT", "@good/no/such/folder/y.safetensors") + ADAPTER,
         "cannot write")
    case("unknown_active", GOOD_ARGS + ADAPTER + " --active default,nope", "--active names 'nope'")
    case("duplicate_adapter_names", GOOD_ARGS + " --adapter @good/adapter:a --adapter @good/adapter:a",
         "already has an adapter 'a'")
    # valid, but its block size is adjusted (10 -> 8 for K = 64): the CLI's output contract warns once (check_cli.sh)
    adapter_dir("adapter_adjusted", config=dict(ACONFIG, oft_block_size=10),
                tensors={AKEY: (np.random.default_rng(31).standard_normal((K // 8, 28)) * 0.01).astype(np.float32)})
    # valid; the Cayley-Neumann warning must be true (check_cli.sh): |Q|_F ~ 1.6 but |Q|_2 ~ 0.6 gives none,
    # |Q|_2 ~ 1.6 gives one
    spectral = np.random.default_rng(32)
    adapter_dir("adapter_frobenius_large", config=dict(ACONFIG, oft_block_size=32),
                tensors={AKEY: (spectral.standard_normal((K // 32, 496)) * 0.05).astype(np.float32)})
    adapter_dir("adapter_divergent", config=dict(ACONFIG, oft_block_size=32),
                tensors={AKEY: (spectral.standard_normal((K // 32, 496)) * 0.15).astype(np.float32)})
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        f.write("# written by tests/gen/gen_corpus.py; good: " + GOOD_ARGS + ADAPTER + "\n")
        for c in cases:
            f.write("\t".join(c) + "\n")
    print(f"{len(cases)} malformed cases")


if __name__ == "__main__":
    main()
