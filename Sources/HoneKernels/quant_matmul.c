// Decode over quantized weights: y[r, o] = sum_i w[o, i] * x[r, i] for a few activation rows.
//
// The activations are quantized once per call (int8 blocks, see hone_quant.h) and packed into a layout
// made for the kernel at hand; the weights are read in their GGUF layout, one output row at a time, and
// each weight row's blocks are decoded once per register tile of up to four activation rows (FOR_EACH_TILE
// keeps the weights of further tiles in L2). Integer products are exact; f32 only enters when a block's
// integer sum is scaled, and each (output, row) gets the same operations whatever the other rows.
//
// VNNI (vpdpbusd) multiplies unsigned by signed bytes. Signs are handled with offsets rather than
// per-product sign juggling:
// - Q8_0 weights are signed; the activations are stored as q + 128 (unsigned) and each weight vector's
//   128 * (sum of weights) is subtracted once per weight vector, whatever the number of rows.
// - Q4_0, Q4_K and Q6_K levels are unsigned already (0..15, 0..63); Q4_0's -8 and Q6_K's -32 are folded
//   into per-lane activation sums computed when packing (the dpbusd accumulator starts there), and
//   Q4_K's mins use the activations' sub-block sums.
// Q4_K and Q6_K sub-block scales are applied in integers with vpdpwssd: every 4-product lane sum fits in
// int16, so pairing it with (scale, 0) multiplies and accumulates in one instruction.
/// The row-kernel plumbing (register tiles, prefetch, the pack/range pair) is in quant_internal.h; what
/// quant_matmul.c shares with quant_k_more_matmul.c (kernel, the Q8_K and Q4_K VNNI packs) in quant_row_kernels.h.
#include "quant_row_kernels.h"

HK_INLINE float f16_to_f32(uint16_t half) { return hk_f16_to_f32_scalar(half); }

// MARK: - Scalar (canonical activations: A32 values + scales, or Q8_K blocks)

static size_t stride_a32(int in) { return round_up_64((size_t)in + (size_t)in / 32 * sizeof(float)); }

static void pack_a32(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    for (int r = 0; r < rows; r++) {
        uint8_t *p = pack + (size_t)r * stride;
        hk_quantize_activations_a32(x + (size_t)r * in, (int8_t *)p, (float *)(p + in), in);
    }
}

size_t hk_stride_q8_k(int in) { return (size_t)(in / HK_QK_K) * sizeof(hk_block_q8_k); }

void hk_pack_q8_k(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    for (int r = 0; r < rows; r++) {
        hk_quantize_row_q8_k(x + (size_t)r * in, pack + (size_t)r * stride, in);
    }
}

static void range_q8_0_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in,
                              int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q8_0, in);
    for (int o = first_output; o < end_output; o++) {
        const hk_block_q8_0 *blocks = (const hk_block_q8_0 *)(w + (size_t)o * row_bytes);
        for (int r = 0; r < rows; r++) {
            const int8_t *q = (const int8_t *)(pack + (size_t)r * stride);
            const float *d = (const float *)(pack + (size_t)r * stride + in);
            float sum = 0.0f;
            for (int b = 0; b < in / 32; b++) {
                int dot = 0;
                for (int i = 0; i < 32; i++) dot += blocks[b].qs[i] * q[32 * b + i];
                sum += (f16_to_f32(blocks[b].d) * d[b]) * (float)dot;
            }
            y[(size_t)r * out + o] = sum;
        }
    }
}

static void range_q4_0_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in,
                              int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q4_0, in);
    for (int o = first_output; o < end_output; o++) {
        const hk_block_q4_0 *blocks = (const hk_block_q4_0 *)(w + (size_t)o * row_bytes);
        for (int r = 0; r < rows; r++) {
            const int8_t *q = (const int8_t *)(pack + (size_t)r * stride);
            const float *d = (const float *)(pack + (size_t)r * stride + in);
            float sum = 0.0f;
            for (int b = 0; b < in / 32; b++) {
                int dot = 0;
                for (int j = 0; j < 16; j++) {
                    dot += ((blocks[b].qs[j] & 0x0F) - 8) * q[32 * b + j] +
                           ((blocks[b].qs[j] >> 4) - 8) * q[32 * b + 16 + j];
                }
                sum += (f16_to_f32(blocks[b].d) * d[b]) * (float)dot;
            }
            y[(size_t)r * out + o] = sum;
        }
    }
}

static void range_q4_k_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in,
                              int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q4_K, in);
    for (int o = first_output; o < end_output; o++) {
        const hk_block_q4_k *blocks = (const hk_block_q4_k *)(w + (size_t)o * row_bytes);
        for (int r = 0; r < rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)r * stride);
            float sum = 0.0f;
            for (int b = 0; b < in / HK_QK_K; b++) {
                uint8_t unpacked[16];
                hk_q4k_unpack_scales(blocks[b].scales, unpacked);
                int scaled = 0, mins = 0;
                for (int s = 0; s < 8; s++) {
                    const uint8_t *qs = blocks[b].qs + 32 * (s / 2);
                    int shift = 4 * (s % 2), dot = 0;
                    for (int l = 0; l < 32; l++) dot += ((qs[l] >> shift) & 0x0F) * a[b].qs[32 * s + l];
                    scaled += unpacked[s] * dot;
                    mins += unpacked[8 + s] * (a[b].bsums[2 * s] + a[b].bsums[2 * s + 1]);
                }
                sum += (f16_to_f32(blocks[b].d) * a[b].d) * (float)scaled;
                sum -= (f16_to_f32(blocks[b].dmin) * a[b].d) * (float)mins;
            }
            y[(size_t)r * out + o] = sum;
        }
    }
}

