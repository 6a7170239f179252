// MARK: - Many-row matrix products over OpenBLAS
//
// Why tiles: f16/bf16 weights are converted to f32 a tile of output rows at a time (a few MB that stay in
// cache), so no f32 copy of a whole matrix is ever made. Why OpenMP outside and single-threaded sgemm inside:
// OpenBLAS and OpenMP each keep a thread pool; running both oversubscribes the two cores (libomp's workers
// spin after a parallel region while OpenBLAS's threads want the same cores). One pool, OpenMP's, is in charge.

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

#include "hk_internal.h"
#include "hone_gemm.h"
#include "hone_kernels.h"
#include "hone_openmp.h"
#include "hone_quant.h"
#include "hone_train.h"

static void ensure_single_threaded_blas(void) {
    static int done = 0;
    if (!done) {
        openblas_set_num_threads(1);
        done = 1;
    }
}

// MARK: - Tile conversion (serial: called from inside the parallel region)

__attribute__((target("avx2,f16c")))
static void tile_f16_to_f32_f16c(const uint16_t *src /* [n] */, float *dst /* [n] */, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i half = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(half));
    }
    for (; i < n; i++) {
        __m128i half = _mm_cvtsi32_si128(src[i]);
        dst[i] = _mm_cvtss_f32(_mm_cvtph_ps(half));
    }
}

static float f16_to_f32_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1F;
    uint32_t mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exponent = 127 - 15 + 1;
            while ((mantissa & 0x400) == 0) { mantissa <<= 1; exponent--; }
            mantissa &= 0x3FF;
            bits = sign | (exponent << 23) | (mantissa << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7F800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float result;
    memcpy(&result, &bits, 4);
    return result;
}

/// Element `index` of an F32, F16 or BF16 weight as f32 (exact), for the scalar paths.
static float float_weight_at(const void *w, int weight_type, size_t index) {
    if (weight_type == HK_TYPE_F32) return ((const float *)w)[index];
    if (weight_type == HK_TYPE_F16) return f16_to_f32_scalar(((const uint16_t *)w)[index]);
    uint32_t bits = (uint32_t)((const uint16_t *)w)[index] << 16;
    float weight;
    memcpy(&weight, &bits, 4);
    return weight;
}

static void tile_to_f32(const void *w, int weight_type, size_t offset, size_t n, float *dst /* [n] */) {
    if (weight_type == HK_TYPE_F16) {
        const uint16_t *src = (const uint16_t *)w + offset;
        if (hk_isa_current() >= HK_ISA_AVX2) {
            tile_f16_to_f32_f16c(src, dst, n);
        } else {
            for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32_scalar(src[i]);
        }
    } else {  // bf16: the upper half of an f32; the compiler vectorises the shift
        const uint16_t *src = (const uint16_t *)w + offset;
        uint32_t *out = (uint32_t *)dst;
        for (size_t i = 0; i < n; i++) out[i] = (uint32_t)src[i] << 16;
    }
}

// MARK: - Products

/// Tile height: at most about 2 MB of f32 weights (a multiple of 16 rows, so sgemm works on a wide enough block),
/// with the tile count a multiple of `threads` and the tiles of equal height, so no thread waits on another: a
/// 576×576 projection used to run as 512 + 64 rows (one thread idle 8/9 of the time) and 192-row ones on one thread.
int hk_gemm_tile_height(int in, int out, int threads) {
    int limit = (1 << 19) / (in > 0 ? in : 1);
    if (limit < 16) limit = 16;
    if (limit > 512) limit = 512;
    limit = (limit + 15) / 16 * 16;
    if (threads < 1) threads = 1;
    int tiles = (out + limit - 1) / limit;
    tiles = (tiles + threads - 1) / threads * threads;
    if (tiles < 1) tiles = 1;  // out = 0: no division by zero
    int tile = (out + tiles - 1) / tiles;
    tile = (tile + 15) / 16 * 16;
    return tile < 16 ? 16 : tile;
}

// MARK: - Packed panels: many rows without OpenBLAS's copies
//
// Why a kernel of our own for many rows: called once per weight tile, OpenBLAS packs the whole activation matrix
// again for every tile and clears the output before accumulating into it; on an MMLU scoring pass (~2,000 rows)
// those copies and the clearing were 11 % of the time, beside its 89 %-of-peak inner kernel (on the AVX2 path of a
// Zen 3 core too: 11.2 % beside its kernel's 70.7 %). Here activations are read in place (each value broadcast
// from its row), every panel of outputs is packed (and converted from f16/bf16) once per call, and every output is
// written once. Each output is a sum over `in` in index order whatever the row count or thread count, so a row's
// result does not depend on the rows beside it. AVX-512: panels of 32 outputs (two vectors) times blocks of 14
// rows (28 accumulators); AVX2: 16 outputs times 6 rows (12 of its 16 registers).

enum {
    PANEL_WIDTH = HK_PANEL_WIDTH,
    PANEL_ROWS = HK_PANEL_ROWS,
    PANEL_WIDTH_AVX2 = HK_PANEL_WIDTH_AVX2,
    PANEL_ROWS_AVX2 = HK_PANEL_ROWS_AVX2,
    PANEL_MIN_ROWS = 16,  // below this, packing a panel costs more than it saves: OpenBLAS tiles instead
};

