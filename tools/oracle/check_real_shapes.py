#!/usr/bin/env python3
"""Hone against llama.cpp on GGUF files of real architectures' shapes that are not in the repository.

Builds seeded random-weight models with the shapes of Qwen2.5-0.5B (hidden 896, q/k/v biases, tied embeddings),
a Llama 3 (rope scaling "llama3", which the converter stores as a `rope_freqs` tensor), a Mistral with
head_dim 128 (hidden 640, not a multiple of 256, so llama-quantize falls back for the K types), Qwen3-0.6B
(per-head q/k norms, head_dim 128), a four-layer SmolLM3 (its fourth layer without rotation), Granite 3.3-2B
(embedding, residual, attention and logit multipliers), Phi-4-mini (fused projections, LongRoPE, a partial
rotation), Gemma 3 270M (sliding-window layers with their own rope base, norms after each half, GeGLU) and
Gemma 2 2B (soft caps on attention scores and logits; a SentencePiece vocabulary trained for it), Gemma 2B (the
first Gemma: GeGLU, MQA, head_dim 256; the same kind of vocabulary), the mixtures
of experts of Qwen3-30B-A3B, Qwen1.5-MoE, Mixtral, OLMoE and Granite-3.1-1B-A400M (narrower; routers and experts random), OLMo 2 1B
(norms after each half only, q/k norms across the heads), OLMo 3 (windowed layers, YaRN) and EXAONE 4 (1.2B, and
the 32B's 64-layer windowed layout made narrow), the others with the default
model's tokenizer; converts each with the peer's `convert_hf_to_gguf.py` to f32 and quantizes it with
llama-quantize to every type Hone quantizes. For each file it prints

  - `hone perplexity` and `llama-perplexity` on the same text (for F32 also Hone on the HF directory and
    llama.cpp on the GGUF `hone convert` writes from it),
  - the "exact" perplexity: llama-perplexity on the file dequantized to f32 (`hone quantize --type f32`),

as natural-log differences per scored token. Both tools quantize activations for the integer kernels, so both
depart from the exact figure; the check is that Hone departs by about as much as llama.cpp does (either may be the
closer on one file: random models amplify activation rounding more than trained ones), and that the f32 files
agree to rounding. The weights are the fixtures' random ones (`oracle_common.randomize_`: random biases and norm
weights, unit-variance matrices), so a wrong rotary layout, bias or scaling moves the perplexities visibly.

    tools/oracle/.venv/bin/python tools/oracle/check_real_shapes.py --hone .build/release/hone \
        --llama-cpp /path/to/llama.cpp [--work /tmp/shapes] [--types Q4_K_M,Q5_0] [--text FILE]

`--llama-cpp` is a llama.cpp source tree (its `convert_hf_to_gguf.py`, `gguf-py`) built in `build/`
(`llama-quantize`, `llama-perplexity`). The text defaults to the first 14,000 characters of the Alpaca sample in
../shared/data (about 3,000 tokens, five chunks of 512).
"""
import argparse
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
TOKENIZER = REPO / "models/SmolLM2-135M-Instruct-f32"
TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S",
         "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_XS"]
