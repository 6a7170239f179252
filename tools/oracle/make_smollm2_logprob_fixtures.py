#!/usr/bin/env python3
"""transformers' log-probs on the shipped SmolLM2-135M-Instruct Q4_1 GGUF, dequantized
(Tests/HoneKitTests/Fixtures/smollm2/transformers-logprobs.json).

    tools/oracle/.venv/bin/python tools/oracle/make_smollm2_logprob_fixtures.py models/SmolLM2-135M-Instruct.Q4_1.gguf

transformers loads the GGUF itself (gguf-py dequantizes every tensor to f32 and undoes llama.cpp's Q/K row order), so
this is an independent reading of the file's weights and an independent forward pass. For a few texts it records the
token ids (transformers' tokenizer built from the same GGUF) and log p(token_i | tokens_<i) in f32.
"""
import hashlib
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "HoneKitTests" / "Fixtures" / "smollm2" / "transformers-logprobs.json"
TEXTS = ["The capital of France is Paris. It is known for the Eiffel Tower and its museums.",
         "<|im_start|>user\nWhat do bees make?<|im_end|>\n<|im_start|>assistant\nBees make honey and wax.<|im_end|>",
         "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5"]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = Path(sys.argv[1]).resolve()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, torch_dtype=torch.float32)
    model.eval()
    rows = []
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        values = [None] + [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]
        rows.append({"text": text, "tokens": ids, "logprobs": values})
    fixture = {"model": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
               "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "rows": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
