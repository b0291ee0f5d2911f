/* test_gemm_i8_vnni.c — pare's AVX512-VNNI int8 GEMM (src/kernels/gemm_i8_vnni.c, issue 18):
 *   - the int32 sums against int64 triple loops, bit for bit: ragged M (1..17, 129), N not a multiple of the
 *     48-column panel (1, 47, 49, 100, 2304), K not a multiple of 4 (1, 3, 5, 767), K across the 4096-byte K
 *     block (4101: partial sums kept in the output between blocks), both loop orders (M·K below and above
 *     256 KiB), 50 panels in several column chunks,
 *     weights holding −128, u8 bytes of 255,
 *     and the worst case at the bound: every byte 255, every weight −128, K = U8S8_MAX_K = 65793;
 *     1 and 2 threads give the same bits;
 *   - the Linear (pare_linear_i8_dynamic, pare_linear_i8_act in every mode, with a fused GELU/ReLU) on pare's
 *     kernel = on oneDNN's = the reference, bit for bit, for weights packed for each (pare_i8_kernel_set);
 *   - the kernel choice (names, parsing, what a weight runs), huge-page panels (2 MiB-aligned when >= 1 MiB).
 * Skipped (one passing line) on CPUs without AVX512-VNNI.
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/fuse_ops.h"
#include "kernels/gemm.h"
#include "kernels/gemm_i8.h"
#include "kernels/gemm_i8_internal.h"
#include "kernels/gemm_i8_vnni.h"
#include "tap.h"
#include "test_rand.h"

/* C(M,N) = Σ_k a[m,k]·q[n,k] in int64, as int32 (the test's bounds keep it in range). */
static void ref_sums(int32_t *C, const uint8_t *a, const int8_t *q, int64_t M, int64_t N, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            int64_t s = 0;
            for (int64_t k = 0; k < K; k++) s += (int64_t)a[m * K + k] * q[n * K + k];
            C[m * N + n] = (int32_t)s;
        }
}

static void fill_bytes(void *p, int64_t n, int lo, int hi)
{
    uint8_t *b = p;
    for (int64_t i = 0; i < n; i++) b[i] = (uint8_t)(lo + (int)(pare_rng_u64(&g_rng) % (uint64_t)(hi - lo + 1)));
}

static void sums_case(int64_t M, int64_t N, int64_t K, int extreme)
{
    uint8_t *a = xalloc((size_t)(M * K));
    int8_t *q = xalloc((size_t)(N * K));
    if (extreme) {
        memset(a, 255, (size_t)(M * K));
        memset(q, 0x80, (size_t)(N * K)); /* −128 */
    } else {
        fill_bytes(a, M * K, 0, 255);
        fill_bytes(q, N * K, 0, 255); /* every int8 value, −128 included */
    }
    int32_t *want = xalloc((size_t)(M * N) * 4), *got = xalloc((size_t)(M * N) * 4), *got2 = xalloc((size_t)(M * N) * 4);
    ref_sums(want, a, q, M, N, K);
    pare_i8_panels *p = pare_i8_vnni_pack_(q, N, K);
    if (ok(p != NULL, "panels for M=%lld N=%lld K=%lld", (long long)M, (long long)N, (long long)K)) {
        omp_set_num_threads(1);
        pare_i8_vnni_gemm_(got, a, K, M, p, NULL);
        omp_set_num_threads(2);
        pare_i8_vnni_gemm_(got2, a, K, M, p, NULL);
        int64_t bad = -1;
        for (int64_t i = 0; i < M * N && bad < 0; i++)
            if (got[i] != want[i]) bad = i;
        ok(bad < 0, "int32 sums == int64 reference, M=%lld N=%lld K=%lld%s%s", (long long)M, (long long)N, (long long)K,
           extreme ? " (all bytes 255, all weights -128)" : "", bad < 0 ? "" : " — MISMATCH");
        if (bad >= 0) diag("first mismatch at %lld: got %d want %d", (long long)bad, got[bad], want[bad]);
        ok(!memcmp(got, got2, (size_t)(M * N) * 4), "  same bits on 1 and 2 threads");
    }
    pare_i8_vnni_free_(p);
    free(a), free(q), free(want), free(got), free(got2);
}

/* Strided A (lda > K): the kernel reads rows in place. */
static void sums_strided(void)
{
    const int64_t M = 11, N = 50, K = 37, lda = 64;
    uint8_t *a = xalloc((size_t)(M * lda)), *ac = xalloc((size_t)(M * K));
    int8_t *q = xalloc((size_t)(N * K));
    fill_bytes(a, M * lda, 0, 255), fill_bytes(q, N * K, 0, 255);
    for (int64_t m = 0; m < M; m++) memcpy(ac + m * K, a + m * lda, (size_t)K);
    int32_t *want = xalloc((size_t)(M * N) * 4), *got = xalloc((size_t)(M * N) * 4);
    ref_sums(want, ac, q, M, N, K);
    pare_i8_panels *p = pare_i8_vnni_pack_(q, N, K);
    pare_i8_vnni_gemm_(got, a, lda, M, p, NULL);
    ok(!memcmp(got, want, (size_t)(M * N) * 4), "row stride lda=%lld > K=%lld: same sums", (long long)lda, (long long)K);
    pare_i8_vnni_free_(p);
    free(a), free(ac), free(q), free(want), free(got);
}

