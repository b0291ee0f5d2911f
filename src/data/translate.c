/* translate.c — a synthetic translation task: one small grammar rendered in two rule-related languages.
 *
 * A stand-in for WMT (no parallel corpus ships in Debian), so that encoder-decoder models, BLEU and
 * head pruning (Michel et al. 2019, "Are Sixteen Heads Really Better than One?", Table 1 on WMT) can be
 * exercised end to end; docs/tasks.md says what it is a proxy for and what it is not. A sentence is a
 * subject, a verb in a tense, and an optional object; a noun phrase has an optional adjective and is
 * singular or plural, with an optional number word:
 *
 *     source (SVO):   the big dog -s will chase a cat           [det|num] [adj] noun [-s]  [will] verb [-ed]  NP
 *     target (SOV):   god' gib' -en tac' -o esahc' -ru -a         noun' [adj'] [num'] [-en]  [NP' -o]  verb' [-ta|-ru] (-i|-a)
 *
 * Rules between the two: the object moves before the verb and takes an accusative suffix -o (SVO ->
 * SOV); adjectives and number words follow the noun; the plural is a suffix -en; tense is a suffix on
 * the verb (-ta past, -ru future, none present) where the source uses "will" / "-ed"; the verb agrees
 * with the subject's number (-i singular, -a plural); articles are dropped (the target has none). Every
 * content word goes through a bilingual lexicon, a seeded permutation within its class (noun, verb,
 * adjective, number), so ids do not line up between the languages. Translation is deterministic given
 * the source: a model can reach BLEU 100, but only by learning the lexicon, the reordering and the
 * agreement over a distance.
 *
 * Dataset layout (task.h): src_tokens (n, S) the source; tokens (n, T) = BOS + target (teacher forcing);
 * labels (n, T) = target + EOS, -1 after; lengths = target length + 1. Both vocabularies keep PAD 0,
 * BOS 1, EOS 2. vocab_names are the target's.
 *
 * Entry point: pare_task_translate (registry).
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "data/task_impl.h"

enum { MAX_WORDS = 16, NNUM = 4 };
/* source ids */
enum { S_THE = 3, S_A, S_PL, S_WILL, S_ED, S_NUM0 };
/* target ids */
enum { T_PL = 3, T_ACC, T_PAST, T_FUT, T_SG, T_PLAGR, T_NUM0 };

static const char *const nouns[MAX_WORDS] = {"dog", "cat", "bird", "fox", "horse", "child", "king", "farmer",
                                             "wolf", "sailor", "baker", "goat", "mouse", "queen", "judge", "poet"};
static const char *const verbs[MAX_WORDS] = {"see", "chase", "help", "call", "find", "like", "feed", "meet",
                                             "follow", "greet", "push", "watch", "hear", "teach", "carry", "paint"};
static const char *const adjs[MAX_WORDS] = {"big", "small", "red", "old", "young", "happy", "tall", "green",
                                            "brave", "quiet", "lazy", "quick", "dark", "kind", "wild", "calm"};
static const char *const nums[NNUM] = {"two", "three", "four", "many"};

typedef struct lang {
    int32_t nn, nv, na;            /* nouns, verbs, adjectives in use */
    int32_t perm[3][MAX_WORDS];    /* lexicon: source word i of class c is target word perm[c][i] */
    int32_t nperm[NNUM];           /* numbers */
} lang;

static int32_t src_noun(const lang *g, int32_t i) { (void)g; return S_NUM0 + NNUM + i; }
static int32_t src_verb(const lang *g, int32_t i) { return S_NUM0 + NNUM + g->nn + i; }
static int32_t src_adj(const lang *g, int32_t i) { return S_NUM0 + NNUM + g->nn + g->nv + i; }
static int32_t src_vocab(const lang *g) { return S_NUM0 + NNUM + g->nn + g->nv + g->na; }
static int32_t tgt_noun(const lang *g, int32_t i) { return T_NUM0 + NNUM + g->perm[0][i]; }
static int32_t tgt_verb(const lang *g, int32_t i) { return T_NUM0 + NNUM + g->nn + g->perm[1][i]; }
static int32_t tgt_adj(const lang *g, int32_t i) { return T_NUM0 + NNUM + g->nn + g->nv + g->perm[2][i]; }
static int32_t tgt_vocab(const lang *g) { return T_NUM0 + NNUM + g->nn + g->nv + g->na; }

