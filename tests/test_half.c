/* test_half.c — the 16-bit float Linear (kernels/gemm_half.h) and the fast conversions it runs on
 * (kernels/cast.h), against their references.
 *
 * Conversions: pare_cast_to_half_fast / _from_half_fast / _round_fast give the bits of the scalar casts
 * (themselves checked against an independent rounding in test_dtype.c): every 16-bit pattern widened; f32
 * inputs at every rounding boundary of both formats (each pattern's midpoint to its neighbour and one f32
 * ulp either side), random values over the whole exponent range, subnormals, overflow, ±0, ±Inf, NaN;
 * lengths that leave vector tails.
 * Weights: bits equal to the scalar conversion; NaN / Inf / out-of-range (f16 > 65504) refused naming the
 * element; bad dtype and sizes refused; free twice.
 * Linear: pare_linear_half (oneDNN's bf16 inner product here) and pare_linear_half_widen against
 * pare_linear_half_ref for bf16 and f16, M = 1…128, N and K not multiples of 16, with and without bias,
 * within the bound of any f32 summation order (gemm_half.h): |y − ref| <= (K+2)·2^-24·(Σ|r(x)·w| + |b|) +
 * K·2^-126; 1 and 2 threads; two OpenMP threads on one weight at once; M = 0; a short workspace refused.
 * Models: the bf16 pass (dtype bf16, f16) stores every Linear in 16 bits with the packed copies counted
 * apart; a weight beyond f16's range is refused naming the layer; checkpoints restore the same 16-bit bits
 * and the logits bit for bit; damaged "half" metadata is an error naming the file and the weight.
 * A forked child re-checks with oneDNN limited to AVX2 (no bf16 inner product: the widen kernel must be
 * chosen), the widen kernel's small-M dot products and the conversions on their AVX-512, AVX2 and C paths; a second child with oneDNN limited to
 * AVX-512 without BF16 (oneDNN would only emulate bf16: the widen kernel must be chosen). No timing.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dnnl.h>

#include "compress/pass.h"
#include "core/cpu.h"
#include "core/options.h"
#include "core/rng.h"
#include "core/status.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "graph/serialize.h"
#include "io/safetensors.h"
#include "kernels/cast.h"
#include "kernels/gemm.h"
#include "kernels/gemm_half.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"
#include "test_rand.h"

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static uint16_t to_half(float x, pare_dtype t) { return t == PARE_BF16 ? pare_f32_to_bf16(x) : pare_f32_to_f16(x); }
static float from_half(uint16_t h, pare_dtype t) { return t == PARE_BF16 ? pare_bf16_to_f32(h) : pare_f16_to_f32(h); }

/* f32 inputs that exercise both formats' rounding: for every 16-bit pattern, its value, the midpoint to the
 * next pattern (a tie) and one ulp either side of it; random values from 2^-140 to 2^130; the specials. */
static float *boundary_inputs(int64_t *n)
{
    int64_t cap = 2 * 65536 * 4 + 200000 + 64, k = 0;
    float *x = xalloc((size_t)cap * sizeof(float));
    for (int t = 0; t < 2; t++) {
        pare_dtype dt = t ? PARE_F16 : PARE_BF16;
        for (uint32_t h = 0; h < 65536; h++) {
            float a = from_half((uint16_t)h, dt), b = from_half((uint16_t)(h + 1), dt);
            if (!isfinite(a)) continue;
            x[k++] = a;
            if (!isfinite(b) || (h & 0x7fff) == 0x7fff) continue;
            float mid = (float)(((double)a + (double)b) / 2); /* exact: one more bit than the format */
            x[k++] = mid;
            x[k++] = nextafterf(mid, INFINITY);
            x[k++] = nextafterf(mid, -INFINITY);
        }
    }
    for (int i = 0; i < 200000; i++) {
        double e = -140 + 270 * pare_rng_uniform(&g_rng);
        x[k++] = (float)((pare_rng_uniform(&g_rng) < 0.5 ? -1 : 1) * ldexp(1.0 + pare_rng_uniform(&g_rng), (int)e));
    }
    float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, bits_f(0x7f800001u), bits_f(0xffc12345u), 65504.0f,
                  65519.99f, 65520.0f, -65520.0f, 1e-45f, -1e-45f, 1.17549435e-38f, 5.96e-8f, 2.98e-8f, 2.99e-8f,
                  3.4028235e38f, -3.4028235e38f, bits_f(0x7f7f8000u), bits_f(0x7f7f7fffu)};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) x[k++] = sp[i];
    *n = k;
    return x;
}

