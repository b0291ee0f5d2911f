/* options.c — the generic validator behind every pass's option schema. */
#include "options.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *type_names[] = {"int", "float", "bool", "string", "enum"};
_Static_assert(sizeof type_names / sizeof type_names[0] == PARE_OPT_TYPE_COUNT, "option types out of date");

const char *pare_schema_keys(const pare_schema *s, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->nopts && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %s" : "%s", s->opts[i].key);
    if (s->nopts == 0) snprintf(buf, n, "(none)");
    return buf;
}

static int find_key(const pare_schema *s, const char *key)
{
    for (int i = 0; i < s->nopts; i++)
        if (strcmp(s->opts[i].key, key) == 0) return i;
    return -1;
}

/* Index of word in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *word)
{
    size_t wl = strlen(word);
    int idx = 0;
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == wl && strncmp(p, word, len) == 0) return idx;
        idx++;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static pare_status range_check(const pare_schema *s, const pare_opt_spec *o, double v)
{
    if (o->type == PARE_OPT_INT && v != floor(v))
        return pare_fail(PARE_EINVAL, "%s: option '%s' must be an integer, got %g", s->name, o->key, v);
    if (o->min <= o->max && (v < o->min || v > o->max || isnan(v)))
        return pare_fail(PARE_EINVAL, "%s: option '%s' = %g is out of range [%g, %g]", s->name, o->key, v, o->min, o->max);
    return PARE_OK;
}

/* Set option i from text (defaults and `key=value` words). */
static pare_status set_text(pare_options *out, int i, const char *text)
{
    const pare_schema *s = out->schema;
    const pare_opt_spec *o = &s->opts[i];
    pare_optval *v = &out->v[i];
    if (strlen(text) >= PARE_OPT_STR_MAX)
        return pare_fail(PARE_EINVAL, "%s: option '%s' value is longer than %d characters", s->name, o->key, PARE_OPT_STR_MAX - 1);
    snprintf(v->str, sizeof v->str, "%s", text);
    switch (o->type) {
    case PARE_OPT_INT:
    case PARE_OPT_FLOAT: {
        char *end;
        errno = 0;
        double d = strtod(text, &end);
        if (end == text || *end != '\0' || errno == ERANGE)
            return pare_fail(PARE_EINVAL, "%s: option '%s' expects a number (%s), got '%s'", s->name, o->key, type_names[o->type], text);
        v->num = d;
        return range_check(s, o, d);
    }
    case PARE_OPT_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes")) v->num = 1;
        else if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no")) v->num = 0;
        else return pare_fail(PARE_EINVAL, "%s: option '%s' expects true or false, got '%s'", s->name, o->key, text);
        return PARE_OK;
    case PARE_OPT_ENUM: {
        int k = choice_index(o->choices, text);
        if (k < 0)
            return pare_fail(PARE_EINVAL, "%s: option '%s' = '%s' is not a valid choice (valid: %s)", s->name, o->key, text, o->choices);
        v->num = k;
        return PARE_OK;
    }
    case PARE_OPT_STRING:
    default:
        return PARE_OK;
    }
}

pare_status pare_opts_defaults(pare_options *out, const pare_schema *s)
{
    assert(s->nopts <= PARE_MAX_OPTS);
    memset(out, 0, sizeof *out);
    out->schema = s;
    for (int i = 0; i < s->nopts; i++)
        if (s->opts[i].def) PARE_TRY(set_text(out, i, s->opts[i].def));
    return PARE_OK;
}

pare_status pare_opts_resolve(pare_options *out, const pare_schema *s, const pare_kv *kv, int n)
{
    PARE_TRY(pare_opts_defaults(out, s));
    for (int j = 0; j < n; j++) {
        int i = find_key(s, kv[j].key);
        if (i < 0) {
            char keys[1024];
            return pare_fail(PARE_EINVAL, "%s: unknown option '%s' (valid: %s)", s->name, kv[j].key, pare_schema_keys(s, keys, sizeof keys));
        }
        const pare_opt_spec *o = &s->opts[i];
        pare_optval *v = &out->v[i];
        switch (kv[j].kind) {
        case PARE_KV_STR:
            PARE_TRY(set_text(out, i, kv[j].str));
            break;
        case PARE_KV_NUM:
            if (o->type != PARE_OPT_INT && o->type != PARE_OPT_FLOAT)
                return pare_fail(PARE_EINVAL, "%s: option '%s' expects %s%s%s, got the number %g", s->name, o->key, type_names[o->type],
                                 o->type == PARE_OPT_ENUM ? " " : "", o->type == PARE_OPT_ENUM ? o->choices : "", kv[j].num);
            v->num = kv[j].num;
            snprintf(v->str, sizeof v->str, "%.17g", kv[j].num);
            PARE_TRY(range_check(s, o, kv[j].num));
            break;
        case PARE_KV_BOOL:
            if (o->type != PARE_OPT_BOOL)
                return pare_fail(PARE_EINVAL, "%s: option '%s' expects %s, got a boolean", s->name, o->key, type_names[o->type]);
            v->num = kv[j].num != 0;
            snprintf(v->str, sizeof v->str, "%s", v->num ? "true" : "false");
            break;
        }
        v->given = 1;
    }
    for (int i = 0; i < s->nopts; i++)
        if (!s->opts[i].def && !out->v[i].given)
            return pare_fail(PARE_EINVAL, "%s: option '%s' is required (%s)", s->name, s->opts[i].key, s->opts[i].doc);
    return PARE_OK;
}

static int must_find(const pare_options *o, const char *key)
{
    int i = find_key(o->schema, key);
    assert(i >= 0 && "option key not in schema");
    return i;
}

double pare_opt_num(const pare_options *o, const char *key) { return o->v[must_find(o, key)].num; }
int pare_opt_int(const pare_options *o, const char *key) { return (int)o->v[must_find(o, key)].num; }
int pare_opt_bool(const pare_options *o, const char *key) { return o->v[must_find(o, key)].num != 0; }
const char *pare_opt_str(const pare_options *o, const char *key) { return o->v[must_find(o, key)].str; }
int pare_opt_given(const pare_options *o, const char *key) { return o->v[must_find(o, key)].given; }

void pare_schema_print(FILE *f, const pare_schema *s)
{
    fprintf(f, "%s — %s\n\n", s->name, s->doc);
    if (s->nopts == 0) {
        fprintf(f, "  (no options)\n");
        return;
    }
    fprintf(f, "  %-20s %-7s %-14s %-26s %s\n", "option", "type", "default", "range / choices", "meaning");
    for (int i = 0; i < s->nopts; i++) {
        const pare_opt_spec *o = &s->opts[i];
        char range[64] = "";
        if (o->type == PARE_OPT_ENUM) snprintf(range, sizeof range, "%s", o->choices);
        else if ((o->type == PARE_OPT_INT || o->type == PARE_OPT_FLOAT) && o->min <= o->max)
            snprintf(range, sizeof range, "[%g, %g]", o->min, o->max);
        fprintf(f, "  %-20s %-7s %-14s %-26s %s\n", o->key, type_names[o->type], o->def ? o->def : "(required)", range, o->doc);
    }
}
