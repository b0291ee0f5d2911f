/* schedule.c — pruning during fine-tuning: a schedule object whose hooks the training loop calls
 * (pare_train_ex). At each pruning event the chosen criterion scores the selected layers and the mask
 * helper prunes to the event's target sparsity; weights pruned earlier stay pruned; between events the
 * model fine-tunes under its masks (masked weights get zero gradient).
 *
 *   oneshot    one event at step `start`, to `sparsity`
 *   iterative  `prunes` events every `every` steps from `start`; event k (0-based) reaches
 *              1 − (1 − s_f)^((k+1)/prunes) (each round prunes the same fraction of what is left, as IMP)
 *   gradual    Zhu & Gupta (2017): events at t = start + k·every, k = 0..prunes, to
 *              s_t = s_f + (s_i − s_f)(1 − (t − start)/(prunes·every))^3
 *
 * Criteria: magnitude |w|; snip |w ⊙ Σg| and taylor Σ(w ⊙ g)² over the steps since the last event;
 * movement S = −Σ w ⊙ g since the run began; soft_movement S > threshold (movement.c). Group lasso
 * (group_lasso > 0) adds λ Σ‖W_g‖ over `group` blocks to the loss at every step, with or without pruning
 * (sparsity = 0). A step is "after step t": the event at t runs after the t-th AdamW update (0-based).
 * Deliberately not here: rewinding (lottery tickets) and learning-rate changes at events. */
#include "prune_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "graph/transform.h"

enum { M_MAGNITUDE, M_SNIP, M_TAYLOR, M_MOVEMENT, M_SOFT };
enum { S_ONESHOT, S_ITERATIVE, S_GRADUAL };

static const pare_opt_spec sched_opts[] = {
    {"method", PARE_OPT_ENUM, "magnitude", 0, 0, "magnitude|snip|taylor|movement|soft_movement", "criterion scoring the weights at each event"},
    {"schedule", PARE_OPT_ENUM, "gradual", 0, 0, "oneshot|iterative|gradual", "when and how far to prune (see docs/pruning.md)"},
    PR_LAYER_OPTS,
    PR_PATTERN_OPTS,
    {"initial_sparsity", PARE_OPT_FLOAT, "0", 0, 1, NULL, "gradual: s_i, the sparsity of the first event"},
    {"start", PARE_OPT_INT, "0", 0, 1e9, NULL, "step of the first event (t0)"},
    {"every", PARE_OPT_INT, "10", 1, 1e9, NULL, "steps between events (delta t)"},
    {"prunes", PARE_OPT_INT, "10", 1, 1e6, NULL, "iterative: events; gradual: n, the last event is at start + n*every"},
    {"lambda", PARE_OPT_FLOAT, "0", 0, 1e9, NULL, "soft_movement: regularizer on sigma(S)"},
    {"threshold", PARE_OPT_FLOAT, "-1", -1e9, 1e9, NULL, "soft_movement: keep weights with score S > threshold (scores start at 0)"},
    {"score_lr", PARE_OPT_FLOAT, "0.01", 0, 1e9, NULL, "soft_movement: step size of the score update (w*g in rms units)"},
    {"group_lasso", PARE_OPT_FLOAT, "0", 0, 1e9, NULL, "lambda of the group-lasso (L2,1) penalty added to the loss (0: off)"},
    {"group", PARE_OPT_STRING, "4x1", 0, 0, NULL, "group_lasso: groups of RxC (rows x input columns)"},
};
const pare_schema pare_prune_sched_schema = {"prune_schedule", "pruning during fine-tuning: m:train(task, opts, pare.prune_schedule{...})",
                                             sched_opts, (int)(sizeof sched_opts / sizeof sched_opts[0])};

struct pare_prune_sched {
    pare_options o;
    pare_prune_spec spec;
    int method, kind;
    double s_i, s_f, lambda, tau, score_lr, gl;
    int gr, gc;
    int64_t t0, every, prunes;
    /* per run */
    int64_t *idx, n;
    float **acc;    /* snip: Σg; taylor: Σ(w g)²; movement: S (NULL for magnitude) */
    float *wbuf;    /* an effective weight */
    pare_prune_sched_report rep;
};

