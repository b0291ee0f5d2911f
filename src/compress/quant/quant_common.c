/* quant_common.c — shared machinery of the quantization passes (see quant_internal.h). */
#include "quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "graph/transform.h"

pare_status qi_select(const pare_model *m, const pare_options *o, int skip_quantized, int64_t **idx, int64_t *n)
{
    *idx = malloc(sizeof **idx * (size_t)(m->nnodes ? m->nnodes : 1));
    if (!*idx) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status st = pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), *idx, n);
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

pare_status qi_set_weight_only(pare_model *m, int64_t node, const int32_t *qv, const float *scale, const int32_t *zero,
                               const float *Wq, int bits, int64_t group, int symmetric, const char *method)
{
    pare_param *w = qi_weight(m, node);
    int64_t N = w->shape[0], K = w->shape[1], g = group ? group : K;
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
    pare_qspec ws = {PARE_NF_INT, bits, symmetric, group ? PARE_GRAN_GROUP : PARE_GRAN_ROW, group};
    return qi_set_sim(m, node, Wq, &ws, pare_qspec_storage_bits(&ws, N, K), 0, NULL, NULL, method);
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
