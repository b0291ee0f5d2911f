/* pattern.c — the block-sparse attention engine of pattern.h: pattern building, the tile iterator,
 * tiled online-softmax forward, recomputing backward, the exact cost (whole tiles) and the dense mask.
 *
 * Per (b, h) pair (OpenMP over B·H, one thread slot each: the score tile, and row statistics), for every
 * entry of head h and every tile of it:
 *     S = scale · Q_t · K_t^T                (pare_sgemm on strided views, lda = ld · q.stride)
 *     masked scores (outside the band, in tiles that cross its edge) → −inf
 *     m_i' = max(m_i, max_j S_ij); P = exp(S − m_i'); l_i = e^{m_i − m_i'} l_i + Σ_j P_ij;
 *     O_i ← e^{m_i − m_i'} O_i + P·V_t       (O accumulates unnormalised in out, in place)
 * then O_i /= l_i and lse_i = m_i + log l_i (the cache). Backward, per tile: P = exp(S − lse_i),
 * dV_t += P^T·dO_t, dP = dO_t·V_t^T, dS = P ⊙ (dP − Dv_i) with Dv_i = dO_i·O_i, dQ_t += scale·dS·K_t,
 * dK_t += scale·dS^T·Q_t. A (b, h) pair writes only its own head's columns, so pairs never race, and the
 * order inside a pair is fixed: results do not depend on the thread count.
 *
 * The bf16 forward (pare_attn_pattern_forward_bf16) runs the same tiles, softmax and cache with both products
 * on bf16 operands (kernels/attn_half.h), P rounded to bf16 against its tile's running max.
 *
 * Deliberately not here: patterns themselves (the variant files), register-blocked micro-kernels (the
 * tiles are pare_sgemm calls), parallelism inside one (b, h) pair.
 */
#include "attn/pattern.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/attn_half.h"
#include "kernels/gemm.h"
#include "kernels/nn_internal.h"

/* ---- building ---- */

pare_status pare_attn_pattern_init(pare_attn_pattern *p, int64_t T, int64_t H, int64_t tq, int64_t tk, int causal)
{
    memset(p, 0, sizeof *p);
    p->T = T, p->H = H, p->tq = tq < T ? tq : T, p->tk = tk < T ? tk : T, p->causal = causal;
    p->head = calloc((size_t)H + 1, sizeof *p->head);
    if (!p->head) return pare_fail(PARE_ENOMEM, "attention pattern: out of memory");
    return PARE_OK;
}

void pare_attn_pattern_free(pare_attn_pattern *p)
{
    free(p->e);
    free(p->head);
    p->e = NULL, p->head = NULL, p->ne = p->cap = 0;
}

void pare_attn_pattern_state_free(pare_attn *a)
{
    if (a->state) pare_attn_pattern_free(a->state);
    free(a->state);
    a->state = NULL;
}

static int prog_valid(pare_attn_prog g, int64_t T)
{
    return g.stride >= 1 && g.start >= 0 && g.start + g.stride * (g.count - 1) < T;
}

pare_status pare_attn_pattern_add(pare_attn_pattern *p, int64_t h, pare_attn_prog q, pare_attn_prog k, int64_t lo,
                                  int64_t hi)
{
    if (lo < -p->T) lo = -p->T;
    if (hi > p->T) hi = p->T;
    if (q.count <= 0 || k.count <= 0 || lo > hi) return PARE_OK;
    if (h < 0 || h >= p->H || !prog_valid(q, p->T) || !prog_valid(k, p->T))
        return pare_fail(PARE_EINTERNAL,
                         "attention pattern: entry of head %lld (q %lld+%lld·r, r<%lld; k %lld+%lld·r, r<%lld) "
                         "is outside T=%lld", (long long)h, (long long)q.start, (long long)q.stride, (long long)q.count,
                         (long long)k.start, (long long)k.stride, (long long)k.count, (long long)p->T);
    if (p->ne == p->cap) {
        int64_t cap = p->cap ? 2 * p->cap : 64;
        pare_attn_entry *e = realloc(p->e, (size_t)cap * sizeof *e);
        if (!e) return pare_fail(PARE_ENOMEM, "attention pattern: out of memory (%lld entries)", (long long)cap);
        p->e = e, p->cap = cap;
    }
    p->e[p->ne++] = (pare_attn_entry){q, k, lo, hi, h};
    return PARE_OK;
}

