/* pipeline.c — pipeline-parallel training (train.h pare_train_pipeline): GPipe (Huang et al. 2019) and 1F1B
 * (PipeDream-flush, Narayanan et al. 2021), on MPI point-to-point through dist.h.
 *
 * Stages. The model's blocks (exec.h pare_exec_blocks: one per transformer layer) are split into P runs of
 * consecutive blocks, as even as they go; stage 0 also runs the nodes before the first block (embeddings),
 * each stage the nodes between its blocks and the next stage's first block, the last stage the rest (the
 * final LayerNorm, the head, the loss). Every rank builds the whole model (the same seed, the same
 * weights) and runs its stage's nodes through executors planned for that range (pare_exec_opts), so a
 * rank holds only its stage's activations; the weights, gradients and optimizer state stay whole on every
 * rank (what a real deployment would shard is named in docs/distributed.md).
 *
 * What crosses a boundary. Into stage s come the values made before its first node and read from it on
 * (the residual stream; a value made on stage 0 and read on stage 2 passes through stage 1): stage s - 1
 * sends them, packed in value order, one message per micro-batch; the gradients of the same values go
 * back, gradients of values the backward does not reach as zeros. Inputs (tokens, lengths, labels) are
 * bound on every rank (every rank draws the same batch indices), so they are never sent.
 *
 * Schedules (stage s of P, m micro-batches):
 *     gpipe: F0 F1 .. F(m-1), then B0 .. B(m-1): m micro-batches' activations alive at once.
 *     1f1b:  w = min(P - s - 1, m) warm-up forwards, then F(w+j) B(j) pairs, then the remaining backwards:
 *            at most P - s in flight, so stage 0 holds P micro-batches' activations instead of m.
 * Each micro-batch in flight has its executor (gpipe: m, 1f1b: min(m, P - s)). Sends are copied and
 * non-blocking (dist.h), so 1F1B's crossing sends cannot deadlock.
 *
 * Equal to one process with the same global batch: the loss is a mean over rows (sequences, or an LM's
 * target tokens), so micro-batch k's backward is seeded with rows_k / rows (pare_exec loss_scale) and the
 * parameter gradients summed over the micro-batches are the batch's. A parameter read by two stages (tied
 * embeddings) has its gradients summed over the ranks; clipping uses the global norm (one all-reduce of
 * each stage's sum of squares, with the loss); each stage then steps its own parameters. After the run the
 * owner stage's weights and AdamW moments are given to every rank (an all-reduce where the others
 * contribute zeros: exact).
 *
 * The bubble: per stage, busy = the time in its forwards and backwards (packing included, waiting in a
 * receive excluded), total = from the step's start to its last backward; bubble = 1 − Σ busy / Σ total over
 * the steps, to compare with (P − 1)/(m + P − 1) (equal forward and backward times per stage, free
 * communication).
 *
 * Deliberately not here: interleaved stages (Megatron's virtual pipeline), pipeline × data parallelism,
 * sharding the weights and optimizer state by stage, dropout masks equal to one process's (each stage
 * draws its own stream), evaluation during the run (refused by pare_train_ex).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "core/timer.h"
#include "dist/dist.h"
#include "graph/format.h"
#include "train_internal.h"

typedef struct pp_run {
    int P, s;                      /* stages, this rank's stage */
    int64_t first[PARE_PP_MAX_STAGES + 1]; /* stage k runs nodes [first[k], first[k + 1]) */
    int *cross_in, *cross_out;     /* values received from s - 1 / sent to s + 1 (value ids) */
    int nin, nout;
    size_t in_bytes, out_bytes, gin_bytes, gout_bytes; /* activation and gradient message sizes */
    unsigned char *msg;            /* a message being packed or unpacked */
    unsigned char *used;           /* (nparams) 1 when a node of this stage reads the parameter */
    int *owner;                    /* (nparams) the first stage that reads it, -1 none */
    unsigned char *shared;         /* (nparams) read by more than one stage */
    pare_exec **x;                 /* (nslots) */
    int nslots;
} pp_run;

