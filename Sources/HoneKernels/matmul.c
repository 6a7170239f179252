// Decode matrix times a few activation rows: y[r, o] = sum_i w[o, i] * x[r, i].
//
// With 1..16 activation rows the work is a handful of FMAs per weight element, so the kernel is bound
// by reading the weights. Each thread owns a contiguous range of output rows; it walks them four at a
// time, and for those four weight rows runs every activation row (in register tiles of up to six rows)
// before moving on, so the weights come from memory once and any second pass hits L2.
#include "hk_internal.h"

typedef enum { WEIGHTS_F32, WEIGHTS_F16, WEIGHTS_BF16 } weight_format;

/// Computes outputs [first_output, end_output) for every activation row.
typedef void (*matmul_range)(const void *w, const float *x, float *y, int rows, int in, int out, int first_output,
                             int end_output);

/// Output rows per register tile: four weight streams keep the prefetchers busy without spilling.
#define OUTPUTS_PER_TILE 4

// MARK: - Parallel driver

static void matmul_in_parallel(matmul_range range, const void *w /* [out, in] */, const float *x /* [rows, in] */,
                               float *y /* [rows, out] */, int rows, int in, int out) {
    if (rows <= 0 || out <= 0) return;
    size_t tiles = ((size_t)out + OUTPUTS_PER_TILE - 1) / OUTPUTS_PER_TILE;
    int threads = hk_thread_count();
    // Below ~64K multiply-adds a team fork costs more than it saves.
    if (threads <= 1 || tiles < 2 || (size_t)out * (size_t)in * (size_t)rows < ((size_t)1 << 16)) {
        range(w, x, y, rows, in, out, 0, out);
        return;
    }
    if ((size_t)threads > tiles) threads = (int)tiles;
#pragma omp parallel num_threads(threads)
    {
        // Static split into contiguous tile ranges: each output is always computed by the same code
        // path, so results do not depend on the thread count.
        size_t first_tile, end_tile;
        hk_split_range(tiles, omp_get_thread_num(), omp_get_num_threads(), &first_tile, &end_tile);
        size_t first_output = first_tile * OUTPUTS_PER_TILE, end_output = end_tile * OUTPUTS_PER_TILE;
        if (end_output > (size_t)out) end_output = (size_t)out;
        if (first_output < end_output) range(w, x, y, rows, in, out, (int)first_output, (int)end_output);
    }
}

// MARK: - References

void hk_matmul_rows_f32_ref(const float *w /* [out, in] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                            int rows, int in, int out) {
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < out; o++) {
            double sum = 0;
            for (int i = 0; i < in; i++) sum += (double)w[(size_t)o * in + i] * x[(size_t)r * in + i];
            y[(size_t)r * out + o] = (float)sum;
        }
    }
}

void hk_matmul_rows_f16_ref(const uint16_t *w /* [out, in] */, const float *x /* [rows, in] */,
                            float *y /* [rows, out] */, int rows, int in, int out) {
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < out; o++) {
            double sum = 0;
            for (int i = 0; i < in; i++) {
                sum += (double)hk_f16_to_f32_scalar(w[(size_t)o * in + i]) * x[(size_t)r * in + i];
            }
            y[(size_t)r * out + o] = (float)sum;
        }
    }
}

void hk_matmul_rows_bf16_ref(const uint16_t *w /* [out, in] */, const float *x /* [rows, in] */,
                             float *y /* [rows, out] */, int rows, int in, int out) {
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < out; o++) {
            double sum = 0;
            for (int i = 0; i < in; i++) {
                sum += (double)hk_bf16_to_f32_scalar(w[(size_t)o * in + i]) * x[(size_t)r * in + i];
            }
            y[(size_t)r * out + o] = (float)sum;
        }
    }
}

// MARK: - Scalar

HK_INLINE float load_weight_scalar(const void *w, size_t index, weight_format format) {
    switch (format) {
    case WEIGHTS_F32: return ((const float *)w)[index];
    case WEIGHTS_F16: return hk_f16_to_f32_scalar(((const uint16_t *)w)[index]);
    default: return hk_bf16_to_f32_scalar(((const uint16_t *)w)[index]);
    }
}

HK_INLINE void matmul_range_scalar(const void *w, const float *x, float *y, int rows, int in, int out,
                                   int first_output, int end_output, weight_format format) {
    enum { MAX_ROWS = 16 };
    for (int o = first_output; o < end_output; o++) {
        // Each weight is converted once and used for up to 16 rows at a time.
        for (int first_row = 0; first_row < rows; first_row += MAX_ROWS) {
            int block_rows = rows - first_row < MAX_ROWS ? rows - first_row : MAX_ROWS;
            float sums[MAX_ROWS] = {0};
            for (int i = 0; i < in; i++) {
                float weight = load_weight_scalar(w, (size_t)o * in + i, format);
                for (int r = 0; r < block_rows; r++) sums[r] += weight * x[(size_t)(first_row + r) * in + i];
            }
            for (int r = 0; r < block_rows; r++) y[(size_t)(first_row + r) * out + o] = sums[r];
        }
    }
}

