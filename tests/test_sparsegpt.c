/* test_sparsegpt.c — SparseGPT (compress/prune/sparsegpt.h) against a column-by-column Optimal Brain Surgeon
 * reference written here from the paper's derivation: for each column i in order, the inverse of the Hessian
 * of the columns still free (F = {i, ..., K-1}) is computed by Gauss-Jordan elimination, a pruned weight is
 * removed with w_F -= w_i / [H_F^-1]_ii · [H_F^-1]_{i,F}, and the masks are chosen by the saliency
 * w² / [H_F^-1]_ii (per block of columns over all rows, or the lowest m-n of every group of m). No Cholesky
 * factor, no lazy batches. Then: N:M masks hold exactly n of every m, the layer reconstruction error ||(W-Ŵ)Xᵀ||
 * on the calibration data is lower than magnitude pruning's at the same sparsity, dead inputs, prior masks,
 * the objective, and the error messages.
 *
 * Not here: the pass over a model (tests/sparsegpt.lua) and timing.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/prune/sparsegpt.h"
#include "tap.h"

/* ---- a small deterministic Gaussian generator (independent of pare's) ---- */
static uint64_t rs = 0x2545F4914F6CDD1Dull;
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

/* x (rows,K) = z·A with per-input scales over two decades: correlated inputs of unequal size */
static float *correlated(int64_t rows, int64_t K)
{
    float *A = randn(K * K, 1.0 / sqrt((double)K)), *z = randn(rows * K, 1.0), *x = calloc((size_t)(rows * K), 4);
    for (int64_t j = 0; j < K; j++) {
        double s = pow(10.0, 2.0 * urand() - 1.0);
        for (int64_t i = 0; i < K; i++) A[i * K + j] *= (float)s;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < K; j++) x[r * K + j] += z[r * K + i] * A[i * K + j];
    free(A), free(z);
    return x;
}

/* ---- the reference ---- */

/* inv (n,n) = A^-1 by Gauss-Jordan with partial pivoting; A (n,n) is destroyed. */
static void gj_inverse(double *inv, double *A, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) inv[i * n + j] = i == j;
    for (int64_t c = 0; c < n; c++) {
        int64_t p = c;
        for (int64_t r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
        for (int64_t j = 0; j < n; j++) {
            double t = A[c * n + j]; A[c * n + j] = A[p * n + j]; A[p * n + j] = t;
            t = inv[c * n + j]; inv[c * n + j] = inv[p * n + j]; inv[p * n + j] = t;
        }
        double d = A[c * n + c];
        for (int64_t j = 0; j < n; j++) A[c * n + j] /= d, inv[c * n + j] /= d;
        for (int64_t r = 0; r < n; r++) {
            if (r == c || A[r * n + c] == 0.0) continue;
            double f = A[r * n + c];
            for (int64_t j = 0; j < n; j++) A[r * n + j] -= f * A[c * n + j], inv[r * n + j] -= f * inv[c * n + j];
        }
    }
}

/* Hinv_i (K-i, K-i) = (H[i:, i:])^-1 of the dampened Hessian Hd (K,K). */
static void sub_inverse(double *out, const double *Hd, int64_t K, int64_t i)
{
    int64_t n = K - i;
    double *A = malloc(sizeof *A * (size_t)(n * n));
    for (int64_t a = 0; a < n; a++)
        for (int64_t b = 0; b < n; b++) A[a * n + b] = Hd[(i + a) * K + i + b];
    gj_inverse(out, A, n);
    free(A);
}

