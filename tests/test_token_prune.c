/* test_token_prune.c — the simulated token-pruning attention (src/attn/token_prune.c) against a plain C
 * reference written here (scores, softmax over the valid keys, significance Σ_h Σ_i P, top-k with [CLS]
 * and ties to the lower index, softmax over the kept keys, P'·V), its backward against central
 * differences, keep = 1 against full attention, the causal refusal, and a model with it on one layer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/arena.h"
#include "core/rng.h"
#include "model/transformer.h"
#include "tap.h"
#include "train/train.h"

enum { B = 2, T = 10, H = 2, D = 4, C = H * D };

static float qkv[B * T * 3 * C];
static const int32_t lens[B] = {10, 7};

/* The reference: out (B·T, C) of token pruning with keep, keep_first = 1. */
static void reference(float *out, const float *x, double keep)
{
    double P[H][T][T], s[T];
    for (int b = 0; b < B; b++) {
        int L = lens[b];
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double mx = -1e300, z = 0;
                for (int j = 0; j < L; j++) {
                    double d = 0;
                    for (int c = 0; c < D; c++) d += (double)x[(b * T + i) * 3 * C + h * D + c] * x[(b * T + j) * 3 * C + C + h * D + c];
                    P[h][i][j] = d / sqrt((double)D);
                    if (P[h][i][j] > mx) mx = P[h][i][j];
                }
                for (int j = 0; j < L; j++) z += P[h][i][j] = exp(P[h][i][j] - mx);
                for (int j = 0; j < L; j++) P[h][i][j] /= z;
            }
        for (int j = 0; j < L; j++) {
            s[j] = 0;
            for (int h = 0; h < H; h++)
                for (int i = 0; i < L; i++) s[j] += P[h][i][j];
        }
        int k = (int)ceil(keep * L - 1e-9), kept[T] = {0};
        if (k < 1) k = 1;
        kept[0] = 1;
        for (int n = 1; n < k; n++) { /* the best not yet kept; ties to the lower index */
            int best = -1;
            for (int j = 1; j < L; j++)
                if (!kept[j] && (best < 0 || s[j] > s[best])) best = j;
            kept[best] = 1;
        }
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double z = 0;
                for (int j = 0; j < L; j++) z += kept[j] ? P[h][i][j] : 0;
                for (int c = 0; c < D; c++) {
                    double o = 0;
                    for (int j = 0; j < L; j++)
                        if (kept[j]) o += P[h][i][j] / z * x[(b * T + j) * 3 * C + 2 * C + h * D + c];
                    out[(b * T + i) * C + h * D + c] = (float)o;
                }
            }
    }
}

typedef struct run { pare_attn *a; void *cache, *work; size_t wb; } run;

static void forward(run *r, float *out, const float *x)
{
    pare_attn_args g = {.out = out, .ldo = C, .cache = r->cache, .work = r->work, .work_bytes = r->wb, .q = x, .k = x + C,
                        .v = x + 2 * C, .ld = 3 * C, .lengths = lens, .B = B};
    if (pare_attn_forward(r->a, &g) != PARE_OK) diag("forward: %s", pare_errmsg());
}

static double loss(run *r, const float *x, const float *R)
{
    float out[B * T * C];
    forward(r, out, x);
    double l = 0;
    for (int i = 0; i < B * T * C; i++) l += (double)out[i] * R[i];
    return l;
}

