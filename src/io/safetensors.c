/* safetensors.c — the safetensors reader and writer (header JSON through cJSON) and model checkpoints
 * on top of them. The format and what a checkpoint holds are described in safetensors.h and
 * docs/checkpoints.md. Files are read with pread (no memory map) and written to a temporary file
 * beside the target that is renamed into place. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/options.h"
#include "core/tensor.h"
#include "io/atomic.h"
#include "io/version.h"
#include "graph/format.h"
#include "graph/rewrite.h"
#include "kernels/cast.h"
#include "graph/serialize.h"
#include "model/transformer.h"

#define MAX_EXACT 9007199254740992.0 /* 2^53: integers above it do not survive a JSON double */
/* How many more parameters than the file holds a checkpoint's config may describe before loading
 * refuses it without building: the memory a damaged file can make the loader spend (64 MB). */
#define LOAD_SLACK_FLOATS ((uint64_t)16 << 20)

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [PARE_ST_BOOL] = {"BOOL", 1}, [PARE_ST_U8] = {"U8", 1},     [PARE_ST_I8] = {"I8", 1},
    [PARE_ST_F8_E5M2] = {"F8_E5M2", 1}, [PARE_ST_F8_E4M3] = {"F8_E4M3", 1}, [PARE_ST_I16] = {"I16", 2},
    [PARE_ST_U16] = {"U16", 2},   [PARE_ST_F16] = {"F16", 2},   [PARE_ST_BF16] = {"BF16", 2},
    [PARE_ST_I32] = {"I32", 4},   [PARE_ST_U32] = {"U32", 4},   [PARE_ST_F32] = {"F32", 4},
    [PARE_ST_F64] = {"F64", 8},   [PARE_ST_I64] = {"I64", 8},   [PARE_ST_U64] = {"U64", 8},
};
_Static_assert(sizeof dtypes / sizeof dtypes[0] == PARE_ST_DTYPE_COUNT, "safetensors dtypes out of date");

const char *pare_st_dtype_name(pare_st_dtype d) { return (unsigned)d < PARE_ST_DTYPE_COUNT ? dtypes[d].name : "?"; }
size_t pare_st_dtype_size(pare_st_dtype d) { return (unsigned)d < PARE_ST_DTYPE_COUNT ? dtypes[d].size : 0; }

static int dtype_find(const char *name)
{
    for (int i = 0; i < PARE_ST_DTYPE_COUNT; i++)
        if (!strcmp(dtypes[i].name, name)) return i;
    return -1;
}

static int host_is_big_endian(void)
{
    const uint32_t one = 1;
    return *(const unsigned char *)&one == 0;
}

static void swap32(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3], b[1] = b[2], b[2] = t1, b[3] = t0;
    }
}

/* "[3, 4]" */
static const char *shape_text(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

/* Byte offset of the first invalid UTF-8 sequence in s[0..n), or -1 when it is valid. */
static long utf8_invalid_at(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || i + len > n || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4)) return (long)i;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
        i += len;
    }
    return -1;
}

/* ---- reading ---- */

void pare_safetensors_close(pare_st_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    for (int64_t i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    for (int64_t i = 0; i < 2 * f->nmeta; i++) free(f->meta[i]);
    free(f->tensors);
    free(f->meta);
    free(f->path);
    free(f);
}

/* Read exactly n bytes at offset; PARE_EIO naming what when the file ends early or the read fails. */
static pare_status read_at(const pare_st_file *f, void *dst, size_t n, uint64_t off, const char *what)
{
    unsigned char *p = dst;
    while (n) {
        ssize_t r = pread(f->fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return pare_fail(PARE_EIO, "%s: cannot read %s: %s", f->path, what, strerror(errno));
        if (r == 0) return pare_fail(PARE_EIO, "%s: the file ended while reading %s (truncated?)", f->path, what);
        p += r, n -= (size_t)r, off += (uint64_t)r;
    }
    return PARE_OK;
}

/* A JSON number that is a non-negative integer a double holds exactly. */
static int json_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d > MAX_EXACT || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static pare_status parse_entry(pare_st_file *f, const cJSON *e, pare_st_tensor *t)
{
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return pare_fail(PARE_EFORMAT, "%s: the header entry of tensor '%s' is not an object {dtype, shape, data_offsets}",
                         f->path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return pare_fail(PARE_EFORMAT, "%s: tensor '%s' has no \"dtype\" string", f->path, nm);
    int d = dtype_find(dt->valuestring);
    if (d < 0) {
        char valid[256];
        size_t used = 0;
        for (int i = 0; i < PARE_ST_DTYPE_COUNT && used < sizeof valid; i++)
            used += (size_t)snprintf(valid + used, sizeof valid - used, i ? ", %s" : "%s", dtypes[i].name);
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s' has unknown dtype '%s' (valid: %s)", f->path, nm, dt->valuestring, valid);
    }
    t->dtype = (pare_st_dtype)d;
    if (!cJSON_IsArray(sh)) return pare_fail(PARE_EFORMAT, "%s: tensor '%s' has no \"shape\" array", f->path, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > PARE_ST_MAX_DIM)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s' has %d dimensions (at most %d are supported)", f->path, nm, nd,
                         PARE_ST_MAX_DIM);
    t->ndim = nd;
    uint64_t bytes = pare_st_dtype_size(t->dtype);
    int overflow = 0;
    for (int i = 0; i < nd; i++) {
        uint64_t v;
        if (!json_u64(cJSON_GetArrayItem(sh, i), &v))
            return pare_fail(PARE_EFORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", f->path, nm, i);
        t->shape[i] = (int64_t)v;
        overflow |= __builtin_mul_overflow(bytes, v, &bytes);
    }
    char shp[160];
    if (overflow)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s': shape %s is too large", f->path, nm, shape_text(shp, sizeof shp, nd, t->shape));
    uint64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_u64(cJSON_GetArrayItem(off, 0), &b) ||
        !json_u64(cJSON_GetArrayItem(off, 1), &en))
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end], two non-negative integers",
                         f->path, nm);
    t->begin = b, t->end = en;
    if (en < b)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", f->path, nm,
                         (unsigned long long)b, (unsigned long long)en);
    if (en > f->data_bytes)
        return pare_fail(PARE_EFORMAT,
                         "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data block (%llu bytes; truncated file?)",
                         f->path, nm, (unsigned long long)b, (unsigned long long)en, (unsigned long long)f->data_bytes);
    if (en - b != bytes)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but %s × shape %s needs %llu",
                         f->path, nm, (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b),
                         dtypes[t->dtype].name, shape_text(shp, sizeof shp, nd, t->shape), (unsigned long long)bytes);
    return PARE_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const pare_st_tensor *const *)a)->name, (*(const pare_st_tensor *const *)b)->name);
}

