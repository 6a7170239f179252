#!/usr/bin/env python3
"""DPO training speed: Hone's `hone train dpo` next to TRL's DPOTrainer + PEFT, same pairs, same model, same machine.

    python3 tools/oracle/.venv/bin/python tools/bench/dpo.py --model bench-models/small-bf16 --threads 2
    (or /work/oracle-venv/bin/python; needs torch, transformers, peft, trl from tools/oracle/requirements.txt)

The model: a ~110M-parameter Llama made by `python tools/bench/make_model.py --shape small --formats bf16`
(hidden 768, 12 layers, 12 heads, FFN 2048, vocab 32000). make_model.py writes no tokenizer, so the default
model's (models/hone-tiny, 2048 pieces, ids valid in any larger vocabulary) is copied into the model directory
when it has none: both trainers then tokenize the same text into the same ids.

Pairs: --data (prompt/chosen/rejected JSONL, e.g. from `hone data hh-rlhf`), else ../shared/data's helpful-base
HH-RLHF test split converted with `hone data hh-rlhf`; the first --pairs are used, rows cut to --max-length.

Both sides run the same settings: LoRA r 8 / alpha 16 / dropout 0 on q_proj and v_proj, sigmoid loss, β 0.1,
batch --batch-size of --micro-batch-size pairs, reference = adapter switched off (no precomputation), AdamW,
--threads threads (torch.set_num_threads / OMP_NUM_THREADS; hone --threads), gradient checkpointing off on both
sides unless --gradient-checkpointing (TRL's DPOConfig defaults it on). PyTorch trains in f32 (the CPU
default); Hone reads the stored weights (bf16 for small-bf16) and computes in f32.

Optimizer steps/s exclude loading, tokenizing and the first step: Hone's figure is (S − 1) / (time of an S-step run
− time of a 1-step run); TRL's comes from the times at which its steps end (a TrainerCallback).
Prints a Markdown table. Runs for minutes on the small model: run it on an otherwise idle machine.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZER_FILES = ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def ensure_tokenizer(model, source):
    if any(os.path.exists(os.path.join(model, name)) for name in ("tokenizer.model", "tokenizer.json")):
        return
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(source, name)):
            shutil.copy(os.path.join(source, name), os.path.join(model, name))
    print(f"copied the tokenizer of {source} into {model}", file=sys.stderr)


def prepare_pairs(args, hone, work):
    source = args.data
    if source is None:
        hh = os.path.join(ROOT, "..", "shared", "data", "hh_rlhf", "helpful-base", "test.jsonl.gz")
        if not os.path.exists(hh):
            sys.exit("no --data and no ../shared/data/hh_rlhf: give a prompt/chosen/rejected JSONL")
        subprocess.run([hone, "data", "hh-rlhf", "--input", hh, "--output-dir", os.path.join(work, "hh"), "--format", "dpo"],
                       check=True, capture_output=True)
        source = os.path.join(work, "hh", "dpo.jsonl")
    pairs = []
    with open(source) as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                pairs.append({k: record[k] for k in ("prompt", "chosen", "rejected")})
            if len(pairs) == args.pairs:
                break
    path = os.path.join(work, "pairs.jsonl")
    with open(path, "w") as out:
        out.writelines(json.dumps(p) + "\n" for p in pairs)
    return path, pairs


def run_hone(args, hone, data, work, steps):
    output = os.path.join(work, f"hone-{steps}")
    command = [hone, "train", "dpo", "--base-model", args.model, "--data-path", data, "--output-dir", output,
               "--max-steps", str(steps), "--batch-size", str(args.batch_size), "--micro-batch-size", str(args.micro_batch_size),
               "--max-length", str(args.max_length), "--lora-r", "8", "--lora-alpha", "16", "--lora-dropout", "0",
               "--lora-target-modules", "[q_proj,v_proj]", "--learning-rate", "5e-5", "--save-steps", "0",
               "--threads", str(args.threads)] + (["--gradient-checkpointing"] if args.gradient_checkpointing else [])
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"hone train dpo failed:\n{result.stderr}")
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
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    lora = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], bias="none",
                           task_type="CAUSAL_LM")
    config = trl.DPOConfig(output_dir=os.path.join(work, "trl"), max_steps=args.steps, learning_rate=5e-5,
                           per_device_train_batch_size=args.micro_batch_size,
                           gradient_accumulation_steps=max(1, args.batch_size // args.micro_batch_size),
                           max_length=args.max_length, beta=0.1, loss_type=["sigmoid"], report_to="none",
                           save_strategy="no", logging_steps=1, use_cpu=True, bf16=False, fp16=False,
                           dataloader_num_workers=0, lr_scheduler_type="linear", warmup_steps=0, seed=42,
                           gradient_checkpointing=args.gradient_checkpointing)
    step_ends = []

    class Timer(transformers.TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    trainer = trl.DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer,
                             peft_config=lora, callbacks=[Timer()])
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"steps_per_s": (len(step_ends) - 1) / (step_ends[-1] - step_ends[0]) if len(step_ends) > 1 else float("nan"),
            "total_s": total, "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "versions": f"trl {trl.__version__}, peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "bench-models", "small-bf16"))
    parser.add_argument("--tokenizer-from", default=os.path.join(ROOT, "models", "hone-tiny"))
    parser.add_argument("--data", help="prompt/chosen/rejected JSONL (default: HH-RLHF helpful-base from ../shared/data)")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--micro-batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--hone", default=os.path.join(ROOT, ".build", "release", "hone"))
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="recompute activations on both sides (TRL's DPOConfig turns it on by default; off here for both)")
    parser.add_argument("--skip-trl", action="store_true", help="only time Hone")
    args = parser.parse_args()
    if args.steps < 2:
        sys.exit("--steps must be at least 2 (the first step is not timed)")
    if not os.path.isdir(args.model):
        sys.exit(f"{args.model}: no such model directory; make it with tools/bench/make_model.py --shape small --formats bf16")
    ensure_tokenizer(args.model, args.tokenizer_from)
    work = tempfile.mkdtemp(prefix="hone-dpo-bench-")
    try:
        data, pairs = prepare_pairs(args, args.hone, work)
        one, _ = run_hone(args, args.hone, data, work, 1)
        many, records = run_hone(args, args.hone, data, work, args.steps)
        hone_rate = (args.steps - 1) / max(many - one, 1e-9)
        trl_figures = None if args.skip_trl else run_trl(args, pairs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"## DPO optimizer steps/s — {os.path.basename(os.path.normpath(args.model))}, {len(pairs)} pairs, "
          f"batch {args.batch_size} (micro {args.micro_batch_size}), max length {args.max_length}, {args.threads} threads, "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}")
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"date {time.strftime('%Y-%m-%d')}\n")
    print("| trainer | steps/s | s/step | first → last loss |")
    print("|---|---:|---:|---|")
    print(f"| hone train dpo | {hone_rate:.3f} | {1 / hone_rate:.2f} | {records[0]['loss']:.4f} → {records[-1]['loss']:.4f} |")
    if trl_figures:
        rate = trl_figures["steps_per_s"]
        print(f"| TRL DPOTrainer + PEFT (f32) | {rate:.3f} | {1 / rate:.2f} | "
              f"{trl_figures['first_loss']:.4f} → {trl_figures['last_loss']:.4f} |")
        print(f"\nhone ÷ TRL: {hone_rate / rate:.2f}×   ({trl_figures['versions']})")
    print(f"\nCommand: {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
