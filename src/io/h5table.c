/* h5table.c — HDF5 result tables (see h5table.h for the on-disk format).
 *
 * Memory layout trick: a row in memory is an array of pare_cell (8 bytes each), and the HDF5 memory
 * compound type places member j at offset 8·j with the native type of the column (int64, double,
 * char* for a variable-length string, int8 for the bool enum at the union's first byte). So a
 * pare_cell array is directly the buffer HDF5 reads and writes. The file type is the packed
 * little-endian equivalent.
 *
 * Not done here: compression (a chunk is rewritten on every flush; rows are few and small), SWMR.
 */
#include "io/h5table.h"

#include "io/atomic.h"

#include <errno.h>
#include <glob.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct pare_h5_file {
    hid_t fid;   /* -1 after a failed first commit */
    int writable;
    int lock_fd; /* the writer's lock (io/atomic.h); -1 for readers */
    int dirty;   /* attributes changed in memory and not yet committed */
    char *path;
};

#define CHUNK_ROWS 32

static const char *col_type_names[] = {"int64", "float64", "string", "bool"};
_Static_assert(sizeof col_type_names / sizeof col_type_names[0] == PARE_COL_TYPE_COUNT, "column types out of date");

const char *pare_col_type_name(pare_col_type t) { return (unsigned)t < PARE_COL_TYPE_COUNT ? col_type_names[t] : "?"; }

static void silence_hdf5(void)
{
    static int done;
    if (!done) {
        H5open();
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

const char *pare_h5_libversion(char *buf, size_t n)
{
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    snprintf(buf, n, "%u.%u.%u", maj, min, rel);
    return buf;
}

int pare_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= PARE_COL_NAME_MAX || name[0] == '.' || name[0] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '+' || c == '-'))
            return 0;
    }
    return 1;
}

int pare_cell_is_missing(pare_col_type type, pare_cell c)
{
    switch (type) {
    case PARE_COL_INT: return c.i == INT64_MIN;
    case PARE_COL_FLOAT: return isnan(c.f);
    case PARE_COL_STR: return c.s == NULL || c.s[0] == '\0';
    default: return 0;
    }
}

pare_cell pare_cell_missing(pare_col_type type)
{
    pare_cell c;
    memset(&c, 0, sizeof c);
    if (type == PARE_COL_INT) c.i = INT64_MIN;
    else if (type == PARE_COL_FLOAT) c.f = NAN;
    else if (type == PARE_COL_STR) c.s = "";
    return c;
}

/* mkdir -p of the directory part of path. */
pare_status pare_make_parent_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return pare_fail(PARE_EINVAL, "%s: path too long", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) return PARE_OK;
    *slash = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return pare_fail(PARE_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return pare_fail(PARE_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
    return PARE_OK;
}

/* The innermost message of HDF5's error stack ("truncated file: eof = 96, ..."), or "" — the reason
 * behind a failed call, for messages. */
static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e && e->desc) snprintf(data, 200, "%s", e->desc);
    return 0;
}

static const char *h5_reason(char buf[200])
{
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_cb, buf);
    return buf;
}

/* A file access property list: no HDF5 file locking (readers must open a file a run is writing;
 * writers hold pare's own lock), and a close that really closes. In memory for writers. */
static hid_t make_fapl(int in_memory)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_locking(fapl, 0, 1);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    if (in_memory) H5Pset_fapl_core(fapl, 64 * 1024, 0); /* no backing store: commits write the file */
    return fapl;
}

/* Load the file on disk into memory (writers work on this image and commit it whole). */
static hid_t open_image(const char *path)
{
    hid_t fapl = make_fapl(1);
    hid_t fid = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    return fid;
}

/* Forget uncommitted changes: reload the image from the file on disk. */
static void rollback(pare_h5_file *f)
{
    if (f->fid >= 0) H5Fclose(f->fid);
    f->fid = open_image(f->path);
    f->dirty = 0;
}

/* Write the in-memory image over the file atomically. On failure the image is reloaded from the
 * file on disk, so the process and the disk agree: the change that failed is not recorded. */
static pare_status commit(pare_h5_file *f, const char *what)
{
    char why[200];
    if (H5Fflush(f->fid, H5F_SCOPE_GLOBAL) < 0) return pare_fail(PARE_EIO, "%s: %s: cannot flush: %s", f->path, what, h5_reason(why));
    ssize_t n = H5Fget_file_image(f->fid, NULL, 0);
    void *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!buf || H5Fget_file_image(f->fid, buf, (size_t)n) != n) {
        free(buf);
        return pare_fail(n > 0 ? PARE_ENOMEM : PARE_EIO, "%s: %s: cannot take the file's image", f->path, what);
    }
    pare_status st = pare_atomic_replace(f->path, buf, (size_t)n, what);
    free(buf);
    if (st == PARE_OK) {
        f->dirty = 0;
        return PARE_OK;
    }
    rollback(f); /* fid < 0 after it when the file was never committed (a new file on a full disk) */
    return st;
}

