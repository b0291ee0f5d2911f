/* corpus.h — an English pretraining corpus assembled from text every Debian machine with pare's test
 * packages has: the fortune databases (`fortunes`), the packages' copyright files and plain-text
 * READMEs under /usr/share/doc, and /usr/share/common-licenses. Read at build time, never shipped,
 * nothing downloaded.
 *
 *     pare_corpus_opts co = pare_corpus_defaults();
 *     pare_docs docs;  pare_corpus_stats st;
 *     PARE_TRY(pare_corpus_read(&docs, &co, &st));     // one document per fortune / file, deduplicated
 *     ... pare_docs_at(&docs, i, &len), docs.label[i] = the source (PARE_CORPUS_FORTUNES, ...)
 *     pare_docs_free(&docs);
 *
 * Sources (label = source index; `sources` picks a comma list of their names):
 *   fortunes   every fortune file in fortune_dir (sorted), one document per fortune (fortunes.c's reader:
 *              exact duplicates dropped);
 *   copyright  <doc_dir>/<package>/copyright, one document per file;
 *   readme     <doc_dir>/<package>/README* not compressed (README, README.md, README.txt, ...);
 *   licenses   every file of licenses_dir (the GPL, Apache, Artistic... texts).
 * Files are visited in byte order of their paths, so the corpus is the same on every run of a machine.
 *
 * Cleaning, per line (documents from files; fortunes are kept as they are): lines are trimmed; a line
 * "." (DEP-5's empty line) or an empty line ends a paragraph; a line is kept only if it looks like
 * English prose: at least min_words words of letters, letters and spaces at least 70% of its bytes,
 * no '@' and no "://" (addresses, URLs), and it is not a DEP-5 field ("Files:", "Copyright:",
 * "License:", ...: a first word of letters and '-' ending in ':'). Paragraphs are deduplicated over
 * the whole corpus by a 64-bit hash of their text with white space collapsed: the GPL's paragraphs
 * appear once however many copyright files quote them (the first file in path order keeps them). A
 * document left with fewer than min_bytes bytes is dropped. max_bytes > 0 stops after that many bytes
 * (for tests).
 *
 * Deliberately not here: gzip'd files (man pages, changelog.Debian.gz: pare links no zlib), sentence
 * splitting (documents keep their lines), tokenization (the tasks of lm_corpus.c).
 */
#ifndef PARE_DATA_CORPUS_H
#define PARE_DATA_CORPUS_H

#include "data/lra_files.h"

enum pare_corpus_source {
    PARE_CORPUS_FORTUNES,
    PARE_CORPUS_COPYRIGHT,
    PARE_CORPUS_README,
    PARE_CORPUS_LICENSES,
    PARE_CORPUS_SOURCE_COUNT
};
extern const char *const pare_corpus_source_names[PARE_CORPUS_SOURCE_COUNT];

typedef struct pare_corpus_opts {
    const char *sources;      /* "fortunes,copyright,readme,licenses" or "all" */
    const char *fortune_dir;  /* /usr/share/games/fortunes */
    const char *doc_dir;      /* /usr/share/doc */
    const char *licenses_dir; /* /usr/share/common-licenses */
    int min_words;            /* 4: a kept line has at least this many words */
    int64_t min_bytes;        /* 32: shorter documents are dropped */
    int64_t max_bytes;        /* 0: everything */
} pare_corpus_opts;
pare_corpus_opts pare_corpus_defaults(void);

typedef struct pare_corpus_stats {
    int64_t files[PARE_CORPUS_SOURCE_COUNT];     /* files read */
    int64_t raw_bytes[PARE_CORPUS_SOURCE_COUNT]; /* bytes read */
    int64_t docs[PARE_CORPUS_SOURCE_COUNT];      /* documents kept */
    int64_t bytes[PARE_CORPUS_SOURCE_COUNT];     /* bytes kept */
    int64_t dup_paragraphs;                      /* paragraphs dropped as repeats */
} pare_corpus_stats;

/* Read the corpus into *d (zeroed first; class_name = the source names). Errors: PARE_EINVAL for an
 * unknown source (listing the valid ones), PARE_EIO when the fortune directory is missing (the
 * apt-get line), PARE_EFORMAT when nothing is left. Missing doc or licenses directories give no
 * documents from those sources, not an error. */
pare_status pare_corpus_read(pare_docs *d, const pare_corpus_opts *o, pare_corpus_stats *stats);

/* The held-out split by document of the pretraining tasks: *order (n, pare_alloc'd) is a shuffle of
 * 0..n-1 by seed (the seed's stream 3, as the tasks' options give it), its first *n_test entries the
 * test documents: floor(test_frac * n), at least 1, at most n - 1 (n >= 2). */
pare_status pare_corpus_split(int64_t **order, int64_t *n_test, int64_t n, uint64_t seed, double test_frac);

#endif
