/* longformer.c — Longformer attention (Beltagy et al. 2020): kind "longformer".
 *
 * Query i sees key j iff (causal adds j <= i):
 *   i < g or j < g                                   global tokens, symmetric: the first g tokens attend
 *                                                     everywhere and every token attends them
 *   |i − j| <= d·⌊w/2⌋ and (i − j) mod d = 0         the sliding window of w/2 keys each side, dilated
 *                                                     by head h's dilation d (d = 1: plain window)
 * Options: window w (<= T), dilation per head as a list cycled over the heads ("1" all heads plain,
 * "1,1,2,2" dilation 2 on every other pair: the paper dilates only some heads), global g.
 *
 * Entries of the engine (pattern.c): global rows × all keys; other rows × global keys; per residue ρ of
 * positions mod d, the non-global positions ≡ ρ against themselves with the band |j − i| <= d·w/2
 * (a plain sliding window inside the residue class). The window's entries exclude the global keys, so
 * no pair is listed twice. Cost per head ≈ T·(w + 1) + 2·g·T pairs (plus tile rounding): linear in T.
 * Deliberately not here: global tokens at arbitrary positions (always the first g), separate
 * projections for global attention (the paper's Q_g, K_g, V_g belong to the model).
 */
#include "attn/attn.h"

#include <stdlib.h>

#include "attn/pattern.h"

#define LF_MAX_DIL 1024

static const pare_opt_spec lf_opts[] = {
    {"window", PARE_OPT_INT, "64", 0, 1e6, NULL, "window span w: keys within w/2 each side (<= T)"},
    {"dilation", PARE_OPT_STRING, "1", 0, 0, NULL, "dilation per head, a list cycled over the heads, e.g. \"1,1,2,2\""},
    {"global", PARE_OPT_INT, "1", 0, 1e6, NULL, "first g tokens are global (attend and are attended by all)"},
};
static const pare_schema lf_schema = {
    "longformer", "Longformer: sliding window (dilated per head) + symmetric global tokens; cost O(T·w)", lf_opts, 3};

static pare_status lf_init(pare_attn *a)
{
    const int64_t T = a->T, H = a->H, w = pare_opt_int(&a->opts, "window"), g = pare_opt_int(&a->opts, "global");
    if (w > T)
        return pare_fail(PARE_EINVAL, "longformer: option 'window' = %lld is larger than T=%lld", (long long)w,
                         (long long)T);
    if (g > T)
        return pare_fail(PARE_EINVAL, "longformer: option 'global' = %lld is larger than T=%lld", (long long)g,
                         (long long)T);
    int64_t dil[LF_MAX_DIL];
    int nd;
    PARE_TRY(pare_attn_parse_ints(dil, &nd, LF_MAX_DIL, a, "dilation", ',', 1, T));
    if (nd > H)
        return pare_fail(PARE_EINVAL, "longformer: option 'dilation' = '%s' lists %d values for H=%lld heads",
                         pare_opt_str(&a->opts, "dilation"), nd, (long long)H);
    pare_attn_pattern *p = calloc(1, sizeof *p);
    if (!p) return pare_fail(PARE_ENOMEM, "longformer: out of memory");
    a->state = p;
    /* tiles about the window's half-width: a query tile of t rows needs t + w keys, so the computed pairs
     * are ≈ (t + w)/(w + 1) of the visible ones (1.5× at w = 64, t = 32) while tiles stay big enough for
     * pare_sgemm to be efficient */
    const int64_t tile = w >= 128 ? 64 : w >= 32 ? 32 : 16;
    pare_status st = pare_attn_pattern_init(p, T, H, tile, tile, a->causal);
    for (int64_t h = 0; st == PARE_OK && h < H; h++) {
        const int64_t d = dil[h % nd], half = d * (w / 2);
        if (g > 0) {
            st = pare_attn_pattern_add(p, h, pare_attn_range(0, g), pare_attn_range(0, T), -T, T);
            if (st == PARE_OK) st = pare_attn_pattern_add(p, h, pare_attn_range(g, T), pare_attn_range(0, g), -T, T);
        }
        for (int64_t rho = 0; st == PARE_OK && rho < d; rho++) {
            const int64_t first = g + ((rho - g) % d + d) % d;
            if (first >= T) continue;
            const pare_attn_prog cls = {first, d, (T - 1 - first) / d + 1};
            st = pare_attn_pattern_add(p, h, cls, cls, -half, half);
        }
    }
    if (st == PARE_OK) st = pare_attn_pattern_finish(p);
    if (st != PARE_OK) pare_attn_pattern_state_free(a);
    return st;
}

const pare_attn_variant pare_attn_longformer = {
    .schema = &lf_schema,
    .can_be_causal = 1,
    .causal_note = "j <= i inside the pattern: the window's left half; global tokens see only earlier ones",
    .init = lf_init,
    .free = pare_attn_pattern_state_free,
    .forward = pare_attn_pattern_forward,
    .forward_bf16 = pare_attn_pattern_forward_bf16,
    .slot_bf16_bytes = pare_attn_pattern_slot_bf16,
    .backward = pare_attn_pattern_backward,
    .cost = pare_attn_pattern_cost,
    .mask = pare_attn_pattern_mask,
};
