#!/usr/bin/env python3
"""Tokenizer throughput: hone next to Hugging Face `tokenizers` (Rust), one thread each, same tokenizer.json.

    tools/oracle/.venv/bin/python tools/bench/tokenizer_speed.py [--hone .build/release/hone]

Texts: every string of the CUT iteration data and the HH-RLHF test dialogues in ../shared/data (about 16 MB),
encoded one document at a time without special tokens. Tokenizers: Llama 2's 32K SentencePiece BPE and GPT-2's
50K byte-level BPE, rebuilt as tokenizer.json from llama.cpp's vocabulary GGUFs in ../shared/data/tokenizer-vectors
(so both tools read the very same file), and the default model's tokenizer. Both tools must give identical ids
(checked on every document). Needs tokenizers, gguf, numpy (tools/oracle/.venv has them).
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.join(ROOT, "..", "shared", "data")


def documents():
    docs = []
    for index in range(1, 6):
        with gzip.open(os.path.join(SHARED, "cut", "iter", f"train-alpaca-sample-iter{index}.json.gz"), "rt") as handle:
            for record in json.load(handle):
                docs += [record[key] for key in ("instruction", "input", "output", "judgment") if record.get(key)]
    for part in ("harmless-base", "helpful-base"):
        with gzip.open(os.path.join(SHARED, "hh_rlhf", part, "test.jsonl.gz"), "rt") as handle:
            for line in handle:
                record = json.loads(line)
                docs += [record["chosen"], record["rejected"]]
    return docs


def gguf_strings(reader, key):
    field = reader.fields[key]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def llama_tokenizer_json(path, out):
    """Llama 2's SentencePiece vocabulary as an HF BPE tokenizer.json (merges ordered by the merged piece's score,
    as transformers' converter orders them)."""
    import gguf
    reader = gguf.GGUFReader(path)
    tokens = gguf_strings(reader, "tokenizer.ggml.tokens")
    scores = [float(reader.fields["tokenizer.ggml.scores"].parts[i][0]) for i in reader.fields["tokenizer.ggml.scores"].data]
    types = [int(reader.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in reader.fields["tokenizer.ggml.token_type"].data]
    vocab = {token: index for index, token in enumerate(tokens)}
    merges = []
    for index, piece in enumerate(tokens):
        if types[index] != 1 or len(piece) < 2:
            continue
        for split in range(1, len(piece)):
            left, right = piece[:split], piece[split:]
            if left in vocab and right in vocab:
                merges.append((scores[index], vocab[left], vocab[right], left, right))
    merges.sort(key=lambda m: (-m[0], m[1], m[2]))
    special = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i in range(3)]
    data = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": special,
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                           {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                                                    {"type": "ByteFallback"}, {"type": "Fuse"},
                                                    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[m[3], m[4]] for m in merges]},
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w") as handle:
        json.dump(data, handle, ensure_ascii=False)
    return out


def gpt2_tokenizer_json(path, out):
    import gguf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    reader = gguf.GGUFReader(path)
    tokens = gguf_strings(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in gguf_strings(reader, "tokenizer.ggml.merges")]
    tokenizer = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    os.makedirs(out, exist_ok=True)
    tokenizer.save(os.path.join(out, "tokenizer.json"))
    return out


