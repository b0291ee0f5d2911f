/* test_qblock.c — the block-quantized Linear (kernels/qblock.h): int4 / int8 group-wise, Q8_0, Q4_0, Q4_1
 * (Q5_0, Q5_1 and the k-quants: test_qblock_k.c; only names and the NaN / fp16 checks of W run here for them).
 *
 * Checks:
 *   - names and parsing; argument errors (group not dividing K or not a multiple of 32 names "group", K not
 *     a multiple of 32 for the Q kinds names "K", NaN/Inf in W names row and column, scales beyond fp16,
 *     int8_group asymmetric, from_int ranges); free twice;
 *   - storage: pare_qb_bytes and bits per weight exactly 4.5 / 5.0 / 8.5 and 4 + 16/g (+8/g) / 8 + 16/g;
 *   - quantization error per element: half a step for int4/int8 group-wise (scales rounded up to fp16);
 *     for the Q kinds half a step plus the fp16 rounding of d (and Q4_0's clamped top nibble: one step);
 *   - Q8_0 / Q4_0 / Q4_1 byte-exact against an independent transcription of llama.cpp's reference
 *     quantizers (below, writing ggml's interleaved blocks), on random rows and on crafted blocks (ties,
 *     zeros, negative maxima, constants);
 *   - from_int round trips (dequantized values = s·(q − z) exactly; quantize → integers → from_int gives
 *     the same bytes);
 *   - pare_linear_qb vs pare_linear_qb_ref on every ISA this CPU has (AVX-512/VNNI, AVX2, scalar, forced with
 *     pare_qb_set_isa) at 1 and 2 threads, M in {1, 3, 17, 128}, several N and K (including an odd number
 *     of blocks), groups 32/64/128, symmetric and asymmetric, with and without bias. The bound is the
 *     worst-case float error of summing the same terms in another order, (terms + 16)·2^-23·Σ|x|·|Ŵ|: the
 *     integer dot products must be exact for that to hold;
 *   - the reference vs the dequantized weight in a double-precision Linear: int4_group (weight-only) to
 *     float rounding; the activation-quantized kinds within Σ_k |Ŵ_k|·e_k, e_k the activation
 *     quantization error bound (½ step + the fp16 rounding of d; Q4_1 also the fp16 rounding of its block
 *     sums), derived in act_err_bound below;
 *   - activations that tie (x·(1/d) = n + ½) quantize the same way on every path (roundf for the Q kinds);
 *   - zero weights / zero tokens give the bias; NaN or too large inputs are reported naming the row;
 *     workspace errors.
 * No timing is asserted.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/status.h"
#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/qblock.h"
#include "tap.h"

static pare_rng g_rng;

static void *xalloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? (n + 63) / 64 * 64 : 64)) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memset(p, 0, n ? n : 1);
    return p;
}

static float *randn(int64_t n, float s)
{
    float *x = xalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = s * (float)pare_rng_normal(&g_rng);
    return x;
}

static float h2f(uint16_t h) { return pare_f16_to_f32(h); }

/* ---- an independent transcription of llama.cpp's reference quantizers (ggml-quants.c), AoS blocks ---- */

typedef struct { uint16_t d; int8_t qs[32]; } ref_q8_0;
typedef struct { uint16_t d; uint8_t qs[16]; } ref_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } ref_q4_1;

static void ref_quantize_q8_0(const float *x, ref_q8_0 *y, int64_t k)
{
    for (int64_t i = 0; i < k / 32; i++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[i * 32 + j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = pare_f32_to_f16(d);
        for (int j = 0; j < 32; j++) y[i].qs[j] = (int8_t)roundf(x[i * 32 + j] * id);
    }
}

static void ref_quantize_q4_0(const float *x, ref_q4_0 *y, int64_t k)
{
    for (int64_t i = 0; i < k / 32; i++) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[i * 32 + j]) > amax) amax = fabsf(x[i * 32 + j]), max = x[i * 32 + j];
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = pare_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int a = (int8_t)(x[i * 32 + j] * id + 8.5f), b = (int8_t)(x[i * 32 + 16 + j] * id + 8.5f);
            a = a > 15 ? 15 : a;
            b = b > 15 ? 15 : b;
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

