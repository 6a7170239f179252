// Quantized weights in GGUF's block formats (byte-compatible with ggml): Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS with quantizers and integer kernels; the codebook / ternary formats
// (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0) with dequantizers only; and the
// activation formats Q8_K and Q8_1.
//
// Conventions (as in hone_kernels.h)
// - A quantized [rows, n] matrix is stored row by row; each row is n / block_size consecutive blocks, so
//   n must be a multiple of the block size (32 for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL and Q8_1; 256 for the
//   K formats).
// - Quantizers reproduce the bytes of ggml's reference quantizers (quantize_row_*_ref, which llama-quantize
//   uses when it has no importance matrix) for finite input. Half-precision scales are rounded to nearest
//   even; a NaN input gives some NaN scale, not necessarily ggml's bit pattern.
// - Matrix kernels take weights [out, in] of one of the weight types and f32 activations [rows, in]; they
//   quantize the activations themselves (see "Matrix products"), and dispatch at run time between an
//   AVX-512 VNNI, an AVX2 and a scalar path like the other kernels (hk_isa_force selects a lower level;
//   the AVX-512 level uses the AVX2 path on CPUs without VNNI).
#ifndef HONE_QUANT_H
#define HONE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Types and block layouts

#include "hone_types.h"

#define HK_QK8_0 32
#define HK_QK4_0 32
#define HK_QK_K 256

/// Half-precision scales are stored as their IEEE binary16 bits.

/// 32 values: value[i] = d * qs[i].
typedef struct {
    uint16_t d;
    int8_t qs[HK_QK8_0];
} hk_block_q8_0; // 34 bytes

/// 32 values: value[i] = d * (nibble[i] - 8); qs[j] holds value j in its low nibble and value j + 16 in
/// its high nibble.
typedef struct {
    uint16_t d;
    uint8_t qs[HK_QK4_0 / 2];
} hk_block_q4_0; // 18 bytes

/// 32 values: value[i] = d * (q[i] - 16), q five bits: the low four as in Q4_0's qs, the fifth bit of value i
/// in bit i of qh (little-endian). llama.cpp's fallback for Q4_K rows that are not a multiple of 256 values.
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[HK_QK4_0 / 2];
} hk_block_q5_0; // 22 bytes

/// 32 values: value[i] = d * nibble[i] + m (an asymmetric Q4_0: levels 0..15 from the block's minimum m);
/// qs as in Q4_0.
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qs[HK_QK4_0 / 2];
} hk_block_q4_1; // 20 bytes

/// 32 values: value[i] = d * q[i] + m, q five bits (levels 0..31) split as in Q5_0 (low nibbles in qs, the
/// fifth bit of value i in bit i of qh).
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[HK_QK4_0 / 2];
} hk_block_q5_1; // 24 bytes

/// 32 values: value[i] = d * hk_iq4nl_values[nibble[i]], a non-uniform 16-level codebook (denser near
/// zero); qs as in Q4_0.
typedef struct {
    uint16_t d;
    uint8_t qs[HK_QK4_0 / 2];
} hk_block_iq4_nl; // 18 bytes

/// ggml's IQ4_NL codebook (kvalues_iq4nl): -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113.
extern const int8_t hk_iq4nl_values[16];

/// llama.cpp's activation format for Q4_1 and Q5_1 weights: value[i] = d * qs[i]; s = d * (sum of qs) in f16.
/// Hone's kernels keep d in f32 and the sum exact instead (see "Matrix products"); this is the file format.
typedef struct {
    uint16_t d;
    uint16_t s;
    int8_t qs[HK_QK8_0];
} hk_block_q8_1; // 36 bytes

/// 256 values in 8 sub-blocks of 32: value = d * scale[s] * nibble - dmin * min[s], with 6-bit scale[s]
/// and min[s] packed into `scales` (s < 4: scales[s] and scales[s + 4] low 6 bits; s >= 4: low and high
/// nibble of scales[s + 4], top two bits in the top bits of scales[s - 4] and scales[s]).
/// qs[32 c + l] holds value 64 c + l in its low nibble and value 64 c + 32 + l in its high nibble.
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[HK_QK_K / 2];
} hk_block_q4_k; // 144 bytes

