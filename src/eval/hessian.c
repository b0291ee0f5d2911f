/* hessian.c — Hutchinson Hessian traces per Linear weight from central differences of gradients (hessian.h).
 *
 * Not here: what the traces are used for (tune.lua's hawq strategy orders layers by them).
 */
#include "eval/hessian.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/rng.h"
#include "graph/format.h"
#include "train/train.h"

typedef struct sel {
    int64_t n;
    int64_t *param;                /* parameter index of each selected weight */
    char (*name)[PARE_NAME_MAX];   /* its Linear's name */
    int64_t *numel;
} sel;

static void sel_free(sel *s) { free(s->param), free(s->name), free(s->numel); }

static pare_status select_layers(const pare_model *m, const pare_hessian_spec *sp, sel *s)
{
    memset(s, 0, sizeof *s);
    const char *pat = sp->layers && *sp->layers ? sp->layers : "*";
    int64_t cap = m->nnodes;
    s->param = malloc(sizeof *s->param * (size_t)(cap ? cap : 1));
    s->name = malloc(sizeof *s->name * (size_t)(cap ? cap : 1));
    s->numel = malloc(sizeof *s->numel * (size_t)(cap ? cap : 1));
    if (!s->param || !s->name || !s->numel) return sel_free(s), pare_fail(PARE_ENOMEM, "hessian: out of memory");
    char all[512] = "";
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_LINEAR) continue;
        size_t l = strlen(all);
        if (l + strlen(nd->name) + 3 < sizeof all) snprintf(all + l, sizeof all - l, "%s%s", l ? ", " : "", nd->name);
        if (!pare_name_match(pat, nd->name)) continue;
        const pare_param *w = &m->params[nd->param[0]];
        if (w->format != PARE_FMT_F32) {
            sel_free(s);
            return pare_fail(PARE_EINVAL, "hessian: layer %s is stored as %s; the trace is taken on f32 weights (measure the "
                             "f32 model, then quantize)", nd->name, pare_format_label(w));
        }
        s->param[s->n] = nd->param[0], s->numel[s->n] = pare_param_numel(w);
        snprintf(s->name[s->n], PARE_NAME_MAX, "%s", nd->name);
        s->n++;
    }
    if (!s->n) {
        sel_free(s);
        return pare_fail(PARE_EINVAL, "hessian: layers '%s' matches no Linear (the model's: %s)", pat, all);
    }
    return PARE_OK;
}

static pare_status check_spec(const pare_hessian_spec *sp, const pare_dataset *d)
{
    if (sp->samples < 1 || sp->samples > 100000)
        return pare_fail(PARE_EINVAL, "hessian: samples=%d must be in [1, 100000]", sp->samples);
    if (sp->n < 1 || sp->batch < 1)
        return pare_fail(PARE_EINVAL, "hessian: n=%lld and batch=%lld must be >= 1", (long long)sp->n, (long long)sp->batch);
    if (!(sp->eps > 0 && sp->eps < 1))
        return pare_fail(PARE_EINVAL, "hessian: eps=%g must be in (0, 1) (a share of each layer's weight rms)", sp->eps);
    if (d->n < 1) return pare_fail(PARE_EINVAL, "hessian: dataset %s is empty", d->name);
    return PARE_OK;
}

typedef struct acc { const sel *s; double **g; } acc;

static pare_status add_grads(void *ud, const pare_model *g, float loss, int64_t first, int64_t B)
{
    (void)loss, (void)first, (void)B;
    const acc *a = ud;
    for (int64_t i = 0; i < a->s->n; i++) {
        const float *gr = g->params[a->s->param[i]].grad;
        double *o = a->g[i];
        for (int64_t j = 0; j < a->s->numel[i]; j++) o[j] += gr[j];
    }
    return PARE_OK;
}

/* The working state: a clone whose selected weights are private, their original values, the step per layer,
 * two gradient sums. */
typedef struct work {
    pare_model *c;
    sel s;
    float **w0;
    double *step, **gp, **gm;
    int64_t n, batch, nb;
} work;

static void work_free(work *w)
{
    for (int64_t i = 0; i < w->s.n; i++) {
        if (w->w0) free(w->w0[i]);
        if (w->gp) free(w->gp[i]);
        if (w->gm) free(w->gm[i]);
    }
    free(w->w0), free(w->gp), free(w->gm), free(w->step);
    sel_free(&w->s);
    pare_model_free(w->c);
}

static pare_status work_init(work *w, const pare_model *m, const pare_dataset *d, const pare_hessian_spec *sp)
{
    memset(w, 0, sizeof *w);
    PARE_TRY(check_spec(sp, d));
    PARE_TRY(select_layers(m, sp, &w->s));
    w->n = sp->n < d->n ? sp->n : d->n;
    w->batch = sp->batch < w->n ? sp->batch : w->n;
    w->nb = w->n / w->batch;
    w->c = pare_model_clone(m);
    int64_t L = w->s.n;
    w->w0 = calloc((size_t)L, sizeof *w->w0), w->gp = calloc((size_t)L, sizeof *w->gp), w->gm = calloc((size_t)L, sizeof *w->gm);
    w->step = calloc((size_t)L, sizeof *w->step);
    if (!w->c || !w->w0 || !w->gp || !w->gm || !w->step) return work_free(w), pare_fail(PARE_ENOMEM, "hessian: out of memory");
    for (int64_t i = 0; i < L; i++) {
        pare_param *p = &w->c->params[w->s.param[i]];
        pare_status st = pare_param_make_private(p);
        if (st != PARE_OK) return work_free(w), st;
        int64_t k = w->s.numel[i];
        w->w0[i] = malloc(sizeof(float) * (size_t)k);
        w->gp[i] = malloc(sizeof(double) * (size_t)k), w->gm[i] = malloc(sizeof(double) * (size_t)k);
        if (!w->w0[i] || !w->gp[i] || !w->gm[i]) return work_free(w), pare_fail(PARE_ENOMEM, "hessian: out of memory");
        memcpy(w->w0[i], p->blob->data, sizeof(float) * (size_t)k);
        double ss = 0;
        for (int64_t j = 0; j < k; j++) ss += (double)w->w0[i][j] * w->w0[i][j];
        double rms = sqrt(ss / (double)k);
        w->step[i] = sp->eps * (rms > 0 ? rms : 1.0);
    }
    return PARE_OK;
}

