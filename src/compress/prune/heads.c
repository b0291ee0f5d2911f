/* heads.c — head importance (Michel et al. 2019) from the output projections' weights and gradients;
 * heads.h has the derivation. */
#include "heads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "graph/format.h"
#include "train/train.h"

void pare_head_scores_free(pare_head_scores *s)
{
    free(s->node), free(s->heads), free(s->score);
    memset(s, 0, sizeof *s);
}

typedef struct head_run {
    pare_head_scores *s;
    int *wparam;   /* (n) the output projection's weight parameter of each attention layer */
    int64_t *D;    /* (n) columns per head */
} head_run;

static pare_status add_batch(void *ud, const pare_model *g, float loss, int64_t first, int64_t B)
{
    (void)loss, (void)first;
    head_run *r = ud;
    for (int l = 0; l < r->s->n; l++) {
        const pare_param *p = &g->params[r->wparam[l]];
        const float *W = p->blob->data, *dW = p->grad;
        int64_t N = p->shape[0], K = p->shape[1], D = r->D[l];
        for (int h = 0; h < r->s->heads[l]; h++) {
            double sum = 0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t d = h * D; d < (h + 1) * D && d < K; d++) sum += (double)W[i * K + d] * (double)dW[i * K + d];
            r->s->score[l * r->s->hmax + h] += fabs(sum) * (double)B; /* |∂(batch mean)/∂ξ| weighted by its examples */
        }
    }
    return PARE_OK;
}

pare_status pare_head_importance(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                                 int normalize, pare_head_scores *out)
{
    memset(out, 0, sizeof *out);
    int na = 0, hmax = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION || m->nodes[i].op == PARE_OP_CROSS_ATTENTION) {
            na++;
            if (m->nodes[i].a.heads > hmax) hmax = m->nodes[i].a.heads;
        }
    if (!na) return pare_fail(PARE_EINVAL, "head importance: the model has no attention layers");
    out->n = na, out->hmax = hmax;
    out->node = calloc((size_t)na, sizeof *out->node);
    out->heads = calloc((size_t)na, sizeof *out->heads);
    out->score = calloc((size_t)na * (size_t)hmax, sizeof *out->score);
    head_run r = {out, calloc((size_t)na, sizeof(int)), calloc((size_t)na, sizeof(int64_t))};
    pare_status st = out->node && out->heads && out->score && r.wparam && r.D
                         ? PARE_OK
                         : pare_fail(PARE_ENOMEM, "head importance: out of memory");
    int l = 0;
    for (int64_t i = 0; st == PARE_OK && i < m->nnodes; i++) {
        const pare_node *a = &m->nodes[i];
        if (a->op != PARE_OP_ATTENTION && a->op != PARE_OP_CROSS_ATTENTION) continue;
        /* the one Linear that reads the heads' output */
        int64_t proj = -1, readers = 0;
        for (int64_t j = 0; j < m->nnodes; j++)
            for (int k = 0; k < m->nodes[j].nin; k++)
                if (m->nodes[j].in[k] == a->out) {
                    readers++;
                    if (m->nodes[j].op == PARE_OP_LINEAR && k == 0) proj = j;
                }
        if (proj < 0 || readers != 1) {
            st = pare_fail(PARE_EINVAL, "head importance: the output of '%s' is read by %lld node(s), not by one Linear "
                           "(the output projection the score is taken from)", a->name, (long long)readers);
            break;
        }
        const pare_param *w = &m->params[m->nodes[proj].param[0]];
        int64_t C = m->values[a->out].cols;
        if (w->format != PARE_FMT_F32 || w->shape[1] != C || C % a->a.heads) {
            st = pare_fail(PARE_EINVAL, "head importance: '%s' (the output projection of '%s') is stored as %s with "
                           "%lld input columns; it needs an f32 weight reading the %lld head columns",
                           m->nodes[proj].name, a->name, pare_format_name(w->format), (long long)w->shape[1], (long long)C);
            break;
        }
        out->node[l] = i, out->heads[l] = a->a.heads;
        r.wparam[l] = m->nodes[proj].param[0], r.D[l] = C / a->a.heads;
        l++;
    }
    if (st == PARE_OK) st = pare_grad_batches(m, d, first, n, batch, add_batch, &r);
    if (st == PARE_OK)
        for (l = 0; l < na; l++) {
            double *s = out->score + (size_t)l * (size_t)hmax, norm = 0;
            for (int h = 0; h < out->heads[l]; h++) s[h] /= (double)n, norm += s[h] * s[h];
            if (normalize && norm > 0)
                for (int h = 0; h < out->heads[l]; h++) s[h] /= sqrt(norm);
        }
    free(r.wparam), free(r.D);
    if (st != PARE_OK) pare_head_scores_free(out);
    return st;
}
