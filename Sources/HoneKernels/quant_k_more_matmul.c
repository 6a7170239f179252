// Decode kernels for Q2_K, Q3_K, Q5_K and IQ4_XS weights: y[r, o] = sum_i w[o, i] * x[r, i] for a few rows.
//
// The activations are Q8_K blocks (hk_quantize_row_q8_k), as llama.cpp uses with these formats; each
// sub-block's integer dot product is exact, and the integer sub-block scales are applied in integers where
// the lane sums fit in 16 bits (vpdpwssd), so f32 only enters once per super-block (IQ4_XS on VNNI: per vector).
// The tiling, packing conventions and prefetching are quant_matmul.c's (quant_row_kernels.h), but for AVX2
// IQ4_XS, which takes IQ4_NL's eight-output tile (below).
//
// Signs and offsets, per format (VNNI multiplies unsigned weight bytes by signed activation bytes):
// - Q2_K levels 0..3 and Q5_K levels 0..31 are unsigned; their mins use the activations' sub-block sums.
// - Q3_K's levels q - 4 are multiplied as q (0..7); -4 * sum over sub-blocks of scale * (sub-block sum) corrects.
// - IQ4_XS's non-linear levels (-127..113) are looked up as level + 128 (1..241); -128 * (lane sum) starts
//   (VNNI; AVX2 multiplies the signed levels by the sign trick).
#include "quant_row_kernels.h"

HK_INLINE float f16_to_f32(uint16_t half) { return hk_f16_to_f32_scalar(half); }

/// Two-bit level of value v (0..255) in Q2_K/Q3_K's qs.
HK_INLINE int two_bit_level(const uint8_t *qs /* [64] */, int v) {
    return (qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3;
}

// MARK: - Scalar (canonical Q8_K activations)

static void range_q2_k_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in,
                              int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q2_K, in);
    for (int o = first_output; o < end_output; o++) {
        const hk_block_q2_k *blocks = (const hk_block_q2_k *)(w + (size_t)o * row_bytes);
        for (int r = 0; r < rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)r * stride);
            float sum = 0.0f;
            for (int b = 0; b < in / HK_QK_K; b++) {
                int scaled = 0, mins = 0;
                for (int s = 0; s < 16; s++) {
                    int dot = 0;
                    for (int v = 16 * s; v < 16 * s + 16; v++) dot += two_bit_level(blocks[b].qs, v) * a[b].qs[v];
                    scaled += (blocks[b].scales[s] & 0x0F) * dot;
                    mins += (blocks[b].scales[s] >> 4) * a[b].bsums[s];
                }
                sum += (f16_to_f32(blocks[b].d) * a[b].d) * (float)scaled;
                sum -= (f16_to_f32(blocks[b].dmin) * a[b].d) * (float)mins;
            }
            y[(size_t)r * out + o] = sum;
        }
    }
}

static void range_q3_k_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in,
                              int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q3_K, in);
    for (int o = first_output; o < end_output; o++) {
        const hk_block_q3_k *blocks = (const hk_block_q3_k *)(w + (size_t)o * row_bytes);
        for (int r = 0; r < rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)r * stride);
            float sum = 0.0f;
            for (int b = 0; b < in / HK_QK_K; b++) {
                int8_t scales[16];
                hk_q3k_unpack_scales(blocks[b].scales, scales);
                int scaled = 0;
                for (int s = 0; s < 16; s++) {
                    int dot = 0;
                    for (int v = 16 * s; v < 16 * s + 16; v++) {
                        int level = two_bit_level(blocks[b].qs, v) | (((blocks[b].hmask[v % 32] >> (v / 32)) & 1) << 2);
                        dot += level * a[b].qs[v];
                    }
                    // Levels are stored + 4: subtract 4 * (the sub-block's activation sum).
                    scaled += scales[s] * (dot - 4 * a[b].bsums[s]);
                }
                sum += (f16_to_f32(blocks[b].d) * a[b].d) * (float)scaled;
            }
            y[(size_t)r * out + o] = sum;
        }
    }
}

static void range_q5_k_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in,
                              int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_Q5_K, in);
    for (int o = first_output; o < end_output; o++) {
        const hk_block_q5_k *blocks = (const hk_block_q5_k *)(w + (size_t)o * row_bytes);
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
                    for (int l = 0; l < 32; l++) {
                        int level = ((qs[l] >> shift) & 0x0F) | (((blocks[b].qh[l] >> s) & 1) << 4);
                        dot += level * a[b].qs[32 * s + l];
                    }
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

static void range_iq4_xs_scalar(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in,
                                int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_IQ4_XS, in);
    for (int o = first_output; o < end_output; o++) {
        const hk_block_iq4_xs *blocks = (const hk_block_iq4_xs *)(w + (size_t)o * row_bytes);
        for (int r = 0; r < rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)r * stride);
            float sum = 0.0f;
            for (int b = 0; b < in / HK_QK_K; b++) {
                int scaled = 0;
                for (int s = 0; s < 8; s++) {
                    const uint8_t *qs = blocks[b].qs + 16 * s;
                    const int8_t *q = a[b].qs + 32 * s;
                    int dot = 0;
                    for (int j = 0; j < 16; j++) {
                        dot += hk_iq4_xs_levels[qs[j] & 0x0F] * q[j] + hk_iq4_xs_levels[qs[j] >> 4] * q[j + 16];
                    }
                    scaled += hk_iq4_xs_scale(&blocks[b], s) * dot;
                }
                sum += (f16_to_f32(blocks[b].d) * a[b].d) * (float)scaled;
            }
            y[(size_t)r * out + o] = sum;
        }
    }
}

// MARK: - AVX2 (canonical Q8_K activations; vpmaddubsw + vpmaddwd)

/// Levels of values 32 k .. 32 k + 31 (k = 0..7) from a Q2_K/Q3_K qs: bits 2 (k % 4) of qs[32 (k / 4) + l].
HK_TARGET_AVX2 HK_INLINE __m256i two_bit_levels_avx2(const uint8_t *qs /* [64] */, int k) {
    __m256i packed = _mm256_loadu_si256((const __m256i *)(qs + 32 * (k / 4)));
    return _mm256_and_si256(_mm256_srli_epi16(packed, 2 * (k % 4)), _mm256_set1_epi8(3));
}

/// Sub-block scales as int16 words for the vector of values 32 k .. 32 k + 31 (sub-blocks 2 k, 2 k + 1 of 16):
/// one byte shuffle of the 16 unsigned scale bytes (repeated in both 128-bit lanes), zero-extended.
HK_TARGET_AVX2 HK_INLINE __m256i pair_scales_avx2(__m256i scale_bytes, int k) {
    const __m256i pick = _mm256_setr_m128i(_mm_set1_epi16((short)(0x8000 | (2 * k))), _mm_set1_epi16((short)(0x8000 | (2 * k + 1))));
    return _mm256_shuffle_epi8(scale_bytes, pick);
}