static void ref_quantize_q4_1(const float *x, ref_q4_1 *y, int64_t k)
{
    for (int64_t i = 0; i < k / 32; i++) {
        float mn = x[i * 32], mx = x[i * 32];
        for (int j = 1; j < 32; j++) mn = fminf(mn, x[i * 32 + j]), mx = fmaxf(mx, x[i * 32 + j]);
        const float d = (mx - mn) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = pare_f32_to_f16(d);
        y[i].m = pare_f32_to_f16(mn);
        for (int j = 0; j < 16; j++) {
            int a = (int8_t)((x[i * 32 + j] - mn) * id + 0.5f), b = (int8_t)((x[i * 32 + 16 + j] - mn) * id + 0.5f);
            a = a > 15 ? 15 : a;
            b = b > 15 ? 15 : b;
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

/* The ggml bytes (little-endian, packed) of the blocks above. */
static size_t ggml_bytes(uint8_t *dst, pare_qb_kind kind, const float *W, int64_t N, int64_t K)
{
    uint8_t *p = dst;
    int64_t nb = K / 32;
    for (int64_t n = 0; n < N; n++) {
        const float *x = W + n * K;
        for (int64_t b = 0; b < nb; b++) {
            if (kind == PARE_QB_Q8_0) {
                ref_q8_0 blk;
                ref_quantize_q8_0(x + b * 32, &blk, 32);
                *p++ = (uint8_t)blk.d, *p++ = (uint8_t)(blk.d >> 8);
                memcpy(p, blk.qs, 32), p += 32;
            } else if (kind == PARE_QB_Q4_0) {
                ref_q4_0 blk;
                ref_quantize_q4_0(x + b * 32, &blk, 32);
                *p++ = (uint8_t)blk.d, *p++ = (uint8_t)(blk.d >> 8);
                memcpy(p, blk.qs, 16), p += 16;
            } else {
                ref_q4_1 blk;
                ref_quantize_q4_1(x + b * 32, &blk, 32);
                *p++ = (uint8_t)blk.d, *p++ = (uint8_t)(blk.d >> 8);
                *p++ = (uint8_t)blk.m, *p++ = (uint8_t)(blk.m >> 8);
                memcpy(p, blk.qs, 16), p += 16;
            }
        }
    }
    return (size_t)(p - dst);
}

/* ---- names, errors, sizes ---- */

static int errmsg_has(const char *s) { return strstr(pare_errmsg(), s) != NULL; }

static void test_names_and_errors(void)
{
    for (int k = 0; k < PARE_QB_COUNT; k++) {
        pare_qb_kind got = PARE_QB_COUNT;
        ok(pare_qb_kind_parse(pare_qb_kind_name((pare_qb_kind)k), &got) == PARE_OK && got == (pare_qb_kind)k,
           "kind %s parses back", pare_qb_kind_name((pare_qb_kind)k));
    }
    pare_qb_kind got;
    ok(pare_qb_kind_parse("q3_k", &got) == PARE_EINVAL && errmsg_has("int4_group") && errmsg_has("q4_1"),
       "unknown kind lists the valid names (%s)", pare_errmsg());

    float *W = randn(8 * 256, 1.0f);
    pare_qb_weight w;
    ok(pare_qb_quantize(&w, PARE_QB_I4G, W, 8, 256, 96, 1) == PARE_ESHAPE && errmsg_has("group=96"),
       "group not dividing K names group (%s)", pare_errmsg());
    ok(pare_qb_quantize(&w, PARE_QB_I4G, W, 8, 256, 48, 1) == PARE_EINVAL && errmsg_has("group=48"),
       "group not a multiple of 32 names group (%s)", pare_errmsg());
    ok(pare_qb_quantize(&w, PARE_QB_I8G, W, 8, 256, 0, 1) == PARE_EINVAL && errmsg_has("group"),
       "group 0 rejected (%s)", pare_errmsg());
    ok(pare_qb_quantize(&w, PARE_QB_Q4_0, W, 8, 240, 0, 1) == PARE_ESHAPE && errmsg_has("K=240"),
       "q4_0 with K not a multiple of 32 names K (%s)", pare_errmsg());
    ok(pare_qb_quantize(&w, PARE_QB_I8G, W, 8, 256, 64, 0) == PARE_EINVAL && errmsg_has("symmetric"),
       "int8_group asymmetric rejected (%s)", pare_errmsg());
    ok(pare_qb_quantize(&w, PARE_QB_COUNT, W, 8, 256, 64, 1) == PARE_EINVAL && errmsg_has("q8_0"),
       "bad kind lists the kinds (%s)", pare_errmsg());
    ok(pare_qb_quantize(&w, PARE_QB_Q8_0, W, 0, 256, 0, 1) == PARE_EINVAL && errmsg_has("N=0"), "N=0 rejected");
    for (int kind = 0; kind < PARE_QB_COUNT; kind++) {
        float saved = W[2 * 256 + 37];
        W[2 * 256 + 37] = kind % 2 ? INFINITY : NAN;
        pare_status st = pare_qb_quantize(&w, (pare_qb_kind)kind, W, 8, 256, 64, 1);
        ok(st == PARE_ENUMERIC && errmsg_has("row 2") && errmsg_has("column 37") &&
               errmsg_has(kind % 2 ? "Inf" : "NaN") && w.qs == NULL,
           "%s: %s in W reported with row and column (%s)", pare_qb_kind_name((pare_qb_kind)kind),
           kind % 2 ? "Inf" : "NaN", pare_errmsg());
        W[2 * 256 + 37] = 1e12f;
        st = pare_qb_quantize(&w, (pare_qb_kind)kind, W, 8, 256, 64, 1);
        ok(st == PARE_ENUMERIC && errmsg_has("row 2") && errmsg_has("fp16"), "%s: a scale beyond fp16 is reported (%s)",
           pare_qb_kind_name((pare_qb_kind)kind), pare_errmsg());
        W[2 * 256 + 37] = saved;
    }
    /* free twice, and on the zeroed struct a failed call leaves */
    ok(pare_qb_quantize(&w, PARE_QB_Q4_1, W, 8, 256, 0, 1) == PARE_OK, "q4_1 quantize");
    pare_qb_free(&w);
    pare_qb_free(&w);
    pare_qb_free(NULL);
    ok(w.qs == NULL && pare_qb_bytes(&w) == 0, "free twice is safe");
    free(W);
}

static void test_sizes(void)
{
    const int64_t N = 16, K = 512;
    float *W = randn(N * K, 1.0f);
    struct { pare_qb_kind kind; int64_t g; int sym; double bits; } c[] = {
        {PARE_QB_Q4_0, 0, 1, 4.5},       {PARE_QB_Q4_1, 0, 1, 5.0},        {PARE_QB_Q8_0, 0, 1, 8.5},
        {PARE_QB_I4G, 32, 1, 4.5},       {PARE_QB_I4G, 64, 1, 4.25},       {PARE_QB_I4G, 128, 1, 4.125},
        {PARE_QB_I4G, 32, 0, 4.75},      {PARE_QB_I4G, 128, 0, 4.1875},    {PARE_QB_I8G, 32, 1, 8.5},
        {PARE_QB_I8G, 128, 1, 8.125},    {PARE_QB_I8G, 512, 1, 8.03125},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        pare_qb_weight w;
        pare_status st = pare_qb_quantize(&w, c[i].kind, W, N, K, c[i].g, c[i].sym);
        ok(st == PARE_OK && pare_qb_bits_per_weight(&w) == c[i].bits &&
               pare_qb_bytes(&w) == (size_t)(c[i].bits * (double)(N * K) / 8.0),
           "%s g=%lld %s: %.4f bits per weight (want %.4f), %zu bytes", pare_qb_kind_name(c[i].kind),
           (long long)w.group, c[i].sym ? "sym" : "asym", pare_qb_bits_per_weight(&w), c[i].bits, pare_qb_bytes(&w));
        pare_qb_free(&w);
    }
    free(W);
}

/* ---- quantization error and byte-exactness ---- */

static void test_quant_error(void)
{
    const int64_t N = 24, K = 384;
    float *W = randn(N * K, 0.5f), *D = xalloc((size_t)(N * K) * sizeof(float));
    for (int64_t k = 0; k < 64; k++) W[3 * K + k] = 0.0f;        /* an all-zero group (row 3) */
    for (int64_t k = 64; k < 128; k++) W[4 * K + k] = 2.5f;      /* a constant positive group */
    for (int64_t k = 0; k < K; k++) W[5 * K + k] *= 1e-4f;       /* tiny (fp16-subnormal scales) */
    for (int kind = 0; kind <= PARE_QB_Q4_1; kind++) /* the newer kinds: test_qblock_k.c */
        for (int g = 32; g <= 128; g *= 2)
            for (int sym = 1; sym >= 0; sym--) {
                if ((kind != PARE_QB_I4G && sym == 0) || (kind >= PARE_QB_Q8_0 && g > 32)) continue;
                pare_qb_weight w;
                if (!ok(pare_qb_quantize(&w, (pare_qb_kind)kind, W, N, K, g, sym) == PARE_OK, "quantize %s g=%d sym=%d",
                        pare_qb_kind_name((pare_qb_kind)kind), g, sym)) {
                    diag("%s", pare_errmsg());
                    continue;
                }
                pare_qb_dequantize(D, &w);
                double worst = 0;
                int64_t worst_i = 0, nz = 0;
                for (int64_t i = 0; i < N * K; i++) {
                    int64_t n = i / K, gi = (i % K) / w.group;
                    float s = h2f(w.scale[n * (K / w.group) + gi]), e = fabsf(W[i] - D[i]), bound;
                    if (kind <= PARE_QB_I8G) {
                        bound = 0.5f * s * (1.0f + 1e-6f) + 1e-30f;
                    } else { /* llama.cpp's d is rounded to nearest fp16, not up: add its rounding error */
                        const float *b = W + n * K + gi * 32;
                        float amax = 0, mx = 0, mn = b[0], hi = b[0];
                        for (int j = 0; j < 32; j++) {
                            if (fabsf(b[j]) > amax) amax = fabsf(b[j]), mx = b[j];
                            mn = fminf(mn, b[j]), hi = fmaxf(hi, b[j]);
                        }
                        float d = kind == PARE_QB_Q8_0 ? amax / 127 : kind == PARE_QB_Q4_0 ? mx / -8 : (hi - mn) / 15;
                        float qmax = kind == PARE_QB_Q8_0 ? 127 : kind == PARE_QB_Q4_0 ? 8 : 15;
                        float step = 0.5f;
                        if (kind == PARE_QB_Q4_0 && d != 0 && W[i] / d > 7.5f) step = 1.0f; /* clamped to nibble 15 */
                        bound = step * fabsf(s) + qmax * fabsf(d - s) + 4e-7f * fabsf(W[i]) + 1e-30f;
                        if (kind == PARE_QB_Q4_1) bound += fabsf(mn - h2f(w.min[n * (K / 32) + gi]));
                    }
                    if (W[i] == 0.0f && D[i] == 0.0f) nz++;
                    if (e / bound > worst) worst = e / bound, worst_i = i;
                }
                int zero_ok = 1;
                for (int64_t k = 0; k < 64; k++) zero_ok &= D[3 * K + k] == 0.0f;
                ok(worst <= 1.0 && zero_ok,
                   "%s g=%lld %s: |W - Ŵ| within half a step (worst %.3f of the bound at %lld)",
                   pare_qb_kind_name(w.kind), (long long)w.group, w.symmetric ? "sym" : "asym", worst,
                   (long long)worst_i);
                pare_qb_free(&w);
            }
    free(W);
    free(D);
}

static void test_ggml_bytes(void)
{
    const int64_t N = 6, K = 256;
    float *W = randn(N * K, 1.0f);
    /* crafted rows: ties of x·id at n + ½ (absmax 127 → d = 1), zeros, a negative maximum, a constant */
    for (int64_t k = 0; k < 32; k++) W[k] = (float)(k % 2 ? -1 : 1) * ((float)(k * 4 % 127) + 0.5f);
    W[31] = 127.0f;
    for (int64_t k = 32; k < 64; k++) W[k] = 0.0f;
    for (int64_t k = 64; k < 96; k++) W[k] = (float)(k - 80) * 0.25f;
    W[70] = -9.0f;
    for (int64_t k = 96; k < 128; k++) W[k] = 3.0f;
    for (int64_t k = 128; k < 160; k++) W[k] = (float)(k - 128) / 8.0f - 2.0f; /* Q4_0 ties: max -2 → d 0.25 */
    for (int kind = PARE_QB_Q8_0; kind <= PARE_QB_Q4_1; kind++) {
        pare_qb_weight w;
        pare_qb_quantize(&w, (pare_qb_kind)kind, W, N, K, 0, 1);
        size_t n = pare_qb_bytes(&w);
        uint8_t *got = xalloc(n), *want = xalloc(n + 64);
        size_t wn = ggml_bytes(want, (pare_qb_kind)kind, W, N, K);
        pare_status st = pare_qb_to_ggml(got, n, &w);
        size_t first = 0;
        while (first < n && got[first] == want[first]) first++;
        ok(st == PARE_OK && wn == n && first == n, "%s: ggml blocks byte-exact vs llama.cpp's reference quantizer (%zu "
           "bytes%s)", pare_qb_kind_name(w.kind), n, first < n ? ", first difference" : "");
        if (first < n) diag("byte %zu: got %02x want %02x", first, got[first], want[first]);
        ok(pare_qb_to_ggml(got, n - 1, &w) == PARE_EINVAL, "%s: to_ggml checks the size", pare_qb_kind_name(w.kind));
        free(got);
        free(want);
        pare_qb_free(&w);
    }
    pare_qb_weight w;
    pare_qb_quantize(&w, PARE_QB_I4G, W, N, K, 32, 1);
    uint8_t buf[8];
    ok(pare_qb_to_ggml(buf, sizeof buf, &w) == PARE_EINVAL, "to_ggml rejects int4_group");
    pare_qb_free(&w);
    free(W);
}

/* ---- from_int ---- */

static void test_from_int(void)
{
    const int64_t N = 10, K = 256;
    int32_t *q = xalloc((size_t)(N * K) * sizeof(int32_t));
    float *sc = randn(N * K / 32, 0.1f), *D = xalloc((size_t)(N * K) * sizeof(float));
    int32_t *z = xalloc((size_t)(N * K / 32) * sizeof(int32_t));
    for (int64_t i = 0; i < N * K / 32; i++) sc[i] = fabsf(sc[i]) + 1e-3f;
    for (int cas = 0; cas < 3; cas++) {
        pare_qb_kind kind = cas == 2 ? PARE_QB_I8G : PARE_QB_I4G;
        int asym = cas == 1;
        int64_t g = cas == 0 ? 64 : cas == 1 ? 32 : 128, ng = K / g;
        int lo = kind == PARE_QB_I8G ? -127 : asym ? 0 : -8, hi = kind == PARE_QB_I8G ? 127 : asym ? 15 : 7;
        for (int64_t i = 0; i < N * K; i++) q[i] = lo + (int)pare_rng_below(&g_rng, (uint64_t)(hi - lo + 1));
        for (int64_t i = 0; i < N * ng; i++) z[i] = (int32_t)pare_rng_below(&g_rng, 16);
        pare_qb_weight w;
        pare_status st = pare_qb_from_int(&w, kind, q, sc, asym ? z : NULL, N, K, g);
        if (!ok(st == PARE_OK, "from_int %s g=%lld %s", pare_qb_kind_name(kind), (long long)g, asym ? "asym" : "sym")) {
            diag("%s", pare_errmsg());
            continue;
        }
        pare_qb_dequantize(D, &w);
        int64_t bad = -1;
        for (int64_t i = 0; i < N * K && bad < 0; i++) {
            float s = h2f(pare_f32_to_f16(sc[(i / K) * ng + (i % K) / g]));
            float want = s * (float)(q[i] - (asym ? z[(i / K) * ng + (i % K) / g] : 0));
            if (D[i] != want) bad = i;
        }
        ok(bad < 0 && w.symmetric == !asym, "from_int %s: dequantized = fp16(s)·(q − z) exactly",
           pare_qb_kind_name(kind));
        /* back to integers and in again: the same bytes */
        int32_t *q2 = xalloc((size_t)(N * K) * sizeof(int32_t));
        float *s2 = xalloc((size_t)(N * ng) * sizeof(float));
        int32_t *z2 = xalloc((size_t)(N * ng) * sizeof(int32_t));
        for (int64_t i = 0; i < N * ng; i++) {
            s2[i] = h2f(w.scale[i]);
            z2[i] = w.zero ? w.zero[i] : 0;
        }
        for (int64_t i = 0; i < N * K; i++) {
            float s = s2[(i / K) * ng + (i % K) / g];
            q2[i] = (int32_t)lrintf(D[i] / s) + z2[(i / K) * ng + (i % K) / g];
        }
        pare_qb_weight w2;
        st = pare_qb_from_int(&w2, kind, q2, s2, asym ? z2 : NULL, N, K, g);
        ok(st == PARE_OK && !memcmp(w.qs, w2.qs, (size_t)(N * (kind == PARE_QB_I8G ? K : K / 2))) &&
               !memcmp(w.scale, w2.scale, (size_t)(N * ng) * 2) &&
               (!asym || !memcmp(w.zero, w2.zero, (size_t)(N * ng))),
           "from_int %s: round trip through integers gives the same bytes", pare_qb_kind_name(kind));
        pare_qb_free(&w2);
        free(q2);
        free(s2);
        free(z2);
        pare_qb_free(&w);
    }
    /* quantize → integers → from_int: identical storage */
    float *W = randn(N * K, 1.0f);
    for (int sym = 0; sym <= 1; sym++) {
        pare_qb_weight w, w2;
        pare_qb_quantize(&w, PARE_QB_I4G, W, N, K, 64, sym);
        pare_qb_dequantize(D, &w);
        int64_t ng = K / 64;
        float *s2 = xalloc((size_t)(N * ng) * sizeof(float));
        for (int64_t i = 0; i < N * ng; i++) {
            s2[i] = h2f(w.scale[i]);
            z[i] = w.zero ? w.zero[i] : 0;
        }
        for (int64_t i = 0; i < N * K; i++) {
            float s = s2[(i / K) * ng + (i % K) / 64];
            q[i] = s > 0 ? (int32_t)lrintf(D[i] / s) + (sym ? 0 : z[(i / K) * ng + (i % K) / 64])
                         : (sym ? 0 : z[(i / K) * ng + (i % K) / 64]);
        }
        pare_status st = pare_qb_from_int(&w2, PARE_QB_I4G, q, s2, sym ? NULL : z, N, K, 64);
        ok(st == PARE_OK && !memcmp(w.qs, w2.qs, (size_t)(N * K / 2)) &&
               !memcmp(w.scale, w2.scale, (size_t)(N * ng) * 2),
           "int4_group %s: quantize → integers → from_int gives the same bytes", sym ? "sym" : "asym");
        pare_qb_free(&w);
        pare_qb_free(&w2);
        free(s2);
    }
    free(W);
    /* errors */
    pare_qb_weight w;
    for (int64_t i = 0; i < N * K; i++) q[i] = 0;
    q[3 * K + 5] = 8;
    ok(pare_qb_from_int(&w, PARE_QB_I4G, q, sc, NULL, N, K, 32) == PARE_EINVAL && errmsg_has("q[3][5]=8"),
       "from_int int4 symmetric: 8 out of range, named (%s)", pare_errmsg());
    q[3 * K + 5] = -128;
    ok(pare_qb_from_int(&w, PARE_QB_I8G, q, sc, NULL, N, K, 32) == PARE_EINVAL && errmsg_has("[-127, 127]"),
       "from_int int8: -128 out of range (%s)", pare_errmsg());
    q[3 * K + 5] = 0;
    ok(pare_qb_from_int(&w, PARE_QB_Q4_0, q, sc, NULL, N, K, 32) == PARE_EINVAL, "from_int rejects Q kinds");
    ok(pare_qb_from_int(&w, PARE_QB_I8G, q, sc, z, N, K, 32) == PARE_EINVAL && errmsg_has("zero"),
       "from_int int8 with zero points rejected");
    ok(pare_qb_from_int(&w, PARE_QB_I4G, q, sc, NULL, N, K, 100) != PARE_OK && errmsg_has("group"),
       "from_int: bad group named");
    float keep = sc[7];
    sc[7] = 1e6f;
    ok(pare_qb_from_int(&w, PARE_QB_I4G, q, sc, NULL, N, K, 32) == PARE_ENUMERIC && errmsg_has("fp16"),
       "from_int: scale beyond fp16 (%s)", pare_errmsg());
    sc[7] = keep;
    z[2] = 300;
    ok(pare_qb_from_int(&w, PARE_QB_I4G, q, sc, z, N, K, 32) == PARE_EINVAL && errmsg_has("zero[0][2]=300"),
       "from_int: zero point out of range (%s)", pare_errmsg());
    free(q);
    free(sc);
    free(z);
    free(D);
}

/* ---- the Linear ---- */

static const char *const ISAS[] = {"avx512", "avx2", "scalar"};

/* e[k] >= |x[k] − x̂[k]| for one token, per the activation quantization of w's kind; qterm (Q4_1): the bound
 * on Σ_b |s_b − Σ x̂| summed over the blocks, to be multiplied by the row's largest |m|. */
static void act_err_bound(double *e, double *qterm, const float *x, const pare_qb_weight *w)
{
    const int64_t K = w->K;
    *qterm = 0;
    if (w->kind == PARE_QB_I8G) {
        float amax = 0;
        for (int64_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(x[k]));
        for (int64_t k = 0; k < K; k++) e[k] = 0.5 * (amax / 127.0) * (1 + 1e-6) + 2.4e-7 * fabs(x[k]);
        return;
    }
    for (int64_t b = 0; b < K / 32; b++) {
        float amax = 0;
        double sabs = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j])), sabs += fabs(x[b * 32 + j]);
        double d = amax / 127.0f, d16 = h2f(pare_f32_to_f16((float)d)), dd = fabs(d - d16);
        /* x̂ = d16·q, q = roundf(x/d): |x − d·q| <= d/2 (+ rounding of x·(1/d)), |d·q − d16·q| <= 127·|d − d16| */
        for (int j = 0; j < 32; j++) e[b * 32 + j] = 0.5 * d * (1 + 1e-6) + 127 * dd + 2.4e-7 * fabs(x[b * 32 + j]);
        if (w->kind == PARE_QB_Q4_1) {
            /* the reference uses s = fp16(d·Σq) for Σ x̂ = d16·Σq: |s − d16·Σq| <= |Σq|·(2^-11·d + |d − d16|) + 2^-25,
             * |Σq| <= Σ|x|/d + 16 (and <= 32·127); the m term of the dequantized weight is Ŵ − d_w·u */
            double sq = d > 0 ? fmin(sabs / d + 16.5, 32 * 127.0) : 0;
            *qterm += sq * (d / 2048.0 + dd) + 3e-8;
        }
    }
}

