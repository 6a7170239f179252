// The 32-value "legacy" GGUF types Q4_1, Q5_0, Q5_1 and IQ4_NL, and the Q8_1 activation format: ggml-exact
// quantizers and dequantizers (Q5_0's are in quant.c with Q4_0's), the integer reference, the decode kernels
// at three ISA levels (plus Q4_0's AVX2 one, which shares IQ4_NL's block layout), and the level decoding the
// int8 GEMM (quant_gemm.c) repacks from.
//
// Every kernel multiplies the weights' integer levels with A32 activations (hk_quantize_activations_a32:
// int8 per block of 32 with an f32 scale) exactly, then scales each block's integer sum in f32:
//   Q5_0    value = d * (q - 16),          q in 0..31
//   Q4_1    value = d * q + m,             q in 0..15
//   Q5_1    value = d * q + m,             q in 0..31
//   IQ4_NL  value = d * codebook[q],       q in 0..15, codebook in -127..113
// so y = sum_b (d_w d_a) * dot_b (+ m_w * d_a * (sum of the block's activations) for Q4_1/Q5_1). llama.cpp
// pairs Q4_1/Q5_1 with Q8_1 activations, whose s = d_a * sum is rounded to f16; here the sum stays an exact
// integer until it meets the f32 scale, which is closer to the f32 product at the same cost.
//
// Byte-exactness of the quantizers: as in quant.c, plain f32 arithmetic in ggml's order with FMA contraction
// off (the kernels' FMAs are explicit intrinsics, which the pragma does not touch).
#include "quant_internal.h"

#include <float.h>

#pragma clang fp contract(off)

_Static_assert(sizeof(hk_block_q4_1) == 20, "Q4_1 block is 20 bytes");
_Static_assert(sizeof(hk_block_q5_1) == 24, "Q5_1 block is 24 bytes");
_Static_assert(sizeof(hk_block_iq4_nl) == 18, "IQ4_NL block is 18 bytes");
_Static_assert(sizeof(hk_block_q8_1) == 36, "Q8_1 block is 36 bytes");

const int8_t hk_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// MARK: - Block fields
//
// Every legacy block starts with its f16 scale d; Q4_1/Q5_1 follow with the f16 minimum m, Q5_0/Q5_1 with the
// 32 fifth bits (qh), and all end with the 16 nibble bytes (value j low, value j + 16 high).

HK_INLINE size_t legacy_block_bytes(int type) {
    return type == HK_TYPE_Q4_1 ? 20 : type == HK_TYPE_Q5_0 ? 22 : type == HK_TYPE_Q5_1 ? 24 : 18;
}
HK_INLINE int legacy_has_fifth_bit(int type) { return type == HK_TYPE_Q5_0 || type == HK_TYPE_Q5_1; }
HK_INLINE size_t legacy_qh_offset(int type) { return type == HK_TYPE_Q5_0 ? 2 : 4; }
HK_INLINE size_t legacy_qs_offset(int type) { return legacy_block_bytes(type) - 16; }

HK_INLINE uint16_t load_u16(const uint8_t *p) {
    uint16_t value;
    memcpy(&value, p, sizeof value);
    return value;
}

HK_INLINE uint32_t load_u32(const uint8_t *p) {
    uint32_t value;
    memcpy(&value, p, sizeof value);
    return value;
}

/// Block b's 32 stored levels as the integers the weights are multiples of (Q5_0: q - 16, IQ4_NL: the codebook
/// value, Q4_1/Q5_1: q), and its scale and minimum (0 without one).
HK_INLINE void decode_block_scalar(int type, const uint8_t *block, int levels[32], float *d, float *m) {
    *d = hk_f16_to_f32_scalar(load_u16(block));
    *m = hk_legacy_has_mins(type) ? hk_f16_to_f32_scalar(load_u16(block + 2)) : 0.0f;
    const uint8_t *qs = block + legacy_qs_offset(type);
    uint32_t high_bits = legacy_has_fifth_bit(type) ? load_u32(block + legacy_qh_offset(type)) : 0;
    for (int j = 0; j < 16; j++) {
        int low = (qs[j] & 0x0F) | (int)((high_bits >> j) & 1) << 4;
        int high = (qs[j] >> 4) | (int)((high_bits >> (j + 16)) & 1) << 4;
        if (type == HK_TYPE_IQ4_NL) {
            low = hk_iq4nl_values[low];
            high = hk_iq4nl_values[high];
        } else if (type == HK_TYPE_Q5_0) {
            low -= 16;
            high -= 16;
        }
        levels[j] = low;
        levels[j + 16] = high;
    }
}

/// 32 five-bit levels into Q5's nibbles and fifth-bit word.
static void store_five_bit_levels(const int levels[32], uint8_t qs[16], uint8_t qh[4]) {
    uint32_t high_bits = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((levels[j] & 0x0F) | ((levels[j + 16] & 0x0F) << 4));
        high_bits |= (uint32_t)((levels[j] >> 4) & 1) << j;
        high_bits |= (uint32_t)((levels[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh, &high_bits, sizeof high_bits);
}

// MARK: - Quantizers (ggml's reference algorithms)

/// Q4_1 and Q5_1: the block's range split into 15 or 31 steps from its minimum; levels round half up
/// (truncation of t + 0.5, t >= 0). Q4_1 clamps 16 to 15; Q5_1 cannot exceed 31.
static void quantize_block_asymmetric(const float *x /* [32] */, int max_level, uint16_t *d_out, uint16_t *m_out,
                                      int levels[32]) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int i = 0; i < 32; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
    }
    float d = (max - min) / (float)max_level;
    float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    *d_out = hk_f32_to_f16_scalar(d);
    *m_out = hk_f32_to_f16_scalar(min);
    for (int i = 0; i < 32; i++) {
        int level = (int)((x[i] - min) * inverse + 0.5f);
        levels[i] = level > max_level ? max_level : level;
    }
}

void hk_quantize_row_q4_1(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n) {
    hk_block_q4_1 *blocks = y;
    for (int64_t b = 0; b < n / 32; b++) {
        int levels[32];
        quantize_block_asymmetric(x + 32 * b, 15, &blocks[b].d, &blocks[b].m, levels);
        for (int j = 0; j < 16; j++) blocks[b].qs[j] = (uint8_t)(levels[j] | (levels[j + 16] << 4));
    }
}

void hk_quantize_row_q5_1(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n) {
    hk_block_q5_1 *blocks = y;
    for (int64_t b = 0; b < n / 32; b++) {
        int levels[32];
        quantize_block_asymmetric(x + 32 * b, 31, &blocks[b].d, &blocks[b].m, levels);
        store_five_bit_levels(levels, blocks[b].qs, blocks[b].qh);
    }
}

void hk_quantize_row_q8_1(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n) {
    hk_block_q8_1 *blocks = y;
    for (int64_t b = 0; b < n / 32; b++) {
        const float *values = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(values[i]));
        float d = amax / 127.0f;
        float inverse = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = hk_f32_to_f16_scalar(d);
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            blocks[b].qs[i] = (int8_t)roundf(values[i] * inverse); // halves away from zero, as ggml
            sum += blocks[b].qs[i];
        }
        blocks[b].s = hk_f32_to_f16_scalar((float)sum * d);
    }
}

/// The codebook index nearest to x (ggml's best_index_int8: a tie goes to the upper entry).
HK_INLINE int nearest_codebook_index(float x) {
    const int8_t *values = hk_iq4nl_values;
    if (x <= values[0]) return 0;
    if (x >= values[15]) return 15;
    int low = 0, high = 15;
    while (high - low > 1) {
        int middle = (low + high) / 2;
        if (x < values[middle]) high = middle;
        else low = middle;
    }
    return x - values[high - 1] < values[high] - x ? high - 1 : high;
}

