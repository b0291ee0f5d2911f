/* test_gemm.c — the f32 and int8 matrix products of kernels/gemm.h against their references.
 *
 * f32: pare_sgemm vs pare_sgemm_ref for the four transposition combinations, odd sizes, padded
 * leading dimensions, alpha/beta and beta = 0 over a NaN-filled C; Linear forward vs reference and its
 * backward vs explicit double loops and central differences (it must ADD into the gradients).
 * f32 packed: pare_linear_f32_packed and _packed_gelu vs pare_linear_f32_ref (+ pare_gelu_forward) for
 * M = 1, 7, 129 and N, K not multiples of 16, with and without bias; repeated calls with changing M and
 * thread count on one handle (its primitive cache); two OpenMP threads calling one handle at once; the
 * handle independent of W after packing; argument errors.
 * int8: weight quantization round trip (|W − q·s| <= s/2), zero rows, colsum, size, NaN/Inf rejection,
 * free twice; per-token quantization fast vs reference bit for bit; pare_gemm_s8s8s32 EXACTLY equal to
 * the reference including −128/127 extremes; the dynamic int8 Linear vs its reference (tight) and vs
 * the f32 Linear (loose), for M = 1, K not a multiple of 4/16/64, with and without bias, on both int8
 * paths (u8s8 with VNNI, s8s8 for large K), bit for bit; the packed-weight path against the GEMM path and
 * the reference for M = 1…40 and 128, 1 and 2 threads, concurrent callers and y == x. A forked child
 * re-checks the int8 kernels (and the f32 packed Linear) with oneDNN limited to AVX2 (no VNNI) and the portable row kernels, as on a CPU without AVX-512 (oneDNN's ISA
 * can only be limited before its first use, hence the fork at the top of main). No timing is asserted.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <dnnl.h>

#include "core/cpu.h"
#include "core/rng.h"
#include "core/status.h"
#include "kernels/gemm.h"
#include "kernels/nn.h"
#include "tap.h"
#include "test_rand.h" /* g_rng, xalloc, randn */

static float *uniform(int64_t n, float lo, float hi)
{
    float *x = xalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)pare_rng_uniform(&g_rng);
    return x;
}
static int8_t *rand_s8(int64_t n)
{
    int8_t *x = xalloc((size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (int8_t)((int)pare_rng_below(&g_rng, 256) - 128);
    return x;
}
static float *copy_f(const float *x, int64_t n)
{
    float *y = xalloc((size_t)n * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}

/* ---- f32 ---- */

static void test_sgemm_one(int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t pad, float alpha, float beta)
{
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    float *A = uniform(arows * lda, -1, 1), *B = uniform(brows * ldb, -1, 1);
    float *C = uniform(M * ldc, -1, 1);
    if (beta == 0.0f)
        for (int64_t i = 0; i < M * ldc; i++) C[i] = NAN; /* must not be read */
    float *Cr = copy_f(C, M * ldc);
    pare_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    pare_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cr, ldc);
    /* compare the M×N window only (padding stays as it was, checked separately) */
    float *g = xalloc((size_t)(M * N) * sizeof(float)), *w = xalloc((size_t)(M * N) * sizeof(float));
    int pad_kept = 1;
    for (int64_t m = 0; m < M; m++) {
        memcpy(g + m * N, C + m * ldc, (size_t)N * sizeof(float));
        memcpy(w + m * N, Cr + m * ldc, (size_t)N * sizeof(float));
        for (int64_t n = N; n < ldc; n++)
            if (memcmp(&C[m * ldc + n], &Cr[m * ldc + n], sizeof(float))) pad_kept = 0;
    }
    char what[160];
    snprintf(what, sizeof what, "sgemm %c%c M=%lld N=%lld K=%lld pad=%lld alpha=%g beta=%g vs ref", ta ? 'T' : 'N',
             tb ? 'T' : 'N', (long long)M, (long long)N, (long long)K, (long long)pad, alpha, beta);
    is_close_arr(g, w, (long)(M * N), 2e-5 * sqrt((double)K), 1e-5, what);
    if (pad) ok(pad_kept, "sgemm %c%c: padding columns of C untouched", ta ? 'T' : 'N', tb ? 'T' : 'N');
    free(A), free(B), free(C), free(Cr), free(g), free(w);
}

static void test_sgemm(void)
{
    static const int64_t sizes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {128, 768, 64}};
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            test_sgemm_one(t >> 1, t & 1, sizes[s][0], sizes[s][1], sizes[s][2], 0, 1.0f, 0.0f);
    for (int t = 0; t < 4; t++) test_sgemm_one(t >> 1, t & 1, 19, 23, 31, 3, 0.75f, -0.5f);
    test_sgemm_one(0, 1, 5, 4, 3, 0, 1.0f, 1.0f);

    /* K = 0: C = beta·C */
    float C[4] = {1, 2, 3, 4}, A[1] = {0}, B[1] = {0}, want[4] = {0.5f, 1, 1.5f, 2};
    pare_sgemm(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.5f, C, 2);
    is_close_arr(C, want, 4, 0, 0, "sgemm K=0 scales C by beta");
}

/* y = x W^T + b, written here in double */
static void linear_d(double *y, const float *x, const float *W, const float *b, int64_t M, int64_t N, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = b ? b[n] : 0;
            for (int64_t k = 0; k < K; k++) s += (double)x[m * K + k] * W[n * K + k];
            y[m * N + n] = s;
        }
}
/* L = Σ y·R in double */
static double loss_d(const float *x, const float *W, const float *b, const float *R, int64_t M, int64_t N, int64_t K)
{
    double *y = xalloc((size_t)(M * N) * sizeof(double)), L = 0;
    linear_d(y, x, W, b, M, N, K);
    for (int64_t i = 0; i < M * N; i++) L += y[i] * R[i];
    free(y);
    return L;
}

