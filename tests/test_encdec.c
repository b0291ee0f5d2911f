/* test_encdec.c — encoder-decoder models (docs/encoder-decoder.md): the cross-attention kernel against
 * its reference and finite differences, whole-model gradients, the planner, padding of the source,
 * save/load, head dropping in cross-attention, the translate task, BLEU (by hand and against an
 * independent Python implementation), and the errors of a misplaced or oversized source. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rng.h"
#include "data/task.h"
#include "eval/translate.h"
#include "graph/exec.h"
#include "graph/rewrite.h"
#include "io/safetensors.h"
#include "kernels/nn.h"
#include "model/transformer.h"
#include "train/train.h"
#include "tap.h"

static void fill(float *x, int64_t n, pare_rng *r, double s)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(s * pare_rng_normal(r));
}

/* Σ w ⊙ out of the reference forward, in double */
static double xloss(const float *q, const float *kv, const int32_t *sl, const float *w, int64_t B, int64_t T, int64_t S,
                    int64_t C, int64_t H)
{
    float out[2 * 3 * 8], att[2 * 2 * 3 * 5];
    pare_cross_attention_forward_ref(out, att, q, kv, sl, B, T, S, C, H);
    double l = 0;
    for (int64_t i = 0; i < B * T * C; i++) l += (double)w[i] * out[i];
    return l;
}

static void kernel_tests(void)
{
    enum { B = 2, T = 3, S = 5, C = 8, H = 2 };
    pare_rng r;
    pare_rng_seed(&r, 5);
    float q[B * T * C], kv[B * S * 2 * C], out[B * T * C], att[B * H * T * S], ro[B * T * C], ra[B * H * T * S], w[B * T * C];
    int32_t sl[B] = {5, 2};
    fill(q, B * T * C, &r, 1.0), fill(kv, B * S * 2 * C, &r, 1.0), fill(w, B * T * C, &r, 1.0);
    pare_cross_attention_forward(out, att, q, kv, sl, B, T, S, C, H);
    pare_cross_attention_forward_ref(ro, ra, q, kv, sl, B, T, S, C, H);
    is_close_arr(out, ro, B * T * C, 1e-5, 1e-4, "cross-attention output == reference");
    is_close_arr(att, ra, B * H * T * S, 1e-6, 1e-5, "cross-attention probabilities == reference");
    int masked = 1;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++)
            for (int j = 2; j < S; j++) masked &= att[((1 * H + h) * T + i) * S + j] == 0.0f;
    ok(masked, "source keys at and after the source length get probability exactly 0");
    /* the output of a padded source does not depend on the padding */
    float kv2[B * S * 2 * C], out2[B * T * C], att2[B * H * T * S];
    memcpy(kv2, kv, sizeof kv);
    for (int j = 2; j < S; j++)
        for (int c = 0; c < 2 * C; c++) kv2[(1 * S + j) * 2 * C + c] = 1e3f;
    pare_cross_attention_forward(out2, att2, q, kv2, sl, B, T, S, C, H);
    is_close_arr(out2, out, B * T * C, 0, 0, "padding keys and values change nothing");

    float dq[B * T * C] = {0}, dkv[B * S * 2 * C] = {0};
    pare_cross_attention_backward(dq, dkv, w, att, NULL, q, kv, sl, B, T, S, C, H);
    double worst = 0;
    const double h = 1e-3;
    for (int which = 0; which < 2; which++) {
        float *x = which ? kv : q, *g = which ? dkv : dq;
        int64_t n = which ? B * S * 2 * C : B * T * C;
        for (int64_t i = 0; i < n; i++) {
            float keep = x[i];
            x[i] = keep + (float)h;
            double lp = xloss(q, kv, sl, w, B, T, S, C, H);
            x[i] = keep - (float)h;
            double lm = xloss(q, kv, sl, w, B, T, S, C, H);
            x[i] = keep;
            double num = (lp - lm) / (2 * h), err = fabs(num - g[i]) / (1e-3 + fabs(num) + fabs(g[i]));
            if (err > worst) worst = err;
        }
    }
    ok(worst < 1e-2, "cross-attention backward (dq, dk, dv) vs central differences on every coordinate (worst rel err %.2g)",
       worst);

    /* a loss on the probabilities themselves (TinyBERT's attention term): L = Σ w·out + Σ R ⊙ att */
    float R[B * H * T * S];
    fill(R, B * H * T * S, &r, 1.0);
    memset(dq, 0, sizeof dq), memset(dkv, 0, sizeof dkv);
    pare_cross_attention_backward(dq, dkv, w, att, R, q, kv, sl, B, T, S, C, H);
    worst = 0;
    for (int which = 0; which < 2; which++) {
        float *x = which ? kv : q, *g = which ? dkv : dq;
        int64_t n = which ? B * S * 2 * C : B * T * C;
        for (int64_t i = 0; i < n; i++) {
            float keep = x[i];
            double l2[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                x[i] = keep + (float)(sgn ? -h : h);
                float o2[B * T * C], a2[B * H * T * S];
                pare_cross_attention_forward_ref(o2, a2, q, kv, sl, B, T, S, C, H);
                double l = 0;
                for (int64_t k = 0; k < B * T * C; k++) l += (double)w[k] * o2[k];
                for (int64_t k = 0; k < B * H * T * S; k++) l += (double)R[k] * a2[k];
                l2[sgn] = l;
            }
            x[i] = keep;
            double num = (l2[0] - l2[1]) / (2 * h), err = fabs(num - g[i]) / (1e-3 + fabs(num) + fabs(g[i]));
            if (err > worst) worst = err;
        }
    }
    ok(worst < 1e-2, "cross-attention backward with a gradient on the probabilities (datt) vs central differences (worst "
       "rel err %.2g)", worst);
}

