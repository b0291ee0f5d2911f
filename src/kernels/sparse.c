/* sparse.c — the sparse layouts of sparse.h: specs, compression from dense weights, sizes, pattern
 * statistics, and the plain reference kernel. The fast kernels are in sparse_fast.c.
 *
 * Entry points: pare_sparse_spec_str / _parse, pare_sparse_from_dense / _weight_free / _bytes /
 * _to_dense, pare_sparse_zero_fraction / _block_zero_fraction / _nm_violations, pare_sparse_linear /
 * _linear_ref / _workspace / _impl.
 */
#include "kernels/sparse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm.h"

static int is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

const char *pare_sparse_spec_str(const pare_sparse_spec *s, char *buf, size_t n)
{
    switch (s->kind) {
    case PARE_SP_CSR: snprintf(buf, n, "csr"); break;
    case PARE_SP_CSR_I8: snprintf(buf, n, "csr_i8"); break;
    case PARE_SP_NM: snprintf(buf, n, "nm%d:%d", s->n, s->m); break;
    case PARE_SP_BSR: snprintf(buf, n, "bsr%dx%d", s->br, s->bc); break;
    default: snprintf(buf, n, "?"); break;
    }
    return buf;
}

static pare_status check_spec(const pare_sparse_spec *s)
{
    switch (s->kind) {
    case PARE_SP_CSR:
    case PARE_SP_CSR_I8: return PARE_OK;
    case PARE_SP_NM:
        if (!is_pow2(s->n) || !is_pow2(s->m) || s->n >= s->m || s->m > 16)
            return pare_fail(PARE_EINVAL, "sparse n:m = %d:%d: n < m, both powers of two, m <= 16 (e.g. 2:4, 4:8)", s->n,
                             s->m);
        return PARE_OK;
    case PARE_SP_BSR:
        if (!(s->br == 4 && s->bc == 1) && !(s->br == 16 && s->bc == 16))
            return pare_fail(PARE_EINVAL, "sparse block %dx%d: valid blocks: 4x1, 16x16", s->br, s->bc);
        return PARE_OK;
    default: return pare_fail(PARE_EINVAL, "sparse kind %d out of range", (int)s->kind);
    }
}

pare_status pare_sparse_spec_parse(pare_sparse_spec *s, const char *text)
{
    memset(s, 0, sizeof *s);
    int a, b;
    char tail;
    if (text && !strcmp(text, "csr")) s->kind = PARE_SP_CSR;
    else if (text && !strcmp(text, "csr_i8")) s->kind = PARE_SP_CSR_I8;
    else if (text && sscanf(text, "nm%d:%d%c", &a, &b, &tail) == 2) s->kind = PARE_SP_NM, s->n = a, s->m = b;
    else if (text && sscanf(text, "bsr%dx%d%c", &a, &b, &tail) == 2) s->kind = PARE_SP_BSR, s->br = a, s->bc = b;
    else
        return pare_fail(PARE_EINVAL, "sparse layout '%s': valid: csr, csr_i8, nm<n>:<m> (nm2:4, nm4:8), bsr<r>x<c> "
                                      "(bsr4x1, bsr16x16)", text ? text : "(null)");
    return check_spec(s);
}

void pare_sparse_weight_free(pare_sparse_weight *w)
{
    if (!w) return;
    free(w->rowptr);
    free(w->pcol);
    free(w->col);
    free(w->pos);
    free(w->val);
    free(w->qval);
    free(w->scale);
    memset(w, 0, sizeof *w);
}

size_t pare_sparse_bytes(const pare_sparse_weight *w)
{
    size_t nnz = (size_t)w->nnz;
    switch (w->spec.kind) {
    case PARE_SP_CSR: return nnz * (sizeof(float) + 1) + (size_t)(w->npanel * (w->N + 1)) * sizeof(uint32_t);
    case PARE_SP_CSR_I8:
        return nnz * 2 + (size_t)(w->npanel * (w->N + 1)) * sizeof(uint32_t) + (size_t)w->N * sizeof(float);
    case PARE_SP_NM: return nnz * (sizeof(float) + 1);
    case PARE_SP_BSR: {
        int64_t nbr = (w->N + w->spec.br - 1) / w->spec.br;
        return nnz * sizeof(float) + (size_t)w->nblk * sizeof(uint16_t) + (size_t)(nbr + 1) * sizeof(uint32_t);
    }
    default: return 0;
    }
}

