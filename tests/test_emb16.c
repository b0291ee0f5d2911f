/* test_emb16.c — the bf16 embedding, positions and softmax kernels of kernels/nn_half.h (issue 15;
 * docs/mixed-precision.md "Embeddings and softmax in bf16").
 *
 * Each fast kernel against its reference (scalar casts around the f32 kernel) bit for bit, on 1 and 2 threads, for
 * every pair of table / input / output dtypes: an embedding lookup writing 16 bits is the f32 lookup then a cast, bit
 * for bit; a 16-bit table into a 16-bit output of its dtype is the table's rows exactly. The softmaxes also against
 * softmax in double on the same (bf16-rounded) scores, within the bound derived here:
 *   E = u·(2R + 4·max|y| + n + 8)      (u = 2^-24, R the row's range of y = x / s, n visible keys: the subtraction,
 *                                      nn_expf's 2u, the f32 sum of n terms, 1/sum and the product)
 *   |out − p| <= (u_o·(1 + E) + E)·p + 2^-134,   u_o = 2^-8 for a bf16 output (its rounding), 0 for f32
 *   (+ e^-87 / Σ where y_j − max < −87: nn_expf clamps its argument there, in the f32 op as in this one)
 * and not vacuously: truncating instead of rounding to bf16 breaks it.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/nn.h"
#include "kernels/nn_half.h"
#include "kernels/cast.h"
#include "tap.h"
#include "test_rand.h"

static const pare_dtype DTS[3] = {PARE_F32, PARE_BF16, PARE_F16};

static void *to_dt(const float *x, pare_dtype t, int64_t n)
{
    void *o = xalloc((size_t)n * pare_dtype_size(t));
    if (t == PARE_F32) memcpy(o, x, (size_t)n * 4);
    else
        for (int64_t i = 0; i < n; i++) ((uint16_t *)o)[i] = t == PARE_BF16 ? pare_f32_to_bf16(x[i]) : pare_f32_to_f16(x[i]);
    return o;
}
static double at(const void *p, pare_dtype t, int64_t i)
{
    return t == PARE_F32 ? ((const float *)p)[i] : t == PARE_BF16 ? pare_bf16_to_f32(((const uint16_t *)p)[i])
                                                                  : pare_f16_to_f32(((const uint16_t *)p)[i]);
}

static void test_embedding(void)
{
    const int64_t V = 37, C = 1100, M = 64; /* C > the kernel's 512-value chunks */
    float *tab = randn(V * C, 1.0f);
    for (int64_t i = 0; i < V * C; i += 97) tab[i] *= 3e4f; /* large (f16 rounds them coarsely) and tiny values */
    for (int64_t i = 5; i < V * C; i += 101) tab[i] *= 1e-6f;
    int32_t ids[64];
    for (int i = 0; i < M; i++) ids[i] = (i * 13 + 5) % (int)V;
    ids[3] = ids[4];
    const float scales[3] = {1.0f, 0.37f, 33.2f};
    int all = 1, threads = 1, tried = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int s = 0; s < 3; s++) {
                pare_dtype tt = DTS[a], ot = DTS[b];
                void *t = to_dt(tab, tt, V * C);
                size_t ob = pare_dtype_size(ot);
                char *y = xalloc((size_t)(M * C) * ob), *y1 = xalloc((size_t)(M * C) * ob), *r = xalloc((size_t)(M * C) * ob);
                omp_set_num_threads(2);
                pare_embedding_half(y, ot, ids, t, tt, scales[s], M, C);
                omp_set_num_threads(1);
                pare_embedding_half(y1, ot, ids, t, tt, scales[s], M, C);
                pare_embedding_half_ref(r, ot, ids, t, tt, scales[s], M, C);
                tried++;
                if (memcmp(y, r, (size_t)(M * C) * ob)) {
                    all = 0;
                    diag("table %s out %s scale %g: differs from the reference", pare_dtype_name(tt), pare_dtype_name(ot), scales[s]);
                }
                threads &= !memcmp(y, y1, (size_t)(M * C) * ob);
                free(t), free(y), free(y1), free(r);
            }
    ok(all, "embedding: %d (table, output, scale) cases equal the reference (scalar casts around the f32 lookup) bit for bit", tried);
    ok(threads, "embedding: 1 and 2 threads give the same bits");
    /* the reference is the f32 lookup then a cast: checked here on the f32 table, bf16 output, against cast.c */
    uint16_t *y = xalloc((size_t)(M * C) * 2), *c = xalloc((size_t)(M * C) * 2);
    float *f = xalloc((size_t)(M * C) * 4);
    pare_embedding_half(y, PARE_BF16, ids, tab, PARE_F32, 1.0f, M, C);
    pare_embedding_forward(f, ids, tab, M, C);
    pare_cast_forward(c, PARE_BF16, f, PARE_F32, M * C);
    ok(!memcmp(y, c, (size_t)(M * C) * 2), "embedding f32 table -> bf16 output == f32 lookup then a cast node's kernel, bit for bit");
    uint16_t *tb = to_dt(tab, PARE_BF16, V * C);
    pare_embedding_half(y, PARE_BF16, ids, tb, PARE_BF16, 1.0f, M, C);
    int rows = 1;
    for (int64_t m = 0; m < M; m++) rows &= !memcmp(y + m * C, tb + (int64_t)ids[m] * C, (size_t)C * 2);
    ok(rows, "embedding bf16 table -> bf16 output: the table's rows exactly");
    pare_embedding_half(f, PARE_F32, ids, tb, PARE_BF16, 1.0f, M, C);
    int wide = 1;
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < C; k++) wide &= f[m * C + k] == pare_bf16_to_f32(tb[(int64_t)ids[m] * C + k]);
    ok(wide, "embedding bf16 table -> f32 output: the rows widened exactly");
    free(y), free(c), free(f), free(tb), free(tab);
}

