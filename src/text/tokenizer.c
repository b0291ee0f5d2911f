/* tokenizer.c — the pare_tokenizer object (tokenizer.h): loading and saving Hugging Face vocabulary
 * files, special tokens and the pair layouts, truncation, padding, decoding.
 *
 * The subword models live in wordpiece.c and bpe.c, the splitters in pretokenize.c, training in
 * train.c. Files are read whole; every format error names the file and, where there is one, the line.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text/text_internal.h"
#include "text/unicode.h"

const char *const pare_tok_kind_names[PARE_TOK_KIND_COUNT] = {"wordpiece", "bpe"};
const char *const pare_tok_style_names[PARE_TOK_STYLE_COUNT] = {"auto", "bert", "gpt2", "roberta"};

pare_wordpiece_opts pare_wordpiece_defaults(void) { return (pare_wordpiece_opts){1, -1, 1, 100, PARE_TOK_STYLE_AUTO}; }
pare_encode_opts pare_encode_defaults(void) { return (pare_encode_opts){0, 0, 0, 1}; }

/* ------------------------------------------------------------------------------------------------ */
/* the object */

pare_status pare_tok_alloc(pare_tokenizer *t, int32_t vocab_size)
{
    pare_tokenizer_impl *im = calloc(1, sizeof *im);
    t->impl = im;
    t->vocab_size = vocab_size;
    t->cls = t->sep = t->pad = t->unk = t->mask = t->bos = t->eos = -1;
    size_t n = vocab_size > 0 ? (size_t)vocab_size : 1;
    if (im) {
        im->tok = calloc(n, sizeof *im->tok), im->tok_len = calloc(n, sizeof *im->tok_len);
        im->is_special = calloc(n, 1);
    }
    if (!im || !im->tok || !im->tok_len || !im->is_special) return pare_fail(PARE_ENOMEM, "tokenizer: out of memory");
    return PARE_OK;
}

void pare_tokenizer_free(pare_tokenizer *t)
{
    if (!t || !t->impl) return;
    pare_tokenizer_impl *im = t->impl;
    for (int32_t i = 0; i < t->vocab_size; i++) free(im->tok[i]);
    free(im->tok), free(im->tok_len), free(im->is_special);
    pare_strmap_free(&im->vocab), pare_strmap_free(&im->cache);
    pare_u64map_free(&im->merge);
    free(im->merge_a), free(im->merge_b), free(im->merge_to), free(im->cache_ids);
    free(im);
    t->impl = NULL;
}

pare_status pare_tok_set(pare_tokenizer *t, int32_t id, const char *s, size_t n, const char *where)
{
    pare_tokenizer_impl *im = t->impl;
    int32_t old;
    int r = pare_strmap_put(&im->vocab, s, n, id, &old);
    if (r < 0) return pare_fail(PARE_ENOMEM, "%s: out of memory", where);
    if (r == 1) return pare_fail(PARE_EFORMAT, "%s: duplicate token '%.*s' (also id %d)", where, (int)n, s, (int)old);
    if (im->tok[id]) return pare_fail(PARE_EFORMAT, "%s: id %d given to '%.*s' and to '%s'", where, (int)id, (int)n, s, im->tok[id]);
    if (!(im->tok[id] = malloc(n + 1))) return pare_fail(PARE_ENOMEM, "%s: out of memory", where);
    memcpy(im->tok[id], s, n), im->tok[id][n] = 0, im->tok_len[id] = (uint32_t)n;
    return PARE_OK;
}

const char *pare_tokenizer_token(const pare_tokenizer *t, int32_t id)
{
    return t->impl && id >= 0 && id < t->vocab_size ? t->impl->tok[id] : NULL;
}

int32_t pare_tokenizer_id(const pare_tokenizer *t, const char *token)
{
    int32_t id;
    return t->impl && pare_strmap_get(&t->impl->vocab, token, strlen(token), &id) ? id : -1;
}

