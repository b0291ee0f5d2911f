/* fuzz_glue.c — the GLUE .tsv readers (src/data/glue.c) as a user reaches them: the first input byte
 * picks the task (of nine) and whether malformed rows are errors (strict); the rest is written as the
 * file and read with pare_glue_read. What is accepted must be consistent (labels in range or -1 for
 * an unlabeled file, STS-B scores in [0, 5], strings NUL-terminated inside the set's text), and must
 * pack, through the built-in word encoder (src/data/text_encoder.c), into a dataset that passes
 * pare_dataset_check (unlabeled ones only their shape: their labels are -1 by design). */
#include <math.h>

#include "data/glue.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned b = fuzz_byte(&in);
    pare_glue_task t = (pare_glue_task)(b % PARE_GLUE_TASK_COUNT);
    int strict = (b / PARE_GLUE_TASK_COUNT) & 1;
    char p[512];
    fuzz_write(fuzz_path(p, sizeof p, "glue.tsv"), in.p, in.n);
    pare_glue_set s;
    if (pare_glue_read(&s, p, t, strict) != PARE_OK) {
        FUZZ_ASSERT(s.n == 0 && s.ex == NULL);
        return 0;
    }
    const pare_glue_info *g = pare_glue_info_of(t);
    FUZZ_ASSERT(s.n >= 1 && s.n <= s.rows && s.skipped == s.rows - s.n && (!strict || s.skipped == 0));
    for (int64_t i = 0; i < s.n; i++) {
        const pare_text_example *e = &s.ex[i];
        FUZZ_ASSERT(e->a && (e->b != NULL) == (g->col_b != NULL));
        if (!s.labeled) FUZZ_ASSERT(e->label == -1);
        else if (g->nclass == 1) FUZZ_ASSERT(e->label == 0 && e->score >= 0 && e->score <= 5);
        else FUZZ_ASSERT(e->label >= 0 && e->label < g->nclass);
    }
    pare_word_encoder *w;
    if (pare_word_encoder_build(&w, s.ex, s.n, 64, 1) == PARE_OK) {
        pare_text_encoder enc = pare_word_encoder_iface(w);
        pare_dataset d;
        if (pare_text_dataset(&d, "fuzz/glue", s.ex, s.n, g->nclass, &enc, 16) == PARE_OK) {
            FUZZ_ASSERT(d.n == s.n && d.T <= 16 && (d.types != NULL) == (g->col_b != NULL));
            if (s.labeled) FUZZ_ASSERT(pare_dataset_check(&d) == PARE_OK);
            pare_dataset_free(&d);
        }
        pare_word_encoder_free(w);
    }
    pare_glue_set_free(&s);
    return 0;
}
