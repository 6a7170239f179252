// Tensor element types: one enum for every kernel that takes a weight or activation type.
#ifndef HONE_TYPES_H
#define HONE_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

/// Element types numbered as ggml's `enum ggml_type`, i.e. the ids GGUF files store, so a GGUF tensor's type
/// passes to the kernels unchanged and HoneKit's `DType.ggmlType` is the same number. Not every id has kernels:
/// hk_quant_block_size() returns 0 for a type the quantized kernels do not know.
typedef enum {
    HK_TYPE_F32 = 0,
    HK_TYPE_F16 = 1,
    HK_TYPE_Q4_0 = 2,
    HK_TYPE_Q4_1 = 3,
    HK_TYPE_Q5_0 = 6,
    HK_TYPE_Q5_1 = 7,
    HK_TYPE_Q8_0 = 8,
    HK_TYPE_Q8_1 = 9,
    HK_TYPE_Q2_K = 10,
    HK_TYPE_Q3_K = 11,
    HK_TYPE_Q4_K = 12,
    HK_TYPE_Q5_K = 13,
    HK_TYPE_Q6_K = 14,
    HK_TYPE_Q8_K = 15,
    HK_TYPE_IQ2_XXS = 16,
    HK_TYPE_IQ2_XS = 17,
    HK_TYPE_IQ3_XXS = 18,
    HK_TYPE_IQ1_S = 19,
    HK_TYPE_IQ4_NL = 20,
    HK_TYPE_IQ3_S = 21,
    HK_TYPE_IQ2_S = 22,
    HK_TYPE_IQ4_XS = 23,
    HK_TYPE_IQ1_M = 29,
    HK_TYPE_BF16 = 30,
    HK_TYPE_TQ1_0 = 34,
    HK_TYPE_TQ2_0 = 35,
} hk_type;

#ifdef __cplusplus
}
#endif

#endif
