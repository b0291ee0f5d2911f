/* gptq_core.c — GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022, arXiv:2210.17323, Algorithm 1) and
 * round-to-nearest on the same integer grid; the calibration Hessian; the layer objective.
 *
 * The algorithm, for each row w (K) of W independently but sharing H:
 *   1. H += damp·mean(diag H)·I; U = the upper Cholesky factor of H^-1 (H^-1 = U^T U).
 *   2. for i = 0..K-1:  q_i = quant(w_i);  e = (w_i - w^_i) / U[i,i];  w_{i+1..} -= e · U[i, i+1..]
 * Step 2 is the OBS update w -= (w_i - w^_i)/[H_F^-1]_ii · [H_F^-1]_{i,:} with the inverse Hessian of the
 * remaining columns F; the rows of U are exactly the needed rows of those successive inverses.
 * Lazy batches: the update of the columns after the current block of `block` columns is collected and applied
 * once per block as one GEMM, (N,B)·(B,K-i2). The result is the same as column by column (up to rounding of
 * sums), provided a group's scale is only fitted once all earlier columns' updates have reached it: with
 * data-dependent groups (group > 0 without act_order) the block is therefore shrunk so that groups and
 * blocks nest (block a multiple of group, or a divisor of it).
 *
 * U without forming H^-1: with J the reversal permutation, J·H·J = M·M^T (lower Cholesky), so H = R·R^T with
 * R = J·M·J upper and H^-1 = (R^-1)^T·R^-1, i.e. U = R^-1 = J·M^-1·J. One Cholesky and one triangular
 * inverse (recursive, BLAS-3 on the off-diagonal blocks), in place in one K×K double buffer, instead of the
 * reference code's Cholesky, inverse and second Cholesky. We factor ourselves rather than call GSL's
 * gsl_linalg_cholesky_decomp1: GSL reports a matrix that is not positive definite through its global error
 * handler, which aborts unless the whole process turns it off; here that case is an ordinary user error.
 *
 * Not here: the model-level loop over layers and calibration data (the compression pass), packing q,
 * MSE-searched clipping. The grid functions are local (static) copies of pare's shared weight grid.
 *
 * Entry points: pare_gptq_hessian_init/add/free, pare_gptq_quantize, pare_rtn_quantize, pare_gptq_objective,
 * pare_gptq_inv_chol (the factor U alone, which SparseGPT shares).
 */
#include "compress/quant/gptq.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h> /* cblas_d* resolve to OpenBLAS, which is linked before GSL's own CBLAS */

#include "core/cpu.h"

/* ---- the integer grid ---- */

typedef struct grid {
    int sym;
    float qlo, qhi; /* integer range: [-qmax, qmax] or [0, 2^b-1] */
} grid;

static grid grid_make(int bits, int sym)
{
    grid g = {sym, 0.0f, 0.0f};
    if (sym) g.qhi = (float)((1 << (bits - 1)) - 1), g.qlo = -g.qhi;
    else g.qhi = (float)((1 << bits) - 1);
    return g;
}

/* Scale and zero point for values spanning [lo, hi]. */
static void grid_fit(float *scale, int32_t *zero, float lo, float hi, const grid *g)
{
    *scale = 1.0f, *zero = 0;
    if (g->sym) {
        float amax = fmaxf(fabsf(lo), fabsf(hi));
        if (amax > 0.0f) *scale = amax / g->qhi;
    } else {
        lo = fminf(lo, 0.0f), hi = fmaxf(hi, 0.0f);
        if (hi > lo) {
            *scale = (hi - lo) / g->qhi;
            float z = nearbyintf(-lo / *scale);
            *zero = (int32_t)(z < 0.0f ? 0.0f : z > g->qhi ? g->qhi : z);
        }
    }
    /* values so small that the scale underflows to 0 (denormals): they round to 0 with scale 1 */
    if (!(*scale > 0.0f)) *scale = 1.0f, *zero = 0;
}

