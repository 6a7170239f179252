#!/usr/bin/env python3
"""Build Hone's LoRA training fixtures with PEFT and transformers' own code.

Outputs: Tests/HoneKitTests/Fixtures/lora/<case>/ (see tools/oracle/README.md, "LoRA fixtures", for the
exact format). For every case:

  adapter/adapter_config.json, adapter/adapter_model.safetensors
        a PEFT adapter written by PeftModel.save_pretrained (PEFT's saved key names), A from PEFT's own
        init (kaiming-uniform), B redrawn from a seeded normal so that every gradient is non-trivial
  batch.json          unpadded token rows with HF-style labels (-100 = not trained)
  expected.json       loss, per-token log-probs with the adapter, without it, and after merge_and_unload
  gradients.safetensors   d loss / d every lora_A / lora_B weight, PEFT's saved key names, float32
  steps.json, final_adapter.safetensors   (two cases) 10 AdamW steps with gradient accumulation,
        linear warmup/decay schedule and gradient-norm clipping, as transformers' Trainer does them

Rerun:  /work/oracle-venv/bin/python tools/oracle/make_lora_fixtures.py   (or tools/oracle/.venv/bin/python)

Deterministic: torch single-threaded, seeded generators, PYTHONHASHSEED fixed (PEFT writes target_modules
from a Python set, whose order depends on string hashing); a rerun writes byte-identical files (checked
with sha256sum over the directory).
"""

from __future__ import annotations

import copy
import os
import shutil
import sys

# PEFT stores target_modules as list(set(...)): fix the string hash so the saved order is reproducible.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import peft  # noqa: E402
import safetensors  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup  # noqa: E402

from oracle_common import REPO, FIXTURES, write_json  # noqa: E402

torch.set_num_threads(1)

OUT = FIXTURES / "lora"
LLAMA_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
OPT_ALL = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
PHI3_ALL = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]

B_STD = 0.05  # lora_B ~ N(0, 0.05^2): the adapter moves log-probs clearly (see max_abs_diff_vs_base)

