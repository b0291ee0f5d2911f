/* spec.c — attention configurations from spec text ("kind:key=value,..."): the one place such text is
 * parsed. Models parse a layer's text once when they are built (pare_attn_config_parse) and keep the
 * resolved configuration; pare_attn_create_spec serves one-off instances (benchmarks, fidelity sweeps). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "attn.h"
#include "attn_internal.h"

static atomic_long parses; /* a diagnostic count for tests: executors must not parse */

long pare_attn_spec_parses(void) { return atomic_load(&parses); }

pare_status pare_attn_config_parse(pare_attn_config **out, const char *spec)
{
    char buf[PARE_ATTN_SPEC_MAX], *kv_text;
    pare_kv kv[PARE_MAX_OPTS];
    int n = 0;
    *out = NULL;
    atomic_fetch_add(&parses, 1);
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
        return pare_fail(PARE_EINVAL, "attention spec too long: %s", spec);
    kv_text = strchr(buf, ':');
    if (kv_text) *kv_text++ = 0;
    /* "a=1,b=2,3,c=4": a piece without '=' continues the previous value (list options such as LongNet's
     * segments=2048,4096), so the pieces are split in place and list values rejoined with commas. */
    char *p = kv_text;
    while (p && *p) {
        char *eq = strchr(p, '='), *comma = strchr(p, ',');
        if (!eq || eq == p || (comma && comma < eq))
            return pare_fail(PARE_EINVAL, "attention '%s': '%s' is not key=value", spec, p);
        if (n == PARE_MAX_OPTS) return pare_fail(PARE_EINVAL, "attention '%s': too many options", spec);
        *eq = 0;
        kv[n++] = (pare_kv){p, PARE_KV_STR, 0, eq + 1}; /* typed by the variant's schema */
        /* the value runs to the comma before the next "key=" */
        char *v = eq + 1, *end = v + strlen(v);
        for (char *c = strchr(v, ','); c; c = strchr(c + 1, ',')) {
            char *e2 = strchr(c + 1, '='), *c2 = strchr(c + 1, ',');
            if (e2 && (!c2 || e2 < c2)) { end = c; break; }
        }
        p = *end ? end + 1 : NULL;
        *end = 0;
    }
    return pare_attn_config_new(out, buf, kv, n);
}

pare_status pare_attn_create_spec(pare_attn **out, const char *spec, int64_t T, int64_t H, int64_t D, int causal)
{
    pare_attn_config *c;
    *out = NULL;
    PARE_TRY(pare_attn_config_parse(&c, spec));
    pare_status st = pare_attn_create_opts(out, c->v, &c->opts, T, H, D, causal);
    pare_attn_config_release(c);
    return st;
}
