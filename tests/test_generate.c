/* test_generate.c — the KV-cached decoder and generation (gen/generate.h) against pare's own executor.
 *
 * (a) the logits of every decoding step with the cache equal a full forward over the sequence so far
 *     (pare_exec at T = the sequence's length), for a default decoder, a post-norm/gelu_erf one with a
 *     position offset, the GPT-2 layout (pre-norm, tanh GELU, tied head without bias), flash attention,
 *     quantized decoders (dynamic_int8, qblock q4_0, rtn), and a batch long enough to be cut into chunks;
 * (b) greedy generation equals argmax of the full forward, token by token, rows of different lengths;
 * (c) sampling: temperature → 0 and top_k = 1 equal greedy; the distribution pare_gen_probs states
 *     matches an independent reference, and seeded samples match it (5σ per token); outside the kept set
 *     never drawn; same seed, same tokens;
 * (d) eos stops a row (kept in its output), max_T stops a row;
 * (e) errors name the problem: an encoder, a tagger, prompts longer than max_T, bad options;
 * (f) encoder-decoders (pre-LN, and BART's layout: post-LN, embedding LayerNorms and scale, shared tied
 *     table, position offset 2): with the sources encoded once (pare_decoder_set_source), the logits of
 *     every step equal a full forward with the source bound, for rows of different source lengths,
 *     with and without the cache; a feed before the sources is refused;
 * and without a cache (cache = 0, or a sparse variant: longformer, lsra) each prefix recomputed gives the
 * same logits and tokens, with a note saying so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "gen/generate.h"
#include "graph/exec.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

#define KV_NUM(k, v) {k, PARE_KV_NUM, v, NULL}
#define KV_STR(k, v) {k, PARE_KV_STR, 0, v}
#define KV_BOOL(k, v) {k, PARE_KV_BOOL, v, NULL}

/* A model of the options, its weights moved away from their initialisation so distributions are peaked
 * and greedy choices are clear. NULL with a diagnostic when the build fails. */
static pare_model *build(const pare_kv *kv, int n)
{
    pare_model *m = build_model(kv, n);
    if (m) perturb_trainable(m, 11, 0.15);
    return m;
}

/* logits (V) after the last of seq[0..len) by a full forward */
static int full_logits(pare_model *m, const int32_t *seq, int64_t len, float *out)
{
    pare_exec *x = NULL;
    int32_t l = (int32_t)len;
    if (pare_exec_new(&x, m, 1, len, PARE_EXEC_INFER) != PARE_OK || pare_exec_bind(x, seq, &l, NULL) != PARE_OK ||
        pare_exec_forward(x) != PARE_OK) {
        diag("full forward failed: %s", pare_errmsg());
        pare_exec_free(x);
        return 0;
    }
    memcpy(out, pare_exec_logits(x) + (len - 1) * m->vocab, sizeof(float) * (size_t)m->vocab);
    pare_exec_free(x);
    return 1;
}

static int64_t argmax(const float *l, int64_t V)
{
    int64_t b = 0;
    for (int64_t i = 1; i < V; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

/* (a) B prompts (row b: length lens[b], tokens from a seed), then `steps` greedy steps, every row's
 * logits at every step compared with a full forward. Tolerance: 1e-5 relative to the largest logit. */
static void check_steps(pare_model *m, const char *what, int64_t B, const int64_t *lens, int steps)
{
    if (!m) {
        ok(0, "%s: model built", what);
        return;
    }
    int64_t V = m->vocab, Tmax = 0;
    for (int64_t b = 0; b < B; b++) Tmax = lens[b] + steps > Tmax ? lens[b] + steps : Tmax;
    int32_t *seq = calloc((size_t)(B * Tmax), sizeof *seq);
    int64_t *len = calloc((size_t)B, sizeof *len), *n = calloc((size_t)B, sizeof *n);
    const int32_t **feed = calloc((size_t)B, sizeof *feed);
    float *got = malloc(sizeof(float) * (size_t)(B * V)), *want = malloc(sizeof(float) * (size_t)V);
    pare_rng r;
    pare_rng_seed(&r, 3);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < lens[b]; t++) seq[b * Tmax + t] = (int32_t)pare_rng_below(&r, (uint64_t)V);
        n[b] = len[b] = lens[b], feed[b] = seq + b * Tmax;
    }
    pare_decoder *d = NULL;
    pare_status st = pare_decoder_new(&d, m, B, Tmax);
    if (!ok(st == PARE_OK, "%s: decoder made", what)) diag("%s", pare_errmsg());
    double worst = 0, scale = 0;
    int good = st == PARE_OK, compared = 0;
    for (int s = 0; good && s <= steps; s++) {
        good = pare_decoder_feed(d, feed, n, got) == PARE_OK;
        if (!good) diag("feed: %s", pare_errmsg());
        for (int64_t b = 0; good && b < B; b++) {
            good = full_logits(m, seq + b * Tmax, len[b], want);
            for (int64_t i = 0; good && i < V; i++) {
                double e = fabs((double)got[b * V + i] - want[i]);
                worst = e > worst ? e : worst;
                scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
            }
            compared++;
            if (s == steps) continue;
            int32_t next = (int32_t)argmax(got + b * V, V); /* feed the greedy choice */
            seq[b * Tmax + len[b]] = next;
            feed[b] = seq + b * Tmax + len[b];
            n[b] = 1;
            len[b]++;
        }
    }
    ok(good && worst <= 1e-5 * scale, "%s: logits of %d (row, step)s with the KV cache equal the full forward (max abs "
       "error %.3g, 1e-5 of max |logit| %.3g)", what, compared, worst, scale);
    pare_decoder_free(d);
    free(seq), free(len), free(n), free(feed), free(got), free(want);
}