/* Fast conversions against the scalar ones; returns the number of mismatches (diag of the first). */
static int64_t check_conversions(const char *path, int verbose)
{
    int64_t bad = 0, n;
    float *x = boundary_inputs(&n);
    uint16_t *h = xalloc((size_t)n * 2), *pat = xalloc(65536 * 2);
    float *r = xalloc((size_t)n * 4), *w = xalloc(65536 * 4);
    for (uint32_t i = 0; i < 65536; i++) pat[i] = (uint16_t)i;
    for (int t = 0; t < 2; t++) {
        pare_dtype dt = t ? PARE_F16 : PARE_BF16;
        int64_t b1 = 0, b2 = 0, b3 = 0;
        /* odd lengths from odd offsets: every vector tail */
        for (int64_t off = 0; off < 3; off++) {
            pare_cast_to_half_fast(h + off, dt, x + off, n - 2 * off);
            pare_cast_round_fast(r + off, x + off, dt, n - 2 * off);
            for (int64_t i = off; i < n - off; i++) {
                uint16_t want = to_half(x[i], dt);
                float wr = from_half(want, dt);
                if (h[i] != want) {
                    if (!b1++ && verbose) diag("%s %s: x=%a -> %04x, scalar %04x", path, pare_dtype_name(dt), x[i], h[i], want);
                }
                if (!(f_bits(r[i]) == f_bits(wr) || (isnan(r[i]) && isnan(wr)))) {
                    if (!b2++ && verbose) diag("%s round %s: x=%a -> %a, scalar %a", path, pare_dtype_name(dt), x[i], r[i], wr);
                }
            }
        }
        pare_cast_from_half_fast(w + 1, pat + 1, dt, 65535);
        pare_cast_from_half_fast(w, pat, dt, 1);
        for (uint32_t i = 0; i < 65536; i++) {
            float want = from_half((uint16_t)i, dt);
            /* NaN patterns: F16C quiets signalling NaNs (payload bit 22), the scalar widening keeps them */
            if (!(f_bits(w[i]) == f_bits(want) || (isnan(w[i]) && isnan(want)))) {
                if (!b3++ && verbose) diag("%s widen %s: %04x -> %a, scalar %a", path, pare_dtype_name(dt), i, w[i], want);
            }
        }
        if (verbose) {
            ok(b1 == 0, "%s: f32 -> %s fast == scalar on %lld inputs (boundaries, ties, subnormals, overflow, NaN)", path,
               pare_dtype_name(dt), (long long)n);
            ok(b2 == 0, "%s: round onto %s's grid fast == scalar cast there and back", path, pare_dtype_name(dt));
            ok(b3 == 0, "%s: %s -> f32 fast == scalar for all 65536 patterns", path, pare_dtype_name(dt));
        }
        bad += b1 + b2 + b3;
    }
    free(x), free(h), free(pat), free(r), free(w);
    return bad;
}

/* Elements of y beyond the summation-order bound against yr (the reference), for r(x) and the weight's
 * values; *ratio gets the largest |y − yr| / bound seen. */
