// Shared machinery of the decode kernels (quant_matmul.c, quant_k_more_matmul.c): the kernel triple
// (pack, stride, range), the output/row tiling and the weight-stream prefetch.
#ifndef HK_QUANT_ROW_KERNELS_H
#define HK_QUANT_ROW_KERNELS_H

#include "quant_internal.h"

/// Activation rows per register tile.
#define MAX_TILE_ROWS 4

/// Software prefetch distance in the weight stream. The hardware prefetchers stop at page boundaries; two
/// pages ahead took one thread from ~27 to ~35 GB/s on the TinyLlama shapes (Zen 5; 2 to 16 KB measured,
/// 8 to 16 KB best, 0 = off). Prefetches past the end of the weights are harmless (they never fault).
#ifndef QUANT_PREFETCH_BYTES
#define QUANT_PREFETCH_BYTES 8192
#endif
#define PREFETCH_AHEAD(address)                                                                                \
    do {                                                                                                       \
        if (QUANT_PREFETCH_BYTES) _mm_prefetch((const char *)(address) + QUANT_PREFETCH_BYTES, _MM_HINT_T0);   \
    } while (0)

/// Packs `rows` activation rows for one kernel; row r's pack starts at r * stride.
typedef void (*pack_fn)(const float *x, int rows, int in, uint8_t *pack, size_t stride);
/// Outputs [first_output, end_output) for every row.
typedef void (*range_fn)(const uint8_t *w, const uint8_t *pack, size_t stride, float *y, int rows, int in, int out,
                         int first_output, int end_output);

typedef struct {
    pack_fn pack;
    size_t (*stride)(int in);
    range_fn range;
} kernel;


// MARK: - Shared helpers

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

/// Canonical Q8_K activations (the scalar and AVX2 kernels of the K formats): row r's blocks at r * stride.
HK_HIDDEN size_t hk_stride_q8_k(int in);
HK_HIDDEN void hk_pack_q8_k(const float *x /* [rows, in] */, int rows, int in, uint8_t *pack, size_t stride);

/// Q4_K's VNNI pack (also Q5_K's): per super-block the activations in sub-block order [0, 2, 1, 3, 4, 6, 5,
/// 7] (256 bytes), d * (sub-block sums) in f32 lanes 0..7 of a 16-lane vector, then d (384 bytes).
#define Q4_K_BLOCK_PACK 384
HK_HIDDEN size_t hk_stride_q4_k_vnni(int in);
HK_HIDDEN void hk_pack_q4_k_vnni(const float *x /* [rows, in] */, int rows, int in, uint8_t *pack, size_t stride);

/// Q2_K, Q3_K, Q5_K, IQ4_XS (quant_k_more_matmul.c); returns 0, or -1 for another type.
HK_HIDDEN int hk_select_k_more_kernel(int type, int isa, kernel *k);

#endif
