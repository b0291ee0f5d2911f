/* test_attn2.c — the approximate and factorised attention variants of src/attn (linear, linformer,
 * performer, reformer, axial, lsra) against references written here from each method's definition.
 *
 * linear: causal == a token-by-token recurrent state update, bidirectional == the dense normalised kernel
 * matrix φ(Q)φ(K)ᵀ. linformer with E = F = I == full. performer: == the kernel matrix of its own features;
 * error vs full falls with the feature count; the kernel estimate is unbiased. reformer with one bucket ==
 * full attention with shared QK and the self rule, and with many buckets == a dense reference built from its
 * bucket assignment. axial == a column-masked attention composed with a row-masked one. lsra: attention heads
 * == full, convolution channels == a naive convolution. All references in double, causal and padded where
 * the method allows. Every variant: a finite-difference check of its backward (q, k, v and learned
 * parameters), thread-count and layout independence. Bad options fail naming the option.
 *
 * The variants are reached through their descriptors (pare_attn_create_opts) rather than the registry:
 * the registry's enum lives in attn.h, which this slice does not own. Deliberately not here: timing.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn_internal.h"
#include "core/rng.h"
#include "tap.h"

extern const pare_attn_variant pare_attn_linear, pare_attn_linformer, pare_attn_performer,
    pare_attn_reformer, pare_attn_axial, pare_attn_lsra;

/* ---- options as "key=value key=value" words ---- */

static pare_attn *make_v(const pare_attn_variant *v, const char *opts, int64_t T, int64_t H, int64_t D, int causal)
{
    pare_kv kv[16];
    char buf[512];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", opts);
    for (char *tok = strtok(buf, " "); tok && n < 16; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = '\0';
        kv[n++] = (pare_kv){tok, PARE_KV_STR, 0, eq + 1};
    }
    pare_options *o = malloc(sizeof *o);
    pare_attn *a = NULL;
    pare_status st = pare_opts_resolve(o, v->schema, kv, n);
    if (st == PARE_OK) st = pare_attn_create_opts(&a, v, o, T, H, D, causal);
    free(o);
    if (st != PARE_OK) diag("create %s {%s} T=%lld: %s", v->schema->name, opts, (long long)T, pare_errmsg());
    return a;
}

static void check_error(const pare_attn_variant *v, const char *opts, int64_t T, int64_t H, int causal,
                        const char *needle)
{
    pare_clear_error();
    pare_attn *a = make_v(v, opts, T, H, 8, causal);
    ok(a == NULL && strstr(pare_errmsg(), needle) != NULL, "%s {%s} T=%lld H=%lld%s rejected naming '%s': %s",
       v->schema->name, opts, (long long)T, (long long)H, causal ? " causal" : "", needle, pare_errmsg());
    pare_attn_free(a);
}

static void fill(float *x, int64_t n, uint64_t seed, float amp)
{
    pare_rng r;
    pare_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = amp * (float)(2.0 * pare_rng_uniform(&r) - 1.0);
}

/* Forward (and backward if dout) on a packed qkv (B,T,3C); dqkv and dparams zeroed first. */
static pare_status run(const pare_attn *a, float *out, float *dqkv, float *dparams, const float *qkv,
                       const float *dout, const float *params, const int32_t *len, int64_t B)
{
    const int64_t C = a->H * a->D;
    size_t cb = pare_attn_cache_bytes(a, B), wb = pare_attn_work_bytes(a, B);
    void *cache = malloc(cb ? cb : 1), *work = malloc(wb ? wb : 1);
    pare_attn_args x = {.out = out, .ldo = C, .cache = cache, .work = work, .work_bytes = wb, .q = qkv,
                        .k = qkv + C, .v = qkv + 2 * C, .ld = 3 * C, .lengths = len, .params = params, .B = B};
    pare_status st = pare_attn_forward(a, &x);
    if (st == PARE_OK && dout && dqkv) {
        memset(dqkv, 0, (size_t)(B * a->T * 3 * C) * sizeof(float));
        if (dparams) memset(dparams, 0, (size_t)pare_attn_param_count(a) * sizeof(float));
        x.dout = dout, x.dq = dqkv, x.dk = dqkv + C, x.dv = dqkv + 2 * C, x.ldd = 3 * C, x.dparams = dparams;
        st = pare_attn_backward(a, &x);
    }
    if (st != PARE_OK) diag("run %s: %s", pare_attn_name(a), pare_errmsg());
    free(cache);
    free(work);
    return st;
}

/* Central differences of loss = Σ w ⊙ out (double) against the backward, sampled over q, k, v and params.
 * B = 2, the second sequence padded to 3T/4. */
static void fd_check(const pare_attn_variant *v, const char *opts, int64_t T, int64_t H, int64_t D, int causal,
                     float amp, float eps)
{
    const int64_t B = 2, C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    pare_attn *a = make_v(v, opts, T, H, D, causal);
    if (!ok(a != NULL, "fd: create %s {%s}", v->schema->name, opts)) return;
    const int64_t np = pare_attn_param_count(a);
    float *qkv = malloc(n3 * sizeof(float)), *w = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float)),
          *dqkv = malloc(n3 * sizeof(float)), *params = malloc((size_t)(np + 1) * sizeof(float)),
          *dparams = malloc((size_t)(np + 1) * sizeof(float));
    pare_rng r;
    pare_rng_seed(&r, 7);
    if (np) pare_attn_param_init(a, params, &r);
    int32_t len[2] = {(int32_t)T, (int32_t)(T - T / 4)};
    fill(qkv, n3, 21, amp);
    fill(w, n, 22, 1.0f);
    run(a, out, dqkv, np ? dparams : NULL, qkv, w, np ? params : NULL, len, B);
    enum { NS = 48, NP = 16 };
    float an[NS + NP], num[NS + NP];
    int ns = 0;
    for (int s = 0; s < NS + (np ? NP : 0); s++) {
        float *base = s < NS ? qkv : params;
        const int64_t idx = (int64_t)pare_rng_below(&r, (uint64_t)(s < NS ? n3 : np));
        const float keep = base[idx];
        double lp = 0, lm = 0;
        base[idx] = keep + eps;
        run(a, out, NULL, NULL, qkv, NULL, np ? params : NULL, len, B);
        for (int64_t e = 0; e < n; e++) lp += (double)w[e] * out[e];
        base[idx] = keep - eps;
        run(a, out, NULL, NULL, qkv, NULL, np ? params : NULL, len, B);
        for (int64_t e = 0; e < n; e++) lm += (double)w[e] * out[e];
        base[idx] = keep;
        an[ns] = s < NS ? dqkv[idx] : dparams[idx];
        num[ns++] = (float)((lp - lm) / (2.0 * (double)eps));
    }
    char what[256];
    snprintf(what, sizeof what, "finite differences: %s {%s} T=%lld H=%lld D=%lld%s%s", v->schema->name, opts,
             (long long)T, (long long)H, (long long)D, causal ? " causal" : "", np ? " (incl. params)" : "");
    is_close_arr(an, num, ns, 2e-3, 2e-2, what);
    pare_attn_free(a);
    free(qkv), free(w), free(out), free(dqkv), free(params), free(dparams);
}

