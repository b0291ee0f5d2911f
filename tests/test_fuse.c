/* test_fuse.c — the unfused graph and the fuse pass (docs/fusion.md).
 *
 * Kernels (kernels/fuse_ops.h): the attention ops chained (split, Q·Kᵀ, div, mask, softmax, P·V, merge) and
 * their fused forms (strided products, masked softmax) against pare_attention_forward_ref, the batched
 * products against their loop references, add+LayerNorm against add then LayerNorm, and every backward
 * against central differences of L = Σ out · R through the f32 kernel.
 * Graphs: the builder's fused=false graph computes what the fused builder's does (logits, loss and every
 * gradient, with the same weights), its gradients match central differences, it saves and loads; the fuse
 * pass's rules each alone keep the unfused graph's outputs, all together give the fused builder's graph
 * (the same JSON, the same weights bit for bit) or an equivalent one, fused ops differentiate correctly,
 * patterns that do not match are left alone, and what cannot be fused is refused by name.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/pass.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/ops.h"
#include "graph/rewrite.h"
#include "graph/serialize.h"
#include "graph/transform.h"
#include "io/safetensors.h"
#include "kernels/fuse_ops.h"
#include "kernels/gemm.h"
#include "kernels/nn.h"
#include "model/transformer.h"
#include "tap.h"

static pare_rng g_rng;

static float *zeros(int64_t n)
{
    float *p = calloc((size_t)(n ? n : 1), sizeof(float));
    if (!p) exit(2);
    return p;
}
static float *randn(int64_t n, float s)
{
    float *x = zeros(n);
    for (int64_t i = 0; i < n; i++) x[i] = s * (float)pare_rng_normal(&g_rng);
    return x;
}
static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---- central differences through the f32 kernels ----
 * loss(ctx) reads the input x (perturbed in place at k sampled coordinates); g its analytic gradient. */
typedef double (*loss_fn)(void *ctx);

static void gradcheck(const char *what, loss_fn loss, void *ctx, float *x, const float *g, int64_t n, int samples,
                      double eps)
{
    double worst = 0;
    int64_t where = -1;
    for (int s = 0; s < samples; s++) {
        int64_t j = samples >= n ? s : (int64_t)pare_rng_below(&g_rng, (uint64_t)n);
        if (j >= n) break;
        float keep = x[j];
        x[j] = keep + (float)eps;
        double lp = loss(ctx);
        x[j] = keep - (float)eps;
        double lm = loss(ctx);
        x[j] = keep;
        double num = (lp - lm) / (2 * eps), err = fabs(num - g[j]) / (1e-2 + fabs(num) + fabs(g[j]));
        if (err > worst) worst = err, where = j;
    }
    ok(worst < 2e-2, "%s: backward matches central differences (worst relative error %.1e at %lld)", what, worst,
       (long long)where);
}

/* ---- kernels ---- */

enum { KB = 2, KT = 7, KH = 3, KD = 4, KC = KH * KD };
static const int32_t klen[KB] = {7, 4};

/* the unfused chain on qkv (B·T, 3C): out (B·T, C), probabilities P (B,H,T,T) */
static void chain(float *out, float *P, const float *qkv, int causal)
{
    float *q = zeros(KB * KT * KC), *k = zeros(KB * KT * KC), *v = zeros(KB * KT * KC), *o = zeros(KB * KT * KC);
    float *S = zeros(KB * KH * KT * KT);
    pare_head_split_forward(q, qkv, 3 * KC, KB, KT, KH, KD);
    pare_head_split_forward(k, qkv + KC, 3 * KC, KB, KT, KH, KD);
    pare_head_split_forward(v, qkv + 2 * KC, 3 * KC, KB, KT, KH, KD);
    pare_bmm_qk_forward(S, pare_bhtd_heads(q, KH, KT, KD), pare_bhtd_heads(k, KH, KT, KD), KB, KH, KT, KD);
    pare_div_forward(S, S, sqrtf((float)KD), KB * KH * KT * KT);
    pare_mask_add_forward(S, S, klen, causal, KB, KH, KT);
    pare_softmax_forward(P, S, KB * KH * KT, KT);
    pare_bmm_pv_forward(pare_bhtd_heads(o, KH, KT, KD), P, pare_bhtd_heads(v, KH, KT, KD), KB, KH, KT, KD);
    pare_head_merge_forward(out, o, KB, KT, KH, KD);
    free(q), free(k), free(v), free(o), free(S);
}

/* the strided chain: products reading qkv in place, the masked softmax, P·V written merged */
static void strided_chain(float *out, float *P, float *qkv, int causal)
{
    float *S = zeros(KB * KH * KT * KT);
    pare_bmm_qk_forward(S, pare_bhtd_tokens(qkv, KT, 3 * KC, KD), pare_bhtd_tokens(qkv + KC, KT, 3 * KC, KD), KB, KH, KT, KD);
    pare_masked_softmax_forward(P, S, sqrtf((float)KD), klen, causal, KB, KH, KT);
    pare_bmm_pv_forward(pare_bhtd_tokens(out, KT, KC, KD), P, pare_bhtd_tokens(qkv + 2 * KC, KT, 3 * KC, KD), KB, KH, KT, KD);
    free(S);
}