static int by_offset(const void *a, const void *b)
{
    const pare_st_tensor *x = *(const pare_st_tensor *const *)a, *y = *(const pare_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Names unique; tensors cover the data block exactly: no overlaps, no holes, nothing after. */
static pare_status check_layout(const pare_st_file *f)
{
    int64_t n = f->ntensors;
    const pare_st_tensor **ix = malloc(sizeof *ix * (size_t)(n ? n : 1));
    if (!ix) return pare_fail(PARE_ENOMEM, "%s: out of memory", f->path);
    pare_status st = PARE_OK;
    for (int64_t i = 0; i < n; i++) ix[i] = &f->tensors[i];
    qsort(ix, (size_t)n, sizeof *ix, by_name);
    for (int64_t i = 1; i < n && st == PARE_OK; i++)
        if (!strcmp(ix[i]->name, ix[i - 1]->name))
            st = pare_fail(PARE_EFORMAT, "%s: tensor '%s' appears twice in the header", f->path, ix[i]->name);
    qsort(ix, (size_t)n, sizeof *ix, by_offset);
    uint64_t at = 0;
    for (int64_t i = 0; i < n && st == PARE_OK; i++) {
        const pare_st_tensor *t = ix[i];
        if (t->begin < at)
            st = pare_fail(PARE_EFORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]", f->path,
                           t->name, (unsigned long long)t->begin, (unsigned long long)t->end, ix[i - 1]->name,
                           (unsigned long long)ix[i - 1]->begin, (unsigned long long)ix[i - 1]->end);
        else if (t->begin > at)
            st = pare_fail(PARE_EFORMAT, "%s: %llu unindexed bytes before tensor '%s' (the data block must be covered exactly)",
                           f->path, (unsigned long long)(t->begin - at), t->name);
        at = t->end;
    }
    if (st == PARE_OK && at != f->data_bytes)
        st = pare_fail(PARE_EFORMAT, "%s: %llu bytes after the last tensor's data (the data block must be covered exactly)",
                       f->path, (unsigned long long)(f->data_bytes - at));
    free(ix);
    return st;
}

static pare_status parse_header(pare_st_file *f, const char *text, size_t n)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        long at = end && end >= text && end <= text + n ? (long)(end - text) : -1;
        return pare_fail(PARE_EFORMAT, "%s: the header is not valid JSON (error near byte %ld of %zu): not a safetensors file?",
                         f->path, at, n);
    }
    pare_status st = PARE_OK;
    for (const char *p = end; p && p < text + n && st == PARE_OK; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0')
            st = pare_fail(PARE_EFORMAT, "%s: text after the header's JSON object (byte %ld)", f->path, (long)(p - text));
    if (st == PARE_OK && !cJSON_IsObject(root))
        st = pare_fail(PARE_EFORMAT, "%s: the header is JSON but not an object of tensors", f->path);
    int count = st == PARE_OK ? cJSON_GetArraySize(root) : 0;
    if (st == PARE_OK) {
        f->tensors = calloc((size_t)(count ? count : 1), sizeof *f->tensors);
        if (!f->tensors) st = pare_fail(PARE_ENOMEM, "%s: out of memory for %d tensor entries", f->path, count);
    }
    for (const cJSON *e = st == PARE_OK ? root->child : NULL; e && st == PARE_OK; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (f->meta) {
                st = pare_fail(PARE_EFORMAT, "%s: __metadata__ appears twice in the header", f->path);
                break;
            }
            if (!cJSON_IsObject(e)) {
                st = pare_fail(PARE_EFORMAT, "%s: __metadata__ is not an object of strings", f->path);
                break;
            }
            int nm = cJSON_GetArraySize(e);
            f->meta = calloc((size_t)(2 * nm + 1), sizeof *f->meta);
            if (!f->meta) st = pare_fail(PARE_ENOMEM, "%s: out of memory", f->path);
            for (const cJSON *kv = e->child; kv && st == PARE_OK; kv = kv->next) {
                if (!cJSON_IsString(kv)) {
                    st = pare_fail(PARE_EFORMAT, "%s: __metadata__ value of '%s' is not a string", f->path, kv->string);
                    break;
                }
                f->meta[2 * f->nmeta] = strdup(kv->string);
                f->meta[2 * f->nmeta + 1] = strdup(kv->valuestring);
                f->nmeta++;
                if (!f->meta[2 * f->nmeta - 2] || !f->meta[2 * f->nmeta - 1]) st = pare_fail(PARE_ENOMEM, "%s: out of memory", f->path);
            }
            continue;
        }
        pare_st_tensor *t = &f->tensors[f->ntensors++];
        t->name = strdup(e->string);
        st = t->name ? parse_entry(f, e, t) : pare_fail(PARE_ENOMEM, "%s: out of memory", f->path);
    }
    cJSON_Delete(root);
    return st;
}

