#!/usr/bin/env python3
"""Greedy chat answers of llama.cpp on the shipped SmolLM2-135M-Instruct Q4_1 GGUF
(Tests/HoneKitTests/Fixtures/smollm2/greedy-chat.json).

    tools/oracle/.venv/bin/python tools/oracle/make_smollm2_greedy_fixtures.py /path/to/llama.cpp/build \
        models/SmolLM2-135M-Instruct.Q4_1.gguf

For each question: the prompt transformers' apply_chat_template renders with the GGUF's own chat template
(tokenizer.chat_template, bos/eos texts from its vocabulary, add_generation_prompt), and the text llama.cpp's
llama-completion generates from it greedily (--temp 0, 48 tokens at most, whether it stopped at end of text).
Nothing is downloaded or built here; the llama.cpp build directory is an argument.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import gguf
from transformers.utils import chat_template_utils as ctu

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "HoneKitTests" / "Fixtures" / "smollm2" / "greedy-chat.json"
QUESTIONS = ["What is the capital of Japan?", "Give me three tips for staying healthy.", "What do bees make?",
             "Write a haiku about the sea.", "Explain what a CPU does in one sentence.",
             "Translate 'good morning' into French."]
MAX_TOKENS = 48
END = " [end of text]"


def field(reader, key):
    value = reader.fields[key]
    return value.parts[value.data[0]]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build, model = Path(sys.argv[1]) / "bin", Path(sys.argv[2])
    reader = gguf.GGUFReader(str(model))
    template = bytes(field(reader, "tokenizer.chat_template")).decode()
    tokens = reader.fields["tokenizer.ggml.tokens"]
    token = lambda i: bytes(tokens.parts[tokens.data[i]]).decode()
    bos = token(int(field(reader, "tokenizer.ggml.bos_token_id")[0]))
    eos = token(int(field(reader, "tokenizer.ggml.eos_token_id")[0]))
    cases = []
    for question in QUESTIONS:
        rendered, _ = ctu.render_jinja_template(conversations=[[{"role": "user", "content": question}]],
                                                chat_template=template, add_generation_prompt=True,
                                                bos_token=bos, eos_token=eos)
        prompt = rendered[0]
        run = subprocess.run([str(build / "llama-completion"), "-m", str(model), "-p", prompt, "-n", str(MAX_TOKENS),
                              "--temp", "0", "-t", "2", "-no-cnv", "--no-display-prompt"],
                             capture_output=True, check=True)
        text = run.stdout.decode()
        # llama-completion ends its output with newlines of its own, after " [end of text]" when the model stopped.
        text = text[:-2] if text.endswith("\n\n") else text
        stopped = text.rstrip("\n").endswith(END)
        if stopped:
            text = text.rstrip("\n")[: -len(END)]
        cases.append({"question": question, "prompt": prompt, "completion": text, "stopped": stopped})
    fixture = {"model": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
               "sha256": hashlib.sha256(model.read_bytes()).hexdigest(), "max_new_tokens": MAX_TOKENS, "cases": cases}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
