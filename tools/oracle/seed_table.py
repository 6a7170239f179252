#!/usr/bin/env python3
"""The seed-table (ARC-Challenge acc_norm, PIQA acc_norm, HellaSwag acc_norm, MMLU acc, TruthfulQA mc2; 0-shot) for a
base model and its adapters, from `hone eval --tasks seed-table` and from lm-evaluation-harness on the same documents.

    tools/oracle/.venv/bin/python tools/oracle/seed_table.py --model-dir models/SmolLM2-135M-Instruct-f32 \\
        --adapter pirate=ADAPTER_DIR [--docs 40] [--mmlu-docs 4] [--truthfulqa-docs 20] [--threads 2] [--json out.json]

Documents: the first --docs of ARC-Challenge, PIQA and HellaSwag, the first --mmlu-docs test questions of each of
the 57 MMLU subjects, the first --truthfulqa-docs of TruthfulQA, from ../shared/data/mc_eval, written to a temporary
folder in mc_eval's layouts for Hone and as HF-schema JSON for lm-eval (HellaSwag in its original JSONL schema, built
from the text rendering with the whole context in ctx_a, so both tools apply lm-eval's HellaSwag preprocessing).
lm-eval 0.4 runs unmodified (HF backend, CPU, float32, batch size 1, `peft=` for an adapter) through task YAMLs
that include its official ones (make_eval_fixtures.py writes them). Prints both tables and the largest difference of
any metric; exits 1 when an accuracy differs at all (they are counts over the same documents) or mc2 by more than
--mc2-tolerance (a sum of probabilities, 1e-4 by default).
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "oracle"))
import make_eval_fixtures as fx  # noqa: E402  (lm-eval's task YAMLs over local files, MMLU's CSV subsets)

# (column, hone/lm-eval task, metric key)
COLUMNS = [("ARC-c acc_norm", "arc_challenge", "acc_norm,none"), ("PIQA acc_norm", "piqa", "acc_norm,none"),
           ("HellaSwag acc_norm", "hellaswag", "acc_norm,none"), ("MMLU acc", "mmlu", "acc,none"),
           ("TruthfulQA mc2", "truthfulqa_mc2", "acc,none")]


def write_data(shared: Path, folder: Path, docs: int, mmlu_docs: int, truthfulqa_docs: int) -> dict:
    """The chosen documents in mc_eval's layouts under `folder`; returns HF-schema records per task for lm-eval."""
    hf = {}
    (folder / "arc").mkdir(parents=True)
    lines = (shared / "arc" / "ARC-Challenge-test.jsonl").read_text().splitlines()[:docs]
    (folder / "arc" / "ARC-Challenge-test.jsonl").write_text("\n".join(lines) + "\n")
    hf["arc_challenge"] = [json.loads(line) for line in lines]

    (folder / "piqa").mkdir()
    goals = (shared / "piqa" / "valid.jsonl").read_text().splitlines()[:docs]
    labels = (shared / "piqa" / "valid-labels.lst").read_text().splitlines()[:docs]
    (folder / "piqa" / "valid.jsonl").write_text("\n".join(goals) + "\n")
    (folder / "piqa" / "valid-labels.lst").write_text("\n".join(labels) + "\n")
    hf["piqa"] = [dict(json.loads(g), label=int(l)) for g, l in zip(goals, labels)]

    (folder / "hellaswag").mkdir()
    with gzip.open(shared / "hellaswag" / "hellaswag_val_full.txt.gz", "rt") as f:
        text = [next(f).rstrip("\n") for _ in range(6 * docs)]
    records = []
    for i in range(docs):
        activity, context = text[6 * i].split(": ", 1)
        records.append({"ind": i, "activity_label": activity, "ctx_a": context, "ctx_b": "",
                        "endings": text[6 * i + 2: 6 * i + 6], "label": text[6 * i + 1]})
    (folder / "hellaswag" / "hellaswag_val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    hf["hellaswag"] = records

    (folder / "truthfulqa").mkdir()
    mc = json.loads((shared / "truthfulqa" / "mc_task.json").read_text())[:truthfulqa_docs]
    (folder / "truthfulqa" / "mc_task.json").write_text(json.dumps(mc, indent=1, ensure_ascii=False) + "\n")
    hf["truthfulqa"] = [{"question": r["question"],
                         "mc1_targets": {"choices": list(r["mc1_targets"]), "labels": list(r["mc1_targets"].values())},
                         "mc2_targets": {"choices": list(r["mc2_targets"]), "labels": list(r["mc2_targets"].values())}}
                        for r in mc]

    fx.write_mmlu(shared / "mmlu", folder / "mmlu", test_rows=mmlu_docs, hf=hf)
    return hf


def hone_rows(hone: str, model: Path, adapters: list, data: Path, out: Path, threads: int) -> dict:
    command = [hone, "eval", "--model", str(model), "--tasks", "seed-table", "--data", str(data),
               "--output-dir", str(out), "--threads", str(threads)]
    for name, folder in adapters:
        command += ["--adapter", f"{name}={folder}"]
    subprocess.run(command, check=True, stdout=sys.stderr)
    rows = {}
    for name in ["base"] + [name for name, _ in adapters]:
        results = json.loads((out / name / "results.json").read_text())
        merged = {**results["results"], **results.get("groups", {})}
        rows[name] = {task: merged[task][key] for _, task, key in COLUMNS}
    return rows


def lm_eval_row(model: Path, adapter, manager) -> dict:
    import lm_eval
    model_args = f"pretrained={model},dtype=float32,device=cpu" + (f",peft={adapter}" if adapter else "")
    out = lm_eval.simple_evaluate(model="hf", model_args=model_args, tasks=[f"hone_{t}" for _, t, _ in COLUMNS],
                                  num_fewshot=0, batch_size=1, task_manager=manager, bootstrap_iters=0)
    merged = {**out["results"], **out.get("groups", {})}
    return {task: merged[f"hone_{task}"][key] for _, task, key in COLUMNS}


def table(rows: dict) -> str:
    lines = ["| model | " + " | ".join(c for c, _, _ in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * values[t]:.2f}" for _, t, _ in COLUMNS) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--adapter", action="append", default=[], help="NAME=DIR (PEFT LoRA adapter)")
    parser.add_argument("--hone", default=str(ROOT / ".build" / "release" / "hone"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mc_eval")
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--mmlu-docs", type=int, default=4)
    parser.add_argument("--truthfulqa-docs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mc2-tolerance", type=float, default=1e-4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    adapters = [tuple(item.split("=", 1)) for item in args.adapter]

    import torch
    torch.set_num_threads(args.threads)
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hf = write_data(args.data, tmp / "data", args.docs, args.mmlu_docs, args.truthfulqa_docs)
        ours = hone_rows(args.hone, args.model_dir, adapters, tmp / "data", tmp / "hone", args.threads)
        (tmp / "yamls").mkdir()
        fx.write_yamls(hf, tmp / "yamls")
        manager = TaskManager(include_path=str(tmp / "yamls"))
        theirs = {"base": lm_eval_row(args.model_dir, None, manager)}
        for name, folder in adapters:
            theirs[name] = lm_eval_row(args.model_dir, folder, manager)

    documents = (f"first {args.docs} documents of ARC-Challenge, PIQA and HellaSwag, {args.mmlu_docs} per MMLU "
                 f"subject ({57 * args.mmlu_docs}), {args.truthfulqa_docs} of TruthfulQA; 0-shot")
    print(f"{args.model_dir.name}, {documents}\n\nhone eval --tasks seed-table:\n\n{table(ours)}\n\n"
          f"lm-evaluation-harness (HF backend) on the same documents:\n\n{table(theirs)}\n")
    accuracy = max(abs(ours[row][task] - theirs[row][task]) for row in ours for _, task, _ in COLUMNS[:4])
    mc2 = max(abs(ours[row]["truthfulqa_mc2"] - theirs[row]["truthfulqa_mc2"]) for row in ours)
    print(f"largest difference: accuracies {accuracy:.3g}, mc2 {mc2:.3g}")
    if args.json:
        args.json.write_text(json.dumps({"documents": documents, "hone": ours, "lm_eval": theirs}, indent=1) + "\n")
    sys.exit(0 if accuracy == 0 and mc2 <= args.mc2_tolerance else 1)


if __name__ == "__main__":
    main()
