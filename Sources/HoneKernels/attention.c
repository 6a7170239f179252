// Causal grouped-query attention over one sequence's KV cache.
#include "hk_internal.h"
#include "hone_openmp.h"

#include <stdlib.h>
#include <string.h>

/// One (query token, head) pair: out = softmax(scale * K q) V over `keys` cached rows.
/// k and v point at the pair's KV head in row 0; consecutive rows are kv_stride floats apart.
typedef void (*attention_pair)(const float *q /* [head_dim] */, const float *k /* [keys, kv_stride] */,
                               const float *v /* [keys, kv_stride] */, float *out /* [head_dim] */, int keys,
                               int kv_stride, int head_dim, float scale, float *scores /* [keys] scratch */);

// MARK: - Reference

void hk_attention_ref(const float *q /* [n_q, heads, head_dim] */, const float *k /* [n_kv, kv_heads, head_dim] */,
                      const float *v /* [n_kv, kv_heads, head_dim] */, float *out /* [n_q, heads, head_dim] */,
                      int n_q, int q_start, int heads, int kv_heads, int head_dim, float scale, int window,
                      float softcap) {
    int group = heads / kv_heads;
    size_t kv_stride = (size_t)kv_heads * head_dim;
    int max_keys = q_start + n_q;
    double *scores = malloc((size_t)(max_keys > 0 ? max_keys : 1) * sizeof(double));
    double *accumulator = malloc((size_t)(head_dim > 0 ? head_dim : 1) * sizeof(double));
    if (!scores || !accumulator) {
        free(scores);
        free(accumulator);
        return;
    }
    for (int t = 0; t < n_q; t++) {
        int keys = q_start + t + 1; // causal: the query at absolute position q_start + t sees keys 0 ... itself
        int first = window > 0 && keys > window ? keys - window : 0;  // and, with a window, its last `window` only
        for (int h = 0; h < heads; h++) {
            const float *query = q + ((size_t)t * heads + h) * head_dim;
            size_t kv_offset = (size_t)(h / group) * head_dim;
            double max_score = -INFINITY;
            for (int j = first; j < keys; j++) {
                const float *key = k + (size_t)j * kv_stride + kv_offset;
                double dot = 0;
                for (int d = 0; d < head_dim; d++) dot += (double)query[d] * key[d];
                scores[j] = dot * scale;
                if (softcap > 0) scores[j] = softcap * tanh(scores[j] / softcap);
                if (scores[j] > max_score) max_score = scores[j];
            }
            double sum = 0;
            for (int j = first; j < keys; j++) {
                scores[j] = exp(scores[j] - max_score);
                sum += scores[j];
            }
            for (int d = 0; d < head_dim; d++) accumulator[d] = 0;
            for (int j = first; j < keys; j++) {
                const float *value = v + (size_t)j * kv_stride + kv_offset;
                for (int d = 0; d < head_dim; d++) accumulator[d] += scores[j] * value[d];
            }
            float *output = out + ((size_t)t * heads + h) * head_dim;
            for (int d = 0; d < head_dim; d++) output[d] = (float)(accumulator[d] / sum);
        }
    }
    free(scores);
    free(accumulator);
}

// MARK: - Scalar

static void attention_pair_scalar(const float *q, const float *k, const float *v, float *out, int keys, int kv_stride,
                                  int head_dim, float scale, float *scores) {
    float max_score = -INFINITY;
    for (int j = 0; j < keys; j++) {
        const float *key = k + (size_t)j * kv_stride;
        float dot = 0;
        for (int d = 0; d < head_dim; d++) dot += q[d] * key[d];
        scores[j] = dot * scale;
        if (scores[j] > max_score) max_score = scores[j];
    }
    float sum = 0;
    for (int j = 0; j < keys; j++) {
        scores[j] = expf(scores[j] - max_score);
        sum += scores[j];
    }
    for (int d = 0; d < head_dim; d++) out[d] = 0;
    for (int j = 0; j < keys; j++) {
        const float *value = v + (size_t)j * kv_stride;
        for (int d = 0; d < head_dim; d++) out[d] += scores[j] * value[d];
    }
    float inverse_sum = 1.0f / sum;
    for (int d = 0; d < head_dim; d++) out[d] *= inverse_sum;
}

// MARK: - One token of many heads: the pieces every level shares
//
// Why: a decode step reads every cached key and value, and by pairs each head streamed its own part of the rows
// (256 bytes out of every 768 in SmolLM2's cache, rows 768 bytes apart), each head of a KV head again after the
// one before it, with one set of loads per head. Past a few hundred tokens of context that took as long as the
// weights (SmolLM2 Q4_0, one thread, tg128 after 1,024 tokens: 83.6 tokens/s against 229.5 with an empty cache).
// Here a range of heads goes through the keys in blocks of 64 rows: the heads that share a KV head share each
// loaded key and value (four and two at a time), the rows ahead are prefetched, and what one head reads from
// memory the next finds in cache. Every head's numbers are the pair kernel's, in the same order (the value sums
// carried from block to block through memory), so the outputs equal the pair route's bit for bit.
// The loop over blocks and heads (attention_token_heads) is the same at every level; each level brings its
// products (token_kernels).

/// Keys per block: within a block each head's value sums stay in registers; between blocks they wait in memory.
/// Rows are prefetched TOKEN_DISTANCE ahead into L2 by the first heads of a range (the others find them in L1
/// or L2), a few lines per step of four keys: a block's worth at once, or into L1, measured slower. SmolLM2's
/// shape, one thread, the caches of 30 layers after 1,088 tokens (past the L3), ms per token: pairs 6.1, blocks
/// without prefetching 5.2–5.5, a whole block ahead at its start 4.0–4.6, 16 or 32 rows ahead into L1 5.0–5.4,
/// 24–64 rows ahead into L2 3.3–3.7 (128: 3.5–3.6).
enum { TOKEN_KEY_BLOCK = 64, TOKEN_DISTANCE = 32 };

/// Rows to prefetch while a block is computed: `distance` rows ahead, `bytes` of each from `rows` (the part of
/// the heads in range); none when rows is NULL.
typedef struct {
    const char *rows;
    size_t row_bytes, bytes;
    int distance, keys;
} token_prefetch;

HK_INLINE void prefetch_rows(token_prefetch ahead, int first, int end) {
    if (!ahead.rows) return;
    for (int j = first + ahead.distance; j < end + ahead.distance && j < ahead.keys; j++) {
        const char *row = ahead.rows + (size_t)j * ahead.row_bytes;
        for (size_t offset = 0; offset < ahead.bytes; offset += 64) _mm_prefetch(row + offset, _MM_HINT_T1);
    }
}

/// One level's products for attention_token_heads.
typedef struct {
    int scores_heads, values_heads;  // heads of one KV head per call (they share its loads)
    /// Scores of keys [first, end) for `count` heads: scores[h * ldw + j].
    void (*scores)(int count, const float *q /* [count, head_dim] */, const float *k /* at the KV head */, int first,
                   int end, int kv_stride, int head_dim, float scale, float *scores, size_t ldw, token_prefetch ahead);
    /// Softmax weights of `keys` scores in place; returns 1 / their sum.
    float (*softmax)(float *scores, int keys);
    /// Floats of one head's image of its value sums between blocks.
    size_t (*image_floats)(int head_dim);
    /// Keys [first, end) into the value sums of `count` heads, from and back to their images (zero at the start);
    /// at the last block (end == keys) the heads' outputs instead: sums × inverse[h] into out + h * head_dim.
    void (*values)(int count, const float *v /* at the KV head */, int first, int end, int keys, int kv_stride,
                   int head_dim, const float *weights, size_t ldw, float *images, size_t image_floats,
                   const float *inverse, float *out, token_prefetch ahead);
} token_kernels;

// MARK: - AVX2

/// The four horizontal sums of a, b, c, d in one vector (cheaper than four separate reductions).
HK_TARGET_AVX2 HK_INLINE __m128 sum4_avx2(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 pairs = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(pairs), _mm256_extractf128_ps(pairs, 1));
}

/// Scores of keys [first, end) (first a multiple of 4): four keys at a time, the keys after the last four one by one.
HK_TARGET_AVX2 HK_INLINE void scores_avx2(const float *q, const float *k, int first, int end, int kv_stride,
                                          int head_dim, float scale, float *scores /* [keys] */) {
    int vector_end = head_dim & ~7;
    __m256i tail_mask = hk_tail_mask8((size_t)(head_dim - vector_end));
    int has_tail = vector_end < head_dim;
    int j = first;
    for (; j + 4 <= end; j += 4) {
        __m256 dots[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int d = 0; d < vector_end; d += 8) {
            __m256 query = _mm256_loadu_ps(q + d);
            for (int key = 0; key < 4; key++) {
                dots[key] = _mm256_fmadd_ps(query, _mm256_loadu_ps(k + (size_t)(j + key) * kv_stride + d), dots[key]);
            }
        }
        if (has_tail) {
            __m256 query = _mm256_maskload_ps(q + vector_end, tail_mask);
            for (int key = 0; key < 4; key++) {
                __m256 keys_part = _mm256_maskload_ps(k + (size_t)(j + key) * kv_stride + vector_end, tail_mask);
                dots[key] = _mm256_fmadd_ps(query, keys_part, dots[key]);
            }
        }
        _mm_storeu_ps(scores + j, _mm_mul_ps(sum4_avx2(dots[0], dots[1], dots[2], dots[3]), _mm_set1_ps(scale)));
    }
    for (; j < end; j++) {
        __m256 dot = _mm256_setzero_ps();
        const float *key = k + (size_t)j * kv_stride;
        for (int d = 0; d < vector_end; d += 8) dot = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(key + d), dot);
        if (has_tail) {
            dot = _mm256_fmadd_ps(_mm256_maskload_ps(q + vector_end, tail_mask),
                                  _mm256_maskload_ps(key + vector_end, tail_mask), dot);
        }
        scores[j] = hk_sum_avx2(dot) * scale;
    }
}

