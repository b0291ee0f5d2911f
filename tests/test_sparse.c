/* test_sparse.c — the sparse Linear kernels (kernels/sparse.h): CSR f32, CSR int8, N:M (2:4, 4:8), block
 * (4×1, 16×16).
 *
 * Checks:
 *   - every layout, fast kernel and reference, against an independent dense Linear in double precision on
 *     the masked weights (to float rounding), at odd shapes (N, K not multiples of the blocks or of 16), M in
 *     {1, 2, 3, 5, 7, 8, 17, 64, 130} (the per-token and the tiled paths, partial tiles; N:M's token blocks
 *     of 8/4/2/1), with and without bias, at 1 and 2 threads (N up to 500: one to three work chunks, partial
 *     chunks; N:M with N not a multiple of 16 and m = 2, 4, 8, 16);
 *   - CSR int8 bit-identical to pare's dense int8 reference (pare_linear_i8_dynamic_ref) on the same masked
 *     weights: the same per-channel grid, per-token activations and float epilogue;
 *   - the layouts hold the weights exactly (to_dense gives the masked W back) and their byte counts are the
 *     documented formulas, indices included;
 *   - pattern statistics on crafted matrices; spec text round trips;
 *   - errors: a weight that is not 2:4 (naming the row and columns), K not a multiple of m, K > 65536, NaN in
 *     W, unknown spec text and blocks, NaN in x for int8 (naming the row), NULL arguments.
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
#include "kernels/gemm.h"
#include "kernels/sparse.h"
#include "tap.h"

static pare_rng rng;

static float *randn(int64_t n)
{
    float *v = malloc(sizeof *v * (size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = (float)pare_rng_normal(&rng);
    return v;
}

/* Zero W to fit spec with about `sparsity` zeros: unstructured, n:m (random n kept per group, sometimes fewer),
 * or whole blocks. */
static void apply_pattern(float *W, int64_t N, int64_t K, const pare_sparse_spec *s, double sparsity)
{
    if (s->kind == PARE_SP_NM) {
        for (int64_t r = 0; r < N; r++)
            for (int64_t g = 0; g < K / s->m; g++) {
                int keep[16] = {0}, kept = 0, want = pare_rng_below(&rng, 5) ? s->n : s->n - 1;
                while (kept < want) {
                    int i = (int)pare_rng_below(&rng, (uint64_t)s->m);
                    if (!keep[i]) keep[i] = 1, kept++;
                }
                for (int i = 0; i < s->m; i++)
                    if (!keep[i]) W[r * K + g * s->m + i] = 0;
            }
    } else if (s->kind == PARE_SP_BSR) {
        for (int64_t i = 0; i < (N + s->br - 1) / s->br; i++)
            for (int64_t j = 0; j < (K + s->bc - 1) / s->bc; j++)
                if (pare_rng_uniform(&rng) < sparsity)
                    for (int64_t r = i * s->br; r < i * s->br + s->br && r < N; r++)
                        for (int64_t c = j * s->bc; c < j * s->bc + s->bc && c < K; c++) W[r * K + c] = 0;
    } else {
        for (int64_t i = 0; i < N * K; i++)
            if (pare_rng_uniform(&rng) < sparsity) W[i] = 0;
    }
}

/* y = x·W^T + b in double, rounded once. */
static void dense_ref(float *y, const float *x, const float *W, const float *b, int64_t M, int64_t N, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = b ? b[n] : 0;
            for (int64_t k = 0; k < K; k++) s += (double)x[m * K + k] * W[n * K + k];
            y[m * N + n] = (float)s;
        }
}

static size_t expect_bytes(const pare_sparse_weight *w)
{
    const pare_sparse_spec *s = &w->spec;
    switch (s->kind) {
    case PARE_SP_CSR: return (size_t)w->nonzero * 5 + (size_t)((w->K + 127) / 128 * (w->N + 1)) * 4;
    case PARE_SP_CSR_I8: return (size_t)w->nonzero * 2 + (size_t)((w->K + 127) / 128 * (w->N + 1)) * 4 + (size_t)w->N * 4;
    case PARE_SP_NM: return (size_t)((w->N + 15) / 16 * 16 * w->K / s->m * s->n) * 5; /* channels padded to 16 */
    default: return (size_t)w->nblk * ((size_t)s->br * s->bc * 4 + 2) + (size_t)((w->N + s->br - 1) / s->br + 1) * 4;
    }
}

