/* distill.c — training against another model's outputs: the extra loss terms of a pare_train_distill
 * run (train.h), the teacher run at inference on every batch, its captured values bound as targets.
 *
 * The terms are appended to the end of the trained model's graph for the run (a target input per term,
 * an optional learnt projection, a loss node) and cut off again at its end with pare_model_truncate:
 * the graph is straight-line and append-only, so no earlier node refers to them and the model comes
 * back exactly as it was, with its weights trained. Evaluation during the run sees the model without
 * them (distill_detach / distill_attach). The cross-entropy on the task's labels stays, weighted by
 * hard_weight (restored afterwards).
 *
 * Follows Hinton et al. (2015) and DistilBERT (Sanh et al., 2019): the soft-target term is
 * T²·KL(softmax(t/T) || softmax(s/T)) (kernels/loss.h; kl_div_reverse is the other direction, FastBERT's),
 * the hidden-state term 1 − cos; TinyBERT's (Jiao et al., 2020) MSE on hidden states through a learnt W_h
 * is `project = true`.
 *
 * TinyBERT's attention term is an MSE between "<node>#att" values (the probabilities of a dense
 * attention: the attention's backward takes their gradient, attn.h dprobs); BERT-PKD's is `pool = "cls"`
 * (each sequence's [CLS] row of both values: the student's through an appended POOL node, the teacher's
 * pooled here) with `cosine` (‖a/|a| − b/|b|‖² = 2(1 − cos), PKD's normalised MSE up to the factor 2).
 *
 * Deliberately not here: a teacher run once and cached over the data set (the teacher runs on every
 * batch, so dropout-free teachers of any format work and memory stays O(batch)), TinyBERT's
 * unnormalised attention scores (the probabilities are the value a dense attention keeps; MiniLM and
 * most reimplementations distil those), layer mappings by pattern (a script lists its pairs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/ops.h"
#include "kernels/nn.h"
#include "train_internal.h"

static const pare_opt_spec distill_opts[] = {
    {"hard_weight", PARE_OPT_FLOAT, "1", 0, 1e6, NULL,
     "weight of the model's own cross-entropy on the task's labels (Hinton's α; 0: the teacher's terms only)"},
};
const pare_schema pare_distill_schema = {
    "distill", "training against a teacher's outputs: m:train(task, opts, {teacher = t, hard_weight = 1, losses = {...}})",
    distill_opts, (int)(sizeof distill_opts / sizeof distill_opts[0])};

static const pare_opt_spec term_opts[] = {
    {"loss", PARE_OPT_ENUM, NULL, 0, 0, "kl_div|kl_div_reverse|mse|cosine|soft_cross_entropy",
     "kl_div: T²·KL(teacher ‖ student) of softened logits; kl_div_reverse: T²·KL(student ‖ teacher); mse; cosine: 1 − cos; "
     "soft_cross_entropy: against probabilities (teacher = \"loss#probs\")"},
    {"student", PARE_OPT_STRING, NULL, 0, 0, NULL, "a value of the trained model: a node's name (\"head\", \"enc.1.add2\")"},
    {"teacher", PARE_OPT_STRING, "", 0, 0, NULL, "the teacher's value captured as the target (\"\": the student's name)"},
    {"weight", PARE_OPT_FLOAT, "1", 0, 1e6, NULL, "the term's weight in the total loss"},
    {"temperature", PARE_OPT_FLOAT, "1", 1e-3, 1e3, NULL, "kl_div, kl_div_reverse: softmax temperature T (the term is scaled by T²)"},
    {"project", PARE_OPT_BOOL, "false", 0, 0, NULL,
     "learn a Linear from the student's width to the teacher's (TinyBERT's W_h), dropped after training"},
    {"pool", PARE_OPT_ENUM, "none", 0, 0, "none|cls|mean",
     "compare one row per sequence of two per-token values: its [CLS] (first) row (BERT-PKD) or the mean over its "
     "valid tokens; none: every row"},
};
const pare_schema pare_distill_loss_schema = {"distill_loss", "one loss term of a distillation: m:train(..., {losses = {{...}}})",
                                              term_opts, (int)(sizeof term_opts / sizeof term_opts[0])};

pare_status pare_distill_term_from_opts(pare_distill_term *t, const pare_options *o)
{
    memset(t, 0, sizeof *t);
    int op = pare_op_find_loss(pare_opt_str(o, "loss"));
    if (op < 0 || op == PARE_OP_XENT) /* the schema's choices are names of the op registry */
        return pare_fail(PARE_EINVAL, "distill: loss '%s' is not a loss op", pare_opt_str(o, "loss"));
    t->op = (pare_op_id)op;
    const char *s = pare_opt_str(o, "student"), *te = pare_opt_str(o, "teacher");
    if (strlen(s) >= sizeof t->student || strlen(te) >= sizeof t->teacher)
        return pare_fail(PARE_EINVAL, "distill: value names are at most %d characters", PARE_NAME_MAX - 1);
    snprintf(t->student, sizeof t->student, "%s", s);
    snprintf(t->teacher, sizeof t->teacher, "%s", te);
    t->weight = (float)pare_opt_num(o, "weight");
    t->temperature = (float)pare_opt_num(o, "temperature");
    t->project = pare_opt_bool(o, "project");
    const char *pool = pare_opt_str(o, "pool");
    t->pool = !strcmp(pool, "cls") ? 1 + PARE_POOL_CLS : !strcmp(pool, "mean") ? 1 + PARE_POOL_MEAN : 0;
    return PARE_OK;
}

