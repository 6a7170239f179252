// The IQ formats' codebooks (quant_iq_grids.c, generated) for quant_iq.c.
#ifndef HK_QUANT_IQ_INTERNAL_H
#define HK_QUANT_IQ_INTERNAL_H

#include "quant_internal.h"

/// Sign bytes: 7 stored bits plus an eighth for an even count of negatives.
HK_HIDDEN extern const uint8_t hk_iq_signs[128];
/// Codebooks: byte j of an entry is value j of its group (magnitudes; IQ1: int8 in {-1, 0, 1}).
HK_HIDDEN extern const uint64_t hk_iq2xxs_grid[256];
HK_HIDDEN extern const uint64_t hk_iq2xs_grid[512];
HK_HIDDEN extern const uint64_t hk_iq2s_grid[1024];
HK_HIDDEN extern const uint32_t hk_iq3xxs_grid[256];
HK_HIDDEN extern const uint32_t hk_iq3s_grid[512];
HK_HIDDEN extern const uint64_t hk_iq1s_grid[2048];

#endif