typedef struct sc { double s; int64_t i; } sc;
static int sc_cmp(const void *a, const void *b)
{
    const sc *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* SparseGPT by exact OBS, column by column. fixed (N,K): use this mask (1 kept) instead of choosing one.
 * n_keep/m: N:M (m = 0: unstructured with `sparsity` per block of B columns). */
static void ref_sparsegpt(float *Wout, float *mask, const float *W, const double *H, int64_t N, int64_t K,
                          double sparsity, int n_keep, int m, int64_t B, double damp, const float *fixed)
{
    double *Hd = malloc(sizeof *Hd * (size_t)(K * K)), *w = malloc(sizeof *w * (size_t)(N * K));
    double *dinv = malloc(sizeof *dinv * (size_t)K), *inv = malloc(sizeof *inv * (size_t)(K * K));
    memcpy(Hd, H, sizeof *Hd * (size_t)(K * K));
    double mean = 0;
    for (int64_t i = 0; i < K; i++) {
        if (Hd[i * K + i] == 0.0) Hd[i * K + i] = 1.0;
        mean += Hd[i * K + i];
    }
    mean /= (double)K;
    for (int64_t i = 0; i < K; i++) Hd[i * K + i] += damp * mean;
    for (int64_t r = 0; r < N; r++)
        for (int64_t k = 0; k < K; k++) w[r * K + k] = H[k * K + k] == 0.0 ? 0.0 : W[r * K + k];
    for (int64_t i = 0; i < K; i++) { /* [H_F^-1]_ii for F = {i..} */
        sub_inverse(inv, Hd, K, i);
        dinv[i] = inv[0];
    }
    if (fixed) memcpy(mask, fixed, sizeof *mask * (size_t)(N * K));
    sc *s = malloc(sizeof *s * (size_t)(N * K));
    for (int64_t i = 0; i < K; i++) {
        if (!fixed && !m && i % B == 0) {
            int64_t b = i + B < K ? B : K - i, c = 0;
            for (int64_t r = 0; r < N; r++)
                for (int64_t j = 0; j < b; j++, c++) {
                    double v = w[r * K + i + j];
                    s[c].s = (double)(float)(v * v / dinv[i + j]), s[c].i = c; /* the pass ranks float saliencies */
                }
            qsort(s, (size_t)c, sizeof *s, sc_cmp);
            int64_t k = llround(sparsity * (double)c);
            for (int64_t t = 0; t < c; t++) mask[(s[t].i / b) * K + i + s[t].i % b] = t < k ? 0.0f : 1.0f;
        }
        if (!fixed && m && i % m == 0)
            for (int64_t r = 0; r < N; r++) {
                for (int a = 0; a < m; a++) {
                    double v = w[r * K + i + a];
                    s[a].s = v * v / dinv[i + a], s[a].i = a;
                }
                qsort(s, (size_t)m, sizeof *s, sc_cmp);
                for (int a = 0; a < m; a++) mask[r * K + i + s[a].i] = a < m - n_keep ? 0.0f : 1.0f;
            }
        sub_inverse(inv, Hd, K, i); /* row 0 of it is [H_F^-1]_{i,F} */
        for (int64_t r = 0; r < N; r++) {
            if (mask[r * K + i] != 0.0f) continue;
            double f = w[r * K + i] / inv[0];
            for (int64_t j = 0; j < K - i; j++) w[r * K + i + j] -= f * inv[j];
            w[r * K + i] = 0.0;
        }
    }
    for (int64_t i = 0; i < N * K; i++) Wout[i] = (float)w[i];
    free(Hd), free(w), free(dinv), free(inv), free(s);
}

/* ---- helpers ---- */

static int64_t count_diff(const float *a, const float *b, int64_t n)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += a[i] != b[i];
    return c;
}

/* ||(W - Wp)·Xᵀ||_F over the calibration rows x (rows,K) */
static double recon(const float *W, const float *Wp, const float *x, int64_t rows, int64_t N, int64_t K)
{
    double t = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += ((double)W[n * K + k] - Wp[n * K + k]) * x[r * K + k];
            t += s * s;
        }
    return sqrt(t);
}

/* magnitude pruning of W (N,K) by its own rule: exactly round(s·NK) smallest |w| (unstructured) or the m-n
 * smallest of each group (N:M) */
