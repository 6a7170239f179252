// Optimizer-side kernels: torch's AdamW step, sum of squares and scaling (gradient-norm clipping), and dropout
// with a regenerable mask. Declared in hone_train.h.
#include "hk_internal.h"
#include "hone_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

// Torch rounds each operation separately except where its compiler fused one (stated per operation below), so
// the scalar code must not contract a * b + c on its own.
#pragma STDC FP_CONTRACT OFF

// MARK: - Elementwise driver

/// Processes elements [begin, end).
typedef void (*element_span)(void *context, size_t begin, size_t end);

/// Contiguous pieces per thread when n is large; every element's result is independent of the split.
static void run_elementwise(element_span span, void *context, size_t n, size_t threshold) {
    int threads = hk_thread_count();
    if (threads <= 1 || n < threshold) {
        span(context, 0, n);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t begin, end;
        hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        span(context, begin, end);
    }
}

// MARK: - AdamW

// torch 2.13 _single_tensor_adam (decoupled weight decay), CPU, f32 parameters. Scalars are Python floats
// (double) and become f32 where a kernel takes them:
//   param.mul_(1 - lr * wd)                      p * f32(1 - lr wd)
//   exp_avg.lerp_(grad, 1 - beta1)               weight w = f32(1 - b1); |w| < 0.5: fma(w, g - m, m),
//                                                else fma(w - 1, g - m, g) (ATen's vectorised lerp)
//   exp_avg_sq.mul_(beta2)                       v * f32(b2)
//            .addcmul_(grad, grad, 1 - beta2)    fma(f32(1 - b2) * g, g, v): GCC contracts ATen's
//                                                self + s * t1 * t2 (checked against torch bit for bit)
//   denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)   sqrt(v) / f32(bc2^0.5) + f32(eps)
//   param.addcdiv_(exp_avg, denom, -lr / bc1)    p + (f32(-lr / bc1) * m) / denom
// with bc1 = 1 - b1^step, bc2 = 1 - b2^step in double. The one difference: torch's sqrt comes from MKL's vector
// library and is not always correctly rounded; ours is the IEEE sqrt.

typedef struct {
    float *param, *m, *v;
    const float *grad;
    int decays, small_weight;
    float decay, momentum_weight, beta2, square_weight, step, bias_sqrt, eps;
} adamw_context;

static adamw_context adamw_prepare(float *param, const float *grad, float *m, float *v, double lr, double beta1,
                                   double beta2, double eps, double weight_decay, int step) {
    adamw_context c;
    c.param = param;
    c.grad = grad;
    c.m = m;
    c.v = v;
    c.decays = weight_decay != 0;
    c.decay = (float)(1.0 - lr * weight_decay);
    c.momentum_weight = (float)(1.0 - beta1);
    c.small_weight = fabsf(c.momentum_weight) < 0.5f;
    c.beta2 = (float)beta2;
    c.square_weight = (float)(1.0 - beta2);
    double bias_correction1 = 1.0 - pow(beta1, (double)step);
    double bias_correction2 = 1.0 - pow(beta2, (double)step);
    c.step = (float)(-(lr / bias_correction1));
    c.bias_sqrt = (float)pow(bias_correction2, 0.5); // Python's bc2 ** 0.5
    c.eps = (float)eps;
    return c;
}

static inline void adamw_element(const adamw_context *c, size_t i) {
    float p = c->param[i], g = c->grad[i], m = c->m[i], v = c->v[i];
    if (c->decays) p = p * c->decay;
    float difference = g - m;
    m = c->small_weight ? fmaf(c->momentum_weight, difference, m) : fmaf(c->momentum_weight - 1.0f, difference, g);
    v = fmaf(c->square_weight * g, g, v * c->beta2);
    float denominator = sqrtf(v) / c->bias_sqrt + c->eps;
    p = p + (c->step * m) / denominator;
    c->param[i] = p;
    c->m[i] = m;
    c->v[i] = v;
}

static void adamw_span_scalar(void *context, size_t begin, size_t end) {
    const adamw_context *c = context;
    for (size_t i = begin; i < end; i++) adamw_element(c, i);
}