static const char *teacher_name(const pare_distill_term *t) { return t->teacher[0] ? t->teacher : t->student; }

/* A Linear (in_cols -> out_cols, no bias) on value v, N(0, 0.02) weights: a learnt projection. */
static int add_projection(pare_model *m, int v, int64_t out_cols, int i, pare_rng *rng)
{
    char name[PARE_NAME_MAX], wname[PARE_NAME_MAX];
    snprintf(name, sizeof name, "distill.%d.proj", i);
    snprintf(wname, sizeof wname, "distill.%d.proj.weight", i);
    int64_t shape[2] = {out_cols, m->values[v].cols};
    int w = pare_model_add_param(m, wname, 2, shape, 1);
    if (w < 0) return -1;
    float *d = m->params[w].blob->data;
    for (int64_t k = 0; k < shape[0] * shape[1]; k++) d[k] = (float)(0.02 * pare_rng_normal(rng));
    return pare_model_add_node(m, PARE_OP_LINEAR, name, &v, 1, &w, 1, m->values[v].rows, out_cols, (pare_node_attrs){0});
}

static pare_status append_term(distill_run *r, pare_model *m, const pare_distill_term *t, int i, pare_rng *rng)
{
    const pare_model *tm = r->d->teacher;
    const char *tn = teacher_name(t);
    int sv = pare_model_find_value(m, t->student), tv = pare_model_find_value(tm, tn);
    if (sv < 0 || sv >= r->values0)
        return pare_fail(PARE_EINVAL, "distill: loss %d: the model has no value named '%s' (m:layers() lists the nodes)",
                         i + 1, t->student);
    if (tv < 0)
        return pare_fail(PARE_EINVAL, "distill: loss %d: the teacher has no value named '%s' (t:layers() lists the nodes)",
                         i + 1, tn);
    const pare_value *tval = &tm->values[tv];
    int64_t scols = m->values[sv].cols;
    pare_rows trows = tval->rows;
    if (t->pool) { /* one row per sequence: pool the student's value here, the teacher's in pare_distill_step */
        if (m->values[sv].rows != PARE_ROWS_TOKENS || tval->rows != PARE_ROWS_TOKENS || m->lengths < 0)
            return pare_fail(PARE_EINVAL, "distill: loss %d: pool = %s needs per-token values (a row per token) in both "
                             "models; %s or the teacher's %s is not one", i + 1, t->pool == 1 + PARE_POOL_CLS ? "cls" : "mean",
                             t->student, tn);
        char pname[PARE_NAME_MAX];
        snprintf(pname, sizeof pname, "distill.%d.pool", i);
        int pin[2] = {sv, m->lengths};
        sv = pare_model_add_node(m, PARE_OP_POOL, pname, pin, 2, NULL, 0, PARE_ROWS_SEQS, scols,
                                 (pare_node_attrs){.pool = (pare_pool_mode)(t->pool - 1)});
        if (sv < 0) return pare_fail_ctx(PARE_EINVAL, "distill: loss %d", i + 1);
        trows = PARE_ROWS_SEQS;
        if (!(r->pooled[i] = malloc(sizeof(float) * (size_t)(r->B * tval->cols))))
            return pare_fail(PARE_ENOMEM, "distill: out of memory");
    }
    if (scols != tval->cols && !t->project)
        return pare_fail(PARE_EINVAL, "distill: loss %d: the model's %s has %lld columns, the teacher's %s %lld: set "
                         "project = true to learn a projection", i + 1, t->student, (long long)scols, tn,
                         (long long)tval->cols);
    if (scols != tval->cols && (sv = add_projection(m, sv, tval->cols, i, rng)) < 0) return PARE_ENOMEM;
    char name[PARE_NAME_MAX];
    snprintf(name, sizeof name, "distill.%d.target", i);
    if ((r->target[i] = pare_model_add_target(m, name, trows, tval->cols)) < 0) return pare_fail_ctx(PARE_EINVAL, "distill");
    snprintf(name, sizeof name, "distill.%d.%s", i, pare_op_name(t->op));
    if (pare_model_add_loss(m, t->op, name, sv, r->target[i], t->weight, t->temperature) < 0)
        return pare_fail_ctx(PARE_EINVAL, "distill: loss %d (%s against the teacher's %s)", i + 1, t->student, tn);
    return PARE_OK;
}

