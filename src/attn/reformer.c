/* reformer.c — Reformer LSH attention (Kitaev et al. 2020, "Reformer: The Efficient Transformer", §2):
 * kind "reformer".
 *
 * Shared QK: the keys are the normalised queries, k_j = q_j / |q_j| (the k input is not read and dk is not
 * touched). Per hash round r (option `hashes`) and head, a random rotation R (D, n_b/2) drawn from `seed`
 * assigns bucket h(q) = argmax([qR; −qR]) (n_b = T / bucket buckets; one bucket when bucket = T). Tokens
 * are sorted by (bucket, position) and cut into chunks of `bucket` tokens; a query attends to the keys of
 * its own chunk and of the previous one (chunk 0's previous is the last, as in the paper's code).
 * A token does not attend to itself unless nothing else is available: its own score is replaced by −1e5
 * (the paper's rule), so it gets weight only when it is the only visible key. Causal masks key j > i
 * (positions, not sorted order); padding masks keys j >= L. The rounds are combined as one softmax over
 * the union of their pairs, a pair seen in two rounds counting twice (the paper's combination by
 * log-sum-exp weights; no duplicate correction). Keys of a chunk are not masked by bucket equality
 * (chunks may straddle buckets; they are then attended, as in the reference implementation).
 *
 * Per (b, h) one thread: online softmax over the rounds' chunks (running max and sum per query, the
 * output accumulated in `out`); cache = the log-sum-exp (B,H,T). Backward recomputes the probabilities
 * p = exp(s − lse): dV += p dO, ds = p (dO·v − dO·O), dQ_i += scale ds k_j (not for the constant self
 * score), dk_j += scale ds q_i, then through the normalisation dq_j += (dk_j − k_j (k_j·dk_j)) / |q_j|.
 * The hash is piecewise constant (no gradient).
 *
 * Cost per (b, h): pairs = hashes · T · (2·bucket, or bucket with one chunk); FLOPs ≈ pairs·(4D + 6) +
 * hashing hashes·T·D·n_b (n_b = T/bucket: a small T² term, as in the paper); cache T floats; slot
 * (2·T·D + 6·T + n_b + 2·bucket) floats. Pairs linear in T.
 * Entry points: pare_attn_reformer; pare_attn_reformer_buckets (the hash of each token, for tests).
 * Deliberately not here: reversible layers and chunked feed-forward (the paper's other two ideas), a
 * separate k projection (shared QK is the method), duplicate-pair correction across rounds.
 */
#include "attn/attn_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"

#define REF_SELF (-1e5f) /* the score of a token with itself */

static const pare_opt_spec reformer_opts[] = {
    {"bucket", PARE_OPT_INT, "64", 1, 1 << 24, NULL,
     "bucket and chunk size; T / bucket buckets (must divide T; the count must be 1 or even)"},
    {"hashes", PARE_OPT_INT, "1", 1, 64, NULL, "hash rounds (each a random rotation)"},
    {"seed", PARE_OPT_INT, "0", 0, 2147483647, NULL, "seed of the random rotations"},
};
static const pare_schema reformer_schema = {
    "reformer", "Reformer LSH attention: shared QK, random-rotation buckets, chunked attention; O(T·bucket)",
    reformer_opts, 3};

typedef struct ref_state {
    int64_t c, nb, nr, nchunks; /* bucket/chunk size, buckets, rounds, chunks */
    float *R;                   /* (H, nr, D, nb/2) */
} ref_state;

static void reformer_free(pare_attn *a)
{
    ref_state *s = a->state;
    if (s) free(s->R);
    free(s);
}

