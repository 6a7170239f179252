#!/usr/bin/env python3
"""Build Hone's default model, models/hone-tiny/: a small random-weight Llama with a REAL
SentencePiece BPE tokenizer (Llama-2 settings) trained on Python standard-library
docstrings, plus its golden file Tests/HoneKitTests/Fixtures/logprobs/hone-tiny.json.

Writes models/hone-tiny/:
  tokenizer.model            SentencePiece BPE, vocab 2048, byte fallback, Llama-2 trainer settings
  tokenizer.json             converted with transformers' LlamaConverter (legacy Llama-2 layout)
  tokenizer_config.json      add_bos_token true, add_eos_token false, legacy true, model_max_length 1024
  special_tokens_map.json
  config.json, generation_config.json, model.safetensors   (float32, random weights)

Corpus: docstrings of the modules in sys.stdlib_module_names, read statically with `ast`
(the same text as their `__doc__`, cleaned like inspect.cleandoc; nothing is imported, so no
module side effects). The text is the Python standard library's (PSF licence). The corpus
depends on the Python version's standard library: the script prints its sha256 and warns when
it differs from the one the committed tokenizer was trained on.

Rerun:  tools/oracle/setup && tools/oracle/.venv/bin/python tools/oracle/make_default_model.py
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import shutil
import sys
import sysconfig
from pathlib import Path

import sentencepiece as spm
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402

from tokenizers import AddedToken, Tokenizer, processors  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.convert_slow_tokenizer import (  # noqa: E402
    LlamaConverter,
    SentencePieceExtractor,
    generate_merges,
)

OUT = oc.REPO / "models" / "hone-tiny"
GOLDEN = oc.FIXTURES / "logprobs" / "hone-tiny.json"

# sha256 of the corpus the committed tokenizer.model was trained on (CPython 3.11.7 stdlib)
EXPECTED_CORPUS_SHA256 = "a394f74ff45b10cfc22449da83962ec8f2084ab3ba8576cf1a21914d939f334a"

VOCAB = 2048
SEED = 4242
ROW_SEED = 20250202
ROW_LENGTHS = (2, 17, 100)
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Return a list of the words in the string, using sep as the delimiter.",
    "In 2024, the café served 1,234 cups of tea — naïve résumé!",
]


# ---------------------------------------------------------------------------
# corpus
# ---------------------------------------------------------------------------

def stdlib_files() -> list[Path]:
    std = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for name in sorted(sys.stdlib_module_names):
        single = std / f"{name}.py"
        if single.is_file():
            files.append(single)
        pkg = std / name
        if pkg.is_dir() and (pkg / "__init__.py").is_file():
            for f in sorted(pkg.rglob("*.py")):
                if any(part in ("test", "tests", "idle_test") for part in f.relative_to(std).parts):
                    continue
                files.append(f)
    return files


def docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                out.append(doc)
    return out


def build_corpus() -> list[str]:
    lines = []
    for f in stdlib_files():
        for doc in docstrings(f):
            for line in doc.splitlines():
                if line.strip():
                    lines.append(line)
    return lines


# ---------------------------------------------------------------------------
# tokenizer
# ---------------------------------------------------------------------------

def train_sentencepiece(lines: list[str], vocab_size: int = VOCAB, **symbols) -> bytes:
    """SentencePiece BPE with Llama-2's trainer settings; `symbols` adds control_symbols / user_defined_symbols."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buf,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
        **symbols,
        # the rest of Llama-2's trainer_spec
        character_coverage=0.99995,
        max_sentencepiece_length=16,
        split_by_unicode_script=True,
        split_by_number=True,
        split_by_whitespace=True,
        treat_whitespace_as_suffix=False,
        vocabulary_output_piece_score=True,
        hard_vocab_limit=True,
        use_all_vocab=False,
        max_sentence_length=16384,
        num_threads=1,
        minloglevel=2,
    )
    return buf.getvalue()


class _SlowLlamaTokenizerShim:
    """What LlamaConverter needs from transformers-4's slow LlamaTokenizer (Llama-2 behaviour)."""

    def __init__(self, vocab_file: Path):
        self.vocab_file = str(vocab_file)
        self.legacy = True
        self.add_prefix_space = True
        self._sp = spm.SentencePieceProcessor(model_file=self.vocab_file)

    def convert_ids_to_tokens(self, i: int) -> str:
        return self._sp.id_to_piece(i)