static void test_linear_f32(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {1, 768, 768}, {7, 13, 5}, {33, 17, 65}, {64, 96, 130}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *x = randn(M * K, 1), *W = randn(N * K, 0.1f), *b = randn(N, 1);
        float *y = uniform(M * N, -1, 1), *yr = uniform(M * N, -1, 1);
        for (int wb = 0; wb < 2; wb++) {
            pare_linear_f32(y, x, W, wb ? b : NULL, M, N, K);
            pare_linear_f32_ref(yr, x, W, wb ? b : NULL, M, N, K);
            char what[128];
            snprintf(what, sizeof what, "linear f32 M=%lld N=%lld K=%lld %s vs ref", (long long)M, (long long)N,
                     (long long)K, wb ? "bias" : "no bias");
            is_close_arr(y, yr, (long)(M * N), 1e-5 * sqrt((double)K), 1e-5, what);
        }
        free(x), free(W), free(b), free(y), free(yr);
    }

    /* backward: explicit double loops, adding to nonzero gradients */
    int64_t M = 9, N = 11, K = 21;
    float *x = randn(M * K, 1), *W = randn(N * K, 0.3f), *b = randn(N, 1), *dy = randn(M * N, 1);
    float *dx = randn(M * K, 1), *dW = randn(N * K, 1), *db = randn(N, 1);
    float *dx0 = copy_f(dx, M * K), *dW0 = copy_f(dW, N * K), *db0 = copy_f(db, N);
    pare_linear_f32_backward(dx, dW, db, dy, x, W, M, N, K);
    float *ex = xalloc((size_t)(M * K) * sizeof(float)), *eW = xalloc((size_t)(N * K) * sizeof(float));
    float *eb = xalloc((size_t)N * sizeof(float));
    ref_linear_backward(ex, eW, eb, dx0, dW0, db0, dy, x, W, M, N, K);
    is_close_arr(dx, ex, (long)(M * K), 1e-5, 1e-5, "linear backward dx adds dy·W");
    is_close_arr(dW, eW, (long)(N * K), 1e-5, 1e-5, "linear backward dW adds dy^T·x");
    is_close_arr(db, eb, (long)N, 1e-5, 1e-5, "linear backward dbias adds Σ_m dy");

    /* NULL gradients are skipped */
    memcpy(dW, dW0, (size_t)(N * K) * sizeof(float));
    pare_linear_f32_backward(NULL, dW, NULL, dy, x, W, M, N, K);
    is_close_arr(dW, eW, (long)(N * K), 1e-5, 1e-5, "linear backward with dx = dbias = NULL");

    /* central differences of L = Σ y·R, from zeroed gradients (L is linear in each parameter) */
    memset(dx, 0, (size_t)(M * K) * sizeof(float));
    memset(dW, 0, (size_t)(N * K) * sizeof(float));
    memset(db, 0, (size_t)N * sizeof(float));
    pare_linear_f32_backward(dx, dW, db, dy, x, W, M, N, K);
    const float h = 1e-2f;
    double worst = 0;
    for (int which = 0; which < 3; which++) {
        float *p = which == 0 ? x : which == 1 ? W : b, *g = which == 0 ? dx : which == 1 ? dW : db;
        int64_t n = which == 0 ? M * K : which == 1 ? N * K : N;
        for (int64_t i = 0; i < n; i += 3) {
            float v = p[i];
            p[i] = v + h;
            double Lp = loss_d(x, W, b, dy, M, N, K);
            p[i] = v - h;
            double Lm = loss_d(x, W, b, dy, M, N, K);
            p[i] = v;
            double fd = (Lp - Lm) / ((double)(v + h) - (double)(v - h));
            double e = fabs(fd - g[i]) / (1e-3 + fabs(fd));
            if (e > worst) worst = e;
        }
    }
    ok(worst < 1e-4, "linear backward vs central differences (worst rel err %.2g)", worst);
    free(x), free(W), free(b), free(dy), free(dx), free(dW), free(db), free(dx0), free(dW0), free(db0);
    free(ex), free(eW), free(eb);
}

/* ---- f32 on packed weights ---- */

/* y = x·W^T + b via pare_linear_f32_packed (gelu: _packed_gelu) against the reference (gelu:
 * pare_linear_f32_ref then pare_gelu_forward); returns 1 if close. Thread-safe when quiet. */
static int packed_check(const pare_f32_packed *wp, const float *x, const float *W, const float *b, int64_t M, int64_t N,
                        int64_t K, int gelu, int quiet)
{
    float *y = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4); /* no rng: called from threads */
    for (int64_t i = 0; i < M * N; i++) y[i] = NAN; /* every output must be written */
    pare_status st = gelu ? pare_linear_f32_packed_gelu(y, x, wp, b, M) : pare_linear_f32_packed(y, x, wp, b, M);
    pare_linear_f32_ref(yr, x, W, b, M, N, K);
    if (gelu) pare_gelu_forward(yr, yr, M * N);
    int good = st == PARE_OK;
    double atol = 1e-5 * sqrt((double)K), rtol = 1e-5;
    if (quiet) {
        for (int64_t i = 0; good && i < M * N; i++)
            good = fabs((double)y[i] - yr[i]) <= atol + rtol * fabs((double)yr[i]);
    } else {
        char what[160];
        snprintf(what, sizeof what, "linear f32 packed%s M=%lld N=%lld K=%lld %s vs ref", gelu ? "+gelu" : "",
                 (long long)M, (long long)N, (long long)K, b ? "bias" : "no bias");
        if (!ok(st == PARE_OK, "%s: status %s", what, st ? pare_errmsg() : "OK")) good = 0;
        else good = is_close_arr(y, yr, (long)(M * N), atol, rtol, what);
    }
    free(y), free(yr);
    return good;
}

