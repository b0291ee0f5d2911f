/* test_wq.c — the weight-only Linears of kernels/wq.h: int8 / int3 / int2 groups, binary, ternary, W4A8.
 *
 *   - storage: integers in, the same integers out of the layout (pare_wq_code), dequantized values exactly
 *     fp16(s)·q, exact bytes and bits per weight; binary / ternary against numfmt's fake quantization (the same
 *     signs and zeros, α within fp16 rounding)
 *   - every kernel (pare_wq_set_isa: scalar, avx2, avx512 where the CPU has them) at 1 and 2 threads, M in
 *     {1, 3, 4, 7, 33, 64} (GEMV tiles and the panel path), against the double-precision reference within the
 *     f32 rounding bound K·2^−23·Σ|x·ŵ|
 *   - W4A8: the reference's integer group sums equal the test's own Σ q·qx (its own activation quantizer), and
 *     every kernel's output is bit-identical to the reference's
 *   - errors: shapes, groups, codes out of range, NaN activations for W4A8, unknown isa
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/numfmt.h"
#include "core/tensor.h"
#include "graph/format.h"
#include "kernels/wq.h"
#include "tap.h"
#include "test_rand.h"

static const char *const ISAS[] = {"scalar", "avx2", "avx512"};

static int errmsg_has(const char *s) { return strstr(pare_errmsg(), s) != NULL; }

/* random integers in the kind's range, scales, zero points (asym) */
static void make_ints(int32_t *q, float *sc, int32_t *z, int bits, int sym, int64_t N, int64_t K, int64_t g)
{
    int64_t ng = K / g;
    for (int64_t i = 0; i < N * ng; i++) {
        sc[i] = 0.01f + 0.05f * (float)pare_rng_uniform(&g_rng);
        if (z) z[i] = (int32_t)(pare_rng_u64(&g_rng) % (uint64_t)(1 << bits));
    }
    for (int64_t i = 0; i < N * K; i++) {
        int32_t r = (int32_t)(pare_rng_u64(&g_rng) % (uint64_t)(1 << bits));
        q[i] = sym ? r - (1 << (bits - 1)) : r;
    }
}

