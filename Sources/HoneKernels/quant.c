// GGUF block formats: sizes, ggml-exact quantizers, dequantizers, activation quantizers and the
// references for the quantized matrix products.
//
// Byte-exactness: ggml's reference quantizers are plain f32 arithmetic (its base library is built without
// FMA), so every expression below evaluates the same operations in the same order; contraction into FMA
// is switched off for this file so that no target can fuse them.
#include "quant_internal.h"

#pragma clang fp contract(off)

_Static_assert(sizeof(hk_block_q8_0) == 34, "Q8_0 block is 34 bytes");
_Static_assert(sizeof(hk_block_q4_0) == 18, "Q4_0 block is 18 bytes");
_Static_assert(sizeof(hk_block_q5_0) == 22, "Q5_0 block is 22 bytes");
_Static_assert(sizeof(hk_block_q4_k) == 144, "Q4_K block is 144 bytes");
_Static_assert(sizeof(hk_block_q6_k) == 210, "Q6_K block is 210 bytes");
_Static_assert(sizeof(hk_block_q8_k) == 292, "Q8_K block is 292 bytes");

// MARK: - Sizes

int64_t hk_quant_block_size(int type) {
    switch (type) {
    case HK_TYPE_Q8_0: return HK_QK8_0;
    case HK_TYPE_Q4_0:
    case HK_TYPE_Q5_0: return HK_QK4_0;
    case HK_TYPE_Q4_1: case HK_TYPE_Q5_1: case HK_TYPE_Q8_1: case HK_TYPE_IQ4_NL: return HK_QK4_0;
    case HK_TYPE_Q4_K:
    case HK_TYPE_Q6_K:
    case HK_TYPE_Q8_K: return HK_QK_K;
    case HK_TYPE_Q2_K: case HK_TYPE_Q3_K: case HK_TYPE_Q5_K: case HK_TYPE_IQ4_XS: return HK_QK_K;
    case HK_TYPE_IQ2_XXS: case HK_TYPE_IQ2_XS: case HK_TYPE_IQ2_S: case HK_TYPE_IQ3_XXS: case HK_TYPE_IQ3_S:
    case HK_TYPE_IQ1_S: case HK_TYPE_IQ1_M: case HK_TYPE_TQ1_0: case HK_TYPE_TQ2_0: return HK_QK_K;
    default: return 0;
    }
}

size_t hk_quant_block_bytes(int type) {
    switch (type) {
    case HK_TYPE_Q8_0: return sizeof(hk_block_q8_0);
    case HK_TYPE_Q4_0: return sizeof(hk_block_q4_0);
    case HK_TYPE_Q5_0: return sizeof(hk_block_q5_0);
    case HK_TYPE_Q4_1: return sizeof(hk_block_q4_1);
    case HK_TYPE_Q5_1: return sizeof(hk_block_q5_1);
    case HK_TYPE_Q8_1: return sizeof(hk_block_q8_1);
    case HK_TYPE_IQ4_NL: return sizeof(hk_block_iq4_nl);
    case HK_TYPE_Q4_K: return sizeof(hk_block_q4_k);
    case HK_TYPE_Q6_K: return sizeof(hk_block_q6_k);
    case HK_TYPE_Q8_K: return sizeof(hk_block_q8_k);
    case HK_TYPE_Q2_K: return sizeof(hk_block_q2_k);
    case HK_TYPE_Q3_K: return sizeof(hk_block_q3_k);
    case HK_TYPE_Q5_K: return sizeof(hk_block_q5_k);
    case HK_TYPE_IQ4_XS: return sizeof(hk_block_iq4_xs);
    case HK_TYPE_IQ2_XXS: return sizeof(hk_block_iq2_xxs);
    case HK_TYPE_IQ2_XS: return sizeof(hk_block_iq2_xs);
    case HK_TYPE_IQ2_S: return sizeof(hk_block_iq2_s);
    case HK_TYPE_IQ3_XXS: return sizeof(hk_block_iq3_xxs);
    case HK_TYPE_IQ3_S: return sizeof(hk_block_iq3_s);
    case HK_TYPE_IQ1_S: return sizeof(hk_block_iq1_s);
    case HK_TYPE_IQ1_M: return sizeof(hk_block_iq1_m);
    case HK_TYPE_TQ1_0: return sizeof(hk_block_tq1_0);
    case HK_TYPE_TQ2_0: return sizeof(hk_block_tq2_0);
    default: return 0;
    }
}

size_t hk_quant_row_bytes(int type, int64_t n) {
    int64_t block = hk_quant_block_size(type);
    return block > 0 ? (size_t)(n / block) * hk_quant_block_bytes(type) : 0;
}

// MARK: - Q8_0 and Q4_0

void hk_quantize_row_q8_0(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n) {
    hk_block_q8_0 *blocks = y;
    for (int64_t b = 0; b < n / HK_QK8_0; b++) {
        const float *values = x + b * HK_QK8_0;
        float amax = 0.0f;
        for (int i = 0; i < HK_QK8_0; i++) amax = fmaxf(amax, fabsf(values[i]));
        float d = amax / 127.0f;
        float inverse = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = hk_f32_to_f16_scalar(d);
        // roundf: halves away from zero, as ggml (the SIMD activation quantizer differs; this one makes files).
        for (int i = 0; i < HK_QK8_0; i++) blocks[b].qs[i] = (int8_t)roundf(values[i] * inverse);
    }
}