CASES = [
    # name, fixture model, target modules, r, alpha, rslora, with steps
    dict(name="llama-gqa", model="llama-gqa", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=True, seed=101),
    dict(name="llama-gqa-qv", model="llama-gqa", targets=["q_proj", "v_proj"], r=4, alpha=8, rslora=False,
         steps=False, seed=102),
    dict(name="qwen2-bias-rslora", model="qwen2-bias", targets=LLAMA_ALL, r=4, alpha=8, rslora=True,
         steps=False, seed=103),
    dict(name="llama-tied-llama3-r2", model="llama-tied-llama3", targets=LLAMA_ALL, r=2, alpha=16, rslora=False,
         steps=False, seed=104),
    # Qwen3: the gradient passes through the frozen per-head q/k norms; SmolLM3: layers 3 and 7 without rotation.
    dict(name="qwen3-qknorm", model="qwen3-qknorm", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False,
         seed=106),
    dict(name="smollm3-nope", model="smollm3-nope", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False,
         seed=107),
    # Granite: the gradient through the residual multiplier and the logit scaling.
    dict(name="granite-mult", model="granite-mult", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False,
         seed=108),
    # Phi-3: LoRA on the fused qkv_proj and gate_up_proj; with LongRoPE the 40-token row uses the long factors.
    dict(name="phi3-fused", model="phi3-fused", targets=PHI3_ALL, r=4, alpha=8, rslora=False, steps=False, seed=109),
    dict(name="phi3-longrope", model="phi3-longrope", targets=PHI3_ALL, r=4, alpha=8, rslora=False, steps=False,
         seed=110),
    # Gemma 3: the gradient through the norms after attention and MLP, GeGLU and windowed attention (windows of 8
    # and 16 keys: the 17- and 40-token rows slide them).
    dict(name="gemma3-swa", model="gemma3-swa", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False, seed=111),
    dict(name="gemma3-legacy", model="gemma3-legacy", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False,
         seed=112),
    # Gemma 2: the gradient through both soft caps (scores and logits).
    dict(name="gemma2-softcap", model="gemma2-softcap", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False,
         seed=113),
    # Mixture of experts (frozen): the gradient reaches the attention's adapters of the layer below through the
    # chosen experts and through the router's renormalized (Qwen3-MoE with norm_topk_prob, Mixtral) or plain
    # probabilities.
    dict(name="qwen3moe-experts", model="qwen3moe-experts", targets=ATTENTION, r=4, alpha=8, rslora=False,
         steps=False, seed=114),
    dict(name="qwen3moe-unnormalized", model="qwen3moe-unnormalized", targets=ATTENTION, r=4, alpha=8,
         rslora=False, steps=False, seed=115),
    dict(name="mixtral-experts", model="mixtral-experts", targets=ATTENTION, r=4, alpha=8, rslora=False,
         steps=False, seed=116),
    # Qwen2-MoE: also through the gated shared expert (and Qwen2's q/k/v biases).
    dict(name="qwen2moe-shared", model="qwen2moe-shared", targets=ATTENTION, r=4, alpha=8, rslora=False,
         steps=False, seed=117),
    # OLMo 2 and 3: the gradient through the norms on each half's output only (none on the inputs) and through
    # the q/k norms spanning all heads; OLMo 3's windowed layers (window 8) and YaRN on its global layer. OLMoE: the
    # same q/k norms and frozen experts whose probabilities are not renormalized.
    dict(name="olmo2-post", model="olmo2-post", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False, seed=118),
    dict(name="olmo3-swa", model="olmo3-swa", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False, seed=119),
    dict(name="olmoe-experts", model="olmoe-experts", targets=ATTENTION, r=4, alpha=8, rslora=False, steps=False,
         seed=120),
    # Granite-MoE: through the multipliers and the experts stacked as input_linear / output_linear.
    dict(name="granitemoe-experts", model="granitemoe-experts", targets=ATTENTION, r=4, alpha=8, rslora=False,
         steps=False, seed=122),
    # EXAONE 4: through the post norms, per-head q/k norms, windowed layers rotated with Llama 3 scaling and a
    # global layer without rotation.
    dict(name="exaone4-swa", model="exaone4-swa", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False,
         seed=123),
    # The first Gemma: GeGLU, norms of 1 + w, scaled embeddings, MQA.
    dict(name="gemma-geglu", model="gemma-geglu", targets=LLAMA_ALL, r=4, alpha=8, rslora=False, steps=False,
         seed=121),
    # max_grad_norm 2.0 here (1.0 elsewhere): its gradient norms straddle 2, so both sides of the clip are tested.
    dict(name="opt-preln", model="opt-preln", targets=OPT_ALL, r=4, alpha=8, rslora=False, steps=True, seed=105,
         max_grad_norm=2.0),
]

BATCH_LENGTHS = [5, 17, 40]          # expected.json / gradients.safetensors
STEP_ROWS = 20                       # steps.json: 20 distinct rows, two epochs of 5 steps
STEPS = 10
MICRO_BATCH = 2
ACCUMULATION = 2
LR, BETAS, EPS, WEIGHT_DECAY = 1e-3, (0.9, 0.999), 1e-8, 0.01
WARMUP, DEFAULT_MAX_GRAD_NORM = 2, 1.0


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def make_row(rng: np.random.Generator, length: int, bos: int, eos: int, vocab: int, masked: int) -> dict:
    """A token row like an SFT example: BOS, random ids in [3, vocab), EOS last; the first `masked`
    labels are -100 (the "prompt"), the rest equal the ids."""
    ids = [int(x) for x in rng.integers(3, vocab, size=length)]
    ids[0] = bos
    ids[-1] = eos
    labels = [-100] * masked + ids[masked:]
    return {"input_ids": ids, "labels": labels}