static void test_linear_f32_packed(void)
{
    /* N, K not multiples of 16 (the blocked layout pads them), M = 1, 7, 129 */
    static const int64_t nk[][2] = {{1, 1}, {33, 37}, {50, 100}, {65, 3001}, {768, 768}};
    static const int64_t Ms[] = {1, 7, 129};
    for (size_t s = 0; s < sizeof nk / sizeof nk[0]; s++) {
        int64_t N = nk[s][0], K = nk[s][1];
        float *W = randn(N * K, 0.1f), *b = randn(N, 1);
        pare_f32_packed *wp = NULL;
        pare_status st = pare_f32_weight_pack(&wp, W, N, K);
        if (!ok(st == PARE_OK && wp, "pack f32 N=%lld K=%lld: %s", (long long)N, (long long)K, st ? pare_errmsg() : "OK"))
            continue;
        int64_t pn = 0, pk = 0;
        pare_f32_packed_shape(wp, &pn, &pk);
        ok(pn == N && pk == K && pare_f32_packed_bytes(wp) >= (size_t)(N * K) * 4,
           "packed N=%lld K=%lld: shape kept, %zu bytes >= 4·N·K (impl %s)", (long long)N, (long long)K,
           pare_f32_packed_bytes(wp), pare_f32_packed_impl(wp));
        /* the same handle, M changing between calls: one cached primitive per M, reused */
        for (int rep = 0; rep < 2; rep++)
            for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
                int64_t M = Ms[mi];
                float *x = randn(M * K, 1);
                if (rep == 0) {
                    packed_check(wp, x, W, b, M, N, K, 0, 0);
                    packed_check(wp, x, W, NULL, M, N, K, 0, 0);
                    packed_check(wp, x, W, b, M, N, K, 1, 0);
                } else {
                    int good = packed_check(wp, x, W, b, M, N, K, 0, 1) && packed_check(wp, x, W, NULL, M, N, K, 0, 1) &&
                               packed_check(wp, x, W, b, M, N, K, 1, 1);
                    ok(good, "packed N=%lld K=%lld M=%lld again (cached primitives): bias, no bias, gelu vs ref",
                       (long long)N, (long long)K, (long long)M);
                }
                free(x);
            }
        /* W may change or be freed after packing: the handle owns its copy */
        float *W0 = copy_f(W, N * K);
        for (int64_t i = 0; i < N * K; i++) W[i] = NAN;
        float *x = randn(7 * K, 1);
        ok(packed_check(wp, x, W0, b, 7, N, K, 0, 1), "packed N=%lld K=%lld independent of W after packing",
           (long long)N, (long long)K);
        free(x), free(W0);
        pare_f32_packed_free(wp);
        free(W), free(b);
    }

    /* GELU: large |pre-activations| too (tails of tanh), against pare_gelu_forward */
    {
        int64_t M = 16, N = 40, K = 24;
        float *W = randn(N * K, 1.5f), *b = randn(N, 3), *x = randn(M * K, 1);
        pare_f32_packed *wp = NULL;
        pare_f32_weight_pack(&wp, W, N, K);
        packed_check(wp, x, W, b, M, N, K, 1, 0);
        pare_f32_packed_free(wp);
        free(W), free(b), free(x);
    }

    /* two threads at once on one handle, new M values (primitives created concurrently) and cached ones */
    {
        int64_t N = 100, K = 70;
        float *W = randn(N * K, 0.1f), *b = randn(N, 1);
        pare_f32_packed *wp = NULL;
        pare_f32_weight_pack(&wp, W, N, K);
        int good[2] = {1, 1};
        /* inputs prepared before the threads start (the test rng is single-threaded) */
        enum { NM = 24 };
        float *xs[NM];
        for (int i = 0; i < NM; i++) xs[i] = randn((int64_t)(i % 12 + 1) * 3 * K, 1);
#pragma omp parallel sections num_threads(2)
        {
#pragma omp section
            for (int r = 0; r < 3; r++)
                for (int i = 0; i < NM; i++) good[0] &= packed_check(wp, xs[i], W, b, (i % 12 + 1) * 3, N, K, i & 1, 1);
#pragma omp section
            for (int r = 0; r < 3; r++)
                for (int i = NM - 1; i >= 0; i--) good[1] &= packed_check(wp, xs[i], W, b, (i % 12 + 1) * 3, N, K, i & 1, 1);
        }
        ok(good[0] && good[1], "packed linear from 2 threads at once, 12 values of M, bias / gelu: all vs ref");
        for (int i = 0; i < NM; i++) free(xs[i]);
        pare_f32_packed_free(wp);
        free(W), free(b);
    }

    /* the thread count changes between calls: oneDNN plans per count, so each count has its primitive */
    {
        int n0 = pare_get_num_threads();
        int64_t M = 129, N = 50, K = 100;
        float *W = randn(N * K, 0.1f), *b = randn(N, 1), *x = randn(M * K, 1);
        pare_f32_packed *wp = NULL;
        pare_f32_weight_pack(&wp, W, N, K);
        int good = 1;
        for (int r = 0; r < 2; r++)
            for (int t = 1; t <= 2; t++) {
                pare_set_num_threads(t);
                good &= packed_check(wp, x, W, b, M, N, K, 0, 1);
            }
        pare_set_num_threads(n0);
        ok(good, "packed linear with 1, 2, 1, 2 threads on one handle vs ref");
        pare_f32_packed_free(wp);
        free(W), free(b), free(x);
    }

    /* errors */
    pare_f32_packed *wp = (pare_f32_packed *)1;
    float W[4] = {1, 2, 3, 4}, x[2] = {1, 1}, y[2] = {0};
    ok(pare_f32_weight_pack(&wp, W, 0, 2) == PARE_EINVAL && wp == NULL, "pack N=0 rejected: %s", pare_errmsg());
    ok(pare_f32_weight_pack(&wp, NULL, 2, 2) == PARE_EINVAL, "pack W=NULL rejected: %s", pare_errmsg());
    ok(pare_f32_weight_pack(NULL, W, 2, 2) == PARE_EINVAL, "pack out=NULL rejected");
    ok(pare_linear_f32_packed(y, x, NULL, NULL, 1) == PARE_EINVAL, "packed linear with NULL weights rejected");
    pare_f32_weight_pack(&wp, W, 2, 2);
    ok(pare_linear_f32_packed(y, x, wp, NULL, 0) == PARE_OK, "packed linear M = 0 is a no-op");
    ok(pare_linear_f32_packed(y, x, wp, NULL, -1) == PARE_EINVAL, "packed linear M < 0 rejected");
    pare_f32_packed_free(wp);
    pare_f32_packed_free(NULL);
    ok(pare_f32_packed_bytes(NULL) == 0, "free(NULL) and bytes(NULL) are safe");
}