static void kernel_chain(void)
{
    for (int causal = 0; causal < 2; causal++) {
        float *qkv = randn(KB * KT * 3 * KC, 1.0f), *ref = zeros(KB * KT * KC), *att = zeros(KB * KH * KT * KT);
        float *out = zeros(KB * KT * KC), *P = zeros(KB * KH * KT * KT), *out2 = zeros(KB * KT * KC),
              *P2 = zeros(KB * KH * KT * KT);
        pare_attention_forward_ref(ref, att, qkv, klen, causal, KB, KT, KC, KH);
        chain(out, P, qkv, causal);
        strided_chain(out2, P2, qkv, causal);
        char what[96];
        snprintf(what, sizeof what, "split+QKᵀ+div+mask+softmax+PV+merge = attention (%s)", causal ? "causal" : "bidirectional");
        is_close_arr(out, ref, KB * KT * KC, 1e-5, 1e-5, what);
        is_close_arr(P, att, KB * KH * KT * KT, 1e-6, 1e-5, "  its probabilities = the attention's (masked exactly 0)");
        snprintf(what, sizeof what, "strided QKᵀ + masked softmax + strided PV = attention (%s)", causal ? "causal" : "bidirectional");
        is_close_arr(out2, ref, KB * KT * KC, 1e-5, 1e-5, what);
        int zeros_exact = 1;
        for (int64_t b = 0; b < KB; b++)
            for (int64_t r = 0; r < KH * KT; r++)
                for (int64_t j = klen[b]; j < KT; j++) zeros_exact &= P2[(b * KH * KT + r) * KT + j] == 0.0f;
        ok(zeros_exact, "  masked keys have probability exactly 0");
        free(qkv), free(ref), free(att), free(out), free(P), free(out2), free(P2);
    }
    /* the batched products against their loop references, on both layouts */
    float *qkv = randn(KB * KT * 3 * KC, 1.0f), *S = zeros(KB * KH * KT * KT), *Sr = zeros(KB * KH * KT * KT);
    pare_bhtd q = pare_bhtd_tokens(qkv, KT, 3 * KC, KD), k = pare_bhtd_tokens(qkv + KC, KT, 3 * KC, KD);
    pare_bmm_qk_forward(S, q, k, KB, KH, KT, KD);
    pare_bmm_qk_ref(Sr, q, k, KB, KH, KT, KD);
    is_close_arr(S, Sr, KB * KH * KT * KT, 1e-5, 1e-5, "bmm_qk (strided) = its reference");
    float *o = zeros(KB * KH * KT * KD), *orf = zeros(KB * KH * KT * KD);
    pare_bmm_pv_forward(pare_bhtd_heads(o, KH, KT, KD), S, pare_bhtd_tokens(qkv + 2 * KC, KT, 3 * KC, KD), KB, KH, KT, KD);
    pare_bmm_pv_ref(pare_bhtd_heads(orf, KH, KT, KD), S, pare_bhtd_tokens(qkv + 2 * KC, KT, 3 * KC, KD), KB, KH, KT, KD);
    is_close_arr(o, orf, KB * KH * KT * KD, 1e-5, 1e-5, "bmm_pv (head-major out, strided v) = its reference");
    /* split then merge is the identity; split reads the right columns */
    float *x = randn(KB * KT * KC, 1.0f), *h = zeros(KB * KT * KC), *back = zeros(KB * KT * KC);
    pare_head_split_forward(h, x, KC, KB, KT, KH, KD);
    pare_head_merge_forward(back, h, KB, KT, KH, KD);
    ok(!memcmp(x, back, sizeof(float) * KB * KT * KC) && h[((1 * KH + 2) * KT + 3) * KD + 1] == x[(1 * KT + 3) * KC + 2 * KD + 1],
       "head split then merge is the identity; (b,h,t,d) = x[b·T + t, h·D + d]");
    free(qkv), free(S), free(Sr), free(o), free(orf), free(x), free(h), free(back);
}

/* loss contexts for the backward checks */
typedef struct kctx {
    float *q, *k, *v, *P, *S, *a, *b, *w, *bias, *R, *out, *mean, *rstd;
    int causal, which;
} kctx;

static double qk_loss(void *c)
{
    kctx *k = c;
    pare_bmm_qk_forward(k->out, pare_bhtd_tokens(k->q, KT, 2 * KC, KD), pare_bhtd_heads(k->k, KH, KT, KD), KB, KH, KT, KD);
    return dot(k->out, k->R, KB * KH * KT * KT);
}
static double pv_loss(void *c)
{
    kctx *k = c;
    pare_bmm_pv_forward(pare_bhtd_tokens(k->out, KT, KC, KD), k->P, pare_bhtd_heads(k->v, KH, KT, KD), KB, KH, KT, KD);
    return dot(k->out, k->R, KB * KT * KC);
}
static double msm_loss(void *c)
{
    kctx *k = c;
    pare_masked_softmax_forward(k->out, k->S, 1.7f, klen, k->causal, KB, KH, KT);
    return dot(k->out, k->R, KB * KH * KT * KT);
}
static double split_loss(void *c)
{
    kctx *k = c;
    pare_head_split_forward(k->out, k->q + KD, 2 * KC, KB, KT, KH, KD);
    return dot(k->out, k->R, KB * KT * KC);
}
static double merge_loss(void *c)
{
    kctx *k = c;
    pare_head_merge_forward(k->out, k->v, KB, KT, KH, KD);
    return dot(k->out, k->R, KB * KT * KC);
}
static double mask_div_loss(void *c)
{
    kctx *k = c;
    float *t = zeros(KB * KH * KT * KT);
    pare_div_forward(t, k->S, 1.7f, KB * KH * KT * KT);
    pare_mask_add_forward(k->out, t, klen, k->causal, KB, KH, KT);
    /* masked entries are −FLT_MAX + s/1.7: compare only what the mask lets through (their gradient is R as well) */
    double s = 0;
    for (int64_t i = 0; i < KB * KH * KT * KT; i++) s += k->out[i] > -1e30f ? (double)k->out[i] * k->R[i] : (double)t[i] * k->R[i];
    free(t);
    return s;
}
static double aln_loss(void *c)
{
    kctx *k = c;
    pare_add_layernorm_forward(k->out, NULL, NULL, k->a, k->b, k->w, k->bias, KB * KT, KC, 1e-5f);
    return dot(k->out, k->R, KB * KT * KC);
}

