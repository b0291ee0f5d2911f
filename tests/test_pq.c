/* test_pq.c — product quantization and Quant-Noise (issue 18):
 *   k-means: the sum of squared errors never grows, the same seed gives the same codebook, the final
 *            assignment is the nearest centroid, bad k is refused;
 *   PQ:      the stored bytes are exact (codes + f32 or f16 codebook), the dequantized weight is the codebook
 *            read at the codes, the lookup-table kernel matches the dequantize-then-f32 reference within a
 *            rounding bound, on one thread and on several; the pq pass on an encoder: exact sizes, logits
 *            against the same model dequantized to f32;
 *   Quant-Noise: the transform's training forward equals the model whose weight holds the masked reference
 *            (blocks quantized where the kept mask says, int8 / int4 per channel with QAT's kernel, pq's nearest
 *            centroid), bit for bit, and so do its gradients (straight-through); p = 0 is the plain model,
 *            p = 1 the fully quantized weight and QAT's fixed-scale forward; inference is the f32 model; the
 *            pq pass removes the transform; bad options are refused naming the option and the valid values. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "core/arena.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "graph/transform.h"
#include "kernels/gemm.h"
#include "kernels/pq.h"
#include "kernels/qat.h"
#include "tap.h"
#include "test_models.h"

static float *randn(int64_t n, uint64_t seed, double scale)
{
    float *v = malloc(sizeof(float) * (size_t)n);
    pare_rng r;
    pare_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(scale * pare_rng_normal(&r));
    return v;
}

/* ---------------- k-means ---------------- */

static void test_kmeans(void)
{
    enum { n = 600, d = 4, k = 16, iters = 15 };
    float *X = randn(n * d, 3, 1.0);
    for (int64_t i = 0; i < n; i++) X[i * d] += (float)(i % 5) * 3.0f; /* five loose clusters along one axis */
    float C1[k * d], C2[k * d], C3[k * d];
    uint8_t a1[n], a2[n], a3[n], a4[n];
    double e1[iters + 1], e2[iters + 1];
    ok(pare_kmeans(C1, a1, e1, X, n, d, k, iters, 42) == PARE_OK && pare_kmeans(C2, a2, e2, X, n, d, k, iters, 42) == PARE_OK,
       "kmeans: two runs with seed 42");
    int mono = 1;
    for (int t = 1; t <= iters; t++) mono &= e1[t] <= e1[t - 1];
    ok(mono && e1[iters] < e1[0], "kmeans: the squared error never grows over %d iterations (%.4f -> %.4f)", iters, e1[0], e1[iters]);
    ok(!memcmp(C1, C2, sizeof C1) && !memcmp(a1, a2, sizeof a1) && !memcmp(e1, e2, sizeof e1),
       "kmeans: the same seed gives the same centroids, assignment and errors, bit for bit");
    pare_kmeans(C3, a3, NULL, X, n, d, k, iters, 43);
    ok(memcmp(C1, C3, sizeof C1) != 0, "kmeans: another seed starts elsewhere (different centroids)");
    double e = pare_pq_assign(a4, X, n, d, C1, k);
    int nearest = !memcmp(a1, a4, sizeof a1) && e == e1[iters];
    for (int64_t i = 0; nearest && i < n; i++) { /* brute force, in float: no centroid strictly nearer */
        double best = 0;
        for (int64_t j = 0; j < d; j++) best += ((double)X[i * d + j] - C1[a1[i] * d + j]) * ((double)X[i * d + j] - C1[a1[i] * d + j]);
        for (int64_t c = 0; c < k; c++) {
            double t = 0;
            for (int64_t j = 0; j < d; j++) t += ((double)X[i * d + j] - C1[c * d + j]) * ((double)X[i * d + j] - C1[c * d + j]);
            nearest &= t >= best;
        }
    }
    ok(nearest, "kmeans: every point is assigned to its nearest centroid, the error is err[iters]");
    /* an empty cluster gets re-seeded: 20 points, only 3 distinct, k = 5: error reaches 0 */
    float Y[20 * 2];
    for (int i = 0; i < 20; i++) Y[2 * i] = (float)(i % 3), Y[2 * i + 1] = (float)(i % 3) * 2.0f;
    float CY[5 * 2];
    uint8_t aY[20];
    double eY[4];
    ok(pare_kmeans(CY, aY, eY, Y, 20, 2, 5, 3, 1) == PARE_OK && eY[3] == 0.0, "kmeans: more centroids than distinct points: error 0");
    /* warm start: pare_kmeans_from from the final centroids does not move the error */
    double ew[3];
    memcpy(C3, C1, sizeof C1);
    ok(pare_kmeans_from(C3, a3, ew, X, n, d, k, 2) == PARE_OK && ew[0] == e1[iters] && ew[2] <= ew[0],
       "kmeans_from: a warm start from the result begins at its error and does not grow it");
    { /* large enough for the threads: one and two give the same codebook and errors, bit for bit */
        enum { n2 = 2000, d2 = 8, k2 = 16 };
        float *Z = randn(n2 * d2, 9, 1.0), *Z1 = malloc(sizeof(float) * k2 * d2), *Z2 = malloc(sizeof(float) * k2 * d2);
        uint8_t *b1 = malloc(n2), *b2 = malloc(n2);
        double f1[6], f2[6];
        pare_set_num_threads(1);
        pare_kmeans(Z1, b1, f1, Z, n2, d2, k2, 5, 7);
        pare_set_num_threads(2);
        pare_kmeans(Z2, b2, f2, Z, n2, d2, k2, 5, 7);
        ok(!memcmp(Z1, Z2, sizeof(float) * k2 * d2) && !memcmp(b1, b2, n2) && !memcmp(f1, f2, sizeof f1),
           "kmeans: one thread and two give the same centroids, assignment and errors, bit for bit");
        free(Z), free(Z1), free(Z2), free(b1), free(b2);
    }
    ok(pare_kmeans(C1, a1, NULL, X, 10, d, 11, 1, 1) == PARE_EINVAL && strstr(pare_errmsg(), "k=11"),
       "kmeans: more centroids than points is refused: %s", pare_errmsg());
    free(X);
}