/* ---- linear attention ---- */

static double elu1(double x) { return x > 0 ? x + 1 : exp(x); }

/* Dense normalised kernel matrix: out_i = Σ_j A_ij v_j / Σ_j A_ij, A_ij = φ(q_i)·φ(k_j) over visible j. */
static void linear_dense_ref(float *out, const float *qkv, const int32_t *len, int64_t B, int64_t T, int64_t H,
                             int64_t D, int causal)
{
    const int64_t C = H * D, C3 = 3 * C;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = len ? len[b] : T;
            const float *Q = qkv + b * T * C3 + h * D, *K = Q + C, *V = Q + 2 * C;
            for (int64_t i = 0; i < T; i++) {
                double z = 0, o[64] = {0};
                for (int64_t j = 0; j < L && (!causal || j <= i); j++) {
                    double A = 0;
                    for (int64_t d = 0; d < D; d++) A += elu1(Q[i * C3 + d]) * elu1(K[j * C3 + d]);
                    z += A;
                    for (int64_t d = 0; d < D; d++) o[d] += A * V[j * C3 + d];
                }
                for (int64_t d = 0; d < D; d++) out[(b * T + i) * C + h * D + d] = z > 0 ? (float)(o[d] / z) : 0.0f;
            }
        }
}

/* The recurrent (RNN) form: state S += φ(k_t) v_tᵀ, z += φ(k_t) one token at a time, out_t from the state. */
static void linear_recurrent_ref(float *out, const float *qkv, const int32_t *len, int64_t B, int64_t T, int64_t H,
                                 int64_t D)
{
    const int64_t C = H * D, C3 = 3 * C;
    double S[64][64], z[64];
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = len ? len[b] : T;
            const float *Q = qkv + b * T * C3 + h * D, *K = Q + C, *V = Q + 2 * C;
            memset(S, 0, sizeof S), memset(z, 0, sizeof z);
            for (int64_t t = 0; t < T; t++) {
                if (t < L)
                    for (int64_t r = 0; r < D; r++) {
                        const double f = elu1(K[t * C3 + r]);
                        z[r] += f;
                        for (int64_t d = 0; d < D; d++) S[r][d] += f * V[t * C3 + d];
                    }
                double den = 0;
                for (int64_t r = 0; r < D; r++) den += elu1(Q[t * C3 + r]) * z[r];
                for (int64_t d = 0; d < D; d++) {
                    double num = 0;
                    for (int64_t r = 0; r < D; r++) num += elu1(Q[t * C3 + r]) * S[r][d];
                    out[(b * T + t) * C + h * D + d] = den > 0 ? (float)(num / den) : 0.0f;
                }
            }
        }
}

static void check_linear(int64_t B, int64_t T, int64_t H, int64_t D)
{
    const int64_t C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    float *qkv = malloc(n3 * sizeof(float)), *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    int32_t len[4] = {(int32_t)T, (int32_t)(T / 3), 0, (int32_t)(T - 1)};
    fill(qkv, n3, 100 + (uint64_t)T, 1.5f);
    for (int causal = 0; causal < 2; causal++)
        for (int padded = 0; padded < 2; padded++) {
            pare_attn *a = make_v(&pare_attn_linear, "", T, H, D, causal);
            if (!a) continue;
            run(a, out, NULL, NULL, qkv, NULL, NULL, padded ? len : NULL, B);
            char what[200];
            snprintf(what, sizeof what, "linear%s%s B=%lld T=%lld H=%lld D=%lld == dense normalised kernel matrix",
                     causal ? " causal" : "", padded ? " padded" : "", (long long)B, (long long)T, (long long)H,
                     (long long)D);
            linear_dense_ref(ref, qkv, padded ? len : NULL, B, T, H, D, causal);
            is_close_arr(out, ref, n, 1e-5, 1e-4, what);
            if (causal) {
                linear_recurrent_ref(ref, qkv, padded ? len : NULL, B, T, H, D);
                snprintf(what, sizeof what, "linear causal%s T=%lld: prefix-sum form == recurrent state update",
                         padded ? " padded" : "", (long long)T);
                is_close_arr(out, ref, n, 1e-5, 1e-4, what);
            }
            pare_attn_free(a);
        }
    /* padded keys are excluded: changing them changes nothing */
    pare_attn *a = make_v(&pare_attn_linear, "", T, H, D, 0);
    float *out2 = malloc(n * sizeof(float));
    run(a, out, NULL, NULL, qkv, NULL, NULL, len, B);
    for (int64_t t = len[0 % B]; t < T; t++)
        for (int64_t e = C; e < 3 * C; e++) qkv[t * 3 * C + e] += 5.0f; /* sequence 0: beyond its length */
    if (B > 1)
        for (int64_t t = len[1]; t < T; t++)
            for (int64_t e = C; e < 3 * C; e++) qkv[(T + t) * 3 * C + e] -= 3.0f;
    run(a, out2, NULL, NULL, qkv, NULL, NULL, len, B);
    ok(!memcmp(out, out2, n * sizeof(float)), "linear: keys and values beyond the length do not change the output");
    pare_attn_free(a);
    free(qkv), free(out), free(ref), free(out2);
}

/* ---- linformer ---- */

/* With k = T and E = F = identity, linformer is full attention: forward and backward (dq, dk, dv). */
static void check_linformer_identity(const char *opts, int64_t B, int64_t T, int64_t H, int64_t D)
{
    const int64_t C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    char o2[128];
    snprintf(o2, sizeof o2, "k=%lld %s", (long long)T, opts);
    pare_attn *a = make_v(&pare_attn_linformer, o2, T, H, D, 0), *f = make_v(&pare_attn_full, "", T, H, D, 0);
    if (!ok(a && f, "linformer {%s} and full created", o2)) return;
    pare_attn_param p[PARE_ATTN_MAX_PARAMS];
    const int np = pare_attn_param_shapes(a, p);
    const int64_t cnt = pare_attn_param_count(a);
    float *params = calloc((size_t)cnt, sizeof(float)), *dparams = malloc((size_t)cnt * sizeof(float));
    for (int64_t m = 0; m < cnt / (T * T); m++) /* every (T, T) block = identity */
        for (int64_t i = 0; i < T; i++) params[m * T * T + i * T + i] = 1.0f;
    float *qkv = malloc(n3 * sizeof(float)), *dout = malloc(n * sizeof(float)), *o1 = malloc(n * sizeof(float)),
          *oref = malloc(n * sizeof(float)), *g1 = malloc(n3 * sizeof(float)), *gref = malloc(n3 * sizeof(float));
    fill(qkv, n3, 200 + (uint64_t)T, 1.5f);
    fill(dout, n, 201 + (uint64_t)T, 1.0f);
    run(a, o1, g1, dparams, qkv, dout, params, NULL, B);
    run(f, oref, gref, NULL, qkv, dout, NULL, NULL, B);
    char what[200];
    snprintf(what, sizeof what, "linformer {%s} (%d param blocks, E = F = I) == full: forward, B=%lld T=%lld H=%lld",
             o2, np, (long long)B, (long long)T, (long long)H);
    is_close_arr(o1, oref, n, 1e-5, 1e-4, what);
    snprintf(what, sizeof what, "linformer {%s} (E = F = I) == full: backward dq, dk, dv", o2);
    is_close_arr(g1, gref, n3, 1e-5, 1e-4, what);
    pare_attn_free(a), pare_attn_free(f);
    free(params), free(dparams), free(qkv), free(dout), free(o1), free(oref), free(g1), free(gref);
}

