/* test_gemm_i8.c — the int8 additions of kernels/gemm_i8.h against their references and against f32.
 *
 * Activation modes: every mode (dynamic per token, dynamic per tensor, static) × symmetric/asymmetric ×
 * M = 1, 7, 128 × (N, K) = (33, 67), (96, 200), (64, 768) × 1 and 2 threads: the fast Linear equals its
 * reference bit for bit (exact int32 sums, same float operations), and the reference is within the
 * derived quantization bound of the f32 Linear, elementwise:
 *   |y_q − y| <= (s_x/2)·||W_n||_1 + (s_w[n]/2)·(||x_m||_1 + K·s_x/2)   (+ float rounding)
 * DYN_TOKEN symmetric equals pare_linear_i8_dynamic bit for bit; static saturation clamps (x and x clamped
 * to the representable range give the same bits); asymmetric beats symmetric in mean error on a post-GELU
 * input; per-tensor weights have one scale; pare_i8_weight_from_int round-trips and accepts -128 (exact
 * at the worst case K = 65793 and one past it); a large K (70001) runs
 * the s8 path with the int64 correction; y == x; argument and NaN errors.
 * LLM.int8(): with the threshold above every |x| it equals DYN_TOKEN exactly with n_outliers = 0; with
 * columns multiplied by 50 it reports them and cuts the error vs f32 several-fold; fast vs ref. The outlier part
 * in f16 (outlier_f16): fast vs ref, and y_f16 − y_f32 equal to Σ (h(x)·h(w) − x·w) with GCC's _Float16
 * rounding as h; an outlier beyond f16's range is PARE_ENUMERIC.
 * Attention: pare_attention_forward_i8 equals its reference bit for bit (padding, causal, a zero length,
 * T across query blocks, 1 and 2 threads) and stays within a derived elementwise bound of f32 attention
 * (pare_attention_forward_ref, docs/kernels-int8.md), with both scales of P:
 *   |O_q − O| <= Vmax_d·(e^{2E_i} − 1 + ρ_i) + sV_d/2,  E_i the bound on the logit error of query i,
 *   ρ_i = ke_i/510 (fixed 1/255), ke_i·e^{2E_i}·max_j P_ij/510 (per row: the step is the row's max/255).
 * Long sequences (T = 64, 256, 1024, flat attention): the per-row scale stays within that bound and its
 * relative error stays below 0.03 at every T, while the fixed scale's exceeds 0.03 at T = 1024.
 * A forked child repeats the fast-vs-ref checks with oneDNN limited to AVX2 (no VNNI: pare's s8s8 and u8s8
 * madd kernels) and the portable row kernels, then the plain C GEMM kernel (as tests/test_gemm.c does).
 * No timing is asserted.
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
#include "kernels/gemm_i8.h"
#include "kernels/nn.h"
#include "tap.h"
#include "test_rand.h"

/* x rounded to IEEE binary16 and back, by the compiler's _Float16 where it has one (GCC), else by the F16C
 * instruction (clang 14 has no _Float16 on x86): an oracle independent of pare's own conversion. */
#ifdef __FLT16_MAX__
static float h16(float v) { return (float)(_Float16)v; }
#else
#include <immintrin.h>
__attribute__((target("f16c"))) static float h16(float v) { return _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT)); }
#endif

static float *copy_f(const float *x, int64_t n)
{
    float *y = xalloc((size_t)n * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
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
static double mean_abs_err(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] - b[i]);
    return s / (double)n;
}

static int bits_equal(const float *a, const float *b, int64_t n, int64_t *first)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) {
            if (first) *first = i;
            return 0;
        }
    return 1;
}

/* The activation scale(s) the scheme uses for x (M,K): sx (M), in double (for bounds, not for bits). */
static void act_scales(double *sx, const float *x, int64_t M, int64_t K, const pare_i8_act *a)
{
    double gmax = 0, gmn = 0, gmx = 0;
    for (int64_t i = 0; i < M * K; i++) {
        gmax = fmax(gmax, fabs(x[i]));
        gmn = fmin(gmn, x[i]), gmx = fmax(gmx, x[i]);
    }
    for (int64_t m = 0; m < M; m++) {
        double amax = 0, mn = 0, mx = 0;
        for (int64_t k = 0; k < K; k++) {
            double v = x[m * K + k];
            amax = fmax(amax, fabs(v)), mn = fmin(mn, v), mx = fmax(mx, v);
        }
        if (a->mode == PARE_ACT_STATIC)
            sx[m] = a->scale;
        else if (a->mode == PARE_ACT_DYN_TOKEN)
            sx[m] = a->symmetric ? amax / 127 : (mx - mn) / 255;
        else
            sx[m] = a->symmetric ? gmax / 127 : (gmx - gmn) / 255;
    }
}

/* A static scheme whose range covers x exactly (no saturation): calibration on x itself. */
static pare_i8_act static_for(const float *x, int64_t n, int symmetric)
{
    double amax = 0, mn = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) amax = fmax(amax, fabs(x[i])), mn = fmin(mn, x[i]), mx = fmax(mx, x[i]);
    pare_i8_act a = {.mode = PARE_ACT_STATIC, .symmetric = symmetric};
    if (symmetric) {
        a.scale = (float)(amax / 127) * 1.0001f;
    } else {
        a.scale = (float)((mx - mn) / 255) * 1.0001f;
        a.zero = (int32_t)lround(-mn / a.scale);
    }
    return a;
}

/* Every y_q[m,n] within the derived bound of y_f (the f32 Linear); returns the worst ratio error/bound. */
static double worst_bound_ratio(const float *yq, const float *yf, const float *x, const float *W,
                                const pare_i8_weight *w, const double *sx, int64_t M, int64_t N, int64_t K)
{
    double worst = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double xw = 0, w1 = 0, x1 = 0;
            for (int64_t k = 0; k < K; k++) {
                xw += fabs((double)x[m * K + k] * W[n * K + k]);
                w1 += fabs(W[n * K + k]);
                x1 += fabs(x[m * K + k]);
            }
            double b = sx[m] / 2 * w1 + w->scale[n] / 2.0 * (x1 + K * sx[m] / 2);
            b = b * 1.0001 + 1e-5 * xw + 1e-6;
            double r = fabs((double)yq[m * N + n] - yf[m * N + n]) / b;
            worst = r > worst ? r : worst;
        }
    return worst;
}

/* ---- activation modes: fast vs ref, ref vs f32 ---- */