static int64_t beyond_bound(const float *y, const float *yr, const float *x, const pare_half_weight *w, const float *b,
                            int64_t M, double *ratio)
{
    const int64_t N = w->N, K = w->K;
    int64_t bad = 0;
    double worst = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = b ? fabs(b[n]) : 0;
            for (int64_t k = 0; k < K; k++)
                s += fabs((double)from_half(to_half(x[m * K + k], w->dtype), w->dtype) * from_half(w->w[n * K + k], w->dtype));
            double bound = (double)(K + 2) * ldexp(1.0, -24) * s + (double)K * ldexp(1.0, -126);
            double d = fabs((double)y[m * N + n] - yr[m * N + n]);
            if (!(d <= bound)) bad++;
            if (bound > 0 && d / bound > worst) worst = d / bound;
        }
    if (ratio) *ratio = worst;
    return bad;
}

typedef pare_status (*half_fn)(float *, const float *, const pare_half_weight *, const float *, int64_t, void *, size_t);

/* One shape through both kernels; returns failures (diag when verbose). */
static int64_t check_linear(int64_t M, int64_t N, int64_t K, pare_dtype dt, int with_bias, int verbose, double *ratio_out)
{
    float *x = randn(M * K, 1.0f), *W = randn(N * K, 0.08f), *b = with_bias ? randn(N, 0.5f) : NULL;
    x[0] = 3.0e-39f; /* a subnormal activation */
    float *y = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4);
    pare_half_weight w;
    int64_t fails = pare_half_weight_make(&w, W, N, K, dt, 1) != PARE_OK;
    if (fails) return fails;
    pare_linear_half_ref(yr, x, &w, b, M);
    size_t ws = pare_linear_half_workspace(&w, M), wsw = ws;
    {   /* the widen kernel's own size, for a packed weight too */
        pare_half_weight u = w;
        u.packed = NULL;
        wsw = pare_linear_half_workspace(&u, M);
    }
    void *work = xalloc(ws > wsw ? ws : wsw);
    half_fn fns[2] = {pare_linear_half, pare_linear_half_widen};
    const char *names[2] = {"pare_linear_half", "pare_linear_half_widen"};
    double worst = 0;
    for (int k = 0; k < 2; k++) {
        memset(y, 0xff, (size_t)(M * N) * 4); /* NaN: every element must be written */
        pare_status st = fns[k](y, x, &w, b, M, work, k ? wsw : ws);
        double ratio = 0;
        int64_t bad = st == PARE_OK ? beyond_bound(y, yr, x, &w, b, M, &ratio) : M * N;
        if (ratio > worst) worst = ratio;
        if (verbose)
            ok(bad == 0, "%s %s M=%lld N=%lld K=%lld%s (%s): within the summation-order bound of the reference "
               "(worst |err|/bound %.3f)", names[k], pare_dtype_name(dt), (long long)M, (long long)N, (long long)K,
               with_bias ? " +bias" : "", k ? "pare:widen" : pare_half_weight_impl(&w), ratio);
        fails += bad != 0;
    }
    /* activations already in the weights' dtype: the same bits as rounding inside, on both kernels */
    uint16_t *xh = xalloc((size_t)(M * K) * 2);
    for (int64_t i = 0; i < M * K; i++) xh[i] = to_half(x[i], dt);
    float *y16 = xalloc((size_t)(M * N) * 4);
    for (int k = 0; k < 2; k++) {
        pare_half_weight u = w;
        if (k) u.packed = NULL;
        fns[k](y, x, &u, b, M, work, k ? wsw : ws);
        pare_status st = pare_linear_half_in16(y16, xh, &u, b, M, work, k ? wsw : ws);
        int same = st == PARE_OK && !memcmp(y, y16, (size_t)(M * N) * 4);
        if (verbose)
            ok(same, "pare_linear_half_in16 %s M=%lld N=%lld K=%lld%s (%s): %s input read as it is == f32 input rounded "
               "inside, bit for bit", pare_dtype_name(dt), (long long)M, (long long)N, (long long)K, with_bias ? " +bias" : "",
               k ? "pare:widen" : pare_half_weight_impl(&w), pare_dtype_name(dt));
        fails += !same;
    }
    free(xh), free(y16);
    if (ratio_out) *ratio_out = worst;
    pare_half_weight_free(&w);
    free(x), free(W), free(b), free(y), free(yr), free(work);
    return fails;
}

