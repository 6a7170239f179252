// Backward of causal grouped-query attention over one sequence (hk_attention with q_start = 0). Declared in
// hone_train.h.
//
// Per (query token t, head h), with keys j <= t of the head's KV head:
//   P_j = softmax_j(scale q . k_j), dP_j = d_out . v_j, D = sum_j P_j dP_j (= d_out . out),
//   dS_j = P_j (dP_j - D);  dq = scale sum_j dS_j k_j;  dk_j += scale dS_j q;  dv_j += P_j d_out.
// The softmax is recomputed from q and k (one row at a time, nothing stored by the forward).
#include "hk_internal.h"
#include "hone_train.h"

#include <stdlib.h>

/// One (query token, head) pair over `keys` keys. k and v point at the pair's KV head in row 0 (rows kv_stride
/// floats apart); dk and dv are the head's own partial gradients, rows head_dim apart, accumulated into.
typedef void (*attention_backward_pair)(const float *q /* [head_dim] */, const float *d_out /* [head_dim] */,
                                        const float *k /* [keys, kv_stride] */, const float *v /* [keys, kv_stride] */,
                                        float *dq /* [head_dim] */, float *dk /* [keys, head_dim] */,
                                        float *dv /* [keys, head_dim] */, int keys, int kv_stride, int head_dim,
                                        float scale, float *probabilities /* [keys] scratch */,
                                        float *score_gradients /* [keys] scratch */);

// MARK: - Reference

void hk_attention_backward_ref(const float *q /* [n, heads, head_dim] */,
                               const float *k /* [n, kv_heads, head_dim] */,
                               const float *v /* [n, kv_heads, head_dim] */,
                               const float *d_out /* [n, heads, head_dim] */, float *dq /* [n, heads, head_dim] */,
                               float *dk /* [n, kv_heads, head_dim] */, float *dv /* [n, kv_heads, head_dim] */,
                               int n, int heads, int kv_heads, int head_dim, float scale, int window, float softcap) {
    if (n <= 0 || heads <= 0 || kv_heads <= 0 || head_dim <= 0) return;
    int group = heads / kv_heads;
    size_t kv_stride = (size_t)kv_heads * head_dim, kv_count = (size_t)n * kv_stride;
    double *probabilities = malloc((size_t)n * sizeof(double));
    double *score_gradients = malloc((size_t)n * sizeof(double));
    double *query_gradient = malloc((size_t)head_dim * sizeof(double));
    double *key_gradients = calloc(kv_count, sizeof(double));
    double *value_gradients = calloc(kv_count, sizeof(double));
    double *slopes = malloc((size_t)n * sizeof(double));  // d(capped score) / d(score): 1 - tanh^2, or 1
    if (!probabilities || !score_gradients || !query_gradient || !key_gradients || !value_gradients || !slopes) goto done;
    for (int t = 0; t < n; t++) {
        int first = window > 0 && t + 1 > window ? t + 1 - window : 0;  // the keys a window leaves visible
        for (int h = 0; h < heads; h++) {
            const float *query = q + ((size_t)t * heads + h) * head_dim;
            const float *output_gradient = d_out + ((size_t)t * heads + h) * head_dim;
            size_t kv_offset = (size_t)(h / group) * head_dim;
            double max_score = -INFINITY;
            for (int j = first; j <= t; j++) {
                const float *key = k + j * kv_stride + kv_offset;
                double dot = 0;
                for (int d = 0; d < head_dim; d++) dot += (double)query[d] * key[d];
                probabilities[j] = dot * scale;
                slopes[j] = 1;
                if (softcap > 0) {
                    double capped = tanh(probabilities[j] / softcap);
                    probabilities[j] = softcap * capped;
                    slopes[j] = 1 - capped * capped;
                }
                if (probabilities[j] > max_score) max_score = probabilities[j];
            }
            double sum = 0;
            for (int j = first; j <= t; j++) {
                probabilities[j] = exp(probabilities[j] - max_score);
                sum += probabilities[j];
            }
            double expected = 0; // D = sum_j P_j dP_j
            for (int j = first; j <= t; j++) {
                probabilities[j] /= sum;
                const float *value = v + j * kv_stride + kv_offset;
                double dot = 0;
                for (int d = 0; d < head_dim; d++) dot += (double)output_gradient[d] * value[d];
                score_gradients[j] = dot;
                expected += probabilities[j] * dot;
            }
            for (int d = 0; d < head_dim; d++) query_gradient[d] = 0;
            for (int j = first; j <= t; j++) {
                double score_gradient = probabilities[j] * (score_gradients[j] - expected) * slopes[j] * scale;
                const float *key = k + j * kv_stride + kv_offset;
                double *key_gradient = key_gradients + j * kv_stride + kv_offset;
                double *value_gradient = value_gradients + j * kv_stride + kv_offset;
                for (int d = 0; d < head_dim; d++) {
                    query_gradient[d] += score_gradient * key[d];
                    key_gradient[d] += score_gradient * query[d];
                    value_gradient[d] += probabilities[j] * output_gradient[d];
                }
            }
            float *query_out = dq + ((size_t)t * heads + h) * head_dim;
            for (int d = 0; d < head_dim; d++) query_out[d] = (float)query_gradient[d];
        }
    }
    for (size_t i = 0; i < kv_count; i++) {
        dk[i] = (float)key_gradients[i];
        dv[i] = (float)value_gradients[i];
    }
done:
    free(probabilities);
    free(score_gradients);
    free(query_gradient);
    free(key_gradients);
    free(value_gradients);
    free(slopes);
}

