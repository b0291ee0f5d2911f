/* loop.c — the training loop (with a teacher's extra loss terms: distill.c; data-parallel under mpirun:
 * dp.c), the evaluation loop and capture of named values over a data set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/tensor.h"
#include "core/timer.h"
#include "dist/tp.h"
#include "eval/metrics.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "train_internal.h"

static const pare_opt_spec train_opts[] = {
    PARE_TRAIN_OPTIM_OPTS,
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "batch order and dropout seed"},
    {"eval_every", PARE_OPT_INT, "0", 0, 1e9, NULL, "evaluate on the eval set every k steps (0: never)"},
    {"target_accuracy", PARE_OPT_FLOAT, "0", 0, 1, NULL, "stop once eval accuracy reaches this, checked every eval_every (or 50) steps (0: off)"},
    {"checkpoint", PARE_OPT_BOOL, "false", 0, 0, NULL, "activation checkpointing: keep only each layer's input, recompute the layer in backward"},
    {"pipeline", PARE_OPT_ENUM, "none", 0, 0, "none|gpipe|1f1b", "pipeline parallelism over the ranks (stages of layers; docs/distributed.md)"},
    {"micro_batches", PARE_OPT_INT, "1", 1, 1e6, NULL, "pipeline: micro-batches per batch (batch must be a multiple)"},
};
const pare_schema pare_train_schema = {"train", "AdamW with warm-up + cosine decay and gradient clipping", train_opts,
                                       (int)(sizeof train_opts / sizeof train_opts[0])};

pare_status pare_train_check_fit(const pare_model *m, const pare_dataset *d)
{
    if (d->n < 1) return pare_fail(PARE_EINVAL, "dataset '%s' is empty", d->name);
    int want_lm = d->kind == PARE_TASK_LM;
    if (want_lm != m->lm)
        return pare_fail(PARE_EINVAL, "dataset '%s' is a %s task but the model is an %s", d->name,
                         want_lm ? "language-modelling" : "classification", m->kind);
    if ((d->src_tokens != NULL) != (m->src_tokens >= 0))
        return pare_fail(PARE_EINVAL, d->src_tokens ? "dataset '%s' has a source sequence per example; a %s has no source "
                         "input (use kind=encdec)" : "dataset '%s' has no source sequences; a %s needs one (a "
                         "sequence-to-sequence task such as translate)", d->name, m->kind);
    if (d->src_tokens && (d->S > m->src_max_T || d->src_vocab > m->src_vocab))
        return pare_fail(PARE_ESHAPE, "dataset '%s' has sources of %lld tokens over vocab %d; the model takes at most "
                         "src_max_T=%lld over src_vocab=%lld", d->name, (long long)d->S, d->src_vocab,
                         (long long)m->src_max_T, (long long)m->src_vocab);
    int reg = pare_model_regression_target(m) >= 0, dreg = !want_lm && d->targets != NULL;
    if (!want_lm && reg && !dreg)
        return pare_fail(PARE_EINVAL, "dataset '%s' is a classification task (%d classes) but the model has a regression "
                         "head (head=regression: one score per sequence); build it with head=linear, classes=%d",
                         d->name, d->nclass, d->nclass);
    if (!want_lm && !reg && dreg)
        return pare_fail(PARE_EINVAL, "dataset '%s' is a regression task (a score per example, e.g. STS-B) but the model "
                         "has a classification head of %lld classes; build it with head=regression", d->name,
                         (long long)m->nclass);
    if (d->T > m->max_T)
        return pare_fail(PARE_ESHAPE, "dataset '%s' has sequences of %lld tokens; the model takes at most max_T=%lld",
                         d->name, (long long)d->T, (long long)m->max_T);
    if (d->vocab > m->vocab)
        return pare_fail(PARE_ESHAPE, "dataset '%s' has vocab %d; the model's is %lld", d->name, d->vocab, (long long)m->vocab);
    if (!m->lm && d->nclass > m->nclass)
        return pare_fail(PARE_ESHAPE, "dataset '%s' has %d classes; the model's head has %lld", d->name, d->nclass,
                         (long long)m->nclass);
    return PARE_OK;
}

/* Gather rows b->idx[0..B) of d and bind them to x: with the token types of pair tasks when the model has
 * a token-types input (BERT; a model without one reads pairs as one segment), the scores of a regression
 * task as a regression model's target, and with their sources when d has some. */
