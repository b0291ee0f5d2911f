/* test_amp.c — automatic mixed precision (docs/amp.md).
 *
 * Kernels (kernels/nn_half.h): every bf16 follow-op kernel against its reference bit for bit — exhaustively over
 * the 65536 bf16 patterns for the unary ones — and the references against f32 computed here on the widened
 * inputs: ReLU exact, the add within one rounding of the exact sum, GELU and tanh within one rounding of the f32
 * kernels; 1 and 2 threads give the same bits; the widen / round loops equal the scalar casts.
 * Ops (graph): a Linear and a LayerNorm writing bf16 give the bits of an f32 op followed by a cast; a LayerNorm
 * reading bf16 those of a cast followed by the f32 op; a bf16 value into training is refused naming the node;
 * an add of mixed dtypes is refused.
 * The pass: on a constructed graph each node's dtype after the pass is what the policy says, a cast sits exactly
 * where categories change, editing the policy moves the casts, invalid policies are errors naming the choices;
 * the pass's graphs pass the checks and run; quantized Linears are left alone.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "compress/amp/amp.h"
#include "compress/pass.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/ops.h"
#include "kernels/cast.h"
#include "kernels/nn.h"
#include "kernels/nn_half.h"
#include "graph/rewrite.h"
#include "tap.h"
#include "test_models.h"
#include "test_rand.h"

static float w16(uint16_t h) { return pare_bf16_to_f32(h); }
static int same_bits(uint16_t a, uint16_t b) { return a == b || (isnan(w16(a)) && isnan(w16(b))); }

/* the first index where a and b differ (NaN = NaN), or -1 */
static long first_diff(const uint16_t *a, const uint16_t *b, long n)
{
    for (long i = 0; i < n; i++)
        if (!same_bits(a[i], b[i])) return i;
    return -1;
}

/* |got − want| within one bf16 rounding of want: half the spacing of bf16 values at want's magnitude (2^-8 of
 * its binade; 2^-134 below the normals), plus slack `extra` (relative) for an f32 result that itself was off. */
static int within_rounding(float got, double want, double extra)
{
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    if (fabs(want) >= ldexp(2.0 - ldexp(1.0, -8), 127)) return isinf(got) && (got > 0) == (want > 0); /* overflows bf16 */
    int e;
    frexp(fabs(want), &e);
    double half_ulp = ldexp(1.0, (e - 1 < -126 ? -126 : e - 1) - 8);
    return fabs((double)got - want) <= half_ulp + extra * fabs(want) + 1e-45;
}

typedef void (*unary_fast)(uint16_t *, const uint16_t *, int64_t);
typedef int (*unary_ref)(uint16_t *, const uint16_t *, int64_t);
typedef double (*unary_d)(double);

