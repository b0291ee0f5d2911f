/* attn.c — the attention registry, instance creation and the checked entry points of attn.h, plus the
 * helpers variant files share (list options, thread slots).
 *
 * The entry points check what every variant relies on (pointers, strides, buffer sizes) once, so the
 * variants' forward/backward trust their arguments. Deliberately not here: any attention arithmetic
 * (full.c, flash.c, pattern.c and the variant files).
 */
#include "attn/attn.h"
#include "attn/attn_internal.h"
#include "kernels/attn_half.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const pare_attn_variant *const variants[] = {
    [PARE_ATTN_FULL] = &pare_attn_full,
    [PARE_ATTN_FLASH] = &pare_attn_flash,
    [PARE_ATTN_BLOCK] = &pare_attn_block,
    [PARE_ATTN_FIXED] = &pare_attn_fixed,
    [PARE_ATTN_LONGFORMER] = &pare_attn_longformer,
    [PARE_ATTN_BIGBIRD] = &pare_attn_bigbird,
    [PARE_ATTN_LONGNET] = &pare_attn_longnet,
    [PARE_ATTN_LINEAR] = &pare_attn_linear,
    [PARE_ATTN_LINFORMER] = &pare_attn_linformer,
    [PARE_ATTN_PERFORMER] = &pare_attn_performer,
    [PARE_ATTN_REFORMER] = &pare_attn_reformer,
    [PARE_ATTN_AXIAL] = &pare_attn_axial,
    [PARE_ATTN_LSRA] = &pare_attn_lsra,
    [PARE_ATTN_TOKEN_PRUNE] = &pare_attn_token_prune,
};
_Static_assert(sizeof variants / sizeof variants[0] == PARE_ATTN_KIND_COUNT, "attention registry out of date");

int pare_attn_count(void) { return PARE_ATTN_KIND_COUNT; }
const pare_attn_variant *pare_attn_at(int i) { return i >= 0 && i < PARE_ATTN_KIND_COUNT ? variants[i] : NULL; }

const char *pare_attn_kinds(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < PARE_ATTN_KIND_COUNT && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %s" : "%s", variants[i]->schema->name);
    return buf;
}

const pare_attn_variant *pare_attn_find(const char *kind)
{
    for (int i = 0; i < PARE_ATTN_KIND_COUNT; i++)
        if (kind && !strcmp(variants[i]->schema->name, kind)) return variants[i];
    char list[256];
    pare_fail(PARE_EINVAL, "unknown attention kind '%s' (valid: %s)", kind ? kind : "(null)",
              pare_attn_kinds(list, sizeof list));
    return NULL;
}

pare_status pare_attn_create_opts(pare_attn **out, const pare_attn_variant *v, const pare_options *o, int64_t T,
                                  int64_t H, int64_t D, int causal)
{
    *out = NULL;
    const char *name = v->schema->name;
    if (o->schema != v->schema)
        return pare_fail(PARE_EINVAL, "%s: options were resolved against the schema of '%s'", name,
                         o->schema ? o->schema->name : "(none)");
    if (T < 1 || H < 1 || D < 1)
        return pare_fail(PARE_ESHAPE, "%s: T=%lld, H=%lld, D=%lld: all must be >= 1", name, (long long)T,
                         (long long)H, (long long)D);
    if (T > INT32_MAX)
        return pare_fail(PARE_ESHAPE, "%s: T=%lld exceeds the int32 lengths' range", name, (long long)T);
    if (causal && !v->can_be_causal)
        return pare_fail(PARE_EINVAL, "%s: causal=true is not supported: %s", name,
                         v->causal_note ? v->causal_note : "this attention cannot be causal");
    pare_attn *a = calloc(1, sizeof *a);
    if (!a) return pare_fail(PARE_ENOMEM, "%s: out of memory", name);
    a->v = v, a->opts = *o, a->T = T, a->H = H, a->D = D, a->causal = causal != 0;
    pare_status st = v->init(a);
    if (st != PARE_OK) {
        free(a);
        return st;
    }
    *out = a;
    return PARE_OK;
}

