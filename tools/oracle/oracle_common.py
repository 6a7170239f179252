"""Shared helpers for the Hone oracle scripts (make_fixtures.py, make_default_model.py,
read_gguf_check.py).

Everything here is deterministic: parameters are drawn from explicitly seeded
torch.Generator objects, token rows from seeded numpy generators, and torch runs
single-threaded so reruns on the same machine give byte-identical files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import transformers

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "Tests" / "HoneKitTests" / "Fixtures"

torch.set_num_threads(1)
torch.manual_seed(0)


def versions() -> dict:
    return {"transformers": transformers.__version__, "torch": torch.__version__}


# ---------------------------------------------------------------------------
# Random re-initialisation of EVERY parameter
# ---------------------------------------------------------------------------

EMBED_STD = 0.25          # token / position embeddings
NORM_STD = 0.1            # norm weights ~ 1 + N(0, 0.1^2)
BIAS_STD = 0.05           # every bias (incl. LayerNorm bias) ~ N(0, 0.05^2)
LM_HEAD_GAIN = 2.0        # untied lm_head ~ N(0, (2/sqrt(fan_in))^2)
LINEAR_GAIN = 1.0         # other matrices ~ N(0, (1/sqrt(fan_in))^2)  (0.125 for fan_in 64)


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int) -> dict:
    """Overwrite every parameter of `model` with seeded random values.

    transformers' own init zeroes biases and sets norm weights to 1, which would
    hide bugs (a missing bias or a skipped norm weight would still match), so:
      * 1-D `*.bias`                 ~ N(0, 0.05^2)
      * other 1-D (norm weights)     ~ 1 + N(0, 0.1^2)
      * embeddings (token/position)  ~ N(0, 0.25^2)
      * untied lm_head               ~ N(0, (2/sqrt(fan_in))^2)
      * all other matrices           ~ N(0, (1/sqrt(fan_in))^2)
    Parameters are visited in `named_parameters()` order (tied weights once).
    Returns {name: std-or-description} for the record.
    """
    g = torch.Generator().manual_seed(seed)
    plan = {}
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
        if p.ndim == 1:
            if name.endswith("bias"):
                val = noise * BIAS_STD
                plan[name] = f"N(0,{BIAS_STD}^2)"
            else:
                val = 1.0 + noise * NORM_STD
                plan[name] = f"1+N(0,{NORM_STD}^2)"
        else:
            fan_in = p.shape[1]
            if "embed" in name:
                std = EMBED_STD
            elif name == "lm_head.weight":
                std = LM_HEAD_GAIN / math.sqrt(fan_in)
            else:
                std = LINEAR_GAIN / math.sqrt(fan_in)
            val = noise * std
            plan[name] = f"N(0,{std:.6g}^2)"
        p.copy_(val.to(p.dtype))
    return plan


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------

def make_rows(vocab: int, lengths, seed: int) -> list[list[int]]:
    """Token rows with ids in [3, vocab); rows of length >= 2 start with BOS id 1."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in lengths:
        ids = [int(x) for x in rng.integers(3, vocab, size=n)]
        if n >= 2:
            ids[0] = 1
        rows.append(ids)
    return rows


def _lp_from_logits(logits: torch.Tensor, ids: list[int]) -> list:
    lp = torch.log_softmax(logits.float(), dim=-1)
    return [None] + [float(lp[i - 1, ids[i]]) for i in range(1, len(ids))]


@torch.no_grad()
def score_row(model, ids: list[int]) -> dict:
    """One forward over the whole row, no cache, no padding."""
    out = model(input_ids=torch.tensor([ids]), use_cache=False)
    logits = out.logits[0].float()
    return {
        "tokens": list(ids),
        "logprobs": _lp_from_logits(logits, ids),
        "last_logits": [float(x) for x in logits[-1, :8]],
    }


@torch.no_grad()
def score_incremental(model, ids: list[int], prefill: int) -> dict:
    """Prefill ids[:prefill] with use_cache=True, then feed the rest one at a time."""
    out = model(input_ids=torch.tensor([ids[:prefill]]), use_cache=True)
    past = out.past_key_values
    chunks = [out.logits[0].float()]
    for t in range(prefill, len(ids)):
        out = model(input_ids=torch.tensor([[ids[t]]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        chunks.append(out.logits[0].float())
    logits = torch.cat(chunks, dim=0)
    assert logits.shape[0] == len(ids)
    return {
        "prefill_length": prefill,
        "tokens": list(ids),
        "logprobs": _lp_from_logits(logits, ids),
        "last_logits": [float(x) for x in logits[-1, :8]],
    }


def max_abs_diff(a: list, b: list) -> float:
    return max((abs(x - y) for x, y in zip(a, b) if x is not None and y is not None), default=0.0)


@torch.no_grad()
def logprob_spread(model, rows) -> float:
    """Std of the full log-softmax over the vocabulary, averaged over positions of all rows:
    a measure of how far from uniform the model's predictions are."""
    stds = []
    for ids in rows:
        logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()
        stds.append(torch.log_softmax(logits, dim=-1).std(dim=-1))
    return float(torch.cat(stds).mean())


def _dumps(obj, level: int = 0) -> str:
    """JSON with objects expanded one key per line and lists of scalars on one line.
    Floats use Python's repr (shortest string that round-trips the value exactly)."""
    pad, pad1 = " " * level, " " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{pad1}{json.dumps(str(k), ensure_ascii=False)}: {_dumps(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple)) for x in obj):
            return "[" + ", ".join(_dumps(x, level + 1) for x in obj) + "]"
        return "[\n" + ",\n".join(pad1 + _dumps(x, level + 1) for x in obj) + "\n" + pad + "]"
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"non-finite float in golden: {obj}")
        return repr(obj)
    return json.dumps(obj, ensure_ascii=False)


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _dumps(obj) + "\n"
    assert json.loads(text) == obj
    path.write_text(text, encoding="utf-8")
