/* supernet.c — HAT's weight-sharing SuperTransformer on pare's structured-pruning surgery: sub-network
 * extraction (first layers, first heads, first FFN neurons), the slice map, sampling, and weight-shared
 * training with the optimizer state on the super-network. supernet.h has the overview and what is
 * deliberately left out. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/timer.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "graph/transform.h"
#include "supernet.h"

/* ---------------------------------------------------------------------------------------------------- */
/* the super-network's blocks                                                                            */
/* ---------------------------------------------------------------------------------------------------- */

pare_status pare_nas_blocks(const pare_model *m, int *L, int *H, int64_t *F, char (*prefix)[PARE_NAS_PREFIX_MAX])
{
    if (!strcmp(m->kind, "encdec"))
        return pare_fail(PARE_EINVAL, "nas: an encoder-decoder model has two stacks and cross-attention; a super-network "
                         "is one stack (kind encoder, tagger or decoder)");
    int n = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        size_t len = strlen(nd->name);
        if (nd->op != PARE_OP_ATTENTION) continue;
        if (len < 6 || strcmp(nd->name + len - 5, ".attn"))
            return pare_fail(PARE_EINVAL, "nas: attention node %s is not named <block>.attn", nd->name);
        if (n == PARE_NAS_MAX_LAYERS)
            return pare_fail(PARE_EINVAL, "nas: more than %d attention layers", PARE_NAS_MAX_LAYERS);
        char p[PARE_NAME_MAX], up[PARE_NAME_MAX + 8];
        snprintf(p, sizeof p, "%.*s", (int)(len - 5), nd->name);
        snprintf(up, sizeof up, "%s.ffn.up", p);
        int u = pare_model_find_node(m, up);
        if (u < 0 || m->nodes[u].op != PARE_OP_LINEAR)
            return pare_fail(PARE_EINVAL, "nas: block %s has no FFN up projection %s", p, up);
        if (H) H[n] = nd->a.heads;
        if (F) F[n] = m->values[m->nodes[u].out].cols;
        if (prefix) snprintf(prefix[n], PARE_NAS_PREFIX_MAX, "%s", p);
        n++;
    }
    if (n == 0)
        return pare_fail(PARE_EINVAL, "nas: the model has no fused attention layer (build it with fused=true; a "
                         "super-network's blocks are <block>.attn + <block>.ffn.up)");
    *L = n;
    return PARE_OK;
}

pare_status pare_nas_check(const pare_model *m, const pare_nas_config *c)
{
    int L, H[PARE_NAS_MAX_LAYERS];
    int64_t F[PARE_NAS_MAX_LAYERS];
    char pre[PARE_NAS_MAX_LAYERS][PARE_NAS_PREFIX_MAX];
    PARE_TRY(pare_nas_blocks(m, &L, H, F, pre));
    if (c->layers < 1 || c->layers > L)
        return pare_fail(PARE_EINVAL, "nas: layers = %d is outside [1, %d] (the super-network has %d blocks)", c->layers,
                         L, L);
    for (int i = 0; i < c->layers; i++) {
        if (c->heads[i] < 1 || c->heads[i] > H[i])
            return pare_fail(PARE_EINVAL, "nas: heads[%d] = %d is outside [1, %d] (%s.attn has %d heads)", i + 1,
                             c->heads[i], H[i], pre[i], H[i]);
        if (c->ffn[i] < 1 || c->ffn[i] > F[i])
            return pare_fail(PARE_EINVAL, "nas: ffn[%d] = %lld is outside [1, %lld] (%s.ffn.up has %lld neurons)", i + 1,
                             (long long)c->ffn[i], (long long)F[i], pre[i], (long long)F[i]);
    }
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].ntf > 0)
            return pare_fail(PARE_EINVAL, "nas: %s carries a weight transform (%s); a super-network is a plain f32 model",
                             m->nodes[i].name, pare_tf_name(m->nodes[i].tf[0].kind));
    for (int64_t i = 0; i < m->nparams; i++)
        if (m->params[i].format != PARE_FMT_F32)
            return pare_fail(PARE_EINVAL, "nas: parameter %s is stored as %s; a super-network is a plain f32 model",
                             m->params[i].name, pare_format_label(&m->params[i]));
    return PARE_OK;
}