/* ---- int8 ---- */

static void test_weight_quantize(void)
{
    int64_t N = 37, K = 67;
    float *W = randn(N * K, 0.05f);
    for (int64_t k = 0; k < K; k++) W[5 * K + k] = 0.0f; /* a zero row */
    /* a row whose max-abs is so small that 127/maxabs overflows */
    for (int64_t k = 0; k < K; k++) W[7 * K + k] = k == 3 ? 1e-38f : 0.0f;
    W[9 * K + 11] = 40.0f; /* an outlier */
    pare_i8_weight w;
    pare_status st = pare_i8_weight_quantize(&w, W, N, K);
    ok(st == PARE_OK && w.q && w.scale && w.colsum && w.N == N && w.K == K, "weight quantize %lldx%lld",
       (long long)N, (long long)K);
    if (st != PARE_OK) return;
    int in_range = 1, colsum_ok = 1, max127 = 1, scale_ok = 1;
    double worst = 0;
    for (int64_t n = 0; n < N; n++) {
        float s = w.scale[n];
        if (!(s > 0) || !isfinite(s)) scale_ok = 0;
        int32_t cs = 0, mx = 0;
        for (int64_t k = 0; k < K; k++) {
            int q = w.q[n * K + k];
            cs += q;
            mx = abs(q) > mx ? abs(q) : mx;
            if (q < -127 || q > 127) in_range = 0;
            double e = fabs((double)W[n * K + k] - (double)q * s) / (s / 2);
            if (e > worst) worst = e;
        }
        if (cs != w.colsum[n]) colsum_ok = 0;
        if (n != 5 && n != 7 && mx != 127) max127 = 0;
    }
    ok(in_range, "weight q in [-127, 127]");
    ok(max127, "each nonzero row reaches |q| = 127");
    ok(scale_ok, "every scale finite and > 0 (zero row too)");
    ok(worst <= 1.0 + 1e-5, "round trip |W - q·s| <= s/2 (worst %.6f · s/2)", worst);
    ok(colsum_ok, "colsum = Σ_k q");
    int zero_row = 1;
    for (int64_t k = 0; k < K; k++) zero_row &= w.q[5 * K + k] == 0 && w.q[7 * K + k] == 0;
    ok(zero_row, "zero (and ~1e-38) rows quantize to q = 0");
    ok(pare_i8_weight_bytes(&w) == (size_t)(N * K + 4 * N), "weight bytes = N·K + 4·N (%zu)", pare_i8_weight_bytes(&w));
    pare_i8_weight_free(&w);
    ok(!w.q && !w.scale && !w.colsum && !w.packed, "free NULLs the pointers");
    pare_i8_weight_free(&w);
    ok(1, "free twice is safe");
    pare_i8_weight_free(NULL);

    W[3 * K + 8] = NAN;
    st = pare_i8_weight_quantize(&w, W, N, K);
    ok(st == PARE_ENUMERIC && strstr(pare_errmsg(), "row 3") && !w.q, "NaN rejected with PARE_ENUMERIC naming the row: %s",
       pare_errmsg());
    W[3 * K + 8] = 0;
    W[30 * K + 66] = -INFINITY;
    st = pare_i8_weight_quantize(&w, W, N, K);
    ok(st == PARE_ENUMERIC && strstr(pare_errmsg(), "row 30"), "Inf rejected naming the row: %s", pare_errmsg());
    st = pare_i8_weight_quantize(&w, W, 0, K);
    ok(st == PARE_EINVAL, "N = 0 rejected: %s", pare_errmsg());
    pare_i8_weight_free(&w);
    free(W);
}

