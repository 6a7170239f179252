// Row normalisations: RMSNorm (Llama) and LayerNorm (torch semantics, biased variance).
#include "hk_internal.h"

/// Normalises one row of `dim` values.
typedef void (*norm_row)(const float *x, const float *weight, const float *bias, float *y, int dim, float eps);

/// Rows are independent, so a static split over rows is deterministic for any thread count.
static void normalise_rows(norm_row row_kernel, const float *x /* [rows, dim] */, const float *weight,
                           const float *bias, float *y /* [rows, dim] */, int rows, int dim, float eps) {
    if (rows <= 0 || dim <= 0) return;
    int threads = hk_thread_count();
    if (threads > 1 && rows > 1 && (size_t)rows * (size_t)dim >= HK_PARALLEL_ELEMENTS / 2) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int r = 0; r < rows; r++) row_kernel(x + (size_t)r * dim, weight, bias, y + (size_t)r * dim, dim, eps);
    } else {
        for (int r = 0; r < rows; r++) row_kernel(x + (size_t)r * dim, weight, bias, y + (size_t)r * dim, dim, eps);
    }
}

// MARK: - RMSNorm

void hk_rmsnorm_ref(const float *x /* [rows, dim] */, const float *weight /* [dim] */, float *y /* [rows, dim] */,
                    int rows, int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * dim;
        double sum_of_squares = 0;
        for (int i = 0; i < dim; i++) sum_of_squares += (double)row[i] * row[i];
        float mean_square = (float)(sum_of_squares / dim);
        float inverse_rms = 1.0f / sqrtf(mean_square + eps);
        // HF order: normalise in f32, then multiply by the weight.
        for (int i = 0; i < dim; i++) y[(size_t)r * dim + i] = weight[i] * (row[i] * inverse_rms);
    }
}

static void rmsnorm_row_scalar(const float *x, const float *weight, const float *bias, float *y, int dim, float eps) {
    (void)bias;
    // Four partial sums: shorter dependency chains and smaller rounding error than one running sum.
    float partial[4] = {0, 0, 0, 0};
    int i = 0;
    for (; i + 4 <= dim; i += 4) {
        for (int lane = 0; lane < 4; lane++) partial[lane] += x[i + lane] * x[i + lane];
    }
    for (; i < dim; i++) partial[0] += x[i] * x[i];
    float sum_of_squares = (partial[0] + partial[1]) + (partial[2] + partial[3]);
    float inverse_rms = 1.0f / sqrtf(sum_of_squares / (float)dim + eps);
    for (i = 0; i < dim; i++) y[i] = weight[i] * (x[i] * inverse_rms);
}

HK_TARGET_AVX2 static void rmsnorm_row_avx2(const float *x, const float *weight, const float *bias, float *y, int dim,
                                            float eps) {
    (void)bias;
    __m256 sums[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int i = 0;
    for (; i + 32 <= dim; i += 32) {
        for (int part = 0; part < 4; part++) {
            __m256 values = _mm256_loadu_ps(x + i + 8 * part);
            sums[part] = _mm256_fmadd_ps(values, values, sums[part]);
        }
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 values = _mm256_loadu_ps(x + i);
        sums[0] = _mm256_fmadd_ps(values, values, sums[0]);
    }
    if (i < dim) {
        __m256 values = _mm256_maskload_ps(x + i, hk_tail_mask8((size_t)(dim - i)));
        sums[1] = _mm256_fmadd_ps(values, values, sums[1]);
    }
    float sum_of_squares = hk_sum_avx2(_mm256_add_ps(_mm256_add_ps(sums[0], sums[1]), _mm256_add_ps(sums[2], sums[3])));
    float inverse_rms = 1.0f / sqrtf(sum_of_squares / (float)dim + eps);
    __m256 scale = _mm256_set1_ps(inverse_rms);
    for (i = 0; i + 8 <= dim; i += 8) {
        __m256 normalised = _mm256_mul_ps(_mm256_loadu_ps(x + i), scale);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(weight + i), normalised));
    }
    for (; i < dim; i++) y[i] = weight[i] * (x[i] * inverse_rms);
}