/// The weighted fit of codebook levels to x for inverse scale `inverse`: sum w q x and sum w q^2.
HK_INLINE void codebook_fit(const float *x /* [32] */, const float *weights /* [32] */, float inverse,
                            float *cross_sum, float *square_sum, uint8_t *levels /* [32] or NULL */) {
    float sumqx = 0.0f, sumq2 = 0.0f;
    for (int j = 0; j < 32; j++) {
        int level = nearest_codebook_index(inverse * x[j]);
        if (levels != NULL) levels[j] = (uint8_t)level;
        float q = (float)hk_iq4nl_values[level];
        sumqx += weights[j] * q * x[j];
        sumq2 += weights[j] * q * q;
    }
    *cross_sum = sumqx;
    *square_sum = sumq2;
}

/// One IQ4_NL block as llama-quantize writes it without an importance matrix (ggml's quantize_iq4_nl with
/// 7 tries): weights x^2; the scale that maps the signed extreme to -127 gives the first levels and the
/// least-squares scale; 15 more grids (inverse scales (k - 127) / extreme, k = -7..7) are kept when they fit
/// better; final levels from the chosen (f32) scale. A block below 1e-15 stores d = 0 and index 8 everywhere.
static void quantize_block_iq4_nl(const float *x /* [32] */, hk_block_iq4_nl *block) {
    const int tries = 7;
    float weights[32];
    float amax = 0.0f, extreme = 0.0f;
    for (int j = 0; j < 32; j++) {
        weights[j] = x[j] * x[j];
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            extreme = x[j];
        }
    }
    float scale = 0.0f;
    if (!(amax < 1e-15f)) {
        float d = -extreme / (float)hk_iq4nl_values[0];
        float sumqx, sumq2;
        codebook_fit(x, weights, 1.0f / d, &sumqx, &sumq2, NULL);
        d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
        float best = d * sumqx;
        for (int step = -tries; step <= tries; step++) {
            codebook_fit(x, weights, (float)(step + hk_iq4nl_values[0]) / extreme, &sumqx, &sumq2, NULL);
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scale = d;
    }
    block->d = hk_f32_to_f16_scalar(scale);
    float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
    uint8_t levels[32];
    for (int j = 0; j < 32; j++) levels[j] = (uint8_t)nearest_codebook_index(inverse * x[j]);
    for (int j = 0; j < 16; j++) block->qs[j] = (uint8_t)(levels[j] | (levels[j + 16] << 4));
}

void hk_quantize_row_iq4_nl(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n) {
    hk_block_iq4_nl *blocks = y;
    for (int64_t b = 0; b < n / 32; b++) quantize_block_iq4_nl(x + 32 * b, &blocks[b]);
}

// MARK: - Dequantizers (ggml's formulas: level * d + m, d * codebook value)

void hk_dequantize_row_q4_1(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q4_1 *blocks = x;
    for (int64_t b = 0; b < n / 32; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d), m = hk_f16_to_f32_scalar(blocks[b].m);
        for (int j = 0; j < 16; j++) {
            y[32 * b + j] = (float)(blocks[b].qs[j] & 0x0F) * d + m;
            y[32 * b + j + 16] = (float)(blocks[b].qs[j] >> 4) * d + m;
        }
    }
}

void hk_dequantize_row_q5_1(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q5_1 *blocks = x;
    for (int64_t b = 0; b < n / 32; b++) {
        int levels[32];
        float d, m;
        decode_block_scalar(HK_TYPE_Q5_1, (const uint8_t *)&blocks[b], levels, &d, &m);
        for (int i = 0; i < 32; i++) y[32 * b + i] = (float)levels[i] * d + m;
    }
}

void hk_dequantize_row_q8_1(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_q8_1 *blocks = x;
    for (int64_t b = 0; b < n / 32; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        for (int i = 0; i < 32; i++) y[32 * b + i] = (float)blocks[b].qs[i] * d;
    }
}

void hk_dequantize_row_iq4_nl(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq4_nl *blocks = x;
    for (int64_t b = 0; b < n / 32; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        for (int j = 0; j < 16; j++) {
            y[32 * b + j] = d * (float)hk_iq4nl_values[blocks[b].qs[j] & 0x0F];
            y[32 * b + j + 16] = d * (float)hk_iq4nl_values[blocks[b].qs[j] >> 4];
        }
    }
}

// MARK: - Integer reference

double hk_legacy_int_dot(int type, const void *w /* [in / 32] blocks */, const int8_t *q /* [in] */,
                         const float *d /* [in / 32] */, int in) {
    const uint8_t *row = w;
    size_t block_bytes = legacy_block_bytes(type);
    double sum = 0;
    for (int b = 0; b < in / 32; b++) {
        int levels[32];
        float weight_scale, weight_min;
        decode_block_scalar(type, row + (size_t)b * block_bytes, levels, &weight_scale, &weight_min);
        int dot = 0, activation_sum = 0;
        for (int i = 0; i < 32; i++) {
            dot += levels[i] * q[32 * b + i];
            activation_sum += q[32 * b + i];
        }
        sum += (double)(weight_scale * d[b]) * dot;
        if (hk_legacy_has_mins(type)) sum += (double)(weight_min * d[b]) * activation_sum;
    }
    return sum;
}

// MARK: - Decode: scalar and AVX2 (A32 activations + block sums)
//
// Pack per row: the int8 values [in], their block scales d_a [in / 32], and d_a * (the block's integer sum)
// [in / 32] for the minimum term of Q4_1/Q5_1 and the level offsets of Q5_0 and (AVX2 kernel) Q4_0.

size_t hk_stride_a32_sums(int in) { return round_up_64((size_t)in + (size_t)in / 32 * 2 * sizeof(float)); }

void hk_pack_a32_sums(const float *x /* [rows, in] */, int rows, int in, uint8_t *pack, size_t stride) {
    for (int r = 0; r < rows; r++) {
        uint8_t *p = pack + (size_t)r * stride;
        int8_t *q = (int8_t *)p;
        float *d = (float *)(p + in), *scaled_sums = d + in / 32;
        hk_quantize_activations_a32(x + (size_t)r * in, q, d, in);
        for (int b = 0; b < in / 32; b++) {
            int sum = 0;
            for (int i = 0; i < 32; i++) sum += q[32 * b + i];
            scaled_sums[b] = d[b] * (float)sum;
        }
    }
}

HK_INLINE void legacy_range_scalar(const int type, const uint8_t *w /* [out, in] blocks */, const uint8_t *pack,
                                   size_t stride, float *y /* [rows, out] */, int rows, int in, int out,
                                   int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(type, in), block_bytes = legacy_block_bytes(type);
    for (int o = first_output; o < end_output; o++) {
        const uint8_t *row = w + (size_t)o * row_bytes;
        for (int r = 0; r < rows; r++) {
            const int8_t *q = (const int8_t *)(pack + (size_t)r * stride);
            const float *d = (const float *)(pack + (size_t)r * stride + in), *scaled_sums = d + in / 32;
            float sum = 0.0f;
            for (int b = 0; b < in / 32; b++) {
                int levels[32];
                float weight_scale, weight_min;
                decode_block_scalar(type, row + (size_t)b * block_bytes, levels, &weight_scale, &weight_min);
                int dot = 0;
                for (int i = 0; i < 32; i++) dot += levels[i] * q[32 * b + i];
                sum += (weight_scale * d[b]) * (float)dot;
                if (hk_legacy_has_mins(type)) sum += weight_min * scaled_sums[b];
            }
            y[(size_t)r * out + o] = sum;
        }
    }
}

