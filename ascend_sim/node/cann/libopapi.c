/*
 * SIMULATOR (ascend-fa): a stand-in for CANN's built-in op API library <cann>/lib64/libopapi.so.
 *
 * Real behaviour modelled (ascend-facts.md section 9.1):
 * - CANN ships its own aclnn operators in lib64/libopapi.so, on LD_LIBRARY_PATH after set_env.sh. op-plugin's
 *   GetOpApiFuncAddr (Ascend/op-plugin op_plugin/utils/op_api_common.h) falls back to it, dlopen'ed by bare
 *   name, when no ASCEND_CUSTOM_OPP_PATH library and no config.ini vendor exports the API.
 * - From CANN 8.5 the ops package includes ops-transformer, so aclnnFlashAttentionScore is built in: a node with
 *   no working custom package still computes FlashAttention, with CANN's kernel, and the numbers are right.
 *   sim-apply compiles this file with -DASCEND_SIM_BUILTIN_FA=1 for CANN >= 8.5 only; before 8.5 the library
 *   exists without those symbols.
 *
 * The ABI is the simulator's own (NOT the real aclnn ABI), the same as the simulated custom package's, so the
 * torch_npu stand-in calls either the same way: see ascend_sim/upstream/tree/attention/flash_attention_score/
 * op_host/op_api/aclnn_flash_attention_score.h. This is an independent, plain implementation (two passes per
 * row, float64 accumulation): its results equal a float32 reference, so only a served-by check (which library
 * is mapped and first in op-plugin's order) can tell it from the custom package.
 *
 * Build: cc -shared -fPIC -O2 [-DASCEND_SIM_BUILTIN_FA=1] -o libopapi.so libopapi.c -lm -lpthread
 * Not used on real Atlas hosts.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPAPI_EXPORT __attribute__((visibility("default")))
#ifndef ASCEND_SIM_OPAPI_NAME /* what ascendfa_sim_last_kernel() reports (the other-vendor fault names its own) */
#define ASCEND_SIM_OPAPI_NAME "cann built-in FlashAttentionScore"
#endif

/* Simulator marker (not a real CANN symbol), so tools can tell the stand-in from a real libopapi.so. */
OPAPI_EXPORT const char *ascend_sim_libopapi(void)
{
    return "ascend-fa simulator libopapi stub";
}

#if defined(ASCEND_SIM_BUILTIN_FA) && ASCEND_SIM_BUILTIN_FA

#define ABI_VERSION 1u
#define ACLNN_SUCCESS 0
#define ACLNN_ERR_PARAM_NULLPTR 161001
#define ACLNN_ERR_PARAM_INVALID 161002
#define ACLNN_ERR_RUNTIME_ERROR 361001
#define MAX_THREADS 16

typedef void *aclrtStream;

/* Layout of ascendfa_sim_fa_params (aclnn_flash_attention_score.h, ABI version 1). */
typedef struct fa_params {
    uint32_t abi_version;
    int32_t causal;
    int64_t batch, heads_q, heads_kv, seq_q, seq_kv, head_dim, head_dim_v;
    double scale;
    int64_t pre_tokens, next_tokens;
    const float *query, *key, *value;
    const uint8_t *atten_mask;
    int64_t mask_stride_b, mask_stride_n, mask_stride_s;
    const int64_t *actual_seq_qlen, *actual_seq_kvlen;
    float *out, *softmax_max, *softmax_sum;
} fa_params;

typedef struct aclOpExecutor {
    fa_params p;
    int threads;
    uint64_t workspace_size;
} aclOpExecutor;

static __thread char g_last_error[512];

static int fail(int code, const char *msg)
{
    snprintf(g_last_error, sizeof(g_last_error), "EZ1001: [PID: %d] FlashAttentionScore: %s", (int)getpid(), msg);
    return code;
}

OPAPI_EXPORT const char *ascendfa_sim_last_error(void)
{
    return g_last_error;
}