/// Softmax weights in place, shifted by the maximum so the largest is exp(0) = 1; returns 1 / their sum.
HK_TARGET_AVX2 HK_INLINE float softmax_weights_avx2(float *scores /* [keys] */, int keys) {
    int key_vector_end = keys & ~7, j;
    __m256 maxima = _mm256_set1_ps(-INFINITY);
    for (j = 0; j < key_vector_end; j += 8) maxima = _mm256_max_ps(maxima, _mm256_loadu_ps(scores + j));
    float max_score = hk_max_avx2(maxima);
    for (; j < keys; j++) max_score = scores[j] > max_score ? scores[j] : max_score;
    __m256 max_vector = _mm256_set1_ps(max_score);
    __m256 sums = _mm256_setzero_ps();
    for (j = 0; j < key_vector_end; j += 8) {
        __m256 weights = hk_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(scores + j), max_vector));
        _mm256_storeu_ps(scores + j, weights);
        sums = _mm256_add_ps(sums, weights);
    }
    float sum = hk_sum_avx2(sums);
    for (; j < keys; j++) {
        scores[j] = expf(scores[j] - max_score);
        sum += scores[j];
    }
    return 1.0f / sum;
}

/// The masks of features [feature, feature + 32) in four registers, the features past head_dim off.
HK_TARGET_AVX2 HK_INLINE void feature_masks_avx2(int head_dim, int feature, __m256i masks[4]) {
    for (int part = 0; part < 4; part++) {
        int remaining = head_dim - feature - 8 * part;
        masks[part] = hk_tail_mask8((size_t)(remaining < 0 ? 0 : remaining > 8 ? 8 : remaining));
    }
}

/// Adds keys [first, end) to the weighted sums of values of features [feature, feature + 32) of `count` heads
/// (1..2, a constant after inlining) that share one KV head, each value row loaded once for them all; each head's
/// sums in the order the pair kernel takes (one chain per register, keys in order).
HK_TARGET_AVX2 HK_INLINE void shared_values_avx2(const int count, const float *v, int first, int end, int kv_stride,
                                                 int head_dim, int feature, const float *weights /* [count, ldw] */,
                                                 size_t ldw, __m256 sums[2][4], token_prefetch ahead) {
    __m256i masks[4];
    feature_masks_avx2(head_dim, feature, masks);
    for (int j = first; j < end; j++) {
        prefetch_rows(ahead, j, j + 1);
        __m256 weight[2];
        for (int h = 0; h < count; h++) weight[h] = _mm256_broadcast_ss(weights + (size_t)h * ldw + j);
        const float *value = v + (size_t)j * kv_stride + feature;
        for (int part = 0; part < 4; part++) {
            __m256 values = _mm256_maskload_ps(value + 8 * part, masks[part]);
            for (int h = 0; h < count; h++) sums[h][part] = _mm256_fmadd_ps(weight[h], values, sums[h][part]);
        }
    }
}

HK_TARGET_AVX2 static void attention_pair_avx2(const float *q, const float *k, const float *v, float *out, int keys,
                                               int kv_stride, int head_dim, float scale, float *scores) {
    scores_avx2(q, k, 0, keys, kv_stride, head_dim, scale, scores);
    float inverse_sum = softmax_weights_avx2(scores, keys);
    // Weighted sum of values, 32 features (four registers) at a time over all keys.
    for (int feature = 0; feature < head_dim; feature += 32) {
        __m256 sums[2][4];
        for (int part = 0; part < 4; part++) sums[0][part] = _mm256_setzero_ps();
        shared_values_avx2(1, v, 0, keys, kv_stride, head_dim, feature, scores, 0, sums, (token_prefetch){0});
        __m256i masks[4];
        feature_masks_avx2(head_dim, feature, masks);
        for (int part = 0; part < 4; part++) {
            _mm256_maskstore_ps(out + feature + 8 * part, masks[part], _mm256_mul_ps(sums[0][part], _mm256_set1_ps(inverse_sum)));
        }
    }
}

// AVX2's products for attention_token_heads: two heads of a KV head at a time (four would not fit sixteen
// registers), per head an image of its 32-feature sums.

/// scores_avx2 for `count` heads (1..2) that share one KV head, each key's features loaded once for them all.
HK_TARGET_AVX2 HK_INLINE void shared_scores_avx2(const int count, const float *q /* [count, head_dim] */, const float *k,
                                                 int first, int end, int kv_stride, int head_dim, float scale,
                                                 float *scores /* [count, ldw] */, size_t ldw, token_prefetch ahead) {
    int vector_end = head_dim & ~7;
    __m256i tail_mask = hk_tail_mask8((size_t)(head_dim - vector_end));
    int j = first;
    for (; j + 4 <= end; j += 4) {
        prefetch_rows(ahead, j, j + 4);
        __m256 dots[2][4];
        for (int h = 0; h < count; h++) {
            for (int key = 0; key < 4; key++) dots[h][key] = _mm256_setzero_ps();
        }
        for (int d = 0; d < head_dim; d += 8) {
            __m256i mask = d < vector_end ? _mm256_set1_epi32(-1) : tail_mask;
            __m256 keys_part[4];
            for (int key = 0; key < 4; key++) keys_part[key] = _mm256_maskload_ps(k + (size_t)(j + key) * kv_stride + d, mask);
            for (int h = 0; h < count; h++) {
                __m256 query = _mm256_maskload_ps(q + (size_t)h * head_dim + d, mask);
                for (int key = 0; key < 4; key++) dots[h][key] = _mm256_fmadd_ps(query, keys_part[key], dots[h][key]);
            }
        }
        for (int h = 0; h < count; h++) {
            _mm_storeu_ps(scores + (size_t)h * ldw + j,
                          _mm_mul_ps(sum4_avx2(dots[h][0], dots[h][1], dots[h][2], dots[h][3]), _mm_set1_ps(scale)));
        }
    }
    for (int h = 0; h < count; h++) {
        if (j < end) scores_avx2(q + (size_t)h * head_dim, k, j, end, kv_stride, head_dim, scale, scores + (size_t)h * ldw);
    }
}

HK_TARGET_AVX2 static void token_scores_avx2(int count, const float *q, const float *k, int first, int end,
                                             int kv_stride, int head_dim, float scale, float *scores, size_t ldw,
                                             token_prefetch ahead) {
    if (count == 1) shared_scores_avx2(1, q, k, first, end, kv_stride, head_dim, scale, scores, ldw, ahead);
    else shared_scores_avx2(2, q, k, first, end, kv_stride, head_dim, scale, scores, ldw, ahead);
}

HK_TARGET_AVX2 static float token_softmax_avx2(float *scores, int keys) { return softmax_weights_avx2(scores, keys); }

static size_t token_image_avx2(int head_dim) { return (size_t)(head_dim + 31) / 32 * 32; }

HK_TARGET_AVX2 static void token_values_avx2(int count, const float *v, int first, int end, int keys, int kv_stride,
                                             int head_dim, const float *weights, size_t ldw, float *images,
                                             size_t image_floats, const float *inverse, float *out,
                                             token_prefetch ahead) {
    for (int feature = 0; feature < head_dim; feature += 32) {
        __m256 sums[2][4];
        for (int h = 0; h < count; h++) {
            for (int part = 0; part < 4; part++) sums[h][part] = _mm256_loadu_ps(images + h * image_floats + feature + 8 * part);
        }
        token_prefetch feature_ahead = feature == 0 ? ahead : (token_prefetch){0};
        if (count == 1) shared_values_avx2(1, v, first, end, kv_stride, head_dim, feature, weights, ldw, sums, feature_ahead);
        else shared_values_avx2(2, v, first, end, kv_stride, head_dim, feature, weights, ldw, sums, feature_ahead);
        __m256i masks[4];
        feature_masks_avx2(head_dim, feature, masks);
        for (int h = 0; h < count; h++) {
            for (int part = 0; part < 4; part++) {
                if (end == keys) {
                    _mm256_maskstore_ps(out + (size_t)h * head_dim + feature + 8 * part, masks[part],
                                        _mm256_mul_ps(sums[h][part], _mm256_set1_ps(inverse[h])));
                } else {
                    _mm256_storeu_ps(images + h * image_floats + feature + 8 * part, sums[h][part]);
                }
            }
        }
    }
}

static const token_kernels token_kernels_avx2 = {2, 2, token_scores_avx2, token_softmax_avx2, token_image_avx2,
                                                 token_values_avx2};

// MARK: - AVX-512

HK_TARGET_AVX512 HK_INLINE __m256 fold_to_256(__m512 value) {
    __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(value), 1));
    return _mm256_add_ps(_mm512_castps512_ps256(value), high);
}

HK_TARGET_AVX512 HK_INLINE __m128 sum4_avx512(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m256 pairs = _mm256_hadd_ps(_mm256_hadd_ps(fold_to_256(a), fold_to_256(b)),
                                  _mm256_hadd_ps(fold_to_256(c), fold_to_256(d)));
    return _mm_add_ps(_mm256_castps256_ps128(pairs), _mm256_extractf128_ps(pairs, 1));
}

