#!/usr/bin/env python3
"""Build Hone's KTO, ORPO, CPO and SimPO fixtures from TRL 1.16's own trainers.

Output: Tests/HoneKitTests/Fixtures/preference-objectives/
  cases.json              per case: the batch, the settings, TRL's loss and logged metrics
  gradients.safetensors   "<case>/<PEFT saved key>" = d loss / d every lora_A / lora_B, float32

Two kinds of case:
* "losses" cases: each trainer's loss on fixed log-probabilities, with d loss / d log-prob from autograd.
  CPO and ORPO: CPOTrainer.cpo_loss and ORPOTrainer.odds_ratio_loss called directly. KTO: KTOTrainer._compute_loss
  with precomputed reference log-probs in the batch and a stand-in model whose per-token log-probs carry the fixed
  values, so TRL's own code forms the KL estimate, the clamp, the weights, the mean and the metrics.
* "step" cases: one full loss + backward through the trainer with a PEFT LoRA policy on the llama-gqa fixture
  model (KTOTrainer._compute_loss, ORPOTrainer / CPOTrainer.get_batch_loss_metrics) on hand-made batches in their
  collated layout. The policy adapter is Tests/HoneKitTests/Fixtures/objectives/adapter (written by
  make_objective_fixtures.py; the same seeded fill, checked here); the KTO "init-adapter" case continues from
  objectives/ref_adapter, which TRL copies into its frozen "ref" adapter, with the policy moved to adapter/.

Rerun:  tools/oracle/.venv/bin/python tools/oracle/make_preference_objective_fixtures.py
"""

from __future__ import annotations

import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import shutil  # noqa: E402
import tempfile  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402
import peft  # noqa: E402
import torch  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from trl.experimental.cpo import CPOConfig, CPOTrainer  # noqa: E402
from trl.experimental.orpo import ORPOConfig, ORPOTrainer  # noqa: E402
from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference  # noqa: E402

from oracle_common import REPO, FIXTURES, write_json  # noqa: E402
from make_lora_fixtures import write_safetensors  # noqa: E402
from make_objective_fixtures import (BOS, EOS, adapter_gradients, base_model, dummy_tokenizer, fill_adapter,  # noqa: E402
                                     lora_config, rand_ids)

OUT = FIXTURES / "preference-objectives"
ADAPTERS = FIXTURES / "objectives"
POLICY_SEED = 301        # objectives/adapter
REFERENCE_SEED = 302     # objectives/ref_adapter


def check_policy(policy) -> None:
    """The trainer's "default" adapter equals objectives/adapter (what the Swift tests load)."""
    saved = {n.replace(".default.", "."): p for n, p in policy.named_parameters() if ".default." in n and "lora_" in n}
    for key, value in load_file(str(ADAPTERS / "adapter" / "adapter_model.safetensors")).items():
        assert torch.equal(saved[key].detach(), value), key


def grads_of(*tensors):
    return [[float(x) for x in t.grad] for t in tensors]


# ---------------------------------------------------------------------------
# (a) Loss functions on fixed log-probabilities
# ---------------------------------------------------------------------------

def cpo_loss_cases(cases: list) -> None:
    chosen = [-12.5, -3.2, -30.0, -7.7, -1.4]
    rejected = [-11.0, -6.9, -25.5, -7.9, -9.0]
    settings = [("sigmoid", 0.1, 0.0, 0.5), ("sigmoid", 0.3, 0.2, 0.5), ("hinge", 0.1, 0.0, 0.5), ("ipo", 0.5, 0.0, 0.5),
                ("simpo", 2.0, 0.0, 1.0), ("simpo", 2.5, 0.15, 0.6)]
    for loss_type, beta, smoothing, gamma in settings:
        values = (chosen, rejected) if loss_type not in ("ipo", "simpo") else ([c / 9 for c in chosen], [r / 7 for r in rejected])
        c = torch.tensor(values[0], dtype=torch.float64, requires_grad=True)
        r = torch.tensor(values[1], dtype=torch.float64, requires_grad=True)
        this = types.SimpleNamespace(alpha=0.0, beta=beta, simpo_gamma=gamma, label_smoothing=smoothing, loss_type=loss_type,
                                     accelerator=types.SimpleNamespace(device="cpu"))
        losses, chosen_rewards, rejected_rewards = CPOTrainer.cpo_loss(this, c, r)
        losses.sum().backward()
        cases.append({"name": f"cpo-loss-{loss_type}-{beta}", "objective": "cpo", "kind": "losses", "loss_type": loss_type,
                      "beta": beta, "label_smoothing": smoothing, "simpo_gamma": gamma, "chosen": values[0],
                      "rejected": values[1], "losses": [float(x) for x in losses],
                      "rewards_chosen": [float(x) for x in chosen_rewards], "rewards_rejected": [float(x) for x in rejected_rewards],
                      "d_chosen": grads_of(c)[0], "d_rejected": grads_of(r)[0]})


