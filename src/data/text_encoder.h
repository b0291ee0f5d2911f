/* text_encoder.h — raw text examples, the interface a tokenizer plugs into, and the datasets built
 * through it; plus the built-in fallback word-level encoder the text tasks use until a real tokenizer
 * (WordPiece / BPE, src/text/) is plugged in.
 *
 * A text example is one or two segments (a, and b for pair tasks) with a class id or a score. An
 * encoder turns it into token ids; pare_text_dataset() packs a list of examples into a pare_dataset
 * (padded rows, lengths, labels, token types for pairs, float targets for regression):
 *
 *     pare_word_encoder *w;
 *     PARE_TRY(pare_word_encoder_build(&w, train_ex, n_train, 8000, 2));     // vocabulary of train
 *     pare_text_encoder enc = pare_word_encoder_iface(w);
 *     pare_dataset d;
 *     PARE_TRY(pare_text_dataset(&d, "sst2/train", train_ex, n_train, 2, &enc, 128));
 *     pare_word_encoder_free(w);
 *
 * The encoder contract (any tokenizer adapter must keep it):
 *   - encode(self, a, b, max_len, ids, types, &len) writes len in [1, max_len] ids, each in [1, vocab),
 *     CLS (or the tokenizer's own start token) first, and the segment of each id into types (0 for
 *     the first segment and its special tokens, 1 for the second); b is NULL for single-segment tasks.
 *     Text longer than max_len is truncated by the encoder (its own policy), never an error;
 *   - pad_id must be 0 (PARE_TOKEN_PAD: every pare dataset pads with 0; an adapter remaps if needed);
 *   - token_name(self, id) may be NULL; it names ids for pare_dataset_decode;
 *   - encode returns PARE_OK or a status with its message kept (pare_fail);
 *   - encode may keep scratch state in self (the word encoder does): one encoder per thread.
 *
 * The fallback word encoder: ASCII letters lower-cased; a word is a run of letters, digits, ''' and
 * bytes >= 0x80 (so UTF-8 characters stay whole), each other printable character is a token of its
 * own, white space separates. Vocabulary: 0 [PAD], 1 [CLS], 2 [SEP], 3 [UNK], then the most frequent
 * words of the examples it was built from (ties in byte order, so it is deterministic), at most
 * max_vocab ids in all, words seen fewer than min_count times left out ([UNK]). Rows are BERT's:
 * [CLS] a [SEP] (single) and [CLS] a [SEP] b [SEP] (pairs, types 0..0 1..1); when too long, the
 * longer segment loses its last word first until the row fits (BERT's "longest_first").
 *
 * Deliberately not here: subword tokenizers (src/text/), lower-casing beyond ASCII, normalisation.
 */
#ifndef PARE_TEXT_ENCODER_H
#define PARE_TEXT_ENCODER_H

#include <stdint.h>

#include "core/status.h"
#include "data/task.h"

/* One example. label: class id in [0, nclass), -1 when the file has no labels (GLUE's test sets);
 * score: regression target (STS-B's 0..5 similarity), NAN when not a regression example. */
typedef struct pare_text_example {
    const char *a; /* first segment (NUL-terminated) */
    const char *b; /* second segment, NULL for single-segment tasks */
    int32_t label;
    float score;
} pare_text_example;

typedef struct pare_text_encoder {
    void *self;
    /* ids (max_len), types (max_len) out; *len in [1, max_len]. */
    pare_status (*encode)(void *self, const char *a, const char *b, int64_t max_len, int32_t *ids, int32_t *types,
                          int64_t *len);
    /* Printable name of id (NULL: the builder names tokens "#<id>"). */
    const char *(*token_name)(void *self, int32_t id);
    int32_t vocab;  /* ids are in [0, vocab) */
    int32_t pad_id; /* must be 0 */
    /* Special ids the pretraining tasks (lm_corpus.c) need, 0 when the encoder has none: the start and
     * end tokens encode puts around a segment (BERT's [CLS] and [SEP]), and the mask token of MLM. */
    int32_t cls_id, sep_id, mask_id;
} pare_text_encoder;

/* Pack ex[0..n) into a CLASSIFY dataset named `name`: T = the longest encoded row, lengths, labels
 * (nclass classes; a label -1 is kept as -1: an unlabeled split for prediction only, which
 * pare_dataset_check rejects), types (n, T) when any example has a b segment (NULL otherwise).
 * nclass == 1 means regression: labels are 0 and d->targets (n) holds the scores (a NAN score is an
 * error naming the example). Errors: PARE_EINVAL for a bad encoder (pad_id != 0, vocab < 2, NULL
 * encode) or an id/length outside the contract (naming the example); on failure *d is zeroed. */
pare_status pare_text_dataset(pare_dataset *d, const char *name, const pare_text_example *ex, int64_t n,
                              int32_t nclass, const pare_text_encoder *enc, int64_t max_len);

/* d->vocab_names from enc->token_name (ids without a name: "#<id>"); d->vocab must be enc->vocab. */
pare_status pare_text_dataset_names(pare_dataset *d, const pare_text_encoder *enc);

/* ---- the fallback word-level encoder ---- */

enum pare_word_token { PARE_WORD_PAD = 0, PARE_WORD_CLS = 1, PARE_WORD_SEP = 2, PARE_WORD_UNK = 3, PARE_WORD_FIRST = 4 };

typedef struct pare_word_encoder pare_word_encoder;

/* A vocabulary of the most frequent words of ex[0..n) (both segments): at most max_vocab ids (>= 5)
 * in all, words seen at least min_count (>= 1) times. */
pare_status pare_word_encoder_build(pare_word_encoder **out, const pare_text_example *ex, int64_t n, int32_t max_vocab,
                                    int32_t min_count);
void pare_word_encoder_free(pare_word_encoder *w); /* NULL is fine */
/* The interface view (w must outlive it). */
pare_text_encoder pare_word_encoder_iface(pare_word_encoder *w);
/* The words of s (lower-cased, as the encoder splits them) into out[0..cap), NUL-separated in buf;
 * returns how many there are (may exceed cap; only cap are stored). For tests and baselines. */
int64_t pare_word_split(const char *s, char *buf, size_t bufcap, const char **out, int64_t cap);

#endif
