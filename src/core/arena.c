/* arena.c — bump allocator and aligned heap helpers. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

static size_t round_up(size_t n) { return (n + PARE_ALIGN - 1) & ~(size_t)(PARE_ALIGN - 1); }

void *pare_alloc(size_t n)
{
    void *p = NULL;
    if (n == 0) n = PARE_ALIGN;
    if (posix_memalign(&p, PARE_ALIGN, round_up(n)) != 0) {
        pare_fail(PARE_ENOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    return p;
}

void *pare_calloc(size_t n)
{
    void *p = pare_alloc(n);
    if (p) memset(p, 0, round_up(n ? n : PARE_ALIGN));
    return p;
}

void pare_free(void *p) { free(p); }

pare_status pare_arena_init(pare_arena *a, size_t cap)
{
    a->used = a->peak = 0;
    a->cap = round_up(cap);
    a->base = pare_alloc(a->cap);
    if (!a->base) {
        a->cap = 0;
        return PARE_ENOMEM;
    }
    return PARE_OK;
}

void *pare_arena_alloc(pare_arena *a, size_t n)
{
    size_t need = round_up(n ? n : 1);
    if (a->used + need > a->cap) {
        pare_fail(PARE_ENOMEM, "arena full: %zu of %zu bytes used, %zu more asked", a->used, a->cap, need);
        return NULL;
    }
    void *p = a->base + a->used;
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void pare_arena_reset(pare_arena *a) { a->used = 0; }

void pare_arena_free(pare_arena *a)
{
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}
