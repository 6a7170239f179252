// Decode over quantized weights: y[r, o] = sum_i w[o, i] * x[r, i] for a few activation rows.
//
// The activations are quantized once per call (int8 blocks, see hone_quant.h) and packed into a layout
// made for the kernel at hand; the weights are read in their GGUF layout, one output row at a time, and
// each weight row's blocks are decoded once per register tile of up to four activation rows (FOR_EACH_TILE
// keeps the weights of further tiles in L2); Q4_0's AVX2 kernel (in quant_legacy.c, beside IQ4_NL's) reads two
// output rows per register instead. Integer products are exact; f32 only enters when a block's integer sum is
// scaled, and each (output, row) gets the same operations whatever the other rows and outputs.
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
        PREFETCH_AHEAD(blocks + b);
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


HK_TARGET_AVX2 HK_INLINE void q4_k_tile_avx2(const hk_block_q4_k *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m256 acc[MAX_TILE_ROWS], mins_acc[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = mins_acc[r] = _mm256_setzero_ps();
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    for (int b = 0; b < in / HK_QK_K; b++) {
        PREFETCH_AHEAD(blocks + b);
        PREFETCH_AHEAD((const char *)(blocks + b) + 64);
        PREFETCH_AHEAD((const char *)(blocks + b) + 128);
        const hk_block_q4_k *block = &blocks[b];
        __m256i min_pairs;
        __m256i scale_bytes = hk_q4k_scale_bytes_avx2(block->scales, &min_pairs);
        __m256i sums[MAX_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) sums[r] = _mm256_setzero_si256();
        // Two sub-blocks (one 32-byte load) at a time: their levels and scales stay in registers (all eight of
        // each did not fit AVX2's sixteen and were spilled).
        for (int c = 0; c < 4; c++) {
            __m256i packed = _mm256_loadu_si256((const __m256i *)(block->qs + 32 * c));
            __m256i low = _mm256_and_si256(packed, low_nibbles);
            __m256i high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
            hk_q4k_sub_block_pair_avx2(low, high, scale_bytes, c, pack, stride, first_row, b, tile_rows, sums);
        }
        hk_q4k_block_end_avx2(sums, min_pairs, _cvtsh_ss(block->d), _cvtsh_ss(block->dmin), pack, stride, first_row, b,
                              tile_rows, acc, mins_acc);
    }
    for (int r = 0; r < tile_rows; r++) {
        y[(size_t)(first_row + r) * out + o] = hk_sum_avx2(_mm256_sub_ps(acc[r], mins_acc[r]));
    }
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
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F), top_bits = _mm256_set1_epi8(0x30);
    for (int b = 0; b < in / HK_QK_K; b++) {
        PREFETCH_AHEAD(blocks + b);
        PREFETCH_AHEAD((const char *)(blocks + b) + 64);
        PREFETCH_AHEAD((const char *)(blocks + b) + 128);
        PREFETCH_AHEAD((const char *)(blocks + b) + 192);
        const hk_block_q6_k *block = &blocks[b];
        // Scales per 32 values: the int16 lanes 0..7 cover sub-block 2k, 8..15 sub-block 2k + 1. The 16 signed
        // scales widened to words once; words 0..7 (then 8..15) copied to both 128-bit lanes, from which one
        // byte shuffle per vector picks its two words.
        __m256i scale_words = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)block->scales));
        __m256i sums[MAX_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) sums[r] = _mm256_setzero_si256();
        // One half (128 values) at a time: its four level vectors and four scale vectors stay in registers (all
        // eight of each did not fit AVX2's sixteen and were spilled).
        for (int half = 0; half < 2; half++) {
            __m256i word_half = half ? _mm256_permute2x128_si256(scale_words, scale_words, 0x11)
                                     : _mm256_permute2x128_si256(scale_words, scale_words, 0x00);
            __m256i low0 = _mm256_loadu_si256((const __m256i *)(block->ql + 64 * half));
            __m256i low1 = _mm256_loadu_si256((const __m256i *)(block->ql + 64 * half + 32));
            __m256i high = _mm256_loadu_si256((const __m256i *)(block->qh + 32 * half));
            // Quarter k: low or high nibbles of low0/low1, top two bits at bit 2 k of `high`.
            __m256i nibbles[4] = {
                _mm256_and_si256(low0, low_nibbles), _mm256_and_si256(low1, low_nibbles),
                _mm256_and_si256(_mm256_srli_epi16(low0, 4), low_nibbles),
                _mm256_and_si256(_mm256_srli_epi16(low1, 4), low_nibbles),
            };
            __m256i levels[4], scales[4];
            for (int k = 0; k < 4; k++) {
                // Bits 2k, 2k + 1 of each byte of `high` moved to bits 4, 5 with one shift (within each byte:
                // the mask drops what crosses from the neighbour).
                __m256i shifted = k < 2 ? _mm256_slli_epi16(high, 4 - 2 * k) : _mm256_srli_epi16(high, 2 * k - 4);
                levels[k] = _mm256_or_si256(nibbles[k], _mm256_and_si256(shifted, top_bits));
                int first = 4 * k; // byte offset of word 2 (4 half + k) within its half
                __m256i pick = _mm256_setr_m128i(_mm_set1_epi16((short)(first | (first + 1) << 8)),
                                                 _mm_set1_epi16((short)((first + 2) | (first + 3) << 8)));
                scales[k] = _mm256_shuffle_epi8(word_half, pick);
            }
            hk_q8_k_products_avx2(levels, scales, 4, 128 * half, pack, stride, first_row, b, tile_rows, sums);
        }
        float d = _cvtsh_ss(block->d);
        for (int r = 0; r < tile_rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride) + b;
            // Levels q - 32 are multiplied as q: 32 * (scale * sub-block sum) comes off, lane by lane.
            __m256i offset = _mm256_madd_epi16(scale_words, _mm256_loadu_si256((const __m256i *)a->bsums));
            __m256i corrected = _mm256_sub_epi32(sums[r], _mm256_slli_epi32(offset, 5));
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
// Weights go eight blocks (272 bytes) at a time, rearranged in registers so that each 64-bit lane of a
// vector holds eight bytes of one block: four vpdpbusd then leave every block's whole integer dot product in
// two int32 lanes, and one conversion and one multiply-add per row cover eight blocks (instead of per two
// blocks with the blocks' natural order). The rearrangement (unpack of qwords, then 128-bit shuffles) is paid
// once per weight group for a tile of up to eight activation rows. With X_m = blocks 2m and 2m + 1 (qwords
// q_b0..q_b3 each), vector k's qword lane l holds qword k' of block group_order[l], where
// (k = 0, 1, 2, 3) -> (k' = 0, 2, 1, 3); the activations are packed in that same order.
//
// VNNI multiplies unsigned by signed bytes: the weights are taken as w + 128 (one xor per vector, shared by the
// rows) and each row's accumulator starts at -128 * (sum of the activations each lane meets), packed per row.
//
// Pack per row and group of eight blocks (384 bytes): the four rearranged activation vectors (signed, 256
// bytes), the per-lane -128 * (activation sums) (16 int32), then the blocks' scales in the lanes of their dot
// products (16 f32). A short last group has zero activations and scales in its missing blocks (and the kernel
// zero weights there).

