/* lua_harness_internal.h — private to the harness half of the `pare` Lua module: lua_harness.c,
 * lua_experiment.c, lua_tablefmt.c, lua_plot.c and lua_stats.c. The engine and the CLI use
 * lua_harness.h, never this.
 *
 * Holds the metatable and registry names, the experiment userdata, the Lua functions one file
 * defines and another registers, and the small helpers several files share (defined in
 * lua_harness.c unless noted). Helpers that take a `fn` name it in their error messages
 * ("pare.table: ..."); like every binding they raise Lua errors, which longjmp, so callers hold no
 * unanchored memory across them.
 */
#ifndef PARE_LUA_HARNESS_INTERNAL_H
#define PARE_LUA_HARNESS_INTERNAL_H

#include <lua.h>
#include <stddef.h>

#include "core/status.h"
#include "io/h5table.h"
#include "io/plot.h"

#define EXP_MT "pare.experiment"
#define BOX_MT "pare.box"
#define REG_SCRIPT "pare.script" /* registry: path of the running script */
#define REG_PARAMS "pare.params" /* registry: its arguments as JSON text */
#define REG_ARGS "pare.args"     /* registry: the pare.args table */

/* ---- boxes: malloc'd results anchored in Lua so an error cannot leak them ---- */

typedef struct box {
    pare_table t;
    char *text;
    char **names; /* a pare_h5_*_names block */
} box;

/* Push a new empty box (metatable BOX_MT, whose __gc frees what it holds). */
box *pare_lua_push_box(lua_State *L);
/* Read table into a new box on the stack; returns NULL (box holds nothing) when the table is absent. */
pare_table *pare_lua_read_box(lua_State *L, pare_h5_file *f, const char *table);
/* Push an array of names from a pare_h5_*_names result (raising on a failed st), the block boxed
 * under the array. */
int pare_lua_push_names(lua_State *L, pare_status st, char **names, int n);

/* ---- experiments (lua_experiment.c) ---- */

typedef struct exp_schema { /* cached columns of one table */
    char name[PARE_COL_NAME_MAX];
    int ncols;
    pare_col *cols;
    struct exp_schema *next;
} exp_schema;

typedef struct pare_exp {
    pare_h5_file *f; /* NULL once closed */
    char name[PARE_COL_NAME_MAX];
    char path[PARE_PATH_MAX];
    char plots[PARE_PATH_MAX];
    exp_schema *schemas;
    int follower; /* under mpirun, ranks > 0: the file opened read-only and reopened before each use, the
                     writing methods no-ops (rank 0 writes; docs/distributed.md) */
} pare_exp;

/* Register the EXP_MT metatable and its methods (called once by luaopen_pare). */
void pare_lua_open_experiment(lua_State *L);
/* The experiment at idx; raises if it is not one or is closed. */
pare_exp *pare_lua_check_exp(lua_State *L, int idx);
/* pare.experiment(name [, {dir = "results", plots = "plots", seed = n, fresh = false}]) */
int pare_lua_experiment(lua_State *L);

/* ---- the Lua functions of the other harness files ---- */

int pare_lua_table(lua_State *L);       /* pare.table (lua_tablefmt.c) */
int pare_lua_print_table(lua_State *L); /* pare.print_table (lua_tablefmt.c) */
int pare_lua_exp_print(lua_State *L);   /* exp:print (lua_tablefmt.c) */
int pare_lua_plot(lua_State *L);        /* pare.plot (lua_plot.c) */
int pare_lua_render(lua_State *L);      /* pare.render (lua_plot.c) */
int pare_lua_exp_plot(lua_State *L);    /* exp:plot (lua_plot.c) */
void pare_lua_push_stats(lua_State *L); /* pushes the pare.stats table (lua_stats.c) */
void pare_lua_push_mpi(lua_State *L);   /* pushes the pare.mpi table (lua_dist.c) */
void pare_lua_gp_register(lua_State *L); /* adds gp and ei to the table on top of the stack (lua_gp.c) */

/* ---- small shared helpers ---- */

/* The table name at idx; raises naming fn if it is not a valid name. */
const char *pare_lua_check_table_name(lua_State *L, int idx, const char *fn);
/* "a, b, c": the names of cols[0..ncols) into buf[0..n). */
void pare_lua_col_names(char *buf, size_t n, const pare_col *cols, int ncols);
/* Push a cell as a Lua value; a missing integer is nil. */
void pare_lua_push_cell(lua_State *L, pare_col_type t, pare_cell c);

/* Options tables (idx may be none or nil: the defaults). String values stay alive in the table. */
const char *pare_lua_opt_string(lua_State *L, int idx, const char *key, const char *def);
int pare_lua_opt_bool(lua_State *L, int idx, const char *key);
/* Reject keys of the options table at idx that are not in valid ("a|b|c"). */
void pare_lua_check_keys(lua_State *L, int idx, const char *fn, const char *valid);

/* The file behind arg idx: an experiment (borrowed) or a path (opened read-only; pushes one anchor
 * userdata that closes it). */
pare_h5_file *pare_lua_file_arg(lua_State *L, int idx, const char *fn);
/* Close the files pare_lua_file_arg opened for paths, now rather than at the next collection. */
void pare_lua_close_anchors(lua_State *L);
/* The table name at idx, or the file's only table (may push a boxed names array). */
const char *pare_lua_table_arg(lua_State *L, pare_h5_file *f, int idx, const char *fn);

#endif