static pare_status reformer_init(pare_attn *a)
{
    const int64_t c = pare_opt_int(&a->opts, "bucket"), T = a->T;
    if (c > T || T % c)
        return pare_fail(PARE_EINVAL, "reformer: option 'bucket' = %lld must divide T=%lld", (long long)c,
                         (long long)T);
    const int64_t nb = T / c;
    if (nb > 1 && nb % 2)
        return pare_fail(PARE_EINVAL,
                         "reformer: option 'bucket' = %lld gives %lld buckets for T=%lld; the count must be 1 or even "
                         "(argmax over [xR; -xR])", (long long)c, (long long)nb, (long long)T);
    ref_state *s = calloc(1, sizeof *s);
    if (!s) return pare_fail(PARE_ENOMEM, "reformer: out of memory");
    s->c = c, s->nb = nb, s->nr = pare_opt_int(&a->opts, "hashes"), s->nchunks = nb;
    const int64_t half = nb / 2, n = a->H * s->nr * a->D * half;
    s->R = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!s->R) {
        free(s);
        return pare_fail(PARE_ENOMEM, "reformer: out of memory");
    }
    pare_rng r;
    pare_rng_seed(&r, (uint64_t)pare_opt_int(&a->opts, "seed"));
    for (int64_t e = 0; e < n; e++) s->R[e] = (float)pare_rng_normal(&r);
    a->state = s;
    return PARE_OK;
}

static size_t ref_slot_floats(const pare_attn *a)
{
    const ref_state *s = a->state;
    return (size_t)(2 * a->T * a->D + 6 * a->T + s->nb + 2 * s->c + 1);
}

/* Bucket of every token for round r of head h, then the sorted order perm (counting sort, stable). */
PARE_HOT static void ref_sort(const pare_attn *a, int64_t h, int64_t r, int32_t *perm, int32_t *bkt, int32_t *cnt,
                     const float *q, int64_t ld)
{
    const ref_state *s = a->state;
    const int64_t T = a->T, D = a->D, half = s->nb / 2;
    const float *R = s->R + (h * s->nr + r) * D * half;
    float *y = (float *)cnt; /* (half) scratch: cnt (n_b + 1 ints) is filled only afterwards */
    for (int64_t t = 0; t < T; t++) {
        int32_t best = 0;
        if (half > 0) {
            for (int64_t u = 0; u < half; u++) y[u] = 0.0f;
            for (int64_t d = 0; d < D; d++) { /* y = q_t R, rows of R contiguous */
                const float qd = q[t * ld + d];
#pragma omp simd
                for (int64_t u = 0; u < half; u++) y[u] += qd * R[d * half + u];
            }
            float bv = -INFINITY;
            for (int64_t u = 0; u < half; u++) {
                if (y[u] > bv) bv = y[u], best = (int32_t)u;
                if (-y[u] > bv) bv = -y[u], best = (int32_t)(u + half);
            }
        }
        bkt[t] = best;
    }
    for (int64_t b = 0; b <= s->nb; b++) cnt[b] = 0;
    for (int64_t t = 0; t < T; t++) cnt[bkt[t] + 1]++;
    for (int64_t b = 0; b < s->nb; b++) cnt[b + 1] += cnt[b];
    for (int64_t t = 0; t < T; t++) perm[cnt[bkt[t]]++] = (int32_t)t;
}

/* For tests: the bucket of each of the T rows of q (stride ld) in round r of head h (bkt, T). */
void pare_attn_reformer_buckets(const pare_attn *a, int64_t h, int64_t r, const float *q, int64_t ld, int32_t *bkt)
{
    const ref_state *s = a->state;
    int32_t *perm = malloc((size_t)a->T * sizeof *perm), *cnt = malloc((size_t)(s->nb + 1) * sizeof *cnt);
    if (perm && cnt) ref_sort(a, h, r, perm, bkt, cnt, q, ld);
    free(perm);
    free(cnt);
}

/* Normalised keys kn (T, D) from q; inverse norms in inv (T). */
static void ref_keys(float *kn, float *inv, const float *q, int64_t ld, int64_t T, int64_t D)
{
    for (int64_t t = 0; t < T; t++) {
        float n2 = 0.0f;
        for (int64_t d = 0; d < D; d++) n2 += q[t * ld + d] * q[t * ld + d];
        inv[t] = n2 > 0.0f ? 1.0f / sqrtf(n2) : 0.0f;
        for (int64_t d = 0; d < D; d++) kn[t * D + d] = q[t * ld + d] * inv[t];
    }
}

