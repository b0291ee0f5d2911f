/* translate.c — corpus BLEU on token ids and greedy decoding for encoder-decoder models (translate.h).
 * Deliberately not here: beam search, length penalties, sacrebleu's tokenizers (ids are words already),
 * multiple references, a KV cache. */
#include "translate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "graph/exec.h"

/* Occurrences of the n-gram g (n ids) in s (len ids). */
static int64_t count_ngram(const int32_t *s, int64_t len, const int32_t *g, int n)
{
    int64_t c = 0;
    for (int64_t i = 0; i + n <= len; i++) c += !memcmp(s + i, g, (size_t)n * sizeof *g);
    return c;
}

pare_status pare_bleu_corpus(pare_bleu *out, const int32_t *hyp, const int64_t *hyp_len, int64_t hyp_stride,
                             const int32_t *ref, const int64_t *ref_len, int64_t ref_stride, int64_t n)
{
    memset(out, 0, sizeof *out);
    for (int64_t s = 0; s < n; s++) {
        const int32_t *h = hyp + s * hyp_stride, *r = ref + s * ref_stride;
        int64_t hl = hyp_len[s], rl = ref_len[s];
        if (hl < 0 || rl < 0 || hl > hyp_stride || rl > ref_stride)
            return pare_fail(PARE_EINVAL, "bleu: sentence %lld has lengths %lld (hypothesis) and %lld (reference); each "
                             "must be in [0, its row's %lld / %lld]", (long long)s, (long long)hl, (long long)rl,
                             (long long)hyp_stride, (long long)ref_stride);
        out->hyp_len += hl, out->ref_len += rl;
        for (int k = 1; k <= PARE_BLEU_ORDER; k++) {
            if (hl >= k) out->total[k - 1] += hl - k + 1;
            /* clipped matches: each distinct n-gram of h (at its first occurrence) counts min(#h, #r) */
            for (int64_t i = 0; i + k <= hl; i++) {
                int64_t earlier = count_ngram(h, i + k - 1, h + i, k); /* occurrences starting before i */
                if (earlier) continue;
                int64_t ch = count_ngram(h, hl, h + i, k), cr = count_ngram(r, rl, h + i, k);
                out->correct[k - 1] += ch < cr ? ch : cr;
            }
        }
    }
    int64_t c = out->hyp_len, r = out->ref_len;
    out->bp = c >= r ? 1.0 : c > 0 ? exp(1.0 - (double)r / (double)c) : 0.0;
    if (out->correct[0] == 0) return PARE_OK; /* nothing matches: 0 (sacrebleu stops early the same way) */
    double smooth = 1.0, logsum = 0.0;
    for (int k = 0; k < PARE_BLEU_ORDER; k++) {
        if (out->total[k] == 0) { /* no k-gram at all: log 0, the score is 0 */
            logsum = -INFINITY;
            break;
        }
        if (out->correct[k] == 0) {
            smooth *= 2.0;
            out->precisions[k] = 100.0 / (smooth * (double)out->total[k]);
        } else out->precisions[k] = 100.0 * (double)out->correct[k] / (double)out->total[k];
        logsum += log(out->precisions[k]);
    }
    out->bleu = isinf(logsum) ? 0.0 : out->bp * exp(logsum / PARE_BLEU_ORDER);
    return PARE_OK;
}

int64_t pare_translate_reference(const pare_dataset *d, int64_t i, const int32_t **ref)
{
    const int32_t *y = d->labels + i * d->T;
    int64_t len = 0;
    while (len < d->T && y[len] >= 0 && y[len] != PARE_TOKEN_EOS) len++;
    *ref = y;
    return len;
}

