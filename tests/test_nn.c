/* test_nn.c — the f32 layer kernels of kernels/nn.h against naive references and finite differences.
 *
 * For every op: the forward against a plain double-precision reference written here (attention — the
 * "full" variant of attn/full.c, the one dense implementation — also against pare_attention_forward_ref), and its backward against central differences of the scalar
 * loss L = Σ out · R (R fixed and random) evaluated by that double reference, so the check is limited
 * by the f32 kernel, not by the differencing. Attention is also differenced through the fast f32
 * kernel itself. Plus: backward adds, thread-count invariance, masking, ignored targets, dropout
 * statistics.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/rng.h"
#include "kernels/nn.h"
#include "tap.h"

static pare_rng g_rng;

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}
static float *zeros(int64_t n) { return xcalloc((size_t)n, sizeof(float)); }
static float *randn(int64_t n, float s)
{
    float *x = zeros(n);
    for (int64_t i = 0; i < n; i++) x[i] = s * (float)pare_rng_normal(&g_rng);
    return x;
}
static double *to_d(const float *x, int64_t n)
{
    double *d = xcalloc((size_t)n, sizeof(double));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static float *to_f(const double *x, int64_t n)
{
    float *f = zeros(n);
    for (int64_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}
static double dot_d(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static double dot_fd(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}
static int all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ---- generic finite-difference check ----
 * x: the double input the loss reads (perturbed in place); g: analytic f32 gradient of the same
 * coordinates. idx: the coordinates to check (NULL = all n). */
typedef double (*loss_fn)(void *ctx);

static void gradcheck(const char *what, loss_fn f, void *ctx, double *x, const float *g, const int64_t *idx,
                      int64_t n, double atol, double rtol)
{
    float *num = zeros(n), *ana = zeros(n);
    for (int64_t s = 0; s < n; s++) {
        int64_t i = idx ? idx[s] : s;
        double x0 = x[i], h = 1e-5 * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h;
        double lp = f(ctx);
        x[i] = x0 - h;
        double lm = f(ctx);
        x[i] = x0;
        num[s] = (float)((lp - lm) / (2 * h));
        ana[s] = g[i];
    }
    is_close_arr(ana, num, (long)n, atol, rtol, what);
    free(num);
    free(ana);
}

/* A random sample of k coordinates of [0, n) (all of them if k >= n). Returns the count. */
static int64_t sample_idx(int64_t *idx, int64_t n, int64_t k)
{
    if (k >= n) {
        for (int64_t i = 0; i < n; i++) idx[i] = i;
        return n;
    }
    for (int64_t s = 0; s < k; s++) idx[s] = (int64_t)pare_rng_below(&g_rng, (uint64_t)n);
    return k;
}

/* ======================= embedding ======================= */

typedef struct {
    double *table, *R;
    const int32_t *ids;
    int64_t M, C;
} emb_ctx;

static double emb_loss(void *p)
{
    emb_ctx *c = p;
    double L = 0;
    for (int64_t m = 0; m < c->M; m++)
        for (int64_t j = 0; j < c->C; j++) L += c->table[c->ids[m] * c->C + j] * c->R[m * c->C + j];
    return L;
}

static void test_embedding(void)
{
    const int64_t V = 11, M = 37, C = 130; /* C spans several column slices of the backward */
    int32_t ids[37];
    for (int64_t m = 0; m < M; m++) ids[m] = (int32_t)pare_rng_below(&g_rng, 5); /* many repeats */
    ids[0] = (int32_t)(V - 1);
    float *table = randn(V * C, 1), *out = zeros(M * C), *R = randn(M * C, 1), *dt = zeros(V * C);
    pare_embedding_forward(out, ids, table, M, C);
    int exact = 1;
    for (int64_t m = 0; m < M; m++)
        exact &= memcmp(out + m * C, table + ids[m] * C, (size_t)C * sizeof(float)) == 0;
    ok(exact, "embedding forward copies table rows");
    pare_embedding_backward(dt, R, ids, M, C);
    emb_ctx ctx = {to_d(table, V * C), to_d(R, M * C), ids, M, C};
    gradcheck("embedding backward: dtable by finite differences (repeated ids)", emb_loss, &ctx, ctx.table, dt,
              NULL, V * C, 1e-5, 1e-5);
    free(ctx.table), free(ctx.R), free(table), free(out), free(R), free(dt);
}

/* ======================= positions ======================= */

typedef struct {
    double *inp, *pos, *R;
    int64_t B, T, C;
} pos_ctx;

static double pos_loss(void *p)
{
    pos_ctx *c = p;
    double L = 0;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t t = 0; t < c->T; t++)
            for (int64_t j = 0; j < c->C; j++) {
                int64_t i = (b * c->T + t) * c->C + j;
                L += (c->inp[i] + c->pos[t * c->C + j]) * c->R[i];
            }
    return L;
}

static void test_posadd(void)
{
    const int64_t B = 3, T = 5, C = 7, Tpos = 9; /* pos has more rows than T */
    float *inp = randn(B * T * C, 1), *pos = randn(Tpos * C, 1), *out = zeros(B * T * C), *R = randn(B * T * C, 1);
    float *dinp = zeros(B * T * C), *dpos = zeros(Tpos * C);
    pare_posadd_forward(out, inp, pos, B, T, C);
    float *want = zeros(B * T * C);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < C; j++) want[(b * T + t) * C + j] = inp[(b * T + t) * C + j] + pos[t * C + j];
    is_close_arr(out, want, (long)(B * T * C), 0, 0, "posadd forward");
    pare_posadd_backward(dinp, dpos, R, B, T, C);
    pos_ctx ctx = {to_d(inp, B * T * C), to_d(pos, Tpos * C), to_d(R, B * T * C), B, T, C};
    gradcheck("posadd backward: dinp by finite differences", pos_loss, &ctx, ctx.inp, dinp, NULL, B * T * C, 1e-5, 1e-5);
    gradcheck("posadd backward: dpos by finite differences (rows >= T get 0)", pos_loss, &ctx, ctx.pos, dpos, NULL,
              Tpos * C, 1e-5, 1e-5);
    float *dpos2 = zeros(Tpos * C);
    pare_posadd_backward(NULL, dpos2, R, B, T, C);
    is_close_arr(dpos2, dpos, (long)(Tpos * C), 0, 0, "posadd backward with dinp = NULL");
    free(ctx.inp), free(ctx.pos), free(ctx.R);
    free(inp), free(pos), free(out), free(R), free(dinp), free(dpos), free(want), free(dpos2);
}