static void test_quantize_rows(void)
{
    static const int64_t shapes[][2] = {{1, 1}, {1, 3}, {1, 200}, {3, 17}, {5, 31}, {4, 33}, {2, 100}, {7, 773}, {128, 768}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], K = shapes[s][1];
        float *x = randn(M * K, 3);
        if (M > 2)
            for (int64_t k = 0; k < K; k++) x[1 * K + k] = 0; /* zero row */
        /* values landing on .5 after scaling: round half to even */
        if (K >= 3 && M == 1) x[0] = 127.0f, x[1] = 0.5f, x[2] = 1.5f;
        int8_t *q = xalloc((size_t)(M * K)), *qr = xalloc((size_t)(M * K));
        float *sx = xalloc((size_t)M * 4), *sr = xalloc((size_t)M * 4);
        pare_quantize_rows_s8(q, sx, x, M, K);
        pare_quantize_rows_s8_ref(qr, sr, x, M, K);
        ok(!memcmp(q, qr, (size_t)(M * K)) && !memcmp(sx, sr, (size_t)M * 4),
           "quantize rows M=%lld K=%lld: fast == ref bit for bit", (long long)M, (long long)K);
        double worst = 0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < K; k++) {
                double e = fabs((double)x[m * K + k] - (double)q[m * K + k] * sx[m]) / (sx[m] / 2);
                if (e > worst) worst = e;
            }
        ok(worst <= 1.0 + 1e-5, "quantize rows M=%lld K=%lld: |x - q·s| <= s/2 (worst %.6f)", (long long)M,
           (long long)K, worst);
        if (K >= 3 && M == 1)
            ok(q[0] == 127 && q[1] == 0 && q[2] == 2, "round half to even (127 -> 127, 0.5 -> 0, 1.5 -> 2): %d %d %d",
               q[0], q[1], q[2]);
        free(x), free(q), free(qr), free(sx), free(sr);
    }
    /* non-finite rows */
    int64_t M = 4, K = 19;
    float *x = randn(M * K, 1);
    x[2 * K + 18] = INFINITY;
    int8_t *q = xalloc((size_t)(M * K));
    float *sx = xalloc((size_t)M * 4);
    pare_quantize_rows_s8(q, sx, x, M, K);
    int zero = 1;
    for (int64_t k = 0; k < K; k++) zero &= q[2 * K + k] == 0;
    ok(isnan(sx[2]) && zero && !isnan(sx[1]) && !isnan(sx[3]), "a row with Inf gets scale NaN and q = 0; others fine");
    ok(pare_quantize_rows_s8_checked(q, sx, x, M, K) == PARE_ENUMERIC && strstr(pare_errmsg(), "row 2"),
       "checked quantize: PARE_ENUMERIC naming the row: %s", pare_errmsg());
    x[2 * K + 18] = 0;
    ok(pare_quantize_rows_s8_checked(q, sx, x, M, K) == PARE_OK, "checked quantize: finite rows pass");
    free(x), free(q), free(sx);
}

static int gemm_s8_exact(const int8_t *A, const int8_t *B, int64_t M, int64_t N, int64_t K, const char *what)
{
    int32_t *C = xalloc((size_t)(M * N) * 4), *Cr = xalloc((size_t)(M * N) * 4);
    pare_status st = pare_gemm_s8s8s32(C, A, B, M, N, K);
    pare_gemm_s8s8s32_ref(Cr, A, B, M, N, K);
    int64_t bad = -1;
    for (int64_t i = 0; i < M * N && bad < 0; i++)
        if (C[i] != Cr[i]) bad = i;
    int r = ok(st == PARE_OK && bad < 0, "gemm s8s8s32 %s M=%lld N=%lld K=%lld exact", what, (long long)M,
               (long long)N, (long long)K);
    if (!r && bad >= 0) diag("first mismatch at [%lld]: got %d want %d", (long long)bad, C[bad], Cr[bad]);
    if (!r && st != PARE_OK) diag("%s", pare_errmsg());
    free(C), free(Cr);
    return r;
}

static void test_gemm_s8(void)
{
    static const int64_t sizes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {128, 768, 64}, {3, 5, 3001}, {1, 64, 768}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        int8_t *A = rand_s8(M * K), *B = rand_s8(N * K);
        gemm_s8_exact(A, B, M, N, K, "random");
        free(A), free(B);
    }
    /* extremes: all −128·−128 (largest positive sums), mixed −128/127 (largest negative) */
    int64_t M = 9, N = 17, K = 4099;
    int8_t *A = xalloc((size_t)(M * K)), *B = xalloc((size_t)(N * K));
    memset(A, 0x80, (size_t)(M * K));
    memset(B, 0x80, (size_t)(N * K));
    gemm_s8_exact(A, B, M, N, K, "all -128");
    memset(B, 127, (size_t)(N * K));
    gemm_s8_exact(A, B, M, N, K, "-128 x 127");
    for (int64_t i = 0; i < M * K; i++) A[i] = (int8_t)(i % 3 ? 127 : -128);
    for (int64_t i = 0; i < N * K; i++) B[i] = (int8_t)(i % 2 ? 127 : -128);
    gemm_s8_exact(A, B, M, N, K, "alternating extremes");
    memset(A, 127, (size_t)(M * K));
    memset(B, 127, (size_t)(N * K));
    gemm_s8_exact(A, B, M, N, K, "all 127");
    free(A), free(B);

    int32_t C[6] = {1, 2, 3, 4, 5, 6};
    int8_t a[1] = {0};
    ok(pare_gemm_s8s8s32(C, a, a, 2, 3, 0) == PARE_OK && !C[0] && !C[5], "gemm s8s8s32 K=0 gives zeros");
    ok(pare_gemm_s8s8s32(C, a, a, 1, 1, PARE_I8_MAX_K + 1) == PARE_EINVAL, "K > PARE_I8_MAX_K rejected: %s",
       pare_errmsg());
}