static void test_storage(void)
{
    const pare_wq_kind kinds[] = {PARE_WQ_I8, PARE_WQ_I3, PARE_WQ_I2, PARE_WQ_W4A8};
    const int64_t N = 5, K = 192;
    for (int ki = 0; ki < 4; ki++)
        for (int sym = 1; sym >= 0; sym--) {
            pare_wq_kind kind = kinds[ki];
            if (kind == PARE_WQ_W4A8 && !sym) continue;
            int bits = pare_wq_kind_bits(kind);
            int64_t g = 64, ng = K / g;
            int32_t *q = xalloc(sizeof *q * (size_t)(N * K)), *z = sym ? NULL : xalloc(sizeof *z * (size_t)(N * ng));
            float *sc = xalloc(sizeof *sc * (size_t)(N * ng)), *W = xalloc(sizeof *W * (size_t)(N * K));
            make_ints(q, sc, z, bits, sym, N, K, g);
            pare_wq_weight w;
            pare_status st = pare_wq_from_int(&w, kind, q, sc, z, N, K, g);
            ok(st == PARE_OK, "%s %s: from_int (%s)", pare_wq_kind_name(kind), sym ? "sym" : "asym",
               st == PARE_OK ? "" : pare_errmsg());
            if (st != PARE_OK) continue;
            int same = 1, exact = 1;
            pare_wq_dequantize(W, &w);
            int mid = kind == PARE_WQ_I8 ? 128 : kind == PARE_WQ_I3 ? 4 : kind == PARE_WQ_I2 ? 2 : 8;
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < K; k++) {
                    int c = pare_wq_code(&w, n, k), want = sym ? q[n * K + k] + mid : q[n * K + k];
                    if (c != want) same = 0;
                    float s = pare_f16_to_f32(pare_f32_to_f16(sc[n * ng + k / g]));
                    int zz = sym ? mid : z[n * ng + k / g];
                    if (W[n * K + k] != s * (float)(want - zz)) exact = 0;
                }
            ok(same, "%s %s: every code reads back from the layout", pare_wq_kind_name(kind), sym ? "sym" : "asym");
            ok(exact, "%s %s: dequantized = fp16(s)·(u − z) exactly", pare_wq_kind_name(kind), sym ? "sym" : "asym");
            double want_bits = bits + 16.0 / (double)g + (sym ? 0.0 : 8.0 / (double)g);
            ok(fabs(pare_wq_bits_per_weight(&w) - want_bits) < 1e-12, "%s %s: %.4f bits/weight (want %.4f)",
               pare_wq_kind_name(kind), sym ? "sym" : "asym", pare_wq_bits_per_weight(&w), want_bits);
            pare_wq_free(&w);
            pare_wq_free(&w);
            free(q), free(z), free(sc), free(W);
        }
    /* binary / ternary against numfmt's fake quantization, one unit per row */
    const pare_wq_kind sk[] = {PARE_WQ_BIN, PARE_WQ_TER};
    const pare_numfmt nf[] = {PARE_NF_BINARY, PARE_NF_TERNARY};
    for (int i = 0; i < 2; i++) {
        float *W = randn(N * K, 0.1f), *F = xalloc(sizeof *F * (size_t)(N * K)), *D = xalloc(sizeof *D * (size_t)(N * K));
        pare_qspec s = {nf[i], 0, 1, PARE_GRAN_ROW, 0};
        pare_wq_weight w;
        ok(pare_fake_quant(F, W, N, K, &s) == PARE_OK && pare_wq_quantize_sign(&w, sk[i], W, N, K) == PARE_OK,
           "%s: quantized", pare_wq_kind_name(sk[i]));
        pare_wq_dequantize(D, &w);
        int same = 1;
        for (int64_t j = 0; j < N * K; j++) {
            float a = pare_f16_to_f32(pare_f32_to_f16(fabsf(F[j])));
            if (!(D[j] == copysignf(a, F[j]) || (F[j] == 0.0f && D[j] == 0.0f))) same = 0;
        }
        ok(same, "%s: the fake quantization's signs / zeros, α rounded to fp16", pare_wq_kind_name(sk[i]));
        double want_bits = (sk[i] == PARE_WQ_BIN ? 1.0 : 2.0) + 16.0 / (double)K;
        ok(fabs(pare_wq_bits_per_weight(&w) - want_bits) < 1e-12, "%s: %.4f bits/weight", pare_wq_kind_name(sk[i]),
           pare_wq_bits_per_weight(&w));
        pare_wq_free(&w);
        free(W), free(F), free(D);
    }
}

/* The layouts as wq.h documents them, decoded here from the bytes (independently of wq.c's own accessors). */
static int doc_code(const pare_wq_weight *w, int64_t n, int64_t k)
{
    const uint8_t *row = w->qs + n * pare_wq_row_bytes(w);
    int r = (int)(k % 64), i = r / 16, l = r % 16;
    switch (w->kind) {
    case PARE_WQ_I8: return row[k];
    case PARE_WQ_I2: return (row[(k / 64) * 16 + l] >> (2 * i)) & 3;
    case PARE_WQ_I3: {
        const uint8_t *c = row + (k / 64) * 24;
        uint16_t hw = (uint16_t)(c[16 + 2 * i] | (c[16 + 2 * i + 1] << 8)); /* little-endian word i */
        return ((c[l] >> (2 * i)) & 3) | (((hw >> l) & 1) << 2);
    }
    case PARE_WQ_BIN: return (row[k / 8] >> (k % 8)) & 1;
    case PARE_WQ_TER: {
        const uint8_t *c = row + (k / 16) * 4;
        uint16_t P = (uint16_t)(c[0] | (c[1] << 8)), Mw = (uint16_t)(c[2] | (c[3] << 8));
        int b = (int)(k % 16);
        return ((P >> b) & 1) - ((Mw >> b) & 1);
    }
    case PARE_WQ_W4A8: {
        uint8_t b = row[(k / 64) * 32 + r % 32];
        return r < 32 ? b & 15 : b >> 4;
    }
    default: return -99;
    }
}

