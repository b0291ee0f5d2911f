/* fastbert.c — FastBERT's student exits, their self-distillation and early-exit inference (fastbert.h;
 * Liu et al. 2020; docs/distillation-fastbert.md).
 *
 * The exits are ordinary nodes inserted into a clone of the model right after each encoder layer's last
 * node (graph/rewrite.h), so they save, load, capture and train like any other part of a graph. The
 * self-distillation is pare_train on the model with one KL node per exit appended for the run, between the
 * exit's logits and the final classifier's of the same forward (KLDIV_REV, the paper's direction, by
 * default); the frozen backbone costs its forward only (the executor's backward skips what reaches no
 * trainable parameter). Early
 * exit runs one inference executor over the node list in segments (pare_exec_forward_nodes): up to an
 * exit's logits, the exit decision, then the examples still running are compacted to the front of the
 * executor's buffers (pare_exec_keep_examples) and the batch is smaller from there on.
 *
 * Deliberately not here: students with self-attention (FastBERT's own), training the backbone, exits for
 * per-token heads. Entry points: pare_fastbert_add_exits, pare_fastbert_exits, pare_fastbert_distill,
 * pare_fastbert_run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/rng.h"
#include "core/timer.h"
#include "graph/exec.h"
#include "graph/ops.h"
#include "graph/rewrite.h"

#include "fastbert.h"

#define FB_MAX_LAYERS 17 /* encoder layers: the exits are listed in arrays of this size */

static const pare_opt_spec exits_opts[] = {
    {"hidden", PARE_OPT_INT, "64", 0, 65536, NULL,
     "width of each student's tanh layer between the pooled vector and its classifier (0: pooled -> classifier directly)"},
    {"seed", PARE_OPT_INT, "1", 0, 9.007199254740991e15, NULL, "initialisation of the students' weights (normal, std 0.02)"},
};
const pare_schema pare_fastbert_exits_schema = {
    "fastbert_exits", "FastBERT: a student classifier after every encoder layer (m:add_exits{...}); docs/distillation-fastbert.md",
    exits_opts, (int)(sizeof exits_opts / sizeof exits_opts[0])};

/* Indexed by pare_fastbert_kl: the choice's name (the schema's order) and its loss op. */
static const struct { const char *name; pare_op_id op; } kl_kinds[] = {
    [PARE_FASTBERT_KL_STUDENT_TEACHER] = {"student_teacher", PARE_OP_KLDIV_REV},
    [PARE_FASTBERT_KL_TEACHER_STUDENT] = {"teacher_student", PARE_OP_KLDIV},
};
_Static_assert(sizeof kl_kinds / sizeof kl_kinds[0] == PARE_FASTBERT_KL_COUNT, "kl_kinds out of date with pare_fastbert_kl");

static const pare_opt_spec distill_opts[] = {
    {"temperature", PARE_OPT_FLOAT, "1", 1e-3, 1e3, NULL, "softmax temperature T of teacher and students (each term is scaled by T²)"},
    {"kl", PARE_OPT_ENUM, "student_teacher", 0, 0, "student_teacher|teacher_student",
     "student_teacher: KL(p_s ‖ p_t), FastBERT's D_KL(p_s, p_t); teacher_student: KL(p_t ‖ p_s), Hinton's soft targets"},
};
const pare_schema pare_fastbert_distill_schema = {
    "fastbert_distill", "FastBERT's self-distillation of the exits: m:train_exits(task, train_opts, {...}); docs/distillation-fastbert.md",
    distill_opts, (int)(sizeof distill_opts / sizeof distill_opts[0])};

pare_fastbert_distill_opts pare_fastbert_distill_opts_of(const pare_options *o)
{
    pare_fastbert_distill_opts fo = {(float)pare_opt_num(o, "temperature"), PARE_FASTBERT_KL_STUDENT_TEACHER};
    const char *kl = pare_opt_str(o, "kl");
    for (int k = 0; k < PARE_FASTBERT_KL_COUNT; k++)
        if (!strcmp(kl_kinds[k].name, kl)) fo.kl = (pare_fastbert_kl)k;
    return fo;
}

/* the encoder layer of node name "enc.<l>.…", or -1 */
static long enc_layer(const char *name)
{
    if (strncmp(name, "enc.", 4) != 0) return -1;
    char *end;
    long l = strtol(name + 4, &end, 10);
    return end != name + 4 && *end == '.' ? l : -1;
}

