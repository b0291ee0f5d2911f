/* gguf.c — GGUF v3 (ggml's docs/gguf.md): the reader (pare_gguf_open / _parse, every field checked) and
 * the model writer (pare_gguf_save_model). The format and what is written are described in gguf.h.
 *
 * Deliberately not here: big-endian files, memory mapping, writing tensors of types pare does not store.
 *
 * Entry points: gguf.h.
 */
#include "io/gguf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "io/atomic.h"
#include "io/version.h"
#include "kernels/gemm_half.h"
#include "kernels/qblock.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DEPTH 8
#define GGUF_MAX_NAME 64

/* ---- ggml types this reader knows: name, elements per block, bytes per block ---- */

typedef struct gguf_type_info { const char *name; int qb, bytes; } gguf_type_info;

static const gguf_type_info TYPES[] = {
    [0] = {"f32", 1, 4},      [1] = {"f16", 1, 2},       [2] = {"q4_0", 32, 18},    [3] = {"q4_1", 32, 20},
    [6] = {"q5_0", 32, 22},   [7] = {"q5_1", 32, 24},    [8] = {"q8_0", 32, 34},    [9] = {"q8_1", 32, 36},
    [10] = {"q2_K", 256, 84}, [11] = {"q3_K", 256, 110}, [12] = {"q4_K", 256, 144}, [13] = {"q5_K", 256, 176},
    [14] = {"q6_K", 256, 210}, [15] = {"q8_K", 256, 292}, [24] = {"i8", 1, 1},     [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},     [27] = {"i64", 1, 8},      [28] = {"f64", 1, 8},      [30] = {"bf16", 1, 2},
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

const char *pare_gguf_type_name(uint32_t t) { return t < NTYPES && TYPES[t].name ? TYPES[t].name : "?"; }

int pare_gguf_type_block(uint32_t t, int *bytes)
{
    int ok = t < NTYPES && TYPES[t].name;
    if (bytes) *bytes = ok ? TYPES[t].bytes : 0;
    return ok ? TYPES[t].qb : 0;
}

static const char *const VTYPE_NAMES[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                          "bool", "string", "array", "u64", "i64", "f64"};
_Static_assert(sizeof VTYPE_NAMES / sizeof VTYPE_NAMES[0] == PARE_GGUF_VTYPE_COUNT, "one name per value type");

const char *pare_gguf_vtype_name(uint32_t t) { return t < PARE_GGUF_VTYPE_COUNT ? VTYPE_NAMES[t] : "?"; }

/* ---- the reader ---- */

typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    const char *name; /* the file, for messages */
} rd;

static pare_status short_read(const rd *r, const char *field, size_t need)
{
    return pare_fail(PARE_EFORMAT, "gguf %s: %s: truncated (needs %zu bytes at offset %zu, the file has %zu)",
                     r->name, field, need, r->pos, r->n);
}

static pare_status rd_bytes(rd *r, void *dst, size_t k, const char *field)
{
    if (r->n - r->pos < k) return short_read(r, field, k);
    memcpy(dst, r->p + r->pos, k);
    r->pos += k;
    return PARE_OK;
}

static pare_status rd_u32(rd *r, uint32_t *v, const char *field)
{
    uint8_t b[4] = {0};
    PARE_TRY(rd_bytes(r, b, 4, field));
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return PARE_OK;
}

static pare_status rd_u64(rd *r, uint64_t *v, const char *field)
{
    uint8_t b[8] = {0};
    PARE_TRY(rd_bytes(r, b, 8, field));
    *v = 0;
    for (int i = 7; i >= 0; i--) *v = *v << 8 | b[i];
    return PARE_OK;
}

static pare_status rd_str(rd *r, const char **s, uint64_t *len, const char *field)
{
    PARE_TRY(rd_u64(r, len, field));
    if (*len > r->n - r->pos)
        return pare_fail(PARE_EFORMAT, "gguf %s: %s: string of %llu bytes at offset %zu runs past the end (%zu)",
                         r->name, field, (unsigned long long)*len, r->pos - 8, r->n);
    *s = (const char *)r->p + r->pos;
    r->pos += (size_t)*len;
    return PARE_OK;
}

static size_t vtype_min_bytes(uint32_t t)
{
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};
    return t < PARE_GGUF_VTYPE_COUNT ? sz[t] : 1;
}

