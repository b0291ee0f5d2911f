/* fmt_sparse.c — sparse Linear weights: the zeros of the f32 master not stored (CSR f32 / int8, N:M, block
 * 4×1 / 16×16), run by the kernels of kernels/sparse.h. Made by the sparsify pass (src/compress/prune/) and by
 * checkpoint loading (the layout is a lossless function of the master and its spec, so checkpoints store the
 * spec beside the f32 masters and rebuild the same bytes). Not trainable: training runs on the f32 masters
 * under masks.
 *
 * Entry points: pare_format_sparse (the traits), pare_param_set_sparse (format.h).
 */
#include <stdio.h>

#include "exec.h"
#include "format.h"

static pare_status sp_forward(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                              const float *bias, int64_t M)
{
    (void)n;
    return pare_sparse_linear(y, in, &w->q->sp, bias, M, x->workspace);
}

static size_t sp_workspace(const pare_param *w, int64_t M) { return pare_sparse_workspace(&w->q->sp, M); }

static const char *sp_label(const pare_param *w)
{
    const pare_sparse_spec *s = &w->q->sp.spec;
    switch (s->kind) {
    case PARE_SP_CSR: return "csr";
    case PARE_SP_CSR_I8: return "csr_int8";
    case PARE_SP_NM: return s->n == 2 && s->m == 4 ? "2:4" : s->n == 4 && s->m == 8 ? "4:8" : "n:m";
    case PARE_SP_BSR: return s->br == 4 ? "block4x1" : "block16x16";
    default: return "sparse";
    }
}

static const char *sp_describe(const pare_param *w, char *buf, size_t n)
{
    snprintf(buf, n, "%s (%s)", w->q->desc, pare_sparse_impl());
    return buf;
}

const pare_format_traits pare_format_sparse = {
    .name = "sparse",
    .forward = sp_forward,
    .workspace = sp_workspace,
    .label = sp_label,
    .describe = sp_describe,
};

pare_status pare_param_set_sparse(pare_param *p, const pare_sparse_spec *s, const char *method)
{
    if (p->ndim != 2) return pare_fail(PARE_EINVAL, "sparse: parameter %s is not a 2-D Linear weight", p->name);
    pare_qlinear *q = pare_qlinear_new(PARE_FMT_SPARSE);
    if (!q) return PARE_ENOMEM;
    pare_status st = pare_sparse_from_dense(&q->sp, p->blob->data, p->shape[0], p->shape[1], s);
    if (st != PARE_OK) {
        pare_qlinear_release(q);
        return pare_fail_ctx(st, "weight %s", p->name);
    }
    const pare_sparse_weight *sw = &q->sp;
    char spec[32];
    q->bits = 8.0 * (double)pare_sparse_bytes(sw);
    snprintf(q->desc, sizeof q->desc, "sparse %s %.1f%% zeros%s", pare_sparse_spec_str(s, spec, sizeof spec),
             100.0 * (double)(sw->N * sw->K - sw->nonzero) / (double)(sw->N * sw->K),
             s->kind == PARE_SP_CSR_I8 ? " w/channel a/token" : "");
    snprintf(q->method, sizeof q->method, "%s", method ? method : "");
    pare_param_set_q(p, q);
    return PARE_OK;
}
