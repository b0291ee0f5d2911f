/* lua_attn.c — Lua functions that run attention variants on their own, outside a model
 * (benchmarks, scaling curves). Registered into the `pare` table by pare_lua_register_engine().
 *
 *   pare.attention_kinds() -> {"full", "flash", ...}     (the registry, in its order)
 *   pare.attention_bench{spec = "flash", T = 8192, H = 12, D = 64, B = 1, causal = false, backward = true,
 *                        warmup = 1, warmup_min_s = 0.2, warmup_max_s = 2, warmup_tol = 0.05, repeats = 5,
 *                        budget_s = 0, mem_budget_gb = 0, seed = 1, level = 0.95}
 *     -> {fwd_ms, fwd_lo_ms, fwd_hi_ms,        median and bootstrap interval of the forward, ms
 *         step_ms, step_lo_ms, step_hi_ms,     the same of forward+backward (NaN without backward)
 *         bwd_ms,                              median backward alone, ms
 *         peak_bytes, peak_fwd_bytes,          measured intermediates (eval/attn_bench.h), forward+backward
 *                                              and forward only (NaN when skipped or not measurable)
 *         formula_bytes, cache_bytes, work_bytes, io_bytes, pairs, pairs_computed, flops_fwd, flops_bwd,
 *         threads, runs_fwd, runs_step, seconds, fwd_samples_ms, step_samples_ms, spec, T, H, D, B, causal,
 *         warmup_runs, warmup_s, warmup_stable, warmup_first_ms,   the forward's warm-up (eval/warmup.h)
 *         step_warmup_runs, step_warmup_stable,                     and the steps' (0, false without backward)
 *         skipped = nil or "skipped: needs X GB > budget Y GB" (timings and peaks are NaN then)}
 *
 * Argument errors (unknown key, wrong type, out of range) raise Lua errors naming the key; the variant's
 * own option errors come from pare_attn_create_spec and name the variant's option. Nothing here holds
 * engine memory across a call that can raise: pare_attn_bench frees on failure, and the result's samples
 * are freed before any error is raised.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>

#include "attn/attn.h"
#include "eval/attn_bench.h"
#include "eval/stats.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

static const pare_opt_spec attn_bench_opts[] = {
    {"spec", PARE_OPT_STRING, NULL, 0, 0, NULL, "attention variant: \"kind\" or \"kind:key=value,...\" (pare help <kind>)"},
    {"T", PARE_OPT_INT, "1024", 1, 1e7, NULL, "tokens per sequence (N)"},
    {"H", PARE_OPT_INT, "12", 1, 4096, NULL, "heads"},
    {"D", PARE_OPT_INT, "64", 1, 4096, NULL, "head size"},
    {"B", PARE_OPT_INT, "1", 1, 1e6, NULL, "sequences per call"},
    {"causal", PARE_OPT_BOOL, "false", 0, 0, NULL, "mask keys after the query"},
    {"backward", PARE_OPT_BOOL, "true", 0, 0, NULL, "also time forward+backward steps"},
    {"warmup", PARE_OPT_INT, "1", 0, 1e6, NULL, "at least this many untimed forwards first (the memory run counts as one)"},
    {"warmup_min_s", PARE_OPT_FLOAT, "0.2", 0, 1e6, NULL, "warm up at least this long, then until the timings are stable"},
    {"warmup_max_s", PARE_OPT_FLOAT, "2", 0, 1e6, NULL, "stop warming up after this long even if not stable (>= warmup_min_s)"},
    {"warmup_tol", PARE_OPT_FLOAT, "0.05", 1e-6, 10, NULL,
     "stable: the median of the last 3 warm-up runs within this fraction of the median of the 3 before"},
    {"repeats", PARE_OPT_INT, "5", 1, 1e6, NULL, "timed runs per series (forward; forward+backward)"},
    {"budget_s", PARE_OPT_FLOAT, "0", 0, 1e7, NULL, "time budget of the point in s (0: none); at least 3 timed runs"},
    {"mem_budget_gb", PARE_OPT_FLOAT, "0", 0, 1e6, NULL,
     "skip when the formula's intermediates (cache + slots) exceed this many GB (0: no limit)"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "inputs, parameters and bootstrap seed"},
    {"level", PARE_OPT_FLOAT, "0.95", 0.5, 0.9999, NULL, "confidence level of the latency intervals"},
};
static const pare_schema attn_bench_schema = {
    "attention_bench", "one attention variant on its own: latency (median, bootstrap CI), measured peak memory, cost",
    attn_bench_opts, (int)(sizeof attn_bench_opts / sizeof attn_bench_opts[0])};

static void set_num(lua_State *L, const char *k, double v) { lua_pushnumber(L, v), lua_setfield(L, -2, k); }
static void set_int(lua_State *L, const char *k, int64_t v) { lua_pushinteger(L, (lua_Integer)v), lua_setfield(L, -2, k); }

static void push_samples(lua_State *L, const char *k, const double *x, int64_t n)
{
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) lua_pushnumber(L, x[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, k);
}

/* Median and interval of x (NaN for none). */
static pare_status summarise(const double *x, int64_t n, double level, unsigned long seed, double *med, double *lo,
                             double *hi)
{
    *med = *lo = *hi = NAN;
    if (n < 1) return PARE_OK;
    *med = pare_stats_median(x, (size_t)n);
    return pare_stats_bootstrap_ci(x, (size_t)n, level, 2000, seed, lo, hi);
}