pare_status pare_translate_greedy(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t max_len,
                                  int64_t batch, int32_t *hyp, int64_t *hyp_len)
{
    if (m->src_tokens < 0)
        return pare_fail(PARE_EINVAL, "translate: a %s has no source input; translation needs a kind=encdec model", m->kind);
    if (!d->src_tokens)
        return pare_fail(PARE_EINVAL, "translate: dataset '%s' has no source sequences (a sequence-to-sequence task "
                         "such as translate has)", d->name);
    int64_t Tmax = d->T < m->max_T ? d->T : m->max_T;
    if (max_len == 0) max_len = Tmax;
    if (max_len < 1 || max_len > Tmax)
        return pare_fail(PARE_EINVAL, "translate: max_len=%lld: must be in [1, %lld] (the task's T and the model's max_T)",
                         (long long)max_len, (long long)Tmax);
    if (first < 0 || n < 1 || first + n > d->n)
        return pare_fail(PARE_EINVAL, "translate: examples %lld..%lld are outside %s's %lld", (long long)first,
                         (long long)(first + n - 1), d->name, (long long)d->n);
    if (d->S > m->src_max_T || d->src_vocab > m->src_vocab || d->vocab > m->vocab)
        return pare_fail(PARE_ESHAPE, "translate: dataset '%s' (sources of %lld over vocab %d, targets over %d) does not fit "
                         "the model (src_max_T=%lld, src_vocab=%lld, vocab=%lld)", d->name, (long long)d->S, d->src_vocab,
                         d->vocab, (long long)m->src_max_T, (long long)m->src_vocab, (long long)m->vocab);
    if (batch < 1) return pare_fail(PARE_EINVAL, "translate: batch=%lld: must be >= 1", (long long)batch);
    if (batch > n) batch = n;
    int64_t T = max_len, S = d->S, V = m->nclass;
    int32_t *tok = pare_alloc((size_t)(batch * T) * sizeof(int32_t)), *len = pare_alloc((size_t)batch * sizeof(int32_t));
    int32_t *stok = pare_alloc((size_t)(batch * S) * sizeof(int32_t)), *slen = pare_alloc((size_t)batch * sizeof(int32_t));
    int64_t *idx = pare_alloc((size_t)batch * sizeof(int64_t));
    unsigned char *done = pare_alloc((size_t)batch);
    pare_exec *x = NULL;
    pare_status st = tok && len && stok && slen && idx && done ? PARE_OK : pare_fail(PARE_ENOMEM, "translate: out of memory");
    for (int64_t b0 = first; st == PARE_OK && b0 < first + n; b0 += batch) {
        int64_t B = first + n - b0 < batch ? first + n - b0 : batch;
        if (!x || x->B != B) {
            pare_exec_free(x);
            x = NULL;
            if ((st = pare_exec_new_src(&x, m, B, T, S, PARE_EXEC_INFER, NULL, 0)) != PARE_OK) break;
        }
        for (int64_t b = 0; b < B; b++) idx[b] = b0 + b, done[b] = 0, hyp_len[b0 - first + b] = 0;
        pare_dataset_gather_src(d, idx, B, stok, slen);
        memset(tok, 0, (size_t)(B * T) * sizeof(int32_t));
        for (int64_t b = 0; b < B; b++) tok[b * T] = PARE_TOKEN_BOS;
        for (int64_t k = 0; k < max_len && st == PARE_OK; k++) {
            for (int64_t b = 0; b < B; b++) len[b] = (int32_t)(k + 1); /* BOS + the k tokens so far */
            if ((st = pare_exec_bind(x, tok, len, NULL)) != PARE_OK || (st = pare_exec_bind_source(x, stok, slen)) != PARE_OK ||
                (st = pare_exec_forward(x)) != PARE_OK)
                break;
            const float *logits = pare_exec_logits(x);
            int all = 1;
            for (int64_t b = 0; b < B; b++) {
                if (done[b]) continue;
                const float *row = logits + (b * T + k) * V;
                int32_t best = 0;
                for (int32_t v = 1; v < V; v++)
                    if (row[v] > row[best]) best = v;
                if (best == PARE_TOKEN_EOS) {
                    done[b] = 1;
                    continue;
                }
                int64_t i = b0 - first + b;
                hyp[i * max_len + hyp_len[i]++] = best;
                if (k + 1 < T) tok[b * T + k + 1] = best;
                all = 0;
            }
            if (all) break;
        }
    }
    pare_exec_free(x);
    pare_free(tok), pare_free(len), pare_free(stok), pare_free(slen), pare_free(idx), pare_free(done);
    return st;
}

pare_status pare_translate_bleu(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t max_len,
                                int64_t batch, pare_bleu *out)
{
    memset(out, 0, sizeof *out);
    int64_t Tmax = d->T < m->max_T ? d->T : m->max_T;
    if (max_len == 0) max_len = Tmax;
    if (max_len < 1 || n < 1) return pare_fail(PARE_EINVAL, "translate: max_len=%lld and n=%lld must be >= 1", (long long)max_len, (long long)n);
    int32_t *hyp = pare_alloc((size_t)(n * max_len) * sizeof(int32_t)), *ref = pare_alloc((size_t)(n * d->T) * sizeof(int32_t));
    int64_t *hl = pare_alloc((size_t)n * sizeof(int64_t)), *rl = pare_alloc((size_t)n * sizeof(int64_t));
    pare_status st = hyp && ref && hl && rl ? PARE_OK : pare_fail(PARE_ENOMEM, "translate: out of memory");
    if (st == PARE_OK) st = pare_translate_greedy(m, d, first, n, max_len, batch, hyp, hl);
    for (int64_t i = 0; st == PARE_OK && i < n; i++) {
        const int32_t *r;
        rl[i] = pare_translate_reference(d, first + i, &r);
        memcpy(ref + i * d->T, r, (size_t)rl[i] * sizeof(int32_t));
    }
    if (st == PARE_OK) st = pare_bleu_corpus(out, hyp, hl, max_len, ref, rl, d->T, n);
    pare_free(hyp), pare_free(ref), pare_free(hl), pare_free(rl);
    return st;
}