pare_status pare_nas_check_space(const pare_model *m, const pare_nas_space *sp)
{
    int L, H[PARE_NAS_MAX_LAYERS];
    int64_t F[PARE_NAS_MAX_LAYERS];
    PARE_TRY(pare_nas_blocks(m, &L, H, F, NULL));
    int hmin = H[0];
    int64_t fmin = F[0];
    for (int i = 1; i < L; i++) hmin = H[i] < hmin ? H[i] : hmin, fmin = F[i] < fmin ? F[i] : fmin;
    if (sp->nlayers < 1 || sp->nheads < 1 || sp->nffn < 1)
        return pare_fail(PARE_EINVAL, "nas: space.%s is empty (give at least one choice)",
                         sp->nlayers < 1 ? "layers" : sp->nheads < 1 ? "heads" : "ffn");
    for (int k = 0; k < sp->nlayers; k++)
        if (sp->layers[k] < 1 || sp->layers[k] > L)
            return pare_fail(PARE_EINVAL, "nas: space.layers holds %d; valid: 1..%d (the super-network's blocks)",
                             sp->layers[k], L);
    for (int k = 0; k < sp->nheads; k++)
        if (sp->heads[k] < 1 || sp->heads[k] > hmin)
            return pare_fail(PARE_EINVAL, "nas: space.heads holds %d; valid: 1..%d (heads of the super-network's blocks)",
                             sp->heads[k], hmin);
    for (int k = 0; k < sp->nffn; k++)
        if (sp->ffn[k] < 1 || sp->ffn[k] > fmin)
            return pare_fail(PARE_EINVAL, "nas: space.ffn holds %lld; valid: 1..%lld (FFN neurons of the super-network's "
                             "blocks)", (long long)sp->ffn[k], (long long)fmin);
    return PARE_OK;
}

/* ---------------------------------------------------------------------------------------------------- */
/* extraction: the surgery of graph/rewrite.h on a clone                                                  */
/* ---------------------------------------------------------------------------------------------------- */

/* The surgery itself, on m in place (a clone): blocks l..L−1 removed (last first), then heads and neurons. */
static pare_status cut(pare_model *m, const pare_nas_config *c)
{
    int L, H[PARE_NAS_MAX_LAYERS];
    int64_t F[PARE_NAS_MAX_LAYERS];
    char pre[PARE_NAS_MAX_LAYERS][PARE_NAS_PREFIX_MAX];
    PARE_TRY(pare_nas_blocks(m, &L, H, F, pre));
    for (int i = L - 1; i >= c->layers; i--) {
        char pat[PARE_NAS_PREFIX_MAX + 4];
        snprintf(pat, sizeof pat, "%.80s.*", pre[i]);
        PARE_TRY(pare_model_remove_nodes(m, pat));
    }
    int drop_h[1024];
    for (int i = 0; i < c->layers; i++) {
        char nm[PARE_NAS_PREFIX_MAX + 16];
        if (c->heads[i] < H[i]) {
            int n = 0;
            for (int h = c->heads[i]; h < H[i] && n < 1024; h++) drop_h[n++] = h;
            snprintf(nm, sizeof nm, "%.80s.attn", pre[i]);
            PARE_TRY(pare_model_drop_heads(m, pare_model_find_node(m, nm), drop_h, n));
        }
        if (c->ffn[i] < F[i]) {
            int64_t n = F[i] - c->ffn[i];
            int64_t *d = pare_alloc((size_t)n * sizeof *d);
            if (!d) return pare_fail(PARE_ENOMEM, "nas: out of memory");
            for (int64_t j = 0; j < n; j++) d[j] = c->ffn[i] + j;
            snprintf(nm, sizeof nm, "%.80s.ffn.up", pre[i]);
            pare_status st = pare_model_drop_channels(m, pare_model_find_node(m, nm), d, n);
            pare_free(d);
            PARE_TRY(st);
        }
    }
    return PARE_OK;
}