void hk_quantize_row_q4_0(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n) {
    hk_block_q4_0 *blocks = y;
    for (int64_t b = 0; b < n / HK_QK4_0; b++) {
        const float *values = x + b * HK_QK4_0;
        // The signed value of largest magnitude (the first one on ties) maps to -8 exactly.
        float amax = 0.0f, extreme = 0.0f;
        for (int i = 0; i < HK_QK4_0; i++) {
            if (fabsf(values[i]) > amax) {
                amax = fabsf(values[i]);
                extreme = values[i];
            }
        }
        float d = extreme / -8.0f;
        float inverse = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = hk_f32_to_f16_scalar(d);
        for (int j = 0; j < HK_QK4_0 / 2; j++) {
            // Truncation of v + 8.5 (v in [-8, 8]) is rounding half up; 16 is clamped to 15.
            int low = (int8_t)(values[j] * inverse + 8.5f);
            int high = (int8_t)(values[j + HK_QK4_0 / 2] * inverse + 8.5f);
            if (low > 15) low = 15;
            if (high > 15) high = 15;
            blocks[b].qs[j] = (uint8_t)(low | (high << 4));
        }
    }
}

void hk_quantize_row_q5_0(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n) {
    hk_block_q5_0 *blocks = y;
    for (int64_t b = 0; b < n / HK_QK4_0; b++) {
        const float *values = x + b * HK_QK4_0;
        // As Q4_0 with 16 levels each side: the signed extreme (first on ties) maps to -16 exactly.
        float amax = 0.0f, extreme = 0.0f;
        for (int i = 0; i < HK_QK4_0; i++) {
            if (fabsf(values[i]) > amax) {
                amax = fabsf(values[i]);
                extreme = values[i];
            }
        }
        float d = extreme / -16.0f;
        float inverse = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = hk_f32_to_f16_scalar(d);
        uint32_t high_bits = 0;
        for (int j = 0; j < HK_QK4_0 / 2; j++) {
            int low = (int8_t)(values[j] * inverse + 16.5f);
            int high = (int8_t)(values[j + HK_QK4_0 / 2] * inverse + 16.5f);
            if (low > 31) low = 31;
            if (high > 31) high = 31;
            blocks[b].qs[j] = (uint8_t)((low & 0x0F) | ((high & 0x0F) << 4));
            high_bits |= (uint32_t)((low >> 4) & 1) << j;
            high_bits |= (uint32_t)((high >> 4) & 1) << (j + HK_QK4_0 / 2);
        }
        for (int k = 0; k < 4; k++) blocks[b].qh[k] = (uint8_t)(high_bits >> (8 * k));
    }
}

void hk_dequantize_row_q8_0(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q8_0 *blocks = x;
    for (int64_t b = 0; b < n / HK_QK8_0; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        for (int i = 0; i < HK_QK8_0; i++) y[b * HK_QK8_0 + i] = (float)blocks[b].qs[i] * d;
    }
}

