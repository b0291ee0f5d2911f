/* half.c — the `bf16` pass: selected Linear layers run in 16-bit floats on a real kernel (graph/fmt_half.c,
 * kernels/gemm_half.h): weights stored in bf16 or f16 (2 bytes each), activations rounded to the same dtype
 * inside the op, f32 accumulation, f32 output.
 *
 *   m:apply("bf16")                                  every Linear in bf16
 *   m:apply("bf16", {layers = "enc.*", dtype = "f16"})  the encoder's Linears with f16 weights
 *
 * Which kernel runs is the CPU's business (gemm_half.h): oneDNN's bf16 inner product (AVX512-BF16, or
 * emulated on AVX-512), else pare's widen kernel (f32 arithmetic on the 16-bit values: f16 on every CPU we
 * know, bf16 without AVX-512). The numbers are the same values either way (rounded operands, f32 sums).
 * The f32 masters stay in the model: dequantize gives them back rounded (the values the kernel used).
 *
 * Deliberately not here: layers already quantized or under QAT (skipped, as the other quantization passes do),
 * masked layers (refused: bake the mask first), bf16 activations between ops (docs/mixed-precision.md).
 */
#include "quant_internal.h"

#include <stdlib.h>

#include "graph/format.h"

static const pare_opt_spec opts[] = {
    QI_LAYER_OPTS("*"),
    {"dtype", PARE_OPT_ENUM, "bf16", 0, 0, "bf16|f16", "16-bit float of the weights and of the activations inside the op"},
};
static const pare_schema schema = {"bf16", "Linear layers in bf16 or f16 on a real kernel (weights 2 bytes, f32 accumulation)",
                                   opts, (int)(sizeof opts / sizeof opts[0])};

static pare_status apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    pare_dtype dt;
    PARE_TRY(pare_dtype_parse(pare_opt_str(o, "dtype"), &dt));
    int64_t *idx, n;
    PARE_TRY(qi_select(m, o, 1, &idx, &n));
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < n; i++)
        if ((st = pare_param_set_half(qi_weight(m, idx[i]), dt, pare_opt_str(o, "dtype"))) != PARE_OK)
            st = pare_fail_ctx(st, "layer %s", m->nodes[idx[i]].name);
    free(idx);
    return st;
}

const pare_pass pare_pass_bf16 = {&schema, apply, 0};