static void check_linformer_misc(void)
{
    const int64_t B = 2, T = 40, H = 3, D = 8, C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    pare_attn_param p[PARE_ATTN_MAX_PARAMS];
    pare_attn *a = make_v(&pare_attn_linformer, "k=8", T, H, D, 0);
    ok(a && pare_attn_param_shapes(a, p) == 2 && !strcmp(p[0].name, "E") && p[0].rows == 8 && p[0].cols == T &&
           !strcmp(p[1].name, "F") && pare_attn_param_count(a) == 2 * 8 * T,
       "linformer k=8 (share=head): params E (8, T), F (8, T)");
    pare_attn *a2 = make_v(&pare_attn_linformer, "k=8 share=none", T, H, D, 0),
              *a3 = make_v(&pare_attn_linformer, "k=8 share=kv", T, H, D, 0);
    ok(a2 && a3 && pare_attn_param_count(a2) == 2 * H * 8 * T && pare_attn_param_count(a3) == 8 * T,
       "share=none: E, F (H·k, T); share=kv: E only");
    /* padded keys do not reach the output */
    float *qkv = malloc(n3 * sizeof(float)), *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float)),
          *params = malloc((size_t)pare_attn_param_count(a) * sizeof(float));
    pare_rng r;
    pare_rng_seed(&r, 3);
    pare_attn_param_init(a, params, &r);
    int32_t len[2] = {25, 0};
    fill(qkv, n3, 300, 1.0f);
    run(a, o1, NULL, NULL, qkv, NULL, params, len, B);
    for (int64_t t = 0; t < B * T; t++)
        if (t % T >= len[t / T])
            for (int64_t e = C; e < 3 * C; e++) qkv[t * 3 * C + e] = 7.0f;
    run(a, o2, NULL, NULL, qkv, NULL, params, len, B);
    int zero = 1;
    for (int64_t e = T * C; e < n; e++) zero &= o2[e] == 0.0f;
    ok(!memcmp(o1, o2, n * sizeof(float)) && zero,
       "linformer: keys/values beyond the length do not change the output; length 0 gives 0");
    pare_attn_cost c;
    pare_attn_cost_of(a, 1, &c);
    pare_attn *b2 = make_v(&pare_attn_linformer, "k=8", 2 * T, H, D, 0);
    pare_attn_cost c2;
    pare_attn_cost_of(b2, 1, &c2);
    ok(c.pairs == H * T * 8 && c2.flops_fwd == 2 * c.flops_fwd && c2.cache_bytes < 2 * c.cache_bytes + 1,
       "linformer cost: pairs H·T·k = %lld, FLOPs linear in T (%lld -> %lld)", (long long)c.pairs,
       (long long)c.flops_fwd, (long long)c2.flops_fwd);
    pare_attn_free(a), pare_attn_free(a2), pare_attn_free(a3), pare_attn_free(b2);
    free(qkv), free(o1), free(o2), free(params);
}

/* ---- performer ---- */

/* φ(x) = exp(W x' − |x'|²/2) / √m, x' = x / D^{1/4}, unstabilised, in double. */
static void favor_ref(double *phi, const float *W, const float *x, int64_t m, int64_t D)
{
    const double c = pow((double)D, -0.25);
    double sq = 0;
    for (int64_t d = 0; d < D; d++) sq += (c * x[d]) * (c * x[d]);
    for (int64_t r = 0; r < m; r++) {
        double u = 0;
        for (int64_t d = 0; d < D; d++) u += (double)W[r * D + d] * c * x[d];
        phi[r] = exp(u - sq / 2) / sqrt((double)m);
    }
}

/* performer == the dense normalised kernel matrix φ(Q)φ(K)ᵀ built from its own features. */
static void check_performer_dense(const char *opts, int64_t B, int64_t T, int64_t H, int64_t D, int causal, int padded)
{
    const int64_t C = H * D, C3 = 3 * C, n3 = B * T * C3, n = B * T * C;
    pare_attn *a = make_v(&pare_attn_performer, opts, T, H, D, causal);
    if (!ok(a != NULL, "performer {%s} created", opts)) return;
    const int64_t m = pare_opt_int(&a->opts, "features");
    float *qkv = malloc(n3 * sizeof(float)), *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    double *fq = malloc((size_t)(T * m) * sizeof(double)), *fk = malloc((size_t)(T * m) * sizeof(double));
    int32_t len[4] = {(int32_t)(T / 2), (int32_t)T, 1, (int32_t)(T - 3)};
    fill(qkv, n3, 400 + (uint64_t)T, 1.0f);
    run(a, out, NULL, NULL, qkv, NULL, NULL, padded ? len : NULL, B);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = padded ? len[b] : T;
            const float *W = pare_attn_performer_w(a, h), *Q = qkv + b * T * C3 + h * D, *V = Q + 2 * C;
            for (int64_t t = 0; t < T; t++) favor_ref(fq + t * m, W, Q + t * C3, m, D), favor_ref(fk + t * m, W, Q + C + t * C3, m, D);
            for (int64_t i = 0; i < T; i++) {
                double z = 0, o[64] = {0};
                for (int64_t j = 0; j < L && (!causal || j <= i); j++) {
                    double A = 0;
                    for (int64_t r = 0; r < m; r++) A += fq[i * m + r] * fk[j * m + r];
                    z += A;
                    for (int64_t d = 0; d < D; d++) o[d] += A * V[j * C3 + d];
                }
                for (int64_t d = 0; d < D; d++) ref[(b * T + i) * C + h * D + d] = z > 0 ? (float)(o[d] / z) : 0.0f;
            }
        }
    char what[200];
    snprintf(what, sizeof what, "performer {%s} T=%lld%s%s == dense kernel matrix of its features", opts,
             (long long)T, causal ? " causal" : "", padded ? " padded" : "");
    is_close_arr(out, ref, n, 2e-5, 2e-4, what);
    pare_attn_free(a);
    free(qkv), free(out), free(ref), free(fq), free(fk);
}

/* Mean |performer − full| over the outputs, averaged over 3 feature seeds. */
static double performer_err(int64_t m, int orth, int causal, const float *qkv, const float *full, int64_t B, int64_t T,
                            int64_t H, int64_t D)
{
    const int64_t n = B * T * H * D;
    float *out = malloc(n * sizeof(float));
    double err = 0;
    for (int seed = 0; seed < 3; seed++) {
        char opts[96];
        snprintf(opts, sizeof opts, "features=%lld seed=%d orthogonal=%s", (long long)m, seed, orth ? "true" : "false");
        pare_attn *a = make_v(&pare_attn_performer, opts, T, H, D, causal);
        run(a, out, NULL, NULL, qkv, NULL, NULL, NULL, B);
        for (int64_t e = 0; e < n; e++) err += fabs((double)out[e] - full[e]);
        pare_attn_free(a);
    }
    free(out);
    return err / (3.0 * (double)n);
}

