/* lua_engine.c — the engine's half of the `pare` Lua module: tasks, models, training, evaluation,
 * compression passes and benchmarks. Thin by design: check arguments, convert Lua tables to
 * pare_kv[] for the engine's schema validator, call the engine, turn a status into a Lua error that
 * names the script's file and line. Nothing here allocates across a call that can raise except
 * through userdata that Lua owns (so a longjmp never leaks).
 *
 * Lua API (methods on userdata):
 *   pare.task(name, opts)           -> Task    t.name t.kind t.vocab t.classes t.T t.n_train t.n_test
 *                                      (t.kind: "classify", "lm", or "regression" for a task of scores: STS-B)
 *   pare.model(opts)                -> Model   (schema: pare help model)
 *   m:train(task, opts [, distill]) -> {steps, loss, seconds, best_eval_accuracy}  (a regression model,
 *                                      head=regression: best_eval_pearson instead of best_eval_accuracy)
 *                                      distill = {teacher = Model, hard_weight = 1, losses = {{loss = "kl_div",
 *                                      student = "head", teacher = "head", weight = 1, temperature = 2,
 *                                      project = false}, ...}}  (pare help distill, pare help distill_loss)
 *   m:capture(task, names [, {split, first, n, batch}]) -> {[name] = {rows, cols, values = {...}}}
 *   m:evaluate(task [, {split, batch, per_example}]) -> {accuracy, loss, perplexity, n [, correct = {1/0 per
 *                                      example}: per_example = true, classifiers]}; a regression model on a
 *                                      regression task (STS-B): {pearson, spearman, mse, loss = mse, n}
 *   m:translate(task [, {split, first, n, max_len, batch}]) -> {bleu, bp, precisions, hyp_len, ref_len, n, examples}
 *                                      (kind=encdec models on sequence-to-sequence tasks; eval/translate.h)
 *   m:apply(name, opts) / pare.apply(m, name, opts) -> Model (m unchanged)
 *   m:bench{batch, T, warmup, warmup_min_s, warmup_max_s, warmup_tol, repeats, seed} (wall and process-CPU samples)
 *                                   -> {median_ms, ci_lo_ms, ci_hi_ms, warmup_runs, warmup_stable, ...}
 *   m:fidelity(ref, task [, {split, batch}]) -> {cosine, max_abs_err, agreement}
 *   m:info() -> table (attention = every layer's attention spec, canonically, joined by ';'; config = the
 *                builder's JSON);
 *   m:layers([pattern]) -> {names}
 *   m:save(path)                    -> nil     (a safetensors checkpoint; the directory must exist)
 *   pare.load(path)                 -> Model, {format, pare_version, applied, config}  (f32; applied
 *                                      passes are recorded, not re-applied: docs/checkpoints.md)
 *   pare.set_threads(n), pare.threads(), pare.schema_help(name) -> text
 *   pare.baseline(task, "majority"|"bow") -> test accuracy of the majority class / bag-of-words naive
 *                                      Bayes fitted on the train split (eval/baseline.h)
 */
#include "lua_engine.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn/attn.h"
#include "eval/attn_fidelity.h"
#include "eval/baseline.h"
#include "compress/pass.h"
#include "compress/amp/amp.h"
#include "compress/distill/fastbert.h"
#include "compress/nas/supernet.h"
#include "compress/prune/heads.h"
#include "core/arena.h"
#include "core/cpu.h"
#include "dist/dist.h"
#include "dist/tp.h"
#include "core/timer.h"
#include "data/task.h"
#include "eval/bench.h"
#include "eval/fidelity.h"
#include "eval/stats.h"
#include "eval/translate.h"
#include "gen/generate.h"
#include "graph/exec.h"
#include "graph/rewrite.h"
#include "graph/format.h"
#include "graph/ops.h"
#include "graph/transform.h"
#include "data/glue.h"
#include "data/text_encoder.h"
#include "io/hf.h"
#include "text/tokenizer.h"
#include "io/safetensors.h"
#include "kernels/gemm.h"
#include "lua_util.h"
#include "model/transfer.h"
#include "model/transformer.h"
#include "train/train.h"
#include "compress/prune/prune.h"

#define MODEL_MT "pare.Model"
#define TASK_MT "pare.Task"

typedef struct lmodel { pare_model *m; } lmodel;
typedef struct ltask { pare_dataset train, test; char name[64]; } ltask;

static const pare_opt_spec bench_opts[] = {
    {"batch", PARE_OPT_INT, "1", 1, 1e6, NULL, "sequences per forward"},
    {"T", PARE_OPT_INT, "0", 0, 1e7, NULL, "tokens per sequence (0: the model's max_T)"},
    {"warmup", PARE_OPT_INT, "5", 0, 1e6, NULL, "at least this many untimed forwards first"},
    {"warmup_min_s", PARE_OPT_FLOAT, "0.2", 0, 1e6, NULL, "warm up at least this long, then until the timings are stable"},
    {"warmup_max_s", PARE_OPT_FLOAT, "2", 0, 1e6, NULL, "stop warming up after this long even if not stable (>= warmup_min_s)"},
    {"warmup_tol", PARE_OPT_FLOAT, "0.05", 1e-6, 10, NULL,
     "stable: the median of the last 3 warm-up forwards within this fraction of the median of the 3 before"},
    {"repeats", PARE_OPT_INT, "30", 1, 1e6, NULL, "timed forwards"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "input tokens and bootstrap seed"},
    {"level", PARE_OPT_FLOAT, "0.95", 0.5, 0.9999, NULL, "confidence level of the latency interval"},
};
static const pare_schema bench_schema = {"bench", "forward latency (median, bootstrap CI), memory and FLOPs", bench_opts,
                                         (int)(sizeof bench_opts / sizeof bench_opts[0])};

static const pare_opt_spec capture_opts[] = {
    {"split", PARE_OPT_ENUM, "test", 0, 0, "train|test", "which split of the task"},
    {"first", PARE_OPT_INT, "1", 1, 1e12, NULL, "first example (1-based)"},
    {"n", PARE_OPT_INT, "0", 0, 1e12, NULL, "examples from first (0: to the end of the split)"},
    {"batch", PARE_OPT_INT, "64", 1, 1e6, NULL, "sequences per forward"},
};
static const pare_schema capture_schema = {"capture", "named values of a model over examples of a task: m:capture(task, names, opts)",
                                           capture_opts, (int)(sizeof capture_opts / sizeof capture_opts[0])};

/* ---- schema lookup for `pare help` ---- */
const pare_schema *pare_schema_lookup(const char *name)
{
    if (!strcmp(name, "model")) return &pare_model_schema;
    if (!strcmp(name, "train")) return &pare_train_schema;
    if (!strcmp(name, "bench")) return &bench_schema;
    if (!strcmp(name, "capture")) return &capture_schema;
    if (!strcmp(name, "distill")) return &pare_distill_schema;
    if (!strcmp(name, "distill_loss")) return &pare_distill_loss_schema;
    if (!strcmp(name, "mutual")) return &pare_mutual_schema;
    if (!strcmp(name, "fastbert_exits")) return &pare_fastbert_exits_schema;
    if (!strcmp(name, "fastbert_distill")) return &pare_fastbert_distill_schema;
    if (!strcmp(name, "generate")) return &pare_gen_schema;
    if (!strcmp(name, "prune_schedule")) return &pare_prune_sched_schema;
    if (!strcmp(name, "head_gates")) return &pare_head_gates_schema;
    if (!strcmp(name, "prune_movement")) return &pare_prune_movement_schema;
    if (!strcmp(name, "prune_soft_movement")) return &pare_prune_soft_movement_schema;
    if (!strcmp(name, "nas_train")) return &pare_nas_train_schema;
    for (int i = 0; i < pare_pass_count(); i++)
        if (!strcmp(pare_pass_at(i)->schema->name, name)) return pare_pass_at(i)->schema;
    for (int i = 0; i < pare_task_count(); i++)
        if (!strcmp(pare_task_name(i), name)) return pare_task_schema(name);
    for (int i = 0; i < pare_attn_count(); i++)
        if (!strcmp(pare_attn_at(i)->schema->name, name)) return pare_attn_at(i)->schema;
    return NULL;
}

const char *pare_schema_names(char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "model, train, bench, capture, distill, distill_loss, mutual, fastbert_exits, fastbert_distill, generate, prune_schedule, head_gates, prune_movement, prune_soft_movement");
    for (int i = 0; i < pare_pass_count() && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, ", %s", pare_pass_at(i)->schema->name);
    for (int i = 0; i < pare_task_count() && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, ", %s", pare_task_name(i));
    for (int i = 0; i < pare_attn_count() && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, ", %s", pare_attn_at(i)->schema->name);
    return buf;
}

/* ---- tasks ---- */
static ltask *check_task(lua_State *L, int i) { return luaL_checkudata(L, i, TASK_MT); }

static int task_gc(lua_State *L)
{
    ltask *t = check_task(L, 1);
    pare_dataset_free(&t->train);
    pare_dataset_free(&t->test);
    return 0;
}

static void push_opts_without(lua_State *L, int idx, const char *skip);

static int l_task(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const pare_schema *s = pare_task_schema(name);
    if (!s) return pare_lua_status_error(L, PARE_EINVAL);
    /* tokenizer = <pare.tokenizer> (text tasks) is an object, not an option: the other keys are options */
    pare_tokenizer *tok = NULL;
    int opt_idx = 2;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "tokenizer");
        if (!lua_isnil(L, -1)) {
            tok = pare_lua_tokenizer(L, -1);
            if (!tok) return pare_lua_error(L, "%s: tokenizer must be a pare.tokenizer(...), not a %s", name, luaL_typename(L, -1));
        }
        lua_pop(L, 1);
        push_opts_without(L, 2, "tokenizer");
        opt_idx = lua_gettop(L);
    }
    pare_options o;
    pare_lua_opts(L, opt_idx, s, &o);
    ltask *t = lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, TASK_MT);
    snprintf(t->name, sizeof t->name, "%s", name);
    pare_status st;
    if (tok) {
        pare_text_encoder enc;
        st = pare_tokenizer_text_encoder(&enc, tok);
        if (st == PARE_OK) st = pare_text_task_make(&t->train, &t->test, name, &o, &enc);
    } else st = pare_task_make(&t->train, &t->test, name, &o);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

/* The accuracy of always predicting the most frequent label (CLASSIFY) or target (LM) of d. */
static double majority_rate(const pare_dataset *d)
{
    int64_t n = d->kind == PARE_TASK_LM ? d->n * d->T : d->n, scored = 0, best = 0;
    int64_t *count = calloc((size_t)d->nclass, sizeof *count);
    if (!count) return NAN;
    for (int64_t i = 0; i < n; i++)
        if (d->labels[i] >= 0 && d->labels[i] < d->nclass) count[d->labels[i]]++, scored++;
    for (int32_t c = 0; c < d->nclass; c++) best = count[c] > best ? count[c] : best;
    free(count);
    return scored ? (double)best / (double)scored : NAN;
}