/// The panels of one ISA: `pack` copies outputs [first, first + width) of the weight into `panel` as [in][width]
/// f32 (zeros past `out`; f16/bf16 rows are converted into `scratch` [width, in] first); `times_rows` sets
/// y[r, first + j] = sum_k x[r, k] * panel[k, j] for every row and the outputs below `out`.
typedef struct {
    int width, rows;
    void (*pack)(const void *w, int weight_type, int in, int out, int first, float *scratch, float *panel);
    void (*times_rows)(const float *panel /* [in, width] */, const float *x /* [rows, in] */, float *y /* [rows, out] */,
                       int rows, int in, int out, int first);
    /// Largest of z[0..<count], the first index holding it, and sum of exp(z - largest).
    void (*reduce)(const float *z, int count, float *maximum, int32_t *best, float *sum);
} panel_kernels;

/// The f32 rows a panel is packed from: the weight itself, or its outputs [first, first + count) converted.
static const float *panel_source_rows(const void *w, int weight_type, int in, int first, int count, float *scratch) {
    if (weight_type == HK_TYPE_F32) return (const float *)w + (size_t)first * in;
    tile_to_f32(w, weight_type, (size_t)first * in, (size_t)count * in, scratch);
    return scratch;
}

/// What the square transposes of a pack leave: the input indices past `full_inputs` of the first `full_outputs`
/// outputs, and the outputs past those (zeros past `count`).
static void pack_panel_rest(const float *rows /* [count, in] */, int in, int count, int width, int full_outputs,
                            int full_inputs, float *panel /* [in, width] */) {
    for (int j = 0; j < full_outputs; j++) {
        for (int k = full_inputs; k < in; k++) panel[(size_t)k * width + j] = rows[(size_t)j * in + k];
    }
    for (int j = full_outputs; j < width; j++) {
        for (int k = 0; k < in; k++) panel[(size_t)k * width + j] = j < count ? rows[(size_t)j * in + k] : 0.0f;
    }
}

// MARK: AVX-512

/// dst[k][j] = src[j][k] for a 16×16 block (hk_transpose_16x16 in registers) instead of 256 scalar stores that each
/// touch a different cache line.
HK_TARGET_AVX512 HK_INLINE void transpose_16x16(const float *src /* [16, lds] */, size_t lds,
                                                float *dst /* [16, ldd] */, size_t ldd) {
    __m512 rows[16], columns[16];
    for (int i = 0; i < 16; i++) rows[i] = _mm512_loadu_ps(src + (size_t)i * lds);
    hk_transpose_16x16(rows, columns);
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + (size_t)i * ldd, columns[i]);
}

/// The 32 weights of one input index become two aligned vectors for the micro-kernel.
HK_TARGET_AVX512 static void pack_panel(const void *w /* [out, in] of weight_type */, int weight_type, int in,
                                        int out, int first, float *scratch /* [32, in] */,
                                        float *panel /* [in, 32] */) {
    int count = out - first < PANEL_WIDTH ? out - first : PANEL_WIDTH;
    const float *rows = panel_source_rows(w, weight_type, in, first, count, scratch);
    int full_outputs = count / 16 * 16, full_inputs = in / 16 * 16;
    for (int j = 0; j < full_outputs; j += 16) {
        for (int k = 0; k < full_inputs; k += 16) {
            transpose_16x16(rows + (size_t)j * in + k, (size_t)in, panel + (size_t)k * PANEL_WIDTH + j, PANEL_WIDTH);
        }
    }
    pack_panel_rest(rows, in, count, PANEL_WIDTH, full_outputs, full_inputs, panel);
}

/// y[r, 0..<32] = sum_k x[r, k] * panel[k, 0..<32] for `row_count` (a constant after inlining) rows; `low` and
/// `high` mask the two output vectors of a last, narrower panel.
HK_TARGET_AVX512 HK_INLINE void panel_micro_kernel(const int row_count, const float *x /* [row_count, ldx] */,
                                                   size_t ldx, const float *panel /* [in, 32] */, int in,
                                                   float *y /* [row_count, ldy] */, size_t ldy, __mmask16 low,
                                                   __mmask16 high) {
    __m512 sums[PANEL_ROWS][2];
    for (int r = 0; r < row_count; r++) {
        sums[r][0] = _mm512_setzero_ps();
        sums[r][1] = _mm512_setzero_ps();
    }
    for (int k = 0; k < in; k++) {
        __m512 weights_low = _mm512_load_ps(panel + (size_t)k * PANEL_WIDTH);
        __m512 weights_high = _mm512_load_ps(panel + (size_t)k * PANEL_WIDTH + 16);
        for (int r = 0; r < row_count; r++) {
            __m512 value = _mm512_set1_ps(x[(size_t)r * ldx + k]);
            sums[r][0] = _mm512_fmadd_ps(value, weights_low, sums[r][0]);
            sums[r][1] = _mm512_fmadd_ps(value, weights_high, sums[r][1]);
        }
    }
    for (int r = 0; r < row_count; r++) {
        _mm512_mask_storeu_ps(y + (size_t)r * ldy, low, sums[r][0]);
        _mm512_mask_storeu_ps(y + (size_t)r * ldy + 16, high, sums[r][1]);
    }
}

