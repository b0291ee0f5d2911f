/* half.c — the `bf16` pass: selected Linear layers run in 16-bit floats on a real kernel (graph/fmt_half.c,
 * kernels/gemm_half.h): weights stored in bf16 or f16 (2 bytes each), activations rounded to the same dtype
 * inside the op, f32 accumulation, f32 output.
 *
 *   m:apply("bf16")                                  every Linear in bf16
 *   m:apply("bf16", {layers = "enc.*", dtype = "f16"})  the encoder's Linears with f16 weights
 *   m:apply("bf16", {embeddings = true})              every Linear and the embedding tables (token, position, type)
 *   m:apply("bf16", {embeddings = true, layers = ""}) the tables only
 *
 * Which kernel runs is the CPU's business (gemm_half.h): oneDNN's bf16 inner product (AVX512-BF16, or
 * emulated on AVX-512), else pare's widen kernel (f32 arithmetic on the 16-bit values: f16 on every CPU we
 * know, bf16 without AVX-512). The numbers are the same values either way (rounded operands, f32 sums).
 * The f32 masters stay in the model: dequantize gives them back rounded (the values the kernel used).
 *
 * Embedding tables (embeddings = true): each trainable table an EMBEDDING or POSADD node reads, stored f32, goes to the
 * same format without oneDNN's packed copy (pare_param_set_half_table); the lookup widens rows on the fly (its output
 * stays f32 unless amp says otherwise). Fixed tables (sinusoidal positions, not trainable) stay f32: they are
 * recomputed, not stored, and size_bytes counts them 0 already. A table already 16-bit (a tied head put there by the
 * Linears) is left as it is.
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
    {"embeddings", PARE_OPT_BOOL, "false", 0, 0, NULL, "also store the embedding tables (token, position, type) in dtype; "
     "with layers = \"\" only them"},
};
static const pare_schema schema = {"bf16", "Linear layers in bf16 or f16 on a real kernel (weights 2 bytes, f32 accumulation)",
                                   opts, (int)(sizeof opts / sizeof opts[0])};

/* The trainable f32 tables of the EMBEDDING and POSADD nodes into dt (each parameter once: a tied one is read twice). */
static pare_status tables(pare_model *m, pare_dtype dt, const char *method)
{
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if ((nd->op != PARE_OP_EMBEDDING && nd->op != PARE_OP_POSADD) || nd->nparam < 1) continue;
        pare_param *p = &m->params[nd->param[0]];
        if (p->format != PARE_FMT_F32 || !p->trainable) continue; /* done, another format, or a fixed table */
        pare_status st = pare_param_set_half_table(p, dt, method);
        if (st != PARE_OK) return pare_fail_ctx(st, "embedding %s", nd->name);
    }
    return PARE_OK;
}

static pare_status apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    pare_dtype dt;
    PARE_TRY(pare_dtype_parse(pare_opt_str(o, "dtype"), &dt));
    const int emb = pare_opt_bool(o, "embeddings");
    pare_status st = PARE_OK;
    if (!(emb && !*pare_opt_str(o, "layers"))) {
        int64_t *idx, n;
        PARE_TRY(qi_select(m, o, 1, &idx, &n));
        for (int64_t i = 0; st == PARE_OK && i < n; i++)
            if ((st = pare_param_set_half(qi_weight(m, idx[i]), dt, pare_opt_str(o, "dtype"))) != PARE_OK)
                st = pare_fail_ctx(st, "layer %s", m->nodes[idx[i]].name);
        free(idx);
    }
    if (st == PARE_OK && emb) st = tables(m, dt, pare_opt_str(o, "dtype"));
    return st;
}

const pare_pass pare_pass_bf16 = {&schema, apply, 0};
