/* loss.c — losses, targets and capture on the graph side: building target inputs and loss nodes
 * (graph.h), binding targets, reading kept values and the terms of the total loss (exec.h), and what
 * the executor asks of them (loss_internal.h: checks, the weighted sum, the seeds of backward).
 *
 * The numerics are in kernels/loss.h and the op rows in ops.c; this file only wires and checks. What
 * it deliberately does not do: losses on backward caches of the model being trained other than the
 * attention probabilities (dropout masks, softmax rows, LayerNorm statistics carry no gradient),
 * broadcasting a target over rows, or targets in anything but f32.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/tensor.h"
#include "loss_internal.h"
#include "ops.h"

static const char *rows_name(pare_rows r)
{
    switch (r) {
    case PARE_ROWS_TOKENS: return "B·T";
    case PARE_ROWS_SEQS: return "B";
    case PARE_ROWS_CACHE_ATT: return "B·T·T";
    case PARE_ROWS_ONE: return "1";
    case PARE_ROWS_SRC: return "B·S";
    case PARE_ROWS_CACHE_SATT: return "B·S·S";
    case PARE_ROWS_CACHE_XATT: return "B·T·S";
    default: return "?";
    }
}

int pare_model_find_value(const pare_model *m, const char *name)
{
    for (int64_t i = 0; i < m->nvalues; i++)
        if (!strcmp(m->values[i].name, name)) return (int)i;
    return -1;
}

int pare_model_add_target(pare_model *m, const char *name, pare_rows rows, int64_t cols)
{
    if (pare_model_find_value(m, name) >= 0) {
        pare_fail(PARE_EINVAL, "target %s: the name is already used by a value of the model", name);
        return -1;
    }
    if (cols < 1 || (unsigned)rows > PARE_ROWS_ONE) {
        pare_fail(PARE_EINVAL, "target %s: needs cols >= 1 (got %lld) and a row kind", name, (long long)cols);
        return -1;
    }
    return pare_model_add_value(m, name, PARE_VAL_TARGET, rows, cols, PARE_F32);
}

/* The probabilities of a dense self- or cross-attention, "<node>#att" (the node's first cache): the
 * attention's backward takes a loss's gradient on them (attn.h dprobs; exec.c gives them a gradient). */
static int is_attention_probs(const pare_model *m, int v)
{
    const pare_value *val = &m->values[v];
    if (val->producer < 0 || val->dtype != PARE_F32) return 0;
    const pare_node *n = &m->nodes[val->producer];
    return (n->op == PARE_OP_ATTENTION || n->op == PARE_OP_CROSS_ATTENTION) && n->ncache > 0 && n->cache[0] == v;
}

/* An input of a loss: a node's f32 output (trained through it), an attention's probabilities, or a target. */
static int loss_input_ok(const pare_model *m, int v, const char *loss)
{
    if (v < 0 || v >= m->nvalues) {
        pare_fail(PARE_EINVAL, "loss %s: value id %d is not a value of the model", loss, v);
        return 0;
    }
    const pare_value *val = &m->values[v];
    if (val->kind == PARE_VAL_CACHE && !is_attention_probs(m, v)) {
        pare_fail(PARE_EINVAL, "loss %s: %s is a backward cache, which carries no gradient (of the caches only "
                  "attention probabilities \"<node>#att\" do); capture it from a teacher (pare_exec_value) and bind it "
                  "as a target instead", loss, val->name);
        return 0;
    }
    if ((val->kind != PARE_VAL_ACT && val->kind != PARE_VAL_TARGET && val->kind != PARE_VAL_CACHE) ||
        val->rows == PARE_ROWS_ONE) {
        pare_fail(PARE_EINVAL, "loss %s: %s is not an f32 activation or target", loss, val->name);
        return 0;
    }
    if (val->dtype != PARE_F32) {
        pare_fail(PARE_EINVAL, "loss %s: %s is %s, not f32: the losses run in f32 (cast it, pare_model_add_cast)", loss,
                  val->name, pare_dtype_name(val->dtype));
        return 0;
    }
    return 1;
}

