#!/usr/bin/env python3
"""`hone eval` documents/s next to lm-evaluation-harness's HF backend, and HellaSwag next to llama-perplexity.

    tools/oracle/.venv/bin/python tools/bench/eval.py --model-dir models/SmolLM2-135M-Instruct-f32 \\
        --gguf /work/bench-models/smollm2-135m-Q8_0.gguf --llama-cpp <llama.cpp>/build --docs 40 --rounds 2

Part 1, per task (arc_challenge, hellaswag, piqa, mmlu_high_school_psychology, truthfulqa_mc2 by default; `mmlu`
is the 57 subjects; 0-shot, the first --docs documents of ../shared/data/mc_eval, of each subject for `mmlu`):
`hone eval` on the f32 HF directory (wall time of the whole command, model loading included) and lm-eval 0.4's HF
backend on the same directory and documents (CPU, float32, its default batch size 1, torch at --threads threads;
model loaded once outside the timing, task set-up and scoring timed).
lm-eval reads local JSON files through task YAMLs that include its official ones (see make_eval_fixtures.py).

Part 2: HellaSwag on the same GGUF, same text rendering, same --docs tasks: `hone eval --tasks hellaswag` against
`llama-perplexity --hellaswag` (wall time of each command).

Rounds alternate the tools (the VM is noisy); the medians are reported.
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "oracle"))

TASKS = ["arc_challenge", "hellaswag", "piqa", "mmlu_high_school_psychology", "truthfulqa_mc2"]


def hone_eval(hone, model, task, data, docs, threads):
    start = time.perf_counter()
    subprocess.run([hone, "eval", "--model", str(model), "--tasks", task, "--data", str(data), "--limit", str(docs),
                    "--threads", str(threads)], check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--gguf", type=Path)
    parser.add_argument("--llama-cpp", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mc_eval")
    parser.add_argument("--hone", default=str(ROOT / ".build" / "release" / "hone"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--task-docs", default="", help="per-task document counts, e.g. truthfulqa_mc2=10")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    docs = {t: args.docs for t in tasks}
    docs.update({k: int(v) for k, v in (item.split("=") for item in args.task_docs.split(",") if item)})

    import torch
    torch.set_num_threads(args.threads)
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    import make_eval_fixtures as fx

    ours = {t: [] for t in tasks}
    theirs = {t: [] for t in tasks}
    with tempfile.TemporaryDirectory() as tmp:
        # lm-eval's view of the same first --docs documents (HF schemas), through the oracle's YAML writer.
        fx.SHARED = args.data
        fx.DATA = Path(tmp) / "subset"
        subjects = ["high_school_psychology"]
        if "mmlu" in tasks:  # the whole benchmark: the first --docs questions of each of the 57 subjects
            subjects = sorted(p.name[:-len("_test.csv")] for p in (args.data / "mmlu" / "test").glob("*_test.csv"))
        hf = fx.write_subsets_for_bench(max(docs.values()), subjects)
        counts = {t: docs[t] for t in tasks}  # documents scored per task
        if "mmlu" in tasks:
            counts["mmlu"] = sum(min(docs["mmlu"], len(hf[f"mmlu_{s}"]["test"])) for s in subjects)
        yamls = Path(tmp) / "yamls"
        yamls.mkdir()
        fx.write_yamls(hf, yamls)
        manager = TaskManager(include_path=str(yamls))
        lm = HFLM(pretrained=str(args.model_dir), dtype="float32", device="cpu", batch_size=1)
        for _ in range(args.rounds):
            for task in tasks:
                ours[task].append(hone_eval(args.hone, args.model_dir, task, args.data, docs[task], args.threads))
                start = time.perf_counter()
                lm_eval.simple_evaluate(model=lm, tasks=[f"hone_{task}"], num_fewshot=0, limit=docs[task],
                                        task_manager=manager, bootstrap_iters=0)
                theirs[task].append(time.perf_counter() - start)
                print(f"{task}: hone {ours[task][-1]:.1f} s, lm-eval {theirs[task][-1]:.1f} s", file=sys.stderr)

        print(f"\n0-shot, {args.threads} threads, {args.rounds} rounds (medians)\n")
        print("| task | documents | hone docs/s | lm-eval HF docs/s | ratio |")
        print("|---|---:|---:|---:|---:|")
        for task in tasks:
            a, b = statistics.median(ours[task]), statistics.median(theirs[task])
            print(f"| {task} | {counts[task]} | {counts[task] / a:.2f} | {counts[task] / b:.2f} | {b / a:.1f}× |")

        if args.gguf and args.llama_cpp:
            text = Path(tmp) / "hellaswag_val_full.txt"
            with gzip.open(args.data / "hellaswag" / "hellaswag_val_full.txt.gz", "rb") as f:
                text.write_bytes(f.read())
            mine, peer = [], []
            for _ in range(args.rounds):
                mine.append(hone_eval(args.hone, args.gguf, "hellaswag", args.data, args.docs, args.threads))
                start = time.perf_counter()
                subprocess.run([str(args.llama_cpp / "bin" / "llama-perplexity"), "-m", str(args.gguf), "-f", str(text),
                                "--hellaswag", "--hellaswag-tasks", str(args.docs), "-t", str(args.threads), "-c", "512",
                                "-b", "512"], check=True, capture_output=True, text=True)
                peer.append(time.perf_counter() - start)
            a, b = statistics.median(mine), statistics.median(peer)
            print(f"\nHellaSwag, {args.gguf.name}, {args.docs} tasks: hone {args.docs / a:.2f} docs/s, "
                  f"llama-perplexity --hellaswag {args.docs / b:.2f} docs/s, ratio {b / a:.2f}×")


if __name__ == "__main__":
    main()