/// Scores of keys [first, end) (first a multiple of 4): four keys at a time (four independent FMA chains, one
/// combined reduction), the keys after the last four one by one.
HK_TARGET_AVX512 HK_INLINE void scores_avx512(const float *q, const float *k, int first, int end, int kv_stride,
                                              int head_dim, float scale, float *scores /* [keys] */) {
    int vector_end = head_dim & ~15;
    __mmask16 tail_mask = hk_tail_mask16((size_t)(head_dim - vector_end));
    int j = first;
    for (; j + 4 <= end; j += 4) {
        __m512 dots[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int d = 0; d < vector_end; d += 16) {
            __m512 query = _mm512_loadu_ps(q + d);
            for (int key = 0; key < 4; key++) {
                dots[key] = _mm512_fmadd_ps(query, _mm512_loadu_ps(k + (size_t)(j + key) * kv_stride + d), dots[key]);
            }
        }
        if (tail_mask) {
            __m512 query = _mm512_maskz_loadu_ps(tail_mask, q + vector_end);
            for (int key = 0; key < 4; key++) {
                __m512 keys_part = _mm512_maskz_loadu_ps(tail_mask, k + (size_t)(j + key) * kv_stride + vector_end);
                dots[key] = _mm512_fmadd_ps(query, keys_part, dots[key]);
            }
        }
        _mm_storeu_ps(scores + j, _mm_mul_ps(sum4_avx512(dots[0], dots[1], dots[2], dots[3]), _mm_set1_ps(scale)));
    }
    for (; j < end; j++) {
        __m512 dot = _mm512_setzero_ps();
        const float *key = k + (size_t)j * kv_stride;
        for (int d = 0; d < vector_end; d += 16) dot = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(key + d), dot);
        if (tail_mask) {
            dot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail_mask, q + vector_end),
                                  _mm512_maskz_loadu_ps(tail_mask, key + vector_end), dot);
        }
        scores[j] = _mm512_reduce_add_ps(dot) * scale;
    }
}

/// Softmax weights in place, shifted by the maximum so the largest is exp(0) = 1; returns 1 / their sum.
HK_TARGET_AVX512 HK_INLINE float softmax_weights_avx512(float *scores /* [keys] */, int keys) {
    __m512 maxima = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < keys; j += 16) {
        maxima = _mm512_max_ps(maxima, _mm512_mask_loadu_ps(maxima, hk_tail_mask16((size_t)(keys - j)), scores + j));
    }
    __m512 max_vector = _mm512_set1_ps(_mm512_reduce_max_ps(maxima));
    __m512 sums = _mm512_setzero_ps();
    for (int j = 0; j < keys; j += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(keys - j));
        __m512 weights = hk_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, scores + j), max_vector));
        _mm512_mask_storeu_ps(scores + j, mask, weights);
        sums = _mm512_mask_add_ps(sums, mask, sums, weights);
    }
    return 1.0f / _mm512_reduce_add_ps(sums);
}

/// out[feature ..< feature + 64] = (even + odd sums) × inverse_sum, the features past head_dim left alone.
HK_TARGET_AVX512 HK_INLINE void store_weighted_values_avx512(float *out, int head_dim, int feature, const __m512 even_sums[4],
                                                             const __m512 odd_sums[4], float inverse_sum) {
    for (int part = 0; part < 4; part++) {
        int remaining = head_dim - feature - 16 * part;
        __mmask16 mask = hk_tail_mask16((size_t)(remaining < 0 ? 0 : remaining));
        __m512 total = _mm512_add_ps(even_sums[part], odd_sums[part]);
        _mm512_mask_storeu_ps(out + feature + 16 * part, mask, _mm512_mul_ps(total, _mm512_set1_ps(inverse_sum)));
    }
}

/// scores_avx512 for `count` heads (1..4, a constant after inlining) that share one KV head: each head's numbers
/// are computed in the same order, each key's features loaded once for all of them.
HK_TARGET_AVX512 HK_INLINE void shared_scores(const int count, const float *q /* [count, head_dim] */, const float *k,
                                              int first, int end, int kv_stride, int head_dim, float scale,
                                              float *scores /* [count, ldw] */, size_t ldw, token_prefetch ahead) {
    int vector_end = head_dim & ~15;
    __mmask16 tail_mask = hk_tail_mask16((size_t)(head_dim - vector_end));
    int j = first;
    for (; j + 4 <= end; j += 4) {
        prefetch_rows(ahead, j, j + 4);
        __m512 dots[4][4];
        for (int h = 0; h < count; h++) {
            for (int key = 0; key < 4; key++) dots[h][key] = _mm512_setzero_ps();
        }
        for (int d = 0; d < head_dim; d += 16) {
            __mmask16 mask = d < vector_end ? (__mmask16)0xFFFF : tail_mask;
            __m512 keys_part[4];
            for (int key = 0; key < 4; key++) keys_part[key] = _mm512_maskz_loadu_ps(mask, k + (size_t)(j + key) * kv_stride + d);
            for (int h = 0; h < count; h++) {
                __m512 query = _mm512_maskz_loadu_ps(mask, q + (size_t)h * head_dim + d);
                for (int key = 0; key < 4; key++) dots[h][key] = _mm512_fmadd_ps(query, keys_part[key], dots[h][key]);
            }
        }
        for (int h = 0; h < count; h++) {
            _mm_storeu_ps(scores + (size_t)h * ldw + j,
                          _mm_mul_ps(sum4_avx512(dots[h][0], dots[h][1], dots[h][2], dots[h][3]), _mm_set1_ps(scale)));
        }
    }
    for (int h = 0; h < count; h++) {
        if (j < end) scores_avx512(q + (size_t)h * head_dim, k, j, end, kv_stride, head_dim, scale, scores + (size_t)h * ldw);
    }
}

/// Adds keys [first, end) (first even) to the weighted sums of values of features [feature, feature + 64) of
/// `count` heads (1..2, a constant after inlining) that share one KV head, each value row loaded once for them all:
/// even keys into even_sums, odd keys into odd_sums (eight FMA chains a head hide the FMA latency); a last unpaired
/// key (only at the end of all keys) goes to the even sums.
HK_TARGET_AVX512 HK_INLINE void shared_values(const int count, const float *v, int first, int end, int kv_stride,
                                              int head_dim, int feature, const float *weights /* [count, ldw] */,
                                              size_t ldw, __m512 even_sums[2][4], __m512 odd_sums[2][4],
                                              token_prefetch ahead) {
    __mmask16 masks[4];
    for (int part = 0; part < 4; part++) {
        int remaining = head_dim - feature - 16 * part;
        masks[part] = hk_tail_mask16((size_t)(remaining < 0 ? 0 : remaining));
    }
    int j = first;
    for (; j + 2 <= end; j += 2) {
        prefetch_rows(ahead, j, j + 2);
        const float *even_value = v + (size_t)j * kv_stride + feature, *odd_value = even_value + kv_stride;
        __m512 even_weight[2], odd_weight[2];
        for (int h = 0; h < count; h++) {
            even_weight[h] = _mm512_set1_ps(weights[(size_t)h * ldw + j]);
            odd_weight[h] = _mm512_set1_ps(weights[(size_t)h * ldw + j + 1]);
        }
        for (int part = 0; part < 4; part++) {
            __m512 even_part = _mm512_maskz_loadu_ps(masks[part], even_value + 16 * part);
            __m512 odd_part = _mm512_maskz_loadu_ps(masks[part], odd_value + 16 * part);
            for (int h = 0; h < count; h++) {
                even_sums[h][part] = _mm512_fmadd_ps(even_weight[h], even_part, even_sums[h][part]);
                odd_sums[h][part] = _mm512_fmadd_ps(odd_weight[h], odd_part, odd_sums[h][part]);
            }
        }
    }
    if (j < end) {
        const float *value = v + (size_t)j * kv_stride + feature;
        for (int h = 0; h < count; h++) {
            __m512 weight = _mm512_set1_ps(weights[(size_t)h * ldw + j]);
            for (int part = 0; part < 4; part++) {
                even_sums[h][part] = _mm512_fmadd_ps(weight, _mm512_maskz_loadu_ps(masks[part], value + 16 * part),
                                                     even_sums[h][part]);
            }
        }
    }
}

HK_TARGET_AVX512 static void attention_pair_avx512(const float *q, const float *k, const float *v, float *out,
                                                   int keys, int kv_stride, int head_dim, float scale,
                                                   float *scores) {
    scores_avx512(q, k, 0, keys, kv_stride, head_dim, scale, scores);
    float inverse_sum = softmax_weights_avx512(scores, keys);
    // Weighted sum of values, 64 features (four registers) at a time over all keys.
    for (int feature = 0; feature < head_dim; feature += 64) {
        __m512 even_sums[2][4], odd_sums[2][4];
        for (int part = 0; part < 4; part++) even_sums[0][part] = odd_sums[0][part] = _mm512_setzero_ps();
        shared_values(1, v, 0, keys, kv_stride, head_dim, feature, scores, 0, even_sums, odd_sums, (token_prefetch){0});
        store_weighted_values_avx512(out, head_dim, feature, even_sums[0], odd_sums[0], inverse_sum);
    }
}

HK_TARGET_AVX512 static void token_scores_avx512(int count, const float *q, const float *k, int first, int end,
                                               int kv_stride, int head_dim, float scale, float *scores, size_t ldw,
                                               token_prefetch ahead) {
    switch (count) {
    case 1: shared_scores(1, q, k, first, end, kv_stride, head_dim, scale, scores, ldw, ahead); break;
    case 2: shared_scores(2, q, k, first, end, kv_stride, head_dim, scale, scores, ldw, ahead); break;
    case 3: shared_scores(3, q, k, first, end, kv_stride, head_dim, scale, scores, ldw, ahead); break;
    default: shared_scores(4, q, k, first, end, kv_stride, head_dim, scale, scores, ldw, ahead); break;
    }
}

HK_TARGET_AVX512 static float token_softmax_avx512(float *scores, int keys) { return softmax_weights_avx512(scores, keys); }

/// Even sums, then odd sums, per 64 features.
static size_t token_image_avx512(int head_dim) { return 2 * ((size_t)(head_dim + 63) / 64 * 64); }