static void add_special(pare_tokenizer *t, int32_t id)
{
    pare_tokenizer_impl *im = t->impl;
    if (id < 0 || im->is_special[id]) return;
    im->is_special[id] = 1;
    int k = im->n_specials++; /* insertion sort, longest text first: "</s>" must win over a prefix of it */
    while (k > 0 && im->tok_len[im->specials[k - 1]] < im->tok_len[id]) im->specials[k] = im->specials[k - 1], k--;
    im->specials[k] = id;
}

pare_status pare_tok_finish(pare_tokenizer *t, pare_tok_style style)
{
    if (style == PARE_TOK_STYLE_AUTO)
        style = t->kind == PARE_TOK_WORDPIECE                                                       ? PARE_TOK_STYLE_BERT
                : pare_tokenizer_id(t, "<s>") >= 0 && pare_tokenizer_id(t, "</s>") >= 0 ? PARE_TOK_STYLE_ROBERTA
                                                                                            : PARE_TOK_STYLE_GPT2;
    t->style = style;
    if (style == PARE_TOK_STYLE_BERT) {
        t->cls = pare_tokenizer_id(t, "[CLS]"), t->sep = pare_tokenizer_id(t, "[SEP]"), t->pad = pare_tokenizer_id(t, "[PAD]");
        t->unk = pare_tokenizer_id(t, "[UNK]"), t->mask = pare_tokenizer_id(t, "[MASK]");
    } else if (style == PARE_TOK_STYLE_ROBERTA) {
        t->cls = t->bos = pare_tokenizer_id(t, "<s>"), t->sep = t->eos = pare_tokenizer_id(t, "</s>");
        t->pad = pare_tokenizer_id(t, "<pad>"), t->unk = pare_tokenizer_id(t, "<unk>"), t->mask = pare_tokenizer_id(t, "<mask>");
    } else {
        t->bos = t->eos = t->unk = pare_tokenizer_id(t, "<|endoftext|>");
    }
    int32_t ids[] = {t->cls, t->sep, t->pad, t->unk, t->mask, t->bos, t->eos};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) add_special(t, ids[i]);
    return PARE_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* loading */

/* Next line of buf[*pos..n) without its "\n" or "\r\n"; 0 at the end. */
static int next_line(const char *buf, size_t n, size_t *pos, const char **line, size_t *len)
{
    if (*pos >= n) return 0;
    const char *s = buf + *pos, *e = memchr(s, '\n', n - *pos);
    size_t l = e ? (size_t)(e - s) : n - *pos;
    *pos += l + (e != NULL);
    if (l && s[l - 1] == '\r') l--;
    *line = s, *len = l;
    return 1;
}

pare_status pare_tokenizer_load_wordpiece(pare_tokenizer *t, const char *vocab_txt, const pare_wordpiece_opts *o)
{
    memset(t, 0, sizeof *t);
    t->kind = PARE_TOK_WORDPIECE;
    t->wp = o ? *o : pare_wordpiece_defaults();
    if (t->wp.max_input_chars_per_word < 1)
        return pare_fail(PARE_EINVAL, "%s: max_input_chars_per_word=%d must be >= 1", vocab_txt, t->wp.max_input_chars_per_word);
    char *buf;
    size_t n, pos = 0, len;
    const char *line;
    PARE_TRY(pare_text_read_file(vocab_txt, &buf, &n, "the WordPiece vocabulary"));
    int32_t lines = 0;
    while (next_line(buf, n, &pos, &line, &len)) lines++;
    pare_status st = lines ? pare_tok_alloc(t, lines) : pare_fail(PARE_EFORMAT, "%s: empty vocabulary", vocab_txt);
    char where[4200];
    pos = 0;
    for (int32_t id = 0; st == PARE_OK && next_line(buf, n, &pos, &line, &len); id++) {
        snprintf(where, sizeof where, "%s:%d", vocab_txt, (int)id + 1);
        if (memchr(line, 0, len)) st = pare_fail(PARE_EFORMAT, "%s: NUL byte in a token", where);
        else st = pare_tok_set(t, id, line, len, where);
    }
    free(buf);
    if (st == PARE_OK) st = pare_tok_finish(t, t->wp.style == PARE_TOK_STYLE_AUTO ? PARE_TOK_STYLE_BERT : t->wp.style);
    if (st == PARE_OK && t->style != PARE_TOK_STYLE_BERT)
        st = pare_fail(PARE_EINVAL, "%s: style '%s' is for BPE vocabularies; WordPiece takes 'bert' (or 'auto')", vocab_txt,
                       pare_tok_style_names[t->style]);
    if (st != PARE_OK) pare_tokenizer_free(t);
    return st;
}