/* the weight of a kind at (N, K, g, sym) with random contents */
static pare_status make_weight(pare_wq_weight *w, pare_wq_kind kind, int64_t N, int64_t K, int64_t g, int sym)
{
    if (kind == PARE_WQ_BIN || kind == PARE_WQ_TER) {
        float *W = randn(N * K, 0.1f);
        pare_status st = pare_wq_quantize_sign(w, kind, W, N, K);
        free(W);
        return st;
    }
    int64_t ng = K / g;
    int32_t *q = xalloc(sizeof *q * (size_t)(N * K)), *z = sym ? NULL : xalloc(sizeof *z * (size_t)(N * ng));
    float *sc = xalloc(sizeof *sc * (size_t)(N * ng));
    make_ints(q, sc, z, pare_wq_kind_bits(kind), sym, N, K, g);
    if (kind == PARE_WQ_W4A8)
        for (int64_t i = 0; i < N * K; i++) q[i] = q[i] < -7 ? -7 : q[i]; /* rtn's symmetric grid */
    pare_status st = pare_wq_from_int(w, kind, q, sc, z, N, K, g);
    free(q), free(z), free(sc);
    return st;
}

static pare_status make_weight(pare_wq_weight *w, pare_wq_kind kind, int64_t N, int64_t K, int64_t g, int sym);

static void test_layout_doc(void)
{
    const pare_wq_kind kinds[] = {PARE_WQ_I8, PARE_WQ_I3, PARE_WQ_I2, PARE_WQ_BIN, PARE_WQ_TER, PARE_WQ_W4A8};
    for (int ki = 0; ki < 6; ki++) {
        pare_wq_weight w;
        int64_t N = 3, K = 192, sign = kinds[ki] == PARE_WQ_BIN || kinds[ki] == PARE_WQ_TER;
        if (make_weight(&w, kinds[ki], N, K, sign ? K : 64, 1) != PARE_OK) {
            ok(0, "%s made (%s)", pare_wq_kind_name(kinds[ki]), pare_errmsg());
            continue;
        }
        int same = 1, seen_hi = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) {
                int c = doc_code(&w, n, k);
                if (c != pare_wq_code(&w, n, k)) same = 0;
                if (c >= (kinds[ki] == PARE_WQ_I3 ? 4 : 1)) seen_hi = 1;
            }
        ok(same && seen_hi, "%s: the bytes decode as wq.h documents the layout", pare_wq_kind_name(kinds[ki]));
        pare_wq_free(&w);
    }
}

