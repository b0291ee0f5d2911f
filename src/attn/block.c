/* block.c — BlockBERT blockwise attention (Qiu et al. 2019, "Blockwise Self-Attention for Long
 * Document Understanding"): kind "block".
 *
 * The sequence is cut into n = blocks equal blocks (T/n tokens; n must divide T). Head h has a block
 * permutation π_h and its queries of block i attend only the keys of block π_h(i). As in the paper the
 * permutations are cyclic shifts, π(i) = (i + s) mod n, and heads_config says how many heads use each
 * shift s = 0, 1, …, n−1 ("10:2" for n = 2: 10 heads on the diagonal, 2 on the swapped blocks; the
 * paper's n = 3 model is "8:2:2"). The default spreads the heads evenly: head h gets s = ⌊h·n/H⌋.
 *
 * Not causal: a shifted head's queries see one whole other block, which lies in the future for most
 * of them (BlockBERT is a masked-LM encoder). For causal block-local attention use kind "fixed" with
 * pattern "local".
 *
 * Cost: each head computes n blocks of (T/n)² scores: pairs = B·H·T²/n; memory O(T) (lse + slots).
 * The blocks run through the engine of pattern.c, one entry per (head, block). Deliberately not here:
 * non-cyclic permutations (the paper only uses shifts) and BlockBERT's model-level choices.
 */
#include "attn/attn.h"

#include <stdio.h>
#include <stdlib.h>

#include "attn/pattern.h"

static const pare_opt_spec block_opts[] = {
    {"blocks", PARE_OPT_INT, "2", 1, 4096, NULL, "number of blocks n (must divide T); block size T/n"},
    {"heads_config", PARE_OPT_STRING, "", 0, 0, NULL,
     "heads per block shift 0..n-1, e.g. \"10:2\" (must sum to H); \"\" = spread evenly"},
};
static const pare_schema block_schema = {
    "block", "BlockBERT: n blocks, each head attends block (i + s_h) mod n; cost T²/n per head", block_opts, 2};

static pare_status block_shifts(const pare_attn *a, int64_t n, int64_t *shift)
{
    const int64_t H = a->H;
    const char *cfg = pare_opt_str(&a->opts, "heads_config");
    if (!*cfg) {
        for (int64_t h = 0; h < H; h++) shift[h] = h * n / H;
        return PARE_OK;
    }
    int64_t counts[4096];
    int got;
    PARE_TRY(pare_attn_parse_ints(counts, &got, 4096, a, "heads_config", ':', 0, H));
    if (got != n)
        return pare_fail(PARE_EINVAL, "block: option 'heads_config' = '%s' has %d counts; blocks=%lld needs one per "
                         "shift (%lld)", cfg, got, (long long)n, (long long)n);
    int64_t h = 0;
    for (int64_t s = 0; s < n; s++)
        for (int64_t c = 0; c < counts[s] && h < H + 1; c++, h++)
            if (h < H) shift[h] = s;
    if (h != H)
        return pare_fail(PARE_EINVAL, "block: option 'heads_config' = '%s' sums to %lld heads; the layer has H=%lld",
                         cfg, (long long)h, (long long)H);
    return PARE_OK;
}

static pare_status block_init(pare_attn *a)
{
    const int64_t T = a->T, H = a->H, n = pare_opt_int(&a->opts, "blocks");
    if (n > T || T % n)
        return pare_fail(PARE_EINVAL, "block: option 'blocks' = %lld must divide T=%lld (block size T/blocks)",
                         (long long)n, (long long)T);
    int64_t *shift = malloc((size_t)H * sizeof *shift);
    pare_attn_pattern *p = calloc(1, sizeof *p);
    if (!shift || !p) {
        free(shift), free(p);
        return pare_fail(PARE_ENOMEM, "block: out of memory");
    }
    a->state = p;
    const int64_t bs = T / n;
    pare_status st = block_shifts(a, n, shift);
    if (st == PARE_OK) st = pare_attn_pattern_init(p, T, H, 256, 256, a->causal);
    for (int64_t h = 0; st == PARE_OK && h < H; h++)
        for (int64_t i = 0; st == PARE_OK && i < n; i++) {
            const int64_t j = (i + shift[h]) % n;
            st = pare_attn_pattern_add(p, h, pare_attn_range(i * bs, i * bs + bs), pare_attn_range(j * bs, j * bs + bs),
                                       -T, T);
        }
    if (st == PARE_OK) st = pare_attn_pattern_finish(p);
    free(shift);
    if (st != PARE_OK) pare_attn_pattern_state_free(a);
    return st;
}

const pare_attn_variant pare_attn_block = {
    .schema = &block_schema,
    .can_be_causal = 0,
    .causal_note = "BlockBERT is bidirectional: a shifted head's queries see one whole other block, in the future for "
                   "most of them (for causal block-local attention use kind=fixed, pattern=local)",
    .init = block_init,
    .free = pare_attn_pattern_state_free,
    .forward = pare_attn_pattern_forward,
    .forward_bf16 = pare_attn_pattern_forward_bf16,
    .slot_bf16_bytes = pare_attn_pattern_slot_bf16,
    .backward = pare_attn_pattern_backward,
    .cost = pare_attn_pattern_cost,
    .mask = pare_attn_pattern_mask,
};
