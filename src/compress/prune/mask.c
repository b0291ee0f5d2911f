/* mask.c — the shared mask helper of the pruning passes and schedules: pattern options, scores → masks
 * (per layer or global; unstructured, N:M along the input dimension, blocks scored by their L2 norm), the
 * cubic schedule, sparsity counts, and calibration gradients for the gradient criteria.
 * Exactness: a layer (or the global pool) of `count` candidates loses exactly round(s·count) of them: the
 * lowest scores, ties to the lower index, by selection (O(count)), not by a threshold that ties could
 * overshoot. Deliberately not here: choosing scores (the criteria files) and sparse storage (sparsify). */
#include "prune_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/tensor.h"
#include "graph/transform.h"

pare_status pare_prune_spec_from_opts(pare_prune_spec *spec, const pare_options *o)
{
    memset(spec, 0, sizeof *spec);
    const char *pat = pare_opt_str(o, "pattern");
    spec->sparsity = pare_opt_num(o, "sparsity");
    spec->global = !strcmp(pare_opt_str(o, "scope"), "global");
    if (!strcmp(pat, "nm")) {
        spec->pattern = PARE_PRUNE_NM;
        spec->n = pare_opt_int(o, "n"), spec->m = pare_opt_int(o, "m");
        if (spec->n >= spec->m)
            return pare_fail(PARE_EINVAL, "pattern=nm: n=%d must be less than m=%d (n of every m weights are kept)", spec->n, spec->m);
        spec->sparsity = 1.0 - (double)spec->n / spec->m;
    } else if (!strcmp(pat, "block")) {
        spec->pattern = PARE_PRUNE_BLOCK;
        const char *b = pare_opt_str(o, "block");
        char tail = 0;
        if (sscanf(b, "%dx%d%c", &spec->br, &spec->bc, &tail) != 2 || spec->br < 1 || spec->bc < 1 || spec->br > 4096 ||
            spec->bc > 4096)
            return pare_fail(PARE_EINVAL, "block='%s': expected RxC with R, C in 1..4096 (e.g. 4x1, 16x16)", b);
    } else spec->pattern = PARE_PRUNE_UNSTRUCTURED;
    return PARE_OK;
}

pare_status pare_prune_spec_check(const pare_prune_spec *spec, const pare_model *m, int64_t node)
{
    const pare_param *w = &m->params[m->nodes[node].param[0]];
    int64_t N = w->shape[0], K = w->shape[1];
    if (spec->pattern == PARE_PRUNE_NM && K % spec->m)
        return pare_fail(PARE_EINVAL, "pattern=nm: m=%d does not divide the input dimension of %s (weight %lld x %lld)",
                         spec->m, m->nodes[node].name, (long long)N, (long long)K);
    if (spec->pattern == PARE_PRUNE_BLOCK && (N % spec->br || K % spec->bc))
        return pare_fail(PARE_EINVAL, "pattern=block: block %dx%d does not tile the weight of %s (%lld x %lld)", spec->br,
                         spec->bc, m->nodes[node].name, (long long)N, (long long)K);
    return PARE_OK;
}

pare_status pr_select(const pare_model *m, const pare_options *o, const pare_prune_spec *spec, int64_t **idx, int64_t *n)
{
    *idx = malloc(sizeof **idx * (size_t)(m->nnodes ? m->nnodes : 1));
    if (!*idx) return pare_fail(PARE_ENOMEM, "out of memory");
    pare_status st = pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), *idx, n);
    for (int64_t i = 0; st == PARE_OK && i < *n; i++) {
        const pare_node *nd = &m->nodes[(*idx)[i]];
        const pare_param *w = &m->params[nd->param[0]];
        if (w->format != PARE_FMT_F32)
            st = pare_fail(PARE_EINVAL, "layer %s: its weight is stored as %s; prune the f32 model, then quantize (or exclude "
                           "the layer)", nd->name, pare_format_name(w->format));
        else if (pare_node_find_transform(nd, PARE_TF_FAKE_QUANT))
            st = pare_fail(PARE_EINVAL, "layer %s: its weight is under fake quantization (QAT); one transform per weight: "
                           "prune before QAT or exclude the layer", nd->name);
        else if (spec) st = pare_prune_spec_check(spec, m, (*idx)[i]);
        if (st != PARE_OK) break;
        int64_t bad = pare_first_nonfinite(w->blob->data, w->shape[0] * w->shape[1]);
        if (bad >= 0) /* a score of NaN would be pruned silently: say so instead */
            st = pare_fail(PARE_ENUMERIC, "layer %s: its weight %s holds %s at (%lld, %lld); pruning would hide it",
                           nd->name, w->name, isnan(w->blob->data[bad]) ? "NaN" : "Inf", (long long)(bad / w->shape[1]),
                           (long long)(bad % w->shape[1]));
    }
    if (st != PARE_OK) free(*idx), *idx = NULL;
    return st;
}

