#!/usr/bin/env python3
"""Fixtures for `hone data sample` and `hone data diversity` (Tests/HoneKitTests/DataToolsTests.swift).

Writes Tests/HoneKitTests/Fixtures/data/
  ranking4.jsonl         30 synthetic PRO ranking-4 records (seeded): prefix lists with odd whitespace and
                         non-ASCII text, 4 suffixes, rewards with ties, meta {"id": i}
  sample_expected.json   ScalingAlignment's subsets of ranking4.jsonl computed with CPython's `random` and numpy,
                         the way data_preprocess/split.py (4 -> 3 -> 2, one generator) and sample.py (a fresh
                         generator, random.shuffle, first N) do it, for several seeds, N and K
  diversity_expected.json
                         N, T, U, D = sqrt(N) * U / T (ScalingAlignment diversity.py / sample.py, bigrams) for
                         ranking4.jsonl and for the HH-RLHF test files in ../shared/data (when present), each alone
                         and pooled ("global"), tokenized with models/hone-tiny's tokenizer

Tokenizer reference (methods.md section 8): the `sentencepiece` library on tokenizer.model with BOS prepended (the
model's tokenizer_config.json has add_bos_token true); the `tokenizers` library on tokenizer.json is checked to give
the same ids for every prompt. Ids are cut to the first 512, as `tokenizer.encode(truncation=True, max_length=512)`
does in ScalingAlignment.

Prompt text, as ScalingAlignment's get_info builds it from a PRO record:
  "".join(prefix[0]).replace("<|prompter|>", "\\n\\nHuman: ").replace("<|assistant|>", "\\n\\nAssistant: ").rstrip()
For a raw HH-RLHF record {chosen, rejected}: the longest common prefix of the two strings, backed off to the end
of the last "\\n\\nAssistant:" inside it, then rstrip() (the rule of `hone data hh-rlhf`).

Rerun:  /work/oracle-venv/bin/python tools/oracle/make_data_fixtures.py     (or tools/oracle/.venv/bin/python)
Deterministic: rerunning rewrites byte-identical files.
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sentencepiece as spm  # noqa: E402
import tokenizers  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "HoneKitTests" / "Fixtures" / "data"
SHARED = REPO.parent / "shared" / "data"
MODEL = REPO / "models" / "hone-tiny"
MAX_LENGTH = 512
HH_FILES = ["hh_rlhf/harmless-base/test.jsonl.gz", "hh_rlhf/helpful-base/test.jsonl.gz"]


# ---------------------------------------------------------------------------
# Synthetic ranking-4 data
# ---------------------------------------------------------------------------

WORDS = ("how do I bake bread without yeast what is the capital of France tell me a joke about cats why is the sky "
         "blue café naïve über 東京 emoji 🙂 résumé explain recursion to a child list three prime numbers").split()


def make_ranking4() -> list[dict]:
    rng = random.Random(20250301)
    records = []
    for i in range(30):
        turns = []
        for t in range(rng.choice([1, 1, 2, 3])):
            question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
            if rng.random() < 0.3:
                question = "  " + question + " \n"          # whitespace that the rstrip/join must keep inside
            turns.append("<|prompter|>" + question)
            turns.append("<|assistant|>" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))))
        turns[-1] = "<|assistant|>"                         # PRO's prefix ends with the bare tag
        suffixes = [f"answer {i}.{k} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for k in range(4)]
        # Rewards in descending order as PRO files have them, with ties in some records.
        rewards = sorted((round(rng.uniform(-2, 2), 3) for _ in range(4)), reverse=True)
        if i % 5 == 0:
            rewards[2] = rewards[1]
        if i % 7 == 0:
            rewards = [0.5, 0.5, 0.5, 0.5]
        records.append({"prefix": [turns] * 4, "suffix": suffixes, "reward": rewards,
                        "meta": {"id": i}, "sft_index": 0})
    return records


# ---------------------------------------------------------------------------
# ScalingAlignment's split.py and sample.py (restated; same calls in the same order)
# ---------------------------------------------------------------------------

def split_pass(data: list[dict], keep: int, generator: random.Random) -> list[dict]:
    out = []
    for sample in data:
        indices = list(range(len(sample["suffix"])))
        selected = generator.sample(indices, keep)
        rewards = np.array([sample["reward"][i] for i in selected])
        order = np.argsort(-rewards)
        out.append({"prefix": sample["prefix"][:keep],
                    "suffix": [[sample["suffix"][i] for i in selected][j] for j in order],
                    "reward": [float(rewards[j]) for j in order],
                    "meta": sample["meta"]})
    return out


def subset(data: list[dict], prompts: int, responses: int, seed: int) -> list[dict]:
    generator = random.Random(seed)                 # split.py: random.seed(42) once, then 4 -> 3 -> 2
    level = len(data[0]["suffix"])
    while level > responses:
        data = split_pass(data, level - 1, generator)
        level -= 1
    shuffled = list(data)
    random.Random(seed).shuffle(shuffled)           # sample.py: random.seed(42); random.shuffle(dataset)
    return shuffled[:prompts]


# ---------------------------------------------------------------------------
# Diversity
# ---------------------------------------------------------------------------

def pro_prompt(record: dict) -> str:
    prefix = "".join(record["prefix"][0])
    return prefix.replace("<|prompter|>", "\n\nHuman: ").replace("<|assistant|>", "\n\nAssistant: ").rstrip()


def hh_prompt(record: dict) -> str:
    chosen, rejected = record["chosen"], record["rejected"]
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    marker = "\n\nAssistant:"
    cut = chosen.rfind(marker, 0, n)
    assert cut >= 0, "no shared prompt"
    return chosen[:cut + len(marker)].rstrip()


class Tokenizer:
    def __init__(self) -> None:
        self.sp = spm.SentencePieceProcessor(model_file=str(MODEL / "tokenizer.model"))
        self.hf = tokenizers.Tokenizer.from_file(str(MODEL / "tokenizer.json"))
        config = json.loads((MODEL / "tokenizer_config.json").read_text())
        assert config["add_bos_token"] is True and config["add_eos_token"] is False
        self.disagreements = 0

    def ids(self, text: str) -> list[int]:
        ids = [self.sp.bos_id()] + self.sp.encode(text)
        if self.hf.encode(text, add_special_tokens=True).ids != ids:
            self.disagreements += 1
        return ids[:MAX_LENGTH]


def bigram_stats(tokenized: list[list[int]]) -> dict:
    unique = set()
    total = 0
    for ids in tokenized:
        grams = list(zip(ids, ids[1:]))              # nltk.util.ngrams(ids, 2)
        total += len(grams)
        unique.update(grams)
    n = len(tokenized)
    return {"prompts": n, "tokens": sum(map(len, tokenized)), "total_bigrams": total, "unique_bigrams": len(unique),
            "diversity": math.sqrt(n) * len(unique) / total}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ranking4 = make_ranking4()
    with open(OUT / "ranking4.jsonl", "w", encoding="utf-8") as handle:
        for record in ranking4:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    cases = []
    for seed in (42, 7, 2**40 + 3):
        for prompts, responses in ((30, 4), (20, 3), (12, 2), (30, 2), (1, 3)):
            chosen = subset(ranking4, prompts, responses, seed)
            cases.append({"seed": seed, "prompts": prompts, "responses": responses,
                          "ids": [r["meta"]["id"] for r in chosen],
                          "suffix": [r["suffix"] for r in chosen],
                          "reward": [r["reward"] for r in chosen]})
    (OUT / "sample_expected.json").write_text(json.dumps({"input": "ranking4.jsonl", "cases": cases}, ensure_ascii=False)
                                             + "\n", encoding="utf-8")

    tokenizer = Tokenizer()
    files = {"ranking4.jsonl": [tokenizer.ids(pro_prompt(r)) for r in ranking4]}
    truncated = {"ranking4.jsonl": 0}
    for name in HH_FILES:
        path = SHARED / name
        if not path.exists():
            print(f"skipping {path}: absent")
            continue
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        full = [[tokenizer.sp.bos_id()] + tokenizer.sp.encode(hh_prompt(r)) for r in records]
        truncated[name] = sum(len(ids) > MAX_LENGTH for ids in full)
        files[name] = [tokenizer.ids(hh_prompt(r)) for r in records]
    assert tokenizer.disagreements == 0, f"sentencepiece and tokenizers disagree on {tokenizer.disagreements} prompts"
    result = {
        "tokenizer": "models/hone-tiny (sentencepiece on tokenizer.model + BOS; tokenizers on tokenizer.json agrees)",
        "max_length": MAX_LENGTH,
        "files": {name: dict(bigram_stats(ids), truncated_prompts=truncated[name]) for name, ids in files.items()},
        "global": bigram_stats([ids for tokenized in files.values() for ids in tokenized]),
        "global_files": list(files),
    }
    (OUT / "diversity_expected.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for name, stats in result["files"].items():
        print(name, stats)
    print("global", result["global"])


if __name__ == "__main__":
    main()