pare_status pare_attn_create(pare_attn **out, const char *kind, const pare_kv *kv, int nkv, int64_t T, int64_t H,
                             int64_t D, int causal)
{
    *out = NULL;
    const pare_attn_variant *v = pare_attn_find(kind);
    if (!v) return PARE_EINVAL;
    pare_options *o = malloc(sizeof *o); /* ~13 KB: off the stack */
    if (!o) return pare_fail(PARE_ENOMEM, "%s: out of memory", kind);
    pare_status st = pare_opts_resolve(o, v->schema, kv, nkv);
    if (st == PARE_OK) st = pare_attn_create_opts(out, v, o, T, H, D, causal);
    free(o);
    return st;
}

void pare_attn_free(pare_attn *a)
{
    if (!a) return;
    if (a->v->free) a->v->free(a);
    else free(a->state);
    free(a);
}

const char *pare_attn_name(const pare_attn *a) { return a->v->schema->name; }

/* ---- configurations ---- */

/* Shortest "%.Ng" that reads back as the same double: a table's window = 32 and the text "window=32"
 * give one spec, and 0.1 stays "0.1". */
static void number_text(char *buf, size_t n, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* c->spec from c->opts: "kind" then the given options in schema order. A value that the spec syntax
 * cannot carry (';' separates layers, '=' keys) is refused, so the text always reads back. */
static pare_status canonical_spec(pare_attn_config *c)
{
    const pare_schema *s = c->v->schema;
    size_t used = (size_t)snprintf(c->spec, sizeof c->spec, "%s", s->name);
    int first = 1;
    for (int i = 0; i < s->nopts; i++) {
        const pare_optval *v = &c->opts.v[i];
        if (!v->given) continue;
        char num[40];
        const char *text = v->str;
        if (s->opts[i].type == PARE_OPT_INT || s->opts[i].type == PARE_OPT_FLOAT) number_text(num, sizeof num, v->num), text = num;
        if (strpbrk(text, ";="))
            return pare_fail(PARE_EINVAL, "%s: option '%s' = '%s' cannot be written in an attention spec (';' and '=' "
                             "are reserved)", s->name, s->opts[i].key, text);
        used += (size_t)snprintf(c->spec + used, used < sizeof c->spec ? sizeof c->spec - used : 0, "%c%s=%s",
                                 first ? ':' : ',', s->opts[i].key, text);
        first = 0;
    }
    if (used >= sizeof c->spec)
        return pare_fail(PARE_EINVAL, "%s: the options do not fit in an attention spec (%zu bytes)", s->name,
                         sizeof c->spec);
    return PARE_OK;
}

pare_status pare_attn_config_new(pare_attn_config **out, const char *kind, const pare_kv *kv, int nkv)
{
    *out = NULL;
    const pare_attn_variant *v = pare_attn_find(kind);
    if (!v) return PARE_EINVAL;
    pare_attn_config *c = calloc(1, sizeof *c); /* ~13 KB of options: on the heap */
    if (!c) return pare_fail(PARE_ENOMEM, "%s: out of memory", kind);
    c->refs = 1, c->v = v;
    pare_status st = pare_opts_resolve(&c->opts, v->schema, kv, nkv);
    if (st == PARE_OK) st = canonical_spec(c);
    if (st != PARE_OK) {
        free(c);
        return st;
    }
    *out = c;
    return PARE_OK;
}

pare_attn_config *pare_attn_config_default(void) { return &pare_attn_full_default; }

pare_attn_config *pare_attn_config_retain(pare_attn_config *c)
{
    if (c && c->refs > 0) c->refs++;
    return c;
}

void pare_attn_config_release(pare_attn_config *c)
{
    if (!c || c->refs < 0 || --c->refs > 0) return;
    pare_attn_free(c->kept);
    free(c);
}

pare_status pare_attn_config_keep(pare_attn_config *c, int64_t T, int64_t H, int64_t D, int causal)
{
    if (c->refs < 0 || c->kept)
        return pare_fail(PARE_EINVAL, "%s: this attention configuration %s", c->spec,
                         c->kept ? "already keeps an instance" : "is static and keeps no instance");
    return pare_attn_create_opts(&c->kept, c->v, &c->opts, T, H, D, causal);
}

pare_status pare_attn_config_instance(pare_attn **out, int *owned, const pare_attn_config *c, int64_t T, int64_t H,
                                      int64_t D, int causal)
{
    const pare_attn *k = c->kept;
    if (k && k->T == T && k->H == H && k->D == D && k->causal == (causal != 0)) {
        *out = c->kept, *owned = 0;
        return PARE_OK;
    }
    *owned = 1;
    return pare_attn_create_opts(out, c->v, &c->opts, T, H, D, causal);
}

int pare_attn_config_equal(const pare_attn_config *a, const pare_attn_config *b)
{
    if (a == b) return 1;
    if (!a || !b || a->v != b->v) return 0;
    for (int i = 0; i < a->v->schema->nopts; i++) {
        const pare_optval *x = &a->opts.v[i], *y = &b->opts.v[i];
        pare_opt_type t = a->v->schema->opts[i].type;
        if (t == PARE_OPT_INT || t == PARE_OPT_FLOAT || t == PARE_OPT_BOOL) { /* "5.0" and "5" are one value */
            if (x->num != y->num && !(isnan(x->num) && isnan(y->num))) return 0;
        } else if (strcmp(x->str, y->str) != 0) return 0;
    }
    return 1;
}

void pare_attn_cost_of(const pare_attn *a, int64_t B, pare_attn_cost *c)
{
    memset(c, 0, sizeof *c);
    a->v->cost(a, B, c);
}

size_t pare_attn_cache_bytes(const pare_attn *a, int64_t B)
{
    pare_attn_cost c;
    pare_attn_cost_of(a, B, &c);
    return c.cache_bytes;
}

/* min(B·H, omp_get_max_threads()), >= 1: the slots of pare_attn_work_bytes and pare_attn_bf16_work_bytes. */
static size_t work_slots(const pare_attn *a, int64_t B)
{
    int64_t slots = omp_get_max_threads();
    if (slots > B * a->H) slots = B * a->H;
    return slots < 1 ? 1 : (size_t)slots;
}

size_t pare_attn_work_bytes(const pare_attn *a, int64_t B)
{
    pare_attn_cost c;
    pare_attn_cost_of(a, B, &c);
    return c.slot_bytes * work_slots(a, B);
}

int pare_attn_threads(size_t work_bytes, size_t slot_bytes, int64_t BH)
{
    if (slot_bytes == 0) return (int)(BH < omp_get_max_threads() ? BH : omp_get_max_threads());
    size_t n = work_bytes / slot_bytes;
    if ((int64_t)n > BH) n = (size_t)BH;
    /* never more than OpenMP's team: a workspace sized for something else (a bf16 training executor's is larger)
     * must not make a parallel region of 16 threads on a 1-thread run (it did: 6-12x slower bf16 training) */
    if (n > (size_t)omp_get_max_threads()) n = (size_t)omp_get_max_threads();
    if (n > 4096) n = 4096;
    return (int)n;
}

/* The checks shared by forward, backward and the bf16 forward (bf16 = 1: q16, k16, v16 instead of q, k, v, and
 * the bf16 scratch). */
static pare_status check_args(const pare_attn *a, const pare_attn_args *x, int backward, int bf16)
{
    const char *name = a->v->schema->name, *call = backward ? "backward" : bf16 ? "bf16 forward" : "forward";
    const int64_t C = a->H * a->D;
    if (x->B < 1) return pare_fail(PARE_EINVAL, "%s %s: B=%lld must be >= 1", name, call, (long long)x->B);
    if (bf16 ? !x->q16 || !x->k16 || !x->v16 : !x->q || !x->k || !x->v)
        return pare_fail(PARE_EINVAL, "%s %s: %s must all be given", name, call, bf16 ? "q16, k16 and v16" : "q, k and v");
    if (bf16 && (x->q || x->k || x->v))
        return pare_fail(PARE_EINVAL, "%s %s: give the bf16 views q16, k16, v16 only (q, k, v must be NULL)", name, call);
    if (bf16 && (x->impl16 < 0 || x->impl16 >= PARE_ATTN16_IMPL_COUNT))
        return pare_fail(PARE_EINVAL, "%s %s: impl16=%d is not a pare_attn16_impl", name, call, x->impl16);
    if (x->ld < C)
        return pare_fail(PARE_EINVAL, "%s %s: ld=%lld is smaller than H·D=%lld", name, call, (long long)x->ld,
                         (long long)C);
    if (!x->out || x->ldo < C)
        return pare_fail(PARE_EINVAL, "%s %s: out must be given with ldo >= H·D=%lld (ldo=%lld)", name, call,
                         (long long)C, (long long)x->ldo);
    pare_attn_cost c;
    pare_attn_cost_of(a, x->B, &c);
    if (c.cache_bytes && !x->cache)
        return pare_fail(PARE_EINVAL, "%s %s: cache (%zu bytes) missing", name, call, c.cache_bytes);
    const size_t slot = bf16 ? a->v->slot_bf16_bytes(a) : c.slot_bytes;
    if (slot && (!x->work || x->work_bytes < slot))
        return pare_fail(PARE_EINVAL, "%s %s: work_bytes=%zu is smaller than one slot (%zu bytes; see "
                         "pare_attn_%swork_bytes)", name, call, x->work ? x->work_bytes : (size_t)0, slot,
                         bf16 ? "bf16_" : "");
    if (pare_attn_param_count(a) > 0 && !x->params)
        return pare_fail(PARE_EINVAL, "%s %s: params (%lld floats) missing", name, call,
                         (long long)pare_attn_param_count(a));
    if (backward) {
        if (!x->dout) return pare_fail(PARE_EINVAL, "%s backward: dout missing", name);
        if (!x->dq || !x->dk || !x->dv || x->ldd < C)
            return pare_fail(PARE_EINVAL,
                             "%s backward: dq, dk and dv must all be given with ldd >= H·D=%lld (ldd=%lld)", name,
                             (long long)C, (long long)x->ldd);
        if (pare_attn_param_count(a) > 0 && !x->dparams)
            return pare_fail(PARE_EINVAL, "%s backward: dparams missing", name);
        if (x->dprobs && !a->v->probs_cache)
            return pare_fail(PARE_EINVAL, "%s backward: a gradient for the attention probabilities was given, but %s "
                             "keeps no probabilities (only full and token_prune do)", name, name);
    }
    if (x->lengths)
        for (int64_t b = 0; b < x->B; b++)
            if (x->lengths[b] < 0 || x->lengths[b] > a->T)
                return pare_fail(PARE_EINVAL, "%s %s: lengths[%lld]=%d is outside [0, T=%lld]", name, call,
                                 (long long)b, x->lengths[b], (long long)a->T);
    return PARE_OK;
}

pare_status pare_attn_forward(const pare_attn *a, const pare_attn_args *x)
{
    PARE_TRY(check_args(a, x, 0, 0));
    return a->v->forward(a, x);
}

pare_status pare_attn_backward(const pare_attn *a, const pare_attn_args *x)
{
    PARE_TRY(check_args(a, x, 1, 0));
    return a->v->backward(a, x);
}

int pare_attn_variant_has_bf16(const pare_attn_variant *v) { return v && v->forward_bf16 != NULL; }
int pare_attn_has_bf16(const pare_attn *a) { return pare_attn_variant_has_bf16(a->v); }

const char *pare_attn_bf16_kinds(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < PARE_ATTN_KIND_COUNT && used < n; i++)
        if (variants[i]->forward_bf16)
            used += (size_t)snprintf(buf + used, n - used, used ? ", %s" : "%s", variants[i]->schema->name);
    return buf;
}

