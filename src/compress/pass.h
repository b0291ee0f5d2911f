/* pass.h — the pass manager: every compression technique is a pass over a model with a declared
 * option schema, listed once in the registry of pass.c.
 *
 *     pare_model *q;
 *     pare_kv kv[] = {{"layers", PARE_KV_STR, 0, "enc.*"}};
 *     PARE_TRY(pare_apply(&q, model, "dynamic_int8", kv, 1));   // model is unchanged; q shares weights
 *
 * A pass receives a clone of the input model (parameters share their f32 blobs with the original;
 * call pare_param_make_private before writing one) and the validated options.
 */
#ifndef PARE_PASS_H
#define PARE_PASS_H

#include "core/options.h"
#include "graph/graph.h"

typedef struct pare_pass {
    const pare_schema *schema; /* schema->name is the pass's name */
    pare_status (*apply)(pare_model *m, const pare_options *o);
} pare_pass;

pare_status pare_apply(pare_model **out, const pare_model *in, const char *name, const pare_kv *kv, int nkv);
/* NULL with a message listing the valid pass names when unknown. */
const pare_pass *pare_pass_find(const char *name);
int pare_pass_count(void);
const pare_pass *pare_pass_at(int i);

/* Helpers for passes: the Linear nodes whose names match `layers` and not `exclude` ("" = none).
 * Writes node indices to idx (capacity m->nnodes) and returns how many; PARE_EINVAL naming the
 * pattern and listing the Linear layers when none match. */
pare_status pare_select_linears(const pare_model *m, const char *layers, const char *exclude, int64_t *idx, int64_t *n);

/* The passes (one file each under src/compress/<family>/). */
extern const pare_pass pare_pass_dynamic_int8;

#endif
