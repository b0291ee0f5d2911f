/* timer.h — monotonic wall clock in nanoseconds, and process peak resident memory. */
#ifndef PARE_TIMER_H
#define PARE_TIMER_H

#include <stdint.h>

int64_t pare_now_ns(void);
/* Peak resident set size of this process in bytes (getrusage), 0 if unknown. */
int64_t pare_peak_rss_bytes(void);

#endif
