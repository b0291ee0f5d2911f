/* fuzz_util.h — what the libFuzzer targets share: a scratch directory per process, the input written
 * to a file in it (the readers under test take paths), and a small cursor over the input bytes.
 *
 * The targets (fuzz/fuzz_<name>.c, one LLVMFuzzerTestOneInput each) are built by `make fuzz` against
 * the sanitizer build of the engine (build-san/, clang -fsanitize=address,undefined,fuzzer-no-link) and
 * run by tools/fuzz.sh over their seed corpus fuzz/corpus/<name>/. docs/testing.md says how to run one
 * and how to reproduce a crash. A target's contract: any input may be rejected with a status, none may
 * crash, leak, hang or trip a sanitizer; what a reader accepts must satisfy its own invariants (a
 * dataset passes pare_dataset_check, a table's strings are never NULL...), checked with FUZZ_ASSERT.
 *
 * Deliberately not here: any network or registry access, and any state kept between inputs beyond the
 * scratch directory (each input is independent, so a crash reproduces from its file alone).
 */
#ifndef PARE_FUZZ_UTIL_H
#define PARE_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A broken invariant is a finding: print where and abort, so libFuzzer saves the input. */
#define FUZZ_ASSERT(cond)                                                                        \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static char fuzz_dir_[256];

static inline int fuzz_rm_(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline void fuzz_dir_remove_(void)
{
    if (fuzz_dir_[0]) nftw(fuzz_dir_, fuzz_rm_, 8, FTW_DEPTH | FTW_PHYS);
}

/* The process's scratch directory, removed at exit: $TMPDIR/pare-fuzz-XXXXXX, else in /dev/shm (memory:
 * every input is written as a file, and a disk's syscalls would cost more than the parsing), else /tmp. */
static inline const char *fuzz_dir(void)
{
    if (!fuzz_dir_[0]) {
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/pare-fuzz-XXXXXX", t);
        if (!mkdtemp(fuzz_dir_)) {
            fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fuzz_dir_, strerror(errno));
            abort();
        }
        atexit(fuzz_dir_remove_);
    }
    return fuzz_dir_;
}

/* dir/rel into buf; the directories rel names are created on demand ("pf/metadata/0.npy"). */
static inline const char *fuzz_path(char *buf, size_t cap, const char *rel)
{
    size_t base = strlen(fuzz_dir());
    snprintf(buf, cap, "%s/%s", fuzz_dir(), rel);
    for (char *p = buf + base + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(buf, 0700);
        *p = '/';
    }
    return buf;
}

/* Write data[0..n) to path (truncating); aborts on an I/O error (not a finding of the reader). */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fuzz: open %s: %s\n", path, strerror(errno));
        abort();
    }
    while (n) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            fprintf(stderr, "fuzz: write %s: %s\n", path, strerror(errno));
            abort();
        }
        data += w, n -= (size_t)w;
    }
    close(fd);
}

/* A cursor over the input: small parameters are taken from its front, the rest is the payload. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

/* The next byte (0 once the input is used up). */
static inline unsigned fuzz_byte(fuzz_in *in)
{
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

#endif