static void test_posadd(void)
{
    const int64_t B = 3, T = 5, C = 700;
    float *x = randn(B * T * C, 2.0f), *pos = randn(T * C, 0.5f);
    int all = 1, inplace = 1, rows = 1, n = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++) {
            pare_dtype it = DTS[a], pt = DTS[b];
            size_t ib = pare_dtype_size(it);
            void *xi = to_dt(x, it, B * T * C), *p = to_dt(pos, pt, T * C);
            char *y = xalloc((size_t)(B * T * C) * ib), *r = xalloc((size_t)(B * T * C) * ib), *z = xalloc((size_t)(B * T * C) * ib);
            omp_set_num_threads(2);
            pare_posadd_half(y, xi, it, p, pt, B, T, C);
            pare_posadd_half_ref(r, xi, it, p, pt, B, T, C);
            all &= !memcmp(y, r, (size_t)(B * T * C) * ib);
            int64_t atp[15];
            for (int i = 0; i < B * T; i++) atp[i] = i % T;
            pare_posadd_half_at(z, xi, it, p, pt, atp, B * T, C);
            rows &= !memcmp(y, z, (size_t)(B * T * C) * ib);
            pare_posadd_half(xi, xi, it, p, pt, B, T, C);
            inplace &= !memcmp(xi, r, (size_t)(B * T * C) * ib);
            n++;
            free(xi), free(p), free(y), free(r), free(z);
        }
    ok(all, "posadd: %d (input, table) dtype pairs equal the reference (one rounding of the f32 sum) bit for bit", n);
    ok(inplace, "posadd: in place gives the same bits");
    ok(rows, "posadd_at (the decoder's rows with explicit positions) == posadd");
    free(x), free(pos);
}

/* the bound of the header on one row: y (n) the f32 inputs of the softmax (already divided by s), p (n) double */
static int row_ok(const void *out, pare_dtype ot, int64_t off, const float *y, int64_t n, double *worst)
{
    double mx = -INFINITY, mn = INFINITY, my = 0, sum = 0;
    for (int64_t j = 0; j < n; j++) mx = fmax(mx, y[j]), mn = fmin(mn, y[j]), my = fmax(my, fabs(y[j]));
    for (int64_t j = 0; j < n; j++) sum += exp((double)y[j] - mx);
    const double u = ldexp(1, -24), E = u * (2 * (mx - mn) + 4 * my + (double)n + 8), uo = ot == PARE_F32 ? 0 : ldexp(1, -8);
    int good = 1;
    for (int64_t j = 0; j < n; j++) {
        double p = exp((double)y[j] - mx) / sum, b = (uo * (1 + E) + E) * p + ldexp(1, -134), e = fabs(at(out, ot, off + j) - p);
        if ((double)y[j] - mx < -87) b += exp(-87.0) / sum * (1 + uo) * (1 + E); /* nn_expf clamps its argument at -87 */
        if (e > b) good = 0;
        if (b > 0 && e / b > *worst) *worst = e / b;
    }
    return good;
}