HK_TARGET_AVX512 static void token_values_avx512(int count, const float *v, int first, int end, int keys,
                                               int kv_stride, int head_dim, const float *weights, size_t ldw,
                                               float *images, size_t image_floats, const float *inverse, float *out,
                                               token_prefetch ahead) {
    size_t odd = image_floats / 2;
    for (int feature = 0; feature < head_dim; feature += 64) {
        __m512 even_sums[2][4], odd_sums[2][4];
        for (int h = 0; h < count; h++) {
            const float *image = images + h * image_floats + feature;
            for (int part = 0; part < 4; part++) {
                even_sums[h][part] = _mm512_loadu_ps(image + 16 * part);
                odd_sums[h][part] = _mm512_loadu_ps(image + odd + 16 * part);
            }
        }
        token_prefetch feature_ahead = feature == 0 ? ahead : (token_prefetch){0};
        if (count == 1) {
            shared_values(1, v, first, end, kv_stride, head_dim, feature, weights, ldw, even_sums, odd_sums, feature_ahead);
        } else {
            shared_values(2, v, first, end, kv_stride, head_dim, feature, weights, ldw, even_sums, odd_sums, feature_ahead);
        }
        for (int h = 0; h < count; h++) {
            if (end == keys) {
                store_weighted_values_avx512(out + (size_t)h * head_dim, head_dim, feature, even_sums[h], odd_sums[h],
                                             inverse[h]);
                continue;
            }
            float *image = images + h * image_floats + feature;
            for (int part = 0; part < 4; part++) {
                _mm512_storeu_ps(image + 16 * part, even_sums[h][part]);
                _mm512_storeu_ps(image + odd + 16 * part, odd_sums[h][part]);
            }
        }
    }
}

static const token_kernels token_kernels_avx512 = {4, 2, token_scores_avx512, token_softmax_avx512,
                                                   token_image_avx512, token_values_avx512};

// MARK: - One token of many heads: the loop

/// Scratch of one thread for attention_token_heads: per head its weights, the image of its value sums, and 1 / the
/// sum of its weights.
typedef struct {
    float *weights;   // [heads, keys_capacity]
    float *images;    // [heads, image_floats]
    float *inverse;   // [heads]
    size_t keys_capacity, image_floats;
} token_scratch;

/// Heads [first_head, end_head) of one query token over `keys` cached rows (the token's own included).
static void attention_token_heads(const token_kernels *kernels, const float *q /* [heads, head_dim] */,
                                  const float *k /* [keys, kv_stride] */, const float *v /* [keys, kv_stride] */,
                                  float *out /* [heads, head_dim] */, int keys, int group, int kv_stride, int head_dim,
                                  int first_head, int end_head, float scale, token_scratch scratch) {
    int count = end_head - first_head;
    size_t ldw = scratch.keys_capacity, row_bytes = (size_t)kv_stride * sizeof(float);
    // The range's part of each row (its KV heads' features) is what the first heads prefetch.
    size_t segment_first = (size_t)(first_head / group) * head_dim;
    size_t segment_bytes = ((size_t)((end_head - 1) / group + 1) * head_dim - segment_first) * sizeof(float);
    for (int pass = 0; pass < 2; pass++) {
        // pass 0: scores, block by block; pass 1: values, after every head's softmax.
        if (pass == 1) {
            for (int h = 0; h < count; h++) scratch.inverse[h] = kernels->softmax(scratch.weights + (size_t)h * ldw, keys);
            memset(scratch.images, 0, (size_t)count * scratch.image_floats * sizeof(float));
        }
        const float *rows = pass == 0 ? k : v;
        int per_call = pass == 0 ? kernels->scores_heads : kernels->values_heads;
        for (int first = 0; first < keys; first += TOKEN_KEY_BLOCK) {
            int end = keys - first < TOKEN_KEY_BLOCK ? keys : first + TOKEN_KEY_BLOCK;
            for (int head = first_head; head < end_head;) {
                int group_end = (head / group + 1) * group < end_head ? (head / group + 1) * group : end_head;
                int n = group_end - head < per_call ? group_end - head : per_call;
                int h = head - first_head;
                const float *head_rows = rows + (size_t)(head / group) * head_dim;
                token_prefetch ahead = {head == first_head ? (const char *)(rows + segment_first) : NULL, row_bytes,
                                        segment_bytes, TOKEN_DISTANCE, keys};
                if (pass == 0) {
                    kernels->scores(n, q + (size_t)head * head_dim, head_rows, first, end, kv_stride, head_dim, scale,
                                    scratch.weights + (size_t)h * ldw, ldw, ahead);
                } else {
                    kernels->values(n, head_rows, first, end, keys, kv_stride, head_dim, scratch.weights + (size_t)h * ldw,
                                    ldw, scratch.images + (size_t)h * scratch.image_floats, scratch.image_floats,
                                    scratch.inverse + h, out + (size_t)head * head_dim, ahead);
                }
                head += n;
            }
        }
    }
}

/// One-token sequences (decode steps), in one parallel region: each sequence's heads in `parts` contiguous ranges
/// (one per thread when there are fewer sequences than threads). Returns 0, or -1 (nothing computed) without memory.
static int attention_tokens(const token_kernels *kernels, const hk_attention_sequence *sequences, int count, int heads,
                            int kv_heads, int head_dim, float scale) {
    int group = heads / kv_heads;
    int kv_stride = kv_heads * head_dim;
    int max_keys = 1;
    double work = 0;
    for (int s = 0; s < count; s++) {
        int keys = sequences[s].q_start + 1;
        if (keys > max_keys) max_keys = keys;
        work += 2.0 * heads * head_dim * keys;
    }
    int threads = hk_thread_count();
    if (work < 65536.0) threads = 1;
    int parts = threads > count ? (threads + count - 1) / count : 1;
    if (parts > heads) parts = heads;
    int heads_per_part = (heads + parts - 1) / parts;
    parts = (heads + heads_per_part - 1) / heads_per_part;
    long items = (long)count * parts;
    if (threads > items) threads = (int)items;
    size_t keys_capacity = ((size_t)max_keys + 15) / 16 * 16, image_floats = kernels->image_floats(head_dim);
    size_t per_thread = ((size_t)heads_per_part * (keys_capacity + image_floats + 1) + 15) / 16 * 16;
    float *memory = aligned_alloc(64, (size_t)threads * per_thread * sizeof(float));
    if (!memory) return -1;
#pragma omp parallel num_threads(threads)
    {
        float *mine = memory + (size_t)omp_get_thread_num() * per_thread;
        token_scratch scratch = {mine, mine + (size_t)heads_per_part * keys_capacity,
                                 mine + (size_t)heads_per_part * (keys_capacity + image_floats), keys_capacity,
                                 image_floats};
#pragma omp for schedule(static, 1)
        for (long item = 0; item < items; item++) {
            const hk_attention_sequence *sequence = &sequences[item / parts];
            int first_head = (int)(item % parts) * heads_per_part;
            int end_head = first_head + heads_per_part < heads ? first_head + heads_per_part : heads;
            attention_token_heads(kernels, sequence->q, sequence->k, sequence->v, sequence->out, sequence->q_start + 1,
                                  group, kv_stride, head_dim, first_head, end_head, scale, scratch);
        }
    }
    free(memory);
    return 0;
}

// MARK: - Many queries at once: what every level brings

/// Keys transposed per work item: 16 (a whole AVX2 panel, half an AVX-512 one).
enum { KEY_CHUNK = 16 };

/// Scratch of one thread for a level's attention block.
typedef struct {
    float *scores;          // [block rows, ceil(max_keys / panel width) × panel width]
    float *partial_scores;  // [block rows, ceil(max_keys / panel width) × panel width]
    float *queries;         // [block rows, head_dim]
} attention_block_scratch;

/// One level's many-query kernels. `pack_keys` transposes keys [first, first + KEY_CHUNK) of one KV head into
/// panels of `panel_width` keys × head_dim features (panels[p][d][j] = key (panel_width p + j), feature d; zeros
/// past `keys`); `block` computes the rows (token t, head h) for tokens [first_token, first_token + tokens) and
/// heads [first_head, first_head + head_count) of KV head `kv_head`, tokens × head_count ≤ `block_rows`.
typedef struct {
    int panel_width, block_rows;
    void (*pack_keys)(const float *k /* [keys, kv_stride] at the KV head */, int keys, int first, int kv_stride,
                      int head_dim, float *panels);
    void (*block)(const float *q /* [n_q, heads, head_dim] */, const float *v /* [n_kv, kv_heads, head_dim] */,
                  float *out /* [n_q, heads, head_dim] */, int q_start, int heads, int group, int head_dim,
                  int kv_stride, float scale, int kv_head, int first_token, int tokens, int first_head,
                  int head_count, const float *key_panels, attention_block_scratch scratch);
} block_kernels;

/// The block's query rows copied together (token-major), with each row's key count and output.
static void gather_block_rows(const float *q, float *out, int q_start, int heads, int group, int head_dim, int kv_head,
                              int first_token, int tokens, int first_head, int head_count, float *queries,
                              int *limits, float **outputs) {
    for (int t = 0; t < tokens; t++) {
        for (int h = 0; h < head_count; h++) {
            int r = t * head_count + h;
            int head = kv_head * group + first_head + h;
            size_t offset = ((size_t)(first_token + t) * heads + head) * head_dim;
            for (int d = 0; d < head_dim; d++) queries[(size_t)r * head_dim + d] = q[offset + d];
            limits[r] = q_start + first_token + t + 1;
            outputs[r] = out + offset;
        }
    }
}

// MARK: - AVX-512, many queries at once
//
// Why: the pair kernel reduces every (query, key) dot product across lanes and reloads the keys and values for each
// query head, so on short prefill passes (MMLU questions of ~70 tokens) attention ran at a fraction of the FMA rate
// and took 5 % of the time. Here a block of up to 14 query rows (a few tokens × the heads that share one KV head)
// meets 32 keys per pair of vectors: each KV head's keys are transposed once per call into the f32 GEMM's panel
// layout, so each score lane is one key and needs no horizontal sum, and each value row loaded serves every query
// row of the block. A row's numbers depend only on its own query and keys (each score two sums over the halves of
// the features, the softmax sum lane by lane, the values summed over even and odd keys in order), not on the block
// it lands in or the thread count. SmolLM2 pp512 at one thread: 922 → 1082 tokens/s.