static int json_line(const char *buf, const char *at)
{
    int l = 1;
    for (const char *p = buf; p < at && *p; p++) l += *p == '\n';
    return l;
}

static pare_status load_vocab_json(pare_tokenizer *t, const char *path)
{
    char *buf;
    size_t n;
    PARE_TRY(pare_text_read_file(path, &buf, &n, "the BPE vocabulary"));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(buf, &end, 1);
    pare_status st = PARE_OK;
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        st = pare_fail(PARE_EFORMAT, "%s:%d: malformed JSON", path, json_line(buf, e ? e : buf + n));
    } else if (!cJSON_IsObject(root)) {
        st = pare_fail(PARE_EFORMAT, "%s: expected a JSON object {\"token\": id, ...}", path);
    }
    int32_t max_id = -1;
    for (cJSON *c = root && st == PARE_OK ? root->child : NULL; c && st == PARE_OK; c = c->next) {
        double v = cJSON_IsNumber(c) ? c->valuedouble : -1;
        if (!cJSON_IsNumber(c) || v < 0 || v > 2147483646.0 || v != (double)(int32_t)v)
            st = pare_fail(PARE_EFORMAT, "%s: token '%s': id must be an integer in [0, 2^31), not %s", path, c->string,
                           cJSON_IsNumber(c) ? "that number" : "a non-number");
        else if ((int32_t)v > max_id) max_id = (int32_t)v;
    }
    if (st == PARE_OK && max_id < 0) st = pare_fail(PARE_EFORMAT, "%s: empty vocabulary", path);
    int count = cJSON_GetArraySize(root);
    /* ids index arrays of size largest + 1: refuse a file whose few ids would make them huge */
    if (st == PARE_OK && (int64_t)max_id >= 8 * (int64_t)count + 1024)
        st = pare_fail(PARE_EFORMAT, "%s: ids are sparse: the largest is %d for %d tokens", path, (int)max_id, count);
    if (st == PARE_OK) st = pare_tok_alloc(t, max_id + 1);
    char where[4200];
    snprintf(where, sizeof where, "%s", path);
    for (cJSON *c = st == PARE_OK ? root->child : NULL; c && st == PARE_OK; c = c->next)
        st = pare_tok_set(t, (int32_t)c->valuedouble, c->string, strlen(c->string), where);
    cJSON_Delete(root);
    free(buf);
    return st;
}

