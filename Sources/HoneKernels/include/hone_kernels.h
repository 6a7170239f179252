// HoneKernels: the hot loops of Hone, in C11 with OpenMP.
//
// Conventions
// - Row-major; linear weights are [out, in] as in Hugging Face; activations are f32.
// - Each fast kernel `hk_<family>_<op>[_<type>]` has a naive scalar reference `..._ref` beside it with the
//   same signature; tests compare the two. The fast version dispatches at run time to AVX-512, AVX2 or
//   scalar code (see hk_isa_*), so one binary runs on any x86-64 CPU.
// - Kernels parallelise themselves with OpenMP; callers never call them from inside a parallel region.
// - Shapes are given in a comment on each pointer.
#ifndef HONE_KERNELS_H
#define HONE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Runtime CPU features and threads

typedef enum {
    HK_ISA_SCALAR = 0,
    HK_ISA_AVX2 = 1,     // AVX2 + FMA + F16C
    HK_ISA_AVX512 = 2,   // AVX-512 F/BW/VL (+ VNNI used when present)
} hk_isa;

/// The best instruction set this CPU supports.
int hk_isa_detect(void);
/// The instruction set the fast kernels use now (defaults to hk_isa_detect()).
int hk_isa_current(void);
/// Forces a lower instruction set (tests run every path); a level above what the CPU has is clamped.
void hk_isa_force(int isa);
/// Whether the CPU has AVX-512 VNNI.
int hk_cpu_has_vnni(void);
/// Whether the CPU has GFNI (Q2_K and Q3_K's AVX-512 kernels unpack levels with vgf2p8affineqb).
int hk_cpu_has_gfni(void);
/// Whether the CPU has AVX-512 VBMI beside VNNI (Ice Lake, Zen 4): the Q4_1, Q5_0, Q5_1, IQ4_NL and IQ4_XS decode
/// kernels then gather a group's fields and look up codebooks with byte permutes. hk_byte_permutes_disable(1)
/// turns that route off (tests run both routes); hk_byte_permutes_disable(0) restores it.
int hk_cpu_has_byte_permutes(void);
void hk_byte_permutes_disable(int disabled);

/// Sets the OpenMP thread count for all kernels.
/// Keeps freed large blocks in the process (glibc: raises the mmap and trim thresholds to 1 GiB), so activation
/// buffers that are freed and allocated again every training step are not page-faulted in afresh each time.
void hk_keep_freed_memory(void);
void hk_set_threads(int threads);
int hk_get_threads(void);

// MARK: - Conversion (f16 and bf16 storage, f32 compute)

void hk_convert_f16_to_f32(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n);
void hk_convert_f16_to_f32_ref(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n);
void hk_convert_bf16_to_f32(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n);
void hk_convert_bf16_to_f32_ref(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n);
/// Round to nearest even, as torch does; NaN stays NaN, overflow gives infinity.
void hk_convert_f32_to_f16(const float *src /* [n] */, uint16_t *dst /* [n] */, size_t n);
void hk_convert_f32_to_f16_ref(const float *src /* [n] */, uint16_t *dst /* [n] */, size_t n);
void hk_convert_f32_to_bf16(const float *src /* [n] */, uint16_t *dst /* [n] */, size_t n);
void hk_convert_f32_to_bf16_ref(const float *src /* [n] */, uint16_t *dst /* [n] */, size_t n);

// MARK: - Matrix times a few rows (decode): y[r, o] = sum_i w[o, i] * x[r, i]
// Reads each weight row once for all `rows` activation rows (rows is small, 1..16), parallel over `out`.
// Used when there are too few rows for sgemm to pay off; bandwidth bound.

void hk_matmul_rows_f32(const float *w /* [out, in] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                        int rows, int in, int out);
void hk_matmul_rows_f32_ref(const float *w /* [out, in] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                            int rows, int in, int out);
void hk_matmul_rows_f16(const uint16_t *w /* [out, in] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                        int rows, int in, int out);
void hk_matmul_rows_f16_ref(const uint16_t *w /* [out, in] */, const float *x /* [rows, in] */,
                            float *y /* [rows, out] */, int rows, int in, int out);
void hk_matmul_rows_bf16(const uint16_t *w /* [out, in] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                         int rows, int in, int out);
void hk_matmul_rows_bf16_ref(const uint16_t *w /* [out, in] */, const float *x /* [rows, in] */,
                             float *y /* [rows, out] */, int rows, int in, int out);

// MARK: - Elementwise

/// y[r, :] += b for every row (bias add).
void hk_add_bias(float *y /* [rows, n] */, const float *b /* [n] */, int rows, int n);
/// y += x
void hk_add(float *y /* [n] */, const float *x /* [n] */, size_t n);
/// out = silu(gate) * up, silu(g) = g / (1 + exp(-g))
/// Sum of x, read once with wide loads by every thread: a memory read-bandwidth probe (the machine's limit for
/// decoding, which streams every weight once per token). Not a numerical kernel: the order of additions varies.
double hk_read_sum(const float *x /* [n] */, size_t n);
void hk_silu_mul(const float *gate /* [n] */, const float *up /* [n] */, float *out /* [n] */, size_t n);
void hk_silu_mul_ref(const float *gate /* [n] */, const float *up /* [n] */, float *out /* [n] */, size_t n);
/// x = max(x, 0)
void hk_relu(float *x /* [n] */, size_t n);
/// y = gelu(x), in place allowed (y may be x). tanh_form = 0: exact, 0.5 x (1 + erf(x / sqrt 2)) (torch's default,
/// HF "gelu"); 1: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) (HF "gelu_new", "gelu_fast",
/// "gelu_pytorch_tanh").
void hk_gelu(const float *x /* [n] */, float *y /* [n] */, size_t n, int tanh_form);