static int task_index(lua_State *L)
{
    ltask *t = check_task(L, 1);
    const char *k = luaL_checkstring(L, 2);
    if (!strcmp(k, "name")) lua_pushstring(L, t->name);
    else if (!strcmp(k, "kind"))
        lua_pushstring(L, t->train.kind == PARE_TASK_LM ? "lm" : t->train.targets ? "regression" : "classify");
    else if (!strcmp(k, "vocab")) lua_pushinteger(L, t->train.vocab);
    else if (!strcmp(k, "classes")) lua_pushinteger(L, t->train.nclass);
    else if (!strcmp(k, "T")) lua_pushinteger(L, t->train.T > t->test.T ? t->train.T : t->test.T);
    else if (!strcmp(k, "n_train")) lua_pushinteger(L, t->train.n);
    else if (!strcmp(k, "n_test")) lua_pushinteger(L, t->test.n);
    else if (!strcmp(k, "chance")) lua_pushnumber(L, t->test.targets ? NAN : majority_rate(&t->test)); /* no classes */
    else if (!strcmp(k, "S") && t->train.src_tokens) lua_pushinteger(L, t->train.S);  /* sequence-to-sequence tasks */
    else if (!strcmp(k, "src_vocab") && t->train.src_tokens) lua_pushinteger(L, t->train.src_vocab);
    else lua_pushnil(L);
    return 1;
}

/* pare.baseline(task, kind) -> the test accuracy of a baseline fitted on the train split. */
static int l_baseline(lua_State *L)
{
    ltask *t = check_task(L, 1);
    pare_baseline kind;
    if (pare_baseline_parse(&kind, luaL_checkstring(L, 2)) != PARE_OK) return pare_lua_status_error(L, PARE_EINVAL);
    double acc;
    pare_status st = pare_baseline_accuracy(&acc, &t->train, &t->test, kind);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_pushnumber(L, acc);
    return 1;
}

static const pare_dataset *task_split(lua_State *L, ltask *t, const char *split)
{
    if (!strcmp(split, "test")) return &t->test;
    if (!strcmp(split, "train")) return &t->train;
    pare_lua_error(L, "split='%s' is not a valid choice (valid: train|test)", split);
    return NULL;
}

const pare_dataset *pare_lua_check_split(lua_State *L, int i, const char *split)
{
    return task_split(L, check_task(L, i), split);
}

const pare_dataset *pare_lua_check_range(lua_State *L, int i, const char *split, const char *fn, lua_Integer first,
                                         lua_Integer *n)
{
    const pare_dataset *d = pare_lua_check_split(L, i, split);
    if (first < 1 || first > d->n) pare_lua_error(L, "%s: first=%d is outside 1..%d", fn, (int)first, (int)d->n);
    if (*n < 0) pare_lua_error(L, "%s: n=%d must be >= 0 (0: to the end of the split)", fn, (int)*n);
    if (*n == 0 || *n > d->n - (first - 1)) *n = d->n - (first - 1);
    return d;
}

void pare_lua_range_opts(lua_State *L, int i, const char *fn, pare_lua_range *r, pare_lua_more_opt more, void *ud,
                         const char *more_names)
{
    if (lua_isnoneornil(L, i)) return;
    luaL_checktype(L, i, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, i)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (!strcmp(k, "split")) r->split = luaL_checkstring(L, -1);
        else if (!strcmp(k, "first")) r->first = luaL_checkinteger(L, -1);
        else if (!strcmp(k, "n")) r->n = luaL_checkinteger(L, -1);
        else if (!strcmp(k, "batch")) r->batch = luaL_checkinteger(L, -1);
        else if (!more || !more(L, k, ud))
            pare_lua_error(L, "%s: unknown option '%s' (valid: split, first, n, batch%s%s)", fn, k,
                           more_names && *more_names ? ", " : "", more_names ? more_names : "");
        lua_pop(L, 1);
    }
    if (r->batch < 1) pare_lua_error(L, "%s: batch=%d must be >= 1", fn, (int)r->batch);
}

/* ---- models ---- */
static lmodel *check_model(lua_State *L, int i)
{
    lmodel *m = luaL_checkudata(L, i, MODEL_MT);
    if (!m->m) luaL_error(L, "model already freed");
    return m;
}

pare_model *pare_lua_check_model(lua_State *L, int i) { return check_model(L, i)->m; }

pare_model **pare_lua_push_model_slot(lua_State *L)
{
    lmodel *out = lua_newuserdatauv(L, sizeof *out, 0);
    out->m = NULL;
    luaL_setmetatable(L, MODEL_MT);
    return &out->m;
}

static int model_gc(lua_State *L)
{
    lmodel *m = luaL_checkudata(L, 1, MODEL_MT);
    pare_model_free(m->m);
    m->m = NULL;
    return 0;
}

/* Push a copy of the options table at idx without key `skip` (data given beside the options, such as
 * calib = <task>, or a key rewritten before validation, such as attention = {...}). */
static void push_opts_without(lua_State *L, int idx, const char *skip)
{
    lua_newtable(L);
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        if (lua_type(L, -2) == LUA_TSTRING && !strcmp(lua_tostring(L, -2), skip)) continue;
        lua_pushvalue(L, -2), lua_pushvalue(L, -2), lua_settable(L, -5);
    }
}

/* attention = {kind = "bigbird", window = 3}: the table's keys as key/value text for the variant's schema
 * (which types them, so window = 32 and window = "32" are one option). Fills kv (cap entries, texts
 * holds the numbers' text) and *kind; returns the count, or -1 with why in err. Raises nothing: the
 * configurations made between two calls must not leak. */
static int attention_kv(lua_State *L, int t, const char **kind, pare_kv *kv, char (*texts)[48], int cap, char *err,
                        size_t nerr)
{
    int n = 0;
    lua_getfield(L, t, "kind");
    *kind = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL; /* anchored by the table */
    lua_pop(L, 1);
    if (!*kind) {
        snprintf(err, nerr, "attention tables need kind = \"<variant>\"");
        return -1;
    }
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 2);
            snprintf(err, nerr, "%s: attention options are named (key = value), not listed", *kind);
            return -1;
        }
        const char *k = lua_tostring(L, -2);
        if (!strcmp(k, "kind")) continue;
        if (n == cap) {
            lua_pop(L, 2);
            snprintf(err, nerr, "%s: too many options", *kind);
            return -1;
        }
        const char *text = NULL;
        switch (lua_type(L, -1)) {
        case LUA_TSTRING: text = lua_tostring(L, -1); break;
        case LUA_TBOOLEAN: text = lua_toboolean(L, -1) ? "true" : "false"; break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, -1)) snprintf(texts[n], sizeof texts[n], "%lld", (long long)lua_tointeger(L, -1));
            else { /* the shortest text that reads back as the same number */
                double d = lua_tonumber(L, -1);
                for (int prec = 1; prec <= 17; prec++) {
                    snprintf(texts[n], sizeof texts[n], "%.*g", prec, d);
                    if (strtod(texts[n], NULL) == d) break;
                }
            }
            text = texts[n];
            break;
        default:
            snprintf(err, nerr, "%s: option '%s' must be a number, a string or a boolean, not a %s", *kind, k,
                     luaL_typename(L, -1));
            lua_pop(L, 2);
            return -1;
        }
        kv[n++] = (pare_kv){k, PARE_KV_STR, 0, text}; /* key and string value anchored by the table */
    }
    return n;
}

/* pare.model{..., attention = A}: A a string (the option's text), a table {kind = ..., key = value, ...}
 * for every layer, or a list of such tables, layer by layer (the last repeats). Tables are resolved
 * straight into attention configurations (no spec text) and the model built with them; its config
 * records their canonical text. Errors name the layer and the option. */
static int l_model(lua_State *L)
{
    pare_options o;
    if (!lua_istable(L, 1) || (lua_getfield(L, 1, "attention"), !lua_istable(L, -1))) {
        lua_settop(L, 1);
        pare_lua_opts(L, 1, &pare_model_schema, &o);
        lmodel *m = lua_newuserdatauv(L, sizeof *m, 0);
        m->m = NULL;
        luaL_setmetatable(L, MODEL_MT);
        pare_status st = pare_transformer_build(&m->m, &o);
        if (st != PARE_OK) return pare_lua_status_error(L, st);
        return 1;
    }
    int at = lua_gettop(L); /* 2: the attention table */
    push_opts_without(L, 1, "attention");
    pare_lua_opts(L, lua_gettop(L), &pare_model_schema, &o);
    lua_Integer len = (lua_Integer)lua_rawlen(L, at);
    int n = len ? (int)len : 1, list = len > 0;
    if (len > 65536) return pare_lua_error(L, "model: attention lists %lld layers (at most 65536)", (long long)len);
    pare_kv kv[PARE_MAX_OPTS];
    char texts[PARE_MAX_OPTS][48], err[256];
    const char *kind;
    /* First every table's shape (raising is still free of leaks), then the configurations. */
    for (int i = 0; i < n; i++) {
        if (list) lua_geti(L, at, i + 1);
        else lua_pushvalue(L, at);
        if (!lua_istable(L, -1)) return pare_lua_error(L, "model: attention[%d] must be a table {kind = ...}", i + 1);
        if (attention_kv(L, lua_gettop(L), &kind, kv, texts, PARE_MAX_OPTS, err, sizeof err) < 0)
            return list ? pare_lua_error(L, "model: attention of layer %d: %s", i, err)
                        : pare_lua_error(L, "model: attention: %s", err);
        lua_pop(L, 1);
    }
    pare_attn_config **cfg = lua_newuserdatauv(L, sizeof *cfg * (size_t)n, 0); /* collected with the call */
    lmodel *m = lua_newuserdatauv(L, sizeof *m, 0);
    m->m = NULL;
    luaL_setmetatable(L, MODEL_MT);
    pare_status st = PARE_OK;
    int made = 0;
    for (; made < n && st == PARE_OK; made++) {
        if (list) lua_geti(L, at, made + 1);
        else lua_pushvalue(L, at);
        int nkv = attention_kv(L, lua_gettop(L), &kind, kv, texts, PARE_MAX_OPTS, err, sizeof err);
        st = pare_attn_config_new(&cfg[made], kind, kv, nkv);
        lua_pop(L, 1);
        if (st != PARE_OK) st = list ? pare_fail_ctx(st, "model: attention of layer %d", made)
                                     : pare_fail_ctx(st, "model: attention");
    }
    if (st == PARE_OK) st = pare_transformer_build_attn(&m->m, &o, cfg, n);
    for (int i = 0; i < made; i++) pare_attn_config_release(cfg[i]); /* the model holds its own references */
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

typedef struct progress_state { int64_t last_ns; int tty, printed; } progress_state;

static int print_progress(void *ud, const pare_train_progress *p)
{
    progress_state *ps = ud;
    int64_t now = pare_now_ns();
    int last = p->step == p->steps;
    if (p->elapsed_s < 2.0 && !last) return 0;
    if (!last && now - ps->last_ns < (ps->tty ? 250000000LL : 5000000000LL)) return 0;
    if (last && !ps->printed) return 0; /* quick runs stay quiet */
    ps->last_ns = now;
    ps->printed = 1;
    char acc[32] = "";
    if (p->eval_accuracy >= 0) snprintf(acc, sizeof acc, "  eval acc %.3f", p->eval_accuracy);
    else if (!isnan(p->eval_pearson)) snprintf(acc, sizeof acc, "  eval pearson %.3f", p->eval_pearson);
    char bar[21]; /* a progress bar of 20 cells */
    int full = (int)(20 * p->step / (p->steps > 0 ? p->steps : 1));
    for (int i = 0; i < 20; i++) bar[i] = i < full ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "%s[train] [%s] step %lld/%lld  loss %.4f  lr %.2e%s  %.0fs  ETA %.0fs%s", ps->tty ? "\r" : "", bar,
            (long long)p->step, (long long)p->steps, (double)p->loss, (double)p->lr, acc, p->elapsed_s, p->eta_s,
            ps->tty && !last ? "   " : "\n");
    fflush(stderr);
    return 0;
}