HK_TARGET_AVX2 static void adamw_span_avx2(void *context, size_t begin, size_t end) {
    const adamw_context *c = context;
    __m256 decay = _mm256_set1_ps(c->decays ? c->decay : 1.0f);
    __m256 coefficient = _mm256_set1_ps(c->small_weight ? c->momentum_weight : c->momentum_weight - 1.0f);
    __m256 beta2 = _mm256_set1_ps(c->beta2), square_weight = _mm256_set1_ps(c->square_weight);
    __m256 step = _mm256_set1_ps(c->step), bias_sqrt = _mm256_set1_ps(c->bias_sqrt), eps = _mm256_set1_ps(c->eps);
    size_t i = begin;
    for (; i + 8 <= end; i += 8) {
        __m256 p = _mm256_loadu_ps(c->param + i), g = _mm256_loadu_ps(c->grad + i);
        __m256 m = _mm256_loadu_ps(c->m + i), v = _mm256_loadu_ps(c->v + i);
        if (c->decays) p = _mm256_mul_ps(p, decay);
        __m256 difference = _mm256_sub_ps(g, m);
        m = _mm256_fmadd_ps(coefficient, difference, c->small_weight ? m : g);
        v = _mm256_fmadd_ps(_mm256_mul_ps(square_weight, g), g, _mm256_mul_ps(v, beta2));
        __m256 denominator = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(v), bias_sqrt), eps);
        p = _mm256_add_ps(p, _mm256_div_ps(_mm256_mul_ps(step, m), denominator));
        _mm256_storeu_ps(c->param + i, p);
        _mm256_storeu_ps(c->m + i, m);
        _mm256_storeu_ps(c->v + i, v);
    }
    for (; i < end; i++) adamw_element(c, i);
}

HK_TARGET_AVX512 static void adamw_span_avx512(void *context, size_t begin, size_t end) {
    const adamw_context *c = context;
    __m512 decay = _mm512_set1_ps(c->decays ? c->decay : 1.0f);
    __m512 coefficient = _mm512_set1_ps(c->small_weight ? c->momentum_weight : c->momentum_weight - 1.0f);
    __m512 beta2 = _mm512_set1_ps(c->beta2), square_weight = _mm512_set1_ps(c->square_weight);
    __m512 step = _mm512_set1_ps(c->step), bias_sqrt = _mm512_set1_ps(c->bias_sqrt), eps = _mm512_set1_ps(c->eps);
    for (size_t i = begin; i < end; i += 16) {
        __mmask16 mask = hk_tail_mask16(end - i);
        __m512 p = _mm512_maskz_loadu_ps(mask, c->param + i), g = _mm512_maskz_loadu_ps(mask, c->grad + i);
        __m512 m = _mm512_maskz_loadu_ps(mask, c->m + i), v = _mm512_maskz_loadu_ps(mask, c->v + i);
        if (c->decays) p = _mm512_mul_ps(p, decay);
        __m512 difference = _mm512_sub_ps(g, m);
        m = _mm512_fmadd_ps(coefficient, difference, c->small_weight ? m : g);
        v = _mm512_fmadd_ps(_mm512_mul_ps(square_weight, g), g, _mm512_mul_ps(v, beta2));
        __m512 denominator = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(v), bias_sqrt), eps);
        p = _mm512_add_ps(p, _mm512_div_ps(_mm512_mul_ps(step, m), denominator));
        _mm512_mask_storeu_ps(c->param + i, mask, p);
        _mm512_mask_storeu_ps(c->m + i, mask, m);
        _mm512_mask_storeu_ps(c->v + i, mask, v);
    }
}

void hk_adamw_step_f64_ref(float *param /* [n] */, const float *grad /* [n] */, float *m /* [n] */,
                           float *v /* [n] */, size_t n, double lr, double beta1, double beta2, double eps,
                           double weight_decay, int step) {
    adamw_context context = adamw_prepare(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
    adamw_span_scalar(&context, 0, n);
}

void hk_adamw_step_f64(float *param /* [n] */, const float *grad /* [n] */, float *m /* [n] */, float *v /* [n] */,
                       size_t n, double lr, double beta1, double beta2, double eps, double weight_decay, int step) {
    adamw_context context = adamw_prepare(param, grad, m, v, lr, beta1, beta2, eps, weight_decay, step);
    element_span span;
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: span = adamw_span_avx512; break;
    case HK_ISA_AVX2: span = adamw_span_avx2; break;
    default: span = adamw_span_scalar; break;
    }
    run_elementwise(span, &context, n, HK_PARALLEL_ELEMENTS / 4);
}