pare_status pare_batch_bind(batch_buf *b, pare_exec *x, const pare_dataset *d, int64_t B)
{
    pare_dataset_gather(d, b->idx, B, b->tokens, b->lengths, b->labels);
    PARE_TRY(pare_exec_bind(x, b->tokens, b->lengths, b->labels));
    int reg = pare_model_regression_target(x->m);
    if (reg >= 0) { /* check_fit made sure d has targets */
        pare_dataset_gather_extra(d, b->idx, B, NULL, b->targets);
        PARE_TRY(pare_exec_bind_target(x, reg, b->targets));
    }
    if (d->types) { /* gathered for a distillation teacher too, bound if this model reads them */
        pare_dataset_gather_extra(d, b->idx, B, b->types, NULL);
        if (x->m->types >= 0) PARE_TRY(pare_exec_bind_types(x, b->types));
    }
    if (!d->src_tokens) return PARE_OK;
    if (!b->src_tokens) {
        b->src_tokens = pare_alloc((size_t)(B * d->S) * sizeof(int32_t));
        b->src_lengths = pare_alloc((size_t)B * sizeof(int32_t));
        if (!b->src_tokens || !b->src_lengths) return pare_fail(PARE_ENOMEM, "out of memory for a batch of sources");
    }
    pare_dataset_gather_src(d, b->idx, B, b->src_tokens, b->src_lengths);
    return pare_exec_bind_source(x, b->src_tokens, b->src_lengths);
}

pare_status pare_batch_alloc(batch_buf *b, int64_t B, int64_t T)
{
    b->tokens = pare_alloc((size_t)(B * T) * sizeof(int32_t));
    b->lengths = pare_alloc((size_t)B * sizeof(int32_t));
    b->labels = pare_alloc((size_t)(B * T) * sizeof(int32_t));
    b->types = pare_alloc((size_t)(B * T) * sizeof(int32_t));
    b->idx = pare_alloc((size_t)B * sizeof(int64_t));
    b->targets = pare_alloc((size_t)B * sizeof(float));
    if (!b->tokens || !b->lengths || !b->labels || !b->types || !b->idx || !b->targets) return PARE_ENOMEM;
    return PARE_OK;
}

void pare_batch_free(batch_buf *b)
{
    pare_free(b->tokens), pare_free(b->lengths), pare_free(b->labels), pare_free(b->types), pare_free(b->idx);
    pare_free(b->targets);
    pare_free(b->src_tokens), pare_free(b->src_lengths);
    memset(b, 0, sizeof *b);
}

pare_status pare_train_refuse_parallel(const pare_options *o, const char *who)
{
    if (pare_opt_bool(o, "checkpoint") || strcmp(pare_opt_str(o, "pipeline"), "none") || pare_opt_int(o, "micro_batches") != 1)
        return pare_fail(PARE_ENOTSUP, "%s: checkpoint, pipeline and micro_batches are m:train's options; %s does not run "
                         "them", who, who);
    return PARE_OK;
}

pare_status pare_train(pare_model *m, const pare_dataset *train, const pare_dataset *eval, const pare_options *o,
                       pare_progress_fn progress, void *ud, pare_train_result *out)
{
    return pare_train_distill(m, train, eval, o, NULL, progress, ud, out);
}

pare_status pare_train_distill(pare_model *m, const pare_dataset *train, const pare_dataset *eval, const pare_options *o,
                               const pare_distill *d, pare_progress_fn progress, void *ud, pare_train_result *out)
{
    return pare_train_ex(m, train, eval, o, d, NULL, progress, ud, out);
}

