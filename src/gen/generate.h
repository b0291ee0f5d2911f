/* generate.h — decoders generate: incremental decoding with a KV cache, greedy and sampled next tokens
 * (temperature, top-k, top-p), and the timings that give latency per token and tokens/s.
 *
 *     pare_gen_opts o = pare_gen_defaults();            // greedy, 16 new tokens, no eos
 *     o.temperature = 0.8, o.top_k = 40, o.seed = 7;
 *     const int32_t p0[] = {5, 9, 2}, p1[] = {7};
 *     const int32_t *prompts[] = {p0, p1};
 *     int64_t lens[] = {3, 1};
 *     pare_gen_result r;
 *     PARE_TRY(pare_generate(&r, model, prompts, lens, 2, &o));
 *     // r.tokens[b * r.max_new .. + r.ntokens[b]): row b's new tokens; r.step_median_ms, r.tokens_per_s
 *     pare_gen_result_free(&r);
 *
 * The decoder (pare_decoder) walks the model's graph node by node for the new positions only: rows =
 * the new tokens of every sequence, each with its own position. Every op but attention is row-local
 * (embedding, Linear through the weight's storage format, LayerNorm, activations, residual adds, casts),
 * so those nodes run the graph's own forwards (ops.c) on the new rows; positions are added per row;
 * attention writes the new keys and values into a cache (per layer K and V of (B, H, T_cap, D)) and
 * attends each new query to its sequence's cached keys up to its own position. The logits of a
 * prefix thus equal a full forward over it (tests/test_generate.c checks it to 1e-5).
 *
 * Batches of prompts of different lengths use per-row positions, not padding: row b's tokens sit at
 * positions 0, 1, ... of its own cache, so no pad token ever enters a sequence and each row generates
 * exactly what it would alone (up to GEMM summation order).
 *
 * Attention variants other than full and flash (sparse patterns, learned length projections) do not
 * extend a cached prefix: for them the decoder recomputes each whole prefix with the model's own
 * forward and says so in its note (also on request: cache = 0, the baseline a cache is measured against).
 * Encoder-decoders: pare_decoder_set_source encodes the sources once and keeps each cross-attention's
 * keys and values; the decoder's new rows attend to them (pare_generate_src).
 * What it refuses, naming the node: models that are not causal language models (an encoder, a tagger:
 * bidirectional attention), and with the cache ops it does not know to be row-local (POOL, anything
 * newer than this file). Loss nodes are skipped. docs/generation.md has the details and the limits.
 *
 * Entry points: pare_decoder_new / pare_decoder_feed / pare_decoder_reset / pare_decoder_free (the
 * engine), pare_gen_check_opts / pare_gen_probs / pare_gen_sample (one step's choice), pare_generate /
 * pare_gen_result_free (the loop with timings).
 */
#ifndef PARE_GENERATE_H
#define PARE_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/rng.h"
#include "core/status.h"
#include "graph/graph.h"

/* ---- the incremental decoder ---- */
typedef struct pare_decoder pare_decoder;

/* A decoder for up to B sequences of at most T_cap tokens each (1 <= T_cap <= m->max_T): the KV cache
 * holds 2·L·B·H·T_cap·D floats. PARE_EINVAL naming the model's kind or the node it cannot run.
 * m must outlive the decoder and not change while it runs. */
pare_status pare_decoder_new(pare_decoder **out, pare_model *m, int64_t B, int64_t T_cap);
/* cache = 0: no KV cache: every feed runs the model's own forward (graph/exec.h) over each whole sequence
 * so far, at (B, T_cap) (or (B, max_T) for variants made at max_T only), for any causal language model:
 * the baseline a cache is measured against, and the fallback pare_decoder_new takes by itself when an
 * attention variant is not one the cache extends (the note says so). */
pare_status pare_decoder_new_opts(pare_decoder **out, pare_model *m, int64_t B, int64_t T_cap, int cache);
void pare_decoder_free(pare_decoder *d); /* NULL ok */
/* Forget every sequence (lengths back to 0); the cache's memory is kept. */
void pare_decoder_reset(pare_decoder *d);
/* Append n[b] tokens (tokens[b][0..n[b])) to sequence b for every b < B (n[b] = 0: untouched, tokens[b]
 * may be NULL) and run them. logits (B, V) (may be NULL): row b receives the logits after sequence b's
 * last appended token, for every b with n[b] > 0 (other rows untouched). A prompt of any length goes in
 * one call (the decoder cuts it into chunks). PARE_EINVAL naming the row: a token outside [0, V), a
 * sequence growing past T_cap. */
pare_status pare_decoder_feed(pare_decoder *d, const int32_t *const *tokens, const int64_t *n, float *logits);
/* Tokens held by sequence b (0 after reset). */
int64_t pare_decoder_len(const pare_decoder *d, int64_t b);
/* Bytes of the KV cache. */
size_t pare_decoder_cache_bytes(const pare_decoder *d);
/* An encoder-decoder's sources, one per sequence (src[b][0..src_lens[b]), 1 <= src_lens[b] <= the model's
 * src_max_T, ids in [0, src_vocab)): the encoder runs once here and every cross-attention's keys and values
 * are kept for the feeds that follow (which refuse to run before). PARE_EINVAL naming the source and the
 * position, or for a model without a source. */