/// 256 values in 16 sub-blocks of 16: value = d * scales[s] * (q - 32), q six bits. In each half h (128
/// values), for l < 32: ql[64 h + l] has q of values 128 h + l (low nibble) and 128 h + 64 + l (high),
/// ql[64 h + 32 + l] of values 128 h + 32 + l and 128 h + 96 + l; qh[32 h + l] has the top two bits of
/// those four values at bits 0, 2, 4, 6 in the same order.
typedef struct {
    uint8_t ql[HK_QK_K / 2];
    uint8_t qh[HK_QK_K / 4];
    int8_t scales[HK_QK_K / 16];
    uint16_t d;
} hk_block_q6_k; // 210 bytes

/// Activations for the K formats: 256 values, value = d * qs[i]; bsums[j] = sum of qs[16 j ..< 16 j + 16].
typedef struct {
    float d;
    int8_t qs[HK_QK_K];
    int16_t bsums[HK_QK_K / 16];
} hk_block_q8_k; // 292 bytes

// MARK: - More K formats and IQ4_XS (quant_k_more.c, quant_k_more_matmul.c)

/// 256 values in 16 sub-blocks of 16: value = d * (scales[s] & 15) * q - dmin * (scales[s] >> 4), q two bits.
/// qs[32 h + l] holds q of values 128 h + l, + 32, + 64, + 96 at bits 0, 2, 4, 6 (h = 0, 1; l < 32).
typedef struct {
    uint8_t scales[HK_QK_K / 16];
    uint8_t qs[HK_QK_K / 4];
    uint16_t d;
    uint16_t dmin;
} hk_block_q2_k; // 84 bytes

/// 256 values in 16 sub-blocks of 16: value = d * (scale[s] - 32) * (q - 4), q three bits (0..7). The low two
/// bits are packed as in Q2_K's qs; the third bit of value v is bit v / 32 of hmask[v % 32]. The 16 six-bit
/// scales: low nibbles in bytes 0..7 (s < 8: low nibble of scales[s], s >= 8: high nibble of scales[s - 8]),
/// top two bits of scale s at bits 2 (s / 4) of scales[8 + s % 4].
typedef struct {
    uint8_t hmask[HK_QK_K / 8];
    uint8_t qs[HK_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} hk_block_q3_k; // 110 bytes

/// 256 values in 8 sub-blocks of 32: value = d * scale[s] * q - dmin * min[s], q five bits, scales and mins
/// packed as Q4_K's. The low four bits are Q4_K's qs; the fifth bit of value 64 c + l (l < 32) is bit 2 c
/// of qh[l], of value 64 c + 32 + l bit 2 c + 1 (so: bit s of qh[l] for sub-block s).
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[HK_QK_K / 8];
    uint8_t qs[HK_QK_K / 2];
} hk_block_q5_k; // 176 bytes

/// 256 values in 8 sub-blocks of 32: value = d * (scale[s] - 32) * kvalues[nibble], kvalues the 16 fixed
/// non-linear levels (-127 .. 113, hk_iq4_levels). Six-bit scale[s]: low four bits in nibble s % 2 of
/// scales_l[s / 2], top two at bits 2 s of scales_h. Sub-block s's nibbles are qs[16 s ..< 16 s + 16]: low
/// nibble of byte j is value 32 s + j, high nibble value 32 s + 16 + j.
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[HK_QK_K / 64];
    uint8_t qs[HK_QK_K / 2];
} hk_block_iq4_xs; // 136 bytes

// MARK: - IQ and TQ formats (quant_iq.c; dequantization only, codebooks in quant_iq_grids.c)
//
// Each group of 8 (IQ2/IQ1) or 4 (IQ3) values is an index into a codebook of magnitudes or signed values
// (format facts generated by tools/oracle/make_iq_grids.py); signs come from 7 stored bits plus even parity.

/// 256 values: qs as 8 groups of 32 values, each two 32-bit words: the first has four 8-bit codebook indices
/// (8 values each); the second four 7-bit sign indices and, in its top 4 bits, the scale: d * (0.5 + s) / 4.
typedef struct {
    uint16_t d;
    uint16_t qs[HK_QK_K / 8];
} hk_block_iq2_xxs; // 66 bytes