void hk_dequantize_row_q4_0(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q4_0 *blocks = x;
    for (int64_t b = 0; b < n / HK_QK4_0; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        for (int j = 0; j < HK_QK4_0 / 2; j++) {
            y[b * HK_QK4_0 + j] = (float)((blocks[b].qs[j] & 0x0F) - 8) * d;
            y[b * HK_QK4_0 + j + HK_QK4_0 / 2] = (float)((blocks[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void hk_dequantize_row_q5_0(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q5_0 *blocks = x;
    for (int64_t b = 0; b < n / HK_QK4_0; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        uint32_t high_bits = (uint32_t)blocks[b].qh[0] | (uint32_t)blocks[b].qh[1] << 8 |
                             (uint32_t)blocks[b].qh[2] << 16 | (uint32_t)blocks[b].qh[3] << 24;
        for (int j = 0; j < HK_QK4_0 / 2; j++) {
            int low = (blocks[b].qs[j] & 0x0F) | (int)((high_bits >> j) & 1) << 4;
            int high = (blocks[b].qs[j] >> 4) | (int)((high_bits >> (j + HK_QK4_0 / 2)) & 1) << 4;
            y[b * HK_QK4_0 + j] = (float)(low - 16) * d;
            y[b * HK_QK4_0 + j + HK_QK4_0 / 2] = (float)(high - 16) * d;
        }
    }
}

// MARK: - Q4_K

/// Fits levels L[i] in 0..max_level and (scale, min <= 0) so that scale * L + min approximates x under the
/// weighted squared error: first the plain min/max grid, then `steps + 1` grids whose step is
/// (max - min) / (max_level + first_offset + offset_step * k), each refined by weighted least squares
/// (min clamped to 0 when it comes out positive); the best grid wins. Returns the scale and stores -min.
/// The error is weighted squared, or weighted absolute with `absolute_error` (ggml's use_mad, for Q2_K).
float hk_fit_scale_and_min(int count, int max_level, const float *x /* [count] */, const float *weights /* [count] */,
                           uint8_t *levels /* [count] */, float *negated_min, uint8_t *candidate /* [count] */,
                           float first_offset, float offset_step, int steps, int absolute_error) {
    float low = x[0], high = x[0];
    float weight_sum = weights[0];
    float weighted_x_sum = weights[0] * x[0];
    for (int i = 1; i < count; i++) {
        if (x[i] < low) low = x[i];
        if (x[i] > high) high = x[i];
        weight_sum += weights[i];
        weighted_x_sum += weights[i] * x[i];
    }
    if (low > 0) low = 0;
    if (high == low) {
        for (int i = 0; i < count; i++) levels[i] = 0;
        *negated_min = -low;
        return 0.0f;
    }
    float inverse_scale = (float)max_level / (high - low);
    float scale = 1.0f / inverse_scale;
    float best_error = 0.0f;
    for (int i = 0; i < count; i++) {
        int level = hk_nearest_int(inverse_scale * (x[i] - low));
        level = level < 0 ? 0 : level > max_level ? max_level : level;
        levels[i] = (uint8_t)level;
        float difference = scale * (float)levels[i] + low - x[i];
        best_error += weights[i] * (absolute_error ? fabsf(difference) : difference * difference);
    }
    for (int step = 0; step <= steps; step++) {
        inverse_scale = (first_offset + offset_step * (float)step + (float)max_level) / (high - low);
        float level_sum = 0.0f, level_square_sum = 0.0f, cross_sum = 0.0f;
        for (int i = 0; i < count; i++) {
            int level = hk_nearest_int(inverse_scale * (x[i] - low));
            level = level < 0 ? 0 : level > max_level ? max_level : level;
            candidate[i] = (uint8_t)level;
            float w = weights[i];
            level_sum += w * (float)level;
            level_square_sum += w * (float)level * (float)level;
            cross_sum += w * (float)level * x[i];
        }
        float determinant = weight_sum * level_square_sum - level_sum * level_sum;
        if (determinant > 0) {
            float this_scale = (weight_sum * cross_sum - weighted_x_sum * level_sum) / determinant;
            float this_min = (level_square_sum * weighted_x_sum - level_sum * cross_sum) / determinant;
            if (this_min > 0) {
                this_min = 0;
                this_scale = cross_sum / level_square_sum;
            }
            float error = 0.0f;
            for (int i = 0; i < count; i++) {
                float difference = this_scale * (float)candidate[i] + this_min - x[i];
                error += weights[i] * (absolute_error ? fabsf(difference) : difference * difference);
            }
            if (error < best_error) {
                memcpy(levels, candidate, (size_t)count);
                best_error = error;
                scale = this_scale;
                low = this_min;
            }
        }
    }
    *negated_min = -low;
    return scale;
}

void hk_quantize_row_q4_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n) {
    hk_block_q4_k *blocks = y;
    uint8_t levels[HK_QK_K];
    uint8_t candidate[32];
    float weights[32];
    float scales[HK_QK_K / 32], mins[HK_QK_K / 32];
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_q4_k *block = &blocks[b];
        float max_scale = 0.0f, max_min = 0.0f;
        for (int s = 0; s < HK_QK_K / 32; s++) {
            const float *values = x + 32 * s;
            // Weights: the sub-block's RMS plus each value's magnitude.
            float square_sum = 0.0f;
            for (int i = 0; i < 32; i++) square_sum += values[i] * values[i];
            float rms = sqrtf(square_sum / 32.0f);
            for (int i = 0; i < 32; i++) weights[i] = rms + fabsf(values[i]);
            scales[s] = hk_fit_scale_and_min(32, 15, values, weights, levels + 32 * s, &mins[s], candidate, -1.0f,
                                             0.1f, 20, 0);
            if (scales[s] > max_scale) max_scale = scales[s];
            if (mins[s] > max_min) max_min = mins[s];
        }

        // Six-bit scales and mins relative to the largest of each.
        float inverse_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
        float inverse_min = max_min > 0 ? 63.0f / max_min : 0.0f;
        memset(block->scales, 0, sizeof block->scales);
        for (int s = 0; s < HK_QK_K / 32; s++) {
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

        // Levels again with the scales as stored (a sub-block whose scale rounds to 0 keeps its fitted levels).
        float d = hk_f16_to_f32_scalar(block->d), dmin = hk_f16_to_f32_scalar(block->dmin);
        for (int s = 0; s < HK_QK_K / 32; s++) {
            uint8_t scale, min;
            hk_q4k_scale_min(block->scales, s, &scale, &min);
            float step = d * (float)scale;
            if (step == 0.0f) continue;
            float offset = dmin * (float)min;
            for (int i = 0; i < 32; i++) {
                int level = hk_nearest_int((x[32 * s + i] + offset) / step);
                levels[32 * s + i] = (uint8_t)(level < 0 ? 0 : level > 15 ? 15 : level);
            }
        }
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                block->qs[32 * c + l] = (uint8_t)(levels[64 * c + l] | (levels[64 * c + 32 + l] << 4));
            }
        }
    }
}

void hk_dequantize_row_q4_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q4_k *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        const hk_block_q4_k *block = &blocks[b];
        float d = hk_f16_to_f32_scalar(block->d), dmin = hk_f16_to_f32_scalar(block->dmin);
        for (int c = 0; c < 4; c++) {
            uint8_t scale, min;
            hk_q4k_scale_min(block->scales, 2 * c, &scale, &min);
            float low_step = d * (float)scale, low_offset = dmin * (float)min;
            hk_q4k_scale_min(block->scales, 2 * c + 1, &scale, &min);
            float high_step = d * (float)scale, high_offset = dmin * (float)min;
            for (int l = 0; l < 32; l++) {
                y[64 * c + l] = low_step * (float)(block->qs[32 * c + l] & 0x0F) - low_offset;
                y[64 * c + 32 + l] = high_step * (float)(block->qs[32 * c + l] >> 4) - high_offset;
            }
        }
        y += HK_QK_K;
    }
}

// MARK: - Q6_K

/// Symmetric levels in -max_level .. max_level - 1 for 16-ish values: starting from the scale that maps
/// the value of largest magnitude to -max_level, tries the 18 scales max_level + 0.1 k (k = -9..9, k != 0)
/// and keeps the one that maximises (sum w x l)^2 / (sum w l^2) with w = x^2. Levels are stored offset by
/// max_level; returns the least-squares scale of the winner.
static float fit_symmetric_scale(int count, int max_level, const float *x /* [count] */,
                                 int8_t *levels /* [count] */) {
    float amax = 0.0f, extreme = 0.0f;
    for (int i = 0; i < count; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            extreme = x[i];
        }
    }
    if (amax < 1e-15f) {
        for (int i = 0; i < count; i++) levels[i] = 0;
        return 0.0f;
    }
    float inverse_scale = (float)-max_level / extreme;
    float cross_sum = 0.0f, square_sum = 0.0f;
    for (int i = 0; i < count; i++) {
        int level = hk_nearest_int(inverse_scale * x[i]);
        level = level < -max_level ? -max_level : level > max_level - 1 ? max_level - 1 : level;
        levels[i] = (int8_t)(level + max_level);
        float w = x[i] * x[i];
        cross_sum += w * x[i] * (float)level;
        square_sum += w * (float)level * (float)level;
    }
    float scale = square_sum != 0.0f ? cross_sum / square_sum : 0.0f;
    float best = scale * cross_sum;
    for (int k = -9; k <= 9; k++) {
        if (k == 0) continue;
        inverse_scale = -((float)max_level + 0.1f * (float)k) / extreme;
        cross_sum = 0.0f;
        square_sum = 0.0f;
        for (int i = 0; i < count; i++) {
            int level = hk_nearest_int(inverse_scale * x[i]);
            level = level < -max_level ? -max_level : level > max_level - 1 ? max_level - 1 : level;
            float w = x[i] * x[i];
            cross_sum += w * x[i] * (float)level;
            square_sum += w * (float)level * (float)level;
        }
        if (square_sum > 0 && cross_sum * cross_sum > best * square_sum) {
            for (int i = 0; i < count; i++) {
                int level = hk_nearest_int(inverse_scale * x[i]);
                level = level < -max_level ? -max_level : level > max_level - 1 ? max_level - 1 : level;
                levels[i] = (int8_t)(level + max_level);
            }
            scale = cross_sum / square_sum;
            best = scale * cross_sum;
        }
    }
    return scale;
}

