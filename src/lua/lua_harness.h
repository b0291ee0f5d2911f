/* lua_harness.h — the `pare` Lua module's harness half, and the script runner behind `pare run`.
 *
 * The harness owns everything between an experiment script and the files it produces: results files
 * (pare.experiment → exp:record / rows / has / plot), tables as markdown, statistics, and the
 * pure-Lua helpers in lua/pare/ (pare.sweep, pare.tap), which are loaded on first use.
 * luaopen_pare() builds the module table and then lets the engine add its functions with
 * pare_lua_register_engine(). See docs/harness.md for the Lua API.
 *
 *     int code = pare_lua_run_file("experiments/x.lua", argc - 2, argv + 2);   // from main()
 */
#ifndef PARE_LUA_HARNESS_H
#define PARE_LUA_HARNESS_H

#include <lua.h>

/* Exit codes of pare_lua_run_file (and of `pare run`). */
enum {
    PARE_RUN_OK = 0,
    PARE_RUN_ERROR = 1,   /* the script raised an error (message and traceback on stderr) */
    PARE_RUN_NOFILE = 2,  /* the script file is missing or unreadable */
    PARE_RUN_SYNTAX = 3,  /* the script does not compile (file:line on stderr) */
};

/* Open the `pare` module: pushes the module table (the lua_CFunction of package.preload.pare). */
int luaopen_pare(lua_State *L);

/* Run a script in a fresh Lua state: standard libraries, package.path extended with the repo's
 * lua/ directory (found from /proc/self/exe), the script's own directory and ./lua; `pare`
 * preloaded and global; args ("key=value" or positional words) as pare.args and `arg`.
 * Messages go to stderr. Returns one of the PARE_RUN_* codes; never aborts. */
int pare_lua_run_file(const char *script, int nargs, char **args);

#endif