static const int64_t lens3[] = {5, 1, 9};

/* logits (V) after the last of seq[0..len) given the source src[0..slen), by a full forward */
static int full_logits_src(pare_model *m, const int32_t *seq, int64_t len, const int32_t *src, int64_t slen, float *out)
{
    pare_exec *x = NULL;
    int32_t l = (int32_t)len, sl = (int32_t)slen;
    if (pare_exec_new_src(&x, m, 1, len, slen, PARE_EXEC_INFER, NULL, 0) != PARE_OK ||
        pare_exec_bind(x, seq, &l, NULL) != PARE_OK || pare_exec_bind_source(x, src, &sl) != PARE_OK ||
        pare_exec_forward(x) != PARE_OK) {
        diag("full forward failed: %s", pare_errmsg());
        pare_exec_free(x);
        return 0;
    }
    memcpy(out, pare_exec_logits(x) + (len - 1) * m->vocab, sizeof(float) * (size_t)m->vocab);
    pare_exec_free(x);
    return 1;
}

/* (f) as check_steps, for an encoder-decoder: B prompts and B sources (lengths slens) */
static void check_steps_src(pare_model *m, const char *what, int64_t B, const int64_t *lens, const int64_t *slens,
                            int steps, int cache)
{
    if (!m) {
        ok(0, "%s: model built", what);
        return;
    }
    int64_t V = m->vocab, Tmax = 0, S = m->src_max_T;
    for (int64_t b = 0; b < B; b++) Tmax = lens[b] + steps > Tmax ? lens[b] + steps : Tmax;
    int32_t *seq = calloc((size_t)(B * Tmax), sizeof *seq), *src = calloc((size_t)(B * S), sizeof *src);
    int64_t *len = calloc((size_t)B, sizeof *len), *n = calloc((size_t)B, sizeof *n);
    const int32_t **feed = calloc((size_t)B, sizeof *feed), **srcs = calloc((size_t)B, sizeof *srcs);
    float *got = malloc(sizeof(float) * (size_t)(B * V)), *want = malloc(sizeof(float) * (size_t)V);
    pare_rng r;
    pare_rng_seed(&r, 5);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < lens[b]; t++) seq[b * Tmax + t] = (int32_t)pare_rng_below(&r, (uint64_t)V);
        for (int64_t t = 0; t < slens[b]; t++) src[b * S + t] = (int32_t)pare_rng_below(&r, (uint64_t)m->src_vocab);
        n[b] = len[b] = lens[b], feed[b] = seq + b * Tmax, srcs[b] = src + b * S;
    }
    pare_decoder *d = NULL;
    pare_status st = pare_decoder_new_opts(&d, m, B, Tmax, cache);
    if (!ok(st == PARE_OK, "%s: decoder made", what)) diag("%s", pare_errmsg());
    if (st == PARE_OK)
        ok(pare_decoder_feed(d, feed, n, got) == PARE_EINVAL && strstr(pare_errmsg(), "sources first"),
           "%s: a feed before the sources is refused: %s", what, pare_errmsg());
    if (st == PARE_OK && (st = pare_decoder_set_source(d, srcs, slens)) != PARE_OK) diag("set_source: %s", pare_errmsg());
    double worst = 0, scale = 0;
    int good = st == PARE_OK, compared = 0;
    for (int s = 0; good && s <= steps; s++) {
        good = pare_decoder_feed(d, feed, n, got) == PARE_OK;
        if (!good) diag("feed: %s", pare_errmsg());
        for (int64_t b = 0; good && b < B; b++) {
            good = full_logits_src(m, seq + b * Tmax, len[b], src + b * S, slens[b], want);
            for (int64_t i = 0; good && i < V; i++) {
                double e = fabs((double)got[b * V + i] - want[i]);
                worst = e > worst ? e : worst;
                scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
            }
            compared++;
            if (s == steps) continue;
            seq[b * Tmax + len[b]] = (int32_t)argmax(got + b * V, V);
            feed[b] = seq + b * Tmax + len[b];
            n[b] = 1;
            len[b]++;
        }
    }
    ok(good && worst <= 1e-5 * scale, "%s%s: logits of %d (row, step)s equal the full forward with the source bound "
       "(max abs error %.3g, 1e-5 of max |logit| %.3g)", what, cache ? "" : " (no cache)", compared, worst, scale);
    pare_decoder_free(d);
    free(seq), free(src), free(len), free(n), free(feed), free(srcs), free(got), free(want);
}

