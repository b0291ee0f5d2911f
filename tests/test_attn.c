/* test_attn.c — the attention variants of src/attn against a dense masked reference written here.
 *
 * For every variant and several (T, H, D, causal, lengths): the pattern's dense mask (pare_attn_mask)
 * equals a mask computed here from the method's definition; forward and backward equal a double-
 * precision dense attention restricted to that mask; a finite-difference check of the backward;
 * flash equals full to 1e-5; results do not depend on the thread count or on q, k, v being packed;
 * the cost of the sparse variants is linear in T and equals the pairs the engine computed; bad options
 * fail with a message naming the option.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "core/rng.h"
#include "kernels/nn.h"
#include "tap.h"

/* ---- options as "key=value key=value" words ---- */

typedef struct kvset {
    pare_kv kv[16];
    char buf[512];
    int n;
} kvset;

static void parse_opts(kvset *s, const char *opts)
{
    snprintf(s->buf, sizeof s->buf, "%s", opts);
    s->n = 0;
    for (char *tok = strtok(s->buf, " "); tok && s->n < 16; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = '\0';
        s->kv[s->n++] = (pare_kv){tok, PARE_KV_STR, 0, eq + 1};
    }
}

/* Value of key in opts as text (def if absent). */
static const char *opt_text(const char *opts, const char *key, const char *def, char *out, size_t n)
{
    size_t kl = strlen(key);
    for (const char *p = opts; p && *p;) {
        while (*p == ' ') p++;
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            const char *v = p + kl + 1, *e = strchr(v, ' ');
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= n) len = n - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        p = strchr(p, ' ');
    }
    snprintf(out, n, "%s", def);
    return out;
}
static long opt_int(const char *opts, const char *key, long def)
{
    char buf[64], d[32];
    snprintf(d, sizeof d, "%ld", def);
    return atol(opt_text(opts, key, d, buf, sizeof buf));
}
/* Integers of a list option ("1,2" or "8:2:2"). */
static int opt_list(const char *opts, const char *key, const char *def, long *v, int cap)
{
    char buf[256];
    opt_text(opts, key, def, buf, sizeof buf);
    int n = 0;
    for (char *p = buf; *p && n < cap;) {
        v[n++] = strtol(p, &p, 10);
        if (*p) p++;
    }
    return n;
}

/* BigBird's random blocks as bigbird.c first drew them, over the built candidate list (O(nb) per query
 * block): the reference its sparse draw must equal, block for block. */
static int64_t bb_draw_ref(int64_t *out, uint64_t seed, int64_t h, int64_t qb, int64_t nb, int64_t g, int64_t wh,
                           int64_t r, int causal)
{
    int64_t *cand = malloc((size_t)nb * sizeof *cand), nc = 0;
    for (int64_t kb = g; kb < nb; kb++) {
        const int64_t dist = kb > qb ? kb - qb : qb - kb;
        if (dist > wh && (!causal || kb < qb)) cand[nc++] = kb;
    }
    pare_rng base, rng;
    pare_rng_seed(&base, seed);
    rng = pare_rng_split(&base, (uint64_t)(h * nb + qb));
    const int64_t take = r < nc ? r : nc;
    for (int64_t t = 0; t < take; t++) {
        const int64_t u = t + (int64_t)pare_rng_below(&rng, (uint64_t)(nc - t)), tmp = cand[t];
        cand[t] = cand[u], cand[u] = tmp;
    }
    for (int64_t t = 0; t < take; t++)
        for (int64_t u = t + 1; u < take; u++)
            if (cand[u] < cand[t]) {
                const int64_t tmp = cand[t];
                cand[t] = cand[u], cand[u] = tmp;
            }
    for (int64_t t = 0; t < take; t++) out[t] = cand[t];
    free(cand);
    return take;
}

static pare_attn *make(const char *kind, const char *opts, int64_t T, int64_t H, int64_t D, int causal)
{
    kvset s;
    parse_opts(&s, opts);
    pare_attn *a = NULL;
    if (pare_attn_create(&a, kind, s.kv, s.n, T, H, D, causal) != PARE_OK) {
        diag("create %s {%s} T=%lld: %s", kind, opts, (long long)T, pare_errmsg());
        return NULL;
    }
    return a;
}

/* ---- the masks, from the methods' definitions (independent of src/attn's patterns) ---- */

