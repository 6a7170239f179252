#!/usr/bin/env python3
"""Byte-exact oracles for Hone's GGUF quantizers (Tests/HoneKernelsTests/Fixtures/quant/).

For two small seeded f32 matrices (with edge-case rows) this writes
  * the inputs:                         <tensor>.f32.bin
  * gguf-py's numpy quantizer output:   <tensor>.<type>.gguf-py.bin   (Q8_0, Q4_0: the only two of ours it implements)
  * llama.cpp's llama-quantize output:  <tensor>.<type>.llama.bin     (Q8_0, Q4_0, Q4_K, Q6_K)
  * index.json: shapes, seeds, file names, sha256 of every file, tool versions, and whether the two
    oracles agree byte for byte.

llama-quantize only quantizes 2-D weights of a model it can load, so the script writes a minimal
one-layer "llama" GGUF (F32) whose two weights are named like FFN matrices and quantizes it with
--pure (every weight the same type, no k-quant mixture); without an importance matrix llama.cpp
uses ggml's reference quantizers (quantize_row_*_ref), which is what Hone reproduces.

Usage (the llama.cpp build directory is an argument; nothing is downloaded or built here):
    /work/oracle-venv/bin/python tools/oracle/make_quant_fixtures.py /path/to/llama.cpp/build
Needs numpy and gguf (0.19) only. Rerunning rewrites byte-identical files.
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
from gguf import GGMLQuantizationType

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "HoneKernelsTests" / "Fixtures" / "quant"

# name in the GGUF, rows, columns (values per row), seed
TENSORS = [
    ("blk.0.ffn_down.weight", 64, 256, 1),
    ("blk.0.ffn_up.weight", 32, 512, 2),
]

# llama-quantize file types that, with --pure, give every weight the one block type we want.
TYPES = {
    "q8_0": ("Q8_0", GGMLQuantizationType.Q8_0),
    "q4_0": ("Q4_0", GGMLQuantizationType.Q4_0),
    "q4_k": ("Q4_K_S", GGMLQuantizationType.Q4_K),
    "q6_k": ("Q6_K", GGMLQuantizationType.Q6_K),
}
GGUF_PY_TYPES = ("q8_0", "q4_0")


def make_matrix(rows: int, cols: int, seed: int) -> np.ndarray:
    """Seeded normal rows with a different scale each, after eight edge-case rows."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    x *= np.exp(rng.standard_normal((rows, 1))).astype(np.float32)
    # 0: all zeros
    x[0] = 0.0
    # 1: one huge value per 32-block among small ones (its block's scale is set by it alone)
    x[1] = rng.standard_normal(cols).astype(np.float32) * 0.01
    x[1, 5::32] = 3.0e4
    # 2: the value of largest magnitude is negative in every block
    x[2] = np.abs(rng.standard_normal(cols)).astype(np.float32)
    x[2, 7::32] = -4.0
    # 3: halves that tie when rounded: Q8_0 blocks with amax 127 have scale exactly 1, so k + 0.5 is a
    #    tie for its round-half-away; Q4_0 blocks with max -8 have scale 1, and x + 8.5 is then an integer
    steps = (np.arange(cols) % 32).astype(np.float32)
    x[3] = np.where(np.arange(cols) % 64 < 32, steps * 4.0 - 62.5, (steps % 16) - 7.5).astype(np.float32)
    x[3, 0::64] = 127.0
    x[3, 32::64] = -8.0
    # 4: tiny values (f16 scales go subnormal or to zero)
    x[4] = (rng.standard_normal(cols) * 1e-6).astype(np.float32)
    x[4, 64:128] = 1e-30
    # 5: some 16- and 32-value sub-blocks zero, others large (K-quant sub-block scales 0 and 63)
    x[5] = rng.standard_normal(cols).astype(np.float32) * 10.0
    x[5, 16:48] = 0.0
    x[5, 128:160] *= 1e-3
    # 6: all equal and positive; 7: all negative
    x[6] = 0.75
    x[7] = -np.abs(rng.standard_normal(cols)).astype(np.float32) - 0.25
    return np.ascontiguousarray(x, dtype=np.float32)


