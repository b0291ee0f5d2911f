/* head_lrp.c — head relevance by layer-wise relevance propagation (Voita et al. 2019, "Analyzing Multi-Head
 * Self-Attention", §4.2, after Ding et al. 2017 and Bach et al. 2015): the relevance of the top-1 logit
 * propagated back through the graph with the ε-rule (lrp.h) down to every attention node's output, a head's
 * relevance the sum over its columns and the example's rows, averaged over examples and normalised per
 * layer to sum to 1.
 *
 * The forward is the model's own: pare_capture copies every node output and each attention node's
 * probabilities ("<node>#att") for a chunk of examples; the propagation then runs here, example by
 * example, over the nodes in reverse order (a straight-line graph: every reader of a value comes after its
 * producer, so a value's relevance is complete when its producer is reached).
 *
 * Start: a classifier's top-1 logit keeps its value as relevance (the other logits 0); a per-token model
 * (LM, decoder) does that at every valid position t < length and divides by the length (the mean over
 * target tokens, as Voita et al. average over the translation's tokens).
 *
 * Entry points: pare_head_relevance (heads.h) and the rules of lrp.h.
 * Deliberately not here: relevance through non-dense attention variants (they keep no probabilities),
 * quantized formats (relevance is taken on the f32 model) and bf16/f16 casts; these are errors naming the node.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/status.h"
#include "attn/attn.h"
#include "graph/format.h"
#include "graph/ops.h"
#include "graph/transform.h"
#include "heads.h"
#include "lrp.h"

/* ---- the rules (lrp.h) ---- */

void pare_lrp_linear(double *Rx, const double *Rz, const float *x, const float *W, const float *z, int64_t M,
                     int64_t N, int64_t K, double eps)
{
    double *c = malloc((size_t)K * sizeof *c);
    if (!c) return; /* callers allocate far more than K doubles first; see lrp_example's check */
    for (int64_t r = 0; r < M; r++) {
        for (int64_t k = 0; k < K; k++) c[k] = 0;
        for (int64_t j = 0; j < N; j++) {
            double s = Rz[r * N + j];
            if (s == 0) continue;
            s /= pare_lrp_stab(z[r * N + j], eps);
            const float *w = W + j * K;
            for (int64_t k = 0; k < K; k++) c[k] += (double)w[k] * s;
        }
        for (int64_t k = 0; k < K; k++) Rx[r * K + k] += (double)x[r * K + k] * c[k];
    }
    free(c);
}

void pare_lrp_layernorm(double *Rx, const double *Ry, const float *x, const float *y, const float *gain, int64_t M,
                        int64_t C, double ln_eps, double eps)
{
    for (int64_t r = 0; r < M; r++) {
        const float *xr = x + r * C;
        double mu = 0, var = 0;
        for (int64_t i = 0; i < C; i++) mu += xr[i];
        mu /= (double)C;
        for (int64_t i = 0; i < C; i++) var += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        double rstd = 1.0 / sqrt(var / (double)C + ln_eps), gmean = 0;
        /* g_j = γ_j r s_j; c_i = Σ_j w_ji s_j = g_i − mean(g) */
        for (int64_t j = 0; j < C; j++) gmean += (double)gain[j] * rstd * Ry[r * C + j] / pare_lrp_stab(y[r * C + j], eps);
        gmean /= (double)C;
        for (int64_t i = 0; i < C; i++) {
            double g = (double)gain[i] * rstd * Ry[r * C + i] / pare_lrp_stab(y[r * C + i], eps);
            Rx[r * C + i] += (double)xr[i] * (g - gmean);
        }
    }
}

void pare_lrp_add(double *Ra, double *Rb, const double *Rz, const float *a, const float *b, const float *z, int64_t n,
                  double eps)
{
    for (int64_t i = 0; i < n; i++) {
        if (Rz[i] == 0) continue;
        double s = Rz[i] / pare_lrp_stab(z[i], eps);
        if (Ra) Ra[i] += (double)a[i] * s;
        if (Rb) Rb[i] += (double)b[i] * s;
    }
}