void hk_quantize_row_q6_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n) {
    hk_block_q6_k *blocks = y;
    int8_t levels[HK_QK_K];
    float scales[HK_QK_K / 16];
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_q6_k *block = &blocks[b];
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int s = 0; s < HK_QK_K / 16; s++) {
            scales[s] = fit_symmetric_scale(16, 32, x + 16 * s, levels + 16 * s);
            if (fabsf(scales[s]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[s]);
                max_scale = scales[s];
            }
        }
        if (max_abs_scale < 1e-15f) {
            memset(block, 0, sizeof *block);
            continue;
        }

        // int8 sub-block scales: the largest maps to -128 (clamped at 127 on the other side).
        float inverse_scale = -128.0f / max_scale;
        block->d = hk_f32_to_f16_scalar(1.0f / inverse_scale);
        for (int s = 0; s < HK_QK_K / 16; s++) {
            int scale = hk_nearest_int(inverse_scale * scales[s]);
            block->scales[s] = (int8_t)(scale < 127 ? scale : 127);
        }
        float d = hk_f16_to_f32_scalar(block->d);
        for (int s = 0; s < HK_QK_K / 16; s++) {
            float step = d * (float)block->scales[s];
            if (step == 0.0f) continue;
            for (int i = 0; i < 16; i++) {
                int level = hk_nearest_int(x[16 * s + i] / step);
                level = level < -32 ? -32 : level > 31 ? 31 : level;
                levels[16 * s + i] = (int8_t)(level + 32);
            }
        }

        for (int half = 0; half < 2; half++) {
            const int8_t *l = levels + 128 * half;
            uint8_t *low = block->ql + 64 * half, *high = block->qh + 32 * half;
            for (int i = 0; i < 32; i++) {
                low[i] = (uint8_t)((l[i] & 0x0F) | ((l[i + 64] & 0x0F) << 4));
                low[i + 32] = (uint8_t)((l[i + 32] & 0x0F) | ((l[i + 96] & 0x0F) << 4));
                high[i] = (uint8_t)((l[i] >> 4) | ((l[i + 32] >> 4) << 2) | ((l[i + 64] >> 4) << 4) |
                                    ((l[i + 96] >> 4) << 6));
            }
        }
    }
}

void hk_dequantize_row_q6_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q6_k *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        const hk_block_q6_k *block = &blocks[b];
        float d = hk_f16_to_f32_scalar(block->d);
        for (int half = 0; half < 2; half++) {
            const uint8_t *low = block->ql + 64 * half, *high = block->qh + 32 * half;
            const int8_t *scales = block->scales + 8 * half;
            float *out = y + 128 * half;
            for (int i = 0; i < 32; i++) {
                int sub = i / 16;
                int q0 = ((low[i] & 0x0F) | (((high[i] >> 0) & 3) << 4)) - 32;
                int q1 = ((low[i + 32] & 0x0F) | (((high[i] >> 2) & 3) << 4)) - 32;
                int q2 = ((low[i] >> 4) | (((high[i] >> 4) & 3) << 4)) - 32;
                int q3 = ((low[i + 32] >> 4) | (((high[i] >> 6) & 3) << 4)) - 32;
                out[i] = d * (float)scales[sub] * (float)q0;
                out[i + 32] = d * (float)scales[sub + 2] * (float)q1;
                out[i + 64] = d * (float)scales[sub + 4] * (float)q2;
                out[i + 96] = d * (float)scales[sub + 6] * (float)q3;
            }
        }
        y += HK_QK_K;
    }
}

// MARK: - Q8_K (activations for the K formats)