/* the ops in double, written here */
static double gelu_tanh_d(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_erf_d(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double relu_d(double x) { return x > 0 ? x : 0; }

/* fast == reference bit for bit (every pattern), threads and in place alike; the reference within one rounding of
 * the op in double, plus the f32 kernel's own error: rel·|y| + abs·|x| */
static void test_unary(const char *name, unary_fast fast, unary_ref ref, unary_d fd, double rel, double abs_x)
{
    const long n = 65536;
    uint16_t *x = xalloc(n * 2), *y = xalloc(n * 2), *r = xalloc(n * 2), *y1 = xalloc(n * 2);
    for (long i = 0; i < n; i++) x[i] = (uint16_t)i;
    omp_set_num_threads(2);
    fast(y, x, n);
    ok(ref(r, x, n) == 0, "%s: reference ran", name);
    long d = first_diff(y, r, n);
    ok(d < 0, "%s bf16: every one of the 65536 patterns equals the reference bit for bit%s", name,
       d < 0 ? "" : " (first difference below)");
    if (d >= 0) diag("x = 0x%04x (%g): fast 0x%04x, reference 0x%04x", x[d], w16(x[d]), y[d], r[d]);
    omp_set_num_threads(1);
    fast(y1, x, n);
    ok(first_diff(y, y1, n) < 0, "%s bf16: 1 and 2 threads give the same bits", name);
    omp_set_num_threads(2);
    /* in place */
    memcpy(y1, x, n * 2);
    fast(y1, y1, n);
    ok(first_diff(y, y1, n) < 0, "%s bf16: in place gives the same bits", name);
    /* the reference against the op in double on the widened inputs */
    long bad = -1, checked = 0;
    for (long i = 0; i < n && bad < 0; i++) {
        double xd = w16(x[i]), want = fd(xd);
        if (isnan(xd) || isinf(xd) || fabs(xd) > 1e30) continue; /* x³ overflows f32 in the tanh form: exactness there is the bit test's */
        checked++;
        if (!within_rounding(w16(r[i]), want, rel) && !(fabs(w16(r[i]) - want) <= abs_x * fabs(xd) + 1e-30)) bad = i;
    }
    ok(bad < 0, "%s bf16: within one rounding of the op computed in double (+ the f32 kernel's error), %ld patterns",
       name, checked);
    if (bad >= 0) diag("x = %g: bf16 %.9g, double %.9g", w16(x[bad]), w16(r[bad]), fd(w16(x[bad])));
    free(x), free(y), free(r), free(y1);
}

static void test_relu_exact(void)
{
    int okk = 1;
    for (long i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i, o;
        pare_relu_bf16(&o, &h, 1);
        float x = w16(h);
        okk &= x > 0 ? o == h : o == 0; /* x itself where positive (+Inf too), +0 for ±0, negatives and NaN */
    }
    ok(okk, "relu bf16 is exact: x where x > 0 (the same bits), +0 elsewhere (NaN included, as the f32 kernel)");
}

static void test_add(void)
{
    const long n = 200000; /* above the parallel threshold */
    uint16_t *a = xalloc(n * 2), *b = xalloc(n * 2), *y = xalloc(n * 2), *r = xalloc(n * 2), *y1 = xalloc(n * 2);
    float *fa = randn(n, 3.0f), *fb = randn(n, 3.0f);
    for (long i = 0; i < n; i++) {
        if (i % 7 == 0) fb[i] = -fa[i] * (1.0f + 1e-3f * (float)(i % 13)); /* cancellation */
        if (i % 11 == 0) fb[i] = fa[i] * 1e-4f;                            /* one term below the other's ulp */
        a[i] = pare_f32_to_bf16(fa[i]), b[i] = pare_f32_to_bf16(fb[i]);
    }
    const uint16_t sp[] = {0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x8001, 0x7f7f, 0x3f80, 0xbf80};
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) a[i * 10 + j] = sp[i], b[i * 10 + j] = sp[j]; /* ±0, ±Inf, NaN, subnormals, max */
    omp_set_num_threads(2);
    pare_add_bf16(y, a, b, n);
    ok(pare_add_bf16_ref(r, a, b, n) == 0 && first_diff(y, r, n) < 0, "add bf16 equals its reference bit for bit (%ld sums)", n);
    omp_set_num_threads(1);
    pare_add_bf16(y1, a, b, n);
    omp_set_num_threads(2);
    ok(first_diff(y, y1, n) < 0, "add bf16: 1 and 2 threads give the same bits");
    long bad = -1;
    for (long i = 0; i < n && bad < 0; i++) {
        double s = (double)w16(a[i]) + (double)w16(b[i]); /* exact: two bf16 values */
        if (!within_rounding(w16(y[i]), s, 0x1p-24)) bad = i;
    }
    ok(bad < 0, "add bf16 within one rounding of the exact sum (the f32 sum rounded once more)");
    if (bad >= 0) diag("%g + %g: %g", w16(a[bad]), w16(b[bad]), w16(y[bad]));
    free(a), free(b), free(y), free(r), free(y1), free(fa), free(fb);
}

static void test_widen_round(void)
{
    const long n = 100003;
    float *x = randn(n, 10.0f), *back = xalloc(n * 4);
    x[0] = NAN, x[1] = INFINITY, x[2] = 1e-40f, x[3] = -0.0f, x[4] = 3.4e38f;
    uint16_t *h = xalloc(n * 2);
    int okk = 1;
    for (int t = PARE_BF16; t <= PARE_F16; t++) {
        pare_half_round(h, (pare_dtype)t, x, n);
        pare_half_widen(back, h, (pare_dtype)t, n);
        for (long i = 0; i < n; i++) {
            uint16_t want = t == PARE_BF16 ? pare_f32_to_bf16(x[i]) : pare_f32_to_f16(x[i]);
            float wback = t == PARE_BF16 ? pare_bf16_to_f32(want) : pare_f16_to_f32(want);
            okk &= h[i] == want && (back[i] == wback || (isnan(back[i]) && isnan(wback)));
        }
    }
    pare_half_round(back, PARE_F32, x, n);
    okk &= !memcmp(back, x, n * 4);
    ok(okk, "pare_half_round / pare_half_widen equal the scalar casts (bf16, f16; f32 copies)");
    free(x), free(back), free(h);
}


/* ---- graphs ---- */

enum { B = 3, T = 9 };

static pare_model *encoder(const char *norm, const char *act, int fused)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encoder"}, {"vocab", PARE_KV_NUM, 13, NULL}, {"max_T", PARE_KV_NUM, T, NULL},
        {"d", PARE_KV_NUM, 32, NULL},        {"heads", PARE_KV_NUM, 4, NULL},  {"layers", PARE_KV_NUM, 2, NULL},
        {"classes", PARE_KV_NUM, 3, NULL},   {"ffn", PARE_KV_NUM, 64, NULL},   {"seed", PARE_KV_NUM, 5, NULL},
        {"norm", PARE_KV_STR, 0, norm},      {"act", PARE_KV_STR, 0, act},     {"fused", PARE_KV_BOOL, fused, NULL},
    };
    return build_perturbed(kv, 12, 7);
}

