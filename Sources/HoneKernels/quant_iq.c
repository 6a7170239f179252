// Dequantizers of the codebook (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) and ternary (TQ1_0,
// TQ2_0) formats, with ggml's formulas: products in f32, in ggml's order. These formats have no integer
// kernels here; their products dequantize (hk_matmul_many_quant_sgemm, hk_matmul_rows_quant_ref).
//
// Most of them need an importance matrix to be made well, so Hone does not quantize to them.
#include "quant_iq_internal.h"

#pragma clang fp contract(off)

_Static_assert(sizeof(hk_block_iq2_xxs) == 66, "IQ2_XXS block is 66 bytes");
_Static_assert(sizeof(hk_block_iq2_xs) == 74, "IQ2_XS block is 74 bytes");
_Static_assert(sizeof(hk_block_iq2_s) == 82, "IQ2_S block is 82 bytes");
_Static_assert(sizeof(hk_block_iq3_xxs) == 98, "IQ3_XXS block is 98 bytes");
_Static_assert(sizeof(hk_block_iq3_s) == 110, "IQ3_S block is 110 bytes");
_Static_assert(sizeof(hk_block_iq1_s) == 50, "IQ1_S block is 50 bytes");
_Static_assert(sizeof(hk_block_iq1_m) == 56, "IQ1_M block is 56 bytes");
_Static_assert(sizeof(hk_block_tq1_0) == 54, "TQ1_0 block is 54 bytes");
_Static_assert(sizeof(hk_block_tq2_0) == 66, "TQ2_0 block is 66 bytes");

/// IQ1_S / IQ1_M: every value of a group of 32 (16) is shifted by plus or minus this.
#define IQ1_DELTA 0.125f

/// Byte j of a codebook entry.
static inline uint8_t grid_byte(uint64_t entry, int j) { return (uint8_t)(entry >> (8 * j)); }

/// Eight values step * magnitude * sign from one IQ2 codebook entry and a sign byte (bit j negates value j).
static inline void put_signed_eight(float *y /* [8] */, float step, uint64_t entry, uint8_t signs) {
    for (int j = 0; j < 8; j++) y[j] = step * (float)grid_byte(entry, j) * ((signs >> j) & 1 ? -1.0f : 1.0f);
}

// MARK: - IQ2