typedef struct lin_case {
    pare_qb_kind kind;
    int64_t N, K, g;
    int sym;
} lin_case;

static double g_worst_ratio[PARE_QB_COUNT];

/* One weight: every M, bias or not, against the reference on every ISA and thread count; the reference
 * against the dequantized weight in double. */
static void test_linear_case(lin_case c)
{
    const int64_t N = c.N, K = c.K;
    static const int64_t Ms[] = {1, 3, 17, 128};
    float *W = randn(N * K, 0.3f), *bias = randn(N, 1.0f), *Wd = xalloc((size_t)(N * K) * sizeof(float));
    pare_qb_weight w;
    if (!ok(pare_qb_quantize(&w, c.kind, W, N, K, c.g, c.sym) == PARE_OK, "quantize %s N=%lld K=%lld g=%lld",
            pare_qb_kind_name(c.kind), (long long)N, (long long)K, (long long)c.g)) {
        diag("%s", pare_errmsg());
        return;
    }
    pare_qb_dequantize(Wd, &w);
    int fast_ok[3][2] = {{1, 1}, {1, 1}, {1, 1}}, isa_ok[3] = {0, 0, 0}, status_ok = 1, ref_ok = 1;
    double worst_fast = 0, worst_ref = 0;
    char impl[3][32] = {"", "", ""};
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
        const int64_t M = Ms[mi];
        float *x = randn(M * K, 1.0f);
        if (M == 17) /* one token with an outlier, one all zeros */
            x[2 * K + 5] = 40.0f, memset(x + 3 * K, 0, (size_t)K * sizeof(float));
        const float *b = (mi % 2) ? bias : NULL;
        float *yr = xalloc((size_t)(M * N) * sizeof(float)), *y = xalloc((size_t)(M * N) * sizeof(float));
        double *mag = xalloc((size_t)(M * N) * sizeof(double)), *e = xalloc((size_t)K * sizeof(double));
        pare_linear_qb_ref(yr, x, &w, b, M);
        /* reference vs the dequantized weight in double */
        for (int64_t m = 0; m < M; m++) {
            double qterm = 0;
            if (c.kind != PARE_QB_I4G) act_err_bound(e, &qterm, x + m * K, &w);
            for (int64_t n = 0; n < N; n++) {
                double s = b ? b[n] : 0, sa = b ? fabs(b[n]) : 0, eb = 0;
                for (int64_t k = 0; k < K; k++) {
                    s += (double)x[m * K + k] * Wd[n * K + k];
                    sa += fabs((double)x[m * K + k] * Wd[n * K + k]);
                    if (c.kind != PARE_QB_I4G) eb += fabs(Wd[n * K + k]) * e[k];
                }
                if (c.kind == PARE_QB_Q4_1) { /* |m_w|·(s-term) per block, bounded with the row's largest |m| */
                    double mmax = 0;
                    for (int64_t bb = 0; bb < K / 32; bb++) mmax = fmax(mmax, fabs(h2f(w.min[n * (K / 32) + bb])));
                    eb += mmax * qterm;
                }
                double terms = c.kind == PARE_QB_I4G ? (double)K : (double)(K / 32);
                sa += eb; /* x̂ may exceed x by e */
                mag[m * N + n] = sa;
                double tol = eb + (terms + 16) * ldexp(1, -23) * sa + 1e-30;
                double r = fabs((double)yr[m * N + n] - s) / tol;
                if (!(r <= 1.0)) ref_ok = 0;
                if (r > worst_ref || isnan(r)) worst_ref = isnan(r) ? INFINITY : r;
            }
        }
        size_t wsb = pare_qb_workspace(&w, M);
        void *ws = wsb ? xalloc(wsb) : NULL;
        for (int ii = 0; ii < 3; ii++) {
            if (pare_qb_set_isa(ISAS[ii]) != PARE_OK) continue;
            isa_ok[ii] = 1;
            snprintf(impl[ii], sizeof impl[ii], "%s", pare_qb_impl(&w));
            for (int th = 1; th <= 2; th++) {
                pare_set_num_threads(th);
                for (int64_t i = 0; i < M * N; i++) y[i] = NAN;
                if (pare_linear_qb(y, x, &w, b, M, ws) != PARE_OK) {
                    status_ok = 0;
                    diag("%s: %s", ISAS[ii], pare_errmsg());
                    continue;
                }
                double terms = c.kind == PARE_QB_I4G ? (double)K : (double)(K / 32);
                for (int64_t i = 0; i < M * N; i++) {
                    double tol = (terms + 16) * ldexp(1, -23) * mag[i] + 1e-30;
                    double r = fabs((double)y[i] - yr[i]) / tol;
                    if (!(r <= 1.0)) {
                        if (fast_ok[ii][th - 1])
                            diag("%s M=%lld threads=%d [%lld,%lld]: got %.9g want %.9g (tol %.3g)", ISAS[ii],
                                 (long long)M, th, (long long)(i / N), (long long)(i % N), y[i], yr[i], tol);
                        fast_ok[ii][th - 1] = 0;
                    }
                    if (r > worst_fast || isnan(r)) worst_fast = isnan(r) ? INFINITY : r;
                }
            }
        }
        pare_qb_set_isa("auto");
        pare_set_num_threads(2);
        free(ws);
        free(x);
        free(y);
        free(yr);
        free(mag);
        free(e);
    }
    char name[96];
    snprintf(name, sizeof name, "%s N=%lld K=%lld g=%lld %s", pare_qb_kind_name(c.kind), (long long)N, (long long)K,
             (long long)w.group, w.symmetric ? "sym" : "asym");
    ok(status_ok, "%s: pare_linear_qb returns OK everywhere", name);
    for (int ii = 0; ii < 3; ii++)
        if (isa_ok[ii])
            ok(fast_ok[ii][0] && fast_ok[ii][1], "%s: %s (%s) = reference, M 1/3/17/128, 1 and 2 threads", name,
               ISAS[ii], impl[ii]);
    ok(ref_ok, "%s: reference = dequantized-weight Linear within %s (worst %.3g of the bound)", name,
       c.kind == PARE_QB_I4G ? "float rounding" : "the activation quantization bound", worst_ref);
    if (worst_fast > g_worst_ratio[c.kind]) g_worst_ratio[c.kind] = worst_fast;
    pare_qb_free(&w);
    free(W);
    free(bias);
    free(Wd);
}