static void test_encdec(void)
{
    static const int64_t lens[] = {1, 3, 2}, slens[] = {7, 2, 5};
    pare_kv pre[] = {KV_STR("kind", "encdec"), KV_NUM("vocab", 23), KV_NUM("src_vocab", 19), KV_NUM("max_T", 16),
                     KV_NUM("src_max_T", 7), KV_NUM("d", 16), KV_NUM("heads", 2), KV_NUM("layers", 2),
                     KV_NUM("enc_layers", 1)};
    pare_model *m = build(pre, 9);
    check_steps_src(m, "encdec (pre-LN)", 3, lens, slens, 5, 1);
    pare_model_free(m);
    pare_kv bart[] = {KV_STR("kind", "encdec"), KV_NUM("vocab", 23), KV_NUM("max_T", 16), KV_NUM("src_max_T", 16),
                      KV_NUM("d", 16), KV_NUM("heads", 2), KV_NUM("layers", 2), KV_NUM("enc_layers", 3),
                      KV_STR("norm", "post"), KV_BOOL("emb_norm", 1), KV_NUM("emb_scale", 4), KV_NUM("pos_offset", 2),
                      KV_BOOL("share_emb", 1), KV_BOOL("tie_head", 1), KV_STR("act", "gelu_erf")};
    m = build(bart, 15);
    check_steps_src(m, "encdec in BART's layout", 3, lens, slens, 5, 1);
    check_steps_src(m, "encdec in BART's layout", 3, lens, slens, 3, 0);
    if (m) {
        pare_decoder *d = NULL;
        const int32_t s0[] = {1, 2};
        const int32_t *sr[] = {s0};
        const int64_t sl[] = {2}, bad_len[] = {17};
        const int32_t big[] = {1, 99};
        const int32_t *sb[] = {big};
        if (pare_decoder_new(&d, m, 1, 4) == PARE_OK) {
            ok(pare_decoder_set_source(d, sr, bad_len) == PARE_EINVAL && strstr(pare_errmsg(), "src_max_T"),
               "a source longer than src_max_T is refused: %s", pare_errmsg());
            ok(pare_decoder_set_source(d, sb, sl) == PARE_EINVAL && strstr(pare_errmsg(), "id 99"),
               "a source id outside the vocabulary is refused: %s", pare_errmsg());
        } else ok(0, "decoder made: %s", pare_errmsg());
        pare_decoder_free(d);
    }
    pare_model_free(m);
}