/// Q3_K's sixteen six-bit scales as stored (0..63, the scale + 32), unpacked with vector arithmetic: low
/// nibbles from bytes 0..7 (scales 0..7 low, 8..15 high), the top two bits of scale 4 j + i at bits 2 j of byte
/// 8 + i.
HK_TARGET_AVX2 HK_INLINE __m128i q3_k_stored_scales(const uint8_t *packed /* [12] */) {
    uint32_t top_bytes;
    memcpy(&top_bytes, packed + 8, sizeof top_bytes);
    __m128i low_bytes = _mm_loadl_epi64((const __m128i *)packed);
    __m128i nibbles = _mm_and_si128(_mm_unpacklo_epi64(low_bytes, _mm_srli_epi16(low_bytes, 4)), _mm_set1_epi8(0x0F));
    __m128i tops = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)top_bytes), _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
    return _mm_or_si128(nibbles, _mm_slli_epi16(tops, 4));
}

HK_TARGET_AVX2 HK_INLINE void q2_k_tile_avx2(const hk_block_q2_k *blocks, const uint8_t *pack, size_t stride, float *y,
                                             int in, int out, int o, int first_row, const int tile_rows) {
    __m256 acc[MAX_TILE_ROWS], mins_acc[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = mins_acc[r] = _mm256_setzero_ps();
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q2_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        __m128i packed_scales = _mm_loadu_si128((const __m128i *)block->scales);
        __m256i scale_bytes = _mm256_broadcastsi128_si256(_mm_and_si128(packed_scales, low_nibbles));
        __m256i min_words = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed_scales, 4), low_nibbles));
        __m256i sums[MAX_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) sums[r] = _mm256_setzero_si256();
        // Half a block at a time: four level and four scale vectors stay in registers (all eight of each did not
        // fit AVX2's sixteen and were spilled).
        for (int half = 0; half < 2; half++) {
            __m256i levels[4], scales[4];
            for (int k = 0; k < 4; k++) {
                levels[k] = two_bit_levels_avx2(block->qs, 4 * half + k);
                scales[k] = pair_scales_avx2(scale_bytes, 4 * half + k);
            }
            hk_q8_k_products_avx2(levels, scales, 4, 128 * half, pack, stride, first_row, b, tile_rows, sums);
        }
        float d = _cvtsh_ss(block->d), dmin = _cvtsh_ss(block->dmin);
        for (int r = 0; r < tile_rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride) + b;
            // Minimums times the sub-block sums, exact in int32 (each product |.| <= 15 * 2048).
            __m256i mins = _mm256_madd_epi16(min_words, _mm256_loadu_si256((const __m256i *)a->bsums));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r]), _mm256_set1_ps(d * a->d), acc[r]);
            mins_acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin * a->d), mins_acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        y[(size_t)(first_row + r) * out + o] = hk_sum_avx2(_mm256_sub_ps(acc[r], mins_acc[r]));
    }
}

HK_TARGET_AVX2 HK_INLINE void q3_k_tile_avx2(const hk_block_q3_k *blocks, const uint8_t *pack, size_t stride, float *y,
                                             int in, int out, int o, int first_row, const int tile_rows) {
    __m256 acc[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm256_setzero_ps();
    const __m256i four = _mm256_set1_epi8(4);
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q3_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        // The sixteen scales (stored - 32) as int16 words; half h's eight in both 128-bit lanes of half_words[h],
        // so that one byte shuffle gives a vector's two sub-block scales.
        __m256i scale_words = _mm256_cvtepi8_epi16(_mm_sub_epi8(q3_k_stored_scales(block->scales), _mm_set1_epi8(32)));
        const __m256i half_words[2] = {_mm256_permute2x128_si256(scale_words, scale_words, 0x00),
                                       _mm256_permute2x128_si256(scale_words, scale_words, 0x11)};
        __m256i high_bits = _mm256_loadu_si256((const __m256i *)block->hmask);
        __m256i sums[MAX_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) sums[r] = _mm256_setzero_si256();
        // Half a block at a time, as in Q2_K's kernel.
        for (int half = 0; half < 2; half++) {
            __m256i levels[4], scales[4];
            for (int k = 0; k < 4; k++) {
                // Third bit of values 32 j .. 32 j + 31: bit j of hmask[l], moved to bit 2 of its byte (the bits a
                // 16-bit shift carries across the byte boundary are masked off).
                int j = 4 * half + k;
                __m256i third = j < 2 ? _mm256_slli_epi16(high_bits, 2 - j)
                              : j == 2 ? high_bits : _mm256_srli_epi16(high_bits, j - 2);
                levels[k] = _mm256_or_si256(two_bit_levels_avx2(block->qs, j), _mm256_and_si256(third, four));
                // Words 2k and 2k + 1 of the half (sub-blocks 2j, 2j + 1) over the low and high lanes.
                const __m256i pick = _mm256_setr_m128i(_mm_set1_epi16((short)(0x0100 + 0x0202 * (2 * k))),
                                                       _mm_set1_epi16((short)(0x0100 + 0x0202 * (2 * k + 1))));
                scales[k] = _mm256_shuffle_epi8(half_words[half], pick);
            }
            hk_q8_k_products_avx2(levels, scales, 4, 128 * half, pack, stride, first_row, b, tile_rows, sums);
        }
        float d = _cvtsh_ss(block->d);
        for (int r = 0; r < tile_rows; r++) {
            const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride) + b;
            // Levels q - 4 are multiplied as q: 4 * (scale * sub-block sum) comes off, lane by lane.
            __m256i offset = _mm256_madd_epi16(scale_words, _mm256_loadu_si256((const __m256i *)a->bsums));
            __m256i corrected = _mm256_sub_epi32(sums[r], _mm256_slli_epi32(offset, 2));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(corrected), _mm256_set1_ps(d * a->d), acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = hk_sum_avx2(acc[r]);
}

HK_TARGET_AVX2 HK_INLINE void q5_k_tile_avx2(const hk_block_q5_k *blocks, const uint8_t *pack, size_t stride, float *y,
                                             int in, int out, int o, int first_row, const int tile_rows) {
    __m256 acc[MAX_TILE_ROWS], mins_acc[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = mins_acc[r] = _mm256_setzero_ps();
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q5_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        PREFETCH_AHEAD((const char *)block + 128);
        __m256i min_pairs;
        __m256i scale_bytes = hk_q4k_scale_bytes_avx2(block->scales, &min_pairs);
        __m256i high_bits = _mm256_loadu_si256((const __m256i *)block->qh);
        __m256i sums[MAX_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) sums[r] = _mm256_setzero_si256();
        // Two sub-blocks at a time, as Q4_K's AVX2 kernel (levels and scales of all eight were spilled).
        for (int c = 0; c < 4; c++) {
            __m256i packed = _mm256_loadu_si256((const __m256i *)(block->qs + 32 * c));
            __m256i low = _mm256_and_si256(packed, low_nibbles);
            __m256i high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
            // Fifth bit of sub-block s: bit s of qh[l].
            __m256i fifth_low = _mm256_and_si256(_mm256_srli_epi16(high_bits, 2 * c), one);
            __m256i fifth_high = _mm256_and_si256(_mm256_srli_epi16(high_bits, 2 * c + 1), one);
            low = _mm256_or_si256(low, _mm256_slli_epi16(fifth_low, 4));
            high = _mm256_or_si256(high, _mm256_slli_epi16(fifth_high, 4));
            hk_q4k_sub_block_pair_avx2(low, high, scale_bytes, c, pack, stride, first_row, b, tile_rows, sums);
        }
        hk_q4k_block_end_avx2(sums, min_pairs, _cvtsh_ss(block->d), _cvtsh_ss(block->dmin), pack, stride, first_row, b,
                              tile_rows, acc, mins_acc);
    }
    for (int r = 0; r < tile_rows; r++) {
        y[(size_t)(first_row + r) * out + o] = hk_sum_avx2(_mm256_sub_ps(acc[r], mins_acc[r]));
    }
}

// MARK: - AVX2: IQ4_XS eight outputs at a time
//
// IQ4_XS is IQ4_NL's codebook in super-blocks of 256 with a six-bit scale per 32 values, so it takes
// IQ4_NL's eight-output tile (quant_legacy.c): two outputs per register, one 16-byte load each, the
// activations of a 32-value sub-block broadcast to both halves and met with the sign trick. Here output p
// shares a register with output p + 4, so that the unpack-and-add reduction leaves the eight outputs in order.
// The sub-block scales are integers, so they weight the int16 pair sums in vpmaddwd (each pair's words carry
// output p's scale in the low half, p + 4's in the high half) and a super-block's sums stay exact int32
// until its one conversion and FMA. The eight outputs' scales come from one 8-byte header load each (d,
// scales_h, scales_l), unpacked for all eight at once. One output at a time (the former kernel) spent most of
// a sub-block on unpacking that output's levels and scale. One thread, Zen 3, alternated runs, G weights/s:
// [5632, 2048] from memory 21 -> 29-30, [2048, 2048] from L3 21 -> 31; 16 rows (batched decode) 26-33 -> 40.

HK_INLINE uint64_t load_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/// Outputs o..o + count - 1 (count 1..8) for activation rows first_row..first_row + tile_rows - 1 (up to 2).
HK_TARGET_AVX2 HK_INLINE void iq4_xs_octet_tile_avx2(const uint8_t *w, size_t row_bytes, const uint8_t *pack,
                                                     size_t stride, float *y, int in, int out, int o, int count,
                                                     int first_row, const int tile_rows, const int full) {
    size_t short_offsets[8];
    hk_octet_short_offsets(row_bytes, count, short_offsets);
    const uint8_t *first = w + (size_t)o * row_bytes;
#define TILE_ROW(k) HK_OCTET_ROW(first, full, row_bytes, short_offsets, k)
    __m256 acc[2];
    const hk_block_q8_k *row_blocks[2];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm256_setzero_ps();
        row_blocks[r] = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride);
    }
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    const __m256i codebook = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)hk_iq4_xs_levels));
    // Pair p's scale words: int32 lane p of each half (outputs p and p + 4) over the half.
