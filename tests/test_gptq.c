/* test_gptq.c — GPTQ against round-to-nearest, against a plain column-by-column reference (the OBS update
 * with the full inverse Hessian, as in the paper's derivation), lazy-batch exactness, the integer grid, the
 * Hessian accumulator, and the error messages.
 *
 * Not here: the compression pass over a model (that has its own test) and timing.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/quant/gptq.h"
#include "tap.h"

/* ---- a small deterministic Gaussian generator (independent of pare's) ---- */
static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return ((rs >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double nrand(void) { return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()); }

static float *randn(int64_t n, double sd)
{
    float *x = malloc(sizeof *x * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sd * nrand());
    return x;
}

/* x (rows,K) = z (rows,K) · A (K,K), A Gaussian with per-input scales spread over two decades: strongly
 * correlated inputs of unequal size, like a transformer's */
static float *correlated(int64_t rows, int64_t K)
{
    float *A = randn(K * K, 1.0 / sqrt((double)K)), *z = randn(rows * K, 1.0), *x = calloc((size_t)(rows * K), 4);
    for (int64_t j = 0; j < K; j++) {
        double s = pow(10.0, 2.0 * urand() - 1.0);
        for (int64_t i = 0; i < K; i++) A[i * K + j] *= (float)s;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < K; i++) {
            float zi = z[r * K + i];
            for (int64_t j = 0; j < K; j++) x[r * K + j] += zi * A[i * K + j];
        }
    free(A), free(z);
    return x;
}

static int64_t count_diff(const int32_t *a, const int32_t *b, int64_t n)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += a[i] != b[i];
    return c;
}

/* ---- the grid, written again from its specification ---- */
static void ref_fit(float *s, int32_t *z, const float *w, int64_t n, int bits, int sym)
{
    float lo = w[0], hi = w[0];
    for (int64_t i = 1; i < n; i++) lo = w[i] < lo ? w[i] : lo, hi = w[i] > hi ? w[i] : hi;
    *s = 1.0f, *z = 0;
    if (sym) {
        float a = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
        if (a > 0) *s = a / (float)((1 << (bits - 1)) - 1);
    } else {
        float maxq = (float)((1 << bits) - 1);
        lo = lo < 0 ? lo : 0, hi = hi > 0 ? hi : 0;
        if (hi > lo) {
            *s = (hi - lo) / maxq;
            float zz = nearbyintf(-lo / *s);
            *z = (int32_t)(zz < 0 ? 0 : zz > maxq ? maxq : zz);
        }
    }
}
static int32_t ref_q(float x, float s, int32_t z, int bits, int sym)
{
    float lo = sym ? -(float)((1 << (bits - 1)) - 1) : 0, hi = sym ? -lo : (float)((1 << bits) - 1);
    float r = nearbyintf(x / s) + (float)z;
    return (int32_t)(r < lo ? lo : r > hi ? hi : r);
}

/* ---- the reference: Algorithm 1 without Cholesky or blocks — quantize column i of every row, update the
 * remaining columns with the current inverse Hessian, then remove column i from it:
 *   w_F -= (w_i - w^_i)/Hinv[i,i] · Hinv[i,F];   Hinv ← Hinv - Hinv[:,i]·Hinv[i,:]/Hinv[i,i] */
