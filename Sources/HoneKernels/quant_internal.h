// Private helpers shared by the quantization files (quant.c, quant_matmul.c, quant_gemm.c).
#ifndef HK_QUANT_INTERNAL_H
#define HK_QUANT_INTERNAL_H

#include "hk_internal.h"
#include "hone_quant.h"

#include <stdlib.h>

// MARK: - Targets

/// AVX-512 with VNNI (vpdpbusd, vpdpwssd) on top of the level hk_isa calls AVX512.
#define HK_TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
/// VNNI plus BMI2 (pdep/pext between bit fields and byte masks; every CPU with VNNI has BMI2).
#define HK_TARGET_VNNI_BMI2 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,bmi2")))
/// VNNI plus the byte permutes of Ice Lake and Zen 4 (VBMI: vpermb, vpermt2b, vpmultishiftqb): only where
/// hk_cpu_has_byte_permutes() says so (Cascade Lake has VNNI without them).
#define HK_TARGET_VNNI_VBMI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c,bmi2")))

/// The instruction set the quantized kernels use: HK_ISA_AVX512 only with VNNI (the AVX-512 level without
/// it takes the AVX2 code).
static inline int hk_quant_isa(void) {
    int isa = hk_isa_current();
    if (isa == HK_ISA_AVX512 && !hk_cpu_has_vnni()) isa = HK_ISA_AVX2;
    return isa;
}

// MARK: - Scalars

/// Round to nearest, ties to even, for |value| < 2^22, bit-compatible with ggml's nearest_int: adding
/// 1.5 * 2^23 puts the rounded integer into the low mantissa bits (also for inf/NaN, which give garbage
/// but the same garbage).
static inline int hk_nearest_int(float value) {
    float shifted = value + 12582912.0f;
    return (int)(hk_float_bits(shifted) & 0x007FFFFFu) - 0x00400000;
}

/// Q4_K's six-bit scale and min of sub-block s (0..7) from the 12 packed bytes.
static inline void hk_q4k_scale_min(const uint8_t *packed /* [12] */, int s, uint8_t *scale, uint8_t *min) {
    if (s < 4) {
        *scale = packed[s] & 63;
        *min = packed[s + 4] & 63;
    } else {
        *scale = (uint8_t)((packed[s + 4] & 0x0F) | ((packed[s - 4] >> 6) << 4));
        *min = (uint8_t)((packed[s + 4] >> 4) | ((packed[s] >> 6) << 4));
    }
}

/// All eight scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K block, unpacked with 32-bit word
/// arithmetic: words 0/1 of the packed bytes hold scales/mins 0..3 in their low six bits and the top two
/// bits of 4..7 in their top bits; word 2 holds the low four bits of scales (low nibbles) and mins (high).
static inline void hk_q4k_unpack_scales(const uint8_t *packed /* [12] */, uint8_t *out /* [16] */) {
    uint32_t words[3];
    memcpy(words, packed, sizeof words);
    uint32_t scales_low = words[0] & 0x3F3F3F3Fu;
    uint32_t mins_low = words[1] & 0x3F3F3F3Fu;
    uint32_t scales_high = (words[2] & 0x0F0F0F0Fu) | (((words[0] >> 6) & 0x03030303u) << 4);
    uint32_t mins_high = ((words[2] >> 4) & 0x0F0F0F0Fu) | (((words[1] >> 6) & 0x03030303u) << 4);
    uint32_t result[4] = {scales_low, scales_high, mins_low, mins_high};
    memcpy(out, result, sizeof result);
}

/// Q4_K/Q5_K's 16 unpacked scale and minimum bytes in both 128-bit lanes, and the eight minimums as int16 words,
/// each twice in a row ([m0, m0, m1, m1, ..., m7, m7]), to meet Q8_K's 16 sub-block sums in one vpmaddwd: once
/// per block for every activation row. hk_q4k_scale_word_avx2 picks each scale from the bytes where it is used.
HK_TARGET_AVX2 static inline __m256i hk_q4k_scale_bytes_avx2(const uint8_t *packed /* [12] */, __m256i *min_pairs) {
    uint8_t unpacked[16];
    hk_q4k_unpack_scales(packed, unpacked);
    __m256i bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)unpacked));
    *min_pairs = _mm256_shuffle_epi8(bytes, _mm256_setr_epi16((short)0x8008, (short)0x8008, (short)0x8009, (short)0x8009,
                                                              (short)0x800A, (short)0x800A, (short)0x800B, (short)0x800B,
                                                              (short)0x800C, (short)0x800C, (short)0x800D, (short)0x800D,
                                                              (short)0x800E, (short)0x800E, (short)0x800F, (short)0x800F));
    return bytes;
}