double pare_sparse_zero_fraction(const float *W, int64_t N, int64_t K)
{
    int64_t z = 0;
    for (int64_t i = 0; i < N * K; i++) z += W[i] == 0.0f;
    return N > 0 && K > 0 ? (double)z / (double)(N * K) : 0.0;
}

/* 1 if block (bi, bj) of W (padded) holds a nonzero. */
static int block_nonzero(const float *W, int64_t N, int64_t K, int br, int bc, int64_t bi, int64_t bj)
{
    for (int64_t r = bi * br; r < bi * br + br && r < N; r++)
        for (int64_t c = bj * bc; c < bj * bc + bc && c < K; c++)
            if (W[r * K + c] != 0.0f) return 1;
    return 0;
}

double pare_sparse_block_zero_fraction(const float *W, int64_t N, int64_t K, int br, int bc)
{
    int64_t nbr = (N + br - 1) / br, nbc = (K + bc - 1) / bc, z = 0;
    for (int64_t i = 0; i < nbr; i++)
        for (int64_t j = 0; j < nbc; j++) z += !block_nonzero(W, N, K, br, bc, i, j);
    return nbr > 0 && nbc > 0 ? (double)z / (double)(nbr * nbc) : 0.0;
}

int64_t pare_sparse_nm_violations(const float *W, int64_t N, int64_t K, int n, int m, int64_t *row, int64_t *group,
                                  int *count)
{
    if (m < 1 || K % m) return -1;
    int64_t bad = 0;
    for (int64_t r = 0; r < N; r++)
        for (int64_t g = 0; g < K / m; g++) {
            int c = 0;
            for (int i = 0; i < m; i++) c += W[r * K + g * m + i] != 0.0f;
            if (c > n && !bad++) {
                if (row) *row = r;
                if (group) *group = g;
                if (count) *count = c;
            }
        }
    return bad;
}

static pare_status check_finite(const float *W, int64_t N, int64_t K)
{
    for (int64_t i = 0; i < N * K; i++)
        if (!isfinite(W[i]))
            return pare_fail(PARE_ENUMERIC, "sparse weight: %s at row %lld, column %lld: weights must be finite",
                             isnan(W[i]) ? "NaN" : "Inf", (long long)(i / K), (long long)(i % K));
    return PARE_OK;
}

#define ALLOC(p, n)                                                                                                    \
    do {                                                                                                               \
        (p) = malloc(sizeof *(p) * (size_t)((n) > 0 ? (n) : 1));                                                       \
        if (!(p)) goto nomem;                                                                                          \
    } while (0)

static pare_status from_csr(pare_sparse_weight *w, const float *W, int i8)
{
    int64_t N = w->N, K = w->K, nnz = 0;
    pare_i8_weight q = {0};
    for (int64_t i = 0; i < N * K; i++) nnz += W[i] != 0.0f;
    if (nnz > (int64_t)UINT32_MAX) return pare_fail(PARE_EINVAL, "sparse csr: %lld nonzeros exceed u32 row pointers", (long long)nnz);
    w->nnz = nnz;
    w->npanel = (K + PARE_SP_PANEL - 1) / PARE_SP_PANEL;
    ALLOC(w->rowptr, w->npanel * (N + 1));
    ALLOC(w->pcol, nnz);
    if (i8) {
        ALLOC(w->qval, nnz);
        ALLOC(w->scale, N);
        pare_status st = pare_i8_weight_quantize(&q, W, N, K); /* pare's per-channel int8 grid, exactly */
        if (st != PARE_OK) return st;
        memcpy(w->scale, q.scale, sizeof(float) * (size_t)N);
    } else {
        ALLOC(w->val, nnz);
    }
    int64_t j = 0;
    for (int64_t p = 0; p < w->npanel; p++) {
        uint32_t *rp = w->rowptr + p * (N + 1);
        int64_t k0 = p * PARE_SP_PANEL, k1 = k0 + PARE_SP_PANEL < K ? k0 + PARE_SP_PANEL : K;
        for (int64_t n = 0; n < N; n++) {
            rp[n] = (uint32_t)j;
            for (int64_t k = k0; k < k1; k++) {
                float v = W[n * K + k];
                if (v == 0.0f) continue;
                w->pcol[j] = (uint8_t)(k - k0);
                if (i8) w->qval[j] = q.q[n * K + k];
                else w->val[j] = v;
                j++;
            }
        }
        rp[N] = (uint32_t)j;
    }
    pare_i8_weight_free(&q);
    return PARE_OK;
nomem:
    pare_i8_weight_free(&q);
    return pare_fail(PARE_ENOMEM, "out of memory (sparse csr weight %lld x %lld)", (long long)N, (long long)K);
}

