// Backward passes of the frozen row and elementwise layers: RMSNorm, LayerNorm, SiLU-gated product, ReLU, and the
// target log-probability (log-softmax gather). Declared in hone_train.h.
#include "hk_internal.h"
#include "hone_train.h"

#include <stdlib.h>

// MARK: - Row driver

/// Backward of one row of `dim` values; adds the input gradient into dx.
typedef void (*norm_backward_row)(const float *x, const float *weight, const float *dy, float *dx, int dim, float eps);

/// Rows are independent, so a static split over rows gives the same bits for any thread count.
static void backward_rows(norm_backward_row row_kernel, const float *x /* [rows, dim] */, const float *weight,
                          const float *dy /* [rows, dim] */, float *dx /* [rows, dim] */, int rows, int dim,
                          float eps) {
    if (rows <= 0 || dim <= 0) return;
    int threads = hk_thread_count();
    if (threads > 1 && rows > 1 && (size_t)rows * (size_t)dim >= HK_PARALLEL_ELEMENTS / 4) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int r = 0; r < rows; r++) {
            size_t offset = (size_t)r * dim;
            row_kernel(x + offset, weight, dy + offset, dx + offset, dim, eps);
        }
    } else {
        for (int r = 0; r < rows; r++) {
            size_t offset = (size_t)r * dim;
            row_kernel(x + offset, weight, dy + offset, dx + offset, dim, eps);
        }
    }
}

// MARK: - RMSNorm backward

// With g = w * dy and r = 1 / sqrt(mean(x^2) + eps): dr/dx_i = -r^3 x_i / dim, so
// dx_i = r g_i - x_i r^3 sum_j(g_j x_j) / dim.

void hk_rmsnorm_backward_ref(const float *x /* [rows, dim] */, const float *weight /* [dim] */,
                             const float *dy /* [rows, dim] */, float *dx /* [rows, dim], accumulated */, int rows,
                             int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * dim, *gradient = dy + (size_t)r * dim;
        double sum_of_squares = 0, dot = 0;
        for (int i = 0; i < dim; i++) {
            sum_of_squares += (double)row[i] * row[i];
            dot += (double)weight[i] * gradient[i] * row[i];
        }
        double inverse_rms = 1.0 / sqrt(sum_of_squares / dim + eps);
        double coefficient = inverse_rms * inverse_rms * inverse_rms * dot / dim;
        for (int i = 0; i < dim; i++) {
            dx[(size_t)r * dim + i] += (float)(inverse_rms * weight[i] * gradient[i] - row[i] * coefficient);
        }
    }
}

static void rmsnorm_backward_row_scalar(const float *x, const float *weight, const float *dy, float *dx, int dim,
                                        float eps) {
    // Four partial sums each: shorter dependency chains and smaller rounding error than one running sum.
    float squares[4] = {0, 0, 0, 0}, dots[4] = {0, 0, 0, 0};
    int i = 0;
    for (; i + 4 <= dim; i += 4) {
        for (int lane = 0; lane < 4; lane++) {
            squares[lane] += x[i + lane] * x[i + lane];
            dots[lane] += weight[i + lane] * dy[i + lane] * x[i + lane];
        }
    }
    for (; i < dim; i++) {
        squares[0] += x[i] * x[i];
        dots[0] += weight[i] * dy[i] * x[i];
    }
    float sum_of_squares = (squares[0] + squares[1]) + (squares[2] + squares[3]);
    float dot = (dots[0] + dots[1]) + (dots[2] + dots[3]);
    float inverse_rms = 1.0f / sqrtf(sum_of_squares / (float)dim + eps);
    float coefficient = inverse_rms * inverse_rms * inverse_rms * dot / (float)dim;
    for (i = 0; i < dim; i++) dx[i] += inverse_rms * (weight[i] * dy[i]) - x[i] * coefficient;
}

