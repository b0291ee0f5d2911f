/* test_svd_prune.c — seed 004's pruning by SVD significance (the svd_prune pass): each component's
 * reconstruction error ||A_i − A_{k,i}|| against an independent computation (A_k = A V_k V_kᵀ with V_k the
 * top eigenvectors of AᵀA from GSL's symmetric eigensolver), and the pass removing exactly the components
 * of lowest (or, prune=high_error, highest) error in every layer, neurons and heads, physically. */
#include <gsl/gsl_eigen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "compress/prune/svd_significance.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

enum { C = 32, F = 48, H = 4, D = C / H };

static pare_model *build(void)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, 8, NULL},
        {"d", PARE_KV_NUM, C, NULL},         {"heads", PARE_KV_NUM, H, NULL},  {"layers", PARE_KV_NUM, 2, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},   {"ffn", PARE_KV_NUM, F, NULL},    {"seed", PARE_KV_NUM, 5, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 9) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, 9, 0.3);
    return m;
}

/* err[g] for components (row i in group (i % stride) / rows_per) of A (N, K), by projection on the top-k
 * eigenvectors of AᵀA. */
static void ref_errors(const float *A, int64_t N, int64_t K, int64_t k, int64_t rows_per, int64_t stride, double *err,
                       int64_t groups)
{
    gsl_matrix *G = gsl_matrix_alloc((size_t)K, (size_t)K), *V = gsl_matrix_alloc((size_t)K, (size_t)K);
    for (int64_t a = 0; a < K; a++)
        for (int64_t b = 0; b < K; b++) {
            double s = 0;
            for (int64_t n = 0; n < N; n++) s += (double)A[n * K + a] * A[n * K + b];
            gsl_matrix_set(G, (size_t)a, (size_t)b, s);
        }
    gsl_vector *e = gsl_vector_alloc((size_t)K);
    gsl_eigen_symmv_workspace *w = gsl_eigen_symmv_alloc((size_t)K);
    gsl_eigen_symmv(G, e, V, w);
    gsl_eigen_symmv_sort(e, V, GSL_EIGEN_SORT_VAL_DESC);
    for (int64_t g = 0; g < groups; g++) err[g] = 0;
    for (int64_t i = 0; i < N; i++) {
        double r2 = 0;
        for (int64_t c = 0; c < K; c++) {
            double p = 0; /* (A_i V_k V_kᵀ)[c] */
            for (int64_t j = 0; j < k; j++) {
                double dot = 0;
                for (int64_t t = 0; t < K; t++) dot += (double)A[i * K + t] * gsl_matrix_get(V, (size_t)t, (size_t)j);
                p += dot * gsl_matrix_get(V, (size_t)c, (size_t)j);
            }
            r2 += (A[i * K + c] - p) * (A[i * K + c] - p);
        }
        err[(i % stride) / rows_per] += r2;
    }
    for (int64_t g = 0; g < groups; g++) err[g] = sqrt(err[g]);
    gsl_eigen_symmv_free(w), gsl_vector_free(e), gsl_matrix_free(G), gsl_matrix_free(V);
}

static const pare_param *param(const pare_model *m, const char *name)
{
    int i = pare_model_find_param(m, name);
    return i >= 0 ? &m->params[i] : NULL;
}

/* Which of the original rows of `name` (N0, K) survive in q (exact row matches); returns their count. */
static int64_t kept_rows(const pare_model *m, const pare_model *q, const char *name, char *kept)
{
    const pare_param *a = param(m, name), *b = param(q, name);
    int64_t K = a->shape[1], n = 0;
    memset(kept, 0, (size_t)a->shape[0]);
    for (int64_t j = 0; b && j < b->shape[0]; j++)
        for (int64_t i = 0; i < a->shape[0]; i++)
            if (!kept[i] && !memcmp(a->blob->data + i * K, b->blob->data + j * K, sizeof(float) * (size_t)K)) {
                kept[i] = 1, n++;
                break;
            }
    return n;
}

/* 1 if the components not kept are exactly the `drop` lowest (high: highest) of err. */
static int dropped_are_extremes(const double *err, const char *kept_group, int64_t groups, int64_t drop, int high)
{
    for (int64_t g = 0; g < groups; g++) {
        int64_t below = 0; /* components strictly more prunable than g */
        for (int64_t h = 0; h < groups; h++) below += high ? err[h] > err[g] : err[h] < err[g];
        if (!kept_group[g] != (below < drop)) return 0;
    }
    return 1;
}

