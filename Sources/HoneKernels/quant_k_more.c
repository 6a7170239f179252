// Q2_K, Q3_K, Q5_K and IQ4_XS: ggml-exact quantizers (no importance matrix), dequantizers, and the integer
// references for their matrix products (activations in Q8_K blocks, exact integer sums per sub-block).
//
// Byte-exactness: as in quant.c, every expression evaluates ggml's f32 operations in ggml's order, with
// contraction into FMA switched off.
#include "quant_internal.h"

#pragma clang fp contract(off)

_Static_assert(sizeof(hk_block_q2_k) == 84, "Q2_K block is 84 bytes");
_Static_assert(sizeof(hk_block_q3_k) == 110, "Q3_K block is 110 bytes");
_Static_assert(sizeof(hk_block_q5_k) == 176, "Q5_K block is 176 bytes");
_Static_assert(sizeof(hk_block_iq4_xs) == 136, "IQ4_XS block is 136 bytes");

/// Sub-blocks whose largest magnitude is below this quantize to zero (ggml's GROUP_MAX_EPS).
#define GROUP_MAX_EPS 1e-15f

const int8_t hk_iq4_xs_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static inline int clamp_int(int value, int low, int high) { return value < low ? low : value > high ? high : value; }

/// Q2_K's and Q3_K's qs: byte 32 h + l holds the two-bit levels of values 128 h + l + 32 k at bits 2 k.
static void pack_two_bit_levels(const uint8_t *levels /* [256], each 0..3 */, uint8_t *qs /* [64] */) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *l = levels + 128 * h;
        for (int i = 0; i < 32; i++) {
            qs[32 * h + i] = (uint8_t)(l[i] | (l[i + 32] << 2) | (l[i + 64] << 4) | (l[i + 96] << 6));
        }
    }
}

// MARK: - Q2_K

void hk_quantize_row_q2_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n) {
    hk_block_q2_k *blocks = y;
    uint8_t levels[HK_QK_K], candidate[16];
    float weights[16], scales[16], mins[16];
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_q2_k *block = &blocks[b];
        float max_scale = 0.0f, max_min = 0.0f;
        for (int s = 0; s < 16; s++) {
            // Weights |x|, absolute error: the few large values matter most at two bits.
            for (int i = 0; i < 16; i++) weights[i] = fabsf(x[16 * s + i]);
            scales[s] = hk_fit_scale_and_min(16, 3, x + 16 * s, weights, levels + 16 * s, &mins[s], candidate, -0.5f,
                                             0.1f, 15, 1);
            if (scales[s] > max_scale) max_scale = scales[s];
            if (mins[s] > max_min) max_min = mins[s];
        }
        // Four-bit scales and mins relative to the largest of each.
        if (max_scale > 0) {
            float inverse = 15.0f / max_scale;
            for (int s = 0; s < 16; s++) block->scales[s] = (uint8_t)hk_nearest_int(inverse * scales[s]);
            block->d = hk_f32_to_f16_scalar(max_scale / 15.0f);
        } else {
            for (int s = 0; s < 16; s++) block->scales[s] = 0;
            block->d = hk_f32_to_f16_scalar(0.0f);
        }
        if (max_min > 0) {
            float inverse = 15.0f / max_min;
            for (int s = 0; s < 16; s++) block->scales[s] |= (uint8_t)(hk_nearest_int(inverse * mins[s]) << 4);
            block->dmin = hk_f32_to_f16_scalar(max_min / 15.0f);
        } else {
            block->dmin = hk_f32_to_f16_scalar(0.0f);
        }
        // Levels again with the stored scales (a sub-block whose scale is 0 keeps its fitted levels).
        float d = hk_f16_to_f32_scalar(block->d), dmin = hk_f16_to_f32_scalar(block->dmin);
        for (int s = 0; s < 16; s++) {
            float step = d * (float)(block->scales[s] & 0x0F);
            if (step == 0.0f) continue;
            float offset = dmin * (float)(block->scales[s] >> 4);
            for (int i = 0; i < 16; i++) {
                levels[16 * s + i] = (uint8_t)clamp_int(hk_nearest_int((x[16 * s + i] + offset) / step), 0, 3);
            }
        }
        pack_two_bit_levels(levels, block->qs);
    }
}