/* The Linear on weights packed for pare's kernel and for oneDNN's: same bits, and = the reference. */
static void linear_case(int64_t M, int64_t N, int64_t K)
{
    float *x = randn(M * K, 1.0f), *W = randn(N * K, 0.05f), *bias = randn(N, 0.1f);
    float *yp = xalloc((size_t)(M * N) * 4), *yo = xalloc((size_t)(M * N) * 4), *yr = xalloc((size_t)(M * N) * 4);
    pare_i8_weight wp, wo;
    pare_i8_kernel was = pare_i8_kernel_set(PARE_I8_KERNEL_PARE);
    pare_status s1 = pare_i8_weight_quantize(&wp, W, N, K);
    pare_i8_kernel_set(PARE_I8_KERNEL_ONEDNN);
    pare_status s2 = pare_i8_weight_quantize(&wo, W, N, K);
    pare_i8_kernel_set(was);
    if (!ok(s1 == PARE_OK && s2 == PARE_OK, "Linear M=%lld N=%lld K=%lld: weights for both kernels", (long long)M,
            (long long)N, (long long)K))
        return;
    ok(!strcmp(pare_i8_weight_impl(&wp), "pare:vnni-8x48") && strcmp(pare_i8_weight_impl(&wo), "pare:vnni-8x48"),
       "  impl: %s vs %s", pare_i8_weight_impl(&wp), pare_i8_weight_impl(&wo));
    void *ws = xalloc(pare_linear_i8_act_workspace(M, N, K, NULL) + pare_linear_i8_workspace(M, N, K));
    for (int b = 0; b < 2; b++) {
        const float *bb = b ? bias : NULL;
        pare_linear_i8_dynamic_ref(yr, x, &wp, bb, M);
        pare_status a = pare_linear_i8_dynamic(yp, x, &wp, bb, M, ws), c = pare_linear_i8_dynamic(yo, x, &wo, bb, M, ws);
        ok(a == PARE_OK && c == PARE_OK && !memcmp(yp, yr, (size_t)(M * N) * 4) && !memcmp(yo, yr, (size_t)(M * N) * 4),
           "  dynamic%s: pare kernel = oneDNN = reference, bit for bit", b ? " + bias" : "");
    }
    /* every activation mode, symmetric and asymmetric, with each fused epilogue */
    for (int mode = 0; mode < PARE_ACT_MODE_COUNT; mode++)
        for (int sym = 0; sym < 2; sym++) {
            pare_i8_act act = {.mode = (pare_act_mode)mode, .symmetric = sym, .scale = 0.02f, .zero = sym ? 0 : 100};
            int same = 1;
            for (int e = 0; e < PARE_EPILOGUE_COUNT; e++) {
                pare_linear_i8_act_ref(yr, x, &wp, NULL, bias, M, &act, NULL);
                pare_epilogue_forward(yr, yr, e, M * N);
                pare_status a = pare_linear_i8_act_epilogue(yp, x, &wp, NULL, bias, M, &act, ws, NULL, e);
                pare_status c = pare_linear_i8_act_epilogue(yo, x, &wo, NULL, bias, M, &act, ws, NULL, e);
                same &= a == PARE_OK && c == PARE_OK && !memcmp(yp, yr, (size_t)(M * N) * 4) &&
                        !memcmp(yo, yr, (size_t)(M * N) * 4);
            }
            ok(same, "  %s %s, every epilogue: pare kernel = oneDNN = reference then activation", pare_act_mode_name(mode),
               sym ? "symmetric" : "asymmetric");
        }
    /* y may be x (N == K): the kernel writes y only after x is quantized */
    if (N == K) {
        float *xy = xalloc((size_t)(M * K) * 4);
        memcpy(xy, x, (size_t)(M * K) * 4);
        pare_linear_i8_dynamic_ref(yr, x, &wp, bias, M);
        ok(pare_linear_i8_dynamic(xy, xy, &wp, bias, M, ws) == PARE_OK && !memcmp(xy, yr, (size_t)(M * N) * 4),
           "  y == x in place: same bits");
        free(xy);
    }
    pare_i8_weight_free(&wp), pare_i8_weight_free(&wo);
    free(ws), free(x), free(W), free(bias), free(yp), free(yo), free(yr);
}

