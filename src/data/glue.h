/* glue.h — readers of the nine GLUE tasks' files as distributed (Wang et al. 2019; the
 * glue_data/<TASK>/<split>.tsv layout of GLUE's download script), and the registry tasks built on
 * text: glue (those files), fortune_topic, fortune_pair and fortune_sts (local stand-ins on Debian's fortunes).
 *
 * GLUE's .tsv files are tab-separated and NOT quoted: a '"' is text (MNLI and QQP have stray ones), so
 * fields are read verbatim between tabs. Columns are found by the header row where the file has one
 * (it always does, except CoLA's train and dev), which covers the train/dev/test layouts of each task
 * (test files lack the label column and often others):
 *
 *   task  dir    first segment     second segment   label                      classes
 *   cola  CoLA   col 3 (no header) —                col 1: 0/1                 0 1
 *   sst2  SST-2  sentence          —                label: 0/1                 0 1
 *   mrpc  MRPC   #1 String         #2 String        Quality: 0/1               0 1
 *   qqp   QQP    question1         question2        is_duplicate: 0/1          0 1
 *   stsb  STS-B  sentence1         sentence2        score: float in [0, 5]     (regression)
 *   mnli  MNLI   sentence1         sentence2        gold_label                 contradiction entailment neutral
 *   qnli  QNLI   question          sentence         label                      entailment not_entailment
 *   rte   RTE    sentence1         sentence2        label                      entailment not_entailment
 *   wnli  WNLI   sentence1         sentence2        label: 0/1                 0 1
 *
 * Class ids follow the order above (the label lists of the reference GLUE processors, e.g.
 * transformers' glue processors). CoLA's test file has a header "index\tsentence". Splits: train, dev,
 * test; MNLI has train, dev_matched, dev_mismatched, test_matched, test_mismatched.
 *
 * Malformed rows (a column count other than the header's, a missing or unknown label, a score that is
 * not a number in [0, 5]) are SKIPPED and counted by default: QQP's train.tsv as distributed has a few
 * rows with missing fields, and the reference loaders skip them too. The first one is kept as
 * "file:line: reason" in pare_glue_set.first_skipped. More than 1% of a file's rows malformed (and
 * more than 10) is an error (that is a wrong file, not a few bad rows), as is any malformed row with
 * strict = 1.
 * A UTF-8 byte order mark, CRLF line ends and empty lines are accepted.
 *
 *     pare_glue_set s;
 *     PARE_TRY(pare_glue_read_dir(&s, "glue_data", PARE_GLUE_MRPC, "dev", 0));
 *     // s.n examples s.ex[i].a, s.ex[i].b, s.ex[i].label (-1 when s.labeled == 0)
 *     pare_glue_set_free(&s);
 *
 * Deliberately not here: downloads (point at an unpacked glue_data), tokenizers (text_encoder.h is the
 * interface they plug into), the diagnostic set AX.
 */
#ifndef PARE_GLUE_H
#define PARE_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include "core/options.h"
#include "core/status.h"
#include "data/task.h"
#include "data/text_encoder.h"

/* Append-only. */
typedef enum pare_glue_task {
    PARE_GLUE_COLA = 0,
    PARE_GLUE_SST2,
    PARE_GLUE_MRPC,
    PARE_GLUE_QQP,
    PARE_GLUE_STSB,
    PARE_GLUE_MNLI,
    PARE_GLUE_QNLI,
    PARE_GLUE_RTE,
    PARE_GLUE_WNLI,
    PARE_GLUE_TASK_COUNT
} pare_glue_task;

/* Metrics GLUE reports (eval/metrics.h computes them). */
typedef enum pare_glue_metric {
    PARE_GLUE_METRIC_NONE = 0,
    PARE_GLUE_METRIC_ACCURACY,
    PARE_GLUE_METRIC_F1,
    PARE_GLUE_METRIC_MCC,
    PARE_GLUE_METRIC_PEARSON,
    PARE_GLUE_METRIC_SPEARMAN,
    PARE_GLUE_METRIC_COUNT
} pare_glue_metric;

typedef struct pare_glue_info {
    const char *name;     /* "sst2" */
    const char *dir;      /* "SST-2": the folder in glue_data */
    const char *col_a;    /* header name of the first segment (NULL: CoLA's fixed layout) */
    const char *col_b;    /* header name of the second segment, NULL for single-sentence tasks */
    const char *col_label;
    int32_t nclass;       /* 1 = regression (STS-B) */
    const char *labels[3]; /* class names in id order, as written in the files */
    pare_glue_metric metrics[2]; /* what GLUE reports, the main one first */
    const char *splits;   /* "train|dev|test" */
    const char *dev;      /* the split the registry task evaluates on by default */
} pare_glue_info;

/* NULL when t is out of range. */
const pare_glue_info *pare_glue_info_of(pare_glue_task t);
/* "sst2", "SST-2", "sst-2" (any case) → task; PARE_EINVAL listing the names otherwise. */
pare_status pare_glue_parse(pare_glue_task *t, const char *name);
const char *pare_glue_metric_name(pare_glue_metric m); /* "accuracy", "f1", ...; "" for NONE */

typedef struct pare_glue_set {
    pare_glue_task task;
    char path[512];           /* the file read */
    int64_t n;                /* examples */
    pare_text_example *ex;    /* (n); a and b point into text */
    char *text;               /* every segment, NUL-terminated */
    int labeled;              /* 0: a test file without labels (every label -1, score NAN) */
    int64_t rows;             /* data rows seen (header and empty lines not counted) */
    int64_t skipped;          /* malformed rows skipped */
    char first_skipped[320];  /* "file:line: reason" of the first, "" when none */
} pare_glue_set;

/* Read one GLUE .tsv file of task t. strict = 1: the first malformed row is an error (PARE_EFORMAT
 * naming file:line); 0: skipped and counted (unless more than 1% of the rows). PARE_EIO when the file
 * cannot be opened, PARE_EFORMAT for a header without the task's columns (naming them and the header
 * found) or a file without data rows. On failure *s is zeroed. */
pare_status pare_glue_read(pare_glue_set *s, const char *path, pare_glue_task t, int strict);
/* "<dir>/<TASK>/<split>.tsv", split checked against the task's splits (PARE_EINVAL listing them). */
pare_status pare_glue_path(char *buf, size_t cap, const char *dir, pare_glue_task t, const char *split);
/* pare_glue_path then pare_glue_read. */
pare_status pare_glue_read_dir(pare_glue_set *s, const char *dir, pare_glue_task t, const char *split, int strict);
void pare_glue_set_free(pare_glue_set *s); /* safe twice */

/* The registry tasks glue, fortune_topic, fortune_pair and fortune_sts with a caller's encoder (NULL: the built-in
 * word encoder, built on the train split). name is one of those four; opts resolved against its
 * schema (pare_task_schema(name)) or NULL for defaults. What pare_task_make does for them, plus the
 * encoder. */
pare_status pare_text_task_make(pare_dataset *train, pare_dataset *test, const char *name, const pare_options *opts,
                                const pare_text_encoder *enc);

#endif
