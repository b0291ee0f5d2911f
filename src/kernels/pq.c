/* pq.c — product quantization of Linear weights: deterministic k-means (k-means++ then Lloyd), the PQ storage
 * (uint8 codes + an f32 or f16 codebook), its dequantization, and the lookup-table Linear kernel with its
 * dequantize-then-f32 reference. The formulas and the choice of kernel are in pq.h.
 * Deliberately not here: packed sub-byte codes, activation-weighted k-means, a backward pass (pq.h). */
#include "pq.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "kernels/gemm.h"

#define PQ_PAR_MIN_WORK (1 << 16)

static double dist2(const float *a, const float *b, int64_t d)
{
    double s = 0;
    for (int64_t e = 0; e < d; e++) {
        double t = (double)a[e] - (double)b[e];
        s += t * t;
    }
    return s;
}

static int64_t nearest(double *best, const float *x, const float *C, int64_t d, int64_t k)
{
    double b = DBL_MAX;
    int64_t bc = 0;
    for (int64_t c = 0; c < k; c++) {
        double t = dist2(x, C + c * d, d);
        if (t < b) b = t, bc = c;
    }
    *best = b;
    return bc;
}

/* nearest centroid of each point, its squared distance into dmin (may be NULL); returns the sum, added in point
 * order whatever the thread count (a reduction clause would add the threads' partial sums in any order) */
static double assign_all(uint8_t *assign, double *dmin, const float *X, int64_t n, int64_t d, const float *C, int64_t k)
{
    double sum = 0, *dist = dmin;
    if (n * k * d < PQ_PAR_MIN_WORK || (!dist && !(dist = malloc(sizeof *dist * (size_t)n)))) {
        for (int64_t i = 0; i < n; i++) { /* small, or no memory for the distances: one thread */
            double b;
            assign[i] = (uint8_t)nearest(&b, X + i * d, C, d, k);
            if (dmin) dmin[i] = b;
            sum += b;
        }
        return sum;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) assign[i] = (uint8_t)nearest(&dist[i], X + i * d, C, d, k);
    for (int64_t i = 0; i < n; i++) sum += dist[i];
    if (dist != dmin) free(dist);
    return sum;
}

double pare_pq_assign(uint8_t *assign, const float *X, int64_t n, int64_t d, const float *centroids, int64_t k)
{
    return assign_all(assign, NULL, X, n, d, centroids, k);
}

/* k-means++: the first centroid uniform, each next one a point drawn with probability ∝ its squared distance
 * to the nearest centroid chosen so far (uniform again when every point sits on a centroid) */
static void kmeanspp(float *C, const float *X, int64_t n, int64_t d, int64_t k, pare_rng *r, double *D)
{
    int64_t first = (int64_t)pare_rng_below(r, (uint64_t)n);
    memcpy(C, X + first * d, sizeof(float) * (size_t)d);
    for (int64_t i = 0; i < n; i++) D[i] = dist2(X + i * d, C, d);
    for (int64_t c = 1; c < k; c++) {
        double total = 0;
        for (int64_t i = 0; i < n; i++) total += D[i];
        int64_t pick = n - 1;
        if (total > 0) {
            double u = pare_rng_uniform(r) * total, acc = 0;
            for (int64_t i = 0; i < n; i++) {
                acc += D[i];
                if (u < acc && D[i] > 0) { pick = i; break; }
            }
            while (D[pick] == 0 && pick > 0) pick--; /* u at the very top: the last point with mass */
        } else {
            pick = (int64_t)pare_rng_below(r, (uint64_t)n);
        }
        memcpy(C + c * d, X + pick * d, sizeof(float) * (size_t)d);
        for (int64_t i = 0; i < n; i++) {
            double t = dist2(X + i * d, C + c * d, d);
            if (t < D[i]) D[i] = t;
        }
    }
}

static pare_status kmeans_check(int64_t n, int64_t d, int64_t k, int iters)
{
    if (d < 1) return pare_fail(PARE_EINVAL, "kmeans: d=%lld: the points need at least one dimension", (long long)d);
    if (k < 1 || k > PARE_PQ_MAX_K || k > n)
        return pare_fail(PARE_EINVAL, "kmeans: k=%lld centroids: must be in [1, %lld] (at most 256, at most the %lld points)",
                         (long long)k, (long long)(n < PARE_PQ_MAX_K ? n : PARE_PQ_MAX_K), (long long)n);
    if (iters < 0) return pare_fail(PARE_EINVAL, "kmeans: iters=%d: must be >= 0", iters);
    return PARE_OK;
}

