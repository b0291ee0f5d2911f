/* calib.c — observers at Linear inputs and the static range choices (see calib.h). */
#include "calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "graph/exec.h"

typedef struct observer {
    pare_calib *c;
    const pare_model *m;
    int pass; /* 0: min/max/columns/Hessian, 1: histogram */
    unsigned what;
    float *rowbuf; /* gathered valid rows, for the Hessian */
    int64_t rowbuf_cap;
} observer;

static pare_calib_stats *find_mut(pare_calib *c, int64_t node)
{
    for (int64_t i = 0; i < c->n; i++)
        if (c->s[i].node == node) return &c->s[i];
    return NULL;
}

const pare_calib_stats *pare_calib_find(const pare_calib *c, int64_t node) { return find_mut((pare_calib *)c, node); }

int pare_calib_row_valid(const pare_exec *x, const pare_value *v, int64_t r)
{
    if (v->rows != PARE_ROWS_TOKENS) return 1;
    const int32_t *len = x->buf[x->m->lengths];
    const int64_t Tk = pare_exec_seq_len(x, v), l = len[r / Tk];
    return r % Tk < (l < Tk ? l : Tk);
}

static pare_status observe(void *user, const pare_exec *x, int64_t node)
{
    observer *o = user;
    pare_calib_stats *s = find_mut(o->c, node);
    if (!s) return PARE_OK;
    const pare_node *n = &x->m->nodes[node];
    const pare_value *v = &x->m->values[n->in[0]];
    const float *in = x->buf[n->in[0]];
    int64_t rows = pare_exec_rows(x, v), K = v->cols;
    if (o->pass == 0) {
        int64_t kept = 0;
        for (int64_t r = 0; r < rows; r++) {
            if (!pare_calib_row_valid(x, v, r)) continue;
            const float *row = in + r * K;
            for (int64_t j = 0; j < K; j++) {
                float a = row[j];
                if (!isfinite(a))
                    return pare_fail(PARE_ENUMERIC, "calibration: the input of %s holds %g (row %lld, feature %lld)",
                                     n->name, (double)a, (long long)r, (long long)j);
                if (a < s->min) s->min = a;
                if (a > s->max) s->max = a;
                if (fabsf(a) > s->col_absmax[j]) s->col_absmax[j] = fabsf(a);
            }
            if (o->what & PARE_CALIB_HESSIAN) memcpy(o->rowbuf + kept * K, row, sizeof(float) * (size_t)K);
            kept++;
        }
        s->rows += kept;
        if ((o->what & PARE_CALIB_HESSIAN) && kept) PARE_TRY(pare_gptq_hessian_add(&s->H, o->rowbuf, kept));
        return PARE_OK;
    }
    float a = fmaxf(-s->min, s->max);
    if (!(a > 0)) return PARE_OK;
    double inv = PARE_CALIB_BINS / (2.0 * a);
    for (int64_t r = 0; r < rows; r++) {
        if (!pare_calib_row_valid(x, v, r)) continue;
        const float *row = in + r * K;
        for (int64_t j = 0; j < K; j++) {
            int64_t b = (int64_t)((row[j] + a) * inv);
            s->hist[b < 0 ? 0 : b >= PARE_CALIB_BINS ? PARE_CALIB_BINS - 1 : b]++;
        }
    }
    return PARE_OK;
}

void pare_calib_free(pare_calib *c)
{
    for (int64_t i = 0; c->s && i < c->n; i++) {
        free(c->s[i].col_absmax);
        free(c->s[i].hist);
        pare_gptq_hessian_free(&c->s[i].H);
    }
    free(c->s);
    c->s = NULL;
    c->n = 0;
}