static void test_sinusoid(void)
{
    int64_t Cs[2] = {16, 7}, T = 50;
    for (int k = 0; k < 2; k++) {
        int64_t C = Cs[k];
        float *pos = zeros(T * C), *want = zeros(T * C);
        pare_sinusoid_table(pos, T, C);
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < C; j++) {
                double a = t / pow(10000.0, (double)(j - j % 2) / (double)C);
                want[t * C + j] = (float)(j % 2 ? cos(a) : sin(a));
            }
        char what[96];
        snprintf(what, sizeof what, "sinusoid table T=%lld C=%lld vs formula", (long long)T, (long long)C);
        is_close_arr(pos, want, (long)(T * C), 1e-6, 1e-6, what);
        ok(pos[0] == 0 && pos[1] == 1 && pos[2] == 0 && pos[3] == 1, "sinusoid row 0 is (0, 1, 0, 1, ...)");
        free(pos), free(want);
    }
}

/* ======================= LayerNorm ======================= */

typedef struct {
    double *inp, *w, *b, *R;
    int64_t M, C;
} ln_ctx;

static void ref_layernorm(double *out, double *mean, double *rstd, const double *x, const double *w, const double *b,
                          int64_t M, int64_t C)
{
    for (int64_t m = 0; m < M; m++) {
        double mu = 0, v = 0;
        for (int64_t j = 0; j < C; j++) mu += x[m * C + j];
        mu /= C;
        for (int64_t j = 0; j < C; j++) v += (x[m * C + j] - mu) * (x[m * C + j] - mu);
        v /= C; /* biased */
        double rs = 1 / sqrt(v + 1e-5);
        for (int64_t j = 0; j < C; j++) out[m * C + j] = (x[m * C + j] - mu) * rs * w[j] + b[j];
        if (mean) mean[m] = mu;
        if (rstd) rstd[m] = rs;
    }
}

static double ln_loss(void *p)
{
    ln_ctx *c = p;
    double *out = xcalloc((size_t)(c->M * c->C), sizeof(double));
    ref_layernorm(out, NULL, NULL, c->inp, c->w, c->b, c->M, c->C);
    double L = dot_d(out, c->R, c->M * c->C);
    free(out);
    return L;
}

static void test_layernorm(void)
{
    const int64_t M = 6, C = 70; /* C spans two column slices of the weight gradient */
    float *inp = randn(M * C, 1), *w = randn(C, 1), *b = randn(C, 1), *R = randn(M * C, 1);
    for (int64_t j = 0; j < C; j++) inp[2 * C + j] += 30; /* a row with a large mean */
    for (int64_t j = 0; j < C; j++) inp[3 * C + j] *= 0.01f; /* a row with a tiny variance (eps matters) */
    float *out = zeros(M * C), *mean = zeros(M), *rstd = zeros(M);
    pare_layernorm_forward(out, mean, rstd, inp, w, b, M, C);
    ln_ctx ctx = {to_d(inp, M * C), to_d(w, C), to_d(b, C), to_d(R, M * C), M, C};
    double *od = xcalloc((size_t)(M * C), sizeof(double)), md[6], rd[6];
    ref_layernorm(od, md, rd, ctx.inp, ctx.w, ctx.b, M, C);
    float *of = to_f(od, M * C), *mf = to_f(md, M), *rf = to_f(rd, M);
    is_close_arr(out, of, (long)(M * C), 2e-5, 2e-5, "layernorm forward vs double reference");
    is_close_arr(mean, mf, (long)M, 1e-5, 1e-6, "layernorm mean cache");
    is_close_arr(rstd, rf, (long)M, 0, 2e-5, "layernorm rstd cache (biased variance, eps 1e-5)");

    float *dinp = zeros(M * C), *dw = zeros(C), *db = zeros(C);
    pare_layernorm_backward(dinp, dw, db, R, inp, w, mean, rstd, M, C);
    gradcheck("layernorm backward: dinp by finite differences", ln_loss, &ctx, ctx.inp, dinp, NULL, M * C, 1e-3, 1e-3);
    gradcheck("layernorm backward: dweight by finite differences", ln_loss, &ctx, ctx.w, dw, NULL, C, 1e-4, 1e-4);
    gradcheck("layernorm backward: dbias by finite differences", ln_loss, &ctx, ctx.b, db, NULL, C, 1e-4, 1e-4);

    /* backward adds: a second call doubles every gradient */
    float *dinp2 = zeros(M * C), *dw2 = zeros(C), *db2 = zeros(C);
    memcpy(dinp2, dinp, sizeof(float) * (size_t)(M * C)), memcpy(dw2, dw, sizeof(float) * (size_t)C),
        memcpy(db2, db, sizeof(float) * (size_t)C);
    pare_layernorm_backward(dinp2, dw2, db2, R, inp, w, mean, rstd, M, C);
    for (int64_t i = 0; i < M * C; i++) dinp[i] *= 2;
    for (int64_t i = 0; i < C; i++) dw[i] *= 2, db[i] *= 2;
    is_close_arr(dinp2, dinp, (long)(M * C), 0, 1e-6, "layernorm backward adds into dinp (twice = double)");
    is_close_arr(dw2, dw, (long)C, 0, 1e-6, "layernorm backward adds into dweight");
    is_close_arr(db2, db, (long)C, 0, 1e-6, "layernorm backward adds into dbias");

    /* NULL caches in forward and NULL gradients in backward */
    float *out2 = zeros(M * C), *dw3 = zeros(C);
    pare_layernorm_forward(out2, NULL, NULL, inp, w, b, M, C);
    ok(memcmp(out2, out, sizeof(float) * (size_t)(M * C)) == 0, "layernorm forward without caches");
    pare_layernorm_backward(NULL, dw3, NULL, R, inp, w, mean, rstd, M, C);
    for (int64_t i = 0; i < C; i++) dw3[i] *= 2;
    is_close_arr(dw3, dw, (long)C, 0, 0, "layernorm backward with dinp = dbias = NULL");

    /* bit-identical for any thread count (the weight sums are sliced by the thread count) */
    {
        const int64_t M2 = 33, C2 = 200;
        float *x2 = randn(M2 * C2, 1), *w2 = randn(C2, 1), *b2 = randn(C2, 1), *g2 = randn(M2 * C2, 1);
        float *o2 = zeros(M2 * C2), *mu2 = zeros(M2), *rs2 = zeros(M2), *d[2][3];
        int nt = omp_get_max_threads(), ntt[2] = {1, nt > 1 ? nt : 3};
        for (int r = 0; r < 2; r++) {
            d[r][0] = zeros(M2 * C2), d[r][1] = zeros(C2), d[r][2] = zeros(C2);
            omp_set_num_threads(ntt[r]);
            pare_layernorm_forward(o2, mu2, rs2, x2, w2, b2, M2, C2);
            pare_layernorm_backward(d[r][0], d[r][1], d[r][2], g2, x2, w2, mu2, rs2, M2, C2);
        }
        omp_set_num_threads(nt);
        ok(!memcmp(d[0][0], d[1][0], sizeof(float) * (size_t)(M2 * C2)) &&
               !memcmp(d[0][1], d[1][1], sizeof(float) * (size_t)C2) && !memcmp(d[0][2], d[1][2], sizeof(float) * (size_t)C2),
           "layernorm backward bit-identical for 1 and %d threads", ntt[1]);
        for (int r = 0; r < 2; r++) free(d[r][0]), free(d[r][1]), free(d[r][2]);
        free(x2), free(w2), free(b2), free(g2), free(o2), free(mu2), free(rs2);
    }

    free(ctx.inp), free(ctx.w), free(ctx.b), free(ctx.R), free(od), free(of), free(mf), free(rf);
    free(inp), free(w), free(b), free(R), free(out), free(mean), free(rstd), free(dinp), free(dw), free(db);
    free(dinp2), free(dw2), free(db2), free(out2), free(dw3);
}