static void test_kernels(void)
{
    const pare_wq_kind kinds[] = {PARE_WQ_I8, PARE_WQ_I3, PARE_WQ_I2, PARE_WQ_BIN, PARE_WQ_TER, PARE_WQ_W4A8};
    const int64_t Ms[] = {1, 3, 4, 7, 33, 64};
    const int64_t shapes[][3] = {{5, 64, 32}, {48, 192, 64}, {37, 256, 128}, {16, 128, 0}}; /* N, K, group (0: K) */
    for (int ki = 0; ki < 6; ki++)
        for (int si = 0; si < 4; si++)
            for (int sym = 1; sym >= 0; sym--) {
                pare_wq_kind kind = kinds[ki];
                int sign = kind == PARE_WQ_BIN || kind == PARE_WQ_TER;
                if (!sym && (sign || kind == PARE_WQ_W4A8)) continue;
                int64_t N = shapes[si][0], K = shapes[si][1], g = sign || !shapes[si][2] ? K : shapes[si][2];
                if (kind == PARE_WQ_I8 && si == 0) g = 16; /* the smallest group */
                pare_wq_weight w;
                if (make_weight(&w, kind, N, K, g, sym) != PARE_OK) {
                    ok(0, "%s N=%lld K=%lld g=%lld: made (%s)", pare_wq_kind_name(kind), (long long)N, (long long)K,
                       (long long)g, pare_errmsg());
                    continue;
                }
                float *Wd = xalloc(sizeof *Wd * (size_t)(N * K));
                pare_wq_dequantize(Wd, &w);
                float *bias = randn(N, 0.5f);
                for (int mi = 0; mi < 6; mi++) {
                    int64_t M = Ms[mi];
                    float *x = randn(M * K, 1.0f), *ref = xalloc(sizeof(float) * (size_t)(M * N)),
                          *y = xalloc(sizeof(float) * (size_t)(M * N));
                    pare_linear_wq_ref(ref, x, &w, bias, M);
                    void *ws = xalloc(pare_wq_workspace(&w, M) + 64);
                    for (int ii = 0; ii < 3; ii++) {
                        if (pare_wq_set_isa(ISAS[ii]) != PARE_OK) continue;
                        for (int th = 1; th <= 2; th++) {
                            omp_set_num_threads(th);
                            memset(y, 0xff, sizeof(float) * (size_t)(M * N));
                            pare_status st = pare_linear_wq(y, x, &w, bias, M, ws);
                            long bad = -1;
                            double worst = 0;
                            for (int64_t m = 0; st == PARE_OK && m < M; m++)
                                for (int64_t n = 0; n < N; n++) {
                                    double d = fabs((double)y[m * N + n] - (double)ref[m * N + n]);
                                    if (kind == PARE_WQ_W4A8) {
                                        if (memcmp(&y[m * N + n], &ref[m * N + n], 4)) bad = (long)(m * N + n), worst = d;
                                        continue;
                                    }
                                    double ad = fabs(bias[n]);
                                    for (int64_t k = 0; k < K; k++) ad += fabs((double)x[m * K + k] * Wd[n * K + k]);
                                    double lim = (double)(K + 2) * 0x1p-23 * ad;
                                    if (!(d <= lim) && (bad < 0 || d - lim > worst)) bad = (long)(m * N + n), worst = d - lim;
                                }
                            ok(st == PARE_OK && bad < 0, "%s %s N=%lld K=%lld g=%lld M=%lld %s threads=%d (%s): %s%s",
                               pare_wq_kind_name(kind), sym ? "sym" : "asym", (long long)N, (long long)K, (long long)g,
                               (long long)M, ISAS[ii], th, pare_wq_impl(&w, M),
                               kind == PARE_WQ_W4A8 ? "bit-identical to the reference" : "within K·2^-23·Σ|x·w|",
                               st != PARE_OK ? pare_errmsg() : "");
                            if (bad >= 0) diag("worst index %ld: got %.9g want %.9g (excess %.3g)", bad, y[bad], ref[bad], worst);
                        }
                    }
                    pare_wq_set_isa("auto");
                    omp_set_num_threads(2);
                    free(x), free(ref), free(y), free(ws);
                }
                free(Wd), free(bias);
                pare_wq_free(&w);
            }
}

