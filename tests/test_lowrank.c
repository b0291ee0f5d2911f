/* test_lowrank.c — truncated-SVD factorization (compress/lowrank): pare_svd reconstructs its matrix with
 * orthonormal vectors and its singular values equal the square roots of WᵀW's eigenvalues from GSL's
 * symmetric eigensolver (another algorithm); the leading pair equals power iteration's. The lowrank pass
 * gives a model whose logits equal the dense model's with each factored weight replaced by the product of
 * its factors, whose error ||W − W_r||²_F is the sum of the dropped eigenvalues (Eckart–Young), with the
 * * ranks each rule chooses, fewer parameters, a checkpoint that reloads bit-identically,
 * and clear errors. */
#include <gsl/gsl_eigen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/lowrank/svd.h"
#include "compress/pass.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/transform.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

enum { B = 3, T = 8, C = 32, F = 48 };
static int32_t tok[B * T], len[B] = {8, 5, 2};

static pare_model *build(void) { return tiny_encoder(T, C, F); }

static float *logits(pare_model *m) { return tiny_logits(m, B, T, tok, len, 3); }

static const pare_param *param(const pare_model *m, const char *name)
{
    int i = pare_model_find_param(m, name);
    return i >= 0 ? &m->params[i] : NULL;
}

/* Eigenvalues of WᵀW (K of them), descending, by GSL's symmetric eigensolver. */
static void gram_eigenvalues(const float *W, int64_t N, int64_t K, double *ev)
{
    gsl_matrix *G = gsl_matrix_alloc((size_t)K, (size_t)K);
    for (int64_t a = 0; a < K; a++)
        for (int64_t b = 0; b < K; b++) {
            double s = 0;
            for (int64_t n = 0; n < N; n++) s += (double)W[n * K + a] * W[n * K + b];
            gsl_matrix_set(G, (size_t)a, (size_t)b, s);
        }
    gsl_vector *e = gsl_vector_alloc((size_t)K);
    gsl_eigen_symm_workspace *w = gsl_eigen_symm_alloc((size_t)K);
    gsl_eigen_symm(G, e, w);
    for (int64_t k = 0; k < K; k++) ev[k] = gsl_vector_get(e, (size_t)k);
    for (int64_t a = 0; a < K; a++) /* descending */
        for (int64_t b = a + 1; b < K; b++)
            if (ev[b] > ev[a]) {
                double t = ev[a];
                ev[a] = ev[b], ev[b] = t;
            }
    gsl_eigen_symm_free(w), gsl_vector_free(e), gsl_matrix_free(G);
}

static void svd_checks(int64_t N, int64_t K)
{
    pare_rng r;
    pare_rng_seed(&r, (uint64_t)(N * 100 + K));
    float *W = malloc(sizeof *W * (size_t)(N * K));
    for (int64_t i = 0; i < N * K; i++) W[i] = (float)pare_rng_normal(&r);
    double *u, *s, *vt;
    if (!ok(pare_svd(W, N, K, &u, &s, &vt) == PARE_OK, "svd of a (%lld, %lld) matrix", (long long)N, (long long)K)) return;
    int64_t R = N < K ? N : K;
    double rec = 0, orth = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t k = 0; k < K; k++) {
            double v = 0;
            for (int64_t j = 0; j < R; j++) v += u[i * R + j] * s[j] * vt[j * K + k];
            rec = fmax(rec, fabs(v - W[i * K + k]));
        }
    for (int64_t a = 0; a < R; a++)
        for (int64_t b = 0; b < R; b++) {
            double du = 0, dv = 0;
            for (int64_t i = 0; i < N; i++) du += u[i * R + a] * u[i * R + b];
            for (int64_t k = 0; k < K; k++) dv += vt[a * K + k] * vt[b * K + k];
            orth = fmax(orth, fmax(fabs(du - (a == b)), fabs(dv - (a == b))));
        }
    ok(rec < 1e-5 && orth < 1e-10, "(%lld, %lld): U S Vt reconstructs W (max err %.1e), U and V orthonormal (%.1e)",
       (long long)N, (long long)K, rec, orth);
    double *ev = malloc(sizeof *ev * (size_t)K), worst = 0;
    gram_eigenvalues(W, N, K, ev);
    int sorted = 1;
    for (int64_t j = 0; j < R; j++) {
        worst = fmax(worst, fabs(s[j] - sqrt(fmax(ev[j], 0))) / s[0]);
        if (j && s[j] > s[j - 1]) sorted = 0;
    }
    ok(sorted && worst < 1e-9, "(%lld, %lld): singular values descending, equal to sqrt(eig(WᵀW)) (rel err %.1e)",
       (long long)N, (long long)K, worst);
    /* power iteration for the leading pair */
    double *v = malloc(sizeof *v * (size_t)K), *t = malloc(sizeof *t * (size_t)N);
    for (int64_t k = 0; k < K; k++) v[k] = 1.0 / sqrt((double)K);
    for (int it = 0; it < 500; it++) {
        for (int64_t i = 0; i < N; i++) {
            t[i] = 0;
            for (int64_t k = 0; k < K; k++) t[i] += W[i * K + k] * v[k];
        }
        double nv = 0;
        for (int64_t k = 0; k < K; k++) {
            v[k] = 0;
            for (int64_t i = 0; i < N; i++) v[k] += W[i * K + k] * t[i];
            nv += v[k] * v[k];
        }
        for (int64_t k = 0; k < K; k++) v[k] /= sqrt(nv);
    }
    double dot = 0;
    for (int64_t k = 0; k < K; k++) dot += v[k] * vt[k];
    ok(fabs(fabs(dot) - 1) < 1e-6, "(%lld, %lld): the leading right vector is power iteration's (|cos| = %.9f)",
       (long long)N, (long long)K, fabs(dot));
    free(v), free(t), free(ev), free(u), free(s), free(vt), free(W);
}

