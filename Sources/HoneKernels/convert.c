// Conversions between f32 (compute) and f16 / bf16 (storage).
#include "hk_internal.h"

// MARK: - Parallel driver

/// Converts elements [begin, end) of source into destination (both indexed from 0).
typedef void (*conversion_span)(const void *source, void *destination, size_t begin, size_t end);

/// Runs a span over [0, n), split into one contiguous piece per thread when n is large enough that
/// two cores' memory bandwidth beats one core's.
static void convert_in_parallel(conversion_span span, const void *source, void *destination, size_t n) {
    int threads = hk_thread_count();
    if (n < HK_PARALLEL_ELEMENTS || threads <= 1) {
        span(source, destination, 0, n);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t begin, end;
        hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        span(source, destination, begin, end);
    }
}

// MARK: - f16 to f32

void hk_convert_f16_to_f32_ref(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = hk_f16_to_f32_scalar(src[i]);
}

static void f16_to_f32_scalar(const void *source, void *destination, size_t begin, size_t end) {
    const uint16_t *src = source;
    float *dst = destination;
    for (size_t i = begin; i < end; i++) dst[i] = hk_f16_to_f32_scalar(src[i]);
}

HK_TARGET_AVX2 static void f16_to_f32_avx2(const void *source, void *destination, size_t begin, size_t end) {
    const uint16_t *src = source;
    float *dst = destination;
    size_t i = begin;
    for (; i + 8 <= end; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    }
    for (; i < end; i++) dst[i] = hk_f16_to_f32_scalar(src[i]);
}

HK_TARGET_AVX512 static void f16_to_f32_avx512(const void *source, void *destination, size_t begin, size_t end) {
    const uint16_t *src = source;
    float *dst = destination;
    size_t i = begin;
    for (; i + 16 <= end; i += 16) {
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    }
    if (i < end) {
        __mmask16 mask = hk_tail_mask16(end - i);
        _mm512_mask_storeu_ps(dst + i, mask, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, src + i)));
    }
}

void hk_convert_f16_to_f32(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: convert_in_parallel(f16_to_f32_avx512, src, dst, n); break;
    case HK_ISA_AVX2: convert_in_parallel(f16_to_f32_avx2, src, dst, n); break;
    default: convert_in_parallel(f16_to_f32_scalar, src, dst, n); break;
    }
}

// MARK: - bf16 to f32

void hk_convert_bf16_to_f32_ref(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = hk_bf16_to_f32_scalar(src[i]);
}

static void bf16_to_f32_scalar(const void *source, void *destination, size_t begin, size_t end) {
    const uint16_t *src = source;
    float *dst = destination;
    for (size_t i = begin; i < end; i++) dst[i] = hk_bf16_to_f32_scalar(src[i]);
}

HK_TARGET_AVX2 static void bf16_to_f32_avx2(const void *source, void *destination, size_t begin, size_t end) {
    const uint16_t *src = source;
    float *dst = destination;
    size_t i = begin;
    for (; i + 8 <= end; i += 8) {
        __m256i widened = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(widened, 16));
    }
    for (; i < end; i++) dst[i] = hk_bf16_to_f32_scalar(src[i]);
}

HK_TARGET_AVX512 static void bf16_to_f32_avx512(const void *source, void *destination, size_t begin, size_t end) {
    const uint16_t *src = source;
    float *dst = destination;
    size_t i = begin;
    for (; i + 16 <= end; i += 16) {
        __m512i widened = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(widened, 16));
    }
    if (i < end) {
        __mmask16 mask = hk_tail_mask16(end - i);
        __m512i widened = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, src + i));
        _mm512_mask_storeu_epi32(dst + i, mask, _mm512_slli_epi32(widened, 16));
    }
}

void hk_convert_bf16_to_f32(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: convert_in_parallel(bf16_to_f32_avx512, src, dst, n); break;
    case HK_ISA_AVX2: convert_in_parallel(bf16_to_f32_avx2, src, dst, n); break;
    default: convert_in_parallel(bf16_to_f32_scalar, src, dst, n); break;
    }
}

// MARK: - f32 to f16

void hk_convert_f32_to_f16_ref(const float *src /* [n] */, uint16_t *dst /* [n] */, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = hk_f32_to_f16_scalar(src[i]);
}

static void f32_to_f16_scalar(const void *source, void *destination, size_t begin, size_t end) {
    const float *src = source;
    uint16_t *dst = destination;
    for (size_t i = begin; i < end; i++) dst[i] = hk_f32_to_f16_scalar(src[i]);
}