static void test_steps(void)
{
    pare_kv base[] = {KV_STR("kind", "decoder"), KV_NUM("vocab", 37), KV_NUM("max_T", 32), KV_NUM("d", 32),
                      KV_NUM("heads", 4), KV_NUM("layers", 2)};
    pare_model *m = build(base, 6);
    check_steps(m, "default decoder", 3, lens3, 8);

    /* (b) greedy generation = argmax of the full forward, token by token */
    if (m) {
        const int32_t p0[] = {3, 4, 5, 6}, p1[] = {9}, p2[] = {1, 2, 3, 4, 5, 6, 7};
        const int32_t *pr[] = {p0, p1, p2};
        int64_t pl[] = {4, 1, 7};
        pare_gen_opts o = pare_gen_defaults();
        o.max_new_tokens = 10;
        pare_gen_result r;
        int good = pare_generate(&r, m, pr, pl, 3, &o) == PARE_OK;
        if (!good) diag("%s", pare_errmsg());
        int same = good;
        for (int64_t b = 0; good && b < 3; b++) {
            int32_t seq[32];
            float l[37];
            memcpy(seq, pr[b], sizeof(int32_t) * (size_t)pl[b]);
            same &= r.ntokens[b] == 10 && r.stop[b] == PARE_GEN_STOP_MAX_NEW;
            for (int64_t k = 0; k < r.ntokens[b] && same; k++) {
                same &= full_logits(m, seq, pl[b] + k, l);
                seq[pl[b] + k] = (int32_t)argmax(l, 37);
                if (seq[pl[b] + k] != r.tokens[b * r.max_new + k]) {
                    diag("row %lld token %lld: generated %d, full-forward argmax %d", (long long)b, (long long)k,
                         r.tokens[b * r.max_new + k], seq[pl[b] + k]);
                    same = 0;
                }
            }
        }
        ok(same, "greedy generation of 3 prompts (lengths 4, 1, 7) equals the full forward's argmax, token by token");
        ok(good && r.generated == 30 && r.nsteps == 9 && r.prompt_tokens == 12 && r.prefill_ms >= 0 &&
               r.step_median_ms >= 0 && r.tokens_per_s > 0 && r.decode_tokens_per_s > 0 && r.cache_bytes > 0 &&
               r.step_rows[0] == 3 && !r.note[0],
           "timings: %lld generated in 1 prefill + %lld steps, median %.3f ms per step, %.0f tokens/s",
           (long long)r.generated, (long long)r.nsteps, r.step_median_ms, r.tokens_per_s);

        /* (c) temperature → 0 and top_k = 1 equal greedy; a seed repeats itself */
        pare_gen_opts t0 = o, k1 = o, s1 = o;
        t0.temperature = 1e-6, k1.temperature = 1.0, k1.top_k = 1, s1.temperature = 1.5, s1.top_p = 0.95, s1.seed = 42;
        pare_gen_result a, b, c, c2;
        int ga = pare_generate(&a, m, pr, pl, 3, &t0) == PARE_OK, gb = pare_generate(&b, m, pr, pl, 3, &k1) == PARE_OK;
        int gc = pare_generate(&c, m, pr, pl, 3, &s1) == PARE_OK, gc2 = pare_generate(&c2, m, pr, pl, 3, &s1) == PARE_OK;
        size_t nb = sizeof(int32_t) * 30;
        ok(good && ga && !memcmp(a.tokens, r.tokens, nb), "temperature=1e-6 samples the greedy tokens");
        ok(good && gb && !memcmp(b.tokens, r.tokens, nb), "top_k=1 at temperature 1 samples the greedy tokens");
        ok(gc && gc2 && !memcmp(c.tokens, c2.tokens, nb), "temperature=1.5 top_p=0.95: the same seed gives the same tokens");
        ok(gc && memcmp(c.tokens, r.tokens, nb), "temperature=1.5 sampling departs from greedy somewhere");
        /* a row's samples do not depend on the other rows of the batch */
        pare_gen_result one;
        int g1 = pare_generate(&one, m, pr + 2, pl + 2, 1, &s1) == PARE_OK;
        pare_gen_result shifted; /* row 2 alone has stream 0, so compare against a batch where it is row 0 */
        const int32_t *pr2[] = {p2, p0};
        int64_t pl2[] = {7, 4};
        int g2 = pare_generate(&shifted, m, pr2, pl2, 2, &s1) == PARE_OK;
        ok(g1 && g2 && !memcmp(one.tokens, shifted.tokens, sizeof(int32_t) * 10),
           "a row's sampled tokens do not depend on the rows beside it (its own stream, its own positions)");
        pare_gen_result_free(&one), pare_gen_result_free(&shifted);

        /* cache = false: the same tokens by recomputing every prefix, and the note says so */
        pare_gen_opts nc = o;
        nc.cache = 0;
        pare_gen_result ncr;
        int gn = pare_generate(&ncr, m, pr, pl, 3, &nc) == PARE_OK;
        ok(gn && !memcmp(ncr.tokens, r.tokens, nb) && strstr(ncr.note, "cache=false"),
           "cache=false (every prefix recomputed) generates the same greedy tokens: %s", gn ? ncr.note : pare_errmsg());
        if (gn) pare_gen_result_free(&ncr);

        /* (d) eos stops the row after producing it */
        pare_gen_opts e = o;
        e.eos = r.tokens[2]; /* row 0's third greedy token */
        int64_t first = 0;
        while (r.tokens[first] != e.eos) first++;
        pare_gen_result er;
        int ge = pare_generate(&er, m, pr, pl, 3, &e) == PARE_OK;
        ok(ge && er.ntokens[0] == first + 1 && er.stop[0] == PARE_GEN_STOP_EOS && er.tokens[first] == e.eos &&
               !memcmp(er.tokens, r.tokens, sizeof(int32_t) * (size_t)(first + 1)),
           "eos=%lld stops row 0 after %lld tokens, eos kept (stop reason %s)", (long long)e.eos, (long long)(first + 1),
           ge ? pare_gen_stop_name(er.stop[0]) : "-");
        int others = ge;
        for (int64_t bb = 1; ge && bb < 3; bb++) {
            int64_t f = 0;
            while (f < 10 && r.tokens[bb * 10 + f] != e.eos) f++;
            others &= er.ntokens[bb] == (f < 10 ? f + 1 : 10) && !memcmp(er.tokens + bb * er.max_new, r.tokens + bb * 10,
                                                                         sizeof(int32_t) * (size_t)er.ntokens[bb]);
        }
        ok(others, "the other rows run on to their own eos or max_new_tokens, unchanged");
        pare_gen_result_free(&er);

        /* max_T: a prompt of max_T − 2 tokens stops after 3 new tokens (the sequence is full) */
        int32_t longp[30];
        for (int i = 0; i < 30; i++) longp[i] = (int32_t)(i % 37);
        const int32_t *lp[] = {longp};
        int64_t ll[] = {30};
        pare_gen_result mr;
        int gm = pare_generate(&mr, m, lp, ll, 1, &o) == PARE_OK;
        ok(gm && mr.ntokens[0] == 3 && mr.stop[0] == PARE_GEN_STOP_MAX_T,
           "a prompt of max_T - 2 tokens stops after 3 new ones (stop reason %s)", gm ? pare_gen_stop_name(mr.stop[0]) : "-");
        pare_gen_opts z = o;
        z.max_new_tokens = 0;
        pare_gen_result zr;
        ok(pare_generate(&zr, m, pr, pl, 3, &z) == PARE_OK && zr.generated == 0 && zr.nsteps == 0,
           "max_new_tokens=0 generates nothing");
        pare_gen_result_free(&zr);
        pare_gen_result_free(&mr);
        pare_gen_result_free(&a), pare_gen_result_free(&b), pare_gen_result_free(&c), pare_gen_result_free(&c2);
        pare_gen_result_free(&r);

        /* (e) errors */
        pare_gen_opts bad[5];
        const char *badname[5] = {"temperature", "top_p", "top_k", "eos", "max_new_tokens"};
        for (int i = 0; i < 5; i++) bad[i] = pare_gen_defaults();
        bad[0].temperature = -1, bad[1].top_p = 0, bad[2].top_k = -2, bad[3].eos = 37, bad[4].max_new_tokens = -1;
        for (int i = 0; i < 5; i++) {
            pare_gen_result br;
            pare_status bs = pare_generate(&br, m, pr, pl, 3, &bad[i]);
            ok(bs == PARE_EINVAL && strstr(pare_errmsg(), badname[i]) && br.tokens == NULL, "bad %s refused: %s",
               badname[i], pare_errmsg());
        }
        int32_t toolong[33] = {0}, oov[] = {1, 37};
        const int32_t *tl[] = {toolong}, *ov[] = {oov}, *em[] = {p0};
        int64_t tll[] = {33}, ovl[] = {2}, eml[] = {0};
        pare_gen_result br;
        ok(pare_generate(&br, m, tl, tll, 1, &o) == PARE_EINVAL && strstr(pare_errmsg(), "max_T"),
           "a prompt longer than max_T refused: %s", pare_errmsg());
        ok(pare_generate(&br, m, ov, ovl, 1, &o) == PARE_EINVAL && strstr(pare_errmsg(), "vocabulary"),
           "a token outside the vocabulary refused: %s", pare_errmsg());
        ok(pare_generate(&br, m, em, eml, 1, &o) == PARE_EINVAL && strstr(pare_errmsg(), "empty"),
           "an empty prompt refused: %s", pare_errmsg());
    }
    pare_model_free(m);

    pare_kv post[] = {KV_STR("kind", "decoder"), KV_NUM("vocab", 29), KV_NUM("max_T", 24), KV_NUM("d", 24),
                      KV_NUM("heads", 3), KV_NUM("layers", 2), KV_STR("norm", "post"), KV_STR("act", "gelu_erf"),
                      KV_NUM("ln_eps", 1e-12), KV_NUM("pos_offset", 2), KV_STR("pos", "sinusoidal")};
    m = build(post, 11);
    check_steps(m, "post-norm, gelu_erf, ln_eps 1e-12, pos_offset 2, sinusoidal", 3, lens3, 6);
    pare_model_free(m);

    pare_kv gpt2[] = {KV_STR("kind", "decoder"), KV_NUM("vocab", 41), KV_NUM("max_T", 32), KV_NUM("d", 32),
                      KV_NUM("heads", 4), KV_NUM("layers", 3), KV_STR("norm", "pre"), KV_STR("act", "gelu"),
                      KV_BOOL("tie_head", 1), KV_BOOL("head_bias", 0)};
    m = build(gpt2, 10);
    check_steps(m, "GPT-2 layout (pre-norm, tanh GELU, tied head, no head bias)", 3, lens3, 8);
    if (m) {
        pare_model *q = NULL;
        if (pare_apply(&q, m, "dynamic_int8", NULL, 0) != PARE_OK) diag("dynamic_int8: %s", pare_errmsg());
        check_steps(q, "dynamic_int8 GPT-2 layout", 3, lens3, 8);
        pare_model_free(q);
        /* block formats (llama.cpp's q4_0) and weight-only round-to-nearest run their own kernels too */
        const char *passes[] = {"qblock", "rtn"};
        for (int i = 0; i < 2; i++) {
            q = NULL;
            pare_kv group[] = {KV_NUM("group", 32)};
            if (pare_apply(&q, m, passes[i], group, i) != PARE_OK) diag("%s: %s", passes[i], pare_errmsg());
            char what[64];
            snprintf(what, sizeof what, "%s GPT-2 layout", passes[i]);
            check_steps(q, what, 3, lens3, 6);
            pare_model_free(q);
        }
        /* activation scales per tensor depend on the rows of each call: the result says so */
        pare_kv acts[] = {KV_STR("acts", "tensor")};
        q = NULL;
        if (pare_apply(&q, m, "dynamic_int8", acts, 1) == PARE_OK) {
            const int32_t p[] = {1, 2, 3};
            const int32_t *pr[] = {p};
            int64_t pl[] = {3};
            pare_gen_opts o = pare_gen_defaults();
            pare_gen_result r;
            ok(pare_generate(&r, q, pr, pl, 1, &o) == PARE_OK && strstr(r.note, "per tensor"),
               "dynamic_int8 acts=tensor generates, with the note: %s", r.note);
            pare_gen_result_free(&r);
        } else ok(0, "dynamic_int8 acts=tensor: %s", pare_errmsg());
        pare_model_free(q);
        /* a batch whose prompts (300 tokens) are fed in chunks of the decoder's rows */
        int64_t many[10] = {30, 28, 25, 30, 29, 30, 27, 30, 26, 30};
        check_steps(m, "10 prompts fed in chunks", 10, many, 2);
    }
    pare_model_free(m);

    pare_kv flash[] = {KV_STR("kind", "decoder"), KV_NUM("vocab", 23), KV_NUM("max_T", 20), KV_NUM("d", 16),
                       KV_NUM("heads", 2), KV_NUM("layers", 2), KV_STR("attention", "flash"), KV_STR("act", "relu")};
    m = build(flash, 8);
    check_steps(m, "flash attention, relu", 3, lens3, 5);
    pare_model_free(m);
}