#define Q8_0_GROUP_PACK 384
#define Q8_0_TILE_ROWS 8

static size_t stride_q8_0_vnni(int in) { return (size_t)(in / 32 + 7) / 8 * Q8_0_GROUP_PACK; }

/// Rearranges eight blocks of 32 bytes, given as four vectors of two blocks each, into the group order above.
HK_TARGET_VNNI HK_INLINE void q8_0_rearrange(const __m512i pairs[4], __m512i vectors[4]) {
    __m512i low01 = _mm512_unpacklo_epi64(pairs[0], pairs[1]), high01 = _mm512_unpackhi_epi64(pairs[0], pairs[1]);
    __m512i low23 = _mm512_unpacklo_epi64(pairs[2], pairs[3]), high23 = _mm512_unpackhi_epi64(pairs[2], pairs[3]);
    vectors[0] = _mm512_shuffle_i64x2(low01, low23, _MM_SHUFFLE(2, 0, 2, 0));
    vectors[1] = _mm512_shuffle_i64x2(low01, low23, _MM_SHUFFLE(3, 1, 3, 1));
    vectors[2] = _mm512_shuffle_i64x2(high01, high23, _MM_SHUFFLE(2, 0, 2, 0));
    vectors[3] = _mm512_shuffle_i64x2(high01, high23, _MM_SHUFFLE(3, 1, 3, 1));
}

