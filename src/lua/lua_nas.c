/* lua_nas.c — the super-network of compress/nas/supernet.h from Lua (HAT's weight-sharing SuperTransformer);
 * lua/pare/nas.lua builds the search on these.
 *
 *     local b = m:nas_blocks()        -- {layers = 4, heads = {4, 4, 4, 4}, ffn = {256, ...}, names = {"enc.0", ...}}
 *     local sub = m:nas_extract{layers = 2, heads = {2, 4}, ffn = {64, 256}}   -- a plain model (heads/ffn: a number
 *                                                                                -- applies to every layer)
 *     local r = m:nas_train(task, {layers = {2, 3, 4}, heads = {2, 4}, ffn = {64, 128, 256}},
 *                           {steps = 500, sample = "sandwich"})   -- {steps, loss, seconds, largest, smallest, uniform}
 *     local f = m:nas_flops{batch = 1, T = 0}                     -- pare's FLOP count of one forward (T 0: max_T)
 *
 * Deliberately thin: parsing the tables, calling the engine, raising its message.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/nas/supernet.h"
#include "core/timer.h"
#include "graph/exec.h"
#include "lua/lua_engine.h"
#include "lua/lua_util.h"

/* Only the keys in valid (comma-separated) may appear in the table at idx. */
static void check_keys(lua_State *L, int idx, const char *fn, const char *valid)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        size_t n = k ? strlen(k) : 0;
        const char *p = valid;
        int ok = 0;
        while (k && p && *p) {
            const char *e = strchr(p, ',');
            size_t w = e ? (size_t)(e - p) : strlen(p);
            if (w == n && !strncmp(p, k, n)) ok = 1;
            p = e ? e + 1 : NULL;
        }
        if (!ok) pare_lua_error(L, "%s: unknown key %s (valid: %s)", fn, k ? k : luaL_typename(L, -2), valid);
        lua_pop(L, 1);
    }
}

/* t[key] as a list of integers into v[0..max) (a number is a list of one; a number repeated `fill` times when
 * fill > 0); returns the count. */
static int int_list(lua_State *L, int t, const char *fn, const char *key, int64_t *v, int max, int fill)
{
    lua_getfield(L, t, key);
    int n = 0;
    if (lua_isinteger(L, -1) || (lua_isnumber(L, -1) && lua_type(L, -1) == LUA_TNUMBER)) {
        lua_Number x = lua_tonumber(L, -1);
        if (x != floor(x)) pare_lua_error(L, "%s: %s = %g is not a whole number", fn, key, (double)x);
        int rep = fill > 0 ? fill : 1;
        for (int i = 0; i < rep && i < max; i++) v[n++] = (int64_t)x;
    } else if (lua_istable(L, -1)) {
        lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
        if (len > max) pare_lua_error(L, "%s: %s has %d entries (at most %d)", fn, key, (int)len, max);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_geti(L, -1, i);
            if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) != floor(lua_tonumber(L, -1)))
                pare_lua_error(L, "%s: %s[%d] must be a whole number, not %s", fn, key, (int)i, luaL_tolstring(L, -1, NULL));
            v[n++] = (int64_t)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        pare_lua_error(L, "%s: %s must be a number or a list of numbers, not a %s", fn, key, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    return n;
}

/* The configuration table at idx: {layers = l, heads = {..} | h, ffn = {..} | f}. */
static void check_config(lua_State *L, int idx, pare_nas_config *c)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    check_keys(L, idx, "nas", "layers,heads,ffn");
    memset(c, 0, sizeof *c);
    int64_t v[PARE_NAS_MAX_LAYERS];
    if (int_list(L, idx, "nas", "layers", v, 1, 0) != 1) pare_lua_error(L, "nas: layers must be one number");
    if (v[0] < 1 || v[0] > PARE_NAS_MAX_LAYERS)
        pare_lua_error(L, "nas: layers = %lld is outside [1, %d]", (long long)v[0], PARE_NAS_MAX_LAYERS);
    c->layers = (int)v[0];
    int nh = int_list(L, idx, "nas", "heads", v, PARE_NAS_MAX_LAYERS, c->layers);
    if (nh != c->layers)
        pare_lua_error(L, "nas: heads has %d entries; layers = %d needs %d (or one number for every layer)", nh, c->layers,
                       c->layers);
    for (int i = 0; i < nh; i++) c->heads[i] = v[i] < -(1 << 30) || v[i] > 1 << 30 ? -1 : (int)v[i];
    int nf = int_list(L, idx, "nas", "ffn", v, PARE_NAS_MAX_LAYERS, c->layers);
    if (nf != c->layers)
        pare_lua_error(L, "nas: ffn has %d entries; layers = %d needs %d (or one number for every layer)", nf, c->layers,
                       c->layers);
    for (int i = 0; i < nf; i++) c->ffn[i] = v[i];
}

