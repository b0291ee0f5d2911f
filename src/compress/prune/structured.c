/* structured.c — FFN neuron importance (Taylor gate gradient, up-row magnitude) and whole-layer importance
 * (loss increase on removal); structured.h has the derivation. The passes that use them: prune_struct.c. */
#include "structured.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "train/train.h"

void pare_neuron_scores_free(pare_neuron_scores *s)
{
    for (int l = 0; s->score && l < s->n; l++) free(s->score[l]);
    free(s->node), free(s->down), free(s->width), free(s->score);
    memset(s, 0, sizeof *s);
}

void pare_layer_scores_free(pare_layer_scores *s)
{
    free(s->prefix), free(s->score);
    memset(s, 0, sizeof *s);
}

/* The Linear that reads the neurons of Linear `up`: through single-input, parameter-free ops (activation,
 * dropout) of the same shape, a Linear reading them as its input. -1 with a message otherwise. */
static int64_t ffn_down(const pare_model *m, int64_t up)
{
    int v = m->nodes[up].out;
    for (int hop = 0; hop < 8; hop++) {
        int64_t reader = -1, readers = 0;
        for (int64_t j = 0; j < m->nnodes; j++)
            for (int k = 0; k < m->nodes[j].nin; k++)
                if (m->nodes[j].in[k] == v) readers++, reader = j;
        const pare_node *r = readers == 1 ? &m->nodes[reader] : NULL;
        if (r && r->op == PARE_OP_LINEAR && r->in[0] == v) return reader;
        if (!r || r->nin != 1 || r->nparam || m->values[r->out].cols != m->values[v].cols) {
            pare_fail(PARE_EINVAL, "'%s' does not feed one down projection: its neurons (value of %lld columns) are read "
                      "by %lld node(s)%s%s (neuron pruning needs up -> activation -> down, e.g. layers=\"*.ffn.up\")",
                      m->nodes[up].name, (long long)m->values[v].cols, (long long)readers, r ? ", first " : "",
                      r ? r->name : "");
            return -1;
        }
        v = r->out;
    }
    pare_fail(PARE_EINVAL, "'%s': no down projection within 8 elementwise ops", m->nodes[up].name);
    return -1;
}

static pare_status need_f32(const pare_model *m, int64_t node, const char *what)
{
    const pare_param *w = &m->params[m->nodes[node].param[0]];
    if (w->format != PARE_FMT_F32)
        return pare_fail(PARE_EINVAL, "%s: '%s' is stored as %s; score the f32 model, then quantize", what,
                         m->nodes[node].name, pare_format_name(w->format));
    return PARE_OK;
}

typedef struct neuron_run { pare_neuron_scores *s; } neuron_run;

static pare_status add_neuron_batch(void *ud, const pare_model *g, float loss, int64_t first, int64_t B)
{
    (void)loss, (void)first;
    pare_neuron_scores *s = ((neuron_run *)ud)->s;
    for (int l = 0; l < s->n; l++) {
        const pare_param *p = &g->params[g->nodes[s->down[l]].param[0]];
        const float *W = p->blob->data, *dW = p->grad; /* (C, F) */
        int64_t N = p->shape[0], F = p->shape[1];
        for (int64_t j = 0; j < F; j++) {
            double sum = 0;
            for (int64_t i = 0; i < N; i++) sum += (double)W[i * F + j] * (double)dW[i * F + j];
            s->score[l][j] += fabs(sum) * (double)B; /* |∂(batch mean)/∂ξ_j| weighted by its examples */
        }
    }
    return PARE_OK;
}

