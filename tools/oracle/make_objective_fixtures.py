#!/usr/bin/env python3
"""Build Hone's alignment-objective fixtures (CUT, DPO, PRO) on the llama-gqa fixture model.

Output: Tests/HoneKitTests/Fixtures/objectives/
  adapter/       the policy adapter (PEFT save_pretrained; A from PEFT's init, B redrawn non-zero)
  ref_adapter/   a second adapter of the same shape: DPO's frozen reference when training continues from an adapter
  cases.json     per case: the batch, the settings, the loss (and DPO's logged metrics)
  gradients.safetensors   "<case>/<PEFT saved key>" = d loss / d every lora_A / lora_B, float32

DPO cases run TRL's own DPOTrainer._compute_loss (the policy/reference forward passes, the loss, the metrics) on
hand-made batches in its collated layout ([chosen rows; rejected rows], right-padded, completion_mask); the
reference is the adapter switched off (a new adapter given to the trainer through peft_config), or, in the
"init-adapter" case, TRL's frozen "ref" copy of the adapter the PeftModel was built with (the policy is then moved
to other weights before the step). The cDPO case (sigmoid with label smoothing, TRL v0.7.11's formula; TRL 1.x
ignores label smoothing for sigmoid) and CUT and PRO are written here in PyTorch from methods.md §1.6, §2.5, §4.2.

Rerun:  /work/oracle-venv/bin/python tools/oracle/make_objective_fixtures.py
Deterministic (single thread, seeded generators); the script checks its own DPO sigmoid case against the
plain-PyTorch formula as a cross-check of the TRL path.
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
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from oracle_common import REPO, FIXTURES, write_json  # noqa: E402
from make_lora_fixtures import B_STD, write_safetensors  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
logging.getLogger("trl").setLevel(logging.ERROR)
transformers.logging.set_verbosity_error()

OUT = FIXTURES / "objectives"
MODEL = "Tests/HoneKitTests/Fixtures/models/llama-gqa"
TARGETS = ["q_proj", "v_proj", "down_proj"]
RANK, ALPHA = 2, 4
BOS, EOS, VOCAB = 1, 2, 256


# ---------------------------------------------------------------------------
# Models and adapters
# ---------------------------------------------------------------------------

def base_model():
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    model.eval()
    return model


def lora_config():
    return peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, bias="none",
                           task_type="CAUSAL_LM")


@torch.no_grad()
def fill_adapter(model, seed: int, adapter: str = "default") -> None:
    """A = PEFT-like uniform, B ~ N(0, B_STD²), seeded, into the named adapter's parameters (sorted names)."""
    generator = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if f".{adapter}." not in name or "lora_" not in name:
            continue
        if ".lora_A." in name:
            bound = 1 / p.shape[1] ** 0.5
            p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * bound)
        else:
            p.copy_(torch.randn(p.shape, generator=generator) * B_STD)


def save_adapter(model, directory) -> None:
    model.save_pretrained(str(directory))
    (directory / "README.md").unlink(missing_ok=True)


def adapter_gradients(model, adapter: str = "default") -> dict:
    """d loss / d every LoRA parameter of `adapter`, under PEFT's saved key names."""
    result = {}
    for name, p in model.named_parameters():
        if f".{adapter}." in name and "lora_" in name:
            assert p.grad is not None and float(p.grad.abs().max()) > 0, name
            result[name.replace(f".{adapter}.", ".")] = p.grad.detach().clone()
    return result


def token_logps(model, ids: list[int]) -> torch.Tensor:
    """log p(ids[t] | ids[:t]) for t = 1..n-1 (index t-1), with gradients."""
    logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()
    return torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1)


def rand_ids(rng, n: int) -> list[int]:
    return [int(x) for x in rng.integers(3, VOCAB, size=n)]


# ---------------------------------------------------------------------------
# DPO through TRL
# ---------------------------------------------------------------------------

