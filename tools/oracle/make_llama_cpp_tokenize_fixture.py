#!/usr/bin/env python3
"""SmolLM2's token ids from llama.cpp's own tokenizer, for Hone's GGUF pre-tokenizer test (pre type `smollm`).

Runs `llama-tokenize` (from a llama.cpp the user built; this script neither builds nor ships it) on every hard
string of make_tokenizer_fixtures.py and writes Tests/HoneKitTests/Fixtures/tokenizers/smollm2-llama-cpp/cases.json:

    {"model": "SmolLM2-135M-Instruct.Q4_1.gguf", "pre": "smollm", "llama_cpp": "<version line>",
     "cases": [{"text": ..., "ids": [...], "ids_parse_special": [...]}, ...]}

`ids`: no BOS, special tokens as text (--no-bos --no-parse-special); `ids_parse_special`: no BOS, special tokens
parsed. Text goes in on stdin, unescaped (--stdin --no-escape), so it reaches the tokenizer byte for byte.

Run:  tools/oracle/.venv/bin/python tools/oracle/make_llama_cpp_tokenize_fixture.py \\
          --bin /path/to/llama.cpp/build/bin --model models/SmolLM2-135M-Instruct.Q4_1.gguf
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tokenizer_fixtures import HARD_STRINGS  # noqa: E402


def tokenize(binary: Path, model: Path, text: str, parse_special: bool) -> list[int]:
    args = [str(binary / "llama-tokenize"), "-m", str(model), "--stdin", "--no-escape", "--ids", "--no-bos",
            "--log-disable"]
    if not parse_special:
        args.append("--no-parse-special")
    env = dict(os.environ, LD_LIBRARY_PATH=str(binary))
    result = subprocess.run(args, input=text.encode("utf-8"), capture_output=True, env=env, check=True)
    lines = [line for line in result.stdout.decode("utf-8").splitlines() if line.startswith("[")]
    if len(lines) != 1:
        raise RuntimeError(f"unexpected llama-tokenize output for {text!r}: {result.stdout!r}")
    return json.loads(lines[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=Path, required=True, help="llama.cpp build/bin (with llama-tokenize)")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "Tests/HoneKitTests/Fixtures/tokenizers/smollm2-llama-cpp/cases.json")
    options = parser.parse_args()

    env = dict(os.environ, LD_LIBRARY_PATH=str(options.bin))
    version = subprocess.run([str(options.bin / "llama-tokenize"), "--version"], capture_output=True, env=env)
    version_line = (version.stdout + version.stderr).decode("utf-8", "replace").strip().splitlines()
    cases = []
    for text in HARD_STRINGS:
        if "\x00" in text:
            continue  # llama.cpp's C strings end at NUL
        cases.append({"text": text, "ids": tokenize(options.bin, options.model, text, False),
                      "ids_parse_special": tokenize(options.bin, options.model, text, True)})
    options.out.parent.mkdir(parents=True, exist_ok=True)
    document = {"model": options.model.name, "pre": "smollm", "llama_cpp": version_line[0] if version_line else "",
                "cases": cases}
    options.out.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{options.out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