HK_TARGET_AVX2 static void rmsnorm_backward_row_avx2(const float *x, const float *weight, const float *dy, float *dx,
                                                     int dim, float eps) {
    __m256 squares[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256 dots[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        for (int part = 0; part < 2; part++) {
            __m256 values = _mm256_loadu_ps(x + i + 8 * part);
            __m256 gradient = _mm256_mul_ps(_mm256_loadu_ps(weight + i + 8 * part), _mm256_loadu_ps(dy + i + 8 * part));
            squares[part] = _mm256_fmadd_ps(values, values, squares[part]);
            dots[part] = _mm256_fmadd_ps(gradient, values, dots[part]);
        }
    }
    for (; i < dim; i += 8) {
        __m256i mask = hk_tail_mask8((size_t)(dim - i < 8 ? dim - i : 8));
        __m256 values = _mm256_maskload_ps(x + i, mask);
        __m256 gradient = _mm256_mul_ps(_mm256_maskload_ps(weight + i, mask), _mm256_maskload_ps(dy + i, mask));
        squares[0] = _mm256_fmadd_ps(values, values, squares[0]);
        dots[0] = _mm256_fmadd_ps(gradient, values, dots[0]);
    }
    float sum_of_squares = hk_sum_avx2(_mm256_add_ps(squares[0], squares[1]));
    float dot = hk_sum_avx2(_mm256_add_ps(dots[0], dots[1]));
    float inverse_rms = 1.0f / sqrtf(sum_of_squares / (float)dim + eps);
    __m256 scale = _mm256_set1_ps(inverse_rms);
    __m256 coefficient = _mm256_set1_ps(inverse_rms * inverse_rms * inverse_rms * dot / (float)dim);
    for (i = 0; i < dim; i += 8) {
        __m256i mask = hk_tail_mask8((size_t)(dim - i < 8 ? dim - i : 8));
        __m256 gradient = _mm256_mul_ps(_mm256_maskload_ps(weight + i, mask), _mm256_maskload_ps(dy + i, mask));
        __m256 update = _mm256_fnmadd_ps(_mm256_maskload_ps(x + i, mask), coefficient, _mm256_mul_ps(scale, gradient));
        _mm256_maskstore_ps(dx + i, mask, _mm256_add_ps(_mm256_maskload_ps(dx + i, mask), update));
    }
}

HK_TARGET_AVX512 static void rmsnorm_backward_row_avx512(const float *x, const float *weight, const float *dy,
                                                         float *dx, int dim, float eps) {
    __m512 squares[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    __m512 dots[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    int i = 0;
    for (; i + 32 <= dim; i += 32) {
        for (int part = 0; part < 2; part++) {
            __m512 values = _mm512_loadu_ps(x + i + 16 * part);
            __m512 gradient = _mm512_mul_ps(_mm512_loadu_ps(weight + i + 16 * part), _mm512_loadu_ps(dy + i + 16 * part));
            squares[part] = _mm512_fmadd_ps(values, values, squares[part]);
            dots[part] = _mm512_fmadd_ps(gradient, values, dots[part]);
        }
    }
    for (; i < dim; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(dim - i));
        __m512 values = _mm512_maskz_loadu_ps(mask, x + i);
        __m512 gradient = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, weight + i), _mm512_maskz_loadu_ps(mask, dy + i));
        squares[0] = _mm512_fmadd_ps(values, values, squares[0]);
        dots[0] = _mm512_fmadd_ps(gradient, values, dots[0]);
    }
    float sum_of_squares = _mm512_reduce_add_ps(_mm512_add_ps(squares[0], squares[1]));
    float dot = _mm512_reduce_add_ps(_mm512_add_ps(dots[0], dots[1]));
    float inverse_rms = 1.0f / sqrtf(sum_of_squares / (float)dim + eps);
    __m512 scale = _mm512_set1_ps(inverse_rms);
    __m512 coefficient = _mm512_set1_ps(inverse_rms * inverse_rms * inverse_rms * dot / (float)dim);
    for (i = 0; i < dim; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(dim - i));
        __m512 gradient = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, weight + i), _mm512_maskz_loadu_ps(mask, dy + i));
        __m512 update = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(mask, x + i), coefficient, _mm512_mul_ps(scale, gradient));
        _mm512_mask_storeu_ps(dx + i, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dx + i), update));
    }
}

