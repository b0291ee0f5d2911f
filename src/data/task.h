/* task.h — the tasks (datasets) models train and evaluate on.
 *
 * A task is a named generator or reader with a declared option schema. pare_task_make() builds a
 * train and a test split as two pare_dataset values: token ids padded to a common length T, a valid
 * length per example, and labels (one per sequence for CLASSIFY, one per token for LM). Everything is
 * deterministic from the "seed" option: same seed, same bytes, on every machine.
 *
 *     const pare_schema *s = pare_task_schema("recall");        // NULL + message listing valid names
 *     pare_options o;  PARE_TRY(pare_opts_resolve(&o, s, kv, nkv));
 *     pare_dataset train = {0}, test = {0};
 *     PARE_TRY(pare_task_make(&train, &test, "recall", &o));
 *     int32_t tok[32 * train.T], len[32], lab[32];             // a batch of 32 rows
 *     pare_dataset_gather(&train, idx, 32, tok, len, lab);
 *     pare_dataset_free(&train), pare_dataset_free(&test);
 *
 * Conventions shared by every task (see docs/tasks.md for each one):
 *   - id 0 is PAD; positions at and after lengths[i] hold PAD (and label -1 for LM tasks);
 *   - classification tasks put a CLS token at position 0 so a CLS-pooled encoder works;
 *   - LM targets are the next token at positions where it is predictable, -1 elsewhere; nclass = vocab;
 *   - train and test share T (the longest example of either split, or the option pad_to).
 *
 * Tasks: listops (LRA ListOps; also loads real LRA .tsv files, see data/listops.h), recall
 * (associative recall), copy_lm (causal LM: repeat the first half), parity, majority, and the Long
 * Range Arena-style set (data/lra_files.h): text (byte-level classification of the fortune databases
 * of Debian's `fortunes` package, read at run time), text_lm (byte-level causal LM on them), retrieval
 * (same-category fortune pairs), pathfinder (generated dashed-curve images), selective_copy (Mamba's
 * probe, LM kind), and readers of LRA's own files: lra_text (IMDB), lra_retrieval (AAN),
 * lra_image (CIFAR-10, grayscale), lra_pathfinder (PNG + metadata).
 * Sequence to sequence: translate (a rule-related synthetic language pair, a proxy for WMT; docs/tasks.md).
 * Text tasks (data/glue.h): glue (GLUE's .tsv files), fortune_topic, fortune_pair and fortune_sts, word-level
 * through an encoder interface (data/text_encoder.h) that tokenizers plug into.
 */
#ifndef PARE_TASK_H
#define PARE_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/status.h"

typedef enum pare_task_kind { PARE_TASK_CLASSIFY = 0, PARE_TASK_LM, PARE_TASK_KIND_COUNT } pare_task_kind;

typedef struct pare_dataset {
    char name[64];         /* "<task>/train" or "<task>/test" */
    pare_task_kind kind;   /* CLASSIFY: one label per sequence; LM: one target per token (-1 = ignore) */
    int64_t n;             /* examples */
    int64_t T;             /* padded length (max over examples, or the requested pad_to) */
    int32_t vocab;         /* token ids are in [0, vocab); id 0 is PAD */
    int32_t nclass;        /* CLASSIFY: labels in [0, nclass); LM: = vocab */
    int32_t *tokens;       /* (n, T), PAD-filled after each length */
    int32_t *lengths;      /* (n) valid length of each example, >= 1 */
    int32_t *labels;       /* CLASSIFY: (n); LM: (n, T) targets, -1 where ignored */
    char **vocab_names;    /* (vocab) printable token names; one allocation (table, then the strings) */
    /* Optional, NULL unless a task sets them (the text tasks of data/glue.h; data/text_encoder.h): */
    int32_t *types;        /* (n, T) segment (token type) ids: 0 first segment, 1 second; 0 after each length */
    float *targets;        /* (n) regression targets (STS-B scores); then nclass = 1 and every label is 0 */
    /* Sequence-to-sequence tasks (translate; docs/encoder-decoder.md): a source per example, for kind=encdec
     * models. tokens are then the target shifted right (BOS first: the teacher-forced decoder input) and
     * labels the target followed by EOS; both vocabularies keep PAD 0, BOS 1, EOS 2. */
    int64_t S;             /* padded source length; 0 without a source */
    int32_t src_vocab;     /* source ids are in [0, src_vocab) */
    int32_t *src_tokens;   /* (n, S), PAD-filled after each source length */
    int32_t *src_lengths;  /* (n) valid source length of each example, >= 1 */
} pare_dataset;