int main(void)
{
    tap_plan_lazy();
    svd_checks(20, 12);
    svd_checks(9, 17);
    pare_model *m = build();
    if (!ok(m != NULL, "a 2-layer encoder (d=32, ffn=48)")) return tap_done();
    for (int i = 0; i < B * T; i++) tok[i] = (i % T) < len[i / T] ? 1 + (i * 7) % 12 : 0;

    /* rank 8 on the FFN: each factored weight against the product of its factors, in the dense model */
    pare_model *q = NULL;
    pare_kv kv[] = {{"rank", PARE_KV_NUM, 8, NULL}};
    pare_status st = pare_apply(&q, m, "lowrank", kv, 1);
    if (!ok(st == PARE_OK, "lowrank rank=8 on *.ffn.*")) return diag("%s", pare_errmsg()), tap_done();
    const char *layers[] = {"enc.0.ffn.up", "enc.0.ffn.down", "enc.1.ffn.up", "enc.1.ffn.down"};
    pare_model *ref = pare_model_clone(m);
    double err_worst = 0;
    int shapes = 1;
    for (int l = 0; l < 4; l++) {
        char wn[96], vn[96];
        snprintf(wn, sizeof wn, "%s.weight", layers[l]), snprintf(vn, sizeof vn, "%s.v.weight", layers[l]);
        const pare_param *U = param(q, wn), *V = param(q, vn), *W = param(m, wn);
        if (!U || !V || U->shape[1] != 8 || V->shape[0] != 8 || U->shape[0] != W->shape[0] || V->shape[1] != W->shape[1]) {
            shapes = 0;
            continue;
        }
        int64_t N = W->shape[0], K = W->shape[1];
        pare_param *rw = (pare_param *)param(ref, wn);
        pare_param_make_private(rw);
        double e2 = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < K; k++) {
                double p = 0;
                for (int64_t j = 0; j < 8; j++) p += (double)U->blob->data[i * 8 + j] * V->blob->data[j * K + k];
                rw->blob->data[i * K + k] = (float)p;
                e2 += (p - W->blob->data[i * K + k]) * (p - W->blob->data[i * K + k]);
            }
        double *ev = malloc(sizeof *ev * (size_t)K), tail = 0;
        gram_eigenvalues(W->blob->data, N, K, ev);
        for (int64_t j = 8; j < K; j++) tail += fmax(ev[j], 0);
        err_worst = fmax(err_worst, fabs(e2 - tail) / tail);
        free(ev);
    }
    ok(shapes, "each FFN Linear became X.v (8, K) and X (N, 8), X keeping its name and bias");
    ok(err_worst < 1e-4, "||W - UV||² equals the sum of the dropped eigenvalues of WᵀW (Eckart-Young; rel err %.1e)", err_worst);
    float *a = logits(q), *b = logits(ref);
    double d = 0;
    for (int i = 0; a && b && i < B * 3; i++) d = fmax(d, fabs(a[i] - b[i]));
    ok(a && b && d < 1e-4, "the factored model's logits equal the dense model's with W := UV (max |diff| %.1e)", d);
    free(a), free(b);
    int64_t before = 0, after = 0;
    for (int64_t i = 0; i < m->nparams; i++) before += pare_param_numel(&m->params[i]);
    for (int64_t i = 0; i < q->nparams; i++) after += pare_param_numel(&q->params[i]);
    ok(before - after == 2 * 2 * (C * F - 8 * (C + F)), "parameters: %lld -> %lld (4 layers of 48x32 -> 8x(48+32))",
       (long long)before, (long long)after);
    ok(param(q, "enc.0.ffn.up.weight.dense") == NULL, "the dense weights are gone from the model");

    /* the model trains and reloads */
    char path[] = "/tmp/pare-lowrank-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    pare_model *back = NULL;
    st = pare_model_save(q, path);
    if (st == PARE_OK) st = pare_model_load(&back, path);
    a = st == PARE_OK ? logits(q) : NULL, b = st == PARE_OK ? logits(back) : NULL;
    ok(a && b && !memcmp(a, b, sizeof *a * B * 3), "saved and loaded: bit-identical logits%s%s", st ? ": " : "",
       st ? pare_errmsg() : "");
    free(a), free(b), pare_model_free(back), unlink(path);

    /* the rank rules */
    pare_model_free(q);
    pare_kv kr[] = {{"layers", PARE_KV_STR, 0, "enc.0.ffn.up"}, {"ratio", PARE_KV_NUM, 0.3, NULL}};
    st = pare_apply(&q, m, "lowrank", kr, 2);
    const pare_param *u = st == PARE_OK ? param(q, "enc.0.ffn.up.weight") : NULL;
    int64_t want = (int64_t)floor(0.3 * F * C / (F + C));
    ok(u && u->shape[1] == want, "ratio=0.3: rank %lld = floor(0.3·48·32/80)", u ? (long long)u->shape[1] : -1LL);
    pare_model_free(q);
    pare_kv ke[] = {{"layers", PARE_KV_STR, 0, "enc.0.ffn.up"}, {"energy", PARE_KV_NUM, 0.5, NULL}};
    st = pare_apply(&q, m, "lowrank", ke, 2);
    u = st == PARE_OK ? param(q, "enc.0.ffn.up.weight") : NULL;
    double ev[C], tot = 0, kept = 0;
    gram_eigenvalues(param(m, "enc.0.ffn.up.weight")->blob->data, F, C, ev);
    for (int j = 0; j < C; j++) tot += ev[j];
    int64_t re = 0;
    while (kept < 0.5 * tot) kept += ev[re++];
    ok(u && u->shape[1] == re, "energy=0.5: rank %lld, the smallest keeping half of the eigenvalues' sum (%lld)",
       u ? (long long)u->shape[1] : -1LL, (long long)re);
    pare_model_free(q);

    /* errors */
    pare_kv kn[] = {{"rank", PARE_KV_NUM, 30, NULL}};
    st = pare_apply(&q, m, "lowrank", kn, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "saves parameters"), "a rank that saves nothing: %s", pare_errmsg());
    pare_model *mk = pare_model_clone(m);
    float *mask = malloc(sizeof *mask * F * C);
    for (int i = 0; i < F * C; i++) mask[i] = (float)(i % 2);
    pare_model_set_mask(mk, "enc.0.ffn.up", mask, F, C);
    st = pare_apply(&q, mk, "lowrank", kv, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "enc.0.ffn.up") && strstr(pare_errmsg(), "mask"),
       "a masked layer is refused, naming it: %s", pare_errmsg());
    free(mask), pare_model_free(mk);
    pare_kv kq[] = {{"layers", PARE_KV_STR, 0, "enc.*"}};
    pare_model *i8 = NULL;
    pare_apply(&i8, m, "dynamic_int8", kq, 1);
    st = i8 ? pare_apply(&q, i8, "lowrank", kv, 1) : PARE_EINVAL;
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "int8"), "a quantized layer is refused: %s", pare_errmsg());
    pare_model_free(i8), pare_model_free(ref), pare_model_free(m);
    return tap_done();
}
