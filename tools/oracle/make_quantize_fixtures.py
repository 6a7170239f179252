#!/usr/bin/env python3
"""Fixtures for `hone quantize` / `hone convert`, from llama.cpp itself and from gguf-py's reader.

1. llama-quantize's choices (Tests/HoneKitTests/Fixtures/quantize/llama-quantize.json)
   Two synthetic llama GGUFs (F32, no vocabulary) whose weights come from a 32-bit LCG, so that the Swift test
   can rebuild the same files bit for bit (see `lcg_values`):
     deep8  8 layers, hidden 256, 4 heads / 2 KV heads (head_dim 64), ffn 320, vocab 256, untied
            (Q4_K and Q6_K rows of 256; ffn_down rows of 320 fall back to Q5_0 / Q8_0)
     tied2  2 layers, hidden 96, 2 heads / 1 KV head (head_dim 48), ffn 64, vocab 256, tied embeddings
            (no row is a multiple of 256: Q5_0 / Q8_0 everywhere, token_embd by the output rule)
   Each is quantized by /work/llama.cpp/build/bin/llama-quantize (LLAMA_QUANTIZE overrides) to Q8_0, Q4_0,
   Q4_K_M and Q6_K; the fixture records every output tensor's name, shape, type and a checksum of its bytes
   (sum over bytes of (i + 1) * byte, mod 2^64).

2. Read-back of a GGUF written by Hone (Tests/HoneKitTests/Fixtures/quantize/hone-llama-gqa-q4_k_m.json)
   The committed file hone-llama-gqa-q4_k_m.gguf (made by `hone quantize Tests/HoneKitTests/Fixtures/models/llama-gqa
   ... --type q4_k_m`, see the Swift test that rewrites it) is read with gguf.GGUFReader: metadata (arrays as
   count + first items), and every tensor's name, shape, type and checksum.

Run: /work/oracle-venv/bin/python tools/oracle/make_quantize_fixtures.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402

import gguf  # noqa: E402

OUT = oc.FIXTURES / "quantize"
LLAMA_QUANTIZE = os.environ.get("LLAMA_QUANTIZE", "/work/llama.cpp/build/bin/llama-quantize")

MODELS = {
    "deep8": dict(layers=8, hidden=256, heads=4, kv_heads=2, ffn=320, vocab=256, tied=False),
    "tied2": dict(layers=2, hidden=96, heads=2, kv_heads=1, ffn=64, vocab=256, tied=True),
}
TYPES = ["Q8_0", "Q4_0", "Q4_K_M", "Q6_K"]
SEED = 20250711


def lcg_values(state: int, count: int) -> tuple[np.ndarray, int]:
    """x <- 1664525 x + 1013904223 (mod 2^32); value = ((x >> 8) - 2^23) / 2^28: exact f32 in [-1/32, 1/32)."""
    out = np.empty(count, dtype=np.float32)
    x = state
    for i in range(count):
        x = (1664525 * x + 1013904223) & 0xFFFFFFFF
        out[i] = ((x >> 8) - (1 << 23)) / float(1 << 28)
    return out, x


def layout(spec: dict) -> list[tuple[str, tuple[int, ...]]]:
    """GGUF names and HF-order shapes, in llama.cpp's loader order (non-block tensors first, then by block)."""
    h, f, v = spec["hidden"], spec["ffn"], spec["vocab"]
    head_dim = h // spec["heads"]
    kv = spec["kv_heads"] * head_dim
    top = [("output_norm.weight", (h,)), ("token_embd.weight", (v, h))]
    if not spec["tied"]:
        top.insert(0, ("output.weight", (v, h)))
    blocks = []
    e = spec.get("experts", 0)
    for i in range(spec["layers"]):
        p = f"blk.{i}."
        # a mixture of experts (Mixtral's tensors): the router and one 3-D tensor per role instead of the MLP
        mlp = [(p + "ffn_down.weight", (h, f)), (p + "ffn_gate.weight", (f, h)), (p + "ffn_up.weight", (f, h))] if not e \
            else [(p + "ffn_down_exps.weight", (e, h, f)), (p + "ffn_gate_exps.weight", (e, f, h)),
                  (p + "ffn_gate_inp.weight", (e, h)), (p + "ffn_up_exps.weight", (e, f, h))]
        blocks += sorted([
            (p + "attn_k.weight", (kv, h)), (p + "attn_norm.weight", (h,)), (p + "attn_output.weight", (h, h)),
            (p + "attn_q.weight", (h, h)), (p + "attn_v.weight", (kv, h)), (p + "ffn_norm.weight", (h,)),
        ] + mlp)
    return top + blocks