#define PARE_TOKEN_PAD 0
#define PARE_TOKEN_BOS 1 /* sequence-to-sequence tasks: the decoder's first input */
#define PARE_TOKEN_EOS 2 /* sequence-to-sequence tasks: the target's last label; greedy decoding stops there */

/* Free everything and zero *d; safe twice and on a zeroed dataset. */
void pare_dataset_free(pare_dataset *d);

/* A batch view: copies rows idx[0..B) into caller buffers: tokens (B, T), lengths (B), labels (B) for
 * CLASSIFY or (B, T) for LM. Each idx must be in [0, n) (an engine invariant: asserted). */
void pare_dataset_gather(const pare_dataset *d, const int64_t *idx, int64_t B, int32_t *tokens, int32_t *lengths,
                         int32_t *labels);

/* The optional arrays of rows idx[0..B): types (B, T) (zeros when d->types is NULL), targets (B) (NAN
 * when d->targets is NULL); either output may be NULL. Each idx must be in [0, n). */
void pare_dataset_gather_extra(const pare_dataset *d, const int64_t *idx, int64_t B, int32_t *types, float *targets);

/* Sources of rows idx[0..B) (a dataset with src_tokens): src_tokens (B, S), src_lengths (B). */
void pare_dataset_gather_src(const pare_dataset *d, const int64_t *idx, int64_t B, int32_t *src_tokens,
                             int32_t *src_lengths);

/* Builders, for task implementations and readers. alloc zero-fills tokens (PAD) and lengths, sets
 * labels to 0 (CLASSIFY) or -1 (LM); on failure *d is left zeroed. */
pare_status pare_dataset_alloc(pare_dataset *d, const char *name, pare_task_kind kind, int64_t n, int64_t T,
                               int32_t vocab, int32_t nclass);
/* Copy names[0..vocab) into d->vocab_names (one allocation). */
pare_status pare_dataset_set_vocab(pare_dataset *d, const char *const *names, int32_t vocab);
/* Allocate d->types (zeros) and/or d->targets (NAN) for an allocated dataset. */
pare_status pare_dataset_alloc_extra(pare_dataset *d, int types, int targets);
/* Re-pad to T >= the current T (PAD and -1 targets fill the new columns; types and targets follow). */
pare_status pare_dataset_repad(pare_dataset *d, int64_t T);
/* Check the invariants above (token and label ranges, lengths in [1, T], PAD after each length; types
 * in {0, 1} and 0 after each length; targets finite); PARE_EFORMAT with the first offending example
 * named otherwise. */
pare_status pare_dataset_check(const pare_dataset *d);
/* Example i as its token names joined by spaces (truncated to fit; always NUL-terminated). */
const char *pare_dataset_decode(const pare_dataset *d, int64_t i, char *buf, size_t cap);

/* ---- the task registry ---- */

/* The option schema of a task; NULL (message lists the valid task names) when there is none. */
const pare_schema *pare_task_schema(const char *name);
/* Build both splits; opts resolved against pare_task_schema(name), or NULL for the defaults.
 * Deterministic by opts "seed". On failure both datasets are left zeroed. */
pare_status pare_task_make(pare_dataset *train, pare_dataset *test, const char *name, const pare_options *opts);
/* Convenience: resolve kv[0..n) against the task's schema, then pare_task_make. */
pare_status pare_task_make_kv(pare_dataset *train, pare_dataset *test, const char *name, const pare_kv *kv, int n);
int pare_task_count(void);
const char *pare_task_name(int i); /* NULL when i is out of range */
/* "listops, recall, ..." into buf. */
const char *pare_task_names(char *buf, size_t n);

#endif