static void quantize_row_q8_k_scalar(const float *x /* [n] */, hk_block_q8_k *blocks, int64_t n) {
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_q8_k *block = &blocks[b];
        float amax = 0.0f, extreme = 0.0f;
        for (int i = 0; i < HK_QK_K; i++) {
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                extreme = x[i];
            }
        }
        if (amax == 0.0f) {
            memset(block, 0, sizeof *block);
            continue;
        }
        // Negative multiplier: values keep |q| <= 127 either way and d = 1 / multiplier restores the sign.
        float multiplier = -127.0f / extreme;
        for (int i = 0; i < HK_QK_K; i++) {
            int q = hk_nearest_int(multiplier * x[i]);
            block->qs[i] = (int8_t)(q < 127 ? q : 127);
        }
        for (int j = 0; j < HK_QK_K / 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += block->qs[16 * j + i];
            block->bsums[j] = (int16_t)sum;
        }
        block->d = 1.0f / multiplier;
    }
}

/// Same result as the scalar code: the max is exact in any order, the first index reaching it is found
/// with a compare mask, products are IEEE and vcvtps2dq rounds half to even like hk_nearest_int.
HK_TARGET_AVX512 static void quantize_row_q8_k_avx512(const float *x /* [n] */, hk_block_q8_k *blocks, int64_t n) {
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_q8_k *block = &blocks[b];
        __m512 amax_vector = _mm512_setzero_ps();
        for (int i = 0; i < HK_QK_K; i += 16) {
            amax_vector = _mm512_max_ps(amax_vector, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
        }
        float amax = _mm512_reduce_max_ps(amax_vector);
        if (!(amax > 0.0f)) { // all zero (or NaN, where max_ps's order matters): the scalar code decides
            quantize_row_q8_k_scalar(x, block, HK_QK_K);
            continue;
        }
        float extreme = 0.0f;
        __m512 target = _mm512_set1_ps(amax);
        for (int i = 0; i < HK_QK_K; i += 16) {
            __mmask16 hits = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + i)), target, _CMP_EQ_OQ);
            if (hits) {
                extreme = x[i + __builtin_ctz(hits)];
                break;
            }
        }
        float multiplier = -127.0f / extreme;
        __m512 scale = _mm512_set1_ps(multiplier);
        __m512i limit = _mm512_set1_epi32(127);
        for (int i = 0; i < HK_QK_K; i += 16) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), scale));
            q = _mm512_min_epi32(q, limit);
            _mm_storeu_si128((__m128i *)(block->qs + i), _mm512_cvtepi32_epi8(q));
            // Each 16 values are one bsum.
            block->bsums[i / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        block->d = 1.0f / multiplier;
    }
}

/// The AVX-512 code's steps at 8 lanes: the same bytes as the scalar code (the first value of largest magnitude
/// from a compare mask, IEEE products, vcvtps2dq's half-to-even rounding). It was the one scalar step left in
/// K-quant decode on AVX2 machines (0.5 % of SmolLM2 Q4_K_M tg128 at one thread, perf).
HK_TARGET_AVX2 static void quantize_row_q8_k_avx2(const float *x /* [n] */, hk_block_q8_k *blocks, int64_t n) {
    const __m256 magnitude_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int64_t b = 0; b < n / HK_QK_K; b++, x += HK_QK_K) {
        hk_block_q8_k *block = &blocks[b];
        __m256 amax_vector = _mm256_setzero_ps();
        for (int i = 0; i < HK_QK_K; i += 8) {
            amax_vector = _mm256_max_ps(amax_vector, _mm256_and_ps(_mm256_loadu_ps(x + i), magnitude_mask));
        }
        float amax = hk_max_avx2(amax_vector);
        if (!(amax > 0.0f)) { // all zero (or NaN, where max_ps's order matters): the scalar code decides
            quantize_row_q8_k_scalar(x, block, HK_QK_K);
            continue;
        }
        float extreme = 0.0f;
        __m256 target = _mm256_set1_ps(amax);
        for (int i = 0; i < HK_QK_K; i += 8) {
            __m256 equal = _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), magnitude_mask), target, _CMP_EQ_OQ);
            int hits = _mm256_movemask_ps(equal);
            if (hits) {
                extreme = x[i + __builtin_ctz((unsigned)hits)];
                break;
            }
        }
        float multiplier = -127.0f / extreme;
        __m256 scale = _mm256_set1_ps(multiplier);
        const __m256i limit = _mm256_set1_epi32(127);
        for (int i = 0; i < HK_QK_K; i += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), scale)), limit);
            }
            // Each 16 values are one bsum.
            for (int half = 0; half < 2; half++) {
                __m256i sum = _mm256_add_epi32(q[2 * half], q[2 * half + 1]);
                __m128i lanes = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
                lanes = _mm_add_epi32(lanes, _mm_shuffle_epi32(lanes, _MM_SHUFFLE(1, 0, 3, 2)));
                lanes = _mm_add_epi32(lanes, _mm_shuffle_epi32(lanes, _MM_SHUFFLE(2, 3, 0, 1)));
                block->bsums[i / 16 + half] = (int16_t)_mm_cvtsi128_si32(lanes);
            }
            // Packs interleave 128-bit lanes; a final dword permute restores the order.
            __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(block->qs + i), packed);
        }
        block->d = 1.0f / multiplier;
    }
}

void hk_quantize_row_q8_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: quantize_row_q8_k_avx512(x, y, n); break;
    case HK_ISA_AVX2: quantize_row_q8_k_avx2(x, y, n); break;
    default: quantize_row_q8_k_scalar(x, y, n); break;
    }
}

void hk_dequantize_row_q8_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q8_k *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        for (int i = 0; i < HK_QK_K; i++) y[b * HK_QK_K + i] = blocks[b].d * (float)blocks[b].qs[i];
    }
}

