/* wq_internal.h — private to src/kernels/wq*.c: the instruction-set choice and the entry points of the
 * per-ISA kernel files (wq_avx512.c, wq_avx2.c). Nothing here is public API. */
#ifndef PARE_WQ_INTERNAL_H
#define PARE_WQ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/wq.h"

typedef enum wq_isa { WQ_ISA_SCALAR = 0, WQ_ISA_AVX2, WQ_ISA_AVX512 } wq_isa;

wq_isa pare_wq_isa_for_(const pare_wq_weight *w);

static inline int64_t wq_ngroups(const pare_wq_weight *w) { return w->K / w->group; }
/* The implied zero point of a symmetric code (2^(b−1)); W4A8: 8. */
static inline int wq_mid(pare_wq_kind k) { return k == PARE_WQ_I8 ? 128 : k == PARE_WQ_I3 ? 4 : k == PARE_WQ_I2 ? 2 : 8; }

/* W4A8's quantized activations (M tokens), made by wq.c for every kernel:
 *   qx (M, K) int8 natural order · sx (M) token scales · xs (M, K/group) int32 Σ qx per group. */
typedef struct wq_act {
    int8_t *qx;
    float *sx;
    int32_t *xs;
} wq_act;

/* f32 kinds: y (M <= PARE_WQ_GEMV_MAX_M tokens); panel: rows [n0, n0+rows) of Ŵ into dst (rows, K). */
void pare_wq_gemv_avx512_(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M);
void pare_wq_panel_avx512_(float *dst, const pare_wq_weight *w, int64_t n0, int64_t rows);
void pare_wq_w4a8_vnni_(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t M);

void pare_wq_gemv_avx2_(float *y, const float *x, const pare_wq_weight *w, const float *bias, int64_t M);
void pare_wq_panel_avx2_(float *dst, const pare_wq_weight *w, int64_t n0, int64_t rows);
void pare_wq_w4a8_avx2_(float *y, const wq_act *a, const pare_wq_weight *w, const float *bias, int64_t M);

/* Work (M·N·K) below which a kernel runs on one thread. */
#define WQ_PAR_MIN_WORK ((int64_t)1 << 18)

#endif