static void test_weights(void)
{
    int64_t N = 37, K = 29;
    float *W = randn(N * K, 1.0f);
    for (int t = 0; t < 2; t++) {
        pare_dtype dt = t ? PARE_F16 : PARE_BF16;
        pare_half_weight w;
        ok(pare_half_weight_make(&w, W, N, K, dt, 1) == PARE_OK, "%s weight made (N=37 K=29)", pare_dtype_name(dt));
        int64_t bad = 0;
        for (int64_t i = 0; i < N * K; i++) bad += w.w[i] != to_half(W[i], dt);
        ok(bad == 0 && w.N == N && w.K == K && w.dtype == dt, "%s weight: the scalar conversion's bits", pare_dtype_name(dt));
        ok(pare_half_weight_bytes(&w) == (size_t)(2 * N * K), "%s weight: %zu bytes stored = 2 per weight",
           pare_dtype_name(dt), pare_half_weight_bytes(&w));
        diag("%s kernel on this machine: %s (packed copy %zu bytes)", pare_dtype_name(dt), pare_half_weight_impl(&w),
             pare_half_weight_packed_bytes(&w));
        pare_half_weight_free(&w);
        pare_half_weight_free(&w);
        ok(w.w == NULL && w.packed == NULL, "%s weight: free twice is safe", pare_dtype_name(dt));
    }
    float keep = W[2 * K + 3];
    W[2 * K + 3] = NAN;
    pare_half_weight w;
    ok(pare_half_weight_make(&w, W, N, K, PARE_BF16, 1) == PARE_ENUMERIC && strstr(pare_errmsg(), "NaN at (2, 3)") &&
           w.w == NULL,
       "NaN weight refused naming the element: %s", pare_errmsg());
    W[2 * K + 3] = 70000.0f;
    ok(pare_half_weight_make(&w, W, N, K, PARE_F16, 1) == PARE_ENUMERIC && strstr(pare_errmsg(), "(2, 3)") &&
           strstr(pare_errmsg(), "65504") && strstr(pare_errmsg(), "bf16"),
       "f16: 70000 is beyond the range, refused naming the element and suggesting bf16: %s", pare_errmsg());
    ok(pare_half_weight_make(&w, W, N, K, PARE_BF16, 1) == PARE_OK && pare_bf16_to_f32(w.w[2 * K + 3]) == 70144.0f,
       "bf16 keeps 70000 (as 70144, the nearest bf16)");
    pare_half_weight_free(&w);
    W[2 * K + 3] = keep;
    ok(pare_half_weight_make(&w, W, N, K, PARE_F32, 1) == PARE_EINVAL && strstr(pare_errmsg(), "f32"),
       "dtype f32 refused: %s", pare_errmsg());
    ok(pare_half_weight_make(&w, W, 0, K, PARE_BF16, 1) == PARE_EINVAL, "N = 0 refused: %s", pare_errmsg());
    free(W);
}

