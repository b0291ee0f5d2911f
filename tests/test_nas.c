/* test_nas.c — the HAT super-network (compress/nas/supernet.h): a sub-transformer's parameters are the
 * super-network's slices (first heads' q, k, v rows and output columns, first FFN neurons, first blocks),
 * bit for bit, written out here from the layout rather than taken from the map; its logits equal the
 * super-network's with the cut parts zeroed (heads' output columns, neurons' down columns, whole residual
 * branches of the removed blocks); its gradients equal that zeroed super-network's at the kept entries
 * (what weight-shared training adds into the super-network); one training step moves only the sampled
 * slices; the sampler; the errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/nas/supernet.h"
#include "graph/exec.h"
#include "model/transformer.h"
#include "test_models.h"

enum { C = 16, H = 4, D = C / H, F = 24, L = 3, T = 7, B = 5, V = 13, NCLS = 3 };

static pare_model *build(void)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, V, NULL},   {"max_T", PARE_KV_NUM, T, NULL},
        {"d", PARE_KV_NUM, C, NULL},         {"heads", PARE_KV_NUM, H, NULL},   {"layers", PARE_KV_NUM, L, NULL},
        {"classes", PARE_KV_NUM, NCLS, NULL}, {"ffn", PARE_KV_NUM, F, NULL},    {"seed", PARE_KV_NUM, 3, NULL},
    };
    return build_perturbed(kv, 9, 11);
}

static const pare_param *param(const pare_model *m, const char *name)
{
    int i = pare_model_find_param(m, name);
    return i < 0 ? NULL : &m->params[i];
}

/* Is sub's parameter `name` (rows, cols) the super-network's rows rsel[0..rows) and columns [0, cols)? */
static int is_slice(const pare_model *sub, const pare_model *sup, const char *name, const int64_t *rsel, int64_t rows,
                    int64_t cols)
{
    const pare_param *p = param(sub, name), *q = param(sup, name);
    if (!p || !q) return diag("%s missing", name), 0;
    if (pare_param_numel(p) != rows * cols) return diag("%s has %lld entries, want %lld", name, (long long)pare_param_numel(p), (long long)(rows * cols)), 0;
    int64_t qc = q->ndim == 2 ? q->shape[1] : 1;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (memcmp(&p->blob->data[r * cols + c], &q->blob->data[rsel[r] * qc + c], sizeof(float)))
                return diag("%s differs at (%lld, %lld)", name, (long long)r, (long long)c), 0;
    return 1;
}

static float *logits_of(pare_model *m, const int32_t *tok, const int32_t *len)
{
    return tiny_logits(m, B, T, tok, len, NCLS);
}

/* A copy of m computing what sub-network c computes: cut heads' output columns, cut neurons' down columns
 * zeroed, and the removed blocks' two residual branches (output projection and down projection, weight and
 * bias) zeroed, so that those blocks are the identity. */
static pare_model *zeroed(const pare_model *m, const pare_nas_config *c)
{
    pare_model *z = pare_model_clone(m);
    char nm[96];
    for (int i = 0; i < L; i++) {
        const char *parts[] = {"attn.out.weight", "attn.out.bias", "ffn.down.weight", "ffn.down.bias"};
        for (int k = 0; k < 4; k++) {
            snprintf(nm, sizeof nm, "enc.%d.%s", i, parts[k]);
            pare_param *p = &z->params[pare_model_find_param(z, nm)];
            pare_param_make_private(p);
            int64_t rows = p->ndim == 2 ? p->shape[0] : 1, cols = p->ndim == 2 ? p->shape[1] : p->shape[0];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t col = 0; col < cols; col++) {
                    int cut = i >= c->layers;
                    if (!cut && p->ndim == 2 && k == 0) cut = col >= (int64_t)c->heads[i] * D;
                    if (!cut && p->ndim == 2 && k == 2) cut = col >= c->ffn[i];
                    if (cut) p->blob->data[r * cols + col] = 0;
                }
        }
    }
    return z;
}