void hk_quantize_rows_q8_k(const float *x /* [rows, in] */, hk_block_q8_k *y, int rows, int in) {
    for (int r = 0; r < rows; r++) hk_quantize_row_q8_k(x + (size_t)r * in, y + (size_t)r * (in / HK_QK_K), in);
}

// MARK: - A32 activations (for Q8_0 and Q4_0 weights)

/// Blocks whose largest magnitude is below this (or NaN) quantize to zero.
#define HK_A32_TINY 1e-30f

static void quantize_a32_scalar(const float *x /* [n] */, int8_t *q /* [n] */, float *d /* [n / 32] */, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        const float *values = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(values[i]));
        if (!(amax >= HK_A32_TINY)) amax = 0.0f; // 127 / amax would overflow; such a block counts as zero
        float multiplier = amax != 0.0f ? 127.0f / amax : 0.0f;
        d[b] = amax / 127.0f;
        // nearbyintf rounds half to even in the default mode, like vcvtps2dq.
        for (int i = 0; i < 32; i++) q[32 * b + i] = (int8_t)(int)nearbyintf(values[i] * multiplier);
    }
}

HK_TARGET_AVX512 static void quantize_a32_avx512(const float *x /* [n] */, int8_t *q /* [n] */,
                                                 float *d /* [n / 32] */, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        __m512 low = _mm512_loadu_ps(x + 32 * b), high = _mm512_loadu_ps(x + 32 * b + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(low), _mm512_abs_ps(high)));
        if (!(amax >= HK_A32_TINY)) amax = 0.0f;
        float multiplier = amax != 0.0f ? 127.0f / amax : 0.0f;
        d[b] = amax / 127.0f;
        __m512 scale = _mm512_set1_ps(multiplier);
        _mm_storeu_si128((__m128i *)(q + 32 * b), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(low, scale))));
        _mm_storeu_si128((__m128i *)(q + 32 * b + 16),
                         _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(high, scale))));
    }
}

HK_TARGET_AVX2 static void quantize_a32_avx2(const float *x /* [n] */, int8_t *q /* [n] */, float *d /* [n / 32] */,
                                             int64_t n) {
    const __m256 sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (int64_t b = 0; b < n / 32; b++) {
        __m256 v[4];
        __m256 amax_vector = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 32 * b + 8 * k);
            amax_vector = _mm256_max_ps(amax_vector, _mm256_and_ps(v[k], sign_mask));
        }
        float amax = hk_max_avx2(amax_vector);
        if (!(amax >= HK_A32_TINY)) amax = 0.0f;
        float multiplier = amax != 0.0f ? 127.0f / amax : 0.0f;
        d[b] = amax / 127.0f;
        __m256 scale = _mm256_set1_ps(multiplier);
        __m256i i[4];
        for (int k = 0; k < 4; k++) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], scale));
        // Packs interleave 128-bit lanes; a final dword permute restores the order.
        __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
        packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + 32 * b), packed);
    }
}

void hk_quantize_activations_a32(const float *x /* [n] */, int8_t *q /* [n] */, float *d /* [n / 32] */, int64_t n) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: quantize_a32_avx512(x, q, d, n); break;
    case HK_ISA_AVX2: quantize_a32_avx2(x, q, d, n); break;
    default: quantize_a32_scalar(x, q, d, n); break;
    }
}

void hk_quantize_rows_a32(const float *x /* [rows, in] */, int8_t *q /* [rows, in] */, float *d /* [rows, in / 32] */,
                          int rows, int in) {
    for (int r = 0; r < rows; r++) {
        hk_quantize_activations_a32(x + (size_t)r * in, q + (size_t)r * in, d + (size_t)r * (in / 32), in);
    }
}

// MARK: - Whole matrices

typedef void (*quantize_row_fn)(const float *x, void *y, int64_t n);
typedef void (*dequantize_row_fn)(const void *x, float *y, int64_t n);

static quantize_row_fn quantizer_for(int type) {
    switch (type) {
    case HK_TYPE_Q8_0: return hk_quantize_row_q8_0;
    case HK_TYPE_Q4_0: return hk_quantize_row_q4_0;
    case HK_TYPE_Q5_0: return hk_quantize_row_q5_0;
    case HK_TYPE_Q4_1: return hk_quantize_row_q4_1;
    case HK_TYPE_Q5_1: return hk_quantize_row_q5_1;
    case HK_TYPE_Q8_1: return hk_quantize_row_q8_1;
    case HK_TYPE_IQ4_NL: return hk_quantize_row_iq4_nl;
    case HK_TYPE_Q4_K: return hk_quantize_row_q4_k;
    case HK_TYPE_Q6_K: return hk_quantize_row_q6_k;
    case HK_TYPE_Q8_K: return hk_quantize_row_q8_k;
    case HK_TYPE_Q2_K: return hk_quantize_row_q2_k;
    case HK_TYPE_Q3_K: return hk_quantize_row_q3_k;
    case HK_TYPE_Q5_K: return hk_quantize_row_q5_k;
    case HK_TYPE_IQ4_XS: return hk_quantize_row_iq4_xs;
    default: return NULL;
    }
}

