/* performer.c — Performer FAVOR+ (Choromanski et al. 2021, "Rethinking Attention with Performers"):
 * kind "performer".
 *
 * The softmax kernel exp(q·k/√D) = exp(q'·k') with x' = x / D^{1/4} is estimated with m positive random
 * features φ(x) = exp(W x' − |x'|²/2) / √m, rows w_r of W (m, D) drawn N(0, I_D): E[φ(q)·φ(k)] = exp(q'·k')
 * exactly (positive estimator, Lemma 1). With `orthogonal` (default) the rows come in blocks of D made
 * exactly orthogonal (Gram–Schmidt of a Gaussian block) and rescaled to norms of independent Gaussian
 * vectors (chi(D)), which keeps each row's marginal N(0, I) and lowers the variance (ORF, §2.4).
 * W is drawn once per head at creation from `seed` (deterministic) and stays fixed: it is not a parameter.
 * The attention itself is linear.c's feature core: bidirectional φ(Q)(φ(K)ᵀV) / φ(Q)·Σφ(K), causal by
 * prefix sums; padded keys are left out of the sums.
 *
 * Stability: the query features of row i are multiplied by exp(−max_r a_ir) and all key features of a
 * sequence by exp(−max_{j<L, r} a_jr) (a = W x' − |x'|²/2); both factors cancel between numerator and
 * denominator, so the output and its exact gradient do not depend on them and backward treats them as
 * constants (as the reference implementation does).
 *
 * Backward of the map: da = dφ ⊙ φ, dx' = Wᵀ da − (Σ_r da_r) x', dx = dx' / D^{1/4}.
 * Cost per (b, h): features 2·T·m·D each, attention ≈ 4·T·m·D forward; memory as linear.c (no cache).
 * Entry points: pare_attn_performer; pare_attn_performer_w (the features of head h, for tests).
 * Deliberately not here: redrawing W during training (the caller can re-create with another seed),
 * other kernels (ReLU features, FAVOR with trig features), the paper's numerical epsilon.
 */
#include "attn/attn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm.h"
#include "kernels/nn_internal.h"

static const pare_opt_spec performer_opts[] = {
    {"features", PARE_OPT_INT, "128", 1, 65536, NULL, "number m of random features (error ~ 1/sqrt(m))"},
    {"orthogonal", PARE_OPT_BOOL, "true", 0, 0, NULL, "orthogonal random features (blocks of D orthogonal rows)"},
    {"seed", PARE_OPT_INT, "0", 0, 2147483647, NULL, "seed of the random features (one draw per head)"},
};
static const pare_schema performer_schema = {
    "performer", "Performer FAVOR+: positive orthogonal random features for the softmax kernel; O(T·m·D)",
    performer_opts, 3};

typedef struct perf_state {
    int64_t m;
    float *W; /* (H, m, D) */
} perf_state;

static void perf_free(pare_attn *a)
{
    perf_state *s = a->state;
    if (s) free(s->W);
    free(s);
}

/* W (m, D) of one head: Gaussian rows, or orthogonal blocks with chi(D) norms. */
static void draw_features(float *W, int64_t m, int64_t D, int orthogonal, pare_rng *r)
{
    double *blk = malloc((size_t)(D * D) * sizeof *blk);
    for (int64_t r0 = 0; r0 < m; r0 += D) {
        const int64_t nr = r0 + D < m ? D : m - r0;
        for (int64_t e = 0; e < D * D; e++) blk[e] = pare_rng_normal(r);
        if (orthogonal) {
            for (int64_t i = 0; i < D; i++) { /* modified Gram–Schmidt on the rows */
                double *bi = blk + i * D;
                for (int64_t j = 0; j < i; j++) {
                    const double *bj = blk + j * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++) dot += bi[d] * bj[d];
                    for (int64_t d = 0; d < D; d++) bi[d] -= dot * bj[d];
                }
                double nrm = 0;
                for (int64_t d = 0; d < D; d++) nrm += bi[d] * bi[d];
                nrm = sqrt(nrm);
                for (int64_t d = 0; d < D; d++) bi[d] = nrm > 0 ? bi[d] / nrm : 0.0;
            }
            for (int64_t i = 0; i < nr; i++) { /* norm of an independent N(0, I_D) vector */
                double len = 0;
                for (int64_t d = 0; d < D; d++) {
                    const double g = pare_rng_normal(r);
                    len += g * g;
                }
                len = sqrt(len);
                for (int64_t d = 0; d < D; d++) blk[i * D + d] *= len;
            }
        }
        for (int64_t i = 0; i < nr; i++)
            for (int64_t d = 0; d < D; d++) W[(r0 + i) * D + d] = (float)blk[i * D + d];
    }
    free(blk);
}