pare_status pare_attn_pattern_finish(pare_attn_pattern *p)
{
    memset(p->head, 0, (size_t)(p->H + 1) * sizeof *p->head);
    for (int64_t i = 0; i < p->ne; i++) p->head[p->e[i].head + 1]++;
    for (int64_t h = 0; h < p->H; h++) p->head[h + 1] += p->head[h];
    if (p->ne == 0) return PARE_OK;
    pare_attn_entry *sorted = malloc((size_t)p->ne * sizeof *sorted);
    int64_t *fill = malloc((size_t)p->H * sizeof *fill);
    if (!sorted || !fill) {
        free(sorted), free(fill);
        return pare_fail(PARE_ENOMEM, "attention pattern: out of memory");
    }
    memcpy(fill, p->head, (size_t)p->H * sizeof *fill);
    for (int64_t i = 0; i < p->ne; i++) sorted[fill[p->e[i].head]++] = p->e[i];
    free(p->e);
    free(fill);
    p->e = sorted, p->cap = p->ne;
    return PARE_OK;
}

/* ---- tiles ---- */

static inline int64_t floordiv(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    return a % b != 0 && a < 0 ? q - 1 : q;
}
static inline int64_t ceildiv(int64_t a, int64_t b) { return -floordiv(-a, b); }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Positions of g below L. */
static int64_t prog_below(pare_attn_prog g, int64_t L)
{
    if (g.count <= 0 || g.start >= L) return 0;
    return min64(g.count, (L - 1 - g.start) / g.stride + 1);
}

typedef struct tile {
    int64_t qr, nq, kr, nk; /* rows [qr, qr+nq) of the q progression, [kr, kr+nk) of the k progression */
    int64_t qa, qb, ka, kb; /* their first and last positions */
    int partial;            /* the band cuts through the tile: mask per element */
} tile;

typedef struct tile_iter {
    const pare_attn_entry *e;
    int64_t tq, tk, kc, lo, hi; /* kc: keys below L; hi: capped at 0 when causal */
    int64_t qr, nq, kr, kend;
} tile_iter;

static void iter_init(tile_iter *it, const pare_attn_entry *e, int64_t L, int causal, int64_t tq, int64_t tk)
{
    it->e = e, it->tq = tq, it->tk = tk, it->kc = prog_below(e->k, L);
    it->lo = e->lo, it->hi = causal && e->hi > 0 ? 0 : e->hi;
    it->qr = it->nq = it->kr = it->kend = 0;
}

/* Next tile of the entry, or 0 when done. Per query tile, only the keys the band allows for some of
 * its queries ([qa + lo, qb + hi]) and that are below L are visited. */
static int iter_next(tile_iter *it, tile *t)
{
    const pare_attn_entry *e = it->e;
    const int64_t qs = e->q.stride, ks = e->k.stride;
    while (it->kr >= it->kend) {
        it->qr += it->nq;
        if (it->qr >= e->q.count || it->kc == 0 || it->lo > it->hi) return 0;
        it->nq = min64(it->tq, e->q.count - it->qr);
        const int64_t qa = e->q.start + qs * it->qr, qb = qa + qs * (it->nq - 1);
        it->kr = max64(0, ceildiv(qa + it->lo - e->k.start, ks));
        it->kend = min64(it->kc, floordiv(qb + it->hi - e->k.start, ks) + 1);
    }
    t->qr = it->qr, t->nq = it->nq, t->kr = it->kr, t->nk = min64(it->tk, it->kend - it->kr);
    it->kr += t->nk;
    t->qa = e->q.start + qs * t->qr, t->qb = t->qa + qs * (t->nq - 1);
    t->ka = e->k.start + ks * t->kr, t->kb = t->ka + ks * (t->nk - 1);
    t->partial = !(t->ka - t->qb >= it->lo && t->kb - t->qa <= it->hi);
    return 1;
}