OPAPI_EXPORT const char *ascendfa_sim_last_kernel(void)
{
    return ASCEND_SIM_OPAPI_NAME;
}

/* Is key j visible to query row i of batch b, head n (header: "Masking (all combined)")? */
static int visible(const fa_params *p, int64_t b, int64_t n, int64_t i, int64_t j, int64_t kvlen)
{
    if (j >= kvlen || j < i - p->pre_tokens || j > i + p->next_tokens) {
        return 0;
    }
    if ((p->causal == 1 && j > i) || (p->causal == 2 && j > i + p->seq_kv - p->seq_q)) {
        return 0;
    }
    if (p->atten_mask != NULL &&
        p->atten_mask[b * p->mask_stride_b + n * p->mask_stride_n + i * p->mask_stride_s + j] != 0) {
        return 0;
    }
    return 1;
}

static int64_t clamp_len(const int64_t *lens, int64_t b, int64_t full)
{
    if (lens == NULL) {
        return full;
    }
    return lens[b] < 0 ? 0 : (lens[b] > full ? full : lens[b]);
}

/* One (batch, head): two passes per query row (max, then exp-sum and weighted values). */
static void run_head(const fa_params *p, int64_t bh, double *scores)
{
    const int64_t b = bh / p->heads_q, n = bh % p->heads_q;
    const int64_t nk = n / (p->heads_q / p->heads_kv);
    const int64_t d = p->head_dim, dv = p->head_dim_v, skv = p->seq_kv;
    const float *q = p->query + (b * p->heads_q + n) * p->seq_q * d;
    const float *k = p->key + (b * p->heads_kv + nk) * skv * d;
    const float *v = p->value + (b * p->heads_kv + nk) * skv * dv;
    float *o = p->out + (b * p->heads_q + n) * p->seq_q * dv;
    const int64_t qlen = clamp_len(p->actual_seq_qlen, b, p->seq_q);
    const int64_t kvlen = clamp_len(p->actual_seq_kvlen, b, skv);

    for (int64_t i = 0; i < p->seq_q; i++) {
        double mx = -INFINITY, sum = 0.0;
        float *oi = o + i * dv;
        memset(oi, 0, (size_t)dv * sizeof(float));
        for (int64_t j = 0; i < qlen && j < skv; j++) {
            double dot = 0.0;
            if (!visible(p, b, n, i, j, kvlen)) {
                scores[j] = -INFINITY;
                continue;
            }
            for (int64_t e = 0; e < d; e++) {
                dot += (double)q[i * d + e] * (double)k[j * d + e];
            }
            scores[j] = dot * p->scale;
            mx = scores[j] > mx ? scores[j] : mx;
        }
        if (i < qlen && mx != -INFINITY) {
            for (int64_t j = 0; j < skv; j++) {
                scores[j] = scores[j] == -INFINITY ? 0.0 : exp(scores[j] - mx);
                sum += scores[j];
            }
            for (int64_t e = 0; e < dv; e++) {
                double acc = 0.0;
                for (int64_t j = 0; j < skv; j++) {
                    acc += scores[j] * (double)v[j * dv + e];
                }
                oi[e] = (float)(acc / sum);
            }
        }
        if (p->softmax_max != NULL) {
            p->softmax_max[bh * p->seq_q + i] = (float)mx;
        }
        if (p->softmax_sum != NULL) {
            p->softmax_sum[bh * p->seq_q + i] = (float)sum;
        }
    }
}

typedef struct worker {
    const aclOpExecutor *ex;
    double *scores;
    int64_t *next;
} worker;

static void *worker_main(void *arg)
{
    worker *w = (worker *)arg;
    const int64_t tasks = w->ex->p.batch * w->ex->p.heads_q;
    for (;;) {
        int64_t bh = __atomic_fetch_add(w->next, 1, __ATOMIC_RELAXED);
        if (bh >= tasks) {
            return NULL;
        }
        run_head(&w->ex->p, bh, w->scores);
    }
}

