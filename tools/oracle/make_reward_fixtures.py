#!/usr/bin/env python3
"""Build Hone's reward-model fixtures: sequence-classification rewards from transformers and reward-model training
steps from TRL's RewardTrainer with a PEFT adapter (LoRA + a fully trained score head).

Output: Tests/HoneKitTests/Fixtures/reward/
  models/<name>/         tiny random AutoModelForSequenceClassification (num_labels 1) saved by transformers,
                         made from the causal fixture models (llama-gqa, qwen2-bias, opt-proj-postln) with a seeded
                         score head and a pad_token_id
  rewards.json           per model: token rows and the reward transformers computes for each (batch size 1, so the
                         read position is transformers' "last token that is not pad_token_id" rule)
  rm_adapter/            the PEFT adapter (task SEQ_CLS, modules_to_save ["score"]) the training cases start from,
                         saved by PeftModel.save_pretrained: LoRA on q_proj, v_proj, down_proj of llama-gqa + score
  rm_cases.json          per case: the pairs (chosen_ids, rejected_ids), margins, center coefficient, pad id, the loss
                         and the figures RewardTrainer logs (accuracy, margin, mean_reward)
  rm_gradients.safetensors   "<case>/<PEFT saved key>" = d loss / d every lora_A, lora_B and the score weight

The training cases call RewardTrainer.compute_loss on a batch collated by TRL's own DataCollatorForPreference
(rows [chosen…; rejected…], right-padded with the pad id), the pad id being the EOS (TRL's default when a
tokenizer has no pad token), so each row's reward is read before its trailing EOS.

Rerun:  tools/oracle/.venv/bin/python tools/oracle/make_reward_fixtures.py
"""

from __future__ import annotations

import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402
from trl.trainer.reward_trainer import DataCollatorForPreference  # noqa: E402

from oracle_common import REPO, FIXTURES, write_json  # noqa: E402
from make_lora_fixtures import write_safetensors  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
logging.getLogger("trl").setLevel(logging.ERROR)
transformers.logging.set_verbosity_error()

OUT = FIXTURES / "reward"
MODELS = FIXTURES / "models"
BOS, EOS, VOCAB = 1, 2, 256
TARGETS = ["q_proj", "v_proj", "down_proj"]
RANK, ALPHA = 2, 4


def rand_ids(rng, n: int) -> list[int]:
    return [int(x) for x in rng.integers(3, VOCAB, size=n)]


# ---------------------------------------------------------------------------
# Sequence-classification rewards
# ---------------------------------------------------------------------------

SEQCLS = [("llama-seqcls", "llama-gqa", 0), ("qwen2-seqcls", "qwen2-bias", 0), ("opt-seqcls", "opt-proj-postln", 1)]


def make_seqcls_models() -> dict:
    rng = np.random.default_rng(5)
    result = {}
    for name, source, pad in SEQCLS:
        torch.manual_seed(11)
        model = AutoModelForSequenceClassification.from_pretrained(str(MODELS / source), num_labels=1, dtype=torch.float32)
        with torch.no_grad():
            generator = torch.Generator().manual_seed(hash(name) % 1000)
            model.score.weight.copy_(torch.randn(model.score.weight.shape, generator=generator) * 0.5)
        model.config.pad_token_id = pad
        model.eval()
        directory = OUT / "models" / name
        model.save_pretrained(str(directory))
        for extra in ["generation_config.json"]:
            if (MODELS / source / extra).exists():
                shutil.copy(MODELS / source / extra, directory / extra)
        # Rows: plain, one with the pad id inside (not at the end), one ending in pad ids (read before them),
        # one that is all padding (transformers reads position 0), a one-token row.
        first = BOS if source != "opt-proj-postln" else 2
        rows = [
            [first] + rand_ids(rng, 9),
            [first] + rand_ids(rng, 4) + [pad] + rand_ids(rng, 5),
            [first] + rand_ids(rng, 6) + [pad, pad],
            [pad, pad, pad],
            [first],
        ]
        rewards = []
        with torch.no_grad():
            for row in rows:
                rewards.append(float(model(input_ids=torch.tensor([row])).logits[0, 0]))
            # A right-padded batch reads the same rewards (padding is the pad id, masked out).
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, row in enumerate(rows):
                ids[i, :len(row)] = torch.tensor(row)
                mask[i, :len(row)] = 1
            batched = model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()
        assert max(abs(a - b) for a, b in zip(rewards, batched)) < 1e-5, (name, rewards, batched)
        result[name] = {"pad_token_id": pad, "rows": rows, "rewards": rewards}
        print(name, ["%.5f" % r for r in rewards])
    return result


# ---------------------------------------------------------------------------
# Reward-model training through TRL
# ---------------------------------------------------------------------------