static void value_free(pare_gguf_value *v)
{
    if (v->type == PARE_GGUF_ARRAY && v->v.arr.items) {
        for (uint64_t i = 0; i < v->v.arr.n; i++) value_free(&v->v.arr.items[i]);
        free(v->v.arr.items);
        v->v.arr.items = NULL;
    }
}

static pare_status rd_value(rd *r, pare_gguf_value *v, uint32_t type, int depth, const char *field)
{
    memset(v, 0, sizeof *v);
    v->type = type;
    uint8_t b[8];
    switch (type) {
    case PARE_GGUF_U8: PARE_TRY(rd_bytes(r, b, 1, field)); v->v.u = b[0]; return PARE_OK;
    case PARE_GGUF_I8: PARE_TRY(rd_bytes(r, b, 1, field)); v->v.i = (int8_t)b[0]; return PARE_OK;
    case PARE_GGUF_BOOL:
        PARE_TRY(rd_bytes(r, b, 1, field));
        if (b[0] > 1)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: bool value %u at offset %zu (must be 0 or 1)", r->name, field,
                             b[0], r->pos - 1);
        v->v.u = b[0];
        return PARE_OK;
    case PARE_GGUF_U16:
    case PARE_GGUF_I16:
        PARE_TRY(rd_bytes(r, b, 2, field));
        if (type == PARE_GGUF_U16) v->v.u = (uint16_t)(b[0] | b[1] << 8);
        else v->v.i = (int16_t)(uint16_t)(b[0] | b[1] << 8);
        return PARE_OK;
    case PARE_GGUF_U32:
    case PARE_GGUF_I32:
    case PARE_GGUF_F32: {
        uint32_t u;
        PARE_TRY(rd_u32(r, &u, field));
        if (type == PARE_GGUF_U32) v->v.u = u;
        else if (type == PARE_GGUF_I32) v->v.i = (int32_t)u;
        else {
            float f;
            memcpy(&f, &u, 4);
            v->v.f = f;
        }
        return PARE_OK;
    }
    case PARE_GGUF_U64:
    case PARE_GGUF_I64:
    case PARE_GGUF_F64: {
        uint64_t u;
        PARE_TRY(rd_u64(r, &u, field));
        if (type == PARE_GGUF_U64) v->v.u = u;
        else if (type == PARE_GGUF_I64) v->v.i = (int64_t)u;
        else memcpy(&v->v.f, &u, 8);
        return PARE_OK;
    }
    case PARE_GGUF_STRING: return rd_str(r, &v->v.str.s, &v->v.str.len, field);
    case PARE_GGUF_ARRAY: {
        if (depth >= GGUF_MAX_DEPTH)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: arrays nested deeper than %d", r->name, field, GGUF_MAX_DEPTH);
        uint32_t et;
        uint64_t n;
        PARE_TRY(rd_u32(r, &et, field));
        if (et >= PARE_GGUF_VTYPE_COUNT)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: array element type %u at offset %zu (valid: 0..12)", r->name,
                             field, et, r->pos - 4);
        PARE_TRY(rd_u64(r, &n, field));
        if (n > (r->n - r->pos) / vtype_min_bytes(et))
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: array of %llu %s cannot fit the %zu bytes left", r->name, field,
                             (unsigned long long)n, VTYPE_NAMES[et], r->n - r->pos);
        v->v.arr.type = et;
        v->v.arr.items = calloc(n ? (size_t)n : 1, sizeof *v->v.arr.items);
        if (!v->v.arr.items) return pare_fail(PARE_ENOMEM, "gguf %s: %s: array of %llu", r->name, field, (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++) {
            v->v.arr.n = i + 1;
            PARE_TRY(rd_value(r, &v->v.arr.items[i], et, depth + 1, field));
        }
        v->v.arr.n = n;
        return PARE_OK;
    }
    default:
        return pare_fail(PARE_EFORMAT, "gguf %s: %s: value type %u (valid: 0..12)", r->name, field, type);
    }
}

void pare_gguf_close(pare_gguf *g)
{
    if (!g) return;
    for (int64_t i = 0; g->kv && i < g->n_kv; i++) {
        free(g->kv[i].key);
        value_free(&g->kv[i].value);
    }
    free(g->kv);
    free(g->tensors);
    free(g->buf);
    free(g->path);
    free(g);
}

const pare_gguf_value *pare_gguf_find(const pare_gguf *g, const char *key)
{
    for (int64_t i = 0; g && key && i < g->n_kv; i++)
        if (g->kv[i].key && !strcmp(g->kv[i].key, key)) return &g->kv[i].value;
    return NULL;
}

