/* gp.c — Gaussian-process regression and expected improvement (gp.h; Rasmussen & Williams, Algorithm 2.1).
 *
 * Not here: anything about tuning spaces or strategies (lua/pare/tune.lua); the Lua binding (lua/lua_gp.c).
 */
#include "eval/gp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS carries it; Debian ships no lapacke.h with it): Cholesky and the solve with its factor. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda, double *b, const int *ldb,
             int *info);

static const char *const kernel_names[] = {"matern52", "rbf"};
_Static_assert(sizeof kernel_names / sizeof kernel_names[0] == PARE_GP_KERNEL_COUNT, "gp kernel names");

const char *pare_gp_kernel_name(pare_gp_kernel k) { return (unsigned)k < PARE_GP_KERNEL_COUNT ? kernel_names[k] : "?"; }

pare_status pare_gp_kernel_parse(const char *name, pare_gp_kernel *k)
{
    for (int i = 0; i < PARE_GP_KERNEL_COUNT; i++)
        if (name && !strcmp(name, kernel_names[i])) return *k = (pare_gp_kernel)i, PARE_OK;
    return pare_fail(PARE_EINVAL, "gp: kernel '%s' is not one of matern52, rbf", name ? name : "(none)");
}

/* k(x, x') with σf² = 1 */
static double kern(pare_gp_kernel k, const double *a, const double *b, int d, double ell)
{
    double r2 = 0;
    for (int j = 0; j < d; j++) r2 += (a[j] - b[j]) * (a[j] - b[j]);
    if (k == PARE_GP_RBF) return exp(-0.5 * r2 / (ell * ell));
    double s = sqrt(5.0 * r2) / ell;
    return (1.0 + s + s * s / 3.0) * exp(-s);
}

/* L (column-major lower) = chol(K + noise I), alpha = (K + noise I)⁻¹ y, *lml. 0 on success, else LAPACK's info. */
static int factor(pare_gp_kernel k, const double *X, const double *y, int n, int d, double ell, double noise, double *L,
                  double *alpha, double *lml)
{
    for (int j = 0; j < n; j++)
        for (int i = j; i < n; i++) {
            double v = kern(k, X + (size_t)i * d, X + (size_t)j * d, d, ell) + (i == j ? noise : 0.0);
            L[i + (size_t)j * n] = v, L[j + (size_t)i * n] = v;
        }
    int info = 0, one = 1;
    dpotrf_("L", &n, L, &n, &info);
    if (info) return info;
    memcpy(alpha, y, sizeof(double) * (size_t)n);
    dpotrs_("L", &n, &one, L, &n, alpha, &n, &info);
    if (info) return info;
    double q = 0, logdet = 0;
    for (int i = 0; i < n; i++) q += y[i] * alpha[i], logdet += log(L[i + (size_t)i * n]);
    *lml = -0.5 * q - logdet - 0.5 * n * log(2.0 * M_PI);
    return 0;
}

void pare_gp_free(pare_gp *g)
{
    if (!g) return;
    free(g->X), free(g->L), free(g->alpha), free(g);
}

