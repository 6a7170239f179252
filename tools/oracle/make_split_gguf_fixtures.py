#!/usr/bin/env python3
"""A GGUF split by llama.cpp's own gguf-split (Tests/HoneKitTests/Fixtures/gguf/split/).

llama-gqa-q4_0.gguf (a fixture of make_quantized_model_fixtures.py) split with `llama-gguf-split --split
--split-max-tensors 10` into three parts, llama-gqa-q4_0-0000{1,2,3}-of-00003.gguf: the first holds the metadata
and 10 tensors, the second 10, the third 1; every part carries split.no, split.count and split.tensors.count.
The Swift tests open the first part and compare every tensor, the model's log-probs and `hone quantize`'s output
with the unsplit file's.

Run: LLAMA_GGUF_SPLIT=<build>/bin/llama-gguf-split tools/oracle/.venv/bin/python tools/oracle/make_split_gguf_fixtures.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402
import gguf  # noqa: E402

GGUF_SPLIT = os.environ.get("LLAMA_GGUF_SPLIT", "/work/llama.cpp/build/bin/llama-gguf-split")


def main() -> None:
    source = oc.FIXTURES / "gguf" / "llama-gqa-q4_0.gguf"
    out = oc.FIXTURES / "gguf" / "split"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.gguf"):
        old.unlink()
    run = subprocess.run([GGUF_SPLIT, "--split", "--split-max-tensors", "10", str(source), str(out / "llama-gqa-q4_0")],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(run.stdout[-2000:] + run.stderr[-2000:])
    for part in sorted(out.glob("*.gguf")):
        reader = gguf.GGUFReader(part)
        split = {k: reader.fields[k].contents() for k in ("split.no", "split.count", "split.tensors.count")}
        print(f"  {part.name}: {len(reader.tensors)} tensors, {split}")


if __name__ == "__main__":
    main()