int main(void)
{
    tap_plan_lazy();
    pare_model *m = build();
    if (!ok(m != NULL, "a 2-layer encoder (d=32, 4 heads, ffn=48)")) return tap_done();
    const pare_param *up = param(m, "enc.0.ffn.up.weight"), *qkv = param(m, "enc.1.attn.qkv.weight");
    double got[F], want[F], worst = 0;
    pare_status st = pare_svd_component_errors(up->blob->data, F, C, 8, 1, F, F, got);
    ref_errors(up->blob->data, F, C, 8, 1, F, want, F);
    for (int i = 0; st == PARE_OK && i < F; i++) worst = fmax(worst, fabs(got[i] - want[i]) / want[i]);
    ok(st == PARE_OK && worst < 1e-9, "neuron errors ||A_i - A_k,i|| (k=8) equal the projection on WᵀW's top eigenvectors "
       "(rel err %.1e)", worst);
    double hg[H], hw[H];
    st = pare_svd_component_errors(qkv->blob->data, 3 * C, C, 8, D, C, H, hg);
    ref_errors(qkv->blob->data, 3 * C, C, 8, D, C, hw, H);
    worst = 0;
    for (int h = 0; st == PARE_OK && h < H; h++) worst = fmax(worst, fabs(hg[h] - hw[h]) / hw[h]);
    ok(st == PARE_OK && worst < 1e-9, "head errors over each head's q, k, v rows agree too (rel err %.1e)", worst);

    /* neurons: level 0.25 of 48 = 12 per layer, rank_ratio 0.25 → k = 8 */
    for (int high = 0; high < 2; high++) {
        pare_model *q = NULL;
        pare_kv kv[] = {{"level", PARE_KV_NUM, 0.25, NULL}, {"prune", PARE_KV_STR, 0, high ? "high_error" : "low_error"}};
        st = pare_apply(&q, m, "svd_prune", kv, 2);
        if (!ok(st == PARE_OK, "svd_prune neurons level=0.25 prune=%s", high ? "high_error" : "low_error")) {
            diag("%s", pare_errmsg());
            continue;
        }
        int good = 1;
        for (int l = 0; l < 2; l++) {
            char name[64];
            snprintf(name, sizeof name, "enc.%d.ffn.up.weight", l);
            char kept[F];
            ref_errors(param(m, name)->blob->data, F, C, 8, 1, F, want, F);
            good &= param(q, name)->shape[0] == 36 && kept_rows(m, q, name, kept) == 36 &&
                    dropped_are_extremes(want, kept, F, 12, high);
            snprintf(name, sizeof name, "enc.%d.ffn.down.weight", l);
            good &= param(q, name)->shape[1] == 36;
        }
        ok(good, "each layer lost exactly the 12 neurons of %s error (36 left; down projections resized)",
           high ? "highest" : "lowest");
        pare_model_free(q);
    }

    /* heads: level 0.5 → 2 of 4 per layer */
    pare_model *q = NULL;
    pare_kv kh[] = {{"component", PARE_KV_STR, 0, "heads"}, {"level", PARE_KV_NUM, 0.5, NULL}};
    st = pare_apply(&q, m, "svd_prune", kh, 2);
    if (ok(st == PARE_OK, "svd_prune heads level=0.5")) {
        int good = 1;
        for (int l = 0; l < 2; l++) {
            char name[64];
            snprintf(name, sizeof name, "enc.%d.attn.qkv.weight", l);
            const float *A = param(m, name)->blob->data;
            ref_errors(A, 3 * C, C, 8, D, C, hw, H);
            char kept_rows_[3 * C], kept[H];
            good &= kept_rows(m, q, name, kept_rows_) == 3 * C / 2;
            for (int h = 0; h < H; h++) kept[h] = kept_rows_[h * D]; /* the head's first q row */
            good &= dropped_are_extremes(hw, kept, H, 2, 0);
        }
        ok(good, "each layer lost the 2 heads of lowest error (q, k, v rows and output columns removed)");
    } else {
        diag("%s", pare_errmsg());
    }
    pare_model_free(q);

    /* errors */
    pare_kv kb[] = {{"component", PARE_KV_STR, 0, "heads"}, {"layers", PARE_KV_STR, 0, "*.ffn.up"}};
    st = pare_apply(&q, m, "svd_prune", kb, 2);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.ffn.up") && strstr(pare_errmsg(), "attn.qkv"),
       "heads asked of an FFN layer: %s", pare_errmsg());
    pare_kv kl[] = {{"level", PARE_KV_NUM, 1.5, NULL}};
    st = pare_apply(&q, m, "svd_prune", kl, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "level"), "level out of range: %s", pare_errmsg());
    pare_model_free(m);
    return tap_done();
}