static pare_model *build(const pare_kv *extra, int nextra, int64_t seed_noise)
{
    pare_kv kv[24] = {
        {"kind", PARE_KV_STR, 0, "encdec"}, {"vocab", PARE_KV_NUM, 9, NULL},     {"src_vocab", PARE_KV_NUM, 11, NULL},
        {"max_T", PARE_KV_NUM, 5, NULL},    {"src_max_T", PARE_KV_NUM, 6, NULL}, {"d", PARE_KV_NUM, 8, NULL},
        {"heads", PARE_KV_NUM, 2, NULL},    {"layers", PARE_KV_NUM, 2, NULL},    {"enc_layers", PARE_KV_NUM, 1, NULL},
        {"ffn", PARE_KV_NUM, 16, NULL},     {"seed", PARE_KV_NUM, 7, NULL},
    };
    int n = 11;
    for (int i = 0; i < nextra; i++) kv[n++] = extra[i];
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, n) != PARE_OK || pare_transformer_build(&m, &o) != PARE_OK) {
        diag("build failed: %s", pare_errmsg());
        return NULL;
    }
    if (seed_noise) { /* larger weights than the 0.02 init so gradients are not tiny */
        pare_rng r;
        pare_rng_seed(&r, (uint64_t)seed_noise);
        for (int64_t i = 0; i < m->nparams; i++) {
            pare_param *p = &m->params[i];
            if (!p->trainable) continue;
            for (int64_t k = 0; k < pare_param_numel(p); k++) p->blob->data[k] += (float)(0.3 * pare_rng_normal(&r));
        }
    }
    return m;
}

enum { GB = 2, GT = 5, GS = 4 };
static const int32_t g_tok[GB * GT] = {1, 3, 4, 5, 0, 1, 8, 2, 0, 0};
static const int32_t g_len[GB] = {4, 3};
static const int32_t g_lab[GB * GT] = {3, 4, 5, 2, -1, 8, 7, 2, -1, -1};
static const int32_t g_src[GB * GS] = {3, 9, 10, 4, 5, 6, 0, 0};
static const int32_t g_slen[GB] = {4, 2};

static pare_status run(pare_exec *x, const int32_t *src)
{
    PARE_TRY(pare_exec_bind(x, g_tok, g_len, g_lab));
    PARE_TRY(pare_exec_bind_source(x, src, g_slen));
    return pare_exec_forward(x);
}

