/* tokenizer.h — WordPiece (BERT) and byte-level BPE (GPT-2, RoBERTa) tokenizers, compatible with
 * Hugging Face's vocabulary files, and training either vocabulary from a corpus.
 *
 * One type, pare_tokenizer, of kind WORDPIECE or BPE:
 *   - WordPiece reads BERT's vocab.txt (one token per line, id = line number - 1). Text goes through
 *     BERT's basic tokenizer (drop control characters, whitespace to ' ', spaces around CJK
 *     ideographs, lower case and NFD accent stripping, split on whitespace and punctuation), then
 *     greedy longest-match-first WordPiece with "##" continuations; a word longer than
 *     max_input_chars_per_word (100) or with no match becomes [UNK].
 *   - BPE reads GPT-2/RoBERTa's vocab.json (token -> id) and merges.txt (one "a b" merge per line,
 *     by rank). Text is split by GPT-2's pre-tokenization pattern, each piece's bytes are mapped to
 *     GPT-2's printable byte alphabet and merged by rank. decode(encode(x)) == x for any bytes.
 * The style decides the special tokens and the pair layout: BERT "[CLS] a [SEP] b [SEP]" (types 0
 * then 1), RoBERTa "<s> a </s></s> b </s>" (types 0), GPT-2 "a b" (no special tokens; types 0 then 1).
 * AUTO picks it from the vocabulary: WordPiece -> BERT; BPE with <s> and </s> -> RoBERTa, else GPT-2.
 * Special-token strings that appear in the input text are recognised as those tokens.
 * docs/tokenizers.md lists what matches Hugging Face exactly and what does not.
 *
 *     pare_tokenizer t;
 *     PARE_TRY(pare_tokenizer_load(&t, "data/bert-tiny"));          // vocab.txt or vocab.json+merges.txt
 *     pare_encode_opts eo = pare_encode_defaults();
 *     eo.max_length = 128, eo.truncation = 1, eo.padding = 1;
 *     pare_encoding e;
 *     if (pare_tokenizer_encode(&t, &e, "a question", -1, "its context", -1, &eo) == PARE_OK) {
 *         ... e.ids[0..e.n), e.types, e.mask; e.length tokens before the padding
 *         pare_encoding_free(&e);
 *     }
 *     pare_tokenizer_free(&t);
 *
 * Training (pare_tokenizer_train): byte-level BPE as GPT-2 (frequency of adjacent pairs over the
 * pre-tokenized words; ties to the smaller pair of ids), or WordPiece as Hugging Face's
 * WordPieceTrainer does it (the same frequency merges over BERT-pre-tokenized words whose non-initial
 * characters carry "##"; not the likelihood score of Google's original). Deterministic.
 *
 * Not thread-safe per object: BPE encoding fills a per-tokenizer cache. Use one tokenizer per thread.
 * Not here: SentencePiece/Unigram, added tokens beyond the special ones, offsets mapping, batch
 * encoding (call encode per example), left padding/truncation.
 */
#ifndef PARE_TEXT_TOKENIZER_H
#define PARE_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum pare_tok_kind { PARE_TOK_WORDPIECE, PARE_TOK_BPE, PARE_TOK_KIND_COUNT } pare_tok_kind;
typedef enum pare_tok_style {
    PARE_TOK_STYLE_AUTO, /* from the vocabulary (see above) */
    PARE_TOK_STYLE_BERT,
    PARE_TOK_STYLE_GPT2,
    PARE_TOK_STYLE_ROBERTA,
    PARE_TOK_STYLE_COUNT
} pare_tok_style;

/* Names for messages and options: "wordpiece"/"bpe", "auto"/"bert"/"gpt2"/"roberta". */
extern const char *const pare_tok_kind_names[PARE_TOK_KIND_COUNT];
extern const char *const pare_tok_style_names[PARE_TOK_STYLE_COUNT];

/* BERT basic-tokenizer options; defaults are HF BertTokenizer's. */
typedef struct pare_wordpiece_opts {
    int do_lower_case;            /* 1 */
    int strip_accents;            /* -1: follow do_lower_case (HF strip_accents=None); 0 or 1 */
    int tokenize_chinese_chars;   /* 1 */
    int max_input_chars_per_word; /* 100: longer words become [UNK] */
    pare_tok_style style;         /* AUTO (= BERT for WordPiece) */
} pare_wordpiece_opts;
pare_wordpiece_opts pare_wordpiece_defaults(void);

typedef struct pare_tokenizer_impl pare_tokenizer_impl;
typedef struct pare_tokenizer {
    pare_tok_kind kind;
    pare_tok_style style;   /* resolved: never AUTO */
    int32_t vocab_size;     /* 1 + the largest id */
    pare_wordpiece_opts wp; /* WordPiece options (kept for save) */
    /* special token ids, -1 when the vocabulary lacks them. BERT: cls, sep, pad, unk, mask. RoBERTa:
     * cls = bos = <s>, sep = eos = </s>, pad = <pad>, unk = <unk>, mask = <mask>. GPT-2: bos = eos =
     * unk = <|endoftext|>. */
    int32_t cls, sep, pad, unk, mask, bos, eos;
    pare_tokenizer_impl *impl;
} pare_tokenizer;