/* ||a − b|| / ||b|| */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void test_linear_i8_one(int64_t M, int64_t N, int64_t K, int with_bias)
{
    float *x = randn(M * K, 1), *W = randn(N * K, 0.05f), *b = with_bias ? randn(N, 0.1f) : NULL;
    pare_i8_weight w;
    if (pare_i8_weight_quantize(&w, W, N, K) != PARE_OK) {
        ok(0, "weight quantize: %s", pare_errmsg());
        return;
    }
    void *ws = xalloc(pare_linear_i8_workspace(M, N, K));
    float *y = uniform(M * N, -1, 1), *yr = xalloc((size_t)(M * N) * 4), *yf = xalloc((size_t)(M * N) * 4);
    pare_status st = pare_linear_i8_dynamic(y, x, &w, b, M, ws);
    pare_linear_i8_dynamic_ref(yr, x, &w, b, M);
    pare_linear_f32_ref(yf, x, W, b, M, N, K);
    char what[160];
    snprintf(what, sizeof what, "linear int8 [%s] M=%lld N=%lld K=%lld %s vs its ref", pare_i8_path_name(pare_linear_i8_path(K)),
             (long long)M, (long long)N, (long long)K, with_bias ? "bias" : "no bias");
    ok(st == PARE_OK, "%s: status OK %s", what, st ? pare_errmsg() : "");
    is_close_arr(y, yr, (long)(M * N), 1e-6, 1e-6, what);
    ok(!memcmp(y, yr, (size_t)(M * N) * 4), "%s: bit for bit", what);
    double e = rel_err(y, yf, M * N);
    ok(e < 0.02, "linear int8 M=%lld N=%lld K=%lld vs f32 Linear: relative error %.4f < 0.02", (long long)M, (long long)N,
       (long long)K, e);
    pare_i8_weight_free(&w);
    free(x), free(W), free(b), free(ws), free(y), free(yr), free(yf);
}

static void test_linear_i8(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1},   {1, 768, 768}, {1, 33, 37},  {3, 7, 67},    {17, 29, 130},
                                        {5, 64, 63}, {64, 48, 200}, {128, 96, 768}, {128, 768, 768}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int wb = 0; wb < 2; wb++) test_linear_i8_one(shapes[s][0], shapes[s][1], shapes[s][2], wb);
    /* large K takes the s8s8 path (u8-shifted sums could leave int32) */
    test_linear_i8_one(2, 3, 70001, 1);
    ok(pare_linear_i8_path(70001) != PARE_I8_PATH_U8S8, "K = 70001 does not use the u8-shifted path");
    diag("int8 path for K=768 on this machine: %s", pare_i8_path_name(pare_linear_i8_path(768)));

    /* NaN in the activations */
    int64_t M = 4, N = 8, K = 24;
    float *x = randn(M * K, 1), *W = randn(N * K, 1), *y = xalloc((size_t)(M * N) * 4);
    pare_i8_weight w;
    pare_i8_weight_quantize(&w, W, N, K);
    void *ws = xalloc(pare_linear_i8_workspace(M, N, K));
    x[3 * K + 5] = NAN;
    ok(pare_linear_i8_dynamic(y, x, &w, NULL, M, ws) == PARE_ENUMERIC && strstr(pare_errmsg(), "row 3"),
       "linear int8: NaN input gives PARE_ENUMERIC naming the row: %s", pare_errmsg());
    ok(pare_linear_i8_dynamic(y, x, &w, NULL, M, NULL) == PARE_EINVAL, "linear int8: NULL workspace rejected");
    ok(pare_linear_i8_dynamic(y, x, &w, NULL, 0, ws) == PARE_OK, "linear int8: M = 0 is a no-op");
    pare_i8_weight_free(&w);
    ok(pare_linear_i8_dynamic(y, x, &w, NULL, M, ws) == PARE_EINVAL, "linear int8: freed weight rejected");
    free(x), free(W), free(y), free(ws);
}

/* The packed-weight path (oneDNN inner product on weights reordered at quantization) against the GEMM
 * path on the same weights without their packed copy and against the reference: every M of a decode
 * (1…17), M = 128, both thread counts, more distinct M than the primitive cache holds, calls from inside
 * an OpenMP region (several threads on one weight), and y == x. */
