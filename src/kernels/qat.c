/* qat.c — fake quantization with STE and LSQ gradients (see qat.h). Plain loops, vectorised by the
 * compiler; QAT is a training-time simulation and its speed is not measured. */
#include "qat.h"

#include <math.h>

#include "core/cpu.h"

PARE_HOT void pare_fq_forward(float *y, const float *x, const float *scale, int per_row, int64_t rows, int64_t cols,
                              int qmin, int qmax)
{
#pragma omp parallel for if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) {
        float s = scale[per_row ? r : 0], inv = 1.0f / s;
        for (int64_t c = 0; c < cols; c++) {
            float q = nearbyintf(x[r * cols + c] * inv);
            q = q < (float)qmin ? (float)qmin : q > (float)qmax ? (float)qmax : q;
            y[r * cols + c] = q * s;
        }
    }
}

void pare_fq_backward(float *dx, float *dscale, const float *dy, const float *x, const float *scale, int per_row,
                      int64_t rows, int64_t cols, int qmin, int qmax, float g)
{
    double total = 0;
#pragma omp parallel for reduction(+ : total) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) {
        float s = scale[per_row ? r : 0], inv = 1.0f / s;
        double acc = 0;
        for (int64_t c = 0; c < cols; c++) {
            float v = x[r * cols + c] * inv, d = dy[r * cols + c];
            int inside = v >= (float)qmin && v <= (float)qmax;
            if (dx && inside) dx[r * cols + c] += d;
            if (dscale) acc += (double)d * (inside ? nearbyintf(v) - v : (v < qmin ? qmin : qmax));
        }
        if (dscale && per_row) dscale[r] += (float)(acc * g);
        total += acc;
    }
    if (dscale && !per_row) dscale[0] += (float)(total * g);
}

void pare_fq_observe_weight(float *wscale, const float *W, int64_t N, int64_t K, int bits)
{
    float qmax = (float)((1 << (bits - 1)) - 1);
    for (int64_t n = 0; n < N; n++) {
        float a = 0;
        for (int64_t k = 0; k < K; k++) a = fmaxf(a, fabsf(W[n * K + k]));
        wscale[n] = a > 0 ? a / qmax : 1.0f;
    }
}

void pare_fq_observe_act(float *ascale, const float *x, int64_t len, int bits)
{
    float qmax = (float)((1 << (bits - 1)) - 1);
    float a = 0;
    for (int64_t i = 0; i < len; i++) a = fmaxf(a, fabsf(x[i]));
    float s = a > 0 ? a / qmax : 1.0f;
    ascale[0] = ascale[0] > 0 ? 0.9f * ascale[0] + 0.1f * s : s;
}

void pare_fq_observe(float *wscale, float *ascale, const float *W, const float *x, int64_t M, int64_t N, int64_t K,
                     int bits)
{
    pare_fq_observe_weight(wscale, W, N, K, bits);
    pare_fq_observe_act(ascale, x, M * K, bits);
}
