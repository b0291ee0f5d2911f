/* quant_common.c — shared machinery of the quantization passes (see quant_internal.h). */
#include "quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "graph/transform.h"

static int has_opt(const pare_options *o, const char *key)
{
    for (int i = 0; i < o->schema->nopts; i++)
        if (!strcmp(o->schema->opts[i].key, key)) return 1;
    return 0;
}

static int listed(const int64_t *idx, int64_t n, int64_t v)
{
    for (int64_t i = 0; i < n; i++)
        if (idx[i] == v) return 1;
    return 0;
}

/* The Linear whose param[0] is parameter p, or -1. */
static int64_t linear_reading(const pare_model *m, int p)
{
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR && m->nodes[i].nparam > 0 && m->nodes[i].param[0] == p) return i;
    return -1;
}

/* QI_TABLE_OPTS: head = true adds the Linear that makes the logits; embeddings = true adds the Linear a table is tied
 * to (one parameter: quantized once, read by both). `exclude` wins over head; a tied table whose head is excluded is
 * refused (the two cannot differ). */
static pare_status add_head_and_tied(const pare_model *m, const pare_options *o, int64_t *idx, int64_t *n)
{
    const char *ex = pare_opt_str(o, "exclude");
    if (has_opt(o, "head") && pare_opt_bool(o, "head") && m->logits >= 0) {
        int64_t h = m->values[m->logits].producer;
        if (h >= 0 && m->nodes[h].op == PARE_OP_LINEAR && !listed(idx, *n, h) && !(*ex && pare_name_match(ex, m->nodes[h].name)))
            idx[(*n)++] = h;
    }
    if (!has_opt(o, "embeddings") || !pare_opt_bool(o, "embeddings")) return PARE_OK;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_EMBEDDING || nd->nparam < 1) continue;
        int64_t l = linear_reading(m, nd->param[0]);
        if (l < 0 || listed(idx, *n, l)) continue;
        if (*ex && pare_name_match(ex, m->nodes[l].name))
            return pare_fail(PARE_EINVAL, "embeddings=true: table %s is tied to Linear %s (one parameter), which exclude='%s' "
                             "keeps f32; quantize both or neither", m->params[nd->param[0]].name, m->nodes[l].name, ex);
        idx[(*n)++] = l;
    }
    return PARE_OK;
}

pare_status qi_select_tables(const pare_model *m, const pare_options *o, const int64_t *lin, int64_t nlin, int64_t *out,
                             int64_t *nout)
{
    *nout = 0;
    if (!has_opt(o, "embeddings") || !pare_opt_bool(o, "embeddings")) return PARE_OK;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_EMBEDDING || nd->nparam < 1) continue;
        const pare_param *p = &m->params[nd->param[0]];
        if (p->format != PARE_FMT_F32 || !p->trainable) continue; /* done (a tied head), another format, or fixed */
        int tied = 0;
        for (int64_t k = 0; k < nlin; k++) tied |= m->nodes[lin[k]].param[0] == nd->param[0];
        if (!tied) out[(*nout)++] = i;
    }
    return PARE_OK;
}

