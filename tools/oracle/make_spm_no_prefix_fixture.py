#!/usr/bin/env python3
"""llama.cpp's ids for a SentencePiece GGUF vocabulary without the dummy-prefix space (Gemma's files say
`tokenizer.ggml.add_space_prefix = false`), for Hone's GGUF tokenizer test.

No Gemma vocabulary is available offline, so the shared Llama SPM vocabulary (../shared/data/tokenizer-vectors/
ggml-vocab-llama-spm.gguf) is copied with that one key added, and `llama-tokenize` (from a llama.cpp the user
built; this script neither builds nor ships it) tokenizes the shared test strings (its .inp file) and a few of
Gemma's chat-turn strings with it. Writes Tests/HoneKitTests/Fixtures/tokenizers/spm-no-prefix/cases.json:

    {"vocabulary": "ggml-vocab-llama-spm.gguf", "add_space_prefix": false,
     "cases": [{"text": ..., "ids": [...], "ids_parse_special": [...]}, ...]}

The test makes the same copy with Hone's GGUF writer, so the 700 KB vocabulary is not duplicated in the repository.

Run:  tools/oracle/.venv/bin/python tools/oracle/make_spm_no_prefix_fixture.py \\
          --bin /path/to/llama.cpp/build/bin --gguf-py /path/to/llama.cpp/gguf-py
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_llama_cpp_tokenize_fixture import tokenize  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VOCAB = ROOT.parent / "shared/data/tokenizer-vectors/ggml-vocab-llama-spm.gguf"
OUT = ROOT / "Tests/HoneKitTests/Fixtures/tokenizers/spm-no-prefix"
EXTRA = [
    "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n",
    " leading space", "  two leading spaces", "\n\nnewlines first", "Hello", "</s> after a control token",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=Path, required=True)
    parser.add_argument("--gguf-py", type=Path, required=True)
    options = parser.parse_args()
    sys.path.insert(0, str(options.gguf_py))
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    texts = VOCAB.with_suffix(".gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    texts = [t for t in texts if t] + EXTRA
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "vocab.gguf"
        reader = gguf.GGUFReader(VOCAB)
        writer = gguf.GGUFWriter(copy, arch="llama")
        key = "tokenizer.ggml.add_space_prefix"
        copy_with_new_metadata(reader, writer, {key: MetadataDetails(gguf.GGUFValueType.BOOL, False)}, [])
        cases = [{"text": text, "ids": tokenize(options.bin, copy, text, False),
                  "ids_parse_special": tokenize(options.bin, copy, text, True)} for text in texts]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cases.json").write_text(json.dumps({"vocabulary": VOCAB.name, "add_space_prefix": False, "cases": cases},
                                               ensure_ascii=False, indent=1) + "\n")
    print(f"{OUT / 'cases.json'}: {len(cases)} cases")


if __name__ == "__main__":
    main()