static pare_status load_merges(pare_tokenizer *t, const char *path, const char *vocab_path)
{
    pare_tokenizer_impl *im = t->impl;
    char *buf;
    size_t n, pos = 0, len;
    const char *line;
    PARE_TRY(pare_text_read_file(path, &buf, &n, "the BPE merges"));
    int32_t lines = 0;
    while (next_line(buf, n, &pos, &line, &len)) lines++;
    im->merge_a = malloc(((size_t)lines + 1) * sizeof(int32_t)), im->merge_b = malloc(((size_t)lines + 1) * sizeof(int32_t));
    im->merge_to = malloc(((size_t)lines + 1) * sizeof(int32_t));
    pare_status st = im->merge_a && im->merge_b && im->merge_to ? PARE_OK : pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    pare_buf cat = {0};
    pos = 0;
    for (int32_t ln = 1; st == PARE_OK && next_line(buf, n, &pos, &line, &len); ln++) {
        if (ln == 1 && len >= 8 && memcmp(line, "#version", 8) == 0) continue;
        if (len == 0) continue; /* a trailing empty line */
        const char *sp = memchr(line, ' ', len);
        if (!sp || sp == line || sp == line + len - 1 || memchr(sp + 1, ' ', (size_t)(line + len - sp - 1))) {
            st = pare_fail(PARE_EFORMAT, "%s:%d: expected two tokens separated by one space, got '%.*s'", path, (int)ln,
                           (int)(len > 60 ? 60 : len), line);
            break;
        }
        size_t la = (size_t)(sp - line), lb = len - la - 1;
        int32_t a, b, to, prev;
        cat.n = 0;
        pare_buf_add(&cat, line, la), pare_buf_add(&cat, sp + 1, lb);
        if (cat.err) st = pare_fail(PARE_ENOMEM, "%s: out of memory", path);
        else if (!pare_strmap_get(&im->vocab, line, la, &a))
            st = pare_fail(PARE_EFORMAT, "%s:%d: token '%.*s' is not in %s", path, (int)ln, (int)la, line, vocab_path);
        else if (!pare_strmap_get(&im->vocab, sp + 1, lb, &b))
            st = pare_fail(PARE_EFORMAT, "%s:%d: token '%.*s' is not in %s", path, (int)ln, (int)lb, sp + 1, vocab_path);
        else if (!pare_strmap_get(&im->vocab, cat.p, cat.n, &to))
            st = pare_fail(PARE_EFORMAT, "%s:%d: the merged token '%s' is not in %s", path, (int)ln, cat.p, vocab_path);
        else if (pare_u64map_get(&im->merge, (uint64_t)(uint32_t)a << 32 | (uint32_t)b, &prev))
            st = pare_fail(PARE_EFORMAT, "%s:%d: duplicate merge '%.*s' (also rank %d)", path, (int)ln, (int)len, line, (int)prev);
        else {
            int32_t r = im->n_merges++;
            im->merge_a[r] = a, im->merge_b[r] = b, im->merge_to[r] = to;
            if (pare_u64map_put(&im->merge, (uint64_t)(uint32_t)a << 32 | (uint32_t)b, r))
                st = pare_fail(PARE_ENOMEM, "%s: out of memory", path);
        }
    }
    pare_buf_free(&cat);
    free(buf);
    return st;
}

pare_status pare_tok_bytes(pare_tokenizer *t, const char *vocab_path)
{
    for (unsigned b = 0; b < 256; b++) {
        char u[4];
        int k = pare_utf8_encode(pare_bpe_byte_cp(b), u);
        if (!pare_strmap_get(&t->impl->vocab, u, (size_t)k, &t->impl->byte_id[b]))
            return pare_fail(PARE_EFORMAT, "%s: byte-level BPE needs all 256 byte symbols; '%.*s' (byte 0x%02X) is missing",
                             vocab_path, k, u, b);
    }
    return PARE_OK;
}

pare_status pare_tokenizer_load_bpe(pare_tokenizer *t, const char *vocab_json, const char *merges_txt, pare_tok_style style)
{
    memset(t, 0, sizeof *t);
    t->kind = PARE_TOK_BPE;
    t->wp = pare_wordpiece_defaults();
    pare_status st = style == PARE_TOK_STYLE_BERT ? pare_fail(PARE_EINVAL, "%s: style 'bert' is for WordPiece; BPE takes "
                                                                           "auto, gpt2 or roberta", vocab_json)
                                                  : load_vocab_json(t, vocab_json);
    if (st == PARE_OK) st = pare_tok_bytes(t, vocab_json);
    if (st == PARE_OK) st = load_merges(t, merges_txt, vocab_json);
    if (st == PARE_OK) st = pare_tok_finish(t, style);
    if (st != PARE_OK) pare_tokenizer_free(t);
    return st;
}

static int file_exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode);
}

