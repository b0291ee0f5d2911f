/* timer.h — monotonic wall clock and process CPU time in nanoseconds, and process peak resident memory. */
#ifndef PARE_TIMER_H
#define PARE_TIMER_H

#include <stdint.h>

int64_t pare_now_ns(void);
/* CPU time of this process (all its threads: CLOCK_PROCESS_CPUTIME_ID) in nanoseconds. On a machine shared
 * with other work, the time a single-threaded run computed rather than the time it also waited for a core. */
int64_t pare_cpu_ns(void);
/* Peak resident set size of this process in bytes (getrusage), 0 if unknown. */
int64_t pare_peak_rss_bytes(void);

#endif
