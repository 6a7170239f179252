#!/usr/bin/env python3
"""QLoRA training speed on every quantized type of one model: `hone train sft` on each GGUF (the base stays
quantized and mapped), the same data, steps and LoRA settings, tokens/s from metrics.jsonl (the median of the
steps after the first), and each type's rate against the Q8_0 base's.

    python3 tools/bench/qlora_types.py --hone .build/release/hone --models /path/to/ggufs [--threads 2] [--steps 6]

`--models` is a folder of GGUFs of one model in several types (e.g. made by llama-quantize from the shipped
SmolLM2 Q4_1 file); the data is examples/pirate-style.json.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]


def rate(hone, model, threads, steps):
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([hone, "train", "sft", "--base-model", str(model), "--data-path",
                        str(REPO / "examples/pirate-style.json"), "--output-dir", out, "--max-steps", str(steps),
                        "--batch-size", "8", "--micro-batch-size", "4", "--lora-r", "16",
                        "--lora-target-modules", "[q,k,v,o,gate,up,down]", "--val-set-size", "0", "--save-steps", "0",
                        "--threads", str(threads)], check=True, capture_output=True,
                       env={"HONE_CACHE_DIR": "", "PATH": "/usr/bin:/bin"})
        records = [json.loads(line) for line in open(pathlib.Path(out) / "metrics.jsonl")]
        return statistics.median(r["tokens_per_s"] for r in records[1:])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hone", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    files = sorted(pathlib.Path(args.models).glob("*.gguf"))
    rates = {f.stem: rate(args.hone, f, args.threads, args.steps) for f in files}
    base = next((v for k, v in rates.items() if k.endswith("Q8_0")), None)
    print("| base | tokens/s | vs Q8_0 |\n|---|---|---|")
    for name, value in rates.items():
        print(f"| {name} | {value:.0f} | {value / base:.2f}× |" if base else f"| {name} | {value:.0f} | |")


if __name__ == "__main__":
    main()
