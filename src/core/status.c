/* status.c — the per-thread kept error message. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PARE_ERRMSG_MAX 1024
static _Thread_local char errmsg[PARE_ERRMSG_MAX];

pare_status pare_fail(pare_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return code;
}

pare_status pare_fail_ctx(pare_status code, const char *fmt, ...)
{
    char prefix[PARE_ERRMSG_MAX], old[PARE_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errmsg, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof errmsg - 3) n = sizeof errmsg - 3;
    memcpy(errmsg, prefix, n);
    memcpy(errmsg + n, ": ", 2);
    size_t room = sizeof errmsg - n - 3, m = strlen(old);
    if (m > room) m = room;
    memcpy(errmsg + n + 2, old, m);
    errmsg[n + 2 + m] = '\0';
    return code;
}

const char *pare_errmsg(void) { return errmsg; }
void pare_clear_error(void) { errmsg[0] = '\0'; }

const char *pare_status_name(pare_status s)
{
    static const char *names[] = {
        [PARE_OK] = "ok",
        [PARE_EINVAL] = "invalid argument",
        [PARE_ENOMEM] = "out of memory",
        [PARE_EIO] = "i/o error",
        [PARE_ESHAPE] = "shape mismatch",
        [PARE_ENOTSUP] = "not supported",
        [PARE_EFORMAT] = "malformed file",
        [PARE_ENUMERIC] = "non-finite number",
        [PARE_EINTERNAL] = "internal library error",
    };
    _Static_assert(sizeof names / sizeof names[0] == PARE_STATUS_COUNT, "status names out of date");
    return (unsigned)s < PARE_STATUS_COUNT ? names[s] : "unknown status";
}
