#!/usr/bin/env python3
"""Added tokens that strip the whitespace beside them (`lstrip` / `rstrip`), against Hugging Face `tokenizers`
and llama.cpp.

Writes Tests/HoneKitTests/Fixtures/tokenizers/strips/
  strip-spm/tokenizer.json, strip-bpe/tokenizer.json   the spm-bpe and gpt2-bpe fixtures' tokenizers with added
                 tokens as Phi-3 has them (`<|user|>`, `<|assistant|>`, `<|end|>` special with rstrip), a special
                 `<mask>` with lstrip and a non-special `[[sep]]` with both
  cases.json     {"tokenizers": {name: [{"text", "ids", "ids_parse_special"}]}}: `tokenizers`' ids without
                 special tokens added, special tokens as text (`ids`) and parsed (`ids_parse_special`)
  phi3-llama-cpp.json (with --llama-cpp-bin)  llama-tokenize's ids (no BOS, special tokens parsed) on the shared
                 Phi-3 vocabulary (ggml-vocab-phi-3.gguf, general.name "Phi3"), where llama.cpp gives every
                 control token the RSTRIP attribute by the model's name

Run:  tools/oracle/.venv/bin/python tools/oracle/make_added_token_strip_fixtures.py \\
          [--llama-cpp-bin /path/to/llama.cpp/build/bin]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tokenizers import AddedToken, Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_llama_cpp_tokenize_fixture import tokenize  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests/HoneKitTests/Fixtures/tokenizers"
OUT = FIXTURES / "strips"
PHI3_VOCAB = ROOT.parent / "shared/data/tokenizer-vectors/ggml-vocab-phi-3.gguf"

TEXTS = [
    "<|user|>\nHello there<|end|>\n<|assistant|>\nHi!<|end|>\n",
    "<|user|>\n  two spaces and a tab\t<|end|>\n\n<|assistant|>",
    "<|user|>   \n  \n<|end|>",
    "word<|end|>   word",
    "  <mask>  masked  <mask>x",
    "a [[sep]] b[[sep]]c  [[sep]]\n\nd",
    "<|user|>\u3000\u00a0ideographic and no-break spaces<|end|>\u2028next",
    "<|end|><|end|> <|end|>\t<|user|><|assistant|>",
    "no tokens here, just text  ",
    "<|end|>",
    "   ",
    "<|user|>\r\nWindows line<|end|>\r\n<|assistant|>\r\n",
]

PHI3_TEXTS = [
    "<|user|>\nHello there<|end|>\n<|assistant|>\nHi!<|end|>\n",
    "<|system|>\nYou are helpful.<|end|>\n<|user|>\n  What is 2+2? <|end|>\n<|assistant|>\n",
    "<|user|>   \n  \n<|end|>",
    "word<|end|>   word",
    "<s> <|user|> x</s> y<unk> z<|endoftext|> w",
    "<|end|><|end|> <|end|>\t<|user|><|assistant|>",
    "<|user|>\r\nWindows line<|end|>\r\n<|assistant|>\r\n",
    "<|user|>\u3000ideographic space stays (not ASCII)<|end|>",
]


def added(tokenizer: Tokenizer) -> Tokenizer:
    tokenizer.add_special_tokens([
        AddedToken("<|user|>", rstrip=True, lstrip=False, normalized=False, special=True),
        AddedToken("<|assistant|>", rstrip=True, lstrip=False, normalized=False, special=True),
        AddedToken("<|end|>", rstrip=True, lstrip=False, normalized=False, special=True),
        AddedToken("<mask>", rstrip=False, lstrip=True, normalized=False, special=True),
    ])
    tokenizer.add_tokens([AddedToken("[[sep]]", rstrip=True, lstrip=True, normalized=False, special=False)])
    return tokenizer


def encode(tokenizer: Tokenizer, text: str, parse_special: bool) -> list[int]:
    tokenizer.encode_special_tokens = not parse_special
    try:
        return tokenizer.encode(text, add_special_tokens=False).ids
    finally:
        tokenizer.encode_special_tokens = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llama-cpp-bin", type=Path)
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    cases = {}
    for name, source in (("strip-spm", "spm-bpe"), ("strip-bpe", "gpt2-bpe")):
        tokenizer = added(Tokenizer.from_file(str(FIXTURES / source / "tokenizer.json")))
        (OUT / name).mkdir(exist_ok=True)
        tokenizer.save(str(OUT / name / "tokenizer.json"))
        # Reload what was written, so the ids come from the file the test reads.
        tokenizer = Tokenizer.from_file(str(OUT / name / "tokenizer.json"))
        cases[name] = [{"text": text, "ids": encode(tokenizer, text, False),
                        "ids_parse_special": encode(tokenizer, text, True)} for text in TEXTS]
    (OUT / "cases.json").write_text(json.dumps({"tokenizers": cases}, ensure_ascii=False, indent=1) + "\n")
    if options.llama_cpp_bin:
        phi3 = [{"text": text, "ids_parse_special": tokenize(options.llama_cpp_bin, PHI3_VOCAB, text, True)}
                for text in PHI3_TEXTS]
        (OUT / "phi3-llama-cpp.json").write_text(json.dumps({"vocabulary": "ggml-vocab-phi-3.gguf", "cases": phi3},
                                                            ensure_ascii=False, indent=1) + "\n")
    print(f"{OUT}: {sum(len(v) for v in cases.values())} cases")


if __name__ == "__main__":
    main()