/* logits (B, classes) of m on fixed tokens, into out; 0 on success */
static int logits(pare_model *m, float *out)
{
    pare_exec *x = NULL;
    if (pare_exec_new(&x, m, B, T, PARE_EXEC_INFER) != PARE_OK) return diag("exec: %s", pare_errmsg()), -1;
    int32_t tok[B * T], len[B] = {T, 5, 2}, lab[B] = {0};
    for (int i = 0; i < B * T; i++) tok[i] = (i * 7 + 3) % 13;
    pare_exec_bind(x, tok, len, lab);
    pare_status st = pare_exec_forward(x);
    if (st == PARE_OK) memcpy(out, pare_exec_logits(x), sizeof(float) * B * 3);
    else diag("forward: %s", pare_errmsg());
    pare_exec_free(x);
    return st == PARE_OK ? 0 : -1;
}

static pare_model *amp(const pare_model *m, const char *policy, const char *layers)
{
    pare_kv kv[] = {{"policy", PARE_KV_STR, 0, policy ? policy : ""}, {"layers", PARE_KV_STR, 0, layers ? layers : "*"}};
    pare_model *a = NULL;
    if (pare_apply(&a, m, "amp", kv, 2) != PARE_OK) diag("amp: %s", pare_errmsg());
    return a;
}

static pare_dtype out_dt(const pare_model *m, const char *node)
{
    int64_t i = pare_model_find_node(m, node);
    return i < 0 ? PARE_DTYPE_COUNT : m->values[m->nodes[i].out].dtype;
}

static int count_op(const pare_model *m, pare_op_id op)
{
    int k = 0;
    for (int64_t i = 0; i < m->nnodes; i++) k += m->nodes[i].op == op;
    return k;
}

/* Every node's placement against the categories (an invariant check written independently of the pass):
 * a follow node computes bf16 only on bf16 inputs; an fp32 node never computes in bf16 (its output may be bf16 only
 * when it can write it — a LayerNorm — and then only bf16 readers read it); a cast converts (input ≠ output). */