/* W4A8: the reference's group sums against the test's own quantizer and products */
static void test_w4a8_sums(void)
{
    const int64_t N = 7, K = 256, M = 5;
    const int64_t groups[] = {32, 128, 256};
    for (int gi = 0; gi < 3; gi++) {
        int64_t g = groups[gi], ng = K / g;
        pare_wq_weight w;
        if (make_weight(&w, PARE_WQ_W4A8, N, K, g, 1) != PARE_OK) {
            ok(0, "w4a8 made (%s)", pare_errmsg());
            continue;
        }
        float *x = randn(M * K, 2.0f), sx[5];
        x[3] = 40.0f; /* one outlier: the other values of token 0 get small codes */
        int32_t *S = xalloc(sizeof *S * (size_t)(M * N * ng));
        int same = pare_wq_w4a8_sums_ref(S, sx, x, &w, M) == PARE_OK;
        for (int64_t m = 0; m < M; m++) {
            float amax = 0;
            for (int64_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(x[m * K + k]));
            int8_t qx[256];
            for (int64_t k = 0; k < K; k++) {
                double r = nearbyint((double)(x[m * K + k] * (127.0f / amax)));
                qx[k] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
            }
            if (sx[m] != amax / 127.0f) same = 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t j = 0; j < ng; j++) {
                    long long s = 0;
                    for (int64_t k = j * g; k < (j + 1) * g; k++) s += (long long)(pare_wq_code(&w, n, k) - 8) * qx[k];
                    if (S[(m * N + n) * ng + j] != s) same = 0;
                }
        }
        ok(same, "w4a8 g=%lld: the reference's int32 group sums equal Σ q·qx computed independently", (long long)g);
        pare_wq_free(&w);
        free(x), free(S);
    }
}

/* The wq format's training path (fmt_wq.c): the straight-through backward against its formula in double — dx += dy·Ŵ,
 * dw += dy^T·x, dbias += Σ dy, adding into what the gradients held — and refresh = the pass's quantizer on the new
 * master. The format's hooks ignore the executor and the node, so they are called here without a model. */
static void test_train_hooks(void)
{
    const pare_format_traits *t = pare_format_get(PARE_FMT_WQ);
    ok(t && t->trainable && t->backward && t->refresh && t->train_check, "wq format: trainable, with backward, refresh, train_check");
    if (!t || !t->backward || !t->refresh) return;
    const pare_wq_kind kinds[] = {PARE_WQ_BIN, PARE_WQ_TER};
    const int64_t N = 6, K = 32, M = 5;
    for (int ki = 0; ki < 2; ki++) {
        float *W = randn(N * K, 0.1f), *x = randn(M * K, 1.0f), *dy = randn(M * N, 1.0f), *Wd = xalloc(sizeof(float) * N * K);
        pare_blob blob = {1, (size_t)(N * K), W};
        pare_param p = {0};
        p.ndim = 2, p.shape[0] = N, p.shape[1] = K, p.blob = &blob, p.format = PARE_FMT_WQ;
        p.q = pare_qlinear_new(PARE_FMT_WQ);
        if (!p.q || pare_wq_quantize_sign(&p.q->wq, kinds[ki], W, N, K) != PARE_OK) {
            ok(0, "%s: made (%s)", pare_wq_kind_name(kinds[ki]), pare_errmsg());
            continue;
        }
        ok(t->train_check(&p) == PARE_OK, "%s: train_check accepts it", pare_wq_kind_name(kinds[ki]));
        pare_wq_dequantize(Wd, &p.q->wq);
        float *dx = randn(M * K, 1.0f), *dw = randn(N * K, 1.0f), *db = randn(N, 1.0f);
        float *dx0 = xalloc(sizeof(float) * M * K), *dw0 = xalloc(sizeof(float) * N * K), *db0 = xalloc(sizeof(float) * N);
        memcpy(dx0, dx, sizeof(float) * M * K), memcpy(dw0, dw, sizeof(float) * N * K), memcpy(db0, db, sizeof(float) * N);
        t->backward(NULL, NULL, &p, dx, dw, db, dy, x, M);
        float *rx = xalloc(sizeof(float) * M * K), *rw = xalloc(sizeof(float) * N * K), *rb = xalloc(sizeof(float) * N);
        ref_linear_backward(rx, rw, rb, dx0, dw0, db0, dy, x, Wd, M, N, K); /* through Ŵ, not the master */
        is_close_arr(dx, rx, M * K, 1e-5, 1e-5, "STE backward: dx += dy·Ŵ (the packed weights, not the master)");
        is_close_arr(dw, rw, N * K, 1e-5, 1e-5, "STE backward: dW += dy^T·x into the master's gradient");
        is_close_arr(db, rb, N, 1e-5, 1e-5, "STE backward: dbias += Σ dy");
        /* an optimizer step: the master moves; refresh quantizes it again with the pass's quantizer */
        for (int64_t i = 0; i < N * K; i++) W[i] = -W[i] + 0.01f * (float)(i % 7);
        pare_wq_weight want;
        int same = t->refresh(&p) == PARE_OK && pare_wq_quantize_sign(&want, kinds[ki], W, N, K) == PARE_OK &&
                   !memcmp(want.qs, p.q->wq.qs, (size_t)(N * pare_wq_row_bytes(&want))) &&
                   !memcmp(want.scale, p.q->wq.scale, sizeof(uint16_t) * (size_t)N);
        ok(same, "%s: refresh stores what the pass makes from the new master", pare_wq_kind_name(kinds[ki]));
        pare_wq_free(&want);
        pare_qlinear_release(p.q);
        free(W), free(x), free(dy), free(Wd), free(dx), free(dw), free(db), free(dx0), free(dw0), free(db0), free(rx), free(rw), free(rb);
    }
}