static void ref_gptq(int32_t *q, float *scale, int32_t *zero, float *Wq, const float *W, const double *H, int64_t N,
                     int64_t K, int bits, int64_t group, int sym, int act_order, double damp)
{
    int64_t G = group ? group : K, ng = K / G, *perm = malloc(sizeof *perm * (size_t)K);
    int dynamic = group && !act_order;
    double *Hp = calloc((size_t)(K * 2 * K), sizeof *Hp), *w = malloc(sizeof *w * (size_t)(N * K)), mean = 0;
    float *orig = malloc(sizeof *orig * (size_t)(N * K)), *tmp = malloc(sizeof *tmp * (size_t)K);
    double *dg = malloc(sizeof *dg * (size_t)K);
    for (int64_t i = 0; i < K; i++) {
        dg[i] = H[i * K + i] == 0 ? 1.0 : H[i * K + i];
        mean += dg[i] / (double)K, perm[i] = i;
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) orig[n * K + k] = H[k * K + k] == 0 ? 0.0f : W[n * K + k];
    if (act_order) /* insertion sort: decreasing diag, ties by index */
        for (int64_t i = 1; i < K; i++)
            for (int64_t j = i; j > 0 && dg[perm[j]] > dg[perm[j - 1]]; j--) {
                int64_t t = perm[j];
                perm[j] = perm[j - 1], perm[j - 1] = t;
            }
    if (!dynamic)
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < ng; j++)
                ref_fit(&scale[n * ng + j], &zero[n * ng + j], orig + n * K + j * G, G, bits, sym);
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < K; i++) w[n * K + i] = orig[n * K + perm[i]];
    /* [Hp | I] → [I | Hp^-1] by Gauss-Jordan (Hp is positive definite: no pivoting needed) */
    int64_t L = 2 * K;
    for (int64_t i = 0; i < K; i++) {
        for (int64_t j = 0; j < K; j++) Hp[i * L + j] = H[perm[i] * K + perm[j]];
        if (H[perm[i] * K + perm[i]] == 0) Hp[i * L + i] = 1.0;
        Hp[i * L + i] += damp * mean;
        Hp[i * L + K + i] = 1.0;
    }
    for (int64_t c = 0; c < K; c++) {
        double p = Hp[c * L + c];
        for (int64_t j = 0; j < L; j++) Hp[c * L + j] /= p;
        for (int64_t r = 0; r < K; r++) {
            if (r == c) continue;
            double f = Hp[r * L + c];
            for (int64_t j = 0; j < L; j++) Hp[r * L + j] -= f * Hp[c * L + j];
        }
    }
    double *Hi = Hp + K; /* leading dimension L */
    for (int64_t i = 0; i < K; i++) {
        for (int64_t n = 0; n < N; n++) {
            double *wn = w + n * K;
            if (dynamic && i % G == 0) {
                for (int64_t k = 0; k < G; k++) tmp[k] = (float)wn[i + k];
                ref_fit(&scale[n * ng + i / G], &zero[n * ng + i / G], tmp, G, bits, sym);
            }
            int64_t col = perm[i], gi = col / G;
            int32_t v = ref_q((float)wn[i], scale[n * ng + gi], zero[n * ng + gi], bits, sym);
            float deq = scale[n * ng + gi] * (float)(v - zero[n * ng + gi]);
            q[n * K + col] = v, Wq[n * K + col] = deq;
            double e = (wn[i] - deq) / Hi[i * L + i];
            for (int64_t j = i + 1; j < K; j++) wn[j] -= e * Hi[i * L + j];
        }
        double d = Hi[i * L + i];
        for (int64_t r = i + 1; r < K; r++)
            for (int64_t j = i + 1; j < K; j++) Hi[r * L + j] -= Hi[r * L + i] * Hi[i * L + j] / d;
    }
    free(perm), free(Hp), free(w), free(orig), free(tmp), free(dg);
}

typedef struct out {
    int32_t *q, *zero;
    float *scale, *Wq;
} out;
static out out_new(int64_t N, int64_t K)
{
    out r = {malloc(4 * (size_t)(N * K)), malloc(4 * (size_t)(N * K)), malloc(4 * (size_t)(N * K)),
             malloc(4 * (size_t)(N * K))};
    return r;
}
static void out_free(out *r) { free(r->q), free(r->zero), free(r->scale), free(r->Wq); }

static pare_gptq_opts opts(int bits, int64_t group, int sym, int act)
{
    pare_gptq_opts o = PARE_GPTQ_OPTS_DEFAULT;
    o.bits = bits, o.group = group, o.symmetric = sym, o.act_order = act;
    return o;
}

/* q in range, Wq = scale·(q - zero) bit-exactly, zero in range */
static int grid_ok(const out *r, int64_t N, int64_t K, int64_t group, int bits, int sym)
{
    int64_t G = group ? group : K, ng = K / G;
    int qlo = sym ? -((1 << (bits - 1)) - 1) : 0, qhi = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            int32_t v = r->q[n * K + k], z = sym ? 0 : r->zero[n * ng + k / G];
            float s = r->scale[n * ng + k / G];
            if (v < qlo || v > qhi || !(s > 0) || z < 0 || z > (1 << bits) - 1) return 0;
            if (r->Wq[n * K + k] != s * (float)(v - z)) return 0;
        }
    return 1;
}