pare_status qi_select(const pare_model *m, const pare_options *o, int skip_quantized, int64_t **idx, int64_t *n)
{
    *idx = malloc(sizeof **idx * (size_t)(m->nnodes ? m->nnodes : 1));
    if (!*idx) return pare_fail(PARE_ENOMEM, "out of memory");
    int tables_only = has_opt(o, "embeddings") && pare_opt_bool(o, "embeddings") && !*pare_opt_str(o, "layers");
    pare_status st = tables_only ? (*n = 0, PARE_OK) : pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), *idx, n);
    if (st == PARE_OK) st = add_head_and_tied(m, o, *idx, n);
    if (st != PARE_OK) {
        free(*idx), *idx = NULL;
        return st;
    }
    if (skip_quantized) {
        int64_t k = 0;
        for (int64_t i = 0; i < *n; i++) {
            const pare_node *nd = &m->nodes[(*idx)[i]];
            const pare_transform *t = pare_node_transform(nd, PARE_TF_WEIGHT);
            if (t && t->kind == PARE_TF_MASK) { /* the quantizers read the f32 master, which the mask never wrote */
                free(*idx), *idx = NULL;
                return pare_fail(PARE_EINVAL, "layer %s: its weight %s has a pruning mask; quantizing it would ignore the mask. "
                                 "Bake it into the weight first (pare_model_bake_mask), or exclude the layer",
                                 nd->name, m->params[nd->param[0]].name);
            }
            if (m->params[nd->param[0]].format == PARE_FMT_F32 && !pare_node_find_transform(nd, PARE_TF_FAKE_QUANT))
                (*idx)[k++] = (*idx)[i];
        }
        *n = k;
    }
    return PARE_OK;
}

pare_param *qi_weight(pare_model *m, int64_t node) { return &m->params[m->nodes[node].param[0]]; }

pare_status qi_calibrate(pare_calib *c, pare_model *m, const pare_pass_ctx *ctx, const pare_options *o,
                         const int64_t *idx, int64_t n, unsigned what)
{
    return pare_calibrate(c, m, ctx->calib, pare_opt_int(o, "calib_samples"), pare_opt_int(o, "calib_batch"), idx, n,
                          what);
}

static const char *act_desc(const pare_i8_act *a, char *buf, size_t n)
{
    if (a->torch_qparams) snprintf(buf, n, "tensor asym torch");
    else if (a->outlier_threshold > 0) snprintf(buf, n, "llm.int8 t=%g %s", (double)a->outlier_threshold, a->outlier_f16 ? "f16" : "f32");
    else snprintf(buf, n, "%s%s", a->mode == PARE_ACT_DYN_TOKEN ? "token" : a->mode == PARE_ACT_DYN_TENSOR ? "tensor" : "static",
                  a->symmetric ? "" : " asym");
    return buf;
}

static pare_status finish_i8(pare_model *m, int64_t node, pare_qlinear *q, int per_tensor, const pare_i8_act *act,
                             const char *method)
{
    char ad[48];
    q->act = *act;
    q->bits = 8.0 * (double)pare_i8_weight_bytes(&q->i8);
    snprintf(q->desc, sizeof q->desc, "int8 w/%s a/%s", per_tensor == QI_W_TORCH ? "torch" : per_tensor ? "tensor" : "channel", act_desc(act, ad, sizeof ad));
    snprintf(q->method, sizeof q->method, "%s", method);
    pare_param_set_q(qi_weight(m, node), q);
    return PARE_OK;
}

pare_status qi_set_i8(pare_model *m, int64_t node, int per_tensor, const pare_i8_act *act, const char *method)
{
    pare_param *w = qi_weight(m, node);
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_I8_CHANNEL);
    if (!q) return PARE_ENOMEM;
    pare_status st = per_tensor == QI_W_TORCH ? pare_i8_weight_quantize_torch(&q->i8, w->blob->data, w->shape[0], w->shape[1])
                     : per_tensor ? pare_i8_weight_quantize_tensor(&q->i8, w->blob->data, w->shape[0], w->shape[1])
                                  : pare_i8_weight_quantize(&q->i8, w->blob->data, w->shape[0], w->shape[1]);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st, "layer %s", m->nodes[node].name);
    }
    return finish_i8(m, node, q, per_tensor, act, method);
}

pare_status qi_set_i8_from_int(pare_model *m, int64_t node, const int8_t *qv, const float *scale,
                               const pare_i8_act *act, const char *method)
{
    pare_param *w = qi_weight(m, node);
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_I8_CHANNEL);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_i8_weight_from_int(&q->i8, qv, scale, w->shape[0], w->shape[1]);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st, "layer %s", m->nodes[node].name);
    }
    return finish_i8(m, node, q, 0, act, method);
}

