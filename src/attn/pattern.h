/* pattern.h — the block-sparse attention engine shared by the sparse variants (block, fixed, longformer,
 * bigbird, longnet) and by flash (the dense pattern).
 *
 * A pattern lists, per head, entries "queries Q attend to keys K where lo <= j - i <= hi":
 *
 *     Q, K: arithmetic progressions of positions {start + stride·r : 0 <= r < count}
 *     [lo, hi]: a band on the key offset j - i (use [-T, T] for "all")
 *
 * Contiguous blocks are progressions of stride 1; a dilated segment (LongNet) or a residue class
 * (Longformer's dilated window, Sparse Transformer's strided pattern) is a progression of stride r,
 * and a band turns into a sliding window inside it. The engine cuts every entry into tiles of at most
 * tq queries × tk keys, skipping the keys outside the band and the padded ones (j >= L), so the cost is
 * the number of computed tiles, never T². A tile of rows with stride s is a matrix view of leading
 * dimension ld·s: pare_sgemm runs on q, k, v in place.
 *
 * Entries add up: a (query, key) pair listed twice counts twice in the softmax (multiplicity). LongNet
 * uses this on purpose (its per-configuration softmaxes combined by their denominators are exactly one
 * softmax over the multiset); every other variant lists disjoint entries. Causal (pattern->causal)
 * caps every band at hi = 0.
 *
 * Forward is FlashAttention's online softmax per query row (running max m and sum l in the slot,
 * unnormalised output accumulated in place in out, rescaled when m grows); the cache keeps only the
 * row log-sum-exp (B,H,T). Backward recomputes each tile's probabilities from it, with
 * Dv_i = dO_i·O_i (Dao et al. 2022, Alg. 4).
 *
 * Internal to src/attn: variants build a pattern in init and use the pattern_* functions below as
 * their forward, backward, cost and mask. Their state must begin with the pare_attn_pattern.
 */
#ifndef PARE_ATTN_PATTERN_H
#define PARE_ATTN_PATTERN_H

#include "attn/attn.h"

typedef struct pare_attn_prog {
    int64_t start, stride, count; /* positions start + stride·r, r in [0, count) */
} pare_attn_prog;

typedef struct pare_attn_entry {
    pare_attn_prog q, k;
    int64_t lo, hi; /* key j visible for query i iff lo <= j - i <= hi (and j < L, and j <= i if causal) */
    int64_t head;
} pare_attn_entry;

typedef struct pare_attn_pattern {
    int64_t T, H;
    int64_t tq, tk;        /* tile: queries × keys */
    int causal;
    pare_attn_entry *e;    /* (ne), sorted by head after pattern_finish */
    int64_t ne, cap;
    int64_t *head;         /* (H+1): head h owns e[head[h] .. head[h+1]) */
} pare_attn_pattern;

pare_status pare_attn_pattern_init(pare_attn_pattern *p, int64_t T, int64_t H, int64_t tq, int64_t tk, int causal);
/* Append an entry of head h; empty ones (no position, empty band) are dropped. Bands are clamped to [-T, T]. */
pare_status pare_attn_pattern_add(pare_attn_pattern *p, int64_t h, pare_attn_prog q, pare_attn_prog k, int64_t lo,
                                  int64_t hi);
/* Group the entries by head (stable). Call once after the last add. */
pare_status pare_attn_pattern_finish(pare_attn_pattern *p);
void pare_attn_pattern_free(pare_attn_pattern *p);

/* Contiguous positions [a, b) as a progression (count 0 if b <= a). */
static inline pare_attn_prog pare_attn_range(int64_t a, int64_t b)
{
    return (pare_attn_prog){a, 1, b > a ? b - a : 0};
}

/* Scores the engine computes for head h at valid length L (whole tiles). */
int64_t pare_attn_pattern_pairs(const pare_attn_pattern *p, int64_t h, int64_t L);

/* Variant functions for states that begin with a pare_attn_pattern. */
pare_status pare_attn_pattern_forward(const pare_attn *a, const pare_attn_args *x);
pare_status pare_attn_pattern_backward(const pare_attn *a, const pare_attn_args *x);
/* The bf16 forward (attn.h forward_bf16; kernels/attn_half.h) and its slot (slot_bf16_bytes). */
pare_status pare_attn_pattern_forward_bf16(const pare_attn *a, const pare_attn_args *x);
size_t pare_attn_pattern_slot_bf16(const pare_attn *a);
void pare_attn_pattern_cost(const pare_attn *a, int64_t B, pare_attn_cost *c);
void pare_attn_pattern_mask(const pare_attn *a, int64_t h, uint8_t *mask);
void pare_attn_pattern_state_free(pare_attn *a); /* pattern_free + free(a->state) */

#endif