static inline int32_t grid_q(float x, float scale, int32_t zero, const grid *g)
{
    float r = nearbyintf(x / scale) + (float)zero;
    return (int32_t)(r < g->qlo ? g->qlo : r > g->qhi ? g->qhi : r);
}

static inline float grid_deq(int32_t q, float scale, int32_t zero) { return scale * (float)(q - zero); }

/* ---- argument checks shared by GPTQ and RTN ---- */

static pare_status check_common(const char *who, const int32_t *q, const float *scale, const int32_t *zero,
                                const float *W, int64_t N, int64_t K, int bits, int64_t group, int symmetric)
{
    if (N < 1 || K < 1 || N > INT_MAX || K > INT_MAX)
        return pare_fail(PARE_ESHAPE, "%s: W is (%lld, %lld): both sizes must be in 1..%d", who, (long long)N,
                         (long long)K, INT_MAX);
    if (bits < 2 || bits > 8) return pare_fail(PARE_EINVAL, "%s: bits=%d: must be 2..8", who, bits);
    if (group < 0 || (group > 0 && K % group != 0))
        return pare_fail(PARE_EINVAL, "%s: group=%lld does not divide K=%lld: use 0 (one scale per output row) or "
                         "a divisor of K such as 32, 64 or 128", who, (long long)group, (long long)K);
    if (!q || !scale || !W) return pare_fail(PARE_EINVAL, "%s: q, scale and W must not be NULL", who);
    if (!symmetric && !zero) return pare_fail(PARE_EINVAL, "%s: symmetric=0 needs the zero output (N, ngroups)", who);
    for (int64_t i = 0; i < N * K; i++)
        if (!isfinite(W[i]))
            return pare_fail(PARE_ENUMERIC, "%s: W[%lld, %lld] = %g: weights must be finite", who,
                             (long long)(i / K), (long long)(i % K), (double)W[i]);
    return PARE_OK;
}

/* ---- round to nearest ---- */

pare_status pare_rtn_quantize(int32_t *q, float *scale, int32_t *zero, float *Wq, const float *W, int64_t N,
                              int64_t K, int bits, int64_t group, int symmetric)
{
    PARE_TRY(check_common("rtn", q, scale, zero, W, N, K, bits, group, symmetric));
    const grid g = grid_make(bits, symmetric);
    const int64_t G = group ? group : K, ng = K / G;
#pragma omp parallel for schedule(static) if (N * K >= 65536)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t j = 0; j < ng; j++) {
            const float *w = W + n * K + j * G;
            float lo = w[0], hi = w[0], s;
            int32_t z;
            for (int64_t k = 1; k < G; k++) lo = fminf(lo, w[k]), hi = fmaxf(hi, w[k]);
            grid_fit(&s, &z, lo, hi, &g);
            scale[n * ng + j] = s;
            if (zero) zero[n * ng + j] = z;
            for (int64_t k = 0; k < G; k++) {
                int32_t v = grid_q(w[k], s, z, &g);
                q[n * K + j * G + k] = v;
                if (Wq) Wq[n * K + j * G + k] = grid_deq(v, s, z);
            }
        }
    }
    return PARE_OK;
}

/* ---- the Hessian ---- */

pare_status pare_gptq_hessian_init(pare_gptq_hessian *h, int64_t K)
{
    h->K = 0, h->nsamples = 0, h->H = NULL;
    if (K < 1 || K > 65536) return pare_fail(PARE_EINVAL, "gptq hessian: K=%lld: must be 1..65536", (long long)K);
    h->H = calloc((size_t)(K * K), sizeof *h->H);
    if (!h->H) return pare_fail(PARE_ENOMEM, "gptq hessian: out of memory for (%lld, %lld) doubles", (long long)K,
                                (long long)K);
    h->K = K;
    return PARE_OK;
}

