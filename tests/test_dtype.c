/* test_dtype.c — typed graph values (docs/dtypes.md): the dtype traits; the CAST kernels against a
 * rounding reference written here independently (double arithmetic, no bit tricks) and exhaustively
 * over every bf16 / f16 pattern; the cast backward (rounding, accumulation, finite differences through a
 * graph); a f32 → bf16 → f32 chain that runs and whose planner sizes the bf16 buffer at 2 bytes an
 * element; dtype errors that name the node, op, input, dtype and accepted dtypes; whole models of every
 * builder kind passing pare_model_check_dtypes; and planned_bytes of today's models equal to the values
 * measured before values had dtypes. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "core/rng.h"
#include "graph/exec.h"
#include "graph/format.h"
#include "graph/ops.h"
#include "kernels/cast.h"
#include "model/transformer.h"
#include "tap.h"

/* ---- an independent rounding reference ----
 * x rounded to a binary format with `mant` explicit mantissa bits, smallest normal exponent emin and
 * largest finite value maxf, round to nearest, ties to even, in double: the spacing of representable
 * values around x is 2^(max(e, emin) - mant) with x in [2^e, 2^(e+1)); nearbyint rounds ties to even.
 * Results beyond maxf after rounding become ±Inf (IEEE overflow); NaN stays NaN. */
static double ref_round(double x, int mant, int emin, double maxf)
{
    if (isnan(x) || isinf(x) || x == 0) return x;
    int e;
    frexp(fabs(x), &e); /* |x| = f·2^e, f in [0.5, 1): x in [2^(e-1), 2^e) */
    e -= 1;
    if (e < emin) e = emin;
    double ulp = ldexp(1.0, e - mant);
    double q = nearbyint(x / ulp) * ulp;
    if (fabs(q) > maxf) return copysign(INFINITY, x);
    return q;
}
static double ref_bf16(double x) { return ref_round(x, 7, -126, ldexp(255.0 / 128.0, 127)); } /* max (2-2^-7)·2^127 */
static double ref_f16(double x) { return ref_round(x, 10, -14, 65504.0); }

/* The round trip f32 → t → f32 through the cast kernels. */
static void round_trip(float *out, const float *x, int64_t n, pare_dtype t)
{
    uint16_t *h = malloc(sizeof *h * (size_t)n);
    pare_cast_forward(h, t, x, PARE_F32, n);
    pare_cast_forward(out, PARE_F32, h, t, n);
    free(h);
}

/* Values that exercise the rounding: random over the whole exponent range of each format, exact ties
 * (a representable value plus half a spacing), values next to the largest finite and the smallest
 * subnormal, zeros, infinities and NaN. */
static int64_t probe_values(float *x, int64_t cap, pare_rng *r)
{
    int64_t n = 0;
    for (int i = 0; i < 4000 && n < cap; i++) {
        int e = (int)pare_rng_below(r, 280) - 150; /* 2^-150 .. 2^129 */
        double m = 1.0 + pare_rng_uniform(r);
        x[n++] = (float)((i & 1 ? -1 : 1) * ldexp(m, e));
    }
    for (int i = 0; i < 2000 && n < cap; i++) {
        int e = (int)pare_rng_below(r, 40) - 25;
        double base = ldexp(1.0 + (double)pare_rng_below(r, 128) / 128.0, e);
        x[n++] = (float)(base + ldexp(1.0, e - 8));  /* a bf16 tie (between base and its neighbour) */
        x[n++] = (float)(base + ldexp(1.0, e - 11)); /* an f16 tie (for normal f16 exponents) */
    }
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 65536.0f,
                             6.0e-8f, 5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-10f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-40f,
                             3.3895314e38f, 3.39e38f, 1.0f, -1.0f, 0.1f, 1.00390625f, 1.01171875f};
    for (size_t i = 0; i < sizeof special / sizeof special[0] && n < cap; i++) x[n++] = special[i];
    return n;
}