/* gradient sums over the batches at w0 + sign · step · v */
static pare_status grads_at(work *w, const pare_dataset *d, const float *const *v, double sign, double **g)
{
    for (int64_t i = 0; i < w->s.n; i++) {
        float *p = w->c->params[w->s.param[i]].blob->data;
        double h = sign * w->step[i];
        for (int64_t j = 0; j < w->s.numel[i]; j++) p[j] = (float)(w->w0[i][j] + h * v[i][j]);
        memset(g[i], 0, sizeof(double) * (size_t)w->s.numel[i]);
    }
    acc a = {&w->s, g};
    return pare_grad_batches(w->c, d, 0, w->nb * w->batch, w->batch, add_grads, &a);
}

static pare_status vhv(work *w, const pare_dataset *d, const float *const *v, double *out)
{
    PARE_TRY(grads_at(w, d, v, +1.0, w->gp));
    PARE_TRY(grads_at(w, d, v, -1.0, w->gm));
    for (int64_t i = 0; i < w->s.n; i++) {
        double s = 0;
        for (int64_t j = 0; j < w->s.numel[i]; j++) s += v[i][j] * (w->gp[i][j] - w->gm[i][j]);
        out[i] = s / (2.0 * w->step[i] * (double)w->nb);
        memcpy(w->c->params[w->s.param[i]].blob->data, w->w0[i], sizeof(float) * (size_t)w->s.numel[i]);
    }
    return PARE_OK;
}

pare_status pare_hessian_vhv(const pare_model *m, const pare_dataset *d, const pare_hessian_spec *spec,
                             const float *const *v, double *out)
{
    work w;
    PARE_TRY(work_init(&w, m, d, spec));
    pare_status st = vhv(&w, d, v, out);
    work_free(&w);
    return st;
}

void pare_hessian_result_free(pare_hessian_result *r)
{
    free(r->name), free(r->trace), free(r->stderr_), free(r->numel);
    memset(r, 0, sizeof *r);
}

pare_status pare_hessian_trace(const pare_model *m, const pare_dataset *d, const pare_hessian_spec *spec,
                               pare_hessian_result *out)
{
    memset(out, 0, sizeof *out);
    work w;
    PARE_TRY(work_init(&w, m, d, spec));
    int64_t L = w.s.n;
    float **v = calloc((size_t)L, sizeof *v);
    double *one = malloc(sizeof(double) * (size_t)L), *sum = calloc((size_t)L, sizeof(double)), *sq = calloc((size_t)L, sizeof(double));
    pare_status st = v && one && sum && sq ? PARE_OK : pare_fail(PARE_ENOMEM, "hessian: out of memory");
    for (int64_t i = 0; st == PARE_OK && i < L; i++)
        if (!(v[i] = malloc(sizeof(float) * (size_t)w.s.numel[i]))) st = pare_fail(PARE_ENOMEM, "hessian: out of memory");
    pare_rng rng;
    pare_rng_seed(&rng, spec->seed);
    for (int s = 0; st == PARE_OK && s < spec->samples; s++) {
        for (int64_t i = 0; i < L; i++)
            for (int64_t j = 0; j < w.s.numel[i]; j++) v[i][j] = (pare_rng_u64(&rng) >> 63) ? 1.0f : -1.0f;
        st = vhv(&w, d, (const float *const *)v, one);
        for (int64_t i = 0; st == PARE_OK && i < L; i++) sum[i] += one[i], sq[i] += one[i] * one[i];
    }
    if (st == PARE_OK) {
        out->n = L;
        out->name = malloc(sizeof *out->name * (size_t)L), out->trace = malloc(sizeof(double) * (size_t)L);
        out->stderr_ = malloc(sizeof(double) * (size_t)L), out->numel = malloc(sizeof(int64_t) * (size_t)L);
        if (!out->name || !out->trace || !out->stderr_ || !out->numel) {
            pare_hessian_result_free(out);
            st = pare_fail(PARE_ENOMEM, "hessian: out of memory");
        }
    }
    for (int64_t i = 0; st == PARE_OK && i < L; i++) {
        int S = spec->samples;
        double mean = sum[i] / S, var = S > 1 ? (sq[i] - S * mean * mean) / (S - 1) : 0.0;
        memcpy(out->name[i], w.s.name[i], PARE_NAME_MAX);
        out->trace[i] = mean, out->stderr_[i] = var > 0 ? sqrt(var / S) : 0.0, out->numel[i] = w.s.numel[i];
    }
    for (int64_t i = 0; v && i < L; i++) free(v[i]);
    free(v), free(one), free(sum), free(sq);
    work_free(&w);
    return st;
}
