/*
 * SIMULATOR (ascend-fa): the C ABI of the simulated FlashAttentionScore operator.
 *
 * This is NOT the real aclnn ABI. The real aclnnFlashAttentionScoreGetWorkspaceSize takes ~20 aclTensor
 * arguments; the simulator keeps the real two-phase shape (GetWorkspaceSize -> executor + workspace size,
 * then run) but passes one parameter block of plain host pointers. Tensors are float32, contiguous,
 * in BNSD order. Host memory stands in for HBM.
 *
 *   ascendfa_sim_fa_params p = {.abi_version = ASCENDFA_SIM_ABI_VERSION, ...};
 *   uint64_t ws = 0; aclOpExecutor *ex = NULL;
 *   if (aclnnFlashAttentionScoreGetWorkspaceSize(&p, &ws, &ex) != 0) { puts(ascendfa_sim_last_error()); }
 *   void *buf = malloc(ws);
 *   aclnnFlashAttentionScore(buf, ws, ex, NULL);   // the executor is single-use and freed by this call
 *
 * Masking (all combined): key j of query row i (0-based, per batch b) takes part iff
 *   j < kv_len(b)                                   (actual_seq_kvlen[b] when given, else seq_kv)
 *   and i - pre_tokens <= j <= i + next_tokens      (band, top-left aligned, as sparse_mode 0)
 *   and causal == 0, or causal == 1 and j <= i (top-left, = torch SDPA is_causal),
 *       or causal == 2 and j <= i + seq_kv - seq_q (bottom-right)
 *   and atten_mask == NULL or atten_mask[b*mask_stride_b + n*mask_stride_n + i*mask_stride_s + j] == 0
 *       (nonzero = masked out, like torch_npu's boolean atten_mask; stride 0 broadcasts a dimension)
 * Rows i >= actual_seq_qlen[b] (when given) and rows with no visible key produce zeros; their
 * softmax_max is -inf and softmax_sum 0.
 * GQA: heads_q % heads_kv == 0, query head n reads key/value head n / (heads_q / heads_kv).
 */
#ifndef ACLNN_FLASH_ATTENTION_SCORE_SIM_H_
#define ACLNN_FLASH_ATTENTION_SCORE_SIM_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ASCENDFA_SIM_ABI_VERSION 1u

/* aclnn status codes used by the simulator, values as ops-transformer docs/zh/context/aclnn返回码.md lists them. */
#define ACLNN_SUCCESS 0
#define ACLNN_ERR_PARAM_NULLPTR 161001
#define ACLNN_ERR_PARAM_INVALID 161002
#define ACLNN_ERR_RUNTIME_ERROR 361001
#define ACLNN_ERR_INNER 561000
#define ACLNN_ERR_INNER_TILING_ERROR 561002
#define ACLNN_ERR_INNER_FIND_KERNEL_ERROR 561003
#define ACLNN_ERR_INNER_NULLPTR 561103

typedef struct aclOpExecutor aclOpExecutor;
typedef void *aclrtStream;

typedef struct ascendfa_sim_fa_params {
    uint32_t abi_version;          /* must be ASCENDFA_SIM_ABI_VERSION */
    int32_t causal;                /* 0 none, 1 top-left (j <= i), 2 bottom-right (j <= i + seq_kv - seq_q) */
    int64_t batch;                 /* B */
    int64_t heads_q;               /* Nq */
    int64_t heads_kv;              /* Nkv, Nq % Nkv == 0 */
    int64_t seq_q;                 /* Sq */
    int64_t seq_kv;                /* Skv */
    int64_t head_dim;              /* D of query and key */
    int64_t head_dim_v;            /* D of value and output, <= head_dim */
    double scale;                  /* softmax scale applied to q.k */
    int64_t pre_tokens;            /* band: keys with j < i - pre_tokens are masked */
    int64_t next_tokens;           /* band: keys with j > i + next_tokens are masked */
    const float *query;            /* [B, Nq, Sq, D] */
    const float *key;              /* [B, Nkv, Skv, D] */
    const float *value;            /* [B, Nkv, Skv, Dv] */
    const uint8_t *atten_mask;     /* NULL or bytes, nonzero = masked out; last dimension contiguous */
    int64_t mask_stride_b;         /* element strides of atten_mask (0 = broadcast) */
    int64_t mask_stride_n;
    int64_t mask_stride_s;
    const int64_t *actual_seq_qlen;  /* NULL or [B] valid query rows per batch */
    const int64_t *actual_seq_kvlen; /* NULL or [B] valid keys per batch */
    float *out;                    /* [B, Nq, Sq, Dv] */
    float *softmax_max;            /* NULL or [B, Nq, Sq] row max of the scaled scores */
    float *softmax_sum;            /* NULL or [B, Nq, Sq] sum of exp(score - max) */
} ascendfa_sim_fa_params;

int aclnnFlashAttentionScoreGetWorkspaceSize(const ascendfa_sim_fa_params *params, uint64_t *workspaceSize,
                                             aclOpExecutor **executor);
int aclnnFlashAttentionScore(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                             aclrtStream stream);

/* The --soc the package was built for (e.g. "ascend910b") and the upstream version (e.g. "9.0.1"). */
const char *ascendfa_sim_package_soc(void);
const char *ascendfa_sim_package_version(void);
/* Message of the last failed call in this thread ("" when none), CANN style: "EZ1001: ...". */
const char *ascendfa_sim_last_error(void);
/* Tiling key and kernel chosen by the last successful GetWorkspaceSize in this thread. */
const char *ascendfa_sim_last_kernel(void);

#ifdef __cplusplus
}
#endif
#endif /* ACLNN_FLASH_ATTENTION_SCORE_SIM_H_ */