/// The 32 levels of one block in value order, as unsigned bytes (stored level + hk_legacy_level_offset:
/// Q4_1 0..15, Q5_0/Q5_1 0..31, IQ4_NL codebook + 128).
HK_TARGET_AVX2 HK_INLINE __m256i legacy_levels_avx2(const int type, const uint8_t *block) {
    __m128i packed = _mm_loadu_si128((const __m128i *)(block + legacy_qs_offset(type)));
    __m256i levels = _mm256_and_si256(
        _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1), _mm256_set1_epi8(0x0F));
    if (legacy_has_fifth_bit(type)) {
        // Byte i takes bit i of qh: broadcast the word, pick byte i / 8 into byte i (bytes 0..15 from qh bytes
        // 0, 1; bytes 16..31 from 2, 3), test bit i % 8.
        __m256i word = _mm256_set1_epi32((int)load_u32(block + legacy_qh_offset(type)));
        __m256i spread = _mm256_shuffle_epi8(word, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
        levels = _mm256_or_si256(levels, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
    }
    if (type == HK_TYPE_IQ4_NL) {
        const __m128i table = _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153,
                                            (char)166, (char)181, (char)197, (char)217, (char)241);
        levels = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(table), levels);
    }
    return levels;
}

// MARK: - Decode: AVX2, two outputs per register (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL)
//
// For the nibble types a kernel that takes one output at a time spends most of a block on unpacking that
// output's levels and scaling one dot product. Here two outputs share each register: one 16-byte load per
// output puts output o's nibbles in the low half and o + 1's in the high half, so one AND gives values 0..15 of
// both and one shift + AND values 16..31; the activations meet them as [a0..a15 | a0..a15] and
// [a16..a31 | a16..a31] (two 128-bit broadcast loads per block, shared by every output). Q4_0, Q4_1, Q5_0 and
// Q5_1 take four outputs (two such pairs) at a time, so that their four f16 scales (and minimums) convert in one
// instruction and the activation loads are shared by four; IQ4_NL takes eight (below). Q5's fifth bits reach
// both halves of a pair from one broadcast of the four outputs' qh words. Each output's lanes see the same
// operations whatever its partners (a missing one repeats the last output), so results do not depend on how
// outputs are grouped or split between threads. No weights are copied or repacked.
//
// Q4_1, Q5_0 and Q5_1 went one output at a time before (a whole register per output and block, one scale
// conversion and multiply-add each): on one Zen 3 core ([5632, 2048], alternated runs) Q5_0 14.3 -> 16.5 G
// weights/s from memory and 11.0 -> 14.9 from L3, Q5_1 14.5 -> 16.5 from memory; Q4_1 about the same.

/// Q5's fifth bits as 0x10 bytes in the pair layout: `words` holds the four outputs' qh words in every 128-bit
/// lane; `pick` spreads byte 2k (low) or 2k + 1 (high) of the pair's two words over the lanes' sixteen bytes.
HK_TARGET_AVX2 HK_INLINE __m256i fifth_bits_avx2(__m256i words, __m256i pick) {
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i spread = _mm256_and_si256(_mm256_shuffle_epi8(words, pick), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(spread, bit), _mm256_set1_epi8(0x10));
}

/// Outputs o..o + count - 1 (count 1..4) for activation rows first_row..first_row + tile_rows - 1 (up to 2),
/// type Q4_0, Q4_1, Q5_0 or Q5_1.
HK_TARGET_AVX2 HK_INLINE void legacy_quad_tile_avx2(const int type, const uint8_t *w, size_t row_bytes,
                                                    const uint8_t *pack, size_t stride, float *y, int in, int out,
                                                    int o, int count, int first_row, const int tile_rows) {
    const size_t block_bytes = legacy_block_bytes(type), qs_offset = legacy_qs_offset(type);
    const int has_mins = hk_legacy_has_mins(type), five_bits = legacy_has_fifth_bit(type);
    const uint8_t *weight_rows[4];
    for (int k = 0; k < 4; k++) weight_rows[k] = w + (size_t)(o + (k < count ? k : count - 1)) * row_bytes;
    __m256 acc[2][2];    // [pair][activation row]
    // Per activation row, output k's sum over blocks of d (lane 2k) and m (lane 2k + 1) times d_a * (block sum of q).
    __m256 offsets[2];
    for (int r = 0; r < tile_rows; r++) {
        acc[0][r] = acc[1][r] = _mm256_setzero_ps();
        offsets[r] = _mm256_setzero_ps();
    }
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    // Scales and minimums convert as [d0 m0 d1 m1 d2 m2 d3 m3] (m = 0 for the types without one); pair p scales
    // its lanes by outputs 2p and 2p + 1's d.
#define SCALE_WORDS(block) (has_mins ? load_u32(block) : (uint32_t)load_u16(block)) // m = 0: f16 zero
    const __m256i pair_lanes[2] = {_mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2), _mm256_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6)};
    // Fifth bits of pair p, values 0..15 (low) and 16..31 (high): bytes of output 2p's word (4 (2p)..) in the
    // low lane, of 2p + 1's (4 (2p + 1)..) in the high lane.
    __m256i fifth_pick[2][2];
    for (int pair = 0; pair < 2; pair++) {
        for (int half = 0; half < 2; half++) {
            char bytes[32];
            for (int i = 0; i < 32; i++) bytes[i] = (char)(4 * (2 * pair + i / 16) + 2 * half + (i % 16) / 8);
            fifth_pick[pair][half] = _mm256_loadu_si256((const __m256i *)bytes);
        }
    }
    for (int b = 0; b < in / 32; b++) {
        size_t offset = (size_t)b * block_bytes;
        if (b % 2 == 0) {
            // The next tile's bytes in address order, four bytes of it per byte the rows advance (two blocks:
            // 8 * block_bytes <= 192 bytes from `next`, within the four lines fetched).
            const char *next = (const char *)weight_rows[0] + 4 * row_bytes + 4 * offset;
            for (int k = 0; k < 4; k++) _mm_prefetch(next + 64 * k, _MM_HINT_T1);
        }
        uint64_t first_two = (uint64_t)SCALE_WORDS(weight_rows[0] + offset) |
                             (uint64_t)SCALE_WORDS(weight_rows[1] + offset) << 32;
        uint64_t last_two = (uint64_t)SCALE_WORDS(weight_rows[2] + offset) |
                            (uint64_t)SCALE_WORDS(weight_rows[3] + offset) << 32;
        __m256 weight_scales = _mm256_cvtph_ps(_mm_set_epi64x((long long)last_two, (long long)first_two));
        __m256i fifth_words = _mm256_setzero_si256();
        if (five_bits) {
            size_t qh = offset + legacy_qh_offset(type);
            fifth_words = _mm256_broadcastsi128_si256(_mm_setr_epi32(
                (int)load_u32(weight_rows[0] + qh), (int)load_u32(weight_rows[1] + qh),
                (int)load_u32(weight_rows[2] + qh), (int)load_u32(weight_rows[3] + qh)));
        }
        __m256i low[2], high[2];
        for (int pair = 0; pair < 2; pair++) {
            const uint8_t *first = weight_rows[2 * pair] + offset + qs_offset;
            const uint8_t *second = weight_rows[2 * pair + 1] + offset + qs_offset;
            __m256i packed = hk_nibble_pair_avx2(first, second);
            low[pair] = _mm256_and_si256(packed, low_nibbles);
            high[pair] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
            if (five_bits) {
                low[pair] = _mm256_or_si256(low[pair], fifth_bits_avx2(fifth_words, fifth_pick[pair][0]));
                high[pair] = _mm256_or_si256(high[pair], fifth_bits_avx2(fifth_words, fifth_pick[pair][1]));
            }
        }
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = pack + (size_t)(first_row + r) * stride;
            const float *d = (const float *)(p + in);
            __m256i first_half = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 32 * b)));
            __m256i second_half = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 32 * b + 16)));
            __m256 scales = _mm256_mul_ps(weight_scales, _mm256_broadcast_ss(d + b));
            for (int pair = 0; pair < 2; pair++) {
                // Levels 0..31 unsigned: each int16 sum of both products stays below 2^15 (4 * 31 * 128).
                __m256i products = _mm256_add_epi16(_mm256_maddubs_epi16(low[pair], first_half),
                                                    _mm256_maddubs_epi16(high[pair], second_half));
                __m256i dot = _mm256_madd_epi16(products, ones);
                __m256 pair_scales = _mm256_permutevar8x32_ps(scales, pair_lanes[pair]);
                acc[pair][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), pair_scales, acc[pair][r]);
            }
            offsets[r] = _mm256_fmadd_ps(weight_scales, _mm256_broadcast_ss(d + in / 32 + b), offsets[r]);
        }
    }