/* Mark seen[p] for every parameter node n reads: its own and its weight transforms' auxiliary ones. */
static void param_users(const pare_node *n, unsigned char *seen)
{
    for (int j = 0; j < n->nparam; j++) seen[n->param[j]] = 1;
    for (int t = 0; t < n->ntf; t++)
        for (int j = 0; j < PARE_TF_MAX_AUX; j++)
            if (n->tf[t].aux[j] >= 0) seen[n->tf[t].aux[j]] = 1;
}

/* Stage ranges and the values crossing into and out of stage s. */
static pare_status pp_plan(pp_run *r, const pare_model *m)
{
    int64_t nb = pare_exec_blocks(m, 0, m->nnodes, NULL, NULL);
    if (r->P > 1 && r->P > nb)
        return pare_fail(PARE_EINVAL, "pipeline: %d stages (ranks) for a model of %lld blocks (layers): a stage needs at least "
                         "one layer; run it on at most %lld ranks", r->P, (long long)nb, (long long)nb);
    if (r->P > PARE_PP_MAX_STAGES)
        return pare_fail(PARE_EINVAL, "pipeline: %d stages: at most %d", r->P, PARE_PP_MAX_STAGES);
    int64_t *bf = malloc(sizeof(int64_t) * (size_t)(nb + 1)), *bl = malloc(sizeof(int64_t) * (size_t)(nb + 1));
    if (!bf || !bl) {
        free(bf), free(bl);
        return pare_fail(PARE_ENOMEM, "pipeline: out of memory");
    }
    pare_exec_blocks(m, 0, m->nnodes, bf, bl);
    r->first[0] = 0;
    for (int k = 1; k < r->P; k++) r->first[k] = bf[nb * k / r->P];
    r->first[r->P] = m->nnodes;
    free(bf), free(bl);
    int64_t lo = r->first[r->s], hi = r->first[r->s + 1];
    /* a value crosses into stage k when it is made before first[k] (not an input) and read from first[k] on */
    unsigned char *rin = calloc((size_t)m->nvalues + 1, 1), *rout = calloc((size_t)m->nvalues + 1, 1);
    r->cross_in = malloc(sizeof(int) * (size_t)(m->nvalues + 1));
    r->cross_out = malloc(sizeof(int) * (size_t)(m->nvalues + 1));
    r->used = calloc((size_t)m->nparams + 1, 1);
    r->shared = calloc((size_t)m->nparams + 1, 1);
    r->owner = malloc(sizeof(int) * (size_t)(m->nparams + 1));
    if (!rin || !rout || !r->cross_in || !r->cross_out || !r->used || !r->shared || !r->owner) {
        free(rin), free(rout);
        return pare_fail(PARE_ENOMEM, "pipeline: out of memory");
    }
    for (int64_t i = 0; i < m->nnodes; i++)
        for (int k = 0; k < m->nodes[i].nin; k++) {
            int v = m->nodes[i].in[k];
            int64_t p = v >= 0 ? m->values[v].producer : -1;
            if (p < 0) continue;
            if (r->s > 0 && p < lo && i >= lo) rin[v] = 1;
            if (r->s < r->P - 1 && p < hi && i >= hi) rout[v] = 1;
        }
    for (int64_t v = 0; v < m->nvalues; v++) {
        if (rin[v]) r->cross_in[r->nin++] = (int)v;
        if (rout[v]) r->cross_out[r->nout++] = (int)v;
    }
    free(rin), free(rout);
    for (int64_t i = 0; i < m->nparams; i++) r->owner[i] = -1;
    for (int k = 0; k < r->P; k++) {
        unsigned char *seen = calloc((size_t)m->nparams + 1, 1);
        if (!seen) return pare_fail(PARE_ENOMEM, "pipeline: out of memory");
        for (int64_t i = r->first[k]; i < r->first[k + 1]; i++) param_users(&m->nodes[i], seen);
        for (int64_t p = 0; p < m->nparams; p++) {
            if (!seen[p]) continue;
            if (r->owner[p] < 0) r->owner[p] = k;
            else r->shared[p] = 1;
            if (k == r->s) r->used[p] = 1;
        }
        free(seen);
    }
    return PARE_OK;
}