/* (e) models the decoder refuses */
static void test_refusals(void)
{
    const int32_t p[] = {1, 2};
    const int32_t *pr[] = {p};
    int64_t pl[] = {2};
    pare_gen_opts o = pare_gen_defaults();
    pare_gen_result r;
    pare_kv enc[] = {KV_STR("kind", "encoder"), KV_NUM("vocab", 20), KV_NUM("max_T", 16), KV_NUM("d", 16),
                     KV_NUM("heads", 2), KV_NUM("layers", 1)};
    pare_model *m = build(enc, 6);
    ok(m && pare_generate(&r, m, pr, pl, 1, &o) == PARE_EINVAL && strstr(pare_errmsg(), "encoder"),
       "an encoder refused: %s", pare_errmsg());
    pare_model_free(m);
    pare_kv tag[] = {KV_STR("kind", "tagger"), KV_NUM("vocab", 20), KV_NUM("max_T", 16), KV_NUM("d", 16),
                     KV_NUM("heads", 2), KV_NUM("layers", 1)};
    m = build(tag, 6);
    ok(m && pare_generate(&r, m, pr, pl, 1, &o) == PARE_EINVAL && strstr(pare_errmsg(), "bidirectional"),
       "a tagger (bidirectional attention) refused: %s", pare_errmsg());
    pare_model_free(m);
    /* a sparse variant does not extend a cached prefix: the decoder recomputes each prefix and says so */
    pare_kv sparse[] = {KV_STR("kind", "decoder"), KV_NUM("vocab", 20), KV_NUM("max_T", 16), KV_NUM("d", 16),
                        KV_NUM("heads", 2), KV_NUM("layers", 2), KV_STR("attention", "longformer:window=2")};
    m = build(sparse, 7);
    int gs = m && pare_generate(&r, m, pr, pl, 1, &o) == PARE_OK;
    ok(gs && strstr(r.note, "no KV cache") && strstr(r.note, "longformer") && strstr(r.note, "dec.0.attn"),
       "a sparse attention variant falls back to recomputing each prefix, and the note names it: %s", gs ? r.note : pare_errmsg());
    if (gs) pare_gen_result_free(&r);
    const int64_t lens_lf[] = {5, 3, 9}; /* the reference forward needs T >= window + 1 */
    check_steps(m, "longformer (recomputed prefixes)", 3, lens_lf, 4);
    pare_model_free(m);
    /* a variant with learned parameters (lsra's convolution) recomputes too */
    pare_kv lsra[] = {KV_STR("kind", "decoder"), KV_NUM("vocab", 20), KV_NUM("max_T", 16), KV_NUM("d", 16),
                      KV_NUM("heads", 2), KV_NUM("layers", 1), KV_STR("attention", "lsra")};
    m = build(lsra, 7);
    check_steps(m, "lsra (recomputed prefixes)", 3, lens3, 4);
    pare_model_free(m);
}