pare_status pare_h5_commit(pare_h5_file *f)
{
    if (!f->writable) return pare_fail(PARE_EINVAL, "%s: opened read-only; nothing to commit", f->path);
    if (f->fid < 0) return pare_fail(PARE_EIO, "%s: unusable after a failed write", f->path);
    return f->dirty ? commit(f, "saving attributes") : PARE_OK;
}

static pare_status check_open(const pare_h5_file *f, const char *doing)
{
    if (f->fid < 0) return pare_fail(PARE_EIO, "%s: cannot %s: the file could not be created (an earlier write failed)", f->path, doing);
    return PARE_OK;
}

/* Read every table and attribute, so that damage shows at open with its reason and not as a failed
 * write later ("cannot write attribute 'date'"). Results files are small. */
static pare_status validate(pare_h5_file *f)
{
    char **names = NULL, **attrs = NULL;
    int n = 0, na = 0;
    pare_status st = pare_h5_table_names(f, &names, &n);
    for (int i = 0; st == PARE_OK && i < n; i++) {
        pare_table t;
        st = pare_h5_table_read(f, names[i], &t);
        pare_table_free(&t);
    }
    if (st == PARE_OK) st = pare_h5_attr_names(f, "/", &attrs, &na);
    for (int i = 0; st == PARE_OK && i < na; i++) {
        char *v = NULL;
        st = pare_h5_attr_get(f, "/", attrs[i], &v);
        free(v);
    }
    free(names);
    free(attrs);
    return st;
}

/* Delete temporary files a killed writer left ("<path>.tmp-<pid>-<k>"); called under the lock. */
static void remove_stale_temps(const char *path)
{
    char pattern[PARE_PATH_MAX + 16];
    snprintf(pattern, sizeof pattern, "%s.tmp-*", path);
    glob_t g;
    if (glob(pattern, GLOB_NOSORT | GLOB_NOESCAPE, NULL, &g) != 0) return;
    for (size_t i = 0; i < g.gl_pathc; i++) unlink(g.gl_pathv[i]);
    globfree(&g);
}

static pare_status open_reader(hid_t *fid, const char *path)
{
    char why[200];
    htri_t is = H5Fis_hdf5(path);
    if (is < 0) return pare_fail(PARE_EIO, "%s: cannot read the file: %s", path, h5_reason(why));
    if (is == 0) return pare_fail(PARE_EFORMAT, "%s: not an HDF5 file (corrupt or another format)", path);
    hid_t fapl = make_fapl(0);
    *fid = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    /* The same file already open in this process with other access properties: HDF5 shares it only
     * when they agree, so retry with the default ones. */
    if (*fid < 0) *fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*fid < 0) return pare_fail(PARE_EFORMAT, "%s: damaged (corrupted HDF5 structures): %s", path, h5_reason(why));
    return PARE_OK;
}

/* Open and read the whole file, returning what went wrong. */
static pare_status append_row(pare_h5_file *f, const char *table, const pare_cell *row);

/* A writer's trial, in memory only: what recording does (append a row of missing values to every
 * table). */
static pare_status trial_writes(pare_h5_file *f)
{
    char **names = NULL;
    int n = 0;
    pare_status st = pare_h5_table_names(f, &names, &n);
    for (int i = 0; st == PARE_OK && i < n; i++) {
        pare_col *cols = NULL;
        int nc = 0;
        st = pare_h5_table_info(f, names[i], &cols, &nc, NULL);
        pare_cell row[PARE_TABLE_MAX_COLS];
        for (int j = 0; j < nc; j++) row[j] = pare_cell_missing(cols[j].type);
        free(cols);
        if (st == PARE_OK) st = append_row(f, names[i], row);
    }
    free(names);
    return st;
}

/* Open and read the whole file (and, for a writer, try its writes in memory), returning what went
 * wrong. Nothing is written to disk. */
static pare_status check_file(const char *path, int writer)
{
    pare_h5_file tmp = {.fid = -1, .lock_fd = -1, .path = (char *)path, .writable = writer};
    char why[200];
    if (writer) {
        PARE_TRY(open_reader(&tmp.fid, path)); /* H5Fis_hdf5 and its messages */
        H5Fclose(tmp.fid);
        if ((tmp.fid = open_image(path)) < 0)
            return pare_fail(PARE_EFORMAT, "%s: damaged (corrupted HDF5 structures): %s", path, h5_reason(why));
    } else {
        PARE_TRY(open_reader(&tmp.fid, path));
    }
    /* a writer sets attributes first (provenance), then reads and appends */
    pare_status st = writer ? pare_h5_attr_set_str(&tmp, "/", "date", "check") : PARE_OK;
    if (st == PARE_OK) st = validate(&tmp);
    if (st == PARE_OK && writer) st = trial_writes(&tmp);
    H5Fclose(tmp.fid);
    if (st != PARE_OK && !strstr(pare_errmsg(), "damaged")) {
        char m[1024];
        snprintf(m, sizeof m, "%s", pare_errmsg());
        return pare_fail(PARE_EFORMAT, "%s (the file is damaged)", m);
    }
    return st == PARE_OK ? PARE_OK : PARE_EFORMAT;
}