static void kernel_backward(void)
{
    kctx k = {0};
    int64_t nS = KB * KH * KT * KT, nX = KB * KT * KC;
    /* Q·Kᵀ with q a column block of a wider value (ld 2C, offset 0) and k head-major */
    k.q = randn(2 * nX, 1), k.k = randn(nX, 1), k.R = randn(nS, 1), k.out = zeros(nS);
    float *dq = zeros(2 * nX), *dk = zeros(nX);
    pare_bmm_qk_backward(pare_bhtd_tokens(dq, KT, 2 * KC, KD), pare_bhtd_heads(dk, KH, KT, KD), k.R,
                         pare_bhtd_tokens(k.q, KT, 2 * KC, KD), pare_bhtd_heads(k.k, KH, KT, KD), KB, KH, KT, KD);
    gradcheck("bmm_qk dq (strided)", qk_loss, &k, k.q, dq, 2 * nX, 60, 1e-2);
    gradcheck("bmm_qk dk", qk_loss, &k, k.k, dk, nX, 60, 1e-2);
    int untouched = 1; /* the columns beyond the block are not written */
    for (int64_t r = 0; r < KB * KT; r++)
        for (int64_t c = KC; c < 2 * KC; c++) untouched &= dq[r * 2 * KC + c] == 0.0f;
    ok(untouched, "  the gradient of a column block leaves the other columns alone");
    free(k.out), free(k.R);
    /* P·V, out merged (strided) */
    k.P = randn(nS, 0.3f), k.v = randn(nX, 1), k.R = randn(nX, 1), k.out = zeros(nX);
    float *dP = zeros(nS), *dv = zeros(nX);
    pare_bmm_pv_backward(dP, pare_bhtd_heads(dv, KH, KT, KD), pare_bhtd_tokens(k.R, KT, KC, KD), k.P,
                         pare_bhtd_heads(k.v, KH, KT, KD), KB, KH, KT, KD);
    gradcheck("bmm_pv dP", pv_loss, &k, k.P, dP, nS, 60, 1e-2);
    gradcheck("bmm_pv dv", pv_loss, &k, k.v, dv, nX, 60, 1e-2);
    free(k.out), free(k.R);
    /* split (a column block) and merge */
    k.R = randn(nX, 1), k.out = zeros(nX);
    float *dx = zeros(2 * nX), *dm = zeros(nX);
    pare_head_split_backward(dx + KD, k.R, 2 * KC, KB, KT, KH, KD);
    gradcheck("head_split (columns D..D+C of 2C)", split_loss, &k, k.q, dx, 2 * nX, 60, 1e-2);
    pare_head_merge_backward(dm, k.R, KB, KT, KH, KD);
    gradcheck("head_merge", merge_loss, &k, k.v, dm, nX, 60, 1e-2);
    free(k.out), free(k.R);
    /* div + mask, and the masked softmax */
    for (int causal = 0; causal < 2; causal++) {
        k.causal = causal;
        k.S = randn(nS, 1.5f), k.R = randn(nS, 1), k.out = zeros(nS);
        float *dS = zeros(nS), *dt = zeros(nS);
        for (int64_t i = 0; i < nS; i++) dt[i] = 0; /* mask_add passes R through; div scales it */
        pare_div_backward(dS, k.R, 1.7f, nS);
        gradcheck(causal ? "div + mask_add (causal)" : "div + mask_add", mask_div_loss, &k, k.S, dS, nS, 60, 1e-2);
        memset(dS, 0, sizeof(float) * (size_t)nS);
        pare_masked_softmax_forward(k.out, k.S, 1.7f, klen, causal, KB, KH, KT);
        float *P = zeros(nS);
        memcpy(P, k.out, sizeof(float) * (size_t)nS);
        pare_masked_softmax_backward(dS, P, k.R, 1.7f, KB, KH, KT);
        gradcheck(causal ? "masked_softmax (causal)" : "masked_softmax", msm_loss, &k, k.S, dS, nS, 80, 1e-3);
        free(k.S), free(k.R), free(k.out), free(dS), free(dt), free(P);
    }
    /* add + LayerNorm */
    k.a = randn(nX, 1), k.b = randn(nX, 1), k.w = randn(KC, 1), k.bias = randn(KC, 1), k.R = randn(nX, 1), k.out = zeros(nX);
    float *mean = zeros(KB * KT), *rstd = zeros(KB * KT), *ref = zeros(nX), *sum = zeros(nX), *m2 = zeros(KB * KT),
          *r2 = zeros(KB * KT);
    pare_add_layernorm_forward(k.out, mean, rstd, k.a, k.b, k.w, k.bias, KB * KT, KC, 1e-5f);
    for (int64_t i = 0; i < nX; i++) sum[i] = k.a[i] + k.b[i];
    pare_layernorm_forward_eps(ref, m2, r2, sum, k.w, k.bias, KB * KT, KC, 1e-5f);
    ok(!memcmp(ref, k.out, sizeof(float) * (size_t)nX) && !memcmp(mean, m2, sizeof(float) * KB * KT),
       "add_layernorm = add then layernorm, bit for bit (and the same statistics)");
    float *da = zeros(nX), *db = zeros(nX), *dw = zeros(KC), *dbias = zeros(KC);
    pare_add_layernorm_backward(da, db, dw, dbias, k.R, k.a, k.b, k.w, mean, rstd, KB * KT, KC);
    gradcheck("add_layernorm da", aln_loss, &k, k.a, da, nX, 60, 1e-2);
    gradcheck("add_layernorm db", aln_loss, &k, k.b, db, nX, 60, 1e-2);
    gradcheck("add_layernorm dweight", aln_loss, &k, k.w, dw, KC, KC, 1e-2);
    gradcheck("add_layernorm dbias", aln_loss, &k, k.bias, dbias, KC, KC, 1e-2);
    free(k.q), free(k.k), free(k.v), free(k.P), free(k.a), free(k.b), free(k.w), free(k.bias), free(k.R), free(k.out);
    free(dq), free(dk), free(dP), free(dv), free(dx), free(dm), free(mean), free(rstd), free(ref), free(sum), free(m2), free(r2);
    free(da), free(db), free(dw), free(dbias);
}

/* The Linear epilogues: oneDNN's post-ops on packed weights and the loop, against the GEMM then nn.h's
 * activation; the in-place backward against central differences. */
typedef struct ectx { float *z, *R, *y; int e; int64_t n; } ectx;
static double epi_loss(void *c)
{
    ectx *k = c;
    pare_epilogue_forward(k->y, k->z, k->e, k->n);
    return dot(k->y, k->R, k->n);
}

static void kernel_epilogues(void)
{
    enum { M = 37, N = 53, K = 29 };
    float *x = randn(M * K, 1), *W = randn(N * K, 0.3f), *bias = randn(N, 0.3f), *ref = zeros(M * N), *y = zeros(M * N);
    pare_f32_packed *wp = NULL;
    if (!ok(pare_f32_weight_pack(&wp, W, N, K) == PARE_OK, "packed weights")) return;
    for (int e = 0; e < PARE_EPILOGUE_COUNT; e++) {
        pare_linear_f32_ref(ref, x, W, bias, M, N, K);
        pare_epilogue_forward(ref, ref, e, M * N);
        char what[96];
        snprintf(what, sizeof what, "linear + %s: oneDNN post-op on packed weights = product then activation",
                 pare_epilogue_name(e));
        ok(pare_linear_f32_packed_act(y, x, wp, bias, M, e) == PARE_OK, "%s runs", what);
        is_close_arr(y, ref, M * N, 1e-5, 1e-5, what);
        if (e == PARE_EPILOGUE_NONE) continue;
        ectx c = {randn(M * N, 1.5f), randn(M * N, 1), zeros(M * N), e, M * N};
        float *g = zeros(M * N);
        memcpy(g, c.R, sizeof(float) * M * N);
        pare_epilogue_backward(g, c.z, e, M * N);
        snprintf(what, sizeof what, "epilogue %s", pare_epilogue_name(e));
        gradcheck(what, epi_loss, &c, c.z, g, M * N, 80, 1e-3);
        free(c.z), free(c.R), free(c.y), free(g);
    }
    ok(pare_linear_f32_packed_act(y, x, wp, bias, M, 9) == PARE_EINVAL, "an unknown epilogue is refused: %s", pare_errmsg());
    /* int8: the activation in the dequantization pass = the int8 Linear then the activation, bit for bit (with
     * LLM.int8() outlier columns too) */
    pare_i8_weight wq;
    if (ok(pare_i8_weight_quantize(&wq, W, N, K) == PARE_OK, "int8 weights")) {
        for (int outl = 0; outl < 2; outl++) {
            pare_i8_act act = {.mode = PARE_ACT_DYN_TOKEN, .symmetric = 1, .outlier_threshold = outl ? 1.5f : 0.0f};
            size_t wsb = pare_linear_i8_act_workspace(M, N, K, &act);
            void *ws = aligned_alloc(64, (wsb + 63) / 64 * 64);
            float *y8 = zeros(M * N), *r8 = zeros(M * N);
            for (int e = 1; e < PARE_EPILOGUE_COUNT && ws; e++) {
                pare_status a1 = pare_linear_i8_act(r8, x, &wq, W, bias, M, &act, ws, NULL);
                pare_epilogue_forward(r8, r8, e, M * N);
                pare_status a2 = pare_linear_i8_act_epilogue(y8, x, &wq, W, bias, M, &act, ws, NULL, e);
                ok(a1 == PARE_OK && a2 == PARE_OK && !memcmp(y8, r8, sizeof(float) * M * N),
                   "int8 GEMM + dequantize + %s in one pass = int8 Linear then %s, bit for bit%s", pare_epilogue_name(e),
                   pare_epilogue_name(e), outl ? " (LLM.int8() outlier columns)" : "");
            }
            free(ws), free(y8), free(r8);
        }
        pare_i8_weight_free(&wq);
    }
    pare_f32_packed_free(wp);
    free(x), free(W), free(bias), free(ref), free(y);
}