float **pr_scores_new(const pare_model *m, const int64_t *idx, int64_t n)
{
    float **s = calloc(n > 0 ? (size_t)n : 1, sizeof *s);
    if (!s) return NULL;
    for (int64_t i = 0; i < n; i++) {
        const pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
        if (!(s[i] = pare_calloc(sizeof(float) * (size_t)(w->shape[0] * w->shape[1])))) {
            pr_scores_free(s, n);
            pare_fail(PARE_ENOMEM, "out of memory for the scores of %s", m->nodes[idx[i]].name);
            return NULL;
        }
    }
    return s;
}

void pr_scores_free(float **s, int64_t n)
{
    if (!s) return;
    for (int64_t i = 0; i < n; i++) pare_free(s[i]);
    free(s);
}

void pare_prune_effective(const pare_model *m, int64_t node, float *out)
{
    const pare_node *nd = &m->nodes[node];
    const pare_param *w = &m->params[nd->param[0]];
    int64_t len = w->shape[0] * w->shape[1];
    const pare_transform *t = pare_node_transform(nd, PARE_TF_WEIGHT);
    const float *mk = t && t->kind == PARE_TF_MASK ? m->params[t->aux[0]].blob->data : NULL;
    for (int64_t i = 0; i < len; i++) out[i] = mk ? w->blob->data[i] * mk[i] : w->blob->data[i];
}

static const float *mask_of(const pare_model *m, int64_t node)
{
    const pare_transform *t = pare_node_transform(&m->nodes[node], PARE_TF_WEIGHT);
    return t && t->kind == PARE_TF_MASK ? m->params[t->aux[0]].blob->data : NULL;
}

/* ---- selection: the k lowest of v[0..n) (ties to the lower index) get drop[i] = 1 ---- */

static void swapf(float *a, float *b) { float t = *a; *a = *b; *b = t; }

/* The k-th smallest (0-based) of a[0..n), reordering a (Hoare's quickselect, median of three). */
static float kth_smallest(float *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo]) swapf(&a[mid], &a[lo]);
        if (a[hi] < a[lo]) swapf(&a[hi], &a[lo]);
        if (a[hi] < a[mid]) swapf(&a[hi], &a[mid]);
        float p = a[mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) swapf(&a[i], &a[j]), i++, j--;
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

/* NaN scores rank lowest (pruned first): a weight whose criterion is undefined is the one to drop. */
static float clean(float x) { return isnan(x) ? -INFINITY : x; }

/* drop[i] = 1 for exactly k of the n values v (the lowest; ties to the lower index). */
static pare_status select_lowest(unsigned char *drop, const float *v, int64_t n, int64_t k)
{
    memset(drop, 0, (size_t)n);
    if (k <= 0) return PARE_OK;
    if (k >= n) {
        memset(drop, 1, (size_t)n);
        return PARE_OK;
    }
    float *tmp = pare_alloc(sizeof *tmp * (size_t)n);
    if (!tmp) return pare_fail(PARE_ENOMEM, "out of memory (%lld scores)", (long long)n);
    for (int64_t i = 0; i < n; i++) tmp[i] = clean(v[i]);
    float thr = kth_smallest(tmp, n, k - 1);
    pare_free(tmp);
    int64_t below = 0;
    for (int64_t i = 0; i < n; i++)
        if (clean(v[i]) < thr) drop[i] = 1, below++;
    for (int64_t i = 0; i < n && below < k; i++)
        if (clean(v[i]) == thr) drop[i] = 1, below++;
    return PARE_OK;
}

static int64_t round_count(double s, int64_t count)
{
    int64_t k = (int64_t)llround(s * (double)count);
    return k < 0 ? 0 : k > count ? count : k;
}

/* Block scores (N/br, K/bc): the L2 norm of the element scores in each block (-inf if any is -inf: a block
 * with an already-pruned weight keeps being pruned). */
static void block_scores(float *bs, const float *score, int64_t N, int64_t K, int br, int bc)
{
    int64_t NB = N / br, KB = K / bc;
    for (int64_t a = 0; a < NB; a++)
        for (int64_t b = 0; b < KB; b++) {
            double ss = 0;
            int dead = 0;
            for (int r = 0; r < br; r++)
                for (int c = 0; c < bc; c++) {
                    float x = clean(score[(a * br + r) * K + b * bc + c]);
                    if (x == -INFINITY) dead = 1;
                    ss += (double)x * x;
                }
            bs[a * KB + b] = dead ? -INFINITY : (float)sqrt(ss);
        }
}

