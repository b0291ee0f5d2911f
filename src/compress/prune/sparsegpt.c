/* sparsegpt.c — SparseGPT one-shot second-order pruning (Frantar & Alistarh 2023; sparsegpt.h has the
 * algorithm) and the `sparsegpt` pass over a model.
 *
 * The pass: the Hessians of every selected Linear come from one calibration run of the model as given
 * (compress/quant/calib.h with PARE_CALIB_HESSIAN, the code GPTQ uses), then each layer is pruned on its own.
 * Result, as the other pruning passes: a mask on each pruned weight (graph/transform.h), so m:sparsity counts
 * it, fine-tuning keeps it and `sparsify` stores it sparse; unlike them the f32 master is rewritten too (made
 * private to the new model), since the OBS update changes the weights that stay: the master holds the updated
 * weights with exact zeros under the mask.
 *
 * Deliberately not here: the paper's sequential variant (layer l's Hessian from the outputs of the already
 * pruned layers < l), joint pruning + quantization (run gptq after), block patterns, a global sparsity over
 * layers (SparseGPT is layer-wise: sparsity is per block of columns in each layer).
 *
 * Entry points: pare_sparsegpt_prune (sparsegpt.h), pare_pass_sparsegpt (pass.h registry).
 */
#include "compress/prune/sparsegpt.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cblas.h> /* cblas_d* resolve to OpenBLAS, as in gptq_core.c */

#include "compress/quant/calib.h"
#include "core/arena.h"
#include "core/cpu.h"
#include "graph/transform.h"
#include "prune_internal.h"

/* ---- the algorithm ---- */

static pare_status check_opts(const pare_sparsegpt_opts *o, int64_t K)
{
    if (!o) return pare_fail(PARE_EINVAL, "sparsegpt: options are NULL (use PARE_SPARSEGPT_OPTS_DEFAULT)");
    if (o->n || o->m) {
        if (o->n < 1 || o->m < 2 || o->n >= o->m || o->m > 64)
            return pare_fail(PARE_EINVAL, "sparsegpt: n=%d, m=%d: N:M needs 1 <= n < m <= 64 (n kept of every m, e.g. "
                             "2:4 or 4:8), or n = m = 0 for unstructured", o->n, o->m);
        if (K % o->m)
            return pare_fail(PARE_EINVAL, "sparsegpt: m=%d does not divide the input dimension K=%lld", o->m, (long long)K);
    } else if (!(o->sparsity >= 0.0 && o->sparsity <= 1.0))
        return pare_fail(PARE_EINVAL, "sparsegpt: sparsity=%g: must be in [0, 1]", o->sparsity);
    if (o->blocksize < 0)
        return pare_fail(PARE_EINVAL, "sparsegpt: blocksize=%lld: must be >= 1 (0 means the default, 128)",
                         (long long)o->blocksize);
    if (!(o->damp >= 0.0) || !isfinite(o->damp))
        return pare_fail(PARE_EINVAL, "sparsegpt: damp=%g: must be a finite number >= 0 (fraction of mean(diag(H)); "
                         "default 0.01)", o->damp);
    return PARE_OK;
}

/* One block [i1, i2) of one row: prune or keep each column and spread a pruned weight over the rest of the
 * block, keeping the scaled errors for the columns after it. w (K) the working row; U (K,K); bmask (b) the
 * block's mask for this row (unstructured) or NULL (N:M, groups chosen here; gdrop (m) keeps a row's group
 * choice when a group spans several blocks). */
PARE_HOT static void sgpt_row_block(float *wprow, float *mrow, double *e, double *w, const double *U, const float *prior,
                                    const float *bmask, unsigned char *gdrop, int n_keep, int m, int64_t i1,
                                    int64_t i2, int64_t K)
{
    for (int64_t i = i1; i < i2; i++) {
        int drop;
        if (m) {
            if (i % m == 0) { /* the group's saliencies on the weights as they are now */
                double s[64];
                int forced = 0;
                for (int a = 0; a < m; a++) {
                    const int64_t c = i + a;
                    if (prior && prior[c] == 0.0f) s[a] = -INFINITY, forced++;
                    else {
                        double r = w[c] / U[c * K + c];
                        s[a] = r * r;
                    }
                }
                const int np = forced > m - n_keep ? forced : m - n_keep;
                for (int a = 0; a < m; a++) {
                    int rank = 0; /* how many are pruned before a: lower saliency, or equal and a lower column */
                    for (int b = 0; b < m; b++) rank += s[b] < s[a] || (s[b] == s[a] && b < a);
                    gdrop[a] = rank < np;
                }
            }
            drop = gdrop[i % m];
        } else drop = bmask[i - i1] == 0.0f;
        const double *u = U + i * K;
        const double err = drop ? w[i] / u[i] : 0.0;
        e[i - i1] = err;
        wprow[i] = drop ? 0.0f : (float)w[i];
        if (mrow) mrow[i] = drop ? 0.0f : 1.0f;
        if (drop)
            for (int64_t j = i + 1; j < i2; j++) w[j] -= err * u[j];
    }
}