HK_TARGET_AVX512 static void rmsnorm_row_avx512(const float *x, const float *weight, const float *bias, float *y,
                                                int dim, float eps) {
    (void)bias;
    __m512 sums[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int i = 0;
    for (; i + 64 <= dim; i += 64) {
        for (int part = 0; part < 4; part++) {
            __m512 values = _mm512_loadu_ps(x + i + 16 * part);
            sums[part] = _mm512_fmadd_ps(values, values, sums[part]);
        }
    }
    for (; i < dim; i += 16) {
        __m512 values = _mm512_maskz_loadu_ps(hk_tail_mask16((size_t)(dim - i)), x + i);
        sums[0] = _mm512_fmadd_ps(values, values, sums[0]);
    }
    float sum_of_squares =
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(sums[0], sums[1]), _mm512_add_ps(sums[2], sums[3])));
    __m512 scale = _mm512_set1_ps(1.0f / sqrtf(sum_of_squares / (float)dim + eps));
    for (i = 0; i < dim; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(dim - i));
        __m512 normalised = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), scale);
        _mm512_mask_storeu_ps(y + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, weight + i), normalised));
    }
}

void hk_rmsnorm(const float *x /* [rows, dim] */, const float *weight /* [dim] */, float *y /* [rows, dim] */,
                int rows, int dim, float eps) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: normalise_rows(rmsnorm_row_avx512, x, weight, NULL, y, rows, dim, eps); break;
    case HK_ISA_AVX2: normalise_rows(rmsnorm_row_avx2, x, weight, NULL, y, rows, dim, eps); break;
    default: normalise_rows(rmsnorm_row_scalar, x, weight, NULL, y, rows, dim, eps); break;
    }
}

// MARK: - LayerNorm

void hk_layernorm_ref(const float *x /* [rows, dim] */, const float *weight /* [dim] or NULL */,
                      const float *bias /* [dim] or NULL */, float *y /* [rows, dim] */, int rows, int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * dim;
        double sum = 0;
        for (int i = 0; i < dim; i++) sum += row[i];
        double mean = sum / dim;
        double sum_of_squares = 0;
        for (int i = 0; i < dim; i++) sum_of_squares += (row[i] - mean) * (row[i] - mean);
        float inverse_std = (float)(1.0 / sqrt(sum_of_squares / dim + eps));
        float mean_f32 = (float)mean;
        for (int i = 0; i < dim; i++) {
            float value = (row[i] - mean_f32) * inverse_std;
            if (weight) value *= weight[i];
            if (bias) value += bias[i];
            y[(size_t)r * dim + i] = value;
        }
    }
}

static void layernorm_row_scalar(const float *x, const float *weight, const float *bias, float *y, int dim,
                                 float eps) {
    // Scalar fallback: double sums, two passes (no E[x^2] - E[x]^2 cancellation).
    double sum = 0;
    for (int i = 0; i < dim; i++) sum += x[i];
    double mean = sum / dim;
    double sum_of_squares = 0;
    for (int i = 0; i < dim; i++) sum_of_squares += (x[i] - mean) * (x[i] - mean);
    float inverse_std = (float)(1.0 / sqrt(sum_of_squares / dim + eps));
    float mean_f32 = (float)mean;
    for (int i = 0; i < dim; i++) {
        float value = (x[i] - mean_f32) * inverse_std;
        if (weight) value *= weight[i];
        if (bias) value += bias[i];
        y[i] = value;
    }
}

HK_TARGET_AVX2 static void layernorm_row_avx2(const float *x, const float *weight, const float *bias, float *y,
                                              int dim, float eps) {
    int vector_end = dim & ~7;
    __m256 sums[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    int i = 0;
    for (; i + 16 <= vector_end; i += 16) {
        sums[0] = _mm256_add_ps(sums[0], _mm256_loadu_ps(x + i));
        sums[1] = _mm256_add_ps(sums[1], _mm256_loadu_ps(x + i + 8));
    }
    for (; i < vector_end; i += 8) sums[0] = _mm256_add_ps(sums[0], _mm256_loadu_ps(x + i));
    float sum = hk_sum_avx2(_mm256_add_ps(sums[0], sums[1]));
    for (; i < dim; i++) sum += x[i];
    float mean = sum / (float)dim;

    // Second pass: squared deviations, plus the deviations themselves, whose sum (zero in exact
    // arithmetic) corrects the rounding error of the first-pass mean (the corrected two-pass algorithm).
    __m256 mean_vector = _mm256_set1_ps(mean);
    __m256 deviation_sums = _mm256_setzero_ps();
    sums[0] = sums[1] = _mm256_setzero_ps();
    for (i = 0; i + 16 <= vector_end; i += 16) {
        __m256 first = _mm256_sub_ps(_mm256_loadu_ps(x + i), mean_vector);
        __m256 second = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mean_vector);
        deviation_sums = _mm256_add_ps(deviation_sums, _mm256_add_ps(first, second));
        sums[0] = _mm256_fmadd_ps(first, first, sums[0]);
        sums[1] = _mm256_fmadd_ps(second, second, sums[1]);
    }
    for (; i < vector_end; i += 8) {
        __m256 deviation = _mm256_sub_ps(_mm256_loadu_ps(x + i), mean_vector);
        deviation_sums = _mm256_add_ps(deviation_sums, deviation);
        sums[0] = _mm256_fmadd_ps(deviation, deviation, sums[0]);
    }
    float sum_of_squares = hk_sum_avx2(_mm256_add_ps(sums[0], sums[1]));
    float deviation_sum = hk_sum_avx2(deviation_sums);
    for (; i < dim; i++) {
        deviation_sum += x[i] - mean;
        sum_of_squares += (x[i] - mean) * (x[i] - mean);
    }
    float inverse_std = 1.0f / sqrtf((sum_of_squares - deviation_sum * deviation_sum / (float)dim) / (float)dim + eps);
    mean += deviation_sum / (float)dim;
    mean_vector = _mm256_set1_ps(mean);

    __m256 scale = _mm256_set1_ps(inverse_std);
    for (i = 0; i < vector_end; i += 8) {
        __m256 value = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mean_vector), scale);
        if (weight) value = _mm256_mul_ps(value, _mm256_loadu_ps(weight + i));
        if (bias) value = _mm256_add_ps(value, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(y + i, value);
    }
    for (; i < dim; i++) {
        float value = (x[i] - mean) * inverse_std;
        if (weight) value *= weight[i];
        if (bias) value += bias[i];
        y[i] = value;
    }
}

