// Shared pieces of the K-format decode kernels (quant_matmul.c, quant_k_more_matmul.c): the Q8_K and Q4_K
// VNNI activation packs and the Q2_K/Q3_K/Q5_K/IQ4_XS kernel selection. The kernel triple (pack, stride,
// range), the output/row tiling and the weight-stream prefetch are in quant_internal.h.
#ifndef HK_QUANT_ROW_KERNELS_H
#define HK_QUANT_ROW_KERNELS_H

#include "quant_internal.h"

/// The tiles, prefetch and pack/range pair are quant_internal.h's (shared with quant_legacy.c); the short
/// names below are the ones the K-format kernel files use.
typedef hk_quant_pack_fn pack_fn;
typedef hk_quant_range_fn range_fn;
typedef hk_quant_kernel kernel;

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
