/* lra_image.c — the registry task lra_image: LRA's Image task read from the user's CIFAR-10 binary batches
 * (data_batch_1..5.bin, test_batch.bin: records of PARE_CIFAR_RECORD bytes), made grayscale as
 * tf.image.rgb_to_grayscale (pare_gray_tf), 1024 pixels per row after <cls>; LRA's split of the training
 * batches (45000 train, 5000 validation). The format was matched
 * against LRA's input pipeline (lra_benchmarks/image/input_pipeline.py); no LRA code is used.
 *
 * Deliberately not here: downloads (option path names where the user unpacked the files), resizing,
 * color (LRA's Image task is grayscale), data augmentation.
 *
 * Entry point: the descriptor pare_task_lra_image (task_impl.h).
 */
#include "data/lra_files.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/arena.h"
#include "data/lra_files_internal.h"

/* ---- lra_image: CIFAR-10 binary batches, grayscale ---- */

/* Records [lo, lo + n) of the concatenation of files[0..nf) into d (pixels quantised to levels). */
static pare_status cifar_read(pare_dataset *d, const char *split, char files[][PARE_OPT_STR_MAX + 32], int nf,
                              int64_t lo, int64_t n, int levels, int64_t T)
{
    PARE_TRY(pare_dataset_alloc(d, "", PARE_TASK_CLASSIFY, n, T, PARE_PIXEL_0 + levels, 10));
    pare_task_name_split(d, "lra_image", split);
    unsigned char rec[PARE_CIFAR_RECORD];
    int64_t at = 0, done = 0; /* records before the current file, records written */
    for (int k = 0; k < nf && done < n; k++) {
        FILE *f = fopen(files[k], "rb");
        if (!f)
            return pare_fail(PARE_EIO,
                             "%s: cannot open: %s (expected the CIFAR-10 binary version, cifar-10-batches-bin)",
                             files[k], strerror(errno));
        struct stat sb;
        if (fstat(fileno(f), &sb) != 0 || sb.st_size % PARE_CIFAR_RECORD != 0 || sb.st_size == 0) {
            fclose(f);
            return pare_fail(
                PARE_EFORMAT,
                "%s: %lld bytes is not a whole number of %d-byte CIFAR-10 records (1 label byte + 3072 pixels)",
                files[k], (long long)sb.st_size, PARE_CIFAR_RECORD);
        }
        int64_t nrec = (int64_t)(sb.st_size / PARE_CIFAR_RECORD);
        for (int64_t r = 0; r < nrec && done < n; r++) {
            if (fread(rec, 1, sizeof rec, f) != sizeof rec) {
                fclose(f);
                return pare_fail(PARE_EIO, "%s: record %lld: short read", files[k], (long long)r + 1);
            }
            if (at + r < lo) continue;
            if (rec[0] > 9) {
                fclose(f);
                return pare_fail(PARE_EFORMAT, "%s:record %lld: label %d out of range [0, 9]", files[k],
                                 (long long)r + 1, rec[0]);
            }
            int32_t *t = d->tokens + done * T;
            t[0] = PARE_PIXEL_CLS;
            for (int p = 0; p < 1024; p++) {
                int g = pare_gray_tf(rec[1 + p], rec[1 + 1024 + p], rec[1 + 2048 + p]);
                t[1 + p] = PARE_PIXEL_0 + g * levels / 256;
            }
            d->lengths[done] = 1025;
            d->labels[done++] = rec[0];
        }
        at += nrec;
        fclose(f);
    }
    if (done < n)
        return pare_fail(PARE_EFORMAT, "lra_image: the %s split needs %lld records from %s..., the files hold %lld",
                         split, (long long)(lo + n), files[0], (long long)at);
    return pare_pixel_vocab(d, levels);
}

static pare_status lra_image_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    PARE_TRY(pare_lra_need_path_(o, "lra_image", "the cifar-10-batches-bin directory (data_batch_1..5.bin, test_batch.bin)"));
    const char *path = pare_opt_str(o, "path");
    char tr[5][PARE_OPT_STR_MAX + 32], te[1][PARE_OPT_STR_MAX + 32];
    for (int k = 0; k < 5; k++) snprintf(tr[k], sizeof tr[k], "%s/data_batch_%d.bin", path, k + 1);
    snprintf(te[0], sizeof te[0], "%s/test_batch.bin", path);
    int levels = pare_opt_int(o, "levels"), val = !strcmp(pare_opt_str(o, "test_split"), "val");
    int64_t ntr = (int64_t)pare_opt_num(o, "n_train"), nte = (int64_t)pare_opt_num(o, "n_test"), T;
    if (ntr == 0) ntr = 45000;
    if (nte == 0) nte = val ? 5000 : 10000;
    if (ntr > 45000 || (val && nte > 5000) || nte > 10000)
        return pare_fail(
            PARE_EINVAL,
            "lra_image: n_train=%lld n_test=%lld: LRA's splits have 45000 train, 5000 val and 10000 test images",
            (long long)ntr, (long long)nte);
    PARE_TRY(pare_task_pad_len(o, 1025, &T));
    PARE_TRY(cifar_read(train, "train", tr, 5, 0, ntr, levels, T));
    if (val) return cifar_read(test, "test", tr, 5, 45000, nte, levels, T);
    return cifar_read(test, "test", te, 1, 0, nte, levels, T);
}

static const pare_opt_spec lra_image_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL,
     "unused (files are read in order); kept for a uniform schema"},
    {"path", PARE_OPT_STRING, "", 0, 0, NULL,
     "the cifar-10-batches-bin directory: data_batch_{1..5}.bin, test_batch.bin (required)"},
    {"test_split", PARE_OPT_ENUM, "test", 0, 0, "test|val",
     "evaluate on test_batch.bin, or on LRA's validation set (train images 45000..49999)"},
    {"n_train", PARE_OPT_INT, "0", 0, 45000, NULL, "the first n training images (0: LRA's 45000, train[:90%])"},
    {"n_test", PARE_OPT_INT, "0", 0, 10000, NULL, "the first n test images (0: all of the split)"},
    {"levels", PARE_OPT_INT, "256", 2, 256, NULL, "gray levels: token = 2 + gray*levels/256 (LRA: 256)"},
    {"pad_to", PARE_OPT_INT, "0", 0, 1e7, NULL, "padded length T (0: 1025 = <cls> + 32*32 pixels)"},
};
static const pare_schema lra_image_schema = {"lra_image",
                                             "LRA Image: CIFAR-10 from the binary batches, grayscale as LRA "
                                             "(tf.image.rgb_to_grayscale), 1024 pixel tokens after CLS",
                                             lra_image_opts, (int)(sizeof lra_image_opts / sizeof lra_image_opts[0])};
const pare_task_desc pare_task_lra_image = {&lra_image_schema, lra_image_make};