static void check_layout(const char *spec_text, int64_t N, int64_t K, double sparsity)
{
    pare_sparse_spec s;
    if (!ok(pare_sparse_spec_parse(&s, spec_text) == PARE_OK, "parse %s", spec_text)) return;
    float *W = randn(N * K), *bias = randn(N);
    apply_pattern(W, N, K, &s, sparsity);
    pare_sparse_weight w;
    if (!ok(pare_sparse_from_dense(&w, W, N, K, &s) == PARE_OK, "%s %lldx%lld: from_dense (%s)", spec_text, (long long)N,
            (long long)K, pare_errmsg())) {
        free(W), free(bias);
        return;
    }
    char what[160];
    float *back = malloc(sizeof *back * (size_t)(N * K));
    pare_sparse_to_dense(back, &w);
    if (s.kind != PARE_SP_CSR_I8)
        ok(!memcmp(back, W, sizeof *back * (size_t)(N * K)), "%s %lldx%lld: the layout holds W exactly", spec_text,
           (long long)N, (long long)K);
    int64_t nz = 0;
    for (int64_t i = 0; i < N * K; i++) nz += W[i] != 0;
    ok(w.nonzero == nz && pare_sparse_bytes(&w) == expect_bytes(&w), "%s %lldx%lld: %lld nonzeros, %zu bytes as documented",
       spec_text, (long long)N, (long long)K, (long long)nz, pare_sparse_bytes(&w));

    pare_i8_weight qw = {0};
    if (s.kind == PARE_SP_CSR_I8) pare_i8_weight_quantize(&qw, W, N, K);
    static const int64_t Ms[] = {1, 2, 3, 5, 7, 8, 17, 64, 130};
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
        int64_t M = Ms[mi];
        float *x = randn(M * K), *want = malloc(sizeof(float) * (size_t)(M * N)), *got = malloc(sizeof(float) * (size_t)(M * N)),
              *ref = malloc(sizeof(float) * (size_t)(M * N));
        void *ws = aligned_alloc(64, (pare_sparse_workspace(&w, M) + 63) / 64 * 64 + 64);
        for (int withb = 0; withb < 2; withb++) {
            const float *b = withb ? bias : NULL;
            pare_sparse_linear_ref(ref, x, &w, b, M);
            if (s.kind == PARE_SP_CSR_I8) {
                pare_linear_i8_dynamic_ref(want, x, &qw, b, M);
                snprintf(what, sizeof what, "%s %lldx%lld M=%lld bias=%d: reference == dense int8 reference, bit for bit",
                         spec_text, (long long)N, (long long)K, (long long)M, withb);
                ok(!memcmp(ref, want, sizeof(float) * (size_t)(M * N)), "%s", what);
            } else {
                dense_ref(want, x, W, b, M, N, K);
                snprintf(what, sizeof what, "%s %lldx%lld M=%lld bias=%d: reference vs dense on masked W", spec_text,
                         (long long)N, (long long)K, (long long)M, withb);
                is_close_arr(ref, want, (long)(M * N), 2e-5 * sqrt((double)K), 1e-5, what);
            }
            for (int th = 1; th <= 2; th++)
                for (int isa = 0; isa < 2; isa++) {
                if (pare_sparse_set_isa(isa ? "portable" : "auto") != PARE_OK) continue;
                omp_set_num_threads(th);
                memset(got, 0xff, sizeof(float) * (size_t)(M * N));
                pare_status st = pare_sparse_linear(got, x, &w, b, M, ws);
                snprintf(what, sizeof what, "%s %lldx%lld M=%lld bias=%d %dt: fast kernel (%s) %s", spec_text, (long long)N,
                         (long long)K, (long long)M, withb, th, pare_sparse_impl(),
                         s.kind == PARE_SP_CSR_I8 ? "== dense int8 reference, bit for bit" : "vs dense on masked W");
                if (st != PARE_OK) ok(0, "%s: %s", what, pare_errmsg());
                else if (s.kind == PARE_SP_CSR_I8) ok(!memcmp(got, want, sizeof(float) * (size_t)(M * N)), "%s", what);
                else is_close_arr(got, want, (long)(M * N), 2e-5 * sqrt((double)K), 1e-5, what);
                }
            pare_sparse_set_isa("auto");
        }
        free(ws), free(x), free(want), free(got), free(ref);
    }
    pare_i8_weight_free(&qw);
    pare_sparse_weight_free(&w);
    pare_sparse_weight_free(&w); /* safe twice */
    free(back), free(W), free(bias);
}