#define PAIR_SCALES(scales, p)                                                                                 \
    ((p) == 0 ? _mm256_shuffle_epi32(scales, 0x00) : (p) == 1 ? _mm256_shuffle_epi32(scales, 0x55)            \
     : (p) == 2 ? _mm256_shuffle_epi32(scales, 0xAA) : _mm256_shuffle_epi32(scales, 0xFF))
    for (int b = 0; b < in / HK_QK_K; b++) {
        const size_t offset = (size_t)b * sizeof(hk_block_iq4_xs);
        // The next tile's bytes in address order, eight bytes of it per byte the rows advance (as IQ4_NL's tile):
        // 8 * 136 bytes a super-block, two or three lines a sub-block.
        const char *next = (const char *)first + 8 * row_bytes + 8 * offset;
        // Headers: d (f16), scales_h, scales_l of outputs 0..3 and 4..7, one 64-bit lane each, regrouped as
        // [d | scales_h] and [scales_l] of outputs 0..7 in int32 lanes.
        __m256i headers_low = _mm256_setr_epi64x((long long)load_u64(TILE_ROW(0) + offset), (long long)load_u64(TILE_ROW(1) + offset),
                                                 (long long)load_u64(TILE_ROW(2) + offset), (long long)load_u64(TILE_ROW(3) + offset));
        __m256i headers_high = _mm256_setr_epi64x((long long)load_u64(TILE_ROW(4) + offset), (long long)load_u64(TILE_ROW(5) + offset),
                                                  (long long)load_u64(TILE_ROW(6) + offset), (long long)load_u64(TILE_ROW(7) + offset));
        const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        headers_low = _mm256_permutevar8x32_epi32(headers_low, split);
        headers_high = _mm256_permutevar8x32_epi32(headers_high, split);
        __m256i d_and_scales_h = _mm256_permute2x128_si256(headers_low, headers_high, 0x20);
        __m256i scales_l = _mm256_permute2x128_si256(headers_low, headers_high, 0x31);
        __m256i halves = _mm256_permute4x64_epi64(
            _mm256_shuffle_epi8(d_and_scales_h, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                 0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1)),
            0x08);
        __m256 weight_scales = _mm256_cvtph_ps(_mm256_castsi256_si128(halves));
        __m256i pair_sums[2][4];
        for (int r = 0; r < tile_rows; r++) {
            for (int p = 0; p < 4; p++) pair_sums[r][p] = _mm256_setzero_si256();
        }
        for (int s = 0; s < 8; s++) {
            _mm_prefetch(next + 136 * s, _MM_HINT_T1);
            _mm_prefetch(next + 136 * s + 64, _MM_HINT_T1);
            if (s == 7) _mm_prefetch(next + 136 * s + 128, _MM_HINT_T1);
            // Sub-block s's scales of outputs 0..7: low nibble from scales_l, top two bits from scales_h, in both
            // words of each int32 lane (so that one vpshufd gives a pair's scale words), 32 off word by word.
            __m256i scales = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi32(scales_l, 4 * s), _mm256_set1_epi32(0x0F)),
                _mm256_and_si256(_mm256_srli_epi32(d_and_scales_h, 12 + 2 * s), _mm256_set1_epi32(0x30)));
            scales = _mm256_sub_epi16(_mm256_or_si256(scales, _mm256_slli_epi32(scales, 16)), _mm256_set1_epi16(32));
            __m256i first_half[2], second_half[2];
            for (int r = 0; r < tile_rows; r++) {
                const int8_t *q = row_blocks[r][b].qs + 32 * s;
                first_half[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q));
                second_half[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(q + 16)));
            }
            for (int p = 0; p < 4; p++) {
                __m256i pair_scales = PAIR_SCALES(scales, p);
                __m256i packed = hk_nibble_pair_avx2(TILE_ROW(p) + offset + 8 + 16 * s, TILE_ROW(p + 4) + offset + 8 + 16 * s);
                __m256i low = _mm256_shuffle_epi8(codebook, _mm256_and_si256(packed, low_nibbles));
                __m256i high = _mm256_shuffle_epi8(codebook, _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles));
                for (int r = 0; r < tile_rows; r++) {
                    // |a| times the level with a's sign: pairs below 2^15 each; times the scale (|.| <= 32),
                    // over a super-block, below 2^26 per lane.
                    __m256i low_products = _mm256_maddubs_epi16(_mm256_sign_epi8(first_half[r], first_half[r]),
                                                                _mm256_sign_epi8(low, first_half[r]));
                    __m256i high_products = _mm256_maddubs_epi16(_mm256_sign_epi8(second_half[r], second_half[r]),
                                                                 _mm256_sign_epi8(high, second_half[r]));
                    pair_sums[r][p] = _mm256_add_epi32(pair_sums[r][p], _mm256_madd_epi16(low_products, pair_scales));
                    pair_sums[r][p] = _mm256_add_epi32(pair_sums[r][p], _mm256_madd_epi16(high_products, pair_scales));
                }
            }
        }
        for (int r = 0; r < tile_rows; r++) {
            // Per 128-bit lane [0 + 2, 1 + 3] of pairs (0, 1), then of (2, 3), then one lane per pair: outputs
            // 0..3 in the low half, 4..7 in the high half.
            __m256i *sums = pair_sums[r];
            __m256i first_two = _mm256_add_epi32(_mm256_unpacklo_epi32(sums[0], sums[1]), _mm256_unpackhi_epi32(sums[0], sums[1]));
            __m256i last_two = _mm256_add_epi32(_mm256_unpacklo_epi32(sums[2], sums[3]), _mm256_unpackhi_epi32(sums[2], sums[3]));
            __m256i dots = _mm256_add_epi32(_mm256_unpacklo_epi64(first_two, last_two), _mm256_unpackhi_epi64(first_two, last_two));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(weight_scales, _mm256_set1_ps(row_blocks[r][b].d)), acc[r]);
        }
    }