/* Visible columns [*c0, *c1) of tile row with query position i. */
static inline void row_range(const tile_iter *it, const tile *t, int64_t i, int64_t *c0, int64_t *c1)
{
    if (!t->partial) {
        *c0 = 0, *c1 = t->nk;
        return;
    }
    const int64_t ks = it->e->k.stride;
    *c0 = max64(0, ceildiv(i + it->lo - t->ka, ks));
    *c1 = min64(t->nk, floordiv(i + it->hi - t->ka, ks) + 1);
    if (*c1 < *c0) *c1 = *c0;
}

int64_t pare_attn_pattern_pairs(const pare_attn_pattern *p, int64_t h, int64_t L)
{
    int64_t n = 0;
    for (int64_t e = p->head[h]; e < p->head[h + 1]; e++) {
        tile_iter it;
        tile t;
        iter_init(&it, &p->e[e], L, p->causal, p->tq, p->tk);
        while (iter_next(&it, &t)) n += t.nq * t.nk;
    }
    return n;
}

/* ---- forward ---- */

static size_t slot_floats(const pare_attn_pattern *p)
{
    const size_t tile = (size_t)(p->tq * p->tk), T = (size_t)p->T, fwd = tile + 2 * T, bwd = 2 * tile + T;
    return fwd > bwd ? fwd : bwd;
}

/* Start of a pair: m = −inf, l = 0, o = 0 (o accumulates unnormalised). */
NN_INLINE void pair_begin(int64_t T, float *m, float *l, float *o, int64_t ldo, int64_t D)
{
    for (int64_t i = 0; i < T; i++) {
        m[i] = -INFINITY, l[i] = 0.0f;
        memset(o + i * ldo, 0, (size_t)D * sizeof(float));
    }
}

/* The online softmax of one tile's scores S (nq, nk, row stride tk), in place: S becomes P = exp(S − m_i')
 * (0 outside the band), l and m are updated and the rows of o rescaled by e^{m_i − m_i'}. */
NN_INLINE void tile_softmax(const tile_iter *it, const tile *t, float *S, int64_t tk, float *m, float *l, float *o,
                                int64_t ldo, int64_t D)
{
    const int64_t qs = it->e->q.stride;
    for (int64_t r = 0; r < t->nq; r++) {
        const int64_t i = t->qa + r * qs;
        float *s = S + r * tk;
        int64_t c0, c1;
        row_range(it, t, i, &c0, &c1);
        if (c0 == c1) {
            memset(s, 0, (size_t)t->nk * sizeof(float));
            continue;
        }
        const float mx = nn_rowmax(s + c0, c1 - c0), mi = m[i], mn = mx > mi ? mx : mi;
        const float alpha = nn_expf(mi - mn); /* 0 when m_i = −inf */
        float sum = 0.0f;
        for (int64_t c = 0; c < c0; c++) s[c] = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = c0; c < c1; c++) {
            s[c] = nn_expf(s[c] - mn);
            sum += s[c];
        }
        for (int64_t c = c1; c < t->nk; c++) s[c] = 0.0f;
        l[i] = alpha * l[i] + sum;
        m[i] = mn;
        if (alpha != 1.0f) {
            float *orow = o + i * ldo;
#pragma omp simd
            for (int64_t d = 0; d < D; d++) orow[d] *= alpha;
        }
    }
}

/* End of a pair: O_i /= l_i, lse_i = m_i + log l_i (−inf for a row that saw no key). */
NN_INLINE void pair_end(int64_t T, const float *m, const float *l, float *o, int64_t ldo, float *lse, int64_t D)
{
    for (int64_t i = 0; i < T; i++) {
        if (l[i] > 0.0f) {
            const float inv = 1.0f / l[i];
            float *orow = o + i * ldo;
#pragma omp simd
            for (int64_t d = 0; d < D; d++) orow[d] *= inv;
            lse[i] = m[i] + logf(l[i]);
        } else {
            lse[i] = -INFINITY;
        }
    }
}

