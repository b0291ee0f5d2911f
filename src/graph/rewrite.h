/* rewrite.h — editing a built graph: insert, rewire and remove nodes; resize a parameter and every
 * value that depends on it; check that what is left is a graph the executors can run.
 *
 * Techniques that change a model's shape (structured pruning removes heads, neurons and layers; fusion
 * replaces nodes) edit a clone of the model with these calls; the planner and the executors are built
 * afterwards from the edited graph, which they read as it is (executors made before an edit must be
 * freed: they hold buffers sized for the old shapes). Every call checks its arguments and the graph
 * it leaves (pare_model_check); on an error the message names the node, value or parameter, and the
 * model is unchanged for argument errors, or left as it was before the call's edits otherwise.
 *
 *     pare_model *p = pare_model_clone(m);
 *     int heads[] = {0, 5, 7};
 *     PARE_TRY(pare_model_drop_heads(p, pare_model_find_node(p, "enc.4.attn"), heads, 3));
 *     PARE_TRY(pare_model_remove_nodes(p, "enc.1.*"));          // a whole block: its input takes its place
 *     PARE_TRY(pare_model_remove_nodes(p, "enc.0.ln2,enc.0.ffn.*,enc.0.drop2,enc.0.add2")); // an FFN half
 *
 * Resizing follows channels: slicing the output channels of a Linear slices its bias, the values
 * computed elementwise from its output (activations, dropout), the input columns of the Linears that
 * read them, and, for the qkv projection of an attention node, whole heads (q, k and v alike: the
 * attention's output keeps the same heads, and so does the projection reading it). A value read by an
 * op that needs its full width (a residual add, a LayerNorm, a loss) cannot be resized: the model
 * width d is fixed, head counts and FFN widths are per layer.
 *
 * Weights in a quantized storage format cannot be resized (resize first, then quantize: the quantized
 * form was made from the full matrix). The builder's summary (m->L, m->H, m->F) is updated to the
 * number of attention layers, their largest head count and the largest FFN width.
 */
#ifndef PARE_REWRITE_H
#define PARE_REWRITE_H

#include "graph.h"

/* Insert a node before node `at` (0..nnodes; nnodes appends), as pare_model_add_node makes it; its inputs
 * must be produced before `at`. Returns its output value id, -1 with a message on failure. */
int pare_model_insert_node(pare_model *m, int64_t at, pare_op_id op, const char *name, const int *in, int nin,
                           const int *params, int nparam, pare_rows rows, int64_t cols, pare_node_attrs attrs);

/* Every node after `to`'s producer that reads value `from` reads `to` instead (and the model's logits /
 * loss ids follow); both must have the same kind of rows and columns. Returns the number of inputs
 * rewired, -1 with a message on failure. */
int pare_model_replace_uses(pare_model *m, int from, int to);

/* Remove the nodes whose names match the glob `pattern` (several globs separated by commas). The removed nodes may feed the rest of the
 * graph through one value only; when they do, they must read exactly one value of the same shape from
 * the rest (model inputs such as lengths aside), and that value takes the removed output's place: a
 * residual block, its attention or feed-forward half, or any chain from a value to one of its shape.
 * Values and parameters nothing uses any more are dropped. */
pare_status pare_model_remove_nodes(pare_model *m, const char *pattern);

/* Keep the output channels keep[0..nkeep) (strictly increasing) of Linear node `node`, and resize what
 * depends on them (see above). */
pare_status pare_model_keep_channels(pare_model *m, int64_t node, const int64_t *keep, int64_t nkeep);

/* Drop heads[0..n) (distinct, in [0, H)) of attention node `node`: the rows of its qkv projection's
 * weight and bias for those heads' q, k and v, and the columns of the projection that reads its output.
 * At least one head must stay (remove the attention half with pare_model_remove_nodes instead). */
pare_status pare_model_drop_heads(pare_model *m, int64_t node, const int *heads, int n);

/* Drop channels drop[0..n) (distinct, in [0, N)) of Linear node `node`: an FFN's up projection loses those
 * neurons, and the down projection their columns. At least one channel must stay. */
pare_status pare_model_drop_channels(pare_model *m, int64_t node, const int64_t *drop, int64_t n);

/* Drop the values and parameters no node uses (model inputs stay). Node, value and parameter indices
 * change; names do not. */
pare_status pare_model_compact(pare_model *m);

/* Is the graph one the executors can run? Every node's inputs are produced before it (or are inputs),
 * and their shapes, parameters and attributes agree with what its op requires; the model's input,
 * logits and loss ids are in range. PARE_EINVAL naming the node, its op and the mismatch. Checkpoints
 * are checked with it before they run. */
pare_status pare_model_check(const pare_model *m);

/* Sets m->L, m->H, m->F from the graph (attention nodes, their largest head count, the largest output of
 * the Linears named "*.ffn.up"); the builder's values for a model it built. */
void pare_model_refresh_dims(pare_model *m);

#endif
