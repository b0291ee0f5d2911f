/* nn_attention_i8.c — multi-head softmax attention with both batched products in int8 (SmoothQuant's
 * quantized BMMs, Xiao et al. 2023 §4; the scheme of the dense f32 attention otherwise: attn/full.c), inference
 * only, and its reference twin.
 *
 * Per (b, h) pair, with D = C/H, L_b the valid length, scale = 1/sqrt(D):
 *   Q[i,:] ≈ qQ[i,:]·sQ[i]      per token (row of the head), symmetric int8, max-abs/127
 *   K[j,:] ≈ qK[j,:]·sK[j]      per token, keys j < L_b only
 *   S[i,j] = (float)(Σ_d qQ[i,d]·qK[j,d]) · ((sQ[i]·scale)·sK[j])             int8 GEMM, int32 sums
 *   P      = masked softmax(S) in f32 (the masks of nn.h: padding, causal)
 *   P[i,j] ≈ pq[i,j]·sP[i]      u8 in [0, 255] (probabilities are in [0, 1]: no sign bit wasted), with
 *                               PARE_ATTN_P_ROW (default) sP[i] = max_j P[i,j]/255: the row's max maps to 255.
 *                               Since max_j P[i,j] = 1/Σ_j e_j (e_j = exp(S_ij − max_j S_ij), the largest e is 1),
 *                               pq = round(255·e_j) and sP[i] = (1/Σ e)/255 — the unnormalized exponentials are
 *                               quantized, the normalization is a factor of the output row;
 *                               PARE_ATTN_P_FIXED sP = 1/255 (the SmoothQuant code's fixed grid): flat rows of
 *                               long sequences fall below its step (P ~ 1/T < 1/510 rounds to 0)
 *   V[j,d] ≈ qV[j,d]·sV[d]      per channel (column d of the head), symmetric int8 over the valid keys
 *   O[i,d] = (float)(Σ_j pq[i,j]·qV[j,d]) · (sV[d]/255)              FIXED  u8·s8 GEMM, int32 sums
 *   O[i,d] = (float)(Σ_j pq[i,j]·qV[j,d]) · ((sV[d]/255)·(1/Σ_j e_j))  ROW: the row's scale factors out of Σ_j
 * V per channel rather than per tensor: the scale of V belongs to the output column d of O = P·V, so it
 * factors out of the sum exactly like a per-tensor scale, and costs nothing — but a channel with small
 * values keeps its resolution. (Per token of V would not factor: it sits inside the sum over j.)
 *
 * The GEMMs are pare_i8_gemm_s8s8s32_ (S) and pare_i8_gemm_u8s8s32_ (O) of gemm_internal.h: oneDNN's int8
 * GEMMs with VNNI, pare's exact int16-madd kernel without; exact int32 sums either way (|S| <= 127²·D,
 * |O| <= 255·127·T, hence T <= 66311). Queries go in blocks of ATT_QBLOCK rows, each computing only the
 * keys it can see, as the f32 kernel. Parallel over (b, h) pairs (OpenMP, dynamic), one workspace slot
 * per pair; the GEMMs run on the calling thread inside the region.
 *
 * Exactness: the reference twin quantizes with the same scalar helpers, sums in int64 and repeats every
 * float operation in the same order (the softmax is one function with a fixed summation order, shared by
 * both), so fast and reference agree bit for bit. Against f32 attention the error comes from the three
 * roundings (Q, K; P; V) — bounded in docs/kernels-int8.md and in tests/test_gemm_i8.c.
 *
 * Deliberately not here: backward, the attention probabilities as an output, static (calibrated) scales
 * for Q/K/V, fused softmax-quantization kernels with intrinsics.
 *
 * Entry points: pare_attention_i8_workspace, pare_attention_forward_i8, pare_attention_forward_i8_ref
 * (declared in gemm_i8.h).
 */
#include "kernels/gemm_i8.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm_internal.h"
#include "kernels/nn_internal.h"

#define ATT_QBLOCK 64
/* Largest T: u8·s8 sums of P·V over T keys stay in int32 (255·127·T < 2^31). */
#define ATT_I8_MAX_T PARE_I8_U8S8_MAX_K