static void kernel_choice(void)
{
    pare_i8_kernel k = PARE_I8_KERNEL_COUNT;
    ok(pare_i8_kernel_parse("onednn", &k) == PARE_OK && k == PARE_I8_KERNEL_ONEDNN, "parse onednn");
    ok(pare_i8_kernel_parse("pare", &k) == PARE_OK && k == PARE_I8_KERNEL_PARE, "parse pare");
    ok(pare_i8_kernel_parse("auto", &k) == PARE_OK && k == PARE_I8_KERNEL_AUTO, "parse auto");
    ok(pare_i8_kernel_parse("mkl", &k) == PARE_EINVAL && strstr(pare_errmsg(), "auto, pare, onednn"),
       "unknown kernel refused, naming the valid ones: %s", pare_errmsg());
    ok(!strcmp(pare_i8_kernel_name(PARE_I8_KERNEL_ONEDNN), "onednn") && !strcmp(pare_i8_kernel_name(99), "?"), "names");
    pare_i8_kernel was = pare_i8_kernel_set(PARE_I8_KERNEL_ONEDNN);
    ok(was == PARE_I8_KERNEL_AUTO, "default: auto");
    ok(pare_i8_kernel_set((pare_i8_kernel)42) == PARE_I8_KERNEL_ONEDNN, "out of range: unchanged, current returned");
    pare_i8_kernel_set(was);

    /* AUTO on this (AVX512-VNNI) CPU: pare's kernel; the packed copy's size */
    float *W = randn(96 * 200, 0.05f);
    pare_i8_weight w;
    if (ok(pare_i8_weight_quantize(&w, W, 96, 200) == PARE_OK, "auto weights")) {
        ok(!strcmp(pare_i8_weight_impl(&w), "pare:vnni-8x48"), "auto runs pare:vnni-8x48 (%s)", pare_i8_weight_impl(&w));
        ok(pare_i8_weight_packed_bytes(&w) == 2 * 50 * 192, "packed bytes: 2 panels × 50 groups × 192 = %zu",
           pare_i8_weight_packed_bytes(&w));
        pare_i8_weight_free(&w);
        pare_i8_weight_free(&w);
        ok(w.packed == NULL, "free twice is safe");
    }
    free(W);

    /* huge-page panels: >= 1 MiB → 2 MiB-aligned; smaller, or switched off → plain */
    int8_t *q = xalloc((size_t)768 * 3072);
    pare_i8_panels *p = pare_i8_vnni_pack_(q, 3072, 768), *s = pare_i8_vnni_pack_(q, 96, 768);
    int prev = pare_i8_vnni_hugepages_(0);
    pare_i8_panels *o = pare_i8_vnni_pack_(q, 3072, 768);
    pare_i8_vnni_hugepages_(prev);
    ok(p && p->huge && (uintptr_t)p->data % ((uintptr_t)2 << 20) == 0 && p->bytes == (size_t)64 * 192 * 192,
       "2.25 MiB of panels: 2 MiB-aligned (MADV_HUGEPAGE), size kept (%zu bytes)", p ? p->bytes : 0);
    ok(s && !s->huge && o && !o->huge && (uintptr_t)o->data % 64 == 0, "72 KiB, or huge pages off: 64-byte aligned");
    ok(pare_i8_vnni_pack_(q, 3, U8S8_MAX_K + 1) == NULL, "K > U8S8_MAX_K: no panels (the s8s8 path)");
    pare_i8_vnni_free_(p), pare_i8_vnni_free_(s), pare_i8_vnni_free_(o);
    pare_i8_vnni_free_(NULL);
    free(q);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 18);
    if (!pare_i8_vnni_available_()) {
        ok(pare_i8_vnni_pack_((const int8_t *)"\1\2\3\4", 1, 4) == NULL, "no AVX512-VNNI: no panels, oneDNN/pare's madd paths");
        return tap_done();
    }
    static const int64_t Ms[] = {1, 2, 7, 8, 9, 17, 129};
    for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++) sums_case(Ms[i], 100, 67, 0);
    static const int64_t NKs[][2] = {{1, 1}, {47, 3}, {48, 5}, {49, 64}, {96, 767}, {2304, 96}, {50, 4101}, {130, 8192}};
    for (size_t i = 0; i < sizeof NKs / sizeof NKs[0]; i++) sums_case(13, NKs[i][0], NKs[i][1], 0);
    /* M·K <= 256 KiB runs panel by panel (K blocks of 768); above, column chunks × row blocks (K blocks of 4096) */
    sums_case(41, 2400, 768, 0);  /* panel by panel, 50 panels */
    sums_case(345, 2400, 768, 0); /* 50 panels in 4 column chunks of the L2 share; prefetches of the next row block */
    sums_case(70, 60, 4101, 0);   /* chunk order across two K blocks (partial sums in the output) */
    sums_case(3, 49, U8S8_MAX_K, 1);
    sums_case(9, 17, U8S8_MAX_K, 0);
    sums_strided();
    linear_case(1, 768, 768);
    linear_case(37, 100, 67);
    linear_case(128, 96, 200);
    linear_case(20, 50, 4101);
    linear_case(27, 2400, 768);
    linear_case(345, 100, 768);
    linear_case(70, 60, 4101);
    kernel_choice();
    return tap_done();
}
