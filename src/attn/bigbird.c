/* bigbird.c — BigBird block-sparse attention (Zaheer et al. 2020, the ITC form): kind "bigbird".
 *
 * The sequence is cut into nb = T/b blocks of b = block tokens (b must divide T). Query block qb sees:
 *   all keys                              if qb < g (the first g blocks are global)
 *   key blocks kb < g                     (every block attends the global blocks)
 *   key blocks |kb − qb| <= (w−1)/2       (the window of w blocks, w odd)
 *   r random key blocks                   chosen among the blocks that are neither global nor in the
 *                                         window, per (head, query block), from `seed` (deterministic)
 * Causal adds j <= i inside this pattern; the random blocks are then drawn among the past blocks
 * (before the window), so they are never wasted on masked keys. A row with fewer candidates than r
 * takes all of them.
 *
 * Entries of the engine (pattern.c), no pair listed twice: global rows × all keys; other rows × global
 * keys; per non-global query block, its window (global blocks excluded) and each random block.
 * Cost per head ≈ T·b·(w + r + g) + g·b·T pairs: linear in T at a fixed block size. Memory O(T).
 * Deliberately not here: BigBird-ETC's extra global tokens, and padding T up to a multiple of the block.
 */
#include "attn/attn.h"

#include <stdlib.h>
#include <string.h>

#include "attn/pattern.h"

static const pare_opt_spec bb_opts[] = {
    {"block", PARE_OPT_INT, "64", 1, 1e6, NULL, "block size b in tokens (must divide T)"},
    {"window", PARE_OPT_INT, "3", 1, 1e6, NULL, "window blocks w, odd: the own block and (w-1)/2 each side"},
    {"random", PARE_OPT_INT, "3", 0, 1e6, NULL, "random key blocks r per query block"},
    {"global", PARE_OPT_INT, "2", 0, 1e6, NULL, "global blocks g (the first g blocks)"},
    {"seed", PARE_OPT_INT, "0", 0, 1e9, NULL, "seed of the random blocks (per head and query block)"},
};
static const pare_schema bb_schema = {
    "bigbird", "BigBird: random + window + global blocks; cost O(T·b·(w+r+g))", bb_opts, 5};

typedef struct bb_state {
    pare_attn_pattern p; /* first: the engine's functions take the state as a pattern */
    int64_t nb, r;
    int64_t *rnd; /* (H, nb, r) chosen key blocks, -1 = none */
} bb_state;

static void bb_free(pare_attn *a)
{
    bb_state *s = a->state;
    if (s) free(s->rnd);
    pare_attn_pattern_state_free(a);
}

/* The positions a sparse Fisher–Yates shuffle has written: index -> value, open addressing over cap
 * (a power of two >= 4r) slots, key -1 = empty. */
typedef struct bb_swaps {
    int64_t *key, *val;
    int64_t cap;
} bb_swaps;