/* The gradients of m (its own grad buffers) on one batch in a training executor (no dropout: the builder's
 * dropout is 0). */
static int grads_of(pare_model *m, const int32_t *tok, const int32_t *len, const int32_t *lab)
{
    pare_exec *x = NULL;
    int ok_ = pare_model_alloc_grads(m) == PARE_OK && pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) == PARE_OK &&
              pare_exec_bind(x, tok, len, lab) == PARE_OK && pare_exec_forward(x) == PARE_OK;
    if (ok_) {
        pare_model_zero_grad(m);
        ok_ = pare_exec_backward(x) == PARE_OK;
    }
    if (!ok_) diag("grads: %s", pare_errmsg());
    pare_exec_free(x);
    return ok_;
}

int main(void)
{
    tap_plan_lazy();
    pare_model *sup = build();
    if (!sup) return ok(0, "build"), tap_done();
    int nb, hb[PARE_NAS_MAX_LAYERS];
    int64_t fb[PARE_NAS_MAX_LAYERS];
    char pre[PARE_NAS_MAX_LAYERS][PARE_NAS_PREFIX_MAX];
    ok(pare_nas_blocks(sup, &nb, hb, fb, pre) == PARE_OK && nb == L && hb[2] == H && fb[1] == F &&
           !strcmp(pre[2], "enc.2"), "blocks: 3 of 4 heads and 24 neurons, enc.0..enc.2");

    /* ---- the slices, from the layout ---- */
    pare_nas_config c = {.layers = 2, .heads = {1, 3}, .ffn = {8, F}};
    pare_model *sub = NULL;
    ok(pare_nas_extract(&sub, sup, &c) == PARE_OK, "extract l=2 heads {1,3} ffn {8,24}: %s", sub ? "" : pare_errmsg());
    if (!sub) return tap_done();
    int slices = 1;
    char nm[96];
    for (int i = 0; i < 2; i++) {
        int64_t rows[3 * C], n = 0, id[F];
        for (int part = 0; part < 3; part++) /* q, k, v: rows part·C + h·D + r for the kept heads h */
            for (int h = 0; h < c.heads[i]; h++)
                for (int r = 0; r < D; r++) rows[n++] = part * C + h * D + r;
        for (int64_t k = 0; k < F; k++) id[k] = k;
        snprintf(nm, sizeof nm, "enc.%d.attn.qkv.weight", i), slices &= is_slice(sub, sup, nm, rows, n, C);
        snprintf(nm, sizeof nm, "enc.%d.attn.qkv.bias", i), slices &= is_slice(sub, sup, nm, rows, n, 1);
        snprintf(nm, sizeof nm, "enc.%d.attn.out.weight", i), slices &= is_slice(sub, sup, nm, id, C, c.heads[i] * D);
        snprintf(nm, sizeof nm, "enc.%d.attn.out.bias", i), slices &= is_slice(sub, sup, nm, id, 1, C);
        snprintf(nm, sizeof nm, "enc.%d.ffn.up.weight", i), slices &= is_slice(sub, sup, nm, id, c.ffn[i], C);
        snprintf(nm, sizeof nm, "enc.%d.ffn.up.bias", i), slices &= is_slice(sub, sup, nm, id, c.ffn[i], 1);
        snprintf(nm, sizeof nm, "enc.%d.ffn.down.weight", i), slices &= is_slice(sub, sup, nm, id, C, c.ffn[i]);
    }
    ok(slices, "every sliced parameter is the super-network's first heads' q, k, v rows / output columns and first "
               "neurons' up rows / down columns, bit for bit");
    int same = 1, absent = 1;
    for (int64_t k = 0; k < sub->nparams; k++) {
        const pare_param *p = &sub->params[k], *q = param(sup, p->name);
        if (!q) same = 0;
        else if (pare_param_numel(p) == pare_param_numel(q))
            same &= !memcmp(p->blob->data, q->blob->data, sizeof(float) * (size_t)pare_param_numel(p));
        if (!strncmp(p->name, "enc.2.", 6)) absent = 0;
    }
    ok(same, "unsliced parameters (embeddings, LayerNorms, head, full layers) are the super-network's");
    ok(absent && pare_model_find_node(sub, "enc.2.attn") < 0, "block enc.2 is gone");

    /* ---- the map agrees with the layout ---- */
    pare_nas_map map;
    int mapped = pare_nas_map_new(&map, sup, &c) == PARE_OK && map.nparams == sub->nparams;
    for (int64_t k = 0; mapped && k < sub->nparams; k++) {
        const pare_param *p = &sub->params[k], *q = &sup->params[map.super_param[k]];
        mapped &= !strcmp(p->name, q->name);
        for (int64_t j = 0; mapped && j < pare_param_numel(p); j++)
            mapped &= p->blob->data[j] == q->blob->data[map.index[k] ? map.index[k][j] : j];
    }
    ok(mapped, "the slice map sends every sub-network entry to the super-network entry it equals");

    /* ---- logits: the sub-network is the super-network with the cut parts zeroed ---- */
    int32_t tok[B * T], len[B], lab[B];
    pare_rng r;
    pare_rng_seed(&r, 9);
    for (int b = 0; b < B; b++) {
        len[b] = 2 + (int32_t)pare_rng_below(&r, T - 1), lab[b] = (int32_t)pare_rng_below(&r, NCLS);
        for (int t = 0; t < T; t++) tok[b * T + t] = t < len[b] ? 1 + (int32_t)pare_rng_below(&r, V - 1) : 0;
    }
    pare_model *z = zeroed(sup, &c);
    float *ls = logits_of(sub, tok, len), *lz = logits_of(z, tok, len), *lf = logits_of(sup, tok, len);
    if (ls && lz && lf) {
        is_close_arr(ls, lz, B * NCLS, 1e-6, 1e-5, "sub-network logits = super-network with cut heads, neurons, blocks zeroed");
        double gap = 0, eq = 0;
        for (int k = 0; k < B * NCLS; k++) gap = fmax(gap, fabs(ls[k] - lf[k])), eq = fmax(eq, fabs(ls[k] - lz[k]));
        diag("max |sub - zeroed super| = %.3g", eq);
        ok(gap > 1e-3, "and differ from the full super-network's (max |diff| %.3g): the cut is not vacuous", gap);
    }
    free(ls), free(lz), free(lf);

    /* ---- gradients: the sub-network's are the zeroed super-network's at the kept entries ---- */
    if (grads_of(sub, tok, len, lab) && grads_of(z, tok, len, lab) && mapped) {
        float *gs = malloc(sizeof(float) * 200000), *gz = malloc(sizeof(float) * 200000);
        long n = 0;
        for (int64_t k = 0; k < sub->nparams; k++) {
            const pare_param *p = &sub->params[k];
            const pare_param *q = &z->params[pare_model_find_param(z, p->name)];
            for (int64_t j = 0; j < pare_param_numel(p) && n < 200000; j++, n++)
                gs[n] = p->grad[j], gz[n] = q->grad[map.index[k] ? map.index[k][j] : j];
        }
        is_close_arr(gs, gz, n, 1e-6, 1e-4, "sub-network gradients = the zeroed super-network's at the mapped entries");
        free(gs), free(gz);
    }
    pare_nas_map_free(&map);
    pare_nas_map_free(&map);
    pare_model_free(z);
    pare_model_free(sub);

    /* ---- one training step moves the sampled slices only (weight decay 0, first AdamW step) ---- */
    {
        pare_dataset tr = {0}, te = {0};
        pare_kv tkv[] = {{"seed", PARE_KV_NUM, 1, NULL}, {"n_train", PARE_KV_NUM, 64, NULL}, {"n_test", PARE_KV_NUM, 8, NULL},
                         {"n_pairs", PARE_KV_NUM, 2, NULL}, {"min_pairs", PARE_KV_NUM, 2, NULL}, {"n_keys", PARE_KV_NUM, 2, NULL},
                         {"n_values", PARE_KV_NUM, 3, NULL}};
        pare_status ts = pare_task_make_kv(&tr, &te, "recall", tkv, 7);
        if (ts != PARE_OK) diag("task: %s", pare_errmsg());
        pare_kv mkv[] = {{"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, (double)tr.vocab, NULL},
                         {"max_T", PARE_KV_NUM, (double)tr.T, NULL}, {"d", PARE_KV_NUM, C, NULL},
                         {"heads", PARE_KV_NUM, H, NULL}, {"layers", PARE_KV_NUM, L, NULL},
                         {"classes", PARE_KV_NUM, (double)tr.nclass, NULL}, {"ffn", PARE_KV_NUM, F, NULL}};
        pare_options mo, o;
        pare_model *m = NULL;
        if (ts == PARE_OK && pare_opts_resolve(&mo, &pare_model_schema, mkv, 8) == PARE_OK &&
            pare_transformer_build(&m, &mo) == PARE_OK) {
            pare_model *before = pare_model_clone(m);
            for (int64_t i = 0; i < before->nparams; i++) pare_param_make_private(&before->params[i]);
            pare_nas_space sp = {.nlayers = 1, .layers = {2}, .nheads = 1, .heads = {2}, .nffn = 1, .ffn = {8}};
            pare_kv okv[] = {{"steps", PARE_KV_NUM, 1, NULL}, {"weight_decay", PARE_KV_NUM, 0, NULL},
                             {"warmup", PARE_KV_NUM, 0, NULL}, {"batch", PARE_KV_NUM, 8, NULL}};
            pare_nas_train_result res;
            pare_status st = pare_opts_resolve(&o, &pare_nas_train_schema, okv, 4);
            if (st == PARE_OK) st = pare_nas_train(m, &sp, &tr, &o, NULL, NULL, &res);
            ok(st == PARE_OK && res.steps == 1 && res.uniform == 1, "one step of weight-shared training: %s",
               st == PARE_OK ? "ok" : pare_errmsg());
            pare_nas_config one = {.layers = 2, .heads = {2, 2}, .ffn = {8, 8}};
            pare_nas_map mp;
            int64_t inside = 0, moved_in = 0, moved_out = 0;
            if (st == PARE_OK && pare_nas_map_new(&mp, before, &one) == PARE_OK) {
                for (int64_t i = 0; i < m->nparams; i++) {
                    const pare_param *p = &m->params[i], *q = &before->params[i];
                    if (!p->trainable) continue;
                    int64_t n = pare_param_numel(p);
                    unsigned char *in = calloc((size_t)n, 1);
                    for (int64_t k = 0; k < mp.nparams; k++) /* the entries the sub-network holds */
                        if (mp.super_param[k] == i)
                            for (int64_t j = 0; j < mp.numel[k]; j++) in[mp.index[k] ? mp.index[k][j] : j] = 1;
                    for (int64_t j = 0; j < n; j++) {
                        int moved = memcmp(&p->blob->data[j], &q->blob->data[j], sizeof(float)) != 0;
                        inside += in[j], moved_in += in[j] && moved, moved_out += !in[j] && moved;
                    }
                    free(in);
                }
                pare_nas_map_free(&mp);
            }
            ok(moved_out == 0, "entries outside the sampled slices did not move (%lld moved)", (long long)moved_out);
            ok(inside > 0 && moved_in > inside * 9 / 10, "entries inside moved: %lld of %lld", (long long)moved_in,
               (long long)inside);
            pare_model_free(before);
        }
        pare_model_free(m);
        pare_dataset_free(&tr), pare_dataset_free(&te);
    }
    /* ---- errors name the option and the valid range ---- */
    struct { pare_nas_config c; const char *want; } bad[] = {
        {{.layers = 4, .heads = {1, 1, 1, 1}, .ffn = {1, 1, 1, 1}}, "layers = 4 is outside [1, 3]"},
        {{.layers = 0}, "layers = 0 is outside [1, 3]"},
        {{.layers = 2, .heads = {1, 5}, .ffn = {1, 1}}, "heads[2] = 5 is outside [1, 4] (enc.1.attn has 4 heads)"},
        {{.layers = 1, .heads = {0}, .ffn = {1}}, "heads[1] = 0 is outside [1, 4]"},
        {{.layers = 1, .heads = {1}, .ffn = {25}}, "ffn[1] = 25 is outside [1, 24] (enc.0.ffn.up has 24 neurons)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pare_model *s = NULL;
        pare_status st = pare_nas_extract(&s, sup, &bad[i].c);
        ok(st == PARE_EINVAL && !s && strstr(pare_errmsg(), bad[i].want), "refused: %s", pare_errmsg());
    }
    struct { pare_nas_space sp; const char *want; } bads[] = {
        {{.nlayers = 1, .layers = {4}, .nheads = 1, .heads = {1}, .nffn = 1, .ffn = {1}}, "space.layers holds 4; valid: 1..3"},
        {{.nlayers = 1, .layers = {1}, .nheads = 1, .heads = {8}, .nffn = 1, .ffn = {1}}, "space.heads holds 8; valid: 1..4"},
        {{.nlayers = 1, .layers = {1}, .nheads = 1, .heads = {1}, .nffn = 1, .ffn = {0}}, "space.ffn holds 0; valid: 1..24"},
        {{.nlayers = 1, .layers = {1}, .nheads = 0, .nffn = 1, .ffn = {1}}, "space.heads is empty"},
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++)
        ok(pare_nas_check_space(sup, &bads[i].sp) == PARE_EINVAL && strstr(pare_errmsg(), bads[i].want), "refused: %s",
           pare_errmsg());

    /* ---- the sampler: largest, smallest, uniform covers every choice ---- */
    {
        pare_nas_space sp = {.nlayers = 2, .layers = {3, 1}, .nheads = 3, .heads = {2, 4, 1}, .nffn = 2, .ffn = {8, 24}};
        pare_nas_config s;
        pare_nas_sample(&s, &sp, NULL, PARE_NAS_SAMPLE_LARGEST);
        ok(s.layers == 3 && s.heads[0] == 4 && s.heads[2] == 4 && s.ffn[1] == 24, "largest: 3 layers of 4 heads, 24 neurons");
        pare_nas_sample(&s, &sp, NULL, PARE_NAS_SAMPLE_SMALLEST);
        ok(s.layers == 1 && s.heads[0] == 1 && s.ffn[0] == 8, "smallest: 1 layer of 1 head, 8 neurons");
        int seen_h[5] = {0}, seen_l[4] = {0}, valid = 1;
        pare_rng_seed(&r, 4);
        for (int k = 0; k < 200; k++) {
            pare_nas_sample(&s, &sp, &r, PARE_NAS_SAMPLE_UNIFORM);
            seen_l[s.layers]++;
            for (int i = 0; i < s.layers; i++) {
                seen_h[s.heads[i]]++;
                valid &= (s.heads[i] == 1 || s.heads[i] == 2 || s.heads[i] == 4) && (s.ffn[i] == 8 || s.ffn[i] == 24);
            }
            valid &= pare_nas_check(sup, &s) == PARE_OK;
        }
        ok(valid && seen_l[1] && seen_l[3] && !seen_l[2] && seen_h[1] && seen_h[2] && seen_h[4] && !seen_h[3],
           "uniform: 200 draws use every choice and nothing else (layers 1: %d, 3: %d)", seen_l[1], seen_l[3]);
    }
    pare_model_free(sup);
    return tap_done();
}
