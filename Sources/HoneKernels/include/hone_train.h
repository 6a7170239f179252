// Training kernels: the backward passes of the frozen layers LoRA training runs through, the AdamW step,
// gradient-norm helpers and a regenerable dropout mask.
//
// Conventions (as in hone_kernels.h): row-major f32 activations, shapes in a comment on each pointer, a naive
// `_ref` beside each fast kernel (double accumulation where it matters), run-time ISA dispatch, OpenMP inside.
// "ADDS into dx" means dx += gradient, so a residual stream's gradient can be accumulated without a copy;
// "WRITES" means dx = gradient.
#ifndef HONE_TRAIN_H
#define HONE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "hone_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Normalisation backward (weights frozen)

/// RMSNorm y = x * r * w with r = 1 / sqrt(mean(x^2) + eps), per row. ADDS the input gradient into dx:
/// dx += r * (w * dy) - x * r^3 * sum(w * dy * x) / dim.
void hk_rmsnorm_backward(const float *x /* [rows, dim] */, const float *weight /* [dim] */,
                         const float *dy /* [rows, dim] */, float *dx /* [rows, dim], accumulated */, int rows,
                         int dim, float eps);
void hk_rmsnorm_backward_ref(const float *x /* [rows, dim] */, const float *weight /* [dim] */,
                             const float *dy /* [rows, dim] */, float *dx /* [rows, dim], accumulated */, int rows,
                             int dim, float eps);
/// LayerNorm y = (x - mean) / sqrt(var + eps) * w + b (biased variance); weight may be NULL (all ones), the
/// bias does not enter the input gradient. ADDS into dx: with xhat = (x - mean) * rstd and g = w * dy,
/// dx += rstd * (g - mean(g) - xhat * mean(g * xhat)).
void hk_layernorm_backward(const float *x /* [rows, dim] */, const float *weight /* [dim] or NULL */,
                           const float *dy /* [rows, dim] */, float *dx /* [rows, dim], accumulated */, int rows,
                           int dim, float eps);
void hk_layernorm_backward_ref(const float *x /* [rows, dim] */, const float *weight /* [dim] or NULL */,
                               const float *dy /* [rows, dim] */, float *dx /* [rows, dim], accumulated */,
                               int rows, int dim, float eps);

// MARK: - Activation backward

/// h = silu(gate) * up. WRITES dup = dh * silu(gate) and dgate = dh * up * s * (1 + gate * (1 - s)),
/// s = sigmoid(gate). Elementwise, every input element is read before its outputs are written, so dgate may
/// be the same array as gate or dh, and dup the same array as up or dh (exactly the same pointer; partial
/// overlaps are not allowed, nor dgate == dup). The trainer overwrites gate with dgate to save memory.
void hk_silu_mul_backward(const float *gate /* [n] */, const float *up /* [n] */, const float *dh /* [n] */,
                          float *dgate /* [n] */, float *dup /* [n] */, size_t n);
void hk_silu_mul_backward_ref(const float *gate /* [n] */, const float *up /* [n] */, const float *dh /* [n] */,
                              float *dgate /* [n] */, float *dup /* [n] */, size_t n);
/// y = relu(x): WRITES dx = dy where x > 0, else 0. dx may be dy (in place).
void hk_relu_backward(const float *x /* [n] */, const float *dy /* [n] */, float *dx /* [n] */, size_t n);
/// y = gelu(x) (hk_gelu's two forms): WRITES dx = dy * gelu'(x). dx may be dy (in place).
void hk_gelu_backward(const float *x /* [n] */, const float *dy /* [n] */, float *dx /* [n] */, size_t n, int tanh_form);

// MARK: - Rotary embedding backward

/// The transpose of hk_rope (same arguments, same angles): rotates each pair by -angle, in place. Rotations
/// are orthogonal, so this is also hk_rope's inverse (up to f32 rounding). Bit-identical to its reference.
void hk_rope_backward(float *dx /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                      const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
                      int interleaved);
void hk_rope_backward_ref(float *dx /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                          const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim,
                          int rot_dim, int interleaved);

// MARK: - Attention backward