/* ======================= activations ======================= */

typedef struct {
    double *x, *R;
    int64_t n;
    int gelu; /* 0 relu, 1 gelu (tanh), 2 gelu (erf), 3 tanh */
} act_ctx;

static double ref_gelu(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

static double act_loss(void *p)
{
    act_ctx *c = p;
    double L = 0;
    for (int64_t i = 0; i < c->n; i++) {
        double x = c->x[i];
        double f = c->gelu == 1 ? ref_gelu(x) : c->gelu == 2 ? 0.5 * x * (1 + erf(x / sqrt(2.0))) : c->gelu == 3 ? tanh(x) : x > 0 ? x : 0;
        L += f * c->R[i];
    }
    return L;
}

static void test_activations(void)
{
    const int64_t n = 2000;
    float *x = randn(n, 2), *R = randn(n, 1), *out = zeros(n), *want = zeros(n), *dx = zeros(n);
    x[0] = 0, x[1] = -20, x[2] = 20, x[3] = 1e-3f;
    pare_gelu_forward(out, x, n);
    for (int64_t i = 0; i < n; i++) want[i] = (float)ref_gelu(x[i]);
    is_close_arr(out, want, (long)n, 1e-6, 1e-5, "gelu forward vs tanh formula");
    pare_gelu_backward(dx, x, R, n);
    act_ctx ctx = {to_d(x, n), to_d(R, n), n, 1};
    gradcheck("gelu backward by finite differences", act_loss, &ctx, ctx.x, dx, NULL, n, 1e-5, 1e-4);

    /* exact erf GELU and tanh, against libm in double and by finite differences */
    memset(dx, 0, sizeof(float) * (size_t)n);
    pare_gelu_erf_forward(out, x, n);
    for (int64_t i = 0; i < n; i++) want[i] = (float)(0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))));
    is_close_arr(out, want, (long)n, 1e-6, 1e-5, "gelu (erf) forward vs 0.5 x (1 + erf(x/sqrt 2))");
    {
        /* the vectorised Φ (nn_normcdf) over a dense grid of [-12, 12], both tails included, in relative error
         * against double erf: forward x Φ(x) and the derivative Φ(x) + x φ(x) (dout = 1) */
        const int64_t g = 24001;
        float *gx = zeros(g), *gy = zeros(g), *gd = zeros(g), *one = zeros(g);
        for (int64_t i = 0; i < g; i++) gx[i] = -12.0f + 1e-3f * (float)i, one[i] = 1.0f;
        pare_gelu_erf_forward(gy, gx, g);
        pare_gelu_erf_backward(gd, gx, one, g);
        double fmax = 0, bmax = 0;
        for (int64_t i = 0; i < g; i++) {
            double xd = gx[i], phi = 0.5 * erfc(-xd / sqrt(2.0)), f = xd * phi;
            double pdf = exp(-0.5 * xd * xd) / sqrt(2 * M_PI), d = phi + xd * pdf;
            if (f != 0) fmax = fmax > fabs(gy[i] - f) / fabs(f) ? fmax : fabs(gy[i] - f) / fabs(f);
            double mag = phi + fabs(xd) * pdf; /* relative to the terms' size: d crosses 0 at x ≈ −0.75 */
            if (mag > 1e-30) bmax = bmax > fabs(gd[i] - d) / mag ? bmax : fabs(gd[i] - d) / mag;
        }
        diag("gelu (erf) on [-12, 12]: max relative error forward %.3g, derivative %.3g", fmax, bmax);
        ok(fmax < 1e-6, "gelu (erf) forward within 1e-6 relative of double erf everywhere on [-12, 12] (%.3g)", fmax);
        ok(bmax < 1e-6, "gelu (erf) derivative within 1e-6 of double on [-12, 12], relative to Φ + |x| φ (%.3g)", bmax);
        free(gx), free(gy), free(gd), free(one);
    }
    {
        /* both paths of the exact GELU's forward: act_avx512.c's (where the CPU has AVX-512) and the portable loop,
         * each against double erfc over the grid, and against each other; tails, ±0, ±Inf and NaN included */
        const int64_t g = 24001 + 7; /* not a multiple of 16 or 32: the masked tail runs */
        float *gx = zeros(g), *ya = zeros(g), *yp = zeros(g);
        for (int64_t i = 0; i < 24001; i++) gx[i] = -12.0f + 1e-3f * (float)i;
        gx[24001] = 0.0f, gx[24002] = -0.0f, gx[24003] = INFINITY, gx[24004] = -INFINITY, gx[24005] = NAN;
        gx[24006] = 30.0f, gx[24007] = -30.0f;
        ok(pare_nn_set_isa("scalar") == PARE_OK, "pare_nn_set_isa(scalar)");
        pare_gelu_erf_forward(yp, gx, g);
        const int avx512 = pare_nn_set_isa("avx512") == PARE_OK;
        ok(pare_nn_set_isa("auto") == PARE_OK, "pare_nn_set_isa(auto)");
        pare_gelu_erf_forward(ya, gx, g);
        for (int path = 0; path < 2; path++) {
            const float *y = path ? ya : yp;
            double fmax = 0, dmax = 0;
            for (int64_t i = 0; i < 24001; i++) {
                double xd = gx[i], f = xd * 0.5 * erfc(-xd / sqrt(2.0));
                if (f != 0) fmax = fmax > fabs(y[i] - f) / fabs(f) ? fmax : fabs(y[i] - f) / fabs(f);
                if (path) dmax = dmax > fabs(ya[i] - yp[i]) / (fabs(f) + 1e-30) ? dmax : fabs(ya[i] - yp[i]) / (fabs(f) + 1e-30);
            }
            ok(fmax < 1e-6, "gelu (erf) %s path within 1e-6 relative of double erf on [-12, 12] (%.3g)",
               path ? (avx512 ? "AVX-512" : "auto (portable: no AVX-512 here)") : "portable", fmax);
            ok(y[24001] == 0.0f && y[24002] == 0.0f && y[24003] == INFINITY && isnan(y[24004]) && isnan(y[24005]) &&
                   y[24006] == 30.0f && y[24007] == -0.0f,
               "  its specials: gelu(±0) = 0, gelu(Inf) = Inf, gelu(-Inf) and gelu(NaN) NaN, gelu(30) = 30, gelu(-30) = -0 (%g %g %g %g %g %g %g)",
               y[24001], y[24002], y[24003], y[24004], y[24005], y[24006], y[24007]);
            if (path) ok(dmax < 2e-6, "  the two paths agree within 2e-6 relative (%.3g)", dmax);
        }
        ok(pare_nn_set_isa("sse9") == PARE_EINVAL, "an unknown isa is refused: %s", pare_errmsg());
        free(gx), free(ya), free(yp);
    }
    pare_gelu_erf_backward(dx, x, R, n);
    ctx.gelu = 2;
    gradcheck("gelu (erf) backward by finite differences", act_loss, &ctx, ctx.x, dx, NULL, n, 1e-5, 1e-4);
    memset(dx, 0, sizeof(float) * (size_t)n);
    pare_tanh_forward(out, x, n);
    for (int64_t i = 0; i < n; i++) want[i] = (float)tanh(x[i]);
    is_close_arr(out, want, (long)n, 1e-6, 1e-6, "tanh forward");
    pare_tanh_backward(dx, x, R, n);
    ctx.gelu = 3;
    gradcheck("tanh backward by finite differences", act_loss, &ctx, ctx.x, dx, NULL, n, 1e-5, 1e-4);

    memset(dx, 0, sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        if (fabsf(x[i]) < 1e-3f) x[i] = 0.5f; /* keep the kink out of the differences */
    memset(dx, 0, sizeof(float) * (size_t)n);
    pare_relu_forward(out, x, n);
    for (int64_t i = 0; i < n; i++) want[i] = x[i] > 0 ? x[i] : 0;
    is_close_arr(out, want, (long)n, 0, 0, "relu forward");
    pare_relu_backward(dx, x, R, n);
    free(ctx.x);
    ctx.x = to_d(x, n), ctx.gelu = 0;
    gradcheck("relu backward by finite differences", act_loss, &ctx, ctx.x, dx, NULL, n, 1e-6, 1e-6);
    free(ctx.x), free(ctx.R), free(x), free(R), free(out), free(want), free(dx);
}