pare_status pare_safetensors_open(pare_st_file **out, const char *path)
{
    *out = NULL;
    pare_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    pare_status st = PARE_OK;
    struct stat sb;
    char *hdr = NULL;
    if (f->fd < 0) {
        st = pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    if (fstat(f->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = pare_fail(PARE_EIO, "%s: not a regular file", path);
        goto done;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        st = pare_fail(PARE_EFORMAT, "%s: the file is %llu bytes, too short for the 8-byte header length (truncated, or not a safetensors file)",
                       path, (unsigned long long)size);
        goto done;
    }
    unsigned char len8[8];
    if ((st = read_at(f, len8, 8, 0, "the header length")) != PARE_OK) goto done;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    if (n > size - 8) {
        st = pare_fail(PARE_EFORMAT, "%s: header length %llu is larger than the rest of the file (%llu bytes): truncated, or not a safetensors file",
                       path, (unsigned long long)n, (unsigned long long)(size - 8));
        goto done;
    }
    if (n < 2 || n > PARE_ST_MAX_HEADER) {
        st = pare_fail(PARE_EFORMAT, "%s: header length %llu is outside [2, %u]: not a safetensors file", path,
                       (unsigned long long)n, PARE_ST_MAX_HEADER);
        goto done;
    }
    f->data_start = 8 + n;
    f->data_bytes = size - 8 - n;
    hdr = malloc((size_t)n + 1);
    if (!hdr) {
        st = pare_fail(PARE_ENOMEM, "%s: out of memory for a %llu-byte header", path, (unsigned long long)n);
        goto done;
    }
    if ((st = read_at(f, hdr, (size_t)n, 8, "the header")) != PARE_OK) goto done;
    hdr[n] = '\0';
    long bad = utf8_invalid_at((const unsigned char *)hdr, (size_t)n);
    if (hdr[0] != '{') st = pare_fail(PARE_EFORMAT, "%s: the header does not start with '{': not a safetensors file", path);
    else if (bad >= 0) st = pare_fail(PARE_EFORMAT, "%s: the header is not valid UTF-8 (byte %ld)", path, bad);
    else if ((st = parse_header(f, hdr, (size_t)n)) == PARE_OK) st = check_layout(f);
done:
    free(hdr);
    if (st != PARE_OK) {
        pare_safetensors_close(f);
        return st;
    }
    *out = f;
    return PARE_OK;
}

const pare_st_tensor *pare_safetensors_find(const pare_st_file *f, const char *name)
{
    for (int64_t i = 0; i < f->ntensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *pare_safetensors_meta(const pare_st_file *f, const char *key)
{
    for (int64_t i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

pare_status pare_safetensors_read_f32(const pare_st_file *f, const pare_st_tensor *t, float *dst, size_t n)
{
    if (t->dtype != PARE_ST_F32)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s' is %s, not F32", f->path, t->name, dtypes[t->dtype].name);
    if ((t->end - t->begin) / 4 != n)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s' holds %llu elements, not %zu", f->path, t->name,
                         (unsigned long long)((t->end - t->begin) / 4), n);
    char what[PARE_NAME_MAX + 32];
    snprintf(what, sizeof what, "tensor '%.*s'", PARE_NAME_MAX, t->name);
    PARE_TRY(read_at(f, dst, n * sizeof(float), f->data_start + t->begin, what));
    if (host_is_big_endian()) swap32(dst, n);
    return PARE_OK;
}

pare_status pare_safetensors_read_raw(const pare_st_file *f, const pare_st_tensor *t, void *dst, size_t dst_bytes)
{
    if (t->end - t->begin != dst_bytes)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s' spans %llu bytes, not %zu", f->path, t->name,
                         (unsigned long long)(t->end - t->begin), dst_bytes);
    char what[PARE_NAME_MAX + 32];
    snprintf(what, sizeof what, "tensor '%.*s'", PARE_NAME_MAX, t->name);
    PARE_TRY(read_at(f, dst, dst_bytes, f->data_start + t->begin, what));
    size_t size = dtypes[t->dtype].size;
    if (host_is_big_endian() && size > 1) {
        unsigned char *b = dst;
        for (size_t i = 0; i < dst_bytes; i += size)
            for (size_t j = 0; j < size / 2; j++) {
                unsigned char c = b[i + j];
                b[i + j] = b[i + size - 1 - j], b[i + size - 1 - j] = c;
            }
    }
    return PARE_OK;
}

/* Half-precision tensors (Hugging Face checkpoints are often F16 or BF16) widen exactly to f32. */
pare_status pare_safetensors_read_as_f32(const pare_st_file *f, const pare_st_tensor *t, float *dst, size_t n)
{
    if (t->dtype == PARE_ST_F32) return pare_safetensors_read_f32(f, t, dst, n);
    if (t->dtype != PARE_ST_F16 && t->dtype != PARE_ST_BF16)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s' is %s; pare reads F32, F16 and BF16 weights", f->path, t->name,
                         dtypes[t->dtype].name);
    if ((t->end - t->begin) / 2 != n)
        return pare_fail(PARE_EFORMAT, "%s: tensor '%s' holds %llu elements, not %zu", f->path, t->name,
                         (unsigned long long)((t->end - t->begin) / 2), n);
    uint16_t *half = malloc(n ? n * 2 : 1);
    if (!half) return pare_fail(PARE_ENOMEM, "%s: out of memory reading tensor '%s'", f->path, t->name);
    char what[PARE_NAME_MAX + 32];
    snprintf(what, sizeof what, "tensor '%.*s'", PARE_NAME_MAX, t->name);
    pare_status st = read_at(f, half, n * 2, f->data_start + t->begin, what);
    if (st == PARE_OK && host_is_big_endian())
        for (size_t i = 0; i < n; i++) half[i] = (uint16_t)(half[i] >> 8 | half[i] << 8);
    if (st == PARE_OK) pare_cast_forward(dst, PARE_F32, half, t->dtype == PARE_ST_F16 ? PARE_F16 : PARE_BF16, (int64_t)n);
    free(half);
    return st;
}

/* ---- writing ---- */

static int write_f32(pare_atomic *a, const float *x, size_t n)
{
    if (!host_is_big_endian()) return pare_atomic_write(a, x, n * sizeof *x);
    float tmp[1024];
    for (size_t i = 0; i < n; i += 1024) {
        size_t k = n - i < 1024 ? n - i : 1024;
        memcpy(tmp, x + i, k * sizeof *x);
        swap32(tmp, k);
        int e = pare_atomic_write(a, tmp, k * sizeof *x);
        if (e) return e;
    }
    return 0;
}

/* The directory of path must exist; writes its name into dir. */
static pare_status check_dir(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, n, ".");
    else if (slash == path) snprintf(dir, n, "/");
    else snprintf(dir, n, "%.*s", (int)(slash - path), path);
    if (!*path || (slash && slash[1] == '\0'))
        return pare_fail(PARE_EINVAL, "cannot save '%s': the path names a directory, not a file", path);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return pare_fail(PARE_EIO, "cannot save '%s': directory '%s' %s", path, dir,
                         errno == ENOENT ? "does not exist" : strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return pare_fail(PARE_EIO, "cannot save '%s': '%s' is not a directory", path, dir);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return pare_fail(PARE_EINVAL, "cannot save '%s': it is a directory", path);
    return PARE_OK;
}

static cJSON *raw_u64(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf);
}

/* The header text, padded with spaces so the data block starts on an 8-byte boundary. */
static pare_status build_header(char **out, size_t *len, const char *path, const pare_st_out_any *t, int64_t n,
                                const char *const *meta, int64_t nmeta)
{
    *out = NULL;
    pare_status st = PARE_OK;
    cJSON *root = cJSON_CreateObject();
    if (!root) return pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    if (nmeta > 0) {
        cJSON *md = cJSON_AddObjectToObject(root, "__metadata__");
        for (int64_t i = 0; md && i < nmeta; i++)
            if (!cJSON_AddStringToObject(md, meta[2 * i], meta[2 * i + 1])) md = NULL;
        if (!md) st = pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    }
    uint64_t at = 0;
    for (int64_t i = 0; i < n && st == PARE_OK; i++) {
        if (!t[i].name[0] || !strcmp(t[i].name, "__metadata__") || cJSON_GetObjectItemCaseSensitive(root, t[i].name)) {
            st = pare_fail(PARE_EINVAL, "%s: tensor name '%s' is empty, reserved or repeated", path, t[i].name);
            break;
        }
        if (t[i].ndim < 0 || t[i].ndim > PARE_ST_MAX_DIM) {
            st = pare_fail(PARE_EINVAL, "%s: tensor '%s' has %d dimensions", path, t[i].name, t[i].ndim);
            break;
        }
        if ((unsigned)t[i].dtype >= PARE_ST_DTYPE_COUNT) {
            st = pare_fail(PARE_EINVAL, "%s: tensor '%s' has dtype %d, not a safetensors dtype", path, t[i].name, (int)t[i].dtype);
            break;
        }
        uint64_t bytes = dtypes[t[i].dtype].size;
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name), *shape = cJSON_CreateArray(), *off = cJSON_CreateArray();
        if (!e || !shape || !off) st = pare_fail(PARE_ENOMEM, "%s: out of memory", path);
        for (int d = 0; d < t[i].ndim && st == PARE_OK; d++) {
            if (t[i].shape[d] < 0) st = pare_fail(PARE_EINVAL, "%s: tensor '%s' has a negative dimension", path, t[i].name);
            bytes *= (uint64_t)t[i].shape[d];
            cJSON_AddItemToArray(shape, raw_u64((uint64_t)t[i].shape[d]));
        }
        cJSON_AddItemToArray(off, raw_u64(at));
        cJSON_AddItemToArray(off, raw_u64(at + bytes));
        at += bytes;
        if (e) {
            cJSON_AddStringToObject(e, "dtype", dtypes[t[i].dtype].name);
            cJSON_AddItemToObject(e, "shape", shape);
            cJSON_AddItemToObject(e, "data_offsets", off);
        } else {
            cJSON_Delete(shape);
            cJSON_Delete(off);
        }
    }
    char *text = st == PARE_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (st != PARE_OK) return st;
    if (!text) return pare_fail(PARE_ENOMEM, "%s: out of memory printing the header", path);
    size_t l = strlen(text), padded = (l + 7) / 8 * 8;
    char *buf = realloc(text, padded + 1);
    if (!buf) {
        free(text);
        return pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    }
    memset(buf + l, ' ', padded - l);
    buf[padded] = '\0';
    *out = buf;
    *len = padded;
    return PARE_OK;
}

/* n elements of `size` bytes, little-endian in the file whatever the host */
static int write_le(pare_atomic *a, const void *x, size_t n, size_t size)
{
    if (size == 4) return write_f32(a, x, n);
    if (size == 1 || !host_is_big_endian()) return pare_atomic_write(a, x, n * size);
    unsigned char tmp[4096];
    const unsigned char *b = x;
    size_t per = sizeof tmp / size;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        for (size_t e = 0; e < k; e++)
            for (size_t j = 0; j < size; j++) tmp[e * size + j] = b[(i + e) * size + size - 1 - j];
        int err = pare_atomic_write(a, tmp, k * size);
        if (err) return err;
    }
    return 0;
}

