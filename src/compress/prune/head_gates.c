/* head_gates.c — hard-concrete L0 gates on attention heads (Voita et al. 2019, "Analyzing Multi-Head
 * Self-Attention: Specialized Heads Do the Heavy Lifting, the Rest Can Be Pruned", §6; the gate of Louizos
 * et al. 2018): attaching the head_gate weight transform (graph/tf_headgate.c) to output projections, the
 * L0 penalty and its training hooks, and turning a gated model back into a plain one with fewer heads.
 * heads.h has the API. Deliberately not here: the gate's forward and backward (the transform) and the
 * choice of λ (experiments/voita_heads.lua sweeps it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "graph/transform.h"
#include "heads.h"

static const pare_opt_spec gate_opts[] = {
    {"lambda", PARE_OPT_FLOAT, "0.01", 0, 1e6, NULL, "weight of the L0 penalty lambda * sum_h P(z_h != 0), added to the loss"},
    {"gate_lr", PARE_OPT_FLOAT, "0.05", 0, 10, NULL, "the gates' own Adam learning rate (0: the model's optimizer and lr)"},
    {"init", PARE_OPT_FLOAT, "3", -20, 20, NULL, "initial log alpha of every gate (3: deterministic gate 1, the model unchanged)"},
    {"layers", PARE_OPT_STRING, "", 0, 0, NULL, "comma-separated globs on attention node names (\"\": every self- and cross-attention)"},
};
const pare_schema pare_head_gates_schema = {"head_gates", "hard-concrete L0 gates on attention heads (Voita et al. 2019): m:head_gates(opts)",
                                        gate_opts, (int)(sizeof gate_opts / sizeof gate_opts[0])};

static int is_attn(const pare_node *n) { return n->op == PARE_OP_ATTENTION || n->op == PARE_OP_CROSS_ATTENTION; }

/* The one Linear reading attention node a's output (its output projection), or -1 with a message. */
static int64_t out_proj(const pare_model *m, int64_t a, const char *doing)
{
    int64_t proj = -1, readers = 0;
    for (int64_t j = 0; j < m->nnodes; j++)
        for (int k = 0; k < m->nodes[j].nin; k++)
            if (m->nodes[j].in[k] == m->nodes[a].out) {
                readers++;
                if (m->nodes[j].op == PARE_OP_LINEAR && k == 0) proj = j;
            }
    if (proj < 0 || readers != 1)
        return pare_fail(PARE_EINVAL, "%s: the output of '%s' is read by %lld node(s), not by one Linear (the output "
                         "projection the gates act on)", doing, m->nodes[a].name, (long long)readers), -1;
    const pare_param *w = &m->params[m->nodes[proj].param[0]];
    if (w->format != PARE_FMT_F32 || w->q)
        return pare_fail(PARE_EINVAL, "%s: '%s' (the output projection of '%s') is stored as %s; gate the f32 model, "
                         "quantize after", doing, m->nodes[proj].name, m->nodes[a].name, pare_format_label(w)), -1;
    return proj;
}

/* The attention node whose output Linear `proj` reads, or -1. */
static int64_t attn_of(const pare_model *m, int64_t proj)
{
    int64_t p = m->values[m->nodes[proj].in[0]].producer;
    return p >= 0 && is_attn(&m->nodes[p]) ? p : -1;
}

static int matches(const char *layers, const char *name)
{
    if (!layers || !*layers) return 1;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", layers);
    for (char *save = NULL, *g = strtok_r(buf, ",", &save); g; g = strtok_r(NULL, ",", &save))
        if (pare_name_match(g, name)) return 1;
    return 0;
}

