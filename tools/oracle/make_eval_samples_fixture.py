#!/usr/bin/env python3
"""lm-evaluation-harness's own `--log_samples` files on two documents of a few tasks, for `hone eval`'s samples_<task>.jsonl.

    tools/oracle/.venv/bin/python tools/oracle/make_eval_samples_fixture.py

Runs lm-eval (HF backend, CPU, float32, batch size 1) on the tiny fixture model of make_eval_fixtures.py
(Tests/HoneKitTests/Fixtures/eval/tiny-llama) over the committed fixture data, and lets lm-eval's EvaluationTracker
write the per-document files exactly as `lm_eval --log_samples --output_path` does. They are copied, without the
date in the name and with the tasks' "hone_" prefix dropped, to Tests/HoneKitTests/Fixtures/eval/lm-eval-samples/
samples_<task>.jsonl. The Swift test checks that Hone's file has the same fields with the same JSON types, and the
same values where Hone can know them (doc_id, target, arguments, filter, metrics, prompt_hash, target_hash).
"""
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_eval_fixtures as fx  # noqa: E402  (sets the offline environment, imports lm_eval)

import lm_eval  # noqa: E402
import torch  # noqa: E402
from lm_eval.loggers import EvaluationTracker  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

TASKS = ["arc_easy", "hellaswag", "truthfulqa_mc2", "mmlu_anatomy"]
LIMIT = 2


def main():
    torch.set_num_threads(2)
    out_dir = fx.OUT / "lm-eval-samples"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # The HF-schema records of the committed subsets; written to a scratch copy so the fixtures stay untouched.
        fx.DATA = tmp / "data"
        hf = fx.write_subsets()
        (tmp / "yamls").mkdir()
        fx.write_yamls(hf, tmp / "yamls")
        tracker = EvaluationTracker(output_path=str(tmp / "out"))
        results = lm_eval.simple_evaluate(
            model="hf", model_args=f"pretrained={fx.OUT / 'tiny-llama'},dtype=float32,device=cpu",
            tasks=[f"hone_{t}" for t in TASKS], num_fewshot=0, batch_size=1, limit=LIMIT, log_samples=True,
            task_manager=TaskManager(include_path=str(tmp / "yamls")), bootstrap_iters=0,
            evaluation_tracker=tracker)
        # What lm_eval's command line does after evaluating (the aggregated save also fixes the files' date id).
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for task in TASKS:
            tracker.save_results_samples(task_name=f"hone_{task}", samples=samples[f"hone_{task}"])
            written = next((tmp / "out").rglob(f"samples_hone_{task}_*.jsonl"))
            shutil.copy(written, out_dir / f"samples_{task}.jsonl")
    print("wrote", out_dir.relative_to(fx.REPO), f"(lm_eval {lm_eval.__version__})")


if __name__ == "__main__":
    main()