static int placement_ok(const pare_model *a, const pare_amp_cat *pol, char *why, size_t n)
{
    for (int64_t i = 0; i < a->nnodes; i++) {
        const pare_node *nd = &a->nodes[i];
        pare_dtype o = a->values[nd->out].dtype;
        if (nd->op == PARE_OP_CAST) {
            if (a->values[nd->in[0]].dtype == o) return snprintf(why, n, "cast %s converts nothing", nd->name), 0;
            continue;
        }
        if (pol[nd->op] == PARE_AMP_FOLLOW && o == PARE_BF16)
            for (int k = 0; k < nd->nin; k++)
                if (a->values[nd->in[k]].dtype != PARE_BF16 && pare_dtype_is_float(a->values[nd->in[k]].dtype))
                    return snprintf(why, n, "follow node %s is bf16 on a non-bf16 input", nd->name), 0;
        if (pol[nd->op] == PARE_AMP_FP32 && o == PARE_BF16) {
            if (nd->op != PARE_OP_LAYERNORM && nd->op != PARE_OP_ADD_LAYERNORM)
                return snprintf(why, n, "fp32 node %s writes bf16", nd->name), 0;
            for (int64_t j = 0; j < a->nnodes; j++)
                for (int k = 0; k < a->nodes[j].nin; k++)
                    if (a->nodes[j].in[k] == nd->out && a->nodes[j].op != PARE_OP_LINEAR)
                        return snprintf(why, n, "%s writes bf16 for %s, not a Linear", nd->name, a->nodes[j].name), 0;
        }
    }
    return 1;
}