#undef TILE_ROW
#undef PAIR_SCALES
    for (int r = 0; r < tile_rows; r++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc[r]);
        for (int k = 0; k < count; k++) y[(size_t)(first_row + r) * out + o + k] = lanes[k];
    }
}

/// Outputs in tiles of eight, as FOR_EACH_OUTPUT_TILE walks them.
HK_TARGET_AVX2 static void range_iq4_xs_avx2(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows,
                                             int in, int out, int first_output, int end_output) {
    size_t row_bytes = hk_quant_row_bytes(HK_TYPE_IQ4_XS, in);
#define IQ4_XS_TILE()                                                                                          \
    do {                                                                                                       \
        if (count < 8) iq4_xs_octet_tile_avx2(w, row_bytes, pack, stride, y, in, out, o, count, first_row, tile_rows, 0); \
        else if (tile_rows == 1) iq4_xs_octet_tile_avx2(w, row_bytes, pack, stride, y, in, out, o, 8, first_row, 1, 1); \
        else iq4_xs_octet_tile_avx2(w, row_bytes, pack, stride, y, in, out, o, 8, first_row, 2, 1);            \
    } while (0)
    FOR_EACH_OUTPUT_TILE(rows, row_bytes, 8, IQ4_XS_TILE);
#undef IQ4_XS_TILE
}

/// A range function (outputs [first_output, end_output) for every row) over the tile function TILE_<tile>.
#define DEFINE_RANGE(name, type_id, tile)                                                                      \
    static void name(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in, int out,   \
                     int first_output, int end_output) {                                                       \
        size_t row_bytes = hk_quant_row_bytes(type_id, in);                                                     \
        FOR_EACH_TILE(rows, row_bytes, TILE_##tile);                                                            \
    }

#define TILE_q2_k_avx2(n) q2_k_tile_avx2((const hk_block_q2_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
#define TILE_q3_k_avx2(n) q3_k_tile_avx2((const hk_block_q3_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
#define TILE_q5_k_avx2(n) q5_k_tile_avx2((const hk_block_q5_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)

HK_TARGET_AVX2 DEFINE_RANGE(range_q2_k_avx2, HK_TYPE_Q2_K, q2_k_avx2)
HK_TARGET_AVX2 DEFINE_RANGE(range_q3_k_avx2, HK_TYPE_Q3_K, q3_k_avx2)
HK_TARGET_AVX2 DEFINE_RANGE(range_q5_k_avx2, HK_TYPE_Q5_K, q5_k_avx2)

// MARK: - VNNI + GFNI: shift-order packs (Q2_K, Q3_K)
//
// One 64-byte load takes a block's whole qs; its two-bit field k (bits 2k, 2k + 1 of every byte) holds values
// 32 k + l (bytes l < 32) and 128 + 32 k + l (bytes 32 + l), so the activation pack stores each super-block
// in that "shift order": vector k = x[32 k ..< 32 k + 32] then x[128 + 32 k ..< 128 + 32 k + 32]. A field is
// moved to bits 0-1 with one vgf2p8affineqb (a per-byte bit matrix) instead of a shift and a mask, and
// Q3_K's third bit is moved from hmask to bit 2 the same way (the matrix differs between the vector's two
// halves, which read different hmask bits). Per super-block and row the pack holds:
// - Q2_K: the 256 activations, then the 16 sub-block sums bsums (int16, natural order), then d (320 bytes);
// - Q3_K: the 256 activations, then per level vector and int32 lane -4 * (the sum of the four activations the
//   lane meets) as int32 [4][16], then d (576 bytes). Q3_K's levels q - 4 are multiplied as q, and these start
//   each lane's dot product, so the offset costs no work per row (it took a vpmaddwd and two adds per row and
//   super-block from the sub-block sums: kernel alone 17.4 -> 18.0 GB/s, one thread, Zen 4).

#define Q3_K_BLOCK_PACK 576
#define Q2_K_BLOCK_PACK 320

/// VNNI plus GFNI (vgf2p8affineqb).
#define HK_TARGET_VNNI_GFNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,gfni")))

static size_t stride_q3_k_vnni(int in) { return (size_t)(in / HK_QK_K) * Q3_K_BLOCK_PACK; }
static size_t stride_q2_k_vnni(int in) { return (size_t)(in / HK_QK_K) * Q2_K_BLOCK_PACK; }

/// Copies a Q8_K block's 256 activations into shift order (see above).
HK_INLINE void store_shift_order(const int8_t *qs /* [256] */, uint8_t *p /* [256] */) {
    for (int k = 0; k < 4; k++) {
        memcpy(p + 64 * k, qs + 32 * k, 32);
        memcpy(p + 64 * k + 32, qs + 128 + 32 * k, 32);
    }
}

HK_TARGET_VNNI_GFNI static void pack_q3_k_vnni(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    int blocks_in_row = in / HK_QK_K;
    hk_block_q8_k *blocks = hk_quant_scratch(2, (size_t)blocks_in_row * sizeof(hk_block_q8_k));
    for (int r = 0; r < rows; r++) {
        hk_quantize_row_q8_k(x + (size_t)r * in, blocks, in);
        for (int b = 0; b < blocks_in_row; b++) {
            uint8_t *p = pack + (size_t)r * stride + (size_t)b * Q3_K_BLOCK_PACK;
            store_shift_order(blocks[b].qs, p);
            // Per vector k and int32 lane: -4 * (sum of the 4 activations that lane meets), |.| <= 2048.
            for (int k = 0; k < 4; k++) {
                __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), _mm512_loadu_si512(p + 64 * k));
                _mm512_storeu_si512(p + 256 + 64 * k, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, 2)));
            }
            ((float *)(p + 512))[0] = blocks[b].d;
        }
    }
}