void pare_gptq_hessian_free(pare_gptq_hessian *h)
{
    if (!h) return;
    free(h->H);
    h->H = NULL, h->K = 0, h->nsamples = 0;
}

/* H ← n/(n+r)·H + 2/(n+r)·x^T x, in double, in chunks of rows. */
pare_status pare_gptq_hessian_add(pare_gptq_hessian *h, const float *x, int64_t rows)
{
    if (!h || !h->H) return pare_fail(PARE_EINVAL, "gptq hessian: not initialised (call pare_gptq_hessian_init)");
    if (rows < 0) return pare_fail(PARE_EINVAL, "gptq hessian: rows=%lld: must be >= 0", (long long)rows);
    if (rows == 0) return PARE_OK;
    if (!x) return pare_fail(PARE_EINVAL, "gptq hessian: x is NULL");
    const int64_t K = h->K;
    for (int64_t i = 0; i < rows * K; i++)
        if (!isfinite(x[i]))
            return pare_fail(PARE_ENUMERIC, "gptq hessian: x[%lld, %lld] = %g: calibration inputs must be finite",
                             (long long)(i / K), (long long)(i % K), (double)x[i]);
    enum { CHUNK = 256 };
    double *xd = malloc(sizeof *xd * (size_t)((rows < CHUNK ? rows : CHUNK) * K));
    if (!xd) return pare_fail(PARE_ENOMEM, "gptq hessian: out of memory");
    const double n_new = (double)h->nsamples + (double)rows;
    double beta = (double)h->nsamples / n_new;
    for (int64_t r0 = 0; r0 < rows; r0 += CHUNK) {
        int64_t r = rows - r0 < CHUNK ? rows - r0 : CHUNK;
        for (int64_t i = 0; i < r * K; i++) xd[i] = x[r0 * K + i];
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)K, (int)r, 2.0 / n_new, xd, (int)K, beta, h->H,
                    (int)K);
        beta = 1.0;
    }
    free(xd);
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = i + 1; j < K; j++) h->H[i * K + j] = h->H[j * K + i];
    h->nsamples += rows;
    return PARE_OK;
}

double pare_gptq_objective(const float *W, const float *Wq, const pare_gptq_hessian *h, int64_t N, int64_t K)
{
    if (!h || !h->H || h->K != K || h->nsamples < 1 || N < 1 || K > INT_MAX) return NAN;
    enum { CHUNK = 64 };
    int64_t c = N < CHUNK ? N : CHUNK;
    double *D = malloc(sizeof *D * (size_t)(2 * c * K)), total = 0.0;
    if (!D) return NAN;
    double *T = D + c * K;
    for (int64_t n0 = 0; n0 < N; n0 += CHUNK) {
        int64_t r = N - n0 < CHUNK ? N - n0 : CHUNK;
        for (int64_t i = 0; i < r * K; i++) D[i] = (double)W[n0 * K + i] - (double)Wq[n0 * K + i];
        cblas_dsymm(CblasRowMajor, CblasRight, CblasLower, (int)r, (int)K, 1.0, h->H, (int)K, D, (int)K, 0.0, T,
                    (int)K);
        for (int64_t i = 0; i < r * K; i++) total += D[i] * T[i];
    }
    free(D);
    return total;
}

/* ---- dense linear algebra in place on the lower triangle of a row-major (n,n) block, leading dim lda ---- */

enum { LA_BASE = 64 };