/* check_file in a child process. libhdf5 1.10 trusts the lengths it reads (a corrupted global heap
 * makes H5HG_read copy past its buffer), so a damaged file can crash the reader; reading it first
 * in a child turns that crash into an error here. Results files are small, so reading one twice
 * costs milliseconds. Without fork, the check runs in this process. */
enum { CHECK_SECONDS = 20 }; /* a results file of a few MB is read in well under a second */

static pare_status check_file_isolated(const char *path, int writer)
{
    int p[2];
    if (pipe(p) != 0) return check_file(path, writer);
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return check_file(path, writer);
    }
    if (pid == 0) {
        /* Keep only the pipe: inherited descriptors would hold the parent's writer locks (OFD
         * locks belong to the open file description) after the parent dies. And die with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(PARE_EIO); /* the parent died before prctl */
        if (p[1] != 3) {
            dup2(p[1], 3);
            p[1] = 3;
        }
        close_range(4, ~0U, 0);
        alarm(CHECK_SECONDS); /* some corruptions send HDF5 into an endless loop */
        pare_status st = check_file(path, writer);
        const char *m = pare_errmsg();
        size_t n = strlen(m);
        if (st != PARE_OK && write(p[1], m, n) != (ssize_t)n) st = PARE_EIO;
        _exit((int)st); /* no atexit handlers: the parent's HDF5 state is not ours to close */
    }
    close(p[1]);
    char msg[1024];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(p[0], msg + got, sizeof msg - 1 - got);
        if (r > 0) got += (size_t)r;
        else if (r == 0 || errno != EINTR || got == sizeof msg - 1) break;
        if (got == sizeof msg - 1) break;
    }
    msg[got] = '\0';
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        return pare_fail(PARE_EFORMAT, "%s: damaged: the HDF5 library was still reading it after %d s (a corrupted file "
                                       "can make it loop); move it aside, or start over with fresh = true",
                         path, CHECK_SECONDS);
    if (WIFSIGNALED(status))
        return pare_fail(PARE_EFORMAT, "%s: damaged: the HDF5 library crashed reading it (%s); move it aside, or start over "
                                       "with fresh = true",
                         path, strsignal(WTERMSIG(status)));
    if (!WIFEXITED(status)) return pare_fail(PARE_EINTERNAL, "%s: the check of the file ended abnormally", path);
    int code = WEXITSTATUS(status);
    if (code == 0) return PARE_OK;
    return pare_fail(code < PARE_STATUS_COUNT ? (pare_status)code : PARE_EFORMAT, "%s", got ? msg : "the file could not be read");
}

pare_status pare_h5_open(pare_h5_file **out, const char *path, pare_h5_mode mode)
{
    silence_hdf5();
    *out = NULL;
    struct stat st;
    int exists = stat(path, &st) == 0;
    int err = errno;
    if (exists && S_ISDIR(st.st_mode)) return pare_fail(PARE_EIO, "%s: is a directory, not an HDF5 file", path);
    if (!exists && err != ENOENT) return pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(err));
    if (!exists && mode == PARE_H5_READ) return pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(err));
    if (exists && mode != PARE_H5_FRESH && access(path, R_OK) != 0)
        return pare_fail(PARE_EIO, "%s: cannot read: %s", path, strerror(errno));

    pare_h5_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    }
    f->fid = -1;
    f->lock_fd = -1;
    f->writable = mode != PARE_H5_READ;
    pare_status s = PARE_OK;
    char why[200];
    if (mode == PARE_H5_READ) {
        s = check_file_isolated(path, 0);
        if (s == PARE_OK) s = open_reader(&f->fid, path);
        if (s != PARE_OK) goto fail;
        *out = f;
        return PARE_OK;
    }
    if (exists && mode == PARE_H5_APPEND && (access(path, W_OK) != 0 || !(st.st_mode & 0222))) {
        s = pare_fail(PARE_EIO, "%s: read-only (%s): pare records rows by rewriting it; make it writable (chmod u+w) or "
                                "give the experiment another name or results dir",
                      path, access(path, W_OK) != 0 ? strerror(errno) : "no write permission bits");
        goto fail;
    }
    if (!exists && (s = pare_make_parent_dirs(path)) != PARE_OK) goto fail;
    if ((s = pare_lock_take(&f->lock_fd, path)) != PARE_OK) goto fail;
    remove_stale_temps(path);
    if (exists && mode == PARE_H5_APPEND) {
        s = check_file_isolated(path, 1);
        if (s != PARE_OK) {
            if (!strstr(pare_errmsg(), "fresh = true")) {
                char m[1024];
                snprintf(m, sizeof m, "%s", pare_errmsg());
                pare_fail(s, "%s; move it aside, or start over with fresh = true", m);
            }
            goto fail;
        }
        f->fid = open_image(path);
        if (f->fid < 0) {
            s = pare_fail(PARE_EFORMAT, "%s: damaged (corrupted HDF5 structures: %s); move it aside, or start over with "
                                        "fresh = true",
                          path, h5_reason(why));
            goto fail;
        }
    } else {
        hid_t fapl = make_fapl(1);
        f->fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        H5Pclose(fapl);
        if (f->fid < 0) {
            s = pare_fail(PARE_EIO, "%s: cannot create the HDF5 file: %s", path, h5_reason(why));
            goto fail;
        }
        /* Written at once: from here on the path holds a valid (empty) results file, never a torn one. */
        if ((s = commit(f, "creating the results file")) != PARE_OK) goto fail;
    }
    *out = f;
    return PARE_OK;