/* ======================= dropout ======================= */

static void test_dropout(void)
{
    const int64_t n = 100003; /* several rng chunks, the last one partial */
    float *x = randn(n, 1), *out = zeros(n), *dx = zeros(n), *g = randn(n, 1), *want = zeros(n);
    uint8_t *mask = xcalloc((size_t)n, 1), *mask2 = xcalloc((size_t)n, 1);
    pare_rng r;
    pare_rng_seed(&r, 7);

    pare_dropout_forward(out, mask, x, n, 0.0f, &r);
    int allone = 1;
    for (int64_t i = 0; i < n; i++) allone &= mask[i] == 1;
    ok(allone && memcmp(out, x, sizeof(float) * (size_t)n) == 0, "dropout p=0: identity, mask all 1");
    pare_dropout_backward(dx, g, mask, n, 0.0f);
    ok(memcmp(dx, g, sizeof(float) * (size_t)n) == 0, "dropout p=0 backward: identity");

    const float p = 0.5f;
    pare_dropout_forward(out, mask, x, n, p, &r);
    int64_t kept = 0;
    int consistent = 1;
    for (int64_t i = 0; i < n; i++) {
        kept += mask[i];
        consistent &= mask[i] ? out[i] == x[i] * 2.0f : out[i] == 0.0f;
    }
    double frac = (double)kept / (double)n, sd = sqrt(0.25 / (double)n);
    ok(fabs(frac - 0.5) < 5 * sd, "dropout p=0.5 keeps %.4f of %lld (5 sigma = %.4f)", frac, (long long)n, 5 * sd);
    ok(consistent, "dropout p=0.5: out = inp / (1-p) where kept, 0 where dropped");
    int64_t runs = 1; /* a mask from a working generator alternates like coin flips */
    for (int64_t i = 1; i < n; i++) runs += mask[i] != mask[i - 1];
    ok(fabs((double)runs - n / 2.0) < 5 * sqrt(n / 4.0), "dropout p=0.5 mask runs %lld (coin-flip like)",
       (long long)runs);

    memset(dx, 0, sizeof(float) * (size_t)n);
    pare_dropout_backward(dx, g, mask, n, p);
    for (int64_t i = 0; i < n; i++) want[i] = mask[i] ? g[i] * 2.0f : 0.0f;
    is_close_arr(dx, want, (long)n, 0, 0, "dropout backward = dout * mask / (1-p)");
    /* finite differences through the kernel: reseeding reproduces the mask, and the op is linear */
    {
        pare_rng r0;
        pare_rng_seed(&r0, 99);
        pare_rng ra = r0;
        pare_dropout_forward(out, mask, x, n, 0.3f, &ra);
        memset(dx, 0, sizeof(float) * (size_t)n);
        pare_dropout_backward(dx, g, mask, n, 0.3f);
        int64_t idx[64];
        float ana[64], num[64];
        int64_t k = sample_idx(idx, n, 64);
        for (int64_t s = 0; s < k; s++) {
            int64_t i = idx[s];
            float x0 = x[i];
            const float h = 1e-2f;
            x[i] = x0 + h, ra = r0, pare_dropout_forward(out, mask2, x, n, 0.3f, &ra);
            double lp = dot_fd(out, g, n);
            x[i] = x0 - h, ra = r0, pare_dropout_forward(out, mask2, x, n, 0.3f, &ra);
            double lm = dot_fd(out, g, n);
            x[i] = x0;
            num[s] = (float)((lp - lm) / (2 * (double)h));
            ana[s] = dx[i];
        }
        is_close_arr(ana, num, (long)k, 2e-3, 1e-2, "dropout p=0.3 backward by finite differences (same seed)");
    }

    /* determinism: same seed same mask for any thread count; the generator advances between calls */
    pare_rng r1, r2;
    pare_rng_seed(&r1, 123), pare_rng_seed(&r2, 123);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    pare_dropout_forward(out, mask, x, n, 0.1f, &r1);
    omp_set_num_threads(nt > 1 ? nt : 3);
    pare_dropout_forward(out, mask2, x, n, 0.1f, &r2);
    omp_set_num_threads(nt);
    ok(memcmp(mask, mask2, (size_t)n) == 0, "dropout mask is the same for 1 and %d threads", nt > 1 ? nt : 3);
    pare_dropout_forward(out, mask2, x, n, 0.1f, &r2);
    ok(memcmp(mask, mask2, (size_t)n) != 0, "dropout: a second call draws a new mask");
    free(x), free(out), free(dx), free(g), free(want), free(mask), free(mask2);
}