#undef SCALE_WORDS
    // The level offset: value = d * q - 8 d (Q4_0), d * q - 16 d (Q5_0), d * q + m (Q4_1, Q5_1).
    const float offset_factor = has_mins ? 1.0f : type == HK_TYPE_Q5_0 ? -16.0f : -8.0f;
    for (int r = 0; r < tile_rows; r++) {
        float offset_values[8];
        _mm256_storeu_ps(offset_values, offsets[r]);
        for (int k = 0; k < count; k++) {
            __m256 pair = acc[k / 2][r];
            __m128 lanes = k % 2 ? _mm256_extractf128_ps(pair, 1) : _mm256_castps256_ps128(pair);
            lanes = _mm_add_ps(lanes, _mm_movehl_ps(lanes, lanes));
            lanes = _mm_add_ss(lanes, _mm_movehdup_ps(lanes));
            y[(size_t)(first_row + r) * out + o + k] = _mm_cvtss_f32(lanes) + offset_factor * offset_values[2 * k + has_mins];
        }
    }
}

// MARK: - Decode: AVX2, IQ4_NL eight outputs at a time
//
// IQ4_NL's signed codebook values need the sign trick (|a| times the value with a's sign), and with four
// outputs per tile gathering their f16 scales, spreading each pair's over its lanes and scaling each pair
// separately took about a quarter of the kernel's time. Here four pairs go together and their int32 lanes are
// summed per output by two unpack-and-add steps, leaving one lane per output (outputs 0, 2, 4, 6 in the low
// half, 1, 3, 5, 7 in the high half), so one conversion and one FMA scale a block for all eight, their eight
// scales converted in that order by one instruction (kernel alone +10 % from memory, +11 % from L2; TinyLlama
// decode +7 %; Q4_0 was no faster this way and stays in fours). Integer sums are exact, so each output
// still sees the same operations whatever the other seven.

// Prefetch. Each row of a tile fetching its own bytes a fixed distance ahead (8 KB, or 12 KB for eight rows)
// covers the next tile only where that distance meets it: with four rows of 1,408 bytes ([5632, 2048] Q5_0)
// part of the next tile is fetched twice and part not at all, and with rows of 3,872 ([2048, 5632]) half of it
// is left to the hardware. Instead the tiles below fetch the next tile's bytes in address order, as many bytes of
// it as the tile's rows advance together (4 or 8 per byte): one tile ahead, whatever the row length. One thread,
// Zen 3, [5632, 2048] / [2048, 5632] from memory, alternated runs, G weights/s: Q4_0 19-25 / 18-25 -> 28 / 28,
// Q5_0 13-16 / 12-14 -> 16.5 / 16.8, IQ4_NL 23-28 / 16-22 -> 28 / 29.

/// Outputs o..o + count - 1 (count 1..8) for activation rows first_row..first_row + tile_rows - 1 (up to 2).
HK_TARGET_AVX2 HK_INLINE void iq4_nl_octet_tile_avx2(const uint8_t *w, size_t row_bytes, const uint8_t *pack,
                                                     size_t stride, float *y, int in, int out, int o, int count,
                                                     int first_row, const int tile_rows, const int full) {
    size_t short_offsets[8];
    hk_octet_short_offsets(row_bytes, count, short_offsets);
    const uint8_t *first = w + (size_t)o * row_bytes;
#define TILE_ROW(k) HK_OCTET_ROW(first, full, row_bytes, short_offsets, k)
    __m256 acc[2];
    const uint8_t *row_packs[2];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm256_setzero_ps();
        row_packs[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const __m256i codebook = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    for (int b = 0; b < in / 32; b++) {
        size_t offset = (size_t)b * 18;
        if (b % 2 == 0) {
            // As the four-output tile's (two blocks: 8 * 36 = 288 bytes from `next`, within the six lines fetched).
            const char *next = (const char *)first + 8 * row_bytes + 8 * offset;
            for (int k = 0; k < 6; k++) _mm_prefetch(next + 64 * k, _MM_HINT_T1);
        }
        uint64_t even_halves = 0, odd_halves = 0;
        for (int k = 0; k < 4; k++) {
            even_halves |= (uint64_t)load_u16(TILE_ROW(2 * k) + offset) << (16 * k);
            odd_halves |= (uint64_t)load_u16(TILE_ROW(2 * k + 1) + offset) << (16 * k);
        }
        __m256 weight_scales = _mm256_cvtph_ps(_mm_set_epi64x((long long)odd_halves, (long long)even_halves));
        __m256i partial[2][2]; // [row][pairs 0-1, pairs 2-3]: two lanes per output
        for (int half = 0; half < 2; half++) {
            __m256i pair_dots[2][2]; // [row][pair of the half]
            for (int which = 0; which < 2; which++) {
                int pair = 2 * half + which;
                __m256i packed = hk_nibble_pair_avx2(TILE_ROW(2 * pair) + offset + 2, TILE_ROW(2 * pair + 1) + offset + 2);
                __m256i low = _mm256_shuffle_epi8(codebook, _mm256_and_si256(packed, low_nibbles));
                __m256i high = _mm256_shuffle_epi8(codebook, _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles));
                for (int r = 0; r < tile_rows; r++) {
                    const uint8_t *p = row_packs[r] + 32 * b;
                    __m256i first_half = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
                    __m256i second_half = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 16)));
                    // |a| times the value with a's sign: pairs below 2^15 each.
                    __m256i low_products = _mm256_maddubs_epi16(_mm256_sign_epi8(first_half, first_half),
                                                                _mm256_sign_epi8(low, first_half));
                    __m256i high_products = _mm256_maddubs_epi16(_mm256_sign_epi8(second_half, second_half),
                                                                 _mm256_sign_epi8(high, second_half));
                    pair_dots[r][which] = _mm256_add_epi32(_mm256_madd_epi16(low_products, ones),
                                                           _mm256_madd_epi16(high_products, ones));
                }
            }
            // Per 128-bit lane: [first's 0 + 2, second's 0 + 2, first's 1 + 3, second's 1 + 3].
            for (int r = 0; r < tile_rows; r++) {
                partial[r][half] = _mm256_add_epi32(_mm256_unpacklo_epi32(pair_dots[r][0], pair_dots[r][1]),
                                                    _mm256_unpackhi_epi32(pair_dots[r][0], pair_dots[r][1]));
            }
        }
        for (int r = 0; r < tile_rows; r++) {
            __m256i sums = _mm256_add_epi32(_mm256_unpacklo_epi64(partial[r][0], partial[r][1]),
                                            _mm256_unpackhi_epi64(partial[r][0], partial[r][1]));
            const float *d = (const float *)(row_packs[r] + in);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(weight_scales, _mm256_broadcast_ss(d + b)), acc[r]);
        }
    }