size_t pare_attn_bf16_work_bytes(const pare_attn *a, int64_t B)
{
    return a->v->slot_bf16_bytes ? a->v->slot_bf16_bytes(a) * work_slots(a, B) : 0;
}

pare_status pare_attn_forward_bf16(const pare_attn *a, const pare_attn_args *x)
{
    if (!a->v->forward_bf16) {
        char list[256];
        return pare_fail(PARE_EINVAL, "%s: has no bf16 forward (variants with one: %s)", a->v->schema->name,
                         pare_attn_bf16_kinds(list, sizeof list));
    }
    PARE_TRY(check_args(a, x, 0, 1));
    return a->v->forward_bf16(a, x);
}

int pare_attn_has_i8(const pare_attn *a) { return a->v->forward_i8 != NULL; }

size_t pare_attn_i8_work_bytes(const pare_attn *a, int64_t B)
{
    return a->v->work_i8_bytes ? a->v->work_i8_bytes(a, B) : 0;
}

pare_status pare_attn_forward_i8(const pare_attn *a, const pare_attn_args *x)
{
    const char *name = a->v->schema->name;
    const int64_t C = a->H * a->D;
    if (!a->v->forward_i8) return pare_fail(PARE_EINVAL, "%s: has no int8 forward", name);
    if (x->B < 1 || !x->q || !x->out) return pare_fail(PARE_EINVAL, "%s int8 forward: B, q and out must be given", name);
    if (x->k != x->q + C || x->v != x->q + 2 * C || x->ld != 3 * C || x->ldo != C)
        return pare_fail(PARE_EINVAL, "%s int8 forward: needs the packed qkv (k = q + H·D, v = q + 2·H·D, ld = 3·H·D, "
                         "ldo = H·D)", name);
    size_t need = pare_attn_i8_work_bytes(a, x->B);
    if (need && (!x->work || x->work_bytes < need))
        return pare_fail(PARE_EINVAL, "%s int8 forward: work_bytes=%zu is smaller than %zu", name,
                         x->work ? x->work_bytes : (size_t)0, need);
    return a->v->forward_i8(a, x);
}

