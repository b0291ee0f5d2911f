/* text_encoder_adapter.c — a WordPiece or BPE tokenizer (tokenizer.h) as the encoder the text tasks
 * take (data/text_encoder.h), so that GLUE-format and fortune tasks are tokenized exactly as the
 * pretrained model they feed expects. */
#include <string.h>

#include "data/text_encoder.h"
#include "text/tokenizer.h"

static pare_status encode(void *self, const char *a, const char *b, int64_t max_len, int32_t *ids, int32_t *types,
                          int64_t *len)
{
    pare_tokenizer *t = self;
    pare_encode_opts o = pare_encode_defaults();
    o.max_length = max_len, o.truncation = 1; /* longest first, as HF; rows are padded by the dataset */
    pare_encoding e;
    PARE_TRY(pare_tokenizer_encode(t, &e, a, -1, b, -1, &o));
    *len = e.length < max_len ? e.length : max_len;
    memcpy(ids, e.ids, sizeof *ids * (size_t)*len);
    memcpy(types, e.types, sizeof *types * (size_t)*len);
    pare_encoding_free(&e);
    return *len >= 1 ? PARE_OK : pare_fail(PARE_EINVAL, "the tokenizer made an empty row");
}

static const char *token_name(void *self, int32_t id) { return pare_tokenizer_token(self, id); }

pare_status pare_tokenizer_text_encoder(pare_text_encoder *out, pare_tokenizer *t)
{
    memset(out, 0, sizeof *out);
    /* GPT-2's vocabulary has no pad token and puts <|endoftext|> at id 0: ordinary text never encodes to
     * it (encode adds no special tokens in that style), so rows can be padded with 0, which the lengths mask */
    int gpt2_eot0 = t->pad < 0 && t->style == PARE_TOK_STYLE_GPT2 && t->eos == 0;
    if (t->pad != 0 && !gpt2_eot0)
        return pare_fail(PARE_EINVAL, "tokenizer: its pad id is %d; pare's datasets pad with id 0 (BERT-style WordPiece "
                         "vocabularies put [PAD] there; RoBERTa's is 1)", (int)t->pad);
    *out = (pare_text_encoder){.self = t, .encode = encode, .token_name = token_name, .vocab = (int32_t)t->vocab_size,
                               .pad_id = 0, .cls_id = t->cls > 0 ? t->cls : 0, .sep_id = t->sep > 0 ? t->sep : 0,
                               .mask_id = t->mask > 0 ? t->mask : 0};
    return PARE_OK;
}
