/*
 * SIMULATOR (ascend-fa): aclnnFlashAttentionScore entry points, compiled into libcust_opapi.so.
 *
 * Two-phase like the real aclnn API: GetWorkspaceSize validates the parameters, runs the tiling from
 * libcust_opmaster_rt2.0.so (loaded from the same vendor tree), picks a compiled kernel variant and
 * returns a single-use executor; aclnnFlashAttentionScore runs it on host threads. The ABI is the
 * simulator's own, documented in op_host/op_api/aclnn_flash_attention_score.h.
 *
 * Kernel binaries (package built with --pkg): GetWorkspaceSize looks for the binaries of the device's SoC in
 * the vendor tree this library belongs to (found with dladdr): op_impl/ai_core/tbe/kernel/<soc>/<op>/ (a .o
 * and its .json) and op_impl/ai_core/tbe/kernel/config/<soc>/<op>.json (ops-transformer cmake/func.cmake).
 * The device SoC comes from AscendCL's aclrtGetSocName() (acl_rt.h), resolved with dlsym(RTLD_DEFAULT):
 * torch_npu has libascendcl.so loaded RTLD_GLOBAL. Its short family (Ascend910B3 -> ascend910b,
 * Ascend910_9392 -> ascend910_93: CANN platform_config <SoC>.ini Short_SoC_version, lower-cased) names the
 * directory. Missing binaries fail as CANN's op runtime does (nnopbase "Cannot find bin of op %s, integral
 * key %s." with ACLNN_ERR_INNER; EZ9999 text as quoted in Ascend's troubleshooting "Cannot find bin of op"
 * and vllm-project/vllm-ascend#37). A --jit package has no binaries (compiled online): no check.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aclnn_flash_attention_score.h"
#include "ascendfa_sim_common.h"
#include "flash_attention_score_binary_key.h"
#include "flash_attention_score_kernel.h"
#include "flash_attention_score_tiling.h"

#define FA_MAX_THREADS 16

struct aclOpExecutor {
    fa_kernel_args args;
    const fa_kernel_entry *kernel;
    int threads;
    uint64_t workspace_size;
    int64_t ws_floats;
};

static __thread char g_last_error[1024];
static __thread char g_last_kernel[256];

static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(g_last_error, sizeof(g_last_error), "EZ1001: [PID: %d] FlashAttentionScore: ", (int)getpid());
    va_start(ap, fmt);
    vsnprintf(g_last_error + n, sizeof(g_last_error) - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

ASCENDFA_API const char *ascendfa_sim_last_error(void)
{
    return g_last_error;
}

ASCENDFA_API const char *ascendfa_sim_last_kernel(void)
{
    return g_last_kernel;
}

/* <vendor dir> of this libcust_opapi.so (<vendor>/op_api/lib/libcust_opapi.so -> <vendor>); 0 on success */
static int vendor_dir(char *out, size_t len)
{
    Dl_info info;
    char *slash;
    if (dladdr((void *)&vendor_dir, &info) == 0 || info.dli_fname == NULL) {
        return -1;
    }
    snprintf(out, len, "%s", info.dli_fname);
    slash = strrchr(out, '/');
    if (slash == NULL) {
        snprintf(out, len, ".");
    } else {
        *slash = '\0';
    }
    strncat(out, "/../..", len - strlen(out) - 1);
    return 0;
}

/* Short SoC family of a SoC version, as ops-transformer's --soc names it */
static void soc_family(const char *soc, char *out, size_t len)
{
    static const char *const families[] = {"ascend910b", "ascend910_93", "ascend310p", "ascend950", "ascend910"};
    size_t i;
    for (i = 0; i < len - 1 && soc[i] != '\0'; i++) {
        out[i] = (char)((soc[i] >= 'A' && soc[i] <= 'Z') ? soc[i] - 'A' + 'a' : soc[i]);
    }
    out[i] = '\0';
    for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        if (strncmp(out, families[i], strlen(families[i])) == 0) {
            snprintf(out, len, "%s", families[i]);
            return;
        }
    }
}

/* true when <dir> holds a <name>.o next to a <name>.json */
static int has_kernel_bin(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char json[8192];
    int ok = 0;
    if (d == NULL) {
        return 0;
    }
    while (!ok && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 2 && strcmp(e->d_name + n - 2, ".o") == 0 && strlen(dir) + n + 8 < sizeof(json)) {
            memcpy(json, dir, strlen(dir));
            json[strlen(dir)] = '/';
            memcpy(json + strlen(dir) + 1, e->d_name, n - 2);
            memcpy(json + strlen(dir) + 1 + n - 2, ".json", 6);
            ok = access(json, R_OK) == 0;
        }
    }
    closedir(d);
    return ok;
}