// MARK: - Scalar

/// The scalar kernels' last step: dq = sum_j dS_j k_j (written), dk_j += dS_j q and dv_j += P_j d_out (accumulated),
/// with dS already scaled in `score_gradients`.
static void accumulate_pair_gradients(const float *q, const float *d_out, const float *k, float *dq, float *dk, float *dv,
                                      int keys, int kv_stride, int head_dim, const float *probabilities,
                                      const float *score_gradients) {
    for (int d = 0; d < head_dim; d++) dq[d] = 0;
    for (int j = 0; j < keys; j++) {
        const float *key = k + (size_t)j * kv_stride;
        float *key_gradient = dk + (size_t)j * head_dim, *value_gradient = dv + (size_t)j * head_dim;
        for (int d = 0; d < head_dim; d++) {
            dq[d] += score_gradients[j] * key[d];
            key_gradient[d] += score_gradients[j] * q[d];
            value_gradient[d] += probabilities[j] * d_out[d];
        }
    }
}

static void attention_backward_pair_scalar(const float *q, const float *d_out, const float *k, const float *v,
                                           float *dq, float *dk, float *dv, int keys, int kv_stride, int head_dim,
                                           float scale, float *probabilities, float *score_gradients) {
    float max_score = -INFINITY;
    for (int j = 0; j < keys; j++) {
        const float *key = k + (size_t)j * kv_stride, *value = v + (size_t)j * kv_stride;
        float dot = 0, value_dot = 0;
        for (int d = 0; d < head_dim; d++) {
            dot += q[d] * key[d];
            value_dot += d_out[d] * value[d];
        }
        probabilities[j] = dot * scale;
        score_gradients[j] = value_dot;
        if (probabilities[j] > max_score) max_score = probabilities[j];
    }
    float sum = 0;
    for (int j = 0; j < keys; j++) {
        probabilities[j] = expf(probabilities[j] - max_score);
        sum += probabilities[j];
    }
    float inverse_sum = 1.0f / sum, expected = 0;
    for (int j = 0; j < keys; j++) {
        probabilities[j] *= inverse_sum;
        expected += probabilities[j] * score_gradients[j];
    }
    for (int j = 0; j < keys; j++) score_gradients[j] = probabilities[j] * (score_gradients[j] - expected) * scale;
    accumulate_pair_gradients(q, d_out, k, dq, dk, dv, keys, kv_stride, head_dim, probabilities, score_gradients);
}