static void check_performer_convergence(int causal)
{
    const int64_t B = 2, T = 64, H = 2, D = 16, C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    float *qkv = malloc(n3 * sizeof(float)), *full = malloc(n * sizeof(float));
    fill(qkv, n3, 500, 1.0f);
    pare_attn *f = make_v(&pare_attn_full, "", T, H, D, causal);
    run(f, full, NULL, NULL, qkv, NULL, NULL, NULL, B);
    pare_attn_free(f);
    for (int orth = 1; orth >= 0; orth--) {
        const double e16 = performer_err(16, orth, causal, qkv, full, B, T, H, D),
                     e64 = performer_err(64, orth, causal, qkv, full, B, T, H, D),
                     e256 = performer_err(256, orth, causal, qkv, full, B, T, H, D),
                     e1024 = performer_err(1024, orth, causal, qkv, full, B, T, H, D);
        ok(e64 < e16 && e256 < e64 && e1024 < e256 && e256 < 0.6 * e16,
           "performer%s%s: mean |error| vs full falls with features: 16: %.4f, 64: %.4f, 256: %.4f, 1024: %.4f",
           causal ? " causal" : "", orth ? " orthogonal" : " iid", e16, e64, e256, e1024);
    }
    free(qkv), free(full);
}

/* E[φ(x)·φ(y)] = exp(x·y/√D): the average over 400 draws of W within 3 standard errors. */
static void check_performer_unbiased(int orth)
{
    const int64_t D = 8, m = 8, N = 400;
    float xy[2 * D];
    fill(xy, 2 * D, 600, 0.8f);
    double want = 0, fx[8], fy[8], sum = 0, sum2 = 0;
    for (int64_t d = 0; d < D; d++) want += (double)xy[d] * xy[D + d];
    want = exp(want / sqrt((double)D));
    for (int64_t s = 0; s < N; s++) {
        char opts[64];
        snprintf(opts, sizeof opts, "features=%lld seed=%lld orthogonal=%s", (long long)m, (long long)s + 1000,
                 orth ? "true" : "false");
        pare_attn *a = make_v(&pare_attn_performer, opts, 4, 1, D, 0);
        favor_ref(fx, pare_attn_performer_w(a, 0), xy, m, D);
        favor_ref(fy, pare_attn_performer_w(a, 0), xy + D, m, D);
        double est = 0;
        for (int64_t r = 0; r < m; r++) est += fx[r] * fy[r];
        sum += est, sum2 += est * est;
        pare_attn_free(a);
    }
    const double mean = sum / N, se = sqrt((sum2 / N - mean * mean) / N);
    ok(fabs(mean - want) < 3 * se + 1e-3 && se < 0.05 * want,
       "performer%s: mean kernel estimate over %lld draws %.4f vs exp(x·y/√D) = %.4f (standard error %.4f)",
       orth ? " orthogonal" : " iid", (long long)N, mean, want, se);
}

static void check_performer_rows(void)
{
    pare_attn *a = make_v(&pare_attn_performer, "features=20 seed=5", 8, 2, 8, 0),
              *b = make_v(&pare_attn_performer, "features=20 seed=5", 8, 2, 8, 0),
              *c = make_v(&pare_attn_performer, "features=20 seed=6", 8, 2, 8, 0);
    const float *W = pare_attn_performer_w(a, 1);
    double worst = 0;
    for (int i = 0; i < 8; i++) /* rows of one block are orthogonal */
        for (int j = 0; j < i; j++) {
            double dot = 0, ni = 0, nj = 0;
            for (int d = 0; d < 8; d++) dot += W[i * 8 + d] * W[j * 8 + d], ni += W[i * 8 + d] * W[i * 8 + d],
                                        nj += W[j * 8 + d] * W[j * 8 + d];
            worst = fmax(worst, fabs(dot) / sqrt(ni * nj));
        }
    ok(worst < 1e-5, "performer: rows of an orthogonal block are orthogonal (worst cosine %.2g)", worst);
    ok(!memcmp(pare_attn_performer_w(a, 0), pare_attn_performer_w(b, 0), 20 * 8 * sizeof(float)) &&
           memcmp(pare_attn_performer_w(a, 0), pare_attn_performer_w(c, 0), 20 * 8 * sizeof(float)) &&
           memcmp(pare_attn_performer_w(a, 0), pare_attn_performer_w(a, 1), 20 * 8 * sizeof(float)),
       "performer: features repeat with the seed, change with it and differ between heads");
    pare_attn_free(a), pare_attn_free(b), pare_attn_free(c);
}

/* ---- reformer ---- */

/* Full attention with shared QK (keys = normalised queries) and the self rule (own score −1e5), double. */
static void shared_qk_ref(float *out, const float *qkv, const int32_t *len, int64_t B, int64_t T, int64_t H, int64_t D,
                          int causal)
{
    const int64_t C = H * D, C3 = 3 * C;
    double *s = malloc((size_t)T * sizeof *s);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = len ? len[b] : T;
            const float *Q = qkv + b * T * C3 + h * D, *V = Q + 2 * C;
            for (int64_t i = 0; i < T; i++) {
                double mx = -INFINITY, z = 0, o[64] = {0};
                for (int64_t j = 0; j < T; j++) {
                    s[j] = -INFINITY;
                    if (j >= L || (causal && j > i)) continue;
                    double d = 0, n2 = 0;
                    for (int64_t e = 0; e < D; e++) d += (double)Q[i * C3 + e] * Q[j * C3 + e], n2 += (double)Q[j * C3 + e] * Q[j * C3 + e];
                    s[j] = j == i ? -1e5 : d / sqrt(n2) / sqrt((double)D);
                    if (s[j] > mx) mx = s[j];
                }
                for (int64_t j = 0; j < T; j++)
                    if (s[j] > -INFINITY) {
                        const double p = exp(s[j] - mx);
                        z += p;
                        for (int64_t e = 0; e < D; e++) o[e] += p * V[j * C3 + e];
                    }
                for (int64_t e = 0; e < D; e++) out[(b * T + i) * C + h * D + e] = z > 0 ? (float)(o[e] / z) : 0.0f;
            }
        }
    free(s);
}