fail:
    if (f->fid >= 0) H5Fclose(f->fid);
    pare_lock_release(f->lock_fd);
    free(f->path);
    free(f);
    return s;
}

pare_status pare_h5_close(pare_h5_file *f)
{
    if (!f) return PARE_OK;
    pare_status s = PARE_OK;
    if (f->writable && f->fid >= 0 && f->dirty) s = commit(f, "saving attributes at close");
    if (f->fid >= 0) H5Fclose(f->fid);
    pare_lock_release(f->lock_fd);
    free(f->path);
    free(f);
    return s;
}

const char *pare_h5_path(const pare_h5_file *f) { return f->path; }

/* ---- name lists packed in one block: (n+1) pointers, then the strings ---- */

typedef struct namelist {
    char **v;
    int n, cap;
} namelist;

static int namelist_add(namelist *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

static void namelist_free(namelist *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static pare_status namelist_pack(namelist *l, char ***names, int *n)
{
    size_t bytes = (size_t)(l->n + 1) * sizeof(char *);
    for (int i = 0; i < l->n; i++) bytes += strlen(l->v[i]) + 1;
    char **block = malloc(bytes);
    if (!block) {
        namelist_free(l);
        return pare_fail(PARE_ENOMEM, "out of memory listing names");
    }
    char *s = (char *)(block + l->n + 1);
    for (int i = 0; i < l->n; i++) {
        size_t len = strlen(l->v[i]) + 1;
        memcpy(s, l->v[i], len);
        block[i] = s;
        s += len;
    }
    block[l->n] = NULL;
    *names = block;
    *n = l->n;
    namelist_free(l);
    return PARE_OK;
}

typedef struct collect_ctx {
    namelist l;
    char bad[PARE_COL_NAME_MAX]; /* an object that could not be opened */
    char why[200];
} collect_ctx;

static herr_t collect_dataset(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)info;
    collect_ctx *c = data;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) { /* a damaged table must not vanish from the list */
        h5_reason(c->why);
        snprintf(c->bad, sizeof c->bad, "%s", name);
        return -1;
    }
    int is_table = 0;
    if (H5Iget_type(o) == H5I_DATASET) {
        hid_t t = H5Dget_type(o);
        is_table = H5Tget_class(t) == H5T_COMPOUND;
        H5Tclose(t);
    }
    H5Oclose(o);
    if (is_table && namelist_add(&c->l, name) < 0) return -1;
    return 0;
}

pare_status pare_h5_table_names(pare_h5_file *f, char ***names, int *n)
{
    collect_ctx c;
    memset(&c, 0, sizeof c);
    hsize_t idx = 0;
    if (H5Literate(f->fid, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_dataset, &c) < 0) {
        namelist_free(&c.l);
        char why[200];
        if (c.bad[0]) return pare_fail(PARE_EFORMAT, "%s: cannot open '%s' (damaged: %s)", f->path, c.bad, c.why);
        return pare_fail(PARE_EFORMAT, "%s: cannot list the tables (damaged: %s)", f->path, h5_reason(why));
    }
    if (c.l.n > 1) qsort(c.l.v, (size_t)c.l.n, sizeof *c.l.v, cmp_str); /* c.l.v is NULL when there are none */
    return namelist_pack(&c.l, names, n);
}

int pare_h5_table_exists(pare_h5_file *f, const char *table)
{
    if (!pare_name_ok(table)) return 0;
    if (H5Lexists(f->fid, table, H5P_DEFAULT) <= 0) return 0;
    H5O_info_t info;
    if (H5Oget_info_by_name(f->fid, table, &info, H5P_DEFAULT) < 0) return 0;
    return info.type == H5O_TYPE_DATASET;
}

/* ---- types ---- */

static hid_t bool_type(hid_t base)
{
    hid_t t = H5Tenum_create(base);
    int8_t v0 = 0, v1 = 1;
    H5Tenum_insert(t, "FALSE", &v0);
    H5Tenum_insert(t, "TRUE", &v1);
    return t;
}