/// Keys [first, first + 16) of one KV head into the panels that hold keys [0, keys) as 32 keys × head_dim features:
/// panels[p][d][j] = key (32p + j), feature d; zeros past `keys`.
HK_TARGET_AVX512 static void pack_key_chunk_avx512(const float *k /* [keys, kv_stride] at the KV head */, int keys,
                                                   int first, int kv_stride, int head_dim,
                                                   float *panels /* [ceil(keys/32), head_dim, 32] */) {
    __m512 rows[16], columns[16];
    int count = keys - first < 16 ? keys - first : 16;
    float *panel = panels + (size_t)(first / 32) * head_dim * HK_PANEL_WIDTH + first % 32;
    for (int d = 0; d < head_dim; d += 16) {
        __mmask16 features = hk_tail_mask16((size_t)(head_dim - d));
        for (int j = 0; j < 16; j++) {
            rows[j] = j < count ? _mm512_maskz_loadu_ps(features, k + (size_t)(first + j) * kv_stride + d)
                                : _mm512_setzero_ps();
        }
        hk_transpose_16x16(rows, columns);
        int feature_count = head_dim - d < 16 ? head_dim - d : 16;
        for (int f = 0; f < feature_count; f++) _mm512_storeu_ps(panel + (size_t)(d + f) * HK_PANEL_WIDTH, columns[f]);
    }
    if (first % 32 == 0 && first + 16 >= keys) {
        // The last panel's second half: no keys.
        for (int d = 0; d < head_dim; d++) _mm512_storeu_ps(panel + (size_t)d * HK_PANEL_WIDTH + 16, _mm512_setzero_ps());
    }
}

/// out[r] = Σ_j weights[r, j] v[j] / sums[r] for row_count (a constant after inlining) rows, row r over keys
/// [0, limits[r]). Even and odd keys go to separate sums (as in the pair kernel), 16 features at a time.
HK_TARGET_AVX512 HK_INLINE void weighted_values(const int row_count, const float *weights /* [rows, ldw] */,
                                                size_t ldw, const int *limits /* [rows] */,
                                                const float *v /* [keys, kv_stride] at the KV head */, int kv_stride,
                                                int head_dim, const float *inverse_sums /* [rows] */,
                                                float *const *outputs /* [rows] → [head_dim] */) {
    int common = limits[0], longest = limits[0];
    for (int r = 1; r < row_count; r++) {
        if (limits[r] < common) common = limits[r];
        if (limits[r] > longest) longest = limits[r];
    }
    for (int first = 0; first < head_dim; first += 16) {
        __mmask16 features = hk_tail_mask16((size_t)(head_dim - first));
        __m512 even[HK_PANEL_ROWS], odd[HK_PANEL_ROWS];
        for (int r = 0; r < row_count; r++) even[r] = odd[r] = _mm512_setzero_ps();
        int j = 0;
        for (; j + 2 <= common; j += 2) {
            const float *value = v + (size_t)j * kv_stride + first;
            __m512 even_value = _mm512_maskz_loadu_ps(features, value);
            __m512 odd_value = _mm512_maskz_loadu_ps(features, value + kv_stride);
            for (int r = 0; r < row_count; r++) {
                even[r] = _mm512_fmadd_ps(_mm512_set1_ps(weights[(size_t)r * ldw + j]), even_value, even[r]);
                odd[r] = _mm512_fmadd_ps(_mm512_set1_ps(weights[(size_t)r * ldw + j + 1]), odd_value, odd[r]);
            }
        }
        // The keys left, down to the causal triangle's last ones: only the rows that see them.
        for (; j < longest; j++) {
            __m512 value = _mm512_maskz_loadu_ps(features, v + (size_t)j * kv_stride + first);
            for (int r = 0; r < row_count; r++) {
                if (j >= limits[r]) continue;
                __m512 weight = _mm512_set1_ps(weights[(size_t)r * ldw + j]);
                if (j & 1) {
                    odd[r] = _mm512_fmadd_ps(weight, value, odd[r]);
                } else {
                    even[r] = _mm512_fmadd_ps(weight, value, even[r]);
                }
            }
        }
        for (int r = 0; r < row_count; r++) {
            __m512 total = _mm512_add_ps(even[r], odd[r]);
            _mm512_mask_storeu_ps(outputs[r] + first, features, _mm512_mul_ps(total, _mm512_set1_ps(inverse_sums[r])));
        }
    }
}

HK_TARGET_AVX512 static void weighted_values_rows(int row_count, const float *weights, size_t ldw, const int *limits,
                                                  const float *v, int kv_stride, int head_dim,
                                                  const float *inverse_sums, float *const *outputs) {
    switch (row_count) {
#define HK_VALUES_ROWS_CASE(n) \
    case n: weighted_values(n, weights, ldw, limits, v, kv_stride, head_dim, inverse_sums, outputs); break;
        HK_VALUES_ROWS_CASE(1) HK_VALUES_ROWS_CASE(2) HK_VALUES_ROWS_CASE(3) HK_VALUES_ROWS_CASE(4)
        HK_VALUES_ROWS_CASE(5) HK_VALUES_ROWS_CASE(6) HK_VALUES_ROWS_CASE(7) HK_VALUES_ROWS_CASE(8)
        HK_VALUES_ROWS_CASE(9) HK_VALUES_ROWS_CASE(10) HK_VALUES_ROWS_CASE(11) HK_VALUES_ROWS_CASE(12)
        HK_VALUES_ROWS_CASE(13) HK_VALUES_ROWS_CASE(14)
#undef HK_VALUES_ROWS_CASE
        default: break;
    }
}

/// block_kernels.block at AVX-512: up to 14 rows.
HK_TARGET_AVX512 static void attention_block_avx512(const float *q /* [n_q, heads, head_dim] */,
                                                    const float *v /* [n_kv, kv_heads, head_dim] */,
                                                    float *out /* [n_q, heads, head_dim] */, int q_start,
                                                    int heads, int group, int head_dim, int kv_stride, float scale, int kv_head, int first_token, int tokens,
                                                    int first_head, int head_count,
                                                    const float *key_panels /* the KV head's, from pack_key_chunk_avx512 */,
                                                    attention_block_scratch scratch) {
    int rows = tokens * head_count;
    int keys = q_start + first_token + tokens;  // what the block's last token sees
    int panels = (keys + HK_PANEL_WIDTH - 1) / HK_PANEL_WIDTH;
    size_t ldw = (size_t)panels * HK_PANEL_WIDTH;
    const float *head_values = v + (size_t)kv_head * head_dim;

    int limits[HK_PANEL_ROWS];
    float *outputs[HK_PANEL_ROWS];
    gather_block_rows(q, out, q_start, heads, group, head_dim, kv_head, first_token, tokens, first_head, head_count,
                      scratch.queries, limits, outputs);
    // Each score as two sums over half the features, added: two chains of head_dim / 2 products round less than one
    // of head_dim (the pair kernel's reduction tree is more accurate still).
    int half = head_dim / 2;
    for (int p = 0; p < panels; p++) {
        const float *panel = key_panels + (size_t)p * head_dim * HK_PANEL_WIDTH;
        hk_panel_micro_kernel_rows(rows, scratch.queries, (size_t)head_dim, panel, half,
                                   scratch.scores + (size_t)p * HK_PANEL_WIDTH, ldw, 0xFFFF, 0xFFFF);
        hk_panel_micro_kernel_rows(rows, scratch.queries + half, (size_t)head_dim, panel + (size_t)half * HK_PANEL_WIDTH,
                                   head_dim - half, scratch.partial_scores + (size_t)p * HK_PANEL_WIDTH, ldw, 0xFFFF,
                                   0xFFFF);
    }
    // Softmax weights per row over the keys it sees, shifted by its maximum; the unseen keys are skipped.
    float inverse_sums[HK_PANEL_ROWS];
    __m512 scale_vector = _mm512_set1_ps(scale);
    for (int r = 0; r < rows; r++) {
        float *row = scratch.scores + (size_t)r * ldw;
        const float *partial = scratch.partial_scores + (size_t)r * ldw;
        __m512 maxima = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < limits[r]; j += 16) {
            __mmask16 mask = hk_tail_mask16((size_t)(limits[r] - j));
            __m512 dot = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, row + j), _mm512_maskz_loadu_ps(mask, partial + j));
            __m512 scaled = _mm512_mul_ps(dot, scale_vector);
            _mm512_mask_storeu_ps(row + j, mask, scaled);
            maxima = _mm512_mask_max_ps(maxima, mask, maxima, scaled);
        }
        __m512 max_vector = _mm512_set1_ps(_mm512_reduce_max_ps(maxima));
        __m512 sums = _mm512_setzero_ps();
        for (int j = 0; j < limits[r]; j += 16) {
            __mmask16 mask = hk_tail_mask16((size_t)(limits[r] - j));
            __m512 weights = hk_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, row + j), max_vector));
            _mm512_mask_storeu_ps(row + j, mask, weights);
            sums = _mm512_mask_add_ps(sums, mask, sums, weights);
        }
        inverse_sums[r] = 1.0f / _mm512_reduce_add_ps(sums);
    }
    weighted_values_rows(rows, scratch.scores, ldw, limits, head_values, kv_stride, head_dim, inverse_sums, outputs);
}

// MARK: - AVX2, many queries at once
//
// AVX-512's route on AVX2's registers: panels of 16 keys (two vectors) times blocks of up to 6 query rows, the
// AVX2 GEMM micro-kernel for the scores, 8 features at a time for the values. Why: by pairs, attention took 6 % of
// an MMLU pass on a Zen 3 core (each score reduced across lanes, keys and values reloaded per query head). One
// thread, SmolLM2's heads, 16 documents of 70 tokens after a 16-token prefix: 30 → 42 GFLOP/s; SmolLM2 f32 pp512:
// 344 → 372 tokens/s.