pare_status pare_head_gates_attach(pare_model *m, double lambda, double gate_lr, double init_log_alpha, const char *layers)
{
    if (!(gate_lr >= 0) || gate_lr > 10)
        return pare_fail(PARE_EINVAL, "head gates: gate_lr=%g must be in [0, 10] (0: the model's optimizer)", gate_lr);
    if (!(lambda >= 0) || !isfinite(lambda))
        return pare_fail(PARE_EINVAL, "head gates: lambda=%g must be a finite number >= 0", lambda);
    if (!isfinite(init_log_alpha) || fabs(init_log_alpha) > 20)
        return pare_fail(PARE_EINVAL, "head gates: init=%g (the initial log alpha) must be in [-20, 20]", init_log_alpha);
    int found = 0;
    char names[256] = "";
    size_t used = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *a = &m->nodes[i];
        if (!is_attn(a)) continue;
        if (used < sizeof names - 1) used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", a->name);
        if (!matches(layers, a->name)) continue;
        int64_t proj = out_proj(m, i, "head gates");
        if (proj < 0) return PARE_EINVAL;
        const pare_transform *have = pare_node_transform(&m->nodes[proj], PARE_TF_WEIGHT);
        if (have)
            return pare_fail(PARE_EINVAL, "head gates on '%s': its output projection '%s' already carries a %s transform "
                             "(one per weight: prune the gated model first, or bake the mask)", a->name,
                             m->nodes[proj].name, pare_tf_name(have->kind));
        int64_t H = a->a.heads, K = m->params[m->nodes[proj].param[0]].shape[1];
        if (H < 1 || K % H)
            return pare_fail(PARE_EINVAL, "head gates on '%s': %lld heads do not split the %lld columns of '%s'", a->name,
                             (long long)H, (long long)K, m->nodes[proj].name);
        char ln[PARE_NAME_MAX + 32], sn[PARE_NAME_MAX + 32];
        snprintf(ln, sizeof ln, "%s.gate_log_alpha", a->name);
        snprintf(sn, sizeof sn, "%s.gate_state", a->name);
        if (strlen(sn) >= PARE_NAME_MAX)
            return pare_fail(PARE_EINVAL, "head gates on '%s': the name %s is longer than %d characters", a->name, sn, PARE_NAME_MAX - 1);
        if (pare_model_find_param(m, ln) >= 0 || pare_model_find_param(m, sn) >= 0)
            return pare_fail(PARE_EINVAL, "head gates on '%s': the model already has a parameter %s", a->name, ln);
        int64_t s1[1] = {H}, s2[1] = {H + 2};
        int lp = pare_model_add_param(m, ln, 1, s1, 1);
        int sp = lp < 0 ? -1 : pare_model_add_param(m, sn, 1, s2, 0);
        if (lp < 0 || sp < 0) return PARE_ENOMEM;
        for (int64_t h = 0; h < H; h++) m->params[lp].blob->data[h] = (float)init_log_alpha;
        m->params[sp].blob->data[0] = (float)lambda;
        m->params[sp].blob->data[1] = (float)gate_lr;
        for (int64_t h = 0; h < H; h++) m->params[sp].blob->data[2 + h] = 0.5f;
        pare_transform t = {.kind = PARE_TF_HEAD_GATE, .operand = PARE_TF_WEIGHT, .aux = {lp, sp}};
        PARE_TRY(pare_node_attach(m, proj, &t));
        found++;
    }
    if (!found)
        return pare_fail(PARE_EINVAL, "head gates: layers='%s' matches no attention layer (the model's: %s)", layers ? layers : "",
                         *names ? names : "none");
    return PARE_OK;
}

int pare_head_gates_count(const pare_model *m)
{
    int n = 0;
    for (int64_t i = 0; i < m->nnodes; i++) n += pare_node_find_transform(&m->nodes[i], PARE_TF_HEAD_GATE) != NULL;
    return n;
}

double pare_head_gates_penalty(pare_model *m, int add_grad)
{
    double total = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_transform *t = pare_node_find_transform(&m->nodes[i], PARE_TF_HEAD_GATE);
        if (!t) continue;
        pare_param *lp = &m->params[t->aux[0]];
        double lambda = m->params[t->aux[1]].blob->data[0];
        for (int64_t h = 0; h < pare_param_numel(lp); h++) {
            double dp;
            total += lambda * pare_hc_nonzero(lp->blob->data[h], &dp);
            if (add_grad && lp->grad) lp->grad[h] += (float)(lambda * dp);
        }
    }
    return total;
}

