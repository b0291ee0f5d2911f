/* lua_stats.c — pare.stats: summaries of measurement arrays.
 *
 * Implements: pare.stats.median, mean, stddev, quantile(t, q) and bootstrap_ci(t [, {level,
 * resamples, seed, stat}]) → lo, hi, and metric(name, pred, gold [, nclass]) → value with name one of
 * accuracy, f1 (positive class 1), macro_f1, mcc (class ids, nclass default: 1 + the largest id),
 * pearson, spearman (numbers; eval/metrics.h); gp and ei (lua_gp.c). Arguments are arrays of numbers; an element that is not
 * a number raises an error naming its index.
 *
 * Does not: compute anything itself (src/eval/stats.c does; this converts arrays and options).
 *
 * Entry point (lua_harness_internal.h): pare_lua_push_stats (the pare.stats table, from luaopen_pare).
 */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/options.h"
#include "eval/metrics.h"
#include "eval/stats.h"
#include "lua/lua_harness_internal.h"
#include "lua/lua_util.h"

/* The numbers of the array at idx, in an anchored userdata. */
static double *check_numbers(lua_State *L, int idx, size_t *n, const char *fn)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    double *x = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *x, 0);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, idx, i);
        int isnum;
        x[i - 1] = lua_tonumberx(L, -1, &isnum);
        if (!isnum) {
            char buf[64];
            pare_lua_error(L, "%s: element %d is %s, not a number", fn, (int)i, pare_lua_describe(L, -1, buf, sizeof buf));
        }
        lua_pop(L, 1);
    }
    *n = (size_t)len;
    return x;
}

static int l_stats_median(lua_State *L)
{
    lua_settop(L, 1);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.median");
    lua_pushnumber(L, pare_stats_median(x, n));
    return 1;
}

static int l_stats_mean(lua_State *L)
{
    lua_settop(L, 1);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.mean");
    lua_pushnumber(L, pare_stats_mean(x, n));
    return 1;
}

static int l_stats_stddev(lua_State *L)
{
    lua_settop(L, 1);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.stddev");
    lua_pushnumber(L, pare_stats_stddev(x, n));
    return 1;
}

static int l_stats_quantile(lua_State *L)
{
    lua_settop(L, 2);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.quantile");
    double q = luaL_checknumber(L, 2);
    if (!(q >= 0 && q <= 1)) return pare_lua_error(L, "pare.stats.quantile: q must be in [0, 1]");
    lua_pushnumber(L, pare_stats_quantile(x, n, q));
    return 1;
}

static const pare_opt_spec bootstrap_opts[] = {
    {"level", PARE_OPT_FLOAT, "0.95", 0.5, 0.9999, NULL, "confidence level of the interval"},
    {"resamples", PARE_OPT_INT, "2000", 10, 1e7, NULL, "number of bootstrap resamples"},
    {"seed", PARE_OPT_INT, "1", 0, 4294967295.0, NULL, "seed of GSL's mt19937"},
    {"stat", PARE_OPT_ENUM, "median", 0, 0, "median|mean", "statistic whose interval is estimated"},
};
static const pare_schema bootstrap_schema = {"bootstrap_ci", "percentile bootstrap confidence interval", bootstrap_opts,
                                             (int)(sizeof bootstrap_opts / sizeof bootstrap_opts[0])};

/* pare.stats.bootstrap_ci(t [, {level=0.95, resamples=2000, seed=1, stat="median"}]) → lo, hi */
static int l_stats_bootstrap(lua_State *L)
{
    lua_settop(L, 2);
    size_t n;
    double *x = check_numbers(L, 1, &n, "pare.stats.bootstrap_ci");
    pare_options o;
    pare_lua_opts(L, 2, &bootstrap_schema, &o);
    double lo, hi;
    pare_stat stat = pare_opt_num(&o, "stat") == 0 ? PARE_STAT_MEDIAN : PARE_STAT_MEAN;
    pare_status st = pare_stats_bootstrap_ci_stat(x, n, stat, pare_opt_num(&o, "level"), pare_opt_int(&o, "resamples"),
                                             (unsigned long)pare_opt_num(&o, "seed"), &lo, &hi);
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_pushnumber(L, lo);
    lua_pushnumber(L, hi);
    return 2;
}

