/* test_rand.h — what the kernel tests share for their operands: 64-byte aligned zeroed buffers and
 * N(0, s²) floats from one pare_rng per test program (g_rng, seeded by the test). */
#ifndef PARE_TEST_RAND_H
#define PARE_TEST_RAND_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

static pare_rng g_rng;

/* n bytes (at least 1), 64-byte aligned and zeroed; exits the test on failure. */
static __attribute__((unused)) void *xalloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1)) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memset(p, 0, n ? n : 1);
    return p;
}

/* n floats of s · N(0, 1) from g_rng. */
static __attribute__((unused)) float *randn(int64_t n, float s)
{
    float *x = xalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = s * (float)pare_rng_normal(&g_rng);
    return x;
}

#endif
