#!/usr/bin/env python3
"""Data-parallel training on this machine: 2 MPI ranks x 1 thread against 1 process x 2 threads.

Same model, data, global batch and steps; rounds alternate between the two layouts (the machine is shared and
noisy). Reports training tokens/s (metrics.jsonl, first step dropped) and, for the ranks, the time each step spends
in the gradient exchange (waiting for the other rank included), as `hone train` prints it.

    tools/bench/scale_out.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--steps 6] [--rounds 2]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(command, env):
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return result.stderr


def tokens_per_second(output):
    with open(os.path.join(output, "metrics.jsonl")) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    rates = [record["tokens_per_s"] for record in records[1:]] or [records[0]["tokens_per_s"]]
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--data", default=os.path.join(ROOT, "examples/alpaca-sample.json"))
    parser.add_argument("--hone", default=os.path.join(ROOT, ".build/release/hone"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        sys.exit("mpirun not found (Debian: openmpi-bin libopenmpi-dev)")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none")
    common = ["train", "sft", "--base-model", arguments.model, "--data-path", arguments.data,
              "--batch-size", "8", "--micro-batch-size", "2", "--max-steps", str(arguments.steps),
              "--val-set-size", "0", "--cutoff-len", "256", "--lora-r", "8", "--lora-dropout", "0",
              "--save-steps", "0"]
    layouts = {
        "1 process x 2 threads": lambda out: [arguments.hone] + common + ["--output-dir", out, "--threads", "2"],
        "2 ranks x 1 thread": lambda out: [mpirun, "-np", "2", "--bind-to", "core", arguments.hone] + common
        + ["--output-dir", out, "--threads", "1"],
    }
    rates = {name: [] for name in layouts}
    exchange = []
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(arguments.rounds):
            for name, command in layouts.items():
                output = os.path.join(scratch, f"{round_index}-{len(rates[name])}-{name[0]}")
                log = run(command(output), env)
                rates[name].append(tokens_per_second(output))
                found = re.search(r"gradient exchange: ([0-9.]+) ms per step \(([0-9.]+) MiB", log)
                if found:
                    exchange.append((float(found.group(1)), float(found.group(2))))
                print(f"round {round_index + 1}: {name}: {rates[name][-1]:.0f} tok/s", file=sys.stderr)
    base = statistics.median(rates["1 process x 2 threads"])
    print(f"model: {os.path.basename(arguments.model)}, {arguments.steps} steps of 4 micro-batches x 2, LoRA r 8 on the default modules")
    print("| layout | training tokens/s (median) | ratio |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {median / base:.2f}x |")
    if exchange:
        print(f"gradient exchange per step (wait included): median {statistics.median(e[0] for e in exchange):.1f} ms, "
              f"{exchange[0][1]:.2f} MiB of gradients per micro-batch")


if __name__ == "__main__":
    main()