pare_status pare_tokenizer_load(pare_tokenizer *t, const char *dir)
{
    char p1[4200], p2[4200], pc[4200];
    memset(t, 0, sizeof *t);
    snprintf(pc, sizeof pc, "%s/tokenizer_config.json", dir);
    pare_wordpiece_opts o = pare_wordpiece_defaults();
    pare_tok_style style = PARE_TOK_STYLE_AUTO;
    if (file_exists(pc)) {
        char *buf;
        size_t n;
        PARE_TRY(pare_text_read_file(pc, &buf, &n, "the tokenizer configuration"));
        cJSON *root = cJSON_Parse(buf), *v;
        free(buf);
        if (!cJSON_IsObject(root)) return cJSON_Delete(root), pare_fail(PARE_EFORMAT, "%s: malformed JSON (expected an object)", pc);
        if ((v = cJSON_GetObjectItemCaseSensitive(root, "do_lower_case")) && cJSON_IsBool(v)) o.do_lower_case = cJSON_IsTrue(v);
        if ((v = cJSON_GetObjectItemCaseSensitive(root, "strip_accents")) && cJSON_IsBool(v)) o.strip_accents = cJSON_IsTrue(v);
        if ((v = cJSON_GetObjectItemCaseSensitive(root, "tokenize_chinese_chars")) && cJSON_IsBool(v))
            o.tokenize_chinese_chars = cJSON_IsTrue(v);
        if ((v = cJSON_GetObjectItemCaseSensitive(root, "tokenizer_class")) && cJSON_IsString(v)) {
            if (strstr(v->valuestring, "Roberta")) style = PARE_TOK_STYLE_ROBERTA;
            else if (strstr(v->valuestring, "GPT2")) style = PARE_TOK_STYLE_GPT2;
        }
        cJSON_Delete(root);
    }
    char pt[4200];
    snprintf(pt, sizeof pt, "%s/vocab.txt", dir);
    snprintf(p1, sizeof p1, "%s/vocab.json", dir);
    snprintf(p2, sizeof p2, "%s/merges.txt", dir);
    int wp = file_exists(pt), bpe = file_exists(p1) && file_exists(p2);
    if (wp && bpe) /* HF would pick by the model's config; a directory is for one tokenizer here */
        return pare_fail(PARE_EINVAL, "%s: holds both vocab.txt (WordPiece) and vocab.json + merges.txt (BPE); load one with "
                                      "pare_tokenizer_load_wordpiece or pare_tokenizer_load_bpe", dir);
    if (wp) return pare_tokenizer_load_wordpiece(t, pt, &o);
    if (bpe) return pare_tokenizer_load_bpe(t, p1, p2, style);
    return pare_fail(PARE_EIO, "%s: no tokenizer files (expected vocab.txt for WordPiece, or vocab.json and merges.txt for BPE)",
                     dir);
}

/* ------------------------------------------------------------------------------------------------ */
/* saving */

static pare_status write_file(const char *path, const char *s, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return pare_fail(PARE_EIO, "%s: cannot create: %s", path, strerror(errno));
    size_t w = fwrite(s, 1, n, f);
    int bad = w != n || fflush(f) != 0;
    if (fclose(f) != 0 || bad) return pare_fail(PARE_EIO, "%s: write failed: %s", path, strerror(errno));
    return PARE_OK;
}

