/* serialize.h — a model's graph as JSON: what checkpoints store so that any model pare can run comes
 * back as it was, whatever rewrites made it (pruned heads and neurons, removed layers, QAT scale
 * parameters), without the builder's options.
 *
 *     {"version": 1, "kind": "encoder", "vocab": 12, "max_T": 64, "d": 64, "heads": 4, "layers": 2,
 *      "ffn": 256, "classes": 2, "lm": false,
 *      "inputs":  [{"name": "tokens", "kind": "tokens", "rows": "tokens", "cols": 1}, ...],
 *      "params":  [{"name": "emb.tok.weight", "shape": [12, 64], "trainable": true}, ...],
 *      "nodes":   [{"op": "linear", "name": "enc.0.attn.qkv", "in": ["enc.0.ln1"],
 *                   "params": ["enc.0.attn.qkv.weight", "enc.0.attn.qkv.bias"], "rows": "tokens",
 *                   "cols": 192, "attrs": {"heads": 0, ...}}, ...],
 *      "logits": "head", "loss": "loss"}
 *
 * Inputs are the graph's input values (tokens, lengths, labels, targets); every other value is made
 * by a node (its output, named as the node, and its caches) and is remade by replaying the nodes.
 * Node attributes are written in full; parameters by name. The reader trusts nothing: unknown ops
 * and keys, names that resolve to nothing, duplicate names, out-of-range numbers and shapes the ops
 * cannot run are errors naming the node or parameter, and the rebuilt graph passes pare_model_check.
 */
#ifndef PARE_SERIALIZE_H
#define PARE_SERIALIZE_H

#include <stdint.h>

#include "graph.h"

/* The graph of m as JSON text, malloc'd into *out. */
pare_status pare_graph_to_json(const pare_model *m, char **out);

/* A model with the graph described by json: parameters allocated (zeros) with the shapes it gives, at
 * most max_floats floats in all (the caller knows how much data can fill them). kind, sizes and graph
 * come from the JSON; config and applied are left empty for the caller. */
pare_status pare_graph_from_json(pare_model **out, const char *json, uint64_t max_floats);

#endif
