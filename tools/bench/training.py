#!/usr/bin/env python3
"""LoRA SFT training speed: Hone next to PyTorch + PEFT on the same model, data shape and machine, same run.

Both train a LoRA adapter on the same random token rows (all tokens trained), one optimizer step per micro-batch
(batch = micro batch), AdamW, dropout 0.05, and report training tokens per second per step (the first step,
warm-up, is left out) and the peak resident memory of the process. Runs alternate Hone / PyTorch for --rounds
rounds; the table shows medians and the ratio. Also prints the FLOP rate Hone reaches, counting 4 × base linear
parameters per token plus attention, against the sgemm rate numpy's OpenBLAS measures on this machine.

  tools/bench/training.py --model /work/bench-models/small-bf16 --hone .build/release/hone --threads 2
"""
import argparse
import json
import os
import random
import resource  # noqa: F401  (used by the wrapper's code string)
import statistics
import subprocess
import sys
import tempfile
import time


def hone_run(args, data, rows):
    output = tempfile.mkdtemp(prefix="hone-train-bench-")
    command = [args.hone, "train", "sft", "--base-model", args.model, "--data-path", data, "--output-dir", output,
               "--batch-size", str(args.micro_batch), "--micro-batch-size", str(args.micro_batch),
               "--max-steps", str(args.steps), "--cutoff-len", str(args.seq), "--lora-r", str(args.rank),
               "--lora-alpha", str(2 * args.rank), "--lora-dropout", "0.05",
               "--lora-target-modules", "[" + ",".join(args.targets.split(",")) + "]",
               "--val-set-size", "0", "--save-steps", "0", "--warmup-steps", "0", "--threads", str(args.threads)]
    if args.gradient_checkpointing:
        command.append("--gradient-checkpointing")
    env = dict(os.environ, HONE_CACHE_DIR="")
    # Peak RSS per run: through a wrapper process, so RUSAGE_CHILDREN is this run's alone.
    _, _, peak = run_isolated(command, env)
    steps = [json.loads(line) for line in open(os.path.join(output, "metrics.jsonl"))]
    rates = [step["tokens_per_s"] for step in steps[1:]]
    return statistics.median(rates), peak


def run_isolated(command, env=None):
    """Runs `command` in a fresh Python child that reports the grandchild's peak RSS (ru_maxrss of children)."""
    wrapper = ("import resource,subprocess,sys,json;"
               "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
               "sys.stderr.write(p.stderr[-3000:]);"
               "print(json.dumps({'status':p.returncode,'stdout':p.stdout[-20000:],"
               "'peak':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024}))")
    result = subprocess.run([sys.executable, "-c", wrapper] + command, capture_output=True, text=True, env=env)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["status"] != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return report["stdout"], result.stderr, report["peak"]


def torch_worker(args):
    """One PyTorch + PEFT run (in its own process), printing JSON with the median tokens/s."""
    import torch
    import peft
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=getattr(torch, args.torch_dtype))
    targets = [{"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
                "down": "down_proj"}.get(name, name) for name in args.targets.split(",")]
    config = peft.LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05, target_modules=targets,
                             bias="none", task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, config)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    rows = json.load(open(args.rows_file))
    rates = []
    for step in range(args.steps):
        batch = torch.tensor(rows[(step * args.micro_batch) % len(rows):][:args.micro_batch])
        start = time.perf_counter()
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        rates.append(batch.numel() / (time.perf_counter() - start))
    print(json.dumps({"tokens_per_s": statistics.median(rates[1:])}))


def torch_run(args, rows_file):
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--model", args.model, "--seq", str(args.seq),
               "--micro-batch", str(args.micro_batch), "--rank", str(args.rank), "--targets", args.targets,
               "--steps", str(args.steps), "--threads", str(args.threads), "--torch-dtype", args.torch_dtype,
               "--rows-file", rows_file]
    if args.gradient_checkpointing:
        command.append("--gradient-checkpointing")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out, _, peak = run_isolated(command, env)
    return json.loads(out.strip().splitlines()[-1])["tokens_per_s"], peak