void pare_lrp_attention(double *Rv, const double *Rout, const float *P, const float *v, int64_t vstride,
                        const float *out, int64_t H, int64_t Tq, int64_t Tk, int64_t D, double eps)
{
    int64_t C = H * D;
    for (int64_t h = 0; h < H; h++)
        for (int64_t t = 0; t < Tq; t++) {
            const float *p = P + (h * Tq + t) * Tk;
            for (int64_t d = 0; d < D; d++) {
                int64_t c = h * D + d;
                if (Rout[t * C + c] == 0) continue;
                double s = Rout[t * C + c] / pare_lrp_stab(out[t * C + c], eps);
                for (int64_t k = 0; k < Tk; k++)
                    if (p[k] != 0) Rv[k * vstride + c] += (double)p[k] * (double)v[k * vstride + c] * s;
            }
        }
}

/* ---- propagation through a model ---- */

typedef struct lrp_run {
    const pare_model *m;
    const pare_dataset *d;
    double eps;
    int nv;              /* values */
    int *cap;            /* (nv) index into caps of a value's capture, -1 none */
    int *att;            /* (nnodes) index into caps of an attention node's "#att", -1 none */
    float **W;           /* (nnodes) a Linear's effective weight when it carries transforms (owned), else NULL */
    pare_captured *caps; /* (k) this chunk's captures */
    int64_t chunk;       /* examples in this chunk */
    double **R;          /* (nv) relevance of one example's value, NULL where none reached it */
    int64_t *len;        /* (nv) elements per example */
} lrp_run;

/* The example-e slice of a captured value */
static const float *cap_of(const lrp_run *r, int v, int64_t e)
{
    const pare_captured *c = &r->caps[r->cap[v]];
    return c->data + e * (c->rows * c->cols / r->chunk);
}

static double *rel(lrp_run *r, int v)
{
    if (!r->R[v]) r->R[v] = calloc((size_t)r->len[v], sizeof(double));
    return r->R[v];
}

