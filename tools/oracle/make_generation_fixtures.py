#!/usr/bin/env python3
"""Build Hone's generation fixtures with transformers' own code.

Outputs (relative to the repository root):
  Tests/HoneKitTests/Fixtures/generation/sampler.json   processed distributions of transformers' logits
                                                         processors for a grid of parameters and histories
  Tests/HoneKitTests/Fixtures/generation/greedy.json    greedy `generate` outputs of the fixture models and
                                                         models/hone-tiny (single prompts and a left-padded batch)

Rerun:  tools/oracle/setup && tools/oracle/.venv/bin/python tools/oracle/make_generation_fixtures.py
(/work/oracle-venv/bin/python works as well: the same pinned transformers 5.23 / torch CPU.)

Everything is seeded and torch runs single-threaded (oracle_common), so a rerun writes identical files.

sampler.json
------------
The processors are the ones `GenerationMixin._get_logits_processor` builds, in its order:
RepetitionPenaltyLogitsProcessor (also in greedy mode), then, only when sampling,
TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper, each with
min_tokens_to_keep=1 (the non-beam value). A warper is added only when `generate` would add it
(temperature != 1, top_k != 0, top_p < 1, min_p set). "probabilities" is softmax of the processed scores
(float32), i.e. the distribution torch.multinomial draws from; for greedy cases it is one-hot at
torch.argmax of the penalised scores (transformers' greedy step).

Logit vectors (vocabulary 300, float32, written with the shortest repr that round-trips the float32; -inf
as the string "-inf"):
  * "normal":  N(0, 2^2).
  * "ties":    N(0, 1.5^2) rounded to 0.5 so that many values tie, the maximum tied at ids 7, 8 and 250,
               ties straddling the top-k boundaries, plus extreme values (-60, -1e4) and three -inf.
  * "peaked":  N(0, 1) with id 123 at 8.0, which holds most of the mass.
Histories: token ids repeated (each distinct id is penalised once), ids of negative and positive logits,
and one id >= the vocabulary (transformers clamps it into a dropped column, i.e. ignores it).

Top-p boundaries: torch.sort is not stable (introsort, even for 17 elements), so when tokens with EQUAL
logits straddle the top-p cut, which of them transformers removes depends on the sort's internal order.
Hone's rule is deterministic: among equal scores the lower id ranks higher (is kept), as torch.argmax
prefers the first index. The script re-runs TopPLogitsWarper's computation (the same softmax / cumsum /
`<= 1 - top_p` lines) with a stable sort in both tie orders. Where the two differ the case is marked
"tie_at_top_p_boundary": true, its "probabilities" follow Hone's rule, "kept_by_torch" records how
many tokens torch's own (unstable) order kept and "same_ids_as_torch" whether torch kept the same ids
(it never does in these six cases). Everywhere else the re-run is asserted to equal transformers' warper
exactly. One consequence worth knowing: with top_p = 0 transformers keeps ONE of the tied maxima, and
on the "ties" vector it is not id 7, the token greedy decoding (torch.argmax) picks.

Probabilities are written with 7 significant digits (abs. error < 5e-8), either dense (a list of 300) or,
when fewer than half the ids survive, sparse as [id, p] pairs (absent ids have p = 0).

greedy.json
-----------
For each model: `model.generate(input_ids, attention_mask, do_sample=False, max_new_tokens=24,
eos_token_id=<config's>, pad_token_id=<config's or 0>)`. "generated_tokens" are the new tokens; they end
with the EOS id when "stopped_by" is "eos". The 256-id fixture models have no tokenizer: prompts are
seeded token rows starting with BOS 1 (OPT: BOS 2). One prompt per model is chosen (by a seeded search
over 396 candidates) so that greedy decoding emits EOS before 24 tokens where such a prompt exists
(llama-gqa, qwen2-bias, llama-tied-llama3; opt-preln never reaches EOS and says so in a "note"). hone-tiny: alpaca
prompts (Alpaca-LoRA's prompt_no_input / prompt_input) tokenized with the `tokenizers` library on
tokenizer.json with add_special_tokens=True (BOS), not transformers' AutoTokenizer (methods.md §8).
"batch": the same prompts generated together, LEFT padded with attention masks; the script records
whether every row equals its single-prompt output ("rows_equal_single").
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402  (sets torch threads / seeds on import)

from transformers import AutoModelForCausalLM  # noqa: E402
from transformers.generation.logits_process import (  # noqa: E402
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

OUT = oc.FIXTURES / "generation"
VOCAB = 300
MAX_NEW_TOKENS = 24


# ---------------------------------------------------------------------------
# Sampler fixtures
# ---------------------------------------------------------------------------

def f32(x: float):
    """A float32 value as the shortest decimal that round-trips it (as a Python float for JSON)."""
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return float(str(np.float32(x)))


def make_logit_vectors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(20250301)
    normal = torch.randn(VOCAB, generator=g) * 2.0

    ties = torch.round(torch.randn(VOCAB, generator=g) * 1.5 * 2.0) / 2.0
    top = float(ties.max()) + 1.0
    ties[7] = ties[8] = ties[250] = top          # the maximum, tied three times (argmax -> 7)
    ties[20] = -60.0                             # extreme but finite
    ties[21] = -1.0e4
    ties[22] = float("-inf")
    ties[23] = float("-inf")
    ties[299] = float("-inf")
    ties[30] = 4.0                               # a few exact ties just below the top
    ties[31] = 4.0
    ties[32] = 4.0

    peaked = torch.randn(VOCAB, generator=g)
    peaked[123] = 8.0                            # most of the mass
    return {"normal": normal.float(), "ties": ties.float(), "peaked": peaked.float()}


HISTORIES = {
    "none": [],
    "repeats": [5, 5, 5, 9, 12, 9, 7, 40, 41, 42, 299, 0],
    "top_and_negative": [7, 8, 250, 1, 2, 3, 4, 30, 123, 310],   # 310 >= vocab: ignored
}


def processors_for(params: dict):
    procs = []
    penalty = params.get("repetition_penalty", 1.0)
    if penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(penalty))
    if params["temperature"] == 0:
        return procs, []
    warpers = []
    if params["temperature"] != 1.0:
        warpers.append(TemperatureLogitsWarper(params["temperature"]))
    if params.get("top_k", 0) != 0:
        warpers.append(TopKLogitsWarper(top_k=params["top_k"], min_tokens_to_keep=1))
    if params.get("top_p", 1.0) < 1.0:
        warpers.append(TopPLogitsWarper(top_p=params["top_p"], min_tokens_to_keep=1))
    if params.get("min_p", 0.0) > 0.0:
        warpers.append(MinPLogitsWarper(min_p=params["min_p"], min_tokens_to_keep=1))
    return procs, warpers


def top_p_stable(scores: torch.Tensor, top_p: float, lower_id_kept: bool) -> torch.Tensor:
    """TopPLogitsWarper.__call__'s lines with a STABLE sort in a chosen tie order. lower_id_kept: among
    equal scores the higher id comes first in the ascending order, so it is removed first."""
    s = scores[0]
    order = torch.arange(s.shape[0])
    if lower_id_kept:
        order = order.flip(0)
    sorted_indices = order[torch.sort(s[order], stable=True).indices]
    sorted_logits = s[sorted_indices]
    cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_indices_to_remove = cumulative_probs <= (1 - top_p)
    sorted_indices_to_remove[-1:] = 0
    indices_to_remove = torch.zeros_like(sorted_indices_to_remove)
    indices_to_remove[sorted_indices] = sorted_indices_to_remove
    return scores.masked_fill(indices_to_remove.unsqueeze(0), -float("inf"))


def run_processors(logits: torch.Tensor, history: list[int], params: dict, top_p_order: str = "torch"):
    """Returns (probabilities, greedy token or None). top_p_order: "torch" (transformers' warper),
    "lower_id_kept" / "higher_id_kept" (the same computation with a stable sort)."""
    procs, warpers = processors_for(params)
    input_ids = torch.tensor([history if history else [0]], dtype=torch.long)
    scores = logits.clone().unsqueeze(0)
    for p in procs:
        if history:  # an empty history has nothing to penalise
            scores = p(input_ids, scores)
    if params["temperature"] == 0:
        winner = int(torch.argmax(scores[0]))
        probs = torch.zeros(VOCAB)
        probs[winner] = 1.0
        return probs, winner
    for w in warpers:
        if isinstance(w, TopPLogitsWarper) and top_p_order != "torch":
            scores = top_p_stable(scores, w.top_p, lower_id_kept=(top_p_order == "lower_id_kept"))
        else:
            scores = w(input_ids, scores)
    return torch.softmax(scores, dim=-1)[0], None


def parameter_grid() -> list[dict]:
    grid = []
    def add(**kw):
        d = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0)
        d.update(kw)
        grid.append(d)
    # greedy (argmax after the repetition penalty)
    add(temperature=0.0)
    add(temperature=0.0, repetition_penalty=1.3)
    add(temperature=0.0, repetition_penalty=50.0)
    # temperature only
    add(temperature=1.0)
    add(temperature=0.7)
    add(temperature=1.5)
    add(temperature=0.1)
    # top-k
    add(top_k=1)
    add(top_k=5)
    add(top_k=40, temperature=0.8)
    add(top_k=299)
    add(top_k=300)
    add(top_k=1000)
    # top-p
    add(top_p=0.9)
    add(top_p=0.5, temperature=0.7)
    add(top_p=0.999)
    add(top_p=0.0)
    add(top_p=0.75, top_k=40, temperature=0.1)      # Alpaca-LoRA generate.py's (sampled) values
    # min-p
    add(min_p=0.05)
    add(min_p=0.2, temperature=1.3)
    add(min_p=1.0)
    # everything together
    add(temperature=0.8, top_k=50, top_p=0.95, min_p=0.02, repetition_penalty=1.1)
    add(temperature=1.2, top_k=20, top_p=0.8, min_p=0.1, repetition_penalty=0.8)
    add(temperature=0.9, top_p=0.6, repetition_penalty=1.5)
    return grid


def history_for(case_index: int) -> str:
    return list(HISTORIES)[case_index % len(HISTORIES)]


def p7(x: float) -> float:
    return float(f"{x:.7g}")


def make_sampler_fixture() -> dict:
    vectors = make_logit_vectors()
    cases = []
    grid = parameter_grid()
    index = 0
    for vector_name, logits in vectors.items():
        for params in grid:
            # every parameter set meets each history on some vector; penalty cases always get one
            history_name = history_for(index)
            if params["repetition_penalty"] != 1.0 and history_name == "none":
                history_name = "repeats"
            history = HISTORIES[history_name]
            probs, winner = run_processors(logits, history, params)
            case = {"logits": vector_name, "history": history_name, "parameters": dict(params)}
            if winner is not None:
                case["greedy_token"] = winner
            if params["temperature"] != 0 and params["top_p"] < 1.0:
                lower, _ = run_processors(logits, history, params, "lower_id_kept")
                higher, _ = run_processors(logits, history, params, "higher_id_kept")
                if torch.equal(lower > 0, higher > 0):
                    # no tie at the cut: the re-run must be transformers' warper exactly
                    assert torch.equal(lower, probs), (vector_name, params)
                else:
                    case["tie_at_top_p_boundary"] = True
                    case["kept_by_torch"] = int((probs > 0).sum())
                    case["same_ids_as_torch"] = bool(torch.equal(probs > 0, lower > 0))
                    probs = lower
            kept = int((probs > 0).sum())
            case["kept"] = kept
            values = probs.tolist()
            if kept * 2 > VOCAB:
                case["probabilities"] = [p7(p) for p in values]
            else:
                case["probabilities"] = [[i, p7(p)] for i, p in enumerate(values) if p > 0]
            cases.append(case)
            index += 1
    return {
        "transformers": oc.versions()["transformers"],
        "torch": oc.versions()["torch"],
        "vocabulary_size": VOCAB,
        "note": "probabilities = softmax of the scores after transformers' processors in generate's order "
                "(7 significant digits); dense list, or [id, p] pairs when fewer than half the ids survive; "
                "greedy cases are one-hot at greedy_token; tie_at_top_p_boundary cases follow Hone's rule "
                "(among equal scores the lower id is kept), see make_generation_fixtures.py.",
        "logits": {name: [f32(float(x)) for x in v.tolist()] for name, v in vectors.items()},
        "histories": HISTORIES,
        "cases": cases,
    }


# ---------------------------------------------------------------------------
# Greedy generation fixtures
# ---------------------------------------------------------------------------

ALPACA_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately "
                   "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")
ALPACA_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
                "{instruction}\n\n### Input:\n{input}\n\n### Response:\n")

HONE_TINY_PROMPTS = [
    ALPACA_NO_INPUT.format(instruction="Give three tips for staying healthy."),
    ALPACA_NO_INPUT.format(instruction="Return the value of the environment variable."),
    ALPACA_INPUT.format(instruction="Summarize the module docstring.", input="This module provides access to the mathematical functions."),
    ALPACA_NO_INPUT.format(instruction="Hi"),
]


@torch.no_grad()
def greedy(model, rows: list[list[int]], eos: int, pad: int) -> list[dict]:
    """Left-pads `rows`, runs generate once, and returns per-row new tokens (cut after the first EOS)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
                         eos_token_id=eos, pad_token_id=pad, num_beams=1)
    results = []
    for i in range(len(rows)):
        new = [int(t) for t in out[i, width:]]
        if eos in new:
            new = new[: new.index(eos) + 1]
            stopped = "eos"
        else:
            stopped = "length"
        results.append({"generated_tokens": new, "stopped_by": stopped})
    return results