/// 256 values: qs[i] = 9-bit codebook index | 7-bit sign index << 9 (8 values each); per 32 values a byte of
/// two 4-bit scales (first and second 16 values): d * (0.5 + s) / 4.
typedef struct {
    uint16_t d;
    uint16_t qs[HK_QK_K / 8];
    uint8_t scales[HK_QK_K / 32];
} hk_block_iq2_xs; // 74 bytes

/// 256 values: qs[0..31] low 8 bits of 10-bit codebook indices (8 values each), qs[32..63] explicit sign
/// bytes; qh[g] has the top two bits of group g's four indices; scales as IQ2_XS.
typedef struct {
    uint16_t d;
    uint8_t qs[HK_QK_K / 4];
    uint8_t qh[HK_QK_K / 32];
    uint8_t scales[HK_QK_K / 32];
} hk_block_iq2_s; // 82 bytes

/// 256 values: 64 one-byte codebook indices (4 values each), then per 32 values a word of four 7-bit sign
/// indices and a 4-bit scale at the top: d * (0.5 + s) / 2.
typedef struct {
    uint16_t d;
    uint8_t qs[3 * HK_QK_K / 8];
} hk_block_iq3_xxs; // 98 bytes

/// 256 values: 9-bit codebook indices (low 8 in qs, ninth bit in qh, 4 values each), explicit sign bytes,
/// 4-bit scales per 32 values: d * (1 + 2 s).
typedef struct {
    uint16_t d;
    uint8_t qs[HK_QK_K / 4];
    uint8_t qh[HK_QK_K / 32];
    uint8_t signs[HK_QK_K / 8];
    uint8_t scales[HK_QK_K / 64];
} hk_block_iq3_s; // 110 bytes

/// 256 values: 11-bit indices into a codebook of signed values in {-1, 0, 1} (8 values each; low 8 bits in
/// qs, top 3 in qh[g] bits 3 l); qh[g] bits 12..14 a 3-bit scale d * (2 s + 1), bit 15 the sign of a shift
/// of 1/8 added to every value of the 32.
typedef struct {
    uint16_t d;
    uint8_t qs[HK_QK_K / 8];
    uint16_t qh[HK_QK_K / 32];
} hk_block_iq1_s; // 50 bytes

/// 256 values: IQ1_S's codebook with 3-bit scales per 16 values; the f16 super-block scale is spread over the
/// top nibbles of the four scale words.
typedef struct {
    uint8_t qs[HK_QK_K / 8];
    uint8_t qh[HK_QK_K / 16];
    uint8_t scales[HK_QK_K / 32];
} hk_block_iq1_m; // 56 bytes

/// Ternary: 256 values in {-1, 0, 1} * d, five base-3 digits per byte (qs, 240 values) and four (qh, 16 values),
/// each byte holding the digits as a fixed-point fraction (byte * 3^n's top digit).
typedef struct {
    uint8_t qs[(HK_QK_K - 4 * HK_QK_K / 64) / 5];
    uint8_t qh[HK_QK_K / 64];
    uint16_t d;
} hk_block_tq1_0; // 54 bytes

/// Ternary: 256 values, two bits each (q - 1) * d, packed as Q2_K's qs.
typedef struct {
    uint8_t qs[HK_QK_K / 4];
    uint16_t d;
} hk_block_tq2_0; // 66 bytes

/// Values per block (32 or 256), or 0 for an unknown type.
int64_t hk_quant_block_size(int type);
/// Bytes per block (34, 18, 20, 22, 24, 18, 36, 84, 110, 144, 176, 210, 136, 292; the IQ/TQ formats as their
/// structs above), or 0 for an unknown type.
size_t hk_quant_block_bytes(int type);
/// Bytes of one row of n values (n a multiple of the block size).
size_t hk_quant_row_bytes(int type, int64_t n);

// MARK: - Quantization (ggml's reference algorithms, bit-exact)

