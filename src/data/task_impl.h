/* task_impl.h — what a task file exports to the registry (task.c), and small shared helpers.
 *
 * Each task is one file exporting one pare_task_desc; task.c lists them in one table. A new task is
 * one file, one registry line, one test. Not part of the public API.
 */
#ifndef PARE_TASK_IMPL_H
#define PARE_TASK_IMPL_H

#include "core/rng.h"
#include "data/task.h"

/* Build both splits from resolved options (o->schema is the task's own). On failure the caller
 * frees both datasets. */
typedef pare_status (*pare_task_make_fn)(pare_dataset *train, pare_dataset *test, const pare_options *o);

typedef struct pare_task_desc {
    const pare_schema *schema; /* schema->name is the task name, schema->doc its one-line doc */
    pare_task_make_fn make;
} pare_task_desc;

extern const pare_task_desc pare_task_listops, pare_task_recall, pare_task_copy_lm, pare_task_parity,
    pare_task_majority;
/* The Long Range Arena-style tasks (issue 4): text.c, text_lm.c, retrieval.c, pathfinder.c,
 * selective_copy.c, and the readers of LRA's own files: lra_text.c, lra_retrieval.c, lra_image.c,
 * lra_pathfinder.c. */
extern const pare_task_desc pare_task_text, pare_task_text_lm, pare_task_retrieval, pare_task_pathfinder,
    pare_task_selective_copy, pare_task_lra_text, pare_task_lra_retrieval, pare_task_lra_image,
    pare_task_lra_pathfinder;

/* The text tasks (issue 12, data/glue.h): glue.c + glue_task.c, fortune_text.c. Their builders take an
 * encoder (NULL: the built-in word encoder, data/text_encoder.h); pare_text_task_make dispatches to them. */
extern const pare_task_desc pare_task_glue, pare_task_fortune_topic, pare_task_fortune_pair, pare_task_fortune_sts;
/* Sequence to sequence (issue 12): translate.c, a synthetic language pair for encoder-decoder models. */
extern const pare_task_desc pare_task_translate;
struct pare_text_encoder;
struct pare_text_example;
pare_status pare_fortune_topic_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                     const struct pare_text_encoder *enc);
pare_status pare_fortune_pair_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                    const struct pare_text_encoder *enc);
pare_status pare_fortune_sts_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                   const struct pare_text_encoder *enc);
/* The pretraining tasks on the Debian-text corpus (lm_corpus.c, data/corpus.h), text tasks too. */
extern const pare_task_desc pare_task_mlm_corpus, pare_task_clm_corpus;
pare_status pare_mlm_corpus_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                  const struct pare_text_encoder *enc);
pare_status pare_clm_corpus_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                                  const struct pare_text_encoder *enc);
/* Encode the train examples tr[0..ntr) and test examples te[0..nte) into "<task>/train" and
 * "<task>/test" with enc, or with a word encoder built on tr (options vocab, min_count) when enc is
 * NULL; options max_len and pad_to; both splits padded to one T. */
pare_status pare_text_task_splits(pare_dataset *train, pare_dataset *test, const char *task,
                                  const struct pare_text_example *tr, int64_t ntr, const struct pare_text_example *te,
                                  int64_t nte, int32_t nclass, const struct pare_text_encoder *enc,
                                  const pare_options *o);

/* The streams of one task: test and train are independent splits of the "seed" option's generator,
 * so the test set does not change when n_train does. */
static inline void pare_task_streams(const pare_options *o, pare_rng *train, pare_rng *test)
{
    pare_rng base;
    pare_rng_seed(&base, (uint64_t)pare_opt_num(o, "seed"));
    *train = pare_rng_split(&base, 1);
    *test = pare_rng_split(&base, 2);
}

/* The padded length: `longest` when pad_to is 0, else pad_to (which must be >= longest). */
pare_status pare_task_pad_len(const pare_options *o, int64_t longest, int64_t *T);

/* The base generator of the "seed" option with its own tag (beyond the split streams' 1 and 2), for
 * draws shared by both splits, e.g. which documents go to the test split. */
static inline pare_rng pare_task_stream(const pare_options *o, uint64_t tag)
{
    pare_rng base;
    pare_rng_seed(&base, (uint64_t)pare_opt_num(o, "seed"));
    return pare_rng_split(&base, tag);
}

/* Copy name into d->name as "<task>/<split>". */
void pare_task_name_split(pare_dataset *d, const char *task, const char *split);

#endif
