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

/* The Linear's backward in double, from the gradients' values before the call (dx0, dW0, db0): ex = dx0 + dy·W,
 * eW = dW0 + dyᵀ·x, eb = db0 + Σ_m dy — what a kernel adding into dx, dW, db must give. */
static __attribute__((unused)) void ref_linear_backward(float *ex, float *eW, float *eb, const float *dx0,
                                                        const float *dW0, const float *db0, const float *dy,
                                                        const float *x, const float *W, int64_t M, int64_t N, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) {
            double s = dx0[m * K + k];
            for (int64_t n = 0; n < N; n++) s += (double)dy[m * N + n] * W[n * K + k];
            ex[m * K + k] = (float)s;
        }
    for (int64_t n = 0; n < N; n++) {
        double sb = db0[n];
        for (int64_t m = 0; m < M; m++) sb += dy[m * N + n];
        eb[n] = (float)sb;
        for (int64_t k = 0; k < K; k++) {
            double s = dW0[n * K + k];
            for (int64_t m = 0; m < M; m++) s += (double)dy[m * N + n] * x[m * K + k];
            eW[n * K + k] = (float)s;
        }
    }
}

#endif