pare_status pare_train_ex(pare_model *m, const pare_dataset *train, const pare_dataset *eval, const pare_options *o,
                          const pare_distill *d, const pare_train_hooks *h, pare_progress_fn progress, void *ud,
                          pare_train_result *out)
{
    memset(out, 0, sizeof *out);
    out->best_eval_accuracy = -1;
    out->best_eval_pearson = NAN;
    PARE_TRY(pare_train_check_fit(m, train));
    if (eval) PARE_TRY(pare_train_check_fit(m, eval));
    int64_t steps = pare_opt_int(o, "steps"), B = pare_opt_int(o, "batch"), warmup = pare_opt_int(o, "warmup");
    float lr = (float)pare_opt_num(o, "lr"), minr = (float)pare_opt_num(o, "min_lr_ratio");
    float wd = (float)pare_opt_num(o, "weight_decay"), clip = (float)pare_opt_num(o, "clip");
    float b1 = (float)pare_opt_num(o, "beta1"), b2 = (float)pare_opt_num(o, "beta2"), eps = (float)pare_opt_num(o, "eps");
    int64_t eval_every = pare_opt_int(o, "eval_every");
    double target = pare_opt_num(o, "target_accuracy");
    if ((eval_every > 0 || target > 0) && !eval)
        return pare_fail(PARE_EINVAL, "train: eval_every / target_accuracy need an evaluation set");
    if (target > 0 && pare_model_regression_target(m) >= 0)
        return pare_fail(PARE_EINVAL, "train: target_accuracy=%g stops a classifier; a regression model (head=regression) "
                         "has no accuracy (its evaluations report pearson, spearman and mse: use eval_every)", target);
    for (int64_t i = 0; i < m->nparams; i++) PARE_TRY(pare_format_check_trainable(&m->params[i], "train"));
    if (strcmp(pare_opt_str(o, "pipeline"), "none")) {
        if (d || h)
            return pare_fail(PARE_ENOTSUP, "train: pipeline=%s does not run %s yet", pare_opt_str(o, "pipeline"),
                             d ? "distillation (a teacher's terms)" : "pruning schedules and head gates (training hooks)");
        if (eval_every > 0 || target > 0)
            return pare_fail(PARE_ENOTSUP, "train: pipeline=%s does not evaluate during the run (eval_every, target_accuracy): "
                             "evaluate after it", pare_opt_str(o, "pipeline"));
        return pare_train_pipeline(m, train, o, progress, ud, out);
    }
    if (pare_opt_int(o, "micro_batches") != 1)
        return pare_fail(PARE_EINVAL, "train: micro_batches=%lld needs a pipeline (pipeline=gpipe or 1f1b)",
                         (long long)pare_opt_int(o, "micro_batches"));

    if (d && d->teacher) {
        pare_status ts = pare_train_check_fit(d->teacher, train);
        if (ts != PARE_OK) return pare_fail_ctx(ts, "distill: the teacher");
    }
    pare_exec *x = NULL;
    batch_buf bb = {0};
    distill_run dr = {0};
    dp_run dpr = {0};
    float *ring = NULL; /* (window, nterms) the loss terms of the last window steps */
    pare_status st = d ? pare_distill_begin(&dr, m, d, B, train->T, (uint64_t)pare_opt_num(o, "seed")) : PARE_OK;
    /* before the executor: a hook may add parameters and transforms (a pruning schedule's masks) */
    if (st == PARE_OK && h && h->begin) st = h->begin(h->ud, m, steps);
    if (st == PARE_OK) st = pare_model_alloc_grads(m);
    /* under mpirun: this rank's rows [lo, hi) of every batch of B (hi - lo = B with one process) */
    if (st == PARE_OK) st = pare_dp_begin(&dpr, m, B, d != NULL, h != NULL);
    int64_t Bl = dpr.hi - dpr.lo;
    pare_exec_opts xo = {.checkpoint = pare_opt_bool(o, "checkpoint")};
    if (st == PARE_OK) st = pare_exec_new_opts(&x, m, Bl, train->T, train->src_tokens ? train->S : m->src_max_T, PARE_EXEC_TRAIN, &xo);
    if (st != PARE_OK) goto done;
    out->planned_bytes = x->planned_bytes;
    if ((st = pare_batch_alloc(&bb, B, train->T)) != PARE_OK) goto done;
    /* the loss terms early and late (pare_train_term): the first window summed, the last window in a ring */
    pare_loss_term lt[PARE_TRAIN_MAX_TERMS];
    int nt = pare_exec_loss_terms(x, lt, PARE_TRAIN_MAX_TERMS);
    if (nt > PARE_TRAIN_MAX_TERMS) nt = PARE_TRAIN_MAX_TERMS;
    int64_t win = steps / 10 < 1 ? 1 : steps / 10 > 100 ? 100 : steps / 10;
    double first_sum[PARE_TRAIN_MAX_TERMS] = {0};
    if (nt > 0 && !(ring = pare_alloc((size_t)(win * nt) * sizeof(float)))) {
        st = pare_fail(PARE_ENOMEM, "train: out of memory");
        goto done;
    }
    out->nterms = nt, out->window = win;
    for (int k = 0; k < nt; k++) {
        snprintf(out->terms[k].name, sizeof out->terms[k].name, "%s", lt[k].name);
        out->terms[k].op = lt[k].op, out->terms[k].weight = lt[k].weight;
    }
    pare_rng rng;
    pare_rng_seed(&rng, (uint64_t)pare_opt_num(o, "seed"));
    x->rng = pare_rng_split(&rng, 0xd80 + (uint64_t)dpr.rank); /* rank 0 (one process): 0xd80 as always */

    int64_t t0 = pare_now_ns();
    double ema = 0;
    for (int64_t s = 0; s < steps; s++) {
        for (int64_t b = 0; b < B; b++) bb.idx[b] = (int64_t)pare_rng_below(&rng, (uint64_t)train->n);
        if (dpr.lo) memmove(bb.idx, bb.idx + dpr.lo, (size_t)Bl * sizeof *bb.idx); /* this rank's share */
        if ((st = pare_batch_bind(&bb, x, train, Bl)) != PARE_OK) goto done;
        if (d && (st = pare_distill_step(&dr, x, bb.tokens, bb.lengths, train->types ? bb.types : NULL,
                                         train->src_tokens ? bb.src_tokens : NULL, bb.src_lengths)) != PARE_OK)
            goto done;
        if ((st = pare_exec_forward(x)) != PARE_OK) goto done;
        if (!isfinite(x->loss)) {
            /* "NaN" / "Inf", not printf's "-nan" */
            const char *loss = isnan(x->loss) ? "NaN" : x->loss > 0 ? "+Inf" : "-Inf";
            int64_t node;
            /* where it starts: a non-finite parameter or activation named, or else the usual divergence */
            pare_status fs = pare_exec_find_nonfinite(x, &node);
            if (fs == PARE_ENUMERIC)
                st = pare_fail_ctx(PARE_ENUMERIC, "train: loss became %s at step %lld (lr=%g)", loss, (long long)s,
                                   (double)lr);
            else
                st = pare_fail(PARE_ENUMERIC, "train: loss became %s at step %lld (lr=%g): lower the learning rate or clip",
                               loss, (long long)s, (double)lr);
            goto done;
        }
        float loss = x->loss, tv[PARE_TRAIN_MAX_TERMS];
        if (nt > 0) pare_exec_loss_terms(x, lt, nt);
        for (int k = 0; k < nt; k++) tv[k] = lt[k].value;
        pare_model_zero_grad(m);
        if ((st = pare_exec_backward(x)) != PARE_OK) goto done;
        out->recomputed_nodes = x->recomputed_nodes;
        float extra = 0;
        if (h && h->after_backward && (st = h->after_backward(h->ud, m, s, &extra)) != PARE_OK) goto done;
        /* data-parallel: gradients, loss and terms become the global batch's, the same on every rank */
        if (dpr.on && (st = pare_dp_allreduce(&dpr, m, &loss, tv, nt, pare_dp_rows(m, bb.labels, Bl, train->T))) != PARE_OK)
            goto done;
        for (int k = 0; k < nt; k++) {
            if (s < win) first_sum[k] += tv[k];
            ring[(s % win) * nt + k] = tv[k];
        }
        if (pare_tp_ranks(m)) pare_tp_clip_grad_norm(m, clip); /* the norm over every rank's shard */
        else pare_clip_grad_norm(m, clip);
        float lr_s = pare_lr_at(s, steps, warmup, lr, minr);
        pare_adamw_step(m, lr_s, b1, b2, eps, wd, s + 1);
        /* bf16 weights (and oneDNN's packed copies) rounded again from the updated f32 masters */
        if ((st = pare_model_refresh_formats(m)) != PARE_OK) goto done;
        if (h && h->after_step && (st = h->after_step(h->ud, m, s)) != PARE_OK) goto done;
        ema = s == 0 ? loss + extra : 0.95 * ema + 0.05 * (loss + extra);
        out->steps = s + 1;
        out->final_loss = (float)ema;

        int stop = 0;
        double acc = -1, pearson = NAN;
        if (eval && ((eval_every > 0 && (s + 1) % eval_every == 0) || (target > 0 && eval_every == 0 && (s + 1) % 50 == 0))) {
            pare_eval_result e;
            pare_distill_detach(&dr, m); /* the model itself, without the teacher's terms */
            st = pare_evaluate(m, eval, B, &e);
            pare_distill_attach(&dr, m);
            if (st != PARE_OK) goto done;
            if (e.regression) {
                pearson = e.pearson;
                if (isnan(out->best_eval_pearson) || pearson > out->best_eval_pearson) out->best_eval_pearson = pearson;
            } else {
                acc = e.accuracy;
                if (acc > out->best_eval_accuracy) out->best_eval_accuracy = acc;
            }
            if (target > 0 && acc >= target) stop = 1;
        }
        double el = (double)(pare_now_ns() - t0) * 1e-9;
        if (progress) {
            pare_train_progress p = {s + 1, steps, (float)ema, lr_s, el, el / (double)(s + 1) * (double)(steps - s - 1), acc,
                                     pearson};
            if (progress(ud, &p)) stop = 1;
        }
        if (stop) break;
    }
    out->seconds = (double)(pare_now_ns() - t0) * 1e-9;
    out->ranks = dpr.on ? dpr.size : 1, out->comm_seconds = dpr.comm_s, out->wait_seconds = dpr.wait_s;
    if (out->steps > 0) {
        int64_t n = out->steps < win ? out->steps : win; /* slots 0..n of the ring hold the last n steps */
        for (int k = 0; k < nt; k++) {
            double last = 0;
            for (int64_t i = 0; i < n; i++) last += ring[i * nt + k];
            out->terms[k].first = first_sum[k] / (double)n, out->terms[k].last = last / (double)n;
        }
    }
done:
    pare_free(ring);
    if (h && h->end) h->end(h->ud, m);
    pare_batch_free(&bb);
    pare_exec_free(x);
    pare_distill_end(&dr, m);
    pare_dp_end(&dpr);
    return st;
}