static void test_modes(void)
{
    static const int64_t Ms[] = {1, 7, 128}, NK[][2] = {{33, 67}, {96, 200}, {64, 768}};
    int n0 = pare_get_num_threads();
    for (size_t s = 0; s < sizeof NK / sizeof NK[0]; s++) {
        const int64_t N = NK[s][0], K = NK[s][1], MM = 128;
        float *W = randn(N * K, 0.05f), *b = randn(N, 0.1f), *x = randn(MM * K, 1);
        pare_i8_weight w;
        if (pare_i8_weight_quantize(&w, W, N, K) != PARE_OK) {
            ok(0, "weight quantize: %s", pare_errmsg());
            continue;
        }
        float *y = xalloc((size_t)(MM * N) * 4), *yr = xalloc((size_t)(MM * N) * 4), *yf = xalloc((size_t)(MM * N) * 4);
        double *sx = xalloc((size_t)MM * sizeof(double));
        for (int mode = 0; mode < PARE_ACT_MODE_COUNT; mode++)
            for (int sym = 1; sym >= 0; sym--)
                for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
                    const int64_t M = Ms[mi];
                    pare_i8_act a = {.mode = (pare_act_mode)mode, .symmetric = sym};
                    if (mode == PARE_ACT_STATIC) a = static_for(x, M * K, sym);
                    void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
                    pare_linear_i8_act_ref(yr, x, &w, NULL, b, M, &a, NULL);
                    int okk = 1;
                    int64_t first = -1;
                    for (int th = 1; th <= 2; th++) {
                        pare_set_num_threads(th);
                        int64_t no = -1;
                        memset(y, 0xff, (size_t)(M * N) * 4);
                        pare_status st = pare_linear_i8_act(y, x, &w, NULL, b, M, &a, ws, &no);
                        if (st != PARE_OK) diag("%s", pare_errmsg());
                        okk &= st == PARE_OK && no == 0 && bits_equal(y, yr, M * N, &first);
                    }
                    pare_set_num_threads(n0);
                    if (!ok(okk, "act %s %s M=%lld N=%lld K=%lld: fast == ref bit for bit, 1 and 2 threads",
                            pare_act_mode_name(a.mode), sym ? "sym" : "asym", (long long)M, (long long)N,
                            (long long)K) &&
                        first >= 0)
                        diag("first mismatch [%lld]: %.9g vs %.9g", (long long)first, y[first], yr[first]);
                    pare_linear_f32_ref(yf, x, W, b, M, N, K);
                    act_scales(sx, x, M, K, &a);
                    double r = worst_bound_ratio(yr, yf, x, W, &w, sx, M, N, K);
                    ok(r <= 1.0,
                       "act %s %s M=%lld N=%lld K=%lld: ref within the quantization bound of f32 "
                       "(worst error/bound %.3f, rel err %.4f)",
                       pare_act_mode_name(a.mode), sym ? "sym" : "asym", (long long)M, (long long)N, (long long)K, r,
                       rel_err(yr, yf, M * N));
                    free(ws);
                }
        /* DYN_TOKEN symmetric is pare_linear_i8_dynamic */
        {
            const int64_t M = 7;
            pare_i8_act a = {.mode = PARE_ACT_DYN_TOKEN, .symmetric = 1};
            void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a)),
                 *ws2 = xalloc(pare_linear_i8_workspace(M, N, K));
            pare_status st = pare_linear_i8_act(y, x, &w, NULL, b, M, &a, ws, NULL);
            st |= pare_linear_i8_dynamic(yr, x, &w, b, M, ws2);
            st |= pare_linear_i8_act(yf, x, &w, NULL, b, M, NULL, ws, NULL); /* a NULL: the default */
            ok(st == PARE_OK && bits_equal(y, yr, M * N, NULL) && bits_equal(yf, yr, M * N, NULL),
               "act dynamic_token sym (and a = NULL) == pare_linear_i8_dynamic bit for bit (K=%lld)", (long long)K);
            free(ws), free(ws2);
        }
        pare_i8_weight_free(&w);
        free(W), free(b), free(x), free(y), free(yr), free(yf), free(sx);
    }
}

/* per-tensor weights under every mode, vs ref and the bound */
static void test_tensor_weights(void)
{
    const int64_t M = 17, N = 40, K = 130;
    float *W = randn(N * K, 0.05f), *x = randn(M * K, 1);
    for (int64_t k = 0; k < K; k++) W[5 * K + k] *= 4; /* one row dominates the tensor's range */
    pare_i8_weight w;
    pare_status st = pare_i8_weight_quantize_tensor(&w, W, N, K);
    if (!ok(st == PARE_OK, "per-tensor weight quantize %s", st ? pare_errmsg() : "")) return;
    double amax = 0;
    for (int64_t i = 0; i < N * K; i++) amax = fmax(amax, fabs(W[i]));
    int same = 1, within = 1, colsum = 1;
    for (int64_t n = 0; n < N; n++) {
        same &= !memcmp(&w.scale[n], &w.scale[0], sizeof(float));
        int32_t cs = 0;
        for (int64_t k = 0; k < K; k++) {
            within &= fabs(W[n * K + k] - (double)w.q[n * K + k] * w.scale[n]) <= w.scale[n] / 2 * (1 + 1e-5);
            cs += w.q[n * K + k];
        }
        colsum &= cs == w.colsum[n];
    }
    ok(same && fabs(w.scale[0] - amax / 127) <= 1e-6 * amax,
       "per-tensor weights: all %lld scales equal absmax/127 = %g", (long long)N, (double)w.scale[0]);
    ok(within && colsum, "per-tensor weights: |W − q·s| <= s/2 and colsum = Σq");
    float *y = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4), *yf = xalloc((size_t)(M * N) * 4);
    double sx[17];
    pare_linear_f32_ref(yf, x, W, NULL, M, N, K);
    for (int mode = 0; mode < PARE_ACT_MODE_COUNT; mode++)
        for (int sym = 1; sym >= 0; sym--) {
            pare_i8_act a = {.mode = (pare_act_mode)mode, .symmetric = sym};
            if (mode == PARE_ACT_STATIC) a = static_for(x, M * K, sym);
            void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
            st = pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, NULL);
            pare_linear_i8_act_ref(yr, x, &w, NULL, NULL, M, &a, NULL);
            act_scales(sx, x, M, K, &a);
            double r = worst_bound_ratio(yr, yf, x, W, &w, sx, M, N, K);
            ok(st == PARE_OK && bits_equal(y, yr, M * N, NULL) && r <= 1.0,
               "per-tensor weights, act %s %s: fast == ref, within the bound (worst %.3f, rel err %.4f)",
               pare_act_mode_name(a.mode), sym ? "sym" : "asym", r, rel_err(y, yf, M * N));
            free(ws);
        }
    pare_i8_weight_free(&w);
    W[7 * K + 3] = NAN;
    st = pare_i8_weight_quantize_tensor(&w, W, N, K);
    ok(st == PARE_ENUMERIC && strstr(pare_errmsg(), "row 7") && !w.q,
       "per-tensor quantize: NaN rejected naming the row: %s", pare_errmsg());
    ok(pare_i8_weight_quantize_tensor(&w, W, N, 0) == PARE_EINVAL, "per-tensor quantize: K = 0 rejected: %s",
       pare_errmsg());
    free(W), free(x), free(y), free(yr), free(yf);
}

/* Weights of -128 at the u8s8 bound K = 65793 (and one past it, the s8 path): every weight -128 and every
 * activation at its largest code (byte 255 on the u8 path), so |Σ byte·q| = 255·128·K is the worst case
 * (2147450880 <= 2^31 − 1); fast == reference (int64 sums) bit for bit, and == the exact value. */
