#!/usr/bin/env python3
"""llama.cpp's view of the shipped SmolLM2-135M-Instruct Q4_1 GGUF (Tests/HoneKitTests/Fixtures/smollm2/llama-cpp.json).

    /work/main/tools/oracle/.venv/bin/python tools/oracle/make_smollm2_fixtures.py /path/to/llama.cpp/build \
        models/SmolLM2-135M-Instruct.Q4_1.gguf

Records, for the file whose sha256 it stores:
  * token ids from llama-tokenize for a few strings (digits, runs of spaces, newlines, contractions: the "smollm"
    pre-tokenizer's cases);
  * llama-perplexity's final estimate on a fixed English text (the opening of this repository's README, stored in
    the JSON) with --ctx 64, the number Hone's Perplexity must reproduce within llama.cpp's own rounding noise.
Nothing is downloaded or built here; the llama.cpp build directory is an argument.
"""
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "HoneKitTests" / "Fixtures" / "smollm2" / "llama-cpp.json"
STRINGS = ["Hello world", "In 2024, I paid $1,234.56 for 3 items", "a  12 b   c\n\n  x9y  ",
           "It's ok... isn't it?  Yes!", "<|im_start|>user\nHi<|im_end|>"]
CONTEXT = 64
CHUNKS = 6


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build, model = Path(sys.argv[1]) / "bin", Path(sys.argv[2])
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    tokenized = []
    for text in STRINGS:
        run = subprocess.run([str(build / "llama-tokenize"), "-m", str(model), "-p", text, "--ids", "--log-disable"],
                             capture_output=True, text=True, check=True)
        ids = json.loads(run.stdout.strip().splitlines()[-1])
        tokenized.append({"text": text, "ids": ids})
    text = (REPO / "README.md").read_text()[:4000]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
        file.write(text)
        file.flush()
        run = subprocess.run([str(build / "llama-perplexity"), "-m", str(model), "-f", file.name, "-c", str(CONTEXT),
                              "--chunks", str(CHUNKS), "-t", "2"], capture_output=True, text=True, check=True)
    match = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", run.stdout + run.stderr)
    fixture = {"model": "models/SmolLM2-135M-Instruct.Q4_1.gguf", "sha256": digest,
               "tokenize": tokenized,
               "perplexity": {"context": CONTEXT, "chunks": CHUNKS, "ppl": float(match.group(1)),
                              "uncertainty": float(match.group(2)), "text": text}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}: PPL {match.group(1)}")


if __name__ == "__main__":
    main()