static pare_status from_nm(pare_sparse_weight *w, const float *W)
{
    int64_t N = w->N, K = w->K;
    int n = w->spec.n, m = w->spec.m;
    if (K % m)
        return pare_fail(PARE_EINVAL, "sparse %d:%d: K = %lld is not a multiple of %d (the group size)", n, m, (long long)K, m);
    int64_t row, group;
    int count;
    int64_t bad = pare_sparse_nm_violations(W, N, K, n, m, &row, &group, &count);
    if (bad)
        return pare_fail(PARE_EINVAL, "weights are not %d:%d sparse: %lld groups of %d hold more than %d nonzeros (first: "
                                      "row %lld, columns %lld..%lld hold %d)", n, m, (long long)bad, m, n, (long long)row,
                         (long long)(group * m), (long long)(group * m + m - 1), count);
    const int64_t per = K / m * n, Np = (N + PARE_SP_NM_CB - 1) / PARE_SP_NM_CB * PARE_SP_NM_CB;
    w->nnz = Np * per; /* channels padded to blocks of 16 with zeros */
    ALLOC(w->val, w->nnz);
    ALLOC(w->pos, w->nnz);
    memset(w->val, 0, sizeof(float) * (size_t)w->nnz);
    memset(w->pos, 0, (size_t)w->nnz);
    for (int64_t r = 0; r < N; r++)
        for (int64_t g = 0; g < K / m; g++) {
            int kept = 0, last = 0;
            for (int i = 0; i < m; i++) {
                float v = W[r * K + g * m + i];
                if (v == 0.0f) continue;
                int64_t at = pare_sparse_nm_at(per, r, g * n + kept);
                w->val[at] = v, w->pos[at] = (uint8_t)i, kept++, last = i;
            }
            for (; kept < n; kept++) w->pos[pare_sparse_nm_at(per, r, g * n + kept)] = (uint8_t)last; /* explicit zeros */
        }
    return PARE_OK;
nomem:
    return pare_fail(PARE_ENOMEM, "out of memory (sparse n:m weight %lld x %lld)", (long long)N, (long long)K);
}

static pare_status from_bsr(pare_sparse_weight *w, const float *W)
{
    int64_t N = w->N, K = w->K;
    int br = w->spec.br, bc = w->spec.bc;
    int64_t nbr = (N + br - 1) / br, nbc = (K + bc - 1) / bc, nblk = 0;
    if (nbc > 65536) return pare_fail(PARE_EINVAL, "sparse block: %lld block columns exceed u16 indices", (long long)nbc);
    for (int64_t i = 0; i < nbr; i++)
        for (int64_t b = 0; b < nbc; b++) nblk += block_nonzero(W, N, K, br, bc, i, b);
    w->nblk = nblk;
    w->nnz = nblk * br * bc;
    ALLOC(w->rowptr, nbr + 1);
    ALLOC(w->col, nblk);
    ALLOC(w->val, w->nnz);
    int64_t j = 0;
    for (int64_t i = 0; i < nbr; i++) {
        w->rowptr[i] = (uint32_t)j;
        for (int64_t b = 0; b < nbc; b++) {
            if (!block_nonzero(W, N, K, br, bc, i, b)) continue;
            w->col[j] = (uint16_t)b;
            float *v = w->val + j * br * bc;
            for (int c = 0; c < bc; c++)
                for (int r = 0; r < br; r++) {
                    int64_t n = i * br + r, k = b * bc + c;
                    v[c * br + r] = n < N && k < K ? W[n * K + k] : 0.0f;
                }
            j++;
        }
    }
    w->rowptr[nbr] = (uint32_t)j;
    return PARE_OK;
nomem:
    return pare_fail(PARE_ENOMEM, "out of memory (sparse block weight %lld x %lld)", (long long)N, (long long)K);
}

