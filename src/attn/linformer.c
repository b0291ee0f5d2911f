/* linformer.c — Linformer (Wang et al. 2020, "Self-Attention with Linear Complexity"): kind "linformer".
 *
 * Learned length projections E, F (k, T) shrink the keys and values from T rows to k before a softmax:
 *     K' = E K (k, D),  V' = F V (k, D),  out = softmax(scale · Q K'ᵀ) V'   (P: (T, k))
 * Padding: only the valid rows of K and V enter the projections (K' = E[:, :L] K[:L]), so padded keys never
 * reach the output; the k projected slots are always "visible" (with L = 0, K' = V' = 0 and out = 0).
 * Sharing (option `share`, the paper's §4): "head" one E and one F for all heads of the layer (default),
 * "kv" one matrix used as both E and F for all heads, "none" an E_h, F_h per head. Parameters (via
 * param_shapes): E (k·(H or 1), T) then F (same; absent for "kv"); initialised Xavier-normal (fan T, k).
 * Not causal: every projected slot mixes all positions (pare_attn_create refuses causal = 1).
 *
 * Backward per (b, h) (OpenMP): dV' = Pᵀ dO, dP = dO V'ᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ += scale dS K',
 * dK' = scale dSᵀ Q, then dK[:L] += Eᵀ dK', dV[:L] += Fᵀ dV'. The parameter gradients dE += dK' K[:L]ᵀ,
 * dF += dV' V[:L]ᵀ are summed over (b, h) in a fixed serial order afterwards (bit-identical for any thread
 * count); that needs dK', dV' of every pair at once, 2·B·H·k·D floats the call allocates itself (the
 * interface has no backward-only scratch sized by B; see docs/attention.md).
 *
 * Cost per (b, h): pairs T·k; forward ≈ 4·k·T·D (projections) + T·k·(4D + 5); cache P (T, k), K', V'
 * (k, D) floats; slot T·k floats. Linear in T for fixed k.
 * Deliberately not here: causal variants (the paper's masked projections), a different k per layer
 * schedule, parameter sharing across layers (the caller may pass the same params to several layers).
 */
#include "attn/attn.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "kernels/gemm.h"
#include "kernels/nn_internal.h"

static const pare_opt_spec linformer_opts[] = {
    {"k", PARE_OPT_INT, "64", 1, 1 << 24, NULL, "projected length k (<= T)"},
    {"share", PARE_OPT_ENUM, "head", 0, 0, "head|kv|none",
     "head: one E, F for all heads; kv: one matrix as both E and F; none: E, F per head"},
};
static const pare_schema linformer_schema = {
    "linformer", "Linformer: learned projections E, F (k, T) of keys and values along the length; O(T·k)",
    linformer_opts, 2};

typedef struct lin_state {
    int64_t k;
    int per_head, kv; /* share = none; share = kv */
} lin_state;

static pare_status linformer_init(pare_attn *a)
{
    const int64_t k = pare_opt_int(&a->opts, "k");
    if (k > a->T)
        return pare_fail(PARE_EINVAL, "linformer: option 'k' = %lld is larger than T=%lld (valid: 1..T)",
                         (long long)k, (long long)a->T);
    lin_state *s = malloc(sizeof *s);
    if (!s) return pare_fail(PARE_ENOMEM, "linformer: out of memory");
    const char *share = pare_opt_str(&a->opts, "share");
    s->k = k, s->per_head = !strcmp(share, "none"), s->kv = !strcmp(share, "kv");
    a->state = s;
    return PARE_OK;
}

static int linformer_shapes(const pare_attn *a, pare_attn_param *p)
{
    const lin_state *s = a->state;
    const int64_t rows = s->k * (s->per_head ? a->H : 1);
    p[0] = (pare_attn_param){"E", rows, a->T};
    if (s->kv) return 1;
    p[1] = (pare_attn_param){"F", rows, a->T};
    return 2;
}

static void linformer_param_init(const pare_attn *a, float *params, pare_rng *rng)
{
    const lin_state *s = a->state;
    const int64_t n = pare_attn_param_count(a);
    const double sd = sqrt(2.0 / (double)(s->k + a->T));
    for (int64_t i = 0; i < n; i++) params[i] = (float)(sd * pare_rng_normal(rng));
}

/* E_h, F_h (k, T) of head h. */
static inline const float *lin_E(const pare_attn *a, const float *params, int64_t h)
{
    const lin_state *s = a->state;
    return params + (s->per_head ? h * s->k * a->T : 0);
}
static inline const float *lin_F(const pare_attn *a, const float *params, int64_t h)
{
    const lin_state *s = a->state;
    if (s->kv) return lin_E(a, params, h);
    return params + s->k * a->T * (s->per_head ? a->H : 1) + (s->per_head ? h * s->k * a->T : 0);
}

/* cache per (b, h): P (T, k), K' (k, D), V' (k, D) */
static inline int64_t lin_cache_floats(const pare_attn *a) { return ((const lin_state *)a->state)->k * (a->T + 2 * a->D); }