static size_t value_msg_bytes(const pare_exec *x, int v, int grad)
{
    const pare_value *val = &x->m->values[v];
    return (size_t)(pare_exec_rows(x, val) * val->cols) * (grad ? sizeof(float) : pare_dtype_size(val->dtype));
}

static pare_status pp_sizes(pp_run *r, const pare_exec *x)
{
    for (int i = 0; i < r->nin; i++) r->in_bytes += value_msg_bytes(x, r->cross_in[i], 0), r->gin_bytes += value_msg_bytes(x, r->cross_in[i], 1);
    for (int i = 0; i < r->nout; i++) r->out_bytes += value_msg_bytes(x, r->cross_out[i], 0), r->gout_bytes += value_msg_bytes(x, r->cross_out[i], 1);
    size_t big = r->in_bytes;
    if (r->out_bytes > big) big = r->out_bytes;
    if (r->gin_bytes > big) big = r->gin_bytes;
    if (r->gout_bytes > big) big = r->gout_bytes;
    if (!(r->msg = malloc(big ? big : 1))) return pare_fail(PARE_ENOMEM, "pipeline: out of memory for messages of %zu bytes", big);
    return PARE_OK;
}

enum { TAG_ACT = 0, TAG_GRAD = 1 };

/* Forward of micro-batch k on executor x (bound): receive, run the stage, send. */
static pare_status pp_forward(pp_run *r, pare_exec *x, int64_t k, double *busy)
{
    const pare_model *m = x->m;
    if (r->s > 0) {
        PARE_TRY(pare_dist_recv(r->msg, r->in_bytes, r->s - 1, (int)(2 * k + TAG_ACT)));
        size_t at = 0;
        for (int i = 0; i < r->nin; i++) {
            size_t b = value_msg_bytes(x, r->cross_in[i], 0);
            memcpy(x->buf[r->cross_in[i]], r->msg + at, b);
            at += b;
        }
    }
    int64_t t0 = pare_now_ns();
    PARE_TRY(pare_exec_forward(x));
    if (r->s < r->P - 1) {
        size_t at = 0;
        for (int i = 0; i < r->nout; i++) {
            size_t b = value_msg_bytes(x, r->cross_out[i], 0);
            memcpy(r->msg + at, x->buf[r->cross_out[i]], b);
            at += b;
        }
        PARE_TRY(pare_dist_send(r->msg, r->out_bytes, r->s + 1, (int)(2 * k + TAG_ACT)));
    }
    *busy += (double)(pare_now_ns() - t0) * 1e-9;
    (void)m;
    return PARE_OK;
}

/* Backward of micro-batch k: seed (the last stage), receive the next stage's gradients, run, send. */
static pare_status pp_backward(pp_run *r, pare_exec *x, int64_t k, double *busy)
{
    int64_t t0 = pare_now_ns();
    PARE_TRY(pare_exec_backward_begin(x));
    if (r->s < r->P - 1) {
        *busy += (double)(pare_now_ns() - t0) * 1e-9;
        PARE_TRY(pare_dist_recv(r->msg, r->gout_bytes, r->s + 1, (int)(2 * k + TAG_GRAD)));
        t0 = pare_now_ns();
        size_t at = 0;
        for (int i = 0; i < r->nout; i++) {
            int v = r->cross_out[i];
            size_t b = value_msg_bytes(x, v, 1);
            if (x->need_grad[v] && x->grad[v]) {
                const float *g = (const float *)(r->msg + at);
                float *d = x->grad[v];
                for (size_t j = 0; j < b / sizeof(float); j++) d[j] += g[j];
            }
            at += b;
        }
    }
    PARE_TRY(pare_exec_backward_run(x));
    if (r->s > 0) {
        size_t at = 0;
        for (int i = 0; i < r->nin; i++) {
            int v = r->cross_in[i];
            size_t b = value_msg_bytes(x, v, 1);
            if (x->need_grad[v] && x->grad[v]) memcpy(r->msg + at, x->grad[v], b);
            else memset(r->msg + at, 0, b);
            at += b;
        }
        PARE_TRY(pare_dist_send(r->msg, r->gin_bytes, r->s - 1, (int)(2 * k + TAG_GRAD)));
    }
    *busy += (double)(pare_now_ns() - t0) * 1e-9;
    return PARE_OK;
}