static void test_traits(void)
{
    ok(pare_dtype_size(PARE_F32) == 4 && pare_dtype_size(PARE_BF16) == 2 && pare_dtype_size(PARE_F16) == 2 &&
           pare_dtype_size(PARE_I8) == 1 && pare_dtype_size(PARE_U8) == 1 && pare_dtype_size(PARE_I32) == 4,
       "dtype sizes: f32 4, bf16 2, f16 2, i8 1, u8 1, i32 4");
    ok(pare_dtype_is_float(PARE_F32) && pare_dtype_is_float(PARE_BF16) && pare_dtype_is_float(PARE_F16) &&
           !pare_dtype_is_float(PARE_I8) && !pare_dtype_is_float(PARE_U8) && !pare_dtype_is_float(PARE_I32) &&
           !pare_dtype_is_float(PARE_DTYPE_COUNT),
       "is_float: f32, bf16, f16 only");
    pare_dtype t = PARE_F32;
    ok(pare_dtype_parse("int8", &t) == PARE_OK && t == PARE_I8 && pare_dtype_parse("fp16", &t) == PARE_OK && t == PARE_F16 &&
           pare_dtype_parse("int32", &t) == PARE_OK && t == PARE_I32 && pare_dtype_parse("uint8", &t) == PARE_OK && t == PARE_U8,
       "dtype aliases: int8, fp16, int32, uint8");
    char buf[64];
    ok(!strcmp(pare_dtype_mask_str(PARE_DTYPES_FLOAT, buf, sizeof buf), "f32, bf16 or f16") &&
           !strcmp(pare_dtype_mask_str(PARE_DTYPE_BIT(PARE_I32), buf, sizeof buf), "i32") &&
           !strcmp(pare_dtype_mask_str(0, buf, sizeof buf), "none"),
       "dtype sets read as 'f32, bf16 or f16', 'i32', 'none'");
}

static void test_cast_kernels(void)
{
    pare_rng r;
    pare_rng_seed(&r, 5);
    int64_t cap = 9000;
    float *x = malloc(sizeof *x * (size_t)cap), *got = malloc(sizeof *got * (size_t)cap),
          *want = malloc(sizeof *want * (size_t)cap);
    int64_t n = probe_values(x, cap, &r);
    const pare_dtype ts[2] = {PARE_BF16, PARE_F16};
    for (int k = 0; k < 2; k++) {
        round_trip(got, x, n, ts[k]);
        int64_t bad = -1;
        for (int64_t i = 0; i < n && bad < 0; i++) {
            double w = ts[k] == PARE_BF16 ? ref_bf16(x[i]) : ref_f16(x[i]);
            want[i] = (float)w;
            if (!(got[i] == want[i] && signbit(got[i]) == signbit(want[i])) && !(isnan(got[i]) && isnan(want[i]))) bad = i;
        }
        ok(bad < 0, "f32 -> %s -> f32 rounds to nearest even as the reference, %lld values (ties, subnormals, "
           "overflow to Inf, signed zeros)", pare_dtype_name(ts[k]), (long long)n);
        if (bad >= 0)
            diag("x = %.9g (%a): got %.9g want %.9g", x[bad], x[bad], got[bad], (double)(ts[k] == PARE_BF16 ? ref_bf16(x[bad]) : ref_f16(x[bad])));
    }
    /* every 16-bit pattern: half -> f32 -> half is the identity (NaN stays a NaN), and the f32 value is
     * the reference's (a value already on the grid rounds to itself) */
    uint16_t *h = malloc(sizeof *h * 65536), *back = malloc(sizeof *back * 65536);
    float *f = malloc(sizeof *f * 65536);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
        pare_cast_forward(f, PARE_F32, h, ts[k], 65536);
        pare_cast_forward(back, ts[k], f, PARE_F32, 65536);
        int bad = -1;
        for (int i = 0; i < 65536 && bad < 0; i++) {
            if (isnan(f[i])) {
                if (!isnan(ts[k] == PARE_BF16 ? pare_bf16_to_f32(back[i]) : pare_f16_to_f32(back[i]))) bad = i;
                continue;
            }
            double w = ts[k] == PARE_BF16 ? ref_bf16(f[i]) : ref_f16(f[i]);
            if (back[i] != h[i] || (double)f[i] != w) bad = i;
        }
        ok(bad < 0, "%s -> f32 -> %s is exact for all 65536 patterns", pare_dtype_name(ts[k]), pare_dtype_name(ts[k]));
        if (bad >= 0) diag("pattern 0x%04x: f32 %.9g, back 0x%04x", bad, f[bad], back[bad]);
    }
    /* bf16 <-> f16 goes through f32: equal to rounding the widened value */
    pare_cast_forward(back, PARE_F16, h, PARE_BF16, 65536);
    pare_cast_forward(f, PARE_F32, h, PARE_BF16, 65536);
    int bad = -1;
    for (int i = 0; i < 65536 && bad < 0; i++) {
        float w = (float)ref_f16(f[i]), g = pare_f16_to_f32(back[i]);
        if (!(g == w || (isnan(g) && isnan(w)))) bad = i;
    }
    ok(bad < 0, "bf16 -> f16 rounds the bf16 value once, for all 65536 patterns");
    /* big enough for the parallel loops: the same as one element at a time */
    int64_t big = 200000;
    float *bx = malloc(sizeof *bx * (size_t)big), *by = malloc(sizeof *by * (size_t)big);
    uint16_t *bh = malloc(sizeof *bh * (size_t)big);
    for (int64_t i = 0; i < big; i++) bx[i] = (float)(100.0 * pare_rng_normal(&r));
    pare_cast_forward(bh, PARE_BF16, bx, PARE_F32, big);
    pare_cast_forward(by, PARE_F32, bh, PARE_BF16, big);
    int64_t bb = -1;
    for (int64_t i = 0; i < big && bb < 0; i++)
        if (by[i] != (float)ref_bf16(bx[i])) bb = i;
    ok(bb < 0, "a %lld-element cast (parallel loop) equals the reference everywhere", (long long)big);
    /* backward: dx += dout rounded to the input's dtype; f32 inputs get dout as is */
    float *dx = malloc(sizeof *dx * (size_t)n), *w2 = malloc(sizeof *w2 * (size_t)n);
    for (int k = 0; k < 2; k++) {
        for (int64_t i = 0; i < n; i++) dx[i] = 0.25f;
        pare_cast_backward(dx, x, ts[k], n);
        for (int64_t i = 0; i < n; i++) w2[i] = (float)(0.25 + (ts[k] == PARE_BF16 ? ref_bf16(x[i]) : ref_f16(x[i])));
        int64_t e = -1;
        for (int64_t i = 0; i < n && e < 0; i++)
            if (!(dx[i] == w2[i] || (isnan(dx[i]) && isnan(w2[i])))) e = i;
        ok(e < 0, "cast backward to a %s input adds dout rounded to %s", pare_dtype_name(ts[k]), pare_dtype_name(ts[k]));
    }
    for (int64_t i = 0; i < n; i++) dx[i] = 1.0f;
    pare_cast_backward(dx, x, PARE_F32, n);
    int64_t e = -1;
    for (int64_t i = 0; i < n && e < 0; i++)
        if (!(dx[i] == 1.0f + x[i] || (isnan(dx[i]) && isnan(1.0f + x[i])))) e = i;
    ok(e < 0, "cast backward to an f32 input adds dout unrounded");
    free(x), free(got), free(want), free(h), free(back), free(f), free(bx), free(by), free(bh), free(dx), free(w2);
}

