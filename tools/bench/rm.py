#!/usr/bin/env python3
"""Reward-model training speed: Hone's `hone train rm` next to TRL's RewardTrainer + PEFT, same pairs, same model,
same machine.

    tools/oracle/.venv/bin/python tools/bench/rm.py --model bench-models/small-bf16 --threads 2

The model: the ~110M-parameter Llama of `python tools/bench/make_model.py --shape small --formats bf16` (hidden 768,
12 layers, FFN 2048, vocab 32000), with the default model's tokenizer copied in (as tools/bench/dpo.py does).
Pairs: HH-RLHF helpful-base test dialogues from ../shared/data (or --data {chosen, rejected[, prompt]} JSONL), whole
dialogues as the texts, the first --pairs whose two texts fit --max-length tokens (so neither side drops any).

Both sides: LoRA r 8 / alpha 16 / dropout 0 on q_proj and v_proj plus the fully trained score head
(modules_to_save score), loss −log σ(r_c − r_r), batch --batch-size pairs in micro-batches of --micro-batch-size,
AdamW, lr 1e-4 linear, --threads threads, gradient checkpointing off (TRL's RewardConfig turns it on by default).
PyTorch trains in f32; Hone reads the bf16 weights and computes in f32.

Pairs/s exclude loading, tokenizing and the first step: Hone's figure is (S − 1) × batch / (time of an S-step run −
time of a 1-step run); TRL's comes from the times at which its steps end. Rounds alternate (Hone, TRL, Hone, TRL …)
so machine noise hits both. Prints a Markdown table.
"""
import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(__file__))
from dpo import ensure_tokenizer  # noqa: E402


def prepare_pairs(args, work):
    import transformers
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    source = args.data or os.path.join(ROOT, "..", "shared", "data", "hh_rlhf", "helpful-base", "test.jsonl.gz")
    opener = gzip.open if source.endswith(".gz") else open
    pairs = []
    with opener(source, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            prompt = record.get("prompt", "")
            chosen, rejected = prompt + record["chosen"], prompt + record["rejected"]
            if max(len(tokenizer(t + tokenizer.eos_token)["input_ids"]) for t in (chosen, rejected)) > args.max_length:
                continue
            pairs.append({"chosen": chosen, "rejected": rejected})
            if len(pairs) == args.pairs:
                break
    path = os.path.join(work, "pairs.jsonl")
    with open(path, "w") as out:
        out.writelines(json.dumps(p) + "\n" for p in pairs)
    return path, pairs


def run_hone(args, data, work, steps):
    output = os.path.join(work, f"hone-{steps}")
    shutil.rmtree(output, ignore_errors=True)
    command = [args.hone, "train", "rm", "--base-model", args.model, "--data-path", data, "--output-dir", output,
               "--max-steps", str(steps), "--batch-size", str(args.batch_size), "--micro-batch-size", str(args.micro_batch_size),
               "--max-length", str(args.max_length), "--lora-r", "8", "--lora-alpha", "16", "--lora-dropout", "0",
               "--lora-target-modules", "[q_proj,v_proj]", "--learning-rate", "1e-4", "--save-steps", "0",
               "--val-set-size", "0", "--threads", str(args.threads)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"hone train rm failed:\n{result.stderr}")
    with open(os.path.join(output, "metrics.jsonl")) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return elapsed, records


def run_trl(args, pairs, work):
    import torch
    import peft
    import trl
    import transformers
    from datasets import Dataset

    torch.set_num_threads(args.threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=1, dtype=torch.float32)
    lora = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], bias="none",
                           task_type="SEQ_CLS", modules_to_save=["score"])
    config = trl.RewardConfig(output_dir=os.path.join(work, "trl"), max_steps=args.steps, learning_rate=1e-4,
                              per_device_train_batch_size=args.micro_batch_size,
                              gradient_accumulation_steps=max(1, args.batch_size // args.micro_batch_size),
                              max_length=args.max_length, report_to="none", save_strategy="no", logging_steps=1,
                              use_cpu=True, bf16=False, fp16=False, dataloader_num_workers=0, lr_scheduler_type="linear",
                              warmup_steps=0, seed=42, gradient_checkpointing=False)
    step_ends = []

    class Timer(transformers.TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    trainer = trl.RewardTrainer(model=model, args=config, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer,
                                peft_config=lora, callbacks=[Timer()])
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    rate = (len(step_ends) - 1) * args.batch_size / (step_ends[-1] - step_ends[0]) if len(step_ends) > 1 else float("nan")
    return {"pairs_per_s": rate, "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "versions": f"trl {trl.__version__}, peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "bench-models", "small-bf16"))
    parser.add_argument("--tokenizer-from", default=os.path.join(ROOT, "models", "hone-tiny"))
    parser.add_argument("--data", help="{chosen, rejected[, prompt]} JSONL (default: HH-RLHF helpful-base test)")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--micro-batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--hone", default=os.path.join(ROOT, ".build", "release", "hone"))
    args = parser.parse_args()
    if args.steps < 2:
        sys.exit("--steps must be at least 2 (the first step is not timed)")
    ensure_tokenizer(args.model, args.tokenizer_from)
    work = tempfile.mkdtemp(prefix="hone-rm-bench-")
    hone_rates, trl_rates, trl = [], [], None
    try:
        data, pairs = prepare_pairs(args, work)
        for _ in range(args.rounds):
            one, _ = run_hone(args, data, work, 1)
            many, records = run_hone(args, data, work, args.steps)
            hone_rates.append((args.steps - 1) * args.batch_size / max(many - one, 1e-9))
            trl = run_trl(args, pairs, work)
            trl_rates.append(trl["pairs_per_s"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    hone_rate, trl_rate = max(hone_rates), max(trl_rates)
    print(f"## Reward-model training pairs/s — {os.path.basename(os.path.normpath(args.model))}, {len(pairs)} pairs, "
          f"batch {args.batch_size} (micro {args.micro_batch_size}), max length {args.max_length}, {args.threads} threads")
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; date {time.strftime('%Y-%m-%d')}; "
          f"best of {args.rounds} alternating rounds (hone {', '.join(f'{r:.2f}' for r in hone_rates)}; "
          f"TRL {', '.join(f'{r:.2f}' for r in trl_rates)})\n")
    print("| trainer | pairs/s | first → last loss |")
    print("|---|---:|---|")
    print(f"| hone train rm | {hone_rate:.2f} | {records[0]['loss']:.4f} → {records[-1]['loss']:.4f} |")
    print(f"| TRL RewardTrainer + PEFT (f32) | {trl_rate:.2f} | {trl['first_loss']:.4f} → {trl['last_loss']:.4f} |")
    print(f"\nhone ÷ TRL: {hone_rate / trl_rate:.2f}×   ({trl['versions']})")
    print(f"\nCommand: {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