const uint8_t *pare_gguf_tensor_data(const pare_gguf *g, int64_t i)
{
    if (!g || i < 0 || i >= g->n_tensors) return NULL;
    return g->buf + g->data_offset + g->tensors[i].offset;
}

/* Parses g->buf (g->size bytes): header, metadata, tensor infos; checks as gguf.h lists. */
static pare_status parse(pare_gguf *g)
{
    rd r = {g->buf, g->size, 0, g->path};
    char field[160];
    uint8_t magic[4];
    if (g->size < 4 || memcmp(g->buf, "GGUF", 4)) {
        memset(magic, 0, 4);
        memcpy(magic, g->buf, g->size < 4 ? g->size : 4);
        return pare_fail(PARE_EFORMAT, "gguf %s: magic: not a GGUF file (first bytes %02x %02x %02x %02x, want 'GGUF')",
                         g->path, magic[0], magic[1], magic[2], magic[3]);
    }
    r.pos = 4;
    PARE_TRY(rd_u32(&r, &g->version, "version"));
    if (g->version != 3 && g->version != 2)
        return pare_fail(PARE_EFORMAT, "gguf %s: version: %u (this reader reads versions 2 and 3)", g->path, g->version);
    uint64_t nt, nkv;
    PARE_TRY(rd_u64(&r, &nt, "tensor_count"));
    PARE_TRY(rd_u64(&r, &nkv, "metadata_kv_count"));
    /* every kv takes >= 13 bytes (key length, type, a 1-byte value), every tensor info >= 28 */
    if (nkv > (r.n - r.pos) / 13)
        return pare_fail(PARE_EFORMAT, "gguf %s: metadata_kv_count: %llu pairs cannot fit the %zu bytes left", g->path,
                         (unsigned long long)nkv, r.n - r.pos);
    if (nt > (r.n - r.pos) / 28)
        return pare_fail(PARE_EFORMAT, "gguf %s: tensor_count: %llu tensors cannot fit the %zu bytes left", g->path,
                         (unsigned long long)nt, r.n - r.pos);
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return pare_fail(PARE_ENOMEM, "gguf %s: out of memory", g->path);
    g->alignment = GGUF_DEFAULT_ALIGNMENT;

    for (uint64_t i = 0; i < nkv; i++) {
        const char *k;
        uint64_t klen;
        snprintf(field, sizeof field, "metadata key %llu", (unsigned long long)i);
        PARE_TRY(rd_str(&r, &k, &klen, field));
        if (klen == 0 || klen > 65535)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: length %llu (must be 1..65535)", g->path, field,
                             (unsigned long long)klen);
        pare_gguf_kv *kv = &g->kv[i];
        kv->key = malloc((size_t)klen + 1);
        if (!kv->key) return pare_fail(PARE_ENOMEM, "gguf %s: out of memory", g->path);
        memcpy(kv->key, k, (size_t)klen);
        kv->key[klen] = 0;
        g->n_kv = (int64_t)i + 1;
        if (strlen(kv->key) != klen)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: holds a NUL byte", g->path, field);
        snprintf(field, sizeof field, "metadata '%.100s'", kv->key);
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->kv[j].key, kv->key))
                return pare_fail(PARE_EFORMAT, "gguf %s: %s: duplicate key", g->path, field);
        uint32_t vt;
        PARE_TRY(rd_u32(&r, &vt, field));
        if (vt >= PARE_GGUF_VTYPE_COUNT)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: value type %u at offset %zu (valid: 0..12)", g->path, field, vt,
                             r.pos - 4);
        PARE_TRY(rd_value(&r, &kv->value, vt, 0, field));
        if (!strcmp(kv->key, "general.alignment")) {
            if (vt != PARE_GGUF_U32 || kv->value.v.u == 0 || kv->value.v.u % 8)
                return pare_fail(PARE_EFORMAT, "gguf %s: general.alignment: must be a u32, a non-zero multiple of 8 "
                                 "(got %s %llu)", g->path, VTYPE_NAMES[vt], (unsigned long long)kv->value.v.u);
            g->alignment = (uint32_t)kv->value.v.u;
        }
    }

    for (uint64_t i = 0; i < nt; i++) {
        pare_gguf_tensor *t = &g->tensors[i];
        const char *nm;
        uint64_t len;
        snprintf(field, sizeof field, "tensor %llu name", (unsigned long long)i);
        PARE_TRY(rd_str(&r, &nm, &len, field));
        if (len == 0 || len > GGUF_MAX_NAME || memchr(nm, 0, (size_t)len))
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: length %llu (must be 1..64 bytes, no NUL)", g->path, field,
                             (unsigned long long)len);
        memcpy(t->name, nm, (size_t)len);
        t->name[len] = 0;
        g->n_tensors = (int64_t)i + 1;
        snprintf(field, sizeof field, "tensor %llu '%s'", (unsigned long long)i, t->name);
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->tensors[j].name, t->name))
                return pare_fail(PARE_EFORMAT, "gguf %s: %s: duplicate tensor name", g->path, field);
        PARE_TRY(rd_u32(&r, &t->n_dims, field));
        if (t->n_dims < 1 || t->n_dims > 4)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: n_dimensions %u (must be 1..4)", g->path, field, t->n_dims);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            PARE_TRY(rd_u64(&r, &t->dims[d], field));
            if (t->dims[d] > ((uint64_t)1 << 62) || (t->dims[d] && ne > ((uint64_t)1 << 62) / t->dims[d]))
                return pare_fail(PARE_EFORMAT, "gguf %s: %s: dimensions overflow", g->path, field);
            ne *= t->dims[d];
        }
        PARE_TRY(rd_u32(&r, &t->type, field));
        int bytes, qb = pare_gguf_type_block(t->type, &bytes);
        if (!qb)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: type id %u is not a ggml type this reader knows (known: 0-3, 6-15, "
                             "24-28, 30)", g->path, field, t->type);
        if (t->dims[0] % (uint64_t)qb)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: row length %llu is not a multiple of %s's block of %d", g->path,
                             field, (unsigned long long)t->dims[0], TYPES[t->type].name, qb);
        t->nbytes = ne / (uint64_t)qb * (uint64_t)bytes;
        PARE_TRY(rd_u64(&r, &t->offset, field));
        if (t->offset % g->alignment)
            return pare_fail(PARE_EFORMAT, "gguf %s: %s: offset %llu is not a multiple of the alignment %u", g->path,
                             field, (unsigned long long)t->offset, g->alignment);
    }
    uint64_t pos = r.pos, pad = (g->alignment - pos % g->alignment) % g->alignment;
    g->data_offset = pos + pad;
    if (g->data_offset > g->size)
        return pare_fail(PARE_EFORMAT, "gguf %s: padding: truncated before the data section (at %llu, the file has %zu)",
                         g->path, (unsigned long long)g->data_offset, g->size);
    const uint64_t data = g->size - g->data_offset;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const pare_gguf_tensor *t = &g->tensors[i];
        if (t->offset > data || t->nbytes > data - t->offset)
            return pare_fail(PARE_EFORMAT, "gguf %s: tensor %lld '%s': data [%llu, %llu) runs past the data section (%llu "
                             "bytes; truncated?)", g->path, (long long)i, t->name, (unsigned long long)t->offset,
                             (unsigned long long)(t->offset + t->nbytes), (unsigned long long)data);
    }
    return PARE_OK;
}

