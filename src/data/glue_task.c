/* glue_task.c — the registry task glue (GLUE's .tsv files as two datasets), the shared packing of text
 * splits through an encoder, and pare_text_task_make (the text tasks with a caller's encoder).
 *
 * The task reads the train file and an evaluation file of one GLUE task (by default its dev split:
 * GLUE's test files have no labels) from a glue_data directory or from explicit paths, encodes both
 * with the caller's encoder or the built-in word encoder (vocabulary of the train split) and pads both
 * to one T. STS-B gives a regression dataset (nclass 1, targets = scores), which a model with
 * head=regression fits (train/train.h: evaluation reports Pearson, Spearman and the MSE).
 *
 * Deliberately not here: the file formats (glue.c), the fortune tasks (fortune_text.c).
 *
 * Entry points: pare_task_glue (registry), pare_text_task_splits (task_impl.h), pare_text_task_make.
 */
#include <string.h>

#include "core/arena.h"
#include "data/glue.h"
#include "data/task_impl.h"

pare_status pare_text_task_splits(pare_dataset *train, pare_dataset *test, const char *task,
                                  const pare_text_example *tr, int64_t ntr, const pare_text_example *te, int64_t nte,
                                  int32_t nclass, const pare_text_encoder *enc, const pare_options *o)
{
    pare_word_encoder *w = NULL;
    pare_text_encoder own;
    if (!enc) {
        PARE_TRY(pare_word_encoder_build(&w, tr, ntr, (int32_t)pare_opt_num(o, "vocab"),
                                         (int32_t)pare_opt_num(o, "min_count")));
        own = pare_word_encoder_iface(w);
        enc = &own;
    }
    char name[64];
    int64_t max_len = (int64_t)pare_opt_num(o, "max_len"), T = 0;
    snprintf(name, sizeof name, "%s/train", task);
    pare_status st = pare_text_dataset(train, name, tr, ntr, nclass, enc, max_len);
    snprintf(name, sizeof name, "%s/test", task);
    if (st == PARE_OK) st = pare_text_dataset(test, name, te, nte, nclass, enc, max_len);
    if (st == PARE_OK) st = pare_task_pad_len(o, train->T > test->T ? train->T : test->T, &T);
    if (st == PARE_OK) st = pare_dataset_repad(train, T);
    if (st == PARE_OK) st = pare_dataset_repad(test, T);
    pare_word_encoder_free(w);
    return st;
}

/* The file of one side: option <side>_path if given, else <dir>/<TASK>/<split>.tsv. */
static pare_status side_path(char *buf, size_t cap, const pare_options *o, pare_glue_task t, const char *side,
                             const char *split)
{
    char key[32];
    snprintf(key, sizeof key, "%s_path", side);
    const char *p = pare_opt_str(o, key), *dir = pare_opt_str(o, "dir");
    if (p[0]) {
        snprintf(buf, cap, "%s", p);
        return PARE_OK;
    }
    if (!dir[0])
        return pare_fail(PARE_EINVAL, "glue: option dir (a glue_data directory holding %s/<split>.tsv) or %s is required",
                         pare_glue_info_of(t)->dir, key);
    return pare_glue_path(buf, cap, dir, t, split);
}

static pare_status glue_build(pare_dataset *train, pare_dataset *test, const pare_options *o,
                              const pare_text_encoder *enc)
{
    pare_glue_task t;
    PARE_TRY(pare_glue_parse(&t, pare_opt_str(o, "name")));
    const pare_glue_info *g = pare_glue_info_of(t);
    const char *split = pare_opt_str(o, "test_split")[0] ? pare_opt_str(o, "test_split") : g->dev;
    char trp[1024], tep[1024];
    PARE_TRY(side_path(trp, sizeof trp, o, t, "train", "train"));
    PARE_TRY(side_path(tep, sizeof tep, o, t, "test", split));
    int strict = pare_opt_bool(o, "strict");
    pare_glue_set a, b;
    PARE_TRY(pare_glue_read(&a, trp, t, strict));
    pare_status st = pare_glue_read(&b, tep, t, strict);
    if (st != PARE_OK) return pare_glue_set_free(&a), st;
    if (!a.labeled || !b.labeled)
        st = pare_fail(PARE_EINVAL, "glue: %s has no labels (a GLUE test file): train and evaluate on labeled files "
                       "(test_split = '%s' by default); read test files with pare_glue_read for predictions",
                       a.labeled ? tep : trp, g->dev);
    int64_t ntr = a.n, nte = b.n, want;
    if ((want = (int64_t)pare_opt_num(o, "n_train")) > 0 && want < ntr) ntr = want;
    if ((want = (int64_t)pare_opt_num(o, "n_test")) > 0 && want < nte) nte = want;
    char task[64];
    snprintf(task, sizeof task, "glue_%s", g->name);
    if (st == PARE_OK) st = pare_text_task_splits(train, test, task, a.ex, ntr, b.ex, nte, g->nclass, enc, o);
    pare_glue_set_free(&a), pare_glue_set_free(&b);
    return st;
}