pare_status pare_sparsegpt_prune(float *Wp, float *mask, const float *W, const float *prior_mask,
                                 const pare_gptq_hessian *h, int64_t N, int64_t K, const pare_sparsegpt_opts *o,
                                 double *err_out)
{
    if (N < 1 || K < 1 || N > INT_MAX || K > INT_MAX)
        return pare_fail(PARE_ESHAPE, "sparsegpt: W is (%lld, %lld): both sizes must be in 1..%d", (long long)N,
                         (long long)K, INT_MAX);
    PARE_TRY(check_opts(o, K));
    if (!W || !Wp) return pare_fail(PARE_EINVAL, "sparsegpt: W and Wp must not be NULL");
    if (!h || !h->H || h->K != K)
        return pare_fail(PARE_ESHAPE, "sparsegpt: the Hessian is for K=%lld inputs but W is (%lld, %lld)",
                         h ? (long long)h->K : 0LL, (long long)N, (long long)K);
    if (h->nsamples < 1)
        return pare_fail(PARE_EINVAL, "sparsegpt: the Hessian has no calibration samples: add inputs with "
                         "pare_gptq_hessian_add (calibration set empty?)");
    for (int64_t i = 0; i < N * K; i++)
        if (!isfinite(W[i]))
            return pare_fail(PARE_ENUMERIC, "sparsegpt: W[%lld, %lld] = %g: weights must be finite", (long long)(i / K),
                             (long long)(i % K), (double)W[i]);

    const int m = o->m, nk = o->n;
    int64_t B = o->blocksize ? o->blocksize : 128;
    if (B > K) B = K;
    if (m) { /* blocks and groups nest, so a group is chosen after every earlier column's update reached it */
        if (m <= B) B -= B % m;
        else
            while (m % B) B--;
    }

    pare_status st = PARE_OK;
    double *U = malloc(sizeof *U * (size_t)(K * K)), *Wd = malloc(sizeof *Wd * (size_t)(N * K));
    double *E = malloc(sizeof *E * (size_t)(N * B));
    float *bs = m ? NULL : pare_alloc(sizeof *bs * (size_t)(N * B)), *bm = m ? NULL : pare_alloc(sizeof *bm * (size_t)(N * B));
    unsigned char *gdrop = m ? calloc((size_t)(N * m), 1) : NULL;
    if (!U || !Wd || !E || (m ? !gdrop : !bs || !bm)) {
        st = pare_fail(PARE_ENOMEM, "sparsegpt: out of memory for K=%lld, N=%lld", (long long)K, (long long)N);
        goto done;
    }
    const double *H = h->H;
    for (int64_t n = 0; n < N; n++) /* dead inputs: W[:,i] = 0 (and H[i,i] = 1 in the factor) */
        for (int64_t k = 0; k < K; k++) Wd[n * K + k] = H[k * K + k] == 0.0 ? 0.0 : (double)W[n * K + k];
    if ((st = pare_gptq_inv_chol(U, h, NULL, o->damp, "sparsegpt")) != PARE_OK) goto done;

    for (int64_t i1 = 0; i1 < K; i1 += B) {
        const int64_t i2 = i1 + B < K ? i1 + B : K, b = i2 - i1;
        if (!m) { /* adaptive mask selection over the whole block: the lowest (w / U_ii)^2 */
            int64_t forced = 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t j = 0; j < b; j++) {
                    const int64_t c = i1 + j;
                    float *s = &bs[n * b + j];
                    if (prior_mask && prior_mask[n * K + c] == 0.0f) *s = -INFINITY, forced++;
                    else {
                        double r = Wd[n * K + c] / U[c * K + c];
                        *s = (float)(r * r);
                    }
                }
            int64_t k = (int64_t)llround(o->sparsity * (double)(N * b));
            if (k < forced) k = forced;
            pare_prune_spec sp = {.pattern = PARE_PRUNE_UNSTRUCTURED, .sparsity = (double)k / (double)(N * b)};
            if ((st = pare_prune_mask_layer(bm, bs, 1, N * b, &sp)) != PARE_OK) goto done;
        }
#pragma omp parallel for schedule(static) if (N * b >= 4096)
        for (int64_t n = 0; n < N; n++)
            sgpt_row_block(Wp + n * K, mask ? mask + n * K : NULL, E + n * b, Wd + n * K, U,
                           prior_mask ? prior_mask + n * K : NULL, m ? NULL : bm + n * b, m ? gdrop + n * m : NULL, nk, m,
                           i1, i2, K);
        if (i2 < K)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)(K - i2), (int)b, -1.0, E, (int)b,
                        U + i1 * K + i2, (int)K, 1.0, Wd + i2, (int)K);
    }
    if (err_out) *err_out = pare_gptq_objective(W, Wp, h, N, K);

