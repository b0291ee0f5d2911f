/* fixed.c — Sparse Transformer fixed patterns (Child et al. 2019, "Generating Long Sequences with
 * Sparse Transformers", and the survey's block local / fixed radius / block strided): kind "fixed".
 *
 * pattern (query i sees key j iff; causal adds j <= i, as the paper's autoregressive form):
 *   local    block local:   ⌊i/l⌋ = ⌊j/l⌋                                  (l = stride)
 *   radius   fixed radius:  |i − j| <= radius
 *   strided  Child's strided, both heads merged: |i − j| <= l  or  (i − j) mod l = 0
 *   fixed    Child's fixed, merged: ⌊i/l⌋ = ⌊j/l⌋  or  j mod l >= l − c   (c = summary columns)
 * Every head uses the same pattern (the paper's "merged" head arrangement).
 *
 * Entries of the engine (pattern.c): local = one block × itself per block; radius = one band entry;
 * strided = one band |j − i| <= l plus, per residue ρ of positions mod l, the residue class against
 * itself restricted to |j − i| > l (so no pair is listed twice); fixed = the local blocks plus, per
 * summary column u, all queries against the progression u, u + l, … outside their own block.
 * Cost per head (pairs, up to tile rounding): local T·l; radius T·(2r+1); strided T·(2l+1) + T²/l;
 * fixed T·l + T·c·T/l. Memory O(T). Deliberately not here: the paper's other head arrangements
 * (sub-patterns split across heads or interleaved across layers).
 */
#include "attn/attn.h"

#include <stdlib.h>

#include "attn/pattern.h"

enum { FIXED_LOCAL = 0, FIXED_RADIUS, FIXED_STRIDED, FIXED_FIXED };

static const pare_opt_spec fixed_opts[] = {
    {"pattern", PARE_OPT_ENUM, "fixed", 0, 0, "local|radius|strided|fixed",
     "local: same block; radius: |i-j| <= radius; strided: |i-j| <= stride or i-j multiple of stride; "
     "fixed: same block or a block's last `summary` columns"},
    {"stride", PARE_OPT_INT, "128", 1, 1e6, NULL, "block length / stride l (local, strided, fixed); <= T"},
    {"summary", PARE_OPT_INT, "8", 1, 1e6, NULL, "summary columns c per block (fixed); <= stride"},
    {"radius", PARE_OPT_INT, "64", 0, 1e6, NULL, "keys each side (radius); < T"},
};
static const pare_schema fixed_schema = {
    "fixed", "Sparse Transformer fixed patterns: block local, fixed radius, strided, fixed (summary columns)",
    fixed_opts, 4};

static pare_status fixed_build(pare_attn_pattern *p, int kind, int64_t l, int64_t c, int64_t rad)
{
    const int64_t T = p->T, nb = (T + l - 1) / l;
    for (int64_t h = 0; h < p->H; h++) {
        if (kind == FIXED_RADIUS) {
            PARE_TRY(pare_attn_pattern_add(p, h, pare_attn_range(0, T), pare_attn_range(0, T), -rad, rad));
            continue;
        }
        if (kind == FIXED_STRIDED) {
            PARE_TRY(pare_attn_pattern_add(p, h, pare_attn_range(0, T), pare_attn_range(0, T), -l, l));
            for (int64_t rho = 0; rho < l && rho < T; rho++) {
                const pare_attn_prog g = {rho, l, (T - 1 - rho) / l + 1};
                PARE_TRY(pare_attn_pattern_add(p, h, g, g, -T, -l - 1));
                PARE_TRY(pare_attn_pattern_add(p, h, g, g, l + 1, T));
            }
            continue;
        }
        for (int64_t b = 0; b < nb; b++) { /* local, and fixed's own block */
            const pare_attn_prog blk = pare_attn_range(b * l, b * l + l < T ? b * l + l : T);
            PARE_TRY(pare_attn_pattern_add(p, h, blk, blk, -T, T));
        }
        if (kind != FIXED_FIXED) continue;
        /* Summary column u (keys ≡ u mod l) of the other blocks. For query i the own block's column sits
         * at j − i = u − (i mod l) ∈ [u − l + 1, u] and every other block's outside it, so "other
         * blocks" is the band complement, the same for all queries: two entries per u. */
        for (int64_t u = l - c; u < l && u < T; u++) {
            const pare_attn_prog col = {u, l, (T - 1 - u) / l + 1};
            PARE_TRY(pare_attn_pattern_add(p, h, pare_attn_range(0, T), col, -T, u - l));
            PARE_TRY(pare_attn_pattern_add(p, h, pare_attn_range(0, T), col, u + 1, T));
        }
    }
    return PARE_OK;
}

static pare_status fixed_init(pare_attn *a)
{
    const int64_t T = a->T;
    const int kind = pare_opt_int(&a->opts, "pattern");
    const int64_t l = pare_opt_int(&a->opts, "stride"), c = pare_opt_int(&a->opts, "summary"),
                  rad = pare_opt_int(&a->opts, "radius");
    const char *pname = pare_opt_str(&a->opts, "pattern");
    if (kind == FIXED_RADIUS && rad >= T)
        return pare_fail(PARE_EINVAL, "fixed: option 'radius' = %lld is not smaller than T=%lld (pattern=radius)",
                         (long long)rad, (long long)T);
    if (kind != FIXED_RADIUS && l > T)
        return pare_fail(PARE_EINVAL, "fixed: option 'stride' = %lld is larger than T=%lld (pattern=%s)", (long long)l,
                         (long long)T, pname);
    if (kind == FIXED_FIXED && c > l)
        return pare_fail(PARE_EINVAL, "fixed: option 'summary' = %lld is larger than stride=%lld (pattern=fixed)",
                         (long long)c, (long long)l);
    pare_attn_pattern *p = calloc(1, sizeof *p);
    if (!p) return pare_fail(PARE_ENOMEM, "fixed: out of memory");
    a->state = p;
    pare_status st = pare_attn_pattern_init(p, T, a->H, 64, 64, a->causal);
    if (st == PARE_OK) st = fixed_build(p, kind, l, c, rad);
    if (st == PARE_OK) st = pare_attn_pattern_finish(p);
    if (st != PARE_OK) pare_attn_pattern_state_free(a);
    return st;
}

const pare_attn_variant pare_attn_fixed = {
    .schema = &fixed_schema,
    .can_be_causal = 1,
    .causal_note = "j <= i inside the pattern (the paper's autoregressive form)",
    .init = fixed_init,
    .free = pare_attn_pattern_state_free,
    .forward = pare_attn_pattern_forward,
    .forward_bf16 = pare_attn_pattern_forward_bf16,
    .slot_bf16_bytes = pare_attn_pattern_slot_bf16,
    .backward = pare_attn_pattern_backward,
    .cost = pare_attn_pattern_cost,
    .mask = pare_attn_pattern_mask,
};