static void test_minus128_worst(void)
{
    const int64_t M = 2, N = 2;
    for (int64_t K = 65793; K <= 65794; K++) {
        int8_t *q = xalloc((size_t)(N * K));
        memset(q, 0x80, (size_t)(N * K));
        float sc[2] = {1.0f, 0.5f}, *x = xalloc((size_t)(M * K) * 4), y[4], yr[4];
        for (int64_t i = 0; i < M * K; i++) x[i] = i < K ? 1.0f : -1.0f; /* row 0 all +1, row 1 all -1 */
        pare_i8_weight w;
        pare_status st = pare_i8_weight_from_int(&w, q, sc, N, K);
        for (int sym = 1; sym >= 0 && st == PARE_OK; sym--) {
            pare_i8_act a = {.mode = PARE_ACT_DYN_TOKEN, .symmetric = sym};
            void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
            pare_status s2 = pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, NULL);
            pare_linear_i8_act_ref(yr, x, &w, NULL, NULL, M, &a, NULL);
            /* exact: x = ±1 is code ±127 (sym) or ±255/∓0 (asym, per row: scale 1/255, z 0 or 255) */
            double e0 = -128.0 * (double)K; /* row 0: Σ 1·(-128)·sx·sw = -128·K·1 (either scheme) */
            ok(s2 == PARE_OK && bits_equal(y, yr, M * N, NULL) && fabs(y[0] - e0) <= 1e-6 * fabs(e0) &&
                   fabs(y[1] - e0 * 0.5) <= 1e-6 * fabs(e0) && fabs(y[2] + e0) <= 1e-6 * fabs(e0),
               "q = -128 everywhere, K=%lld (%s path), %s: fast == ref, y = %.1f %.1f %.1f (exact %.1f)",
               (long long)K, pare_i8_path_name(pare_linear_i8_path(K)), sym ? "symmetric" : "asymmetric",
               (double)y[0], (double)y[1], (double)y[2], e0);
            free(ws);
        }
        ok(st == PARE_OK, "q = -128 everywhere accepted at K=%lld %s", (long long)K, st ? pare_errmsg() : "");
        pare_i8_weight_free(&w);
        free(q), free(x);
    }
}

static void test_from_int(void)
{
    const int64_t M = 9, N = 24, K = 77;
    float *W = randn(N * K, 0.05f), *x = randn(M * K, 1);
    pare_i8_weight w, w2;
    pare_i8_weight_quantize(&w, W, N, K);
    pare_status st = pare_i8_weight_from_int(&w2, w.q, w.scale, N, K);
    ok(st == PARE_OK && !memcmp(w2.q, w.q, (size_t)(N * K)) && !memcmp(w2.scale, w.scale, (size_t)N * 4) &&
           !memcmp(w2.colsum, w.colsum, (size_t)N * 4) && w2.q != w.q,
       "from_int: copies q and scale, same colsum %s", st ? pare_errmsg() : "");
    ok(pare_i8_weight_packed_bytes(&w2) == pare_i8_weight_packed_bytes(&w) &&
           !strcmp(pare_i8_weight_impl(&w2), pare_i8_weight_impl(&w)),
       "from_int: packed like pare_i8_weight_quantize (%s, %zu bytes)", pare_i8_weight_impl(&w2),
       pare_i8_weight_packed_bytes(&w2));
    float *y = xalloc((size_t)(M * N) * 4), *y2 = xalloc((size_t)(M * N) * 4);
    void *ws = xalloc(pare_linear_i8_workspace(M, N, K));
    pare_linear_i8_dynamic(y, x, &w, NULL, M, ws);
    pare_linear_i8_dynamic(y2, x, &w2, NULL, M, ws);
    ok(bits_equal(y, y2, M * N, NULL), "from_int: the Linear on the copy gives the same bits");
    pare_i8_weight_free(&w2);

    int8_t *q = xalloc((size_t)(N * K));
    memcpy(q, w.q, (size_t)(N * K));
    q[3 * K + 4] = -128;
    st = pare_i8_weight_from_int(&w2, q, w.scale, N, K);
    ok(st == PARE_OK && w2.q[3 * K + 4] == -128 && w2.colsum[3] == w.colsum[3] - 128 - w.q[3 * K + 4],
       "from_int: -128 accepted (PyTorch's qint8 range), colsum follows %s", st ? pare_errmsg() : "");
    pare_i8_weight_free(&w2);
    test_minus128_worst();
    float *sc = copy_f(w.scale, N);
    sc[2] = -1;
    ok(pare_i8_weight_from_int(&w2, w.q, sc, N, K) == PARE_EINVAL && strstr(pare_errmsg(), "scale[2]"),
       "from_int: negative scale rejected: %s", pare_errmsg());
    sc[2] = NAN;
    ok(pare_i8_weight_from_int(&w2, w.q, sc, N, K) == PARE_ENUMERIC, "from_int: NaN scale: PARE_ENUMERIC: %s",
       pare_errmsg());
    ok(pare_i8_weight_from_int(&w2, w.q, NULL, N, K) == PARE_EINVAL, "from_int: NULL scale rejected");
    pare_i8_weight_free(&w);
    free(W), free(x), free(y), free(y2), free(ws), free(q), free(sc);
}

/* Static scales saturate: x and x clamped to the representable range give the same bits. */
static void test_static_saturation(void)
{
    const int64_t M = 16, N = 20, K = 96;
    float *W = randn(N * K, 0.05f), *x = randn(M * K, 2), *b = randn(N, 0.1f);
    pare_i8_weight w;
    pare_i8_weight_quantize(&w, W, N, K);
    float *y = xalloc((size_t)(M * N) * 4), *yc = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4);
    for (int sym = 1; sym >= 0; sym--) {
        pare_i8_act a = {.mode = PARE_ACT_STATIC, .symmetric = sym, .scale = 0.01f, .zero = sym ? 0 : 100};
        const double lo = sym ? -127 * 0.01 : (0 - 100) * 0.01, hi = sym ? 127 * 0.01 : (255 - 100) * 0.01;
        float *xc = copy_f(x, M * K);
        int64_t clipped = 0;
        for (int64_t i = 0; i < M * K; i++) {
            if (xc[i] < lo || xc[i] > hi) clipped++;
            xc[i] = xc[i] < lo ? (float)lo : xc[i] > hi ? (float)hi : xc[i];
        }
        void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
        pare_status st = pare_linear_i8_act(y, x, &w, NULL, b, M, &a, ws, NULL);
        st |= pare_linear_i8_act(yc, xc, &w, NULL, b, M, &a, ws, NULL);
        pare_linear_i8_act_ref(yr, x, &w, NULL, b, M, &a, NULL);
        ok(st == PARE_OK && clipped > M * K / 4 && bits_equal(y, yc, M * N, NULL) && bits_equal(y, yr, M * N, NULL),
           "static %s scale 0.01 zero %d: %lld of %lld values beyond [%.2f, %.2f] saturate (same bits as clamped x; "
           "== ref)",
           sym ? "sym" : "asym", (int)a.zero, (long long)clipped, (long long)(M * K), lo, hi);
        /* the codes hit the ends of the range: all-large x gives ±127 / 0 and 255 */
        for (int64_t i = 0; i < M * K; i++) xc[i] = (i % K) % 2 ? 1e30f : -1e30f;
        pare_linear_i8_act(y, xc, &w, NULL, NULL, M, &a, ws, NULL);
        for (int64_t i = 0; i < M * K; i++) xc[i] = (i % K) % 2 ? (float)hi : (float)lo;
        pare_linear_i8_act(yc, xc, &w, NULL, NULL, M, &a, ws, NULL);
        ok(bits_equal(y, yc, M * N, NULL), "static %s: ±1e30 saturates to the range ends", sym ? "sym" : "asym");
        free(xc), free(ws);
    }
    pare_i8_weight_free(&w);
    free(W), free(x), free(b), free(y), free(yc), free(yr);
}

