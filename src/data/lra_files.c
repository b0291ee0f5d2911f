/* lra_files.c — the shared pieces of the LRA-style tasks (lra_files.h): document lists (pare_docs) and
 * their per-class partitions, byte and pixel vocabularies and rows, the line reader of every
 * line-oriented data file (pare_read_line), and the small file utilities the readers share
 * (lra_files_internal.h).
 *
 * The rest of lra_files.h lives beside this file: the fortune reader (fortunes.c), LRA's grayscale and
 * PNG decoding (png_gray.c), and the readers of LRA's own files, one registry task each (lra_text.c,
 * lra_retrieval.c, lra_image.c, lra_pathfinder.c).
 *
 * Deliberately not here: any file format (the readers own theirs), tokenisation into words or subwords
 * (LRA's byte-level settings only), downloads.
 *
 * Entry points: pare_docs_add / _free / _count / _partition / _balance / _pack / _longest,
 * pare_shuffle_i64, pare_byte_vocab, pare_pixel_vocab, pare_bytes_len / _encode, pare_pair_len /
 * _encode, pare_read_line; internal (lra_files_internal.h): pare_lra_is_dir_, pare_lra_is_file_,
 * pare_lra_ends_with_, pare_lra_list_files_, pare_lra_names_free_, pare_lra_read_all_, pare_lra_line_of_,
 * pare_lra_need_path_.
 */
#include "data/lra_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/arena.h"
#include "data/lra_files_internal.h"

/* ---- document lists ---- */

pare_status pare_docs_add(pare_docs *d, const char *s, size_t len, int32_t label)
{
    if (d->n + 1 >= d->cap) {
        int64_t cap = d->cap ? 2 * d->cap : 1024;
        int64_t *ns = pare_alloc((size_t)(cap + 1) * sizeof(int64_t));
        int32_t *nl = pare_alloc((size_t)cap * sizeof(int32_t));
        if (!ns || !nl) {
            pare_free(ns), pare_free(nl);
            return pare_fail(PARE_ENOMEM, "out of memory for %lld documents", (long long)cap);
        }
        if (d->n) memcpy(nl, d->label, (size_t)d->n * sizeof(int32_t));
        if (d->start) memcpy(ns, d->start, (size_t)(d->n + 1) * sizeof(int64_t));
        else ns[0] = 0;
        pare_free(d->start), pare_free(d->label);
        d->start = ns, d->label = nl, d->cap = cap;
    }
    if (d->nbytes + len + 1 > d->bytes_cap) {
        size_t cap = d->bytes_cap ? d->bytes_cap : 65536;
        while (cap < d->nbytes + len + 1) cap *= 2;
        char *nb = pare_alloc(cap);
        if (!nb) return pare_fail(PARE_ENOMEM, "out of memory for %zu bytes of documents", cap);
        if (d->nbytes) memcpy(nb, d->bytes, d->nbytes);
        pare_free(d->bytes);
        d->bytes = nb, d->bytes_cap = cap;
    }
    if (len) memcpy(d->bytes + d->nbytes, s, len);
    d->nbytes += len;
    d->label[d->n++] = label;
    d->start[d->n] = (int64_t)d->nbytes;
    return PARE_OK;
}

void pare_docs_free(pare_docs *d)
{
    if (!d) return;
    pare_free(d->bytes), pare_free(d->start), pare_free(d->label), pare_free(d->class_name);
    memset(d, 0, sizeof *d);
}

void pare_docs_count(int64_t *count, const pare_docs *d)
{
    for (int32_t c = 0; c < d->nclass; c++) count[c] = 0;
    for (int64_t i = 0; i < d->n; i++) count[d->label[i]]++;
}

void pare_shuffle_i64(int64_t *x, pare_rng *r, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)pare_rng_below(r, (uint64_t)i + 1), t = x[i];
        x[i] = x[j], x[j] = t;
    }
}