static void check_space(lua_State *L, int idx, pare_nas_space *sp)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    check_keys(L, idx, "nas space", "layers,heads,ffn");
    memset(sp, 0, sizeof *sp);
    int64_t v[PARE_NAS_MAX_CHOICES];
    sp->nlayers = int_list(L, idx, "nas space", "layers", v, PARE_NAS_MAX_CHOICES, 0);
    for (int i = 0; i < sp->nlayers; i++) sp->layers[i] = v[i] < -(1 << 30) || v[i] > 1 << 30 ? -1 : (int)v[i];
    sp->nheads = int_list(L, idx, "nas space", "heads", v, PARE_NAS_MAX_CHOICES, 0);
    for (int i = 0; i < sp->nheads; i++) sp->heads[i] = v[i] < -(1 << 30) || v[i] > 1 << 30 ? -1 : (int)v[i];
    sp->nffn = int_list(L, idx, "nas space", "ffn", v, PARE_NAS_MAX_CHOICES, 0);
    for (int i = 0; i < sp->nffn; i++) sp->ffn[i] = v[i];
}

static int model_nas_blocks(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    int n, H[PARE_NAS_MAX_LAYERS];
    int64_t F[PARE_NAS_MAX_LAYERS];
    char pre[PARE_NAS_MAX_LAYERS][PARE_NAS_PREFIX_MAX];
    pare_status st = pare_nas_blocks(m, &n, H, F, pre);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, n), lua_setfield(L, -2, "layers");
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) lua_pushinteger(L, H[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, "heads");
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) lua_pushinteger(L, F[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, "ffn");
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) lua_pushstring(L, pre[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, "names");
    return 1;
}

static int model_nas_extract(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    pare_nas_config c;
    check_config(L, 2, &c);
    pare_model **slot = pare_lua_push_model_slot(L);
    pare_status st = pare_nas_extract(slot, m, &c);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    return 1;
}

typedef struct nas_progress { int64_t last_ns; int tty, printed; } nas_progress;

static int nas_print_progress(void *ud, const pare_train_progress *p)
{
    nas_progress *ps = ud;
    int64_t now = pare_now_ns();
    int last = p->step == p->steps;
    if ((p->elapsed_s < 2.0 && !last) || (last && !ps->printed)) return 0;
    if (!last && now - ps->last_ns < (ps->tty ? 250000000LL : 5000000000LL)) return 0;
    ps->last_ns = now, ps->printed = 1;
    fprintf(stderr, "%s[nas_train] step %lld/%lld  loss %.4f  lr %.2e  %.0fs  ETA %.0fs%s", ps->tty ? "\r" : "",
            (long long)p->step, (long long)p->steps, (double)p->loss, (double)p->lr, p->elapsed_s, p->eta_s,
            ps->tty && !last ? "   " : "\n");
    fflush(stderr);
    return 0;
}

static int model_nas_train(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    const struct pare_dataset *d = pare_lua_check_split(L, 2, "train");
    pare_nas_space sp;
    check_space(L, 3, &sp);
    pare_options o;
    pare_lua_opts(L, 4, &pare_nas_train_schema, &o);
    const char *quiet = getenv("PARE_PROGRESS");
    nas_progress ps = {0, isatty(2), 0};
    pare_nas_train_result r;
    pare_status st = pare_nas_train(m, &sp, d, &o, quiet && !strcmp(quiet, "0") ? NULL : nas_print_progress, &ps, &r);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, r.steps), lua_setfield(L, -2, "steps");
    lua_pushnumber(L, r.final_loss), lua_setfield(L, -2, "loss");
    lua_pushnumber(L, r.seconds), lua_setfield(L, -2, "seconds");
    lua_pushinteger(L, r.largest), lua_setfield(L, -2, "largest");
    lua_pushinteger(L, r.smallest), lua_setfield(L, -2, "smallest");
    lua_pushinteger(L, r.uniform), lua_setfield(L, -2, "uniform");
    return 1;
}

/* m:nas_flops{batch = 1, T = 0}: the FLOPs of one forward at (batch, T) (T 0: the model's max_T). */
static int model_nas_flops(lua_State *L)
{
    pare_model *m = pare_lua_check_model(L, 1);
    lua_Integer B = 1, T = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        check_keys(L, 2, "nas_flops", "batch,T");
        lua_getfield(L, 2, "batch");
        if (!lua_isnil(L, -1)) B = luaL_checkinteger(L, -1);
        lua_getfield(L, 2, "T");
        if (!lua_isnil(L, -1)) T = luaL_checkinteger(L, -1);
        lua_pop(L, 2);
    }
    if (T == 0) T = m->max_T;
    if (B < 1 || T < 1 || T > m->max_T)
        return pare_lua_error(L, "nas_flops: batch = %lld must be >= 1 and T = %lld in [1, %lld]", (long long)B, (long long)T,
                              (long long)m->max_T);
    pare_exec *x = NULL;
    pare_status st = pare_exec_new(&x, m, B, T, PARE_EXEC_INFER);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    int64_t f = pare_exec_flops(x, NULL);
    pare_exec_free(x);
    lua_pushinteger(L, f);
    return 1;
}

void pare_lua_register_nas(lua_State *L)
{
    static const luaL_Reg methods[] = {{"nas_blocks", model_nas_blocks}, {"nas_extract", model_nas_extract},
                                       {"nas_train", model_nas_train},   {"nas_flops", model_nas_flops},
                                       {NULL, NULL}};
    luaL_getmetatable(L, "pare.Model");
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}