/// panel_micro_kernel for a row count known only at run time (1–14): one specialised copy per count.
HK_TARGET_AVX512 void hk_panel_micro_kernel_rows(int row_count, const float *x /* [row_count, ldx] */, size_t ldx,
                                                 const float *panel /* [in, 32] */, int in,
                                                 float *y /* [row_count, ldy] */, size_t ldy, __mmask16 low,
                                                 __mmask16 high) {
    switch (row_count) {
#define HK_PANEL_ROWS_CASE(n) \
    case n: panel_micro_kernel(n, x, ldx, panel, in, y, ldy, low, high); break;
        HK_PANEL_ROWS_CASE(1) HK_PANEL_ROWS_CASE(2) HK_PANEL_ROWS_CASE(3) HK_PANEL_ROWS_CASE(4) HK_PANEL_ROWS_CASE(5)
        HK_PANEL_ROWS_CASE(6) HK_PANEL_ROWS_CASE(7) HK_PANEL_ROWS_CASE(8) HK_PANEL_ROWS_CASE(9) HK_PANEL_ROWS_CASE(10)
        HK_PANEL_ROWS_CASE(11) HK_PANEL_ROWS_CASE(12) HK_PANEL_ROWS_CASE(13) HK_PANEL_ROWS_CASE(14)
#undef HK_PANEL_ROWS_CASE
        default: break;
    }
}

/// One panel times every activation row: blocks of 14 rows, then one call for the 1–13 left over.
HK_TARGET_AVX512 static void panel_times_rows(const float *panel /* [in, 32] */, const float *x /* [rows, in] */,
                                              float *y /* [rows, out] */, int rows, int in, int out, int first) {
    int count = out - first < PANEL_WIDTH ? out - first : PANEL_WIDTH;
    __mmask16 low = count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
    __mmask16 high = count >= 32 ? (__mmask16)0xFFFF : count <= 16 ? (__mmask16)0 : (__mmask16)((1u << (count - 16)) - 1);
    int r = 0;
    for (; r + PANEL_ROWS <= rows; r += PANEL_ROWS) {
        panel_micro_kernel(PANEL_ROWS, x + (size_t)r * in, (size_t)in, panel, in, y + (size_t)r * out + first,
                           (size_t)out, low, high);
    }
    if (r < rows) {
        hk_panel_micro_kernel_rows(rows - r, x + (size_t)r * in, (size_t)in, panel, in, y + (size_t)r * out + first,
                                   (size_t)out, low, high);
    }
}

HK_TARGET_AVX512 static void reduce_logits_avx512(const float *z, int count, float *maximum, int32_t *best, float *sum) {
    __m512 maxima = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < count; i += 16) {
        maxima = _mm512_max_ps(maxima, _mm512_mask_loadu_ps(maxima, hk_tail_mask16((size_t)(count - i)), z + i));
    }
    float largest = _mm512_reduce_max_ps(maxima);
    int index = 0;
    while (index < count - 1 && !(z[index] == largest)) index++;
    __m512 max_vector = _mm512_set1_ps(largest), sums = _mm512_setzero_ps();
    for (int i = 0; i < count; i += 16) {
        __mmask16 mask = hk_tail_mask16((size_t)(count - i));
        __m512 shifted = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, z + i), max_vector);
        sums = _mm512_mask_add_ps(sums, mask, sums, hk_exp_avx512(shifted));
    }
    *maximum = largest;
    *best = index;
    *sum = _mm512_reduce_add_ps(sums);
}

// MARK: AVX2

HK_TARGET_AVX2 static void pack_panel_avx2(const void *w /* [out, in] of weight_type */, int weight_type, int in,
                                           int out, int first, float *scratch /* [16, in] */,
                                           float *panel /* [in, 16] */) {
    int count = out - first < PANEL_WIDTH_AVX2 ? out - first : PANEL_WIDTH_AVX2;
    const float *rows = panel_source_rows(w, weight_type, in, first, count, scratch);
    int full_outputs = count / 8 * 8, full_inputs = in / 8 * 8;
    for (int j = 0; j < full_outputs; j += 8) {
        for (int k = 0; k < full_inputs; k += 8) {
            hk_transpose_8x8_avx2(rows + (size_t)j * in + k, (size_t)in, panel + (size_t)k * PANEL_WIDTH_AVX2 + j,
                               PANEL_WIDTH_AVX2);
        }
    }
    pack_panel_rest(rows, in, count, PANEL_WIDTH_AVX2, full_outputs, full_inputs, panel);
}

/// y[r, 0..<16] = sum_k x[r, k] * panel[k, 0..<16] for `row_count` (a constant after inlining, 1–6) rows, each sum
/// fused multiply-adds in k order from zero (as AVX-512's lanes); `low` and `high` mask the two output vectors'
/// stores.
HK_TARGET_AVX2 HK_INLINE void panel_micro_kernel_avx2(const int row_count, const float *x /* [row_count, ldx] */,
                                                      size_t ldx, const float *panel /* [in, 16] */, int in,
                                                      float *y /* [row_count, ldy] */, size_t ldy, __m256i low,
                                                      __m256i high) {
    __m256 sums[PANEL_ROWS_AVX2][2];
    for (int r = 0; r < row_count; r++) sums[r][0] = sums[r][1] = _mm256_setzero_ps();
    for (int k = 0; k < in; k++) {
        __m256 weights_low = _mm256_load_ps(panel + (size_t)k * PANEL_WIDTH_AVX2);
        __m256 weights_high = _mm256_load_ps(panel + (size_t)k * PANEL_WIDTH_AVX2 + 8);
        for (int r = 0; r < row_count; r++) {
            __m256 value = _mm256_broadcast_ss(x + (size_t)r * ldx + k);
            sums[r][0] = _mm256_fmadd_ps(value, weights_low, sums[r][0]);
            sums[r][1] = _mm256_fmadd_ps(value, weights_high, sums[r][1]);
        }
    }
    for (int r = 0; r < row_count; r++) {
        _mm256_maskstore_ps(y + (size_t)r * ldy, low, sums[r][0]);
        _mm256_maskstore_ps(y + (size_t)r * ldy + 8, high, sums[r][1]);
    }
}

