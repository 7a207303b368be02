/*
 * SIMULATOR (ascend-fa): internal interface between the FlashAttentionScore entry points
 * (aclnn_flash_attention_score.c) and the compiled kernel variants. Stands in for the Ascend C kernel
 * of ops-transformer; here every "kernel binary" is host C code computing real float32 attention.
 */
#ifndef FLASH_ATTENTION_SCORE_KERNEL_SIM_H_
#define FLASH_ATTENTION_SCORE_KERNEL_SIM_H_

#include <stdint.h>

typedef struct fa_kernel_args {
    int64_t batch, nq, nkv, sq, skv, d, dv;
    float scale;
    int64_t pre;          /* effective band, causal folded in */
    int64_t next_tl;      /* next_tokens for top-left alignment */
    int64_t block_q;      /* rows per block (tiling) */
    int64_t block_kv;     /* keys per block (tiling, used by the generic kernel) */
    const float *q, *k, *v;
    const uint8_t *mask;
    int64_t msb, msn, mss;
    const int64_t *qlen, *kvlen;
    float *out, *smax, *ssum;
} fa_kernel_args;

/* One kernel computes all query rows of one (batch, head) pair; ws holds fa_kernel_ws_floats() floats. */
typedef void (*fa_kernel_fn)(const fa_kernel_args *a, int64_t bh, float *ws);

typedef struct fa_kernel_entry {
    int64_t head_dim;     /* 0 = any (generic kernel) */
    int64_t block_kv;     /* 0 = any (generic kernel) */
    const char *name;
    fa_kernel_fn fn;
} fa_kernel_entry;

static inline int64_t fa_kernel_ws_floats(int64_t block_q, int64_t block_kv, int64_t dv)
{
    /* m[block_q], l[block_q], acc[block_q * dv], p[block_kv], padding to 64 bytes */
    int64_t n = 2 * block_q + block_q * dv + block_kv;
    return (n + 15) / 16 * 16;
}

/* Generated at build time (build_out/gen/kernel_registry.c): the compiled kernel variants. */
extern const fa_kernel_entry fa_kernel_registry[];
extern const int fa_kernel_registry_size;
void fa_kernel_generic(const fa_kernel_args *a, int64_t bh, float *ws);

#endif /* FLASH_ATTENTION_SCORE_KERNEL_SIM_H_ */