static hid_t str_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static hid_t member_type(pare_col_type type, int in_file)
{
    switch (type) {
    case PARE_COL_INT: return H5Tcopy(in_file ? H5T_STD_I64LE : H5T_NATIVE_INT64);
    case PARE_COL_FLOAT: return H5Tcopy(in_file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE);
    case PARE_COL_STR: return str_type();
    case PARE_COL_BOOL: return bool_type(in_file ? H5T_STD_I8LE : H5T_NATIVE_INT8);
    default: return -1;
    }
}

/* The compound type of a row: in memory (member j at 8·j, a pare_cell array) or packed for the file. */
static hid_t row_type(const pare_col *cols, int ncols, int in_file)
{
    size_t size = 0;
    hid_t mt[PARE_TABLE_MAX_COLS];
    for (int j = 0; j < ncols; j++) {
        mt[j] = member_type(cols[j].type, in_file);
        size += in_file ? H5Tget_size(mt[j]) : sizeof(pare_cell);
    }
    hid_t t = H5Tcreate(H5T_COMPOUND, size);
    size_t off = 0;
    for (int j = 0; j < ncols; j++) {
        if (t >= 0) H5Tinsert(t, cols[j].name, off, mt[j]);
        off += in_file ? H5Tget_size(mt[j]) : sizeof(pare_cell);
        H5Tclose(mt[j]);
    }
    return t;
}

/* ---- attributes ---- */

static pare_status attr_write(pare_h5_file *f, const char *obj, const char *key, hid_t type, const void *value)
{
    if (!f->writable) return pare_fail(PARE_EINVAL, "%s: opened read-only; cannot set attribute '%s'", f->path, key);
    PARE_TRY(check_open(f, "set an attribute"));
    hid_t o = H5Oopen(f->fid, obj, H5P_DEFAULT);
    if (o < 0) return pare_fail(PARE_EINVAL, "%s: no object '%s' to put attribute '%s' on", f->path, obj, key);
    if (H5Aexists(o, key) > 0) H5Adelete(o, key);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(o, key, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, type, value);
    char why[200];
    if (e < 0) h5_reason(why); /* before the next call clears HDF5's error stack */
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Oclose(o);
    f->dirty = 1; /* even when it failed: a later commit or rollback settles the image */
    if (e < 0) return pare_fail(PARE_EIO, "%s: cannot write attribute '%s' on '%s': %s", f->path, key, obj, why);
    return PARE_OK;
}

pare_status pare_h5_attr_set_str(pare_h5_file *f, const char *obj, const char *key, const char *value)
{
    hid_t t = str_type();
    const char *v = value ? value : "";
    pare_status s = attr_write(f, obj, key, t, &v);
    H5Tclose(t);
    return s;
}

pare_status pare_h5_attr_set_i64(pare_h5_file *f, const char *obj, const char *key, int64_t value)
{
    return attr_write(f, obj, key, H5T_NATIVE_INT64, &value);
}

pare_status pare_h5_attr_set_f64(pare_h5_file *f, const char *obj, const char *key, double value)
{
    return attr_write(f, obj, key, H5T_NATIVE_DOUBLE, &value);
}

pare_status pare_h5_attr_get(pare_h5_file *f, const char *obj, const char *key, char **value)
{
    *value = NULL;
    hid_t o = H5Oopen(f->fid, obj, H5P_DEFAULT);
    if (o < 0) return pare_fail(PARE_EINVAL, "%s: no object '%s'", f->path, obj);
    if (H5Aexists(o, key) <= 0) {
        H5Oclose(o);
        return pare_fail(PARE_EINVAL, "%s: '%s' has no attribute '%s'", f->path, obj, key);
    }
    hid_t a = H5Aopen(o, key, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    H5T_class_t cls = H5Tget_class(t);
    char num[64];
    char *text = NULL;
    herr_t e = -1;
    hid_t asp = H5Aget_space(a); /* one value only: H5Aread writes every element into the buffer */
    hssize_t npoints = asp >= 0 ? H5Sget_simple_extent_npoints(asp) : -1;
    if (asp >= 0) H5Sclose(asp);
    if (npoints != 1) cls = H5T_NO_CLASS;
    if (cls == H5T_STRING && H5Tis_variable_str(t) > 0) {
        hid_t mt = str_type();
        char *s = NULL;
        e = H5Aread(a, mt, &s);
        if (e >= 0) {
            text = strdup(s ? s : "");
            H5free_memory(s);
        }
        H5Tclose(mt);
    } else if (cls == H5T_STRING) {
        size_t n = H5Tget_size(t);
        text = calloc(n + 1, 1);
        if (text) e = H5Aread(a, t, text);
    } else if (cls == H5T_INTEGER) {
        long long v = 0;
        e = H5Aread(a, H5T_NATIVE_LLONG, &v);
        snprintf(num, sizeof num, "%lld", v);
        text = strdup(num);
    } else if (cls == H5T_FLOAT) {
        double v = 0;
        e = H5Aread(a, H5T_NATIVE_DOUBLE, &v);
        snprintf(num, sizeof num, "%.17g", v);
        text = strdup(num);
    }
    H5Tclose(t);
    H5Aclose(a);
    H5Oclose(o);
    if (e < 0 || !text) {
        free(text);
        return pare_fail(PARE_EFORMAT, "%s: attribute '%s' of '%s' is not a readable scalar", f->path, key, obj);
    }
    *value = text;
    return PARE_OK;
}

static herr_t collect_attr(hid_t o, const char *name, const H5A_info_t *info, void *data)
{
    (void)o;
    (void)info;
    return namelist_add(data, name) < 0 ? -1 : 0;
}

pare_status pare_h5_attr_names(pare_h5_file *f, const char *obj, char ***names, int *n)
{
    hid_t o = H5Oopen(f->fid, obj, H5P_DEFAULT);
    if (o < 0) return pare_fail(PARE_EINVAL, "%s: no object '%s'", f->path, obj);
    namelist l = {0};
    hsize_t idx = 0;
    herr_t e = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &l);
    H5Oclose(o);
    if (e < 0) {
        namelist_free(&l);
        return pare_fail(PARE_EFORMAT, "%s: cannot list the attributes of '%s'", f->path, obj);
    }
    return namelist_pack(&l, names, n);
}