static void test_linear(void)
{
    const lin_case cases[] = {
        {PARE_QB_I4G, 40, 256, 32, 1},  {PARE_QB_I4G, 40, 256, 64, 0},  {PARE_QB_I4G, 33, 384, 128, 1},
        {PARE_QB_I4G, 70, 128, 128, 0}, {PARE_QB_I4G, 5, 96, 32, 0},    {PARE_QB_I4G, 21, 352, 32, 0},
        {PARE_QB_I4G, 17, 384, 96, 1},  {PARE_QB_I4G, 9, 2304, 256, 1}, {PARE_QB_I8G, 40, 256, 32, 1},
        {PARE_QB_I8G, 33, 384, 128, 1}, {PARE_QB_I8G, 70, 192, 64, 1},  {PARE_QB_I8G, 9, 96, 96, 1},
        {PARE_QB_Q8_0, 40, 256, 0, 1},  {PARE_QB_Q8_0, 70, 96, 0, 1},   {PARE_QB_Q8_0, 6, 544, 0, 1},
        {PARE_QB_Q4_0, 40, 256, 0, 1},  {PARE_QB_Q4_0, 70, 96, 0, 1},   {PARE_QB_Q4_0, 6, 544, 0, 1},
        {PARE_QB_Q4_1, 40, 256, 0, 1},  {PARE_QB_Q4_1, 70, 96, 0, 1},   {PARE_QB_Q4_1, 6, 544, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_linear_case(cases[i]);
    for (int k = 0; k <= PARE_QB_Q4_1; k++)
        diag("%s: worst |fast − ref| = %.3g of the reordering bound", pare_qb_kind_name((pare_qb_kind)k),
             g_worst_ratio[k]);
}

/* Ties: tokens whose x·(1/d) is exactly n + ½ must round the same way (roundf / rint) on every path. */
static void test_ties(void)
{
    const int64_t N = 8, K = 128, M = 3;
    float *W = randn(N * K, 1.0f), *x = xalloc((size_t)(M * K) * sizeof(float));
    for (int64_t i = 0; i < M * K; i++) {
        int64_t j = i % 32;
        x[i] = j == 0 ? 127.0f : (float)((j % 2) ? -1 : 1) * ((float)((j * 7) % 126) + 0.5f); /* d = 1 per block */
    }
    for (int kind = PARE_QB_I8G; kind <= PARE_QB_Q4_1; kind++) {
        pare_qb_weight w;
        pare_qb_quantize(&w, (pare_qb_kind)kind, W, N, K, 32, 1);
        float yr[M * N], y[M * N];
        pare_linear_qb_ref(yr, x, &w, NULL, M);
        void *ws = xalloc(pare_qb_workspace(&w, M));
        for (int ii = 0; ii < 3; ii++) {
            if (pare_qb_set_isa(ISAS[ii]) != PARE_OK) continue;
            pare_linear_qb(y, x, &w, NULL, M, ws);
            int same = 1;
            for (int64_t i = 0; i < M * N; i++) same &= fabsf(y[i] - yr[i]) <= 1e-4f * (1 + fabsf(yr[i]));
            ok(same, "%s %s: ties in the activations round as in the reference", pare_qb_kind_name(w.kind), ISAS[ii]);
        }
        pare_qb_set_isa("auto");
        free(ws);
        pare_qb_free(&w);
    }
    free(W);
    free(x);
}

static void test_edges(void)
{
    const int64_t N = 12, K = 64, M = 5;
    float *W = xalloc((size_t)(N * K) * sizeof(float)), *x = randn(M * K, 1.0f), *bias = randn(N, 1.0f);
    float y[M * N];
    for (int kind = 0; kind <= PARE_QB_Q4_1; kind++) {
        pare_qb_weight w;
        pare_qb_quantize(&w, (pare_qb_kind)kind, W, N, K, 32, 0 + (kind != PARE_QB_I4G));
        void *ws = xalloc(pare_qb_workspace(&w, M));
        int good = pare_linear_qb(y, x, &w, bias, M, ws) == PARE_OK;
        for (int64_t i = 0; i < M * N; i++) good &= y[i] == bias[i % N];
        ok(good, "%s: zero weights give exactly the bias", pare_qb_kind_name(w.kind));
        free(ws);
        pare_qb_free(&w);
    }
    float *W2 = randn(N * K, 1.0f);
    for (int kind = 0; kind <= PARE_QB_Q4_1; kind++) {
        pare_qb_weight w;
        pare_qb_quantize(&w, (pare_qb_kind)kind, W2, N, K, 32, 1);
        void *ws = xalloc(pare_qb_workspace(&w, M) + 64);
        float *xz = xalloc((size_t)(M * K) * sizeof(float));
        int good = pare_linear_qb(y, xz, &w, bias, M, ws) == PARE_OK;
        for (int64_t i = 0; i < M * N; i++) good &= y[i] == bias[i % N];
        ok(good, "%s: zero tokens give exactly the bias", pare_qb_kind_name(w.kind));
        if (kind != PARE_QB_I4G) {
            float keep = x[3 * K + 9];
            x[3 * K + 9] = NAN;
            ok(pare_linear_qb(y, x, &w, bias, M, ws) == PARE_ENUMERIC && errmsg_has("row 3") && errmsg_has("column 9"),
               "%s: NaN in x reported with its row (%s)", pare_qb_kind_name(w.kind), pare_errmsg());
            float yr[M * N];
            pare_linear_qb_ref(yr, x, &w, bias, M);
            ok(isnan(yr[3 * N]) && !isnan(yr[2 * N]), "%s: the reference gives NaN for that row only",
               pare_qb_kind_name(w.kind));
            x[3 * K + 9] = keep;
            if (kind != PARE_QB_I8G) {
                x[K + 4] = 1e8f;
                ok(pare_linear_qb(y, x, &w, bias, M, ws) == PARE_ENUMERIC && errmsg_has("row 1"),
                   "%s: activations beyond the fp16 scales reported (%s)", pare_qb_kind_name(w.kind), pare_errmsg());
                x[K + 4] = keep;
            }
            ok(pare_linear_qb(y, x, &w, bias, M, NULL) == PARE_EINVAL && errmsg_has("workspace"),
               "%s: NULL workspace rejected", pare_qb_kind_name(w.kind));
            ok(pare_linear_qb(y, x, &w, bias, M, (char *)ws + 4) == PARE_EINVAL, "%s: misaligned workspace rejected",
               pare_qb_kind_name(w.kind));
        } else {
            ok(pare_qb_workspace(&w, 1) == 0 && pare_linear_qb(y, x, &w, NULL, 1, NULL) == PARE_OK,
               "int4_group: M=1 needs no workspace");
        }
        ok(pare_linear_qb(y, x, &w, bias, 0, NULL) == PARE_OK && pare_linear_qb(y, x, &w, bias, -1, ws) == PARE_EINVAL,
           "%s: M=0 is a no-op, M<0 rejected", pare_qb_kind_name(w.kind));
        free(xz);
        free(ws);
        pare_qb_free(&w);
    }
    /* Q4_1 block sums beyond fp16 (llama.cpp's Q8_1 keeps s = d·Σq in fp16) */
    pare_qb_weight w;
    pare_qb_quantize(&w, PARE_QB_Q4_1, W2, N, K, 0, 0);
    for (int64_t k = 0; k < 32; k++) x[k] = 3000.0f;
    void *ws = xalloc(pare_qb_workspace(&w, M));
    ok(pare_linear_qb(y, x, &w, NULL, M, ws) == PARE_ENUMERIC && errmsg_has("row 0") && errmsg_has("block sums"),
       "q4_1: a block sum beyond fp16 is reported (%s)", pare_errmsg());
    free(ws);
    pare_qb_free(&w);
    pare_qb_weight none = {0};
    ok(pare_linear_qb(y, x, &none, NULL, 1, NULL) == PARE_EINVAL && !strcmp(pare_qb_impl(&none), "none"),
       "unquantized weight rejected");
    ok(pare_qb_set_isa("sse9") == PARE_EINVAL && errmsg_has("avx2"), "unknown isa lists the valid ones");
    free(W);
    free(W2);
    free(x);
    free(bias);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 20240611);
    test_names_and_errors();
    test_sizes();
    test_quant_error();
    test_ggml_bytes();
    test_from_int();
    test_linear();
    test_ties();
    test_edges();
    return tap_done();
}