pare_status pare_gp_fit(pare_gp **out, const double *X, const double *y, int n, int d, const pare_gp_spec *spec)
{
    *out = NULL;
    if (n < 1 || d < 1 || n > 20000 || d > 10000)
        return pare_fail(PARE_EINVAL, "gp: %d observations of %d inputs; need n in [1, 20000] and d in [1, 10000]", n, d);
    if ((unsigned)spec->kernel >= PARE_GP_KERNEL_COUNT)
        return pare_fail(PARE_EINVAL, "gp: kernel %d is not one of 0 (matern52), 1 (rbf)", (int)spec->kernel);
    if (!(spec->lengthscale >= 0) || !isfinite(spec->lengthscale) || !(spec->noise >= 0) || !isfinite(spec->noise))
        return pare_fail(PARE_EINVAL, "gp: lengthscale %g and noise %g must be > 0 (or 0: chosen by marginal likelihood)",
                         spec->lengthscale, spec->noise);
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) return pare_fail(PARE_ENUMERIC, "gp: observation %d is %g", i + 1, y[i]);
        for (int j = 0; j < d; j++)
            if (!isfinite(X[(size_t)i * d + j]))
                return pare_fail(PARE_ENUMERIC, "gp: input %d of observation %d is %g", j + 1, i + 1, X[(size_t)i * d + j]);
    }
    pare_gp *g = calloc(1, sizeof *g);
    double *ys = malloc(sizeof(double) * (size_t)n), *L = malloc(sizeof(double) * (size_t)n * n);
    double *alpha = malloc(sizeof(double) * (size_t)n);
    if (g) g->X = malloc(sizeof(double) * (size_t)n * d), g->L = malloc(sizeof(double) * (size_t)n * n),
           g->alpha = malloc(sizeof(double) * (size_t)n);
    if (!g || !ys || !L || !alpha || !g->X || !g->L || !g->alpha) {
        free(ys), free(L), free(alpha), pare_gp_free(g);
        return pare_fail(PARE_ENOMEM, "gp: out of memory for %d observations", n);
    }
    g->n = n, g->d = d, g->kernel = spec->kernel;
    memcpy(g->X, X, sizeof(double) * (size_t)n * d);
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += y[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (y[i] - mean) * (y[i] - mean);
    double sd = n > 1 ? sqrt(var / n) : 0.0;
    g->y_mean = mean, g->y_std = sd > 1e-300 ? sd : 1.0;
    for (int i = 0; i < n; i++) ys[i] = (y[i] - mean) / g->y_std;

    static const double noises[] = {1e-6, 1e-4, 1e-3, 1e-2, 0.1};
    enum { NELL = 24 };
    int nn = spec->noise > 0 ? 1 : (int)(sizeof noises / sizeof noises[0]), ne = spec->lengthscale > 0 ? 1 : NELL;
    int found = 0;
    for (int a = 0; a < nn; a++)
        for (int b = 0; b < ne; b++) {
            double noise = spec->noise > 0 ? spec->noise : noises[a];
            double ell = spec->lengthscale > 0 ? spec->lengthscale : 0.03 * pow(100.0, (double)b / (NELL - 1));
            double lml;
            if (factor(g->kernel, X, ys, n, d, ell, noise, L, alpha, &lml)) continue;
            if (!found || lml > g->lml) {
                found = 1, g->lml = lml, g->lengthscale = ell, g->noise = noise;
                memcpy(g->L, L, sizeof(double) * (size_t)n * n), memcpy(g->alpha, alpha, sizeof(double) * (size_t)n);
            }
        }
    free(ys), free(L), free(alpha);
    if (!found) {
        pare_gp_free(g);
        return pare_fail(PARE_ENUMERIC, "gp: K + noise·I is not positive definite at lengthscale %g, noise %g (%d "
                         "observations): give a larger noise, or 0 to choose it", spec->lengthscale, spec->noise, n);
    }
    *out = g;
    return PARE_OK;
}

pare_status pare_gp_predict(const pare_gp *g, const double *Xs, int m, double *mean, double *var)
{
    int n = g->n, d = g->d;
    double *v = malloc(sizeof(double) * (size_t)n);
    if (!v) return pare_fail(PARE_ENOMEM, "gp: out of memory for a prediction");
    for (int p = 0; p < m; p++) {
        const double *x = Xs + (size_t)p * d;
        double mu = 0;
        for (int i = 0; i < n; i++) v[i] = kern(g->kernel, x, g->X + (size_t)i * d, d, g->lengthscale), mu += v[i] * g->alpha[i];
        /* v = L \ k*, forward substitution on the column-major lower factor */
        for (int i = 0; i < n; i++) {
            double s = v[i];
            for (int j = 0; j < i; j++) s -= g->L[i + (size_t)j * n] * v[j];
            v[i] = s / g->L[i + (size_t)i * n];
        }
        double q = 0;
        for (int i = 0; i < n; i++) q += v[i] * v[i];
        double f = 1.0 - q;
        mean[p] = g->y_mean + g->y_std * mu;
        var[p] = f > 0 ? f * g->y_std * g->y_std : 0.0;
    }
    free(v);
    return PARE_OK;
}

double pare_gp_ei(double mean, double sd, double best, double xi)
{
    double imp = best - xi - mean;
    if (!(sd > 0)) return imp > 0 ? imp : 0.0;
    double z = imp / sd;
    return imp * 0.5 * erfc(-z / M_SQRT2) + sd * exp(-0.5 * z * z) / sqrt(2.0 * M_PI);
}
