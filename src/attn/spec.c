/* spec.c — attention variants from the spec strings models store ("kind:key=value,..."). */
#include <stdio.h>
#include <string.h>

#include "attn.h"

pare_status pare_attn_create_spec(pare_attn **out, const char *spec, int64_t T, int64_t H, int64_t D, int causal)
{
    char buf[256], *kv_text;
    pare_kv kv[PARE_MAX_OPTS];
    int n = 0;
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
    return pare_attn_create(out, buf, kv, n, T, H, D, causal);
}