#undef TILE_ROW
    static const int lane_of_output[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    for (int r = 0; r < tile_rows; r++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[r]);
        for (int k = 0; k < count; k++) y[(size_t)(first_row + r) * out + o + k] = lanes[lane_of_output[k]];
    }
}

/// Outputs in tiles of four (Q4_0, Q4_1, Q5_0, Q5_1) or eight (IQ4_NL), as FOR_EACH_OUTPUT_TILE walks them.
HK_TARGET_AVX2 HK_INLINE void nibble_range_avx2(const int type, const uint8_t *w, const uint8_t *pack, size_t stride,
                                                float *y, int rows, int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(type, in);
#define NIBBLE_TILE()                                                                                          \
    do {                                                                                                       \
        if (type != HK_TYPE_IQ4_NL) {                                                                          \
            if (tile_rows == 1) legacy_quad_tile_avx2(type, w, row_bytes, pack, stride, y, in, out, o, count, first_row, 1); \
            else legacy_quad_tile_avx2(type, w, row_bytes, pack, stride, y, in, out, o, count, first_row, 2);    \
        } else if (count < 8) {                                                                                \
            iq4_nl_octet_tile_avx2(w, row_bytes, pack, stride, y, in, out, o, count, first_row, tile_rows, 0);  \
        } else if (tile_rows == 1) {                                                                           \
            iq4_nl_octet_tile_avx2(w, row_bytes, pack, stride, y, in, out, o, 8, first_row, 1, 1);              \
        } else {                                                                                               \
            iq4_nl_octet_tile_avx2(w, row_bytes, pack, stride, y, in, out, o, 8, first_row, 2, 1);              \
        }                                                                                                      \
    } while (0)
    FOR_EACH_OUTPUT_TILE(rows, row_bytes, type == HK_TYPE_IQ4_NL ? 8 : 4, NIBBLE_TILE);
#undef NIBBLE_TILE
}

HK_TARGET_AVX2 void hk_range_q4_0_pairs_avx2(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                             int in, int out, int first_output, int end_output) {
    nibble_range_avx2(HK_TYPE_Q4_0, w, pack, stride, y, rows, in, out, first_output, end_output);
}

/// Each type's AVX2 range function (the per-type constant lets each instance compile to straight-line code).
#define NIBBLE_AVX2_INSTANCE(name, TYPE)                                                                       \
    HK_TARGET_AVX2 static void range_##name##_avx2(const uint8_t *w, const uint8_t *pack, size_t stride,        \
                                                   float *y, int rows, int in, int out, int first_output,      \
                                                   int end_output) {                                           \
        nibble_range_avx2(TYPE, w, pack, stride, y, rows, in, out, first_output, end_output);                  \
    }

NIBBLE_AVX2_INSTANCE(q4_1, HK_TYPE_Q4_1)
NIBBLE_AVX2_INSTANCE(q5_0, HK_TYPE_Q5_0)
NIBBLE_AVX2_INSTANCE(q5_1, HK_TYPE_Q5_1)
NIBBLE_AVX2_INSTANCE(iq4_nl, HK_TYPE_IQ4_NL)
#undef NIBBLE_AVX2_INSTANCE

// MARK: - Decode: VNNI
//
// As Q4_0's VNNI kernel: four blocks at a time, their 16-byte nibble arrays in one vector (block k in bytes
// 16 k .. 16 k + 15) whose low nibbles are values 0..15 and high nibbles values 16..31 of each block; fifth
// bits join through a byte mask built from the four qh words; IQ4_NL's indices become codebook + 128 with one
// in-lane byte shuffle. Every level is unsigned, so vpdpbusd takes the weights as the unsigned side.
// Pack per row and group of four blocks: the activations in that order ([block][0..15], then
// [block][16..31]: 128 bytes), per int32 lane -offset * (sum of the 8 activations that lane meets) (64),
// each block's scale in its four lanes (64), and for Q4_1/Q5_1 per lane d_a * (the lane's activation sum)
// (64), so that sum over lanes of m_w * that is m_w * d_a * (block sum).

HK_INLINE size_t legacy_group_pack_bytes(int type) { return hk_legacy_has_mins(type) ? 320 : 256; }

HK_INLINE size_t legacy_stride_vnni(int type, int in) {
    return (size_t)(in / 32 + 3) / 4 * legacy_group_pack_bytes(type);
}

HK_TARGET_VNNI HK_INLINE void legacy_pack_vnni(const int type, const float *x /* [rows, in] */, int rows, int in,
                                               uint8_t *pack, size_t stride) {
    int blocks_in_row = in / 32, groups = (blocks_in_row + 3) / 4;
    size_t group_bytes = legacy_group_pack_bytes(type);
    int8_t *q = hk_quant_scratch(2, (size_t)groups * 128);
    float *d = hk_quant_scratch(3, (size_t)groups * 4 * sizeof(float));
    const __m512i ones = _mm512_set1_epi8(1);
    const __m512i scale_lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for (int r = 0; r < rows; r++) {
        memset(q, 0, (size_t)groups * 128);
        memset(d, 0, (size_t)groups * 4 * sizeof(float));
        hk_quantize_activations_a32(x + (size_t)r * in, q, d, in);
        uint8_t *p = pack + (size_t)r * stride;
        for (int g = 0; g < groups; g++) {
            uint8_t *group = p + (size_t)g * group_bytes;
            for (int k = 0; k < 4; k++) {
                memcpy(group + 16 * k, q + 128 * g + 32 * k, 16);
                memcpy(group + 64 + 16 * k, q + 128 * g + 32 * k + 16, 16);
            }
            // Lane sums of signed bytes: dpbusd with ones as the unsigned side.
            __m512i sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones,
                                                                   _mm512_loadu_si512(group)),
                                               ones, _mm512_loadu_si512(group + 64));
            _mm512_storeu_si512(group + 128, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-hk_legacy_level_offset(type))));
            __m512 scales = _mm512_permutexvar_ps(scale_lanes, _mm512_castps128_ps512(_mm_loadu_ps(d + 4 * g)));
            _mm512_storeu_ps((float *)(group + 192), scales);
            if (hk_legacy_has_mins(type)) {
                // Block k's activation sum times its scale in float 2k + 1 (float 2k stays 0): the weights'
                // (d, m) pairs meet these in one 8-float FMA.
                __m512 scaled_sums = _mm512_mul_ps(scales, _mm512_cvtepi32_ps(sums));
                __m512 block_sums = _mm512_add_ps(scaled_sums, _mm512_permute_ps(scaled_sums, 0x4E));
                block_sums = _mm512_add_ps(block_sums, _mm512_permute_ps(block_sums, 0xB1));
                __m256 pairs = _mm512_castps512_ps256(_mm512_permutexvar_ps(
                    _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 0, 0, 0, 0, 0, 0, 0, 0), block_sums));
                _mm256_storeu_ps((float *)(group + 256), _mm256_blend_ps(_mm256_setzero_ps(), pairs, 0xAA));
            }
        }
    }
}

