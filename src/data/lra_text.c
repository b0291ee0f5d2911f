/* lra_text.c — the registry task lra_text: LRA's Text task read from the user's IMDB reviews in the
 * aclImdb layout, aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt, byte-level, label neg 0 / pos 1, LRA's
 * max_length 1000 bytes after <cls>. The layout was matched against LRA's input pipeline
 * (lra_benchmarks/text_classification/input_pipeline.py); no LRA code is used.
 *
 * Deliberately not here: downloads (option path names where the user unpacked the files), tokenisation
 * into words or subwords (LRA's byte-level setting only), the unlabelled unsup/ reviews.
 *
 * Entry point: the descriptor pare_task_lra_text (task_impl.h).
 */
#include "data/lra_files.h"

#include <string.h>

#include "core/arena.h"
#include "data/lra_files_internal.h"

/* ---- lra_text: IMDB reviews, aclImdb layout ---- */

static int is_txt(const char *name) { return pare_lra_ends_with_(name, ".txt"); }

/* Pick up to n files (0 = all) of root/split/{neg,pos}, balanced (neg gets the odd one), read them,
 * shuffle the order; labels neg 0, pos 1. */
static pare_status imdb_read(pare_docs *d, const char *root, const char *split, int64_t n, pare_rng *r)
{
    static const char *const lab[2] = {"neg", "pos"};
    pare_name_list l[2] = {{0}, {0}};
    int64_t *pick[2] = {NULL, NULL}, want[2];
    pare_status st = PARE_OK;
    char dir[2][PARE_OPT_STR_MAX + 32], path[PARE_OPT_STR_MAX + 600];
    memset(d, 0, sizeof *d);
    for (int c = 0; c < 2 && st == PARE_OK; c++) {
        int err = 0;
        snprintf(dir[c], sizeof dir[c], "%s/%s/%s", root, split, lab[c]);
        if (pare_lra_list_files_(&l[c], dir[c], ".txt", is_txt, &err) != PARE_OK)
            st = pare_fail(
                PARE_EIO,
                "lra_text: %s: cannot open: %s (expected the aclImdb layout: %s/{train,test}/{pos,neg}/*.txt)", dir[c],
                strerror(err), root);
        else if (l[c].n == 0)
            st = pare_fail(PARE_EFORMAT, "lra_text: %s: no *.txt reviews (expected the aclImdb layout)", dir[c]);
    }
    if (st != PARE_OK) goto done;
    int64_t total = l[0].n + l[1].n;
    if (n == 0 || n >= total) want[0] = l[0].n, want[1] = l[1].n;
    else want[1] = n / 2, want[0] = n - n / 2;
    if (want[0] > l[0].n || want[1] > l[1].n) {
        st = pare_fail(PARE_EINVAL, "lra_text: %lld %s reviews requested (balanced), but %s has %lld neg and %lld pos",
                       (long long)n, split, split, (long long)l[0].n, (long long)l[1].n);
        goto done;
    }
    int64_t m = want[0] + want[1];
    int64_t *order = pare_alloc((size_t)m * sizeof(int64_t));
    for (int c = 0; c < 2; c++) {
        pick[c] = pare_alloc((size_t)l[c].n * sizeof(int64_t));
        if (pick[c]) {
            for (int64_t i = 0; i < l[c].n; i++) pick[c][i] = i;
            if (want[c] < l[c].n) pare_shuffle_i64(pick[c], r, l[c].n);
        }
    }
    if (!order || !pick[0] || !pick[1]) {
        pare_free(order);
        st = pare_fail(PARE_ENOMEM, "lra_text: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < m; i++) order[i] = i; /* i < want[0]: neg #i; else pos #(i - want[0]) */
    pare_shuffle_i64(order, r, m);
    for (int64_t k = 0; k < m && st == PARE_OK; k++) {
        int c = order[k] >= want[0];
        int64_t j = pick[c][c ? order[k] - want[0] : order[k]];
        char *text = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", dir[c], l[c].v[j]);
        if ((st = pare_lra_read_all_(&text, &len, path)) != PARE_OK) break;
        const char *nul = memchr(text, '\0', len);
        if (nul)
            st = pare_fail(PARE_EFORMAT, "%s:%lld: NUL byte: not a text file", path,
                           pare_lra_line_of_(text, (size_t)(nul - text)));
        else st = pare_docs_add(d, text, len, c);
        pare_free(text);
    }
    pare_free(order);
    d->nclass = 2;
done:
    pare_lra_names_free_(&l[0]), pare_lra_names_free_(&l[1]), pare_free(pick[0]), pare_free(pick[1]);
    if (st != PARE_OK) pare_docs_free(d);
    return st;
}

static pare_status lra_text_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    PARE_TRY(pare_lra_need_path_(o, "lra_text", "the aclImdb directory (with train/ and test/)"));
    const char *root = pare_opt_str(o, "path");
    int64_t max_len = (int64_t)pare_opt_num(o, "max_len"), T;
    pare_rng rtr, rte;
    pare_task_streams(o, &rtr, &rte);
    pare_docs dtr = {0}, dte = {0};
    pare_status st = imdb_read(&dte, root, "test", (int64_t)pare_opt_num(o, "n_test"), &rte);
    if (st == PARE_OK) st = imdb_read(&dtr, root, "train", (int64_t)pare_opt_num(o, "n_train"), &rtr);
    if (st == PARE_OK) {
        int64_t a = pare_docs_longest(&dtr, NULL, dtr.n, max_len), b = pare_docs_longest(&dte, NULL, dte.n, max_len);
        st = pare_task_pad_len(o, a > b ? a : b, &T);
    }
    if (st == PARE_OK) st = pare_docs_pack(train, "lra_text", "train", &dtr, NULL, dtr.n, max_len, T);
    if (st == PARE_OK) st = pare_docs_pack(test, "lra_text", "test", &dte, NULL, dte.n, max_len, T);
    pare_docs_free(&dtr), pare_docs_free(&dte);
    return st;
}

static const pare_opt_spec lra_text_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL,
     "which reviews when n_train/n_test pick a subset, and their order"},
    {"path", PARE_OPT_STRING, "", 0, 0, NULL,
     "the aclImdb directory: train/{pos,neg}/*.txt and test/{pos,neg}/*.txt (required)"},
    {"n_train", PARE_OPT_INT, "0", 0, 1e8, NULL,
     "training reviews, balanced pos/neg, chosen by seed (0: all 25000, as LRA)"},
    {"n_test", PARE_OPT_INT, "0", 0, 1e8, NULL, "test reviews, balanced (0: all 25000, as LRA)"},
    {"max_len", PARE_OPT_INT, "1001", 2, 1e7, NULL,
     "tokens per example incl. <cls>: <cls> + the first max_len-1 bytes (LRA: 1000 bytes)"},
    {"pad_to", PARE_OPT_INT, "0", 0, 1e7, NULL, "padded length T (0: the longest example)"},
};
static const pare_schema lra_text_schema = {
    "lra_text",
    "LRA Text: IMDB reviews read from an aclImdb directory, byte-level, label neg 0 / pos 1; CLS at position 0",
    lra_text_opts, (int)(sizeof lra_text_opts / sizeof lra_text_opts[0])};
const pare_task_desc pare_task_lra_text = {&lra_text_schema, lra_text_make};
