#!/usr/bin/env python3
"""Tokenizer fixtures for Hone: small real tokenizers plus reference tokenizations.

Writes Tests/HoneKitTests/Fixtures/tokenizers/<name>/ for
  spm-bpe       SentencePiece BPE, Llama-2 trainer settings, vocab 1000, + control <ctrl> and
                user-defined <user>: tokenizer.model, tokenizer.json (transformers' LlamaConverter,
                legacy Llama-2 layout), tokenizer_config.json, special_tokens_map.json
  spm-bpe-gguf  vocab-only GGUF of spm-bpe, written like llama.cpp's convert_hf_to_gguf.py
                (_set_vocab_sentencepiece): tokenizer.ggml.model "llama", pre "default"
  gpt2-bpe      byte-level BPE with GPT-2's pre-tokenizer: vocab.json, merges.txt, tokenizer.json,
                tokenizer_config.json
  llama3-bpe    byte-level BPE with Llama 3's pre-tokenizer (Split regex + ByteLevel), ignore_merges,
                BOS by a TemplateProcessing post-processor
  qwen2-bpe     byte-level BPE with Qwen2's pipeline (NFC, Split regex with single digits, ByteLevel)
  gpt2-gguf, llama3-gguf, qwen2-gguf
                vocab-only GGUFs of the three (_set_vocab_gpt2): model "gpt2", pre "gpt-2" /
                "llama-bpe" / "qwen2", tokens, token_type, merges
and in every directory a cases.json (format in tools/oracle/README.md, "Tokenizer fixtures").

References (tools/oracle/README.md; spec methods.md section 8): the `tokenizers` library on
tokenizer.json and, for spm-bpe, the `sentencepiece` library on tokenizer.model. transformers'
AutoTokenizer is NOT used as an oracle. The *-gguf directories carry the cases of their source
tokenizer (a GGUF is only another container of the same vocabulary).

Training text: the Python standard-library docstrings of make_default_model.build_corpus() (the
same corpus as models/hone-tiny) and, for the byte-level tokenizers, a few hundred seeded
generated lines of CJK / emoji / digits / other scripts so that those get merges.

Deterministic: fixed seeds, one thread (RAYON_NUM_THREADS=1, sentencepiece num_threads=1);
rerunning rewrites byte-identical files.

Rerun:   tools/oracle/.venv/bin/python tools/oracle/make_tokenizer_fixtures.py
Check:   tools/oracle/.venv/bin/python tools/oracle/make_tokenizer_fixtures.py --check
         (re-derives every cases.json from the files on disk, checks the GGUFs against their
         sources and by rebuilding a tokenizer from the GGUF alone, reports round trips,
         sentencepiece-vs-tokenizers disagreements and the fixture sizes)
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"          # before `tokenizers` starts its thread pool
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import sysconfig  # noqa: E402
from pathlib import Path  # noqa: E402

import gguf  # noqa: E402
import sentencepiece as spm  # noqa: E402
import tokenizers  # noqa: E402
from tokenizers import (  # noqa: E402
    AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers,
)

logging.getLogger("gguf").setLevel(logging.ERROR)   # SpecialVocab's pair-template chatter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_default_model as mdm  # noqa: E402  (corpus, Llama-2 converter workaround)
import oracle_common as oc  # noqa: E402

from transformers.convert_slow_tokenizer import generate_merges  # noqa: E402

OUT = oc.FIXTURES / "tokenizers"

SPM_VOCAB = 1000
BYTE_LEVEL_VOCAB = 1000          # trainer vocab (256 byte symbols + merges); specials come on top
HARD_LINES_SEED = 20251122
HARD_LINES = 400                 # generated lines ...
HARD_LINES_REPEAT = 15           # ... each seen this many times in training

SPM_CONTROL = "<ctrl>"           # control symbol (type 3): never matched in text by sentencepiece
SPM_USER = "<user>"              # user-defined symbol (type 4): always matched by sentencepiece.
# (Not "<|user|>": llama.cpp's converter would mark any "<|...|>" token CONTROL, see
#  does_token_look_special, so the GGUF would not have a USER_DEFINED token.)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---------------------------------------------------------------------------
# Hard strings: the cases of every tokenizer (plus the paragraph and per-tokenizer extras)
# ---------------------------------------------------------------------------

HARD_STRINGS = [
    # empty and whitespace
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r", " \n \t ", "\t\t", " \t", "\n \n\n \n",
    # runs of 1-12 spaces before a word
    *[" " * n + "word" for n in range(1, 13)],
    # words and casing, leading / trailing spaces
    "Hello world", " Hello world", "Hello World", "HELLO", " hello", "  hello", "hello ", "hello  ",
    " hello ", "  Hello  World  ", "Hello\nworld", "Hello \n world", "Hello\tworld", "hello\n", "a b c",
    # digits
    "1", "12", "123", "1234", "12345678901234", "3.14159", "1,000,000", "2024-11-22", " 42", "x1y22z333",
    "3 33 333 3333 33333 333333", "0.5e-10", "$9.99",
    # contractions
    "I'm", "you're", "we'll", "she's", "they'd", "I've", "'s", "'RE", "'lL", "don't", "'M 'D 'Ve",
    "It's 'quoted' text", "O'Neil's",
    # punctuation runs
    "!!!", "...", "?!?", "--", "((()))", "a...b", "--help", "<<>>", "@#$%^&*", "\u2014", "\u00ab\u00bb",
    # code
    "def f(x):\n    return x**2\n",
    "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
    '{"key": "value", "n": [1, 2, 3], "ok": true, "nested": {"a": null}}',
    "    indented\n        more\n",
    "x = {'a': 1}  # comment",
    # URLs and addresses
    "https://example.com/path/to/page.html?query=1&x=y#frag",
    "http://localhost:8080/",
    "user@example.org",
    # emoji
    "\U0001F600", "\U0001F44D\U0001F3FD",
    "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466",
    "\U0001F3F3\ufe0f\u200d\U0001F308", "\U0001F1EB\U0001F1F7", "\U0001F1EB\U0001F1F7\U0001F1E9\U0001F1EA",
    "I \u2764\ufe0f Python \U0001F40D",
    "\U0001F680 (normal) \U0001F636\u200d\U0001F32B\ufe0f \u2705 \U0001F999\U0001F999",
    # CJK
    "\u4e2d\u6587\u6d4b\u8bd5", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", "\ud55c\uad6d\uc5b4",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u6771\u4eac\u90fd 2024\u5e74",
    # other scripts
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0926\u0947\u0935\u0928\u093e\u0917\u0930\u0940",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01",
    "\u1797\u17b6\u179f\u17b6\u1781\u17d2\u1798\u17c2\u179a",
    "\u179f\u17d2\u178a\u17b8\u1796\u17b8",
    # combining marks, normalisation forms, compatibility characters
    "e\u0301", "n\u0303", "\u00c5", "A\u030a", "\u212b", "\ufb01", "\ufb01le", "caf\u00e9", "cafe\u0301",
    "na\u00efve r\u00e9sum\u00e9", "\u01c4", "\u1e9b\u0323",
    # zero-width and unusual whitespace, control characters
    "\u200b", "a\u200bb", "\u00a0", "a\u00a0b", "\u3000", "a\u3000b", "\u2028", "a\u2028b", "\u2029",
    "\u0085", "\ufeffBOM", "\x0b\x0c", "a\x00b", "\x7f", "\ue000", "\U0010fffd",
    # the marker characters of SentencePiece and byte-level BPE written as text
    "\u2581", "\u2581hello", "a\u2581b", " \u2581 ", "\u0120", "\u0120hello", "\u0120\u0120", "\u010a",
    # special tokens written as text
    "<s>", "</s>", "<unk>", "Hello</s>world", " <s> ", "<s>Hello", "<|endoftext|>", "a<|endoftext|>b",
    "<|endoftext|><|endoftext|>", "<|begin_of_text|>hi", "<|end_of_text|>", "<|eot_id|>",
    "<|im_start|>user\nhi<|im_end|>", "<|im_end|>\n", SPM_CONTROL, "x" + SPM_CONTROL + "y",
    SPM_USER, "a" + SPM_USER + "b", " " + SPM_USER + " x", SPM_USER + "hi",
    "<0x0A>", "<0x00>", "<0x41>",
    # very long words
    "a" * 200, "x" * 50 + "y" * 50, "0" * 40, "supercalifragilisticexpialidocious",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbb",
    # mixed sentences
    "In 2024-11-22, the caf\u00e9 served 1,000,000 cups \U0001F600 \u2014 na\u00efve r\u00e9sum\u00e9! "
    "\u4e2d\u6587\u6d4b\u8bd5 and \u041f\u0440\u0438\u0432\u0435\u0442.",
    "She's said: \"I'm   here\"\t(really!!!) at https://example.com/a?b=1 \U0001F44D\U0001F3FD\n",
    "<s>Hello</s> <|endoftext|> \u65e5\u672c\u8a9e \u2581\u0120 e\u0301 \u200b 12345 'RE\r\n",
    "def f(x):\n    return x**2  # 3.14159 \u2192 \u2211 \U0001F600\n\n\n  \t end",
    "  Leading spaces, \u00c5ngstr\u00f6m A\u030angstro\u0308m \ufb01nal \u3000\u3000"
    "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 \U0001F1EB\U0001F1F7 \u0926\u0947\u0935 \u0e44\u0e17\u0e22 ",
]

INVALID_UTF8 = [b"abc\xff", b"\xc3(", b"\xe2\x82", b"ok\xf0\x9f\x98", b"\xed\xa0\x80x", b"\xf8\x88\x80\x80\x80"]

# ---------------------------------------------------------------------------
# Generated training lines (byte-level tokenizers)
# ---------------------------------------------------------------------------

_CJK = [
    "\u4e2d\u6587", "\u6d4b\u8bd5", "\u4f60\u597d", "\u4e16\u754c", "\u6211\u4eec", "\u4eca\u5929",
    "\u5b66\u4e60", "\u81ea\u7136\u8bed\u8a00\u5904\u7406", "\u8fd9\u662f\u4e00\u4e2a\u53e5\u5b50\u3002",
    "\u6587\u4ef6", "\u6570\u636e", "\u51fd\u6570", "\u8fd4\u56de\u503c", "\uff0c", "\u3002", "\uff01",
    "\u65e5\u672c\u8a9e", "\u30c6\u30ad\u30b9\u30c8", "\u3053\u3093\u306b\u3061\u306f", "\u6771\u4eac",
    "\u3067\u3059", "\u307e\u3059", "\u306e", "\u306f", "\u3092", "\u30d7\u30ed\u30b0\u30e9\u30e0",
    "\ud55c\uad6d\uc5b4", "\uc548\ub155\ud558\uc138\uc694", "\uc138\uacc4", "\ud14d\uc2a4\ud2b8",
    "\ucc98\ub9ac", "\uc785\ub2c8\ub2e4",
]
_EMOJI = [
    "\U0001F600", "\U0001F603", "\U0001F602", "\U0001F44D", "\U0001F44D\U0001F3FD", "\u2764\ufe0f",
    "\U0001F389", "\U0001F680", "\U0001F40D", "\U0001F999", "\u2705", "\U0001F525", "\U0001F914",
    "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466", "\U0001F3F3\ufe0f\u200d\U0001F308",
    "\U0001F1EB\U0001F1F7", "\U0001F1E9\U0001F1EA", "\U0001F1EF\U0001F1F5", "\U0001F636\u200d\U0001F32B\ufe0f",
]
_SCRIPTS = [
    "\u041f\u0440\u0438\u0432\u0435\u0442", "\u043c\u0438\u0440", "\u043f\u0440\u0438\u043c\u0435\u0440",
    "\u0442\u0435\u043a\u0441\u0442\u0430", "\u043d\u0430", "\u0440\u0443\u0441\u0441\u043a\u043e\u043c",
    "\u0393\u03b5\u03b9\u03ac", "\u03c3\u03bf\u03c5", "\u039a\u03cc\u03c3\u03bc\u03b5",
    "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1", "\u0645\u0631\u062d\u0628\u0627",
    "\u0628\u0627\u0644\u0639\u0627\u0644\u0645", "\u05e9\u05dc\u05d5\u05dd", "\u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0926\u0947\u0935\u0928\u093e\u0917\u0930\u0940", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22", "\u1797\u17b6\u179f\u17b6\u1781\u17d2\u1798\u17c2\u179a",
    "caf\u00e9", "na\u00efve", "r\u00e9sum\u00e9", "\u00c5ngstr\u00f6m", "stra\u00dfe", "\u00fcber",
]
_PUNCT = [
    "!!!", "...", "?!", "--", "((", "))", "{", "}", "[]", "'s", "'re", "I'm", "don't", "\"", "#", "->",
    "==", "+=", "**", "//", "\u2014", "\u2192", "\u2211", "\u00b0C", "%", "@", "&",
]
_CODE = [
    "def f(x):", "return x", "for i in range(n):", "if x == 0:", "print(x)", "import os",
    "int main(void) {", "sum += a[i];", "}", "{\"key\": \"value\"}", "https://example.com/index.html",
    "http://localhost:8080/", "self.x = x", "#include <stdio.h>", "x**2", "a[i][j]",
]
_WS = [" ", " ", " ", "", "  ", "   ", "\t", "\n", "\n\n", " \n"]


def _number(rng: random.Random) -> str:
    k = rng.randrange(6)
    if k == 0:
        return str(rng.randrange(10))
    if k == 1:
        return str(rng.randrange(10, 100000))
    if k == 2:
        return f"{rng.randrange(1000)}.{rng.randrange(100000)}"
    if k == 3:
        return f"{rng.randrange(1900, 2100)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    if k == 4:
        return f"{rng.randrange(1, 999)},{rng.randrange(1000):03d},{rng.randrange(1000):03d}"
    return "".join(str(rng.randrange(10)) for _ in range(rng.randrange(5, 16)))


def hard_training_lines() -> list[str]:
    rng = random.Random(HARD_LINES_SEED)
    pools = [_CJK, _CJK, _EMOJI, _SCRIPTS, _PUNCT, _CODE, None]
    lines = []
    for _ in range(HARD_LINES):
        parts = []
        for _ in range(rng.randrange(3, 12)):
            pool = rng.choice(pools)
            parts.append(_number(rng) if pool is None else rng.choice(pool))
            parts.append(rng.choice(_WS))
        lines.append("".join(parts).rstrip("\n"))
    return lines


# ---------------------------------------------------------------------------
# Tokenizer construction
# ---------------------------------------------------------------------------

def added_token_entry(content: str, special: bool = True) -> dict:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": special}


def train_spm(lines: list[str]) -> bytes:
    """Llama-2 trainer settings, vocab 1000, plus one control and one user-defined symbol."""
    return mdm.train_sentencepiece(lines, vocab_size=SPM_VOCAB, control_symbols=[SPM_CONTROL],
                                   user_defined_symbols=[SPM_USER])


def make_spm_bpe(d: Path, corpus: list[str]) -> None:
    (d / "tokenizer.model").write_bytes(train_spm(corpus))
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    assert sp.piece_to_id(SPM_CONTROL) == 3 and sp.is_control(3)
    assert sp.piece_to_id(SPM_USER) == 4 and not sp.is_control(4)
    assert sp.get_piece_size() == SPM_VOCAB
    # transformers' LlamaConverter (legacy Llama-2 layout; 5.23's BPE bug worked around in
    # make_default_model) + what LlamaTokenizerFast adds (BOS template, specials)
    tok = mdm.build_tokenizer_json(d / "tokenizer.model")
    tok.save(str(d / "tokenizer.json"))
    cfg = dict(mdm.TOKENIZER_CONFIG)
    cfg["added_tokens_decoder"] = {
        "0": added_token_entry("<unk>"), "1": added_token_entry("<s>"), "2": added_token_entry("</s>"),
        "3": added_token_entry(SPM_CONTROL), "4": added_token_entry(SPM_USER, special=False),
    }
    cfg["model_max_length"] = 4096
    write_text(d / "tokenizer_config.json", json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    write_text(d / "special_tokens_map.json", json.dumps(mdm.SPECIAL_TOKENS_MAP, indent=2) + "\n")


def train_byte_level(lines: list[str], normalizer, pre_tokenizer) -> Tokenizer:
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, fuse_unk=False, byte_fallback=False))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BYTE_LEVEL_VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def with_model_options(tok: Tokenizer, **model_opts) -> Tokenizer:
    j = json.loads(tok.to_str())
    j["model"].update(model_opts)
    return Tokenizer.from_str(json.dumps(j))


def split_pre_tokenizer(pattern: str):
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])


def make_gpt2(d: Path, lines: list[str]) -> None:
    tok = train_byte_level(lines, None, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    tok = with_model_options(tok, ignore_merges=False)
    # GPT-2: <|endoftext|> is the last id (50256 in the real one), normalized true, special
    tok.add_special_tokens([AddedToken("<|endoftext|>", single_word=False, lstrip=False, rstrip=False,
                                       normalized=True, special=True)])
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tok.save(str(d / "tokenizer.json"))
    j = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tok.get_vocab(with_added_tokens=True)
    write_text(d / "vocab.json",
               json.dumps(dict(sorted(vocab.items(), key=lambda kv: kv[1])), ensure_ascii=False) + "\n")
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    write_text(d / "merges.txt", "#version: 0.2\n" + "".join(m + "\n" for m in merges))
    eot = tok.token_to_id("<|endoftext|>")
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(eot): {**added_token_entry("<|endoftext|>"), "normalized": True}},
        "bos_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 1024,
        "pad_token": None,
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": "<|endoftext|>",
    }
    write_text(d / "tokenizer_config.json", json.dumps(cfg, indent=2) + "\n")


# vocabulary entries without a merge (see add_mergeless_tokens) and cases that use them
LLAMA3_MERGELESS = ["Hello", " Hello", " tokenizer", "supercalifragilisticexpialidocious"]
LLAMA3_EXTRA_CASES = ["tokenizer", " tokenizer", " tokenizers", "A tokenizer, Hello!", " Hello Hello  Hello"]
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def make_llama3(d: Path, lines: list[str]) -> None:
    tok = train_byte_level(lines, None, split_pre_tokenizer(LLAMA3_PATTERN))
    tok = add_mergeless_tokens(tok, LLAMA3_MERGELESS)
    tok = with_model_options(tok, ignore_merges=True)
    tok.add_special_tokens([AddedToken(s, single_word=False, lstrip=False, rstrip=False, normalized=False,
                                       special=True) for s in LLAMA3_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    tok.save(str(d / "tokenizer.json"))
    # like meta-llama/Meta-Llama-3-8B's tokenizer_config.json: NO add_bos_token key; the BOS comes
    # from tokenizer.json's TemplateProcessing post-processor
    cfg = {
        "added_tokens_decoder": {str(tok.token_to_id(s)): added_token_entry(s) for s in LLAMA3_SPECIALS},
        "bos_token": "<|begin_of_text|>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|end_of_text|>",
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    write_text(d / "tokenizer_config.json", json.dumps(cfg, indent=2) + "\n")


def make_qwen2(d: Path, lines: list[str]) -> None:
    tok = train_byte_level(lines, normalizers.NFC(), split_pre_tokenizer(QWEN2_PATTERN))
    tok = with_model_options(tok, ignore_merges=False)
    tok.add_special_tokens([AddedToken(s, single_word=False, lstrip=False, rstrip=False, normalized=False,
                                       special=True) for s in QWEN2_SPECIALS])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.save(str(d / "tokenizer.json"))
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(tok.token_to_id(s)): added_token_entry(s) for s in QWEN2_SPECIALS},
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    write_text(d / "tokenizer_config.json", json.dumps(cfg, indent=2) + "\n")


# ---------------------------------------------------------------------------
# GGUF (llama.cpp convert_hf_to_gguf.py, vocab only)
# ---------------------------------------------------------------------------

def does_token_look_special(token: str) -> bool:
    """convert_hf_to_gguf.py TextModel.does_token_look_special."""
    return (token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (token.startswith("<|") and token.endswith("|>"))
            or (token.startswith("<\uff5c") and token.endswith("\uff5c>"))
            or (token.startswith("<unused") and token.endswith(">")))


def spm_vocab_for_gguf(src: Path) -> tuple[list[bytes], list[float], list[int]]:
    """convert_hf_to_gguf.py TextModel._create_vocab_sentencepiece (no config.json, so
    vocab_size = the sentencepiece size; no added_tokens.json)."""
    T = gguf.TokenType
    sp = spm.SentencePieceProcessor(model_file=str(src / "tokenizer.model"))
    n = sp.vocab_size()
    tokens, scores, types = [], [], []
    for i in range(n):
        t = T.NORMAL
        if sp.IsUnknown(i):
            t = T.UNKNOWN
        elif sp.IsControl(i):
            t = T.CONTROL
        elif sp.IsUnused(i):
            t = T.UNUSED
        elif sp.IsByte(i):
            t = T.BYTE
        tokens.append(sp.IdToPiece(i).encode("utf-8"))
        scores.append(sp.GetScore(i))
        types.append(int(t))
    cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    for key, data in cfg.get("added_tokens_decoder", {}).items():
        i, content = int(key), data["content"]
        assert tokens[i] == content.encode("utf-8"), (i, tokens[i], content)
        if data.get("special") or does_token_look_special(content):
            types[i] = int(T.CONTROL)
        else:
            content = content.replace("\u2581", " ")  # pre-normalize user-defined spaces
            types[i] = int(T.USER_DEFINED)
        scores[i] = -1000.0
        tokens[i] = content.encode("utf-8")
    return tokens, scores, types


def byte_level_vocab_for_gguf(src: Path) -> tuple[list[str], list[int]]:
    """convert_hf_to_gguf.py TextModel.get_vocab_base, on tokenizer.json + tokenizer_config.json
    (the converter reads the same through AutoTokenizer; our added tokens are all special)."""
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    vocab = tok.get_vocab(with_added_tokens=True)
    added = {a.content: a for a in tok.get_added_tokens_decoder().values()}
    rev = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(len(vocab)):
        t = rev[i]
        if t in added:
            if added[t].special or does_token_look_special(t):
                types.append(int(gguf.TokenType.CONTROL))
            else:
                t = t.replace("\u2581", " ")
                types.append(int(gguf.TokenType.USER_DEFINED))
        else:
            types.append(int(gguf.TokenType.NORMAL))
        tokens.append(t)
    return tokens, types


def write_vocab_gguf(src: Path, out: Path, *, arch: str, name: str, tokenizer_model: str, pre: str,
                     extra_special: dict | None = None) -> None:
    """Key order of a `convert_hf_to_gguf.py --vocab-only` run: general.architecture,
    general.type, general.name (prepare_metadata), general.quantization_version, then set_vocab()'s
    keys. There is no config.json, so no model hyperparameters / general.file_type."""
    w = gguf.GGUFWriter(path=None, arch=arch)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(name)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model(tokenizer_model)
    w.add_tokenizer_pre(pre)
    if tokenizer_model == "llama":                     # _set_vocab_sentencepiece
        tokens, scores, types = spm_vocab_for_gguf(src)
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        special = gguf.SpecialVocab(src, n_vocab=len(tokens))
    else:                                              # _set_vocab_gpt2
        tokens, types = byte_level_vocab_for_gguf(src)
        w.add_token_list(tokens)
        w.add_token_types(types)
        special = gguf.SpecialVocab(src, load_merges=True)
    for typ, tid in (extra_special or {}).items():
        special._set_special_token(typ, tid)
    special.add_to_gguf(w, quiet=True)
    if out.exists():
        out.unlink()
    w.write_header_to_file(path=out)
    w.write_kv_data_to_file()
    w.close()


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------

def hf_encode(tok: Tokenizer, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
    tok.encode_special_tokens = not parse_special
    try:
        return tok.encode(text, add_special_tokens=add_special).ids
    finally:
        tok.encode_special_tokens = False


def case_record(tok: Tokenizer, text: str, sp=None) -> dict:
    ids = hf_encode(tok, text, add_special=False, parse_special=False)
    ids_ws = hf_encode(tok, text, add_special=True, parse_special=False)
    rec = {
        "text": text,
        "ids": ids,
        "ids_with_special": ids_ws,
        "ids_parse_special": hf_encode(tok, text, add_special=False, parse_special=True),
        "decoded": tok.decode(ids_ws, skip_special_tokens=False),
        "decoded_skip_special": tok.decode(ids_ws, skip_special_tokens=True),
    }
    if sp is not None:
        rec["ids_sentencepiece"] = sp.encode(text)
        if rec["ids_sentencepiece"] != ids:
            rec["note"] = ("sentencepiece and tokenizers disagree: " + describe_disagreement(tok, text, ids, rec["ids_sentencepiece"]))
    return rec


def describe_disagreement(tok: Tokenizer, text: str, ids: list[int], ids_sp: list[int]) -> str:
    pieces = [tok.id_to_token(i) for i in ids]
    pieces_sp = [tok.id_to_token(i) for i in ids_sp]
    reason = ""
    if SPM_USER in text:
        reason = (f" (tokenizer.json's legacy Prepend('\u2581') normalizer runs on each piece of text between "
                  f"added tokens, so the text after the user-defined {SPM_USER} gets a dummy-prefix \u2581; "
                  f"sentencepiece adds the dummy prefix only at the start of the input)")
    return f"tokenizers {pieces} vs sentencepiece {pieces_sp}{reason}"


def invalid_record(tok: Tokenizer, raw: bytes, sp=None) -> dict:
    text = raw.decode("utf-8", errors="replace")
    rec = {"bytes_hex": raw.hex(), "text_replaced": text,
           "ids": hf_encode(tok, text, add_special=False, parse_special=False)}
    if sp is not None:
        rec["ids_sentencepiece"] = sp.encode(text)
    return rec


def add_mergeless_tokens(tok: Tokenizer, words: list[str]) -> Tokenizer:
    """Append vocabulary entries that no merge produces (real Llama 3 has such tokens, which is why
    it sets ignore_merges): with ignore_merges a pre-token equal to one of them is that single
    token, without it the merges split it."""
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    for w in words:
        piece = "".join(BYTE_ENCODER[b] for b in w.encode("utf-8"))
        assert piece not in vocab, w
        pre = tok.pre_tokenizer.pre_tokenize_str(w)
        assert [p for p, _ in pre] == [piece], (w, pre)
        assert len(tok.encode(w).ids) >= 2, w
        vocab[piece] = len(vocab)
    return Tokenizer.from_str(json.dumps(j))


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


BYTE_ENCODER = _bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}


def docstring_paragraph() -> str:
    """The module docstring of argparse (2,810 bytes in CPython 3.11.7): prose, an indented
    list, quotes, parentheses. Falls back to the first 2-3 KB stdlib docstring."""
    std = Path(sysconfig.get_paths()["stdlib"])
    docs = mdm.docstrings(std / "argparse.py")[:1]
    docs += [d for f in mdm.stdlib_files() for d in mdm.docstrings(f)]
    text = next(d for d in docs if 2000 <= len(d.encode("utf-8")) <= 3000)
    return text


def reference_string() -> str:
    return f"tokenizers {tokenizers.__version__}, sentencepiece {spm.__version__}"


def build_cases(name: str, d: Path, kind: str, files: list[str], texts: list[str], *, with_sp: bool) -> dict:
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model")) if with_sp else None
    ids = special_ids(d)
    return {
        "tokenizer": name,
        "kind": kind,
        "files": files,
        "reference": reference_string(),
        **ids,
        "cases": [case_record(tok, t, sp) for t in texts],
        "invalid_utf8": [invalid_record(tok, b, sp) for b in INVALID_UTF8],
    }


def special_ids(d: Path) -> dict:
    """bos/eos/unk ids and add_bos/add_eos as the HF files say (tokenizer_config.json, and the
    TemplateProcessing post-processor for add_bos where the config has no add_bos_token)."""
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    cfg = json.loads((d / "tokenizer_config.json").read_text(encoding="utf-8"))

    def tid(key):
        v = cfg.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        return None if v is None else tok.token_to_id(v)

    bos = tid("bos_token")
    with_bos = tok.encode("x", add_special_tokens=True).ids
    without = tok.encode("x", add_special_tokens=False).ids
    add_bos = cfg.get("add_bos_token")
    if add_bos is None:
        add_bos = bos is not None and with_bos[:1] == [bos] and without[:1] != [bos]
    add_eos = bool(cfg.get("add_eos_token", False))
    # the files must agree with themselves: what tokenizer.json adds is what the config says
    expect = ([bos] if add_bos else []) + without + ([tid("eos_token")] if add_eos else [])
    assert with_bos == expect, (d, with_bos, expect)
    return {"bos_id": bos, "eos_id": tid("eos_token"), "unk_id": tid("unk_token"),
            "add_bos": bool(add_bos), "add_eos": add_eos}


def write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


# ---------------------------------------------------------------------------
# main: generate
# ---------------------------------------------------------------------------

GGUF_SPECS = {
    # name: (source, arch, tokenizer.ggml.model, tokenizer.ggml.pre)
    "spm-bpe-gguf": ("spm-bpe", "llama", "llama", "default"),
    "gpt2-gguf": ("gpt2-bpe", "gpt2", "gpt2", "gpt-2"),
    "llama3-gguf": ("llama3-bpe", "llama", "gpt2", "llama-bpe"),
    "qwen2-gguf": ("qwen2-bpe", "qwen2", "gpt2", "qwen2"),
}
HF_FILES = {
    "spm-bpe": ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"],
    "gpt2-bpe": ["vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"],
    "llama3-bpe": ["tokenizer.json", "tokenizer_config.json"],
    "qwen2-bpe": ["tokenizer.json", "tokenizer_config.json"],
}


def case_texts() -> list[str]:
    return HARD_STRINGS + [docstring_paragraph()]


def generate() -> None:
    print("versions:", reference_string(), f"gguf {gguf_version()}", "python", sys.version.split()[0])
    corpus = mdm.build_corpus()
    blob = "\n".join(corpus).encode("utf-8")
    sha = hashlib.sha256(blob).hexdigest()
    print(f"corpus: {len(corpus)} lines, {len(blob)} bytes, sha256 {sha}")
    if sha != mdm.EXPECTED_CORPUS_SHA256:
        print("WARNING: the docstring corpus differs from the committed one (other Python stdlib?); "
              "the tokenizers will change.")
    hard = hard_training_lines()
    byte_level_lines = corpus + hard * HARD_LINES_REPEAT

    if OUT.exists():
        shutil.rmtree(OUT)
    texts = case_texts()
    assert len(set(texts)) == len(texts), "duplicate case"
    assert len(HARD_STRINGS) >= 80

    makers = {"spm-bpe": lambda d: make_spm_bpe(d, corpus),
              "gpt2-bpe": lambda d: make_gpt2(d, byte_level_lines),
              "llama3-bpe": lambda d: make_llama3(d, byte_level_lines),
              "qwen2-bpe": lambda d: make_qwen2(d, byte_level_lines)}
    all_cases = {}
    for name, make in makers.items():
        d = OUT / name
        d.mkdir(parents=True)
        make(d)
        extra = LLAMA3_EXTRA_CASES if name == "llama3-bpe" else []
        kind = "sentencepiece" if name == "spm-bpe" else "byte-level"
        cases = build_cases(name, d, kind, HF_FILES[name], texts + extra, with_sp=(name == "spm-bpe"))
        oc.write_json(d / "cases.json", cases)
        all_cases[name] = cases
        vocab = Tokenizer.from_file(str(d / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
        print(f"  {name}: vocab {vocab}, {len(cases['cases'])} cases")
        if name == "spm-bpe":
            spm_corpus_agreement(d, corpus)

    for name, (src, arch, model, pre) in GGUF_SPECS.items():
        d = OUT / name
        d.mkdir(parents=True)
        extra = {}
        if name == "qwen2-gguf":
            # real Qwen2 checkpoints have bos_token_id = <|endoftext|> in config.json, which the
            # converter's SpecialVocab reads (tokenizer_config.json has bos_token null)
            extra["bos"] = Tokenizer.from_file(str(OUT / src / "tokenizer.json")).token_to_id("<|endoftext|>")
        write_vocab_gguf(OUT / src, d / "vocab.gguf", arch=arch, name=name, tokenizer_model=model, pre=pre,
                         extra_special=extra)
        cases = dict(all_cases[src])
        meta = read_gguf_meta(d / "vocab.gguf")
        cases = {"tokenizer": name, "kind": cases["kind"], "files": ["vocab.gguf"],
                 "reference": cases["reference"] + f" (on {src}'s files; this GGUF holds the same vocabulary)",
                 "bos_id": meta.get("tokenizer.ggml.bos_token_id"),
                 "eos_id": meta.get("tokenizer.ggml.eos_token_id"),
                 "unk_id": meta.get("tokenizer.ggml.unknown_token_id"),
                 "add_bos": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
                 "add_eos": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
                 "cases": cases["cases"], "invalid_utf8": cases["invalid_utf8"]}
        assert cases["add_bos"] == all_cases[src]["add_bos"] and cases["add_eos"] == all_cases[src]["add_eos"]
        assert cases["eos_id"] == all_cases[src]["eos_id"]
        oc.write_json(d / "cases.json", cases)
        print(f"  {name}: {d / 'vocab.gguf'} ({(d / 'vocab.gguf').stat().st_size} bytes)")

    if not check():
        sys.exit(1)


def spm_corpus_agreement(d: Path, corpus: list[str]) -> None:
    """Beyond the cases: sentencepiece == tokenizers on ~2,000 corpus lines (every 18th), on
    the hard training lines, and on the corpus lines with a leading space or an appended <user>."""
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.encode_special_tokens = True
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    sample = corpus[::18]
    probes = sample + hard_training_lines() + [" " + t for t in sample[:300]] + [t + SPM_USER for t in sample[:300]]
    bad = [t for t in probes if tok.encode(t, add_special_tokens=False).ids != sp.encode(t)]
    assert not bad, bad[:5]
    dec_bad = [t for t in sample if tok.decode(sp.encode(t)) != sp.decode(sp.encode(t))]
    assert not dec_bad, dec_bad[:5]
    print(f"  spm-bpe: sentencepiece == tokenizers on {len(probes)} more strings (decode too on {len(sample)})")


def gguf_version() -> str:
    from importlib.metadata import version
    return version("gguf")


# ---------------------------------------------------------------------------
# --check
# ---------------------------------------------------------------------------

def read_gguf_meta(path: Path) -> dict:
    r = gguf.GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        meta[k] = f.contents()
    assert not r.tensors
    return meta


def gguf_rebuild_tokenizer(meta: dict, src_tok: Tokenizer) -> Tokenizer:
    """A `tokenizers` pipeline built ONLY from the GGUF's vocabulary (tokens, merges or scores,
    token types) and the pre-tokenizer its `tokenizer.ggml.pre` names: proves the GGUF carries
    what it takes to reproduce the cases."""
    tokens = meta["tokenizer.ggml.tokens"]
    types = meta["tokenizer.ggml.token_type"]
    if meta["tokenizer.ggml.model"] == "llama":
        scores = meta["tokenizer.ggml.scores"]
        vocab = {t: i for i, t in enumerate(tokens)}
        # merges ordered by the score of the merged piece (what sentencepiece's BPE does)
        merges = generate_merges(vocab, [(t, s) for t, s in zip(tokens, scores)])
        tok = Tokenizer(models.BPE(vocab, merges, unk_token=tokens[meta["tokenizer.ggml.unknown_token_id"]],
                                   fuse_unk=True, byte_fallback=True, dropout=None))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    else:
        vocab = {t: i for i, t in enumerate(tokens)}
        merges = [tuple(m.split(" ")) for m in meta["tokenizer.ggml.merges"]]
        pre = meta["tokenizer.ggml.pre"]
        tok = Tokenizer(models.BPE(vocab, merges, dropout=None, fuse_unk=False, byte_fallback=False,
                                   ignore_merges=(pre == "llama-bpe")))
        if pre == "gpt-2":
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        elif pre == "llama-bpe":
            tok.pre_tokenizer = split_pre_tokenizer(LLAMA3_PATTERN)
        elif pre == "qwen2":
            tok.normalizer = normalizers.NFC()
            tok.pre_tokenizer = split_pre_tokenizer(QWEN2_PATTERN)
        else:
            raise ValueError(pre)
        tok.decoder = decoders.ByteLevel()
    added = []
    for i, (t, ty) in enumerate(zip(tokens, types)):
        if ty in (gguf.TokenType.CONTROL, gguf.TokenType.USER_DEFINED, gguf.TokenType.UNKNOWN):
            added.append(AddedToken(t, special=(ty != gguf.TokenType.USER_DEFINED), normalized=False))
    tok.add_tokens(added)
    bos = meta.get("tokenizer.ggml.bos_token_id")
    if meta.get("tokenizer.ggml.add_bos_token"):
        tok.post_processor = processors.TemplateProcessing(
            single=f"{tokens[bos]}:0 $A:0", pair=f"{tokens[bos]}:0 $A:0 {tokens[bos]}:1 $B:1",
            special_tokens=[(tokens[bos], bos)])
    for t in added:
        assert tok.token_to_id(t.content) == vocab[t.content], t
    assert src_tok.get_vocab_size(with_added_tokens=True) == len(tokens)
    return tok


def compare_case_lists(name: str, want: dict, got: dict, problems: list[str]) -> None:
    for key in ("cases", "invalid_utf8"):
        if len(want[key]) != len(got[key]):
            problems.append(f"{name}: {key} length {len(got[key])} != {len(want[key])}")
            continue
        for a, b in zip(want[key], got[key]):
            for k in a:
                if k == "note":
                    continue
                if a[k] != b.get(k):
                    problems.append(f"{name}: {key} {a.get('text', a.get('bytes_hex'))!r}: {k} differs")


def check() -> bool:
    problems: list[str] = []
    summary = []
    tok_cache = {}
    for name in HF_FILES:
        d = OUT / name
        stored = json.loads((d / "cases.json").read_text(encoding="utf-8"))
        texts = [c["text"] for c in stored["cases"]]
        kind = stored["kind"]
        fresh = build_cases(name, d, kind, HF_FILES[name], texts, with_sp=(name == "spm-bpe"))
        compare_case_lists(name, fresh, stored, problems)
        for k in ("tokenizer", "kind", "files", "bos_id", "eos_id", "unk_id", "add_bos", "add_eos"):
            if fresh[k] != stored[k]:
                problems.append(f"{name}: {k} {stored[k]!r} != {fresh[k]!r}")
        if set(HARD_STRINGS) - set(texts):
            problems.append(f"{name}: cases.json lacks hard strings")
        for f in stored["files"]:
            if not (d / f).is_file():
                problems.append(f"{name}: missing {f}")
        tok = tok_cache[name] = Tokenizer.from_file(str(d / "tokenizer.json"))
        if name == "llama3-bpe":
            plain = with_model_options(tok, ignore_merges=False)
            changed = [c["text"] for c in stored["cases"]
                       if hf_encode(plain, c["text"], add_special=False, parse_special=False) != c["ids"]]
            if not changed:
                problems.append("llama3-bpe: ignore_merges changes no case")
            print(f"  llama3-bpe: ignore_merges=False would change {len(changed)} cases, e.g. {changed[:4]}")
        # round trips: decode(encode(x)) == x
        no_rt = [c["text"] for c in stored["cases"] if tok.decode(c["ids"], skip_special_tokens=False) != c["text"]]
        no_rt_skip = [c["text"] for c in stored["cases"] if c["decoded_skip_special"] != c["text"]]
        dis = [c for c in stored["cases"] if "ids_sentencepiece" in c and c["ids_sentencepiece"] != c["ids"]]
        dis_inv = [c for c in stored["invalid_utf8"] if "ids_sentencepiece" in c and c["ids_sentencepiece"] != c["ids"]]
        if name == "spm-bpe":
            sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
            for c in stored["cases"]:
                # sentencepiece's own decode vs tokenizers' decode of the same ids
                if sp.decode(c["ids_sentencepiece"]) != tok.decode(c["ids_sentencepiece"], skip_special_tokens=False):
                    if c["text"] and SPM_USER not in c["text"] and SPM_CONTROL not in c["text"]:
                        problems.append(f"spm-bpe: decode differs for {c['text']!r}")
        if name == "gpt2-bpe":
            # vocab.json + merges.txt alone give the same ids
            alt = Tokenizer(models.BPE.from_file(str(d / "vocab.json"), str(d / "merges.txt")))
            alt.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
            alt.decoder = decoders.ByteLevel()
            alt.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=True)])
            alt.encode_special_tokens = True
            for c in stored["cases"]:
                if alt.encode(c["text"], add_special_tokens=False).ids != c["ids"]:
                    problems.append(f"gpt2-bpe: vocab.json+merges.txt differ on {c['text']!r}")
            first = (d / "merges.txt").read_text(encoding="utf-8").split("\n", 1)[0]
            if first != "#version: 0.2":
                problems.append("gpt2-bpe: merges.txt header")
        summary.append((name, len(stored["cases"]), len(stored["invalid_utf8"]), no_rt, no_rt_skip, dis, dis_inv))

    for name, (src, arch, model, pre) in GGUF_SPECS.items():
        d = OUT / name
        stored = json.loads((d / "cases.json").read_text(encoding="utf-8"))
        src_cases = json.loads((OUT / src / "cases.json").read_text(encoding="utf-8"))
        if stored["cases"] != src_cases["cases"] or stored["invalid_utf8"] != src_cases["invalid_utf8"]:
            problems.append(f"{name}: cases differ from {src}'s")
        meta = read_gguf_meta(d / "vocab.gguf")
        src_tok = Tokenizer.from_file(str(OUT / src / "tokenizer.json"))
        want = {"general.architecture": arch, "tokenizer.ggml.model": model, "tokenizer.ggml.pre": pre,
                "tokenizer.ggml.bos_token_id": stored["bos_id"], "tokenizer.ggml.eos_token_id": stored["eos_id"]}
        for k, v in want.items():
            if meta.get(k) != v:
                problems.append(f"{name}: {k} = {meta.get(k)!r}, want {v!r}")
        if bool(meta.get("tokenizer.ggml.add_bos_token")) != src_cases["add_bos"]:
            problems.append(f"{name}: add_bos_token")
        if bool(meta.get("tokenizer.ggml.add_eos_token", False)) != src_cases["add_eos"]:
            problems.append(f"{name}: add_eos_token")
        tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
        if model == "llama":
            sp = spm.SentencePieceProcessor(model_file=str(OUT / src / "tokenizer.model"))
            if tokens != [sp.id_to_piece(i) for i in range(sp.get_piece_size())]:
                problems.append(f"{name}: tokens differ from tokenizer.model")
        else:
            j = json.loads((OUT / src / "tokenizer.json").read_text(encoding="utf-8"))
            merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
            if meta["tokenizer.ggml.merges"] != merges:
                problems.append(f"{name}: merges differ from tokenizer.json")
            if tokens != [src_tok.id_to_token(i) for i in range(src_tok.get_vocab_size(with_added_tokens=True))]:
                problems.append(f"{name}: tokens differ from tokenizer.json")
        # rebuild a tokenizer from the GGUF alone and rerun every case
        tok = gguf_rebuild_tokenizer(meta, src_tok)
        bad = 0
        for c in stored["cases"]:
            for key, add, parse in (("ids", False, False), ("ids_with_special", True, False),
                                    ("ids_parse_special", False, True)):
                if hf_encode(tok, c["text"], add_special=add, parse_special=parse) != c[key]:
                    bad += 1
                    if bad <= 3:
                        problems.append(f"{name}: GGUF-only tokenizer differs on {c['text']!r} ({key})")
        type_counts = {int(t): types.count(t) for t in sorted(set(types))}
        summary.append((name, len(stored["cases"]), len(stored["invalid_utf8"]), None, None, None, type_counts))

    print("\n== tokenizer fixtures check")
    for name, n, ninv, no_rt, no_rt_skip, dis, extra in summary:
        size = sum(p.stat().st_size for p in (OUT / name).iterdir())
        line = f"  {name:13s} {n:4d} cases + {ninv} invalid-UTF-8, {size:7d} bytes"
        if no_rt is None:
            print(line + f"; token types {extra}")
            continue
        line += f"; decode(ids) != text for {len(no_rt)}"
        if name == "spm-bpe":
            line += f"; sentencepiece != tokenizers on {len(dis)} cases and {len(extra)} invalid-UTF-8 strings"
        print(line)
        if no_rt:
            print(f"      no round trip: {no_rt}")
        for c in dis:
            print(f"      DISAGREEMENT {c['text']!r}: tokenizers {c['ids']} "
                  f"{[tok_cache[name].id_to_token(i) for i in c['ids']]}, sentencepiece {c['ids_sentencepiece']} "
                  f"{[tok_cache[name].id_to_token(i) for i in c['ids_sentencepiece']]}")
    du = subprocess.run(["du", "-sh", str(OUT)], capture_output=True, text=True).stdout.strip()
    print(f"  du -sh: {du}")
    for p in problems:
        print("  PROBLEM", p)
    print("  OK" if not problems else f"  {len(problems)} problems")
    return not problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only re-verify the committed fixtures")
    args = ap.parse_args()
    if args.check:
        sys.exit(0 if check() else 1)
    generate()


if __name__ == "__main__":
    main()