def orpo_loss_cases(cases: list) -> None:
    # Averaged log-probs on both sides of −ln 2 (log1mexp's branch) and close to 0.
    chosen = [-1.3, -0.2, -2.7, -0.69, -0.01]
    rejected = [-1.9, -0.75, -2.1, -0.70, -3.5]
    for beta in [0.1, 0.7]:
        c = torch.tensor(chosen, dtype=torch.float64, requires_grad=True)
        r = torch.tensor(rejected, dtype=torch.float64, requires_grad=True)
        this = types.SimpleNamespace(beta=beta, accelerator=types.SimpleNamespace(device="cpu"))
        losses, chosen_rewards, rejected_rewards, ratio, log_odds = ORPOTrainer.odds_ratio_loss(this, c, r)
        losses.sum().backward()
        # TRL's per-pair "losses" are β·log σ(log odds); the trainer subtracts their mean from the NLL.
        cases.append({"name": f"orpo-loss-{beta}", "objective": "orpo", "kind": "losses", "beta": beta, "chosen": chosen,
                      "rejected": rejected, "losses": [float(x) for x in losses], "log_odds_ratio": float(ratio),
                      "log_odds_chosen": float(log_odds), "d_chosen": grads_of(c)[0], "d_rejected": grads_of(r)[0]})


class StandInModel:
    """Returns per-token log-probs whose row sums are fixed values (column 0 carries them), for the KL rows or the
    main rows depending on which input it is given."""

    def __init__(self, main: torch.Tensor, kl: torch.Tensor, kl_ids: torch.Tensor):
        self.main, self.kl, self.kl_ids = main, kl, kl_ids

    def __call__(self, input_ids=None, **kwargs):
        values = self.kl if input_ids is self.kl_ids else self.main
        width = input_ids.shape[1] - 1
        log_probs = torch.cat([values.unsqueeze(1), torch.zeros(len(values), width - 1, dtype=values.dtype)], dim=1)
        zeros = torch.zeros(len(values), width, dtype=values.dtype)
        return types.SimpleNamespace(log_probs=log_probs, entropy=zeros, mean_logits=zeros)


def kto_trainer(model, *, beta: float, desirable_weight: float = 1.0, undesirable_weight: float = 1.0, peft_config=None,
                directory: str):
    args = trl.KTOConfig(output_dir=directory, beta=beta, desirable_weight=desirable_weight,
                         undesirable_weight=undesirable_weight, report_to="none", use_cpu=True, bf16=False, fp16=False,
                         per_device_train_batch_size=2, max_length=None, seed=0, dataloader_num_workers=0,
                         gradient_checkpointing=False)
    dataset = Dataset.from_list([{"prompt": "a", "completion": " b", "label": True}, {"prompt": "c", "completion": " d", "label": False}])
    return trl.KTOTrainer(model=model, args=args, train_dataset=dataset, processing_class=dummy_tokenizer(), peft_config=peft_config)