static void expected_mask(uint8_t *m, const pare_attn *a, const char *kind, const char *opts, int64_t h)
{
    const long T = (long)a->T, H = (long)a->H;
    for (long i = 0; i < T; i++)
        for (long j = 0; j < T; j++) {
            int c = 0;
            if (!strcmp(kind, "full") || !strcmp(kind, "flash")) {
                c = 1;
            } else if (!strcmp(kind, "block")) {
                long n = opt_int(opts, "blocks", 2), bs = T / n, cnt[64], shift = 0;
                int nc = opt_list(opts, "heads_config", "", cnt, 64);
                if (nc == 0) shift = h * n / H;
                else
                    for (long s = 0, acc = 0; s < nc; s++) {
                        if (h >= acc && h < acc + cnt[s]) shift = s;
                        acc += cnt[s];
                    }
                c = j / bs == (i / bs + shift) % n;
            } else if (!strcmp(kind, "fixed")) {
                char pat[32];
                opt_text(opts, "pattern", "fixed", pat, sizeof pat);
                long l = opt_int(opts, "stride", 128), cs = opt_int(opts, "summary", 8),
                     r = opt_int(opts, "radius", 64);
                long d = labs(i - j);
                if (!strcmp(pat, "local")) c = i / l == j / l;
                else if (!strcmp(pat, "radius")) c = d <= r;
                else if (!strcmp(pat, "strided")) c = d <= l || d % l == 0;
                else c = i / l == j / l || j % l >= l - cs;
            } else if (!strcmp(kind, "longformer")) {
                long w = opt_int(opts, "window", 64), g = opt_int(opts, "global", 1), dl[64];
                int nd = opt_list(opts, "dilation", "1", dl, 64);
                long dd = dl[h % nd], d = labs(i - j);
                c = i < g || j < g || (d <= dd * (w / 2) && d % dd == 0);
            } else if (!strcmp(kind, "bigbird")) {
                long bs = opt_int(opts, "block", 64), w = opt_int(opts, "window", 3), g = opt_int(opts, "global", 2);
                long qb = i / bs, kb = j / bs;
                c = qb < g || kb < g || labs(qb - kb) <= (w - 1) / 2;
                int64_t rb[64];
                int64_t nr = pare_attn_bigbird_random(a, h, qb, rb, 64);
                for (int64_t t = 0; t < nr; t++) c |= rb[t] == kb;
            } else if (!strcmp(kind, "longnet")) {
                long ws[16], rs[16];
                int nw = opt_list(opts, "segments", "", ws, 16);
                opt_list(opts, "rates", "", rs, 16);
                for (int q = 0; q < nw; q++) {
                    long s0 = i / ws[q] * ws[q], o = h % rs[q];
                    if (j / ws[q] == i / ws[q] && (i - s0 - o) % rs[q] == 0 && (j - s0 - o) >= 0 && (i - s0 - o) >= 0 &&
                        (j - s0 - o) % rs[q] == 0)
                        c++;
                }
            }
            if (a->causal && j > i) c = 0;
            m[i * T + j] = (uint8_t)c;
        }
}

/* ---- dense masked attention in double: packed qkv (B,T,3C), mask (H,T,T) multiplicities ---- */

static void ref_attention(float *out, float *dqkv, const float *qkv, const float *dout, const uint8_t *mask,
                          const int32_t *len, int64_t B, int64_t T, int64_t H, int64_t D)
{
    const int64_t C = H * D, C3 = 3 * C;
    const double scale = 1.0 / sqrt((double)D);
    double *P = malloc((size_t)(T * T) * sizeof *P), *dS = malloc((size_t)(T * T) * sizeof *dS);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t L = len ? len[b] : T;
            const float *Q = qkv + b * T * C3 + h * D, *K = Q + C, *V = Q + 2 * C;
            for (int64_t i = 0; i < T; i++) {
                double mx = -INFINITY, z = 0;
                for (int64_t j = 0; j < T; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < D; d++) s += (double)Q[i * C3 + d] * K[j * C3 + d];
                    P[i * T + j] = s * scale;
                    if (j < L && mask[(h * T + i) * T + j] && P[i * T + j] > mx) mx = P[i * T + j];
                }
                for (int64_t j = 0; j < T; j++) {
                    const int mult = j < L ? mask[(h * T + i) * T + j] : 0;
                    P[i * T + j] = mult ? mult * exp(P[i * T + j] - mx) : 0.0;
                    z += P[i * T + j];
                }
                for (int64_t j = 0; j < T; j++) P[i * T + j] = z > 0 ? P[i * T + j] / z : 0.0;
                for (int64_t d = 0; d < D; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < T; j++) o += P[i * T + j] * V[j * C3 + d];
                    out[(b * T + i) * C + h * D + d] = (float)o;
                }
            }
            if (!dqkv) continue;
            const float *dO = dout + b * T * C + h * D;
            float *dQ = dqkv + b * T * C3 + h * D, *dK = dQ + C, *dV = dQ + 2 * C;
            for (int64_t i = 0; i < T; i++) {
                double dv = 0;
                for (int64_t j = 0; j < T; j++) {
                    double dp = 0;
                    for (int64_t d = 0; d < D; d++) dp += (double)dO[i * C + d] * V[j * C3 + d];
                    dS[i * T + j] = dp;
                    dv += P[i * T + j] * dp;
                }
                for (int64_t j = 0; j < T; j++) dS[i * T + j] = P[i * T + j] * (dS[i * T + j] - dv);
            }
            for (int64_t i = 0; i < T; i++)
                for (int64_t d = 0; d < D; d++) {
                    double gq = 0, gk = 0, gv = 0;
                    for (int64_t j = 0; j < T; j++) {
                        gq += dS[i * T + j] * K[j * C3 + d];
                        gk += dS[j * T + i] * Q[j * C3 + d];
                        gv += P[j * T + i] * dO[j * C + d];
                    }
                    dQ[i * C3 + d] += (float)(gq * scale);
                    dK[i * C3 + d] += (float)(gk * scale);
                    dV[i * C3 + d] += (float)gv;
                }
        }
    free(P);
    free(dS);
}

/* ---- running a variant on a packed qkv ---- */

static void fill(float *x, int64_t n, uint64_t seed, float amp)
{
    pare_rng r;
    pare_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = amp * (float)(2.0 * pare_rng_uniform(&r) - 1.0);
}

/* out (B,T,C); dqkv (B,T,3C) zeroed then accumulated (if dout given). work_bytes 0 = pare_attn_work_bytes. */
static pare_status run(const pare_attn *a, float *out, float *dqkv, int64_t *pairs, const float *qkv,
                       const float *dout, const int32_t *len, int64_t B, size_t work_bytes)
{
    const int64_t C = a->H * a->D;
    size_t cb = pare_attn_cache_bytes(a, B), wb = work_bytes ? work_bytes : pare_attn_work_bytes(a, B);
    void *cache = malloc(cb ? cb : 1), *work = malloc(wb ? wb : 1);
    pare_attn_args x = {.out = out, .ldo = C, .cache = cache, .work = work, .work_bytes = wb, .pairs = pairs,
                        .q = qkv, .k = qkv + C, .v = qkv + 2 * C, .ld = 3 * C, .lengths = len, .B = B};
    pare_status st = pare_attn_forward(a, &x);
    if (st == PARE_OK && dout && dqkv) {
        memset(dqkv, 0, (size_t)(B * a->T * 3 * C) * sizeof(float));
        x.dout = dout, x.dq = dqkv, x.dk = dqkv + C, x.dv = dqkv + 2 * C, x.ldd = 3 * C;
        st = pare_attn_backward(a, &x);
    }
    free(cache);
    free(work);
    return st;
}

