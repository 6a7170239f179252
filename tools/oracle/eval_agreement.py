#!/usr/bin/env python3
"""Document-by-document agreement of a finished `hone eval` run with lm-evaluation-harness on the same documents.

    tools/oracle/.venv/bin/python tools/oracle/eval_agreement.py --hone-output OUT/base \\
        --model-dir models/SmolLM2-135M-Instruct-f32 --cache /work/lm-eval-cache/smollm2 [--tasks arc_challenge,piqa]
        [--threads 2] [--json agreement.json]

OUT/base is one row of `hone eval --tasks seed-table --output-dir OUT` (pass the same --limit if it had one), its
samples_<task>.jsonl files next to results.json; the shots per task, the few-shot seed and the instruct formatting
(--system-instruction, --apply-chat-template, --no-fewshot-as-multiturn) are read from that results.json and given
to lm-eval. For each task found there, lm-eval 0.4 runs unmodified (HF backend,
CPU, float32, --batch-size) on the same documents of ../shared/data/mc_eval through task YAMLs that include its
official ones (make_eval_fixtures.py writes them; HellaSwag from the text rendering with the whole context in
ctx_a, so lm-eval's own preprocessing applies to it), with --log_samples. The whole seed-table takes lm-eval more
than 7 hours on two cores, so its log-likelihoods go into lm-eval's own request cache (--cache, a SQLite file that
lm-eval fills as it goes): an interrupted run resumes where it stopped.

Per task it prints the documents compared, those whose context/continuation strings differ, the largest
log-likelihood difference, is_greedy and per-document metric disagreements, and both aggregate metrics. Exits 1
when any document's strings, metric or is_greedy differ, or a log-likelihood differs by more than --tolerance (1e-3,
as the tests use) and Hone's is not within the tolerance of the same log-likelihood computed in float64 (transformers,
lm-eval's tokenization): on long prompts lm-eval's own float32 error approaches 1e-3 (--no-float64: no such judging).
"""
import argparse
import csv
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "oracle"))

# Per-document metrics lm-eval logs for each task (mc2's is a probability mass: compared within the tolerance).
METRICS = {"arc_challenge": ["acc", "acc_norm"], "arc_easy": ["acc", "acc_norm"], "piqa": ["acc", "acc_norm"],
           "hellaswag": ["acc", "acc_norm"], "truthfulqa_mc1": ["acc"], "truthfulqa_mc2": ["acc"]}