/* ---------------- the PQ storage and its kernel ---------------- */

static void test_storage(void)
{
    enum { N = 48, K = 32, d = 4, k = 32 };
    float *W = randn(N * K, 5, 0.1);
    pare_pq_weight w, h;
    ok(pare_pq_quantize(&w, W, N, K, d, k, 10, 1, 0, NULL) == PARE_OK && pare_pq_quantize(&h, W, N, K, d, k, 10, 1, 1, NULL) == PARE_OK,
       "pq_quantize (48, 32), block 4, k 32, f32 and f16 codebooks");
    ok(pare_pq_bytes(&w) == (size_t)(N * K / d + k * d * 4) && pare_pq_bytes(&h) == (size_t)(N * K / d + k * d * 2),
       "pq bytes exact: %zu = 384 codes + 512 floats; f16: %zu = 384 + 256 halves", pare_pq_bytes(&w), pare_pq_bytes(&h));
    float *Wq = malloc(sizeof(float) * N * K), *Wh = malloc(sizeof(float) * N * K);
    pare_pq_dequantize(Wq, &w);
    pare_pq_dequantize(Wh, &h);
    int codes_ok = 1, deq_ok = 1, deq16 = 1;
    for (int64_t b = 0; b < N * K / d; b++) {
        codes_ok &= w.codes[b] < k && h.codes[b] < k;
        for (int64_t e = 0; e < d; e++) {
            deq_ok &= Wq[b * d + e] == w.cb[w.codes[b] * d + e];
            deq16 &= Wh[b * d + e] == pare_f16_to_f32(h.cb16[h.codes[b] * d + e]);
        }
    }
    ok(codes_ok && deq_ok && deq16, "dequantize: each block is its code's centroid (f16: the stored halves widened)");
    /* f16 codes are the nearest of the rounded centroids */
    float cbh[k * d];
    uint8_t as[N * K / d];
    pare_pq_assign(as, W, N * K / d, d, pare_pq_codebook(&h, cbh), k);
    ok(!memcmp(as, h.codes, sizeof as), "f16: the codes are the nearest of the centroids as stored");
    double err = 0;
    for (int64_t i = 0; i < N * K; i++) err += ((double)W[i] - Wq[i]) * ((double)W[i] - Wq[i]);
    double var = 0;
    for (int64_t i = 0; i < N * K; i++) var += (double)W[i] * W[i];
    ok(err < 0.6 * var, "pq reconstructs: relative squared error %.3f (k=32 of 384 blocks of 4)", err / var);
    pare_pq_weight bad;
    ok(pare_pq_quantize(&bad, W, N, K, 3, k, 1, 1, 0, NULL) == PARE_EINVAL && strstr(pare_errmsg(), "block=3"),
       "a block that does not divide K is refused: %s", pare_errmsg());
    ok(pare_pq_quantize(&bad, W, 2, 4, 4, 3, 1, 1, 0, NULL) == PARE_EINVAL && strstr(pare_errmsg(), "k=3"),
       "more centroids than blocks is refused: %s", pare_errmsg());
    pare_pq_free(&w), pare_pq_free(&h), pare_pq_free(&w);
    free(W), free(Wq), free(Wh);
}

