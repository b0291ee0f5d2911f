/* attn_internal.h — private to src/attn and its tests: the feature-map core of the kernelised attentions
 * (linear.c implements it with elu+1; performer.c plugs its FAVOR+ random features into it) and test-only accessors. */
#ifndef PARE_ATTN_INTERNAL_H
#define PARE_ATTN_INTERNAL_H

#include "attn/attn.h"

/* A feature map: phi (T, m) of the rows x (T, D, stride ld) of head h; L valid rows (keys: rows >= L may
 * be left unset). is_key distinguishes q from k (Performer's stabiliser differs). */
typedef void (*pare_attn_feat_fn)(const pare_attn *a, int64_t h, float *phi, const float *x, int64_t ld,
                                  int64_t T, int64_t L, int is_key);
/* Its backward: dx (T, D, stride ldd) += dphi chained through the map; dphi (T, m) may be overwritten. */
typedef void (*pare_attn_feat_bwd_fn)(const pare_attn *a, int64_t h, float *dx, int64_t ldd, float *dphi,
                                      const float *phi, const float *x, int64_t ld, int64_t T, int64_t L, int is_key);

pare_status pare_attn_feature_forward(const pare_attn *a, const pare_attn_args *x, int64_t m, pare_attn_feat_fn f);
pare_status pare_attn_feature_backward(const pare_attn *a, const pare_attn_args *x, int64_t m, pare_attn_feat_fn f,
                                       pare_attn_feat_bwd_fn fb);
void pare_attn_feature_cost(const pare_attn *a, int64_t B, int64_t m, int64_t feat_flops, pare_attn_cost *c);

/* For tests: Performer's random features W (m, D) of head h. */
const float *pare_attn_performer_w(const pare_attn *a, int64_t h);
/* For tests: Reformer's bucket of every token of head h in hashing round r (q rows with stride ld). */
void pare_attn_reformer_buckets(const pare_attn *a, int64_t h, int64_t r, const float *q, int64_t ld, int32_t *bkt);

/* The static configuration of the built-in dense attention (pare_attn_config_default), in full.c. */
extern pare_attn_config pare_attn_full_default;
/* For tests: how many times spec text has been parsed in this process (pare_attn_config_parse). */
long pare_attn_spec_parses(void);

#endif