int pare_model_add_loss(pare_model *m, pare_op_id op, const char *name, int a, int b, float weight, float temperature)
{
    if (!pare_op_is_loss(op) || op == PARE_OP_XENT) {
        pare_fail(PARE_EINVAL, "loss %s: op %s is not a loss between two values (mse, kl_div, kl_div_reverse, cosine, "
                  "soft_cross_entropy)", name, (unsigned)op < PARE_OP_COUNT ? pare_op_name(op) : "?");
        return -1;
    }
    if (pare_model_find_value(m, name) >= 0) {
        pare_fail(PARE_EINVAL, "loss %s: the name is already used by a value of the model", name);
        return -1;
    }
    if (!loss_input_ok(m, a, name) || !loss_input_ok(m, b, name)) return -1;
    const pare_value *va = &m->values[a], *vb = &m->values[b];
    if (va->rows != vb->rows || va->cols != vb->cols) {
        pare_fail(PARE_EINVAL, "loss %s: %s is (%s, %lld) but %s is (%s, %lld); a loss compares values of one shape",
                  name, va->name, rows_name(va->rows), (long long)va->cols, vb->name, rows_name(vb->rows),
                  (long long)vb->cols);
        return -1;
    }
    if (!isfinite(weight)) {
        pare_fail(PARE_EINVAL, "loss %s: weight %g is not finite", name, (double)weight);
        return -1;
    }
    if (pare_op_has_temperature(op) && !(temperature > 0 && isfinite(temperature))) {
        pare_fail(PARE_EINVAL, "loss %s: temperature %g must be > 0", name, (double)temperature);
        return -1;
    }
    int in[3] = {a, b, m->lengths};
    int nin = va->rows == PARE_ROWS_TOKENS && m->lengths >= 0 ? 3 : 2; /* padded tokens carry no loss */
    pare_node_attrs at = {.weight = weight, .temperature = pare_op_has_temperature(op) ? temperature : 0};
    int out = pare_model_add_node(m, op, name, in, nin, NULL, 0, PARE_ROWS_ONE, 1, at);
    if (out >= 0) m->nodes[m->nnodes - 1].a.weight = weight; /* add_node makes 0 into 1; here 0 means 0 */
    return out;
}

int pare_model_regression_target(const pare_model *m)
{
    if (m->loss < 0 || m->logits < 0 || m->values[m->loss].producer < 0) return -1;
    const pare_node *n = &m->nodes[m->values[m->loss].producer];
    if (n->op != PARE_OP_MSE || n->nin < 2 || n->in[0] != m->logits) return -1;
    const pare_value *t = &m->values[n->in[1]];
    return t->kind == PARE_VAL_TARGET && t->rows == PARE_ROWS_SEQS && t->cols == 1 ? n->in[1] : -1;
}

/* ---- executor side ---- */

pare_status pare_exec_check_capture(const pare_model *m, int v, const char *name, pare_exec_mode mode)
{
    if (v < 0) {
        char some[400];
        size_t used = 0;
        some[0] = 0;
        for (int64_t i = 0; i < m->nnodes && used < sizeof some - 64; i++)
            used += (size_t)snprintf(some + used, sizeof some - used, "%s%s", i ? ", " : "", m->nodes[i].name);
        return pare_fail(PARE_EINVAL, "capture: the model has no value named '%s' (node outputs are named as their "
                         "nodes: %s%s)", name, some, used >= sizeof some - 64 ? ", ..." : "");
    }
    const pare_value *val = &m->values[v];
    if ((val->kind != PARE_VAL_ACT && val->kind != PARE_VAL_CACHE && val->kind != PARE_VAL_TARGET) || val->dtype != PARE_F32)
        return pare_fail(PARE_EINVAL, "capture: %s is %s, not an f32 value (int32 inputs, dropout masks and bf16/f16 "
                         "values are not captured; capture the f32 value a cast reads or makes)", name,
                         pare_dtype_name(val->dtype));
    if (val->kind == PARE_VAL_CACHE && mode == PARE_EXEC_INFER) {
        const pare_node *n = &m->nodes[val->producer];
        if (n->op == PARE_OP_ATTENTION && n->a.bmm_i8)
            return pare_fail(PARE_EINVAL, "capture: %s: the int8 attention of %s does not keep its probabilities at "
                             "inference", name, n->name);
        if (n->op == PARE_OP_LINEAR && n->a.epilogue)
            return pare_fail(PARE_EINVAL, "capture: %s: the pre-activation of the fused %s is kept for training only (at "
                             "inference its activation runs inside the product)", name, n->name);
    }
    return PARE_OK;
}