/// block_kernels.pack_keys at AVX2: the 16 keys fill one panel, in 8 × 8 transposes (zero-padded at the edges).
HK_TARGET_AVX2 static void pack_key_chunk_avx2(const float *k /* [keys, kv_stride] at the KV head */, int keys, int first,
                                               int kv_stride, int head_dim,
                                               float *panels /* [ceil(keys/16), head_dim, 16] */) {
    int count = keys - first < KEY_CHUNK ? keys - first : KEY_CHUNK;
    float *panel = panels + (size_t)(first / HK_PANEL_WIDTH_AVX2) * head_dim * HK_PANEL_WIDTH_AVX2;
    for (int j = 0; j < HK_PANEL_WIDTH_AVX2; j += 8) {
        for (int d = 0; d < head_dim; d += 8) {
            float edge[8 * 8], transposed[8 * 8];
            int key_count = count - j < 8 ? (count - j > 0 ? count - j : 0) : 8;
            int feature_count = head_dim - d < 8 ? head_dim - d : 8;
            const float *source = edge;
            size_t source_stride = 8;
            if (key_count == 8 && feature_count == 8) {
                source = k + (size_t)(first + j) * kv_stride + d;
                source_stride = (size_t)kv_stride;
            } else {
                memset(edge, 0, sizeof edge);
                for (int key = 0; key < key_count; key++) {
                    memcpy(edge + 8 * key, k + (size_t)(first + j + key) * kv_stride + d,
                           (size_t)feature_count * sizeof(float));
                }
            }
            if (feature_count == 8) {
                hk_transpose_8x8_avx2(source, source_stride, panel + (size_t)d * HK_PANEL_WIDTH_AVX2 + j,
                                      HK_PANEL_WIDTH_AVX2);
            } else {
                hk_transpose_8x8_avx2(source, source_stride, transposed, 8);
                for (int f = 0; f < feature_count; f++) {
                    memcpy(panel + (size_t)(d + f) * HK_PANEL_WIDTH_AVX2 + j, transposed + 8 * f, 8 * sizeof(float));
                }
            }
        }
    }
}

/// Features [first, first + 8) of a value row: a plain load, or a masked one for the last, partial vector
/// (`masked` a constant after inlining).
HK_TARGET_AVX2 HK_INLINE __m256 value_features_avx2(const float *value, __m256i features, const int masked) {
    return masked ? _mm256_maskload_ps(value, features) : _mm256_loadu_ps(value);
}

/// out[r][first ..< first + 8] = Σ_j weights[r, j] v[j] / sums[r] for row_count (a constant after inlining, 1–6)
/// rows, row r over keys [0, limits[r]); keys below `common` are seen by every row. Even and odd keys go to separate
/// sums (as at AVX-512).
HK_TARGET_AVX2 HK_INLINE void weighted_value_features_avx2(const int row_count, const int masked,
                                                           const float *weights /* [rows, ldw] */, size_t ldw,
                                                           const int *limits /* [rows] */, int common, int longest,
                                                           const float *v /* [keys, kv_stride] */, int kv_stride,
                                                           int first, __m256i features,
                                                           const float *inverse_sums /* [rows] */,
                                                           float *const *outputs /* [rows] → [head_dim] */) {
    __m256 even[HK_PANEL_ROWS_AVX2], odd[HK_PANEL_ROWS_AVX2];
    for (int r = 0; r < row_count; r++) even[r] = odd[r] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 2 <= common; j += 2) {
        const float *value = v + (size_t)j * kv_stride + first;
        __m256 even_value = value_features_avx2(value, features, masked);
        __m256 odd_value = value_features_avx2(value + kv_stride, features, masked);
        for (int r = 0; r < row_count; r++) {
            even[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + (size_t)r * ldw + j), even_value, even[r]);
            odd[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + (size_t)r * ldw + j + 1), odd_value, odd[r]);
        }
    }
    // The keys left, down to the causal triangle's last ones: only the rows that see them.
    for (; j < longest; j++) {
        __m256 value = value_features_avx2(v + (size_t)j * kv_stride + first, features, masked);
        for (int r = 0; r < row_count; r++) {
            if (j >= limits[r]) continue;
            __m256 weight = _mm256_broadcast_ss(weights + (size_t)r * ldw + j);
            if (j & 1) {
                odd[r] = _mm256_fmadd_ps(weight, value, odd[r]);
            } else {
                even[r] = _mm256_fmadd_ps(weight, value, even[r]);
            }
        }
    }
    for (int r = 0; r < row_count; r++) {
        __m256 total = _mm256_mul_ps(_mm256_add_ps(even[r], odd[r]), _mm256_set1_ps(inverse_sums[r]));
        if (masked) {
            _mm256_maskstore_ps(outputs[r] + first, features, total);
        } else {
            _mm256_storeu_ps(outputs[r] + first, total);
        }
    }
}

/// out[r] = Σ_j weights[r, j] v[j] / sums[r] for row_count (a constant after inlining, 1–6) rows, row r over keys
/// [0, limits[r]), 8 features at a time.
HK_TARGET_AVX2 HK_INLINE void weighted_values_avx2(const int row_count, const float *weights /* [rows, ldw] */,
                                                   size_t ldw, const int *limits /* [rows] */,
                                                   const float *v /* [keys, kv_stride] at the KV head */,
                                                   int kv_stride, int head_dim, const float *inverse_sums /* [rows] */,
                                                   float *const *outputs /* [rows] → [head_dim] */) {
    int common = limits[0], longest = limits[0];
    for (int r = 1; r < row_count; r++) {
        if (limits[r] < common) common = limits[r];
        if (limits[r] > longest) longest = limits[r];
    }
    int first = 0;
    __m256i all = _mm256_set1_epi32(-1);
    for (; first + 8 <= head_dim; first += 8) {
        weighted_value_features_avx2(row_count, 0, weights, ldw, limits, common, longest, v, kv_stride, first, all,
                                     inverse_sums, outputs);
    }
    if (first < head_dim) {
        weighted_value_features_avx2(row_count, 1, weights, ldw, limits, common, longest, v, kv_stride, first,
                                     hk_tail_mask8((size_t)(head_dim - first)), inverse_sums, outputs);
    }
}

HK_TARGET_AVX2 static void weighted_values_rows_avx2(int row_count, const float *weights, size_t ldw, const int *limits,
                                                     const float *v, int kv_stride, int head_dim,
                                                     const float *inverse_sums, float *const *outputs) {
    switch (row_count) {
#define HK_VALUES_ROWS_CASE(n) \
    case n: weighted_values_avx2(n, weights, ldw, limits, v, kv_stride, head_dim, inverse_sums, outputs); break;
        HK_VALUES_ROWS_CASE(1) HK_VALUES_ROWS_CASE(2) HK_VALUES_ROWS_CASE(3) HK_VALUES_ROWS_CASE(4)
        HK_VALUES_ROWS_CASE(5) HK_VALUES_ROWS_CASE(6)
#undef HK_VALUES_ROWS_CASE
        default: break;
    }
}

/// block_kernels.block at AVX2: up to 6 rows.
HK_TARGET_AVX2 static void attention_block_avx2(const float *q /* [n_q, heads, head_dim] */,
                                                const float *v /* [n_kv, kv_heads, head_dim] */,
                                                float *out /* [n_q, heads, head_dim] */, int q_start, int heads,
                                                int group, int head_dim, int kv_stride, float scale, int kv_head,
                                                int first_token, int tokens, int first_head, int head_count,
                                                const float *key_panels /* the KV head's, from pack_key_chunk_avx2 */,
                                                attention_block_scratch scratch) {
    int rows = tokens * head_count;
    int keys = q_start + first_token + tokens;  // what the block's last token sees
    int panels = (keys + HK_PANEL_WIDTH_AVX2 - 1) / HK_PANEL_WIDTH_AVX2;
    size_t ldw = (size_t)panels * HK_PANEL_WIDTH_AVX2;
    int limits[HK_PANEL_ROWS_AVX2];
    float *outputs[HK_PANEL_ROWS_AVX2];
    gather_block_rows(q, out, q_start, heads, group, head_dim, kv_head, first_token, tokens, first_head, head_count,
                      scratch.queries, limits, outputs);
    // Each score as two sums over half the features, added (as at AVX-512).
    int half = head_dim / 2;
    __m256i all = _mm256_set1_epi32(-1);
    for (int p = 0; p < panels; p++) {
        const float *panel = key_panels + (size_t)p * head_dim * HK_PANEL_WIDTH_AVX2;
        hk_panel_micro_kernel_rows_avx2(rows, scratch.queries, (size_t)head_dim, panel, half,
                                        scratch.scores + (size_t)p * HK_PANEL_WIDTH_AVX2, ldw, all, all);
        hk_panel_micro_kernel_rows_avx2(rows, scratch.queries + half, (size_t)head_dim,
                                        panel + (size_t)half * HK_PANEL_WIDTH_AVX2, head_dim - half,
                                        scratch.partial_scores + (size_t)p * HK_PANEL_WIDTH_AVX2, ldw, all, all);
    }
    // Softmax weights per row over the keys it sees, shifted by its maximum; the unseen keys are skipped.
    float inverse_sums[HK_PANEL_ROWS_AVX2];
    __m256 scale_vector = _mm256_set1_ps(scale);
    for (int r = 0; r < rows; r++) {
        float *row = scratch.scores + (size_t)r * ldw;
        const float *partial = scratch.partial_scores + (size_t)r * ldw;
        // Whole vectors: the row is padded to whole panels of finite scores (keys past the last are zeros), and
        // what lands past limits[r] is never read as a weight; only the maximum and the sum leave those lanes out.
        __m256 maxima = _mm256_set1_ps(-INFINITY);
        for (int j = 0; j < limits[r]; j += 8) {
            __m256 mask = _mm256_castsi256_ps(hk_tail_mask8((size_t)(limits[r] - j)));
            __m256 scaled = _mm256_mul_ps(_mm256_add_ps(_mm256_load_ps(row + j), _mm256_load_ps(partial + j)), scale_vector);
            _mm256_store_ps(row + j, scaled);
            maxima = _mm256_blendv_ps(maxima, _mm256_max_ps(maxima, scaled), mask);
        }
        __m256 max_vector = _mm256_set1_ps(hk_max_avx2(maxima));
        __m256 sums = _mm256_setzero_ps();
        for (int j = 0; j < limits[r]; j += 8) {
            __m256 mask = _mm256_castsi256_ps(hk_tail_mask8((size_t)(limits[r] - j)));
            __m256 weights = hk_exp_avx2(_mm256_sub_ps(_mm256_load_ps(row + j), max_vector));
            _mm256_store_ps(row + j, weights);
            sums = _mm256_add_ps(sums, _mm256_and_ps(weights, mask));
        }
        inverse_sums[r] = 1.0f / hk_sum_avx2(sums);
    }
    weighted_values_rows_avx2(rows, scratch.scores, ldw, limits, v + (size_t)kv_head * head_dim, kv_stride, head_dim,
                              inverse_sums, outputs);
}

