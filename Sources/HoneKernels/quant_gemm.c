// Prefill over quantized weights: y[r, o] = sum_i w[o, i] * x[r, i] for many activation rows.
//
// Two strategies (hone_quant.h):
// - hk_matmul_many_quant: an int8 GEMM. Each thread repacks chunks of 16-output tiles into an interleaved
//   layout (for each group of 32 values, or 16 for Q6_K: eight 64-byte vectors whose int32 lane o holds
//   four consecutive unsigned levels of output o, then the group's f32 scales and mins per output), and a
//   microkernel multiplies 8 activation rows at a time: vpdpbusd with the activations' 4-byte groups
//   broadcast from memory gives 16 outputs' exact integer sums per instruction; each group's sums are
//   scaled once in f32. Levels are unsigned (Q8_0 weights + 128, Q4_0 and Q4_K nibbles, Q6_K's six bits,
//   Q5_0's five bits, IQ4_NL's codebook values + 128, Q4_1/Q5_1 levels; Q2_K, Q3_K, Q5_K and IQ4_XS levels
//   from quant_k_more_matmul.c, groups of 16 for Q2_K/Q3_K); their offsets (128, 8, 32, 16, 128; 4 for Q3_K,
//   128 for IQ4_XS; times the group's activation sum) start the integer accumulator, and the minimum of
//   Q4_1/Q5_1 (and of Q4_K, Q5_K, Q2_K) meets the group's (scaled) activation sum in f32.
//   Without VNNI (AVX2) the same tiles feed a kernel for 8 outputs (one 32-byte half of each vector) and 4 rows:
//   vpmaddubsw multiplies levels by broadcast activations into 16-bit pair sums, summed in 16 bits as far as
//   they cannot saturate, and vpmaddwd widens them. Q8_0, IQ4_NL and IQ4_XS, whose unsigned levels reach 255,
//   are stored signed there (offset 0) and multiplied as |level| times the activation with the level's sign.
// - hk_matmul_many_quant_sgemm: dequantize tiles to f32 and call single-threaded sgemm, as gemm.c does.
#include "quant_internal.h"

#include <cblas.h>

#define TILE_OUTPUTS 16
#define GEMM_TILE_ROWS 8
/// Fewer rows than this go through the row kernel.
#define GEMM_MIN_ROWS 17
/// Output tiles per chunk: four repacked tiles of 16 outputs (80 KB per 1024 inputs for the 32-value
/// groups) stay in L2 while every row tile passes over them.
#define CHUNK_TILES 4

// MARK: - Activations

/// Quantized activations for the GEMM: per row the int8 values (for the K formats inside Q8_K blocks),
/// and per group of `group` values the integer start (-offset * sum of the group's values) and scale.
typedef struct {
    const int8_t *values;       // row r's value i at values[r * row_stride + position(i)]
    size_t row_stride;          // bytes
    int block_stride;           // K formats: bytes per Q8_K block (values of block b start at 4 + b * 292)
    const int32_t *starts;      // [rows, in / group]
    const float *scales;        // [rows, in / group] (A32) or [rows, in / 256] (K formats)
    const float *group_sums;    // formats with mins (Q4_K, Q5_K, Q2_K): [rows, in / group] f32 group sums
} gemm_activations;

/// Values per repacked group: the format's sub-block (16 for Q6_K, Q3_K and Q2_K, else 32).
static int group_size(int type) {
    return type == HK_TYPE_Q6_K || type == HK_TYPE_Q3_K || type == HK_TYPE_Q2_K ? 16 : 32;
}

/// Formats over Q8_K activations.
static int is_k_format(int type) { return type == HK_TYPE_Q4_K || type == HK_TYPE_Q6_K || hk_is_k_more_type(type); }

/// Formats whose groups have a min (value = scale * level - min): the activations' group sums are needed.
static int has_mins(int type) { return type == HK_TYPE_Q4_K || type == HK_TYPE_Q5_K || type == HK_TYPE_Q2_K; }

/// Types whose levels the AVX2 tiles hold signed (their unsigned levels would saturate vpmaddubsw's pair sums).
static int signed_on_avx2(int type) { return type == HK_TYPE_Q8_0 || type == HK_TYPE_IQ4_NL || type == HK_TYPE_IQ4_XS; }

/// The offset of the levels in the tiles (value = scale * (level - offset)), taken out of the integer sums.
static int level_offset(int type, int isa) {
    if (isa == HK_ISA_AVX2 && signed_on_avx2(type)) return 0;
    switch (type) {
    case HK_TYPE_Q8_0: case HK_TYPE_IQ4_XS: return 128;
    case HK_TYPE_Q4_0: return 8;
    case HK_TYPE_Q6_K: return 32;
    case HK_TYPE_Q3_K: return 4;
    default: return hk_is_legacy_type(type) ? hk_legacy_level_offset(type) : 0; // Q5_0 16, IQ4_NL 128
    }
}

