/* lua_gen.c — generation from Lua: m:generate and m:generate_bench (gen/generate.h), added to the
 * model's methods by pare_lua_register_engine().
 *
 *   m:generate(prompts, {max_new_tokens = 16, temperature = 0, top_k = 0, top_p = 1, seed = 1, eos = -1,
 *                        cache = true})
 *     prompts: a list of token-id lists ({{5, 9, 2}, {7}}), or one list ({5, 9, 2}); ids as m:forward's
 *     (0-based, in [0, vocab)). temperature 0 is greedy. An encoder-decoder (kind encdec, BART) takes
 *     source = {{...}, ...} (one source id list per prompt, or one list for one prompt): encoded once,
 *     its cross-attention keys and values kept beside the KV cache; the prompts hold the decoder's
 *     start token(s).
 *     -> {tokens = {{...}, ...},        the new tokens of each prompt (eos included when produced)
 *         stop = {"eos" | "max_new_tokens" | "max_T", ...},
 *         prompt_tokens, generated, prefill_ms, steps, step_ms = {...}, step_median_ms, step_mean_ms,
 *         decode_tokens_per_s, total_ms, tokens_per_s, cache_bytes, note}
 *   m:generate_bench{prompt_len = 16, new_tokens = 32, batch = 1, seed = 1, warmup = 1, repeats = 3,
 *                    temperature = 0, top_k = 0, top_p = 1, cache = true}
 *     random prompts (seeded) of prompt_len tokens, `batch` of them, each generating exactly new_tokens
 *     (no eos); warmup untimed runs, then `repeats` timed ones whose step times are pooled.
 *     -> {prefill_ms (median over repeats), step_median_ms, step_mean_ms, step_ms = {pooled},
 *         decode_tokens_per_s, tokens_per_s (medians over repeats), total_ms, prompt_len, new_tokens,
 *         batch, repeats, cache_bytes, note}
 *
 * Speed belongs to benchmarks: nothing asserts these timings in tests. Argument errors raise Lua errors
 * naming the key; the engine's errors name the row or option. Buffers handed to the engine are Lua
 * userdata (collected if a later check raises); the engine's result is freed before anything can raise
 * but the table pushes themselves.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/stats.h"
#include "gen/generate.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

static const pare_opt_spec bench_opts[] = {
    {"prompt_len", PARE_OPT_INT, "16", 1, 1e6, NULL, "tokens per prompt"},
    {"new_tokens", PARE_OPT_INT, "32", 1, 1e6, NULL, "tokens generated per prompt (prompt_len + new_tokens <= max_T + 1)"},
    {"batch", PARE_OPT_INT, "1", 1, 1e5, NULL, "prompts generated together"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "the prompts' tokens and the sampling seed"},
    {"warmup", PARE_OPT_INT, "1", 0, 1000, NULL, "untimed generations first"},
    {"repeats", PARE_OPT_INT, "3", 1, 1e5, NULL, "timed generations (their step times are pooled)"},
    {"temperature", PARE_OPT_FLOAT, "0", 0, 1e6, NULL, "0: greedy; > 0: sampling (its cost is part of each step)"},
    {"top_k", PARE_OPT_INT, "0", 0, 1e9, NULL, "as m:generate"},
    {"top_p", PARE_OPT_FLOAT, "1", 0, 1, NULL, "as m:generate"},
    {"cache", PARE_OPT_BOOL, "true", 0, 0, NULL, "KV cache (false: recompute every prefix, the baseline)"},
};
static const pare_schema bench_schema = {"generate_bench", "latency per generated token and tokens/s with the KV cache",
                                         bench_opts, (int)(sizeof bench_opts / sizeof bench_opts[0])};

/* The prompts at idx (a list of lists, or one list of numbers) into userdata anchored on the stack:
 * tokens (B × longest), lens (B). Raises naming the prompt and position of anything that is not an
 * integer. Pushes two userdata. */
static int64_t read_lists(lua_State *L, int idx, int32_t **tok, int64_t **lens, int64_t *longest, const char *what);
static int64_t read_prompts(lua_State *L, int idx, int32_t **tok, int64_t **lens, int64_t *longest)
{
    return read_lists(L, idx, tok, lens, longest, "prompt");
}

