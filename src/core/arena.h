/* arena.h — bump allocation for one run's activations and scratch.
 *
 * An arena is one 64-byte-aligned block; allocations are bumped from it and released all at once by
 * pare_arena_reset(). The high-water mark is kept for memory accounting (the "planned" peak).
 */
#ifndef PARE_ARENA_H
#define PARE_ARENA_H

#include <stddef.h>

#include "status.h"

#define PARE_ALIGN 64

typedef struct pare_arena {
    unsigned char *base;
    size_t cap, used, peak;
} pare_arena;

pare_status pare_arena_init(pare_arena *a, size_t cap);
/* Aligned allocation of n bytes; NULL (with the message kept) when the arena is full. */
void *pare_arena_alloc(pare_arena *a, size_t n);
void pare_arena_reset(pare_arena *a);
void pare_arena_free(pare_arena *a); /* safe twice */

/* 64-byte aligned heap allocation (free with pare_free); NULL with the message kept on failure. */
void *pare_alloc(size_t n);
void *pare_calloc(size_t n);
void pare_free(void *p);

#endif