/// Quantizes all rows (in parallel when there are many) and fills `a`; returns -1 when out of memory.
static int prepare_activations(int type, int isa, const float *x, int rows, int in, gemm_activations *a) {
    int groups = in / group_size(type);
    int k_format = is_k_format(type), group = group_size(type);
    size_t values_bytes = k_format ? (size_t)rows * (in / HK_QK_K) * sizeof(hk_block_q8_k) : (size_t)rows * in;
    size_t starts_bytes = (size_t)rows * groups * sizeof(int32_t);
    size_t scales_bytes = (size_t)rows * (k_format ? in / HK_QK_K : groups) * sizeof(float);
    size_t sums_bytes = has_mins(type) || hk_legacy_has_mins(type) ? (size_t)rows * groups * sizeof(float) : 0;
    uint8_t *buffer = hk_quant_scratch(1, values_bytes + starts_bytes + scales_bytes + sums_bytes + 256);
    if (buffer == NULL) return -1;
    uint8_t *cursor = buffer;
    int8_t *values = (int8_t *)cursor;
    cursor += (values_bytes + 63) / 64 * 64;
    int32_t *starts = (int32_t *)cursor;
    cursor += (starts_bytes + 63) / 64 * 64;
    float *scales = (float *)cursor;
    cursor += (scales_bytes + 63) / 64 * 64;
    float *sums = (float *)cursor;

    int offset = level_offset(type, isa), with_mins = has_mins(type);
    int threads = rows * in >= (1 << 16) ? hk_thread_count() : 1;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int r = 0; r < rows; r++) {
        if (k_format) {
            hk_block_q8_k *blocks = (hk_block_q8_k *)values + (size_t)r * (in / HK_QK_K);
            hk_quantize_row_q8_k(x + (size_t)r * in, blocks, in);
            for (int b = 0; b < in / HK_QK_K; b++) {
                scales[(size_t)r * (in / HK_QK_K) + b] = blocks[b].d;
                for (int j = 0; j < HK_QK_K / group; j++) {
                    int sum = group == 16 ? blocks[b].bsums[j] : blocks[b].bsums[2 * j] + blocks[b].bsums[2 * j + 1];
                    size_t g = (size_t)r * groups + (size_t)(HK_QK_K / group) * b + j;
                    starts[g] = -offset * sum;
                    if (with_mins) sums[g] = (float)sum;
                }
            }
        } else {
            int8_t *q = values + (size_t)r * in;
            hk_quantize_activations_a32(x + (size_t)r * in, q, scales + (size_t)r * groups, in);
            for (int g = 0; g < groups; g++) {
                int sum = 0;
                for (int i = 0; i < 32; i++) sum += q[32 * g + i];
                starts[(size_t)r * groups + g] = -offset * sum;
                // Q4_1/Q5_1: d_a * (block sum), which the weights' minimum multiplies.
                if (hk_legacy_has_mins(type)) sums[(size_t)r * groups + g] = scales[(size_t)r * groups + g] * (float)sum;
            }
        }
    }
    a->values = k_format ? values + 4 : values; // skip the Q8_K block's d
    a->row_stride = k_format ? (size_t)(in / HK_QK_K) * sizeof(hk_block_q8_k) : (size_t)in;
    a->block_stride = k_format ? (int)sizeof(hk_block_q8_k) : 0;
    a->starts = starts;
    a->scales = scales;
    a->group_sums = sums;
    return 0;
}

// MARK: - Repacking

/// Bytes of one repacked tile: per group, group / 4 level vectors, then scales and mins (f32 x 16 each).
static size_t tile_bytes(int type, int in) {
    int group = group_size(type);
    return (size_t)(in / group) * ((size_t)group / 4 * 64 + 128);
}

/// Unsigned levels of one weight row in value order, and per group the f32 scale and min with
/// value = scale * level - min, written with a stride (the tile's per-group vectors, lane `o`).
HK_TARGET_AVX2 static void decode_row_levels(int type, const uint8_t *row, int in, uint8_t *levels /* [in] */,
                                             float *scales, float *mins, size_t group_stride /* floats */) {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    switch (type) {
    case HK_TYPE_Q4_1: case HK_TYPE_Q5_0: case HK_TYPE_Q5_1: case HK_TYPE_IQ4_NL: hk_legacy_decode_levels(type, row, in, levels, scales, mins, group_stride); break;
    case HK_TYPE_Q8_0: {
        const hk_block_q8_0 *blocks = (const hk_block_q8_0 *)row;
        for (int b = 0; b < in / 32; b++) {
            scales[b * group_stride] = _cvtsh_ss(blocks[b].d);
            mins[b * group_stride] = 0.0f; // the offset 128 is taken out of the integer sums
            __m256i q = _mm256_loadu_si256((const __m256i *)blocks[b].qs);
            _mm256_storeu_si256((__m256i *)(levels + 32 * b), _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)));
        }
        break;
    }
    case HK_TYPE_Q4_0: {
        const hk_block_q4_0 *blocks = (const hk_block_q4_0 *)row;
        for (int b = 0; b < in / 32; b++) {
            scales[b * group_stride] = _cvtsh_ss(blocks[b].d);
            mins[b * group_stride] = 0.0f; // the offset 8 is taken out of the integer sums
            __m128i packed = _mm_loadu_si128((const __m128i *)blocks[b].qs);
            __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1);
            _mm256_storeu_si256((__m256i *)(levels + 32 * b), _mm256_and_si256(both, low_nibbles));
        }
        break;
    }
    case HK_TYPE_Q4_K: {
        const hk_block_q4_k *blocks = (const hk_block_q4_k *)row;
        for (int b = 0; b < in / HK_QK_K; b++) {
            uint8_t unpacked[16];
            hk_q4k_unpack_scales(blocks[b].scales, unpacked);
            float d = _cvtsh_ss(blocks[b].d), dmin = _cvtsh_ss(blocks[b].dmin);
            for (int s = 0; s < 8; s++) {
                scales[(size_t)(8 * b + s) * group_stride] = d * (float)unpacked[s];
                mins[(size_t)(8 * b + s) * group_stride] = dmin * (float)unpacked[8 + s];
            }
            for (int c = 0; c < 4; c++) {
                __m256i packed = _mm256_loadu_si256((const __m256i *)(blocks[b].qs + 32 * c));
                uint8_t *out = levels + HK_QK_K * b + 64 * c;
                _mm256_storeu_si256((__m256i *)out, _mm256_and_si256(packed, low_nibbles));
                _mm256_storeu_si256((__m256i *)(out + 32), _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles));
            }
        }
        break;
    }
    case HK_TYPE_Q2_K: case HK_TYPE_Q3_K: case HK_TYPE_Q5_K: case HK_TYPE_IQ4_XS:
        hk_decode_levels_k_more(type, row, in, levels, scales, mins, group_stride);
        break;
    default: { // Q6_K
        const hk_block_q6_k *blocks = (const hk_block_q6_k *)row;
        const __m256i two_bits = _mm256_set1_epi8(3);
        for (int b = 0; b < in / HK_QK_K; b++) {
            float d = _cvtsh_ss(blocks[b].d);
            for (int s = 0; s < 16; s++) {
                scales[(size_t)(16 * b + s) * group_stride] = d * (float)blocks[b].scales[s];
                mins[(size_t)(16 * b + s) * group_stride] = 0.0f; // the offset 32 is taken out of the integer sums
            }
            for (int half = 0; half < 2; half++) {
                __m256i low0 = _mm256_loadu_si256((const __m256i *)(blocks[b].ql + 64 * half));
                __m256i low1 = _mm256_loadu_si256((const __m256i *)(blocks[b].ql + 64 * half + 32));
                __m256i high = _mm256_loadu_si256((const __m256i *)(blocks[b].qh + 32 * half));
                uint8_t *out = levels + HK_QK_K * b + 128 * half;
                // Quarter k of the half: low or high nibble of low0/low1, top bits at 2 k of `high`.
                __m256i quarters[4] = {
                    _mm256_and_si256(low0, low_nibbles), _mm256_and_si256(low1, low_nibbles),
                    _mm256_and_si256(_mm256_srli_epi16(low0, 4), low_nibbles),
                    _mm256_and_si256(_mm256_srli_epi16(low1, 4), low_nibbles),
                };
                for (int k = 0; k < 4; k++) {
                    __m256i top = _mm256_and_si256(_mm256_srli_epi16(high, 2 * k), two_bits);
                    __m256i level = _mm256_or_si256(quarters[k], _mm256_slli_epi16(top, 4));
                    _mm256_storeu_si256((__m256i *)(out + 32 * k), level);
                }
            }
        }
        break;
    }
    }
}