static int64_t read_lists(lua_State *L, int idx, int32_t **tok, int64_t **lens, int64_t *longest, const char *what)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_geti(L, idx, 1);
    int flat = lua_type(L, -1) == LUA_TNUMBER;
    lua_pop(L, 1);
    int64_t B = flat ? 1 : (int64_t)luaL_len(L, idx);
    if (B < 1) pare_lua_error(L, "generate: %ss must be a list of token-id lists (got an empty table)", what);
    *longest = 0;
    for (int64_t b = 0; b < B; b++) {
        if (!flat) {
            lua_geti(L, idx, b + 1);
            if (!lua_istable(L, -1)) {
                char d[64];
                pare_lua_error(L, "generate: %s %d must be a list of token ids, not %s", what, (int)(b + 1),
                               pare_lua_describe(L, -1, d, sizeof d));
            }
        } else lua_pushvalue(L, idx);
        int64_t n = (int64_t)luaL_len(L, -1);
        if (n > *longest) *longest = n;
        lua_pop(L, 1);
    }
    int64_t W = *longest ? *longest : 1;
    *tok = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(B * W), 0);
    *lens = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)B, 0);
    for (int64_t b = 0; b < B; b++) {
        if (flat) lua_pushvalue(L, idx);
        else lua_geti(L, idx, b + 1);
        int64_t n = (int64_t)luaL_len(L, -1);
        (*lens)[b] = n;
        for (int64_t t = 0; t < n; t++) {
            lua_geti(L, -1, t + 1);
            int isint = 0;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (!isint || v < INT32_MIN || v > INT32_MAX) {
                char d[64];
                pare_lua_error(L, "generate: %s %d, position %d: %s is not a token id (an integer)", what,
                               (int)(b + 1), (int)(t + 1), pare_lua_describe(L, -1, d, sizeof d));
            }
            (*tok)[b * W + t] = (int32_t)v;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return B;
}

static void push_numbers(lua_State *L, const double *x, int64_t n)
{
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) lua_pushnumber(L, x[i]), lua_rawseti(L, -2, i + 1);
}

static void set_num(lua_State *L, const char *k, double v) { lua_pushnumber(L, v), lua_setfield(L, -2, k); }
static void set_int(lua_State *L, const char *k, int64_t v) { lua_pushinteger(L, (lua_Integer)v), lua_setfield(L, -2, k); }

/* m:generate(prompts [, opts]) */
static int model_generate(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_options o;
    int opt_idx = 3, src_idx = 0;
    if (lua_istable(L, 3)) { /* source is data, not an option: the other keys go to the schema */
        lua_getfield(L, 3, "source");
        if (!lua_isnil(L, -1)) {
            src_idx = lua_gettop(L);
            lua_newtable(L);
            for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
                if (lua_type(L, -2) == LUA_TSTRING && !strcmp(lua_tostring(L, -2), "source")) continue;
                lua_pushvalue(L, -2), lua_pushvalue(L, -2), lua_settable(L, -5);
            }
            opt_idx = lua_gettop(L);
        } else lua_pop(L, 1);
    }
    pare_lua_opts(L, opt_idx, &pare_gen_schema, &o);
    pare_gen_opts go = pare_gen_opts_from(&o);
    int32_t *tok, *stok = NULL;
    int64_t *lens, *slens = NULL, W, SW = 0;
    int64_t B = read_prompts(L, 2, &tok, &lens, &W);
    if (W < 1) W = 1;
    const int32_t **pr = lua_newuserdatauv(L, sizeof *pr * (size_t)B, 0);
    for (int64_t b = 0; b < B; b++) pr[b] = tok + b * W;
    const int32_t **sr = NULL;
    if (src_idx) {
        if (!lua_istable(L, src_idx)) return pare_lua_error(L, "generate: source must be a list of token-id lists");
        int64_t SB = read_lists(L, src_idx, &stok, &slens, &SW, "source");
        if (SB != B)
            return pare_lua_error(L, "generate: %d sources for %d prompts (one source per prompt)", (int)SB, (int)B);
        if (SW < 1) SW = 1;
        sr = lua_newuserdatauv(L, sizeof *sr * (size_t)B, 0);
        for (int64_t b = 0; b < B; b++) sr[b] = stok + b * SW;
    }
    pare_gen_result r;
    pare_status st = pare_generate_src(&r, m, pr, lens, B, sr, slens, &go);
    if (st != PARE_OK) return pare_lua_status_error(L, st); /* r holds nothing on failure */
    lua_createtable(L, 0, 16);
    lua_createtable(L, (int)B, 0);
    for (int64_t b = 0; b < B; b++) {
        lua_createtable(L, (int)r.ntokens[b], 0);
        for (int64_t k = 0; k < r.ntokens[b]; k++) lua_pushinteger(L, r.tokens[b * r.max_new + k]), lua_rawseti(L, -2, k + 1);
        lua_rawseti(L, -2, b + 1);
    }
    lua_setfield(L, -2, "tokens");
    lua_createtable(L, (int)B, 0);
    for (int64_t b = 0; b < B; b++) lua_pushstring(L, pare_gen_stop_name(r.stop[b])), lua_rawseti(L, -2, b + 1);
    lua_setfield(L, -2, "stop");
    set_int(L, "prompt_tokens", r.prompt_tokens), set_int(L, "generated", r.generated);
    set_num(L, "prefill_ms", r.prefill_ms), set_int(L, "steps", r.nsteps);
    push_numbers(L, r.step_ms, r.nsteps), lua_setfield(L, -2, "step_ms");
    set_num(L, "step_median_ms", r.step_median_ms), set_num(L, "step_mean_ms", r.step_mean_ms);
    set_num(L, "decode_tokens_per_s", r.decode_tokens_per_s), set_num(L, "total_ms", r.total_ms);
    set_num(L, "tokens_per_s", r.tokens_per_s), set_int(L, "cache_bytes", (int64_t)r.cache_bytes);
    lua_pushstring(L, r.note), lua_setfield(L, -2, "note");
    pare_gen_result_free(&r);
    return 1;
}