/* The distillation table at idx: {teacher = Model, hard_weight = 1, losses = {{loss = ..., student = ...}, ...}}.
 * The teacher stays anchored by the table (an argument of the call). */
static const pare_distill *distill_args(lua_State *L, int idx, pare_distill *d, pare_distill_term *terms)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    memset(d, 0, sizeof *d);
    lua_getfield(L, idx, "teacher");
    lmodel *tm = luaL_testudata(L, -1, MODEL_MT);
    if (!tm || !tm->m) pare_lua_error(L, "train: distill.teacher must be a model (pare.model, pare.load), not a %s", luaL_typename(L, -1));
    d->teacher = tm->m;
    lua_pop(L, 1);
    lua_getfield(L, idx, "losses");
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) < 1)
        pare_lua_error(L, "train: distill.losses must be a list of loss tables {loss = ..., student = ...} (pare help distill_loss)");
    int ls = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, ls);
    if (n > PARE_DISTILL_MAX_TERMS) pare_lua_error(L, "train: %d distillation losses (at most %d)", (int)n, PARE_DISTILL_MAX_TERMS);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, ls, i);
        if (!lua_istable(L, -1)) pare_lua_error(L, "train: distill.losses[%d] must be a table {loss = ..., student = ...}", (int)i);
        pare_options to;
        pare_lua_opts(L, lua_gettop(L), &pare_distill_loss_schema, &to);
        pare_status st = pare_distill_term_from_opts(&terms[i - 1], &to);
        if (st != PARE_OK) pare_lua_status_error(L, st);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    push_opts_without(L, idx, "teacher");
    push_opts_without(L, lua_gettop(L), "losses");
    pare_options od;
    pare_lua_opts(L, lua_gettop(L), &pare_distill_schema, &od);
    lua_pop(L, 2);
    d->hard_weight = (float)pare_opt_num(&od, "hard_weight");
    d->terms = terms;
    d->nterms = (int)n;
    return d;
}

/* r.terms = {{name, loss, weight, first, last}, ...}: each loss term early and late (train.h pare_train_term);
 * r.window = the steps averaged. */
static void push_train_terms(lua_State *L, const pare_train_result *r)
{
    lua_createtable(L, r->nterms, 0);
    for (int k = 0; k < r->nterms; k++) {
        const pare_train_term *t = &r->terms[k];
        lua_createtable(L, 0, 5);
        lua_pushstring(L, t->name), lua_setfield(L, -2, "name");
        lua_pushstring(L, pare_op_name(t->op)), lua_setfield(L, -2, "loss");
        lua_pushnumber(L, t->weight), lua_setfield(L, -2, "weight");
        lua_pushnumber(L, t->first), lua_setfield(L, -2, "first");
        lua_pushnumber(L, t->last), lua_setfield(L, -2, "last");
        lua_rawseti(L, -2, k + 1);
    }
    lua_setfield(L, -2, "terms");
    lua_pushinteger(L, r->window), lua_setfield(L, -2, "window");
}

static int model_train(lua_State *L)
{
    lmodel *m = check_model(L, 1);
    ltask *t = check_task(L, 2);
    pare_options o;
    pare_lua_opts(L, 3, &pare_train_schema, &o);
    pare_distill dist;
    pare_distill_term terms[PARE_DISTILL_MAX_TERMS];
    /* m:train(task, opts [, distill] [, prune_schedule]) */
    pare_train_hooks hooks;
    const pare_train_hooks *hp = NULL;
    pare_head_gate_run gate_run = {0};
    int dist_idx = 4;
    if (pare_lua_prune_hooks(L, 4, &hooks)) hp = &hooks, dist_idx = 0;
    else if (pare_lua_prune_hooks(L, 5, &hooks)) hp = &hooks;
    if (pare_head_gates_count(m->m)) { /* a gated model trains under its L0 penalty (compress/prune/heads.h) */
        if (hp) return luaL_error(L, "train: a model with head gates trains under their L0 penalty, which does not combine "
                                     "with a prune schedule (prune the gated heads first: m:prune_gated_heads())");
        hooks = pare_head_gates_hooks(&gate_run), hp = &hooks;
    }
    const pare_distill *dp = !dist_idx || lua_isnoneornil(L, dist_idx) ? NULL : distill_args(L, dist_idx, &dist, terms);
    progress_state ps = {0, isatty(2), 0};
    const char *quiet = getenv("PARE_PROGRESS"); /* PARE_PROGRESS=0: no progress lines (the test runner sets it) */
    int show = !(quiet && !strcmp(quiet, "0")) && !(pare_dist_data_parallel() && pare_dist_rank() > 0); /* one line: rank 0 */
    pare_train_result r;
    /* measured memory of training: how far the process's peak resident set rises above where it starts
     * (activations and their gradients, parameter gradients, optimizer state, attention caches) */
    int reset = pare_mem_reset_peak();
    int64_t rss0 = pare_mem_rss_bytes();
    pare_status st = pare_train_ex(m->m, &t->train, &t->test, &o, dp, hp, show ? print_progress : NULL, &ps, &r);
    int64_t hwm = pare_mem_hwm_bytes();
    if (ps.printed && ps.tty && r.steps != pare_opt_int(&o, "steps")) fputc('\n', stderr);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, r.steps), lua_setfield(L, -2, "steps");
    lua_pushnumber(L, r.final_loss), lua_setfield(L, -2, "loss");
    lua_pushnumber(L, r.seconds), lua_setfield(L, -2, "seconds");
    lua_pushinteger(L, r.ranks), lua_setfield(L, -2, "ranks"); /* data-parallel under mpirun (docs/distributed.md) */
    lua_pushnumber(L, r.comm_seconds), lua_setfield(L, -2, "comm_seconds");
    lua_pushnumber(L, r.wait_seconds), lua_setfield(L, -2, "wait_seconds");
    if (pare_model_regression_target(m->m) >= 0) lua_pushnumber(L, r.best_eval_pearson), lua_setfield(L, -2, "best_eval_pearson");
    else lua_pushnumber(L, r.best_eval_accuracy), lua_setfield(L, -2, "best_eval_accuracy");
    if (reset && rss0 > 0 && hwm >= rss0) lua_pushinteger(L, hwm - rss0), lua_setfield(L, -2, "peak_growth_bytes");
    lua_pushinteger(L, (lua_Integer)r.planned_bytes), lua_setfield(L, -2, "planned_bytes");
    lua_pushinteger(L, r.recomputed_nodes), lua_setfield(L, -2, "recomputed_nodes");
    if (r.stages > 0) { /* r.pipeline = {schedule, stages, stage, micro_batches, bubble = {per stage}, bubble_theory,
                           stage_bytes, stage_busy = {per stage}, msg_bytes} (docs/distributed.md) */
        lua_createtable(L, 0, 7);
        lua_pushstring(L, r.schedule), lua_setfield(L, -2, "schedule");
        lua_pushinteger(L, r.stages), lua_setfield(L, -2, "stages");
        lua_pushinteger(L, r.stage), lua_setfield(L, -2, "stage");
        lua_pushinteger(L, r.micro_batches), lua_setfield(L, -2, "micro_batches");
        lua_pushnumber(L, r.bubble_theory), lua_setfield(L, -2, "bubble_theory");
        lua_createtable(L, r.stages, 0);
        for (int k = 0; k < r.stages; k++) lua_pushnumber(L, r.bubble[k]), lua_rawseti(L, -2, k + 1);
        lua_setfield(L, -2, "bubble");
        lua_createtable(L, r.stages, 0);
        for (int k = 0; k < r.stages; k++) lua_pushinteger(L, (lua_Integer)r.stage_bytes[k]), lua_rawseti(L, -2, k + 1);
        lua_setfield(L, -2, "stage_bytes");
        lua_createtable(L, r.stages, 0);
        for (int k = 0; k < r.stages; k++) lua_pushnumber(L, r.stage_busy[k]), lua_rawseti(L, -2, k + 1);
        lua_setfield(L, -2, "stage_busy");
        lua_pushnumber(L, r.msg_bytes), lua_setfield(L, -2, "msg_bytes");
        lua_setfield(L, -2, "pipeline");
    }
    push_train_terms(L, &r);
    return 1;
}

/* pare.mutual({m1, m2, ...}, task, train_opts [, {hard_weight, weight, temperature}]) -> {result per model}:
 * online distillation (Deep Mutual Learning, train.h pare_train_mutual); the models are trained in place. */
static int l_mutual(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer k = (lua_Integer)lua_rawlen(L, 1);
    if (k < 2 || k > PARE_MUTUAL_MAX)
        return pare_lua_error(L, "mutual: give a list of 2 to %d models (got %d)", PARE_MUTUAL_MAX, (int)k);
    pare_model *ms[PARE_MUTUAL_MAX];
    for (lua_Integer i = 1; i <= k; i++) {
        lua_geti(L, 1, i); /* the model stays referenced by the table at 1 */
        lmodel *lm = luaL_testudata(L, -1, MODEL_MT);
        if (!lm || !lm->m) return pare_lua_error(L, "mutual: models[%d] must be a model (pare.model, pare.load)", (int)i);
        ms[i - 1] = lm->m;
        lua_pop(L, 1);
    }
    ltask *t = check_task(L, 2);
    pare_options o, mo;
    pare_lua_opts(L, 3, &pare_train_schema, &o);
    pare_lua_opts(L, 4, &pare_mutual_schema, &mo);
    pare_mutual mu = {(float)pare_opt_num(&mo, "hard_weight"), (float)pare_opt_num(&mo, "weight"),
                      (float)pare_opt_num(&mo, "temperature")};
    progress_state ps = {0, isatty(2), 0};
    const char *quiet = getenv("PARE_PROGRESS");
    int show = !(quiet && !strcmp(quiet, "0"));
    pare_train_result r[PARE_MUTUAL_MAX];
    pare_status st = pare_train_mutual(ms, (int)k, &t->train, &t->test, &o, &mu, show ? print_progress : NULL, &ps, r);
    if (ps.printed && ps.tty && r[0].steps != pare_opt_int(&o, "steps")) fputc('\n', stderr);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, (int)k, 0);
    for (int i = 0; i < (int)k; i++) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, r[i].steps), lua_setfield(L, -2, "steps");
        lua_pushnumber(L, r[i].final_loss), lua_setfield(L, -2, "loss");
        lua_pushnumber(L, r[i].seconds), lua_setfield(L, -2, "seconds");
        lua_pushnumber(L, r[i].best_eval_accuracy), lua_setfield(L, -2, "best_eval_accuracy");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* m:capture(task, names [, {split, first, n, batch}]): the C buffers live in a userdata whose __gc frees
 * them, so a memory error while filling the Lua tables leaks nothing. */
