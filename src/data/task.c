/* task.c — the task registry: one table of descriptors, looked up by name.
 *
 * Entry points: pare_task_schema, pare_task_make, pare_task_make_kv, pare_task_count, pare_task_name,
 * pare_task_names. The tasks themselves live one per file (listops.c, recall.c, copy_lm.c, bits.c, text.c,
 * text_lm.c, retrieval.c, pathfinder.c, selective_copy.c; the LRA file readers lra_text.c, lra_retrieval.c,
 * lra_image.c, lra_pathfinder.c; the text tasks glue_task.c and fortune_text.c; the pretraining tasks lm_corpus.c).
 */
#include <stdio.h>
#include <string.h>

#include "data/task_impl.h"

/* Append-only: the index is a task's stable number. */
enum {
    TASK_LISTOPS, TASK_RECALL, TASK_COPY_LM, TASK_PARITY, TASK_MAJORITY,
    TASK_TEXT, TASK_TEXT_LM, TASK_RETRIEVAL, TASK_PATHFINDER, TASK_SELECTIVE_COPY,
    TASK_LRA_TEXT, TASK_LRA_RETRIEVAL, TASK_LRA_IMAGE, TASK_LRA_PATHFINDER,
    TASK_GLUE, TASK_FORTUNE_TOPIC, TASK_FORTUNE_PAIR,
    TASK_TRANSLATE,
    TASK_MLM_CORPUS, TASK_CLM_CORPUS,
    TASK_FORTUNE_STS,
    TASK_COUNT
};
static const pare_task_desc *const tasks[] = {
    [TASK_LISTOPS] = &pare_task_listops,
    [TASK_RECALL] = &pare_task_recall,
    [TASK_COPY_LM] = &pare_task_copy_lm,
    [TASK_PARITY] = &pare_task_parity,
    [TASK_MAJORITY] = &pare_task_majority,
    [TASK_TEXT] = &pare_task_text,
    [TASK_TEXT_LM] = &pare_task_text_lm,
    [TASK_RETRIEVAL] = &pare_task_retrieval,
    [TASK_PATHFINDER] = &pare_task_pathfinder,
    [TASK_SELECTIVE_COPY] = &pare_task_selective_copy,
    [TASK_LRA_TEXT] = &pare_task_lra_text,
    [TASK_LRA_RETRIEVAL] = &pare_task_lra_retrieval,
    [TASK_LRA_IMAGE] = &pare_task_lra_image,
    [TASK_LRA_PATHFINDER] = &pare_task_lra_pathfinder,
    [TASK_GLUE] = &pare_task_glue,
    [TASK_FORTUNE_TOPIC] = &pare_task_fortune_topic,
    [TASK_FORTUNE_PAIR] = &pare_task_fortune_pair,
    [TASK_TRANSLATE] = &pare_task_translate,
    [TASK_MLM_CORPUS] = &pare_task_mlm_corpus,
    [TASK_CLM_CORPUS] = &pare_task_clm_corpus,
    [TASK_FORTUNE_STS] = &pare_task_fortune_sts,
};
_Static_assert(sizeof tasks / sizeof tasks[0] == TASK_COUNT, "task table out of date");

int pare_task_count(void) { return TASK_COUNT; }

const char *pare_task_name(int i) { return i >= 0 && i < TASK_COUNT ? tasks[i]->schema->name : NULL; }

const char *pare_task_names(char *buf, size_t n)
{
    size_t used = 0;
    if (n == 0) return buf;
    buf[0] = '\0';
    for (int i = 0; i < TASK_COUNT && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %s" : "%s", tasks[i]->schema->name);
    return buf;
}

static const pare_task_desc *find(const char *name)
{
    for (int i = 0; name && i < TASK_COUNT; i++)
        if (strcmp(tasks[i]->schema->name, name) == 0) return tasks[i];
    char names[512];
    pare_fail(PARE_EINVAL, "no task named '%s' (valid: %s)", name ? name : "(null)",
              pare_task_names(names, sizeof names));
    return NULL;
}

const pare_schema *pare_task_schema(const char *name)
{
    const pare_task_desc *t = find(name);
    return t ? t->schema : NULL;
}

pare_status pare_task_make(pare_dataset *train, pare_dataset *test, const char *name, const pare_options *opts)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    const pare_task_desc *t = find(name);
    if (!t) return PARE_EINVAL;
    pare_options defaults;
    if (!opts) {
        PARE_TRY(pare_opts_defaults(&defaults, t->schema));
        opts = &defaults;
    }
    if (opts->schema != t->schema)
        return pare_fail(PARE_EINVAL, "task '%s': options were resolved against the schema '%s', not the task's own",
                         name, opts->schema ? opts->schema->name : "(none)");
    pare_status st = t->make(train, test, opts);
    if (st != PARE_OK) {
        pare_dataset_free(train);
        pare_dataset_free(test);
        return st; /* the task's messages name it */
    }
    return PARE_OK;
}

pare_status pare_task_make_kv(pare_dataset *train, pare_dataset *test, const char *name, const pare_kv *kv, int n)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    const pare_schema *s = pare_task_schema(name);
    if (!s) return PARE_EINVAL;
    pare_options o;
    PARE_TRY(pare_opts_resolve(&o, s, kv, n));
    return pare_task_make(train, test, name, &o);
}

pare_status pare_task_pad_len(const pare_options *o, int64_t longest, int64_t *T)
{
    int64_t pad = (int64_t)pare_opt_num(o, "pad_to");
    if (pad == 0) {
        *T = longest;
        return PARE_OK;
    }
    if (pad < longest)
        return pare_fail(PARE_EINVAL, "%s: pad_to=%lld is shorter than the longest example (%lld tokens)",
                         o->schema->name, (long long)pad, (long long)longest);
    *T = pad;
    return PARE_OK;
}

void pare_task_name_split(pare_dataset *d, const char *task, const char *split)
{
    snprintf(d->name, sizeof d->name, "%s/%s", task, split);
}