/// The double nearest the shortest decimal that rounds to `value` (0.9f -> 0.9): the number a user wrote in a
/// config, as Python holds it. printf and strtod share the locale, so the round trip holds in any locale.
static double widen_decimal(float value) {
    if (!isfinite(value)) return value;
    char text[48];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)value);
        double parsed = strtod(text, NULL);
        if ((float)parsed == value) return parsed;
    }
    return value;
}

void hk_adamw_step(float *param /* [n] */, const float *grad /* [n] */, float *m /* [n] */, float *v /* [n] */,
                   size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int step) {
    hk_adamw_step_f64(param, grad, m, v, n, widen_decimal(lr), widen_decimal(beta1), widen_decimal(beta2),
                      widen_decimal(eps), widen_decimal(weight_decay), step);
}

// MARK: - Sum of squares

/// Elements per chunk: each chunk is summed on its own and the chunk sums are added in order, so the result does
/// not depend on how chunks are spread over threads.
#define SUM_CHUNK ((size_t)1 << 16)

typedef double (*sum_squares_span)(const float *x, size_t n);

static double sum_squares_scalar(const float *x, size_t n) {
    double sums[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int lane = 0; lane < 4; lane++) sums[lane] += (double)x[i + lane] * x[i + lane];
    }
    for (; i < n; i++) sums[0] += (double)x[i] * x[i];
    return (sums[0] + sums[1]) + (sums[2] + sums[3]);
}

HK_TARGET_AVX2 static double sum_squares_avx2(const float *x, size_t n) {
    __m256d sums[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 values = _mm256_loadu_ps(x + i);
        __m256d low = _mm256_cvtps_pd(_mm256_castps256_ps128(values));
        __m256d high = _mm256_cvtps_pd(_mm256_extractf128_ps(values, 1));
        sums[0] = _mm256_fmadd_pd(low, low, sums[0]);
        sums[1] = _mm256_fmadd_pd(high, high, sums[1]);
    }
    __m256d total = _mm256_add_pd(sums[0], sums[1]);
    __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(total), _mm256_extractf128_pd(total, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
    for (; i < n; i++) sum += (double)x[i] * x[i];
    return sum;
}

HK_TARGET_AVX512 static double sum_squares_avx512(const float *x, size_t n) {
    __m512d sums[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    for (size_t i = 0; i < n; i += 16) {
        __m512 values = _mm512_maskz_loadu_ps(hk_tail_mask16(n - i), x + i);
        __m512d low = _mm512_cvtps_pd(_mm512_castps512_ps256(values));
        __m512d high = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(values), 1)));
        sums[0] = _mm512_fmadd_pd(low, low, sums[0]);
        sums[1] = _mm512_fmadd_pd(high, high, sums[1]);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(sums[0], sums[1]));
}

double hk_sum_squares_ref(const float *x /* [n] */, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    return sum;
}

double hk_sum_squares(const float *x /* [n] */, size_t n) {
    sum_squares_span span;
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: span = sum_squares_avx512; break;
    case HK_ISA_AVX2: span = sum_squares_avx2; break;
    default: span = sum_squares_scalar; break;
    }
    size_t chunks = (n + SUM_CHUNK - 1) / SUM_CHUNK;
    if (chunks <= 1) return span(x, n);
    double stack_sums[64];
    double *chunk_sums = chunks <= 64 ? stack_sums : malloc(chunks * sizeof(double));
    if (chunk_sums == NULL) return NAN;
    int threads = hk_thread_count();
    if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t c = 0; c < chunks; c++) {
            size_t begin = c * SUM_CHUNK, count = n - begin < SUM_CHUNK ? n - begin : SUM_CHUNK;
            chunk_sums[c] = span(x + begin, count);
        }
    } else {
        for (size_t c = 0; c < chunks; c++) {
            size_t begin = c * SUM_CHUNK, count = n - begin < SUM_CHUNK ? n - begin : SUM_CHUNK;
            chunk_sums[c] = span(x + begin, count);
        }
    }
    double sum = 0;
    for (size_t c = 0; c < chunks; c++) sum += chunk_sums[c];
    if (chunk_sums != stack_sums) free(chunk_sums);
    return sum;
}

