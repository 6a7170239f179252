#!/usr/bin/env python3
"""llama-quantize's per-tensor overrides (Tests/HoneKitTests/Fixtures/quantize/llama-quantize-overrides.json).

The synthetic LCG models of make_quantize_fixtures.py (the Swift test rebuilds them bit for bit), quantized by
llama-quantize (no importance matrix) with the options a user adds to a type: --output-tensor-type,
--token-embedding-type, --leave-output-tensor, --tensor-type PATTERN=TYPE (a regular expression searched in each
tensor name) and --pure. Each case records the arguments and every output tensor's name, shape, type and checksum,
and the file size. The cases cover:
  - the explicit output and embedding types (untied: each its own; tied: --output-tensor-type reaches token_embd
    unless --token-embedding-type names it);
  - --leave-output-tensor (output.weight stays F32);
  - --tensor-type on some attn_v tensors only, so that llama.cpp's attn_v counter, which advances only for tensors
    its mixture rules decide, shifts the Q4_K_M layers that get Q6_K;
  - a pattern's type falling back (Q5_K on rows of 320 -> Q5_1), alternation and an upper-case pattern;
  - --tensor-type ignored by an f16 run while --output-tensor-type still applies;
  - rows that 32 does not divide (the model "odd"): Q8_0 and Q4_0 fall back to F16;
  - --override-kv (str, int, float, bool; an existing key, a new one, general.file_type, a key given twice) and
    --prune-layers: those cases also record the whole file's sha256 and the order of its metadata keys.

Run: LLAMA_QUANTIZE=<build>/bin/llama-quantize tools/oracle/.venv/bin/python tools/oracle/make_quantize_override_fixtures.py
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402
from make_quantize_fixtures import LLAMA_QUANTIZE, MODELS, OUT, SEED, describe, llama_cpp_build, write_input  # noqa: E402

SPECS = {
    "deep8": MODELS["deep8"],
    "tied2": MODELS["tied2"],
    "gqa4": dict(layers=8, hidden=256, heads=4, kv_heads=1, ffn=512, vocab=256, tied=False),
    # ffn_down rows of 80 values: no 32-value block divides them.
    "odd": dict(layers=2, hidden=64, heads=2, kv_heads=1, ffn=80, vocab=256, tied=True),
}

# (model, type, options)
CASES = [
    ("gqa4", "Q4_K_M", ["--output-tensor-type", "q8_0", "--token-embedding-type", "q8_0"]),
    ("gqa4", "Q4_K_M", ["--leave-output-tensor"]),
    ("gqa4", "Q3_K_M", ["--pure", "--tensor-type", "ffn_(up|gate)=q8_0", "--tensor-type", "ATTN_K=IQ4_NL"]),
    ("tied2", "Q4_0", ["--output-tensor-type", "f16"]),
    ("tied2", "Q4_K_M", ["--output-tensor-type", "q8_0", "--token-embedding-type", "q4_0"]),
    ("deep8", "Q4_K_M", ["--tensor-type", r"blk\.0\.attn_v=q8_0"]),
    ("deep8", "Q4_K_M", ["--tensor-type", r"blk\.[0-3]\.ffn_down=q5_k", "--tensor-type", "attn_output=bf16"]),
    ("deep8", "F16", ["--output-tensor-type", "q6_k", "--tensor-type", "attn_q=q8_0"]),
    ("odd", "Q8_0", []),
    ("odd", "Q4_0", []),
    ("odd", "Q4_K_M", ["--tensor-type", "ffn_down=q6_k"]),
    # --override-kv: each key removed where it stands and appended (general.file_type too), an int stored as the u32
    # of its absolute value, a key given twice placed by its last setting.
    ("tied2", "Q4_K_M", ["--override-kv", "tokenizer.ggml.pre=str:llama-bpe", "--override-kv", "general.name=str:renamed",
                         "--override-kv", "llama.context_length=int:-4096", "--override-kv",
                         "llama.rope.freq_base=float:500000.5", "--override-kv", "hone.flag=bool:true",
                         "--override-kv", "general.file_type=int:7"]),
    ("deep8", "Q8_0", ["--override-kv", "general.name=str:a", "--override-kv", "llama.block_count=int:8",
                       "--override-kv", "general.name=str:b"]),
    # --prune-layers (unsorted, a repeat): blocks 1, 3 and 5 of 8 left out, the rest renumbered 0-4, block_count 5
    # written last; Q4_K_M's ffn_down rule still counts the model's 8 layers.
    ("deep8", "Q4_K_M", ["--prune-layers", "5,1,3,5", "--override-kv", "general.name=str:pruned"]),
]


def main() -> None:
    result = {"llama_quantize": llama_cpp_build(), "seed": SEED,
              "lcg": "as llama-quantize.json", "checksum": "sum over bytes of (i + 1) * byte mod 2^64",
              "models": SPECS, "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in SPECS.items():
            write_input(spec, Path(tmp) / f"{name}-f32.gguf")
        for index, (name, qtype, options) in enumerate(CASES):
            src = Path(tmp) / f"{name}-f32.gguf"
            dst = Path(tmp) / f"case{index}.gguf"
            run = subprocess.run([LLAMA_QUANTIZE, *options, str(src), str(dst), qtype, "2"], capture_output=True, text=True)
            if run.returncode != 0:
                print(run.stdout[-2000:], run.stderr[-2000:])
                raise SystemExit(f"llama-quantize failed for {name} {qtype} {options}")
            d = describe(dst)
            counts = {}
            for t in d["tensors"]:
                counts[t["type"]] = counts.get(t["type"], 0) + 1
            print(f"  {name} {qtype} {' '.join(options)}: {counts}")
            case = {"model": name, "type": qtype.lower(), "options": options, "file_bytes": d["file_bytes"],
                    "tensors": d["tensors"]}
            if "--override-kv" in options or "--prune-layers" in options:
                # the whole file, metadata included, and the keys in order
                case["sha256"] = hashlib.sha256(dst.read_bytes()).hexdigest()
                case["metadata_order"] = d["metadata_order"]
            result["cases"].append(case)
    oc.write_json(OUT / "llama-quantize-overrides.json", result)


if __name__ == "__main__":
    main()
