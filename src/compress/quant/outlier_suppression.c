/* outlier_suppression.c — Outlier Suppression (Wei et al. 2022, "Outlier Suppression: Pushing the Limit of
 * Low-bit Transformer Language Models", NeurIPS), preparing a model for pare's static int8 scheme.
 *
 * (a) Gamma Migration (paper §4.1). A LayerNorm computes y = γ ⊙ x̂ + β, x̂ = (x − μ)/σ; the paper finds the
 *     activation outliers concentrated in a few channels of γ. The LayerNorm is made to output the
 *     non-scaled x̃ = x̂ + β/γ (γ_j ← 1, β_j ← β_j/γ_j) and every Linear reading it absorbs γ in its input
 *     columns (W[:, j] ← W[:, j]·γ_j):  W (γ ⊙ x̂ + β) = (W diag γ)(x̂ + β/γ)  — the same function in exact
 *     arithmetic (tested: equal within float rounding). Channels with |γ_j| < 1e-6 keep their γ (β/γ would
 *     blow up). As SmoothQuant's smoothing, only a LayerNorm that Linears alone read can take it (pre-LN
 *     blocks: ln1 → attn.qkv, ln2 → ffn.up); a post-LN block's LayerNorm also feeds the residual stream,
 *     which the paper handles by moving γ into the next block's residual too — not done here (skipped); so is
 *     a LayerNorm one of whose Linears is already quantized or carries a weight transform (its stored form
 *     would not see the new columns).
 *
 * (b) Token-Wise Clipping (paper §4.2): the static activation range of every selected Linear input, found
 *     coarse to fine on calibration data (the migrated model's activations):
 *       coarse: the token-wise maxima m_t = max_j x_tj (and minima for the lower end; symmetric: max_j |x_tj|)
 *               of every calibration token; the clipping range is their α-quantile (lower end: the (1 − α)-
 *               quantile of the minima), α over a grid {1, .9999, .999, .99, .98, .95, .9, .8} (or the given
 *               alpha); the range whose int8 layer output is closest to f32 wins;
 *       fine:   a 1-D search of the winning range's scale f·[l, u], f in [0.5, 1.5] (capped at the observed
 *               extremes), `fine_steps` candidates, the same criterion.
 *     The criterion is the layer's output error ||X̂ Ŵᵀ − X Wᵀ||² on up to `clip_tokens` calibration token
 *     rows (a seeded reservoir sample), X̂ on the candidate's static int8 grid (the kernel's rounding), Ŵ
 *     the int8 weights. Deviation from the paper, said here and in the docs: the paper measures the coarse
 *     stage on the model's final output and learns [l, u] by gradient descent in the fine stage; pare
 *     scores each layer's own output and searches a scale (no training).
 *
 * Then each selected Linear becomes int8 (weights per channel or per tensor, activations static on the
 * chosen range, kernels/gemm_i8.h PARE_ACT_STATIC) — pare's static_int8 with Outlier Suppression's ranges.
 * quantize=false stops after gamma migration.
 *
 * Deliberately not here: the paper's gradient-learned fine stage, migrating γ through a post-LN residual,
 * per-layer bit-widths below 8 (the paper's 6-bit rows), attention's batched products.
 *
 * Entry point: pare_pass_outlier_suppression (pass.h).
 */
#include "quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "graph/exec.h"
#include "kernels/gemm.h"