/* One (b, h) pair. q, k, v, o point at the pair's row 0, column 0 of its head. */
PARE_HOT static int64_t pair_forward(const pare_attn_pattern *p, int64_t h, int64_t L, float *o, int64_t ldo,
                                     float *lse, float *slot, const float *q, const float *k, const float *v,
                                     int64_t ld, int64_t D)
{
    const int64_t T = p->T, tk = p->tk;
    const float scale = 1.0f / sqrtf((float)D);
    float *S = slot, *m = S + p->tq * tk, *l = m + T;
    int64_t pairs = 0;
    pair_begin(T, m, l, o, ldo, D);
    for (int64_t ei = p->head[h]; ei < p->head[h + 1]; ei++) {
        const pare_attn_entry *e = &p->e[ei];
        const int64_t qs = e->q.stride, ks = e->k.stride;
        tile_iter it;
        tile t;
        iter_init(&it, e, L, p->causal, p->tq, tk);
        while (iter_next(&it, &t)) {
            pairs += t.nq * t.nk;
            /* S (nq,nk) = scale · Q_t · K_t^T */
            pare_sgemm(0, 1, t.nq, t.nk, D, scale, q + t.qa * ld, ld * qs, k + t.ka * ld, ld * ks, 0.0f, S, tk);
            tile_softmax(&it, &t, S, tk, m, l, o, ldo, D);
            /* O_t += P · V_t */
            pare_sgemm(0, 0, t.nq, D, t.nk, 1.0f, S, tk, v + t.ka * ld, ld * ks, 1.0f, o + t.qa * ldo, ldo * qs);
        }
    }
    pair_end(T, m, l, o, ldo, lse, D);
    return pairs;
}

pare_status pare_attn_pattern_forward(const pare_attn *a, const pare_attn_args *x)
{
    const pare_attn_pattern *p = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo;
    const size_t slot = slot_floats(p) * sizeof(float);
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
    float *lse = x->cache; /* (B,H,T) */
    int64_t pairs = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) reduction(+ : pairs) if (nt > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, off = b * T * ld + h * D;
        float *s = (float *)((char *)x->work + slot * (size_t)omp_get_thread_num());
        pairs += pair_forward(p, h, pare_attn_len(x->lengths, b, T), x->out + b * T * ldo + h * D, ldo, lse + bh * T, s,
                              x->q + off, x->k + off, x->v + off, ld, D);
    }
    if (x->pairs) *x->pairs = pairs;
    return PARE_OK;
}

/* ---- bf16 forward ----
 * The same tiles, softmax and cache; the two products on bf16 operands (kernels/attn_half.h): per tile the
 * keys and values are packed into the slot (tk·D each, against tq·tk·D multiply-adds), S = scale·Q_t·K_tᵀ with
 * f32 accumulation, the online softmax in f32, and O_t += bf16(P)·V_t — P rounded relative to the running
 * max of its tile, as FlashAttention's bf16 kernels do. */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Slot of the bf16 forward: S, m, l (as forward) | packed K tile | packed V tile | kernel scratch. */
static size_t slot16_bytes(const pare_attn_pattern *p, int64_t D)
{
    return align64((size_t)(p->tq * p->tk + 2 * p->T) * sizeof(float)) + align64(pare_attn16_kpack_bytes(p->tk, D)) +
           align64(pare_attn16_vpack_bytes(p->tk, D)) + align64(pare_attn16_scratch_bytes(p->tq, p->tk, D));
}

size_t pare_attn_pattern_slot_bf16(const pare_attn *a) { return slot16_bytes(a->state, a->D); }

