// Private helpers shared by the kernel files: ISA target attributes, thread partitioning, scalar
// f16/bf16 conversions, and vector building blocks (exp, horizontal sums). Not part of the public API.
#ifndef HK_INTERNAL_H
#define HK_INTERNAL_H

#include "hone_kernels.h"
#include "hone_openmp.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

// MARK: - Targets

// Per-function targets, never global -m flags: the same binary must run on CPUs without AVX-512.
#define HK_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define HK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define HK_INLINE static inline __attribute__((always_inline))
#define HK_HIDDEN __attribute__((visibility("hidden")))

// MARK: - Threads

/// The thread count every parallel region uses (hk_set_threads, else OpenMP's default). Kept in a
/// process-wide variable because omp_set_num_threads only affects the calling thread, and Swift calls
/// kernels from many threads.
HK_HIDDEN int hk_thread_count(void);

/// Splits [0, total) into `parts` contiguous pieces that differ in size by at most one; piece `part`
/// is [*begin, *end). Deterministic, so a given thread count always gives the same partition.
static inline void hk_split_range(size_t total, int part, int parts, size_t *begin, size_t *end) {
    size_t base = total / (size_t)parts, extra = total % (size_t)parts, index = (size_t)part;
    *begin = index * base + (index < extra ? index : extra);
    *end = *begin + base + (index < extra ? 1 : 0);
}

/// A unit of a parallel matrix product (a group of packed panels, a chunk of repacked tiles): the same row blocks
/// for every unit, claimed one at a time by whichever threads work on it. Alone on its cache line.
typedef struct {
    int next_block;
    char padding[64 - sizeof(int)];
} hk_shared_unit;

/// What a thread does with the units it takes part in, with its own buffers: `prepare` packs unit u's weights
/// (once per unit and thread, at its first claimed block), `run` multiplies row block b of unit u.
typedef struct {
    void *context;
    void (*prepare)(void *context, int thread, int unit);
    void (*run)(void *context, int thread, int unit, int block);
} hk_shared_work;

/// Called by every member of a parallel region: `thread` runs units [own_begin, own_end) (its contiguous share),
/// then, as the sharing mode says (hk_set_gemm_sharing), helps finish the other units, latest first: a unit nobody
/// has started, or one with at least two blocks left (packing costs about a sixth of a block's products). Each
/// block is run exactly once, so the products do not depend on who ran what, as long as every unit is some
/// member's own.
/// `count` units with nothing claimed yet (64-byte aligned; free with free), or NULL when out of memory.
HK_HIDDEN hk_shared_unit *hk_shared_units_new(int count);
HK_HIDDEN void hk_share_units(const hk_shared_work *work, hk_shared_unit *units, int unit_count, int blocks,
                              int own_begin, int own_end, int thread);

/// Elementwise kernels below this many elements run on the calling thread: forking a team costs a few
/// microseconds, about what one core needs to stream this much memory.
#define HK_PARALLEL_ELEMENTS ((size_t)1 << 16)

// MARK: - Scalar conversions (the definitions the references use)

static inline uint32_t hk_float_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline float hk_bits_float(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/// IEEE half to single. A signalling NaN comes back quiet (payload kept), as vcvtph2ps does.
static inline float hk_f16_to_f32_scalar(uint16_t half) {
    uint32_t sign = (uint32_t)(half & 0x8000) << 16;
    uint32_t exponent = (half >> 10) & 0x1F;
    uint32_t mantissa = half & 0x3FF;
    uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13) | (mantissa != 0 ? 0x00400000u : 0);
    } else if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {
            // Subnormal: shift the mantissa up until its leading one becomes the implicit bit.
            uint32_t single_exponent = 127 - 15 + 1;
            while ((mantissa & 0x400) == 0) {
                mantissa <<= 1;
                single_exponent--;
            }
            bits = sign | (single_exponent << 23) | ((mantissa & 0x3FF) << 13);
        }
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    return hk_bits_float(bits);
}