pare_status pare_neuron_importance(const pare_model *m, const char *layers, pare_neuron_criterion c, const pare_dataset *d,
                                   int64_t first, int64_t n, int64_t batch, pare_neuron_scores *out)
{
    memset(out, 0, sizeof *out);
    if (c == PARE_NEURON_TAYLOR && !d)
        return pare_fail(PARE_EINVAL, "neuron importance: criterion=taylor needs data (calib=<task>); magnitude needs none");
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), k = 0;
    if (!idx) return pare_fail(PARE_ENOMEM, "neuron importance: out of memory");
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR && pare_name_match(layers, m->nodes[i].name)) idx[k++] = i;
    if (!k) {
        free(idx);
        return pare_fail(PARE_EINVAL, "neuron importance: layers='%s' matches no Linear layer (FFN up projections are "
                         "named like enc.0.ffn.up: layers=\"*.ffn.up\")", layers);
    }
    out->n = (int)k;
    out->node = calloc((size_t)k, sizeof *out->node);
    out->down = calloc((size_t)k, sizeof *out->down);
    out->width = calloc((size_t)k, sizeof *out->width);
    out->score = calloc((size_t)k, sizeof *out->score);
    pare_status st = out->node && out->down && out->width && out->score ? PARE_OK
                                                                         : pare_fail(PARE_ENOMEM, "neuron importance: out of memory");
    for (int l = 0; st == PARE_OK && l < out->n; l++) {
        int64_t up = idx[l], down = ffn_down(m, up);
        if (down < 0) { st = PARE_EINVAL; break; }
        if ((st = need_f32(m, up, "neuron importance")) != PARE_OK || (st = need_f32(m, down, "neuron importance")) != PARE_OK)
            break;
        const pare_param *w = &m->params[m->nodes[up].param[0]]; /* (F, C) */
        out->node[l] = up, out->down[l] = down, out->width[l] = w->shape[0];
        out->score[l] = calloc((size_t)w->shape[0], sizeof(double));
        if (!out->score[l]) { st = pare_fail(PARE_ENOMEM, "neuron importance: out of memory"); break; }
        if (c == PARE_NEURON_MAGNITUDE) {
            const float *W = w->blob->data;
            for (int64_t j = 0; j < w->shape[0]; j++) {
                double s2 = 0;
                for (int64_t q = 0; q < w->shape[1]; q++) s2 += (double)W[j * w->shape[1] + q] * W[j * w->shape[1] + q];
                out->score[l][j] = sqrt(s2);
            }
        }
    }
    free(idx);
    if (st == PARE_OK && c == PARE_NEURON_TAYLOR) {
        neuron_run r = {out};
        st = pare_grad_batches(m, d, first, n, batch, add_neuron_batch, &r);
        for (int l = 0; st == PARE_OK && l < out->n; l++)
            for (int64_t j = 0; j < out->width[l]; j++) out->score[l][j] /= (double)n;
    }
    if (st != PARE_OK) pare_neuron_scores_free(out);
    return st;
}

/* ---- layers ---- */

pare_status pare_range_loss(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch, double *loss)
{
    if (first < 0 || n < 1 || first + n > d->n)
        return pare_fail(PARE_EINVAL, "examples %lld..%lld are outside %s (%lld examples)", (long long)first,
                         (long long)(first + n - 1), d->name, (long long)d->n);
    pare_dataset v = *d; /* a view of the range: every per-example array offset */
    int64_t per_label = d->kind == PARE_TASK_LM ? d->T : 1;
    v.n = n;
    v.tokens = d->tokens + first * d->T, v.lengths = d->lengths + first, v.labels = d->labels + first * per_label;
    if (d->types) v.types = d->types + first * d->T;
    if (d->targets) v.targets = d->targets + first;
    if (d->src_tokens) v.src_tokens = d->src_tokens + first * d->S;
    if (d->src_lengths) v.src_lengths = d->src_lengths + first;
    pare_eval_result e;
    PARE_TRY(pare_evaluate(m, &v, batch < n ? batch : n, &e));
    if (!isfinite(e.loss)) return pare_fail(PARE_ENUMERIC, "the loss over %s examples %lld.. is not finite", d->name, (long long)first);
    *loss = e.loss;
    return PARE_OK;
}

/* "<p>.<l>" of a self-attention node named "<p>.<l>.<rest>" into buf; 0 if the name has no such shape. */
static int layer_prefix(const char *name, char *buf, size_t n)
{
    const char *dot = strchr(name, '.');
    if (!dot || dot[1] < '0' || dot[1] > '9') return 0;
    const char *e = dot + 1;
    while (*e >= '0' && *e <= '9') e++;
    if (*e != '.') return 0;
    snprintf(buf, n, "%.*s", (int)(e - name), name);
    return 1;
}

pare_status pare_layer_importance(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                                  pare_layer_scores *out)
{
    memset(out, 0, sizeof *out);
    int na = 0;
    for (int64_t i = 0; i < m->nnodes; i++) na += m->nodes[i].op == PARE_OP_ATTENTION;
    out->prefix = calloc((size_t)(na ? na : 1), sizeof *out->prefix);
    out->score = calloc((size_t)(na ? na : 1), sizeof *out->score);
    if (!out->prefix || !out->score) {
        pare_layer_scores_free(out);
        return pare_fail(PARE_ENOMEM, "layer importance: out of memory");
    }
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION && layer_prefix(m->nodes[i].name, out->prefix[out->n], PARE_NAME_MAX)) out->n++;
    if (!out->n) {
        pare_layer_scores_free(out);
        return pare_fail(PARE_EINVAL, "layer importance: the model has no layers named <prefix>.<number>.* with self-attention");
    }
    pare_model *base = pare_model_clone(m);
    pare_status st = base ? pare_range_loss(base, d, first, n, batch, &out->base) : PARE_ENOMEM;
    pare_model_free(base);
    for (int l = 0; st == PARE_OK && l < out->n; l++) {
        char pat[PARE_NAME_MAX + 4];
        snprintf(pat, sizeof pat, "%s.*", out->prefix[l]);
        pare_model *c = pare_model_clone(m);
        double loss = 0;
        st = c ? pare_model_remove_nodes(c, pat) : PARE_ENOMEM;
        if (st == PARE_OK) st = pare_range_loss(c, d, first, n, batch, &loss);
        pare_model_free(c);
        out->score[l] = loss - out->base;
    }
    if (st != PARE_OK) pare_layer_scores_free(out);
    return st;
}