HK_TARGET_VNNI_GFNI static void pack_q2_k_vnni(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    int blocks_in_row = in / HK_QK_K;
    hk_block_q8_k *blocks = hk_quant_scratch(2, (size_t)blocks_in_row * sizeof(hk_block_q8_k));
    for (int r = 0; r < rows; r++) {
        hk_quantize_row_q8_k(x + (size_t)r * in, blocks, in);
        for (int b = 0; b < blocks_in_row; b++) {
            uint8_t *p = pack + (size_t)r * stride + (size_t)b * Q2_K_BLOCK_PACK;
            store_shift_order(blocks[b].qs, p);
            memcpy(p + 256, blocks[b].bsums, 32);
            ((float *)(p + 288))[0] = blocks[b].d;
        }
    }
}

/// The vgf2p8affineqb matrix that moves source bits first, first + 1 of every byte to bits 0, 1 (the others
/// cleared): byte 7 - i of the matrix selects the source bits of result bit i.
#define GF_FIELD(first) (((uint64_t)1 << ((first) + 56)) | ((uint64_t)1 << ((first) + 1 + 48)))
/// ... and the one that moves source bit `bit` to bit 2.
#define GF_TO_BIT2(bit) ((uint64_t)1 << ((bit) + 40))

/// The four level vectors (two-bit fields 0..3, value order of the pack) of a Q2_K/Q3_K qs.
HK_TARGET_VNNI_GFNI HK_INLINE void two_bit_fields(const uint8_t *qs /* [64] */, __m512i levels[4]) {
    __m512i packed = _mm512_loadu_si512(qs);
    levels[0] = _mm512_and_si512(packed, _mm512_set1_epi8(3));
    levels[1] = _mm512_gf2p8affine_epi64_epi8(packed, _mm512_set1_epi64((long long)GF_FIELD(2)), 0);
    levels[2] = _mm512_gf2p8affine_epi64_epi8(packed, _mm512_set1_epi64((long long)GF_FIELD(4)), 0);
    levels[3] = _mm512_gf2p8affine_epi64_epi8(packed, _mm512_set1_epi64((long long)GF_FIELD(6)), 0);
}

/// Word indices for vpshufb over the 16 scale bytes (repeated in every 128-bit lane) that match
/// _mm512_packs_epi32(dots[2j], dots[2j + 1]): in 128-bit lane L, words 0..3 come from vector 2j's quarter L and
/// words 4..7 from vector 2j + 1's; each word gets that quarter's sub-block scale, zero-extended.
HK_TARGET_VNNI_GFNI HK_INLINE __m512i scale_pair_pick(int j) {
    uint8_t bytes[64];
    for (int lane = 0; lane < 4; lane++) {
        for (int word = 0; word < 8; word++) {
            int k = 2 * j + word / 4;
            int sub_block = (lane >= 2 ? 8 : 0) + 2 * k + lane % 2;
            bytes[16 * lane + 2 * word] = (uint8_t)sub_block;
            bytes[16 * lane + 2 * word + 1] = 0x80;
        }
    }
    return _mm512_loadu_si512(bytes);
}

HK_TARGET_VNNI_GFNI HK_INLINE void q3_k_tile_vnni(const hk_block_q3_k *blocks, const uint8_t *pack, size_t stride,
                                                  float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m512 acc[MAX_TILE_ROWS];
    const uint8_t *blocks_pack[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        blocks_pack[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m512i pick_pairs[2] = {scale_pair_pick(0), scale_pair_pick(1)};
    const __m512i thirty_two = _mm512_set1_epi16(32);
    // Third bit of vector k: bit k of hmask[l] in the lower half, bit 4 + k in the upper half.
    __m512i third_bit[4];
    for (int k = 0; k < 4; k++) {
        third_bit[k] = _mm512_inserti64x4(_mm512_set1_epi64((long long)GF_TO_BIT2(k)),
                                          _mm256_set1_epi64x((long long)GF_TO_BIT2(4 + k)), 1);
    }
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q3_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        __m128i stored_scales = q3_k_stored_scales(block->scales); // 0..63, the scale + 32
        __m512i scale_bytes = _mm512_broadcast_i32x4(stored_scales);
        __m512i scales[2], levels[4];
        for (int k = 0; k < 2; k++) scales[k] = _mm512_sub_epi16(_mm512_shuffle_epi8(scale_bytes, pick_pairs[k]), thirty_two);
        two_bit_fields(block->qs, levels);
        __m512i high_bits = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)block->hmask));
        for (int k = 0; k < 4; k++) {
            levels[k] = _mm512_or_si512(levels[k], _mm512_gf2p8affine_epi64_epi8(high_bits, third_bit[k], 0));
        }
        float d = _cvtsh_ss(block->d);
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = blocks_pack[r] + (size_t)b * Q3_K_BLOCK_PACK;
            __m512i dots[4];
            // Lanes sum 4 (level - 4) * q (the offset starts the sum): |.| <= 2048.
            for (int k = 0; k < 4; k++) {
                dots[k] = _mm512_dpbusd_epi32(_mm512_loadu_si512(p + 256 + 64 * k), levels[k], _mm512_loadu_si512(p + 64 * k));
            }
            __m512i sum = hk_scaled_pair_sum_vnni(dots, scales);
            float activation_scale = ((const float *)(p + 512))[0];
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * activation_scale), acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(acc[r]);
}

HK_TARGET_VNNI_GFNI HK_INLINE void q2_k_tile_vnni(const hk_block_q2_k *blocks, const uint8_t *pack, size_t stride,
                                                  float *y, int in, int out, int o, int first_row, const int tile_rows) {
    __m512 acc[MAX_TILE_ROWS];
    __m256 min_acc[MAX_TILE_ROWS];
    const uint8_t *blocks_pack[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        min_acc[r] = _mm256_setzero_ps();
        blocks_pack[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m512i pick_pairs[2] = {scale_pair_pick(0), scale_pair_pick(1)};
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q2_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        __m128i packed_scales = _mm_loadu_si128((const __m128i *)block->scales);
        __m512i scale_bytes = _mm512_broadcast_i32x4(_mm_and_si128(packed_scales, low_nibbles));
        __m256i min_words = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed_scales, 4), low_nibbles));
        __m512i scales[2], levels[4];
        two_bit_fields(block->qs, levels);
        for (int k = 0; k < 2; k++) scales[k] = _mm512_shuffle_epi8(scale_bytes, pick_pairs[k]);
        uint32_t both_halves;
        memcpy(&both_halves, &block->d, sizeof both_halves); // d, dmin
        __m128 d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128((int)both_halves));
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = blocks_pack[r] + (size_t)b * Q2_K_BLOCK_PACK;
            __m512i dots[4];
            for (int k = 0; k < 4; k++) dots[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), levels[k], _mm512_loadu_si512(p + 64 * k));
            // Mins: sum over sub-blocks of min * (activation sum), exact in int32 (|.| <= 16 * 15 * 2032).
            __m256i min_dot = _mm256_madd_epi16(min_words, _mm256_loadu_si256((const __m256i *)(p + 256)));
            __m128 factors = _mm_mul_ps(d_dmin, _mm_set1_ps(((const float *)(p + 288))[0]));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hk_scaled_pair_sum_vnni(dots, scales)), _mm512_broadcastss_ps(factors), acc[r]);
            min_acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(min_dot), _mm256_broadcastss_ps(_mm_movehdup_ps(factors)), min_acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        __m512 both = _mm512_sub_ps(acc[r], _mm512_zextps256_ps512(min_acc[r]));
        y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(both);
    }
}