static void model_gradcheck(pare_model *m)
{
    pare_exec *x = NULL;
    if (!ok(pare_model_alloc_grads(m) == PARE_OK && pare_exec_new_src(&x, m, GB, GT, GS, PARE_EXEC_TRAIN, NULL, 0) == PARE_OK,
            "training executor at S=%d < src_max_T", GS))
        return;
    pare_model_zero_grad(m);
    ok(run(x, g_src) == PARE_OK && pare_exec_backward(x) == PARE_OK, "forward and backward");
    pare_rng r;
    pare_rng_seed(&r, 11);
    double worst = 0;
    const char *worst_name = "";
    int checked = 0;
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable) continue;
        for (int k = 0; k < 6; k++) {
            int64_t j = (int64_t)pare_rng_below(&r, (uint64_t)pare_param_numel(p));
            float keep = p->blob->data[j];
            double h = 1e-2;
            p->blob->data[j] = keep + (float)h;
            run(x, g_src);
            double lp = x->loss;
            p->blob->data[j] = keep - (float)h;
            run(x, g_src);
            double lm = x->loss;
            p->blob->data[j] = keep;
            double num = (lp - lm) / (2 * h), ana = p->grad[j];
            double err = fabs(num - ana) / (1e-3 + fabs(num) + fabs(ana));
            if (err > worst) worst = err, worst_name = p->name;
            checked++;
        }
    }
    ok(worst < 2e-2, "encdec: whole-model gradient vs finite differences on %d coordinates, every parameter (worst rel "
       "err %.2g at %s)", checked, worst, worst_name);
    pare_exec_free(x);
}

/* logits (GB·GT, V) of m on the fixed batch; NULL on failure */
static float *logits_of(pare_model *m, const int32_t *src)
{
    pare_exec *x = NULL;
    if (pare_exec_new_src(&x, m, GB, GT, GS, PARE_EXEC_INFER, NULL, 0) != PARE_OK || run(x, src) != PARE_OK) {
        diag("%s", pare_errmsg());
        pare_exec_free(x);
        return NULL;
    }
    size_t n = (size_t)(GB * GT * m->nclass);
    float *l = malloc(n * sizeof *l);
    memcpy(l, pare_exec_logits(x), n * sizeof *l);
    pare_exec_free(x);
    return l;
}