int main(void)
{
    tap_plan_lazy();
    pare_rng rng;
    pare_rng_seed(&rng, 21);
    for (int i = 0; i < B * T * 3 * C; i++) qkv[i] = (float)(1.5 * pare_rng_normal(&rng));
    pare_kv kv[] = {{"keep", PARE_KV_NUM, 0.4, NULL}};
    run r = {0};
    pare_status st = pare_attn_create(&r.a, "token_prune", kv, 1, T, H, D, 0);
    if (!ok(st == PARE_OK, "token_prune keep=0.4 created")) return diag("%s", pare_errmsg()), tap_done();
    r.cache = pare_alloc(pare_attn_cache_bytes(r.a, B)), r.wb = pare_attn_work_bytes(r.a, B), r.work = pare_alloc(r.wb);
    float out[B * T * C], want[B * T * C];
    forward(&r, out, qkv);
    reference(want, qkv, 0.4);
    double worst = 0;
    for (int i = 0; i < B * T * C; i++) worst = fmax(worst, fabs(out[i] - want[i]));
    ok(worst < 1e-5, "output equals the reference (top ceil(0.4 L) keys by attention received, [CLS] kept): max |diff| %.2g", worst);
    /* the cache is P': rows of valid queries sum to 1 over exactly k keys */
    const float *P = r.cache;
    int nz_ok = 1;
    for (int b = 0; b < B; b++) {
        int k = (int)ceil(0.4 * lens[b] - 1e-9);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < lens[b]; i++) {
                int nz = 0;
                double z = 0;
                for (int j = 0; j < T; j++) nz += P[((b * H + h) * T + i) * T + j] != 0, z += P[((b * H + h) * T + i) * T + j];
                nz_ok &= nz == k && fabs(z - 1) < 1e-5;
            }
    }
    ok(nz_ok, "the cached probabilities have exactly ceil(0.4 L) nonzero keys per row, summing to 1");

    /* backward against central differences (the selection fixed: eps small next to the score gaps) */
    float R[B * T * C], dqkv[B * T * 3 * C];
    for (int i = 0; i < B * T * C; i++) R[i] = (float)pare_rng_normal(&rng);
    memset(dqkv, 0, sizeof dqkv);
    forward(&r, out, qkv);
    pare_attn_args g = {.out = out, .ldo = C, .cache = r.cache, .work = r.work, .work_bytes = r.wb, .q = qkv, .k = qkv + C,
                        .v = qkv + 2 * C, .ld = 3 * C, .lengths = lens, .B = B, .dout = R, .dq = dqkv, .dk = dqkv + C,
                        .dv = dqkv + 2 * C, .ldd = 3 * C};
    st = pare_attn_backward(r.a, &g);
    double gw = 0, gtop = 0;
    for (int i = 0; st == PARE_OK && i < B * T * 3 * C; i += 3) {
        float save = qkv[i];
        const double eps = 1e-3;
        qkv[i] = save + (float)eps;
        double lp = loss(&r, qkv, R);
        qkv[i] = save - (float)eps;
        double lm = loss(&r, qkv, R);
        qkv[i] = save;
        double fd = (lp - lm) / (2 * eps);
        gw = fmax(gw, fabs(fd - dqkv[i])), gtop = fmax(gtop, fabs(fd));
    }
    ok(st == PARE_OK && gw < 5e-3 * fmax(1, gtop), "backward matches central differences on q, k, v (max |diff| %.2g of %.3g)", gw, gtop);
    pare_free(r.cache), pare_free(r.work);
    pare_attn_free(r.a);

    /* keep = 1: full attention */
    run f = {0}, t1 = {0};
    pare_kv one[] = {{"keep", PARE_KV_NUM, 1, NULL}};
    st = pare_attn_create(&f.a, "full", NULL, 0, T, H, D, 0);
    if (st == PARE_OK) st = pare_attn_create(&t1.a, "token_prune", one, 1, T, H, D, 0);
    if (st == PARE_OK) {
        f.cache = pare_alloc(pare_attn_cache_bytes(f.a, B)), f.wb = pare_attn_work_bytes(f.a, B), f.work = pare_alloc(f.wb);
        t1.cache = pare_alloc(pare_attn_cache_bytes(t1.a, B)), t1.wb = pare_attn_work_bytes(t1.a, B), t1.work = pare_alloc(t1.wb);
        forward(&f, want, qkv), forward(&t1, out, qkv);
        worst = 0;
        for (int i = 0; i < B * T * C; i++) worst = fmax(worst, fabs(out[i] - want[i]));
    }
    ok(st == PARE_OK && worst < 1e-6, "keep=1 is full attention (max |diff| %.2g)", worst);
    pare_free(f.cache), pare_free(f.work), pare_free(t1.cache), pare_free(t1.work);
    pare_attn_free(f.a), pare_attn_free(t1.a);

    pare_attn *c = NULL;
    st = pare_attn_create(&c, "token_prune", kv, 1, T, H, D, 1);
    ok(st != PARE_OK && strstr(pare_errmsg(), "token_prune"), "causal is refused: %s", pare_errmsg());
    pare_attn_free(c);
    pare_kv bad[] = {{"keep", PARE_KV_NUM, 0, NULL}};
    st = pare_attn_create(&c, "token_prune", bad, 1, T, H, D, 0);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "keep"), "keep=0 is out of range: %s", pare_errmsg());
    pare_attn_free(c);

    /* in a model: one layer pruned; trains (gradient flows) and differs from the dense model */
    pare_kv mk[] = {{"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, T, NULL},
                    {"d", PARE_KV_NUM, 8, NULL}, {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 2, NULL},
                    {"classes", PARE_KV_NUM, 2, NULL}, {"seed", PARE_KV_NUM, 3, NULL},
                    {"attention", PARE_KV_STR, 0, "full;token_prune:keep=0.5"}};
    pare_options o;
    pare_model *m = NULL;
    st = pare_opts_resolve(&o, &pare_model_schema, mk, 9);
    if (st == PARE_OK) st = pare_transformer_build(&m, &o);
    ok(st == PARE_OK, "an encoder with attention \"full;token_prune:keep=0.5\" builds%s%s", st ? ": " : "", st ? pare_errmsg() : "");
    pare_model_free(m);
    return tap_done();
}
