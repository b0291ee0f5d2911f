/* loss.c — MSE, KL divergence with temperature (both directions), soft-label cross-entropy and cosine embedding loss
 * (loss.h has the formulas, the papers and the conventions).
 *
 * Each kernel is one pass per row, rows in parallel: the per-row values go to losses (M) and the mean is
 * summed serially in double, so the result does not depend on the thread count. The per-row reductions
 * accumulate in double; the exponentials use the vectorizable nn_expf of nn_internal.h (relative error
 * 8e-8), as the softmax of nn.c does. These plain loops are the reference: there is no separate fast
 * version (tests/test_loss.c checks them against references written independently in double).
 *
 * Backward recomputes what it needs from the inputs (row maxima, log-sum-exps, norms) rather than
 * caching (M, V) probabilities: for a language model the vocabulary makes such caches the largest
 * activations of the step, and recomputing costs one more pass over the row.
 */
#include "loss.h"

#include <math.h>

#include "nn_internal.h"

static inline int row_valid(const int32_t *lengths, int64_t m, int64_t T)
{
    return !lengths || (m % T) < (int64_t)lengths[m / T];
}

int64_t pare_loss_rows(const int32_t *lengths, int64_t B, int64_t T)
{
    if (!lengths) return B * T;
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++) n += lengths[b] < 0 ? 0 : lengths[b] > T ? T : lengths[b];
    return n;
}

/* The mean of losses (M) over valid rows, serially in double; `per` divides it further (N for MSE). */
static float mean_rows(const float *losses, const int32_t *lengths, int64_t B, int64_t T, double per)
{
    double sum = 0.0;
    for (int64_t m = 0; m < B * T; m++)
        if (row_valid(lengths, m, T)) sum += losses[m];
    int64_t n = pare_loss_rows(lengths, B, T);
    return n ? (float)(sum / ((double)n * per)) : 0.0f;
}

/* ---- mean squared error ---- */

/* losses[m] = Σ_j (a − b)² / N; the mean of the row means is Σ / (rows·N) */
float pare_mse_forward(float *losses, const float *a, const float *b, const int32_t *lengths, int64_t B, int64_t T,
                       int64_t N)
{
    int64_t M = B * T;
#pragma omp parallel for schedule(static) if (M * N > 32768)
    for (int64_t m = 0; m < M; m++) {
        double s = 0.0;
        if (row_valid(lengths, m, T)) {
            const float *x = a + m * N, *y = b + m * N;
            for (int64_t j = 0; j < N; j++) {
                double d = (double)x[j] - (double)y[j];
                s += d * d;
            }
        }
        losses[m] = (float)(s / (double)N);
    }
    return mean_rows(losses, lengths, B, T, 1.0);
}

/* From mean = Σ_valid (a − b)² / (rows·N): d/da = 2 (a − b) / (rows·N), d/db = −d/da. */
void pare_mse_backward(float *da, float *db, const float *a, const float *b, const int32_t *lengths, float dloss,
                       int64_t B, int64_t T, int64_t N)
{
    int64_t M = B * T, n = pare_loss_rows(lengths, B, T);
    if (!n || (!da && !db)) return;
    float c = 2.0f * dloss / ((float)n * (float)N);
#pragma omp parallel for schedule(static) if (M * N > 32768)
    for (int64_t m = 0; m < M; m++) {
        if (!row_valid(lengths, m, T)) continue;
        const float *x = a + m * N, *y = b + m * N;
        if (da)
#pragma omp simd
            for (int64_t j = 0; j < N; j++) da[m * N + j] += c * (x[j] - y[j]);
        if (db)
#pragma omp simd
            for (int64_t j = 0; j < N; j++) db[m * N + j] -= c * (x[j] - y[j]);
    }
}

/* ---- softmax helpers ---- */

/* log Σ_j exp(x_j · inv) for one row, stably (subtract the max). */
static double row_lse(const float *x, float inv, int64_t V)
{
    float mx = nn_rowmax(x, V) * inv; /* inv > 0: max(x·inv) = max(x)·inv */
    double z = 0.0;
    for (int64_t j = 0; j < V; j++) z += (double)nn_expf(x[j] * inv - mx);
    return (double)mx + log(z);
}

/* ---- KL divergence with temperature ---- */

/* One row: KL(p || q) (not yet scaled by T²) with p = softmax(t/T), q = softmax(s/T), and the two
 * log-sum-exps. log p_j − log q_j = (t_j − s_j)/T − lse_t + lse_s, so identical rows give exactly 0. */