#define CAPTURE_MT "pare.Capture"
#define CAPTURE_MAX 32
typedef struct lcapture { int k; pare_captured c[CAPTURE_MAX]; } lcapture;

static int capture_gc(lua_State *L)
{
    lcapture *c = luaL_checkudata(L, 1, CAPTURE_MT);
    for (int i = 0; i < c->k; i++) {
        pare_free(c->c[i].data);
        c->c[i].data = NULL;
    }
    c->k = 0;
    return 0;
}

static int model_capture(lua_State *L)
{
    lmodel *m = check_model(L, 1);
    ltask *t = check_task(L, 2);
    const char *names[CAPTURE_MAX];
    int k = 0;
    if (lua_type(L, 3) == LUA_TSTRING) names[k++] = lua_tostring(L, 3);
    else if (lua_istable(L, 3)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
        if (n < 1 || n > CAPTURE_MAX) return pare_lua_error(L, "capture: give 1 to %d value names (got %d)", CAPTURE_MAX, (int)n);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, 3, i); /* the string stays alive in the table at 3 */
            if (lua_type(L, -1) != LUA_TSTRING) return pare_lua_error(L, "capture: names[%d] must be a string", (int)i);
            names[k++] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    } else return pare_lua_error(L, "capture: names must be a string or a list of strings (node names: m:layers())");
    pare_options o;
    pare_lua_opts(L, 4, &capture_schema, &o);
    const pare_dataset *d = task_split(L, t, pare_opt_str(&o, "split"));
    int64_t first = pare_opt_int(&o, "first") - 1, n = pare_opt_int(&o, "n");
    if (first >= d->n) /* pare_fail formats with printf (%lld); Lua's formatter does not */
        return pare_lua_status_error(L, pare_fail(PARE_EINVAL, "capture: first=%lld is past the %lld examples of %s",
                                                  (long long)first + 1, (long long)d->n, d->name));
    if (n == 0) n = d->n - first;
    lcapture *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CAPTURE_MT);
    pare_status st = pare_capture(m->m, d, first, n, pare_opt_int(&o, "batch"), names, k, c->c);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    c->k = k;
    lua_createtable(L, 0, k);
    for (int i = 0; i < k; i++) {
        const pare_captured *v = &c->c[i];
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, v->rows), lua_setfield(L, -2, "rows");
        lua_pushinteger(L, v->cols), lua_setfield(L, -2, "cols");
        int64_t len = v->rows * v->cols;
        lua_createtable(L, len < INT32_MAX ? (int)len : 0, 0);
        for (int64_t j = 0; j < len; j++) lua_pushnumber(L, v->data[j]), lua_rawseti(L, -2, j + 1);
        lua_setfield(L, -2, "values");
        lua_setfield(L, -2, names[i]);
    }
    return 1; /* the userdata is garbage now and frees the buffers */
}

/* Optional {split=, batch=} table at index i. */
static void split_opts_ex(lua_State *L, int i, const char **split, lua_Integer *batch, int *per_example)
{
    *split = "test";
    *batch = 64;
    if (per_example) *per_example = 0;
    if (lua_isnoneornil(L, i)) return;
    luaL_checktype(L, i, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, i)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (!strcmp(k, "split")) *split = luaL_checkstring(L, -1);
        else if (!strcmp(k, "batch")) *batch = luaL_checkinteger(L, -1);
        else if (per_example && !strcmp(k, "per_example")) *per_example = lua_toboolean(L, -1);
        else pare_lua_error(L, "evaluate: unknown option '%s' (valid: split, batch%s)", k, per_example ? ", per_example" : "");
        lua_pop(L, 1);
    }
    if (*batch < 1) pare_lua_error(L, "evaluate: batch=%d must be >= 1", (int)*batch);
}
static void split_opts(lua_State *L, int i, const char **split, lua_Integer *batch) { split_opts_ex(L, i, split, batch, NULL); }

/* r.correct = {1 or 0 per example}: a classifier's argmax against the labels, for paired statistics over the
 * evaluation set (tune.lua's bootstrap acceptance). Sets the field of the table on top of the stack. */
static void push_correct(lua_State *L, pare_model *m, const pare_dataset *d, lua_Integer batch)
{
    if (d->kind != PARE_TASK_CLASSIFY) pare_lua_error(L, "evaluate: per_example needs a classification task (%s is not one)", d->name);
    float *logits = NULL;
    int64_t rows = 0;
    pare_status st = pare_predict_logits(m, d, batch, &logits, &rows);
    if (st != PARE_OK) pare_lua_status_error(L, st);
    int64_t C = rows == d->n && d->n > 0 ? d->nclass : 0;
    lua_createtable(L, (int)d->n, 0);
    for (int64_t i = 0; C && i < d->n; i++) {
        const float *r = logits + i * C;
        int64_t arg = 0;
        for (int64_t c = 1; c < C; c++) if (r[c] > r[arg]) arg = c;
        lua_pushinteger(L, arg == d->labels[i]), lua_rawseti(L, -2, i + 1);
    }
    pare_free(logits);
    if (!C) pare_lua_error(L, "evaluate: per_example: %lld rows of logits for %lld examples", (long long)rows, (long long)d->n);
    lua_setfield(L, -2, "correct");
}

static int model_evaluate(lua_State *L)
{
    lmodel *m = check_model(L, 1);
    ltask *t = check_task(L, 2);
    const char *split;
    lua_Integer batch;
    int per_example;
    split_opts_ex(L, 3, &split, &batch, &per_example);
    const pare_dataset *d = task_split(L, t, split);
    pare_eval_result e;
    pare_status st = pare_evaluate(m->m, d, batch, &e);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    if (e.regression) {
        lua_createtable(L, 0, 5);
        lua_pushnumber(L, e.pearson), lua_setfield(L, -2, "pearson");
        lua_pushnumber(L, e.spearman), lua_setfield(L, -2, "spearman");
        lua_pushnumber(L, e.mse), lua_setfield(L, -2, "mse");
        lua_pushnumber(L, e.loss), lua_setfield(L, -2, "loss");
        lua_pushinteger(L, e.n), lua_setfield(L, -2, "n");
        return 1;
    }
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, e.accuracy), lua_setfield(L, -2, "accuracy");
    lua_pushnumber(L, e.loss), lua_setfield(L, -2, "loss");
    lua_pushnumber(L, e.perplexity), lua_setfield(L, -2, "perplexity");
    lua_pushinteger(L, e.n), lua_setfield(L, -2, "n");
    if (per_example) push_correct(L, m->m, d, batch);
    return 1;
}

/* m:translate(task [, {split = "test", first = 1, n = 0, max_len = 0, batch = 64}]) -> {bleu, bp, precisions =
 * {p1..p4}, hyp_len, ref_len, n, examples = {"hypothesis ||| reference", ...} (the first three)}: greedy
 * translations of an encdec model and their corpus BLEU (eval/translate.h). */
static int max_len_opt(lua_State *L, const char *k, void *ud)
{
    if (strcmp(k, "max_len")) return 0;
    *(lua_Integer *)ud = luaL_checkinteger(L, -1);
    return 1;
}

static int model_translate(lua_State *L)
{
    lmodel *m = check_model(L, 1);
    check_task(L, 2);
    pare_lua_range r = {"test", 1, 0, 64};
    lua_Integer max_len = 0;
    pare_lua_range_opts(L, 3, "translate", &r, max_len_opt, &max_len, "max_len");
    lua_Integer first = r.first, n = r.n, batch = r.batch;
    const pare_dataset *d = pare_lua_check_range(L, 2, r.split, "translate", first, &n);
    pare_bleu b;
    pare_status st = pare_translate_bleu(m->m, d, first - 1, n, max_len, batch, &b);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 8);
    lua_pushnumber(L, b.bleu), lua_setfield(L, -2, "bleu");
    lua_pushnumber(L, b.bp), lua_setfield(L, -2, "bp");
    lua_createtable(L, PARE_BLEU_ORDER, 0);
    for (int k = 0; k < PARE_BLEU_ORDER; k++) lua_pushnumber(L, b.precisions[k]), lua_rawseti(L, -2, k + 1);
    lua_setfield(L, -2, "precisions");
    lua_pushinteger(L, b.hyp_len), lua_setfield(L, -2, "hyp_len");
    lua_pushinteger(L, b.ref_len), lua_setfield(L, -2, "ref_len");
    lua_pushinteger(L, n), lua_setfield(L, -2, "n");
    /* a few translations as text, decoded with the target vocabulary */
    int64_t ne = n < 3 ? n : 3, ml = max_len ? max_len : (d->T < m->m->max_T ? d->T : m->m->max_T);
    int32_t hyp[3 * 512];
    int64_t hl[3];
    lua_createtable(L, (int)ne, 0);
    if (ml <= 512 && pare_translate_greedy(m->m, d, first - 1, ne, ml, ne, hyp, hl) == PARE_OK) {
        for (int64_t i = 0; i < ne; i++) {
            luaL_Buffer buf;
            luaL_buffinit(L, &buf);
            const int32_t *r;
            int64_t rl = pare_translate_reference(d, first - 1 + i, &r);
            for (int64_t k = 0; k < hl[i]; k++) {
                if (k) luaL_addchar(&buf, ' ');
                luaL_addstring(&buf, d->vocab_names ? d->vocab_names[hyp[i * ml + k]] : "?");
            }
            luaL_addstring(&buf, " |||");
            for (int64_t k = 0; k < rl; k++) {
                luaL_addchar(&buf, ' ');
                luaL_addstring(&buf, d->vocab_names ? d->vocab_names[r[k]] : "?");
            }
            luaL_pushresult(&buf);
            lua_rawseti(L, -2, i + 1);
        }
    }
    lua_setfield(L, -2, "examples");
    return 1;
}

/* Agreement of two models' outputs on a split (eval/fidelity.h): cosine of the logits, max |Δ|, argmax
 * agreement; non-finite logits raise an error naming the model, the batch and the first layer. */
static int model_fidelity(lua_State *L)
{
    lmodel *m = check_model(L, 1), *ref = check_model(L, 2);
    ltask *t = check_task(L, 3);
    const char *split;
    lua_Integer batch;
    split_opts(L, 4, &split, &batch);
    const pare_dataset *d = task_split(L, t, split);
    pare_fidelity_result f;
    pare_status st = pare_fidelity(&f, m->m, ref->m, d, batch);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 3);
    lua_pushnumber(L, f.cosine), lua_setfield(L, -2, "cosine");
    lua_pushnumber(L, f.max_abs_err), lua_setfield(L, -2, "max_abs_err");
    lua_pushnumber(L, f.agreement), lua_setfield(L, -2, "agreement");
    return 1;
}