/* Keys of chunk ch: own chunk, then the previous one (if there are two or more chunks). */
static inline int64_t ref_keyset(const ref_state *s, int64_t ch, int64_t *k0, int64_t *k1)
{
    *k0 = ch * s->c;
    *k1 = ((ch + s->nchunks - 1) % s->nchunks) * s->c;
    return s->nchunks > 1 ? 2 : 1;
}

PARE_HOT static pare_status reformer_forward(const pare_attn *a, const pare_attn_args *x)
{
    const ref_state *s = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo, c = s->c;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t slot = ref_slot_floats(a) * sizeof(float);
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
    int64_t pairs = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1) reduction(+ : pairs)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T);
        const float *q = x->q + b * T * ld + h * D, *v = x->v + b * T * ld + h * D;
        float *o = x->out + b * T * ldo + h * D, *lse = (float *)x->cache + bh * T;
        float *kn = (float *)((char *)x->work + slot * (size_t)omp_get_thread_num()), *inv = kn + 2 * T * D,
              *mx = inv + T, *sum = mx + T, *sc = sum + T;
        int32_t *perm = (int32_t *)(sc + 2 * c), *bkt = perm + T, *cnt = bkt + T;
        ref_keys(kn, inv, q, ld, T, D);
        for (int64_t i = 0; i < T; i++) {
            mx[i] = -INFINITY, sum[i] = 0.0f;
            memset(o + i * ldo, 0, (size_t)D * sizeof(float));
        }
        for (int64_t r = 0; r < s->nr; r++) {
            ref_sort(a, h, r, perm, bkt, cnt, q, ld);
            for (int64_t ch = 0; ch < s->nchunks; ch++) {
                int64_t ks[2];
                const int64_t nks = ref_keyset(s, ch, &ks[0], &ks[1]);
                for (int64_t qi = ch * c; qi < ch * c + c; qi++) {
                    const int64_t i = perm[qi];
                    float rm = -INFINITY;
                    int64_t n = 0;
                    for (int64_t g = 0; g < nks; g++)
                        for (int64_t kk = ks[g]; kk < ks[g] + c; kk++, n++) {
                            const int64_t j = perm[kk];
                            if (j >= L || (a->causal && j > i)) {
                                sc[n] = -INFINITY;
                                continue;
                            }
                            float d = 0.0f;
                            for (int64_t e = 0; e < D; e++) d += q[i * ld + e] * kn[j * D + e];
                            sc[n] = j == i ? REF_SELF : scale * d;
                            rm = sc[n] > rm ? sc[n] : rm;
                        }
                    pairs += n;
                    if (rm == -INFINITY) continue;
                    /* online softmax: merge this chunk's row into the running (max, sum, out) of query i */
                    float *oi = o + i * ldo;
                    if (rm > mx[i]) {
                        const float f = mx[i] == -INFINITY ? 0.0f : expf(mx[i] - rm);
                        sum[i] *= f;
                        for (int64_t e = 0; e < D; e++) oi[e] *= f;
                        mx[i] = rm;
                    }
                    n = 0;
                    for (int64_t g = 0; g < nks; g++)
                        for (int64_t kk = ks[g]; kk < ks[g] + c; kk++, n++) {
                            if (sc[n] == -INFINITY) continue;
                            const int64_t j = perm[kk];
                            const float p = expf(sc[n] - mx[i]);
                            sum[i] += p;
                            for (int64_t e = 0; e < D; e++) oi[e] += p * v[j * ld + e];
                        }
                }
            }
        }
        for (int64_t i = 0; i < T; i++) {
            const float invs = sum[i] > 0.0f ? 1.0f / sum[i] : 0.0f;
            for (int64_t e = 0; e < D; e++) o[i * ldo + e] *= invs;
            lse[i] = sum[i] > 0.0f ? mx[i] + logf(sum[i]) : -INFINITY;
        }
    }
    if (x->pairs) *x->pairs = pairs;
    return PARE_OK;
}