/* m:generate_bench{prompt_len, new_tokens, batch, seed, warmup, repeats, temperature, top_k, top_p} */
static int model_generate_bench(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_options o;
    pare_lua_opts(L, 2, &bench_schema, &o);
    int64_t P = pare_opt_int(&o, "prompt_len"), N = pare_opt_int(&o, "new_tokens"), B = pare_opt_int(&o, "batch");
    int64_t warm = pare_opt_int(&o, "warmup"), reps = pare_opt_int(&o, "repeats");
    if (P + N - 1 > m->max_T) /* the last token is produced, never fed */
        return pare_lua_error(L, "generate_bench: prompt_len=%d + new_tokens=%d needs %d positions, more than the "
                              "model's max_T = %d", (int)P, (int)N, (int)(P + N - 1), (int)m->max_T);
    pare_gen_opts go = pare_gen_defaults();
    go.max_new_tokens = N, go.seed = (uint64_t)pare_opt_num(&o, "seed"), go.temperature = pare_opt_num(&o, "temperature");
    go.top_k = pare_opt_int(&o, "top_k"), go.top_p = pare_opt_num(&o, "top_p"), go.cache = pare_opt_bool(&o, "cache");
    int32_t *tok = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(B * P), 0);
    int64_t *lens = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)B, 0);
    const int32_t **pr = lua_newuserdatauv(L, sizeof *pr * (size_t)B, 0);
    pare_rng rng;
    pare_rng_seed(&rng, go.seed);
    for (int64_t i = 0; i < B * P; i++) tok[i] = (int32_t)pare_rng_below(&rng, (uint64_t)m->vocab);
    for (int64_t b = 0; b < B; b++) lens[b] = P, pr[b] = tok + b * P;
    /* per repeat: prefill, tokens/s, decode tokens/s; pooled steps */
    double *per = lua_newuserdatauv(L, sizeof(double) * (size_t)(3 * reps), 0);
    double *steps = lua_newuserdatauv(L, sizeof(double) * (size_t)(reps * N + 1), 0);
    int64_t nsteps = 0;
    double total = 0;
    size_t cache = 0;
    char note[256] = "";
    for (int64_t i = 0; i < warm + reps; i++) {
        pare_gen_result r;
        pare_status st = pare_generate(&r, m, pr, lens, B, &go);
        if (st != PARE_OK) return pare_lua_status_error(L, st);
        if (i >= warm) {
            int64_t k = i - warm;
            per[k] = r.prefill_ms, per[reps + k] = r.tokens_per_s, per[2 * reps + k] = r.decode_tokens_per_s;
            for (int64_t s = 0; s < r.nsteps && nsteps < reps * N; s++) steps[nsteps++] = r.step_ms[s];
            total += r.total_ms;
            cache = r.cache_bytes;
            memcpy(note, r.note, sizeof note);
        }
        pare_gen_result_free(&r);
    }
    double mean = 0;
    for (int64_t s = 0; s < nsteps; s++) mean += steps[s];
    lua_createtable(L, 0, 16);
    set_num(L, "prefill_ms", pare_stats_median(per, (size_t)reps));
    set_num(L, "tokens_per_s", pare_stats_median(per + reps, (size_t)reps));
    set_num(L, "decode_tokens_per_s", nsteps ? pare_stats_median(per + 2 * reps, (size_t)reps) : NAN);
    set_num(L, "step_median_ms", nsteps ? pare_stats_median(steps, (size_t)nsteps) : NAN);
    set_num(L, "step_mean_ms", nsteps ? mean / (double)nsteps : NAN);
    push_numbers(L, steps, nsteps), lua_setfield(L, -2, "step_ms");
    set_num(L, "total_ms", total / (double)reps);
    set_int(L, "prompt_len", P), set_int(L, "new_tokens", N), set_int(L, "batch", B), set_int(L, "repeats", reps);
    set_int(L, "cache_bytes", (int64_t)cache);
    lua_pushstring(L, note), lua_setfield(L, -2, "note");
    return 1;
}

void pare_lua_register_gen(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"generate", model_generate},
        {"generate_bench", model_generate_bench},
        {NULL, NULL},
    };
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
