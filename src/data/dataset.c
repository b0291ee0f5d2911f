/* dataset.c — the pare_dataset container: allocation, freeing, invariant checks, batch gathers.
 *
 * Entry points: pare_dataset_alloc, pare_dataset_alloc_extra, pare_dataset_set_vocab, pare_dataset_free,
 * pare_dataset_gather, pare_dataset_gather_extra, pare_dataset_check, pare_dataset_decode, pare_dataset_repad. No generation or file reading happens here.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "data/task.h"

void pare_dataset_free(pare_dataset *d)
{
    if (!d) return;
    pare_free(d->tokens);
    pare_free(d->lengths);
    pare_free(d->labels);
    pare_free(d->vocab_names);
    pare_free(d->types);
    pare_free(d->targets);
    pare_free(d->src_tokens);
    pare_free(d->src_lengths);
    memset(d, 0, sizeof *d);
}

pare_status pare_dataset_alloc_extra(pare_dataset *d, int types, int targets)
{
    size_t nt = (size_t)(d->n * d->T);
    if (types && !d->types && !(d->types = pare_calloc((nt ? nt : 1) * sizeof(int32_t))))
        return pare_fail(PARE_ENOMEM, "dataset '%s': out of memory for token types", d->name);
    if (targets && !d->targets) {
        if (!(d->targets = pare_alloc((d->n ? (size_t)d->n : 1) * sizeof(float))))
            return pare_fail(PARE_ENOMEM, "dataset '%s': out of memory for targets", d->name);
        for (int64_t i = 0; i < d->n; i++) d->targets[i] = NAN;
    }
    return PARE_OK;
}

pare_status pare_dataset_alloc(pare_dataset *d, const char *name, pare_task_kind kind, int64_t n, int64_t T,
                               int32_t vocab, int32_t nclass)
{
    memset(d, 0, sizeof *d);
    if (n < 0 || T < 1 || vocab < 2 || nclass < 1 || (unsigned)kind >= PARE_TASK_KIND_COUNT)
        return pare_fail(PARE_EINVAL, "dataset '%s': bad shape n=%lld T=%lld vocab=%d nclass=%d", name, (long long)n,
                         (long long)T, vocab, nclass);
    if (n > 0 && T > (int64_t)(SIZE_MAX / 8) / n)
        return pare_fail(PARE_ENOMEM, "dataset '%s': %lld x %lld tokens is too large", name, (long long)n, (long long)T);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->kind = kind, d->n = n, d->T = T, d->vocab = vocab, d->nclass = nclass;
    size_t nt = (size_t)(n * T), nl = kind == PARE_TASK_LM ? nt : (size_t)n;
    d->tokens = pare_calloc((nt ? nt : 1) * sizeof(int32_t));
    d->lengths = pare_calloc((n ? (size_t)n : 1) * sizeof(int32_t));
    d->labels = pare_alloc((nl ? nl : 1) * sizeof(int32_t));
    if (!d->tokens || !d->lengths || !d->labels) {
        pare_dataset_free(d);
        return pare_fail(PARE_ENOMEM, "dataset '%s': out of memory for %lld x %lld tokens", name, (long long)n,
                         (long long)T);
    }
    for (size_t i = 0; i < nl; i++) d->labels[i] = kind == PARE_TASK_LM ? -1 : 0;
    return PARE_OK;
}

pare_status pare_dataset_set_vocab(pare_dataset *d, const char *const *names, int32_t vocab)
{
    size_t bytes = (size_t)vocab * sizeof(char *);
    for (int32_t i = 0; i < vocab; i++) bytes += strlen(names[i]) + 1;
    char **tab = pare_alloc(bytes);
    if (!tab) return pare_fail(PARE_ENOMEM, "dataset '%s': out of memory for the vocabulary", d->name);
    char *s = (char *)(tab + vocab);
    for (int32_t i = 0; i < vocab; i++) {
        size_t l = strlen(names[i]) + 1;
        memcpy(s, names[i], l);
        tab[i] = s;
        s += l;
    }
    pare_free(d->vocab_names);
    d->vocab_names = tab;
    return PARE_OK;
}

void pare_dataset_gather(const pare_dataset *d, const int64_t *idx, int64_t B, int32_t *tokens, int32_t *lengths,
                         int32_t *labels)
{
    size_t row = (size_t)d->T * sizeof(int32_t);
    for (int64_t b = 0; b < B; b++) {
        int64_t i = idx[b];
        assert(i >= 0 && i < d->n);
        if (tokens) memcpy(tokens + b * d->T, d->tokens + i * d->T, row);
        if (lengths) lengths[b] = d->lengths[i];
        if (labels) {
            if (d->kind == PARE_TASK_LM) memcpy(labels + b * d->T, d->labels + i * d->T, row);
            else labels[b] = d->labels[i];
        }
    }
}

void pare_dataset_gather_extra(const pare_dataset *d, const int64_t *idx, int64_t B, int32_t *types, float *targets)
{
    size_t row = (size_t)d->T * sizeof(int32_t);
    for (int64_t b = 0; b < B; b++) {
        int64_t i = idx[b];
        assert(i >= 0 && i < d->n);
        if (types) {
            if (d->types) memcpy(types + b * d->T, d->types + i * d->T, row);
            else memset(types + b * d->T, 0, row);
        }
        if (targets) targets[b] = d->targets ? d->targets[i] : NAN;
    }
}

void pare_dataset_gather_src(const pare_dataset *d, const int64_t *idx, int64_t B, int32_t *src_tokens,
                             int32_t *src_lengths)
{
    assert(d->src_tokens && d->src_lengths);
    for (int64_t b = 0; b < B; b++) {
        assert(idx[b] >= 0 && idx[b] < d->n);
        memcpy(src_tokens + b * d->S, d->src_tokens + idx[b] * d->S, (size_t)d->S * sizeof(int32_t));
        src_lengths[b] = d->src_lengths[idx[b]];
    }
}

pare_status pare_dataset_check(const pare_dataset *d)
{
    for (int64_t i = 0; d->src_tokens && i < d->n; i++) {
        int32_t L = d->src_lengths[i];
        if (L < 1 || L > d->S)
            return pare_fail(PARE_EFORMAT, "%s: example %lld has source length %d outside [1, %lld]", d->name, (long long)i,
                             L, (long long)d->S);
        for (int64_t j = 0; j < d->S; j++) {
            int32_t t = d->src_tokens[i * d->S + j];
            if (j < L ? t <= 0 || t >= d->src_vocab : t != PARE_TOKEN_PAD)
                return pare_fail(PARE_EFORMAT, "%s: example %lld source position %lld holds %d (within the length: [1, %d); "
                                 "after: PAD)", d->name, (long long)i, (long long)j, t, d->src_vocab);
        }
    }
    for (int64_t i = 0; i < d->n; i++) {
        int32_t L = d->lengths[i];
        if (L < 1 || L > d->T)
            return pare_fail(PARE_EFORMAT, "%s: example %lld has length %d outside [1, %lld]", d->name, (long long)i, L,
                             (long long)d->T);
        const int32_t *t = d->tokens + i * d->T;
        for (int64_t j = 0; j < d->T; j++) {
            if (j < L && (t[j] <= 0 || t[j] >= d->vocab))
                return pare_fail(PARE_EFORMAT, "%s: example %lld position %lld holds token %d outside [1, %d)", d->name,
                                 (long long)i, (long long)j, t[j], d->vocab);
            if (j >= L && t[j] != PARE_TOKEN_PAD)
                return pare_fail(PARE_EFORMAT, "%s: example %lld position %lld (after length %d) is %d, not PAD", d->name,
                                 (long long)i, (long long)j, L, t[j]);
        }
        for (int64_t j = 0; d->types && j < d->T; j++) {
            int32_t ty = d->types[i * d->T + j];
            if (ty < 0 || ty > 1 || (j >= L && ty != 0))
                return pare_fail(PARE_EFORMAT, "%s: example %lld position %lld has token type %d (0 or 1 within the "
                                 "length, 0 after)", d->name, (long long)i, (long long)j, ty);
        }
        if (d->targets && !isfinite(d->targets[i]))
            return pare_fail(PARE_EFORMAT, "%s: example %lld has a non-finite target", d->name, (long long)i);
        if (d->kind == PARE_TASK_CLASSIFY) {
            if (d->labels[i] < 0 || d->labels[i] >= d->nclass)
                return pare_fail(PARE_EFORMAT, "%s: example %lld has label %d outside [0, %d)", d->name, (long long)i,
                                 d->labels[i], d->nclass);
        } else {
            const int32_t *y = d->labels + i * d->T;
            for (int64_t j = 0; j < d->T; j++)
                if (y[j] < -1 || y[j] >= d->vocab || (j >= L && y[j] != -1))
                    return pare_fail(PARE_EFORMAT, "%s: example %lld position %lld has target %d", d->name, (long long)i,
                                     (long long)j, y[j]);
        }
    }
    return PARE_OK;
}

const char *pare_dataset_decode(const pare_dataset *d, int64_t i, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0) return buf;
    buf[0] = '\0';
    if (i < 0 || i >= d->n) return buf;
    for (int32_t j = 0; j < d->lengths[i] && used + 1 < cap; j++) {
        int32_t t = d->tokens[i * d->T + j];
        const char *nm = d->vocab_names && t >= 0 && t < d->vocab ? d->vocab_names[t] : "?";
        int w = snprintf(buf + used, cap - used, j ? " %s" : "%s", nm);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

pare_status pare_dataset_repad(pare_dataset *d, int64_t T)
{
    if (T == d->T) return PARE_OK;
    if (T < d->T)
        return pare_fail(PARE_EINVAL, "%s: cannot re-pad to T=%lld, shorter than the current %lld", d->name, (long long)T,
                         (long long)d->T);
    pare_dataset nd;
    PARE_TRY(pare_dataset_alloc(&nd, d->name, d->kind, d->n, T, d->vocab, d->nclass));
    for (int64_t i = 0; i < d->n; i++) {
        memcpy(nd.tokens + i * T, d->tokens + i * d->T, (size_t)d->T * sizeof(int32_t));
        if (d->kind == PARE_TASK_LM) memcpy(nd.labels + i * T, d->labels + i * d->T, (size_t)d->T * sizeof(int32_t));
    }
    pare_status st = pare_dataset_alloc_extra(&nd, d->types != NULL, d->targets != NULL);
    if (st != PARE_OK) return pare_dataset_free(&nd), st;
    for (int64_t i = 0; d->types && i < d->n; i++)
        memcpy(nd.types + i * T, d->types + i * d->T, (size_t)d->T * sizeof(int32_t));
    if (d->targets) memcpy(nd.targets, d->targets, (size_t)d->n * sizeof(float));
    memcpy(nd.lengths, d->lengths, (size_t)d->n * sizeof(int32_t));
    if (d->kind == PARE_TASK_CLASSIFY) memcpy(nd.labels, d->labels, (size_t)d->n * sizeof(int32_t));
    nd.vocab_names = d->vocab_names;
    d->vocab_names = NULL;
    pare_dataset_free(d);
    *d = nd;
    return PARE_OK;
}