static void range_q6_k_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in,
                              int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q6_K, in);
    for (int o = first_output; o < end_output; o++) {
        const hk_block_q6_k *blocks = (const hk_block_q6_k *)(w + (size_t)o * row_bytes);
        for (int r = 0; r < rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)r * stride);
            float sum = 0.0f;
            for (int b = 0; b < in / HK_QK_K; b++) {
                int dots[16] = {0};
                for (int half = 0; half < 2; half++) {
                    const uint8_t *low = blocks[b].ql + 64 * half, *high = blocks[b].qh + 32 * half;
                    const int8_t *q = a[b].qs + 128 * half;
                    for (int l = 0; l < 32; l++) {
                        int sub = 8 * half + l / 16;
                        dots[sub] += ((low[l] & 0x0F) | ((high[l] & 3) << 4)) * q[l];
                        dots[sub + 2] += ((low[l + 32] & 0x0F) | (((high[l] >> 2) & 3) << 4)) * q[l + 32];
                        dots[sub + 4] += ((low[l] >> 4) | (((high[l] >> 4) & 3) << 4)) * q[l + 64];
                        dots[sub + 6] += ((low[l + 32] >> 4) | (((high[l] >> 6) & 3) << 4)) * q[l + 96];
                    }
                }
                // Levels are stored + 32: subtract 32 * scale * (sum of the sub-block's activations).
                int scaled = 0;
                for (int s = 0; s < 16; s++) scaled += blocks[b].scales[s] * (dots[s] - 32 * a[b].bsums[s]);
                sum += (f16_to_f32(blocks[b].d) * a[b].d) * (float)scaled;
            }
            y[(size_t)r * out + o] = sum;
        }
    }
}

// MARK: - AVX2 (canonical activations; vpmaddubsw + vpmaddwd)

/// Adds adjacent int16 products into int32 lanes (vpmaddwd with ones).
HK_TARGET_AVX2 HK_INLINE __m256i widen_pairs_avx2(__m256i products16) {
    return _mm256_madd_epi16(products16, _mm256_set1_epi16(1));
}

/// Exact dot products of signed bytes, 4 per int32 lane: vpmaddubsw needs one unsigned operand, so the
/// magnitudes of `a` meet `b` with a's signs (|a|, |b| <= 127, so the int16 pairs cannot saturate).
HK_TARGET_AVX2 HK_INLINE __m256i dot_signed_bytes_avx2(__m256i a, __m256i b) {
    return widen_pairs_avx2(_mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)));
}