def write_input(spec: dict, path: Path) -> None:
    w = gguf.GGUFWriter(path=None, arch="llama")
    w.add_block_count(spec["layers"])
    w.add_context_length(256)
    w.add_embedding_length(spec["hidden"])
    w.add_feed_forward_length(spec["ffn"])
    w.add_head_count(spec["heads"])
    w.add_head_count_kv(spec["kv_heads"])
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    if spec.get("experts"):
        w.add_expert_count(spec["experts"])
        w.add_expert_used_count(spec["experts_used"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(spec["vocab"])
    w.add_rope_dimension_count(spec["hidden"] // spec["heads"])
    w.add_tokenizer_model("none")
    state = SEED
    for name, shape in layout(spec):
        values, state = lcg_values(state, int(np.prod(shape)))
        if len(shape) == 1:
            values = (values + np.float32(1.0)).astype(np.float32)  # norms near 1, still exact
        w.add_tensor(name, values.reshape(shape))
    w.write_header_to_file(path=path)
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def checksum(data: np.ndarray) -> str:
    b = np.frombuffer(data.tobytes(), dtype=np.uint8).astype(np.uint64)
    idx = np.arange(1, b.size + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return str(int((b * idx).sum(dtype=np.uint64)))


def describe(path: Path) -> dict:
    r = gguf.GGUFReader(path)
    tensors = [{"name": t.name, "shape": [int(x) for x in reversed(t.shape.tolist())], "type": t.tensor_type.name,
                "bytes": int(t.n_bytes), "checksum": checksum(t.data)} for t in r.tensors]
    meta = {}
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        if isinstance(value, list):
            value = {"count": len(value), "first": value[:8]}
        meta[key] = {"type": gguf.GGUFValueType(field.types[0]).name, "value": value}
    return {"file_bytes": path.stat().st_size, "metadata": meta, "metadata_order": [k for k in r.fields if not k.startswith("GGUF.")],
            "tensors": tensors}


def llama_cpp_build() -> str:
    out = subprocess.run([LLAMA_QUANTIZE, "--help"], capture_output=True, text=True)
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith("build"):
            return line.strip()
    return "unknown"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"llama_quantize": llama_cpp_build(), "seed": SEED,
              "lcg": "x <- 1664525 x + 1013904223 mod 2^32 per value, in loader order; value = ((x >> 8) - 2^23) / 2^28; 1-D tensors + 1",
              "checksum": "sum over bytes of (i + 1) * byte mod 2^64", "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in MODELS.items():
            src = Path(tmp) / f"{name}-f32.gguf"
            write_input(spec, src)
            entry = {"spec": spec, "input": describe(src)["tensors"], "quantized": {}}
            for qtype in TYPES:
                dst = Path(tmp) / f"{name}-{qtype}.gguf"
                run = subprocess.run([LLAMA_QUANTIZE, str(src), str(dst), qtype, "2"], capture_output=True, text=True)
                if run.returncode != 0:
                    print(run.stdout[-2000:], run.stderr[-2000:])
                    raise SystemExit(f"llama-quantize failed for {name} {qtype}")
                d = describe(dst)
                entry["quantized"][qtype.lower()] = {"file_bytes": d["file_bytes"], "tensors": d["tensors"]}
                counts = {}
                for t in d["tensors"]:
                    counts[t["type"]] = counts.get(t["type"], 0) + 1
                print(f"  {name} {qtype}: {counts}")
            result["models"][name] = entry
    oc.write_json(OUT / "llama-quantize.json", result)

    hone_file = OUT / "hone-llama-gqa-q4_k_m.gguf"
    if hone_file.exists():
        d = describe(hone_file)
        d["reader"] = f"gguf-py {getattr(gguf, '__version__', '')} GGUFReader".strip()
        oc.write_json(OUT / "hone-llama-gqa-q4_k_m.json", d)
        print(f"  read back {hone_file.name}: {len(d['tensors'])} tensors, {len(d['metadata'])} keys")
    else:
        print(f"  {hone_file} missing: run the Swift test QuantizeConvertTests first (it writes it when absent)")


if __name__ == "__main__":
    main()
