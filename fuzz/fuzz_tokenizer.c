/* fuzz_tokenizer.c — the tokenizers (src/text): vocabulary files, arbitrary text, training.
 *
 * The first byte picks what the rest is: a vocab.txt, a vocab.json + merges.txt (split at the first
 * "\n##\n"), or a training corpus. Whatever loads must tokenize (WordPiece may fail only when its
 * vocabulary lacks [UNK]), encode (pair, truncated, padded where possible) and decode the input;
 * byte-level BPE must round-trip it exactly; a trained tokenizer must save and load back. */
#include <stdlib.h>

#include "fuzz_util.h"
#include "text/tokenizer.h"

static void exercise(pare_tokenizer *t, const uint8_t *data, size_t size)
{
    int32_t *ids;
    int64_t n;
    char *back;
    size_t bn;
    if (pare_tokenizer_tokenize(t, &ids, &n, (const char *)data, (int64_t)size) != PARE_OK) {
        FUZZ_ASSERT(t->kind == PARE_TOK_WORDPIECE && t->unk < 0); /* an unmatched word needs [UNK] */
        return;
    }
    for (int64_t i = 0; i < n; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < t->vocab_size && pare_tokenizer_token(t, ids[i]));
    FUZZ_ASSERT(pare_tokenizer_decode(t, &back, &bn, ids, n, 0) == PARE_OK);
    if (t->kind == PARE_TOK_BPE) FUZZ_ASSERT(bn == size && memcmp(back, data, size) == 0);
    free(ids), free(back);
    pare_encode_opts o = pare_encode_defaults();
    o.max_length = 9, o.truncation = 1, o.padding = t->pad >= 0;
    pare_encoding e;
    size_t half = size / 2;
    if (pare_tokenizer_encode(t, &e, (const char *)data, (int64_t)half, (const char *)data + half, (int64_t)(size - half), &o) ==
        PARE_OK) {
        FUZZ_ASSERT(e.length <= 9 && (!o.padding || e.n == 9));
        pare_encoding_free(&e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned mode = data[0] % 3;
    data++, size--;
    char p1[512], p2[512];
    pare_tokenizer t;
    if (mode == 0) {
        fuzz_write(fuzz_path(p1, sizeof p1, "vocab.txt"), data, size);
        if (pare_tokenizer_load_wordpiece(&t, p1, NULL) == PARE_OK) exercise(&t, data, size), pare_tokenizer_free(&t);
    } else if (mode == 1) {
        const uint8_t *sep = memmem(data, size, "\n##\n", 4);
        size_t a = sep ? (size_t)(sep - data) : size;
        fuzz_write(fuzz_path(p1, sizeof p1, "vocab.json"), data, a);
        fuzz_write(fuzz_path(p2, sizeof p2, "merges.txt"), sep ? sep + 4 : data, sep ? size - a - 4 : 0);
        if (pare_tokenizer_load_bpe(&t, p1, p2, PARE_TOK_STYLE_AUTO) == PARE_OK) exercise(&t, data, size), pare_tokenizer_free(&t);
    } else {
        pare_train_opts o = pare_train_defaults(size % 2 ? PARE_TOK_WORDPIECE : PARE_TOK_BPE);
        o.vocab_size = size % 2 ? 40 : 300;
        o.min_frequency = 1;
        if (pare_tokenizer_train(&t, &o, NULL, 0, (const char *)data, (int64_t)size) == PARE_OK) {
            exercise(&t, data, size);
            FUZZ_ASSERT(pare_tokenizer_save(&t, fuzz_path(p1, sizeof p1, "saved")) == PARE_OK);
            pare_tokenizer t2;
            FUZZ_ASSERT(pare_tokenizer_load(&t2, p1) == PARE_OK && t2.vocab_size == t.vocab_size);
            pare_tokenizer_free(&t2);
            pare_tokenizer_free(&t);
        }
    }
    return 0;
}
