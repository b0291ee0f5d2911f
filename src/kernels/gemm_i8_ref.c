/* gemm_i8_ref.c — the reference twin of pare_linear_i8_act (gemm_i8.h), for the tests; the dynamic
 * Linear's twin, pare_linear_i8_dynamic_ref, is in gemm_ref.c with the other references of gemm.h.
 *
 * Slow on purpose, so that it is obviously right: scalar loops, int64 sums, no threads, no vector kernels.
 * Deliberately not here: argument checking (it assumes valid arguments, as gemm_i8.h says) and any status
 * (out of memory gives NaN outputs: a test helper).
 *
 * Entry point: pare_linear_i8_act_ref.
 */
#include "kernels/gemm_i8.h"

#include <stdlib.h>

#include "core/tensor.h"
#include "kernels/gemm_i8_internal.h"

/* v rounded to f16 and back (LLM.int8()'s outlier part with outlier_f16), or v */
static double outlier_val(float v, int f16) { return f16 ? (double)pare_f16_to_f32(pare_f32_to_f16(v)) : (double)v; }

/* ---- reference twin of pare_linear_i8_act ----
 * Scalar, no threads: the same scale helpers and code function (gemm_internal.h) as the fast path, int64
 * sums of the codes, the dequantization in the same float order; the floating-point part of LLM.int8() in
 * double (its operands rounded to f16 first with outlier_f16), added onto the int8 part's float result. */
void pare_linear_i8_act_ref(float *y, const float *x, const pare_i8_weight *w, const float *W_f32,
                            const float *bias, int64_t M, const pare_i8_act *a, int64_t *n_outliers)
{
    if (!a) a = &pare_i8_act_default_;
    const int64_t N = w->N, K = w->K;
    const int sym = a->symmetric != 0;
    int16_t *c = malloc((size_t)(M * K) * sizeof(int16_t) + 1);
    float *xm = malloc((size_t)(M * K) * sizeof(float) + 1), *sx = malloc((size_t)M * sizeof(float) + 1);
    uint8_t *O = calloc((size_t)K + 1, 1), *rowbad = calloc((size_t)M + 1, 1);
    int64_t nO = 0;
    if (n_outliers) *n_outliers = 0;
    if (!c || !xm || !sx || !O || !rowbad) { /* a test helper: out of memory is not worth a status here */
        for (int64_t i = 0; i < M * N; i++) y[i] = NAN;
        goto done;
    }
    memcpy(xm, x, (size_t)(M * K) * sizeof(float));
    if (a->outlier_threshold > 0.0f)
        for (int64_t k = 0; k < K; k++) {
            float mx = 0.0f;
            for (int64_t m = 0; m < M; m++) mx = fabsf(x[m * K + k]) > mx ? fabsf(x[m * K + k]) : mx;
            if (mx > a->outlier_threshold) {
                O[k] = 1, nO++;
                for (int64_t m = 0; m < M; m++) xm[m * K + k] = 0.0f;
            }
        }
    for (int64_t m = 0; m < M; m++)
        for (int64_t k = 0; k < K; k++) rowbad[m] |= !isfinite(xm[m * K + k]);

    /* the scale(s) and code bounds */
    float gscale = 1.0f, ginv = 0.0f;
    int32_t gz = 0;
    if (a->mode == PARE_ACT_DYN_TENSOR) {
        uint32_t amax = 0;
        float mn = 0.0f, mx = 0.0f;
        for (int64_t i = 0; i < M * K; i++) {
            if (rowbad[i / K]) continue;
            uint32_t b = pare_i8_absbits_(xm[i]);
            amax = b > amax ? b : amax;
            mn = xm[i] < mn ? xm[i] : mn;
            mx = xm[i] > mx ? xm[i] : mx;
        }
        if (sym)
            pare_i8_scale_from_maxabs_(pare_i8_bits_float_(amax), &gscale, &ginv);
        else if (a->torch_qparams)
            pare_i8_torch_asym_params_(mn, mx, &gscale, &ginv, &gz);
        else
            pare_i8_asym_params_(mn, mx, &gscale, &ginv, &gz);
    } else if (a->mode == PARE_ACT_STATIC) {
        gscale = a->scale, ginv = 1.0f / a->scale, gz = sym ? 0 : a->zero;
    }
    for (int64_t m = 0; m < M; m++) {
        const float *r = xm + m * K;
        float s = gscale, inv = ginv;
        int32_t z = gz;
        if (rowbad[m]) {
            sx[m] = NAN;
            for (int64_t k = 0; k < K; k++) c[m * K + k] = 0;
            continue;
        }
        if (a->mode == PARE_ACT_DYN_TOKEN) {
            uint32_t amax = 0;
            float mn = r[0], mx = r[0];
            for (int64_t k = 0; k < K; k++) {
                uint32_t b = pare_i8_absbits_(r[k]);
                amax = b > amax ? b : amax;
                mn = r[k] < mn ? r[k] : mn;
                mx = r[k] > mx ? r[k] : mx;
            }
            if (sym)
                pare_i8_scale_from_maxabs_(pare_i8_bits_float_(amax), &s, &inv), z = 0;
            else
                pare_i8_asym_params_(mn, mx, &s, &inv, &z);
        }
        const float lo = sym ? -127.0f : (float)-z, hi = sym ? 127.0f : (float)(255 - z);
        for (int64_t k = 0; k < K; k++) c[m * K + k] = (int16_t)pare_i8_code_(r[k], inv, lo, hi);
        sx[m] = s;
    }

    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            int64_t acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (int64_t)c[m * K + k] * w->q[n * K + k];
            float s = sx[m] * w->scale[n];
            float v = (float)acc * s;
            if (bias) v = v + bias[n];
            if (nO > 0) {
                double f = v;
                for (int64_t k = 0; k < K; k++)
                    if (O[k])
                        f += outlier_val(x[m * K + k], a->outlier_f16) *
                             outlier_val(W_f32 ? W_f32[n * K + k] : (float)w->q[n * K + k] * w->scale[n], a->outlier_f16);
                v = (float)f;
            }
            y[m * N + n] = v;
        }
    if (n_outliers) *n_outliers = nO;
done:
    free(c), free(xm), free(sx), free(O), free(rowbad);
}
