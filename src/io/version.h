/* version.h — the pare version and the git commit baked in at build time.
 *
 * The commit comes from -DPARE_GIT_COMMIT="\"abc1234\"" on the compile line of version.c (the
 * Makefile passes `git describe --always --dirty`); without it, "unknown".
 */
#ifndef PARE_VERSION_H
#define PARE_VERSION_H

#define PARE_VERSION "0.1.0"

/* "0.1.0" */
const char *pare_version(void);
/* "3f2c1ab" or "3f2c1ab-dirty", or "unknown" when built without the flag. */
const char *pare_git_commit(void);

#endif