static void expand_blocks(float *mask, const unsigned char *drop, int64_t N, int64_t K, int br, int bc)
{
    int64_t KB = K / bc;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < K; j++) mask[i * K + j] = drop[(i / br) * KB + j / bc] ? 0.0f : 1.0f;
}

/* N:M: in each row, each group of m consecutive columns keeps its n highest scores (ties to the lower index). */
static void nm_mask(float *mask, const float *score, int64_t N, int64_t K, int n, int m)
{
    for (int64_t i = 0; i < N; i++)
        for (int64_t g = 0; g < K; g += m) {
            const float *s = score + i * K + g;
            float *mk = mask + i * K + g;
            for (int a = 0; a < m; a++) {
                /* rank of a: how many of the group beat it (higher score, or equal and lower index) */
                int rank = 0;
                for (int b = 0; b < m; b++)
                    if (clean(s[b]) > clean(s[a]) || (clean(s[b]) == clean(s[a]) && b < a)) rank++;
                mk[a] = rank < n ? 1.0f : 0.0f;
            }
        }
}

pare_status pare_prune_mask_layer(float *mask, const float *score, int64_t N, int64_t K, const pare_prune_spec *spec)
{
    if (spec->pattern == PARE_PRUNE_NM) {
        if (K % spec->m) return pare_fail(PARE_EINVAL, "pattern=nm: m=%d does not divide K=%lld", spec->m, (long long)K);
        nm_mask(mask, score, N, K, spec->n, spec->m);
        return PARE_OK;
    }
    int64_t len = spec->pattern == PARE_PRUNE_BLOCK ? (N / spec->br) * (K / spec->bc) : N * K;
    if (spec->pattern == PARE_PRUNE_BLOCK && (N % spec->br || K % spec->bc))
        return pare_fail(PARE_EINVAL, "pattern=block: block %dx%d does not tile %lld x %lld", spec->br, spec->bc,
                         (long long)N, (long long)K);
    unsigned char *drop = malloc((size_t)len);
    float *bs = spec->pattern == PARE_PRUNE_BLOCK ? pare_alloc(sizeof *bs * (size_t)len) : NULL;
    if (!drop || (spec->pattern == PARE_PRUNE_BLOCK && !bs)) {
        free(drop), pare_free(bs);
        return pare_fail(PARE_ENOMEM, "out of memory (mask of %lld x %lld)", (long long)N, (long long)K);
    }
    if (bs) block_scores(bs, score, N, K, spec->br, spec->bc);
    pare_status st = select_lowest(drop, bs ? bs : score, len, round_count(spec->sparsity, len));
    if (st == PARE_OK) {
        if (bs) expand_blocks(mask, drop, N, K, spec->br, spec->bc);
        else
            for (int64_t i = 0; i < len; i++) mask[i] = drop[i] ? 0.0f : 1.0f;
    }
    free(drop), pare_free(bs);
    return st;
}

