/* fuzz_listops.c — the LRA ListOps .tsv reader (pare_listops_read_tsv, src/data/listops.c).
 *
 * The input is the whole file. It is read twice: with the defaults, and with paren tokens kept, a
 * token limit, a row limit and a short line limit. A dataset the reader accepts must pass
 * pare_dataset_check, and (defaults) must survive a round trip: written back with
 * pare_listops_write_tsv and read again, it gives the same tokens and labels. */
#include "data/listops.h"
#include "fuzz_util.h"

static void same_dataset(const pare_dataset *a, const pare_dataset *b)
{
    FUZZ_ASSERT(a->n == b->n && a->T == b->T && a->vocab == b->vocab && a->nclass == b->nclass);
    FUZZ_ASSERT(!memcmp(a->lengths, b->lengths, (size_t)a->n * sizeof *a->lengths));
    FUZZ_ASSERT(!memcmp(a->labels, b->labels, (size_t)a->n * sizeof *a->labels));
    FUZZ_ASSERT(!memcmp(a->tokens, b->tokens, (size_t)(a->n * a->T) * sizeof *a->tokens));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], back[512];
    fuzz_write(fuzz_path(path, sizeof path, "in.tsv"), data, size);
    pare_dataset d = {0}, e = {0};
    if (pare_listops_read_tsv(&d, path, NULL) == PARE_OK) {
        FUZZ_ASSERT(pare_dataset_check(&d) == PARE_OK);
        FUZZ_ASSERT(d.vocab == PARE_LISTOPS_VOCAB && d.n > 0 && d.lengths[0] >= 2);
        fuzz_path(back, sizeof back, "back.tsv");
        FUZZ_ASSERT(pare_listops_write_tsv(back, &d) == PARE_OK);
        FUZZ_ASSERT(pare_listops_read_tsv(&e, back, NULL) == PARE_OK);
        same_dataset(&d, &e);
        pare_dataset_free(&e);
    }
    pare_dataset_free(&d);
    pare_listops_read_opts ro = {.parens = 1, .max_len = 7, .max_rows = 3, .max_line = 200};
    if (pare_listops_read_tsv(&d, path, &ro) == PARE_OK) {
        FUZZ_ASSERT(pare_dataset_check(&d) == PARE_OK);
        FUZZ_ASSERT(d.n <= 3 && d.T <= 8);
    }
    pare_dataset_free(&d);
    return 0;
}