/// `count` (1..4) little-endian fields of `bytes` (2 or 4) bytes, `offset` into blocks `block_bytes` apart, side
/// by side in one word (block k's at bits 8 * bytes * k; the missing blocks' zero).
HK_INLINE uint64_t legacy_fields(const uint8_t *group, size_t block_bytes, size_t offset, int bytes, int count) {
    uint64_t fields = 0;
    for (int k = 0; k < 4; k++) {
        if (k >= count || 8 * bytes * k >= 64) continue;
        uint64_t field = bytes == 2 ? load_u16(group + k * block_bytes + offset) : load_u32(group + k * block_bytes + offset);
        fields |= field << (8 * bytes * k);
    }
    return fields;
}

/// The levels and scales of four blocks (the first `count`; the others are zero, and so are their activation
/// scales): values 0..15 of block k in bytes 16k.. of *low, values 16..31 in *high (unsigned; IQ4_NL's as
/// codebook + 128); each block's d in f32 lanes 4k..4k + 3 of *scales; for Q4_1/Q5_1 its (d, m) pair in floats
/// 2k, 2k + 1 of *pairs. The fields before the nibbles (d, m, qh) come in scalar loads and are combined in
/// general registers, which run beside the vector units; word permutes of the group and pinsrd chains measured
/// slower. Which of d's two routes is faster differs by type (measured, one thread, Zen 4): Q5_1, whose fifth
/// bits keep the general registers busy, takes d from the (d, m) pairs with one permute; Q4_1 from its own loads.
HK_TARGET_VNNI_BMI2 HK_INLINE void legacy_group_vnni(const int type, const uint8_t *group, int count, __m512i *low,
                                                     __m512i *high, __m512 *scales, __m256 *pairs) {
    size_t block_bytes = legacy_block_bytes(type), qs_offset = legacy_qs_offset(type);
    __m512i packed = _mm512_setzero_si512();
    if (count == 4) {
        __m128i nibbles[4];
        for (int k = 0; k < 4; k++) nibbles[k] = _mm_loadu_si128((const __m128i *)(group + k * block_bytes + qs_offset));
        __m256i first = _mm256_inserti128_si256(_mm256_castsi128_si256(nibbles[0]), nibbles[1], 1);
        __m256i second = _mm256_inserti128_si256(_mm256_castsi128_si256(nibbles[2]), nibbles[3], 1);
        packed = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
    } else {
        for (int k = 0; k < count; k++) {
            packed = _mm512_mask_broadcast_i32x4(packed, (__mmask16)(0xF << (4 * k)),
                                                 _mm_loadu_si128((const __m128i *)(group + k * block_bytes + qs_offset)));
        }
    }
    const __m512i scale_lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    *pairs = _mm256_setzero_ps();
    if (hk_legacy_has_mins(type)) {
        // (d, m) of blocks 0, 1 and of 2, 3: eight halves, d of block k at 2k.
        uint64_t first_two = legacy_fields(group, block_bytes, 0, 4, count);
        uint64_t last_two = count > 2 ? legacy_fields(group + 2 * block_bytes, block_bytes, 0, 4, count - 2) : 0;
        *pairs = _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm_cvtsi64_si128((long long)first_two),
                                                    _mm_cvtsi64_si128((long long)last_two)));
    }
    if (type == HK_TYPE_Q5_1) {
        *scales = _mm512_permutexvar_ps(_mm512_add_epi32(scale_lanes, scale_lanes), _mm512_castps256_ps512(*pairs));
    } else {
        uint64_t halves = legacy_fields(group, block_bytes, 0, 2, count);
        *scales = _mm512_permutexvar_ps(scale_lanes, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)halves))));
    }
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    *low = _mm512_and_si512(packed, low_nibbles);
    *high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
    if (legacy_has_fifth_bit(type)) {
        // Each qh word's low half holds the fifth bits of values 0..15, its high half those of 16..31.
        size_t qh = legacy_qh_offset(type);
        uint64_t first_two = legacy_fields(group, block_bytes, qh, 4, count);
        uint64_t last_two = count > 2 ? legacy_fields(group + 2 * block_bytes, block_bytes, qh, 4, count - 2) : 0;
        const uint64_t low_halves = 0x0000FFFF0000FFFFull;
        uint64_t low_bits = _pext_u64(first_two, low_halves) | _pext_u64(last_two, low_halves) << 32;
        uint64_t high_bits = _pext_u64(first_two, ~low_halves) | _pext_u64(last_two, ~low_halves) << 32;
        const __m512i fifth = _mm512_set1_epi8(0x10);
        *low = _mm512_mask_add_epi8(*low, _cvtu64_mask64(low_bits), *low, fifth);
        *high = _mm512_mask_add_epi8(*high, _cvtu64_mask64(high_bits), *high, fifth);
    }
    if (type == HK_TYPE_IQ4_NL) {
        const __m512i table = _mm512_broadcast_i32x4(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129,
                                                                   (char)141, (char)153, (char)166, (char)181,
                                                                   (char)197, (char)217, (char)241));
        *low = _mm512_shuffle_epi8(table, *low);
        *high = _mm512_shuffle_epi8(table, *high);
    }
}

/// One group's products for every activation row of a tile: acc[r] += (dot of the levels with the activations) *
/// d * d_a lane by lane; min_acc[r] += (d, m) pairs * the pack's scaled block sums (Q4_1/Q5_1).
HK_TARGET_VNNI HK_INLINE void legacy_group_products_vnni(const int type, const uint8_t *const *groups_pack,
                                                         size_t group_offset, const int tile_rows, __m512i low,
                                                         __m512i high, __m512 weight_scales, __m256 weight_pairs,
                                                         __m512 *acc, __m256 *min_acc) {
    for (int r = 0; r < tile_rows; r++) {
        const uint8_t *p = groups_pack[r] + group_offset;
        __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(p + 128), low, _mm512_loadu_si512(p));
        dot = _mm512_dpbusd_epi32(dot, high, _mm512_loadu_si512(p + 64));
        __m512 scale = _mm512_mul_ps(weight_scales, _mm512_loadu_ps((const float *)(p + 192)));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r]);
        // Q4_1/Q5_1: m * d_a * (block sum), the d lanes meeting zeros.
        if (hk_legacy_has_mins(type)) {
            min_acc[r] = _mm256_fmadd_ps(weight_pairs, _mm256_loadu_ps((const float *)(p + 256)), min_acc[r]);
        }
    }
}

