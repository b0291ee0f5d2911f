/* fuse_ops.c — kernels of the unfused graph's attention ops and of the fused ops (fuse_ops.h).
 *
 * The batched products run pare_sgemm per (b,h) pair on strided views, OpenMP over the pairs (src/attn/full.c
 * does the same); every other kernel is one pass over rows. Reductions run in a fixed order per row, so no
 * result depends on the thread count. The masked softmax and the mask follow nn_attention.c's definition
 * (visible keys j < L_b, and j <= i when causal); masked probabilities are exactly 0.
 *
 * Deliberately not here: a flash-style single kernel (that is src/attn/flash.c behind the ATTENTION op),
 * int8 or bf16 forms.
 */
#include "kernels/fuse_ops.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm.h"
#include "kernels/nn.h"
#include "kernels/nn_internal.h"

#define PAR_ELEMS 65536 /* below this, a pass is not worth waking the thread team */

const char *pare_epilogue_name(int e)
{
    static const char *const names[] = {"none", "gelu", "gelu_erf", "relu"};
    _Static_assert(sizeof names / sizeof names[0] == PARE_EPILOGUE_COUNT, "epilogue names out of date");
    return e >= 0 && e < PARE_EPILOGUE_COUNT ? names[e] : "?";
}

pare_bhtd pare_bhtd_heads(float *p, int64_t H, int64_t T, int64_t D) { return (pare_bhtd){p, H * T * D, T * D, D}; }
pare_bhtd pare_bhtd_tokens(float *p, int64_t T, int64_t ld, int64_t D) { return (pare_bhtd){p, T * ld, D, ld}; }

static float *AT(pare_bhtd v, int64_t b, int64_t h) { return v.p + b * v.sb + h * v.sh; }

/* ---- split / merge: copies between token-major and head-major ---- */

void pare_head_split_forward(float *out, const float *x, int64_t ldx, int64_t B, int64_t T, int64_t H, int64_t D)
{
#pragma omp parallel for collapse(2) schedule(static) if (B * T * H * D > PAR_ELEMS)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++)
                memcpy(out + ((b * H + h) * T + t) * D, x + (b * T + t) * ldx + h * D, sizeof(float) * (size_t)D);
}

void pare_head_split_backward(float *dx, const float *dout, int64_t ldx, int64_t B, int64_t T, int64_t H, int64_t D)
{
#pragma omp parallel for collapse(2) schedule(static) if (B * T * H * D > PAR_ELEMS)
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++) {
                float *d = dx + (b * T + t) * ldx + h * D;
                const float *g = dout + ((b * H + h) * T + t) * D;
#pragma omp simd
                for (int64_t j = 0; j < D; j++) d[j] += g[j];
            }
}

void pare_head_merge_forward(float *out, const float *x, int64_t B, int64_t T, int64_t H, int64_t D)
{
#pragma omp parallel for collapse(2) schedule(static) if (B * T * H * D > PAR_ELEMS)
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++)
                memcpy(out + (b * T + t) * H * D + h * D, x + ((b * H + h) * T + t) * D, sizeof(float) * (size_t)D);
}

void pare_head_merge_backward(float *dx, const float *dout, int64_t B, int64_t T, int64_t H, int64_t D)
{
#pragma omp parallel for collapse(2) schedule(static) if (B * T * H * D > PAR_ELEMS)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++) {
                float *d = dx + ((b * H + h) * T + t) * D;
                const float *g = dout + (b * T + t) * H * D + h * D;
#pragma omp simd
                for (int64_t j = 0; j < D; j++) d[j] += g[j];
            }
}

/* ---- batched products ---- */

void pare_bmm_qk_forward(float *S, pare_bhtd q, pare_bhtd k, int64_t B, int64_t H, int64_t T, int64_t D)
{
    const int64_t BH = B * H;
#pragma omp parallel for schedule(dynamic, 1) if (BH > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H;
        pare_sgemm(0, 1, T, T, D, 1.0f, AT(q, b, h), q.st, AT(k, b, h), k.st, 0.0f, S + bh * T * T, T);
    }
}

void pare_bmm_qk_ref(float *S, pare_bhtd q, pare_bhtd k, int64_t B, int64_t H, int64_t T, int64_t D)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++)
                for (int64_t j = 0; j < T; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++) s += (double)AT(q, b, h)[i * q.st + d] * AT(k, b, h)[j * k.st + d];
                    S[((b * H + h) * T + i) * T + j] = (float)s;
                }
}

void pare_bmm_qk_backward(pare_bhtd dq, pare_bhtd dk, const float *dS, pare_bhtd q, pare_bhtd k, int64_t B, int64_t H,
                          int64_t T, int64_t D)
{
    const int64_t BH = B * H;
#pragma omp parallel for schedule(dynamic, 1) if (BH > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H;
        const float *g = dS + bh * T * T;
        /* S = Q·Kᵀ: dQ += dS·K, dK += dSᵀ·Q */
        if (dq.p) pare_sgemm(0, 0, T, D, T, 1.0f, g, T, AT(k, b, h), k.st, 1.0f, AT(dq, b, h), dq.st);
        if (dk.p) pare_sgemm(1, 0, T, D, T, 1.0f, g, T, AT(q, b, h), q.st, 1.0f, AT(dk, b, h), dk.st);
    }
}