def split_tokenizer_json(path, out, patterns, ignore_merges=False):
    """A byte-level vocabulary GGUF as tokenizer.json whose pre-tokenizer is a Sequence of Isolated regex Splits
    then ByteLevel without its regex: what llama.cpp's regex lists mean, and the generic path in hone unless the
    list is one pattern a hand-written scanner implements."""
    import gguf
    from tokenizers import Tokenizer, decoders, models
    reader = gguf.GGUFReader(path)
    tokens = gguf_strings(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in gguf_strings(reader, "tokenizer.ggml.merges")]
    tokenizer = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges, ignore_merges=ignore_merges))
    tokenizer.decoder = decoders.ByteLevel()
    document = json.loads(tokenizer.to_str())
    document["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": False} for p in patterns
    ] + [{"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w") as handle:
        json.dump(document, handle, ensure_ascii=False)
    return out


LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# The same language as LLAMA3 and GPT-2's pattern, spelled so that no hand-written scanner recognises it.
LLAMA3_GENERIC = LLAMA3.replace(r"\p{N}{1,3}", r"(?:\p{N}){1,3}")
GPT2_GENERIC = r"(?:'s|'t|'re|'ve|'m|'ll|'d)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
DEEPSEEK_CODER = [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", r"\p{N}"]


def measure_hf(directory, docs, repetitions):
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    best, ids = None, None
    for _ in range(repetitions):
        start = time.perf_counter()
        ids = [tokenizer.encode(doc, add_special_tokens=False).ids for doc in docs]
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, ids


def measure_hone(hone, directory, corpus, repetitions):
    result = subprocess.run([hone, "bench", "--model", directory, "--tokenize", corpus, "-r", str(repetitions),
                             "--threads", "1", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"hone bench --tokenize failed: {result.stderr}")
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hone", default=os.path.join(ROOT, ".build", "release", "hone"))
    parser.add_argument("-r", type=int, default=3, help="repetitions; the best is kept for both tools")
    parser.add_argument("--only", nargs="*", help="run only the tokenizers whose label contains one of these words")
    args = parser.parse_args()
    docs = documents()
    megabytes = sum(len(d.encode()) for d in docs) / 1e6
    work = tempfile.mkdtemp(prefix="hone-tokenizer-bench-")
    corpus = os.path.join(work, "corpus.jsonl")
    with open(corpus, "w") as handle:
        for doc in docs:
            handle.write(json.dumps({"text": doc}, ensure_ascii=False) + "\n")
    vectors = os.path.join(SHARED, "tokenizer-vectors")
    tokenizers = [
        ("Llama 2 SentencePiece BPE (32K)", llama_tokenizer_json(os.path.join(vectors, "ggml-vocab-llama-spm.gguf"), os.path.join(work, "llama"))),
        ("GPT-2 byte-level BPE (50K)", gpt2_tokenizer_json(os.path.join(vectors, "ggml-vocab-gpt-2.gguf"), os.path.join(work, "gpt2"))),
        ("hone-tiny SentencePiece BPE (2K)", os.path.join(ROOT, "models", "hone-tiny")),
        ("GPT-2 (50K), generic regex path", split_tokenizer_json(
            os.path.join(vectors, "ggml-vocab-gpt-2.gguf"), os.path.join(work, "gpt2-generic"), [GPT2_GENERIC])),
        ("Llama 3 (128K), scanner", split_tokenizer_json(
            os.path.join(vectors, "ggml-vocab-llama-bpe.gguf"), os.path.join(work, "llama3"), [LLAMA3], True)),
        ("Llama 3 (128K), generic regex path", split_tokenizer_json(
            os.path.join(vectors, "ggml-vocab-llama-bpe.gguf"), os.path.join(work, "llama3-generic"), [LLAMA3_GENERIC], True)),
        ("DeepSeek Coder (32K), 5 regex Splits", split_tokenizer_json(
            os.path.join(vectors, "ggml-vocab-deepseek-coder.gguf"), os.path.join(work, "deepseek-coder"), DEEPSEEK_CODER)),
    ]
    if args.only:
        tokenizers = [entry for entry in tokenizers if any(word in entry[0] for word in args.only)]
    print(f"{len(docs)} documents, {megabytes:.1f} MB (CUT iterations 1-5 + HH-RLHF test), one thread, best of {args.r}")
    print()
    print("| tokenizer | hone MB/s | HF tokenizers MB/s | ratio | same ids |")
    print("|---|---|---|---|---|")
    for label, directory in tokenizers:
        hf_seconds, hf_ids = measure_hf(directory, docs, args.r)
        ours = measure_hone(args.hone, directory, corpus, args.r)
        same = ours["ids_digest"] == digest(hf_ids)
        print(f"| {label} | {megabytes / ours['seconds']:.1f} | {megabytes / hf_seconds:.1f} | "
              f"{hf_seconds / ours['seconds']:.1f}× | {'yes' if same else 'NO'} |")
        sys.stdout.flush()


def digest(all_ids):
    """FNV-1a over every id of every document, in order: the same function hone bench --tokenize prints."""
    value = 0xcbf29ce484222325
    for ids in all_ids:
        for token in ids + [-1]:
            value ^= token & 0xFFFFFFFF
            value = (value * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


if __name__ == "__main__":
    main()