pare_status qi_set_sim(pare_model *m, int64_t node, const float *Wq, const pare_qspec *w_spec, double bits, int a_sim,
                       const pare_qspec *a_spec, const pare_qparams *a_qp, const char *method)
{
    pare_param *w = qi_weight(m, node);
    int64_t NK = w->shape[0] * w->shape[1];
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_SIMULATED);
    if (!q) return PARE_ENOMEM;
    q->w_sim = pare_alloc(sizeof(float) * (size_t)NK);
    if (!q->w_sim) {
        pare_qlinear_release(q);
        return pare_fail(PARE_ENOMEM, "out of memory (simulated weights of %s)", m->nodes[node].name);
    }
    memcpy(q->w_sim, Wq, sizeof(float) * (size_t)NK);
    q->w_spec = *w_spec;
    q->a_sim = a_sim;
    if (a_spec) q->a_spec = *a_spec;
    if (a_qp) q->a_qp = *a_qp;
    q->bits = bits;
    char ws[48], as[48] = "f32";
    pare_qspec_str(w_spec, ws, sizeof ws);
    if (a_sim) pare_qspec_str(a_spec, as, sizeof as);
    snprintf(q->desc, sizeof q->desc, "simulated w/%s a/%s%s", ws, as, a_sim == 2 ? " static" : "");
    snprintf(q->method, sizeof q->method, "%s", method);
    pare_param_set_q(w, q);
    return PARE_OK;
}

/* The weight-only kernels of kernels/wq.h: int8 / int3 / int2 with f32 activations, W4A8 (act_bits 8). */
static pare_status set_wq(pare_model *m, int64_t node, pare_wq_kind kind, const int32_t *qv, const float *scale,
                          const int32_t *zero, int64_t group, int symmetric, const char *method)
{
    pare_param *w = qi_weight(m, node);
    int64_t N = w->shape[0], K = w->shape[1], g = group ? group : K;
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_WQ);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_wq_from_int(&q->wq, kind, qv, scale, symmetric ? NULL : zero, N, K, g);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st, "layer %s", m->nodes[node].name);
    }
    char gs[32];
    if (group) snprintf(gs, sizeof gs, "group%lld", (long long)g);
    else snprintf(gs, sizeof gs, "channel");
    q->bits = 8.0 * (double)pare_wq_bytes(&q->wq);
    snprintf(q->desc, sizeof q->desc, "int%d w/%s%s a/%s (%s)", kind == PARE_WQ_W4A8 ? 4 : pare_wq_kind_bits(kind), gs,
             symmetric ? "" : " asym", kind == PARE_WQ_W4A8 ? "int8 token" : "f32", pare_wq_impl(&q->wq, 1));
    snprintf(q->method, sizeof q->method, "%s", method);
    pare_param_set_q(w, q);
    return PARE_OK;
}