static int64_t *bb_slot(const bb_swaps *m, int64_t i)
{
    uint64_t j = ((uint64_t)i * 0x9E3779B97F4A7C15ull) & (uint64_t)(m->cap - 1);
    while (m->key[j] != -1 && m->key[j] != i) j = (j + 1) & (uint64_t)(m->cap - 1);
    return &m->key[j];
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Draw the random blocks of (h, qb) into out (r slots, -1 padded, the chosen ones ascending).
 * The candidates, in ascending order, are the blocks kb >= g outside the window |kb - qb| <= wh
 * (causal: before it): [g, qb - wh) then [max(g, qb + wh + 1), nb). A partial Fisher–Yates over that
 * list picks r of them; the list is not built: the candidate at index i is computed, and only the
 * positions a swap wrote are kept (m), so a draw costs O(r) whatever nb. (Building the list cost O(nb)
 * per query block, O(nb²) per head: hours at T = 10^6 with block = 1.) The draws are the same as
 * over the built list: tests/test_attn.c compares them with that reference. */
static void bb_draw(int64_t *out, bb_swaps *m, const pare_rng *base, int64_t h, int64_t qb, int64_t nb, int64_t g,
                    int64_t wh, int64_t r, int causal)
{
    const int64_t nl = qb - wh - g > 0 ? qb - wh - g : 0, rs = qb + wh + 1 > g ? qb + wh + 1 : g;
    const int64_t nc = nl + (causal || rs >= nb ? 0 : nb - rs), take = r < nc ? r : nc;
    pare_rng rng = pare_rng_split(base, (uint64_t)(h * nb + qb));
    if (take > 0) memset(m->key, 0xff, (size_t)m->cap * sizeof *m->key);
    for (int64_t t = 0; t < take; t++) { /* partial Fisher–Yates: swap positions t and u >= t */
        const int64_t u = t + (int64_t)pare_rng_below(&rng, (uint64_t)(nc - t));
        int64_t *kt = bb_slot(m, t), vt = *kt == t ? m->val[kt - m->key] : (t < nl ? g + t : rs + t - nl);
        int64_t *ku = bb_slot(m, u), vu = *ku == u ? m->val[ku - m->key] : (u < nl ? g + u : rs + u - nl);
        *ku = u, m->val[ku - m->key] = vt; /* position t is never read again: only u is stored */
        out[t] = vu;
    }
    qsort(out, (size_t)take, sizeof *out, cmp_i64); /* sorted, so entries run left to right */
    for (int64_t t = take; t < r; t++) out[t] = -1;
}

static pare_status bb_build(bb_state *s, const pare_attn *a, int64_t bs, int64_t w, int64_t g, uint64_t seed)
{
    const int64_t T = a->T, H = a->H, nb = s->nb, r = s->r, wh = (w - 1) / 2;
    pare_attn_pattern *p = &s->p;
    bb_swaps m = {NULL, NULL, 4};
    while (m.cap < 4 * r) m.cap *= 2;
    m.key = malloc((size_t)m.cap * sizeof *m.key), m.val = malloc((size_t)m.cap * sizeof *m.val);
    if (!m.key || !m.val) {
        free(m.key), free(m.val);
        return pare_fail(PARE_ENOMEM, "bigbird: out of memory");
    }
    pare_rng base;
    pare_rng_seed(&base, seed);
    pare_status st = PARE_OK;
    for (int64_t h = 0; st == PARE_OK && h < H; h++) {
        if (g > 0) {
            st = pare_attn_pattern_add(p, h, pare_attn_range(0, g * bs), pare_attn_range(0, T), -T, T);
            if (st == PARE_OK)
                st = pare_attn_pattern_add(p, h, pare_attn_range(g * bs, T), pare_attn_range(0, g * bs), -T, T);
        }
        for (int64_t qb = g; st == PARE_OK && qb < nb; qb++) {
            const pare_attn_prog qblk = pare_attn_range(qb * bs, qb * bs + bs);
            const int64_t k0 = qb - wh > g ? qb - wh : g, k1 = qb + wh < nb - 1 ? qb + wh : nb - 1;
            st = pare_attn_pattern_add(p, h, qblk, pare_attn_range(k0 * bs, (k1 + 1) * bs), -T, T);
            int64_t *rb = s->rnd + (h * nb + qb) * r;
            bb_draw(rb, &m, &base, h, qb, nb, g, wh, r, a->causal);
            for (int64_t t = 0; st == PARE_OK && t < r && rb[t] >= 0; t++)
                st = pare_attn_pattern_add(p, h, qblk, pare_attn_range(rb[t] * bs, rb[t] * bs + bs), -T, T);
        }
    }
    free(m.key), free(m.val);
    return st;
}

static pare_status bb_init(pare_attn *a)
{
    const int64_t T = a->T, bs = pare_opt_int(&a->opts, "block"), w = pare_opt_int(&a->opts, "window"),
                  r = pare_opt_int(&a->opts, "random"), g = pare_opt_int(&a->opts, "global");
    if (bs > T || T % bs)
        return pare_fail(PARE_EINVAL, "bigbird: option 'block' = %lld must divide T=%lld", (long long)bs, (long long)T);
    const int64_t nb = T / bs;
    if (w % 2 == 0)
        return pare_fail(PARE_EINVAL, "bigbird: option 'window' = %lld must be odd (own block and (w-1)/2 each side)",
                         (long long)w);
    if (w > nb)
        return pare_fail(PARE_EINVAL, "bigbird: option 'window' = %lld blocks of %lld tokens is larger than T=%lld",
                         (long long)w, (long long)bs, (long long)T);
    if (g > nb)
        return pare_fail(PARE_EINVAL, "bigbird: option 'global' = %lld blocks is more than the T/block = %lld blocks",
                         (long long)g, (long long)nb);
    if (r > 0 && r > nb - g - w)
        return pare_fail(PARE_EINVAL, "bigbird: option 'random' = %lld does not fit: T/block = %lld blocks leave %lld "
                         "outside the %lld global and %lld window blocks", (long long)r, (long long)nb,
                         (long long)(nb - g - w > 0 ? nb - g - w : 0), (long long)g, (long long)w);
    bb_state *s = calloc(1, sizeof *s);
    if (!s) return pare_fail(PARE_ENOMEM, "bigbird: out of memory");
    a->state = s;
    s->nb = nb, s->r = r;
    s->rnd = malloc((size_t)(a->H * nb * (r > 0 ? r : 1)) * sizeof *s->rnd);
    pare_status st = s->rnd ? PARE_OK : pare_fail(PARE_ENOMEM, "bigbird: out of memory");
    if (st == PARE_OK) st = pare_attn_pattern_init(&s->p, T, a->H, bs < 64 ? bs : 64, bs < 64 ? bs : 64, a->causal);
    if (st == PARE_OK) st = bb_build(s, a, bs, w, g, (uint64_t)pare_opt_int(&a->opts, "seed"));
    if (st == PARE_OK) st = pare_attn_pattern_finish(&s->p);
    if (st != PARE_OK) bb_free(a);
    return st;
}

int64_t pare_attn_bigbird_random(const pare_attn *a, int64_t h, int64_t qb, int64_t *kb, int64_t cap)
{
    if (a->v != &pare_attn_bigbird || h < 0 || h >= a->H) return 0;
    const bb_state *s = a->state;
    const int64_t g = pare_opt_int(&a->opts, "global");
    if (qb < g || qb >= s->nb) return 0;
    int64_t n = 0;
    for (int64_t t = 0; t < s->r; t++) {
        const int64_t v = s->rnd[(h * s->nb + qb) * s->r + t];
        if (v < 0) break;
        if (n < cap) kb[n] = v;
        n++;
    }
    return n;
}

const pare_attn_variant pare_attn_bigbird = {
    .schema = &bb_schema,
    .can_be_causal = 1,
    .causal_note = "j <= i inside the pattern; random blocks drawn among the past blocks",
    .init = bb_init,
    .free = bb_free,
    .forward = pare_attn_pattern_forward,
    .forward_bf16 = pare_attn_pattern_forward_bf16,
    .slot_bf16_bytes = pare_attn_pattern_slot_bf16,
    .backward = pare_attn_pattern_backward,
    .cost = pare_attn_pattern_cost,
    .mask = pare_attn_pattern_mask,
};
