/* translate.h — BLEU and greedy decoding for encoder-decoder models (docs/encoder-decoder.md).
 *
 *     pare_bleu b;
 *     PARE_TRY(pare_translate_bleu(model, &test, 0, test.n, 0, 64, &b));   // b.bleu in [0, 100]
 *
 * BLEU (Papineni et al. 2002) as sacrebleu computes its default corpus score, on token ids instead of
 * tokenized text (the task's tokens are already words): n-gram orders 1..4, matches clipped by the
 * reference counts and summed over the corpus, precisions combined by a geometric mean, sacrebleu's
 * default "exp" smoothing for an order without a match (its precision becomes 100 / (2^k · total) for the
 * k-th such order), an order without any hypothesis n-gram contributing log 0 (a score of 0), a
 * brevity penalty exp(1 − r/c) when the hypotheses' total length c is below the references' r, and 0
 * when no unigram matches. One reference per sentence.
 *
 * Greedy decoding runs the whole model on the growing prefix (BOS, y1, ..., yk) for each new token: no
 * KV cache (src/gen/ has one for decoder-only models), so it costs max_len forwards per batch.
 *
 * Entry points: pare_bleu_corpus, pare_translate_greedy, pare_translate_bleu.
 */
#ifndef PARE_EVAL_TRANSLATE_H
#define PARE_EVAL_TRANSLATE_H

#include <stdint.h>

#include "core/status.h"
#include "data/task.h"
#include "graph/graph.h"

#define PARE_BLEU_ORDER 4

typedef struct pare_bleu {
    double bleu;                         /* 0..100 */
    double precisions[PARE_BLEU_ORDER];  /* 0..100, after smoothing */
    double bp;                           /* brevity penalty */
    int64_t correct[PARE_BLEU_ORDER], total[PARE_BLEU_ORDER];
    int64_t hyp_len, ref_len;            /* tokens over the corpus */
} pare_bleu;

/* Corpus BLEU of n hypotheses against one reference each: hypothesis i is hyp[i·hyp_stride ..] of
 * hyp_len[i] ids, reference i ref[i·ref_stride ..] of ref_len[i]. Lengths must be >= 0 (PARE_EINVAL
 * naming the sentence otherwise). */
pare_status pare_bleu_corpus(pare_bleu *out, const int32_t *hyp, const int64_t *hyp_len, int64_t hyp_stride,
                             const int32_t *ref, const int64_t *ref_len, int64_t ref_stride, int64_t n);

/* Greedy translations of examples [first, first + n) of d (a dataset with sources) by an encdec model:
 * hyp (n, max_len) row i the tokens of example first + i up to EOS (excluded), hyp_len (n). max_len in
 * [1, min(d->T, max_T)] (0: that maximum). batch >= 1 examples per forward. */
pare_status pare_translate_greedy(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t max_len,
                                  int64_t batch, int32_t *hyp, int64_t *hyp_len);

/* The reference of example i of a sequence-to-sequence dataset: its labels before EOS. Returns the length. */
int64_t pare_translate_reference(const pare_dataset *d, int64_t i, const int32_t **ref);

/* Greedy translations of examples [first, first + n) and their corpus BLEU against the references. */
pare_status pare_translate_bleu(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t max_len,
                                int64_t batch, pare_bleu *out);

#endif