/* ---- models ---- */

enum { B = 3, T = 9 };
static int32_t tok[B * T], len[B] = {9, 6, 2}, lab[B * T];

/* A small model of `kind`; fused as given; norm pre or post; act gelu, gelu_erf or relu. */
static pare_model *build(const char *kind, int fused, const char *norm, const char *act)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, kind},         {"vocab", PARE_KV_NUM, 13, NULL},  {"max_T", PARE_KV_NUM, T, NULL},
        {"d", PARE_KV_NUM, 24, NULL},           {"heads", PARE_KV_NUM, 3, NULL},   {"layers", PARE_KV_NUM, 2, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},      {"ffn", PARE_KV_NUM, 40, NULL},    {"seed", PARE_KV_NUM, 5, NULL},
        {"fused", PARE_KV_BOOL, fused, NULL},   {"norm", PARE_KV_STR, 0, norm},    {"act", PARE_KV_STR, 0, act},
        {"type_vocab", PARE_KV_NUM, 2, NULL},   {"emb_norm", PARE_KV_BOOL, 1, NULL},
    };
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 14) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    return m;
}

/* Add 0.3·N(0,1) to every trainable weight of the unfused model u, each parameter from a generator seeded by its
 * name, so that fused and unfused models perturbed alike hold the same function (qkv: q, k, v in order). */
static uint64_t name_seed(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}
static void perturb(pare_model *m)
{
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        pare_rng r;
        pare_rng_seed(&r, name_seed(p->name));
        pare_param_make_private(p);
        for (int64_t k = 0; k < pare_param_numel(p); k++) p->blob->data[k] += (float)(0.3 * pare_rng_normal(&r));
    }
}

/* Copy the unfused model u's weights into the fused model f by name; f's qkv rows are u's q, k, v. */
static int copy_weights(pare_model *f, const pare_model *u)
{
    for (int64_t i = 0; i < f->nparams; i++) {
        pare_param *p = &f->params[i];
        pare_param_make_private(p);
        char name[PARE_NAME_MAX + 8];
        const char *qkv = strstr(p->name, "attn.qkv.");
        if (!qkv) {
            int j = pare_model_find_param(u, p->name);
            if (j < 0 || pare_param_numel(&u->params[j]) != pare_param_numel(p)) return 0;
            memcpy(p->blob->data, u->params[j].blob->data, sizeof(float) * (size_t)pare_param_numel(p));
            continue;
        }
        int64_t third = pare_param_numel(p) / 3;
        for (int s = 0; s < 3; s++) {
            snprintf(name, sizeof name, "%.*sattn.%c.%s", (int)(qkv - p->name), p->name, "qkv"[s], qkv + 9);
            int j = pare_model_find_param(u, name);
            if (j < 0 || pare_param_numel(&u->params[j]) != third) return 0;
            memcpy(p->blob->data + s * third, u->params[j].blob->data, sizeof(float) * (size_t)third);
        }
    }
    return 1;
}

/* logits (malloc'd) of an inference forward on the fixed batch; n their count */
static float *logits(pare_model *m, int64_t *n)
{
    pare_exec *x = NULL;
    float *out = NULL;
    if (pare_exec_new(&x, m, B, T, PARE_EXEC_INFER) != PARE_OK || pare_exec_bind(x, tok, len, lab) != PARE_OK ||
        pare_exec_forward(x) != PARE_OK) {
        diag("running %s failed: %s", m->kind, pare_errmsg());
    } else {
        *n = (m->lm ? B * T : B) * m->nclass;
        out = malloc(sizeof *out * (size_t)*n);
        memcpy(out, pare_exec_logits(x), sizeof *out * (size_t)*n);
    }
    pare_exec_free(x);
    return out;
}

/* 1 if a and b's logits agree within tol (absolute and relative to the largest); says so */
static int same_logits(pare_model *a, pare_model *b, double tol, const char *what)
{
    int64_t na = 0, nb = 0;
    float *la = logits(a, &na), *lb = logits(b, &nb);
    int good = 0;
    if (ok(la && lb && na == nb, "%s: both run", what)) {
        double worst = 0, scale = 1e-6;
        for (int64_t i = 0; i < na; i++) scale = fmax(scale, fabs(la[i]));
        for (int64_t i = 0; i < na; i++) worst = fmax(worst, fabs((double)la[i] - lb[i]) / scale);
        good = ok(worst <= tol, "%s: logits agree (max diff %.1e of the largest, tolerance %.0e)", what, worst, tol);
    }
    free(la), free(lb);
    return good;
}

static int count_op(const pare_model *m, pare_op_id op)
{
    int n = 0;
    for (int64_t i = 0; i < m->nnodes; i++) n += m->nodes[i].op == op;
    return n;
}

static void unfused_builder(void)
{
    const char *kinds[] = {"encoder", "decoder", "tagger"}, *norms[] = {"pre", "post", "pre"};
    for (int k = 0; k < 3; k++) {
        const char *act = k == 1 ? "gelu" : "gelu_erf";
        pare_model *u = build(kinds[k], 0, norms[k], act), *f = build(kinds[k], 1, norms[k], act);
        if (!u || !f) return;
        ok(count_op(u, PARE_OP_ATTENTION) == 0 && count_op(u, PARE_OP_HEAD_SPLIT) == 6 && count_op(u, PARE_OP_BMM_QK) == 2 &&
               count_op(u, PARE_OP_SOFTMAX) == 2 && count_op(u, PARE_OP_LINEAR) == count_op(f, PARE_OP_LINEAR) + 4 &&
               pare_model_param_count(u) == pare_model_param_count(f) && u->L == f->L && u->H == f->H,
           "%s fused=false: no attention op, 3 head splits, QKᵀ, div, mask, softmax, PV, merge per layer; as many "
           "parameters (%lld) as fused", kinds[k], (long long)pare_model_param_count(u));
        /* the same initialisation: q, k, v rows are the fused projection's rows */
        const char *blk = k == 1 ? "dec" : "enc";
        char nq[64], nqkv[64];
        snprintf(nq, sizeof nq, "%s.1.attn.k.weight", blk), snprintf(nqkv, sizeof nqkv, "%s.1.attn.qkv.weight", blk);
        int iq = pare_model_find_param(u, nq), iqkv = pare_model_find_param(f, nqkv);
        ok(iq >= 0 && iqkv >= 0 && !memcmp(u->params[iq].blob->data, f->params[iqkv].blob->data + 24 * 24, sizeof(float) * 24 * 24),
           "%s: initialised alike (k's weight = rows C..2C of qkv's)", kinds[k]);
        perturb(u);
        ok(copy_weights(f, u), "%s: weights copied to the fused model", kinds[k]);
        char what[64];
        snprintf(what, sizeof what, "%s fused=false vs fused", kinds[k]);
        same_logits(u, f, 1e-5, what);
        pare_model_free(u), pare_model_free(f);
    }
}