/* ======================= softmax and cross-entropy ======================= */

static double ref_softmax_row(double *o, const double *x, int64_t N) /* returns logsumexp */
{
    double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < N; j++) mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < N; j++) s += exp(x[j] - mx);
    for (int64_t j = 0; j < N; j++) o[j] = exp(x[j] - mx) / s;
    return mx + log(s);
}

typedef struct {
    double *x, *R;
    const int32_t *targets;
    int64_t M, N;
} sm_ctx;

static double sm_loss(void *p)
{
    sm_ctx *c = p;
    double *o = xcalloc((size_t)c->N, sizeof(double)), L = 0;
    for (int64_t m = 0; m < c->M; m++) {
        ref_softmax_row(o, c->x + m * c->N, c->N);
        L += dot_d(o, c->R + m * c->N, c->N);
    }
    free(o);
    return L;
}

/* mean over non-ignored rows of logsumexp - logit[target] */
static double ce_loss(void *p)
{
    sm_ctx *c = p;
    double *o = xcalloc((size_t)c->N, sizeof(double)), L = 0;
    int64_t cnt = 0;
    for (int64_t m = 0; m < c->M; m++) {
        if (c->targets[m] < 0) continue;
        L += ref_softmax_row(o, c->x + m * c->N, c->N) - c->x[m * c->N + c->targets[m]];
        cnt++;
    }
    free(o);
    return cnt ? L / (double)cnt : 0;
}

static void test_softmax(void)
{
    const int64_t M = 5, N = 33;
    float *x = randn(M * N, 3), *R = randn(M * N, 1), *out = zeros(M * N), *want = zeros(M * N), *dx = zeros(M * N);
    for (int64_t j = 0; j < N; j++) x[N + j] += 1000; /* overflows without the max subtraction */
    for (int64_t j = 0; j < N; j++) x[2 * N + j] -= 1000;
    pare_softmax_forward(out, x, M, N);
    sm_ctx ctx = {to_d(x, M * N), to_d(R, M * N), NULL, M, N};
    for (int64_t m = 0; m < M; m++) {
        double o[33];
        ref_softmax_row(o, ctx.x + m * N, N);
        for (int64_t j = 0; j < N; j++) want[m * N + j] = (float)o[j];
    }
    is_close_arr(out, want, (long)(M * N), 1e-7, 1e-5, "softmax forward vs double reference (rows offset ±1000)");
    pare_softmax_backward(dx, out, R, M, N);
    for (int64_t j = 0; j < N; j++) ctx.x[N + j] -= 1000, ctx.x[2 * N + j] += 1000; /* same softmax, better h */
    gradcheck("softmax backward by finite differences", sm_loss, &ctx, ctx.x, dx, NULL, M * N, 1e-5, 1e-4);
    free(ctx.x), free(ctx.R), free(x), free(R), free(out), free(want), free(dx);
}