static void model_tests(void)
{
    pare_model *m = build(NULL, 0, 3);
    if (!ok(m != NULL, "encdec builds")) return;
    ok(m->src_tokens >= 0 && m->src_lengths >= 0 && pare_model_find_node(m, "dec.1.xattn") >= 0 &&
           pare_model_find_node(m, "enc.0.attn") >= 0 && pare_model_find_node(m, "enc.1.attn") < 0 &&
           pare_model_find_value(m, "dec.0.xattn#att") >= 0 && m->L == 2,
       "layout: enc.0 (enc_layers=1), dec.0..1 with xattn and its '#att' cache, L counts decoder layers");
    model_gradcheck(m);

    /* inference planner == training executor; source padding changes nothing */
    float *inf = logits_of(m, g_src);
    pare_exec *tr = NULL;
    int same = inf && pare_exec_new_src(&tr, m, GB, GT, GS, PARE_EXEC_TRAIN, NULL, 0) == PARE_OK && run(tr, g_src) == PARE_OK;
    if (same) is_close_arr(inf, pare_exec_logits(tr), GB * GT * m->nclass, 1e-6, 1e-5, "planned inference logits == training executor's");
    else ok(0, "planned inference logits == training executor's");
    pare_exec_free(tr);
    int32_t src2[GB * GS];
    memcpy(src2, g_src, sizeof src2);
    src2[1 * GS + 2] = 7, src2[1 * GS + 3] = 10; /* beyond row 1's source length 2 */
    float *pad = logits_of(m, src2);
    ok(inf && pad && !memcmp(inf, pad, sizeof(float) * (size_t)(GB * GT * m->nclass)),
       "tokens after the source length do not change the logits (bit-identical)");
    free(pad);

    /* save -> load: bit-identical logits */
    char path[] = "/tmp/pare_encdec_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    pare_model *back = NULL;
    pare_status st = pare_model_save(m, path);
    if (st == PARE_OK) st = pare_model_load(&back, path);
    if (st != PARE_OK) diag("%s", pare_errmsg());
    float *lb = back ? logits_of(back, g_src) : NULL;
    ok(lb && inf && !memcmp(lb, inf, sizeof(float) * (size_t)(GB * GT * m->nclass)) && back->src_max_T == 6 &&
           back->src_vocab == 11 && !strcmp(back->kind, "encdec"),
       "save -> load: the encdec graph comes back with bit-identical logits");
    free(lb);
    pare_model_free(back);
    unlink(path);

    /* head dropping in cross-attention == zeroing the head's columns of the output projection */
    int64_t xn = pare_model_find_node(m, "dec.0.xattn");
    pare_model *p = pare_model_clone(m), *z = pare_model_clone(m);
    int drop[1] = {1};
    st = pare_model_drop_heads(p, xn, drop, 1);
    if (st != PARE_OK) diag("%s", pare_errmsg());
    int pw = pare_model_find_param(z, "dec.0.xattn.out.weight");
    pare_param_make_private(&z->params[pw]);
    for (int64_t r = 0; r < 8; r++)
        for (int64_t c = 4; c < 8; c++) z->params[pw].blob->data[r * 8 + c] = 0.0f;
    float *lp = st == PARE_OK ? logits_of(p, g_src) : NULL, *lz = logits_of(z, g_src);
    int qp = pare_model_find_param(p, "dec.0.xattn.q.weight"), kvp = pare_model_find_param(p, "dec.0.xattn.kv.weight");
    ok(st == PARE_OK && p->nodes[xn].a.heads == 1 && p->params[qp].shape[0] == 4 && p->params[kvp].shape[0] == 8 &&
           p->params[pare_model_find_param(p, "dec.0.xattn.out.weight")].shape[1] == 4,
       "drop_heads on dec.0.xattn: q rows 8 -> 4, kv rows 16 -> 8 (k and v), out columns 8 -> 4, 1 head");
    if (lp && lz) is_close_arr(lp, lz, GB * GT * m->nclass, 1e-5, 1e-4, "the pruned model == the head's output columns zeroed");
    else ok(0, "the pruned model == the head's output columns zeroed");
    int all[2] = {0, 1};
    ok(pare_model_drop_heads(p, xn, all, 1) == PARE_EINVAL && strstr(pare_errmsg(), "keep at least one"),
       "dropping the last cross-attention head is refused: %s", pare_errmsg());
    free(lp), free(lz);
    pare_model_free(p), pare_model_free(z);

    /* errors: a source given to a model without one, a source longer than src_max_T, bad ids and lengths */
    pare_exec *x = NULL;
    ok(pare_exec_new_src(&x, m, 1, 5, 7, PARE_EXEC_INFER, NULL, 0) == PARE_EINVAL && strstr(pare_errmsg(), "src_max_T") &&
           strstr(pare_errmsg(), "7"),
       "a source longer than src_max_T is refused: %s", pare_errmsg());
    if (pare_exec_new_src(&x, m, GB, GT, GS, PARE_EXEC_INFER, NULL, 0) == PARE_OK) {
        int32_t bad[GB * GS];
        memcpy(bad, g_src, sizeof bad);
        bad[3] = 11;
        pare_exec_bind(x, g_tok, g_len, g_lab);
        ok(pare_exec_bind_source(x, bad, g_slen) == PARE_EINVAL && strstr(pare_errmsg(), "source vocabulary"),
           "a source id outside src_vocab: %s", pare_errmsg());
        int32_t bl[GB] = {4, 5};
        ok(pare_exec_bind_source(x, g_src, bl) == PARE_EINVAL && strstr(pare_errmsg(), "source length 5"),
           "a source length beyond S: %s", pare_errmsg());
    }
    pare_exec_free(x);
    free(inf);
    pare_model_free(m);

    pare_kv dk[] = {{"kind", PARE_KV_STR, 0, "decoder"}, {"vocab", PARE_KV_NUM, 9, NULL}, {"max_T", PARE_KV_NUM, 5, NULL},
                    {"d", PARE_KV_NUM, 8, NULL}, {"heads", PARE_KV_NUM, 2, NULL}};
    pare_options o;
    pare_model *dec = NULL;
    x = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, dk, 5) == PARE_OK && pare_transformer_build(&dec, &o) == PARE_OK &&
        pare_exec_new(&x, dec, GB, GT, PARE_EXEC_INFER) == PARE_OK) {
        pare_exec_bind(x, g_tok, g_len, g_lab);
        ok(pare_exec_bind_source(x, g_src, g_slen) == PARE_EINVAL && strstr(pare_errmsg(), "no source input"),
           "binding a source to a decoder-only model: %s", pare_errmsg());
        pare_exec *y = NULL;
        ok(pare_exec_new_src(&y, dec, GB, GT, 3, PARE_EXEC_INFER, NULL, 0) == PARE_EINVAL && strstr(pare_errmsg(), "no source input"),
           "a source length given to a decoder: %s", pare_errmsg());
    } else ok(0, "decoder builds: %s", pare_errmsg());
    pare_exec_free(x);

    /* options: numel mirrors the builder; bad combinations name the option */
    {
        pare_kv v1[] = {{"share_emb", PARE_KV_BOOL, 1, NULL}, {"src_vocab", PARE_KV_NUM, 9, NULL}};
        pare_kv v2[] = {{"tie_head", PARE_KV_BOOL, 1, NULL}, {"enc_layers", PARE_KV_NUM, 0, NULL}, {"pos", PARE_KV_STR, 0, "sinusoidal"}};
        pare_kv v3[] = {{"head_bias", PARE_KV_BOOL, 0, NULL}, {"enc_layers", PARE_KV_NUM, 3, NULL}, {"pos_offset", PARE_KV_NUM, 2, NULL}};
        pare_kv v4[] = {{"norm", PARE_KV_STR, 0, "post"}, {"emb_norm", PARE_KV_BOOL, 1, NULL}, {"emb_scale", PARE_KV_NUM, 2.5, NULL}};
        const pare_kv *vs[] = {NULL, v1, v2, v3, v4};
        int nv[] = {0, 2, 3, 3, 3}, agree = 1;
        for (int k = 0; k < 5; k++) {
            pare_model *mm = build(vs[k], nv[k], 0);
            pare_kv kv[16] = {{"kind", PARE_KV_STR, 0, "encdec"}, {"vocab", PARE_KV_NUM, 9, NULL}, {"src_vocab", PARE_KV_NUM, 11, NULL},
                              {"max_T", PARE_KV_NUM, 5, NULL}, {"src_max_T", PARE_KV_NUM, 6, NULL}, {"d", PARE_KV_NUM, 8, NULL},
                              {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 2, NULL}, {"enc_layers", PARE_KV_NUM, 1, NULL},
                              {"ffn", PARE_KV_NUM, 16, NULL}, {"seed", PARE_KV_NUM, 7, NULL}};
            int n = 11;
            for (int i = 0; i < nv[k]; i++) kv[n++] = vs[k][i];
            int64_t numel = -1, built = 0;
            if (!mm || pare_opts_resolve(&o, &pare_model_schema, kv, n) != PARE_OK || pare_transformer_numel(&numel, &o) != PARE_OK) {
                agree = 0;
                pare_model_free(mm);
                continue;
            }
            for (int64_t i = 0; i < mm->nparams; i++)
                if (i == 0 || mm->params[i].blob != mm->params[i - 1].blob) built += (int64_t)mm->params[i].blob->n;
            if (numel != built) diag("config %d: numel %lld, built %lld", k, (long long)numel, (long long)built);
            agree &= numel == built;
            pare_model_free(mm);
        }
        ok(agree, "pare_transformer_numel equals the built parameters (plain, share_emb, tie_head + enc_layers=0, no head "
           "bias, BART's norm=post + emb_norm + emb_scale)");
        pare_kv b1[] = {{"share_emb", PARE_KV_BOOL, 1, NULL}};
        pare_model *bad = build(b1, 1, 0);
        ok(!bad && strstr(pare_errmsg(), "share_emb") && strstr(pare_errmsg(), "src_vocab"), "share_emb with two vocabularies: %s",
           pare_errmsg());
        pare_kv b2[] = {{"type_vocab", PARE_KV_NUM, 2, NULL}};
        bad = build(b2, 1, 0);
        ok(!bad && strstr(pare_errmsg(), "type_vocab"), "type_vocab=2: %s", pare_errmsg());
    }
    pare_model_free(dec);
}