def dpo_pairs(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    pairs = []
    for prompt_len, chosen_len, rejected_len in [(6, 5, 9), (11, 8, 4), (4, 12, 7)]:
        prompt = [BOS] + rand_ids(rng, prompt_len - 1)
        pairs.append({"prompt_ids": prompt, "chosen_ids": rand_ids(rng, chosen_len - 1) + [EOS],
                      "rejected_ids": rand_ids(rng, rejected_len - 1) + [EOS]})
    return pairs


def collate(pairs: list[dict]) -> dict:
    """TRL's collated layout: rows [prompt+chosen …; prompt+rejected …], right-padded with 0, completion_mask."""
    rows = [(p["prompt_ids"], p["chosen_ids"]) for p in pairs] + [(p["prompt_ids"], p["rejected_ids"]) for p in pairs]
    width = max(len(a) + len(b) for a, b in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    completion = torch.zeros_like(ids)
    for i, (prompt, answer) in enumerate(rows):
        n = len(prompt) + len(answer)
        ids[i, :n] = torch.tensor(prompt + answer)
        mask[i, :n] = 1
        completion[i, len(prompt):n] = 1
    return {"input_ids": ids, "attention_mask": mask, "completion_mask": completion}


_DUMMY_TOKENIZER = None


def dummy_tokenizer():
    """DPOTrainer needs a processing class to prepare its (unused) train_dataset; the batches below are built by hand."""
    global _DUMMY_TOKENIZER
    if _DUMMY_TOKENIZER is None:
        _DUMMY_TOKENIZER = AutoTokenizer.from_pretrained(str(REPO / "models" / "hone-tiny"))
    return _DUMMY_TOKENIZER


def trl_dpo_step(model, pairs, *, loss_type: str, beta: float, label_smoothing: float, peft_config=None,
                 policy_seed: int | None = None):
    """One DPO loss + backward through TRL's DPOTrainer. Returns (loss, gradients of 'default', metrics)."""
    directory = tempfile.mkdtemp(prefix="hone-dpo-")
    try:
        args = trl.DPOConfig(output_dir=directory, beta=beta, loss_type=[loss_type], label_smoothing=label_smoothing,
                             report_to="none", use_cpu=True, bf16=False, fp16=False, per_device_train_batch_size=len(pairs),
                             max_length=None, seed=0, dataloader_num_workers=0)
        dataset = Dataset.from_list([{"prompt": "a", "chosen": " b", "rejected": " c"}])
        trainer = trl.DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=dummy_tokenizer(),
                                 peft_config=peft_config)
        policy = trainer.model
        if peft_config is not None:
            fill_adapter(policy, seed=301)          # the trained adapter: non-zero, reference = adapter off
        if policy_seed is not None:
            fill_adapter(policy, seed=policy_seed)  # move the policy away from TRL's frozen "ref" copy
        policy.train()
        policy.zero_grad(set_to_none=True)
        batch = collate(pairs)
        loss = trainer._compute_loss(policy, batch, return_outputs=False)
        loss.backward()
        metrics = {k: float(v[-1]) for k, v in trainer._metrics["train"].items()
                   if k.startswith("rewards/") or k.startswith("logps/")}
        return float(loss), adapter_gradients(policy), metrics, policy
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def plain_dpo_logps(model, pairs, reference_off: bool = True):
    """Summed completion log-probs, policy (with grad) and reference (adapter off), row by row."""
    def summed(p, answer):
        ids = p["prompt_ids"] + answer
        return token_logps(model, ids)[len(p["prompt_ids"]) - 1:].sum()
    chosen = torch.stack([summed(p, p["chosen_ids"]) for p in pairs])
    rejected = torch.stack([summed(p, p["rejected_ids"]) for p in pairs])
    with torch.no_grad(), model.disable_adapter():
        ref_chosen = torch.stack([summed(p, p["chosen_ids"]) for p in pairs])
        ref_rejected = torch.stack([summed(p, p["rejected_ids"]) for p in pairs])
    return chosen, rejected, ref_chosen, ref_rejected


def make_dpo_cases(cases: list, gradients: dict) -> None:
    pairs = dpo_pairs(7)
    h_values = None
    for loss_type in ["sigmoid", "ipo", "hinge", "robust"]:
        beta = 0.1
        smoothing = 0.2 if loss_type == "robust" else 0.0
        if loss_type == "hinge":
            # β chosen so that one pair lies past the hinge (zero gradient) and the others before it.
            # (βh = 1.5 for the pair with the largest h; the script checks the others stay clearly below 1).
            beta = 1.5 / float(np.max(h_values))
            assert np.max(h_values) > 0 and sorted(beta * h_values)[-2] < 0.8, h_values
        loss, grads, metrics, policy = trl_dpo_step(base_model(), pairs, loss_type=loss_type, beta=beta,
                                                    label_smoothing=smoothing, peft_config=lora_config())
        if loss_type == "sigmoid":
            chosen, rejected, ref_chosen, ref_rejected = plain_dpo_logps(policy, pairs)
            h = (chosen - ref_chosen) - (rejected - ref_rejected)
            h_values = h.detach().numpy()
            print("h", h_values)
            plain = float(-F.logsigmoid(beta * h).mean())
            assert abs(plain - loss) < 1e-6, (plain, loss)
            save_adapter(policy, OUT / "adapter")   # the policy adapter every case starts from
        name = f"dpo-{loss_type}"
        cases.append({"name": name, "objective": "dpo", "loss_type": loss_type, "beta": beta,
                      "label_smoothing": smoothing, "reference": "base", "pairs": pairs, "loss": loss,
                      "metrics": metrics, "h": [float(x) for x in h_values]})
        gradients.update({f"{name}/{k}": v for k, v in grads.items()})
        print(f"{name:24s} loss {loss:.6f} beta {beta:.4g}", {k: round(v, 5) for k, v in metrics.items()})

    # Continuing from an adapter: TRL copies it into a frozen "ref" adapter; the policy then moves elsewhere.
    start = peft.get_peft_model(base_model(), lora_config())
    fill_adapter(start, seed=302)
    save_adapter(start, OUT / "ref_adapter")
    loss, grads, metrics, policy = trl_dpo_step(start, pairs, loss_type="sigmoid", beta=0.1, label_smoothing=0.0,
                                                policy_seed=301)
    # The policy is the same adapter as adapter/ (seed 301): the reference is ref_adapter/.
    saved = {n.replace(".default.", "."): p for n, p in policy.named_parameters() if ".default." in n and "lora_" in n}
    from safetensors.torch import load_file
    policy_file = load_file(str(OUT / "adapter" / "adapter_model.safetensors"))
    for key, value in policy_file.items():
        assert torch.equal(saved[key].detach(), value), key
    name = "dpo-sigmoid-init-adapter"
    cases.append({"name": name, "objective": "dpo", "loss_type": "sigmoid", "beta": 0.1, "label_smoothing": 0.0,
                  "reference": "ref_adapter", "pairs": pairs, "loss": loss, "metrics": metrics})
    gradients.update({f"{name}/{k}": v for k, v in grads.items()})
    print(f"{name:24s} loss {loss:.6f}", {k: round(v, 5) for k, v in metrics.items()})

    # cDPO (TRL v0.7.11's sigmoid with label smoothing), from the formula.
    model = peft.PeftModel.from_pretrained(base_model(), str(OUT / "adapter"), is_trainable=True)
    model.zero_grad(set_to_none=True)
    beta, eps = 0.1, 0.15
    chosen, rejected, ref_chosen, ref_rejected = plain_dpo_logps(model, pairs)
    h = (chosen - ref_chosen) - (rejected - ref_rejected)
    loss = (-(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)).mean()
    loss.backward()
    name = "dpo-sigmoid-label-smoothing"
    cases.append({"name": name, "objective": "dpo", "loss_type": "sigmoid", "beta": beta, "label_smoothing": eps,
                  "reference": "base", "pairs": pairs, "loss": float(loss)})
    gradients.update({f"{name}/{k}": v for k, v in adapter_gradients(model).items()})
    print(f"{name:24s} loss {float(loss):.6f}")


# ---------------------------------------------------------------------------
# CUT (modeling_llama_unlikelihood.py's loss, methods.md §1.6)
# ---------------------------------------------------------------------------

def cut_batch(seed: int) -> dict:
    """One Align-P row and two Align-N/Misalign pairs: the same response after a longer (judgment) and a plain prompt."""
    rng = np.random.default_rng(seed)
    like, misalign = [], []

    def row(prompt, response):
        ids = prompt + response
        return {"input_ids": ids, "labels": [-100] * len(prompt) + response}

    like.append(row([BOS] + rand_ids(rng, 7), rand_ids(rng, 6) + [EOS]))              # Align-P
    for judge_len, plain_len, response_len in [(12, 6, 9), (9, 5, 7)]:
        response = rand_ids(rng, response_len - 1) + [EOS]
        like.append(row([BOS] + rand_ids(rng, judge_len - 1), response))              # Align-N
        misalign.append(row([BOS] + rand_ids(rng, plain_len - 1), response))          # Misalign
    return {"like": like, "misalign": misalign, "pair_of": [1, 2]}


def row_target_logps(model, row):
    lp = token_logps(model, row["input_ids"])
    labels = row["labels"][1:]
    keep = [t for t, label in enumerate(labels) if label != -100]
    return lp[keep]


def make_cut_case(cases: list, gradients: dict) -> None:
    model = peft.PeftModel.from_pretrained(base_model(), str(OUT / "adapter"), is_trainable=True)
    batch = cut_batch(11)
    # λ between two well-separated ratios near the middle, so U and its complement are both non-empty.
    with torch.no_grad():
        ratios = []
        for m, partner in zip(batch["misalign"], batch["pair_of"]):
            ratios += (row_target_logps(model, batch["like"][partner]) - row_target_logps(model, m)).exp().tolist()
    ordered = sorted(ratios)
    gaps = [(ordered[i + 1] - ordered[i], i) for i in range(len(ordered) - 1)]
    middle = len(ordered) // 2
    _, at = max(g for g in gaps if abs(g[1] - middle) <= 3)
    threshold = (ordered[at] + ordered[at + 1]) / 2
    alpha = 0.5

    model.zero_grad(set_to_none=True)
    like_lp = [row_target_logps(model, r) for r in batch["like"]]
    like_all = torch.cat(like_lp)
    loss_like = -like_all.mean()                                  # NLLLoss over the first-half rows
    probs_a = torch.cat([like_lp[p].exp() for p in batch["pair_of"]])
    probs_b = torch.cat([row_target_logps(model, m).exp() for m in batch["misalign"]])
    scale = (probs_a / probs_b).detach()
    unlikely = scale > threshold
    values = torch.where(unlikely, 1 - probs_b, probs_b)
    values = values + (values == 0).float() * 1e-5
    logs = torch.log(values)
    logs = torch.where(unlikely, alpha * logs, logs)
    loss_unlike = -logs.sum() / logs.shape[0]
    loss = (loss_like + loss_unlike) / 2
    loss.backward()
    name = "cut"
    cases.append({"name": name, "objective": "cut", "threshold": threshold, "weight_unlike": alpha, **batch,
                  "loss": float(loss), "likelihood": float(loss_like), "unlikelihood": float(loss_unlike),
                  "unlikely_tokens": int(unlikely.sum()), "misalign_tokens": int(unlikely.numel()),
                  "ratio_margin": float(min(abs(r - threshold) for r in ratios))})
    gradients.update({f"{name}/{k}": v for k, v in adapter_gradients(model).items()})
    print(f"{name:24s} loss {float(loss):.6f} λ {threshold:.4f} |U| {int(unlikely.sum())}/{unlikely.numel()}")

    # Align-P only: L = L_like, no halving.
    model.zero_grad(set_to_none=True)
    only = {"like": [batch["like"][0]], "misalign": [], "pair_of": []}
    loss = -row_target_logps(model, only["like"][0]).mean()
    loss.backward()
    name = "cut-align-p-only"
    cases.append({"name": name, "objective": "cut", "threshold": threshold, "weight_unlike": alpha, **only,
                  "loss": float(loss)})
    gradients.update({f"{name}/{k}": v for k, v in adapter_gradients(model).items()})
    print(f"{name:24s} loss {float(loss):.6f}")


# ---------------------------------------------------------------------------
# PRO (ScalingAlignment compute_loss, methods.md §2.5)
# ---------------------------------------------------------------------------

def pro_batch(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    reward_sets = {3: [[2.0, 0.5, -1.0], [1.0, 0.7, 0.2]], 2: [[1.0, 0.0], [0.8, -0.6]]}[n]
    for index, rewards in enumerate(reward_sets):
        prompt = [BOS] + rand_ids(rng, int(rng.integers(4, 9)))
        rows = []
        for _ in range(n):
            response = rand_ids(rng, int(rng.integers(3, 10))) + [EOS]
            ids = prompt + response
            rows.append({"input_ids": ids, "labels": [-100] * len(prompt) + response})
        records.append({"rows": rows, "rewards": rewards, "sft_index": index % n})
    return records


def make_pro_case(cases: list, gradients: dict, n: int) -> None:
    model = peft.PeftModel.from_pretrained(base_model(), str(OUT / "adapter"), is_trainable=True)
    records = pro_batch(20 + n, n)
    model.zero_grad(set_to_none=True)
    sums = torch.stack([torch.stack([row_target_logps(model, r).sum() for r in rec["rows"]]) for rec in records])
    counts = torch.tensor([[float(len(row_target_logps(model, r))) for r in rec["rows"]] for rec in records])
    scores = sums / counts
    rewards = torch.tensor([rec["rewards"] for rec in records])
    total = 0
    for time in range(n - 1):
        neg_temperatures = rewards[:, time].view(-1, 1) - rewards[:, time + 1:]
        pos_temperature = torch.max(neg_temperatures, dim=1).values
        loss = torch.log(1e-10 + torch.exp(scores[:, time] * pos_temperature)
                         + torch.sum(torch.exp(scores[:, time + 1:] * neg_temperatures), dim=1)) - scores[:, time] * pos_temperature
        total = total + loss.mean()
    sft_index = torch.tensor([rec["sft_index"] for rec in records]).view(-1, 1)
    sft = torch.mean(-torch.gather(sums, 1, sft_index).view(-1))
    total = total + 0.05 * (n - 1) ** 2 * sft
    total.backward()
    name = f"pro-{n}"
    cases.append({"name": name, "objective": "pro", "records": records, "sft_weight": 0.05, "loss": float(total)})
    gradients.update({f"{name}/{k}": v for k, v in adapter_gradients(model).items()})
    print(f"{name:24s} loss {float(total):.6f}")


def main() -> None:
    os.chdir(REPO)
    print("trl", trl.__version__, "peft", peft.__version__, "transformers", transformers.__version__,
          "torch", torch.__version__)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    cases: list = []
    gradients: dict = {}
    make_dpo_cases(cases, gradients)
    make_cut_case(cases, gradients)
    make_pro_case(cases, gradients, 3)
    make_pro_case(cases, gradients, 2)
    write_json(OUT / "cases.json", {
        "model": "models/llama-gqa", "policy_adapter": "adapter", "reference_adapter": "ref_adapter",
        "versions": {"trl": trl.__version__, "peft": peft.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
        "note": "rows unpadded; labels -100 = not scored; position t-1 predicts labels[t]",
        "cases": cases,
    })
    write_safetensors(OUT / "gradients.safetensors", gradients)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total size {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