/* The last node of each encoder block in node order: last[0..*L) */
static pare_status layer_ends(const pare_model *m, int64_t *last, int max, int64_t *L)
{
    long cur = -1;
    *L = 0;
    for (int64_t i = 0; i < m->nnodes; i++) {
        long l = enc_layer(m->nodes[i].name);
        if (l < 0) continue;
        if (l != cur) {
            if (*L == max)
                return pare_fail(PARE_EINVAL, "fastbert: at most %d encoder layers", max);
            cur = l, (*L)++;
        }
        last[*L - 1] = i;
    }
    return PARE_OK;
}

/* The model must classify whole sequences: refuse the others, naming why. */
static pare_status check_classifier(const pare_model *m, const char *fn)
{
    if (m->lm || strcmp(m->kind, "encoder") != 0)
        return pare_fail(PARE_EINVAL, "%s: the model (kind %s) has %s; FastBERT's exits classify a whole sequence "
                         "(kind encoder with a classification head)", fn, m->kind,
                         !strcmp(m->kind, "decoder") ? "a causal LM head (logits per token)" : "no sequence classification head");
    if (pare_model_regression_target(m) >= 0 || m->nclass < 2)
        return pare_fail(PARE_EINVAL, "%s: the model has a regression head (one output); FastBERT's exits need a "
                         "classification head of at least 2 classes (its entropy decides the exit)", fn);
    int pool = pare_model_find_node(m, "pool");
    if (pool < 0 || m->nodes[pool].op != PARE_OP_POOL)
        return pare_fail(PARE_EINVAL, "%s: the model has no pooling node \"pool\" before its classification head", fn);
    return PARE_OK;
}

pare_status pare_fastbert_exits(const pare_model *m, int64_t *node, int max, int *n, int64_t *L)
{
    int64_t last[FB_MAX_LAYERS + 1], nl = 0;
    *n = 0;
    PARE_TRY(layer_ends(m, last, FB_MAX_LAYERS + 1, &nl));
    if (L) *L = nl;
    for (int64_t i = 0; i < m->nnodes; i++) {
        const char *nm = m->nodes[i].name;
        size_t len = strlen(nm);
        if (strncmp(nm, "exit.", 5) != 0 || len < 5 || strcmp(nm + len - 5, ".head") != 0) continue;
        if (*n == max) return pare_fail(PARE_EINVAL, "fastbert: more than %d exits", max);
        node[(*n)++] = i;
    }
    return PARE_OK;
}