static void test_placement(void)
{
    pare_amp_cat pol[PARE_OP_COUNT];
    pare_amp_policy_default(pol);
    const int attn_bf16 = (pare_op_dtypes_of(PARE_OP_ATTENTION)->in[0] & PARE_DTYPE_BIT(PARE_BF16)) != 0;
    char why[256] = "";
    /* pre-LN: LayerNorms read only by bf16 Linears write bf16 (the cast folded into them); the FFN's up Linear
     * writes bf16 for the GELU, which runs in bf16, and the down Linear reads it; the residual stream stays f32 */
    pare_model *m = encoder("pre", "gelu", 1), *a = amp(m, NULL, NULL);
    ok(a && placement_ok(a, pol, why, sizeof why), "pre-LN: the placement follows the categories %s", why);
    ok(a && out_dt(a, "enc.0.ln1") == PARE_BF16 && out_dt(a, "enc.0.ln2") == PARE_BF16 && out_dt(a, "ln_f") == PARE_F32,
       "pre-LN: ln1 and ln2 (read by Linears only) write bf16, ln_f (read by pooling) f32");
    ok(a && out_dt(a, "enc.0.ffn.up") == PARE_BF16 && out_dt(a, "enc.0.ffn.act") == PARE_BF16 &&
           out_dt(a, "enc.0.ffn.down") == PARE_F32 && out_dt(a, "enc.0.drop2") == PARE_F32 && out_dt(a, "enc.0.add2") == PARE_F32,
       "pre-LN: ffn.up bf16 -> gelu bf16 -> ffn.down f32 (its cast to the f32 add folded in) -> dropout, add f32");
    ok(a && out_dt(a, "enc.0.attn.qkv") == (attn_bf16 ? PARE_BF16 : PARE_F32),
       "pre-LN: the qkv projection writes what the attention op reads (%s: op_dtypes %s a bf16 qkv)",
       attn_bf16 ? "bf16" : "f32", attn_bf16 ? "accepts" : "has no kernel for");
    ok(a && count_op(a, PARE_OP_CAST) == 0 && a->amp.casts == 0 && a->amp.boundaries == a->amp.folded + a->amp.absorbed,
       "pre-LN: no cast node left: %d boundaries, %d folded, %d absorbed", a ? a->amp.boundaries : -1,
       a ? a->amp.folded : -1, a ? a->amp.absorbed : -1);
    ok(a && strstr(a->amp.report, attn_bf16 ? "attention=lower (2, 2 in bf16)" : "attention=lower (2, f32: no bf16 kernel)") &&
           strstr(a->amp.report, "gelu=follow (2, 2 in bf16)") && strstr(a->amp.report, "layernorm=fp32"),
       "the report gives each op's category: %s", a ? a->amp.report : "");
    ok(a && pare_model_check_dtypes(a) == PARE_OK && pare_model_check_formats(a) == PARE_OK && pare_model_check(a) == PARE_OK,
       "the placed graph passes the dtype, format and graph checks");
    float lf[B * 3], la[B * 3];
    int ran = a && !logits(m, lf) && !logits(a, la);
    double num = 0, da = 0, db = 0;
    for (int i = 0; ran && i < B * 3; i++) num += (double)lf[i] * la[i], da += (double)lf[i] * lf[i], db += (double)la[i] * la[i];
    ok(ran && num / sqrt(da * db) > 0.999, "pre-LN: AMP logits follow f32's (cosine %.6f)", ran ? num / sqrt(da * db) : 0.0);
    /* editing the policy moves the casts: GELU in fp32 — ffn.up then writes f32 (folded), the GELU runs f32 */
    pare_model *g = amp(m, "gelu=fp32", NULL);
    pare_amp_policy_parse(pol, "gelu=fp32");
    ok(g && placement_ok(g, pol, why, sizeof why) && out_dt(g, "enc.0.ffn.up") == PARE_F32 &&
           out_dt(g, "enc.0.ffn.act") == PARE_F32 && out_dt(g, "enc.0.ln2") == PARE_BF16,
       "gelu=fp32: ffn.up writes f32, the GELU runs in f32, ln2 still bf16 %s", why);
    pare_amp_policy_default(pol);
    /* dropout=lower: the dropouts run in bf16 and cannot fold their output's cast: a cast node sits exactly between
     * each of them and the f32 residual add */
    pare_model *d = amp(m, "dropout=lower", NULL);
    int casts_ok = d && count_op(d, PARE_OP_CAST) == 4 && d->amp.casts == 4;
    for (int64_t i = 0; d && i < d->nnodes; i++) {
        const pare_node *nd = &d->nodes[i];
        if (nd->op != PARE_OP_CAST) continue;
        const pare_node *prod = &d->nodes[d->values[nd->in[0]].producer];
        int read_by_add = 0;
        for (int64_t j = 0; j < d->nnodes; j++) read_by_add |= d->nodes[j].op == PARE_OP_ADD && (d->nodes[j].in[0] == nd->out || d->nodes[j].in[1] == nd->out);
        casts_ok &= prod->op == PARE_OP_DROPOUT && d->values[prod->out].dtype == PARE_BF16 && nd->a.dtype == PARE_F32 && read_by_add;
    }
    ok(casts_ok, "dropout=lower: 4 casts, each from a bf16 dropout to f32, each read by the residual add");
    /* layers: only layer 0 */
    pare_model *l0 = amp(m, NULL, "enc.0.*");
    ok(l0 && out_dt(l0, "enc.0.ffn.act") == PARE_BF16 && out_dt(l0, "enc.1.ffn.act") == PARE_F32 &&
           l0->params[l0->nodes[pare_model_find_node(l0, "enc.1.ffn.up")].param[0]].format == PARE_FMT_F32,
       "layers=enc.0.*: layer 1 stays f32 (its Linears too)");
    pare_model_free(a), pare_model_free(g), pare_model_free(d), pare_model_free(l0), pare_model_free(m);

    /* post-LN (BERT), unfused and fused: LayerNorms feed the residual stream, so they stay f32 and the Linears
     * round inside; the unfused q, k, v read one value: one cast node rounds it for the three */
    const char *forms[] = {"post fused", "post unfused", "post fused then fuse pass"};
    for (int f = 0; f < 3; f++) {
        pare_model *p = encoder("post", "gelu_erf", f != 1), *src = p;
        if (f == 2) {
            pare_model *u = encoder("post", "gelu_erf", 0);
            pare_model_free(p);
            p = NULL;
            if (pare_apply(&p, u, "fuse", NULL, 0) != PARE_OK) diag("fuse: %s", pare_errmsg());
            pare_model_free(u);
            src = p;
        }
        pare_model *q = src ? amp(src, NULL, NULL) : NULL;
        int good = q && placement_ok(q, pol, why, sizeof why) && pare_model_check_dtypes(q) == PARE_OK;
        good &= q && out_dt(q, "enc.0.ln1") == PARE_F32 && (out_dt(q, "enc.0.ffn.up") == PARE_BF16);
        if (f == 1) good &= q && out_dt(q, "enc.0.attn.q") == PARE_F32 && count_op(q, PARE_OP_CAST) == 2;
        float l1[B * 3], l2[B * 3];
        good &= q && !logits(src, l1) && !logits(q, l2);
        double nm = 0, x1 = 0, x2 = 0;
        for (int i = 0; good && i < B * 3; i++) nm += (double)l1[i] * l2[i], x1 += (double)l1[i] * l1[i], x2 += (double)l2[i] * l2[i];
        ok(good && nm / sqrt(x1 * x2) > 0.999, "%s: placement, checks, logits (cosine %.6f) %s; %s", forms[f],
           good ? nm / sqrt(x1 * x2) : 0.0, why, q ? q->amp.report : "");
        pare_model_free(q), pare_model_free(src);
    }
}