pare_status pare_safetensors_write(const char *path, const pare_st_out_any *t, int64_t n, const char *const *meta,
                                   int64_t nmeta)
{
    char dir[4096];
    PARE_TRY(check_dir(path, dir, sizeof dir));
    char *hdr = NULL;
    size_t hlen = 0;
    PARE_TRY(build_header(&hdr, &hlen, path, t, n, meta, nmeta));
    pare_atomic a; /* a temporary beside the target, fsync'd and renamed over it (io/atomic.h) */
    pare_status st = pare_atomic_begin(&a, path, "saving a checkpoint");
    if (st != PARE_OK) {
        free(hdr);
        return st;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int err = pare_atomic_write(&a, len8, 8);
    if (!err) err = pare_atomic_write(&a, hdr, hlen);
    free(hdr);
    for (int64_t i = 0; i < n && !err; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        err = write_le(&a, t[i].data, numel, dtypes[t[i].dtype].size);
    }
    return pare_atomic_commit(&a); /* reports a write error kept above; removes the temporary on failure */
}

pare_status pare_safetensors_write_f32(const char *path, const pare_st_out *t, int64_t n, const char *const *meta,
                                       int64_t nmeta)
{
    pare_st_out_any *u = malloc(sizeof *u * (size_t)(n > 0 ? n : 1));
    if (!u) return pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    for (int64_t i = 0; i < n; i++) u[i] = (pare_st_out_any){t[i].name, PARE_ST_F32, t[i].ndim, t[i].shape, t[i].data};
    pare_status st = pare_safetensors_write(path, u, n, meta, nmeta);
    free(u);
    return st;
}

/* ---- checkpoints ---- */

/* PARE_ENUMERIC naming the tensor and the element if p's f32 data holds NaN or Inf. */
static pare_status check_param_finite(const pare_param *p, const char *path, const char *doing)
{
    int64_t bad = pare_first_nonfinite(p->blob->data, (int64_t)p->blob->n);
    if (bad < 0) return PARE_OK;
    char at[64];
    if (p->ndim == 2)
        snprintf(at, sizeof at, "(%lld, %lld)", (long long)(bad / p->shape[1]), (long long)(bad % p->shape[1]));
    else snprintf(at, sizeof at, "[%lld]", (long long)bad);
    return pare_fail(PARE_ENUMERIC, "%s '%s': tensor '%s' holds %s at %s: weights must be finite", doing, path, p->name,
                     isnan(p->blob->data[bad]) ? "NaN" : "Inf", at);
}

/* Sparse Linear weights (PARE_FMT_SPARSE) as {"<param>": "<spec>"} (NULL when there are none): the layout
 * is a lossless function of the f32 master and its spec, so loading rebuilds the same bytes. */
static pare_status sparse_specs_json(const pare_model *m, char **out)
{
    *out = NULL;
    cJSON *o = NULL;
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (p->format != PARE_FMT_SPARSE) continue;
        char spec[32];
        if (!o && !(o = cJSON_CreateObject())) return pare_fail(PARE_ENOMEM, "out of memory");
        if (!cJSON_AddStringToObject(o, p->name, pare_sparse_spec_str(&p->q->sp.spec, spec, sizeof spec))) {
            cJSON_Delete(o);
            return pare_fail(PARE_ENOMEM, "out of memory");
        }
    }
    if (!o) return PARE_OK;
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? PARE_OK : pare_fail(PARE_ENOMEM, "out of memory");
}