/// panel_micro_kernel_avx2 for a row count known only at run time (1–6): one specialised copy per count.
HK_TARGET_AVX2 void hk_panel_micro_kernel_rows_avx2(int row_count, const float *x /* [row_count, ldx] */, size_t ldx,
                                                    const float *panel /* [in, 16] */, int in,
                                                    float *y /* [row_count, ldy] */, size_t ldy, __m256i low,
                                                    __m256i high) {
    switch (row_count) {
#define ROWS_CASE(n) \
    case n: panel_micro_kernel_avx2(n, x, ldx, panel, in, y, ldy, low, high); break;
        ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4) ROWS_CASE(5) ROWS_CASE(6)
#undef ROWS_CASE
        default: break;
    }
}

/// One panel times every activation row: blocks of 6 rows, then one call for the 1–5 left over.
HK_TARGET_AVX2 static void panel_times_rows_avx2(const float *panel /* [in, 16] */, const float *x /* [rows, in] */,
                                                 float *y /* [rows, out] */, int rows, int in, int out, int first) {
    int count = out - first < PANEL_WIDTH_AVX2 ? out - first : PANEL_WIDTH_AVX2;
    // hk_tail_mask8 sets every lane from a count of 8 up.
    __m256i low = hk_tail_mask8((size_t)count), high = hk_tail_mask8((size_t)(count > 8 ? count - 8 : 0));
    y += first;
    int r = 0;
    for (; r + PANEL_ROWS_AVX2 <= rows; r += PANEL_ROWS_AVX2) {
        panel_micro_kernel_avx2(PANEL_ROWS_AVX2, x + (size_t)r * in, (size_t)in, panel, in, y + (size_t)r * out,
                                (size_t)out, low, high);
    }
    switch (rows - r) {
#define ROWS_CASE(n)                                                                                            \
    case n:                                                                                                    \
        panel_micro_kernel_avx2(n, x + (size_t)r * in, (size_t)in, panel, in, y + (size_t)r * out, (size_t)out,  \
                                low, high);                                                                    \
        break;
        ROWS_CASE(1) ROWS_CASE(2) ROWS_CASE(3) ROWS_CASE(4) ROWS_CASE(5)
#undef ROWS_CASE
        default: break;
    }
}

HK_TARGET_AVX2 static void reduce_logits_avx2(const float *z, int count, float *maximum, int32_t *best, float *sum) {
    float largest = hk_row_max_avx2(z, count);
    int index = 0;
    while (index < count - 1 && !(z[index] == largest)) index++;
    __m256 max_vector = _mm256_set1_ps(largest), sums = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= count; i += 8) sums = _mm256_add_ps(sums, hk_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(z + i), max_vector)));
    if (i < count) {
        __m256i mask = hk_tail_mask8((size_t)(count - i));
        __m256 shifted = _mm256_sub_ps(_mm256_maskload_ps(z + i, mask), max_vector);
        sums = _mm256_add_ps(sums, _mm256_and_ps(hk_exp_avx2(shifted), _mm256_castsi256_ps(mask)));
    }
    *maximum = largest;
    *best = index;
    *sum = hk_sum_avx2(sums);
}

// MARK: Per ISA

static const panel_kernels avx512_panels = {PANEL_WIDTH, PANEL_ROWS, pack_panel, panel_times_rows, reduce_logits_avx512};
static const panel_kernels avx2_panels = {PANEL_WIDTH_AVX2, PANEL_ROWS_AVX2, pack_panel_avx2, panel_times_rows_avx2,
                                          reduce_logits_avx2};

/// The current ISA's panel kernels, or NULL (scalar).
static const panel_kernels *current_panels(void) {
    int isa = hk_isa_current();
    return isa >= HK_ISA_AVX512 ? &avx512_panels : isa >= HK_ISA_AVX2 ? &avx2_panels : NULL;
}

/// Per-thread buffers allocated before the parallel region, so a failed allocation can fall back cleanly.
typedef struct {
    float *memory;
    size_t floats_per_thread;
} thread_workspace;

static int workspace_allocate(thread_workspace *workspace, int threads, size_t floats_per_thread) {
    workspace->floats_per_thread = (floats_per_thread + 15) / 16 * 16;  // each thread's part 64-byte aligned
    workspace->memory = (float *)aligned_alloc(64, (size_t)threads * workspace->floats_per_thread * sizeof(float));
    return workspace->memory != NULL;
}

static float *workspace_of(const thread_workspace *workspace, int thread) {
    return workspace->memory + (size_t)thread * workspace->floats_per_thread;
}

enum {
    PANEL_GROUP_BYTES = 1 << 20,  // panels packed at a time per thread (they stay in L3 while rows pass through them)
    ROW_BLOCK_BYTES = 1 << 18,    // activation rows per pass over a group (they stay in L2 across its panels)
};

/// What the threads of one panel product share: thread t packs into its workspace part.
typedef struct {
    const panel_kernels *kernels;
    const void *w;
    int weight_type, rows, in, out, row_block, group_panels;
    const float *x;
    float *y;
    const int *group_first_panel;  // [groups + 1]
    thread_workspace workspace;
} panel_product;

static void pack_panel_group(void *context, int thread, int group) {
    const panel_product *p = context;
    size_t panel_floats = (size_t)p->in * p->kernels->width;
    float *packed = workspace_of(&p->workspace, thread), *scratch = packed + (size_t)p->group_panels * panel_floats;
    for (int panel = p->group_first_panel[group]; panel < p->group_first_panel[group + 1]; panel++) {
        p->kernels->pack(p->w, p->weight_type, p->in, p->out, panel * p->kernels->width, scratch,
                         packed + (size_t)(panel - p->group_first_panel[group]) * panel_floats);
    }
}