// MARK: - VNNI: Q5_K (Q4_K's pack and scale handling, plus the fifth bit)

HK_TARGET_VNNI HK_INLINE void q5_k_tile_vnni(const hk_block_q5_k *blocks, const uint8_t *pack, size_t stride, float *y,
                                             int in, int out, int o, int first_row, const int tile_rows) {
    __m512 acc[MAX_TILE_ROWS];
    __m256 min_acc[MAX_TILE_ROWS];  // eight sub-blocks: half a vector, half the work of a full one
    const uint8_t *blocks_pack[MAX_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) {
        acc[r] = _mm512_setzero_ps();
        min_acc[r] = _mm256_setzero_ps();
        blocks_pack[r] = pack + (size_t)(first_row + r) * stride;
    }
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    // As Q4_K: min k of the 16 unpacked scale and minimum bytes in int32 lane k.
#define LANE_BYTE(b) ((b) | (int)0x80808000)
    const __m256i pick_mins = _mm256_setr_epi32(LANE_BYTE(8), LANE_BYTE(9), LANE_BYTE(10), LANE_BYTE(11),
                                                LANE_BYTE(12), LANE_BYTE(13), LANE_BYTE(14), LANE_BYTE(15));
#undef LANE_BYTE
    // The fifth bit of sub-block s is bit s of qh[l]; level vector v holds sub-blocks fifth_bit[v]. Rotating
    // each 32-bit word of qh left by 4 - s (mod 32) puts bit s of every byte at bit 4 of the same byte.
    static const int fifth_bit[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
    __m512i rotation[4];
    for (int v = 0; v < 4; v++) {
        rotation[v] = _mm512_inserti64x4(_mm512_set1_epi32((4 - fifth_bit[v][0]) & 31),
                                         _mm256_set1_epi32((4 - fifth_bit[v][1]) & 31), 1);
    }
    const __m512i bit_four = _mm512_set1_epi8(0x10);
    for (int b = 0; b < in / HK_QK_K; b++) {
        const hk_block_q5_k *block = &blocks[b];
        PREFETCH_AHEAD(block);
        PREFETCH_AHEAD((const char *)block + 64);
        PREFETCH_AHEAD((const char *)block + 128);
        uint32_t words[3];
        memcpy(words, block->scales, sizeof words);
        uint64_t scales = (words[0] & 0x3F3F3F3Fu) |
                          (uint64_t)((words[2] & 0x0F0F0F0Fu) | (((words[0] >> 6) & 0x03030303u) << 4)) << 32;
        uint64_t mins = (words[1] & 0x3F3F3F3Fu) |
                        (uint64_t)(((words[2] >> 4) & 0x0F0F0F0Fu) | (((words[1] >> 6) & 0x03030303u) << 4)) << 32;
        __m512i factors = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)mins, (long long)scales));
        uint32_t both_halves;
        memcpy(&both_halves, &block->d, sizeof both_halves); // d, dmin
        __m128 d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128((int)both_halves));
        float d = _mm_cvtss_f32(d_dmin);
        __m256 mins_scaled = _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_shuffle_epi8(_mm512_castsi512_si256(factors), pick_mins)),
            _mm256_broadcastss_ps(_mm_movehdup_ps(d_dmin)));
        __m512i first = _mm512_loadu_si512(block->qs), second = _mm512_loadu_si512(block->qs + 64);
        __m512i high_bits = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)block->qh));
        __m512i levels[4] = {
            _mm512_and_si512(first, low_nibbles), _mm512_and_si512(_mm512_srli_epi16(first, 4), low_nibbles),
            _mm512_and_si512(second, low_nibbles), _mm512_and_si512(_mm512_srli_epi16(second, 4), low_nibbles),
        };
        for (int v = 0; v < 4; v++) {
            // levels | (rotated & 0x10)
            levels[v] = _mm512_ternarylogic_epi32(levels[v], _mm512_rolv_epi32(high_bits, rotation[v]), bit_four, 0xF8);
        }
        __m512i scale_words[2] = {hk_q4k_scale_words_vnni(factors, 0, 1, 2, 3),
                                  hk_q4k_scale_words_vnni(factors, 4, 5, 6, 7)};
        for (int r = 0; r < tile_rows; r++) {
            const uint8_t *p = blocks_pack[r] + (size_t)b * Q4_K_BLOCK_PACK;
            __m512i zero = _mm512_setzero_si512(), dots[4];
            // Levels <= 31 times |q| <= 127, four per lane: below 2^15, as hk_scaled_pair_sum_vnni needs.
            for (int v = 0; v < 4; v++) dots[v] = _mm512_dpbusd_epi32(zero, levels[v], _mm512_loadu_si512(p + 64 * v));
            float activation_scale = ((const float *)(p + 320))[0];
            __m512i sum = hk_scaled_pair_sum_vnni(dots, scale_words);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * activation_scale), acc[r]);
            min_acc[r] = _mm256_fmadd_ps(mins_scaled, _mm256_loadu_ps((const float *)(p + 256)), min_acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        y[(size_t)(first_row + r) * out + o] =
            _mm512_reduce_add_ps(_mm512_sub_ps(acc[r], _mm512_zextps256_ps512(min_acc[r])));
    }
}

// MARK: - VNNI: IQ4_XS
//
// The 128 nibble bytes are two vectors of four sub-blocks (16 bytes each): low nibbles are values 0..15 of
// each, high nibbles values 16..31. Pack per row and super-block (448 bytes): the activations in that order
// (for each vector: [sub-block][0..15], then [sub-block][16..31]: 4 x 64 bytes), per vector and int32 lane
// -128 * (sum of the 8 activations that lane meets) [2][16] int32, then d.

#define IQ4_XS_BLOCK_PACK 448

static size_t stride_iq4_xs_vnni(int in) { return (size_t)(in / HK_QK_K) * IQ4_XS_BLOCK_PACK; }

HK_TARGET_VNNI static void pack_iq4_xs_vnni(const float *x, int rows, int in, uint8_t *pack, size_t stride) {
    int blocks_in_row = in / HK_QK_K;
    hk_block_q8_k *blocks = hk_quant_scratch(2, (size_t)blocks_in_row * sizeof(hk_block_q8_k));
    for (int r = 0; r < rows; r++) {
        hk_quantize_row_q8_k(x + (size_t)r * in, blocks, in);
        for (int b = 0; b < blocks_in_row; b++) {
            uint8_t *p = pack + (size_t)r * stride + (size_t)b * IQ4_XS_BLOCK_PACK;
            for (int c = 0; c < 2; c++) {
                uint8_t *vector_pack = p + 128 * c;
                for (int k = 0; k < 4; k++) {
                    memcpy(vector_pack + 16 * k, blocks[b].qs + 32 * (4 * c + k), 16);
                    memcpy(vector_pack + 64 + 16 * k, blocks[b].qs + 32 * (4 * c + k) + 16, 16);
                }
                __m512i ones = _mm512_set1_epi8(1);
                __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_loadu_si512(vector_pack));
                sums = _mm512_dpbusd_epi32(sums, ones, _mm512_loadu_si512(vector_pack + 64));
                _mm512_storeu_si512(p + 256 + 64 * c, _mm512_mullo_epi32(sums, _mm512_set1_epi32(-128)));
            }
            ((float *)(p + 384))[0] = blocks[b].d;
        }
    }
}

