#!/usr/bin/env python3
"""lm-eval's `local-completions` model against `hone serve`, next to lm-eval's own HF backend on the same f32 model
and the same documents: the first N HellaSwag validation items (from ../shared/data, as a local lm-eval task, so
nothing is downloaded). The two runs must give the same acc and acc_norm, and per-choice log-likelihoods within
--tolerance.

    tools/oracle/.venv/bin/python tools/serve/lm_eval_check.py --hone .build/debug/hone [--model models/hone-tiny]
        [--docs 40] [--tokenizer-backend remote|huggingface] [--output results.json]

--output writes both runs' per-document log-likelihoods and scores as JSON, so other backends (`hone eval` on the
same documents) can be compared with the same file.
"""
import argparse
import gzip
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELLASWAG = os.path.join(os.path.dirname(REPO), "shared", "data", "mc_eval", "hellaswag", "hellaswag_val_full.txt.gz")

TASK = """task: hone_hellaswag_local
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {docs}
validation_split: validation
output_type: multiple_choice
doc_to_text: query
doc_to_target: gold
doc_to_choice: choices
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def write_task(directory, count):
    with gzip.open(HELLASWAG, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    docs = os.path.join(directory, "docs.jsonl")
    with open(docs, "w") as out:
        for index in range(count):
            block = lines[6 * index: 6 * index + 6]
            out.write(json.dumps({"query": block[0], "gold": int(block[1]), "choices": block[2:6]}) + "\n")
    with open(os.path.join(directory, "hone_hellaswag_local.yaml"), "w") as f:
        f.write(TASK.format(docs=docs))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(hone, model, threads):
    port = free_port()
    process = subprocess.Popen([hone, "serve", "--model", model, "--port", str(port), "--parallel", "4",
                                "--threads", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("hone serve did not start")


def run(model, model_args, task_dir):
    import lm_eval
    from lm_eval.tasks import TaskManager
    results = lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=["hone_hellaswag_local"],
                                      task_manager=TaskManager(include_path=task_dir), log_samples=True,
                                      batch_size=1)
    scores = results["results"]["hone_hellaswag_local"]
    samples = sorted(results["samples"]["hone_hellaswag_local"], key=lambda s: s["doc_id"])
    lls = [[float(r[0][0]) for r in s["resps"]] for s in samples]
    return {"acc": scores["acc,none"], "acc_norm": scores["acc_norm,none"], "loglikelihoods": lls}


def hone_eval(hone, model, docs, threads):
    """`hone eval --tasks hellaswag` on the same first documents (the same text rendering from ../shared)."""
    with tempfile.TemporaryDirectory() as output:
        subprocess.run([hone, "eval", "--model", model, "--tasks", "hellaswag", "--limit", str(docs),
                        "--data", os.path.dirname(os.path.dirname(HELLASWAG)), "--output-dir", output,
                        "--threads", str(threads)], check=True, capture_output=True)
        with open(os.path.join(output, "base", "samples_hellaswag.jsonl")) as f:
            samples = [json.loads(line) for line in f if line.strip()]
        with open(os.path.join(output, "base", "results.json")) as f:
            scores = json.load(f)["results"]["hellaswag"]
    return {"acc": scores["acc,none"], "acc_norm": scores["acc_norm,none"],
            "loglikelihoods": [[response[0] for response in sample["filtered_resps"]] for sample in samples]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hone", default=os.path.join(REPO, ".build/debug/hone"))
    parser.add_argument("--model", default=os.path.join(REPO, "models/hone-tiny"))
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokenizer-backend", default="huggingface", choices=["huggingface", "remote"])
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--output")
    # Both backends told the same: lm-eval's HF model follows the tokenizer (hone-tiny adds BOS), its API models
    # add none unless asked.
    parser.add_argument("--add-bos", default="True", choices=["True", "False"])
    parser.add_argument("--hf-results", help="reuse the HF run of an earlier --output file (same documents)")
    args = parser.parse_args()
    if not os.path.exists(HELLASWAG):
        print(f"skip: {HELLASWAG} is absent")
        return 0
    with tempfile.TemporaryDirectory() as task_dir:
        write_task(task_dir, args.docs)
        if args.hf_results:
            with open(args.hf_results) as f:
                hf = json.load(f)["hf"]
        else:
            hf = run("hf", f"pretrained={args.model},dtype=float32,device=cpu,add_bos_token={args.add_bos}", task_dir)
            if args.output:
                with open(args.output, "w") as f:
                    json.dump({"documents": args.docs, "hf": hf}, f)
        process, port = start_server(args.hone, args.model, args.threads)
        try:
            tokenizer = f",tokenizer={args.model}" if args.tokenizer_backend == "huggingface" else ""
            served = run("local-completions",
                         f"base_url=http://127.0.0.1:{port}/v1/completions,model={os.path.basename(args.model)},"
                         f"tokenizer_backend={args.tokenizer_backend}{tokenizer},num_concurrent=4,max_retries=1,"
                         f"add_bos_token={args.add_bos}",
                         task_dir)
        finally:
            process.send_signal(2)
            process.wait(timeout=30)
    worst = max(abs(a - b) for x, y in zip(hf["loglikelihoods"], served["loglikelihoods"]) for a, b in zip(x, y))
    print(f"lm-eval hf:                acc {hf['acc']:.4f}  acc_norm {hf['acc_norm']:.4f}")
    print(f"lm-eval local-completions: acc {served['acc']:.4f}  acc_norm {served['acc_norm']:.4f}  "
          f"(hone serve, {args.tokenizer_backend} tokenizer)")
    print(f"{args.docs} documents, max |Δ loglikelihood| {worst:.2e}")
    evaluated = hone_eval(args.hone, args.model, args.docs, args.threads)
    worst_eval = max(abs(a - b) for x, y in zip(evaluated["loglikelihoods"], served["loglikelihoods"]) for a, b in zip(x, y))
    print(f"hone eval:                 acc {evaluated['acc']:.4f}  acc_norm {evaluated['acc_norm']:.4f}  "
          f"(max |Δ loglikelihood| against the server run {worst_eval:.2e})")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"documents": args.docs, "hf": hf, "hone_serve": served, "hone_eval": evaluated}, f)
    ok = hf["acc"] == served["acc"] and hf["acc_norm"] == served["acc_norm"] and worst <= args.tolerance
    ok = ok and evaluated["acc"] == served["acc"] and evaluated["acc_norm"] == served["acc_norm"] and worst_eval <= args.tolerance
    print("lm-eval: scores equal" if ok else "lm-eval: MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