/* the ops' 16-bit outputs and inputs are the bits of an f32 op followed / preceded by a cast node */
static void test_bits(void)
{
    pare_model *m = encoder("pre", "gelu", 1), *a = amp(m, NULL, NULL), *t = pare_model_clone(a);
    /* twin: every Linear / LayerNorm writing bf16 writes f32, and a cast node after it gives the bf16 value */
    int made = 0, fine = t != NULL;
    for (int64_t i = 0; fine && i < t->nnodes; i++) {
        const pare_node *nd = &t->nodes[i];
        if ((nd->op != PARE_OP_LINEAR && nd->op != PARE_OP_LAYERNORM) || t->values[nd->out].dtype == PARE_F32) continue;
        char name[PARE_NAME_MAX + 8];
        snprintf(name, sizeof name, "%s.cast", nd->name);
        int from = nd->out, c = pare_model_insert_node(t, i + 1, PARE_OP_CAST, name, &from, 1, NULL, 0,
                                                      t->values[from].rows, t->values[from].cols, (pare_node_attrs){.dtype = PARE_BF16});
        fine = c >= 0;
        for (int64_t j = i + 2; fine && j < t->nnodes; j++) /* replace_uses wants one dtype: rewired by hand */
            for (int k = 0; k < t->nodes[j].nin; k++)
                if (t->nodes[j].in[k] == from) t->nodes[j].in[k] = c;
        t->nodes[i].a.dtype = PARE_F32; /* inserted at i + 1: node i stays */
        t->values[t->nodes[i].out].dtype = PARE_F32;
        fine = fine && pare_model_check_dtypes(t) == PARE_OK;
        if (!fine) diag("twin: %s", pare_errmsg());
        made++, i++;
    }
    float la[B * 3], lt[B * 3];
    fine = fine && made >= 4 && !logits(a, la) && !logits(t, lt) && !memcmp(la, lt, sizeof la);
    ok(fine, "a Linear and a LayerNorm writing bf16 give the bits of f32 ones followed by casts (%d ops, logits identical)", made);
    /* a LayerNorm reading bf16: the bits of a cast back to f32 before it */
    pare_model *r = pare_model_clone(m), *r2 = pare_model_clone(m);
    int64_t lnf = pare_model_find_node(r, "ln_f");
    int src = r->nodes[lnf].in[0];
    int h = pare_model_insert_node(r, lnf, PARE_OP_CAST, "x.bf16", &src, 1, NULL, 0, r->values[src].rows, r->values[src].cols,
                                   (pare_node_attrs){.dtype = PARE_BF16});
    r->nodes[lnf + 1].in[0] = h;
    int h2 = pare_model_insert_node(r2, lnf, PARE_OP_CAST, "x.bf16", &src, 1, NULL, 0, r2->values[src].rows,
                                    r2->values[src].cols, (pare_node_attrs){.dtype = PARE_BF16});
    int f2 = pare_model_insert_node(r2, lnf + 1, PARE_OP_CAST, "x.f32", &h2, 1, NULL, 0, r2->values[src].rows,
                                    r2->values[src].cols, (pare_node_attrs){.dtype = PARE_F32});
    r2->nodes[lnf + 2].in[0] = f2;
    float l1[B * 3], l2[B * 3];
    ok(h >= 0 && f2 >= 0 && pare_model_check_dtypes(r) == PARE_OK && !logits(r, l1) && !logits(r2, l2) && !memcmp(l1, l2, sizeof l1),
       "a LayerNorm reading bf16 gives the bits of a cast to f32 before it");
    /* a residual add of bf16 and f32: refused, naming both inputs */
    int in2[2] = {h, src};
    int bad = pare_model_add_node(r, PARE_OP_ADD, "mixed", in2, 2, NULL, 0, PARE_ROWS_TOKENS, r->values[src].cols, (pare_node_attrs){0});
    ok(bad < 0 && strstr(pare_errmsg(), "node mixed (op add): input 1") && strstr(pare_errmsg(), "must match"),
       "an add of bf16 and f32 is refused: %s", pare_errmsg());
    /* training over bf16 values: refused naming the node */
    pare_exec *x = NULL;
    pare_status st = pare_exec_new(&x, a, B, T, PARE_EXEC_TRAIN);
    if (st == PARE_OK) {
        int32_t tok[B * T] = {0}, len[B] = {T, T, T}, lab[B] = {0};
        pare_exec_bind(x, tok, len, lab);
        st = pare_exec_forward(x);
        pare_exec_free(x);
    }
    ok(st != PARE_OK && strstr(pare_errmsg(), "node enc.0."), "training forward over the AMP graph refused: %s", pare_errmsg());
    pare_model_free(m), pare_model_free(a), pare_model_free(t), pare_model_free(r), pare_model_free(r2);
}