/* Restore the sparse layouts the file's "sparse" metadata lists (see sparse_specs_json). */
static pare_status sparse_specs_load(pare_model *m, const pare_st_file *f)
{
    const char *text = pare_safetensors_meta(f, "sparse");
    if (!text) return PARE_OK;
    cJSON *o = cJSON_Parse(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return pare_fail(PARE_EFORMAT, "%s: __metadata__ \"sparse\" is not a JSON object", f->path);
    }
    pare_status st = PARE_OK;
    for (const cJSON *e = o->child; e && st == PARE_OK; e = e->next) {
        int i = pare_model_find_param(m, e->string);
        pare_sparse_spec spec;
        if (i < 0 || !cJSON_IsString(e)) {
            st = pare_fail(PARE_EFORMAT, "%s: __metadata__ \"sparse\" names '%s', not a Linear weight of the model (or "
                                         "its value is not a layout)", f->path, e->string);
        } else if ((st = pare_sparse_spec_parse(&spec, e->valuestring)) != PARE_OK ||
                   (st = pare_param_set_sparse(&m->params[i], &spec, "checkpoint")) != PARE_OK) {
            st = pare_fail_ctx(PARE_EFORMAT, "%s: sparse layout of '%s'", f->path, e->string);
        }
    }
    cJSON_Delete(o);
    return st;
}

/* 16-bit Linear weights (PARE_FMT_HALF) as {"<param>": "bf16" | "f16"} (NULL when there are none): the 16-bit
 * values are the master rounded (round to nearest even), so loading rebuilds the same bits from the master. */
static pare_status half_dtypes_json(const pare_model *m, char **out)
{
    *out = NULL;
    cJSON *o = NULL;
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (p->format != PARE_FMT_HALF) continue;
        if (!o && !(o = cJSON_CreateObject())) return pare_fail(PARE_ENOMEM, "out of memory");
        if (!cJSON_AddStringToObject(o, p->name, pare_dtype_name(p->q->hw.dtype))) {
            cJSON_Delete(o);
            return pare_fail(PARE_ENOMEM, "out of memory");
        }
    }
    if (!o) return PARE_OK;
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? PARE_OK : pare_fail(PARE_ENOMEM, "out of memory");
}

/* Is parameter i read by a Linear? (else it is an embedding table: stored without oneDNN's packed copy) */
static int read_by_linear(const pare_model *m, int i)
{
    for (int64_t j = 0; j < m->nnodes; j++)
        if (m->nodes[j].op == PARE_OP_LINEAR && m->nodes[j].nparam > 0 && m->nodes[j].param[0] == i) return 1;
    return 0;
}

/* Restore the 16-bit weights (and tables) the file's "half" metadata lists (see half_dtypes_json). */
static pare_status half_dtypes_load(pare_model *m, const pare_st_file *f)
{
    const char *text = pare_safetensors_meta(f, "half");
    if (!text) return PARE_OK;
    cJSON *o = cJSON_Parse(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return pare_fail(PARE_EFORMAT, "%s: __metadata__ \"half\" is not a JSON object", f->path);
    }
    pare_status st = PARE_OK;
    for (const cJSON *e = o->child; e && st == PARE_OK; e = e->next) {
        int i = pare_model_find_param(m, e->string);
        pare_dtype dt;
        if (i < 0 || !cJSON_IsString(e) || m->params[i].ndim != 2 || m->params[i].format != PARE_FMT_F32) {
            st = pare_fail(PARE_EFORMAT, "%s: __metadata__ \"half\" names '%s', not an f32 Linear weight or table of "
                                         "the model (or its value is not a dtype)", f->path, e->string);
        } else if (pare_dtype_parse(e->valuestring, &dt) != PARE_OK || (dt != PARE_BF16 && dt != PARE_F16)) {
            st = pare_fail(PARE_EFORMAT, "%s: __metadata__ \"half\": '%s' is %s, not bf16 or f16", f->path, e->string,
                           e->valuestring);
        } else if ((st = (read_by_linear(m, i) ? pare_param_set_half : pare_param_set_half_table)(&m->params[i], dt,
                                                                                                  "checkpoint")) != PARE_OK) {
            st = pare_fail_ctx(st == PARE_ENOMEM ? st : PARE_EFORMAT, "%s: %s weight '%s'", f->path, e->valuestring, e->string);
        }
    }
    cJSON_Delete(o);
    return st;
}

/* ---- quantized weights in their stored form (graph/fmt_io.c: each format's save and load hooks) ---- */

static const pare_st_dtype io_st[] = {[PARE_FIO_I8] = PARE_ST_I8, [PARE_FIO_U8] = PARE_ST_U8, [PARE_FIO_F16] = PARE_ST_F16,
                                      [PARE_FIO_F32] = PARE_ST_F32};
_Static_assert(sizeof io_st / sizeof io_st[0] == PARE_FIO_COUNT, "checkpoint dtypes out of date with pare_fmt_io_dtype");

/* The stored forms of m's quantized weights into io[i] (io[i].param set for those saved so), and their __metadata__
 * "quant" object {"<param>": {"format": "<traits name>", "<attr>": value, ...}} in *json (NULL when there are none). */
