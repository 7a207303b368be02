/*
 * SIMULATOR (ascend-fa): the generic FlashAttentionScore kernel (any head dim, any block size).
 * Always compiled; the only kernel in a --jit package. See flash_attention_score_impl.h.
 */
#define FA_KERNEL_NAME fa_kernel_generic
#define FA_D 0
#define FA_BC 0
#include "flash_attention_score_impl.h"