/* Lloyd's iterations from the centroids given; D (n) scratch */
static pare_status lloyd(float *centroids, uint8_t *assign, double *err, const float *X, int64_t n, int64_t d, int64_t k,
                         int iters, double *D)
{
    double *sum = malloc(sizeof *sum * (size_t)(k * d));
    int64_t *cnt = malloc(sizeof *cnt * (size_t)k);
    if (!sum || !cnt) {
        free(sum), free(cnt);
        return pare_fail(PARE_ENOMEM, "kmeans: out of memory (%lld centroids of %lld)", (long long)k, (long long)d);
    }
    double e = assign_all(assign, NULL, X, n, d, centroids, k);
    if (err) err[0] = e;
    for (int it = 1; it <= iters; it++) {
        /* means of the clusters (double sums, in point order) */
        memset(sum, 0, sizeof *sum * (size_t)(k * d));
        memset(cnt, 0, sizeof *cnt * (size_t)k);
        for (int64_t i = 0; i < n; i++) {
            int64_t c = assign[i];
            cnt[c]++;
            for (int64_t j = 0; j < d; j++) sum[c * d + j] += X[i * d + j];
        }
        for (int64_t c = 0; c < k; c++)
            if (cnt[c])
                for (int64_t j = 0; j < d; j++) centroids[c * d + j] = (float)(sum[c * d + j] / (double)cnt[c]);
        /* an empty cluster takes the point farthest from its (new) centroid; that point is then not taken again */
        int any_empty = 0;
        for (int64_t c = 0; c < k; c++) any_empty |= cnt[c] == 0;
        if (any_empty) {
            for (int64_t i = 0; i < n; i++) D[i] = dist2(X + i * d, centroids + (int64_t)assign[i] * d, d);
            for (int64_t c = 0; c < k; c++) {
                if (cnt[c]) continue;
                int64_t far = 0;
                for (int64_t i = 1; i < n; i++)
                    if (D[i] > D[far]) far = i;
                memcpy(centroids + c * d, X + far * d, sizeof(float) * (size_t)d);
                D[far] = -1.0;
            }
        }
        e = assign_all(assign, NULL, X, n, d, centroids, k);
        if (err) err[it] = e;
    }
    free(sum), free(cnt);
    return PARE_OK;
}

pare_status pare_kmeans(float *centroids, uint8_t *assign, double *err, const float *X, int64_t n, int64_t d, int64_t k,
                        int iters, uint64_t seed)
{
    PARE_TRY(kmeans_check(n, d, k, iters));
    double *D = malloc(sizeof *D * (size_t)n);
    if (!D) return pare_fail(PARE_ENOMEM, "kmeans: out of memory (%lld points of %lld)", (long long)n, (long long)d);
    pare_rng r;
    pare_rng_seed(&r, seed);
    kmeanspp(centroids, X, n, d, k, &r, D);
    pare_status st = lloyd(centroids, assign, err, X, n, d, k, iters, D);
    free(D);
    return st;
}

pare_status pare_kmeans_from(float *centroids, uint8_t *assign, double *err, const float *X, int64_t n, int64_t d,
                             int64_t k, int iters)
{
    PARE_TRY(kmeans_check(n, d, k, iters));
    double *D = malloc(sizeof *D * (size_t)n);
    if (!D) return pare_fail(PARE_ENOMEM, "kmeans: out of memory (%lld points of %lld)", (long long)n, (long long)d);
    pare_status st = lloyd(centroids, assign, err, X, n, d, k, iters, D);
    free(D);
    return st;
}

void pare_pq_free(pare_pq_weight *w)
{
    if (!w) return;
    pare_free(w->codes), pare_free(w->cb), pare_free(w->cb16);
    w->codes = NULL, w->cb = NULL, w->cb16 = NULL;
}

pare_status pare_pq_quantize(pare_pq_weight *out, const float *W, int64_t N, int64_t K, int64_t d, int64_t k, int iters,
                             uint64_t seed, int f16, double *err)
{
    memset(out, 0, sizeof *out);
    if (d < 1 || K % d)
        return pare_fail(PARE_EINVAL, "pq: block=%lld must divide the weight's %lld input features", (long long)d, (long long)K);
    int64_t nb = N * (K / d);
    if (k < 1 || k > PARE_PQ_MAX_K || k > nb)
        return pare_fail(PARE_EINVAL, "pq: k=%lld centroids: must be in [1, %lld] (at most 256, at most the %lld blocks of the "
                         "(%lld, %lld) weight)", (long long)k, (long long)(nb < PARE_PQ_MAX_K ? nb : PARE_PQ_MAX_K),
                         (long long)nb, (long long)N, (long long)K);
    *out = (pare_pq_weight){.N = N, .K = K, .d = d, .k = k, .f16 = f16 ? 1 : 0};
    out->codes = pare_alloc((size_t)nb);
    out->cb = pare_alloc(sizeof(float) * (size_t)(k * d));
    if (!out->codes || !out->cb) {
        pare_pq_free(out);
        return pare_fail(PARE_ENOMEM, "pq: out of memory");
    }
    pare_status st = pare_kmeans(out->cb, out->codes, err, W, nb, d, k, iters, seed);
    if (st != PARE_OK || !f16) {
        if (st != PARE_OK) pare_pq_free(out);
        return st;
    }
    out->cb16 = pare_alloc(sizeof(uint16_t) * (size_t)(k * d));
    if (!out->cb16) {
        pare_pq_free(out);
        return pare_fail(PARE_ENOMEM, "pq: out of memory");
    }
    for (int64_t i = 0; i < k * d; i++) {
        out->cb16[i] = pare_f32_to_f16(out->cb[i]);
        out->cb[i] = pare_f16_to_f32(out->cb16[i]);
    }
    pare_pq_assign(out->codes, W, nb, d, out->cb, k); /* the nearest of the centroids as stored */
    pare_free(out->cb);
    out->cb = NULL;
    return PARE_OK;
}

