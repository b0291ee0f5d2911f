/* fidelity.c — a model's logits against a reference model's (fidelity.h). Moved here from the Lua
 * binding, which now only converts the result. */
#include "eval/fidelity.h"

#include <math.h>
#include <string.h>

#include "core/arena.h"
#include "core/tensor.h"
#include "graph/exec.h"
#include "train/train.h"

static pare_status check_finite(const float *x, int64_t rows, int64_t V, const char *which)
{
    int64_t bad = pare_first_nonfinite(x, rows * V);
    if (bad < 0) return PARE_OK;
    return pare_fail(PARE_ENUMERIC, "fidelity: %s logits hold %s at row %lld, class %lld", which,
                     isnan(x[bad]) ? "NaN" : "Inf", (long long)(bad / V), (long long)(bad % V));
}

pare_status pare_fidelity_logits(pare_fidelity_result *out, const float *a, const float *b, int64_t rows, int64_t V)
{
    memset(out, 0, sizeof *out);
    if (rows < 0 || V < 1) return pare_fail(PARE_EINVAL, "fidelity: %lld rows of %lld classes", (long long)rows, (long long)V);
    PARE_TRY(check_finite(a, rows, V, "the model's"));
    PARE_TRY(check_finite(b, rows, V, "the reference's"));
    double dot = 0, na = 0, nb = 0, maxe = 0;
    int64_t agree = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = a + r * V, *y = b + r * V;
        int64_t ia = 0, ib = 0;
        for (int64_t v = 0; v < V; v++) {
            dot += (double)x[v] * y[v], na += (double)x[v] * x[v], nb += (double)y[v] * y[v];
            double e = fabs((double)x[v] - y[v]);
            if (e > maxe) maxe = e;
            if (x[v] > x[ia]) ia = v;
            if (y[v] > y[ib]) ib = v;
        }
        agree += ia == ib;
    }
    out->rows = rows;
    out->cosine = na > 0 && nb > 0 ? dot / sqrt(na * nb) : na == 0 && nb == 0 ? 1.0 : 0.0;
    out->max_abs_err = maxe;
    out->agreement = rows ? (double)agree / (double)rows : 1.0;
    return PARE_OK;
}

pare_status pare_fidelity(pare_fidelity_result *out, pare_model *m, pare_model *ref, const pare_dataset *d,
                          int64_t batch)
{
    memset(out, 0, sizeof *out);
    if (m->nclass != ref->nclass || m->lm != ref->lm)
        return pare_fail(PARE_ESHAPE, "fidelity: the models' outputs differ in shape (%lld %s vs %lld %s)",
                         (long long)m->nclass, m->lm ? "logits per token" : "classes", (long long)ref->nclass,
                         ref->lm ? "logits per token" : "classes");
    float *a = NULL, *b = NULL;
    int64_t ra = 0, rb = 0;
    pare_status st = pare_predict_logits(m, d, batch, &a, &ra);
    if (st != PARE_OK) st = pare_fail_ctx(st, "fidelity: the model");
    if (st == PARE_OK && (st = pare_predict_logits(ref, d, batch, &b, &rb)) != PARE_OK)
        st = pare_fail_ctx(st, "fidelity: the reference");
    if (st == PARE_OK && ra != rb) st = pare_fail(PARE_ESHAPE, "fidelity: the models' outputs differ in shape");
    if (st == PARE_OK) st = pare_fidelity_logits(out, a, b, ra, m->nclass);
    pare_free(a);
    pare_free(b);
    return st;
}