/* One-sided (post-GELU) activations: the asymmetric scheme uses all 256 levels on [min, max]. */
static void test_asym_beats_sym(void)
{
    const int64_t M = 64, N = 48, K = 256;
    float *W = randn(N * K, 0.05f), *h = randn(M * K, 1.5f), *x = xalloc((size_t)(M * K) * 4);
    pare_gelu_forward(x, h, M * K);
    pare_i8_weight w;
    pare_i8_weight_quantize(&w, W, N, K);
    float *y = xalloc((size_t)(M * N) * 4), *yf = xalloc((size_t)(M * N) * 4);
    pare_linear_f32_ref(yf, x, W, NULL, M, N, K);
    for (int mode = 0; mode < PARE_ACT_MODE_COUNT; mode++) {
        double e[2];
        for (int sym = 0; sym < 2; sym++) {
            pare_i8_act a = {.mode = (pare_act_mode)mode, .symmetric = sym};
            if (mode == PARE_ACT_STATIC) a = static_for(x, M * K, sym);
            void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
            pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, NULL);
            e[sym] = mean_abs_err(y, yf, M * N);
            free(ws);
        }
        ok(e[0] < 0.8 * e[1], "post-GELU input, %s: asymmetric mean error %.3g < 0.8 × symmetric %.3g",
           pare_act_mode_name((pare_act_mode)mode), e[0], e[1]);
    }
    pare_i8_weight_free(&w);
    free(W), free(h), free(x), free(y), free(yf);
}

/* K > 66311: the s8 operand path, and for asymmetric codes the int64 correction */
static void test_large_k(void)
{
    const int64_t M = 2, N = 3, K = 70001;
    float *W = randn(N * K, 0.05f), *x = randn(M * K, 1), *b = randn(N, 0.1f);
    for (int64_t i = 0; i < M * K; i++) x[i] = fabsf(x[i]) + 0.5f; /* positive: asymmetric codes near 255 */
    pare_i8_weight w;
    pare_i8_weight_quantize(&w, W, N, K);
    float y[6], yr[6], yf[6];
    pare_linear_f32_ref(yf, x, W, b, M, N, K);
    for (int mode = 0; mode < PARE_ACT_MODE_COUNT; mode++)
        for (int sym = 1; sym >= 0; sym--) {
            pare_i8_act a = {.mode = (pare_act_mode)mode, .symmetric = sym};
            if (mode == PARE_ACT_STATIC) a = static_for(x, M * K, sym);
            void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
            pare_status st = pare_linear_i8_act(y, x, &w, NULL, b, M, &a, ws, NULL);
            pare_linear_i8_act_ref(yr, x, &w, NULL, b, M, &a, NULL);
            ok(st == PARE_OK && bits_equal(y, yr, M * N, NULL) && rel_err(y, yf, M * N) < 0.02,
               "K=%lld [%s] act %s %s: fast == ref, rel err vs f32 %.4f", (long long)K,
               pare_i8_path_name(pare_linear_i8_path(K)), pare_act_mode_name(a.mode), sym ? "sym" : "asym",
               rel_err(y, yf, M * N));
            free(ws);
        }
    pare_i8_weight_free(&w);
    free(W), free(x), free(b);
}

static void test_act_errors(void)
{
    const int64_t M = 4, N = 8, K = 24;
    float *x = randn(M * K, 1), *W = randn(N * K, 1), *y = xalloc((size_t)(M * N) * 4);
    pare_i8_weight w;
    pare_i8_weight_quantize(&w, W, N, K);
    pare_i8_act big = {.mode = PARE_ACT_DYN_TOKEN, .symmetric = 1, .outlier_threshold = 1.0f};
    void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &big));
    int64_t no = 77;
    pare_i8_act a = {.mode = PARE_ACT_MODE_COUNT};
    ok(pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, &no) == PARE_EINVAL &&
           strstr(pare_errmsg(), "dynamic_token") && no == 0,
       "mode out of range: PARE_EINVAL listing the modes: %s", pare_errmsg());
    a = (pare_i8_act){.mode = PARE_ACT_STATIC, .symmetric = 1, .scale = 0};
    ok(pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, NULL) == PARE_EINVAL && strstr(pare_errmsg(), "scale"),
       "static scale 0 rejected: %s", pare_errmsg());
    a = (pare_i8_act){.mode = PARE_ACT_STATIC, .symmetric = 1, .scale = 0.1f, .zero = 3};
    ok(pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, NULL) == PARE_EINVAL && strstr(pare_errmsg(), "zero"),
       "static symmetric with zero 3 rejected: %s", pare_errmsg());
    a = (pare_i8_act){.mode = PARE_ACT_STATIC, .symmetric = 0, .scale = 0.1f, .zero = 256};
    ok(pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, NULL) == PARE_EINVAL && strstr(pare_errmsg(), "[0, 255]"),
       "static asymmetric zero 256 rejected: %s", pare_errmsg());
    a = (pare_i8_act){.mode = PARE_ACT_DYN_TOKEN, .symmetric = 1, .outlier_threshold = NAN};
    ok(pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, NULL) == PARE_EINVAL, "threshold NaN rejected: %s",
       pare_errmsg());
    a.outlier_threshold = -1;
    ok(pare_linear_i8_act(y, x, &w, W, NULL, M, &a, ws, NULL) == PARE_EINVAL, "threshold -1 rejected: %s",
       pare_errmsg());
    { /* W_f32 NULL: the outlier columns use the int8 weights dequantized, exactly as if given explicitly */
        float *Wd = xalloc((size_t)(N * K) * 4), *y2 = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4);
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) Wd[n * K + k] = (float)w.q[n * K + k] * w.scale[n];
        int64_t o1 = 0, o2 = 0;
        ok(pare_linear_i8_act(y, x, &w, NULL, NULL, M, &big, ws, &o1) == PARE_OK &&
               pare_linear_i8_act(y2, x, &w, Wd, NULL, M, &big, ws, &o2) == PARE_OK && o1 == o2 && o1 > 0 &&
               !memcmp(y, y2, sizeof(float) * (size_t)(M * N)),
           "LLM.int8 without W_f32 dequantizes the int8 outlier columns (%lld outliers)", (long long)o1);
        pare_linear_i8_act_ref(yr, x, &w, NULL, NULL, M, &big, NULL);
        is_close_arr(y, yr, M * N, 1e-5, 1e-5, "... and equals its reference");
        free(Wd), free(y2), free(yr);
    }
    ok(pare_linear_i8_act(y, x, &w, NULL, NULL, M, NULL, NULL, NULL) == PARE_EINVAL, "NULL workspace rejected");
    ok(pare_linear_i8_act(y, x, &w, NULL, NULL, 0, NULL, ws, NULL) == PARE_OK, "M = 0 is a no-op");
    x[2 * K + 5] = INFINITY;
    for (int mode = 0; mode < PARE_ACT_MODE_COUNT; mode++)
        for (int sym = 1; sym >= 0; sym--)
            for (int outl = 0; outl < 2; outl++) {
                a = (pare_i8_act){.mode = (pare_act_mode)mode,
                                  .symmetric = sym,
                                  .scale = 0.1f,
                                  .zero = sym ? 0 : 128,
                                  .outlier_threshold = outl ? 1.0f : 0.0f};
                pare_status st = pare_linear_i8_act(y, x, &w, W, NULL, M, &a, ws, NULL);
                ok(st == PARE_ENUMERIC && strstr(pare_errmsg(), "row 2"),
                   "%s %s%s: Inf in x: PARE_ENUMERIC naming the row: %s", pare_act_mode_name(a.mode),
                   sym ? "sym" : "asym", outl ? " + LLM.int8" : "", pare_errmsg());
            }
    ok(!strcmp(pare_act_mode_name(PARE_ACT_DYN_TENSOR), "dynamic_tensor") &&
           !strcmp(pare_act_mode_name(PARE_ACT_STATIC), "static") &&
           !strcmp(pare_act_mode_name(PARE_ACT_MODE_COUNT), "?"),
       "mode names");
    pare_i8_weight_free(&w);
    ok(pare_linear_i8_act(y, x, &w, NULL, NULL, M, NULL, ws, NULL) == PARE_EINVAL, "freed weight rejected");
    free(x), free(W), free(y), free(ws);
}