pare_status pare_exec_check_bound(const pare_exec *x)
{
    const pare_model *m = x->m;
    for (int64_t v = 0; v < m->nvalues; v++)
        if (m->values[v].kind == PARE_VAL_TARGET && !x->bound[v])
            return pare_fail(PARE_EINVAL, "target %s is not bound: bind it (pare_exec_bind_target) after every "
                             "pare_exec_bind", m->values[v].name);
    return PARE_OK;
}

float pare_exec_total_loss(const pare_exec *x)
{
    const pare_model *m = x->m;
    double total = 0.0;
    for (int64_t i = 0; i < m->nnodes; i++)
        if (pare_op_is_loss(m->nodes[i].op)) total += (double)m->nodes[i].a.weight * (double)x->terms[i];
    return (float)total;
}

void pare_exec_seed_losses(pare_exec *x)
{
    const pare_model *m = x->m;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        if (pare_op_is_loss(n->op) && m->values[n->out].rows == PARE_ROWS_ONE && x->grad[n->out] && x->need_grad[n->out])
            x->grad[n->out][0] = n->a.weight;
    }
}

pare_status pare_exec_bind_target(pare_exec *x, int value, const float *data)
{
    const pare_model *m = x->m;
    if (value < 0 || value >= m->nvalues || m->values[value].kind != PARE_VAL_TARGET)
        return pare_fail(PARE_EINVAL, "bind_target: value %d is not a target input of the model", value);
    const pare_value *v = &m->values[value];
    int64_t rows = pare_exec_rows(x, v), n = rows * v->cols;
    int64_t bad = pare_first_nonfinite(data, n);
    if (bad >= 0)
        return pare_fail(PARE_ENUMERIC, "target %s holds %s at (%lld, %lld)", v->name, isnan(data[bad]) ? "NaN" : "Inf",
                         (long long)(bad / v->cols), (long long)(bad % v->cols));
    memcpy(x->buf[value], data, (size_t)n * sizeof(float));
    x->bound[value] = 1;
    return PARE_OK;
}

pare_status pare_exec_value(const pare_exec *x, const char *name, const float **data, int64_t *rows, int64_t *cols)
{
    *data = NULL;
    int v = pare_model_find_value(x->m, name);
    PARE_TRY(pare_exec_check_capture(x->m, v, name, x->mode));
    if (!x->kept[v])
        return pare_fail(PARE_EINVAL, "capture: %s is not kept by this inference executor (its memory is reused): "
                         "name it when making the executor (pare_exec_new_keep)", name);
    *data = x->buf[v];
    *rows = pare_exec_rows(x, &x->m->values[v]);
    *cols = x->m->values[v].cols;
    return PARE_OK;
}

int pare_exec_loss_terms(const pare_exec *x, pare_loss_term *terms, int max)
{
    const pare_model *m = x->m;
    int n = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (!pare_op_is_loss(nd->op)) continue;
        if (n < max) terms[n] = (pare_loss_term){nd->name, nd->op, nd->a.weight, x->terms[i]};
        n++;
    }
    return n;
}