pare_status pare_nas_extract(pare_model **out, const pare_model *m, const pare_nas_config *c)
{
    *out = NULL;
    PARE_TRY(pare_nas_check(m, c));
    pare_model *s = pare_model_clone(m);
    if (!s) return pare_fail(PARE_ENOMEM, "nas: out of memory copying the super-network");
    pare_status st = cut(s, c);
    if (st != PARE_OK) {
        pare_model_free(s);
        return pare_fail_ctx(st, "nas: extracting the sub-network");
    }
    char what[64] = "nas_extract(l=";
    size_t u = strlen(what);
    u += (size_t)snprintf(what + u, sizeof what - u, "%d)", c->layers);
    size_t a = strlen(s->applied);
    if (a + u + 2 < sizeof s->applied) snprintf(s->applied + a, sizeof s->applied - a, "%s%s", a ? "+" : "", what);
    *out = s;
    return PARE_OK;
}

/* ---------------------------------------------------------------------------------------------------- */
/* the slice map: the same surgery on a copy whose entries hold their own flat index                     */
/* ---------------------------------------------------------------------------------------------------- */

#define INDEX_EXACT (1 << 24) /* every integer up to 2^24 is a float exactly */

void pare_nas_map_free(pare_nas_map *map)
{
    if (map->index)
        for (int64_t k = 0; k < map->nparams; k++) pare_free(map->index[k]);
    pare_free(map->index);
    pare_free(map->super_param);
    pare_free(map->numel);
    memset(map, 0, sizeof *map);
}

pare_status pare_nas_map_new(pare_nas_map *out, const pare_model *m, const pare_nas_config *c)
{
    memset(out, 0, sizeof *out);
    PARE_TRY(pare_nas_check(m, c));
    pare_model *e = pare_model_clone(m);
    if (!e) return pare_fail(PARE_ENOMEM, "nas: out of memory");
    pare_status st = PARE_OK;
    /* each parameter's entries := their index (parameters too large to index exactly keep their values: the
     * surgery only slices attention and FFN weights, which must then be small enough) */
    for (int64_t i = 0; i < e->nparams && st == PARE_OK; i++) {
        pare_param *p = &e->params[i];
        int64_t n = pare_param_numel(p);
        if (n > INDEX_EXACT) continue;
        if ((st = pare_param_make_private(p)) != PARE_OK) break; /* e's own copy, then overwritten */
        for (int64_t j = 0; j < n; j++) p->blob->data[j] = (float)j;
    }
    if (st == PARE_OK) st = cut(e, c);
    if (st == PARE_OK) {
        out->nparams = e->nparams;
        out->super_param = pare_calloc((size_t)e->nparams * sizeof *out->super_param);
        out->index = pare_calloc((size_t)e->nparams * sizeof *out->index);
        out->numel = pare_calloc((size_t)e->nparams * sizeof *out->numel);
        if (!out->super_param || !out->index || !out->numel) st = pare_fail(PARE_ENOMEM, "nas: out of memory");
    }
    for (int64_t k = 0; st == PARE_OK && k < e->nparams; k++) {
        const pare_param *p = &e->params[k];
        int sp = pare_model_find_param(m, p->name);
        if (sp < 0) {
            st = pare_fail(PARE_EINVAL, "nas: sub-network parameter %s has no namesake in the super-network", p->name);
            break;
        }
        out->super_param[k] = sp;
        const pare_param *q = &m->params[sp];
        int64_t n = pare_param_numel(p), nq = pare_param_numel(q);
        out->numel[k] = n;
        if (n == nq) continue; /* unsliced */
        if (nq > INDEX_EXACT) {
            st = pare_fail(PARE_EINVAL, "nas: parameter %s has %lld entries; slicing indexes at most %d", q->name,
                           (long long)nq, INDEX_EXACT);
            break;
        }
        int64_t *ix = pare_alloc((size_t)n * sizeof *ix);
        if (!ix) {
            st = pare_fail(PARE_ENOMEM, "nas: out of memory");
            break;
        }
        for (int64_t j = 0; j < n; j++) ix[j] = (int64_t)p->blob->data[j];
        out->index[k] = ix;
    }
    pare_model_free(e);
    if (st != PARE_OK) pare_nas_map_free(out);
    return st;
}