static void task_tests(void)
{
    pare_kv kv[] = {{"n_train", PARE_KV_NUM, 300, NULL}, {"n_test", PARE_KV_NUM, 50, NULL}, {"seed", PARE_KV_NUM, 4, NULL}};
    pare_dataset tr = {0}, te = {0}, tr2 = {0}, te2 = {0};
    pare_status st = pare_task_make_kv(&tr, &te, "translate", kv, 3);
    if (!ok(st == PARE_OK && pare_task_make_kv(&tr2, &te2, "translate", kv, 3) == PARE_OK, "translate builds: %s",
            st ? pare_errmsg() : "ok"))
        return;
    ok(pare_dataset_check(&tr) == PARE_OK && pare_dataset_check(&te) == PARE_OK, "both splits pass pare_dataset_check");
    ok(!memcmp(tr.src_tokens, tr2.src_tokens, sizeof(int32_t) * (size_t)(tr.n * tr.S)) &&
           !memcmp(tr.labels, tr2.labels, sizeof(int32_t) * (size_t)(tr.n * tr.T)),
       "deterministic by seed");
    /* the rules: BOS first; labels = inputs shifted left, then EOS; the verb agrees (-i/-a last); "will" <=> "-ru" */
    int rules = 1;
    for (int64_t i = 0; i < tr.n; i++) {
        const int32_t *x = tr.tokens + i * tr.T, *y = tr.labels + i * tr.T, *s = tr.src_tokens + i * tr.S;
        int64_t L = tr.lengths[i];
        rules &= x[0] == PARE_TOKEN_BOS && y[L - 1] == PARE_TOKEN_EOS;
        for (int64_t j = 0; j + 1 < L; j++) rules &= y[j] == x[j + 1];
        const char *agr = tr.vocab_names[y[L - 2]];
        rules &= !strcmp(agr, "-i") || !strcmp(agr, "-a");
        int will = 0, ru = 0, pl_src = 0;
        for (int64_t j = 0; j < tr.src_lengths[i]; j++) will |= s[j] == 6;
        for (int64_t j = 0; j < L; j++) ru |= !strcmp(tr.vocab_names[y[j]], "-ru");
        rules &= will == ru;
        /* a plural subject (source "-s" before "will" or the verb, ids 24..31 with 12 nouns) <=> plural agreement */
        for (int64_t j = 0; j < tr.src_lengths[i] && s[j] != 6 && !(s[j] >= 24 && s[j] < 32); j++) pl_src |= s[j] == 5;
        rules &= pl_src == !strcmp(agr, "-a");
    }
    ok(rules, "rules hold on every training pair (teacher forcing layout, agreement, future tense)");

    /* fitting: a decoder refuses the source task, an encdec refuses a task without sources or too long a source */
    pare_kv mk[] = {{"kind", PARE_KV_STR, 0, "encdec"}, {"vocab", PARE_KV_NUM, tr.vocab, NULL}, {"src_vocab", PARE_KV_NUM, tr.src_vocab, NULL},
                    {"max_T", PARE_KV_NUM, (double)tr.T, NULL}, {"src_max_T", PARE_KV_NUM, (double)tr.S - 1, NULL},
                    {"d", PARE_KV_NUM, 8, NULL}, {"heads", PARE_KV_NUM, 2, NULL}, {"layers", PARE_KV_NUM, 1, NULL}};
    pare_options o;
    pare_model *m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, mk, 8) == PARE_OK && pare_transformer_build(&m, &o) == PARE_OK) {
        pare_eval_result e;
        ok(pare_evaluate(m, &te, 16, &e) == PARE_ESHAPE && strstr(pare_errmsg(), "src_max_T"),
           "a task source longer than src_max_T: %s", pare_errmsg());
        pare_bleu b;
        ok(pare_translate_bleu(m, &te, 0, 4, 0, 4, &b) == PARE_ESHAPE && strstr(pare_errmsg(), "src_max_T"),
           "translate with too long a source: %s", pare_errmsg());
        pare_dataset cl = {0}, ct = {0};
        if (pare_task_make_kv(&cl, &ct, "copy_lm", NULL, 0) == PARE_OK)
            ok(pare_evaluate(m, &ct, 16, &e) == PARE_EINVAL && strstr(pare_errmsg(), "no source sequences"),
               "an encdec on a task without sources: %s", pare_errmsg());
        pare_dataset_free(&cl), pare_dataset_free(&ct);
    }
    pare_model_free(m);
    pare_kv dk[] = {{"kind", PARE_KV_STR, 0, "decoder"}, {"vocab", PARE_KV_NUM, tr.vocab, NULL}, {"max_T", PARE_KV_NUM, (double)tr.T, NULL},
                    {"d", PARE_KV_NUM, 8, NULL}, {"heads", PARE_KV_NUM, 2, NULL}};
    m = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, dk, 5) == PARE_OK && pare_transformer_build(&m, &o) == PARE_OK) {
        pare_eval_result e;
        ok(pare_evaluate(m, &te, 16, &e) == PARE_EINVAL && strstr(pare_errmsg(), "no source input"),
           "a decoder on the translate task: %s", pare_errmsg());
        pare_bleu b;
        ok(pare_translate_bleu(m, &te, 0, 4, 0, 4, &b) == PARE_EINVAL && strstr(pare_errmsg(), "kind=encdec"),
           "translate with a decoder: %s", pare_errmsg());
    }
    pare_model_free(m);
    pare_dataset_free(&tr), pare_dataset_free(&te), pare_dataset_free(&tr2), pare_dataset_free(&te2);
}