static void check_errors(void)
{
    pare_sparse_spec s;
    char buf[32];
    ok(pare_sparse_spec_parse(&s, "nm2:4") == PARE_OK && s.n == 2 && s.m == 4 &&
           !strcmp(pare_sparse_spec_str(&s, buf, sizeof buf), "nm2:4"), "spec nm2:4 round trips");
    ok(pare_sparse_spec_parse(&s, "bsr16x16") == PARE_OK && !strcmp(pare_sparse_spec_str(&s, buf, sizeof buf), "bsr16x16"),
       "spec bsr16x16 round trips");
    ok(pare_sparse_set_isa("sse9") == PARE_EINVAL && strstr(pare_errmsg(), "auto, avx512, portable"), "bad isa refused");
    ok(pare_sparse_spec_parse(&s, "coo") == PARE_EINVAL && strstr(pare_errmsg(), "valid: csr"), "unknown layout: %s", pare_errmsg());
    ok(pare_sparse_spec_parse(&s, "nm3:4") == PARE_EINVAL && strstr(pare_errmsg(), "3:4"), "nm3:4 refused: %s", pare_errmsg());
    ok(pare_sparse_spec_parse(&s, "bsr8x8") == PARE_EINVAL && strstr(pare_errmsg(), "4x1, 16x16"), "bsr8x8 refused: %s",
       pare_errmsg());

    /* a dense row is not 2:4: the message names the row and the columns */
    float W[3 * 8] = {0};
    W[1 * 8 + 4] = 1, W[1 * 8 + 5] = 2, W[1 * 8 + 7] = 3; /* row 1, group 1: 3 nonzeros */
    pare_sparse_weight w;
    pare_sparse_spec_parse(&s, "nm2:4");
    int64_t row = -1, grp = -1;
    int cnt = 0;
    ok(pare_sparse_nm_violations(W, 3, 8, 2, 4, &row, &grp, &cnt) == 1 && row == 1 && grp == 1 && cnt == 3,
       "nm_violations finds row 1 group 1 with 3");
    ok(pare_sparse_from_dense(&w, W, 3, 8, &s) == PARE_EINVAL && strstr(pare_errmsg(), "not 2:4") &&
           strstr(pare_errmsg(), "row 1, columns 4..7 hold 3"), "not 2:4 refused: %s", pare_errmsg());
    ok(pare_sparse_nm_violations(W, 3, 8, 4, 8, NULL, NULL, NULL) == 0, "the same rows fit 4:8");
    ok(pare_sparse_from_dense(&w, W, 2, 12, &(pare_sparse_spec){.kind = PARE_SP_NM, .n = 4, .m = 8}) == PARE_EINVAL &&
           strstr(pare_errmsg(), "multiple of 8"), "K %% m refused: %s", pare_errmsg());
    /* statistics: 24 elements, 3 nonzeros; 4x1 blocks: (3/4 rounded up = 1) × 8 = 8 blocks, one nonzero row-block
     * touched at columns 4, 5, 7 -> 3 of 8 non-zero */
    ok(fabs(pare_sparse_zero_fraction(W, 3, 8) - 21.0 / 24) < 1e-12, "zero fraction 21/24");
    ok(fabs(pare_sparse_block_zero_fraction(W, 3, 8, 4, 1) - 5.0 / 8) < 1e-12, "4x1 block zero fraction 5/8 (N padded)");
    ok(fabs(pare_sparse_block_zero_fraction(W, 3, 8, 16, 16) - 0.0) < 1e-12, "16x16 block zero fraction 0");

    float *big = calloc(65537, sizeof(float));
    ok(pare_sparse_from_dense(&w, big, 1, 65537, &(pare_sparse_spec){.kind = PARE_SP_CSR}) == PARE_EINVAL &&
           strstr(pare_errmsg(), "65536"), "K > 65536 refused: %s", pare_errmsg());
    free(big);
    W[5] = NAN;
    ok(pare_sparse_from_dense(&w, W, 3, 8, &(pare_sparse_spec){.kind = PARE_SP_CSR}) == PARE_ENUMERIC &&
           strstr(pare_errmsg(), "NaN at row 0, column 5"), "NaN in W: %s", pare_errmsg());
    W[5] = 0;
    ok(pare_sparse_from_dense(&w, W, 3, 8, &(pare_sparse_spec){.kind = PARE_SP_CSR_I8}) == PARE_OK, "csr_i8 of a small W");
    float x[2 * 8] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, NAN, 4, 5, 6, 7, 8}, y[2 * 3];
    void *ws = aligned_alloc(64, (pare_sparse_workspace(&w, 2) + 63) / 64 * 64 + 64);
    ok(pare_sparse_linear(y, x, &w, NULL, 2, ws) == PARE_ENUMERIC && strstr(pare_errmsg(), "row 1"),
       "int8: NaN in x names the row: %s", pare_errmsg());
    ok(pare_sparse_linear(NULL, x, &w, NULL, 2, ws) == PARE_EINVAL, "NULL y refused");
    free(ws);
    pare_sparse_weight_free(&w);
    /* an all-zero weight: every output is the bias */
    float Z[4 * 16] = {0}, bz[4] = {1, 2, 3, 4}, xz[16], yz[4];
    for (int i = 0; i < 16; i++) xz[i] = (float)i;
    static const char *const kinds[] = {"csr", "csr_i8", "nm2:4", "bsr4x1", "bsr16x16"};
    for (int i = 0; i < 5; i++) {
        pare_sparse_spec_parse(&s, kinds[i]);
        pare_sparse_from_dense(&w, Z, 4, 16, &s);
        ws = aligned_alloc(64, (pare_sparse_workspace(&w, 1) + 63) / 64 * 64 + 64);
        pare_sparse_linear(yz, xz, &w, bz, 1, ws);
        ok(!memcmp(yz, bz, sizeof bz), "%s: all-zero weights give the bias", kinds[i]);
        free(ws);
        pare_sparse_weight_free(&w);
    }
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&rng, 13);
    check_errors();
    check_layout("csr", 37, 45, 0.8);
    check_layout("csr", 64, 96, 0.9);
    check_layout("csr", 256, 300, 0.5); /* large enough for the threaded paths */
    check_layout("csr_i8", 256, 300, 0.6);
    check_layout("bsr4x1", 256, 300, 0.5);
    check_layout("nm2:4", 256, 304, 0.5);
    check_layout("csr", 20, 600, 0.3); /* fewer output rows than work chunks: empty chunks, threaded */
    check_layout("bsr4x1", 20, 600, 0.3);
    check_layout("csr_i8", 20, 600, 0.3);
    check_layout("csr", 500, 70, 0.9);    /* chunks of 192 channels at 2 threads: 192 + 192 + 116 */
    check_layout("bsr4x1", 450, 40, 0.7); /* block rows in chunks of 48, the last block row partial */
    check_layout("csr_i8", 420, 50, 0.8);
    check_layout("csr_i8", 37, 45, 0.8);
    check_layout("csr_i8", 50, 200, 0.9);
    check_layout("nm2:4", 37, 44, 0.5);
    check_layout("nm2:4", 48, 64, 0.5);
    check_layout("nm4:8", 21, 40, 0.5);
    check_layout("nm4:8", 300, 256, 0.5); /* threaded, N % 16 = 12 */
    check_layout("nm1:2", 19, 30, 0.5);   /* the 2-float broadcast */
    check_layout("nm2:16", 33, 64, 0.5);  /* a whole zmm per group */
    check_layout("nm1:4", 16, 8, 0.5);
    check_layout("bsr4x1", 37, 45, 0.8);
    check_layout("bsr4x1", 64, 96, 0.7);
    check_layout("bsr16x16", 37, 45, 0.5);
    check_layout("bsr16x16", 64, 96, 0.6);
    return tap_done();
}