/// The body of the IQ4_XS tile functions: LEVELS(packed, shifted) gives the codebook levels + 128 of the low nibbles
/// of `packed` and of `shifted` (the same bytes moved down four bits) as a pair of vectors; `table` holds the
/// levels + 128 in every 128-bit lane. A macro because the two routes need different target attributes.
#define IQ4_XS_TILE_BODY(LEVELS)                                                                               \
    do {                                                                                                       \
        __m512 acc[MAX_TILE_ROWS];                                                                             \
        const uint8_t *blocks_pack[MAX_TILE_ROWS];                                                             \
        for (int r = 0; r < tile_rows; r++) {                                                                  \
            acc[r] = _mm512_setzero_ps();                                                                      \
            blocks_pack[r] = pack + (size_t)(first_row + r) * stride;                                          \
        }                                                                                                      \
        const __m512i table = _mm512_broadcast_i32x4(hk_iq4_biased_levels());                                  \
        /* Scale bytes 0..3 (vector 0) and 4..7 (vector 1), four lanes each. */                                \
        const __m128i spread[2] = {_mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),             \
                                   _mm_setr_epi8(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7)};             \
        for (int b = 0; b < in / HK_QK_K; b++) {                                                               \
            const hk_block_iq4_xs *block = &blocks[b];                                                         \
            PREFETCH_AHEAD(block);                                                                             \
            PREFETCH_AHEAD((const char *)block + 64);                                                          \
            PREFETCH_AHEAD((const char *)block + 128);                                                         \
            /* The eight six-bit scales as bytes: low nibbles from scales_l, top two bits from scales_h. */     \
            uint32_t low;                                                                                      \
            memcpy(&low, block->scales_l, sizeof low);                                                         \
            uint64_t scale_bytes = _pdep_u64(low, 0x0F0F0F0F0F0F0F0Full) |                                     \
                                   _pdep_u64(block->scales_h, 0x3030303030303030ull);                          \
            __m128i signed_scales = _mm_sub_epi8(_mm_cvtsi64_si128((long long)scale_bytes), _mm_set1_epi8(32)); \
            float d = _cvtsh_ss(block->d);                                                                     \
            __m512 scales[2];                                                                                  \
            __m512i levels[4];                                                                                 \
            for (int c = 0; c < 2; c++) {                                                                      \
                __m512 lane_scales =                                                                           \
                    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(signed_scales, spread[c])));      \
                scales[c] = _mm512_mul_ps(lane_scales, _mm512_set1_ps(d));                                     \
                __m512i packed = _mm512_loadu_si512(block->qs + 64 * c);                                       \
                LEVELS(packed, _mm512_srli_epi16(packed, 4), &levels[2 * c], &levels[2 * c + 1]);              \
            }                                                                                                  \
            for (int r = 0; r < tile_rows; r++) {                                                              \
                const uint8_t *p = blocks_pack[r] + (size_t)b * IQ4_XS_BLOCK_PACK;                             \
                __m512 activation_scale = _mm512_set1_ps(((const float *)(p + 384))[0]);                       \
                for (int c = 0; c < 2; c++) {                                                                  \
                    /* Lanes: sum of 8 (level + 128) * q - 128 * q, exact; |.| <= 8 * 127 * 127, too wide for  \
                       vpdpwssd. */                                                                            \
                    __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(p + 256 + 64 * c), levels[2 * c],     \
                                                      _mm512_loadu_si512(p + 128 * c));                        \
                    dot = _mm512_dpbusd_epi32(dot, levels[2 * c + 1], _mm512_loadu_si512(p + 128 * c + 64));   \
                    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scales[c], activation_scale), \
                                             acc[r]);                                                          \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
        for (int r = 0; r < tile_rows; r++) y[(size_t)(first_row + r) * out + o] = _mm512_reduce_add_ps(acc[r]); \
    } while (0)

/// Byte shuffles look the nibbles up 16 bytes at a time, so each index is masked to four bits first.
#define IQ4_XS_SHUFFLE_LEVELS(packed, shifted, low_levels, high_levels)                                        \
    do {                                                                                                       \
        *(low_levels) = _mm512_shuffle_epi8(table, _mm512_and_si512(packed, _mm512_set1_epi8(0x0F)));          \
        *(high_levels) = _mm512_shuffle_epi8(table, _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F)));        \
    } while (0)

/// vpermb reads six index bits: `table` repeats the codebook in all four lanes, so the two bits above a nibble
/// pick identical copies and neither index needs a mask (two fewer operations a vector; IQ4_XS kernel alone
/// 25.6 -> 26.6 GB/s, one thread, Zen 4).
#define IQ4_XS_PERMUTE_LEVELS(packed, shifted, low_levels, high_levels)                                        \
    do {                                                                                                       \
        *(low_levels) = _mm512_permutexvar_epi8(packed, table);                                                \
        *(high_levels) = _mm512_permutexvar_epi8(shifted, table);                                              \
    } while (0)

HK_TARGET_VNNI_BMI2 HK_INLINE void iq4_xs_tile_vnni(const hk_block_iq4_xs *blocks, const uint8_t *pack, size_t stride,
                                                    float *y, int in, int out, int o, int first_row,
                                                    const int tile_rows) {
    IQ4_XS_TILE_BODY(IQ4_XS_SHUFFLE_LEVELS);
}

/// The same where the CPU has VBMI (hk_cpu_has_byte_permutes).
HK_TARGET_VNNI_VBMI HK_INLINE void iq4_xs_tile_vbmi(const hk_block_iq4_xs *blocks, const uint8_t *pack, size_t stride,
                                                    float *y, int in, int out, int o, int first_row,
                                                    const int tile_rows) {
    IQ4_XS_TILE_BODY(IQ4_XS_PERMUTE_LEVELS);
}

#undef IQ4_XS_TILE_BODY
#undef IQ4_XS_SHUFFLE_LEVELS
#undef IQ4_XS_PERMUTE_LEVELS

#define TILE_q2_k_vnni(n) q2_k_tile_vnni((const hk_block_q2_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
#define TILE_q3_k_vnni(n) q3_k_tile_vnni((const hk_block_q3_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
#define TILE_q5_k_vnni(n) q5_k_tile_vnni((const hk_block_q5_k *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
#define TILE_iq4_xs_vnni(n) iq4_xs_tile_vnni((const hk_block_iq4_xs *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)
#define TILE_iq4_xs_vbmi(n) iq4_xs_tile_vbmi((const hk_block_iq4_xs *)(w + (size_t)o * row_bytes), pack, stride, y, in, out, o, first_row, n)