done:
    free(U), free(Wd), free(E), pare_free(bs), pare_free(bm), free(gdrop);
    return st;
}

/* ---- the pass ---- */

static const pare_opt_spec sgpt_opts[] = {
    PR_LAYER_OPTS,
    {"sparsity", PARE_OPT_FLOAT, "0.5", 0, 1, NULL, "pattern=unstructured: fraction pruned in every block of columns, exactly round(s * N * b)"},
    {"pattern", PARE_OPT_ENUM, "unstructured", 0, 0, "unstructured|nm|2:4|4:8",
     "mask layout: any weight, or n kept of every m consecutive along the input (nm: the options n and m)"},
    {"n", PARE_OPT_INT, "2", 1, 64, NULL, "pattern=nm: weights kept of every m consecutive along the input dimension"},
    {"m", PARE_OPT_INT, "4", 2, 64, NULL, "pattern=nm: group size along the input dimension"},
    {"blocksize", PARE_OPT_INT, "128", 1, 1e6, NULL, "columns per block: adaptive mask selection and lazy-batch update"},
    {"damp", PARE_OPT_FLOAT, "0.01", 0, 10, NULL, "dampening: this fraction of mean(diag H) added to the diagonal"},
    PR_CALIB_OPTS,
};
static const pare_schema sgpt_schema = {
    "sparsegpt", "SparseGPT: one-shot pruning with OBS weight updates from the calibration Hessian (unstructured or N:M)",
    sgpt_opts, (int)(sizeof sgpt_opts / sizeof sgpt_opts[0])};

static pare_status sgpt_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    pare_sparsegpt_opts so = {pare_opt_num(o, "sparsity"), 0, 0, pare_opt_int(o, "blocksize"), pare_opt_num(o, "damp")};
    const char *pat = pare_opt_str(o, "pattern");
    if (!strcmp(pat, "nm")) so.n = pare_opt_int(o, "n"), so.m = pare_opt_int(o, "m");
    else if (!strcmp(pat, "2:4")) so.n = 2, so.m = 4;
    else if (!strcmp(pat, "4:8")) so.n = 4, so.m = 8;
    if (so.m && so.n >= so.m)
        return pare_fail(PARE_EINVAL, "sparsegpt: pattern=nm: n=%d must be less than m=%d (n of every m weights are kept)",
                         so.n, so.m);
    pare_prune_spec spec = {.pattern = so.m ? PARE_PRUNE_NM : PARE_PRUNE_UNSTRUCTURED, .n = so.n, .m = so.m};
    int64_t *idx, n;
    PARE_TRY(pr_select(m, o, &spec, &idx, &n));
    pare_calib c = {0};
    pare_status st = pare_calibrate(&c, m, ctx->calib, pare_opt_int(o, "calib_samples"), pare_opt_int(o, "calib_batch"),
                                    idx, n, PARE_CALIB_MINMAX | PARE_CALIB_HESSIAN);
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        const pare_node *nd = &m->nodes[idx[i]];
        pare_param *w = pr_weight(m, idx[i]);
        const int64_t N = w->shape[0], K = w->shape[1];
        const pare_transform *t = pare_node_transform(nd, PARE_TF_WEIGHT);
        const float *prior = t && t->kind == PARE_TF_MASK ? m->params[t->aux[0]].blob->data : NULL;
        float *Wp = pare_alloc(sizeof *Wp * (size_t)(N * K)), *mk = pare_alloc(sizeof *mk * (size_t)(N * K));
        float *We = pare_alloc(sizeof *We * (size_t)(N * K));
        if (!Wp || !mk || !We) st = pare_fail(PARE_ENOMEM, "out of memory (pruning %s)", nd->name);
        if (st == PARE_OK) { /* from the effective weights W ⊙ M: what the layer computes now */
            pare_prune_effective(m, idx[i], We);
            st = pare_sparsegpt_prune(Wp, mk, We, prior, &c.s[i].H, N, K, &so, NULL);
        }
        if (st == PARE_OK) st = pare_param_make_private(w);
        if (st == PARE_OK) {
            memcpy(w->blob->data, Wp, sizeof *Wp * (size_t)(N * K));
            st = pare_model_set_mask(m, nd->name, mk, N, K);
        }
        if (st != PARE_OK) st = pare_fail_ctx(st, "layer %s", nd->name);
        pare_free(Wp), pare_free(mk), pare_free(We);
    }
    pare_calib_free(&c);
    free(idx);
    return st;
}
const pare_pass pare_pass_sparsegpt = {&sgpt_schema, sgpt_apply, 1};