/// Single to IEEE half, round to nearest even; overflow gives infinity; NaN stays a quiet NaN with the
/// top of its payload (what vcvtps2ph does).
static inline uint16_t hk_f32_to_f16_scalar(float value) {
    uint32_t bits = hk_float_bits(value);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    uint32_t exponent = (bits >> 23) & 0xFF;
    uint32_t mantissa = bits & 0x7FFFFF;
    if (exponent == 0xFF) {
        return (uint16_t)(sign | 0x7C00 | (mantissa != 0 ? 0x0200 | (mantissa >> 13) : 0));
    }
    int half_exponent = (int)exponent - 127 + 15;
    if (half_exponent >= 31) return (uint16_t)(sign | 0x7C00);
    if (half_exponent <= 0) {
        // Result is a half subnormal (or zero): count units of 2^-24. The value is
        // (mantissa | implicit) * 2^(exponent - 150), so the unit count is that shifted right by 126 - exponent.
        if (exponent <= 101) return sign; // below half the smallest subnormal (ties of 2^-25 go to even 0)
        uint32_t significand = mantissa | 0x800000;
        uint32_t shift = 126 - exponent; // 14 ... 25
        uint32_t units = significand >> shift;
        uint32_t remainder = significand & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (remainder > halfway || (remainder == halfway && (units & 1))) units++;
        return (uint16_t)(sign | units); // rounding up from 0x3FF correctly gives the smallest normal
    }
    uint32_t result = ((uint32_t)half_exponent << 10) | (mantissa >> 13);
    uint32_t remainder = mantissa & 0x1FFF;
    // A carry out of the mantissa bumps the exponent, which is the right answer (up to infinity).
    if (remainder > 0x1000 || (remainder == 0x1000 && (result & 1))) result++;
    return (uint16_t)(sign | result);
}

static inline float hk_bf16_to_f32_scalar(uint16_t bf16) { return hk_bits_float((uint32_t)bf16 << 16); }

/// Single to bfloat16 exactly as torch rounds: add 0x7FFF plus the lowest kept bit, then truncate;
/// NaN keeps its sign and top payload and is made quiet.
static inline uint16_t hk_f32_to_bf16_scalar(float value) {
    uint32_t bits = hk_float_bits(value);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040);
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
}

// MARK: - AVX-512 building blocks