/* |y − ref| <= 4·K·ε·Σ_k |x_k·Ŵ_nk| (both sums of the same products in different orders) */
static int kernel_case(int64_t M, int64_t N, int64_t K, int64_t d, int64_t k, int f16, int with_bias, uint64_t seed)
{
    float *W = randn(N * K, seed, 0.2), *x = randn(M * K, seed + 1, 1.0), *b = randn(N, seed + 2, 0.5);
    pare_pq_weight w;
    if (pare_pq_quantize(&w, W, N, K, d, k, 4, seed, f16, NULL) != PARE_OK) return ok(0, "quantize: %s", pare_errmsg());
    float *y = malloc(sizeof(float) * (size_t)(M * N)), *r = malloc(sizeof(float) * (size_t)(M * N));
    float *Wq = malloc(sizeof(float) * (size_t)(N * K));
    void *ws = pare_alloc(pare_pq_workspace(&w, M));
    pare_status s1 = pare_linear_pq(y, x, &w, with_bias ? b : NULL, M, ws), s2 = pare_linear_pq_ref(r, x, &w, with_bias ? b : NULL, M);
    pare_pq_dequantize(Wq, &w);
    double worst = 0;
    int good = s1 == PARE_OK && s2 == PARE_OK;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double mag = with_bias ? fabs(b[n]) : 0;
            for (int64_t j = 0; j < K; j++) mag += fabs((double)x[m * K + j] * Wq[n * K + j]);
            double dev = fabs((double)y[m * N + n] - r[m * N + n]), tol = 4.0 * (double)K * FLT_EPSILON * mag + 1e-30;
            good &= dev <= tol;
            if (dev / tol > worst) worst = dev / tol;
        }
    int res = ok(good, "lut kernel = reference: M=%lld N=%lld K=%lld block %lld k %lld %s%s (worst %.3f of the bound)", (long long)M,
                 (long long)N, (long long)K, (long long)d, (long long)k, f16 ? "f16" : "f32", with_bias ? " +bias" : "", worst);
    pare_pq_free(&w);
    pare_free(ws);
    free(W), free(x), free(b), free(y), free(r), free(Wq);
    return res;
}

static void test_kernel(void)
{
    kernel_case(1, 24, 16, 4, 16, 0, 1, 11);
    kernel_case(5, 40, 64, 8, 64, 0, 0, 12);
    kernel_case(33, 17, 24, 2, 32, 1, 1, 13);
    kernel_case(3, 8, 12, 12, 8, 0, 1, 14);    /* one block per row */
    kernel_case(7, 256, 256, 8, 256, 1, 1, 15); /* large enough for the OpenMP path */
    pare_set_num_threads(1);
    kernel_case(7, 256, 256, 8, 256, 1, 1, 15);
    pare_set_num_threads(2);
}