static const pare_opt_spec os_opts[] = {
    QI_LAYER_OPTS("*.*.*"),
    {"gamma_migration", PARE_OPT_BOOL, "true", 0, 0, NULL, "move LayerNorm γ into the following Linears' weights (the LN outputs x̂ + β/γ)"},
    {"clipping", PARE_OPT_ENUM, "token", 0, 0, "token|minmax", "static range: token-wise clipping (coarse quantile + fine search) or plain min-max"},
    {"alpha", PARE_OPT_FLOAT, "0", 0, 1, NULL, "coarse stage: quantile of the token-wise maxima (0: searched over .8 … 1)"},
    {"fine_steps", PARE_OPT_INT, "40", 0, 10000, NULL, "fine stage: candidates of the range's scale in [0.5, 1.5] (0: coarse only)"},
    {"clip_tokens", PARE_OPT_INT, "1024", 16, 1e7, NULL, "calibration token rows per layer kept to score a range by its output error"},
    {"weights", PARE_OPT_ENUM, "channel", 0, 0, "channel|tensor", "weight scales: one per output channel, or one per tensor"},
    {"act_symmetric", PARE_OPT_BOOL, "true", 0, 0, NULL, "symmetric activations (false: u8 with a zero point)"},
    {"quantize", PARE_OPT_BOOL, "true", 0, 0, NULL, "false: gamma migration only (the f32 function, for checking)"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "which calibration token rows are kept (reservoir sample)"},
    QI_CALIB_OPTS("128"),
};
static const pare_schema os_schema = {
    "outlier_suppression",
    "Outlier Suppression: LayerNorm γ migrated into the next Linears, token-wise clipped static ranges, then static W8A8",
    os_opts, (int)(sizeof os_opts / sizeof os_opts[0])};

/* ---- (a) gamma migration ---- */

/* Every Linear reading LayerNorm ln's output, into idx (capacity m->nnodes); returns the count. */
static int64_t ln_consumers(const pare_model *m, int64_t ln, int64_t *idx)
{
    int64_t k = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR && m->nodes[i].in[0] == m->nodes[ln].out) idx[k++] = i;
    return k;
}

/* γ of LayerNorm ln into its consumers' input columns: γ_j ← 1, β_j ← β_j/γ_j, W[:, j] ← W[:, j]·γ_j. */
static pare_status migrate_gamma(pare_model *m, int64_t ln, const int64_t *cons, int64_t ncons)
{
    pare_param *g = &m->params[m->nodes[ln].param[0]], *b = &m->params[m->nodes[ln].param[1]];
    PARE_TRY(pare_param_make_private(g));
    PARE_TRY(pare_param_make_private(b));
    const int64_t C = g->shape[0];
    for (int64_t c = 0; c < ncons; c++) {
        pare_param *w = qi_weight(m, cons[c]);
        PARE_TRY(pare_param_make_private(w));
        const int64_t N = w->shape[0], K = w->shape[1];
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < K; j++)
                if (fabsf(g->blob->data[j]) >= 1e-6f) w->blob->data[n * K + j] *= g->blob->data[j];
    }
    for (int64_t j = 0; j < C; j++) {
        const float gj = g->blob->data[j];
        if (fabsf(gj) < 1e-6f) continue;
        b->blob->data[j] /= gj;
        g->blob->data[j] = 1.0f;
    }
    return PARE_OK;
}

/* ---- (b) token statistics and a reservoir of token rows per selected Linear input ---- */

typedef struct tok_obs {
    int64_t node, K;
    float *tmax, *tmin; /* (nt) per calibration token: max_j x_tj and min_j x_tj */
    int64_t nt, cap_t;
    float *rows;        /* (kept, K) reservoir sample of token rows */
    int64_t kept, seen;
} tok_obs;

typedef struct tok_ctx {
    tok_obs *o;
    int64_t n, cap_rows;
    pare_rng rng;
} tok_ctx;

