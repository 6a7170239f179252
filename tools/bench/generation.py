#!/usr/bin/env python3
"""Batched decoding: aggregate tokens/s of hone at batch 1, 4, 8, 16, next to llama.cpp's single-stream tg.

    python3 tools/bench/generation.py --model bench-models/tinyllama-f16.gguf --llama-cpp ../llama.cpp/build

Alternates the tools round after round (the VM drifts) and reports medians; from the measured rates it states
how long the 805 AlpacaEval answers take at 256 and 2048 new tokens each (decode only; prompts of ~40 tokens
add about 1 %).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def hone_tg(hone, model, threads, tokens, batch):
    out = subprocess.run([hone, "bench", "--model", model, "-p", "0", "-n", str(tokens), "-b", str(batch), "-r", "2",
                          "--threads", str(threads), "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["tg_tps"]


def llama_tg(binary, model, threads, tokens):
    out = subprocess.run([binary, "-m", model, "-t", str(threads), "-p", "0", "-n", str(tokens), "-r", "2", "-o", "json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]["avg_ts"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--llama-cpp")
    parser.add_argument("--hone", default=os.path.join(ROOT, ".build", "release", "hone"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-n", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="1,4,8,16")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    ours = {b: [] for b in batches}
    theirs = []
    for _ in range(args.rounds):
        for batch in batches:
            ours[batch].append(hone_tg(args.hone, args.model, args.threads, args.n, batch))
        if args.llama_cpp:
            theirs.append(llama_tg(os.path.join(args.llama_cpp, "bin", "llama-bench"), args.model, args.threads, args.n))
    single = statistics.median(ours[batches[0]])
    print(f"{os.path.basename(args.model)}, {args.threads} threads, tg{args.n}, medians of {args.rounds} rounds")
    print()
    print("| batch | hone aggregate t/s | × batch 1 | 805 × 256 tokens | 805 × 2048 tokens |")
    print("|---|---|---|---|---|")
    for batch in batches:
        rate = statistics.median(ours[batch])
        spread = f"{min(ours[batch]):.1f}–{max(ours[batch]):.1f}"
        hours = lambda tokens: 805 * tokens / rate / 3600
        print(f"| {batch} | {rate:.1f} ({spread}) | {rate / single:.2f}× | {hours(256):.2f} h | {hours(2048):.1f} h |")
    if theirs:
        peer = statistics.median(theirs)
        print()
        print(f"llama.cpp tg{args.n} single stream: {peer:.1f} t/s ({min(theirs):.1f}–{max(theirs):.1f}); "
              f"hone batch 1 ÷ llama.cpp = {single / peer:.2f}×")


if __name__ == "__main__":
    main()