static void matmul_range_f32_scalar(const void *w, const float *x, float *y, int rows, int in, int out,
                                    int first_output, int end_output) {
    matmul_range_scalar(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_F32);
}
static void matmul_range_f16_scalar(const void *w, const float *x, float *y, int rows, int in, int out,
                                    int first_output, int end_output) {
    matmul_range_scalar(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_F16);
}
static void matmul_range_bf16_scalar(const void *w, const float *x, float *y, int rows, int in, int out,
                                     int first_output, int end_output) {
    matmul_range_scalar(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_BF16);
}

// MARK: - AVX2

/// 16 ymm registers: a 4 x 2 tile uses 8 accumulators, 4 weight vectors and 1 activation vector.
#define AVX2_MAX_TILE_ROWS 2

HK_TARGET_AVX2 HK_INLINE __m256 load_weights_avx2(const void *row, int i, weight_format format) {
    switch (format) {
    case WEIGHTS_F32: return _mm256_loadu_ps((const float *)row + i);
    case WEIGHTS_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    default: {
        __m256i widened = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(widened, 16));
    }
    }
}

/// y[first_row .. + tile_rows, first_output .. + tile_outputs]; tile sizes are compile-time constants
/// after inlining, so the accumulator arrays live in registers.
HK_TARGET_AVX2 HK_INLINE void tile_avx2(const void *w, const float *x, float *y, int in, int out, int first_output,
                                        int first_row, const int tile_outputs, const int tile_rows,
                                        weight_format format) {
    size_t element_size = format == WEIGHTS_F32 ? sizeof(float) : sizeof(uint16_t);
    const void *weight_rows[OUTPUTS_PER_TILE];
    const float *x_rows[AVX2_MAX_TILE_ROWS];
    const char *next_tile_rows[OUTPUTS_PER_TILE];
    __m256 sums[OUTPUTS_PER_TILE][AVX2_MAX_TILE_ROWS];
    for (int o = 0; o < tile_outputs; o++) {
        weight_rows[o] = (const char *)w + (size_t)(first_output + o) * in * element_size;
        next_tile_rows[o] = (const char *)weight_rows[o] + (size_t)OUTPUTS_PER_TILE * in * element_size;
        for (int r = 0; r < tile_rows; r++) sums[o][r] = _mm256_setzero_ps();
    }
    for (int r = 0; r < tile_rows; r++) x_rows[r] = x + (size_t)(first_row + r) * in;

    int i = 0;
    for (; i + 8 <= in; i += 8) {
        __m256 weights[OUTPUTS_PER_TILE];
        // Next tile's rows, as in tile_avx512.
        for (int o = 0; o < tile_outputs; o++) _mm_prefetch(next_tile_rows[o] + (size_t)i * element_size, _MM_HINT_T0);
        for (int o = 0; o < tile_outputs; o++) weights[o] = load_weights_avx2(weight_rows[o], i, format);
        for (int r = 0; r < tile_rows; r++) {
            __m256 activations = _mm256_loadu_ps(x_rows[r] + i);
            for (int o = 0; o < tile_outputs; o++) sums[o][r] = _mm256_fmadd_ps(weights[o], activations, sums[o][r]);
        }
    }
    for (int o = 0; o < tile_outputs; o++) {
        for (int r = 0; r < tile_rows; r++) {
            float sum = hk_sum_avx2(sums[o][r]);
            // The last in % 8 elements: no 16-bit masked loads before AVX-512, and it is short.
            for (int tail = i; tail < in; tail++) sum += load_weight_scalar(weight_rows[o], tail, format) * x_rows[r][tail];
            y[(size_t)(first_row + r) * out + first_output + o] = sum;
        }
    }
}

HK_TARGET_AVX2 HK_INLINE void tiles_for_outputs_avx2(const void *w, const float *x, float *y, int rows, int in,
                                                     int out, int first_output, const int tile_outputs,
                                                     weight_format format) {
    for (int first_row = 0; first_row < rows; first_row += AVX2_MAX_TILE_ROWS) {
        if (rows - first_row >= 2) tile_avx2(w, x, y, in, out, first_output, first_row, tile_outputs, 2, format);
        else tile_avx2(w, x, y, in, out, first_output, first_row, tile_outputs, 1, format);
    }
}

