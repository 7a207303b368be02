/*
 * SIMULATOR (ascend-fa): FlashAttention forward, blocked online softmax, float32, BNSD.
 *
 * Included once per kernel variant. Before including, define:
 *   FA_KERNEL_NAME  the exported function name
 *   FA_D            head dim the variant is specialised for (0 = read from the arguments)
 *   FA_BC           keys per block the variant is specialised for (0 = read from the arguments)
 * The build generates one translation unit per (FA_D, FA_BC) pair listed in op_kernel/tiling_keys.def,
 * the way the real build compiles one kernel binary per tiling key.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "flash_attention_score_kernel.h"

#ifndef FA_KERNEL_NAME
#error "FA_KERNEL_NAME must be defined"
#endif

#define FA_CAT2(a, b) a##b
#define FA_CAT(a, b) FA_CAT2(a, b)
#define FA_BODY FA_CAT(FA_KERNEL_NAME, _body)

static inline __attribute__((always_inline)) void FA_BODY(const fa_kernel_args *a, int64_t bh, float *ws,
                                                          const int has_mask)
{
#if FA_D > 0
    const int64_t d = FA_D;
    const int64_t dv = FA_D; /* specialised variants require Dv == D */
#else
    const int64_t d = a->d;
    const int64_t dv = a->dv;
#endif
#if FA_BC > 0
    const int64_t bc = FA_BC;
#else
    const int64_t bc = a->block_kv;
#endif
    const int64_t br = a->block_q;
    const int64_t b = bh / a->nq;
    const int64_t n = bh % a->nq;
    const int64_t nk = n / (a->nq / a->nkv);
    const float *q = a->q + (b * a->nq + n) * a->sq * d;
    const float *k = a->k + (b * a->nkv + nk) * a->skv * d;
    const float *v = a->v + (b * a->nkv + nk) * a->skv * dv;
    float *o = a->out + (b * a->nq + n) * a->sq * dv;
    float *smax = a->smax != NULL ? a->smax + (b * a->nq + n) * a->sq : NULL;
    float *ssum = a->ssum != NULL ? a->ssum + (b * a->nq + n) * a->sq : NULL;
    const uint8_t *mask = has_mask ? a->mask + b * a->msb + n * a->msn : NULL;
    int64_t kvlen = a->skv;
    int64_t qlen = a->sq;
    float *m = ws;
    float *l = m + br;
    float *acc = l + br;
    float *p = acc + br * dv;

    if (a->kvlen != NULL) {
        kvlen = a->kvlen[b] < 0 ? 0 : (a->kvlen[b] > a->skv ? a->skv : a->kvlen[b]);
    }
    if (a->qlen != NULL) {
        qlen = a->qlen[b] < 0 ? 0 : (a->qlen[b] > a->sq ? a->sq : a->qlen[b]);
    }

    for (int64_t i0 = 0; i0 < a->sq; i0 += br) {
        const int64_t rows = (a->sq - i0) < br ? (a->sq - i0) : br;
        /* keys any row of this block may see */
        int64_t jlo = i0 - a->pre;
        int64_t jhi = i0 + rows - 1 + a->next_tl + 1;
        if (jlo < 0) {
            jlo = 0;
        }
        if (jhi > kvlen) {
            jhi = kvlen;
        }
        for (int64_t r = 0; r < rows; r++) {
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }
        memset(acc, 0, (size_t)(rows * dv) * sizeof(float));

        for (int64_t j0 = jlo; j0 < jhi; j0 += bc) {
            const int64_t cols = (jhi - j0) < bc ? (jhi - j0) : bc;
            for (int64_t r = 0; r < rows; r++) {
                const int64_t i = i0 + r;
                const float *qi = q + i * d;
                const uint8_t *mrow = has_mask ? mask + i * a->mss : NULL;
                float *acc_r = acc + r * dv;
                int64_t row_lo = i - a->pre;
                int64_t row_hi = i + a->next_tl; /* inclusive */
                float mb = -INFINITY;
                if (i >= qlen) {
                    continue;
                }
                for (int64_t c = 0; c < cols; c++) {
                    const int64_t j = j0 + c;
                    float s;
                    if (j < row_lo || j > row_hi || (has_mask && mrow[j] != 0)) {
                        p[c] = -INFINITY;
                        continue;
                    }
                    {
                        const float *kj = k + j * d;
                        float dot = 0.0f;
                        for (int64_t e = 0; e < d; e++) {
                            dot += qi[e] * kj[e];
                        }
                        s = dot * a->scale;
                    }
                    p[c] = s;
                    if (s > mb) {
                        mb = s;
                    }
                }
                if (mb == -INFINITY) {
                    continue; /* nothing visible in this block */
                }
                {
                    const float m_new = m[r] > mb ? m[r] : mb;
                    const float alpha = (m[r] == -INFINITY) ? 0.0f : expf(m[r] - m_new);
                    float sum = 0.0f;
                    for (int64_t c = 0; c < cols; c++) {
                        const float e = (p[c] == -INFINITY) ? 0.0f : expf(p[c] - m_new);
                        p[c] = e;
                        sum += e;
                    }
                    l[r] = l[r] * alpha + sum;
                    m[r] = m_new;
                    if (alpha != 1.0f) {
                        for (int64_t e = 0; e < dv; e++) {
                            acc_r[e] *= alpha;
                        }
                    }
                    for (int64_t c = 0; c < cols; c++) {
                        const float pc = p[c];
                        const float *vj = v + (j0 + c) * dv;
                        if (pc == 0.0f) {
                            continue;
                        }
                        for (int64_t e = 0; e < dv; e++) {
                            acc_r[e] += pc * vj[e];
                        }
                    }
                }
            }
        }

        for (int64_t r = 0; r < rows; r++) {
            const int64_t i = i0 + r;
            float *oi = o + i * dv;
            const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            for (int64_t e = 0; e < dv; e++) {
                oi[e] = acc[r * dv + e] * inv;
            }
            if (smax != NULL) {
                smax[i] = m[r];
            }
            if (ssum != NULL) {
                ssum[i] = l[r];
            }
        }
    }
}

void FA_KERNEL_NAME(const fa_kernel_args *a, int64_t bh, float *ws)
{
    if (a->mask != NULL) {
        FA_BODY(a, bh, ws, 1);
    } else {
        FA_BODY(a, bh, ws, 0);
    }
}