static void shuffle(int32_t *a, int32_t n, pare_rng *r)
{
    for (int32_t i = 0; i < n; i++) a[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)pare_rng_below(r, (uint64_t)i + 1), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

typedef struct phrase { int32_t noun, adj, num, plural, det; } phrase; /* adj, num: -1 for none */

typedef struct probs { double adj, plural, number, object; } probs;

static phrase draw_phrase(const lang *g, pare_rng *r, const probs *p)
{
    phrase f = {.noun = (int32_t)pare_rng_below(r, (uint64_t)g->nn), .adj = -1, .num = -1};
    if (pare_rng_uniform(r) < p->adj) f.adj = (int32_t)pare_rng_below(r, (uint64_t)g->na);
    f.plural = pare_rng_uniform(r) < p->plural;
    if (f.plural && pare_rng_uniform(r) < p->number) f.num = (int32_t)pare_rng_below(r, NNUM);
    f.det = pare_rng_below(r, 2) ? S_THE : S_A;
    return f;
}

/* Source: [det | num] [adj] noun [-s]. Target: noun' [adj'] [num'] [-en]. Return the new lengths. */
static int src_phrase(const lang *g, const phrase *f, int32_t *s, int k)
{
    s[k++] = f->num >= 0 ? S_NUM0 + f->num : f->plural ? S_THE : f->det;
    if (f->adj >= 0) s[k++] = src_adj(g, f->adj);
    s[k++] = src_noun(g, f->noun);
    if (f->plural) s[k++] = S_PL;
    return k;
}
static int tgt_phrase(const lang *g, const phrase *f, int32_t *t, int k)
{
    t[k++] = tgt_noun(g, f->noun);
    if (f->adj >= 0) t[k++] = tgt_adj(g, f->adj);
    if (f->num >= 0) t[k++] = T_NUM0 + g->nperm[f->num];
    if (f->plural) t[k++] = T_PL;
    return k;
}

enum { SRC_MAX = 10, TGT_MAX = 12 }; /* 4 + 2 + 4 source words; 4 + 5 + 3 target words */

static pare_status split(pare_dataset *d, const lang *g, const probs *p, pare_rng *r, int64_t n, const char *name)
{
    int64_t T = TGT_MAX + 1, S = SRC_MAX;
    int32_t V = tgt_vocab(g);
    PARE_TRY(pare_dataset_alloc(d, "", PARE_TASK_LM, n, T, V, V));
    pare_task_name_split(d, "translate", name);
    d->S = S, d->src_vocab = src_vocab(g);
    d->src_tokens = pare_calloc((size_t)(n > 0 ? n * S : 1) * sizeof(int32_t));
    d->src_lengths = pare_calloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (!d->src_tokens || !d->src_lengths) return pare_fail(PARE_ENOMEM, "translate: out of memory for %lld sources", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        phrase subj = draw_phrase(g, r, p), obj = draw_phrase(g, r, p);
        int has_obj = pare_rng_uniform(r) < p->object;
        int32_t verb = (int32_t)pare_rng_below(r, (uint64_t)g->nv), tense = (int32_t)pare_rng_below(r, 3); /* present, past, future */
        int32_t *s = d->src_tokens + i * S, tgt[TGT_MAX];
        int ks = src_phrase(g, &subj, s, 0);
        if (tense == 2) s[ks++] = S_WILL;
        s[ks++] = src_verb(g, verb);
        if (tense == 1) s[ks++] = S_ED;
        if (has_obj) ks = src_phrase(g, &obj, s, ks);
        int kt = tgt_phrase(g, &subj, tgt, 0);
        if (has_obj) {
            kt = tgt_phrase(g, &obj, tgt, kt);
            tgt[kt++] = T_ACC;
        }
        tgt[kt++] = tgt_verb(g, verb);
        if (tense) tgt[kt++] = tense == 1 ? T_PAST : T_FUT;
        tgt[kt++] = subj.plural ? T_PLAGR : T_SG;
        d->src_lengths[i] = ks;
        int32_t *x = d->tokens + i * T, *y = d->labels + i * T;
        x[0] = PARE_TOKEN_BOS;
        for (int k = 0; k < kt; k++) x[k + 1] = y[k] = tgt[k];
        y[kt] = PARE_TOKEN_EOS;
        d->lengths[i] = kt + 1;
    }
    /* target names: the source word it translates, reversed, with a prime ("dog" -> "god'") */
    char store[64 + 3 * MAX_WORDS + NNUM][16];
    const char *nm[64 + 3 * MAX_WORDS + NNUM];
    const char *fixed[] = {"<pad>", "<bos>", "<eos>", "-en", "-o", "-ta", "-ru", "-i", "-a"};
    for (int32_t j = 0; j < T_NUM0; j++) nm[j] = fixed[j];
    for (int c = 0; c < 4; c++) {
        int32_t cnt = c == 0 ? NNUM : c == 1 ? g->nn : c == 2 ? g->nv : g->na;
        for (int32_t i = 0; i < cnt; i++) {
            const char *w = c == 0 ? nums[i] : c == 1 ? nouns[i] : c == 2 ? verbs[i] : adjs[i];
            int32_t id = c == 0 ? T_NUM0 + g->nperm[i] : c == 1 ? tgt_noun(g, i) : c == 2 ? tgt_verb(g, i) : tgt_adj(g, i);
            size_t len = strlen(w);
            for (size_t k = 0; k < len; k++) store[id][k] = w[len - 1 - k];
            store[id][len] = '\'', store[id][len + 1] = 0;
            nm[id] = store[id];
        }
    }
    return pare_dataset_set_vocab(d, nm, V);
}

static pare_status translate_make(pare_dataset *train, pare_dataset *test, const pare_options *o)
{
    lang g = {.nn = pare_opt_int(o, "n_nouns"), .nv = pare_opt_int(o, "n_verbs"), .na = pare_opt_int(o, "n_adjectives")};
    probs p = {pare_opt_num(o, "p_adjective"), pare_opt_num(o, "p_plural"), pare_opt_num(o, "p_number"),
               pare_opt_num(o, "p_object")};
    pare_rng lex = pare_task_stream(o, 3), rtr, rte; /* one lexicon for both splits */
    shuffle(g.perm[0], g.nn, &lex), shuffle(g.perm[1], g.nv, &lex), shuffle(g.perm[2], g.na, &lex);
    shuffle(g.nperm, NNUM, &lex);
    pare_task_streams(o, &rtr, &rte);
    PARE_TRY(split(test, &g, &p, &rte, (int64_t)pare_opt_num(o, "n_test"), "test"));
    return split(train, &g, &p, &rtr, (int64_t)pare_opt_num(o, "n_train"), "train");
}

static const pare_opt_spec translate_opts[] = {
    {"seed", PARE_OPT_INT, "1", 0, 9007199254740992.0, NULL, "generator seed (same seed, same data and lexicon)"},
    {"n_train", PARE_OPT_INT, "8000", 1, 1e8, NULL, "training sentence pairs"},
    {"n_test", PARE_OPT_INT, "500", 1, 1e8, NULL, "test sentence pairs"},
    {"n_nouns", PARE_OPT_INT, "12", 1, MAX_WORDS, NULL, "nouns in the lexicon"},
    {"n_verbs", PARE_OPT_INT, "8", 1, MAX_WORDS, NULL, "verbs in the lexicon"},
    {"n_adjectives", PARE_OPT_INT, "8", 1, MAX_WORDS, NULL, "adjectives in the lexicon"},
    {"p_adjective", PARE_OPT_FLOAT, "0.4", 0, 1, NULL, "probability that a noun phrase has an adjective"},
    {"p_plural", PARE_OPT_FLOAT, "0.4", 0, 1, NULL, "probability that a noun phrase is plural"},
    {"p_number", PARE_OPT_FLOAT, "0.5", 0, 1, NULL, "probability that a plural noun phrase has a number word"},
    {"p_object", PARE_OPT_FLOAT, "0.7", 0, 1, NULL, "probability that a sentence has an object"},
};
static const pare_schema translate_schema = {
    "translate", "sequence to sequence: a small grammar in two rule-related languages (SVO -> SOV, suffixes, a "
                 "lexicon); a proxy for WMT, for kind=encdec models and BLEU",
    translate_opts, (int)(sizeof translate_opts / sizeof translate_opts[0])};

const pare_task_desc pare_task_translate = {&translate_schema, translate_make};
