#!/usr/bin/env python3
"""Time to first token of a chat answer, from a cold process: `hone chat` against llama.cpp's llama-completion on
the same GGUF and the same rendered prompt (the model's own chat template), one new token each, alternating rounds.

    python3 tools/bench/chat_ttft.py --hone .build/release/hone --llama-bin /path/to/llama.cpp/build/bin \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf [--rounds 7] [--threads 2]

Both processes open the file, tokenize, prefill the prompt and produce one token; the wall time of the whole
process is what a user waits for the first word. Prints the medians and the ratio Hone ÷ llama.cpp.
"""
import argparse
import json
import statistics
import subprocess
import tempfile
import time

QUESTION = "What is the capital of France?"


def timed(command, stdin=None):
    start = time.perf_counter()
    subprocess.run(command, input=stdin, capture_output=True, check=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hone", required=True)
    parser.add_argument("--llama-bin", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".json") as messages:
        json.dump([{"role": "user", "content": QUESTION}], messages)
        messages.flush()
        prompt = subprocess.run([args.hone, "template", "--model", args.model, "--messages", messages.name,
                                 "--add-generation-prompt"], capture_output=True, check=True, text=True).stdout
    hone = [args.hone, "chat", "--model", args.model, "--max-new-tokens", "1", "--temperature", "0",
            "--threads", str(args.threads)]
    llama = [f"{args.llama_bin}/llama-completion", "-m", args.model, "-p", prompt, "-n", "1", "--temp", "0",
             "-t", str(args.threads), "-no-cnv", "--no-display-prompt", "--no-warmup"]
    hone_times, llama_times = [], []
    for _ in range(args.rounds):
        hone_times.append(timed(hone, (QUESTION + "\n").encode()))
        llama_times.append(timed(llama))
    h, l = statistics.median(hone_times), statistics.median(llama_times)
    print(f"time to first token ({args.rounds} alternating rounds, {args.threads} threads, medians): "
          f"hone chat {h * 1000:.0f} ms, llama-completion {l * 1000:.0f} ms, ratio {h / l:.2f}")


if __name__ == "__main__":
    main()