/* Load BERT's vocab.txt (o NULL: defaults). Errors name the file and line (duplicate tokens). */
pare_status pare_tokenizer_load_wordpiece(pare_tokenizer *t, const char *vocab_txt, const pare_wordpiece_opts *o);
/* Load vocab.json + merges.txt. style AUTO picks GPT-2 or RoBERTa from the vocabulary. Every one of
 * the 256 byte symbols must be in the vocabulary (true of GPT-2 and RoBERTa), and both parts and the
 * result of every merge; errors name the file and line. */
pare_status pare_tokenizer_load_bpe(pare_tokenizer *t, const char *vocab_json, const char *merges_txt,
                                    pare_tok_style style);
/* Load a Hugging Face model directory: vocab.txt (WordPiece) or vocab.json + merges.txt (BPE);
 * tokenizer_config.json, if present, sets do_lower_case and strip_accents. */
pare_status pare_tokenizer_load(pare_tokenizer *t, const char *dir);
/* Write the files load reads (vocab.txt, or vocab.json + merges.txt; and tokenizer_config.json)
 * into dir, which is created if missing. The other kind's vocabulary files in dir are removed (a
 * directory holding both is refused by pare_tokenizer_load). */
pare_status pare_tokenizer_save(const pare_tokenizer *t, const char *dir);
void pare_tokenizer_free(pare_tokenizer *t); /* safe twice and on a zeroed struct */

/* Token text of id (NULL if none), id of a token (-1 if none). */
const char *pare_tokenizer_token(const pare_tokenizer *t, int32_t id);
int32_t pare_tokenizer_id(const pare_tokenizer *t, const char *token);

/* The tokens of text[0..n) without special tokens or truncation (n < 0: strlen). *ids is allocated
 * with malloc (free() it); NULL when *n_ids is 0. */
pare_status pare_tokenizer_tokenize(pare_tokenizer *t, int32_t **ids, int64_t *n_ids, const char *text, int64_t n);

typedef struct pare_encode_opts {
    int64_t max_length;     /* 0: none. With truncation and/or padding, the final length incl. specials */
    int truncation;         /* 1: cut to max_length, longest sequence first for pairs (HF longest_first) */
    int padding;            /* 1: pad with the pad token to max_length (HF padding="max_length") */
    int add_special_tokens; /* 1 */
} pare_encode_opts;
pare_encode_opts pare_encode_defaults(void); /* {0, 0, 0, 1} */

typedef struct pare_encoding {
    int32_t *ids;   /* (n) token ids */
    int32_t *types; /* (n) token type (segment) ids */
    int32_t *mask;  /* (n) 1 for tokens, 0 for padding */
    int64_t n;      /* entries, padding included */
    int64_t length; /* tokens before the padding */
} pare_encoding;

/* Encode a text (b NULL) or a pair. na/nb < 0: strlen. Errors: max_length smaller than the special
 * tokens need, padding without a pad token, a style's special token missing from the vocabulary. */
pare_status pare_tokenizer_encode(pare_tokenizer *t, pare_encoding *e, const char *a, int64_t na, const char *b,
                                  int64_t nb, const pare_encode_opts *o);
void pare_encoding_free(pare_encoding *e);

/* ids back to text (malloc'd, NUL-terminated, *n bytes without the NUL). WordPiece joins tokens
 * with spaces, glues "##" pieces and applies HF's clean_up_tokenization_spaces; BPE maps the
 * byte alphabet back to the exact bytes. skip_special drops special tokens. Unknown ids are an error. */
pare_status pare_tokenizer_decode(const pare_tokenizer *t, char **text, size_t *n, const int32_t *ids, int64_t n_ids,
                                  int skip_special);

typedef struct pare_train_opts {
    pare_tok_kind kind;
    int32_t vocab_size;    /* target size incl. special tokens and the initial alphabet */
    int64_t min_frequency; /* stop when the best pair occurs fewer times (default 2) */
    pare_wordpiece_opts wp;   /* WordPiece: the basic tokenizer used on the corpus (and kept) */
    pare_tok_style style;     /* BPE: GPT2 (special <|endoftext|>) or ROBERTA (<s> <pad> </s> <unk> <mask>) */
    void (*progress)(void *ctx, int32_t size, int32_t target); /* optional, called every 1000 merges */
    void *progress_ctx;
} pare_train_opts;
pare_train_opts pare_train_defaults(pare_tok_kind kind);

/* Train from text lines: files[0..nfiles) read whole, then text[0..ntext) (either may be empty).
 * The result is a ready tokenizer (save it with pare_tokenizer_save). Its size is vocab_size unless
 * the corpus runs out of pairs occurring min_frequency times. */
pare_status pare_tokenizer_train(pare_tokenizer *t, const pare_train_opts *o, const char *const *files, int nfiles,
                                 const char *text, int64_t ntext);

/* The tokenizer as the encoder the text tasks take (data/text_encoder.h; text_encoder_adapter.c): rows
 * truncated longest-first to the task's max_len, token types for pairs, and the cls/sep/mask ids the
 * pretraining tasks need. A GPT-2-style BPE (no pad token, <|endoftext|> at id 0, which text never encodes to)
 * is accepted: rows are padded with 0, which the lengths mask. PARE_EINVAL when its pad id is not 0
 * (pare's datasets pad with 0). The encoder borrows t: keep t alive while it is used. */
struct pare_text_encoder;
pare_status pare_tokenizer_text_encoder(struct pare_text_encoder *out, pare_tokenizer *t);

#endif
