/* tensor_train.c — the "tensor_train" pass: a Linear weight as a TT-matrix (Novikov et al., "Tensorizing
 * Neural Networks", 2015), found by TT-SVD (Oseledets 2011) and run as a chain of small GEMMs.
 *
 *     W[(a_0..a_{d-1}), (c_0..c_{d-1})] = G_0[:, a_0, c_0, :] ··· G_{d-1}[:, a_{d-1}, c_{d-1}, :]
 *     G_j (r_j, n_j, k_j, r_{j+1}),  N = Π n_j,  K = Π k_j,  r_0 = r_d = 1
 *
 * TT-SVD (tt_svd.h): d − 1 sequential truncated SVDs of the remainders; each TT-rank is the smallest
 * keeping `energy` of that step's Σσ² (energy 0: all), capped at `rank` (0: no cap). The error is
 * exactly the root of the dropped Σσ² over the steps (the left cores are orthonormal). The layer becomes a
 * tt_linear node (kernels/tt.h) whose cores are one trainable parameter: it fine-tunes, saves and loads.
 *
 * Factors: `n` and `k` as comma lists ("8,8,12") whose products are N and K, or ("") `cores` factors each
 * as balanced as N's and K's primes allow. A layer whose cores hold at least N·K floats stays dense; none
 * factored is an error.
 *
 * Deliberately not here: rounding (TT-rounding of given cores), ALS refinement, weights under masks or in
 * quantized formats (refused: factorize the f32 model).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "graph/rewrite.h"
#include "tt_svd.h"

static const pare_opt_spec tt_opts[] = {
    {"layers", PARE_OPT_STRING, "*.ffn.*", 0, 0, NULL, "glob over Linear layer names to factorize (e.g. \"enc.*.attn.*\")"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of Linear layers to leave dense (\"\": none)"},
    {"cores", PARE_OPT_INT, "3", 2, PARE_TT_MAX, NULL, "number of TT cores d (when n and k are not given)"},
    {"n", PARE_OPT_STRING, "", 0, 0, NULL, "output factors \"n_0,..,n_{d-1}\", product N (\"\": balanced)"},
    {"k", PARE_OPT_STRING, "", 0, 0, NULL, "input factors \"k_0,..,k_{d-1}\", product K (\"\": balanced)"},
    {"rank", PARE_OPT_INT, "8", 0, 1e6, NULL, "cap on every TT-rank (0: none, ranks from energy alone)"},
    {"energy", PARE_OPT_FLOAT, "0", 0, 1, NULL, "per step, the smallest rank keeping this share of Σσ² (0: all, then rank)"},
};
static const pare_schema tt_schema = {"tensor_train", "tensor-train (TT-matrix) factorization of Linear weights by TT-SVD",
                                      tt_opts, (int)(sizeof tt_opts / sizeof tt_opts[0])};

typedef struct tt_args {
    int d, dn, dk;                  /* cores; factors given for n and k (0: automatic) */
    int64_t n[PARE_TT_MAX], k[PARE_TT_MAX];
    int64_t rank;
    double energy;
} tt_args;

static pare_status factor_dim(int64_t *out, const int64_t *given, int dgiven, int64_t D, int d, const char *key,
                              const char *dim, const char *layer)
{
    if (!dgiven) {
        pare_tt_auto_factors(D, d, out);
        return PARE_OK;
    }
    int64_t p = 1;
    for (int j = 0; j < dgiven; j++) p *= given[j];
    if (p != D)
        return pare_fail(PARE_EINVAL, "tensor_train: the factors %s multiply to %lld, but %s's %s is %lld", key, (long long)p,
                         layer, dim, (long long)D);
    memcpy(out, given, sizeof *out * (size_t)d);
    return PARE_OK;
}

static pare_status factorize(pare_model *m, int64_t i, const tt_args *t, int *done)
{
    PARE_TRY(pare_tt_check_linear(m, i, "tensor_train"));
    const pare_param *w = &m->params[m->nodes[i].param[0]];
    int64_t N = w->shape[0], K = w->shape[1];
    pare_tt_shape s = {.d = t->d};
    PARE_TRY(factor_dim(s.n, t->n, t->dn, N, t->d, "n", "N (output features)", m->nodes[i].name));
    PARE_TRY(factor_dim(s.k, t->k, t->dk, K, t->d, "k", "K (input features)", m->nodes[i].name));
    float *cores;
    PARE_TRY(pare_tt_svd(&cores, &s, w->blob->data, t->rank, t->energy, NULL));
    pare_status st = PARE_OK;
    if (pare_tt_numel(&s) < N * K) { /* else no saving: stays dense */
        st = pare_tt_replace_linear(m, i, &s, cores);
        if (st == PARE_OK) (*done)++;
    }
    free(cores);
    return st;
}

static pare_status tt_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    tt_args t = {.d = (int)pare_opt_int(o, "cores"), .rank = pare_opt_int(o, "rank"), .energy = pare_opt_num(o, "energy")};
    const char *ns = pare_opt_str(o, "n"), *ks = pare_opt_str(o, "k");
    if (*ns) PARE_TRY(pare_tt_parse_factors(ns, t.n, &t.dn, "tensor_train: n"));
    if (*ks) PARE_TRY(pare_tt_parse_factors(ks, t.k, &t.dk, "tensor_train: k"));
    if (t.dn && t.dk && t.dn != t.dk)
        return pare_fail(PARE_EINVAL, "tensor_train: n has %d factors and k %d; a TT-matrix pairs them, one per core", t.dn,
                         t.dk);
    if (t.dn || t.dk) t.d = t.dn ? t.dn : t.dk;
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), n;
    if (!idx) return PARE_ENOMEM;
    pare_status st = pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), idx, &n);
    int done = 0;
    for (int64_t k = 0; st == PARE_OK && k < n; k++) st = factorize(m, idx[k], &t, &done);
    free(idx);
    if (st == PARE_OK && !done)
        st = pare_fail(PARE_EINVAL, "tensor_train: no selected layer saves parameters (the cores must hold fewer floats "
                       "than N·K); choose a lower rank or energy, or more cores");
    if (st == PARE_OK) st = pare_model_compact(m);
    if (st == PARE_OK) st = pare_model_check(m);
    return st;
}

const pare_pass pare_pass_tensor_train = {&tt_schema, tt_apply, 0};