/* ---------------- the pq pass on an encoder ---------------- */

static void test_pass(void)
{
    enum { Bt = 2, Tt = 6, Ct = 32, Ft = 64 };
    pare_model *m = tiny_encoder(Tt, Ct, Ft), *q = NULL, *dq = NULL;
    if (!m) return;
    pare_kv kv[] = {{"block", PARE_KV_NUM, 8, NULL}, {"k", PARE_KV_NUM, 16, NULL}, {"codebook", PARE_KV_STR, 0, "f16"}};
    ok(pare_apply(&q, m, "pq", kv, 3) == PARE_OK, "pq pass: block 8, k 16, f16 codebook");
    if (!q) return;
    int npq = 0, exact = 1;
    for (int64_t i = 0; i < q->nparams; i++) {
        const pare_param *p = &q->params[i];
        if (p->format != PARE_FMT_PQ) continue;
        npq++;
        exact &= pare_param_bytes(p) == (size_t)(p->shape[0] * p->shape[1] / 8 + 16 * 8 * 2) &&
                 q->params[i].q->bits == 8.0 * (double)(p->shape[0] * p->shape[1] / 8 + 16 * 8 * 2);
    }
    ok(npq == 8 && exact, "pq pass: the 8 encoder Linears are stored as pq, each exactly N·K/8 code bytes + 16·8 halves");
    ok(pare_apply(&dq, q, "dequantize", NULL, 0) == PARE_OK, "dequantize the pq model to f32 on its centroids");
    int32_t tok[Bt * Tt] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, len[Bt] = {6, 4};
    float *lq = tiny_logits(q, Bt, Tt, tok, len, 3), *ld = tiny_logits(dq, Bt, Tt, tok, len, 3), *lf = tiny_logits(m, Bt, Tt, tok, len, 3);
    if (lq && ld) is_close_arr(lq, ld, Bt * 3, 1e-5, 1e-4, "pq model's logits (lut kernel) = the dequantized f32 model's");
    double dev = 0;
    for (int i = 0; lq && lf && i < Bt * 3; i++) dev = fmax(dev, fabs(lq[i] - lf[i]));
    ok(lf && dev > 0, "and differ from the f32 model's (max |diff| %.3g): the weights were quantized", dev);
    pare_kv bad[] = {{"block", PARE_KV_NUM, 5, NULL}};
    pare_model *z = NULL;
    ok(pare_apply(&z, m, "pq", bad, 1) == PARE_EINVAL && strstr(pare_errmsg(), "block=5") && strstr(pare_errmsg(), "valid blocks"),
       "pq block=5: %s", pare_errmsg());
    pare_kv badk[] = {{"codebook", PARE_KV_STR, 0, "int8"}};
    ok(pare_apply(&z, m, "pq", badk, 1) == PARE_EINVAL && strstr(pare_errmsg(), "codebook") && strstr(pare_errmsg(), "f32|f16"),
       "pq codebook=int8: %s", pare_errmsg());
    free(lq), free(ld), free(lf);
    pare_model_free(dq), pare_model_free(q), pare_model_free(m);
}

/* ---------------- Quant-Noise ---------------- */

/* the toy model of test_transform.c, its batch and runner (included here: the PQ tests above use K and C for
 * their own sizes) */
#include "test_toy.h"

static pare_model *with_noise(pare_model *m, const char *quantizer, double p, int block, int k)
{
    pare_model *q = NULL;
    pare_kv kv[] = {{"layers", PARE_KV_STR, 0, "proj"}, {"quantizer", PARE_KV_STR, 0, quantizer}, {"p", PARE_KV_NUM, p, NULL},
                    {"block", PARE_KV_NUM, block, NULL}, {"k", PARE_KV_NUM, k, NULL}, {"refresh", PARE_KV_NUM, 0, NULL}};
    if (pare_apply(&q, m, "quant_noise", kv, 6) != PARE_OK) diag("quant_noise: %s", pare_errmsg());
    return q;
}

