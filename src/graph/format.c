/* format.c — the storage-format registry: one row per pare_format, guarded by a static assert. */
#include "format.h"

#include <stdio.h>

static const pare_format_traits *const formats[] = {
    [PARE_FMT_F32] = &pare_format_f32,
    [PARE_FMT_I8_CHANNEL] = &pare_format_i8_channel,
    [PARE_FMT_QBLOCK] = &pare_format_qblock,
    [PARE_FMT_SIMULATED] = &pare_format_simulated,
    [PARE_FMT_SPARSE] = &pare_format_sparse,
    [PARE_FMT_HALF] = &pare_format_half,
};
_Static_assert(sizeof formats / sizeof formats[0] == PARE_FMT_COUNT, "format registry out of date with pare_format");

const pare_format_traits *pare_format_get(pare_format f) { return (unsigned)f < PARE_FMT_COUNT ? formats[f] : NULL; }

const char *pare_format_name(pare_format f)
{
    const pare_format_traits *t = pare_format_get(f);
    return t ? t->name : "?";
}

const char *pare_format_describe_q(const pare_param *w, char *buf, size_t n)
{
    snprintf(buf, n, "%s", w->q->desc);
    return buf;
}

const char *pare_format_label(const pare_param *w)
{
    const pare_format_traits *t = pare_format_get(w->format);
    if (!t) return "?";
    return t->label ? t->label(w) : t->name;
}