static pare_status quant_forms(const pare_model *m, const char *path, pare_fmt_io *io, char **json)
{
    *json = NULL;
    cJSON *o = NULL;
    pare_status st = PARE_OK;
    for (int64_t i = 0; i < m->nparams && st == PARE_OK; i++) {
        const pare_param *p = &m->params[i];
        if (!p->q || p->format == PARE_FMT_SPARSE || p->format == PARE_FMT_HALF) continue; /* "sparse", "half" */
        const pare_format_traits *t = pare_format_get(p->format);
        if (!t || !t->save) {
            st = pare_fail(PARE_ENOTSUP, "cannot save '%s': weight %s is stored as %s, which has no checkpoint form yet; "
                           "save with {f32 = true} to write f32 masters only (the model loads as f32)", path, p->name,
                           pare_format_label(p));
            break;
        }
        io[i].param = p->name;
        if ((st = t->save(p, &io[i])) != PARE_OK) {
            st = pare_fail_ctx(st, "cannot save '%s'", path);
            break;
        }
        cJSON *e = NULL;
        if ((!o && !(o = cJSON_CreateObject())) || !(e = cJSON_AddObjectToObject(o, p->name)) ||
            !cJSON_AddStringToObject(e, "format", t->name))
            st = pare_fail(PARE_ENOMEM, "out of memory");
        for (int k = 0; k < io[i].na && st == PARE_OK; k++) {
            const pare_fmt_io_attr *a = &io[i].a[k];
            if (!(a->is_str ? cJSON_AddStringToObject(e, a->key, a->str) : cJSON_AddNumberToObject(e, a->key, a->num)))
                st = pare_fail(PARE_ENOMEM, "out of memory");
        }
    }
    if (st == PARE_OK && o && !(*json = cJSON_PrintUnformatted(o))) st = pare_fail(PARE_ENOMEM, "out of memory");
    cJSON_Delete(o);
    return st;
}

pare_status pare_model_save_opts(const pare_model *m, const char *path, const pare_save_opts *o)
{
    const pare_save_opts def = {0};
    if (!o) o = &def;
    if (m->tokens < 0 || m->logits < 0 || m->loss < 0)
        return pare_fail(PARE_EINVAL, "cannot save '%s': the model has no graph to save (no tokens input, logits or loss)",
                         path);
    if (pare_model_check(m) != PARE_OK) return pare_fail_ctx(PARE_EINVAL, "cannot save '%s'", path);
    for (int64_t i = 0; i < m->nparams; i++) /* a file pare_model_load would refuse is not written */
        PARE_TRY(check_param_finite(&m->params[i], path, "cannot save"));
    char *graph = NULL, *sparse = NULL, *half = NULL, *quant = NULL;
    PARE_TRY(pare_graph_to_json(m, &graph));
    size_t np = (size_t)(m->nparams ? m->nparams : 1);
    pare_st_out_any *t = malloc(sizeof *t * np * (1 + PARE_FMT_IO_MAX_T));
    char (*names)[PARE_NAME_MAX + 24] = malloc(sizeof *names * np * PARE_FMT_IO_MAX_T);
    pare_fmt_io *io = calloc(np, sizeof *io);
    pare_status st = t && names && io ? PARE_OK : pare_fail(PARE_ENOMEM, "cannot save '%s': out of memory", path);
    if (st == PARE_OK && !o->f32) st = quant_forms(m, path, io, &quant);
    int64_t nt = 0, nn = 0;
    for (int64_t i = 0; st == PARE_OK && i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (!io[i].param || o->masters) /* the f32 master, or only the stored form */
            t[nt++] = (pare_st_out_any){p->name, PARE_ST_F32, p->ndim, p->shape, p->blob->data};
        for (int k = 0; io[i].param && k < io[i].nt; k++) {
            const pare_fmt_io_tensor *q = &io[i].t[k];
            snprintf(names[nn], sizeof names[nn], "%s.%s", p->name, q->suffix);
            t[nt++] = (pare_st_out_any){names[nn++], io_st[q->dtype], q->ndim, q->shape, q->data};
        }
    }
    if (st == PARE_OK) st = sparse_specs_json(m, &sparse);
    if (st == PARE_OK) st = half_dtypes_json(m, &half);
    const char *meta[10 * 2] = {"format", "pare", "pare_version", pare_version(), "pare_commit", pare_git_commit(),
                                "config", m->config, "applied", m->applied, "graph", graph};
    int64_t nmeta = 6;
    if (sparse) meta[2 * nmeta] = "sparse", meta[2 * nmeta + 1] = sparse, nmeta++;
    if (half) meta[2 * nmeta] = "half", meta[2 * nmeta + 1] = half, nmeta++;
    if (quant) meta[2 * nmeta] = "quant", meta[2 * nmeta + 1] = quant, nmeta++;
    if (st == PARE_OK) st = pare_safetensors_write(path, t, nt, meta, nmeta);
    free(sparse), free(half), free(quant);
    free(t), free(names), free(io);
    free(graph);
    return st;
}

pare_status pare_model_save(const pare_model *m, const char *path) { return pare_model_save_opts(m, path, NULL); }

/* The file's __metadata__ "quant" (see quant_forms) into io[i] for each weight it lists, with the tensors
 * "<param>.<suffix>" read into memory (free with quant_io_free) and claimed[j] set for each file tensor j used. */