pare_status qi_set_weight_only(pare_model *m, int64_t node, const int32_t *qv, const float *scale, const int32_t *zero,
                               const float *Wq, int bits, int64_t group, int symmetric, int act_bits, const char *method)
{
    pare_param *w = qi_weight(m, node);
    int64_t N = w->shape[0], K = w->shape[1], g = group ? group : K;
    /* a table the embedding lookup reads (the `embeddings` option, or a head tied to it): the lookup has kernels
       for int8, the block formats and simulated weights (kernels/embed_q.h), not for the wq kinds */
    int table = 0;
    for (int64_t i = 0; i < m->nnodes && !table; i++)
        table = m->nodes[i].op == PARE_OP_EMBEDDING && m->nodes[i].nparam > 0 && &m->params[m->nodes[i].param[0]] == w;
    if (act_bits == 8 && !table) { /* W4A8 on its kernel; other widths with int8 tokens simulated */
        if (bits == 4 && pare_wq_check(PARE_WQ_W4A8, N, K, g, symmetric) == PARE_OK)
            return set_wq(m, node, PARE_WQ_W4A8, qv, scale, zero, group, symmetric, method);
        pare_qspec ws = {PARE_NF_INT, bits, symmetric, group ? PARE_GRAN_GROUP : PARE_GRAN_ROW, group};
        pare_qspec as = {PARE_NF_INT, 8, 1, PARE_GRAN_ROW, 0};
        return qi_set_sim(m, node, Wq, &ws, pare_qspec_storage_bits(&ws, N, K), 1, &as, NULL, method);
    }
    if (bits == 4 && g % 32 == 0) { /* the int4 group kernel */
        pare_qlinear *q = pare_qlinear_new(PARE_FMT_QBLOCK);
        if (!q) return PARE_ENOMEM;
        pare_status st = pare_qb_from_int(&q->qb, PARE_QB_I4G, qv, scale, symmetric ? NULL : zero, N, K, g);
        if (st != PARE_OK) {
            pare_qlinear_release(q);
            return pare_fail_ctx(st, "layer %s", m->nodes[node].name);
        }
        q->bits = 8.0 * (double)pare_qb_bytes(&q->qb);
        snprintf(q->desc, sizeof q->desc, "int4 w/group%lld%s a/f32 (%s)", (long long)g, symmetric ? "" : " asym",
                 pare_qb_impl(&q->qb));
        snprintf(q->method, sizeof q->method, "%s", method);
        pare_param_set_q(w, q);
        return PARE_OK;
    }
    /* int8 / int3 / int2 on the weight-only kernels when the layout fits (wq.h: K a multiple of 16 or 64, group
       of 16s); everything else simulated, labelled */
    pare_wq_kind kind = bits == 8 ? PARE_WQ_I8 : bits == 3 ? PARE_WQ_I3 : PARE_WQ_I2;
    if (!table && (bits == 8 || bits == 3 || bits == 2) && pare_wq_check(kind, N, K, g, symmetric) == PARE_OK)
        return set_wq(m, node, kind, qv, scale, zero, group, symmetric, method);
    pare_qspec ws = {PARE_NF_INT, bits, symmetric, group ? PARE_GRAN_GROUP : PARE_GRAN_ROW, group};
    return qi_set_sim(m, node, Wq, &ws, pare_qspec_storage_bits(&ws, N, K), 0, NULL, NULL, method);
}

void qi_mark_attention_i8(pare_model *m, const int64_t *idx, int64_t n, int fixed_p)
{
    for (int64_t i = 0; i < m->nnodes; i++) {
        pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_ATTENTION) continue;
        int prod = m->values[nd->in[0]].producer; /* the qkv Linear: only blocks that were selected */
        for (int64_t k = 0; k < n; k++)
            if (idx[k] == prod) nd->a.bmm_i8 = fixed_p ? 2 : 1;
    }
}

int64_t qi_ln_before(const pare_model *m, int64_t node)
{
    int in = m->nodes[node].in[0];
    int prod = m->values[in].producer;
    /* a LayerNorm, or the fuse pass's Add + LayerNorm: the same gains and bias to fold into */
    if (prod < 0 || (m->nodes[prod].op != PARE_OP_LAYERNORM && m->nodes[prod].op != PARE_OP_ADD_LAYERNORM)) return -1;
    return qi_ln_feeds_linears(m, prod) ? prod : -1;
}

int qi_ln_feeds_linears(const pare_model *m, int64_t ln)
{
    int v = m->nodes[ln].out;
    if (v == m->logits || v == m->loss) return 0;
    for (int64_t i = 0; i < m->nnodes; i++)
        for (int k = 0; k < m->nodes[i].nin; k++)
            if (m->nodes[i].in[k] == v && (m->nodes[i].op != PARE_OP_LINEAR || k != 0)) return 0;
    return 1;
}