void hk_rmsnorm_backward(const float *x /* [rows, dim] */, const float *weight /* [dim] */,
                         const float *dy /* [rows, dim] */, float *dx /* [rows, dim], accumulated */, int rows,
                         int dim, float eps) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: backward_rows(rmsnorm_backward_row_avx512, x, weight, dy, dx, rows, dim, eps); break;
    case HK_ISA_AVX2: backward_rows(rmsnorm_backward_row_avx2, x, weight, dy, dx, rows, dim, eps); break;
    default: backward_rows(rmsnorm_backward_row_scalar, x, weight, dy, dx, rows, dim, eps); break;
    }
}

// MARK: - LayerNorm backward

// With xhat = (x - mean) * rstd and g = w * dy, the mean and variance both depend on every x_j:
// dx_i = rstd * (g_i - mean(g) - xhat_i * mean(g * xhat)).

void hk_layernorm_backward_ref(const float *x /* [rows, dim] */, const float *weight /* [dim] or NULL */,
                               const float *dy /* [rows, dim] */, float *dx /* [rows, dim], accumulated */,
                               int rows, int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * dim, *gradient = dy + (size_t)r * dim;
        double sum = 0;
        for (int i = 0; i < dim; i++) sum += row[i];
        double mean = sum / dim, sum_of_squares = 0;
        for (int i = 0; i < dim; i++) sum_of_squares += (row[i] - mean) * (row[i] - mean);
        double inverse_std = 1.0 / sqrt(sum_of_squares / dim + eps);
        double gradient_sum = 0, projection = 0;
        for (int i = 0; i < dim; i++) {
            double g = (weight ? (double)weight[i] : 1.0) * gradient[i];
            gradient_sum += g;
            projection += g * (row[i] - mean) * inverse_std;
        }
        double mean_gradient = gradient_sum / dim, mean_projection = projection / dim;
        for (int i = 0; i < dim; i++) {
            double g = (weight ? (double)weight[i] : 1.0) * gradient[i];
            double normalised = (row[i] - mean) * inverse_std;
            dx[(size_t)r * dim + i] += (float)(inverse_std * (g - mean_gradient - normalised * mean_projection));
        }
    }
}

static void layernorm_backward_row_scalar(const float *x, const float *weight, const float *dy, float *dx, int dim,
                                          float eps) {
    // Scalar fallback: double sums and two passes, as the scalar forward.
    double sum = 0;
    for (int i = 0; i < dim; i++) sum += x[i];
    double mean = sum / dim, sum_of_squares = 0, gradient_sum = 0, projection = 0;
    for (int i = 0; i < dim; i++) {
        double deviation = x[i] - mean, g = (double)(weight ? weight[i] * dy[i] : dy[i]);
        sum_of_squares += deviation * deviation;
        gradient_sum += g;
        projection += g * deviation;
    }
    double inverse_std = 1.0 / sqrt(sum_of_squares / dim + eps);
    float scale = (float)inverse_std, mean_f32 = (float)mean;
    float mean_gradient = (float)(gradient_sum / dim);
    // mean(g * xhat) * rstd, folded so that the per-element term is (x - mean) * this.
    float projection_coefficient = (float)(projection / dim * inverse_std * inverse_std);
    for (int i = 0; i < dim; i++) {
        float g = weight ? weight[i] * dy[i] : dy[i];
        dx[i] += scale * (g - mean_gradient - (x[i] - mean_f32) * projection_coefficient);
    }
}

/// The per-row statistics the vector kernels need, from f32 lane sums (see layernorm_backward_row_avx512).
typedef struct {
    float mean, inverse_std, mean_gradient, projection_coefficient;
} layernorm_backward_stats;