def hf_records(shared: Path, tasks: list) -> dict:
    """HF-schema records of every document of each task, in the order `hone eval --data shared` reads them."""
    hf = {}
    if "arc_challenge" in tasks or "arc_easy" in tasks:
        for name, file in [("arc_easy", "ARC-Easy-test.jsonl"), ("arc_challenge", "ARC-Challenge-test.jsonl")]:
            if name in tasks:
                hf[name] = [json.loads(line) for line in (shared / "arc" / file).read_text().splitlines() if line.strip()]
    if "piqa" in tasks:
        goals = [line for line in (shared / "piqa" / "valid.jsonl").read_text().splitlines() if line.strip()]
        labels = (shared / "piqa" / "valid-labels.lst").read_text().split()
        hf["piqa"] = [dict(json.loads(g), label=int(l)) for g, l in zip(goals, labels)]
    if "hellaswag" in tasks:
        with gzip.open(shared / "hellaswag" / "hellaswag_val_full.txt.gz", "rt") as f:
            text = [line.rstrip("\n") for line in f]
        hf["hellaswag"] = []
        for i in range(len(text) // 6):
            activity, context = text[6 * i].split(": ", 1)
            hf["hellaswag"].append({"ind": i, "activity_label": activity, "ctx_a": context, "ctx_b": "",
                                    "endings": text[6 * i + 2: 6 * i + 6], "label": text[6 * i + 1]})
    if any(t.startswith("truthfulqa") for t in tasks):
        mc = json.loads((shared / "truthfulqa" / "mc_task.json").read_text())
        hf["truthfulqa"] = [{"question": r["question"],
                             "mc1_targets": {"choices": list(r["mc1_targets"]), "labels": list(r["mc1_targets"].values())},
                             "mc2_targets": {"choices": list(r["mc2_targets"]), "labels": list(r["mc2_targets"].values())}}
                            for r in mc]
    for task in tasks:
        if not task.startswith("mmlu_"):
            continue
        subject = task[len("mmlu_"):]
        for split in ["test", "dev"]:
            with open(shared / "mmlu" / split / f"{subject}_{split}.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            hf.setdefault(task, {})[split] = [
                {"question": r[0], "subject": subject, "choices": r[1:5], "answer": "ABCD".index(r[5])} for r in rows]
    return hf


def read_samples(path: Path) -> list:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pairs(sample) -> list:
    """(context, continuation) of every choice: a dict of gen_args_<i> in the files, tuples in lm-eval's memory."""
    arguments = sample["arguments"]
    if isinstance(arguments, dict):
        return [(arguments[k]["arg_0"], arguments[k]["arg_1"]) for k in sorted(arguments, key=lambda k: int(k.split("_")[-1]))]
    return [(pair[0], pair[1]) for pair in arguments]


def compare(task: str, ours: list, theirs: list, tolerance: float, exact=None) -> dict:
    """Both tools' per-document samples of one task, matched by doc_id. With `exact` (a document's (context,
    continuation) pairs -> their log-likelihoods in float64), a document whose log-likelihoods differ by more than
    the tolerance is judged against those: when Hone's are all within the tolerance of float64, the difference is
    lm-eval's own float32 error and does not count as a disagreement."""
    by_id = {s["doc_id"]: s for s in theirs}
    metrics = METRICS.get(task, ["acc"])
    report = {"documents": 0, "missing": 0, "strings_differ": 0, "is_greedy_differ": 0, "metric_differ": 0,
              "max_loglikelihood_difference": 0.0, "loglikelihood_differ": 0, "first_problem": None, "judged_in_float64": 0,
              "hone_within_tolerance_of_float64": 0, "largest_hone_float64_difference": 0.0,
              "largest_lm_eval_float64_difference": 0.0}
    for sample in ours:
        other = by_id.get(sample["doc_id"])
        if other is None:
            report["missing"] += 1
            continue
        report["documents"] += 1
        problem = None
        if pairs(sample) != pairs(other):
            report["strings_differ"] += 1
            problem = "context/continuation strings differ"
        else:
            ours_ll = [float(ll) for ll, _ in sample["filtered_resps"]]
            theirs_ll = [float(ll) for ll, _ in other["filtered_resps"]]
            differences = [abs(a - b) for a, b in zip(ours_ll, theirs_ll)]
            report["max_loglikelihood_difference"] = max([report["max_loglikelihood_difference"]] + differences)
            if differences and max(differences) > tolerance:
                judged = exact(pairs(sample)) if exact else None
                if judged is not None:
                    report["judged_in_float64"] += 1
                    ours_off = max(abs(a - b) for a, b in zip(ours_ll, judged))
                    theirs_off = max(abs(a - b) for a, b in zip(theirs_ll, judged))
                    report["largest_hone_float64_difference"] = max(report["largest_hone_float64_difference"], ours_off)
                    report["largest_lm_eval_float64_difference"] = max(report["largest_lm_eval_float64_difference"], theirs_off)
                    if ours_off <= tolerance:
                        report["hone_within_tolerance_of_float64"] += 1
                    else:
                        report["loglikelihood_differ"] += 1
                        problem = f"log-likelihood differs by {max(differences):.3g}, Hone {ours_off:.3g} from float64"
                else:
                    report["loglikelihood_differ"] += 1
                    problem = f"log-likelihood differs by {max(differences):.3g}"
            for (_, greedy), (_, greedy2) in zip(sample["filtered_resps"], other["filtered_resps"]):
                if str(greedy) != str(greedy2):
                    report["is_greedy_differ"] += 1
                    problem = problem or "is_greedy differs"
            for metric in metrics:
                a, b = float(sample[metric]), float(other[metric])
                if (abs(a - b) > tolerance) if task == "truthfulqa_mc2" else (a != b):
                    report["metric_differ"] += 1
                    problem = problem or f"{metric} {a} against {b}"
        if problem and report["first_problem"] is None:
            report["first_problem"] = f"doc_id {sample['doc_id']}: {problem}"
    return report


def float64_judge(lm, model_dir: Path):
    """(context, continuation) pairs -> log-likelihoods from the model in float64, tokenized by lm-eval's own
    `_encode_pair` (the model is loaded on first use)."""
    import torch
    from transformers import AutoModelForCausalLM
    model = []

    def judge(document_pairs):
        if not model:
            model.append(AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float64).eval())
        values = []
        for context, continuation in document_pairs:
            context_tokens, continuation_tokens = lm._encode_pair(context, continuation)
            ids = torch.tensor([context_tokens + continuation_tokens])
            with torch.no_grad():
                logp = torch.log_softmax(model[0](ids).logits[0], dim=-1)
            n = len(continuation_tokens)
            values.append(logp[-n - 1:-1].gather(-1, ids[0, -n:, None]).sum().item())
        return values
    return judge