// vcvtps2ph with an explicit rounding immediate rounds to nearest even regardless of MXCSR, handles
// subnormal halves, and turns NaN into a quiet NaN with the top payload bits: the scalar definition.
HK_TARGET_AVX2 static void f32_to_f16_avx2(const void *source, void *destination, size_t begin, size_t end) {
    const float *src = source;
    uint16_t *dst = destination;
    size_t i = begin;
    for (; i + 8 <= end; i += 8) {
        __m128i halves = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), halves);
    }
    for (; i < end; i++) dst[i] = hk_f32_to_f16_scalar(src[i]);
}

HK_TARGET_AVX512 static void f32_to_f16_avx512(const void *source, void *destination, size_t begin, size_t end) {
    const float *src = source;
    uint16_t *dst = destination;
    size_t i = begin;
    for (; i + 16 <= end; i += 16) {
        __m256i halves = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256((__m256i *)(dst + i), halves);
    }
    if (i < end) {
        __mmask16 mask = hk_tail_mask16(end - i);
        __m256i halves =
            _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mask, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, mask, halves);
    }
}

void hk_convert_f32_to_f16(const float *src /* [n] */, uint16_t *dst /* [n] */, size_t n) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: convert_in_parallel(f32_to_f16_avx512, src, dst, n); break;
    case HK_ISA_AVX2: convert_in_parallel(f32_to_f16_avx2, src, dst, n); break;
    default: convert_in_parallel(f32_to_f16_scalar, src, dst, n); break;
    }
}

// MARK: - f32 to bf16

void hk_convert_f32_to_bf16_ref(const float *src /* [n] */, uint16_t *dst /* [n] */, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = hk_f32_to_bf16_scalar(src[i]);
}

static void f32_to_bf16_scalar(const void *source, void *destination, size_t begin, size_t end) {
    const float *src = source;
    uint16_t *dst = destination;
    for (size_t i = begin; i < end; i++) dst[i] = hk_f32_to_bf16_scalar(src[i]);
}

// Integer rounding rather than vcvtneps2bf16: that instruction flushes subnormals to zero, torch does not.
HK_TARGET_AVX2 static void f32_to_bf16_avx2(const void *source, void *destination, size_t begin, size_t end) {
    const float *src = source;
    uint16_t *dst = destination;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF), quiet = _mm256_set1_epi32(0x0040);
    size_t i = begin;
    for (; i + 16 <= end; i += 16) {
        __m256i packed_halves[2];
        for (int half = 0; half < 2; half++) {
            __m256 values = _mm256_loadu_ps(src + i + 8 * half);
            __m256i bits = _mm256_castps_si256(values);
            __m256i upper = _mm256_srli_epi32(bits, 16);
            __m256i rounded = _mm256_srli_epi32(
                _mm256_add_epi32(_mm256_add_epi32(bits, bias), _mm256_and_si256(upper, one)), 16);
            __m256i nan_result = _mm256_or_si256(upper, quiet);
            __m256 is_nan = _mm256_cmp_ps(values, values, _CMP_UNORD_Q);
            packed_halves[half] = _mm256_castps_si256(
                _mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(nan_result), is_nan));
        }
        // Every lane is below 0x10000, so unsigned-saturating packing is exact; it interleaves 128-bit
        // lanes, which the 64-bit permute puts back in order.
        __m256i packed = _mm256_packus_epi32(packed_halves[0], packed_halves[1]);
        packed = _mm256_permute4x64_epi64(packed, _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_si256((__m256i *)(dst + i), packed);
    }
    for (; i < end; i++) dst[i] = hk_f32_to_bf16_scalar(src[i]);
}

HK_TARGET_AVX512 static void f32_to_bf16_avx512(const void *source, void *destination, size_t begin, size_t end) {
    const float *src = source;
    uint16_t *dst = destination;
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF), quiet = _mm512_set1_epi32(0x0040);
    for (size_t i = begin; i < end; i += 16) {
        __mmask16 mask = hk_tail_mask16(end - i);
        __m512 values = _mm512_maskz_loadu_ps(mask, src + i);
        __m512i bits = _mm512_castps_si512(values);
        __m512i upper = _mm512_srli_epi32(bits, 16);
        __m512i rounded =
            _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, bias), _mm512_and_si512(upper, one)), 16);
        __mmask16 is_nan = _mm512_cmp_ps_mask(values, values, _CMP_UNORD_Q);
        __m512i result = _mm512_mask_blend_epi32(is_nan, rounded, _mm512_or_si512(upper, quiet));
        _mm512_mask_cvtepi32_storeu_epi16(dst + i, mask, result);
    }
}

void hk_convert_f32_to_bf16(const float *src /* [n] */, uint16_t *dst /* [n] */, size_t n) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: convert_in_parallel(f32_to_bf16_avx512, src, dst, n); break;
    case HK_ISA_AVX2: convert_in_parallel(f32_to_bf16_avx2, src, dst, n); break;
    default: convert_in_parallel(f32_to_bf16_scalar, src, dst, n); break;
    }
}
