#!/usr/bin/env python3
"""Build Hone's `eval hh` pipeline fixtures with PRO's own steps (eval_hh/infer_func_now.py, metrics.py) on
transformers' tokenizer of models/hone-tiny.

Output: Tests/HoneKitTests/Fixtures/hh_eval/pipeline.json, per item (the first records of both HH-RLHF test files):
  prefix            PRO's turns ("<|prompter|>…", "<|assistant|>…", …, "<|assistant|>")
  reference         the chosen reply, stripped
  prompts[max]      for max in (384, 48): the generation input ids and the truncated prompt text (two encode/decode
                    round trips with left truncation, as PRO's pipeline does)
  continuation      a made-up generated text; answer = PRO's cleanup of decode(prompt ids + its ids)
  reward_ids[max]   for max in (1024, 40): the reward-model input (turns + answer, each + EOS text, left-truncated)

Rerun:  tools/oracle/.venv/bin/python tools/oracle/make_hh_eval_fixtures.py
"""

import gzip
import json
import re

from transformers import AutoTokenizer

from oracle_common import REPO, FIXTURES

SHARED = REPO.parent / "shared" / "data" / "hh_rlhf"
PER_FILE = 6
CONTINUATIONS = [
    " Sure, I can help with that.\n\nHuman: thanks",
    " I think so. assistant: no",
    "   Plain answer with trailing space   ",
    " Human: starts with a stop",
    " Two lines\nof text. Assistant: and more",
    " ok",
]


def turns(dialogue: str):
    parts = re.split(r"(\n\nHuman:|\n\nAssistant:)", dialogue)
    result = []
    for marker, text in zip(parts[1::2], parts[2::2]):
        tag = "<|prompter|>" if "Human" in marker else "<|assistant|>"
        result.append((tag, text.strip()))
    return result


def prefix_and_reference(record):
    chosen, rejected = record["chosen"], record["rejected"]
    common = 0
    while common < min(len(chosen), len(rejected)) and chosen[common] == rejected[common]:
        common += 1
    end = chosen.rfind("\n\nAssistant:", 0, common)
    if end < 0 or end + len("\n\nAssistant:") > common:
        return None
    cut = end + len("\n\nAssistant:")
    prompt_turns = turns(chosen[:cut])
    prefix = [tag + text for tag, text in prompt_turns[:-1]] + ["<|assistant|>"]
    return prefix, chosen[cut:].strip()


def pro_prompt(tokenizer, prompt: str, max_length: int):
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    ids = tokenizer([prompt], max_length=max_length, truncation=True, add_special_tokens=True)["input_ids"]
    text = tokenizer.batch_decode(ids, skip_special_tokens=True)
    ids = tokenizer(text, max_length=max_length, truncation=True, add_special_tokens=True)["input_ids"]
    text = tokenizer.batch_decode(ids, skip_special_tokens=True)
    return ids[0], text[0]


def pro_answer(text: str, truncated_prompt: str) -> str:
    text = text.replace(truncated_prompt.rstrip(), "").strip()
    for stop in ["Human:", "human:", "Assistant:", "assistant:"]:
        stop_ix = text.find(stop)
        if stop_ix >= 0:
            text = text[:stop_ix].rstrip()
    return text


def reward_ids(tokenizer, prefix, answer, max_length):
    tokenizer.truncation_side = "left"
    temp = prefix[:-1] + [prefix[-1] + answer]
    text = "".join(t + tokenizer.eos_token for t in temp)
    return tokenizer([text], truncation=True, max_length=max_length)["input_ids"][0]


def main() -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(REPO / "models" / "hone-tiny"))
    items = []
    for name in ["harmless-base", "helpful-base"]:
        taken = 0
        with gzip.open(SHARED / name / "test.jsonl.gz", "rt", encoding="utf-8") as f:
            for line_number, line in enumerate(f, start=1):
                found = prefix_and_reference(json.loads(line))
                if found is None:
                    continue
                prefix, reference = found
                prompt = "".join(prefix).replace("<|prompter|>", "\n\nHuman: ").replace("<|assistant|>", "\n\nAssistant: ").rstrip()
                prompts = {}
                for max_length in (384, 48):
                    ids, text = pro_prompt(tokenizer, prompt, max_length)
                    prompts[str(max_length)] = {"ids": ids, "text": text}
                continuation = CONTINUATIONS[len(items) % len(CONTINUATIONS)]
                ids = prompts["384"]["ids"]
                decoded = tokenizer.decode(ids + tokenizer.encode(continuation, add_special_tokens=False), skip_special_tokens=True)
                answer = pro_answer(decoded, prompts["384"]["text"])
                items.append({"file": name, "line": line_number, "prefix": prefix, "reference": reference,
                              "prompts": prompts, "continuation": continuation, "answer": answer,
                              "reward_ids": {str(m): reward_ids(tokenizer, prefix, answer, m) for m in (1024, 40)}})
                taken += 1
                if taken == PER_FILE:
                    break
    out = FIXTURES / "hh_eval"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pipeline.json", "w", encoding="utf-8") as f:
        json.dump({"tokenizer": "models/hone-tiny", "items": items}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(len(items), "items;", sum(1 for i in items if len(i["prompts"]["48"]["ids"]) == 48), "truncated at 48")


if __name__ == "__main__":
    main()