SHAPES = {
    "qwen2": dict(model_type="qwen2", hidden_size=896, num_attention_heads=14, num_key_value_heads=2,
                  intermediate_size=4864, num_hidden_layers=3, tie_word_embeddings=True, rope_theta=1e6,
                  rms_norm_eps=1e-6),
    "llama3": dict(model_type="llama", hidden_size=1024, num_attention_heads=16, num_key_value_heads=4,
                   intermediate_size=2816, num_hidden_layers=3, tie_word_embeddings=False, rope_theta=5e5,
                   rms_norm_eps=1e-5, max_position_embeddings=131072,
                   rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    "mistral": dict(model_type="mistral", hidden_size=640, num_attention_heads=5, num_key_value_heads=1,
                    intermediate_size=1792, num_hidden_layers=3, tie_word_embeddings=False, rope_theta=1e6,
                    rms_norm_eps=1e-5, head_dim=128, sliding_window=None),
    # Qwen3-0.6B's shape: per-head q/k norms, head_dim 128 (not hidden / heads), tied embeddings.
    "qwen3": dict(model_type="qwen3", hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                  intermediate_size=3072, num_hidden_layers=3, tie_word_embeddings=True, rope_theta=1e6,
                  rms_norm_eps=1e-6),
    # Granite 3.3-2B's shape and multipliers (three layers).
    "granite": dict(model_type="granite", hidden_size=2048, num_attention_heads=32, num_key_value_heads=8,
                    intermediate_size=8192, num_hidden_layers=3, tie_word_embeddings=True, rope_theta=1e7,
                    rms_norm_eps=1e-5, embedding_multiplier=12.0, residual_multiplier=0.22,
                    attention_multiplier=0.015625, logits_scaling=8.0),
    # SmolLM3 with four layers: the fourth attends without rotary positions.
    "smollm3": dict(model_type="smollm3", hidden_size=1024, num_attention_heads=16, num_key_value_heads=4,
                    intermediate_size=2816, num_hidden_layers=4, tie_word_embeddings=True, rope_theta=5e6,
                    rms_norm_eps=1e-6, pad_token_id=None),
    # Qwen3-0.6B's shape with YaRN as Qwen documents it for 131,072 tokens (factor 4 over 32,768).
    "qwen3yarn": dict(model_type="qwen3", hidden_size=1024, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                      intermediate_size=3072, num_hidden_layers=3, tie_word_embeddings=True, rope_theta=1e6,
                      rms_norm_eps=1e-6, max_position_embeddings=131072,
                      rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}),
    # Phi-4-mini's shape (two layers, this vocabulary; not named "phi3": llama.cpp gives models whose name says
    # phi-3 the special-token attributes of Phi-3's own vocabulary, which this one lacks): fused qkv_proj and gate_up_proj, 96 of 128 features rotated,
    # LongRoPE (short factors within 4,096 positions; the attention factor on cos and sin), tied embeddings.
    "phi4mini": dict(model_type="phi3", hidden_size=3072, num_attention_heads=24, num_key_value_heads=8,
                 intermediate_size=8192, num_hidden_layers=2, tie_word_embeddings=True, rope_theta=1e4,
                 rms_norm_eps=1e-5, partial_rotary_factor=0.75, max_position_embeddings=131072,
                 original_max_position_embeddings=4096, sliding_window=None, pad_token_id=None,
                 rope_scaling={"type": "longrope", "short_factor": [1.0 + 0.02 * i for i in range(48)],
                               "long_factor": [1.0 + 0.8 * i for i in range(48)]}),
    # Gemma 3 270M's shape with six layers (five local, the sixth global), a window of 128 keys (so the 512-token
    # chunks slide it) and the 4B's linear rope scaling ×8 on the global layer.
    "gemma3": dict(model_type="gemma3_text", hidden_size=640, num_attention_heads=4, num_key_value_heads=1,
                   head_dim=256, intermediate_size=2048, num_hidden_layers=6, tie_word_embeddings=True,
                   rope_theta=1e6, rms_norm_eps=1e-6, query_pre_attn_scalar=256, sliding_window=128,
                   rope_scaling={"rope_type": "linear", "factor": 8.0}, pad_token_id=0),
    # Gemma 2 2B's shape with four layers (0 and 2 local), a window of 128 keys and its soft caps (50 on attention
    # scores, 30 on logits). Its converter reads a SentencePiece tokenizer.model only: one of 8,000 pieces is
    # trained on the Alpaca text.
    "gemma2": dict(model_type="gemma2", hidden_size=2304, num_attention_heads=8, num_key_value_heads=4, head_dim=256,
                   intermediate_size=9216, num_hidden_layers=4, tie_word_embeddings=True, rope_theta=1e4,
                   rms_norm_eps=1e-6, query_pre_attn_scalar=256, sliding_window=128, attn_logit_softcapping=50.0,
                   final_logit_softcapping=30.0, pad_token_id=0, spm_vocabulary=8000),
    # Qwen3-30B-A3B's block, narrower (hidden 1024, head_dim 128 and per-head q/k norms as there) with 16 experts of
    # 512 (it has 128 of 768), 4 chosen per token and renormalized (norm_topk_prob), two layers.
    "qwen3moe": dict(model_type="qwen3_moe", hidden_size=1024, num_attention_heads=16, num_key_value_heads=4,
                     head_dim=128, intermediate_size=3072, moe_intermediate_size=512, num_experts=16,
                     num_experts_per_tok=4, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                     num_hidden_layers=2, tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-6),
    # Qwen1.5-MoE-A2.7B's block, narrower: q/k/v biases, 16 experts of 352 (it has 60 of 1408), 4 per token, not
    # renormalized, and a shared expert of 1408 (5632 there) behind its sigmoid gate; untied (llama.cpp's qwen2moe
    # requires output.weight); two layers.
    "qwen2moe": dict(model_type="qwen2_moe", hidden_size=1024, num_attention_heads=16, num_key_value_heads=16,
                     intermediate_size=2816, moe_intermediate_size=352, shared_expert_intermediate_size=1408,
                     num_experts=16, num_experts_per_tok=4, norm_topk_prob=False, decoder_sparse_step=1,
                     mlp_only_layers=[], num_hidden_layers=2, tie_word_embeddings=False, rope_theta=1e6,
                     rms_norm_eps=1e-6),
    # Mixtral-8x7B's layout, narrower: 8 experts (llama-quantize's n_expert 8 rules), 2 per token, Llama's
    # attention (permuted Q/K rows in the GGUF), two layers.
    "mixtral": dict(model_type="mixtral", hidden_size=1024, num_attention_heads=8, num_key_value_heads=2,
                    intermediate_size=1024, num_local_experts=8, num_experts_per_tok=2, num_hidden_layers=2,
                    tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-5, sliding_window=None),
    # Gemma-2B's shape with four layers (MQA, head_dim 256, GeGLU of 16384), a SentencePiece vocabulary of 8,000.
    # Its tied output has no soft cap: the unit-variance embedding is scaled by 1/32 so that the logits stay within
    # a few nats (at full scale both tools' perplexities overflow to inf).
    "gemma": dict(model_type="gemma", hidden_size=2048, num_attention_heads=8, num_key_value_heads=1, head_dim=256,
                  intermediate_size=16384, num_hidden_layers=4, tie_word_embeddings=True, rope_theta=1e4,
                  rms_norm_eps=1e-6, pad_token_id=0, spm_vocabulary=8000, embedding_gain=1 / 32),
    # Granite-3.1-1B-A400M's block (its four multipliers, 32 experts of 512, 8 per token, renormalized), two layers.
    "granitemoe": dict(model_type="granitemoe", hidden_size=1024, num_attention_heads=16, num_key_value_heads=8,
                       intermediate_size=512, num_local_experts=32, num_experts_per_tok=8, num_hidden_layers=2,
                       tie_word_embeddings=True, rope_theta=1e4, rms_norm_eps=1e-6, embedding_multiplier=12.0,
                       residual_multiplier=0.22, attention_multiplier=0.015625, logits_scaling=6.0),
    # EXAONE-4.0-1.2B's block (no window: every layer global and rotated; post norms, per-head q/k norms), four
    # layers, tied; and the 32B's layout made narrow (llama.cpp windows 64-layer EXAONE 4 models only): 64 layers of
    # hidden 256, three in four local with a window of 128 keys and rotated with Llama 3 scaling ×16 (as the 32B),
    # every fourth global without rotation.
    "exaone4": dict(model_type="exaone4", hidden_size=2048, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                    intermediate_size=4096, num_hidden_layers=4, tie_word_embeddings=True, rope_theta=1e6,
                    rms_norm_eps=1e-5, sliding_window=None, layer_types=["full_attention"] * 4),
    "exaone4-32b": dict(model_type="exaone4", hidden_size=256, num_attention_heads=4, num_key_value_heads=1, head_dim=64,
                        intermediate_size=512, num_hidden_layers=64, tie_word_embeddings=False, rms_norm_eps=1e-5,
                        sliding_window=128, sliding_window_pattern=4,
                        rope_parameters={"rope_type": "llama3", "factor": 16.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
                                         "rope_theta": 1e6}),
    # OLMo-2-0425-1B's block (no input norms, norms after each half, q/k norms across all 16 heads), four layers;
    # untied (llama.cpp's olmo2 requires output.weight).
    "olmo2": dict(model_type="olmo2", hidden_size=2048, num_attention_heads=16, num_key_value_heads=16,
                  intermediate_size=8192, num_hidden_layers=4, tie_word_embeddings=False, rope_theta=5e5,
                  rms_norm_eps=1e-6),
    # OLMo-3-7B's block, narrower (head_dim 128, GQA): layers 0-2 local with a window of 128 keys (the 512-token
    # chunks slide it), layer 3 global with the 7B's YaRN (×8 over 8,192 positions, attention factor 1.2079).
    "olmo3": dict(model_type="olmo3", hidden_size=1024, num_attention_heads=8, num_key_value_heads=2,
                  intermediate_size=2816, num_hidden_layers=4, tie_word_embeddings=False, rope_theta=5e5,
                  rms_norm_eps=1e-6, sliding_window=128, max_position_embeddings=65536,
                  rope_scaling={"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8192,
                                "attention_factor": 1.2079441541679836, "beta_fast": 32.0, "beta_slow": 1.0}),
    # OLMoE-1B-7B's block, narrower: q/k norms across the heads, 16 experts of 1024 (it has 64), 8 per token, not
    # renormalized; two layers, untied.
    "olmoe": dict(model_type="olmoe", hidden_size=2048, num_attention_heads=16, num_key_value_heads=16,
                  intermediate_size=1024, num_experts=16, num_experts_per_tok=8, norm_topk_prob=False,
                  num_hidden_layers=2, tie_word_embeddings=False, rope_theta=1e4, rms_norm_eps=1e-5),
}