void hk_dequantize_row_q2_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q2_k *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++, y += HK_QK_K) {
        const hk_block_q2_k *block = &blocks[b];
        float d = hk_f16_to_f32_scalar(block->d), dmin = hk_f16_to_f32_scalar(block->dmin);
        for (int v = 0; v < HK_QK_K; v++) {
            int s = v / 16, h = v / 128, k = (v % 128) / 32, l = v % 32;
            float step = d * (float)(block->scales[s] & 0x0F), offset = dmin * (float)(block->scales[s] >> 4);
            y[v] = step * (float)((block->qs[32 * h + l] >> (2 * k)) & 3) - offset;
        }
    }
}

// MARK: - Q3_K

/// ggml's make_q3_quants with do_rmse: symmetric levels -max_level .. max_level - 1 from the scale that maps
/// the extreme value to -max_level, then up to five passes that move single levels while that improves
/// (sum w x l)^2 / (sum w l^2) with w = x^2. Stores the levels offset by max_level; returns the scale.
static float fit_q3_scale(int count, int max_level, const float *x /* [count] */, int8_t *levels /* [count] */) {
    float amax = 0.0f, extreme = 0.0f;
    for (int i = 0; i < count; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            extreme = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < count; i++) levels[i] = 0;
        return 0.0f;
    }
    float inverse_scale = (float)-max_level / extreme;
    float cross_sum = 0.0f, square_sum = 0.0f;
    for (int i = 0; i < count; i++) {
        int level = clamp_int(hk_nearest_int(inverse_scale * x[i]), -max_level, max_level - 1);
        levels[i] = (int8_t)level;
        float w = x[i] * x[i];
        cross_sum += w * x[i] * (float)level;
        square_sum += w * (float)level * (float)level; // (w l) l, ggml's order
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < count; i++) {
            float w = x[i] * x[i];
            float cross_without = cross_sum - w * x[i] * (float)levels[i];
            if (cross_without > 0) {
                float square_without = square_sum - w * (float)levels[i] * (float)levels[i];
                int level = clamp_int(hk_nearest_int(x[i] * square_without / cross_without), -max_level, max_level - 1);
                if (level != levels[i]) {
                    float new_cross = cross_without + w * x[i] * (float)level;
                    float new_square = square_without + w * (float)level * (float)level;
                    if (new_square > 0 && new_cross * new_cross * square_sum > cross_sum * cross_sum * new_square) {
                        levels[i] = (int8_t)level;
                        cross_sum = new_cross;
                        square_sum = new_square;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < count; i++) levels[i] = (int8_t)(levels[i] + max_level);
    return square_sum > 0.0f ? cross_sum / square_sum : 0.0f;
}

void hk_quantize_row_q3_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n) {
    hk_block_q3_k *blocks = y;
    int8_t levels[HK_QK_K];
    float scales[16];
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_q3_k *block = &blocks[b];
        float max_scale = 0.0f, amax = 0.0f;
        for (int s = 0; s < 16; s++) {
            scales[s] = fit_q3_scale(16, 4, x + 16 * s, levels + 16 * s);
            if (fabsf(scales[s]) > amax) {
                amax = fabsf(scales[s]);
                max_scale = scales[s];
            }
        }
        // Six-bit signed scales: the largest magnitude maps to -32.
        memset(block->scales, 0, sizeof block->scales);
        if (max_scale != 0.0f) {
            float inverse = -32.0f / max_scale;
            for (int s = 0; s < 16; s++) {
                int8_t level = (int8_t)hk_nearest_int(inverse * scales[s]);
                level = (int8_t)(clamp_int(level, -32, 31) + 32);
                if (s < 8) block->scales[s] = (uint8_t)(level & 0x0F);
                else block->scales[s - 8] |= (uint8_t)((level & 0x0F) << 4);
                block->scales[8 + s % 4] |= (uint8_t)((level >> 4) << (2 * (s / 4)));
            }
            block->d = hk_f32_to_f16_scalar(1.0f / inverse);
        } else {
            block->d = hk_f32_to_f16_scalar(0.0f);
        }
        int8_t unpacked[16];
        hk_q3k_unpack_scales(block->scales, unpacked);
        float d = hk_f16_to_f32_scalar(block->d);
        for (int s = 0; s < 16; s++) {
            float step = d * (float)unpacked[s];
            if (step == 0.0f) continue;
            for (int i = 0; i < 16; i++) {
                levels[16 * s + i] = (int8_t)(clamp_int(hk_nearest_int(x[16 * s + i] / step), -4, 3) + 4);
            }
        }
        // Third bit of value v at bit v / 32 of hmask[v % 32]; the low two bits packed as Q2_K.
        memset(block->hmask, 0, sizeof block->hmask);
        uint8_t low_bits[HK_QK_K];
        for (int v = 0; v < HK_QK_K; v++) {
            if (levels[v] > 3) block->hmask[v % 32] |= (uint8_t)(1 << (v / 32));
            low_bits[v] = (uint8_t)(levels[v] & 3);
        }
        pack_two_bit_levels(low_bits, block->qs);
    }
}