static void test_identity(void)
{
    const int64_t N = 32, K = 128;
    float *W = randn(N * K, 0.05);
    pare_gptq_hessian h;
    ok(pare_gptq_hessian_init(&h, K) == PARE_OK, "hessian init K=128");
    for (int64_t i = 0; i < K; i++) h.H[i * K + i] = 1.0;
    h.nsamples = 1;
    static const struct { int bits; int64_t group; int sym, act; } cf[] = {
        {4, 0, 1, 0}, {3, 32, 0, 0}, {2, 128, 1, 0}, {4, 32, 1, 1}, {8, 0, 0, 1}, {3, 64, 0, 1}};
    for (size_t c = 0; c < sizeof cf / sizeof cf[0]; c++) {
        out a = out_new(N, K), b = out_new(N, K);
        pare_gptq_opts o = opts(cf[c].bits, cf[c].group, cf[c].sym, cf[c].act);
        pare_status s1 = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
        pare_status s2 = pare_rtn_quantize(b.q, b.scale, b.zero, b.Wq, W, N, K, cf[c].bits, cf[c].group, cf[c].sym);
        int64_t ng = cf[c].group ? K / cf[c].group : 1;
        ok(s1 == PARE_OK && s2 == PARE_OK && count_diff(a.q, b.q, N * K) == 0 &&
               memcmp(a.Wq, b.Wq, 4 * (size_t)(N * K)) == 0 && memcmp(a.scale, b.scale, 4 * (size_t)(N * ng)) == 0,
           "H = I: GPTQ == RTN (bits %d group %lld %s%s): %lld of %lld differ", cf[c].bits, (long long)cf[c].group,
           cf[c].sym ? "sym" : "asym", cf[c].act ? " act_order" : "", (long long)count_diff(a.q, b.q, N * K),
           (long long)(N * K));
        out_free(&a), out_free(&b);
    }
    pare_gptq_hessian_free(&h);
    pare_gptq_hessian_free(&h);
    ok(h.H == NULL, "hessian free is safe twice");

    /* white noise: H ≈ I up to sampling noise */
    const int64_t rows = 8192;
    float *x = randn(rows * K, 1.0);
    pare_gptq_hessian_init(&h, K);
    pare_gptq_hessian_add(&h, x, rows);
    out a = out_new(N, K), b = out_new(N, K);
    pare_gptq_opts o = opts(4, 0, 1, 0);
    pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
    pare_rtn_quantize(b.q, b.scale, b.zero, b.Wq, W, N, K, 4, 0, 1);
    double eg = pare_gptq_objective(W, a.Wq, &h, N, K), er = pare_gptq_objective(W, b.Wq, &h, N, K);
    int64_t d = count_diff(a.q, b.q, N * K);
    diag("white noise (8192 rows, K=128): %lld of %lld q differ from RTN, objective GPTQ/RTN = %.4f", (long long)d,
         (long long)(N * K), eg / er);
    ok(d < N * K / 10 && eg <= er * 1.0001, "white-noise inputs: GPTQ close to RTN (%.1f%% differ) and not worse",
       100.0 * (double)d / (double)(N * K));
    out_free(&a), out_free(&b), free(x), free(W);
    pare_gptq_hessian_free(&h);
}

static void test_hessian(void)
{
    const int64_t K = 24, r1 = 37, r2 = 300;
    float *x = randn((r1 + r2) * K, 1.5);
    pare_gptq_hessian a, b;
    pare_gptq_hessian_init(&a, K), pare_gptq_hessian_init(&b, K);
    pare_gptq_hessian_add(&a, x, r1);
    pare_gptq_hessian_add(&a, x + r1 * K, r2);
    pare_gptq_hessian_add(&b, x, r1 + r2);
    double worst = 0, worst2 = 0;
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++) {
            double s = 0;
            for (int64_t r = 0; r < r1 + r2; r++) s += (double)x[r * K + i] * x[r * K + j];
            s *= 2.0 / (double)(r1 + r2);
            worst = fmax(worst, fabs(a.H[i * K + j] - s) / (fabs(s) + 1));
            worst2 = fmax(worst2, fabs(b.H[i * K + j] - s) / (fabs(s) + 1));
        }
    ok(a.nsamples == r1 + r2 && worst < 1e-12 && worst2 < 1e-12,
       "H = 2/n·Σxx^T, added in two batches or one (worst rel err %.2g, %.2g)", worst, worst2);
    pare_gptq_hessian_free(&a), pare_gptq_hessian_free(&b), free(x);
}

