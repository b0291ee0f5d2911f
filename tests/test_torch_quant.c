/* test_torch_quant.c — pare's PyTorch scheme of dynamic_int8 (scheme = "torch": pare_i8_weight_quantize_torch and
 * pare_i8_act.torch_qparams, kernels/gemm_i8.h) against torch itself (tests/torch_quant_ref.py, Debian's torch 1.13
 * through /usr/bin/python3; every check is skipped, with the reason, when torch cannot be imported).
 *
 * Ten Linears (shapes 16×64 .. 8×768; weights with a −128 forced and without; inputs of mixed sign, all positive,
 * all negative, all zero, and a tiny range that takes torch's smallest-scale branch) go through
 * torch.ao.quantization.quantize_dynamic(dtype=qint8). Asserted per Linear:
 *   - the int8 weights equal torch's int_repr() byte for byte, the weight scale equals q_scale() bit for bit
 *     (as float) and torch's zero point is 0;
 *   - the activation scale and zero point equal torch._choose_qparams_per_tensor(x, reduce_range=True);
 *   - pare's fast Linear equals its reference twin bit for bit;
 *   - y agrees with torch's quantized Linear elementwise within the float rounding of the two scalings:
 *     the integer sums are the same (same codes, exact int32), and each side forms t = raw·s_x·s_w with two
 *     roundings in some order and adds the bias with one, so |y_pare − y_torch| <= 4.01·u·|t| + u·(|y_pare| +
 *     |y_torch|), u = 2^-24 (|raw| < 2^24 here, so float(raw) is exact). t is recomputed from pare's codes.
 * Also reported (not asserted): how far pare's default scheme (per channel, per token symmetric) lands from torch.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <dnnl.h>

#include "core/status.h"
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"
#include "kernels/gemm_i8_internal.h"
#include "tap.h"
#include "test_rand.h"

enum { NCASE = 10 };
typedef struct tcase {
    int32_t N, K, M;
    float *W, *b, *x;
    /* from torch */
    double wscale, ascale;
    int32_t wzp, azp;
    int8_t *q;
    float *y;
} tcase;

static void make_case(tcase *c, int i)
{
    static const int32_t shp[NCASE][3] = {{16, 64, 5},  {33, 67, 7}, {64, 200, 3}, {8, 768, 4}, {16, 64, 5},
                                          {24, 96, 6},  {24, 96, 6}, {24, 96, 6},  {24, 96, 6}, {48, 128, 9}};
    c->N = shp[i][0], c->K = shp[i][1], c->M = shp[i][2];
    const int64_t N = c->N, K = c->K, M = c->M;
    c->W = randn(N * K, 0.04f), c->b = randn(N, 0.1f), c->x = randn(M * K, 1.5f);
    /* max|W| = 127.5·2^-9 makes the scale 2^-9 and W·(1/scale) = ±127.5 exactly: −128 where the extreme is
     * negative (round half-even), 127 (clamped from 128) where it is positive. Elsewhere −128 needs
     * W·(1/scale) to round to −127.5 or beyond: a matter of the last bit, both ways in random weights. */
    if (i == 1 || i == 5 || i == 9) c->W[3 * K + 5] = -127.5f / 512.0f;
    if (i == 4) c->W[2 * K + 1] = 127.5f / 512.0f;
    for (int64_t j = 0; j < M * K; j++) {
        if (i == 0 || i == 9) c->x[j] += 0.3f;
        if (i == 5) c->x[j] = fabsf(c->x[j]);        /* all positive: z = 0 */
        if (i == 6) c->x[j] = -fabsf(c->x[j]);       /* all negative: z = 127 */
        if (i == 7) c->x[j] = 0.0f;                  /* zero range: scale 0.1 */
        if (i == 8) c->x[j] *= 1e-6f;                /* scale below 6.1e-5: torch's smallest-scale branch */
    }
}

static int bits_equal_f(const float *a, const float *b, int64_t n, int64_t *first)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) {
            if (first) *first = i;
            return 0;
        }
    return 1;
}

