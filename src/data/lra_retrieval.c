/* lra_retrieval.c — the registry task lra_retrieval: LRA's Retrieval task read from the user's AAN pairs,
 * new_aan_pairs.{train,eval,test}.tsv: label, id1, id2, text1, text2 (tab-separated, no header, no
 * quoting), each text cut to 4000 bytes as LRA does; rows <cls> text1 <sep> text2, byte-level. The format
 * was matched against LRA's input pipeline (lra_benchmarks/matching/input_pipeline.py); no LRA code is used.
 *
 * Deliberately not here: downloads (option path names where the user unpacked the files), LRA's
 * two-tower encoding (here the pair is one sequence), tokenisation into words or subwords.
 *
 * Entry point: the descriptor pare_task_lra_retrieval (task_impl.h).
 */
#include "data/lra_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "data/lra_files_internal.h"

/* ---- lra_retrieval: AAN pairs ---- */

#define AAN_MAX_LINE ((size_t)64 << 20)

/* Read up to max_rows rows (0 = all) of an AAN .tsv into a (text1, label) and b (text2), keeping the
 * first `keep` bytes of each text. */
static pare_status aan_read(pare_docs *a, pare_docs *b, const char *path, int64_t max_rows, size_t keep)
{
    memset(a, 0, sizeof *a), memset(b, 0, sizeof *b);
    FILE *f = fopen(path, "rb");
    if (!f)
        return pare_fail(PARE_EIO, "%s: cannot open: %s (expected LRA's new_aan_pairs.{train,eval,test}.tsv)", path,
                         strerror(errno));
    pare_sbuf line = {0};
    pare_status st = PARE_OK;
    long long ln = 0;
    for (;;) {
        int r = pare_read_line(f, &line, AAN_MAX_LINE, 0);
        ln++;
        if (r == 0) break;
        if (r == -1) {
            st = pare_fail(PARE_EFORMAT, "%s:%lld: line too long (more than %zu bytes)", path, ln, AAN_MAX_LINE);
            break;
        }
        if (r == -2) { st = pare_fail(PARE_ENOMEM, "%s:%lld: out of memory", path, ln); break; }
        char *s = line.s;
        if (line.n == 0) continue;
        if (memchr(s, '\0', line.n)) {
            st = pare_fail(PARE_EFORMAT, "%s:%lld: NUL byte: not a text file", path, ln);
            break;
        }
        char *col[6]; /* col[k] starts column k; col[5] is one past the end (+1) */
        int nc = 1;
        col[0] = s;
        for (size_t p = 0; p < line.n; p++)
            if (s[p] == '\t') {
                s[p] = '\0';
                if (nc < 5) col[nc] = s + p + 1;
                nc++;
            }
        if (nc != 5) {
            st = pare_fail(PARE_EFORMAT,
                           "%s:%lld: expected 5 tab-separated columns (label, id1, id2, text1, text2), found %d", path,
                           ln, nc);
            break;
        }
        col[5] = s + line.n + 1;
        char *end;
        errno = 0;
        double lab = strtod(col[0], &end);
        while (*end == ' ') end++;
        if (end == col[0] || *end || errno || (lab != 0.0 && lab != 1.0)) {
            st = pare_fail(PARE_EFORMAT, "%s:%lld: label '%.20s' is not 0 or 1", path, ln, col[0]);
            break;
        }
        size_t l3 = (size_t)(col[4] - col[3] - 1), l4 = (size_t)(col[5] - col[4] - 1);
        if ((st = pare_docs_add(a, col[3], l3 < keep ? l3 : keep, (int32_t)lab)) != PARE_OK) break;
        if ((st = pare_docs_add(b, col[4], l4 < keep ? l4 : keep, (int32_t)lab)) != PARE_OK) break;
        if (max_rows > 0 && a->n >= max_rows) break;
    }
    if (st == PARE_OK && ferror(f)) st = pare_fail(PARE_EIO, "%s: read error: %s", path, strerror(errno));
    if (st == PARE_OK && a->n == 0) st = pare_fail(PARE_EFORMAT, "%s: no pairs in the file", path);
    fclose(f);
    pare_free(line.s);
    if (st != PARE_OK) pare_docs_free(a), pare_docs_free(b);
    return st;
}

