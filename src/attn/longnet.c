/* longnet.c — LongNet dilated attention (Ding et al. 2023, "LongNet: Scaling Transformers to
 * 1,000,000,000 Tokens", §2.2–2.3): kind "longnet".
 *
 * Configurations (w_c, r_c) from two lists: segments "w_1,w_2,…" and rates "r_1,r_2,…". For each, the
 * sequence is cut into segments of w_c tokens (the last may be shorter) and every segment is sparsified
 * to the positions start + o + r_c·m; head h uses the offset o = h mod r_c, so the heads together cover
 * every position. Attention runs densely inside each sparsified segment (causally when causal). The
 * outputs O_c of the configurations are combined with weights proportional to their softmax
 * denominators s_c, O = Σ_c s_c·O_c / Σ_c s_c — which is exactly one softmax over the multiset union of
 * the configurations' keys: a pair present in two configurations counts twice. The engine (pattern.c)
 * sums its entries that way, so each (configuration, segment) is one entry (the progression against
 * itself) and no separate combination pass is needed. A position that no configuration selects for a
 * head gets output 0 there (the paper's rates start at 1, which covers all).
 *
 * Cost per head: Σ_c (T/w_c)·(w_c/r_c)² = Σ_c T·w_c/r_c² pairs: linear in T at fixed (w, r).
 * Errors: a segment longer than T, lists of different lengths, a rate larger than its segment.
 * Deliberately not here: the paper's distributed (sequence-parallel) algorithm and padding T to a
 * multiple of the segment (the last segment is simply shorter).
 */
#include "attn/attn.h"

#include <stdlib.h>

#include "attn/pattern.h"

#define LN_MAX_CONF 32

static const pare_opt_spec ln_opts[] = {
    {"segments", PARE_OPT_STRING, NULL, 0, 0, NULL,
     "segment lengths w, comma-separated, each <= T, e.g. \"2048,4096\""},
    {"rates", PARE_OPT_STRING, NULL, 0, 0, NULL, "dilation rate r per segment length, e.g. \"1,2\""},
};
static const pare_schema ln_schema = {
    "longnet", "LongNet dilated attention: segments × dilation rates, offsets by head, combined by softmax "
    "denominators; cost O(T·Σ w/r²)", ln_opts, 2};

static pare_status ln_init(pare_attn *a)
{
    const int64_t T = a->T, H = a->H;
    int64_t w[LN_MAX_CONF], r[LN_MAX_CONF];
    int nw, nr;
    PARE_TRY(pare_attn_parse_ints(w, &nw, LN_MAX_CONF, a, "segments", ',', 1, INT64_MAX / 4));
    PARE_TRY(pare_attn_parse_ints(r, &nr, LN_MAX_CONF, a, "rates", ',', 1, INT64_MAX / 4));
    if (nw != nr)
        return pare_fail(PARE_EINVAL, "longnet: option 'rates' = '%s' has %d values but segments = '%s' has %d",
                         pare_opt_str(&a->opts, "rates"), nr, pare_opt_str(&a->opts, "segments"), nw);
    for (int c = 0; c < nw; c++) {
        if (w[c] > T)
            return pare_fail(PARE_EINVAL, "longnet: option 'segments': segment length %lld is larger than T=%lld",
                             (long long)w[c], (long long)T);
        if (r[c] > w[c])
            return pare_fail(PARE_EINVAL, "longnet: option 'rates': rate %lld is larger than its segment length %lld",
                             (long long)r[c], (long long)w[c]);
    }
    pare_attn_pattern *p = calloc(1, sizeof *p);
    if (!p) return pare_fail(PARE_ENOMEM, "longnet: out of memory");
    a->state = p;
    pare_status st = pare_attn_pattern_init(p, T, H, 128, 128, a->causal);
    for (int64_t h = 0; st == PARE_OK && h < H; h++)
        for (int c = 0; st == PARE_OK && c < nw; c++) {
            const int64_t o = h % r[c];
            for (int64_t s0 = 0; st == PARE_OK && s0 < T; s0 += w[c]) {
                const int64_t s1 = s0 + w[c] < T ? s0 + w[c] : T, first = s0 + o;
                if (first >= s1) continue;
                const pare_attn_prog seg = {first, r[c], (s1 - 1 - first) / r[c] + 1};
                st = pare_attn_pattern_add(p, h, seg, seg, -T, T);
            }
        }
    if (st == PARE_OK) st = pare_attn_pattern_finish(p);
    if (st != PARE_OK) pare_attn_pattern_state_free(a);
    return st;
}

const pare_attn_variant pare_attn_longnet = {
    .schema = &ln_schema,
    .can_be_causal = 1,
    .causal_note = "j <= i inside every sparsified segment",
    .init = ln_init,
    .free = pare_attn_pattern_state_free,
    .forward = pare_attn_pattern_forward,
    .forward_bf16 = pare_attn_pattern_forward_bf16,
    .slot_bf16_bytes = pare_attn_pattern_slot_bf16,
    .backward = pare_attn_pattern_backward,
    .cost = pare_attn_pattern_cost,
    .mask = pare_attn_pattern_mask,
};