def train_sentencepiece(out, size):
    """A SentencePiece BPE model of `size` pieces on the Alpaca sample, with byte fallback, as Gemma's are."""
    import sentencepiece
    records = json.load(open(REPO.parent / "shared/data/alpaca/alpaca_data_first200.json"))
    text = out / "spm-training.txt"
    text.write_text("\n".join(r["instruction"] + "\n" + r["input"] + "\n" + r["output"] for r in records))
    sentencepiece.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(out / "tokenizer"), vocab_size=size, model_type="bpe", byte_fallback=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True, minloglevel=2)
    text.unlink()
    (out / "tokenizer.vocab").unlink()


def make_model(name, shape, out):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from oracle_common import randomize_
    shape = dict(shape)
    spm_vocabulary = shape.pop("spm_vocabulary", None)
    embedding_gain = shape.pop("embedding_gain", None)
    ids = dict(vocab_size=spm_vocabulary, bos_token_id=2, eos_token_id=1) if spm_vocabulary else \
        dict(vocab_size=49152, bos_token_id=1, eos_token_id=2)
    config = AutoConfig.for_model(shape.pop("model_type"), **ids, **shape)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        randomize_(model, seed=0)  # biases and norm weights random too, so a skipped one shows
        if embedding_gain is not None:
            model.get_input_embeddings().weight.mul_(embedding_gain)
    model.save_pretrained(out, safe_serialization=True)
    if spm_vocabulary:
        train_sentencepiece(out, spm_vocabulary)
        return
    for file in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(TOKENIZER / file, out)
    if config.model_type == "phi3":
        # The converter's Phi-3 takes a BPE vocabulary only when tokenizer_config names GPT2Tokenizer (as
        # Phi-4-mini's does); otherwise it looks for a SentencePiece tokenizer.model.
        settings = json.loads((out / "tokenizer_config.json").read_text())
        settings["tokenizer_class"] = "GPT2Tokenizer"
        (out / "tokenizer_config.json").write_text(json.dumps(settings))