/// Scale s of hk_q4k_scale_bytes_avx2's bytes in every int16 word, for vpmaddwd.
HK_TARGET_AVX2 static inline __m256i hk_q4k_scale_word_avx2(__m256i bytes, int s) {
    return _mm256_shuffle_epi8(bytes, _mm256_set1_epi16((short)(0x8000 | s)));
}

// MARK: - Row kernels (decode), shared by quant_matmul.c and quant_legacy.c

/// Activation rows per register tile.
#define MAX_TILE_ROWS 4

/// Software prefetch distance in the weight stream. The hardware prefetchers stop at page boundaries; two
/// pages ahead took one thread from ~27 to ~35 GB/s on the TinyLlama shapes (Zen 5; 2 to 16 KB measured,
/// 8 to 16 KB best, 0 = off). Prefetches past the end of the weights are harmless (they never fault).
/// The lines go to L2, not L1: on a Zen 4 VM, prefetching into L1 slowed whole-model decode of TinyLlama below
/// no prefetch at all for the types that stream fastest (Q8_0, Q4_0, Q6_K; most likely 8 KB of lines arriving
/// early evict the activations and the lines in use, which the VM's missing cache counters could not show),
/// while L2 kept the gain for the compute-heavier K-quants. One thread, tokens/s, L1 / none / L2: Q8_0 20.2 /
/// 23.8 / 23.6, Q6_K 23.5 / 26.6 / 30.3, Q4_K_M 30.1 / 29.0 / 34.4.
#ifndef QUANT_PREFETCH_BYTES
#define QUANT_PREFETCH_BYTES 8192
#endif
#define PREFETCH_AHEAD(address)                                                                                \
    do {                                                                                                       \
        if (QUANT_PREFETCH_BYTES) _mm_prefetch((const char *)(address) + QUANT_PREFETCH_BYTES, _MM_HINT_T1);   \
    } while (0)

/// Two weight rows' 16 nibble bytes in one register: `first`'s in the low half, `second`'s in the high half (the
/// two-outputs-per-register AVX2 tiles of the 4-bit types, quant_legacy.c and quant_k_more_matmul.c).
HK_TARGET_AVX2 HK_INLINE __m256i hk_nibble_pair_avx2(const uint8_t *first, const uint8_t *second) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)first)),
                                   _mm_loadu_si128((const __m128i *)second), 1);
}