static void magnitude(float *Wp, const float *W, int64_t N, int64_t K, double s, int n_keep, int m)
{
    sc *v = malloc(sizeof *v * (size_t)(N * K));
    memcpy(Wp, W, sizeof *Wp * (size_t)(N * K));
    if (m) {
        for (int64_t r = 0; r < N; r++)
            for (int64_t g = 0; g < K; g += m) {
                for (int a = 0; a < m; a++) v[a].s = fabs(W[r * K + g + a]), v[a].i = r * K + g + a;
                qsort(v, (size_t)m, sizeof *v, sc_cmp);
                for (int a = 0; a < m - n_keep; a++) Wp[v[a].i] = 0;
            }
    } else {
        for (int64_t i = 0; i < N * K; i++) v[i].s = fabs(W[i]), v[i].i = i;
        qsort(v, (size_t)(N * K), sizeof *v, sc_cmp);
        for (int64_t i = 0; i < llround(s * (double)(N * K)); i++) Wp[v[i].i] = 0;
    }
    free(v);
}

static int msg_has(const char *s) { return strstr(pare_errmsg(), s) != NULL; }

typedef struct fixture {
    int64_t N, K, rows;
    float *W, *x;
    pare_gptq_hessian h;
} fixture;

static fixture fx_new(int64_t N, int64_t K, int64_t rows, int64_t dead)
{
    fixture f = {N, K, rows, randn(N * K, 1.0), correlated(rows, K), {0}};
    if (dead >= 0)
        for (int64_t r = 0; r < rows; r++) f.x[r * K + dead] = 0.0f;
    if (pare_gptq_hessian_init(&f.h, K) != PARE_OK || pare_gptq_hessian_add(&f.h, f.x, rows) != PARE_OK) abort();
    return f;
}
static void fx_free(fixture *f) { free(f->W), free(f->x), pare_gptq_hessian_free(&f->h); }

/* The pass and the reference on one fixture: masks identical, weights within rounding. */
static void against_reference(fixture *f, double sparsity, int n, int m, int64_t B, int64_t ref_B, const char *what)
{
    int64_t NK = f->N * f->K;
    float *Wp = malloc(sizeof *Wp * (size_t)NK), *mk = malloc(sizeof *mk * (size_t)NK);
    float *Wr = malloc(sizeof *Wr * (size_t)NK), *mr = malloc(sizeof *mr * (size_t)NK);
    pare_sparsegpt_opts o = {sparsity, n, m, B, 0.01};
    double err = -1;
    pare_status st = pare_sparsegpt_prune(Wp, mk, f->W, NULL, &f->h, f->N, f->K, &o, &err);
    ok(st == PARE_OK, "%s: runs (%s)", what, st == PARE_OK ? "ok" : pare_errmsg());
    ref_sparsegpt(Wr, mr, f->W, f->h.H, f->N, f->K, sparsity, n, m, ref_B, 0.01, NULL);
    int64_t md = count_diff(mk, mr, NK);
    ok(md == 0, "%s: the mask is the reference's adaptive OBS mask (%lld of %lld differ)", what, (long long)md, (long long)NK);
    is_close_arr(Wp, Wr, (long)NK, 1e-5, 1e-4, what);
    /* the reference with the pass's mask held fixed gives the same weights too */
    ref_sparsegpt(Wr, mr, f->W, f->h.H, f->N, f->K, 0, 0, 0, 1, 0.01, mk);
    char buf[160];
    snprintf(buf, sizeof buf, "%s: column-by-column OBS with the pass's mask gives the pass's weights", what);
    is_close_arr(Wp, Wr, (long)NK, 1e-5, 1e-4, buf);
    int64_t zeros = 0, exact = 1;
    for (int64_t i = 0; i < NK; i++) {
        zeros += mk[i] == 0.0f;
        if (mk[i] == 0.0f && Wp[i] != 0.0f) exact = 0;
    }
    ok(exact, "%s: pruned weights are exactly 0", what);
    ok(err >= 0 && fabs(err - pare_gptq_objective(f->W, Wp, &f->h, f->N, f->K)) <= 1e-9 * (1 + err),
       "%s: err_out is the layer objective (%.6g)", what, err);
    if (!m && B > 0) { /* exactly round(s · N · b) per block */
        int64_t want = 0, b = B < f->K ? B : f->K;
        for (int64_t i1 = 0; i1 < f->K; i1 += b) want += llround(sparsity * (double)(f->N * (i1 + b <= f->K ? b : f->K - i1)));
        ok(zeros == want, "%s: %lld zeros, round(s * N * b) summed over blocks = %lld", what, (long long)zeros, (long long)want);
    }
    free(Wp), free(mk), free(Wr), free(mr);
}