/// Causal grouped-query attention of ONE sequence starting at position 0 (hk_attention with q_start = 0 and
/// n_q = n): given q, k, v (after rope) and d_out, WRITES dq, dk, dv. The softmax is recomputed per query row
/// (nothing is stored by the forward). With P = softmax(scale * q k^T) and dP = d_out v^T per head,
/// dS = P * (dP - rowsum(P * dP)); dq = scale * dS k, dk = scale * dS^T q, dv = P^T d_out (dk, dv summed over
/// the heads sharing a KV head).
/// Parallel over query heads: each head writes its dq rows and its own dk/dv contribution to scratch, then
/// the contributions are summed per KV head in head order, so results do not depend on the thread count.
/// window > 0: the query at t sees keys t - window + 1 ... t only (a sliding window); 0: every earlier key.
/// softcap > 0: scores are softcap * tanh(s / softcap) (Gemma 2), their gradients times 1 - tanh^2 (a scalar
/// pair kernel at every ISA); 0: none.
/// Scratch: 2 * heads * n * head_dim floats.
void hk_attention_backward(const float *q /* [n, heads, head_dim] */, const float *k /* [n, kv_heads, head_dim] */,
                           const float *v /* [n, kv_heads, head_dim] */, const float *d_out /* [n, heads, head_dim] */,
                           float *dq /* [n, heads, head_dim] */, float *dk /* [n, kv_heads, head_dim] */,
                           float *dv /* [n, kv_heads, head_dim] */, int n, int heads, int kv_heads, int head_dim,
                           float scale, int window, float softcap);
/// Naive reference: double everywhere, the full score matrix per head.
void hk_attention_backward_ref(const float *q /* [n, heads, head_dim] */,
                               const float *k /* [n, kv_heads, head_dim] */,
                               const float *v /* [n, kv_heads, head_dim] */,
                               const float *d_out /* [n, heads, head_dim] */, float *dq /* [n, heads, head_dim] */,
                               float *dk /* [n, kv_heads, head_dim] */, float *dv /* [n, kv_heads, head_dim] */,
                               int n, int heads, int kv_heads, int head_dim, float scale, int window,
                               float softcap);

// MARK: - Log-probability backward

/// For objectives that depend on each row's target log-probability logp[r] = log_softmax(logits[r])[targets[r]]:
/// given coefficients c[r] = dLoss/dlogp[r], OVERWRITES logits[r] with dLoss/dlogits[r] =
/// c[r] * (onehot(targets[r]) - softmax(logits[r])) and writes logp[r] (bit-identical to hk_log_softmax_gather
/// at the same ISA level). A row with c[r] == 0 becomes all zeros (logp still written). targets[r] < 0 means
/// "no target": zero row, logp 0. targets[r] >= vocab is a caller bug: the row and logp become NaN.
/// Parallel over rows; sums in double like hk_log_softmax_gather.
void hk_log_softmax_gather_backward(float *logits /* [rows, vocab] in: logits, out: gradient */,
                                    const int32_t *targets /* [rows] */, const float *coefficients /* [rows] */,
                                    float *logp /* [rows] */, int rows, int vocab);
/// Reference: double throughout (exp in double as hk_log_softmax_gather_ref).
void hk_log_softmax_gather_backward_ref(float *logits /* [rows, vocab] in: logits, out: gradient */,
                                        const int32_t *targets /* [rows] */, const float *coefficients /* [rows] */,
                                        float *logp /* [rows] */, int rows, int vocab);

// MARK: - Frozen linear layer, input gradient

/// weight_type for hk_linear_backward_input: an hk_type (F32, F16, BF16 or a quantized type).

/// 1 when hk_linear_backward_input accepts this weight type and input width (quantized types need `in` to be a
/// multiple of their block size, 32 or 256), else 0.
int hk_linear_backward_input_supported(int weight_type, int in);
/// Input gradient of a FROZEN linear layer y = x W^T: dx[rows, in] (+)= dy[rows, out] . W[out, in].
/// accumulate = 0 WRITES dx, 1 ADDS into dx. An unsupported type or width (see above) fills dx with NaN.
/// Each OpenMP thread owns a slice of input columns (aligned to the quant block, 32 or 256, or 16 floats),
/// converts or dequantizes its slice of W a tile of output rows at a time into an f32 buffer and calls
/// single-threaded sgemm (NN) into its dx columns; one OpenMP region, as hk_matmul_many. When there are fewer
/// column slices than threads, the rows of dy are split as well.
void hk_linear_backward_input(const void *weight /* [out, in] of weight_type */, int weight_type,
                              const float *dy /* [rows, out] */, float *dx /* [rows, in] */, int rows, int in,
                              int out, int accumulate);
