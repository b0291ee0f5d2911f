/* tt_svd.c — TT-SVD of a Linear weight and the Linear → tt_linear rewrite (tt_svd.h). */
#include "tt_svd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/format.h"
#include "graph/ops.h"
#include "graph/transform.h"
#include "svd.h"

pare_status pare_tt_svd(float **cores, pare_tt_shape *s, const float *W, int64_t max_rank, double energy, double *err2)
{
    *cores = NULL;
    int d = s->d;
    s->r[0] = s->r[d] = 1;
    for (int j = 1; j < d; j++) s->r[j] = 1;
    PARE_TRY(pare_tt_check(s, "tt_svd"));
    int64_t N = pare_tt_rows(s), K = pare_tt_cols(s), total = N * K;
    /* T: W with its indices reordered to (a_0 c_0)(a_1 c_1).. row-major */
    double *cur = malloc(sizeof *cur * (size_t)total);
    if (!cur) return pare_fail(PARE_ENOMEM, "tt_svd: out of memory for a (%lld, %lld) weight", (long long)N, (long long)K);
    for (int64_t a = 0; a < N; a++)
        for (int64_t c = 0; c < K; c++) {
            int64_t ra = a, rc = c, pos = 0, stride = 1;
            for (int j = d - 1; j >= 0; j--) {
                pos += (ra % s->n[j] * s->k[j] + rc % s->k[j]) * stride;
                stride *= s->n[j] * s->k[j];
                ra /= s->n[j], rc /= s->k[j];
            }
            cur[pos] = W[a * K + c];
        }
    float **G = calloc((size_t)d, sizeof *G);
    double e2 = 0;
    pare_status st = G ? PARE_OK : pare_fail(PARE_ENOMEM, "tt_svd: out of memory");
    int64_t numel = total; /* of cur */
    for (int j = 0; st == PARE_OK && j < d - 1; j++) {
        int64_t rows = s->r[j] * s->n[j] * s->k[j], cols = numel / rows, R = rows < cols ? rows : cols;
        double *u = NULL, *sv = NULL, *vt = NULL;
        st = pare_svd_d(cur, rows, cols, &u, &sv, &vt);
        if (st != PARE_OK) break;
        int64_t r = energy > 0 ? pare_svd_rank_for_energy(sv, R, energy) : R;
        if (max_rank > 0 && r > max_rank) r = max_rank;
        if (r < 1) r = 1;
        for (int64_t i = r; i < R; i++) e2 += sv[i] * sv[i];
        s->r[j + 1] = r;
        int last = j == d - 2; /* √S on both sides of the last split, S into the remainder before */
        G[j] = malloc(sizeof **G * (size_t)(rows * r));
        double *next = malloc(sizeof *next * (size_t)(r * cols));
        if (!G[j] || !next) {
            free(u), free(sv), free(vt), free(next);
            st = pare_fail(PARE_ENOMEM, "tt_svd: out of memory");
            break;
        }
        for (int64_t q = 0; q < r; q++) {
            double gl = last ? sqrt(sv[q]) : 1, gr = last ? sqrt(sv[q]) : sv[q];
            for (int64_t i = 0; i < rows; i++) G[j][i * r + q] = (float)(u[i * R + q] * gl);
            for (int64_t c = 0; c < cols; c++) next[q * cols + c] = vt[q * cols + c] * gr;
        }
        free(u), free(sv), free(vt), free(cur);
        cur = next, numel = r * cols;
    }
    if (st == PARE_OK) {
        int64_t total_cores = pare_tt_numel(s);
        float *out = malloc(sizeof *out * (size_t)total_cores);
        if (!out) st = pare_fail(PARE_ENOMEM, "tt_svd: out of memory");
        for (int j = 0; out && j < d - 1; j++)
            memcpy(out + pare_tt_core_offset(s, j), G[j], sizeof *out * (size_t)(s->r[j] * s->n[j] * s->k[j] * s->r[j + 1]));
        for (int64_t i = 0; out && i < numel; i++) out[pare_tt_core_offset(s, d - 1) + i] = (float)cur[i];
        *cores = out;
    }
    for (int j = 0; G && j < d; j++) free(G[j]);
    free(G), free(cur);
    if (err2) *err2 = e2;
    return st;
}