def rm_pairs(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    pairs = []
    for chosen_len, rejected_len in [(9, 13), (15, 6), (8, 8)]:
        prompt = [BOS] + rand_ids(rng, 4)
        pairs.append({"chosen_ids": prompt + rand_ids(rng, chosen_len - 6) + [EOS],
                      "rejected_ids": prompt + rand_ids(rng, rejected_len - 6) + [EOS]})
    return pairs


@torch.no_grad()
def fill_adapter(model, seed: int) -> None:
    """LoRA A uniform, B normal, and the score copy normal: non-zero, seeded, in sorted parameter order."""
    generator = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if not p.requires_grad:
            continue
        if ".lora_A." in name:
            bound = 1 / p.shape[1] ** 0.5
            p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * bound)
        elif ".lora_B." in name:
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
        elif "score" in name:
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)


def peft_config():
    return peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, bias="none",
                           task_type="SEQ_CLS", modules_to_save=["score"])


def trainable_gradients(model) -> dict:
    result = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and float(p.grad.abs().max()) > 0, name
            key = name.replace(".modules_to_save.default.", ".").replace(".default.", ".")
            result[key] = p.grad.detach().clone()
    return result


def rm_step(pairs, margins, center):
    directory = tempfile.mkdtemp(prefix="hone-rm-")
    try:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(str(MODELS / "llama-gqa"), num_labels=1,
                                                                   dtype=torch.float32)
        args = trl.RewardConfig(output_dir=directory, report_to="none", use_cpu=True, bf16=False, fp16=False,
                                per_device_train_batch_size=len(pairs), max_length=None, seed=0,
                                dataloader_num_workers=0, center_rewards_coefficient=center)
        tokenizer = AutoTokenizer.from_pretrained(str(REPO / "models" / "hone-tiny"))
        tokenizer.pad_token = None
        dataset = Dataset.from_list([{"chosen": "a", "rejected": "b"}])
        trainer = trl.RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                    peft_config=peft_config())
        policy = trainer.model
        fill_adapter(policy, seed=401)
        policy.config.pad_token_id = EOS
        policy.train()
        policy.zero_grad(set_to_none=True)
        examples = [dict(p) for p in pairs]
        if margins is not None:
            for example, margin in zip(examples, margins):
                example["margin"] = margin
        batch = DataCollatorForPreference(pad_token_id=EOS)(examples)
        loss = trainer.compute_loss(policy, batch)
        loss.backward()
        metrics = {k: float(v[-1]) for k, v in trainer._metrics["train"].items() if k in ("accuracy", "margin", "mean_reward")}
        return float(loss), trainable_gradients(policy), metrics, policy
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def make_rm_cases() -> None:
    pairs = rm_pairs(10)
    cases, gradients = [], {}
    saved = False
    for name, margins, center in [("rm", None, None), ("rm-margin", [1.0, 0.0, 2.0 / 3.0], None),
                                  ("rm-center", None, 0.01)]:
        loss, grads, metrics, policy = rm_step(pairs, margins, center)
        if not saved:
            directory = OUT / "rm_adapter"
            policy.save_pretrained(str(directory))
            (directory / "README.md").unlink(missing_ok=True)
            saved = True
        # Cross-check: the plain formula over rewards computed row by row.
        with torch.no_grad():
            rewards = [float(policy(input_ids=torch.tensor([row])).logits[0, 0])
                       for row in [p["chosen_ids"] for p in pairs] + [p["rejected_ids"] for p in pairs]]
        chosen, rejected = torch.tensor(rewards[:len(pairs)]), torch.tensor(rewards[len(pairs):])
        m = torch.tensor(margins) if margins is not None else torch.zeros(len(pairs))
        plain = float(-torch.nn.functional.logsigmoid(chosen - rejected - m).mean()
                      + (center or 0) * torch.mean((chosen + rejected) ** 2))
        assert abs(plain - loss) < 1e-5, (name, plain, loss)
        for key, value in grads.items():
            gradients[f"{name}/{key}"] = value
        cases.append({"name": name, "pairs": pairs, "margins": margins, "center_rewards_coefficient": center,
                      "pad_token_id": EOS, "loss": loss, "metrics": metrics,
                      "rewards": {"chosen": chosen.tolist(), "rejected": rejected.tolist()}})
        print(name, loss, metrics)
    write_json(OUT / "rm_cases.json", {
        "model": "models/llama-gqa", "adapter": "rm_adapter",
        "versions": {"trl": trl.__version__, "peft": peft.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
        "cases": cases,
    })
    write_safetensors(OUT / "rm_gradients.safetensors", gradients)


def main() -> None:
    os.chdir(REPO)
    print("trl", trl.__version__, "peft", peft.__version__, "transformers", transformers.__version__)
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "models").mkdir(parents=True)
    rewards = make_seqcls_models()
    write_json(OUT / "rewards.json", {"versions": {"transformers": transformers.__version__}, "models": rewards})
    make_rm_cases()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total size {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