pare_status pare_docs_partition(int64_t **test_idx, int64_t *test_start, int64_t **train_idx, int64_t *train_start,
                                const pare_docs *d, const int64_t *cls_test, const int64_t *cls_train, pare_rng *r)
{
    *test_idx = *train_idx = NULL;
    int64_t nte = 0, ntr = 0;
    for (int32_t c = 0; c < d->nclass; c++) nte += cls_test[c], ntr += cls_train[c];
    int64_t *pool = pare_alloc((size_t)(d->n > 0 ? d->n : 1) * sizeof(int64_t));
    *test_idx = pare_alloc((size_t)(nte > 0 ? nte : 1) * sizeof(int64_t));
    *train_idx = pare_alloc((size_t)(ntr > 0 ? ntr : 1) * sizeof(int64_t));
    if (!pool || !*test_idx || !*train_idx) {
        pare_free(pool), pare_free(*test_idx), pare_free(*train_idx);
        *test_idx = *train_idx = NULL;
        return pare_fail(PARE_ENOMEM, "out of memory partitioning %lld documents", (long long)d->n);
    }
    test_start[0] = train_start[0] = 0;
    for (int32_t c = 0; c < d->nclass; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < d->n; i++)
            if (d->label[i] == c) pool[m++] = i;
        pare_shuffle_i64(pool, r, m); /* the same draws whatever the requested counts */
        if (cls_test[c] + cls_train[c] > m) {
            pare_free(pool), pare_free(*test_idx), pare_free(*train_idx);
            *test_idx = *train_idx = NULL;
            return pare_fail(PARE_EINVAL, "class %d has %lld documents, %lld requested", c, (long long)m,
                             (long long)(cls_test[c] + cls_train[c]));
        }
        memcpy(*test_idx + test_start[c], pool, (size_t)cls_test[c] * sizeof(int64_t));
        memcpy(*train_idx + train_start[c], pool + cls_test[c], (size_t)cls_train[c] * sizeof(int64_t));
        test_start[c + 1] = test_start[c] + cls_test[c];
        train_start[c + 1] = train_start[c] + cls_train[c];
    }
    pare_free(pool);
    return PARE_OK;
}

pare_status pare_docs_balance(int64_t *cls_test, int64_t *cls_train, const pare_docs *d, int64_t n_train,
                              int64_t n_test, double test_frac, const char *task)
{
    int32_t C = d->nclass, small = 0;
    int64_t *count = pare_alloc((size_t)C * sizeof(int64_t));
    if (!count) return pare_fail(PARE_ENOMEM, "%s: out of memory", task);
    pare_docs_count(count, d);
    for (int32_t c = 1; c < C; c++)
        if (count[c] < count[small]) small = c;
    int64_t m = count[small];
    pare_free(count);
    const char *sname = d->class_name ? d->class_name[small] : "?";
    if (m < 2)
        return pare_fail(PARE_EINVAL, "%s: category '%s' has %lld distinct document(s); at least 2 are needed", task,
                         sname, (long long)m);
    int64_t tq, tr_, most;
    if (n_test == 0) {
        tq = (int64_t)(test_frac * (double)m);
        if (tq < 1) tq = 1;
        for (int32_t c = 0; c < C; c++) cls_test[c] = tq;
        most = tq;
    } else {
        tq = n_test / C, tr_ = n_test % C;
        for (int32_t c = 0; c < C; c++) cls_test[c] = tq + (c < tr_);
        most = tq + (tr_ > 0);
    }
    if (most >= m)
        return pare_fail(PARE_EINVAL,
                         "%s: the test split takes %lld documents per class, but the smallest category '%s' has %lld "
                         "(balanced classes): lower n_test or test_frac, or choose larger categories",
                         task, (long long)most, sname, (long long)m);
    if (n_train == 0) {
        for (int32_t c = 0; c < C; c++) cls_train[c] = m - most;
        return PARE_OK;
    }
    tq = n_train / C, tr_ = n_train % C;
    for (int32_t c = 0; c < C; c++) cls_train[c] = tq + (c < tr_);
    if (tq + (tr_ > 0) > m - most)
        return pare_fail(
            PARE_EINVAL,
            "%s: n_train=%lld needs %lld documents per class, but only %lld remain after the test split "
            "(the smallest category '%s' has %lld; classes are balanced): lower n_train or n_test, or use n_train=0",
            task, (long long)n_train, (long long)(tq + (tr_ > 0)), (long long)(m - most), sname, (long long)m);
    return PARE_OK;
}

/* ---- vocabularies and rows ---- */