void pare_tt_auto_factors(int64_t N, int d, int64_t *f)
{
    for (int j = 0; j < d; j++) f[j] = 1;
    if (d == 2) {
        int64_t best = 1;
        for (int64_t a = 1; a * a <= N; a++)
            if (N % a == 0) best = a; /* the largest divisor ≤ √N ... */
        int64_t other = N / best;     /* ... or the smallest ≥ √N, whichever is closer */
        double rt = sqrt((double)N);
        f[0] = fabs((double)other - rt) < fabs((double)best - rt) ? other : best;
        f[1] = N / f[0];
        return;
    }
    int64_t p[64], np = 0, x = N;
    for (int64_t q = 2; q * q <= x; q++)
        while (x % q == 0) p[np++] = q, x /= q;
    if (x > 1) p[np++] = x;
    for (int64_t i = np - 1; i >= 0; i--) { /* largest prime first, into the smallest factor */
        int lo = 0;
        for (int j = 1; j < d; j++)
            if (f[j] < f[lo]) lo = j;
        f[lo] *= p[i];
    }
}

pare_status pare_tt_parse_factors(const char *text, int64_t *f, int *d, const char *what)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || n >= PARE_TT_MAX) break;
        f[n++] = v;
        p = end;
        if (*p == ',') p++;
        else if (*p) break;
    }
    if (*p || n < 2)
        return pare_fail(PARE_EINVAL, "%s: '%s' is not a list of 2..%d positive integers separated by commas (e.g. \"4,8,8\")",
                         what, text, PARE_TT_MAX);
    *d = n;
    return PARE_OK;
}

pare_status pare_tt_check_linear(const pare_model *m, int64_t i, const char *pass)
{
    const pare_node *n = &m->nodes[i];
    const pare_param *w = &m->params[n->param[0]];
    if (strlen(n->name) + sizeof ".cores" > PARE_NAME_MAX)
        return pare_fail(PARE_EINVAL, "%s: the name '%s' leaves no room for its cores' name (at most %d characters)", pass,
                         n->name, PARE_NAME_MAX - (int)sizeof ".cores");
    if (n->ntf)
        return pare_fail(PARE_EINVAL, "%s: %s carries a weight transform (%s); factorize the model before masking or fake "
                         "quantization", pass, n->name, pare_tf_name(n->tf[0].kind));
    if (w->format != PARE_FMT_F32)
        return pare_fail(PARE_EINVAL, "%s: %s is stored as %s; factorize the f32 model", pass, n->name,
                         pare_format_name(w->format));
    return PARE_OK;
}

pare_status pare_tt_replace_linear(pare_model *m, int64_t i, const pare_tt_shape *s, const float *cores)
{
    char name[PARE_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s.cores", m->nodes[i].name);
    int64_t numel = pare_tt_numel(s);
    int pc = pare_model_add_param(m, name, 1, &numel, 1);
    if (pc < 0) return PARE_EINVAL;
    memcpy(m->params[pc].blob->data, cores, sizeof *cores * (size_t)numel);
    pare_node *n = &m->nodes[i];
    pare_cache_spec cs[PARE_NODE_MAX_CACHE];
    pare_node probe = *n;
    probe.op = PARE_OP_TT_LINEAR, probe.a.tt = *s;
    int nc = pare_op_caches(m, &probe, cs);
    snprintf(name, sizeof name, "%s#%s", n->name, cs[0].suffix);
    int id = nc == 1 ? pare_model_add_value(m, name, PARE_VAL_CACHE, cs[0].rows, cs[0].cols, cs[0].dtype) : -1;
    if (id < 0) return PARE_EINVAL;
    n = &m->nodes[i]; /* the arrays may have moved */
    m->values[id].producer = (int)i;
    n->op = PARE_OP_TT_LINEAR;
    n->a.tt = *s;
    n->param[0] = pc;
    n->cache[0] = id, n->ncache = 1;
    return PARE_OK;
}
