/* gp.h — Gaussian-process regression and expected improvement: the surrogate of Bayesian-optimisation
 * tuning (issue 16, lua/pare/tune.lua's "bayesian" strategy; docs/tuning.md).
 *
 *     pare_gp *g;
 *     PARE_TRY(pare_gp_fit(&g, X, y, n, d, &(pare_gp_spec){.kernel = PARE_GP_MATERN52}));  // X (n, d) in [0, 1]^d
 *     PARE_TRY(pare_gp_predict(g, Xs, m, mean, var));      // posterior at m points, in y's units
 *     double ei = pare_gp_ei(mean[0], sqrt(var[0]), best, 0.01);   // for minimisation
 *     pare_gp_free(g);
 *
 * Model: y = f(x) + ε, f ~ GP(μ, σf² k(x, x')), ε ~ N(0, σn²), with y standardised first (μ its mean, its standard
 * deviation the unit: σf² = 1 on that scale) and k isotropic over the d inputs, which the caller scales to [0, 1]
 * (tune.lua maps each option's choices there): Matérn 5/2 k(r) = (1 + √5 r/ℓ + 5r²/3ℓ²) e^{−√5 r/ℓ} (the usual choice
 * for BO: Snoek et al. 2012) or the squared exponential e^{−r²/2ℓ²}. Posterior (Rasmussen & Williams, Algorithm 2.1):
 * L = chol(K + σn² I), α = Lᵀ\(L\y), mean k*ᵀα, variance k(x*, x*) − |L\k*|², log marginal likelihood
 * −½ yᵀα − Σ log L_ii − n/2 log 2π. The Cholesky is LAPACK's dpotrf (OpenBLAS), which reports a matrix that is not
 * positive definite as a return code.
 *
 * Hyperparameters: ℓ and σn² given, or (0) chosen by the largest log marginal likelihood over a fixed grid — ℓ at 24
 * log-spaced values in [0.03, 3], σn² in {1e-6, 1e-4, 1e-3, 1e-2, 0.1} of the standardised variance. A grid rather
 * than gradient ascent: deterministic, no local optima to explain, and n is small (tuning budgets are tens to a few
 * hundred trials, one O(n³) factorisation per grid point).
 *
 * Not here: anisotropic length scales (ARD), input warping, batch acquisition, the acquisition's maximisation (the
 * caller scores a candidate set: tuning spaces are discrete).
 */
#ifndef PARE_GP_H
#define PARE_GP_H

#include "core/status.h"

typedef enum pare_gp_kernel { PARE_GP_MATERN52 = 0, PARE_GP_RBF, PARE_GP_KERNEL_COUNT } pare_gp_kernel;

typedef struct pare_gp_spec {
    pare_gp_kernel kernel;
    double lengthscale; /* ℓ > 0, or 0: chosen by marginal likelihood over the grid */
    double noise;       /* σn² as a share of y's variance, > 0, or 0: chosen over the grid */
} pare_gp_spec;

typedef struct pare_gp {
    int n, d;
    pare_gp_kernel kernel;
    double lengthscale, noise; /* as used (chosen or given) */
    double y_mean, y_std;      /* the standardisation (y_std 1 when every y is equal) */
    double lml;                /* log marginal likelihood of the standardised y at (ℓ, σn²) */
    double *X;                 /* (n, d) copy */
    double *L;                 /* (n, n) lower Cholesky factor of K + σn² I, column-major as LAPACK writes it */
    double *alpha;             /* (n) (K + σn² I)⁻¹ ỹ */
} pare_gp;

/* "matern52" | "rbf" → kernel; PARE_EINVAL naming the valid choices. */
pare_status pare_gp_kernel_parse(const char *name, pare_gp_kernel *k);
const char *pare_gp_kernel_name(pare_gp_kernel k);

/* Fit to n >= 1 observations y (n) at X (n, d), d >= 1. PARE_EINVAL for bad sizes or spec; PARE_ENUMERIC naming the
 * row for a NaN/Inf in X or y, or when K + σn² I is not positive definite at a given (ℓ, σn²) (never on the grid:
 * its smallest σn² is 1e-6 and its points are re-tried with more jitter). */
pare_status pare_gp_fit(pare_gp **out, const double *X, const double *y, int n, int d, const pare_gp_spec *spec);

/* Posterior mean (m) and variance (m) of f at Xs (m, d), in y's units; var >= 0 (clamped at 0 against rounding). */
pare_status pare_gp_predict(const pare_gp *g, const double *Xs, int m, double *mean, double *var);

/* Expected improvement below `best` (minimisation) for a posterior N(mean, sd²): E[max(best − ξ − f, 0)] =
 * (best − ξ − mean) Φ(z) + sd φ(z), z = (best − ξ − mean) / sd; max(best − ξ − mean, 0) when sd = 0. */
double pare_gp_ei(double mean, double sd, double best, double xi);

void pare_gp_free(pare_gp *g);

#endif
