/* generate.c — choosing next tokens (greedy, temperature, top-k, top-p) and the timed generation loop
 * over the KV-cached decoder (decoder.c). generate.h has the API.
 *
 * Sampling follows the usual order (Hugging Face's logits warpers): divide the logits by the
 * temperature, softmax, keep the top_k most likely, then the smallest most-likely set whose probability
 * reaches top_p (the token that crosses the threshold is kept, so at least one always is), renormalise,
 * draw one uniform number. Probabilities are in double. Ties in sorting break by the lower id, so the
 * kept set and the draw are deterministic for a seed.
 *
 * Timing: the prefill (prompts through the model and the first choice) is timed alone; each decoding
 * step (the running rows' one new token each through the model, and their choices) is timed on its own,
 * giving latency per generated token (median, mean) and tokens/s. Wall time (pare_now_ns).
 */
#include "gen/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "eval/stats.h"

static const pare_opt_spec gen_opts[] = {
    {"max_new_tokens", PARE_OPT_INT, "16", 0, 1e7, NULL, "new tokens per prompt (a row stops earlier at eos or max_T)"},
    {"temperature", PARE_OPT_FLOAT, "0", 0, 1e6, NULL, "0: greedy (argmax); > 0: sample from softmax(logits / temperature)"},
    {"top_k", PARE_OPT_INT, "0", 0, 1e9, NULL, "sample among the k most likely tokens (0: all)"},
    {"top_p", PARE_OPT_FLOAT, "1", 0, 1, NULL,
     "nucleus: the fewest most likely tokens whose probability reaches top_p, after top_k (1: all; must be > 0)"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "sampling seed (row b draws from its own stream)"},
    {"eos", PARE_OPT_INT, "-1", -1, 1e9, NULL, "stop a row after it produces this token id (-1: none)"},
    {"cache", PARE_OPT_BOOL, "true", 0, 0, NULL,
     "reuse a KV cache (false: recompute the whole prefix at every step, the baseline; variants other than "
     "full and flash always do)"},
};
const pare_schema pare_gen_schema = {"generate", "decode new tokens with a KV cache: greedy or sampled", gen_opts,
                                     (int)(sizeof gen_opts / sizeof gen_opts[0])};

pare_gen_opts pare_gen_defaults(void)
{
    return (pare_gen_opts){.max_new_tokens = 16, .temperature = 0, .top_k = 0, .top_p = 1, .seed = 1, .eos = -1,
                           .cache = 1};
}

pare_gen_opts pare_gen_opts_from(const pare_options *o)
{
    return (pare_gen_opts){.max_new_tokens = pare_opt_int(o, "max_new_tokens"),
                           .temperature = pare_opt_num(o, "temperature"),
                           .top_k = pare_opt_int(o, "top_k"),
                           .top_p = pare_opt_num(o, "top_p"),
                           .seed = (uint64_t)pare_opt_num(o, "seed"),
                           .eos = pare_opt_int(o, "eos"),
                           .cache = pare_opt_bool(o, "cache")};
}

pare_status pare_gen_check_opts(const pare_gen_opts *o, int64_t V)
{
    if (o->max_new_tokens < 0)
        return pare_fail(PARE_EINVAL, "generate: max_new_tokens=%lld: must be >= 0", (long long)o->max_new_tokens);
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return pare_fail(PARE_EINVAL, "generate: temperature=%g: must be a finite number >= 0 (0: greedy)", o->temperature);
    if (o->top_k < 0)
        return pare_fail(PARE_EINVAL, "generate: top_k=%lld: must be >= 0 (0: all tokens)", (long long)o->top_k);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return pare_fail(PARE_EINVAL, "generate: top_p=%g: must be in (0, 1] (1: all tokens)", o->top_p);
    if (o->eos < -1 || o->eos >= V)
        return pare_fail(PARE_EINVAL, "generate: eos=%lld: must be a token id in [0, %lld) or -1 (none)", (long long)o->eos,
                         (long long)V);
    return PARE_OK;
}

/* ---- one step's choice ---- */

