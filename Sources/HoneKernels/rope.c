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

/// Rotates one head's first rot_dim features with precomputed cos/sin per pair.
static inline void rope_rotate_head(float *head /* [head_dim] */, const float *cosines /* [rot_dim / 2] */,
                                    const float *sines /* [rot_dim / 2] */, int rot_dim, int interleaved) {
    int half = rot_dim / 2;
    for (int j = 0; j < half; j++) {
        // interleaved: GGML pairs (2j, 2j + 1); otherwise HF rotate_half pairs (j, j + half).
        int first_index = interleaved ? 2 * j : j;
        int second_index = interleaved ? 2 * j + 1 : j + half;
        float first = head[first_index], second = head[second_index];
        head[first_index] = first * cosines[j] - second * sines[j];
        head[second_index] = second * cosines[j] + first * sines[j];
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

// MARK: - Fast

// Not hot (a few heads per token): the gain is computing cos/sin once per token instead of per head,
// and splitting tokens over threads.

static void rope_tokens(float *x, const int32_t *positions, const float *inv_freq, int first_token, int end_token,
                        int heads, int head_dim, int rot_dim, int interleaved, float sine_sign, float *cosines,
                        float *sines) {
    int half = rot_dim / 2;
    for (int t = first_token; t < end_token; t++) {
        for (int j = 0; j < half; j++) {
            rope_cos_sin(positions[t], inv_freq[j], &cosines[j], &sines[j]);
            sines[j] *= sine_sign;
        }
        for (int h = 0; h < heads; h++) {
            rope_rotate_head(x + ((size_t)t * heads + h) * head_dim, cosines, sines, rot_dim, interleaved);
        }
    }
}

static void rope_fast(float *x /* [tokens, heads, head_dim] */, const int32_t *positions /* [tokens] */,
                      const float *inv_freq /* [rot_dim / 2] */, int tokens, int heads, int head_dim, int rot_dim,
                      int interleaved, float sine_sign) {
    int half = rot_dim / 2;
    if (tokens <= 0 || heads <= 0 || half <= 0) return;
    int threads = hk_thread_count();
    if (threads <= 1 || tokens < 4) {
        // Small stack buffers cover every real rotary size; fall back to the heap beyond.
        float stack_buffer[2 * 256];
        float *buffer = half <= 256 ? stack_buffer : malloc(2 * (size_t)half * sizeof(float));
        if (!buffer) return;
        rope_tokens(x, positions, inv_freq, 0, tokens, heads, head_dim, rot_dim, interleaved, sine_sign, buffer,
                    buffer + half);
        if (buffer != stack_buffer) free(buffer);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        float *buffer = malloc(2 * (size_t)half * sizeof(float));
        size_t begin, end;
        hk_split_range((size_t)tokens, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        if (buffer) {
            rope_tokens(x, positions, inv_freq, (int)begin, (int)end, heads, head_dim, rot_dim, interleaved, sine_sign,
                        buffer, buffer + half);
        } else {
            rope_reference(x + begin * (size_t)heads * head_dim, positions + begin, inv_freq, (int)(end - begin), heads,
                           head_dim, rot_dim, interleaved, sine_sign);
        }
        free(buffer);
    }
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