/* The masked reference of the last training forward: W_eff = mask ? φ(W) : W, φ from the quantizer. */
static void reference_weight(float *Wr, pare_model *q, const char *quantizer, int block)
{
    const float *W = data_of(q, "proj.weight"), *mask = data_of(q, "proj.qnoise") + 4;
    float full[C2 * C], s[C2];
    if (strcmp(quantizer, "pq")) {
        int bits = !strcmp(quantizer, "int8") ? 8 : 4, qmax = (1 << (bits - 1)) - 1;
        for (int64_t r = 0; r < C2; r++) { /* symmetric per channel: s = max|W_r| / qmax, written out here */
            float a = 0;
            for (int64_t c = 0; c < C; c++) a = fmaxf(a, fabsf(W[r * C + c]));
            s[r] = a > 0 ? a / (float)qmax : 1.0f;
            float inv = 1.0f / s[r]; /* as kernels/qat.c rounds: x · (1/s), then q · s */
            for (int64_t c = 0; c < C; c++) {
                float v = nearbyintf(W[r * C + c] * inv);
                full[r * C + c] = (v < -qmax ? (float)-qmax : v > qmax ? (float)qmax : v) * s[r];
            }
        }
    } else {
        const pare_param *cb = &q->params[pare_model_find_param(q, "proj.qnoise_cb")];
        int64_t k = pare_param_numel(cb) / block;
        for (int64_t b = 0; b < C2 * C / block; b++) { /* brute-force nearest centroid, ties to the lowest */
            int64_t best = 0;
            double bd = INFINITY;
            for (int64_t c = 0; c < k; c++) {
                double t = 0;
                for (int e = 0; e < block; e++) {
                    double u = (double)W[b * block + e] - cb->blob->data[c * block + e];
                    t += u * u;
                }
                if (t < bd) bd = t, best = c;
            }
            memcpy(full + b * block, cb->blob->data + best * block, sizeof(float) * (size_t)block);
        }
    }
    for (int64_t b = 0; b < C2 * C / block; b++)
        memcpy(Wr + b * block, (mask[b] != 0 ? full : W) + b * block, sizeof(float) * (size_t)block);
}

/* training forward + backward of q (with Quant-Noise on proj) against the model whose proj.weight holds the
 * masked reference: logits, loss and every gradient bit for bit (proj.weight's: straight-through = the
 * reference's gradient at W_eff) */
