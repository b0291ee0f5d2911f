/* lowrank.c — the "lowrank" pass: truncated-SVD factorization of Linear weights (seed 003's
 * factorization), as two smaller Linears that run as two smaller GEMMs and keep training.
 *
 *     X: y = W x + b,  W (N, K)    ──►    X.v: h = (√S_r V_rᵀ) x   (r, K), no bias
 *                                         X:   y = (U_r √S_r) h + b  (N, r), X's bias and name
 *
 * W_r = U_r S_r V_rᵀ is the best rank-r approximation in the Frobenius and spectral norms
 * (Eckart–Young); the singular values are split evenly between the two factors. The rank of each layer
 * comes from one rule: `rank` (the same for every layer, capped at min(N, K)), else `energy` (the smallest
 * r keeping that share of Σσ²), else `ratio` (the largest r whose two factors hold at most that share
 * of N·K parameters). A layer whose rank saves no parameters (r·(N + K) ≥ N·K) is left dense; when
 * none is factored the pass fails, naming the rule.
 *
 * Deliberately not here: Kronecker and tensor-train factorizations (kronecker.c, tensor_train.c: a tt_linear
 * node), and factorizing weights under masks or in quantized formats (refused: factorize the dense f32
 * model, then compress).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "graph/transform.h"
#include "svd.h"

static const pare_opt_spec lowrank_opts[] = {
    {"layers", PARE_OPT_STRING, "*.ffn.*", 0, 0, NULL, "glob over Linear layer names to factorize (e.g. \"enc.*.attn.*\")"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of Linear layers to leave dense (\"\": none)"},
    {"rank", PARE_OPT_INT, "0", 0, 1e6, NULL, "the rank of every selected layer (0: chosen by energy or ratio)"},
    {"energy", PARE_OPT_FLOAT, "0", 0, 1, NULL, "rank keeping this share of the squared singular values (0: use ratio)"},
    {"ratio", PARE_OPT_FLOAT, "0.5", 0.001, 1, NULL, "rank whose factors hold at most this share of the layer's weights"},
};
static const pare_schema lowrank_schema = {"lowrank", "truncated-SVD factorization of Linear weights into two smaller Linears",
                                           lowrank_opts, (int)(sizeof lowrank_opts / sizeof lowrank_opts[0])};

/* Replace Linear node i by X.v (K → r) and X (r → N). */
static pare_status factorize(pare_model *m, int64_t i, int64_t rank, double energy, double ratio, int *done)
{
    char name[PARE_NAME_MAX], vname[PARE_NAME_MAX + 16], uname[PARE_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s", m->nodes[i].name);
    if (strlen(name) + sizeof ".weight.dense" > PARE_NAME_MAX)
        return pare_fail(PARE_EINVAL, "lowrank: the name '%s' leaves no room for its factors' names (at most %d characters)",
                         name, PARE_NAME_MAX - (int)sizeof ".weight.dense");
    int wp = m->nodes[i].param[0];
    const pare_param *w = &m->params[wp];
    if (m->nodes[i].ntf)
        return pare_fail(PARE_EINVAL, "lowrank: %s carries a weight transform (%s); factorize the model before masking or "
                         "fake quantization", name, pare_tf_name(m->nodes[i].tf[0].kind));
    if (w->format != PARE_FMT_F32)
        return pare_fail(PARE_EINVAL, "lowrank: %s is stored as %s; factorize the f32 model, then quantize", name,
                         pare_format_name(w->format));
    int64_t N = w->shape[0], K = w->shape[1], R = N < K ? N : K;
    double *u, *s, *vt;
    PARE_TRY(pare_svd(w->blob->data, N, K, &u, &s, &vt));
    int64_t r = rank > 0 ? (rank < R ? rank : R)
                : energy > 0 ? pare_svd_rank_for_energy(s, R, energy)
                : (int64_t)floor(ratio * (double)N * (double)K / (double)(N + K));
    if (r < 1) r = 1;
    if (r * (N + K) >= N * K) { /* no saving: stays dense */
        free(u), free(s), free(vt);
        return PARE_OK;
    }
    snprintf(vname, sizeof vname, "%s.v.weight", name);
    snprintf(uname, sizeof uname, "%s.weight", name);
    char dense[PARE_NAME_MAX + 16];
    snprintf(dense, sizeof dense, "%s.weight.dense", name);
    memcpy(m->params[wp].name, dense, strlen(dense) + 1); /* fits (checked above); dropped by compact below */
    int64_t sv[2] = {r, K}, su[2] = {N, r};
    int pv = pare_model_add_param(m, vname, 2, sv, 1), pu = pv >= 0 ? pare_model_add_param(m, uname, 2, su, 1) : -1;
    if (pu < 0) {
        free(u), free(s), free(vt);
        return PARE_EINVAL;
    }
    float *V = m->params[pv].blob->data, *U = m->params[pu].blob->data;
    for (int64_t j = 0; j < r; j++) {
        double g = sqrt(s[j]);
        for (int64_t k = 0; k < K; k++) V[j * K + k] = (float)(g * vt[j * K + k]);
        for (int64_t n = 0; n < N; n++) U[n * r + j] = (float)(u[n * R + j] * g);
    }
    free(u), free(s), free(vt);
    int in = m->nodes[i].in[0];
    snprintf(vname, sizeof vname, "%s.v", name);
    int h = pare_model_insert_node(m, i, PARE_OP_LINEAR, vname, &in, 1, &pv, 1, m->values[in].rows, r, (pare_node_attrs){0});
    if (h < 0) return PARE_EINVAL;
    pare_node *x = &m->nodes[i + 1]; /* X, one later */
    x->in[0] = h;
    x->param[0] = pu;
    (*done)++;
    return PARE_OK;
}

static pare_status lowrank_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), n;
    if (!idx) return PARE_ENOMEM;
    pare_status st = pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), idx, &n);
    int64_t rank = pare_opt_int(o, "rank");
    double energy = pare_opt_num(o, "energy"), ratio = pare_opt_num(o, "ratio");
    int done = 0;
    /* last first: inserting a node shifts the indices after it */
    for (int64_t k = n - 1; st == PARE_OK && k >= 0; k--) st = factorize(m, idx[k], rank, energy, ratio, &done);
    free(idx);
    if (st == PARE_OK && !done)
        st = pare_fail(PARE_EINVAL, "lowrank: no selected layer saves parameters at %s (a rank r saves only when "
                       "r·(N + K) < N·K); choose a lower rank, energy or ratio", rank > 0 ? "this rank"
                       : energy > 0 ? "this energy" : "this ratio");
    if (st == PARE_OK) st = pare_model_compact(m);
    if (st == PARE_OK) st = pare_model_check(m);
    return st;
}

const pare_pass pare_pass_lowrank = {&lowrank_schema, lowrank_apply, 0};
