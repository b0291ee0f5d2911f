/* listops.h — the Long Range Arena ListOps task: generator, tokeniser, and LRA .tsv reader/writer.
 *
 * ListOps (Nangia & Bowman 2018) as used by LRA (Tay et al. 2020): nested prefix expressions over the
 * digits 0-9 with the operators MAX, MIN, MED (median, floored like int(np.median)) and SM (sum
 * modulo 10); the label is the expression's value, 0-9. LRA writes one example per line,
 * `Source<TAB>Target`, after a header line `Source\tTarget`, with every operator application fully
 * parenthesised the way its generator prints a left-nested pair tree:
 *
 *     [MAX 2 9 ]            is written   ( ( ( [MAX 2 ) 9 ) ] )
 *     [SM 1 [MIN 3 4 ] ]    is written   ( ( ( [SM 1 ) ( ( ( [MIN 3 ) 4 ) ] ) ) ] )
 *
 * The parentheses carry no information (they follow from the brackets), so by default tokenisation
 * drops them (option parens=true keeps them). Token ids are fixed (enum below); every example starts
 * with CLS at position 0, so valid length = 1 + the expression's token count.
 *
 *     pare_dataset d = {0};
 *     PARE_TRY(pare_listops_read_tsv(&d, "lra_release/listops-1000/basic_train.tsv", NULL));
 *     PARE_TRY(pare_listops_write_tsv("/tmp/copy.tsv", &d));
 *
 * The generator itself is reached through the task registry: pare_task_make(&tr, &te, "listops", &o).
 */
#ifndef PARE_LISTOPS_H
#define PARE_LISTOPS_H

#include <stddef.h>
#include <stdint.h>

#include "data/task.h"

/* Token ids (stable; vocab = PARE_LISTOPS_VOCAB whatever the options). */
enum pare_listops_token {
    PARE_LISTOPS_PAD = 0,
    PARE_LISTOPS_CLS = 1,
    PARE_LISTOPS_DIGIT0 = 2, /* digit d is DIGIT0 + d, d in 0..9 */
    PARE_LISTOPS_MIN = 12,   /* "[MIN" */
    PARE_LISTOPS_MAX,        /* "[MAX" */
    PARE_LISTOPS_MED,        /* "[MED" */
    PARE_LISTOPS_SM,         /* "[SM"  sum modulo 10 */
    PARE_LISTOPS_FIRST,      /* "[FIRST"  defined but unused by LRA's generator */
    PARE_LISTOPS_LAST,       /* "[LAST"   idem */
    PARE_LISTOPS_END,        /* "]" */
    PARE_LISTOPS_OPEN,       /* "(" */
    PARE_LISTOPS_CLOSE,      /* ")" */
    PARE_LISTOPS_VOCAB
};

/* Lines longer than this are rejected by the reader unless max_line says otherwise (LRA's longest
 * lines are about 30 kB). */
#define PARE_LISTOPS_MAX_LINE (1 << 20)

typedef struct pare_listops_read_opts {
    int parens;       /* keep "(" and ")" tokens (default 0: dropped) */
    int64_t max_len;  /* truncate each source to this many tokens after CLS, as LRA's pipeline does (0: no limit) */
    int64_t max_rows; /* read at most this many examples (0: all) */
    int64_t max_line; /* reject lines longer than this many bytes (0: PARE_LISTOPS_MAX_LINE) */
} pare_listops_read_opts;

/* Read an LRA ListOps .tsv (LF or CRLF line ends) into a CLASSIFY dataset named after the file.
 * ro NULL = defaults. Malformed input gives PARE_EFORMAT (PARE_EIO if unreadable) with a message
 * "<path>:<line>: ..." naming the problem: missing header, missing tab, bad token, unbalanced or
 * incomplete expression, label not an integer in [0, 9], line too long, no examples. */
pare_status pare_listops_read_tsv(pare_dataset *d, const char *path, const pare_listops_read_opts *ro);

/* Write d (a ListOps dataset, with or without paren tokens) in LRA's format, canonical parentheses. */
pare_status pare_listops_write_tsv(const char *path, const pare_dataset *d);

/* The value of one expression tok[0..n) (CLS and paren tokens are skipped). PARE_EINVAL if it is not
 * exactly one complete expression (e.g. truncated). Reference evaluator used by the generator. */
pare_status pare_listops_eval(const int32_t *tok, int64_t n, int *value);

/* tok[0..n) as LRA's source string (canonical parentheses; CLS and paren tokens in tok are ignored).
 * PARE_EINVAL if malformed, PARE_ESHAPE if buf (cap bytes) is too small. */
pare_status pare_listops_to_string(const int32_t *tok, int64_t n, char *buf, size_t cap);

/* The token name of id ("[MAX", "7", ...) or NULL. */
const char *pare_listops_token_name(int32_t id);

#endif