static layernorm_backward_stats layernorm_backward_finish(float first_mean, float deviation_sum, float square_sum,
                                                          float gradient_sum, float projection_sum, int dim,
                                                          float eps) {
    // Corrected two-pass statistics (as the forward): the deviations' sum, zero in exact arithmetic, corrects
    // the first-pass mean; sum g * (x - mean) is corrected by the same shift.
    float shift = deviation_sum / (float)dim;
    float variance = (square_sum - deviation_sum * shift) / (float)dim;
    layernorm_backward_stats stats;
    stats.mean = first_mean + shift;
    stats.inverse_std = 1.0f / sqrtf(variance + eps);
    stats.mean_gradient = gradient_sum / (float)dim;
    float projection = projection_sum - shift * gradient_sum;
    stats.projection_coefficient = projection / (float)dim * stats.inverse_std * stats.inverse_std;
    return stats;
}

HK_TARGET_AVX2 static void layernorm_backward_row_avx2(const float *x, const float *weight, const float *dy,
                                                       float *dx, int dim, float eps) {
    __m256 sums = _mm256_setzero_ps();
    int i = 0;
    for (; i < dim; i += 8) {
        __m256i mask = hk_tail_mask8((size_t)(dim - i < 8 ? dim - i : 8));
        sums = _mm256_add_ps(sums, _mm256_maskload_ps(x + i, mask));
    }
    float first_mean = hk_sum_avx2(sums) / (float)dim;
    __m256 mean_vector = _mm256_set1_ps(first_mean);
    __m256 deviations = _mm256_setzero_ps(), squares = _mm256_setzero_ps();
    __m256 gradients = _mm256_setzero_ps(), projections = _mm256_setzero_ps();
    for (i = 0; i < dim; i += 8) {
        __m256i mask = hk_tail_mask8((size_t)(dim - i < 8 ? dim - i : 8));
        __m256 in_row = _mm256_castsi256_ps(mask);
        // Lanes past the row must contribute 0, not (0 - mean).
        __m256 deviation = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), mean_vector), in_row);
        __m256 g = _mm256_maskload_ps(dy + i, mask);
        if (weight) g = _mm256_mul_ps(g, _mm256_maskload_ps(weight + i, mask));
        deviations = _mm256_add_ps(deviations, deviation);
        squares = _mm256_fmadd_ps(deviation, deviation, squares);
        gradients = _mm256_add_ps(gradients, g);
        projections = _mm256_fmadd_ps(g, deviation, projections);
    }
    layernorm_backward_stats stats =
        layernorm_backward_finish(first_mean, hk_sum_avx2(deviations), hk_sum_avx2(squares), hk_sum_avx2(gradients),
                                  hk_sum_avx2(projections), dim, eps);
    __m256 mean = _mm256_set1_ps(stats.mean), scale = _mm256_set1_ps(stats.inverse_std);
    __m256 mean_gradient = _mm256_set1_ps(stats.mean_gradient);
    __m256 projection = _mm256_set1_ps(stats.projection_coefficient);
    for (i = 0; i < dim; i += 8) {
        __m256i mask = hk_tail_mask8((size_t)(dim - i < 8 ? dim - i : 8));
        __m256 g = _mm256_maskload_ps(dy + i, mask);
        if (weight) g = _mm256_mul_ps(g, _mm256_maskload_ps(weight + i, mask));
        __m256 deviation = _mm256_sub_ps(_mm256_maskload_ps(x + i, mask), mean);
        __m256 inner = _mm256_fnmadd_ps(deviation, projection, _mm256_sub_ps(g, mean_gradient));
        _mm256_maskstore_ps(dx + i, mask, _mm256_fmadd_ps(scale, inner, _mm256_maskload_ps(dx + i, mask)));
    }
}

