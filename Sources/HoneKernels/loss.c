// Log-probability of a target token under softmax(logits), per row (perplexity and scoring).
#include "hk_internal.h"

/// out = logits[target] - logsumexp(logits) for one row; NaN for a target outside [0, vocab).
typedef float (*log_softmax_row)(const float *logits /* [vocab] */, int32_t target, int vocab);

// MARK: - Reference

static float log_softmax_row_reference(const float *logits, int32_t target, int vocab) {
    if (target < 0 || target >= vocab) return NAN;
    float max_logit = -INFINITY;
    for (int i = 0; i < vocab; i++) max_logit = logits[i] > max_logit ? logits[i] : max_logit;
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)logits[i] - max_logit);
    return (float)((double)logits[target] - max_logit - log(sum));
}

void hk_log_softmax_gather_ref(const float *logits /* [rows, vocab] */, const int32_t *targets /* [rows] */,
                               float *out /* [rows] */, int rows, int vocab) {
    for (int r = 0; r < rows; r++) out[r] = log_softmax_row_reference(logits + (size_t)r * vocab, targets[r], vocab);
}

// MARK: - AVX2

HK_TARGET_AVX2 static float log_softmax_row_avx2(const float *logits, int32_t target, int vocab) {
    if (target < 0 || target >= vocab) return NAN;
    float max_logit = hk_row_max_avx2(logits, vocab);
    int vector_end = vocab & ~7;
    int i;

    // exp in f32 lanes, summed in double lanes: the sum stays as accurate as the exps themselves.
    __m256 max_vector = _mm256_set1_ps(max_logit);
    __m256d sums[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    for (i = 0; i < vector_end; i += 8) {
        __m256 exps = hk_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(logits + i), max_vector));
        sums[0] = _mm256_add_pd(sums[0], _mm256_cvtps_pd(_mm256_castps256_ps128(exps)));
        sums[1] = _mm256_add_pd(sums[1], _mm256_cvtps_pd(_mm256_extractf128_ps(exps, 1)));
    }
    __m256d total = _mm256_add_pd(sums[0], sums[1]);
    __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(total), _mm256_extractf128_pd(total, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
    for (; i < vocab; i++) sum += exp((double)logits[i] - max_logit);
    return (float)((double)logits[target] - max_logit - log(sum));
}

// MARK: - AVX-512

HK_TARGET_AVX512 static float log_softmax_row_avx512(const float *logits, int32_t target, int vocab) {
    if (target < 0 || target >= vocab) return NAN;
    float max_logit = hk_row_max_avx512(logits, vocab);
    int i;

    // exp in f32 lanes, summed in double lanes: the sum stays as accurate as the exps themselves.
    __m512 max_vector = _mm512_set1_ps(max_logit);
    __m512d sums[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    for (i = 0; i < vocab; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(vocab - i));
        __m512 exps = hk_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, logits + i), max_vector));
        exps = _mm512_maskz_mov_ps(mask, exps); // lanes past the row add nothing
        __m256 low = _mm512_castps512_ps256(exps);
        __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(exps), 1));
        sums[0] = _mm512_add_pd(sums[0], _mm512_cvtps_pd(low));
        sums[1] = _mm512_add_pd(sums[1], _mm512_cvtps_pd(high));
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(sums[0], sums[1]));
    return (float)((double)logits[target] - max_logit - log(sum));
}

// MARK: - Dispatch

void hk_log_softmax_gather(const float *logits /* [rows, vocab] */, const int32_t *targets /* [rows] */,
                           float *out /* [rows] */, int rows, int vocab) {
    if (rows <= 0) return;
    log_softmax_row row_kernel;
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: row_kernel = log_softmax_row_avx512; break;
    case HK_ISA_AVX2: row_kernel = log_softmax_row_avx2; break;
    default: row_kernel = log_softmax_row_reference; break; // already scalar; exp in double
    }
    int threads = hk_thread_count();
    // Rows only: splitting one row would need a cross-thread sum whose order depends on the thread count.
    if (threads > 1 && rows > 1 && (size_t)rows * (size_t)vocab >= HK_PARALLEL_ELEMENTS / 4) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int r = 0; r < rows; r++) out[r] = row_kernel(logits + (size_t)r * vocab, targets[r], vocab);
    } else {
        for (int r = 0; r < rows; r++) out[r] = row_kernel(logits + (size_t)r * vocab, targets[r], vocab);
    }
}