static int check_params(const fa_params *p)
{
    if (p->abi_version != ABI_VERSION) {
        return fail(ACLNN_ERR_PARAM_INVALID, "unsupported parameter block version");
    }
    if (p->query == NULL || p->key == NULL || p->value == NULL || p->out == NULL) {
        return fail(ACLNN_ERR_PARAM_NULLPTR, "query, key, value and attentionOut must not be null");
    }
    if (p->batch < 1 || p->heads_q < 1 || p->heads_kv < 1 || p->seq_q < 1 || p->seq_kv < 1 || p->head_dim < 1 ||
        p->head_dim_v < 1 || p->head_dim_v > p->head_dim) {
        return fail(ACLNN_ERR_PARAM_INVALID, "shape is invalid (need B, N, S, D >= 1 and Dv <= D)");
    }
    if (p->heads_q % p->heads_kv != 0) {
        return fail(ACLNN_ERR_PARAM_INVALID, "numHeads / numKvHeads must be an integer");
    }
    if (p->causal < 0 || p->causal > 2 || !isfinite(p->scale)) {
        return fail(ACLNN_ERR_PARAM_INVALID, "causal must be 0, 1 or 2 and scaleValue finite");
    }
    return ACLNN_SUCCESS;
}

static int thread_count(int64_t tasks)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    n = n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : n);
    return (int)(n > tasks ? tasks : n);
}

OPAPI_EXPORT int aclnnFlashAttentionScoreGetWorkspaceSize(const fa_params *p, uint64_t *workspaceSize,
                                                          aclOpExecutor **executor)
{
    aclOpExecutor *ex;
    int rc;
    g_last_error[0] = '\0';
    if (p == NULL || workspaceSize == NULL || executor == NULL) {
        return fail(ACLNN_ERR_PARAM_NULLPTR, "params, workspaceSize and executor must not be null");
    }
    rc = check_params(p);
    if (rc != ACLNN_SUCCESS) {
        return rc;
    }
    ex = (aclOpExecutor *)calloc(1, sizeof(*ex));
    if (ex == NULL) {
        return fail(ACLNN_ERR_RUNTIME_ERROR, "out of memory");
    }
    ex->p = *p;
    ex->threads = thread_count(p->batch * p->heads_q);
    ex->workspace_size = (uint64_t)ex->threads * (uint64_t)p->seq_kv * sizeof(double);
    *workspaceSize = ex->workspace_size;
    *executor = ex;
    return ACLNN_SUCCESS;
}

OPAPI_EXPORT int aclnnFlashAttentionScore(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                          aclrtStream stream)
{
    pthread_t tids[MAX_THREADS];
    worker workers[MAX_THREADS];
    int64_t next = 0;
    int started = 0;
    (void)stream;
    g_last_error[0] = '\0';
    if (executor == NULL) {
        return fail(ACLNN_ERR_PARAM_NULLPTR, "executor must not be null");
    }
    if (workspace == NULL || workspaceSize < executor->workspace_size) {
        free(executor);
        return fail(ACLNN_ERR_PARAM_INVALID, "workspace is smaller than required");
    }
    for (int t = 0; t < executor->threads; t++) {
        workers[t].ex = executor;
        workers[t].scores = (double *)workspace + (int64_t)t * executor->p.seq_kv;
        workers[t].next = &next;
    }
    for (int t = 1; t < executor->threads && pthread_create(&tids[t], NULL, worker_main, &workers[t]) == 0; t++) {
        started = t;
    }
    worker_main(&workers[0]);
    for (int t = 1; t <= started; t++) {
        pthread_join(tids[t], NULL);
    }
    free(executor);
    return ACLNN_SUCCESS;
}

#endif /* ASCEND_SIM_BUILTIN_FA */
