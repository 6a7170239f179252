#!/usr/bin/env python3
"""Build Hone's GPT-NeoX fixtures with transformers, PEFT and TRL: tiny random GPTNeoX models, their per-token
log-probs, sequence-classification rewards, one LoRA SFT step (PEFT) and one reward-model step (TRL).

Output (Tests/HoneKitTests/Fixtures/):
  models/neox-parallel/     GPTNeoXForCausalLM, hidden 64, 2 layers, 4 heads, rotary_pct 0.25, parallel residual,
                            exact GELU, attention biases, vocabulary 2048 with models/hone-tiny's tokenizer (so the
                            command-line tools run on it); config as transformers 5 writes it (rope_parameters)
  models/neox-sequential/   the same shape with use_parallel_residual false, gelu_new, attention_bias false,
                            rotary_pct 0.5, rotary_emb_base 500, vocabulary 256, config.json rewritten in the
                            released Pythia style (rotary_pct / rotary_emb_base keys, no rope_parameters); the
                            golden values come from transformers reading that rewritten file
  logprobs/neox-*.json      per-token log-probs of whole rows and of a prefill + one-token-at-a-time pass
                            (oracle_common's format, read by GoldenFile)
  neox/models/neox-rm/      GPTNeoXForSequenceClassification (num_labels 1, seeded score, pad_token_id 0) built from
                            neox-parallel, with the tokenizer
  neox/rewards.json         its rewards for rows with pad ids inside, at the end, all padding, one token; and the
                            same rows as one right-padded batch (asserted equal)
  neox/models/oasst-rm/    OpenAssistant's Pythia reward-model layout (architectures ["GPTNeoXRewardModel"], model_type
                            "gpt_neox_reward_model", trunk under "gpt_neox.", out_proj Linear(hidden, 1) WITH bias,
                            "pooling": "last"), trunk of neox-parallel; the model is reimplemented here from the facts of
                            its modeling code (pool the final hidden states at the last attended token or by their
                            attention-masked mean, then out_proj)
  neox/oasst_rewards.json   its rewards with "last" and with "mean" pooling (unpadded rows, and one right-padded batch
                            with its attention mask, asserted equal)
  lora/neox-*/              one SFT batch in make_lora_fixtures.py's format (adapter, batch.json, expected.json,
                            gradients.safetensors): LoRA on query_key_value, dense, dense_h_to_4h, dense_4h_to_h
  neox/rm_adapter/, neox/rm_cases.json, neox/rm_gradients.safetensors
                            one RewardTrainer.compute_loss step (TRL's collator, EOS as pad) on neox-parallel as a
                            sequence classifier with a PEFT SEQ_CLS adapter (LoRA + modules_to_save score), as
                            make_reward_fixtures.py does for Llama

Rerun:  tools/oracle/.venv/bin/python tools/oracle/make_neox_fixtures.py
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
from transformers import (AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer,  # noqa: E402
                          GPTNeoXConfig, GPTNeoXForCausalLM)
from trl.trainer.reward_trainer import DataCollatorForPreference  # noqa: E402

import oracle_common as oc  # noqa: E402
from oracle_common import REPO, FIXTURES, write_json  # noqa: E402
import make_lora_fixtures as lora  # noqa: E402
from make_reward_fixtures import fill_adapter, rm_pairs, trainable_gradients  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
logging.getLogger("trl").setLevel(logging.ERROR)
transformers.logging.set_verbosity_error()

MODELS = FIXTURES / "models"
OUT = FIXTURES / "neox"
TOKENIZER = REPO / "models" / "hone-tiny"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
NEOX_ALL = ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]
BOS, EOS, PAD = 1, 2, 0

SPECS = {
    "neox-parallel": dict(vocab_size=2048, use_parallel_residual=True, hidden_act="gelu", attention_bias=True,
                          rotary_pct=0.25, rotary_emb_base=10000, seed=61, tokenizer=True, legacy=False),
    "neox-sequential": dict(vocab_size=256, use_parallel_residual=False, hidden_act="gelu_new", attention_bias=False,
                            rotary_pct=0.5, rotary_emb_base=500, seed=62, tokenizer=False, legacy=True),
}


def make_model(name: str, spec: dict) -> None:
    config = GPTNeoXConfig(vocab_size=spec["vocab_size"], hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128, hidden_act=spec["hidden_act"], max_position_embeddings=256,
                           layer_norm_eps=1e-5, use_parallel_residual=spec["use_parallel_residual"],
                           attention_bias=spec["attention_bias"], rotary_pct=spec["rotary_pct"],
                           rotary_emb_base=spec["rotary_emb_base"], bos_token_id=BOS, eos_token_id=EOS,
                           pad_token_id=None, tie_word_embeddings=False)
    torch.manual_seed(spec["seed"])
    model = GPTNeoXForCausalLM(config).float().eval()
    init = oc.randomize_(model, spec["seed"])
    directory = MODELS / name
    if directory.exists():
        shutil.rmtree(directory)
    model.save_pretrained(str(directory))
    if spec["legacy"]:
        # The released Pythia configs: rotary settings as top-level keys.
        path = directory / "config.json"
        saved = json.loads(path.read_text())
        rope = saved.pop("rope_parameters")
        assert rope["rope_type"] == "default"
        saved["rotary_pct"] = rope["partial_rotary_factor"]
        saved["rotary_emb_base"] = rope["rope_theta"]
        path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    if spec["tokenizer"]:
        for file in TOKENIZER_FILES:
            shutil.copy(TOKENIZER / file, directory / file)
    # The golden values come from what transformers reads back from the directory.
    reloaded = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
    assert reloaded.config.rope_parameters["partial_rotary_factor"] == spec["rotary_pct"]
    assert reloaded.config.rope_parameters["rope_theta"] == spec["rotary_emb_base"]
    rows = oc.make_rows(spec["vocab_size"], [1, 7, 23, 40], seed=spec["seed"])
    scored = [oc.score_row(reloaded, row) for row in rows]
    incremental = oc.score_incremental(reloaded, rows[-1], prefill=10)
    incremental["max_abs_diff_vs_one_pass"] = oc.max_abs_diff(incremental["logprobs"], scored[-1]["logprobs"])
    assert incremental["max_abs_diff_vs_one_pass"] < 1e-4
    write_json(FIXTURES / "logprobs" / f"{name}.json", {
        "model": f"models/{name}", "dtype": "float32", **oc.versions(), "rows": scored, "incremental": incremental,
        "config_style": "pythia (rotary_pct, rotary_emb_base)" if spec["legacy"] else "v5", 
        "logprob_spread": oc.logprob_spread(reloaded, rows), "init": init,
    })
    print(name, "spread", oc.logprob_spread(reloaded, rows))


# ---------------------------------------------------------------------------
# Sequence classification
# ---------------------------------------------------------------------------

def make_seqcls() -> None:
    rng = np.random.default_rng(7)
    torch.manual_seed(12)
    model = AutoModelForSequenceClassification.from_pretrained(str(MODELS / "neox-parallel"), num_labels=1,
                                                               dtype=torch.float32)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(13)
        model.score.weight.copy_(torch.randn(model.score.weight.shape, generator=generator) * 0.5)
    assert model.score.bias is None
    model.config.pad_token_id = PAD
    model.eval()
    directory = OUT / "models" / "neox-rm"
    model.save_pretrained(str(directory))
    for file in TOKENIZER_FILES:
        shutil.copy(TOKENIZER / file, directory / file)

    def ids(n):
        return [int(x) for x in rng.integers(3, 2048, size=n)]
    rows = [[BOS] + ids(11), [BOS] + ids(4) + [PAD] + ids(5), [BOS] + ids(6) + [PAD, PAD], [PAD, PAD, PAD], [BOS],
            [BOS] + ids(30)]
    with torch.no_grad():
        rewards = [float(model(input_ids=torch.tensor([row])).logits[0, 0]) for row in rows]
        width = max(len(r) for r in rows)
        batch = torch.full((len(rows), width), PAD, dtype=torch.long)
        mask = torch.zeros_like(batch)
        for i, row in enumerate(rows):
            batch[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        batched = model(input_ids=batch, attention_mask=mask).logits[:, 0].tolist()
    assert max(abs(a - b) for a, b in zip(rewards, batched)) < 1e-5, (rewards, batched)
    write_json(OUT / "rewards.json", {"versions": oc.versions(), "model": "neox/models/neox-rm", "pad_token_id": PAD,
                                      "rows": rows, "rewards": rewards, "padded_batch_rewards": batched})
    print("neox-rm", ["%.5f" % r for r in rewards])


# ---------------------------------------------------------------------------
# OpenAssistant's GPTNeoXRewardModel layout
# ---------------------------------------------------------------------------

@torch.no_grad()
def oasst_reward(trunk, out_proj, ids, mask, pooling: str) -> torch.Tensor:
    hidden = trunk(input_ids=ids, attention_mask=mask).last_hidden_state
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    else:
        # The last position whose attention mask is 1: where the running count of attended tokens first peaks.
        last = mask.cumsum(dim=1).argmax(dim=1)
        pooled = hidden[torch.arange(hidden.shape[0]), last]
    return out_proj(pooled)[:, 0]


def make_oasst() -> None:
    from safetensors.torch import save_file
    causal = AutoModelForCausalLM.from_pretrained(str(MODELS / "neox-parallel"), dtype=torch.float32).eval()
    trunk = causal.gpt_neox
    generator = torch.Generator().manual_seed(14)
    out_proj = torch.nn.Linear(64, 1)
    with torch.no_grad():
        out_proj.weight.copy_(torch.randn(out_proj.weight.shape, generator=generator) * 0.5)
        out_proj.bias.fill_(0.375)
    directory = OUT / "models" / "oasst-rm"
    directory.mkdir(parents=True)
    tensors = {f"gpt_neox.{k}": v.detach().clone().contiguous() for k, v in trunk.state_dict().items()
               if "inv_freq" not in k}
    tensors["out_proj.weight"] = out_proj.weight.detach().clone()
    tensors["out_proj.bias"] = out_proj.bias.detach().clone()
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((MODELS / "neox-parallel" / "config.json").read_text())
    config.update({"architectures": ["GPTNeoXRewardModel"], "model_type": "gpt_neox_reward_model", "pooling": "last"})
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for file in TOKENIZER_FILES:
        shutil.copy(TOKENIZER / file, directory / file)
    rng = np.random.default_rng(9)
    rows = [[BOS] + [int(x) for x in rng.integers(3, 2048, size=n)] for n in (12, 5, 1, 20)]
    rows.append([BOS, 5, PAD, 7, PAD])   # pad ids mean nothing to this model: only the attention mask counts
    result = {"versions": oc.versions(), "model": "neox/models/oasst-rm", "rows": rows}
    for pooling in ["last", "mean"]:
        alone = [float(oasst_reward(trunk, out_proj, torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long), pooling))
                 for r in rows]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), PAD, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        batched = oasst_reward(trunk, out_proj, ids, mask, pooling).tolist()
        assert max(abs(a - b) for a, b in zip(alone, batched)) < 1e-5, (pooling, alone, batched)
        result[pooling] = alone
        print("oasst-rm", pooling, ["%.5f" % r for r in alone])
    write_json(OUT / "oasst_rewards.json", result)


# ---------------------------------------------------------------------------
# One reward-model step through TRL
# ---------------------------------------------------------------------------

def rm_step(pairs, margins, center):
    directory = tempfile.mkdtemp(prefix="hone-neox-rm-")
    try:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(str(MODELS / "neox-parallel"), num_labels=1,
                                                                   dtype=torch.float32)
        args = trl.RewardConfig(output_dir=directory, report_to="none", use_cpu=True, bf16=False, fp16=False,
                                per_device_train_batch_size=len(pairs), max_length=None, seed=0,
                                dataloader_num_workers=0, center_rewards_coefficient=center)
        tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER))
        tokenizer.pad_token = None
        dataset = Dataset.from_list([{"chosen": "a", "rejected": "b"}])
        peft_config = peft.LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=NEOX_ALL, bias="none",
                                      task_type="SEQ_CLS", modules_to_save=["score"])
        trainer = trl.RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                    peft_config=peft_config)
        policy = trainer.model
        fill_adapter(policy, seed=402)
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
    pairs = rm_pairs(20)
    cases, gradients = [], {}
    for index, (name, margins, center) in enumerate([("rm", None, None), ("rm-margin", [1.0, 0.0, 2.0 / 3.0], 0.01)]):
        loss, grads, metrics, policy = rm_step(pairs, margins, center)
        if index == 0:
            policy.save_pretrained(str(OUT / "rm_adapter"))
            (OUT / "rm_adapter" / "README.md").unlink(missing_ok=True)
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
        print(name, loss, metrics, len(grads), "gradients")
    write_json(OUT / "rm_cases.json", {
        "model": "models/neox-parallel", "adapter": "rm_adapter",
        "versions": {"trl": trl.__version__, "peft": peft.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__},
        "cases": cases,
    })
    lora.write_safetensors(OUT / "rm_gradients.safetensors", gradients)


def main() -> None:
    os.chdir(REPO)   # adapter configs name repository-relative base models
    print("transformers", transformers.__version__, "peft", peft.__version__, "trl", trl.__version__)
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "models").mkdir(parents=True)
    for name, spec in SPECS.items():
        make_model(name, spec)
    make_seqcls()
    make_oasst()
    for seed, name in [(107, "neox-parallel"), (108, "neox-sequential")]:
        summary = lora.make_case(dict(name=name, model=name, targets=NEOX_ALL, r=4, alpha=8, rslora=False,
                                      steps=False, seed=seed))
        print(json.dumps(summary))
    make_rm_cases()
    for path in [OUT, MODELS / "neox-parallel", MODELS / "neox-sequential", FIXTURES / "lora" / "neox-parallel",
                 FIXTURES / "lora" / "neox-sequential"]:
        total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(f"{path.relative_to(FIXTURES)}: {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