def batch_rows(config, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for index, length in enumerate(BATCH_LENGTHS):
        # Row 0 trains on everything (train_on_inputs); the others mask a prompt of a third of the row.
        masked = 1 if index == 0 else max(2, length // 3)
        rows.append(make_row(rng, length, config.bos_token_id, config.eos_token_id, config.vocab_size, masked))
    return rows


def step_rows(config, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(STEP_ROWS):
        length = int(rng.integers(5, 41))
        masked = int(rng.integers(1, length // 2 + 1))
        rows.append(make_row(rng, length, config.bos_token_id, config.eos_token_id, config.vocab_size, masked))
    return rows


def step_plan(seed: int) -> list[list[list[int]]]:
    """Per optimizer step, its micro-batches as lists of row indices: two epochs over the 20 rows,
    each a seeded permutation cut into 5 steps x 2 micro-batches x 2 rows."""
    rng = np.random.default_rng(seed)
    plan = []
    per_step = MICRO_BATCH * ACCUMULATION
    for _ in range(STEPS * per_step // STEP_ROWS):
        order = [int(x) for x in rng.permutation(STEP_ROWS)]
        for start in range(0, STEP_ROWS, per_step):
            chunk = order[start:start + per_step]
            plan.append([chunk[i:i + MICRO_BATCH] for i in range(0, per_step, MICRO_BATCH)])
    assert len(plan) == STEPS
    return plan


# ---------------------------------------------------------------------------
# Loss pieces (each row alone, unpadded)
# ---------------------------------------------------------------------------

def row_logits(model, ids: list[int]) -> torch.Tensor:
    return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()


def row_token_loss_sum(model, row: dict) -> tuple[torch.Tensor, int]:
    """Sum over t >= 1 with labels[t] != -100 of -log p(labels[t] | ids[:t]) (HF's causal shift), and the
    number of such t."""
    logits = row_logits(model, row["input_ids"])
    targets = torch.tensor(row["labels"][1:])
    loss_sum = F.cross_entropy(logits[:-1], targets, ignore_index=-100, reduction="sum")
    return loss_sum, int((targets != -100).sum())


def batch_loss(model, rows: list[dict]) -> tuple[torch.Tensor, int]:
    """HF token mean over all trained labels of the rows: (sum of token losses) / (number of tokens)."""
    total, count = torch.zeros(()), 0
    for row in rows:
        loss_sum, n = row_token_loss_sum(model, row)
        total, count = total + loss_sum, count + n
    return total / count, count


@torch.no_grad()
def padded_hf_loss(model, rows: list[dict], pad_id: int) -> float:
    """The same loss the way transformers computes it: one right-padded batch with an attention mask,
    labels -100 on padding, the model's own `labels=` loss (ForCausalLMLoss, mean over valid tokens)."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(r["labels"])
    return float(model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss)


@torch.no_grad()
def row_logprobs(model, ids: list[int]) -> list:
    """[null, log p(ids[1] | ids[:1]), ..., log p(ids[n-1] | ids[:n-1])]: every position, masked or not."""
    lp = torch.log_softmax(row_logits(model, ids), dim=-1)
    return [None] + [float(lp[t - 1, ids[t]]) for t in range(1, len(ids))]


def max_diff(a: list[list], b: list[list]) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb) if x is not None)


# ---------------------------------------------------------------------------
# Adapter
# ---------------------------------------------------------------------------

def saved_key(parameter_name: str) -> str:
    """PEFT's saved key of a LoRA parameter: the adapter name ("default") is dropped."""
    assert ".default." in parameter_name, parameter_name
    return parameter_name.replace(".default.", ".")


def lora_parameters(model) -> dict[str, torch.nn.Parameter]:
    return {saved_key(n): p for n, p in model.named_parameters() if "lora_" in n}


def build_adapter(case: dict):
    base = AutoModelForCausalLM.from_pretrained(f"Tests/HoneKitTests/Fixtures/models/{case['model']}",
                                                dtype=torch.float32)
    base.eval()
    torch.manual_seed(case["seed"])           # PEFT draws lora_A (kaiming-uniform) from the global RNG
    config = peft.LoraConfig(r=case["r"], lora_alpha=case["alpha"], lora_dropout=0.0,
                             target_modules=case["targets"], bias="none", task_type="CAUSAL_LM",
                             use_rslora=case["rslora"])
    model = peft.get_peft_model(base, config)
    generator = torch.Generator().manual_seed(case["seed"] + 1000)
    with torch.no_grad():
        for name, p in sorted(lora_parameters(model).items()):
            if ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=generator) * B_STD)
    model.eval()                              # no dropout anywhere (OPT's config has dropout 0.1)
    return model


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().to(torch.float32).contiguous().clone() for k, v in sorted(tensors.items())},
              str(path), metadata={"format": "pt"})


# ---------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------

def make_case(case: dict) -> dict:
    directory = OUT / case["name"]
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    model = build_adapter(case)
    base_config = model.base_model.model.config
    scaling = case["alpha"] / (case["r"] ** 0.5 if case["rslora"] else case["r"])

    # adapter/: exactly what PEFT writes (minus its README.md model card).
    model.save_pretrained(str(directory / "adapter"))
    (directory / "adapter" / "README.md").unlink(missing_ok=True)
    assert sorted(os.listdir(directory / "adapter")) == ["adapter_config.json", "adapter_model.safetensors"]
    saved = load_file(str(directory / "adapter" / "adapter_model.safetensors"))
    params = lora_parameters(model)
    assert sorted(saved) == sorted(params), "saved keys differ from the parameter names minus '.default'"
    for k in saved:
        assert torch.equal(saved[k], params[k].detach())

    # Single batch: loss, log-probs, gradients.
    rows = batch_rows(base_config, case["seed"])
    write_json(directory / "batch.json", {
        "model": f"models/{case['model']}",
        "note": "unpadded rows; labels[t] = -100 is not trained; logits[t] predicts labels[t+1]",
        "rows": rows,
    })
    model.zero_grad(set_to_none=True)
    loss, count = batch_loss(model, rows)
    loss.backward()
    gradients = {k: p.grad for k, p in params.items()}
    assert all(g is not None and float(g.abs().max()) > 0 for g in gradients.values())
    write_safetensors(directory / "gradients.safetensors", gradients)
    model.zero_grad(set_to_none=True)

    # (Not with LongRoPE: in a padded batch transformers picks the long factors for every row once one row passes
    # the original context, so the batch's loss differs from the rows' own.)
    padded = None
    if (getattr(base_config, "rope_parameters", None) or {}).get("rope_type") != "longrope":
        padded = padded_hf_loss(model, rows, pad_id=base_config.pad_token_id or 0)
        assert abs(padded - loss.item()) < 1e-5, (padded, loss.item())

    logprobs = [row_logprobs(model, r["input_ids"]) for r in rows]
    with model.disable_adapter():
        base_logprobs = [row_logprobs(model, r["input_ids"]) for r in rows]
    merged = copy.deepcopy(model).merge_and_unload()
    merged.eval()
    merged_logprobs = [row_logprobs(merged, r["input_ids"]) for r in rows]
    del merged

    # Self-check: PEFT reloads the saved directory onto a fresh base and gets the same log-probs.
    fresh = AutoModelForCausalLM.from_pretrained(f"Tests/HoneKitTests/Fixtures/models/{case['model']}",
                                                 dtype=torch.float32)
    reloaded = peft.PeftModel.from_pretrained(fresh, str(directory / "adapter"))
    reloaded.eval()
    reload_diff = max_diff(logprobs, [row_logprobs(reloaded, r["input_ids"]) for r in rows])
    assert reload_diff == 0.0, reload_diff
    del reloaded, fresh

    gradient_norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in gradients.values())))
    expected = {
        "model": f"models/{case['model']}",
        "peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
        "r": case["r"], "lora_alpha": case["alpha"], "use_rslora": case["rslora"], "scaling": scaling,
        "target_modules": case["targets"],
        "loss": loss.item(),
        "label_tokens": count,
        "loss_padded_batch": padded,
        "gradient_norm": gradient_norm,
        "logprobs": logprobs,
        "base_logprobs": base_logprobs,
        "merged_logprobs": merged_logprobs,
        "max_abs_diff_vs_base": max_diff(logprobs, base_logprobs),
        "max_abs_diff_merged_vs_adapter": max_diff(logprobs, merged_logprobs),
    }
    summary = {"case": case["name"], "loss": expected["loss"], "grad_norm": gradient_norm,
               "vs_base": expected["max_abs_diff_vs_base"],
               "merged_diff": expected["max_abs_diff_merged_vs_adapter"], "padded_diff": None if padded is None else abs(padded - loss.item())}

    if case["steps"]:
        summary["steps"] = make_steps(model, params, base_config, case, directory)
    write_json(directory / "expected.json", expected)
    return summary