static dequantize_row_fn dequantizer_for(int type) {
    switch (type) {
    case HK_TYPE_Q8_0: return hk_dequantize_row_q8_0;
    case HK_TYPE_Q4_0: return hk_dequantize_row_q4_0;
    case HK_TYPE_Q5_0: return hk_dequantize_row_q5_0;
    case HK_TYPE_Q4_1: return hk_dequantize_row_q4_1;
    case HK_TYPE_Q5_1: return hk_dequantize_row_q5_1;
    case HK_TYPE_Q8_1: return hk_dequantize_row_q8_1;
    case HK_TYPE_IQ4_NL: return hk_dequantize_row_iq4_nl;
    case HK_TYPE_Q4_K: return hk_dequantize_row_q4_k;
    case HK_TYPE_Q6_K: return hk_dequantize_row_q6_k;
    case HK_TYPE_Q8_K: return hk_dequantize_row_q8_k;
    case HK_TYPE_Q2_K: return hk_dequantize_row_q2_k;
    case HK_TYPE_Q3_K: return hk_dequantize_row_q3_k;
    case HK_TYPE_Q5_K: return hk_dequantize_row_q5_k;
    case HK_TYPE_IQ4_XS: return hk_dequantize_row_iq4_xs;
    case HK_TYPE_IQ2_XXS: return hk_dequantize_row_iq2_xxs;
    case HK_TYPE_IQ2_XS: return hk_dequantize_row_iq2_xs;
    case HK_TYPE_IQ2_S: return hk_dequantize_row_iq2_s;
    case HK_TYPE_IQ3_XXS: return hk_dequantize_row_iq3_xxs;
    case HK_TYPE_IQ3_S: return hk_dequantize_row_iq3_s;
    case HK_TYPE_IQ1_S: return hk_dequantize_row_iq1_s;
    case HK_TYPE_IQ1_M: return hk_dequantize_row_iq1_m;
    case HK_TYPE_TQ1_0: return hk_dequantize_row_tq1_0;
    case HK_TYPE_TQ2_0: return hk_dequantize_row_tq2_0;
    default: return NULL;
    }
}

int hk_quantize(int type, const float *x /* [rows, n] */, void *y /* [rows, row bytes] */, int64_t rows, int64_t n) {
    quantize_row_fn quantize = quantizer_for(type);
    int64_t block = hk_quant_block_size(type);
    if (quantize == NULL || n % block != 0 || rows < 0) return -1;
    size_t row_bytes = hk_quant_row_bytes(type, n);
    int threads = hk_thread_count();
    // Rows are independent; the K formats cost ~50 flops per value, so even small matrices are worth a team.
    if (rows * n < ((int64_t)1 << 14)) threads = 1;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < rows; r++) quantize(x + r * n, (char *)y + (size_t)r * row_bytes, n);
    return 0;
}

void hk_quantize_q8_0(const float *x /* [rows, n] */, void *y, int64_t rows, int64_t n) {
    hk_quantize(HK_TYPE_Q8_0, x, y, rows, n);
}
void hk_quantize_q4_0(const float *x /* [rows, n] */, void *y, int64_t rows, int64_t n) {
    hk_quantize(HK_TYPE_Q4_0, x, y, rows, n);
}
void hk_quantize_q4_k(const float *x /* [rows, n] */, void *y, int64_t rows, int64_t n) {
    hk_quantize(HK_TYPE_Q4_K, x, y, rows, n);
}
void hk_quantize_q6_k(const float *x /* [rows, n] */, void *y, int64_t rows, int64_t n) {
    hk_quantize(HK_TYPE_Q6_K, x, y, rows, n);
}

int hk_dequantize_row(int type, const void *x /* [n / block size] blocks */, float *y /* [n] */, int64_t n) {
    dequantize_row_fn dequantize = dequantizer_for(type);
    if (dequantize == NULL || n % hk_quant_block_size(type) != 0) return -1;
    dequantize(x, y, n);
    return 0;
}

// MARK: - References for the matrix products

static int is_weight_type(int type) {
    return type == HK_TYPE_Q8_0 || type == HK_TYPE_Q4_0 || type == HK_TYPE_Q4_K || type == HK_TYPE_Q6_K ||
           hk_is_legacy_type(type) || hk_is_k_more_type(type);
}

/// Types whose products only have the reference and the dequantize + sgemm paths: the IQ/TQ codebook and
/// ternary formats (Q5_0 is a legacy type with integer kernels, quant_legacy.c).
static int is_dequantize_only_type(int type) {
    return hk_is_iq_type(type);
}

int hk_matmul_rows_quant_ref(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                             float *y /* [rows, out] */, int rows, int in, int out) {
    // The IQ/TQ formats too: they have no fast kernel, so this is their product.
    if ((!is_weight_type(type) && !is_dequantize_only_type(type)) || in % hk_quant_block_size(type) != 0) return -1;
    size_t row_bytes = hk_quant_row_bytes(type, in);
    float *weights = malloc((size_t)in * sizeof(float));
    if (weights == NULL) return -1;
    for (int o = 0; o < out; o++) {
        hk_dequantize_row(type, (const char *)w + (size_t)o * row_bytes, weights, in);
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int i = 0; i < in; i++) sum += (double)weights[i] * x[(size_t)r * in + i];
            y[(size_t)r * out + o] = (float)sum;
        }
    }
    free(weights);
    return 0;
}

int hk_matmul_many_quant_ref(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                             float *y /* [rows, out] */, int rows, int in, int out) {
    return hk_matmul_rows_quant_ref(type, w, x, y, rows, in, out);
}

/// sum over blocks of (weight scale * activation scale) * integer dot, in double.
static double int_dot_q8_0(const hk_block_q8_0 *w, const int8_t *q, const float *d, int in) {
    double sum = 0;
    for (int b = 0; b < in / 32; b++) {
        int dot = 0;
        for (int i = 0; i < 32; i++) dot += w[b].qs[i] * q[32 * b + i];
        sum += (double)(hk_f16_to_f32_scalar(w[b].d) * d[b]) * dot;
    }
    return sum;
}