static void test_softmax(void)
{
    const int64_t M = 40, Ns[4] = {1, 7, 128, 600};
    int bits = 1, threads = 1, bound = 1, trunc_breaks = 0, trunc_rows = 0, n = 0;
    double worst = 0;
    for (int k = 0; k < 4; k++) {
        const int64_t N = Ns[k];
        float *x = randn(M * N, 3.0f);
        for (int64_t i = 0; i < M * N; i += 17) x[i] *= 8;
        float *w = xalloc(sizeof(float) * (size_t)N * 2 + 64);
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                pare_dtype it = DTS[a], ot = DTS[b];
                size_t ob = pare_dtype_size(ot);
                void *xi = to_dt(x, it, M * N);
                char *y = xalloc((size_t)(M * N) * ob), *y1 = xalloc((size_t)(M * N) * ob), *r = xalloc((size_t)(M * N) * ob);
                omp_set_num_threads(2);
                pare_softmax_half(y, ot, xi, it, M, N, w, 2);
                omp_set_num_threads(1);
                pare_softmax_half(y1, ot, xi, it, M, N, w, 1);
                pare_softmax_half_ref(r, ot, xi, it, M, N);
                bits &= !memcmp(y, r, (size_t)(M * N) * ob);
                threads &= !memcmp(y, y1, (size_t)(M * N) * ob);
                float *xw = xalloc(sizeof(float) * (size_t)(M * N));
                for (int64_t i = 0; i < M * N; i++) xw[i] = (float)at(xi, it, i);
                for (int64_t m = 0; m < M; m++) bound &= row_ok(y, ot, m * N, xw + m * N, N, &worst);
                if (ot == PARE_BF16 && N >= 128) { /* truncation instead of rounding: the bound must catch it */
                    float *f = xalloc(sizeof(float) * (size_t)(M * N));
                    uint16_t *t = xalloc((size_t)(M * N) * 2);
                    pare_softmax_forward(f, xw, M, N);
                    for (int64_t i = 0; i < M * N; i++) {
                        uint32_t u;
                        memcpy(&u, &f[i], 4);
                        t[i] = (uint16_t)(u >> 16);
                    }
                    double tw = 0;
                    for (int64_t m = 0; m < M; m++) trunc_breaks += !row_ok(t, PARE_BF16, m * N, xw + m * N, N, &tw), trunc_rows++;
                    free(f), free(t);
                }
                n++;
                free(xi), free(y), free(y1), free(r), free(xw);
            }
        free(x), free(w);
    }
    ok(bits, "softmax: %d (N, input, output) cases equal the reference (widen, pare_softmax_forward, round) bit for bit", n);
    ok(threads, "softmax: 1 and 2 threads (slots) give the same bits");
    ok(bound, "softmax: every probability within the derived bound of softmax in double (worst |err| / bound %.3f)", worst);
    ok(trunc_breaks > trunc_rows / 2, "softmax bound not vacuous: truncating to bf16 breaks it on %d of %d rows", trunc_breaks, trunc_rows);
}

static void test_masked(void)
{
    const int64_t B = 3, H = 2, Ts[3] = {1, 33, 130};
    const float s = 8.0f;
    int bits = 1, threads = 1, bound = 1, zeros = 1, n = 0;
    double worst = 0;
    for (int k = 0; k < 3; k++)
        for (int causal = 0; causal < 2; causal++) {
            const int64_t T = Ts[k];
            int32_t len[3] = {(int32_t)T, (int32_t)(T / 2), 0};
            float *x = randn(B * H * T * T, 20.0f);
            float *w = xalloc(sizeof(float) * (size_t)T * 2 + 64);
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) {
                    pare_dtype it = DTS[a], ot = DTS[b];
                    size_t ob = pare_dtype_size(ot);
                    int64_t L = B * H * T * T;
                    void *xi = to_dt(x, it, L);
                    char *y = xalloc((size_t)L * ob), *y1 = xalloc((size_t)L * ob), *r = xalloc((size_t)L * ob);
                    omp_set_num_threads(2);
                    pare_masked_softmax_half(y, ot, xi, it, s, len, causal, B, H, T, w, 2);
                    omp_set_num_threads(1);
                    pare_masked_softmax_half(y1, ot, xi, it, s, len, causal, B, H, T, w, 1);
                    pare_masked_softmax_half_ref(r, ot, xi, it, s, len, causal, B, H, T);
                    if (memcmp(y, r, (size_t)L * ob)) {
                        bits = 0;
                        diag("masked T=%lld causal=%d in %s out %s: differs from the f32 masked kernel rounded", (long long)T,
                             causal, pare_dtype_name(it), pare_dtype_name(ot));
                    }
                    threads &= !memcmp(y, y1, (size_t)L * ob);
                    float *yw = xalloc(sizeof(float) * (size_t)T);
                    for (int64_t r0 = 0; r0 < B * H * T; r0++) {
                        int64_t bb = r0 / (H * T), i = r0 % T, Lb = len[bb] > T ? T : len[bb];
                        int64_t ke = causal && i + 1 < Lb ? i + 1 : Lb;
                        for (int64_t j = 0; j < ke; j++) yw[j] = (float)at(xi, it, r0 * T + j) / s;
                        if (ke) bound &= row_ok(y, ot, r0 * T, yw, ke, &worst);
                        for (int64_t j = ke; j < T; j++) zeros &= at(y, ot, r0 * T + j) == 0;
                    }
                    n++;
                    free(xi), free(y), free(y1), free(r), free(yw);
                }
            free(x), free(w);
        }
    ok(bits, "masked softmax: %d cases (T 1/33/130, lengths T/half/0, causal or not) equal the f32 masked kernel on widened "
       "scores, rounded, bit for bit", n);
    ok(threads, "masked softmax: 1 and 2 threads give the same bits");
    ok(bound, "masked softmax: within the derived bound of softmax(x / s) in double over the visible keys (worst %.3f)", worst);
    ok(zeros, "masked softmax: masked keys exactly 0");
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 16);
    test_embedding();
    test_posadd();
    test_softmax();
    test_masked();
    return tap_done();
}