/// The body of a tile function: every group of the row, LOAD_GROUP (statements that fill low, high,
/// weight_scales and weight_pairs from `group` and `count`), then that group's products for every activation
/// row; the sums go to y. A macro because the two routes' tile functions need different target attributes.
#define LEGACY_TILE_BODY(...)                                                                                  \
    do {                                                                                                       \
        __m512 acc[MAX_TILE_ROWS];                                                                             \
        __m256 min_acc[MAX_TILE_ROWS];                                                                         \
        const uint8_t *groups_pack[MAX_TILE_ROWS];                                                             \
        for (int r = 0; r < tile_rows; r++) {                                                                  \
            acc[r] = _mm512_setzero_ps();                                                                      \
            min_acc[r] = _mm256_setzero_ps();                                                                  \
            groups_pack[r] = pack + (size_t)(first_row + r) * stride;                                          \
        }                                                                                                      \
        size_t block_bytes = legacy_block_bytes(type), group_bytes = legacy_group_pack_bytes(type);            \
        int blocks_in_row = in / 32;                                                                           \
        for (int g = 0; g < (blocks_in_row + 3) / 4; g++) {                                                    \
            const uint8_t *group = row + (size_t)4 * g * block_bytes;                                          \
            PREFETCH_AHEAD(group);                                                                             \
            PREFETCH_AHEAD(group + 64);                                                                        \
            int count = blocks_in_row - 4 * g < 4 ? blocks_in_row - 4 * g : 4;                                 \
            __m512i low, high;                                                                                 \
            __m512 weight_scales;                                                                              \
            __m256 weight_pairs;                                                                               \
            __VA_ARGS__                                                                                        \
            legacy_group_products_vnni(type, groups_pack, (size_t)g * group_bytes, tile_rows, low, high,       \
                                       weight_scales, weight_pairs, acc, min_acc);                             \
        }                                                                                                      \
        for (int r = 0; r < tile_rows; r++) {                                                                  \
            y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(acc[r]) + hk_sum_avx2(min_acc[r]);     \
        }                                                                                                      \
    } while (0)

HK_TARGET_VNNI_BMI2 HK_INLINE void legacy_tile_vnni(const int type, const uint8_t *row, const uint8_t *pack,
                                                    size_t stride, float *y /* [rows, out] */, int in, int out, int o,
                                                    int first_row, const int tile_rows) {
    LEGACY_TILE_BODY(legacy_group_vnni(type, group, count, &low, &high, &weight_scales, &weight_pairs););
}

HK_TARGET_VNNI_BMI2 HK_INLINE void legacy_range_vnni(const int type, const uint8_t *w /* [out, in] blocks */,
                                                const uint8_t *pack, size_t stride, float *y /* [rows, out] */,
                                                int rows, int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(type, in);
#define LEGACY_VNNI_TILE(n) legacy_tile_vnni(type, w + (size_t)o * row_bytes, pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, LEGACY_VNNI_TILE);
#undef LEGACY_VNNI_TILE
}

// MARK: - Decode: VNNI with byte permutes (Q4_1, Q5_0, Q5_1, IQ4_NL)
//
// Why: with one activation row, a group's scalar field work (four f16 scales, for Q5_0 and Q5_1 four qh words
// turned into two 64-bit byte masks by pext) kept the general registers busier than the vector units. With VBMI
// a whole group of four blocks is two 64-byte loads (bytes [0, 64) and the last 64), and every field comes out
// of them by one vpermt2b: the nibble arrays side by side, the f16 scales (each repeated over its block's four
// lanes), the (d, m) pairs, and each block's qh word in two 64-bit lanes. vpmultishiftqb then moves the fifth bit
// of every byte's value to bit 4 of that byte (an unaligned 8-bit window of its 64-bit lane), merged with the
// nibble by one ternary-logic op: no mask registers, whose byte-masked adds measured 4 % slower (Q5_0). IQ4_NL
// looks its codebook up with vpermb, which reads six index bits: with the codebook in all four 16-byte lanes
// neither nibble needs a mask. Kernel alone, TinyLlama's ffn shape, one thread, GB/s against the route above:
// Q5_0 21.4 → 25.2, Q4_1 25.2 → 26.7, Q5_1 23.2 → 23.9, IQ4_NL 23.1 → 27.6. Same values, same operations on
// them, so both routes give identical results.

/// vpermt2b indices into a group held as bytes [0, 64) (first table) and [size - 64, size) (second table).
typedef struct {
    __m512i nibbles;     // byte 16k + j: block k's qs byte j
    __m512i scales;      // words 0..15: block m / 4's d (only the low 32 bytes are used)
    __m512i pairs;       // words 2k, 2k + 1: block k's d and m (only the low 16 bytes are used)
    __m512i fifth_bits;  // 64-bit lanes 2k and 2k + 1: block k's qh word in both halves
} legacy_group_permutes;

HK_INLINE uint8_t group_byte_index(size_t offset, size_t group_size) {
    return offset < 64 ? (uint8_t)offset : (uint8_t)(64 + offset - (group_size - 64));
}

HK_TARGET_VNNI_VBMI HK_INLINE legacy_group_permutes legacy_make_group_permutes(const int type) {
    uint8_t nibbles[64], scales[64], pairs[64], fifth_bits[64];
    size_t block = legacy_block_bytes(type), size = 4 * block, qs = legacy_qs_offset(type);
    size_t qh = legacy_has_fifth_bit(type) ? legacy_qh_offset(type) : 0;
    for (size_t i = 0; i < 64; i++) {
        size_t word = (i / 2) % 16, half = (i / 2) % 8, lane = i / 8;
        nibbles[i] = group_byte_index((i / 16) * block + qs + i % 16, size);
        scales[i] = group_byte_index((word / 4) * block + i % 2, size);
        pairs[i] = group_byte_index((half / 2) * block + 2 * (half % 2) + i % 2, size);
        fifth_bits[i] = group_byte_index((lane / 2) * block + qh + i % 4, size);
    }
    return (legacy_group_permutes){_mm512_loadu_si512(nibbles), _mm512_loadu_si512(scales),
                                   _mm512_loadu_si512(pairs), _mm512_loadu_si512(fifth_bits)};
}

/// legacy_group_vnni's outputs for a whole group (count 4) of Q4_1, Q5_0, Q5_1 or IQ4_NL.
HK_TARGET_VNNI_VBMI HK_INLINE void legacy_whole_group_vbmi(const int type, const legacy_group_permutes *permutes,
                                                           const uint8_t *group, __m512i *low, __m512i *high,
                                                           __m512 *scales, __m256 *pairs) {
    size_t size = 4 * legacy_block_bytes(type);
    __m512i first = _mm512_loadu_si512(group), last = _mm512_loadu_si512(group + size - 64);
    __m512i packed = _mm512_permutex2var_epi8(first, permutes->nibbles, last);
    if (type == HK_TYPE_IQ4_NL) {
        // vpermb reads six index bits: with the codebook (+ 128) repeated four times, the two bits above a nibble
        // pick identical copies, so neither nibble needs a mask.
        const __m512i table = _mm512_broadcast_i32x4(hk_iq4_biased_levels());
        *low = _mm512_permutexvar_epi8(packed, table);
        *high = _mm512_permutexvar_epi8(_mm512_srli_epi16(packed, 4), table);
    } else {
        const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
        *low = _mm512_and_si512(packed, low_nibbles);
        *high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
    }
    *scales = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi8(first, permutes->scales, last)));
    *pairs = _mm256_setzero_ps();
    if (hk_legacy_has_mins(type)) {
        *pairs = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi8(first, permutes->pairs, last)));
    }
    if (legacy_has_fifth_bit(type)) {
        // Byte 16k + j of *low takes bit j of block k's qh, of *high bit 16 + j. Lanes 2k and 2k + 1 hold that
        // word twice (qh | qh << 32), so the 8-bit window starting at bit j - 4 (mod 64; j + 12 for *high) has
        // the wanted bit at bit 4, whichever of the two lanes byte 16k + j is in.
        const __m512i low_select = _mm512_set4_epi32(0x0B0A0908, 0x07060504, 0x03020100, 0x3F3E3D3C);
        const __m512i high_select = _mm512_add_epi8(low_select, _mm512_set1_epi8(16));
        __m512i words = _mm512_permutex2var_epi8(first, permutes->fifth_bits, last);
        const __m512i fifth = _mm512_set1_epi8(0x10);
        *low = _mm512_ternarylogic_epi32(*low, _mm512_multishift_epi64_epi8(low_select, words), fifth, 0xF8);
        *high = _mm512_ternarylogic_epi32(*high, _mm512_multishift_epi64_epi8(high_select, words), fifth, 0xF8);
    }
}