pare_status pare_gguf_parse(pare_gguf **out, const void *data, size_t n, const char *name)
{
    if (!out) return pare_fail(PARE_EINVAL, "gguf: out is NULL");
    *out = NULL;
    if (!data && n) return pare_fail(PARE_EINVAL, "gguf: data is NULL");
    pare_gguf *g = calloc(1, sizeof *g);
    if (!g) return pare_fail(PARE_ENOMEM, "gguf: out of memory");
    g->path = strdup(name ? name : "(memory)");
    g->buf = malloc(n ? n : 1);
    if (!g->path || !g->buf) {
        pare_gguf_close(g);
        return pare_fail(PARE_ENOMEM, "gguf: out of memory for %zu bytes", n);
    }
    if (n) memcpy(g->buf, data, n);
    g->size = n;
    pare_status st = parse(g);
    if (st != PARE_OK) {
        pare_gguf_close(g);
        return st;
    }
    *out = g;
    return PARE_OK;
}

pare_status pare_gguf_open(pare_gguf **out, const char *path)
{
    if (!out) return pare_fail(PARE_EINVAL, "gguf: out is NULL");
    *out = NULL;
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return pare_fail(PARE_EIO, "gguf %s: cannot open: %s", path ? path : "(null)", strerror(errno));
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return pare_fail(PARE_ENOMEM, "gguf %s: out of memory reading the file", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return pare_fail(PARE_EIO, "gguf %s: read error", path);
    }
    pare_status st = pare_gguf_parse(out, buf, n, path);
    free(buf);
    return st;
}