HK_TARGET_AVX2 HK_INLINE void matmul_range_avx2(const void *w, const float *x, float *y, int rows, int in, int out,
                                                int first_output, int end_output, weight_format format) {
    int o = first_output;
    for (; o + OUTPUTS_PER_TILE <= end_output; o += OUTPUTS_PER_TILE) {
        tiles_for_outputs_avx2(w, x, y, rows, in, out, o, OUTPUTS_PER_TILE, format);
    }
    for (; o < end_output; o++) tiles_for_outputs_avx2(w, x, y, rows, in, out, o, 1, format);
}

HK_TARGET_AVX2 static void matmul_range_f32_avx2(const void *w, const float *x, float *y, int rows, int in, int out,
                                                 int first_output, int end_output) {
    matmul_range_avx2(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_F32);
}
HK_TARGET_AVX2 static void matmul_range_f16_avx2(const void *w, const float *x, float *y, int rows, int in, int out,
                                                 int first_output, int end_output) {
    matmul_range_avx2(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_F16);
}
HK_TARGET_AVX2 static void matmul_range_bf16_avx2(const void *w, const float *x, float *y, int rows, int in, int out,
                                                  int first_output, int end_output) {
    matmul_range_avx2(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_BF16);
}

// MARK: - AVX-512

/// 32 zmm registers: a 4 x 6 tile uses 24 accumulators, 4 weight vectors and 1 activation vector.
#define AVX512_MAX_TILE_ROWS 6

/// Sixteen weights from `row` at element i, converted to f32; lanes outside `mask` are zero and their
/// memory is not touched. With a constant full mask the compiler emits plain loads.
HK_TARGET_AVX512 HK_INLINE __m512 load_weights_avx512(const void *row, int i, weight_format format, __mmask16 mask) {
    if (format == WEIGHTS_F32) return _mm512_maskz_loadu_ps(mask, (const float *)row + i);
    __m256i raw = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + i);
    if (format == WEIGHTS_F16) return _mm512_cvtph_ps(raw);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16)); // bf16 is the top half of f32
}

HK_TARGET_AVX512 HK_INLINE void tile_avx512(const void *w, const float *x, float *y, int in, int out,
                                            int first_output, int first_row, const int tile_outputs,
                                            const int tile_rows, weight_format format) {
    size_t element_size = format == WEIGHTS_F32 ? sizeof(float) : sizeof(uint16_t);
    const void *weight_rows[OUTPUTS_PER_TILE];
    const float *x_rows[AVX512_MAX_TILE_ROWS];
    const char *next_tile_rows[OUTPUTS_PER_TILE];
    __m512 sums[OUTPUTS_PER_TILE][AVX512_MAX_TILE_ROWS];
    for (int o = 0; o < tile_outputs; o++) {
        weight_rows[o] = (const char *)w + (size_t)(first_output + o) * in * element_size;
        next_tile_rows[o] = (const char *)weight_rows[o] + (size_t)OUTPUTS_PER_TILE * in * element_size;
        for (int r = 0; r < tile_rows; r++) sums[o][r] = _mm512_setzero_ps();
    }
    for (int r = 0; r < tile_rows; r++) x_rows[r] = x + (size_t)(first_row + r) * in;

    int i = 0;
    for (; i + 16 <= in; i += 16) {
        __m512 weights[OUTPUTS_PER_TILE];
        // Software prefetch of the next tile's rows at the same offset: the hardware prefetchers stop at
        // page boundaries (a 2048-wide f16 row is exactly one page), and with several activation rows
        // the compute would otherwise not overlap the memory reads (measured 15 -> 30 GB/s at rows = 4).
        // Prefetches never fault, so running past the last row is harmless.
        for (int o = 0; o < tile_outputs; o++) _mm_prefetch(next_tile_rows[o] + (size_t)i * element_size, _MM_HINT_T0);
        for (int o = 0; o < tile_outputs; o++) weights[o] = load_weights_avx512(weight_rows[o], i, format, 0xFFFF);
        for (int r = 0; r < tile_rows; r++) {
            __m512 activations = _mm512_loadu_ps(x_rows[r] + i);
            for (int o = 0; o < tile_outputs; o++) sums[o][r] = _mm512_fmadd_ps(weights[o], activations, sums[o][r]);
        }
    }
    if (i < in) {
        // Masked tail: zero weights and activations outside the row add nothing.
        __mmask16 mask = hk_tail_mask16((size_t)(in - i));
        __m512 weights[OUTPUTS_PER_TILE];
        for (int o = 0; o < tile_outputs; o++) weights[o] = load_weights_avx512(weight_rows[o], i, format, mask);
        for (int r = 0; r < tile_rows; r++) {
            __m512 activations = _mm512_maskz_loadu_ps(mask, x_rows[r] + i);
            for (int o = 0; o < tile_outputs; o++) sums[o][r] = _mm512_fmadd_ps(weights[o], activations, sums[o][r]);
        }
    }
    for (int r = 0; r < tile_rows; r++) {
        for (int o = 0; o < tile_outputs; o++) {
            y[(size_t)(first_row + r) * out + first_output + o] = _mm512_reduce_add_ps(sums[o][r]);
        }
    }
}

