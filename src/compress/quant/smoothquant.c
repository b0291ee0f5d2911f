/* smoothquant.c — SmoothQuant (Xiao et al., 2023) and the outlier injection that lets a small model show
 * why it exists.
 *
 * smoothquant: for every Linear fed by a LayerNorm (attn.qkv, ffn.up), per input feature j
 *     s_j = max|X_j|^α / max|W_:,j|^(1−α)        (max|X_j| from calibration, clamped to >= 1e-5)
 * is folded into the LayerNorm (γ_j /= s_j, β_j /= s_j) and the Linear (W_:,j *= s_j): the f32 function
 * is unchanged while activation outliers migrate into the weights. Then the selected Linears are
 * quantized W8A8 with per-tensor weights at the paper's levels: O1 per-token dynamic activations, O2
 * per-tensor dynamic, O3 per-tensor static (min-max over a second calibration on the smoothed model);
 * level=fp32 stops after smoothing. With quantize_bmm the two batched products of attention (Q·Kᵀ, P·V)
 * also run on int8, as the paper quantizes them (p_scale: the probabilities' u8 scale per row, the default,
 * or the fixed 1/255).
 *
 * inject_outliers: for each selected LayerNorm, `channels` feature channels chosen by the seed are
 * multiplied by `factor` in γ and β, and the matching input columns of every Linear it feeds are
 * divided by it. The f32 function is unchanged; the activations now carry the few large channels that
 * large models have (Dettmers et al.; Xiao et al.). Tables record it through the model's applied list.
 */
#include "quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/tensor.h"

/* Every Linear consuming the output of node ln, into idx (capacity m->nnodes); returns the count. */
static int64_t consumers(const pare_model *m, int64_t ln, int64_t *idx)
{
    int64_t k = 0;
    int v = m->nodes[ln].out;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR && m->nodes[i].in[0] == v) idx[k++] = i;
    return k;
}

/* Scale LayerNorm ln's channel j by 1/s[j] and the input columns of its consumers by s[j]. */
static pare_status fold(pare_model *m, int64_t ln, const float *s, const int64_t *cons, int64_t ncons)
{
    pare_param *g = &m->params[m->nodes[ln].param[0]], *b = &m->params[m->nodes[ln].param[1]];
    PARE_TRY(pare_param_make_private(g));
    PARE_TRY(pare_param_make_private(b));
    int64_t C = g->shape[0];
    for (int64_t j = 0; j < C; j++) g->blob->data[j] /= s[j], b->blob->data[j] /= s[j];
    for (int64_t c = 0; c < ncons; c++) {
        pare_param *w = qi_weight(m, cons[c]);
        PARE_TRY(pare_param_make_private(w));
        int64_t N = w->shape[0], K = w->shape[1];
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < K; j++) w->blob->data[n * K + j] *= s[j];
    }
    return PARE_OK;
}

/* ---- smoothquant ---- */
static const pare_opt_spec sq_opts[] = {
    QI_LAYER_OPTS("*.*.*"),
    {"alpha", PARE_OPT_FLOAT, "0.5", 0, 1, NULL, "migration strength α in [0, 1]: 0 keeps activations, 1 moves all to weights"},
    {"level", PARE_OPT_ENUM, "O3", 0, 0, "O1|O2|O3|fp32", "O1 per-token dynamic, O2 per-tensor dynamic, O3 per-tensor static activations; fp32: smoothing only"},
    {"quantize_bmm", PARE_OPT_BOOL, "true", 0, 0, NULL, "run attention's Q·Kᵀ and P·V on int8 too (levels O1-O3)"},
    {"p_scale", PARE_OPT_ENUM, "row", 0, 0, "row|fixed", "quantize_bmm: the u8 scale of the softmax probabilities, max of each row/255 or the fixed 1/255"},
    QI_CALIB_OPTS("128"),
};
static const pare_schema sq_schema = {
    "smoothquant", "SmoothQuant: migrate activation outliers into weights (folded into LayerNorm), then W8A8",
    sq_opts, (int)(sizeof sq_opts / sizeof sq_opts[0])};

