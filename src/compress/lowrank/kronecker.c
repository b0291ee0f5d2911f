/* kronecker.c — the "kronecker" pass: a Linear weight as a sum of Kronecker products (seed 003's
 * factorizations), run without forming the weight.
 *
 *     W (N, K) ≈ Σ_{i<r} A_i ⊗ B_i,   A_i (n1, k1), B_i (n2, k2),   N = n1·n2, K = k1·k2
 *     y = W x + b:  with X = x reshaped (k1, k2),  Y = Σ_i A_i · X · B_iᵀ (n1, n2),  y = vec(Y) + b
 *
 * Van Loan & Pitsianis (1993): ||W − Σ A_i ⊗ B_i||_F = ||R(W) − Σ vec(A_i) vec(B_i)ᵀ||_F with the
 * rearrangement R(W) (n1·k1, n2·k2), so the best r terms are the leading r singular triplets of R(W)
 * (GSL's SVD), √σ_i into each factor. The layer becomes a tt_linear node (kernels/tt.h): a rank-r
 * Kronecker sum is a TT-matrix of two cores G_0 (1, n1, k1, r), G_1 (r, n2, k2, 1). A batch of M rows
 * runs as two GEMMs: (M·k1, k2)·(r·n2, k2)ᵀ, then M products (n1, k1·r)·(k1·r, n2). The cores are one
 * trainable parameter: the model fine-tunes, saves and loads like any other.
 *
 * Factor shapes: n1, k1 given, or (0) the divisors of N and K closest to √N and √K. A rank above the
 * full Kronecker rank min(n1·k1, n2·k2) is capped there; a layer whose r·(n1·k1 + n2·k2) ≥ N·K stays
 * dense; none factored is an error.
 *
 * Deliberately not here: weights under masks or in quantized formats (refused: factorize the f32 model).
 */
#include <stdio.h>
#include <stdlib.h>

#include "compress/pass.h"
#include "graph/rewrite.h"
#include "tt_svd.h"

static const pare_opt_spec kron_opts[] = {
    {"layers", PARE_OPT_STRING, "*.ffn.*", 0, 0, NULL, "glob over Linear layer names to factorize (e.g. \"enc.*.attn.*\")"},
    {"exclude", PARE_OPT_STRING, "", 0, 0, NULL, "glob of Linear layers to leave dense (\"\": none)"},
    {"rank", PARE_OPT_INT, "1", 1, 1e6, NULL, "Kronecker terms r: W ≈ Σ_{i<r} A_i ⊗ B_i (capped at min(n1·k1, n2·k2))"},
    {"n1", PARE_OPT_INT, "0", 0, 1e8, NULL, "rows of A, dividing N (0: the divisor of N closest to √N)"},
    {"k1", PARE_OPT_INT, "0", 0, 1e8, NULL, "columns of A, dividing K (0: the divisor of K closest to √K)"},
};
static const pare_schema kron_schema = {"kronecker",
                                        "Kronecker-product factorization of Linear weights (Van Loan–Pitsianis), run as small GEMMs",
                                        kron_opts, (int)(sizeof kron_opts / sizeof kron_opts[0])};

static pare_status divides(int64_t f, int64_t D, const char *key, const char *dim, const char *layer)
{
    if (f == 0 || D % f == 0) return PARE_OK;
    char list[256];
    int used = 0;
    for (int64_t a = 1; a <= D && used < (int)sizeof list - 16; a++)
        if (D % a == 0) used += snprintf(list + used, sizeof list - (size_t)used, "%s%lld", used ? ", " : "", (long long)a);
    return pare_fail(PARE_EINVAL, "kronecker: %s = %lld does not divide %s's %s = %lld; divisors: %s", key, (long long)f, layer,
                     dim, (long long)D, list);
}

static pare_status factorize(pare_model *m, int64_t i, int64_t rank, int64_t n1, int64_t k1, int *done)
{
    PARE_TRY(pare_tt_check_linear(m, i, "kronecker"));
    const pare_param *w = &m->params[m->nodes[i].param[0]];
    int64_t N = w->shape[0], K = w->shape[1], f[2];
    PARE_TRY(divides(n1, N, "n1", "N (output features)", m->nodes[i].name));
    PARE_TRY(divides(k1, K, "k1", "K (input features)", m->nodes[i].name));
    pare_tt_shape s = {.d = 2};
    pare_tt_auto_factors(N, 2, f);
    s.n[0] = n1 ? n1 : f[0], s.n[1] = N / s.n[0];
    pare_tt_auto_factors(K, 2, f);
    s.k[0] = k1 ? k1 : f[0], s.k[1] = K / s.k[0];
    int64_t a = s.n[0] * s.k[0], b = s.n[1] * s.k[1], full = a < b ? a : b, r = rank < full ? rank : full;
    if (r * (a + b) >= N * K) return PARE_OK; /* no saving: stays dense */
    float *cores;
    PARE_TRY(pare_tt_svd(&cores, &s, w->blob->data, r, 0, NULL));
    pare_status st = pare_tt_replace_linear(m, i, &s, cores);
    free(cores);
    if (st == PARE_OK) (*done)++;
    return st;
}

static pare_status kron_apply(pare_model *m, const pare_options *o, const pare_pass_ctx *ctx)
{
    (void)ctx;
    int64_t *idx = malloc(sizeof *idx * (size_t)(m->nnodes ? m->nnodes : 1)), n;
    if (!idx) return PARE_ENOMEM;
    pare_status st = pare_select_linears(m, pare_opt_str(o, "layers"), pare_opt_str(o, "exclude"), idx, &n);
    int64_t rank = pare_opt_int(o, "rank"), n1 = pare_opt_int(o, "n1"), k1 = pare_opt_int(o, "k1");
    int done = 0;
    for (int64_t k = 0; st == PARE_OK && k < n; k++) st = factorize(m, idx[k], rank, n1, k1, &done);
    free(idx);
    if (st == PARE_OK && !done)
        st = pare_fail(PARE_EINVAL, "kronecker: no selected layer saves parameters at rank %lld (r terms save only when "
                       "r·(n1·k1 + n2·k2) < N·K); choose a lower rank", (long long)rank);
    if (st == PARE_OK) st = pare_model_compact(m);
    if (st == PARE_OK) st = pare_model_check(m);
    return st;
}

const pare_pass pare_pass_kronecker = {&kron_schema, kron_apply, 0};