/* Every rank gets the owner stage's copy of each trainable parameter's weights and moments. */
static pare_status pp_sync_params(pp_run *r, pare_model *m)
{
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable || !p->grad || r->owner[i] < 0) continue;
        int64_t n = pare_param_numel(p);
        float *bufs[3] = {p->blob->data, p->adam_m, p->adam_v};
        for (int b = 0; b < 3; b++) {
            if (r->owner[i] != r->s) memset(bufs[b], 0, (size_t)n * sizeof(float));
            PARE_TRY(pare_dist_allreduce_sum_f32(bufs[b], n));
        }
    }
    return pare_model_refresh_formats(m);
}

pare_status pare_train_pipeline(pare_model *m, const pare_dataset *train, const pare_options *o, pare_progress_fn progress,
                                void *ud, pare_train_result *out)
{
    int64_t steps = pare_opt_int(o, "steps"), B = pare_opt_int(o, "batch"), warmup = pare_opt_int(o, "warmup");
    int64_t mb = pare_opt_int(o, "micro_batches");
    float lr = (float)pare_opt_num(o, "lr"), minr = (float)pare_opt_num(o, "min_lr_ratio");
    float wd = (float)pare_opt_num(o, "weight_decay"), clip = (float)pare_opt_num(o, "clip");
    float b1 = (float)pare_opt_num(o, "beta1"), b2 = (float)pare_opt_num(o, "beta2"), eps = (float)pare_opt_num(o, "eps");
    int onef1b = !strcmp(pare_opt_str(o, "pipeline"), "1f1b");
    if (B % mb)
        return pare_fail(PARE_EINVAL, "pipeline: batch=%lld is not a multiple of micro_batches=%lld", (long long)B, (long long)mb);
    int64_t Bm = B / mb, T = train->T;
    pp_run r = {0};
    r.P = pare_dist_data_parallel() ? pare_dist_size() : 1;
    r.s = r.P > 1 ? pare_dist_rank() : 0;
    batch_buf bb = {0};
    int64_t *idx = NULL, *rows = NULL;
    unsigned char *train_flag = NULL;
    pare_status st = pp_plan(&r, m);
    if (st == PARE_OK) st = pare_model_alloc_grads(m);
    r.nslots = (int)(onef1b ? (mb < r.P - r.s ? mb : r.P - r.s) : mb);
    if (st == PARE_OK && !(r.x = calloc((size_t)r.nslots, sizeof *r.x))) st = pare_fail(PARE_ENOMEM, "pipeline: out of memory");
    pare_exec_opts xo = {.first = r.first[r.s], .last = r.first[r.s + 1], .checkpoint = pare_opt_bool(o, "checkpoint")};
    pare_rng rng;
    pare_rng_seed(&rng, (uint64_t)pare_opt_num(o, "seed"));
    for (int k = 0; st == PARE_OK && k < r.nslots; k++) {
        st = pare_exec_new_opts(&r.x[k], m, Bm, T, train->src_tokens ? train->S : m->src_max_T, PARE_EXEC_TRAIN, &xo);
        if (st == PARE_OK) out->planned_bytes += r.x[k]->planned_bytes;
    }
    if (st == PARE_OK) st = pp_sizes(&r, r.x[0]);
    if (st == PARE_OK && pare_batch_alloc(&bb, Bm, T) != PARE_OK) st = pare_fail(PARE_ENOMEM, "pipeline: out of memory");
    idx = calloc((size_t)B, sizeof *idx);
    rows = calloc((size_t)mb, sizeof *rows);
    train_flag = calloc((size_t)m->nparams + 1, 1);
    if (st == PARE_OK && (!idx || !rows || !train_flag)) st = pare_fail(PARE_ENOMEM, "pipeline: out of memory");
    if (st != PARE_OK) goto done;
    for (int k = 0; k < r.nslots; k++) /* each stage, each slot its own dropout stream */
        r.x[k]->rng = pare_rng_split(&rng, 0xd80 + (uint64_t)(r.s * 64 + k));

    out->stages = r.P, out->stage = r.s, out->micro_batches = mb, out->ranks = r.P;
    snprintf(out->schedule, sizeof out->schedule, "%s", onef1b ? "1f1b" : "gpipe");
    out->bubble_theory = (double)(r.P - 1) / (double)(mb + r.P - 1);
    double busy_sum = 0, total_sum = 0, ema = 0;
    int64_t t0 = pare_now_ns();
    for (int64_t s = 0; s < steps; s++) {
        for (int64_t b = 0; b < B; b++) idx[b] = (int64_t)pare_rng_below(&rng, (uint64_t)train->n);
        int64_t total_rows = 0;
        for (int64_t k = 0; k < mb; k++) { /* rows of the loss per micro-batch (an LM's target tokens differ) */
            memcpy(bb.idx, idx + k * Bm, (size_t)Bm * sizeof *idx);
            pare_dataset_gather(train, bb.idx, Bm, bb.tokens, bb.lengths, bb.labels);
            rows[k] = pare_dp_rows(m, bb.labels, Bm, T);
            total_rows += rows[k];
        }
        pare_model_zero_grad(m);
        double busy = 0, loss = 0;
        int64_t ts = pare_now_ns();
        /* the schedule: nf forwards and nb backwards done; 1f1b alternates after the warm-up */
        int64_t nf = 0, nbw = 0;
        while (nbw < mb) {
            /* 1f1b: a forward while fewer than P - s are in flight (the warm-up, then one per backward) */
            int fwd = nf < mb && (!onef1b || nf - nbw < (int64_t)(r.P - r.s));
            int64_t k = fwd ? nf : nbw;
            pare_exec *x = r.x[k % r.nslots];
            if (fwd) {
                memcpy(bb.idx, idx + k * Bm, (size_t)Bm * sizeof *idx);
                if ((st = pare_batch_bind(&bb, x, train, Bm)) != PARE_OK) goto done;
                if ((st = pp_forward(&r, x, k, &busy)) != PARE_OK) goto done;
                if (r.s == r.P - 1) loss += (double)x->loss * (double)rows[k] / (double)(total_rows ? total_rows : 1);
                nf++;
            } else {
                x->loss_scale = total_rows ? (float)((double)rows[k] / (double)total_rows) : 0.0f;
                if ((st = pp_backward(&r, x, k, &busy)) != PARE_OK) goto done;
                nbw++;
            }
        }
        double total = (double)(pare_now_ns() - ts) * 1e-9;
        busy_sum += busy, total_sum += total;
        if ((st = pare_dist_send_wait()) != PARE_OK) goto done;
        out->recomputed_nodes = r.x[0]->recomputed_nodes;
        /* tied parameters: the stages' gradients summed; the global norm and the loss in one all-reduce */
        int64_t t1 = pare_now_ns();
        for (int64_t i = 0; i < m->nparams; i++)
            if (r.shared[i] && m->params[i].grad && r.P > 1 &&
                (st = pare_dist_allreduce_sum_f32(m->params[i].grad, pare_param_numel(&m->params[i]))) != PARE_OK)
                goto done;
        double red[2] = {0, r.s == r.P - 1 ? loss : 0};
        for (int64_t i = 0; i < m->nparams; i++) {
            const pare_param *p = &m->params[i];
            if (!p->trainable || !p->grad || r.owner[i] != r.s) continue;
            int64_t n = pare_param_numel(p);
            for (int64_t j = 0; j < n; j++) red[0] += (double)p->grad[j] * p->grad[j];
        }
        if (r.P > 1 && (st = pare_dist_allreduce_sum_f64(red, 2)) != PARE_OK) goto done;
        out->comm_seconds += (double)(pare_now_ns() - t1) * 1e-9;
        float norm = (float)sqrt(red[0]);
        loss = red[1];
        if (!isfinite(loss)) {
            st = pare_fail(PARE_ENUMERIC, "train: loss became %s at step %lld (lr=%g): lower the learning rate or clip",
                           isnan(loss) ? "NaN" : "Inf", (long long)s, (double)lr);
            goto done;
        }
        if (clip > 0 && norm > clip) { /* as pare_clip_grad_norm, with the norm over every stage */
            float sc = clip / (norm + 1e-6f);
            for (int64_t i = 0; i < m->nparams; i++) {
                pare_param *p = &m->params[i];
                if (!p->trainable || !p->grad || !r.used[i]) continue;
                int64_t n = pare_param_numel(p);
                for (int64_t j = 0; j < n; j++) p->grad[j] *= sc;
            }
        }
        float lr_s = pare_lr_at(s, steps, warmup, lr, minr);
        for (int64_t i = 0; i < m->nparams; i++) { /* this stage's parameters only */
            train_flag[i] = (unsigned char)m->params[i].trainable;
            if (!r.used[i]) m->params[i].trainable = 0;
        }
        pare_adamw_step(m, lr_s, b1, b2, eps, wd, s + 1);
        for (int64_t i = 0; i < m->nparams; i++) m->params[i].trainable = train_flag[i];
        if ((st = pare_model_refresh_formats(m)) != PARE_OK) goto done;
        ema = s == 0 ? loss : 0.95 * ema + 0.05 * loss;
        out->steps = s + 1;
        out->final_loss = (float)ema;
        double el = (double)(pare_now_ns() - t0) * 1e-9;
        if (progress) {
            pare_train_progress p = {s + 1, steps, (float)ema, lr_s, el, el / (double)(s + 1) * (double)(steps - s - 1), -1, NAN};
            /* a stop asked on one rank alone would leave the others waiting for it: one process only */
            if (progress(ud, &p) && r.P == 1) break;
        }
    }
    out->seconds = (double)(pare_now_ns() - t0) * 1e-9;
    /* per stage: the bubble and the planned bytes, every rank its slot, summed */
    double per[3 * PARE_PP_MAX_STAGES + 1] = {0};
    per[r.s] = total_sum > 0 ? 1.0 - busy_sum / total_sum : 0;
    per[PARE_PP_MAX_STAGES + r.s] = (double)out->planned_bytes;
    per[2 * PARE_PP_MAX_STAGES + r.s] = busy_sum;
    per[3 * PARE_PP_MAX_STAGES] = r.s == 0 ? (double)r.out_bytes : 0;
    if (r.P > 1 && (st = pare_dist_allreduce_sum_f64(per, 3 * PARE_PP_MAX_STAGES + 1)) != PARE_OK) goto done;
    for (int k = 0; k < r.P; k++)
        out->bubble[k] = per[k], out->stage_bytes[k] = per[PARE_PP_MAX_STAGES + k], out->stage_busy[k] = per[2 * PARE_PP_MAX_STAGES + k];
    out->msg_bytes = per[3 * PARE_PP_MAX_STAGES];
    if (r.P > 1) st = pp_sync_params(&r, m);
done:
    pare_dist_send_wait();
    for (int k = 0; r.x && k < r.nslots; k++) pare_exec_free(r.x[k]);
    free(r.x);
    free(r.cross_in), free(r.cross_out), free(r.used), free(r.shared), free(r.owner), free(r.msg);
    free(idx), free(rows), free(train_flag);
    pare_batch_free(&bb);
    return st;
}
