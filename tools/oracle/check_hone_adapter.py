"""Reads an adapter that Hone wrote with PEFT and records PEFT's per-token log-probs on the rows Hone trained on.

    tools/oracle/.venv/bin/python tools/oracle/check_hone_adapter.py

Input (committed): Tests/HoneKitTests/Fixtures/lora/hone-written/{adapter_config.json, adapter_model.safetensors,
rows.jsonl}, written by `hone train sft --base-model Tests/HoneKitTests/Fixtures/models/llama-gqa --data-path rows.jsonl
... --lora-r 4 --lora-alpha 8 --lora-target-modules '[q,k,v,o,gate,up,down]'` (see the Swift test). Output:
peft_logprobs.json, per row [null, lp_1, ...] from PeftModel.from_pretrained on the f32 fixture model. The Swift test
requires Hone's log-probs with the same adapter to match, so the test fails if PEFT could not read Hone's files
the way Hone means them (key names, shapes, scaling, row order).
"""
import json
from pathlib import Path

import peft
import torch
from transformers import AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "Tests/HoneKitTests/Fixtures/lora/hone-written"


def main() -> None:
    torch.set_num_threads(1)
    base = AutoModelForCausalLM.from_pretrained(ROOT / "Tests/HoneKitTests/Fixtures/models/llama-gqa",
                                                dtype=torch.float32, attn_implementation="eager")
    model = peft.PeftModel.from_pretrained(base, FIXTURE).eval()
    loaded = {n for n, _ in model.named_parameters() if "lora_" in n}
    assert len(loaded) == 2 * 7 * base.config.num_hidden_layers, len(loaded)
    rows = [json.loads(line)["input_ids"] for line in open(FIXTURE / "rows.jsonl")]
    result = []
    with torch.no_grad():
        for ids in rows:
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            logprobs = torch.log_softmax(logits.double(), dim=-1)
            result.append([None] + [float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))])
    (FIXTURE / "peft_logprobs.json").write_text(json.dumps({"peft": peft.__version__, "rows": result}, indent=1) + "\n")
    print("wrote", FIXTURE / "peft_logprobs.json")


if __name__ == "__main__":
    main()