static pare_status gates_begin(void *ud, pare_model *m, int64_t steps)
{
    (void)steps;
    pare_head_gate_run *r = ud;
    int64_t n = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_transform *t = pare_node_find_transform(&m->nodes[i], PARE_TF_HEAD_GATE);
        if (t) n += pare_param_numel(&m->params[t->aux[0]]);
    }
    r->n = n, r->t = 0;
    r->grad = calloc((size_t)(n ? n : 1), sizeof(float));
    r->m = calloc((size_t)(n ? n : 1), sizeof(float));
    r->v = calloc((size_t)(n ? n : 1), sizeof(float));
    if (!r->grad || !r->m || !r->v) return pare_fail(PARE_ENOMEM, "head gates: out of memory");
    return PARE_OK;
}

/* The penalty and its gradient; gates with their own rate: their gradients moved out of the model's step */
static pare_status gates_after_backward(void *ud, pare_model *m, int64_t step, float *extra_loss)
{
    (void)step;
    pare_head_gate_run *r = ud;
    *extra_loss += (float)pare_head_gates_penalty(m, 1);
    int64_t k = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_transform *t = pare_node_find_transform(&m->nodes[i], PARE_TF_HEAD_GATE);
        if (!t) continue;
        pare_param *lp = &m->params[t->aux[0]];
        int own = m->params[t->aux[1]].blob->data[1] > 0;
        for (int64_t h = 0; h < pare_param_numel(lp) && k < r->n; h++, k++) {
            r->grad[k] = own && lp->grad ? lp->grad[h] : 0.0f;
            if (own && lp->grad) lp->grad[h] = 0; /* AdamW: zero gradient and zero moments leave it in place */
        }
    }
    return PARE_OK;
}

static pare_status gates_after_step(void *ud, pare_model *m, int64_t step)
{
    (void)step;
    pare_head_gate_run *r = ud;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    r->t++;
    double bc1 = 1 - pow(b1, (double)r->t), bc2 = 1 - pow(b2, (double)r->t);
    int64_t k = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_transform *t = pare_node_find_transform(&m->nodes[i], PARE_TF_HEAD_GATE);
        if (!t) continue;
        pare_param *lp = &m->params[t->aux[0]];
        double lr = m->params[t->aux[1]].blob->data[1];
        for (int64_t h = 0; h < pare_param_numel(lp) && k < r->n; h++, k++) {
            if (lr <= 0) continue;
            double g = r->grad[k];
            r->m[k] = (float)(b1 * r->m[k] + (1 - b1) * g);
            r->v[k] = (float)(b2 * r->v[k] + (1 - b2) * g * g);
            double step_h = lr * (r->m[k] / bc1) / (sqrt(r->v[k] / bc2) + eps);
            double la = lp->blob->data[h] - step_h;
            lp->blob->data[h] = (float)(la < -20 ? -20 : la > 20 ? 20 : la);
        }
    }
    return PARE_OK;
}

static void gates_end(void *ud, pare_model *m)
{
    (void)m;
    pare_head_gate_run *r = ud;
    free(r->grad), free(r->m), free(r->v);
    r->grad = r->m = r->v = NULL;
}

pare_train_hooks pare_head_gates_hooks(pare_head_gate_run *run)
{
    return (pare_train_hooks){run, gates_begin, gates_after_backward, gates_after_step, gates_end};
}