/* A = L·L^T, L overwriting the lower triangle. Returns -1, or the index of the first pivot that is not > 0. */
static int64_t chol_lower(double *A, int64_t n, int64_t lda)
{
    if (n <= LA_BASE) {
        for (int64_t j = 0; j < n; j++) {
            double *aj = A + j * lda, d = aj[j];
            for (int64_t k = 0; k < j; k++) d -= aj[k] * aj[k];
            if (!(d > 0.0) || !isfinite(d)) return j;
            d = sqrt(d);
            aj[j] = d;
            for (int64_t i = j + 1; i < n; i++) {
                double *ai = A + i * lda, s = ai[j];
                for (int64_t k = 0; k < j; k++) s -= ai[k] * aj[k];
                ai[j] = s / d;
            }
        }
        return -1;
    }
    int64_t n1 = n / 2, n2 = n - n1, bad;
    double *A21 = A + n1 * lda, *A22 = A21 + n1;
    if ((bad = chol_lower(A, n1, lda)) >= 0) return bad;
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)n2, (int)n1, 1.0, A, (int)lda,
                A21, (int)lda);
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n2, (int)n1, -1.0, A21, (int)lda, 1.0, A22, (int)lda);
    if ((bad = chol_lower(A22, n2, lda)) >= 0) return n1 + bad;
    return -1;
}

/* L ← L^-1 for lower triangular L with a positive diagonal. */
static void trinv_lower(double *A, int64_t n, int64_t lda)
{
    if (n <= LA_BASE) {
        /* row i of the inverse from the rows above it, overwriting row i left to right: X[i,j] needs only
         * L[i, j..i-1], which are still the original values */
        for (int64_t i = 0; i < n; i++) {
            double *ai = A + i * lda, rd = 1.0 / ai[i];
            for (int64_t j = 0; j < i; j++) {
                double s = 0.0;
                for (int64_t k = j; k < i; k++) s += ai[k] * A[k * lda + j];
                ai[j] = -s * rd;
            }
            ai[i] = rd;
        }
        return;
    }
    /* [[L11, 0], [L21, L22]]^-1 = [[L11^-1, 0], [-L22^-1·L21·L11^-1, L22^-1]] */
    int64_t n1 = n / 2, n2 = n - n1;
    double *A21 = A + n1 * lda, *A22 = A21 + n1;
    trinv_lower(A, n1, lda);
    trinv_lower(A22, n2, lda);
    cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (int)n2, (int)n1, -1.0, A,
                (int)lda, A21, (int)lda);
    cblas_dtrmm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, (int)n2, (int)n1, 1.0, A22,
                (int)lda, A21, (int)lda);
}

/* ---- the upper Cholesky factor of the dampened inverse Hessian (shared with SparseGPT) ---- */

pare_status pare_gptq_inv_chol(double *A, const pare_gptq_hessian *h, const int64_t *perm, double damp_frac,
                               const char *who)
{
    const int64_t K = h->K;
    const double *H = h->H;
    double dmean = 0.0;
    for (int64_t i = 0; i < K; i++) dmean += H[i * K + i] == 0.0 ? 1.0 : H[i * K + i];
    dmean /= (double)K;
    /* A = J·P^T·(H + damp)·P·J, with dead diagonals set to 1 */
    const double damp = damp_frac * dmean;
    for (int64_t i = 0; i < K; i++) {
        const int64_t pi = perm ? perm[K - 1 - i] : K - 1 - i;
        for (int64_t j = 0; j <= i; j++) A[i * K + j] = H[pi * K + (perm ? perm[K - 1 - j] : K - 1 - j)];
        if (H[pi * K + pi] == 0.0) A[i * K + i] = 1.0;
        A[i * K + i] += damp;
    }
    int64_t bad = chol_lower(A, K, K);
    if (bad >= 0)
        return pare_fail(PARE_ENUMERIC, "%s: the Hessian is not positive definite after dampening (damp=%g, at "
                         "input column %lld): raise damp (e.g. 0.1) or use more calibration samples than K=%lld",
                         who, damp_frac, (long long)(perm ? perm[K - 1 - bad] : K - 1 - bad), (long long)K);
    trinv_lower(A, K, K);
    /* U = J·M^-1·J: each strictly lower A[i,j] moves to the strictly upper A[K-1-i, K-1-j] (never a source),
     * the diagonal is reversed */
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < i; j++) {
            A[(K - 1 - i) * K + (K - 1 - j)] = A[i * K + j];
            A[i * K + j] = 0.0;
        }
    for (int64_t i = 0; i < K / 2; i++) {
        double t = A[i * K + i];
        A[i * K + i] = A[(K - 1 - i) * K + (K - 1 - i)];
        A[(K - 1 - i) * K + (K - 1 - i)] = t;
    }
    return PARE_OK;
}