/// The walk of the multi-output AVX2 tiles (quant_legacy.c, quant_k_more_matmul.c) over outputs
/// [first_output, end_output) and `rows` activation rows: outputs in tiles of `width`, rows in tiles of two, outputs
/// in chunks of about 64 KB of weights when there are several row tiles (read from memory by the first, from L2 by
/// the others). TILE_CALL() sees o, count (1..width), first_row and tile_rows (1 or 2).
#define FOR_EACH_OUTPUT_TILE(rows, row_bytes, width, TILE_CALL)                                                \
    do {                                                                                                       \
        int tile_count_ = ((rows) + 1) / 2;                                                                    \
        int chunk_ = (int)(((size_t)64 << 10) / (row_bytes)) / (width) * (width);                              \
        if (chunk_ < (width) || tile_count_ == 1) chunk_ = end_output - first_output;                          \
        for (int chunk_first_ = first_output; chunk_first_ < end_output; chunk_first_ += chunk_) {            \
            int chunk_end_ = end_output - chunk_first_ < chunk_ ? end_output : chunk_first_ + chunk_;          \
            for (int tile_ = 0; tile_ < tile_count_; tile_++) {                                                \
                int first_row = 2 * tile_, tile_rows = (rows) - first_row < 2 ? (rows) - first_row : 2;        \
                for (int o = chunk_first_; o < chunk_end_; o += (width)) {                                     \
                    int count = chunk_end_ - o < (width) ? chunk_end_ - o : (width);                           \
                    TILE_CALL();                                                                               \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    } while (0)

/// The eight-output AVX2 tiles (IQ4_NL in quant_legacy.c, IQ4_XS in quant_k_more_matmul.c) address weight row k
/// of a full tile as first + k * row_bytes (a few registers for all eight); a short one (count < 8) repeats its last
/// row through these offsets.
HK_INLINE void hk_octet_short_offsets(size_t row_bytes, int count, size_t offsets[8]) {
    for (int k = 0; k < 8; k++) offsets[k] = (size_t)(k < count ? k : count - 1) * row_bytes;
}

#define HK_OCTET_ROW(first, full, row_bytes, short_offsets, k)                                                 \
    ((first) + ((full) ? (size_t)(k) * (row_bytes) : (short_offsets)[k]))

/// The AVX2 K-quant inner step for every activation row of a tile: sums[r] += Σ_k scales[k] · (levels[k] · the 32
/// Q8_K values of block b from value first_value + 32 k), the int16 pair sums of vpmaddubsw weighted by vpmaddwd.
/// Callers pass half a block at a time (Q2_K, Q3_K, Q6_K) so that levels and scales stay in AVX2's
/// sixteen registers; every level is at most 63, so with |q| <= 127 the int16 pairs cannot saturate.
HK_TARGET_AVX2 HK_INLINE void hk_q8_k_products_avx2(const __m256i *levels /* [count] */, const __m256i *scales /* [count] */,
                                                    const int count, int first_value, const uint8_t *pack,
                                                    size_t stride, int first_row, int b, const int tile_rows,
                                                    __m256i *sums /* [tile_rows] */) {
    for (int r = 0; r < tile_rows; r++) {
        const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride) + b;
        for (int k = 0; k < count; k++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(a->qs + first_value + 32 * k));
            sums[r] = _mm256_add_epi32(sums[r], _mm256_madd_epi16(_mm256_maddubs_epi16(levels[k], q), scales[k]));
        }
    }
}

/// Q4_K/Q5_K's AVX2 inner step: the levels of sub-blocks 2c (low) and 2c + 1 (high) with their scales, as
/// hk_q8_k_products_avx2 with count 2 but written out (through that helper's arrays Q4_K's kernel measured 23.3 →
/// 20.7 GB/s).
HK_TARGET_AVX2 HK_INLINE void hk_q4k_sub_block_pair_avx2(__m256i low, __m256i high, __m256i scale_bytes, int c,
                                                         const uint8_t *pack, size_t stride, int first_row, int b,
                                                         const int tile_rows, __m256i *sums /* [tile_rows] */) {
    __m256i low_scale = hk_q4k_scale_word_avx2(scale_bytes, 2 * c);
    __m256i high_scale = hk_q4k_scale_word_avx2(scale_bytes, 2 * c + 1);
    for (int r = 0; r < tile_rows; r++) {
        const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride) + b;
        __m256i low_products = _mm256_maddubs_epi16(low, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c)));
        __m256i high_products = _mm256_maddubs_epi16(high, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c + 32)));
        sums[r] = _mm256_add_epi32(sums[r], _mm256_madd_epi16(low_products, low_scale));
        sums[r] = _mm256_add_epi32(sums[r], _mm256_madd_epi16(high_products, high_scale));
    }
}

/// Q4_K/Q5_K's AVX2 block end for every activation row of a tile: the scaled products into acc, the minimums
/// times Q8_K's sub-block sums into mins_acc (subtracted once at the end of the row).
HK_TARGET_AVX2 HK_INLINE void hk_q4k_block_end_avx2(const __m256i *sums /* [tile_rows] */, __m256i min_pairs,
                                                    float d, float dmin, const uint8_t *pack, size_t stride,
                                                    int first_row, int b, const int tile_rows,
                                                    __m256 *acc /* [tile_rows] */, __m256 *mins_acc /* [tile_rows] */) {
    for (int r = 0; r < tile_rows; r++) {
        const hk_block_q8_k *a = (const hk_block_q8_k *)(pack + (size_t)(first_row + r) * stride) + b;
        __m256i mins = _mm256_madd_epi16(min_pairs, _mm256_loadu_si256((const __m256i *)a->bsums));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r]), _mm256_set1_ps(d * a->d), acc[r]);
        mins_acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin * a->d), mins_acc[r]);
    }
}

// Q4_K/Q5_K on VNNI: a block's 16 unpacked scale and minimum bytes, repeated in every 128-bit lane ("factors":
// bytes 0..7 scales, 8..15 minimums), and its four dot vectors (vpdpbusd of the level vectors), which hold
// sub-blocks (0, 2), (1, 3), (4, 6), (5, 7) in their int32 lanes 0..7 and 8..15.

