/* lra_pathfinder.c — the registry task lra_pathfinder: LRA's Pathfinder read from the user's files,
 * pathfinder{32,64,128}/<difficulty>/metadata/<k>.npy (text lines "dir file _ label ...") and the PNGs
 * they name, with LRA's 80/10/10 split of the concatenated metadata. The layout was matched against
 * LRA's data/pathfinder.py; no LRA code is used. The generated pathfinder task is pathfinder.c.
 *
 * Deliberately not here: downloads (option path names where the user unpacked the files), resizing
 * (every image of one run must be square and of the same side).
 *
 * Entry point: the descriptor pare_task_lra_pathfinder (task_impl.h).
 */
#include "data/lra_files.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/arena.h"
#include "data/lra_files_internal.h"

/* ---- lra_pathfinder: metadata + PNGs ---- */

static int is_npy(const char *name) { return pare_lra_ends_with_(name, ".npy"); }

/* All metadata entries of root/metadata/<k>.npy (version order), as "root/dir/file" with their labels. */
static pare_status pathfinder_meta(pare_docs *e, const char *root)
{
    char mdir[PARE_OPT_STR_MAX + 128], path[PARE_OPT_STR_MAX + 600];
    snprintf(mdir, sizeof mdir, "%s/metadata", root);
    pare_name_list l;
    int err = 0;
    memset(e, 0, sizeof *e);
    if (pare_lra_list_files_(&l, mdir, ".npy", is_npy, &err) != PARE_OK)
        return pare_fail(
            PARE_EIO,
            "lra_pathfinder: %s: cannot open: %s (expected LRA's layout <dir>/metadata/*.npy and <dir>/imgs/)", mdir,
            strerror(err));
    if (l.n == 0) return pare_lra_names_free_(&l), pare_fail(PARE_EFORMAT, "lra_pathfinder: %s: no metadata/*.npy files", mdir);
    pare_status st = PARE_OK;
    pare_sbuf line = {0}, full = {0};
    for (int64_t k = 0; k < l.n && st == PARE_OK; k++) {
        snprintf(path, sizeof path, "%s/%s", mdir, l.v[k]);
        FILE *f = fopen(path, "rb");
        if (!f) { st = pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(errno)); break; }
        long long ln = 0;
        for (;;) {
            int r = pare_read_line(f, &line, 1 << 16, 0);
            ln++;
            if (r == 0) break;
            if (r == -1) { st = pare_fail(PARE_EFORMAT, "%s:%lld: line too long", path, ln); break; }
            if (r == -2) { st = pare_fail(PARE_ENOMEM, "%s:%lld: out of memory", path, ln); break; }
            if (line.n == 0) continue;
            if (memchr(line.s, '\0', line.n)) {
                st = pare_fail(PARE_EFORMAT, "%s:%lld: NUL byte: not a text file", path, ln);
                break;
            }
            char *fld[4];
            int nf = 0;
            fld[nf++] = line.s;
            for (size_t p = 0; p < line.n && nf < 5; p++)
                if (line.s[p] == ' ') {
                    line.s[p] = '\0';
                    if (nf < 4) fld[nf] = line.s + p + 1;
                    nf++;
                }
            if (nf < 4) {
                st = pare_fail(
                    PARE_EFORMAT,
                    "%s:%lld: expected at least 4 space-separated fields (image dir, file name, _, label), found %d",
                    path, ln, nf);
                break;
            }
            if (strcmp(fld[3], "0") && strcmp(fld[3], "1")) {
                st = pare_fail(PARE_EFORMAT, "%s:%lld: label (field 4) '%.20s' is not 0 or 1", path, ln, fld[3]);
                break;
            }
            if (!fld[0][0] || !fld[1][0] || strstr(fld[0], "..") || strstr(fld[1], "..") || fld[0][0] == '/') {
                st = pare_fail(PARE_EFORMAT, "%s:%lld: bad image path '%.60s/%.60s'", path, ln, fld[0], fld[1]);
                break;
            }
            int nb = snprintf(NULL, 0, "%s/%s/%s", root, fld[0], fld[1]);
            if (full.cap < (size_t)nb + 1) {
                pare_free(full.s);
                full.cap = (size_t)nb + 1024;
                if (!(full.s = pare_alloc(full.cap))) {
                    full.cap = 0;
                    st = pare_fail(PARE_ENOMEM, "out of memory");
                    break;
                }
            }
            snprintf(full.s, full.cap, "%s/%s/%s", root, fld[0], fld[1]);
            if ((st = pare_docs_add(e, full.s, (size_t)nb, fld[3][0] - '0')) != PARE_OK) break;
        }
        if (st == PARE_OK && ferror(f)) st = pare_fail(PARE_EIO, "%s: read error", path);
        fclose(f);
    }
    if (st == PARE_OK && e->n == 0)
        st = pare_fail(PARE_EFORMAT, "lra_pathfinder: %s: the metadata files list no images", mdir);
    pare_lra_names_free_(&l), pare_free(line.s), pare_free(full.s);
    if (st != PARE_OK) pare_docs_free(e);
    return st;
}