/* ---- GPTQ ---- */

typedef struct diag_idx {
    double d;
    int64_t i;
} diag_idx;

static int by_diag_desc(const void *a, const void *b)
{
    const diag_idx *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i); /* ties in column order: a deterministic, stable permutation */
}

/* One block [i1, i2) of one row: quantize each column, spread its error over the rest of the block, and keep
 * the scaled errors for the update of the columns after the block. w (K) permuted working row; U (K,K). */
PARE_HOT static void gptq_row_block(int32_t *qrow, float *wqrow, float *srow, int32_t *zrow, double *e, double *w,
                                    const double *U, const int64_t *perm, const grid *g, int64_t G, int dynamic,
                                    int64_t i1, int64_t i2, int64_t K)
{
    for (int64_t i = i1; i < i2; i++) {
        if (dynamic && i % G == 0) { /* fit the group to its columns as they are now */
            float lo = (float)w[i], hi = lo;
            for (int64_t k = i + 1; k < i + G; k++) {
                float v = (float)w[k];
                lo = fminf(lo, v), hi = fmaxf(hi, v);
            }
            int32_t z;
            grid_fit(&srow[i / G], &z, lo, hi, g);
            if (zrow) zrow[i / G] = z;
        }
        const int64_t col = perm[i], gi = col / G;
        const float s = srow[gi];
        const int32_t z = zrow ? zrow[gi] : 0;
        const int32_t v = grid_q((float)w[i], s, z, g);
        const float deq = grid_deq(v, s, z);
        qrow[col] = v;
        if (wqrow) wqrow[col] = deq;
        const double *u = U + i * K;
        const double err = (w[i] - (double)deq) / u[i];
        e[i - i1] = err;
        for (int64_t j = i + 1; j < i2; j++) w[j] -= err * u[j];
    }
}

