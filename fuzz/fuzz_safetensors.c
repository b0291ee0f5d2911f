/* fuzz_safetensors.c — the safetensors reader (src/io/safetensors.c) on arbitrary files.
 *
 * The input is the whole file. pare_safetensors_open must reject anything malformed with a status;
 * what it accepts must hold its promises: every tensor's bytes lie inside the data block and match
 * dtype × shape, the names are unique and findable, and reading an F32 tensor works. */
#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write(fuzz_path(path, sizeof path, "in.safetensors"), data, size);
    pare_st_file *f = NULL;
    if (pare_safetensors_open(&f, path) != PARE_OK) {
        FUZZ_ASSERT(f == NULL && pare_errmsg()[0]);
        return 0;
    }
    FUZZ_ASSERT(f->data_start + f->data_bytes == size);
    for (int64_t i = 0; i < f->ntensors; i++) {
        const pare_st_tensor *t = &f->tensors[i];
        FUZZ_ASSERT(pare_safetensors_find(f, t->name) == t);
        FUZZ_ASSERT(t->begin <= t->end && t->end <= f->data_bytes);
        FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= PARE_ST_MAX_DIM);
        uint64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
        FUZZ_ASSERT(n * pare_st_dtype_size(t->dtype) == t->end - t->begin);
        if (t->dtype == PARE_ST_F32) {
            float *x = malloc(n ? n * sizeof *x : 1);
            FUZZ_ASSERT(x);
            FUZZ_ASSERT(pare_safetensors_read_f32(f, t, x, n) == PARE_OK);
            FUZZ_ASSERT(pare_safetensors_read_f32(f, t, x, n + 1) != PARE_OK); /* a wrong count is an error */
            free(x);
        } else {
            float x[1];
            FUZZ_ASSERT(pare_safetensors_read_f32(f, t, x, n) != PARE_OK); /* not F32: refused */
        }
    }
    for (int64_t i = 0; i < f->nmeta; i++) FUZZ_ASSERT(pare_safetensors_meta(f, f->meta[2 * i]) != NULL);
    pare_safetensors_close(f);
    return 0;
}