pare_status pare_calib_run(pare_model *m, const pare_dataset *d, int64_t samples, int64_t batch,
                           pare_status (*fn)(void *user, const pare_exec *x, int64_t node), void *user)
{
    pare_status st = PARE_OK;
    int32_t *tok = malloc(sizeof *tok * (size_t)(batch * d->T)), *len = malloc(sizeof *len * (size_t)batch);
    int32_t *lab = malloc(sizeof *lab * (size_t)(batch * d->T));
    int64_t *idx = malloc(sizeof *idx * (size_t)batch);
    if (!tok || !len || !lab || !idx) st = pare_fail(PARE_ENOMEM, "out of memory (calibration batch)");
    for (int64_t first = 0; st == PARE_OK && first < samples; first += batch) {
        int64_t B = samples - first < batch ? samples - first : batch;
        pare_exec *x = NULL;
        if ((st = pare_exec_new(&x, m, B, d->T, PARE_EXEC_INFER)) != PARE_OK) break;
        for (int64_t i = 0; i < B; i++) idx[i] = first + i;
        pare_dataset_gather(d, idx, B, tok, len, lab);
        x->observe = fn, x->observe_user = user;
        if ((st = pare_exec_bind(x, tok, len, NULL)) == PARE_OK) st = pare_exec_forward(x); /* labels play no part */
        pare_exec_free(x);
    }
    free(tok), free(len), free(lab), free(idx);
    return st;
}

pare_status pare_calibrate(pare_calib *c, pare_model *m, const pare_dataset *d, int64_t samples, int64_t batch,
                           const int64_t *nodes, int64_t n, unsigned what)
{
    memset(c, 0, sizeof *c);
    if (!d || d->n < 1) return pare_fail(PARE_EINVAL, "calibration needs examples: the calibration set is empty (give calib=<task>)");
    if (samples < 1) return pare_fail(PARE_EINVAL, "calib_samples=%lld: must be >= 1", (long long)samples);
    if (samples > d->n)
        return pare_fail(PARE_EINVAL, "calib_samples=%lld but the calibration set %s has only %lld examples", (long long)samples,
                         d->name, (long long)d->n);
    if (batch < 1) batch = 1;
    if (d->vocab > m->vocab)
        return pare_fail(PARE_ESHAPE, "calibration set %s has vocab %d but the model has %lld", d->name, d->vocab,
                         (long long)m->vocab);
    c->s = calloc((size_t)(n ? n : 1), sizeof *c->s);
    if (!c->s) return pare_fail(PARE_ENOMEM, "out of memory (calibration)");
    c->n = n;
    pare_status st = PARE_OK;
    int64_t maxK = 0;
    for (int64_t i = 0; i < n && st == PARE_OK; i++) {
        const pare_node *nd = &m->nodes[nodes[i]];
        if (nd->op != PARE_OP_LINEAR) {
            st = pare_fail(PARE_EINVAL, "calibration: %s is not a Linear layer", nd->name);
            break;
        }
        pare_calib_stats *s = &c->s[i];
        s->node = nodes[i];
        s->K = m->values[nd->in[0]].cols;
        s->min = INFINITY, s->max = -INFINITY;
        s->col_absmax = calloc((size_t)s->K, sizeof *s->col_absmax);
        if (what & PARE_CALIB_HIST) s->hist = calloc(PARE_CALIB_BINS, sizeof *s->hist);
        if (!s->col_absmax || ((what & PARE_CALIB_HIST) && !s->hist)) st = pare_fail(PARE_ENOMEM, "out of memory (calibration)");
        else if (what & PARE_CALIB_HESSIAN) st = pare_gptq_hessian_init(&s->H, s->K);
        if (s->K > maxK) maxK = s->K;
    }
    observer o = {c, m, 0, what, NULL, 0};
    if (st == PARE_OK && (what & PARE_CALIB_HESSIAN)) {
        o.rowbuf = malloc(sizeof(float) * (size_t)(batch * d->T * maxK));
        if (!o.rowbuf) st = pare_fail(PARE_ENOMEM, "out of memory (calibration rows)");
    }
    if (st == PARE_OK) st = pare_calib_run(m, d, samples, batch, observe, &o);
    free(o.rowbuf);
    for (int64_t i = 0; st == PARE_OK && i < n; i++)
        if (c->s[i].rows == 0) st = pare_fail(PARE_EINVAL, "calibration: %s saw no valid rows", m->nodes[nodes[i]].name);
    if (st == PARE_OK && (what & PARE_CALIB_HIST)) {
        o.pass = 1;
        st = pare_calib_run(m, d, samples, batch, observe, &o);
    }
    if (st != PARE_OK) pare_calib_free(c);
    return st;
}