/* The variant vs the dense reference of its definition's mask: mask, forward, backward. */
static void check_case(const char *kind, const char *opts, int64_t B, int64_t T, int64_t H, int64_t D, int causal,
                       int padded)
{
    char what[256];
    snprintf(what, sizeof what, "%s {%s} B=%lld T=%lld H=%lld D=%lld%s%s", kind, opts, (long long)B, (long long)T,
             (long long)H, (long long)D, causal ? " causal" : "", padded ? " padded" : "");
    pare_attn *a = make(kind, opts, T, H, D, causal);
    if (!ok(a != NULL, "create %s", what)) return;
    const int64_t C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    uint8_t *mask = malloc((size_t)(H * T * T)), *got = malloc((size_t)(T * T));
    float *qkv = malloc(n3 * sizeof(float)), *dout = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float)),
          *ref = malloc(n * sizeof(float)), *dqkv = malloc(n3 * sizeof(float)), *dref = calloc(n3, sizeof(float));
    int32_t len[8];
    for (int64_t b = 0; b < B; b++) len[b] = padded ? (int32_t)(T - (b * 7 + 3) % (T / 2 + 1)) : (int32_t)T;
    int mask_ok = 1;
    for (int64_t h = 0; h < H; h++) {
        expected_mask(mask + h * T * T, a, kind, opts, h);
        pare_attn_mask(a, h, got);
        if (memcmp(got, mask + h * T * T, (size_t)(T * T))) {
            if (mask_ok)
                for (int64_t e = 0; e < T * T; e++)
                    if (got[e] != mask[h * T * T + e]) {
                        diag("head %lld: first difference at (i=%lld, j=%lld): pattern %d, definition %d", (long long)h,
                             (long long)(e / T), (long long)(e % T), got[e], mask[h * T * T + e]);
                        break;
                    }
            mask_ok = 0;
        }
    }
    ok(mask_ok, "mask == definition: %s", what);
    fill(qkv, n3, 11 + (uint64_t)T, 1.5f);
    fill(dout, n, 12 + (uint64_t)T, 1.0f);
    pare_status st = run(a, out, dqkv, NULL, qkv, dout, padded ? len : NULL, B, 0);
    if (ok(st == PARE_OK, "forward+backward run: %s", what)) {
        ref_attention(ref, dref, qkv, dout, mask, padded ? len : NULL, B, T, H, D);
        is_close_arr(out, ref, n, 2e-6, 2e-5, "  forward == dense masked reference");
        is_close_arr(dqkv, dref, n3, 1e-5, 1e-4, "  backward == dense masked reference");
    } else {
        diag("%s", pare_errmsg());
    }
    pare_attn_free(a);
    free(mask), free(got), free(qkv), free(dout), free(out), free(ref), free(dqkv), free(dref);
}

/* Central differences of loss = Σ w ⊙ out (double) against the backward, on a sample of q, k, v. */
static void fd_check(const char *kind, const char *opts, int64_t T, int64_t H, int64_t D, int causal)
{
    const int64_t B = 2, C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    pare_attn *a = make(kind, opts, T, H, D, causal);
    if (!ok(a != NULL, "fd: create %s", kind)) return;
    float *qkv = malloc(n3 * sizeof(float)), *w = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float)),
          *dqkv = malloc(n3 * sizeof(float));
    int32_t len[2] = {(int32_t)T, (int32_t)(T - T / 4)};
    fill(qkv, n3, 21, 1.0f);
    fill(w, n, 22, 1.0f);
    run(a, out, dqkv, NULL, qkv, w, len, B, 0);
    enum { NS = 48 };
    float an[NS], num[NS];
    pare_rng r;
    pare_rng_seed(&r, 23);
    const float eps = 4e-3f;
    for (int s = 0; s < NS; s++) {
        const int64_t idx = (int64_t)pare_rng_below(&r, (uint64_t)n3);
        const float keep = qkv[idx];
        double lp = 0, lm = 0;
        qkv[idx] = keep + eps;
        run(a, out, NULL, NULL, qkv, NULL, len, B, 0);
        for (int64_t e = 0; e < n; e++) lp += (double)w[e] * out[e];
        qkv[idx] = keep - eps;
        run(a, out, NULL, NULL, qkv, NULL, len, B, 0);
        for (int64_t e = 0; e < n; e++) lm += (double)w[e] * out[e];
        qkv[idx] = keep;
        an[s] = dqkv[idx];
        num[s] = (float)((lp - lm) / (2.0 * (double)eps));
    }
    char what[256];
    snprintf(what, sizeof what, "finite differences: %s {%s} T=%lld H=%lld D=%lld%s", kind, opts, (long long)T,
             (long long)H, (long long)D, causal ? " causal" : "");
    is_close_arr(an, num, NS, 2e-3, 2e-2, what);
    pare_attn_free(a);
    free(qkv), free(w), free(out), free(dqkv);
}

/* ---- flash vs full ---- */

