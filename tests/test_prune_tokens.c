/* test_prune_tokens.c — physical token pruning (compress/prune/tokens.c, ops TOKEN_SELECT / TOKEN_LENGTHS)
 * against a plain C reference written here: the encoder run one sequence at a time on its valid tokens only
 * (double accumulation, no padding), each layer's attention probabilities scoring the tokens
 * (s_j = Σ_h Σ_i P[i, j]), [CLS] and the top k − 1 kept (ties to the lower index) in their order, the rows
 * gathered by hand. Also: keep = 1 everywhere (and a select that keeps every token) equals the unpruned
 * model bit for bit; the kept positions (the select's "#idx") match the reference's; gradients by central
 * differences; FLOPs fall; save → load keeps the schedule with identical logits; bad schedules and models
 * refused with messages naming the option. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/pass.h"
#include "graph/exec.h"
#include "io/safetensors.h"
#include "model/transformer.h"
#include "tap.h"
#include "test_models.h"

enum { B = 3, T = 12, L = 3, H = 2, C = 8, F = 16, NCLS = 3, V = 20 };
static const int32_t lens[B] = {12, 9, 5};
static int32_t tok[B * T], lab[B] = {0, 2, 1};

static pare_model *build(const char *kind, const char *pool)
{
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, kind},    {"vocab", PARE_KV_NUM, V, NULL},   {"max_T", PARE_KV_NUM, T, NULL},
        {"d", PARE_KV_NUM, C, NULL},       {"heads", PARE_KV_NUM, H, NULL},   {"layers", PARE_KV_NUM, L, NULL},
        {"classes", PARE_KV_NUM, NCLS, NULL}, {"ffn", PARE_KV_NUM, F, NULL}, {"seed", PARE_KV_NUM, 5, NULL},
        {"dropout", PARE_KV_NUM, 0, NULL}, {"pool", PARE_KV_STR, 0, pool},
    };
    pare_options o;
    pare_model *m = NULL;
    int n = !strcmp(kind, "encoder") ? 11 : 10;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, n) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    perturb_trainable(m, 11, 0.3);
    return m;
}

static pare_model *prune(const pare_model *m, const char *keep)
{
    pare_model *p = NULL;
    pare_kv kv[] = {{"keep", PARE_KV_STR, 0, keep}};
    if (pare_apply(&p, m, "prune_tokens", kv, 1) != PARE_OK) return NULL;
    return p;
}

/* logits (B, NCLS) of m at (B, T) into out; the values named in keep[] kept for capture into *xo (if xo) */
static int run(const pare_model *m, float *out, const char *const *keep, int nkeep, pare_exec **xo)
{
    pare_exec *x = NULL;
    if (pare_exec_new_keep(&x, (pare_model *)m, B, T, PARE_EXEC_INFER, keep, nkeep) != PARE_OK ||
        pare_exec_bind(x, tok, lens, lab) != PARE_OK || pare_exec_forward(x) != PARE_OK) {
        diag("run: %s", pare_errmsg());
        pare_exec_free(x);
        return 0;
    }
    memcpy(out, pare_exec_logits(x), sizeof(float) * B * NCLS);
    if (xo) *xo = x;
    else pare_exec_free(x);
    return 1;
}

/* ---- the reference ---- */

static const float *W(const pare_model *m, const char *fmt, int l)
{
    char nm[PARE_NAME_MAX];
    snprintf(nm, sizeof nm, fmt, l);
    int i = pare_model_find_param(m, nm);
    if (i < 0) {
        diag("no parameter %s", nm);
        abort();
    }
    return m->params[i].blob->data;
}

static void layernorm(double *y, const double *x, const float *w, const float *b, int n)
{
    for (int r = 0; r < n; r++) {
        double mu = 0, var = 0;
        for (int c = 0; c < C; c++) mu += x[r * C + c];
        mu /= C;
        for (int c = 0; c < C; c++) var += (x[r * C + c] - mu) * (x[r * C + c] - mu);
        var /= C;
        for (int c = 0; c < C; c++) y[r * C + c] = (x[r * C + c] - mu) / sqrt(var + 1e-5) * w[c] + b[c];
    }
}

/* y (n, N) = x (n, K) W^T + b */
static void linear(double *y, const double *x, const float *w, const float *b, int n, int N, int K)
{
    for (int r = 0; r < n; r++)
        for (int o = 0; o < N; o++) {
            double s = b[o];
            for (int k = 0; k < K; k++) s += x[r * K + k] * w[o * K + k];
            y[r * N + o] = s;
        }
}

/* Logits of sequence b of the model pruned with shares keep[0..L) (1 = no select), pool mean or cls;
 * kept[l][t] the position (within layer l − 1's tokens) of the t-th token layer l runs on. */