/// Per 64-bit lane l, the block whose bytes it holds after q8_0_rearrange, as int32 lane indices (2 per block).
#define Q8_0_GROUP_LANES _mm512_setr_epi32(0, 0, 2, 2, 1, 1, 3, 3, 4, 4, 6, 6, 5, 5, 7, 7)

HK_TARGET_VNNI static void pack_q8_0_vnni(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    int blocks_in_row = in / 32, groups = (blocks_in_row + 7) / 8;
    int8_t *q = hk_quant_scratch(2, (size_t)groups * 256);
    float *d = hk_quant_scratch(3, (size_t)groups * 8 * sizeof(float));
    for (int r = 0; r < rows; r++) {
        memset(q, 0, (size_t)groups * 256);
        memset(d, 0, (size_t)groups * 8 * sizeof(float));
        hk_quantize_activations_a32(x + (size_t)r * in, q, d, in);
        uint8_t *p = pack + (size_t)r * stride;
        for (int g = 0; g < groups; g++) {
            uint8_t *group = p + (size_t)g * Q8_0_GROUP_PACK;
            __m512i pairs[4], vectors[4];
            for (int m = 0; m < 4; m++) pairs[m] = _mm512_loadu_si512(q + 256 * g + 64 * m);
            q8_0_rearrange(pairs, vectors);
            // Lane sums of signed bytes: dpbusd with ones as the unsigned side.
            __m512i sums = _mm512_setzero_si512();
            for (int k = 0; k < 4; k++) {
                _mm512_storeu_si512(group + 64 * k, vectors[k]);
                sums = _mm512_dpbusd_epi32(sums, _mm512_set1_epi8(1), vectors[k]);
            }
            _mm512_storeu_si512(group + 256, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-128)));
            __m512 scales = _mm512_permutexvar_ps(Q8_0_GROUP_LANES, _mm512_castps256_ps512(_mm256_loadu_ps(d + 8 * g)));
            _mm512_storeu_ps((float *)(group + 320), scales);
        }
    }
}

/// Eight f16 scales 34 bytes apart (the first `count`, zeros after), as f32 in lanes 0..7.
HK_TARGET_VNNI HK_INLINE __m256 eight_block_scales(const hk_block_q8_0 *blocks, int count) {
    uint64_t low = 0, high = 0;
    if (count == 8) {
        low = (uint64_t)blocks[0].d | (uint64_t)blocks[1].d << 16 | (uint64_t)blocks[2].d << 32 |
              (uint64_t)blocks[3].d << 48;
        high = (uint64_t)blocks[4].d | (uint64_t)blocks[5].d << 16 | (uint64_t)blocks[6].d << 32 |
               (uint64_t)blocks[7].d << 48;
    } else {
        for (int k = 0; k < count; k++) {
            if (k < 4) low |= (uint64_t)blocks[k].d << (16 * k);
            else high |= (uint64_t)blocks[k].d << (16 * (k - 4));
        }
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)high, (long long)low));
}