static int64_t att_len(const int32_t *lengths, int64_t b, int64_t T)
{
    if (!lengths) return T;
    int64_t L = lengths[b];
    return L < 0 ? 0 : L > T ? T : L;
}

/* Keys [0, att_kend) are visible to query i (nn_attention.c). */
static inline int64_t att_kend(int64_t i, int64_t L, int causal)
{
    return causal && i + 1 < L ? i + 1 : L;
}

/* ---- scalar helpers shared by the fast path and the reference (same bits) ---- */

/* q(D), s = per-row symmetric quantization of x(D) (the rounding of pare_quantize_rows_s8). Returns 1 if x
 * holds NaN or Inf (then s = NaN, q = 0). */
static int quant_row(int8_t *q, float *s, const float *x, int64_t D)
{
    uint32_t mx = 0;
    for (int64_t d = 0; d < D; d++) {
        uint32_t b = pare_i8_absbits_(x[d]);
        mx = b > mx ? b : mx;
    }
    if (mx >= PARE_I8_NONFINITE) {
        *s = NAN;
        memset(q, 0, (size_t)D);
        return 1;
    }
    float inv;
    pare_i8_scale_from_maxabs_(pare_i8_bits_float_(mx), s, &inv);
    for (int64_t d = 0; d < D; d++) q[d] = pare_i8_quant_(x[d], inv);
    return 0;
}

/* The helpers below are always inlined: each PARE_HOT clone of a fast-path caller compiles them for its
 * ISA (vectorized, nearbyintf as one instruction), the reference as plain baseline code. Vectorizing
 * does not change their results: no reassociation (no -ffast-math), no contraction (-std=c11 implies
 * -ffp-contract=off), reductions written with fixed partial sums or exact (max), clamps in integers
 * after a conversion that cannot overflow (the float clamp of pare_i8_quant_ would keep GCC from
 * if-converting, hence vectorizing, the loops under -ftrapping-math). */

/* pare_i8_quant_ (the same value) for |x·inv| <= 2^31: inv = 127/max|x| keeps |x·inv| <= 127.00002. */
NN_INLINE int8_t quant_s8(float x, float inv)
{
    int32_t r = (int32_t)nearbyintf(x * inv);
    return (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
}

/* V (L rows of D, row stride C3) per channel: vt[d·ldv + j] (transposed, the B operand of O = P·V),
 * of[d] = sV[d]/255 (the dequantization factor of column d); vmax, vinv: (D) scratch. Returns 1 if V holds
 * NaN or Inf (nothing written then). */
NN_INLINE int quant_v(int8_t *vt, int64_t ldv, float *of, uint32_t *vmax, float *vinv, const float *v, int64_t L,
                      int64_t D, int64_t C3)
{
    for (int64_t d = 0; d < D; d++) vmax[d] = 0;
    for (int64_t j = 0; j < L; j++)
#pragma omp simd
        for (int64_t d = 0; d < D; d++) {
            uint32_t b = pare_i8_absbits_(v[j * C3 + d]);
            vmax[d] = b > vmax[d] ? b : vmax[d];
        }
    uint32_t all = 0;
    for (int64_t d = 0; d < D; d++) all = vmax[d] > all ? vmax[d] : all;
    if (all >= PARE_I8_NONFINITE) return 1;
    for (int64_t d = 0; d < D; d++) {
        float s;
        pare_i8_scale_from_maxabs_(pare_i8_bits_float_(vmax[d]), &s, &vinv[d]);
        of[d] = s / 255.0f;
    }
    for (int64_t j = 0; j < L; j++) {
        int8_t row[64]; /* a row of V quantized in slices of 64 channels, then scattered into vt's column j */
        for (int64_t d0 = 0; d0 < D; d0 += 64) {
            const int64_t nd = d0 + 64 < D ? 64 : D - d0;
#pragma omp simd
            for (int64_t d = 0; d < nd; d++) row[d] = quant_s8(v[j * C3 + d0 + d], vinv[d0 + d]);
            for (int64_t d = 0; d < nd; d++) vt[(d0 + d) * ldv + j] = row[d];
        }
    }
    return 0;
}

/* s(n) = exp(s(n) − max s), n >= 1, returning 1/Σ: max subtracted, nn_expf, and the sum as sixteen partial
 * sums combined in a fixed tree — the same float operations however the compiler vectorizes, so the fast
 * path and the reference agree bit for bit. */
NN_INLINE float softmax_exp_row(float *s, int64_t n)
{
    const float mx = nn_rowmax(s, n); /* exact in any order (only ±0 could differ, and e^±0 = 1 alike) */
#pragma omp simd
    for (int64_t j = 0; j < n; j++) s[j] = nn_expf(s[j] - mx);
    float part[16] = {0}; /* part[t] = Σ s[16i + t], then a fixed tree */
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int t = 0; t < 16; t++) part[t] += s[j + t];
    for (int t = 0; j < n; j++, t++) part[t] += s[j];
    for (int w = 8; w >= 1; w /= 2)
        for (int t = 0; t < w; t++) part[t] += part[t + w];
    return 1.0f / part[0];
}