static void check_flash(const char *opts, int64_t B, int64_t T, int64_t H, int64_t D, int causal, int padded)
{
    pare_attn *f = make("flash", opts, T, H, D, causal), *d = make("full", "", T, H, D, causal);
    if (!ok(f && d, "flash and full created")) return;
    const int64_t C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    float *qkv = malloc(n3 * sizeof(float)), *dout = malloc(n * sizeof(float)), *o1 = malloc(n * sizeof(float)),
          *o2 = malloc(n * sizeof(float)), *g1 = malloc(n3 * sizeof(float)), *g2 = malloc(n3 * sizeof(float));
    int32_t len[4] = {(int32_t)T, (int32_t)(T / 3), 1, (int32_t)(T - 1)};
    fill(qkv, n3, 31, 2.0f);
    fill(dout, n, 32, 1.0f);
    run(f, o1, g1, NULL, qkv, dout, padded ? len : NULL, B, 0);
    run(d, o2, g2, NULL, qkv, dout, padded ? len : NULL, B, 0);
    char what[200];
    snprintf(what, sizeof what, "flash {%s} == full, T=%lld H=%lld D=%lld%s%s: forward", opts, (long long)T,
             (long long)H, (long long)D, causal ? " causal" : "", padded ? " padded" : "");
    is_close_arr(o1, o2, n, 1e-5, 1e-5, what);
    snprintf(what, sizeof what, "flash {%s} == full, T=%lld%s%s: backward", opts, (long long)T, causal ? " causal" : "",
             padded ? " padded" : "");
    is_close_arr(g1, g2, n3, 1e-5, 1e-5, what);
    pare_attn_free(f), pare_attn_free(d);
    free(qkv), free(dout), free(o1), free(o2), free(g1), free(g2);
}

/* full vs nn.h's attention (same definition, packed layout). */
static void check_full_vs_nn(void)
{
    const int64_t B = 2, T = 70, H = 3, D = 8, C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    float *qkv = malloc(n3 * sizeof(float)), *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float)),
          *att = malloc((size_t)(B * H * T * T) * sizeof(float));
    int32_t len[2] = {50, 70};
    fill(qkv, n3, 41, 1.5f);
    for (int causal = 0; causal < 2; causal++) {
        pare_attn *a = make("full", "", T, H, D, causal);
        run(a, o1, NULL, NULL, qkv, NULL, len, B, 0);
        pare_attention_forward_ref(o2, att, qkv, len, causal, B, T, C, H);
        is_close_arr(o1, o2, n, 1e-6, 1e-5, causal ? "full == pare_attention_forward_ref (causal, padded)"
                                                   : "full == pare_attention_forward_ref (padded)");
        pare_attn_free(a);
    }
    free(qkv), free(o1), free(o2), free(att);
}

/* The same numbers on 1 thread (one work slot) as on all, and from separate q, k, v arrays. */
static void check_threads_and_layout(const char *kind, const char *opts, int causal)
{
    const int64_t B = 2, T = 96, H = 4, D = 8, C = H * D, n3 = B * T * 3 * C, n = B * T * C;
    pare_attn *a = make(kind, opts, T, H, D, causal);
    if (!ok(a != NULL, "create %s", kind)) return;
    float *qkv = malloc(n3 * sizeof(float)), *dout = malloc(n * sizeof(float)), *o1 = malloc(n * sizeof(float)),
          *o2 = malloc(n * sizeof(float)), *g1 = malloc(n3 * sizeof(float)), *g2 = malloc(n3 * sizeof(float));
    fill(qkv, n3, 51, 1.0f);
    fill(dout, n, 52, 1.0f);
    pare_attn_cost c;
    pare_attn_cost_of(a, B, &c);
    run(a, o1, g1, NULL, qkv, dout, NULL, B, 0);
    run(a, o2, g2, NULL, qkv, dout, NULL, B, c.slot_bytes ? c.slot_bytes : 0);
    ok(!memcmp(o1, o2, n * sizeof(float)) && !memcmp(g1, g2, n3 * sizeof(float)),
       "%s: one thread slot gives the same bits as %zu bytes of slots", kind, pare_attn_work_bytes(a, B));
    /* separate arrays q, k, v (B·T, C), out with a wider stride */
    float *q = malloc(n * sizeof(float)), *k = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float)),
          *o3 = calloc(B * T * (C + 5), sizeof(float)), *dq = calloc(n, sizeof(float)), *dk = calloc(n, sizeof(float)),
          *dv = calloc(n, sizeof(float));
    for (int64_t r = 0; r < B * T; r++)
        for (int64_t e = 0; e < C; e++)
            q[r * C + e] = qkv[r * 3 * C + e], k[r * C + e] = qkv[r * 3 * C + C + e],
            v[r * C + e] = qkv[r * 3 * C + 2 * C + e];
    float *dout2 = calloc(B * T * (C + 5), sizeof(float));
    for (int64_t r = 0; r < B * T; r++) memcpy(dout2 + r * (C + 5), dout + r * C, C * sizeof(float));
    size_t cb = pare_attn_cache_bytes(a, B), wb = pare_attn_work_bytes(a, B);
    void *cache = malloc(cb ? cb : 1), *work = malloc(wb ? wb : 1);
    pare_attn_args x = {.out = o3, .ldo = C + 5, .cache = cache, .work = work, .work_bytes = wb, .dout = dout2,
                        .dq = dq, .dk = dk, .dv = dv, .ldd = C, .q = q, .k = k, .v = v, .ld = C, .B = B};
    int same = pare_attn_forward(a, &x) == PARE_OK && pare_attn_backward(a, &x) == PARE_OK;
    for (int64_t r = 0; same && r < B * T; r++)
        same = !memcmp(o3 + r * (C + 5), o1 + r * C, C * sizeof(float)) &&
               !memcmp(dq + r * C, g1 + r * 3 * C, C * sizeof(float)) &&
               !memcmp(dk + r * C, g1 + r * 3 * C + C, C * sizeof(float)) &&
               !memcmp(dv + r * C, g1 + r * 3 * C + 2 * C, C * sizeof(float));
    ok(same, "%s: separate q, k, v (ld = C) and out stride C+5 give the packed layout's bits", kind);
    pare_attn_free(a);
    free(cache), free(work), free(q), free(k), free(v), free(o3), free(dq), free(dk), free(dv), free(dout2);
    free(qkv), free(dout), free(o1), free(o2), free(g1), free(g2);
}