/// exp(x) for 16 lanes: Cephes' degree-6 polynomial on x - n ln2, |x - n ln2| <= ln2 / 2, then
/// scalef by n (which overflows to +inf and underflows through subnormals to 0 like expf). About
/// 2 ulp from expf.
HK_TARGET_AVX512 HK_INLINE __m512 hk_exp_avx512(__m512 x) {
    // Clamp first so that x * log2(e) stays finite; +-150 is already beyond overflow and underflow.
    // The constant goes first: min/max return their second operand when one is NaN, so NaN survives.
    x = _mm512_max_ps(_mm512_set1_ps(-150.0f), _mm512_min_ps(_mm512_set1_ps(150.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // ln 2 split in a part exact in f32 times small n and a correction, so r keeps its low bits.
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r_squared = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r_squared, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

HK_TARGET_AVX512 HK_INLINE __mmask16 hk_tail_mask16(size_t count) {
    return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
}

/// columns[j][i] = rows[i][j] for 16 rows of 16 floats in registers: three rounds of shuffles (pairs of floats,
/// pairs of doubles, 128-bit lanes).
HK_TARGET_AVX512 HK_INLINE void hk_transpose_16x16(const __m512 rows[16], __m512 columns[16]) {
    __m512 r[16], t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // Now 128-bit lane l of r[4i + q] holds column 4l + q of rows 4i..4i+3; gather the four lanes of each column.
    for (int q = 0; q < 4; q++) {
        __m512 even01 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88), odd01 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xdd);
        __m512 even23 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
        __m512 odd23 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xdd);
        columns[q] = _mm512_shuffle_f32x4(even01, even23, 0x88);
        columns[4 + q] = _mm512_shuffle_f32x4(odd01, odd23, 0x88);
        columns[8 + q] = _mm512_shuffle_f32x4(even01, even23, 0xdd);
        columns[12 + q] = _mm512_shuffle_f32x4(odd01, odd23, 0xdd);
    }
}

// The f32 panel micro-kernel (gemm.c), shared with attention's many-query path.
enum {
    HK_PANEL_WIDTH = 32,  // outputs per packed panel: two 16-float vectors
    HK_PANEL_ROWS = 14,   // rows per micro-kernel call: 28 accumulators, 2 panel vectors, 1 broadcast
};

/// y[r, 0..<32] = sum_k x[r, k] * panel[k, 0..<32] for r < row_count (1–14), each sum in k order; `low` and `high`
/// mask the stores of the two output vectors.
HK_HIDDEN void hk_panel_micro_kernel_rows(int row_count, const float *x /* [row_count, ldx] */, size_t ldx,
                                          const float *panel /* [in, 32] */, int in, float *y /* [row_count, ldy] */,
                                          size_t ldy, __mmask16 low, __mmask16 high);

/// The largest of a logits row, as hk_row_max_avx2 (shared by the log-softmax forward and backward).
HK_TARGET_AVX512 HK_INLINE float hk_row_max_avx512(const float *logits, int vocab) {
    __m512 maxima[2] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY)};
    int i = 0;
    for (; i + 32 <= vocab; i += 32) {
        maxima[0] = _mm512_max_ps(maxima[0], _mm512_loadu_ps(logits + i));
        maxima[1] = _mm512_max_ps(maxima[1], _mm512_loadu_ps(logits + i + 16));
    }
    for (; i < vocab; i += 16) {
        maxima[0] = _mm512_max_ps(maxima[0], _mm512_mask_loadu_ps(maxima[0], hk_tail_mask16((size_t)(vocab - i)), logits + i));
    }
    return _mm512_reduce_max_ps(_mm512_max_ps(maxima[0], maxima[1]));
}

// MARK: - AVX2 building blocks

/// exp(x) for 8 lanes, same polynomial as hk_exp_avx512. Without scalef, 2^n is built from exponent
/// bits in two halves so n = 128 (x just below the overflow threshold) and n = -126 stay representable;
/// beyond the thresholds the result is set to +inf or 0 as expf gives.
HK_TARGET_AVX2 HK_INLINE __m256 hk_exp_avx2(__m256 x) {
    const __m256 overflow = _mm256_set1_ps(88.72283935546875f);   // ln(FLT_MAX), rounded down
    const __m256 underflow = _mm256_set1_ps(-87.33654022216797f); // ln(FLT_MIN); below, results are ~0
    __m256 clamped = _mm256_max_ps(_mm256_min_ps(x, overflow), underflow);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), clamped);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r_squared = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r_squared, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i exponent = _mm256_cvtps_epi32(n); // n is integral already
    __m256i first_half = _mm256_srai_epi32(exponent, 1);
    __m256i second_half = _mm256_sub_epi32(exponent, first_half);
    __m256 first_scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(first_half, _mm256_set1_epi32(127)), 23));
    __m256 second_scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(second_half, _mm256_set1_epi32(127)), 23));
    __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, first_scale), second_scale);
    result = _mm256_blendv_ps(result, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, overflow, _CMP_GT_OQ));
    result = _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, underflow, _CMP_LT_OQ));
    // NaN in, NaN out (the clamps above would have replaced it).
    return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

HK_TARGET_AVX2 HK_INLINE float hk_sum_avx2(__m256 v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
}

HK_TARGET_AVX2 HK_INLINE float hk_max_avx2(__m256 v) {
    __m128 max = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    max = _mm_max_ps(max, _mm_movehl_ps(max, max));
    max = _mm_max_ss(max, _mm_movehdup_ps(max));
    return _mm_cvtss_f32(max);
}