HK_TARGET_VNNI_VBMI HK_INLINE void legacy_tile_vbmi(const int type, const legacy_group_permutes *permutes,
                                                    const uint8_t *row, const uint8_t *pack, size_t stride,
                                                    float *y /* [rows, out] */, int in, int out, int o, int first_row,
                                                    const int tile_rows) {
    LEGACY_TILE_BODY(
        if (count == 4) {
            legacy_whole_group_vbmi(type, permutes, group, &low, &high, &weight_scales, &weight_pairs);
        } else {  // the row's last, partial group: the second load would run past it
            legacy_group_vnni(type, group, count, &low, &high, &weight_scales, &weight_pairs);
        });
}

HK_TARGET_VNNI_VBMI HK_INLINE void legacy_range_vbmi(const int type, const uint8_t *w /* [out, in] blocks */,
                                                     const uint8_t *pack, size_t stride, float *y /* [rows, out] */,
                                                     int rows, int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(type, in);
    legacy_group_permutes permutes = legacy_make_group_permutes(type);
#define LEGACY_VBMI_TILE(n) \
    legacy_tile_vbmi(type, &permutes, w + (size_t)o * row_bytes, pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, LEGACY_VBMI_TILE);
#undef LEGACY_VBMI_TILE
}

#undef LEGACY_TILE_BODY

// MARK: - Per-type instances and dispatch
//
// The generic code above takes the type as a constant, so each instance compiles to straight-line code.

#define LEGACY_INSTANCES(name, TYPE)                                                                           \
    static void range_##name##_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, \
                                      int in, int out, int first_output, int end_output) {                     \
        legacy_range_scalar(TYPE, w, pack, stride, y, rows, in, out, first_output, end_output);                \
    }                                                                                                          \
    static size_t stride_##name##_vnni(int in) { return legacy_stride_vnni(TYPE, in); }                        \
    HK_TARGET_VNNI static void pack_##name##_vnni(const float *x, int rows, int in, uint8_t *pack,             \
                                                  size_t stride) {                                             \
        legacy_pack_vnni(TYPE, x, rows, in, pack, stride);                                                     \
    }                                                                                                          \
    HK_TARGET_VNNI_BMI2 static void range_##name##_vnni(const uint8_t *w, const uint8_t *pack, size_t stride,        \
                                                   float *y, int rows, int in, int out, int first_output,      \
                                                   int end_output) {                                           \
        legacy_range_vnni(TYPE, w, pack, stride, y, rows, in, out, first_output, end_output);                  \
    }

LEGACY_INSTANCES(q4_1, HK_TYPE_Q4_1)
LEGACY_INSTANCES(q5_0, HK_TYPE_Q5_0)
LEGACY_INSTANCES(q5_1, HK_TYPE_Q5_1)
LEGACY_INSTANCES(iq4_nl, HK_TYPE_IQ4_NL)
#define LEGACY_VBMI_INSTANCE(name, TYPE)                                                                       \
    HK_TARGET_VNNI_VBMI static void range_##name##_vbmi(const uint8_t *w, const uint8_t *pack, size_t stride,   \
                                                        float *y, int rows, int in, int out, int first_output, \
                                                        int end_output) {                                      \
        legacy_range_vbmi(TYPE, w, pack, stride, y, rows, in, out, first_output, end_output);                  \
    }

LEGACY_VBMI_INSTANCE(q4_1, HK_TYPE_Q4_1)
LEGACY_VBMI_INSTANCE(q5_0, HK_TYPE_Q5_0)
LEGACY_VBMI_INSTANCE(iq4_nl, HK_TYPE_IQ4_NL)
LEGACY_VBMI_INSTANCE(q5_1, HK_TYPE_Q5_1)
#undef LEGACY_VBMI_INSTANCE
// (The AVX2 kernels are nibble_range_avx2's, above: four outputs at a time, IQ4_NL eight.)
#undef LEGACY_INSTANCES

int hk_legacy_select_kernel(int type, int isa, hk_quant_kernel *k) {
#define SELECT(name)                                                                                           \
    if (isa == HK_ISA_AVX512) *k = (hk_quant_kernel){pack_##name##_vnni, stride_##name##_vnni, range_##name##_vnni}; \
    else if (isa == HK_ISA_AVX2) *k = (hk_quant_kernel){hk_pack_a32_sums, hk_stride_a32_sums, range_##name##_avx2}; \
    else *k = (hk_quant_kernel){hk_pack_a32_sums, hk_stride_a32_sums, range_##name##_scalar};                    \
    return 0
    if (isa == HK_ISA_AVX512 && hk_cpu_has_byte_permutes()) {
        if (type == HK_TYPE_Q4_1) {
            *k = (hk_quant_kernel){pack_q4_1_vnni, stride_q4_1_vnni, range_q4_1_vbmi};
            return 0;
        }
        if (type == HK_TYPE_Q5_0) {
            *k = (hk_quant_kernel){pack_q5_0_vnni, stride_q5_0_vnni, range_q5_0_vbmi};
            return 0;
        }
        if (type == HK_TYPE_IQ4_NL) {
            *k = (hk_quant_kernel){pack_iq4_nl_vnni, stride_iq4_nl_vnni, range_iq4_nl_vbmi};
            return 0;
        }
        if (type == HK_TYPE_Q5_1) {
            *k = (hk_quant_kernel){pack_q5_1_vnni, stride_q5_1_vnni, range_q5_1_vbmi};
            return 0;
        }
    }
    switch (type) {
    case HK_TYPE_Q4_1: SELECT(q4_1);
    case HK_TYPE_Q5_0: SELECT(q5_0);
    case HK_TYPE_Q5_1: SELECT(q5_1);
    case HK_TYPE_IQ4_NL: SELECT(iq4_nl);
    default: return -1;
    }
#undef SELECT
}

// MARK: - Levels for the int8 GEMM

HK_TARGET_AVX2 void hk_legacy_decode_levels(int type, const uint8_t *row, int in, uint8_t *levels /* [in] */, float *scales,
                             float *mins, size_t group_stride) {
    size_t block_bytes = legacy_block_bytes(type);
    for (int b = 0; b < in / 32; b++) {
        const uint8_t *block = row + (size_t)b * block_bytes;
        scales[b * group_stride] = _cvtsh_ss(load_u16(block));
        // value = d * level + m = scale * level - min; the offsets of Q5_0 and IQ4_NL leave the integer sums.
        mins[b * group_stride] = hk_legacy_has_mins(type) ? -_cvtsh_ss(load_u16(block + 2)) : 0.0f;
        __m256i block_levels;
        switch (type) {
        case HK_TYPE_Q4_1: block_levels = legacy_levels_avx2(HK_TYPE_Q4_1, block); break;
        case HK_TYPE_Q5_0: block_levels = legacy_levels_avx2(HK_TYPE_Q5_0, block); break;
        case HK_TYPE_Q5_1: block_levels = legacy_levels_avx2(HK_TYPE_Q5_1, block); break;
        default: block_levels = legacy_levels_avx2(HK_TYPE_IQ4_NL, block); break;
        }
        _mm256_storeu_si256((__m256i *)(levels + 32 * b), block_levels);
    }
}