/* ---- cost ---- */

static int64_t pairs_of(const char *kind, const char *opts, int64_t T, int64_t H, int causal, pare_attn_cost *c)
{
    pare_attn *a = make(kind, opts, T, H, 16, causal);
    if (!a) return -1;
    pare_attn_cost_of(a, 1, c);
    pare_attn_free(a);
    return c->pairs;
}

/* Forward at T, B = 1, H = 1: the pairs the engine reports vs the cost formula, and vs the visible pairs. */
static void check_engine_count(const char *kind, const char *opts, int64_t T, int causal, double max_overhead)
{
    const int64_t H = 2, D = 16, C = H * D;
    pare_attn *a = make(kind, opts, T, H, D, causal);
    if (!ok(a != NULL, "create %s T=%lld", kind, (long long)T)) return;
    float *qkv = malloc((size_t)(T * 3 * C) * sizeof(float)), *out = malloc((size_t)(T * C) * sizeof(float));
    uint8_t *m = malloc((size_t)(T * T));
    fill(qkv, T * 3 * C, 61, 1.0f);
    int64_t ran = -1, visible = 0;
    run(a, out, NULL, &ran, qkv, NULL, NULL, 1, 0);
    pare_attn_cost c;
    pare_attn_cost_of(a, 1, &c);
    for (int64_t h = 0; h < H; h++) {
        pare_attn_mask(a, h, m);
        for (int64_t e = 0; e < T * T; e++) visible += m[e];
    }
    ok(ran == c.pairs, "%s {%s} T=%lld%s: the engine computed %lld pairs, the cost formula says %lld", kind, opts,
       (long long)T, causal ? " causal" : "", (long long)ran, (long long)c.pairs);
    ok(ran >= visible && ran <= max_overhead * (double)visible,
       "  computed pairs %lld within [1, %.2f]× the %lld visible ones (%.3f×)", (long long)ran, max_overhead,
       (long long)visible, (double)ran / (double)visible);
    pare_attn_free(a);
    free(qkv), free(out), free(m);
}

/* pairs(T=2048) / pairs(T=1024) within [1.9, max_ratio] (affine costs such as global rows give a bit
 * over 2), and a small fraction of full attention's FLOPs at T=2048. */
static void check_linear_cost(const char *kind, const char *opts, int causal, double max_ratio, double max_frac)
{
    pare_attn_cost c1, c2, f2;
    int64_t p1 = pairs_of(kind, opts, 1024, 4, causal, &c1), p2 = pairs_of(kind, opts, 2048, 4, causal, &c2);
    pairs_of("full", "", 2048, 4, causal, &f2);
    const double r = (double)p2 / (double)p1, rf = (double)c2.flops_fwd / (double)c1.flops_fwd;
    ok(p1 > 0 && r > 1.9 && r < max_ratio && rf > 1.9 && rf < max_ratio,
       "%s {%s}%s: cost linear in T: pairs ratio T=2048/1024 = %.3f, forward FLOPs ratio %.3f", kind, opts,
       causal ? " causal" : "", r, rf);
    ok(c2.flops_fwd < max_frac * f2.flops_fwd && c2.flops_bwd < max_frac * 1.25 * f2.flops_bwd,
       "  at T=2048 %.1f%% of full attention's forward FLOPs, memory %zu vs %zu bytes",
       100.0 * (double)c2.flops_fwd / (double)f2.flops_fwd, c2.cache_bytes + c2.slot_bytes,
       f2.cache_bytes + f2.slot_bytes);
}

/* ---- errors ---- */

static void check_error(const char *kind, const char *opts, int64_t T, int causal, const char *needle)
{
    kvset s;
    parse_opts(&s, opts);
    pare_attn *a = NULL;
    pare_clear_error();
    pare_status st = pare_attn_create(&a, kind, s.kv, s.n, T, 4, 8, causal);
    ok(st != PARE_OK && a == NULL && strstr(pare_errmsg(), needle) != NULL, "%s {%s} T=%lld%s rejected naming '%s': %s",
       kind, opts, (long long)T, causal ? " causal" : "", needle, pare_errmsg());
    pare_attn_free(a);
}

/* ---- a toy variant with a learned parameter, to check the interface's params plumbing:
 * out = gain[h] · v (no attention), gain (1, H). ---- */

static const pare_schema toy_schema = {"toy_gain", "test only: out = gain[h] · v", NULL, 0};
static pare_status toy_init(pare_attn *a)
{
    a->state = NULL;
    return PARE_OK;
}
static int toy_shapes(const pare_attn *a, pare_attn_param *p)
{
    p[0] = (pare_attn_param){"gain", 1, a->H};
    return 1;
}
static void toy_param_init(const pare_attn *a, float *params, pare_rng *rng)
{
    for (int64_t h = 0; h < a->H; h++) params[h] = 1.0f + 0.1f * (float)pare_rng_uniform(rng);
}
static pare_status toy_forward(const pare_attn *a, const pare_attn_args *x)
{
    for (int64_t r = 0; r < x->B * a->T; r++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t d = 0; d < a->D; d++)
                x->out[r * x->ldo + h * a->D + d] = x->params[h] * x->v[r * x->ld + h * a->D + d];
    return PARE_OK;
}
static pare_status toy_backward(const pare_attn *a, const pare_attn_args *x)
{
    for (int64_t r = 0; r < x->B * a->T; r++)
        for (int64_t h = 0; h < a->H; h++)
            for (int64_t d = 0; d < a->D; d++) {
                const float g = x->dout[r * x->ldo + h * a->D + d];
                x->dv[r * x->ldd + h * a->D + d] += x->params[h] * g;
                x->dparams[h] += g * x->v[r * x->ld + h * a->D + d];
            }
    return PARE_OK;
}
static void toy_cost(const pare_attn *a, int64_t B, pare_attn_cost *c) { c->flops_fwd = B * a->T * a->H * a->D; }
static const pare_attn_variant toy_variant = {.schema = &toy_schema, .can_be_causal = 0, .init = toy_init,
                                              .forward = toy_forward, .backward = toy_backward, .cost = toy_cost,
                                              .param_shapes = toy_shapes, .param_init = toy_param_init};

