// Private helpers shared by the quantization files (quant.c, quant_matmul.c, quant_gemm.c).
#ifndef HK_QUANT_INTERNAL_H
#define HK_QUANT_INTERNAL_H

#include "hk_internal.h"
#include "hone_quant.h"

#include <stdlib.h>

// MARK: - Targets

/// AVX-512 with VNNI (vpdpbusd, vpdpwssd) on top of the level hk_isa calls AVX512.
#define HK_TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/// The instruction set the quantized kernels use: HK_ISA_AVX512 only with VNNI (the AVX-512 level without
/// it takes the AVX2 code).
static inline int hk_quant_isa(void) {
    int isa = hk_isa_current();
    if (isa == HK_ISA_AVX512 && !hk_cpu_has_vnni()) isa = HK_ISA_AVX2;
    return isa;
}

// MARK: - Scalars

/// Round to nearest, ties to even, for |value| < 2^22, bit-compatible with ggml's nearest_int: adding
/// 1.5 * 2^23 puts the rounded integer into the low mantissa bits (also for inf/NaN, which give garbage
/// but the same garbage).
static inline int hk_nearest_int(float value) {
    float shifted = value + 12582912.0f;
    return (int)(hk_float_bits(shifted) & 0x007FFFFFu) - 0x00400000;
}

/// Q4_K's six-bit scale and min of sub-block s (0..7) from the 12 packed bytes.
static inline void hk_q4k_scale_min(const uint8_t *packed /* [12] */, int s, uint8_t *scale, uint8_t *min) {
    if (s < 4) {
        *scale = packed[s] & 63;
        *min = packed[s + 4] & 63;
    } else {
        *scale = (uint8_t)((packed[s + 4] & 0x0F) | ((packed[s - 4] >> 6) << 4));
        *min = (uint8_t)((packed[s + 4] >> 4) | ((packed[s] >> 6) << 4));
    }
}

/// All eight scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K block, unpacked with 32-bit word
/// arithmetic: words 0/1 of the packed bytes hold scales/mins 0..3 in their low six bits and the top two
/// bits of 4..7 in their top bits; word 2 holds the low four bits of scales (low nibbles) and mins (high).
static inline void hk_q4k_unpack_scales(const uint8_t *packed /* [12] */, uint8_t *out /* [16] */) {
    uint32_t words[3];
    memcpy(words, packed, sizeof words);
    uint32_t scales_low = words[0] & 0x3F3F3F3Fu;
    uint32_t mins_low = words[1] & 0x3F3F3F3Fu;
    uint32_t scales_high = (words[2] & 0x0F0F0F0Fu) | (((words[0] >> 6) & 0x03030303u) << 4);
    uint32_t mins_high = ((words[2] >> 4) & 0x0F0F0F0Fu) | (((words[1] >> 6) & 0x03030303u) << 4);
    uint32_t result[4] = {scales_low, scales_high, mins_low, mins_high};
    memcpy(out, result, sizeof result);
}

// MARK: - Activation buffers

/// A per-thread scratch buffer that only grows (activation packs are rebuilt on every call).
HK_HIDDEN void *hk_quant_scratch(int slot, size_t bytes);

/// Q8_K activations of `rows` rows, [rows, in / 256] blocks.
HK_HIDDEN void hk_quantize_rows_q8_k(const float *x /* [rows, in] */, hk_block_q8_k *y, int rows, int in);
/// hk_quantize_activations_a32 for `rows` rows.
HK_HIDDEN void hk_quantize_rows_a32(const float *x /* [rows, in] */, int8_t *q /* [rows, in] */,
                                    float *d /* [rows, in / 32] */, int rows, int in);

#endif