static int64_t argmax(const float *l, int64_t V)
{
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

static int by_prob_desc(const void *a, const void *b)
{
    const pare_gen_item *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Move the k most likely items (by_prob_desc's order, a total order: ids differ) to w[0..k), in any
 * order: Hoare's selection, O(n) on average. */
static void select_top(pare_gen_item *w, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        pare_gen_item piv = w[lo + (hi - lo) / 2], t;
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (by_prob_desc(&w[i], &piv) < 0) i++;
            while (by_prob_desc(&w[j], &piv) > 0) j--;
            if (i <= j) t = w[i], w[i] = w[j], w[j] = t, i++, j--;
        }
        if (k - 1 <= j) hi = j;      /* [lo, j] precede the pivot, [i, hi] follow it */
        else if (k - 1 >= i) lo = i;
        else break;                  /* k − 1 sits among the pivot's equals: placed */
    }
}

/* Probabilities below this fraction of the largest are candidates for top_p alone only when the
 * larger ones do not reach top_p: the sort then covers a few hundred ids rather than the vocabulary. */
#define NUCLEUS_FLOOR 1e-5

/* work[0..kept) = the kept tokens with their renormalised probabilities, most likely first; returns kept.
 * Sorting is limited to the candidates: the top_k selected, or for top_p alone the ids within
 * NUCLEUS_FLOOR of the largest when they carry top_p of the mass (the nucleus is then among them, since
 * it takes ids in decreasing order). */
static int64_t kept_set(const float *logits, int64_t V, const pare_gen_opts *o, pare_gen_item *work)
{
    double mx = -INFINITY, sum = 0, inv_t = 1.0 / o->temperature;
    for (int64_t i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    for (int64_t i = 0; i < V; i++) {
        work[i].p = exp(((double)logits[i] - mx) * inv_t); /* the largest is 1 */
        work[i].id = (int32_t)i;
        sum += work[i].p;
    }
    int64_t kept = V;
    int topk = o->top_k > 0 && o->top_k < V;
    if (topk || o->top_p < 1) {
        int64_t n = V; /* candidates at work[0..n) */
        if (topk) select_top(work, V, n = o->top_k);
        else {
            int64_t c = 0;
            double mass = 0;
            for (int64_t i = 0; i < V; i++)
                if (work[i].p >= NUCLEUS_FLOOR) {
                    pare_gen_item t = work[c];
                    work[c] = work[i], work[i] = t;
                    mass += work[c++].p;
                }
            if (mass >= o->top_p * sum) n = c;
        }
        qsort(work, (size_t)n, sizeof *work, by_prob_desc);
        kept = n;
        if (o->top_p < 1) {
            double base = 0, cum = 0; /* top_p of the mass after top_k (all of it without top_k) */
            if (topk)
                for (int64_t i = 0; i < kept; i++) base += work[i].p;
            else base = sum;
            int64_t k = 0;
            while (k < kept && (k == 0 || cum < o->top_p * base)) cum += work[k++].p;
            kept = k;
        }
        sum = 0;
        for (int64_t i = 0; i < kept; i++) sum += work[i].p;
    }
    for (int64_t i = 0; i < kept; i++) work[i].p /= sum;
    return kept;
}

int64_t pare_gen_probs(double *probs, const float *logits, int64_t V, const pare_gen_opts *o, pare_gen_item *work)
{
    memset(probs, 0, sizeof *probs * (size_t)V);
    if (o->temperature == 0) {
        probs[argmax(logits, V)] = 1;
        return 1;
    }
    int64_t kept = kept_set(logits, V, o, work);
    for (int64_t i = 0; i < kept; i++) probs[work[i].id] = work[i].p;
    return kept;
}

int32_t pare_gen_sample(const float *logits, int64_t V, const pare_gen_opts *o, pare_rng *rng, pare_gen_item *work)
{
    if (o->temperature == 0) return (int32_t)argmax(logits, V);
    int64_t kept = kept_set(logits, V, o, work);
    double u = pare_rng_uniform(rng), cum = 0;
    for (int64_t i = 0; i < kept; i++) {
        cum += work[i].p;
        if (u < cum) return work[i].id;
    }
    return work[kept - 1].id; /* u within rounding of 1 */
}

/* ---- the loop ---- */

const char *pare_gen_stop_name(pare_gen_stop s)
{
    static const char *const names[] = {"max_new_tokens", "eos", "max_T"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

void pare_gen_result_free(pare_gen_result *r)
{
    if (!r) return;
    free(r->tokens), free(r->ntokens), free(r->stop), free(r->step_ms), free(r->step_rows);
    r->tokens = NULL, r->ntokens = NULL, r->stop = NULL, r->step_ms = NULL, r->step_rows = NULL;
}

static double ms_since(int64_t t0) { return (double)(pare_now_ns() - t0) * 1e-6; }

/* Row b has just produced token t (its ntokens-th): 1 if it stops there, with the reason. */
static int stops(pare_gen_result *r, const pare_decoder *d, const pare_gen_opts *o, int64_t b, int32_t t, int64_t maxT)
{
    if (o->eos >= 0 && t == o->eos) return r->stop[b] = PARE_GEN_STOP_EOS, 1;
    if (r->ntokens[b] >= o->max_new_tokens) return r->stop[b] = PARE_GEN_STOP_MAX_NEW, 1;
    /* the token just produced would be fed at position len: the sequence is full at maxT */
    if (pare_decoder_len(d, b) >= maxT) return r->stop[b] = PARE_GEN_STOP_MAX_T, 1;
    return 0;
}

pare_status pare_generate(pare_gen_result *r, pare_model *m, const int32_t *const *prompts, const int64_t *lens,
                          int64_t B, const pare_gen_opts *o)
{
    return pare_generate_src(r, m, prompts, lens, B, NULL, NULL, o);
}

pare_status pare_generate_src(pare_gen_result *r, pare_model *m, const int32_t *const *prompts, const int64_t *lens,
                              int64_t B, const int32_t *const *src, const int64_t *src_lens, const pare_gen_opts *o)
{
    memset(r, 0, sizeof *r);
    PARE_TRY(pare_gen_check_opts(o, m->vocab));
    if (B < 1) return pare_fail(PARE_EINVAL, "generate: no prompts (give at least one)");
    int64_t longest = 0;
    for (int64_t b = 0; b < B; b++) {
        if (lens[b] < 1)
            return pare_fail(PARE_EINVAL, "generate: prompt %lld is empty (a prompt needs at least one token)", (long long)b);
        if (lens[b] > m->max_T)
            return pare_fail(PARE_EINVAL, "generate: prompt %lld has %lld tokens, more than the model's max_T = %lld",
                             (long long)b, (long long)lens[b], (long long)m->max_T);
        if (lens[b] > longest) longest = lens[b];
    }
    /* a sequence holds its prompt and every new token but the last (which is produced, never fed) */
    int64_t Tcap = longest + (o->max_new_tokens > 0 ? o->max_new_tokens - 1 : 0);
    if (Tcap > m->max_T) Tcap = m->max_T;
    int64_t V = m->vocab, maxT = m->max_T;
    pare_decoder *d = NULL;
    PARE_TRY(pare_decoder_new_opts(&d, m, B, Tcap, o->cache));
    if (src || m->src_tokens >= 0) { /* an encoder-decoder's sources, encoded once before the prompts */
        pare_status ss = src ? pare_decoder_set_source(d, src, src_lens)
                             : pare_fail(PARE_EINVAL, "generate: the model is an encoder-decoder (kind %s): give a source "
                                         "per prompt (m:generate's source option)", m->kind);
        if (ss != PARE_OK) {
            pare_decoder_free(d);
            return ss;
        }
    }
    r->B = B, r->max_new = o->max_new_tokens;
    size_t cap = (size_t)(B * (r->max_new ? r->max_new : 1));
    r->tokens = calloc(cap, sizeof *r->tokens);
    r->ntokens = calloc((size_t)B, sizeof *r->ntokens);
    r->stop = calloc((size_t)B, sizeof *r->stop);
    r->step_ms = calloc((size_t)(r->max_new ? r->max_new : 1), sizeof *r->step_ms);
    r->step_rows = calloc((size_t)(r->max_new ? r->max_new : 1), sizeof *r->step_rows);
    float *logits = malloc(sizeof *logits * (size_t)(B * V));
    pare_gen_item *work = malloc(sizeof *work * (size_t)V);
    pare_rng *rng = malloc(sizeof *rng * (size_t)B);
    int64_t *n = calloc((size_t)B, sizeof *n);
    const int32_t **feed = calloc((size_t)B, sizeof *feed);
    unsigned char *running = calloc((size_t)B, 1);
    pare_status st = PARE_OK;
    if (!r->tokens || !r->ntokens || !r->stop || !r->step_ms || !r->step_rows || !logits || !work || !rng || !n ||
        !feed || !running) {
        st = pare_fail(PARE_ENOMEM, "out of memory generating for %lld prompts", (long long)B);
        goto done;
    }
    snprintf(r->note, sizeof r->note, "%s", pare_decoder_note(d));
    r->cache_bytes = pare_decoder_cache_bytes(d);
    pare_rng base;
    pare_rng_seed(&base, o->seed);
    for (int64_t b = 0; b < B; b++) rng[b] = pare_rng_split(&base, (uint64_t)b), n[b] = lens[b], feed[b] = prompts[b];
    for (int64_t b = 0; b < B; b++) r->prompt_tokens += lens[b];

    int64_t t0 = pare_now_ns();
    int64_t active = 0;
    if (o->max_new_tokens > 0) {
        st = pare_decoder_feed(d, feed, n, logits);
        if (st != PARE_OK) goto done;
        for (int64_t b = 0; b < B; b++) {
            int32_t t = pare_gen_sample(logits + b * V, V, o, &rng[b], work);
            r->tokens[b * r->max_new + r->ntokens[b]++] = t;
            running[b] = !stops(r, d, o, b, t, maxT);
            active += running[b];
        }
    } else
        for (int64_t b = 0; b < B; b++) r->stop[b] = PARE_GEN_STOP_MAX_NEW;
    r->prefill_ms = ms_since(t0);

    while (active > 0) {
        int64_t ts = pare_now_ns();
        for (int64_t b = 0; b < B; b++) {
            n[b] = running[b];
            feed[b] = running[b] ? &r->tokens[b * r->max_new + r->ntokens[b] - 1] : NULL;
        }
        st = pare_decoder_feed(d, feed, n, logits);
        if (st != PARE_OK) goto done;
        int64_t rows = active;
        for (int64_t b = 0; b < B; b++) {
            if (!running[b]) continue;
            int32_t t = pare_gen_sample(logits + b * V, V, o, &rng[b], work);
            r->tokens[b * r->max_new + r->ntokens[b]++] = t;
            if (stops(r, d, o, b, t, maxT)) running[b] = 0, active--;
        }
        r->step_rows[r->nsteps] = rows;
        r->step_ms[r->nsteps++] = ms_since(ts);
    }
    for (int64_t b = 0; b < B; b++) r->generated += r->ntokens[b];
    double steps_ms = 0;
    int64_t step_tokens = 0;
    for (int64_t s = 0; s < r->nsteps; s++) steps_ms += r->step_ms[s], step_tokens += r->step_rows[s];
    r->step_median_ms = r->nsteps ? pare_stats_median(r->step_ms, (size_t)r->nsteps) : NAN;
    r->step_mean_ms = r->nsteps ? steps_ms / (double)r->nsteps : NAN;
    r->decode_tokens_per_s = r->nsteps && steps_ms > 0 ? (double)step_tokens / (steps_ms * 1e-3) : NAN;
    r->total_ms = r->prefill_ms + steps_ms;
    r->tokens_per_s = r->total_ms > 0 ? (double)r->generated / (r->total_ms * 1e-3) : NAN;
done:
    pare_decoder_free(d);
    free(logits), free(work), free(rng), free(n), free(feed), free(running);
    if (st != PARE_OK) pare_gen_result_free(r), memset(r, 0, sizeof *r);
    return st;
}