static void check_params_plumbing(void)
{
    pare_options o;
    pare_opts_defaults(&o, &toy_schema);
    pare_attn *a = NULL;
    ok(pare_attn_create_opts(&a, &toy_variant, &o, 4, 3, 2, 1) == PARE_EINVAL && strstr(pare_errmsg(), "causal"),
       "a variant that cannot be causal refuses causal=true: %s", pare_errmsg());
    if (!ok(pare_attn_create_opts(&a, &toy_variant, &o, 4, 3, 2, 0) == PARE_OK, "toy variant with params created"))
        return;
    pare_attn_param p[PARE_ATTN_MAX_PARAMS];
    ok(pare_attn_param_shapes(a, p) == 1 && !strcmp(p[0].name, "gain") && pare_attn_param_count(a) == 3,
       "param_shapes lists the gain (1, H) and param_count = 3");
    float params[3], dparams[3] = {0}, qkv[4 * 18], out[4 * 6], dout[4 * 6], dqkv[4 * 18] = {0};
    pare_rng r;
    pare_rng_seed(&r, 5);
    pare_attn_param_init(a, params, &r);
    fill(qkv, 4 * 18, 71, 1.0f);
    fill(dout, 4 * 6, 72, 1.0f);
    pare_attn_args x = {.out = out, .ldo = 6, .q = qkv, .k = qkv + 6, .v = qkv + 12, .ld = 18, .B = 1};
    ok(pare_attn_forward(a, &x) == PARE_EINVAL && strstr(pare_errmsg(), "params"), "forward without params refused: %s",
       pare_errmsg());
    x.params = params, x.dout = dout, x.dq = dqkv, x.dk = dqkv + 6, x.dv = dqkv + 12, x.ldd = 18;
    ok(pare_attn_forward(a, &x) == PARE_OK && pare_attn_backward(a, &x) == PARE_EINVAL &&
           strstr(pare_errmsg(), "dparams"),
       "backward without dparams refused: %s", pare_errmsg());
    x.dparams = dparams;
    ok(pare_attn_backward(a, &x) == PARE_OK, "backward with dparams runs");
    double want = 0;
    for (int64_t t = 0; t < 4; t++)
        for (int64_t d = 0; d < 2; d++) want += (double)dout[t * 6 + 2 + d] * qkv[t * 18 + 12 + 2 + d];
    is_close(dparams[1], want, 1e-6, 1e-5, "dparams[1] = Σ dout ⊙ v of head 1");
    pare_attn_free(a);
    int with = 0;
    for (int i = 0; i < pare_attn_count(); i++) with += pare_attn_at(i)->param_shapes != NULL;
    ok(with == 2, "exactly two registered variants have learned parameters (linformer, lsra): %d", with);
}

