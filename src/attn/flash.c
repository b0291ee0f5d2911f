/* flash.c — FlashAttention-style exact attention (Dao et al. 2022): kind "flash".
 *
 * Queries in tiles of q_tile, keys in tiles of k_tile, an online softmax per query row (running max and
 * sum, the output rescaled as the max grows), so nothing of size T² is ever stored: the cache is the
 * row log-sum-exp (B,H,T) and backward recomputes every tile's probabilities from it. The numbers equal
 * full attention's to float rounding (1e-5 in the tests).
 *
 * The tiling is the engine of pattern.c run on the dense pattern (one entry per head: every query ×
 * every key, causal capping the band at j <= i so only the lower-triangle tiles are computed).
 * Cost: pairs ≈ T² (≈ T²/2 causal) in whole tiles; memory O(T): lse plus one slot per thread of
 * 2·q_tile·k_tile + 2T floats.
 *
 * Deliberately not here: a register-blocked micro-kernel (the tiles are pare_sgemm calls), splitting
 * one (b, h) pair over threads.
 */
#include "attn/attn.h"

#include <stdlib.h>

#include "attn/pattern.h"

static const pare_opt_spec flash_opts[] = {
    {"q_tile", PARE_OPT_INT, "256", 1, 4096, NULL, "queries per tile"},
    {"k_tile", PARE_OPT_INT, "256", 1, 4096, NULL, "keys per tile"},
};
static const pare_schema flash_schema = {
    "flash", "tiled exact attention with online softmax (FlashAttention): full's numbers in O(T) memory",
    flash_opts, 2};

static pare_status flash_init(pare_attn *a)
{
    pare_attn_pattern *p = calloc(1, sizeof *p);
    if (!p) return pare_fail(PARE_ENOMEM, "flash: out of memory");
    a->state = p;
    pare_status st = pare_attn_pattern_init(p, a->T, a->H, pare_opt_int(&a->opts, "q_tile"),
                                            pare_opt_int(&a->opts, "k_tile"), a->causal);
    for (int64_t h = 0; st == PARE_OK && h < a->H; h++)
        st = pare_attn_pattern_add(p, h, pare_attn_range(0, a->T), pare_attn_range(0, a->T), -a->T, a->T);
    if (st == PARE_OK) st = pare_attn_pattern_finish(p);
    if (st != PARE_OK) pare_attn_pattern_state_free(a);
    return st;
}

const pare_attn_variant pare_attn_flash = {
    .schema = &flash_schema,
    .can_be_causal = 1,
    .causal_note = "keys after the query masked; only the lower-triangle tiles are computed",
    .init = flash_init,
    .free = pare_attn_pattern_state_free,
    .forward = pare_attn_pattern_forward,
    .forward_bf16 = pare_attn_pattern_forward_bf16,
    .slot_bf16_bytes = pare_attn_pattern_slot_bf16,
    .backward = pare_attn_pattern_backward,
    .cost = pare_attn_pattern_cost,
    .mask = pare_attn_pattern_mask,
};