pare_status pare_byte_vocab(pare_dataset *d)
{
    char store[PARE_BYTE_VOCAB][8];
    const char *nm[PARE_BYTE_VOCAB] = {"<pad>", "<cls>", "<sep>"};
    for (int b = 0; b < 256; b++) {
        char *s = store[PARE_BYTE_0 + b];
        if (b == ' ') snprintf(s, 8, "<sp>");
        else if (b == '\n') snprintf(s, 8, "\\n");
        else if (b == '\t') snprintf(s, 8, "\\t");
        else if (b > 32 && b < 127) snprintf(s, 8, "%c", b);
        else snprintf(s, 8, "\\x%02x", b);
        nm[PARE_BYTE_0 + b] = s;
    }
    return pare_dataset_set_vocab(d, nm, PARE_BYTE_VOCAB);
}

pare_status pare_pixel_vocab(pare_dataset *d, int levels)
{
    char (*store)[16] = pare_alloc((size_t)(PARE_PIXEL_0 + levels) * 16);
    const char **nm = pare_alloc((size_t)(PARE_PIXEL_0 + levels) * sizeof(char *));
    if (!store || !nm) {
        pare_free(store), pare_free(nm);
        return pare_fail(PARE_ENOMEM, "out of memory");
    }
    nm[PARE_PIXEL_PAD] = "<pad>", nm[PARE_PIXEL_CLS] = "<cls>";
    for (int l = 0; l < levels; l++)
        snprintf(store[PARE_PIXEL_0 + l], 16, "p%d", l), nm[PARE_PIXEL_0 + l] = store[PARE_PIXEL_0 + l];
    pare_status st = pare_dataset_set_vocab(d, nm, PARE_PIXEL_0 + levels);
    pare_free(store), pare_free(nm);
    return st;
}

int64_t pare_bytes_len(size_t len, int64_t max_len)
{
    return 1 + ((int64_t)len < max_len - 1 ? (int64_t)len : max_len - 1);
}

int64_t pare_bytes_encode(int32_t *row, const char *s, size_t len, int64_t max_len)
{
    int64_t L = pare_bytes_len(len, max_len);
    row[0] = PARE_BYTE_CLS;
    for (int64_t j = 1; j < L; j++) row[j] = PARE_BYTE_0 + (unsigned char)s[j - 1];
    return L;
}

int64_t pare_pair_len(size_t la, size_t lb, int64_t max_len)
{
    int64_t h = (max_len - 2) / 2;
    return 2 + ((int64_t)la < h ? (int64_t)la : h) + ((int64_t)lb < h ? (int64_t)lb : h);
}

int64_t pare_pair_encode(int32_t *row, const char *a, size_t la, const char *b, size_t lb, int64_t max_len)
{
    int64_t h = (max_len - 2) / 2, na = (int64_t)la < h ? (int64_t)la : h, nb = (int64_t)lb < h ? (int64_t)lb : h,
            p = 0;
    row[p++] = PARE_BYTE_CLS;
    for (int64_t j = 0; j < na; j++) row[p++] = PARE_BYTE_0 + (unsigned char)a[j];
    row[p++] = PARE_BYTE_SEP;
    for (int64_t j = 0; j < nb; j++) row[p++] = PARE_BYTE_0 + (unsigned char)b[j];
    return p;
}

/* ---- small file utilities ---- */