/* Propagate example e (dataset index ex) of the chunk; scores += each head's relevance. */
static pare_status lrp_example(lrp_run *r, int64_t e, int64_t ex, pare_head_scores *s)
{
    const pare_model *m = r->m;
    for (int v = 0; v < r->nv; v++) free(r->R[v]), r->R[v] = NULL;
    /* start: the top-1 logit (at every valid position for per-token logits) */
    const float *z = cap_of(r, m->logits, e);
    int64_t V = m->values[m->logits].cols, rows = r->len[m->logits] / V, T = rows;
    if (rows > 1) T = r->d->lengths[ex] < rows ? r->d->lengths[ex] : rows;
    double *R0 = rel(r, m->logits);
    if (!R0) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
    for (int64_t t = 0; t < T; t++) {
        int64_t best = 0;
        for (int64_t j = 1; j < V; j++)
            if (z[t * V + j] > z[t * V + best]) best = j;
        R0[t * V + best] = (double)z[t * V + best] / (double)T;
    }
    int l = s->n - 1;
    for (int64_t i = m->nnodes - 1; i >= 0; i--) {
        const pare_node *n = &m->nodes[i];
        double *Ro = r->R[n->out];
        if (n->op == PARE_OP_ATTENTION || n->op == PARE_OP_CROSS_ATTENTION) {
            while (l >= 0 && s->node[l] != i) l--;
            if (l >= 0 && Ro) {
                int64_t C = m->values[n->out].cols, H = n->a.heads, D = C / H, Tq = r->len[n->out] / C;
                for (int64_t h = 0; h < H; h++) {
                    double sum = 0;
                    for (int64_t t = 0; t < Tq; t++)
                        for (int64_t dd = 0; dd < D; dd++) sum += Ro[t * C + h * D + dd];
                    s->score[l * s->hmax + h] += sum;
                }
            }
        }
        if (!Ro) continue;
        const float *y = cap_of(r, n->out, e);
        int64_t out_n = r->len[n->out];
        switch (n->op) {
        case PARE_OP_LINEAR: {
            int in = n->in[0];
            const pare_param *w = &m->params[n->param[0]];
            int64_t N = w->shape[0], K = w->shape[1], M = r->len[in] / K;
            double *Ri = rel(r, in);
            if (!Ri) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
            pare_lrp_linear(Ri, Ro, cap_of(r, in, e), r->W[i] ? r->W[i] : w->blob->data, y, M, N, K, r->eps);
            break;
        }
        case PARE_OP_LAYERNORM: {
            int in = n->in[0];
            int64_t C = m->values[in].cols;
            double *Ri = rel(r, in);
            if (!Ri) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
            pare_lrp_layernorm(Ri, Ro, cap_of(r, in, e), y, m->params[n->param[0]].blob->data, out_n / C, C,
                               n->a.eps > 0 ? n->a.eps : 1e-5, r->eps);
            break;
        }
        case PARE_OP_ADD: {
            double *Ra = rel(r, n->in[0]), *Rb = rel(r, n->in[1]);
            if (!Ra || !Rb) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
            pare_lrp_add(Ra, Rb, Ro, cap_of(r, n->in[0], e), cap_of(r, n->in[1], e), y, out_n, r->eps);
            break;
        }
        case PARE_OP_POSADD: { /* x + pos: the positions' share is dropped */
            double *Ra = rel(r, n->in[0]);
            if (!Ra) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
            const float *x = cap_of(r, n->in[0], e);
            for (int64_t k = 0; k < out_n; k++)
                if (Ro[k] != 0) Ra[k] += (double)x[k] * Ro[k] / pare_lrp_stab(y[k], r->eps);
            break;
        }
        case PARE_OP_GELU: case PARE_OP_RELU: case PARE_OP_TANH: case PARE_OP_DROPOUT: {
            double *Ri = rel(r, n->in[0]);
            if (!Ri) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
            for (int64_t k = 0; k < out_n; k++) Ri[k] += Ro[k];
            break;
        }
        case PARE_OP_POOL: {
            int in = n->in[0];
            int64_t C = m->values[in].cols, Tin = r->len[in] / C;
            double *Ri = rel(r, in);
            if (!Ri) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
            if (n->a.pool == PARE_POOL_CLS) {
                for (int64_t c = 0; c < C; c++) Ri[c] += Ro[c];
            } else {
                const float *x = cap_of(r, in, e);
                int64_t L = r->d->lengths[ex] < Tin ? r->d->lengths[ex] : Tin;
                for (int64_t t = 0; t < L; t++)
                    for (int64_t c = 0; c < C; c++)
                        Ri[t * C + c] += (double)x[t * C + c] / (double)L * Ro[c] / pare_lrp_stab(y[c], r->eps);
            }
            break;
        }
        case PARE_OP_ATTENTION: {
            int in = n->in[0];
            int64_t C = m->values[n->out].cols, H = n->a.heads, Tq = out_n / C;
            double *Ri = rel(r, in);
            if (!Ri) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
            const pare_captured *pc = &r->caps[r->att[i]];
            const float *P = pc->data + e * (pc->rows * pc->cols / r->chunk);
            pare_lrp_attention(Ri + 2 * C, Ro, P, cap_of(r, in, e) + 2 * C, 3 * C, y, H, Tq, Tq, C / H, r->eps);
            break;
        }
        case PARE_OP_CROSS_ATTENTION: {
            int kv = n->in[1];
            int64_t C = m->values[n->out].cols, H = n->a.heads, Tq = out_n / C, Tk = r->len[kv] / (2 * C);
            double *Ri = rel(r, kv);
            if (!Ri) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
            const pare_captured *pc = &r->caps[r->att[i]];
            const float *P = pc->data + e * (pc->rows * pc->cols / r->chunk);
            pare_lrp_attention(Ri + C, Ro, P, cap_of(r, kv, e) + C, 2 * C, y, H, Tq, Tk, C / H, r->eps);
            break;
        }
        case PARE_OP_EMBEDDING: break; /* relevance reaches the input tokens: the end */
        default:
            return pare_fail(PARE_EINVAL, "head relevance: node '%s' (%s) has no relevance rule (LRP covers Linear, "
                             "LayerNorm, Add, PosAdd, GELU, ReLU, tanh, dropout, pooling, attention, embeddings)",
                             n->name, pare_op_name(n->op));
        }
    }
    return PARE_OK;
}

