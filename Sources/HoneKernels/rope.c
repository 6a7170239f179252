// Rotary position embedding, in place, and its backward (the transpose: the same rotation by -angle).
#include "hk_internal.h"
#include "hone_train.h"

#include <stdlib.h>

// HF computes x * cos + rotate_half(x) * sin as separate f32 tensor operations: no fused multiply-add.
// Keeping contraction off here also makes the fast version bit-identical to the reference.
#pragma STDC FP_CONTRACT OFF

// MARK: - Shared pieces

/// The angle as HF forms it (f32 product), then cos and sin evaluated in double and rounded.
static inline void rope_cos_sin(int32_t position, float inverse_frequency, float *cosine, float *sine) {
    float angle = (float)position * inverse_frequency;
    *cosine = (float)cos((double)angle);
    *sine = (float)sin((double)angle);
}

/// Rotates one head's first rot_dim features with precomputed cos/sin per pair; sine_sign -1 rotates by -angle
/// (negating is exact, so the backward is the forward's transpose with the same rounding).
static inline void rope_rotate_head(float *head /* [head_dim] */, const float *cosines /* [rot_dim / 2] */,
                                    const float *sines /* [rot_dim / 2] */, int rot_dim, int interleaved,
                                    float sine_sign) {
    int half = rot_dim / 2;
    for (int j = 0; j < half; j++) {
        // interleaved: GGML pairs (2j, 2j + 1); otherwise HF rotate_half pairs (j, j + half).
        int first_index = interleaved ? 2 * j : j;
        int second_index = interleaved ? 2 * j + 1 : j + half;
        float first = head[first_index], second = head[second_index], sine = sines[j] * sine_sign;
        head[first_index] = first * cosines[j] - second * sine;
        head[second_index] = second * cosines[j] + first * sine;
    }
}

// MARK: - Reference

/// sine_sign +1 rotates by +angle (forward), -1 by -angle (backward). Negating the sine is exact, so the backward
/// is the forward's transpose with the same rounding.
static void rope_reference(float *x /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                           const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
                           int interleaved, float sine_sign) {
    int half = rot_dim / 2;
    for (int t = 0; t < tokens; t++) {
        for (int h = 0; h < heads; h++) {
            float *head = x + ((size_t)t * heads + h) * head_dim;
            for (int j = 0; j < half; j++) {
                float cosine, sine;
                rope_cos_sin(positions[t], inv_freq[j], &cosine, &sine);
                sine *= sine_sign;
                int first_index = interleaved ? 2 * j : j;
                int second_index = interleaved ? 2 * j + 1 : j + half;
                float first = head[first_index], second = head[second_index];
                head[first_index] = first * cosine - second * sine;
                head[second_index] = second * cosine + first * sine;
            }
        }
    }
}

void hk_rope_ref(float *x /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                 const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
                 int interleaved) {
    rope_reference(x, positions, inv_freq, tokens, heads, head_dim, rot_dim, interleaved, 1.0f);
}

void hk_rope_backward_ref(float *dx /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                          const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim,
                          int rot_dim, int interleaved) {
    rope_reference(dx, positions, inv_freq, tokens, heads, head_dim, rot_dim, interleaved, -1.0f);
}

// MARK: - Fast: an angle table per pass
//
// Every layer rotates the same rows by the same angles, so a forward pass computes each row's cos/sin once
// (hk_rope_table) and every layer's queries and keys only multiply (hk_rope_apply): on an MMLU scoring pass the
// double-precision cos/sin of every layer were ~1 % of the time. hk_rope itself is the two in sequence.

/// Rows per thread below which splitting the work costs more than it saves.
enum { ROPE_MIN_TOKENS_PER_THREAD = 4 };

static int rope_threads(int tokens) {
    int threads = hk_thread_count();
    if (threads > tokens / ROPE_MIN_TOKENS_PER_THREAD) threads = tokens / ROPE_MIN_TOKENS_PER_THREAD;
    return threads < 1 ? 1 : threads;
}

static void rope_table_tokens(const int32_t *positions, const float *inv_freq, int first_token, int end_token,
                              int rot_dim, float *table /* [tokens, rot_dim] */) {
    int half = rot_dim / 2;
    for (int t = first_token; t < end_token; t++) {
        float *row = table + (size_t)t * rot_dim;
        for (int j = 0; j < half; j++) rope_cos_sin(positions[t], inv_freq[j], &row[j], &row[half + j]);
    }
}

void hk_rope_table(const int32_t *positions /* [tokens] */, const float *inv_freq /* [rot_dim / 2] */, int tokens,
                   int rot_dim, float *table /* [tokens, rot_dim] */) {
    int half = rot_dim / 2;
    if (tokens <= 0 || half <= 0) return;
    int threads = rope_threads(tokens);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        size_t begin, end;
        hk_split_range((size_t)tokens, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        rope_table_tokens(positions, inv_freq, (int)begin, (int)end, rot_dim, table);
    }
}

static void rope_apply_tokens(float *x, const float *table, int first_token, int end_token, int heads, int head_dim,
                              int rot_dim, int interleaved, float sine_sign) {
    for (int t = first_token; t < end_token; t++) {
        const float *cosines = table + (size_t)t * rot_dim, *sines = cosines + rot_dim / 2;
        for (int h = 0; h < heads; h++) {
            rope_rotate_head(x + ((size_t)t * heads + h) * head_dim, cosines, sines, rot_dim, interleaved, sine_sign);
        }
    }
}

static void rope_apply(float *x /* [tokens, heads, head_dim] */, const float *table /* [tokens, rot_dim] */,
                       int tokens, int heads, int head_dim, int rot_dim, int interleaved, float sine_sign) {
    if (tokens <= 0 || heads <= 0 || rot_dim / 2 <= 0) return;
    int threads = rope_threads(tokens);
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        size_t begin, end;
        hk_split_range((size_t)tokens, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        rope_apply_tokens(x, table, (int)begin, (int)end, heads, head_dim, rot_dim, interleaved, sine_sign);
    }
}

void hk_rope_apply(float *x /* [tokens, heads, head_dim] */, const float *table /* [tokens, rot_dim] */, int tokens,
                   int heads, int head_dim, int rot_dim, int interleaved, int inverse) {
    rope_apply(x, table, tokens, heads, head_dim, rot_dim, interleaved, inverse ? -1.0f : 1.0f);
}

/// The table for these tokens, then the rotation (a table of one sequence's rows: no layer shares it here).
static void rope_fast(float *x /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                      const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
                      int interleaved, float sine_sign) {
    if (tokens <= 0 || heads <= 0 || rot_dim / 2 <= 0) return;
    float *table = malloc((size_t)tokens * rot_dim * sizeof(float));
    if (!table) {
        rope_reference(x, positions, inv_freq, tokens, heads, head_dim, rot_dim, interleaved, sine_sign);
        return;
    }
    hk_rope_table(positions, inv_freq, tokens, rot_dim, table);
    rope_apply(x, table, tokens, heads, head_dim, rot_dim, interleaved, sine_sign);
    free(table);
}

void hk_rope(float *x /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
             const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
             int interleaved) {
    rope_fast(x, positions, inv_freq, tokens, heads, head_dim, rot_dim, interleaved, 1.0f);
}

void hk_rope_backward(float *dx /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                      const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
                      int interleaved) {
    rope_fast(dx, positions, inv_freq, tokens, heads, head_dim, rot_dim, interleaved, -1.0f);
}