void hk_quantize_row_q8_0(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n);
void hk_quantize_row_q4_0(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n);
void hk_quantize_row_q5_0(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n);
/// Q4_1, Q5_1: d = (max - min) / 15 or 31, m = min, levels round half up from (x - min) / d.
void hk_quantize_row_q4_1(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n);
void hk_quantize_row_q5_1(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n);
/// ggml's quantize_row_q8_1_ref: d = amax / 127, qs = round-half-away(x / d), s = d * sum(qs).
void hk_quantize_row_q8_1(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n);
/// IQ4_NL as llama-quantize makes it without an importance matrix (ggml's quantize_iq4_nl with no weights):
/// x^2-weighted least-squares scale, tried from 15 starting grids around amax / 127; levels are the nearest
/// codebook entries. (ggml's quantize_row_iq4_nl_ref, used by no file writer, skips the search.)
void hk_quantize_row_iq4_nl(const float *x /* [n] */, void *y /* [n / 32] blocks */, int64_t n);
/// Per sub-block a weighted least-squares search for (scale, min) over 21 candidate grids, then 6-bit
/// quantization of the scales and mins and a final pass with the stored values (ggml's make_qkx2_quants).
void hk_quantize_row_q4_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n);
/// Per sub-block a search over 19 candidate scales maximising the x^2-weighted fit (ggml's make_qx_quants,
/// rmse_type 1), then int8 sub-block scales relative to the largest.
void hk_quantize_row_q6_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n);
/// ggml's quantize_row_q8_K_ref: d = -max / 127 where max is the value of largest magnitude (an all-zero block
/// is all zero, bsums included; ggml leaves its bsums unset).
void hk_quantize_row_q8_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n);

/// ggml's quantize_row_q2_K_ref: per sub-block of 16 a least-absolute-deviation (scale, min) fit over 16 grids,
/// then 4-bit scales and mins relative to the largest.
void hk_quantize_row_q2_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n);
/// ggml's quantize_row_q3_K_ref: per sub-block of 16 an x^2-weighted symmetric fit refined level by level,
/// then 6-bit signed scales relative to the largest magnitude.
void hk_quantize_row_q3_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n);
/// ggml's quantize_row_q5_K_ref: Q4_K's fit with 32 levels and 16 grids.
void hk_quantize_row_q5_k(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n);
/// ggml's quantize_row_iq4_xs_ref (no importance matrix): per sub-block the best of 15 scales for the
/// non-linear levels under x^2 weights, then 6-bit scales relative to the largest magnitude.
void hk_quantize_row_iq4_xs(const float *x /* [n] */, void *y /* [n / 256] blocks */, int64_t n);

/// A whole matrix, rows in parallel (row r's bytes start at r * hk_quant_row_bytes(type, n)).
/// Returns 0, or -1 for an unknown type or n not a multiple of the block size.
int hk_quantize(int type, const float *x /* [rows, n] */, void *y /* [rows, row bytes] */, int64_t rows, int64_t n);
void hk_quantize_q8_0(const float *x /* [rows, n] */, void *y /* [rows, n / 32] blocks */, int64_t rows, int64_t n);
void hk_quantize_q4_0(const float *x /* [rows, n] */, void *y /* [rows, n / 32] blocks */, int64_t rows, int64_t n);
void hk_quantize_q4_k(const float *x /* [rows, n] */, void *y /* [rows, n / 256] blocks */, int64_t rows, int64_t n);
void hk_quantize_q6_k(const float *x /* [rows, n] */, void *y /* [rows, n / 256] blocks */, int64_t rows, int64_t n);

// MARK: - Dequantization (ggml's formulas: products in f32, in the same order)

