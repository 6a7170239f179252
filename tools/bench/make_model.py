#!/usr/bin/env python3
"""Makes random-weight Llama models of real shapes for benchmarks (never committed).

    python tools/bench/make_model.py --shape tinyllama --out bench-models/

writes, with the same weight values where the dtype allows:
  <out>/tinyllama-bf16/        HF directory, BF16 safetensors
  <out>/tinyllama-f16/         HF directory, F16 safetensors
  <out>/tinyllama-f16.gguf     GGUF F16 (norms F32), llama.cpp's layout (Q/K rows permuted for GGML rope),
                               with the Llama-2 SentencePiece vocabulary copied from
                               ../shared/data/tokenizer-vectors/ggml-vocab-llama-spm.gguf so llama.cpp loads it.
Needs numpy and gguf (tools/oracle/.venv has both).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

SHAPES = {
    "tinyllama": dict(hidden=2048, layers=22, heads=32, kv_heads=4, ffn=5632, vocab=32000, context=2048),
    "llama2-7b": dict(hidden=4096, layers=32, heads=32, kv_heads=32, ffn=11008, vocab=32000, context=4096),
    "small": dict(hidden=768, layers=12, heads=12, kv_heads=12, ffn=2048, vocab=32000, context=2048),
}


def tensors(shape, seed):
    """Yields (hf_name, gguf_name, array f32) in a fixed order, each from its own seeded stream."""
    h, f, v = shape["hidden"], shape["ffn"], shape["vocab"]
    head_dim = h // shape["heads"]
    kv = shape["kv_heads"] * head_dim
    layout = [("model.embed_tokens.weight", "token_embd.weight", (v, h))]
    for i in range(shape["layers"]):
        p, g = f"model.layers.{i}.", f"blk.{i}."
        layout += [
            (p + "input_layernorm.weight", g + "attn_norm.weight", (h,)),
            (p + "self_attn.q_proj.weight", g + "attn_q.weight", (h, h)),
            (p + "self_attn.k_proj.weight", g + "attn_k.weight", (kv, h)),
            (p + "self_attn.v_proj.weight", g + "attn_v.weight", (kv, h)),
            (p + "self_attn.o_proj.weight", g + "attn_output.weight", (h, h)),
            (p + "post_attention_layernorm.weight", g + "ffn_norm.weight", (h,)),
            (p + "mlp.gate_proj.weight", g + "ffn_gate.weight", (f, h)),
            (p + "mlp.up_proj.weight", g + "ffn_up.weight", (f, h)),
            (p + "mlp.down_proj.weight", g + "ffn_down.weight", (h, f)),
        ]
    layout += [("model.norm.weight", "output_norm.weight", (h,)), ("lm_head.weight", "output.weight", (v, h))]
    for index, (hf, gg, dims) in enumerate(layout):
        rng = np.random.default_rng(seed * 100003 + index)
        if len(dims) == 1:
            array = (1.0 + 0.05 * rng.standard_normal(dims)).astype(np.float32)
        else:
            array = (0.02 * rng.standard_normal(dims, dtype=np.float32)).astype(np.float32)
        yield hf, gg, array


def to_bf16_bits(array):
    bits = array.view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


def write_safetensors(path, shape, seed, dtype):
    entries, offset = [], 0
    for hf, _, array in tensors(shape, seed):
        size = array.size * 2
        entries.append((hf, array.shape, offset, offset + size))
        offset += size
    header = {name: {"dtype": dtype, "shape": list(dims), "data_offsets": [b, e]} for name, dims, b, e in entries}
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for _, _, array in tensors(shape, seed):
            out.write((to_bf16_bits(array) if dtype == "BF16" else array.astype(np.float16)).tobytes())
    os.replace(tmp, path)


def write_config(directory, shape, dtype):
    os.makedirs(directory, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": shape["hidden"],
        "intermediate_size": shape["ffn"], "num_hidden_layers": shape["layers"],
        "num_attention_heads": shape["heads"], "num_key_value_heads": shape["kv_heads"],
        "vocab_size": shape["vocab"], "max_position_embeddings": shape["context"], "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": dtype,
        "bos_token_id": 1, "eos_token_id": 2,
    }
    with open(os.path.join(directory, "config.json"), "w") as out:
        json.dump(config, out, indent=2)
    with open(os.path.join(directory, "generation_config.json"), "w") as out:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, out)


def permute(weights, heads):
    """llama.cpp's converter: HF rotate-half rows → GGML adjacent-pair rows."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def write_gguf(path, shape, seed, vocab_gguf):
    import gguf
    writer = gguf.GGUFWriter(path + ".tmp", "llama")
    writer.add_name("hone-bench")
    writer.add_context_length(shape["context"])
    writer.add_embedding_length(shape["hidden"])
    writer.add_block_count(shape["layers"])
    writer.add_feed_forward_length(shape["ffn"])
    writer.add_head_count(shape["heads"])
    writer.add_head_count_kv(shape["kv_heads"])
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(shape["hidden"] // shape["heads"])
    writer.add_vocab_size(shape["vocab"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    reader = gguf.GGUFReader(vocab_gguf)
    fields = reader.fields
    tokens = [bytes(fields["tokenizer.ggml.tokens"].parts[i]).decode("utf-8", "replace")
              for i in fields["tokenizer.ggml.tokens"].data]
    scores = [float(fields["tokenizer.ggml.scores"].parts[i][0]) for i in fields["tokenizer.ggml.scores"].data]
    types = [int(fields["tokenizer.ggml.token_type"].parts[i][0]) for i in fields["tokenizer.ggml.token_type"].data]
    assert len(tokens) == shape["vocab"], "the vocabulary file must have the model's vocabulary size"
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    for _, name, array in tensors(shape, seed):
        if name.endswith("attn_q.weight"):
            array = permute(array, shape["heads"])
        elif name.endswith("attn_k.weight"):
            array = permute(array, shape["kv_heads"])
        writer.add_tensor(name, array if array.ndim == 1 else array.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tinyllama")
    parser.add_argument("--out", default="bench-models")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--formats", default="bf16,f16,gguf-f16")
    parser.add_argument("--vocab-gguf", default=os.path.join(os.path.dirname(__file__), "../../../shared/data/tokenizer-vectors/ggml-vocab-llama-spm.gguf"))
    args = parser.parse_args()
    shape = SHAPES[args.shape]
    formats = args.formats.split(",")
    for dtype in ("bf16", "f16"):
        if dtype in formats:
            directory = os.path.join(args.out, f"{args.shape}-{dtype}")
            write_config(directory, shape, {"bf16": "bfloat16", "f16": "float16"}[dtype])
            write_safetensors(os.path.join(directory, "model.safetensors"), shape, args.seed, dtype.upper())
            print(f"wrote {directory}", file=sys.stderr)
    if "gguf-f16" in formats:
        path = os.path.join(args.out, f"{args.shape}-f16.gguf")
        write_gguf(path, shape, args.seed, args.vocab_gguf)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