typedef const char *(*acl_get_soc_name_fn)(void);
static int g_bins_found; /* positive result cached: the real runtime keeps the bins it loaded */

static int bin_error(const char *detail)
{
    snprintf(g_last_error, sizeof(g_last_error),
             "EZ9999: Inner Error!\n"
             "EZ9999: [PID: %d] Cannot find bin of op " ASCENDFA_OP_TYPE ", integral key " ASCENDFA_OP_INTEGRAL_KEY ".\n"
             "        TraceBack (most recent call last):\n"
             "        Cannot find binary for op " ASCENDFA_OP_TYPE ".\n"
             "        Kernel GetWorkspace failed. opType: 1\n"
             "        %s",
             (int)getpid(), detail);
    return ACLNN_ERR_INNER;
}

/* 0 when the kernel binaries of the device's SoC are in this package (or it has none by design: --jit) */
static int check_kernel_bins(void)
{
    acl_get_soc_name_fn get_soc;
    const char *soc;
    char vendor[4096], family[64], path[8192], detail[512];
    if (!ASCENDFA_KERNEL_BINARIES || __atomic_load_n(&g_bins_found, __ATOMIC_ACQUIRE)) {
        return 0;
    }
    get_soc = (acl_get_soc_name_fn)dlsym(RTLD_DEFAULT, "aclrtGetSocName");
    if (get_soc == NULL) {
        return fail(ACLNN_ERR_INNER, "aclrtGetSocName not found in the process: load CANN's libascendcl.so "
                    "(RTLD_GLOBAL) before calling the aclnn API");
    }
    soc = get_soc();
    if (soc == NULL || soc[0] == '\0') {
        return fail(ACLNN_ERR_INNER, "aclrtGetSocName returned no SoC name (no device?)");
    }
    if (vendor_dir(vendor, sizeof(vendor)) != 0) {
        return fail(ACLNN_ERR_INNER, "cannot locate libcust_opapi.so");
    }
    soc_family(soc, family, sizeof(family));
    snprintf(path, sizeof(path), "%s/op_impl/ai_core/tbe/kernel/config/%s/" ASCENDFA_OP_FILE ".json", vendor, family);
    if (access(path, R_OK) != 0) {
        snprintf(detail, sizeof(detail), "%s: no binary config for soc %s (%s)", ASCENDFA_OP_TYPE, family, soc);
        return bin_error(detail);
    }
    snprintf(path, sizeof(path), "%s/op_impl/ai_core/tbe/kernel/%s/" ASCENDFA_OP_FILE, vendor, family);
    if (!has_kernel_bin(path)) {
        snprintf(detail, sizeof(detail), "%s: no kernel binary for soc %s (%s)", ASCENDFA_OP_TYPE, family, soc);
        return bin_error(detail);
    }
    __atomic_store_n(&g_bins_found, 1, __ATOMIC_RELEASE);
    return 0;
}

/* The tiling library of the vendor tree this libcust_opapi.so belongs to:
 * <vendor>/op_api/lib/libcust_opapi.so -> <vendor>/op_impl/ai_core/tbe/op_tiling/lib/linux/<arch>/ */
static pthread_mutex_t g_tiling_lock = PTHREAD_MUTEX_INITIALIZER;
static ascendfa_sim_fa_tiling_fn g_tiling_fn;