static void noise_case(const char *quantizer, double p, int block, int k)
{
    pare_model *m = toy(), *q = with_noise(m, quantizer, p, block, k);
    if (!q) {
        ok(0, "quant_noise %s p=%g", quantizer, p);
        pare_model_free(m);
        return;
    }
    ok(pare_model_check(q) == PARE_OK, "quant_noise %s p=%g block %d: the model checks (%s)", quantizer, p, block,
       pare_model_check(q) == PARE_OK ? "ok" : pare_errmsg());
    pare_exec *x = run(q, PARE_EXEC_TRAIN, 1);
    pare_model *ref = pare_model_clone(m);
    float Wr[C2 * C];
    reference_weight(Wr, q, quantizer, block);
    pare_param_make_private(&ref->params[pare_model_find_param(ref, "proj.weight")]);
    memcpy(data_of(ref, "proj.weight"), Wr, sizeof Wr);
    pare_exec *xr = run(ref, PARE_EXEC_TRAIN, 1);
    const float *st = data_of(q, "proj.qnoise");
    int64_t nb = C2 * C / block, masked = 0;
    for (int64_t b = 0; b < nb; b++) masked += st[4 + b] != 0;
    if (x && xr) {
        ok(same(pare_exec_logits(x), pare_exec_logits(xr), B * K) && x->loss == xr->loss,
           "quant_noise %s p=%g: forward = the model holding the masked reference (%lld of %lld blocks quantized), bit for bit",
           quantizer, p, (long long)masked, (long long)nb);
        ok(same(grad_of(q, "proj.weight"), grad_of(ref, "proj.weight"), C2 * C) && same(grad_of(q, "emb.weight"), grad_of(ref, "emb.weight"), V * C) &&
               same(grad_of(q, "head.weight"), grad_of(ref, "head.weight"), K * C2),
           "quant_noise %s p=%g: gradients straight through (= the reference's at W_eff), bit for bit", quantizer, p);
        int expect = p == 0 ? masked == 0 : p == 1 ? masked == nb : masked > nb / 5 && masked < nb - nb / 5;
        ok(expect && st[2] == 1.0f && st[3] == (float)masked, "quant_noise p=%g: %lld of %lld blocks drawn; state counts 1 forward",
           p, (long long)masked, (long long)nb);
    }
    if (p == 0 && x) { /* p = 0: the plain model */
        pare_exec *xp = run(m, PARE_EXEC_TRAIN, 1);
        ok(xp && same(pare_exec_logits(x), pare_exec_logits(xp), B * K) && same(grad_of(q, "proj.weight"), grad_of(m, "proj.weight"), C2 * C),
           "quant_noise p=0: forward and gradients = the plain model's, bit for bit");
        pare_exec_free(xp);
    }
    if (p > 0 && p < 1 && x) { /* the next forward draws again */
        float before[C2 * C];
        memcpy(before, st + 4, sizeof(float) * (size_t)nb);
        pare_exec_forward(x);
        ok(st[2] == 2.0f && memcmp(before, st + 4, sizeof(float) * (size_t)nb) != 0, "quant_noise: the next training forward draws another mask");
    }
    pare_exec *xi = run(q, PARE_EXEC_INFER, 0), *xm = run(m, PARE_EXEC_INFER, 0);
    ok(xi && xm && same(pare_exec_logits(xi), pare_exec_logits(xm), B * K), "quant_noise %s: inference is the f32 model", quantizer);
    pare_exec_free(x), pare_exec_free(xr), pare_exec_free(xi), pare_exec_free(xm);
    pare_model_free(ref), pare_model_free(q), pare_model_free(m);
}

/* p = 1 with int8: QAT's weight fake quantization with fixed scales (tf_fakequant.c, weight only) */
static void test_noise_vs_qat(void)
{
    pare_model *m = toy(), *q = with_noise(m, "int8", 1.0, 4, 1), *f = pare_model_clone(m);
    int pw = pare_model_add_param(f, "proj.wscale", 1, (int64_t[]){C2, 1}, 0);
    pare_transform t = {.kind = PARE_TF_FAKE_QUANT, .operand = PARE_TF_WEIGHT, .bits = 8, .learn = 0, .aux = {pw, -1}};
    ok(q && pw >= 0 && pare_node_attach(f, pare_model_find_node(f, "proj"), &t) == PARE_OK, "QAT's weight fake quantization, int8 fixed scales");
    pare_exec *x = q ? run(q, PARE_EXEC_TRAIN, 1) : NULL, *xf = run(f, PARE_EXEC_TRAIN, 1);
    if (x && xf) {
        is_close_arr(pare_exec_logits(x), pare_exec_logits(xf), B * K, 1e-6, 1e-5,
                     "quant_noise int8 p=1 = QAT's fixed-scale int8 weight forward (scales round-trip through log in QAT)");
        /* QAT's STE zeroes the gradient outside the grid: its log-scale round trip can put a row's max |w| a hair
         * past qmax. Quant-Noise passes every gradient. Elsewhere they agree. */
        const float *W = data_of(m, "proj.weight"), *gq = grad_of(q, "proj.weight"), *gf = grad_of(f, "proj.weight");
        int agree = 1, edge = 0;
        for (int64_t r = 0; r < C2; r++) {
            float a = 0;
            for (int64_t c = 0; c < C; c++) a = fmaxf(a, fabsf(W[r * C + c]));
            for (int64_t c = 0; c < C; c++) {
                if (fabsf(W[r * C + c]) == a) { edge += gf[r * C + c] == 0.0f; continue; }
                agree &= fabsf(gq[r * C + c] - gf[r * C + c]) <= 1e-6f + 1e-4f * fabsf(gf[r * C + c]);
            }
        }
        ok(agree, "and its weight gradient, straight through, except at each row's max |w| (%d of %d clipped by QAT's STE)", edge, C2);
    }
    pare_exec_free(x), pare_exec_free(xf);
    pare_model_free(q), pare_model_free(f), pare_model_free(m);
}