PARE_HOT static int64_t pair_forward16(const pare_attn_pattern *p, pare_attn16_impl im, int64_t h, int64_t L, float *o,
                                       int64_t ldo, float *lse, char *slot, const uint16_t *q, const uint16_t *k,
                                       const uint16_t *v, int64_t ld, int64_t D)
{
    const int64_t T = p->T, tk = p->tk;
    const float scale = 1.0f / sqrtf((float)D);
    float *S = (float *)slot, *m = S + p->tq * tk, *l = m + T;
    char *kp = slot + align64((size_t)(p->tq * tk + 2 * T) * sizeof(float)), *vp = kp + align64(pare_attn16_kpack_bytes(tk, D)),
         *scr = vp + align64(pare_attn16_vpack_bytes(tk, D));
    int64_t pairs = 0;
    pair_begin(T, m, l, o, ldo, D);
    for (int64_t ei = p->head[h]; ei < p->head[h + 1]; ei++) {
        const pare_attn_entry *e = &p->e[ei];
        const int64_t qs = e->q.stride, ks = e->k.stride;
        tile_iter it;
        tile t;
        iter_init(&it, e, L, p->causal, p->tq, tk);
        while (iter_next(&it, &t)) {
            pairs += t.nq * t.nk;
            /* S (nq,nk) = scale · Q_t · K_t^T, bf16 products, f32 sums */
            pare_attn16_pack_k(im, kp, k + t.ka * ld, ld * ks, t.nk, D);
            pare_attn16_qk(im, S, tk, q + t.qa * ld, ld * qs, t.nq, kp, t.nk, D, scale, scr);
            tile_softmax(&it, &t, S, tk, m, l, o, ldo, D);
            /* O_t += bf16(P) · V_t */
            pare_attn16_pack_v(im, vp, v + t.ka * ld, ld * ks, t.nk, D);
            pare_attn16_pv(im, o + t.qa * ldo, ldo * qs, 1.0f, S, tk, t.nq, vp, t.nk, D, scr);
        }
    }
    pair_end(T, m, l, o, ldo, lse, D);
    return pairs;
}

pare_status pare_attn_pattern_forward_bf16(const pare_attn *a, const pare_attn_args *x)
{
    const pare_attn_pattern *p = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo;
    const size_t slot = slot16_bytes(p, D);
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
    const pare_attn16_impl im = pare_attn16_resolve((pare_attn16_impl)x->impl16);
    float *lse = x->cache; /* (B,H,T) */
    int64_t pairs = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) reduction(+ : pairs) if (nt > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, off = b * T * ld + h * D;
        char *s = (char *)x->work + slot * (size_t)omp_get_thread_num();
        pairs += pair_forward16(p, im, h, pare_attn_len(x->lengths, b, T), x->out + b * T * ldo + h * D, ldo,
                                lse + bh * T, s, x->q16 + off, x->k16 + off, x->v16 + off, ld, D);
    }
    if (x->pairs) *x->pairs = pairs;
    return PARE_OK;
}

/* ---- backward ---- */

PARE_HOT static void pair_backward(const pare_attn_pattern *p, int64_t h, int64_t L, float *dq, float *dk, float *dv,
                                   int64_t ldd, float *slot, const float *dO, const float *o, int64_t ldo,
                                   const float *lse, const float *q, const float *k, const float *v, int64_t ld,
                                   int64_t D)
{
    const int64_t T = p->T, tk = p->tk;
    const float scale = 1.0f / sqrtf((float)D);
    float *P = slot, *dP = P + p->tq * tk, *Dv = dP + p->tq * tk;
    for (int64_t i = 0; i < T; i++) { /* Dv_i = dO_i · O_i = Σ_j P_ij dP_ij */
        const float *g = dO + i * ldo, *y = o + i * ldo;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t d = 0; d < D; d++) s += g[d] * y[d];
        Dv[i] = s;
    }
    for (int64_t ei = p->head[h]; ei < p->head[h + 1]; ei++) {
        const pare_attn_entry *e = &p->e[ei];
        const int64_t qs = e->q.stride, ks = e->k.stride;
        tile_iter it;
        tile t;
        iter_init(&it, e, L, p->causal, p->tq, tk);
        while (iter_next(&it, &t)) {
            const float *Qt = q + t.qa * ld, *Kt = k + t.ka * ld, *Vt = v + t.ka * ld, *dOt = dO + t.qa * ldo;
            /* recompute P = exp(scale · Q_t K_t^T − lse) */
            pare_sgemm(0, 1, t.nq, t.nk, D, scale, Qt, ld * qs, Kt, ld * ks, 0.0f, P, tk);
            for (int64_t r = 0; r < t.nq; r++) {
                const int64_t i = t.qa + r * qs;
                float *s = P + r * tk;
                int64_t c0, c1;
                row_range(&it, &t, i, &c0, &c1);
                const float li = lse[i];
                if (li == -INFINITY) c1 = c0;
                for (int64_t c = 0; c < c0; c++) s[c] = 0.0f;
#pragma omp simd
                for (int64_t c = c0; c < c1; c++) s[c] = nn_expf(s[c] - li);
                for (int64_t c = c1; c < t.nk; c++) s[c] = 0.0f;
            }
            /* dV_t += P^T · dO_t */
            pare_sgemm(1, 0, t.nk, D, t.nq, 1.0f, P, tk, dOt, ldo * qs, 1.0f, dv + t.ka * ldd, ldd * ks);
            /* dP = dO_t · V_t^T, then dS = P ⊙ (dP − Dv_i) in place */
            pare_sgemm(0, 1, t.nq, t.nk, D, 1.0f, dOt, ldo * qs, Vt, ld * ks, 0.0f, dP, tk);
            for (int64_t r = 0; r < t.nq; r++) {
                const float di = Dv[t.qa + r * qs], *pr = P + r * tk;
                float *g = dP + r * tk;
#pragma omp simd
                for (int64_t c = 0; c < t.nk; c++) g[c] = pr[c] * (g[c] - di);
            }
            /* dQ_t += scale · dS · K_t;  dK_t += scale · dS^T · Q_t */
            pare_sgemm(0, 0, t.nq, D, t.nk, scale, dP, tk, Kt, ld * ks, 1.0f, dq + t.qa * ldd, ldd * qs);
            pare_sgemm(1, 0, t.nk, D, t.nq, scale, dP, tk, Qt, ld * qs, 1.0f, dk + t.ka * ldd, ldd * ks);
        }
    }
}