HK_TARGET_AVX2 HK_INLINE void q8_0_tile_avx2(const hk_block_q8_0 *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m256 acc[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm256_setzero_ps();
    for (int b = 0; b < in / 32; b++) {
        if (b % 2 == 0) PREFETCH_AHEAD(blocks + b); // one line per 64 bytes is enough
        __m256i weights = _mm256_loadu_si256((const __m256i *)blocks[b].qs);
        float wd = _cvtsh_ss(blocks[b].d);
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = pack + (size_t)(first_row + r) * stride;
            __m256i dot = dot_signed_bytes_avx2(weights, _mm256_loadu_si256((const __m256i *)(p + 32 * b)));
            __m256 scale = _mm256_set1_ps(wd * ((const float *)(p + in))[b]);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = hk_sum_avx2(acc[r]);
}

HK_TARGET_AVX2 static void range_q8_0_avx2(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q8_0, in);
#define Q8_0_AVX2_TILE(n) \
    q8_0_tile_avx2((const hk_block_q8_0 *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, Q8_0_AVX2_TILE);
#undef Q8_0_AVX2_TILE
}

HK_TARGET_AVX2 HK_INLINE void q4_0_tile_avx2(const hk_block_q4_0 *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m256 acc[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm256_setzero_ps();
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    for (int b = 0; b < in / 32; b++) {
        if (b % 4 == 0) PREFETCH_AHEAD(blocks + b); // one line per 64 bytes is enough
        __m128i packed = _mm_loadu_si128((const __m128i *)blocks[b].qs);
        // Values 0..15 in the low half and 16..31 in the high half, then -8 .. 7 as signed bytes.
        __m256i levels = _mm256_and_si256(
            _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1), low_nibbles);
        __m256i weights = _mm256_sub_epi8(levels, eight);
        float wd = _cvtsh_ss(blocks[b].d);
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = pack + (size_t)(first_row + r) * stride;
            __m256i dot = dot_signed_bytes_avx2(weights, _mm256_loadu_si256((const __m256i *)(p + 32 * b)));
            __m256 scale = _mm256_set1_ps(wd * ((const float *)(p + in))[b]);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = hk_sum_avx2(acc[r]);
}

HK_TARGET_AVX2 static void range_q4_0_avx2(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q4_0, in);
#define Q4_0_AVX2_TILE(n) \
    q4_0_tile_avx2((const hk_block_q4_0 *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, Q4_0_AVX2_TILE);
#undef Q4_0_AVX2_TILE
}

HK_TARGET_AVX2 HK_INLINE void q4_k_tile_avx2(const hk_block_q4_k *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m256 acc[MAX_TILE_ROWS];
    float mins_acc[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm256_setzero_ps();
        mins_acc[r] = 0.0f;
    }
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    for (int b = 0; b < in / HK_QK_K; b++) {
        PREFETCH_AHEAD(blocks + b);
        PREFETCH_AHEAD((const char *)(blocks + b) + 64);
        PREFETCH_AHEAD((const char *)(blocks + b) + 128);
        const hk_block_q4_k *block = &blocks[b];
        uint8_t unpacked[16];
        hk_q4k_unpack_scales(block->scales, unpacked);
        __m256i levels[8];
        for (int c = 0; c < 4; c++) {
            __m256i packed = _mm256_loadu_si256((const __m256i *)(block->qs + 32 * c));
            levels[2 * c] = _mm256_and_si256(packed, low_nibbles);
            levels[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
        }
        float d = _cvtsh_ss(block->d), dmin = _cvtsh_ss(block->dmin);
        for (int r = 0; r < tile_rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride) + b;
            __m256i sum = _mm256_setzero_si256();
            int mins = 0;
            for (int s = 0; s < 8; s++) {
                // Levels <= 15 times |q| <= 127: the int16 pairs cannot saturate.
                __m256i q = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * s));
                __m256i products = _mm256_maddubs_epi16(levels[s], q);
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(products, _mm256_set1_epi16(unpacked[s])));
                mins += unpacked[8 + s] * (a->bsums[2 * s] + a->bsums[2 * s + 1]);
            }
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d * a->d), acc[r]);
            mins_acc[r] += (dmin * a->d) * (float)mins;
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = hk_sum_avx2(acc[r]) - mins_acc[r];
}

HK_TARGET_AVX2 static void range_q4_k_avx2(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q4_K, in);
#define Q4_K_AVX2_TILE(n) \
    q4_k_tile_avx2((const hk_block_q4_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, Q4_K_AVX2_TILE);
#undef Q4_K_AVX2_TILE
}

HK_TARGET_AVX2 HK_INLINE void q6_k_tile_avx2(const hk_block_q6_k *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m256 acc[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm256_setzero_ps();
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F), two_bits = _mm256_set1_epi8(3);
    for (int b = 0; b < in / HK_QK_K; b++) {
        PREFETCH_AHEAD(blocks + b);
        PREFETCH_AHEAD((const char *)(blocks + b) + 64);
        PREFETCH_AHEAD((const char *)(blocks + b) + 128);
        PREFETCH_AHEAD((const char *)(blocks + b) + 192);
        const hk_block_q6_k *block = &blocks[b];
        // levels[k]: values 32 k .. 32 k + 31 (0..63).
        __m256i levels[8];
        for (int half = 0; half < 2; half++) {
            __m256i low0 = _mm256_loadu_si256((const __m256i *)(block->ql + 64 * half));
            __m256i low1 = _mm256_loadu_si256((const __m256i *)(block->ql + 64 * half + 32));
            __m256i high = _mm256_loadu_si256((const __m256i *)(block->qh + 32 * half));
            // Quarter k: low or high nibbles of low0/low1, top two bits at bit 2 k of `high`.
            __m256i nibbles[4] = {
                _mm256_and_si256(low0, low_nibbles), _mm256_and_si256(low1, low_nibbles),
                _mm256_and_si256(_mm256_srli_epi16(low0, 4), low_nibbles),
                _mm256_and_si256(_mm256_srli_epi16(low1, 4), low_nibbles),
            };
            for (int k = 0; k < 4; k++) {
                __m256i top = _mm256_and_si256(_mm256_srli_epi16(high, 2 * k), two_bits);
                levels[4 * half + k] = _mm256_or_si256(nibbles[k], _mm256_slli_epi16(top, 4));
            }
        }
        // Scales per 32 values: the int16 lanes 0..7 cover sub-block 2k, 8..15 sub-block 2k + 1.
        __m256i scales[8];
        for (int k = 0; k < 8; k++) {
            scales[k] = _mm256_setr_m128i(_mm_set1_epi16(block->scales[2 * k]),
                                          _mm_set1_epi16(block->scales[2 * k + 1]));
        }
        float d = _cvtsh_ss(block->d);
        for (int r = 0; r < tile_rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride) + b;
            __m256i sum = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                // Levels <= 63 times |q| <= 127: pairs stay below 2^15.
                __m256i q = _mm256_loadu_si256((const __m256i *)(a->qs + 32 * k));
                __m256i products = _mm256_maddubs_epi16(levels[k], q);
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(products, scales[k]));
            }
            int offset = 0;
            for (int s = 0; s < 16; s++) offset += block->scales[s] * a->bsums[s];
            __m256i corrected = _mm256_sub_epi32(sum, _mm256_setr_epi32(32 * offset, 0, 0, 0, 0, 0, 0, 0));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(corrected), _mm256_set1_ps(d * a->d), acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = hk_sum_avx2(acc[r]);
}

