/* text_internal.h — what the files of src/text share: hash maps, a growable buffer, the tokenizer's
 * private state, and the pre-tokenizers (BERT basic, GPT-2 pattern) used by both encoding and training.
 */
#ifndef PARE_TEXT_INTERNAL_H
#define PARE_TEXT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "text/tokenizer.h"

/* String -> int32 (open addressing, FNV-1a). Keys are copied; byte strings may hold NULs. */
typedef struct pare_strmap_entry { char *k; uint32_t n, h; int32_t v; } pare_strmap_entry;
typedef struct pare_strmap { pare_strmap_entry *e; size_t cap, count; } pare_strmap;
int pare_strmap_get(const pare_strmap *m, const char *k, size_t n, int32_t *v); /* 1 found, 0 not */
/* Insert (k, v): 0 inserted, 1 already there (value unchanged, *old set if non-NULL), -1 out of memory. */
int pare_strmap_put(pare_strmap *m, const char *k, size_t n, int32_t v, int32_t *old);
void pare_strmap_free(pare_strmap *m);

/* uint64 -> int32 (open addressing; the key UINT64_MAX is reserved). */
typedef struct pare_u64map { uint64_t *k; int32_t *v; size_t cap, count; } pare_u64map;
int pare_u64map_get(const pare_u64map *m, uint64_t k, int32_t *v);
int pare_u64map_put(pare_u64map *m, uint64_t k, int32_t v); /* 0 ok (inserted or replaced), -1 out of memory */
void pare_u64map_free(pare_u64map *m);

/* A growable byte buffer; err is sticky (set on a failed allocation). */
typedef struct pare_buf { char *p; size_t n, cap; int err; } pare_buf;
void pare_buf_add(pare_buf *b, const void *s, size_t n);
void pare_buf_addc(pare_buf *b, char c);
void pare_buf_free(pare_buf *b);

/* A whole file, NUL-terminated (malloc'd); the message names path and what the file is for. */
pare_status pare_text_read_file(const char *path, char **out, size_t *n, const char *what);

struct pare_tokenizer_impl {
    char **tok;          /* (vocab_size) token strings (NUL-terminated, malloc'd), NULL for unused ids */
    uint32_t *tok_len;   /* (vocab_size) their byte lengths */
    pare_strmap vocab;   /* token -> id */
    uint8_t *is_special; /* (vocab_size) 1 for the style's special tokens */
    int32_t specials[8]; /* the distinct special ids, longest text first (matched in input text) */
    int n_specials;
    /* BPE only */
    int32_t byte_id[256]; /* id of each byte's one-symbol token */
    pare_u64map merge;    /* (a << 32 | b) -> rank */
    int32_t *merge_a, *merge_b, *merge_to; /* (n_merges) by rank */
    int32_t n_merges;
    pare_strmap cache;    /* pre-token bytes -> offset in cache_ids: count, then the ids */
    int32_t *cache_ids;
    size_t cache_n, cache_cap;
};

/* Allocate impl and the id arrays for vocab_size ids. */
pare_status pare_tok_alloc(pare_tokenizer *t, int32_t vocab_size);
/* Set t->tok[id] = token (copied) and vocab[token] = id; the message names where (file:line). */
pare_status pare_tok_set(pare_tokenizer *t, int32_t id, const char *s, size_t n, const char *where);
/* Find the ids of the 256 byte symbols (BPE); the message names vocab_path and the missing byte. */
pare_status pare_tok_bytes(pare_tokenizer *t, const char *vocab_path);
/* Resolve style and special ids after the vocabulary is in place. */
pare_status pare_tok_finish(pare_tokenizer *t, pare_tok_style style);

/* GPT-2's byte <-> printable code point map (bytes_to_unicode in GPT-2's encoder.py). */
uint32_t pare_bpe_byte_cp(unsigned b);
int pare_bpe_cp_byte(uint32_t cp); /* -1 if cp is not one of the 256 */
/* Append the byte-level form (UTF-8 of the mapped code points) of s[0..n) to out. */
void pare_bpe_to_symbols(pare_buf *out, const char *s, size_t n);

/* Pre-tokenizers call emit(ctx, piece, n) for each piece in order; a non-zero return stops them. */
typedef int (*pare_piece_fn)(void *ctx, const char *s, size_t n);
/* GPT-2's pattern over raw bytes (invalid UTF-8 bytes count as "other" symbols). */
int pare_gpt2_split(const char *s, size_t n, pare_piece_fn emit, void *ctx);
/* BERT's basic tokenizer: the normalised words (lower-cased / accent-stripped per o), into a scratch buffer. */
int pare_bert_split(const char *s, size_t n, const pare_wordpiece_opts *o, pare_piece_fn emit, void *ctx);

/* Kind-specific tokenisation of a plain text segment (no special tokens in it). Append ids to out. */
typedef struct pare_idvec { int32_t *p; int64_t n, cap; int err; } pare_idvec;
void pare_idvec_push(pare_idvec *v, int32_t id);
pare_status pare_wordpiece_tokenize(const pare_tokenizer *t, pare_idvec *out, const char *s, size_t n);
pare_status pare_bpe_tokenize(pare_tokenizer *t, pare_idvec *out, const char *s, size_t n);

#endif
