/* lua_text.c — the tokenizers (src/text/tokenizer.h) in Lua. Registered into the `pare` table by
 * pare_lua_register_engine().
 *
 *   pare.tokenizer("dir")                    a Hugging Face directory: vocab.txt, or vocab.json + merges.txt
 *   pare.tokenizer{vocab = "vocab.txt", lower_case = true, strip_accents = nil, chinese_chars = true}
 *   pare.tokenizer{vocab = "vocab.json", merges = "merges.txt", style = "auto"|"gpt2"|"roberta"}
 *     -> tok with fields kind ("wordpiece"|"bpe"), style, vocab_size, and the special ids cls, sep,
 *        pad, unk, mask, bos, eos (nil when absent); methods
 *   tok:encode(a [, b] [, {max_length = 0, truncation = false, padding = false|true|"max_length",
 *              add_special_tokens = true}]) -> {ids = {...}, types = {...}, mask = {...}, length = n}
 *   tok:tokenize(text) -> {ids}            no special tokens, no truncation
 *   tok:decode(ids [, {skip_special = false}]) -> text
 *   tok:token(id) -> string or nil;  tok:id(token) -> integer or nil;  tok:save(dir)
 *   pare.train_tokenizer{kind = "wordpiece"|"bpe", files = {...} and/or text = "...", vocab_size = 8000,
 *                        min_frequency = 2, lower_case = true, style = "gpt2"|"roberta", out = dir} -> tok
 *
 *   pare.corpus{sources = "all", split = "all"|"train"|"test", seed = 1, test_frac = 0.02, max_bytes = 0, ...}
 *     -> {text = "...", docs = n, bytes = n, dup_paragraphs = n, sources = {fortunes = {files, raw_bytes, docs,
 *        bytes}, copyright = {...}, readme = {...}, licenses = {...}}}: the pretraining corpus (data/corpus.h),
 *        documents separated by blank lines; split as the tasks mlm_corpus / clm_corpus hold documents out
 *
 * Ids are the vocabulary's own (0-based), as every model file counts them. Engine memory (encodings,
 * id arrays) is held in a box userdata whose __gc frees it, so a Lua error mid-conversion leaks nothing.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_engine.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"
#include "core/arena.h"
#include "data/corpus.h"
#include "text/tokenizer.h"

#define TOKENIZER_MT "pare.Tokenizer"
#define TBOX_MT "pare.TextBox"

typedef struct ltok { pare_tokenizer t; } ltok;

/* A box of up to 4 malloc'd pointers, freed by __gc (or early by box_free). */
typedef struct tbox { void *p[4]; } tbox;

static int tbox_gc(lua_State *L)
{
    tbox *b = luaL_checkudata(L, 1, TBOX_MT);
    for (int i = 0; i < 4; i++) free(b->p[i]), b->p[i] = NULL;
    return 0;
}

static tbox *box_new(lua_State *L)
{
    tbox *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, TBOX_MT);
    return b;
}

static ltok *check_tok(lua_State *L, int i) { return luaL_checkudata(L, i, TOKENIZER_MT); }

pare_tokenizer *pare_lua_tokenizer(lua_State *L, int i)
{
    ltok *t = luaL_testudata(L, i, TOKENIZER_MT);
    return t ? &t->t : NULL;
}

static ltok *push_tok(lua_State *L)
{
    ltok *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, TOKENIZER_MT);
    return t;
}

static int tok_gc(lua_State *L)
{
    pare_tokenizer_free(&check_tok(L, 1)->t);
    return 0;
}

static const char *field_str(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    const char *s = NULL;
    if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1)) pare_lua_error(L, "%s must be a string", k);
    lua_pop(L, 1); /* the string stays alive in the table */
    return s;
}

/* -1 if absent (nil), else 0/1; other types are an error. */
static int field_bool(lua_State *L, int idx, const char *k)
{
    lua_getfield(L, idx, k);
    int r = lua_isnil(L, -1) ? -1 : lua_isboolean(L, -1) ? lua_toboolean(L, -1) : -2;
    lua_pop(L, 1);
    if (r == -2) pare_lua_error(L, "%s must be true or false", k);
    return r;
}