/* Check m and fill r's maps: the values to capture, the transformed weights folded. names[k] on return. */
static pare_status lrp_plan(lrp_run *r, char (**names)[PARE_NAME_MAX + 8], int *k)
{
    const pare_model *m = r->m;
    int nv = (int)m->nvalues, cnt = 0;
    r->nv = nv;
    r->cap = malloc((size_t)nv * sizeof *r->cap);
    r->att = malloc((size_t)m->nnodes * sizeof *r->att);
    r->W = calloc((size_t)m->nnodes, sizeof *r->W);
    r->R = calloc((size_t)nv, sizeof *r->R);
    r->len = calloc((size_t)nv, sizeof *r->len);
    *names = calloc((size_t)(nv + m->nnodes), sizeof **names);
    if (!r->cap || !r->att || !r->W || !r->R || !r->len || !*names)
        return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
    for (int v = 0; v < nv; v++) r->cap[v] = -1;
    for (int64_t i = 0; i < m->nnodes; i++) r->att[i] = -1;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        if (n->out < 0 || m->values[n->out].rows == PARE_ROWS_ONE) continue; /* losses */
        if (n->op == PARE_OP_CAST || m->values[n->out].dtype != PARE_F32)
            return pare_fail(PARE_EINVAL, "head relevance: node '%s' outputs %s; relevance is taken on an f32 model",
                             n->name, pare_dtype_name(m->values[n->out].dtype));
        if (n->op == PARE_OP_LINEAR) {
            const pare_param *w = &m->params[n->param[0]];
            if (w->format != PARE_FMT_F32)
                return pare_fail(PARE_EINVAL, "head relevance: '%s' is stored as %s; take relevance on the f32 model",
                                 w->name, pare_format_name(w->format));
            if (n->a.epilogue) /* LRP's Linear rule reads the product, which a fused activation does not keep */
                return pare_fail(PARE_EINVAL, "head relevance: '%s' is a Linear with a fused %s (the fuse pass); take "
                                 "relevance on the model before linear_gelu / linear_relu", n->name,
                                 pare_epilogue_name(n->a.epilogue));
            if (n->ntf) {
                if (!pare_tf_foldable(n))
                    return pare_fail(PARE_EINVAL, "head relevance: '%s' carries a transform on its input (%s); only "
                                     "weight transforms (masks) are folded", n->name, pare_tf_name(n->tf[0].kind));
                r->W[i] = malloc((size_t)(w->shape[0] * w->shape[1]) * sizeof(float));
                if (!r->W[i]) return pare_fail(PARE_ENOMEM, "head relevance: out of memory");
                PARE_TRY(pare_tf_fold_weight((pare_model *)m, n, r->W[i]));
            }
        }
        if (n->op == PARE_OP_ATTENTION || n->op == PARE_OP_CROSS_ATTENTION) {
            char att[PARE_NAME_MAX + 8];
            snprintf(att, sizeof att, "%s#att", n->name);
            if (pare_model_find_value(m, att) < 0)
                return pare_fail(PARE_EINVAL, "head relevance: attention '%s' keeps no probabilities (variant %s); "
                                 "LRP needs dense attention (full)", n->name,
                                 n->a.attn && n->a.attn->spec[0] ? n->a.attn->spec : "?");
            r->att[i] = cnt;
            snprintf((*names)[cnt++], PARE_NAME_MAX + 8, "%s", att);
        }
        r->cap[n->out] = cnt;
        snprintf((*names)[cnt++], PARE_NAME_MAX + 8, "%s", m->values[n->out].name);
    }
    if (m->logits < 0 || r->cap[m->logits] < 0)
        return pare_fail(PARE_EINVAL, "head relevance: the model has no logits to start from");
    *k = cnt;
    return PARE_OK;
}