static int add_param(pare_model *m, pare_rng *rng, const char *node, const char *suffix, int ndim, int64_t d0,
                     int64_t d1, double std, float fill)
{
    char name[PARE_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s.%s", node, suffix);
    int64_t shape[2] = {d0, d1};
    int id = pare_model_add_param(m, name, ndim, shape, 1);
    if (id < 0) return -1;
    pare_param *p = &m->params[id];
    for (int64_t i = 0; i < pare_param_numel(p); i++) p->blob->data[i] = std > 0 ? (float)(std * pare_rng_normal(rng)) : fill;
    return id;
}

/* insert a Linear (K -> N) before node *at, advancing *at; returns its output value */
static int insert_linear(pare_model *m, pare_rng *rng, int64_t *at, const char *name, int x, int64_t K, int64_t N)
{
    int w = add_param(m, rng, name, "weight", 2, N, K, 0.02, 0), b = add_param(m, rng, name, "bias", 1, N, 1, 0, 0);
    if (w < 0 || b < 0) return -1;
    int prm[2] = {w, b};
    int y = pare_model_insert_node(m, (*at)++, PARE_OP_LINEAR, name, &x, 1, prm, 2, PARE_ROWS_SEQS, N, (pare_node_attrs){0});
    return y;
}

pare_status pare_fastbert_add_exits(pare_model **out, const pare_model *m, const pare_options *o)
{
    *out = NULL;
    PARE_TRY(check_classifier(m, "add_exits"));
    int64_t last[FB_MAX_LAYERS], L = 0, ex[FB_MAX_LAYERS];
    int nex = 0;
    PARE_TRY(pare_fastbert_exits(m, ex, FB_MAX_LAYERS, &nex, &L));
    if (nex) return pare_fail(PARE_EINVAL, "add_exits: the model has exits already (%s)", m->nodes[ex[0]].name);
    PARE_TRY(layer_ends(m, last, FB_MAX_LAYERS, &L));
    if (L < 2) return pare_fail(PARE_EINVAL, "add_exits: the model has %lld encoder layer(s); exits need at least 2", (long long)L);
    int64_t hidden = pare_opt_int(o, "hidden"), C = m->C, K = m->nclass;
    int pool = pare_model_find_node(m, "pool"), lnf = pare_model_find_node(m, "ln_f");
    pare_pool_mode pm = m->nodes[pool].a.pool;
    float eps = lnf >= 0 ? m->nodes[lnf].a.eps : 0;
    pare_rng rng;
    pare_rng_seed(&rng, (uint64_t)pare_opt_num(o, "seed"));
    pare_model *c = pare_model_clone(m);
    if (!c) return pare_fail(PARE_ENOMEM, "add_exits: out of memory cloning the model");
    /* from the first layer up, so the students' parameters are drawn in layer order; each insertion moves
     * the later layers' ends down by the nodes inserted */
    int64_t shift = 0;
    for (int64_t l = 0; l + 1 < L; l++) {
        char nm[PARE_NAME_MAX], base[32]; /* "exit.<l>": short, so every suffix fits */
        int64_t at = last[l] + shift + 1, at0 = at;
        snprintf(base, sizeof base, "exit.%lld", (long long)l);
        int x = c->nodes[at - 1].out;
        if (lnf >= 0) { /* pre-LayerNorm: the residual stream is normalised before a head reads it */
            snprintf(nm, sizeof nm, "%s.ln", base);
            int w = add_param(c, &rng, nm, "weight", 1, C, 1, 0, 1.0f), b = add_param(c, &rng, nm, "bias", 1, C, 1, 0, 0);
            int prm[2] = {w, b};
            x = w < 0 || b < 0 ? -1
                               : pare_model_insert_node(c, at++, PARE_OP_LAYERNORM, nm, &x, 1, prm, 2, PARE_ROWS_TOKENS, C,
                                                        (pare_node_attrs){.eps = eps});
        }
        if (x >= 0) {
            int pin[2] = {x, c->lengths};
            snprintf(nm, sizeof nm, "%s.pool", base);
            x = pare_model_insert_node(c, at++, PARE_OP_POOL, nm, pin, 2, NULL, 0, PARE_ROWS_SEQS, C, (pare_node_attrs){.pool = pm});
        }
        int64_t width = C;
        if (x >= 0 && hidden > 0) {
            snprintf(nm, sizeof nm, "%s.dense", base);
            x = insert_linear(c, &rng, &at, nm, x, C, hidden);
            snprintf(nm, sizeof nm, "%s.act", base);
            if (x >= 0)
                x = pare_model_insert_node(c, at++, PARE_OP_TANH, nm, &x, 1, NULL, 0, PARE_ROWS_SEQS, hidden, (pare_node_attrs){0});
            width = hidden;
        }
        snprintf(nm, sizeof nm, "%s.head", base);
        if (x >= 0) x = insert_linear(c, &rng, &at, nm, x, width, K);
        if (x < 0) {
            pare_model_free(c);
            return pare_fail_ctx(PARE_EINVAL, "add_exits: exit after layer %lld", (long long)l);
        }
        shift += at - at0;
    }
    pare_status st = pare_model_check(c);
    if (st != PARE_OK) {
        pare_model_free(c);
        return pare_fail_ctx(st, "add_exits");
    }
    size_t used = strlen(c->applied);
    snprintf(c->applied + used, sizeof c->applied - used, "%sfastbert_exits(hidden=%lld)", used ? "+" : "", (long long)hidden);
    *out = c;
    return PARE_OK;
}

pare_status pare_fastbert_distill(pare_model *m, const pare_dataset *d, const pare_options *o,
                                  const pare_fastbert_distill_opts *fo, pare_progress_fn progress, void *ud,
                                  pare_train_result *out)
{
    pare_fastbert_distill_opts dflt = {1.0f, PARE_FASTBERT_KL_STUDENT_TEACHER};
    if (!fo) fo = &dflt;
    PARE_TRY(pare_train_refuse_parallel(o, "train_exits"));
    float temperature = fo->temperature;
    int64_t ex[FB_MAX_LAYERS];
    int nex = 0;
    PARE_TRY(check_classifier(m, "train_exits"));
    PARE_TRY(pare_fastbert_exits(m, ex, FB_MAX_LAYERS, &nex, NULL));
    if (!nex) return pare_fail(PARE_EINVAL, "train_exits: the model has no exits (add them with m:add_exits{...})");
    if (!(temperature > 0) || !isfinite(temperature))
        return pare_fail(PARE_EINVAL, "train_exits: temperature = %g must be > 0", (double)temperature);
    if ((unsigned)fo->kl >= PARE_FASTBERT_KL_COUNT)
        return pare_fail(PARE_EINVAL, "train_exits: kl = %d is not a direction (student_teacher, teacher_student)", (int)fo->kl);
    unsigned char *was = malloc((size_t)m->nparams + 1);
    float *p = malloc(sizeof *p * ((size_t)m->nnodes + 1));
    if (!was || !p) {
        free(was), free(p);
        return pare_fail(PARE_ENOMEM, "train_exits: out of memory");
    }
    /* freeze everything but the students; the frozen backbone runs without dropout, as at inference */
    for (int64_t i = 0; i < m->nparams; i++) {
        was[i] = (unsigned char)m->params[i].trainable;
        if (strncmp(m->params[i].name, "exit.", 5) != 0) m->params[i].trainable = 0;
    }
    for (int64_t i = 0; i < m->nnodes; i++) {
        p[i] = m->nodes[i].a.p;
        if (m->nodes[i].op == PARE_OP_DROPOUT) m->nodes[i].a.p = 0;
    }
    /* The teacher is the final classifier of the same forward: one KL node per exit between its logits and
     * the model's, appended for the run and cut off after it (as pare_train_distill's terms are), the labels'
     * cross-entropy at weight 0. No gradient reaches the teacher's logits: nothing upstream of them trains,
     * so backward skips them (exec.h), and a step is one forward of the backbone and the students'
     * backward. */
    int64_t nn = m->nnodes, nv = m->nvalues, np = m->nparams;
    int xent = m->loss >= 0 ? m->values[m->loss].producer : -1;
    float xent_w = xent >= 0 ? m->nodes[xent].a.weight : 0;
    pare_status st = PARE_OK;
    for (int e = 0; e < nex && st == PARE_OK; e++) {
        char name[PARE_NAME_MAX];
        snprintf(name, sizeof name, "fastbert.%d.%s", e, pare_op_name(kl_kinds[fo->kl].op));
        if (pare_model_add_loss(m, kl_kinds[fo->kl].op, name, m->nodes[ex[e]].out, m->logits, 1.0f, temperature) < 0)
            st = pare_fail_ctx(PARE_EINVAL, "train_exits: %s against the final classifier", m->nodes[ex[e]].name);
    }
    if (xent >= 0) m->nodes[xent].a.weight = 0; /* the labels are not used */
    if (st == PARE_OK) st = pare_train(m, d, NULL, o, progress, ud, out);
    pare_model_truncate(m, nn, nv, np);
    if (xent >= 0) m->nodes[xent].a.weight = xent_w;
    for (int64_t i = 0; i < m->nparams; i++) m->params[i].trainable = was[i];
    for (int64_t i = 0; i < m->nnodes; i++) m->nodes[i].a.p = p[i];
    free(was), free(p);
    return st;
}

double pare_fastbert_entropy(const float *z, int64_t C)
{
    double mx = z[0], s = 0, sz = 0;
    for (int64_t c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
    for (int64_t c = 0; c < C; c++) {
        double e = exp((double)z[c] - mx);
        s += e, sz += e * ((double)z[c] - mx);
    }
    double h = (log(s) - sz / s) / log((double)C); /* H = log Σe^{z−max} − Σ p (z − max) */
    return h < 0 ? 0 : h > 1 ? 1 : h;
}

void pare_fastbert_result_free(pare_fastbert_result *r)
{
    if (!r) return;
    free(r->pred), free(r->layer), free(r->entropy), free(r->logits);
    r->pred = r->layer = NULL, r->entropy = r->logits = NULL;
}

static void record(pare_fastbert_result *r, int64_t i, const float *z, int32_t layer, double h)
{
    int32_t best = 0;
    for (int64_t c = 1; c < r->nclass; c++)
        if (z[c] > z[best]) best = (int32_t)c;
    r->pred[i] = best, r->layer[i] = layer, r->entropy[i] = (float)h;
    memcpy(r->logits + i * r->nclass, z, sizeof(float) * (size_t)r->nclass);
}

pare_status pare_fastbert_run(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch, double speed,
                              pare_fastbert_result *r)
{
    memset(r, 0, sizeof *r);
    if (!(speed >= 0 && speed <= 1))
        return pare_fail(PARE_EINVAL, "early_exit: speed = %g is outside [0, 1] (0: every example runs every layer; "
                         "1: every example leaves at the first exit)", speed);
    PARE_TRY(check_classifier(m, "early_exit"));
    if (d->kind != PARE_TASK_CLASSIFY || d->nclass != m->nclass)
        return pare_fail(PARE_EINVAL, "early_exit: %s is not a classification task of the model's %lld classes", d->name,
                         (long long)m->nclass);
    if (first < 0 || n < 1 || first + n > d->n)
        return pare_fail(PARE_EINVAL, "early_exit: examples [%lld, %lld) are outside %s (%lld examples)", (long long)first,
                         (long long)(first + n), d->name, (long long)d->n);
    if (batch < 1) return pare_fail(PARE_EINVAL, "early_exit: batch = %lld must be >= 1", (long long)batch);
    int64_t ex[FB_MAX_LAYERS], L = 0;
    int nex = 0;
    PARE_TRY(pare_fastbert_exits(m, ex, FB_MAX_LAYERS, &nex, &L));
    int64_t B = batch < n ? batch : n, K = m->nclass, T = d->T;
    const char *keep[FB_MAX_LAYERS];
    for (int e = 0; e < nex; e++) keep[e] = m->nodes[ex[e]].name;
    r->n = n, r->nclass = K, r->L = L;
    r->pred = malloc(sizeof *r->pred * (size_t)n), r->layer = malloc(sizeof *r->layer * (size_t)n);
    r->entropy = malloc(sizeof *r->entropy * (size_t)n), r->logits = malloc(sizeof *r->logits * (size_t)(n * K));
    int64_t *idx = malloc(sizeof *idx * (size_t)B), *kept = malloc(sizeof *kept * (size_t)B);
    pare_exec *x = NULL;
    pare_status st = PARE_OK;
    if (!r->pred || !r->layer || !r->entropy || !r->logits || !idx || !kept) {
        st = pare_fail(PARE_ENOMEM, "early_exit: out of memory");
        goto done;
    }
    st = pare_exec_new_keep(&x, m, B, T, PARE_EXEC_INFER, keep, nex);
    if (st != PARE_OK) goto done;
    int64_t t0 = pare_now_ns();
    for (int64_t b0 = 0; b0 < n && st == PARE_OK; b0 += B) {
        int64_t nb = n - b0 < B ? n - b0 : B, cnt = nb, pos = 0, e0 = first + b0;
        x->B = nb; /* the last batch may be smaller than the executor's */
        st = pare_exec_bind(x, d->tokens + e0 * T, d->lengths + e0, d->labels + e0);
        if (st == PARE_OK && d->types && m->types >= 0) st = pare_exec_bind_types(x, d->types + e0 * T);
        for (int64_t k = 0; k < nb; k++) idx[k] = b0 + k;
        for (int e = 0; e < nex && st == PARE_OK && cnt > 0; e++) {
            st = pare_exec_forward_nodes(x, pos, ex[e] + 1);
            if (st != PARE_OK) break;
            pos = ex[e] + 1;
            const float *z = x->buf[m->nodes[ex[e]].out];
            int64_t nk = 0;
            for (int64_t k = 0; k < cnt; k++) {
                double h = pare_fastbert_entropy(z + k * K, K);
                if (speed > 0 && h <= speed) record(r, idx[k], z + k * K, e + 1, h);
                else kept[nk] = k, idx[nk] = idx[k], nk++;
            }
            if (nk && nk < cnt) st = pare_exec_keep_examples(x, pos, kept, nk);
            cnt = nk;
        }
        if (st == PARE_OK && cnt > 0) {
            st = pare_exec_forward_nodes(x, pos, m->nnodes);
            const float *z = pare_exec_logits(x);
            for (int64_t k = 0; st == PARE_OK && k < cnt; k++)
                record(r, idx[k], z + k * K, (int32_t)L, pare_fastbert_entropy(z + k * K, K));
        }
    }
    r->seconds = (double)(pare_now_ns() - t0) * 1e-9;
    if (st == PARE_OK) {
        int64_t right = 0, layers = 0;
        for (int64_t i = 0; i < n; i++) right += r->pred[i] == d->labels[first + i], layers += r->layer[i];
        r->accuracy = (double)right / (double)n, r->mean_layer = (double)layers / (double)n;
    }
done:
    if (x) x->B = B;
    pare_exec_free(x);
    free(idx), free(kept);
    if (st != PARE_OK) pare_fastbert_result_free(r);
    return st;
}