static pare_status performer_init(pare_attn *a)
{
    perf_state *s = calloc(1, sizeof *s);
    if (!s) return pare_fail(PARE_ENOMEM, "performer: out of memory");
    s->m = pare_opt_int(&a->opts, "features");
    s->W = malloc((size_t)(a->H * s->m * a->D) * sizeof(float));
    if (!s->W) {
        const long long m = (long long)s->m;
        free(s);
        return pare_fail(PARE_ENOMEM, "performer: out of memory for %lld features per head", m);
    }
    pare_rng base;
    pare_rng_seed(&base, (uint64_t)pare_opt_int(&a->opts, "seed"));
    for (int64_t h = 0; h < a->H; h++) {
        pare_rng r = pare_rng_split(&base, (uint64_t)h);
        draw_features(s->W + h * s->m * a->D, s->m, a->D, pare_opt_bool(&a->opts, "orthogonal"), &r);
    }
    a->state = s;
    return PARE_OK;
}

const float *pare_attn_performer_w(const pare_attn *a, int64_t h)
{
    if (a->v->init != performer_init || h < 0 || h >= a->H) return NULL;
    const perf_state *s = a->state;
    return s->W + h * s->m * a->D;
}

/* φ (n, m) of the rows x; n = T for queries, L for keys. */
PARE_HOT static void favor(const pare_attn *a, int64_t h, float *phi, const float *x, int64_t ld, int64_t T,
                           int64_t L, int is_key)
{
    const perf_state *s = a->state;
    const int64_t D = a->D, m = s->m, n = is_key ? L : T;
    if (n == 0) return;
    const float c = 1.0f / sqrtf(sqrtf((float)D)), inv_sqrt_m = 1.0f / sqrtf((float)m);
    pare_sgemm(0, 1, n, m, D, c, x, ld, s->W + h * m * D, D, 0.0f, phi, m); /* W x' */
    float gmax = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float sq = 0.0f, *p = phi + i * m;
        for (int64_t d = 0; d < D; d++) sq += x[i * ld + d] * x[i * ld + d];
        sq *= 0.5f * c * c; /* |x'|²/2 */
        for (int64_t r = 0; r < m; r++) p[r] -= sq;
        if (!is_key) {
            const float mx = nn_rowmax(p, m);
#pragma omp simd
            for (int64_t r = 0; r < m; r++) p[r] = nn_expf(p[r] - mx) * inv_sqrt_m;
        } else {
            const float mx = nn_rowmax(p, m);
            gmax = mx > gmax ? mx : gmax;
        }
    }
    if (is_key)
        for (int64_t i = 0; i < n; i++) {
            float *p = phi + i * m;
#pragma omp simd
            for (int64_t r = 0; r < m; r++) p[r] = nn_expf(p[r] - gmax) * inv_sqrt_m;
        }
}

/* da = dφ ⊙ φ; dx += c·(da W) − c²·(Σ_r da_r)·x */
PARE_HOT static void favor_bwd(const pare_attn *a, int64_t h, float *dx, int64_t ldd, float *dphi, const float *phi,
                               const float *x, int64_t ld, int64_t T, int64_t L, int is_key)
{
    (void)T, (void)is_key;
    const perf_state *s = a->state;
    const int64_t D = a->D, m = s->m, n = L;
    if (n == 0) return;
    const float c = 1.0f / sqrtf(sqrtf((float)D));
    for (int64_t i = 0; i < n; i++) {
        float sum = 0.0f, *da = dphi + i * m;
        const float *p = phi + i * m;
        for (int64_t r = 0; r < m; r++) da[r] *= p[r], sum += da[r];
        for (int64_t d = 0; d < D; d++) dx[i * ldd + d] -= c * c * sum * x[i * ld + d];
    }
    pare_sgemm(0, 0, n, D, m, c, dphi, m, s->W + h * m * D, D, 1.0f, dx, ldd);
}

static pare_status performer_forward(const pare_attn *a, const pare_attn_args *x)
{
    return pare_attn_feature_forward(a, x, ((const perf_state *)a->state)->m, favor);
}
static pare_status performer_backward(const pare_attn *a, const pare_attn_args *x)
{
    return pare_attn_feature_backward(a, x, ((const perf_state *)a->state)->m, favor, favor_bwd);
}
static void performer_cost(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    const int64_t m = ((const perf_state *)a->state)->m;
    pare_attn_feature_cost(a, B, m, a->T * m * (2 * a->D + 4), c);
}

const pare_attn_variant pare_attn_performer = {
    .schema = &performer_schema,
    .can_be_causal = 1,
    .causal_note = "prefix sums of φ(k_j)v_jᵀ and φ(k_j) over j <= i",
    .init = performer_init,
    .free = perf_free,
    .forward = performer_forward,
    .backward = performer_backward,
    .cost = performer_cost,
};