HK_TARGET_AVX2 static void range_q6_k_avx2(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q6_K, in);
#define Q6_K_AVX2_TILE(n) \
    q6_k_tile_avx2((const hk_block_q6_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, Q6_K_AVX2_TILE);
#undef Q6_K_AVX2_TILE
}

// MARK: - VNNI: Q8_0
//
// Pack per row: the values as unsigned bytes (q + 128) [in], then per block eight copies of its scale
// [in / 32][8] f32, so that one 16-lane load covers the two blocks of a 64-byte weight vector.

static size_t stride_q8_0_vnni(int in) { return round_up_64((size_t)in + (size_t)in / 32 * 8 * sizeof(float)); }

HK_TARGET_VNNI static void pack_q8_0_vnni(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    float *block_scales = hk_quant_scratch(3, (size_t)in / 32 * sizeof(float));
    for (int r = 0; r < rows; r++) {
        uint8_t *p = pack + (size_t)r * stride;
        hk_quantize_activations_a32(x + (size_t)r * in, (int8_t *)p, block_scales, in);
        for (int i = 0; i < in; i += 64) {
            __mmask64 mask = in - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (in - i)) - 1);
            __m512i values = _mm512_maskz_loadu_epi8(mask, p + i);
            _mm512_mask_storeu_epi8(p + i, mask, _mm512_xor_si512(values, _mm512_set1_epi8((char)0x80)));
        }
        float *scales = (float *)(p + in);
        for (int b = 0; b < in / 32; b++) _mm256_storeu_ps(scales + 8 * b, _mm256_set1_ps(block_scales[b]));
    }
}

/// Four f16 scales 34 bytes apart, as f32 in lanes 0..3.
HK_TARGET_VNNI HK_INLINE __m128 four_block_scales(const hk_block_q8_0 *blocks) {
    uint64_t halves = (uint64_t)blocks[0].d | (uint64_t)blocks[1].d << 16 | (uint64_t)blocks[2].d << 32 |
                      (uint64_t)blocks[3].d << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)halves));
}