/// The scale words for two dot vectors packed with vpackssdw (in 128-bit lane L, words 0..3 from the first
/// vector's quarter L, words 4..7 from the second's): sub-block scales s, t in lanes 0 and 1, u, v in lanes 2
/// and 3, zero-extended (a pick byte with its top bit set gives 0).
HK_TARGET_VNNI static inline __m512i hk_q4k_scale_words_vnni(__m512i factors, int s, int t, int u, int v) {
#define HK_WORD(b) ((short)((b) | 0x8000))
    __m512i pick = _mm512_set_epi16(HK_WORD(v), HK_WORD(v), HK_WORD(v), HK_WORD(v), HK_WORD(u), HK_WORD(u),
                                    HK_WORD(u), HK_WORD(u), HK_WORD(v), HK_WORD(v), HK_WORD(v), HK_WORD(v),
                                    HK_WORD(u), HK_WORD(u), HK_WORD(u), HK_WORD(u), HK_WORD(t), HK_WORD(t),
                                    HK_WORD(t), HK_WORD(t), HK_WORD(s), HK_WORD(s), HK_WORD(s), HK_WORD(s),
                                    HK_WORD(t), HK_WORD(t), HK_WORD(t), HK_WORD(t), HK_WORD(s), HK_WORD(s),
                                    HK_WORD(s), HK_WORD(s));
#undef HK_WORD
    return _mm512_shuffle_epi8(factors, pick);
}

/// Sum over four dot vectors of (lane dot) * (its sub-block's scale), for lane dots below 2^15 (Q2_K, Q3_K, Q4_K,
/// Q5_K, Q6_K): each pair packed to words with vpackssdw (exact) and scaled by one vpmaddwd, which takes half the
/// multiplies and half the scale shuffles of scaling each vector's int32 lanes. `scale_words[j]` holds, word for
/// word, the scales of packs(dots[2j], dots[2j + 1]) (Q4_K/Q5_K: hk_q4k_scale_words_vnni(factors, 0, 1, 2, 3) and
/// (factors, 4, 5, 6, 7)).
HK_TARGET_VNNI static inline __m512i hk_scaled_pair_sum_vnni(const __m512i dots[4], const __m512i scale_words[2]) {
    __m512i first = _mm512_madd_epi16(_mm512_packs_epi32(dots[0], dots[1]), scale_words[0]);
    return _mm512_dpwssd_epi32(first, _mm512_packs_epi32(dots[2], dots[3]), scale_words[1]);
}

/// Packs `rows` activation rows for one kernel; row r's pack starts at r * stride.
typedef void (*hk_quant_pack_fn)(const float *x /* [rows, in] */, int rows, int in, uint8_t *pack, size_t stride);
/// Outputs [first_output, end_output) for every row.
typedef void (*hk_quant_range_fn)(const uint8_t *w /* [out, in] blocks */, const uint8_t *pack, size_t stride,
                                  float *y /* [rows, out] */, int rows, int in, int out, int first_output,
                                  int end_output);

/// One weight type's decode kernel at one ISA level: how to pack the activations, and the product.
typedef struct {
    hk_quant_pack_fn pack;
    size_t (*stride)(int in);
    hk_quant_range_fn range;
} hk_quant_kernel;