/* ---------------------------------------------------------------------------------------------------- */
/* sampling                                                                                               */
/* ---------------------------------------------------------------------------------------------------- */

static int pick_int(const int *v, int n, pare_rng *r, int mode)
{
    int best = v[0];
    for (int k = 1; k < n; k++)
        if ((mode == PARE_NAS_SAMPLE_LARGEST && v[k] > best) || (mode == PARE_NAS_SAMPLE_SMALLEST && v[k] < best)) best = v[k];
    return mode == PARE_NAS_SAMPLE_UNIFORM ? v[pare_rng_below(r, (uint64_t)n)] : best;
}

static int64_t pick_i64(const int64_t *v, int n, pare_rng *r, int mode)
{
    int64_t best = v[0];
    for (int k = 1; k < n; k++)
        if ((mode == PARE_NAS_SAMPLE_LARGEST && v[k] > best) || (mode == PARE_NAS_SAMPLE_SMALLEST && v[k] < best)) best = v[k];
    return mode == PARE_NAS_SAMPLE_UNIFORM ? v[pare_rng_below(r, (uint64_t)n)] : best;
}

void pare_nas_sample(pare_nas_config *c, const pare_nas_space *sp, pare_rng *rng, int mode)
{
    memset(c, 0, sizeof *c);
    c->layers = pick_int(sp->layers, sp->nlayers, rng, mode);
    for (int i = 0; i < c->layers; i++) {
        c->heads[i] = pick_int(sp->heads, sp->nheads, rng, mode);
        c->ffn[i] = pick_i64(sp->ffn, sp->nffn, rng, mode);
    }
}

/* ---------------------------------------------------------------------------------------------------- */
/* weight-shared training                                                                                 */
/* ---------------------------------------------------------------------------------------------------- */

static const pare_opt_spec nas_train_opts[] = {
    PARE_TRAIN_OPTIM_OPTS,
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "batch order, sampled configurations and dropout seed"},
    {"sample", PARE_OPT_ENUM, "uniform", 0, 0, "uniform|sandwich",
     "uniform: every step a uniform draw from the space (HAT); sandwich: steps cycle largest, uniform, smallest, uniform"},
};
const pare_schema pare_nas_train_schema = {"nas_train",
                                           "weight-shared training of a super-network (HAT): m:nas_train(task, space, opts)",
                                           nas_train_opts, (int)(sizeof nas_train_opts / sizeof nas_train_opts[0])};

