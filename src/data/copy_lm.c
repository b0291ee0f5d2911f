/* copy_lm.c — a tiny causal language-modelling task: the second half repeats the first.
 *
 *     tokens   <bos> c a f b <sep> c a f b
 *     targets   -1  -1 -1 -1 -1   c  a  f  b  -1
 *
 * The symbols of the first half are uniform and unpredictable, so their targets are -1; from <sep>
 * on, each position's target is the next token, which a decoder can copy from the first half (an
 * induction-head task). Accuracy over the scored positions reaches 1.0 only by copying.
 *
 * Entry point: pare_task_copy_lm (registry). No EOS token is predicted.
 */
#include <stdio.h>

#include "core/arena.h"
#include "data/task_impl.h"

enum { C_PAD, C_BOS, C_SEP, C_SYM0 };

static pare_status copy_split(pare_dataset *d, pare_rng *r, int64_t n, int64_t T, int32_t S, int64_t lo, int64_t hi,
                              const char *split)
{
    int32_t V = C_SYM0 + S;
    PARE_TRY(pare_dataset_alloc(d, "", PARE_TASK_LM, n, T, V, V));
    pare_task_name_split(d, "copy_lm", split);
    for (int64_t i = 0; i < n; i++) {
        int64_t m = lo + (int64_t)pare_rng_below(r, (uint64_t)(hi - lo + 1));
        int32_t *t = d->tokens + i * T, *y = d->labels + i * T;
        t[0] = C_BOS, t[m + 1] = C_SEP;
        for (int64_t j = 1; j <= m; j++) t[j] = t[m + 1 + j] = C_SYM0 + (int32_t)pare_rng_below(r, (uint64_t)S);
        for (int64_t p = m + 1; p <= 2 * m; p++) y[p] = t[p + 1];
        d->lengths[i] = (int32_t)(2 * m + 2);
    }
    char **nm = pare_alloc((size_t)V * sizeof(char *)), *store = pare_alloc((size_t)V * 16);
    if (!nm || !store) {
        pare_free(nm), pare_free(store);
        return pare_fail(PARE_ENOMEM, "copy_lm: out of memory");
    }
    const char *fixed[] = {"<pad>", "<bos>", "<sep>"};
    for (int32_t j = 0; j < V; j++) {
        nm[j] = store + 16 * j;
        if (j < C_SYM0) snprintf(nm[j], 16, "%s", fixed[j]);
        else if (S <= 26) snprintf(nm[j], 16, "%c", 'a' + (j - C_SYM0));
        else snprintf(nm[j], 16, "s%d", j - C_SYM0);
    }
    pare_status st = pare_dataset_set_vocab(d, (const char *const *)nm, V);
    pare_free(nm), pare_free(store);
    return st;
}

static pare_status copy_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    int64_t lo = pare_opt_int(o, "min_len"), hi = pare_opt_int(o, "max_len"), T;
    int32_t S = pare_opt_int(o, "n_symbols");
    if (lo > hi)
        return pare_fail(PARE_EINVAL, "copy_lm: min_len=%lld is greater than max_len=%lld", (long long)lo, (long long)hi);
    PARE_TRY(pare_task_pad_len(o, 2 * hi + 2, &T));
    pare_rng rtr, rte;
    pare_task_streams(o, &rtr, &rte);
    PARE_TRY(copy_split(test, &rte, (int64_t)pare_opt_num(o, "n_test"), T, S, lo, hi, "test"));
    return copy_split(train, &rtr, (int64_t)pare_opt_num(o, "n_train"), T, S, lo, hi, "train");
}

static const pare_opt_spec copy_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "generator seed (same seed, same data)"},
    {"n_train", PARE_OPT_INT, "4000", 1, 1e8, NULL, "training sequences"},
    {"n_test", PARE_OPT_INT, "500", 1, 1e8, NULL, "test sequences"},
    {"n_symbols", PARE_OPT_INT, "8", 1, 100000, NULL, "alphabet of the copied string"},
    {"min_len", PARE_OPT_INT, "4", 1, 1e6, NULL, "shortest half (string to copy)"},
    {"max_len", PARE_OPT_INT, "8", 1, 1e6, NULL, "longest half; T = 2*max_len + 2"},
    {"pad_to", PARE_OPT_INT, "0", 0, 1e7, NULL, "padded length T (0: 2*max_len + 2)"},
};
static const pare_schema copy_schema = {
    "copy_lm", "causal LM: <bos> x <sep> x; targets = next token over the second half, -1 elsewhere",
    copy_opts, (int)(sizeof copy_opts / sizeof copy_opts[0])};

const pare_task_desc pare_task_copy_lm = {&copy_schema, copy_make};