// MARK: - AVX2

/// The four horizontal sums of a, b, c, d in one vector.
HK_TARGET_AVX2 HK_INLINE __m128 backward_sum4_avx2(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 pairs = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(pairs), _mm256_extractf128_ps(pairs, 1));
}

HK_TARGET_AVX2 static void attention_backward_pair_avx2(const float *q, const float *d_out, const float *k,
                                                        const float *v, float *dq, float *dk, float *dv, int keys,
                                                        int kv_stride, int head_dim, float scale,
                                                        float *probabilities, float *score_gradients) {
    // Scores and dP, two keys at a time: four dot products reduced together.
    int j = 0;
    for (; j < keys; j += 2) {
        int second = j + 1 < keys ? j + 1 : j; // an odd last key is computed twice, harmlessly
        const float *key0 = k + (size_t)j * kv_stride, *key1 = k + (size_t)second * kv_stride;
        const float *value0 = v + (size_t)j * kv_stride, *value1 = v + (size_t)second * kv_stride;
        __m256 dots[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int d = 0; d < head_dim; d += 8) {
            __m256i mask = hk_tail_mask8((size_t)(head_dim - d < 8 ? head_dim - d : 8));
            __m256 query = _mm256_maskload_ps(q + d, mask), gradient = _mm256_maskload_ps(d_out + d, mask);
            dots[0] = _mm256_fmadd_ps(query, _mm256_maskload_ps(key0 + d, mask), dots[0]);
            dots[1] = _mm256_fmadd_ps(query, _mm256_maskload_ps(key1 + d, mask), dots[1]);
            dots[2] = _mm256_fmadd_ps(gradient, _mm256_maskload_ps(value0 + d, mask), dots[2]);
            dots[3] = _mm256_fmadd_ps(gradient, _mm256_maskload_ps(value1 + d, mask), dots[3]);
        }
        float sums[4];
        _mm_storeu_ps(sums, backward_sum4_avx2(dots[0], dots[1], dots[2], dots[3]));
        probabilities[j] = sums[0] * scale;
        score_gradients[j] = sums[2];
        if (second != j) {
            probabilities[second] = sums[1] * scale;
            score_gradients[second] = sums[3];
        }
    }

    // Softmax (max shift), then D and dS, eight keys at a time.
    __m256 maxima = _mm256_set1_ps(-INFINITY);
    for (j = 0; j < keys; j += 8) {
        __m256i mask = hk_tail_mask8((size_t)(keys - j < 8 ? keys - j : 8));
        __m256 scores = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(probabilities + j, mask),
                                         _mm256_castsi256_ps(mask));
        maxima = _mm256_max_ps(maxima, scores);
    }
    __m256 max_vector = _mm256_set1_ps(hk_max_avx2(maxima));
    __m256 sums = _mm256_setzero_ps();
    for (j = 0; j < keys; j += 8) {
        __m256i mask = hk_tail_mask8((size_t)(keys - j < 8 ? keys - j : 8));
        __m256 weights = hk_exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(probabilities + j, mask), max_vector));
        weights = _mm256_and_ps(weights, _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(probabilities + j, mask, weights);
        sums = _mm256_add_ps(sums, weights);
    }
    __m256 inverse_sum = _mm256_set1_ps(1.0f / hk_sum_avx2(sums));
    __m256 expected_sums = _mm256_setzero_ps();
    for (j = 0; j < keys; j += 8) {
        __m256i mask = hk_tail_mask8((size_t)(keys - j < 8 ? keys - j : 8));
        __m256 weights = _mm256_mul_ps(_mm256_maskload_ps(probabilities + j, mask), inverse_sum);
        _mm256_maskstore_ps(probabilities + j, mask, weights);
        expected_sums = _mm256_fmadd_ps(weights, _mm256_maskload_ps(score_gradients + j, mask), expected_sums);
    }
    __m256 expected = _mm256_set1_ps(hk_sum_avx2(expected_sums)), scale_vector = _mm256_set1_ps(scale);
    for (j = 0; j < keys; j += 8) {
        __m256i mask = hk_tail_mask8((size_t)(keys - j < 8 ? keys - j : 8));
        __m256 difference = _mm256_sub_ps(_mm256_maskload_ps(score_gradients + j, mask), expected);
        __m256 gradient = _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(probabilities + j, mask), difference), scale_vector);
        _mm256_maskstore_ps(score_gradients + j, mask, gradient);
    }

    // dq, dk, dv: 32 features (four registers) at a time over all keys; q and d_out stay in registers.
    for (int first = 0; first < head_dim; first += 32) {
        __m256i masks[4];
        __m256 query[4], gradient[4], accumulators[4];
        for (int part = 0; part < 4; part++) {
            int remaining = head_dim - first - 8 * part;
            masks[part] = hk_tail_mask8((size_t)(remaining < 0 ? 0 : remaining > 8 ? 8 : remaining));
            query[part] = _mm256_maskload_ps(q + first + 8 * part, masks[part]);
            gradient[part] = _mm256_maskload_ps(d_out + first + 8 * part, masks[part]);
            accumulators[part] = _mm256_setzero_ps();
        }
        for (j = 0; j < keys; j++) {
            __m256 score_gradient = _mm256_broadcast_ss(score_gradients + j);
            __m256 probability = _mm256_broadcast_ss(probabilities + j);
            const float *key = k + (size_t)j * kv_stride + first;
            float *key_gradient = dk + (size_t)j * head_dim + first, *value_gradient = dv + (size_t)j * head_dim + first;
            for (int part = 0; part < 4; part++) {
                accumulators[part] = _mm256_fmadd_ps(score_gradient, _mm256_maskload_ps(key + 8 * part, masks[part]),
                                                     accumulators[part]);
                __m256 updated_key = _mm256_fmadd_ps(score_gradient, query[part],
                                                     _mm256_maskload_ps(key_gradient + 8 * part, masks[part]));
                _mm256_maskstore_ps(key_gradient + 8 * part, masks[part], updated_key);
                __m256 updated_value = _mm256_fmadd_ps(probability, gradient[part],
                                                       _mm256_maskload_ps(value_gradient + 8 * part, masks[part]));
                _mm256_maskstore_ps(value_gradient + 8 * part, masks[part], updated_value);
            }
        }
        for (int part = 0; part < 4; part++) _mm256_maskstore_ps(dq + first + 8 * part, masks[part], accumulators[part]);
    }
}