static pare_status sq_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    int64_t *idx, n, *lns = NULL, nln = 0, *cons = NULL;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    double alpha = pare_opt_num(o, "alpha");
    const char *level = pare_opt_str(o, "level");
    pare_status st = PARE_OK;
    lns = malloc(sizeof *lns * (size_t)m->nnodes);
    cons = malloc(sizeof *cons * (size_t)m->nnodes);
    float *s = NULL;
    if (!lns || !cons) st = pare_fail(PARE_ENOMEM, "out of memory");
    /* the LayerNorms in front of selected Linears, each once */
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        int64_t ln = qi_ln_before(m, idx[i]), k;
        if (ln < 0) continue;
        for (k = 0; k < nln && lns[k] != ln; k++) {}
        if (k == nln) lns[nln++] = ln;
    }
    /* calibrate the inputs of every consumer of those LayerNorms */
    int64_t *obs = malloc(sizeof *obs * (size_t)m->nnodes), nobs = 0;
    if (!obs && st == PARE_OK) st = pare_fail(PARE_ENOMEM, "out of memory");
    for (int64_t l = 0; st == PARE_OK && l < nln; l++) nobs += consumers(m, lns[l], obs + nobs);
    pare_calib c = {0};
    if (st == PARE_OK && nobs) st = qi_calibrate(&c, m, ctx, o, obs, nobs, PARE_CALIB_MINMAX);
    for (int64_t l = 0; st == PARE_OK && l < nln; l++) {
        int64_t nc = consumers(m, lns[l], cons);
        int64_t C = m->params[m->nodes[lns[l]].param[0]].shape[0];
        s = realloc(s, sizeof *s * (size_t)C);
        if (!s) {
            st = pare_fail(PARE_ENOMEM, "out of memory");
            break;
        }
        for (int64_t j = 0; j < C; j++) {
            float xa = pare_calib_find(&c, cons[0])->col_absmax[j], wa = 0;
            for (int64_t k = 1; k < nc; k++) xa = fmaxf(xa, pare_calib_find(&c, cons[k])->col_absmax[j]);
            for (int64_t k = 0; k < nc; k++) {
                const pare_param *w = qi_weight(m, cons[k]);
                for (int64_t r = 0; r < w->shape[0]; r++) wa = fmaxf(wa, fabsf(w->blob->data[r * C + j]));
            }
            double sj = pow(fmax(xa, 1e-5), alpha) / pow(fmax(wa, 1e-5), 1 - alpha);
            s[j] = (float)fmax(sj, 1e-5);
        }
        st = fold(m, lns[l], s, cons, nc);
    }
    pare_calib_free(&c);
    free(s), free(obs), free(lns), free(cons);
    if (st != PARE_OK || !strcmp(level, "fp32")) {
        free(idx);
        return st;
    }
    /* W8A8 at the chosen level, per-tensor weights */
    char method[64];
    snprintf(method, sizeof method, "smoothquant %s alpha=%.2f", level, alpha);
    pare_calib c2 = {0};
    if (!strcmp(level, "O3")) st = qi_calibrate(&c2, m, ctx, o, idx, n, PARE_CALIB_MINMAX);
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        pare_i8_act a = {!strcmp(level, "O1") ? PARE_ACT_DYN_TOKEN : PARE_ACT_DYN_TENSOR, 1, 0, 0, 0, 0, 0};
        if (!strcmp(level, "O3")) a = qi_static_act(c2.s[i].min, c2.s[i].max, 1);
        st = qi_set_i8(m, idx[i], 1, &a, method);
    }
    pare_calib_free(&c2);
    if (st == PARE_OK && pare_opt_bool(o, "quantize_bmm")) qi_mark_attention_i8(m, idx, n, !strcmp(pare_opt_str(o, "p_scale"), "fixed"));
    free(idx);
    return st;
}
const pare_pass pare_pass_smoothquant = {&sq_schema, sq_apply, 1};