pare_status pare_decoder_set_source(pare_decoder *d, const int32_t *const *src, const int64_t *src_lens);
/* Text about how the model runs when it is not exactly the full forward's computation ("" when it is):
 * attention int8 products run in f32, activation scales that depend on the rows of a call. */
const char *pare_decoder_note(const pare_decoder *d);

/* ---- choosing the next token ---- */
typedef struct pare_gen_opts {
    int64_t max_new_tokens; /* new tokens per sequence, >= 0 (default 16) */
    double temperature;     /* 0: greedy (argmax, the lowest id on ties; top_k, top_p unused); > 0: sample
                               from softmax(logits / temperature) (default 0) */
    int64_t top_k;          /* sample among the k most likely tokens; 0: all (default 0) */
    double top_p;           /* nucleus: the fewest most likely tokens whose probability sums to >= top_p,
                               after top_k; in (0, 1], 1: all (default 1) */
    uint64_t seed;          /* sampling stream: row b draws from pare_rng_split(seed, b) (default 1) */
    int64_t eos;            /* a row stops after producing this id (kept in its output); -1: none (default) */
    int cache;              /* 1: KV cache (default); 0: recompute every prefix (pare_decoder_new_opts) */
} pare_gen_opts;

pare_gen_opts pare_gen_defaults(void);
/* The schema of m:generate's options (the same keys, defaults and ranges), and pare_gen_opts from
 * options resolved against it. */
extern const pare_schema pare_gen_schema;
pare_gen_opts pare_gen_opts_from(const pare_options *o);
/* PARE_EINVAL naming the option, its value and the valid range; V the vocabulary (for eos). */
pare_status pare_gen_check_opts(const pare_gen_opts *o, int64_t V);

/* The distribution the sampler draws from for one row of logits (V): softmax(logits / temperature)
 * restricted to top_k then top_p and renormalised (probs (V), zeros outside); greedy: 1 at the argmax.
 * work: V pare_gen_item. Returns the number of tokens kept. */
typedef struct pare_gen_item { double p; int32_t id; } pare_gen_item;
int64_t pare_gen_probs(double *probs, const float *logits, int64_t V, const pare_gen_opts *o, pare_gen_item *work);
/* One token from that distribution, drawing one uniform number from rng (none when greedy). */
int32_t pare_gen_sample(const float *logits, int64_t V, const pare_gen_opts *o, pare_rng *rng, pare_gen_item *work);

/* ---- the generation loop, timed ---- */
typedef enum pare_gen_stop {
    PARE_GEN_STOP_MAX_NEW = 0, /* produced max_new_tokens */
    PARE_GEN_STOP_EOS,         /* produced eos */
    PARE_GEN_STOP_MAX_T,       /* the sequence reached the model's max_T */
} pare_gen_stop;
const char *pare_gen_stop_name(pare_gen_stop s); /* "max_new_tokens", "eos", "max_T" */

typedef struct pare_gen_result {
    int64_t B, max_new;     /* rows; capacity per row of tokens */
    int32_t *tokens;        /* (B, max_new): row b's new tokens in [b·max_new, b·max_new + ntokens[b]) */
    int64_t *ntokens;       /* (B) */
    pare_gen_stop *stop;    /* (B) why each row stopped */
    int64_t prompt_tokens;  /* Σ prompt lengths */
    int64_t generated;      /* Σ ntokens */
    double prefill_ms;      /* the prompts' forward and the first tokens' choice: time to first token */
    int64_t nsteps;         /* decoding steps after the prefill (each one token for every running row) */
    double *step_ms;        /* (nsteps) wall time of each step: forward of the new rows + choice */
    int64_t *step_rows;     /* (nsteps) rows (sequences) each step advanced */
    double step_median_ms, step_mean_ms; /* over step_ms (NaN without steps) */
    double decode_tokens_per_s; /* tokens produced by the steps / Σ step_ms (NaN without steps) */
    double total_ms;        /* prefill + steps */
    double tokens_per_s;    /* generated / total_ms */
    size_t cache_bytes;     /* the KV cache */
    char note[256];         /* pare_decoder_note, "" when decoding is the full forward's computation */
} pare_gen_result;

/* Generate for B prompts (prompts[b][0..lens[b]), 1 <= lens[b] <= m->max_T). Each row runs until it
 * produces eos, max_new_tokens tokens, or its sequence fills max_T. PARE_EINVAL naming the row or the
 * option; r is zeroed on failure. */
pare_status pare_generate(pare_gen_result *r, pare_model *m, const int32_t *const *prompts, const int64_t *lens,
                          int64_t B, const pare_gen_opts *o);
/* pare_generate for an encoder-decoder: row b generates given source src[b][0..src_lens[b]) (the prompts
 * usually hold the decoder's start token). pare_generate is this with no sources, which an encoder-decoder
 * refuses. */
pare_status pare_generate_src(pare_gen_result *r, pare_model *m, const int32_t *const *prompts, const int64_t *lens,
                              int64_t B, const int32_t *const *src, const int64_t *src_lens, const pare_gen_opts *o);
void pare_gen_result_free(pare_gen_result *r); /* safe twice */

#endif