/* m:attention_fidelity(task, {specs = {"longformer:window=8", ...}, layer = 0, n = 32, split = "test"})
 * -> one table per spec: {spec, rel_err, max_abs_err, cosine, pairs, pairs_frac, T, H, D, causal, nonfinite}
 * (nonfinite > 0: the variant's output held NaN/Inf and the three errors are NaN). */
static int model_attention_fidelity(lua_State *L)
{
    lmodel *m = check_model(L, 1);
    ltask *t = check_task(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    const char *split = "test";
    lua_Integer layer = 0, n = 32;
    int specs_idx = 0;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (!strcmp(k, "split")) split = luaL_checkstring(L, -1);
        else if (!strcmp(k, "layer")) layer = luaL_checkinteger(L, -1);
        else if (!strcmp(k, "n")) n = luaL_checkinteger(L, -1);
        else if (!strcmp(k, "specs")) luaL_checktype(L, -1, LUA_TTABLE);
        else return pare_lua_error(L, "attention_fidelity: unknown option '%s' (valid: specs, layer, n, split)", k);
        lua_pop(L, 1);
    }
    lua_getfield(L, 3, "specs");
    if (!lua_istable(L, -1)) return pare_lua_error(L, "attention_fidelity: specs = {\"kind:k=v\", ...} is required");
    specs_idx = lua_gettop(L);
    int ns = (int)luaL_len(L, specs_idx);
    if (ns < 1) return pare_lua_error(L, "attention_fidelity: specs is empty");
    const pare_dataset *d = task_split(L, t, split);
    const char **specs = lua_newuserdatauv(L, sizeof(char *) * (size_t)ns, 0);
    pare_attn_fid *r = lua_newuserdatauv(L, sizeof *r * (size_t)ns, 0);
    for (int i = 0; i < ns; i++) {
        lua_geti(L, specs_idx, i + 1);
        specs[i] = luaL_checkstring(L, -1); /* kept alive by the specs table */
        lua_pop(L, 1);
    }
    pare_status st = pare_attn_fidelity(r, m->m, d, layer, n, specs, ns);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, ns, 0);
    for (int i = 0; i < ns; i++) {
        lua_createtable(L, 0, 10);
        lua_pushstring(L, specs[i]), lua_setfield(L, -2, "spec");
        lua_pushnumber(L, r[i].rel_err), lua_setfield(L, -2, "rel_err");
        lua_pushnumber(L, r[i].max_abs_err), lua_setfield(L, -2, "max_abs_err");
        lua_pushnumber(L, r[i].cosine), lua_setfield(L, -2, "cosine");
        lua_pushinteger(L, r[i].pairs), lua_setfield(L, -2, "pairs");
        lua_pushnumber(L, r[i].pairs_frac), lua_setfield(L, -2, "pairs_frac");
        lua_pushinteger(L, r[i].T), lua_setfield(L, -2, "T");
        lua_pushinteger(L, r[i].H), lua_setfield(L, -2, "H");
        lua_pushinteger(L, r[i].D), lua_setfield(L, -2, "D");
        lua_pushboolean(L, r[i].causal), lua_setfield(L, -2, "causal");
        lua_pushinteger(L, r[i].nonfinite), lua_setfield(L, -2, "nonfinite");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* A table of op = category (amp's policy = {gelu = "fp32"}) as the pass's "op=category,..." text, pushed; the
 * table at idx. Keys and values must be strings. */
static void push_policy_text(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    char text[2048];
    size_t u = 0;
    text[0] = '\0';
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
            const char *kt = luaL_typename(L, -2), *vt = luaL_typename(L, -1);
            lua_pop(L, 2);
            pare_lua_error(L, "amp policy: entries must be op = \"lower\" | \"follow\" | \"fp32\" (strings), got a %s key "
                           "and a %s value", kt, vt);
        }
        if (u < sizeof text)
            u += (size_t)snprintf(text + u, sizeof text - u, "%s%s=%s", u ? "," : "", lua_tostring(L, -2), lua_tostring(L, -1));
    }
    if (u >= sizeof text) pare_lua_error(L, "amp policy: too many entries");
    lua_pushstring(L, text);
}

/* pare.amp_policy([edits]) -> {op = category} of every op with a category: the defaults, with edits (a table
 * {gelu = "fp32"} or the text "gelu=fp32,...") applied; an invalid edit raises, naming the choices */
static int l_amp_policy(lua_State *L)
{
    pare_amp_cat pol[PARE_OP_COUNT];
    pare_amp_policy_default(pol);
    const char *edits = "";
    if (lua_istable(L, 1)) push_policy_text(L, 1), edits = lua_tostring(L, -1);
    else if (!lua_isnoneornil(L, 1)) edits = luaL_checkstring(L, 1);
    if (pare_amp_policy_parse(pol, edits) != PARE_OK) return pare_lua_status_error(L, PARE_EINVAL);
    lua_createtable(L, 0, PARE_OP_COUNT);
    for (int i = 0; i < PARE_OP_COUNT; i++)
        if (pol[i] != PARE_AMP_NONE) lua_pushstring(L, pare_amp_cat_name(pol[i])), lua_setfield(L, -2, pare_op_name(i));
    return 1;
}

static int l_apply(lua_State *L)
{
    lmodel *m = check_model(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const pare_pass *p = pare_pass_find(name);
    if (!p) return pare_lua_status_error(L, PARE_EINVAL);
    /* calib = <task> (its train split) is data, not an option: copy the other keys to a fresh table */
    pare_pass_ctx ctx = {0};
    int opt_idx = 3;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "calib");
        if (!lua_isnil(L, -1)) {
            ltask *t = luaL_testudata(L, -1, TASK_MT);
            if (!t) return pare_lua_error(L, "%s: calib must be a task (pare.task(...)), not a %s", name, luaL_typename(L, -1));
            ctx.calib = &t->train;
        }
        lua_pop(L, 1);
        push_opts_without(L, 3, "calib");
        opt_idx = lua_gettop(L);
        lua_getfield(L, opt_idx, "policy"); /* amp: policy = {op = category} becomes its "op=category,..." text */
        if (lua_istable(L, -1)) {
            push_policy_text(L, -1);
            lua_setfield(L, opt_idx, "policy");
        }
        lua_pop(L, 1);
    }
    pare_kv kv[PARE_MAX_OPTS];
    int n = pare_lua_table_to_kv(L, opt_idx, kv, PARE_MAX_OPTS, p->schema);
    lmodel *out = lua_newuserdatauv(L, sizeof *out, 0);
    out->m = NULL;
    luaL_setmetatable(L, MODEL_MT);
    pare_status st = pare_apply_ctx(&out->m, m->m, name, kv, n, &ctx);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

/* ---- running a model on given ids ---- */

/* The rows × T integers of field `key` of the batch table at index i (a list of rows), into a malloc'd
 * (rows, T) array, 0-padded; rows and T from the first call (tokens) or checked against them. */
