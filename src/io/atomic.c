/* atomic.c — atomic file replacement and the writer's lock (see atomic.h).
 *
 * Follows the usual recipe (write a temporary, fsync it, rename it, fsync the directory), as
 * SQLite's and git's lock files do. The lock is an OFD lock rather than a classic POSIX record lock
 * because closing any descriptor of a file drops all of a process's POSIX locks on it, and because
 * two writers inside one process must exclude each other too.
 */
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t fail_after = -1; /* tests only: bytes left before writes fail with ENOSPC */

void pare_atomic_fail_after(int64_t bytes) { fail_after = bytes; }

/* The directory part of path ("." when there is none). */
static void dir_of(char *dir, size_t n, const char *path)
{
    snprintf(dir, n, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, n, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
}

pare_status pare_atomic_begin(pare_atomic *a, const char *path, const char *what)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->what = what ? what : "writing";
    struct stat st;
    char real[PATH_MAX];
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && realpath(path, real)) path = real; /* replace the link's target */
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path)
        return pare_fail(PARE_EINVAL, "%s: path too long", path);
    int existed = a->existed = stat(a->path, &st) == 0;
    if (existed && S_ISDIR(st.st_mode)) return pare_fail(PARE_EIO, "%s: is a directory", a->path);
    for (int k = 0; k < 100 && a->fd < 0; k++) {
        snprintf(a->tmp, sizeof a->tmp, "%s.tmp-%ld-%d", a->path, (long)getpid(), k);
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (a->fd < 0 && errno != EEXIST) break;
    }
    if (a->fd < 0) {
        char dir[PARE_PATH_MAX];
        dir_of(dir, sizeof dir, a->path);
        return pare_fail(PARE_EIO, "%s: %s: cannot create a temporary file in '%s': %s", a->path, a->what, dir, strerror(errno));
    }
    if (existed) (void)fchmod(a->fd, st.st_mode & 07777);
    return PARE_OK;
}

int pare_atomic_write(pare_atomic *a, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n && !a->err) {
        size_t k = n;
        if (fail_after >= 0) {
            if (fail_after == 0) {
                a->err = ENOSPC;
                break;
            }
            if ((int64_t)k > fail_after) k = (size_t)fail_after;
        }
        ssize_t w = write(a->fd, p, k);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            a->err = w < 0 ? errno : EIO;
            break;
        }
        if (fail_after >= 0) fail_after -= w;
        p += w, n -= (size_t)w;
    }
    return a->err;
}

void pare_atomic_abort(pare_atomic *a)
{
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
        unlink(a->tmp);
    }
}

pare_status pare_atomic_commit(pare_atomic *a)
{
    if (a->fd < 0) return pare_fail(PARE_EINVAL, "%s: %s: no temporary file to commit", a->path, a->what);
    int err = a->err;
    if (!err && fsync(a->fd) != 0) err = errno; /* delayed allocation reports a full disk here */
    if (close(a->fd) != 0 && !err) err = errno;
    a->fd = -1;
    if (!err && rename(a->tmp, a->path) != 0) err = errno;
    if (err) {
        unlink(a->tmp);
        return pare_fail(PARE_EIO, "%s: %s failed: %s; %s", a->path, a->what, strerror(err),
                         a->existed ? "the file on disk is unchanged" : "no file was written");
    }
    char dir[PARE_PATH_MAX];
    dir_of(dir, sizeof dir, a->path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* make the rename itself durable */
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return PARE_OK;
}

pare_status pare_atomic_replace(const char *path, const void *buf, size_t n, const char *what)
{
    pare_atomic a;
    PARE_TRY(pare_atomic_begin(&a, path, what));
    pare_atomic_write(&a, buf, n);
    return pare_atomic_commit(&a);
}

/* ---- the writer's lock ---- */

static void lock_path(char *out, size_t n, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(out, n, "%.*s/.%s.lock", (int)(slash - path), path, slash + 1);
    else snprintf(out, n, ".%s.lock", path);
}

pare_status pare_lock_take(int *fd_out, const char *path)
{
    *fd_out = -1;
    char lp[PARE_PATH_MAX + 16];
    lock_path(lp, sizeof lp, path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return pare_fail(PARE_EIO, "%s: cannot open the writer's lock file %s: %s", path, lp, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    /* A writer killed while a child it forked (the isolated file check) still holds a copy of the lock's
     * descriptor leaves the lock held for the few milliseconds that child takes to die: when the pid
     * written in the lock file is of this host and gone, wait for it (up to 2 s) instead of failing. */
    for (int tries = 0; fcntl(fd, F_OFD_SETLK, &fl) != 0 && (errno == EAGAIN || errno == EACCES) && tries < 100; tries++) {
        char note[256] = "", host[200], theirs[200] = "";
        long pid = 0;
        ssize_t r = pread(fd, note, sizeof note - 1, 0);
        note[r > 0 ? r : 0] = '\0';
        if (gethostname(host, sizeof host) != 0) break;
        host[sizeof host - 1] = '\0';
        if (sscanf(note, "pid %ld on %199s", &pid, theirs) != 2 || pid <= 0 || strcmp(theirs, host) != 0 ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            break; /* a live writer (or one of another host): refuse at once */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        char holder[256] = "";
        ssize_t r = pread(fd, holder, sizeof holder - 1, 0);
        close(fd);
        if (e != EAGAIN && e != EACCES)
            return pare_fail(PARE_EIO, "%s: cannot lock %s: %s", path, lp, strerror(e));
        holder[r > 0 ? r : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        return pare_fail(PARE_EIO, "%s: another pare run is writing this file (%s); wait for it to finish, or give this run "
                                   "another experiment name or results dir",
                         path, holder[0] ? holder : "its pid is not known yet");
    }
    char me[300], host[200];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    int len = snprintf(me, sizeof me, "pid %ld on %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, me, (size_t)len, 0) != len) {
        /* the lock holds without the note; a second writer is told the pid is unknown */
    }
    *fd_out = fd;
    return PARE_OK;
}

void pare_lock_release(int fd)
{
    if (fd >= 0) close(fd); /* closing the only descriptor of an OFD lock releases it */
}