pare_status pare_prune_masks(pare_model *m, const int64_t *idx, int64_t n, float *const *score, const pare_prune_spec *spec)
{
    /* weights already pruned stay pruned */
    for (int64_t i = 0; i < n; i++) {
        const float *mk = mask_of(m, idx[i]);
        const pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
        if (mk)
            for (int64_t j = 0; j < w->shape[0] * w->shape[1]; j++)
                if (mk[j] == 0.0f) score[i][j] = -INFINITY;
    }
    pare_status st = PARE_OK;
    float **masks = calloc(n > 0 ? (size_t)n : 1, sizeof *masks);
    if (!masks) return pare_fail(PARE_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n && st == PARE_OK; i++) {
        const pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
        if (!(masks[i] = pare_alloc(sizeof(float) * (size_t)(w->shape[0] * w->shape[1]))))
            st = pare_fail(PARE_ENOMEM, "out of memory for the mask of %s", m->nodes[idx[i]].name);
        else if ((st = pare_prune_spec_check(spec, m, idx[i])) != PARE_OK) break;
    }
    if (st == PARE_OK && spec->global && spec->pattern != PARE_PRUNE_NM) {
        /* one pool of candidates (weights or blocks) over every layer */
        int64_t total = 0;
        for (int64_t i = 0; i < n; i++) {
            const pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
            total += spec->pattern == PARE_PRUNE_BLOCK ? (w->shape[0] / spec->br) * (w->shape[1] / spec->bc)
                                                       : w->shape[0] * w->shape[1];
        }
        float *pool = pare_alloc(sizeof *pool * (size_t)(total ? total : 1));
        unsigned char *drop = malloc((size_t)(total ? total : 1));
        if (!pool || !drop) st = pare_fail(PARE_ENOMEM, "out of memory (%lld global scores)", (long long)total);
        int64_t off = 0;
        for (int64_t i = 0; st == PARE_OK && i < n; i++) {
            const pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
            int64_t N = w->shape[0], K = w->shape[1];
            if (spec->pattern == PARE_PRUNE_BLOCK) {
                block_scores(pool + off, score[i], N, K, spec->br, spec->bc);
                off += (N / spec->br) * (K / spec->bc);
            } else {
                memcpy(pool + off, score[i], sizeof(float) * (size_t)(N * K));
                off += N * K;
            }
        }
        if (st == PARE_OK) st = select_lowest(drop, pool, total, round_count(spec->sparsity, total));
        off = 0;
        for (int64_t i = 0; st == PARE_OK && i < n; i++) {
            const pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
            int64_t N = w->shape[0], K = w->shape[1];
            if (spec->pattern == PARE_PRUNE_BLOCK) {
                expand_blocks(masks[i], drop + off, N, K, spec->br, spec->bc);
                off += (N / spec->br) * (K / spec->bc);
            } else {
                for (int64_t j = 0; j < N * K; j++) masks[i][j] = drop[off + j] ? 0.0f : 1.0f;
                off += N * K;
            }
        }
        pare_free(pool), free(drop);
    } else
        for (int64_t i = 0; st == PARE_OK && i < n; i++) {
            const pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
            st = pare_prune_mask_layer(masks[i], score[i], w->shape[0], w->shape[1], spec);
            if (st != PARE_OK) st = pare_fail_ctx(st, "layer %s", m->nodes[idx[i]].name);
        }
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        const pare_param *w = &m->params[m->nodes[idx[i]].param[0]];
        st = pare_model_set_mask(m, m->nodes[idx[i]].name, masks[i], w->shape[0], w->shape[1]);
    }
    for (int64_t i = 0; i < n; i++) pare_free(masks[i]);
    free(masks);
    return st;
}

pare_sparsity pare_prune_sparsity(const pare_model *m, const char *layers)
{
    pare_sparsity s = {0, 0};
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_LINEAR || (layers && *layers && !pare_name_match(layers, nd->name))) continue;
        const pare_param *w = &m->params[nd->param[0]];
        int64_t len = w->shape[0] * w->shape[1];
        const float *mk = mask_of(m, i);
        s.total += len;
        if (w->format != PARE_FMT_F32 && !mk) continue; /* quantized: its zeros are the format's business */
        for (int64_t j = 0; j < len; j++) s.zeros += mk ? mk[j] == 0.0f : w->blob->data[j] == 0.0f;
    }
    return s;
}

double pare_prune_cubic(int64_t t, double s_i, double s_f, int64_t t0, int64_t n, int64_t dt)
{
    if (t <= t0) return s_i;
    if (n * dt <= 0 || t >= t0 + n * dt) return s_f;
    double r = 1.0 - (double)(t - t0) / (double)(n * dt);
    return s_f + (s_i - s_f) * r * r * r;
}

typedef struct grad_wrap { pare_status (*fn)(void *ud, pare_model *m); void *ud; } grad_wrap;

/* pare_grad_batches hands over a copy of m without dropout whose parameters share m's weights */
static pare_status grad_call(void *ud, const pare_model *g, float loss, int64_t first, int64_t B)
{
    (void)loss, (void)first, (void)B;
    const grad_wrap *w = ud;
    return w->fn(w->ud, (pare_model *)g);
}

pare_status pare_prune_grad_batches(pare_model *m, const pare_dataset *d, int64_t samples, int64_t batch,
                                    pare_status (*fn)(void *ud, pare_model *m), void *ud)
{
    if (batch > d->n) batch = d->n;
    if (samples > d->n) samples = d->n;
    if (batch > samples) batch = samples;
    int64_t nb = samples / batch;
    grad_wrap w = {fn, ud};
    pare_status st = pare_grad_batches(m, d, 0, nb * batch, batch, grad_call, &w);
    for (int64_t i = 0; i < m->nparams; i++) { /* the pruned model carries no training state */
        pare_param *p = &m->params[i];
        pare_free(p->grad), pare_free(p->adam_m), pare_free(p->adam_v);
        p->grad = p->adam_m = p->adam_v = NULL;
    }
    return st;
}