/* (c) the sampler's distribution against an independent reference, and seeded samples against it */
static void reference_probs(double *p, const float *l, int64_t V, double T, int64_t k, double top_p)
{
    double mx = -INFINITY, s = 0;
    for (int64_t i = 0; i < V; i++) mx = l[i] > mx ? l[i] : mx;
    for (int64_t i = 0; i < V; i++) s += p[i] = exp((l[i] - mx) / T);
    for (int64_t i = 0; i < V; i++) p[i] /= s;
    /* rank of each token: how many are more likely (ties by lower id) */
    int64_t *rank = malloc(sizeof *rank * (size_t)V);
    for (int64_t i = 0; i < V; i++) {
        rank[i] = 0;
        for (int64_t j = 0; j < V; j++) rank[i] += p[j] > p[i] || (p[j] == p[i] && j < i);
    }
    if (k > 0)
        for (int64_t i = 0; i < V; i++)
            if (rank[i] >= k) p[i] = 0;
    s = 0;
    for (int64_t i = 0; i < V; i++) s += p[i];
    if (top_p < 1) { /* keep token i iff the mass strictly above it is < top_p */
        double *q = malloc(sizeof *q * (size_t)V);
        for (int64_t i = 0; i < V; i++) {
            double above = 0;
            for (int64_t j = 0; j < V; j++)
                if (rank[j] < rank[i]) above += p[j] / s;
            q[i] = above < top_p ? p[i] : 0;
        }
        memcpy(p, q, sizeof *q * (size_t)V);
        free(q);
    }
    s = 0;
    for (int64_t i = 0; i < V; i++) s += p[i];
    for (int64_t i = 0; i < V; i++) p[i] /= s;
    free(rank);
}