void pare_bmm_pv_forward(pare_bhtd o, const float *P, pare_bhtd v, int64_t B, int64_t H, int64_t T, int64_t D)
{
    const int64_t BH = B * H;
#pragma omp parallel for schedule(dynamic, 1) if (BH > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H;
        pare_sgemm(0, 0, T, D, T, 1.0f, P + bh * T * T, T, AT(v, b, h), v.st, 0.0f, AT(o, b, h), o.st);
    }
}

void pare_bmm_pv_ref(pare_bhtd o, const float *P, pare_bhtd v, int64_t B, int64_t H, int64_t T, int64_t D)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++)
                for (int64_t d = 0; d < D; d++) {
                    double s = 0;
                    for (int64_t j = 0; j < T; j++) s += (double)P[((b * H + h) * T + i) * T + j] * AT(v, b, h)[j * v.st + d];
                    AT(o, b, h)[i * o.st + d] = (float)s;
                }
}

void pare_bmm_pv_backward(float *dP, pare_bhtd dv, pare_bhtd dout, const float *P, pare_bhtd v, int64_t B, int64_t H,
                          int64_t T, int64_t D)
{
    const int64_t BH = B * H;
#pragma omp parallel for schedule(dynamic, 1) if (BH > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H;
        /* O = P·V: dP += dO·Vᵀ, dV += Pᵀ·dO */
        if (dP) pare_sgemm(0, 1, T, T, D, 1.0f, AT(dout, b, h), dout.st, AT(v, b, h), v.st, 1.0f, dP + bh * T * T, T);
        if (dv.p) pare_sgemm(1, 0, T, D, T, 1.0f, P + bh * T * T, T, AT(dout, b, h), dout.st, 1.0f, AT(dv, b, h), dv.st);
    }
}

/* ---- mask, scale, softmax ---- */

/* Keys visible to query i of a sequence of length L: j < kend(i). */
static int64_t kend(int64_t i, int64_t L, int causal) { return causal && i + 1 < L ? i + 1 : L; }
static int64_t seq_len(const int32_t *lengths, int64_t b, int64_t T)
{
    if (!lengths) return T;
    int64_t L = lengths[b];
    return L < 0 ? 0 : L > T ? T : L;
}

void pare_mask_add_forward(float *out, const float *S, const int32_t *lengths, int causal, int64_t B, int64_t H,
                           int64_t T)
{
#pragma omp parallel for collapse(2) schedule(static) if (B * H * T * T > PAR_ELEMS)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = seq_len(lengths, b, T);
            for (int64_t i = 0; i < T; i++) {
                const int64_t r = ((b * H + h) * T + i) * T, ke = kend(i, L, causal);
                for (int64_t j = 0; j < T; j++) out[r + j] = S[r + j] + (j < ke ? 0.0f : -FLT_MAX);
            }
        }
}

void pare_div_forward(float *out, const float *x, float s, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_ELEMS)
    for (int64_t i = 0; i < n; i++) out[i] = x[i] / s;
}

void pare_div_backward(float *dx, const float *dout, float s, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_ELEMS)
    for (int64_t i = 0; i < n; i++) dx[i] += dout[i] / s;
}

PARE_HOT void pare_masked_softmax_forward(float *P, const float *S, float s, const int32_t *lengths, int causal, int64_t B,
                                 int64_t H, int64_t T)
{
#pragma omp parallel for collapse(2) schedule(static) if (B * H * T * T > PAR_ELEMS)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = seq_len(lengths, b, T);
            for (int64_t i = 0; i < T; i++) {
                const int64_t r = ((b * H + h) * T + i) * T, ke = kend(i, L, causal);
                float *p = P + r;
                const float *x = S + r;
                if (ke > 0) {
                    /* max_j (x_j / s) = (max_j x_j) / s exactly: division by s > 0 rounds monotonically */
                    const float mx = nn_rowmax(x, ke) / s;
                    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                    for (int64_t j = 0; j < ke; j++) {
                        p[j] = nn_expf(x[j] / s - mx);
                        sum += p[j];
                    }
                    const float inv = 1.0f / sum;
#pragma omp simd
                    for (int64_t j = 0; j < ke; j++) p[j] *= inv;
                }
                for (int64_t j = ke; j < T; j++) p[j] = 0.0f;
            }
        }
}

PARE_HOT void pare_masked_softmax_backward(float *dS, const float *P, const float *dP, float s, int64_t B, int64_t H, int64_t T)
{
    const int64_t R = B * H * T;
#pragma omp parallel for schedule(static) if (R * T > PAR_ELEMS)
    for (int64_t r = 0; r < R; r++) {
        const float *p = P + r * T, *g = dP + r * T;
        float *d = dS + r * T, dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < T; j++) dot += p[j] * g[j];
#pragma omp simd
        for (int64_t j = 0; j < T; j++) d[j] += p[j] * (g[j] - dot) / s;
    }
}

