/* format.c — the storage-format registry: one row per pare_format, guarded by a static assert; the helpers that
 * ask every format the same question (labels, input dtypes, trainability, refresh after an optimizer step). */
#include "format.h"

#include <stdio.h>

static const pare_format_traits *const formats[] = {
    [PARE_FMT_F32] = &pare_format_f32,
    [PARE_FMT_I8_CHANNEL] = &pare_format_i8_channel,
    [PARE_FMT_QBLOCK] = &pare_format_qblock,
    [PARE_FMT_SIMULATED] = &pare_format_simulated,
    [PARE_FMT_SPARSE] = &pare_format_sparse,
    [PARE_FMT_HALF] = &pare_format_half,
    [PARE_FMT_WQ] = &pare_format_wq,
    [PARE_FMT_PQ] = &pare_format_pq,
};
_Static_assert(sizeof formats / sizeof formats[0] == PARE_FMT_COUNT, "format registry out of date with pare_format");

const pare_format_traits *pare_format_get(pare_format f) { return (unsigned)f < PARE_FMT_COUNT ? formats[f] : NULL; }

const char *pare_format_name(pare_format f)
{
    const pare_format_traits *t = pare_format_get(f);
    return t ? t->name : "?";
}

const char *pare_format_describe_q(const pare_param *w, char *buf, size_t n)
{
    snprintf(buf, n, "%s", w->q->desc);
    return buf;
}

unsigned pare_format_in_dtypes(const pare_param *w)
{
    const pare_format_traits *t = pare_format_get(w->format);
    return t && t->in_dtypes ? t->in_dtypes(w) : PARE_DTYPE_BIT(PARE_F32);
}

pare_status pare_model_check_formats(const pare_model *m)
{
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        if (n->op != PARE_OP_LINEAR || n->nin < 1 || n->nparam < 1) continue;
        const pare_param *w = &m->params[n->param[0]];
        const pare_value *v = &m->values[n->in[0]];
        unsigned ok = pare_format_in_dtypes(w);
        if (ok & PARE_DTYPE_BIT(v->dtype)) continue;
        char want[64];
        pare_dtype_mask_str(ok, want, sizeof want);
        return pare_fail(PARE_EINVAL, "node %s (op linear): input 0 '%s' is %s, but its weight %s is stored as %s, which "
                         "reads %s (store the weight in %s with the bf16 pass, or cast the value to f32)", n->name, v->name,
                         pare_dtype_name(v->dtype), w->name, pare_format_label(w), want, pare_dtype_name(v->dtype));
    }
    return PARE_OK;
}

const char *pare_format_label(const pare_param *w)
{
    const pare_format_traits *t = pare_format_get(w->format);
    if (!t) return "?";
    return t->label ? t->label(w) : t->name;
}

pare_status pare_format_check_trainable(const pare_param *w, const char *who)
{
    const pare_format_traits *t = pare_format_get(w->format);
    if (!t || !t->trainable)
        return pare_fail(PARE_EINVAL, "%s: parameter %s is stored as %s; train the f32 model and compress after (or use a "
                         "quantization-aware pass)", who, w->name, pare_format_label(w));
    if (t->train_check) {
        pare_status st = t->train_check(w);
        if (st != PARE_OK) return pare_fail_ctx(st, "%s", who);
    }
    return PARE_OK;
}

pare_status pare_model_refresh_formats(pare_model *m)
{
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        const pare_format_traits *t = pare_format_get(p->format);
        if (!t || !t->refresh) continue;
        pare_status st = t->refresh(p);
        if (st != PARE_OK) return pare_fail_ctx(st, "refreshing %s from its master", p->name);
    }
    return PARE_OK;
}