def convert(llama_cpp, hf_dir, gguf):
    # The converter names a BPE pre-tokenizer by hashing its output on a test text; under its Qwen2 path this
    # tokenizer's hash is not in the table (under Llama it is found as "smollm"), so every shape is given that name.
    code = (f"import sys, runpy; sys.path.insert(0, {str(llama_cpp)!r}); import conversion.base as base; "
            f"base.TextModel.get_vocab_base_pre = lambda self, tokenizer: 'smollm'; "
            f"sys.argv = ['convert_hf_to_gguf.py', {str(hf_dir)!r}, '--outtype', 'f32', '--outfile', {str(gguf)!r}]; "
            f"runpy.run_path({str(llama_cpp / 'convert_hf_to_gguf.py')!r}, run_name='__main__')")
    env = dict(os.environ, PYTHONPATH=str(llama_cpp / "gguf-py"))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)


def perplexity(command):
    result = subprocess.run(command, capture_output=True, text=True)
    found = re.findall(r"PPL = ([0-9.]+)", result.stdout + result.stderr)
    if result.returncode != 0 or not found:
        raise SystemExit(f"{' '.join(map(str, command))}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return float(found[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hone", required=True)
    parser.add_argument("--llama-cpp", required=True, type=pathlib.Path)
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/hone-real-shapes"))
    parser.add_argument("--types", default=",".join(TYPES))
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--text", type=pathlib.Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    bin_dir = args.llama_cpp / "build/bin"
    if not (TOKENIZER / "tokenizer.json").exists():
        raise SystemExit(f"{TOKENIZER}: missing; make it with tools/oracle/make_eval_fixtures.py --smollm2")
    for tool in ["llama-quantize", "llama-perplexity"]:
        if not (bin_dir / tool).exists():
            raise SystemExit(f"{bin_dir / tool}: missing; build the peer tree's {tool} in {args.llama_cpp / 'build'}")
    args.work.mkdir(parents=True, exist_ok=True)
    text = args.text
    if text is None:
        text = args.work / "text.txt"
        records = json.load(open(REPO.parent / "shared/data/alpaca/alpaca_data_first200.json"))
        text.write_text("\n\n".join(r["instruction"] + "\n" + r["output"] for r in records)[:14000])
    common = ["-f", str(text), "-c", "512", "-t", str(args.threads)]

    def hone_ppl(model):
        return perplexity([args.hone, "perplexity", "-m", str(model)] + common)

    def llama_ppl(model):
        return perplexity([str(bin_dir / "llama-perplexity"), "-m", str(model)] + common)

    print(f"{'shape':8} {'type':7} {'hone':>12} {'llama.cpp':>12} {'exact':>12}  ln(hone/exact)  ln(llama/exact)")
    for name in args.shapes.split(","):
        hf_dir, f32 = args.work / f"hf-{name}", args.work / f"{name}-f32.gguf"
        if not f32.exists():
            make_model(name, SHAPES[name], hf_dir)
            convert(args.llama_cpp, hf_dir, f32)
        hone, llama = hone_ppl(f32), llama_ppl(f32)
        # Hone on the HF directory, and llama.cpp on the GGUF `hone convert` writes from it.
        hone_gguf = args.work / f"{name}-hone-f32.gguf"
        subprocess.run([args.hone, "convert", str(hf_dir), str(hone_gguf), "--type", "f32"], check=True,
                       capture_output=True)
        hone_hf, llama_hone = hone_ppl(hf_dir), llama_ppl(hone_gguf)
        hone_gguf.unlink()
        print(f"{name:8} {'F32':7} {hone:12.6g} {llama:12.6g} {'':12}  ln(hone/llama) {math.log(hone / llama):+.5f}; "
              f"hone on HF {math.log(hone_hf / llama):+.5f}, llama.cpp on hone's GGUF {math.log(llama_hone / llama):+.5f}",
              flush=True)
        for kind in args.types.split(","):
            quantized, exact_file = args.work / f"{name}-{kind}.gguf", args.work / "dequantized.gguf"
            subprocess.run([str(bin_dir / "llama-quantize"), str(f32), str(quantized), kind], check=True,
                           capture_output=True)
            subprocess.run([args.hone, "quantize", str(quantized), str(exact_file), "--type", "f32"], check=True,
                           capture_output=True)
            hone, llama, exact = hone_ppl(quantized), llama_ppl(quantized), llama_ppl(exact_file)
            print(f"{name:8} {kind:7} {hone:12.6g} {llama:12.6g} {exact:12.6g}  {math.log(hone / exact):+14.4f}"
                  f"  {math.log(llama / exact):+15.4f}", flush=True)
            quantized.unlink()
            exact_file.unlink()


if __name__ == "__main__":
    main()