/* ---- residual add + LayerNorm ---- */

/* PARE_HOT (target clones) as pare_layernorm_forward_eps: the same vector width, so the same reduction order
 * and the same bits as add then layernorm */
PARE_HOT void pare_add_layernorm_forward(float *out, float *mean, float *rstd, const float *a, const float *b,
                                         const float *weight, const float *bias, int64_t M, int64_t C, float eps)
{
#pragma omp parallel for schedule(static)
    for (int64_t m = 0; m < M; m++) {
        const float *x = a + m * C, *y = b + m * C;
        float *o = out + m * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] = x[c] + y[c]; /* the sum, in the output row (in cache) until normalised */
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < C; c++) s += o[c];
        /* the same two passes, in the same order, as pare_layernorm_forward_eps on the sum */
        float mu = s / (float)C, v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int64_t c = 0; c < C; c++) v += (o[c] - mu) * (o[c] - mu);
        float rs = 1.0f / sqrtf(v / (float)C + eps);
#pragma omp simd
        for (int64_t c = 0; c < C; c++) o[c] = (o[c] - mu) * rs * weight[c] + bias[c];
        if (mean) mean[m] = mu;
        if (rstd) rstd[m] = rs;
    }
}

PARE_HOT void pare_add_layernorm_backward(float *da, float *db, float *dweight, float *dbias, const float *dout, const float *a,
                                 const float *b, const float *weight, const float *mean, const float *rstd, int64_t M,
                                 int64_t C)
{
    if (da || db) {
#pragma omp parallel for schedule(static)
        for (int64_t m = 0; m < M; m++) {
            const float *x = a + m * C, *y = b + m * C, *g = dout + m * C;
            const float mu = mean[m], rs = rstd[m];
            float sd = 0.0f, sdn = 0.0f;
#pragma omp simd reduction(+ : sd, sdn)
            for (int64_t c = 0; c < C; c++) {
                float dn = weight[c] * g[c];
                sd += dn;
                sdn += dn * (x[c] + y[c] - mu) * rs;
            }
            sd /= (float)C;
            sdn /= (float)C;
            /* out = LN(s), s = a + b: ds as pare_layernorm_backward, then da += ds, db += ds */
            for (int64_t c = 0; c < C; c++) {
                float norm = (x[c] + y[c] - mu) * rs, ds = rs * (weight[c] * g[c] - sd - norm * sdn);
                if (da) da[m * C + c] += ds;
                if (db) db[m * C + c] += ds;
            }
        }
    }
    if (dweight || dbias) {
        /* one column slice per thread, every column summing its rows in order (pare_layernorm_backward's
         * scheme): the bits do not depend on the thread count */
        const int64_t nt = omp_get_max_threads(), width = ((C + nt - 1) / nt + 15) / 16 * 16;
        const int64_t nchunk = (C + width - 1) / width;
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < nchunk; k++) {
            const int64_t c0 = k * width, c1 = c0 + width < C ? c0 + width : C;
            for (int64_t m = 0; m < M; m++) {
                const float *x = a + m * C, *y = b + m * C, *g = dout + m * C, mu = mean[m], rs = rstd[m];
                if (dweight) {
#pragma omp simd
                    for (int64_t c = c0; c < c1; c++) dweight[c] += g[c] * (x[c] + y[c] - mu) * rs;
                }
                if (dbias) {
#pragma omp simd
                    for (int64_t c = c0; c < c1; c++) dbias[c] += g[c];
                }
            }
        }
    }
}

/* ---- Linear epilogues ---- */

void pare_epilogue_forward(float *y, const float *z, int epilogue, int64_t n)
{
    switch (epilogue) {
    case PARE_EPILOGUE_GELU: pare_gelu_forward(y, z, n); break;
    case PARE_EPILOGUE_GELU_ERF: pare_gelu_erf_forward(y, z, n); break;
    case PARE_EPILOGUE_RELU: pare_relu_forward(y, z, n); break;
    default:
        if (y != z) memcpy(y, z, sizeof(float) * (size_t)n);
        break;
    }
}

void pare_epilogue_backward(float *dy, const float *z, int epilogue, int64_t n)
{
    if (epilogue <= PARE_EPILOGUE_NONE || epilogue >= PARE_EPILOGUE_COUNT) return;
    /* nn.h's backward adds act'(z)·dy into a gradient: run it into a zeroed chunk, copy the chunk back */
    enum { CHUNK = 4096 };
    const int64_t nchunk = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > PAR_ELEMS)
    for (int64_t k = 0; k < nchunk; k++) {
        float d[CHUNK] = {0};
        const int64_t i0 = k * CHUNK, len = i0 + CHUNK < n ? CHUNK : n - i0;
        switch (epilogue) {
        case PARE_EPILOGUE_GELU: pare_gelu_backward(d, z + i0, dy + i0, len); break;
        case PARE_EPILOGUE_GELU_ERF: pare_gelu_erf_backward(d, z + i0, dy + i0, len); break;
        default: pare_relu_backward(d, z + i0, dy + i0, len); break;
        }
        memcpy(dy + i0, d, sizeof(float) * (size_t)len);
    }
}