// MARK: - Many queries at once: the loop

static const block_kernels avx512_blocks = {HK_PANEL_WIDTH, HK_PANEL_ROWS, pack_key_chunk_avx512, attention_block_avx512};
static const block_kernels avx2_blocks = {HK_PANEL_WIDTH_AVX2, HK_PANEL_ROWS_AVX2, pack_key_chunk_avx2,
                                          attention_block_avx2};

/// Multiply-adds of one sequence's attention (scores plus values), keys summed over the causal triangle.
static double attention_work(int n_q, int q_start, int heads, int head_dim) {
    return 2.0 * heads * head_dim * ((double)n_q * q_start + 0.5 * n_q * (n_q + 1.0));
}

/// Where one sequence's blocks and key panels lie in a batch's shared numbering and memory.
typedef struct {
    int token_blocks;
    int max_keys;          // q_start + n_q
    int key_chunks;        // 16-key chunks to transpose per KV head
    size_t panel_floats;   // one KV head's key panels
    size_t panel_offset;   // this sequence's first KV head's panels in the batch's key memory
    long first_chunk;      // this sequence's first (KV head, chunk) item in the batch
    long first_block;      // this sequence's first block in the batch
} sequence_blocks;

/// The sequence that owns batch item `index` (a block when `by_block`, else a key chunk), moving `cursor` forward:
/// each thread walks its items in ascending order, so the search is amortised constant.
static int owning_sequence(const sequence_blocks *layout, int count, long index, int *cursor, int by_block) {
    int s = *cursor;
    if (s >= count || (by_block ? layout[s].first_block : layout[s].first_chunk) > index) s = 0;
    while (s + 1 < count && (by_block ? layout[s + 1].first_block : layout[s + 1].first_chunk) <= index) s++;
    *cursor = s;
    return s;
}

/// What every block of a batch needs to know: kernels, sequences, their layout and the shape.
typedef struct {
    const block_kernels *kernels;
    const hk_attention_sequence *sequences;
    const sequence_blocks *layout;
    float *key_panels;
    int heads, group, head_dim, kv_stride;
    int head_blocks, head_count, tokens_per_block;  // a block: tokens_per_block tokens × head_count heads
    float scale;
} block_pass;

/// Key chunk `item` (KV head-major) of sequence s into its panels.
static void pack_chunk(const block_pass *pass, int s, int item) {
    const sequence_blocks *b = &pass->layout[s];
    int kv_head = item / b->key_chunks;
    pass->kernels->pack_keys(pass->sequences[s].k + (size_t)kv_head * pass->head_dim, b->max_keys,
                             (item % b->key_chunks) * KEY_CHUNK, pass->kv_stride, pass->head_dim,
                             pass->key_panels + b->panel_offset + (size_t)kv_head * b->panel_floats);
}

/// Block `item` (KV head, then head block, then token block) of sequence s.
static void run_block(const block_pass *pass, int s, int item, attention_block_scratch scratch) {
    const sequence_blocks *b = &pass->layout[s];
    const hk_attention_sequence *sequence = &pass->sequences[s];
    int per_kv_head = pass->head_blocks * b->token_blocks;
    int kv_head = item / per_kv_head, rest = item % per_kv_head;
    int first_head = (rest / b->token_blocks) * pass->head_count;
    int first_token = (rest % b->token_blocks) * pass->tokens_per_block;
    int tokens = sequence->n_q - first_token < pass->tokens_per_block ? sequence->n_q - first_token : pass->tokens_per_block;
    int block_heads = pass->group - first_head < pass->head_count ? pass->group - first_head : pass->head_count;
    pass->kernels->block(sequence->q, sequence->v, sequence->out, sequence->q_start, pass->heads, pass->group,
                         pass->head_dim, pass->kv_stride, pass->scale, kv_head, first_token, tokens, first_head,
                         block_heads, pass->key_panels + b->panel_offset + (size_t)kv_head * b->panel_floats, scratch);
}

/// Every query of every sequence in blocks of up to `kernels->block_rows` rows, in one parallel region. Short
/// sequences (MMLU documents of ~70 tokens) each used to take an OpenMP region of their own, which two threads ran
/// barely faster than one. With several sequences a thread each, each thread takes whole sequences (contiguous
/// shares of the work): it transposes their keys and runs their blocks, reading only panels it wrote, with no
/// barrier between (transposing everything first, then dealing blocks round-robin, ran 16 such documents at two
/// threads no faster than the pair kernel on a Zen 3). Fewer, longer sequences (a prompt) have all keys
/// transposed first, then all blocks dealt round-robin, so no thread gets all the long ones. A row's numbers are
/// the same either way. Returns 0, or -1 (nothing computed) without memory.
static int attention_blocks(const block_kernels *kernels, const hk_attention_sequence *sequences, int count, int heads,
                            int kv_heads, int head_dim, float scale, int threads) {
    int group = heads / kv_heads;
    int width = kernels->panel_width, block_rows = kernels->block_rows;
    // A block: a few tokens × the query heads of one KV head's group (all of it when it fits, else equal parts).
    int head_blocks = (group + block_rows - 1) / block_rows;
    int head_count = (group + head_blocks - 1) / head_blocks;
    sequence_blocks *layout = malloc((size_t)count * sizeof(sequence_blocks));
    double *work_before = malloc((size_t)(count + 1) * sizeof(double));  // [count + 1] prefix sums of work
    if (!layout || !work_before) {
        free(layout);
        free(work_before);
        return -1;
    }
    block_pass pass = {kernels, sequences, layout, NULL, heads, group, head_dim, kv_heads * head_dim,
                       head_blocks, head_count, block_rows / head_count, scale};
    size_t key_floats = 0, score_floats = 0;
    long chunks = 0, blocks = 0;
    work_before[0] = 0;
    for (int s = 0; s < count; s++) {
        sequence_blocks *b = &layout[s];
        b->token_blocks = (sequences[s].n_q + pass.tokens_per_block - 1) / pass.tokens_per_block;
        b->max_keys = sequences[s].q_start + sequences[s].n_q;
        b->key_chunks = (b->max_keys + KEY_CHUNK - 1) / KEY_CHUNK;
        int panels = (b->max_keys + width - 1) / width;
        b->panel_floats = ((size_t)panels * head_dim * width + 15) / 16 * 16;
        b->panel_offset = key_floats;
        b->first_chunk = chunks;
        b->first_block = blocks;
        key_floats += (size_t)kv_heads * b->panel_floats;
        chunks += (long)kv_heads * b->key_chunks;
        blocks += (long)kv_heads * head_blocks * b->token_blocks;
        size_t scores = (size_t)block_rows * panels * width;
        if (scores > score_floats) score_floats = scores;
        work_before[s + 1] = work_before[s] + attention_work(sequences[s].n_q, sequences[s].q_start, heads, head_dim);
    }
    size_t per_thread = (2 * score_floats + (size_t)block_rows * head_dim + 15) / 16 * 16;
    float *memory = aligned_alloc(64, (key_floats + (size_t)threads * per_thread) * sizeof(float));
    if (!memory) {
        free(layout);
        free(work_before);
        return -1;
    }
    pass.key_panels = memory;
    float *thread_memory = memory + key_floats;
    int by_sequence = count >= 2 * threads;
#pragma omp parallel num_threads(threads)
    {
        int thread = omp_get_thread_num(), team = omp_get_num_threads();
        float *mine = thread_memory + (size_t)thread * per_thread;
        attention_block_scratch scratch = {mine, mine + score_floats, mine + 2 * score_floats};
        if (by_sequence) {
            // The sequences whose work midpoints fall in this thread's share of the total.
            double total = work_before[count];
            for (int s = 0; s < count; s++) {
                double midpoint = 0.5 * (work_before[s] + work_before[s + 1]);
                int owner = total > 0 ? (int)(midpoint / total * team) : s % team;
                if ((owner < team ? owner : team - 1) != thread) continue;
                for (int item = 0; item < kv_heads * layout[s].key_chunks; item++) pack_chunk(&pass, s, item);
                for (int item = 0; item < kv_heads * head_blocks * layout[s].token_blocks; item++) {
                    run_block(&pass, s, item, scratch);
                }
            }
        } else {
            // Every KV head's keys transposed once, for all the blocks that read them.
            int cursor = 0;
#pragma omp for schedule(static)
            for (long chunk = 0; chunk < chunks; chunk++) {
                int s = owning_sequence(layout, count, chunk, &cursor, 0);
                pack_chunk(&pass, s, (int)(chunk - layout[s].first_chunk));
            }
            cursor = 0;
            // Later tokens see more keys: blocks are dealt round-robin, so no thread gets all the long ones.
#pragma omp for schedule(static, 1)
            for (long block = 0; block < blocks; block++) {
                int s = owning_sequence(layout, count, block, &cursor, 1);
                run_block(&pass, s, (int)(block - layout[s].first_block), scratch);
            }
        }
    }
    free(memory);
    free(layout);
    free(work_before);
    return 0;
}