def make_steps(model, params, base_config, case: dict, directory: Path) -> list:
    """10 optimizer steps from the saved adapter, the way transformers' Trainer runs them: per step, the
    micro-batches' summed token losses divided by the step's total label-token count (num_items_in_batch),
    backward per micro-batch (gradients accumulate), clip_grad_norm_(max_grad_norm) on the accumulated
    gradient, AdamW step, scheduler step."""
    rows = step_rows(base_config, case["seed"] + 7)
    plan = step_plan(case["seed"] + 8)
    ordered = [p for _, p in sorted(params.items())]
    optimizer = torch.optim.AdamW(ordered, lr=LR, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY)
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=WARMUP, num_training_steps=STEPS)
    max_grad_norm = case.get("max_grad_norm", DEFAULT_MAX_GRAD_NORM)
    records = []
    for step, micro_batches in enumerate(plan):
        step_count = sum(int((torch.tensor(rows[i]["labels"][1:]) != -100).sum())
                         for mb in micro_batches for i in mb)
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        micro_sums = []
        for mb in micro_batches:
            total = torch.zeros(())
            for i in mb:
                loss_sum, _ = row_token_loss_sum(model, rows[i])
                total = total + loss_sum
            (total / step_count).backward()
            micro_sums.append(total.item())
            step_loss += (total / step_count).item()
        lr = optimizer.param_groups[0]["lr"]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(ordered, max_grad_norm))
        optimizer.step()
        scheduler.step()
        records.append({"step": step + 1, "micro_batches": micro_batches, "label_tokens": step_count,
                        "micro_batch_loss_sums": micro_sums, "loss": step_loss, "lr": lr,
                        "grad_norm": grad_norm, "clipped": grad_norm > max_grad_norm})
    write_safetensors(directory / "final_adapter.safetensors", dict(params))
    write_json(directory / "steps.json", {
        "model": f"models/{case['model']}",
        "start": "adapter/",
        "optimizer": {"name": "torch.optim.AdamW", "lr": LR, "betas": list(BETAS), "eps": EPS,
                      "weight_decay": WEIGHT_DECAY},
        "schedule": {"name": "get_linear_schedule_with_warmup", "num_warmup_steps": WARMUP,
                     "num_training_steps": STEPS},
        "max_grad_norm": max_grad_norm,
        "micro_batch_size": MICRO_BATCH, "gradient_accumulation_steps": ACCUMULATION,
        "rows": rows,
        "steps": records,
    })
    return [(r["loss"], r["lr"], r["grad_norm"]) for r in records]


def main() -> None:
    os.chdir(REPO)   # so adapter_config.json's base_model_name_or_path is repository-relative
    print("peft", peft.__version__, "transformers", transformers.__version__, "torch", torch.__version__,
          "safetensors", safetensors.__version__)
    # --only NAME[,NAME]: just those cases
    only = set(sys.argv[sys.argv.index("--only") + 1].split(",")) if "--only" in sys.argv else None
    for case in CASES:
        if only is not None and case["name"] not in only:
            continue
        summary = make_case(case)
        steps = summary.pop("steps", None)
        print(json.dumps(summary))
        for loss, lr, norm in steps or []:
            print(f"    loss {loss:.6f}  lr {lr:.6g}  grad_norm {norm:.6f}")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total size {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