HK_TARGET_AVX512 HK_INLINE void tiles_for_outputs_avx512(const void *w, const float *x, float *y, int rows, int in,
                                                         int out, int first_output, const int tile_outputs,
                                                         weight_format format) {
    // Balanced row tiles of at most six: 8 rows run as 4 + 4 rather than 6 + 2.
    int tile_count = (rows + AVX512_MAX_TILE_ROWS - 1) / AVX512_MAX_TILE_ROWS;
    for (int tile = 0; tile < tile_count; tile++) {
        int first_row = tile * rows / tile_count, end_row = (tile + 1) * rows / tile_count;
        switch (end_row - first_row) {
        case 1: tile_avx512(w, x, y, in, out, first_output, first_row, tile_outputs, 1, format); break;
        case 2: tile_avx512(w, x, y, in, out, first_output, first_row, tile_outputs, 2, format); break;
        case 3: tile_avx512(w, x, y, in, out, first_output, first_row, tile_outputs, 3, format); break;
        case 4: tile_avx512(w, x, y, in, out, first_output, first_row, tile_outputs, 4, format); break;
        case 5: tile_avx512(w, x, y, in, out, first_output, first_row, tile_outputs, 5, format); break;
        default: tile_avx512(w, x, y, in, out, first_output, first_row, tile_outputs, 6, format); break;
        }
    }
}

HK_TARGET_AVX512 HK_INLINE void matmul_range_avx512(const void *w, const float *x, float *y, int rows, int in,
                                                    int out, int first_output, int end_output,
                                                    weight_format format) {
    int o = first_output;
    // One activation row (decoding one sequence): one weight row at a time, so the weights are read as a single
    // sequential stream (rows are contiguous), which the hardware prefetchers follow across pages; four
    // interleaved row streams measured 25 GB/s from one core, one stream 32 (TinyLlama F16 decode 12.2 → 15.5
    // tokens/s). With more activation rows, four outputs per tile reuse each activation load four times.
    // Either way each output is one accumulator chain over the row, so results do not depend on the tiling.
    if (rows > 1) {
        for (; o + OUTPUTS_PER_TILE <= end_output; o += OUTPUTS_PER_TILE) {
            tiles_for_outputs_avx512(w, x, y, rows, in, out, o, OUTPUTS_PER_TILE, format);
        }
    }
    for (; o < end_output; o++) tiles_for_outputs_avx512(w, x, y, rows, in, out, o, 1, format);
}

HK_TARGET_AVX512 static void matmul_range_f32_avx512(const void *w, const float *x, float *y, int rows, int in,
                                                     int out, int first_output, int end_output) {
    matmul_range_avx512(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_F32);
}
HK_TARGET_AVX512 static void matmul_range_f16_avx512(const void *w, const float *x, float *y, int rows, int in,
                                                     int out, int first_output, int end_output) {
    matmul_range_avx512(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_F16);
}
HK_TARGET_AVX512 static void matmul_range_bf16_avx512(const void *w, const float *x, float *y, int rows, int in,
                                                      int out, int first_output, int end_output) {
    matmul_range_avx512(w, x, y, rows, in, out, first_output, end_output, WEIGHTS_BF16);
}

// MARK: - Dispatch

void hk_matmul_rows_f32(const float *w /* [out, in] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                        int rows, int in, int out) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: matmul_in_parallel(matmul_range_f32_avx512, w, x, y, rows, in, out); break;
    case HK_ISA_AVX2: matmul_in_parallel(matmul_range_f32_avx2, w, x, y, rows, in, out); break;
    default: matmul_in_parallel(matmul_range_f32_scalar, w, x, y, rows, in, out); break;
    }
}

void hk_matmul_rows_f16(const uint16_t *w /* [out, in] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                        int rows, int in, int out) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: matmul_in_parallel(matmul_range_f16_avx512, w, x, y, rows, in, out); break;
    case HK_ISA_AVX2: matmul_in_parallel(matmul_range_f16_avx2, w, x, y, rows, in, out); break;
    default: matmul_in_parallel(matmul_range_f16_scalar, w, x, y, rows, in, out); break;
    }
}

void hk_matmul_rows_bf16(const uint16_t *w /* [out, in] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                         int rows, int in, int out) {
    switch (hk_isa_current()) {
    case HK_ISA_AVX512: matmul_in_parallel(matmul_range_bf16_avx512, w, x, y, rows, in, out); break;
    case HK_ISA_AVX2: matmul_in_parallel(matmul_range_bf16_avx2, w, x, y, rows, in, out); break;
    default: matmul_in_parallel(matmul_range_bf16_scalar, w, x, y, rows, in, out); break;
    }
}