static void reference(const pare_model *m, const double *keep, int mean, int b, double *logits, int kept[L][T], int *nk)
{
    static double x[T * C], h[T * C], qkv[T * 3 * C], a[T * C], t1[T * F], t2[T * C], P[H][T][T];
    int n = lens[b];
    const float *te = W(m, "emb.tok.weight", 0), *pe = W(m, "emb.pos.weight", 0);
    for (int t = 0; t < n; t++)
        for (int c = 0; c < C; c++) x[t * C + c] = (double)te[tok[b * T + t] * C + c] + pe[t * C + c];
    for (int l = 0; l < L; l++) {
        int64_t Tk = keep[l] >= 1 ? T : (int64_t)ceil(keep[l] * T - 1e-6);
        int k = n < Tk ? n : (int)Tk;
        if (l > 0 && keep[l] < keep[l - 1]) { /* select by layer l − 1's attention received */
            double s[T];
            int sel[T] = {0};
            for (int j = 0; j < n; j++) {
                s[j] = 0;
                for (int hh = 0; hh < H; hh++)
                    for (int i = 0; i < n; i++) s[j] += P[hh][i][j];
            }
            sel[0] = 1;
            for (int r = 1; r < k; r++) {
                int best = -1;
                for (int j = 1; j < n; j++)
                    if (!sel[j] && (best < 0 || s[j] > s[best])) best = j;
                sel[best] = 1;
            }
            int t = 0;
            for (int j = 0; j < n; j++)
                if (sel[j]) {
                    kept[l][t] = j;
                    memmove(x + t * C, x + j * C, sizeof(double) * C);
                    t++;
                }
            n = k;
        }
        nk[l] = n;
        layernorm(h, x, W(m, "enc.%d.ln1.weight", l), W(m, "enc.%d.ln1.bias", l), n);
        linear(qkv, h, W(m, "enc.%d.attn.qkv.weight", l), W(m, "enc.%d.attn.qkv.bias", l), n, 3 * C, C);
        const int D = C / H;
        for (int hh = 0; hh < H; hh++)
            for (int i = 0; i < n; i++) {
                double mx = -1e300, z = 0;
                for (int j = 0; j < n; j++) {
                    double d = 0;
                    for (int c = 0; c < D; c++) d += qkv[i * 3 * C + hh * D + c] * qkv[j * 3 * C + C + hh * D + c];
                    P[hh][i][j] = d / sqrt((double)D);
                    if (P[hh][i][j] > mx) mx = P[hh][i][j];
                }
                for (int j = 0; j < n; j++) z += P[hh][i][j] = exp(P[hh][i][j] - mx);
                for (int j = 0; j < n; j++) P[hh][i][j] /= z;
                for (int c = 0; c < D; c++) {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += P[hh][i][j] * qkv[j * 3 * C + 2 * C + hh * D + c];
                    a[i * C + hh * D + c] = o;
                }
            }
        linear(t2, a, W(m, "enc.%d.attn.out.weight", l), W(m, "enc.%d.attn.out.bias", l), n, C, C);
        for (int i = 0; i < n * C; i++) x[i] += t2[i];
        layernorm(h, x, W(m, "enc.%d.ln2.weight", l), W(m, "enc.%d.ln2.bias", l), n);
        linear(t1, h, W(m, "enc.%d.ffn.up.weight", l), W(m, "enc.%d.ffn.up.bias", l), n, F, C);
        for (int i = 0; i < n * F; i++) {
            double v = t1[i];
            t1[i] = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        }
        linear(t2, t1, W(m, "enc.%d.ffn.down.weight", l), W(m, "enc.%d.ffn.down.bias", l), n, C, F);
        for (int i = 0; i < n * C; i++) x[i] += t2[i];
    }
    layernorm(h, x, W(m, "ln_f.weight", 0), W(m, "ln_f.bias", 0), n);
    double pooled[C] = {0};
    for (int c = 0; c < C; c++) {
        if (!mean) pooled[c] = h[c];
        else {
            for (int t = 0; t < n; t++) pooled[c] += h[t * C + c];
            pooled[c] /= n;
        }
    }
    linear(logits, pooled, W(m, "head.weight", 0), W(m, "head.bias", 0), 1, NCLS, C);
}