PARE_HOT static pare_status reformer_backward(const pare_attn *a, const pare_attn_args *x)
{
    const ref_state *s = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, BH = x->B * H, ld = x->ld, ldo = x->ldo, ldd = x->ldd, c = s->c;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t slot = ref_slot_floats(a) * sizeof(float);
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T);
        const float *q = x->q + b * T * ld + h * D, *v = x->v + b * T * ld + h * D, *lse = (const float *)x->cache + bh * T;
        const float *o = x->out + b * T * ldo + h * D, *dO = x->dout + b * T * ldo + h * D;
        float *dq = x->dq + b * T * ldd + h * D, *dv = x->dv + b * T * ldd + h * D;
        float *kn = (float *)((char *)x->work + slot * (size_t)omp_get_thread_num()), *dkn = kn + T * D,
              *inv = dkn + T * D, *Dv = inv + T, *sc = Dv + 2 * T;
        int32_t *perm = (int32_t *)(sc + 2 * c), *bkt = perm + T, *cnt = bkt + T;
        ref_keys(kn, inv, q, ld, T, D);
        memset(dkn, 0, (size_t)(T * D) * sizeof(float));
        for (int64_t i = 0; i < T; i++) {
            float d = 0.0f;
            for (int64_t e = 0; e < D; e++) d += dO[i * ldo + e] * o[i * ldo + e];
            Dv[i] = d;
        }
        for (int64_t r = 0; r < s->nr; r++) {
            ref_sort(a, h, r, perm, bkt, cnt, q, ld);
            for (int64_t ch = 0; ch < s->nchunks; ch++) {
                int64_t ks[2];
                const int64_t nks = ref_keyset(s, ch, &ks[0], &ks[1]);
                for (int64_t qi = ch * c; qi < ch * c + c; qi++) {
                    const int64_t i = perm[qi];
                    if (lse[i] == -INFINITY) continue;
                    for (int64_t g = 0; g < nks; g++)
                        for (int64_t kk = ks[g]; kk < ks[g] + c; kk++) {
                            const int64_t j = perm[kk];
                            if (j >= L || (a->causal && j > i)) continue;
                            float d = 0.0f, dp = 0.0f;
                            for (int64_t e = 0; e < D; e++) d += q[i * ld + e] * kn[j * D + e];
                            const float sij = j == i ? REF_SELF : scale * d, p = expf(sij - lse[i]);
                            for (int64_t e = 0; e < D; e++) dv[j * ldd + e] += p * dO[i * ldo + e], dp += dO[i * ldo + e] * v[j * ld + e];
                            if (j == i) continue; /* the self score is a constant */
                            const float ds = scale * p * (dp - Dv[i]);
                            for (int64_t e = 0; e < D; e++) dq[i * ldd + e] += ds * kn[j * D + e], dkn[j * D + e] += ds * q[i * ld + e];
                        }
                }
            }
        }
        for (int64_t j = 0; j < T; j++) { /* k_j = q_j / |q_j| */
            float dot = 0.0f;
            for (int64_t e = 0; e < D; e++) dot += kn[j * D + e] * dkn[j * D + e];
            for (int64_t e = 0; e < D; e++) dq[j * ldd + e] += (dkn[j * D + e] - kn[j * D + e] * dot) * inv[j];
        }
    }
    return PARE_OK;
}

static void reformer_cost(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    const ref_state *s = a->state;
    const int64_t BH = B * a->H, T = a->T, D = a->D;
    c->pairs = BH * s->nr * T * s->c * (s->nchunks > 1 ? 2 : 1);
    const int64_t hash = BH * s->nr * T * D * s->nb + BH * 3 * T * D;
    c->flops_fwd = c->pairs * (4 * D + 6) + hash;
    c->flops_bwd = c->pairs * (8 * D + 6) + hash + BH * 6 * T * D;
    c->cache_bytes = (size_t)(BH * T) * sizeof(float);
    c->slot_bytes = ref_slot_floats(a) * sizeof(float);
}

const pare_attn_variant pare_attn_reformer = {
    .schema = &reformer_schema,
    .can_be_causal = 1,
    .causal_note = "keys after the query (by position) masked inside the chunks",
    .init = reformer_init,
    .free = reformer_free,
    .forward = reformer_forward,
    .backward = reformer_backward,
    .cost = reformer_cost,
};