void hk_dequantize_row_q3_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q3_k *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++, y += HK_QK_K) {
        const hk_block_q3_k *block = &blocks[b];
        int8_t scales[16];
        hk_q3k_unpack_scales(block->scales, scales);
        float d = hk_f16_to_f32_scalar(block->d);
        for (int v = 0; v < HK_QK_K; v++) {
            int h = v / 128, k = (v % 128) / 32, l = v % 32;
            int level = ((block->qs[32 * h + l] >> (2 * k)) & 3) - ((block->hmask[l] >> (v / 32)) & 1 ? 0 : 4);
            y[v] = (d * (float)scales[v / 16]) * (float)level;
        }
    }
}

// MARK: - Q5_K

void hk_quantize_row_q5_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n) {
    hk_block_q5_k *blocks = y;
    uint8_t levels[HK_QK_K], candidate[32];
    float weights[32], scales[8], mins[8];
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_q5_k *block = &blocks[b];
        float max_scale = 0.0f, max_min = 0.0f;
        for (int s = 0; s < 8; s++) {
            const float *values = x + 32 * s;
            float square_sum = 0.0f;
            for (int i = 0; i < 32; i++) square_sum += values[i] * values[i];
            float rms = sqrtf(square_sum / 32);
            for (int i = 0; i < 32; i++) weights[i] = rms + fabsf(values[i]);
            scales[s] = hk_fit_scale_and_min(32, 31, values, weights, levels + 32 * s, &mins[s], candidate, -0.5f, 0.1f,
                                             15, 0);
            if (scales[s] > max_scale) max_scale = scales[s];
            if (mins[s] > max_min) max_min = mins[s];
        }
        // Six-bit scales and mins packed as Q4_K's.
        float inverse_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
        float inverse_min = max_min > 0 ? 63.0f / max_min : 0.0f;
        memset(block->scales, 0, sizeof block->scales);
        for (int s = 0; s < 8; s++) {
            uint8_t scale = (uint8_t)hk_nearest_int(inverse_scale * scales[s]);
            uint8_t min = (uint8_t)hk_nearest_int(inverse_min * mins[s]);
            if (scale > 63) scale = 63;
            if (min > 63) min = 63;
            if (s < 4) {
                block->scales[s] = scale;
                block->scales[s + 4] = min;
            } else {
                block->scales[s + 4] = (uint8_t)((scale & 0x0F) | ((min & 0x0F) << 4));
                block->scales[s - 4] |= (uint8_t)((scale >> 4) << 6);
                block->scales[s] |= (uint8_t)((min >> 4) << 6);
            }
        }
        block->d = hk_f32_to_f16_scalar(max_scale / 63.0f);
        block->dmin = hk_f32_to_f16_scalar(max_min / 63.0f);
        float d = hk_f16_to_f32_scalar(block->d), dmin = hk_f16_to_f32_scalar(block->dmin);
        for (int s = 0; s < 8; s++) {
            uint8_t scale, min;
            hk_q4k_scale_min(block->scales, s, &scale, &min);
            float step = d * (float)scale;
            if (step == 0.0f) continue;
            float offset = dmin * (float)min;
            for (int i = 0; i < 32; i++) {
                levels[32 * s + i] = (uint8_t)clamp_int(hk_nearest_int((x[32 * s + i] + offset) / step), 0, 31);
            }
        }
        memset(block->qh, 0, sizeof block->qh);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                uint8_t low = levels[64 * c + l], high = levels[64 * c + 32 + l];
                block->qh[l] |= (uint8_t)(((low >> 4) << (2 * c)) | ((high >> 4) << (2 * c + 1)));
                block->qs[32 * c + l] = (uint8_t)((low & 0x0F) | ((high & 0x0F) << 4));
            }
        }
    }
}

