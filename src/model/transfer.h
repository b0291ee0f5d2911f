/* transfer.h — initialise a model from another by parameter names: a classifier from a pretrained
 * masked-LM body (BERT's fine-tuning recipe: the encoder's weights, a fresh pooler and head).
 *
 *     pare_transfer_report r;
 *     PARE_TRY(pare_model_transfer(clf, mlm, &r, NULL, NULL));   // every name + shape match is copied
 *     printf("%lld copied, %lld kept fresh\n", (long long)r.copied, (long long)(r.missing + r.shape_mismatch));
 *
 * Every parameter of dst whose name is a parameter of src with the same shape, both stored as f32, gets
 * src's values (dst's own copy: the blob is made private first, src is not changed). The others keep
 * their initialisation: names src lacks (the classifier's pooler, head.weight when src's head is tied),
 * shapes that differ (the head's bias: vocabulary against classes; position tables of another max_T).
 * Parameters of src no name of dst asks for (the MLM head's transform) are counted as unused. A
 * quantized parameter on either side is refused (transfer before compressing).
 *
 * Deliberately not here: renaming maps between architectures (load_hf does that for HF checkpoints),
 * copying a prefix of a bigger table.
 */
#ifndef PARE_MODEL_TRANSFER_H
#define PARE_MODEL_TRANSFER_H

#include "graph/graph.h"

typedef enum pare_transfer_what {
    PARE_TRANSFER_COPIED,   /* dst's parameter now holds src's values */
    PARE_TRANSFER_SHAPE,    /* same name, another shape: dst keeps its own */
    PARE_TRANSFER_MISSING,  /* src has no parameter of that name: dst keeps its own */
    PARE_TRANSFER_UNUSED,   /* a parameter of src that dst has no name for */
} pare_transfer_what;

typedef struct pare_transfer_report {
    int64_t copied, shape_mismatch, missing, unused; /* parameters */
    int64_t copied_numel;                            /* floats copied */
} pare_transfer_report;

/* each (may be NULL) is called once per parameter of dst (COPIED, SHAPE, MISSING) and of src (UNUSED),
 * in their order. */
pare_status pare_model_transfer(pare_model *dst, const pare_model *src, pare_transfer_report *r,
                                void (*each)(void *ud, const char *name, pare_transfer_what what), void *ud);

#endif