HK_TARGET_VNNI HK_INLINE void q8_0_tile_vnni(const hk_block_q8_0 *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m512 acc[MAX_TILE_ROWS];
    const uint8_t *values[MAX_TILE_ROWS];
    const float *scales[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        values[r] = pack + (size_t)(first_row + r) * stride;
        scales[r] = (const float *)(values[r] + in);
    }
    const __m512i offset = _mm512_set1_epi8((char)0x80);
    const __m512i first_pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i second_pair = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    int blocks_in_row = in / 32, b = 0;
    for (; b + 4 <= blocks_in_row; b += 4) {
        PREFETCH_AHEAD(blocks + b);
        PREFETCH_AHEAD((const char *)(blocks + b) + 64);
        PREFETCH_AHEAD((const char *)(blocks + b) + 128);
        __m512 four_scales = _mm512_castps128_ps512(four_block_scales(blocks + b));
        for (int half = 0; half < 2; half++) {
            const hk_block_q8_0 *pair = blocks + b + 2 * half;
            // Two blocks per vector, block k's scale in lanes 8 k .. 8 k + 7.
            __m256i first = _mm256_loadu_si256((const __m256i *)pair[0].qs);
            __m256i second = _mm256_loadu_si256((const __m256i *)pair[1].qs);
            __m512i weights = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
            __m512 weight_scales = _mm512_permutexvar_ps(half ? second_pair : first_pair, four_scales);
            // (q + 128) . w = q . w + 128 * sum(w): start each row's accumulator at -128 * sum(w).
            __m512i start =
                _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, weights));
            for (int r = 0; r < tile_rows; r++) {
                __m512i dot = _mm512_dpbusd_epi32(start, _mm512_loadu_si512(values[r] + 32 * (b + 2 * half)), weights);
                __m512 scale = _mm512_mul_ps(weight_scales, _mm512_loadu_ps(scales[r] + 8 * (b + 2 * half)));
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r]);
            }
        }
    }
    for (; b < blocks_in_row; b++) {
        // The last blocks one at a time, in the lower half of a vector.
        __m512i weights = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)blocks[b].qs));
        __m512 weight_scales = _mm512_maskz_mov_ps(0x00FF, _mm512_set1_ps(_cvtsh_ss(blocks[b].d)));
        __m512i start =
            _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, weights));
        for (int r = 0; r < tile_rows; r++) {
            __m512i activations = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(values[r] + 32 * b)));
            __m512i dot = _mm512_dpbusd_epi32(start, activations, weights);
            __m512 scale = _mm512_mul_ps(weight_scales, _mm512_zextps256_ps512(_mm256_loadu_ps(scales[r] + 8 * b)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(acc[r]);
}

HK_TARGET_VNNI static void range_q8_0_vnni(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q8_0, in);
#define Q8_0_VNNI_TILE(n) \
    q8_0_tile_vnni((const hk_block_q8_0 *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, Q8_0_VNNI_TILE);
#undef Q8_0_VNNI_TILE
}

// MARK: - VNNI: Q4_0
//
// Weights go four blocks (72 bytes) at a time: the four 16-byte nibble arrays make one vector (block k in
// bytes 16 k .. 16 k + 15), whose low nibbles are values 0..15 of each block and high nibbles values
// 16..31; the four f16 scales are gathered with scalar loads (cheaper than word permutes or gathers).
// Pack per row and group of four blocks (256 bytes): the activations in that order ([block][0..15] then
// [block][16..31], 128 bytes), per int32 lane -8 * (sum of the 8 activations that lane meets), and each
// block's scale in its four lanes.

#define Q4_0_GROUP_PACK 256

static size_t stride_q4_0_vnni(int in) { return (size_t)(in / 32 + 3) / 4 * Q4_0_GROUP_PACK; }

HK_TARGET_VNNI static void pack_q4_0_vnni(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    int blocks_in_row = in / 32, groups = (blocks_in_row + 3) / 4;
    int8_t *q = hk_quant_scratch(2, (size_t)groups * 128);
    float *d = hk_quant_scratch(3, (size_t)groups * 4 * sizeof(float));
    for (int r = 0; r < rows; r++) {
        memset(q, 0, (size_t)groups * 128);
        memset(d, 0, (size_t)groups * 4 * sizeof(float));
        hk_quantize_activations_a32(x + (size_t)r * in, q, d, in);
        uint8_t *p = pack + (size_t)r * stride;
        for (int g = 0; g < groups; g++) {
            uint8_t *group = p + (size_t)g * Q4_0_GROUP_PACK;
            for (int k = 0; k < 4; k++) {
                memcpy(group + 16 * k, q + 128 * g + 32 * k, 16);
                memcpy(group + 64 + 16 * k, q + 128 * g + 32 * k + 16, 16);
            }
            __m512i low = _mm512_loadu_si512(group), high = _mm512_loadu_si512(group + 64);
            // Lane sums of signed bytes: dpbusd with ones as the unsigned side.
            __m512i ones = _mm512_set1_epi8(1);
            __m512i sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, low), ones, high);
            _mm512_storeu_si512(group + 128, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-8)));
            __m512 scales = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                                  _mm512_castps128_ps512(_mm_loadu_ps(d + 4 * g)));
            _mm512_storeu_ps((float *)(group + 192), scales);
        }
    }
}

HK_TARGET_VNNI HK_INLINE void q4_0_tile_vnni(const uint8_t *row, const uint8_t *pack, size_t stride, float *y, int in,
                                             int out, int o, int first_row, const int tile_rows) {
    __m512 acc[MAX_TILE_ROWS];
    const uint8_t *groups_pack[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        groups_pack[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m512i scale_lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    const hk_block_q4_0 *blocks = (const hk_block_q4_0 *)row;
    int blocks_in_row = in / 32;
    for (int g = 0; g < (blocks_in_row + 3) / 4; g++) {
        const hk_block_q4_0 *group = blocks + 4 * g;
        PREFETCH_AHEAD(group);
        PREFETCH_AHEAD((const char *)group + 64);
        int count = blocks_in_row - 4 * g < 4 ? blocks_in_row - 4 * g : 4;
        // Block k's 16 nibble bytes into bytes 16 k .. 16 k + 15; its scale into lanes 4 k .. 4 k + 3. A short
        // last group leaves the missing blocks zero (scale 0).
        uint64_t halves = 0;
        __m512i packed = _mm512_setzero_si512();
        if (count == 4) {
            halves = (uint64_t)group[0].d | (uint64_t)group[1].d << 16 | (uint64_t)group[2].d << 32 |
                     (uint64_t)group[3].d << 48;
            __m128i nibbles[4];
            for (int k = 0; k < 4; k++) nibbles[k] = _mm_loadu_si128((const __m128i *)group[k].qs);
            __m256i first = _mm256_inserti128_si256(_mm256_castsi128_si256(nibbles[0]), nibbles[1], 1);
            __m256i second = _mm256_inserti128_si256(_mm256_castsi128_si256(nibbles[2]), nibbles[3], 1);
            packed = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
        } else {
            for (int k = 0; k < count; k++) {
                halves |= (uint64_t)group[k].d << (16 * k);
                packed = _mm512_mask_broadcast_i32x4(packed, (__mmask16)(0xF << (4 * k)),
                                                     _mm_loadu_si128((const __m128i *)group[k].qs));
            }
        }
        __m512 weight_scales = _mm512_permutexvar_ps(
            scale_lanes, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)halves))));
        __m512i low = _mm512_and_si512(packed, low_nibbles);
        __m512i high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = groups_pack[r] + (size_t)g * Q4_0_GROUP_PACK;
            __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(p + 128), low, _mm512_loadu_si512(p));
            dot = _mm512_dpbusd_epi32(dot, high, _mm512_loadu_si512(p + 64));
            __m512 scale = _mm512_mul_ps(weight_scales, _mm512_loadu_ps((const float *)(p + 192)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(acc[r]);
}

HK_TARGET_VNNI static void range_q4_0_vnni(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q4_0, in);
#define Q4_0_VNNI_TILE(n) q4_0_tile_vnni(w + (size_t)o * row_bytes, pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, Q4_0_VNNI_TILE);
#undef Q4_0_VNNI_TILE
}