static pare_status pack_pairs(pare_dataset *d, const char *split, const pare_docs *a, const pare_docs *b,
                              int64_t max_len, int64_t T)
{
    PARE_TRY(pare_dataset_alloc(d, "", PARE_TASK_CLASSIFY, a->n, T, PARE_BYTE_VOCAB, 2));
    pare_task_name_split(d, "lra_retrieval", split);
    for (int64_t i = 0; i < a->n; i++) {
        size_t la, lb;
        const char *sa = pare_docs_at(a, i, &la), *sb = pare_docs_at(b, i, &lb);
        d->lengths[i] = (int32_t)pare_pair_encode(d->tokens + i * T, sa, la, sb, lb, max_len);
        d->labels[i] = a->label[i];
    }
    return pare_byte_vocab(d);
}

static int64_t pairs_longest(const pare_docs *a, const pare_docs *b, int64_t max_len)
{
    int64_t m = 2;
    for (int64_t i = 0; i < a->n; i++) {
        size_t la, lb;
        pare_docs_at(a, i, &la), pare_docs_at(b, i, &lb);
        int64_t L = pare_pair_len(la, lb, max_len);
        m = L > m ? L : m;
    }
    return m;
}

static pare_status lra_retrieval_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    PARE_TRY(pare_lra_need_path_(o, "lra_retrieval",
                       "a directory holding new_aan_pairs.{train,eval,test}.tsv, or a prefix P for P.train.tsv"));
    const char *path = pare_opt_str(o, "path"), *split = pare_opt_str(o, "test_split");
    char trp[PARE_OPT_STR_MAX + 64], tep[PARE_OPT_STR_MAX + 64];
    const char *fmt = pare_lra_is_dir_(path) ? "%s/new_aan_pairs.%s.tsv" : "%s.%s.tsv";
    snprintf(trp, sizeof trp, fmt, path, "train");
    snprintf(tep, sizeof tep, fmt, path, split);
    int64_t max_len = (int64_t)pare_opt_num(o, "max_len"), T;
    size_t keep = (size_t)((max_len - 2) / 2);
    if (keep > 10000) keep = 10000; /* LRA encodes only the first 10000 bytes of each text */
    pare_docs a = {0}, b = {0}, ta = {0}, tb = {0};
    pare_status st = aan_read(&a, &b, trp, (int64_t)pare_opt_num(o, "n_train"), keep);
    if (st == PARE_OK) st = aan_read(&ta, &tb, tep, (int64_t)pare_opt_num(o, "n_test"), keep);
    if (st == PARE_OK) {
        int64_t x = pairs_longest(&a, &b, max_len), y = pairs_longest(&ta, &tb, max_len);
        st = pare_task_pad_len(o, x > y ? x : y, &T);
    }
    if (st == PARE_OK) st = pack_pairs(train, "train", &a, &b, max_len, T);
    if (st == PARE_OK) st = pack_pairs(test, "test", &ta, &tb, max_len, T);
    pare_docs_free(&a), pare_docs_free(&b), pare_docs_free(&ta), pare_docs_free(&tb);
    return st;
}

static const pare_opt_spec lra_retrieval_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL,
     "unused (files are read in order); kept for a uniform schema"},
    {"path", PARE_OPT_STRING, "", 0, 0, NULL,
     "directory with new_aan_pairs.{train,eval,test}.tsv, or a prefix P for P.train.tsv (required)"},
    {"test_split", PARE_OPT_ENUM, "test", 0, 0, "test|eval", "evaluate on the .test.tsv or the .eval.tsv file"},
    {"n_train", PARE_OPT_INT, "0", 0, 1e8, NULL,
     "read at most this many training pairs (0: all; LRA's full set needs ~4.7 GB at max_len 8002)"},
    {"n_test", PARE_OPT_INT, "0", 0, 1e8, NULL, "read at most this many test pairs (0: all)"},
    {"max_len", PARE_OPT_INT, "8002", 4, 1e7, NULL,
     "tokens per example: <cls> text1 <sep> text2, each text cut to (max_len-2)/2 bytes (LRA: 4000 each)"},
    {"pad_to", PARE_OPT_INT, "0", 0, 1e7, NULL, "padded length T (0: the longest example)"},
};
static const pare_schema lra_retrieval_schema = {
    "lra_retrieval",
    "LRA Retrieval: AAN citation pairs from new_aan_pairs.*.tsv as one sequence <cls> a <sep> b, label 1 = linked",
    lra_retrieval_opts, (int)(sizeof lra_retrieval_opts / sizeof lra_retrieval_opts[0])};
const pare_task_desc pare_task_lra_retrieval = {&lra_retrieval_schema, lra_retrieval_make};