static ascendfa_sim_fa_tiling_fn load_tiling(char *err, size_t errlen)
{
    Dl_info info;
    char path[4096];
    char *slash;
    void *handle;
    ascendfa_sim_fa_tiling_fn fn;

    pthread_mutex_lock(&g_tiling_lock);
    if (g_tiling_fn != NULL) {
        pthread_mutex_unlock(&g_tiling_lock);
        return g_tiling_fn;
    }
    if (dladdr((void *)&load_tiling, &info) == 0 || info.dli_fname == NULL) {
        snprintf(err, errlen, "cannot locate libcust_opapi.so");
        pthread_mutex_unlock(&g_tiling_lock);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s", info.dli_fname);
    slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(path, sizeof(path), ".");
    } else {
        *slash = '\0';
    }
    strncat(path, "/../../op_impl/ai_core/tbe/op_tiling/lib/linux/" ASCENDFA_ARCH "/libcust_opmaster_rt2.0.so",
            sizeof(path) - strlen(path) - 1);
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *e = dlerror();
        snprintf(err, errlen, "SelectBin failed: no tiling for FlashAttentionScore, %s", e != NULL ? e : path);
        pthread_mutex_unlock(&g_tiling_lock);
        return NULL;
    }
    fn = (ascendfa_sim_fa_tiling_fn)dlsym(handle, ASCENDFA_SIM_FA_TILING_SYMBOL);
    if (fn == NULL) {
        snprintf(err, errlen, "SelectBin failed: %s has no %s", path, ASCENDFA_SIM_FA_TILING_SYMBOL);
        pthread_mutex_unlock(&g_tiling_lock);
        return NULL;
    }
    g_tiling_fn = fn;
    pthread_mutex_unlock(&g_tiling_lock);
    return fn;
}

static const fa_kernel_entry g_generic = {0, 0, "fa_kernel_generic", fa_kernel_generic};

static const fa_kernel_entry *select_kernel(int64_t d, int64_t dv, int64_t block_kv)
{
    if (d == dv) {
        for (int i = 0; i < fa_kernel_registry_size; i++) {
            if (fa_kernel_registry[i].head_dim == d && fa_kernel_registry[i].block_kv == block_kv) {
                return &fa_kernel_registry[i];
            }
        }
    }
    return &g_generic;
}

static int thread_count(int64_t tasks)
{
    const char *env = getenv("ASCENDFA_SIM_THREADS");
    long n = env != NULL ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        n = 1;
    }
    if (n > FA_MAX_THREADS) {
        n = FA_MAX_THREADS;
    }
    if (n > tasks) {
        n = (long)tasks;
    }
    return (int)n;
}

ASCENDFA_API int aclnnFlashAttentionScoreGetWorkspaceSize(const ascendfa_sim_fa_params *p, uint64_t *workspaceSize,
                                                          aclOpExecutor **executor)
{
    ascendfa_sim_fa_tiling_in tin;
    ascendfa_sim_fa_tiling_out tout;
    ascendfa_sim_fa_tiling_fn tiling;
    char err[512];
    aclOpExecutor *ex;
    int64_t next;

    g_last_error[0] = '\0';
    if (p == NULL || workspaceSize == NULL || executor == NULL) {
        return fail(ACLNN_ERR_PARAM_NULLPTR, "params, workspaceSize and executor must not be null");
    }
    if (p->abi_version != ASCENDFA_SIM_ABI_VERSION) {
        return fail(ACLNN_ERR_PARAM_INVALID, "simulator ABI version %u is not supported, expected %u",
                    p->abi_version, ASCENDFA_SIM_ABI_VERSION);
    }
    if (p->query == NULL || p->key == NULL || p->value == NULL || p->out == NULL) {
        return fail(ACLNN_ERR_PARAM_NULLPTR, "query, key, value and attentionOut must not be null");
    }
    if (p->causal < 0 || p->causal > 2) {
        return fail(ACLNN_ERR_PARAM_INVALID, "causal must be 0, 1 or 2, got %d", p->causal);
    }
    if (!(p->scale == p->scale) || isinf(p->scale)) {
        return fail(ACLNN_ERR_PARAM_INVALID, "scaleValue must be finite");
    }

    memset(&tin, 0, sizeof(tin));
    memset(&tout, 0, sizeof(tout));
    tin.batch = p->batch;
    tin.heads_q = p->heads_q;
    tin.heads_kv = p->heads_kv;
    tin.seq_q = p->seq_q;
    tin.seq_kv = p->seq_kv;
    tin.head_dim = p->head_dim;
    tin.head_dim_v = p->head_dim_v;
    tin.has_mask = p->atten_mask != NULL;
    tin.causal = p->causal;

    if (check_kernel_bins() != 0) {
        return ACLNN_ERR_INNER;
    }
    tiling = load_tiling(err, sizeof(err));
    if (tiling == NULL) {
        return fail(ACLNN_ERR_INNER_NULLPTR, "%s", err);
    }
    if (tiling(&tin, &tout) != 0) {
        snprintf(g_last_error, sizeof(g_last_error), "EZ9999: Inner Error!\nEZ9999: [PID: %d] FlashAttentionScore "
                 "tiling failed: %s", (int)getpid(), tout.message);
        return ACLNN_ERR_INNER_TILING_ERROR;
    }

    ex = (aclOpExecutor *)calloc(1, sizeof(*ex));
    if (ex == NULL) {
        return fail(ACLNN_ERR_RUNTIME_ERROR, "out of memory");
    }
    next = p->next_tokens;
    if (p->causal == 1 && next > 0) {
        next = 0;
    } else if (p->causal == 2 && next > p->seq_kv - p->seq_q) {
        next = p->seq_kv - p->seq_q;
    }
    ex->args.batch = p->batch;
    ex->args.nq = p->heads_q;
    ex->args.nkv = p->heads_kv;
    ex->args.sq = p->seq_q;
    ex->args.skv = p->seq_kv;
    ex->args.d = p->head_dim;
    ex->args.dv = p->head_dim_v;
    ex->args.scale = (float)p->scale;
    ex->args.pre = p->pre_tokens;
    ex->args.next_tl = next;
    ex->args.block_q = tout.block_q;
    ex->args.block_kv = tout.block_kv;
    ex->args.q = p->query;
    ex->args.k = p->key;
    ex->args.v = p->value;
    ex->args.mask = p->atten_mask;
    ex->args.msb = p->mask_stride_b;
    ex->args.msn = p->mask_stride_n;
    ex->args.mss = p->mask_stride_s;
    ex->args.qlen = p->actual_seq_qlen;
    ex->args.kvlen = p->actual_seq_kvlen;
    ex->args.out = p->out;
    ex->args.smax = p->softmax_max;
    ex->args.ssum = p->softmax_sum;
    ex->kernel = select_kernel(p->head_dim, p->head_dim_v, tout.block_kv);
    ex->threads = thread_count(p->batch * p->heads_q);
    ex->ws_floats = fa_kernel_ws_floats(tout.block_q, tout.block_kv, p->head_dim_v);
    ex->workspace_size = (uint64_t)ex->threads * (uint64_t)ex->ws_floats * sizeof(float);
    *workspaceSize = ex->workspace_size;
    *executor = ex;
    snprintf(g_last_kernel, sizeof(g_last_kernel), "tiling_key=%llu kernel=%s threads=%d",
             (unsigned long long)tout.tiling_key, ex->kernel->name, ex->threads);
    return ACLNN_SUCCESS;
}