/* ---- a hand-built graph with a cast chain ----
 *   tokens → emb (B·T, C) f32 → cast "down" (t) → cast "up" (f32) → MSE against a target
 * The table holds multiples of 1/8 in [-2, 2] so that the perturbed values of a central difference
 * (± 1/8) are exact in bf16 and f16: the casts are then exact and the difference is the true
 * derivative of the quadratic loss. */
enum { B = 2, T = 8, V = 7, C = 32 }; /* B·T·C·2 = 1024 bytes: a multiple of the alignment either way */

typedef struct chain {
    pare_model *m;
    int emb, down, up, target, loss; /* values */
    int table;                       /* param */
} chain;

static chain chain_new(pare_dtype t)
{
    chain c = {0};
    pare_model *m = c.m = pare_model_new("encoder");
    m->vocab = V, m->max_T = T, m->C = C;
    int tok = pare_model_add_input(m, PARE_VAL_TOKENS, "tokens");
    pare_model_add_input(m, PARE_VAL_LENGTHS, "lengths");
    pare_model_add_input(m, PARE_VAL_LABELS, "labels");
    int64_t shape[2] = {V, C};
    c.table = pare_model_add_param(m, "emb.weight", 2, shape, 1);
    for (int64_t i = 0; i < V * C; i++) m->params[c.table].blob->data[i] = (float)((int)(i * 7 % 33) - 16) / 8.0f;
    c.emb = pare_model_add_node(m, PARE_OP_EMBEDDING, "emb", &tok, 1, &c.table, 1, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    c.down = pare_model_add_cast(m, "down", c.emb, t);
    c.up = pare_model_add_cast(m, "up", c.down, PARE_F32);
    c.target = pare_model_add_target(m, "target", PARE_ROWS_TOKENS, C);
    c.loss = pare_model_add_loss(m, PARE_OP_MSE, "mse", c.up, c.target, 1.0f, 0);
    m->loss = c.loss;
    return c;
}

static void chain_bind(pare_exec *x, const chain *c, float *target)
{
    int32_t tok[B * T], len[B] = {T, T - 3};
    for (int i = 0; i < B * T; i++) tok[i] = (i * 5 + 1) % V;
    pare_exec_bind(x, tok, len, NULL);
    pare_exec_bind_target(x, c->target, target);
}

static size_t align_up(size_t b) { return (b + PARE_ALIGN - 1) & ~(size_t)(PARE_ALIGN - 1); }

static void test_chain(pare_dtype t)
{
    const char *tn = pare_dtype_name(t);
    chain c = chain_new(t);
    pare_model *m = c.m;
    if (!ok(c.loss >= 0 && pare_model_check_dtypes(m) == PARE_OK, "f32 -> %s -> f32 chain builds and checks", tn)) {
        diag("%s", pare_errmsg());
        pare_model_free(m);
        return;
    }
    ok(m->values[c.emb].dtype == PARE_F32 && m->values[c.down].dtype == t && m->values[c.up].dtype == PARE_F32,
       "%s chain: the casts' outputs have the dtypes asked for; the embedding's is f32 (its op's declaration)", tn);
    float target[B * T * C];
    pare_rng r;
    pare_rng_seed(&r, 9);
    for (int i = 0; i < B * T * C; i++) target[i] = (float)pare_rng_normal(&r);

    /* training: every value is kept, so the activations' arena is the sum of every value's aligned
     * buffer, dtype size × shape; gradients are f32 for every activation (the bf16 one included) */
    pare_model_alloc_grads(m);
    pare_exec *x = NULL;
    if (!ok(pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) == PARE_OK, "%s chain: training executor", tn)) return;
    size_t act = 0, grads = 0;
    for (int64_t v = 0; v < m->nvalues; v++) {
        int64_t numel = pare_exec_rows(x, &m->values[v]) * m->values[v].cols;
        act += align_up((size_t)numel * pare_dtype_size(m->values[v].dtype));
        if (m->values[v].kind == PARE_VAL_ACT) grads += align_up((size_t)numel * sizeof(float));
    }
    ok(x->planned_bytes == act + grads + x->workspace_bytes, "%s chain: planned %zu bytes = values by dtype × shape "
       "(%zu) + f32 gradients (%zu)", tn, x->planned_bytes, act, grads);
    /* the same graph with the middle value in f32 costs 2 bytes more per element of it */
    chain c32 = chain_new(PARE_F32);
    pare_model_alloc_grads(c32.m);
    pare_exec *x32 = NULL;
    pare_exec_new(&x32, c32.m, B, T, PARE_EXEC_TRAIN);
    ok(x32 && x32->planned_bytes - x->planned_bytes == 2 * B * T * C,
       "%s chain: the %s buffer takes 2 bytes an element (%zu bytes less than with f32 there)", tn, tn,
       x32 ? x32->planned_bytes - x->planned_bytes : 0);

    chain_bind(x, &c, target);
    pare_model_zero_grad(m);
    ok(pare_exec_forward(x) == PARE_OK && pare_exec_backward(x) == PARE_OK, "%s chain: forward and backward run", tn);
    /* forward: every element rounded to t and back (exact here: the table is on the grid) */
    const float *e = x->buf[c.emb], *u = x->buf[c.up];
    int64_t bad = -1;
    for (int i = 0; i < B * T * C && bad < 0; i++)
        if (u[i] != (float)(t == PARE_BF16 ? ref_bf16(e[i]) : ref_f16(e[i]))) bad = i;
    ok(bad < 0, "%s chain: the output is the input rounded to %s and back", tn, tn);
    /* backward: the gradient reaching the t-valued input of "up" is rounded to t, then passes the
     * down-cast unchanged into the f32 embedding */
    const float *dup = x->grad[c.up], *ddown = x->grad[c.down], *demb = x->grad[c.emb];
    bad = -1;
    for (int i = 0; i < B * T * C && bad < 0; i++)
        if (ddown[i] != (float)(t == PARE_BF16 ? ref_bf16(dup[i]) : ref_f16(dup[i])) || demb[i] != ddown[i]) bad = i;
    ok(bad < 0, "%s chain: d(%s value) = d(up) rounded to %s; d(emb) = d(%s value)", tn, tn, tn, tn);

    /* finite differences on the table through the chain */
    pare_param *p = &m->params[c.table];
    double worst = 0;
    for (int64_t j = 0; j < V * C; j += 5) {
        float keep = p->blob->data[j];
        const double h = 0.125;
        p->blob->data[j] = keep + (float)h;
        pare_exec_forward(x);
        double lp = x->loss;
        p->blob->data[j] = keep - (float)h;
        pare_exec_forward(x);
        double lm = x->loss;
        p->blob->data[j] = keep;
        double num = (lp - lm) / (2 * h), ana = p->grad[j];
        double err = fabs(num - ana) / (1e-6 + fabs(num) + fabs(ana));
        if (err > worst) worst = err;
    }
    /* the gradient reaching the t-valued value is rounded to t (2^-9 relative for bf16, 2^-12 for f16, per
     * term; a table row sums several terms of both signs, so more in relative terms after they cancel) */
    double tol = t == PARE_BF16 ? 1e-2 : 2e-3;
    ok(worst < tol, "%s chain: table gradient vs central differences through both casts (worst relative %.2g < %g)", tn,
       worst, tol);

    /* inference runs the same numbers */
    pare_exec *xi = NULL;
    ok(pare_exec_new(&xi, m, B, T, PARE_EXEC_INFER) == PARE_OK, "%s chain: inference executor", tn);
    chain_bind(xi, &c, target);
    pare_exec_forward(x);
    pare_status fst = xi ? pare_exec_forward(xi) : PARE_EINVAL;
    ok(fst == PARE_OK && xi->loss == x->loss && x->loss > 0, "%s chain: inference loss = training loss (%g)", tn, x->loss);
    pare_exec_free(xi);
    pare_exec_free(x32);
    pare_exec_free(x);
    pare_model_free(c32.m);
    pare_model_free(m);
}