void hk_dequantize_row_q5_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q5_k *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++, y += HK_QK_K) {
        const hk_block_q5_k *block = &blocks[b];
        float d = hk_f16_to_f32_scalar(block->d), dmin = hk_f16_to_f32_scalar(block->dmin);
        for (int s = 0; s < 8; s++) {
            uint8_t scale, min;
            hk_q4k_scale_min(block->scales, s, &scale, &min);
            float step = d * (float)scale, offset = dmin * (float)min;
            const uint8_t *qs = block->qs + 32 * (s / 2);
            for (int l = 0; l < 32; l++) {
                int level = ((qs[l] >> (4 * (s % 2))) & 0x0F) | (((block->qh[l] >> s) & 1) << 4);
                y[32 * s + l] = step * (float)level - offset;
            }
        }
    }
}

// MARK: - IQ4_XS

/// Index of the level nearest to `value` (ties to the lower one), as ggml's best_index_int8.
static int nearest_iq4_level(float value) {
    const int8_t *levels = hk_iq4_xs_levels;
    if (value <= levels[0]) return 0;
    if (value >= levels[15]) return 15;
    int low = 0, high = 15;
    while (high - low > 1) {
        int middle = (low + high) / 2;
        if (value < levels[middle]) high = middle;
        else low = middle;
    }
    return value - levels[high - 1] < levels[high] - value ? high - 1 : high;
}

void hk_quantize_row_iq4_xs(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n) {
    hk_block_iq4_xs *blocks = y;
    const int8_t *values = hk_iq4_xs_levels;
    uint8_t levels[HK_QK_K];
    float scales[8], weights[32];
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_iq4_xs *block = &blocks[b];
        memset(block->qs, 0, sizeof block->qs);
        block->d = 0;
        float max_scale = 0.0f, amax_scale = 0.0f;
        for (int s = 0; s < 8; s++) {
            const float *xs = x + 32 * s;
            uint8_t *ls = levels + 32 * s;
            for (int i = 0; i < 32; i++) weights[i] = xs[i] * xs[i];
            float amax = 0.0f, extreme = 0.0f;
            for (int i = 0; i < 32; i++) {
                if (fabsf(xs[i]) > amax) {
                    amax = fabsf(xs[i]);
                    extreme = xs[i];
                }
            }
            if (amax < GROUP_MAX_EPS) {
                scales[s] = 0;
                continue;
            }
            // Start from the scale that maps the extreme to level 0 (-127), then try 15 nearby grids.
            float d = -extreme / values[0];
            float inverse = 1 / d;
            float cross_sum = 0, square_sum = 0;
            for (int i = 0; i < 32; i++) {
                int level = nearest_iq4_level(inverse * xs[i]);
                ls[i] = (uint8_t)level;
                float q = values[level], w = weights[i];
                cross_sum += w * q * xs[i];
                square_sum += w * q * q;
            }
            d = square_sum > 0 ? cross_sum / square_sum : 0.0f;
            float best = d * cross_sum;
            for (int attempt = -7; attempt <= 7; attempt++) {
                inverse = (float)(attempt + values[0]) / extreme;
                cross_sum = square_sum = 0;
                for (int i = 0; i < 32; i++) {
                    float q = values[nearest_iq4_level(inverse * xs[i])], w = weights[i];
                    cross_sum += w * q * xs[i];
                    square_sum += w * q * q;
                }
                if (square_sum > 0 && cross_sum * cross_sum > best * square_sum) {
                    d = cross_sum / square_sum;
                    best = d * cross_sum;
                }
            }
            scales[s] = d;
            if (fabsf(d) > amax_scale) {
                amax_scale = fabsf(d);
                max_scale = d;
            }
        }
        // Six-bit scales: the largest magnitude maps to -32; levels again with each stored scale.
        block->scales_h = 0;
        float d = -max_scale / 32;
        block->d = hk_f32_to_f16_scalar(d);
        float inverse = d != 0.0f ? 1 / d : 0.0f;
        for (int s = 0; s < 8; s++) {
            int level = clamp_int(hk_nearest_int(inverse * scales[s]), -32, 31);
            float step = d * (float)level;
            float inverse_step = step != 0.0f ? 1 / step : 0.0f;
            for (int i = 0; i < 32; i++) levels[32 * s + i] = (uint8_t)nearest_iq4_level(inverse_step * x[32 * s + i]);
            level += 32;
            if (s % 2 == 0) block->scales_l[s / 2] = (uint8_t)(level & 0x0F);
            else block->scales_l[s / 2] |= (uint8_t)((level & 0x0F) << 4);
            block->scales_h |= (uint16_t)((level >> 4) << (2 * s));
        }
        for (int s = 0; s < 8; s++) {
            for (int j = 0; j < 16; j++) {
                block->qs[16 * s + j] = (uint8_t)(levels[32 * s + j] | (levels[32 * s + 16 + j] << 4));
            }
        }
    }
}