static void test_policy_errors_and_int8(void)
{
    pare_amp_cat pol[PARE_OP_COUNT], ref[PARE_OP_COUNT];
    pare_amp_policy_default(pol);
    memcpy(ref, pol, sizeof ref);
    ok(pol[PARE_OP_LINEAR] == PARE_AMP_LOWER && pol[PARE_OP_GELU] == PARE_AMP_FOLLOW && pol[PARE_OP_LAYERNORM] == PARE_AMP_FP32 &&
           pol[PARE_OP_SOFTMAX] == PARE_AMP_FP32 && pol[PARE_OP_BMM_QK] == PARE_AMP_LOWER && pol[PARE_OP_HEAD_SPLIT] == PARE_AMP_FOLLOW,
       "default policy: linear and bmm lower; gelu, head_split follow; layernorm, softmax fp32");
    ok(pare_amp_policy_parse(pol, " gelu = fp32 , linear=lower") == PARE_OK && pol[PARE_OP_GELU] == PARE_AMP_FP32,
       "an edit with spaces parses");
    memcpy(pol, ref, sizeof pol);
    ok(pare_amp_policy_parse(pol, "gelu=fp32,gelux=lower") == PARE_EINVAL && strstr(pare_errmsg(), "'gelux'") &&
           strstr(pare_errmsg(), "valid: embedding, posadd, linear") && pol[PARE_OP_GELU] == PARE_AMP_FOLLOW,
       "an unknown op is refused, listing the ops, and the policy is unchanged: %s", pare_errmsg());
    ok(pare_amp_policy_parse(pol, "gelu=bf16") == PARE_EINVAL && strstr(pare_errmsg(), "lower, follow, fp32"),
       "an unknown category is refused, naming the categories: %s", pare_errmsg());
    ok(pare_amp_policy_parse(pol, "cast=fp32") == PARE_EINVAL && strstr(pare_errmsg(), "a cast converts"),
       "the cast has no category: %s", pare_errmsg());
    ok(pare_amp_policy_parse(pol, "gelu") == PARE_EINVAL && strstr(pare_errmsg(), "op=category"), "an entry without '=': %s",
       pare_errmsg());
    pare_model *m = encoder("post", "gelu_erf", 1), *q = NULL, *a = NULL;
    pare_kv kv[] = {{"policy", PARE_KV_STR, 0, "relu=warm"}};
    ok(pare_apply(&a, m, "amp", kv, 1) == PARE_EINVAL && strstr(pare_errmsg(), "relu=warm"), "the pass refuses a bad policy: %s",
       pare_errmsg());
    pare_kv kl[] = {{"layers", PARE_KV_STR, 0, "nothing.*"}};
    ok(pare_apply(&a, m, "amp", kl, 1) == PARE_EINVAL && strstr(pare_errmsg(), "matches no node"), "a glob matching nothing: %s",
       pare_errmsg());
    /* int8 layers are left alone */
    pare_kv ki[] = {{"layers", PARE_KV_STR, 0, "enc.0.*"}};
    int ran = pare_apply(&q, m, "dynamic_int8", ki, 1) == PARE_OK && (a = amp(q, NULL, NULL)) != NULL;
    int64_t up0 = ran ? pare_model_find_node(a, "enc.0.ffn.up") : -1, up1 = ran ? pare_model_find_node(a, "enc.1.ffn.up") : -1;
    float l[B * 3];
    ok(ran && a->params[a->nodes[up0].param[0]].format == PARE_FMT_I8_CHANNEL &&
           a->params[a->nodes[up1].param[0]].format == PARE_FMT_HALF && out_dt(a, "enc.0.ffn.act") == PARE_F32 &&
           out_dt(a, "enc.1.ffn.act") == PARE_BF16 && strstr(a->amp.report, "left alone") && !logits(a, l),
       "int8 layers are left alone (f32 around them), the others in bf16; it runs: %s", a ? a->amp.report : pare_errmsg());
    pare_model_free(m), pare_model_free(q), pare_model_free(a);
}