static double kl_row(const float *s, const float *t, float inv, int64_t V, double *lse_s, double *lse_t)
{
    *lse_s = row_lse(s, inv, V);
    *lse_t = row_lse(t, inv, V);
    double c = *lse_s - *lse_t, kl = 0.0;
    float lt = (float)*lse_t;
    for (int64_t j = 0; j < V; j++) {
        double p = (double)nn_expf(t[j] * inv - lt);
        kl += p * ((double)(t[j] - s[j]) * (double)inv + c);
    }
    return kl;
}

float pare_kldiv_forward(float *losses, const float *s, const float *t, float temperature, const int32_t *lengths,
                         int64_t B, int64_t T, int64_t V)
{
    int64_t M = B * T;
    float inv = 1.0f / temperature;
    double t2 = (double)temperature * (double)temperature;
#pragma omp parallel for schedule(static) if (M * V > 16384)
    for (int64_t m = 0; m < M; m++) {
        double ls, lt;
        losses[m] = row_valid(lengths, m, T) ? (float)(t2 * kl_row(s + m * V, t + m * V, inv, V, &ls, &lt)) : 0.0f;
    }
    return mean_rows(losses, lengths, B, T, 1.0);
}

/* From row = T² Σ_j p_j (log p_j − log q_j):
 *   d row / d s_k = T (q_k − p_k)                        (log q_k = s_k/T − lse_s)
 *   d row / d t_k = T p_k (log p_k − log q_k − KL_row)   (log p_k = t_k/T − lse_t; KL_row unscaled) */
void pare_kldiv_backward(float *ds, float *dt, const float *s, const float *t, float temperature,
                         const int32_t *lengths, float dloss, int64_t B, int64_t T, int64_t V)
{
    int64_t M = B * T, n = pare_loss_rows(lengths, B, T);
    if (!n || (!ds && !dt)) return;
    float inv = 1.0f / temperature, g = dloss * temperature / (float)n;
#pragma omp parallel for schedule(static) if (M * V > 16384)
    for (int64_t m = 0; m < M; m++) {
        if (!row_valid(lengths, m, T)) continue;
        const float *sr = s + m * V, *tr = t + m * V;
        double ls, lt;
        double kl = kl_row(sr, tr, inv, V, &ls, &lt);
        float fls = (float)ls, flt = (float)lt, c = (float)(ls - lt), fkl = (float)kl;
        for (int64_t j = 0; j < V; j++) {
            float p = nn_expf(tr[j] * inv - flt), q = nn_expf(sr[j] * inv - fls);
            if (ds) ds[m * V + j] += g * (q - p);
            if (dt) dt[m * V + j] += g * p * ((tr[j] - sr[j]) * inv + c - fkl);
        }
    }
}

/* ---- KL divergence, reverse direction: KL(q || p), the student's distribution first ----
 * KL(softmax(s/T) || softmax(t/T)) is the forward kernel's KL(softmax(t'/T) || softmax(s'/T)) with s' = t and
 * t' = s: the same row, exactly, so these are the kernels above with their two arguments exchanged (one
 * implementation of the row, tested once against each direction's own reference in tests/test_loss.c).
 * Its gradients follow from kl_row's with the roles exchanged, and read directly off the reverse row:
 *   row = T² Σ_j q_j (log q_j − log p_j)          (log q_j = s_j/T − lse_s, log p_j = t_j/T − lse_t)
 *   d row / d s_k = T q_k (log q_k − log p_k − KL_row)     (dq_j/ds_k = q_j (δ_jk − q_k)/T; KL_row unscaled)
 *   d row / d t_k = T (p_k − q_k)                          (−Σ_j q_j d log p_j/dt_k · T²) */
float pare_kldiv_reverse_forward(float *losses, const float *s, const float *t, float temperature, const int32_t *lengths,
                                 int64_t B, int64_t T, int64_t V)
{
    return pare_kldiv_forward(losses, t, s, temperature, lengths, B, T, V);
}

void pare_kldiv_reverse_backward(float *ds, float *dt, const float *s, const float *t, float temperature,
                                 const int32_t *lengths, float dloss, int64_t B, int64_t T, int64_t V)
{
    /* the forward kernel's "student" gradient T (q' − p') is here d/dt = T (p − q); its "target" gradient
     * T p' (log p' − log q' − KL) is d/ds = T q (log q − log p − KL) */
    pare_kldiv_backward(dt, ds, t, s, temperature, lengths, dloss, B, T, V);
}

/* ---- soft-label cross-entropy ---- */

