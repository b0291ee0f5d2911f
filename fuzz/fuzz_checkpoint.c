/* fuzz_checkpoint.c — the checkpoint loader behind pare.load (pare_model_load_meta in
 * src/io/safetensors.c): a safetensors file whose __metadata__ "graph" (graph/serialize.c) or, in older
 * files, "config" (src/model/transformer.c) rebuilds a model whose parameters are then read from the
 * file by name.
 *
 * The input is the whole file. A malformed file, a config the builder refuses, or tensors that do not
 * match the rebuilt model must give a status; a loaded model must have every parameter filled from
 * the file. The seeds (fuzz/corpus/checkpoint/) are tiny models written by pare_model_save. */
#include "fuzz_util.h"
#include "graph/graph.h"
#include "graph/rewrite.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write(fuzz_path(path, sizeof path, "in.safetensors"), data, size);
    pare_model *m = NULL;
    pare_checkpoint_meta meta;
    if (pare_model_load_meta(&m, &meta, path) != PARE_OK) {
        FUZZ_ASSERT(m == NULL && pare_errmsg()[0]);
        return 0;
    }
    /* a loaded model is one the executors can run; its config is provenance only when the file has a graph */
    FUZZ_ASSERT(m != NULL && pare_model_check(m) == PARE_OK);
    size_t bytes = 0; /* every parameter came from the file: as f32, or in a stored form (int8 codes, blocks) */
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        int stored = p->q && (p->format == PARE_FMT_I8_CHANNEL || p->format == PARE_FMT_QBLOCK);
        bytes += stored ? pare_param_bytes(p) : p->blob->n * sizeof(float);
    }
    FUZZ_ASSERT(bytes <= size);
    pare_model_free(m);
    return 0;
}