static pare_status glue_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    return glue_build(train, test, o, NULL);
}

static const pare_opt_spec glue_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "unused (files are read in order); kept for a uniform schema"},
    {"name", PARE_OPT_ENUM, "sst2", 0, 0, "cola|sst2|mrpc|qqp|stsb|mnli|qnli|rte|wnli", "which GLUE task"},
    {"dir", PARE_OPT_STRING, "", 0, 0, NULL, "a glue_data directory: <dir>/<TASK>/<split>.tsv (e.g. glue_data/SST-2/train.tsv)"},
    {"train_path", PARE_OPT_STRING, "", 0, 0, NULL, "the training .tsv itself (instead of dir)"},
    {"test_path", PARE_OPT_STRING, "", 0, 0, NULL, "the evaluation .tsv itself (instead of dir)"},
    {"test_split", PARE_OPT_STRING, "", 0, 0, NULL,
     "evaluation split under dir ('': dev; MNLI dev_matched, or dev_mismatched)"},
    {"n_train", PARE_OPT_INT, "0", 0, 1e9, NULL, "the first n training examples (0: all)"},
    {"n_test", PARE_OPT_INT, "0", 0, 1e9, NULL, "the first n evaluation examples (0: all)"},
    {"max_len", PARE_OPT_INT, "128", 4, 1e6, NULL, "tokens per example incl. [CLS] and [SEP]: longer ones are truncated"},
    {"pad_to", PARE_OPT_INT, "0", 0, 1e7, NULL, "padded length T (0: the longest example)"},
    {"vocab", PARE_OPT_INT, "8000", 5, 1e7, NULL, "built-in word encoder: most frequent words of the train split kept"},
    {"min_count", PARE_OPT_INT, "2", 1, 1e9, NULL, "built-in word encoder: words seen fewer times become [UNK]"},
    {"strict", PARE_OPT_BOOL, "false", 0, 0, NULL, "a malformed row is an error (default: skipped and counted)"},
};
static const pare_schema glue_schema = {
    "glue", "a GLUE task from its .tsv files (train + dev), word-level: [CLS] a [SEP] (b [SEP]), types for pairs",
    glue_opts, (int)(sizeof glue_opts / sizeof glue_opts[0])};

const pare_task_desc pare_task_glue = {&glue_schema, glue_make};

pare_status pare_text_task_make(pare_dataset *train, pare_dataset *test, const char *name, const pare_options *opts,
                                const pare_text_encoder *enc)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    static const struct {
        const pare_task_desc *desc;
        pare_status (*build)(pare_dataset *, pare_dataset *, const pare_options *, const pare_text_encoder *);
    } text_tasks[] = {
        {&pare_task_glue, glue_build},
        {&pare_task_fortune_topic, pare_fortune_topic_build},
        {&pare_task_fortune_pair, pare_fortune_pair_build},
        {&pare_task_fortune_sts, pare_fortune_sts_build},
        {&pare_task_mlm_corpus, pare_mlm_corpus_build},
        {&pare_task_clm_corpus, pare_clm_corpus_build},
    };
    for (size_t i = 0; i < sizeof text_tasks / sizeof text_tasks[0]; i++) {
        const pare_schema *s = text_tasks[i].desc->schema;
        if (!name || strcmp(name, s->name)) continue;
        pare_options defaults;
        if (!opts) {
            PARE_TRY(pare_opts_defaults(&defaults, s));
            opts = &defaults;
        }
        if (opts->schema != s)
            return pare_fail(PARE_EINVAL, "task '%s': options were resolved against the schema '%s', not the task's own",
                             name, opts->schema ? opts->schema->name : "(none)");
        pare_status st = text_tasks[i].build(train, test, opts, enc);
        if (st != PARE_OK) pare_dataset_free(train), pare_dataset_free(test);
        return st;
    }
    return pare_fail(PARE_EINVAL, "no text task named '%s' (valid: glue, fortune_topic, fortune_pair, fortune_sts, mlm_corpus, clm_corpus)",
                     name ? name : "(null)");
}