// MARK: - Dispatch

/// Sequences through the pair kernel, in one parallel region: decode steps (one query reads each key once, without
/// transposing it; a batch of generations or served requests has one per sequence), and every sequence at the
/// scalar level. `first_pair[s]` numbers sequence s's first (query, head) pair in the batch ([count + 1]).
static void attention_by_pairs(const hk_attention_sequence *sequences, int count, const long *first_pair, int heads,
                               int kv_heads, int head_dim, float scale) {
    attention_pair pair_kernel;
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: pair_kernel = attention_pair_avx512; break;
    case HK_ISA_AVX2: pair_kernel = attention_pair_avx2; break;
    default: pair_kernel = attention_pair_scalar; break;
    }
    int group = heads / kv_heads;
    int kv_stride = kv_heads * head_dim;
    long pairs = first_pair[count];
    int max_keys = 1;
    double work = 0;
    for (int s = 0; s < count; s++) {
        if (sequences[s].q_start + sequences[s].n_q > max_keys) max_keys = sequences[s].q_start + sequences[s].n_q;
        work += attention_work(sequences[s].n_q, sequences[s].q_start, heads, head_dim);
    }
    int threads = hk_thread_count();
    if (threads > pairs) threads = (int)pairs;
    if (threads <= 1 || work < 65536.0) threads = 1;

#pragma omp parallel num_threads(threads)
    {
        // One scores buffer per thread, reused for all its pairs.
        float *scores = malloc((size_t)max_keys * sizeof(float));
        int s = 0;
        // Within a sequence, pairs run KV head by KV head (then token, then head within the group): K and V of one
        // KV head (256 KB for 512 tokens of 64 features) stay in L2 while every query of that head uses them,
        // instead of all KV heads streaming from L3 for each token (measured 2x on prefill). A chunk is the `group`
        // heads of one token (never split across sequences); round-robin chunks balance the causal triangle. Each
        // pair is computed by the same code whatever thread runs it, so results do not depend on the thread count.
#pragma omp for schedule(static, group)
        for (long pair = 0; pair < pairs; pair++) {
            if (pair < first_pair[s]) s = 0;
            while (first_pair[s + 1] <= pair) s++;
            const hk_attention_sequence *sequence = &sequences[s];
            int local = (int)(pair - first_pair[s]), n_q = sequence->n_q;
            int kv_head = local / (n_q * group), within_kv_head = local % (n_q * group);
            int t = within_kv_head / group, h = kv_head * group + within_kv_head % group;
            size_t kv_offset = (size_t)kv_head * head_dim;
            size_t q_offset = ((size_t)t * heads + h) * head_dim;
            if (scores) {
                pair_kernel(sequence->q + q_offset, sequence->k + kv_offset, sequence->v + kv_offset,
                            sequence->out + q_offset, sequence->q_start + t + 1, kv_stride, head_dim, scale, scores);
            }
        }
        free(scores);
    }
}

void hk_attention_batch(const hk_attention_sequence *sequences, int count, int heads, int kv_heads, int head_dim,
                        float scale) {
    if (count <= 0 || heads <= 0 || kv_heads <= 0 || head_dim <= 0) return;
    // Sequences of several queries (prefill, scoring) go through the blocked kernel together, the others through the
    // pair kernel together; all of them through the pair kernel when the blocked route is unavailable.
    // A few sequences (hk_attention's one) need no allocation.
    enum { ON_STACK = 16 };
    hk_attention_sequence chosen_on_stack[ON_STACK];
    long first_pair_on_stack[ON_STACK + 1];
    int allocated = count > ON_STACK;
    hk_attention_sequence *chosen = allocated ? malloc((size_t)count * sizeof(hk_attention_sequence)) : chosen_on_stack;
    long *first_pair = allocated ? malloc((size_t)(count + 1) * sizeof(long)) : first_pair_on_stack;
    if (!chosen || !first_pair) {
        if (allocated) {
            free(chosen);
            free(first_pair);
        }
        return;
    }
    int blocked = 0;
    const block_kernels *blocks = hk_isa_current() >= HK_ISA_AVX512 ? &avx512_blocks
                                  : hk_isa_current() == HK_ISA_AVX2  ? &avx2_blocks
                                                                     : NULL;
    if (blocks) {
        double work = 0;
        int n = 0;
        for (int s = 0; s < count; s++) {
            if (sequences[s].n_q > 1) {
                chosen[n++] = sequences[s];
                work += attention_work(sequences[s].n_q, sequences[s].q_start, heads, head_dim);
            }
        }
        int threads = work < 65536.0 ? 1 : hk_thread_count();
        blocked = n > 0 && attention_blocks(blocks, chosen, n, heads, kv_heads, head_dim, scale, threads) == 0;
    }
    // One-token sequences (decode steps) through the token route.
    int tokens_done = 0;
    const token_kernels *kernels = hk_isa_current() >= HK_ISA_AVX512 ? &token_kernels_avx512
                                   : hk_isa_current() == HK_ISA_AVX2  ? &token_kernels_avx2
                                                                      : NULL;
    if (kernels) {
        int n = 0;
        for (int s = 0; s < count; s++) {
            if (sequences[s].n_q == 1) chosen[n++] = sequences[s];
        }
        tokens_done = n > 0 && attention_tokens(kernels, chosen, n, heads, kv_heads, head_dim, scale) == 0;
    }
    int n = 0;
    first_pair[0] = 0;
    for (int s = 0; s < count; s++) {
        if (sequences[s].n_q <= 0 || (blocked && sequences[s].n_q > 1) || (tokens_done && sequences[s].n_q == 1)) continue;
        chosen[n] = sequences[s];
        first_pair[n + 1] = first_pair[n] + (long)sequences[s].n_q * heads;
        n++;
    }
    if (n > 0) attention_by_pairs(chosen, n, first_pair, heads, kv_heads, head_dim, scale);
    if (allocated) {
        free(chosen);
        free(first_pair);
    }
}

// MARK: - Soft-capped scores (Gemma 2)

/// q . k over head_dim in eight partial sums (so the compiler can keep them in one vector register).
static float dot_product(const float *a /* [n] */, const float *b /* [n] */, int n) {
    float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int d = 0;
    for (; d + 8 <= n; d += 8) {
        for (int lane = 0; lane < 8; lane++) partial[lane] += a[d + lane] * b[d + lane];
    }
    float total = 0;
    for (int lane = 0; lane < 8; lane++) total += partial[lane];
    for (; d < n; d++) total += a[d] * b[d];
    return total;
}

void hk_attention_batch_softcap(const hk_attention_sequence *sequences, int count, int heads, int kv_heads,
                                int head_dim, float scale, float softcap) {
    if (count <= 0 || heads <= 0 || kv_heads <= 0 || head_dim <= 0) return;
    int group = heads / kv_heads, kv_stride = kv_heads * head_dim, max_keys = 1;
    double work = 0;
    for (int s = 0; s < count; s++) {
        if (sequences[s].q_start + sequences[s].n_q > max_keys) max_keys = sequences[s].q_start + sequences[s].n_q;
        work += attention_work(sequences[s].n_q, sequences[s].q_start, heads, head_dim);
    }
    int threads = work < 65536.0 ? 1 : hk_thread_count();
    long items = (long)count * heads;  // (sequence, head) pairs, each a thread's own output rows
#pragma omp parallel num_threads(threads)
    {
        float *scores = malloc((size_t)max_keys * sizeof(float));
        float *accumulator = malloc((size_t)head_dim * sizeof(float));
#pragma omp for schedule(static, 1)
        for (long item = 0; item < items; item++) {
            const hk_attention_sequence *sequence = &sequences[item / heads];
            int h = (int)(item % heads);
            for (int t = 0; t < sequence->n_q; t++) {
                float *output = sequence->out + ((size_t)t * heads + h) * head_dim;
                if (!scores || !accumulator) {
                    for (int d = 0; d < head_dim; d++) output[d] = NAN;  // out of memory: visible, not stale
                    continue;
                }
                const float *query = sequence->q + ((size_t)t * heads + h) * head_dim;
                const float *keys = sequence->k + (size_t)(h / group) * head_dim;
                const float *values = sequence->v + (size_t)(h / group) * head_dim;
                int visible = sequence->q_start + t + 1;
                float max_score = -INFINITY;
                for (int j = 0; j < visible; j++) {
                    float score = softcap * tanhf(dot_product(query, keys + (size_t)j * kv_stride, head_dim) * scale / softcap);
                    scores[j] = score;
                    if (score > max_score) max_score = score;
                }
                float sum = 0;
                for (int j = 0; j < visible; j++) {
                    scores[j] = expf(scores[j] - max_score);
                    sum += scores[j];
                }
                for (int d = 0; d < head_dim; d++) accumulator[d] = 0;
                for (int j = 0; j < visible; j++) {
                    const float *value = values + (size_t)j * kv_stride;
                    for (int d = 0; d < head_dim; d++) accumulator[d] += scores[j] * value[d];
                }
                for (int d = 0; d < head_dim; d++) output[d] = accumulator[d] / sum;
            }
        }
        free(scores);
        free(accumulator);
    }
}

void hk_attention(const float *q /* [n_q, heads, head_dim] */, const float *k /* [n_kv, kv_heads, head_dim] */,
                  const float *v /* [n_kv, kv_heads, head_dim] */, float *out /* [n_q, heads, head_dim] */,
                  int n_q, int q_start, int heads, int kv_heads, int head_dim, float scale) {
    hk_attention_sequence sequence = {q, k, v, out, n_q, q_start};
    hk_attention_batch(&sequence, 1, heads, kv_heads, head_dim, scale);
}
