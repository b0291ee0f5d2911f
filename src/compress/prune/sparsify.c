/* sparsify.c — the `sparsify` pass (issue 13): Linear weights whose zeros are already there (a pruning mask,
 * or zeros written into the master) stored in a sparse layout with its own kernel (kernels/sparse.h), so a
 * pruned model is smaller and faster for real.
 *
 *   format=csr     unstructured rows (f32, or int8=true: per-channel int8 weights, per-token activations)
 *   format=nm      pattern=2:4 | 4:8: refused, naming the layer, row and columns, when a group holds more
 *   format=block   block=4x1 | 16x16: refused when fewer than min_sparsity of the blocks are all zero
 *   format=auto    per layer: 16×16 or 4×1 blocks when its zeros are (almost all) in such blocks, else N:M
 *                  when it fits and is about half sparse, else CSR
 * A masked layer has its mask baked into its master first (pare_model_bake_mask: the clone's own copy), so
 * the master holds exactly what the sparse layout stores and checkpoints can rebuild it. Layers with fewer
 * zeros than min_sparsity stay f32 (format=csr/auto; CSR below ~70% zeros is not faster than the dense
 * kernel: docs/pruning-sparse-kernels.md); if no selected layer qualifies the pass fails saying which came
 * closest. Layers already stored in another format, or under fake quantization, are refused.
 *
 * Deliberately not here: choosing what to prune (the pruning passes and masks do that), int8 for N:M and
 * blocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "graph/format.h"
#include "graph/transform.h"

static const pare_opt_spec opts[] = {
    {"layers", PARE_OPT_STRING, "*", 0, 0, NULL, "glob over Linear layer names to store sparse (e.g. \"enc.*.ffn.*\")"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of Linear layers to leave as they are (\"\": none)"},
    {"format", PARE_OPT_ENUM, "auto", 0, 0, "auto|csr|nm|block",
     "sparse layout: unstructured rows, N:M groups, blocks, or chosen per layer from its zeros"},
    {"pattern", PARE_OPT_ENUM, "2:4", 0, 0, "2:4|4:8", "format=nm: n kept of every m consecutive input weights"},
    {"block", PARE_OPT_ENUM, "4x1", 0, 0, "4x1|16x16", "format=block: output rows x input columns of a block"},
    {"int8", PARE_OPT_BOOL, "false", 0, 0, NULL,
     "CSR with int8 weights (per output channel) and activations (per token), int32 sums (format=csr or auto)"},
    {"min_sparsity", PARE_OPT_FLOAT, "0.5", 0, 1, NULL,
     "fraction of zero weights (format=block: of all-zero blocks) a layer needs; sparser-than-this layers only"},
};
static const pare_schema schema = {
    "sparsify", "store pruned (masked or zero) Linear weights in a sparse layout with its own kernel: CSR f32/int8, N:M, blocks",
    opts, (int)(sizeof opts / sizeof opts[0])};

/* The spec format=auto picks for W (N,K) of sparsity s. */
static pare_sparse_spec auto_spec(const float *W, int64_t N, int64_t K, double s, int i8)
{
    pare_sparse_spec sp = {.kind = i8 ? PARE_SP_CSR_I8 : PARE_SP_CSR};
    if (i8) return sp;
    if (pare_sparse_block_zero_fraction(W, N, K, 16, 16) >= 0.95 * s) return (pare_sparse_spec){.kind = PARE_SP_BSR, .br = 16, .bc = 16};
    if (pare_sparse_block_zero_fraction(W, N, K, 4, 1) >= 0.95 * s) return (pare_sparse_spec){.kind = PARE_SP_BSR, .br = 4, .bc = 1};
    if (s <= 0.6 && K % 4 == 0 && pare_sparse_nm_violations(W, N, K, 2, 4, NULL, NULL, NULL) == 0)
        return (pare_sparse_spec){.kind = PARE_SP_NM, .n = 2, .m = 4};
    if (s <= 0.6 && K % 8 == 0 && pare_sparse_nm_violations(W, N, K, 4, 8, NULL, NULL, NULL) == 0)
        return (pare_sparse_spec){.kind = PARE_SP_NM, .n = 4, .m = 8};
    return sp;
}