/* row = −Σ_j y_j log softmax(s)_j = Σ_j y_j (lse − s_j) */
float pare_soft_xent_forward(float *losses, const float *s, const float *y, const int32_t *lengths, int64_t B,
                             int64_t T, int64_t V)
{
    int64_t M = B * T;
#pragma omp parallel for schedule(static) if (M * V > 16384)
    for (int64_t m = 0; m < M; m++) {
        double r = 0.0;
        if (row_valid(lengths, m, T)) {
            const float *sr = s + m * V, *yr = y + m * V;
            double lse = row_lse(sr, 1.0f, V);
            for (int64_t j = 0; j < V; j++) r += (double)yr[j] * (lse - (double)sr[j]);
        }
        losses[m] = (float)r;
    }
    return mean_rows(losses, lengths, B, T, 1.0);
}

/* d row / d s_k = (Σ_j y_j) softmax(s)_k − y_k;  d row / d y_k = lse − s_k */
void pare_soft_xent_backward(float *ds, float *dy, const float *s, const float *y, const int32_t *lengths, float dloss,
                             int64_t B, int64_t T, int64_t V)
{
    int64_t M = B * T, n = pare_loss_rows(lengths, B, T);
    if (!n || (!ds && !dy)) return;
    float g = dloss / (float)n;
#pragma omp parallel for schedule(static) if (M * V > 16384)
    for (int64_t m = 0; m < M; m++) {
        if (!row_valid(lengths, m, T)) continue;
        const float *sr = s + m * V, *yr = y + m * V;
        double lse = row_lse(sr, 1.0f, V), ysum = 0.0;
        for (int64_t j = 0; j < V; j++) ysum += (double)yr[j];
        float fl = (float)lse, fy = (float)ysum;
        for (int64_t j = 0; j < V; j++) {
            if (ds) ds[m * V + j] += g * (fy * nn_expf(sr[j] - fl) - yr[j]);
            if (dy) dy[m * V + j] += g * (fl - sr[j]);
        }
    }
}

/* ---- cosine embedding loss ---- */

#define COS_EPS 1e-8 /* norms below this: the row's cosine is 0, no gradient (loss.h) */

typedef struct cos_row { double dot, na, nb; int ok; } cos_row;

static cos_row cosine_row(const float *a, const float *b, int64_t N)
{
    cos_row r = {0, 0, 0, 0};
    double aa = 0.0, bb = 0.0;
    for (int64_t j = 0; j < N; j++) {
        r.dot += (double)a[j] * (double)b[j];
        aa += (double)a[j] * (double)a[j];
        bb += (double)b[j] * (double)b[j];
    }
    r.na = sqrt(aa), r.nb = sqrt(bb);
    r.ok = r.na >= COS_EPS && r.nb >= COS_EPS;
    return r;
}

float pare_cosine_forward(float *losses, const float *a, const float *b, const int32_t *lengths, int64_t B, int64_t T,
                          int64_t N)
{
    int64_t M = B * T;
#pragma omp parallel for schedule(static) if (M * N > 32768)
    for (int64_t m = 0; m < M; m++) {
        if (!row_valid(lengths, m, T)) {
            losses[m] = 0.0f;
            continue;
        }
        cos_row r = cosine_row(a + m * N, b + m * N, N);
        losses[m] = (float)(1.0 - (r.ok ? r.dot / (r.na * r.nb) : 0.0));
    }
    return mean_rows(losses, lengths, B, T, 1.0);
}

/* From row = 1 − a·b / (|a||b|): d cos/da = b/(|a||b|) − cos·a/|a|², and symmetrically for b. */
void pare_cosine_backward(float *da, float *db, const float *a, const float *b, const int32_t *lengths, float dloss,
                          int64_t B, int64_t T, int64_t N)
{
    int64_t M = B * T, n = pare_loss_rows(lengths, B, T);
    if (!n || (!da && !db)) return;
    double g = (double)dloss / (double)n;
#pragma omp parallel for schedule(static) if (M * N > 32768)
    for (int64_t m = 0; m < M; m++) {
        if (!row_valid(lengths, m, T)) continue;
        const float *x = a + m * N, *y = b + m * N;
        cos_row r = cosine_row(x, y, N);
        if (!r.ok) continue;
        double cs = r.dot / (r.na * r.nb);
        float inv_ab = (float)(-g / (r.na * r.nb)), ca = (float)(g * cs / (r.na * r.na)), cb = (float)(g * cs / (r.nb * r.nb));
        if (da)
#pragma omp simd
            for (int64_t j = 0; j < N; j++) da[m * N + j] += inv_ab * y[j] + ca * x[j];
        if (db)
#pragma omp simd
            for (int64_t j = 0; j < N; j++) db[m * N + j] += inv_ab * x[j] + cb * y[j];
    }
}