static void run_panel_group_block(void *context, int thread, int group, int block) {
    const panel_product *p = context;
    size_t panel_floats = (size_t)p->in * p->kernels->width;
    const float *packed = workspace_of(&p->workspace, thread);
    int r = block * p->row_block, block_rows = p->rows - r < p->row_block ? p->rows - r : p->row_block;
    for (int panel = p->group_first_panel[group]; panel < p->group_first_panel[group + 1]; panel++) {
        p->kernels->times_rows(packed + (size_t)(panel - p->group_first_panel[group]) * panel_floats,
                               p->x + (size_t)r * p->in, p->y + (size_t)r * p->out, block_rows, p->in, p->out,
                               panel * p->kernels->width);
    }
}

/// Returns 0, or -1 (nothing computed) when its buffers cannot be allocated.
///
/// Each thread takes a contiguous range of panels and packs them a group at a time (about 1 MB); each block of
/// activation rows (about 256 KB) then meets every panel of the group while it sits in L2. Panel by panel over all
/// rows instead streamed the whole activation matrix from L3 once per panel (on an MMLU pass with 2,048 rows of
/// 576 and 1,536 outputs, 96 times 4.7 MB). A thread done with its own groups helps finish the others' row blocks
/// (hk_share_units). The blocking changes no sum: each output is still one micro-kernel call over every input
/// index in order, whichever thread runs it.
static int matmul_many_panels(const panel_kernels *kernels, const void *w, int weight_type, const float *x, float *y,
                              int rows, int in, int out, int threads) {
    int width = kernels->width, panels = (out + width - 1) / width;
    size_t panel_floats = (size_t)in * width;
    int group_panels = (int)(PANEL_GROUP_BYTES / (panel_floats * sizeof(float)));
    if (group_panels < 1) group_panels = 1;
    int row_block = (int)(ROW_BLOCK_BYTES / ((size_t)in * sizeof(float))) / kernels->rows * kernels->rows;
    if (row_block < kernels->rows) row_block = kernels->rows;
    // Thread t's panels [panels t / threads, panels (t + 1) / threads) in groups of at most group_panels; its
    // groups are [first_group[t], first_group[t + 1]).
    int group_count = 0, first_group[threads + 1];
    for (int t = 0; t < threads; t++) {
        first_group[t] = group_count;
        int begin = (int)((long)panels * t / threads), end = (int)((long)panels * (t + 1) / threads);
        group_count += (end - begin + group_panels - 1) / group_panels;
    }
    first_group[threads] = group_count;
    int group_first_panel[group_count + 1];
    for (int t = 0; t < threads; t++) {
        int begin = (int)((long)panels * t / threads);
        for (int g = first_group[t]; g < first_group[t + 1]; g++) group_first_panel[g] = begin + (g - first_group[t]) * group_panels;
    }
    group_first_panel[group_count] = panels;
    panel_product product = {kernels, w, weight_type, rows, in, out, row_block, group_panels, x, y, group_first_panel};
    hk_shared_unit *units = hk_shared_units_new(group_count);
    // `group_panels` panels, then the f16/bf16 scratch of one.
    if (units == NULL || !workspace_allocate(&product.workspace, threads, (size_t)(group_panels + 1) * panel_floats)) {
        free(units);
        return -1;
    }
    const hk_shared_work work = {&product, pack_panel_group, run_panel_group_block};
    const int blocks = (rows + row_block - 1) / row_block;
    #pragma omp parallel num_threads(threads)
    {
        int thread = omp_get_thread_num(), team = omp_get_num_threads();
        // A smaller team than asked for: its last member also owns the groups of the threads that did not start.
        int own_end = first_group[thread == team - 1 ? threads : thread + 1];
        hk_share_units(&work, units, group_count, blocks, first_group[thread], own_end, thread);
    }
    free(product.workspace.memory);
    free(units);
    return 0;
}

void hk_matmul_many(const void *w, int weight_type, const float *x, float *y, int rows, int in, int out) {
    int threads = hk_get_threads();
    // With few rows the product is too small to split usefully; one thread still tiles the conversion.
    if ((long)rows * in * out < (1L << 22)) threads = 1;
    const panel_kernels *kernels = current_panels();
    if (rows >= PANEL_MIN_ROWS && in > 0 && out > 0 && kernels != NULL &&
        matmul_many_panels(kernels, w, weight_type, x, y, rows, in, out, threads) == 0) {
        return;
    }
    ensure_single_threaded_blas();
    int tile = hk_gemm_tile_height(in, out, threads);
    int tiles = (out + tile - 1) / tile;

    if (weight_type == HK_TYPE_F32) {
        const float *weights = (const float *)w;
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int t = 0; t < tiles; t++) {
            int begin = t * tile;
            int count = out - begin < tile ? out - begin : tile;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, count, in, 1.0f, x, in,
                        weights + (size_t)begin * in, in, 0.0f, y + begin, out);
        }
        return;
    }

    #pragma omp parallel num_threads(threads)
    {
        float *buffer = (float *)aligned_alloc(64, ((size_t)tile * in * sizeof(float) + 63) / 64 * 64);
        #pragma omp for schedule(static)
        for (int t = 0; t < tiles; t++) {
            int begin = t * tile;
            int count = out - begin < tile ? out - begin : tile;
            tile_to_f32(w, weight_type, (size_t)begin * in, (size_t)count * in, buffer);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, count, in, 1.0f, x, in,
                        buffer, in, 0.0f, y + begin, out);
        }
        free(buffer);
    }
}