static int32_t *int_rows(lua_State *L, int i, const char *key, int64_t *B, int64_t *T, int required)
{
    lua_getfield(L, i, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (required) pare_lua_error(L, "forward: the batch needs '%s', a list of rows of token ids", key);
        return NULL;
    }
    if (!lua_istable(L, -1)) pare_lua_error(L, "forward: '%s' must be a list of rows (tables of integers)", key);
    int64_t rows = (int64_t)luaL_len(L, -1), width = 0;
    for (int64_t r = 1; r <= rows; r++) {
        lua_geti(L, -1, r);
        if (!lua_istable(L, -1)) pare_lua_error(L, "forward: %s[%d] must be a table of integers", key, (int)r);
        int64_t w = (int64_t)luaL_len(L, -1);
        if (w > width) width = w;
        lua_pop(L, 1);
    }
    if (*B == 0) *B = rows, *T = width;
    if (rows != *B || width > *T || rows < 1 || width < 1)
        pare_lua_error(L, "forward: '%s' has %d rows of up to %d ids; the batch has %d rows of %d", key, (int)rows,
                       (int)width, (int)*B, (int)*T);
    int32_t *v = calloc((size_t)(*B * *T), sizeof *v);
    if (!v) pare_lua_error(L, "forward: out of memory");
    for (int64_t r = 0; r < rows; r++) {
        lua_geti(L, -1, r + 1);
        int64_t w = (int64_t)luaL_len(L, -1);
        for (int64_t c = 0; c < w; c++) {
            lua_geti(L, -1, c + 1);
            int isnum;
            lua_Integer x = lua_tointegerx(L, -1, &isnum);
            lua_pop(L, 1);
            if (!isnum || x < INT32_MIN || x > INT32_MAX) {
                free(v);
                pare_lua_error(L, "forward: %s[%d][%d] is not an integer", key, (int)r + 1, (int)c + 1);
            }
            v[r * *T + c] = (int32_t)x;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return v;
}

static void push_matrix(lua_State *L, const float *data, int64_t rows, int64_t cols)
{
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, rows), lua_setfield(L, -2, "rows");
    lua_pushinteger(L, cols), lua_setfield(L, -2, "cols");
    int64_t len = rows * cols;
    lua_createtable(L, len < INT32_MAX ? (int)len : 0, 0);
    for (int64_t j = 0; j < len; j++) lua_pushnumber(L, data[j]), lua_rawseti(L, -2, j + 1);
    lua_setfield(L, -2, "values");
}

/* m:forward{tokens = {{...}, ...} [, types = ...] [, lengths = {...}] [, capture = {"enc.1.ln2", ...}]
 *            [, src_tokens = {{...}, ...}, src_lengths = {...}]}
 *   -> {logits = {rows=, cols=, values=}, [name] = {rows=, cols=, values=}, ...}
 * One inference forward on the given ids (rows shorter than the longest are padded; lengths default to
 * each row's own length): logits row-major, (B, classes) or (B·T, vocab), and any value by name. An
 * encoder-decoder takes its source as src_tokens (B rows of up to S ids; S the longest) and src_lengths
 * (default: each row's own length). */
static int model_forward(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int64_t B = 0, T = 0;
    const char *keep[CAPTURE_MAX];
    int nkeep = 0;
    lua_getfield(L, 2, "capture");
    int cap = lua_gettop(L);
    if (lua_istable(L, cap)) {
        int n = (int)luaL_len(L, cap);
        if (n > CAPTURE_MAX) return pare_lua_error(L, "forward: at most %d names to capture", CAPTURE_MAX);
        for (int i = 0; i < n; i++) {
            lua_geti(L, cap, i + 1);
            if (lua_type(L, -1) != LUA_TSTRING) return pare_lua_error(L, "forward: capture[%d] must be a name", i + 1);
            keep[nkeep++] = lua_tostring(L, -1); /* anchored in the capture table */
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, cap)) return pare_lua_error(L, "forward: capture must be a list of value names");
    int32_t *tok = int_rows(L, 2, "tokens", &B, &T, 1);
    int32_t *types = int_rows(L, 2, "types", &B, &T, 0);
    int64_t SB = B, S = 0;
    int32_t *src = NULL, *slen = NULL;
    lua_getfield(L, 2, "src_tokens");
    int has_src = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (has_src) {
        lua_getfield(L, 2, "src_tokens");
        if (lua_istable(L, -1)) /* S: the longest source row */
            for (lua_Integer r = 1; r <= luaL_len(L, -1); r++) {
                lua_geti(L, -1, r);
                if (lua_istable(L, -1) && (int64_t)luaL_len(L, -1) > S) S = (int64_t)luaL_len(L, -1);
                lua_pop(L, 1);
            }
        lua_pop(L, 1);
        src = int_rows(L, 2, "src_tokens", &SB, &S, 1);
        slen = calloc((size_t)B, sizeof *slen);
        lua_getfield(L, 2, "src_lengths");
        lua_getfield(L, 2, "src_tokens");
        for (int64_t b = 0; b < B; b++) {
            lua_geti(L, -1, b + 1);
            slen[b] = (int32_t)luaL_len(L, -1);
            lua_pop(L, 1);
            if (lua_istable(L, -2)) {
                lua_geti(L, -2, b + 1);
                slen[b] = (int32_t)luaL_optinteger(L, -1, slen[b]);
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 2);
    }
    int32_t *len = calloc((size_t)B, sizeof *len);
    lua_getfield(L, 2, "lengths");
    for (int64_t b = 0; b < B; b++) {
        if (lua_istable(L, -1)) {
            lua_geti(L, -1, b + 1);
            len[b] = (int32_t)luaL_optinteger(L, -1, T);
            lua_pop(L, 1);
        } else {
            lua_getfield(L, 2, "tokens");
            lua_geti(L, -1, b + 1);
            len[b] = (int32_t)luaL_len(L, -1);
            lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);
    pare_exec *x = NULL;
    pare_status st = src ? pare_exec_new_src(&x, lm->m, B, T, S, PARE_EXEC_INFER, keep, nkeep)
                         : pare_exec_new_keep(&x, lm->m, B, T, PARE_EXEC_INFER, keep, nkeep);
    if (st == PARE_OK) st = pare_exec_bind(x, tok, len, NULL);
    if (st == PARE_OK && types) st = pare_exec_bind_types(x, types);
    if (st == PARE_OK && src) st = pare_exec_bind_source(x, src, slen);
    if (st == PARE_OK) st = pare_exec_forward(x);
    free(tok), free(types), free(len), free(src), free(slen);
    if (st != PARE_OK) {
        pare_exec_free(x);
        return pare_lua_status_error(L, st);
    }
    lua_createtable(L, 0, 1 + nkeep);
    push_matrix(L, pare_exec_logits(x), lm->m->lm ? B * T : B, lm->m->nclass);
    lua_setfield(L, -2, "logits");
    for (int i = 0; i < nkeep && st == PARE_OK; i++) {
        const float *d;
        int64_t r, c;
        st = pare_exec_value(x, keep[i], &d, &r, &c);
        if (st == PARE_OK) push_matrix(L, d, r, c), lua_setfield(L, -2, keep[i]);
    }
    pare_exec_free(x);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

/* m:save_hf(dir): config.json + model.safetensors in Hugging Face's layout */
static int model_save_hf(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    pare_status st = pare_hf_save(lm->m, luaL_checkstring(L, 2));
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 0;
}

/* m:transfer_from(src) -> {copied =, shape_mismatch =, missing =, unused =, copied_numel =, params = {[name] =
 * "copied"|"shape"|"missing"|"unused"}}: src's parameters copied into m by name and shape (model/transfer.h) */
static void transfer_each(void *ud, const char *name, pare_transfer_what what)
{
    static const char *const words[] = {"copied", "shape", "missing", "unused"};
    lua_State *L = ud; /* the params table is on top */
    lua_pushstring(L, words[what]);
    lua_setfield(L, -2, name);
}

static int model_transfer_from(lua_State *L)
{
    lmodel *dst = check_model(L, 1), *src = check_model(L, 2);
    lua_settop(L, 2);
    lua_newtable(L);
    pare_transfer_report r;
    pare_status st = pare_model_transfer(dst->m, src->m, &r, transfer_each, L);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, r.copied), lua_setfield(L, -2, "copied");
    lua_pushinteger(L, r.shape_mismatch), lua_setfield(L, -2, "shape_mismatch");
    lua_pushinteger(L, r.missing), lua_setfield(L, -2, "missing");
    lua_pushinteger(L, r.unused), lua_setfield(L, -2, "unused");
    lua_pushinteger(L, r.copied_numel), lua_setfield(L, -2, "copied_numel");
    lua_pushvalue(L, 3), lua_setfield(L, -2, "params");
    return 1;
}

/* pare.load_hf(dir) -> model, {arch=, head=, dtype=, tensors=} */
static int l_load_hf(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    lmodel *out = lua_newuserdatauv(L, sizeof *out, 0);
    out->m = NULL;
    luaL_setmetatable(L, MODEL_MT);
    pare_hf_info info;
    pare_status st = pare_hf_load(&out->m, &info, dir);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, info.arch), lua_setfield(L, -2, "arch");
    lua_pushstring(L, info.head), lua_setfield(L, -2, "head");
    lua_pushstring(L, info.dtype), lua_setfield(L, -2, "dtype");
    lua_pushinteger(L, info.tensors), lua_setfield(L, -2, "tensors");
    return 2;
}

/* ---- graph surgery (graph/rewrite.h): each returns a new model, the receiver is unchanged ---- */

/* Integers of the Lua array at index i (argument `what` of `fn`), malloc'd; *n their count. */
static int64_t *int_array(lua_State *L, int i, const char *fn, const char *what, int64_t *n)
{
    luaL_checktype(L, i, LUA_TTABLE);
    *n = (int64_t)luaL_len(L, i);
    int64_t *v = malloc(sizeof *v * (size_t)(*n ? *n : 1));
    if (!v) return luaL_error(L, "%s: out of memory", fn), NULL;
    for (int64_t k = 0; k < *n; k++) {
        lua_geti(L, i, k + 1);
        int isnum;
        lua_Integer x = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum) {
            free(v);
            return pare_lua_error(L, "%s: %s[%d] is not an integer (%s are numbered from 0, as in the layer names)", fn,
                                  what, (int)k + 1, what),
                   NULL;
        }
        v[k] = (int64_t)x;
    }
    return v;
}

/* The node named by argument 2 of a surgery method, which must be of op `op`. */
static int64_t surgery_node(lua_State *L, const pare_model *m, const char *fn, pare_op_id op, const char *example)
{
    const char *name = luaL_checkstring(L, 2);
    int64_t i = pare_model_find_node(m, name);
    /* heads are dropped from self- and cross-attention alike ("dec.0.xattn" in an encdec) */
    if (i >= 0 && op == PARE_OP_ATTENTION && m->nodes[i].op == PARE_OP_CROSS_ATTENTION) return i;
    if (i < 0 || m->nodes[i].op != op)
        return pare_lua_error(L, "%s: '%s' is not %s node of this model (for example '%s'; m:layers(\"*.%s\") lists them)", fn,
                              name, op == PARE_OP_ATTENTION ? "an attention" : "a linear", example,
                              op == PARE_OP_ATTENTION ? "attn" : "ffn.up");
    return i;
}

/* The result of a surgery on a clone of m: pushed as a new model, with the edit recorded in applied. */
static int surgery_result(lua_State *L, pare_model *c, pare_status st, const char *what)
{
    if (st != PARE_OK) {
        pare_model_free(c);
        return pare_lua_status_error(L, st);
    }
    size_t used = strlen(c->applied);
    snprintf(c->applied + used, sizeof c->applied - used, "%s%s", used ? "+" : "", what);
    lmodel *out = lua_newuserdatauv(L, sizeof *out, 0);
    out->m = c;
    luaL_setmetatable(L, MODEL_MT);
    return 1;
}

/* m:drop_heads("enc.3.attn", {0, 5}) -> a model without those heads (their q, k, v rows and the output
 * projection's columns). */
static int model_drop_heads(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    int64_t node = surgery_node(L, lm->m, "drop_heads", PARE_OP_ATTENTION, "enc.0.attn"), n;
    int64_t *h = int_array(L, 3, "drop_heads", "heads", &n);
    int *hi = malloc(sizeof *hi * (size_t)(n ? n : 1));
    pare_model *c = hi ? pare_model_clone(lm->m) : NULL;
    pare_status st = c ? PARE_OK : PARE_ENOMEM;
    for (int64_t k = 0; st == PARE_OK && k < n; k++) hi[k] = h[k] < INT32_MIN || h[k] > INT32_MAX ? -1 : (int)h[k];
    if (st == PARE_OK) st = pare_model_drop_heads(c, node, hi, (int)n);
    free(h), free(hi);
    char what[PARE_NAME_MAX + 48];
    snprintf(what, sizeof what, "drop_heads(%s:%lld)", lua_tostring(L, 2), (long long)n);
    return surgery_result(L, c, st, what);
}

/* m:prune_tokens{keep = {1, 0.7, 0.5}} (or keep = "1;0.7;0.5") -> a token-pruned model: the pass prune_tokens
 * (compress/prune/tokens.c, docs/pruning-tokens.md) with the list written as its text. */
static int model_prune_tokens(lua_State *L)
{
    check_model(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "keep") != 0)
            return pare_lua_error(L, "prune_tokens: unknown option '%s' (valid: keep)", luaL_tolstring(L, -2, NULL));
        lua_pop(L, 1);
    }
    char text[PARE_OPT_STR_MAX] = "";
    lua_getfield(L, 2, "keep");
    if (lua_istable(L, -1)) {
        size_t used = 0;
        lua_Integer n = luaL_len(L, -1);
        if (n < 1) return pare_lua_error(L, "prune_tokens: keep is an empty list; give shares such as {1, 0.7, 0.5}");
        for (lua_Integer i = 1; i <= n; i++) {
            lua_geti(L, -1, i);
            if (!lua_isnumber(L, -1))
                return pare_lua_error(L, "prune_tokens: keep[%d] is a %s, not a number", (int)i, luaL_typename(L, -1));
            int w = snprintf(text + used, sizeof text - used, "%s%.9g", i > 1 ? ";" : "", (double)lua_tonumber(L, -1));
            if (w < 0 || (size_t)w >= sizeof text - used) return pare_lua_error(L, "prune_tokens: keep has too many shares");
            used += (size_t)w;
            lua_pop(L, 1);
        }
    } else if (lua_type(L, -1) == LUA_TSTRING) snprintf(text, sizeof text, "%s", lua_tostring(L, -1));
    else if (!lua_isnil(L, -1))
        return pare_lua_error(L, "prune_tokens: keep must be a list of shares ({1, 0.7, 0.5}) or their text, not a %s",
                              luaL_typename(L, -1));
    lua_pop(L, 1);
    lua_settop(L, 1);
    lua_pushstring(L, "prune_tokens");
    lua_newtable(L);
    if (text[0]) {
        lua_pushstring(L, text);
        lua_setfield(L, -2, "keep");
    }
    return l_apply(L);
}

/* m:drop_neurons("enc.3.ffn.up", {7, 100, ...}) -> a model without those output channels of the Linear
 * (and the matching input columns of what reads them). */