pare_status pare_sparse_from_dense(pare_sparse_weight *out, const float *W, int64_t N, int64_t K,
                                   const pare_sparse_spec *spec)
{
    if (!out || !W || !spec) return pare_fail(PARE_EINVAL, "sparse from dense: NULL argument");
    memset(out, 0, sizeof *out);
    if (N < 1 || K < 1) return pare_fail(PARE_EINVAL, "sparse weight %lld x %lld: both sizes must be >= 1", (long long)N, (long long)K);
    if (K > PARE_SP_MAX_K)
        return pare_fail(PARE_EINVAL, "sparse weight: K = %lld input features exceed %d (u16 column indices)", (long long)K,
                         PARE_SP_MAX_K);
    PARE_TRY(check_spec(spec));
    PARE_TRY(check_finite(W, N, K));
    out->spec = *spec;
    out->N = N, out->K = K;
    for (int64_t i = 0; i < N * K; i++) out->nonzero += W[i] != 0.0f;
    pare_status st = spec->kind == PARE_SP_NM    ? from_nm(out, W)
                     : spec->kind == PARE_SP_BSR ? from_bsr(out, W)
                                                 : from_csr(out, W, spec->kind == PARE_SP_CSR_I8);
    if (st != PARE_OK) pare_sparse_weight_free(out);
    return st;
}

void pare_sparse_to_dense(float *W, const pare_sparse_weight *w)
{
    int64_t N = w->N, K = w->K;
    memset(W, 0, sizeof(float) * (size_t)(N * K));
    switch (w->spec.kind) {
    case PARE_SP_CSR:
    case PARE_SP_CSR_I8:
        for (int64_t p = 0; p < w->npanel; p++)
            for (int64_t n = 0; n < N; n++)
                for (uint32_t j = w->rowptr[p * (N + 1) + n]; j < w->rowptr[p * (N + 1) + n + 1]; j++)
                    W[n * K + p * PARE_SP_PANEL + w->pcol[j]] = w->val ? w->val[j] : (float)w->qval[j] * w->scale[n];
        break;
    case PARE_SP_NM: {
        int n = w->spec.n, m = w->spec.m;
        const int64_t per = K / m * n;
        for (int64_t r = 0; r < N; r++)
            for (int64_t j = 0; j < per; j++) {
                int64_t at = pare_sparse_nm_at(per, r, j);
                if (w->val[at] != 0.0f) W[r * K + j / n * m + w->pos[at]] = w->val[at];
            }
        break;
    }
    case PARE_SP_BSR: {
        int br = w->spec.br, bc = w->spec.bc;
        for (int64_t i = 0; i < (N + br - 1) / br; i++)
            for (uint32_t j = w->rowptr[i]; j < w->rowptr[i + 1]; j++)
                for (int c = 0; c < bc; c++)
                    for (int r = 0; r < br; r++) {
                        int64_t n = i * br + r, k = (int64_t)w->col[j] * bc + c;
                        if (n < N && k < K) W[n * K + k] = w->val[(int64_t)j * br * bc + c * br + r];
                    }
        break;
    }
    default: break;
    }
}

/* ---- reference ---- */