def special(content: str) -> AddedToken:
    return AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)


class _Extractor(SentencePieceExtractor):
    """transformers-4's SentencePieceExtractor.extract(vocab_scores). In transformers 5.23,
    SpmConverter.tokenizer() still calls extract(vocab_scores) but the base class's extract now
    takes (model_type, **kwargs), so BPE conversion raises; this restores the 4.x behaviour
    (the same generate_merges, ordered by piece score)."""

    def extract(self, vocab_scores=None):
        vocab = {p.piece: i for i, p in enumerate(self.proto.pieces)}
        return vocab, generate_merges(vocab, vocab_scores)


class _LlamaConverter(LlamaConverter):
    SpmExtractor = _Extractor


def build_tokenizer_json(model_file: Path) -> Tokenizer:
    tok = _LlamaConverter(_SlowLlamaTokenizerShim(model_file)).converted()
    # what LlamaTokenizerFast.update_post_processor adds (add_bos_token=True, add_eos_token=False)
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)])
    tok.add_special_tokens([special("<unk>"), special("<s>"), special("</s>")])
    return tok


def token_entry(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}


TOKENIZER_CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "added_tokens_decoder": {"0": token_entry("<unk>"), "1": token_entry("<s>"), "2": token_entry("</s>")},
    "bos_token": "<s>",
    "clean_up_tokenization_spaces": False,
    "eos_token": "</s>",
    "legacy": True,
    "model_max_length": 1024,
    "pad_token": None,
    "padding_side": "right",
    "sp_model_kwargs": {},
    "tokenizer_class": "LlamaTokenizer",
    "unk_token": "<unk>",
    "use_default_system_prompt": False,
}