static void test_linear(void)
{
    static const int64_t shapes[][3] = {{1, 5, 67}, {2, 9, 16}, {4, 70, 33}, {7, 33, 17}, {33, 65, 129}, {128, 96, 768},
                                        {3, 768, 3072}, {20, 1, 1}};
    double worst = 0;
    for (int t = 0; t < 2; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int bias = 0; bias < 2; bias++) {
                double r;
                check_linear(shapes[s][0], shapes[s][1], shapes[s][2], t ? PARE_F16 : PARE_BF16, bias, 1, &r);
                if (r > worst) worst = r;
            }
    diag("largest |y - ref| / bound over all shapes: %.4f (the bound is for any summation order)", worst);

    /* threads: 1 and 2 both within the bound; concurrent callers on one weight */
    int n0 = pare_get_num_threads();
    int64_t M = 64, N = 200, K = 300;
    float *x = randn(M * K, 1), *W = randn(N * K, 0.1f), *b = randn(N, 1), *yr = xalloc((size_t)(M * N) * 4);
    pare_half_weight w;
    pare_half_weight_make(&w, W, N, K, PARE_BF16, 1);
    pare_linear_half_ref(yr, x, &w, b, M);
    pare_set_num_threads(2);
    size_t ws = pare_linear_half_workspace(&w, M);
    float *y2[2] = {xalloc((size_t)(M * N) * 4), xalloc((size_t)(M * N) * 4)};
    void *work[2] = {xalloc(ws), xalloc(ws)};
    pare_status st2[2] = {PARE_EINTERNAL, PARE_EINTERNAL};
#pragma omp parallel num_threads(2)
    {
        int i = omp_get_thread_num();
        st2[i] = pare_linear_half(y2[i], x, &w, b, M, work[i], ws);
    }
    ok(st2[0] == PARE_OK && st2[1] == PARE_OK && beyond_bound(y2[0], yr, x, &w, b, M, NULL) == 0 &&
           !memcmp(y2[0], y2[1], (size_t)(M * N) * 4),
       "two OpenMP threads on one bf16 weight at once: both within the bound, the same bits");
    for (int th = 1; th <= 2; th++) {
        pare_set_num_threads(th);
        pare_half_weight u = w;
        u.packed = NULL;
        size_t wsu = pare_linear_half_workspace(&u, M);
        void *wk = xalloc(wsu);
        pare_status s1 = pare_linear_half(y2[0], x, &w, b, M, work[0], ws);
        pare_status s2 = pare_linear_half_widen(y2[1], x, &w, b, M, wk, wsu);
        ok(s1 == PARE_OK && s2 == PARE_OK && beyond_bound(y2[0], yr, x, &w, b, M, NULL) == 0 &&
               beyond_bound(y2[1], yr, x, &w, b, M, NULL) == 0,
           "%d thread(s): both kernels within the bound", th);
        ok(pare_linear_half_widen(y2[1], x, &w, b, M, wk, 1000) == PARE_EINVAL && strstr(pare_errmsg(), "workspace"),
           "a short workspace is refused: %s", pare_errmsg());
        free(wk);
    }
    pare_set_num_threads(n0);
    ok(pare_linear_half(NULL, NULL, &w, b, 0, NULL, 0) == PARE_OK, "M = 0 does nothing");
    ok(pare_linear_half(y2[0], x, &w, b, -1, work[0], ws) == PARE_EINVAL, "M < 0 refused: %s", pare_errmsg());
    pare_half_weight_free(&w);
    free(x), free(W), free(b), free(yr), free(y2[0]), free(y2[1]), free(work[0]), free(work[1]);
}

/* ---- models: the pass, checkpoints ---- */

enum { MB = 3, MT = 9 };