static pare_status quant_parse(const pare_model *m, const pare_st_file *f, pare_fmt_io *io, int *fmt, char *claimed)
{
    const char *text = pare_safetensors_meta(f, "quant");
    if (!text) return PARE_OK;
    cJSON *o = cJSON_Parse(text);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return pare_fail(PARE_EFORMAT, "%s: __metadata__ \"quant\" is not a JSON object", f->path);
    }
    pare_status st = PARE_OK;
    for (const cJSON *e = o->child; e && st == PARE_OK; e = e->next) {
        int i = pare_model_find_param(m, e->string);
        const cJSON *fm = cJSON_GetObjectItemCaseSensitive(e, "format");
        char valid[128];
        if (i < 0 || m->params[i].ndim != 2 || io[i].param) {
            st = pare_fail(PARE_EFORMAT, "%s: __metadata__ \"quant\" names '%s', not a 2-D weight of the model (or twice)",
                           f->path, e->string);
            break;
        }
        if (!cJSON_IsObject(e) || !cJSON_IsString(fm)) {
            st = pare_fail(PARE_EFORMAT, "%s: __metadata__ \"quant\" entry of weight '%s' is not an object with a \"format\" "
                           "string", f->path, e->string);
            break;
        }
        if ((fmt[i] = pare_format_find_loadable(fm->valuestring, valid, sizeof valid)) < 0) {
            st = pare_fail(PARE_EFORMAT, "%s: weight '%s' is stored as '%s', a format this pare cannot load (valid: %s)",
                           f->path, e->string, fm->valuestring, valid);
            break;
        }
        io[i].param = m->params[i].name;
        for (const cJSON *a = e->child; a && st == PARE_OK; a = a->next) {
            if (a == fm) continue;
            if (io[i].na == PARE_FMT_IO_MAX_A || strlen(a->string) >= sizeof io[i].a[0].key ||
                !(cJSON_IsNumber(a) || (cJSON_IsString(a) && strlen(a->valuestring) < sizeof io[i].a[0].str))) {
                st = pare_fail(PARE_EFORMAT, "%s: weight '%s': quant attribute '%s' is not a short key with a number or a short "
                               "string (at most %d)", f->path, e->string, a->string, PARE_FMT_IO_MAX_A);
                break;
            }
            pare_fmt_io_attr *at = &io[i].a[io[i].na++];
            snprintf(at->key, sizeof at->key, "%s", a->string);
            at->is_str = cJSON_IsString(a);
            if (at->is_str) snprintf(at->str, sizeof at->str, "%s", a->valuestring);
            else at->num = a->valuedouble;
        }
        size_t plen = strlen(e->string);
        for (int64_t j = 0; j < f->ntensors && st == PARE_OK; j++) {
            const pare_st_tensor *t = &f->tensors[j];
            if (strncmp(t->name, e->string, plen) || t->name[plen] != '.' || pare_model_find_param(m, t->name) >= 0) continue;
            int d = -1;
            for (int k = 0; k < PARE_FIO_COUNT; k++)
                if (io_st[k] == t->dtype) d = k;
            if (io[i].nt == PARE_FMT_IO_MAX_T || d < 0 || t->ndim < 1 || t->ndim > 2 || strlen(t->name + plen + 1) >= 16) {
                st = pare_fail(PARE_EFORMAT, "%s: tensor '%s' of weight '%s's stored form: at most %d tensors, of dtype I8, U8, "
                               "F16 or F32, 1-D or 2-D, with a short suffix", f->path, t->name, e->string, PARE_FMT_IO_MAX_T);
                break;
            }
            pare_fmt_io_tensor *q = &io[i].t[io[i].nt];
            size_t bytes = (size_t)(t->end - t->begin);
            void *buf = malloc(bytes ? bytes : 1);
            if (!buf) {
                st = pare_fail(PARE_ENOMEM, "%s: out of memory reading tensor '%s'", f->path, t->name);
                break;
            }
            *q = (pare_fmt_io_tensor){.dtype = (pare_fmt_io_dtype)d, .ndim = t->ndim, .shape = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0},
                                      .data = buf};
            snprintf(q->suffix, sizeof q->suffix, "%s", t->name + plen + 1);
            io[i].nt++;
            claimed[j] = 1;
            st = pare_safetensors_read_raw(f, t, buf, bytes);
        }
    }
    cJSON_Delete(o);
    return st;
}

static void quant_io_free(pare_fmt_io *io, int64_t n)
{
    for (int64_t i = 0; io && i < n; i++)
        for (int k = 0; k < io[i].nt; k++) free((void *)io[i].t[k].data);
}

/* Rebuild each listed weight's stored form through its format's load hook, from the master read from the file or,
 * when the file has none, writing the dequantized weights into it; every tensor handed over must be used. */
static pare_status quant_load(pare_model *m, const pare_st_file *f, pare_fmt_io *io, const int *fmt)
{
    for (int64_t i = 0; i < m->nparams; i++) {
        if (!io[i].param) continue;
        const pare_format_traits *t = pare_format_get((pare_format)fmt[i]);
        int has_master = pare_safetensors_find(f, m->params[i].name) != NULL;
        pare_status st = t->load(&m->params[i], &io[i], !has_master);
        if (st != PARE_OK) return pare_fail_ctx(st == PARE_ENOMEM ? st : PARE_EFORMAT, "%s", f->path);
        for (int k = 0; k < io[i].nt; k++)
            if (!io[i].t[k].taken)
                return pare_fail(PARE_EFORMAT, "%s: tensor '%s.%s' is not part of the %s form of weight '%s'", f->path, io[i].param,
                                 io[i].t[k].suffix, t->name, io[i].param);
    }
    return PARE_OK;
}

/* The config JSON of a checkpoint as option key/values for pare_opts_resolve. Strings point into root. */
static pare_status config_kv(const char *path, const cJSON *root, pare_kv *kv, int *n)
{
    *n = 0;
    if (!cJSON_IsObject(root)) return pare_fail(PARE_EFORMAT, "%s: __metadata__ \"config\" is not a JSON object", path);
    for (const cJSON *e = root->child; e; e = e->next) {
        if (*n >= PARE_MAX_OPTS) return pare_fail(PARE_EFORMAT, "%s: the config has more than %d keys", path, PARE_MAX_OPTS);
        pare_kv *k = &kv[(*n)++];
        k->key = e->string;
        if (cJSON_IsNumber(e)) k->kind = PARE_KV_NUM, k->num = e->valuedouble;
        else if (cJSON_IsBool(e)) k->kind = PARE_KV_BOOL, k->num = cJSON_IsTrue(e);
        else if (cJSON_IsString(e)) k->kind = PARE_KV_STR, k->str = e->valuestring;
        else return pare_fail(PARE_EFORMAT, "%s: config key '%s' is not a number, string or boolean", path, e->string);
    }
    return PARE_OK;
}

/* Every parameter of m has a tensor of the same shape in f (a weight listed in "quant", io[i].param set, may have none:
 * its stored form is there), and f has no other tensor than those and the stored forms' (claimed). */
static pare_status match_tensors(const pare_st_file *f, const pare_model *m, const char *source, const pare_fmt_io *io,
                                 const char *claimed)
{
    char a[160], b[160];
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        const pare_st_tensor *t = pare_safetensors_find(f, p->name);
        if (!t && io[i].param) continue;
        if (!t) return pare_fail(PARE_EFORMAT, "%s: tensor '%s' is missing (the %s its %s describes has it)", f->path, p->name, m->kind,
                                    source);
        if (t->dtype != PARE_ST_F32)
            return pare_fail(PARE_EFORMAT, "%s: tensor '%s' is %s; pare checkpoints hold F32", f->path, p->name,
                             pare_st_dtype_name(t->dtype));
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same)
            return pare_fail(PARE_EFORMAT, "%s: tensor '%s' has shape %s but the %s its %s describes needs %s", f->path, p->name,
                             shape_text(a, sizeof a, t->ndim, t->shape), m->kind, source,
                             shape_text(b, sizeof b, p->ndim, p->shape));
    }
    for (int64_t i = 0; i < f->ntensors; i++)
        if (!claimed[i] && pare_model_find_param(m, f->tensors[i].name) < 0)
            return pare_fail(PARE_EFORMAT, "%s: tensor '%s' is not a parameter of the %s its %s describes%s", f->path,
                             f->tensors[i].name, m->kind, source,
                             pare_safetensors_meta(f, "quant") ? " (nor part of a stored form __metadata__ \"quant\" lists)" : "");
    return PARE_OK;
}

