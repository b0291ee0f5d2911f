/* attn_fidelity.c — variants against full attention on a model's captured q, k, v (see attn_fidelity.h).
 *
 * The capture is one inference forward with an observer on the chosen ATTENTION node; the comparisons
 * run in chunks of a few sequences so full attention's (B, H, T, T) cache stays small.
 */
#include "eval/attn_fidelity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/arena.h"
#include "core/tensor.h"
#include "graph/exec.h"

enum { CHUNK = 4 }; /* sequences per comparison call */

int64_t pare_attn_layers(const pare_model *m)
{
    int64_t c = 0;
    for (int64_t i = 0; i < m->nnodes; i++) c += m->nodes[i].op == PARE_OP_ATTENTION;
    return c;
}

typedef struct capture {
    int64_t node;
    float *qkv;       /* (n·T, 3C) */
    size_t bytes;
    int done;
} capture;

static pare_status grab(void *user, const pare_exec *x, int64_t node)
{
    capture *c = user;
    if (node != c->node) return PARE_OK;
    memcpy(c->qkv, x->buf[x->m->nodes[node].in[0]], c->bytes);
    c->done = 1;
    return PARE_OK;
}

/* NaN or Inf in the captured q, k, v: an error naming the layer, the element and (from a checked re-run
 * of the forward) the first layer whose output is not finite. */
static pare_status check_capture(pare_exec *x, const capture *c, const char *layer, int64_t T, int64_t C)
{
    int64_t bad = pare_first_nonfinite(c->qkv, (int64_t)(c->bytes / sizeof(float)));
    if (bad < 0) return PARE_OK;
    const int64_t row = bad / (3 * C), col = bad % (3 * C);
    char where[224];
    snprintf(where, sizeof where, "attention fidelity: the q, k, v captured at %s hold %s (example %lld, position %lld, "
             "%c column %lld)", layer, isnan(c->qkv[bad]) ? "NaN" : "Inf", (long long)(row / T), (long long)(row % T),
             "qkv"[col / C], (long long)(col % C));
    x->observe = NULL;
    int64_t node;
    if (pare_exec_find_nonfinite(x, &node) == PARE_OK)
        return pare_fail(PARE_ENUMERIC, "%s; a checked re-run was finite", where);
    return pare_fail_ctx(PARE_ENUMERIC, "%s", where);
}

/* The first non-finite entry of out (n·T, C) over the valid rows of each sequence, or -1; *count = how many. */
static int64_t nonfinite_valid(const float *out, const int32_t *len, int64_t n, int64_t T, int64_t C, int64_t *count)
{
    int64_t first = -1;
    *count = 0;
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = b * T * C, e = i + pare_attn_len(len, b, T) * C; i < e; i++)
            if (!isfinite(out[i])) {
                if (first < 0) first = i;
                (*count)++;
            }
    return first;
}

/* One variant on sequences [b0, b0+B) of the capture: out (B·T, C). */
static pare_status run(float *out, int64_t *pairs, const pare_attn *a, const float *params, const float *qkv,
                       const int32_t *len, int64_t B, int64_t C)
{
    size_t cb = pare_attn_cache_bytes(a, B), wb = pare_attn_work_bytes(a, B);
    void *cache = pare_alloc(cb ? cb : 1), *work = pare_alloc(wb ? wb : 1);
    if (!cache || !work) {
        pare_free(cache), pare_free(work);
        return pare_fail(PARE_ENOMEM, "attention fidelity: out of memory for %s's buffers (%zu bytes)", pare_attn_name(a),
                         cb + wb);
    }
    int64_t p = 0;
    pare_attn_args x = {.out = out, .ldo = C, .cache = cache, .work = work, .work_bytes = wb, .pairs = &p, .q = qkv,
                        .k = qkv + C, .v = qkv + 2 * C, .ld = 3 * C, .lengths = len, .params = params, .B = B};
    pare_status st = pare_attn_forward(a, &x);
    pare_free(cache), pare_free(work);
    *pairs += p;
    return st;
}