static pare_tok_style style_arg(lua_State *L, const char *s, const char *fn)
{
    if (!s) return PARE_TOK_STYLE_AUTO;
    for (int i = 0; i < PARE_TOK_STYLE_COUNT; i++)
        if (strcmp(s, pare_tok_style_names[i]) == 0) return (pare_tok_style)i;
    return pare_lua_error(L, "%s: unknown style '%s' (valid: auto, bert, gpt2, roberta)", fn, s), PARE_TOK_STYLE_AUTO;
}

static void wp_opts(lua_State *L, int idx, pare_wordpiece_opts *o)
{
    int b;
    if ((b = field_bool(L, idx, "lower_case")) >= 0) o->do_lower_case = b;
    if ((b = field_bool(L, idx, "strip_accents")) >= 0) o->strip_accents = b;
    if ((b = field_bool(L, idx, "chinese_chars")) >= 0) o->tokenize_chinese_chars = b;
}

static int l_tokenizer(lua_State *L)
{
    pare_status s;
    if (lua_type(L, 1) == LUA_TSTRING) {
        const char *dir = lua_tostring(L, 1);
        ltok *t = push_tok(L);
        s = pare_tokenizer_load(&t->t, dir);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        pare_lua_check_keys(L, 1, "pare.tokenizer", "dir|vocab|merges|style|lower_case|strip_accents|chinese_chars");
        const char *dir = field_str(L, 1, "dir"), *vocab = field_str(L, 1, "vocab"), *merges = field_str(L, 1, "merges");
        pare_tok_style style = style_arg(L, field_str(L, 1, "style"), "pare.tokenizer");
        pare_wordpiece_opts o = pare_wordpiece_defaults();
        wp_opts(L, 1, &o);
        o.style = style;
        if (!dir && !vocab) return pare_lua_error(L, "pare.tokenizer: give dir, or vocab (vocab.txt, or vocab.json with merges)");
        ltok *t = push_tok(L);
        if (dir) s = pare_tokenizer_load(&t->t, dir);
        else if (merges) s = pare_tokenizer_load_bpe(&t->t, vocab, merges, style);
        else s = pare_tokenizer_load_wordpiece(&t->t, vocab, &o);
    }
    if (s != PARE_OK) return pare_lua_status_error(L, s);
    return 1;
}

static void push_ids(lua_State *L, const int32_t *ids, int64_t n)
{
    lua_createtable(L, n < INT32_MAX ? (int)n : 0, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int tok_encode(lua_State *L)
{
    ltok *t = check_tok(L, 1);
    size_t na, nb = 0;
    const char *a = luaL_checklstring(L, 2, &na), *b = NULL;
    int oi = 3;
    if (lua_type(L, 3) == LUA_TSTRING) b = lua_tolstring(L, 3, &nb), oi = 4;
    else if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3)) return pare_lua_error(L, "encode: the second text must be a string");
    else if (lua_isnil(L, 3)) oi = 4;
    pare_encode_opts o = pare_encode_defaults();
    if (!lua_isnoneornil(L, oi)) {
        pare_lua_check_keys(L, oi, "encode", "max_length|truncation|padding|add_special_tokens");
        lua_getfield(L, oi, "max_length");
        if (!lua_isnil(L, -1)) {
            if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0) return pare_lua_error(L, "encode: max_length must be an integer >= 0");
            o.max_length = lua_tointeger(L, -1);
        }
        lua_pop(L, 1);
        int v;
        if ((v = field_bool(L, oi, "truncation")) >= 0) o.truncation = v;
        if ((v = field_bool(L, oi, "add_special_tokens")) >= 0) o.add_special_tokens = v;
        lua_getfield(L, oi, "padding");
        if (lua_isboolean(L, -1)) o.padding = lua_toboolean(L, -1);
        else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "max_length") == 0) o.padding = 1;
        else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "do_not_pad") == 0) o.padding = 0;
        else if (!lua_isnil(L, -1)) return pare_lua_error(L, "encode: padding must be true, false, \"max_length\" or \"do_not_pad\"");
        lua_pop(L, 1);
    }
    tbox *box = box_new(L);
    pare_encoding e;
    pare_status s = pare_tokenizer_encode(&t->t, &e, a, (int64_t)na, b, (int64_t)nb, &o);
    if (s != PARE_OK) return pare_lua_status_error(L, s);
    box->p[0] = e.ids, box->p[1] = e.types, box->p[2] = e.mask;
    lua_createtable(L, 0, 4);
    push_ids(L, e.ids, e.n), lua_setfield(L, -2, "ids");
    push_ids(L, e.types, e.n), lua_setfield(L, -2, "types");
    push_ids(L, e.mask, e.n), lua_setfield(L, -2, "mask");
    lua_pushinteger(L, e.length), lua_setfield(L, -2, "length");
    pare_encoding_free(&e);
    box->p[0] = box->p[1] = box->p[2] = NULL;
    return 1;
}