PARE_HOT static pare_status linformer_forward(const pare_attn *a, const pare_attn_args *x)
{
    const lin_state *s = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, K = s->k, BH = x->B * H, ld = x->ld, ldo = x->ldo;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for schedule(dynamic, 1) if (BH > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T), off = b * T * ld + h * D;
        float *P = (float *)x->cache + bh * lin_cache_floats(a), *Kp = P + T * K, *Vp = Kp + K * D;
        float *o = x->out + b * T * ldo + h * D;
        if (L > 0) {
            pare_sgemm(0, 0, K, D, L, 1.0f, lin_E(a, x->params, h), T, x->k + off, ld, 0.0f, Kp, D); /* K' = E K */
            pare_sgemm(0, 0, K, D, L, 1.0f, lin_F(a, x->params, h), T, x->v + off, ld, 0.0f, Vp, D); /* V' = F V */
        } else {
            memset(Kp, 0, (size_t)(2 * K * D) * sizeof(float));
        }
        pare_sgemm(0, 1, T, K, D, scale, x->q + off, ld, Kp, D, 0.0f, P, K); /* S = scale Q K'ᵀ */
        for (int64_t i = 0; i < T; i++) nn_softmax(P + i * K, P + i * K, K);
        pare_sgemm(0, 0, T, D, K, 1.0f, P, K, Vp, D, 0.0f, o, ldo);          /* out = P V' */
    }
    if (x->pairs) *x->pairs = BH * T * K;
    return PARE_OK;
}

PARE_HOT static pare_status linformer_backward(const pare_attn *a, const pare_attn_args *x)
{
    const lin_state *s = a->state;
    const int64_t T = a->T, H = a->H, D = a->D, K = s->k, BH = x->B * H, ld = x->ld, ldo = x->ldo, ldd = x->ldd;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t slot = (size_t)(T * K) * sizeof(float);
    const int nt = pare_attn_threads(x->work_bytes, slot, BH);
    float *G = malloc((size_t)(BH * 2 * K * D) * sizeof(float)); /* dK', dV' of every (b, h) */
    if (!G) return pare_fail(PARE_ENOMEM, "linformer backward: out of memory (%lld floats)", (long long)(BH * 2 * K * D));
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T), off = b * T * ld + h * D,
                      offd = b * T * ldd + h * D;
        const float *P = (const float *)x->cache + bh * lin_cache_floats(a), *Kp = P + T * K, *Vp = Kp + K * D;
        const float *dO = x->dout + b * T * ldo + h * D;
        float *dP = (float *)((char *)x->work + slot * (size_t)omp_get_thread_num()), *dKp = G + bh * 2 * K * D,
              *dVp = dKp + K * D;
        pare_sgemm(1, 0, K, D, T, 1.0f, P, K, dO, ldo, 0.0f, dVp, D);  /* dV' = Pᵀ dO */
        pare_sgemm(0, 1, T, K, D, 1.0f, dO, ldo, Vp, D, 0.0f, dP, K);  /* dP = dO V'ᵀ */
        for (int64_t i = 0; i < T; i++) {                              /* dS = P ⊙ (dP − rowsum(P ⊙ dP)) */
            const float *p = P + i * K;
            float *d = dP + i * K, r = 0.0f;
            for (int64_t j = 0; j < K; j++) r += p[j] * d[j];
            for (int64_t j = 0; j < K; j++) d[j] = p[j] * (d[j] - r);
        }
        pare_sgemm(0, 0, T, D, K, scale, dP, K, Kp, D, 1.0f, x->dq + offd, ldd); /* dQ += scale dS K' */
        pare_sgemm(1, 0, K, D, T, scale, dP, K, x->q + off, ld, 0.0f, dKp, D);   /* dK' = scale dSᵀ Q */
        if (L > 0) {
            pare_sgemm(1, 0, L, D, K, 1.0f, lin_E(a, x->params, h), T, dKp, D, 1.0f, x->dk + offd, ldd); /* Eᵀ dK' */
            pare_sgemm(1, 0, L, D, K, 1.0f, lin_F(a, x->params, h), T, dVp, D, 1.0f, x->dv + offd, ldd); /* Fᵀ dV' */
        }
    }
    /* dE += dK' K[:L]ᵀ, dF += dV' V[:L]ᵀ in the fixed order of (b, h) */
    const int64_t nE = K * T * (s->per_head ? H : 1);
    for (int64_t bh = 0; bh < BH; bh++) {
        const int64_t b = bh / H, h = bh % H, L = pare_attn_len(x->lengths, b, T), off = b * T * ld + h * D;
        if (L == 0) continue;
        float *dE = x->dparams + (s->per_head ? h * K * T : 0),
              *dF = s->kv ? dE : x->dparams + nE + (s->per_head ? h * K * T : 0);
        const float *dKp = G + bh * 2 * K * D, *dVp = dKp + K * D;
        pare_sgemm(0, 1, K, L, D, 1.0f, dKp, D, x->k + off, ld, 1.0f, dE, T);
        pare_sgemm(0, 1, K, L, D, 1.0f, dVp, D, x->v + off, ld, 1.0f, dF, T);
    }
    free(G);
    return PARE_OK;
}

static void linformer_cost(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    const lin_state *s = a->state;
    const int64_t T = a->T, D = a->D, K = s->k, BH = B * a->H;
    c->pairs = BH * T * K;
    c->flops_fwd = BH * 4 * K * T * D + c->pairs * (4 * D + 5);
    c->flops_bwd = BH * 8 * K * T * D + c->pairs * (8 * D + 4);
    c->cache_bytes = (size_t)(BH * lin_cache_floats(a)) * sizeof(float);
    c->slot_bytes = (size_t)(T * K) * sizeof(float);
}

const pare_attn_variant pare_attn_linformer = {
    .schema = &linformer_schema,
    .can_be_causal = 0,
    .causal_note = "the projections E, F mix every position into each of the k slots, so future tokens leak",
    .init = linformer_init,
    .forward = linformer_forward,
    .backward = linformer_backward,
    .cost = linformer_cost,
    .param_shapes = linformer_shapes,
    .param_init = linformer_param_init,
};