/* Run the dataset through the model in batches, calling fn on each batch's executor. Logits holding NaN
 * or Inf stop it with PARE_ENUMERIC, never reach fn: no metric can turn them into a plausible number
 * (argmax of NaNs is index 0, max |Δ| of NaNs stays 0). The message names the batch and, from a checked
 * re-run of it, the first layer whose output is not finite (`what` names the caller; NULL: nothing):
 *     "evaluate: non-finite logits (NaN) on batch 3 of 4 (examples 128..191 of recall/test, row 5):
 *      layer enc.0.ffn.up outputs NaN first (row 3, column 17; its parameter enc.0.ffn.up.weight holds
 *      NaN at (5, 2))" */
typedef pare_status (*batch_fn)(void *ud, const pare_exec *x, const int32_t *labels, int64_t first, int64_t B);

static pare_status nonfinite_logits(pare_exec *e, const char *what, const pare_dataset *d, int64_t first, int64_t B,
                                    int64_t batch, int64_t bad)
{
    const pare_model *m = e->m;
    char where[320];
    snprintf(where, sizeof where, "%s%snon-finite logits (%s) on batch %lld of %lld (examples %lld..%lld of %s, row %lld)",
             what ? what : "", what ? ": " : "", isnan(pare_exec_logits(e)[bad]) ? "NaN" : "Inf", (long long)(first / batch + 1),
             (long long)((d->n + batch - 1) / batch), (long long)first, (long long)(first + B - 1), d->name,
             (long long)(bad / m->nclass));
    int64_t node;
    pare_status st = pare_exec_find_nonfinite(e, &node);
    if (st == PARE_OK) return pare_fail(PARE_ENUMERIC, "%s; a checked re-run of the batch was finite", where);
    return pare_fail_ctx(PARE_ENUMERIC, "%s", where);
}