static int tok_tokenize(lua_State *L)
{
    ltok *t = check_tok(L, 1);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    tbox *box = box_new(L);
    int32_t *ids;
    int64_t ni;
    pare_status st = pare_tokenizer_tokenize(&t->t, &ids, &ni, s, (int64_t)n);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    box->p[0] = ids;
    push_ids(L, ids, ni);
    return 1;
}

static int tok_decode(lua_State *L)
{
    ltok *t = check_tok(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int skip = 0;
    if (!lua_isnoneornil(L, 3)) {
        pare_lua_check_keys(L, 3, "decode", "skip_special");
        skip = field_bool(L, 3, "skip_special") == 1;
    }
    lua_Integer n = luaL_len(L, 2);
    tbox *box = box_new(L);
    int32_t *ids = box->p[0] = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    if (!ids) return pare_lua_error(L, "decode: out of memory");
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < INT32_MIN || lua_tointeger(L, -1) > INT32_MAX)
            return pare_lua_error(L, "decode: ids[%lld] is not an integer id", (long long)i + 1);
        ids[i] = (int32_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    char *text;
    size_t tn;
    pare_status s = pare_tokenizer_decode(&t->t, &text, &tn, ids, (int64_t)n, skip);
    if (s != PARE_OK) return pare_lua_status_error(L, s);
    box->p[1] = text;
    lua_pushlstring(L, text, tn);
    return 1;
}

static int tok_token(lua_State *L)
{
    ltok *t = check_tok(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    const char *s = id >= INT32_MIN && id <= INT32_MAX ? pare_tokenizer_token(&t->t, (int32_t)id) : NULL;
    if (s) lua_pushstring(L, s);
    else lua_pushnil(L);
    return 1;
}

static int tok_id(lua_State *L)
{
    ltok *t = check_tok(L, 1);
    int32_t id = pare_tokenizer_id(&t->t, luaL_checkstring(L, 2));
    if (id >= 0) lua_pushinteger(L, id);
    else lua_pushnil(L);
    return 1;
}

static int tok_save(lua_State *L)
{
    ltok *t = check_tok(L, 1);
    pare_status s = pare_tokenizer_save(&t->t, luaL_checkstring(L, 2));
    if (s != PARE_OK) return pare_lua_status_error(L, s);
    return 0;
}

static int tok_tostring(lua_State *L)
{
    ltok *t = check_tok(L, 1);
    lua_pushfstring(L, "pare.Tokenizer(%s, %s, %d tokens)", pare_tok_kind_names[t->t.kind], pare_tok_style_names[t->t.style],
                    (int)t->t.vocab_size);
    return 1;
}

static int tok_index(lua_State *L)
{
    ltok *t = check_tok(L, 1);
    const char *k = luaL_checkstring(L, 2);
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, k);
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 3);
    const pare_tokenizer *p = &t->t;
    const struct { const char *name; int32_t v; } ids[] = {{"cls", p->cls}, {"sep", p->sep}, {"pad", p->pad}, {"unk", p->unk},
                                                           {"mask", p->mask}, {"bos", p->bos}, {"eos", p->eos}};
    if (strcmp(k, "vocab_size") == 0) return lua_pushinteger(L, p->vocab_size), 1;
    if (strcmp(k, "kind") == 0) return lua_pushstring(L, pare_tok_kind_names[p->kind]), 1;
    if (strcmp(k, "style") == 0) return lua_pushstring(L, pare_tok_style_names[p->style]), 1;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (strcmp(k, ids[i].name) == 0) {
            if (ids[i].v >= 0) lua_pushinteger(L, ids[i].v);
            else lua_pushnil(L);
            return 1;
        }
    return pare_lua_error(L, "tokenizer: no field or method '%s' (fields: kind, style, vocab_size, cls, sep, pad, unk, mask, bos, "
                             "eos; methods: encode, tokenize, decode, token, id, save)", k);
}