static void check_reformer_one_bucket(int64_t hashes, int64_t B, int64_t T, int64_t H, int64_t D, int causal, int padded)
{
    const int64_t C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    char opts[64];
    snprintf(opts, sizeof opts, "bucket=%lld hashes=%lld", (long long)T, (long long)hashes);
    pare_attn *a = make_v(&pare_attn_reformer, opts, T, H, D, causal);
    if (!ok(a != NULL, "reformer {%s} created", opts)) return;
    float *qkv = malloc(n3 * sizeof(float)), *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    int32_t len[4] = {(int32_t)T, (int32_t)(T / 2), 1, 0};
    fill(qkv, n3, 700 + (uint64_t)T, 1.5f);
    run(a, out, NULL, NULL, qkv, NULL, NULL, padded ? len : NULL, B);
    shared_qk_ref(ref, qkv, padded ? len : NULL, B, T, H, D, causal);
    char what[200];
    snprintf(what, sizeof what, "reformer {%s} T=%lld%s%s (one bucket) == full attention with shared QK and the self rule",
             opts, (long long)T, causal ? " causal" : "", padded ? " padded" : "");
    is_close_arr(out, ref, n, 1e-5, 1e-4, what);
    pare_attn_free(a);
    free(qkv), free(out), free(ref);
}


/* Many buckets: the LSH attention against a dense reference built from the bucket assignment (read with
 * pare_attn_reformer_buckets): per round, sort by (bucket, position), chunks of `bucket`, each query sees its
 * chunk and the previous one; rounds add multiplicities; shared QK, self rule, causal, padding. */
static void check_reformer_buckets(const char *opts, int64_t B, int64_t T, int64_t H, int64_t D, int causal)
{
    const int64_t C = H * D, C3 = 3 * C, n3 = B * T * C3, n = B * T * C;
    pare_attn *a = make_v(&pare_attn_reformer, opts, T, H, D, causal);
    if (!ok(a != NULL, "reformer {%s} created", opts)) return;
    const int64_t c = pare_opt_int(&a->opts, "bucket"), nr = pare_opt_int(&a->opts, "hashes"), nch = T / c;
    float *qkv = malloc(n3 * sizeof(float)), *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    int32_t *bkt = malloc((size_t)T * sizeof *bkt), *perm = malloc((size_t)T * sizeof *perm),
            *chunk = malloc((size_t)T * sizeof *chunk);
    int *M = malloc((size_t)(T * T) * sizeof *M);
    int32_t len[2] = {(int32_t)(T - 7), (int32_t)T};
    fill(qkv, n3, 1100 + (uint64_t)T, 1.5f);
    run(a, out, NULL, NULL, qkv, NULL, NULL, len, B);
    int64_t multi = 0, distinct_buckets = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const float *Q = qkv + b * T * C3 + h * D, *V = Q + 2 * C;
            memset(M, 0, (size_t)(T * T) * sizeof *M);
            for (int64_t r = 0; r < nr; r++) {
                pare_attn_reformer_buckets(a, h, r, Q, C3, bkt);
                int64_t np = 0;
                for (int64_t u = 0; u < T; u++) /* stable sort by bucket */
                    for (int64_t t = 0; t < T; t++)
                        if (bkt[t] == u) perm[np++] = (int32_t)t;
                for (int64_t u = 0; u < T; u++) {
                    int any = 0;
                    for (int64_t t = 0; t < T; t++) any |= bkt[t] == u;
                    distinct_buckets += any;
                }
                for (int64_t pos = 0; pos < T; pos++) chunk[perm[pos]] = (int32_t)(pos / c);
                for (int64_t i = 0; i < T; i++)
                    for (int64_t j = 0; j < T; j++)
                        M[i * T + j] += chunk[j] == chunk[i] || (nch > 1 && chunk[j] == (chunk[i] + nch - 1) % nch);
            }
            for (int64_t i = 0; i < T; i++) {
                double s[256], mx = -INFINITY, z = 0, o[64] = {0};
                for (int64_t j = 0; j < T; j++) {
                    s[j] = -INFINITY;
                    if (!M[i * T + j] || j >= len[b] || (causal && j > i)) continue;
                    multi += M[i * T + j] > 1;
                    double d = 0, n2 = 0;
                    for (int64_t e = 0; e < D; e++) d += (double)Q[i * C3 + e] * Q[j * C3 + e], n2 += (double)Q[j * C3 + e] * Q[j * C3 + e];
                    s[j] = j == i ? -1e5 : d / sqrt(n2) / sqrt((double)D);
                    if (s[j] > mx) mx = s[j];
                }
                for (int64_t j = 0; j < T; j++)
                    if (s[j] > -INFINITY) {
                        const double p = M[i * T + j] * exp(s[j] - mx);
                        z += p;
                        for (int64_t e = 0; e < D; e++) o[e] += p * V[j * C3 + e];
                    }
                for (int64_t e = 0; e < D; e++) ref[(b * T + i) * C + h * D + e] = z > 0 ? (float)(o[e] / z) : 0.0f;
            }
        }
    char what[200];
    snprintf(what, sizeof what, "reformer {%s} T=%lld%s padded == dense reference of its buckets' chunks "
             "(%lld pairs seen in several rounds, %.1f buckets used per round)", opts, (long long)T,
             causal ? " causal" : "", (long long)multi, (double)distinct_buckets / (double)(B * H * nr));
    is_close_arr(out, ref, n, 1e-5, 1e-4, what);
    pare_attn_free(a);
    free(qkv), free(out), free(ref), free(bkt), free(perm), free(chunk), free(M);
}

static void check_reformer_misc(void)
{
    /* with many buckets: pairs = hashes·T·2·bucket, computed as the cost says, linear in T */
    const int64_t T = 256, H = 2, D = 16, C = H * D;
    pare_attn *a = make_v(&pare_attn_reformer, "bucket=16 hashes=2", T, H, D, 0),
              *a2 = make_v(&pare_attn_reformer, "bucket=16 hashes=2", 2 * T, H, D, 0);
    if (!ok(a && a2, "reformer bucket=16 hashes=2 created")) return;
    float *qkv = malloc((size_t)(T * 3 * C) * sizeof(float)), *out = malloc((size_t)(T * C) * sizeof(float));
    fill(qkv, T * 3 * C, 800, 1.0f);
    size_t cb = pare_attn_cache_bytes(a, 1), wb = pare_attn_work_bytes(a, 1);
    void *cache = malloc(cb), *work = malloc(wb);
    int64_t pairs = -1;
    pare_attn_args x = {.out = out, .ldo = C, .cache = cache, .work = work, .work_bytes = wb, .pairs = &pairs,
                        .q = qkv, .k = qkv + C, .v = qkv + 2 * C, .ld = 3 * C, .B = 1};
    pare_attn_cost c, c2;
    pare_attn_cost_of(a, 1, &c), pare_attn_cost_of(a2, 1, &c2);
    const int fwd_ok = pare_attn_forward(a, &x) == PARE_OK;
    ok(fwd_ok && pairs == c.pairs && pairs == H * 2 * T * 2 * 16,
       "reformer: computed pairs %lld == cost %lld == H·hashes·T·2·bucket", (long long)pairs, (long long)c.pairs);
    ok(c2.pairs == 2 * c.pairs && c2.flops_fwd < 2.3 * c.flops_fwd,
       "reformer: pairs linear in T at a fixed bucket (FLOPs ratio %.3f: hashing into T/bucket buckets adds T²D/bucket)", (double)c2.flops_fwd / (double)c.flops_fwd);
    /* k is not read (shared QK) */
    float *out2 = malloc((size_t)(T * C) * sizeof(float));
    for (int64_t t = 0; t < T; t++)
        for (int64_t e = C; e < 2 * C; e++) qkv[t * 3 * C + e] = 9.0f;
    x.out = out2;
    pare_attn_forward(a, &x);
    ok(!memcmp(out, out2, (size_t)(T * C) * sizeof(float)), "reformer: the k input is not read (keys = normalised q)");
    /* a token attends to itself only when nothing else is visible: causal, query 0 sees only itself */
    pare_attn *ac = make_v(&pare_attn_reformer, "bucket=16", T, H, D, 1);
    size_t wc = pare_attn_work_bytes(ac, 1);
    void *workc = malloc(wc);
    x.work = workc, x.work_bytes = wc, x.out = out;
    pare_attn_forward(ac, &x);
    ok(!memcmp(out, qkv + 2 * C, (size_t)C * sizeof(float)), "reformer causal: token 0 (no other key) attends to itself");
    pare_attn_free(a), pare_attn_free(a2), pare_attn_free(ac);
    free(qkv), free(out), free(out2), free(cache), free(work), free(workc);
}