/* Decode entries [lo, hi) of e, skipping empty files (as LRA does), at most n of them (0 = all). */
static pare_status pathfinder_load(pare_dataset *d, const char *split, const pare_docs *e, int64_t lo, int64_t hi,
                                   int64_t n, int levels, int *side, const pare_options *o)
{
    char path[PARE_OPT_STR_MAX + 600];
    int64_t *use = pare_alloc((size_t)(hi - lo > 0 ? hi - lo : 1) * sizeof(int64_t)), m = 0;
    if (!use) return pare_fail(PARE_ENOMEM, "out of memory");
    for (int64_t i = lo; i < hi && (n == 0 || m < n); i++) {
        size_t len;
        const char *s = pare_docs_at(e, i, &len);
        snprintf(path, sizeof path, "%.*s", (int)len, s);
        struct stat sb;
        if (stat(path, &sb) != 0) {
            pare_free(use);
            return pare_fail(PARE_EIO, "%s: cannot open: %s (named by the metadata)", path, strerror(errno));
        }
        if (sb.st_size > 0) use[m++] = i;
    }
    if (m == 0) {
        pare_free(use);
        return pare_fail(PARE_EFORMAT, "lra_pathfinder: the %s split has no (non-empty) images", split);
    }
    pare_status st = PARE_OK;
    for (int64_t k = 0; k < m && st == PARE_OK; k++) {
        size_t len;
        const char *s = pare_docs_at(e, use[k], &len);
        snprintf(path, sizeof path, "%.*s", (int)len, s);
        uint8_t *px = NULL;
        int w, h;
        if ((st = pare_png_read_gray(&px, &w, &h, path)) != PARE_OK) break;
        if (*side == 0) { /* the first image of the train split fixes the size for both */
            if (w != h) st = pare_fail(PARE_EFORMAT, "%s: %dx%d image: Pathfinder images are square", path, w, h);
            *side = w;
        } else if (w != *side || h != *side) {
            st = pare_fail(PARE_EFORMAT, "%s: %dx%d image, but the first one read was %dx%d", path, w, h, *side, *side);
        }
        if (st == PARE_OK && k == 0) {
            int64_t T;
            st = pare_task_pad_len(o, 1 + (int64_t)w * w, &T);
            if (st == PARE_OK) st = pare_dataset_alloc(d, "", PARE_TASK_CLASSIFY, m, T, PARE_PIXEL_0 + levels, 2);
        }
        if (st == PARE_OK) {
            int32_t *t = d->tokens + k * d->T;
            t[0] = PARE_PIXEL_CLS;
            for (int64_t p = 0; p < (int64_t)w * h; p++) t[1 + p] = PARE_PIXEL_0 + px[p] * levels / 256;
            d->lengths[k] = 1 + w * h;
            d->labels[k] = e->label[use[k]];
        }
        pare_free(px);
    }
    pare_free(use);
    if (st == PARE_OK) {
        pare_task_name_split(d, "lra_pathfinder", split);
        st = pare_pixel_vocab(d, levels);
    }
    return st;
}

static pare_status lra_pathfinder_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    PARE_TRY(pare_lra_need_path_(o, "lra_pathfinder",
                       "a pathfinder directory with metadata/ and imgs/ (e.g. lra_release/pathfinder32/"
                       "curv_contour_length_14), or its parent with option difficulty"));
    static const char *const pattern[3] = {"curv_baseline", "curv_contour_length_9", "curv_contour_length_14"};
    const char *path = pare_opt_str(o, "path");
    char root[PARE_OPT_STR_MAX + 64], probe[PARE_OPT_STR_MAX + 64];
    snprintf(probe, sizeof probe, "%s/metadata", path);
    if (pare_lra_is_dir_(probe)) snprintf(root, sizeof root, "%s", path);
    else snprintf(root, sizeof root, "%s/%s", path, pattern[(int)pare_opt_num(o, "difficulty")]);
    pare_docs e;
    PARE_TRY(pathfinder_meta(&e, root));
    int64_t N = e.n, a = N * 8 / 10, b = N * 9 / 10;
    int levels = pare_opt_int(o, "levels"), side = 0, val = !strcmp(pare_opt_str(o, "test_split"), "val");
    pare_status st = pathfinder_load(train, "train", &e, 0, a, (int64_t)pare_opt_num(o, "n_train"), levels, &side, o);
    if (st == PARE_OK)
        st = pathfinder_load(test, "test", &e, val ? a : b, val ? b : N, (int64_t)pare_opt_num(o, "n_test"), levels,
                             &side, o);
    pare_docs_free(&e);
    return st;
}

static const pare_opt_spec lra_pathfinder_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL,
     "unused (files are read in order); kept for a uniform schema"},
    {"path", PARE_OPT_STRING, "", 0, 0, NULL,
     "directory with metadata/*.npy and imgs/, or its parent (pathfinder32) with difficulty (required)"},
    {"difficulty", PARE_OPT_ENUM, "hard", 0, 0, "easy|intermediate|hard",
     "with a parent path: curv_baseline, curv_contour_length_9, curv_contour_length_14 (LRA's Path: hard)"},
    {"test_split", PARE_OPT_ENUM, "test", 0, 0, "test|val",
     "evaluate on the last 10% (test) or the 80-90% slice (val), as LRA"},
    {"n_train", PARE_OPT_INT, "0", 0, 1e8, NULL,
     "decode at most the first n training images (0: all of the first 80%)"},
    {"n_test", PARE_OPT_INT, "0", 0, 1e8, NULL, "decode at most the first n test images (0: all of the split)"},
    {"levels", PARE_OPT_INT, "256", 2, 256, NULL, "gray levels: token = 2 + value*levels/256 (LRA: 256)"},
    {"pad_to", PARE_OPT_INT, "0", 0, 1e8, NULL, "padded length T (0: 1 + side*side)"},
};
static const pare_schema lra_pathfinder_schema = {
    "lra_pathfinder",
    "LRA Pathfinder: metadata/*.npy + PNG images (32/64/128 px), label 1 = the two dots are connected; CLS first",
    lra_pathfinder_opts, (int)(sizeof lra_pathfinder_opts / sizeof lra_pathfinder_opts[0])};
const pare_task_desc pare_task_lra_pathfinder = {&lra_pathfinder_schema, lra_pathfinder_make};