/// The largest of a logits row (the log-softmax shift), the same way in the forward and backward kernels so both
/// give the same bits.
HK_TARGET_AVX2 HK_INLINE float hk_row_max_avx2(const float *logits, int vocab) {
    int vector_end = vocab & ~7;
    __m256 maxima[2] = {_mm256_set1_ps(-INFINITY), _mm256_set1_ps(-INFINITY)};
    int i = 0;
    for (; i + 16 <= vector_end; i += 16) {
        maxima[0] = _mm256_max_ps(maxima[0], _mm256_loadu_ps(logits + i));
        maxima[1] = _mm256_max_ps(maxima[1], _mm256_loadu_ps(logits + i + 8));
    }
    for (; i < vector_end; i += 8) maxima[0] = _mm256_max_ps(maxima[0], _mm256_loadu_ps(logits + i));
    float max_logit = hk_max_avx2(_mm256_max_ps(maxima[0], maxima[1]));
    for (; i < vocab; i++) max_logit = logits[i] > max_logit ? logits[i] : max_logit;
    return max_logit;
}

/// Lane mask for _mm256_maskload_ps / _mm256_maskstore_ps covering the first `count` (< 8) lanes.
HK_TARGET_AVX2 HK_INLINE __m256i hk_tail_mask8(size_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// dst[k][j] = src[j][k] for an 8×8 block: unpack pairs, shuffle quads, exchange 128-bit halves.
HK_TARGET_AVX2 HK_INLINE void hk_transpose_8x8_avx2(const float *src /* [8, lds] */, size_t lds, float *dst /* [8, ldd] */,
                                                    size_t ldd) {
    __m256 rows[8], pairs[8], quads[8];
    for (int i = 0; i < 8; i++) rows[i] = _mm256_loadu_ps(src + (size_t)i * lds);
    for (int i = 0; i < 8; i += 2) {
        pairs[i] = _mm256_unpacklo_ps(rows[i], rows[i + 1]);      // columns 0, 1 | 4, 5 of rows i, i + 1
        pairs[i + 1] = _mm256_unpackhi_ps(rows[i], rows[i + 1]);  // columns 2, 3 | 6, 7
    }
    for (int half = 0; half < 2; half++) {  // rows 0..3, then 4..7
        const __m256 *p = pairs + 4 * half;
        quads[4 * half + 0] = _mm256_shuffle_ps(p[0], p[2], 0x44);  // column 0 | 4
        quads[4 * half + 1] = _mm256_shuffle_ps(p[0], p[2], 0xEE);  // column 1 | 5
        quads[4 * half + 2] = _mm256_shuffle_ps(p[1], p[3], 0x44);  // column 2 | 6
        quads[4 * half + 3] = _mm256_shuffle_ps(p[1], p[3], 0xEE);  // column 3 | 7
    }
    for (int c = 0; c < 4; c++) {
        _mm256_storeu_ps(dst + (size_t)c * ldd, _mm256_permute2f128_ps(quads[c], quads[4 + c], 0x20));
        _mm256_storeu_ps(dst + (size_t)(c + 4) * ldd, _mm256_permute2f128_ps(quads[c], quads[4 + c], 0x31));
    }
}

// The AVX2 f32 panel micro-kernel (gemm.c), shared with attention's many-query path.
enum {
    HK_PANEL_WIDTH_AVX2 = 16,  // outputs per packed panel: two 8-float vectors
    HK_PANEL_ROWS_AVX2 = 6,    // rows per micro-kernel call: 12 accumulators, 2 panel vectors, 1 broadcast
};

/// y[r, 0..<16] = sum_k x[r, k] * panel[k, 0..<16] for r < row_count (1–6), each sum in k order; `low` and `high`
/// mask the stores of the two output vectors.
HK_HIDDEN HK_TARGET_AVX2 void hk_panel_micro_kernel_rows_avx2(int row_count, const float *x /* [row_count, ldx] */,
                                                              size_t ldx, const float *panel /* [in, 16] */, int in,
                                                              float *y /* [row_count, ldy] */, size_t ldy, __m256i low,
                                                              __m256i high);

#endif