pare_status pare_prune_sched_new(pare_prune_sched **out, const pare_options *o)
{
    *out = NULL;
    pare_prune_sched *s = calloc(1, sizeof *s);
    if (!s) return pare_fail(PARE_ENOMEM, "out of memory");
    s->o = *o;
    pare_status st = pare_prune_spec_from_opts(&s->spec, o);
    const char *meth = pare_opt_str(o, "method"), *kind = pare_opt_str(o, "schedule");
    s->method = !strcmp(meth, "snip") ? M_SNIP : !strcmp(meth, "taylor") ? M_TAYLOR : !strcmp(meth, "movement") ? M_MOVEMENT
              : !strcmp(meth, "soft_movement") ? M_SOFT : M_MAGNITUDE;
    s->kind = !strcmp(kind, "oneshot") ? S_ONESHOT : !strcmp(kind, "iterative") ? S_ITERATIVE : S_GRADUAL;
    s->s_f = s->spec.sparsity, s->s_i = pare_opt_num(o, "initial_sparsity");
    s->t0 = pare_opt_int(o, "start"), s->every = pare_opt_int(o, "every"), s->prunes = pare_opt_int(o, "prunes");
    s->lambda = pare_opt_num(o, "lambda"), s->tau = pare_opt_num(o, "threshold"), s->score_lr = pare_opt_num(o, "score_lr");
    s->gl = pare_opt_num(o, "group_lasso");
    if (st == PARE_OK && s->gl > 0) {
        char tail = 0;
        const char *g = pare_opt_str(o, "group");
        if (sscanf(g, "%dx%d%c", &s->gr, &s->gc, &tail) != 2 || s->gr < 1 || s->gc < 1)
            st = pare_fail(PARE_EINVAL, "group='%s': expected RxC with R, C >= 1 (e.g. 4x1, 1x16)", g);
    }
    if (st == PARE_OK && s->kind == S_GRADUAL && s->spec.pattern != PARE_PRUNE_NM && s->s_i > s->s_f)
        st = pare_fail(PARE_EINVAL, "initial_sparsity=%g is above sparsity=%g: a gradual schedule only adds zeros", s->s_i, s->s_f);
    if (st == PARE_OK && s->method == M_SOFT && s->spec.pattern != PARE_PRUNE_UNSTRUCTURED)
        st = pare_fail(PARE_EINVAL, "method=soft_movement thresholds single scores: pattern must be unstructured (got %s)",
                       pare_opt_str(o, "pattern"));
    if (st != PARE_OK) {
        free(s);
        return st;
    }
    *out = s;
    return PARE_OK;
}

static void run_free(pare_prune_sched *s)
{
    pr_scores_free(s->acc, s->n);
    s->acc = NULL;
    free(s->idx), s->idx = NULL;
    pare_free(s->wbuf), s->wbuf = NULL;
    s->n = 0;
}

void pare_prune_sched_free(pare_prune_sched *s)
{
    if (!s) return;
    run_free(s);
    free(s);
}

static int64_t last_event(const pare_prune_sched *s)
{
    return s->kind == S_ONESHOT ? s->t0 : s->kind == S_ITERATIVE ? s->t0 + (s->prunes - 1) * s->every : s->t0 + s->prunes * s->every;
}

double pare_prune_sched_target(const pare_prune_sched *s, int64_t t)
{
    if (t < s->t0 || (t - s->t0) % s->every || t > last_event(s)) return -1;
    if (s->spec.pattern == PARE_PRUNE_NM) return s->spec.sparsity;
    int64_t k = (t - s->t0) / s->every;
    switch (s->kind) {
    case S_ONESHOT: return s->s_f;
    case S_ITERATIVE: return 1.0 - pow(1.0 - s->s_f, (double)(k + 1) / (double)s->prunes);
    default: return pare_prune_cubic(t, s->s_i, s->s_f, s->t0, s->prunes, s->every);
    }
}

pare_prune_sched_report pare_prune_sched_get_report(const pare_prune_sched *s) { return s->rep; }

static pare_status sched_begin(void *ud, pare_model *m, int64_t steps)
{
    pare_prune_sched *s = ud;
    run_free(s);
    memset(&s->rep, 0, sizeof s->rep);
    if (last_event(s) >= steps)
        return pare_fail(PARE_EINVAL, "prune_schedule: the last pruning event is at step %lld but training has steps=%lld; "
                         "lower start/every/prunes or train longer", (long long)last_event(s), (long long)steps);
    PARE_TRY(pr_select(m, &s->o, &s->spec, &s->idx, &s->n));
    int64_t maxlen = 1;
    for (int64_t i = 0; i < s->n; i++) {
        const pare_param *w = pr_weight(m, s->idx[i]);
        if (w->shape[0] * w->shape[1] > maxlen) maxlen = w->shape[0] * w->shape[1];
    }
    if (!(s->wbuf = pare_alloc(sizeof(float) * (size_t)maxlen))) return pare_fail(PARE_ENOMEM, "out of memory");
    /* every selected layer gets its mask now (all ones where it has none): the training executor sizes its
     * workspace for the transforms present when it is made, and the events only change mask values */
    for (int64_t i = 0; i < s->n; i++) {
        if (pare_node_find_transform(&m->nodes[s->idx[i]], PARE_TF_MASK)) continue;
        const pare_param *w = pr_weight(m, s->idx[i]);
        int64_t len = w->shape[0] * w->shape[1];
        for (int64_t j = 0; j < len; j++) s->wbuf[j] = 1.0f;
        PARE_TRY(pare_model_set_mask(m, m->nodes[s->idx[i]].name, s->wbuf, w->shape[0], w->shape[1]));
    }
    if (s->method != M_MAGNITUDE && !(s->acc = pr_scores_new(m, s->idx, s->n))) return PARE_ENOMEM;
    return PARE_OK;
}