/* Gradients of the unfused model against the fused one's (same weights), and against central differences. */
static void unfused_gradients(void)
{
    pare_model *u = build("encoder", 0, "post", "gelu_erf"), *f = build("encoder", 1, "post", "gelu_erf");
    if (!u || !f) return;
    perturb(u);
    copy_weights(f, u);
    pare_exec *xu = NULL, *xf = NULL;
    if (!ok(pare_model_alloc_grads(u) == PARE_OK && pare_model_alloc_grads(f) == PARE_OK &&
                pare_exec_new(&xu, u, B, T, PARE_EXEC_TRAIN) == PARE_OK && pare_exec_new(&xf, f, B, T, PARE_EXEC_TRAIN) == PARE_OK &&
                pare_exec_bind(xu, tok, len, lab) == PARE_OK && pare_exec_bind(xf, tok, len, lab) == PARE_OK,
            "training executors on both"))
        return;
    pare_model_zero_grad(u), pare_model_zero_grad(f);
    pare_exec_forward(xu), pare_exec_backward(xu);
    pare_exec_forward(xf), pare_exec_backward(xf);
    ok(fabs(xu->loss - xf->loss) <= 1e-5 * fabs(xf->loss), "loss unfused %.7f = fused %.7f", xu->loss, xf->loss);
    double worst = 0, gmax = 1e-12;
    const char *where = "-";
    for (int64_t i = 0; i < f->nparams; i++) {
        const pare_param *p = &f->params[i];
        if (!p->grad) continue;
        const char *qkv = strstr(p->name, "attn.qkv.");
        int64_t n = pare_param_numel(p), parts = qkv ? 3 : 1;
        for (int s = 0; s < parts; s++) {
            char name[PARE_NAME_MAX + 8];
            if (qkv) snprintf(name, sizeof name, "%.*sattn.%c.%s", (int)(qkv - p->name), p->name, "qkv"[s], qkv + 9);
            else snprintf(name, sizeof name, "%s", p->name);
            int j = pare_model_find_param(u, name);
            if (j < 0) {
                worst = INFINITY, where = p->name;
                continue;
            }
            for (int64_t e = 0; e < n / parts; e++) {
                double a = p->grad[s * (n / parts) + e], b = u->params[j].grad[e];
                gmax = fmax(gmax, fabs(a));
                if (fabs(a - b) > worst) worst = fabs(a - b), where = u->params[j].name;
            }
        }
    }
    ok(worst <= 1e-5 * gmax, "every gradient of the unfused model equals the fused model's (max diff %.1e of %.1e, at %s)",
       worst, gmax, where);
    /* central differences on a sample of the unfused model's parameters */
    double fd_worst = 0;
    const char *fd_where = "-";
    pare_rng r;
    pare_rng_seed(&r, 3);
    for (int64_t i = 0; i < u->nparams; i++) {
        pare_param *p = &u->params[i];
        if (!p->trainable) continue;
        if (strstr(p->name, "attn.k.bias")) { /* softmax is blind to a constant per query: its gradient is 0 */
            double gk = 0;
            for (int64_t j = 0; j < pare_param_numel(p); j++) gk = fmax(gk, fabs(p->grad[j]));
            if (gk > 1e-5) fd_worst = INFINITY, fd_where = p->name;
            continue;
        }
        for (int k = 0; k < 3; k++) {
            int64_t j = (int64_t)pare_rng_below(&r, (uint64_t)pare_param_numel(p));
            float keep = p->blob->data[j];
            double e = 1e-2;
            p->blob->data[j] = keep + (float)e;
            pare_exec_forward(xu);
            double lp = xu->loss;
            p->blob->data[j] = keep - (float)e;
            pare_exec_forward(xu);
            double lm = xu->loss;
            p->blob->data[j] = keep;
            /* the floor 1e-2: the loss (~3) is f32, so its differences carry ~2e-5 of noise */
            double num = (lp - lm) / (2 * e), err = fabs(num - p->grad[j]) / (1e-2 + fabs(num) + fabs(p->grad[j]));
            if (err > fd_worst) fd_worst = err, fd_where = p->name;
        }
    }
    ok(fd_worst < 2e-2, "unfused gradients match central differences on every parameter (worst %.1e at %s; k's bias: 0)",
       fd_worst, fd_where);
    pare_exec_free(xu), pare_exec_free(xf);
    pare_model_free(u), pare_model_free(f);
}

/* The unfused graph saves and loads: the same graph and logits back. */
static void save_load(pare_model *m, const char *what)
{
    char path[] = "/tmp/pare_test_fuseXXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    pare_model *back = NULL;
    char *ja = NULL, *jb = NULL;
    if (!ok(pare_model_save(m, path) == PARE_OK && pare_model_load(&back, path) == PARE_OK, "%s: saved and loaded", what)) {
        diag("%s", pare_errmsg());
        unlink(path);
        return;
    }
    unlink(path);
    pare_graph_to_json(m, &ja), pare_graph_to_json(back, &jb);
    ok(ja && jb && !strcmp(ja, jb), "%s: the loaded graph is the saved one", what);
    same_logits(m, back, 0, what);
    free(ja), free(jb);
    pare_model_free(back);
}

/* ---- the fuse pass ---- */

static pare_model *fuse(const pare_model *m, const char *rules, const char *layers)
{
    pare_kv kv[] = {{"rules", PARE_KV_STR, 0, rules}, {"layers", PARE_KV_STR, 0, layers ? layers : "*"}};
    pare_model *out = NULL;
    if (pare_apply(&out, m, "fuse", kv, 2) != PARE_OK) return NULL;
    return out;
}

static int same_json(const pare_model *a, const pare_model *b)
{
    char *ja = NULL, *jb = NULL;
    int same = pare_graph_to_json(a, &ja) == PARE_OK && pare_graph_to_json(b, &jb) == PARE_OK && !strcmp(ja, jb);
    free(ja), free(jb);
    return same;
}

/* Every parameter of a equals b's of the same name, bit for bit, and they have the same names. */
static int same_weights(const pare_model *a, const pare_model *b)
{
    if (a->nparams != b->nparams) return 0;
    for (int64_t i = 0; i < a->nparams; i++) {
        int j = pare_model_find_param(b, a->params[i].name);
        if (j < 0 || pare_param_numel(&a->params[i]) != pare_param_numel(&b->params[j]) ||
            memcmp(a->params[i].blob->data, b->params[j].blob->data, sizeof(float) * (size_t)pare_param_numel(&a->params[i])))
            return 0;
    }
    return 1;
}