// MARK: - AVX-512

HK_TARGET_AVX512 HK_INLINE __m256 backward_fold_to_256(__m512 value) {
    __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(value), 1));
    return _mm256_add_ps(_mm512_castps512_ps256(value), high);
}

HK_TARGET_AVX512 static void attention_backward_pair_avx512(const float *q, const float *d_out, const float *k,
                                                            const float *v, float *dq, float *dk, float *dv, int keys,
                                                            int kv_stride, int head_dim, float scale,
                                                            float *probabilities, float *score_gradients) {
    // Scores and dP, two keys at a time: four dot products reduced together.
    for (int j = 0; j < keys; j += 2) {
        int second = j + 1 < keys ? j + 1 : j; // an odd last key is computed twice, harmlessly
        const float *key0 = k + (size_t)j * kv_stride, *key1 = k + (size_t)second * kv_stride;
        const float *value0 = v + (size_t)j * kv_stride, *value1 = v + (size_t)second * kv_stride;
        __m512 dots[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int d = 0; d < head_dim; d += 16) {
            __mmask16 mask = hk_tail_mask16((size_t)(head_dim - d));
            __m512 query = _mm512_maskz_loadu_ps(mask, q + d), gradient = _mm512_maskz_loadu_ps(mask, d_out + d);
            dots[0] = _mm512_fmadd_ps(query, _mm512_maskz_loadu_ps(mask, key0 + d), dots[0]);
            dots[1] = _mm512_fmadd_ps(query, _mm512_maskz_loadu_ps(mask, key1 + d), dots[1]);
            dots[2] = _mm512_fmadd_ps(gradient, _mm512_maskz_loadu_ps(mask, value0 + d), dots[2]);
            dots[3] = _mm512_fmadd_ps(gradient, _mm512_maskz_loadu_ps(mask, value1 + d), dots[3]);
        }
        float sums[4];
        _mm_storeu_ps(sums, backward_sum4_avx2(backward_fold_to_256(dots[0]), backward_fold_to_256(dots[1]),
                                               backward_fold_to_256(dots[2]), backward_fold_to_256(dots[3])));
        probabilities[j] = sums[0] * scale;
        score_gradients[j] = sums[2];
        if (second != j) {
            probabilities[second] = sums[1] * scale;
            score_gradients[second] = sums[3];
        }
    }

    // Softmax (max shift), then D and dS, sixteen keys at a time.
    __m512 maxima = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < keys; j += 16) {
        maxima = _mm512_max_ps(maxima, _mm512_mask_loadu_ps(maxima, hk_tail_mask16((size_t)(keys - j)), probabilities + j));
    }
    __m512 max_vector = _mm512_set1_ps(_mm512_reduce_max_ps(maxima));
    __m512 sums = _mm512_setzero_ps();
    for (int j = 0; j < keys; j += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(keys - j));
        __m512 weights = hk_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, probabilities + j), max_vector));
        _mm512_mask_storeu_ps(probabilities + j, mask, weights);
        sums = _mm512_mask_add_ps(sums, mask, sums, weights);
    }
    __m512 inverse_sum = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sums));
    __m512 expected_sums = _mm512_setzero_ps();
    for (int j = 0; j < keys; j += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(keys - j));
        __m512 weights = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, probabilities + j), inverse_sum);
        _mm512_mask_storeu_ps(probabilities + j, mask, weights);
        expected_sums = _mm512_fmadd_ps(weights, _mm512_maskz_loadu_ps(mask, score_gradients + j), expected_sums);
    }
    __m512 expected = _mm512_set1_ps(_mm512_reduce_add_ps(expected_sums)), scale_vector = _mm512_set1_ps(scale);
    for (int j = 0; j < keys; j += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(keys - j));
        __m512 difference = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, score_gradients + j), expected);
        __m512 gradient = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, probabilities + j), difference), scale_vector);
        _mm512_mask_storeu_ps(score_gradients + j, mask, gradient);
    }

    // dq, dk, dv: 64 features (four registers) at a time over all keys; q and d_out stay in registers.
    for (int first = 0; first < head_dim; first += 64) {
        __mmask16 masks[4];
        __m512 query[4], gradient[4], accumulators[4];
        for (int part = 0; part < 4; part++) {
            int remaining = head_dim - first - 16 * part;
            masks[part] = hk_tail_mask16((size_t)(remaining < 0 ? 0 : remaining));
            query[part] = _mm512_maskz_loadu_ps(masks[part], q + first + 16 * part);
            gradient[part] = _mm512_maskz_loadu_ps(masks[part], d_out + first + 16 * part);
            accumulators[part] = _mm512_setzero_ps();
        }
        for (int j = 0; j < keys; j++) {
            __m512 score_gradient = _mm512_set1_ps(score_gradients[j]);
            __m512 probability = _mm512_set1_ps(probabilities[j]);
            const float *key = k + (size_t)j * kv_stride + first;
            float *key_gradient = dk + (size_t)j * head_dim + first, *value_gradient = dv + (size_t)j * head_dim + first;
            for (int part = 0; part < 4; part++) {
                accumulators[part] = _mm512_fmadd_ps(score_gradient, _mm512_maskz_loadu_ps(masks[part], key + 16 * part),
                                                     accumulators[part]);
                __m512 updated_key = _mm512_fmadd_ps(score_gradient, query[part],
                                                     _mm512_maskz_loadu_ps(masks[part], key_gradient + 16 * part));
                _mm512_mask_storeu_ps(key_gradient + 16 * part, masks[part], updated_key);
                __m512 updated_value = _mm512_fmadd_ps(probability, gradient[part],
                                                       _mm512_maskz_loadu_ps(masks[part], value_gradient + 16 * part));
                _mm512_mask_storeu_ps(value_gradient + 16 * part, masks[part], updated_value);
            }
        }
        for (int part = 0; part < 4; part++) _mm512_mask_storeu_ps(dq + first + 16 * part, masks[part], accumulators[part]);
    }
}