static void check_against_reference(const pare_model *m, const char *keep_text, const double *keep, int mean)
{
    pare_model *p = prune(m, keep_text);
    if (!ok(p != NULL, "%s pool=%s: prune_tokens applies", keep_text, mean ? "mean" : "cls")) {
        diag("%s", pare_errmsg());
        return;
    }
    const char *caps[L], *all[] = {"", "enc.1.tokens#idx", "enc.2.tokens#idx"};
    int ncap = 0, capl[L];
    for (int l = 1; l < L; l++)
        if (keep[l] < keep[l - 1]) capl[ncap] = l, caps[ncap++] = all[l];
    float got[B * NCLS], want[B * NCLS];
    pare_exec *x = NULL;
    if (!ok(run(p, got, caps, ncap, &x), "the pruned model runs")) {
        pare_model_free(p);
        return;
    }
    int idx_ok = 1;
    for (int b = 0; b < B; b++) {
        double lg[NCLS];
        int kept[L][T], nk[L];
        reference(m, keep, mean, b, lg, kept, nk);
        for (int c = 0; c < NCLS; c++) want[b * NCLS + c] = (float)lg[c];
        for (int q = 0; q < ncap; q++) {
            const int l = capl[q];
            const float *idx;
            int64_t rows, cols;
            if (pare_exec_value(x, caps[q], &idx, &rows, &cols) != PARE_OK) {
                idx_ok = 0;
                diag("%s", pare_errmsg());
                continue;
            }
            int64_t Tk = rows / B;
            for (int t = 0; t < Tk; t++) {
                int w = t < nk[l] ? kept[l][t] : -1;
                if ((int)idx[b * Tk + t] != w) {
                    if (idx_ok) diag("sequence %d, layer %d, kept row %d: position %g, the reference %d", b, l, t, (double)idx[b * Tk + t], w);
                    idx_ok = 0;
                }
            }
        }
    }
    char what[128];
    snprintf(what, sizeof what, "keep=%s pool=%s: logits equal the per-sequence reference", keep_text, mean ? "mean" : "cls");
    is_close_arr(got, want, B * NCLS, 1e-4, 1e-4, what);
    ok(idx_ok, "keep=%s pool=%s: the kept positions (#idx) are the reference's top-k by attention received", keep_text,
       mean ? "mean" : "cls");
    int64_t fp = pare_exec_flops(x, NULL);
    pare_exec_free(x);
    pare_exec *xd = NULL;
    int64_t fd = pare_exec_new(&xd, (pare_model *)m, B, T, PARE_EXEC_INFER) == PARE_OK ? pare_exec_flops(xd, NULL) : 0;
    pare_exec_free(xd);
    ok(fp < fd, "keep=%s: forward FLOPs %lld < the dense %lld", keep_text, (long long)fp, (long long)fd);
    pare_model_free(p);
}

static double loss_of(pare_model *m)
{
    pare_exec *x = NULL;
    double l = NAN;
    if (pare_exec_new(&x, m, B, T, PARE_EXEC_TRAIN) == PARE_OK && pare_exec_bind(x, tok, lens, lab) == PARE_OK &&
        pare_exec_forward(x) == PARE_OK)
        l = x->loss;
    pare_exec_free(x);
    return l;
}

static void check_gradients(pare_model *p)
{
    pare_exec *x = NULL;
    pare_model_alloc_grads(p);
    pare_model_zero_grad(p);
    if (!ok(pare_exec_new(&x, p, B, T, PARE_EXEC_TRAIN) == PARE_OK && pare_exec_bind(x, tok, lens, lab) == PARE_OK &&
                pare_exec_forward(x) == PARE_OK && pare_exec_backward(x) == PARE_OK,
            "training executor on the pruned model: forward and backward")) {
        diag("%s", pare_errmsg());
        pare_exec_free(x);
        return;
    }
    pare_exec_free(x);
    const char *names[] = {"emb.tok.weight", "emb.pos.weight", "enc.0.ffn.up.weight", "enc.1.attn.qkv.weight",
                           "enc.2.attn.out.weight", "enc.2.ffn.down.weight", "head.weight"};
    double worst = 0;
    int checked = 0, bad = 0;
    for (size_t q = 0; q < sizeof names / sizeof names[0]; q++) {
        pare_param *w = &p->params[pare_model_find_param(p, names[q])];
        pare_param_make_private(w);
        int64_t n = pare_param_numel(w);
        for (int r = 0; r < 6; r++) {
            int64_t i = (int64_t)((r * 7919 + q * 104729) % n);
            float keep = w->blob->data[i];
            const double eps = 1e-2;
            w->blob->data[i] = keep + (float)eps;
            double lp = loss_of(p);
            w->blob->data[i] = keep - (float)eps;
            double lm = loss_of(p);
            w->blob->data[i] = keep;
            double fd = (lp - lm) / (2 * eps), g = w->grad[i], err = fabs(fd - g) / (1e-3 + fabs(fd));
            if (err > worst) worst = err;
            if (fabs(fd - g) > 2e-3 + 3e-2 * fabs(fd)) {
                if (!bad) diag("%s[%lld]: backward %.6g, central differences %.6g", names[q], (long long)i, g, fd);
                bad++;
            }
            checked++;
        }
    }
    ok(!bad, "gradients through the token selects match central differences (%d weights, worst relative %.3g)", checked, worst);
}

