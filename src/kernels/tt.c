/* tt.c — the TT-matrix Linear of tt.h: forward and backward as a chain of (batched) GEMMs, and the dense
 * reference. */
#include "tt.h"

#include <stdlib.h>
#include <string.h>

#include "gemm.h"

pare_status pare_tt_check(const pare_tt_shape *s, const char *what)
{
    if (s->d < 2 || s->d > PARE_TT_MAX)
        return pare_fail(PARE_EINVAL, "%s: a TT-matrix has 2..%d cores, not %d", what, PARE_TT_MAX, s->d);
    if (s->r[0] != 1 || s->r[s->d] != 1)
        return pare_fail(PARE_EINVAL, "%s: the outer TT ranks must be 1 (got %lld and %lld)", what, (long long)s->r[0],
                         (long long)s->r[s->d]);
    for (int j = 0; j < s->d; j++)
        if (s->n[j] < 1 || s->k[j] < 1 || s->r[j + 1] < 1 || s->n[j] > (1 << 24) || s->k[j] > (1 << 24) ||
            s->r[j + 1] > (1 << 20))
            return pare_fail(PARE_EINVAL, "%s: core %d has shape (%lld, %lld, %lld, %lld); every size must be ≥ 1", what, j,
                             (long long)s->r[j], (long long)s->n[j], (long long)s->k[j], (long long)s->r[j + 1]);
    return PARE_OK;
}

int64_t pare_tt_rows(const pare_tt_shape *s)
{
    int64_t p = 1;
    for (int j = 0; j < s->d; j++) p *= s->n[j];
    return p;
}

int64_t pare_tt_cols(const pare_tt_shape *s)
{
    int64_t p = 1;
    for (int j = 0; j < s->d; j++) p *= s->k[j];
    return p;
}

int64_t pare_tt_core_offset(const pare_tt_shape *s, int j)
{
    int64_t off = 0;
    for (int i = 0; i < j; i++) off += s->r[i] * s->n[i] * s->k[i] * s->r[i + 1];
    return off;
}

int64_t pare_tt_numel(const pare_tt_shape *s) { return pare_tt_core_offset(s, s->d); }

/* The sizes of step j (tt.h): blocks O = Π_{i<j} k_i per row, G_j as (R, Ck), P columns. */
typedef struct step { int64_t O, R, Ck, P; } step;

static step step_of(const pare_tt_shape *s, int j)
{
    step t = {1, s->r[j] * s->n[j], s->k[j] * s->r[j + 1], 1};
    for (int i = 0; i < j; i++) t.O *= s->k[i];
    for (int i = j + 1; i < s->d; i++) t.P *= s->n[i];
    return t;
}

/* Z_j's floats per row (the output of step j). */
static int64_t zsize(const pare_tt_shape *s, int j)
{
    step t = step_of(s, j);
    return t.O * t.R * t.P;
}

/* Where Z_j (1 ≤ j < d) starts in the cache, per row: Z_{d-1} first. */
static int64_t zoff(const pare_tt_shape *s, int j)
{
    int64_t off = 0;
    for (int i = s->d - 1; i > j; i--) off += zsize(s, i);
    return off;
}

int64_t pare_tt_cache_floats(const pare_tt_shape *s) { return zoff(s, 0); }

int64_t pare_tt_work_floats(const pare_tt_shape *s)
{
    int64_t mx = 1; /* the largest state, input or output of a step, per row */
    for (int j = 0; j < s->d; j++) {
        step t = step_of(s, j);
        int64_t in = t.O * t.Ck * t.P, out = t.O * t.R * t.P;
        if (in > mx) mx = in;
        if (out > mx) mx = out;
    }
    return 4 * mx;
}

int64_t pare_tt_flops(const pare_tt_shape *s, int64_t M)
{
    int64_t f = 0;
    for (int j = 0; j < s->d; j++) {
        step t = step_of(s, j);
        f += 2 * M * t.O * t.R * t.Ck * t.P;
    }
    return f;
}

/* dst (B blocks of (P, X)) (+)= src (B blocks of (X, P))ᵀ */
static void transpose_blocks(float *dst, const float *src, int64_t B, int64_t X, int64_t P, int add)
{
#pragma omp parallel for schedule(static) if (B * X * P >= 65536)
    for (int64_t b = 0; b < B; b++) {
        const float *s = src + b * X * P;
        float *d = dst + b * X * P;
        for (int64_t x = 0; x < X; x++)
            for (int64_t p = 0; p < P; p++) {
                if (add) d[p * X + x] += s[x * P + p];
                else d[p * X + x] = s[x * P + p];
            }
    }
}

/* out (B blocks of (R, P)) = G (R, Ck) · in (B blocks of (Ck, P)). For P > 1 the blocks are transposed so
 * that the whole step is one GEMM (B·P, Ck) · Gᵀ rather than B small ones (each a oneDNN call with its own
 * thread team: slow, and very slow on a loaded machine). t1, t2: scratch of B·P·max(Ck, R) floats each. */