// MARK: - Soft-capped scores (Gemma 2)

/// One (query, head) pair with scores s = softcap * tanh(scale q.k / softcap): the scalar kernel's steps, each
/// score gradient times the cap's slope 1 - tanh^2 (kept in `slopes`).
static void attention_backward_pair_softcap(const float *q, const float *d_out, const float *k, const float *v,
                                            float *dq, float *dk, float *dv, int keys, int kv_stride, int head_dim,
                                            float scale, float softcap, float *probabilities, float *score_gradients,
                                            float *slopes) {
    float max_score = -INFINITY;
    for (int j = 0; j < keys; j++) {
        float dot = 0;
        for (int d = 0; d < head_dim; d++) dot += q[d] * k[(size_t)j * kv_stride + d];
        float capped = tanhf(dot * scale / softcap);
        probabilities[j] = softcap * capped;
        slopes[j] = 1 - capped * capped;
        if (probabilities[j] > max_score) max_score = probabilities[j];
    }
    float sum = 0;
    for (int j = 0; j < keys; j++) {
        probabilities[j] = expf(probabilities[j] - max_score);
        sum += probabilities[j];
    }
    float expected = 0;
    for (int j = 0; j < keys; j++) {
        probabilities[j] /= sum;
        float dot = 0;
        for (int d = 0; d < head_dim; d++) dot += d_out[d] * v[(size_t)j * kv_stride + d];
        score_gradients[j] = dot;
        expected += probabilities[j] * dot;
    }
    for (int j = 0; j < keys; j++) {
        score_gradients[j] = probabilities[j] * (score_gradients[j] - expected) * slopes[j] * scale;
    }
    accumulate_pair_gradients(q, d_out, k, dq, dk, dv, keys, kv_stride, head_dim, probabilities, score_gradients);
}

