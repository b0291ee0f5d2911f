/* bits.c — parity and majority of a bit string: the classic hard/easy pair for attention.
 *
 *     <cls> 1 0 1 1 0      parity label 1 (odd number of ones); majority label 1 (more ones)
 *
 * Bits are uniform; lengths uniform in [min_length, max_length] (majority: odd lengths only, so
 * there are no ties). Parity is famously hard for small transformers at longer lengths; majority is
 * easy (a mean over positions). Entry points: pare_task_parity, pare_task_majority (registry).
 */
#include <string.h>

#include "data/task_impl.h"

enum { B_PAD, B_CLS, B_ZERO, B_ONE, B_VOCAB };
static const char *const bit_names[B_VOCAB] = {"<pad>", "<cls>", "0", "1"};

static pare_status bits_split(pare_dataset *d, pare_rng *r, int64_t n, int64_t T, int64_t lo, int64_t hi, int majority,
                              const char *task, const char *split)
{
    PARE_TRY(pare_dataset_alloc(d, "", PARE_TASK_CLASSIFY, n, T, B_VOCAB, 2));
    pare_task_name_split(d, task, split);
    for (int64_t i = 0; i < n; i++) {
        int64_t m = lo + (int64_t)pare_rng_below(r, (uint64_t)(hi - lo + 1)), ones = 0;
        if (majority && m % 2 == 0) m = m + 1 <= hi ? m + 1 : m - 1;
        int32_t *t = d->tokens + i * T;
        t[0] = B_CLS;
        for (int64_t j = 1; j <= m; j++) {
            int b = (int)pare_rng_below(r, 2);
            t[j] = B_ZERO + b, ones += b;
        }
        d->lengths[i] = (int32_t)(m + 1);
        d->labels[i] = majority ? 2 * ones > m : (int32_t)(ones & 1);
    }
    return pare_dataset_set_vocab(d, bit_names, B_VOCAB);
}

static pare_status bits_make(pare_dataset *train, pare_dataset *test, const pare_options *o, int majority)
{
    const char *task = o->schema->name;
    int64_t lo = pare_opt_int(o, "min_length"), hi = pare_opt_int(o, "max_length"), T;
    if (lo > hi)
        return pare_fail(PARE_EINVAL, "%s: min_length=%lld is greater than max_length=%lld", task, (long long)lo, (long long)hi);
    if (majority && lo == hi && lo % 2 == 0)
        return pare_fail(PARE_EINVAL, "majority: min_length = max_length = %lld leaves no odd length (ties)", (long long)lo);
    PARE_TRY(pare_task_pad_len(o, hi + 1, &T));
    pare_rng rtr, rte;
    pare_task_streams(o, &rtr, &rte);
    PARE_TRY(bits_split(test, &rte, (int64_t)pare_opt_num(o, "n_test"), T, lo, hi, majority, task, "test"));
    return bits_split(train, &rtr, (int64_t)pare_opt_num(o, "n_train"), T, lo, hi, majority, task, "train");
}

static pare_status parity_make(pare_dataset *tr, pare_dataset *te, const pare_options *o) { return bits_make(tr, te, o, 0); }
static pare_status majority_make(pare_dataset *tr, pare_dataset *te, const pare_options *o) { return bits_make(tr, te, o, 1); }

static const pare_opt_spec bits_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "generator seed (same seed, same data)"},
    {"n_train", PARE_OPT_INT, "4000", 1, 1e8, NULL, "training examples"},
    {"n_test", PARE_OPT_INT, "500", 1, 1e8, NULL, "test examples"},
    {"min_length", PARE_OPT_INT, "4", 1, 1e6, NULL, "fewest bits"},
    {"max_length", PARE_OPT_INT, "16", 1, 1e6, NULL, "most bits; T = max_length + 1"},
    {"pad_to", PARE_OPT_INT, "0", 0, 1e7, NULL, "padded length T (0: max_length + 1)"},
};
static const pare_schema parity_schema = {"parity", "parity of a bit string (label 1 = odd number of ones); CLS at 0",
                                          bits_opts, (int)(sizeof bits_opts / sizeof bits_opts[0])};
static const pare_schema majority_schema = {"majority", "majority of an odd-length bit string (label 1 = more ones); CLS at 0",
                                            bits_opts, (int)(sizeof bits_opts / sizeof bits_opts[0])};

const pare_task_desc pare_task_parity = {&parity_schema, parity_make};
const pare_task_desc pare_task_majority = {&majority_schema, majority_make};