static void test_crossentropy(void)
{
    const int64_t M = 9, V = 17;
    int32_t targets[9] = {3, -1, 0, 16, -100, 5, 5, 11, 2};
    float *logits = randn(M * V, 2), *losses = zeros(M), *probs = zeros(M * V), *dl = zeros(M * V);
    for (int64_t v = 0; v < V; v++) logits[7 * V + v] += 500; /* stability */
    logits[8 * V + 2] = -60;                                     /* prob of the target underflows f32 */
    for (int64_t v = 0; v < V; v++)
        if (v != 2) logits[8 * V + v] += 60;
    float mean = pare_crossentropy_forward(losses, probs, logits, targets, M, V);
    sm_ctx ctx = {to_d(logits, M * V), NULL, targets, M, V};
    float *wl = zeros(M), *wp = zeros(M * V);
    double sum = 0;
    int64_t cnt = 0;
    for (int64_t m = 0; m < M; m++) {
        double o[17], lse = ref_softmax_row(o, ctx.x + m * V, V);
        for (int64_t v = 0; v < V; v++) wp[m * V + v] = (float)o[v];
        if (targets[m] >= 0) wl[m] = (float)(lse - ctx.x[m * V + targets[m]]), sum += wl[m], cnt++;
    }
    is_close_arr(losses, wl, (long)M, 1e-5, 1e-5, "crossentropy per-row losses (ignored rows 0, underflowing prob)");
    is_close_arr(probs, wp, (long)(M * V), 1e-7, 1e-5, "crossentropy probs cache");
    is_close(mean, sum / (double)cnt, 1e-6, 1e-6, "crossentropy returns the mean over non-ignored rows");
    ok(losses[1] == 0 && losses[4] == 0, "crossentropy: ignored rows have loss 0");

    pare_crossentropy_backward(dl, probs, targets, 1.0f / (float)cnt, M, V);
    int zero = 1;
    for (int64_t v = 0; v < V; v++) zero &= dl[1 * V + v] == 0 && dl[4 * V + v] == 0;
    ok(zero, "crossentropy backward: ignored rows get no gradient");
    gradcheck("crossentropy backward (dloss = 1/count) by finite differences of the mean", ce_loss, &ctx, ctx.x, dl,
              NULL, M * V, 1e-6, 1e-4);

    int32_t none[3] = {-1, -1, -7};
    ok(pare_crossentropy_forward(losses, probs, logits, none, 3, V) == 0.0f, "crossentropy: all rows ignored -> 0");
    free(ctx.x), free(logits), free(losses), free(probs), free(dl), free(wl), free(wp);
}

/* ======================= pooling ======================= */

typedef struct {
    double *x, *R;
    const int32_t *lengths;
    pare_pool_mode mode;
    int64_t B, T, C;
} pool_ctx;

static void ref_pool(double *out, const double *x, const int32_t *lengths, pare_pool_mode mode, int64_t B, int64_t T,
                     int64_t C)
{
    for (int64_t b = 0; b < B; b++) {
        int64_t L = lengths ? lengths[b] : T;
        for (int64_t j = 0; j < C; j++) {
            double s = 0;
            if (mode == PARE_POOL_CLS)
                s = x[b * T * C + j];
            else if (L > 0) {
                for (int64_t t = 0; t < L; t++) s += x[(b * T + t) * C + j];
                s /= (double)L;
            }
            out[b * C + j] = s;
        }
    }
}

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    double *o = xcalloc((size_t)(c->B * c->C), sizeof(double));
    ref_pool(o, c->x, c->lengths, c->mode, c->B, c->T, c->C);
    double L = dot_d(o, c->R, c->B * c->C);
    free(o);
    return L;
}

static void test_pool(void)
{
    const int64_t B = 4, T = 6, C = 5;
    int32_t lengths[4] = {6, 3, 1, 0};
    const char *names[2] = {"CLS", "MEAN"};
    for (int mode = 0; mode < PARE_POOL_COUNT; mode++)
        for (int withlen = 0; withlen < 2; withlen++) {
            const int32_t *len = withlen ? lengths : NULL;
            float *x = randn(B * T * C, 1), *R = randn(B * C, 1), *out = zeros(B * C), *dx = zeros(B * T * C);
            pool_ctx ctx = {to_d(x, B * T * C), to_d(R, B * C), len, (pare_pool_mode)mode, B, T, C};
            double od[20];
            ref_pool(od, ctx.x, len, (pare_pool_mode)mode, B, T, C);
            float *want = to_f(od, B * C);
            char what[128];
            pare_pool_forward(out, x, len, (pare_pool_mode)mode, B, T, C);
            snprintf(what, sizeof what, "pool %s forward%s", names[mode], withlen ? " with lengths {6,3,1,0}" : "");
            is_close_arr(out, want, (long)(B * C), 1e-6, 1e-6, what);
            pare_pool_backward(dx, R, len, (pare_pool_mode)mode, B, T, C);
            snprintf(what, sizeof what, "pool %s backward by finite differences%s", names[mode],
                     withlen ? " (padded tokens get 0)" : "");
            gradcheck(what, pool_loss, &ctx, ctx.x, dx, NULL, B * T * C, 1e-6, 1e-5);
            if (mode == PARE_POOL_MEAN && withlen) {
                int z = 1;
                for (int64_t b = 0; b < B; b++)
                    for (int64_t t = lengths[b]; t < T; t++)
                        for (int64_t j = 0; j < C; j++) z &= dx[(b * T + t) * C + j] == 0.0f;
                ok(z, "pool MEAN: padded positions get exactly zero gradient");
            }
            free(ctx.x), free(ctx.R), free(x), free(R), free(out), free(dx), free(want);
        }
}

/* ======================= attention ======================= */

typedef struct {
    double *qkv, *R;
    const int32_t *lengths;
    int causal;
    int64_t B, T, C, H;
} att_ctx;

/* out (B,T,C) from qkv (B,T,3C), written independently of the kernel and of the src reference. */
static void ref_attention_d(double *out, const double *qkv, const int32_t *lengths, int causal, int64_t B, int64_t T,
                            int64_t C, int64_t H)
{
    int64_t D = C / H;
    double *s = xcalloc((size_t)T, sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                int64_t L = lengths ? lengths[b] : T, n = 0;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    s[j] = -INFINITY;
                    if (j >= L || (causal && j > i)) continue;
                    double d = 0;
                    for (int64_t e = 0; e < D; e++)
                        d += qkv[(b * T + i) * 3 * C + h * D + e] * qkv[(b * T + j) * 3 * C + C + h * D + e];
                    s[j] = d / sqrt((double)D);
                    mx = s[j] > mx ? s[j] : mx;
                    n++;
                }
                for (int64_t j = 0; j < T; j++) sum += n ? exp(s[j] - mx) : 0;
                for (int64_t e = 0; e < D; e++) {
                    double o = 0;
                    for (int64_t j = 0; j < T && n; j++) o += exp(s[j] - mx) / sum * qkv[(b * T + j) * 3 * C + 2 * C + h * D + e];
                    out[(b * T + i) * C + h * D + e] = o;
                }
            }
    free(s);
}