/* Each rule alone keeps the unfused graph's function and changes what it says. */
static void rules_alone(void)
{
    pare_model *u = build("encoder", 0, "post", "gelu_erf"), *ur = build("decoder", 0, "pre", "relu");
    if (!u || !ur) return;
    perturb(u), perturb(ur);
    const int L = 2;
    struct { const char *rule; pare_model *from; pare_op_id op; int want; const char *what; } cases[] = {
        {"qkv", u, PARE_OP_LINEAR, count_op(u, PARE_OP_LINEAR) - 2 * L, "two Linears fewer per layer"},
        {"strided", u, PARE_OP_HEAD_SPLIT, 0, "no head split left"},
        {"strided", u, PARE_OP_HEAD_MERGE, 0, "no head merge left"},
        {"softmax", u, PARE_OP_MASKED_SOFTMAX, L, "a masked softmax per layer"},
        {"softmax", u, PARE_OP_DIV, 0, "no div left"},
        {"attention", u, PARE_OP_ATTENTION, L, "an attention op per layer"},
        {"attention", u, PARE_OP_BMM_QK, 0, "no batched product left"},
        {"linear_gelu", u, PARE_OP_GELU, 0, "no GELU left"},
        {"linear_relu", ur, PARE_OP_RELU, 0, "no ReLU left"},
        {"linear_relu", u, PARE_OP_GELU, 2, "linear_relu leaves GELUs alone"},
        {"add_layernorm", u, PARE_OP_ADD_LAYERNORM, 2 * L + 1, "post-LN: every Add + LayerNorm, and the embeddings'"},
        {"add_layernorm", ur, PARE_OP_ADD_LAYERNORM, 2, "pre-LN: the embeddings' and the last Add + ln_f only (the residual "
                                                       "stream is read twice)"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pare_model *m = fuse(cases[c].from, cases[c].rule, NULL);
        if (!ok(m != NULL, "fuse rules=%s runs", cases[c].rule)) {
            diag("%s", pare_errmsg());
            continue;
        }
        ok(count_op(m, cases[c].op) == cases[c].want, "  rules=%s: %s (%d %s)", cases[c].rule, cases[c].what,
           count_op(m, cases[c].op), pare_op_name(cases[c].op));
        char what[64];
        snprintf(what, sizeof what, "  rules=%s vs unfused", cases[c].rule);
        same_logits(m, cases[c].from, 1e-5, what);
        pare_model_free(m);
    }
    pare_model_free(u), pare_model_free(ur);
}

/* All rules on the unfused graph give the fused builder's function; qkv + attention its very graph. */
static void rules_together(void)
{
    const char *kinds[] = {"encoder", "decoder", "tagger"}, *norms[] = {"post", "pre", "pre"};
    for (int k = 0; k < 3; k++) {
        pare_model *u = build(kinds[k], 0, norms[k], "gelu"), *f = build(kinds[k], 1, norms[k], "gelu");
        if (!u || !f) return;
        perturb(u);
        copy_weights(f, u);
        pare_model *a = fuse(u, "qkv,attention", NULL), *b = fuse(u, "attention", NULL), *all = fuse(u, "all", NULL);
        if (!ok(a && b && all, "%s: fuse qkv,attention / attention / all run", kinds[k])) {
            diag("%s", pare_errmsg());
            return;
        }
        ok(same_json(a, f) && same_weights(a, f),
           "%s: rules=qkv,attention on the unfused graph give the fused builder's graph (same JSON) and weights bit for bit",
           kinds[k]);
        ok(same_json(b, f) && same_weights(b, f), "%s: rules=attention alone too (it stacks q, k, v itself)", kinds[k]);
        same_logits(a, f, 0, "  identical graphs compute identical logits");
        char what[80];
        snprintf(what, sizeof what, "%s: rules=all vs the fused builder", kinds[k]);
        same_logits(all, f, 1e-5, what);
        ok(count_op(all, PARE_OP_GELU) == 0 && count_op(all, PARE_OP_ADD_LAYERNORM) >= 1 && count_op(all, PARE_OP_ATTENTION) == 2 &&
               all->L == f->L && all->H == f->H && all->F == f->F,
           "  rules=all: attention ops, no GELU node, Add+LayerNorm fused; the model's L, H, F kept");
        pare_model *again = fuse(f, "all", NULL), *twice = fuse(all, "all", NULL);
        ok(again && count_op(again, PARE_OP_ATTENTION) == 2 && count_op(again, PARE_OP_GELU) == 0,
           "  the fused builder's graph: only its Linear+GELU and Add+LayerNorm fuse");
        ok(twice && same_json(twice, all), "  fusing a fused graph again changes nothing");
        pare_model_free(u), pare_model_free(f), pare_model_free(a), pare_model_free(b), pare_model_free(all);
        pare_model_free(again), pare_model_free(twice);
    }
}

/* Backward through the fused ops: the fused model's gradients equal the unfused model's (same weights), and
 * central differences. */
static void fused_gradients(const char *rules)
{
    pare_model *u = build("encoder", 0, "post", "gelu"), *fz = NULL;
    if (!u) return;
    perturb(u);
    fz = fuse(u, rules, NULL);
    if (!ok(fz != NULL, "rules=%s: fused", rules)) return;
    pare_exec *xu = NULL, *xf = NULL;
    if (!ok(pare_model_alloc_grads(u) == PARE_OK && pare_model_alloc_grads(fz) == PARE_OK &&
                pare_exec_new(&xu, u, B, T, PARE_EXEC_TRAIN) == PARE_OK && pare_exec_new(&xf, fz, B, T, PARE_EXEC_TRAIN) == PARE_OK &&
                pare_exec_bind(xu, tok, len, lab) == PARE_OK && pare_exec_bind(xf, tok, len, lab) == PARE_OK,
            "  training executors"))
        return;
    pare_model_zero_grad(u), pare_model_zero_grad(fz);
    pare_exec_forward(xu), pare_exec_backward(xu);
    pare_exec_forward(xf), pare_exec_backward(xf);
    double worst = 0, gmax = 1e-12;
    const char *where = "-";
    for (int64_t i = 0; i < fz->nparams; i++) {
        const pare_param *p = &fz->params[i];
        if (!p->grad) continue;
        const char *qkv = strstr(p->name, "attn.qkv.");
        int64_t n = pare_param_numel(p), parts = qkv ? 3 : 1;
        for (int s = 0; s < parts; s++) {
            char name[PARE_NAME_MAX + 8];
            if (qkv) snprintf(name, sizeof name, "%.*sattn.%c.%s", (int)(qkv - p->name), p->name, "qkv"[s], qkv + 9);
            else snprintf(name, sizeof name, "%s", p->name);
            int j = pare_model_find_param(u, name);
            for (int64_t e = 0; j >= 0 && e < n / parts; e++) {
                double a = p->grad[s * (n / parts) + e], b = u->params[j].grad[e];
                gmax = fmax(gmax, fabs(b));
                if (fabs(a - b) > worst) worst = fabs(a - b), where = p->name;
            }
            if (j < 0) worst = INFINITY, where = p->name;
        }
    }
    ok(fabs(xu->loss - xf->loss) <= 1e-5 * fabs(xu->loss) && worst <= 1e-5 * gmax,
       "  rules=%s: loss and every gradient equal the unfused model's (max diff %.1e of %.1e, at %s)", rules, worst, gmax, where);
    double fd = 0;
    pare_rng r;
    pare_rng_seed(&r, 4);
    for (int64_t i = 0; i < fz->nparams; i++) {
        pare_param *p = &fz->params[i];
        if (!p->trainable || strstr(p->name, ".bias")) continue;
        for (int k = 0; k < 2; k++) {
            int64_t j = (int64_t)pare_rng_below(&r, (uint64_t)pare_param_numel(p));
            float keep = p->blob->data[j];
            p->blob->data[j] = keep + 1e-2f;
            pare_exec_forward(xf);
            double lp = xf->loss;
            p->blob->data[j] = keep - 1e-2f;
            pare_exec_forward(xf);
            double lm = xf->loss;
            p->blob->data[j] = keep;
            double num = (lp - lm) / 2e-2;
            fd = fmax(fd, fabs(num - p->grad[j]) / (1e-2 + fabs(num) + fabs(p->grad[j])));
        }
    }
    ok(fd < 2e-2, "  rules=%s: gradients match central differences (worst %.1e)", rules, fd);
    pare_exec_free(xu), pare_exec_free(xf);
    pare_model_free(u), pare_model_free(fz);
}

/* What does not match is left alone; what cannot be fused is refused by name. */
static void ignores_and_refuses(void)
{
    pare_model *u = build("encoder", 0, "post", "gelu");
    if (!u) return;
    perturb(u);
    pare_model *m = fuse(u, "all", "enc.0.*");
    ok(m && count_op(m, PARE_OP_ATTENTION) == 1 && count_op(m, PARE_OP_SOFTMAX) == 1 && count_op(m, PARE_OP_GELU) == 1,
       "layers=enc.0.*: layer 0 fused, layer 1 left as it was");
    if (m) same_logits(m, u, 1e-5, "  half fused vs unfused");
    pare_model_free(m);
    ok(!fuse(u, "qkv,gelu", NULL) && strstr(pare_errmsg(), "'gelu' is not a rule") && strstr(pare_errmsg(), "linear_gelu"),
       "an unknown rule is refused, naming the valid ones: %s", pare_errmsg());
    ok(!fuse(u, "all", "dec.*") && strstr(pare_errmsg(), "matches no node"), "layers matching nothing is refused: %s", pare_errmsg());
    /* a pattern whose intermediate value something else reads: the probabilities of layer 1 under a loss */
    pare_model *c = pare_model_clone(u);
    int p1 = pare_model_find_value(c, "enc.1.attn.softmax");
    int t = pare_model_add_target(c, "teacher.att", PARE_ROWS_CACHE_ATT, 3);
    int l = p1 >= 0 && t >= 0 ? pare_model_add_loss(c, PARE_OP_MSE, "att.mse", p1, t, 0.5f, 0) : -1;
    m = l >= 0 ? fuse(c, "all", NULL) : NULL;
    ok(m && count_op(m, PARE_OP_ATTENTION) == 1 && pare_model_find_value(m, "enc.1.attn.softmax") >= 0,
       "probabilities read by a loss: that layer's softmax and attention are not fused, the other layer's are");
    pare_model_free(m), pare_model_free(c);
    /* quantized projections cannot be stacked */
    pare_kv q[] = {{"layers", PARE_KV_STR, 0, "*.attn.*"}};
    pare_model *qm = NULL;
    ok(pare_apply(&qm, u, "dynamic_int8", q, 1) == PARE_OK && !fuse(qm, "qkv", NULL) && strstr(pare_errmsg(), "enc.0.attn.q") &&
           strstr(pare_errmsg(), "quantize"),
       "int8 q/k/v are refused by qkv: %s", pare_errmsg());
    m = qm ? fuse(qm, "strided,softmax,linear_gelu,add_layernorm", NULL) : NULL;
    ok(m && count_op(m, PARE_OP_MASKED_SOFTMAX) == 2, "the other rules fuse an int8 graph");
    if (m) same_logits(m, qm, 1e-5, "  fused int8 vs int8");
    pare_model_free(m), pare_model_free(qm);
    pare_model_free(u);
}

/* Gradients of m's trainable weights (not biases) against central differences, two coordinates each. */
static void grad_fd(pare_model *m, const char *what)
{
    pare_exec *x = NULL;
    if (pare_model_alloc_grads(m) != PARE_OK || pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) != PARE_OK ||
        pare_exec_bind(x, tok, len, lab) != PARE_OK) {
        ok(0, "%s: training executor: %s", what, pare_errmsg());
        pare_exec_free(x);
        return;
    }
    pare_model_zero_grad(m);
    pare_exec_forward(x), pare_exec_backward(x);
    double fd = 0;
    const char *where = "-";
    pare_rng r;
    pare_rng_seed(&r, 6);
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable || !p->grad || strstr(p->name, ".bias")) continue;
        for (int k = 0; k < 2; k++) {
            int64_t j = (int64_t)pare_rng_below(&r, (uint64_t)pare_param_numel(p));
            float keep = p->blob->data[j];
            p->blob->data[j] = keep + 1e-2f;
            pare_exec_forward(x);
            double lp = x->loss;
            p->blob->data[j] = keep - 1e-2f;
            pare_exec_forward(x);
            double lm = x->loss;
            p->blob->data[j] = keep;
            double num = (lp - lm) / 2e-2, err = fabs(num - p->grad[j]) / (1e-2 + fabs(num) + fabs(p->grad[j]));
            if (err > fd) fd = err, where = p->name;
        }
    }
    ok(fd < 2e-2, "%s: gradients match central differences (worst %.1e at %s)", what, fd, where);
    pare_exec_free(x);
}