static int errmsg_has(const pare_model *m, const char *keep, const char *want)
{
    pare_model *p = prune(m, keep);
    int r = !p && strstr(pare_errmsg(), want) != NULL;
    if (!r) diag("keep=%s: got '%s', wanted a message with '%s'", keep, p ? "(accepted)" : pare_errmsg(), want);
    pare_model_free(p);
    return r;
}

int main(void)
{
    tap_plan_lazy();
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)((i * 7 + 3) % V);
    pare_model *m = build("encoder", "cls");
    if (!ok(m != NULL, "a 3-layer encoder")) return tap_done();

    /* keep = 1: no select, and a select at keep 0.999 (T' = T: every valid token kept in order) */
    float dense[B * NCLS], got[B * NCLS];
    run(m, dense, NULL, 0, NULL);
    pare_model *p1 = prune(m, "1;1;1"), *p2 = prune(m, "1;1;0.999");
    ok(p1 && p2, "keep=1;1;1 and keep=1;1;0.999 apply");
    if (p1 && p2) {
        ok(p1->nnodes == m->nnodes, "keep = 1 everywhere adds no node");
        ok(run(p1, got, NULL, 0, NULL) && !memcmp(got, dense, sizeof got), "keep = 1 everywhere: logits identical to the dense model's");
        ok(p2->nnodes == m->nnodes + 2 && run(p2, got, NULL, 0, NULL) && !memcmp(got, dense, sizeof got),
           "a select keeping all T tokens: logits identical to the dense model's (bit for bit)");
    }
    pare_model_free(p1), pare_model_free(p2);

    /* pruned: against the reference, CLS and mean pooling */
    const double k1[L] = {1, 0.6, 0.3}, k2[L] = {1, 0.5, 0.5};
    check_against_reference(m, "1;0.6;0.3", k1, 0);
    check_against_reference(m, "1;0.5", k2, 0); /* the last share repeats: one select before layer 1 */
    pare_model *mm = build("encoder", "mean");
    if (mm) check_against_reference(mm, "1;0.6;0.3", k1, 1);
    pare_model_free(mm);

    /* a shorter batch T than max_T runs (each level's T' follows the executor's T) */
    pare_model *p = prune(m, "1;0.6;0.3");
    pare_exec *xs = NULL;
    ok(p && pare_exec_new(&xs, p, 2, 7, PARE_EXEC_INFER) == PARE_OK && pare_exec_bind(xs, tok, (int32_t[]){7, 3}, lab) == PARE_OK &&
           pare_exec_forward(xs) == PARE_OK && xs->planned_bytes > 0,
       "the pruned model runs at T=7 < max_T (T' = 5 and 3)");
    pare_exec_free(xs);

    /* gradients */
    if (p) check_gradients(p);

    /* save -> load: the schedule and the logits */
    if (p) {
        const char *path = "build/test_prune_tokens.safetensors";
        pare_model *back = NULL;
        float a[B * NCLS], b2[B * NCLS];
        ok(pare_model_save(p, path) == PARE_OK && pare_model_load(&back, path) == PARE_OK, "save and load the pruned model");
        if (back) {
            int sels = 0, keeps_ok = 1;
            for (int64_t i = 0; i < back->nnodes; i++)
                if (back->nodes[i].op == PARE_OP_TOKEN_SELECT) {
                    sels++;
                    int64_t j = pare_model_find_node(p, back->nodes[i].name);
                    keeps_ok &= j >= 0 && p->nodes[j].a.keep == back->nodes[i].a.keep;
                }
            ok(sels == 2 && keeps_ok, "the loaded model has the 2 selects with their keep");
            ok(run(p, a, NULL, 0, NULL) && run(back, b2, NULL, 0, NULL) && !memcmp(a, b2, sizeof a),
               "logits after load identical to before save");
        }
        pare_model_free(back);
        remove(path);
    }

    /* refusals naming the option */
    ok(errmsg_has(m, "1;1.2", "keep"), "keep > 1 refused, naming keep");
    ok(errmsg_has(m, "1;0.5;0.7", "must not grow"), "growing shares refused");
    ok(errmsg_has(m, "0.5;0.5", "first share must be 1"), "a first share below 1 refused");
    ok(errmsg_has(m, "1;0.5;0.5;0.5", "4 shares for a model of 3 layers"), "more shares than layers refused");
    ok(errmsg_has(m, "1;x", "keep"), "text that is not a number refused");
    ok(p && errmsg_has(p, "1;0.5", "token-pruned already"), "pruning a pruned model again refused");
    pare_model *dec = build("decoder", "cls");
    ok(dec && errmsg_has(dec, "1;0.5", "bidirectional encoders"), "a decoder refused");
    pare_model_free(dec);
    pare_model_free(p);
    pare_model_free(m);
    return tap_done();
}