def random_prompts(vocab: int, bos: int, seed: int, count: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        n = int(rng.integers(3, 14))
        r = [int(x) for x in rng.integers(3, vocab, size=n)]
        r[0] = bos
        rows.append(r)
    return rows


FIXTURE_MODELS = ["llama-gqa", "qwen2-bias", "opt-preln", "llama-tied-llama3"]


def load(path: Path):
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


def model_entry(name: str, model_path: Path, rel: str, prompts: list[list[int]], texts=None, note=None) -> dict:
    model = load(model_path)
    cfg = model.config
    eos = cfg.eos_token_id
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else 0
    singles = [greedy(model, [p], eos, pad)[0] for p in prompts]
    batch = greedy(model, prompts, eos, pad)
    equal = all(s == b for s, b in zip(singles, batch))
    cases = []
    for i, (p, s) in enumerate(zip(prompts, singles)):
        case = {"prompt_tokens": p}
        if texts is not None:
            case["prompt"] = texts[i]
        case.update(s)
        cases.append(case)
    entry = {
        "model": rel,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "max_new_tokens": MAX_NEW_TOKENS,
        "cases": cases,
        "batch": {
            "padding_side": "left",
            "rows": [{"prompt_tokens": p, **b} for p, b in zip(prompts, batch)],
            "rows_equal_single": equal,
        },
    }
    if not equal:
        entry["batch"]["note"] = "a batched row differs from its single-prompt output"
    if note:
        entry["note"] = note
    print(f"{name}: stops {[c['stopped_by'] for c in cases]}, batch equal to single: {equal}")
    return entry


EOS_SEARCH = 400


def prompts_with_eos(model_path: Path, bos: int, seed: int) -> tuple[list[list[int]], str | None]:
    """Four prompts; the first candidate whose greedy continuation ends in EOS (searching seeded
    candidates) leads, so that both stop reasons are covered where the model allows it."""
    model = load(model_path)
    eos = model.config.eos_token_id
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    candidates = random_prompts(256, bos, seed, EOS_SEARCH)
    for c in candidates[4:]:
        if greedy(model, [c], eos, pad)[0]["stopped_by"] == "eos":
            return [c] + candidates[:3], None
    return candidates[:4], (f"no greedy continuation of {EOS_SEARCH - 4} seeded prompts reaches EOS within "
                            f"{MAX_NEW_TOKENS} tokens (the random model collapses onto a few tokens), so every case "
                            f"stops by length")


def make_greedy_fixture() -> dict:
    from tokenizers import Tokenizer

    models = []
    for k, name in enumerate(FIXTURE_MODELS):
        path = oc.FIXTURES / "models" / name
        bos = 2 if name.startswith("opt") else 1
        prompts, note = prompts_with_eos(path, bos, 20250302 + k)
        models.append(model_entry(name, path, f"models/{name}", prompts, note=note))

    tiny = oc.REPO / "models" / "hone-tiny"
    tok = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    prompts = [tok.encode(t, add_special_tokens=True).ids for t in HONE_TINY_PROMPTS]
    assert all(p[0] == 1 for p in prompts)
    models.append(model_entry("hone-tiny", tiny, "models/hone-tiny", prompts, texts=HONE_TINY_PROMPTS,
                              note="random weights: the continuations are degenerate (one token repeated) and "
                                   "never reach EOS; they pin the prompt tokens and the greedy path"))
    return {
        "transformers": oc.versions()["transformers"],
        "torch": oc.versions()["torch"],
        "note": "model.generate(do_sample=False, max_new_tokens=24, eos_token_id, pad_token_id); "
                "generated_tokens end with the EOS id when stopped_by is eos. 'models/hone-tiny' is relative "
                "to the repository root, the others to Tests/HoneKitTests/Fixtures. hone-tiny prompts: "
                "Alpaca-LoRA template, tokenizers library on tokenizer.json, add_special_tokens=True.",
        "models": models,
    }


def main() -> None:
    sampler = make_sampler_fixture()
    oc.write_json(OUT / "sampler.json", sampler)
    ties = sum(1 for c in sampler["cases"] if c.get("tie_at_top_p_boundary"))
    print(f"sampler.json: {len(sampler['cases'])} cases, {ties} with a tie at the top-p boundary")
    oc.write_json(OUT / "greedy.json", make_greedy_fixture())
    for f in sorted(OUT.iterdir()):
        print(f"{f.relative_to(oc.REPO)}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
