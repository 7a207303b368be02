/*
 * SIMULATOR (ascend-fa): tiling interface of FlashAttentionScore. The tiling function lives in
 * libcust_opmaster_rt2.0.so (op_impl/ai_core/tbe/op_tiling/lib/linux/<arch>/), as in a real package;
 * libcust_opapi.so loads it from the installed vendor tree at run time.
 */
#ifndef FLASH_ATTENTION_SCORE_TILING_SIM_H_
#define FLASH_ATTENTION_SCORE_TILING_SIM_H_

#include <stdint.h>

typedef struct ascendfa_sim_fa_tiling_in {
    int64_t batch, heads_q, heads_kv, seq_q, seq_kv, head_dim, head_dim_v;
    int32_t has_mask;
    int32_t causal;
} ascendfa_sim_fa_tiling_in;

typedef struct ascendfa_sim_fa_tiling_out {
    uint64_t tiling_key;
    int64_t block_q;
    int64_t block_kv;
    char message[256];     /* set when the tiling fails */
} ascendfa_sim_fa_tiling_out;

typedef int (*ascendfa_sim_fa_tiling_fn)(const ascendfa_sim_fa_tiling_in *in, ascendfa_sim_fa_tiling_out *out);

#define ASCENDFA_SIM_FA_TILING_SYMBOL "TilingFlashAttentionScore"

#endif /* FLASH_ATTENTION_SCORE_TILING_SIM_H_ */
