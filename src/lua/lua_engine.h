/* lua_engine.h — registration of the engine's Lua functions (models, tasks, training, passes).
 * The harness (lua_harness.c) creates the `pare` module table and calls this with it on the top of
 * the stack; this adds the engine functions to it and leaves the stack as it was. */
#ifndef PARE_LUA_ENGINE_H
#define PARE_LUA_ENGINE_H

#include <lua.h>

void pare_lua_register_engine(lua_State *L);
/* The attention-variant functions (lua_attn.c), same contract; called by pare_lua_register_engine. */
void pare_lua_register_attn(lua_State *L);
/* The tokenizer functions (lua_text.c), same contract; called by pare_lua_register_engine. */
void pare_lua_register_text(lua_State *L);

/* The tokenizer of the pare.tokenizer object at index i, or NULL (lua_text.c). */
struct pare_tokenizer;
struct pare_tokenizer *pare_lua_tokenizer(lua_State *L, int i);
/* The generation methods m:generate and m:generate_bench (lua_gen.c), added to the model's methods;
 * same contract; called by pare_lua_register_engine after the model's metatable exists. */
void pare_lua_register_gen(lua_State *L);
/* Pruning (lua_prune.c): m:prune, m:sparsity, pare.prune_schedule; same contract; called by
 * pare_lua_register_engine after the model's metatable exists. */
void pare_lua_register_prune(lua_State *L);
/* If the value at idx is a pare.prune_schedule (or a pare.snapshot_at), its training hooks into *h and 1; else 0. */
struct pare_train_hooks;
int pare_lua_prune_hooks(lua_State *L, int idx, struct pare_train_hooks *h);
/* The model of the pare.Model userdata at index i (raises if it is not one, or was freed). */
struct pare_model;
struct pare_model *pare_lua_check_model(lua_State *L, int i);
/* Push an empty pare.Model userdata and return its slot: the caller stores a model there, which the userdata
 * then owns (its __gc frees it). Push first, make the model after, so a memory error leaks nothing. */
struct pare_model **pare_lua_push_model_slot(lua_State *L);
/* Lottery tickets (lua_lottery.c): m:snapshot, m:rewind, m:random_masks, m:clone, pare.snapshot_at; same
 * contract; called by pare_lua_register_prune. */
void pare_lua_register_lottery(lua_State *L);
/* If the value at idx is a pare.snapshot_at, its training hooks into *h and 1; else 0. */
int pare_lua_lottery_hooks(lua_State *L, int idx, struct pare_train_hooks *h);
/* The split ("train" | "test") of the pare.task at index i (raises naming the valid splits). */
struct pare_dataset;
const struct pare_dataset *pare_lua_check_split(lua_State *L, int i, const char *split);
/* The same, for examples [first, first + n) of it (1-based; n = 0: to the end, and cut to the end):
 * raises naming fn when first is outside the split or n < 0; writes the n used. */
const struct pare_dataset *pare_lua_check_range(lua_State *L, int i, const char *split, const char *fn, lua_Integer first,
                                                lua_Integer *n);
/* Options of a method that reads a range of examples, from the table at index i (nil: the defaults in r):
 * split, first, n, batch, and keys `more` takes (it returns 1 for a key it read from the value on the top of
 * the stack; more_names lists them for the error). Unknown keys and batch < 1 raise naming fn. */
typedef struct pare_lua_range { const char *split; lua_Integer first, n, batch; } pare_lua_range;
typedef int (*pare_lua_more_opt)(lua_State *L, const char *key, void *ud);
void pare_lua_range_opts(lua_State *L, int i, const char *fn, pare_lua_range *r, pare_lua_more_opt more, void *ud,
                         const char *more_names);
/* FastBERT m:add_exits, m:exits, m:train_exits, m:early_exit (lua_fastbert.c), added like pare_lua_register_gen. */
void pare_lua_register_fastbert(lua_State *L);
/* Head importance m:head_importance (lua_heads.c), added to the model's methods like pare_lua_register_gen. */
void pare_lua_register_heads(lua_State *L);
/* Sensitivities m:hessian_trace, m:weight_error (lua_sensitivity.c), added like pare_lua_register_gen. */
void pare_lua_register_sensitivity(lua_State *L);
/* Super-network methods m:nas_blocks, m:nas_extract, m:nas_train, m:nas_flops (lua_nas.c), added likewise. */
void pare_lua_register_nas(lua_State *L);
/* Tensor parallelism m:tensor_parallel, m:tp_gather, m:gradients (lua_tp.c), added likewise. */
void pare_lua_register_tp(lua_State *L);
/* GGUF (lua_gguf.c): m:save_gguf, pare.gguf_read; called last by pare_lua_register_engine, the pare table on top. */
void pare_lua_register_gguf(lua_State *L);

#endif
