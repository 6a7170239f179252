#!/usr/bin/env python3
"""lm-evaluation-harness's own multiple-choice results on small, fixed subsets of every task, for `hone eval`.

    tools/oracle/.venv/bin/python tools/oracle/make_eval_fixtures.py [--smollm2 models/SmolLM2-135M-Instruct.Q4_1.gguf]

Writes under Tests/HoneKitTests/Fixtures/eval/:
  data/        the subsets, in the layouts of ../shared/data/mc_eval (what `hone eval --data` reads):
               arc/ARC-{Easy,Challenge}-test.jsonl, piqa/valid.jsonl + valid-labels.lst, hellaswag/hellaswag_val.jsonl
               (original schema, rebuilt from the text rendering: ctx_b = the context's last two words, so lm-eval's
               capitalize() matters; one extra record carries WikiHow markers), mmlu/{test,dev}/*.csv (all 57
               subjects: 1 test row, 5 dev rows), truthfulqa/mc_task.json
  data-hf/     the same records as Hugging Face `datasets` exports them, in the export layouts (write_hf_exports);
               `--data-only` writes data/ and data-hf/ without running lm-eval
  tiny-llama/  a random-weight Llama (hidden 16, 2 layers, tied embeddings) with the spm-bpe fixture tokenizer
               (Llama-2 SentencePiece layout, BOS added), f32 safetensors
  smollm2-chat.json, tiny-llama-chat.json (+ tiny-llama-chat-template.jinja)   the same with lm-eval's
               --apply_chat_template, --fewshot_as_multiturn, --system_instruction (`--chat-only` writes these alone)
  tiny-llama.json, smollm2.json   per run (tasks, num_fewshot): per document the context and continuation strings
               lm-eval built, each choice's log-likelihood and is_greedy, the document's metrics; and results
               (results[task]["acc,none"], stderrs, groups) as lm-eval aggregates them.

lm-eval runs unmodified (HF backend, CPU, float32, batch size 1): the task YAMLs written to a temporary folder
`include` the installed official ones and only point the dataset at local JSON files (there is no network here);
prompts, few-shot sampling (seed 1234) and metrics stay lm-eval's. Two settings are chosen so both sides agree on
files that lack a training split: the evaluation split is `test_split`, and `fewshot_split` is that same split, so
lm-eval draws n + 1 examples and removes the document itself, which `hone eval` does when no training file exists.

--smollm2: transformers dequantizes the GGUF to f32 and saves it as an HF directory (models/SmolLM2-135M-Instruct-f32,
git-ignored); lm-eval then runs on that directory, and the Swift test runs Hone on the same directory.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402

import lm_eval  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

REPO = oc.REPO
SHARED = REPO.parent / "shared" / "data" / "mc_eval"
if not SHARED.exists():
    SHARED = Path("/work/shared/data/mc_eval")
OUT = oc.FIXTURES / "eval"
DATA = OUT / "data"
DATA_HF = OUT / "data-hf"
TASKS_DIR = Path(lm_eval.__file__).resolve().parent / "tasks"

MMLU_GROUPS = ["stem", "other", "social_sciences", "humanities"]


# ---------------------------------------------------------------------------
# Subsets (committed; Hone reads these files)
# ---------------------------------------------------------------------------

def write_subsets() -> dict:
    """Writes the fixture data in mc_eval's layouts; returns HF-schema records per task for lm-eval."""
    hf = {}
    (DATA / "arc").mkdir(parents=True, exist_ok=True)
    for name, file in [("arc_easy", "ARC-Easy-test.jsonl"), ("arc_challenge", "ARC-Challenge-test.jsonl")]:
        lines = (SHARED / "arc" / file).read_text().splitlines()
        chosen = lines[:6]
        # a question with numeric labels ("1"–"4") too
        numeric = next(line for line in lines if json.loads(line)["choices"]["label"][0] == "1")
        chosen.append(numeric)
        (DATA / "arc" / file).write_text("\n".join(chosen) + "\n")
        hf[name] = [json.loads(line) for line in chosen]

    (DATA / "piqa").mkdir(parents=True, exist_ok=True)
    goals = (SHARED / "piqa" / "valid.jsonl").read_text().splitlines()[:6]
    labels = (SHARED / "piqa" / "valid-labels.lst").read_text().splitlines()[:6]
    (DATA / "piqa" / "valid.jsonl").write_text("\n".join(goals) + "\n")
    (DATA / "piqa" / "valid-labels.lst").write_text("\n".join(labels) + "\n")
    hf["piqa"] = [dict(json.loads(g), label=int(l)) for g, l in zip(goals, labels)]

    (DATA / "hellaswag").mkdir(parents=True, exist_ok=True)
    with gzip.open(SHARED / "hellaswag" / "hellaswag_val_full.txt.gz", "rt") as f:
        text = [next(f).rstrip("\n") for _ in range(6 * 5)]
    records = []
    for i in range(5):
        head, gold, endings = text[6 * i], text[6 * i + 1], text[6 * i + 2: 6 * i + 6]
        activity, ctx = head.split(": ", 1)
        words = ctx.split(" ")
        records.append({"ind": i, "activity_label": activity, "ctx_a": " ".join(words[:-2]),
                        "ctx_b": " ".join(words[-2:]).lower(), "endings": endings, "label": gold})
    records.append({"ind": 5, "activity_label": "Personal Care and Style",
                    "ctx_a": "[header] How to braid hair [title] Brush your hair. [step] Start  with dry hair.",
                    "ctx_b": "then SECTION it", "endings": ["into three parts [substeps] Hold them.",
                                                           " and  tie it.", "[title] Repeat.", "with a comb."],
                    "label": "0"})
    (DATA / "hellaswag" / "hellaswag_val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    hf["hellaswag"] = records

    (DATA / "truthfulqa").mkdir(parents=True, exist_ok=True)
    mc = json.loads((SHARED / "truthfulqa" / "mc_task.json").read_text())[:5]
    (DATA / "truthfulqa" / "mc_task.json").write_text(json.dumps(mc, indent=1, ensure_ascii=False) + "\n")
    hf["truthfulqa"] = [{"question": r["question"],
                         "mc1_targets": {"choices": list(r["mc1_targets"]), "labels": list(r["mc1_targets"].values())},
                         "mc2_targets": {"choices": list(r["mc2_targets"]), "labels": list(r["mc2_targets"].values())}}
                        for r in mc]

    write_mmlu(SHARED / "mmlu", DATA / "mmlu", test_rows=1, hf=hf)
    return hf


def write_mmlu(source: Path, folder: Path, test_rows: int, hf: dict) -> None:
    """The first test_rows test questions and the 5 dev questions of every subject, as MMLU's CSVs under folder;
    their HF-schema records go into hf["mmlu_<subject>"]["test" | "dev"]."""
    for split, rows in [("test", test_rows), ("dev", 5)]:
        (folder / split).mkdir(parents=True, exist_ok=True)
        for path in sorted((source / split).glob(f"*_{split}.csv")):
            subject = path.name[: -len(f"_{split}.csv")]
            with open(path, newline="", encoding="utf-8") as f:
                chosen = list(csv.reader(f))[:rows]
            with open(folder / split / path.name, "w", newline="", encoding="utf-8") as f:
                csv.writer(f, lineterminator="\r\n").writerows(chosen)
            hf.setdefault(f"mmlu_{subject}", {})[split] = [
                {"question": r[0], "subject": subject, "choices": r[1:5], "answer": "ABCD".index(r[5])} for r in chosen]


def write_hf_exports(hf: dict) -> None:
    """The same records as Hugging Face `datasets` exports them (`Dataset.to_json`: JSON Lines, "\\/" escapes), under
    DATA_HF in the export layouts `hone eval --data` also reads: arc/ARC-*/test.jsonl, piqa/validation.jsonl,
    hellaswag/validation.jsonl, truthfulqa/validation.jsonl, and MMLU three ways: STEM subjects as one file per
    subject config (mmlu/<subject>/{test,dev}.jsonl), humanities as mmlu/{test,dev}/<subject>_{split}.jsonl, the
    rest in the "all" configuration's mmlu/{test,dev}.jsonl (cais/mmlu's features: answer a ClassLabel A-D)."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    shutil.rmtree(DATA_HF, ignore_errors=True)

    def export(records, path, features=None):
        path.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_list(records, features=features).to_json(str(path))

    export(hf["arc_easy"], DATA_HF / "arc" / "ARC-Easy" / "test.jsonl")
    export(hf["arc_challenge"], DATA_HF / "arc" / "ARC-Challenge" / "test.jsonl")
    export(hf["piqa"], DATA_HF / "piqa" / "validation.jsonl")
    export(hf["hellaswag"], DATA_HF / "hellaswag" / "validation.jsonl")
    export(hf["truthfulqa"], DATA_HF / "truthfulqa" / "validation.jsonl")
    mmlu = Features({"question": Value("string"), "subject": Value("string"), "choices": Sequence(Value("string")),
                     "answer": ClassLabel(names=["A", "B", "C", "D"])})
    groups = {}
    for official in (TASKS_DIR / "mmlu" / "default").glob("mmlu_*.yaml"):
        tag = next((line.split('"')[3] for line in official.read_text().splitlines() if line.startswith('"tag"')), None)
        if tag:
            groups[official.stem[len("mmlu_"):]] = tag[len("mmlu_"):-len("_tasks")]
    for split in ["test", "dev"]:
        rest = []
        for key in sorted(k for k in hf if k.startswith("mmlu_")):
            subject = key[len("mmlu_"):]
            if groups[subject] == "stem":
                export(hf[key][split], DATA_HF / "mmlu" / subject / f"{split}.jsonl", mmlu)
            elif groups[subject] == "humanities":
                export(hf[key][split], DATA_HF / "mmlu" / split / f"{subject}_{split}.jsonl", mmlu)
            else:
                rest += hf[key][split]
        export(rest, DATA_HF / "mmlu" / f"{split}.jsonl", mmlu)


def write_subsets_for_bench(n: int, subjects=("high_school_psychology",)) -> dict:
    """HF-schema records of the first n documents of every task in SHARED and of the given MMLU subjects (for
    tools/bench/eval.py; nothing written)."""
    hf = {}
    for name, file in [("arc_easy", "ARC-Easy-test.jsonl"), ("arc_challenge", "ARC-Challenge-test.jsonl")]:
        hf[name] = [json.loads(line) for line in (SHARED / "arc" / file).read_text().splitlines()[:n]]
    goals = (SHARED / "piqa" / "valid.jsonl").read_text().splitlines()[:n]
    labels = (SHARED / "piqa" / "valid-labels.lst").read_text().splitlines()[:n]
    hf["piqa"] = [dict(json.loads(g), label=int(l)) for g, l in zip(goals, labels)]
    with gzip.open(SHARED / "hellaswag" / "hellaswag_val_full.txt.gz", "rt") as f:
        text = [next(f).rstrip("\n") for _ in range(6 * n)]
    hf["hellaswag"] = []
    for i in range(n):
        activity, ctx = text[6 * i].split(": ", 1)
        hf["hellaswag"].append({"activity_label": activity, "ctx_a": ctx, "ctx_b": "", "endings": text[6 * i + 2: 6 * i + 6],
                                "label": text[6 * i + 1]})
    mc = json.loads((SHARED / "truthfulqa" / "mc_task.json").read_text())[:n]
    hf["truthfulqa"] = [{"question": r["question"],
                         "mc1_targets": {"choices": list(r["mc1_targets"]), "labels": list(r["mc1_targets"].values())},
                         "mc2_targets": {"choices": list(r["mc2_targets"]), "labels": list(r["mc2_targets"].values())}}
                        for r in mc]
    for subject in subjects:
        for split, rows in [("test", n), ("dev", 5)]:
            with open(SHARED / "mmlu" / split / f"{subject}_{split}.csv", newline="", encoding="utf-8") as f:
                chosen = list(csv.reader(f))[:rows]
            hf.setdefault(f"mmlu_{subject}", {})[split] = [
                {"question": r[0], "subject": subject, "choices": r[1:5], "answer": "ABCD".index(r[5])} for r in chosen]
    return hf


# ---------------------------------------------------------------------------
# lm-eval task YAMLs over local files
# ---------------------------------------------------------------------------

def write_yamls(hf: dict, folder: Path) -> None:
    def data_file(name, records):
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return path

    def task_yaml(task, official, files, extra=""):
        data_files = "\n".join(f"    {split}: {path}" for split, path in files.items())
        (folder / f"hone_{task}.yaml").write_text(
            f"include: {official}\ntask: hone_{task}\ndataset_path: json\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files:\n{data_files}\n"
            f"training_split: null\nvalidation_split: null\ntest_split: test\n{extra}")

    for task, official in [("arc_easy", "arc/arc_easy.yaml"), ("arc_challenge", "arc/arc_challenge.yaml"),
                           ("piqa", "piqa/piqa.yaml"), ("hellaswag", "hellaswag/hellaswag.yaml")]:
        if task in hf:
            task_yaml(task, TASKS_DIR / official, {"test": data_file(task, hf[task])}, "fewshot_split: test\n")
    for task in ["truthfulqa_mc1", "truthfulqa_mc2"] if "truthfulqa" in hf else []:
        task_yaml(task, TASKS_DIR / "truthfulqa" / f"{task}.yaml", {"test": data_file("truthfulqa", hf["truthfulqa"])},
                  "fewshot_split: test\n")
    groups = {g: [] for g in MMLU_GROUPS}
    for key, splits in hf.items():
        if not key.startswith("mmlu_"):
            continue
        official = TASKS_DIR / "mmlu" / "default" / f"{key}.yaml"
        group = next(line.split('"')[3] for line in official.read_text().splitlines() if line.startswith('"tag"'))
        groups[group[len("mmlu_"):-len("_tasks")]].append(f"hone_{key}")
        task_yaml(key, official, {"test": data_file(key + "_test", splits["test"]), "dev": data_file(key + "_dev", splits["dev"])},
                  "fewshot_split: dev\n")
    groups = {g: m for g, m in groups.items() if m}
    aggregate = "aggregate_metric_list:\n  - metric: acc\n    weight_by_size: true\n"
    for group, members in groups.items():
        (folder / f"hone_mmlu_{group}.yaml").write_text(
            f"group: hone_mmlu_{group}\ntask:\n" + "".join(f"  - {m}\n" for m in sorted(members)) + aggregate)
    (folder / "hone_mmlu.yaml").write_text(
        "group: hone_mmlu\ntask:\n" + "".join(f"  - hone_mmlu_{g}\n" for g in groups) + aggregate)


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------

def make_tiny_model() -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM
    folder = OUT / "tiny-llama"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = oc.FIXTURES / "tokenizers" / "spm-bpe"
    for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(tokenizer_dir / name, folder / name)
    config = LlamaConfig(vocab_size=1000, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=4096,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, rms_norm_eps=1e-5)
    model = LlamaForCausalLM(config)
    oc.randomize_(model, seed=14)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def make_tiny_adapter(model_dir: Path) -> Path:
    """A PEFT LoRA adapter with random (non-zero) A and B on q, v and down projections."""
    import peft
    from transformers import LlamaForCausalLM
    folder = OUT / "tiny-llama-adapter"
    base = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj", "down_proj"])
    model = peft.get_peft_model(base, config)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    model.save_pretrained(folder)
    (folder / "README.md").unlink(missing_ok=True)  # PEFT's generated model card
    return folder


def make_smollm2(gguf: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder = REPO / "models" / "SmolLM2-135M-Instruct-f32"
    if (folder / "model.safetensors").exists():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers will not save a model loaded from GGUF; the same f32 weights go into a plain model.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------
# Running lm-eval
# ---------------------------------------------------------------------------

def run(model_dir: Path, tasks: list[str], num_fewshot: int, task_manager, limit=None, adapter=None,
        apply_chat_template=False, fewshot_as_multiturn=False, system_instruction=None) -> dict:
    model_args = f"pretrained={model_dir},dtype=float32,device=cpu" + (f",peft={adapter}" if adapter else "")
    out = lm_eval.simple_evaluate(model="hf", model_args=model_args,
                                  tasks=[f"hone_{t}" for t in tasks], num_fewshot=num_fewshot, batch_size=1,
                                  limit=limit, log_samples=True, task_manager=task_manager, bootstrap_iters=100,
                                  apply_chat_template=apply_chat_template, fewshot_as_multiturn=fewshot_as_multiturn,
                                  system_instruction=system_instruction)
    strip = lambda name: name[len("hone_"):] if name.startswith("hone_") else name  # noqa: E731
    results = {}
    for name, values in out["results"].items():
        results[strip(name)] = {k: v for k, v in values.items() if "," in k}
    documents = {}
    for name, samples in out["samples"].items():
        rows = []
        for s in sorted(samples, key=lambda s: s["doc_id"]):
            rows.append({
                "doc_id": s["doc_id"],
                "target": s["target"],
                "context": s["arguments"][0][0],
                "continuations": [a[1] for a in s["arguments"]],
                "loglikelihoods": [float(r[0][0]) for r in s["resps"]],
                "is_greedy": [bool(r[0][1]) for r in s["resps"]],
                "metrics": {m: float(s[m]) for m in ("acc", "acc_norm") if m in s},
            })
        documents[strip(name)] = rows
    result = {"tasks": tasks, "num_fewshot": num_fewshot, "limit": limit, "results": results, "documents": documents}
    if apply_chat_template or system_instruction:
        result.update(apply_chat_template=apply_chat_template, fewshot_as_multiturn=fewshot_as_multiturn,
                      system_instruction=system_instruction)
    return result


TINY_CHAT_TEMPLATE = OUT / "tiny-llama-chat-template.jinja"


def write_tiny_chat_runs(tiny: Path, manager) -> None:
    """--apply_chat_template on the tiny model with a Mistral-style template (committed as TINY_CHAT_TEMPLATE) that
    writes BOS itself (lm-eval then adds none) and rejects the system role (lm-eval renders again without it: the
    MMLU description is dropped)."""
    TINY_CHAT_TEMPLATE.write_text(
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}{% if message['role'] == 'user' %}"
        "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}"
        "{% endfor %}")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny-llama-chat"
        shutil.copytree(tiny, model)
        shutil.copy(TINY_CHAT_TEMPLATE, model / "chat_template.jinja")
        runs = [run(model, ["arc_easy", "piqa", "mmlu_anatomy"], 0, manager, apply_chat_template=True),
                run(model, ["arc_easy", "mmlu_anatomy"], 2, manager, apply_chat_template=True, fewshot_as_multiturn=True)]
    write_json(OUT / "tiny-llama-chat.json", {"model": "tiny-llama + tiny-llama-chat-template.jinja",
                                              "versions": {**oc.versions(), "lm_eval": lm_eval.__version__}, "runs": runs})


def write_chat_runs(smol: Path, manager) -> None:
    """lm-eval's instruct formatting on SmolLM2 (its own chat template): 0-shot, few-shot as turns and as one
    message, with a system instruction, and a system instruction without a template."""
    instruction = "Answer with the letter or the words of the best choice."
    runs = [run(smol, ["arc_challenge", "piqa", "hellaswag", "truthfulqa_mc2"], 0, manager, limit=3, apply_chat_template=True),
            run(smol, ["mmlu_abstract_algebra", "mmlu_sociology"], 5, manager, limit=2, apply_chat_template=True,
                fewshot_as_multiturn=True),
            run(smol, ["arc_challenge", "mmlu_virology"], 2, manager, limit=2, apply_chat_template=True,
                fewshot_as_multiturn=False, system_instruction=instruction),
            run(smol, ["mmlu_sociology", "piqa"], 1, manager, limit=2, system_instruction=instruction)]
    write_json(OUT / "smollm2-chat.json", {"model": "models/SmolLM2-135M-Instruct-f32 (from the Q4_1 GGUF)",
                                           "versions": {**oc.versions(), "lm_eval": lm_eval.__version__}, "runs": runs})


def write_json(path: Path, obj) -> None:
    def clean(value):
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    path.write_text(json.dumps(clean(obj), indent=1, ensure_ascii=False, allow_nan=False) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smollm2", type=Path, help="the SmolLM2-135M-Instruct GGUF to dequantize")
    parser.add_argument("--only-adapter", action="store_true", help="skip the tiny model's base runs (adapter, SmolLM2)")
    parser.add_argument("--data-only", action="store_true", help="write data/ and data-hf/ only (no lm-eval run)")
    parser.add_argument("--chat-only", action="store_true",
                        help="with --smollm2: only smollm2-chat.json (lm-eval's --apply_chat_template, "
                             "--fewshot_as_multiturn and --system_instruction runs)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    hf = write_subsets()
    write_hf_exports(hf)
    if args.data_only:
        print("wrote", DATA.relative_to(REPO), "and", DATA_HF.relative_to(REPO))
        return
    basic = ["arc_easy", "arc_challenge", "piqa", "hellaswag", "truthfulqa_mc1", "truthfulqa_mc2"]
    with tempfile.TemporaryDirectory() as tmp:
        write_yamls(hf, Path(tmp))
        manager = TaskManager(include_path=tmp)
        if args.chat_only:
            write_tiny_chat_runs(OUT / "tiny-llama", manager)
            if args.smollm2:
                write_chat_runs(make_smollm2(args.smollm2.resolve()), manager)
            return
        tiny = OUT / "tiny-llama" if args.only_adapter else make_tiny_model()
        runs = [] if args.only_adapter else [run(tiny, basic + ["mmlu"], 0, manager), run(tiny, ["arc_challenge", "hellaswag", "piqa"], 3, manager),
                run(tiny, ["mmlu"], 5, manager)]
        if not args.only_adapter:
            write_json(OUT / "tiny-llama.json", {"model": "tiny-llama", "versions": {**oc.versions(), "lm_eval": lm_eval.__version__},
                                                    "runs": runs})
        write_tiny_chat_runs(tiny, manager)
        adapter = make_tiny_adapter(tiny)
        runs = [run(tiny, ["arc_easy", "truthfulqa_mc2", "mmlu_stem"], 0, manager, adapter=adapter)]
        write_json(OUT / "tiny-llama-adapter.json", {"model": "tiny-llama + tiny-llama-adapter",
                                                     "versions": {**oc.versions(), "lm_eval": lm_eval.__version__}, "runs": runs})
        if args.smollm2:
            smol = make_smollm2(args.smollm2.resolve())
            runs = [run(smol, basic, 0, manager, limit=4), run(smol, ["arc_challenge"], 2, manager, limit=3),
                    run(smol, ["mmlu_abstract_algebra", "mmlu_world_religions", "mmlu_sociology", "mmlu_virology"], 5, manager)]
            write_json(OUT / "smollm2.json", {"model": "models/SmolLM2-135M-Instruct-f32 (from the Q4_1 GGUF)",
                                                 "versions": {**oc.versions(), "lm_eval": lm_eval.__version__}, "runs": runs})
            write_chat_runs(smol, manager)
    print("wrote", OUT.relative_to(REPO))


if __name__ == "__main__":
    main()
