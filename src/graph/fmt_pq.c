/* fmt_pq.c — product-quantized weights (uint8 codes of d-input blocks + a k-centroid codebook) on the
 * lookup-table kernel of kernels/pq.h; made by the pq pass (compress/quant/pq.c). Inference only: not
 * trainable (train the f32 model, under Quant-Noise if wanted, then quantize). */
#include <stdio.h>

#include "exec.h"
#include "format.h"

static pare_status pq_forward(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                              const float *bias, int64_t M)
{
    (void)n;
    return pare_linear_pq(y, in, &w->q->pq, bias, M, x->workspace);
}

static size_t pq_workspace(const pare_param *w, int64_t M) { return pare_pq_workspace(&w->q->pq, M); }

static const char *pq_label(const pare_param *w) { return w->q->pq.f16 ? "pq f16" : "pq"; }

const pare_format_traits pare_format_pq = {
    .name = "pq",
    .save = pare_fmt_pq_save, /* checkpoints: fmt_io.c */
    .load = pare_fmt_pq_load,
    .forward = pq_forward,
    .workspace = pq_workspace,
    .label = pq_label,
    .describe = pare_format_describe_q,
};