/* ---- the writer ---- */

typedef struct wb {
    uint8_t *p;
    size_t n, cap;
    int oom;
} wb;

static void wb_put(wb *b, const void *src, size_t k)
{
    if (b->oom) return;
    if (b->n + k > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + k) c *= 2;
        uint8_t *np = realloc(b->p, c);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np, b->cap = c;
    }
    if (src) memcpy(b->p + b->n, src, k);
    else memset(b->p + b->n, 0, k);
    b->n += k;
}

static void wb_u32(wb *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wb_put(b, x, 4);
}

static void wb_u64(wb *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    wb_put(b, x, 8);
}

static void wb_str(wb *b, const char *s)
{
    size_t n = strlen(s);
    wb_u64(b, n);
    wb_put(b, s, n);
}

static void kv_str(wb *b, int64_t *nkv, const char *k, const char *v)
{
    wb_str(b, k), wb_u32(b, PARE_GGUF_STRING), wb_str(b, v), (*nkv)++;
}

static void kv_u32(wb *b, int64_t *nkv, const char *k, uint32_t v)
{
    wb_str(b, k), wb_u32(b, PARE_GGUF_U32), wb_u32(b, v), (*nkv)++;
}

/* One parameter's tensor: the ggml type and bytes (pointing into the model, or into *tmp, to be freed). */
typedef struct wt {
    const char *name;
    uint32_t type;
    uint64_t dims[2];
    uint32_t n_dims;
    const void *data;
    size_t nbytes;
    void *tmp;
    int fallback; /* a stored format without a ggml type: the f32 master */
} wt;

static pare_status tensor_of(wt *t, const pare_param *p)
{
    memset(t, 0, sizeof *t);
    t->name = p->name;
    if (strlen(p->name) > GGUF_MAX_NAME)
        return pare_fail(PARE_EINVAL, "gguf save: parameter name '%s' is longer than GGUF's 64 bytes", p->name);
    t->n_dims = (uint32_t)p->ndim;
    for (int d = 0; d < p->ndim; d++) t->dims[d] = (uint64_t)p->shape[p->ndim - 1 - d]; /* innermost first */
    t->type = 0;
    t->data = p->blob->data;
    t->nbytes = (size_t)pare_param_numel(p) * sizeof(float);
    if (!p->q || p->format == PARE_FMT_F32) return PARE_OK;
    if (p->format == PARE_FMT_QBLOCK && pare_qb_ggml_type(p->q->qb.kind) >= 0) {
        const pare_qb_weight *w = &p->q->qb;
        t->nbytes = pare_qb_bytes(w);
        t->tmp = malloc(t->nbytes ? t->nbytes : 1);
        if (!t->tmp) return pare_fail(PARE_ENOMEM, "gguf save: %s: out of memory", p->name);
        PARE_TRY(pare_qb_to_ggml(t->tmp, t->nbytes, w));
        t->data = t->tmp;
        t->type = (uint32_t)pare_qb_ggml_type(w->kind);
        return PARE_OK;
    }
    if (p->format == PARE_FMT_HALF && p->q->hw.w) {
        t->type = p->q->hw.dtype == PARE_F16 ? 1 : 30;
        t->data = p->q->hw.w;
        t->nbytes = (size_t)(p->q->hw.N * p->q->hw.K) * 2;
        return PARE_OK;
    }
    t->fallback = 1;
    return PARE_OK;
}

static uint32_t file_type_of(uint32_t t)
{
    switch (t) {
    case 0: return 0;   /* ALL_F32 */
    case 1: return 1;   /* MOSTLY_F16 */
    case 2: return 2;   /* MOSTLY_Q4_0 */
    case 3: return 3;   /* MOSTLY_Q4_1 */
    case 8: return 7;   /* MOSTLY_Q8_0 */
    case 6: return 8;   /* MOSTLY_Q5_0 */
    case 7: return 9;   /* MOSTLY_Q5_1 */
    case 12: return 14; /* MOSTLY_Q4_K_S: every Linear weight Q4_K */
    case 13: return 16; /* MOSTLY_Q5_K_S */
    case 14: return 18; /* MOSTLY_Q6_K */
    default: return UINT32_MAX;
    }
}