/* Parse "quant" and match the tensors (see quant_parse, match_tensors); io, fmt, claimed allocated here. */
static pare_status match_all(const pare_st_file *f, const pare_model *m, const char *source, pare_fmt_io **io, int **fmt,
                             char **claimed)
{
    *io = calloc((size_t)(m->nparams ? m->nparams : 1), sizeof **io);
    *fmt = calloc((size_t)(m->nparams ? m->nparams : 1), sizeof **fmt);
    *claimed = calloc((size_t)(f->ntensors ? f->ntensors : 1), 1);
    if (!*io || !*fmt || !*claimed) return pare_fail(PARE_ENOMEM, "%s: out of memory", f->path);
    PARE_TRY(quant_parse(m, f, *io, *fmt, *claimed));
    return match_tensors(f, m, source, *io, *claimed);
}

pare_status pare_model_load_meta(pare_model **out, pare_checkpoint_meta *meta, const char *path)
{
    *out = NULL;
    pare_st_file *f;
    PARE_TRY(pare_safetensors_open(&f, path));
    pare_model *m = NULL;
    cJSON *cfg = NULL;
    pare_fmt_io *io = NULL;
    int *fmt = NULL;
    char *claimed = NULL;
    pare_status st = PARE_OK;
    const char *config = pare_safetensors_meta(f, "config"), *graph = pare_safetensors_meta(f, "graph");
    const int quant = pare_safetensors_meta(f, "quant") != NULL;
    if (graph) { /* the graph itself (pare >= 0.11): any model pare runs, whatever rewrites made it */
        /* the parameters' floats the data can fill: 4 bytes each, or down to half a byte in a stored 4-bit form */
        uint64_t max_floats = quant ? f->data_bytes * 2 : f->data_bytes / sizeof(float);
        if ((st = pare_graph_from_json(&m, graph, max_floats)) != PARE_OK) {
            st = pare_fail_ctx(st == PARE_ENOMEM ? st : PARE_EFORMAT, "%s: the graph in __metadata__", path);
            goto done;
        }
        snprintf(m->config, sizeof m->config, "%s", config ? config : "");
        if ((st = match_all(f, m, "graph", &io, &fmt, &claimed)) != PARE_OK) goto done;
        goto read;
    }
    if (!config) {
        st = pare_fail(PARE_EFORMAT, "%s: no \"config\" in __metadata__: not a pare checkpoint (pare loads files written by "
                                     "m:save / pare_model_save; loading Hugging Face checkpoints is not supported yet)", path);
        goto done;
    }
    cfg = cJSON_Parse(config);
    if (!cfg) {
        st = pare_fail(PARE_EFORMAT, "%s: __metadata__ \"config\" is not valid JSON", path);
        goto done;
    }
    pare_kv kv[PARE_MAX_OPTS];
    int nkv;
    pare_options o;
    if ((st = config_kv(path, cfg, kv, &nkv)) != PARE_OK) goto done;
    int64_t numel = 0;
    if ((st = pare_opts_resolve(&o, &pare_model_schema, kv, nkv)) != PARE_OK ||
        (st = pare_transformer_numel(&numel, &o)) != PARE_OK) {
        st = pare_fail_ctx(PARE_EFORMAT, "%s: the config in __metadata__", path);
        goto done;
    }
    /* Building allocates and initialises every parameter before the tensors are matched by name, so a
     * config much larger than the file's data (a damaged config, or a few hundred bytes claiming a
     * 16 GB model) is refused first; smaller differences get match_tensors' precise message. */
    if ((uint64_t)numel > f->data_bytes / sizeof(float) + LOAD_SLACK_FLOATS) {
        st = pare_fail(PARE_EFORMAT,
                       "%s: the config in __metadata__ (kind %s) describes %lld parameters (%.1f MB) but the file "
                       "holds %.1f MB of tensor data: a damaged config or a truncated file",
                       path, pare_opt_str(&o, "kind"), (long long)numel, (double)numel * sizeof(float) / 1e6,
                       (double)f->data_bytes / 1e6);
        goto done;
    }
    if ((st = pare_transformer_build(&m, &o)) != PARE_OK) {
        st = pare_fail_ctx(st == PARE_ENOMEM ? st : PARE_EFORMAT, "%s: the config in __metadata__", path);
        goto done;
    }
    if ((st = match_all(f, m, "config", &io, &fmt, &claimed)) != PARE_OK) goto done;
read:
    for (int64_t i = 0; i < m->nparams && st == PARE_OK; i++) {
        pare_param *p = &m->params[i];
        const pare_st_tensor *t = pare_safetensors_find(f, p->name);
        if (t) st = pare_safetensors_read_f32(f, t, p->blob->data, p->blob->n);
    }
    if (st == PARE_OK) st = quant_load(m, f, io, fmt);
    for (int64_t i = 0; i < m->nparams && st == PARE_OK; i++) st = check_param_finite(&m->params[i], path, "cannot load");
    if (st == PARE_OK && quant) snprintf(m->applied, sizeof m->applied, "%s", pare_safetensors_meta(f, "applied") ? pare_safetensors_meta(f, "applied") : "");
    if (st == PARE_OK) st = sparse_specs_load(m, f);
    if (st == PARE_OK) st = half_dtypes_load(m, f);
    if (st == PARE_OK && meta) {
        const char *v;
        memset(meta, 0, sizeof *meta);
        snprintf(meta->format, sizeof meta->format, "%s", (v = pare_safetensors_meta(f, "format")) ? v : "");
        snprintf(meta->pare_version, sizeof meta->pare_version, "%s", (v = pare_safetensors_meta(f, "pare_version")) ? v : "");
        snprintf(meta->applied, sizeof meta->applied, "%s", (v = pare_safetensors_meta(f, "applied")) ? v : "");
        snprintf(meta->config, sizeof meta->config, "%s", config ? config : "");
    }
done:
    cJSON_Delete(cfg);
    quant_io_free(io, m ? m->nparams : 0);
    free(io), free(fmt), free(claimed);
    pare_safetensors_close(f);
    if (st != PARE_OK) {
        pare_model_free(m);
        return st;
    }
    *out = m;
    return PARE_OK;
}

pare_status pare_model_load(pare_model **out, const char *path) { return pare_model_load_meta(out, NULL, path); }