HK_TARGET_AVX512 static void layernorm_backward_row_avx512(const float *x, const float *weight, const float *dy,
                                                           float *dx, int dim, float eps) {
    __m512 sums = _mm512_setzero_ps();
    int i = 0;
    for (; i < dim; i += 16) sums = _mm512_add_ps(sums, _mm512_maskz_loadu_ps(hk_tail_mask16((size_t)(dim - i)), x + i));
    float first_mean = _mm512_reduce_add_ps(sums) / (float)dim;
    __m512 mean_vector = _mm512_set1_ps(first_mean);
    __m512 deviations = _mm512_setzero_ps(), squares = _mm512_setzero_ps();
    __m512 gradients = _mm512_setzero_ps(), projections = _mm512_setzero_ps();
    for (i = 0; i < dim; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(dim - i));
        __m512 deviation = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, x + i), mean_vector);
        __m512 g = _mm512_maskz_loadu_ps(mask, dy + i);
        if (weight) g = _mm512_mul_ps(g, _mm512_maskz_loadu_ps(mask, weight + i));
        deviations = _mm512_add_ps(deviations, deviation);
        squares = _mm512_fmadd_ps(deviation, deviation, squares);
        gradients = _mm512_add_ps(gradients, g);
        projections = _mm512_fmadd_ps(g, deviation, projections);
    }
    layernorm_backward_stats stats = layernorm_backward_finish(
        first_mean, _mm512_reduce_add_ps(deviations), _mm512_reduce_add_ps(squares), _mm512_reduce_add_ps(gradients),
        _mm512_reduce_add_ps(projections), dim, eps);
    __m512 mean = _mm512_set1_ps(stats.mean), scale = _mm512_set1_ps(stats.inverse_std);
    __m512 mean_gradient = _mm512_set1_ps(stats.mean_gradient);
    __m512 projection = _mm512_set1_ps(stats.projection_coefficient);
    for (i = 0; i < dim; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(dim - i));
        __m512 g = _mm512_maskz_loadu_ps(mask, dy + i);
        if (weight) g = _mm512_mul_ps(g, _mm512_maskz_loadu_ps(mask, weight + i));
        __m512 deviation = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), mean);
        __m512 inner = _mm512_fnmadd_ps(deviation, projection, _mm512_sub_ps(g, mean_gradient));
        _mm512_mask_storeu_ps(dx + i, mask, _mm512_fmadd_ps(scale, inner, _mm512_maskz_loadu_ps(mask, dx + i)));
    }
}

void hk_layernorm_backward(const float *x /* [rows, dim] */, const float *weight /* [dim] or NULL */,
                           const float *dy /* [rows, dim] */, float *dx /* [rows, dim], accumulated */, int rows,
                           int dim, float eps) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: backward_rows(layernorm_backward_row_avx512, x, weight, dy, dx, rows, dim, eps); break;
    case HK_ISA_AVX2: backward_rows(layernorm_backward_row_avx2, x, weight, dy, dx, rows, dim, eps); break;
    default: backward_rows(layernorm_backward_row_scalar, x, weight, dy, dx, rows, dim, eps); break;
    }
}

// MARK: - SiLU times up, backward

// h = g s(g) u with s the sigmoid: dh/du = g s, dh/dg = u s (1 + g (1 - s)). Every loop below loads an
// element's gate, up and dh before storing its dgate and dup, which is what makes the documented aliasing legal.

void hk_silu_mul_backward_ref(const float *gate /* [n] */, const float *up /* [n] */, const float *dh /* [n] */,
                              float *dgate /* [n] */, float *dup /* [n] */, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double g = gate[i], u = up[i], d = dh[i];
        double sigmoid = 1.0 / (1.0 + exp(-g));
        double gate_gradient = d * u * sigmoid * (1.0 + g * (1.0 - sigmoid));
        double up_gradient = d * g * sigmoid;
        dgate[i] = (float)gate_gradient;
        dup[i] = (float)up_gradient;
    }
}

typedef void (*silu_mul_backward_span)(const float *gate, const float *up, const float *dh, float *dgate, float *dup,
                                       size_t begin, size_t end);