static void test_correlated(void)
{
    const int64_t N = 96, K = 256, rows = 2048;
    float *x = correlated(rows, K), *W = randn(N * K, 0.05);
    pare_gptq_hessian h;
    pare_gptq_hessian_init(&h, K);
    pare_gptq_hessian_add(&h, x, rows);
    static const int64_t groups[] = {0, 32, 128};
    diag("objective GPTQ/RTN, correlated inputs (N=%lld, K=%lld, %lld rows):", (long long)N, (long long)K,
         (long long)rows);
    diag("bits group  damp  sym:plain  sym:act  asym:plain  asym:act");
    /* 2 bits with the default damp 0.01: with data-dependent groups (group > 0, no act_order) the error feedback
     * inflates the not-yet-quantized weights, their group's scale is refitted to them (up to ~6x RTN's), and
     * GPTQ loses to RTN (ratio ~1.5; the column-by-column reference agrees). Asserted only for the variants
     * whose scales are fixed in advance; damp 0.1 (next rows) fixes it. */
    for (int bits = 4; bits >= 2; bits--)
        for (int pass = 0; pass < (bits == 2 ? 2 : 1); pass++)
            for (int gi = 0; gi < 3; gi++) {
                double damp = bits == 2 && pass == 1 ? 0.1 : 0.01, ratio[4];
                int all = 1, grids = 1, lax = bits == 2 && pass == 0 && groups[gi] > 0;
                for (int v = 0; v < 4; v++) {
                    int sym = v < 2, act = v & 1;
                    out a = out_new(N, K), b = out_new(N, K);
                    pare_gptq_opts o = opts(bits, groups[gi], sym, act);
                    o.damp = damp;
                    double err = -1;
                    pare_status st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, &err);
                    pare_rtn_quantize(b.q, b.scale, b.zero, b.Wq, W, N, K, bits, groups[gi], sym);
                    double er = pare_gptq_objective(W, b.Wq, &h, N, K);
                    ratio[v] = err / er;
                    all &= st == PARE_OK && err >= 0 && (err < er || (lax && !act));
                    grids &= grid_ok(&a, N, K, groups[gi], bits, sym);
                    out_free(&a), out_free(&b);
                }
                diag("%4d %5lld  %4.2f  %9.3f  %7.3f  %10.3f  %8.3f%s", bits, (long long)groups[gi], damp, ratio[0],
                     ratio[1], ratio[2], ratio[3], lax ? "   (plain not asserted)" : "");
                ok(all, "GPTQ objective < RTN objective, bits %d group %lld damp %g, sym/asym, %s", bits,
                   (long long)groups[gi], damp, lax ? "act_order" : "with and without act_order");
                ok(grids, "q on the grid, Wq = scale·(q-zero) exactly, bits %d group %lld", bits,
                   (long long)groups[gi]);
            }

    /* fixed parameters: per channel and act_order's static groups take RTN's scales from the original W */
    out a = out_new(N, K), b = out_new(N, K);
    pare_gptq_opts o = opts(3, 32, 0, 1);
    pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
    pare_rtn_quantize(b.q, b.scale, b.zero, b.Wq, W, N, K, 3, 32, 0);
    ok(memcmp(a.scale, b.scale, 4 * (size_t)(N * K / 32)) == 0 && memcmp(a.zero, b.zero, 4 * (size_t)(N * K / 32)) == 0,
       "act_order static groups: scale and zero are RTN's, from the original weights");
    o = opts(4, 0, 1, 0);
    double err = 0;
    pare_gptq_quantize(a.q, a.scale, NULL, a.Wq, W, &h, N, K, &o, &err);
    pare_rtn_quantize(b.q, b.scale, NULL, b.Wq, W, N, K, 4, 0, 1);
    ok(memcmp(a.scale, b.scale, 4 * (size_t)N) == 0, "per channel: scale is RTN's (zero = NULL accepted when sym)");
    is_close(err, pare_gptq_objective(W, a.Wq, &h, N, K), 0, 1e-12, "err_out is the objective of Wq");
    double err2 = 0;
    pare_gptq_quantize(a.q, a.scale, NULL, NULL, W, &h, N, K, &o, &err2);
    is_close(err2, err, 0, 1e-12, "err_out without Wq output");

    /* lazy batching is exact: block 1 vs 128, and blocks that do not nest with the groups */
    static const struct { int64_t group; int act; int64_t block; } lb[] = {
        {0, 0, 1}, {32, 0, 1}, {128, 0, 1}, {32, 1, 1}, {32, 0, 100}, {128, 0, 48}, {64, 1, 7}};
    for (size_t c = 0; c < sizeof lb / sizeof lb[0]; c++) {
        out r1 = out_new(N, K);
        o = opts(3, lb[c].group, 0, lb[c].act);
        pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
        o.block = lb[c].block;
        pare_gptq_quantize(r1.q, r1.scale, r1.zero, r1.Wq, W, &h, N, K, &o, NULL);
        int64_t d = count_diff(a.q, r1.q, N * K);
        ok(d == 0, "block %lld vs 128 (group %lld%s): %lld q differ", (long long)lb[c].block, (long long)lb[c].group,
           lb[c].act ? ", act_order" : "", (long long)d);
        is_close_arr(r1.Wq, a.Wq, (long)(N * K), 1e-6, 0, "  ... and Wq");
        out_free(&r1);
    }
    out_free(&a), out_free(&b);

    /* dead inputs: a column never active gets W^ = 0 and does not break the factorisation */
    for (int64_t r = 0; r < rows; r++) x[r * K + 5] = 0, x[r * K + 77] = 0;
    pare_gptq_hessian hd;
    pare_gptq_hessian_init(&hd, K);
    pare_gptq_hessian_add(&hd, x, rows);
    a = out_new(N, K), b = out_new(N, K);
    o = opts(4, 32, 0, 1);
    o.damp = 0; /* without dampening only the dead-column fix keeps H positive definite */
    pare_status st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &hd, N, K, &o, &err);
    int zcol = 1;
    for (int64_t n = 0; n < N; n++) zcol &= a.Wq[n * K + 5] == 0 && a.Wq[n * K + 77] == 0;
    ok(st == PARE_OK && zcol, "dead inputs (damp 0): factorisation succeeds, W^ = 0 in their columns");
    o.damp = 0.01;
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &hd, N, K, &o, &err);
    pare_rtn_quantize(b.q, b.scale, b.zero, b.Wq, W, N, K, 4, 32, 0);
    ok(st == PARE_OK && err < pare_gptq_objective(W, b.Wq, &hd, N, K), "dead inputs (damp 0.01): better than RTN");
    out_free(&a), out_free(&b);
    pare_gptq_hessian_free(&hd), pare_gptq_hessian_free(&h), free(x), free(W);
}