static double int_dot_q4_0(const hk_block_q4_0 *w, const int8_t *q, const float *d, int in) {
    double sum = 0;
    for (int b = 0; b < in / 32; b++) {
        int dot = 0;
        for (int j = 0; j < 16; j++) {
            dot += ((w[b].qs[j] & 0x0F) - 8) * q[32 * b + j] + ((w[b].qs[j] >> 4) - 8) * q[32 * b + 16 + j];
        }
        sum += (double)(hk_f16_to_f32_scalar(w[b].d) * d[b]) * dot;
    }
    return sum;
}

/// d * da * sum_s scale_s * dot_s - dmin * da * sum_s min_s * (sum of the sub-block's activations).
static double int_dot_q4_k(const hk_block_q4_k *w, const hk_block_q8_k *a, int in) {
    double sum = 0;
    for (int b = 0; b < in / HK_QK_K; b++) {
        int scaled = 0, mins = 0;
        for (int s = 0; s < 8; s++) {
            uint8_t scale, min;
            hk_q4k_scale_min(w[b].scales, s, &scale, &min);
            int dot = 0;
            for (int l = 0; l < 32; l++) {
                int c = s / 2, shift = (s % 2) * 4;
                dot += ((w[b].qs[32 * c + l] >> shift) & 0x0F) * a[b].qs[32 * s + l];
            }
            scaled += scale * dot;
            mins += min * (a[b].bsums[2 * s] + a[b].bsums[2 * s + 1]);
        }
        sum += (double)(hk_f16_to_f32_scalar(w[b].d) * a[b].d) * scaled -
               (double)(hk_f16_to_f32_scalar(w[b].dmin) * a[b].d) * mins;
    }
    return sum;
}

static double int_dot_q6_k(const hk_block_q6_k *w, const hk_block_q8_k *a, int in) {
    double sum = 0;
    for (int b = 0; b < in / HK_QK_K; b++) {
        int scaled = 0;
        for (int s = 0; s < 16; s++) {
            int dot = 0;
            for (int i = 0; i < 16; i++) {
                int index = 16 * s + i; // value index in the block
                int half = index / 128, within = index % 128, quarter = within / 32, l = within % 32;
                uint8_t low = w[b].ql[64 * half + 32 * (quarter & 1) + l];
                int nibble = quarter < 2 ? (low & 0x0F) : (low >> 4);
                int top = (w[b].qh[32 * half + l] >> (2 * quarter)) & 3;
                dot += ((nibble | (top << 4)) - 32) * a[b].qs[index];
            }
            scaled += w[b].scales[s] * dot;
        }
        sum += (double)(hk_f16_to_f32_scalar(w[b].d) * a[b].d) * scaled;
    }
    return sum;
}

int hk_matmul_quant_int_ref(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                            float *y /* [rows, out] */, int rows, int in, int out) {
    if (!is_weight_type(type) || in % hk_quant_block_size(type) != 0) return -1;
    size_t row_bytes = hk_quant_row_bytes(type, in);
    int k_format = type == HK_TYPE_Q4_K || type == HK_TYPE_Q6_K || hk_is_k_more_type(type);
    int8_t *q = NULL;
    float *d = NULL;
    hk_block_q8_k *a = NULL;
    if (k_format) {
        a = malloc((size_t)rows * (in / HK_QK_K) * sizeof *a + 1);
        if (a == NULL) return -1;
        for (int r = 0; r < rows; r++) quantize_row_q8_k_scalar(x + (size_t)r * in, a + (size_t)r * (in / HK_QK_K), in);
    } else {
        q = malloc((size_t)rows * in + 1);
        d = malloc((size_t)rows * (in / 32) * sizeof(float) + 1);
        if (q == NULL || d == NULL) {
            free(q);
            free(d);
            return -1;
        }
        for (int r = 0; r < rows; r++) {
            quantize_a32_scalar(x + (size_t)r * in, q + (size_t)r * in, d + (size_t)r * (in / 32), in);
        }
    }
    for (int o = 0; o < out; o++) {
        const void *row = (const char *)w + (size_t)o * row_bytes;
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            switch (type) {
            case HK_TYPE_Q8_0: sum = int_dot_q8_0(row, q + (size_t)r * in, d + (size_t)r * (in / 32), in); break;
            case HK_TYPE_Q4_0: sum = int_dot_q4_0(row, q + (size_t)r * in, d + (size_t)r * (in / 32), in); break;
            case HK_TYPE_Q4_K: sum = int_dot_q4_k(row, a + (size_t)r * (in / HK_QK_K), in); break;
            case HK_TYPE_Q4_1: case HK_TYPE_Q5_0: case HK_TYPE_Q5_1: case HK_TYPE_IQ4_NL: sum = hk_legacy_int_dot(type, row, q + (size_t)r * in, d + (size_t)r * (in / 32), in); break;
            case HK_TYPE_Q2_K: case HK_TYPE_Q3_K: case HK_TYPE_Q5_K: case HK_TYPE_IQ4_XS:
                sum = hk_int_dot_k_more(type, row, a + (size_t)r * (in / HK_QK_K), in);
                break;
            default: sum = int_dot_q6_k(row, a + (size_t)r * (in / HK_QK_K), in); break;
            }
            y[(size_t)r * out + o] = (float)sum;
        }
    }
    free(q);
    free(d);
    free(a);
    return 0;
}

// MARK: - Scratch

void *hk_quant_scratch(int slot, size_t bytes) {
    static _Thread_local void *buffers[4];
    static _Thread_local size_t capacities[4];
    if (bytes > capacities[slot]) {
        free(buffers[slot]);
        size_t capacity = (bytes + 4095) / 4096 * 4096;
        buffers[slot] = aligned_alloc(64, capacity);
        capacities[slot] = buffers[slot] != NULL ? capacity : 0;
    }
    return buffers[slot];
}