HK_TARGET_AVX512 static void layernorm_row_avx512(const float *x, const float *weight, const float *bias, float *y,
                                                  int dim, float eps) {
    __m512 sums[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    int i = 0;
    for (; i + 32 <= dim; i += 32) {
        sums[0] = _mm512_add_ps(sums[0], _mm512_loadu_ps(x + i));
        sums[1] = _mm512_add_ps(sums[1], _mm512_loadu_ps(x + i + 16));
    }
    for (; i < dim; i += 16) sums[0] = _mm512_add_ps(sums[0], _mm512_maskz_loadu_ps(hk_tail_mask16((size_t)(dim - i)), x + i));
    float mean = _mm512_reduce_add_ps(_mm512_add_ps(sums[0], sums[1])) / (float)dim;

    // Second pass: squared deviations, plus the deviations themselves, whose sum (zero in exact
    // arithmetic) corrects the rounding error of the first-pass mean (the corrected two-pass algorithm).
    __m512 mean_vector = _mm512_set1_ps(mean);
    __m512 deviation_sums = _mm512_setzero_ps();
    sums[0] = sums[1] = _mm512_setzero_ps();
    for (i = 0; i + 32 <= dim; i += 32) {
        __m512 first = _mm512_sub_ps(_mm512_loadu_ps(x + i), mean_vector);
        __m512 second = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), mean_vector);
        deviation_sums = _mm512_add_ps(deviation_sums, _mm512_add_ps(first, second));
        sums[0] = _mm512_fmadd_ps(first, first, sums[0]);
        sums[1] = _mm512_fmadd_ps(second, second, sums[1]);
    }
    for (; i < dim; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(dim - i));
        // Lanes outside the row must contribute 0, not (0 - mean)^2.
        __m512 deviation = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, x + i), mean_vector);
        deviation_sums = _mm512_add_ps(deviation_sums, deviation);
        sums[0] = _mm512_fmadd_ps(deviation, deviation, sums[0]);
    }
    float sum_of_squares = _mm512_reduce_add_ps(_mm512_add_ps(sums[0], sums[1]));
    float deviation_sum = _mm512_reduce_add_ps(deviation_sums);
    __m512 scale = _mm512_set1_ps(
        1.0f / sqrtf((sum_of_squares - deviation_sum * deviation_sum / (float)dim) / (float)dim + eps));
    mean_vector = _mm512_set1_ps(mean + deviation_sum / (float)dim);

    for (i = 0; i < dim; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(dim - i));
        __m512 value = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), mean_vector), scale);
        if (weight) value = _mm512_mul_ps(value, _mm512_maskz_loadu_ps(mask, weight + i));
        if (bias) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, bias + i));
        _mm512_mask_storeu_ps(y + i, mask, value);
    }
}

void hk_layernorm(const float *x /* [rows, dim] */, const float *weight /* [dim] or NULL */,
                  const float *bias /* [dim] or NULL */, float *y /* [rows, dim] */, int rows, int dim, float eps) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: normalise_rows(layernorm_row_avx512, x, weight, bias, y, rows, dim, eps); break;
    case HK_ISA_AVX2: normalise_rows(layernorm_row_avx2, x, weight, bias, y, rows, dim, eps); break;
    default: normalise_rows(layernorm_row_scalar, x, weight, bias, y, rows, dim, eps); break;
    }
}
