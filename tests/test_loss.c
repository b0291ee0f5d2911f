/* test_loss.c — the loss kernels of kernels/loss.h against references written here independently in
 * double (the formulas of torch.nn.functional.mse_loss, kl_div(log_target=True, "batchmean")·T² in both
 * directions (the reverse, student-first one written out on its own, not as the forward with swapped arguments),
 * cross-entropy with probability targets, cosine_embedding_loss with target 1), and every backward
 * against central finite differences of those references: both arguments, padded rows, temperature
 * 1 and not 1, a gradient scale dloss ≠ 1, and that backward adds into what is there. Edge cases:
 * identical inputs, zero vectors (no NaN), huge logits, no valid row. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/loss.h"
#include "kernels/nn.h"
#include "tap.h"

/* ---- references, in double ---- */

static int valid(const int32_t *len, int64_t m, int64_t T) { return !len || m % T < len[m / T]; }

static double lse_d(const double *x, double inv, int64_t V)
{
    double mx = -INFINITY, z = 0;
    for (int64_t j = 0; j < V; j++) mx = fmax(mx, x[j] * inv);
    for (int64_t j = 0; j < V; j++) z += exp(x[j] * inv - mx);
    return mx + log(z);
}

/* per-row loss of row (a, b); temp used by KL only */
typedef double (*row_ref)(const double *a, const double *b, int64_t N, double temp);