/* K = 64 is one base block of the factorisation; K = 150 goes through its recursion (75 = 37 + 38) */
static void test_reference_k(int64_t K, int64_t rows)
{
    const int64_t N = 16;
    float *x = correlated(rows, K), *W = randn(N * K, 0.05);
    for (int64_t r = 0; r < rows; r++) x[r * K + 9] = 0; /* one dead input */
    pare_gptq_hessian h;
    pare_gptq_hessian_init(&h, K);
    pare_gptq_hessian_add(&h, x, rows);
    typedef struct refcase { int bits; int64_t group; int sym, act; double damp; int64_t block; } refcase;
    static const refcase c64[] = {
        {4, 0, 1, 0, 0.01, 8}, {3, 16, 0, 0, 0.01, 8}, {2, 32, 1, 0, 0.1, 8}, {4, 16, 0, 1, 0.01, 8},
        {3, 0, 1, 1, 0.01, 8}}, c150[] = {{3, 30, 0, 0, 0.01, 128}, {4, 25, 1, 1, 0.01, 7}, {4, 0, 0, 0, 0.01, 64}};
    const int nc = K == 64 ? 5 : 3;
    for (int c = 0; c < nc; c++) {
        const refcase *cf = K == 64 ? &c64[c] : &c150[c];
        out a = out_new(N, K), b = out_new(N, K);
        pare_gptq_opts o = opts(cf->bits, cf->group, cf->sym, cf->act);
        o.damp = cf->damp, o.block = cf->block;
        pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
        ref_gptq(b.q, b.scale, b.zero, b.Wq, W, h.H, N, K, cf->bits, cf->group, cf->sym, cf->act, cf->damp);
        int64_t d = count_diff(a.q, b.q, N * K);
        ok(d == 0, "K=%lld: fast == column-by-column reference (bits %d group %lld %s%s, damp %g, block %lld): %lld q "
           "differ", (long long)K, cf->bits, (long long)cf->group, cf->sym ? "sym" : "asym",
           cf->act ? " act_order" : "", cf->damp, (long long)cf->block, (long long)d);
        is_close_arr(a.Wq, b.Wq, (long)(N * K), 1e-7, 0, "  ... and Wq");
        out_free(&a), out_free(&b);
    }
    pare_gptq_hessian_free(&h), free(x), free(W);
}