int pare_lra_is_dir_(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int pare_lra_is_file_(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int pare_lra_ends_with_(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int cmp_ver(const void *a, const void *b) { return strverscmp(*(char *const *)a, *(char *const *)b); }

void pare_lra_names_free_(pare_name_list *l)
{
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Regular files in dir whose names end with suffix (and do not start with '.'), in version order
 * (sample_2 before sample_10). keep(name) filters further when not NULL. PARE_EIO if dir cannot be
 * opened (errno kept in *err). */
pare_status pare_lra_list_files_(pare_name_list *out, const char *dir, const char *suffix, int (*keep)(const char *), int *err)
{
    memset(out, 0, sizeof *out);
    DIR *dp = opendir(dir);
    if (!dp) {
        *err = errno;
        return PARE_EIO;
    }
    struct dirent *e;
    char path[PARE_OPT_STR_MAX + 512];
    pare_status st = PARE_OK;
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.' || !pare_lra_ends_with_(e->d_name, suffix) || (keep && !keep(e->d_name))) continue;
        if (e->d_type != DT_REG) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (!pare_lra_is_file_(path)) continue;
        }
        if (out->n == out->cap) {
            int64_t cap = out->cap ? 2 * out->cap : 256;
            char **nv = realloc(out->v, (size_t)cap * sizeof(char *));
            if (!nv) { st = pare_fail(PARE_ENOMEM, "%s: out of memory listing files", dir); break; }
            out->v = nv, out->cap = cap;
        }
        if (!(out->v[out->n] = strdup(e->d_name))) {
            st = pare_fail(PARE_ENOMEM, "%s: out of memory listing files", dir);
            break;
        }
        out->n++;
    }
    closedir(dp);
    if (st != PARE_OK) return pare_lra_names_free_(out), st;
    if (out->n) qsort(out->v, (size_t)out->n, sizeof(char *), cmp_ver);
    return PARE_OK;
}

/* The whole file into *buf (pare_free; NUL-terminated, *len without it). */
pare_status pare_lra_read_all_(char **buf, size_t *len, const char *path)
{
    *buf = NULL, *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 65536, n = 0;
    char *b = pare_alloc(cap);
    pare_status st = PARE_OK;
    while (b) {
        n += fread(b + n, 1, cap - 1 - n, f);
        if (n < cap - 1) break;
        char *nb = pare_alloc(cap * 2);
        if (nb) memcpy(nb, b, n);
        pare_free(b);
        b = nb, cap *= 2;
    }
    if (!b) st = pare_fail(PARE_ENOMEM, "%s: out of memory reading the file", path);
    else if (ferror(f)) st = pare_fail(PARE_EIO, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (st != PARE_OK) return pare_free(b), st;
    b[n] = '\0';
    *buf = b, *len = n;
    return PARE_OK;
}

/* 1-based line number of byte offset off in s. */
long long pare_lra_line_of_(const char *s, size_t off)
{
    long long ln = 1;
    for (size_t i = 0; i < off; i++) ln += s[i] == '\n';
    return ln;
}

int pare_read_line(FILE *f, pare_sbuf *b, int64_t max, int reject_nul)
{
    int ch, any = 0;
    b->n = 0;
    while ((ch = getc_unlocked(f)) != EOF) {
        any = 1;
        if (ch == '\n') break;
        if (ch == '\0' && reject_nul) return -3;
        if ((int64_t)b->n >= max) return -1;
        if (b->n + 2 > b->cap) {
            size_t cap = b->cap ? 2 * b->cap : 65536;
            char *ns = pare_alloc(cap);
            if (!ns) return -2;
            if (b->n) memcpy(ns, b->s, b->n);
            pare_free(b->s);
            b->s = ns, b->cap = cap;
        }
        b->s[b->n++] = (char)ch;
    }
    if (!any) return 0;
    if (!b->s) {
        if (!(b->s = pare_alloc(64))) return -2;
        b->cap = 64;
    }
    if (b->n && b->s[b->n - 1] == '\r') b->n--;
    b->s[b->n] = '\0';
    return 1;
}

/* ---- shared task plumbing ---- */

/* Pack documents idx[0..n) of docs as <cls> bytes rows (CLASSIFY, labels from docs). */
pare_status pare_docs_pack(pare_dataset *d, const char *task, const char *split, const pare_docs *docs,
                           const int64_t *idx, int64_t n, int64_t max_len, int64_t T)
{
    PARE_TRY(pare_dataset_alloc(d, "", PARE_TASK_CLASSIFY, n, T, PARE_BYTE_VOCAB, docs->nclass > 0 ? docs->nclass : 1));
    pare_task_name_split(d, task, split);
    for (int64_t i = 0; i < n; i++) {
        size_t len;
        const char *s = pare_docs_at(docs, idx ? idx[i] : i, &len);
        d->lengths[i] = (int32_t)pare_bytes_encode(d->tokens + i * T, s, len, max_len);
        d->labels[i] = docs->label[idx ? idx[i] : i];
    }
    return pare_byte_vocab(d);
}

int64_t pare_docs_longest(const pare_docs *docs, const int64_t *idx, int64_t n, int64_t max_len)
{
    int64_t m = 1;
    for (int64_t i = 0; i < n; i++) {
        size_t len;
        pare_docs_at(docs, idx ? idx[i] : i, &len);
        int64_t L = pare_bytes_len(len, max_len);
        m = L > m ? L : m;
    }
    return m;
}

pare_status pare_lra_need_path_(const pare_options *o, const char *task, const char *what)
{
    if (*pare_opt_str(o, "path")) return PARE_OK;
    return pare_fail(PARE_EINVAL, "%s: option path is required: %s (LRA's files are not shipped; see docs/tasks.md)",
                     task, what);
}