pare_status pare_gguf_save_model(const pare_model *m, const char *path)
{
    if (!m || !path) return pare_fail(PARE_EINVAL, "gguf save: model or path is NULL");
    const int64_t np = m->nparams;
    wt *ts = calloc(np ? (size_t)np : 1, sizeof *ts);
    if (!ts) return pare_fail(PARE_ENOMEM, "gguf save: out of memory");
    pare_status st = PARE_OK;
    int quantized = 0, nfall = 0;
    uint32_t linear_type = UINT32_MAX; /* the one type of every 2-D weight, UINT32_MAX mixed / none yet */
    int mixed = 0;
    for (int64_t i = 0; i < np && st == PARE_OK; i++) {
        st = tensor_of(&ts[i], &m->params[i]);
        if (st != PARE_OK) break;
        if (ts[i].type != 0 && ts[i].type != 1 && ts[i].type != 30) quantized = 1;
        nfall += ts[i].fallback;
        if (m->params[i].q) {
            if (linear_type == UINT32_MAX) linear_type = ts[i].type;
            else if (linear_type != ts[i].type) mixed = 1;
        }
    }
    wb b = {0};
    if (st == PARE_OK) {
        int64_t nkv = 0;
        wb meta = {0};
        kv_str(&meta, &nkv, "general.architecture", "pare");
        kv_str(&meta, &nkv, "general.name", m->kind[0] ? m->kind : "pare");
        kv_u32(&meta, &nkv, "general.alignment", GGUF_DEFAULT_ALIGNMENT);
        if (quantized) kv_u32(&meta, &nkv, "general.quantization_version", 2);
        uint32_t ft = mixed || nfall ? UINT32_MAX : file_type_of(linear_type == UINT32_MAX ? 0 : linear_type);
        if (ft != UINT32_MAX) kv_u32(&meta, &nkv, "general.file_type", ft);
        kv_str(&meta, &nkv, "pare.kind", m->kind);
        kv_str(&meta, &nkv, "pare.config", m->config);
        kv_str(&meta, &nkv, "pare.applied", m->applied);
        kv_str(&meta, &nkv, "pare.version", pare_version());
        kv_str(&meta, &nkv, "pare.commit", pare_git_commit());
        kv_u32(&meta, &nkv, "pare.context_length", (uint32_t)m->max_T);
        kv_u32(&meta, &nkv, "pare.embedding_length", (uint32_t)m->C);
        kv_u32(&meta, &nkv, "pare.block_count", (uint32_t)m->L);
        kv_u32(&meta, &nkv, "pare.feed_forward_length", (uint32_t)m->F);
        kv_u32(&meta, &nkv, "pare.attention.head_count", (uint32_t)m->H);
        if (nfall) {
            wb_str(&meta, "pare.f32_fallback"), wb_u32(&meta, PARE_GGUF_ARRAY), wb_u32(&meta, PARE_GGUF_STRING);
            wb_u64(&meta, (uint64_t)nfall);
            for (int64_t i = 0; i < np; i++)
                if (ts[i].fallback) wb_str(&meta, ts[i].name);
            nkv++;
        }
        wb_put(&b, "GGUF", 4);
        wb_u32(&b, 3);
        wb_u64(&b, (uint64_t)np);
        wb_u64(&b, (uint64_t)nkv);
        wb_put(&b, meta.p, meta.n);
        free(meta.p);
        b.oom |= meta.oom;
        uint64_t off = 0;
        for (int64_t i = 0; i < np; i++) {
            wb_str(&b, ts[i].name);
            wb_u32(&b, ts[i].n_dims);
            for (uint32_t d = 0; d < ts[i].n_dims; d++) wb_u64(&b, ts[i].dims[d]);
            wb_u32(&b, ts[i].type);
            wb_u64(&b, off);
            off += (ts[i].nbytes + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
        }
        wb_put(&b, NULL, (GGUF_DEFAULT_ALIGNMENT - b.n % GGUF_DEFAULT_ALIGNMENT) % GGUF_DEFAULT_ALIGNMENT);
        for (int64_t i = 0; i < np; i++) {
            wb_put(&b, ts[i].data, ts[i].nbytes);
            wb_put(&b, NULL, (GGUF_DEFAULT_ALIGNMENT - ts[i].nbytes % GGUF_DEFAULT_ALIGNMENT) % GGUF_DEFAULT_ALIGNMENT);
        }
        if (b.oom) st = pare_fail(PARE_ENOMEM, "gguf save %s: out of memory", path);
        else st = pare_atomic_replace(path, b.p, b.n, "saving a GGUF file");
    }
    for (int64_t i = 0; i < np; i++) free(ts[i].tmp);
    free(ts);
    free(b.p);
    return st;
}