// MARK: - Scale

typedef struct {
    float *x;
    float factor;
} scale_context;

static void scale_span(void *context, size_t begin, size_t end) {
    const scale_context *c = context;
    for (size_t i = begin; i < end; i++) c->x[i] *= c->factor; // vectorised by the compiler
}

void hk_scale(float *x /* [n] */, float factor, size_t n) {
    scale_context context = {x, factor};
    run_elementwise(scale_span, &context, n, HK_PARALLEL_ELEMENTS);
}

// MARK: - Dropout

/// SplitMix64's output function: a bijection on 64 bits with full avalanche.
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/// Element `index` of the SplitMix64 stream keyed by mix64(seed), as a uniform value with 24 random bits.
static inline float dropout_uniform(uint64_t key, uint64_t index) {
    uint64_t bits = mix64(key + (index + 1) * 0x9E3779B97F4A7C15ull);
    return (float)(bits >> 40) * 0x1.0p-24f;
}

int hk_dropout_keep(float p, uint64_t seed, uint64_t index) { return dropout_uniform(mix64(seed), index) >= p; }

typedef struct {
    const float *x;
    float *y;
    float p, scale;
    uint64_t key, offset;
} dropout_context;

static void dropout_span(void *context, size_t begin, size_t end) {
    const dropout_context *c = context;
    for (size_t i = begin; i < end; i++) {
        float value = c->x[i];
        c->y[i] = dropout_uniform(c->key, c->offset + i) >= c->p ? value * c->scale : 0.0f;
    }
}

/// The same mask, 8 elements at a time: SplitMix64 in 64-bit lanes (AVX-512DQ multiplies). keep ⇔ the top 24
/// bits b satisfy b · 2⁻²⁴ ≥ p, i.e. b ≥ ⌈p · 2²⁴⌉ (exact: b and p · 2²⁴ are exact in double).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))) static void dropout_span_avx512(void *context, size_t begin, size_t end) {
    const dropout_context *c = context;
    const uint64_t threshold = (uint64_t)ceil((double)c->p * 16777216.0);
    const __m512i golden = _mm512_set1_epi64((long long)0x9E3779B97F4A7C15ull);
    const __m512i first_multiplier = _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ull);
    const __m512i second_multiplier = _mm512_set1_epi64((long long)0x94D049BB133111EBull);
    const __m512i key = _mm512_set1_epi64((long long)c->key);
    const __m512i limit = _mm512_set1_epi64((long long)threshold);
    const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m256 scale = _mm256_set1_ps(c->scale);
    for (size_t i = begin; i < end; i += 8) {
        size_t remaining = end - i;
        __mmask8 tail = remaining >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << remaining) - 1);
        __m512i index = _mm512_add_epi64(_mm512_set1_epi64((long long)(c->offset + i + 1)), lanes);
        __m512i z = _mm512_add_epi64(key, _mm512_mullo_epi64(index, golden));
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), first_multiplier);
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), second_multiplier);
        z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
        __mmask8 keep = _mm512_cmpge_epu64_mask(_mm512_srli_epi64(z, 40), limit) & tail;
        __m256 value = _mm256_maskz_loadu_ps(tail, c->x + i);
        _mm256_mask_storeu_ps(c->y + i, tail, _mm256_maskz_mul_ps(keep, value, scale));
    }
}

void hk_dropout(const float *x /* [n] */, float *y /* [n] */, size_t n, float p, uint64_t seed, uint64_t offset) {
    if (!(p > 0.0f)) {
        if (y != x) memmove(y, x, n * sizeof(float));
        return;
    }
    if (p >= 1.0f) {
        memset(y, 0, n * sizeof(float));
        return;
    }
    // torch multiplies by a mask of 1 / (1 - p) values, made in f32.
    dropout_context context = {x, y, p, 1.0f / (1.0f - p), mix64(seed), offset};
    // The vector path needs AVX-512DQ's 64-bit multiplies besides the AVX-512 level's features.
    int vector = hk_isa_current() == HK_ISA_AVX512 && __builtin_cpu_supports("avx512dq");
    run_elementwise(vector ? dropout_span_avx512 : dropout_span, &context, n, HK_PARALLEL_ELEMENTS / 4);
}
