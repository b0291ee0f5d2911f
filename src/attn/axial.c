/* axial.c — axial attention (Ho et al. 2019, "Axial Attention in Multidimensional Transformers"):
 * kind "axial".
 *
 * The sequence is read as a (rows, cols) grid, token t at (t / cols, t % cols), T = rows·cols (option
 * `rows`; it must divide T; 0 picks the largest divisor <= √T). Two dense attentions run one after the
 * other with the same q and k:
 *     Y   = softmax_row(scale · Q Kᵀ) V     (each query attends the keys of its own row)
 *     out = softmax_col(scale · Q Kᵀ) Y     (then the keys of its own column, mixing the rows' results)
 * so every output depends on the whole grid after the two stages, at cost T·(rows + cols) scores instead
 * of T². Causal: in raster order, the row stage masks later columns and the column stage later rows; the
 * composition then only reaches tokens at (r' <= r, c' <= c), all earlier than (r, c) — causal, but not
 * every earlier token is reached (the paper's causal Axial Transformer adds a shifted "unmasked" row
 * context that needs its own layers; not here). Padding masks keys >= L in both stages; a query whose row
 * (column) has no visible key gets 0 from that stage.
 *
 * Rows are contiguous blocks and columns are strided views (row stride cols·ld), so every product is a
 * pare_sgemm on q, k, v in place. Cache per (b, h): P_row (rows, cols, cols), P_col (cols, rows, rows) and
 * Y (T, D); slot: dY (T, D) + one (max(rows, cols))² block. Backward differentiates the two stages in
 * reverse: dY = P_colᵀ dO, dS_col = P_col ⊙ (dO Yᵀ − rowsum), dQ += scale dS K, dK += scale dSᵀ Q; then the
 * same for the row stage with dY in place of dO, and dV += P_rowᵀ dY.
 * Deliberately not here: more than two axes, per-axis projections (one q, k, v serves both stages).
 */
#include "attn/attn.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm.h"
#include "kernels/nn_internal.h"

static const pare_opt_spec axial_opts[] = {
    {"rows", PARE_OPT_INT, "0", 0, 1 << 24, NULL,
     "grid rows (must divide T; cols = T / rows); 0 = the largest divisor of T not above sqrt(T)"},
};
static const pare_schema axial_schema = {
    "axial", "axial attention: a row attention then a column attention over a (rows, cols) grid; O(T·(rows+cols))",
    axial_opts, 1};

typedef struct ax_state {
    int64_t rows, cols;
} ax_state;

static pare_status axial_init(pare_attn *a)
{
    int64_t rows = pare_opt_int(&a->opts, "rows");
    const int64_t T = a->T;
    if (rows == 0)
        for (int64_t r = 1; r * r <= T; r++)
            if (T % r == 0) rows = r;
    if (rows > T || T % rows)
        return pare_fail(PARE_EINVAL, "axial: option 'rows' = %lld does not divide T=%lld", (long long)rows,
                         (long long)T);
    ax_state *s = malloc(sizeof *s);
    if (!s) return pare_fail(PARE_ENOMEM, "axial: out of memory");
    s->rows = rows, s->cols = T / rows;
    a->state = s;
    return PARE_OK;
}

static inline int64_t ax_cache_floats(const pare_attn *a)
{
    const ax_state *s = a->state;
    return a->T * (s->cols + s->rows + a->D);
}

/* Mask and softmax the rows of S (n, n): query a at position base + a·step sees key b at base + b·step
 * if that is < L and (not causal or b <= a). A row without visible keys becomes 0. */
static void ax_softmax(float *S, int64_t n, int64_t base, int64_t step, int64_t L, int causal)
{
    int64_t nv = base < L ? (L - base + step - 1) / step : 0; /* visible keys: b < nv */
    if (nv > n) nv = n;
    for (int64_t q = 0; q < n; q++) {
        float *s = S + q * n;
        const int64_t ke = causal && q + 1 < nv ? q + 1 : nv;
        if (ke > 0) nn_softmax(s, s, ke);
        for (int64_t j = ke; j < n; j++) s[j] = 0.0f;
    }
}

/* dS = P ⊙ (dP − rowsum(P ⊙ dP)) in place of dP, (n, n). */
static void ax_dsoftmax(float *dP, const float *P, int64_t n)
{
    for (int64_t q = 0; q < n; q++) {
        float r = 0.0f;
        for (int64_t j = 0; j < n; j++) r += P[q * n + j] * dP[q * n + j];
        for (int64_t j = 0; j < n; j++) dP[q * n + j] = P[q * n + j] * (dP[q * n + j] - r);
    }
}

