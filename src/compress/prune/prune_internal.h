/* prune_internal.h — what the pruning passes and schedules share: their option rows and layer selection. */
#ifndef PARE_PRUNE_INTERNAL_H
#define PARE_PRUNE_INTERNAL_H

#include "prune.h"

#define PR_LAYER_OPTS                                                                                             \
    {"layers", PARE_OPT_STRING, "*", 0, 0, NULL, "glob over Linear layer names to prune (e.g. \"enc.*.ffn.*\")"}, \
    {"exclude", PARE_OPT_STRING, "head", 0, 0, NULL, "glob of Linear layers to leave dense (\"\": none; default: the classifier head)"}

#define PR_PATTERN_OPTS                                                                                                  \
    {"sparsity", PARE_OPT_FLOAT, "0.5", 0, 1, NULL, "fraction of weights (blocks) pruned, exactly round(s * count)"},      \
    {"scope", PARE_OPT_ENUM, "layer", 0, 0, "layer|global", "layer: the sparsity in every layer; global: one threshold over all"}, \
    {"pattern", PARE_OPT_ENUM, "unstructured", 0, 0, "unstructured|nm|block", "mask layout: any weight, N of every M along the input, or blocks"}, \
    {"n", PARE_OPT_INT, "2", 1, 64, NULL, "pattern=nm: weights kept of every m consecutive along the input dimension"}, \
    {"m", PARE_OPT_INT, "4", 2, 64, NULL, "pattern=nm: group size along the input dimension"},                           \
    {"block", PARE_OPT_STRING, "4x1", 0, 0, NULL, "pattern=block: RxC, R output rows by C input columns (4x1, 16x16)"}

#define PR_CALIB_OPTS                                                                                          \
    {"calib_samples", PARE_OPT_INT, "128", 1, 1e9, NULL, "calibration examples (the first of calib's train split)"}, \
    {"calib_batch", PARE_OPT_INT, "32", 1, 1e6, NULL, "calibration batch size"}

/* The Linear layers selected by o's layers/exclude (f32 weights only; a quantized one is PARE_EINVAL naming
 * it), checked against spec. *idx is malloc'd. */
pare_status pr_select(const pare_model *m, const pare_options *o, const pare_prune_spec *spec, int64_t **idx, int64_t *n);
/* Per-layer score buffers (pare_alloc'd, zeroed) for idx[0..n); pr_scores_free frees them. */
float **pr_scores_new(const pare_model *m, const int64_t *idx, int64_t n);
void pr_scores_free(float **s, int64_t n);
/* The weight parameter of node. */
static inline pare_param *pr_weight(pare_model *m, int64_t node) { return &m->params[m->nodes[node].param[0]]; }

#endif