int main(void)
{
    tap_plan_lazy();

    /* registry */
    char kinds[256];
    diag("kinds: %s", pare_attn_kinds(kinds, sizeof kinds));
    ok(pare_attn_count() == PARE_ATTN_KIND_COUNT, "registry has %d kinds", pare_attn_count());
    int names_ok = 1;
    for (int i = 0; i < pare_attn_count(); i++)
        names_ok &= pare_attn_find(pare_attn_at(i)->schema->name) == pare_attn_at(i);
    ok(names_ok, "every kind is found by its name");
    ok(pare_attn_find("bigbrid") == NULL && strstr(pare_errmsg(), "bigbird") && strstr(pare_errmsg(), "longnet"),
       "an unknown kind lists the valid ones: %s", pare_errmsg());

    check_params_plumbing();

    /* full and flash */
    check_full_vs_nn();
    check_case("full", "", 2, 40, 2, 8, 0, 1);
    check_case("full", "", 2, 40, 2, 8, 1, 1);
    check_flash("", 2, 100, 3, 16, 0, 1);
    check_flash("", 2, 100, 3, 16, 1, 1);
    check_flash("q_tile=16 k_tile=24", 4, 75, 2, 8, 0, 1);
    check_flash("q_tile=16 k_tile=24", 4, 75, 2, 8, 1, 1);
    check_flash("q_tile=7 k_tile=5", 1, 33, 1, 32, 1, 0);
    check_flash("", 1, 300, 2, 64, 0, 0);
    check_case("flash", "q_tile=16 k_tile=32", 2, 50, 2, 8, 1, 1);

    /* block (BlockBERT) */
    check_case("block", "blocks=2", 2, 64, 4, 8, 0, 1);
    check_case("block", "blocks=3 heads_config=2:1:1", 2, 48, 4, 8, 0, 1);
    check_case("block", "blocks=4 heads_config=0:1:0:2", 1, 80, 3, 16, 0, 0);

    /* fixed (Sparse Transformer) */
    const char *fixed_cases[] = {"pattern=local stride=8", "pattern=radius radius=5", "pattern=strided stride=6",
                                 "pattern=fixed stride=8 summary=2", "pattern=fixed stride=10 summary=3"};
    for (int i = 0; i < 5; i++)
        for (int causal = 0; causal < 2; causal++) check_case("fixed", fixed_cases[i], 2, 60, 2, 8, causal, 1);

    /* longformer */
    const char *lf_cases[] = {"window=8 global=0 dilation=1", "window=10 global=2 dilation=1,2",
                              "window=6 global=3 dilation=1,2,3,1", "window=64 global=1 dilation=2"};
    for (int i = 0; i < 4; i++)
        for (int causal = 0; causal < 2; causal++) check_case("longformer", lf_cases[i], 2, 64, 4, 8, causal, 1);
    check_case("longformer", "window=16 global=1 dilation=1,3", 1, 150, 2, 16, 1, 0);

    /* bigbird */
    const char *bb_cases[] = {"block=4 window=3 random=2 global=1 seed=1", "block=8 window=1 random=1 global=2 seed=2",
                              "block=4 window=5 random=3 global=0 seed=3"};
    for (int i = 0; i < 3; i++)
        for (int causal = 0; causal < 2; causal++) check_case("bigbird", bb_cases[i], 2, 64, 3, 8, causal, 1);
    check_case("bigbird", "block=16 window=3 random=2 global=1 seed=4", 1, 192, 2, 16, 0, 0);
    {
        pare_attn *a1 = make("bigbird", bb_cases[0], 64, 3, 8, 0), *a2 = make("bigbird", bb_cases[0], 64, 3, 8, 0),
                  *a3 = make("bigbird", "block=4 window=3 random=2 global=1 seed=9", 64, 3, 8, 0);
        uint8_t *m1 = malloc(64 * 64), *m2 = malloc(64 * 64), *m3 = malloc(64 * 64);
        int same = 1, differ = 0;
        for (int64_t h = 0; h < 3; h++) {
            pare_attn_mask(a1, h, m1), pare_attn_mask(a2, h, m2), pare_attn_mask(a3, h, m3);
            same &= !memcmp(m1, m2, 64 * 64);
            differ |= memcmp(m1, m3, 64 * 64) != 0;
        }
        ok(same && differ, "bigbird: the random blocks repeat with the seed and change with it");
        pare_attn_free(a1), pare_attn_free(a2), pare_attn_free(a3);
        free(m1), free(m2), free(m3);
    }
    { /* the sparse draw (O(r) per query block) picks exactly the blocks of the dense reference */
        const struct { const char *opts; int64_t T, block, window, random, global, seed; } bc[] = {
            {"block=4 window=3 random=2 global=1 seed=1", 64, 4, 3, 2, 1, 1},
            {"block=1 window=1 random=5 global=0 seed=7", 40, 1, 1, 5, 0, 7},
            {"block=2 window=5 random=9 global=3 seed=11", 48, 2, 5, 9, 3, 11},
            {"block=8 window=1 random=3 global=2 seed=2", 64, 8, 1, 3, 2, 2},
            {"block=1 window=3 random=29 global=0 seed=5", 32, 1, 3, 29, 0, 5}, /* every candidate */
        };
        int same = 1;
        int64_t rb[64], ref[64], compared = 0;
        for (size_t i = 0; i < sizeof bc / sizeof bc[0]; i++)
            for (int causal = 0; causal < 2; causal++) {
                pare_attn *a = make("bigbird", bc[i].opts, bc[i].T, 2, 4, causal);
                if (!a) { same = 0; continue; }
                const int64_t nb = bc[i].T / bc[i].block, wh = (bc[i].window - 1) / 2;
                for (int64_t h = 0; h < 2; h++)
                    for (int64_t qb = bc[i].global; qb < nb; qb++) {
                        int64_t n = pare_attn_bigbird_random(a, h, qb, rb, 64);
                        int64_t m = bb_draw_ref(ref, (uint64_t)bc[i].seed, h, qb, nb, bc[i].global, wh, bc[i].random, causal);
                        same &= n == m && !memcmp(rb, ref, (size_t)n * sizeof *rb);
                        compared++;
                    }
                pare_attn_free(a);
            }
        ok(same, "bigbird: the random blocks equal the dense reference draw (%lld query blocks, causal and not)",
           (long long)compared);
    }

    /* longnet */
    const char *ln_cases[] = {"segments=8,16 rates=1,2", "segments=16,32,64 rates=1,2,4", "segments=12,20 rates=2,3",
                              "segments=64 rates=1"};
    for (int i = 0; i < 4; i++)
        for (int causal = 0; causal < 2; causal++) check_case("longnet", ln_cases[i], 2, 64, 4, 8, causal, 1);
    check_case("longnet", "segments=32,64,128 rates=1,2,4", 1, 200, 5, 16, 1, 0);

    /* finite differences, every variant */
    fd_check("full", "", 12, 2, 4, 0);
    fd_check("full", "", 12, 2, 4, 1);
    fd_check("flash", "q_tile=5 k_tile=3", 13, 2, 4, 1);
    fd_check("flash", "q_tile=5 k_tile=3", 13, 2, 4, 0);
    fd_check("block", "blocks=2", 16, 2, 4, 0);
    fd_check("fixed", "pattern=fixed stride=4 summary=1", 16, 2, 4, 1);
    fd_check("fixed", "pattern=strided stride=3", 16, 2, 4, 0);
    fd_check("longformer", "window=4 global=1 dilation=1,2", 16, 2, 4, 0);
    fd_check("longformer", "window=4 global=1 dilation=2", 16, 2, 4, 1);
    fd_check("bigbird", "block=2 window=3 random=1 global=1", 16, 2, 4, 0);
    fd_check("bigbird", "block=2 window=3 random=1 global=1", 16, 2, 4, 1);
    fd_check("longnet", "segments=4,8 rates=1,2", 16, 2, 4, 0);
    fd_check("longnet", "segments=4,8 rates=1,2", 16, 2, 4, 1);

    /* thread count and layout independence */
    check_threads_and_layout("full", "", 1);
    check_threads_and_layout("flash", "q_tile=16 k_tile=32", 0);
    check_threads_and_layout("longformer", "window=8 global=2 dilation=1,2", 1);
    check_threads_and_layout("bigbird", "block=8 window=3 random=2 global=1", 0);
    check_threads_and_layout("longnet", "segments=16,32 rates=1,2", 1);

    /* cost: linear in T for the windowed/sparse kinds, the engine's count == the formula */
    check_linear_cost("longformer", "window=64 global=0 dilation=1", 0, 2.05, 0.06);
    check_linear_cost("longformer", "window=64 global=2 dilation=1,2", 1, 2.05, 0.12);
    check_linear_cost("bigbird", "block=64 window=3 random=3 global=2", 0, 2.2, 0.32);
    check_linear_cost("longnet", "segments=128,256 rates=1,2", 1, 2.01, 0.2);
    check_linear_cost("fixed", "pattern=radius radius=32", 0, 2.05, 0.08);
    check_linear_cost("fixed", "pattern=local stride=64", 1, 2.01, 0.1);
    check_engine_count("longformer", "window=64 global=0 dilation=1", 1024, 0, 1.6);
    check_engine_count("longformer", "window=128 global=2 dilation=1,2", 1024, 1, 2.1);
    check_engine_count("bigbird", "block=64 window=3 random=3 global=2", 1024, 0, 1.0);
    check_engine_count("longnet", "segments=128,256 rates=1,2", 1024, 0, 1.0);
    check_engine_count("block", "blocks=4", 1024, 0, 1.0);
    check_engine_count("flash", "", 1000, 0, 1.0);
    check_engine_count("flash", "q_tile=64 k_tile=64", 1024, 1, 1.07);
    check_engine_count("full", "", 1000, 1, 1.08);
    check_engine_count("fixed", "pattern=strided stride=32", 1024, 1, 3.0);
    {
        pare_attn_cost c;
        ok(pairs_of("block", "blocks=4", 1024, 4, 0, &c) == 4 * 1024 * 1024 / 4, "block: pairs = H·T²/n exactly");
        ok(pairs_of("longnet", "segments=128,256 rates=1,2", 1024, 4, 0, &c) == 4 * (8 * 128 * 128 + 4 * 128 * 128),
           "longnet: pairs = H·Σ (T/w)(w/r)² exactly");
        ok(pairs_of("full", "", 1024, 4, 0, &c) == 4 * 1024 * 1024 && c.cache_bytes == (size_t)4 * 1024 * 1024 * 4,
           "full: pairs H·T², cache H·T² floats");
        pairs_of("flash", "", 8192, 12, 0, &c);
        ok(c.cache_bytes + c.slot_bytes * 2 < (size_t)12 * 8192 * 8192 * 4 / 20,
           "flash at T=8192, 12 heads: %zu bytes of intermediates on 2 threads (full: %zu)",
           c.cache_bytes + c.slot_bytes * 2, (size_t)12 * 8192 * 8192 * 4);
    }

    /* bad input */
    check_error("longformer", "window=65", 64, 0, "window");
    check_error("longformer", "window=8 dilation=1,x", 64, 0, "dilation");
    check_error("longformer", "window=8 dilation=1,2,1,2,2", 64, 0, "dilation");
    check_error("longformer", "window=8 global=65", 64, 0, "global");
    check_error("bigbird", "block=6", 64, 0, "block");
    check_error("bigbird", "block=8 window=2", 64, 0, "window");
    check_error("bigbird", "block=8 window=11", 64, 0, "window");
    check_error("bigbird", "block=8 window=3 global=2 random=4", 64, 0, "random");
    check_error("block", "blocks=3", 64, 0, "blocks");
    check_error("block", "blocks=2", 64, 1, "causal");
    check_error("block", "blocks=2 heads_config=3:2", 64, 0, "heads_config");
    check_error("block", "blocks=3 heads_config=2:2", 63, 0, "heads_config");
    check_error("fixed", "pattern=local stride=100", 64, 0, "stride");
    check_error("fixed", "pattern=fixed stride=8 summary=9", 64, 0, "summary");
    check_error("fixed", "pattern=radius radius=64", 64, 0, "radius");
    check_error("fixed", "pattern=diagonal", 64, 0, "pattern");
    check_error("longnet", "segments=32,128 rates=1,2", 64, 0, "segments");
    check_error("longnet", "segments=32,64 rates=1", 64, 0, "rates");
    check_error("longnet", "segments=4 rates=8", 64, 0, "rates");
    check_error("longnet", "rates=1", 64, 0, "segments");
    check_error("flash", "tile=3", 64, 0, "tile");
    check_error("nosuch", "", 64, 0, "valid");
    {
        pare_attn *a = make("flash", "", 32, 2, 8, 0);
        float buf[2 * 32 * 48] = {0}, out[32 * 16], lse[64], work[4];
        pare_attn_args x = {.out = out, .ldo = 16, .cache = lse, .work = work, .work_bytes = sizeof work, .q = buf,
                            .k = buf + 16, .v = buf + 32, .ld = 48, .B = 1};
        ok(pare_attn_forward(a, &x) == PARE_EINVAL && strstr(pare_errmsg(), "work_bytes"),
           "a workspace smaller than one slot is refused: %s", pare_errmsg());
        x.work_bytes = 0, x.ld = 8;
        ok(pare_attn_forward(a, &x) == PARE_EINVAL && strstr(pare_errmsg(), "ld"), "ld < H·D is refused: %s",
           pare_errmsg());
        int32_t bad = 33;
        void *big = malloc(pare_attn_work_bytes(a, 1));
        x.ld = 48, x.work = big, x.work_bytes = pare_attn_work_bytes(a, 1), x.lengths = &bad;
        ok(pare_attn_forward(a, &x) == PARE_EINVAL && strstr(pare_errmsg(), "lengths"), "length > T is refused: %s",
           pare_errmsg());
        free(big);
        pare_attn_free(a);
    }
    return tap_done();
}