/* A cast to f16 beyond 65504 overflows to Inf: check_finite names the cast. */
static void test_f16_overflow(void)
{
    chain c = chain_new(PARE_F16);
    pare_model *m = c.m;
    m->params[c.table].blob->data[3] = 70000.0f;
    pare_exec *x = NULL;
    pare_exec_new(&x, m, B, T, PARE_EXEC_INFER);
    float target[B * T * C] = {0};
    chain_bind(x, &c, target);
    int64_t node = -2;
    pare_status st = pare_exec_find_nonfinite(x, &node);
    ok(st == PARE_ENUMERIC && node == pare_model_find_node(m, "down") && strstr(pare_errmsg(), "layer down outputs Inf"),
       "f16 overflow: check_finite names the cast (%s)", pare_errmsg());
    pare_exec_free(x);
    pare_model_free(m);
}

static int has(const char *msg, const char *const *words, int n)
{
    for (int i = 0; i < n; i++)
        if (!strstr(msg, words[i])) {
            diag("'%s' missing from: %s", words[i], msg);
            return 0;
        }
    return 1;
}

static void test_errors(void)
{
    chain c = chain_new(PARE_BF16);
    pare_model *m = c.m;
    int64_t nn = m->nnodes, nv = m->nvalues;
    int64_t shape[2] = {C, C};
    int w = pare_model_add_param(m, "proj.weight", 2, shape, 1);
    /* an f16 value into a GELU, which has no f16 kernel (bf16 it has: docs/amp.md) */
    int h16 = pare_model_add_cast(m, "down16", c.down, PARE_F16);
    int64_t nn16 = m->nnodes, nv16 = m->nvalues;
    int id = pare_model_add_node(m, PARE_OP_GELU, "act", &h16, 1, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    const char *w1[] = {"node act", "gelu", "input 0", "'down16'", "is f16", "accepts f32 or bf16", "no f16 kernel", "cast"};
    ok(h16 >= 0 && id < 0 && has(pare_errmsg(), w1, 8), "f16 into gelu: %s", pare_errmsg());
    ok(m->nnodes == nn16 && m->nvalues == nv16, "a refused node leaves the model unchanged");
    pare_model_truncate(m, nn, nv, m->nparams);
    /* a bf16 value into a Linear: the op takes any float (what the weight's format reads decides, issue 15), and
     * f32 weights read f32 only: pare_model_check_formats (and the executor) refuse it, naming the format */
    id = pare_model_add_node(m, PARE_OP_LINEAR, "proj", &c.down, 1, &w, 1, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    const char *w1b[] = {"node proj", "(op linear)", "input 0 'down' is bf16", "proj.weight is stored as f32", "reads f32",
                         "bf16 pass", "cast"};
    ok(id >= 0 && pare_model_check_formats(m) == PARE_EINVAL && has(pare_errmsg(), w1b, 7),
       "bf16 into a Linear on f32 weights: %s", pare_errmsg());
    pare_model_truncate(m, nn, nv, m->nparams);
    /* an elementwise op, the second input of an add, f16 */
    int h = pare_model_add_cast(m, "half", c.emb, PARE_F16);
    int in2[2] = {c.emb, h};
    id = pare_model_add_node(m, PARE_OP_ADD, "res", in2, 2, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    const char *w2[] = {"node res", "(op add)", "input 1", "'half'", "is f16", "accepts f32"};
    ok(h >= 0 && id < 0 && has(pare_errmsg(), w2, 6), "f16 into add's second input: %s", pare_errmsg());
    /* int32 tokens into a GELU */
    id = pare_model_add_node(m, PARE_OP_GELU, "act", &m->tokens, 1, NULL, 0, PARE_ROWS_TOKENS, 1, (pare_node_attrs){0});
    const char *w3[] = {"node act", "(op gelu)", "input 0", "'tokens'", "is i32", "accepts f32"};
    ok(id < 0 && has(pare_errmsg(), w3, 6), "int32 into gelu: %s", pare_errmsg());
    /* an f32 value where an op wants int32 (attention lengths) */
    int ain[2] = {c.emb, c.up};
    id = pare_model_add_node(m, PARE_OP_ATTENTION, "attn", ain, 2, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){.heads = 4});
    const char *w4[] = {"node attn", "(op attention)", "input 1", "'up'", "is f32", "accepts i32"};
    ok(id < 0 && has(pare_errmsg(), w4, 6), "f32 as attention lengths: %s", pare_errmsg());
    /* casts: to an integer, from an integer */
    id = pare_model_add_cast(m, "to_i8", c.emb, PARE_I8);
    const char *w5[] = {"node to_i8", "(op cast)", "cannot produce i8", "f32, bf16 or f16", "quantization"};
    ok(id < 0 && has(pare_errmsg(), w5, 5), "cast to int8: %s", pare_errmsg());
    id = pare_model_add_cast(m, "to_77", c.emb, (pare_dtype)77);
    ok(id < 0 && strstr(pare_errmsg(), "node to_77 (op cast): cannot produce ?"), "cast to a dtype out of range: %s",
       pare_errmsg());
    m->values[c.up].dtype = (pare_dtype)40; /* a corrupt value: in no dtype set (no undefined shift) */
    ok(pare_model_check_dtypes(m) == PARE_EINVAL && strstr(pare_errmsg(), "node up (op cast): output 'up' is ?"),
       "a value of a dtype out of range: %s", pare_errmsg());
    m->values[c.up].dtype = PARE_F32;
    id = pare_model_add_cast(m, "from_tokens", m->tokens, PARE_F32);
    const char *w6[] = {"node from_tokens", "(op cast)", "input 0", "'tokens'", "is i32", "f32, bf16 or f16"};
    ok(id < 0 && has(pare_errmsg(), w6, 6), "cast of int32 tokens: %s", pare_errmsg());
    /* too many inputs, a value id out of range */
    int in3[3] = {c.emb, c.emb, c.emb};
    id = pare_model_add_node(m, PARE_OP_ADD, "add3", in3, 3, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    ok(id < 0 && strstr(pare_errmsg(), "node add3 (op add): given 3 inputs; add takes at most 2"), "too many inputs: %s",
       pare_errmsg());
    int badv = 999;
    id = pare_model_add_node(m, PARE_OP_RELU, "relu", &badv, 1, NULL, 0, PARE_ROWS_TOKENS, C, (pare_node_attrs){0});
    ok(id < 0 && strstr(pare_errmsg(), "node relu (op relu): input 0 is value id 999, not a value"), "bad value id: %s",
       pare_errmsg());
    /* a loss on a bf16 value */
    id = pare_model_add_loss(m, PARE_OP_MSE, "mse16", c.down, c.target, 1.0f, 0);
    const char *w7[] = {"loss mse16", "down is bf16", "f32"};
    ok(id < 0 && has(pare_errmsg(), w7, 3), "loss on bf16: %s", pare_errmsg());
    /* a cache spec with an element size where its dtype belongs (4 bytes reads as PARE_U8): refused */
    pare_node att = {.op = PARE_OP_ATTENTION, .name = "enc.0.attn"};
    pare_cache_spec stale = {"att", PARE_ROWS_CACHE_ATT, 4, 4};
    const char *w8[] = {"node enc.0.attn", "(op attention)", "cache 'att' would be u8", "declares f32 caches"};
    ok(pare_node_check_caches(&att, &stale, 1) == PARE_EINVAL && has(pare_errmsg(), w8, 4),
       "a cache given a byte count for its dtype: %s", pare_errmsg());
    stale.dtype = PARE_F32;
    ok(pare_node_check_caches(&att, &stale, 1) == PARE_OK, "the same cache in f32 passes");
    /* capturing a bf16 value */
    const char *keep[] = {"down"};
    pare_exec *x = NULL;
    ok(pare_exec_new_keep(&x, m, B, T, PARE_EXEC_INFER, keep, 1) == PARE_EINVAL && strstr(pare_errmsg(), "down is bf16"),
       "capture of a bf16 value: %s", pare_errmsg());
    pare_model_free(m);
}

static pare_model *build(const char *kind, const char *attn, const char *pos, const char *act, const char *pool,
                         double dropout)
{
    pare_kv kv[] = {{"kind", PARE_KV_STR, 0, kind},       {"vocab", PARE_KV_NUM, 32, NULL},
                    {"max_T", PARE_KV_NUM, 64, NULL},     {"dropout", PARE_KV_NUM, dropout, NULL},
                    {"attention", PARE_KV_STR, 0, attn},  {"pos", PARE_KV_STR, 0, pos},
                    {"act", PARE_KV_STR, 0, act},         {"pool", PARE_KV_STR, 0, pool}};
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, 8) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    return m;
}

/* Every value of a model built by the builders has the dtype of its role. */
static int roles_ok(const pare_model *m)
{
    for (int64_t v = 0; v < m->nvalues; v++) {
        const pare_value *val = &m->values[v];
        pare_dtype want = val->kind == PARE_VAL_ACT || val->kind == PARE_VAL_TARGET ? PARE_F32
                          : val->kind == PARE_VAL_CACHE ? (strstr(val->name, "#mask") ? PARE_U8 : PARE_F32)
                          : PARE_I32;
        if (val->dtype != want) {
            diag("%s is %s, expected %s", val->name, pare_dtype_name(val->dtype), pare_dtype_name(want));
            return 0;
        }
    }
    return 1;
}

static void test_models(void)
{
    struct { const char *kind, *attn, *pos, *act, *pool; double dropout; } cfg[] = {
        {"encoder", "", "learned", "gelu", "cls", 0},         {"encoder", "", "sinusoidal", "relu", "mean", 0.1},
        {"decoder", "", "learned", "gelu", "cls", 0.1},       {"tagger", "", "learned", "gelu", "cls", 0.1},
        {"encoder", "flash", "learned", "gelu", "cls", 0.1},  {"encoder", "linformer:k=16", "learned", "gelu", "mean", 0},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        pare_model *m = build(cfg[i].kind, cfg[i].attn, cfg[i].pos, cfg[i].act, cfg[i].pool, cfg[i].dropout);
        if (!m) {
            ok(0, "build %s", cfg[i].kind);
            continue;
        }
        ok(pare_model_check_dtypes(m) == PARE_OK && roles_ok(m), "%s (attention '%s', %s, %s, %s pool, dropout %g): "
           "dtypes check; inputs i32, activations and caches f32, masks u8", cfg[i].kind, cfg[i].attn, cfg[i].pos,
           cfg[i].act, cfg[i].pool, cfg[i].dropout);
        pare_model *q = NULL;
        pare_kv none[1];
        if (pare_apply(&q, m, "dynamic_int8", none, 0) == PARE_OK)
            ok(pare_model_check_dtypes(q) == PARE_OK, "%s after dynamic_int8: dtypes check", cfg[i].kind);
        else ok(0, "dynamic_int8 on %s: %s", cfg[i].kind, pare_errmsg());
        pare_model_free(q);
        pare_model_free(m);
    }

    /* a graph rewritten by hand: check_dtypes (and the executor) name the node that does not fit */
    pare_model *m = build("encoder", "", "learned", "gelu", "cls", 0.1);
    int ln2 = pare_model_find_value(m, "enc.0.ln2");
    int cast = pare_model_add_cast(m, "enc.0.ln2.bf16", ln2, PARE_BF16);
    int up = pare_model_find_node(m, "enc.0.ffn.up");
    ok(cast >= 0 && pare_model_check_dtypes(m) == PARE_OK, "an appended cast keeps the model valid");
    m->nodes[up].in[0] = cast; /* a rewrite that feeds the Linear bf16, its weights f32 */
    const char *w1[] = {"node enc.0.ffn.up", "(op linear)", "input 0", "'enc.0.ln2.bf16'", "is bf16", "stored as f32",
                        "reads f32"};
    ok(pare_model_check_dtypes(m) == PARE_OK && pare_model_check_formats(m) == PARE_EINVAL && has(pare_errmsg(), w1, 7),
       "rewritten input: the op takes it, the weight's format does not: %s", pare_errmsg());
    pare_exec *x = NULL;
    ok(pare_exec_new(&x, m, 2, 8, PARE_EXEC_INFER) == PARE_EINVAL && x == NULL && strstr(pare_errmsg(), "node enc.0.ffn.up"),
       "the executor refuses it too: %s", pare_errmsg());
    m->nodes[up].in[0] = ln2;
    m->values[ln2].dtype = PARE_F16; /* a value whose dtype is not its op's */
    const char *w2[] = {"node enc.0.ln2", "(op layernorm)", "output 'enc.0.ln2' is f16", "layernorm produces f32"};
    ok(pare_model_check_dtypes(m) == PARE_EINVAL && has(pare_errmsg(), w2, 4), "output dtype: %s", pare_errmsg());
    m->values[ln2].dtype = PARE_F32;
    int mask = pare_model_find_value(m, "enc.1.drop2#mask");
    m->values[mask].dtype = PARE_F32;
    const char *w3[] = {"node enc.1.drop2", "(op dropout)", "cache 'enc.1.drop2#mask' is f32", "dropout keeps u8"};
    ok(pare_model_check_dtypes(m) == PARE_EINVAL && has(pare_errmsg(), w3, 4), "cache dtype: %s", pare_errmsg());
    pare_model_free(m);
}

/* planned_bytes of today's models, measured before values had dtypes (commit 68f080c, 4 bytes an element
 * or 1 for masks): typing values must not move them. vocab 32, max_T 64, other options at defaults.
 * Since then the dense attention became the `full` variant (issue 11 item 6), which changed the
 * workspace, and only it: the f32 kernel's training scratch of B·H·T² floats is gone, and the variant's
 * forward takes a slot of 64·T floats per thread (inference and training). The workspace is the largest
 * op's, rounded to PARE_ALIGN; dense attention's was the largest in training and there was none at
 * inference, so the figures measured then move by exactly those two amounts. */
/* align_up: above (PARE_ALIGN) */
static void test_planned_bytes(void)
{
    struct { const char *kind, *attn; double dropout; int B, T; size_t infer, train; } want[] = {
        {"encoder", "", 0, 8, 64, 1181824, 13003200},       {"encoder", "", 0.1, 8, 64, 1181824, 13003200},
        {"decoder", "", 0.1, 8, 64, 1183808, 13201472},     {"tagger", "", 0.1, 8, 64, 1183808, 13201472},
        {"encoder", "", 0, 3, 7, 48640, 478208},            {"decoder", "", 0.1, 3, 7, 48704, 484736},
        {"tagger", "", 0.1, 3, 7, 48704, 484736},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        pare_model *m = build(want[i].kind, want[i].attn, "learned", "gelu", "cls", want[i].dropout);
        if (!m || pare_model_alloc_grads(m) != PARE_OK) {
            ok(0, "build");
            pare_model_free(m);
            continue;
        }
        pare_exec *xi = NULL, *xt = NULL;
        pare_exec_new(&xi, m, want[i].B, want[i].T, PARE_EXEC_INFER);
        pare_exec_new(&xt, m, want[i].B, want[i].T, PARE_EXEC_TRAIN);
        size_t slot = align_up((size_t)omp_get_max_threads() * 64 * (size_t)want[i].T * sizeof(float));
        size_t old_scratch = align_up((size_t)want[i].B * 4 /* heads */ * (size_t)want[i].T * (size_t)want[i].T * sizeof(float));
        want[i].infer += slot;
        want[i].train = want[i].train - old_scratch + slot;
        ok(xi && xt && xi->planned_bytes == want[i].infer && xt->planned_bytes == want[i].train,
           "%s%s%s dropout %g at B=%d T=%d: planned %zu / %zu bytes (inference / training), as before dtypes",
           want[i].kind, want[i].attn[0] ? " " : "", want[i].attn, want[i].dropout, want[i].B, want[i].T,
           xi ? xi->planned_bytes : 0, xt ? xt->planned_bytes : 0);
        pare_exec_free(xi);
        pare_exec_free(xt);
        pare_model_free(m);
    }
}

int main(void)
{
    tap_plan_lazy();
    test_traits();
    test_cast_kernels();
    test_chain(PARE_BF16);
    test_chain(PARE_F16);
    test_f16_overflow();
    test_errors();
    test_models();
    test_planned_bytes();
    return tap_done();
}