def kto_loss_cases(cases: list) -> None:
    directory = tempfile.mkdtemp(prefix="hone-kto-")
    try:
        trainer = kto_trainer(base_model(), beta=0.1, peft_config=lora_config(), directory=directory)
        settings = [
            # labels, policy, reference, policy KL rows, reference KL rows, β, λ_D, λ_U
            ([True, False, True, True, False, False], [-20.0, -31.0, -12.5, -40.2, -18.0, -25.0],
             [-21.5, -29.0, -12.0, -41.0, -19.5, -24.0], [-35.0, -22.0, -41.0, -16.0, -27.0, -30.0],
             [-36.5, -23.0, -40.0, -17.5, -26.0, -31.0], 0.1, 1.0, 1.0),                         # KL > 0
            ([True, False, False, True, True], [-8.0, -14.0, -9.5, -11.0, -20.0], [-7.0, -13.0, -11.0, -12.5, -19.0],
             [-15.0, -9.0, -12.0, -21.0, -10.5], [-13.0, -8.5, -11.0, -20.0, -10.0], 0.5, 1.33, 0.8),  # KL < 0: clamped
            ([False, False, True, False], [-5.0, -6.0, -7.0, -8.0], [-6.0, -5.5, -7.5, -9.0],
             [-6.5, -7.5, -5.5, -6.0], [-6.0, -7.0, -6.0, -6.5], 0.2, 1.0, 1.5),
        ]
        for index, (labels, policy, reference, policy_kl, reference_kl, beta, lam_d, lam_u) in enumerate(settings):
            trainer.beta, trainer.desirable_weight, trainer.undesirable_weight = beta, lam_d, lam_u
            trainer.precompute_ref_logps = True
            trainer._metrics["train"].clear()
            n = len(labels)
            ids = torch.ones((n, 3), dtype=torch.long)
            kl_ids = torch.ones((n, 3), dtype=torch.long)
            batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "completion_mask": torch.ones_like(ids),
                     "KL_input_ids": kl_ids, "KL_attention_mask": torch.ones_like(kl_ids),
                     "KL_completion_mask": torch.ones_like(kl_ids), "label": torch.tensor(labels),
                     "ref_logps": torch.tensor(reference, dtype=torch.float64),
                     "ref_KL_logps": torch.tensor(reference_kl, dtype=torch.float64)}
            main = torch.tensor(policy, dtype=torch.float64, requires_grad=True)
            loss = trainer._compute_loss(StandInModel(main, torch.tensor(policy_kl, dtype=torch.float64), kl_ids), batch, False)
            loss.backward()
            metrics = {k: float(v[-1]) for k, v in trainer._metrics["train"].items()
                       if k == "kl" or k.startswith("rewards/") or k.startswith("logps/")}
            cases.append({"name": f"kto-loss-{index}", "objective": "kto", "kind": "losses", "beta": beta,
                          "desirable_weight": lam_d, "undesirable_weight": lam_u, "labels": labels, "policy": policy,
                          "reference": reference, "policy_kl": policy_kl, "reference_kl": reference_kl, "loss": float(loss),
                          "d_policy": [float(x) for x in main.grad], "metrics": metrics})
            print(f"kto-loss-{index:<15d} loss {float(loss):.6f}", metrics)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def kto_warning_cases(cases: list) -> None:
    """TRL's weight advice for a few class counts and weights: the printed bounds, or none."""
    import logging
    directory = tempfile.mkdtemp(prefix="hone-kto-")
    try:
        trainer = kto_trainer(base_model(), beta=0.1, peft_config=lora_config(), directory=directory)
        logger = logging.getLogger("trl.trainer.kto_trainer")
        for desirable, undesirable, lam_d, lam_u in [(10, 10, 1.0, 1.0), (30, 10, 1.0, 1.0), (10, 30, 1.0, 1.0),
                                                      (10, 30, 3.5, 1.0), (10, 30, 1.0, 0.3), (7, 5, 1.0, 1.0), (7, 5, 0.5, 2.0)]:
            records = [{"prompt": "a", "completion": " b", "label": True}] * desirable + \
                      [{"prompt": "a", "completion": " c", "label": False}] * undesirable
            trainer.desirable_weight, trainer.undesirable_weight = lam_d, lam_u
            messages = []
            handler = logging.Handler()
            handler.emit = lambda record: messages.append(record.getMessage())
            logger.addHandler(handler)
            previous = logger.level
            logger.setLevel(logging.WARNING)
            try:
                trainer._prepare_dataset(Dataset.from_list(records), dummy_tokenizer(), trainer.args, "train")
            finally:
                logger.removeHandler(handler)
                logger.setLevel(previous)
            advice = [m for m in messages if "ideal range" in m]
            bounds = None
            if advice:
                import re
                bounds = [float(x) for x in re.findall(r"\[([0-9.]+), ([0-9.]+)\]", advice[0])[0] +
                          re.findall(r"\[([0-9.]+), ([0-9.]+)\]", advice[0])[1]]
            cases.append({"name": f"kto-advice-{desirable}-{undesirable}-{lam_d}-{lam_u}", "objective": "kto", "kind": "advice",
                          "desirable": desirable, "undesirable": undesirable, "desirable_weight": lam_d,
                          "undesirable_weight": lam_u, "bounds": bounds})
            print(f"advice {desirable}/{undesirable} λ {lam_d}/{lam_u}: {bounds}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------
# (b) Full steps with a PEFT policy on the fixture model
# ---------------------------------------------------------------------------

def kto_examples(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    examples = []
    for prompt_len, completion_len, label in [(6, 5, True), (9, 8, False), (4, 11, True), (7, 3, False), (5, 7, True)]:
        examples.append({"prompt_ids": [BOS] + rand_ids(rng, prompt_len - 1),
                         "completion_ids": rand_ids(rng, completion_len - 1) + [EOS], "label": label})
    return examples


def kto_step(model, examples, *, beta, desirable_weight=1.0, undesirable_weight=1.0, max_length=None, peft_config=None,
             policy_seed=None):
    directory = tempfile.mkdtemp(prefix="hone-kto-")
    try:
        trainer = kto_trainer(model, beta=beta, desirable_weight=desirable_weight, undesirable_weight=undesirable_weight,
                              peft_config=peft_config, directory=directory)
        policy = trainer.model
        if peft_config is not None:
            fill_adapter(policy, seed=POLICY_SEED)
        if policy_seed is not None:
            fill_adapter(policy, seed=policy_seed)
        check_policy(policy)
        policy.train()
        policy.zero_grad(set_to_none=True)
        # TRL's KL completions: the batch's completions rotated by one (the dataset map in _prepare_dataset).
        completions = [e["completion_ids"] for e in examples]
        rotated = [completions[-1]] + completions[:-1]
        items = [{**e, "KL_completion_ids": k} for e, k in zip(examples, rotated)]
        batch = DataCollatorForUnpairedPreference(pad_token_id=0, max_length=max_length)(items)
        loss = trainer._compute_loss(policy, batch, False)
        loss.backward()
        metrics = {k: float(v[-1]) for k, v in trainer._metrics["train"].items()
                   if k == "kl" or k.startswith("rewards/") or k.startswith("logps/")}
        return float(loss), adapter_gradients(policy), metrics
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def kto_step_cases(cases: list, gradients: dict) -> None:
    examples = kto_examples(41)
    for name, beta, lam_d, lam_u, max_length in [("kto-step", 0.1, 1.0, 1.0, None), ("kto-step-weighted", 2.0, 1.3, 0.7, 13)]:
        loss, grads, metrics = kto_step(base_model(), examples, beta=beta, desirable_weight=lam_d, undesirable_weight=lam_u,
                                        max_length=max_length, peft_config=lora_config())
        cases.append({"name": name, "objective": "kto", "kind": "step", "beta": beta, "desirable_weight": lam_d,
                      "undesirable_weight": lam_u, "max_length": max_length, "reference": "base", "examples": examples,
                      "loss": loss, "metrics": metrics})
        gradients.update({f"{name}/{k}": v for k, v in grads.items()})
        print(f"{name:24s} loss {loss:.6f}", {k: round(v, 5) for k, v in metrics.items()})
    start = peft.PeftModel.from_pretrained(base_model(), str(ADAPTERS / "ref_adapter"), is_trainable=True)
    loss, grads, metrics = kto_step(start, examples, beta=0.1, policy_seed=POLICY_SEED)
    name = "kto-step-init-adapter"
    cases.append({"name": name, "objective": "kto", "kind": "step", "beta": 0.1, "desirable_weight": 1.0,
                  "undesirable_weight": 1.0, "max_length": None, "reference": "ref_adapter", "examples": examples,
                  "loss": loss, "metrics": metrics})
    gradients.update({f"{name}/{k}": v for k, v in grads.items()})
    print(f"{name:24s} loss {loss:.6f}", {k: round(v, 5) for k, v in metrics.items()})


def preference_pairs(seed: int) -> list[dict]:
    """Pairs with their own prompt per row, as TRL's ORPO/CPO tokenization gives them (BOS first, EOS last); the
    second pair's rejected row has its prompt one token shorter (a token merged into the completion)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for index, (prompt_len, chosen_len, rejected_len) in enumerate([(6, 5, 9), (11, 8, 4), (4, 12, 7)]):
        prompt = [BOS] + rand_ids(rng, prompt_len - 1)
        chosen = rand_ids(rng, chosen_len - 1) + [EOS]
        rejected = rand_ids(rng, rejected_len - 1) + [EOS]
        rejected_prompt = prompt
        if index == 1:
            rejected_prompt, rejected = prompt[:-1], [prompt[-1] + 1] + rejected
        pairs.append({"chosen_prompt_ids": prompt, "chosen_ids": chosen, "rejected_prompt_ids": rejected_prompt,
                      "rejected_ids": rejected})
    return pairs


def pair_batch(pairs: list[dict]) -> dict:
    """ORPO/CPO tokenize_row's keys, right-padded as their collator pads them (ids 0, mask 0, labels -100)."""
    batch = {}
    for side in ["chosen", "rejected"]:
        rows = [(p[f"{side}_prompt_ids"], p[f"{side}_ids"]) for p in pairs]
        width = max(len(a) + len(b) for a, b in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, (prompt, answer) in enumerate(rows):
            n = len(prompt) + len(answer)
            ids[i, :n] = torch.tensor(prompt + answer)
            mask[i, :n] = 1
            labels[i, len(prompt):n] = torch.tensor(answer)
        batch[f"{side}_input_ids"], batch[f"{side}_attention_mask"], batch[f"{side}_labels"] = ids, mask, labels
    return batch


def reference_free_step(trainer_class, config_class, pairs, **settings):
    directory = tempfile.mkdtemp(prefix="hone-rf-")
    try:
        args = config_class(output_dir=directory, report_to="none", use_cpu=True, bf16=False, fp16=False,
                            per_device_train_batch_size=len(pairs), seed=0, dataloader_num_workers=0,
                            gradient_checkpointing=False, **settings)
        dataset = Dataset.from_list([{"prompt": "a", "chosen": " b", "rejected": " c"}])
        trainer = trainer_class(model=base_model(), args=args, train_dataset=dataset, processing_class=dummy_tokenizer(),
                                peft_config=lora_config())
        policy = trainer.model
        fill_adapter(policy, seed=POLICY_SEED)
        check_policy(policy)
        policy.train()
        policy.zero_grad(set_to_none=True)
        loss, metrics = trainer.get_batch_loss_metrics(policy, pair_batch(pairs), train_eval="train")
        loss.backward()
        metrics = {k: float(v) for k, v in metrics.items() if not k.startswith("logits/")}
        return float(loss), adapter_gradients(policy), metrics
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def reference_free_step_cases(cases: list, gradients: dict) -> None:
    pairs = preference_pairs(43)
    runs = [
        ("orpo-step", "orpo", ORPOTrainer, ORPOConfig, {"beta": 0.1}),
        ("orpo-step-beta-1", "orpo", ORPOTrainer, ORPOConfig, {"beta": 1.0}),
        ("cpo-step-sigmoid", "cpo", CPOTrainer, CPOConfig, {"loss_type": "sigmoid", "beta": 0.1, "cpo_alpha": 1.0}),
        ("cpo-step-sigmoid-smoothing", "cpo", CPOTrainer, CPOConfig,
         {"loss_type": "sigmoid", "beta": 0.2, "cpo_alpha": 0.5, "label_smoothing": 0.1}),
        ("cpo-step-hinge", "cpo", CPOTrainer, CPOConfig, {"loss_type": "hinge", "beta": 0.1, "cpo_alpha": 1.0}),
        ("cpo-step-ipo", "cpo", CPOTrainer, CPOConfig, {"loss_type": "ipo", "beta": 0.5, "cpo_alpha": 1.0}),
        ("simpo-step", "cpo", CPOTrainer, CPOConfig, {"loss_type": "simpo", "beta": 2.0, "cpo_alpha": 0.0, "simpo_gamma": 1.0}),
        ("cpo-simpo-step", "cpo", CPOTrainer, CPOConfig,
         {"loss_type": "simpo", "beta": 2.5, "cpo_alpha": 1.0, "simpo_gamma": 0.5, "label_smoothing": 0.1}),
    ]
    for name, objective, trainer_class, config_class, settings in runs:
        loss, grads, metrics = reference_free_step(trainer_class, config_class, pairs, **settings)
        cases.append({"name": name, "objective": objective, "kind": "step", **settings, "pairs": pairs, "loss": loss,
                      "metrics": metrics})
        gradients.update({f"{name}/{k}": v for k, v in grads.items()})
        print(f"{name:28s} loss {loss:.6f}", {k: round(v, 5) for k, v in metrics.items()})


# ---------------------------------------------------------------------------
# Tokenization of text records (models/hone-tiny's Llama tokenizer: BOS added, SentencePiece merges)
# ---------------------------------------------------------------------------

TEXT_RECORDS = [
    {"prompt": "\n\nHuman: What is the capital of France?\n\nAssistant:", "chosen": " The capital is Paris.",
     "rejected": " I don't know."},
    {"prompt": "Question: 2 + 2 = ", "chosen": "4", "rejected": "five, I think"},      # the prompt's space merges
    {"prompt": "Translate: café au lait ->", "chosen": " coffee with milk", "rejected": " tea"},
    {"prompt": "Tell me a long story about a dragon and a knight who became friends", "chosen": " Once upon a time there was a dragon.",
     "rejected": " No."},
]


def tokenization_cases(cases: list) -> None:
    """What TRL's trainers make of text records: ORPO/CPO's tokenize_row (the two share it) and KTO's
    _prepare_dataset (unpairing, EOS, prompt split, the max_length filter, the KL rotation)."""
    directory = tempfile.mkdtemp(prefix="hone-tok-")
    try:
        for max_length in [1024, 16]:
            args = ORPOConfig(output_dir=directory, report_to="none", use_cpu=True, bf16=False, max_length=max_length,
                              gradient_checkpointing=False)
            trainer = ORPOTrainer(model=base_model(), args=args, train_dataset=Dataset.from_list(TEXT_RECORDS[:1]),
                                  processing_class=dummy_tokenizer(), peft_config=lora_config())
            rows = []
            for record in TEXT_RECORDS:
                row = trainer.tokenize_row(record)
                out = {}
                for side in ["chosen", "rejected"]:
                    ids, labels = row[f"{side}_input_ids"], row[f"{side}_labels"]
                    start = next((i for i, x in enumerate(labels) if x != -100), len(labels))
                    out[f"{side}_prompt_ids"], out[f"{side}_ids"] = ids[:start], ids[start:]
                rows.append(out)
            cases.append({"name": f"tokenize-orpo-{max_length}", "objective": "orpo", "kind": "tokenize",
                          "max_length": max_length, "records": TEXT_RECORDS, "rows": rows})
        for max_length in [1024, 16]:
            trainer = kto_trainer(base_model(), beta=0.1, peft_config=lora_config(), directory=directory)
            trainer.args.max_length = max_length
            trainer.args.per_device_train_batch_size = 3
            dataset = trainer._prepare_dataset(Dataset.from_list(TEXT_RECORDS), dummy_tokenizer(), trainer.args, "train")
            rows = [{"prompt_ids": r["prompt_ids"], "completion_ids": r["completion_ids"], "label": r["label"],
                     "kl_completion_ids": r["KL_completion_ids"]} for r in dataset]
            cases.append({"name": f"tokenize-kto-{max_length}", "objective": "kto", "kind": "tokenize", "max_length": max_length,
                          "records": TEXT_RECORDS, "rows": rows, "batch": 3})
            print(f"tokenize-kto-{max_length}: {len(rows)} rows kept of {2 * len(TEXT_RECORDS)}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    os.chdir(REPO)
    torch.manual_seed(0)
    print("trl", trl.__version__, "peft", peft.__version__, "torch", torch.__version__)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    cases: list = []
    gradients: dict = {}
    cpo_loss_cases(cases)
    orpo_loss_cases(cases)
    kto_loss_cases(cases)
    kto_warning_cases(cases)
    kto_step_cases(cases, gradients)
    reference_free_step_cases(cases, gradients)
    tokenization_cases(cases)
    write_json(OUT / "cases.json", {
        "model": "models/llama-gqa", "policy_adapter": "../objectives/adapter", "reference_adapter": "../objectives/ref_adapter",
        "versions": {"trl": trl.__version__, "peft": peft.__version__, "torch": torch.__version__},
        "note": "rows unpadded; a row's prompt ids then its completion ids", "cases": cases,
    })
    write_safetensors(OUT / "gradients.safetensors", gradients)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"total size {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
