/* dp.c — data-parallel training (train_internal.h): each rank takes a contiguous share of every global
 * batch, and after backward the gradients are summed over the ranks in one MPI_Allreduce on one flat buffer.
 *
 * Equal to one process with the same global batch: every rank draws the same B example indices (the same
 * seeded rng) and keeps rows [lo, hi). The loss is a mean over rows (sequences, or an LM's tokens with a
 * target), so the global gradient is Σ_r n_r·g_r / Σ_r n_r with g_r the gradient of rank r's own mean and
 * n_r its rows: each rank scales its gradients by n_r, the sum is taken, every rank divides by Σ n_r. The
 * loss, the loss terms and n_r ride in the same buffer. Clipping and AdamW then run on identical
 * gradients on every rank, so the weights stay identical without being sent (Goyal et al. 2017, PyTorch
 * DistributedDataParallel; float sums reassociate, hence "equal within rounding").
 *
 * Deliberately not here: overlapping the all-reduce with backward (bucketed per layer as DDP does): the
 * executor's backward is one call, and on the small models here the all-reduce measures a few per cent of
 * a step (docs/distributed.md); distillation and hooks (a teacher's terms, pruning schedules) under
 * data parallelism; dropout masks equal to one process's (each rank draws its own).
 */
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "core/timer.h"
#include "dist/dist.h"
#include "dist/tp.h"
#include "train_internal.h"

pare_status pare_dp_begin(dp_run *r, pare_model *m, int64_t B, int distill, int hooks)
{
    memset(r, 0, sizeof *r);
    r->lo = 0, r->hi = B;
    /* a tensor-parallel shard (dist/tp.h): every rank runs the whole batch, the all-reduces are in its graph */
    if (!pare_dist_data_parallel() || pare_tp_ranks(m)) return PARE_OK;
    r->rank = pare_dist_rank(), r->size = pare_dist_size();
    if (B < r->size)
        return pare_fail(PARE_EINVAL, "train: data-parallel over %d ranks needs batch >= %d (got batch=%lld)", r->size, r->size,
                         (long long)B);
    if (distill)
        return pare_fail(PARE_ENOTSUP, "train: distillation does not run data-parallel yet (under mpirun, train the student "
                         "inside a pare.sweep point, or with one rank)");
    if (hooks)
        return pare_fail(PARE_ENOTSUP, "train: pruning schedules and head gates do not run data-parallel yet (under mpirun, "
                         "run them inside a pare.sweep point, or with one rank)");
    r->on = 1;
    r->lo = B * r->rank / r->size, r->hi = B * (r->rank + 1) / r->size;
    for (int64_t i = 0; i < m->nparams; i++)
        if (m->params[i].grad) r->ngrad += pare_param_numel(&m->params[i]);
    r->nflat = r->ngrad + 2 + PARE_TRAIN_MAX_TERMS;
    if (!(r->flat = malloc((size_t)r->nflat * sizeof(float))))
        return pare_fail(PARE_ENOMEM, "train: out of memory for the data-parallel gradient buffer (%lld floats)",
                         (long long)r->nflat);
    return PARE_OK;
}

int64_t pare_dp_rows(const pare_model *m, const int32_t *labels, int64_t B, int64_t T)
{
    if (!m->lm) return B;
    int64_t n = 0;
    for (int64_t i = 0; i < B * T; i++) n += labels[i] >= 0;
    return n;
}

pare_status pare_dp_allreduce(dp_run *r, pare_model *m, float *loss, float *terms, int nt, int64_t rows)
{
    if (!r->on) return PARE_OK;
    int64_t t0 = pare_now_ns();
    float w = (float)rows, *f = r->flat;
    for (int64_t i = 0, at = 0; i < m->nparams; i++) { /* pack: n_r · g_r */
        pare_param *p = &m->params[i];
        if (!p->grad) continue;
        int64_t n = pare_param_numel(p);
        for (int64_t j = 0; j < n; j++) f[at + j] = w * p->grad[j];
        at += n;
    }
    float *tail = f + r->ngrad; /* (2 + terms) the loss, the row count, the terms */
    tail[0] = w * *loss, tail[1] = w;
    for (int k = 0; k < nt; k++) tail[2 + k] = w * terms[k];
    /* a barrier first, so the time in the all-reduce is its transfer, and waiting for a slower rank (a
     * busy machine, an uneven share) is counted apart */
    int64_t t1 = pare_now_ns();
    pare_status st = pare_dist_barrier();
    int64_t t2 = pare_now_ns();
    if (st == PARE_OK) st = pare_dist_allreduce_sum_f32(f, r->ngrad + 2 + nt);
    if (st != PARE_OK) return st;
    r->wait_s += (double)(t2 - t1) * 1e-9;
    t0 += t2 - t1;
    float total = tail[1];
    if (total <= 0) total = 1; /* no row anywhere has a target: the gradients are all zero */
    float inv = 1.0f / total;
    for (int64_t i = 0, at = 0; i < m->nparams; i++) { /* unpack: Σ n_r·g_r / Σ n_r */
        pare_param *p = &m->params[i];
        if (!p->grad) continue;
        int64_t n = pare_param_numel(p);
        for (int64_t j = 0; j < n; j++) p->grad[j] = f[at + j] * inv;
        at += n;
    }
    *loss = tail[0] * inv;
    for (int k = 0; k < nt; k++) terms[k] = tail[2 + k] * inv;
    r->comm_s += (double)(pare_now_ns() - t0) * 1e-9;
    return PARE_OK;
}

void pare_dp_end(dp_run *r)
{
    free(r->flat);
    r->flat = NULL;
}
