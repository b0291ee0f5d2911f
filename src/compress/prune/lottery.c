/* lottery.c — snapshots, rewinding and random masks: the primitives of iterative magnitude pruning with
 * rewinding (Frankle & Carbin 2019; Frankle et al. 2020). See lottery.h for the loop they make.
 * Rewinding is bit-exact: memcpy of the saved f32 values into the masters, masks untouched, so the effective
 * weights are snapshot ⊙ mask exactly. Deliberately not here: choosing masks (the magnitude pass), the loop
 * (lua/pare/lottery.lua). Entry points: pare_snapshot_take, pare_rewind, pare_random_masks,
 * pare_snapshot_hooks. */
#include "lottery.h"

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/rng.h"
#include "graph/format.h"
#include "graph/transform.h"

typedef struct snap_entry {
    char name[PARE_NAME_MAX];
    int ndim;
    int64_t shape[2];
    int64_t numel;
    float *data; /* (numel), pare_alloc'd */
} snap_entry;

struct pare_snapshot {
    int64_t n;
    snap_entry *e; /* (n) */
};

void pare_snapshot_free(pare_snapshot *s)
{
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) pare_free(s->e[i].data);
    free(s->e);
    free(s);
}

pare_status pare_snapshot_take(pare_snapshot **out, const pare_model *m)
{
    *out = NULL;
    int64_t n = 0;
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        if (p->format != PARE_FMT_F32 || !p->blob)
            return pare_fail(PARE_EINVAL, "snapshot: parameter %s is stored as %s; a snapshot holds f32 weights (snapshot "
                             "the f32 model, quantize after)", p->name, pare_format_label(p));
        n++;
    }
    pare_snapshot *s = calloc(1, sizeof *s);
    if (!s || !(s->e = calloc((size_t)(n ? n : 1), sizeof *s->e))) {
        free(s);
        return pare_fail(PARE_ENOMEM, "snapshot: out of memory");
    }
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        snap_entry *e = &s->e[s->n];
        memcpy(e->name, p->name, sizeof e->name);
        e->ndim = p->ndim;
        e->shape[0] = p->shape[0], e->shape[1] = p->shape[1];
        e->numel = pare_param_numel(p);
        if (!(e->data = pare_alloc(sizeof(float) * (size_t)(e->numel ? e->numel : 1)))) {
            pare_snapshot_free(s);
            return pare_fail(PARE_ENOMEM, "snapshot: out of memory for %s", p->name);
        }
        memcpy(e->data, p->blob->data, sizeof(float) * (size_t)e->numel);
        s->n++;
    }
    *out = s;
    return PARE_OK;
}

int64_t pare_snapshot_params(const pare_snapshot *s) { return s ? s->n : 0; }

int64_t pare_snapshot_numel(const pare_snapshot *s)
{
    int64_t t = 0;
    for (int64_t i = 0; s && i < s->n; i++) t += s->e[i].numel;
    return t;
}

static const snap_entry *find_entry(const pare_snapshot *s, const char *name)
{
    for (int64_t i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].name, name)) return &s->e[i];
    return NULL;
}

const float *pare_snapshot_get(const pare_snapshot *s, const char *name, int64_t *n)
{
    const snap_entry *e = find_entry(s, name);
    if (n) *n = e ? e->numel : 0;
    return e ? e->data : NULL;
}

pare_status pare_rewind(pare_model *m, const pare_snapshot *s, int keep_masks)
{
    /* check everything first: a failed rewind leaves m as it was */
    int64_t *where = malloc(sizeof *where * (size_t)(s->n ? s->n : 1));
    if (!where) return pare_fail(PARE_ENOMEM, "rewind: out of memory");
    for (int64_t i = 0; i < s->n; i++) {
        const snap_entry *e = &s->e[i];
        int k = pare_model_find_param(m, e->name);
        const pare_param *p = k >= 0 ? &m->params[k] : NULL;
        pare_status st = PARE_OK;
        if (!p)
            st = pare_fail(PARE_EINVAL, "rewind: the snapshot has %s, which the model lacks (rewind a model to a snapshot "
                           "of itself or of a model built with the same configuration)", e->name);
        else if (!p->trainable)
            st = pare_fail(PARE_EINVAL, "rewind: %s is not trainable in the model (a snapshot holds trainable weights)", e->name);
        else if (p->ndim != e->ndim || p->shape[0] != e->shape[0] || (e->ndim > 1 && p->shape[1] != e->shape[1]))
            st = pare_fail(PARE_EINVAL, "rewind: %s is (%lld, %lld) in the model but (%lld, %lld) in the snapshot (was it "
                           "resized after the snapshot?)", e->name, (long long)p->shape[0], (long long)(p->ndim > 1 ? p->shape[1] : 1),
                           (long long)e->shape[0], (long long)(e->ndim > 1 ? e->shape[1] : 1));
        else if (p->format != PARE_FMT_F32)
            st = pare_fail(PARE_EINVAL, "rewind: %s is stored as %s; rewinding writes f32 masters (rewind, then quantize)",
                           e->name, pare_format_label(p));
        if (st != PARE_OK) {
            free(where);
            return st;
        }
        where[i] = k;
    }
    for (int64_t i = 0; i < m->nparams; i++)
        if (m->params[i].trainable && !find_entry(s, m->params[i].name)) {
            free(where);
            return pare_fail(PARE_EINVAL, "rewind: the model's parameter %s is not in the snapshot (%lld parameters; added "
                             "after it was taken?)", m->params[i].name, (long long)s->n);
        }
    pare_status st = PARE_OK;
    for (int64_t i = 0; st == PARE_OK && i < s->n; i++) {
        pare_param *p = &m->params[where[i]];
        if ((st = pare_param_make_private(p)) != PARE_OK) break;
        size_t bytes = sizeof(float) * (size_t)s->e[i].numel;
        memcpy(p->blob->data, s->e[i].data, bytes);
        if (p->grad) memset(p->grad, 0, bytes);
        if (p->adam_m) memset(p->adam_m, 0, bytes);
        if (p->adam_v) memset(p->adam_v, 0, bytes);
    }
    free(where);
    if (st == PARE_OK && !keep_masks)
        for (int64_t i = 0; i < m->nnodes; i++)
            if (m->nodes[i].op == PARE_OP_LINEAR && pare_node_find_transform(&m->nodes[i], PARE_TF_MASK))
                pare_node_detach(m, i, PARE_TF_WEIGHT);
    return st;
}