void pare_attn_mask(const pare_attn *a, int64_t h, uint8_t *mask)
{
    if (a->v->mask) {
        a->v->mask(a, h, mask);
        return;
    }
    const int64_t T = a->T;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) mask[i * T + j] = !a->causal || j <= i;
}

int pare_attn_param_shapes(const pare_attn *a, pare_attn_param *p)
{
    return a->v->param_shapes ? a->v->param_shapes(a, p) : 0;
}

int64_t pare_attn_param_count(const pare_attn *a)
{
    if (!a->v->param_shapes) return 0;
    pare_attn_param p[PARE_ATTN_MAX_PARAMS];
    int n = a->v->param_shapes(a, p);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += p[i].rows * p[i].cols;
    return total;
}

void pare_attn_param_init(const pare_attn *a, float *params, pare_rng *rng)
{
    if (a->v->param_init) a->v->param_init(a, params, rng);
}

pare_status pare_attn_parse_ints(int64_t *vals, int *n, int cap, const pare_attn *a, const char *key, char sep,
                                 int64_t min, int64_t max)
{
    const char *name = a->v->schema->name, *text = pare_opt_str(&a->opts, key), *p = text;
    *n = 0;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE || (*end && *end != sep))
            return pare_fail(PARE_EINVAL, "%s: option '%s' = '%s' must be integers separated by '%c'", name, key, text,
                             sep);
        if (v < min || v > max)
            return pare_fail(PARE_EINVAL, "%s: option '%s' = '%s': %lld is outside [%lld, %lld]", name, key, text, v,
                             (long long)min, (long long)max);
        if (*n >= cap)
            return pare_fail(PARE_EINVAL, "%s: option '%s' = '%s' has more than %d values", name, key, text, cap);
        vals[(*n)++] = v;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return pare_fail(PARE_EINVAL, "%s: option '%s' = '%s' ends with '%c'", name, key, text, sep);
    }
    if (*n == 0)
        return pare_fail(PARE_EINVAL, "%s: option '%s' is empty (give integers separated by '%c')", name, key, sep);
    return PARE_OK;
}