void hk_dequantize_row_q8_0(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q4_0(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q5_0(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q4_1(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q5_1(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q8_1(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq4_nl(const void *x /* [n / 32] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q4_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q6_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q8_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q2_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q3_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_q5_k(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq4_xs(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq2_xxs(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq2_xs(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq2_s(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq3_xxs(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq3_s(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq1_s(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_iq1_m(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_tq1_0(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
void hk_dequantize_row_tq2_0(const void *x /* [n / 256] blocks */, float *y /* [n] */, int64_t n);
/// Any of the above for one row of n values; returns 0, or -1 for an unknown type.
int hk_dequantize_row(int type, const void *x /* [n / block size] blocks */, float *y /* [n] */, int64_t n);

// MARK: - Matrix products over quantized weights: y[r, o] = sum_i w[o, i] * x[r, i]
//
// Weight types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS; `in` a multiple of
// the block size (the references and the sgemm path also take the IQ/TQ formats). The fast kernels quantize
// each activation row once, as llama.cpp does:
// - for the 32-value types to blocks of 32 int8 (hk_quantize_activations_a32: scale amax / 127 kept in
//   f32, values rounded half to even), then exact int32 dot products per block, scaled by both blocks'
//   scales and summed in f32; Q4_1 and Q5_1 add m * (activation scale) * (exact integer sum of the block's
//   activations), where llama.cpp's Q8_1 carries that product rounded to f16;
// - for the K formats and IQ4_XS to Q8_K (hk_quantize_row_q8_k), then exact integer sums per sub-block (with
//   the integer sub-block scales in the row kernel), scaled in f32.
// So they differ from the f32 reference by the activation rounding: each activation moves by at most half
// a step (amax / 254 of its block of 32 or 256), so |y - y_ref| <= sum over blocks of amax / 254 * sum |w|
// (RMS 0.54 % of |y| for Q8_0/Q4_0 and 0.70 % for the K formats with normal random weights and activations,
// in = 2048); and from the integer
// reference (hk_matmul_quant_int_ref) only by f32 rounding of the block sums (~1e-7 of sum |w x|).
// Results do not depend on the thread count or on which thread runs which outputs (the same code per output).

/// Decode: few activation rows (1..16). Each weight row is read once for all rows (outputs go in chunks of
/// ~64 KB of weights, rows in register tiles of 4 inside (8 for Q8_0 with VNNI), so the chunk's second pass
/// hits L2), parallel
/// over output rows. A row's result has the same bits whatever the number of rows multiplied together.
/// Returns 0, or -1 for an unknown weight type or `in` not a multiple of the block size.
int hk_matmul_rows_quant(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                         float *y /* [rows, out] */, int rows, int in, int out);
/// Naive reference: dequantizes each weight row to f32 (hk_dequantize_row) and takes double-accumulated dot
/// products with the unquantized activations.
int hk_matmul_rows_quant_ref(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                             float *y /* [rows, out] */, int rows, int in, int out);
/// Prefill: many activation rows. From 17 rows on (with VNNI) an int8 GEMM: the activations are quantized
/// like hk_matmul_rows_quant, each thread repacks chunks of 16-output tiles into an interleaved int8 layout
/// and multiplies 8 rows at a time with vpdpbusd; fewer rows (or no VNNI) use hk_matmul_rows_quant. Matches
/// hk_matmul_rows_quant up to f32 rounding. Returns 0 or -1.
int hk_matmul_many_quant(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                         float *y /* [rows, out] */, int rows, int in, int out);
/// The alternative prefill strategy, kept for comparison: dequantizes tiles of weight rows to f32 and
/// multiplies them with single-threaded sgemm inside one OpenMP region (as hk_matmul_many does for f16).
/// Differs from the reference only by f32 rounding (no activation quantization), ~3x slower. Returns 0 or -1.
int hk_matmul_many_quant_sgemm(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                               float *y /* [rows, out] */, int rows, int in, int out);
/// Same as hk_matmul_rows_quant_ref (any row count).
int hk_matmul_many_quant_ref(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                             float *y /* [rows, out] */, int rows, int in, int out);
/// Integer reference: quantizes the activations exactly as the fast kernels do, then scalar exact integer
/// dot products per block, scaled and summed in double. The fast kernels must match it to f32 rounding.
int hk_matmul_quant_int_ref(int type, const void *w /* [out, in] blocks */, const float *x /* [rows, in] */,
                            float *y /* [rows, out] */, int rows, int in, int out);

/// The activation quantization used with the 32-value weight types: per block of 32, d = amax / 127 (f32),
/// q = round-half-even(x * (127 / amax)); a block with amax below 1e-30 is all zero with d = 0. Identical
/// bytes at every ISA level for finite input (with NaN in a block its values are unspecified).
/// ggml's own Q8_0 activation format stores d in f16; keeping f32 makes the products slightly more accurate
/// at no cost.
void hk_quantize_activations_a32(const float *x /* [n] */, int8_t *q /* [n] */, float *d /* [n / 32] */, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