typedef struct fa_worker {
    aclOpExecutor *ex;
    float *ws;
    int64_t *next_task;
    int64_t tasks;
} fa_worker;

static void *fa_worker_main(void *arg)
{
    fa_worker *w = (fa_worker *)arg;
    for (;;) {
        int64_t bh = __atomic_fetch_add(w->next_task, 1, __ATOMIC_RELAXED);
        if (bh >= w->tasks) {
            break;
        }
        w->ex->kernel->fn(&w->ex->args, bh, w->ws);
    }
    return NULL;
}

ASCENDFA_API int aclnnFlashAttentionScore(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                          aclrtStream stream)
{
    pthread_t tids[FA_MAX_THREADS];
    fa_worker workers[FA_MAX_THREADS];
    int64_t next_task = 0;
    int started = 0;
    int rc = ACLNN_SUCCESS;
    (void)stream;

    g_last_error[0] = '\0';
    if (executor == NULL) {
        return fail(ACLNN_ERR_PARAM_NULLPTR, "executor must not be null");
    }
    if (workspace == NULL || workspaceSize < executor->workspace_size) {
        rc = fail(ACLNN_ERR_PARAM_INVALID, "workspace of %llu bytes is smaller than the %llu bytes required",
                  (unsigned long long)workspaceSize, (unsigned long long)executor->workspace_size);
        free(executor);
        return rc;
    }
    for (int t = 0; t < executor->threads; t++) {
        workers[t].ex = executor;
        workers[t].ws = (float *)workspace + (int64_t)t * executor->ws_floats;
        workers[t].next_task = &next_task;
        workers[t].tasks = executor->args.batch * executor->args.nq;
    }
    for (int t = 1; t < executor->threads; t++) {
        if (pthread_create(&tids[t], NULL, fa_worker_main, &workers[t]) != 0) {
            break;
        }
        started = t;
    }
    fa_worker_main(&workers[0]);
    for (int t = 1; t <= started; t++) {
        pthread_join(tids[t], NULL);
    }
    free(executor);
    return rc;
}
