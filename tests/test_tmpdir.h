/* test_tmpdir.h — a test's scratch directory: main fills `dir` (snprintf a /tmp/...-XXXXXX template, mkdtemp) and
 * path_in names files in it. path_in returns one of eight rotating buffers, so a call's result stays valid across
 * the next seven. */
#ifndef PARE_TEST_TMPDIR_H
#define PARE_TEST_TMPDIR_H

#include <stdio.h>

static char dir[64];

static const char *path_in(const char *name) __attribute__((unused));
static const char *path_in(const char *name)
{
    static char buf[8][256];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

#endif