/* s(n) = softmax(s(n)) (softmax_exp_row, then the normalization) */
NN_INLINE void softmax_row(float *s, int64_t n)
{
    const float inv = softmax_exp_row(s, n);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) s[j] *= inv;
}

/* pq = round(p·255), clamped to [0, 255] (p in [0, 1]: a probability, or an exponential e <= 1 for a per-row
 * scale; no overflow in the conversion). */
NN_INLINE uint8_t quant_p(float p)
{
    int32_t r = (int32_t)nearbyintf(p * 255.0f);
    return (uint8_t)(r > 255 ? 255 : r < 0 ? 0 : r);
}

/* Row i of the probabilities: sf(ke) = (float)S(ke) · (rowf·sK), then with a fixed scale sf = softmax(sf),
 * p(nk) = quant(sf) and *pf = 1; per row sf = exp(sf − max), p = quant(sf) and *pf = 1/Σ sf (the row's
 * factor of O). p is 0 past ke. */
NN_INLINE void probs_row(uint8_t *p, float *pf, float *sf, const int32_t *si, const float *sk, float rowf, int64_t ke,
                         int64_t nk, int prow)
{
#pragma omp simd
    for (int64_t j = 0; j < ke; j++) sf[j] = (float)si[j] * (rowf * sk[j]);
    *pf = 1.0f;
    if (ke > 0 && prow) *pf = softmax_exp_row(sf, ke);
    else if (ke > 0) softmax_row(sf, ke);
#pragma omp simd
    for (int64_t j = 0; j < ke; j++) p[j] = quant_p(sf[j]);
    for (int64_t j = ke; j < nk; j++) p[j] = 0;
}

/* o(D) = (float)acc(D) · of(D) (fixed scale of P), or (float)acc(D) · (of(D)·pf) (per row) */
NN_INLINE void out_row(float *o, const int32_t *acc, const float *of, float pf, int64_t D, int prow)
{
    if (prow) {
#pragma omp simd
        for (int64_t d = 0; d < D; d++) o[d] = (float)acc[d] * (of[d] * pf);
    } else {
#pragma omp simd
        for (int64_t d = 0; d < D; d++) o[d] = (float)acc[d] * of[d];
    }
}

/* ---- the fast path's vectorized instances (PARE_HOT: AVX-512, AVX2 and baseline clones) ---- */

PARE_HOT static int quant_v_fast(int8_t *vt, int64_t ldv, float *of, uint32_t *vmax, float *vinv, const float *v,
                                 int64_t L, int64_t D, int64_t C3)
{
    return quant_v(vt, ldv, of, vmax, vinv, v, L, D, C3);
}

/* the rows [i0, i0+nq) of a query block: S (nq,nk) → pq (nq,nk) and the rows' factors pf (nq); sf (nq,nk) scratch */
PARE_HOT static void probs_block(uint8_t *p, float *pf, float *sf, const int32_t *s, const float *sq, const float *sk,
                                 float scale, int64_t i0, int64_t nq, int64_t nk, int64_t L, int causal, int prow)
{
    for (int64_t r = 0; r < nq; r++)
        probs_row(p + r * nk, pf + r, sf + r * nk, s + r * nk, sk, sq[i0 + r] * scale, att_kend(i0 + r, L, causal), nk,
                  prow);
}