static double bleu_of(const int32_t *h, int64_t hl, const int32_t *r, int64_t rl)
{
    pare_bleu b;
    if (pare_bleu_corpus(&b, h, &hl, hl ? hl : 1, r, &rl, rl ? rl : 1, 1) != PARE_OK) return -1;
    return b.bleu;
}

/* sacrebleu's corpus_bleu(..., tokenize='none') default computation, written out in pure Python */
static const char *py_bleu =
    "import sys, math\n"
    "from collections import Counter\n"
    "def grams(s, n): return Counter(tuple(s[i:i+n]) for i in range(len(s)-n+1))\n"
    "lines = open(sys.argv[1]).read().split('\\n')\n"
    "corr = [0]*4; tot = [0]*4; c = r = 0\n"
    "for k in range(0, len(lines) - 1, 2):\n"
    "    h = lines[k].split(); ref = lines[k+1].split(); c += len(h); r += len(ref)\n"
    "    for n in range(1, 5):\n"
    "        hg, rg = grams(h, n), grams(ref, n)\n"
    "        corr[n-1] += sum(min(v, rg[g]) for g, v in hg.items()); tot[n-1] += max(len(h)-n+1, 0)\n"
    "bp = 1.0 if c >= r else (math.exp(1 - r / c) if c > 0 else 0.0)\n"
    "if corr[0] == 0: print(0.0); sys.exit()\n"
    "p = [0.0]*4; sm = 1.0\n"
    "for n in range(4):\n"
    "    if tot[n] == 0: break\n"
    "    if corr[n] == 0: sm *= 2; p[n] = 100.0 / (sm * tot[n])\n"
    "    else: p[n] = 100.0 * corr[n] / tot[n]\n"
    "print('%.12f' % (bp * math.exp(sum(math.log(x) if x > 0 else -9999999999 for x in p) / 4)))\n";