/* Examples [from, from + count) of d; the executors keep the values named in keep[0..nkeep). */
static pare_status for_range(pare_model *m, const pare_dataset *d, int64_t from, int64_t count, int64_t batch, batch_fn fn,
                             void *ud, const char *what, const char *const *keep, int nkeep)
{
    PARE_TRY(pare_train_check_fit(m, d));
    if (batch < 1) return pare_fail(PARE_EINVAL, "batch=%lld: must be >= 1", (long long)batch);
    if (batch > count) batch = count;
    pare_exec *x = NULL, *tail = NULL;
    batch_buf bb = {0};
    int64_t end = from + count;
    int64_t S = d->src_tokens ? d->S : m->src_max_T;
    pare_status st = pare_exec_new_src(&x, m, batch, d->T, S, PARE_EXEC_INFER, keep, nkeep);
    if (st == PARE_OK && count % batch) st = pare_exec_new_src(&tail, m, count % batch, d->T, S, PARE_EXEC_INFER, keep, nkeep);
    if (st == PARE_OK) st = pare_batch_alloc(&bb, batch, d->T);
    for (int64_t first = from; st == PARE_OK && first < end; first += batch) {
        int64_t B = end - first < batch ? end - first : batch;
        pare_exec *e = B == batch ? x : tail;
        for (int64_t b = 0; b < B; b++) bb.idx[b] = first + b;
        if ((st = pare_batch_bind(&bb, e, d, B)) != PARE_OK) break;
        if ((st = pare_exec_forward(e)) != PARE_OK) break;
        int64_t bad = pare_first_nonfinite(pare_exec_logits(e), (m->lm ? B * d->T : B) * m->nclass);
        if (bad >= 0) {
            st = nonfinite_logits(e, what, d, first, B, batch, bad);
            break;
        }
        st = fn(ud, e, bb.labels, first, B);
    }
    pare_batch_free(&bb);
    pare_exec_free(x);
    pare_exec_free(tail);
    return st;
}