static void step_forward(float *out, const float *in, const float *G, int64_t B, step t, float *t1, float *t2)
{
    if (t.P == 1) {
        pare_sgemm(0, 1, B, t.R, t.Ck, 1.0f, in, t.Ck, G, t.Ck, 0.0f, out, t.R);
        return;
    }
    transpose_blocks(t1, in, B, t.Ck, t.P, 0);                                   /* (B, P, Ck) */
    pare_sgemm(0, 1, B * t.P, t.R, t.Ck, 1.0f, t1, t.Ck, G, t.Ck, 0.0f, t2, t.R); /* (B, P, R) */
    transpose_blocks(out, t2, B, t.P, t.R, 0);                                   /* (B, R, P) */
}

void pare_tt_linear_forward(float *y, float *z, float *work, const float *x, const float *cores, const float *bias,
                            int64_t M, const pare_tt_shape *s)
{
    const float *in = x;
    int64_t q = M * (pare_tt_work_floats(s) / 4);
    for (int j = s->d - 1; j >= 0; j--) {
        step t = step_of(s, j);
        float *out = j == 0 ? y : z + M * zoff(s, j);
        step_forward(out, in, cores + pare_tt_core_offset(s, j), M * t.O, t, work, work + q);
        in = out;
    }
    if (!bias) return;
    int64_t N = pare_tt_rows(s);
#pragma omp parallel for schedule(static) if (M * N >= 32768)
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) y[m * N + n] += bias[n];
}

void pare_tt_linear_backward(float *dx, float *dcores, float *dbias, float *work, const float *dy, const float *x,
                             const float *z, const float *cores, int64_t M, const pare_tt_shape *s)
{
    int64_t N = pare_tt_rows(s), q = M * (pare_tt_work_floats(s) / 4);
    float *t1 = work + 2 * q, *t2 = work + 3 * q; /* transposes; work[0, 2q) holds dZ, ping-pong */
    if (dbias)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) dbias[n] += dy[m * N + n];
    const float *dout = dy; /* d Z_j, from Z_0 = y */
    for (int j = 0; j < s->d; j++) {
        step t = step_of(s, j);
        int64_t B = M * t.O;
        const float *in = j == s->d - 1 ? x : z + M * zoff(s, j + 1);
        const float *G = cores + pare_tt_core_offset(s, j);
        float *din = j == s->d - 1 ? dx : work + (j % 2) * q; /* dZ_j was in the other half (or dy) */
        int add = j == s->d - 1;                               /* dx is added into */
        /* forward: Z_j[b] = G · Z_{j+1}[b];  dG += Σ_b dZ_j[b] · Z_{j+1}[b]ᵀ,  dZ_{j+1}[b] = Gᵀ · dZ_j[b] */
        if (t.P == 1) {
            if (dcores) pare_sgemm(1, 0, t.R, t.Ck, B, 1.0f, dout, t.R, in, t.Ck, 1.0f, dcores + pare_tt_core_offset(s, j), t.Ck);
            if (din) pare_sgemm(0, 0, B, t.Ck, t.R, 1.0f, dout, t.R, G, t.Ck, add ? 1.0f : 0.0f, din, t.Ck);
        } else {
            transpose_blocks(t2, dout, B, t.R, t.P, 0); /* (B, P, R) */
            if (dcores) {
                transpose_blocks(t1, in, B, t.Ck, t.P, 0); /* (B, P, Ck) */
                pare_sgemm(1, 0, t.R, t.Ck, B * t.P, 1.0f, t2, t.R, t1, t.Ck, 1.0f, dcores + pare_tt_core_offset(s, j), t.Ck);
            }
            if (din) {
                pare_sgemm(0, 0, B * t.P, t.Ck, t.R, 1.0f, t2, t.R, G, t.Ck, 0.0f, t1, t.Ck); /* (B, P, Ck) */
                transpose_blocks(din, t1, B, t.P, t.Ck, add);
            }
        }
        if (!din) break;
        dout = din;
    }
}

void pare_tt_to_dense(float *W, const float *cores, const pare_tt_shape *s)
{
    int64_t N = pare_tt_rows(s), K = pare_tt_cols(s), rmax = 1;
    for (int j = 0; j <= s->d; j++)
        if (s->r[j] > rmax) rmax = s->r[j];
    double *v = malloc(sizeof *v * (size_t)(2 * rmax));
    if (!v) return; /* a reference for tests and small layers: the caller sized W */
    for (int64_t a = 0; a < N; a++)
        for (int64_t c = 0; c < K; c++) {
            int64_t ai[PARE_TT_MAX], ci[PARE_TT_MAX], ra = a, rc = c;
            for (int j = s->d - 1; j >= 0; j--) ai[j] = ra % s->n[j], ra /= s->n[j], ci[j] = rc % s->k[j], rc /= s->k[j];
            double *cur = v, *nxt = v + rmax;
            cur[0] = 1;
            for (int j = 0; j < s->d; j++) {
                const float *G = cores + pare_tt_core_offset(s, j); /* (r_j, n_j, k_j, r_{j+1}) */
                int64_t rj = s->r[j], rq = s->r[j + 1];
                for (int64_t q = 0; q < rq; q++) {
                    double acc = 0;
                    for (int64_t p = 0; p < rj; p++)
                        acc += cur[p] * G[((p * s->n[j] + ai[j]) * s->k[j] + ci[j]) * rq + q];
                    nxt[q] = acc;
                }
                double *tmp = cur;
                cur = nxt, nxt = tmp;
            }
            W[a * K + c] = (float)cur[0];
        }
    free(v);
}
