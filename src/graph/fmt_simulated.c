/* fmt_simulated.c — fake quantization: the dequantized weights in f32 and, optionally, activations
 * fake-quantized (from each batch's range, or with static parameters), run on the f32 GEMM. No kernel
 * of its own: labelled "simulated" wherever it is reported. */
#include <stdio.h>

#include "exec.h"
#include "format.h"

static pare_status sim_forward(pare_exec *x, const pare_node *n, const pare_param *w, float *y, const float *in,
                               const float *bias, int64_t M)
{
    (void)n;
    const pare_qlinear *q = w->q;
    int64_t N = w->shape[0], K = w->shape[1];
    const float *xa = in;
    if (q->a_sim) {
        float *xq = x->workspace;
        pare_status st = q->a_sim == 2 ? pare_fake_quant_params(xq, in, M, K, &q->a_spec, &q->a_qp)
                                       : pare_fake_quant(xq, in, M, K, &q->a_spec);
        if (st != PARE_OK) return st;
        xa = xq;
    }
    pare_linear_f32(y, xa, q->w_sim, bias, M, N, K);
    return PARE_OK;
}

static size_t sim_workspace(const pare_param *w, int64_t M)
{
    return w->q->a_sim ? sizeof(float) * (size_t)(M * w->shape[1]) : 0;
}

const pare_format_traits pare_format_simulated = {
    .name = "simulated",
    .simulated = 1,
    .forward = sim_forward,
    .workspace = sim_workspace,
    .describe = pare_format_describe_q,
    .save = pare_fmt_sim_save, /* checkpoints: fmt_io.c */
    .load = pare_fmt_sim_load,
};
