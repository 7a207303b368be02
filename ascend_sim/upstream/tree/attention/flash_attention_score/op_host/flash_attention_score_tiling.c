/*
 * SIMULATOR (ascend-fa): tiling of FlashAttentionScore, compiled into libcust_opmaster_rt2.0.so.
 * Picks the query/key block sizes and the tiling key (which kernel variant runs), and enforces the
 * documented shape limits (B 1-2M, N 1-256, S 1-1M, D 1-768, Dq == Dk >= Dv, Nq % Nkv == 0).
 */
#include <stdio.h>

#include "ascendfa_sim_common.h"
#include "flash_attention_score_tiling.h"

ASCENDFA_API int TilingFlashAttentionScore(const ascendfa_sim_fa_tiling_in *in, ascendfa_sim_fa_tiling_out *out)
{
    if (in == NULL || out == NULL) {
        return 1;
    }
    out->message[0] = '\0';
    if (in->batch < 1 || in->batch > 2000000) {
        snprintf(out->message, sizeof(out->message), "batch size %lld is out of range [1, 2M]", (long long)in->batch);
        return 1;
    }
    if (in->heads_q < 1 || in->heads_q > 256 || in->heads_kv < 1) {
        snprintf(out->message, sizeof(out->message), "head num %lld (kv %lld) is out of range [1, 256]",
                 (long long)in->heads_q, (long long)in->heads_kv);
        return 1;
    }
    if (in->heads_q % in->heads_kv != 0) {
        snprintf(out->message, sizeof(out->message),
                 "numHeads / numKvHeads must be an integer, but numHeads is %lld and numKvHeads is %lld",
                 (long long)in->heads_q, (long long)in->heads_kv);
        return 1;
    }
    if (in->seq_q < 1 || in->seq_kv < 1 || in->seq_q > 1048576 || in->seq_kv > 1048576) {
        snprintf(out->message, sizeof(out->message), "sequence length (q %lld, kv %lld) is out of range [1, 1M]",
                 (long long)in->seq_q, (long long)in->seq_kv);
        return 1;
    }
    if (in->head_dim < 1 || in->head_dim > 768 || in->head_dim_v < 1 || in->head_dim_v > in->head_dim) {
        snprintf(out->message, sizeof(out->message),
                 "head dim D of query/key (%lld) must be in [1, 768] and >= D of value (%lld)",
                 (long long)in->head_dim, (long long)in->head_dim_v);
        return 1;
    }
    out->block_kv = in->seq_kv >= 1024 ? 128 : (in->seq_kv >= 128 ? 64 : 32);
    out->block_q = in->seq_q >= 64 ? 32 : 16;
    /* tiling key: <mask><causal><D:4 digits><Bc:3 digits><Br:3 digits> */
    out->tiling_key = (uint64_t)(in->has_mask ? 1 : 0) * 10000000000000ULL
                      + (uint64_t)(in->causal & 3) * 1000000000000ULL
                      + (uint64_t)in->head_dim * 1000000ULL
                      + (uint64_t)out->block_kv * 1000ULL
                      + (uint64_t)out->block_q;
    return 0;
}
