#!/usr/bin/env python3
"""Oracles for Q2_K, Q3_K, Q5_K, IQ4_XS and the IQ/TQ formats (Tests/HoneKernelsTests/Fixtures/quant_k/).

Inputs are make_quant_fixtures.py's two seeded matrices (Fixtures/quant/<tensor>.f32.bin, with its edge-case
rows). This writes
  * llama-quantize --pure output:      <tensor>.<type>.llama.bin   (Q2_K, Q3_K, Q5_K, IQ4_XS, TQ1_0, TQ2_0)
    without an importance matrix llama.cpp uses ggml's reference quantizers (quantize_row_*_ref; IQ4_XS's
    quantize_iq4_xs with no weights), which is what Hone reproduces byte for byte;
  * gguf-py's dequantization of the first 16 rows of ffn_down in each of those: ffn_down.<type>.dequant.bin (f32);
  * for the codebook formats llama-quantize only makes with an importance matrix (IQ2_XXS, IQ2_XS, IQ2_S,
    IQ3_XXS, IQ3_S, IQ1_S, IQ1_M): 16 blocks of seeded random bytes whose f16 scales are set to finite values
    (<type>.random.bin) and gguf-py's dequantization of them (<type>.random.dequant.bin);
  * index.json: file names, sizes, sha256, tool versions.

Usage: tools/oracle/.venv/bin/python tools/oracle/make_kquant_fixtures.py <llama.cpp build dir>
Rerunning rewrites byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_quant_fixtures import TENSORS, make_matrix, write_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "HoneKernelsTests" / "Fixtures" / "quant_k"

# Hone's name: (llama-quantize file type that with --pure gives every weight this type, ggml type)
LLAMA_TYPES = {
    "q2_k": ("Q2_K", T.Q2_K),
    "q3_k": ("Q3_K_S", T.Q3_K),
    "q5_k": ("Q5_K_S", T.Q5_K),
    "iq4_xs": ("IQ4_XS", T.IQ4_XS),
    "tq1_0": ("TQ1_0", T.TQ1_0),
    "tq2_0": ("TQ2_0", T.TQ2_0),
}
# Hone's name: (ggml type, block bytes, byte offsets of f16 scales to make finite)
RANDOM_TYPES = {
    "iq2_xxs": (T.IQ2_XXS, 66, [0]),
    "iq2_xs": (T.IQ2_XS, 74, [0]),
    "iq2_s": (T.IQ2_S, 82, [0]),
    "iq3_xxs": (T.IQ3_XXS, 98, [0]),
    "iq3_s": (T.IQ3_S, 110, [0]),
    "iq1_s": (T.IQ1_S, 50, [0]),
    "iq1_m": (T.IQ1_M, 56, None),  # the f16 scale is spread over the top nibbles of the last 8 bytes
}
DEQUANT_ROWS = 16
RANDOM_BLOCKS = 16


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_blocks(name: str, ggml_type, block_bytes: int, scale_offsets, seed: int, count: int = RANDOM_BLOCKS,
                  scale_range=(0.002, 0.05)) -> bytes:
    """`count` blocks of seeded random bytes whose f16 scales are random finite values in +-scale_range."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(count, block_bytes), dtype=np.uint8)
    scales = (rng.uniform(*scale_range, size=count) * rng.choice([-1, 1], size=count))
    halves = scales.astype(np.float16).view(np.uint16)
    for b in range(count):
        if scale_offsets is not None:
            for offset in scale_offsets:
                blocks[b, offset] = halves[b] & 0xFF
                blocks[b, offset + 1] = halves[b] >> 8
        else:
            # IQ1_M: scales are the last 8 bytes (four u16); nibble k of the f16 goes to the top of word k.
            words = blocks[b, -8:].copy().view(np.uint16)
            for k in range(4):
                words[k] = (words[k] & 0x0FFF) | (((int(halves[b]) >> (4 * k)) & 0xF) << 12)
            blocks[b, -8:] = words.view(np.uint8)
    return blocks.tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("llama_build", type=Path, help="llama.cpp build directory (with bin/llama-quantize)")
    args = parser.parse_args()
    quantize = args.llama_build / "bin" / "llama-quantize"
    if not quantize.exists():
        sys.exit(f"{quantize} not found")
    OUT.mkdir(parents=True, exist_ok=True)
    matrices = {name: make_matrix(rows, cols, seed) for name, rows, cols, seed in TENSORS}
    files: dict[str, dict] = {}

    def save(file_name: str, data: bytes) -> None:
        (OUT / file_name).write_bytes(data)
        files[file_name] = {"bytes": len(data), "sha256": sha256(data)}

    from importlib.metadata import version
    index: dict = {"inputs": "../quant/<tensor>.f32.bin (make_quant_fixtures.py)", "gguf_py": version("gguf"),
                   "numpy": np.__version__, "tensors": [], "random": {}, "dequant_rows": DEQUANT_ROWS}
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "f32.gguf"
        write_model(source, matrices)
        outputs = {}
        for type_name, (ftype, ggml_type) in LLAMA_TYPES.items():
            target = Path(work) / f"{type_name}.gguf"
            result = subprocess.run([str(quantize), "--pure", str(source), str(target), ftype, "1"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"llama-quantize {ftype} failed:\n{result.stdout}\n{result.stderr}")
            reader = gguf.GGUFReader(str(target))
            outputs[type_name] = {t.name: t for t in reader.tensors}
        for name, rows, cols, seed in TENSORS:
            short = name.split(".")[2]
            entry = {"name": short, "gguf_name": name, "rows": rows, "cols": cols, "llama": {}, "dequant": {}}
            for type_name, (ftype, ggml_type) in LLAMA_TYPES.items():
                tensor = outputs[type_name][name]
                if tensor.tensor_type != ggml_type:
                    sys.exit(f"{name}: llama-quantize wrote {tensor.tensor_type.name}, not {ggml_type.name}")
                data = np.ascontiguousarray(tensor.data).tobytes()
                save(f"{short}.{type_name}.llama.bin", data)
                entry["llama"][type_name] = f"{short}.{type_name}.llama.bin"
                if short == "ffn_down":
                    row_bytes = len(data) // rows
                    head = np.frombuffer(data[: DEQUANT_ROWS * row_bytes], dtype=np.uint8).reshape(DEQUANT_ROWS, row_bytes)
                    values = gguf.quants.dequantize(head, ggml_type).astype(np.float32)
                    save(f"{short}.{type_name}.dequant.bin", values.tobytes())
                    entry["dequant"][type_name] = f"{short}.{type_name}.dequant.bin"
            index["tensors"].append(entry)
        commit = subprocess.run(["git", "-C", str(args.llama_build.parent), "rev-parse", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        index["llama_cpp"] = {"commit": commit or None,
                              "quantize": "llama-quantize --pure <f32.gguf> <out.gguf> <ftype> 1"}

    for seed, (type_name, (ggml_type, block_bytes, offsets)) in enumerate(RANDOM_TYPES.items(), start=100):
        data = random_blocks(type_name, ggml_type, block_bytes, offsets, seed)
        values = gguf.quants.dequantize(np.frombuffer(data, dtype=np.uint8).reshape(1, -1), ggml_type)
        values = values.astype(np.float32)
        if not np.all(np.isfinite(values)):
            sys.exit(f"{type_name}: non-finite values")
        save(f"{type_name}.random.bin", data)
        save(f"{type_name}.random.dequant.bin", values.tobytes())
        index["random"][type_name] = {"blocks": RANDOM_BLOCKS, "seed": seed, "bytes": f"{type_name}.random.bin",
                                      "dequant": f"{type_name}.random.dequant.bin"}
    index["files"] = files
    (OUT / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    total = sum(f["bytes"] for f in files.values())
    print(f"wrote {len(files)} files ({total / 1024:.0f} KiB) to {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