const float *pare_pq_codebook(const pare_pq_weight *w, float *buf)
{
    if (!w->f16) return w->cb;
    for (int64_t i = 0; i < w->k * w->d; i++) buf[i] = pare_f16_to_f32(w->cb16[i]);
    return buf;
}

void pare_pq_dequantize(float *W, const pare_pq_weight *w)
{
    float buf[PARE_PQ_MAX_K * 16], *tmp = !w->f16 || w->d <= 16 ? buf : malloc(sizeof(float) * (size_t)(w->k * w->d));
    const float *C = w->f16 && tmp ? pare_pq_codebook(w, tmp) : w->cb;
    if (!C) return; /* out of memory widening an f16 codebook wider than 16: W is left as it was */
    int64_t nb = w->N * (w->K / w->d);
    for (int64_t b = 0; b < nb; b++) memcpy(W + b * w->d, C + (int64_t)w->codes[b] * w->d, sizeof(float) * (size_t)w->d);
    if (tmp != buf) free(tmp);
}

size_t pare_pq_bytes(const pare_pq_weight *w)
{
    return (size_t)(w->N * (w->K / w->d)) + (size_t)(w->k * w->d) * (w->f16 ? 2 : 4);
}

/* workspace: the codebook transposed (d, k) and one row's table (K/d, k) */
size_t pare_pq_workspace(const pare_pq_weight *w, int64_t M)
{
    (void)M;
    return sizeof(float) * (size_t)(w->d * w->k + (w->K / w->d) * w->k) + 64;
}

pare_status pare_linear_pq(float *y, const float *x, const pare_pq_weight *w, const float *bias, int64_t M, void *ws)
{
    int64_t N = w->N, K = w->K, d = w->d, k = w->k, nb = K / d;
    float *CT = ws, *T = CT + d * k; /* CT (d, k): the table's inner loop runs along the centroids */
    for (int64_t c = 0; c < k; c++)
        for (int64_t e = 0; e < d; e++)
            CT[e * k + c] = w->f16 ? pare_f16_to_f32(w->cb16[c * d + e]) : w->cb[c * d + e];
#pragma omp parallel if (N * K >= PQ_PAR_MIN_WORK)
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * K;
        float *yr = y + m * N;
#pragma omp for schedule(static)
        for (int64_t j = 0; j < nb; j++) { /* T[j, c] = Σ_e x[j·d + e] · C[c, e] */
            float *Tj = T + j * k;
            for (int64_t c = 0; c < k; c++) Tj[c] = 0.0f;
            for (int64_t e = 0; e < d; e++) {
                float xv = xr[j * d + e];
                const float *ce = CT + e * k;
                for (int64_t c = 0; c < k; c++) Tj[c] += xv * ce[c];
            }
        }
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) { /* y[n] = bias[n] + Σ_j T[j, codes[n, j]], four partial sums */
            const uint8_t *cn = w->codes + n * nb;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int64_t j = 0;
            for (; j + 4 <= nb; j += 4) {
                s0 += T[j * k + cn[j]];
                s1 += T[(j + 1) * k + cn[j + 1]];
                s2 += T[(j + 2) * k + cn[j + 2]];
                s3 += T[(j + 3) * k + cn[j + 3]];
            }
            for (; j < nb; j++) s0 += T[j * k + cn[j]];
            yr[n] = (bias ? bias[n] : 0.0f) + ((s0 + s1) + (s2 + s3));
        }
    }
    return PARE_OK;
}

pare_status pare_linear_pq_ref(float *y, const float *x, const pare_pq_weight *w, const float *bias, int64_t M)
{
    float *W = malloc(sizeof(float) * (size_t)(w->N * w->K));
    if (!W) return pare_fail(PARE_ENOMEM, "pq reference: out of memory");
    pare_pq_dequantize(W, w);
    pare_linear_f32_ref(y, x, W, bias, M, w->N, w->K);
    free(W);
    return PARE_OK;
}