static int model_drop_neurons(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    int64_t node = surgery_node(L, lm->m, "drop_neurons", PARE_OP_LINEAR, "enc.0.ffn.up"), n;
    int64_t *d = int_array(L, 3, "drop_neurons", "neurons", &n);
    pare_model *c = pare_model_clone(lm->m);
    pare_status st = c ? pare_model_drop_channels(c, node, d, n) : PARE_ENOMEM;
    free(d);
    char what[PARE_NAME_MAX + 48];
    snprintf(what, sizeof what, "drop_neurons(%s:%lld)", lua_tostring(L, 2), (long long)n);
    return surgery_result(L, c, st, what);
}

/* m:remove("enc.3.*") -> a model without the matching nodes (a chain from one value to one of its
 * shape: a layer, or half of one), their input taking their output's place. */
static int model_remove(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    const char *pattern = luaL_checkstring(L, 2);
    pare_model *c = pare_model_clone(lm->m);
    pare_status st = c ? pare_model_remove_nodes(c, pattern) : PARE_ENOMEM;
    char what[PARE_NAME_MAX + 48];
    snprintf(what, sizeof what, "remove(%.60s)", pattern);
    return surgery_result(L, c, st, what);
}

static int model_bench(lua_State *L)
{
    lmodel *m = check_model(L, 1);
    pare_options o;
    pare_lua_opts(L, 2, &bench_schema, &o);
    int64_t T = pare_opt_int(&o, "T");
    if (T == 0) T = m->m->max_T;
    pare_bench_result r;
    pare_warmup_opts w = pare_warmup_defaults();
    w.min_runs = pare_opt_int(&o, "warmup"), w.min_s = pare_opt_num(&o, "warmup_min_s");
    w.max_s = pare_opt_num(&o, "warmup_max_s"), w.tol = pare_opt_num(&o, "warmup_tol");
    pare_status st = pare_bench_forward(m->m, pare_opt_int(&o, "batch"), T, &w, pare_opt_int(&o, "repeats"),
                                        (uint64_t)pare_opt_num(&o, "seed"), &r);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    double med = pare_stats_median(r.samples_ms, (size_t)r.repeats), lo = med, hi = med;
    st = pare_stats_bootstrap_ci(r.samples_ms, (size_t)r.repeats, pare_opt_num(&o, "level"), 2000,
                                 (unsigned long)pare_opt_num(&o, "seed"), &lo, &hi);
    double cpu_med = pare_stats_median(r.cpu_samples_ms, (size_t)r.repeats);
    if (st != PARE_OK) { /* free before raising: a Lua error does not return */
        pare_free(r.samples_ms);
        pare_free(r.cpu_samples_ms);
        return pare_lua_status_error(L, st);
    }
    lua_createtable(L, 0, 16);
    lua_pushnumber(L, med), lua_setfield(L, -2, "median_ms");
    lua_pushnumber(L, lo), lua_setfield(L, -2, "ci_lo_ms");
    lua_pushnumber(L, hi), lua_setfield(L, -2, "ci_hi_ms");
    lua_pushnumber(L, cpu_med), lua_setfield(L, -2, "cpu_median_ms");
    lua_createtable(L, (int)r.repeats, 0);
    for (int64_t i = 0; i < r.repeats; i++) lua_pushnumber(L, r.samples_ms[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, "samples_ms");
    lua_createtable(L, (int)r.repeats, 0);
    for (int64_t i = 0; i < r.repeats; i++) lua_pushnumber(L, r.cpu_samples_ms[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, "cpu_samples_ms");
    pare_free(r.samples_ms);
    pare_free(r.cpu_samples_ms);
    lua_pushinteger(L, (lua_Integer)r.planned_bytes), lua_setfield(L, -2, "planned_bytes");
    lua_pushinteger(L, (lua_Integer)r.activation_bytes), lua_setfield(L, -2, "activation_bytes");
    lua_pushinteger(L, (lua_Integer)r.weight_bytes), lua_setfield(L, -2, "weight_bytes");
    lua_pushinteger(L, (lua_Integer)r.packed_bytes), lua_setfield(L, -2, "packed_bytes");
    lua_pushinteger(L, (lua_Integer)r.measured_peak_bytes), lua_setfield(L, -2, "measured_peak_bytes");
    lua_pushinteger(L, (lua_Integer)r.process_peak_bytes), lua_setfield(L, -2, "process_peak_bytes");
    lua_pushboolean(L, r.peak_was_reset), lua_setfield(L, -2, "peak_was_reset");
    lua_pushinteger(L, (lua_Integer)r.flops), lua_setfield(L, -2, "flops");
    lua_pushnumber(L, med > 0 ? (double)r.flops / (med * 1e-3) * 1e-9 : 0), lua_setfield(L, -2, "gflops_per_s");
    lua_createtable(L, 0, PARE_OP_COUNT);
    for (int i = 0; i < PARE_OP_COUNT; i++) {
        if (!r.flops_by_op[i]) continue;
        lua_pushinteger(L, (lua_Integer)r.flops_by_op[i]);
        lua_setfield(L, -2, pare_op_name((pare_op_id)i));
    }
    lua_setfield(L, -2, "flops_by_op");
    lua_createtable(L, 0, PARE_OP_COUNT);
    for (int i = 0; i < PARE_OP_COUNT; i++) {
        if (r.ms_by_op[i] <= 0) continue;
        lua_pushnumber(L, r.ms_by_op[i]);
        lua_setfield(L, -2, pare_op_name((pare_op_id)i));
    }
    lua_setfield(L, -2, "ms_by_op");
    lua_pushinteger(L, (lua_Integer)r.warmup_runs), lua_setfield(L, -2, "warmup_runs");
    lua_pushnumber(L, r.warmup_s), lua_setfield(L, -2, "warmup_s");
    lua_pushboolean(L, r.warmup_stable), lua_setfield(L, -2, "warmup_stable");
    lua_pushnumber(L, r.warmup_first_ms), lua_setfield(L, -2, "warmup_first_ms");
    lua_pushinteger(L, pare_get_num_threads()), lua_setfield(L, -2, "threads");
    lua_pushinteger(L, pare_opt_int(&o, "batch")), lua_setfield(L, -2, "batch");
    lua_pushinteger(L, T), lua_setfield(L, -2, "T");
    return 1;
}

/* A Linear weight's format in one word: f32, qat, int8, a block format's name, or sim (simulated). */
static const char *linear_label(const pare_model *m, const pare_node *nd)
{
    const pare_param *w = &m->params[nd->param[0]];
    if (w->format == PARE_FMT_F32 && pare_node_find_transform(nd, PARE_TF_FAKE_QUANT)) return "qat";
    return pare_format_label(w);
}

/* The storage format of a model over its Linear weights: "f32", "int8", or "mixed(int8+f32)". */
static const char *model_format(const pare_model *m, char *buf, size_t n)
{
    const char *seen[16];
    int kinds = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        if (m->nodes[i].op != PARE_OP_LINEAR) continue;
        const char *l = linear_label(m, &m->nodes[i]);
        int k = 0;
        while (k < kinds && strcmp(seen[k], l)) k++;
        if (k == kinds && kinds < 16) seen[kinds++] = l;
    }
    if (kinds <= 1) return snprintf(buf, n, "%s", kinds ? seen[0] : "f32"), buf;
    size_t used = (size_t)snprintf(buf, n, "mixed(");
    for (int k = 0; k < kinds && used < n; k++) used += (size_t)snprintf(buf + used, n - used, k ? "+%s" : "%s", seen[k]);
    if (used < n) snprintf(buf + used, n - used, ")");
    return buf;
}

/* m:quant_report() -> one row per Linear: layer, format, kernel (what runs), method, bits_per_weight,
 * size_bytes, simulated, outlier_fraction (LLM.int8: features run in f32 / all, over the calls so far). */
static int model_quant_report(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    const pare_model *m = lm->m;
    lua_newtable(L);
    int k = 1;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const pare_node *nd = &m->nodes[i];
        if (nd->op != PARE_OP_LINEAR) continue;
        const pare_param *w = &m->params[nd->param[0]];
        const pare_qlinear *q = w->q;
        const pare_transform *fq = pare_node_find_transform(nd, PARE_TF_FAKE_QUANT);
        lua_createtable(L, 0, 8);
        lua_pushstring(L, nd->name), lua_setfield(L, -2, "layer");
        lua_pushstring(L, linear_label(m, nd)), lua_setfield(L, -2, "format");
        if (q) lua_pushstring(L, q->desc);
        else if (fq) lua_pushfstring(L, "simulated qat int%d", fq->bits);
        else {
            char impl[96]; /* what an inference executor packs it for (it owns the copy; the model is not written) */
            lua_pushstring(L, pare_f32_pack_impl_for(w->shape[0], w->shape[1], impl, sizeof impl));
        }
        lua_setfield(L, -2, "kernel");
        lua_pushstring(L, q ? q->method : fq ? "qat" : "none"), lua_setfield(L, -2, "method");
        double bits = q ? q->bits : 32.0 * (double)pare_param_numel(w);
        lua_pushnumber(L, bits / (double)pare_param_numel(w)), lua_setfield(L, -2, "bits_per_weight");
        lua_pushinteger(L, (lua_Integer)pare_param_bytes(w)), lua_setfield(L, -2, "size_bytes");
        lua_pushboolean(L, pare_format_get(w->format)->simulated || fq), lua_setfield(L, -2, "simulated");
        if (q && q->act.outlier_threshold > 0 && q->format == PARE_FMT_I8_CHANNEL) {
            long long calls = w->run_calls, cols = w->run_outlier_cols;
            lua_pushnumber(L, calls ? (double)cols / ((double)calls * (double)w->shape[1]) : 0.0);
            lua_setfield(L, -2, "outlier_fraction");
        }
        lua_rawseti(L, -2, k++);
    }
    return 1;
}

/* "real": every Linear on a kernel of its format; "simulated": some layer is fake-quantized. */
static int model_is_simulated(const pare_model *m)
{
    for (int64_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_LINEAR &&
            (pare_format_get(m->params[m->nodes[i].param[0]].format)->simulated ||
             pare_node_find_transform(&m->nodes[i], PARE_TF_FAKE_QUANT)))
            return 1;
    return 0;
}

