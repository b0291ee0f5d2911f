/* fuzz_lra.c — the readers of LRA's own text files, through the task registry as a user reaches them:
 *   - lra_retrieval: AAN pairs, P.train.tsv and P.test.tsv, 5 tab-separated columns
 *     (label, id1, id2, text1, text2), read by aan_read (src/data/lra_retrieval.c) and the shared line
 *     reader pare_read_line (src/data/lra_files.c);
 *   - lra_pathfinder: metadata/<k>.npy, space-separated "dir file _ label" lines naming PNGs under
 *     the root (pathfinder_meta, src/data/lra_pathfinder.c); the images named do not exist, so an
 *     accepted metadata file ends in "cannot open" — the point is the parsing of the lines and the
 *     paths built from them.
 * The input is written as all three files. A task that builds must give datasets that pass
 * pare_dataset_check. */
#include "data/lra_files.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char p[512], prefix[512], root[512];
    fuzz_write(fuzz_path(p, sizeof p, "aan.train.tsv"), data, size);
    fuzz_write(fuzz_path(p, sizeof p, "aan.test.tsv"), data, size);
    fuzz_write(fuzz_path(p, sizeof p, "pf/metadata/0.npy"), data, size);
    snprintf(prefix, sizeof prefix, "%s/aan", fuzz_dir());
    snprintf(root, sizeof root, "%s/pf", fuzz_dir());

    pare_dataset tr = {0}, te = {0};
    pare_kv aan[] = {{"path", PARE_KV_STR, 0, prefix}, {"max_len", PARE_KV_NUM, 40, NULL}, {"n_train", PARE_KV_NUM, 50, NULL}};
    if (pare_task_make_kv(&tr, &te, "lra_retrieval", aan, 3) == PARE_OK) {
        FUZZ_ASSERT(pare_dataset_check(&tr) == PARE_OK && pare_dataset_check(&te) == PARE_OK);
        FUZZ_ASSERT(tr.n >= 1 && tr.n <= 50 && tr.T <= 40);
    } else {
        FUZZ_ASSERT(tr.n == 0 && te.n == 0 && tr.tokens == NULL);
    }
    pare_dataset_free(&tr), pare_dataset_free(&te);

    pare_kv pf[] = {{"path", PARE_KV_STR, 0, root}, {"levels", PARE_KV_NUM, 4, NULL}};
    if (pare_task_make_kv(&tr, &te, "lra_pathfinder", pf, 2) == PARE_OK) {
        FUZZ_ASSERT(pare_dataset_check(&tr) == PARE_OK && pare_dataset_check(&te) == PARE_OK);
    }
    pare_dataset_free(&tr), pare_dataset_free(&te);
    return 0;
}
