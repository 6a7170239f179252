#!/usr/bin/env python3
"""Build Hone's SFT data-preparation fixtures: Alpaca-LoRA's tokenization and masking, and transformers'
length grouping.

Outputs (relative to the repository root):
  Tests/HoneKitTests/Fixtures/sft/alpaca-tokenization.json
  Tests/HoneKitTests/Fixtures/sft/group-by-length.json

Rerun:  /work/oracle-venv/bin/python tools/oracle/make_sft_data_fixtures.py   (or tools/oracle/.venv/bin/python)
Needs ../shared/data/alpaca/alpaca_data_first200.json (the shared data; its text is NOT copied into the
repository: the fixture holds record indices, the test reads the records from ../shared).

alpaca-tokenization.json
------------------------
A re-implementation of tloen/alpaca-lora finetune.py @ 8bb8579 (`tokenize`, `generate_and_tokenize_prompt`)
and utils/prompter.py (`generate_prompt`) from methods.md §3, with hone-tiny's tokenizer
(models/hone-tiny). The HF call `tokenizer(text, truncation=True, max_length=cutoff_len)` of a Llama
tokenizer (BOS added, no EOS) is `[BOS] + ids(text)[:cutoff_len - 1]`, computed three ways that must agree:
the `tokenizers` library on tokenizer.json (add_special_tokens=True, sliced), the same library with
`enable_truncation(max_length=cutoff_len)`, and the `sentencepiece` library on tokenizer.model (+ BOS).
transformers' AutoTokenizer is not used (methods.md §8). Special-token names in the data ("</s>") are
encoded as text (`encode_special_tokens = True`, as sentencepiece does); the slow Llama tokenizer
Alpaca-LoRA used would turn them into ids (record "special-token-text").

For each record and cutoff_len (64, 256): `input_ids` (they do not depend on train_on_inputs or
add_eos_token: the full text always gets EOS when shorter than the cutoff) and `masked`: how many leading
labels are -100 for each (train_on_inputs, add_eos_token); labels are `[-100] * masked + input_ids[masked:]`
(asserted here for every case).

group-by-length.json
--------------------
transformers' own `get_length_grouped_indices(lengths, batch_size, mega_batch_mult, generator)` with a
seeded torch.Generator, and the permutation that generator yields first (`torch.randperm(n)` from a fresh
generator with the same seed), so that Hone's function can be fed the same permutation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import sentencepiece
import tokenizers
import torch
import transformers
from transformers.trainer_pt_utils import get_length_grouped_indices

from oracle_common import REPO, FIXTURES, write_json

torch.set_num_threads(1)

SHARED = REPO.parent / "shared"
SHARED_FILE = "data/alpaca/alpaca_data_first200.json"
TOKENIZER_DIR = REPO / "models" / "hone-tiny"
OUT = FIXTURES / "sft"
CUTOFFS = [64, 256]

# Alpaca-LoRA templates/alpaca.json (methods.md §3.1).
PROMPT_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
                "### Input:\n{input}\n\n### Response:\n")
PROMPT_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
                   "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")

# Records of our own (not from the shared data): the edge cases.
LONG_OUTPUT = " ".join(
    f"Step {i}: measure the {w} twice, write the result down, and compare it with yesterday's value."
    for i, w in enumerate(["length", "width", "height", "weight", "temperature", "pressure", "volume", "speed",
                           "angle", "voltage", "current", "frequency", "density", "humidity", "brightness"]))
LONG_INSTRUCTION = "Summarise the following list of chores in one sentence: " + ", ".join(
    f"{verb} the {thing}" for verb in ["clean", "paint", "repair", "sort", "label"]
    for thing in ["kitchen", "garage", "fence", "bookshelf", "window frames", "garden shed", "attic", "cellar"])
HAND_RECORDS = [
    {"id": "long-output", "record": {"instruction": "Describe a careful measuring routine.", "input": "",
                                     "output": LONG_OUTPUT}},
    {"id": "long-instruction", "record": {"instruction": LONG_INSTRUCTION, "input": "",
                                          "output": "Clean, paint, repair, sort and label everything."}},
    {"id": "empty-input", "record": {"instruction": "Name three primary colours.", "input": "",
                                     "output": "Red, yellow and blue."}},
    {"id": "null-input", "record": {"instruction": "Give an antonym of 'ancient'.", "input": None,
                                    "output": "Modern."}},
    {"id": "absent-input", "record": {"instruction": "Count from one to five.", "output": "1, 2, 3, 4, 5"}},
    {"id": "with-input", "record": {"instruction": "Translate the sentence into French.",
                                    "input": "The cat sleeps on the warm windowsill.",
                                    "output": "Le chat dort sur le rebord de fenêtre chaud."}},
    {"id": "empty-output", "record": {"instruction": "Say nothing at all.", "input": "", "output": ""}},
    {"id": "special-token-text", "record": {"instruction": "Write the end-of-sequence marker.", "input": "",
                                            "output": "It is written </s> and means stop. <s> starts."}},
    {"id": "leading-whitespace-output", "record": {"instruction": "Indent the answer.", "input": "",
                                                   "output": "  \n Indented answer\twith a tab."}},
    {"id": "unicode", "record": {"instruction": "Übersetze ins Englische: „Grüße aus Köln“ 😀",
                                 "input": "naïve café — ½ × π ≈ 1.57",
                                 "output": "Greetings from Cologne 😀 — naïve café, ½ × π ≈ 1.57 ✓"}},
]


def generate_prompt(instruction: str, input_text, label=None) -> str:
    """utils/prompter.py generate_prompt: prompt_input iff input is truthy; the label appended iff truthy."""
    if input_text:
        res = PROMPT_INPUT.format(instruction=instruction, input=input_text)
    else:
        res = PROMPT_NO_INPUT.format(instruction=instruction)
    if label:
        res = f"{res}{label}"
    return res


class Reference:
    def __init__(self):
        self.fast = tokenizers.Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))
        # Special-token names written in the data ("</s>") stay text (methods.md §8), as sentencepiece does.
        # Alpaca-LoRA's slow Llama tokenizer would turn them into ids: the "special-token-text" record is
        # where Hone deliberately differs.
        self.fast.encode_special_tokens = True
        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(TOKENIZER_DIR / "tokenizer.model"))
        config = json.loads((TOKENIZER_DIR / "tokenizer_config.json").read_text())
        assert config["add_bos_token"] is True and config["add_eos_token"] is False
        self.bos, self.eos = self.sp.bos_id(), self.sp.eos_id()
        assert (self.bos, self.eos) == (1, 2)

    def hf_call(self, text: str, cutoff_len: int) -> list[int]:
        """tokenizer(text, truncation=True, max_length=cutoff_len)["input_ids"] for a BOS-adding Llama tokenizer."""
        with_bos = self.fast.encode(text, add_special_tokens=True).ids
        assert with_bos[0] == self.bos
        ids = with_bos[:cutoff_len]
        assert [self.bos] + self.sp.encode(text)[:cutoff_len - 1] == ids, "sentencepiece disagrees"
        self.fast.enable_truncation(max_length=cutoff_len)
        try:
            truncated = self.fast.encode(text, add_special_tokens=True).ids
        finally:
            self.fast.no_truncation()
        assert truncated == ids, "tokenizers' own truncation disagrees"
        return ids

    def tokenize(self, prompt: str, cutoff_len: int, add_eos_token: bool = True) -> dict:
        """finetune.py tokenize()."""
        input_ids = self.hf_call(prompt, cutoff_len)
        if input_ids[-1] != self.eos and len(input_ids) < cutoff_len and add_eos_token:
            input_ids.append(self.eos)
        return {"input_ids": input_ids, "labels": input_ids.copy()}

    def generate_and_tokenize_prompt(self, data_point: dict, cutoff_len: int, train_on_inputs: bool,
                                     add_eos_token: bool) -> dict:
        """finetune.py generate_and_tokenize_prompt() (its closure variables made arguments)."""
        full_prompt = generate_prompt(data_point["instruction"], data_point["input"], data_point["output"])
        tokenized_full_prompt = self.tokenize(full_prompt, cutoff_len)
        if not train_on_inputs:
            user_prompt = generate_prompt(data_point["instruction"], data_point["input"])
            tokenized_user_prompt = self.tokenize(user_prompt, cutoff_len, add_eos_token=add_eos_token)
            user_prompt_len = len(tokenized_user_prompt["input_ids"])
            if add_eos_token:
                user_prompt_len -= 1
            tokenized_full_prompt["labels"] = [-100] * user_prompt_len + tokenized_full_prompt["labels"][user_prompt_len:]
        return tokenized_full_prompt


def variant_name(train_on_inputs: bool, add_eos_token: bool) -> str:
    return f"train_on_inputs={str(train_on_inputs).lower()},add_eos_token={str(add_eos_token).lower()}"


def tokenize_record(reference: Reference, record: dict) -> dict:
    # load_dataset("json") turns an absent field into None; the prompter treats None like "".
    data_point = {"instruction": record["instruction"], "input": record.get("input"), "output": record["output"]}
    result = {}
    for cutoff in CUTOFFS:
        ids = None
        masked = {}
        for train_on_inputs in (True, False):
            for add_eos_token in (False, True):
                out = reference.generate_and_tokenize_prompt(data_point, cutoff, train_on_inputs, add_eos_token)
                assert ids is None or out["input_ids"] == ids, "input_ids depend on the flags"
                ids = out["input_ids"]
                labels = out["labels"]
                assert len(labels) == len(ids), "labels longer than the ids (prompt longer than the full text)"
                k = next((i for i, v in enumerate(labels) if v != -100), len(labels))
                assert labels == [-100] * k + ids[k:], "labels are not a masked prefix of the ids"
                masked[variant_name(train_on_inputs, add_eos_token)] = k
        assert len(ids) <= cutoff
        result[str(cutoff)] = {"input_ids": ids, "masked": masked}
    return result


def make_tokenization(reference: Reference) -> dict:
    shared_path = SHARED / SHARED_FILE
    raw = shared_path.read_bytes()
    shared = json.loads(raw)
    lengths = [len(reference.fast.encode(generate_prompt(r["instruction"], r["input"], r["output"])).ids)
               for r in shared]
    indices = list(range(0, len(shared), 7))
    longest = int(np.argmax(lengths))
    if longest not in indices:
        indices.append(longest)
    records = []
    for index in indices:
        records.append({"shared_index": index, "tokenized": tokenize_record(reference, shared[index])})
    for hand in HAND_RECORDS:
        records.append({"id": hand["id"], "record": hand["record"],
                        "tokenized": tokenize_record(reference, hand["record"])})
    # Coverage the Swift test relies on: truncation at both cutoffs, the prompt alone reaching the cut
    # (where add_eos_token changes the mask by one), inputs and no inputs.
    for cutoff in CUTOFFS:
        rows = [r["tokenized"][str(cutoff)] for r in records]
        assert any(len(r["input_ids"]) == cutoff and r["input_ids"][-1] != reference.eos for r in rows)
        assert any(r["masked"][variant_name(False, True)] != r["masked"][variant_name(False, False)] for r in rows)
        assert any(len(r["input_ids"]) < cutoff and r["input_ids"][-1] == reference.eos for r in rows)
    return {
        "generator": "tools/oracle/make_sft_data_fixtures.py",
        "reference": "tloen/alpaca-lora finetune.py @ 8bb8579 generate_and_tokenize_prompt, re-implemented; "
                     "tokenizers " + tokenizers.__version__ + " on tokenizer.json, checked against sentencepiece "
                     + sentencepiece.__version__,
        "tokenizer": "models/hone-tiny",
        "template": "alpaca",
        "shared_data": {"path": SHARED_FILE, "sha256": hashlib.sha256(raw).hexdigest(),
                        "note": "relative to ../shared (beside the repository); shared_index is 0-based"},
        "cutoff_lens": CUTOFFS,
        "labels": "labels = [-100] * masked[variant] + input_ids[masked[variant]:]",
        "records": records,
    }


def make_group_by_length() -> dict:
    rng = np.random.default_rng(20250601)
    cases = []
    specs = [
        # (count, batch_size, mega_batch_mult or None, length range, seed)
        (37, 4, None, (5, 12), 1),        # mult = min(37 // 16, 50) = 2: megabatches of 8, last one short
        (100, 2, None, (1, 6), 2),        # many ties
        (250, 1, None, (10, 400), 3),     # mult capped at 50
        (7, 8, None, (3, 9), 4),          # tiny: mult 1, a single megabatch
        (60, 3, 4, (20, 30), 5),          # explicit multiplier
        (40, 2, None, (1, 3), 6),         # the maximum tied across megabatches: argmax takes the first
    ]
    for count, batch_size, mult, (low, high), seed in specs:
        lengths = [int(x) for x in rng.integers(low, high + 1, size=count)]
        permutation = [int(x) for x in torch.randperm(count, generator=torch.Generator().manual_seed(seed))]
        grouped = get_length_grouped_indices(lengths, batch_size, mega_batch_mult=mult,
                                             generator=torch.Generator().manual_seed(seed))
        assert sorted(grouped) == list(range(count))
        cases.append({"lengths": lengths, "batch_size": batch_size, "mega_batch_mult": mult, "torch_seed": seed,
                      "permutation": permutation, "grouped": [int(i) for i in grouped]})
    return {
        "generator": "tools/oracle/make_sft_data_fixtures.py",
        "reference": f"transformers {transformers.__version__} trainer_pt_utils.get_length_grouped_indices",
        "note": "permutation = torch.randperm(len(lengths)) from torch.Generator().manual_seed(torch_seed), the "
                "permutation get_length_grouped_indices draws with the same generator; mega_batch_mult null = default",
        "cases": cases,
    }


def main() -> None:
    reference = Reference()
    tokenization = make_tokenization(reference)
    write_json(OUT / "alpaca-tokenization.json", tokenization)
    write_json(OUT / "group-by-length.json", make_group_by_length())
    n = len(tokenization["records"])
    sizes = {p.name: p.stat().st_size for p in OUT.iterdir()}
    print(f"{n} records; files: {sizes}")


if __name__ == "__main__":
    main()