pare_status pare_tokenizer_save(const pare_tokenizer *t, const char *dir)
{
    if (!t->impl) return pare_fail(PARE_EINVAL, "tokenizer save: no tokenizer loaded");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return pare_fail(PARE_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    const pare_tokenizer_impl *im = t->impl;
    char path[4200];
    pare_buf b = {0};
    pare_status st = PARE_OK;
    cJSON *cfg = cJSON_CreateObject();
    /* the other kind's files would make the directory ambiguous to pare_tokenizer_load: remove them */
    static const char *const other[PARE_TOK_KIND_COUNT][2] = {{"vocab.json", "merges.txt"}, {"vocab.txt", NULL}};
    for (int i = 0; i < 2 && other[t->kind][i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, other[t->kind][i]);
        if (unlink(path) != 0 && errno != ENOENT) st = pare_fail(PARE_EIO, "%s: cannot remove: %s", path, strerror(errno));
    }
    if (st != PARE_OK) return cJSON_Delete(cfg), st;
    if (t->kind == PARE_TOK_WORDPIECE) {
        for (int32_t i = 0; i < t->vocab_size; i++) {
            /* a vocab.txt has no holes: ids are line numbers */
            if (im->tok[i]) pare_buf_add(&b, im->tok[i], im->tok_len[i]);
            pare_buf_addc(&b, '\n');
        }
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        st = b.err ? pare_fail(PARE_ENOMEM, "%s: out of memory", path) : write_file(path, b.p ? b.p : "", b.n);
        cJSON_AddStringToObject(cfg, "tokenizer_class", "BertTokenizer");
        cJSON_AddBoolToObject(cfg, "do_lower_case", t->wp.do_lower_case);
        if (t->wp.strip_accents < 0) cJSON_AddNullToObject(cfg, "strip_accents");
        else cJSON_AddBoolToObject(cfg, "strip_accents", t->wp.strip_accents);
        cJSON_AddBoolToObject(cfg, "tokenize_chinese_chars", t->wp.tokenize_chinese_chars);
    } else {
        cJSON *v = cJSON_CreateObject();
        for (int32_t i = 0; i < t->vocab_size; i++)
            if (im->tok[i]) cJSON_AddNumberToObject(v, im->tok[i], i);
        char *js = cJSON_PrintUnformatted(v);
        cJSON_Delete(v);
        snprintf(path, sizeof path, "%s/vocab.json", dir);
        st = js ? write_file(path, js, strlen(js)) : pare_fail(PARE_ENOMEM, "%s: out of memory", path);
        free(js);
        pare_buf_add(&b, "#version: 0.2\n", 14);
        for (int32_t r = 0; r < im->n_merges; r++) {
            pare_buf_add(&b, im->tok[im->merge_a[r]], im->tok_len[im->merge_a[r]]), pare_buf_addc(&b, ' ');
            pare_buf_add(&b, im->tok[im->merge_b[r]], im->tok_len[im->merge_b[r]]), pare_buf_addc(&b, '\n');
        }
        snprintf(path, sizeof path, "%s/merges.txt", dir);
        if (st == PARE_OK) st = b.err ? pare_fail(PARE_ENOMEM, "%s: out of memory", path) : write_file(path, b.p, b.n);
        cJSON_AddStringToObject(cfg, "tokenizer_class", t->style == PARE_TOK_STYLE_ROBERTA ? "RobertaTokenizer" : "GPT2Tokenizer");
    }
    char *js = cJSON_Print(cfg);
    cJSON_Delete(cfg);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (st == PARE_OK) st = js ? write_file(path, js, strlen(js)) : pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    free(js);
    pare_buf_free(&b);
    return st;
}

/* ------------------------------------------------------------------------------------------------ */
/* encoding */

pare_status pare_tokenizer_tokenize(pare_tokenizer *t, int32_t **ids, int64_t *n_ids, const char *text, int64_t n)
{
    *ids = NULL, *n_ids = 0;
    if (!t->impl || !text) return pare_fail(PARE_EINVAL, "tokenize: %s", !t->impl ? "no tokenizer loaded" : "no text (NULL)");
    size_t len = n < 0 ? strlen(text) : (size_t)n, seg = 0;
    const pare_tokenizer_impl *im = t->impl;
    pare_idvec v = {0};
    pare_status st = PARE_OK;
    /* special-token strings in the text are those tokens (HF's added-token matching); between them the model runs */
    for (size_t i = 0; i <= len && st == PARE_OK; i++) {
        int32_t hit = -1;
        for (int k = 0; i < len && k < im->n_specials && hit < 0; k++) {
            int32_t id = im->specials[k];
            if (im->tok_len[id] && im->tok_len[id] <= len - i && memcmp(text + i, im->tok[id], im->tok_len[id]) == 0) hit = id;
        }
        if (hit < 0 && i < len) continue;
        if (i > seg)
            st = t->kind == PARE_TOK_WORDPIECE ? pare_wordpiece_tokenize(t, &v, text + seg, i - seg)
                                               : pare_bpe_tokenize(t, &v, text + seg, i - seg);
        if (hit >= 0) {
            pare_idvec_push(&v, hit);
            i += im->tok_len[hit] - 1;
            seg = i + 1;
        }
    }
    if (st == PARE_OK && v.err) st = pare_fail(PARE_ENOMEM, "tokenize: out of memory");
    if (st != PARE_OK) return free(v.p), st;
    *ids = v.p, *n_ids = v.n;
    return PARE_OK;
}

void pare_encoding_free(pare_encoding *e)
{
    if (!e) return;
    free(e->ids), free(e->types), free(e->mask);
    memset(e, 0, sizeof *e);
}

static pare_status need(const pare_tokenizer *t, int32_t id, const char *what)
{
    if (id >= 0) return PARE_OK;
    return pare_fail(PARE_EINVAL, "encode: style '%s' needs the %s token, which the vocabulary lacks", pare_tok_style_names[t->style],
                     what);
}

pare_status pare_tokenizer_encode(pare_tokenizer *t, pare_encoding *e, const char *a, int64_t na, const char *b, int64_t nb,
                                  const pare_encode_opts *o)
{
    memset(e, 0, sizeof *e);
    pare_encode_opts d = pare_encode_defaults();
    if (!o) o = &d;
    if (!t->impl || !a) return pare_fail(PARE_EINVAL, "encode: %s", !t->impl ? "no tokenizer loaded" : "no text (a is NULL)");
    if (o->max_length < 0) return pare_fail(PARE_EINVAL, "encode: max_length=%lld must be >= 0", (long long)o->max_length);
    if (o->padding && o->max_length == 0) return pare_fail(PARE_EINVAL, "encode: padding needs max_length > 0");
    if (o->padding && t->pad < 0)
        return pare_fail(PARE_EINVAL, "encode: padding needs a pad token and this %s vocabulary has none", pare_tok_style_names[t->style]);
    int specials = !o->add_special_tokens || t->style == PARE_TOK_STYLE_GPT2 ? 0
                   : t->style == PARE_TOK_STYLE_BERT                        ? (b ? 3 : 2)
                                                                            : (b ? 4 : 2);
    if (specials) {
        PARE_TRY(need(t, t->cls, t->style == PARE_TOK_STYLE_BERT ? "[CLS]" : "<s>"));
        PARE_TRY(need(t, t->sep, t->style == PARE_TOK_STYLE_BERT ? "[SEP]" : "</s>"));
    }
    if (o->truncation && o->max_length > 0 && o->max_length < specials)
        return pare_fail(PARE_EINVAL, "encode: max_length=%lld leaves no room for the %d special tokens", (long long)o->max_length,
                         specials);
    int32_t *ia = NULL, *ib = NULL;
    int64_t la = 0, lb = 0;
    pare_status st = pare_tokenizer_tokenize(t, &ia, &la, a, na);
    if (st == PARE_OK && b) st = pare_tokenizer_tokenize(t, &ib, &lb, b, nb);
    if (st != PARE_OK) return free(ia), free(ib), st;
    if (o->truncation && o->max_length > 0) /* longest_first: one token at a time from the longer; ties from b */
        for (int64_t budget = o->max_length - specials; la + lb > budget;) {
            if (la > lb) la--;
            else lb--;
        }
    int64_t len = la + lb + specials, n = o->padding && o->max_length > len ? o->max_length : len;
    e->ids = malloc((size_t)(n ? n : 1) * sizeof(int32_t)), e->types = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    e->mask = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!e->ids || !e->types || !e->mask) {
        free(ia), free(ib), pare_encoding_free(e);
        return pare_fail(PARE_ENOMEM, "encode: out of memory");
    }
    int64_t k = 0;
#define PUT(id, ty) (e->ids[k] = (id), e->types[k] = (ty), e->mask[k++] = 1)
    int bert = t->style == PARE_TOK_STYLE_BERT;
    if (specials) PUT(t->cls, 0);
    for (int64_t i = 0; i < la; i++) PUT(ia[i], 0);
    if (specials) PUT(t->sep, 0);
    if (b) {
        if (specials && !bert) PUT(t->sep, 0); /* RoBERTa: </s></s> between the two */
        for (int64_t i = 0; i < lb; i++) PUT(ib[i], bert || !specials ? 1 : 0);
        if (specials) PUT(t->sep, bert ? 1 : 0);
    }
#undef PUT
    /* RoBERTa's pair types are all 0 (it has one type embedding); GPT-2's are 0 then 1 (HF default) */
    if (b && t->style == PARE_TOK_STYLE_ROBERTA && !specials)
        for (int64_t i = la; i < k; i++) e->types[i] = 0;
    e->length = k;
    for (; k < n; k++) e->ids[k] = t->pad, e->types[k] = 0, e->mask[k] = 0;
    e->n = n;
    free(ia), free(ib);
    return PARE_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* decoding */

/* Replace every `from` by `to` (to no longer than from), in place. */
static void replace_all(pare_buf *b, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), j = 0;
    if (!b->p) return;
    for (size_t i = 0; i < b->n;) {
        if (i + lf <= b->n && memcmp(b->p + i, from, lf) == 0) memmove(b->p + j, to, lt), j += lt, i += lf;
        else b->p[j++] = b->p[i++];
    }
    b->n = j, b->p[j] = 0;
}