// MARK: - Scores over a vocabulary without the logits matrix
//
// Why: scoring a continuation needs, per row, only the log-normaliser of its logits, their argmax and the logits of a
// few target tokens, yet the unfused path writes [rows, vocab] logits (64 rows × 49,152 floats at a time), reads
// them back twice, and packs the whole vocabulary matrix again for every 64 rows (18 % of a PIQA run). Here each
// thread takes blocks of 512 outputs (16 AVX-512 or 32 AVX2 panels), packs them once for all rows, and reduces each
// row's 512 logits while they are in L1: block maximum, its first index, and Σ exp(z − max). Blocks are combined
// in vocabulary order, so results do not depend on the thread count.

enum { VOCAB_BLOCK = 512 };

static void vocab_block(const panel_kernels *kernels, const void *w, int weight_type, const float *x, int rows,
                        int in, int vocab, int block, float *scratch, float *panels /* [512 / width, in, width] */,
                        float *tile /* [kernels->rows, VOCAB_BLOCK] */, float *block_max /* [rows] */,
                        int32_t *block_best /* [rows] */, float *block_sum /* [rows] */) {
    int first = block * VOCAB_BLOCK, panel_width = kernels->width;
    int width = vocab - first < VOCAB_BLOCK ? vocab - first : VOCAB_BLOCK;
    int panel_count = (width + panel_width - 1) / panel_width;
    for (int p = 0; p < panel_count; p++) {
        kernels->pack(w, weight_type, in, vocab, first + p * panel_width, scratch, panels + (size_t)p * in * panel_width);
    }
    for (int r = 0; r < rows; r += kernels->rows) {
        int count = rows - r < kernels->rows ? rows - r : kernels->rows;
        // Logits of up to kernels->rows rows × 512 outputs; lanes past the vocabulary are written too (zero weights)
        // and skipped below.
        for (int p = 0; p < panel_count; p++) {
            kernels->times_rows(panels + (size_t)p * in * panel_width, x + (size_t)r * in, tile, count, in, VOCAB_BLOCK,
                                p * panel_width);
        }
        for (int row = 0; row < count; row++) {
            int32_t best;
            kernels->reduce(tile + (size_t)row * VOCAB_BLOCK, width, &block_max[r + row], &best, &block_sum[r + row]);
            block_best[r + row] = first + best;
        }
    }
}

int hk_vocab_scores(const void *w, int weight_type, const float *x, int rows, int in, int vocab, int32_t *best,
                    float *best_logit, double *log_normalizer) {
    const panel_kernels *kernels = current_panels();
    if (kernels == NULL || in <= 0 || vocab <= 0 || rows <= 0) return -1;
    if (weight_type != HK_TYPE_F32 && weight_type != HK_TYPE_F16 && weight_type != HK_TYPE_BF16) return -1;
    int blocks = (vocab + VOCAB_BLOCK - 1) / VOCAB_BLOCK;
    float *maxima = (float *)malloc((size_t)blocks * rows * sizeof(float));
    float *sums = (float *)malloc((size_t)blocks * rows * sizeof(float));
    int32_t *indices = (int32_t *)malloc((size_t)blocks * rows * sizeof(int32_t));
    if (!maxima || !sums || !indices) {
        free(maxima);
        free(sums);
        free(indices);
        return -1;
    }
    int threads = hk_get_threads();
    if (threads > blocks) threads = blocks;
    size_t panels_floats = (size_t)VOCAB_BLOCK * in, tile_floats = (size_t)kernels->rows * VOCAB_BLOCK;
    thread_workspace workspace;
    if (!workspace_allocate(&workspace, threads, panels_floats + tile_floats + (size_t)kernels->width * in)) {
        free(maxima);
        free(sums);
        free(indices);
        return -1;
    }
    // Blocks are taken from a shared counter, so a core that runs slower for a while (a shared VM) takes fewer of
    // them; every block reads the rows again anyway, and each writes only its own slots.
    int next_block = 0;
    #pragma omp parallel num_threads(threads)
    {
        float *panels = workspace_of(&workspace, omp_get_thread_num());
        float *tile = panels + panels_floats, *scratch = tile + tile_floats;
        for (int block = __atomic_fetch_add(&next_block, 1, __ATOMIC_RELAXED); block < blocks;
             block = __atomic_fetch_add(&next_block, 1, __ATOMIC_RELAXED)) {
            vocab_block(kernels, w, weight_type, x, rows, in, vocab, block, scratch, panels, tile,
                        maxima + (size_t)block * rows, indices + (size_t)block * rows, sums + (size_t)block * rows);
        }
    }
    free(workspace.memory);
    for (int r = 0; r < rows; r++) {
        // The first block holding the overall maximum gives the argmax (the first maximum, as torch's argmax).
        float maximum = -INFINITY;
        int32_t index = 0;
        for (int b = 0; b < blocks; b++) {
            if (maxima[(size_t)b * rows + r] > maximum || b == 0) {
                maximum = maxima[(size_t)b * rows + r];
                index = indices[(size_t)b * rows + r];
            }
        }
        double total = 0;
        for (int b = 0; b < blocks; b++) {
            total += (double)sums[(size_t)b * rows + r] * exp((double)maxima[(size_t)b * rows + r] - (double)maximum);
        }
        best[r] = index;
        best_logit[r] = maximum;
        log_normalizer[r] = (double)maximum + log(total);
    }
    free(maxima);
    free(sums);
    free(indices);
    return 0;
}