def run_settings(hone_output: Path) -> dict:
    """What the hone run was asked for, from its results.json: shots per task, the few-shot seed, and lm-eval's
    instruct formatting (system instruction, chat template, few-shot as turns)."""
    results = json.loads((hone_output / "results.json").read_text())
    return {"n_shot": results.get("n-shot", {}), "seed": results.get("config", {}).get("fewshot_seed", 1234),
            "system_instruction": results.get("system_instruction"),
            "apply_chat_template": results.get("chat_template") is not None,
            "fewshot_as_multiturn": bool(results.get("fewshot_as_multiturn"))}


def lm_eval_strings(task_object, limit, settings, shots, chat_template) -> list:
    """lm-eval's requests for a task, built without a model: per document, its (context, continuation) pairs."""
    task_object.set_config(key="num_fewshot", value=shots)
    task_object.set_fewshot_seed(seed=settings["seed"])
    task_object.build_all_requests(limit=limit, rank=0, world_size=1,
                                   system_instruction=settings["system_instruction"],
                                   apply_chat_template=settings["apply_chat_template"],
                                   fewshot_as_multiturn=settings["fewshot_as_multiturn"],
                                   chat_template=chat_template if settings["apply_chat_template"] else None)
    by_doc = {}
    for instance in task_object.instances:
        by_doc.setdefault(instance.doc_id, []).append((instance.idx, instance.arguments))
    return [{"doc_id": doc, "arguments": [pair for _, pair in sorted(items)]} for doc, items in sorted(by_doc.items())]