static pare_model *encoder(void)
{
    pare_kv kv[] = {{"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 11, NULL}, {"max_T", PARE_KV_NUM, MT, NULL},
                    {"d", PARE_KV_NUM, 32, NULL},         {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 2, NULL},
                    {"classes", PARE_KV_NUM, 3, NULL},    {"ffn", PARE_KV_NUM, 64, NULL},  {"seed", PARE_KV_NUM, 42, NULL}};
    pare_model *m = build_model(kv, (int)(sizeof kv / sizeof kv[0]));
    return m;
}

static float *model_logits(pare_model *m)
{
    int32_t tok[MB * MT], len[MB] = {MT, MT - 3, 2};
    pare_rng r;
    pare_rng_seed(&r, 17);
    for (int i = 0; i < MB * MT; i++) tok[i] = (int32_t)pare_rng_below(&r, (uint64_t)m->vocab);
    pare_exec *x = NULL;
    float *out = NULL;
    if (pare_exec_new(&x, m, MB, MT, PARE_EXEC_INFER) == PARE_OK && pare_exec_bind(x, tok, len, NULL) == PARE_OK &&
        pare_exec_forward(x) == PARE_OK) {
        out = malloc(sizeof(float) * (size_t)(MB * m->nclass));
        memcpy(out, pare_exec_logits(x), sizeof(float) * (size_t)(MB * m->nclass));
    } else {
        diag("forward: %s", pare_errmsg());
    }
    pare_exec_free(x);
    return out;
}

static void test_models(void)
{
    pare_model *m = encoder(), *h = NULL, *back = NULL;
    if (!m) return;
    for (int t = 0; t < 2; t++) {
        const char *dt = t ? "f16" : "bf16";
        pare_kv kv[] = {{"dtype", PARE_KV_STR, 0, dt}};
        if (!ok(pare_apply(&h, m, "bf16", kv, 1) == PARE_OK, "bf16 pass, dtype=%s", dt)) {
            diag("%s", pare_errmsg());
            continue;
        }
        int64_t n16 = 0, nlin = 0, f32_bytes = 0;
        size_t packed = 0;
        for (int64_t i = 0; i < h->nnodes; i++) {
            if (h->nodes[i].op != PARE_OP_LINEAR) continue;
            const pare_param *w = &h->params[h->nodes[i].param[0]];
            nlin++;
            n16 += w->format == PARE_FMT_HALF && w->q->hw.dtype == (t ? PARE_F16 : PARE_BF16) &&
                   pare_param_bytes(w) == (size_t)(2 * pare_param_numel(w)) && !strcmp(pare_format_label(w), dt);
            f32_bytes += 4 * pare_param_numel(w);
            packed += pare_half_weight_packed_bytes(&w->q->hw);
        }
        ok(n16 == nlin && nlin > 0, "%s: all %lld Linears stored in %s at 2 bytes per weight", dt, (long long)nlin, dt);
        ok(pare_model_size_bytes(m) - pare_model_size_bytes(h) == (size_t)f32_bytes / 2,
           "%s: the model is smaller by 2 bytes per Linear weight", dt);
        ok(pare_model_packed_bytes(h) == packed, "%s: oneDNN's packed copies (%zu bytes) counted apart, not in the size",
           dt, packed);
        /* checkpoint: the same 16-bit bits, the same logits */
        char dir[] = "/tmp/pare_half_XXXXXX", path[128];
        if (mkdtemp(dir)) {
            snprintf(path, sizeof path, "%s/h.safetensors", dir);
            ok(pare_model_save(h, path) == PARE_OK, "%s: save", dt);
            pare_st_file *f = NULL;
            if (pare_safetensors_open(&f, path) == PARE_OK) {
                const char *meta = pare_safetensors_meta(f, "half");
                ok(meta && strstr(meta, "\"enc.0.attn.qkv.weight\":\"") && strstr(meta, dt),
                   "%s: __metadata__ \"half\" lists the weights and their dtype", dt);
                pare_safetensors_close(f);
            }
            if (ok(pare_model_load(&back, path) == PARE_OK, "%s: load", dt)) {
                int same = 1;
                for (int64_t i = 0; i < h->nparams; i++) {
                    const pare_param *a = &h->params[i], *b = &back->params[pare_model_find_param(back, a->name)];
                    if (a->format != b->format) same = 0;
                    else if (a->format == PARE_FMT_HALF)
                        same &= a->q->hw.dtype == b->q->hw.dtype &&
                                !memcmp(a->q->hw.w, b->q->hw.w, pare_half_weight_bytes(&a->q->hw));
                }
                float *la = model_logits(h), *lb = model_logits(back);
                ok(same && la && lb && !memcmp(la, lb, sizeof(float) * MB * 3),
                   "%s: loaded: the same 16-bit weights, bit for bit, and the same logits", dt);
                free(la), free(lb);
                pare_model_free(back);
                back = NULL;
            } else {
                diag("%s", pare_errmsg());
            }
            /* damaged metadata: an unknown weight, a dtype that is not 16-bit */
            const char *bad[][2] = {{"{\"nope.weight\":\"bf16\"}", "names 'nope.weight'"},
                                    {"{\"enc.0.ffn.up.weight\":\"f32\"}", "not bf16 or f16"},
                                    {"[1]", "not a JSON object"}};
            for (int k = 0; k < 3; k++) {
                pare_st_out *o = malloc(sizeof *o * (size_t)h->nparams);
                for (int64_t i = 0; i < h->nparams; i++)
                    o[i] = (pare_st_out){h->params[i].name, h->params[i].ndim, h->params[i].shape, h->params[i].blob->data};
                char *graph = NULL;
                pare_graph_to_json(h, &graph);
                const char *meta[] = {"format", "pare", "config", h->config, "graph", graph, "half", bad[k][0]};
                pare_safetensors_write_f32(path, o, h->nparams, meta, 4);
                pare_status st = pare_model_load(&back, path);
                ok(st == PARE_EFORMAT && strstr(pare_errmsg(), path) && strstr(pare_errmsg(), bad[k][1]),
                   "%s: __metadata__ \"half\" = %s refused: %s", dt, bad[k][0], pare_errmsg());
                pare_model_free(back);
                back = NULL;
                free(graph), free(o);
            }
            unlink(path);
            rmdir(dir);
        }
        pare_model_free(h);
        h = NULL;
    }
    /* a bf16 value into the bf16 Linears (a cast before enc.0.ffn.up and enc.1.attn.qkv): read as it is, the same
     * logits bit for bit; an f16 weight does not read bf16, nor does an f32 one (dequantize): the executor says so */
    for (int t = 0; t < 2; t++) {
        pare_kv kv[] = {{"dtype", PARE_KV_STR, 0, t ? "f16" : "bf16"}};
        pare_model *q = NULL, *c = NULL, *d = NULL;
        if (pare_apply(&q, m, "bf16", kv, 1) != PARE_OK || !(c = pare_model_clone(q))) {
            diag("%s", pare_errmsg());
            pare_model_free(q);
            continue;
        }
        const char *lin[2] = {"enc.0.ffn.up", "enc.1.attn.qkv"};
        int okc = 1;
        for (int k = 0; k < 2; k++) {
            int64_t at = pare_model_find_node(c, lin[k]);
            int src = c->nodes[at].in[0];
            char name[64];
            snprintf(name, sizeof name, "%s.in16", lin[k]);
            int cv = pare_model_insert_node(c, at, PARE_OP_CAST, name, &src, 1, NULL, 0, c->values[src].rows,
                                            c->values[src].cols, (pare_node_attrs){.dtype = PARE_BF16});
            okc &= cv >= 0;
            if (cv >= 0) c->nodes[at + 1].in[0] = cv;
        }
        if (!t) {
            float *la = model_logits(q), *lb = okc ? model_logits(c) : NULL;
            ok(la && lb && !memcmp(la, lb, sizeof(float) * MB * 3),
               "bf16 Linears reading bf16 values (casts before two of them): the same logits, bit for bit");
            free(la), free(lb);
            pare_exec *x = NULL;
            pare_kv none[1];
            ok(pare_apply(&d, c, "dequantize", none, 0) == PARE_OK &&
                   pare_exec_new(&x, d, MB, MT, PARE_EXEC_INFER) == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.ffn.up") &&
                   strstr(pare_errmsg(), "stored as f32"),
               "dequantized, the f32 weights do not read the bf16 value: %s", pare_errmsg());
            pare_exec_free(x);
        } else {
            pare_exec *x = NULL;
            ok(okc && pare_exec_new(&x, c, MB, MT, PARE_EXEC_INFER) == PARE_EINVAL && strstr(pare_errmsg(), "stored as f16") &&
                   strstr(pare_errmsg(), "reads f32 or f16"),
               "f16 weights do not read a bf16 value: %s", pare_errmsg());
            pare_exec_free(x);
        }
        pare_model_free(q), pare_model_free(c), pare_model_free(d);
    }
    /* a weight beyond f16's range: the pass names the layer; bf16 takes it */
    int wi = pare_model_find_param(m, "enc.1.ffn.up.weight");
    pare_param_make_private(&m->params[wi]);
    m->params[wi].blob->data[5] = -70000.0f;
    pare_kv kv16[] = {{"dtype", PARE_KV_STR, 0, "f16"}};
    ok(pare_apply(&h, m, "bf16", kv16, 1) == PARE_ENUMERIC && strstr(pare_errmsg(), "enc.1.ffn.up") &&
           strstr(pare_errmsg(), "65504") && h == NULL,
       "f16 pass on a weight of -70000: refused naming the layer: %s", pare_errmsg());
    ok(pare_apply(&h, m, "bf16", NULL, 0) == PARE_OK, "bf16 pass on the same model: fine (bf16 has f32's range)");
    pare_model_free(h);
    pare_model_free(m);
}

/* In a child, before oneDNN's first use: oneDNN limited to `isa`; with `no_simd`, the conversions on their
 * AVX2 and then scalar paths too. want_widen: bf16 must run on the widen kernel (no oneDNN bf16 below
 * AVX-512). Returns failures (the parent prints one TAP line). */
static int check_limited(dnnl_cpu_isa_t isa, int want_widen, int no_simd)
{
    int64_t fails = 0;
    if (dnnl_set_max_cpu_isa(isa) != dnnl_success) fails += 100;
    pare_rng_seed(&g_rng, 11);
    pare_cpu *c = (pare_cpu *)pare_cpu_get(); /* test-only: route the conversions and dot products to the other paths */
    /* pass 0: this CPU's paths; with no_simd, pass 1 AVX2 (+F16C), pass 2 plain C */
    for (int pass = 0; pass < (no_simd ? 3 : 1); pass++) {
        if (pass == 1) c->avx512bw = 0, fails += check_conversions("avx2", 0);
        if (pass == 2) c->avx2 = 0, c->f16c = 0, fails += check_conversions("scalar", 0);
        static const int64_t shapes[][3] = {{1, 5, 67}, {3, 37, 200}, {4, 64, 16}, {33, 65, 129}, {64, 96, 768}};
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 2; t++) {
                float *W = randn(shapes[s][1] * shapes[s][2], 0.1f);
                pare_half_weight w;
                fails += pare_half_weight_make(&w, W, shapes[s][1], shapes[s][2], t ? PARE_F16 : PARE_BF16, 1) != PARE_OK;
                if (want_widen || t) fails += w.packed != NULL || strcmp(pare_half_weight_impl(&w), "pare:widen") != 0;
                pare_half_weight_free(&w);
                free(W);
                fails += check_linear(shapes[s][0], shapes[s][1], shapes[s][2], t ? PARE_F16 : PARE_BF16, 1, 0, NULL);
            }
    }
    return fails > 255 ? 255 : (int)fails;
}