PARE_HOT static void out_block(float *o, int64_t ldo, const int32_t *acc, const float *of, const float *pf, int64_t nq,
                               int64_t D, int prow)
{
    for (int64_t r = 0; r < nq; r++) out_row(o + r * ldo, acc + r * D, of, pf[r], D, prow);
}

/* NaN/Inf position encoded for a min-reduction: first by (b, t), then part (0 q, 1 k, 2 v), then head. */
static inline int64_t bad_code(int64_t b, int64_t t, int part, int64_t h, int64_t T, int64_t H)
{
    return ((b * T + t) * 3 + part) * H + h;
}

/* 1 if row x(D) holds NaN or Inf */
static int row_nonfinite(const float *x, int64_t D)
{
    for (int64_t d = 0; d < D; d++)
        if (pare_i8_absbits_(x[d]) >= PARE_I8_NONFINITE) return 1;
    return 0;
}

/* ---- workspace: one slot per (b, h) pair, each part at a 64-byte offset ----
 *   qQ (T,D) s8 | qK (T,D) s8 | vt (D,T) s8 | sQ (T) | sK (T) | of (D) f32 |
 *   S (QB,T) int32 | Sf (QB,T) f32 | pq (QB,T) u8 | O (QB,D) int32 | vmax (D) | vinv (D) | pf (QB) f32
 *   QB = min(T, ATT_QBLOCK) */
typedef struct att_slot {
    int8_t *q, *k, *vt;
    float *sq, *sk, *of, *sf, *vinv, *pf;
    int32_t *s, *o;
    uint8_t *p;
    uint32_t *vmax;
} att_slot;

static size_t att_slot_layout(att_slot *sl, char *base, int64_t T, int64_t D)
{
    const size_t t = (size_t)T, d = (size_t)D, qb = (size_t)(T < ATT_QBLOCK ? T : ATT_QBLOCK);
    const size_t parts[13] = {t * d,      t * d,      d * t,  4 * t,      4 * t, 4 * d,
                              4 * qb * t, 4 * qb * t, qb * t, 4 * qb * d, 4 * d, 4 * d, 4 * qb};
    char *at[13];
    size_t o = 0;
    for (int i = 0; i < 13; i++) {
        at[i] = base ? base + o : NULL;
        o += pare_i8_align64_(parts[i]);
    }
    if (sl)
        *sl = (att_slot){.q = (int8_t *)at[0],
                         .k = (int8_t *)at[1],
                         .vt = (int8_t *)at[2],
                         .sq = (float *)(void *)at[3],
                         .sk = (float *)(void *)at[4],
                         .of = (float *)(void *)at[5],
                         .s = (int32_t *)(void *)at[6],
                         .sf = (float *)(void *)at[7],
                         .p = (uint8_t *)at[8],
                         .o = (int32_t *)(void *)at[9],
                         .vmax = (uint32_t *)(void *)at[10],
                         .vinv = (float *)(void *)at[11],
                         .pf = (float *)(void *)at[12]};
    return o;
}

size_t pare_attention_i8_workspace(int64_t B, int64_t T, int64_t C, int64_t H)
{
    if (B < 1 || T < 1 || C < 1 || H < 1 || C % H) return 64;
    return (size_t)(B * H) * att_slot_layout(NULL, NULL, T, C / H);
}