def compare_strings(hone_output: Path, tasks: list, manager, limit, settings, chat_template) -> bool:
    """Prints, per task, the documents whose strings differ from lm-eval's requests; True when any does."""
    bad = False
    for task in tasks:
        theirs = lm_eval_strings(manager.load([f"hone_{task}"])["tasks"][f"hone_{task}"], limit, settings,
                                 settings["n_shot"].get(task, 0), chat_template)
        ours = read_samples(hone_output / f"samples_{task}.jsonl")
        by_id = {s["doc_id"]: pairs(s) for s in theirs}
        differ = [s["doc_id"] for s in ours if pairs(s) != by_id.get(s["doc_id"])]
        bad = bad or bool(differ) or len(ours) != len(theirs)
        print(f"{task}: hone {len(ours)} documents, lm-eval {len(theirs)}; strings differ in {len(differ)}"
              + (f" (first: doc_id {differ[0]})" if differ else ""), flush=True)
    return bad


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hone-output", type=Path, required=True, help="a row folder of hone eval --output-dir")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mc_eval")
    parser.add_argument("--cache", help="lm-eval's request cache (SQLite; reruns resume from it)")
    parser.add_argument("--tasks", help="comma-separated tasks (default: every samples_<task>.jsonl of --hone-output)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="the first N documents per task (as hone eval --limit N made them)")
    parser.add_argument("--batch-size", type=int, default=1, help="lm-eval's batch size (padded batches run faster on CPU)")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--strings-only", action="store_true",
                        help="compare every document's context/continuation strings only (lm-eval builds its requests; no model runs: minutes)")
    parser.add_argument("--no-float64", action="store_true",
                        help="count every log-likelihood difference over the tolerance, without judging it against the model in float64")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    found = sorted(p.name[len("samples_"):-len(".jsonl")] for p in args.hone_output.glob("samples_*.jsonl"))
    tasks = args.tasks.split(",") if args.tasks else found
    for task in tasks:
        if task not in found:
            sys.exit(f"eval_agreement.py: {args.hone_output}/samples_{task}.jsonl is missing")
    # Short tasks first, so an interrupted run has finished whole tasks.
    order = {"arc_challenge": 0, "arc_easy": 0, "piqa": 1, "truthfulqa_mc1": 2, "truthfulqa_mc2": 2, "hellaswag": 4}
    tasks.sort(key=lambda t: (order.get(t, 3), t))

    import torch
    torch.set_num_threads(args.threads)
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    import make_eval_fixtures as fx

    if not args.cache and not args.strings_only:
        parser.error("--cache is required (unless --strings-only)")
    with tempfile.TemporaryDirectory() as tmp:
        yamls = Path(tmp) / "yamls"
        yamls.mkdir()
        fx.write_yamls(hf_records(args.data, tasks), yamls)
        manager = TaskManager(include_path=str(yamls))
        settings = run_settings(args.hone_output)
        if args.strings_only:
            chat_template = None
            if settings["apply_chat_template"]:
                from transformers import AutoTokenizer
                tokenizer = AutoTokenizer.from_pretrained(str(args.model_dir))

                def chat_template(history, add_generation_prompt=True):  # as HFLM.apply_chat_template
                    return tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=add_generation_prompt,
                                                         continue_final_message=not add_generation_prompt)
            sys.exit(1 if compare_strings(args.hone_output, tasks, manager, args.limit, settings, chat_template) else 0)

        Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
        lm = HFLM(pretrained=str(args.model_dir), dtype="float32", device="cpu", batch_size=args.batch_size)
        judge = float64_judge(lm, args.model_dir)
        reports = {}
        for task in tasks:
            out = lm_eval.simple_evaluate(model=lm, tasks=[f"hone_{task}"], num_fewshot=settings["n_shot"].get(task, 0),
                                          task_manager=manager, bootstrap_iters=0, log_samples=True,
                                          use_cache=args.cache, limit=args.limit,
                                          fewshot_random_seed=settings["seed"],
                                          system_instruction=settings["system_instruction"],
                                          apply_chat_template=settings["apply_chat_template"],
                                          fewshot_as_multiturn=settings["fewshot_as_multiturn"])
            theirs = out["samples"][f"hone_{task}"]
            report = compare(task, read_samples(args.hone_output / f"samples_{task}.jsonl"), theirs, args.tolerance,
                             None if args.no_float64 else judge)
            ours = json.loads((args.hone_output / "results.json").read_text())["results"][task]
            metric = "acc_norm,none" if "acc_norm,none" in ours else "acc,none"
            report["hone"] = ours[metric]
            report["lm_eval"] = out["results"][f"hone_{task}"][metric]
            report["metric"] = metric.split(",")[0]
            reports[task] = report
            print(f"{task}: {report['documents']} documents, strings differ {report['strings_differ']}, "
                  f"max |Δ loglikelihood| {report['max_loglikelihood_difference']:.2e}, is_greedy differ "
                  f"{report['is_greedy_differ']}, metric differ {report['metric_differ']}; {report['metric']} hone "
                  f"{report['hone']:.6f}, lm-eval {report['lm_eval']:.6f}"
                  + (f"; {report['judged_in_float64']} documents over the tolerance judged in float64: Hone within it on "
                     f"{report['hone_within_tolerance_of_float64']} (Hone up to {report['largest_hone_float64_difference']:.2e} "
                     f"from float64, lm-eval up to {report['largest_lm_eval_float64_difference']:.2e})"
                     if report["judged_in_float64"] else "")
                  + (f"; first: {report['first_problem']}" if report["first_problem"] else ""), flush=True)
            if args.json:  # after every task, so an interrupted run keeps what it compared
                args.json.write_text(json.dumps(reports, indent=1) + "\n")
    bad = any(r["missing"] or r["strings_differ"] or r["is_greedy_differ"] or r["metric_differ"]
              or r["loglikelihood_differ"] for r in reports.values())
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