// MARK: - VNNI: Q4_K
//
// The 128 nibble bytes are two vectors; low and high nibbles of the first are sub-blocks (0, 2) and
// (1, 3), of the second (4, 6) and (5, 7). Pack per row and super-block (384 bytes): the activations in
// that sub-block order [0, 2, 1, 3, 4, 6, 5, 7] (256 bytes), then d * (sub-block sums) in lanes 0..7 of a
// 16-lane f32 vector (upper lanes 0), then d.


size_t hk_stride_q4_k_vnni(int in) { return (size_t)(in / HK_QK_K) * Q4_K_BLOCK_PACK; }

HK_TARGET_VNNI void hk_pack_q4_k_vnni(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    int blocks_in_row = in / HK_QK_K;
    hk_block_q8_k *blocks = hk_quant_scratch(2, (size_t)blocks_in_row * sizeof(hk_block_q8_k));
    static const int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (int r = 0; r < rows; r++) {
        hk_quantize_row_q8_k(x + (size_t)r * in, blocks, in);
        for (int b = 0; b < blocks_in_row; b++) {
            uint8_t *p = pack + (size_t)r * stride + (size_t)b * Q4_K_BLOCK_PACK;
            for (int k = 0; k < 8; k++) memcpy(p + 32 * k, blocks[b].qs + 32 * order[k], 32);
            float *sums = (float *)(p + 256);
            for (int s = 0; s < 8; s++) {
                sums[s] = blocks[b].d * (float)(blocks[b].bsums[2 * s] + blocks[b].bsums[2 * s + 1]);
            }
            for (int s = 8; s < 16; s++) sums[s] = 0.0f;
            ((float *)(p + 320))[0] = blocks[b].d;
        }
    }
}

HK_TARGET_VNNI HK_INLINE void q4_k_tile_vnni(const hk_block_q4_k *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m512 acc[MAX_TILE_ROWS];
    const uint8_t *blocks_pack[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        blocks_pack[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    // Byte shuffles of the 16 unpacked bytes (scales 0..7, mins 0..7, copied to every 128-bit lane): each
    // int32 lane gets one byte, zero-extended. Lanes 0..7 and 8..15 take sub-blocks (0, 2), (1, 3), (4, 6),
    // (5, 7) for the four level vectors; the last puts min k in lane k (k < 8) and zeros above.
#define LANE_BYTE(b) ((b) | (int)0x80808000)
#define SUB_BLOCK_PAIR(s, t)                                                                                   \
    _mm512_setr_epi32(LANE_BYTE(s), LANE_BYTE(s), LANE_BYTE(s), LANE_BYTE(s), LANE_BYTE(s), LANE_BYTE(s),         \
                      LANE_BYTE(s), LANE_BYTE(s), LANE_BYTE(t), LANE_BYTE(t), LANE_BYTE(t), LANE_BYTE(t),         \
                      LANE_BYTE(t), LANE_BYTE(t), LANE_BYTE(t), LANE_BYTE(t))
    const __m512i pick0 = SUB_BLOCK_PAIR(0, 2), pick1 = SUB_BLOCK_PAIR(1, 3);
    const __m512i pick2 = SUB_BLOCK_PAIR(4, 6), pick3 = SUB_BLOCK_PAIR(5, 7);
    const __m512i pick_mins = _mm512_setr_epi32(LANE_BYTE(8), LANE_BYTE(9), LANE_BYTE(10), LANE_BYTE(11),
                                                LANE_BYTE(12), LANE_BYTE(13), LANE_BYTE(14), LANE_BYTE(15),
                                                -1, -1, -1, -1, -1, -1, -1, -1);
#undef SUB_BLOCK_PAIR
#undef LANE_BYTE
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q4_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        PREFETCH_AHEAD((const char *)block + 128);
        // Unpacked with scalar word arithmetic (idle integer ports) and moved over without a memory round trip.
        uint32_t words[3];
        memcpy(words, block->scales, sizeof words);
        uint64_t scales = (words[0] & 0x3F3F3F3Fu) |
                          (uint64_t)((words[2] & 0x0F0F0F0Fu) | (((words[0] >> 6) & 0x03030303u) << 4)) << 32;
        uint64_t mins = (words[1] & 0x3F3F3F3Fu) |
                        (uint64_t)(((words[2] >> 4) & 0x0F0F0F0Fu) | (((words[1] >> 6) & 0x03030303u) << 4)) << 32;
        __m512i factors = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)mins, (long long)scales));
        __m512i scales0 = _mm512_shuffle_epi8(factors, pick0), scales1 = _mm512_shuffle_epi8(factors, pick1);
        __m512i scales2 = _mm512_shuffle_epi8(factors, pick2), scales3 = _mm512_shuffle_epi8(factors, pick3);
        uint32_t both_halves;
        memcpy(&both_halves, &block->d, sizeof both_halves); // d, dmin
        __m128 d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128((int)both_halves));
        float d = _mm_cvtss_f32(d_dmin);
        __m512 mins_scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_shuffle_epi8(factors, pick_mins)),
                                           _mm512_broadcastss_ps(_mm_movehdup_ps(d_dmin)));
        __m512i first = _mm512_loadu_si512(block->qs), second = _mm512_loadu_si512(block->qs + 64);
        __m512i levels0 = _mm512_and_si512(first, low_nibbles);
        __m512i levels1 = _mm512_and_si512(_mm512_srli_epi16(first, 4), low_nibbles);
        __m512i levels2 = _mm512_and_si512(second, low_nibbles);
        __m512i levels3 = _mm512_and_si512(_mm512_srli_epi16(second, 4), low_nibbles);
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = blocks_pack[r] + (size_t)b * Q4_K_BLOCK_PACK;
            __m512i zero = _mm512_setzero_si512();
            __m512i sum = _mm512_dpwssd_epi32(zero, _mm512_dpbusd_epi32(zero, levels0, _mm512_loadu_si512(p)), scales0);
            sum = _mm512_dpwssd_epi32(sum, _mm512_dpbusd_epi32(zero, levels1, _mm512_loadu_si512(p + 64)), scales1);
            sum = _mm512_dpwssd_epi32(sum, _mm512_dpbusd_epi32(zero, levels2, _mm512_loadu_si512(p + 128)), scales2);
            sum = _mm512_dpwssd_epi32(sum, _mm512_dpbusd_epi32(zero, levels3, _mm512_loadu_si512(p + 192)), scales3);
            float activation_scale = ((const float *)(p + 320))[0];
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * activation_scale), acc[r]);
            acc[r] = _mm512_fnmadd_ps(mins_scaled, _mm512_loadu_ps((const float *)(p + 256)), acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(acc[r]);
}