/* The qat pass's two transforms on Linear `name`: the weight's per-channel log-scales learned, the input's per
 * tensor at log(ascale). */
static pare_status attach_qat(pare_model *m, const char *name, int bits, float ascale)
{
    int node = pare_model_find_node(m, name);
    if (node < 0) return pare_fail(PARE_EINVAL, "no node %s", name);
    const pare_param *w = &m->params[m->nodes[node].param[0]];
    int64_t N = w->shape[0], K = w->shape[1];
    char nm[PARE_NAME_MAX + 16];
    snprintf(nm, sizeof nm, "%s.wscale", name);
    int pw = pare_model_add_param(m, nm, 1, (int64_t[]){N, 1}, 1);
    snprintf(nm, sizeof nm, "%s.ascale", name);
    int pa = pare_model_add_param(m, nm, 1, (int64_t[]){1, 1}, 1);
    if (pw < 0 || pa < 0) return PARE_ENOMEM;
    const float *W = m->params[m->nodes[node].param[0]].blob->data;
    float qmax = (float)((1 << (bits - 1)) - 1);
    for (int64_t r = 0; r < N; r++) {
        float a = 0;
        for (int64_t k = 0; k < K; k++) a = fmaxf(a, fabsf(W[r * K + k]));
        m->params[pw].blob->data[r] = logf(a / qmax);
    }
    m->params[pa].blob->data[0] = logf(ascale);
    pare_transform tw = {.kind = PARE_TF_FAKE_QUANT, .operand = PARE_TF_WEIGHT, .bits = bits, .learn = 1, .aux = {pw, -1}};
    pare_transform ta = {.kind = PARE_TF_FAKE_QUANT, .operand = PARE_TF_INPUT, .bits = bits, .learn = 1, .aux = {pa, -1}};
    PARE_TRY(pare_node_attach(m, node, &tw));
    return pare_node_attach(m, node, &ta);
}

