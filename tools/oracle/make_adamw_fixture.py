#!/usr/bin/env python3
"""torch.optim.AdamW oracle for hk_adamw_step (Tests/HoneKernelsTests/Fixtures/adamw/adamw.json).

For a few hyper-parameter sets, runs torch.optim.AdamW on one small seeded f32 tensor for five steps with
seeded gradients, once with foreach=False (_single_tensor_adam) and once with the default (foreach=None,
which on CPU also takes the single-tensor path), checks that both give the same bits, and writes the inputs
and after each step the parameters, exp_avg and exp_avg_sq. Floats are written with Python's repr of the
f32 value widened to double, which reads back exactly.

The cases cover: the Hugging Face defaults with weight decay; no weight decay; and beta1 < 0.5, where ATen's
lerp takes its other branch (weight 1 - beta1 >= 0.5). n = 35 is not a multiple of any vector width, so
torch's scalar tail loop is covered too.

Usage: /work/oracle-venv/bin/python tools/oracle/make_adamw_fixture.py   (torch 2.13.0+cpu; runs in ~1 s)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "HoneKernelsTests" / "Fixtures" / "adamw" / "adamw.json"

STEPS = 5
SIZE = 35
# name, lr, beta1, beta2, eps, weight_decay, gradient scale, seed
CASES = [
    ("hf-defaults-decay", 1e-3, 0.9, 0.999, 1e-8, 0.01, 0.01, 1),
    ("no-decay", 3e-4, 0.8, 0.95, 1e-6, 0.0, 1.0, 2),
    ("small-beta1", 2e-2, 0.3, 0.9, 1e-8, 0.1, 0.1, 3),
]


def floats(tensor: torch.Tensor) -> list[float]:
    return [float(x) for x in tensor.detach().to(torch.float32).reshape(-1).tolist()]


def run(p0: torch.Tensor, grads: list[torch.Tensor], lr, beta1, beta2, eps, weight_decay, foreach):
    param = p0.clone().requires_grad_(True)
    optimizer = torch.optim.AdamW([param], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                                  foreach=foreach)
    steps = []
    for grad in grads:
        param.grad = grad.clone()
        optimizer.step()
        state = optimizer.state[param]
        steps.append({"param": floats(param), "exp_avg": floats(state["exp_avg"]),
                      "exp_avg_sq": floats(state["exp_avg_sq"])})
    return steps


def main() -> None:
    torch.set_num_threads(1)
    cases = []
    for name, lr, beta1, beta2, eps, weight_decay, grad_scale, seed in CASES:
        generator = torch.Generator().manual_seed(seed)
        p0 = torch.randn(SIZE, generator=generator, dtype=torch.float32)
        grads = [torch.randn(SIZE, generator=generator, dtype=torch.float32) * grad_scale for _ in range(STEPS)]
        single = run(p0, grads, lr, beta1, beta2, eps, weight_decay, foreach=False)
        default = run(p0, grads, lr, beta1, beta2, eps, weight_decay, foreach=None)
        if single != default:
            raise SystemExit(f"{name}: foreach=False and the default differ; the fixture assumes they agree")
        cases.append({
            "name": name, "lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
            "param": floats(p0), "grads": [floats(g) for g in grads], "steps": single,
        })
    document = {
        "generator": "tools/oracle/make_adamw_fixture.py",
        "torch": torch.__version__,
        "note": "steps[i] is the state after step i + 1 (torch's step counter i + 1)",
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