static void test_linear_i8_packed(void)
{
    int64_t N = 96, K = 200, MMAX = 128;
    float *x = randn(MMAX * K, 1), *W = randn(N * K, 0.1f), *b = randn(N, 0.1f);
    pare_i8_weight w;
    if (pare_i8_weight_quantize(&w, W, N, K) != PARE_OK) {
        ok(0, "weight quantize: %s", pare_errmsg());
        return;
    }
    int vnni = pare_linear_i8_path(K) == PARE_I8_PATH_U8S8;
    diag("int8 linear for %lldx%lld runs %s (packed copy %zu bytes)", (long long)N, (long long)K, pare_i8_weight_impl(&w),
         pare_i8_weight_packed_bytes(&w));
    if (vnni)
        ok(w.packed && pare_i8_weight_packed_bytes(&w) >= (size_t)(N * K) && strncmp(pare_i8_weight_impl(&w), "ref", 3),
           "u8s8 path: weights packed for oneDNN's inner product (%s)", pare_i8_weight_impl(&w));
    else
        ok(!w.packed && pare_i8_weight_packed_bytes(&w) == 0, "no VNNI: no packed copy");
    pare_i8_weight wg = w; /* the same weights on the GEMM path */
    wg.packed = NULL;
    void *ws = xalloc(pare_linear_i8_workspace(MMAX, N, K));
    float *y = xalloc((size_t)(MMAX * N) * 4), *yg = xalloc((size_t)(MMAX * N) * 4), *yr = xalloc((size_t)(MMAX * N) * 4);
    int n0 = pare_get_num_threads();
    int64_t bad_m = -1, bad_ref = -1;
    for (int th = 1; th <= 2; th++) {
        pare_set_num_threads(th);
        /* 1…40 then 128: past the 32-entry primitive cache, calls build their own primitive */
        for (int64_t M = 1; M <= 41; M++) {
            int64_t m = M == 41 ? MMAX : M;
            pare_status st = pare_linear_i8_dynamic(y, x, &w, b, m, ws);
            st |= pare_linear_i8_dynamic(yg, x, &wg, b, m, ws);
            if (st != PARE_OK || memcmp(y, yg, (size_t)(m * N) * 4)) bad_m = bad_m < 0 ? m : bad_m;
            if (m <= 17 || m == MMAX) {
                pare_linear_i8_dynamic_ref(yr, x, &w, b, m);
                if (memcmp(y, yr, (size_t)(m * N) * 4)) bad_ref = bad_ref < 0 ? m : bad_ref;
            }
        }
    }
    ok(bad_m < 0, "linear int8: packed path == gemm path bit for bit, M = 1…40 and 128, 1 and 2 threads (first bad M %lld)",
       (long long)bad_m);
    ok(bad_ref < 0, "linear int8: packed path == ref bit for bit, M = 1…17 and 128 (first bad M %lld)", (long long)bad_ref);

    /* four concurrent callers on one weight, each with its own rows, output and workspace */
    pare_set_num_threads(2);
    int64_t Mt = 16;
    size_t wsb = pare_linear_i8_workspace(Mt, N, K);
    char *wss = xalloc(4 * wsb);
    pare_linear_i8_dynamic_ref(yr, x, &w, b, 4 * Mt);
    int fails = 0;
#pragma omp parallel for num_threads(2) reduction(+ : fails)
    for (int t = 0; t < 4; t++)
        fails += pare_linear_i8_dynamic(y + t * Mt * N, x + t * Mt * K, &w, b, Mt, wss + (size_t)t * wsb) != PARE_OK;
    ok(!fails && !memcmp(y, yr, (size_t)(4 * Mt * N) * 4), "linear int8: concurrent calls from an OpenMP region == ref");
    free(wss);
    pare_set_num_threads(n0);

    /* y == x (N == K): x is read completely before y is written */
    int64_t M = 9, D = 64;
    float *W2 = randn(D * D, 0.1f), *xy = randn(M * D, 1), *y2 = xalloc((size_t)(M * D) * 4);
    pare_i8_weight w2;
    pare_i8_weight_quantize(&w2, W2, D, D);
    void *ws2 = xalloc(pare_linear_i8_workspace(M, D, D));
    pare_linear_i8_dynamic_ref(y2, xy, &w2, NULL, M);
    ok(pare_linear_i8_dynamic(xy, xy, &w2, NULL, M, ws2) == PARE_OK && !memcmp(xy, y2, (size_t)(M * D) * 4),
       "linear int8 in place (y == x) == ref");
    pare_i8_weight_free(&w2);
    pare_i8_weight_free(&w);
    ok(pare_i8_weight_packed_bytes(&w) == 0 && !strcmp(pare_i8_weight_impl(&w), "none"), "freed weight: no packed copy");
    free(x), free(W), free(b), free(ws), free(y), free(yg), free(yr), free(W2), free(xy), free(y2), free(ws2);
}

static void test_threads_backends(void)
{
    int n0 = pare_get_num_threads();
    pare_set_num_threads(1);
    ok(pare_get_num_threads() == 1, "set/get threads 1");
    /* results do not depend on the thread count for the int8 path (exact integer sums) */
    int64_t M = 64, N = 96, K = 200;
    float *x = randn(M * K, 1), *W = randn(N * K, 0.1f), *y1 = xalloc((size_t)(M * N) * 4), *y2 = xalloc((size_t)(M * N) * 4);
    pare_i8_weight w;
    pare_i8_weight_quantize(&w, W, N, K);
    void *ws = xalloc(pare_linear_i8_workspace(M, N, K));
    pare_linear_i8_dynamic(y1, x, &w, NULL, M, ws);
    pare_set_num_threads(2);
    ok(pare_get_num_threads() == 2, "set/get threads 2");
    pare_linear_i8_dynamic(y2, x, &w, NULL, M, ws);
    ok(!memcmp(y1, y2, (size_t)(M * N) * 4), "linear int8 identical with 1 and 2 threads");
    pare_set_num_threads(n0);
    char buf[160];
    pare_kernel_backends(buf, sizeof buf);
    ok(strstr(buf, "onednn ") && strstr(buf, "openblas "), "backends: %s", buf);
    pare_i8_weight_free(&w);
    free(x), free(W), free(y1), free(y2), free(ws);
}

