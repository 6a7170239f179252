#!/usr/bin/env python3
"""Quantized model fixtures for the 32-value types: llama-gqa as Q4_1, Q5_0, Q5_1 and IQ4_NL GGUFs, with golden
log-probs.

    /work/main/tools/oracle/.venv/bin/python tools/oracle/make_quantized_model_fixtures32.py /path/to/llama.cpp/build

As make_quantized_model_fixtures.py (whose helpers it uses), except that llama.cpp's own llama-quantize --pure writes
the files (gguf-py has no IQ4_NL quantizer), from Tests/HoneKitTests/Fixtures/gguf/llama-gqa-f32.gguf. The goldens
logprobs/gguf-llama-gqa-<type>.json are transformers' log-probs on the weights gguf-py dequantizes from those files,
so what remains between them and Hone is Hone's 8-bit quantization of activations in the integer kernels.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np
import torch

import oracle_common as oc
from make_fixtures import load
from make_quantized_model_fixtures import unpermute

FIXTURES = oc.FIXTURES
SOURCE = FIXTURES / "gguf" / "llama-gqa-f32.gguf"
TYPES = {"q4_1": "Q4_1", "q5_0": "Q5_0", "q5_1": "Q5_1", "iq4_nl": "IQ4_NL"}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    quantize = Path(sys.argv[1]) / "bin" / "llama-quantize"
    reader = gguf.GGUFReader(SOURCE)
    n_head = int(reader.fields["llama.attention.head_count"].parts[-1][0])
    n_head_kv = int(reader.fields["llama.attention.head_count_kv"].parts[-1][0])
    golden_f32 = json.loads((FIXTURES / "logprobs" / "llama-gqa.json").read_text())
    rows = [r["tokens"] for r in golden_f32["rows"]]
    for label, ftype in TYPES.items():
        out = FIXTURES / "gguf" / f"llama-gqa-{label}.gguf"
        with tempfile.TemporaryDirectory() as work:
            target = Path(work) / "out.gguf"
            run = subprocess.run([str(quantize), "--pure", str(SOURCE), str(target), ftype, "1"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"llama-quantize {ftype} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
            out.write_bytes(target.read_bytes())
        quantized = gguf.GGUFReader(out)
        dequantized = {}
        for tensor in quantized.tensors:
            shape = [int(d) for d in reversed(tensor.shape)]
            values = gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)
            dequantized[tensor.name] = np.asarray(values, dtype=np.float32).reshape(shape)
            if len(shape) == 2:
                assert tensor.tensor_type.name == ftype, (tensor.name, tensor.tensor_type.name)

        # transformers on the dequantized weights (GGUF names and Q/K layout mapped back to HF).
        model = load(FIXTURES / "models" / "llama-gqa")
        names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                 "output.weight": "lm_head.weight"}
        parts = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                 "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                 "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                 "ffn_down": "mlp.down_proj"}
        state = {}
        for name, value in dequantized.items():
            if name in names:
                hf = names[name]
            else:
                _, layer, part, _ = name.split(".")
                hf = f"model.layers.{layer}.{parts[part]}.weight"
                if part == "attn_q":
                    value = unpermute(value, n_head)
                elif part == "attn_k":
                    value = unpermute(value, n_head_kv)
            state[hf] = torch.from_numpy(np.ascontiguousarray(value))
        missing = model.load_state_dict(state, strict=False)
        assert not missing.missing_keys, missing.missing_keys
        scored = [oc.score_row(model, r) for r in rows]
        for row, original in zip(scored, golden_f32["rows"]):
            row["logprobs_f32_original"] = original["logprobs"]
        golden = {"model": f"gguf/llama-gqa-{label}.gguf", "dtype": label, **oc.versions(),
                  "note": "llama-quantize --pure; transformers in f32 on the weights gguf-py dequantizes; "
                          "logprobs_f32_original: the f32 model",
                  "rows": scored}
        path = FIXTURES / "logprobs" / f"gguf-llama-gqa-{label}.json"
        path.write_text(json.dumps(golden, indent=1) + "\n")
        worst = max(abs(a - b) for r in scored for a, b in zip(r["logprobs"][1:], r["logprobs_f32_original"][1:]))
        print(f"{out.name}: {out.stat().st_size} bytes; max |quantized - f32| log-prob {worst:.4f}")


if __name__ == "__main__":
    main()