float hk_vocab_logit(const void *w, int weight_type, const float *x, int in, int token) {
    // One lane of the panel kernel: a single accumulator, fused multiply-adds in index order from zero, so the
    // value is bit-identical to that output's logit inside hk_vocab_scores (and to hk_matmul_many's from 16 rows).
    float sum = 0.0f;
    size_t offset = (size_t)token * in;
    for (int k = 0; k < in; k++) sum = fmaf(x[k], float_weight_at(w, weight_type, offset + k), sum);
    return sum;
}

void hk_matmul_many_ref(const void *w, int weight_type, const float *x, float *y, int rows, int in, int out) {
    for (int r = 0; r < rows; r++) {
        for (int o = 0; o < out; o++) {
            double sum = 0;
            for (int i = 0; i < in; i++) {
                sum += (double)float_weight_at(w, weight_type, (size_t)o * in + i) * x[(size_t)r * in + i];
            }
            y[(size_t)r * out + o] = (float)sum;
        }
    }
}

void hk_sgemm_nt(const float *x, const float *w, float *y, int rows, int in, int out, int ldy, float beta) {
    ensure_single_threaded_blas();
    int threads = hk_get_threads();
    if ((long)rows * in * out < (1L << 22)) threads = 1;
    int chunk = (out + threads - 1) / threads;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int t = 0; t < threads; t++) {
        int begin = t * chunk;
        int count = out - begin < chunk ? out - begin : chunk;
        if (count > 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, count, in, 1.0f, x, in,
                        w + (size_t)begin * in, in, beta, y + begin, ldy);
        }
    }
}

// MARK: - Input gradient of a frozen linear layer: dx (+)= dy W

// The transpose of hk_matmul_many's product, cut the other way: each thread owns a slice of dx's columns (of W's
// input features), so no two threads write the same dx element and no reduction is needed. A thread converts
// or dequantizes W[tile of output rows, its columns] into a private f32 buffer and multiplies dy[:, tile] by it
// with single-threaded sgemm (NN), accumulating over the tiles into its dx columns.

/// Values per indivisible column unit: the quant block (32 or 256), 16 floats for f32/f16/bf16; 0 if unknown.
static int linear_column_unit(int weight_type) {
    switch (weight_type) {
    case HK_TYPE_F32: case HK_TYPE_F16: case HK_TYPE_BF16: return 16;
    case HK_TYPE_Q8_0: case HK_TYPE_Q4_0: case HK_TYPE_Q4_K: case HK_TYPE_Q6_K:
    case HK_TYPE_Q4_1: case HK_TYPE_Q5_0: case HK_TYPE_Q5_1: case HK_TYPE_IQ4_NL:
        return (int)hk_quant_block_size(weight_type);
    case HK_TYPE_Q2_K: case HK_TYPE_Q3_K: case HK_TYPE_Q5_K: case HK_TYPE_IQ4_XS:
    case HK_TYPE_IQ2_XXS: case HK_TYPE_IQ2_XS: case HK_TYPE_IQ2_S: case HK_TYPE_IQ3_XXS: case HK_TYPE_IQ3_S:
    case HK_TYPE_IQ1_S: case HK_TYPE_IQ1_M: case HK_TYPE_TQ1_0: case HK_TYPE_TQ2_0:
        return (int)hk_quant_block_size(weight_type);
    default: return 0;
    }
}

static int linear_is_quantized(int weight_type) {
    return weight_type != HK_TYPE_F32 && weight_type != HK_TYPE_F16 && weight_type != HK_TYPE_BF16;
}

int hk_linear_backward_input_supported(int weight_type, int in) {
    int unit = linear_column_unit(weight_type);
    if (unit == 0 || in < 0) return 0;
    return !linear_is_quantized(weight_type) || in % unit == 0;
}

/// W[first_row ..< first_row + count, first_column ..< first_column + columns] as f32, rows `columns` apart.
static void weight_block_to_f32(const void *w, int weight_type, int in, int first_row, int count, int first_column,
                                int columns, float *dst /* [count, columns] */) {
    if (linear_is_quantized(weight_type)) {
        size_t row_bytes = hk_quant_row_bytes(weight_type, in);
        size_t skip = (size_t)(first_column / hk_quant_block_size(weight_type)) * hk_quant_block_bytes(weight_type);
        for (int o = 0; o < count; o++) {
            const uint8_t *row = (const uint8_t *)w + (size_t)(first_row + o) * row_bytes + skip;
            hk_dequantize_row(weight_type, row, dst + (size_t)o * columns, columns);
        }
    } else {
        for (int o = 0; o < count; o++) {
            tile_to_f32(w, weight_type, (size_t)(first_row + o) * in + first_column, (size_t)columns, dst + (size_t)o * columns);
        }
    }
}