static void test_reference(void)
{
    test_reference_k(64, 512);
    test_reference_k(150, 1024);
}

static int msg_has(const char *s) { return strstr(pare_errmsg(), s) != NULL; }

static void test_errors(void)
{
    const int64_t N = 4, K = 64;
    float *W = randn(N * K, 1.0), *x = randn(4 * K, 1.0);
    out a = out_new(N, K);
    pare_gptq_hessian h, e;
    pare_gptq_hessian_init(&h, K);
    pare_gptq_hessian_add(&h, x, 4); /* rank 4 < K: fine with dampening */
    pare_gptq_opts o = opts(1, 0, 1, 0);
    pare_status st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("bits=1") && msg_has("2..8"), "bits=1 rejected: %s", pare_errmsg());
    o.bits = 9;
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("bits=9"), "bits=9 rejected: %s", pare_errmsg());
    st = pare_rtn_quantize(a.q, a.scale, a.zero, a.Wq, W, N, K, 9, 0, 1);
    ok(st == PARE_EINVAL && msg_has("bits=9"), "rtn bits=9 rejected: %s", pare_errmsg());
    o = opts(4, 48, 1, 0);
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("group=48") && msg_has("K=64"), "group=48 with K=64 rejected: %s",
       pare_errmsg());
    o = opts(4, 0, 1, 0);
    o.damp = -0.5;
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("damp=-0.5"), "damp < 0 rejected: %s", pare_errmsg());
    o = opts(4, 0, 0, 0);
    st = pare_gptq_quantize(a.q, a.scale, NULL, a.Wq, W, &h, N, K, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("zero"), "asymmetric without a zero output rejected: %s", pare_errmsg());
    W[2 * K + 7] = NAN;
    o = opts(4, 0, 1, 0);
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, K, &o, NULL);
    ok(st == PARE_ENUMERIC && msg_has("W[2, 7]"), "NaN in W rejected: %s", pare_errmsg());
    st = pare_rtn_quantize(a.q, a.scale, a.zero, a.Wq, W, N, K, 4, 0, 1);
    ok(st == PARE_ENUMERIC && msg_has("W[2, 7]"), "rtn: NaN in W rejected: %s", pare_errmsg());
    W[2 * K + 7] = 0.5f;
    pare_gptq_hessian_init(&e, K);
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &e, N, K, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("no calibration samples"), "zero samples rejected: %s", pare_errmsg());
    x[3 * K + 1] = INFINITY;
    st = pare_gptq_hessian_add(&e, x, 4);
    ok(st == PARE_ENUMERIC && msg_has("x[3, 1]") && e.nsamples == 0, "Inf calibration input rejected: %s",
       pare_errmsg());
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &h, N, 32, &o, NULL);
    ok(st == PARE_ESHAPE && msg_has("K=64"), "Hessian of another K rejected: %s", pare_errmsg());
    /* indefinite H: [[1, 2], [2, 1]] has eigenvalue -1; damp 0.01·1 does not fix it */
    pare_gptq_hessian_free(&e);
    pare_gptq_hessian_init(&e, 2);
    e.H[0] = 1, e.H[1] = 2, e.H[2] = 2, e.H[3] = 1, e.nsamples = 10;
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &e, 2, 2, &o, NULL);
    ok(st == PARE_ENUMERIC && msg_has("not positive definite") && msg_has("damp"),
       "indefinite Hessian rejected, suggesting damp: %s", pare_errmsg());
    o.damp = 4; /* 1 + 4 > 2: positive definite */
    st = pare_gptq_quantize(a.q, a.scale, a.zero, a.Wq, W, &e, 2, 2, &o, NULL);
    ok(st == PARE_OK, "... and accepted with damp 4");
    pare_gptq_hessian_free(&e), pare_gptq_hessian_free(&h);
    out_free(&a), free(W), free(x);
}

int main(void)
{
    tap_plan_lazy();
    test_identity();
    test_hessian();
    test_reference();
    test_correlated();
    test_errors();
    return tap_done();
}