pare_status pare_distill_begin(distill_run *r, pare_model *m, const pare_distill *d, int64_t B, int64_t T, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->d = d;
    r->B = B, r->T = T;
    r->nodes0 = m->nnodes, r->values0 = m->nvalues, r->params0 = m->nparams;
    r->xent = m->loss >= 0 ? m->values[m->loss].producer : -1;
    if (!d->teacher) return pare_fail(PARE_EINVAL, "distill: no teacher model");
    if (d->teacher == m)
        return pare_fail(PARE_EINVAL, "distill: the model cannot be its own teacher (its outputs change as it trains)");
    if (d->nterms < 1 || d->nterms > PARE_DISTILL_MAX_TERMS)
        return pare_fail(PARE_EINVAL, "distill: %d loss terms (give 1 to %d)", d->nterms, PARE_DISTILL_MAX_TERMS);
    if (!(d->hard_weight >= 0)) return pare_fail(PARE_EINVAL, "distill: hard_weight %g must be >= 0", (double)d->hard_weight);
    r->active = 1;
    if (r->xent >= 0) {
        r->xent_weight0 = m->nodes[r->xent].a.weight;
        m->nodes[r->xent].a.weight = d->hard_weight;
    }
    pare_rng rng;
    pare_rng_seed(&rng, seed ^ 0xd157111ULL);
    const char *keep[PARE_DISTILL_MAX_TERMS];
    pare_status st = PARE_OK;
    for (int i = 0; i < d->nterms && st == PARE_OK; i++) {
        st = append_term(r, m, &d->terms[i], i, &rng);
        keep[i] = teacher_name(&d->terms[i]);
    }
    if (st == PARE_OK) {
        st = pare_exec_new_keep(&r->tx, d->teacher, B, T, PARE_EXEC_INFER, keep, d->nterms);
        if (st != PARE_OK) st = pare_fail_ctx(st, "distill: the teacher");
    }
    if (st != PARE_OK) pare_distill_end(r, m);
    return st;
}

pare_status pare_distill_step(distill_run *r, pare_exec *x, const int32_t *tokens, const int32_t *lengths,
                              const int32_t *types, const int32_t *src_tokens, const int32_t *src_lengths)
{
    PARE_TRY(pare_exec_bind(r->tx, tokens, lengths, NULL)); /* its own labels are not needed */
    /* the teacher sees what the student sees: a pair's segments, a translation's source */
    if (types && r->tx->m->types >= 0) PARE_TRY(pare_exec_bind_types(r->tx, types));
    if (src_tokens && r->tx->m->src_tokens >= 0) PARE_TRY(pare_exec_bind_source(r->tx, src_tokens, src_lengths));
    pare_status st = pare_exec_forward(r->tx);
    if (st != PARE_OK) return pare_fail_ctx(st, "distill: the teacher's forward");
    for (int i = 0; i < r->d->nterms; i++) {
        const float *data;
        int64_t rows, cols;
        PARE_TRY(pare_exec_value(r->tx, teacher_name(&r->d->terms[i]), &data, &rows, &cols));
        if (r->d->terms[i].pool) { /* the teacher's rows pooled as the student's are (its POOL node) */
            pare_pool_forward(r->pooled[i], data, lengths, (pare_pool_mode)(r->d->terms[i].pool - 1), r->B, r->T, cols);
            data = r->pooled[i];
        }
        st = pare_exec_bind_target(x, r->target[i], data);
        if (st != PARE_OK) return pare_fail_ctx(st, "distill: the teacher's %s", teacher_name(&r->d->terms[i]));
    }
    return PARE_OK;
}

void pare_distill_detach(distill_run *r, pare_model *m)
{
    if (!r->active) return;
    r->nodes1 = m->nnodes, r->values1 = m->nvalues;
    m->nnodes = r->nodes0, m->nvalues = r->values0;
}

void pare_distill_attach(distill_run *r, pare_model *m)
{
    if (!r->active) return;
    m->nnodes = r->nodes1, m->nvalues = r->values1;
}

void pare_distill_end(distill_run *r, pare_model *m)
{
    if (!r->active) return;
    pare_exec_free(r->tx);
    r->tx = NULL;
    for (int i = 0; i < PARE_DISTILL_MAX_TERMS; i++) free(r->pooled[i]), r->pooled[i] = NULL;
    pare_model_truncate(m, r->nodes0, r->values0, r->params0);
    if (r->xent >= 0) m->nodes[r->xent].a.weight = r->xent_weight0;
    r->active = 0;
}