static pare_status for_batches(pare_model *m, const pare_dataset *d, int64_t batch, batch_fn fn, void *ud,
                               const char *what)
{
    return for_range(m, d, 0, d->n, batch, fn, ud, what, NULL, 0);
}

typedef struct eval_acc {
    double loss_sum;
    int64_t correct, count;
    const pare_dataset *d;  /* regression: the targets */
    double *pred, *gold;    /* regression: (n) the predicted scores and the targets */
} eval_acc;

static pare_status eval_batch(void *ud, const pare_exec *x, const int32_t *labels, int64_t first, int64_t B)
{
    eval_acc *a = ud;
    const pare_model *m = x->m;
    const float *logits = pare_exec_logits(x), *losses = x->buf[m->loss];
    if (a->pred) { /* regression: one score per example */
        for (int64_t r = 0; r < B; r++) {
            double p = logits[r], g = a->d->targets[first + r];
            a->pred[first + r] = p, a->gold[first + r] = g;
            a->loss_sum += (p - g) * (p - g);
            a->count++;
        }
        return PARE_OK;
    }
    int64_t rows = m->lm ? B * x->T : B, V = m->nclass;
    for (int64_t r = 0; r < rows; r++) {
        if (labels[r] < 0) continue;
        const float *row = logits + r * V;
        int64_t best = 0;
        for (int64_t v = 1; v < V; v++)
            if (row[v] > row[best]) best = v;
        a->correct += best == labels[r];
        a->loss_sum += losses[r];
        a->count++;
    }
    return PARE_OK;
}

