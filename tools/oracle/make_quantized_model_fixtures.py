#!/usr/bin/env python3
"""Quantized model fixtures: llama-gqa as Q8_0 and Q4_0 GGUFs, with golden log-probs.

    tools/oracle/.venv/bin/python tools/oracle/make_quantized_model_fixtures.py

Reads Tests/HoneKitTests/Fixtures/gguf/llama-gqa-f32.gguf (made by make_fixtures.py), quantizes every 2-D weight
with the gguf package's reference quantizer (ggml's exact blocks), and writes gguf/llama-gqa-q8_0.gguf and
gguf/llama-gqa-q4_0.gguf. The goldens logprobs/gguf-llama-gqa-<type>.json are transformers' log-probs on the
DEQUANTIZED weights, so what remains between them and Hone is Hone's 8-bit quantization of activations in the
integer kernels. "logprobs_f32_original" gives the unquantized model's, for the end-to-end error.
"""
import json
from pathlib import Path

import gguf
import numpy as np
import torch

import oracle_common as oc
from make_fixtures import load

FIXTURES = oc.FIXTURES
SOURCE = FIXTURES / "gguf" / "llama-gqa-f32.gguf"


def unpermute(w, n_head):
    """Inverse of llama.cpp's converter permutation (GGML adjacent-pair rope rows → HF rotate-half rows)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    reader = gguf.GGUFReader(SOURCE)
    n_head = int(reader.fields["llama.attention.head_count"].parts[-1][0])
    n_head_kv = int(reader.fields["llama.attention.head_count_kv"].parts[-1][0])
    golden_f32 = json.loads((FIXTURES / "logprobs" / "llama-gqa.json").read_text())
    rows = [r["tokens"] for r in golden_f32["rows"]]
    for qtype, label in [(gguf.GGMLQuantizationType.Q8_0, "q8_0"), (gguf.GGMLQuantizationType.Q4_0, "q4_0")]:
        out = FIXTURES / "gguf" / f"llama-gqa-{label}.gguf"
        writer = gguf.GGUFWriter(str(out) + ".tmp", "llama")
        for field in reader.fields.values():
            if field.name.startswith("GGUF.") or field.name == "general.architecture":
                continue
            value_type = field.types[0]
            if value_type == gguf.GGUFValueType.ARRAY:
                continue  # the source has no array metadata (no tokenizer)
            value = field.parts[field.data[0]]
            if value_type == gguf.GGUFValueType.STRING:
                writer.add_key_value(field.name, bytes(value).decode(), value_type)
            else:
                writer.add_key_value(field.name, value.tolist()[0], value_type)
        dequantized = {}
        for tensor in reader.tensors:
            data = np.array(tensor.data, dtype=np.float32).reshape([int(d) for d in reversed(tensor.shape)])
            if data.ndim == 2:
                blocks = gguf.quants.quantize(data, qtype)
                writer.add_tensor(tensor.name, blocks, raw_shape=blocks.shape, raw_dtype=qtype)
                dequantized[tensor.name] = gguf.quants.dequantize(blocks, qtype).reshape(data.shape)
            else:
                writer.add_tensor(tensor.name, data)
                dequantized[tensor.name] = data
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        Path(str(out) + ".tmp").replace(out)

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
                  "note": "transformers in f32 on the dequantized GGUF weights; logprobs_f32_original: the f32 model",
                  "rows": scored}
        path = FIXTURES / "logprobs" / f"gguf-llama-gqa-{label}.json"
        path.write_text(json.dumps(golden, indent=1) + "\n")
        worst = max(abs(a - b) for r in scored for a, b in zip(r["logprobs"][1:], r["logprobs_f32_original"][1:]))
        print(f"{out.name}: {out.stat().st_size} bytes; max |quantized − f32| log-prob {worst:.4f}")


if __name__ == "__main__":
    main()
