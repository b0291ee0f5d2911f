/* lra_files.h — shared pieces of the Long Range Arena-style tasks, and readers of LRA's own files.
 *
 * The tasks of issue 4 (docs/tasks.md) come in two families that share token ids and file helpers:
 *   - built here from what the machine has: text, text_lm and retrieval read Debian's fortune
 *     databases at run time (package `fortunes`, /usr/share/games/fortunes/<category>, fortunes
 *     separated by lines "%"; we never ship the corpus); pathfinder and selective_copy are generated;
 *   - readers of the real LRA files for users who have them (option path): lra_text (IMDB, aclImdb
 *     layout), lra_retrieval (AAN, new_aan_pairs.*.tsv), lra_image (CIFAR-10 binary batches, made
 *     grayscale as LRA does), lra_pathfinder (pathfinder32/64/128: metadata/<k>.npy text + imgs/<k>/<name>.png).
 *
 * Byte-level tasks share one vocabulary (PARE_BYTE_VOCAB = 259): 0 <pad>, 1 <cls>, 2 <sep>, and byte b
 * as PARE_BYTE_0 + b. Pixel tasks: 0 <pad>, 1 <cls>, and intensity level l as PARE_PIXEL_0 + l.
 *
 *     pare_docs d = {0};
 *     PARE_TRY(pare_fortunes_read(&d, PARE_FORTUNE_DIR, "computers,politics", "text"));
 *     // d.n fortunes, d.label[i] in [0, 2), bytes d.bytes[d.start[i] .. d.start[i+1])
 *     pare_docs_free(&d);
 *
 * This header is the engine's interface for the task files (text.c, text_lm.c, retrieval.c,
 * pathfinder.c, selective_copy.c, lra_*.c) and for tests; the tasks themselves are reached through
 * the registry (data/task.h). It does not download anything: LRA's files are read where the user
 * unpacked them.
 */
#ifndef PARE_LRA_FILES_H
#define PARE_LRA_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/rng.h"
#include "data/task.h"

/* Byte-level token ids (stable). */
enum pare_byte_token {
    PARE_BYTE_PAD = 0,
    PARE_BYTE_CLS = 1,
    PARE_BYTE_SEP = 2,
    PARE_BYTE_0 = 3,
    PARE_BYTE_VOCAB = 259
};
/* Pixel token ids: level l in [0, levels) is PARE_PIXEL_0 + l; vocab = PARE_PIXEL_0 + levels. */
enum pare_pixel_token { PARE_PIXEL_PAD = 0, PARE_PIXEL_CLS = 1, PARE_PIXEL_0 = 2 };

#define PARE_FORTUNE_DIR "/usr/share/games/fortunes"

/* A list of byte documents, each with a class. */
/* A growable byte buffer (s allocated with pare_alloc; free with pare_free(b.s)). */
typedef struct pare_sbuf {
    char *s;
    size_t n, cap;
} pare_sbuf;

/* Read one line (without its '\n' and a trailing '\r', NUL-terminated) into b, for every reader of
 * line-oriented files (LRA's .tsv, metadata). 1 = a line, 0 = end of file, -1 = longer than max bytes,
 * -2 = out of memory, -3 = a NUL byte (only when reject_nul). */
int pare_read_line(FILE *f, pare_sbuf *b, int64_t max, int reject_nul);

typedef struct pare_docs {
    char *bytes;            /* all documents, concatenated (not NUL-separated) */
    int64_t *start;         /* (n + 1) offsets into bytes */
    int32_t *label;         /* (n) class of each document */
    int64_t n, cap;         /* documents, allocated slots */
    size_t nbytes, bytes_cap;
    int32_t nclass;         /* classes named in class_name */
    char (*class_name)[64]; /* (nclass) */
} pare_docs;

/* Append one document (copies s[0..len)). PARE_ENOMEM on failure. */
pare_status pare_docs_add(pare_docs *d, const char *s, size_t len, int32_t label);
/* Free and zero; safe twice. */
void pare_docs_free(pare_docs *d);

/* Read the fortunes of `categories` ("a,b,c", or "all" for every category in dir, sorted by name)
 * from dir; label = the category's index in the list. Each fortune is the text between lines "%",
 * without leading and trailing blank lines; empty ones are dropped. Duplicates are removed: a text
 * repeated within one category is kept once, a text found in two or more of the chosen categories is
 * dropped (its label would be ambiguous). `task` prefixes the messages. Errors: PARE_EIO when dir is
 * missing (naming it and `apt-get install fortunes`), PARE_EINVAL for an unknown category (listing the
 * available ones) or a category name with '/', PARE_EFORMAT when a category has no fortune. */
