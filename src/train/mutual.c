/* mutual.c — online (mutual) distillation: Deep Mutual Learning (Zhang et al., CVPR 2018), seed 003's
 * "online distillation" — k models trained together from scratch, each a student of the others:
 *
 *     L_k = hard_weight · CE(y, z_k) + weight/(k − 1) · Σ_{j≠k} T²·KL(softmax(z_j/T) ‖ softmax(z_k/T))
 *
 * z the logits on the same batch. Each step every model runs at inference on the batch with its weights
 * of that step (its packed copy refreshed after the update: pare_exec_repack), then each model takes its
 * forward, backward and AdamW step against its peers' logits as fixed targets (the simultaneous variant;
 * the paper's Algorithm 1 updates the models one after another, recomputing the later models' targets
 * after the earlier ones' updates — the difference is one step's update). The KL terms are the
 * distillation's loss nodes (PARE_OP_KLDIV, kernels/loss.h): targets and terms are appended to each
 * model's graph for the run and cut off after it, as distill.c does.
 *
 * With weight = 0 every model trains exactly as pare_train would train it alone with the same seed and
 * options (tests/mutual.lua checks the bits): the loop is the training loop, once per model.
 * Deliberately not here: peers' predictions averaged into one ensemble target (ONE, KDCL), models of
 * different tasks or vocabularies, LM models (per-token logits: the loss supports them, the test does
 * not cover them yet, so they are refused).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/timer.h"
#include "graph/format.h"
#include "graph/ops.h"
#include "train_internal.h"

static const pare_opt_spec mutual_opts[] = {
    {"hard_weight", PARE_OPT_FLOAT, "1", 0, 1e6, NULL, "weight of each model's cross-entropy on the task's labels"},
    {"weight", PARE_OPT_FLOAT, "1", 0, 1e6, NULL,
     "weight of the mean over the peers of T²·KL(peer ‖ model) (0: each model trains alone)"},
    {"temperature", PARE_OPT_FLOAT, "1", 1e-3, 1e3, NULL, "softmax temperature T of the KL terms"},
};
const pare_schema pare_mutual_schema = {
    "mutual", "online distillation (Deep Mutual Learning): pare.mutual({m1, m2, ...}, task, train_opts, {weight = 1, ...})",
    mutual_opts, (int)(sizeof mutual_opts / sizeof mutual_opts[0])};

typedef struct member {
    pare_model *m;
    pare_exec *x, *peer;           /* its training executor; its inference executor (its logits as a target) */
    int target[PARE_MUTUAL_MAX];   /* per peer slot: the target input */
    int64_t nodes0, values0, params0, nodes1, values1;
    int xent;                      /* its cross-entropy node */
    float xent_weight0;
    float *logits;                 /* (rows, C) this step, at inference */
    double ema;
    int appended;
} member;

static void hide(member *e) { e->nodes1 = e->m->nnodes, e->values1 = e->m->nvalues, e->m->nnodes = e->nodes0, e->m->nvalues = e->values0; }
static void show(member *e) { e->m->nnodes = e->nodes1, e->m->nvalues = e->values1; }

static pare_status append_terms(member *e, int self, int k, const pare_mutual *mu)
{
    pare_model *m = e->m;
    e->nodes0 = m->nnodes, e->values0 = m->nvalues, e->params0 = m->nparams;
    e->appended = 1;
    e->xent = m->values[m->loss].producer;
    e->xent_weight0 = m->nodes[e->xent].a.weight;
    m->nodes[e->xent].a.weight = mu->hard_weight;
    const pare_value *lg = &m->values[m->logits];
    for (int j = 0, slot = 0; j < k; j++) {
        if (j == self) continue;
        char name[PARE_NAME_MAX];
        snprintf(name, sizeof name, "mutual.%d.target", j);
        if ((e->target[slot] = pare_model_add_target(m, name, lg->rows, lg->cols)) < 0) return pare_fail_ctx(PARE_EINVAL, "mutual");
        snprintf(name, sizeof name, "mutual.%d.kl_div", j);
        if (pare_model_add_loss(m, PARE_OP_KLDIV, name, m->logits, e->target[slot], mu->weight / (float)(k - 1), mu->temperature) < 0)
            return pare_fail_ctx(PARE_EINVAL, "mutual: model %d's KL to model %d", self + 1, j + 1);
        slot++;
    }
    return PARE_OK;
}

static void remove_terms(member *e)
{
    if (!e->appended) return;
    pare_model_truncate(e->m, e->nodes0, e->values0, e->params0);
    e->m->nodes[e->xent].a.weight = e->xent_weight0;
    e->appended = 0;
}

