/* dtypes.c — the graph's dtype checks and the cast builder (graph.h, docs/dtypes.md).
 *
 * Each op declares what it accepts per input and what it produces (op_dtypes in ops.c); this file holds
 * that declaration against a node when it is added (pare_model_add_node calls pare_node_check_inputs)
 * and against a whole graph after it was rewritten or loaded (pare_model_check_dtypes). Both run over
 * the graph once, never per forward: the ops' forwards take their buffers' element types for granted.
 *
 * What it deliberately does not do: convert anything. A value of a dtype an op has no kernel for is an
 * error naming the node, and a change of dtype is a CAST node the graph shows.
 *
 * Entry points: pare_model_check_dtypes, pare_model_add_cast (graph.h); pare_node_check_inputs,
 * pare_node_check_caches (ops.h, for pare_model_add_node).
 */
#include <stdio.h>
#include <string.h>

#include "ops.h"

static const char *op_label(pare_op_id op) { return (unsigned)op < PARE_OP_COUNT ? pare_op_name(op) : "?"; }

pare_status pare_node_check_inputs(const pare_model *m, const pare_node *n, int nin)
{
    if ((unsigned)n->op >= PARE_OP_COUNT)
        return pare_fail(PARE_EINVAL, "node %s: op %d is not an op of pare (0..%d)", n->name, (int)n->op, PARE_OP_COUNT - 1);
    const char *op = pare_op_name(n->op);
    const pare_op_dtypes *d = pare_op_dtypes_of(n->op);
    int max = 0;
    while (max < PARE_NODE_MAX_IN && d->in[max]) max++;
    if (nin < 0 || nin > max)
        return pare_fail(PARE_EINVAL, "node %s (op %s): given %d inputs; %s takes at most %d", n->name, op, nin, op, max);
    char want[64];
    for (int i = 0; i < nin; i++) {
        int v = n->in[i];
        if (v < 0 || v >= m->nvalues)
            return pare_fail(PARE_EINVAL, "node %s (op %s): input %d is value id %d, not a value of the model (ids 0..%lld)",
                             n->name, op, i, v, (long long)m->nvalues - 1);
        pare_dtype t = m->values[v].dtype;
        if (d->in[i] & PARE_DTYPE_BIT(t)) continue;
        pare_dtype_mask_str(d->in[i], want, sizeof want);
        if (pare_dtype_is_float(t) && (d->in[i] & PARE_DTYPES_FLOAT))
            return pare_fail(PARE_EINVAL, "node %s (op %s): input %d '%s' is %s, but %s accepts %s there (it has no %s "
                             "kernel: convert the value with a cast node, pare_model_add_cast)", n->name, op, i,
                             m->values[v].name, pare_dtype_name(t), op, want, pare_dtype_name(t));
        return pare_fail(PARE_EINVAL, "node %s (op %s): input %d '%s' is %s, but %s accepts %s there", n->name, op, i,
                         m->values[v].name, pare_dtype_name(t), op, want);
    }
    if (d->out == PARE_OUT_IN0) /* computes in its input's dtype: every float input has it */
        for (int i = 1; i < nin; i++) {
            pare_dtype t0 = m->values[n->in[0]].dtype, t = m->values[n->in[i]].dtype;
            if (pare_dtype_is_float(t) && t != t0)
                return pare_fail(PARE_EINVAL, "node %s (op %s): input %d '%s' is %s, but input 0 '%s' is %s; %s computes in "
                                 "its input's dtype, so they must match (convert one with a cast node, pare_model_add_cast)",
                                 n->name, op, i, m->values[n->in[i]].name, pare_dtype_name(t), m->values[n->in[0]].name,
                                 pare_dtype_name(t0), op);
        }
    if (d->out == PARE_OUT_ATTR && !(d->attr & PARE_DTYPE_BIT(n->a.dtype))) {
        pare_dtype_mask_str(d->attr, want, sizeof want);
        return pare_fail(PARE_EINVAL, "node %s (op %s): cannot produce %s; %s produces %s%s", n->name, op,
                         pare_dtype_name(n->a.dtype), op, want,
                         pare_dtype_is_float(n->a.dtype) || (unsigned)n->a.dtype >= PARE_DTYPE_COUNT ? ""
                         : " (an integer dtype needs a scale: that is a quantization format, not a cast)");
    }
    return d->check ? d->check(m, n, nin) : PARE_OK;
}

pare_status pare_node_check_caches(const pare_node *n, const pare_cache_spec *cs, int nc)
{
    const pare_op_dtypes *d = pare_op_dtypes_of(n->op);
    for (int k = 0; k < nc; k++) {
        if (d->caches & PARE_DTYPE_BIT(cs[k].dtype)) continue;
        char want[64];
        pare_dtype_mask_str(d->caches, want, sizeof want);
        return pare_fail(PARE_EINVAL, "node %s (op %s): its cache '%s' would be %s, but %s declares %s caches (ops.c: "
                         "op_dtypes and the op's caches function disagree)", n->name, pare_op_name(n->op), cs[k].suffix,
                         pare_dtype_name(cs[k].dtype), pare_op_name(n->op), want);
    }
    return PARE_OK;
}

pare_status pare_model_check_dtypes(const pare_model *m)
{
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        PARE_TRY(pare_node_check_inputs(m, n, n->nin));
        const char *op = op_label(n->op);
        if (n->out < 0 || n->out >= m->nvalues)
            return pare_fail(PARE_EINVAL, "node %s (op %s): output is value id %d, not a value of the model", n->name, op,
                             n->out);
        pare_dtype want = pare_op_out_dtype(m, n), have = m->values[n->out].dtype;
        if (have != want)
            return pare_fail(PARE_EINVAL, "node %s (op %s): output '%s' is %s, but %s produces %s", n->name, op,
                             m->values[n->out].name, pare_dtype_name(have), op, pare_dtype_name(want));
        pare_cache_spec cs[PARE_NODE_MAX_CACHE];
        int nc = pare_op_caches(m, n, cs);
        PARE_TRY(pare_node_check_caches(n, cs, nc));
        for (int k = 0; k < n->ncache && k < nc; k++) {
            const pare_value *c = n->cache[k] >= 0 && n->cache[k] < m->nvalues ? &m->values[n->cache[k]] : NULL;
            if (!c)
                return pare_fail(PARE_EINVAL, "node %s (op %s): cache %d is value id %d, not a value of the model", n->name,
                                 op, k, n->cache[k]);
            if (c->dtype != cs[k].dtype)
                return pare_fail(PARE_EINVAL, "node %s (op %s): cache '%s' is %s, but %s keeps %s there", n->name, op,
                                 c->name, pare_dtype_name(c->dtype), op, pare_dtype_name(cs[k].dtype));
        }
    }
    return PARE_OK;
}

int pare_model_add_cast(pare_model *m, const char *name, int value, pare_dtype dtype)
{
    if (value < 0 || value >= m->nvalues) {
        pare_fail(PARE_EINVAL, "node %s (op cast): value id %d is not a value of the model", name, value);
        return -1;
    }
    const pare_value *v = &m->values[value];
    return pare_model_add_node(m, PARE_OP_CAST, name, &value, 1, NULL, 0, v->rows, v->cols,
                               (pare_node_attrs){.dtype = dtype});
}