/// Naive reference: each weight row converted/dequantized to f32, products accumulated in double.
void hk_linear_backward_input_ref(const void *weight /* [out, in] of weight_type */, int weight_type,
                                  const float *dy /* [rows, out] */, float *dx /* [rows, in] */, int rows, int in,
                                  int out, int accumulate);

// MARK: - Optimizer

/// torch.optim.AdamW's step (decoupled weight decay, bias correction) on a flat f32 array, in torch 2.13's CPU
/// arithmetic (_single_tensor_adam; foreach and the default give the same bits on CPU): hyper-parameters and
/// bias corrections in double, each rounded to f32 where torch hands them to a kernel, then per element in f32
///   p *= f32(1 - lr * wd)                                   (skipped when wd == 0, as torch)
///   m = fma(f32(1 - b1), g - m, m)                          (torch's lerp; weights >= 0.5 use g - (g - m) * (1 - w))
///   v = fma(f32(1 - b2) * g, g, v * f32(b2))                (addcmul, contracted by torch's compiler)
///   p += (f32(-lr / (1 - b1^step)) * m) / (sqrt(v) / f32((1 - b2^step)^0.5) + f32(eps))
/// m and v come out bit-identical to torch's; p can differ by an ulp in a few elements because torch (built with
/// MKL) takes sqrt from MKL's vector library, which is not correctly rounded, where we use the IEEE sqrt.
/// step counts from 1 (the value after torch's increment). The f32 hyper-parameters are widened to the double
/// nearest their shortest decimal form (0.9f -> 0.9), which is what a Python config holds; use
/// hk_adamw_step_f64 to pass doubles directly. Elementwise, parallel for large n; results do not depend on the
/// thread count or the ISA level.
void hk_adamw_step(float *param /* [n] */, const float *grad /* [n] */, float *m /* [n] */, float *v /* [n] */,
                   size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step);
void hk_adamw_step_f64(float *param /* [n] */, const float *grad /* [n] */, float *m /* [n] */, float *v /* [n] */,
                       size_t n, double lr, double beta1, double beta2, double eps, double weight_decay, int step);
/// Scalar reference of hk_adamw_step_f64 (bit-identical by construction; the tests hold the fast one to it).
void hk_adamw_step_f64_ref(float *param /* [n] */, const float *grad /* [n] */, float *m /* [n] */,
                           float *v /* [n] */, size_t n, double lr, double beta1, double beta2, double eps,
                           double weight_decay, int step);

// MARK: - Gradient norms and scaling

/// sum(x^2) in double, over fixed chunks of 2^16 elements summed in order: the same bits for any thread count.
double hk_sum_squares(const float *x /* [n] */, size_t n);
double hk_sum_squares_ref(const float *x /* [n] */, size_t n);
/// x *= factor
void hk_scale(float *x /* [n] */, float factor, size_t n);

// MARK: - Dropout

/// y = x * keep / (1 - p) with keep[i] = (u >= p), u uniform in [0, 1) from a counter-based hash (SplitMix64's
/// finaliser) of (seed, offset + i): the mask is a pure function of (seed, element index), so the backward pass
/// regenerates it instead of storing it (dx = hk_dropout(dy) with the same seed and offset), and it does not
/// depend on the thread count or on how a tensor is cut into calls. y may be x. p <= 0 copies; p >= 1 zeroes.
void hk_dropout(const float *x /* [n] */, float *y /* [n] */, size_t n, float p, uint64_t seed, uint64_t offset);
/// The keep decision of element `index` (what hk_dropout uses), for tests and for callers that want the mask.
int hk_dropout_keep(float p, uint64_t seed, uint64_t index);

#ifdef __cplusplus
}
#endif

#endif