/* ---- axial ---- */

/* out (T, D) = softmax(scale Q Kᵀ masked) V in double; Q, K rows stride ldq, V rows stride ldv; mask(i, j). */
static void dense_masked(double *out, const float *Q, const float *K, int64_t ldq, const double *V, int64_t T, int64_t D,
                         int64_t L, int causal, int64_t cols, int by_row)
{
    for (int64_t i = 0; i < T; i++) {
        double mx = -INFINITY, z = 0, s[512];
        for (int64_t j = 0; j < T; j++) {
            const int same = by_row ? i / cols == j / cols : i % cols == j % cols;
            s[j] = -INFINITY;
            if (!same || j >= L || (causal && j > i)) continue;
            double d = 0;
            for (int64_t e = 0; e < D; e++) d += (double)Q[i * ldq + e] * K[j * ldq + e];
            s[j] = d / sqrt((double)D);
            if (s[j] > mx) mx = s[j];
        }
        for (int64_t e = 0; e < D; e++) out[i * D + e] = 0;
        for (int64_t j = 0; j < T; j++)
            if (s[j] > -INFINITY) {
                const double p = exp(s[j] - mx);
                z += p;
                for (int64_t e = 0; e < D; e++) out[i * D + e] += p * V[j * D + e];
            }
        for (int64_t e = 0; e < D; e++) out[i * D + e] = z > 0 ? out[i * D + e] / z : 0;
    }
}

static void check_axial(const char *opts, int64_t rows, int64_t B, int64_t T, int64_t H, int64_t D, int causal,
                        int padded)
{
    const int64_t C = H * D, C3 = 3 * C, n3 = B * T * C3, n = B * T * C, cols = T / rows;
    pare_attn *a = make_v(&pare_attn_axial, opts, T, H, D, causal);
    if (!ok(a != NULL, "axial {%s} created", opts)) return;
    float *qkv = malloc(n3 * sizeof(float)), *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    double *V = malloc((size_t)(T * D) * sizeof(double)), *Y = malloc((size_t)(T * D) * sizeof(double)),
           *O = malloc((size_t)(T * D) * sizeof(double));
    int32_t len[3] = {(int32_t)(T - cols - 1), (int32_t)T, 2};
    fill(qkv, n3, 900 + (uint64_t)T, 1.5f);
    run(a, out, NULL, NULL, qkv, NULL, NULL, padded ? len : NULL, B);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const float *Q = qkv + b * T * C3 + h * D;
            for (int64_t t = 0; t < T; t++)
                for (int64_t e = 0; e < D; e++) V[t * D + e] = Q[2 * C + t * C3 + e];
            const int64_t L = padded ? len[b] : T;
            dense_masked(Y, Q, Q + C, C3, V, T, D, L, causal, cols, 1); /* row mask */
            dense_masked(O, Q, Q + C, C3, Y, T, D, L, causal, cols, 0); /* then column mask */
            for (int64_t t = 0; t < T; t++)
                for (int64_t e = 0; e < D; e++) ref[(b * T + t) * C + h * D + e] = (float)O[t * D + e];
        }
    char what[200];
    snprintf(what, sizeof what, "axial {%s} T=%lld (%lld x %lld)%s%s == column-masked ∘ row-masked dense attention",
             opts, (long long)T, (long long)rows, (long long)cols, causal ? " causal" : "", padded ? " padded" : "");
    is_close_arr(out, ref, n, 1e-5, 1e-4, what);
    pare_attn_free(a);
    free(qkv), free(out), free(ref), free(V), free(Y), free(O);
}

/* ---- lsra ---- */

/* The attention heads equal full attention on those heads; the convolution heads a naive convolution. */
static void check_lsra(const char *opts, int64_t B, int64_t T, int64_t H, int64_t D, int causal, int padded)
{
    const int64_t C = H * D, C3 = 3 * C, n3 = B * T * C3, n = B * T * C;
    pare_attn *a = make_v(&pare_attn_lsra, opts, T, H, D, causal);
    if (!ok(a != NULL, "lsra {%s} created", opts)) return;
    int64_t ha = pare_opt_int(&a->opts, "attn_heads"), K = pare_opt_int(&a->opts, "kernel");
    if (ha == 0) ha = H / 2;
    const int64_t cc = (H - ha) * D, pad = causal ? K - 1 : (K - 1) / 2;
    pare_attn_param p[PARE_ATTN_MAX_PARAMS];
    ok(pare_attn_param_shapes(a, p) == 2 && !strcmp(p[0].name, "conv.weight") && p[0].rows == cc && p[0].cols == K &&
           !strcmp(p[1].name, "conv.bias") && p[1].cols == cc,
       "lsra {%s}: params conv.weight (%lld, %lld), conv.bias (1, %lld)", opts, (long long)cc, (long long)K,
       (long long)cc);
    float *qkv = malloc(n3 * sizeof(float)), *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float)),
          *params = malloc((size_t)pare_attn_param_count(a) * sizeof(float));
    pare_rng r;
    pare_rng_seed(&r, 77);
    pare_attn_param_init(a, params, &r);
    for (int64_t c = 0; c < cc; c++) params[cc * K + c] = 0.1f * (float)(c % 5); /* a non-zero bias */
    int32_t len[3] = {(int32_t)(T - 5), (int32_t)T, 3};
    const int32_t *lp = padded ? len : NULL;
    fill(qkv, n3, 1000 + (uint64_t)T, 1.5f);
    run(a, out, NULL, NULL, qkv, NULL, params, lp, B);
    /* attention branch: full attention with ha heads on the same views */
    pare_attn *f = make_v(&pare_attn_full, "", T, ha, D, causal);
    size_t cb = pare_attn_cache_bytes(f, B), wb = pare_attn_work_bytes(f, B);
    void *cache = malloc(cb), *work = malloc(wb);
    pare_attn_args x = {.out = ref, .ldo = C, .cache = cache, .work = work, .work_bytes = wb, .q = qkv, .k = qkv + C,
                        .v = qkv + 2 * C, .ld = C3, .lengths = lp, .B = B};
    pare_attn_forward(f, &x);
    /* convolution branch, naive in double */
    for (int64_t b = 0; b < B; b++) {
        const int64_t L = padded ? len[b] : T;
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < cc; c++) {
                double acc = params[cc * K + c];
                for (int64_t k = 0; k < K; k++) {
                    const int64_t u = t + k - pad;
                    if (u >= 0 && u < L) acc += (double)params[c * K + k] * qkv[(b * T + u) * C3 + 2 * C + ha * D + c];
                }
                ref[(b * T + t) * C + ha * D + c] = (float)acc;
            }
    }
    float *ga = malloc(n * sizeof(float)), *gr = malloc(n * sizeof(float)), *gc = malloc(n * sizeof(float)),
          *rc = malloc(n * sizeof(float));
    int64_t na = 0, nc = 0;
    for (int64_t row = 0; row < B * T; row++)
        for (int64_t e = 0; e < C; e++)
            if (e < ha * D) ga[na] = out[row * C + e], gr[na++] = ref[row * C + e];
            else gc[nc] = out[row * C + e], rc[nc++] = ref[row * C + e];
    char what[200];
    snprintf(what, sizeof what, "lsra {%s} T=%lld H=%lld%s%s: attention heads == full attention on those heads", opts,
             (long long)T, (long long)H, causal ? " causal" : "", padded ? " padded" : "");
    is_close_arr(ga, gr, na, 1e-5, 1e-4, what);
    snprintf(what, sizeof what, "lsra {%s}%s%s: convolution channels == naive depthwise convolution", opts,
             causal ? " causal" : "", padded ? " padded" : "");
    is_close_arr(gc, rc, nc, 1e-5, 1e-4, what);
    pare_attn_free(a), pare_attn_free(f);
    free(qkv), free(out), free(ref), free(params), free(cache), free(work), free(ga), free(gr), free(gc), free(rc);
}