pare_status pare_train_mutual(pare_model *const *ms, int k, const pare_dataset *train, const pare_dataset *eval,
                              const pare_options *o, const pare_mutual *mu, pare_progress_fn progress, void *ud,
                              pare_train_result *out)
{
    for (int i = 0; i < k && out; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].best_eval_accuracy = -1, out[i].best_eval_pearson = NAN;
    }
    if (k < 2 || k > PARE_MUTUAL_MAX) return pare_fail(PARE_EINVAL, "mutual: %d models (give 2 to %d)", k, PARE_MUTUAL_MAX);
    if (!(mu->hard_weight >= 0) || !(mu->weight >= 0) || !(mu->temperature > 0))
        return pare_fail(PARE_EINVAL, "mutual: hard_weight %g and weight %g must be >= 0, temperature %g > 0",
                         (double)mu->hard_weight, (double)mu->weight, (double)mu->temperature);
    for (int i = 0; i < k; i++) {
        const pare_model *m = ms[i];
        for (int j = 0; j < i; j++)
            if (ms[j] == m) return pare_fail(PARE_EINVAL, "mutual: model %d is model %d (give distinct models)", i + 1, j + 1);
        PARE_TRY(pare_train_check_fit(m, train));
        if (eval) PARE_TRY(pare_train_check_fit(m, eval));
        if (m->lm || pare_model_regression_target(m) >= 0 || m->loss < 0)
            return pare_fail(PARE_EINVAL, "mutual: model %d is a %s; mutual learning trains classifiers (one class "
                             "distribution per sequence)", i + 1, m->lm ? "language model" : "regression model");
        if (m->nclass != ms[0]->nclass)
            return pare_fail(PARE_EINVAL, "mutual: model %d has %lld classes, model 1 %lld: the peers' distributions must "
                             "have one size", i + 1, (long long)m->nclass, (long long)ms[0]->nclass);
        for (int64_t p = 0; p < m->nparams; p++) {
            pare_status ts = pare_format_check_trainable(&m->params[p], "mutual");
            if (ts != PARE_OK) return pare_fail_ctx(ts, "model %d", i + 1);
        }
    }
    int64_t steps = pare_opt_int(o, "steps"), B = pare_opt_int(o, "batch"), warmup = pare_opt_int(o, "warmup");
    float lr = (float)pare_opt_num(o, "lr"), minr = (float)pare_opt_num(o, "min_lr_ratio");
    float wd = (float)pare_opt_num(o, "weight_decay"), clip = (float)pare_opt_num(o, "clip");
    float b1 = (float)pare_opt_num(o, "beta1"), b2 = (float)pare_opt_num(o, "beta2"), eps = (float)pare_opt_num(o, "eps");
    int64_t eval_every = pare_opt_int(o, "eval_every");
    if (eval_every > 0 && !eval) return pare_fail(PARE_EINVAL, "mutual: eval_every needs an evaluation set");
    if (pare_opt_num(o, "target_accuracy") > 0)
        return pare_fail(PARE_EINVAL, "mutual: target_accuracy is not supported (the models stop together; use steps)");
    PARE_TRY(pare_train_refuse_parallel(o, "mutual"));

    member e[PARE_MUTUAL_MAX];
    memset(e, 0, sizeof e);
    batch_buf bb = {0};
    pare_status st = pare_batch_alloc(&bb, B, train->T);
    pare_rng rng; /* batches, and each model's dropout stream, as pare_train draws them with this seed */
    pare_rng_seed(&rng, (uint64_t)pare_opt_num(o, "seed"));
    const pare_rng drop = pare_rng_split(&rng, 0xd80);
    const int64_t S = train->src_tokens ? train->S : 0;
    for (int i = 0; i < k && st == PARE_OK; i++) {
        e[i].m = ms[i];
        /* the inference executor first: it is made on the model's own graph, without the terms */
        st = pare_exec_new_src(&e[i].peer, ms[i], B, train->T, S ? S : ms[i]->src_max_T, PARE_EXEC_INFER, NULL, 0);
        if (st == PARE_OK) st = append_terms(&e[i], i, k, mu);
        if (st == PARE_OK) st = pare_model_alloc_grads(ms[i]);
        if (st == PARE_OK) st = pare_exec_new_src(&e[i].x, ms[i], B, train->T, S ? S : ms[i]->src_max_T, PARE_EXEC_TRAIN, NULL, 0);
        if (st == PARE_OK && !(e[i].logits = pare_alloc(sizeof(float) * (size_t)(B * ms[i]->nclass))))
            st = pare_fail(PARE_ENOMEM, "mutual: out of memory");
        if (st == PARE_OK) {
            memset(e[i].logits, 0, sizeof(float) * (size_t)(B * ms[i]->nclass)); /* the targets when weight = 0 */
            e[i].x->rng = drop;
        }
    }
    if (st != PARE_OK) goto done;

    int64_t t0 = pare_now_ns();
    for (int64_t s = 0; s < steps; s++) {
        for (int64_t b = 0; b < B; b++) bb.idx[b] = (int64_t)pare_rng_below(&rng, (uint64_t)train->n);
        /* every model's predictions on the batch, with its weights of this step */
        for (int i = 0; i < k && mu->weight > 0; i++) {
            const float *z;
            int64_t rows, cols;
            hide(&e[i]); /* the inference executor runs the model's own graph */
            if ((st = pare_batch_bind(&bb, e[i].peer, train, B)) == PARE_OK && (st = pare_exec_forward(e[i].peer)) == PARE_OK)
                st = pare_exec_value(e[i].peer, ms[i]->values[ms[i]->logits].name, &z, &rows, &cols);
            show(&e[i]);
            if (st != PARE_OK) goto done;
            memcpy(e[i].logits, z, sizeof(float) * (size_t)(rows * cols));
        }
        float lr_s = pare_lr_at(s, steps, warmup, lr, minr);
        double mean = 0;
        for (int i = 0; i < k; i++) {
            pare_exec *x = e[i].x;
            if ((st = pare_batch_bind(&bb, x, train, B)) != PARE_OK) goto done;
            for (int j = 0, slot = 0; j < k; j++) {
                if (j == i) continue;
                /* weight 0: the peers are not run and the targets stay zeros (a term times 0) */
                if ((st = pare_exec_bind_target(x, e[i].target[slot++], e[j].logits)) != PARE_OK)
                    goto done;
            }
            if ((st = pare_exec_forward(x)) != PARE_OK) goto done;
            if (!isfinite(x->loss)) {
                st = pare_fail(PARE_ENUMERIC, "mutual: model %d's loss became %s at step %lld (lr=%g): lower the learning "
                               "rate or clip", i + 1, isnan(x->loss) ? "NaN" : "Inf", (long long)s, (double)lr);
                goto done;
            }
            pare_model_zero_grad(ms[i]);
            if ((st = pare_exec_backward(x)) != PARE_OK) goto done;
            pare_clip_grad_norm(ms[i], clip);
            pare_adamw_step(ms[i], lr_s, b1, b2, eps, wd, s + 1);
            if ((st = pare_model_refresh_formats(ms[i])) != PARE_OK) goto done; /* bf16 weights from the masters */
            e[i].ema = s == 0 ? x->loss : 0.95 * e[i].ema + 0.05 * x->loss;
            if (out) out[i].steps = s + 1, out[i].final_loss = (float)e[i].ema;
            mean += e[i].ema / k;
            if (mu->weight > 0 && (st = pare_exec_repack(e[i].peer)) != PARE_OK) goto done;
        }
        double acc = -1;
        if (eval && eval_every > 0 && (s + 1) % eval_every == 0) {
            acc = 0;
            for (int i = 0; i < k; i++) {
                pare_eval_result r;
                hide(&e[i]); /* the model itself, without its peers' terms */
                st = pare_evaluate(ms[i], eval, B, &r);
                show(&e[i]);
                if (st != PARE_OK) goto done;
                if (out && r.accuracy > out[i].best_eval_accuracy) out[i].best_eval_accuracy = r.accuracy;
                acc += r.accuracy / k;
            }
        }
        if (progress) {
            double el = (double)(pare_now_ns() - t0) * 1e-9;
            pare_train_progress p = {s + 1, steps, (float)mean, lr_s, el, el / (double)(s + 1) * (double)(steps - s - 1), acc, NAN};
            if (progress(ud, &p)) break;
        }
    }
    for (int i = 0; i < k && out; i++) out[i].seconds = (double)(pare_now_ns() - t0) * 1e-9;
done:
    for (int i = 0; i < k; i++) { /* each executor freed with the graph it was made for */
        pare_exec_free(e[i].x);
        remove_terms(&e[i]);
        pare_exec_free(e[i].peer);
        pare_free(e[i].logits);
    }
    pare_batch_free(&bb);
    return st;
}