static pare_status observe_tokens(void *user, const pare_exec *x, int64_t node)
{
    tok_ctx *c = user;
    tok_obs *o = NULL;
    for (int64_t i = 0; i < c->n && !o; i++)
        if (c->o[i].node == node) o = &c->o[i];
    if (!o) return PARE_OK;
    const pare_node *nd = &x->m->nodes[node];
    const pare_value *v = &x->m->values[nd->in[0]];
    const float *in = x->buf[nd->in[0]];
    const int64_t rows = pare_exec_rows(x, v), K = o->K;
    for (int64_t r = 0; r < rows; r++) {
        if (!pare_calib_row_valid(x, v, r)) continue;
        const float *row = in + r * K;
        float mx = -INFINITY, mn = INFINITY;
        for (int64_t j = 0; j < K; j++) {
            if (!isfinite(row[j]))
                return pare_fail(PARE_ENUMERIC, "outlier_suppression: calibration: the input of %s holds %g (row %lld, "
                                 "feature %lld)", nd->name, (double)row[j], (long long)r, (long long)j);
            mx = fmaxf(mx, row[j]), mn = fminf(mn, row[j]);
        }
        if (o->nt == o->cap_t) {
            int64_t cap = o->cap_t ? 2 * o->cap_t : 4096;
            float *a = realloc(o->tmax, sizeof *a * (size_t)cap), *b = a ? realloc(o->tmin, sizeof *b * (size_t)cap) : NULL;
            if (a) o->tmax = a;
            if (!a || !b) return pare_fail(PARE_ENOMEM, "out of memory (token statistics of %s)", nd->name);
            o->tmin = b, o->cap_t = cap;
        }
        o->tmax[o->nt] = mx, o->tmin[o->nt] = mn, o->nt++;
        /* reservoir: the first cap_rows rows, then row number `seen` replaces a kept one with probability cap/(seen+1) */
        int64_t slot = o->kept < c->cap_rows ? o->kept++ : (int64_t)pare_rng_below(&c->rng, (uint64_t)(o->seen + 1));
        if (slot < c->cap_rows) memcpy(o->rows + slot * K, row, sizeof(float) * (size_t)K);
        o->seen++;
    }
    return PARE_OK;
}

