#!/usr/bin/env python3
"""Read every fixture GGUF back with gguf.GGUFReader and check it against the HF fixture it
was made from:

  1. metadata keys/values (architecture, sizes, rope, eps, file type, ...);
  2. every tensor: name, GGML type (F16 for 2-D weights in the f16 file, F32 for 1-D / norms /
     biases / rope_freqs), values equal to the HF tensor after undoing the Q/K permutation
     (exactly for F32; exactly equal to the f16-rounded value for F16);
  3. the llama3 rope_freqs tensor reproduces transformers' llama3 inverse frequencies;
  4. an independent float64 numpy forward pass that reads ONLY the GGUF and uses llama.cpp's
     conventions (GGML "normal" = interleaved rope for llama on the permuted Q/K, NEOX rope for
     qwen2, rope_freqs as frequency divisors) reproduces the golden log-probs.

Run after make_fixtures.py:  tools/oracle/.venv/bin/python tools/oracle/read_gguf_check.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle_common as oc  # noqa: E402

import gguf  # noqa: E402
from safetensors import safe_open  # noqa: E402
from transformers import AutoConfig  # noqa: E402
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS  # noqa: E402

FIX = oc.FIXTURES

CASES = [
    # gguf file, HF dir, golden, arch, expected 2-D type, head_dim keys expected
    ("llama-gqa-f32.gguf", "llama-gqa", "llama-gqa.json", "llama", gguf.GGMLQuantizationType.F32, False),
    ("llama-gqa-f16.gguf", "llama-gqa", "gguf-llama-gqa-f16.json", "llama", gguf.GGMLQuantizationType.F16, False),
    ("qwen2-bias-f32.gguf", "qwen2-bias", "qwen2-bias.json", "qwen2", gguf.GGMLQuantizationType.F32, False),
    ("llama-tied-llama3-f32.gguf", "llama-tied-llama3", "llama-tied-llama3.json", "llama",
     gguf.GGMLQuantizationType.F32, True),
]

HF_TO_GGUF = {
    "model.embed_tokens": "token_embd",
    "model.norm": "output_norm",
    "lm_head": "output",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(hf: str) -> str:
    base, suffix = hf.rsplit(".", 1)
    if base.startswith("model.layers."):
        parts = base.split(".")
        i, rest = parts[2], ".".join(parts[3:])
        return f"blk.{i}.{HF_TO_GGUF[rest]}.{suffix}"
    return f"{HF_TO_GGUF[base]}.{suffix}"


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of convert_hf_to_gguf.py LlamaModel.permute."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def field(reader: gguf.GGUFReader, key: str):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def load_gguf(path: Path):
    reader = gguf.GGUFReader(path)
    tensors = {}
    types = {}
    for t in reader.tensors:
        # GGUFReader gives data with numpy shape = reversed(ne) = the HF (row-major) shape
        tensors[t.name] = np.array(t.data)
        types[t.name] = t.tensor_type
    return reader, tensors, types


# ---------------------------------------------------------------------------
# independent float64 reference forward using llama.cpp conventions
# ---------------------------------------------------------------------------

def rms_norm(x, w, eps):
    x = x.astype(np.float64)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, n_rot, base, mode, freq_factors=None):
    """x: [T, H, D]. GGML rope: theta_i = pos * base^(-2i/n_rot) / freq_factor_i.
    mode 'normal' rotates pairs (2i, 2i+1); 'neox' rotates pairs (i, i + n_rot/2)."""
    half = n_rot // 2
    inv = base ** (-np.arange(half, dtype=np.float64) * 2.0 / n_rot)
    if freq_factors is not None:
        inv = inv / freq_factors.astype(np.float64)
    ang = pos[:, None].astype(np.float64) * inv[None, :]          # [T, half]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = x.copy()
    if mode == "normal":
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * cos - b * sin
        out[..., 1:n_rot:2] = a * sin + b * cos
    else:
        a, b = x[..., :half], x[..., half:n_rot]
        out[..., :half] = a * cos - b * sin
        out[..., half:n_rot] = a * sin + b * cos
    return out


def gguf_forward(reader, T, ids):
    arch = field(reader, "general.architecture")
    g = lambda k: field(reader, f"{arch}.{k}")  # noqa: E731
    n_layer, n_embd = g("block_count"), g("embedding_length")
    n_head, n_head_kv = g("attention.head_count"), g("attention.head_count_kv")
    head_dim = g("attention.key_length") or n_embd // n_head
    n_rot = g("rope.dimension_count") or head_dim
    base, eps = g("rope.freq_base"), g("attention.layer_norm_rms_epsilon")
    mode = "normal" if arch == "llama" else "neox"
    ff = T.get("rope_freqs.weight")
    W = {k: v.astype(np.float64) for k, v in T.items()}
    bias = lambda k: W.get(k, 0.0)  # noqa: E731

    n = len(ids)
    pos = np.arange(n)
    x = W["token_embd.weight"][ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(n_layer):
        p = f"blk.{i}."
        h = rms_norm(x, W[p + "attn_norm.weight"], eps)
        q = (h @ W[p + "attn_q.weight"].T + bias(p + "attn_q.bias")).reshape(n, n_head, head_dim)
        k = (h @ W[p + "attn_k.weight"].T + bias(p + "attn_k.bias")).reshape(n, n_head_kv, head_dim)
        v = (h @ W[p + "attn_v.weight"].T + bias(p + "attn_v.bias")).reshape(n, n_head_kv, head_dim)
        q, k = rope(q, pos, n_rot, base, mode, ff), rope(k, pos, n_rot, base, mode, ff)
        rep = n_head // n_head_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(head_dim) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hqk,khd->qhd", s, v).reshape(n, n_head * head_dim)
        x = x + o @ W[p + "attn_output.weight"].T + bias(p + "attn_output.bias")
        h = rms_norm(x, W[p + "ffn_norm.weight"], eps)
        gate = h @ W[p + "ffn_gate.weight"].T
        up = h @ W[p + "ffn_up.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ W[p + "ffn_down.weight"].T
    h = rms_norm(x, W["output_norm.weight"], eps)
    out_w = W.get("output.weight", W["token_embd.weight"])
    logits = h @ out_w.T
    m = logits.max(-1, keepdims=True)
    lp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
    return lp


# ---------------------------------------------------------------------------

def check(case) -> None:
    fname, hf_name, golden_name, arch, type2d, head_dim_keys = case
    path = FIX / "gguf" / fname
    hf_dir = FIX / "models" / hf_name
    print(f"== {fname}  ({path.stat().st_size} bytes)")
    reader, T, types = load_gguf(path)
    cfg = AutoConfig.from_pretrained(hf_dir)
    n_head, n_head_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head

    # ---- metadata
    expect = {
        "general.architecture": arch,
        "general.name": hf_name,
        "general.file_type": 1 if type2d == gguf.GGMLQuantizationType.F16 else 0,
        f"{arch}.context_length": cfg.max_position_embeddings,
        f"{arch}.embedding_length": cfg.hidden_size,
        f"{arch}.block_count": cfg.num_hidden_layers,
        f"{arch}.feed_forward_length": cfg.intermediate_size,
        f"{arch}.attention.head_count": n_head,
        f"{arch}.attention.head_count_kv": n_head_kv,
    }
    if arch == "llama":
        expect[f"{arch}.rope.dimension_count"] = head_dim
        expect[f"{arch}.vocab_size"] = cfg.vocab_size
    if head_dim_keys:
        expect[f"{arch}.attention.key_length"] = head_dim
        expect[f"{arch}.attention.value_length"] = head_dim
    for k, v in expect.items():
        got = field(reader, k)
        assert got == v, (k, got, v)
    assert np.float32(field(reader, f"{arch}.rope.freq_base")) == np.float32(cfg.rope_parameters["rope_theta"])
    assert np.float32(field(reader, f"{arch}.attention.layer_norm_rms_epsilon")) == np.float32(cfg.rms_norm_eps)
    if not head_dim_keys:
        assert field(reader, f"{arch}.attention.key_length") is None
    print("  metadata OK:", {k: field(reader, k) for k in reader.fields if not k.startswith("GGUF.")})

    # ---- tensors
    hf = {}
    for part in sorted(hf_dir.glob("*.safetensors")):
        with safe_open(part, framework="np") as f:
            for k in f.keys():
                hf[k] = f.get_tensor(k)
    expected_names = {gguf_name(k) for k in hf}
    if "rope_freqs.weight" in T:
        expected_names.add("rope_freqs.weight")
    assert set(T) == expected_names, set(T) ^ expected_names
    if cfg.tie_word_embeddings:
        assert "output.weight" not in T
    for k, ref in hf.items():
        name = gguf_name(k)
        got = T[name]
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        want_type = type2d if (ref.ndim == 2 and name.endswith(".weight") and not name.endswith("_norm.weight")) \
            else gguf.GGMLQuantizationType.F32
        assert types[name] == want_type, (name, types[name], want_type)
        if arch == "llama" and ".attn_q." in name:
            got = unpermute(got, n_head)
        if arch == "llama" and ".attn_k." in name:
            got = unpermute(got, n_head_kv)
        want = ref.astype(np.float16) if want_type == gguf.GGMLQuantizationType.F16 else ref.astype(np.float32)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    print(f"  {len(hf)} tensors equal to the HF checkpoint (Q/K un-permuted), types OK")

    # ---- llama3 rope factors
    if "rope_freqs.weight" in T:
        assert types["rope_freqs.weight"] == gguf.GGMLQuantizationType.F32
        rf = torch.from_numpy(T["rope_freqs.weight"].copy())
        dim = head_dim
        inv_default = 1.0 / (cfg.rope_parameters["rope_theta"]
                             ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        inv_hf, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, None)
        rel = float(((inv_default / rf - inv_hf).abs() / inv_hf).max())
        assert rel < 1e-6, rel
        print(f"  rope_freqs: inv_freq/rope_freqs matches transformers llama3 inv_freq (max rel {rel:.3g})")

    # ---- independent forward from the GGUF alone vs the golden
    golden = json.loads((FIX / "logprobs" / golden_name).read_text())
    worst = 0.0
    for row in golden["rows"]:
        ids = row["tokens"]
        lp = gguf_forward(reader, T, ids)
        for i in range(1, len(ids)):
            worst = max(worst, abs(lp[i - 1, ids[i]] - row["logprobs"][i]))
    assert worst < 2e-4, worst
    print(f"  numpy float64 forward from the GGUF (llama.cpp rope conventions) vs {golden_name}: "
          f"max |diff| = {worst:.3g}  OK")


def main() -> None:
    for case in CASES:
        check(case)
    print("all GGUF checks passed")


if __name__ == "__main__":
    main()