static int l_attention_bench(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    pare_options o;
    pare_lua_opts(L, 1, &attn_bench_schema, &o);
    pare_attn_bench_opts bo = pare_attn_bench_defaults();
    bo.spec = pare_opt_str(&o, "spec");
    bo.T = pare_opt_int(&o, "T"), bo.H = pare_opt_int(&o, "H"), bo.D = pare_opt_int(&o, "D"), bo.B = pare_opt_int(&o, "B");
    bo.causal = pare_opt_bool(&o, "causal"), bo.backward = pare_opt_bool(&o, "backward");
    bo.warmup = pare_opt_int(&o, "warmup"), bo.repeats = pare_opt_int(&o, "repeats");
    bo.warmup_min_s = pare_opt_num(&o, "warmup_min_s"), bo.warmup_max_s = pare_opt_num(&o, "warmup_max_s");
    bo.warmup_tol = pare_opt_num(&o, "warmup_tol");
    bo.budget_s = pare_opt_num(&o, "budget_s"), bo.mem_budget_bytes = pare_opt_num(&o, "mem_budget_gb") * 1e9;
    bo.seed = (uint64_t)pare_opt_num(&o, "seed");
    const double level = pare_opt_num(&o, "level");
    pare_attn_bench_result r;
    pare_status st = pare_attn_bench(&r, &bo);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    double f[3], s[3], b[3];
    st = summarise(r.fwd_ms, r.n_fwd, level, (unsigned long)bo.seed, &f[0], &f[1], &f[2]);
    if (st == PARE_OK) st = summarise(r.step_ms, r.n_step, level, (unsigned long)bo.seed, &s[0], &s[1], &s[2]);
    if (st == PARE_OK) st = summarise(r.bwd_ms, r.n_step, level, (unsigned long)bo.seed, &b[0], &b[1], &b[2]);
    if (st != PARE_OK) {
        pare_attn_bench_result_free(&r); /* before raising: a Lua error does not return */
        return pare_lua_status_error(L, st);
    }
    lua_createtable(L, 0, 40);
    set_num(L, "fwd_ms", f[0]), set_num(L, "fwd_lo_ms", f[1]), set_num(L, "fwd_hi_ms", f[2]);
    set_num(L, "step_ms", s[0]), set_num(L, "step_lo_ms", s[1]), set_num(L, "step_hi_ms", s[2]);
    set_num(L, "bwd_ms", b[0]);
    push_samples(L, "fwd_samples_ms", r.fwd_ms, r.n_fwd);
    push_samples(L, "step_samples_ms", r.step_ms, r.n_step);
    set_int(L, "runs_fwd", r.n_fwd), set_int(L, "runs_step", r.n_step);
    set_int(L, "warmup_runs", r.warmup_runs), set_num(L, "warmup_s", r.warmup_s);
    lua_pushboolean(L, r.warmup_stable), lua_setfield(L, -2, "warmup_stable");
    set_num(L, "warmup_first_ms", r.warmup_first_ms), set_int(L, "step_warmup_runs", r.step_warmup_runs);
    lua_pushboolean(L, r.step_warmup_stable), lua_setfield(L, -2, "step_warmup_stable");
    pare_attn_bench_result_free(&r);
    if (r.skipped || r.peak_bytes < 0) set_num(L, "peak_bytes", NAN), set_num(L, "peak_fwd_bytes", NAN);
    else set_int(L, "peak_bytes", r.peak_bytes), set_int(L, "peak_fwd_bytes", r.peak_fwd_bytes);
    lua_pushboolean(L, r.peak_was_reset), lua_setfield(L, -2, "peak_was_reset");
    set_int(L, "formula_bytes", (int64_t)r.formula_bytes);
    set_int(L, "cache_bytes", (int64_t)r.cache_bytes), set_int(L, "work_bytes", (int64_t)r.work_bytes);
    set_int(L, "io_bytes", (int64_t)r.io_bytes);
    set_int(L, "pairs", r.cost.pairs), set_int(L, "pairs_computed", r.pairs_computed);
    set_int(L, "flops_fwd", r.cost.flops_fwd), set_int(L, "flops_bwd", r.cost.flops_bwd);
    set_int(L, "threads", r.threads);
    set_num(L, "seconds", r.seconds);
    lua_pushstring(L, bo.spec), lua_setfield(L, -2, "spec");
    set_int(L, "T", bo.T), set_int(L, "H", bo.H), set_int(L, "D", bo.D), set_int(L, "B", bo.B);
    lua_pushboolean(L, bo.causal), lua_setfield(L, -2, "causal");
    if (r.skipped) lua_pushstring(L, r.skip_reason), lua_setfield(L, -2, "skipped");
    return 1;
}

static int l_attention_kinds(lua_State *L)
{
    lua_createtable(L, pare_attn_count(), 0);
    for (int i = 0; i < pare_attn_count(); i++) {
        lua_pushstring(L, pare_attn_at(i)->schema->name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

void pare_lua_register_attn(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"attention_bench", l_attention_bench},
        {"attention_kinds", l_attention_kinds},
        {NULL, NULL},
    };
    luaL_setfuncs(L, funcs, 0); /* into the pare table on top */
}