static pare_status collect_tokens(tok_ctx *c, pare_model *m, const pare_dataset *d, int64_t samples, int64_t batch)
{
    if (!d || d->n < 1) return pare_fail(PARE_EINVAL, "outlier_suppression needs calibration examples (give calib=<task>)");
    if (samples > d->n)
        return pare_fail(PARE_EINVAL, "calib_samples=%lld but the calibration set %s has only %lld examples",
                         (long long)samples, d->name, (long long)d->n);
    if (d->vocab > m->vocab)
        return pare_fail(PARE_ESHAPE, "calibration set %s has vocab %d but the model has %lld", d->name, d->vocab,
                         (long long)m->vocab);
    return pare_calib_run(m, d, samples, batch, observe_tokens, c);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted s(n) (nearest rank). */
static float quantile_sorted(const float *s, int64_t n, double q)
{
    int64_t k = (int64_t)ceil(q * (double)n) - 1;
    return s[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/* Output error of a static int8 range [lo, hi]: Σ (X̂ Ŵᵀ − Y)², X̂ (R,K) the rows on the range's grid
 * (the kernel's rounding: code = clamp(nearbyint(x·inv), lo_code, hi_code), x̂ = scale·code), Y (R,N) the
 * f32 outputs; xq (R,K) and yq (R,N) scratch. */
static double range_error(float lo, float hi, int sym, const float *X, const float *Wq, const float *Y, float *xq,
                          float *yq, int64_t R, int64_t N, int64_t K)
{
    const pare_i8_act a = qi_static_act(lo, hi, sym);
    const float inv = 1.0f / a.scale, clo = sym ? -127.0f : (float)-a.zero, chi = sym ? 127.0f : (float)(255 - a.zero);
    for (int64_t i = 0; i < R * K; i++) {
        float c = nearbyintf(X[i] * inv);
        xq[i] = a.scale * (c < clo ? clo : c > chi ? chi : c);
    }
    pare_sgemm(0, 1, R, N, K, 1.0f, xq, K, Wq, K, 0.0f, yq, N);
    double e = 0;
    for (int64_t i = 0; i < R * N; i++) e += ((double)yq[i] - Y[i]) * ((double)yq[i] - Y[i]);
    return e;
}

/* Token-wise clipping of one layer: *lo, *hi the chosen range, *alpha_out the coarse quantile chosen,
 * *f_out the fine stage's scale. */
static pare_status token_clip(float *lo, float *hi, double *alpha_out, double *f_out, tok_obs *o, const pare_param *w,
                              int per_tensor, int sym, double alpha, int64_t fine_steps)
{
    const int64_t N = w->shape[0], K = w->shape[1], R = o->kept, nt = o->nt;
    pare_i8_weight wi;
    PARE_TRY(per_tensor ? pare_i8_weight_quantize_tensor(&wi, w->blob->data, N, K)
                        : pare_i8_weight_quantize(&wi, w->blob->data, N, K));
    float *Wq = malloc(sizeof *Wq * (size_t)(N * K)), *Y = malloc(sizeof *Y * (size_t)(R * N));
    float *xq = malloc(sizeof *xq * (size_t)(R * K)), *yq = malloc(sizeof *yq * (size_t)(R * N));
    pare_status st = PARE_OK;
    if (!Wq || !Y || !xq || !yq) st = pare_fail(PARE_ENOMEM, "out of memory (token-wise clipping)");
    if (st == PARE_OK) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) Wq[n * K + k] = (float)wi.q[n * K + k] * wi.scale[n];
        pare_sgemm(0, 1, R, N, K, 1.0f, o->rows, K, w->blob->data, K, 0.0f, Y, N); /* the f32 outputs */
        /* token-wise maxima (symmetric: max |x_t|) and minima, sorted */
        if (sym)
            for (int64_t t = 0; t < nt; t++) o->tmax[t] = fmaxf(o->tmax[t], -o->tmin[t]);
        qsort(o->tmax, (size_t)nt, sizeof *o->tmax, cmp_float);
        qsort(o->tmin, (size_t)nt, sizeof *o->tmin, cmp_float);
        static const double grid[] = {1.0, 0.9999, 0.999, 0.99, 0.98, 0.95, 0.9, 0.8};
        const int ng = alpha > 0 ? 1 : (int)(sizeof grid / sizeof grid[0]);
        double best = INFINITY;
        float bl = 0, bh = 0;
        for (int g = 0; g < ng; g++) { /* coarse */
            const double a = alpha > 0 ? alpha : grid[g];
            float u = quantile_sorted(o->tmax, nt, a), l = sym ? -u : quantile_sorted(o->tmin, nt, 1.0 - a);
            double e = range_error(l, u, sym, o->rows, Wq, Y, xq, yq, R, N, K);
            if (e < best) best = e, bl = l, bh = u, *alpha_out = a;
        }
        const float xmax = o->tmax[nt - 1], xmin = sym ? -xmax : o->tmin[0];
        float fl = bl, fh = bh;
        *f_out = 1.0;
        for (int64_t s = 0; s < fine_steps; s++) { /* fine: f in [0.5, 1.5], capped at the observed extremes */
            const double f = fine_steps > 1 ? 0.5 + (double)s / (double)(fine_steps - 1) : 1.0;
            float l = fmaxf((float)(bl * f), xmin), u = fminf((float)(bh * f), xmax);
            if (sym) l = -u;
            double e = range_error(l, u, sym, o->rows, Wq, Y, xq, yq, R, N, K);
            if (e < best) best = e, fl = l, fh = u, *f_out = f;
        }
        *lo = fl, *hi = fh;
    }
    pare_i8_weight_free(&wi);
    free(Wq), free(Y), free(xq), free(yq);
    return st;
}

static pare_status os_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    pare_status st = PARE_OK;
    int64_t *lns = malloc(sizeof *lns * (size_t)(m->nnodes + 1)), nln = 0;
    int64_t *cons = malloc(sizeof *cons * (size_t)(m->nnodes + 1));
    if (!lns || !cons) st = pare_fail(PARE_ENOMEM, "out of memory");
    /* (a) the LayerNorms in front of selected Linears, each once */
    for (int64_t i = 0; st == PARE_OK && pare_opt_bool(o, "gamma_migration") && i < n; i++) {
        int64_t ln = qi_ln_before(m, idx[i]), k;
        if (ln < 0) continue;
        for (k = 0; k < nln && lns[k] != ln; k++) {}
        if (k == nln) lns[nln++] = ln;
    }
    for (int64_t l = 0; st == PARE_OK && l < nln; l++) {
        const int64_t nc = ln_consumers(m, lns[l], cons);
        int plain = 1; /* a consumer already quantized (or with a weight transform) would keep its old weights */
        for (int64_t k = 0; k < nc; k++)
            plain &= m->params[m->nodes[cons[k]].param[0]].format == PARE_FMT_F32 && !m->nodes[cons[k]].ntf;
        if (plain) st = migrate_gamma(m, lns[l], cons, nc);
    }
    free(lns), free(cons);
    if (st != PARE_OK || !pare_opt_bool(o, "quantize") || n == 0) {
        free(idx);
        return st;
    }
    /* (b) the static ranges on the migrated model */
    const int sym = pare_opt_bool(o, "act_symmetric"), per_tensor = !strcmp(pare_opt_str(o, "weights"), "tensor");
    const int token = !strcmp(pare_opt_str(o, "clipping"), "token");
    tok_ctx c;
    memset(&c, 0, sizeof c);
    c.o = calloc((size_t)n, sizeof(tok_obs)), c.n = n, c.cap_rows = pare_opt_int(o, "clip_tokens");
    pare_rng_seed(&c.rng, (uint64_t)pare_opt_num(o, "seed"));
    if (!c.o) st = pare_fail(PARE_ENOMEM, "out of memory");
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        c.o[i].node = idx[i];
        c.o[i].K = qi_weight(m, idx[i])->shape[1];
        c.o[i].rows = malloc(sizeof(float) * (size_t)(c.cap_rows * c.o[i].K));
        if (!c.o[i].rows) st = pare_fail(PARE_ENOMEM, "out of memory (%lld token rows of %s)", (long long)c.cap_rows,
                                         m->nodes[idx[i]].name);
    }
    if (st == PARE_OK) st = collect_tokens(&c, m, ctx->calib, pare_opt_int(o, "calib_samples"), pare_opt_int(o, "calib_batch"));
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        tok_obs *t = &c.o[i];
        if (t->nt == 0) {
            st = pare_fail(PARE_EINVAL, "outlier_suppression: calibration: %s saw no valid rows", m->nodes[idx[i]].name);
            break;
        }
        float lo, hi;
        double a = 1, f = 1;
        char method[96];
        if (token) {
            st = token_clip(&lo, &hi, &a, &f, t, qi_weight(m, idx[i]), per_tensor, sym, pare_opt_num(o, "alpha"),
                            pare_opt_int(o, "fine_steps"));
            if (st != PARE_OK) break;
            snprintf(method, sizeof method, "outlier_suppression token [%.4g, %.4g] alpha=%g f=%.3f", (double)lo,
                     (double)hi, a, f);
        } else {
            lo = hi = 0;
            for (int64_t r = 0; r < t->nt; r++) lo = fminf(lo, t->tmin[r]), hi = fmaxf(hi, t->tmax[r]);
            if (sym) hi = fmaxf(hi, -lo), lo = -hi;
            snprintf(method, sizeof method, "outlier_suppression minmax [%.4g, %.4g]", (double)lo, (double)hi);
        }
        pare_i8_act act = qi_static_act(lo, hi, sym);
        st = qi_set_i8(m, idx[i], per_tensor, &act, method);
    }
    for (int64_t i = 0; c.o && i < n; i++) free(c.o[i].tmax), free(c.o[i].tmin), free(c.o[i].rows);
    free(c.o), free(idx);
    return st;
}
const pare_pass pare_pass_outlier_suppression = {&os_schema, os_apply, 0};