// MARK: - Dispatch

void hk_attention_backward(const float *q /* [n, heads, head_dim] */, const float *k /* [n, kv_heads, head_dim] */,
                           const float *v /* [n, kv_heads, head_dim] */, const float *d_out /* [n, heads, head_dim] */,
                           float *dq /* [n, heads, head_dim] */, float *dk /* [n, kv_heads, head_dim] */,
                           float *dv /* [n, kv_heads, head_dim] */, int n, int heads, int kv_heads, int head_dim,
                           float scale, int window, float softcap) {
    if (n <= 0 || heads <= 0 || kv_heads <= 0 || head_dim <= 0) return;
    attention_backward_pair pair_kernel;
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: pair_kernel = attention_backward_pair_avx512; break;
    case HK_ISA_AVX2: pair_kernel = attention_backward_pair_avx2; break;
    default: pair_kernel = attention_backward_pair_scalar; break;
    }
    int group = heads / kv_heads;
    int kv_stride = kv_heads * head_dim;
    size_t head_rows = (size_t)n * head_dim;
    // Each query head's dk and dv contributions: [heads][2][n][head_dim]. A head's rows are its own, so heads
    // run in parallel without races, and the per-KV-head sums below add them in head order.
    float *partials = malloc(2 * (size_t)heads * head_rows * sizeof(float));
    if (!partials) {
        // Out of memory: make the failure visible rather than leave stale gradients.
        for (size_t i = 0; i < (size_t)n * heads * head_dim; i++) dq[i] = NAN;
        for (size_t i = 0; i < (size_t)n * kv_stride; i++) dk[i] = dv[i] = NAN;
        return;
    }
    // About five multiply-adds per feature per visible key, over the causal triangle.
    double work = 5.0 * heads * head_dim * 0.5 * n * (n + 1.0);
    int threads = hk_thread_count();
    if (threads > heads) threads = heads;
    if (threads <= 1 || work < 65536.0) threads = 1;