static void test_reference(void)
{
    fixture f = fx_new(12, 32, 200, -1);
    against_reference(&f, 0.5, 0, 0, 1, 1, "unstructured 50%, blocksize 1");
    against_reference(&f, 0.7, 0, 0, 8, 8, "unstructured 70%, blocksize 8");
    against_reference(&f, 0.6, 0, 0, 5, 5, "unstructured 60%, blocksize 5 (a short last block)");
    against_reference(&f, 0.5, 0, 0, 128, 32, "unstructured 50%, blocksize 128 > K (one mask up front)");
    against_reference(&f, 0.5, 2, 4, 1, 1, "2:4, blocksize 1");
    against_reference(&f, 0.5, 2, 4, 128, 1, "2:4, blocksize 128");
    against_reference(&f, 0.5, 4, 8, 3, 1, "4:8, blocksize 3 (shrunk to nest with the groups)");
    against_reference(&f, 0.5, 4, 8, 12, 1, "4:8, blocksize 12 (shrunk to 8)");
    against_reference(&f, 0.5, 1, 4, 16, 1, "1:4, blocksize 16");
    fx_free(&f);
    fixture d = fx_new(8, 16, 100, 5);
    against_reference(&d, 0.5, 0, 0, 4, 4, "a dead input column, unstructured");
    float *Wp = malloc(sizeof *Wp * 8 * 16), *mk = malloc(sizeof *mk * 8 * 16);
    pare_sparsegpt_opts o = {0.0, 0, 0, 4, 0.01};
    pare_sparsegpt_prune(Wp, mk, d.W, NULL, &d.h, 8, 16, &o, NULL);
    int zero = 1;
    for (int r = 0; r < 8; r++) zero &= Wp[r * 16 + 5] == 0.0f;
    ok(zero, "a dead input's weights become 0 even at sparsity 0 (they cannot affect the output)");
    free(Wp), free(mk);
    fx_free(&d);
}

static void test_nm_exact(void)
{
    fixture f = fx_new(16, 64, 300, -1);
    const int pats[][2] = {{2, 4}, {4, 8}, {1, 2}, {3, 8}};
    for (int p = 0; p < 4; p++) {
        int n = pats[p][0], m = pats[p][1];
        float *Wp = malloc(sizeof *Wp * 16 * 64), *mk = malloc(sizeof *mk * 16 * 64);
        pare_sparsegpt_opts o = {0, n, m, 128, 0.01};
        pare_status st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 16, 64, &o, NULL);
        int64_t bad = 0, nz_bad = 0;
        for (int64_t r = 0; r < 16; r++)
            for (int64_t g = 0; g < 64; g += m) {
                int kept = 0, nz = 0;
                for (int a = 0; a < m; a++) kept += mk[r * 64 + g + a] != 0.0f, nz += Wp[r * 64 + g + a] != 0.0f;
                bad += kept != n, nz_bad += nz > n;
            }
        ok(st == PARE_OK && bad == 0 && nz_bad == 0, "%d:%d: every group of %d keeps exactly %d (%lld groups wrong, %lld with extra nonzeros)",
           n, m, m, n, (long long)bad, (long long)nz_bad);
        free(Wp), free(mk);
    }
    fx_free(&f);
}

