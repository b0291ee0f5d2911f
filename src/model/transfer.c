/* transfer.c — copy parameters between models by name and shape (transfer.h). */
#include "model/transfer.h"

#include <string.h>

static int same_shape(const pare_param *a, const pare_param *b)
{
    return a->ndim == b->ndim && a->shape[0] == b->shape[0] && (a->ndim < 2 || a->shape[1] == b->shape[1]);
}

pare_status pare_model_transfer(pare_model *dst, const pare_model *src, pare_transfer_report *r,
                                void (*each)(void *ud, const char *name, pare_transfer_what what), void *ud)
{
    memset(r, 0, sizeof *r);
    if (dst == src) return pare_fail(PARE_EINVAL, "transfer: a model cannot be initialised from itself");
    for (int64_t i = 0; i < dst->nparams; i++)
        if (dst->params[i].format != PARE_FMT_F32)
            return pare_fail(PARE_EINVAL, "transfer: %s of the destination is stored as %s; transfer into an f32 model",
                             dst->params[i].name, pare_format_name(dst->params[i].format));
    for (int64_t i = 0; i < src->nparams; i++)
        if (src->params[i].format != PARE_FMT_F32)
            return pare_fail(PARE_EINVAL, "transfer: %s of the source is stored as %s; transfer from its f32 model",
                             src->params[i].name, pare_format_name(src->params[i].format));
    for (int64_t i = 0; i < dst->nparams; i++) {
        pare_param *p = &dst->params[i];
        int j = pare_model_find_param(src, p->name);
        pare_transfer_what what = j < 0 ? PARE_TRANSFER_MISSING
                                  : same_shape(p, &src->params[j]) ? PARE_TRANSFER_COPIED : PARE_TRANSFER_SHAPE;
        if (what == PARE_TRANSFER_COPIED) {
            PARE_TRY(pare_param_make_private(p));
            memcpy(p->blob->data, src->params[j].blob->data, (size_t)pare_param_numel(p) * sizeof(float));
            r->copied++, r->copied_numel += pare_param_numel(p);
        } else if (what == PARE_TRANSFER_SHAPE) r->shape_mismatch++;
        else r->missing++;
        if (each) each(ud, p->name, what);
    }
    for (int64_t j = 0; j < src->nparams; j++)
        if (pare_model_find_param(dst, src->params[j].name) < 0) {
            r->unused++;
            if (each) each(ud, src->params[j].name, PARE_TRANSFER_UNUSED);
        }
    return PARE_OK;
}