HK_TARGET_VNNI HK_INLINE void q8_0_tile_vnni(const hk_block_q8_0 *blocks, const uint8_t *pack, size_t stride,
                                             float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m512 acc[Q8_0_TILE_ROWS];
    const uint8_t *groups_pack[Q8_0_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        groups_pack[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m512i offset = _mm512_set1_epi8((char)0x80);
    int blocks_in_row = in / 32;
    for (int g = 0; g < (blocks_in_row + 7) / 8; g++) {
        const hk_block_q8_0 *group = blocks + 8 * g;
        PREFETCH_AHEAD(group);
        PREFETCH_AHEAD((const char *)group + 64);
        PREFETCH_AHEAD((const char *)group + 128);
        PREFETCH_AHEAD((const char *)group + 192);
        PREFETCH_AHEAD((const char *)group + 256);
        int count = blocks_in_row - 8 * g < 8 ? blocks_in_row - 8 * g : 8;
        __m512i pairs[4], weights[4];
        for (int m = 0; m < 4; m++) {
            // Blocks past the row's end stay zero (never read: the next row or the end of the mapping).
            __m256i first = 2 * m < count ? _mm256_loadu_si256((const __m256i *)group[2 * m].qs) : _mm256_setzero_si256();
            __m256i second =
                2 * m + 1 < count ? _mm256_loadu_si256((const __m256i *)group[2 * m + 1].qs) : _mm256_setzero_si256();
            pairs[m] = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
        }
        q8_0_rearrange(pairs, weights);
        // (w + 128) . q = w . q + 128 * sum(q); the pack's start value takes the second term off.
        for (int k = 0; k < 4; k++) weights[k] = _mm512_xor_si512(weights[k], offset);
        __m512 weight_scales = _mm512_permutexvar_ps(Q8_0_GROUP_LANES,
                                                     _mm512_castps256_ps512(eight_block_scales(group, count)));
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = groups_pack[r] + (size_t)g * Q8_0_GROUP_PACK;
            __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(p + 256), weights[0], _mm512_loadu_si512(p));
            dot = _mm512_dpbusd_epi32(dot, weights[1], _mm512_loadu_si512(p + 64));
            dot = _mm512_dpbusd_epi32(dot, weights[2], _mm512_loadu_si512(p + 128));
            dot = _mm512_dpbusd_epi32(dot, weights[3], _mm512_loadu_si512(p + 192));
            __m512 scale = _mm512_mul_ps(weight_scales, _mm512_loadu_ps((const float *)(p + 320)));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(acc[r]);
}

HK_TARGET_VNNI static void range_q8_0_vnni(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                           int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q8_0, in);
    // As FOR_EACH_TILE, with tiles of up to eight rows: the rearranged weights are shared by more rows. Outputs go
    // in chunks of about 64 KB of weights (read from memory by the first tile, from L2 by the others); each
    // (output, row) is computed by one tile call with the same operations, whatever the row count.
    int tile_count = (rows + Q8_0_TILE_ROWS - 1) / Q8_0_TILE_ROWS;
    int chunk = (int)(((size_t)64 << 10) / row_bytes);
    if (chunk < 1 || tile_count == 1) chunk = end_output - first_output;
    for (int chunk_first = first_output; chunk_first < end_output; chunk_first += chunk) {
        int chunk_end = end_output - chunk_first < chunk ? end_output : chunk_first + chunk;
        for (int tile = 0; tile < tile_count; tile++) {
            int first_row = tile * rows / tile_count, end_row = (tile + 1) * rows / tile_count;
            for (int o = chunk_first; o < chunk_end; o++) {
                const hk_block_q8_0 *blocks = (const hk_block_q8_0 *)(w + (size_t)o * row_bytes);
#define Q8_0_VNNI_TILE(n) q8_0_tile_vnni(blocks, pack, stride, y, in, out, o, first_row, n)
                switch (end_row - first_row) {
                case 1: Q8_0_VNNI_TILE(1); break;
                case 2: Q8_0_VNNI_TILE(2); break;
                case 3: Q8_0_VNNI_TILE(3); break;
                case 4: Q8_0_VNNI_TILE(4); break;
                case 5: Q8_0_VNNI_TILE(5); break;
                case 6: Q8_0_VNNI_TILE(6); break;
                case 7: Q8_0_VNNI_TILE(7); break;
                default: Q8_0_VNNI_TILE(8); break;
                }
#undef Q8_0_VNNI_TILE
            }
        }
    }
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
    __m256 min_acc[MAX_TILE_ROWS];  // eight sub-blocks: half a vector, half the work of a full one
    const uint8_t *blocks_pack[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        min_acc[r] = _mm256_setzero_ps();
        blocks_pack[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    // Puts min k of the 16 unpacked bytes (copied to every 128-bit lane) in int32 lane k.
#define LANE_BYTE(b) ((b) | (int)0x80808000)
    const __m256i pick_mins = _mm256_setr_epi32(LANE_BYTE(8), LANE_BYTE(9), LANE_BYTE(10), LANE_BYTE(11),
                                                LANE_BYTE(12), LANE_BYTE(13), LANE_BYTE(14), LANE_BYTE(15));
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
        __m512i scale_words[2] = {hk_q4k_scale_words_vnni(factors, 0, 1, 2, 3),
                                  hk_q4k_scale_words_vnni(factors, 4, 5, 6, 7)};
        uint32_t both_halves;
        memcpy(&both_halves, &block->d, sizeof both_halves); // d, dmin
        __m128 d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128((int)both_halves));
        float d = _mm_cvtss_f32(d_dmin);
        __m256 mins_scaled = _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_shuffle_epi8(_mm512_castsi512_si256(factors), pick_mins)),
            _mm256_broadcastss_ps(_mm_movehdup_ps(d_dmin)));
        __m512i first = _mm512_loadu_si512(block->qs), second = _mm512_loadu_si512(block->qs + 64);
        __m512i levels0 = _mm512_and_si512(first, low_nibbles);
        __m512i levels1 = _mm512_and_si512(_mm512_srli_epi16(first, 4), low_nibbles);
        __m512i levels2 = _mm512_and_si512(second, low_nibbles);
        __m512i levels3 = _mm512_and_si512(_mm512_srli_epi16(second, 4), low_nibbles);
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = blocks_pack[r] + (size_t)b * Q4_K_BLOCK_PACK;
            __m512i zero = _mm512_setzero_si512();
            __m512i dots[4] = {_mm512_dpbusd_epi32(zero, levels0, _mm512_loadu_si512(p)),
                               _mm512_dpbusd_epi32(zero, levels1, _mm512_loadu_si512(p + 64)),
                               _mm512_dpbusd_epi32(zero, levels2, _mm512_loadu_si512(p + 128)),
                               _mm512_dpbusd_epi32(zero, levels3, _mm512_loadu_si512(p + 192))};
            __m512i sums = hk_scaled_pair_sum_vnni(dots, scale_words);
            float activation_scale = ((const float *)(p + 320))[0];
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(d * activation_scale), acc[r]);
            min_acc[r] = _mm256_fmadd_ps(mins_scaled, _mm256_loadu_ps((const float *)(p + 256)), min_acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        y[(size_t)(first_row + r) * out + o] =
            _mm512_reduce_add_ps(_mm512_sub_ps(acc[r], _mm512_zextps256_ps512(min_acc[r])));
    }
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
    // Vector v covers sub-blocks 4 v .. 4 v + 3, four lanes each. Dot vectors are packed to words two at a time
    // (vpackssdw: in 128-bit lane L, words 0..3 from the first vector's quarter L, words 4..7 from the second's),
    // so the words of pair j in lane L meet sub-blocks 8 j + L and 8 j + 4 + L.
    __m512i pick_words[2];
    for (int j = 0; j < 2; j++) {
        int16_t words[32];
        for (int w = 0; w < 32; w++) words[w] = (int16_t)(8 * j + (w % 8 < 4 ? 0 : 4) + w / 8);
        pick_words[j] = _mm512_loadu_si512(words);
    }
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q6_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        PREFETCH_AHEAD((const char *)block + 128);
        PREFETCH_AHEAD((const char *)block + 192);
        // The 16 signed scales as words, placed for the two packed pairs.
        __m512i scales16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)block->scales)));
        __m512i scale_words[2] = {_mm512_permutexvar_epi16(pick_words[0], scales16),
                                  _mm512_permutexvar_epi16(pick_words[1], scales16)};
        __m512i levels[4];
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
            __m512i dots[4];
            for (int v = 0; v < 4; v++) {
                // Starts at -32 * (lane's activations), so each lane is sum (level - 32) * q, |.| < 2^15: packing
                // two vectors to words is exact.
                dots[v] = _mm512_dpbusd_epi32(_mm512_loadu_si512(p + 256 + 64 * v), levels[v],
                                              _mm512_loadu_si512(p + 64 * v));
            }
            __m512i sum = hk_scaled_pair_sum_vnni(dots, scale_words);
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
        else if (isa == HK_ISA_AVX2) *k = (kernel){hk_pack_a32_sums, hk_stride_a32_sums, hk_range_q4_0_pairs_avx2};
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