static int l_train_tokenizer(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    pare_lua_check_keys(L, 1, "pare.train_tokenizer", "kind|files|text|vocab_size|min_frequency|lower_case|strip_accents|style|out");
    const char *kind = field_str(L, 1, "kind"), *out = field_str(L, 1, "out");
    if (!kind) return pare_lua_error(L, "pare.train_tokenizer: kind is required (valid: wordpiece, bpe)");
    int k = strcmp(kind, "wordpiece") == 0 ? PARE_TOK_WORDPIECE : strcmp(kind, "bpe") == 0 ? PARE_TOK_BPE : -1;
    if (k < 0) return pare_lua_error(L, "pare.train_tokenizer: unknown kind '%s' (valid: wordpiece, bpe)", kind);
    pare_train_opts o = pare_train_defaults((pare_tok_kind)k);
    wp_opts(L, 1, &o.wp);
    const char *style = field_str(L, 1, "style");
    if (style) o.style = style_arg(L, style, "pare.train_tokenizer");
    lua_getfield(L, 1, "vocab_size");
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > INT32_MAX)
            return pare_lua_error(L, "pare.train_tokenizer: vocab_size must be a positive integer");
        o.vocab_size = (int32_t)lua_tointeger(L, -1);
    }
    lua_getfield(L, 1, "min_frequency");
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
            return pare_lua_error(L, "pare.train_tokenizer: min_frequency must be an integer >= 1");
        o.min_frequency = lua_tointeger(L, -1);
    }
    lua_pop(L, 2);
    size_t ntext = 0;
    lua_getfield(L, 1, "text");
    const char *text = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &ntext) : NULL;
    if (!text && !lua_isnil(L, -1)) return pare_lua_error(L, "pare.train_tokenizer: text must be a string");
    lua_pop(L, 1); /* alive in the argument table */
    lua_getfield(L, 1, "files");
    int nfiles = 0;
    const char **files = NULL;
    if (lua_type(L, -1) == LUA_TSTRING) {
        files = lua_newuserdatauv(L, sizeof *files, 0); /* raw memory, collected with the call */
        files[0] = lua_tostring(L, -2), nfiles = 1;
    } else if (lua_istable(L, -1)) {
        lua_Integer n = luaL_len(L, -1);
        if (n > 100000) return pare_lua_error(L, "pare.train_tokenizer: too many files");
        files = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *files, 0);
        for (lua_Integer i = 0; i < n; i++) {
            lua_rawgeti(L, -2, i + 1);
            if (lua_type(L, -1) != LUA_TSTRING) return pare_lua_error(L, "pare.train_tokenizer: files[%lld] is not a path", (long long)i + 1);
            files[nfiles++] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) return pare_lua_error(L, "pare.train_tokenizer: files must be a path or a list of paths");
    if (!nfiles && !text) return pare_lua_error(L, "pare.train_tokenizer: give files = {...} and/or text = \"...\"");
    ltok *t = push_tok(L);
    pare_status s = pare_tokenizer_train(&t->t, &o, files, nfiles, text, (int64_t)ntext);
    if (s == PARE_OK && out) s = pare_tokenizer_save(&t->t, out);
    if (s != PARE_OK) return pare_lua_status_error(L, s);
    return 1;
}

/* ---- pare.corpus ---- */
#define CORPUS_MT "pare.CorpusBox"

static const pare_opt_spec corpus_opts[] = {
    {"sources", PARE_OPT_STRING, "all", 0, 0, NULL, "comma list of fortunes, copyright, readme, licenses (or all)"},
    {"fortune_dir", PARE_OPT_STRING, "/usr/share/games/fortunes", 0, 0, NULL, "fortune files"},
    {"doc_dir", PARE_OPT_STRING, "/usr/share/doc", 0, 0, NULL, "package documentation"},
    {"licenses_dir", PARE_OPT_STRING, "/usr/share/common-licenses", 0, 0, NULL, "license texts"},
    {"max_bytes", PARE_OPT_INT, "0", 0, 1e12, NULL, "stop after this many bytes (0: all)"},
    {"min_words", PARE_OPT_INT, "4", 1, 1000, NULL, "a kept line of a file has at least this many words"},
    {"split", PARE_OPT_ENUM, "all", 0, 0, "all|train|test", "which documents, held out as the pretraining tasks do"},
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "the held-out documents (as the tasks' seed)"},
    {"test_frac", PARE_OPT_FLOAT, "0.02", 0, 0.9, NULL, "fraction of the documents held out"},
};
static const pare_schema corpus_schema = {"corpus", "the English pretraining corpus of Debian-installed text",
                                          corpus_opts, (int)(sizeof corpus_opts / sizeof corpus_opts[0])};