HK_TARGET_VNNI_GFNI DEFINE_RANGE(range_q2_k_vnni, HK_TYPE_Q2_K, q2_k_vnni)
HK_TARGET_VNNI_GFNI DEFINE_RANGE(range_q3_k_vnni, HK_TYPE_Q3_K, q3_k_vnni)
HK_TARGET_VNNI DEFINE_RANGE(range_q5_k_vnni, HK_TYPE_Q5_K, q5_k_vnni)
HK_TARGET_VNNI_BMI2 DEFINE_RANGE(range_iq4_xs_vnni, HK_TYPE_IQ4_XS, iq4_xs_vnni)
HK_TARGET_VNNI_VBMI DEFINE_RANGE(range_iq4_xs_vbmi, HK_TYPE_IQ4_XS, iq4_xs_vbmi)

// MARK: - Int8 GEMM repacking (quant_gemm.c)

HK_TARGET_AVX2 void hk_decode_levels_k_more(int type, const uint8_t *row, int in, uint8_t *levels /* [in] */, float *scales,
                             float *mins, size_t group_stride) {
    for (int b = 0; b < in / HK_QK_K; b++) {
        uint8_t *out = levels + HK_QK_K * b;
        switch (type) {
        case HK_TYPE_Q2_K: {
            const hk_block_q2_k *block = (const hk_block_q2_k *)row + b;
            float d = f16_to_f32(block->d), dmin = f16_to_f32(block->dmin);
            for (int s = 0; s < 16; s++) {
                scales[(size_t)(16 * b + s) * group_stride] = d * (float)(block->scales[s] & 0x0F);
                mins[(size_t)(16 * b + s) * group_stride] = dmin * (float)(block->scales[s] >> 4);
            }
            for (int k = 0; k < 8; k++) _mm256_storeu_si256((__m256i *)(out + 32 * k), two_bit_levels_avx2(block->qs, k));
            break;
        }
        case HK_TYPE_Q3_K: {
            const hk_block_q3_k *block = (const hk_block_q3_k *)row + b;
            int8_t unpacked[16];
            hk_q3k_unpack_scales(block->scales, unpacked);
            float d = f16_to_f32(block->d);
            for (int s = 0; s < 16; s++) {
                scales[(size_t)(16 * b + s) * group_stride] = d * (float)unpacked[s];
                mins[(size_t)(16 * b + s) * group_stride] = 0.0f; // the offset 4 is taken out of the integer sums
            }
            __m256i high_bits = _mm256_loadu_si256((const __m256i *)block->hmask);
            for (int k = 0; k < 8; k++) {
                __m256i third = _mm256_and_si256(_mm256_srli_epi16(high_bits, k), _mm256_set1_epi8(1));
                __m256i level = _mm256_or_si256(two_bit_levels_avx2(block->qs, k), _mm256_slli_epi16(third, 2));
                _mm256_storeu_si256((__m256i *)(out + 32 * k), level);
            }
            break;
        }
        case HK_TYPE_Q5_K: {
            const hk_block_q5_k *block = (const hk_block_q5_k *)row + b;
            uint8_t unpacked[16];
            hk_q4k_unpack_scales(block->scales, unpacked);
            float d = f16_to_f32(block->d), dmin = f16_to_f32(block->dmin);
            for (int s = 0; s < 8; s++) {
                scales[(size_t)(8 * b + s) * group_stride] = d * (float)unpacked[s];
                mins[(size_t)(8 * b + s) * group_stride] = dmin * (float)unpacked[8 + s];
            }
            const __m256i low_nibbles = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
            __m256i high_bits = _mm256_loadu_si256((const __m256i *)block->qh);
            for (int s = 0; s < 8; s++) {
                __m256i packed = _mm256_loadu_si256((const __m256i *)(block->qs + 32 * (s / 2)));
                __m256i nibbles = _mm256_and_si256(_mm256_srli_epi16(packed, 4 * (s % 2)), low_nibbles);
                __m256i fifth = _mm256_and_si256(_mm256_srli_epi16(high_bits, s), one);
                _mm256_storeu_si256((__m256i *)(out + 32 * s), _mm256_or_si256(nibbles, _mm256_slli_epi16(fifth, 4)));
            }
            break;
        }
        default: { // IQ4_XS: levels + 128
            const hk_block_iq4_xs *block = (const hk_block_iq4_xs *)row + b;
            float d = f16_to_f32(block->d);
            const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
            const __m256i table = _mm256_broadcastsi128_si256(hk_iq4_biased_levels());
            for (int s = 0; s < 8; s++) {
                scales[(size_t)(8 * b + s) * group_stride] = d * (float)hk_iq4_xs_scale(block, s);
                mins[(size_t)(8 * b + s) * group_stride] = 0.0f; // the offset 128 is taken out of the integer sums
                __m128i packed = _mm_loadu_si128((const __m128i *)(block->qs + 16 * s));
                __m256i nibbles = _mm256_and_si256(
                    _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1), low_nibbles);
                _mm256_storeu_si256((__m256i *)(out + 32 * s), _mm256_shuffle_epi8(table, nibbles));
            }
            break;
        }
        }
    }
}

// MARK: - Dispatch

int hk_select_k_more_kernel(int type, int isa, kernel *k) {
    // Q2_K and Q3_K's AVX-512 kernels also need GFNI (Ice Lake, Zen 4 and later); VNNI CPUs without it
    // (Cascade Lake) take the AVX2 kernels for these two formats.
    if ((type == HK_TYPE_Q2_K || type == HK_TYPE_Q3_K) && isa == HK_ISA_AVX512 && !hk_cpu_has_gfni()) isa = HK_ISA_AVX2;
    switch (type) {
    case HK_TYPE_Q2_K:
        if (isa == HK_ISA_AVX512) *k = (kernel){pack_q2_k_vnni, stride_q2_k_vnni, range_q2_k_vnni};
        else if (isa == HK_ISA_AVX2) *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q2_k_avx2};
        else *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q2_k_scalar};
        return 0;
    case HK_TYPE_Q3_K:
        if (isa == HK_ISA_AVX512) *k = (kernel){pack_q3_k_vnni, stride_q3_k_vnni, range_q3_k_vnni};
        else if (isa == HK_ISA_AVX2) *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q3_k_avx2};
        else *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q3_k_scalar};
        return 0;
    case HK_TYPE_Q5_K:
        if (isa == HK_ISA_AVX512) *k = (kernel){hk_pack_q4_k_vnni, hk_stride_q4_k_vnni, range_q5_k_vnni};
        else if (isa == HK_ISA_AVX2) *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q5_k_avx2};
        else *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_q5_k_scalar};
        return 0;
    case HK_TYPE_IQ4_XS:
        if (isa == HK_ISA_AVX512) {
            *k = (kernel){pack_iq4_xs_vnni, stride_iq4_xs_vnni,
                          hk_cpu_has_byte_permutes() ? range_iq4_xs_vbmi : range_iq4_xs_vnni};
        } else if (isa == HK_ISA_AVX2) *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_iq4_xs_avx2};
        else *k = (kernel){hk_pack_q8_k, hk_stride_q8_k, range_iq4_xs_scalar};
        return 0;
    default: return -1;
    }
}