pare_status pare_gptq_quantize(int32_t *q, float *scale, int32_t *zero, float *Wq, const float *W,
                               const pare_gptq_hessian *h, int64_t N, int64_t K, const pare_gptq_opts *o,
                               double *err_out)
{
    if (!o) return pare_fail(PARE_EINVAL, "gptq: options are NULL (use PARE_GPTQ_OPTS_DEFAULT)");
    PARE_TRY(check_common("gptq", q, scale, zero, W, N, K, o->bits, o->group, o->symmetric));
    if (!(o->damp >= 0.0) || !isfinite(o->damp))
        return pare_fail(PARE_EINVAL, "gptq: damp=%g: must be a finite number >= 0 (fraction of mean(diag(H)); "
                         "default 0.01)", o->damp);
    if (o->block < 0)
        return pare_fail(PARE_EINVAL, "gptq: block=%lld: must be >= 1 (0 means the default, 128)",
                         (long long)o->block);
    if (!h || !h->H || h->K != K)
        return pare_fail(PARE_ESHAPE, "gptq: the Hessian is for K=%lld inputs but W is (%lld, %lld)",
                         h ? (long long)h->K : 0LL, (long long)N, (long long)K);
    if (h->nsamples < 1)
        return pare_fail(PARE_EINVAL, "gptq: the Hessian has no calibration samples: add inputs with "
                         "pare_gptq_hessian_add (calibration set empty?)");

    const grid g = grid_make(o->bits, o->symmetric);
    const int64_t G = o->group ? o->group : K, ng = K / G;
    const int dynamic = o->group > 0 && !o->act_order;
    int64_t B = o->block ? o->block : 128;
    if (B > K) B = K;
    if (dynamic) { /* make blocks and groups nest, so that every group is fitted after all earlier updates */
        if (G <= B) B -= B % G;
        else
            while (G % B) B--;
    }

    pare_status st = PARE_OK;
    double *A = malloc(sizeof *A * (size_t)(K * K)), *Wd = malloc(sizeof *Wd * (size_t)(N * K));
    double *E = malloc(sizeof *E * (size_t)(N * B));
    int64_t *perm = malloc(sizeof *perm * (size_t)K);
    diag_idx *di = malloc(sizeof *di * (size_t)K);
    if (!A || !Wd || !E || !perm || !di) {
        st = pare_fail(PARE_ENOMEM, "gptq: out of memory for K=%lld, N=%lld", (long long)K, (long long)N);
        goto done;
    }

    /* dead inputs: H[i,i] = 1 and W[:,i] = 0 */
    const double *H = h->H;
    for (int64_t i = 0; i < K; i++) di[i].d = H[i * K + i] == 0.0 ? 1.0 : H[i * K + i], di[i].i = i;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) Wd[n * K + k] = H[k * K + k] == 0.0 ? 0.0 : (double)W[n * K + k];

    /* group parameters fixed in advance: per channel, and the static groups of act_order */
    if (!dynamic) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < ng; j++) {
                const double *w = Wd + n * K + j * G;
                float lo = (float)w[0], hi = lo;
                int32_t z;
                for (int64_t k = 1; k < G; k++) lo = fminf(lo, (float)w[k]), hi = fmaxf(hi, (float)w[k]);
                grid_fit(&scale[n * ng + j], &z, lo, hi, &g);
                if (zero) zero[n * ng + j] = z;
            }
    }

    /* visiting order */
    if (o->act_order) qsort(di, (size_t)K, sizeof *di, by_diag_desc);
    for (int64_t i = 0; i < K; i++) perm[i] = di[i].i;
    if (o->act_order) {
        double *row = (double *)di; /* K doubles of scratch (diag_idx is larger than a double) */
        for (int64_t n = 0; n < N; n++) {
            for (int64_t i = 0; i < K; i++) row[i] = Wd[n * K + perm[i]];
            memcpy(Wd + n * K, row, sizeof *row * (size_t)K);
        }
    }

    st = pare_gptq_inv_chol(A, h, perm, o->damp, "gptq");
    if (st != PARE_OK) goto done;
    const double *U = A;

    for (int64_t i1 = 0; i1 < K; i1 += B) {
        const int64_t i2 = i1 + B < K ? i1 + B : K, b = i2 - i1;
#pragma omp parallel for schedule(static) if (N * b >= 4096)
        for (int64_t n = 0; n < N; n++)
            gptq_row_block(q + n * K, Wq ? Wq + n * K : NULL, scale + n * ng, zero ? zero + n * ng : NULL, E + n * b,
                           Wd + n * K, U, perm, &g, G, dynamic, i1, i2, K);
        if (i2 < K)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)(K - i2), (int)b, -1.0, E, (int)b,
                        U + i1 * K + i2, (int)K, 1.0, Wd + i2, (int)K);
    }

    if (err_out) {
        if (Wq) *err_out = pare_gptq_objective(W, Wq, h, N, K);
        else { /* rebuild W^ row by row in the q buffer's order */
            float *tmp = malloc(sizeof *tmp * (size_t)(N * K));
            if (!tmp) {
                st = pare_fail(PARE_ENOMEM, "gptq: out of memory for the objective");
                goto done;
            }
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < K; k++)
                    tmp[n * K + k] = grid_deq(q[n * K + k], scale[n * ng + k / G], zero ? zero[n * ng + k / G] : 0);
            *err_out = pare_gptq_objective(W, tmp, h, N, K);
            free(tmp);
        }
    }

done:
    free(A), free(Wd), free(E), free(perm), free(di);
    return st;
}
