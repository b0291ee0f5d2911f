/* atomic.h — files that are never seen half-written, and a writer's lock of pare's own.
 *
 * Replacing a file: the new content goes to a temporary file beside the target
 * ("<path>.tmp-<pid>-<k>"), is fsync'd, and is renamed over the target, and the directory is
 * fsync'd. A process killed at any point (kill -9, disk full, power loss after the rename) leaves
 * either the old file or the new one, never a mixture; readers that have the old file open keep
 * reading the old one. A failed write removes the temporary file and leaves the target unchanged.
 * The target's permission bits are kept.
 *
 *     pare_atomic a;
 *     PARE_TRY(pare_atomic_begin(&a, "results/x.h5", "recording a row"));
 *     pare_atomic_write(&a, buf, n);                    // errors are sticky, reported by commit
 *     PARE_TRY(pare_atomic_commit(&a));                 // or pare_atomic_abort(&a)
 *
 * Locking: pare_lock_take(&fd, "results/x.h5") takes an exclusive advisory lock (an open file
 * description lock, fcntl F_OFD_SETLK) on "<dir>/.<name>.lock" and writes the holder's pid and host
 * into it. The lock dies with its process (kill -9 included), so it never goes stale; a second
 * writer, in this process or another, gets PARE_EIO with a message naming the holder's pid.
 * Readers take no lock.
 *
 * Not here: locking across NFS clients that lack OFD locks (the lock is then per host).
 */
#ifndef PARE_ATOMIC_H
#define PARE_ATOMIC_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#ifndef PARE_PATH_MAX
#define PARE_PATH_MAX 4096
#endif

typedef struct pare_atomic {
    int fd;                        /* the temporary file, -1 when none */
    int err;                       /* first errno met while writing (sticky), 0 if none */
    char path[PARE_PATH_MAX];      /* the target */
    char tmp[PARE_PATH_MAX + 64];  /* the temporary file */
    const char *what;              /* what the write is for, in messages ("saving a checkpoint") */
    int existed;                   /* the target existed at begin */
} pare_atomic;

/* Create the temporary file beside path (its directory must exist). A symbolic link at path is
 * followed: the file it points to is replaced. what (kept by pointer) names the operation. */
pare_status pare_atomic_begin(pare_atomic *a, const char *path, const char *what);
/* Append n bytes; 0, or the errno of the first failure (kept, and reported by commit). */
int pare_atomic_write(pare_atomic *a, const void *buf, size_t n);
/* fsync, close, rename over the target, fsync the directory. On failure the temporary file is
 * removed, the target is unchanged, and the message names the target, what and the reason. */
pare_status pare_atomic_commit(pare_atomic *a);
/* Drop the temporary file (safe after commit, and twice). */
void pare_atomic_abort(pare_atomic *a);

/* Write a whole buffer as the new content of path (begin + write + commit). */
pare_status pare_atomic_replace(const char *path, const void *buf, size_t n, const char *what);

/* Fault injection for tests: every atomic write in this process fails with ENOSPC once `bytes`
 * more bytes have been written (-1: never, the default). */
void pare_atomic_fail_after(int64_t bytes);

/* Take the writer's lock of path (see above). *fd receives the lock's descriptor. */
pare_status pare_lock_take(int *fd, const char *path);
/* Release it (fd < 0 is fine). The lock file is left in place: removing it would race with a
 * writer that has just opened it. */
void pare_lock_release(int fd);

#endif