/* ---- LLM.int8() ---- */

static void test_llm_int8(void)
{
    const int64_t M = 128, N = 96, K = 200;
    float *W = randn(N * K, 0.05f), *x = randn(M * K, 1), *b = randn(N, 0.1f);
    pare_i8_weight w;
    pare_i8_weight_quantize(&w, W, N, K);
    float *y = xalloc((size_t)(M * N) * 4), *y0 = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4),
          *yf = xalloc((size_t)(M * N) * 4);
    int n0 = pare_get_num_threads();

    /* a threshold above every |x|: plain DYN_TOKEN, exactly */
    for (int sym = 1; sym >= 0; sym--) {
        pare_i8_act a0 = {.mode = PARE_ACT_DYN_TOKEN, .symmetric = sym};
        for (int inf = 0; inf < 2; inf++) {
            pare_i8_act a = a0;
            a.outlier_threshold = inf ? INFINITY : 100.0f;
            void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
            int64_t no = -1;
            pare_status st = pare_linear_i8_act(y, x, &w, W, b, M, &a, ws, &no);
            st |= pare_linear_i8_act(y0, x, &w, NULL, b, M, &a0, ws, NULL);
            ok(st == PARE_OK && no == 0 && bits_equal(y, y0, M * N, NULL),
               "LLM.int8 %s, threshold %s: n_outliers = 0, == dynamic_token bit for bit", sym ? "sym" : "asym",
               inf ? "+inf" : "100 (above every |x|)");
            free(ws);
        }
    }

    /* injected outlier features */
    static const int64_t cols[] = {3, 64, 150, 199};
    const int64_t ninj = sizeof cols / sizeof cols[0];
    for (int64_t c = 0; c < ninj; c++)
        for (int64_t m = 0; m < M; m++) x[m * K + cols[c]] *= 50;
    pare_linear_f32_ref(yf, x, W, b, M, N, K);
    for (int mode = 0; mode < PARE_ACT_MODE_COUNT; mode++)
        for (int sym = 1; sym >= 0; sym--) {
            pare_i8_act a0 = {.mode = (pare_act_mode)mode, .symmetric = sym};
            if (mode == PARE_ACT_STATIC) { /* calibrated on the non-outlier features (what LLM.int8 leaves) */
                float *xm = copy_f(x, M * K);
                for (int64_t c = 0; c < ninj; c++)
                    for (int64_t m = 0; m < M; m++) xm[m * K + cols[c]] = 0;
                a0 = static_for(xm, M * K, sym);
                free(xm);
            }
            pare_i8_act a = a0;
            a.outlier_threshold = 6.0f;
            void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
            int64_t no = -1, nor = -1, no2 = -1;
            pare_set_num_threads(1);
            pare_status st = pare_linear_i8_act(y, x, &w, W, b, M, &a, ws, &no);
            pare_set_num_threads(2);
            st |= pare_linear_i8_act(y0, x, &w, W, b, M, &a, ws, &no2);
            pare_set_num_threads(n0);
            pare_linear_i8_act_ref(yr, x, &w, W, b, M, &a, &nor);
            char what[160];
            snprintf(what, sizeof what, "LLM.int8 %s %s, %lld outlier columns: fast vs ref", pare_act_mode_name(a.mode),
                     sym ? "sym" : "asym", (long long)ninj);
            ok(st == PARE_OK && no == ninj && nor == ninj && no2 == ninj, "%s: n_outliers = %lld (ref %lld)", what,
               (long long)no, (long long)nor);
            is_close_arr(y, yr, (long)(M * N), 1e-5, 1e-5, what);
            ok(bits_equal(y, y0, M * N, NULL), "LLM.int8 %s %s: same bits with 1 and 2 threads",
               pare_act_mode_name(a.mode), sym ? "sym" : "asym");
            double e_dec = rel_err(y, yf, M * N);
            /* without decomposition (for STATIC: the same scale, the outliers saturate) */
            pare_linear_i8_act(y0, x, &w, NULL, b, M, &a0, ws, NULL);
            double e_plain = rel_err(y0, yf, M * N);
            ok(e_dec < 0.25 * e_plain && e_dec < 0.02,
               "LLM.int8 %s %s: rel error vs f32 %.4f with decomposition, %.4f without", pare_act_mode_name(a.mode),
               sym ? "sym" : "asym", e_dec, e_plain);
            free(ws);
        }

    /* the outlier part in f16 (the paper's 16-bit part): both operands rounded to f16 — checked against the
     * reference and against GCC's own _Float16 rounding: y_f16 − y_f32 = Σ_{k∈O} (h(x)·h(w) − x·w) */
    for (int wsrc = 0; wsrc < 2; wsrc++) { /* the caller's f32 weights, then the int8 values dequantized */
        const float *Wc = wsrc ? NULL : W;
        pare_i8_act a = {.mode = PARE_ACT_DYN_TOKEN, .symmetric = 1, .outlier_threshold = 6.0f, .outlier_f16 = 1};
        pare_i8_act a32 = a;
        a32.outlier_f16 = 0;
        void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
        int64_t no = -1, nor = -1;
        pare_status st = pare_linear_i8_act(y, x, &w, Wc, b, M, &a, ws, &no);
        pare_linear_i8_act_ref(yr, x, &w, Wc, b, M, &a, &nor);
        st |= pare_linear_i8_act(y0, x, &w, Wc, b, M, &a32, ws, NULL);
        char what[96];
        snprintf(what, sizeof what, "LLM.int8 outliers in f16 (W %s): fast vs ref", wsrc ? "from int8" : "f32");
        ok(st == PARE_OK && no == ninj && nor == ninj, "%s: n_outliers = %lld", what, (long long)no);
        is_close_arr(y, yr, (long)(M * N), 1e-5, 1e-5, what);
        double worst = 0, moved = 0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double d = 0, mag = 0;
                for (int64_t c = 0; c < ninj; c++) {
                    const float xv = x[m * K + cols[c]],
                                wv = Wc ? Wc[n * K + cols[c]] : (float)w.q[n * K + cols[c]] * w.scale[n];
                    d += (double)h16(xv) * (double)h16(wv) - (double)xv * wv;
                    mag += fabs((double)xv * wv);
                }
                const double got = (double)y[m * N + n] - y0[m * N + n];
                worst = fmax(worst, fabs(got - d) / (1e-6 * (mag + fabs(y0[m * N + n])) + 1e-7));
                moved = fmax(moved, fabs(got));
            }
        ok(worst <= 1.0 && moved > 0,
           "LLM.int8 outliers in f16 (W %s): y_f16 − y_f32 = Σ (h(x)h(w) − xw) with _Float16 rounding (worst "
           "deviation/tolerance %.3f; largest change %.3g)", wsrc ? "from int8" : "f32", worst, moved);
        free(ws);
    }
    { /* beyond f16's range: an error naming the element, not an Inf */
        pare_i8_act a = {.mode = PARE_ACT_DYN_TOKEN, .symmetric = 1, .outlier_threshold = 6.0f, .outlier_f16 = 1};
        void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
        const float keep = x[5 * K + 64];
        x[5 * K + 64] = 1e5f;
        pare_status st = pare_linear_i8_act(y, x, &w, W, b, M, &a, ws, NULL);
        ok(st == PARE_ENUMERIC && strstr(pare_errmsg(), "x[5, 64]"), "LLM.int8 f16: an outlier beyond f16's range: %s",
           pare_errmsg());
        x[5 * K + 64] = keep;
        a.outlier_f16 = 2;
        ok(pare_linear_i8_act(y, x, &w, W, b, M, &a, ws, NULL) == PARE_EINVAL && strstr(pare_errmsg(), "outlier_f16"),
           "LLM.int8: outlier_f16 = 2 rejected: %s", pare_errmsg());
        free(ws);
    }

    /* y == x (N == K) with outliers: x[:,O] is gathered before y is written */
    {
        const int64_t D = 72, Mx = 10;
        float *W2 = randn(D * D, 0.05f), *xy = randn(Mx * D, 1), *y2 = xalloc((size_t)(Mx * D) * 4);
        for (int64_t m = 0; m < Mx; m++) xy[m * D + 7] *= 50;
        pare_i8_weight w2;
        pare_i8_weight_quantize(&w2, W2, D, D);
        pare_i8_act a = {.mode = PARE_ACT_DYN_TOKEN, .symmetric = 0, .outlier_threshold = 6.0f};
        void *ws = xalloc(pare_linear_i8_act_workspace(Mx, D, D, &a));
        pare_status st = pare_linear_i8_act(y2, xy, &w2, W2, NULL, Mx, &a, ws, NULL);
        st |= pare_linear_i8_act(xy, xy, &w2, W2, NULL, Mx, &a, ws, NULL);
        ok(st == PARE_OK && bits_equal(xy, y2, Mx * D, NULL), "LLM.int8 in place (y == x) == out of place");
        pare_i8_weight_free(&w2);
        free(W2), free(xy), free(y2), free(ws);
    }
    pare_i8_weight_free(&w);
    free(W), free(x), free(b), free(y), free(y0), free(yr), free(yf);
}