pare_status pare_attention_forward_i8(float *out, const float *qkv, const int32_t *lengths, int causal,
                                      pare_attn_p_scale p_scale, int64_t B, int64_t T, int64_t C, int64_t H,
                                      void *workspace)
{
    const char *what = "attention int8";
    if ((unsigned)p_scale >= PARE_ATTN_P_COUNT)
        return pare_fail(PARE_EINVAL, "%s: p_scale=%d: must be %d (per row) or %d (fixed 1/255)", what, (int)p_scale,
                         PARE_ATTN_P_ROW, PARE_ATTN_P_FIXED);
    const int prow = p_scale == PARE_ATTN_P_ROW;
    if (B < 0 || T < 0 || C < 1 || H < 1 || C % H)
        return pare_fail(PARE_EINVAL, "%s: B=%lld T=%lld C=%lld H=%lld: need B, T >= 0, C, H >= 1, C divisible by H",
                         what, (long long)B, (long long)T, (long long)C, (long long)H);
    if (T > ATT_I8_MAX_T)
        return pare_fail(PARE_EINVAL, "%s: T=%lld: int32 sums of P·V are exact only for T <= %lld", what, (long long)T,
                         (long long)ATT_I8_MAX_T);
    const int64_t D = C / H, C3 = 3 * C;
    if (D > PARE_I8_MAX_K)
        return pare_fail(PARE_EINVAL, "%s: head size D=%lld: int32 sums of Q·K^T are exact only for D <= %lld", what,
                         (long long)D, (long long)PARE_I8_MAX_K);
    if (B == 0 || T == 0) return PARE_OK;
    if (!out || !qkv) return pare_fail(PARE_EINVAL, "%s: NULL input or output", what);
    if (!workspace || (uintptr_t)workspace % sizeof(float))
        return pare_fail(PARE_EINVAL,
                         "%s: workspace is NULL or misaligned (need pare_attention_i8_workspace(B,T,C,H)"
                         " bytes, 64-byte aligned)",
                         what);

    const float scale = 1.0f / sqrtf((float)D);
    const size_t slot = att_slot_layout(NULL, NULL, T, D);
    int64_t bad = INT64_MAX;
    int gfail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(min : bad) reduction(max : gfail) if (B * H > 1)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H, L = att_len(lengths, b, T);
        const float *q = qkv + b * T * C3 + h * D, *k = q + C, *v = q + 2 * C; /* (T,D), stride 3C */
        float *o = out + b * T * C + h * D;                                    /* (T,D), stride C */
        att_slot sl;
        att_slot_layout(&sl, (char *)workspace + (size_t)bh * slot, T, D);

        /* Q (all T rows: padded queries still attend), K and V (the L valid keys), per the top of the file */
        int64_t bq = pare_i8_quant_rows_strided_(sl.q, sl.sq, q, C3, T, D);
        int64_t bk = pare_i8_quant_rows_strided_(sl.k, sl.sk, k, C3, L, D);
        if (bq < T || bk < L || quant_v_fast(sl.vt, T, sl.of, sl.vmax, sl.vinv, v, L, D, C3)) {
            int64_t pbad = bq < T ? bad_code(b, bq, 0, h, T, H) : INT64_MAX; /* the first by (token, part) */
            for (int64_t j = 0; j < L; j++) {
                int64_t c = j == bk                        ? bad_code(b, j, 1, h, T, H)
                            : row_nonfinite(v + j * C3, D) ? bad_code(b, j, 2, h, T, H)
                                                           : INT64_MAX;
                pbad = c < pbad ? c : pbad;
            }
            bad = pbad < bad ? pbad : bad;
            continue;
        }

        for (int64_t i0 = 0; i0 < T; i0 += ATT_QBLOCK) {
            const int64_t nq = i0 + ATT_QBLOCK < T ? ATT_QBLOCK : T - i0;
            const int64_t nk = att_kend(i0 + nq - 1, L, causal); /* keys any query of the block sees */
            if (nk == 0) {
                for (int64_t r = 0; r < nq; r++) memset(o + (i0 + r) * C, 0, (size_t)D * sizeof(float));
                continue;
            }
            /* S (nq,nk) = qQ[i0:i0+nq] · qK[0:nk]^T */
            int st = pare_i8_gemm_s8s8s32_(sl.s, nk, sl.q + i0 * D, D, sl.k, D, nq, nk, D);
            probs_block(sl.p, sl.pf, sl.sf, sl.s, sl.sq, sl.sk, scale, i0, nq, nk, L, causal, prow);
            /* O (nq,D) = pq (nq,nk) · qV[0:nk] (vt: (D, nk) of row stride T) */
            st |= pare_i8_gemm_u8s8s32_(sl.o, D, sl.p, nk, sl.vt, T, nq, D, nk);
            if (st) gfail = st > gfail ? st : gfail;
            out_block(o + i0 * C, C, sl.o, sl.of, sl.pf, nq, D, prow);
        }
    }
    if (bad != INT64_MAX) {
        const int64_t h = bad % H, part = bad / H % 3, bt = bad / H / 3;
        return pare_fail(PARE_ENUMERIC, "%s: qkv holds NaN or Inf at batch %lld, token %lld, %s of head %lld", what,
                         (long long)(bt / T), (long long)(bt % T),
                         part == 0   ? "q"
                         : part == 1 ? "k"
                                     : "v",
                         (long long)h);
    }
    if (gfail)
        return pare_fail(PARE_EINTERNAL, "%s: oneDNN int8 gemm failed (status %d) for T=%lld D=%lld", what, gfail,
                         (long long)T, (long long)D);
    return PARE_OK;
}