static void test_errors(void)
{
    pare_wq_weight w;
    int32_t q[64 * 2] = {0};
    float sc[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    ok(pare_wq_from_int(&w, PARE_WQ_I2, q, sc, NULL, 2, 48, 16) == PARE_ESHAPE && errmsg_has("multiple of 64"),
       "int2 K=48: ESHAPE naming the chunk of 64");
    ok(pare_wq_from_int(&w, PARE_WQ_I8, q, sc, NULL, 2, 64, 24) == PARE_EINVAL && errmsg_has("group=24"),
       "int8 group=24: EINVAL naming group");
    q[5] = 2;
    ok(pare_wq_from_int(&w, PARE_WQ_I2, q, sc, NULL, 2, 64, 64) == PARE_EINVAL && errmsg_has("q[0, 5] = 2"),
       "int2 symmetric q = 2: EINVAL naming the element");
    q[5] = 0;
    int32_t z[2] = {0, 0};
    ok(pare_wq_from_int(&w, PARE_WQ_W4A8, q, sc, z, 2, 64, 64) == PARE_EINVAL && errmsg_has("symmetric"),
       "w4a8 with zero points: EINVAL");
    sc[1] = 1e6f;
    ok(pare_wq_from_int(&w, PARE_WQ_I3, q, sc, NULL, 2, 64, 64) == PARE_ENUMERIC && errmsg_has("fp16"),
       "a scale beyond fp16: ENUMERIC");
    sc[1] = 1;
    ok(pare_wq_from_int(&w, PARE_WQ_W4A8, q, sc, NULL, 2, 64, 64) == PARE_OK, "w4a8 made");
    float x[64] = {0}, y[2];
    x[7] = NAN;
    void *ws = xalloc(pare_wq_workspace(&w, 1));
    ok(pare_linear_wq(y, x, &w, NULL, 1, ws) == PARE_ENUMERIC && errmsg_has("x[0, 7]"), "w4a8: NaN activation: ENUMERIC naming it");
    ok(pare_linear_wq(y, x, &w, NULL, 1, NULL) == PARE_EINVAL && errmsg_has("workspace"), "w4a8: no workspace: EINVAL");
    free(ws);
    pare_wq_free(&w);
    float W[32] = {0};
    W[3] = INFINITY;
    ok(pare_wq_quantize_sign(&w, PARE_WQ_BIN, W, 2, 16) == PARE_ENUMERIC && errmsg_has("W[0, 3]"), "binary: Inf weight: ENUMERIC");
    ok(pare_wq_set_isa("sse9") == PARE_EINVAL && errmsg_has("avx2"), "unknown isa lists the valid ones");
    ok(pare_linear_wq(y, x, &w, NULL, 1, NULL) == PARE_EINVAL, "a freed weight: EINVAL");
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 18);
    test_storage();
    test_layout_doc();
    test_kernels();
    test_w4a8_sums();
    test_train_hooks();
    test_errors();
    return tap_done();
}
