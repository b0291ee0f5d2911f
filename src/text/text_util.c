/* text_util.c — the hash maps, buffers and file reading of text_internal.h. Plain open addressing:
 * vocabularies are 10^4..10^5 entries and training pair tables up to a few 10^6, so linear probing at
 * load <= 1/2 is fast and simple. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/text_internal.h"

static uint32_t fnv1a(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

int pare_strmap_get(const pare_strmap *m, const char *k, size_t n, int32_t *v)
{
    if (!m->cap) return 0;
    uint32_t h = fnv1a(k, n);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const pare_strmap_entry *e = &m->e[i];
        if (!e->k) return 0;
        if (e->h == h && e->n == n && memcmp(e->k, k, n) == 0) return *v = e->v, 1;
    }
}

static int strmap_grow(pare_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    pare_strmap_entry *e = calloc(cap, sizeof *e);
    if (!e) return -1;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->e[j].k) continue;
        size_t i = m->e[j].h & (cap - 1);
        while (e[i].k) i = (i + 1) & (cap - 1);
        e[i] = m->e[j];
    }
    free(m->e);
    m->e = e, m->cap = cap;
    return 0;
}

int pare_strmap_put(pare_strmap *m, const char *k, size_t n, int32_t v, int32_t *old)
{
    if ((m->count + 1) * 2 > m->cap && strmap_grow(m)) return -1;
    uint32_t h = fnv1a(k, n);
    size_t i = h & (m->cap - 1);
    for (; m->e[i].k; i = (i + 1) & (m->cap - 1)) {
        pare_strmap_entry *e = &m->e[i];
        if (e->h == h && e->n == n && memcmp(e->k, k, n) == 0) {
            if (old) *old = e->v;
            return 1;
        }
    }
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, k, n), c[n] = 0;
    m->e[i] = (pare_strmap_entry){c, (uint32_t)n, h, v};
    m->count++;
    return 0;
}

void pare_strmap_free(pare_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->e[i].k);
    free(m->e);
    *m = (pare_strmap){0};
}

static size_t mix64(uint64_t k)
{
    k ^= k >> 33, k *= 0xff51afd7ed558ccdULL, k ^= k >> 33;
    return (size_t)k;
}

int pare_u64map_get(const pare_u64map *m, uint64_t k, int32_t *v)
{
    if (!m->cap) return 0;
    for (size_t i = mix64(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->k[i] == k) return *v = m->v[i], 1;
        if (m->k[i] == UINT64_MAX) return 0;
    }
}

int pare_u64map_put(pare_u64map *m, uint64_t k, int32_t v)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        uint64_t *nk = malloc(cap * sizeof *nk);
        int32_t *nv = malloc(cap * sizeof *nv);
        if (!nk || !nv) return free(nk), free(nv), -1;
        memset(nk, 0xff, cap * sizeof *nk);
        for (size_t j = 0; j < m->cap; j++) {
            if (m->k[j] == UINT64_MAX) continue;
            size_t i = mix64(m->k[j]) & (cap - 1);
            while (nk[i] != UINT64_MAX) i = (i + 1) & (cap - 1);
            nk[i] = m->k[j], nv[i] = m->v[j];
        }
        free(m->k), free(m->v);
        m->k = nk, m->v = nv, m->cap = cap;
    }
    size_t i = mix64(k) & (m->cap - 1);
    while (m->k[i] != UINT64_MAX && m->k[i] != k) i = (i + 1) & (m->cap - 1);
    if (m->k[i] == UINT64_MAX) m->count++;
    m->k[i] = k, m->v[i] = v;
    return 0;
}

void pare_u64map_free(pare_u64map *m)
{
    free(m->k), free(m->v);
    *m = (pare_u64map){0};
}

void pare_buf_add(pare_buf *b, const void *s, size_t n)
{
    if (b->err) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void pare_buf_addc(pare_buf *b, char c) { pare_buf_add(b, &c, 1); }

void pare_buf_free(pare_buf *b)
{
    free(b->p);
    *b = (pare_buf){0};
}

void pare_idvec_push(pare_idvec *v, int32_t id)
{
    if (v->err) return;
    if (v->n == v->cap) {
        int64_t cap = v->cap ? v->cap * 2 : 32;
        int32_t *p = realloc(v->p, (size_t)cap * sizeof *p);
        if (!p) {
            v->err = 1;
            return;
        }
        v->p = p, v->cap = cap;
    }
    v->p[v->n++] = id;
}

pare_status pare_text_read_file(const char *path, char **out, size_t *n, const char *what)
{
    *out = NULL, *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pare_fail(PARE_EIO, "%s: cannot open %s: %s", path, what, strerror(errno));
    pare_buf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) pare_buf_add(&b, chunk, k);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) return pare_buf_free(&b), pare_fail(PARE_EIO, "%s: error reading %s", path, what);
    if (b.err) return pare_buf_free(&b), pare_fail(PARE_ENOMEM, "%s: out of memory reading %s", path, what);
    if (!b.p) pare_buf_add(&b, "", 0);
    if (b.err) return pare_fail(PARE_ENOMEM, "%s: out of memory", path);
    *out = b.p, *n = b.n;
    return PARE_OK;
}