int main(void)
{
    tap_plan_lazy();
    pare_rng_seed(&g_rng, 15);
    test_unary("gelu (tanh)", pare_gelu_bf16, pare_gelu_bf16_ref, gelu_tanh_d, 1e-5, 1e-6); /* 1 + tanh(u) cancels for
                                                                                 x < 0 in f32: ~2e-6 absolute */
    test_unary("gelu (erf)", pare_gelu_erf_bf16, pare_gelu_erf_bf16_ref, gelu_erf_d, 1e-6, 1e-7);
    /* and on the portable path (where the CPU has AVX-512 the line above ran act_avx512.c's) */
    ok(pare_nn_set_isa("scalar") == PARE_OK, "activations capped to the portable path");
    test_unary("gelu (erf), portable", pare_gelu_erf_bf16, pare_gelu_erf_bf16_ref, gelu_erf_d, 1e-6, 1e-7);
    ok(pare_nn_set_isa("auto") == PARE_OK, "activations back to auto");
    test_unary("relu", pare_relu_bf16, pare_relu_bf16_ref, relu_d, 0, 0);
    test_unary("tanh", pare_tanh_bf16, pare_tanh_bf16_ref, tanh, 1e-6, 1e-7);
    test_relu_exact();
    test_add();
    test_widen_round();
    test_placement();
    test_bits();
    test_policy_errors_and_int8();
    return tap_done();
}
