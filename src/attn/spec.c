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
    for (char *save = NULL, *tok = kv_text ? strtok_r(kv_text, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok) return pare_fail(PARE_EINVAL, "attention '%s': '%s' is not key=value", spec, tok);
        if (n == PARE_MAX_OPTS) return pare_fail(PARE_EINVAL, "attention '%s': too many options", spec);
        *eq = 0;
        kv[n++] = (pare_kv){tok, PARE_KV_STR, 0, eq + 1}; /* typed by the variant's schema */
    }
    return pare_attn_create(out, buf, kv, n, T, H, D, causal);
}