/// Runs TILE_CALL(n) for every output o in [first_output, end_output) and every balanced tile of n <= 4 rows
/// starting at first_row (16 rows = 4 x 4). Outputs go in chunks of about 64 KB of weights, row tiles
/// inside: a row tile's activations (a few KB per row) stay in L1 while the chunk's weights, read from
/// memory by the first row tile, come from L2 for the others. Each (output, row) is still computed by
/// one tile call with the same operations, so results do not depend on the row count.
#define FOR_EACH_TILE(rows, row_bytes, TILE_CALL)                                                              \
    do {                                                                                                       \
        int tile_count_ = ((rows) + MAX_TILE_ROWS - 1) / MAX_TILE_ROWS;                                        \
        int chunk_ = (int)(((size_t)64 << 10) / (row_bytes));                                                 \
        if (chunk_ < 1 || tile_count_ == 1) chunk_ = end_output - first_output;                               \
        for (int chunk_first_ = first_output; chunk_first_ < end_output; chunk_first_ += chunk_) {            \
            int chunk_end_ = end_output - chunk_first_ < chunk_ ? end_output : chunk_first_ + chunk_;          \
            for (int tile_ = 0; tile_ < tile_count_; tile_++) {                                                \
                int first_row = tile_ * (rows) / tile_count_, end_row_ = (tile_ + 1) * (rows) / tile_count_;   \
                for (int o = chunk_first_; o < chunk_end_; o++) {                                              \
                    switch (end_row_ - first_row) {                                                            \
                    case 1: TILE_CALL(1); break;                                                               \
                    case 2: TILE_CALL(2); break;                                                               \
                    case 3: TILE_CALL(3); break;                                                               \
                    default: TILE_CALL(4); break;                                                              \
                    }                                                                                          \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    } while (0)

static inline size_t round_up_64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// MARK: - The 32-value "legacy" types (quant_legacy.c): Q4_1, Q5_0, Q5_1, IQ4_NL

static inline int hk_is_legacy_type(int type) {
    return type == HK_TYPE_Q4_1 || type == HK_TYPE_Q5_0 || type == HK_TYPE_Q5_1 || type == HK_TYPE_IQ4_NL;
}

/// Q4_1 and Q5_1 add a per-block minimum m to d * level.
static inline int hk_legacy_has_mins(int type) { return type == HK_TYPE_Q4_1 || type == HK_TYPE_Q5_1; }

/// The unsigned levels the integer kernels multiply are the stored value + this offset: Q5_0's levels are
/// q (value q - 16), IQ4_NL's the codebook value + 128; Q4_1 and Q5_1 levels are the stored q.
static inline int hk_legacy_level_offset(int type) {
    return type == HK_TYPE_Q5_0 ? 16 : type == HK_TYPE_IQ4_NL ? 128 : 0;
}

/// Q4_0's AVX2 decode kernel (quant_legacy.c, beside IQ4_NL's, which shares its block layout): two outputs per
/// register. Pack: hk_pack_a32_sums.
HK_HIDDEN HK_TARGET_AVX2 void hk_range_q4_0_pairs_avx2(const uint8_t *w, const uint8_t *pack, size_t stride, float *y,
                                                       int rows, int in, int out, int first_output, int end_output);

/// The decode kernel for a legacy type at an ISA level (hk_quant_isa's); 0, or -1 for another type.
HK_HIDDEN int hk_legacy_select_kernel(int type, int isa, hk_quant_kernel *k);

/// A32 activations with block sums (the scalar and AVX2 kernels of Q4_0 and the legacy types): per row the
/// int8 values [in], their block scales d_a [in / 32], then d_a * (the block's integer sum) [in / 32], which
/// meets a weight block's minimum or level offset (value = d * level - offset * d).
HK_HIDDEN size_t hk_stride_a32_sums(int in);
HK_HIDDEN void hk_pack_a32_sums(const float *x /* [rows, in] */, int rows, int in, uint8_t *pack, size_t stride);

/// Integer reference for one weight row and one A32 activation row: sum over blocks of (weight scale *
/// activation scale) * (exact integer dot), plus for Q4_1/Q5_1 (m * activation scale) * (exact sum of the
/// block's activations), in double.
HK_HIDDEN double hk_legacy_int_dot(int type, const void *w /* [in / 32] blocks */, const int8_t *q /* [in] */,
                                   const float *d /* [in / 32] */, int in);

/// For the int8 GEMM (quant_gemm.c): one weight row as unsigned levels in value order (level - offset is the
/// stored level, hk_legacy_level_offset) and per block of 32 the f32 scale and min with value = scale * (level
/// - offset) - min, written `group_stride` floats apart.
HK_HIDDEN HK_TARGET_AVX2 void hk_legacy_decode_levels(int type, const uint8_t *row, int in, uint8_t *levels /* [in] */,
                                                      float *scales, float *mins, size_t group_stride);

// MARK: - Type groups

/// Q2_K, Q3_K, Q5_K, IQ4_XS: integer kernels over Q8_K activations (quant_k_more*.c).
static inline int hk_is_k_more_type(int type) {
    return type == HK_TYPE_Q2_K || type == HK_TYPE_Q3_K || type == HK_TYPE_Q5_K || type == HK_TYPE_IQ4_XS;
}

/// The codebook and ternary formats: dequantization only (quant_iq.c).
static inline int hk_is_iq_type(int type) {
    switch (type) {
    case HK_TYPE_IQ2_XXS: case HK_TYPE_IQ2_XS: case HK_TYPE_IQ2_S: case HK_TYPE_IQ3_XXS: case HK_TYPE_IQ3_S:
    case HK_TYPE_IQ1_S: case HK_TYPE_IQ1_M: case HK_TYPE_TQ1_0: case HK_TYPE_TQ2_0: return 1;
    default: return 0;
    }
}

// MARK: - Shared quantizer pieces (quant.c)

/// ggml's make_qkx2_quants: levels 0..max_level and (scale, -min) fitted under weighted squared (or, with
/// absolute_error, absolute) error over steps + 1 candidate grids. Returns the scale.
HK_HIDDEN float hk_fit_scale_and_min(int count, int max_level, const float *x /* [count] */,
                                     const float *weights /* [count] */, uint8_t *levels /* [count] */,
                                     float *negated_min, uint8_t *candidate /* [count] */, float first_offset,
                                     float offset_step, int steps, int absolute_error);

/// Integer reference dot product of one weight row of Q2_K, Q3_K, Q5_K or IQ4_XS with Q8_K activations
/// (quant_k_more.c).
HK_HIDDEN double hk_int_dot_k_more(int type, const void *row, const hk_block_q8_k *a /* [in / 256] */, int in);

/// The int8 GEMM's decoding of one weight row of Q2_K, Q3_K, Q5_K or IQ4_XS (quant_k_more_matmul.c): unsigned
/// levels in value order [in], and per group (16 values for Q2_K/Q3_K, 32 otherwise) the f32 scale and min
/// (value = scale * (level - offset) - min, offset 4 for Q3_K, 128 for IQ4_XS) at group_stride floats apart.
HK_HIDDEN void hk_decode_levels_k_more(int type, const uint8_t *row, int in, uint8_t *levels /* [in] */, float *scales,
                                       float *mins, size_t group_stride);

/// The 16 levels of IQ4_NL and IQ4_XS (a format fact: ggml's kvalues_iq4nl).
HK_HIDDEN extern const int8_t hk_iq4_xs_levels[16];

/// Those levels + 128 (1..241): unsigned bytes for the unsigned side of vpdpbusd and vpmaddubsw, the 128 * x they
/// add taken out of the sums elsewhere.
HK_TARGET_AVX2 static inline __m128i hk_iq4_biased_levels(void) {
    return _mm_xor_si128(_mm_loadu_si128((const __m128i *)hk_iq4_xs_levels), _mm_set1_epi8((char)0x80));
}

/// Q3_K's 16 six-bit scales from the 12 packed bytes, as signed values scale - 32 (-32 .. 31).
static inline void hk_q3k_unpack_scales(const uint8_t *packed /* [12] */, int8_t *out /* [16] */) {
    uint32_t words[3];
    memcpy(words, packed, sizeof words);
    // Words 0/1: low nibbles of scales 0..7 (low) and 8..15 (high nibbles); word 2: two top bits each.
    uint32_t result[4] = {
        (words[0] & 0x0F0F0F0Fu) | ((words[2] & 0x03030303u) << 4),
        (words[1] & 0x0F0F0F0Fu) | (((words[2] >> 2) & 0x03030303u) << 4),
        ((words[0] >> 4) & 0x0F0F0F0Fu) | (((words[2] >> 4) & 0x03030303u) << 4),
        ((words[1] >> 4) & 0x0F0F0F0Fu) | (((words[2] >> 6) & 0x03030303u) << 4),
    };
    memcpy(out, result, sizeof result);
    for (int s = 0; s < 16; s++) out[s] = (int8_t)(out[s] - 32);
}

/// IQ4_XS's six-bit scale of sub-block s (0..7), minus 32.
static inline int hk_iq4_xs_scale(const hk_block_iq4_xs *block, int s) {
    return (((block->scales_l[s / 2] >> (4 * (s % 2))) & 0x0F) | (((block->scales_h >> (2 * s)) & 3) << 4)) - 32;
}

// MARK: - Activation buffers

/// A per-thread scratch buffer that only grows (activation packs are rebuilt on every call).
HK_HIDDEN void *hk_quant_scratch(int slot, size_t bytes);

/// Q8_K activations of `rows` rows, [rows, in / 256] blocks.
HK_HIDDEN void hk_quantize_rows_q8_k(const float *x /* [rows, in] */, hk_block_q8_k *y, int rows, int in);
/// hk_quantize_activations_a32 for `rows` rows.
HK_HIDDEN void hk_quantize_rows_a32(const float *x /* [rows, in] */, int8_t *q /* [rows, in] */,
                                    float *d /* [rows, in / 32] */, int rows, int in);

#endif