static int model_info(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    const pare_model *m = lm->m;
    char fmt[64];
    lua_createtable(L, 0, 20);
    lua_pushstring(L, m->kind), lua_setfield(L, -2, "kind");
    lua_pushstring(L, model_format(m, fmt, sizeof fmt)), lua_setfield(L, -2, "format");
    lua_pushstring(L, m->applied[0] ? m->applied : "none"), lua_setfield(L, -2, "applied");
    lua_pushboolean(L, model_is_simulated(m)), lua_setfield(L, -2, "simulated");
    lua_pushboolean(L, strstr(m->applied, "inject_outliers") != NULL), lua_setfield(L, -2, "outliers_injected");
    lua_pushinteger(L, pare_model_param_count(m)), lua_setfield(L, -2, "params");
    lua_pushinteger(L, pare_attn_layers(m)), lua_setfield(L, -2, "attention_layers");
    lua_pushinteger(L, m->nnodes), lua_setfield(L, -2, "nodes"); /* graph nodes: what fusion (the fuse pass) reduces */
    /* each ATTENTION node's configuration, canonically ("full" for dense), in node order, joined by ';' (a
     * string, as every other field: info tables compare by value) */
    luaL_Buffer ab;
    luaL_buffinit(L, &ab);
    for (int64_t i = 0, k = 0; i < m->nnodes; i++)
        if (m->nodes[i].op == PARE_OP_ATTENTION) {
            const pare_attn_config *c = m->nodes[i].a.attn ? m->nodes[i].a.attn : pare_attn_config_default();
            if (k++) luaL_addchar(&ab, ';');
            luaL_addstring(&ab, c->spec);
        }
    luaL_pushresult(&ab);
    lua_setfield(L, -2, "attention");
    lua_pushstring(L, m->config), lua_setfield(L, -2, "config");
    lua_pushinteger(L, (lua_Integer)pare_model_size_bytes(m)), lua_setfield(L, -2, "size_bytes");
    lua_pushnumber(L, (double)pare_model_size_bytes(m) / 1e6), lua_setfield(L, -2, "size_mb");
    lua_pushinteger(L, m->vocab), lua_setfield(L, -2, "vocab");
    lua_pushinteger(L, m->max_T), lua_setfield(L, -2, "max_T");
    lua_pushinteger(L, m->C), lua_setfield(L, -2, "d");
    lua_pushinteger(L, m->H), lua_setfield(L, -2, "heads");
    lua_pushinteger(L, m->L), lua_setfield(L, -2, "layers");
    lua_pushinteger(L, m->F), lua_setfield(L, -2, "ffn");
    lua_pushinteger(L, m->nclass), lua_setfield(L, -2, "classes");
    /* per layer (models edited by m:drop_heads / m:drop_neurons / m:remove differ from layer to layer) */
    lua_newtable(L);
    lua_newtable(L);
    for (int64_t i = 0, kh = 1, kf = 1; i < m->nnodes; i++) {
        const pare_node *n = &m->nodes[i];
        size_t len = strlen(n->name);
        if (n->op == PARE_OP_ATTENTION) lua_pushinteger(L, n->a.heads), lua_rawseti(L, -3, kh++);
        if (n->op == PARE_OP_LINEAR && len > 7 && !strcmp(n->name + len - 7, ".ffn.up"))
            lua_pushinteger(L, m->values[n->out].cols), lua_rawseti(L, -2, kf++);
    }
    lua_setfield(L, -3, "ffn_per_layer");
    lua_setfield(L, -2, "heads_per_layer");
    /* the kernels the Linear layers run on (distinct ones, in layer order; oneDNN names its own) */
    char kern[512] = "";
    size_t used = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        if (m->nodes[i].op != PARE_OP_LINEAR) continue;
        const pare_param *w = &m->params[m->nodes[i].param[0]];
        char one[160];
        const pare_transform *fq = pare_node_find_transform(&m->nodes[i], PARE_TF_FAKE_QUANT);
        if (w->format == PARE_FMT_F32 && fq) snprintf(one, sizeof one, "simulated qat int%d", fq->bits);
        else pare_format_get(w->format)->describe(w, one, sizeof one);
        if (!strstr(kern, one) && used < sizeof kern - 1)
            used += (size_t)snprintf(kern + used, sizeof kern - used, used ? "; %s" : "%s", one);
    }
    lua_pushstring(L, kern), lua_setfield(L, -2, "kernel");
    /* the dtypes the graph's values hold, in enum order: "f32, u8, i32" (docs/dtypes.md) */
    unsigned dts = 0;
    for (int64_t v = 0; v < m->nvalues; v++) dts |= PARE_DTYPE_BIT(m->values[v].dtype);
    char dt[64] = "";
    used = 0;
    for (int t = 0; t < PARE_DTYPE_COUNT; t++)
        if ((dts & PARE_DTYPE_BIT(t)) && used < sizeof dt)
            used += (size_t)snprintf(dt + used, sizeof dt - used, used ? ", %s" : "%s", pare_dtype_name((pare_dtype)t));
    lua_pushstring(L, dt), lua_setfield(L, -2, "dtypes");
    if (m->amp.report[0]) { /* what the amp pass placed (docs/amp.md) */
        lua_pushstring(L, m->amp.report), lua_setfield(L, -2, "amp");
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, m->amp.boundaries), lua_setfield(L, -2, "boundaries");
        lua_pushinteger(L, m->amp.folded), lua_setfield(L, -2, "folded");
        lua_pushinteger(L, m->amp.absorbed), lua_setfield(L, -2, "absorbed");
        lua_pushinteger(L, m->amp.casts), lua_setfield(L, -2, "casts");
        lua_setfield(L, -2, "amp_casts");
    }
    return 1;
}

static int model_layers(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    const char *pat = luaL_optstring(L, 2, "*");
    lua_newtable(L);
    int k = 1;
    for (int64_t i = 0; i < lm->m->nnodes; i++)
        if (pare_name_match(pat, lm->m->nodes[i].name)) lua_pushstring(L, lm->m->nodes[i].name), lua_rawseti(L, -2, k++);
    return 1;
}

static int model_tostring(lua_State *L)
{
    lmodel *lm = luaL_checkudata(L, 1, MODEL_MT);
    if (!lm->m) return lua_pushstring(L, "pare.Model(freed)"), 1;
    char fmt[64];
    lua_pushfstring(L, "pare.Model(%s, d=%d, layers=%d, heads=%d, %s, %d params)", lm->m->kind, (int)lm->m->C,
                    (int)lm->m->L, (int)lm->m->H, model_format(lm->m, fmt, sizeof fmt), (int)pare_model_param_count(lm->m));
    return 1;
}

/* m:save(path [, {masters = true, f32 = true}]): quantized weights in their stored form (docs/checkpoints.md) */
static const pare_opt_spec save_opts[] = {
    {"masters", PARE_OPT_BOOL, "false", 0, 0, NULL, "also write the f32 masters of quantized weights (continued QAT, re-quantizing)"},
    {"f32", PARE_OPT_BOOL, "false", 0, 0, NULL, "f32 masters only, no stored forms (loads as the f32 model)"},
};
static const pare_schema save_schema = {"save", "m:save options", save_opts, (int)(sizeof save_opts / sizeof save_opts[0])};

static int model_save(lua_State *L)
{
    lmodel *lm = check_model(L, 1);
    const char *path = luaL_checkstring(L, 2);
    pare_options o;
    pare_lua_opts(L, 3, &save_schema, &o);
    pare_save_opts so = {.masters = pare_opt_bool(&o, "masters"), .f32 = pare_opt_bool(&o, "f32")};
    /* under mpirun every rank holds the same data-parallel model: rank 0 writes it, once
     * (inside a distributed sweep's point, local mode, each rank saves its own) */
    if (pare_tp_ranks(lm->m))
        return pare_lua_error(L, "save: the model is rank %d's tensor-parallel shard; gather it into a replicated model "
                              "(full:tp_gather(m)) and save that", pare_tp_rank(lm->m));
    if (pare_dist_data_parallel() && pare_dist_rank() > 0) return 0;
    pare_status st = pare_model_save_opts(lm->m, path, &so);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 0;
}

static int l_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lmodel *out = lua_newuserdatauv(L, sizeof *out, 0); /* anchored before the engine allocates */
    out->m = NULL;
    luaL_setmetatable(L, MODEL_MT);
    pare_checkpoint_meta meta;
    pare_status st = pare_model_load_meta(&out->m, &meta, path);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, meta.format), lua_setfield(L, -2, "format");
    lua_pushstring(L, meta.pare_version), lua_setfield(L, -2, "pare_version");
    lua_pushstring(L, meta.applied), lua_setfield(L, -2, "applied");
    lua_pushstring(L, meta.config), lua_setfield(L, -2, "config");
    return 2;
}

static int l_set_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1 || n > 4096) return pare_lua_error(L, "set_threads: %d is outside [1, 4096]", (int)n);
    pare_set_num_threads((int)n);
    return 0;
}

static int l_threads(lua_State *L)
{
    lua_pushinteger(L, pare_get_num_threads());
    return 1;
}

static int l_schema_help(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const pare_schema *s = pare_schema_lookup(name);
    if (!s) {
        char names[1024];
        return pare_lua_error(L, "no technique, task or schema named '%s' (valid: %s)", name,
                          pare_schema_names(names, sizeof names));
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return luaL_error(L, "out of memory");
    pare_schema_print(f, s);
    fclose(f);
    lua_pushlstring(L, buf, len);
    free(buf);
    return 1;
}

void pare_lua_register_engine(lua_State *L)
{
    static const luaL_Reg model_methods[] = {
        {"train", model_train}, {"evaluate", model_evaluate}, {"apply", l_apply}, {"quant_report", model_quant_report},   {"bench", model_bench},
        {"info", model_info},   {"layers", model_layers},     {"fidelity", model_fidelity}, {"save", model_save},
        {"attention_fidelity", model_attention_fidelity}, {"capture", model_capture},
        {"drop_heads", model_drop_heads}, {"drop_neurons", model_drop_neurons}, {"remove", model_remove},
        {"prune_tokens", model_prune_tokens},
        {"forward", model_forward}, {"save_hf", model_save_hf}, {"translate", model_translate},
        {"transfer_from", model_transfer_from},
        {NULL, NULL},
    };
    static const luaL_Reg model_meta[] = {{"__gc", model_gc}, {"__close", model_gc}, {"__tostring", model_tostring}, {NULL, NULL}};
    static const luaL_Reg task_meta[] = {{"__gc", task_gc}, {"__index", task_index}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"task", l_task}, {"model", l_model}, {"apply", l_apply}, {"set_threads", l_set_threads},
        {"threads", l_threads}, {"schema_help", l_schema_help}, {"load", l_load}, {"load_hf", l_load_hf}, {"baseline", l_baseline},
        {"mutual", l_mutual}, {"amp_policy", l_amp_policy},
        {NULL, NULL},
    };
    luaL_newmetatable(L, MODEL_MT);
    luaL_setfuncs(L, model_meta, 0);
    luaL_newlib(L, model_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, TASK_MT);
    luaL_setfuncs(L, task_meta, 0);
    lua_pop(L, 1);
    static const luaL_Reg capture_meta[] = {{"__gc", capture_gc}, {NULL, NULL}};
    luaL_newmetatable(L, CAPTURE_MT);
    luaL_setfuncs(L, capture_meta, 0);
    lua_pop(L, 1);
    luaL_setfuncs(L, funcs, 0); /* into the pare table on top */
    pare_lua_register_attn(L);
    pare_lua_register_text(L);
    pare_lua_register_gen(L);
    pare_lua_register_heads(L);
    pare_lua_register_sensitivity(L);
    pare_lua_register_fastbert(L);
    pare_lua_register_prune(L);
    pare_lua_register_nas(L);
    pare_lua_register_tp(L);
    pare_lua_register_gguf(L);
}