/* ---- every variant: the same bits on one thread slot as on all, and from separate q, k, v arrays ---- */

static void check_threads_and_layout(const pare_attn_variant *v, const char *opts, int causal)
{
    const int64_t B = 2, T = 48, H = 4, D = 8, C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    pare_attn *a = make_v(v, opts, T, H, D, causal);
    if (!ok(a != NULL, "create %s {%s}", v->schema->name, opts)) return;
    const int64_t np = pare_attn_param_count(a);
    float *qkv = malloc(n3 * sizeof(float)), *dout = malloc(n * sizeof(float)), *o1 = malloc(n * sizeof(float)),
          *o2 = malloc(n * sizeof(float)), *g1 = malloc(n3 * sizeof(float)), *g2 = malloc(n3 * sizeof(float)),
          *params = malloc((size_t)(np + 1) * sizeof(float)), *dp1 = calloc((size_t)(np + 1), sizeof(float)),
          *dp2 = calloc((size_t)(np + 1), sizeof(float));
    pare_rng r;
    pare_rng_seed(&r, 1);
    pare_attn_param_init(a, params, &r);
    int32_t len[2] = {(int32_t)T, (int32_t)(T / 2 + 1)};
    fill(qkv, n3, 51, 1.0f);
    fill(dout, n, 52, 1.0f);
    pare_attn_cost c;
    pare_attn_cost_of(a, B, &c);
    const float *pp = np ? params : NULL;
    run(a, o1, g1, np ? dp1 : NULL, qkv, dout, pp, len, B);
    size_t cb = pare_attn_cache_bytes(a, B), wb = c.slot_bytes ? c.slot_bytes : 1;
    void *cache = malloc(cb ? cb : 1), *work = malloc(wb);
    pare_attn_args x = {.out = o2, .ldo = C, .cache = cache, .work = work, .work_bytes = wb, .q = qkv, .k = qkv + C,
                        .v = qkv + 2 * C, .ld = 3 * C, .lengths = len, .params = pp, .B = B};
    memset(g2, 0, n3 * sizeof(float));
    int okk = pare_attn_forward(a, &x) == PARE_OK;
    x.dout = dout, x.dq = g2, x.dk = g2 + C, x.dv = g2 + 2 * C, x.ldd = 3 * C, x.dparams = np ? dp2 : NULL;
    okk &= pare_attn_backward(a, &x) == PARE_OK;
    ok(okk && !memcmp(o1, o2, n * sizeof(float)) && !memcmp(g1, g2, n3 * sizeof(float)) &&
           !memcmp(dp1, dp2, (size_t)np * sizeof(float)),
       "%s {%s}%s: one thread slot gives the same bits as all", v->schema->name, opts, causal ? " causal" : "");
    /* separate q, k, v (ld = C), out with a wider stride */
    float *q = malloc(n * sizeof(float)), *k = malloc(n * sizeof(float)), *vv = malloc(n * sizeof(float)),
          *o3 = calloc(B * T * (C + 5), sizeof(float)), *dq = calloc(n, sizeof(float)), *dk = calloc(n, sizeof(float)),
          *dv = calloc(n, sizeof(float)), *dout2 = calloc(B * T * (C + 5), sizeof(float));
    for (int64_t row = 0; row < B * T; row++) {
        memcpy(q + row * C, qkv + row * 3 * C, C * sizeof(float));
        memcpy(k + row * C, qkv + row * 3 * C + C, C * sizeof(float));
        memcpy(vv + row * C, qkv + row * 3 * C + 2 * C, C * sizeof(float));
        memcpy(dout2 + row * (C + 5), dout + row * C, C * sizeof(float));
    }
    memset(dp2, 0, (size_t)(np + 1) * sizeof(float));
    free(work);
    wb = pare_attn_work_bytes(a, B);
    work = malloc(wb ? wb : 1);
    pare_attn_args y = {.out = o3, .ldo = C + 5, .cache = cache, .work = work, .work_bytes = wb, .dout = dout2,
                        .dq = dq, .dk = dk, .dv = dv, .ldd = C, .q = q, .k = k, .v = vv, .ld = C, .lengths = len,
                        .params = pp, .dparams = np ? dp2 : NULL, .B = B};
    int same = pare_attn_forward(a, &y) == PARE_OK && pare_attn_backward(a, &y) == PARE_OK;
    for (int64_t row = 0; same && row < B * T; row++)
        same = !memcmp(o3 + row * (C + 5), o1 + row * C, C * sizeof(float)) &&
               !memcmp(dq + row * C, g1 + row * 3 * C, C * sizeof(float)) &&
               !memcmp(dk + row * C, g1 + row * 3 * C + C, C * sizeof(float)) &&
               !memcmp(dv + row * C, g1 + row * 3 * C + 2 * C, C * sizeof(float));
    same &= !memcmp(dp1, dp2, (size_t)np * sizeof(float));
    ok(same, "%s {%s}: separate q, k, v (ld = C) and out stride C+5 give the packed layout's bits", v->schema->name,
       opts);
    pare_attn_free(a);
    free(qkv), free(dout), free(o1), free(o2), free(g1), free(g2), free(params), free(dp1), free(dp2), free(cache);
    free(work), free(q), free(k), free(vv), free(o3), free(dq), free(dk), free(dv), free(dout2);
}