static int run_child(dnnl_cpu_isa_t isa, int want_widen, int no_simd)
{
    pid_t child = fork();
    if (child == 0) _exit(check_limited(isa, want_widen, no_simd));
    int wstatus = 0;
    int waited = child > 0 && waitpid(child, &wstatus, 0) == child;
    return waited && WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

int main(void)
{
    /* fork first: before stdout is written to and before oneDNN or OpenMP start */
    int avx2 = run_child(dnnl_cpu_isa_avx2, 1, 1);
    int avx512 = run_child(dnnl_cpu_isa_avx512_core, 1, 0);
    tap_plan_lazy();
    ok(avx2 == 0, "oneDNN limited to AVX2: bf16 and f16 on the widen kernel, within the bound, with its AVX-512, AVX2 and "
       "C dot products (M <= 4); conversions on the AVX2 and scalar paths == scalar casts (child exit %d)", avx2);
    ok(avx512 == 0, "oneDNN limited to AVX-512 without BF16: bf16 on the widen kernel (oneDNN would only emulate it), "
       "within the bound (child exit %d)", avx512);
    pare_rng_seed(&g_rng, 20260115);
    char feats[256];
    diag("CPU: %s; features: %s", pare_cpu_get()->model, pare_cpu_features_str(feats, sizeof feats));
    check_conversions(pare_cpu_get()->avx512bw ? "avx512" : pare_cpu_get()->avx2 ? "avx2" : "scalar", 1);
    test_weights();
    test_linear();
    test_models();
    return tap_done();
}