void hk_linear_backward_input(const void *weight, int weight_type, const float *dy, float *dx, int rows, int in,
                              int out, int accumulate) {
    if (rows <= 0 || in <= 0) return;
    if (!hk_linear_backward_input_supported(weight_type, in)) {
        for (size_t i = 0; i < (size_t)rows * in; i++) dx[i] = NAN;
        return;
    }
    if (out <= 0) {
        if (!accumulate) memset(dx, 0, (size_t)rows * in * sizeof(float));
        return;
    }
    ensure_single_threaded_blas();
    int unit = linear_column_unit(weight_type);
    int units = (in + unit - 1) / unit;
    int threads = hk_get_threads();
    if ((long)rows * in * out < (1L << 22)) threads = 1;
    // Column slices first; only when there are fewer units than threads are dy's rows split as well (each
    // row part then converts the same weights again, which is cheap next to the product).
    int column_parts = threads < units ? threads : units;
    int row_parts = threads / column_parts;
    if (row_parts > rows) row_parts = rows;
    int parts = column_parts * row_parts;
    float beta_first = accumulate ? 1.0f : 0.0f;

    #pragma omp parallel num_threads(parts)
    {
        float *buffer = NULL;
        size_t buffer_floats = 0;
        // One part per thread when the runtime grants them all; a smaller team loops.
        for (int part = omp_get_thread_num(); part < parts; part += omp_get_num_threads()) {
            size_t unit_begin, unit_end, row_begin, row_end;
            hk_split_range((size_t)units, part % column_parts, column_parts, &unit_begin, &unit_end);
            hk_split_range((size_t)rows, part / column_parts, row_parts, &row_begin, &row_end);
            int first_column = (int)unit_begin * unit;
            int columns = ((int)unit_end * unit < in ? (int)unit_end * unit : in) - first_column;
            int part_rows = (int)(row_end - row_begin);
            if (columns <= 0 || part_rows <= 0) continue;
            const float *dy_part = dy + row_begin * (size_t)out;
            float *dx_part = dx + row_begin * (size_t)in + first_column;
            if (weight_type == HK_TYPE_F32) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, part_rows, columns, out, 1.0f, dy_part, out,
                            (const float *)weight + first_column, in, beta_first, dx_part, in);
                continue;
            }
            // Tile height: about 1 MB of f32 per thread, a multiple of 16 output rows.
            int tile = (1 << 18) / columns;
            if (tile < 16) tile = 16;
            if (tile > 512) tile = 512;
            tile = (tile + 15) / 16 * 16;
            size_t needed = (size_t)tile * columns;
            if (needed > buffer_floats) {
                free(buffer);
                buffer = aligned_alloc(64, (needed * sizeof(float) + 63) / 64 * 64);
                buffer_floats = buffer ? needed : 0;
            }
            if (buffer == NULL) {
                for (int r = 0; r < part_rows; r++) {
                    for (int i = 0; i < columns; i++) dx_part[(size_t)r * in + i] = NAN;
                }
                continue;
            }
            for (int begin = 0; begin < out; begin += tile) {
                int count = out - begin < tile ? out - begin : tile;
                weight_block_to_f32(weight, weight_type, in, begin, count, first_column, columns, buffer);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, part_rows, columns, count, 1.0f, dy_part + begin,
                            out, buffer, columns, begin == 0 ? beta_first : 1.0f, dx_part, in);
            }
        }
        free(buffer);
    }
}

void hk_linear_backward_input_ref(const void *weight, int weight_type, const float *dy, float *dx, int rows, int in,
                                  int out, int accumulate) {
    if (rows <= 0 || in <= 0) return;
    if (!hk_linear_backward_input_supported(weight_type, in)) {
        for (size_t i = 0; i < (size_t)rows * in; i++) dx[i] = NAN;
        return;
    }
    double *sums = calloc((size_t)rows * in, sizeof(double));
    float *weight_row = malloc((size_t)in * sizeof(float));
    if (sums && weight_row) {
        for (int o = 0; o < out; o++) {
            if (weight_type == HK_TYPE_F32) {
                memcpy(weight_row, (const float *)weight + (size_t)o * in, (size_t)in * sizeof(float));
            } else if (weight_type == HK_TYPE_F16) {
                for (int i = 0; i < in; i++) weight_row[i] = f16_to_f32_scalar(((const uint16_t *)weight)[(size_t)o * in + i]);
            } else if (weight_type == HK_TYPE_BF16) {
                for (int i = 0; i < in; i++) {
                    uint32_t bits = (uint32_t)((const uint16_t *)weight)[(size_t)o * in + i] << 16;
                    memcpy(&weight_row[i], &bits, 4);
                }
            } else {
                hk_dequantize_row(weight_type, (const uint8_t *)weight + (size_t)o * hk_quant_row_bytes(weight_type, in),
                                  weight_row, in);
            }
            for (int r = 0; r < rows; r++) {
                double gradient = dy[(size_t)r * out + o];
                for (int i = 0; i < in; i++) sums[(size_t)r * in + i] += gradient * weight_row[i];
            }
        }
        for (size_t i = 0; i < (size_t)rows * in; i++) dx[i] = (float)(accumulate ? dx[i] + sums[i] : sums[i]);
    }
    free(sums);
    free(weight_row);
}

// MARK: - OpenBLAS core selection

char *openblas_get_corename(void);

const char *hk_blas_core_name(void) { return openblas_get_corename(); }

int hk_blas_should_use_avx512_core(void) {
    // OpenBLAS picks its kernels when the library loads. Debian's 0.3.21 does not know recent AVX-512 CPUs
    // (AMD Zen 4, for one) and falls back to its AVX2 "Haswell" kernels, which run sgemm at about half speed;
    // some machine images also pin OPENBLAS_CORETYPE=Haswell. Hone's own HONE_BLAS_CORETYPE wins over both,
    // and a restart happens at most once.
    if (getenv("HONE_BLAS_RESTARTED") != NULL || getenv("HONE_BLAS_CORETYPE") != NULL) return 0;
    __builtin_cpu_init();  // needed before __builtin_cpu_supports outside a constructor
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
          __builtin_cpu_supports("avx512cd"))) return 0;
    const char *core = openblas_get_corename();
    return core != NULL && (strcmp(core, "Haswell") == 0 || strcmp(core, "Zen") == 0 ||
                            strcmp(core, "Sandybridge") == 0 || strcmp(core, "Prescott") == 0);
}