static const char *const method_names[PARE_CALIB_M_COUNT] = {"minmax", "percentile", "kl", "mse"};
const char *pare_calib_method_name(pare_calib_method m) { return m < PARE_CALIB_M_COUNT ? method_names[m] : "?"; }
pare_status pare_calib_method_parse(const char *s, pare_calib_method *m)
{
    for (int i = 0; i < PARE_CALIB_M_COUNT; i++)
        if (!strcmp(s, method_names[i])) return *m = (pare_calib_method)i, PARE_OK;
    return pare_fail(PARE_EINVAL, "method='%s' is not a calibration method (valid: minmax|percentile|kl|mse)", s);
}

/* ---- range choices on the histogram ---- */

/* Expected squared error per element of a `bits` grid over [lo, hi] on the histogram (bin centres;
 * inside the range the rounding error is taken as step²/12, outside it is the clipping distance). */
static double hist_mse(const pare_calib_stats *s, float lo, float hi, int bits)
{
    float a = fmaxf(-s->min, s->max);
    double w = 2.0 * a / PARE_CALIB_BINS, step = (hi - lo) / (double)((1 << bits) - 1), err = 0, tot = 0;
    for (int b = 0; b < PARE_CALIB_BINS; b++) {
        if (!s->hist[b]) continue;
        double v = -a + (b + 0.5) * w, e;
        if (v < lo) e = (lo - v) * (lo - v);
        else if (v > hi) e = (v - hi) * (v - hi);
        else e = step * step / 12.0;
        err += e * (double)s->hist[b];
        tot += (double)s->hist[b];
    }
    return tot > 0 ? err / tot : 0;
}

/* |x| histogram folded from the signed one: bin j covers [j w, (j+1) w), w = a / (BINS/2). */
static void fold_abs(double *out, const pare_calib_stats *s)
{
    int h = PARE_CALIB_BINS / 2;
    for (int j = 0; j < h; j++) out[j] = (double)s->hist[h + j] + (double)s->hist[h - 1 - j];
}

static double quantile_signed(const pare_calib_stats *s, double q)
{
    float a = fmaxf(-s->min, s->max);
    double tot = 0, acc = 0, w = 2.0 * a / PARE_CALIB_BINS;
    for (int b = 0; b < PARE_CALIB_BINS; b++) tot += (double)s->hist[b];
    for (int b = 0; b < PARE_CALIB_BINS; b++) {
        acc += (double)s->hist[b];
        if (acc >= q * tot) return -a + (b + 1) * w;
    }
    return a;
}

/* TensorRT-style entropy calibration on the |x| histogram: for each candidate threshold bin i, P is the
 * histogram cut at i with everything beyond added to its last bin, Q is the first i bins merged into
 * nq levels and spread back evenly over their non-empty bins; the threshold minimising KL(P‖Q) wins. */