// MARK: - Normalisation

/// y = x / sqrt(mean(x^2) + eps) * weight, per row (Llama RMSNorm; the mean is over dim, in f32).
void hk_rmsnorm(const float *x /* [rows, dim] */, const float *weight /* [dim] */, float *y /* [rows, dim] */,
                int rows, int dim, float eps);
void hk_rmsnorm_ref(const float *x /* [rows, dim] */, const float *weight /* [dim] */, float *y /* [rows, dim] */,
                    int rows, int dim, float eps);
/// y = (x - mean) / sqrt(var + eps) * weight + bias, per row (biased variance, as torch LayerNorm).
/// weight and bias may be NULL (no elementwise affine).
void hk_layernorm(const float *x /* [rows, dim] */, const float *weight /* [dim] or NULL */,
                  const float *bias /* [dim] or NULL */, float *y /* [rows, dim] */, int rows, int dim, float eps);
void hk_layernorm_ref(const float *x /* [rows, dim] */, const float *weight /* [dim] or NULL */,
                      const float *bias /* [dim] or NULL */, float *y /* [rows, dim] */, int rows, int dim, float eps);

// MARK: - Rotary position embedding (in place)

/// Rotates the first `rot_dim` features of each head by angle position * inv_freq[j].
/// interleaved = 0: HF "rotate_half" pairs (j, j + rot_dim/2);
/// interleaved = 1: GGML "normal" pairs (2j, 2j + 1), for Llama GGUF files whose Q/K rows were permuted.
/// Angles are computed as (float)position * inv_freq[j], then cos/sin in double and rounded, as HF does in f32.
void hk_rope(float *x /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
             const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
             int interleaved);
void hk_rope_ref(float *x /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                 const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
                 int interleaved);

/// hk_rope in two steps, for passes whose layers all rotate the same rows: the angles once, then each layer's
/// rotation. table[t] holds cos then sin of positions[t] * inv_freq[j] (j < rot_dim / 2), the values hk_rope uses.
void hk_rope_table(const int32_t *positions /* [tokens] */, const float *inv_freq /* [rot_dim / 2] */, int tokens,
                   int rot_dim, float *table /* [tokens, rot_dim] */);
/// Rotates x in place by the table's angles (inverse = 1: by minus them, hk_rope_backward). Bit-identical to
/// hk_rope / hk_rope_backward with the positions and frequencies the table was made from.
void hk_rope_apply(float *x /* [tokens, heads, head_dim] */, const float *table /* [tokens, rot_dim] */, int tokens,
                   int heads, int head_dim, int rot_dim, int interleaved, int inverse);

// MARK: - Attention (causal, grouped-query; one sequence or a batch of them)

/// out[t, h, :] = sum_j softmax_j(scale * q[t, h, :] . k[j, h / group, :]) v[j, h / group, :]
/// over keys j = 0 .. q_start + t (causal), group = heads / kv_heads. The reference also takes a sliding window
/// (window > 0: keys q_start + t - window + 1 .. q_start + t only; 0: none); the fast kernels take none, and
/// callers give them windowed rows as sequences of their own whose k and v start at the window. softcap > 0:
/// each scaled score s becomes softcap * tanh(s / softcap) before the softmax (Gemma 2); 0: scores as they are.
/// k and v hold the sequence's cache: rows 0 .. q_start + n_q - 1 are valid; row stride is kv_heads * head_dim.
void hk_attention(const float *q /* [n_q, heads, head_dim] */, const float *k /* [n_kv, kv_heads, head_dim] */,
                  const float *v /* [n_kv, kv_heads, head_dim] */, float *out /* [n_q, heads, head_dim] */,
                  int n_q, int q_start, int heads, int kv_heads, int head_dim, float scale);
void hk_attention_ref(const float *q /* [n_q, heads, head_dim] */, const float *k /* [n_kv, kv_heads, head_dim] */,
                      const float *v /* [n_kv, kv_heads, head_dim] */, float *out /* [n_q, heads, head_dim] */,
                      int n_q, int q_start, int heads, int kv_heads, int head_dim, float scale, int window,
                      float softcap);

/// One sequence of a batch for hk_attention_batch: hk_attention's arguments.
typedef struct {
    const float *q;   // [n_q, heads, head_dim]
    const float *k;   // [q_start + n_q, kv_heads, head_dim]
    const float *v;   // [q_start + n_q, kv_heads, head_dim]
    float *out;       // [n_q, heads, head_dim]
    int n_q;
    int q_start;
} hk_attention_sequence;

/// hk_attention on every sequence (bit-identical results), with one thread team for all of them: many short
/// sequences in one pass (scoring documents, packed training rows) no longer pay a parallel region each.
void hk_attention_batch(const hk_attention_sequence *sequences /* [count] */, int count, int heads, int kv_heads,
                        int head_dim, float scale);
/// hk_attention_batch with soft-capped scores (softcap > 0, as in hk_attention_ref): Gemma 2's attention. Plain C,
/// one thread per (sequence, head); float sums, so within about 1e-6 of the reference.
void hk_attention_batch_softcap(const hk_attention_sequence *sequences /* [count] */, int count, int heads,
                                int kv_heads, int head_dim, float scale, float softcap);

// MARK: - Log-probabilities

/// out[r] = logits[r, targets[r]] - logsumexp(logits[r, :]); computed with a max shift, sums in double.
void hk_log_softmax_gather(const float *logits /* [rows, vocab] */, const int32_t *targets /* [rows] */,
                           float *out /* [rows] */, int rows, int vocab);
void hk_log_softmax_gather_ref(const float *logits /* [rows, vocab] */, const int32_t *targets /* [rows] */,
                               float *out /* [rows] */, int rows, int vocab);

#ifdef __cplusplus
}
#endif

#endif