static pare_status apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    const char *fmt = pare_opt_str(o, "format");
    const int i8 = pare_opt_bool(o, "int8");
    const double min_sp = pare_opt_num(o, "min_sparsity");
    if (i8 && (!strcmp(fmt, "nm") || !strcmp(fmt, "block")))
        return pare_fail(PARE_EINVAL, "sparsify: int8=true needs format=csr or auto (int8 kernels exist for CSR only; "
                                      "format=%s is f32)", fmt);
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), n = 0;
    if (!idx) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status st = pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), idx, &n);
    int64_t done = 0;
    double best = -1;
    const char *best_name = "";
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        const pare_node *nd = &m->nodes[idx[i]];
        pare_param *w = &m->params[nd->param[0]];
        if (w->format != PARE_FMT_F32) {
            st = pare_fail(PARE_EINVAL, "sparsify: layer %s is stored as %s; sparsify works on f32 weights (sparsify "
                                        "before quantizing, or exclude the layer)", nd->name, pare_format_label(w));
            break;
        }
        const pare_transform *t = pare_node_transform(nd, PARE_TF_WEIGHT);
        if (pare_node_find_transform(nd, PARE_TF_FAKE_QUANT)) { /* the sparse kernel would silently drop it */
            st = pare_fail(PARE_EINVAL, "sparsify: layer %s has fake quantization on its %s (QAT); convert it "
                                        "(qat_convert) or exclude the layer", nd->name,
                           pare_node_transform(nd, PARE_TF_INPUT) ? "input" : "weight");
            break;
        }
        if (t && (st = pare_model_bake_mask(m, nd->name)) != PARE_OK) break; /* W ⊙ M into the clone's master */
        nd = &m->nodes[idx[i]];
        w = &m->params[nd->param[0]];
        const float *W = w->blob->data;
        int64_t N = w->shape[0], K = w->shape[1];
        double s = pare_sparse_zero_fraction(W, N, K);
        pare_sparse_spec sp = {.kind = i8 ? PARE_SP_CSR_I8 : PARE_SP_CSR};
        if (!strcmp(fmt, "nm")) {
            sp = (pare_sparse_spec){.kind = PARE_SP_NM, .n = !strcmp(pare_opt_str(o, "pattern"), "2:4") ? 2 : 4,
                                    .m = !strcmp(pare_opt_str(o, "pattern"), "2:4") ? 4 : 8};
        } else if (!strcmp(fmt, "block")) {
            int b16 = !strcmp(pare_opt_str(o, "block"), "16x16");
            sp = (pare_sparse_spec){.kind = PARE_SP_BSR, .br = b16 ? 16 : 4, .bc = b16 ? 16 : 1};
            double bz = pare_sparse_block_zero_fraction(W, N, K, sp.br, sp.bc);
            if (bz < min_sp) {
                st = pare_fail(PARE_EINVAL, "sparsify: layer %s: only %.1f%% of its %dx%d blocks are all zero (%.1f%% of its "
                                            "weights are zero; min_sparsity=%g): its zeros are not in %dx%d blocks. Use "
                                            "format=csr, or prune by blocks", nd->name, 100 * bz, sp.br, sp.bc, 100 * s,
                               min_sp, sp.br, sp.bc);
                break;
            }
        } else {
            if (s < min_sp) { /* left in f32: not sparse enough to gain */
                if (s > best) best = s, best_name = nd->name;
                continue;
            }
            if (!strcmp(fmt, "auto")) sp = auto_spec(W, N, K, s, i8);
        }
        char method[64];
        snprintf(method, sizeof method, "sparsify format=%s", fmt);
        if ((st = pare_param_set_sparse(w, &sp, method)) != PARE_OK) {
            st = pare_fail_ctx(st, "sparsify: layer %s", nd->name);
            break;
        }
        done++;
    }
    if (st == PARE_OK && !done)
        st = pare_fail(PARE_EINVAL, "sparsify: no selected layer has min_sparsity=%g zeros (the sparsest: %s with %.1f%%); "
                                    "prune first (masks or zeroed weights), or lower min_sparsity", min_sp,
                       best_name, 100 * (best < 0 ? 0 : best));
    free(idx);
    return st;
}

const pare_pass pare_pass_sparsify = {&schema, apply, 0};