/* The definition with the same quantization and float operations, int64 sums in triple loops, one query
 * at a time. A (b, h) pair whose inputs hold NaN/Inf gets NaN outputs. */
void pare_attention_forward_i8_ref(float *out, const float *qkv, const int32_t *lengths, int causal,
                                   pare_attn_p_scale p_scale, int64_t B, int64_t T, int64_t C, int64_t H)
{
    const int prow = p_scale == PARE_ATTN_P_ROW;
    const int64_t D = C / H, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)D);
    int8_t *qq = malloc((size_t)(T * D) + 1), *qk = malloc((size_t)(T * D) + 1), *vt = malloc((size_t)(D * T) + 1);
    float *sq = malloc((size_t)T * 4 + 4), *sk = malloc((size_t)T * 4 + 4), *of = malloc((size_t)D * 4 + 4);
    float *sf = malloc((size_t)T * 4 + 4), *vinv = malloc((size_t)D * 4 + 4);
    uint32_t *vmax = malloc((size_t)D * 4 + 4);
    uint8_t *p = malloc((size_t)T + 1);
    /* a test helper: no status for out of memory */
    if (!qq || !qk || !vt || !sq || !sk || !of || !sf || !vinv || !vmax || !p) {
        for (int64_t i = 0; i < B * T * C; i++) out[i] = NAN;
        goto done;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = att_len(lengths, b, T);
            const float *q = qkv + b * T * C3 + h * D, *k = q + C, *v = q + 2 * C;
            int nonfinite = 0;
            for (int64_t i = 0; i < T; i++) nonfinite |= quant_row(qq + i * D, &sq[i], q + i * C3, D);
            for (int64_t j = 0; j < L; j++) nonfinite |= quant_row(qk + j * D, &sk[j], k + j * C3, D);
            nonfinite |= quant_v(vt, T, of, vmax, vinv, v, L, D, C3);
            for (int64_t i = 0; i < T; i++) {
                float *o = out + (b * T + i) * C + h * D;
                const int64_t ke = att_kend(i, L, causal);
                if (nonfinite) {
                    for (int64_t d = 0; d < D; d++) o[d] = NAN;
                    continue;
                }
                const float rowf = sq[i] * scale;
                for (int64_t j = 0; j < ke; j++) {
                    int64_t acc = 0;
                    for (int64_t d = 0; d < D; d++) acc += (int64_t)qq[i * D + d] * qk[j * D + d];
                    sf[j] = (float)acc * (rowf * sk[j]);
                }
                float pf = 1.0f; /* the row's factor: 1/Σ e with a per-row scale */
                if (ke > 0 && prow) pf = softmax_exp_row(sf, ke);
                else if (ke > 0) softmax_row(sf, ke);
                for (int64_t j = 0; j < ke; j++) p[j] = quant_p(sf[j]);
                for (int64_t d = 0; d < D; d++) {
                    int64_t acc = 0;
                    for (int64_t j = 0; j < ke; j++) acc += (int64_t)p[j] * vt[d * T + j];
                    o[d] = prow ? (float)acc * (of[d] * pf) : (float)acc * of[d];
                }
            }
        }
done:
    free(qq), free(qk), free(vt), free(sq), free(sk), free(of), free(sf), free(vinv), free(vmax), free(p);
}
