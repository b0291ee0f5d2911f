/* supernet.h — a weight-sharing SuperTransformer (HAT: Wang et al. 2020, "HAT: Hardware-Aware Transformers
 * for Efficient Natural Language Processing", §3.1–3.2): one pare model at the largest configuration whose
 * sub-transformers — the first l blocks, the first h_i heads and the first f_i FFN neurons of block i — are
 * real, smaller pare models whose weights are exact slices of the super-network's.
 *
 *     pare_nas_config c = {.layers = 2, .heads = {2, 4}, .ffn = {64, 128}};
 *     pare_model *sub;
 *     PARE_TRY(pare_nas_extract(&sub, super, &c));       // a plain model: evaluate, bench, save
 *
 *     pare_nas_space sp = {.nlayers = 2, .layers = {1, 2}, .nheads = 2, .heads = {2, 4}, .nffn = 2, .ffn = {64, 128}};
 *     pare_options o;  pare_opts_resolve(&o, &pare_nas_train_schema, kv, n);
 *     PARE_TRY(pare_nas_train(super, &sp, &task.train, &o, NULL, NULL, &r));
 *
 * Extraction is the structured-pruning surgery (graph/rewrite.h) on a clone: pare_model_drop_heads drops
 * heads h_i..H−1 of block i (their q, k, v rows and output-projection columns), pare_model_drop_channels the
 * FFN neurons f_i..F−1 (up rows, down columns), pare_model_remove_nodes the blocks l..L−1 (each block's input
 * takes its output's place). Parameters keep their names, so a sub-network's parameter is its namesake in
 * the super-network, sliced.
 *
 * Training (HAT's weight-shared training): every step samples a configuration from the space (uniformly, or
 * "sandwich": the largest and the smallest in turn with uniform ones between), extracts it, runs forward
 * and backward on the sub-network (so a step costs what the sub-network costs), adds its gradients into the
 * slices of the super-network they came from (a map built by running the same surgery on a copy whose
 * entries hold their own flat index), and takes one AdamW step on the super-network, whose moments live
 * there for the whole run. Weights outside the sampled slices get a zero gradient that step, as HAT's
 * PyTorch slicing gives them: AdamW's moments still move them a little, and weight decay still applies.
 *
 * Deliberately not here: an elastic embedding width (HAT's d' channels with LayerNorm over them: pare's
 * LayerNorm and residual adds need the full width C — graph/rewrite.h can resize heads and FFN widths per
 * layer, not C); elastic Q/K/V dimension per head (HAT ties it to the head count as here); encoder-decoder
 * models (two stacks and cross-attention: refused); the search itself (lua/pare/nas.lua).
 *
 * Entry points: pare_nas_blocks, pare_nas_check, pare_nas_extract, pare_nas_map_new / pare_nas_map_free,
 * pare_nas_sample, pare_nas_train (schema pare_nas_train_schema, `pare help nas_train`).
 */
#ifndef PARE_NAS_SUPERNET_H
#define PARE_NAS_SUPERNET_H

#include <stdint.h>

#include "core/options.h"
#include "core/rng.h"
#include "data/task.h"
#include "graph/graph.h"
#include "train/train.h"

#define PARE_NAS_MAX_LAYERS 64
#define PARE_NAS_MAX_CHOICES 16
#define PARE_NAS_PREFIX_MAX 96 /* a block's name ("enc.3") */

/* One sub-transformer: the first `layers` blocks, in block i its first heads[i] heads and ffn[i] neurons. */
typedef struct pare_nas_config {
    int layers;                       /* l in [1, L] */
    int heads[PARE_NAS_MAX_LAYERS];   /* (l) each in [1, H_i] */
    int64_t ffn[PARE_NAS_MAX_LAYERS]; /* (l) each in [1, F_i] */
} pare_nas_config;

/* The choices a sampler draws from (HAT's design space): every kept block draws its heads and FFN width
 * independently. */
typedef struct pare_nas_space {
    int nlayers, nheads, nffn;
    int layers[PARE_NAS_MAX_CHOICES];
    int heads[PARE_NAS_MAX_CHOICES];
    int64_t ffn[PARE_NAS_MAX_CHOICES];
} pare_nas_space;

/* The super-network's blocks: *L of them, named prefix[i] ("enc.3"), with H[i] heads and F[i] FFN neurons
 * (arrays of PARE_NAS_MAX_LAYERS; any may be NULL). PARE_EINVAL naming the problem for a model that is not a
 * single stack of fused-attention blocks with an FFN (encdec, unfused attention, a block without ffn.up). */
pare_status pare_nas_blocks(const pare_model *m, int *L, int *H, int64_t *F, char (*prefix)[PARE_NAS_PREFIX_MAX]);

/* Is c a sub-network of m? PARE_EINVAL naming the option and its valid range ("nas: heads[2] = 5 is outside
 * [1, 4] (enc.2.attn has 4 heads)"). */
pare_status pare_nas_check(const pare_model *m, const pare_nas_config *c);
/* Is sp a space of m's sub-networks (every choice in range, no empty list)? Messages name space.<key>. */
pare_status pare_nas_check_space(const pare_model *m, const pare_nas_space *sp);

/* *out = the sub-network c of m, a new model (parameters the surgery did not slice share m's blobs). */
pare_status pare_nas_extract(pare_model **out, const pare_model *m, const pare_nas_config *c);

/* Where each parameter of the sub-network c came from: sub parameter k (in the order pare_nas_extract
 * leaves them) is m's parameter super_param[k], element j of it is element index[k][j] of that one
 * (index[k] NULL: the same shape, element j is element j). */
typedef struct pare_nas_map {
    int64_t nparams;
    int *super_param;  /* (nparams) */
    int64_t *numel;    /* (nparams) entries of sub parameter k */
    int64_t **index;   /* (nparams) each (numel of sub parameter k) or NULL */
} pare_nas_map;
pare_status pare_nas_map_new(pare_nas_map *out, const pare_model *m, const pare_nas_config *c);
void pare_nas_map_free(pare_nas_map *map); /* safe twice and on a zeroed map */

/* A configuration drawn from sp: uniformly (mode 0), the largest (1) or the smallest (2) of every choice. */
enum { PARE_NAS_SAMPLE_UNIFORM = 0, PARE_NAS_SAMPLE_LARGEST, PARE_NAS_SAMPLE_SMALLEST };
void pare_nas_sample(pare_nas_config *c, const pare_nas_space *sp, pare_rng *rng, int mode);

/* ---- weight-shared training ---- */
extern const pare_schema pare_nas_train_schema; /* train's AdamW options + sample = uniform|sandwich */

typedef struct pare_nas_train_result {
    int64_t steps;
    float final_loss;       /* running mean (EMA 0.95) of the sampled sub-networks' losses */
    double seconds;
    int64_t largest, smallest, uniform; /* steps of each kind of sample */
} pare_nas_train_result;

/* Train m (the super-network, f32, no transforms) in place on sub-networks sampled from sp. progress as
 * pare_train's (p->eval_accuracy is -1). */
pare_status pare_nas_train(pare_model *m, const pare_nas_space *sp, const pare_dataset *train, const pare_options *o,
                           pare_progress_fn progress, void *ud, pare_nas_train_result *out);

#endif