/* One step's forward and backward on sub, then its gradients added into m's slices. */
static pare_status sub_step(pare_model *m, pare_model *sub, const pare_nas_map *map, const pare_dataset *d, int64_t B,
                            const int64_t *idx, int32_t *tok, int32_t *len, int32_t *lab, int32_t *types, float *targets,
                            pare_rng *drop_rng, float *loss)
{
    pare_exec *x = NULL;
    pare_status st = pare_model_alloc_grads(sub);
    if (st == PARE_OK) st = pare_exec_new(&x, sub, B, d->T, PARE_EXEC_TRAIN);
    if (st != PARE_OK) return st;
    x->rng = *drop_rng;
    pare_dataset_gather(d, idx, B, tok, len, lab);
    st = pare_exec_bind(x, tok, len, lab);
    if (st == PARE_OK && sub->types >= 0) {
        pare_dataset_gather_extra(d, idx, B, types, NULL);
        st = pare_exec_bind_types(x, types);
    }
    int reg = pare_model_regression_target(sub);
    if (st == PARE_OK && reg >= 0) {
        pare_dataset_gather_extra(d, idx, B, NULL, targets);
        st = pare_exec_bind_target(x, reg, targets);
    }
    if (st == PARE_OK) st = pare_exec_forward(x);
    if (st == PARE_OK && !isfinite(x->loss)) st = pare_fail(PARE_ENUMERIC, "loss is %s", isnan(x->loss) ? "NaN" : "Inf");
    if (st == PARE_OK) {
        *loss = x->loss;
        pare_model_zero_grad(sub);
        st = pare_exec_backward(x);
    }
    *drop_rng = x->rng;
    pare_exec_free(x);
    if (st != PARE_OK) return st;
    for (int64_t k = 0; k < sub->nparams; k++) {
        const pare_param *p = &sub->params[k];
        pare_param *q = &m->params[map->super_param[k]];
        if (!p->grad || !q->grad) continue;
        int64_t n = pare_param_numel(p);
        if (!map->index[k])
            for (int64_t j = 0; j < n; j++) q->grad[j] += p->grad[j];
        else
            for (int64_t j = 0; j < n; j++) q->grad[map->index[k][j]] += p->grad[j];
    }
    return PARE_OK;
}