/* Quantization after fusion, weight transforms before and after it, and fused graphs through checkpoints. */
static void composes(void)
{
    pare_model *u = build("encoder", 0, "post", "gelu"), *all = NULL, *q = NULL, *qu = NULL;
    if (!u) return;
    perturb(u);
    all = fuse(u, "all", NULL);
    if (!all) return;
    pare_kv kv[] = {{"layers", PARE_KV_STR, 0, "*"}};
    ok(pare_apply(&q, all, "dynamic_int8", kv, 1) == PARE_OK && pare_apply(&qu, u, "dynamic_int8", kv, 1) == PARE_OK,
       "dynamic_int8 after fuse (and on the unfused graph)");
    int qkv = q ? pare_model_find_param(q, "enc.0.attn.qkv.weight") : -1, up = q ? pare_model_find_node(q, "enc.0.ffn.up") : -1;
    ok(qkv >= 0 && q->params[qkv].format == PARE_FMT_I8_CHANNEL && up >= 0 && q->nodes[up].a.epilogue == PARE_EPILOGUE_GELU &&
           q->params[q->nodes[up].param[0]].format == PARE_FMT_I8_CHANNEL,
       "  the stacked projection and the Linear+GELU are int8");
    if (q && qu) same_logits(q, qu, 1e-4, "  int8 fused vs int8 unfused");
    save_load(all, "all rules fused");
    /* masks before fusing are stacked with the weights; after fusing they sit on the fused Linears */
    pare_kv pk[] = {{"sparsity", PARE_KV_NUM, 0.5, NULL}};
    pare_model *pr = NULL, *prf = NULL, *fpr = NULL;
    ok(pare_apply(&pr, u, "prune_magnitude", pk, 1) == PARE_OK && (prf = fuse(pr, "all", NULL)) != NULL &&
           pare_apply(&fpr, all, "prune_magnitude", pk, 1) == PARE_OK,
       "prune_magnitude then fuse, and fuse then prune_magnitude");
    if (prf) {
        int n = pare_model_find_node(prf, "enc.1.attn.qkv");
        ok(n >= 0 && prf->nodes[n].ntf == 1 && prf->nodes[n].tf[0].kind == PARE_TF_MASK &&
               pare_param_numel(&prf->params[prf->nodes[n].tf[0].aux[0]]) == 3 * 24 * 24,
           "  the q, k, v masks are stacked into one (3C, C) mask on the stacked projection");
        same_logits(prf, pr, 1e-5, "  pruned then fused vs pruned");
    }
    if (fpr) {
        int n = pare_model_find_node(fpr, "enc.0.ffn.up");
        ok(n >= 0 && fpr->nodes[n].ntf == 1 && fpr->nodes[n].a.epilogue, "  a mask on the fused Linear+GELU");
        save_load(fpr, "fused then pruned");
        grad_fd(fpr, "fused then pruned (masked Linear+GELU, Add+LayerNorm, attention)");
    }
    /* QAT's fake quantization (as the qat pass attaches it): the per-channel weight scales are stacked; an input
     * scale per tensor must be the same for q, k and v (they read one input) */
    pare_model *qat = pare_model_clone(u), *qatf = NULL, *bad = NULL;
    int fits = 1;
    for (int j = 0; j < 3 && fits; j++) {
        char nm[64];
        snprintf(nm, sizeof nm, "enc.1.attn.%c", "qkv"[j]);
        fits = attach_qat(qat, nm, 4, j == 0 ? 0.5f : 0.5f) == PARE_OK;
    }
    ok(fits && (qatf = fuse(qat, "all", NULL)) != NULL, "4-bit QAT transforms on q, k, v, then fuse");
    if (qatf) {
        int n = pare_model_find_node(qatf, "enc.1.attn.qkv");
        ok(n >= 0 && qatf->nodes[n].ntf == 2 && pare_param_numel(&qatf->params[qatf->nodes[n].tf[0].aux[0]]) == 3 * 24 &&
               !strcmp(qatf->params[qatf->nodes[n].tf[0].aux[0]].name, "enc.1.attn.qkv.wscale"),
           "  the stacked projection carries the stacked per-channel scales (enc.1.attn.qkv.wscale, 3C)");
        same_logits(qatf, qat, 1e-5, "  QAT then fused vs QAT");
    } else diag("%s", pare_errmsg());
    bad = pare_model_clone(u);
    for (int j = 0; j < 3 && fits; j++) {
        char nm[64];
        snprintf(nm, sizeof nm, "enc.0.attn.%c", "qkv"[j]);
        fits = attach_qat(bad, nm, 4, 0.5f + 0.1f * (float)j) == PARE_OK;
    }
    ok(fits && !fuse(bad, "qkv", NULL) && strstr(pare_errmsg(), "different scales"),
       "input scales that differ between q, k and v are refused: %s", pare_errmsg());
    pare_model_free(pr), pare_model_free(prf), pare_model_free(fpr), pare_model_free(qat), pare_model_free(qatf), pare_model_free(bad);
    pare_model_free(u), pare_model_free(all), pare_model_free(q), pare_model_free(qu);
}

static void refusals(void)
{
    pare_kv kv[] = {{"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, 16, NULL}, {"fused", PARE_KV_BOOL, 0, NULL},
                    {"attention", PARE_KV_STR, 0, "longformer:window=4"}, {"kind", PARE_KV_STR, 0, "encdec"}};
    pare_options o;
    pare_model *m = NULL;
    ok(pare_opts_resolve(&o, &pare_model_schema, kv, 4) == PARE_OK && pare_transformer_build(&m, &o) != PARE_OK &&
           strstr(pare_errmsg(), "fused=false") && strstr(pare_errmsg(), "longformer"),
       "fused=false with an attention variant is refused: %s", pare_errmsg());
    pare_kv kv2[] = {kv[0], kv[1], kv[2], kv[4]};
    ok(pare_opts_resolve(&o, &pare_model_schema, kv2, 4) == PARE_OK && pare_transformer_build(&m, &o) != PARE_OK &&
           strstr(pare_errmsg(), "encdec"),
       "fused=false for an encdec is refused: %s", pare_errmsg());
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 11);
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)pare_rng_below(&g_rng, 13), lab[i] = (int32_t)(i % 3);
    kernel_chain();
    kernel_backward();
    kernel_epilogues();
    unfused_builder();
    unfused_gradients();
    pare_model *u = build("decoder", 0, "pre", "gelu");
    if (u) {
        perturb(u);
        save_load(u, "unfused decoder");
    }
    pare_model_free(u);
    refusals();
    rules_alone();
    rules_together();
    fused_gradients("all");
    fused_gradients("qkv,strided,softmax,linear_gelu,add_layernorm");
    ignores_and_refuses();
    composes();
    return tap_done();
}