/* The dense attention is the "full" variant (attn/full.c, the models' one dense implementation): these
 * wrappers run it on a packed qkv (B,T,3C) with att (B,H,T,T) as its cache, in the signature the kernel
 * tests below were written for. scratch is unused (the variant's slots are allocated here). */
static pare_attn *dense_variant(int64_t T, int64_t C, int64_t H, int causal)
{
    pare_attn *a;
    if (pare_attn_create(&a, "full", NULL, 0, T, H, C / H, causal) != PARE_OK) {
        fprintf(stderr, "full attention: %s\n", pare_errmsg());
        abort();
    }
    return a;
}
static void dense_forward(float *out, float *att, const float *qkv, const int32_t *lengths, int causal, int64_t B,
                          int64_t T, int64_t C, int64_t H)
{
    pare_attn *a = dense_variant(T, C, H, causal);
    size_t wb = pare_attn_work_bytes(a, B);
    void *w = xcalloc(wb ? wb : 1, 1);
    pare_attn_args x = {.out = out, .ldo = C, .cache = att, .work = w, .work_bytes = wb, .q = qkv, .k = qkv + C,
                        .v = qkv + 2 * C, .ld = 3 * C, .lengths = lengths, .B = B};
    if (pare_attn_forward(a, &x) != PARE_OK) fprintf(stderr, "full attention: %s\n", pare_errmsg()), abort();
    free(w);
    pare_attn_free(a);
}
static void dense_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                           const int32_t *lengths, int causal, int64_t B, int64_t T, int64_t C, int64_t H)
{
    (void)scratch;
    pare_attn *a = dense_variant(T, C, H, causal);
    size_t wb = pare_attn_work_bytes(a, B);
    void *w = xcalloc(wb ? wb : 1, 1);
    float *out = zeros(B * T * C); /* not read by backward; the entry point checks it is given */
    pare_attn_args x = {.out = out, .ldo = C, .cache = (void *)att, .work = w, .work_bytes = wb, .q = qkv,
                        .k = qkv + C, .v = qkv + 2 * C, .ld = 3 * C, .lengths = lengths, .B = B, .dout = dout,
                        .dq = dqkv, .dk = dqkv + C, .dv = dqkv + 2 * C, .ldd = 3 * C};
    if (pare_attn_backward(a, &x) != PARE_OK) fprintf(stderr, "full attention: %s\n", pare_errmsg()), abort();
    free(out), free(w);
    pare_attn_free(a);
}

static double att_loss(void *p)
{
    att_ctx *c = p;
    double *o = xcalloc((size_t)(c->B * c->T * c->C), sizeof(double));
    ref_attention_d(o, c->qkv, c->lengths, c->causal, c->B, c->T, c->C, c->H);
    double L = dot_d(o, c->R, c->B * c->T * c->C);
    free(o);
    return L;
}

/* One configuration: forward vs both references, masking, gradcheck of q, k and v (all coordinates
 * when small, `sample` random ones per part otherwise), f32 differences through the fast kernel. */
static void check_attention(int64_t B, int64_t T, int64_t C, int64_t H, int causal, const int32_t *lengths,
                            int64_t sample)
{
    char tag[128], what[256];
    snprintf(tag, sizeof tag, "B=%lld T=%lld C=%lld H=%lld %s%s", (long long)B, (long long)T, (long long)C,
             (long long)H, causal ? "causal" : "bidirectional", lengths ? " +lengths" : "");
    const int64_t n3 = B * T * 3 * C, no = B * T * C, na = B * H * T * T;
    float *qkv = randn(n3, 1), *R = randn(no, 1), *out = zeros(no), *att = zeros(na), *rout = zeros(no),
          *ratt = zeros(na), *dqkv = zeros(n3), *scratch = zeros(na);
    for (int64_t i = 0; i < na; i++) att[i] = NAN; /* every entry must be written */
    dense_forward(out, att, qkv, lengths, causal, B, T, C, H);
    pare_attention_forward_ref(rout, ratt, qkv, lengths, causal, B, T, C, H);
    snprintf(what, sizeof what, "attention %s: out (full variant) vs pare_attention_forward_ref", tag);
    is_close_arr(out, rout, (long)no, 2e-6, 1e-4, what);
    snprintf(what, sizeof what, "attention %s: att vs pare_attention_forward_ref", tag);
    is_close_arr(att, ratt, (long)na, 1e-7, 1e-4, what);

    att_ctx ctx = {to_d(qkv, n3), to_d(R, no), lengths, causal, B, T, C, H};
    double *od = xcalloc((size_t)no, sizeof(double));
    ref_attention_d(od, ctx.qkv, lengths, causal, B, T, C, H);
    float *of = to_f(od, no);
    snprintf(what, sizeof what, "attention %s: out vs the test's double reference", tag);
    is_close_arr(out, of, (long)no, 2e-6, 1e-4, what);

    int masked = 1, rows = 1;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                int64_t L = lengths ? lengths[b] : T;
                double s = 0;
                for (int64_t j = 0; j < T; j++) {
                    float a = att[((b * H + h) * T + i) * T + j];
                    if (j >= L || (causal && j > i)) masked &= a == 0.0f;
                    s += a;
                }
                rows &= L > 0 ? fabs(s - 1) < 1e-5 : s == 0;
            }
    snprintf(what, sizeof what, "attention %s: masked att entries are exactly 0", tag);
    ok(masked, "%s", what);
    snprintf(what, sizeof what, "attention %s: att rows sum to 1 (0 for an empty sequence)", tag);
    ok(rows, "%s", what);

    dense_backward(dqkv, scratch, R, qkv, att, lengths, causal, B, T, C, H);
    ok(all_finite(dqkv, n3), "attention %s: backward finite", tag);
    const char *part[3] = {"dq", "dk", "dv"};
    int64_t *all = xcalloc((size_t)n3, sizeof(int64_t));
    for (int p = 0; p < 3; p++) {
        int64_t n = 0;
        for (int64_t bt = 0; bt < B * T; bt++)
            for (int64_t c = 0; c < C; c++) all[n++] = bt * 3 * C + p * C + c;
        int64_t *idx = xcalloc((size_t)n, sizeof(int64_t)), k = sample_idx(idx, n, sample);
        for (int64_t s = 0; s < k; s++) idx[s] = all[idx[s]];
        snprintf(what, sizeof what, "attention %s: %s by finite differences (%lld coords)", tag, part[p], (long long)k);
        gradcheck(what, att_loss, &ctx, ctx.qkv, dqkv, idx, k, 1e-4, 2e-3);
        free(idx);
    }

    /* f32 central differences through the fast kernel itself (h = 1e-3) on a few coordinates */
    {
        int64_t idx[24], k = sample_idx(idx, n3, 24);
        float num[24], ana[24];
        for (int64_t s = 0; s < k; s++) {
            int64_t i = idx[s];
            float x0 = qkv[i];
            const float h = 1e-3f;
            qkv[i] = x0 + h;
            dense_forward(out, att, qkv, lengths, causal, B, T, C, H);
            double lp = dot_fd(out, R, no);
            qkv[i] = x0 - h;
            dense_forward(out, att, qkv, lengths, causal, B, T, C, H);
            double lm = dot_fd(out, R, no);
            qkv[i] = x0;
            num[s] = (float)((lp - lm) / (2.0 * (double)h));
            ana[s] = dqkv[i];
        }
        snprintf(what, sizeof what, "attention %s: f32 differences of the fast kernel", tag);
        is_close_arr(ana, num, (long)k, 1e-2, 1e-2, what);
    }
    free(all), free(od), free(of), free(ctx.qkv), free(ctx.R);
    free(qkv), free(R), free(out), free(att), free(rout), free(ratt), free(dqkv), free(scratch);
}