/* ---- int8 attention ---- */

/* The derived bound of |O_q − O| elementwise (see the top of this file); returns the worst error/bound. */
static double attention_bound_ratio(const float *oq, const float *of, const float *att, int prow, const float *qkv,
                                    const int32_t *lengths, int causal, int64_t B, int64_t T, int64_t C, int64_t H)
{
    const int64_t D = C / H, C3 = 3 * C;
    const double scale = 1.0 / sqrt((double)D);
    double worst = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t L = lengths ? lengths[b] : T;
        L = L < 0 ? 0 : L > T ? T : L;
        for (int64_t h = 0; h < H; h++) {
            double vmax[512], sv[512];
            for (int64_t d = 0; d < D; d++) {
                vmax[d] = 0;
                for (int64_t j = 0; j < L; j++)
                    vmax[d] = fmax(vmax[d], fabs(qkv[(b * T + j) * C3 + 2 * C + h * D + d]));
                sv[d] = vmax[d] / 127;
            }
            for (int64_t i = 0; i < T; i++) {
                const float *q = qkv + (b * T + i) * C3 + h * D;
                double q1 = 0, qmax = 0;
                for (int64_t d = 0; d < D; d++) q1 += fabs(q[d]), qmax = fmax(qmax, fabs(q[d]));
                const double sq = qmax / 127;
                const int64_t ke = causal && i + 1 < L ? i + 1 : L;
                double E = 0;
                for (int64_t j = 0; j < ke; j++) {
                    const float *k = qkv + (b * T + j) * C3 + C + h * D;
                    double k1 = 0, kmax = 0, s = 0;
                    for (int64_t d = 0; d < D; d++)
                        k1 += fabs(k[d]), kmax = fmax(kmax, fabs(k[d])), s += (double)q[d] * k[d];
                    const double sk = kmax / 127;
                    double e = scale * (sq / 2 * k1 + sk / 2 * q1 + D * sq * sk / 4) + 1e-6 * fabs(s * scale);
                    E = fmax(E, e);
                }
                double pmax = 0; /* the largest f32 probability of the row */
                for (int64_t j = 0; j < ke; j++) pmax = fmax(pmax, att[((b * H + h) * T + i) * T + j]);
                const double rho = prow ? (double)ke * exp(2 * E) * pmax / 510 : (double)ke / 510;
                for (int64_t d = 0; d < D; d++) {
                    double bound = ke ? vmax[d] * (exp(2 * E) - 1 + rho) + sv[d] / 2 : 0;
                    bound = bound * 1.0001 + 1e-5 * vmax[d] + 1e-6;
                    const int64_t o = (b * T + i) * C + h * D + d;
                    worst = fmax(worst, fabs((double)oq[o] - of[o]) / bound);
                }
            }
        }
    }
    return worst;
}

static const char *const p_names[PARE_ATTN_P_COUNT] = {"P per row", "P fixed 1/255"};