static void silu_mul_backward_scalar(const float *gate, const float *up, const float *dh, float *dgate, float *dup,
                                     size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) {
        float g = gate[i], u = up[i], d = dh[i];
        float sigmoid = 1.0f / (1.0f + expf(-g));
        float gate_gradient = d * u * (sigmoid * (1.0f + g * (1.0f - sigmoid)));
        float up_gradient = d * (g * sigmoid);
        dgate[i] = gate_gradient;
        dup[i] = up_gradient;
    }
}

HK_TARGET_AVX2 static void silu_mul_backward_avx2(const float *gate, const float *up, const float *dh, float *dgate,
                                                  float *dup, size_t begin, size_t end) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (size_t i = begin; i < end; i += 8) {
        __m256i mask = hk_tail_mask8(end - i < 8 ? end - i : 8);
        __m256 g = _mm256_maskload_ps(gate + i, mask), u = _mm256_maskload_ps(up + i, mask);
        __m256 d = _mm256_maskload_ps(dh + i, mask);
        __m256 sigmoid = _mm256_div_ps(one, _mm256_add_ps(one, hk_exp_avx2(_mm256_xor_ps(g, sign))));
        __m256 slope = _mm256_mul_ps(sigmoid, _mm256_fmadd_ps(g, _mm256_sub_ps(one, sigmoid), one));
        __m256 gate_gradient = _mm256_mul_ps(_mm256_mul_ps(d, u), slope);
        __m256 up_gradient = _mm256_mul_ps(d, _mm256_mul_ps(g, sigmoid));
        _mm256_maskstore_ps(dgate + i, mask, gate_gradient);
        _mm256_maskstore_ps(dup + i, mask, up_gradient);
    }
}

HK_TARGET_AVX512 static void silu_mul_backward_avx512(const float *gate, const float *up, const float *dh,
                                                      float *dgate, float *dup, size_t begin, size_t end) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = begin; i < end; i += 16) {
        __mmask16 mask = hk_tail_mask16(end - i);
        __m512 g = _mm512_maskz_loadu_ps(mask, gate + i), u = _mm512_maskz_loadu_ps(mask, up + i);
        __m512 d = _mm512_maskz_loadu_ps(mask, dh + i);
        __m512 sigmoid = _mm512_div_ps(one, _mm512_add_ps(one, hk_exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        __m512 slope = _mm512_mul_ps(sigmoid, _mm512_fmadd_ps(g, _mm512_sub_ps(one, sigmoid), one));
        __m512 gate_gradient = _mm512_mul_ps(_mm512_mul_ps(d, u), slope);
        __m512 up_gradient = _mm512_mul_ps(d, _mm512_mul_ps(g, sigmoid));
        _mm512_mask_storeu_ps(dgate + i, mask, gate_gradient);
        _mm512_mask_storeu_ps(dup + i, mask, up_gradient);
    }
}

void hk_silu_mul_backward(const float *gate /* [n] */, const float *up /* [n] */, const float *dh /* [n] */,
                          float *dgate /* [n] */, float *dup /* [n] */, size_t n) {
    silu_mul_backward_span span;
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: span = silu_mul_backward_avx512; break;
    case HK_ISA_AVX2: span = silu_mul_backward_avx2; break;
    default: span = silu_mul_backward_scalar; break;
    }
    int threads = hk_thread_count();
    if (threads <= 1 || n < HK_PARALLEL_ELEMENTS / 4) {
        span(gate, up, dh, dgate, dup, 0, n);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t begin, end;
        hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
        span(gate, up, dh, dgate, dup, begin, end);
    }
}

// MARK: - ReLU backward