PARE_HOT static pare_status axial_forward(const pare_attn *a, const pare_attn_args *x)
{
    const ax_state *s = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo, R = s->rows, Cc = s->cols;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for schedule(dynamic, 1) if (BH > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T), off = b * T * ld + h * D;
        const float *q = x->q + off, *k = x->k + off, *v = x->v + off;
        float *P1 = (float *)x->cache + bh * ax_cache_floats(a), *P2 = P1 + T * Cc, *Y = P2 + T * R;
        float *o = x->out + b * T * ldo + h * D;
        for (int64_t r = 0; r < R; r++) { /* row stage: tokens r·cols .. r·cols + cols − 1 */
            float *P = P1 + r * Cc * Cc;
            const int64_t t0 = r * Cc;
            pare_sgemm(0, 1, Cc, Cc, D, scale, q + t0 * ld, ld, k + t0 * ld, ld, 0.0f, P, Cc);
            ax_softmax(P, Cc, t0, 1, L, a->causal);
            pare_sgemm(0, 0, Cc, D, Cc, 1.0f, P, Cc, v + t0 * ld, ld, 0.0f, Y + t0 * D, D);
        }
        for (int64_t c = 0; c < Cc; c++) { /* column stage: tokens c, c + cols, ... (stride cols) */
            float *P = P2 + c * R * R;
            pare_sgemm(0, 1, R, R, D, scale, q + c * ld, ld * Cc, k + c * ld, ld * Cc, 0.0f, P, R);
            ax_softmax(P, R, c, Cc, L, a->causal);
            pare_sgemm(0, 0, R, D, R, 1.0f, P, R, Y + c * D, D * Cc, 0.0f, o + c * ldo, ldo * Cc);
        }
    }
    if (x->pairs) *x->pairs = BH * T * (R + Cc);
    return PARE_OK;
}

PARE_HOT static pare_status axial_backward(const pare_attn *a, const pare_attn_args *x)
{
    const ax_state *s = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo, ldd = x->ldd, R = s->rows,
                  Cc = s->cols, mx = R > Cc ? R : Cc;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t slot = (size_t)(T * D + mx * mx) * sizeof(float);
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, off = b * T * ld + h * D, offd = b * T * ldd + h * D;
        const float *q = x->q + off, *k = x->k + off, *v = x->v + off, *dO = x->dout + b * T * ldo + h * D;
        const float *P1 = (const float *)x->cache + bh * ax_cache_floats(a), *P2 = P1 + T * Cc, *Y = P2 + T * R;
        float *dq = x->dq + offd, *dk = x->dk + offd, *dv = x->dv + offd;
        float *dY = (float *)((char *)x->work + slot * (size_t)omp_get_thread_num()), *dP = dY + T * D;
        for (int64_t c = 0; c < Cc; c++) { /* out = P_col Y */
            const float *P = P2 + c * R * R;
            pare_sgemm(1, 0, R, D, R, 1.0f, P, R, dO + c * ldo, ldo * Cc, 0.0f, dY + c * D, D * Cc); /* dY = Pᵀ dO */
            pare_sgemm(0, 1, R, R, D, 1.0f, dO + c * ldo, ldo * Cc, Y + c * D, D * Cc, 0.0f, dP, R);  /* dP = dO Yᵀ */
            ax_dsoftmax(dP, P, R);
            pare_sgemm(0, 0, R, D, R, scale, dP, R, k + c * ld, ld * Cc, 1.0f, dq + c * ldd, ldd * Cc);
            pare_sgemm(1, 0, R, D, R, scale, dP, R, q + c * ld, ld * Cc, 1.0f, dk + c * ldd, ldd * Cc);
        }
        for (int64_t r = 0; r < R; r++) { /* Y = P_row V */
            const float *P = P1 + r * Cc * Cc;
            const int64_t t0 = r * Cc;
            pare_sgemm(1, 0, Cc, D, Cc, 1.0f, P, Cc, dY + t0 * D, D, 1.0f, dv + t0 * ldd, ldd); /* dV += Pᵀ dY */
            pare_sgemm(0, 1, Cc, Cc, D, 1.0f, dY + t0 * D, D, v + t0 * ld, ld, 0.0f, dP, Cc);   /* dP = dY Vᵀ */
            ax_dsoftmax(dP, P, Cc);
            pare_sgemm(0, 0, Cc, D, Cc, scale, dP, Cc, k + t0 * ld, ld, 1.0f, dq + t0 * ldd, ldd);
            pare_sgemm(1, 0, Cc, D, Cc, scale, dP, Cc, q + t0 * ld, ld, 1.0f, dk + t0 * ldd, ldd);
        }
    }
    return PARE_OK;
}

static void axial_cost(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    const ax_state *s = a->state;
    const int64_t BH = B * a->H, T = a->T, D = a->D, mx = s->rows > s->cols ? s->rows : s->cols;
    c->pairs = BH * T * (s->rows + s->cols);
    c->flops_fwd = c->pairs * (4 * D + 5);
    c->flops_bwd = c->pairs * (8 * D + 4);
    c->cache_bytes = (size_t)(BH * ax_cache_floats(a)) * sizeof(float);
    c->slot_bytes = (size_t)(T * D + mx * mx) * sizeof(float);
}

static void axial_mask(const pare_attn *a, int64_t h, uint8_t *m)
{
    /* the positions an output depends on through both stages: same row then same column → (r' , c') with
     * r' any (causal: <= r) and c' any (causal: <= c); i.e. dense (or the causal quadrant) */
    (void)h;
    const ax_state *s = a->state;
    const int64_t T = a->T;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++)
            m[i * T + j] = !a->causal || (j / s->cols <= i / s->cols && j % s->cols <= i % s->cols);
}

const pare_attn_variant pare_attn_axial = {
    .schema = &axial_schema,
    .can_be_causal = 1,
    .causal_note = "later columns masked in the row stage, later rows in the column stage (reaches (r'<=r, c'<=c))",
    .init = axial_init,
    .forward = axial_forward,
    .backward = axial_backward,
    .cost = axial_cost,
    .mask = axial_mask,
};