pare_status pare_attn_pattern_backward(const pare_attn *a, const pare_attn_args *x)
{
    const pare_attn_pattern *p = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo, ldd = x->ldd;
    const size_t slot = slot_floats(p) * sizeof(float);
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
    const float *lse = x->cache;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, off = b * T * ld + h * D, doff = b * T * ldd + h * D,
                      ooff = b * T * ldo + h * D;
        float *s = (float *)((char *)x->work + slot * (size_t)omp_get_thread_num());
        pair_backward(p, h, pare_attn_len(x->lengths, b, T), x->dq + doff, x->dk + doff, x->dv + doff, ldd, s,
                      x->dout + ooff, x->out + ooff, ldo, lse + bh * T, x->q + off, x->k + off, x->v + off, ld, D);
    }
    return PARE_OK;
}

/* ---- cost and mask ---- */

void pare_attn_pattern_cost(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    const pare_attn_pattern *p = a->state;
    const int64_t D = a->D, rows = B * a->H * a->T;
    int64_t per = 0;
    for (int64_t h = 0; h < a->H; h++) per += pare_attn_pattern_pairs(p, h, a->T);
    c->pairs = B * per;
    c->flops_fwd = c->pairs * (4 * D + 6) + rows * D;   /* QK^T, PV; max, exp, sum; final 1/l */
    c->flops_bwd = c->pairs * (10 * D + 6) + rows * 2 * D; /* S again, dV, dP, dQ, dK; exp, dS; Dv */
    c->cache_bytes = (size_t)rows * sizeof(float);      /* lse (B,H,T) */
    c->slot_bytes = slot_floats(p) * sizeof(float);
}

void pare_attn_pattern_mask(const pare_attn *a, int64_t h, uint8_t *mask)
{
    const pare_attn_pattern *p = a->state;
    const int64_t T = a->T;
    memset(mask, 0, (size_t)(T * T));
    for (int64_t ei = p->head[h]; ei < p->head[h + 1]; ei++) {
        const pare_attn_entry *e = &p->e[ei];
        const int64_t hi = p->causal && e->hi > 0 ? 0 : e->hi;
        for (int64_t r = 0; r < e->q.count; r++) {
            const int64_t i = e->q.start + r * e->q.stride;
            for (int64_t c = 0; c < e->k.count; c++) {
                const int64_t j = e->k.start + c * e->k.stride, d = j - i;
                if (d >= e->lo && d <= hi && mask[i * T + j] < 255) mask[i * T + j]++;
            }
        }
    }
}