/* Writes the cases, runs torch_quant_ref.py, reads its answers. 0, or -1 (skip) with why[] set. */
static int run_torch(tcase *cs, char *why, size_t nwhy)
{
    if (access("/usr/bin/python3", X_OK)) {
        snprintf(why, nwhy, "no /usr/bin/python3");
        return -1;
    }
    char in[] = "/tmp/pare-tq-in-XXXXXX", out[] = "/tmp/pare-tq-out-XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(out);
    if (fi < 0 || fo < 0) {
        snprintf(why, nwhy, "mkstemp failed");
        return -1;
    }
    close(fo);
    FILE *f = fdopen(fi, "wb");
    int32_t n = NCASE;
    fwrite(&n, 4, 1, f);
    for (int i = 0; i < NCASE; i++) {
        tcase *c = &cs[i];
        fwrite(&c->N, 4, 3, f);
        fwrite(c->W, 4, (size_t)c->N * (size_t)c->K, f);
        fwrite(c->b, 4, (size_t)c->N, f);
        fwrite(c->x, 4, (size_t)c->M * (size_t)c->K, f);
    }
    fclose(f);
    char cmd[512], line[256] = "";
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/torch_quant_ref.py %s %s 2>&1", in, out);
    FILE *p = popen(cmd, "r");
    if (p && !fgets(line, sizeof line, p)) line[0] = 0;
    int rc = p ? pclose(p) : -1;
    unlink(in);
    line[strcspn(line, "\n")] = 0;
    if (rc != 0) {
        snprintf(why, nwhy, "torch_quant_ref.py failed (status %d): %s", rc, line);
        unlink(out);
        return -1;
    }
    diag("%s", line);
    f = fopen(out, "rb");
    int good = f != NULL;
    for (int i = 0; good && i < NCASE; i++) {
        tcase *c = &cs[i];
        size_t nk = (size_t)c->N * (size_t)c->K, mn = (size_t)c->M * (size_t)c->N;
        c->q = xalloc(nk), c->y = xalloc(mn * 4);
        good = fread(&c->wscale, 8, 1, f) == 1 && fread(&c->wzp, 4, 1, f) == 1 && fread(c->q, 1, nk, f) == nk &&
               fread(&c->ascale, 8, 1, f) == 1 && fread(&c->azp, 4, 1, f) == 1 && fread(c->y, 4, mn, f) == mn;
    }
    if (f) fclose(f);
    unlink(out);
    if (!good) snprintf(why, nwhy, "short answer from torch_quant_ref.py");
    return good ? 0 : -1;
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 18);
    tcase cs[NCASE];
    memset(cs, 0, sizeof cs);
    for (int i = 0; i < NCASE; i++) make_case(&cs[i], i);
    char why[400];
    if (run_torch(cs, why, sizeof why)) {
        printf("1..0 # SKIP %s\n", why);
        return 0;
    }
    const double u = ldexp(1.0, -24);
    int n128 = 0;
    for (int i = 0; i < NCASE; i++) {
        tcase *c = &cs[i];
        const int64_t N = c->N, K = c->K, M = c->M;
        pare_i8_weight w;
        pare_status st = pare_i8_weight_quantize_torch(&w, c->W, N, K);
        if (st != PARE_OK) {
            ok(0, "case %d: quantize_torch: %s", i, pare_errmsg());
            continue;
        }
        int64_t diff = 0, has128 = 0;
        for (int64_t j = 0; j < N * K; j++) diff += w.q[j] != c->q[j], has128 += c->q[j] == -128;
        n128 += has128 > 0;
        ok(diff == 0 && (double)w.scale[0] == (double)(float)c->wscale && w.scale[N - 1] == w.scale[0] && c->wzp == 0,
           "case %d (N=%lld K=%lld): int8 weights == torch int_repr (%lld of %lld differ; %lld codes of -128), scale "
           "%.9g == q_scale %.9g, torch zero point %d", i, (long long)N, (long long)K, (long long)diff,
           (long long)(N * K), (long long)has128, (double)w.scale[0], c->wscale, (int)c->wzp);

        float mnx = 0, mxx = 0, sx, inv;
        int32_t z;
        for (int64_t j = 0; j < M * K; j++) mnx = fminf(mnx, c->x[j]), mxx = fmaxf(mxx, c->x[j]);
        pare_i8_torch_asym_params_(mnx, mxx, &sx, &inv, &z);
        ok((double)sx == (double)(float)c->ascale && z == c->azp,
           "case %d: activation scale %.9g zero %d == torch._choose_qparams_per_tensor(x, reduce_range) %.9g %d", i,
           (double)sx, (int)z, c->ascale, (int)c->azp);

        pare_i8_act a = {.mode = PARE_ACT_DYN_TENSOR, .symmetric = 0, .torch_qparams = 1};
        float *y = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4);
        void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, &a));
        st = pare_linear_i8_act(y, c->x, &w, NULL, c->b, M, &a, ws, NULL);
        pare_linear_i8_act_ref(yr, c->x, &w, NULL, c->b, M, &a, NULL);
        int64_t first = -1;
        int same = st == PARE_OK && bits_equal_f(y, yr, M * N, &first);
        ok(same, "case %d: fast == reference bit for bit %s", i, st ? pare_errmsg() : "");

        /* the derived bound, with t recomputed from the codes */
        double worst = 0, maxd = 0;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                int64_t raw = 0;
                for (int64_t k = 0; k < K; k++) {
                    float r = nearbyintf(c->x[m * K + k] * inv);
                    r = r < (float)-z ? (float)-z : r > (float)(255 - z) ? (float)(255 - z) : r;
                    raw += (int64_t)r * w.q[n * K + k];
                }
                double t = (double)raw * sx * w.scale[n], yp = y[m * N + n], yt = c->y[m * N + n];
                double tol = 4.01 * u * fabs(t) + u * (fabs(yp) + fabs(yt)) + 1e-30;
                worst = fmax(worst, fabs(yp - yt) / tol), maxd = fmax(maxd, fabs(yp - yt));
            }
        ok(worst <= 1.0, "case %d: y within the derived rounding bound of torch's quantized Linear (worst |Δ|/bound "
           "%.3f, max |Δ| %.3g)", i, worst, maxd);

        /* pare's default scheme against torch, for the record */
        pare_i8_weight wd;
        double dmax = 0, ymax = 0;
        if (pare_i8_weight_quantize(&wd, c->W, N, K) == PARE_OK) {
            void *wsd = xalloc(pare_linear_i8_workspace(M, N, K));
            if (pare_linear_i8_dynamic(y, c->x, &wd, c->b, M, wsd) == PARE_OK)
                for (int64_t j = 0; j < M * N; j++)
                    dmax = fmax(dmax, fabs(y[j] - c->y[j])), ymax = fmax(ymax, fabs(c->y[j]));
            free(wsd);
            pare_i8_weight_free(&wd);
        }
        diag("case %d: pare's default scheme (per channel, per token symmetric) vs torch: max |Δ| %.3g (max |y| %.3g)",
             i, dmax, ymax);
        free(ws), free(y), free(yr);
        pare_i8_weight_free(&w);
    }
    ok(n128 >= 3, "codes of -128 occurred in %d of the torch weights (the cases that force one)", n128);
    for (int i = 0; i < NCASE; i++) free(cs[i].W), free(cs[i].b), free(cs[i].x), free(cs[i].q), free(cs[i].y);
    return tap_done();
}