SPECIAL_TOKENS_MAP = {
    k: {"content": v, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    for k, v in (("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>"))
}


def check_tokenizer(out: Path, corpus: list[str]) -> dict:
    """tokenizer.json (HF `tokenizers`) must equal sentencepiece (+BOS) exactly.

    Also reports how transformers 5's AutoTokenizer compares: for tokenizer_class LlamaTokenizer
    it rebuilds the pipeline in code (Metaspace pre-tokenizer, prepend_scheme "always", no
    normalizer) instead of using tokenizer.json's legacy Prepend+Replace normalizer, so a text
    that STARTS with a space tokenizes differently (" x" -> [1, '▁x'] instead of [1, '▁▁', 'x'])."""
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    fast = Tokenizer.from_file(str(out / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(out)
    probes = TEXTS + [
        "", " ", "  ", "hello", " hello", "hello  world", "  two leading spaces", "trailing space ",
        "tabs\tand\nnewlines\n", "digits 1234567890 and 3.14159", "emoji 😀 and 中文 and ∑",
        "x" * 100, "def f(x):\n    return x ** 2\n", " \n leading newline",
    ]
    probes += corpus[:: max(1, len(corpus) // 2000)]
    bad, auto_diff = 0, []
    for text in probes:
        want = [1] + sp.encode(text)
        got = fast.encode(text).ids
        if want != got:
            bad += 1
            if bad <= 5:
                print("  MISMATCH", repr(text[:60]), want[:12], got[:12])
        if text and fast.decode(got, skip_special_tokens=True) != sp.decode(want[1:]):
            bad += 1
            if bad <= 5:
                print("  DECODE MISMATCH", repr(text[:60]))
        if auto(text)["input_ids"] != got:
            auto_diff.append(text)
    assert bad == 0, f"{bad} tokenizer mismatches"
    # HF-only behaviour: special-token text is matched as the special token (sentencepiece
    # would split "<s>" as plain text)
    assert fast.encode("<s>hi").ids[:2] == [1, 1]
    print(f"  tokenizer.json == sentencepiece (+BOS) on {len(probes)} strings")
    assert all(t[:1].isspace() for t in auto_diff), [t for t in auto_diff if not t[:1].isspace()][:3]
    print(f"  transformers AutoTokenizer differs on {len(auto_diff)} of them, all starting with whitespace")
    return {"probes": len(probes), "autotokenizer_differs_on": len(auto_diff),
            "autotokenizer_example": {"text": " x", "tokenizer_json": fast.encode(" x").ids,
                                      "transformers_autotokenizer": auto(" x")["input_ids"]}}


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------

def build_model() -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=VOCAB, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=None,
    )
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    oc.randomize_(model, SEED)
    return model


def main() -> None:
    print("versions", oc.versions(), "python", sys.version.split()[0])
    corpus = build_corpus()
    blob = "\n".join(corpus).encode("utf-8")
    sha = hashlib.sha256(blob).hexdigest()
    print(f"corpus: {len(corpus)} lines, {len(blob)} bytes, sha256 {sha}")
    if EXPECTED_CORPUS_SHA256 != "SET_AFTER_FIRST_RUN" and sha != EXPECTED_CORPUS_SHA256:
        print("WARNING: the corpus differs from the one the committed tokenizer was trained on "
              "(different Python standard library?); tokenizer.model will change.")

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    (OUT / "tokenizer.model").write_bytes(train_sentencepiece(corpus))
    build_tokenizer_json(OUT / "tokenizer.model").save(str(OUT / "tokenizer.json"))
    (OUT / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")
    (OUT / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS_MAP, indent=2) + "\n")

    model = build_model()
    model.save_pretrained(OUT)
    tok_report = check_tokenizer(OUT, corpus)

    # ---- golden
    rows = oc.make_rows(VOCAB, ROW_LENGTHS, ROW_SEED)
    fast = Tokenizer.from_file(str(OUT / "tokenizer.json"))
    texts = []
    for text in TEXTS:
        ids = fast.encode(text, add_special_tokens=True).ids
        r = oc.score_row(model, ids)
        texts.append({"text": text, **r, "pieces": fast.encode(text).tokens})
    g = {
        "model": "models/hone-tiny",
        "dtype": "float32",
        **oc.versions(),
        "rows": [oc.score_row(model, r) for r in rows],
        "texts": texts,
    }
    inc = oc.score_incremental(model, rows[2], 10)
    inc["max_abs_diff_vs_one_pass"] = oc.max_abs_diff(inc["logprobs"], g["rows"][2]["logprobs"])
    g["incremental"] = inc
    g["rope_inv_freq"] = [float(x) for x in model.model.rotary_emb.original_inv_freq]
    g["logprob_spread"] = oc.logprob_spread(model, rows)
    g["tokenizer"] = {
        "texts_encoded_with": "tokenizers.Tokenizer.from_file('tokenizer.json').encode(text, add_special_tokens=True)",
        "corpus_sha256": sha,
        "corpus_python": sys.version.split()[0],
        "check": tok_report,
        "note": ("tokenizer.json run through the `tokenizers` library equals sentencepiece on tokenizer.model "
                 "(plus BOS). transformers 5's AutoTokenizer does NOT for texts that start with whitespace: "
                 "it rebuilds LlamaTokenizer with a Metaspace(prepend_scheme='always') pre-tokenizer and drops "
                 "tokenizer.json's legacy Prepend+Replace normalizer; see autotokenizer_example."),
    }
    oc.write_json(GOLDEN, g)

    # ---- self-check: reload from disk and re-score
    m = AutoModelForCausalLM.from_pretrained(OUT, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.data = p.data.clone()
    worst = 0.0
    for r in g["rows"] + g["texts"]:
        s = oc.score_row(m, r["tokens"])
        worst = max(worst, oc.max_abs_diff(s["logprobs"], r["logprobs"]))
    assert worst <= 1e-5, worst
    assert g["logprob_spread"] > 0.5
    assert inc["max_abs_diff_vs_one_pass"] < 1e-4
    print(f"  self-check: reloaded vs golden max |diff| = {worst:.3g}; incremental max |diff| = "
          f"{inc['max_abs_diff_vs_one_pass']:.3g}; spread {g['logprob_spread']:.3f}")
    for t in texts:
        print(f"  {t['text']!r}: {t['tokens']}")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"  models/hone-tiny: {total} bytes")
    assert total < 6 * 1024 * 1024


if __name__ == "__main__":
    main()