void hk_relu_backward(const float *x /* [n] */, const float *dy /* [n] */, float *dx /* [n] */, size_t n) {
    // A plain loop (memory bound; the compiler vectorises it). dx may be dy: each element is read, then written.
    int threads = hk_thread_count();
    if (threads > 1 && n >= HK_PARALLEL_ELEMENTS) {
#pragma omp parallel num_threads(threads)
        {
            size_t begin, end;
            hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
            for (size_t i = begin; i < end; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        }
    } else {
        for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
    }
}

// MARK: - Log-softmax gather backward

// d logp / d logits_i = onehot_i - softmax_i. The fast row kernels repeat hk_log_softmax_gather's row kernels
// operation for operation (same maxima, same f32 exps, same double lanes and order), so logp has the same bits,
// and keep each exp in the row for the gradient pass instead of evaluating it twice.

/// One row with a target in [0, vocab): overwrites the row with its exps and returns logp; *sum gets the sum.
typedef float (*softmax_exps_row)(float *logits /* [vocab] */, int32_t target, int vocab, double *sum);

static float softmax_exps_row_scalar(float *logits, int32_t target, int vocab, double *sum) {
    float max_logit = -INFINITY;
    for (int i = 0; i < vocab; i++) max_logit = logits[i] > max_logit ? logits[i] : max_logit;
    float target_logit = logits[target];
    double total = 0;
    for (int i = 0; i < vocab; i++) {
        double e = exp((double)logits[i] - max_logit);
        total += e;
        logits[i] = (float)e;
    }
    *sum = total;
    return (float)((double)target_logit - max_logit - log(total));
}

HK_TARGET_AVX2 static float softmax_exps_row_avx2(float *logits, int32_t target, int vocab, double *sum) {
    float max_logit = hk_row_max_avx2(logits, vocab);
    int vector_end = vocab & ~7;
    int i;
    float target_logit = logits[target];

    __m256 max_vector = _mm256_set1_ps(max_logit);
    __m256d sums[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    for (i = 0; i < vector_end; i += 8) {
        __m256 exps = hk_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(logits + i), max_vector));
        _mm256_storeu_ps(logits + i, exps);
        sums[0] = _mm256_add_pd(sums[0], _mm256_cvtps_pd(_mm256_castps256_ps128(exps)));
        sums[1] = _mm256_add_pd(sums[1], _mm256_cvtps_pd(_mm256_extractf128_ps(exps, 1)));
    }
    __m256d total = _mm256_add_pd(sums[0], sums[1]);
    __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(total), _mm256_extractf128_pd(total, 1));
    double row_sum = _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
    for (; i < vocab; i++) {
        double e = exp((double)logits[i] - max_logit);
        row_sum += e;
        logits[i] = (float)e;
    }
    *sum = row_sum;
    return (float)((double)target_logit - max_logit - log(row_sum));
}

HK_TARGET_AVX512 static float softmax_exps_row_avx512(float *logits, int32_t target, int vocab, double *sum) {
    float max_logit = hk_row_max_avx512(logits, vocab);
    int i;
    float target_logit = logits[target];

    __m512 max_vector = _mm512_set1_ps(max_logit);
    __m512d sums[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    for (i = 0; i < vocab; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(vocab - i));
        __m512 exps = hk_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, logits + i), max_vector));
        exps = _mm512_maskz_mov_ps(mask, exps);
        _mm512_mask_storeu_ps(logits + i, mask, exps);
        __m256 low = _mm512_castps512_ps256(exps);
        __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(exps), 1));
        sums[0] = _mm512_add_pd(sums[0], _mm512_cvtps_pd(low));
        sums[1] = _mm512_add_pd(sums[1], _mm512_cvtps_pd(high));
    }
    double row_sum = _mm512_reduce_add_pd(_mm512_add_pd(sums[0], sums[1]));
    *sum = row_sum;
    return (float)((double)target_logit - max_logit - log(row_sum));
}

/// Turns a row of exps into c * (onehot - exps / sum). The compiler vectorises the main loop.
static void gradient_from_exps(float *row /* [vocab] */, int32_t target, float coefficient, double sum, int vocab) {
    float scale = (float)((double)coefficient / sum);
    double target_probability = (double)row[target] / sum;
    for (int i = 0; i < vocab; i++) row[i] = -(row[i] * scale);
    // c (1 - p) in double: c - c p in f32 would lose the small difference when p is close to 1.
    row[target] = (float)((double)coefficient * (1.0 - target_probability));
}