pare_status pare_tokenizer_decode(const pare_tokenizer *t, char **text, size_t *n, const int32_t *ids, int64_t n_ids,
                                  int skip_special)
{
    *text = NULL, *n = 0;
    if (!t->impl) return pare_fail(PARE_EINVAL, "decode: no tokenizer loaded");
    const pare_tokenizer_impl *im = t->impl;
    pare_buf b = {0};
    int first = 1;
    pare_buf_add(&b, "", 0);
    for (int64_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab_size || !im->tok[id]) {
            pare_buf_free(&b);
            return pare_fail(PARE_EINVAL, "decode: id %d at position %lld is not in the vocabulary (size %d)", (int)id,
                             (long long)i, (int)t->vocab_size);
        }
        if (skip_special && im->is_special[id]) continue;
        const char *s = im->tok[id];
        if (t->kind == PARE_TOK_WORDPIECE) {
            if (!first) pare_buf_addc(&b, ' ');
            pare_buf_add(&b, s, im->tok_len[id]);
        } else if (im->is_special[id]) {
            pare_buf_add(&b, s, im->tok_len[id]);
        } else {
            for (size_t q = 0; q < im->tok_len[id];) {
                int len;
                uint32_t cp = pare_utf8_decode((const unsigned char *)s + q, im->tok_len[id] - q, &len);
                int by = cp == PARE_U_BAD ? -1 : pare_bpe_cp_byte(cp);
                if (by >= 0) pare_buf_addc(&b, (char)by);
                else pare_buf_add(&b, s + q, (size_t)len);
                q += (size_t)len;
            }
        }
        first = 0;
    }
    if (t->kind == PARE_TOK_WORDPIECE) { /* HF: " ".join(tokens).replace(" ##", ""), then clean_up_tokenization */
        static const char *const clean[][2] = {{" ##", ""},    {" .", "."},     {" ?", "?"},     {" !", "!"},
                                               {" ,", ","},    {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"},
                                               {" 's", "'s"},  {" 've", "'ve"}, {" 're", "'re"}};
        for (size_t k = 0; k < sizeof clean / sizeof clean[0]; k++) replace_all(&b, clean[k][0], clean[k][1]);
    }
    if (b.err) return pare_buf_free(&b), pare_fail(PARE_ENOMEM, "decode: out of memory");
    *text = b.p, *n = b.n;
    return PARE_OK;
}