/* Larger shapes: forward vs the src reference only, backward adds, thread-count invariance. */
static void check_attention_big(int64_t B, int64_t T, int64_t C, int64_t H, int causal, const int32_t *lengths)
{
    char tag[128], what[256];
    snprintf(tag, sizeof tag, "B=%lld T=%lld C=%lld H=%lld %s%s", (long long)B, (long long)T, (long long)C,
             (long long)H, causal ? "causal" : "bidirectional", lengths ? " +lengths" : "");
    const int64_t n3 = B * T * 3 * C, no = B * T * C, na = B * H * T * T;
    float *qkv = randn(n3, 1), *R = randn(no, 1), *out = zeros(no), *att = zeros(na), *rout = zeros(no),
          *ratt = zeros(na), *d1 = zeros(n3), *d2 = zeros(n3), *scratch = zeros(na), *out1 = zeros(no);
    for (int64_t i = 0; i < na; i++) att[i] = NAN;
    dense_forward(out, att, qkv, lengths, causal, B, T, C, H);
    pare_attention_forward_ref(rout, ratt, qkv, lengths, causal, B, T, C, H);
    snprintf(what, sizeof what, "attention %s: out (full variant) vs pare_attention_forward_ref", tag);
    is_close_arr(out, rout, (long)no, 2e-6, 1e-4, what);
    snprintf(what, sizeof what, "attention %s: att vs pare_attention_forward_ref", tag);
    is_close_arr(att, ratt, (long)na, 1e-7, 1e-4, what);

    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    dense_forward(out1, att, qkv, lengths, causal, B, T, C, H);
    dense_backward(d1, scratch, R, qkv, att, lengths, causal, B, T, C, H);
    omp_set_num_threads(nt > 1 ? nt : 3);
    dense_forward(out, att, qkv, lengths, causal, B, T, C, H);
    dense_backward(d2, scratch, R, qkv, att, lengths, causal, B, T, C, H);
    omp_set_num_threads(nt);
    ok(memcmp(out, out1, sizeof(float) * (size_t)no) == 0 && memcmp(d1, d2, sizeof(float) * (size_t)n3) == 0,
       "attention %s: bit-identical for 1 and %d threads", tag, nt > 1 ? nt : 3);
    dense_backward(d2, scratch, R, qkv, att, lengths, causal, B, T, C, H);
    for (int64_t i = 0; i < n3; i++) d1[i] *= 2;
    snprintf(what, sizeof what, "attention %s: backward adds into dqkv (twice = double)", tag);
    is_close_arr(d2, d1, (long)n3, 1e-6, 1e-5, what);
    free(qkv), free(R), free(out), free(att), free(rout), free(ratt), free(d1), free(d2), free(scratch), free(out1);
}

static void test_attention(void)
{
    int32_t len27[2] = {7, 4}, len37[2] = {3, 7}, len1[2] = {1, 1}, len0[2] = {0, 5};
    for (int causal = 0; causal < 2; causal++) {
        check_attention(2, 7, 15, 3, causal, NULL, 1 << 30); /* H=3, D=5 */
        check_attention(2, 7, 15, 3, causal, causal ? len37 : len27, 1 << 30);
        check_attention(2, 1, 6, 3, causal, NULL, 1 << 30); /* T=1 */
        check_attention(2, 1, 6, 3, causal, len1, 1 << 30);
        check_attention(1, 5, 4, 1, causal, NULL, 1 << 30); /* one head */
        check_attention(2, 5, 10, 2, causal, len0, 1 << 30); /* an empty sequence */
    }
    /* crossing query blocks (64 rows) with padding on the block boundary's both sides */
    int32_t len70[2] = {70, 50}, len70b[2] = {33, 66};
    check_attention(2, 70, 8, 2, 1, len70, 150);
    check_attention(2, 70, 8, 2, 0, len70b, 150);
    int32_t len130[2] = {130, 77};
    check_attention_big(2, 130, 32, 2, 1, len130);
    check_attention_big(2, 130, 32, 2, 0, len130);
    check_attention_big(1, 96, 48, 3, 1, NULL);
    check_attention_big(3, 64, 24, 4, 0, NULL);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 20240601);
    test_embedding();
    test_posadd();
    test_sinusoid();
    test_layernorm();
    test_activations();
    test_dropout();
    test_softmax();
    test_crossentropy();
    test_pool();
    test_attention();
    return tap_done();
}
