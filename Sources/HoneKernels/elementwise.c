// Elementwise kernels: bias add, add, SiLU-gated product, ReLU.
#include "hk_internal.h"

// MARK: - Bias, add, ReLU

// Plain loops: memory bound, and the compiler vectorises them at the baseline ISA. Parallel only when
// there is enough data to amortise the fork.

void hk_add_bias(float *y /* [rows, n] */, const float *b /* [n] */, int rows, int n) {
    if (rows <= 0 || n <= 0) return;
    int threads = hk_thread_count();
    if (threads > 1 && rows > 1 && (size_t)rows * (size_t)n >= HK_PARALLEL_ELEMENTS) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int r = 0; r < rows; r++) {
            float *row = y + (size_t)r * n;
            for (int i = 0; i < n; i++) row[i] += b[i];
        }
    } else {
        for (int r = 0; r < rows; r++) {
            float *row = y + (size_t)r * n;
            for (int i = 0; i < n; i++) row[i] += b[i];
        }
    }
}

void hk_add(float *y /* [n] */, const float *x /* [n] */, size_t n) {
    int threads = hk_thread_count();
    if (threads > 1 && n >= HK_PARALLEL_ELEMENTS) {
#pragma omp parallel num_threads(threads)
        {
            size_t begin, end;
            hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
            for (size_t i = begin; i < end; i++) y[i] += x[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) y[i] += x[i];
    }
}

void hk_relu(float *x /* [n] */, size_t n) {
    int threads = hk_thread_count();
    if (threads > 1 && n >= HK_PARALLEL_ELEMENTS) {
#pragma omp parallel num_threads(threads)
        {
            size_t begin, end;
            hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
            for (size_t i = begin; i < end; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        }
    } else {
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
}

// MARK: - GELU

// In f32 like torch's CPU kernels; erff/tanhf from libm. Memory bound next to the matrix products around it.
static inline float gelu_one(float x, int tanh_form) {
    if (tanh_form) {
        float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

void hk_gelu(const float *x /* [n] */, float *y /* [n] */, size_t n, int tanh_form) {
    int threads = hk_thread_count();
    if (threads > 1 && n >= HK_PARALLEL_ELEMENTS) {
#pragma omp parallel num_threads(threads)
        {
            size_t begin, end;
            hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
            for (size_t i = begin; i < end; i++) y[i] = gelu_one(x[i], tanh_form);
        }
    } else {
        for (size_t i = 0; i < n; i++) y[i] = gelu_one(x[i], tanh_form);
    }
}

// MARK: - SiLU times up

void hk_silu_mul_ref(const float *gate /* [n] */, const float *up /* [n] */, float *out /* [n] */, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/// Computes elements [begin, end).
typedef void (*silu_mul_span)(const float *gate, const float *up, float *out, size_t begin, size_t end);

static void silu_mul_scalar(const float *gate, const float *up, float *out, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

HK_TARGET_AVX2 static void silu_mul_avx2(const float *gate, const float *up, float *out, size_t begin, size_t end) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    size_t i = begin;
    for (; i + 8 <= end; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 denominator = _mm256_add_ps(one, hk_exp_avx2(_mm256_xor_ps(g, sign)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, denominator), _mm256_loadu_ps(up + i)));
    }
    if (i < end) {
        __m256i mask = hk_tail_mask8(end - i);
        __m256 g = _mm256_maskload_ps(gate + i, mask);
        __m256 denominator = _mm256_add_ps(one, hk_exp_avx2(_mm256_xor_ps(g, sign)));
        _mm256_maskstore_ps(out + i, mask, _mm256_mul_ps(_mm256_div_ps(g, denominator), _mm256_maskload_ps(up + i, mask)));
    }
}

HK_TARGET_AVX512 static void silu_mul_avx512(const float *gate, const float *up, float *out, size_t begin,
                                             size_t end) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = begin; i < end; i += 16) {
        __mmask16 mask = hk_tail_mask16(end - i);
        __m512 g = _mm512_maskz_loadu_ps(mask, gate + i);
        // Same operations as the reference (a true division, not a reciprocal estimate) so the only
        // difference is the ~2 ulp of the polynomial exp.
        __m512 denominator = _mm512_add_ps(one, hk_exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), g)));
        __m512 result = _mm512_mul_ps(_mm512_div_ps(g, denominator), _mm512_maskz_loadu_ps(mask, up + i));
        _mm512_mask_storeu_ps(out + i, mask, result);
    }
}

void hk_silu_mul(const float *gate /* [n] */, const float *up /* [n] */, float *out /* [n] */, size_t n) {
    silu_mul_span span;
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: span = silu_mul_avx512; break;
    case HK_ISA_AVX2: span = silu_mul_avx2; break;
    default: span = silu_mul_scalar; break;
    }
    int threads = hk_thread_count();
    // The exp makes this compute heavy enough to split at a quarter of the plain elementwise threshold.
    if (threads <= 1 || n < HK_PARALLEL_ELEMENTS / 4) {
        span(gate, up, out, 0, n);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t begin, end;
        hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        span(gate, up, out, begin, end);
    }
}

// MARK: - Memory read bandwidth

/// Sums [begin, end) with eight independent accumulators, so the loop is bound by loads, not by add latency.
HK_TARGET_AVX512 static double read_sum_avx512(const float *x, size_t begin, size_t end) {
    __m512 accumulators[8];
    for (int k = 0; k < 8; k++) accumulators[k] = _mm512_setzero_ps();
    size_t i = begin;
    for (; i + 128 <= end; i += 128) {
        for (int k = 0; k < 8; k++) accumulators[k] = _mm512_add_ps(accumulators[k], _mm512_loadu_ps(x + i + 16 * k));
    }
    double total = 0;
    for (int k = 0; k < 8; k++) total += _mm512_reduce_add_ps(accumulators[k]);
    for (; i < end; i++) total += x[i];
    return total;
}

static double read_sum_scalar(const float *x, size_t begin, size_t end) {
    float accumulators[8] = {0};
    size_t i = begin;
    for (; i + 8 <= end; i += 8) {
        for (int k = 0; k < 8; k++) accumulators[k] += x[i + k];
    }
    double total = 0;
    for (int k = 0; k < 8; k++) total += accumulators[k];
    for (; i < end; i++) total += x[i];
    return total;
}

double hk_read_sum(const float *x /* [n] */, size_t n) {
    double (*span)(const float *, size_t, size_t) = hk_isa_current() == HK_ISA_AVX512 ? read_sum_avx512 : read_sum_scalar;
    int threads = hk_thread_count();
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        size_t begin, end;
        hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        total += span(x, begin, end);
    }
    return total;
}