pare_status pare_attn_fidelity(pare_attn_fid *out, pare_model *m, const pare_dataset *d, int64_t layer, int64_t n,
                               const char *const *specs, int nspec)
{
    int64_t nl = pare_attn_layers(m), node = -1;
    if (layer < 0 || layer >= nl)
        return pare_fail(PARE_EINVAL, "attention fidelity: layer %lld out of range (the model has %lld attention layers, 0..%lld)",
                         (long long)layer, (long long)nl, (long long)nl - 1);
    if (n < 1 || n > d->n)
        return pare_fail(PARE_EINVAL, "attention fidelity: n = %lld examples, but %s has %lld (valid: 1..%lld)",
                         (long long)n, d->name, (long long)d->n, (long long)d->n);
    if (d->T > m->max_T)
        return pare_fail(PARE_ESHAPE, "attention fidelity: %s has T = %lld > the model's max_T = %lld", d->name,
                         (long long)d->T, (long long)m->max_T);
    for (int64_t i = 0, c = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION && c++ == layer) node = i;
    const pare_node *an = &m->nodes[node];
    const int64_t T = d->T, H = an->a.heads, C = m->values[an->out].cols, D = C / H;
    const int causal = an->a.causal;

    /* 1. capture q, k, v */
    capture cap = {.node = node, .bytes = (size_t)(n * T * 3 * C) * sizeof(float)};
    int32_t *tok = pare_alloc((size_t)(n * T) * sizeof(int32_t)), *len = pare_alloc((size_t)n * sizeof(int32_t));
    int32_t *lab = pare_alloc((size_t)(n * T) * sizeof(int32_t));
    int64_t *idx = pare_alloc((size_t)n * sizeof(int64_t));
    cap.qkv = pare_alloc(cap.bytes);
    float *ref = NULL, *o = NULL, *params = NULL;
    pare_attn *full = NULL;
    pare_status st = PARE_OK;
    if (!tok || !len || !lab || !idx || !cap.qkv) {
        st = pare_fail(PARE_ENOMEM, "attention fidelity: out of memory capturing %lld × %lld × %lld activations",
                       (long long)n, (long long)T, (long long)(3 * C));
        goto done;
    }
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    pare_dataset_gather(d, idx, n, tok, len, lab);
    pare_exec *x = NULL;
    st = pare_exec_new(&x, m, n, T, PARE_EXEC_INFER);
    if (st == PARE_OK) st = pare_exec_bind(x, tok, len, NULL);
    if (st == PARE_OK) {
        x->observe = grab, x->observe_user = &cap;
        st = pare_exec_forward(x);
    }
    if (st == PARE_OK && !cap.done) st = pare_fail(PARE_EINVAL, "attention fidelity: the forward never reached %s", an->name);
    if (st == PARE_OK) st = check_capture(x, &cap, an->name, T, C);
    pare_exec_free(x);
    if (st != PARE_OK) goto done;

    /* 2. the reference, chunk by chunk */
    ref = pare_alloc((size_t)(n * T * C) * sizeof(float));
    o = pare_alloc((size_t)(n * T * C) * sizeof(float));
    if (!ref || !o) {
        st = pare_fail(PARE_ENOMEM, "attention fidelity: out of memory for the outputs");
        goto done;
    }
    int64_t full_pairs = 0;
    st = pare_attn_create_spec(&full, "full", T, H, D, causal);
    for (int64_t b0 = 0; st == PARE_OK && b0 < n; b0 += CHUNK) {
        int64_t B = n - b0 < CHUNK ? n - b0 : CHUNK;
        st = run(ref + b0 * T * C, &full_pairs, full, NULL, cap.qkv + b0 * T * 3 * C, len + b0, B, C);
    }
    if (st != PARE_OK) goto done;
    int64_t nbad, bad = nonfinite_valid(ref, len, n, T, C, &nbad);
    if (bad >= 0) {
        st = pare_fail(PARE_ENUMERIC, "attention fidelity: full attention on the q, k, v of %s gives %s (example %lld, "
                       "position %lld, column %lld; %lld entries): the scores overflow", an->name,
                       isnan(ref[bad]) ? "NaN" : "Inf", (long long)(bad / C / T), (long long)(bad / C % T),
                       (long long)(bad % C), (long long)nbad);
        goto done;
    }

    /* 3. every variant on the same inputs */
    for (int s = 0; s < nspec; s++) {
        pare_attn *a = NULL;
        st = pare_attn_create_spec(&a, specs[s], T, H, D, causal);
        if (st != PARE_OK) goto done;
        int64_t np = pare_attn_param_count(a), pairs = 0;
        pare_free(params);
        params = NULL;
        if (np) {
            params = pare_alloc((size_t)np * sizeof(float));
            if (!params) {
                pare_attn_free(a);
                st = pare_fail(PARE_ENOMEM, "attention fidelity: out of memory for %s's parameters", specs[s]);
                goto done;
            }
            pare_rng r;
            pare_rng_seed(&r, 1);
            pare_attn_param_init(a, params, &r);
        }
        for (int64_t b0 = 0; st == PARE_OK && b0 < n; b0 += CHUNK) {
            int64_t B = n - b0 < CHUNK ? n - b0 : CHUNK;
            st = run(o + b0 * T * C, &pairs, a, params, cap.qkv + b0 * T * 3 * C, len + b0, B, C);
        }
        pare_attn_free(a);
        if (st != PARE_OK) goto done;
        double num = 0, den = 0, maxe = 0, cos_sum = 0;
        int64_t cos_n = 0;
        for (int64_t b = 0; b < n; b++) {
            int64_t L = pare_attn_len(len, b, T);
            for (int64_t t = 0; t < L; t++)
                for (int64_t h = 0; h < H; h++) {
                    const float *y = o + (b * T + t) * C + h * D, *r = ref + (b * T + t) * C + h * D;
                    double dot = 0, ny = 0, nr = 0;
                    for (int64_t j = 0; j < D; j++) {
                        double e = (double)y[j] - r[j];
                        num += e * e, den += (double)r[j] * r[j];
                        if (fabs(e) > maxe) maxe = fabs(e);
                        dot += (double)y[j] * r[j], ny += (double)y[j] * y[j], nr += (double)r[j] * r[j];
                    }
                    if (ny > 0 && nr > 0) cos_sum += dot / sqrt(ny * nr), cos_n++;
                    else if (ny == 0 && nr == 0) cos_sum += 1, cos_n++;
                    else cos_n++; /* one of them is zero: cosine 0 */
                }
        }
        out[s] = (pare_attn_fid){.rel_err = den > 0 ? sqrt(num / den) : sqrt(num), .max_abs_err = maxe,
                                 .cosine = cos_n ? cos_sum / (double)cos_n : 1.0, .pairs = pairs,
                                 .pairs_frac = full_pairs ? (double)pairs / (double)full_pairs : 0.0, .T = T, .H = H,
                                 .D = D, .causal = causal};
        /* a variant whose output is not finite (e.g. an overflowing feature map) gets NaN errors and the
         * count, not the numbers its finite entries would give (NaN compares false: maxe would stay 0) */
        nonfinite_valid(o, len, n, T, C, &out[s].nonfinite);
        if (out[s].nonfinite) out[s].rel_err = out[s].max_abs_err = out[s].cosine = NAN;
    }
done:
    pare_attn_free(full);
    pare_free(params), pare_free(ref), pare_free(o);
    pare_free(tok), pare_free(len), pare_free(lab), pare_free(idx), pare_free(cap.qkv);
    return st;
}