/* ---- tables ---- */

static pare_status check_table_name(pare_h5_file *f, const char *table)
{
    if (!pare_name_ok(table))
        return pare_fail(PARE_EINVAL, "%s: invalid table name '%s' (1-63 characters of A-Z a-z 0-9 _ . + -)", f->path,
                         table ? table : "(null)");
    return PARE_OK;
}

pare_status pare_h5_table_drop(pare_h5_file *f, const char *table)
{
    if (!f->writable) return pare_fail(PARE_EINVAL, "%s: opened read-only; cannot drop table '%s'", f->path, table);
    PARE_TRY(check_open(f, "drop a table"));
    if (!pare_h5_table_exists(f, table)) return pare_fail(PARE_EINVAL, "%s: no table '%s' to drop", f->path, table);
    char why[200];
    if (H5Ldelete(f->fid, table, H5P_DEFAULT) < 0) {
        pare_status st = pare_fail(PARE_EIO, "%s: cannot drop table '%s': %s", f->path, table, h5_reason(why));
        rollback(f);
        return st;
    }
    return commit(f, "dropping a table");
}

pare_status pare_h5_table_create(pare_h5_file *f, const char *table, const pare_col *cols, int ncols)
{
    PARE_TRY(check_table_name(f, table));
    if (!f->writable) return pare_fail(PARE_EINVAL, "%s: opened read-only; cannot create table '%s'", f->path, table);
    PARE_TRY(check_open(f, "create a table"));
    if (ncols < 1 || ncols > PARE_TABLE_MAX_COLS)
        return pare_fail(PARE_EINVAL, "%s: table '%s' needs 1 to %d columns, got %d", f->path, table, PARE_TABLE_MAX_COLS, ncols);
    for (int j = 0; j < ncols; j++) {
        if (!pare_name_ok(cols[j].name))
            return pare_fail(PARE_EINVAL, "%s: table '%s': invalid column name '%s' (1-63 characters of A-Z a-z 0-9 _ . + -)",
                             f->path, table, cols[j].name);
        if ((unsigned)cols[j].type >= PARE_COL_TYPE_COUNT)
            return pare_fail(PARE_EINVAL, "%s: table '%s': column '%s' has no valid type", f->path, table, cols[j].name);
        for (int k = 0; k < j; k++)
            if (!strcmp(cols[k].name, cols[j].name))
                return pare_fail(PARE_EINVAL, "%s: table '%s': column '%s' given twice", f->path, table, cols[j].name);
    }
    if (H5Lexists(f->fid, table, H5P_DEFAULT) > 0) return pare_fail(PARE_EINVAL, "%s: table '%s' already exists", f->path, table);

    hid_t ft = row_type(cols, ncols, 1);
    hsize_t dims = 0, maxdims = H5S_UNLIMITED, chunk = CHUNK_ROWS;
    hid_t sp = H5Screate_simple(1, &dims, &maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    hid_t d = ft < 0 ? -1 : H5Dcreate2(f->fid, table, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    char why[200];
    if (d < 0) h5_reason(why);
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (d < 0) {
        pare_status st = pare_fail(PARE_EIO, "%s: cannot create table '%s': %s", f->path, table, why);
        rollback(f);
        return st;
    }
    H5Dclose(d);
    pare_status st = PARE_OK;
    for (int j = 0; j < ncols && st == PARE_OK; j++) {
        char key[PARE_COL_NAME_MAX + 8];
        if (cols[j].unit[0]) {
            snprintf(key, sizeof key, "unit:%s", cols[j].name);
            st = pare_h5_attr_set_str(f, table, key, cols[j].unit);
        }
        if (st == PARE_OK && cols[j].label[0]) {
            snprintf(key, sizeof key, "label:%s", cols[j].name);
            st = pare_h5_attr_set_str(f, table, key, cols[j].label);
        }
    }
    if (st != PARE_OK) {
        rollback(f);
        return st;
    }
    return commit(f, "creating a table");
}

/* Read the optional "unit:<col>" / "label:<col>" attribute into dst. */
static void read_col_attr(pare_h5_file *f, const char *table, const char *prefix, const char *col, char *dst, size_t n)
{
    char key[PARE_COL_NAME_MAX + 8], *v = NULL;
    snprintf(key, sizeof key, "%s:%s", prefix, col);
    dst[0] = '\0';
    hid_t d = H5Dopen2(f->fid, table, H5P_DEFAULT);
    int has = d >= 0 && H5Aexists(d, key) > 0;
    if (d >= 0) H5Dclose(d);
    if (has && pare_h5_attr_get(f, table, key, &v) == PARE_OK) snprintf(dst, n, "%s", v);
    free(v);
}

pare_status pare_h5_table_info(pare_h5_file *f, const char *table, pare_col **cols_out, int *ncols_out, int64_t *nrows)
{
    *cols_out = NULL;
    *ncols_out = 0;
    PARE_TRY(check_table_name(f, table));
    if (!pare_h5_table_exists(f, table)) return pare_fail(PARE_EINVAL, "%s: no table '%s'", f->path, table);
    hid_t d = H5Dopen2(f->fid, table, H5P_DEFAULT);
    char why[200];
    if (d < 0) return pare_fail(PARE_EFORMAT, "%s: cannot open table '%s' (damaged: %s)", f->path, table, h5_reason(why));
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    pare_status st = PARE_OK;
    pare_col *cols = NULL;
    int n = 0;
    hsize_t dims = 0;
    if (H5Tget_class(t) != H5T_COMPOUND || H5Sget_simple_extent_ndims(sp) != 1) {
        st = pare_fail(PARE_EFORMAT, "%s: '%s' is not a table (a 1-D compound dataset)", f->path, table);
        goto done;
    }
    H5Sget_simple_extent_dims(sp, &dims, NULL);
    /* Every row pare writes is stored (no compression, no unwritten chunks beyond the last one), so a
     * row count the file cannot hold is damage, not a table to allocate. */
    hsize_t fsize = 0;
    size_t rsize = H5Tget_size(t);
    if (H5Fget_filesize(f->fid, &fsize) >= 0 && rsize > 0 && dims > fsize / rsize + CHUNK_ROWS) {
        st = pare_fail(PARE_EFORMAT, "%s: table '%s' claims %llu rows, more than the file's %llu bytes can hold (damaged)",
                       f->path, table, (unsigned long long)dims, (unsigned long long)fsize);
        goto done;
    }
    n = H5Tget_nmembers(t);
    if (n < 1 || n > PARE_TABLE_MAX_COLS) {
        st = pare_fail(PARE_EFORMAT, "%s: table '%s' has %d columns (1 to %d supported)", f->path, table, n, PARE_TABLE_MAX_COLS);
        goto done;
    }
    cols = calloc((size_t)n, sizeof *cols);
    if (!cols) {
        st = pare_fail(PARE_ENOMEM, "out of memory");
        goto done;
    }
    for (int j = 0; j < n && st == PARE_OK; j++) {
        char *name = H5Tget_member_name(t, (unsigned)j);
        hid_t mt = H5Tget_member_type(t, (unsigned)j);
        H5T_class_t cls = H5Tget_class(mt);
        snprintf(cols[j].name, sizeof cols[j].name, "%s", name ? name : "?");
        if (cls == H5T_INTEGER) cols[j].type = PARE_COL_INT;
        else if (cls == H5T_FLOAT) cols[j].type = PARE_COL_FLOAT;
        else if (cls == H5T_STRING && H5Tis_variable_str(mt) > 0) cols[j].type = PARE_COL_STR;
        else if (cls == H5T_ENUM && H5Tget_size(mt) == 1) cols[j].type = PARE_COL_BOOL;
        else st = pare_fail(PARE_ENOTSUP, "%s: table '%s': column '%s' has a type pare does not read", f->path, table, cols[j].name);
        H5Tclose(mt);
        if (name) H5free_memory(name);
    }
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    if (st != PARE_OK) {
        free(cols);
        return st;
    }
    for (int j = 0; j < n; j++) {
        read_col_attr(f, table, "unit", cols[j].name, cols[j].unit, sizeof cols[j].unit);
        read_col_attr(f, table, "label", cols[j].name, cols[j].label, sizeof cols[j].label);
    }
    *cols_out = cols;
    *ncols_out = n;
    if (nrows) *nrows = (int64_t)dims;
    return PARE_OK;
done:
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return st;
}

/* Append a row to the image, not committed; on failure the image may hold part of it. */
static pare_status append_row(pare_h5_file *f, const char *table, const pare_cell *row)
{
    pare_col *cols;
    int ncols;
    int64_t nrows;
    PARE_TRY(pare_h5_table_info(f, table, &cols, &ncols, &nrows));
    pare_cell buf[PARE_TABLE_MAX_COLS];
    for (int j = 0; j < ncols; j++) {
        buf[j] = row[j];
        if (cols[j].type == PARE_COL_STR && !buf[j].s) buf[j].s = "";
        if (cols[j].type == PARE_COL_BOOL) buf[j].b = row[j].b != 0; /* only FALSE/TRUE are enum values */
    }
    hid_t mt = row_type(cols, ncols, 0);
    free(cols);
    hid_t d = H5Dopen2(f->fid, table, H5P_DEFAULT);
    hsize_t newsize = (hsize_t)nrows + 1, start = (hsize_t)nrows, count = 1;
    herr_t e = d < 0 || mt < 0 ? -1 : H5Dset_extent(d, &newsize);
    hid_t fs = -1, ms = -1;
    if (e >= 0) {
        fs = H5Dget_space(d);
        ms = H5Screate_simple(1, &count, NULL);
        e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
        if (e >= 0) e = H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, buf);
    }
    char why[200] = "";
    if (e < 0) h5_reason(why);
    if (fs >= 0) H5Sclose(fs);
    if (ms >= 0) H5Sclose(ms);
    if (d >= 0) H5Dclose(d);
    if (mt >= 0) H5Tclose(mt);
    if (e < 0) return pare_fail(PARE_EIO, "%s: cannot append a row to table '%s': %s", f->path, table, why);
    return PARE_OK;
}

pare_status pare_h5_append(pare_h5_file *f, const char *table, const pare_cell *row)
{
    if (!f->writable) return pare_fail(PARE_EINVAL, "%s: opened read-only; cannot append to '%s'", f->path, table);
    PARE_TRY(check_open(f, "append a row"));
    pare_status st = append_row(f, table, row);
    if (st != PARE_OK) {
        rollback(f);
        return st;
    }
    return commit(f, "recording a row");
}

void pare_table_free(pare_table *t)
{
    if (!t) return;
    if (t->cells)
        for (int j = 0; j < t->ncols; j++)
            if (t->cols[j].type == PARE_COL_STR)
                for (int64_t r = 0; r < t->nrows; r++) free(t->cells[r * t->ncols + j].s);
    free(t->cells);
    free(t->cols);
    memset(t, 0, sizeof *t);
}

pare_status pare_h5_table_read(pare_h5_file *f, const char *table, pare_table *out)
{
    memset(out, 0, sizeof *out);
    pare_col *cols;
    int ncols;
    int64_t nrows;
    PARE_TRY(pare_h5_table_info(f, table, &cols, &ncols, &nrows));
    pare_cell *cells = calloc((size_t)(nrows ? nrows : 1) * (size_t)ncols, sizeof *cells);
    if (!cells) {
        free(cols);
        return pare_fail(PARE_ENOMEM, "%s: out of memory reading table '%s' (%lld rows)", f->path, table, (long long)nrows);
    }
    snprintf(out->name, sizeof out->name, "%s", table);
    out->cols = cols;
    out->ncols = ncols;
    out->cells = cells;
    if (nrows == 0) return PARE_OK;
    hid_t mt = row_type(cols, ncols, 0);
    hid_t d = H5Dopen2(f->fid, table, H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    herr_t e = (mt < 0 || d < 0) ? -1 : H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, cells);
    int oom = 0;
    if (e >= 0) {
        /* Copy HDF5's strings into our own allocations, so pare_table_free owns every string. */
        for (int j = 0; j < ncols; j++) {
            if (cols[j].type != PARE_COL_STR) continue;
            for (int64_t r = 0; r < nrows; r++) {
                char *s = cells[r * ncols + j].s;
                char *copy = strdup(s ? s : "");
                oom |= !copy;
                cells[r * ncols + j].s = copy;
                if (s) H5free_memory(s);
            }
        }
    }
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (mt >= 0) H5Tclose(mt);
    if (e < 0) {
        /* No string was produced (or they are unknown): do not free the cells as strings. */
        free(out->cells);
        out->cells = NULL;
        pare_table_free(out);
        return pare_fail(PARE_EFORMAT, "%s: cannot read table '%s'", f->path, table);
    }
    out->nrows = nrows;
    if (oom) {
        pare_table_free(out);
        return pare_fail(PARE_ENOMEM, "%s: out of memory reading table '%s'", f->path, table);
    }
    return PARE_OK;
}

int pare_table_col(const pare_table *t, const char *name)
{
    for (int j = 0; j < t->ncols; j++)
        if (!strcmp(t->cols[j].name, name)) return j;
    return -1;
}
