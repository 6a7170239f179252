#!/usr/bin/env python3
"""A GGUF vocabulary with llama.cpp's `gpt-4o` pre-tokenizer (Phi-4-mini, Llama 4), checked against llama.cpp.

Writes Tests/HoneKitTests/Fixtures/tokenizers/gpt4o-gguf/vocab.gguf: the gpt2-bpe fixture's vocabulary written as
the converter writes a byte-level vocabulary (make_tokenizer_fixtures.write_vocab_gguf), with
`tokenizer.ggml.pre = gpt-4o`. Its reference ids are those of the pre-tokenizer fixture's "split-gpt4o"
configuration (make_pretokenizer_fixtures.py: the same vocabulary under `tokenizers` with GPT-4o's Split), which
the Swift test reads.

With --llama-cpp-bin, llama-tokenize (a llama.cpp the user built; this script neither builds nor ships it) runs on
every case of that configuration and must give the same ids: the check that llama.cpp's `gpt-4o` is the
tokenizer.json pattern the fixture uses.

Run:  tools/oracle/.venv/bin/python tools/oracle/make_gpt4o_vocab_fixture.py [--llama-cpp-bin DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_llama_cpp_tokenize_fixture import tokenize  # noqa: E402
from make_tokenizer_fixtures import OUT as TOKENIZERS, write_vocab_gguf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama-cpp-bin", type=Path)
    options = parser.parse_args()
    out = TOKENIZERS / "gpt4o-gguf"
    out.mkdir(parents=True, exist_ok=True)
    write_vocab_gguf(TOKENIZERS / "gpt2-bpe", out / "vocab.gguf", arch="gpt2", name="gpt4o-gguf",
                     tokenizer_model="gpt2", pre="gpt-4o")
    configs = json.loads((TOKENIZERS / "pretokenizers/configs.json").read_text(encoding="utf-8"))
    cases = next(c for c in configs["configs"] if c["name"] == "split-gpt4o")["cases"]
    print(f"{out / 'vocab.gguf'}: written; {len(cases)} reference cases in split-gpt4o")
    if options.llama_cpp_bin:
        mismatches = checked = 0
        for case in cases:
            if "\x00" in case["text"]:
                continue  # llama.cpp's C strings end at NUL
            checked += 1
            ids = tokenize(options.llama_cpp_bin, out / "vocab.gguf", case["text"], False)
            if ids != case["ids"]:
                mismatches += 1
                print(f"  llama.cpp differs on {case['text']!r}: {ids} vs {case['ids']}")
        print(f"llama-tokenize: {checked - mismatches} of {checked} cases equal (texts with NUL left out)")


if __name__ == "__main__":
    main()