static void test_recon_vs_magnitude(void)
{
    const int64_t N = 32, K = 64, rows = 512;
    fixture f = fx_new(N, K, rows, -1);
    float *Wp = malloc(sizeof *Wp * (size_t)(N * K)), *Wm = malloc(sizeof *Wm * (size_t)(N * K));
    const struct { double s; int n, m; const char *what; } cases[] = {
        {0.5, 0, 0, "50% unstructured"}, {0.8, 0, 0, "80% unstructured"}, {0.9, 0, 0, "90% unstructured"},
        {0.5, 2, 4, "2:4"}, {0.5, 4, 8, "4:8"}};
    for (int c = 0; c < 5; c++) {
        pare_sparsegpt_opts o = {cases[c].s, cases[c].n, cases[c].m, 16, 0.01};
        double err;
        pare_status st = pare_sparsegpt_prune(Wp, NULL, f.W, NULL, &f.h, N, K, &o, &err);
        int64_t zs = 0, zm = 0;
        for (int64_t i = 0; i < N * K; i++) zs += Wp[i] == 0.0f;
        /* the same number of zeros (SparseGPT rounds per block of columns) */
        magnitude(Wm, f.W, N, K, (double)zs / (double)(N * K), cases[c].n, cases[c].m);
        for (int64_t i = 0; i < N * K; i++) zm += Wm[i] == 0.0f;
        double es = recon(f.W, Wp, f.x, rows, N, K), em = recon(f.W, Wm, f.x, rows, N, K);
        ok(st == PARE_OK && zs == zm && es < 0.8 * em,
           "%s: ||WX - ŴX|| on the calibration data %.4g (SparseGPT) < 0.8 x %.4g (magnitude), %lld zeros each", cases[c].what,
           es, em, (long long)zs);
        /* the objective is twice the mean squared output error: 2/rows · ||(W - Ŵ)Xᵀ||² */
        ok(fabs(err - 2.0 / (double)rows * es * es) <= 1e-6 * err, "%s: objective %.6g = 2/n ||(W-Ŵ)Xᵀ||² %.6g", cases[c].what,
           err, 2.0 / (double)rows * es * es);
    }
    free(Wp), free(Wm);
    fx_free(&f);
}

static void test_prior_mask(void)
{
    fixture f = fx_new(8, 24, 120, -1);
    float *prior = malloc(sizeof *prior * 8 * 24), *W0 = malloc(sizeof *W0 * 8 * 24);
    for (int i = 0; i < 8 * 24; i++) prior[i] = urand() < 0.3 ? 0.0f : 1.0f, W0[i] = prior[i] * f.W[i];
    float *Wp = malloc(sizeof *Wp * 8 * 24), *mk = malloc(sizeof *mk * 8 * 24), *Wr = malloc(sizeof *Wr * 8 * 24),
          *mr = malloc(sizeof *mr * 8 * 24);
    pare_sparsegpt_opts o = {0.0, 0, 0, 8, 0.01};
    pare_status st = pare_sparsegpt_prune(Wp, mk, W0, prior, &f.h, 8, 24, &o, NULL);
    ok(st == PARE_OK && count_diff(mk, prior, 8 * 24) == 0, "sparsity 0 with a prior mask: the mask is the prior mask");
    ref_sparsegpt(Wr, mr, W0, f.h.H, 8, 24, 0, 0, 0, 1, 0.01, prior);
    is_close_arr(Wp, Wr, 8 * 24, 1e-5, 1e-4, "... and the weights are OBS's removal of exactly those weights");
    o.sparsity = 0.5;
    pare_sparsegpt_prune(Wp, mk, W0, prior, &f.h, 8, 24, &o, NULL);
    int kept_prior = 0, zeros = 0;
    for (int i = 0; i < 8 * 24; i++) kept_prior += prior[i] == 0.0f && mk[i] != 0.0f, zeros += mk[i] == 0.0f;
    ok(kept_prior == 0 && zeros == 96, "sparsity 0.5 over a 30%% prior mask: every prior zero stays pruned, %d zeros (96 wanted)", zeros);
    o.n = 2, o.m = 4;
    pare_sparsegpt_prune(Wp, mk, W0, prior, &f.h, 8, 24, &o, NULL);
    int over = 0;
    kept_prior = 0;
    for (int r = 0; r < 8; r++)
        for (int g = 0; g < 24; g += 4) {
            int pz = 0, z = 0;
            for (int a = 0; a < 4; a++) pz += prior[r * 24 + g + a] == 0.0f, z += mk[r * 24 + g + a] == 0.0f;
            over += z != (pz > 2 ? pz : 2);
        }
    for (int i = 0; i < 8 * 24; i++) kept_prior += prior[i] == 0.0f && mk[i] != 0.0f;
    ok(kept_prior == 0 && over == 0, "2:4 over a prior mask: prior zeros stay, a group prunes max(2, its prior zeros)");
    free(prior), free(W0), free(Wp), free(mk), free(Wr), free(mr);
    fx_free(&f);
}