void hk_dequantize_row_iq4_xs(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq4_xs *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++, y += HK_QK_K) {
        const hk_block_iq4_xs *block = &blocks[b];
        float d = hk_f16_to_f32_scalar(block->d);
        for (int s = 0; s < 8; s++) {
            float step = d * (float)hk_iq4_xs_scale(block, s);
            for (int j = 0; j < 16; j++) {
                y[32 * s + j] = step * (float)hk_iq4_xs_levels[block->qs[16 * s + j] & 0x0F];
                y[32 * s + 16 + j] = step * (float)hk_iq4_xs_levels[block->qs[16 * s + j] >> 4];
            }
        }
    }
}

// MARK: - Integer references (one weight row against Q8_K activations, summed in double)

/// sum_i w[i] * a[i] for one weight row of Q2_K, Q3_K, Q5_K or IQ4_XS: exact integer sums per sub-block
/// with the integer sub-block scales, scaled by d * activation d per super-block.
double hk_int_dot_k_more(int type, const void *row, const hk_block_q8_k *a, int in) {
    double sum = 0;
    for (int b = 0; b < in / HK_QK_K; b++) {
        const int8_t *q = a[b].qs;
        switch (type) {
        case HK_TYPE_Q2_K: {
            const hk_block_q2_k *w = (const hk_block_q2_k *)row + b;
            int scaled = 0, mins = 0;
            for (int s = 0; s < 16; s++) {
                int dot = 0;
                for (int i = 16 * s; i < 16 * s + 16; i++) {
                    dot += ((w->qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3) * q[i];
                }
                scaled += (w->scales[s] & 0x0F) * dot;
                mins += (w->scales[s] >> 4) * a[b].bsums[s];
            }
            sum += (double)(hk_f16_to_f32_scalar(w->d) * a[b].d) * scaled -
                   (double)(hk_f16_to_f32_scalar(w->dmin) * a[b].d) * mins;
            break;
        }
        case HK_TYPE_Q3_K: {
            const hk_block_q3_k *w = (const hk_block_q3_k *)row + b;
            int8_t scales[16];
            hk_q3k_unpack_scales(w->scales, scales);
            int scaled = 0;
            for (int s = 0; s < 16; s++) {
                int dot = 0;
                for (int i = 16 * s; i < 16 * s + 16; i++) {
                    int level = ((w->qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3) |
                                (((w->hmask[i % 32] >> (i / 32)) & 1) << 2);
                    dot += (level - 4) * q[i];
                }
                scaled += scales[s] * dot;
            }
            sum += (double)(hk_f16_to_f32_scalar(w->d) * a[b].d) * scaled;
            break;
        }
        case HK_TYPE_Q5_K: {
            const hk_block_q5_k *w = (const hk_block_q5_k *)row + b;
            int scaled = 0, mins = 0;
            for (int s = 0; s < 8; s++) {
                uint8_t scale, min;
                hk_q4k_scale_min(w->scales, s, &scale, &min);
                int dot = 0;
                for (int l = 0; l < 32; l++) {
                    int level = ((w->qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0x0F) | (((w->qh[l] >> s) & 1) << 4);
                    dot += level * q[32 * s + l];
                }
                scaled += scale * dot;
                mins += min * (a[b].bsums[2 * s] + a[b].bsums[2 * s + 1]);
            }
            sum += (double)(hk_f16_to_f32_scalar(w->d) * a[b].d) * scaled -
                   (double)(hk_f16_to_f32_scalar(w->dmin) * a[b].d) * mins;
            break;
        }
        default: { // IQ4_XS
            const hk_block_iq4_xs *w = (const hk_block_iq4_xs *)row + b;
            int scaled = 0;
            for (int s = 0; s < 8; s++) {
                int dot = 0;
                for (int j = 0; j < 16; j++) {
                    dot += hk_iq4_xs_levels[w->qs[16 * s + j] & 0x0F] * q[32 * s + j] +
                           hk_iq4_xs_levels[w->qs[16 * s + j] >> 4] * q[32 * s + 16 + j];
                }
                scaled += hk_iq4_xs_scale(w, s) * dot;
            }
            sum += (double)(hk_f16_to_f32_scalar(w->d) * a[b].d) * scaled;
            break;
        }
        }
    }
    return sum;
}
