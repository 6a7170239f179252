#!/usr/bin/env python3
"""Check a reward adapter written by `hone train rm` with PEFT: PeftModel.from_pretrained on
AutoModelForSequenceClassification (num_labels 1) must load it (LoRA + the score head from modules_to_save) and give
the rewards `hone reward` printed, within 1e-4.

Usage:  tools/oracle/.venv/bin/python tools/oracle/check_hone_reward_adapter.py BASE ADAPTER PAIRS.jsonl REWARDS.jsonl
(PAIRS as given to `hone reward`: {prompt?, chosen, rejected} records; REWARDS its output.)
"""

import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main() -> None:
    base, adapter, pairs_path, rewards_path = sys.argv[1:5]
    torch.set_num_threads(1)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
    with open(f"{adapter}/hone_training.json") as f:
        model.config.pad_token_id = json.load(f).get("pad_token_id", model.config.pad_token_id)
    model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    ours = [json.loads(line) for line in open(rewards_path)]
    worst = 0.0
    for record, result in zip((json.loads(line) for line in open(pairs_path)), ours):
        for key in ["chosen", "rejected"]:
            text = record.get("prompt", "") + record[key] + tokenizer.eos_token
            ids = tokenizer(text)["input_ids"]
            with torch.no_grad():
                reward = float(model(input_ids=torch.tensor([ids])).logits[0, 0])
            worst = max(worst, abs(reward - result[f"{key}_reward"]))
    print(f"{len(ours)} pairs, largest difference {worst:.2e}")
    assert worst < 1e-4, worst


if __name__ == "__main__":
    main()