int main(void)
{
    tap_plan_lazy();

    /* linear */
    check_linear(2, 37, 2, 8);
    check_linear(4, 64, 3, 16);
    check_linear(1, 200, 1, 32);
    fd_check(&pare_attn_linear, "", 13, 2, 4, 0, 1.0f, 2e-3f);
    fd_check(&pare_attn_linear, "", 13, 2, 4, 1, 1.0f, 2e-3f);
    fd_check(&pare_attn_linear, "", 20, 1, 8, 1, 1.5f, 2e-3f);

    /* linformer */
    check_linformer_identity("", 2, 24, 2, 8);
    check_linformer_identity("share=none", 2, 24, 3, 8);
    check_linformer_identity("share=kv", 1, 50, 2, 16);
    check_linformer_misc();
    fd_check(&pare_attn_linformer, "k=5", 12, 2, 4, 0, 1.0f, 2e-3f);
    fd_check(&pare_attn_linformer, "k=6 share=none", 12, 2, 4, 0, 1.0f, 2e-3f);
    fd_check(&pare_attn_linformer, "k=4 share=kv", 12, 2, 4, 0, 1.0f, 2e-3f);
    check_error(&pare_attn_linformer, "k=65", 64, 2, 0, "'k'");
    check_error(&pare_attn_linformer, "k=8", 64, 2, 1, "causal");
    check_error(&pare_attn_linformer, "k=8 share=layer", 64, 2, 0, "share");

    /* performer */
    check_performer_dense("features=24 seed=1", 2, 30, 2, 8, 0, 1);
    check_performer_dense("features=24 seed=1", 2, 30, 2, 8, 1, 1);
    check_performer_dense("features=40 orthogonal=false", 3, 50, 1, 16, 1, 0);
    check_performer_convergence(0);
    check_performer_convergence(1);
    check_performer_unbiased(1);
    check_performer_unbiased(0);
    check_performer_rows();
    fd_check(&pare_attn_performer, "features=32", 13, 2, 4, 0, 1.0f, 2e-3f);
    fd_check(&pare_attn_performer, "features=32", 13, 2, 4, 1, 1.0f, 2e-3f);
    fd_check(&pare_attn_performer, "features=20 orthogonal=false", 16, 1, 8, 1, 1.0f, 2e-3f);
    check_error(&pare_attn_performer, "features=0", 64, 2, 0, "features");

    /* reformer */
    for (int causal = 0; causal < 2; causal++) {
        check_reformer_one_bucket(1, 2, 33, 2, 8, causal, 0);
        check_reformer_one_bucket(1, 4, 40, 2, 8, causal, 1);
        check_reformer_one_bucket(3, 2, 24, 3, 16, causal, 1);
    }
    check_reformer_buckets("bucket=8 hashes=1 seed=1", 2, 64, 2, 8, 0);
    check_reformer_buckets("bucket=8 hashes=3 seed=2", 2, 64, 2, 8, 1);
    check_reformer_buckets("bucket=4 hashes=2 seed=3", 2, 32, 3, 16, 0);
    check_reformer_buckets("bucket=16 hashes=4", 2, 32, 1, 8, 1);
    check_reformer_misc();
    fd_check(&pare_attn_reformer, "bucket=16", 16, 2, 4, 0, 1.0f, 2e-3f);
    fd_check(&pare_attn_reformer, "bucket=4 hashes=2", 16, 2, 4, 0, 1.0f, 1e-3f);
    fd_check(&pare_attn_reformer, "bucket=4 hashes=2 seed=3", 16, 2, 4, 1, 1.0f, 1e-3f);
    check_error(&pare_attn_reformer, "bucket=6", 64, 2, 0, "bucket");
    check_error(&pare_attn_reformer, "bucket=16", 48, 2, 0, "bucket");
    check_error(&pare_attn_reformer, "hashes=0", 64, 2, 0, "hashes");

    /* axial */
    for (int causal = 0; causal < 2; causal++)
        for (int padded = 0; padded < 2; padded++) {
            check_axial("rows=4", 4, 2, 32, 2, 8, causal, padded);
            check_axial("rows=6", 6, 3, 30, 1, 16, causal, padded);
            check_axial("", 8, 2, 64, 2, 8, causal, padded);
        }
    fd_check(&pare_attn_axial, "rows=4", 16, 2, 4, 0, 1.0f, 2e-3f);
    fd_check(&pare_attn_axial, "rows=3", 15, 2, 4, 1, 1.0f, 2e-3f);
    {
        pare_attn_cost c1, c2;
        pare_attn *a1 = make_v(&pare_attn_axial, "", 1024, 2, 16, 0), *a2 = make_v(&pare_attn_axial, "", 4096, 2, 16, 0);
        pare_attn_cost_of(a1, 1, &c1), pare_attn_cost_of(a2, 1, &c2);
        ok(c1.pairs == 2 * 1024 * 64 && c2.pairs == 2 * 4096 * 128,
           "axial cost: pairs H·T·(rows + cols) (32x32 at T=1024: %lld; 64x64 at T=4096: %lld, full: %lld)",
           (long long)c1.pairs, (long long)c2.pairs, (long long)(2LL * 4096 * 4096));
        pare_attn_free(a1), pare_attn_free(a2);
    }
    check_error(&pare_attn_axial, "rows=5", 64, 2, 0, "rows");
    check_error(&pare_attn_axial, "rows=65", 64, 2, 0, "rows");

    /* lsra */
    for (int causal = 0; causal < 2; causal++)
        for (int padded = 0; padded < 2; padded++) {
            check_lsra("kernel=3", 2, 30, 2, 8, causal, padded);
            check_lsra("attn_heads=1 kernel=5", 3, 41, 3, 8, causal, padded);
            check_lsra("attn_heads=3", 1, 50, 4, 4, causal, padded);
        }
    check_lsra("kernel=4", 2, 20, 2, 4, 1, 1);
    fd_check(&pare_attn_lsra, "kernel=3", 12, 2, 4, 0, 1.0f, 2e-3f);
    fd_check(&pare_attn_lsra, "attn_heads=1 kernel=4", 12, 3, 4, 1, 1.0f, 2e-3f);
    check_error(&pare_attn_lsra, "kernel=4", 64, 2, 0, "kernel");
    check_error(&pare_attn_lsra, "attn_heads=2", 64, 2, 0, "attn_heads");
    check_error(&pare_attn_lsra, "", 64, 1, 0, "H >= 2");

    /* every variant: thread count and layout independence */
    check_threads_and_layout(&pare_attn_linear, "", 0);
    check_threads_and_layout(&pare_attn_linear, "", 1);
    check_threads_and_layout(&pare_attn_linformer, "k=16 share=none", 0);
    check_threads_and_layout(&pare_attn_performer, "features=32", 1);
    check_threads_and_layout(&pare_attn_reformer, "bucket=8 hashes=2", 1);
    check_threads_and_layout(&pare_attn_axial, "rows=6", 0);
    check_threads_and_layout(&pare_attn_lsra, "kernel=5", 1);

    return tap_done();
}