/// Transposes 32 bytes (8 int32 words) of each of 16 rows (row o at rows + o * stride) into 8 vectors
/// whose lane o is word v of row o: rows o and o + 8 share a register, then an 8 x 8 word transpose runs in
/// both 256-bit halves at once (word unpacks, quadword unpacks, one two-source quadword permute).
HK_TARGET_VNNI HK_INLINE void transpose_16x8_words(const uint8_t *rows, size_t stride, __m512i out[8]) {
    __m512i z[8], t[8], u[8];
    for (int j = 0; j < 8; j++) {
        z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(rows + j * stride))),
                                  _mm256_loadu_si256((const __m256i *)(rows + (j + 8) * stride)), 1);
    }
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm512_unpacklo_epi32(z[j], z[j + 1]);
        t[j + 1] = _mm512_unpackhi_epi32(z[j], z[j + 1]);
    }
    // u[k] (k < 4): rows 0..3 (8..11) of word 4 L + k in 128-bit lane L; u[4 + k]: rows 4..7 (12..15).
    for (int half = 0; half < 2; half++) {
        __m512i *a = t + 4 * half, *result = u + 4 * half;
        result[0] = _mm512_unpacklo_epi64(a[0], a[2]);
        result[1] = _mm512_unpackhi_epi64(a[0], a[2]);
        result[2] = _mm512_unpacklo_epi64(a[1], a[3]);
        result[3] = _mm512_unpackhi_epi64(a[1], a[3]);
    }
    const __m512i words_low = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);   // words 0..3: lanes 0 and 2
    const __m512i words_high = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15); // words 4..7: lanes 1 and 3
    for (int k = 0; k < 4; k++) {
        out[k] = _mm512_permutex2var_epi64(u[k], words_low, u[4 + k]);
        out[4 + k] = _mm512_permutex2var_epi64(u[k], words_high, u[4 + k]);
    }
}

/// Decodes outputs [first_output, first_output + count) (count <= 16; missing outputs are zero) into `levels`
/// ([16, in] bytes, output o's levels in value order at o * in) and the tile's per-group scales and mins.
HK_TARGET_AVX2 static void decode_tile_rows(int type, const uint8_t *w, size_t row_bytes, int in, int first_output,
                                            int count, uint8_t *tile, uint8_t *levels /* [16, in] */) {
    int group = group_size(type), groups = in / group, vectors = group / 4;
    size_t group_floats = ((size_t)vectors * 64 + 128) / sizeof(float);
    float *scales = (float *)(tile + 64 * vectors), *mins = scales + 16;
    for (int o = 0; o < TILE_OUTPUTS; o++) {
        if (o < count) {
            decode_row_levels(type, w + (size_t)(first_output + o) * row_bytes, in, levels + (size_t)o * in, scales + o,
                              mins + o, group_floats);
        } else {
            memset(levels + (size_t)o * in, 0, (size_t)in);
            for (int g = 0; g < groups; g++) scales[g * group_floats + o] = mins[g * group_floats + o] = 0.0f;
        }
    }
}

/// Where the 64-byte vector holding values [value, value + 4) of every output goes in a tile.
static inline uint8_t *tile_vector(uint8_t *tile, int type, int value) {
    int group = group_size(type);
    size_t group_bytes = (size_t)group / 4 * 64 + 128;
    return tile + (size_t)(value / group) * group_bytes + 64 * ((value % group) / 4);
}

/// Repacks outputs [first_output, first_output + count) (count <= 16; missing outputs are zero) into `tile`.
/// `levels` holds [16, in] bytes of decoded rows.
HK_TARGET_VNNI static void repack_tile_vnni(int type, const uint8_t *w, size_t row_bytes, int in, int first_output,
                                            int count, uint8_t *tile, uint8_t *levels /* [16, in] */) {
    decode_tile_rows(type, w, row_bytes, in, first_output, count, tile, levels);
    // 32 values (8 words) per transpose: one group, or two of Q6_K's groups of 16.
    for (int i = 0; i < in; i += 32) {
        __m512i words[8];
        transpose_16x8_words(levels + i, (size_t)in, words);
        for (int v = 0; v < 8; v++) _mm512_store_si512(tile_vector(tile, type, i + 4 * v), words[v]);
    }
}