static double mse_row(const double *a, const double *b, int64_t N, double temp)
{
    (void)temp;
    double s = 0;
    for (int64_t j = 0; j < N; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
    return s / (double)N;
}

/* T² · Σ p (log p − log q), p = softmax(t/T), q = softmax(s/T); a = s (student), b = t (target) */
static double kl_row_ref(const double *s, const double *t, int64_t V, double temp)
{
    double ls = lse_d(s, 1 / temp, V), lt = lse_d(t, 1 / temp, V), kl = 0;
    for (int64_t j = 0; j < V; j++) {
        double logp = t[j] / temp - lt, logq = s[j] / temp - ls;
        kl += exp(logp) * (logp - logq);
    }
    return temp * temp * kl;
}

/* the reverse direction, written out on its own: T² · Σ q (log q − log p), the student's q first */
static double kl_rev_row_ref(const double *s, const double *t, int64_t V, double temp)
{
    double ls = lse_d(s, 1 / temp, V), lt = lse_d(t, 1 / temp, V), kl = 0;
    for (int64_t j = 0; j < V; j++) {
        double logq = s[j] / temp - ls, logp = t[j] / temp - lt;
        kl += exp(logq) * (logq - logp);
    }
    return temp * temp * kl;
}

static double sxent_row(const double *s, const double *y, int64_t V, double temp)
{
    (void)temp;
    double l = lse_d(s, 1, V), r = 0;
    for (int64_t j = 0; j < V; j++) r -= y[j] * (s[j] - l);
    return r;
}

static double cos_row(const double *a, const double *b, int64_t N, double temp)
{
    (void)temp;
    double d = 0, aa = 0, bb = 0;
    for (int64_t j = 0; j < N; j++) d += a[j] * b[j], aa += a[j] * a[j], bb += b[j] * b[j];
    if (sqrt(aa) < 1e-8 || sqrt(bb) < 1e-8) return 1.0;
    return 1.0 - d / (sqrt(aa) * sqrt(bb));
}

static double ref_mean(row_ref f, const double *a, const double *b, const int32_t *len, int64_t B, int64_t T, int64_t N,
                       double temp, double *rows)
{
    double s = 0;
    int64_t n = 0;
    for (int64_t m = 0; m < B * T; m++) {
        double r = valid(len, m, T) ? f(a + m * N, b + m * N, N, temp) : 0;
        if (rows) rows[m] = r;
        if (valid(len, m, T)) s += r, n++;
    }
    return n ? s / (double)n : 0;
}

/* ---- the kernels behind one signature ---- */
typedef struct loss_k {
    const char *name;
    row_ref ref;
    float (*fwd)(float *losses, const float *a, const float *b, const int32_t *len, int64_t B, int64_t T, int64_t N, float temp);
    void (*bwd)(float *da, float *db, const float *a, const float *b, const int32_t *len, float dl, int64_t B, int64_t T,
                int64_t N, float temp);
} loss_k;

static float mse_f(float *l, const float *a, const float *b, const int32_t *len, int64_t B, int64_t T, int64_t N, float temp)
{
    (void)temp;
    return pare_mse_forward(l, a, b, len, B, T, N);
}
static void mse_b(float *da, float *db, const float *a, const float *b, const int32_t *len, float dl, int64_t B, int64_t T,
                  int64_t N, float temp)
{
    (void)temp;
    pare_mse_backward(da, db, a, b, len, dl, B, T, N);
}
static float kl_f(float *l, const float *a, const float *b, const int32_t *len, int64_t B, int64_t T, int64_t N, float temp)
{
    return pare_kldiv_forward(l, a, b, temp, len, B, T, N);
}
static void kl_b(float *da, float *db, const float *a, const float *b, const int32_t *len, float dl, int64_t B, int64_t T,
                 int64_t N, float temp)
{
    pare_kldiv_backward(da, db, a, b, temp, len, dl, B, T, N);
}
static float klr_f(float *l, const float *a, const float *b, const int32_t *len, int64_t B, int64_t T, int64_t N, float temp)
{
    return pare_kldiv_reverse_forward(l, a, b, temp, len, B, T, N);
}
static void klr_b(float *da, float *db, const float *a, const float *b, const int32_t *len, float dl, int64_t B, int64_t T,
                  int64_t N, float temp)
{
    pare_kldiv_reverse_backward(da, db, a, b, temp, len, dl, B, T, N);
}
static float sx_f(float *l, const float *a, const float *b, const int32_t *len, int64_t B, int64_t T, int64_t N, float temp)
{
    (void)temp;
    return pare_soft_xent_forward(l, a, b, len, B, T, N);
}
static void sx_b(float *da, float *db, const float *a, const float *b, const int32_t *len, float dl, int64_t B, int64_t T,
                 int64_t N, float temp)
{
    (void)temp;
    pare_soft_xent_backward(da, db, a, b, len, dl, B, T, N);
}
static float cos_f(float *l, const float *a, const float *b, const int32_t *len, int64_t B, int64_t T, int64_t N, float temp)
{
    (void)temp;
    return pare_cosine_forward(l, a, b, len, B, T, N);
}
static void cos_b(float *da, float *db, const float *a, const float *b, const int32_t *len, float dl, int64_t B, int64_t T,
                  int64_t N, float temp)
{
    (void)temp;
    pare_cosine_backward(da, db, a, b, len, dl, B, T, N);
}

static const loss_k K[] = {
    {"mse", mse_row, mse_f, mse_b},
    {"kl_div", kl_row_ref, kl_f, kl_b},
    {"kl_div_reverse", kl_rev_row_ref, klr_f, klr_b},
    {"soft_xent", sxent_row, sx_f, sx_b},
    {"cosine", cos_row, cos_f, cos_b},
};

/* Random inputs; soft_xent gets row-stochastic targets (a softmax of random logits). */
static void fill(float *a, float *b, int64_t M, int64_t N, double scale, int stochastic_b, pare_rng *r)
{
    for (int64_t i = 0; i < M * N; i++) a[i] = (float)(scale * pare_rng_normal(r)), b[i] = (float)(scale * pare_rng_normal(r));
    if (!stochastic_b) return;
    for (int64_t m = 0; m < M; m++) {
        double z = 0;
        for (int64_t j = 0; j < N; j++) z += exp(b[m * N + j]);
        for (int64_t j = 0; j < N; j++) b[m * N + j] = (float)(exp(b[m * N + j]) / z);
    }
}

/* Forward against the reference; both gradients against central differences of the reference (every
 * coordinate when `all`, else 64 random ones) at dloss = 0.7, after pre-filling the gradients with 1
 * (backward must add). */
static void check(const loss_k *k, int64_t B, int64_t T, int64_t N, const int32_t *len, double temp, double scale, int all,
                  pare_rng *r, const char *what)
{
    int64_t M = B * T, n = M * N;
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    float *da = malloc(sizeof(float) * (size_t)n), *db = malloc(sizeof(float) * (size_t)n);
    float *rows = malloc(sizeof(float) * (size_t)M), *rows_ref = malloc(sizeof(float) * (size_t)M);
    double *ad = malloc(sizeof(double) * (size_t)n), *bd = malloc(sizeof(double) * (size_t)n), *rd = malloc(sizeof(double) * (size_t)M);
    fill(a, b, M, N, scale, k->fwd == sx_f, r);
    for (int64_t i = 0; i < n; i++) ad[i] = a[i], bd[i] = b[i];
    float got = k->fwd(rows, a, b, len, B, T, N, (float)temp);
    double want = ref_mean(k->ref, ad, bd, len, B, T, N, temp, rd);
    for (int64_t m = 0; m < M; m++) rows_ref[m] = (float)rd[m];
    char msg[200];
    snprintf(msg, sizeof msg, "%s %s: forward = reference (%.7g vs %.7g)", k->name, what, got, want);
    is_close(got, want, 2e-6, 2e-5, msg);
    snprintf(msg, sizeof msg, "%s %s: per-row losses = reference, padded rows 0", k->name, what);
    is_close_arr(rows, rows_ref, (long)M, 2e-6, 2e-5, msg);

    const float dl = 0.7f;
    for (int64_t i = 0; i < n; i++) da[i] = db[i] = 1.0f;
    k->bwd(da, db, a, b, len, dl, B, T, N, (float)temp);
    double worst = 0;
    int64_t checked = 0;
    for (int side = 0; side < 2; side++) {
        double *x = side ? bd : ad;
        float *g = side ? db : da;
        for (int64_t c = 0; c < (all ? n : 64); c++) {
            int64_t i = all ? c : (int64_t)pare_rng_below(r, (uint64_t)n);
            double keep = x[i], h = 1e-5 * fmax(1.0, fabs(keep));
            x[i] = keep + h;
            double lp = ref_mean(k->ref, ad, bd, len, B, T, N, temp, NULL);
            x[i] = keep - h;
            double lm = ref_mean(k->ref, ad, bd, len, B, T, N, temp, NULL);
            x[i] = keep;
            double num = dl * (lp - lm) / (2 * h), ana = (double)g[i] - 1.0;
            double err = fabs(num - ana) / (1e-6 + 1e-3 * fmax(fabs(num), fabs(ana)) + 1e-2 * fabs(num));
            if (err > worst) worst = err;
            checked++;
        }
    }
    ok(worst < 1.0, "%s %s: backward adds d/da and d/db = finite differences of the reference on %lld coordinates "
       "(worst %.3g of the bound)", k->name, what, (long long)checked, worst);
    free(a), free(b), free(da), free(db), free(rows), free(rows_ref), free(ad), free(bd), free(rd);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng r;
    pare_rng_seed(&r, 42);
    int32_t len[3] = {5, 2, 4}; /* B = 3, T = 5: rows 7..9 and 14 padded */

    for (size_t i = 0; i < sizeof K / sizeof K[0]; i++) {
        const loss_k *k = &K[i];
        int kl = k->fwd == kl_f || k->fwd == klr_f;
        check(k, 3, 5, 7, NULL, 1.0, 1.0, 1, &r, "(15 x 7), all rows");
        check(k, 3, 5, 7, len, 1.0, 1.0, 1, &r, "(15 x 7), padded rows");
        check(k, 4, 1, 9, NULL, 1.0, 2.0, 1, &r, "(4 x 9) sequence rows, T = 1");
        if (kl) {
            check(k, 3, 5, 7, len, 2.5, 2.0, 1, &r, "temperature 2.5, padded rows");
            check(k, 3, 5, 7, NULL, 0.5, 1.0, 1, &r, "temperature 0.5");
            check(k, 2, 3, 11, len, 4.0, 3.0, 1, &r, "temperature 4, large logits");
        }
        /* the threaded path: 64 rows, 300 columns */
        int32_t blen[4] = {16, 9, 1, 12};
        check(k, 4, 16, 300, blen, kl ? 2.0 : 1.0, 1.0, 0, &r, "(64 x 300) threaded, padded rows");
    }

    /* ---- edge cases ---- */
    enum { M = 4, N = 6 };
    float a[M * N], b[M * N], rows[M], da[M * N], db[M * N];
    for (int i = 0; i < M * N; i++) a[i] = (float)pare_rng_normal(&r), b[i] = a[i];
    ok(pare_mse_forward(rows, a, b, NULL, M, 1, N) == 0.0f, "mse of identical inputs is 0");
    ok(pare_kldiv_forward(rows, a, b, 3.0f, NULL, M, 1, N) == 0.0f, "KL of identical logits is exactly 0 (T = 3)");
    ok(pare_kldiv_reverse_forward(rows, a, b, 3.0f, NULL, M, 1, N) == 0.0f, "reverse KL of identical logits is exactly 0");
    is_close(pare_cosine_forward(rows, a, b, NULL, M, 1, N), 0.0, 1e-6, 0, "cosine loss of identical vectors is 0");
    for (int i = 0; i < M * N; i++) b[i] = -3.0f * a[i];
    is_close(pare_cosine_forward(rows, a, b, NULL, M, 1, N), 2.0, 1e-6, 0, "cosine loss of opposite vectors is 2 (scale-free)");

    /* zero vectors: loss 1 for the row, no NaN anywhere, no gradient for that row */
    for (int j = 0; j < N; j++) a[j] = 0.0f, b[N + j] = 0.0f;
    memset(da, 0, sizeof da), memset(db, 0, sizeof db);
    float lz = pare_cosine_forward(rows, a, b, NULL, M, 1, N);
    pare_cosine_backward(da, db, a, b, NULL, 1.0f, M, 1, N);
    int finite = isfinite(lz), zero_rows = 1;
    for (int i = 0; i < M * N; i++) finite &= isfinite(da[i]) && isfinite(db[i]);
    for (int i = 0; i < 2 * N; i++) zero_rows &= da[i] == 0.0f && db[i] == 0.0f;
    ok(finite && rows[0] == 1.0f && rows[1] == 1.0f && zero_rows,
       "cosine with a zero vector: row loss 1, no NaN, no gradient for that row (rows %g %g)", rows[0], rows[1]);
    for (int i = 0; i < M * N; i++) a[i] = 0.0f, b[i] = 0.0f;
    memset(da, 0, sizeof da);
    pare_cosine_backward(da, NULL, a, b, NULL, 1.0f, M, 1, N);
    finite = 1;
    for (int i = 0; i < M * N; i++) finite &= da[i] == 0.0f;
    ok(pare_cosine_forward(rows, a, b, NULL, M, 1, N) == 1.0f && finite, "cosine of all-zero inputs: loss 1, gradient 0");

    /* no valid row: loss 0, gradients untouched */
    int32_t none[M] = {0, 0, 0, 0};
    for (int i = 0; i < M * N; i++) a[i] = (float)pare_rng_normal(&r), b[i] = (float)pare_rng_normal(&r), da[i] = 5.0f;
    float l0 = pare_mse_forward(rows, a, b, none, M, 1, N) + pare_kldiv_forward(rows, a, b, 2.0f, none, M, 1, N) +
               pare_kldiv_reverse_forward(rows, a, b, 2.0f, none, M, 1, N) + pare_cosine_forward(rows, a, b, none, M, 1, N) +
               pare_soft_xent_forward(rows, a, b, none, M, 1, N);
    pare_mse_backward(da, da, a, b, none, 1.0f, M, 1, N);
    pare_kldiv_backward(da, da, a, b, 2.0f, none, 1.0f, M, 1, N);
    pare_kldiv_reverse_backward(da, da, a, b, 2.0f, none, 1.0f, M, 1, N);
    pare_cosine_backward(da, da, a, b, none, 1.0f, M, 1, N);
    pare_soft_xent_backward(da, da, a, b, none, 1.0f, M, 1, N);
    int untouched = 1;
    for (int i = 0; i < M * N; i++) untouched &= da[i] == 5.0f;
    ok(l0 == 0.0f && untouched, "no valid row: every loss 0, gradients untouched");

    /* huge logits: KL and soft cross-entropy stay finite (log-sum-exp, not log of probabilities) */
    for (int i = 0; i < M * N; i++) a[i] = (float)(300.0 * pare_rng_normal(&r)), b[i] = (float)(300.0 * pare_rng_normal(&r));
    float lk = pare_kldiv_forward(rows, a, b, 1.0f, NULL, M, 1, N);
    double kd[M * N], kb[M * N];
    for (int i = 0; i < M * N; i++) kd[i] = a[i], kb[i] = b[i];
    is_close(lk, ref_mean(kl_row_ref, kd, kb, NULL, M, 1, N, 1.0, NULL), 1e-3, 1e-5, "KL of logits ~300 is finite and right");
    is_close(pare_kldiv_reverse_forward(rows, a, b, 1.0f, NULL, M, 1, N), ref_mean(kl_rev_row_ref, kd, kb, NULL, M, 1, N, 1.0, NULL),
             1e-3, 1e-5, "reverse KL of logits ~300 is finite and right");

    /* the two directions differ (KL is not symmetric): a sure student against an unsure teacher. Two
     * classes, s = (4, 0), t = (0, 0) at T = 1: q = (0.982, 0.018), p = (1/2, 1/2);
     * KL(p‖q) = −log 2 − ½ (log q0 + log q1) = 1.3250, KL(q‖p) = log 2 − H(q) = 0.6031 */
    {
        float s2[2] = {4.0f, 0.0f}, t2[2] = {0.0f, 0.0f}, r2[1];
        double q0 = 1 / (1 + exp(-4.0)), q1 = 1 - q0;
        double fwd = -log(2.0) - 0.5 * (log(q0) + log(q1)), rev = log(2.0) + q0 * log(q0) + q1 * log(q1);
        is_close(pare_kldiv_forward(r2, s2, t2, 1.0f, NULL, 1, 1, 2), fwd, 1e-6, 1e-6, "KL(p_t ‖ q_s) of a worked example (1.3250)");
        is_close(pare_kldiv_reverse_forward(r2, s2, t2, 1.0f, NULL, 1, 1, 2), rev, 1e-6, 1e-6,
                 "KL(q_s ‖ p_t) of the same example: the other number (0.6031)");
    }

    /* soft cross-entropy of one-hot targets = the hard cross-entropy of nn.h */
    int32_t lab[M] = {2, 0, 5, 3};
    float probs[M * N], xrows[M];
    for (int i = 0; i < M * N; i++) a[i] = (float)(2.0 * pare_rng_normal(&r)), b[i] = 0.0f;
    for (int m = 0; m < M; m++) b[m * N + lab[m]] = 1.0f;
    float hard = pare_crossentropy_forward(xrows, probs, a, lab, M, N), soft = pare_soft_xent_forward(rows, a, b, NULL, M, 1, N);
    is_close(soft, hard, 1e-6, 1e-6, "soft cross-entropy of one-hot targets = cross-entropy of the labels");
    memset(da, 0, sizeof da), memset(db, 0, sizeof db);
    pare_soft_xent_backward(da, NULL, a, b, NULL, 1.0f, M, 1, N);
    pare_crossentropy_backward(db, probs, lab, 1.0f / M, M, N);
    is_close_arr(da, db, M * N, 1e-6, 1e-5, "and its gradient is the cross-entropy's");

    /* KL = soft cross-entropy − entropy of the target at T = 1, with the same student gradient */
    float t[M * N], p[M * N];
    for (int i = 0; i < M * N; i++) t[i] = (float)pare_rng_normal(&r);
    pare_softmax_forward(p, t, M, N);
    double ent = 0;
    for (int i = 0; i < M * N; i++) ent -= p[i] * log(p[i]);
    is_close(pare_kldiv_forward(rows, a, t, 1.0f, NULL, M, 1, N), pare_soft_xent_forward(rows, a, p, NULL, M, 1, N) - ent / M,
             1e-5, 1e-5, "KL(T=1) = soft cross-entropy − H(target)");
    memset(da, 0, sizeof da), memset(db, 0, sizeof db);
    pare_kldiv_backward(da, NULL, a, t, 1.0f, NULL, 1.0f, M, 1, N);
    pare_soft_xent_backward(db, NULL, a, p, NULL, 1.0f, M, 1, N);
    is_close_arr(da, db, M * N, 1e-6, 1e-4, "KL(T=1) and soft cross-entropy give the same student gradient");

    /* T² scaling: the student gradient keeps its size as T grows (Hinton et al.: ~ (s − t)/V for large T) */
    for (int i = 0; i < M * N; i++) a[i] = 0.1f * (float)pare_rng_normal(&r), t[i] = 0.1f * (float)pare_rng_normal(&r);
    memset(da, 0, sizeof da);
    pare_kldiv_backward(da, NULL, a, t, 20.0f, NULL, 1.0f, M, 1, N);
    double worst = 0;
    for (int m = 0; m < M; m++) {
        double ms = 0, mt = 0;
        for (int j = 0; j < N; j++) ms += a[m * N + j] / N, mt += t[m * N + j] / N;
        for (int j = 0; j < N; j++) { /* d/ds of (T²/2V) Σ ((s−s̄) − (t−t̄))²/T² per row, over M rows */
            double want = ((a[m * N + j] - ms) - (t[m * N + j] - mt)) / N / M;
            worst = fmax(worst, fabs(da[m * N + j] - want));
        }
    }
    ok(worst < 2e-4, "KL gradient at T = 20 matches the high-temperature limit (s − t)/V (worst |Δ| %.2g)", worst);

    /* determinism: 1 thread and 2 give the same bits (rows in parallel, the mean summed serially) */
    {
        enum { BB = 8, TT = 32, VV = 200 };
        static float s[BB * TT * VV], tt[BB * TT * VV], g1[BB * TT * VV], g2[BB * TT * VV], h1[BB * TT * VV], h2[BB * TT * VV];
        static float l1[BB * TT], l2[BB * TT];
        int32_t ln[BB] = {32, 1, 17, 32, 5, 30, 12, 9};
        for (int i = 0; i < BB * TT * VV; i++) s[i] = (float)pare_rng_normal(&r), tt[i] = (float)pare_rng_normal(&r);
        int same = 1;
        for (size_t i = 0; i < sizeof K / sizeof K[0]; i++) {
            float f[2];
            float *g[2] = {g1, g2}, *h[2] = {h1, h2}, *l[2] = {l1, l2};
            for (int k = 0; k < 2; k++) {
                omp_set_num_threads(k + 1);
                memset(g[k], 0, sizeof g1), memset(h[k], 0, sizeof h1);
                f[k] = K[i].fwd(l[k], s, tt, ln, BB, TT, VV, 1.5f);
                K[i].bwd(g[k], h[k], s, tt, ln, 0.5f, BB, TT, VV, 1.5f);
            }
            same &= f[0] == f[1] && !memcmp(g1, g2, sizeof g1) && !memcmp(h1, h2, sizeof h1) && !memcmp(l1, l2, sizeof l1);
        }
        omp_set_num_threads(2);
        ok(same, "every loss: 1 thread and 2 give identical losses and gradients");
    }
    return tap_done();
}