static void test_sampling(void)
{
    enum { V = 30, N = 60000 };
    float l[V];
    pare_rng r;
    pare_rng_seed(&r, 9);
    for (int i = 0; i < V; i++) l[i] = (float)(1.5 * pare_rng_normal(&r));
    struct { double T; int64_t k; double p; } cases[] = {{1, 0, 1}, {0.7, 5, 1}, {1.3, 0, 0.8}, {1, 10, 0.9}, {2.5, 3, 0.5}};
    pare_gen_item work[V];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pare_gen_opts o = pare_gen_defaults();
        o.temperature = cases[c].T, o.top_k = cases[c].k, o.top_p = cases[c].p;
        double want[V], got[V], freq[V] = {0};
        reference_probs(want, l, V, o.temperature, o.top_k, o.top_p);
        int64_t kept = pare_gen_probs(got, l, V, &o, work);
        double worst = 0;
        int64_t nz = 0;
        for (int i = 0; i < V; i++) worst = fmax(worst, fabs(got[i] - want[i])), nz += want[i] > 0;
        ok(worst < 1e-12 && kept == nz, "T=%g top_k=%lld top_p=%g: pare_gen_probs keeps %lld tokens, matches the "
           "reference (max diff %.2g)", o.temperature, (long long)o.top_k, o.top_p, (long long)kept, worst);
        pare_rng s;
        pare_rng_seed(&s, 100 + c);
        for (int i = 0; i < N; i++) freq[pare_gen_sample(l, V, &o, &s, work)] += 1.0 / N;
        int fits = 1, outside = 0;
        double excess = 0;
        for (int i = 0; i < V; i++) {
            if (want[i] == 0 && freq[i] > 0) outside = 1;
            double bound = 5 * sqrt(want[i] * (1 - want[i]) / N) + 1.0 / N;
            if (fabs(freq[i] - want[i]) > bound) fits = 0, excess = fmax(excess, fabs(freq[i] - want[i]) - bound);
        }
        ok(fits && !outside, "T=%g top_k=%lld top_p=%g: %d seeded samples match the distribution within 5 sigma per "
           "token%s", o.temperature, (long long)o.top_k, o.top_p, N, outside ? " (a token outside the kept set drawn)" : "");
        if (!fits) diag("worst excess over the bound %.4g", excess);
    }
    /* a larger vocabulary with repeated values: the selection of top_k and the nucleus's candidates */
    enum { W = 1500 };
    float *lw = malloc(sizeof(float) * W);
    double *pw = malloc(sizeof(double) * W), *rw = malloc(sizeof(double) * W);
    pare_gen_item *ww = malloc(sizeof *ww * W);
    for (int i = 0; i < W; i++) lw[i] = (float)(0.25 * (int)(12 * pare_rng_normal(&r))); /* many ties */
    struct { double T; int64_t k; double p; } big[] = {{1, 50, 1}, {0.8, 0, 0.9}, {1, 200, 0.95}, {3, 0, 0.5}, {0.2, 7, 1}};
    for (size_t c = 0; c < sizeof big / sizeof big[0]; c++) {
        pare_gen_opts o = pare_gen_defaults();
        o.temperature = big[c].T, o.top_k = big[c].k, o.top_p = big[c].p;
        reference_probs(rw, lw, W, o.temperature, o.top_k, o.top_p);
        int64_t kept = pare_gen_probs(pw, lw, W, &o, ww), nz = 0;
        double worst = 0;
        for (int i = 0; i < W; i++) worst = fmax(worst, fabs(pw[i] - rw[i])), nz += rw[i] > 0;
        ok(worst < 1e-12 && kept == nz, "V=%d with ties, T=%g top_k=%lld top_p=%g: keeps %lld tokens as the reference "
           "(max diff %.2g)", W, o.temperature, (long long)o.top_k, o.top_p, (long long)kept, worst);
    }
    free(lw), free(pw), free(rw), free(ww);
    /* greedy: the lowest id among equal maxima */
    float tie[4] = {0.5f, 2.0f, 2.0f, 1.0f};
    pare_gen_opts g = pare_gen_defaults();
    ok(pare_gen_sample(tie, 4, &g, &r, work) == 1, "greedy picks the lowest id among equal maxima");
}

int main(void)
{
    tap_plan_lazy();
    test_sampling();
    test_refusals();
    test_steps();
    test_encdec();
    return tap_done();
}