pare_status pare_fortunes_read(pare_docs *d, const char *dir, const char *categories, const char *task);
/* The categories in dir (regular files, not *.dat / *.u8, sorted), as "a, b, c" into buf. */
pare_status pare_fortune_categories(char *buf, size_t cap, const char *dir);

/* Split the documents of each class: cls_test[c] and cls_train[c] documents of class c, chosen by a
 * shuffle of that class drawn from r (the test ones first, so the test split does not depend on the
 * train sizes). On return test_idx (sum cls_test) and train_idx (sum cls_train) hold document indices
 * grouped by class (class c from test_start[c], c in [0, nclass]; test_start has nclass + 1 slots,
 * idem train_start). The caller checks the counts fit (PARE_EINVAL otherwise); free with pare_free. */
pare_status pare_docs_partition(int64_t **test_idx, int64_t *test_start, int64_t **train_idx, int64_t *train_start,
                                const pare_docs *d, const int64_t *cls_test, const int64_t *cls_train, pare_rng *r);
/* Balanced per-class split sizes over the smallest class (m documents): the test split takes n_test
 * documents (0: floor(test_frac * m), at least 1, per class) spread over the classes as evenly as
 * possible (the first n_test % nclass classes one more); the train split n_train likewise (0: all
 * that remain of m per class). PARE_EINVAL naming the smallest category when they do not fit. */
pare_status pare_docs_balance(int64_t *cls_test, int64_t *cls_train, const pare_docs *d, int64_t n_train,
                              int64_t n_test, double test_frac, const char *task);
/* Documents per class, into count (nclass). */
void pare_docs_count(int64_t *count, const pare_docs *d);

/* Vocabulary names: bytes as themselves when printable, else <sp>, \n, \t, \xNN. */
pare_status pare_byte_vocab(pare_dataset *d);
/* <pad>, <cls>, p0 .. p{levels-1}. */
pare_status pare_pixel_vocab(pare_dataset *d, int levels);
/* Shuffle x[0..n) in place (Fisher-Yates). */
void pare_shuffle_i64(int64_t *x, pare_rng *r, int64_t n);

/* LRA's grayscale: tf.image.rgb_to_grayscale on uint8 (weights 0.2989, 0.5870, 0.1140 in float32 on
 * values / 255, then back to uint8 by truncating x * 255.5). */
uint8_t pare_gray_tf(uint8_t r, uint8_t g, uint8_t b);

/* Decode a PNG (any bit depth / color type) into 8-bit gray, *pixels (height, width) row-major, freed
 * with pare_free. Gray files are read as they are; color files go through pare_gray_tf.
 * PARE_EIO if unreadable, PARE_EFORMAT (with libpng's reason) if not a valid PNG. */
pare_status pare_png_read_gray(uint8_t **pixels, int *width, int *height, const char *path);

/* CIFAR-10 binary record: 1 label byte, then 1024 red, 1024 green, 1024 blue bytes (row-major 32x32). */
#define PARE_CIFAR_RECORD 3073

/* Byte rows. pare_bytes_len: the length of <cls> s (at most max_len tokens in all);
 * pare_bytes_encode writes that row and returns its length. */
int64_t pare_bytes_len(size_t len, int64_t max_len);
int64_t pare_bytes_encode(int32_t *row, const char *s, size_t len, int64_t max_len);
/* Pair rows <cls> a[:h] <sep> b[:h], h = (max_len - 2) / 2 (so at most max_len tokens). */
int64_t pare_pair_len(size_t la, size_t lb, int64_t max_len);
int64_t pare_pair_encode(int32_t *row, const char *a, size_t la, const char *b, size_t lb, int64_t max_len);

/* A CLASSIFY byte dataset "<task>/<split>" of documents idx[0..n) (idx NULL: 0..n-1) as <cls> bytes
 * rows of at most max_len tokens, padded to T; labels from docs, nclass = docs->nclass. */
pare_status pare_docs_pack(pare_dataset *d, const char *task, const char *split, const pare_docs *docs,
                           const int64_t *idx, int64_t n, int64_t max_len, int64_t T);
/* The longest such row. */
int64_t pare_docs_longest(const pare_docs *docs, const int64_t *idx, int64_t n, int64_t max_len);

/* Document i of d as (pointer, length). */
static inline const char *pare_docs_at(const pare_docs *d, int64_t i, size_t *len)
{
    *len = (size_t)(d->start[i + 1] - d->start[i]);
    return d->bytes + d->start[i];
}

#endif