static pare_status sched_after_backward(void *ud, pare_model *m, int64_t step, float *extra)
{
    (void)step;
    pare_prune_sched *s = ud;
    for (int64_t i = 0; s->acc && i < s->n; i++) {
        const pare_param *w = pr_weight(m, s->idx[i]);
        int64_t len = w->shape[0] * w->shape[1];
        float *a = s->acc[i];
        if (!w->grad) continue;
        switch (s->method) {
        case M_SNIP:
            for (int64_t j = 0; j < len; j++) a[j] += w->grad[j];
            break;
        case M_TAYLOR:
            pare_prune_effective(m, s->idx[i], s->wbuf);
            for (int64_t j = 0; j < len; j++) {
                float t = s->wbuf[j] * w->grad[j];
                a[j] += t * t;
            }
            break;
        default: pare_movement_update(a, w->blob->data, w->grad, len, s->method == M_SOFT, s->lambda, s->score_lr);
        }
    }
    if (s->gl > 0) {
        s->rep.penalty = pare_group_lasso(m, s->idx, s->n, s->gl, s->gr, s->gc);
        *extra += (float)s->rep.penalty;
    }
    return PARE_OK;
}

static pare_status sched_after_step(void *ud, pare_model *m, int64_t step)
{
    pare_prune_sched *s = ud;
    double target = pare_prune_sched_target(s, step);
    if (target < 0 || (s->s_f <= 0 && s->spec.pattern != PARE_PRUNE_NM && s->method != M_SOFT)) return PARE_OK;
    if (s->method == M_SOFT) { /* mask = S > τ, weights pruned before stay pruned */
        pare_status st = PARE_OK;
        int64_t zeros = 0, total = 0;
        for (int64_t i = 0; st == PARE_OK && i < s->n; i++) {
            const pare_param *w = pr_weight(m, s->idx[i]);
            int64_t N = w->shape[0], K = w->shape[1];
            pare_prune_effective(m, s->idx[i], s->wbuf); /* zero where masked (or an exact zero weight) */
            const pare_node *nd = &m->nodes[s->idx[i]];
            const pare_transform *t = pare_node_transform(nd, PARE_TF_WEIGHT);
            const float *old = t && t->kind == PARE_TF_MASK ? m->params[t->aux[0]].blob->data : NULL;
            for (int64_t j = 0; j < N * K; j++) {
                s->wbuf[j] = (old && old[j] == 0.0f) || !(s->acc[i][j] > s->tau) ? 0.0f : 1.0f;
                zeros += s->wbuf[j] == 0.0f;
            }
            total += N * K;
            st = pare_model_set_mask(m, nd->name, s->wbuf, N, K);
        }
        s->rep.prunes++;
        s->rep.last_target = total ? (double)zeros / (double)total : 0;
        return st;
    }
    float **sc = pr_scores_new(m, s->idx, s->n);
    if (!sc) return PARE_ENOMEM;
    for (int64_t i = 0; i < s->n; i++) {
        const pare_param *w = pr_weight(m, s->idx[i]);
        int64_t len = w->shape[0] * w->shape[1];
        pare_prune_effective(m, s->idx[i], sc[i]);
        for (int64_t j = 0; j < len; j++) {
            float wv = sc[i][j];
            switch (s->method) {
            case M_MAGNITUDE: sc[i][j] = fabsf(wv); break;
            case M_SNIP: sc[i][j] = fabsf(wv * s->acc[i][j]); break;
            default: sc[i][j] = s->acc[i][j]; break; /* taylor's Σ(wg)², movement's S */
            }
        }
        if (s->method == M_SNIP || s->method == M_TAYLOR) memset(s->acc[i], 0, sizeof(float) * (size_t)len);
    }
    pare_prune_spec spec = s->spec;
    spec.sparsity = target;
    pare_status st = pare_prune_masks(m, s->idx, s->n, sc, &spec);
    pr_scores_free(sc, s->n);
    s->rep.prunes++;
    s->rep.last_target = target;
    return st;
}

static void sched_end(void *ud, pare_model *m)
{
    (void)m;
    run_free(ud);
}

pare_train_hooks pare_prune_sched_hooks(pare_prune_sched *s)
{
    return (pare_train_hooks){s, sched_begin, sched_after_backward, sched_after_step, sched_end};
}
