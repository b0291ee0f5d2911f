/* status.h — error codes and the kept message (SQLite-style).
 *
 * Every public function of libpare that can fail returns a pare_status. On failure the message
 * explaining it (naming the file, option or shape and the valid choices) is kept per thread and
 * read with pare_errmsg(). The library never exits or aborts on bad input; assert() is reserved for
 * the engine's own invariants.
 *
 *     if (pare_fail_if(n < 1, PARE_EINVAL, "batch=%d: must be >= 1", n)) ...
 *     return pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(errno));
 */
#ifndef PARE_STATUS_H
#define PARE_STATUS_H

typedef enum pare_status {
    PARE_OK = 0,
    PARE_EINVAL,    /* bad argument or option value */
    PARE_ENOMEM,    /* allocation failed */
    PARE_EIO,       /* file could not be read or written */
    PARE_ESHAPE,    /* tensor shapes do not fit */
    PARE_ENOTSUP,   /* valid request that this build or CPU cannot do */
    PARE_EFORMAT,   /* a file's content is malformed */
    PARE_ENUMERIC,  /* NaN / Inf met where a finite number is needed */
    PARE_EINTERNAL, /* a library we call failed unexpectedly */
    PARE_STATUS_COUNT
} pare_status;

#if defined(__GNUC__)
#define PARE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PARE_PRINTF(a, b)
#endif

/* Keep a formatted message for this thread and return code (so callers can `return pare_fail(...)`). */
pare_status pare_fail(pare_status code, const char *fmt, ...) PARE_PRINTF(2, 3);
/* Prefix the kept message with context: "loading model: <old message>". Returns code. */
pare_status pare_fail_ctx(pare_status code, const char *fmt, ...) PARE_PRINTF(2, 3);
/* The last message kept on this thread ("" if none). */
const char *pare_errmsg(void);
void pare_clear_error(void);
/* A short name of a status code ("invalid argument", ...). */
const char *pare_status_name(pare_status s);

/* Evaluate expr; on non-OK return it from the calling function. */
#define PARE_TRY(expr)                      \
    do {                                    \
        pare_status pare_try_s_ = (expr);   \
        if (pare_try_s_ != PARE_OK)         \
            return pare_try_s_;             \
    } while (0)

#endif