pare_status pare_head_gates_values(const pare_model *m, pare_head_scores *out)
{
    memset(out, 0, sizeof *out);
    int n = 0, hmax = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_transform *t = pare_node_find_transform(&m->nodes[i], PARE_TF_HEAD_GATE);
        if (!t) continue;
        n++;
        int64_t H = pare_param_numel(&m->params[t->aux[0]]);
        if (H > hmax) hmax = (int)H;
    }
    if (!n) return pare_fail(PARE_EINVAL, "head gates: the model has no gated layer (attach gates first)");
    out->n = n, out->hmax = hmax;
    out->node = calloc((size_t)n, sizeof *out->node);
    out->heads = calloc((size_t)n, sizeof *out->heads);
    out->score = calloc((size_t)n * (size_t)hmax, sizeof *out->score);
    if (!out->node || !out->heads || !out->score) {
        pare_head_scores_free(out);
        return pare_fail(PARE_ENOMEM, "head gates: out of memory");
    }
    int l = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_transform *t = pare_node_find_transform(&m->nodes[i], PARE_TF_HEAD_GATE);
        if (!t) continue;
        const pare_param *lp = &m->params[t->aux[0]];
        out->node[l] = attn_of(m, i);
        out->heads[l] = (int)pare_param_numel(lp);
        for (int h = 0; h < out->heads[l]; h++) out->score[l * hmax + h] = pare_hc_gate(lp->blob->data[h], 0.5, 0, NULL);
        l++;
    }
    return PARE_OK;
}

/* 0: encoder self-attention, 1: decoder self-attention, 2: cross-attention */
static int attn_kind(const pare_node *a)
{
    if (a->op == PARE_OP_CROSS_ATTENTION) return 2;
    return strncmp(a->name, "dec.", 4) == 0 ? 1 : 0;
}

pare_status pare_head_gates_prune(pare_model **out, const pare_model *m, int64_t kept[3])
{
    *out = NULL;
    if (kept) kept[0] = kept[1] = kept[2] = 0;
    if (!pare_head_gates_count(m)) return pare_fail(PARE_EINVAL, "pruning gated heads: the model has no gated layer");
    pare_model *c = pare_model_clone(m);
    if (!c) return pare_fail(PARE_ENOMEM, "pruning gated heads: out of memory");
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < c->nnodes; i++) {
        const pare_transform *t = pare_node_find_transform(&c->nodes[i], PARE_TF_HEAD_GATE);
        if (!t) continue;
        int64_t a = attn_of(c, i);
        if (a < 0) {
            st = pare_fail(PARE_EINVAL, "pruning gated heads: '%s' does not read an attention layer's output", c->nodes[i].name);
            break;
        }
        const float *la = c->params[t->aux[0]].blob->data;
        int H = (int)pare_param_numel(&c->params[t->aux[0]]);
        pare_param *w = &c->params[c->nodes[i].param[0]];
        int64_t N = w->shape[0], K = w->shape[1], D = K / H;
        double *z = malloc(sizeof *z * (size_t)H);
        int *gone = malloc(sizeof *gone * (size_t)H), ngone = 0, best = 0;
        if (!z || !gone || (st = pare_param_make_private(w)) != PARE_OK) {
            free(z), free(gone);
            if (st == PARE_OK) st = pare_fail(PARE_ENOMEM, "pruning gated heads: out of memory");
            break;
        }
        for (int h = 0; h < H; h++) {
            z[h] = pare_hc_gate(la[h], 0.5, 0, NULL);
            if (la[h] > la[best]) best = h;
        }
        for (int64_t r = 0; r < N; r++) /* fold: the head's output times z_h is its columns of W_o times z_h */
            for (int64_t k = 0; k < K; k++) w->blob->data[r * K + k] *= (float)z[k / D];
        for (int h = 0; h < H; h++)
            if (z[h] == 0.0 && h != best) gone[ngone++] = h;
            else if (z[h] > 0.0 && kept) kept[attn_kind(&c->nodes[a])]++;
        pare_node_detach(c, i, PARE_TF_WEIGHT);
        if (ngone) st = pare_model_drop_heads(c, a, gone, ngone);
        free(z), free(gone);
    }
    if (st == PARE_OK) st = pare_model_compact(c); /* the gates' parameters */
    if (st == PARE_OK) st = pare_model_check(c);
    if (st != PARE_OK) {
        pare_model_free(c);
        return st;
    }
    *out = c;
    return PARE_OK;
}
