// Matrix products with many activation rows (prefill, scoring, training): OpenBLAS sgemm over f32 tiles.
#ifndef HONE_GEMM_H
#define HONE_GEMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "hone_types.h"

/// y[r, o] = sum_i w[o, i] * x[r, i] for many rows.
/// From 16 rows on AVX2 and AVX-512: Hone's panel kernel (panels of outputs packed as f32 per call, each output one
/// chain of fused multiply-adds in input order, so a row's result does not depend on the rows beside it).
/// Otherwise the weight is cut into tiles of output rows; each OpenMP thread converts its tile to f32 (f16/bf16)
/// in a private buffer and multiplies it with single-threaded sgemm, so OpenMP alone owns the cores (OpenBLAS's
/// own thread pool is set to one thread). Either way no full f32 copy of the weight is ever made.
void hk_matmul_many(const void *w /* [out, in] of weight_type (hk_type: F32, F16 or BF16) */, int weight_type,
                    const float *x /* [rows, in] */, float *y /* [rows, out] */, int rows, int in, int out);
/// How the threads of hk_matmul_many (groups of packed panels) and of hk_matmul_many_quant's int8 GEMM (chunks of
/// repacked tiles) share the work. FINISH_OTHERS (the default): each thread runs its own contiguous half (third,
/// ...), then helps finish the others' row blocks. STATIC: its own part only.
/// OTHERS_FIRST: the others' parts before its own (tests: every group then runs on more than one thread). The
/// results are the same bit for bit in every mode.
enum { HK_GEMM_SHARING_STATIC = 0, HK_GEMM_SHARING_FINISH_OTHERS = 1, HK_GEMM_SHARING_OTHERS_FIRST = 2 };
void hk_set_gemm_sharing(int mode);
/// Output rows per tile of hk_matmul_many: at most ~2 MB of f32 weight, a multiple of 16, and equal tiles whose
/// count is a multiple of `threads` (balanced work per thread).
int hk_gemm_tile_height(int in, int out, int threads);
/// Naive triple loop with double accumulation: the reference for hk_matmul_many.
void hk_matmul_many_ref(const void *w /* [out, in] of weight_type */, int weight_type,
                        const float *x /* [rows, in] */, float *y /* [rows, out] */, int rows, int in, int out);
/// y[r, o] (+)= sum_i x[r, i] * w[o, i] with f32 operands and a row stride for y (ldy >= out); beta 0 or 1.
/// A thin wrapper over sgemm used by attention-free layers that own f32 weights (e.g. LoRA factors later).
void hk_sgemm_nt(const float *x /* [rows, in] */, const float *w /* [out, in] */, float *y /* [rows, ldy] */,
                 int rows, int in, int out, int ldy, float beta);

/// Scores rows against a vocabulary without writing their logits z = W x_r: best[r] = the first index of max z,
/// best_logit[r] = that maximum, log_normalizer[r] = log Σ_v exp(z_v) (blocks of 512 summed in f32, combined in
/// double). Each z is computed as hk_matmul_many computes it from 16 rows (see hk_vocab_logit). Results do not
/// depend on the thread count. Returns -1 (nothing written) below AVX2 or for weight types other than
/// F32/F16/BF16: then project and reduce the logits instead.
int hk_vocab_scores(const void *w /* [vocab, in] of weight_type */, int weight_type, const float *x /* [rows, in] */,
                    int rows, int in, int vocab, int32_t *best /* [rows] */, float *best_logit /* [rows] */,
                    double *log_normalizer /* [rows] */);
/// One logit z_token = W[token] · x, bit-identical to the value hk_vocab_scores compares and sums.
float hk_vocab_logit(const void *w /* [vocab, in] of weight_type */, int weight_type, const float *x /* [in] */,
                     int in, int token);

/// The kernel family OpenBLAS chose at load time (e.g. "Haswell", "SkylakeX").
const char *hk_blas_core_name(void);
/// 1 when the CPU has AVX-512 but OpenBLAS chose AVX2 kernels and OPENBLAS_CORETYPE is unset: the process
/// should restart with OPENBLAS_CORETYPE=SkylakeX (the choice is made when the library loads).
int hk_blas_should_use_avx512_core(void);

#ifdef __cplusplus
}
#endif

#endif
