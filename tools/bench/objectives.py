#!/usr/bin/env python3
"""KTO, ORPO, CPO and SimPO training speed: `hone train kto|orpo|cpo|simpo` next to TRL 1.16's KTOTrainer,
ORPOTrainer and CPOTrainer (+ PEFT), same pairs, same model, same machine.

    tools/oracle/.venv/bin/python tools/bench/objectives.py --model bench-models/small-bf16 --threads 2

The model, the tokenizer and the pairs are those of tools/bench/dpo.py (the ~110M `small` Llama from
`tools/bench/make_model.py --shape small --formats bf16`, models/hone-tiny's tokenizer, HH-RLHF helpful-base test
pairs converted with `hone data hh-rlhf`), keeping the first --pairs whose prompt + longer completion fit in
--max-chars characters (default 2 × --max-length), so that no row is cut to an empty completion on either side
(TRL's averaged log-prob of an empty completion is 0/0; Hone drops such pairs). KTO trains on the same pairs split
into desirable and undesirable completions (both trainers unpair them the same way).

Both sides run the same settings: LoRA r 8 / alpha 16 / dropout 0 on q_proj and v_proj, β 0.1 (SimPO: loss simpo,
α 0, γ 0.5; CPO: sigmoid, α 1), --batch-size examples per step in micro-batches of --micro-batch-size (a pair or,
for KTO, a completion is one example), max length --max-length, AdamW lr 5e-5 linear, --threads threads,
gradient checkpointing off on both sides. KTO's reference is the adapter switched off on both sides. PyTorch
trains in f32; Hone reads the bf16 weights and computes in f32.

Optimizer steps/s exclude loading, tokenizing and the first step: Hone's figure is (S − 1) / (time of an S-step run
− time of a 1-step run); TRL's comes from the times at which its steps end (a TrainerCallback). The methods run
one after the other, Hone then TRL for each. Prints a Markdown table.
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

sys.path.insert(0, os.path.dirname(__file__))
from dpo import ROOT, ensure_tokenizer  # noqa: E402

METHODS = ["kto", "orpo", "cpo", "simpo"]


def prepare_pairs(args, work):
    source = args.data
    if source is None:
        hh = os.path.join(ROOT, "..", "shared", "data", "hh_rlhf", "helpful-base", "test.jsonl.gz")
        if not os.path.exists(hh):
            sys.exit("no --data and no ../shared/data/hh_rlhf: give a prompt/chosen/rejected JSONL")
        subprocess.run([args.hone, "data", "hh-rlhf", "--input", hh, "--output-dir", os.path.join(work, "hh"), "--format", "dpo"],
                       check=True, capture_output=True)
        source = os.path.join(work, "hh", "dpo.jsonl")
    pairs = []
    with open(source) as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if len(record["prompt"]) + max(len(record["chosen"]), len(record["rejected"])) <= args.max_chars:
                pairs.append({k: record[k] for k in ("prompt", "chosen", "rejected")})
            if len(pairs) == args.pairs:
                break
    path = os.path.join(work, "pairs.jsonl")
    with open(path, "w") as out:
        out.writelines(json.dumps(p) + "\n" for p in pairs)
    return path, pairs


def method_options(method):
    return {"kto": [], "orpo": [], "cpo": [], "simpo": ["--simpo-gamma", "0.5"]}[method]


def run_hone(args, method, data, work, steps):
    output = os.path.join(work, f"hone-{method}-{steps}")
    command = [args.hone, "train", method, "--base-model", args.model, "--data-path", data, "--output-dir", output,
               "--max-steps", str(steps), "--batch-size", str(args.batch_size), "--micro-batch-size", str(args.micro_batch_size),
               "--max-length", str(args.max_length), "--lora-r", "8", "--lora-alpha", "16", "--lora-dropout", "0",
               "--lora-target-modules", "[q_proj,v_proj]", "--learning-rate", "5e-5", "--save-steps", "0",
               "--beta", "0.1", "--threads", str(args.threads)] + method_options(method)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"hone train {method} failed:\n{result.stderr}")
    with open(os.path.join(output, "metrics.jsonl")) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return elapsed, records


def run_trl(args, method, pairs, work):
    import torch
    import peft
    import trl
    import transformers
    from datasets import Dataset
    from trl.experimental.cpo import CPOConfig, CPOTrainer
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    torch.set_num_threads(args.threads)
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    lora = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], bias="none",
                           task_type="CAUSAL_LM")
    common = dict(output_dir=os.path.join(work, f"trl-{method}"), max_steps=args.steps, learning_rate=5e-5,
                  per_device_train_batch_size=args.micro_batch_size,
                  gradient_accumulation_steps=max(1, args.batch_size // args.micro_batch_size), max_length=args.max_length,
                  beta=0.1, report_to="none", save_strategy="no", logging_steps=1, use_cpu=True, bf16=False, fp16=False,
                  dataloader_num_workers=0, lr_scheduler_type="linear", warmup_steps=0, seed=42, gradient_checkpointing=False)
    if method == "kto":
        trainer_class, config = trl.KTOTrainer, trl.KTOConfig(**common)
    elif method == "orpo":
        trainer_class, config = ORPOTrainer, ORPOConfig(**common)
    elif method == "cpo":
        trainer_class, config = CPOTrainer, CPOConfig(loss_type="sigmoid", cpo_alpha=1.0, **common)
    else:
        trainer_class, config = CPOTrainer, CPOConfig(loss_type="simpo", cpo_alpha=0.0, simpo_gamma=0.5, **common)
    step_ends = []

    class Timer(transformers.TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    trainer = trainer_class(model=model, args=config, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer,
                            peft_config=lora, callbacks=[Timer()])
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"steps_per_s": (len(step_ends) - 1) / (step_ends[-1] - step_ends[0]) if len(step_ends) > 1 else float("nan"),
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "versions": f"trl {trl.__version__}, peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "bench-models", "small-bf16"))
    parser.add_argument("--tokenizer-from", default=os.path.join(ROOT, "models", "hone-tiny"))
    parser.add_argument("--data", help="prompt/chosen/rejected JSONL (default: HH-RLHF helpful-base from ../shared/data)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--max-chars", type=int, help="keep pairs whose prompt + longer completion fit (default: 2 × --max-length; "
                        "a pair cut to an empty completion makes TRL's averaged log-prob 0/0 = NaN, Hone drops it)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--micro-batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--hone", default=os.path.join(ROOT, ".build", "release", "hone"))
    parser.add_argument("--skip-trl", action="store_true", help="only time Hone")
    args = parser.parse_args()
    if args.steps < 2:
        sys.exit("--steps must be at least 2 (the first step is not timed)")
    if args.max_chars is None:
        args.max_chars = 2 * args.max_length
    if not os.path.isdir(args.model):
        sys.exit(f"{args.model}: no such model directory; make it with tools/bench/make_model.py --shape small --formats bf16")
    ensure_tokenizer(args.model, args.tokenizer_from)
    work = tempfile.mkdtemp(prefix="hone-objectives-bench-")
    rows = []
    versions = ""
    try:
        data, pairs = prepare_pairs(args, work)
        for method in args.methods.split(","):
            one, _ = run_hone(args, method, data, work, 1)
            many, records = run_hone(args, method, data, work, args.steps)
            hone_rate = (args.steps - 1) / max(many - one, 1e-9)
            figures = None if args.skip_trl else run_trl(args, method, pairs, work)
            if figures:
                versions = figures["versions"]
            rows.append((method, hone_rate, records, figures))
            print(f"{method}: hone {hone_rate:.3f} steps/s" + (f", TRL {figures['steps_per_s']:.3f}" if figures else ""), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"## KTO / ORPO / CPO / SimPO optimizer steps/s — {os.path.basename(os.path.normpath(args.model))}, {len(pairs)} pairs, "
          f"batch {args.batch_size} (micro {args.micro_batch_size}), max length {args.max_length}, {args.threads} threads")
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"date {time.strftime('%Y-%m-%d')}\n")
    print("| method | hone steps/s | TRL + PEFT steps/s | hone ÷ TRL | hone loss first → last | TRL loss first → last |")
    print("|---|---:|---:|---:|---|---|")
    for method, rate, records, figures in rows:
        hone_loss = f"{records[0]['loss']:.4f} → {records[-1]['loss']:.4f}"
        if figures:
            print(f"| {method} | {rate:.3f} | {figures['steps_per_s']:.3f} | {rate / figures['steps_per_s']:.2f}× | {hone_loss} | "
                  f"{figures['first_loss']:.4f} → {figures['last_loss']:.4f} |")
        else:
            print(f"| {method} | {rate:.3f} | – | – | {hone_loss} | – |")
    if versions:
        print(f"\n({versions})")
    print(f"\nCommand: {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