void pare_sparse_linear_ref(float *y, const float *x, const pare_sparse_weight *w, const float *bias, int64_t M)
{
    int64_t N = w->N, K = w->K;
    if (w->spec.kind == PARE_SP_CSR_I8) {
        int8_t *qx = malloc((size_t)(M * K) + 1);
        float *sx = malloc(sizeof(float) * (size_t)M + 1);
        if (!qx || !sx) { /* a test helper: out of memory is not worth a status here */
            for (int64_t i = 0; i < M * N; i++) y[i] = NAN;
        } else {
            pare_quantize_rows_s8_ref(qx, sx, x, M, K);
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    int64_t acc = 0;
                    for (int64_t p = 0; p < w->npanel; p++)
                        for (uint32_t j = w->rowptr[p * (N + 1) + n]; j < w->rowptr[p * (N + 1) + n + 1]; j++)
                            acc += (int64_t)w->qval[j] * qx[m * K + p * PARE_SP_PANEL + w->pcol[j]];
                    float s = sx[m] * w->scale[n];
                    float v = (float)(int32_t)acc * s;
                    if (bias) v = v + bias[n];
                    y[m * N + n] = v;
                }
        }
        free(qx);
        free(sx);
        return;
    }
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * K;
        float *yr = y + m * N;
        for (int64_t n = 0; n < N; n++) yr[n] = bias ? bias[n] : 0.0f;
        switch (w->spec.kind) {
        case PARE_SP_CSR:
            for (int64_t n = 0; n < N; n++) {
                float s = 0;
                for (int64_t p = 0; p < w->npanel; p++)
                    for (uint32_t j = w->rowptr[p * (N + 1) + n]; j < w->rowptr[p * (N + 1) + n + 1]; j++)
                        s += w->val[j] * xr[p * PARE_SP_PANEL + w->pcol[j]];
                yr[n] += s;
            }
            break;
        case PARE_SP_NM: {
            int64_t per = K / w->spec.m * w->spec.n;
            for (int64_t n = 0; n < N; n++) {
                float s = 0;
                for (int64_t j = 0; j < per; j++) {
                    int64_t at = pare_sparse_nm_at(per, n, j);
                    s += w->val[at] * xr[j / w->spec.n * w->spec.m + w->pos[at]];
                }
                yr[n] += s;
            }
            break;
        }
        case PARE_SP_BSR: {
            int br = w->spec.br, bc = w->spec.bc;
            for (int64_t i = 0; i < (N + br - 1) / br; i++)
                for (int r = 0; r < br && i * br + r < N; r++) {
                    float s = 0;
                    for (uint32_t j = w->rowptr[i]; j < w->rowptr[i + 1]; j++)
                        for (int c = 0; c < bc; c++) {
                            int64_t k = (int64_t)w->col[j] * bc + c;
                            if (k < K) s += w->val[(int64_t)j * br * bc + c * br + r] * xr[k];
                        }
                    yr[i * br + r] += s;
                }
            break;
        }
        default: break;
        }
    }
}

/* ---- fast entry ---- */

size_t pare_sparse_workspace(const pare_sparse_weight *w, int64_t M)
{
    int64_t Mp = (M + 15) / 16 * 16, Kp = w->K + 16;
    size_t b = 64;
    if (w->spec.kind == PARE_SP_CSR_I8) b += (size_t)(M * w->K) + 64 + sizeof(float) * (size_t)M + 64;
    if (M >= PARE_SP_TILE_MIN) b += sizeof(float) * (size_t)(Kp * Mp) + 64; /* xT (f32 or int32) */
    if (M >= PARE_SP_TILE_MIN && (w->spec.kind == PARE_SP_CSR || w->spec.kind == PARE_SP_CSR_I8))
        b += sizeof(float) * (size_t)(w->N * 64) + 64; /* the tile's accumulators across panels */
    return b;
}

pare_status pare_sparse_linear(float *y, const float *x, const pare_sparse_weight *w, const float *bias, int64_t M,
                               void *workspace)
{
    if (!y || !x || !w || (!workspace && pare_sparse_workspace(w, M)))
        return pare_fail(PARE_EINVAL, "sparse linear: NULL argument");
    if (M <= 0) return PARE_OK;
    return pare_sparse_linear_fast_(y, x, w, bias, M, workspace);
}