/// The AVX2 form of transpose_16x8_words for 8 rows: out[v]'s lane o is word v of row o (rows + o * stride).
HK_TARGET_AVX2 HK_INLINE void transpose_8x8_words(const uint8_t *rows, size_t stride, __m256i out[8]) {
    __m256i z[8], t[8], u[8];
    for (int j = 0; j < 8; j++) z[j] = _mm256_loadu_si256((const __m256i *)(rows + j * stride));
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_epi32(z[j], z[j + 1]);
        t[j + 1] = _mm256_unpackhi_epi32(z[j], z[j + 1]);
    }
    // u[k] (k < 4): rows 0..3 of words k and 4 + k in the two 128-bit lanes; u[4 + k]: rows 4..7.
    for (int half = 0; half < 2; half++) {
        __m256i *a = t + 4 * half, *result = u + 4 * half;
        result[0] = _mm256_unpacklo_epi64(a[0], a[2]);
        result[1] = _mm256_unpackhi_epi64(a[0], a[2]);
        result[2] = _mm256_unpacklo_epi64(a[1], a[3]);
        result[3] = _mm256_unpackhi_epi64(a[1], a[3]);
    }
    for (int k = 0; k < 4; k++) {
        out[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
        out[4 + k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
    }
}

/// The same tile layout for the AVX2 kernel: outputs 0..7 in the first 32 bytes of each vector, 8..15 in the
/// second; the signed_on_avx2 types' levels stored signed (level - 128).
HK_TARGET_AVX2 static void repack_tile_avx2(int type, const uint8_t *w, size_t row_bytes, int in, int first_output,
                                            int count, uint8_t *tile, uint8_t *levels /* [16, in] */) {
    decode_tile_rows(type, w, row_bytes, in, first_output, count, tile, levels);
    const __m256i flip = _mm256_set1_epi8(signed_on_avx2(type) ? (char)0x80 : 0);
    for (int i = 0; i < in; i += 32) {
        for (int half = 0; half < 2; half++) {
            __m256i words[8];
            transpose_8x8_words(levels + (size_t)(8 * half) * in + i, (size_t)in, words);
            for (int v = 0; v < 8; v++) {
                __m256i *destination = (__m256i *)(tile_vector(tile, type, i + 4 * v) + 32 * half);
                _mm256_store_si256(destination, _mm256_xor_si256(words[v], flip));
            }
        }
    }
}

// MARK: - Microkernels (VNNI)

/// y[first_row .. + tile_rows, first_output .. + count] for one repacked tile; the 32-value types (A32 groups),
/// with_mins for Q4_1/Q5_1 (minus min * d_a * (group sum) per group).
HK_TARGET_VNNI HK_INLINE void kernel_a32(const uint8_t *tile, const gemm_activations *a, int groups, int first_row,
                                         const int tile_rows, float *y, int out, int first_output, __mmask16 lanes,
                                         const int with_mins) {
    __m512 acc[GEMM_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm512_setzero_ps();
    const size_t group_bytes = 8 * 64 + 128;
    for (int g = 0; g < groups; g++) {
        const uint8_t *t = tile + (size_t)g * group_bytes;
        __m512i levels[8];
        for (int v = 0; v < 8; v++) levels[v] = _mm512_load_si512(t + 64 * v);
        __m512 scales = _mm512_load_ps((const float *)(t + 512));
        for (int r = 0; r < tile_rows; r++) {
            size_t row = (size_t)(first_row + r);
            const int32_t *q = (const int32_t *)(a->values + row * a->row_stride + 32 * (size_t)g);
            __m512i sum = _mm512_set1_epi32(a->starts[row * groups + g]);
            for (int v = 0; v < 8; v++) sum = _mm512_dpbusd_epi32(sum, levels[v], _mm512_set1_epi32(q[v]));
            __m512 scale = _mm512_mul_ps(scales, _mm512_set1_ps(a->scales[row * groups + g]));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, acc[r]);
            if (with_mins) {
                acc[r] = _mm512_fnmadd_ps(_mm512_load_ps((const float *)(t + 576)),
                                          _mm512_set1_ps(a->group_sums[row * groups + g]), acc[r]);
            }
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        _mm512_mask_storeu_ps(y + (size_t)(first_row + r) * out + first_output, lanes, acc[r]);
    }
}

/// Groups of 32 over Q8_K activations (Q4_K, Q5_K, IQ4_XS): per super-block, sum over sub-blocks of scale *
/// (integer sum, started at -offset * activation sum when `with_starts`) - min * (activation sub-block sum)
/// when `with_mins`, times the activations' d.
HK_TARGET_VNNI HK_INLINE void kernel_k32(const uint8_t *tile, const gemm_activations *a, int in, int first_row,
                                         const int tile_rows, float *y, int out, int first_output, __mmask16 lanes,
                                         const int with_starts, const int with_mins) {
    __m512 acc[GEMM_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm512_setzero_ps();
    const size_t group_bytes = 8 * 64 + 128;
    for (int b = 0; b < in / HK_QK_K; b++) {
        __m512 block_acc[GEMM_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) block_acc[r] = _mm512_setzero_ps();
        for (int s = 0; s < 8; s++) {
            int g = 8 * b + s;
            const uint8_t *t = tile + (size_t)g * group_bytes;
            __m512i levels[8];
            for (int v = 0; v < 8; v++) levels[v] = _mm512_load_si512(t + 64 * v);
            __m512 scales = _mm512_load_ps((const float *)(t + 512)), mins = _mm512_load_ps((const float *)(t + 576));
            for (int r = 0; r < tile_rows; r++) {
                size_t row = (size_t)(first_row + r);
                const int8_t *block = a->values + row * a->row_stride + (size_t)b * a->block_stride;
                const int32_t *q = (const int32_t *)(block + 32 * s);
                __m512i sum = with_starts ? _mm512_set1_epi32(a->starts[row * (in / 32) + g]) : _mm512_setzero_si512();
                for (int v = 0; v < 8; v++) sum = _mm512_dpbusd_epi32(sum, levels[v], _mm512_set1_epi32(q[v]));
                block_acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scales, block_acc[r]);
                if (with_mins) {
                    block_acc[r] = _mm512_fnmadd_ps(mins, _mm512_set1_ps(a->group_sums[row * (in / 32) + g]), block_acc[r]);
                }
            }
        }
        for (int r = 0; r < tile_rows; r++) {
            size_t row = (size_t)(first_row + r);
            acc[r] = _mm512_fmadd_ps(block_acc[r], _mm512_set1_ps(a->scales[row * (in / HK_QK_K) + b]), acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        _mm512_mask_storeu_ps(y + (size_t)(first_row + r) * out + first_output, lanes, acc[r]);
    }
}

/// Groups of 16 values (Q6_K, Q3_K, Q2_K; four level vectors), integer start -offset * (activation group sum),
/// and with `with_mins` (Q2_K) - min * (activation group sum).
HK_TARGET_VNNI HK_INLINE void kernel_k16(const uint8_t *tile, const gemm_activations *a, int in, int first_row,
                                         const int tile_rows, float *y, int out, int first_output, __mmask16 lanes,
                                         const int with_mins) {
    __m512 acc[GEMM_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm512_setzero_ps();
    const size_t group_bytes = 4 * 64 + 128;
    int groups = in / 16;
    for (int b = 0; b < in / HK_QK_K; b++) {
        __m512 block_acc[GEMM_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) block_acc[r] = _mm512_setzero_ps();
        for (int s = 0; s < 16; s++) {
            int g = 16 * b + s;
            const uint8_t *t = tile + (size_t)g * group_bytes;
            __m512i levels[4];
            for (int v = 0; v < 4; v++) levels[v] = _mm512_load_si512(t + 64 * v);
            __m512 scales = _mm512_load_ps((const float *)(t + 256)), mins = _mm512_load_ps((const float *)(t + 320));
            for (int r = 0; r < tile_rows; r++) {
                size_t row = (size_t)(first_row + r);
                const int8_t *block = a->values + row * a->row_stride + (size_t)b * a->block_stride;
                const int32_t *q = (const int32_t *)(block + 16 * s);
                __m512i sum = _mm512_set1_epi32(a->starts[row * groups + g]);
                for (int v = 0; v < 4; v++) sum = _mm512_dpbusd_epi32(sum, levels[v], _mm512_set1_epi32(q[v]));
                block_acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scales, block_acc[r]);
                if (with_mins) {
                    block_acc[r] = _mm512_fnmadd_ps(mins, _mm512_set1_ps(a->group_sums[row * groups + g]), block_acc[r]);
                }
            }
        }
        for (int r = 0; r < tile_rows; r++) {
            size_t row = (size_t)(first_row + r);
            acc[r] = _mm512_fmadd_ps(block_acc[r], _mm512_set1_ps(a->scales[row * (in / HK_QK_K) + b]), acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        _mm512_mask_storeu_ps(y + (size_t)(first_row + r) * out + first_output, lanes, acc[r]);
    }
}

HK_TARGET_VNNI static void run_tile_vnni(int type, const uint8_t *tile, const gemm_activations *a, int in,
                                         int first_row, int tile_rows, float *y, int out, int first_output, int count) {
    __mmask16 lanes = (__mmask16)(count >= 16 ? 0xFFFF : (1u << count) - 1);
#define DISPATCH_ROWS(CALL)                                                                                    \
    switch (tile_rows) {                                                                                       \
    case 1: CALL(1); break;                                                                                    \
    case 2: CALL(2); break;                                                                                    \
    case 3: CALL(3); break;                                                                                    \
    case 4: CALL(4); break;                                                                                    \
    case 5: CALL(5); break;                                                                                    \
    case 6: CALL(6); break;                                                                                    \
    case 7: CALL(7); break;                                                                                    \
    default: CALL(8); break;                                                                                   \
    }
#define A32_CALL(n) kernel_a32(tile, a, in / 32, first_row, n, y, out, first_output, lanes, 0)
#define A32_MINS_CALL(n) kernel_a32(tile, a, in / 32, first_row, n, y, out, first_output, lanes, 1)
#define Q4_K_CALL(n) kernel_k32(tile, a, in, first_row, n, y, out, first_output, lanes, 0, 1)
#define IQ4_XS_CALL(n) kernel_k32(tile, a, in, first_row, n, y, out, first_output, lanes, 1, 0)
#define Q6_K_CALL(n) kernel_k16(tile, a, in, first_row, n, y, out, first_output, lanes, 0)
#define Q2_K_CALL(n) kernel_k16(tile, a, in, first_row, n, y, out, first_output, lanes, 1)
    if (type == HK_TYPE_Q4_K || type == HK_TYPE_Q5_K) {
        DISPATCH_ROWS(Q4_K_CALL);
    } else if (type == HK_TYPE_IQ4_XS) {
        DISPATCH_ROWS(IQ4_XS_CALL);
    } else if (type == HK_TYPE_Q6_K || type == HK_TYPE_Q3_K) {
        DISPATCH_ROWS(Q6_K_CALL);
    } else if (type == HK_TYPE_Q2_K) {
        DISPATCH_ROWS(Q2_K_CALL);
    } else if (hk_legacy_has_mins(type)) {
        DISPATCH_ROWS(A32_MINS_CALL);
    } else {
        DISPATCH_ROWS(A32_CALL);
    }
#undef A32_CALL
#undef A32_MINS_CALL
#undef Q4_K_CALL
#undef Q6_K_CALL
#undef IQ4_XS_CALL
#undef Q2_K_CALL
#undef DISPATCH_ROWS
}

// MARK: - Microkernels (AVX2)

/// Activation rows per AVX2 kernel call: with 8 outputs each needs a float accumulator, a per-block one (K
/// formats) and a 16-bit partial sum, which with the level vector fills the 16 ymm registers.
#define AVX2_TILE_ROWS 4

/// Adds to sums[r] (int32 x 8 outputs) the exact integer dot of one group for `tile_rows` activation rows:
/// `levels` is the group's first level vector plus the half's offset (vectors 64 bytes apart, four values per
/// int32 lane), rows[r] the row's first activation of the group.
HK_TARGET_AVX2 HK_INLINE void group_dot_avx2(const uint8_t *levels, const int vectors, const int8_t *const *rows,
                                             const int tile_rows, const int pairs_in_16_bits, const int signed_levels,
                                             __m256i *sums) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i partial[AVX2_TILE_ROWS];
    for (int v = 0; v < vectors; v++) {
        __m256i level = _mm256_load_si256((const __m256i *)(levels + 64 * v));
        // vpmaddubsw takes its first operand unsigned: signed levels go in as |level|, their sign onto the activation.
        __m256i magnitude = signed_levels ? _mm256_abs_epi8(level) : level;
        for (int r = 0; r < tile_rows; r++) {
            int32_t word;
            memcpy(&word, rows[r] + 4 * v, sizeof(word));
            __m256i activation = _mm256_set1_epi32(word);
            if (signed_levels) activation = _mm256_sign_epi8(activation, level);
            __m256i product = _mm256_maddubs_epi16(magnitude, activation);
            partial[r] = v % pairs_in_16_bits == 0 ? product : _mm256_add_epi16(partial[r], product);
            if (v % pairs_in_16_bits == pairs_in_16_bits - 1 || v == vectors - 1) {
                sums[r] = _mm256_add_epi32(sums[r], _mm256_madd_epi16(partial[r], ones));
            }
        }
    }
}

/// Stores 8 outputs of one row, the first `count` of them.
HK_TARGET_AVX2 HK_INLINE void store_outputs_avx2(float *y, __m256 values, int count) {
    if (count >= 8) {
        _mm256_storeu_ps(y, values);
    } else {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskstore_ps(y, mask, values);
    }
}

/// kernel_a32 for 8 outputs (half `half` of the tile) and up to AVX2_TILE_ROWS rows.
HK_TARGET_AVX2 HK_INLINE void kernel_a32_avx2(const uint8_t *tile, const gemm_activations *a, int groups, int first_row,
                                              const int tile_rows, float *y, int out, int first_output, int half,
                                              const int with_mins, const int pairs_in_16_bits, const int signed_levels) {
    __m256 acc[AVX2_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm256_setzero_ps();
    const size_t group_bytes = 8 * 64 + 128;
    for (int g = 0; g < groups; g++) {
        const uint8_t *t = tile + (size_t)g * group_bytes;
        const int8_t *rows[AVX2_TILE_ROWS];
        __m256i sums[AVX2_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) {
            size_t row = (size_t)(first_row + r);
            rows[r] = a->values + row * a->row_stride + 32 * (size_t)g;
            sums[r] = _mm256_set1_epi32(a->starts[row * groups + g]);
        }
        group_dot_avx2(t + 32 * half, 8, rows, tile_rows, pairs_in_16_bits, signed_levels, sums);
        __m256 scales = _mm256_load_ps((const float *)(t + 512) + 8 * half);
        for (int r = 0; r < tile_rows; r++) {
            size_t row = (size_t)(first_row + r);
            __m256 scale = _mm256_mul_ps(scales, _mm256_set1_ps(a->scales[row * groups + g]));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r]), scale, acc[r]);
            if (with_mins) {
                acc[r] = _mm256_fnmadd_ps(_mm256_load_ps((const float *)(t + 576) + 8 * half),
                                          _mm256_set1_ps(a->group_sums[row * groups + g]), acc[r]);
            }
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        store_outputs_avx2(y + (size_t)(first_row + r) * out + first_output + 8 * half, acc[r],
                           out - first_output - 8 * half);
    }
}

/// kernel_k32 and kernel_k16 for 8 outputs (half `half` of the tile) and up to AVX2_TILE_ROWS rows: groups of
/// `group` values over Q8_K activations, started at -offset * (activation group sum) (zero where the offset is).
HK_TARGET_AVX2 HK_INLINE void kernel_k_avx2(const uint8_t *tile, const gemm_activations *a, int in, int first_row,
                                            const int tile_rows, float *y, int out, int first_output, int half,
                                            const int group, const int with_mins, const int pairs_in_16_bits,
                                            const int signed_levels) {
    __m256 acc[AVX2_TILE_ROWS];
    for (int r = 0; r < tile_rows; r++) acc[r] = _mm256_setzero_ps();
    const int vectors = group / 4, groups = in / group, groups_per_block = HK_QK_K / group;
    const size_t group_bytes = (size_t)vectors * 64 + 128;
    for (int b = 0; b < in / HK_QK_K; b++) {
        __m256 block_acc[AVX2_TILE_ROWS];
        for (int r = 0; r < tile_rows; r++) block_acc[r] = _mm256_setzero_ps();
        for (int s = 0; s < groups_per_block; s++) {
            int g = groups_per_block * b + s;
            const uint8_t *t = tile + (size_t)g * group_bytes;
            const int8_t *rows[AVX2_TILE_ROWS];
            __m256i sums[AVX2_TILE_ROWS];
            for (int r = 0; r < tile_rows; r++) {
                size_t row = (size_t)(first_row + r);
                rows[r] = a->values + row * a->row_stride + (size_t)b * a->block_stride + (size_t)group * s;
                sums[r] = _mm256_set1_epi32(a->starts[row * groups + g]);
            }
            group_dot_avx2(t + 32 * half, vectors, rows, tile_rows, pairs_in_16_bits, signed_levels, sums);
            __m256 scales = _mm256_load_ps((const float *)(t + 64 * vectors) + 8 * half);
            for (int r = 0; r < tile_rows; r++) {
                block_acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r]), scales, block_acc[r]);
                if (with_mins) {
                    size_t row = (size_t)(first_row + r);
                    block_acc[r] = _mm256_fnmadd_ps(_mm256_load_ps((const float *)(t + 64 * vectors + 64) + 8 * half),
                                                    _mm256_set1_ps(a->group_sums[row * groups + g]), block_acc[r]);
                }
            }
        }
        for (int r = 0; r < tile_rows; r++) {
            size_t row = (size_t)(first_row + r);
            acc[r] = _mm256_fmadd_ps(block_acc[r], _mm256_set1_ps(a->scales[row * (in / HK_QK_K) + b]), acc[r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        store_outputs_avx2(y + (size_t)(first_row + r) * out + first_output + 8 * half, acc[r],
                           out - first_output - 8 * half);
    }
}

/// One repacked tile (count outputs) against tile_rows <= GEMM_TILE_ROWS rows, in row groups of AVX2_TILE_ROWS.
///
/// Per type the level vectors whose 16-bit pair sums may be added before widening: each pair is at most
/// 2 * (largest level) * 127 (activations are within +-127) and their sum must stay below 2^15, so 8 for
/// levels up to 15 (Q4_0, Q4_1, Q4_K: 8 * 3810), 4 up to 31 (Q5_0, Q5_1, Q5_K: 4 * 7874), 2 up to 63 (Q6_K),
/// a whole group of 16 up to 7 (Q3_K, Q2_K), and 1 for the signed levels (|level| <= 128: 32512 already).
HK_TARGET_AVX2 static void run_tile_avx2(int type, const uint8_t *tile, const gemm_activations *a, int in,
                                         int first_row, int tile_rows, float *y, int out, int first_output, int count) {
    for (int half = 0; half < 2 && 8 * half < count; half++) {
        for (int row = first_row; row < first_row + tile_rows; row += AVX2_TILE_ROWS) {
            int rows = first_row + tile_rows - row < AVX2_TILE_ROWS ? first_row + tile_rows - row : AVX2_TILE_ROWS;
#define DISPATCH_ROWS(CALL, ...)                                                                               \
    switch (rows) {                                                                                            \
    case 1: CALL(1, __VA_ARGS__); break;                                                                       \
    case 2: CALL(2, __VA_ARGS__); break;                                                                       \
    case 3: CALL(3, __VA_ARGS__); break;                                                                       \
    default: CALL(4, __VA_ARGS__); break;                                                                      \
    }
#define A32(n, mins, pairs, signed_levels)                                                                     \
    kernel_a32_avx2(tile, a, in / 32, row, n, y, out, first_output, half, mins, pairs, signed_levels)
#define K(n, group, mins, pairs, signed_levels)                                                                \
    kernel_k_avx2(tile, a, in, row, n, y, out, first_output, half, group, mins, pairs, signed_levels)
            // Arguments after the kernel: (group,) with mins, level vectors per 16-bit sum, signed levels.
            switch (type) {
            case HK_TYPE_Q8_0: case HK_TYPE_IQ4_NL: DISPATCH_ROWS(A32, 0, 1, 1); break;
            case HK_TYPE_Q4_0: DISPATCH_ROWS(A32, 0, 8, 0); break;
            case HK_TYPE_Q4_1: DISPATCH_ROWS(A32, 1, 8, 0); break;
            case HK_TYPE_Q5_0: DISPATCH_ROWS(A32, 0, 4, 0); break;
            case HK_TYPE_Q5_1: DISPATCH_ROWS(A32, 1, 4, 0); break;
            case HK_TYPE_IQ4_XS: DISPATCH_ROWS(K, 32, 0, 1, 1); break;
            case HK_TYPE_Q4_K: DISPATCH_ROWS(K, 32, 1, 8, 0); break;
            case HK_TYPE_Q5_K: DISPATCH_ROWS(K, 32, 1, 4, 0); break;
            case HK_TYPE_Q2_K: DISPATCH_ROWS(K, 16, 1, 4, 0); break;
            case HK_TYPE_Q3_K: DISPATCH_ROWS(K, 16, 0, 4, 0); break;
            default: DISPATCH_ROWS(K, 16, 0, 2, 0); break; // Q6_K
            }
#undef A32
#undef K
#undef DISPATCH_ROWS
        }
    }
}

// MARK: - Int8 GEMM driver

/// What the threads of one int8 GEMM share: thread t repacks a chunk into its part of `buffers`.
typedef struct {
    int type, isa, rows, in, out, tiles;
    const void *w;
    size_t row_bytes, one_tile, buffer_bytes;
    const gemm_activations *a;
    float *y;
    uint8_t *buffers;
} int8_product;

enum { INT8_ROW_BLOCK = 8 * GEMM_TILE_ROWS }; // rows per claimed block (a multiple of GEMM_TILE_ROWS)

static void repack_chunk(void *context, int thread, int chunk) {
    const int8_product *p = context;
    uint8_t *buffer = p->buffers + (size_t)thread * p->buffer_bytes, *levels = buffer + CHUNK_TILES * p->one_tile;
    int first_tile = chunk * CHUNK_TILES, chunk_tiles = p->tiles - first_tile < CHUNK_TILES ? p->tiles - first_tile : CHUNK_TILES;
    for (int t = 0; t < chunk_tiles; t++) {
        int first_output = (first_tile + t) * TILE_OUTPUTS;
        int count = p->out - first_output < TILE_OUTPUTS ? p->out - first_output : TILE_OUTPUTS;
        if (p->isa == HK_ISA_AVX512) {
            repack_tile_vnni(p->type, p->w, p->row_bytes, p->in, first_output, count, buffer + t * p->one_tile, levels);
        } else {
            repack_tile_avx2(p->type, p->w, p->row_bytes, p->in, first_output, count, buffer + t * p->one_tile, levels);
        }
    }
}

static void run_chunk_block(void *context, int thread, int chunk, int block) {
    const int8_product *p = context;
    const uint8_t *buffer = p->buffers + (size_t)thread * p->buffer_bytes;
    int first_tile = chunk * CHUNK_TILES, chunk_tiles = p->tiles - first_tile < CHUNK_TILES ? p->tiles - first_tile : CHUNK_TILES;
    int end_row = (block + 1) * INT8_ROW_BLOCK < p->rows ? (block + 1) * INT8_ROW_BLOCK : p->rows;
    for (int first_row = block * INT8_ROW_BLOCK; first_row < end_row; first_row += GEMM_TILE_ROWS) {
        int tile_rows = end_row - first_row < GEMM_TILE_ROWS ? end_row - first_row : GEMM_TILE_ROWS;
        for (int t = 0; t < chunk_tiles; t++) {
            int first_output = (first_tile + t) * TILE_OUTPUTS;
            int count = p->out - first_output < TILE_OUTPUTS ? p->out - first_output : TILE_OUTPUTS;
            const uint8_t *tile = buffer + t * p->one_tile;
            if (p->isa == HK_ISA_AVX512) {
                run_tile_vnni(p->type, tile, p->a, p->in, first_row, tile_rows, p->y, p->out, first_output, count);
            } else {
                run_tile_avx2(p->type, tile, p->a, p->in, first_row, tile_rows, p->y, p->out, first_output, count);
            }
        }
    }
}

/// isa: HK_ISA_AVX512 (VNNI) or HK_ISA_AVX2. Each thread repacks its contiguous share of the chunks one at a time
/// and runs every row tile over it, then helps finish the other chunks' row blocks (hk_share_units); a row's
/// results do not depend on the thread count or on who ran it.
static int int8_gemm(int type, int isa, const void *w, const float *x, float *y, int rows, int in, int out) {
    gemm_activations a;
    if (prepare_activations(type, isa, x, rows, in, &a) != 0) return -1;
    int tiles = (out + TILE_OUTPUTS - 1) / TILE_OUTPUTS;
    int chunks = (tiles + CHUNK_TILES - 1) / CHUNK_TILES;
    int threads = hk_thread_count();
    if ((size_t)rows * in * out < ((size_t)1 << 22)) threads = 1;
    if (threads > chunks) threads = chunks;
    int8_product product = {type, isa, rows, in, out, tiles, w, hk_quant_row_bytes(type, in), tile_bytes(type, in), 0, &a, y, NULL};
    product.buffer_bytes = (CHUNK_TILES * product.one_tile + (size_t)TILE_OUTPUTS * in + 64 + 63) / 64 * 64;
    product.buffers = aligned_alloc(64, (size_t)threads * product.buffer_bytes);
    hk_shared_unit *units = hk_shared_units_new(chunks);
    if (product.buffers == NULL || units == NULL) {
        free(product.buffers);
        free(units);
        return -1;
    }
    const hk_shared_work work = {&product, repack_chunk, run_chunk_block};
    const int blocks = (rows + INT8_ROW_BLOCK - 1) / INT8_ROW_BLOCK;
#pragma omp parallel num_threads(threads)
    {
        size_t first_chunk, end_chunk;
        hk_split_range((size_t)chunks, omp_get_thread_num(), omp_get_num_threads(), &first_chunk, &end_chunk);
        hk_share_units(&work, units, chunks, blocks, (int)first_chunk, (int)end_chunk, omp_get_thread_num());
    }
    free(product.buffers);
    free(units);
    return 0;
}

// MARK: - Dequantize + sgemm

static void ensure_single_threaded_blas(void) {
    static int done = 0;
    if (!done) {
        openblas_set_num_threads(1);
        done = 1;
    }
}

int hk_matmul_many_quant_sgemm(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                               float *y /* [rows, out] */, int rows, int in, int out) {
    // The IQ/TQ formats (no integer kernel here) take this path for every row count.
    if (!(type == HK_TYPE_Q8_0 || type == HK_TYPE_Q4_0 || type == HK_TYPE_Q4_K || type == HK_TYPE_Q6_K ||
          hk_is_legacy_type(type) || hk_is_k_more_type(type) || hk_is_iq_type(type)) ||
        in % hk_quant_block_size(type) != 0) {
        return -1;
    }
    if (rows <= 0 || out <= 0) return 0;
    ensure_single_threaded_blas();
    size_t row_bytes = hk_quant_row_bytes(type, in);
    // Tile height: about 1-2 MB of f32 per thread, a multiple of 16 rows (as hk_matmul_many).
    int tile = (1 << 19) / in;
    if (tile < 16) tile = 16;
    if (tile > 512) tile = 512;
    tile = (tile + 15) / 16 * 16;
    int tiles = (out + tile - 1) / tile;
    int threads = hk_thread_count();
    if ((size_t)rows * in * out < ((size_t)1 << 22)) threads = 1;
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *buffer = aligned_alloc(64, ((size_t)tile * in * sizeof(float) + 63) / 64 * 64);
        if (buffer == NULL) {
            failed = 1;
        } else {
#pragma omp for schedule(static)
            for (int t = 0; t < tiles; t++) {
                int begin = t * tile;
                int count = out - begin < tile ? out - begin : tile;
                for (int o = 0; o < count; o++) {
                    const uint8_t *row = (const uint8_t *)w + (size_t)(begin + o) * row_bytes;
                    hk_dequantize_row(type, row, buffer + (size_t)o * in, in);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, count, in, 1.0f, x, in, buffer, in, 0.0f,
                            y + begin, out);
            }
        }
        free(buffer);
    }
    return failed ? -1 : 0;
}

// MARK: - Dispatch

int hk_matmul_many_quant(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                         float *y /* [rows, out] */, int rows, int in, int out) {
    if (!(type == HK_TYPE_Q8_0 || type == HK_TYPE_Q4_0 || type == HK_TYPE_Q4_K || type == HK_TYPE_Q6_K ||
          hk_is_legacy_type(type) || hk_is_k_more_type(type)) ||
        in % hk_quant_block_size(type) != 0) {
        return -1;
    }
    if (rows <= 0 || out <= 0) return 0;
    // Up to 16 rows the row kernel is as fast or faster (the repack costs about as much as decoding the
    // weights once, measured crossover 16 rows on [5632, 2048]); below AVX2 the row kernel does all.
    int isa = hk_quant_isa();
    if (rows < GEMM_MIN_ROWS || isa == HK_ISA_SCALAR) return hk_matmul_rows_quant(type, w, x, y, rows, in, out);
    return int8_gemm(type, isa, w, x, y, rows, in, out);
}
