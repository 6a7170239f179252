#!/usr/bin/env python3
"""Byte-exact oracles for Hone's 32-value "legacy" quantizers (Tests/HoneKernelsTests/Fixtures/quant32/).

Q4_1, Q5_0, Q5_1 and IQ4_NL, from the same two seeded f32 matrices (with edge-case rows) as
make_quant_fixtures.py (its make_matrix and write_model are reused), plus extra rows for these types:
  * the inputs:                          <tensor>.f32.bin
  * llama.cpp's llama-quantize output:   <tensor>.<type>.llama.bin   (llama-quantize --pure, no imatrix: ggml's
                                         quantize_row_q4_1/q5_0/q5_1_ref and quantize_iq4_nl without weights)
  * gguf-py's numpy quantizer output:    <tensor>.<type>.gguf-py.bin (Q4_1, Q5_0, Q5_1: gguf-py implements the same
                                         reference formulas; it has no IQ4_NL quantizer)
  * gguf-py's dequantization of the llama-quantize bytes: <tensor>.<type>.dequant.bin (all four types)
  * index.json: shapes, file names, sha256 of every file, tool versions, and whether gguf-py's quantizer agrees
    with llama.cpp byte for byte.

Usage (the llama.cpp build directory is an argument; nothing is downloaded or built here):
    /work/main/tools/oracle/.venv/bin/python tools/oracle/make_quant32_fixtures.py /path/to/llama.cpp/build
Needs numpy and gguf (0.19). Rerunning rewrites byte-identical files.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_quant_fixtures import make_matrix, write_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "HoneKernelsTests" / "Fixtures" / "quant32"

# name in the GGUF, rows, columns (values per row), seed: smaller than make_quant_fixtures.py's (these types only
# need whole blocks of 32), and a width that is not a multiple of 256.
TENSORS = [
    ("blk.0.ffn_down.weight", 48, 96, 11),
    ("blk.0.ffn_up.weight", 24, 160, 12),
]

# llama-quantize file types that, with --pure, give every weight the one block type.
TYPES = {
    "q4_1": ("Q4_1", GGMLQuantizationType.Q4_1),
    "q5_0": ("Q5_0", GGMLQuantizationType.Q5_0),
    "q5_1": ("Q5_1", GGMLQuantizationType.Q5_1),
    "iq4_nl": ("IQ4_NL", GGMLQuantizationType.IQ4_NL),
}
GGUF_PY_TYPES = ("q4_1", "q5_0", "q5_1")


def make_legacy_matrix(rows: int, cols: int, seed: int) -> np.ndarray:
    """make_quant_fixtures.make_matrix's rows, then rows that probe these types' own edges."""
    x = make_matrix(rows, cols, seed)
    rng = np.random.default_rng(seed + 100)
    # 8: Q4_1/Q5_1 ties: min 0 and max 15 (31) give d = 1, so (x - min) / d + 0.5 lands on integers
    steps = (np.arange(cols) % 32).astype(np.float32)
    x[8] = np.where(np.arange(cols) % 64 < 32, (steps % 16) + 0.5, (steps % 31) + 0.5).astype(np.float32)
    x[8, 0::32] = 0.0
    x[8, 1::64] = 15.0
    x[8, 33::64] = 31.0
    # 9: IQ4_NL codebook midpoints: values whose scaled position is exactly between two entries
    book = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.float32)
    mids = (book[:-1] + book[1:]) / 2
    x[9] = mids[np.arange(cols) % 15] / 127.0
    x[9, 0::32] = -1.0
    # 10: a block whose values are all equal except one; 11: positive only (Q4_1's min > 0)
    x[10] = 2.5
    x[10, 3::32] = -0.5
    x[11] = np.abs(rng.standard_normal(cols)).astype(np.float32) + 3.0
    # 12: blocks below IQ4_NL's 1e-15 threshold next to normal ones
    x[12] = rng.standard_normal(cols).astype(np.float32)
    x[12, 0:32] = 1e-16
    return np.ascontiguousarray(x, dtype=np.float32)


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
    matrices = {name: make_legacy_matrix(rows, cols, seed) for name, rows, cols, seed in TENSORS}
    files: dict[str, dict] = {}

    def save(file_name: str, data: bytes) -> None:
        (OUT / file_name).write_bytes(data)
        files[file_name] = {"bytes": len(data), "sha256": sha256(data)}

    from importlib.metadata import version
    index = {"tensors": [], "llama_cpp": None, "gguf_py": version("gguf"), "numpy": np.__version__}
    for name, rows, cols, seed in TENSORS:
        short = name.split(".")[2]
        save(f"{short}.f32.bin", matrices[name].tobytes())
        entry = {"name": short, "gguf_name": name, "rows": rows, "cols": cols, "seed": seed,
                 "input": f"{short}.f32.bin", "gguf_py": {}, "llama": {}, "dequant": {}}
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
                data = np.ascontiguousarray(tensor.data)
                file_name = f"{entry['name']}.{type_name}.llama.bin"
                save(file_name, data.tobytes())
                entry["llama"][type_name] = file_name
                values = gguf.quants.dequantize(data, ggml_type).astype(np.float32)
                file_name = f"{entry['name']}.{type_name}.dequant.bin"
                save(file_name, np.ascontiguousarray(values).tobytes())
                entry["dequant"][type_name] = file_name
        commit = subprocess.run(["git", "-C", str(args.llama_build.parent), "rev-parse", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        build = subprocess.run([str(quantize), "--help"], capture_output=True, text=True)
        build_line = next((line.strip() for line in (build.stdout + build.stderr).splitlines()
                           if line.startswith("build")), None)
        index["llama_cpp"] = {"commit": commit or None, "build": build_line,
                              "quantize": "llama-quantize --pure <f32.gguf> <out.gguf> <ftype> 1"}

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
