#!/usr/bin/env python3
"""Pre-tokenizer fixtures: Hugging Face `tokenizers` and Python's `regex` module as references.

Writes Tests/HoneKitTests/Fixtures/tokenizers/pretokenizers/
  configs.json  one entry per pre-tokenizer configuration: {"name", "pre_tokenizer" (tokenizer.json object),
                "cases": [{"text", "ids", "ids_parse_special"}]}: the gpt2-bpe fixture's tokenizer.json with its
                pre_tokenizer replaced, encoded by `tokenizers` without special tokens added, special tokens as text
                (`ids`) and parsed (`ids_parse_special`). Covers Split (Regex and String patterns, every behavior,
                invert), ByteLevel (add_prefix_space, use_regex, in the middle of a Sequence), Digits, Metaspace,
                Punctuation, Whitespace, WhitespaceSplit.
  regex.json    {"texts": [...], "patterns": [{"pattern", "matches": [[[start, end], ...] per text]}]}: the match
                spans (in Unicode scalars) of `regex.finditer` for every pattern llama.cpp's pre-tokenizers use
                (Hone's spelling) on every hard string. `$` patterns run with MULTILINE, which gives Oniguruma's
                line-anchor `$`.

Texts: HARD_STRINGS of make_tokenizer_fixtures.py.
Run:   tools/oracle/.venv/bin/python tools/oracle/make_pretokenizer_fixtures.py
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import regex
from tokenizers import Tokenizer

os.environ["RAYON_NUM_THREADS"] = "1"
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_tokenizer_fixtures import HARD_STRINGS  # noqa: E402

FIXTURES = ROOT / "Tests/HoneKitTests/Fixtures/tokenizers"
OUT = FIXTURES / "pretokenizers"

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?"
          r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Phi-4-mini's and Llama 4's (llama.cpp's `gpt-4o`): tekken's with contractions and digits in threes.
GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_level(prefix=False, regex_=False):
    return {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True, "use_regex": regex_}


def split(pattern, behavior="Isolated", invert=False, string=False):
    return {"type": "Split", "pattern": {"String" if string else "Regex": pattern}, "behavior": behavior,
            "invert": invert}


def seq(*steps):
    return {"type": "Sequence", "pretokenizers": list(steps)}


CONFIGS = {
    "split-llama3-isolated": seq(split(LLAMA3), byte_level()),
    "split-tekken": seq(split(TEKKEN), byte_level()),
    "split-gpt4o": seq(split(GPT4O), byte_level()),
    "split-digits-merged-with-previous": seq(split(r"\p{N}", "MergedWithPrevious"), byte_level()),
    "split-space-merged-with-next": seq(split(r"\s+", "MergedWithNext"), byte_level()),
    "split-punctuation-contiguous": seq(split(r"\p{P}", "Contiguous"), byte_level()),
    "split-string-removed": seq(split(" ", "Removed", string=True), byte_level()),
    "split-letters-inverted-isolated": seq(split(r"\p{L}+", "Isolated", invert=True), byte_level()),
    "split-letters-inverted-merged-with-previous": seq(split(r"\p{L}+", "MergedWithPrevious", invert=True), byte_level()),
    "split-lazy-possessive-lookahead": seq(split(r"[a-z]+?(?=[A-Z0-9])|\p{Lu}\p{Ll}*+|\S+?(?=\s|$)|\s+", "Isolated"), byte_level()),
    "split-line-anchors": seq(split(r"[\r\n]"), split(r"\s+$"), split(r"^\s*\p{L}+"), byte_level()),
    "split-bounded-repetition": seq(split(r"\p{N}{2,4}|\p{L}{1,3}?x|[^\p{L}\p{N}\s]{2}"), byte_level()),
    "bytelevel-prefix-regex": byte_level(True, True),
    "bytelevel-regex": byte_level(False, True),
    "digits-individual-bytelevel-regex": seq({"type": "Digits", "individual_digits": True}, byte_level(False, True)),
    "digits-punctuation": seq({"type": "Digits", "individual_digits": False}, {"type": "Punctuation", "behavior": "Isolated"},
                              byte_level(False, True)),
    "falcon-like": seq({"type": "Punctuation", "behavior": "Contiguous"}, byte_level(False, True),
                       {"type": "Digits", "individual_digits": False}, split(r"[0-9][0-9][0-9]")),
    "whitespace": seq({"type": "Whitespace"}, byte_level()),
    "whitespace-split-prefix": seq({"type": "WhitespaceSplit"}, byte_level(True, False)),
    "punctuation-merged-with-next": seq({"type": "Punctuation", "behavior": "MergedWithNext"}, byte_level()),
    "metaspace-first-split": seq({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
                                 byte_level()),
    "metaspace-always-nosplit": seq({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                                     "split": False}, byte_level()),
    "metaspace-never-split": seq({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": True},
                                 byte_level()),
}

# Every regex llama.cpp's pre-tokenizer types use, as Hone writes them (GGUFPreTokenizers.swift), plus the
# tokenizer.json originals of the scanner patterns.
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")


def deepseek_patterns():
    source = (ROOT / "Sources/HoneKit/Tokenizer/PreTokenizers/GGUFPreTokenizers.swift").read_text(encoding="utf-8")
    import re
    letters = re.search(r'static let letters = #"(.*)"#', source).group(1)
    punct = re.search(r'static let punctuation = #"(.*)"#', source).group(1)
    cjk = re.search(r'static let cjkClass = #"(.*)"#', source).group(1)

    return [r"[\r\n]", r"\s?" + letters + "+", r"\s?" + punct + "+", r"\s+$", cjk + "+", r"\p{N}+",
            r"\s?\p{L}+", r"\s?\p{P}+", r"\p{N}"]


PATTERNS = [GPT2, LLAMA3, QWEN2, TEKKEN, GPT4O, r"[\p{P}\$\+<=>\^~\|]+", r"\p{N}+", r"[0-9][0-9][0-9]",
            r"[\p{P}\$\+<=>\^~\|`]+", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
            *deepseek_patterns()]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    base = json.loads((FIXTURES / "gpt2-bpe/tokenizer.json").read_text(encoding="utf-8"))
    configs = []
    for name, pre in CONFIGS.items():
        document = dict(base, pre_tokenizer=pre)
        tok = Tokenizer.from_str(json.dumps(document))
        cases = []
        for text in HARD_STRINGS:
            tok.encode_special_tokens = True
            ids = tok.encode(text, add_special_tokens=False).ids
            tok.encode_special_tokens = False
            parsed = tok.encode(text, add_special_tokens=False).ids
            cases.append({"text": text, "ids": ids, "ids_parse_special": parsed})
        configs.append({"name": name, "pre_tokenizer": pre, "cases": cases})
    (OUT / "configs.json").write_text(json.dumps({"base": "gpt2-bpe/tokenizer.json", "configs": configs},
                                                 ensure_ascii=False) + "\n", encoding="utf-8")

    patterns = []
    for pattern in PATTERNS:
        # Python's regex spells Oniguruma's \x{HHHH} as \UHHHHHHHH.
        python_pattern = re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: "\\U%08X" % int(m.group(1), 16), pattern)
        compiled = regex.compile(python_pattern, regex.MULTILINE if "$" in pattern else 0)
        patterns.append({"pattern": pattern,
                         "matches": [[[m.start(), m.end()] for m in compiled.finditer(text)] for text in HARD_STRINGS]})
    (OUT / "regex.json").write_text(json.dumps({"texts": HARD_STRINGS, "patterns": patterns}, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    print(f"{OUT}: {len(configs)} configurations, {len(PATTERNS)} patterns x {len(HARD_STRINGS)} strings")


if __name__ == "__main__":
    main()