static float log_softmax_backward_row(softmax_exps_row row_kernel, float *row, int32_t target, float coefficient,
                                      int vocab) {
    if (target < 0) {
        memset(row, 0, (size_t)vocab * sizeof(float));
        return 0.0f;
    }
    if (target >= vocab) {
        for (int i = 0; i < vocab; i++) row[i] = NAN;
        return NAN;
    }
    double sum;
    float logp = row_kernel(row, target, vocab, &sum);
    if (coefficient == 0.0f) {
        memset(row, 0, (size_t)vocab * sizeof(float));
    } else {
        gradient_from_exps(row, target, coefficient, sum, vocab);
    }
    return logp;
}

void hk_log_softmax_gather_backward(float *logits /* [rows, vocab] in: logits, out: gradient */,
                                    const int32_t *targets /* [rows] */, const float *coefficients /* [rows] */,
                                    float *logp /* [rows] */, int rows, int vocab) {
    if (rows <= 0 || vocab <= 0) return;
    softmax_exps_row row_kernel;
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: row_kernel = softmax_exps_row_avx512; break;
    case HK_ISA_AVX2: row_kernel = softmax_exps_row_avx2; break;
    default: row_kernel = softmax_exps_row_scalar; break;
    }
    int threads = hk_thread_count();
    if (threads > 1 && rows > 1 && (size_t)rows * (size_t)vocab >= HK_PARALLEL_ELEMENTS / 4) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int r = 0; r < rows; r++) {
            logp[r] = log_softmax_backward_row(row_kernel, logits + (size_t)r * vocab, targets[r], coefficients[r], vocab);
        }
    } else {
        for (int r = 0; r < rows; r++) {
            logp[r] = log_softmax_backward_row(row_kernel, logits + (size_t)r * vocab, targets[r], coefficients[r], vocab);
        }
    }
}

void hk_log_softmax_gather_backward_ref(float *logits /* [rows, vocab] in: logits, out: gradient */,
                                        const int32_t *targets /* [rows] */, const float *coefficients /* [rows] */,
                                        float *logp /* [rows] */, int rows, int vocab) {
    for (int r = 0; r < rows; r++) {
        float *row = logits + (size_t)r * vocab;
        int32_t target = targets[r];
        if (target < 0 || target >= vocab) {
            float fill = target < 0 ? 0.0f : NAN;
            for (int i = 0; i < vocab; i++) row[i] = fill;
            logp[r] = fill;
            continue;
        }
        double max_logit = -INFINITY;
        for (int i = 0; i < vocab; i++) max_logit = row[i] > max_logit ? row[i] : max_logit;
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += exp((double)row[i] - max_logit);
        logp[r] = (float)((double)row[target] - max_logit - log(sum));
        double coefficient = coefficients[r];
        for (int i = 0; i < vocab; i++) {
            double probability = exp((double)row[i] - max_logit) / sum;
            row[i] = (float)(coefficient * ((i == target ? 1.0 : 0.0) - probability));
        }
    }
}

// MARK: - GELU backward

// Exact: d/dx [x Phi(x)] = Phi(x) + x phi(x). Tanh form: with t = tanh(u), u = c (x + a x^3),
// d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
static inline float gelu_derivative(float x, int tanh_form) {
    if (tanh_form) {
        const float c = 0.7978845608028654f, a = 0.044715f;
        float t = tanhf(c * (x + a * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * a * x * x);
    }
    float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
    return cdf + x * pdf;
}

void hk_gelu_backward(const float *x /* [n] */, const float *dy /* [n] */, float *dx /* [n] */, size_t n, int tanh_form) {
    int threads = hk_thread_count();
    if (threads > 1 && n >= HK_PARALLEL_ELEMENTS) {
#pragma omp parallel num_threads(threads)
        {
            size_t begin, end;
            hk_split_range(n, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
            for (size_t i = begin; i < end; i++) dx[i] = dy[i] * gelu_derivative(x[i], tanh_form);
        }
    } else {
        for (size_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_derivative(x[i], tanh_form);
    }
}