static void test_errors(void)
{
    fixture f = fx_new(4, 8, 40, -1);
    float Wp[32], mk[32];
    pare_sparsegpt_opts o = PARE_SPARSEGPT_OPTS_DEFAULT;
    pare_status st;
    o.sparsity = 1.5;
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 4, 8, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("sparsity=1.5") && msg_has("[0, 1]"), "sparsity 1.5: %s", pare_errmsg());
    o = (pare_sparsegpt_opts)PARE_SPARSEGPT_OPTS_DEFAULT;
    o.n = 4, o.m = 4;
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 4, 8, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("n=4, m=4") && msg_has("1 <= n < m"), "n = m: %s", pare_errmsg());
    o.n = 2, o.m = 3;
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 4, 8, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("m=3 does not divide") && msg_has("K=8"), "m not dividing K: %s", pare_errmsg());
    o = (pare_sparsegpt_opts)PARE_SPARSEGPT_OPTS_DEFAULT;
    o.blocksize = -2;
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 4, 8, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("blocksize=-2"), "blocksize -2: %s", pare_errmsg());
    o = (pare_sparsegpt_opts)PARE_SPARSEGPT_OPTS_DEFAULT;
    o.damp = NAN;
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 4, 8, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("damp=nan"), "damp NaN: %s", pare_errmsg());
    o = (pare_sparsegpt_opts)PARE_SPARSEGPT_OPTS_DEFAULT;
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 2, 16, &o, NULL);
    ok(st == PARE_ESHAPE && msg_has("K=8") && msg_has("(2, 16)"), "Hessian of another K: %s", pare_errmsg());
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 4, 8, NULL, NULL);
    ok(st == PARE_EINVAL && msg_has("PARE_SPARSEGPT_OPTS_DEFAULT"), "NULL options: %s", pare_errmsg());
    pare_gptq_hessian empty;
    pare_gptq_hessian_init(&empty, 8);
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &empty, 4, 8, &o, NULL);
    ok(st == PARE_EINVAL && msg_has("no calibration samples"), "Hessian without samples: %s", pare_errmsg());
    float one[8] = {1, 1, 0, 0, 0, 0, 0, 0};
    pare_gptq_hessian_add(&empty, one, 1);
    empty.H[1] = empty.H[8] = 3.0; /* [[2, 3], [3, 2]]: indefinite (no x could give it; dampening can fix it) */
    o.damp = 0;
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &empty, 4, 8, &o, NULL);
    ok(st == PARE_ENUMERIC && msg_has("sparsegpt: the Hessian is not positive definite") && msg_has("raise damp"),
       "indefinite Hessian, damp 0: %s", pare_errmsg());
    o.damp = 1.0;
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &empty, 4, 8, &o, NULL);
    ok(st == PARE_OK, "... accepted with damp 1");
    pare_gptq_hessian_free(&empty);
    float bad[32];
    memcpy(bad, f.W, sizeof bad);
    bad[13] = NAN;
    o = (pare_sparsegpt_opts)PARE_SPARSEGPT_OPTS_DEFAULT;
    st = pare_sparsegpt_prune(Wp, mk, bad, NULL, &f.h, 4, 8, &o, NULL);
    ok(st == PARE_ENUMERIC && msg_has("W[1, 5]"), "NaN weight: %s", pare_errmsg());
    st = pare_sparsegpt_prune(Wp, mk, f.W, NULL, &f.h, 0, 8, &o, NULL);
    ok(st == PARE_ESHAPE && msg_has("(0, 8)"), "N = 0: %s", pare_errmsg());
    fx_free(&f);
}

int main(void)
{
    tap_plan_lazy();
    test_reference();
    test_nm_exact();
    test_recon_vs_magnitude();
    test_prior_mask();
    test_errors();
    return tap_done();
}