pare_status pare_evaluate(pare_model *m, const pare_dataset *d, int64_t batch, pare_eval_result *out)
{
    eval_acc a = {.d = d};
    memset(out, 0, sizeof *out);
    out->pearson = out->spearman = out->mse = NAN;
    if (pare_model_regression_target(m) >= 0) {
        PARE_TRY(pare_train_check_fit(m, d));
        a.pred = pare_alloc((size_t)d->n * sizeof(double));
        a.gold = pare_alloc((size_t)d->n * sizeof(double));
        pare_status st = a.pred && a.gold ? for_batches(m, d, batch, eval_batch, &a, "evaluate")
                                          : pare_fail(PARE_ENOMEM, "evaluate: out of memory for %lld scores", (long long)d->n);
        /* n = 1 has no correlation: NaN, as for constant predictions */
        if (st == PARE_OK && d->n >= 2) st = pare_metric_pearson(&out->pearson, a.pred, a.gold, d->n);
        if (st == PARE_OK && d->n >= 2) st = pare_metric_spearman(&out->spearman, a.pred, a.gold, d->n);
        pare_free(a.pred), pare_free(a.gold);
        PARE_TRY(st);
        out->regression = 1;
        out->n = a.count;
        out->mse = out->loss = a.loss_sum / (double)a.count;
        out->accuracy = out->perplexity = NAN;
        return PARE_OK;
    }
    PARE_TRY(for_batches(m, d, batch, eval_batch, &a, "evaluate"));
    out->n = a.count;
    out->accuracy = a.count ? (double)a.correct / (double)a.count : 0;
    out->loss = a.count ? a.loss_sum / (double)a.count : 0;
    out->perplexity = exp(out->loss);
    return PARE_OK;
}

typedef struct logit_acc { float *dst; int64_t row_width; } logit_acc;

static pare_status logit_batch(void *ud, const pare_exec *x, const int32_t *labels, int64_t first, int64_t B)
{
    (void)labels;
    logit_acc *a = ud;
    int64_t per_seq = x->m->lm ? x->T : 1;
    memcpy(a->dst + first * per_seq * a->row_width, pare_exec_logits(x), (size_t)(B * per_seq * a->row_width) * sizeof(float));
    return PARE_OK;
}

pare_status pare_predict_logits(pare_model *m, const pare_dataset *d, int64_t batch, float **logits, int64_t *rows)
{
    *logits = NULL;
    *rows = m->lm ? d->n * d->T : d->n;
    logit_acc a = {pare_alloc((size_t)(*rows * m->nclass) * sizeof(float)), m->nclass};
    if (!a.dst) return PARE_ENOMEM;
    pare_status st = for_batches(m, d, batch, logit_batch, &a, NULL);
    if (st != PARE_OK) {
        pare_free(a.dst);
        return st;
    }
    *logits = a.dst;
    return PARE_OK;
}

typedef struct capture_acc { const char *const *names; int k; pare_captured *out; int64_t from; } capture_acc;

static pare_status capture_batch(void *ud, const pare_exec *x, const int32_t *labels, int64_t first, int64_t B)
{
    (void)labels;
    capture_acc *a = ud;
    for (int i = 0; i < a->k; i++) {
        const float *v;
        int64_t rows, cols;
        PARE_TRY(pare_exec_value(x, a->names[i], &v, &rows, &cols));
        int64_t per = rows * cols / B; /* rows of every kind are whole examples, batch-major */
        memcpy(a->out[i].data + (first - a->from) * per, v, (size_t)(B * per) * sizeof(float));
    }
    return PARE_OK;
}