/* ---- inject_outliers ---- */
static const pare_opt_spec io_opts[] = {
    {"layers", PARE_OPT_STRING, "*.*.ln*", 0, 0, NULL, "glob over LayerNorm names whose outputs get outlier channels"},
    {"channels", PARE_OPT_INT, "4", 1, 1e6, NULL, "outlier channels per LayerNorm"},
    {"factor", PARE_OPT_FLOAT, "30", 1, 1e6, NULL, "how much larger the outlier channels become"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "which channels (deterministic)"},
};
static const pare_schema io_schema = {
    "inject_outliers", "scale a few LayerNorm output channels up and the next Linear's columns down: same f32 "
                       "function, LLM-like activation outliers",
    io_opts, (int)(sizeof io_opts / sizeof io_opts[0])};

static pare_status io_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    const char *pat = pare_opt_str(o, "layers");
    int64_t ch = pare_opt_int(o, "channels"), found = 0;
    float f = (float)pare_opt_num(o, "factor");
    pare_rng rng;
    pare_rng_seed(&rng, (uint64_t)pare_opt_num(o, "seed"));
    int64_t *cons = malloc(sizeof *cons * (size_t)m->nnodes);
    float *s = NULL;
    pare_status st = cons ? PARE_OK : pare_fail(PARE_ENOMEM, "out of memory");
    for (int64_t i = 0; st == PARE_OK && i < m->nnodes; i++) {
        if ((m->nodes[i].op != PARE_OP_LAYERNORM && m->nodes[i].op != PARE_OP_ADD_LAYERNORM) ||
            !pare_name_match(pat, m->nodes[i].name))
            continue;
        int64_t nc = consumers(m, i, cons), C = m->params[m->nodes[i].param[0]].shape[0];
        if (!nc || !qi_ln_feeds_linears(m, i)) continue; /* ln_f feeds the pooling; post-LN also feeds the residual */
        found++;
        if (ch > C) {
            st = pare_fail(PARE_EINVAL, "channels=%lld but %s has only %lld", (long long)ch, m->nodes[i].name, (long long)C);
            break;
        }
        s = realloc(s, sizeof *s * (size_t)C);
        if (!s) {
            st = pare_fail(PARE_ENOMEM, "out of memory");
            break;
        }
        for (int64_t j = 0; j < C; j++) s[j] = 1;
        for (int64_t k = 0; k < ch;) { /* distinct channels */
            int64_t j = (int64_t)pare_rng_below(&rng, (uint64_t)C);
            if (s[j] == 1) s[j] = 1.0f / f, k++;
        }
        st = fold(m, i, s, cons, nc); /* γ /= (1/f): channel × f; W columns × (1/f) */
    }
    if (st == PARE_OK && !found) {
        char list[512] = "";
        size_t used = 0;
        for (int64_t i = 0; i < m->nnodes && used < sizeof list - 1; i++)
            if (m->nodes[i].op == PARE_OP_LAYERNORM || m->nodes[i].op == PARE_OP_ADD_LAYERNORM)
                used += (size_t)snprintf(list + used, sizeof list - used, used ? ", %s" : "%s", m->nodes[i].name);
        st = pare_fail(PARE_EINVAL, "layers='%s' matches no LayerNorm that feeds Linears alone (the model's: %s; a post-LN "
                           "block's LayerNorm also feeds the residual stream)", pat, list);
    }
    /* the same function in exact arithmetic, but a large factor (or the pass applied again and again)
     * overflows the LayerNorm gains: refuse a model that would compute Inf, naming the parameter */
    for (int64_t i = 0; st == PARE_OK && i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        int64_t bad = pare_first_nonfinite(p->blob->data, (int64_t)p->blob->n);
        if (bad >= 0)
            st = pare_fail(PARE_ENUMERIC, "inject_outliers: factor=%g makes %s[%lld] %s (applied repeatedly? each "
                           "application multiplies the gains again): choose a smaller factor",
                           (double)f, p->name, (long long)bad, isnan(p->blob->data[bad]) ? "NaN" : "Inf");
    }
    free(s), free(cons);
    return st;
}
const pare_pass pare_pass_inject_outliers = {&io_schema, io_apply, 0};