/* In a child process, before oneDNN's first use: the int8 paths as on a CPU without VNNI or AVX-512.
 * Returns the number of failed checks (printed as one TAP line by the parent). */
static int check_without_vnni(void)
{
    int fails = 0;
    if (dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2) != dnnl_success) fails += 100;
    ((pare_cpu *)pare_cpu_get())->avx512f = 0; /* test-only: route to the portable row kernels */
    fails += pare_linear_i8_path(768) != PARE_I8_PATH_S8S8_MADD;
    pare_rng_seed(&g_rng, 7);
    static const int64_t shapes[][3] = {{1, 5, 67}, {33, 65, 17}, {64, 96, 768}, {6, 3, 3001}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *x = randn(M * K, 1), *W = randn(N * K, 0.1f), *b = randn(N, 1);
        float *y = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4);
        int8_t *q = xalloc((size_t)(M * K)), *qr = xalloc((size_t)(M * K));
        float *sx = xalloc((size_t)M * 4), *sr = xalloc((size_t)M * 4);
        pare_quantize_rows_s8(q, sx, x, M, K);
        pare_quantize_rows_s8_ref(qr, sr, x, M, K);
        fails += memcmp(q, qr, (size_t)(M * K)) != 0 || memcmp(sx, sr, (size_t)M * 4) != 0;
        pare_i8_weight w;
        fails += pare_i8_weight_quantize(&w, W, N, K) != PARE_OK;
        fails += w.packed != NULL || strcmp(pare_i8_weight_impl(&w), "pare:s8s8-madd") != 0;
        void *ws = xalloc(pare_linear_i8_workspace(M, N, K));
        fails += pare_linear_i8_dynamic(y, x, &w, b, M, ws) != PARE_OK;
        pare_linear_i8_dynamic_ref(yr, x, &w, b, M);
        for (int64_t i = 0; i < M * N; i++) fails += fabsf(y[i] - yr[i]) > 1e-6f + 1e-6f * fabsf(yr[i]);
        /* the f32 packed Linear in oneDNN's AVX2 layout */
        pare_f32_packed *wp = NULL;
        fails += pare_f32_weight_pack(&wp, W, N, K) != PARE_OK;
        fails += pare_linear_f32_packed(y, x, wp, b, M) != PARE_OK;
        pare_linear_f32_ref(yr, x, W, b, M, N, K);
        for (int64_t i = 0; i < M * N; i++) fails += fabsf(y[i] - yr[i]) > 1e-5f * sqrtf((float)K) + 1e-5f * fabsf(yr[i]);
        pare_f32_packed_free(wp);
        /* extremes through the s8s8 GEMM */
        memset(q, 0x80, (size_t)(M * K));
        for (int64_t i = 0; i < N * K; i++) w.q[i] = (int8_t)(i % 2 ? 127 : -128);
        int32_t *C = xalloc((size_t)(M * N) * 4), *Cr = xalloc((size_t)(M * N) * 4);
        fails += pare_gemm_s8s8s32(C, q, w.q, M, N, K) != PARE_OK;
        pare_gemm_s8s8s32_ref(Cr, q, w.q, M, N, K);
        fails += memcmp(C, Cr, (size_t)(M * N) * 4) != 0;
        pare_i8_weight_free(&w);
        free(x), free(W), free(b), free(y), free(yr), free(q), free(qr), free(sx), free(sr), free(ws), free(C), free(Cr);
    }
    /* and the plain C kernel, as on a CPU without AVX2 */
    ((pare_cpu *)pare_cpu_get())->avx2 = 0;
    int64_t M = 5, N = 7, K = 37;
    int8_t *A = rand_s8(M * K), *B = rand_s8(N * K);
    A[0] = B[0] = -128;
    int32_t *C = xalloc((size_t)(M * N) * 4), *Cr = xalloc((size_t)(M * N) * 4);
    fails += pare_gemm_s8s8s32(C, A, B, M, N, K) != PARE_OK;
    pare_gemm_s8s8s32_ref(Cr, A, B, M, N, K);
    fails += memcmp(C, Cr, (size_t)(M * N) * 4) != 0;
    free(A), free(B), free(C), free(Cr);
    return fails > 255 ? 255 : fails;
}

int main(void)
{
    /* fork first: before stdout is written to and before oneDNN or OpenMP start */
    pid_t child = fork();
    if (child == 0) _exit(check_without_vnni());
    int wstatus = 0;
    int waited = child > 0 && waitpid(child, &wstatus, 0) == child;

    tap_plan_lazy();
    ok(waited && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
       "int8 kernels with oneDNN limited to avx2 (no VNNI), portable row kernels, AVX2 and C gemm: s8s8-madd path, exact "
       "gemm incl. -128/127, linear == ref; f32 packed linear in the AVX2 layout vs ref (child exit %d)", waited && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    pare_rng_seed(&g_rng, 20240501);
    test_sgemm();
    test_linear_f32();
    test_linear_f32_packed();
    test_weight_quantize();
    test_quantize_rows();
    test_gemm_s8();
    test_linear_i8();
    test_linear_i8_packed();
    test_threads_backends();
    return tap_done();
}