pare_status pare_capture(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                         const char *const *names, int k, pare_captured *out)
{
    memset(out, 0, sizeof *out * (size_t)(k > 0 ? k : 0));
    if (first < 0 || n < 1 || first + n > d->n)
        return pare_fail(PARE_EINVAL, "capture: examples %lld..%lld are outside %s's %lld", (long long)first,
                         (long long)(first + n - 1), d->name, (long long)d->n);
    pare_status st = PARE_OK;
    for (int i = 0; i < k && st == PARE_OK; i++) {
        int v = pare_model_find_value(m, names[i]);
        if (v >= 0 && m->values[v].rows == PARE_ROWS_ONE) {
            st = pare_fail(PARE_EINVAL, "capture: %s is one number per batch, not per example", names[i]);
            break;
        }
        if (v < 0) break; /* for_range names it with the list of nodes */
        const pare_value *val = &m->values[v];
        int64_t per_rows = val->rows == PARE_ROWS_TOKENS ? d->T : val->rows == PARE_ROWS_CACHE_ATT ? d->T * d->T
                           : val->rows == PARE_ROWS_SRC ? d->S : val->rows == PARE_ROWS_CACHE_SATT ? d->S * d->S
                           : val->rows == PARE_ROWS_CACHE_XATT ? d->T * d->S : 1;
        out[i].rows = n * per_rows, out[i].cols = val->cols;
        out[i].data = pare_alloc((size_t)(out[i].rows * out[i].cols) * sizeof(float));
        if (!out[i].data) st = pare_fail(PARE_ENOMEM, "capture: out of memory for %s (%lld x %lld floats)", names[i],
                                         (long long)out[i].rows, (long long)out[i].cols);
    }
    capture_acc a = {names, k, out, first};
    if (st == PARE_OK) st = for_range(m, d, first, n, batch, capture_batch, &a, "capture", names, k);
    if (st != PARE_OK)
        for (int i = 0; i < k; i++) {
            pare_free(out[i].data);
            out[i].data = NULL;
        }
    return st;
}

pare_status pare_grad_batches(const pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch,
                              pare_grad_fn fn, void *ud)
{
    if (first < 0 || n < 1 || first + n > d->n)
        return pare_fail(PARE_EINVAL, "gradients: examples %lld..%lld are outside %s's %lld", (long long)first,
                         (long long)(first + n - 1), d->name, (long long)d->n);
    if (batch < 1) return pare_fail(PARE_EINVAL, "gradients: batch=%lld: must be >= 1", (long long)batch);
    PARE_TRY(pare_train_check_fit(m, d));
    for (int64_t i = 0; i < m->nparams; i++) PARE_TRY(pare_format_check_trainable(&m->params[i], "gradients"));
    if (batch > n) batch = n;
    /* a clone without dropout: the gradients of the model as it predicts, not of a noisy copy */
    pare_model *c = pare_model_clone(m);
    if (!c) return pare_fail(PARE_ENOMEM, "gradients: out of memory copying the model");
    for (int64_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].op == PARE_OP_DROPOUT) c->nodes[i].a.p = 0;
    pare_exec *x = NULL, *tail = NULL;
    batch_buf bb = {0};
    int64_t S = d->src_tokens ? d->S : c->src_max_T;
    pare_status st = pare_model_alloc_grads(c);
    if (st == PARE_OK) st = pare_exec_new_src(&x, c, batch, d->T, S, PARE_EXEC_TRAIN, NULL, 0);
    if (st == PARE_OK && n % batch) st = pare_exec_new_src(&tail, c, n % batch, d->T, S, PARE_EXEC_TRAIN, NULL, 0);
    if (st == PARE_OK) st = pare_batch_alloc(&bb, batch, d->T);
    for (int64_t at = first; st == PARE_OK && at < first + n; at += batch) {
        int64_t B = first + n - at < batch ? first + n - at : batch;
        pare_exec *e = B == batch ? x : tail;
        for (int64_t b = 0; b < B; b++) bb.idx[b] = at + b;
        if ((st = pare_batch_bind(&bb, e, d, B)) != PARE_OK) break;
        if ((st = pare_exec_forward(e)) != PARE_OK) break;
        if (!isfinite(e->loss)) {
            st = pare_fail(PARE_ENUMERIC, "gradients: the loss on examples %lld..%lld of %s is not finite", (long long)at,
                           (long long)(at + B - 1), d->name);
            break;
        }
        pare_model_zero_grad(c);
        if ((st = pare_exec_backward(e)) != PARE_OK) break;
        st = fn(ud, c, e->loss, at, B);
    }
    pare_batch_free(&bb);
    pare_exec_free(x);
    pare_exec_free(tail);
    pare_model_free(c);
    return st;
}