void hk_dequantize_row_iq2_xxs(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq2_xxs *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        for (int g = 0; g < 8; g++, y += 32) {
            uint32_t words[2]; // four grid indices; four 7-bit sign indices and the scale
            memcpy(words, blocks[b].qs + 4 * g, sizeof words);
            float step = d * (0.5f + (float)(words[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                put_signed_eight(y + 8 * l, step, hk_iq2xxs_grid[(words[0] >> (8 * l)) & 0xFF],
                                 hk_iq_signs[(words[1] >> (7 * l)) & 127]);
            }
        }
    }
}

void hk_dequantize_row_iq2_xs(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq2_xs *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        for (int g = 0; g < 8; g++, y += 32) {
            float steps[2] = {d * (0.5f + (float)(blocks[b].scales[g] & 0x0F)) * 0.25f,
                              d * (0.5f + (float)(blocks[b].scales[g] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++) {
                uint16_t code = blocks[b].qs[4 * g + l];
                put_signed_eight(y + 8 * l, steps[l / 2], hk_iq2xs_grid[code & 511], hk_iq_signs[code >> 9]);
            }
        }
    }
}

void hk_dequantize_row_iq2_s(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq2_s *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        const hk_block_iq2_s *block = &blocks[b];
        float d = hk_f16_to_f32_scalar(block->d);
        const uint8_t *signs = block->qs + HK_QK_K / 8;
        for (int g = 0; g < 8; g++, y += 32) {
            float steps[2] = {d * (0.5f + (float)(block->scales[g] & 0x0F)) * 0.25f,
                              d * (0.5f + (float)(block->scales[g] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++) {
                int index = block->qs[4 * g + l] | ((block->qh[g] << (8 - 2 * l)) & 0x300);
                put_signed_eight(y + 8 * l, steps[l / 2], hk_iq2s_grid[index], signs[4 * g + l]);
            }
        }
    }
}

// MARK: - IQ3

void hk_dequantize_row_iq3_xxs(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq3_xxs *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        const uint8_t *indices = blocks[b].qs, *scales_and_signs = blocks[b].qs + HK_QK_K / 4;
        for (int g = 0; g < 8; g++, y += 32) {
            uint32_t word;
            memcpy(&word, scales_and_signs + 4 * g, sizeof word);
            float step = d * (0.5f + (float)(word >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++) {
                uint8_t signs = hk_iq_signs[(word >> (7 * l)) & 127];
                // Two entries of four values make the eight of one sign byte.
                uint64_t entry = (uint64_t)hk_iq3xxs_grid[indices[8 * g + 2 * l]] |
                                 (uint64_t)hk_iq3xxs_grid[indices[8 * g + 2 * l + 1]] << 32;
                put_signed_eight(y + 8 * l, step, entry, signs);
            }
        }
    }
}

void hk_dequantize_row_iq3_s(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq3_s *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        const hk_block_iq3_s *block = &blocks[b];
        float d = hk_f16_to_f32_scalar(block->d);
        for (int g = 0; g < 8; g++, y += 32) {
            float step = d * (float)(1 + 2 * ((block->scales[g / 2] >> (4 * (g % 2))) & 0x0F));
            const uint8_t *qs = block->qs + 8 * g;
            uint8_t high = block->qh[g];
            for (int l = 0; l < 4; l++) {
                int first = qs[2 * l] | ((high << (8 - 2 * l)) & 256);
                int second = qs[2 * l + 1] | ((high << (7 - 2 * l)) & 256);
                uint64_t entry = (uint64_t)hk_iq3s_grid[first] | (uint64_t)hk_iq3s_grid[second] << 32;
                put_signed_eight(y + 8 * l, step, entry, block->signs[4 * g + l]);
            }
        }
    }
}

// MARK: - IQ1

void hk_dequantize_row_iq1_s(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq1_s *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        for (int g = 0; g < 8; g++, y += 32) {
            uint16_t high = blocks[b].qh[g];
            float step = d * (float)(2 * ((high >> 12) & 7) + 1);
            float delta = high & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
            for (int l = 0; l < 4; l++) {
                uint64_t entry = hk_iq1s_grid[blocks[b].qs[4 * g + l] | (((high >> (3 * l)) & 7) << 8)];
                for (int j = 0; j < 8; j++) y[8 * l + j] = step * ((float)(int8_t)grid_byte(entry, j) + delta);
            }
        }
    }
}

void hk_dequantize_row_iq1_m(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_iq1_m *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        const hk_block_iq1_m *block = &blocks[b];
        uint16_t words[4];
        memcpy(words, block->scales, sizeof words);
        // The f16 super-block scale: the top nibble of each of the four scale words.
        uint16_t half = (uint16_t)((words[0] >> 12) | ((words[1] >> 8) & 0x00F0) | ((words[2] >> 4) & 0x0F00) |
                                   (words[3] & 0xF000));
        float d = hk_f16_to_f32_scalar(half);
        for (int g = 0; g < 8; g++, y += 32) {
            const uint8_t *qs = block->qs + 4 * g, *qh = block->qh + 2 * g;
            float steps[2] = {d * (float)(2 * ((words[g / 2] >> (6 * (g % 2))) & 7) + 1),
                              d * (float)(2 * ((words[g / 2] >> (6 * (g % 2) + 3)) & 7) + 1)};
            int indices[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                              qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700)};
            float deltas[4] = {qh[0] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, qh[0] & 0x80 ? -IQ1_DELTA : IQ1_DELTA,
                               qh[1] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, qh[1] & 0x80 ? -IQ1_DELTA : IQ1_DELTA};
            for (int l = 0; l < 4; l++) {
                uint64_t entry = hk_iq1s_grid[indices[l]];
                for (int j = 0; j < 8; j++) {
                    y[8 * l + j] = steps[l / 2] * ((float)(int8_t)grid_byte(entry, j) + deltas[l]);
                }
            }
        }
    }
}

// MARK: - Ternary

/// Digit n of a TQ1_0 byte: the byte is a base-3 fraction scaled to 256, so multiplying by 3^n (mod 256)
/// brings digit n to the top and * 3 >> 8 reads it (0..2).
static inline int ternary_digit(uint8_t byte, int n) {
    static const uint8_t powers[5] = {1, 3, 9, 27, 81};
    uint8_t shifted = (uint8_t)(byte * powers[n]);
    return ((uint16_t)shifted * 3) >> 8;
}

void hk_dequantize_row_tq1_0(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_tq1_0 *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        const hk_block_tq1_0 *block = &blocks[b];
        float d = hk_f16_to_f32_scalar(block->d);
        // qs[0..31]: 160 values (digit n of byte m is value 32 n + m), qs[32..47]: 80 more (16 per digit),
        // qh: the last 16 (4 digits of 4 bytes).
        for (int n5 = 0; n5 < 5; n5++) {
            for (int m = 0; m < 32; m++) *y++ = (float)(ternary_digit(block->qs[m], n5) - 1) * d;
        }
        for (int n5 = 0; n5 < 5; n5++) {
            for (int m = 0; m < 16; m++) *y++ = (float)(ternary_digit(block->qs[32 + m], n5) - 1) * d;
        }
        for (int n4 = 0; n4 < 4; n4++) {
            for (int m = 0; m < 4; m++) *y++ = (float)(ternary_digit(block->qh[m], n4) - 1) * d;
        }
    }
}

void hk_dequantize_row_tq2_0(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n) {
    const hk_block_tq2_0 *blocks = x;
    for (int64_t b = 0; b < n / HK_QK_K; b++) {
        float d = hk_f16_to_f32_scalar(blocks[b].d);
        for (int j = 0; j < 64; j += 32) {
            for (int k = 0; k < 4; k++) {
                for (int m = 0; m < 32; m++) *y++ = (float)(((blocks[b].qs[j + m] >> (2 * k)) & 3) - 1) * d;
            }
        }
    }
}