HK_TARGET_VNNI static void range_q4_k_vnni(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q4_K, in);
#define Q4_K_VNNI_TILE(n) \
    q4_k_tile_vnni((const hk_block_q4_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, Q4_K_VNNI_TILE);
#undef Q4_K_VNNI_TILE
}

// MARK: - VNNI: Q6_K
//
// Per half (128 values) the 64 low-bit bytes and 32 high-bit bytes give two vectors of six-bit levels in
// value order (values 0..63 and 64..127 of the half), so the activations stay in their natural order.
// Pack per row and super-block (576 bytes): the activations (256), per 64-byte vector and int32 lane
// -32 * (sum of the lane's 4 activations) (4 x 64), then d.

#define Q6_K_BLOCK_PACK 576

static size_t stride_q6_k_vnni(int in) { return (size_t)(in / HK_QK_K) * Q6_K_BLOCK_PACK; }

HK_TARGET_VNNI static void pack_q6_k_vnni(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    int blocks_in_row = in / HK_QK_K;
    hk_block_q8_k *blocks = hk_quant_scratch(2, (size_t)blocks_in_row * sizeof(hk_block_q8_k));
    for (int r = 0; r < rows; r++) {
        hk_quantize_row_q8_k(x + (size_t)r * in, blocks, in);
        for (int b = 0; b < blocks_in_row; b++) {
            uint8_t *p = pack + (size_t)r * stride + (size_t)b * Q6_K_BLOCK_PACK;
            memcpy(p, blocks[b].qs, 256);
            for (int v = 0; v < 4; v++) {
                __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1),
                                                   _mm512_loadu_si512(blocks[b].qs + 64 * v));
                _mm512_storeu_si512(p + 256 + 64 * v, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-32)));
            }
            ((float *)(p + 512))[0] = blocks[b].d;
        }
    }
}