def write_model(path: Path, matrices: dict[str, np.ndarray]) -> None:
    """A one-layer llama GGUF holding `matrices` as F32 (enough for llama-quantize to load)."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(256)
    writer.add_feed_forward_length(512)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for name, matrix in matrices.items():
        writer.add_tensor(name, matrix)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("llama_build", type=Path, help="llama.cpp build directory (with bin/llama-quantize)")
    args = parser.parse_args()
    quantize = args.llama_build / "bin" / "llama-quantize"
    if not quantize.exists():
        sys.exit(f"{quantize} not found (cmake --build <build> --target llama-quantize)")

    OUT.mkdir(parents=True, exist_ok=True)
    matrices = {name: make_matrix(rows, cols, seed) for name, rows, cols, seed in TENSORS}
    files: dict[str, dict] = {}

    def save(file_name: str, data: bytes) -> None:
        (OUT / file_name).write_bytes(data)
        files[file_name] = {"bytes": len(data), "sha256": sha256(data)}

    from importlib.metadata import version
    index = {"tensors": [], "llama_cpp": None, "gguf_py": version("gguf"), "numpy": np.__version__}
    for name, rows, cols, seed in TENSORS:
        short = name.split(".")[2]  # ffn_down, ffn_up
        save(f"{short}.f32.bin", matrices[name].tobytes())
        entry = {"name": short, "gguf_name": name, "rows": rows, "cols": cols, "seed": seed,
                 "input": f"{short}.f32.bin", "gguf_py": {}, "llama": {}}
        for type_name in GGUF_PY_TYPES:
            blocks = gguf.quants.quantize(matrices[name], TYPES[type_name][1])
            file_name = f"{short}.{type_name}.gguf-py.bin"
            save(file_name, blocks.tobytes())
            entry["gguf_py"][type_name] = file_name
        index["tensors"].append(entry)

    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "f32.gguf"
        write_model(source, matrices)
        for type_name, (ftype, ggml_type) in TYPES.items():
            target = Path(work) / f"{type_name}.gguf"
            result = subprocess.run([str(quantize), "--pure", str(source), str(target), ftype, "1"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"llama-quantize {ftype} failed:\n{result.stdout}\n{result.stderr}")
            reader = gguf.GGUFReader(str(target))
            tensors = {t.name: t for t in reader.tensors}
            for entry in index["tensors"]:
                tensor = tensors[entry["gguf_name"]]
                if tensor.tensor_type != ggml_type:
                    sys.exit(f"{entry['gguf_name']}: llama-quantize wrote {tensor.tensor_type.name}, not {ggml_type.name}")
                data = np.ascontiguousarray(tensor.data).tobytes()
                file_name = f"{entry['name']}.{type_name}.llama.bin"
                save(file_name, data)
                entry["llama"][type_name] = file_name
        commit = subprocess.run(["git", "-C", str(args.llama_build.parent), "rev-parse", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        index["llama_cpp"] = {"commit": commit or None, "quantize": "llama-quantize --pure <f32.gguf> <out.gguf> <ftype> 1"}

    # Do the two oracles agree where both exist?
    agreement = {}
    for entry in index["tensors"]:
        for type_name in GGUF_PY_TYPES:
            same = (OUT / entry["gguf_py"][type_name]).read_bytes() == (OUT / entry["llama"][type_name]).read_bytes()
            agreement[f"{entry['name']}.{type_name}"] = same
    index["gguf_py_equals_llama"] = agreement
    index["files"] = files
    (OUT / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    total = sum(f["bytes"] for f in files.values())
    print(f"wrote {len(files)} files ({total / 1024:.0f} KiB) to {OUT.relative_to(REPO)}")
    for key, same in agreement.items():
        print(f"  gguf-py == llama.cpp for {key}: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