static void test_attention_one(int64_t B, int64_t T, int64_t C, int64_t H, const int32_t *lengths, int causal,
                               pare_attn_p_scale ps)
{
    float *qkv = randn(B * T * 3 * C, 1), *o = xalloc((size_t)(B * T * C) * 4), *orf = xalloc((size_t)(B * T * C) * 4),
          *of = xalloc((size_t)(B * T * C) * 4), *att = xalloc((size_t)(B * H * T * T) * 4);
    void *ws = xalloc(pare_attention_i8_workspace(B, T, C, H));
    char what[160];
    snprintf(what, sizeof what, "attention int8 B=%lld T=%lld C=%lld H=%lld %s%s, %s", (long long)B, (long long)T,
             (long long)C, (long long)H, lengths ? "padded" : "full", causal ? " causal" : "", p_names[ps]);
    pare_attention_forward_i8_ref(orf, qkv, lengths, causal, ps, B, T, C, H);
    int n0 = pare_get_num_threads(), same = 1;
    pare_status st = PARE_OK;
    int64_t first = -1;
    for (int th = 1; th <= 2; th++) {
        pare_set_num_threads(th);
        memset(o, 0xff, (size_t)(B * T * C) * 4);
        st |= pare_attention_forward_i8(o, qkv, lengths, causal, ps, B, T, C, H, ws);
        same &= bits_equal(o, orf, B * T * C, &first);
    }
    pare_set_num_threads(n0);
    if (!ok(st == PARE_OK && same, "%s: fast == ref bit for bit, 1 and 2 threads %s", what, st ? pare_errmsg() : "") &&
        first >= 0)
        diag("first mismatch [%lld]: %.9g vs %.9g", (long long)first, o[first], orf[first]);
    pare_attention_forward_ref(of, att, qkv, lengths, causal, B, T, C, H); /* f32 attention, exactly */
    double r = attention_bound_ratio(o, of, att, ps == PARE_ATTN_P_ROW, qkv, lengths, causal, B, T, C, H),
           e = rel_err(o, of, B * T * C);
    ok(r <= 1.0 && e < 0.1, "%s: within the derived bound of f32 attention (worst error/bound %.3f), rel err %.4f",
       what, r, e);
    free(qkv), free(o), free(orf), free(of), free(att), free(ws);
}

static void test_attention(void)
{
    const int32_t len2[2] = {37, 20}, len3[3] = {130, 0, 71};
    for (int ps = 0; ps < PARE_ATTN_P_COUNT; ps++)
        for (int causal = 0; causal < 2; causal++) {
            test_attention_one(2, 37, 48, 3, NULL, causal, (pare_attn_p_scale)ps);
            test_attention_one(2, 37, 48, 3, len2, causal, (pare_attn_p_scale)ps);
            test_attention_one(3, 130, 64, 2, len3, causal, (pare_attn_p_scale)ps); /* three query blocks, an empty sequence */
            test_attention_one(1, 1, 8, 1, NULL, causal, (pare_attn_p_scale)ps);
        }
    /* an empty sequence gives zeros */
    {
        const int64_t B = 1, T = 5, C = 8, H = 2;
        const int32_t len0[1] = {0};
        float *qkv = randn(B * T * 3 * C, 1), *o = xalloc((size_t)(B * T * C) * 4);
        memset(o, 0xff, (size_t)(B * T * C) * 4);
        void *ws = xalloc(pare_attention_i8_workspace(B, T, C, H));
        int zero = pare_attention_forward_i8(o, qkv, len0, 0, PARE_ATTN_P_ROW, B, T, C, H, ws) == PARE_OK;
        for (int64_t i = 0; i < B * T * C; i++) zero &= o[i] == 0.0f;
        ok(zero, "attention int8: length 0 gives out = 0");
        free(qkv), free(o), free(ws);
    }
    /* errors */
    const int64_t B = 2, T = 9, C = 12, H = 3, D = C / H;
    float *qkv = randn(B * T * 3 * C, 1), *o = xalloc((size_t)(B * T * C) * 4);
    void *ws = xalloc(pare_attention_i8_workspace(B, T, C, H));
    const int32_t len[2] = {9, 5};
    qkv[(1 * T + 7) * 3 * C + C + 2 * D + 1] = NAN; /* k of head 2, padded token 7 of sequence 1: unused */
    ok(pare_attention_forward_i8(o, qkv, len, 0, PARE_ATTN_P_ROW, B, T, C, H, ws) == PARE_OK,
       "attention int8: NaN in a padded key is ignored");
    qkv[(1 * T + 3) * 3 * C + 2 * C + 1 * D] = INFINITY; /* v of head 1, token 3 of sequence 1 */
    ok(pare_attention_forward_i8(o, qkv, len, 0, PARE_ATTN_P_ROW, B, T, C, H, ws) == PARE_ENUMERIC &&
           strstr(pare_errmsg(), "batch 1, token 3, v of head 1"),
       "attention int8: Inf in a valid value: PARE_ENUMERIC naming it: %s", pare_errmsg());
    ok(pare_attention_forward_i8(o, qkv, len, 0, PARE_ATTN_P_ROW, B, T, C, 5, ws) == PARE_EINVAL,
       "attention int8: C %% H != 0 rejected: %s", pare_errmsg());
    ok(pare_attention_forward_i8(o, qkv, len, 0, PARE_ATTN_P_ROW, B, T, C, H, NULL) == PARE_EINVAL,
       "attention int8: NULL workspace rejected");
    ok(pare_attention_forward_i8(o, qkv, len, 0, PARE_ATTN_P_ROW, B, 70000, C, H, ws) == PARE_EINVAL,
       "attention int8: T > 66311 rejected: %s", pare_errmsg());
    ok(pare_attention_forward_i8(o, qkv, len, 0, (pare_attn_p_scale)PARE_ATTN_P_COUNT, B, T, C, H, ws) == PARE_EINVAL &&
           strstr(pare_errmsg(), "p_scale"),
       "attention int8: a p_scale out of range rejected: %s", pare_errmsg());
    free(qkv), free(o), free(ws);
}

/* Flat attention over long sequences: q, k, v ~ N(0,1), D = 32. The fixed grid 1/255 rounds probabilities
 * ~1/T to 0 once T > 510; the per-row scale keeps a step of max_j P/255 and its error does not grow. */