static double kl_threshold(const pare_calib_stats *s, int bits)
{
    int h = PARE_CALIB_BINS / 2, nq = 1 << (bits - 1);
    float a = fmaxf(-s->min, s->max);
    double *H = malloc(sizeof *H * (size_t)h), *P = malloc(sizeof *P * (size_t)h), *Q = malloc(sizeof *Q * (size_t)h);
    if (!H || !P || !Q) {
        free(H), free(P), free(Q);
        return a;
    }
    fold_abs(H, s);
    double best = INFINITY;
    int best_i = h;
    double tail = 0;
    for (int j = nq; j < h; j++) tail += H[j];
    for (int i = nq; i <= h; i++) {
        if (i > nq) tail -= H[i - 1];
        double ptot = 0;
        for (int j = 0; j < i; j++) P[j] = H[j], ptot += H[j];
        P[i - 1] += tail, ptot += tail;
        if (ptot <= 0) continue;
        for (int q = 0; q < nq; q++) {
            int lo = (int)((int64_t)q * i / nq), hi = (int)((int64_t)(q + 1) * i / nq);
            double sum = 0;
            int nz = 0;
            for (int j = lo; j < hi; j++) sum += H[j], nz += H[j] > 0;
            for (int j = lo; j < hi; j++) Q[j] = H[j] > 0 && nz ? sum / nz : 0;
        }
        double qtot = 0;
        for (int j = 0; j < i; j++) qtot += Q[j];
        double kl = 0;
        for (int j = 0; j < i; j++) {
            if (P[j] <= 0) continue;
            double p = P[j] / ptot, qq = qtot > 0 ? Q[j] / qtot : 0;
            kl += p * log(p / (qq > 0 ? qq : 1e-12));
        }
        if (kl < best) best = kl, best_i = i;
    }
    free(H), free(P), free(Q);
    return (double)best_i * a / h;
}

pare_status pare_calib_range(float *lo, float *hi, const pare_calib_stats *s, pare_calib_method method,
                             double percentile, int bits, int symmetric, double *mse_out)
{
    if (bits < 2 || bits > 16) return pare_fail(PARE_EINVAL, "bits=%d: must be in 2..16", bits);
    if (method != PARE_CALIB_M_MINMAX && !s->hist)
        return pare_fail(PARE_EINVAL, "calibration method %s needs the histogram pass", pare_calib_method_name(method));
    if (method == PARE_CALIB_M_PERCENTILE && !(percentile > 50 && percentile <= 100))
        return pare_fail(PARE_EINVAL, "percentile=%g: must be in (50, 100]", percentile);
    float a = fmaxf(-s->min, s->max);
    double l = symmetric ? -a : s->min, h = symmetric ? a : s->max;
    switch (method) {
    case PARE_CALIB_M_MINMAX: break;
    case PARE_CALIB_M_PERCENTILE:
        if (symmetric) {
            double *H = malloc(sizeof *H * PARE_CALIB_BINS / 2), tot = 0, acc = 0;
            if (!H) return pare_fail(PARE_ENOMEM, "out of memory");
            fold_abs(H, s);
            for (int j = 0; j < PARE_CALIB_BINS / 2; j++) tot += H[j];
            h = a;
            for (int j = 0; j < PARE_CALIB_BINS / 2; j++) {
                acc += H[j];
                if (acc >= percentile / 100.0 * tot) {
                    h = (j + 1) * (double)a / (PARE_CALIB_BINS / 2);
                    break;
                }
            }
            free(H);
            l = -h;
        } else {
            l = fmin(quantile_signed(s, 1 - percentile / 100.0) - 2.0 * a / PARE_CALIB_BINS, 0);
            h = fmax(quantile_signed(s, percentile / 100.0), 0);
            l = fmax(l, s->min), h = fmin(h, s->max);
        }
        break;
    case PARE_CALIB_M_KL: {
        double t = kl_threshold(s, bits);
        l = symmetric ? -t : fmax(s->min, -t);
        h = symmetric ? t : fmin(s->max, t);
        break;
    }
    case PARE_CALIB_M_MSE: {
        double best = INFINITY, bl = l, bh = h;
        for (int c = 1; c <= 400; c++) {
            double f = c / 400.0, cl = l * f, ch = h * f;
            double e = hist_mse(s, (float)cl, (float)ch, bits);
            if (e < best) best = e, bl = cl, bh = ch;
        }
        l = bl, h = bh;
        break;
    }
    default: return pare_fail(PARE_EINVAL, "unknown calibration method %d", (int)method);
    }
    *lo = (float)l, *hi = (float)h;
    if (mse_out) *mse_out = s->hist ? hist_mse(s, *lo, *hi, bits) : NAN;
    return PARE_OK;
}