static void test_noise_then_pq(void)
{
    pare_model *m = toy(), *q = with_noise(m, "pq", 0.5, 4, 8), *z = NULL, *p = NULL;
    pare_kv kv[] = {{"layers", PARE_KV_STR, 0, "proj"}, {"block", PARE_KV_NUM, 4, NULL}, {"k", PARE_KV_NUM, 8, NULL}};
    ok(q && pare_apply(&p, q, "pq", kv, 3) == PARE_OK && p->nodes[pare_model_find_node(p, "proj")].ntf == 0 &&
           p->params[pare_model_find_param(p, "proj.weight")].format == PARE_FMT_PQ &&
           strstr(p->params[pare_model_find_param(p, "proj.weight")].q->method, "after quant_noise"),
       "pq after quant_noise: the layer is pq and its quant_noise transform is gone");
    const pare_tf_traits *tr = pare_tf_get(PARE_TF_QUANT_NOISE);
    ok(tr && !strcmp(tr->name, "quant_noise") && tr->foldable && !tr->simulated, "traits: quant_noise folds (identity at inference), not simulated");
    pare_kv bq[] = {{"quantizer", PARE_KV_STR, 0, "int3"}};
    ok(pare_apply(&z, m, "quant_noise", bq, 1) == PARE_EINVAL && strstr(pare_errmsg(), "quantizer") && strstr(pare_errmsg(), "pq|int8|int4"),
       "quant_noise quantizer=int3: %s", pare_errmsg());
    pare_kv bp[] = {{"p", PARE_KV_NUM, 1.5, NULL}};
    ok(pare_apply(&z, m, "quant_noise", bp, 1) == PARE_EINVAL && strstr(pare_errmsg(), "'p'"), "quant_noise p=1.5: %s", pare_errmsg());
    pare_kv bb[] = {{"layers", PARE_KV_STR, 0, "proj"}, {"block", PARE_KV_NUM, 5, NULL}};
    ok(pare_apply(&z, m, "quant_noise", bb, 2) == PARE_EINVAL && strstr(pare_errmsg(), "block=5") && strstr(pare_errmsg(), "1, 2, 4, 8, 16"),
       "quant_noise block=5: %s", pare_errmsg());
    pare_kv bk[] = {{"layers", PARE_KV_STR, 0, "proj"}, {"k", PARE_KV_NUM, 200, NULL}, {"block", PARE_KV_NUM, 4, NULL}};
    ok(pare_apply(&z, m, "quant_noise", bk, 3) == PARE_EINVAL && strstr(pare_errmsg(), "k=200") && strstr(pare_errmsg(), "[1, 48]"),
       "quant_noise k=200 on 48 blocks: %s", pare_errmsg());
    pare_kv again[] = {{"layers", PARE_KV_STR, 0, "proj"}, {"block", PARE_KV_NUM, 4, NULL}, {"k", PARE_KV_NUM, 8, NULL}};
    ok(q && pare_apply(&z, q, "quant_noise", again, 3) == PARE_EINVAL && strstr(pare_errmsg(), "already has a quant_noise"),
       "quant_noise twice: %s", pare_errmsg());
    pare_model_free(p), pare_model_free(q), pare_model_free(m);
}

int main(void)
{
    tap_plan_lazy();
    pare_set_num_threads(2);
    test_kmeans();
    test_storage();
    test_kernel();
    test_pass();
    noise_case("int8", 0.0, 4, 1);
    noise_case("int8", 1.0, 4, 1);
    noise_case("int4", 0.5, 4, 1);
    noise_case("pq", 1.0, 4, 8);
    noise_case("pq", 0.5, 8, 4);
    test_noise_vs_qat();
    test_noise_then_pq();
    return tap_done();
}