pare_status pare_nas_train(pare_model *m, const pare_nas_space *sp, const pare_dataset *train, const pare_options *o,
                           pare_progress_fn progress, void *ud, pare_nas_train_result *out)
{
    memset(out, 0, sizeof *out);
    PARE_TRY(pare_nas_check_space(m, sp));
    pare_nas_config big;
    pare_nas_sample(&big, sp, NULL, PARE_NAS_SAMPLE_LARGEST);
    PARE_TRY(pare_nas_check(m, &big));
    if (train->src_tokens) return pare_fail(PARE_EINVAL, "nas_train: dataset '%s' has source sequences (encdec)", train->name);
    /* the data set fits the model (train/loop.c makes the same checks for m:train) */
    if (train->n < 1) return pare_fail(PARE_EINVAL, "nas_train: dataset '%s' is empty", train->name);
    if ((train->kind == PARE_TASK_LM) != (m->lm != 0))
        return pare_fail(PARE_EINVAL, "nas_train: dataset '%s' is a %s task but the super-network is a %s", train->name,
                         train->kind == PARE_TASK_LM ? "language-modelling" : "classification", m->kind);
    if (train->T > m->max_T || train->vocab > m->vocab || (!m->lm && train->nclass > m->nclass))
        return pare_fail(PARE_ESHAPE, "nas_train: dataset '%s' (T %lld, vocab %d, %d classes) does not fit the super-network "
                         "(max_T %lld, vocab %lld, %lld classes)", train->name, (long long)train->T, train->vocab,
                         train->nclass, (long long)m->max_T, (long long)m->vocab, (long long)m->nclass);
    if ((pare_model_regression_target(m) >= 0) != (!m->lm && train->targets != NULL))
        return pare_fail(PARE_EINVAL, "nas_train: dataset '%s' and the super-network disagree on regression (a score per "
                         "example) against classification", train->name);
    int64_t steps = pare_opt_int(o, "steps"), B = pare_opt_int(o, "batch"), warmup = pare_opt_int(o, "warmup");
    float lr = (float)pare_opt_num(o, "lr"), minr = (float)pare_opt_num(o, "min_lr_ratio");
    float wd = (float)pare_opt_num(o, "weight_decay"), b1 = (float)pare_opt_num(o, "beta1");
    float b2 = (float)pare_opt_num(o, "beta2"), eps = (float)pare_opt_num(o, "eps"), clip = (float)pare_opt_num(o, "clip");
    int sandwich = !strcmp(pare_opt_str(o, "sample"), "sandwich");

    int64_t T = train->T;
    int64_t *idx = pare_alloc((size_t)B * sizeof *idx);
    int32_t *tok = pare_alloc((size_t)(B * T) * sizeof *tok), *len = pare_alloc((size_t)B * sizeof *len);
    int32_t *lab = pare_alloc((size_t)(B * T) * sizeof *lab), *types = pare_alloc((size_t)(B * T) * sizeof *types);
    float *targets = pare_alloc((size_t)B * sizeof *targets);
    pare_status st = idx && tok && len && lab && types && targets ? PARE_OK : pare_fail(PARE_ENOMEM, "nas_train: out of memory");
    /* the super-network owns its weights (AdamW writes them) and its moments for the whole run; a sub-network
     * extracted earlier shares the blobs the surgery left whole (embeddings, LayerNorms, the head), and
     * pare_model_alloc_grads makes them private only when it first allocates, so make them private here */
    for (int64_t i = 0; st == PARE_OK && i < m->nparams; i++)
        if (m->params[i].trainable) st = pare_param_make_private(&m->params[i]);
    if (st == PARE_OK) st = pare_model_alloc_grads(m);
    pare_rng rng, cfg_rng, drop_rng;
    pare_rng_seed(&rng, (uint64_t)pare_opt_num(o, "seed"));
    cfg_rng = pare_rng_split(&rng, 0x5a3), drop_rng = pare_rng_split(&rng, 0xd80);
    int64_t t0 = pare_now_ns();
    double ema = 0;
    for (int64_t s = 0; st == PARE_OK && s < steps; s++) {
        int mode = !sandwich ? PARE_NAS_SAMPLE_UNIFORM
                   : s % 4 == 0 ? PARE_NAS_SAMPLE_LARGEST
                   : s % 4 == 2 ? PARE_NAS_SAMPLE_SMALLEST
                                : PARE_NAS_SAMPLE_UNIFORM;
        pare_nas_config c;
        pare_nas_sample(&c, sp, &cfg_rng, mode);
        out->largest += mode == PARE_NAS_SAMPLE_LARGEST, out->smallest += mode == PARE_NAS_SAMPLE_SMALLEST;
        out->uniform += mode == PARE_NAS_SAMPLE_UNIFORM;
        for (int64_t b = 0; b < B; b++) idx[b] = (int64_t)pare_rng_below(&rng, (uint64_t)train->n);
        pare_model *sub = NULL;
        pare_nas_map map = {0};
        float loss = 0;
        st = pare_nas_extract(&sub, m, &c);
        if (st == PARE_OK) st = pare_nas_map_new(&map, m, &c);
        if (st == PARE_OK) {
            pare_model_zero_grad(m);
            st = sub_step(m, sub, &map, train, B, idx, tok, len, lab, types, targets, &drop_rng, &loss);
        }
        pare_nas_map_free(&map);
        pare_model_free(sub); /* before the update: m's blobs are m's alone again */
        if (st != PARE_OK) {
            st = pare_fail_ctx(st, "nas_train: step %lld (layers=%d)", (long long)s, c.layers);
            break;
        }
        pare_clip_grad_norm(m, clip);
        float lr_s = pare_lr_at(s, steps, warmup, lr, minr);
        pare_adamw_step(m, lr_s, b1, b2, eps, wd, s + 1);
        ema = s == 0 ? loss : 0.95 * ema + 0.05 * loss;
        out->steps = s + 1, out->final_loss = (float)ema;
        double el = (double)(pare_now_ns() - t0) * 1e-9;
        if (progress) {
            pare_train_progress p = {s + 1, steps, (float)ema, lr_s, el, el / (double)(s + 1) * (double)(steps - s - 1), -1,
                                     NAN};
            if (progress(ud, &p)) break;
        }
    }
    out->seconds = (double)(pare_now_ns() - t0) * 1e-9;
    pare_free(idx), pare_free(tok), pare_free(len), pare_free(lab), pare_free(types), pare_free(targets);
    return st;
}