HK_TARGET_VNNI HK_INLINE void q6_k_tile_vnni(const hk_block_q6_k *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m512 acc[MAX_TILE_ROWS];
    const uint8_t *blocks_pack[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        blocks_pack[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
    // Vector v covers sub-blocks 4 v .. 4 v + 3, four lanes each.
    const __m512i pick[4] = {
        _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7),
        _mm512_setr_epi32(8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11),
        _mm512_setr_epi32(12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15),
    };
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q6_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        PREFETCH_AHEAD((const char *)block + 128);
        PREFETCH_AHEAD((const char *)block + 192);
        // Signed scales as (scale, 0) word pairs: sign-extend to 16 bits, zero-extend to 32.
        __m512i factors = _mm512_cvtepu16_epi32(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)block->scales)));
        __m512i scales[4], levels[4];
        for (int v = 0; v < 4; v++) scales[v] = _mm512_permutexvar_epi32(pick[v], factors);
        for (int half = 0; half < 2; half++) {
            __m512i low = _mm512_loadu_si512(block->ql + 64 * half);
            __m256i high = _mm256_loadu_si256((const __m256i *)(block->qh + 32 * half));
            // Bytes 0..31: the high bits of the first and third quarter at bits 0-1 and 4-5; bytes 32..63 the
            // same for the second and fourth (shifted down by 2).
            __m512i high_bits = _mm512_inserti64x4(_mm512_castsi256_si512(high), _mm256_srli_epi16(high, 2), 1);
            levels[2 * half] = _mm512_or_si512(_mm512_and_si512(low, low_nibbles),
                                               _mm512_and_si512(_mm512_slli_epi16(high_bits, 4), bits45));
            levels[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(low, 4), low_nibbles),
                                                   _mm512_and_si512(high_bits, bits45));
        }
        float d = _cvtsh_ss(block->d);
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = blocks_pack[r] + (size_t)b * Q6_K_BLOCK_PACK;
            __m512i sum = _mm512_setzero_si512();
            for (int v = 0; v < 4; v++) {
                // Starts at -32 * (lane's activations), so each lane is sum (level - 32) * q, |.| < 2^15.
                __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(p + 256 + 64 * v), levels[v],
                                                  _mm512_loadu_si512(p + 64 * v));
                sum = _mm512_dpwssd_epi32(sum, dot, scales[v]);
            }
            float activation_scale = ((const float *)(p + 512))[0];
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * activation_scale), acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(acc[r]);
}

HK_TARGET_VNNI static void range_q6_k_vnni(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q6_K, in);
#define Q6_K_VNNI_TILE(n) \
    q6_k_tile_vnni((const hk_block_q6_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
    FOR_EACH_TILE(rows, row_bytes, Q6_K_VNNI_TILE);
#undef Q6_K_VNNI_TILE
}

// MARK: - Dispatch

static int select_kernel(int type, int isa, kernel *k) {
    switch (type) {
    case HK_TYPE_Q8_0:
        if (isa == HK_ISA_AVX512) *k = (kernel){pack_q8_0_vnni, stride_q8_0_vnni, range_q8_0_vnni};
        else if (isa == HK_ISA_AVX2) *k = (kernel){pack_a32, stride_a32, range_q8_0_avx2};
        else *k = (kernel){pack_a32, stride_a32, range_q8_0_scalar};
        return 0;
    case HK_TYPE_Q4_0:
        if (isa == HK_ISA_AVX512) *k = (kernel){pack_q4_0_vnni, stride_q4_0_vnni, range_q4_0_vnni};
        else if (isa == HK_ISA_AVX2) *k = (kernel){pack_a32, stride_a32, range_q4_0_avx2};
        else *k = (kernel){pack_a32, stride_a32, range_q4_0_scalar};
        return 0;
    case HK_TYPE_Q4_K:
        if (isa == HK_ISA_AVX512) *k = (kernel){hk_pack_q4_k_vnni, hk_stride_q4_k_vnni, range_q4_k_vnni};
        else if (isa == HK_ISA_AVX2) *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q4_k_avx2};
        else *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q4_k_scalar};
        return 0;
    case HK_TYPE_Q6_K:
        if (isa == HK_ISA_AVX512) *k = (kernel){pack_q6_k_vnni, stride_q6_k_vnni, range_q6_k_vnni};
        else if (isa == HK_ISA_AVX2) *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q6_k_avx2};
        else *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q6_k_scalar};
        return 0;
    case HK_TYPE_Q4_1: case HK_TYPE_Q5_0: case HK_TYPE_Q5_1: case HK_TYPE_IQ4_NL: return hk_legacy_select_kernel(type, isa, k);
    case HK_TYPE_Q2_K: case HK_TYPE_Q3_K: case HK_TYPE_Q5_K: case HK_TYPE_IQ4_XS:
        return hk_select_k_more_kernel(type, isa, k);
    default: return -1;
    }
}

int hk_matmul_rows_quant(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                         float *y /* [rows, out] */, int rows, int in, int out) {
    kernel k;
    if (select_kernel(type, hk_quant_isa(), &k) != 0 || in % hk_quant_block_size(type) != 0) return -1;
    if (rows <= 0 || out <= 0) return 0;
    size_t stride = k.stride(in);
    uint8_t *pack = hk_quant_scratch(0, (size_t)rows * stride);
    if (pack == NULL) return -1;
    k.pack(x, rows, in, pack, stride);

    int threads = hk_thread_count();
    // Below ~64K multiply-adds a team fork costs more than it saves.
    if (threads <= 1 || out < 2 || (size_t)out * (size_t)in * (size_t)rows < ((size_t)1 << 16)) {
        k.range(w, pack, stride, y, rows, in, out, 0, out);
        return 0;
    }
    if (threads > out) threads = out;
#pragma omp parallel num_threads(threads)
    {
        // Static contiguous split: each output is always computed by the same code, whatever the team size.
        size_t first, end;
        hk_split_range((size_t)out, omp_get_thread_num(), omp_get_num_threads(), &first, &end);
        if (first < end) k.range(w, pack, stride, y, rows, in, out, (int)first, (int)end);
    }
    return 0;
}