static void bleu_tests(void)
{
    const int32_t a[] = {1, 2, 3, 4, 5}, b[] = {1, 2, 3, 4, 6}, c[] = {1, 2, 3, 4}, d[] = {1, 2, 3, 4, 5, 6};
    is_close(bleu_of(a, 5, a, 5), 100.0, 1e-9, 0, "identical sentences: BLEU 100");
    /* by hand: precisions 4/5, 3/4, 2/3, 1/2, no brevity penalty: 100 · (0.2)^(1/4) */
    is_close(bleu_of(a, 5, b, 5), 100.0 * pow(0.2, 0.25), 1e-9, 0, "one substitution at the end: 100·(4/5·3/4·2/3·1/2)^(1/4) = 66.87");
    /* by hand: all precisions 1, c = 4 < r = 6: BP = exp(1 − 6/4) */
    is_close(bleu_of(c, 4, d, 6), 100.0 * exp(-0.5), 1e-9, 0, "a short exact prefix: brevity penalty exp(1 − 6/4) = 60.65");
    const int32_t e[] = {7, 8, 9};
    is_close(bleu_of(e, 3, a, 5), 0.0, 0, 0, "no unigram in common: 0");
    /* "exp" smoothing by hand: h = 1 2 9 3, r = 1 2 3 4: p1 = 3/4, p2 = 1/3, p3 = 0 -> 100/(2·2), p4 = 0 -> 100/(4·1);
     * BP = 1 */
    const int32_t f[] = {1, 2, 9, 3};
    double want = pow(75.0 * (100.0 / 3.0) * 25.0 * 25.0, 0.25);
    is_close(bleu_of(f, 4, c, 4), want, 1e-9, 0, "orders without a match are smoothed as sacrebleu's default (exp)");

    /* against the Python implementation on a random corpus over a small vocabulary */
    enum { N = 60, W = 14 };
    int32_t hyp[N * W], ref[N * W];
    int64_t hl[N], rl[N];
    pare_rng r;
    pare_rng_seed(&r, 9);
    char path[] = "/tmp/pare_bleu_XXXXXX", py[] = "/tmp/pare_bleu_py_XXXXXX";
    int fd = mkstemp(path), fp = mkstemp(py);
    FILE *f1 = fd >= 0 ? fdopen(fd, "w") : NULL, *f2 = fp >= 0 ? fdopen(fp, "w") : NULL;
    for (int i = 0; i < N; i++) {
        rl[i] = 1 + (int64_t)pare_rng_below(&r, W - 1);
        hl[i] = i % 17 == 3 ? 0 : (int64_t)pare_rng_below(&r, W);
        for (int64_t k = 0; k < rl[i]; k++) ref[i * W + k] = (int32_t)pare_rng_below(&r, 5);
        for (int64_t k = 0; k < hl[i]; k++) /* mostly copies of the reference, some noise */
            hyp[i * W + k] = k < rl[i] && pare_rng_uniform(&r) < 0.7 ? ref[i * W + k] : (int32_t)pare_rng_below(&r, 5);
        for (int64_t k = 0; f1 && k < hl[i]; k++) fprintf(f1, "%s%d", k ? " " : "", hyp[i * W + k]);
        if (f1) fputc('\n', f1);
        for (int64_t k = 0; f1 && k < rl[i]; k++) fprintf(f1, "%s%d", k ? " " : "", ref[i * W + k]);
        if (f1) fputc('\n', f1);
    }
    if (f1) fclose(f1);
    if (f2) fputs(py_bleu, f2), fclose(f2);
    pare_bleu bl;
    ok(pare_bleu_corpus(&bl, hyp, hl, W, ref, rl, W, N) == PARE_OK, "corpus BLEU of %d sentences", N);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", py, path);
    FILE *p = popen(cmd, "r");
    double want_py = -1;
    if (!p || fscanf(p, "%lf", &want_py) != 1) diag("could not run %s", cmd);
    if (p) pclose(p);
    is_close(bl.bleu, want_py, 1e-9, 1e-9, "corpus BLEU == an independent pure-Python implementation");
    diag("random corpus: BLEU %.4f (bp %.4f, p = %.1f %.1f %.1f %.1f)", bl.bleu, bl.bp, bl.precisions[0], bl.precisions[1],
         bl.precisions[2], bl.precisions[3]);
    unlink(path), unlink(py);
    int64_t neg = -1;
    ok(pare_bleu_corpus(&bl, hyp, &neg, W, ref, rl, W, 1) == PARE_EINVAL && strstr(pare_errmsg(), "sentence 0"),
       "a negative length names the sentence: %s", pare_errmsg());
}

int main(void)
{
    tap_plan_lazy();
    kernel_tests();
    model_tests();
    task_tests();
    bleu_tests();
    return tap_done();
}