pare_status pare_head_relevance(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                                double eps, int normalize, pare_head_scores *out)
{
    memset(out, 0, sizeof *out);
    if (first < 0 || n < 1 || first + n > d->n)
        return pare_fail(PARE_EINVAL, "head relevance: examples %lld..%lld are outside %s (0..%lld)", (long long)first,
                         (long long)(first + n - 1), d->name, (long long)d->n - 1);
    if (batch < 1) return pare_fail(PARE_EINVAL, "head relevance: batch=%lld must be >= 1", (long long)batch);
    if (!(eps >= 0) || !isfinite(eps)) return pare_fail(PARE_EINVAL, "head relevance: eps=%g must be >= 0", eps);
    int na = 0, hmax = 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION || m->nodes[i].op == PARE_OP_CROSS_ATTENTION) {
            na++;
            if (m->nodes[i].a.heads > hmax) hmax = m->nodes[i].a.heads;
        }
    if (!na) return pare_fail(PARE_EINVAL, "head relevance: the model has no attention layers");
    out->n = na, out->hmax = hmax;
    out->node = calloc((size_t)na, sizeof *out->node);
    out->heads = calloc((size_t)na, sizeof *out->heads);
    out->score = calloc((size_t)na * (size_t)hmax, sizeof *out->score);
    lrp_run r = {.m = m, .d = d, .eps = eps};
    char(*names)[PARE_NAME_MAX + 8] = NULL;
    const char **np = NULL;
    int k = 0;
    pare_status st = out->node && out->heads && out->score ? PARE_OK : pare_fail(PARE_ENOMEM, "head relevance: out of memory");
    for (int64_t i = 0, l = 0; st == PARE_OK && i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION || m->nodes[i].op == PARE_OP_CROSS_ATTENTION)
            out->node[l] = i, out->heads[l++] = m->nodes[i].a.heads;
    if (st == PARE_OK) st = lrp_plan(&r, &names, &k);
    if (st == PARE_OK && !(np = calloc((size_t)k, sizeof *np))) st = pare_fail(PARE_ENOMEM, "head relevance: out of memory");
    if (st == PARE_OK && !(r.caps = calloc((size_t)k, sizeof *r.caps))) st = pare_fail(PARE_ENOMEM, "head relevance: out of memory");
    for (int i = 0; st == PARE_OK && i < k; i++) np[i] = names[i];
    for (int64_t at = first; st == PARE_OK && at < first + n; at += batch) {
        r.chunk = first + n - at < batch ? first + n - at : batch;
        if ((st = pare_capture((pare_model *)m, d, at, r.chunk, batch, np, k, r.caps)) != PARE_OK) break;
        for (int v = 0; v < r.nv; v++)
            if (r.cap[v] >= 0) r.len[v] = r.caps[r.cap[v]].rows * r.caps[r.cap[v]].cols / r.chunk;
        for (int64_t e = 0; st == PARE_OK && e < r.chunk; e++) st = lrp_example(&r, e, at + e, out);
        for (int i = 0; i < k; i++) pare_free(r.caps[i].data), r.caps[i].data = NULL;
    }
    if (st == PARE_OK)
        for (int l = 0; l < na; l++) {
            double *s = out->score + (size_t)l * (size_t)hmax, sum = 0, asum = 0;
            for (int h = 0; h < out->heads[l]; h++) s[h] /= (double)n, sum += s[h], asum += fabs(s[h]);
            double norm = sum > 0 ? sum : asum;
            if (normalize && norm > 0)
                for (int h = 0; h < out->heads[l]; h++) s[h] /= norm;
        }
    for (int v = 0; r.R && v < r.nv; v++) free(r.R[v]);
    for (int64_t i = 0; r.W && i < m->nnodes; i++) free(r.W[i]);
    free(r.cap), free(r.att), free(r.W), free(r.R), free(r.len), free(r.caps), free(names), free(np);
    if (st != PARE_OK) pare_head_scores_free(out);
    return st;
}