pare_status pare_random_masks(pare_model *m, const pare_model *like, uint64_t seed)
{
    pare_rng root;
    pare_rng_seed(&root, seed);
    for (int64_t i = 0; i < like->nnodes; i++) {
        const pare_node *ln = &like->nodes[i];
        const pare_transform *t = ln->op == PARE_OP_LINEAR ? pare_node_find_transform(ln, PARE_TF_MASK) : NULL;
        if (!t) continue;
        const pare_param *lw = &like->params[ln->param[0]];
        int k = pare_model_find_node(m, ln->name);
        if (k < 0 || m->nodes[k].op != PARE_OP_LINEAR)
            return pare_fail(PARE_EINVAL, "random_masks: the model has no Linear %s (the reference model's masked layer)", ln->name);
        const pare_param *w = &m->params[m->nodes[k].param[0]];
        if (w->shape[0] != lw->shape[0] || w->shape[1] != lw->shape[1])
            return pare_fail(PARE_EINVAL, "random_masks: %s is (%lld, %lld) in the model but (%lld, %lld) in the reference",
                             ln->name, (long long)w->shape[0], (long long)w->shape[1], (long long)lw->shape[0],
                             (long long)lw->shape[1]);
        int64_t N = w->shape[0], K = w->shape[1], len = N * K, zeros = 0;
        const float *lm = like->params[t->aux[0]].blob->data;
        for (int64_t j = 0; j < len; j++) zeros += lm[j] == 0.0f;
        float *mask = pare_alloc(sizeof(float) * (size_t)len);
        int64_t *perm = malloc(sizeof *perm * (size_t)len);
        if (!mask || !perm) {
            pare_free(mask), free(perm);
            return pare_fail(PARE_ENOMEM, "random_masks: out of memory for %s", ln->name);
        }
        /* the first `zeros` places of a uniform partial Fisher–Yates shuffle are pruned */
        pare_rng r = pare_rng_split(&root, (uint64_t)i);
        for (int64_t j = 0; j < len; j++) perm[j] = j, mask[j] = 1.0f;
        for (int64_t j = 0; j < zeros; j++) {
            int64_t c = j + (int64_t)pare_rng_below(&r, (uint64_t)(len - j));
            int64_t tmp = perm[j];
            perm[j] = perm[c], perm[c] = tmp;
            mask[perm[j]] = 0.0f;
        }
        pare_status st = pare_model_set_mask(m, ln->name, mask, N, K);
        pare_free(mask), free(perm);
        PARE_TRY(st);
    }
    return PARE_OK;
}

/* ---- the snapshot during training ---- */
static pare_status at_take(pare_snapshot_at *a, pare_model *m)
{
    pare_snapshot *s;
    PARE_TRY(pare_snapshot_take(&s, m));
    pare_snapshot_free(a->snap);
    a->snap = s;
    return PARE_OK;
}

static pare_status at_begin(void *ud, pare_model *m, int64_t steps)
{
    pare_snapshot_at *a = ud;
    if (a->step > steps)
        return pare_fail(PARE_EINVAL, "snapshot_at: the snapshot is at step %lld but training has steps=%lld",
                         (long long)a->step, (long long)steps);
    return a->step == 0 ? at_take(a, m) : PARE_OK;
}

static pare_status at_after_step(void *ud, pare_model *m, int64_t step)
{
    pare_snapshot_at *a = ud;
    return step + 1 == a->step ? at_take(a, m) : PARE_OK;
}

pare_train_hooks pare_snapshot_hooks(pare_snapshot_at *a)
{
    return (pare_train_hooks){.ud = a, .begin = at_begin, .after_step = at_after_step};
}