def model_flops_per_token(model, seq):
    config = json.load(open(os.path.join(model, "config.json")))
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads", config["num_attention_heads"])
    head_dim = config.get("head_dim") or hidden // heads
    ffn, vocab = config["intermediate_size"], config["vocab_size"]
    per_layer = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2 + 3 * hidden * ffn
    linear = layers * per_layer + hidden * vocab
    # Attention scores and weighted values: 2 products of (average causal reach seq/2) × head_dim per head, forward;
    # backward about twice that.
    attention = layers * 2 * 2 * (seq / 2) * heads * head_dim * 3
    return 4 * linear + attention, linear


def sgemm_rate(threads):
    """Best of 5 numpy float32 products 512×2048 · 2048×5632 (OpenBLAS, AVX-512 kernels), in a fresh process so
    the thread count and kernel choice apply when OpenBLAS loads."""
    code = ("import numpy as np,time;a=np.random.rand(512,2048).astype(np.float32);"
            "b=np.random.rand(2048,5632).astype(np.float32);a@b;best=0\n"
            "for _ in range(5):\n t=time.perf_counter();a@b;best=max(best,2*512*2048*5632/(time.perf_counter()-t))\n"
            "print(best)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OPENBLAS_CORETYPE="SkylakeX")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--hone", default=".build/release/hone")
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--targets", default="q,k,v,o")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--torch-dtype", default="float32")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--skip-torch", action="store_true", help="Hone only (e.g. a GGUF base PyTorch cannot load)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return torch_worker(args)

    config_path = os.path.join(args.model, "config.json") if os.path.isdir(args.model) else None
    vocab = json.load(open(config_path))["vocab_size"] if config_path else 32000
    generator = random.Random(0)
    rows = [[1] + [generator.randrange(3, vocab) for _ in range(args.seq - 1)] for _ in range(args.micro_batch * args.steps)]
    work = tempfile.mkdtemp(prefix="hone-train-bench-data-")
    data = os.path.join(work, "rows.jsonl")
    with open(data, "w") as handle:
        for row in rows:
            handle.write(json.dumps({"input_ids": row}) + "\n")
    rows_file = os.path.join(work, "rows.json")
    json.dump(rows, open(rows_file, "w"))

    results = {"hone": [], "torch": []}
    for round_index in range(args.rounds):
        results["hone"].append(hone_run(args, data, rows))
        if not args.skip_torch:
            results["torch"].append(torch_run(args, rows_file))
        print(f"round {round_index + 1}: " + ", ".join(f"{name} {runs[-1][0]:.0f} tok/s" for name, runs in results.items() if runs),
              file=sys.stderr)

    def summary(name):
        runs = results[name]
        return statistics.median(rate for rate, _ in runs), max(peak for _, peak in runs)

    hone_rate, hone_peak = summary("hone")
    print(f"model {args.model}, seq {args.seq}, micro batch {args.micro_batch}, r {args.rank} on {args.targets}, "
          f"{args.threads} threads{', gradient checkpointing' if args.gradient_checkpointing else ''}")
    print("| engine | tokens/s | peak RSS |")
    print("| --- | --- | --- |")
    print(f"| Hone | {hone_rate:.0f} | {hone_peak / 2**30:.2f} GiB |")
    if results["torch"]:
        torch_rate, torch_peak = summary("torch")
        print(f"| PyTorch {args.torch_dtype} + PEFT | {torch_rate:.0f} | {torch_peak / 2**30:.2f} GiB |")
        print(f"ratio Hone / PyTorch: {hone_rate / torch_rate:.2f}×")
    if config_path:
        flops, linear = model_flops_per_token(args.model, args.seq)
        rate = sgemm_rate(args.threads)
        print(f"Hone: {hone_rate * flops / 1e9:.0f} GFLOP/s (4 × {linear / 1e6:.0f} M linear parameters + attention per token) "
              f"= {hone_rate * flops / rate * 100:.0f}% of numpy sgemm's {rate / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
