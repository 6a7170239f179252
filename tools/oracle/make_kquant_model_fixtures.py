#!/usr/bin/env python3
"""Model fixtures for the K, IQ and TQ formats: a random Llama whose widths are multiples of 256.

    tools/oracle/.venv/bin/python tools/oracle/make_kquant_model_fixtures.py <llama.cpp build dir>

llama-gqa (hidden 64) cannot hold 256-value blocks, so this builds "llama-k256" (hidden 256, intermediate 256,
4 heads / 2 KV heads, 1 layer, vocab 256, untied, seeded random weights like every fixture), writes it as an F32
GGUF (converter layout), and makes
  * gguf/llama-k256-<type>.gguf for q2_k, q3_k, q5_k, iq4_xs: `llama-quantize --pure` (ggml's reference
    quantizers, no importance matrix: every 2-D weight of that type);
  * gguf/llama-k256-iq-mix.gguf: one weight of each codebook / ternary format (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
    IQ3_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0) from seeded random blocks with small finite scales (llama-quantize makes
    most of them only with an importance matrix; this checks loading and running, not quantization quality);
  * logprobs/gguf-llama-k256-<type>.json: transformers' log-probs on the weights gguf-py DEQUANTIZES from each
    file (plus the f32 model's as logprobs_f32_original), so Hone's reference product must match them to f32
    rounding and its integer kernels to the activation-quantization error.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as T  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from make_fixtures import write_gguf  # noqa: E402
from make_kquant_fixtures import random_blocks  # noqa: E402
from make_quantized_model_fixtures import unpermute  # noqa: E402

FIXTURES = oc.FIXTURES
NAME = "llama-k256"
LLAMA_TYPES = {"q2_k": "Q2_K", "q3_k": "Q3_K_S", "q5_k": "Q5_K_S", "iq4_xs": "IQ4_XS"}
# The iq-mix file: which format each weight gets (byte offsets of f16 scales as in make_kquant_fixtures).
MIX = {
    "token_embd.weight": (T.TQ2_0, 66, [64]),
    "output.weight": (T.TQ1_0, 54, [52]),
    "blk.0.attn_q.weight": (T.IQ2_XXS, 66, [0]),
    "blk.0.attn_k.weight": (T.IQ2_XS, 74, [0]),
    "blk.0.attn_v.weight": (T.IQ2_S, 82, [0]),
    "blk.0.attn_output.weight": (T.IQ3_XXS, 98, [0]),
    "blk.0.ffn_gate.weight": (T.IQ3_S, 110, [0]),
    "blk.0.ffn_up.weight": (T.IQ1_S, 50, [0]),
    "blk.0.ffn_down.weight": (T.IQ1_M, 56, None),
}
HF_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
            "output.weight": "lm_head.weight"}
HF_PARTS = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
            "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
            "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def build_model() -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=256, hidden_size=256, intermediate_size=256, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)
    model = LlamaForCausalLM._from_config(config, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    oc.randomize_(model, 4242)
    return model


def dequantized_state(reader: gguf.GGUFReader, n_head: int, n_head_kv: int) -> dict:
    state = {}
    for tensor in reader.tensors:
        shape = [int(d) for d in reversed(tensor.shape)]
        values = gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type).reshape(shape).astype(np.float32)
        if tensor.name in HF_NAMES:
            hf = HF_NAMES[tensor.name]
        else:
            _, layer, part, _ = tensor.name.split(".")
            hf = f"model.layers.{layer}.{HF_PARTS[part]}.weight"
            if part == "attn_q":
                values = unpermute(values, n_head)
            elif part == "attn_k":
                values = unpermute(values, n_head_kv)
        state[hf] = torch.from_numpy(np.ascontiguousarray(values))
    return state


def write_mix(source: Path, out: Path) -> None:
    reader = gguf.GGUFReader(str(source))
    writer = gguf.GGUFWriter(str(out), "llama")
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        value_type = field.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            continue
        value = field.parts[field.data[0]]
        if value_type == gguf.GGUFValueType.STRING:
            writer.add_key_value(field.name, bytes(value).decode(), value_type)
        else:
            writer.add_key_value(field.name, value.tolist()[0], value_type)
    for seed, tensor in enumerate(reader.tensors, start=500):
        data = np.array(tensor.data, dtype=np.float32).reshape([int(d) for d in reversed(tensor.shape)])
        if tensor.name in MIX:
            qtype, block_bytes, offsets = MIX[tensor.name]
            rows, cols = data.shape
            count = rows * cols // 256
            blocks = np.frombuffer(random_blocks(tensor.name, qtype, block_bytes, offsets, seed, count=count,
                                                 scale_range=(0.002, 0.006)), dtype=np.uint8)
            blocks = blocks.reshape(rows, cols // 256 * block_bytes)
            writer.add_tensor(tensor.name, blocks, raw_shape=blocks.shape, raw_dtype=qtype)
        else:
            writer.add_tensor(tensor.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    quantize = Path(sys.argv[1]) / "bin" / "llama-quantize"
    model = build_model()
    golden_rows = json.loads((FIXTURES / "logprobs" / "llama-gqa.json").read_text())["rows"]
    rows = [r["tokens"] for r in golden_rows]
    original = [oc.score_row(model, r) for r in rows]
    with tempfile.TemporaryDirectory() as work:
        model_dir = Path(work) / NAME
        model.save_pretrained(model_dir)
        source = Path(work) / f"{NAME}-f32.gguf"
        write_gguf(model_dir, source, "llama", gguf.LlamaFileType.ALL_F32, name=NAME, head_dim_keys=False)
        outputs = {}
        for label, ftype in LLAMA_TYPES.items():
            out = FIXTURES / "gguf" / f"{NAME}-{label}.gguf"
            result = subprocess.run([str(quantize), "--pure", str(source), str(out), ftype, "1"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"llama-quantize {ftype} failed:\n{result.stdout}\n{result.stderr}")
            outputs[label] = out
        mix = FIXTURES / "gguf" / f"{NAME}-iq-mix.gguf"
        write_mix(source, mix)
        outputs["iq-mix"] = mix
    for label, out in outputs.items():
        reader = gguf.GGUFReader(str(out))
        scoring = build_model()
        missing = scoring.load_state_dict(dequantized_state(reader, 4, 2), strict=False)
        assert not missing.missing_keys, missing.missing_keys
        scored = [oc.score_row(scoring, r) for r in rows]
        for row, f32 in zip(scored, original):
            row["logprobs_f32_original"] = f32["logprobs"]
        types = sorted({t.tensor_type.name for t in reader.tensors})
        golden = {"model": f"gguf/{out.name}", "dtype": label, **oc.versions(), "tensor_types": types,
                  "note": "transformers in f32 on the weights gguf-py dequantizes from the GGUF; "
                          "logprobs_f32_original: the f32 model", "rows": scored}
        oc.write_json(FIXTURES / "logprobs" / f"gguf-{NAME}-{label}.json", golden)
        worst = max(abs(a - b) for r in scored for a, b in zip(r["logprobs"][1:], r["logprobs_f32_original"][1:]))
        print(f"{out.name}: {out.stat().st_size} bytes, types {types}; max |quantized − f32| log-prob {worst:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