typedef struct corpus_box { pare_docs docs; int64_t *order; } corpus_box;

static int corpus_gc(lua_State *L)
{
    corpus_box *b = luaL_checkudata(L, 1, CORPUS_MT);
    pare_docs_free(&b->docs);
    pare_free(b->order), b->order = NULL;
    return 0;
}

static void set_int(lua_State *L, const char *k, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static int l_corpus(lua_State *L)
{
    pare_options o;
    if (lua_isnoneornil(L, 1)) lua_newtable(L), lua_replace(L, 1);
    pare_lua_opts(L, 1, &corpus_schema, &o);
    pare_corpus_opts co = pare_corpus_defaults();
    co.sources = pare_opt_str(&o, "sources"), co.fortune_dir = pare_opt_str(&o, "fortune_dir");
    co.doc_dir = pare_opt_str(&o, "doc_dir"), co.licenses_dir = pare_opt_str(&o, "licenses_dir");
    co.max_bytes = (int64_t)pare_opt_num(&o, "max_bytes"), co.min_words = (int)pare_opt_num(&o, "min_words");
    corpus_box *b = lua_newuserdatauv(L, sizeof *b, 0); /* frees the documents however this call ends */
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, CORPUS_MT);
    pare_corpus_stats st;
    pare_status s = pare_corpus_read(&b->docs, &co, &st);
    const char *split = pare_opt_str(&o, "split");
    int64_t first = 0, count = b->docs.n, nte = 0;
    if (s == PARE_OK && strcmp(split, "all") != 0) {
        s = pare_corpus_split(&b->order, &nte, b->docs.n, (uint64_t)pare_opt_num(&o, "seed"), pare_opt_num(&o, "test_frac"));
        if (!strcmp(split, "test")) count = nte;
        else first = nte, count = b->docs.n - nte;
    }
    if (s != PARE_OK) return pare_lua_status_error(L, s);
    luaL_Buffer buf;
    lua_newtable(L);
    luaL_buffinit(L, &buf);
    int64_t bytes = 0;
    for (int64_t k = 0; k < count; k++) {
        size_t len;
        const char *t = pare_docs_at(&b->docs, b->order ? b->order[first + k] : first + k, &len);
        luaL_addlstring(&buf, t, len);
        luaL_addstring(&buf, "\n\n");
        bytes += (int64_t)len;
    }
    luaL_pushresult(&buf);
    lua_setfield(L, -2, "text");
    set_int(L, "docs", count), set_int(L, "bytes", bytes), set_int(L, "dup_paragraphs", st.dup_paragraphs);
    lua_newtable(L);
    for (int i = 0; i < PARE_CORPUS_SOURCE_COUNT; i++) {
        lua_newtable(L);
        set_int(L, "files", st.files[i]), set_int(L, "raw_bytes", st.raw_bytes[i]);
        set_int(L, "docs", st.docs[i]), set_int(L, "bytes", st.bytes[i]);
        lua_setfield(L, -2, pare_corpus_source_names[i]);
    }
    lua_setfield(L, -2, "sources");
    return 1;
}

void pare_lua_register_text(lua_State *L)
{
    static const luaL_Reg methods[] = {{"encode", tok_encode}, {"tokenize", tok_tokenize}, {"decode", tok_decode},
                                       {"token", tok_token},   {"id", tok_id},             {"save", tok_save},
                                       {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", tok_gc}, {"__index", tok_index}, {"__tostring", tok_tostring}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"tokenizer", l_tokenizer}, {"train_tokenizer", l_train_tokenizer},
                                     {"corpus", l_corpus}, {NULL, NULL}};
    luaL_newmetatable(L, TOKENIZER_MT);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pop(L, 1);
    luaL_newmetatable(L, CORPUS_MT);
    lua_pushcfunction(L, corpus_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, TBOX_MT);
    lua_pushcfunction(L, tbox_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_setfuncs(L, funcs, 0);
}