#pragma omp parallel num_threads(threads)
    {
        float *scratch = malloc(3 * (size_t)n * sizeof(float));
#pragma omp for schedule(static)
        for (int h = 0; h < heads; h++) {
            float *key_partial = partials + 2 * (size_t)h * head_rows, *value_partial = key_partial + head_rows;
            memset(key_partial, 0, 2 * head_rows * sizeof(float));
            size_t kv_offset = (size_t)(h / group) * head_dim;
            for (int t = 0; t < n; t++) {
                size_t q_offset = ((size_t)t * heads + h) * head_dim;
                // A window leaves keys first ... t: the pair kernel sees them as rows 0 ... from there.
                int first = window > 0 && t + 1 > window ? t + 1 - window : 0;
                size_t key_row = (size_t)first * kv_stride, partial_row = (size_t)first * head_dim;
                if (scratch && softcap > 0) {
                    attention_backward_pair_softcap(q + q_offset, d_out + q_offset, k + kv_offset + key_row,
                                                    v + kv_offset + key_row, dq + q_offset, key_partial + partial_row,
                                                    value_partial + partial_row, t + 1 - first, kv_stride, head_dim,
                                                    scale, softcap, scratch, scratch + n, scratch + 2 * n);
                } else if (scratch) {
                    pair_kernel(q + q_offset, d_out + q_offset, k + kv_offset + key_row, v + kv_offset + key_row,
                                dq + q_offset, key_partial + partial_row, value_partial + partial_row, t + 1 - first,
                                kv_stride, head_dim, scale, scratch, scratch + n);
                } else {
                    for (int d = 0; d < head_dim; d++) dq[q_offset + d] = NAN;
                    key_partial[0] = NAN;
                }
            }
        }
        free(scratch);
        // (implicit barrier) Sum the heads of each KV head, in head order, row by row.
#pragma omp for schedule(static)
        for (int j = 0; j < n; j++) {
            for (int kv_head = 0; kv_head < kv_heads; kv_head++) {
                float *key_out = dk + (size_t)j * kv_stride + (size_t)kv_head * head_dim;
                float *value_out = dv + (size_t)j * kv_stride + (size_t)kv_head * head_dim;
                for (int member = 0; member < group; member++) {
                    const float *key_partial = partials + 2 * (size_t)(kv_head * group + member) * head_rows;
                    const float *key_row = key_partial + (size_t)j * head_dim;
                    const float *value_row = key_partial + head_rows + (size_t)j * head_dim;
                    if (member == 0) {
                        memcpy(key_out, key_row, (size_t)head_dim * sizeof(float));
                        memcpy(value_out, value_row, (size_t)head_dim * sizeof(float));
                    } else {
                        for (int d = 0; d < head_dim; d++) {
                            key_out[d] += key_row[d];
                            value_out[d] += value_row[d];
                        }
                    }
                }
            }
        }
    }
    free(partials);
}