/* Class ids from numbers: integral and in [0, 2^31); an error naming the element otherwise. */
static int32_t *to_ids(lua_State *L, const double *x, size_t n, const char *what, int32_t *maxid)
{
    int32_t *y = lua_newuserdatauv(L, (n ? n : 1) * sizeof *y, 0);
    for (size_t i = 0; i < n; i++) {
        if (!(x[i] >= 0 && x[i] < 2147483647.0 && x[i] == floor(x[i]))) {
            char num[32]; /* lua_pushfstring has no %g */
            snprintf(num, sizeof num, "%g", x[i]);
            pare_lua_error(L, "pare.stats.metric: %s[%d] = %s is not a class id (an integer >= 0)", what, (int)i + 1, num);
        }
        y[i] = (int32_t)x[i];
        if (y[i] > *maxid) *maxid = y[i];
    }
    return y;
}

/* pare.stats.metric(name, pred, gold [, nclass]) → value */
static int l_stats_metric(lua_State *L)
{
    lua_settop(L, 4);
    const char *name = luaL_checkstring(L, 1);
    size_t n, m;
    double *x = check_numbers(L, 2, &n, "pare.stats.metric"), *y = check_numbers(L, 3, &m, "pare.stats.metric");
    if (n != m) return pare_lua_error(L, "pare.stats.metric: %d predictions but %d gold values", (int)n, (int)m);
    double v = 0;
    pare_status st;
    if (!strcmp(name, "pearson")) st = pare_metric_pearson(&v, x, y, (int64_t)n);
    else if (!strcmp(name, "spearman")) st = pare_metric_spearman(&v, x, y, (int64_t)n);
    else {
        int32_t maxid = 0;
        int32_t *p = to_ids(L, x, n, "pred", &maxid), *g = to_ids(L, y, n, "gold", &maxid);
        lua_Integer nclass = luaL_optinteger(L, 4, (lua_Integer)maxid + 1);
        if (nclass < 1 || nclass > 1 << 20) return pare_lua_error(L, "pare.stats.metric: nclass %d is out of range", (int)nclass);
        if (!strcmp(name, "accuracy")) st = pare_metric_accuracy(&v, p, g, (int64_t)n);
        else if (!strcmp(name, "f1")) st = pare_metric_f1(&v, p, g, (int64_t)n, 1);
        else if (!strcmp(name, "macro_f1")) st = pare_metric_macro_f1(&v, p, g, (int64_t)n, (int32_t)nclass);
        else if (!strcmp(name, "mcc")) st = pare_metric_mcc(&v, p, g, (int64_t)n, (int32_t)nclass < 2 ? 2 : (int32_t)nclass);
        else
            return pare_lua_error(L, "pare.stats.metric: no metric '%s' (valid: accuracy|f1|macro_f1|mcc|pearson|spearman)",
                                  name);
    }
    if (st != PARE_OK) return pare_lua_status_error(L, st);
    lua_pushnumber(L, v);
    return 1;
}

static const luaL_Reg stats_funcs[] = {{"median", l_stats_median},     {"mean", l_stats_mean},
                                       {"stddev", l_stats_stddev},     {"quantile", l_stats_quantile},
                                       {"bootstrap_ci", l_stats_bootstrap}, {"metric", l_stats_metric},
                                       {NULL, NULL}};

/* Push the pare.stats table. */
void pare_lua_push_stats(lua_State *L)
{
    luaL_newlib(L, stats_funcs);
    pare_lua_gp_register(L); /* gp, ei (lua_gp.c) */
}
