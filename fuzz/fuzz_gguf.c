/* fuzz_gguf.c — the GGUF reader (src/io/gguf.c) on arbitrary bytes.
 *
 * The input is the whole file. pare_gguf_parse must reject anything malformed with a status; what it
 * accepts must hold its promises: every tensor's bytes lie inside the file after the aligned data section,
 * offsets are multiples of the alignment (a non-zero multiple of 8), names are unique and at most 64 bytes,
 * n_dims is 1..4, the type is one the reader knows and the row length a multiple of its block, and every
 * key can be found. The file path variant (pare_gguf_open) is exercised on the same bytes. */
#include "fuzz_util.h"
#include "io/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pare_gguf *g = NULL;
    if (pare_gguf_parse(&g, data, size, "fuzz.gguf") != PARE_OK) {
        FUZZ_ASSERT(g == NULL && pare_errmsg()[0]);
        return 0;
    }
    FUZZ_ASSERT(g->alignment && g->alignment % 8 == 0);
    FUZZ_ASSERT(g->data_offset <= size && g->data_offset % g->alignment == 0);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const pare_gguf_tensor *t = &g->tensors[i];
        int bytes, qb = pare_gguf_type_block(t->type, &bytes);
        FUZZ_ASSERT(qb > 0 && t->n_dims >= 1 && t->n_dims <= 4 && strlen(t->name) <= 64);
        FUZZ_ASSERT(t->dims[0] % (uint64_t)qb == 0 && t->offset % g->alignment == 0);
        FUZZ_ASSERT(g->data_offset + t->offset + t->nbytes <= size);
        const uint8_t *p = pare_gguf_tensor_data(g, i);
        volatile uint8_t sink = t->nbytes ? p[t->nbytes - 1] : 0; /* in bounds (ASan checks) */
        (void)sink;
        for (int64_t j = 0; j < i; j++) FUZZ_ASSERT(strcmp(g->tensors[j].name, t->name) != 0);
    }
    for (int64_t i = 0; i < g->n_kv; i++) FUZZ_ASSERT(pare_gguf_find(g, g->kv[i].key) == &g->kv[i].value);
    pare_gguf_close(g);

    char path[512];
    fuzz_write(fuzz_path(path, sizeof path, "in.gguf"), data, size);
    FUZZ_ASSERT(pare_gguf_open(&g, path) == PARE_OK);
    pare_gguf_close(g);
    return 0;
}