static void test_attention_long_t(void)
{
    const int64_t B = 1, C = 64, H = 2, Ts[3] = {64, 256, 1024};
    const double rel_bound = 0.03; /* the per-row scale's relative error, at every T */
    for (int t = 0; t < 3; t++) {
        const int64_t T = Ts[t];
        float *qkv = randn(B * T * 3 * C, 1), *o = xalloc((size_t)(B * T * C) * 4), *orf = xalloc((size_t)(B * T * C) * 4),
              *of = xalloc((size_t)(B * T * C) * 4), *att = xalloc((size_t)(B * H * T * T) * 4);
        void *ws = xalloc(pare_attention_i8_workspace(B, T, C, H));
        pare_attention_forward_ref(of, att, qkv, NULL, 0, B, T, C, H);
        double e[2], r[2];
        int same = 1;
        pare_status st = PARE_OK;
        for (int ps = 0; ps < 2; ps++) {
            st |= pare_attention_forward_i8(o, qkv, NULL, 0, (pare_attn_p_scale)ps, B, T, C, H, ws);
            pare_attention_forward_i8_ref(orf, qkv, NULL, 0, (pare_attn_p_scale)ps, B, T, C, H);
            same &= bits_equal(o, orf, B * T * C, NULL);
            e[ps] = rel_err(o, of, B * T * C);
            r[ps] = attention_bound_ratio(o, of, att, 1 /* the per-row bound, for both */, qkv, NULL, 0, B, T, C, H);
        }
        ok(st == PARE_OK && same, "attention int8 T=%lld: fast == ref bit for bit, both scales of P", (long long)T);
        ok(r[0] <= 1.0 && e[0] < rel_bound,
           "attention int8 T=%lld, P per row: within the per-row bound (worst error/bound %.3f), rel err %.4f < %.2f "
           "(fixed 1/255: %.4f)", (long long)T, r[0], e[0], rel_bound, e[1]);
        if (T >= 1024)
            ok(e[1] > rel_bound,
               "attention int8 T=%lld, P fixed 1/255: rel err %.4f exceeds the per-row scale's bound %.2f (its elementwise "
               "error/per-row bound %.2f)", (long long)T, e[1], rel_bound, r[1]);
        free(qkv), free(o), free(orf), free(of), free(att), free(ws);
    }
}

/* ---- without VNNI (child process) ---- */

/* fast vs ref for every mode, LLM.int8 and attention; returns the number of failures */
static int fast_vs_ref_all(const int64_t (*shapes)[3], size_t nshapes)
{
    int fails = 0;
    for (size_t s = 0; s < nshapes; s++) {
        const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *x = randn(M * K, 1), *W = randn(N * K, 0.05f), *b = randn(N, 0.1f);
        float *y = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4);
        x[K / 2] *= 50; /* an outlier feature in row 0 */
        pare_i8_weight w;
        fails += pare_i8_weight_quantize(&w, W, N, K) != PARE_OK;
        for (int mode = 0; mode < PARE_ACT_MODE_COUNT; mode++)
            for (int sym = 1; sym >= 0; sym--)
                for (int outl = 0; outl < 3; outl++) { /* none, f32, f16 */
                    pare_i8_act a = {.mode = (pare_act_mode)mode, .symmetric = sym};
                    if (mode == PARE_ACT_STATIC) a = static_for(x, M * K, sym);
                    a.outlier_threshold = outl ? 6.0f : 0.0f;
                    a.outlier_f16 = outl == 2;
                    void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
                    int64_t no = -1, nor = -2;
                    fails += pare_linear_i8_act(y, x, &w, W, b, M, &a, ws, &no) != PARE_OK;
                    pare_linear_i8_act_ref(yr, x, &w, W, b, M, &a, &nor);
                    fails += no != nor || (outl && no < 1);
                    if (!outl)
                        fails += !bits_equal(y, yr, M * N, NULL);
                    else
                        for (int64_t i = 0; i < M * N; i++) fails += fabsf(y[i] - yr[i]) > 1e-5f + 1e-5f * fabsf(yr[i]);
                    free(ws);
                }
        pare_i8_weight_free(&w);
        free(x), free(W), free(b), free(y), free(yr);
    }
    const int32_t len[2] = {70, 33};
    for (int causal = 0; causal < 2; causal++) {
        const int64_t B = 2, T = 70, C = 32, H = 2;
        float *qkv = randn(B * T * 3 * C, 1), *o = xalloc((size_t)(B * T * C) * 4),
              *orf = xalloc((size_t)(B * T * C) * 4);
        void *ws = xalloc(pare_attention_i8_workspace(B, T, C, H));
        for (int ps = 0; ps < PARE_ATTN_P_COUNT; ps++) {
            fails += pare_attention_forward_i8(o, qkv, len, causal, (pare_attn_p_scale)ps, B, T, C, H, ws) != PARE_OK;
            pare_attention_forward_i8_ref(orf, qkv, len, causal, (pare_attn_p_scale)ps, B, T, C, H);
            fails += !bits_equal(o, orf, B * T * C, NULL);
        }
        free(qkv), free(o), free(orf), free(ws);
    }
    return fails;
}

/* -128 weights at the worst case (test_minus128_worst) on the kernels of check_without_vnni: fast == ref. */
static int minus128_fails(void)
{
    const int64_t M = 2, N = 2, K = 65793;
    int fails = 0;
    int8_t *q = xalloc((size_t)(N * K));
    memset(q, 0x80, (size_t)(N * K));
    float sc[2] = {1.0f, 0.5f}, *x = xalloc((size_t)(M * K) * 4), y[4], yr[4];
    for (int64_t i = 0; i < M * K; i++) x[i] = i < K ? 1.0f : -1.0f;
    pare_i8_weight w;
    fails += pare_i8_weight_from_int(&w, q, sc, N, K) != PARE_OK;
    for (int sym = 1; sym >= 0; sym--) {
        pare_i8_act a = {.mode = PARE_ACT_DYN_TENSOR, .symmetric = sym};
        void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
        fails += pare_linear_i8_act(y, x, &w, NULL, NULL, M, &a, ws, NULL) != PARE_OK;
        pare_linear_i8_act_ref(yr, x, &w, NULL, NULL, M, &a, NULL);
        fails += !bits_equal(y, yr, M * N, NULL);
        free(ws);
    }
    pare_i8_weight_free(&w);
    free(q), free(x);
    return fails;
}

static int check_without_vnni(void)
{
    int fails = 0;
    if (dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2) != dnnl_success) fails += 100;
    ((pare_cpu *)pare_cpu_get())->avx512f = 0; /* test-only: route to the portable row kernels */
    fails += pare_linear_i8_path(768) != PARE_I8_PATH_S8S8_MADD;
    pare_rng_seed(&g_rng, 11);
    static const int64_t shapes[][3] = {{1, 5, 67}, {7, 33, 67}, {64, 48, 200}, {2, 3, 70001}};
    fails += fast_vs_ref_all(shapes, 4);
    fails += minus128_fails();
    /* and the plain C GEMM kernel, as on a CPU without AVX2 */
    ((pare_cpu *)pare_cpu_get())->avx2 = 0;
    fails += fast_vs_ref_all(shapes + 1, 2);
    fails += minus128_fails();
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
       "without VNNI (oneDNN limited to avx2, portable row kernels; then the plain C gemm): every mode sym/asym with "
       "and without LLM.int8, K = 67…70001, weights of -128 at K = 65793, and int8 attention, fast == ref (child "
       "exit %d)",
       waited && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    pare_rng_seed(&g_rng, 20240917);
    diag("int8 path for K=768 on this machine: %s", pare_i8_path_name(pare_linear_i8_path(768)));
    test_modes();
    test_tensor_weights();
    test_from_int();
    test_static_saturation();
    test_asym_beats_sym();
    test_large_k();
    test_act_errors();
    test_llm_int8();
    test_attention();
    test_attention_long_t();
    return tap_done();
}
